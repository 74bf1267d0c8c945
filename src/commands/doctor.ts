// `ctnet doctor`: state against kernel. Reads what the host holds (links, addresses, routes, namespaces,
// iptables, /etc/netns files, processes, sysctls), compares it with what ctnet's state implies, and lists
// every difference. `doctor --fix` turns the differences into one plan (dry-runnable like any other):
// containers whose namespace is gone are released, running containers the state lacks are adopted back
// into it, then everything the state implies is recreated and everything carrying ctnet's marks that the
// state does not explain is removed. A running container is never killed unless the user asks for it
// (--remove-orphans): following ctnet's own advice (restore state.json.bak) must not cost a container.
//
// Marks: a link whose alias starts "ctnet:", an iptables chain named CTNET-…, a rule in (or jumping to)
// such a chain, a namespace or /etc/netns dir whose hosts file starts "# ctnet". Nothing else is touched.
// Several state dirs may share a host (network namespace): what another live one's state explains (its
// links, namespaces, files, rules, and ctnet's chains while it has networks) is neither reported nor
// touched. statedirs.ts lists them.
import fs from "node:fs";
import { UsageError } from "../errors.js";
import { mutate, openStore, type GlobalOptions } from "../plan/core.js";
import { driverOf, routeReason } from "../drivers/registry.js";
import type { OverlayCheck } from "../cluster/check.js";
import type { Finding } from "../drivers/driver.js";
import type { LinkFact } from "../host/facts.js";
import { pendingPlan } from "../plan/executor.js";
import { firewall } from "../firewall/iptables-driver.js";
import type { RuleSet } from "../firewall/iptables.js";
import { intentOf, networkIntent, publishingEndpoint } from "../firewall/intent.js";
import { addrValue, contains, parseCidr } from "../ipam.js";
import { DEFAULT_BRIDGE_NETWORK, LINK_ALIAS_PREFIX, linkAlias, newId, validateName } from "../naming.js";
import { liveContext, membersOf, routeNetwork } from "./networks.js";
import { Plan } from "../plan/plan.js";
import { portLayer } from "../firewall/ports.js";
import { EXIT_RECORDER, deleteNamespace, namespacePids, processArgv } from "../host/sandbox.js";
import { NAME_FILES, nameFileContent, nameFilePath, removeContainerFiles, writeContainerFiles } from "../dns/names.js";
import { DNS_PORT, dnsConfigKeepingRemote, dnsConfigPath, dnsDir, rebuildDnsServer, serverPid } from "../dns/aardvark.js";
import { inspectNameFile } from "../host/files.js";
import { containerDigests, decodeState } from "../store/statefile.js";
import { processAlive, processStartTime, type Store } from "../store/store.js";
import { isRoot, netnsNames, readOrNull, readSysctl, run, runJson, sysctlPath } from "../host/sys.js";
import { otherStateDirs } from "../store/statedirs.js";
import { LOCK_NAME, acquireLock } from "../store/lock.js";
import type { ContainerRecord, Endpoint, PortMapping, State } from "../model.js";

// ---- the kernel's view ---------------------------------------------------------------------------

export type KernelLink = LinkFact;

export interface Kernel extends RuleSet {
  links: Map<string, KernelLink>;
  /** IPv4 addresses (a.b.c.d/len) by interface */
  addrs: Map<string, string[]>;
  netns: Set<string>;
  /** /etc/netns/NAME -> its hosts file (null when absent) */
  etcNetns: Map<string, string | null>;
}

export function readLinks(ns?: string): Map<string, KernelLink> {
  const links = runJson(["ip", ...(ns ? ["-n", ns] : []), "-d", "-j", "link", "show"]);
  return new Map(
    links.map((l) => [
      l.ifname,
      { ifname: l.ifname, kind: l.linkinfo?.info_kind ?? "", master: l.master ?? null, alias: l.ifalias ?? null, up: (l.flags ?? []).includes("UP"), mtu: l.mtu },
    ]),
  );
}

export function readAddrs(ns?: string): Map<string, string[]> {
  const links = runJson(["ip", ...(ns ? ["-n", ns] : []), "-4", "-j", "addr", "show"]);
  return new Map(links.map((l) => [l.ifname, (l.addr_info ?? []).map((a: any) => `${a.local}/${a.prefixlen}`)]));
}

export function readEtcNetns(): Map<string, string | null> {
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync("/etc/netns");
  } catch {
    /* none */
  }
  return new Map(dirs.map((d) => [d, nameFileText(`/etc/netns/${d}/hosts`)]));
}

/**
 * A name file's text: a plain file's, or through ctnet's own link its shared file's. null when absent,
 * or when something ctnet did not make is there (it then carries no mark of ctnet's, and is never followed).
 */
function nameFileText(file: string): string | null {
  const now = inspectNameFile(file);
  if (now.kind === "file") return now.content;
  if (now.kind !== "link") return null;
  const shared = inspectNameFile(now.target);
  return shared.kind === "file" ? shared.content : null;
}

