// The sandbox: a container's network namespace, its /etc/netns files (ip netns exec bind-mounts them
// over /etc, which is how names resolve inside), and the processes that run in it.
import fs from "node:fs";
import path from "node:path";
import { UsageError } from "../errors.js";
import { DEFAULT_BRIDGE_NETWORK, netnsEtcDir, netnsPath } from "../naming.js";
import { waitedPaths, type Plan } from "../plan/plan.js";
import { goingAway } from "./sys.js";
import type { ContainerDigest, ContainerRecord, State } from "../model.js";
import { containerDigests } from "../store/statefile.js";
import { processStartTime } from "../store/store.js";
import { NETWORK_HOSTS_DIR, linkTarget, readNameFile, readNameLink } from "./files.js";
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

const HOSTS_HEADER = [
  "127.0.0.1\tlocalhost",
  "::1\tlocalhost ip6-localhost ip6-loopback",
  "fe00::0\tip6-localnet",
  "ff00::0\tip6-mcastprefix",
  "ff02::1\tip6-allnodes",
  "ff02::2\tip6-allrouters",
];

// Names resolve through /etc/hosts: `ip netns exec NAME` bind-mounts /etc/netns/NAME/hosts over it. A
// container on exactly one user network, whose hostname is its name, sees exactly that network's members,
// so all such containers share one file per network: their /etc/netns/NAME/hosts is a symbolic link to
// NETWORK_HOSTS_DIR/NET.hosts (the bind mount follows it), and one in-place rewrite of that file updates
// every one of them, processes already running included. A run or rm on a network of n containers thus
// writes one file of n lines instead of n files of n lines. The others (several networks, a hostname of
// their own, the default bridge, --net none) keep a file of their own. See docs/performance.md.

export { NETWORK_HOSTS_DIR };
export const networkHostsPath = (network: string) => `${NETWORK_HOSTS_DIR}/${network}.hosts`;
const hostsPath = (ns: string) => path.join(netnsEtcDir(ns), "hosts");

/** The user network whose shared hosts file container `c` links to, or null when it keeps its own file. */
export function sharedHostsNetwork(c: ContainerDigest): string | null {
  if (c.mode !== "bridge" || c.endpoints.length !== 1 || c.hostname !== c.name) return null;
  const network = c.endpoints[0].network;
  return network === DEFAULT_BRIDGE_NETWORK ? null : network;
}

const memberLine = (c: ContainerDigest, ep: ContainerDigest["endpoints"][number]) => `${ep.ip}\t${[c.name, ...ep.aliases.filter((a) => a !== c.name)].join(" ")}`;

/** The shared hosts file of a user network: every member under its name and aliases; null when it has none. */
export function networkHostsFile(state: State, network: string): string | null {
  const lines = [`# ctnet: /etc/hosts of the containers on network ${network} that link here, rewritten on run, connect, disconnect and rm`, ...HOSTS_HEADER];
  const before = lines.length;
  for (const c of containerDigests(state)) {
    for (const ep of c.endpoints) if (ep.network === network) lines.push(memberLine(c, ep));
  }
  return lines.length === before ? null : lines.join("\n") + "\n";
}

/**
 * /etc/hosts as container `c` sees it: its own addresses under its hostname, then every container it
 * shares a user network with, under its name and aliases on that network (the shared file when it links
 * to one). The default bridge gives no names, as in Docker.
 */
