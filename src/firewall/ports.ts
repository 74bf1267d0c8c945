// Port publishing: -p/-P/--expose specs, host-port allocation and conflicts, and the iptables rules that
// make a published port answer on the host's addresses (the chains themselves are laid out in firewall.ts).
//
// Per mapping HOSTIP:HOSTPORT -> container IP:PORT on bridge BR (subnet SUB), Docker's rules without its
// userland proxy:
//   nat    CTNET-DNAT         [-d HOSTIP] --dport HOSTPORT -j DNAT --to-destination IP:PORT
//   filter CTNET-PORTS        -d IP -o BR --dport PORT --ctstate DNAT -j ACCEPT (only translated traffic)
//   nat    CTNET-POSTROUTING  -s SUB -d IP -o BR --dport PORT --ctstate DNAT -j MASQUERADE (hairpin: a
//                             container reaching its own network's published port via a host address)
// Per bridge with a port reachable on 127.0.0.1 (HOSTIP 0.0.0.0 or 127.x):
//   sysctl net.ipv4.conf.BR.route_localnet=1 (a 127.0.0.1 source may be routed out of BR), and
//   nat    CTNET-POSTROUTING  -s 127.0.0.0/8 -o BR -j MASQUERADE (the container answers the gateway)
//   filter CTNET-INPUT        -i BR -d 127.0.0.0/8 ! --ctstate RELATED,ESTABLISHED -j DROP (route_localnet
//                             must not let containers reach the host's loopback services)
// Per publishing endpoint: hairpin mode on its bridge port. With br_netfilter the DNAT of a container's
// own request to its published port happens while the frame is bridged, and the answer must leave
// through the port the request came in by.
// Per UDP mapping that goes away (unpublish, rm, disconnect), when the conntrack tool is there:
//   conntrack -D of the flows it translated. A UDP flow has no end: a client that keeps sending from one
//   source port would otherwise keep the old translation for as long as it sends.
//
// Every change is planned as a difference between the rules the state implies before and after it, so
// run, rm, disconnect, publish and unpublish add or remove exactly their own rules, and rules shared by
// several mappings (the same container port published twice) stay while one still needs them.
import { UsageError } from "../errors.js";
import { addRule, deleteRule, loopbackReachable, portRules, localnetRules, type Rule } from "./firewall.js";
import { dnatOf, ruleKey } from "./iptables.js";
import { ANY_ADDRESS, mappingText, networkIntent, publishingEndpoint } from "./intent.js";
import { addrText, parseAddress } from "../ipam.js";
import { Plan } from "../plan/plan.js";
import { liveHostFacts, type HeldPort, type HostFacts } from "../host/facts.js";
import type { PlanContext } from "../drivers/driver.js";
import { runModeText, type ContainerRecord, type ExposedPort, type NetworkRecord, type PortMapping, type State } from "../model.js";

export type Proto = PortMapping["proto"];
const PROTOS: Proto[] = ["tcp", "udp"];

// ---- specs ---------------------------------------------------------------------------------------

type Range = [number, number];

/** One -p spec: [HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/proto]. */
export interface PublishSpec {
  text: string;
  /** "" when not given (every host address) */
  hostIp: string;
  /** null: pick free host ports */
  hostPorts: Range | null;
  containerPorts: Range;
  proto: Proto;
}

