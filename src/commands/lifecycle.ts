// A container's life after `run`, as Docker's commands shape it: create, start, stop, restart, kill,
// rename, pause/unpause, wait. Without a daemon, a detached process's exit status is written by the shell
// that starts it (EXIT_RECORDER in sandbox.ts) to a file ctnet reads when it next looks. Stopping releases
// the container's endpoints as Docker does (its names stop resolving, its addresses are free again) with
// the planners `net disconnect` uses, and start brings them back with those of `net connect`, so whatever
// those do for an endpoint (names, name servers, ports) a stop and a start do too.
import fs from "node:fs";
import { UsageError } from "../errors.js";
import { validateName } from "../naming.js";
import { netnsExists } from "../host/sys.js";
import { EXIT_RECORDER, forgetSubPlans, namespacePids, noteSubPlan } from "../host/sandbox.js";
import { syncNames } from "../dns/names.js";
import { keepOneServerControl } from "../dns/planned.js";
import { installPorts, portLayer, retirePorts } from "../firewall/ports.js";
import { findContainer, planConnect, planDisconnect } from "./networks.js";
import { overlayToJoin } from "../cluster/claims.js";
import { exitPath, FREEZER_ROOT, freezerDir, isRunning, lastExit, logPath, MOVE_IN, readExit, recordProcess, spawnMain, thaw, THAW_OUT } from "./process.js";
import { Plan, WAIT_GONE } from "../plan/plan.js";
import { containerDigests } from "../store/statefile.js";
import type { Outcome } from "../plan/core.js";
import type { ContainerRecord, State } from "../model.js";
import type { InspectFacts } from "../views/containers.js";

/** Docker's default for stop -t */
export const STOP_TIMEOUT_S = 10;


/** Moves an ended process's exit from its file into the record (before the file is reused by a start). */
function foldExit(stateDir: string, c: ContainerRecord): void {
  if (c.pid === null || isRunning(c)) return;
  const exit = readExit(stateDir, c);
  c.exitCode = exit.code;
  c.finishedAt = exit.finishedAt;
  recordProcess(c, undefined);
}

/** A planner's plan appended to the command's, and noted so the next planner sees what it leaves. */
function appendSub(plan: Plan, sub: Plan): void {
  plan.append(sub);
  noteSubPlan(sub);
}

/** A plan over several containers, built from sub-plans; what they noted is forgotten once it is made. */
function planning<T extends Plan | { plan: Plan }>(build: () => T): T {
  try {
    const out = build();
    const { steps } = out instanceof Plan ? out : out.plan;
    const keep = keepOneServerControl(steps);
    steps.splice(0, steps.length, ...steps.filter((_, i) => keep[i]));
    return out;
  } finally {
    forgetSubPlans();
  }
}

// ---- endpoints ---------------------------------------------------------------------------------

/**
 * Releases every endpoint, last first (the default route's network goes last, so no route is moved on
 * the way), remembering each network with what was asked for on it. Published ports stay the
 * container's (their host ports stay reserved for it) while their rules go with the endpoint.
 */
function releaseEndpoints(plan: Plan, state: State, c: ContainerRecord): void {
  if (c.endpoints.length === 0) return;
  const ports = c.ports;
  const released = c.endpoints.map((ep) => ({ network: ep.network, aliases: ep.aliases, ...(ep.requested ? { requested: ep.requested } : {}) }));
  for (const ep of [...c.endpoints].reverse()) appendSub(plan, planDisconnect(state, ep.network, c.name));
  // after the disconnects: a container with released networks is a stopped one to them (net connect, disconnect)
  c.released = [...(c.released ?? []), ...released];
  c.ports = ports;
}