export function hostsFileFor(state: State, c: ContainerRecord): string {
  const shared = sharedHostsNetwork(c);
  if (shared) return networkHostsFile(state, shared)!;
  const lines = [`# ctnet: /etc/hosts of container ${c.name}, rewritten on run, connect, disconnect and rm`, ...HOSTS_HEADER];
  const own = [...new Set([c.hostname, c.name])].join(" ");
  for (const ep of c.endpoints) lines.push(`${ep.ip}\t${own}`);
  if (c.endpoints.length === 0 && c.mode === "none") lines.push(`127.0.1.1\t${own}`);
  const mine = new Set(c.endpoints.filter((ep) => ep.network !== DEFAULT_BRIDGE_NETWORK).map((ep) => ep.network));
  if (mine.size > 0) {
    for (const other of containerDigests(state)) {
      if (other.name === c.name) continue;
      for (const ep of other.endpoints) if (mine.has(ep.network)) lines.push(memberLine(other, ep));
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * What a ctnet name file should hold in `state`: a container's hosts or hostname, or a network's shared
 * hosts file. null: it should not exist; undefined: not a file ctnet's names use.
 */
export function nameFileContent(state: State, file: string): string | null | undefined {
  if (file.startsWith(`${NETWORK_HOSTS_DIR}/`) && file.endsWith(".hosts")) {
    const network = file.slice(NETWORK_HOSTS_DIR.length + 1, -".hosts".length);
    return state.networks[network] ? networkHostsFile(state, network) : null;
  }
  const m = /^\/etc\/netns\/([^/]+)\/(hosts|hostname)$/.exec(file);
  if (!m) return undefined;
  const c = Object.values(state.containers).find((o) => o.netns === m[1] && (o.mode === "bridge" || o.mode === "none"));
  if (!c) return null;
  if (m[2] === "hostname") return `${c.hostname}\n`;
  return sharedHostsNetwork(c) ? null : hostsFileFor(state, c);
}

/**
 * The name files as the earlier plans of one command leave them (a lab's plan is made of the plans of
 * single commands, each a Plan of its own, see lab.ts): path -> its link target, else its content. Read
 * in place of the disk for those paths; the lab planner fills it and clears it when done.
 */
export const plannedNameFiles = new Map<string, { link: string | null; content: string | null }>();

/**
 * Processes (and process groups) the command's plan stops before it releases their container's endpoints
 * (stop, kill): they need no new names, and could not be entered by the time a remount step runs.
 */
export const stoppingProcesses = new Set<number>();

/** What `file` holds (its link target, its content) once the steps planned so far have run; nothing foreign followed. */
function pendingLink(plan: Plan, file: string): string | null {
  return plan.pending("link", file, () => (plannedNameFiles.has(file) ? plannedNameFiles.get(file)!.link : readNameLink(file)));
}
function pendingContent(plan: Plan, file: string): string | null {
  return plan.pending("write", file, () => (plannedNameFiles.has(file) ? plannedNameFiles.get(file)!.content : readNameFile(file)));
}

/**
 * Brings the name files of the given containers, and the shared hosts files of their user networks and
 * of `networks`, in line with `state`. Containers that link to a shared file need nothing more: pass
 * only those that keep their own (see neighbours()).
 */
export function syncNameFiles(plan: Plan, state: State, names: Iterable<string>, networks: Iterable<string> = []): void {
  const nets = new Set([...networks].filter((n) => n !== DEFAULT_BRIDGE_NETWORK));
  const containers: ContainerRecord[] = [];
  for (const name of new Set(names)) {
    const c = state.containers[name];
    if (!c || c.mode === "host" || c.mode === "container") continue;
    containers.push(c);
    for (const ep of c.endpoints) if (ep.network !== DEFAULT_BRIDGE_NETWORK) nets.add(ep.network);
  }
  // shared files first, so a link never points at a file that is not there yet
  for (const network of nets) {
    const file = networkHostsPath(network);
    plan.write(file, networkHostsFile(state, network), pendingContent(plan, file), `names on network ${network}, shared by its single-network containers`);
  }
  for (const c of containers) {
    const dir = netnsEtcDir(c.netns!);
    const hostname = path.join(dir, "hostname");
    plan.write(hostname, `${c.hostname}\n`, pendingContent(plan, hostname), `hostname of ${c.name}`);
    const hosts = hostsPath(c.netns!);
    const shared = sharedHostsNetwork(c);
    const target = pendingLink(plan, hosts);
    const own = target === null ? pendingContent(plan, hosts) : null;
    if (shared) {
      // remounted before its own file goes: deleting a file detaches whatever is mounted on it
      if (own !== null) remountHosts(plan, c, networkHostsPath(shared), hosts);
      if (own !== null) plan.write(hosts, null, own, `${c.name} now shares network ${shared}'s names`);
      plan.link(hosts, networkHostsPath(shared), target, `names ${c.name} can resolve: network ${shared}'s shared file`);
    } else {
      if (target !== null) plan.link(hosts, null, target, `${c.name} now needs a hosts file of its own`);
      plan.write(hosts, hostsFileFor(state, c), own, `names ${c.name} can resolve`);
      if (target !== null) remountHosts(plan, c, hosts);
    }
  }
}

/**
 * A container switching between the shared file and one of its own (net connect, disconnect): its running
 * processes have the old file bind-mounted on /etc/hosts (ip netns exec gave each a mount namespace), so
 * the new one is mounted over it in each of their mount namespaces; the undo unmounts it again. Going
 * back to the shared file, the own file's mount is taken off first (`replacing`): the own file is then
 * deleted, which would detach anything mounted on top of it. Processes in the host's own mount namespace
 * are never touched: that /etc/hosts is the host's.
 */
function remountHosts(plan: Plan, c: ContainerRecord, file: string, replacing?: string): void {
  const host = linkTarget("/proc/self/ns/mnt");
  const seen = new Set<string>();
  // nsenter enters a mount namespace through one of its processes: the longest-lived one, the main process
  // first, so that it is still there when the step runs (a short-lived child, a `sleep` in the container's
  // loop, may be gone by then, and the remount with it)
  const age = (pid: number) => (pid === c.pid ? -1 : Number(processStartTime(pid) ?? Infinity));
  for (const pid of [...namespacePids(c.netns!)].sort((a, b) => age(a) - age(b))) {
    if (stoppingProcesses.has(pid) || stoppingProcesses.has(processGroupOf(pid))) continue;
    const mnt = linkTarget(`/proc/${pid}/ns/mnt`);
    if (mnt === null || mnt === host || seen.has(mnt)) continue;
    seen.add(mnt);
    const enter = ["nsenter", `--mount=/proc/${pid}/ns/mnt`];
    if (replacing) plan.cmd([...enter, "umount", "/etc/hosts"], `take ${c.name}'s own hosts file off process ${pid}'s /etc/hosts`, [...enter, "mount", "--bind", replacing, "/etc/hosts"]);
    plan.cmd([...enter, "mount", "--bind", file, "/etc/hosts"], `running process ${pid} of ${c.name} sees the new names too`, [...enter, "umount", "/etc/hosts"]);
  }
}

/** /proc/PID/stat's process group (field 5, after the parenthesised command name); 0 when gone. */
function processGroupOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    return 0;
  }
}

/**
 * A command made of the plans of several planners (up, restart, stop of a container on several networks):
 * later planners read the name files as `sub` leaves them, not as they are on disk, and take the links
 * and namespaces it deletes as gone. forgetSubPlans() once the command's plan is made.
 */
export function noteSubPlan(sub: Plan): void {
  for (const step of sub.steps) {
    if (step.kind === "write") plannedNameFiles.set(step.path, { link: null, content: step.content });
    if (step.kind === "link") plannedNameFiles.set(step.path, { link: step.target, content: null });
    if (step.kind === "cmd" && step.argv[0] === "ip" && step.argv[2] === "del") {
      if (step.argv[1] === "link") goingAway.links.add(step.argv[3]);
      if (step.argv[1] === "netns") goingAway.netns.add(step.argv[3]);
    }
    // a deleted namespace takes its veth pairs along: the plan waits for their host ends to go
    for (const p of waitedPaths(step) ?? []) goingAway.links.add(path.basename(p));
  }
}

export function forgetSubPlans(): void {
  stoppingProcesses.clear();
  goingAway.links.clear();
  goingAway.netns.clear();
  plannedNameFiles.clear();
}

export function removeNameFiles(plan: Plan, ns: string): void {
  const hosts = hostsPath(ns);
  const target = pendingLink(plan, hosts);
  if (target !== null) plan.link(hosts, null, target, `remove ${hosts}`);
  for (const file of target === null ? ["hosts", "hostname"] : ["hostname"]) {
    const p = path.join(netnsEtcDir(ns), file);
    const previous = pendingContent(plan, p);
    if (previous !== null) plan.write(p, null, previous, `remove ${p}`);
  }
}

/**
 * Containers whose own hosts file lists `c` on one of `networks`: they share a user network with it but
 * do not link to that network's shared file (which syncNameFiles rewrites for all the others at once).
 */
export function neighbours(state: State, c: ContainerRecord, networks = c.endpoints.map((e) => e.network)): string[] {
  const nets = new Set(networks.filter((n) => n !== DEFAULT_BRIDGE_NETWORK));
  if (nets.size === 0) return [];
  return containerDigests(state)
    .filter((o) => o.name !== c.name && o.endpoints.length > 0 && sharedHostsNetwork(o) === null && o.endpoints.some((e) => nets.has(e.network)))
    .map((o) => o.name);
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
