// The sandbox: a container's network namespace and the processes that run in it (its /etc/netns files,
// which ip netns exec bind-mounts over /etc, are the names service's: src/dns/names.ts).
import fs from "node:fs";
import path from "node:path";
import { UsageError } from "../errors.js";
import { netnsPath } from "../naming.js";
import { waitedPaths, type Plan } from "../plan/plan.js";
import { goingAway } from "./sys.js";
import type { ContainerRecord, State } from "../model.js";
import { isServerControl, plannedNameFiles, plannedServerControl } from "../dns/planned.js";
import { hasTool } from "./sys.js";

/** The namespace alone: a host-side `ip` command, so it joins the host's batch (veth pairs follow it). */
export function createNamespace(plan: Plan, ns: string): void {
  plan.cmd(["ip", "netns", "add", ns], `network namespace for container ${ns}`, ["ip", "netns", "del", ns]);
}

/** Planned after the endpoints' inner commands, so it runs in the same `ip -n NS -batch`. */
export function loopbackUp(plan: Plan, ns: string): void {
  plan.cmd(["ip", "-n", ns, "link", "set", "lo", "up"], "loopback up inside", null);
}

/**
 * Deletes the namespace, and with it the veth pairs whose inner ends are in it: the kernel removes them in
 * the background, all of a batch of namespaces at once, in a few ms, where `ip link del` takes 20-40 ms per
 * pair. The plan then waits until `hostLinks` (their host ends) are gone, so the names are free again.
 */
export function deleteNamespace(plan: Plan, ns: string, hostLinks: string[] = []): void {
  plan.cmd(["ip", "netns", "del", ns], `delete namespace ${ns}${hostLinks.length ? " with its veth pairs" : ""}`, null);
  plan.waitGone(hostLinks, `wait until the kernel has removed ${hostLinks.join(", ")}`);
}

// Names: each container's own /etc/netns/NAME/{hosts,hostname,resolv.conf} and the DNS server of user
// networks are the names service's (src/dns/names.ts).

/**
 * A command made of the plans of several planners (up, restart, stop of a container on several networks):
 * later planners read the name files as `sub` leaves them, not as they are on disk, and take the links
 * and namespaces it deletes as gone. forgetSubPlans() once the command's plan is made.
 */
export function noteSubPlan(sub: Plan): void {
  for (const step of sub.steps) {
    if (step.kind === "write") plannedNameFiles.set(step.path, step.content);
    if (isServerControl(step)) plannedServerControl.step = step;
    if (step.kind === "cmd" && step.argv[0] === "ip" && step.argv[2] === "del") {
      if (step.argv[1] === "link") goingAway.links.add(step.argv[3]);
      if (step.argv[1] === "netns") goingAway.netns.add(step.argv[3]);
    }
    // a deleted namespace takes its veth pairs along: the plan waits for their host ends to go
    for (const p of waitedPaths(step) ?? []) goingAway.links.add(path.basename(p));
  }
}

export function forgetSubPlans(): void {
  goingAway.links.clear();
  goingAway.netns.clear();
  plannedNameFiles.clear();
  delete plannedServerControl.step;
}

// ---- processes -------------------------------------------------------------------------------

export const IDLE_COMMAND = ["sleep", "infinity"];

/**
 * Every /run/netns/NAME is a bind mount, and `ip netns exec` gives a process a mount namespace that is a
 * slave of the host's, holding a copy of each of them: every namespace added or deleted later would be
 * mounted or unmounted in every running container too, so with n containers each run and rm did n mount
 * operations. A container's main process therefore first detaches /run/netns from its own mount namespace
 * (one lazy unmount takes the whole subtree; a Docker container never sees it either). Unmounting in a
 * slave does not reach the host.
 */
const DETACH_NETNS_DIR = "umount --lazy /run/netns 2>/dev/null";

/** Detaches /run/netns, sets the new UTS namespace's hostname, becomes the command; arguments go as argv. */
const START_MAIN = `${DETACH_NETNS_DIR}; echo "$0" > /proc/sys/kernel/hostname && exec "$@"`;
/** The same for a main process that shares another container's UTS namespace (--net container:X). */
const START_JOINED = `${DETACH_NETNS_DIR}; exec "$@"`;

/**
 * A detached main process has no daemon to collect its exit status: the shell that starts it stays as its
 * parent and writes the status to a file (`$1`) when it ends. It catches (not ignores: the command gets
 * them back at exec) the signals stop and kill send to the container's process group, so it outlives the
 * command; only SIGKILL ends it first. Marked by its first word, so kill can tell it from a command.
 */
export const EXIT_RECORDER = `: ctnet-exit; f=$1; shift; trap : HUP INT QUIT TERM USR1 USR2 ALRM PIPE; "$@"; s=$?; echo $s > "$f"; exit $s`;

/**
 * argv that runs `cmd` inside container `c`: as its main process (`main`), or beside it (exec). With
 * `exitFile`, the main process is started by EXIT_RECORDER, which records its exit status there.
 */
export function processArgv(state: State, c: ContainerRecord, cmd: string[], envPairs: string[], main: boolean, exitFile?: string): string[] {
  const withEnv = envPairs.length > 0 ? ["env", ...envPairs, ...cmd] : cmd;
  const recorded = exitFile ? ["sh", "-c", EXIT_RECORDER, "sh", exitFile, ...withEnv] : withEnv;
  switch (c.mode) {
    case "host":
      return main ? recorded : withEnv;
    case "container": {
      const owner = state.containers[c.joined!];
      return ["ip", "netns", "exec", owner.netns!, ...utsEnter(owner), ...(main ? ["sh", "-c", START_JOINED, "sh", ...recorded] : withEnv)];
    }
    default:
      if (main) return ["ip", "netns", "exec", c.netns!, "unshare", "--uts", "--", "sh", "-c", START_MAIN, c.hostname, ...recorded];
      return ["ip", "netns", "exec", c.netns!, ...utsEnter(c), ...withEnv];
  }
}

function utsEnter(c: ContainerRecord): string[] {
  return c.pid ? ["nsenter", `--uts=/proc/${c.pid}/ns/uts`] : [];
}

/** Checks the command can be found, the way exec would, so `run` refuses before changing anything. */
export function checkExecutable(cmd: string[]): void {
  const prog = cmd[0];
  if (prog === undefined || prog === "") throw new UsageError("empty command");
  if (!hasTool(prog)) throw new UsageError(prog.includes("/") ? `executable not found: ${prog}` : `executable file not found in $PATH: ${prog}`);
}

/** Network namespace (as /proc/PID/ns/net reads: "net:[INODE]") -> its processes; one /proc scan per command. */
let processesByNetns: Map<string, number[]> | null = null;

/**
 * Every process in a namespace, not only the main one: `ip netns exec NAME …` started by hand counts too.
 * What `ip netns pids` does, without a process per container (rm of 100 containers asked 100 times).
 */
export function namespacePids(ns: string): number[] {
  let inode: number;
  try {
    inode = fs.statSync(netnsPath(ns)).ino;
  } catch {
    return [];
  }
  if (!processesByNetns) {
    processesByNetns = new Map();
    for (const pid of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      let net: string;
      try {
        net = fs.readlinkSync(`/proc/${pid}/ns/net`);
      } catch {
        continue; // gone meanwhile
      }
      const list = processesByNetns.get(net);
      if (list) list.push(Number(pid));
      else processesByNetns.set(net, [Number(pid)]);
    }
  }
  return processesByNetns.get(`net:[${inode}]`) ?? [];
}
