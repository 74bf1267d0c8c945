// `ctnet trace FROM TO [PORT]`: why container FROM can or cannot reach TO. It reads what decides it —
// FROM's hosts file, its addresses and routes, the networks both are on, and the filter table's rules as
// the kernel holds them (walked for the packet, from FORWARD through every jump) — then sends a real
// probe from FROM's namespace and says whether the probe agrees.
import { dnsAnswer } from "../dns/names.js";
import fs from "node:fs";
import { UsageError } from "../errors.js";
import { addrValue, contains, parseCidr } from "../ipam.js";
import { findContainer, routeNetwork } from "./networks.js";
import { driverOf } from "../drivers/registry.js";
import { isRunning } from "./process.js";
import { netnsEtcDir } from "../naming.js";
import { hostAddresses, run, runJson } from "../host/sys.js";
import { readNameFile } from "../host/files.js";
import { dnsConfigPath, remoteLines } from "../dns/aardvark.js";
import { vxlanIfname } from "../drivers/overlay.js";
import type { StoreView } from "../cluster/crosshost.js";
import type { EndpointValue } from "../cluster/claims.js";
import { firewall } from "../firewall/iptables-driver.js";
import type { Packet } from "../firewall/walk.js";
import { VXLAN_PORT, type ContainerRecord, type NetworkRecord, type State } from "../model.js";

export interface TraceReport {
  from: string;
  to: string;
  port: number | null;
  /** the address TO names (from FROM's hosts file for a name) */
  address: string | null;
  /** whether FROM can resolve TO when TO is a name */
  nameResolves: boolean | null;
  sharedNetworks: string[];
  /** each fact that decides the outcome, in the order the packet meets them */
  facts: string[];
  /** filter rules the packet matched, as iptables -S prints them, ending with the deciding one */
  rules: string[];
  expected: "reachable" | "unreachable";
  probe: { command: string[]; ok: boolean; output: string } | null;
  agrees: boolean | null;
  /** TO on another host of the cluster (an overlay network): its claim in the store */
  remote?: { container: string; network: string; host: string; vtep: string; alive: boolean };
}

/** The store as trace reads it on a joined host (cluster/crosshost.ts), or why it could not. */
export type ClusterFacts = StoreView | { error: string };

// ---- the explanation ---------------------------------------------------------------------------

/** Names in a hosts file, each with its address. */
function hostsEntries(file: string): Map<string, string> {
  const names = new Map<string, string>();
  let text = "";
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return names;
  }
  for (const line of text.split("\n")) {
    const [addr, ...rest] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (!addr || !/^\d+\.\d+\.\d+\.\d+$/.test(addr)) continue;
    for (const n of rest) if (!names.has(n)) names.set(n, addr);
  }
  return names;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The container whose namespace FROM's processes use. */
const sandboxOf = (state: State, c: ContainerRecord) => (c.mode === "container" ? state.containers[c.joined!] : c);

/** Whether FROM may reach TO across hosts: FROM is on an overlay network and TO is no container of this host. */
export function crossesHosts(state: State, fromName: string, to: string): boolean {
  const box = sandboxOf(state, findContainer(state, fromName));
  if (!state.cluster || !box?.endpoints.some((e) => state.networks[e.network]?.driver === "overlay")) return false;
  return !state.containers[to] && !Object.values(state.containers).some((c) => c.endpoints.some((e) => e.ip === to));
}

/**
 * A name the DNS server answers from the other hosts' lines of an overlay network's file (written by
 * the agent from their claims), for a container on that network.
 */
function remoteDnsAnswer(state: State, box: ContainerRecord, name: string): { ip: string; network: string; host: string } | null {
  const wanted = name.toLowerCase();
  for (const e of box.endpoints) {
    if (state.networks[e.network]?.driver !== "overlay") continue;
    for (const line of remoteLines(state, e.network, readNameFile(dnsConfigPath(e.network)))) {
      const [id, ip, names] = line.split(/\s+/);
      if (names.split(",").includes(wanted)) return { ip, network: e.network, host: id.split("/")[0] };
    }
  }
  return null;
}

