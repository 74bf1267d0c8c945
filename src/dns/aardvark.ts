// The DNS server of user networks: podman's aardvark-dns (1.4 in Debian bookworm), driven the way netavark
// drives it. Its config dir, STATE_DIR/dns, holds one file per user network with named members:
//
//   172.18.0.1                                         <- the network's gateway: where it listens (port 53)
//   ID 172.18.0.2  web,db,0123456789ab,web.red 9.9.9.9 <- a container: id, IPv4, IPv6 (none), names, its --dns
//
// It answers a query by its source address: the container with that address, and the names of every
// network that container is on (the same id in several files joins them); a single-label name it does not
// know gets NXDOMAIN, anything else is forwarded to the container's --dns servers or /etc/resolv.conf's
// (read in the host's namespace, so a loopback stub such as systemd-resolved's works). It re-reads the
// files on SIGHUP, and exits by itself when none is left. The files and the process are ctnet's: they live
// in the state dir, and the process is found through the pid file it writes there and its command line.
import fs from "node:fs";
import path from "node:path";
import { UsageError } from "../errors.js";
import { DEFAULT_BRIDGE_NETWORK } from "../naming.js";
import type { Plan, Step } from "../plan/plan.js";
import type { ContainerRecord, NetworkRecord, State } from "../model.js";
import { containerDigests } from "../store/statefile.js";
import { readNameFile } from "../host/files.js";
import { AARDVARK, isServerControl, pendingContent, plannedNameFiles, plannedServerControl } from "./planned.js";

export { AARDVARK } from "./planned.js";
export const DNS_PORT = "53";
const PID_FILE = "aardvark.pid";

let stateDir: string | null = null;
/** The state dir the names of this command belong to (core.ts openStore sets it). */
export function useStateDir(dir: string): void {
  stateDir = dir;
}
export const dnsDir = () => path.join(stateDir ?? "/var/lib/ctnet", "dns");
export const dnsConfigPath = (network: string) => path.join(dnsDir(), network);

/**
 * The networks the server answers for: user bridge and overlay networks, whose gateway is an address of
 * the host (an overlay's is on every member host's bridge). A macvlan or ipvlan network's gateway is a
 * router outside, which its containers reach and the host cannot be reached on: their members' names go
 * into each other's hosts files instead (docs/dns.md).
 */
export const servesNames = (net: NetworkRecord | undefined): net is NetworkRecord =>
  !!net && net.name !== DEFAULT_BRIDGE_NETWORK && (net.driver === "bridge" || net.driver === "overlay");

/** The DNS names of `c` on `network`: Docker's DNSNames (name, aliases, short id) and NAME.NETWORK. */
export function dnsNames(c: Pick<ContainerRecord, "name" | "id">, network: string, aliases: string[]): string[] {
  return [...new Set([c.name, ...aliases, c.id.slice(0, 12), `${c.name}.${network}`].map((n) => n.toLowerCase()))];
}

/**
 * An overlay network's file also holds the containers of the other hosts, written by this host's agent
 * (src/cluster/agent.ts) from the store, their id column `HOST/ID`: the commands keep those lines as they
 * are and edit their own containers' lines only.
 */
const isRemoteLine = (line: string) => line.split(" ")[0].includes("/");
function remoteLines(state: State, network: string, content: string | null): string[] {
  if (content === null || state.networks[network]?.driver !== "overlay") return [];
  return content.split("\n").slice(1).filter((l) => l && isRemoteLine(l));
}

/** A line for a container of another host (agent.ts): `HOST/ID IP NAMES`. */
export function remoteDnsLine(host: string, id: string, ip: string, names: string[]): string {
  return `${host}/${id} ${ip}  ${names.join(",")}`;
}

/**
 * A network's file from its local lines and the other hosts' (overlay): none without a local line, since
 * the gateway the server listens on goes with this host's last container.
 */
function fileOf(net: NetworkRecord, local: string[], remote: string[]): string | null {
  return local.length ? [net.gateway, ...local, ...remote].join("\n") + "\n" : null;
}

/** `content` (an overlay network's file) with the other hosts' lines replaced by `remote` (the agent's convergence). */
export function withRemoteLines(state: State, network: string, content: string, remote: string[]): string | null {
  return fileOf(state.networks[network], content.split("\n").slice(1).filter((l) => l && !isRemoteLine(l)), remote);
}

/** One container's line in a network's file, or null when it has no address there. */
export function dnsEntries(c: ContainerRecord, network: string): string | null {
  if (c.mode !== "bridge") return null;
  const ep = c.endpoints.find((e) => e.network === network);
  if (!ep) return null;
  const servers = c.dns?.servers?.length ? ` ${c.dns.servers.join(",")}` : "";
  return `${c.id} ${ep.ip}  ${dnsNames(c, network, ep.aliases).join(",")}${servers}`;
}

/**
 * A network's file as the state has it, every member read (doctor, a restart): null when it has none.
 * A stopped container (no process) has no names; `starting` is the one whose process the plan starts.
 */
