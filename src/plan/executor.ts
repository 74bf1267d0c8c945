// The one place plans touch the kernel. Runs steps in order, batching runs of `ip` commands for one
// namespace into `ip -batch` and runs of iptables rules for one table into `iptables-restore --noflush`,
// journals progress so a crash can be rolled back, and on failure (or Ctrl-C) undoes what it did in
// reverse order.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { OpError } from "../errors.js";
import { netnsPath } from "../naming.js";
import { renderStep, renderUndo, waitedPaths, shJoin, type Step, type Plan, type CmdStep } from "./plan.js";
import { processStartTime, processAlive, type Store } from "../store/store.js";
import type { State } from "../model.js";
import { stateJson } from "../store/statefile.js";
import { runAsync, type RunResult } from "../host/sys.js";
import { linkInPlace, writeInPlace } from "../host/files.js";
import { checkArgv, isRuleStep, removedAlready, restoreFailure, restoreInput } from "../firewall/iptables.js";

export interface Spawned {
  pid: number;
  start: string | null;
}

export interface ExecOptions {
  verbose?: boolean;
  store?: Store;
  /** called after each batch of steps with how many of the plan's steps are done */
  progress?: (done: number) => void;
  /** the state once the plan has run, with its generation: how recovery tells whether it was saved */
  after?: State;
}

/**
 * On disk while a plan runs, enough to roll it back, or forward, if this process dies: the plan itself in
 * journal.json, written once, and its progress in journal.progress.json, rewritten after every batch.
 */
interface Journal extends Progress {
  pid: number;
  pidStart: string | null;
  title: string;
  steps: Step[];
  /** the state's generation once the plan's state is saved: when the state file has it, the plan is done */
  generation?: number;
  /** the state the plan leads to, kept only when the plan has a step no undo brings back: it is then
   * completed towards it. Reversible plans are rolled back instead, and spare writing the whole state. */
  after?: State;
}

interface Progress {
  /** steps [0, started) have been attempted; the last of them may be half done */
  started: number;
  /** where the batch being run began: a batch ctnet runs itself (file steps) dies with it, part done */
  from?: number;
  spawned: Record<string, Spawned>;
  /** the process running the current batch: after a crash it may still be at work */
  child: Spawned | null;
}

const progressFile = (store: Store) => store.journalFile.replace(/\.json$/, "") + ".progress.json";

let interrupted: NodeJS.Signals | null = null;
let inFlight: number | null = null;
function onSignal(sig: NodeJS.Signals) {
  // the first signal lets the running step finish and then rolls back; a second one also stops that step
  if (interrupted && inFlight !== null) {
    try {
      process.kill(inFlight, "SIGTERM");
    } catch {
      /* it just finished */
    }
  }
  interrupted = sig;
  process.stderr.write(`ctnet: ${sig}: rolling back once the current step ends\n`);
}

/**
 * Steps no undo can bring back (stopping processes, deleting links, namespaces, files, rules without an
 * undo). Once one has run, failing or crashing plans are completed instead of undone: half a deletion
 * undone would leave state and kernel disagreeing about what was deleted.
 */
export function irreversible(step: Step): boolean {
  if (step.kind === "kill") return true;
  if (step.kind === "store") return !step.undo && step.success.some((op) => "delete" in op);
  if (step.kind !== "cmd" || step.undo) return false;
  const { argv } = step;
  return argv[0] === "rm" || argv.some((w) => ["del", "delete", "flush", "replace", "-D", "-F", "-X"].includes(w));
}

const pastNoReturn = (steps: Step[], count: number) => steps.slice(0, count).some(irreversible);

// ---- the test hook ---------------------------------------------------------------------------

/**
 * CTNET_TEST_PAUSE_AFTER_STEP=N (tests only; off when unset): the plan stops after exactly N steps
 * (0 = after the journal is written, before any step; batches are cut at N so every step boundary can be
 * reached) and waits for a signal; "commit" pauses after the state file is written but before the journal
 * is closed. Tests kill ctnet there to prove that the next command repairs the host.
 */
const pausePoint = (): string | undefined => process.env.CTNET_TEST_PAUSE_AFTER_STEP || undefined;