export function explain(state: State, fromName: string, to: string, port: number | null, cluster: ClusterFacts | null = null): TraceReport {
  const from = findContainer(state, fromName);
  if (!isRunning(from)) throw new UsageError(`container ${from.name} is not running: nothing to trace from`);
  const box = sandboxOf(state, from);
  const facts: string[] = [];
  const report: TraceReport = {
    from: from.name, to, port, address: null, nameResolves: null, sharedNetworks: [], facts, rules: [], expected: "unreachable", probe: null, agrees: null,
  };
  if (box !== from) facts.push(`${from.name} uses ${box.name}'s network namespace (--net container:${box.name})`);

  // 1. the name
  let address: string | null = IPV4.test(to) ? to : null;
  let target: ContainerRecord | undefined;
  if (address === null) {
    target = state.containers[to];
    const hostsFile = box.mode === "host" ? "/etc/hosts" : `${netnsEtcDir(box.netns!)}/hosts`;
    const known = hostsEntries(hostsFile);
    const answer = box.mode === "bridge" ? dnsAnswer(state, box, to) : null;
    const remoteAnswer = box.mode === "bridge" && !known.has(to) && !answer && cluster ? remoteDnsAnswer(state, box, to) : null;
    report.nameResolves = known.has(to) || answer !== null || remoteAnswer !== null;
    // a container of another host that its name would not reach (a Down host's): trace goes on by address
    const named = !report.nameResolves ? claimNamed(box, to, cluster) : undefined;
    if (known.has(to)) {
      address = known.get(to)!;
      facts.push(`${to} is in ${from.name}'s ${hostsFile} as ${address}`);
    } else if (answer) {
      address = answer.ip;
      target = Object.values(state.containers).find((c) => c.endpoints.some((e) => e.ip === address && e.network === answer.network)) ?? target;
      facts.push(`ctnet's DNS server answers ${to} to ${from.name} with ${address} (network ${answer.network})`);
    } else if (remoteAnswer) {
      address = remoteAnswer.ip;
      facts.push(`ctnet's DNS server answers ${to} to ${from.name} with ${address} (network ${remoteAnswer.network}): a container of host ${remoteAnswer.host}, whose line this host's agent wrote from its claim`);
    } else if (named) {
      const claim = named;
      facts.push(`${to} is unknown in ${from.name}: neither in ${hostsFile} nor answered by ctnet's DNS server, so connecting by name fails before any packet is sent (this host's agent writes the names of live hosts' containers only)`);
      address = claim.ip;
      facts.push(`by address: ${to} is ${address} on overlay network ${claim.network}, claimed by host ${claim.host}`);
    } else {
      const why = target ? (target.endpoints.some((e) => e.network !== "bridge") ? "names resolve only between containers that share a user network" : "the default bridge gives containers no names (as in Docker)") : `no container is named ${to}`;
      facts.push(`${to} is unknown in ${from.name}: neither in ${hostsFile} nor answered by ctnet's DNS server (${why}), so connecting by name fails before any packet is sent`);
      address = target?.endpoints[0]?.ip ?? null;
      if (address) facts.push(`by address: ${to} is ${address} on network ${target!.endpoints[0].network}`);
    }
  } else {
    target = Object.values(state.containers).find((c) => c.endpoints.some((e) => e.ip === address));
    if (target) facts.push(`${address} is ${target.name} on network ${target.endpoints.find((e) => e.ip === address)!.network}`);
  }
  report.address = address;
  const claim = !target && address && cluster && !("error" in cluster) ? cluster.claims.find((c) => c.ip === address && box.endpoints.some((e) => e.network === c.network)) : undefined;
  if (claim) {
    report.remote = { container: claim.container, network: claim.network, host: claim.host, vtep: claim.vtep, alive: (cluster as StoreView).live.has(claim.host) };
    report.sharedNetworks = [claim.network];
    if (IPV4.test(to)) facts.push(`${address} is ${claim.container} on overlay network ${claim.network}, on host ${claim.host} (its claim in the store)`);
  }
  if (target) report.sharedNetworks = box.endpoints.map((e) => e.network).filter((n) => target!.endpoints.some((e) => e.network === n));

  // 2. the path for the address, 3. someone listening at its end
  const byAddress = address ? pathVerdict(state, box, target, address, port, facts, report, cluster) : false;
  const listening = port === null || !target ? true : listens(state, target, port, facts);
  report.expected = byAddress && listening && (report.nameResolves ?? true) ? "reachable" : "unreachable";
  return report;
}