/** Joins the released networks again, in their order; an address given with --ip comes back the same. */
function rejoinNetworks(plan: Plan, state: State, c: ContainerRecord): void {
  const released = c.released;
  if (!released) return;
  for (const r of released) {
    if (r.network !== "bridge" && !state.networks[r.network] && !overlayToJoin(state, r.network)) throw new UsageError(`cannot start ${c.name}: network ${r.network} not found`);
  }
  const portsBefore = portLayer(state);
  delete c.released;
  for (const r of released) {
    appendSub(plan, planConnect(state, r.network, c.name, { ip: r.requested?.ip, aliases: r.aliases, mac: r.requested?.mac }));
  }
  installPorts(plan, state, portsBefore, portLayer(state));
}

// ---- processes ---------------------------------------------------------------------------------


/**
 * After the main process (its group signalled by the step before), the other processes of the container's
 * namespace, as Docker's end with its first process — unless another container shares the namespace.
 */
function stopStrays(plan: Plan, state: State, c: ContainerRecord): void {
  if (c.mode !== "bridge" && c.mode !== "none") return;
  if (containerDigests(state).some((o) => o.mode === "container" && state.containers[o.name].joined === c.name)) return;
  const strays = namespacePids(c.netns!).filter((pid) => pid !== c.pid);
  plan.kill(strays, "SIGKILL", `stop the other processes in ${c.name}'s namespace, as its main process is gone`);
}

function stopOne(plan: Plan, state: State, stateDir: string, c: ContainerRecord, seconds: number): boolean {
  const running = isRunning(c);
  if (running) {
    thaw(plan, c);
    // the recorder passes SIGTERM to nobody: the process group has it, the command included
    plan.kill([c.pid!], "SIGTERM", `stop ${c.name}'s process (SIGKILL after ${seconds} s)`, seconds);
    stopStrays(plan, state, c);
  }
  releaseEndpoints(plan, state, c);
  return running;
}

function startOne(plan: Plan, state: State, stateDir: string, c: ContainerRecord, restarting: boolean): void {
  if (!restarting && isRunning(c)) {
    if (c.paused) throw new UsageError(`cannot start a paused container ${c.name}, try unpause instead`);
    return;
  }
  if (c.mode === "container") {
    const owner = state.containers[c.joined!];
    if (!owner || !isRunning(owner)) throw new UsageError(`cannot start ${c.name}: container ${c.joined}, whose network it joins, is not running`);
  }
  if (c.netns && (c.mode === "bridge" || c.mode === "none") && !netnsExists(c.netns)) {
    throw new UsageError(`cannot start ${c.name}: its namespace ${c.netns} is gone (a reboot?): run 'ctnet doctor --fix', then rm and run it again`);
  }
  const previousExit = restarting || c.pid !== null || fs.existsSync(exitPath(stateDir, c));
  foldExit(stateDir, c);
  rejoinNetworks(plan, state, c);
  spawnMain(plan, state, stateDir, c, previousExit);
}

/** Records the processes a plan started, and when. */
function committing(state: State, names: string[]): Outcome<void>["commit"] {
  return (spawned) => {
    const now = new Date().toISOString();
    for (const name of names) {
      const proc = spawned.get(name);
      if (!proc) continue;
      recordProcess(state.containers[name], proc);
      state.containers[name].startedAt = now;
      delete state.containers[name].paused;
      delete state.containers[name].notStarted;
    }
  };
}

/** A foreground `run` whose process ended: ctnet saw it end, so its exit is recorded and its endpoints released. */
export function planExited(state: State, c: ContainerRecord, code: number): Plan {
  return planning(() => {
    const plan = new Plan(`${c.name} exited`);
    recordProcess(c, undefined);
    c.exitCode = code;
    c.finishedAt = new Date().toISOString();
    releaseEndpoints(plan, state, c);
    return plan;
  });
}

// ---- commands ----------------------------------------------------------------------------------

export function planStart(state: State, stateDir: string, terms: string[]): Outcome<void> {
  return planning(() => {
    const plan = new Plan(`start ${terms.join(" ")}`);
    const names = terms.map((t) => findContainer(state, t).name);
    for (const name of names) startOne(plan, state, stateDir, state.containers[name], false);
    return { plan, commit: committing(state, names) };
  });
}