export async function testPause(at: string, total?: number): Promise<void> {
  if (pausePoint() !== at) return;
  process.stderr.write(`ctnet: test pause after step ${at}${total === undefined ? "" : ` of ${total}`} (pid ${process.pid})\n`);
  while (!interrupted) await new Promise((r) => setTimeout(r, 20));
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
    child: null,
    ...(opts.after ? { generation: opts.after.generation } : {}),
    ...(opts.after && plan.steps.some(irreversible) ? { after: opts.after } : {}),
  };
  const saveJournal = () =>
    opts.store && writeAtomically(progressFile(opts.store), JSON.stringify({ started: journal.started, from: journal.from, spawned: journal.spawned, child: journal.child }));
  const track = (pid: number) => {
    inFlight = pid;
    journal.child = { pid, start: processStartTime(pid) };
    try {
      saveJournal();
    } catch {
      /* recovery then does not wait for this batch's process: it is short-lived, and the undo follows */
    }
  };
  const pauseAt = Number(pausePoint() ?? NaN);
  interrupted = null;
  if (opts.store) {
    try {
      saveJournal();
      writeJournal(opts.store, journal);
    } catch (err) {
      finishJournal(opts.store);
      throw err;
    }
  }
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    await testPause("0", plan.steps.length);
    let i = 0;
    // removals of what was gone already: done, and not run again when the batch around them is
    const gone = new Set<number>();
    // links a deleted namespace takes along, still going (see the waits below)
    const going: string[] = [];
    const waitAtEnd = async () => {
      const late = going.length > 0 && plan.waitAtEnd ? await waitGone(going) : null;
      if (late) warn(late);
    };
    // finishing step by step may make links again: what is still going must be gone first, not waited
    // for at the end (a veth of the same name, made by the rest of the plan, would never go)
    const rollForwardAfterWaits = async (from: number) => {
      const late = going.length > 0 ? await waitGone(going.splice(0)) : null;
      if (late) warn(late);
      await rollForward(plan.steps, from, journal.spawned, opts.verbose, track);
    };
    while (i < plan.steps.length && !interrupted) {
      if (gone.has(i)) {
        i++;
        continue;
      }
      const waited = waitedPaths(plan.steps[i]);
      if (waited) {
        going.push(...waited);
        i++;
        journal.started = i;
        opts.progress?.(i);
        await testPause(String(i), plan.steps.length);
        continue;
      }
      const window = batchesAt(plan.steps, i, pauseAt > i ? pauseAt : plan.steps.length, gone);
      const group = window.flat();
      // a step that makes a link or namespace may take a name that is still going
      if (going.length > 0 && group.some(makesLinkOrNamespace)) await waitGone(going.splice(0));
      journal.started = i + group.length;
      journal.from = i;
      journal.child = null;
      let failure: Failure | null = null;
      let ran = false;
      try {
        saveJournal();
        for (const step of group) if (opts.verbose) process.stderr.write(`+ ${renderStep(step)}\n`);
        failure = await runWindow(window, journal.spawned, track);
        ran = true;
        inFlight = null;
        if (group[0].kind === "spawn") saveJournal();
      } catch (err: any) {
        // the journal could not be saved (a full disk): what ran is known here, so it is undone here
        const succeeded = ran ? (failure?.succeeded ?? group.length) : 0;
        failure = { command: "save the journal", stderr: err.message, succeeded, culprit: 0 };
      }
      if (failure) {
        const culprit = i + failure.culprit;
        if (alreadyGone(plan.steps[culprit], failure.stderr)) {
          gone.add(culprit);
          i += failure.succeeded;
          continue;
        }
        const done = i + failure.succeeded;
        if (interrupted || !pastNoReturn(plan.steps, done)) {
          await rollback(plan.steps, done, journal.spawned, opts.verbose);
          if (opts.store) finishJournal(opts.store);
          const why = interrupted ? `interrupted by ${interrupted}` : `${failure.command} failed: ${failure.stderr.trim() || "no error output"}`;
          throw new OpError(`${why} (plan "${plan.title}" rolled back)`);
        }
        // the failed step is tried once more on its own, then the rest; each failure is reported
        await rollForwardAfterWaits(done);
        await waitAtEnd();
        return new Map(Object.entries(journal.spawned));
      }
      i += group.length;
      opts.progress?.(i);
      await testPause(String(i), plan.steps.length);
    }
    if (interrupted && !pastNoReturn(plan.steps, i)) {
      await rollback(plan.steps, i, journal.spawned, opts.verbose);
      if (opts.store) finishJournal(opts.store);
      throw new OpError(`interrupted by ${interrupted}: plan "${plan.title}" rolled back`);
    }
    // a plan past its point of no return is finished even when interrupted: it cannot be undone
    if (i < plan.steps.length) await rollForwardAfterWaits(i);
    await waitAtEnd();
    return new Map(Object.entries(journal.spawned));
  } finally {
    inFlight = null;
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function warn(failure: Failure): void {
  process.stderr.write(`ctnet: warning: ${failure.command} failed: ${failure.stderr.trim() || "no error output"} (the plan had deleted something already, so it was completed)\n`);
}

/**
 * Runs steps [from, end), going on past failures (each is reported, unless it removed what was gone): a
 * batch that fails is run again step by step from where it stopped, so every step is tried once on its
 * own. Recovery passes `rerun`, the end of the batch a dead command may have left half done: those steps
 * run one by one, quietly, and an iptables rule is added only when the kernel does not hold it already.
 */
async function rollForward(steps: Step[], from: number, spawned: Record<string, Spawned>, verbose: boolean | undefined, track?: Track, rerun = from): Promise<void> {
  let i = from;
  const report = (step: Step, failure: Failure | null) => failure && !alreadyGone(step, failure.stderr) && warn(failure);
  for (; i < rerun && i < steps.length; i++) {
    const step = steps[i];
    if (verbose) process.stderr.write(`+ ${renderStep(step)}\n`);
    const check = step.kind === "cmd" ? checkArgv(step.argv) : null;
    if (check && (await runAsync(check).catch(() => null))?.code === 0) continue;
    await runSingle(step, spawned, track);
  }
  while (i < steps.length) {
    const group = batchAt(steps, i, steps.length);
    for (const step of group) if (verbose) process.stderr.write(`+ ${renderStep(step)}\n`);
    const failure = group.length > 1 ? await runGroup(group, spawned, track) : null;
    if (group.length > 1 && !failure) {
      i += group.length;
      continue;
    }
    for (const step of group.slice(failure?.succeeded ?? 0)) report(step, await runSingle(step, spawned, track));
    i += group.length;
  }
}

/** What the kernel says when a step re-adds what is there already. */
const EXISTS = /File exists|already assigned|already exists/;

/**
 * Whether a failed step removed something that was gone already (deleted by hand, or by an earlier try):
 * the removal's purpose is met, so it counts as done, not as a failure.
 */
export function alreadyGone(step: Step, stderr: string): boolean {
  if (step.kind !== "cmd") return false;
  const { argv } = step;
  if (argv[0] === "ip") {
    const removes = argv.some((w) => w === "del" || w === "delete");
    return removes && /Cannot find device|No such file or directory|Address not found|Cannot assign requested address|No such process/.test(stderr);
  }
  if (argv[0] === "iptables") return removedAlready(argv, stderr);
  return false;
}

/** Called once the new state is on disk: the plan is now part of history, not in flight. */
export function finishJournal(store: Store): void {
  fs.rmSync(store.journalFile, { force: true });
  fs.rmSync(progressFile(store), { force: true });
}

function writeJournal(store: Store, journal: Journal): void {
  const { started: _s, spawned: _p, child: _c, after, ...plan } = journal;
  // the state goes in as text put together from its records' lines (statefile.ts), not re-serialised
  writeAtomically(store.journalFile, after ? `${JSON.stringify(plan).slice(0, -1)},"after":${stateJson(after)}}` : JSON.stringify(plan));
}

/**
 * A crash mid-write must not leave a journal nobody can read: write aside, then rename into place. A full
 * disk is a one-line error, and leaves no temp file.
 */
function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  try {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeFileSync(fd, text);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err: any) {
    fs.rmSync(tmp, { force: true });
    throw new OpError(`cannot write ${file}: ${err.code === "ENOSPC" ? "no space left on device" : err.message}`);
  }
}