function parseRange(part: string, spec: string): Range {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
  if (!m) throw new UsageError(`invalid port ${JSON.stringify(part)} in ${JSON.stringify(spec)}: expected PORT or START-END`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  for (const p of [start, end]) {
    if (p < 1 || p > 65535) throw new UsageError(`invalid port ${p} in ${JSON.stringify(spec)}: ports are 1-65535`);
  }
  if (start > end) throw new UsageError(`invalid port range ${part} in ${JSON.stringify(spec)}: ${start} is above ${end}`);
  return [start, end];
}

const rangeText = ([a, b]: Range) => (a === b ? String(a) : `${a}-${b}`);
const rangeLength = ([a, b]: Range) => b - a + 1;

function splitProto(spec: string): { body: string; proto: Proto } {
  const slash = spec.lastIndexOf("/");
  if (slash === -1) return { body: spec, proto: "tcp" };
  const proto = spec.slice(slash + 1).toLowerCase();
  if (!(PROTOS as string[]).includes(proto)) {
    throw new UsageError(`unknown protocol ${JSON.stringify(spec.slice(slash + 1))} in ${JSON.stringify(spec)}: ctnet publishes tcp and udp`);
  }
  return { body: spec.slice(0, slash), proto: proto as Proto };
}

function hostAddress(text: string, spec: string): string {
  try {
    return addrText(parseAddress(text, "host address").bigInt());
  } catch {
    throw new UsageError(`invalid host address ${JSON.stringify(text)} in ${JSON.stringify(spec)}: not an IPv4 address`);
  }
}

/**
 * Most ports a container publishes. Each is three rules, and every new connection to any address of the
 * host walks CTNET-DNAT rule by rule; removing a UDP mapping is one conntrack call. Figures: docs/ports.md,
 * "Limits".
 */
export const MAX_PUBLISHED_PORTS = 1024;
const limitText = `a container publishes at most ${MAX_PUBLISHED_PORTS} ports (docs/ports.md, "Limits")`;

/** A spec to publish: as `parseSpec`, and refused when its range alone is above MAX_PUBLISHED_PORTS. */
export function parsePublishSpec(spec: string): PublishSpec {
  const parsed = parseSpec(spec);
  const ports = rangeLength(parsed.containerPorts);
  if (ports > MAX_PUBLISHED_PORTS) {
    throw new UsageError(`port range ${rangeText(parsed.containerPorts)} in ${JSON.stringify(spec)} has ${ports} ports: ${limitText}`);
  }
  return parsed;
}

/** Refuses, before any host port is resolved, specs that would take the container above MAX_PUBLISHED_PORTS. */
function checkPublishLimit(c: ContainerRecord, specs: PublishSpec[]): void {
  const total = c.ports.length + specs.reduce((n, s) => n + rangeLength(s.containerPorts), 0);
  if (total > MAX_PUBLISHED_PORTS) throw new UsageError(`container ${c.name} would publish ${total} ports: ${limitText}`);
}

/** A spec as given to `port unpublish` too, where any range may name what to remove. */
function parseSpec(spec: string): PublishSpec {
  if (spec.startsWith("[")) throw new UsageError(`invalid port spec ${JSON.stringify(spec)}: ctnet publishes on IPv4 addresses only`);
  const { body, proto } = splitProto(spec);
  const parts = body.split(":");
  if (parts.length > 3) throw new UsageError(`invalid port spec ${JSON.stringify(spec)}: expected [HOSTIP:][HOSTPORT:]PORT[/tcp|/udp]`);
  const [hostIpText, hostText, containerText] = parts.length === 3 ? parts : parts.length === 2 ? ["", ...parts] : ["", "", ...parts];
  const hostIp = hostIpText === "" ? "" : hostAddress(hostIpText, spec);
  const containerPorts = parseRange(containerText, spec);
  const hostPorts = hostText === "" ? null : parseRange(hostText, spec);
  if (hostPorts && rangeLength(hostPorts) !== rangeLength(containerPorts)) {
    throw new UsageError(
      `host ports ${rangeText(hostPorts)} and container ports ${rangeText(containerPorts)} in ${JSON.stringify(spec)} differ in number (${rangeLength(hostPorts)} and ${rangeLength(containerPorts)})`,
    );
  }
  return { text: spec, hostIp, hostPorts, containerPorts, proto };
}

/** --expose PORT[-END][/proto] */
export function parseExposeSpec(spec: string): ExposedPort[] {
  const { body, proto } = splitProto(spec);
  const [a, b] = parseRange(body, spec);
  const out: ExposedPort[] = [];
  for (let p = a; p <= b; p++) out.push({ containerPort: p, proto });
  return out;
}

// ---- the host's ports ----------------------------------------------------------------------------

/** What allocation and conflict checks need to know about the host, gathered once per command. */
export interface HostPorts {
  held: HeldPort[];
  addresses: Set<string>;
  ephemeral: Range;
}

const overlapIp = (a: string, b: string) => a === ANY_ADDRESS || b === ANY_ADDRESS || a === b;

const publishedBy = (container: string, m: PortMapping) => `already published by container ${container} (${mappingText(m)})`;

function ephemeralRange(facts: HostFacts): Range {
  const [a, b] = facts.sysctl("net.ipv4.ip_local_port_range").split(/\s+/).map(Number);
  // else the kernel's default
  return a > 0 && b >= a ? [a, b] : [32768, 60999];
}

/** DNAT rules in the kernel's CTNET-DNAT chain, which other ctnet state dirs may have made. */
function kernelMappings(facts: HostFacts): Array<HeldPort & { to: string }> {
  return facts.firewallChain("nat", "CTNET-DNAT").flatMap((r) => {
    const d = dnatOf(r.spec);
    return d ? [{ ...d, why: `already published by another ctnet state dir (DNAT to ${d.to})` }] : [];
  });
}

/**
 * Ports Docker publishes (its nat chain DOCKER). Its docker-proxy listens on them too, and `ss` finds it;
 * with "userland-proxy": false the DNAT rule is all there is. Whichever DNAT comes first in PREROUTING
 * would take the port, so both publishing it would be a coin toss: it is refused.
 */
function dockerMappings(facts: HostFacts): HeldPort[] {
  return facts.firewallChain("nat", "DOCKER").flatMap((r) => {
    const d = dnatOf(r.spec);
    return d ? [{ hostIp: d.hostIp, proto: d.proto, hostPort: d.hostPort, why: `published by Docker (DNAT to ${d.to} in its nat chain DOCKER)` }] : [];
  });
}

function gatherHostPorts(state: State, facts: HostFacts): HostPorts {
  const held: HeldPort[] = [];
  const ours = new Set<string>();
  for (const c of Object.values(state.containers)) {
    const ep = publishingEndpoint(state, c);
    for (const m of c.ports) {
      held.push({ ...m, why: publishedBy(c.name, m) });
      if (ep) ours.add(`${m.hostIp}:${m.hostPort}/${m.proto}>${ep.ip}:${m.containerPort}`);
    }
  }
  for (const k of kernelMappings(facts)) if (!ours.has(`${k.hostIp}:${k.hostPort}/${k.proto}>${k.to}`)) held.push(k);
  held.push(...dockerMappings(facts), ...facts.listeningSockets());
  return { held, addresses: facts.hostAddresses(), ephemeral: ephemeralRange(facts) };
}

/**
 * The holders of the host's ports by "PORT/proto", so each check looks at the few holders of one port and
 * a range resolves in time linear in its length, not in its square (65535 ports took 8 minutes).
 */
class HeldIndex {
  private readonly byPort = new Map<string, HeldPort[]>();
  /** per "HOSTIP/proto": below it every ephemeral port is taken (held ports are only ever added) */
  private readonly nextFree = new Map<string, number>();

  constructor(held: HeldPort[], private readonly ephemeral: Range) {
    held.forEach((h) => this.add(h));
  }

  add(h: HeldPort): void {
    const key = `${h.hostPort}/${h.proto}`;
    const list = this.byPort.get(key);
    if (list) list.push(h);
    else this.byPort.set(key, [h]);
  }

  holder(hostIp: string, hostPort: number, proto: Proto): HeldPort | undefined {
    return this.byPort.get(`${hostPort}/${proto}`)?.find((h) => overlapIp(h.hostIp, hostIp));
  }

  freePort(hostIp: string, proto: Proto): number {
    const [low, high] = this.ephemeral;
    const cursor = `${hostIp}/${proto}`;
    for (let p = this.nextFree.get(cursor) ?? low; p <= high; p++) {
      if (this.holder(hostIp, p, proto)) continue;
      this.nextFree.set(cursor, p + 1);
      return p;
    }
    throw new UsageError(`no free host port left for ${proto} in ${low}-${high} (/proc/sys/net/ipv4/ip_local_port_range)`);
  }
}

/**
 * Turns specs into mappings: checks host addresses, allocates free host ports for specs without one, and
 * refuses host ports that are taken. Each new mapping holds its host port at once, so specs cannot clash
 * among themselves either.
 */
export function resolveMappings(specs: PublishSpec[], host: HostPorts, owner: string, defaultIp: HostBinding = { ip: ANY_ADDRESS }): PortMapping[] {
  const held = new HeldIndex(host.held, host.ephemeral);
  const out: PortMapping[] = [];
  const seen = new Set<string>();
  for (const spec of specs) {
    const hostIp = spec.hostIp || defaultIp.ip;
    if (hostIp !== ANY_ADDRESS && !host.addresses.has(hostIp)) {
      const from = spec.hostIp ? "" : ` (${defaultIp.from})`;
      throw new UsageError(`host address ${hostIp}${from} in ${JSON.stringify(spec.text)} is not an address of this host`);
    }
    const [c0, c1] = spec.containerPorts;
    for (let cport = c0; cport <= c1; cport++) {
      const hostPort = spec.hostPorts ? spec.hostPorts[0] + (cport - c0) : held.freePort(hostIp, spec.proto);
      const m: PortMapping = { hostIp, hostPort, containerPort: cport, proto: spec.proto };
      if (seen.has(mappingText(m))) continue;
      const holder = held.holder(hostIp, hostPort, spec.proto);
      if (holder) throw new UsageError(`host port ${hostIp}:${hostPort}/${spec.proto} in ${JSON.stringify(spec.text)} is ${holder.why}`);
      held.add({ ...m, why: publishedBy(owner, m) });
      seen.add(mappingText(m));
      out.push(m);
    }
  }
  return out;
}

/** The host address of a spec that names none. */
interface HostBinding {
  ip: string;
  /** where it comes from, when not the default */
  from?: string;
}

// ---- which endpoint a container publishes on -----------------------------------------------------

/** A network's -o com.docker.network.bridge.host_binding_ipv4 (daemon.json's ip for the default bridge), Docker's DefaultBindingIP. */
function hostBinding(state: State, c: ContainerRecord): HostBinding {
  const net = state.networks[publishingEndpoint(state, c)!.network];
  return net.options.host_ip ? { ip: net.options.host_ip, from: `network ${net.name}'s host_binding_ipv4` } : { ip: ANY_ADDRESS };
}

function checkCanPublish(state: State, c: ContainerRecord): void {
  if (c.mode !== "bridge") {
    throw new UsageError(`container ${c.name} uses --net ${runModeText(c)}: ports are published from bridge networks only`);
  }
  if (!publishingEndpoint(state, c)) {
    const nets = c.endpoints.map((e) => e.network).join(", ");
    if (c.endpoints.every((e) => state.networks[e.network]?.internal)) throw new UsageError(`container ${c.name} is only on internal networks (${nets}): internal networks cannot publish ports`);
    throw new UsageError(`container ${c.name} is only on networks without a bridge (${nets}): macvlan and ipvlan containers are reached on their own address, not through published ports`);
  }
}

// ---- rules ---------------------------------------------------------------------------------------

/** Install order ("links": route_localnet and hairpin); removal runs it backwards, so packets never meet a DNAT whose ACCEPT is missing. */
const CHAIN_ORDER = ["CTNET-INPUT", "CTNET-PORTS", "links", "CTNET-POSTROUTING", "CTNET-DNAT"];

/** The port rules, route_localnet bridges and hairpin ports a state implies. */
export interface PortLayer {
  rules: Map<string, Rule>;
  localnet: Map<string, NetworkRecord>;
  /** host-side veth -> its container's name */
  hairpin: Map<string, string>;
  /** UDP mappings by "HOSTIP:HOSTPORT>IP:PORT": their conntrack entries go when they do */
  udp: Map<string, { mapping: PortMapping; ip: string; container: string }>;
}

export function portLayer(state: State): PortLayer {
  const layer: PortLayer = { rules: new Map(), localnet: new Map(), hairpin: new Map(), udp: new Map() };
  const add = (r: Rule) => layer.rules.set(ruleKey(r), r);
  const intents = new Map<string, ReturnType<typeof networkIntent>>();
  for (const c of Object.values(state.containers)) {
    const ep = publishingEndpoint(state, c);
    if (!ep || c.ports.length === 0) continue;
    const net = state.networks[ep.network];
    layer.hairpin.set(ep.hostIf, c.name);
    for (const m of c.ports) {
      if (!intents.has(net.name)) intents.set(net.name, networkIntent(net));
      portRules({ container: c.name, ip: ep.ip, network: intents.get(net.name)!, mapping: m }).forEach(add);
      if (loopbackReachable(m.hostIp)) layer.localnet.set(net.bridge, net);
      if (m.proto === "udp") layer.udp.set(`${m.hostIp}:${m.hostPort}>${ep.ip}:${m.containerPort}`, { mapping: m, ip: ep.ip, container: c.name });
    }
  }
  for (const net of layer.localnet.values()) localnetRules(networkIntent(net)).forEach(add);
  return layer;
}

const localnetKey = (br: string) => `net.ipv4.conf.${br}.route_localnet`;
/** sysctl's slash form, since bridge names may contain dots */
const localnetArg = (br: string, value: string) => `net/ipv4/conf/${br}/route_localnet=${value}`;

/** A bridge this plan creates starts with the "default" value. */
const readLocalnet = (facts: HostFacts, br: string) => facts.sysctl(localnetKey(br)) || facts.sysctl("net.ipv4.conf.default.route_localnet") || "0";

/** Sorted by chain in CHAIN_ORDER (or backwards), each chain's rules kept in the order they were added. */
const byChain = (rules: Rule[], direction: 1 | -1 = 1) =>
  [...rules].sort((a, b) => direction * (CHAIN_ORDER.indexOf(a.chain) - CHAIN_ORDER.indexOf(b.chain)));

/**
 * Removes what `before` has and `after` lacks: DNAT first, so no packet is forwarded into a missing rule.
 * Within a chain rules go in the order they were added: iptables-nft deletes a run of rules from the end
 * of a chain in time quadratic in their number (6000 took 2 minutes), from the front in linear time.
 */
export function retirePorts(plan: Plan, state: State, before: PortLayer, after: PortLayer, facts: HostFacts = liveHostFacts()): void {
  const gone = byChain([...before.rules].filter(([k]) => !after.rules.has(k)).map(([, r]) => r), -1);
  const linksAt = gone.findIndex((r) => CHAIN_ORDER.indexOf(r.chain) < CHAIN_ORDER.indexOf("links"));
  gone.forEach((r, i) => {
    if (i === linksAt) restoreLinkSettings(plan, facts, state, before, after);
    deleteRule(plan, r);
  });
  if (linksAt === -1) restoreLinkSettings(plan, facts, state, before, after);
  forgetFlows(plan, facts, before, after);
}

/** Last, since it cannot be undone: with the DNAT gone no new flow is translated, and these end the old ones. */
function forgetFlows(plan: Plan, facts: HostFacts, before: PortLayer, after: PortLayer): void {
  const gone = [...before.udp].filter(([k]) => !after.udp.has(k));
  if (gone.length === 0 || !facts.hasTool("conntrack")) return;
  for (const [, { mapping: m, ip, container }] of gone) {
    const dst = m.hostIp === ANY_ADDRESS ? [] : ["--orig-dst", m.hostIp];
    plan.cmd(
      ["conntrack", "-D", "-p", "udp", ...dst, "--orig-port-dst", String(m.hostPort), "--reply-src", ip, "--reply-port-src", String(m.containerPort)],
      `forget UDP flows of ${mappingText(m)} (to ${container}): a client still sending would keep the old translation (exit 1: there were none)`,
      null,
      1,
    );
  }
}

function restoreLinkSettings(plan: Plan, facts: HostFacts, state: State, before: PortLayer, after: PortLayer): void {
  for (const br of before.localnet.keys()) {
    if (after.localnet.has(br)) continue;
    const rec = state.sysctls[localnetKey(br)];
    if (!rec) continue;
    if (readLocalnet(facts, br) === rec.value) {
      plan.cmd(["sysctl", "-w", localnetArg(br, rec.previous)], `no port on ${br} is published on 127.0.0.1 any more: restore route_localnet`, ["sysctl", "-w", localnetArg(br, rec.value)]);
    }
    delete state.sysctls[localnetKey(br)];
  }
  for (const hostIf of before.hairpin.keys()) {
    if (!after.hairpin.has(hostIf)) plan.cmd(hairpinArgv(hostIf, "off"), `${before.hairpin.get(hostIf)} publishes nothing here any more: hairpin off`, hairpinArgv(hostIf, "on"));
  }
}

const hairpinArgv = (hostIf: string, mode: "on" | "off") => ["ip", "link", "set", "dev", hostIf, "type", "bridge_slave", "hairpin", mode];

/** Adds what `after` has and `before` lacks: ACCEPT and route_localnet before the DNAT that needs them. */
export function installPorts(plan: Plan, state: State, before: PortLayer, after: PortLayer, facts: HostFacts = liveHostFacts()): void {
  const added = byChain([...after.rules].filter(([k]) => !before.rules.has(k)).map(([, r]) => r));
  const linksAt = added.findIndex((r) => CHAIN_ORDER.indexOf(r.chain) > CHAIN_ORDER.indexOf("links"));
  added.forEach((r, i) => {
    if (i === linksAt) applyLinkSettings(plan, facts, state, before, after);
    addRule(plan, r);
  });
  if (linksAt === -1) applyLinkSettings(plan, facts, state, before, after);
}

function applyLinkSettings(plan: Plan, facts: HostFacts, state: State, before: PortLayer, after: PortLayer): void {
  for (const [br, net] of after.localnet) {
    if (before.localnet.has(br)) continue;
    const previous = readLocalnet(facts, br);
    if (previous === "1") continue;
    plan.cmd(["sysctl", "-w", localnetArg(br, "1")], `${net.name} publishes a port on 127.0.0.1: let ${br} route loopback-sourced packets (route_localnet)`, ["sysctl", "-w", localnetArg(br, previous)]);
    state.sysctls[localnetKey(br)] = { key: localnetKey(br), previous, value: "1" };
  }
  for (const [hostIf, name] of after.hairpin) {
    if (!before.hairpin.has(hostIf)) plan.cmd(hairpinArgv(hostIf, "on"), `hairpin on ${hostIf}: ${name} can reach its own published ports via the host's address`, hairpinArgv(hostIf, "off"));
  }
}

// ---- commands ------------------------------------------------------------------------------------

/** The part of the PlanContext (drivers/driver.ts) the port planners use: ports.ts is below the drivers. */
export type PortContext = Pick<PlanContext, "facts">;

export interface PublishOptions {
  publish?: string[];
  publishAll?: boolean;
  expose?: string[];
}

/**
 * `run -p/-P/--expose`: records the container's ports and installs their rules. `c` is in state already.
 * Returns warnings for the user: like Docker, ports published in host mode are discarded, not refused.
 */
export function publishOnRun(plan: Plan, ctx: PortContext, state: State, c: ContainerRecord, o: PublishOptions): string[] {
  const specs = (o.publish ?? []).map(parsePublishSpec);
  const exposed = (o.expose ?? []).flatMap(parseExposeSpec);
  if (c.mode === "host") {
    // the container's sockets are the host's own: there is nothing to map (docker ps shows no ports either)
    const given = [...(o.publish ?? []).map((p) => `-p ${p}`), ...(o.publishAll ? ["-P"] : [])];
    return given.length ? [`published ports are discarded when using host network mode (${given.join(" ")}): the container listens on the host's ports itself`] : [];
  }
  for (const s of specs) {
    for (let p = s.containerPorts[0]; p <= s.containerPorts[1]; p++) exposed.push({ containerPort: p, proto: s.proto });
  }
  c.expose = dedupe(exposed, (e) => `${e.containerPort}/${e.proto}`).sort(byPort);
  // Docker publishes the image's EXPOSEd ports, silently none without; ctnet has no images, so it says so
  if (o.publishAll && c.expose.length === 0) return ["-P publishes nothing: no port is exposed (ctnet has no images to expose any): add --expose PORT or use -p"];
  if (specs.length === 0 && !o.publishAll) return [];
  checkCanPublish(state, c);
  const explicit = new Set(specs.flatMap((s) => portsOf(s).map((p) => `${p}/${s.proto}`)));
  if (o.publishAll) {
    for (const e of c.expose) {
      if (!explicit.has(`${e.containerPort}/${e.proto}`)) specs.push({ text: `${e.containerPort}/${e.proto}`, hostIp: "", hostPorts: null, containerPorts: [e.containerPort, e.containerPort], proto: e.proto });
    }
  }
  checkPublishLimit(c, specs);
  const before = portLayer(state);
  c.ports = resolveMappings(specs, gatherHostPorts(state, ctx.facts), c.name, hostBinding(state, c));
  installPorts(plan, state, before, portLayer(state), ctx.facts);
  return [];
}

/** `port publish NAME SPEC…` on an existing container. */
export function planPublish(state: State, c: ContainerRecord, specTexts: string[], ctx: PortContext): Plan {
  const specs = specTexts.map(parsePublishSpec);
  checkCanPublish(state, c);
  checkPublishLimit(c, specs);
  const plan = new Plan(`port publish ${c.name} ${specTexts.join(" ")}`);
  const before = portLayer(state);
  const added = resolveMappings(specs, gatherHostPorts(state, ctx.facts), c.name, hostBinding(state, c));
  c.ports = [...c.ports, ...added].sort(byPort);
  c.expose = dedupe([...c.expose, ...added.map((m) => ({ containerPort: m.containerPort, proto: m.proto }))], (e) => `${e.containerPort}/${e.proto}`).sort(byPort);
  installPorts(plan, state, before, portLayer(state), ctx.facts);
  return plan;
}

/**
 * `port unpublish NAME SPEC…`: a full spec removes exactly those mappings; CPORT[/proto] (optionally with
 * HOSTIP::) removes every mapping of those container ports.
 */
export function planUnpublish(state: State, c: ContainerRecord, specTexts: string[], ctx: PortContext): Plan {
  const plan = new Plan(`port unpublish ${c.name} ${specTexts.join(" ")}`);
  const removing = new Set<PortMapping>();
  for (const spec of specTexts.map(parseSpec)) {
    const hits = c.ports.filter((m) => matches(spec, m));
    if (hits.length === 0) throw new UsageError(`${JSON.stringify(spec.text)} is not published by container ${c.name}${c.ports.length ? ` (it publishes ${c.ports.map(mappingText).join(", ")})` : ""}`);
    hits.forEach((m) => removing.add(m));
  }
  const before = portLayer(state);
  c.ports = c.ports.filter((m) => !removing.has(m));
  retirePorts(plan, state, before, portLayer(state), ctx.facts);
  return plan;
}

function matches(spec: PublishSpec, m: PortMapping): boolean {
  const [c0, c1] = spec.containerPorts;
  if (m.proto !== spec.proto || m.containerPort < c0 || m.containerPort > c1) return false;
  if (spec.hostIp && spec.hostIp !== m.hostIp) return false;
  return !spec.hostPorts || m.hostPort === spec.hostPorts[0] + (m.containerPort - c0);
}

/** Called when a container loses the endpoint its ports are published on and no other can carry them. */
export function dropUnpublishable(state: State, c: ContainerRecord): void {
  if (c.ports.length > 0 && !publishingEndpoint(state, c)) c.ports = [];
}

// ---- views ---------------------------------------------------------------------------------------

const portsOf = (s: PublishSpec) => Array.from({ length: rangeLength(s.containerPorts) }, (_, i) => s.containerPorts[0] + i);
const byPort = (a: { containerPort: number; proto: string; hostPort?: number }, b: typeof a) =>
  a.containerPort - b.containerPort || a.proto.localeCompare(b.proto) || (a.hostPort ?? 0) - (b.hostPort ?? 0);

function dedupe<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const it of items) if (!seen.has(key(it))) seen.set(key(it), it);
  return [...seen.values()];
}