function dnsConfigFor(state: State, network: string, starting?: ContainerRecord, remote: string[] = []): string | null {
  const net = state.networks[network];
  if (!servesNames(net)) return null;
  const lines: string[] = [];
  for (const d of containerDigests(state)) {
    if (!d.endpoints.some((e) => e.network === network)) continue;
    const c = state.containers[d.name];
    if (c.pid === null && c !== starting) continue;
    const line = dnsEntries(c, network);
    if (line) lines.push(line);
  }
  return fileOf(net, lines, remote);
}

/** The other hosts' lines of an overlay network's file (the agent's), as `content` holds them. */
export const remoteLinesOf = (state: State, network: string, content: string | null) => remoteLines(state, network, content);

/** doctor --fix: an overlay network's file with `remote` as the other hosts' lines, and the server told. */
export function fixRemoteNames(plan: Plan, state: State, network: string, remote: string[]): void {
  const file = dnsConfigPath(network);
  const now = pendingContent(plan, file);
  if (now === null) return;
  control(plan, new Map([[file, withRemoteLines(state, network, now, remote)]]), plannedServer(plan));
}

/** A network's file as the state has it, with the other hosts' lines the file holds now (doctor, a rebuild). */
export function dnsConfigKeepingRemote(state: State, network: string, now: string | null, starting?: ContainerRecord): string | null {
  return dnsConfigFor(state, network, starting, remoteLines(state, network, now));
}

/** The config files there now (network names), nothing followed. */
function configFiles(): string[] {
  try {
    return fs.readdirSync(dnsDir()).filter((f) => f !== PID_FILE && !f.startsWith("."));
  } catch {
    return [];
  }
}

/** The pid of this state dir's running server, or null: the pid file's process, if its command line is ours. */
export function serverPid(): number | null {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(dnsDir(), PID_FILE), "utf8").trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv[0] === AARDVARK && argv.includes(dnsDir()) ? pid : null;
  } catch {
    return null;
  }
}

const startArgv = () => [AARDVARK, "--config", dnsDir(), "-p", DNS_PORT, "run"];
const stopArgv = () => ["pkill", "--pidfile", path.join(dnsDir(), PID_FILE), "-x", "aardvark-dns"];

export interface NameChange {
  /** the container as it is after the change (absent from the state when removed) */
  container: ContainerRecord;
  networks: string[];
  /** stopped: its names go though its endpoints stay */
  leaving?: boolean;
}

/**
 * Updates the DNS files of the networks the changes touch, one container's line each (the others' lines
 * are kept as they are: O(1) per run), then starts the server, signals it, or stops it with the last file.
 * A server found dead is started again from files rebuilt from the state.
 */
export function syncDnsServer(plan: Plan, state: State, changes: NameChange[]): void {
  const touched = new Map<string, string | null>();
  const starting = changes.find((ch) => !ch.leaving && state.containers[ch.container.name] === ch.container)?.container;
  for (const { container: c, networks, leaving } of changes) {
    const present = state.containers[c.name] === c && !leaving;
    for (const network of new Set(networks)) {
      const net = state.networks[network];
      // a network gone (net rm) leaves its file to be removed; other drivers have none
      if (network === DEFAULT_BRIDGE_NETWORK || (net && !servesNames(net))) continue;
      const file = dnsConfigPath(network);
      const before = touched.has(file) ? touched.get(file)! : pendingContent(plan, file);
      let after: string | null;
      if (!net) after = null;
      else if (before === null) after = dnsConfigFor(state, network, starting);
      else {
        const others = before.split("\n").slice(1).filter((l) => l && !l.startsWith(`${c.id} `) && !isRemoteLine(l));
        const mine = present ? dnsEntries(c, network) : null;
        after = fileOf(net, inStateOrder(state, network, mine ? [...others, mine] : others), remoteLines(state, network, before));
      }
      touched.set(file, after);
    }
  }
  const server = plannedServer(plan);
  // not running (first container, or killed): every file from the state, then start it. Not when an
  // earlier plan of this command controls it, nor within a lab's plan (files planned earlier there): its
  // new containers have no process yet, and would be dropped
  if (server.status === "stopped" && !server.planned && plannedNameFiles.size === 0) rebuild(state, touched, starting);
  control(plan, touched, server);
}

/**
 * A network's lines in the order of the state's containers, as dnsConfigFor writes them (doctor compares
 * the two): a container connected later to an older network's file takes its place among the others.
 */
function inStateOrder(state: State, network: string, lines: string[]): string[] {
  const rank = new Map<string, number>();
  for (const d of containerDigests(state)) for (const ep of d.endpoints) if (ep.network === network) rank.set(ep.ip, rank.size);
  const at = (line: string) => rank.get(line.split(" ")[1]) ?? rank.size;
  return [...lines].sort((a, b) => at(a) - at(b));
}

/** The server as this command leaves it so far: its earlier plans' last control step, else as found. */
interface ServerState {
  status: "running" | "stopped" | "starting";
  pid: number | null;
  /** an earlier plan (or step) of this command stops, starts or signals it */
  planned: boolean;
}