/**
 * A plan that ran but whose state could not be saved: rolled back when it can be, and the journal removed;
 * otherwise (it deleted something) the journal stays, and the next command completes it and saves its
 * state. Returns what was done, for the error message.
 */
export async function abandon(plan: Plan, spawned: Map<string, Spawned>, store: Store): Promise<string> {
  if (plan.steps.some(irreversible)) return "the plan ran; the next ctnet command saves its state once there is room";
  await rollback(plan.steps, plan.steps.length, Object.fromEntries(spawned));
  finishJournal(store);
  return `plan "${plan.title}" rolled back`;
}

export interface PendingPlan {
  title: string;
  pid: number;
  started: number;
  total: number;
  /** what recovery will do with it */
  action: "roll back" | "complete" | "close";
}

/** The unfinished plan of a dead invocation, if any; throws when the journal cannot be read. */
export function pendingPlan(store: Store): PendingPlan | null {
  const journal = readJournal(store);
  if (!journal || (journal.pid !== process.pid && processAlive(journal.pid, journal.pidStart))) return null;
  const action = stateSaved(store, journal) ? "close" : journal.after && pastNoReturn(journal.steps, journal.started) ? "complete" : "roll back";
  return { title: journal.title, pid: journal.pid, started: journal.started, total: journal.steps.length, action };
}