export function readKernel(): Kernel {
  return { links: readLinks(), addrs: readAddrs(), netns: netnsNames(), etcNetns: readEtcNetns(), ...firewall.readHost() };
}

export const hasCtnetMark = (hosts: string | null | undefined) => !!hosts?.startsWith("# ctnet");

// ---- differences ---------------------------------------------------------------------------------

export type { Finding };

const ownNamespace = (c: ContainerRecord) => (c.mode === "bridge" || c.mode === "none") && !!c.netns;

/**
 * Releases (from `state`) the containers whose namespace is gone, e.g. after a reboot: nothing of their
 * sandbox is left to repair. Returns the findings that say so. The default network goes with its last one.
 */
export function releaseLost(state: State, kernel: Kernel): Finding[] {
  const out: Finding[] = [];
  for (const c of Object.values(state.containers)) {
    if (!ownNamespace(c) || kernel.netns.has(c.netns!)) continue;
    const alive = c.pid !== null && processAlive(c.pid, c.pidStart);
    out.push({
      text: `container ${c.name}: namespace ${c.netns} is gone (a reboot?): --fix releases the container${alive ? ` and stops its process ${c.pid}` : ""}`,
      phase: 1,
      fix: alive ? (plan) => plan.kill([c.pid!], "SIGKILL", `${c.name}'s namespace is gone: stop its process`) : undefined,
    });
    delete state.containers[c.name];
  }
  // containers joined to a released one lost their namespace too
  for (const c of Object.values(state.containers)) {
    if (c.mode === "container" && !state.containers[c.joined!]) {
      out.push({ text: `container ${c.name}: the container whose namespace it joined (${c.joined}) is gone: --fix releases it`, phase: 1 });
      delete state.containers[c.name];
    }
  }
  const dflt = state.networks[DEFAULT_BRIDGE_NETWORK];
  if (out.length > 0 && dflt && membersOf(state, dflt.name).length === 0) delete state.networks[dflt.name];
  return out;
}

// ---- running containers the state lacks ----------------------------------------------------------
//
// A marked namespace with a live process is a container, whatever the state says: the state may be an
// older copy (state.json.bak restored as doctor advises), or another state dir's. Its kernel objects
// tell enough to rebuild its record (naming.ts: namespace = container name, host veth alias
// ctnet:veth:NS/NET), so it is adopted; one that cannot be (its network is not in the state, its address
// is taken) is reported and left alone, its links and rules with it. Only --remove-orphans kills it.

/**
 * What compare() must leave alone: the orphan containers' links, rules and files (their findings say what
 * happens to them), and whatever other state dirs' states explain.
 */
export interface Spared {
  links: Set<string>;
  /** networks (by name) and addresses of running orphans left alone: their bridge, rules and hosts file stay */
  networks: Set<string>;
  bridges: Set<string>;
  ips: Set<string>;
  /** namespaces (and their /etc/netns dirs) of other state dirs' containers */
  namespaces: Set<string>;
  /** keys (ruleKey) of the rules other state dirs' states imply */
  rules: Set<string>;
  /** another state dir has networks: ctnet's chains and the jumps into them stay */
  base: boolean;
  /** another state dir cannot be read: nothing carrying ctnet's marks that this state does not explain is touched */
  everything: boolean;
}

export const noneSpared = (): Spared => ({ links: new Set(), networks: new Set(), bridges: new Set(), ips: new Set(), namespaces: new Set(), rules: new Set(), base: false, everything: false });

/**
 * What the other live state dirs of this host explain, and a warning per dir that cannot be read. A listed
 * dir none of whose bridges and namespaces exist is not live here (its namespace died and this one got its
 * inode, see statedirs.ts): it explains nothing.
 */
export function sparedByOthers(ownDir: string, kernel: Kernel): { spared: Spared; others: number; warnings: string[] } {
  const spared = noneSpared();
  const warnings: string[] = [];
  let others = 0;
  for (const o of otherStateDirs(ownDir)) {
    if (!o.state) {
      warnings.push(`state dir ${o.dir} is in use on this host but cannot be read (${o.problem}): everything of ctnet's that this state dir's state does not explain is left alone`);
      spared.everything = true;
      others++;
      continue;
    }
    const nets = Object.values(o.state.networks);
    const containers = Object.values(o.state.containers);
    const namespaces = containers.filter(ownNamespace).map((c) => c.netns!);
    const netLinks = nets.flatMap((n) => driverOf(n).networkLinks(n));
    if (!netLinks.some((l) => kernel.links.has(l)) && !namespaces.some((ns) => kernel.netns.has(ns))) continue;
    others++;
    netLinks.forEach((l) => spared.links.add(l));
    for (const n of nets) {
      if (n.name !== DEFAULT_BRIDGE_NETWORK) spared.networks.add(n.name);
    }
    for (const c of containers) for (const e of c.endpoints) if (e.hostIf) spared.links.add(e.hostIf);
    namespaces.forEach((ns) => spared.namespaces.add(ns));
    for (const r of firewall.expected(intentOf(o.state))) spared.rules.add(firewall.key(r));
    if (nets.length > 0) spared.base = true;
  }
  return { spared, others, warnings };
}