/** After a plan that ended processes: their exits go into the records, so listing them reads no file. */
const foldingExits = (stateDir: string, stopped: ContainerRecord[]) => () => stopped.forEach((c) => foldExit(stateDir, c));

export function planStop(state: State, stateDir: string, terms: string[], seconds = STOP_TIMEOUT_S): Outcome<void> {
  return planning(() => {
    const plan = new Plan(`stop ${terms.join(" ")}`);
    const stopped = terms.map((term) => findContainer(state, term));
    for (const c of stopped) stopOne(plan, state, stateDir, c, seconds);
    return { plan, commit: foldingExits(stateDir, stopped) };
  });
}

export function planRestart(state: State, stateDir: string, terms: string[], seconds = STOP_TIMEOUT_S): Outcome<void> {
  return planning(() => {
    const plan = new Plan(`restart ${terms.join(" ")}`);
    const names = terms.map((t) => findContainer(state, t).name);
    for (const name of names) {
      const c = state.containers[name];
      const wasRunning = stopOne(plan, state, stateDir, c, seconds);
      startOne(plan, state, stateDir, c, wasRunning);
    }
    return { plan, commit: committing(state, names) };
  });
}

/** Docker's signal names: KILL, SIGKILL, 9. */
export function parseSignal(text: string): string {
  const upper = text.toUpperCase();
  if (/^\d+$/.test(text)) {
    const name = Object.entries(SIGNALS).find(([, n]) => String(n) === text)?.[0];
    if (!name) throw new UsageError(`invalid signal: ${text}`);
    return name;
  }
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  if (!(name in SIGNALS)) throw new UsageError(`invalid signal: ${text}`);
  return name;
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11,
  SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22,
  SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29, SIGPWR: 30, SIGSYS: 31,
};

/** The command a container's exit recorder runs (its only child), or the main process itself when it has none. */
function commandPid(c: ContainerRecord): number {
  const pid = c.pid!;
  const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  if (!cmdline.includes(EXIT_RECORDER)) return pid;
  const child = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ")[0];
  return child ? Number(child) : pid;
}

/**
 * `kill [-s SIG]`: SIGKILL (the default) ends the container as stop does, endpoints released; another
 * signal goes to the command alone, as Docker sends it to the container's first process.
 */
export function planKill(state: State, stateDir: string, terms: string[], signal = "SIGKILL"): Outcome<void> {
  return planning(() => {
    const plan = new Plan(`kill ${terms.join(" ")}`);
    const killed: ContainerRecord[] = [];
    for (const term of terms) {
      const c = findContainer(state, term);
      if (signal === "SIGKILL") killed.push(c);
      if (!isRunning(c)) throw new UsageError(`cannot kill container ${c.name}: it is not running`);
      if (signal === "SIGKILL") {
        thaw(plan, c);
        plan.kill([c.pid!], "SIGKILL", `kill ${c.name}'s process`);
        // SIGKILL is not waited for: the plan ends when it is gone, so its exit is recorded then
        plan.cmd(["sh", "-c", WAIT_GONE, "sh", `/proc/${c.pid}`], `wait until ${c.name}'s process is gone`, null);
        stopStrays(plan, state, c);
        releaseEndpoints(plan, state, c);
      } else {
        const pid = commandPid(c);
        plan.cmd(["kill", "-s", signal.slice(3), String(pid)], `send ${signal} to ${c.name}'s command (process ${pid})`, null);
      }
    }
    return { plan, commit: foldingExits(stateDir, killed) };
  });
}