/** Whether the plan's state was saved before its process died (only the journal's removal was left). */
const stateSaved = (store: Store, journal: Journal) => journal.generation !== undefined && store.read().generation === journal.generation;

function readJournal(store: Store): Journal | null {
  let text: string;
  try {
    text = fs.readFileSync(store.journalFile, "utf8");
  } catch (err: any) {
    if (err.code === "ENOENT") return null;
    throw new OpError(`cannot read journal ${store.journalFile}: ${err.message}`);
  }
  try {
    const journal = JSON.parse(text) as Journal;
    if (!Array.isArray(journal.steps) || typeof journal.title !== "string") throw new Error("not a ctnet journal");
    let progress: Progress = { started: 0, spawned: {}, child: null };
    try {
      progress = JSON.parse(fs.readFileSync(progressFile(store), "utf8"));
    } catch (err: any) {
      // written before the journal, so only a journal of a plan that saved no progress yet lacks it
      if (err.code !== "ENOENT") throw new Error(`its progress file: ${err.message}`);
    }
    return { ...journal, ...progress };
  } catch (err: any) {
    throw new OpError(
      `journal ${store.journalFile} of an interrupted plan is unreadable (${err.message}): ` +
        "see what it left with 'ctnet doctor' and clean up with 'ctnet doctor --fix'",
    );
  }
}

/**
 * If a previous invocation died in the middle of a plan, undo what it did, or finish it when it was past
 * its point of no return (then its state is saved). Returns the plan's title when there was one. Must be
 * called with the lock held. `discardUnreadable` (doctor --fix) drops a journal that cannot be parsed.
 */
export async function recoverJournal(store: Store, verbose = false, discardUnreadable = false): Promise<string | null> {
  let journal: Journal | null;
  try {
    journal = readJournal(store);
  } catch (err) {
    if (!discardUnreadable) throw err;
    process.stderr.write(`ctnet: ${(err as Error).message.split(":")[0]}: discarded\n`);
    finishJournal(store);
    return null;
  }
  if (!journal) return null;
  if (journal.pid !== process.pid && processAlive(journal.pid, journal.pidStart)) return null;
  await waitForExit(journal.child);
  const spawned = journal.spawned ?? {};
  if (stateSaved(store, journal)) {
    // the plan ran and its state was saved: only removing the journal was left
  } else if (journal.after && pastNoReturn(journal.steps, journal.started)) {
    // the batch that was running may have stopped anywhere in it: each of its steps is run again, those
    // that were done failing harmlessly (iptables rules are checked first: adding one twice would not
    // fail), then the rest of the plan
    const from = journal.from ?? journal.started - 1;
    await rollForward(journal.steps, Math.max(from, 0), spawned, verbose, undefined, journal.started);
    for (const [name, proc] of Object.entries(spawned)) {
      const c = journal.after.containers[name];
      if (c) Object.assign(c, { pid: proc.pid, pidStart: proc.start });
    }
    store.write(journal.after);
  } else {
    await rollback(journal.steps, journal.started, spawned, verbose, true);
  }
  finishJournal(store);
  process.stderr.write(`ctnet: recovered the interrupted plan "${journal.title}" of pid ${journal.pid}\n`);
  return journal.title;
}