/** /proc/PID/stat: the parent pid, or null when the process is gone. */
function parentOf(pid: number): number | null {
  const stat = readOrNull(`/proc/${pid}/stat`);
  return stat === null ? null : Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** When a process started, as an ISO date: boot time plus its start time in clock ticks. */
function startedAt(start: string): string {
  const btime = Number(/^btime (\d+)$/m.exec(readOrNull("/proc/stat") ?? "")?.[1] ?? 0);
  const ticks = Number(run(["getconf", "CLK_TCK"]).stdout.trim()) || 100;
  return new Date(btime * 1000 + (Number(start) * 1000) / ticks).toISOString();
}

/** The command a container's main process runs: its argv without ctnet's wrapper (processArgv), if still there. */
function commandOf(pid: number, wrapper: string[]): { command: string[]; env: Record<string, string> } {
  let argv = (readOrNull(`/proc/${pid}/cmdline`) ?? "").split("\0");
  if (argv[argv.length - 1] === "") argv.pop();
  // the wrapper execs itself away stage by stage: ip netns exec, unshare, sh -c
  for (const from of [0, wrapper.indexOf("unshare"), wrapper.indexOf("sh")]) {
    const rest = wrapper.slice(from);
    if (from >= 0 && rest.every((w, i) => argv[i] === w)) {
      argv = argv.slice(rest.length);
      break;
    }
  }
  // a detached process's exit recorder (sandbox.ts): sh -c RECORDER sh EXITFILE COMMAND…
  if (argv[0] === "sh" && argv[1] === "-c" && argv[2] === EXIT_RECORDER) argv = argv.slice(5);
  const env: Record<string, string> = {};
  if (argv[0] === "env") {
    argv = argv.slice(1);
    while (/^[^=]+=/.test(argv[0] ?? "")) {
      const [k, ...v] = argv.shift()!.split("=");
      env[k] = v.join("=");
    }
  }
  return { command: argv, env };
}

interface OrphanContainer {
  ns: string;
  /** every live process in its namespace, the main one first */
  pids: number[];
  hostLinks: string[];
  bridges: string[];
  networks: string[];
  ips: string[];
  /** rebuilt from the kernel; null when it cannot be adopted (`refused` says why) */
  record: ContainerRecord | null;
  refused?: string;
  /** what of it is not adopted */
  notes: string[];
}

/**
 * The record of the container running in namespace `ns`, rebuilt from the kernel, or why it cannot be.
 * `pids` are its namespace's live processes.
 */
function rebuildOrphan(state: State, kernel: Kernel, ns: string, pids: number[]): OrphanContainer {
  const starts = new Map(pids.map((p) => [p, processStartTime(p)!]));
  // the main process started the namespace's life; the others are its children, exec'd commands, joiners
  const main = [...pids].sort((a, b) => Number(starts.get(a)) - Number(starts.get(b)) || a - b)[0];
  const inMain = (pid: number): boolean => {
    for (let p: number | null = pid, hops = 0; p !== null && p > 1 && hops < 64; p = parentOf(p), hops++) if (p === main) return true;
    return false;
  };
  const others = pids.filter((p) => !inMain(p));
  const o: OrphanContainer = { ns, pids: [main, ...pids.filter((p) => p !== main)], hostLinks: [], bridges: [], networks: [], ips: [], record: null, notes: [] };
  if (others.length > 0) {
    o.notes.push(`process${others.length > 1 ? "es" : ""} ${others.join(", ")} in its namespace (--net container:${ns} containers or exec'd commands) not adopted as containers: they keep running`);
  }
  const refuse = (why: string) => ((o.refused ??= why), o);

  const peers = new Map<string, number>(runJson(["ip", "-j", "link", "show", "type", "veth"]).map((l) => [l.ifname, l.link_index]));
  const inner = runJson(["ip", "-n", ns, "-d", "-j", "link", "show"]);
  const innerAddrs = readAddrs(ns);
  const endpoints: Endpoint[] = [];
  const taken = new Map<string, string>();
  for (const c of containerDigests(state)) for (const e of c.endpoints) taken.set(`${e.network} ${e.ip}`, c.name).set(`if ${e.hostIf}`, c.name);
  for (const link of kernel.links.values()) {
    if (!link.alias?.startsWith(linkAlias("veth", `${ns}/`))) continue;
    const network = link.alias.slice(linkAlias("veth", `${ns}/`).length);
    o.hostLinks.push(link.ifname);
    o.networks.push(network);
    if (link.master && kernel.links.get(link.master)?.alias?.startsWith(LINK_ALIAS_PREFIX)) o.bridges.push(link.master);
    const peer = inner.find((l) => l.ifindex === peers.get(link.ifname));
    const net = state.networks[network];
    const subnet = net ? parseCidr(net.subnet) : null;
    const cidr = (innerAddrs.get(peer?.ifname) ?? []).find((a) => !subnet || contains(subnet, addrValue(a.split("/")[0])));
    if (cidr) o.ips.push(cidr.split("/")[0]);
    if (!net) refuse(`network ${network} is not in ctnet's state`);
    else if (!peer) refuse(`the peer of ${link.ifname} is not in namespace ${ns}`);
    else if (!cidr) refuse(`${peer.ifname} has no address on ${network} (${net.subnet})`);
    else {
      const [ip, prefix] = cidr.split("/");
      const holder = taken.get(`${network} ${ip}`) ?? taken.get(`if ${link.ifname}`);
      if (holder) refuse(`container ${holder} in ctnet's state has its address ${ip} or its veth ${link.ifname}`);
      endpoints.push({ network, id: newId(), ifname: peer.ifname, hostIf: link.ifname, ip, prefixLen: Number(prefix), mac: peer.address, aliases: aliasesOf(network, ns, ip) });
    }
  }
  // a link of a driver without a host side (macvlan, ipvlan) lives in the namespace only: its kind, which
  // is its driver's name, and its address tell the network
  for (const link of inner) {
    const kind = link.linkinfo?.info_kind;
    const nets = Object.values(state.networks).filter((n) => n.driver === kind && driverOf(n).hostSide(n)?.role === "parent");
    if (nets.length === 0) continue;
    const addrs = (innerAddrs.get(link.ifname) ?? []).map((a) => a.split("/"));
    const net = nets.find((n) => addrs.some(([ip]) => contains(parseCidr(n.subnet), addrValue(ip))));
    if (!net) {
      refuse(`its ${kind} link ${link.ifname} has no address on a ${kind} network of ctnet's state`);
      continue;
    }
    const [ip, prefix] = addrs.find(([a]) => contains(parseCidr(net.subnet), addrValue(a)))!;
    o.networks.push(net.name);
    o.ips.push(ip);
    const holder = taken.get(`${net.name} ${ip}`);
    if (holder) refuse(`container ${holder} in ctnet's state has its address ${ip}`);
    endpoints.push({
      network: net.name, id: newId(), ifname: link.ifname, hostIf: "", ip, prefixLen: Number(prefix),
      mac: driverOf(net).macPerEndpoint ? link.address : "", aliases: aliasesOf(net.name, ns, ip),
    });
  }
  try {
    validateName("container", ns);
  } catch {
    return refuse(`${ns} is not a container name`);
  }
  if (state.containers[ns]) return refuse(`a container named ${ns} is in ctnet's state already`);
  if (o.refused) return o;
  // eth0, eth1, …: the order it joined its networks in, which decides where its ports are published
  endpoints.sort((a, b) => Number(a.ifname.replace(/\D/g, "")) - Number(b.ifname.replace(/\D/g, "")));
  const hostname = readOrNull(`/etc/netns/${ns}/hostname`)?.trim() || ns;
  const record: ContainerRecord = {
    name: ns, id: newId(), created: startedAt(starts.get(main)!), hostname, mode: endpoints.length > 0 ? "bridge" : "none", netns: ns,
    endpoints, command: [], env: {}, pid: main, pidStart: starts.get(main)!, ports: [], expose: [],
  };
  Object.assign(record, commandOf(main, processArgv(state, record, [], [], true)));
  record.ports = adoptPorts(state, kernel, record, o.notes);
  record.expose = [...new Map(record.ports.map((m) => [`${m.containerPort}/${m.proto}`, { containerPort: m.containerPort, proto: m.proto }])).values()];
  o.record = record;
  return o;
}

/** A container's aliases on a network, from the DNS server's line for its address (its names less the ones every container has). */
function aliasesOf(network: string, name: string, ip: string): string[] {
  const line = (readOrNull(dnsConfigPath(network)) ?? "").split("\n").find((l) => l.split(" ")[1] === ip);
  const [id, , , names] = line?.split(" ") ?? [];
  const all = names?.split(",") ?? [];
  return all[0] === name.toLowerCase() ? all.filter((n) => n !== all[0] && n !== id.slice(0, 12) && n !== `${all[0]}.${network}`) : [];
}

/**
 * The mappings whose DNAT rule points at `c`'s publishing address and whose every rule (ports.ts,
 * mappingRules) is in the kernel: those are exactly what the state will imply once `c` is adopted.
 */
function adoptPorts(state: State, kernel: Kernel, c: ContainerRecord, notes: string[]): PortMapping[] {
  const ep = publishingEndpoint(state, c);
  if (!ep) return [];
  const net = state.networks[ep.network];
  const out: PortMapping[] = [];
  for (const { ip, mapping: m } of firewall.publishedPorts(kernel)) {
    if (ip !== ep.ip) continue;
    if (firewall.holdsPort(kernel, { container: c.name, ip: ep.ip, network: networkIntent(net), mapping: m })) out.push(m);
    else notes.push(`published port ${m.hostIp}:${m.hostPort}->${m.containerPort}/${m.proto} not adopted: some of its rules are missing`);
  }
  return out.sort((a, b) => a.containerPort - b.containerPort || a.proto.localeCompare(b.proto) || a.hostPort - b.hostPort);
}

/**
 * Marked namespaces the state does not explain. With a live process: a container, adopted into `state`
 * (or removed with `removeOrphans`; reported and spared when it cannot be adopted). Without one: a
 * leftover (a crashed or rolled-back plan, a stopped container) that --fix removes.
 */
export function orphanContainers(state: State, kernel: Kernel, o: { removeOrphans?: boolean; stateDir: string; spared: Spared }): { findings: Finding[]; spared: Spared } {
  const findings: Finding[] = [];
  const spared = o.spared;
  const expectedNs = new Set(Object.values(state.containers).filter(ownNamespace).map((c) => c.netns!));
  for (const ns of kernel.netns) {
    if (expectedNs.has(ns) || !hasCtnetMark(kernel.etcNetns.get(ns))) continue;
    // another state dir's container: not an orphan, not to adopt
    if (spared.namespaces.has(ns) || spared.everything) continue;
    const pids = namespacePids(ns).filter((p) => processAlive(p, null));
    const vethAlias = linkAlias("veth", `${ns}/`);
    const hostLinks = [...kernel.links.values()].filter((l) => l.alias?.startsWith(vethAlias)).map((l) => l.ifname);
    hostLinks.forEach((l) => spared.links.add(l));
    const remove = (plan: Plan) => {
      plan.kill(pids, "SIGKILL", `stop the processes of orphan namespace ${ns}`);
      // the namespace takes its veth pairs with it
      deleteNamespace(plan, ns, hostLinks);
      removeContainerFiles(plan, ns);
      const log = `${o.stateDir}/logs/${ns}.log`;
      if (fs.existsSync(log)) plan.cmd(["rm", "-f", log], `remove ${ns}'s log`, null);
    };
    if (pids.length === 0) {
      findings.push({ text: `orphan namespace ${ns} (its /etc/netns/${ns}/hosts is ctnet's, no process runs in it): not in ctnet's state`, phase: 2, fix: remove });
      continue;
    }
    const orphan = rebuildOrphan(state, kernel, ns, pids);
    const main = orphan.pids[0];
    const what = `orphan container ${ns} (namespace ${ns}, process ${main} ${orphan.record?.command.join(" ") ?? commandOf(main, []).command.join(" ")})`;
    const notes = orphan.notes.map((n) => `; ${n}`).join("");
    if (o.removeOrphans) {
      findings.push({ text: `${what}: not in ctnet's state; --remove-orphans removes it with its namespace, veths and files${notes}`, phase: 2, fix: remove });
    } else if (orphan.record) {
      state.containers[ns] = orphan.record;
      adoptLocalnet(state);
      findings.push({ text: `${what}: not in ctnet's state; --fix adopts it${notes} (--fix --remove-orphans removes it instead)`, phase: 1 });
    } else {
      orphan.networks.forEach((n) => spared.networks.add(n));
      orphan.bridges.forEach((b) => (spared.links.add(b), spared.bridges.add(b)));
      orphan.ips.forEach((ip) => spared.ips.add(ip));
      findings.push({ text: `${what}: not adopted: ${orphan.refused}; left as it is${notes} ('doctor --fix --remove-orphans' removes it)`, phase: 8 });
    }
  }
  return { findings, spared };
}

/**
 * Processes that run detached (their parent is init) in a container's namespace without being the main
 * process of any container the state has there: most likely a container that joined it (--net
 * container:X) and that the state lacks, which leaves nothing of its own to adopt. A daemon that forked
 * away from its container's main process looks the same, so these are notes, not differences.
 */
export function unknownJoiners(state: State): string[] {
  const out: string[] = [];
  const containers = Object.values(state.containers);
  for (const c of containers.filter(ownNamespace)) {
    const mains = new Set(containers.filter((o) => o.netns === c.netns && o.pid !== null).map((o) => o.pid));
    for (const pid of namespacePids(c.netns!)) {
      if (mains.has(pid) || parentOf(pid) !== 1 || !processAlive(pid, null)) continue;
      const cmd = commandOf(pid, []).command.join(" ");
      out.push(`note: process ${pid} (${cmd}) runs detached in ${c.name}'s namespace and is no container's main process: a container that joined ${c.name} (--net container:${c.name}) missing from the state? It cannot be adopted; it stops with ${c.name}`);
    }
  }
  return out;
}

/** route_localnet of a bridge an adopted container publishes a loopback-reachable port on: recorded as run records it. */
function adoptLocalnet(state: State): void {
  for (const br of portLayer(state).localnet.keys()) {
    const key = `net.ipv4.conf.${br}.route_localnet`;
    if (state.sysctls[key] || readSysctl(key) !== "1") continue;
    state.sysctls[key] = { key, previous: readSysctl("net.ipv4.conf.default.route_localnet") ?? "0", value: "1" };
  }
}

/**
 * Everything that differs between `state` and `kernel`; fixes add steps to the plan they are given. What
 * `spared` names belongs to orphan containers, whose findings say what happens to it (orphanContainers).
 */
export function compare(state: State, kernel: Kernel, spared: Spared = noneSpared()): Finding[] {
  const out: Finding[] = [];
  const nets = Object.values(state.networks);
  const containers = Object.values(state.containers);

  // -- links ---------------------------------------------------------------------------------------
  const expectedLinks = new Set([...nets.flatMap((n) => driverOf(n).networkLinks(n)), ...containers.flatMap((c) => c.endpoints.map((e) => e.hostIf))]);
  for (const link of kernel.links.values()) {
    if (link.alias?.startsWith(LINK_ALIAS_PREFIX) && !expectedLinks.has(link.ifname) && !spared.links.has(link.ifname) && !spared.everything) {
      const bridge = link.kind === "bridge";
      out.push({
        text: `orphan ${bridge ? "bridge" : "link"} ${link.ifname} (alias ${link.alias}): not in ctnet's state`,
        phase: bridge ? 4 : 3,
        fix: (plan) => plan.cmd(["ip", "link", "del", link.ifname], `remove orphan ${link.ifname} (${link.alias})`, null),
      });
    }
  }
  for (const net of nets) out.push(...driverOf(net).checkNetwork(net, kernel));

  // -- namespaces, endpoints, names, processes -------------------------------------------------------
  const expectedNs = new Set(containers.filter(ownNamespace).map((c) => c.netns!));
  for (const [dir, hosts] of kernel.etcNetns) {
    if (expectedNs.has(dir) || kernel.netns.has(dir) || !hasCtnetMark(hosts) || spared.namespaces.has(dir) || spared.everything) continue;
    out.push({ text: `orphan /etc/netns/${dir}: ctnet's hosts file for a namespace that does not exist`, phase: 2, fix: (plan) => removeEtcFiles(plan, dir) });
  }
  for (const c of containers) out.push(...compareContainer(state, c, kernel));
  out.push(...compareDns(state));

  // -- iptables --------------------------------------------------------------------------------------
  out.push(...firewall.differences(intentOf(state), kernel, spared));

  // -- sysctls ---------------------------------------------------------------------------------------
  for (const s of Object.values(state.sysctls)) {
    const now = readSysctl(s.key);
    if (now !== s.value) {
      out.push({
        text: `sysctl ${s.key} is ${now || "absent"}, but ctnet set it to ${s.value}`,
        phase: 9,
        // a sysctl of a bridge that is recreated above exists again by the time this step runs
        fix: (plan) => plan.cmd(["sysctl", "-w", `${sysctlPath(s.key).slice("/proc/sys/".length)}=${s.value}`], `ctnet needs ${s.key}=${s.value}`, null),
      });
    }
  }
  return out;
}

function removeEtcFiles(plan: Plan, ns: string): void {
  for (const f of NAME_FILES) {
    const p = `/etc/netns/${ns}/${f}`;
    const now = inspectNameFile(p);
    if (now.kind === "link") plan.link(p, null, now.target, `remove ${p}`);
    else if (now.kind === "file") plan.write(p, null, now.content, `remove ${p}`);
  }
}

function compareContainer(state: State, c: ContainerRecord, kernel: Kernel): Finding[] {
  const out: Finding[] = [];
  if (c.pid !== null && processAlive(c.pid, c.pidStart) && c.netns) {
    const nsOf = (p: string) => {
      try {
        return fs.statSync(p).ino;
      } catch {
        return null;
      }
    };
    const want = nsOf(`/run/netns/${c.netns}`);
    const has = nsOf(`/proc/${c.pid}/ns/net`);
    if (want !== null && has !== null && want !== has) {
      out.push({ text: `container ${c.name}: process ${c.pid} is not in namespace ${c.netns} (not fixable: rm -f and run it again)`, phase: 8 });
    }
  }
  if (!ownNamespace(c)) return out;
  const ns = c.netns!;
  const inner = readLinks(ns);
  const innerAddrs = readAddrs(ns);
  const lostRoute: string[] = [];
  const ctx = liveContext();
  const route = routeNetwork(state, c);
  for (const ep of c.endpoints) {
    const net = state.networks[ep.network];
    if (!net) {
      out.push({ text: `container ${c.name} on ${ep.network}: network ${ep.network} is not in ctnet's state (not fixable: disconnect it)`, phase: 8 });
      continue;
    }
    for (const finding of driverOf(net).checkEndpoint(ctx, ns, net, ep, kernel, { links: inner, addrs: innerAddrs })) {
      // a link made anew has lost the default route through it: the fix puts it back
      if (finding.recreatesLink && route === net) {
        lostRoute.push(net.gateway);
        const fix = finding.fix;
        finding.fix = fix && ((plan) => {
          fix(plan);
          const words = driverOf(net).defaultRoute(net, ep);
          plan.cmd(["ip", "-n", ns, "route", "replace", "default", ...words], routeReason(net, ep, words), null);
        });
      }
      out.push(finding);
    }
  }
  const via = route;
  const through = via && c.endpoints.find((e) => e.network === via.name);
  if (via && through && !lostRoute.includes(via.gateway)) {
    const routes = runJson(["ip", "-n", ns, "-j", "-4", "route", "show", "default"]);
    const [how, target] = driverOf(via).defaultRoute(via, through);
    if (!routes.some((r) => (how === "via" ? r.gateway === target : r.dev === target && !r.gateway))) {
      out.push({
        text: `container ${c.name}: default route ${how} ${target} (${via.name}) is missing`,
        phase: 8,
        fix: (plan) => plan.cmd(["ip", "-n", ns, "route", "replace", "default", how, target], routeReason(via, through, [how, target]), null),
      });
    }
  }
  if (kernel.netns.has(ns)) {
    const found = NAME_FILES.map((f) => inspectNameFile(nameFilePath(ns, f)));
    const foreign = found.find((f) => f.kind === "foreign");
    if (foreign?.kind === "foreign") {
      // not fixable: the fix would have to write through, or delete, what somebody else put there
      out.push({ text: `container ${c.name}: ${foreign.problem} (then run doctor --fix)`, phase: 8 });
      return out;
    }
    // its hosts file is the container's own to edit (Docker's too): only a missing one is a problem
    const problems = NAME_FILES.filter((f, i) => {
      const now = found[i].kind === "file" ? (found[i] as { content: string }).content : null;
      return now === null || (f !== "hosts" && now !== nameFileContent(state, nameFilePath(ns, f)));
    }).map((f) => `/etc/netns/${ns}/${f} ${found[NAME_FILES.indexOf(f)].kind === "file" ? "differs from ctnet's state" : "is missing"}`);
    if (problems.length > 0) out.push({ text: `container ${c.name}: ${problems.join(", ")}`, phase: 8, fix: (plan) => writeContainerFiles(plan, state, c, true) });
  }
  return out;
}

/**
 * The DNS server of user networks (src/dns/aardvark.ts): each network's file as the state has it (an
 * overlay network's lines of other hosts aside), and the server running while there is one. The fix rewrites the files from the state and starts the server.
 */
function compareDns(state: State): Finding[] {
  const files = new Set<string>();
  try {
    for (const f of fs.readdirSync(dnsDir())) if (f !== "aardvark.pid") files.add(f);
  } catch {
    /* none yet */
  }
  for (const net of Object.keys(state.networks)) files.add(net);
  const wrong: string[] = [];
  let wanted = 0;
  for (const network of files) {
    // the other hosts' lines of an overlay network are the agent's, compared with the store in cluster/check.ts
    const now = readOrNull(dnsConfigPath(network));
    const content = dnsConfigKeepingRemote(state, network, now);
    if (content !== null) wanted++;
    if (now !== content) wrong.push(network);
  }
  const pid = serverPid();
  const text = [
    ...wrong.map((n) => `${dnsConfigPath(n)} differs from ctnet's state`),
    ...(wanted > 0 && pid === null ? [`ctnet's DNS server (aardvark-dns on port ${DNS_PORT} of the user networks' gateways) is not running`] : []),
  ];
  if (text.length === 0) return [];
  return [{
    text: text.join("; "),
    phase: 8,
    fix: (plan) => rebuildDnsServer(plan, state),
  }];
}

/**
 * The whole diagnosis: a pending plan, lost containers (released in `state`), running containers the
 * state lacks (adopted into `state`, or removed with `removeOrphans`), then every difference.
 */
export function diagnose(store: Store, state: State, o: { removeOrphans?: boolean; overlay?: OverlayCheck } = {}): Finding[] {
  const out: Finding[] = [];
  const kernel = readKernel();
  const others = sparedByOthers(store.dir, kernel);
  for (const w of others.warnings) process.stderr.write(`ctnet: warning: ${w}\n`);
  const pending = pendingPlan(store);
  if (pending) {
    out.push({
      text: `unfinished plan "${pending.title}" of pid ${pending.pid} (killed after ${pending.started} of ${pending.total} steps): the next command or doctor --fix will ${pending.action} it`,
      phase: 0,
    });
  }
  out.push(...releaseLost(state, kernel));
  const orphans = orphanContainers(state, kernel, { removeOrphans: o.removeOrphans, stateDir: store.dir, spared: others.spared });
  out.push(...orphans.findings);
  out.push(...compare(state, kernel, orphans.spared));
  if (o.overlay) out.push(...o.overlay.findings(state));
  return out;
}

// ---- the command -----------------------------------------------------------------------------------

/** How long plain doctor waits for a command in the middle of its plan: most take well under a second. */
const READ_WAIT_MS = 5_000;

export async function doctorCommand(g: GlobalOptions, o: { fix?: boolean; removeOrphans?: boolean }): Promise<number> {
  if (o.removeOrphans && !o.fix) throw new UsageError("--remove-orphans only goes with --fix: doctor alone changes nothing");
  const store = openStore(g);
  if (!isRoot() && !(o.fix && g.dryRun)) throw new UsageError("ctnet doctor must run as root: it reads iptables and ctnet's private state");
  if (o.fix) return doctor(g, o, store);
  // plain doctor reads under the lock, as --fix does: what a command between its first step and its state
  // save (the agent's too) has made so far would else show as differences. One that holds the lock longer
  // (stuck, or paused) is named, and doctor reads anyway: it is what is asked when something hangs
  const unlock = await acquireLock("ctnet doctor: reading", LOCK_NAME, READ_WAIT_MS).catch((err: Error) => {
    process.stdout.write(`read without the lock: ${err.message}: what that command is changing may show below\n`);
    return null;
  });
  try {
    return await doctor(g, o, store);
  } finally {
    unlock?.();
  }
}

async function doctor(g: GlobalOptions, o: { fix?: boolean; removeOrphans?: boolean }, store: Store): Promise<number> {
  let state: State;
  try {
    state = store.read();
  } catch (err: any) {
    process.stdout.write(`${err.message}\n${restoreAdvice(store)}`);
    return 1;
  }
  // a joined host: its overlay state compared with the cluster's store too (read here: it is asynchronous)
  const overlay = state.cluster ? await (await import("../cluster/check.js")).readOverlayCheck(state, store.dir) : undefined;
  if (!o.fix) {
    for (const s of Object.values(state.sysctls)) process.stdout.write(`sysctl ${s.key} = ${s.value} (set by ctnet; was ${s.previous}, restored when its last user goes)\n`);
    let findings: Finding[];
    try {
      findings = diagnose(store, state, { overlay });
      for (const note of unknownJoiners(state)) process.stdout.write(`${note}\n`);
    } catch (err: any) {
      process.stdout.write(`${err.message}\n`);
      return 1;
    }
    for (const f of findings) process.stdout.write(`${f.text}\n`);
    if (findings.length === 0) process.stdout.write("no differences: ctnet's state and the kernel agree\n");
    else process.stdout.write(`${findings.length} difference${findings.length === 1 ? "" : "s"}: 'ctnet doctor --fix' repairs them ('--fix --dry-run' shows how)\n`);
    return findings.length === 0 ? 0 : 1;
  }
  let unfixable: string[] = [];
  await mutate(
    g,
    (draft) => {
      const findings = diagnose(store, draft, { removeOrphans: o.removeOrphans, overlay }).filter((f) => f.phase > 0);
      unfixable = findings.filter((f) => !f.fix && f.phase !== 1).map((f) => f.text);
      const plan = new Plan(`doctor --fix: ${findings.length} difference${findings.length === 1 ? "" : "s"}`);
      for (const f of [...findings].sort((a, b) => a.phase - b.phase)) f.fix?.(plan);
      return { plan };
    },
    { discardUnreadableJournal: true },
  );
  if (g.dryRun) return 0;
  await overlay?.afterFix();
  const left = diagnose(store, store.read(), { overlay: state.cluster ? await (await import("../cluster/check.js")).readOverlayCheck(state, store.dir) : undefined });
  for (const f of left) process.stdout.write(`${f.text}\n`);
  if (left.length === 0) process.stdout.write("repaired: ctnet's state and the kernel agree\n");
  else process.stdout.write(`${left.length} difference${left.length === 1 ? "" : "s"} left${unfixable.length ? " that doctor cannot fix" : ""}\n`);
  return left.length === 0 ? 0 : 1;
}

function restoreAdvice(store: Store): string {
  let bak = "";
  try {
    // as a command reading every record would: the header, then each record line
    Object.values(decodeState(fs.readFileSync(store.backup, "utf8")).containers);
    bak = "it is readable";
  } catch (err: any) {
    bak = err.code === "ENOENT" ? "" : `but it is unreadable too (${err.message})`;
  }
  if (!bak) return `no previous version (${store.backup}) exists: move the broken file aside and run 'ctnet doctor' to see what ctnet left on the host\n`;
  return `the previous good version is ${store.backup} (${bak}); to restore it: cp -p ${store.backup} ${store.file}\n`;
}