/** `rename OLD NEW`: the container's names change on every network; its namespace and hostname stay. */
export function planRename(state: State, stateDir: string, term: string, newName: string): Plan {
  const c = findContainer(state, term);
  const old = c.name;
  if (newName === old) throw new UsageError(`renaming a container with the same name as its current name: ${old}`);
  validateName("container", newName);
  if (state.containers[newName]) throw new UsageError(`container name ${newName} is already in use`);
  const plan = new Plan(`rename ${old} ${newName}`);
  const portsBefore = portLayer(state);
  const joiners = containerDigests(state).filter((o) => o.mode === "container" && state.containers[o.name].joined === old).map((o) => o.name);
  delete state.containers[old];
  c.name = newName;
  state.containers[newName] = c;
  for (const j of joiners) state.containers[j].joined = newName;
  // port rules carry the container's name in their comments
  const portsAfter = portLayer(state);
  retirePorts(plan, state, portsBefore, portsAfter);
  installPorts(plan, state, portsBefore, portsAfter);
  // its names on every network, and its own files (its hosts file lists its name)
  syncNames(plan, state, c);
  const [from, to] = [logPath(stateDir, old), logPath(stateDir, newName)];
  if (fs.existsSync(from)) plan.cmd(["mv", from, to], `${old}'s log is ${newName}'s now`, ["mv", to, from]);
  return plan;
}

// ---- pause ---------------------------------------------------------------------------------------


/** Every process of a container: its namespace's (own namespace), else its main process. */
function containerProcesses(c: ContainerRecord): number[] {
  if (c.mode === "bridge" || c.mode === "none") return namespacePids(c.netns!);
  return [c.pid!];
}

export function planPause(state: State, terms: string[]): Plan {
  const plan = new Plan(`pause ${terms.join(" ")}`);
  for (const term of terms) {
    const c = findContainer(state, term);
    if (!isRunning(c)) throw new UsageError(`container ${c.name} is not running`);
    if (c.paused) throw new UsageError(`container ${c.name} is already paused`);
    if (!fs.existsSync(`${FREEZER_ROOT}/cgroup.procs`)) {
      throw new UsageError(`cannot pause ${c.name}: ctnet freezes containers with cgroup v1's freezer, and this host has none at ${FREEZER_ROOT}`);
    }
    const dir = freezerDir(c);
    plan.cmd(["mkdir", "-p", dir], `a freezer cgroup for ${c.name}`, ["rmdir", dir]);
    plan.cmd(["sh", "-c", MOVE_IN, "sh", `${dir}/cgroup.procs`, ...containerProcesses(c).map(String)], `${c.name}'s processes into it`,
      ["sh", "-c", THAW_OUT, "sh", dir, `${FREEZER_ROOT}/cgroup.procs`]);
    plan.cmd(["sh", "-c", 'echo FROZEN > "$1"', "sh", `${dir}/freezer.state`], `freeze ${c.name}`, ["sh", "-c", 'echo THAWED > "$1"', "sh", `${dir}/freezer.state`]);
    c.paused = true;
  }
  return plan;
}


export function planUnpause(state: State, terms: string[]): Plan {
  const plan = new Plan(`unpause ${terms.join(" ")}`);
  for (const term of terms) {
    const c = findContainer(state, term);
    if (!c.paused || !isRunning(c)) throw new UsageError(`container ${c.name} is not paused`);
    thaw(plan, c);
  }
  return plan;
}

// ---- wait ----------------------------------------------------------------------------------------

/** `wait`: blocks until the container's process has ended; its exit code (0 for one never started, as Docker's). */
export async function waitExit(stateDir: string, c: ContainerRecord): Promise<number> {
  while (isRunning(c)) await new Promise((r) => setTimeout(r, 100));
  return lastExit(stateDir, c, false)?.code ?? 0;
}

/** What inspect reads of the host for a container: whether it runs, how it ended, its command's pid. */
export function inspectFacts(stateDir: string, c: ContainerRecord): InspectFacts {
  const running = isRunning(c);
  let pid = 0;
  try {
    pid = running ? commandPid(c) : 0;
  } catch {
    /* ended meanwhile */
  }
  return { running, exit: lastExit(stateDir, c, running), pid, logPath: logPath(stateDir, c.name) };
}