/** Whether a TCP socket listens on `port` in the target's namespace (ss, read from inside it). */
function listens(state: State, target: ContainerRecord, port: number, facts: string[]): boolean {
  const box = sandboxOf(state, target);
  const ss = ["ss", "-H", "-l", "-t", "-n", "sport", "=", `:${port}`];
  const res = run(box.mode === "host" ? ss : ["ip", "netns", "exec", box.netns!, ...ss]);
  const yes = res.code === 0 && res.stdout.trim() !== "";
  facts.push(yes ? `a process in ${target.name} listens on ${port}/tcp` : `nothing in ${target.name} listens on ${port}/tcp: a connection would be refused`);
  return yes;
}

/** Explains the path to an address and whether it gets through; appends to facts and report.rules. */
function pathVerdict(state: State, box: ContainerRecord, target: ContainerRecord | undefined, address: string, port: number | null, facts: string[], report: TraceReport, cluster: ClusterFacts | null): boolean {
  if (box.mode === "none") {
    facts.push(`${box.name} runs with --net none: it has only lo, no route anywhere`);
    return false;
  }
  if (box.mode === "host") {
    facts.push(`${box.name} uses the host's network: the host reaches every bridge it holds directly, no forwarding rule applies`);
    return true;
  }
  const ifOf = (net: NetworkRecord) => box.endpoints.find((e) => e.network === net.name)!;
  const onLink = box.endpoints.map((e) => state.networks[e.network]).find((n) => n && contains(parseCidr(n.subnet), addrValue(address)));
  const targetNet = target?.endpoints.map((e) => state.networks[e.network]).find((n) => n && contains(parseCidr(n.subnet), addrValue(address)));
  const proto = port === null ? "icmp" : "tcp";
  const packet = (inNet: NetworkRecord, outIf: string): Packet =>
    ({ in: inNet.bridge, out: outIf, src: ifOf(inNet).ip, dst: address, proto, dport: port, ctstate: new Set(["NEW"]) });

  if (report.sharedNetworks.length > 0) facts.push(`shared network${report.sharedNetworks.length > 1 ? "s" : ""}: ${report.sharedNetworks.join(", ")}`);
  else if (target) facts.push(`${box.name} and ${target.name} share no network (${box.name}: ${box.endpoints.map((e) => e.network).join(", ") || "none"}; ${target.name}: ${target.endpoints.map((e) => e.network).join(", ") || target.mode})`);

  // macvlan, ipvlan: the containers' links hang on a parent NIC, and their traffic never crosses the host's firewall
  const parentOf = (net: NetworkRecord | undefined) => (net ? (driverOf(net).hostSide(net)?.role === "parent" ? driverOf(net).hostSide(net)!.ifname : null) : null);
  const lanOut = onLink ? parentOf(onLink) : parentOf(routeNetwork(state, box));
  if (lanOut !== null) {
    const net = onLink ?? routeNetwork(state, box)!;
    if (onLink && onLink.options.macvlan_mode === "private") {
      facts.push(`${address} is on ${box.name}'s ${net.driver} link ${ifOf(net).ifname} (network ${net.name}), in macvlan_mode=private: its containers cannot reach each other`);
      return false;
    }
    facts.push(onLink
      ? `${address} is on ${box.name}'s ${net.driver} link ${ifOf(net).ifname} (network ${net.name}, ${net.subnet}): the frame goes over parent ${lanOut}, not through the host's IP stack or firewall`
      : `${address} is not on any of ${box.name}'s links: it goes to the LAN gateway ${net.gateway} over parent ${lanOut} (network ${net.name}); the LAN's routing decides, not this host`);
    if (targetNet && parentOf(targetNet) === null && !onLink) facts.push(`${address} is on ctnet network ${targetNet.name}: the LAN reaches it only if its router routes ${targetNet.subnet} to this host`);
    return true;
  }
  if (targetNet && parentOf(targetNet) !== null) {
    facts.push(`${address} is on ${targetNet.driver} network ${targetNet.name}: the host cannot reach its own ${targetNet.driver} containers through their parent ${parentOf(targetNet)}, so neither can containers it forwards for`);
    return false;
  }
  let pkt;
  if (onLink) {
    facts.push(`${address} is on ${box.name}'s link ${ifOf(onLink).ifname} (network ${onLink.name}, ${onLink.subnet}): the packet crosses bridge ${onLink.bridge} without routing`);
    if (onLink.options.icc === "false") facts.push(`network ${onLink.name} has icc=false: traffic between its containers is dropped`);
    const bridged = packet(onLink, onLink.bridge);
    if (onLink.driver === "overlay" && !target) return overlayHops(box, onLink, address, cluster, facts, () => walk(facts, report, bridged));
    pkt = bridged;
  } else {
    const via = routeNetwork(state, box);
    if (!via) {
      facts.push(`${box.name} has no default route: all its networks (${box.endpoints.map((e) => e.network).join(", ")}) are internal`);
      return false;
    }
    facts.push(`${address} is not on any of ${box.name}'s links: it goes to the default gateway ${via.gateway} (network ${via.name}) and the host forwards it`);
    if (!targetNet) {
      facts.push(`${address} is not in a ctnet network of this state; the host's routing decides beyond the gateway`);
      const local = hostAddresses().some((a) => a.address === address);
      if (local) {
        facts.push(`${address} is an address of the host itself: the packet is delivered to the host (INPUT), not forwarded${port !== null ? `; a port published on it is DNATed to its container` : ""}`);
        return true;
      }
      return walk(facts, report, packet(via, routeDev(address)));
    }
    if (targetNet.internal) facts.push(`network ${targetNet.name} is internal: nothing from outside its subnet ${targetNet.subnet} may enter`);
    pkt = packet(via, targetNet.bridge);
  }
  if (target && port !== null && target.ports.some((p) => p.containerPort === port)) {
    const pub = target.ports.filter((p) => p.containerPort === port).map((p) => `${p.hostIp}:${p.hostPort}`).join(", ");
    facts.push(`${target.name} publishes ${port}/tcp on ${pub}: reaching that host address and port would be DNATed here and accepted by CTNET-PORTS`);
  }
  return walk(facts, report, pkt);
}

