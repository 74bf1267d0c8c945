// A container's main process: where its output and exit status go, starting it detached, and freeing it
// from the freezer. Shared by run and rm (containers.ts) and the lifecycle commands (lifecycle.ts).
import fs from "node:fs";
import path from "node:path";
import { processArgv } from "../host/sandbox.js";
import { processAlive } from "../store/store.js";
import type { Plan } from "../plan/plan.js";
import type { Spawned } from "../plan/executor.js";
import type { ContainerRecord, State } from "../model.js";

export const isRunning = (c: ContainerRecord) => c.pid !== null && processAlive(c.pid, c.pidStart);

export const logPath = (stateDir: string, name: string) => path.join(stateDir, "logs", `${name}.log`);

export function recordProcess(c: ContainerRecord, proc: Spawned | undefined): void {
  c.pid = proc?.pid ?? null;
  c.pidStart = proc?.start ?? null;
}

/** Where a container's exit recorder writes its status: by id, so a rename leaves it where it is. */
export const exitPath = (stateDir: string, c: Pick<ContainerRecord, "id">) => path.join(stateDir, "logs", `${c.id}.exit`);

export interface ExitRecord {
  code: number;
  /** ISO time; when the recorder left nothing, the time ctnet found it gone */
  finishedAt: string;
}

/**
 * How a process that is no longer running ended: its recorder's file (its mtime is the end), else 137 —
 * the recorder outlives every signal but SIGKILL, which ends the whole process group, command included.
 */
export function readExit(stateDir: string, c: ContainerRecord): ExitRecord {
  const file = exitPath(stateDir, c);
  try {
    const code = Number(fs.readFileSync(file, "utf8").trim());
    return { code: Number.isInteger(code) ? code : 137, finishedAt: fs.statSync(file).mtime.toISOString() };
  } catch {
    return { code: 137, finishedAt: new Date().toISOString() };
  }
}

/** The last exit as the state holds it, or as the file says when it is not folded in yet. */
export function lastExit(stateDir: string, c: ContainerRecord, running: boolean): ExitRecord | null {
  if (running) return null;
  if (c.pid !== null) return readExit(stateDir, c);
  return c.exitCode === undefined ? null : { code: c.exitCode, finishedAt: c.finishedAt ?? "" };
}

const envPairs = (c: ContainerRecord) => Object.entries(c.env).map(([k, v]) => `${k}=${v}`);

/** Starts the container's process detached, its exit recorded; with --rm, the watcher that removes it. */
export function spawnMain(plan: Plan, state: State, stateDir: string, c: ContainerRecord, previousExit: boolean): void {
  const exit = exitPath(stateDir, c);
  // the file is written by the stop earlier in the same plan (restart), so it is removed blind: no undo
  if (previousExit) plan.cmd(["rm", "-f", exit], `forget ${c.name}'s last exit status`, null);
  plan.spawn(processArgv(state, c, c.command, envPairs(c), true, exit), c.name, logPath(stateDir, c.name), `start ${c.name}'s process: ${c.command.join(" ")}`);
  if (c.autoRemove) {
    // no daemon to notice the exit: a watcher from this same ctnet does it (autoremove.ts)
    const watcher = [process.execPath, process.argv[1], "--state-dir", stateDir, "autoremove", c.id];
    plan.spawn(watcher, `${c.name}'s --rm watcher`, logPath(stateDir, c.name), `remove ${c.name} once its process ends (--rm)`);
  }
}

/**
 * cgroup v1's freezer hierarchy, where this host has one: a paused container's processes are moved into
 * a cgroup of ctnet's (by id) and frozen; unpause thaws them, moves them back and removes the cgroup, so
 * the cgroup exists only while the container is paused.
 */
export const FREEZER_ROOT = "/sys/fs/cgroup/freezer";
export const freezerDir = (c: ContainerRecord) => `${FREEZER_ROOT}/ctnet/${c.id}`;
/** fixed sh: writes each pid argument to the file named first (a cgroup takes one pid per write) */
export const MOVE_IN = 'f=$1; shift; for p; do echo "$p" > "$f"; done';
/** fixed sh: thaws cgroup $1, moves its processes to cgroup.procs file $2, removes it, and ctnet's parent cgroup once empty */
export const THAW_OUT = '[ -d "$1" ] || exit 0; echo THAWED > "$1/freezer.state" && for p in $(cat "$1/cgroup.procs"); do echo "$p" > "$2"; done && rmdir "$1" && rmdir --ignore-fail-on-non-empty "${1%/*}"';

/** Unpauses (stop, kill and rm -f of a paused container too: a frozen process takes SIGKILL only once thawed). */
export function thaw(plan: Plan, c: ContainerRecord): void {
  if (!c.paused) return;
  plan.cmd(["sh", "-c", THAW_OUT, "sh", freezerDir(c), `${FREEZER_ROOT}/cgroup.procs`], `thaw ${c.name}, its processes back where they were, its freezer cgroup removed`, null);
  delete c.paused;
}