function plannedServer(plan: Plan): ServerState {
  const last = [...plan.steps].reverse().find(isServerControl) ?? plannedServerControl.step;
  if (!last) {
    const pid = serverPid();
    return { status: pid === null ? "stopped" : "running", pid, planned: false };
  }
  if (last.argv[0] === AARDVARK) return { status: "starting", pid: null, planned: true };
  if (last.argv[1] === "-TERM") return { status: "stopped", pid: null, planned: true };
  return { status: "running", pid: Number(last.argv[2]), planned: true };
}

/** Takes out this plan's earlier steps that `drop` picks (a signal or start planned again later). */
function dropSteps(plan: Plan, drop: (step: Step) => boolean): void {
  const kept = plan.steps.filter((step) => !drop(step));
  plan.steps.splice(0, plan.steps.length, ...kept);
}

/** Every file from the state, then the server started or told (doctor --fix). */
export function rebuildDnsServer(plan: Plan, state: State): void {
  const touched = new Map<string, string | null>();
  rebuild(state, touched);
  control(plan, touched, plannedServer(plan));
}

function rebuild(state: State, touched: Map<string, string | null>, starting?: ContainerRecord): void {
  for (const network of new Set([...configFiles(), ...Object.keys(state.networks)])) {
    const file = dnsConfigPath(network);
    if (!touched.has(file)) touched.set(file, dnsConfigKeepingRemote(state, network, readNameFile(file), starting));
  }
}

function control(plan: Plan, touched: Map<string, string | null>, server: ServerState): void {
  const changed: Array<[string, string | null, string | null]> = [];
  for (const [file, content] of touched) {
    const now = pendingContent(plan, file);
    if (now !== content) changed.push([file, content, now]);
  }
  // the files once this command's earlier plans and steps have run, and then these
  const remaining = new Set(configFiles().map(dnsConfigPath));
  const settle = (file: string, content: string | null) => (content === null ? remaining.delete(file) : remaining.add(file));
  for (const [file, content] of plannedNameFiles) if (path.dirname(file) === dnsDir()) settle(file, content);
  for (const step of plan.steps) if (step.kind === "write" && path.dirname(step.path) === dnsDir()) settle(step.path, step.content);
  for (const [file, content] of touched) settle(file, content);
  const { pid } = server;
  const isSignal = (step: Step, what: string) => step.kind === "cmd" && step.argv[0] === "kill" && step.argv[1] === what && step.argv[2] === String(pid);
  if (server.status === "running" && changed.length > 0 && remaining.size > 0 && !plan.steps.some((step) => isSignal(step, "-0"))) {
    // undone last on a rollback, after the files are back: the server reads them again
    plan.cmd(["kill", "-0", String(pid)], `ctnet's DNS server (pid ${pid}) is running`, ["kill", "-HUP", String(pid)]);
  }
  for (const [file, content, now] of changed) {
    plan.write(file, content, now, `DNS names on network ${path.basename(file)} (${content === null ? "none left" : "ctnet's DNS server answers them"})`);
  }
  if (server.status === "starting") {
    // started once, after the last of its files (a command of several plans keeps the last start)
    if (remaining.size > 0 && changed.length > 0) {
      dropSteps(plan, (step) => step.kind === "cmd" && step.argv[0] === AARDVARK);
      startServer(plan, remaining);
    }
  } else if (server.status === "stopped" && remaining.size > 0) {
    startServer(plan, remaining);
  } else if (server.status === "running" && remaining.size === 0) {
    plan.cmd(["kill", "-TERM", String(pid)], "stop ctnet's DNS server: no user network has a container left", startArgv());
  } else if (server.status === "running" && changed.length > 0) {
    // one signal, after the last write: a second SIGHUP a moment after the first can reach aardvark-dns
    // while it re-arms its handler, and end it. Undone by the check's undo alone, once the files are back
    dropSteps(plan, (step) => isSignal(step, "-HUP"));
    plan.cmd(["kill", "-HUP", String(pid)], "ctnet's DNS server reads its files again", ["kill", "-0", String(pid)]);
  }
}

function startServer(plan: Plan, remaining: Set<string>): void {
  if (!fs.existsSync(AARDVARK)) throw new UsageError(`${AARDVARK} not found: install it with 'apt-get install aardvark-dns' (it answers the names of user networks)`);
  plan.cmd(startArgv(), `start ctnet's DNS server on the gateways of ${[...remaining].map((f) => path.basename(f)).join(", ")}`, stopArgv());
}

/** Stops the server and removes its files (reset). */
export function removeDnsServer(plan: Plan): void {
  const pid = serverPid();
  if (pid !== null) plan.cmd(["kill", "-TERM", String(pid)], "stop ctnet's DNS server", null);
  for (const network of configFiles()) {
    const file = dnsConfigPath(network);
    plan.write(file, null, pendingContent(plan, file), `remove the DNS names of network ${network}`);
  }
  const pidFile = path.join(dnsDir(), PID_FILE);
  if (fs.existsSync(pidFile)) plan.cmd(["rm", "-f", pidFile], "remove the DNS server's pid file", null);
  if (fs.existsSync(dnsDir())) plan.cmd(["rmdir", "--ignore-fail-on-non-empty", dnsDir()], "remove the DNS server's directory", null);
}
