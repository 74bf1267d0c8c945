// The one place plans touch the kernel. Runs steps in order, batching runs of `ip` commands for one
// namespace into `ip -batch` and runs of iptables rules for one table into `iptables-restore --noflush`,
// journals progress so a crash can be rolled back, and on failure (or Ctrl-C) undoes what it did in
// reverse order.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { OpError } from "./errors.js";
import { renderStep, shJoin, type Step, type Plan, type CmdStep } from "./plan.js";
import { processStartTime, processAlive, type Store } from "./store.js";
import { runAsync, type RunResult } from "./sys.js";

export interface Spawned {
  pid: number;
  start: string | null;
}

export interface ExecOptions {
  verbose?: boolean;
  store?: Store;
}

/** On disk while a plan runs: enough to roll it back if this process dies. */
interface Journal {
  pid: number;
  pidStart: string | null;
  title: string;
  steps: Step[];
  /** steps [0, started) have been attempted; the last of them may be half done */
  started: number;
  spawned: Record<string, Spawned>;
}

let interrupted: NodeJS.Signals | null = null;
function onSignal(sig: NodeJS.Signals) {
  interrupted = sig;
}

/** Runs the plan; returns the processes it started, by container name. */
export async function execute(plan: Plan, opts: ExecOptions = {}): Promise<Map<string, Spawned>> {
  const journal: Journal = {
    pid: process.pid,
    pidStart: processStartTime(process.pid),
    title: plan.title,
    steps: plan.steps,
    started: 0,
    spawned: {},
  };
  const saveJournal = () => opts.store && writeJournal(opts.store, journal);
  saveJournal();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    let i = 0;
    while (i < plan.steps.length) {
      const group = batchAt(plan.steps, i);
      journal.started = i + group.length;
      saveJournal();
      for (const step of group) if (opts.verbose) process.stderr.write(`+ ${renderStep(step)}\n`);
      const failure = await runGroup(group, journal.spawned);
      if (group[0].kind === "spawn") saveJournal();
      if (failure) {
        await rollback(plan.steps, i + failure.succeeded, journal.spawned, opts.verbose);
        throw new OpError(`${failure.command} failed: ${failure.stderr.trim() || "no error output"} (plan rolled back)`);
      }
      i += group.length;
      if (interrupted) {
        await rollback(plan.steps, i, journal.spawned, opts.verbose);
        throw new OpError(`interrupted by ${interrupted}: plan "${plan.title}" rolled back`);
      }
    }
    return new Map(Object.entries(journal.spawned));
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Called once the new state is on disk: the plan is now part of history, not in flight. */
export function finishJournal(store: Store): void {
  fs.rmSync(store.journalFile, { force: true });
}

function writeJournal(store: Store, journal: Journal): void {
  fs.writeFileSync(store.journalFile, JSON.stringify(journal), { mode: 0o600 });
}

/**
 * If a previous invocation died in the middle of a plan, undo what it did. Returns the plan's title
 * when something was rolled back. Must be called with the lock held.
 */
export async function recoverJournal(store: Store, verbose = false): Promise<string | null> {
  let journal: Journal;
  try {
    journal = JSON.parse(fs.readFileSync(store.journalFile, "utf8"));
  } catch {
    return null;
  }
  if (journal.pid !== process.pid && processAlive(journal.pid, journal.pidStart)) return null;
  await rollback(journal.steps, journal.started, journal.spawned, verbose, true);
  finishJournal(store);
  return journal.title;
}

// ---- batching --------------------------------------------------------------------------------

/** The key under which consecutive steps may share one process, or null when a step runs alone. */
function batchKey(step: Step): string | null {
  if (step.kind !== "cmd") return null;
  const [prog, ...args] = step.argv;
  if (prog === "ip") return args[0] === "-n" ? `ip -n ${args[1]}` : "ip";
  if (prog === "iptables" && args[0] === "-w" && args[1] === "-t") return `iptables ${args[2]}`;
  return null;
}

function batchAt(steps: Step[], i: number): Step[] {
  const key = batchKey(steps[i]);
  if (key === null) return [steps[i]];
  let j = i + 1;
  while (j < steps.length && batchKey(steps[j]) === key) j++;
  return steps.slice(i, j);
}

/** ip -batch words: quote those with blanks or quotes. */
const batchWord = (w: string) => (/[\s"'\\]/.test(w) ? `"${w.replace(/["\\]/g, "\\$&")}"` : w);

interface Failure {
  command: string;
  stderr: string;
  /** how many steps of the group took effect before the failure */
  succeeded: number;
}

async function runGroup(group: Step[], spawned: Record<string, Spawned>): Promise<Failure | null> {
  if (group.length === 1) return runSingle(group[0], spawned);
  const cmds = group as CmdStep[];
  if (cmds[0].argv[0] === "ip") {
    const prefix = cmds[0].argv[1] === "-n" ? ["-n", cmds[0].argv[2]] : [];
    const input = cmds.map((s) => s.argv.slice(1 + prefix.length).map(batchWord).join(" ")).join("\n") + "\n";
    const res = await runAsync(["ip", ...prefix, "-batch", "-"], input);
    if (res.code === 0) return null;
    // ip stops at the first failing line and names it: "Command failed -:N"
    const line = Number(/Command failed -:(\d+)/.exec(res.stderr)?.[1] ?? 1);
    return { command: shJoin(cmds[line - 1].argv), stderr: res.stderr.replace(/Command failed -:\d+\s*/, ""), succeeded: line - 1 };
  }
  const table = cmds[0].argv[3];
  const input = `*${table}\n${cmds.map((s) => restoreLine(s.argv.slice(4))).join("\n")}\nCOMMIT\n`;
  const res = await runAsync(["iptables-restore", "-w", "--noflush"], input);
  if (res.code === 0) return null;
  // iptables-restore commits a table atomically: nothing took effect
  const line = Number(/Error occurred at line: (\d+)/.exec(res.stderr)?.[1] ?? 2);
  const culprit = cmds[Math.min(Math.max(line - 2, 0), cmds.length - 1)];
  return { command: shJoin(culprit.argv), stderr: res.stderr.split("\n")[0], succeeded: 0 };
}

/** One iptables argv (after "-w -t TABLE") as an iptables-restore line. */
const restoreLine = (args: string[]) => args.map((w) => (/[\s"']/.test(w) ? `"${w.replace(/"/g, '\\"')}"` : w)).join(" ");

async function runSingle(step: Step, spawned: Record<string, Spawned>): Promise<Failure | null> {
  switch (step.kind) {
    case "cmd": {
      const res: RunResult = await runAsync(step.argv);
      return res.code === 0 ? null : { command: shJoin(step.argv), stderr: res.stderr, succeeded: 0 };
    }
    case "write":
      try {
        writeInPlace(step.path, step.content);
        return null;
      } catch (err: any) {
        return { command: `write ${step.path}`, stderr: err.message, succeeded: 0 };
      }
    case "spawn":
      try {
        spawned[step.container] = spawnDetached(step.argv, step.log);
        return null;
      } catch (err: any) {
        return { command: shJoin(step.argv), stderr: err.message, succeeded: 0 };
      }
    case "kill":
      await killAll(step.pids, step.signal);
      return null;
  }
}

/** Writes through the existing inode so bind mounts (ip netns exec's /etc/hosts) see the change. */
function writeInPlace(path: string, content: string | null): void {
  if (content === null) {
    fs.rmSync(path, { force: true });
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (dir.startsWith("/etc/netns/") && fs.existsSync(dir) && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
    return;
  }
  fs.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  fs.writeFileSync(path, content);
}

function spawnDetached(argv: string[], log: string): Spawned {
  const fd = fs.openSync(log, "a", 0o600);
  try {
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", fd, fd] });
    if (child.pid === undefined) throw new Error(`could not start ${argv[0]}`);
    child.unref();
    return { pid: child.pid, start: processStartTime(child.pid) };
  } finally {
    fs.closeSync(fd);
  }
}

const STOP_GRACE_MS = 10_000;

/** Signals each process group (containers run in their own session), falling back to the pid alone. */
export async function killAll(pids: number[], signal: NodeJS.Signals): Promise<void> {
  const send = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  for (const pid of pids) send(pid, signal);
  if (signal === "SIGKILL") return;
  const deadline = Date.now() + STOP_GRACE_MS;
  const alive = () => pids.filter((pid) => processStartTime(pid) !== null && !isZombie(pid));
  while (alive().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const pid of alive()) send(pid, "SIGKILL");
}

function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

// ---- undo ------------------------------------------------------------------------------------

/**
 * Undoes steps [0, count) in reverse. After a crash the last attempted step may be half done, so undo
 * errors are then expected and ignored; otherwise they are reported but do not stop the rollback.
 */
async function rollback(
  steps: Step[],
  count: number,
  spawned: Record<string, Spawned>,
  verbose = false,
  afterCrash = false,
): Promise<void> {
  for (let i = count - 1; i >= 0; i--) {
    const step = steps[i];
    if (step.kind === "cmd" && step.undo) {
      if (verbose) process.stderr.write(`+ ${shJoin(step.undo)}   # undo\n`);
      const res = await runAsync(step.undo);
      if (res.code !== 0 && !afterCrash) {
        process.stderr.write(`ctnet: undo failed: ${shJoin(step.undo)}: ${res.stderr.trim()}\n`);
      }
    } else if (step.kind === "write") {
      writeInPlace(step.path, step.previous);
    } else if (step.kind === "spawn") {
      const proc = spawned[step.container];
      if (proc && processAlive(proc.pid, proc.start)) await killAll([proc.pid], "SIGKILL");
    }
  }
}