/** `docker port` lines: "80/tcp -> 0.0.0.0:8080", or only "0.0.0.0:8080" when asked about one port. */
export function portLines(c: ContainerRecord, filter?: string): string[] {
  if (!filter) return [...c.ports].sort(byPort).map((m) => `${m.containerPort}/${m.proto} -> ${m.hostIp}:${m.hostPort}`);
  const { body, proto } = splitProto(filter);
  const [port] = parseRange(body, filter);
  const hits = c.ports.filter((m) => m.containerPort === port && m.proto === proto);
  if (hits.length === 0) throw new UsageError(`no public port '${port}/${proto}' published for ${c.name}`);
  return hits.map((m) => `${m.hostIp}:${m.hostPort}`);
}

/**
 * The PORTS column of `ps`, like Docker's: consecutive mappings folded into ranges
 * ("0.0.0.0:8000-8002->80-82/tcp"), exposed ports without a mapping as "80/tcp".
 */
export function formatPorts(c: ContainerRecord): string {
  const parts: string[] = [];
  const sorted = [...c.ports].sort((a, b) => a.hostIp.localeCompare(b.hostIp) || a.proto.localeCompare(b.proto) || a.hostPort - b.hostPort);
  let run: PortMapping[] = [];
  const flush = () => {
    if (run.length === 0) return;
    const [f, l] = [run[0], run[run.length - 1]];
    const host = rangeText([f.hostPort, l.hostPort]);
    parts.push(`${f.hostIp}:${host}->${rangeText([f.containerPort, l.containerPort])}/${f.proto}`);
    run = [];
  };
  for (const m of sorted) {
    const last = run[run.length - 1];
    const continues = last && last.hostIp === m.hostIp && last.proto === m.proto && m.hostPort === last.hostPort + 1 && m.containerPort === last.containerPort + 1;
    if (!continues) flush();
    run.push(m);
  }
  flush();
  const published = new Set(c.ports.map((m) => `${m.containerPort}/${m.proto}`));
  for (const e of [...c.expose].sort(byPort)) if (!published.has(`${e.containerPort}/${e.proto}`)) parts.push(`${e.containerPort}/${e.proto}`);
  return parts.join(", ");
}
