// How every mutating command runs: read state, build the plan against a draft of it (validation throws
// before anything changes), then either print the plan (--dry-run) or execute it and save the draft.
import fs from "node:fs";
import path from "node:path";
import { OpError, UsageError, printError } from "../errors.js";
import { abandon, execute, finishJournal, recoverJournal, testPause, type Spawned } from "./executor.js";
import { encodeState } from "../store/statefile.js";
import { renderScript, type Plan } from "./plan.js";
import { Store, resolveStateDir } from "../store/store.js";
import { syncRegistry } from "../store/statedirs.js";
import { isRoot, requireTools } from "../host/sys.js";
import type { State } from "../model.js";
import { useStateDir } from "../dns/aardvark.js";

export interface GlobalOptions {
  stateDir?: string;
  dryRun?: boolean;
  verbose?: boolean;
}

export interface Outcome<T> {
  plan: Plan;
  /** called after execution with the processes the plan started, to record them in the draft */
  commit?: (spawned: Map<string, Spawned>) => T;
  /** reports execution progress (steps done), for commands that change many objects at once */
  progress?: (done: number) => void;
}

export function openStore(opts: GlobalOptions): Store {
  const store = new Store(resolveStateDir(opts.stateDir));
  useStateDir(store.dir); // the DNS server's files live there (src/dns/aardvark.ts)
  return store;
}

/** Reads state for a query; a state dir that does not exist yet reads as empty. */
export function readState(opts: GlobalOptions): State {
  return openStore(opts).read();
}

/**
 * Builds and runs one plan under the store's lock. `build` mutates the draft state it is given into
 * the state the host will be in after the plan; it must throw UsageError for bad input.
 */
/** Changing the network needs root: refused before anything is read, --dry-run excepted. */
export function requireRoot(): void {
  if (!isRoot()) throw new UsageError("ctnet must run as root to change the network (try sudo, or --dry-run to see the plan)");
}

export async function mutate<T>(
  opts: GlobalOptions,
  build: (draft: State) => Outcome<T>,
  recovery: { discardUnreadableJournal?: boolean } = {},
): Promise<T | undefined> {
  const store = openStore(opts);
  if (opts.dryRun) {
    const { plan } = build(store.read());
    process.stdout.write(renderScript(plan));
    return undefined;
  }
  requireRoot();
  requireTools("ip", "iptables", "iptables-restore", "iptables-save", "sysctl", "nsenter", "unshare");
  // bad input on a host ctnet never touched must not leave even an empty state dir behind
  if (!fs.existsSync(store.dir)) build(store.read());
  const made = await store.lock(commandLine());
  try {
    await recoverJournal(store, opts.verbose, recovery.discardUnreadableJournal);
    const draft = store.read();
    const { plan, commit, progress } = build(draft);
    draft.generation = (draft.generation ?? 0) + 1;
    if (made.length > 0) draft.madeDirs = [...new Set([...(draft.madeDirs ?? []), ...made])];
    // the new state's room on disk is claimed before the first step: a full disk stops the command here,
    // with nothing changed, instead of after its plan ran (the processes it starts add their pids)
    store.reserve(Buffer.byteLength(encodeState(draft)) + 64 * plan.steps.filter((s) => s.kind === "spawn").length + 4096);
    let spawned: Map<string, Spawned>;
    try {
      spawned = await execute(plan, { store, verbose: opts.verbose, progress, after: draft });
    } catch (err) {
      store.unreserve();
      throw err;
    }
    const result = commit?.(spawned);
    try {
      store.write(draft);
    } catch (err: any) {
      throw new OpError(`${err.message}: ${await abandon(plan, spawned, store)}`);
    }
    syncRegistry(store.dir, draft);
    await testPause("commit");
    finishJournal(store);
    return result;
  } finally {
    store.unlock();
    // a first command that failed leaves no empty state dir behind
    if (!fs.existsSync(store.file)) for (const dir of [...made].reverse()) rmdirIfEmpty(path.join(store.dir, dir));
  }
}

/**
 * A command over several names, the way Docker runs one (docker rm, docker network rm): each name done or
 * refused on its own, one stderr line per refusal. When no name is refused they all go in one plan (rm -f
 * of many kills every process, then deletes every namespace in one ip -batch); only when one is does each
 * name get its own plan, one after the other, so that a bad name does not block the good ones. `done`
 * reports each name removed. Exit 1 if any failed, 2 if every name was refused (nothing changed).
 */
export async function mutateEach(opts: GlobalOptions, names: string[], planFor: (draft: State, names: string[]) => Plan | Outcome<void>, done: (name: string) => void): Promise<void> {
  let refused = false;
  const build = (draft: State, some: string[]): Outcome<void> => {
    try {
      const built = planFor(draft, some);
      // a planner that starts processes says how to record them (start, restart)
      return "plan" in built ? built : { plan: built };
    } catch (err) {
      refused = err instanceof UsageError;
      throw err;
    }
  };
  try {
    await mutate(opts, (draft) => build(draft, names));
    if (!opts.dryRun) names.forEach(done);
    return;
  } catch (err) {
    if (!refused || names.length === 1) throw err;
  }
  const failures: unknown[] = [];
  for (const name of names) {
    try {
      await mutate(opts, (draft) => build(draft, [name]));
      if (!opts.dryRun) done(name);
    } catch (err) {
      failures.push(err);
      await printError(err);
    }
  }
  if (failures.length > 0) process.exitCode = failures.length === names.length && failures.every((e) => e instanceof UsageError) ? 2 : 1;
}

/**
 * A query over several names (docker inspect a nosuch): what each name finds, in order; one stderr line
 * per name that finds nothing. Exit 1 if any found nothing, 2 if none found anything.
 */
export async function findEach<T>(names: string[], find: (name: string) => T): Promise<T[]> {
  const found: T[] = [];
  let failures = 0;
  for (const name of names) {
    try {
      found.push(find(name));
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      failures++;
      await printError(err);
    }
  }
  if (failures > 0) process.exitCode = found.length === 0 ? 2 : 1;
  return found;
}

/** What a waiting command is told about the lock's holder. */
const commandLine = () => `ctnet ${process.argv.slice(2).join(" ")}`;

function rmdirIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    /* not empty: something else lives there */
  }
}