/** The claim of a container named `name` on one of the box's overlay networks, if the store holds one. */
function claimNamed(box: ContainerRecord, name: string, cluster: ClusterFacts | null): EndpointValue | undefined {
  if (!cluster || "error" in cluster) return undefined;
  return cluster.claims.find((c) => box.endpoints.some((e) => e.network === c.network) && (c.container === name || (c.aliases ?? []).includes(name)));
}

/**
 * The hops of a frame to a container of another host on overlay network `net`, each read from the kernel
 * or the store: FROM's route, the bridge's filter, its VXLAN port, the ARP entry that port answers from,
 * the FDB entry that names the remote VTEP, the underlay route to it, and the remote host's claim.
 * Returns whether they all hold.
 */
function overlayHops(box: ContainerRecord, net: NetworkRecord, address: string, cluster: ClusterFacts | null, facts: string[], bridgeFilter: () => boolean): boolean {
  let ok = true;
  const fail = (fact: string) => {
    facts.push(fact);
    ok = false;
  };
  const route = runJson(["ip", "-n", box.netns!, "-j", "route", "get", address])[0];
  if (!route) fail(`${box.name} has no route to ${address}`);
  else facts.push(`route in ${box.name}: ${address} dev ${route.dev}${route.gateway ? ` via ${route.gateway}` : ", on-link"}${route.prefsrc ? ` src ${route.prefsrc}` : ""}`);
  // the bridge's filter (FORWARD between two of its ports) sees the frame before the VXLAN port does
  if (!bridgeFilter()) ok = false;
  const vx = vxlanIfname(net.vni!);
  const link = runJson(["ip", "-j", "-d", "link", "show", "dev", vx])[0];
  if (!link) {
    fail(`bridge ${net.bridge} has no VXLAN port: ${vx} is MISSING, nothing leaves this host on ${net.name}`);
    return false;
  }
  const local = link.linkinfo?.info_data?.local ?? "?";
  if (link.master !== net.bridge || !(link.flags ?? []).includes("UP")) fail(`${vx} is ${link.master !== net.bridge ? `not plugged into ${net.bridge}` : "DOWN"}: frames for other hosts go nowhere`);
  else facts.push(`bridge ${net.bridge} hands frames for other hosts to its port ${vx} (VXLAN VNI ${net.vni}, local VTEP ${local})`);

  const claim = cluster && !("error" in cluster) ? cluster.claims.find((c) => c.network === net.name && c.ip === address) : undefined;
  const arp = runJson(["ip", "-j", "neigh", "show", "dev", vx]).find((e) => e.dst === address);
  const mac: string | undefined = arp?.lladdr ?? claim?.mac;
  if (!arp?.lladdr) fail(`no ARP entry for ${address} on ${vx}: nothing answers ${box.name}'s ARP request (nolearning, proxy: the device answers only from its neighbour table)`);
  else facts.push(`${vx} answers ${box.name}'s ARP request for ${address} with ${arp.lladdr} (permanent entry${claim && claim.mac !== arp.lladdr ? `; the claim says ${claim.mac}` : ""})`);
  if (claim && arp?.lladdr && claim.mac !== arp.lladdr) ok = false;

  const fdb = mac ? runJson(["bridge", "-j", "fdb", "show", "dev", vx]).find((e) => e.mac === mac && e.dst) : undefined;
  if (mac && !fdb) fail(`no FDB entry for ${mac} on ${vx}: the device learns nothing (nolearning), so the frame is dropped`);
  else if (fdb && claim && fdb.dst !== claim.vtep) fail(`FDB entry on ${vx}: ${mac} → VTEP ${fdb.dst}, but ${claim.container}'s host ${claim.host} has VTEP ${claim.vtep}`);
  else if (fdb) facts.push(`FDB entry on ${vx}: ${mac} → VTEP ${fdb.dst}`);
  const vtep: string | undefined = fdb?.dst ?? claim?.vtep;
  if (vtep) {
    const under = runJson(["ip", "-j", "route", "get", vtep])[0];
    if (!under) fail(`no underlay route to VTEP ${vtep}`);
    else facts.push(`underlay: VXLAN (UDP ${VXLAN_PORT}, VNI ${net.vni}) to ${vtep} leaves by ${under.dev}${under.gateway ? ` via ${under.gateway}` : ""} src ${under.prefsrc ?? local}`);
  }
  if (!cluster) fail(`this host's store was not read: which host holds ${address} is unknown`);
  else if ("error" in cluster) fail(`the store is unreadable (${cluster.error}): which host holds ${address} is unknown`);
  else if (!claim) fail(`no container of the cluster claims ${address} on ${net.name} in the store`);
  else if (!cluster.live.has(claim.host)) fail(`host ${claim.host} (VTEP ${claim.vtep}) holds ${claim.container} (its claim in the store) but is Down: its lease expired, nothing answers there`);
  else facts.push(`host ${claim.host} (VTEP ${claim.vtep}, Ready) delivers to ${claim.container}: its claim /ctnet/endpoints/${net.name}/${address} in the store`);
  if (ok) facts.push(`the reply needs ${claim!.host}'s own entries for ${box.name} and its firewall's consent, which this host cannot read: the probe tests them`);
  return ok;
}

