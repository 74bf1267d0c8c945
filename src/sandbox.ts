// The sandbox: a container's network namespace, its /etc/netns files (ip netns exec bind-mounts them
// over /etc, which is how names resolve inside), and the processes that run in it.
import fs from "node:fs";
import path from "node:path";
import { UsageError } from "./errors.js";
import { netnsEtcDir } from "./naming.js";
import type { Plan } from "./plan.js";
import type { ContainerRecord, State } from "./model.js";
import { run } from "./sys.js";

export function createNamespace(plan: Plan, ns: string): void {
  plan.cmd(["ip", "netns", "add", ns], `network namespace for container ${ns}`, ["ip", "netns", "del", ns]);
  plan.cmd(["ip", "-n", ns, "link", "set", "lo", "up"], "loopback up inside", null);
}

export function deleteNamespace(plan: Plan, ns: string): void {
  plan.cmd(["ip", "netns", "del", ns], `delete namespace ${ns}`, null);
}

const HOSTS_HEADER = [
  "127.0.0.1\tlocalhost",
  "::1\tlocalhost ip6-localhost ip6-loopback",
  "fe00::0\tip6-localnet",
  "ff00::0\tip6-mcastprefix",
  "ff02::1\tip6-allnodes",
  "ff02::2\tip6-allrouters",
];

/**
 * /etc/hosts as container `c` sees it: its own addresses under its hostname, then every container it
 * shares a user network with, under its name and aliases on that network. The default bridge gives no
 * names, as in Docker.
 */
export function hostsFileFor(state: State, c: ContainerRecord): string {
  const lines = [`# ctnet: /etc/hosts of container ${c.name}, rewritten on run, connect, disconnect and rm`, ...HOSTS_HEADER];
  const own = [...new Set([c.hostname, c.name])].join(" ");
  for (const ep of c.endpoints) lines.push(`${ep.ip}\t${own}`);
  if (c.endpoints.length === 0 && c.mode === "none") lines.push(`127.0.1.1\t${own}`);
  const mine = new Set(c.endpoints.filter((ep) => ep.network !== "bridge").map((ep) => ep.network));
  if (mine.size > 0) {
    for (const other of Object.values(state.containers)) {
      if (other.name === c.name) continue;
      for (const ep of other.endpoints) {
        if (mine.has(ep.network)) lines.push(`${ep.ip}\t${[other.name, ...ep.aliases.filter((a) => a !== other.name)].join(" ")}`);
      }
    }
  }
  return lines.join("\n") + "\n";
}

function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** Brings the hosts (and hostname) files of the given containers in line with `state`. */
export function syncNameFiles(plan: Plan, state: State, names: Iterable<string>): void {
  for (const name of new Set(names)) {
    const c = state.containers[name];
    if (!c || c.mode === "host" || c.mode === "container") continue;
    const dir = netnsEtcDir(c.netns!);
    const hosts = path.join(dir, "hosts");
    plan.write(hosts, hostsFileFor(state, c), readOrNull(hosts), `names ${c.name} can resolve`);
    const hostname = path.join(dir, "hostname");
    plan.write(hostname, `${c.hostname}\n`, readOrNull(hostname), `hostname of ${c.name}`);
  }
}

export function removeNameFiles(plan: Plan, ns: string): void {
  for (const file of ["hosts", "hostname"]) {
    const p = path.join(netnsEtcDir(ns), file);
    const previous = readOrNull(p);
    if (previous !== null) plan.write(p, null, previous, `remove ${p}`);
  }
}

/** Containers that share a user network with `c` (their hosts files list it). */
export function neighbours(state: State, c: ContainerRecord, networks = c.endpoints.map((e) => e.network)): string[] {
  const nets = new Set(networks.filter((n) => n !== "bridge"));
  return Object.values(state.containers)
    .filter((o) => o.name !== c.name && o.endpoints.some((e) => nets.has(e.network)))
    .map((o) => o.name);
}

// ---- processes -------------------------------------------------------------------------------

export const IDLE_COMMAND = ["sleep", "infinity"];

/** Sets the UTS namespace's hostname, then becomes the command: a fixed script, arguments passed as argv. */
const SET_HOSTNAME = 'echo "$0" > /proc/sys/kernel/hostname && exec "$@"';

/** argv that runs `cmd` inside container `c` the way its main process runs. */
export function processArgv(state: State, c: ContainerRecord, cmd: string[], envPairs: string[], newUts: boolean): string[] {
  const withEnv = envPairs.length > 0 ? ["env", ...envPairs, ...cmd] : cmd;
  switch (c.mode) {
    case "host":
      return withEnv;
    case "container": {
      const owner = state.containers[c.joined!];
      return ["ip", "netns", "exec", owner.netns!, ...utsEnter(owner), ...withEnv];
    }
    default:
      if (newUts) return ["ip", "netns", "exec", c.netns!, "unshare", "--uts", "--", "sh", "-c", SET_HOSTNAME, c.hostname, ...withEnv];
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
  if (prog.includes("/")) {
    if (!fs.existsSync(prog)) throw new UsageError(`executable not found: ${prog}`);
    return;
  }
  const dirs = (process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":");
  if (!dirs.some((d) => fs.existsSync(path.join(d, prog)))) {
    throw new UsageError(`executable file not found in $PATH: ${prog}`);
  }
}

/** Every process in a namespace, not only the main one: `ip netns exec NAME …` started by hand counts too. */
export function namespacePids(ns: string): number[] {
  const res = run(["ip", "netns", "pids", ns]);
  return res.code === 0 ? res.stdout.split(/\s+/).filter(Boolean).map(Number) : [];
}