/** A command the dead invocation started may still be running: let it end before undoing its work. */
async function waitForExit(child: Spawned | null): Promise<void> {
  if (!child) return;
  const deadline = Date.now() + 10_000;
  while (processAlive(child.pid, child.start) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (processAlive(child.pid, child.start)) await killAll([child.pid], "SIGKILL");
}

// ---- batching --------------------------------------------------------------------------------

/** The key under which consecutive steps may share one process, or null when a step runs alone. */
function batchKey(step: Step): string | null {
  // file steps run inside ctnet: one journal save for a run of them instead of one each
  if (step.kind === "write" || step.kind === "link" || (step.kind === "cmd" && plainRemoval(step.argv))) return "files";
  // container processes in namespaces: one journal save before and one after a run of them (a crash in
  // between loses their pids, but rollback finds them by their namespace)
  if (step.kind === "spawn" && step.argv[0] === "ip" && step.argv[1] === "netns" && step.argv[2] === "exec") return "spawns";
  if (step.kind !== "cmd") return null;
  const [prog, ...args] = step.argv;
  if (prog === "ip") return args[0] === "-n" ? `ip -n ${args[1]}` : "ip";
  // every table: iptables-restore takes one section per table, in plan order
  if (isRuleStep(step.argv)) return "iptables";
  return null;
}

/**
 * The batch starting at step i, ending before step `end` at the latest (the test hook cuts batches) and
 * before any step in `done` (removals found done already).
 */
function batchAt(steps: Step[], i: number, end: number, done?: Set<number>): Step[] {
  const key = batchKey(steps[i]);
  if (key === null) return [steps[i]];
  let j = i + 1;
  while (j < end && !done?.has(j) && batchKey(steps[j]) === key) j++;
  return steps.slice(i, j);
}

/** How many namespaces' `ip -n NS -batch` run at once: each is mostly process start-up, on any core. */
const NS_BATCHES_AT_ONCE = 4;

/** A batch of commands inside one namespace that no undo refers to: it may run beside others like it. */
function independentNsBatch(group: Step[]): string | null {
  const key = batchKey(group[0]);
  if (!key?.startsWith("ip -n ")) return null;
  return group.every((s) => s.kind === "cmd" && s.undo === null && !irreversible(s)) ? key : null;
}

/**
 * The batches to run next: one, or up to NS_BATCHES_AT_ONCE consecutive independent namespace batches
 * (up's 100 containers each configure their own namespace), which then run at the same time.
 */
function batchesAt(steps: Step[], i: number, end: number, done: Set<number>): Step[][] {
  const first = batchAt(steps, i, end, done);
  const window = [first];
  const seen = new Set([independentNsBatch(first)]);
  if (seen.has(null)) return window;
  for (let j = i + first.length; j < end && window.length < NS_BATCHES_AT_ONCE; ) {
    if (done.has(j)) break;
    const next = batchAt(steps, j, end, done);
    const key = independentNsBatch(next);
    if (key === null || seen.has(key)) break;
    seen.add(key);
    window.push(next);
    j += next.length;
  }
  return window;
}

/** Runs the batches of a window together; the first failure in plan order counts from the window's start. */
async function runWindow(window: Step[][], spawned: Record<string, Spawned>, track?: Track): Promise<Failure | null> {
  if (window.length === 1) return runGroup(window[0], spawned, track);
  const results = await Promise.all(window.map((group) => runGroup(group, spawned, track)));
  let offset = 0;
  for (const [k, group] of window.entries()) {
    const failure = results[k];
    if (failure) return { ...failure, succeeded: offset + failure.succeeded, culprit: offset + failure.culprit };
    offset += group.length;
  }
  return null;
}

/** ip -batch words: quote those with blanks or quotes. */
const batchWord = (w: string) => (/[\s"'\\]/.test(w) ? `"${w.replace(/["\\]/g, "\\$&")}"` : w);

interface Failure {
  command: string;
  stderr: string;
  /** how many steps of the group took effect before the failure */
  succeeded: number;
  /** the step of the group that failed (after `succeeded` when its whole iptables table section failed) */
  culprit: number;
}

type Track = (pid: number) => void;

async function runGroup(group: Step[], spawned: Record<string, Spawned>, track?: Track): Promise<Failure | null> {
  const key = batchKey(group[0]);
  if (group.length === 1 && !key?.startsWith("ip -n ")) return runSingle(group[0], spawned, track);
  if (key === "files" || key === "spawns") {
    for (const [k, step] of group.entries()) {
      const failure = await runSingle(step, spawned, track);
      if (failure) return { ...failure, succeeded: k, culprit: k };
    }
    return null;
  }
  const cmds = group as CmdStep[];
  if (cmds[0].argv[0] === "ip") {
    const ns = cmds[0].argv[1] === "-n" ? cmds[0].argv[2] : null;
    const input = cmds.map((s) => s.argv.slice(ns ? 3 : 1).map(batchWord).join(" ")).join("\n") + "\n";
    // what `ip -n NS` does, minus the copy of the mount table it makes (to remount /sys): with 1000
    // namespaces mounted that copy costs 10 ms, and these commands never read /sys
    const argv = ns ? ["nsenter", `--net=${netnsPath(ns)}`, "ip", "-batch", "-"] : ["ip", "-batch", "-"];
    const res = await runAsync(argv, input, track);
    if (res.code === 0) return null;
    // ip stops at the first failing line and names it: "Command failed -:N"
    const line = /Command failed -:(\d+)/.exec(res.stderr)?.[1];
    if (line) return { command: shJoin(cmds[Number(line) - 1].argv), stderr: res.stderr.replace(/Command failed -:\d+\s*/, ""), succeeded: Number(line) - 1, culprit: Number(line) - 1 };
    return findFailedLine(cmds, spawned, track);
  }
  const argvs = cmds.map((s) => s.argv);
  const layout = restoreInput(argvs);
  const res = await runAsync(["iptables-restore", "-w", "--noflush"], layout.input, track);
  if (res.code === 0) return null;
  const { culprit, succeeded, message } = restoreFailure(argvs, layout, res.stderr);
  return { command: shJoin(cmds[culprit].argv), stderr: message, succeeded, culprit };
}

/**
 * An `ip -batch` that failed without naming its line (ip exits at once on some errors, such as a master
 * device that does not exist): its lines ran in order up to the failing one. Running them again one by one
 * finds it: a line that was done fails with "exists" (or changes nothing), a line that was not is done now,
 * and the first other failure is the culprit, with every line before it done.
 */
async function findFailedLine(cmds: CmdStep[], spawned: Record<string, Spawned>, track?: Track): Promise<Failure> {
  for (const [k, step] of cmds.entries()) {
    const failure = await runSingle(step, spawned, track);
    if (failure && !EXISTS.test(failure.stderr)) return { ...failure, succeeded: k, culprit: k };
  }
  return { command: shJoin(cmds[cmds.length - 1].argv), stderr: "ip -batch failed without naming the failing line, and every line succeeded on its own", succeeded: cmds.length, culprit: cmds.length - 1 };
}


async function runSingle(step: Step, spawned: Record<string, Spawned>, track?: Track): Promise<Failure | null> {
  switch (step.kind) {
    case "cmd": {
      const waited = waitedPaths(step);
      if (waited) return waitGone(waited);
      const files = plainRemoval(step.argv);
      if (files) {
        // what `rm -f FILE…` does, without a process: spawning one costs more than the removal
        for (const file of files) fs.rmSync(file, { force: true });
        return null;
      }
      // a program that cannot be started is a failed step like any other: the plan is rolled back
      const res: RunResult = await runAsync(step.argv, undefined, track).catch((err: Error) => ({ code: 127, stdout: "", stderr: err.message }));
      return res.code === 0 || res.code === step.alsoOk ? null : { command: shJoin(step.argv), stderr: res.stderr, succeeded: 0, culprit: 0 };
    }
    case "write":
      try {
        writeInPlace(step.path, step.content);
        return null;
      } catch (err: any) {
        return { command: `write ${step.path}`, stderr: err.message, succeeded: 0, culprit: 0 };
      }
    case "link":
      try {
        linkInPlace(step.path, step.target);
        return null;
      } catch (err: any) {
        return { command: `ln -sfn ${step.target} ${step.path}`, stderr: err.message, succeeded: 0, culprit: 0 };
      }
    case "spawn":
      try {
        spawned[step.container] = spawnDetached(step.argv, step.log);
        return null;
      } catch (err: any) {
        return { command: shJoin(step.argv), stderr: err.message, succeeded: 0, culprit: 0 };
      }
    case "kill":
      await killAll(step.pids, step.signal, step.graceSeconds === undefined ? undefined : step.graceSeconds * 1000);
      return null;
    case "store": {
      const error = await (await import("../cluster/etcd.js")).storeTxn(step.store, step.compare, step.success);
      return error === null ? null : { command: `the store transaction to ${step.why}`, stderr: error, succeeded: 0, culprit: 0 };
    }
  }
}

/**
 * A wait for links a deleted namespace takes along (sandbox.ts deleteNamespace). The kernel removes them
 * in the background after an RCU grace period, some 40 ms; waiting for each namespace in turn made `down`
 * of 100 containers take 4 s. So the executor joins the waits of a plan: it waits once, for all the links
 * gone so far, before the next step that makes a link or namespace (it may take one of their names), and
 * at the end of the plan, unless the plan leaves that to whichever later command needs a name
 * (Plan.waitAtEnd: a single `rm -f`, see attachEndpoints). These are the steps that may take such a name.
 */
function makesLinkOrNamespace(step: Step): boolean {
  if (step.kind !== "cmd" || step.argv[0] !== "ip") return false;
  const args = step.argv[1] === "-n" ? step.argv.slice(3) : step.argv.slice(1);
  return (args[0] === "link" || args[0] === "netns") && args[1] === "add";
}

const WAIT_GONE_MS = 10_000;

/** What the WAIT_GONE script does, polling in-process: the links go within milliseconds. */
async function waitGone(paths: string[]): Promise<Failure | null> {
  const deadline = Date.now() + WAIT_GONE_MS;
  for (const p of paths) {
    while (fs.existsSync(p)) {
      if (Date.now() > deadline) return { command: `wait for ${p} to go`, stderr: `still there after ${WAIT_GONE_MS / 1000} s`, succeeded: 0, culprit: 0 };
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  return null;
}

/** The files of `rm -f FILE…` (absolute paths, none a directory), or null for any other command. */
function plainRemoval(argv: string[]): string[] | null {
  if (argv[0] !== "rm" || argv[1] !== "-f" || argv.length < 3) return null;
  const files = argv.slice(2);
  return files.every((f) => f.startsWith("/") && !fs.lstatSync(f, { throwIfNoEntry: false })?.isDirectory()) ? files : null;
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
export async function killAll(pids: number[], signal: NodeJS.Signals, graceMs = STOP_GRACE_MS): Promise<void> {
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
  const deadline = Date.now() + graceMs;
  const alive = () => pids.filter((pid) => processAlive(pid, null));
  while (alive().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const pid of alive()) send(pid, "SIGKILL");
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
      const res = await runAsync(step.undo).catch((err: Error) => ({ code: 127, stdout: "", stderr: err.message }));
      if (res.code !== 0 && !afterCrash) {
        process.stderr.write(`ctnet: undo failed: ${shJoin(step.undo)}: ${res.stderr.trim()}\n`);
      }
    } else if (step.kind === "write" || step.kind === "link") {
      try {
        if (step.kind === "write") writeInPlace(step.path, step.previous);
        else linkInPlace(step.path, step.previous);
      } catch (err: any) {
        if (!afterCrash) process.stderr.write(`ctnet: undo failed: restore ${step.path}: ${err.message}\n`);
      }
    } else if (step.kind === "store" && step.undo) {
      if (verbose) process.stderr.write(`+ ${renderUndo(step)}   # undo\n`);
      const error = await (await import("../cluster/etcd.js")).storeTxn(step.store, [], step.undo);
      if (error && !afterCrash) process.stderr.write(`ctnet: undo failed: the store transaction to ${step.why}: ${error}\n`);
    } else if (step.kind === "spawn") {
      const proc = spawned[step.container];
      if (proc && processAlive(proc.pid, proc.start)) await killAll([proc.pid], "SIGKILL");
      // killed between starting the process and journaling its pid: its namespace still names it
      else if (!proc && step.argv[0] === "ip" && step.argv[1] === "netns" && step.argv[2] === "exec") {
        const pids = (await runAsync(["ip", "netns", "pids", step.argv[3]])).stdout.split(/\s+/).filter(Boolean).map(Number);
        await killAll(pids, "SIGKILL");
      }
    }
  }
}