/** The host interface the kernel would route an address out of. */
function routeDev(address: string): string {
  const res = run(["ip", "-j", "route", "get", address]);
  try {
    return JSON.parse(res.stdout)[0]?.dev ?? "?";
  } catch {
    return "?";
  }
}

function walk(facts: string[], report: TraceReport, pkt: Packet): boolean {
  const { verdict, path, skipped } = firewall.walk(firewall.readHost(), pkt);
  report.rules = path;
  const decisive = path[path.length - 1];
  facts.push(`filter FORWARD for ${pkt.src} → ${pkt.dst}${pkt.dport ? `:${pkt.dport}/tcp` : " (icmp)"}, in ${pkt.in}, out ${pkt.out}: ${verdict}${decisive ? ` by ${decisive}` : ""}`);
  if (skipped.length) facts.push(`(${skipped.length} rule${skipped.length > 1 ? "s" : ""} with matches ctnet cannot evaluate were passed over, e.g. ${skipped[0]})`);
  return verdict === "ACCEPT";
}

// ---- the probe ---------------------------------------------------------------------------------

export function probe(state: State, report: TraceReport): void {
  const box = sandboxOf(state, state.containers[report.from]);
  const dest = report.to;
  const cmd = report.port === null ? ["ping", "-c", "1", "-W", "1", dest] : ["nc", "-z", "-w", "2", dest, String(report.port)];
  const argv = box.mode === "host" ? cmd : ["ip", "netns", "exec", box.netns!, ...cmd];
  const res = run(argv);
  report.probe = { command: argv, ok: res.code === 0, output: (res.stdout + res.stderr).trim().split("\n").slice(-2).join(" | ") };
  report.agrees = report.probe.ok === (report.expected === "reachable");
}

