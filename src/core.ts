// How every mutating command runs: read state, build the plan against a draft of it (validation throws
// before anything changes), then either print the plan (--dry-run) or execute it and save the draft.
import { UsageError } from "./errors.js";
import fs from "node:fs";
import { execute, finishJournal, recoverJournal, testPause, type Spawned } from "./executor.js";
import { renderScript, type Plan } from "./plan.js";
import { Store, resolveStateDir } from "./store.js";
import { isRoot, requireTools } from "./sys.js";
import type { State } from "./model.js";

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
  return new Store(resolveStateDir(opts.stateDir));
}

/** Reads state for a query; a state dir that does not exist yet reads as empty. */
export function readState(opts: GlobalOptions): State {
  return openStore(opts).read();
}

/**
 * Builds and runs one plan under the store's lock. `build` mutates the draft state it is given into
 * the state the host will be in after the plan; it must throw UsageError for bad input.
 */
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
  if (!isRoot()) throw new UsageError("ctnet must run as root to change the network (try sudo, or --dry-run to see the plan)");
  requireTools("ip", "iptables", "iptables-restore", "iptables-save", "sysctl", "nsenter", "unshare");
  // bad input on a host ctnet never touched must not leave even an empty state dir behind
  if (!fs.existsSync(store.dir)) build(store.read());
  store.lock();
  try {
    await recoverJournal(store, opts.verbose, recovery.discardUnreadableJournal);
    const draft = store.read();
    const { plan, commit, progress } = build(draft);
    draft.generation = (draft.generation ?? 0) + 1;
    const spawned = await execute(plan, { store, verbose: opts.verbose, progress, after: draft });
    const result = commit?.(spawned);
    store.write(draft);
    await testPause("commit");
    finishJournal(store);
    return result;
  } finally {
    store.unlock();
  }
}