export function renderTrace(r: TraceReport): string {
  const out = [`trace ${r.from} → ${r.to}${r.port !== null ? ` port ${r.port}/tcp` : ""}`];
  for (const f of r.facts) out.push(`  • ${f}`);
  if (r.rules.length) {
    out.push("  rules the packet meets (iptables -t filter):");
    for (const rule of r.rules) out.push(`      ${rule}`);
  }
  out.push(`  expected: ${r.expected.toUpperCase()}`);
  if (r.probe) {
    out.push(`  probe: ${r.probe.command.join(" ")} → ${r.probe.ok ? "reached" : "failed"}${r.probe.output ? ` (${r.probe.output})` : ""}`);
    out.push(`  ${r.agrees ? "the probe agrees" : "the probe DISAGREES with the explanation: something outside ctnet's model decides (run ctnet doctor, or read iptables-save)"}`);
  }
  return out.join("\n") + "\n";
}

export async function traceCommand(state: State, from: string, to: string, portText: string | undefined, o: { format?: string; probe?: boolean }): Promise<void> {
  let port: number | null = null;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw new UsageError(`invalid port ${JSON.stringify(portText)}: 1..65535`);
    port = Number(portText);
  }
  const fmt = o.format ?? "text";
  if (fmt !== "text" && fmt !== "json") throw new UsageError(`invalid --format ${JSON.stringify(fmt)}: text or json`);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(to)) throw new UsageError(`invalid destination ${JSON.stringify(to)}: a container name or an IPv4 address`);
  // the store (and its client) only when TO may be on another host
  const cluster = crossesHosts(state, from, to) ? await (await import("../cluster/crosshost.js")).tryStoreView(state) : null;
  const report = explain(state, from, to, port, cluster);
  if (o.probe !== false) probe(state, report);
  process.stdout.write(fmt === "json" ? JSON.stringify(report, null, 4) + "\n" : renderTrace(report));
}
