// Network commands (net create/rm/prune/connect/disconnect) turned into plans, and the views that
// list and inspect networks the way `docker network` does.
import { createHash } from "node:crypto";
import { UsageError } from "../errors.js";
import {
  addrText, addrValue, allocateAddress, checkHostAddress, checkUsableSubnet, chooseSubnet, contains,
  macFor, overlaps, parseAddress, parseCidr, type Cidr,
} from "../ipam.js";
import { attachEndpoints, detachEndpoint, setUpNetwork, tearDownNetwork } from "../drivers/bridge.js";
import { DEFAULT_BRIDGE_NETWORK, PREDEFINED_NETWORKS, bridgeIfname, hostVethIfname, newId, validateName } from "../naming.js";
import { Plan } from "../plan/plan.js";
import { dropUnpublishable, installPorts, portLayer, retirePorts } from "../firewall/ports.js";
import { syncNames } from "../dns/names.js";
import { containerDigests, containerRecords } from "../store/statefile.js";
import { hostSubnetsInUse, linkExists, vethLeaving } from "../host/sys.js";
import type { ContainerRecord, Endpoint, NetworkRecord, State } from "../model.js";

export interface CreateNetworkOptions {
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  internal?: boolean;
  opt?: string[];
  label?: string[];
  lab?: string;
}

/** -o keys ctnet understands, with Docker's long names as synonyms. */
const OPTION_KEYS: Record<string, string> = {
  icc: "icc",
  "com.docker.network.bridge.enable_icc": "icc",
  masquerade: "masquerade",
  "com.docker.network.bridge.enable_ip_masquerade": "masquerade",
  mtu: "mtu",
  "com.docker.network.driver.mtu": "mtu",
};

const MIN_MTU = 576;

export function parseKeyValues(pairs: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid ${what} ${JSON.stringify(pair)}: expected KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function normaliseOptions(raw: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    const short = OPTION_KEYS[key];
    if (!short) throw new UsageError(`unknown network option ${JSON.stringify(key)}: known are icc, masquerade, mtu`);
    if (short === "mtu") {
      // Docker parses it and refuses only a negative one, leaving the rest to the kernel (68..65535 for a
      // bridge). ctnet refuses below 576, the smallest datagram every IPv4 host must accept (RFC 791).
      const n = Number(value);
      if (!/^\d+$/.test(value) || n < MIN_MTU || n > 65535) throw new UsageError(`invalid mtu ${JSON.stringify(value)}: must be ${MIN_MTU}..65535`);
    } else if (value !== "true" && value !== "false") {
      throw new UsageError(`invalid value for ${key}: ${JSON.stringify(value)} (true or false)`);
    }
    out[short] = value;
  }
  return out;
}

/** Subnets the new network must not overlap: the host's routes and addresses, and every ctnet network. */
function subnetsInUse(state: State): Array<{ cidr: Cidr; where: string }> {
  const ours = new Set(Object.values(state.networks).map((n) => n.bridge));
  return [
    ...hostSubnetsInUse().filter((u) => !ours.has(u.dev)),
    ...Object.values(state.networks).map((n) => ({ cidr: parseCidr(n.subnet), where: `ctnet network ${n.name}` })),
  ];
}

export function planNetCreate(state: State, name: string, o: CreateNetworkOptions): Plan {
  validateName("network", name);
  if ((PREDEFINED_NETWORKS as readonly string[]).includes(name)) throw new UsageError(`network name ${name} is predefined and cannot be created`);
  if (state.networks[name]) throw new UsageError(`network with name ${name} already exists`);
  const driver = o.driver ?? "bridge";
  if (driver !== "bridge") throw new UsageError(`unknown network driver ${JSON.stringify(driver)}: ctnet creates bridge networks`);
  const options = normaliseOptions(parseKeyValues(o.opt, "option"));
  const labels = parseKeyValues(o.label, "label");
  const bridge = bridgeIfname(name);
  const clash = Object.values(state.networks).find((n) => n.bridge === bridge);
  if (clash || linkExists(bridge)) throw new UsageError(`interface ${bridge} for network ${name} already exists on the host${clash ? ` (network ${clash.name})` : ""}`);
  for (const [flag, value] of [["--subnet", o.subnet], ["--gateway", o.gateway], ["--ip-range", o.ipRange]]) {
    if (value === "") throw new UsageError(`${flag} must not be empty`);
  }
  if (o.gateway && !o.subnet) throw new UsageError("--gateway needs --subnet");
  if (o.ipRange && !o.subnet) throw new UsageError("--ip-range needs --subnet");

  const used = subnetsInUse(state);
  let subnet: Cidr;
  if (o.subnet) {
    subnet = parseCidr(o.subnet);
    checkUsableSubnet(subnet);
    const hit = used.find((u) => overlaps(u.cidr, subnet));
    if (hit) throw new UsageError(`subnet ${subnet.text} overlaps ${hit.where}`);
  } else {
    subnet = chooseSubnet(used.map((u) => u.cidr), true);
  }
  let gateway = subnet.first + 1n;
  if (o.gateway) {
    gateway = parseAddress(o.gateway, "gateway").bigInt();
    checkHostAddress(subnet, gateway, "gateway", o.gateway);
  }
  let ipRange: string | undefined;
  if (o.ipRange) {
    const range = parseCidr(o.ipRange, "ip-range");
    if (!contains(subnet, range.first) || !contains(subnet, range.last)) throw new UsageError(`ip-range ${range.text} is not inside subnet ${subnet.text}`);
    ipRange = range.text;
  }
  const net: NetworkRecord = {
    name, id: newId(), created: new Date().toISOString(), driver: "bridge", bridge,
    subnet: subnet.text, gateway: addrText(gateway), ...(ipRange ? { ipRange } : {}),
    internal: !!o.internal, options, labels, ...(o.lab ? { lab: o.lab } : {}),
  };
  const plan = new Plan(`net create ${name}`);
  setUpNetwork(plan, state, net);
  state.networks[name] = net;
  return plan;
}

const isPredefined = (name: string) => (PREDEFINED_NETWORKS as readonly string[]).includes(name);

/**
 * The name of the network TERM means, in Docker's order (moby daemon/network.go, FindNetwork): an exact
 * full id, then an exact name, then a unique id prefix. The predefined networks resolve by the ids
 * `net ls` shows too, whether or not the default bridge exists yet.
 */
export function resolveNetwork(state: State, term: string): string {
  const idOf = new Map<string, string>(PREDEFINED_NETWORKS.map((name) => [name, predefinedId(name)]));
  for (const net of Object.values(state.networks)) idOf.set(net.name, net.id);
  const byId = [...idOf];
  const full = byId.find(([, id]) => id === term);
  if (full) return full[0];
  if (idOf.has(term)) return term;
  const matches = term === "" ? [] : byId.filter(([, id]) => id.startsWith(term));
  if (matches.length > 1) throw new UsageError(`network id prefix ${term} is ambiguous: it matches ${matches.map(([name]) => name).join(", ")}`);
  if (matches.length === 0) throw new UsageError(`network ${term} not found`);
  return matches[0][0];
}

export function findNetwork(state: State, term: string): NetworkRecord {
  const name = resolveNetwork(state, term);
  const net = state.networks[name];
  if (!net) {
    if (name === DEFAULT_BRIDGE_NETWORK) throw new UsageError("network bridge has no containers: nothing of it exists yet");
    throw new UsageError(`network ${name} is predefined: containers join it with run --net ${name}`);
  }
  return net;
}

/** The containers on a network, as digests: counting or naming them reads no record. */
export const membersOf = (state: State, network: string) =>
  containerDigests(state).filter((c) => c.endpoints.some((e) => e.network === network));

export function planNetRm(state: State, terms: string[]): Plan {
  const plan = new Plan(`net rm ${terms.join(" ")}`);
  // every name is checked before any is planned: planning the last one's removal may print a warning
  const nets = [...new Set(terms.map((term) => resolveNetwork(state, term)))].map((name) => {
    if (isPredefined(name)) throw new UsageError(`network ${name} is predefined and cannot be removed`);
    const net = findNetwork(state, name);
    const members = membersOf(state, name);
    if (members.length > 0) throw new UsageError(`network ${name} has active endpoints (${members.map((c) => c.name).join(", ")})`);
    return net;
  });
  for (const net of nets) {
    delete state.networks[net.name];
    tearDownNetwork(plan, state, net);
  }
  return plan;
}

/** Removes every user network no container uses (of those `selected` passes: --filter); returns the plan and the names removed. */
export function planNetPrune(state: State, selected: (net: NetworkRecord) => boolean = () => true): { plan: Plan; removed: string[] } {
  const unused = Object.values(state.networks).filter((n) => n.name !== DEFAULT_BRIDGE_NETWORK && selected(n) && membersOf(state, n.name).length === 0);
  const removed = unused.map((n) => n.name);
  return { plan: removed.length ? planNetRm(state, removed) : new Plan("net prune"), removed };
}

// ---- endpoints ---------------------------------------------------------------------------------

/** The default network is created with its first container: 172.17.0.0/16 where free, like docker0. */
export function ensureDefaultBridge(plan: Plan, state: State): NetworkRecord {
  const existing = state.networks[DEFAULT_BRIDGE_NETWORK];
  if (existing) return existing;
  const subnet = chooseSubnet(subnetsInUse(state).map((u) => u.cidr), false);
  const net: NetworkRecord = {
    name: DEFAULT_BRIDGE_NETWORK, id: predefinedId(DEFAULT_BRIDGE_NETWORK), created: new Date().toISOString(),
    driver: "bridge", bridge: bridgeIfname(DEFAULT_BRIDGE_NETWORK), subnet: subnet.text,
    gateway: addrText(subnet.first + 1n), internal: false, options: {}, labels: {},
  };
  if (linkExists(net.bridge)) throw new UsageError(`interface ${net.bridge} already exists on the host but ctnet's state has no default network: run 'ctnet doctor'`);
  setUpNetwork(plan, state, net);
  state.networks[net.name] = net;
  return net;
}

/** Removes the default network with its last container, so an idle host holds nothing of ctnet. */
export function releaseDefaultBridge(plan: Plan, state: State): void {
  const net = state.networks[DEFAULT_BRIDGE_NETWORK];
  if (!net || membersOf(state, net.name).length > 0) return;
  delete state.networks[net.name];
  tearDownNetwork(plan, state, net);
}

export interface EndpointRequest {
  ip?: string;
  aliases?: string[];
  /** run --mac-address; otherwise derived from the address, so it is unique on the network */
  mac?: string;
}

/** BR_MAX_PORTS (1024) in the kernel's bridge, less port number 0, which it never hands out */
const BRIDGE_MAX_PORTS = 1023;

/** Picks the address, interface names and MAC of a new endpoint; validates --ip. */
export function newEndpoint(state: State, c: ContainerRecord, net: NetworkRecord, req: EndpointRequest): Endpoint {
  const subnet = parseCidr(net.subnet);
  const hostIf = hostVethIfname(c.name, net.name);
  // one pass over the digests (statefile.ts): `run` on a network of 1000 parses none of their records
  const taken = new Set<string>();
  let hostIfTaken = false;
  for (const other of containerDigests(state)) {
    for (const e of other.endpoints) {
      if (e.network === net.name) taken.add(e.ip);
      if (e.hostIf === hostIf) hostIfTaken = true;
    }
  }
  // the kernel's limit; past it the veth's `master` fails with a bare "Exchange full"
  if (taken.size >= BRIDGE_MAX_PORTS) throw new UsageError(`network ${net.name} is full: a Linux bridge takes at most ${BRIDGE_MAX_PORTS} interfaces`);
  let ip: number;
  if (req.ip) {
    if (net.name === DEFAULT_BRIDGE_NETWORK) throw new UsageError("--ip is supported on user-defined networks only");
    ip = Number(parseAddress(req.ip, "--ip").bigInt());
    if (!contains(subnet, ip)) throw new UsageError(`--ip ${req.ip} is outside network ${net.name}'s subnet ${net.subnet}`);
    checkHostAddress(subnet, ip, "--ip", req.ip);
    if (ip === addrValue(net.gateway)) throw new UsageError(`--ip ${req.ip} is the gateway of network ${net.name}`);
    if (taken.has(addrText(ip))) throw new UsageError(`--ip ${req.ip} is already in use on network ${net.name}`);
  } else {
    const range = net.ipRange ? parseCidr(net.ipRange) : subnet;
    const free = allocateAddress({ subnet, gateway: addrValue(net.gateway), range }, taken);
    if (free === null) throw new UsageError(`no free address left on network ${net.name} (${net.ipRange ?? net.subnet})`);
    ip = free;
  }
  if (req.aliases?.length && net.name === DEFAULT_BRIDGE_NETWORK) throw new UsageError("network-scoped aliases are supported on user-defined networks only");
  for (const alias of req.aliases ?? []) validateName("alias", alias);
  const used = new Set(c.endpoints.map((e) => e.ifname));
  let n = 0;
  while (used.has(`eth${n}`)) n++;
  // a veth of a container removed a moment ago may still be going (see the executor's waits): run waits for it
  if (hostIfTaken || (linkExists(hostIf) && !vethLeaving(hostIf))) {
    throw new UsageError(`interface ${hostIf} for ${c.name} on ${net.name} already exists on the host`);
  }
  return {
    network: net.name, id: newId(), ifname: `eth${n}`, hostIf, ip: addrText(ip), prefixLen: subnet.prefix,
    mac: req.mac ?? macFor(ip), aliases: [...new Set(req.aliases ?? [])],
  };
}

/** The network whose gateway a container routes through: its first non-internal one. */
export const routeNetwork = (state: State, c: ContainerRecord) =>
  c.endpoints.map((e) => state.networks[e.network]).find((n) => n && !n.internal);

const FULL_ID = /^[0-9a-f]{64}$/;
const ID_PREFIX = /^[0-9a-f]+$/;

/**
 * The container TERM means, in Docker's order (moby daemon/container.go, GetContainer): an exact full id,
 * then an exact name, then a unique id prefix. Ids are in the records, not the digests: a name parses no
 * other record; only a term that can be an id reads them all.
 */
export function findContainer(state: State, term: string): ContainerRecord {
  const all = () => containerRecords(state);
  const full = FULL_ID.test(term) ? all().find((c) => c.id === term) : undefined;
  if (full) return full;
  if (Object.hasOwn(state.containers, term)) return state.containers[term];
  const matches = ID_PREFIX.test(term) ? all().filter((c) => c.id.startsWith(term)) : [];
  if (matches.length > 1) throw new UsageError(`container id prefix ${term} is ambiguous: it matches ${matches.map((c) => c.name).join(", ")}`);
  if (matches.length === 0) throw new UsageError(`no such container: ${term}`);
  return matches[0];
}

export function planConnect(state: State, netTerm: string, ctrName: string, req: EndpointRequest): Plan {
  const c = findContainer(state, ctrName);
  const netName = resolveNetwork(state, netTerm);
  const plan = new Plan(`net connect ${netName} ${c.name}`);
  if (c.mode !== "bridge") throw new UsageError(`container ${c.name} uses --net ${c.mode === "container" ? `container:${c.joined}` : c.mode}: it cannot be connected to networks`);
  if (netName === "host" || netName === "none") throw new UsageError(`container cannot be connected to the ${netName} network`);
  const net = netName === DEFAULT_BRIDGE_NETWORK ? ensureDefaultBridge(plan, state) : findNetwork(state, netName);
  if (c.endpoints.some((e) => e.network === net.name)) throw new UsageError(`container ${c.name} is already connected to network ${net.name}`);
  const before = routeNetwork(state, c);
  const ep = newEndpoint(state, c, net, req);
  c.endpoints.push(ep);
  const after = routeNetwork(state, c);
  attachEndpoints(plan, c.netns!, [{ net, ep }], before ? undefined : after);
  syncNames(plan, state, c, [net.name]);
  return plan;
}

export function planDisconnect(state: State, netTerm: string, ctrName: string): Plan {
  const c = findContainer(state, ctrName);
  const netName = resolveNetwork(state, netTerm);
  const plan = new Plan(`net disconnect ${netName} ${c.name}`);
  const ep = c.endpoints.find((e) => e.network === netName);
  if (!ep) throw new UsageError(`container ${c.name} is not connected to network ${netName}`);
  const before = routeNetwork(state, c);
  const portsBefore = portLayer(state);
  c.endpoints = c.endpoints.filter((e) => e !== ep);
  // published ports follow the default route to the next network, or go when none can carry them
  dropUnpublishable(state, c);
  const portsAfter = portLayer(state);
  retirePorts(plan, state, portsBefore, portsAfter);
  detachEndpoint(plan, ep);
  const after = routeNetwork(state, c);
  if (after && after !== before) {
    plan.cmd(["ip", "-n", c.netns!, "route", "replace", "default", "via", after.gateway], `default route now via ${after.name}'s gateway`, null);
  }
  installPorts(plan, state, portsBefore, portsAfter);
  syncNames(plan, state, c, [netName]);
  releaseDefaultBridge(plan, state);
  return plan;
}

// ---- views -------------------------------------------------------------------------------------

export const predefinedId = (name: string) => createHash("sha256").update(`ctnet-predefined:${name}`).digest("hex");

/** One `net ls` row, with the keys `docker network ls --format json` and `ps --format json` use. */
export interface NetworkSummary {
  ID: string;
  Name: string;
  Driver: string;
  Scope: "local";
  Subnet: string;
  Internal: boolean;
  Containers: number;
  IPv6: false;
  /** key=value pairs joined by commas, as docker network ls shows them */
  Labels: string;
  /** ISO 8601; "" for the predefined networks and a default bridge not made yet */
  CreatedAt: string;
  Lab?: string;
}

export function listNetworks(state: State): NetworkSummary[] {
  const rows: NetworkSummary[] = [];
  const bridge = state.networks[DEFAULT_BRIDGE_NETWORK];
  for (const name of PREDEFINED_NETWORKS) {
    const net = name === DEFAULT_BRIDGE_NETWORK ? bridge : undefined;
    rows.push({
      ID: predefinedId(name), Name: name, Driver: name === "none" ? "null" : name === "host" ? "host" : "bridge", Scope: "local",
      Subnet: net?.subnet ?? "", Internal: false,
      Containers: Object.values(state.containers).filter((c) => (name === "bridge" ? c.endpoints.some((e) => e.network === name) : c.mode === name)).length,
      IPv6: false, Labels: "", CreatedAt: net?.created ?? "",
    });
  }
  for (const net of Object.values(state.networks)) {
    if (net.name === DEFAULT_BRIDGE_NETWORK) continue;
    rows.push({ ID: net.id, Name: net.name, Driver: net.driver, Scope: "local", Subnet: net.subnet, Internal: net.internal, Containers: membersOf(state, net.name).length,
      IPv6: false, Labels: Object.entries(net.labels).map(([k, v]) => `${k}=${v}`).join(","), CreatedAt: net.created, ...(net.lab ? { Lab: net.lab } : {}) });
  }
  return rows.sort((a, b) => a.Name.localeCompare(b.Name));
}

/** `docker network inspect` shape. */
export function inspectNetwork(state: State, term: string): object {
  const name = resolveNetwork(state, term);
  const net = state.networks[name];
  const containers: Record<string, object> = {};
  for (const c of Object.values(state.containers)) {
    const ep = c.endpoints.find((e) => e.network === name);
    const inMode = !net && c.mode === name;
    if (ep) containers[c.id] = { Name: c.name, EndpointID: ep.id, MacAddress: ep.mac, IPv4Address: `${ep.ip}/${ep.prefixLen}`, IPv6Address: "" };
    else if (inMode) containers[c.id] = { Name: c.name, EndpointID: "", MacAddress: "", IPv4Address: "", IPv6Address: "" };
  }
  const driver = name === "none" ? "null" : name === "host" ? "host" : "bridge";
  return {
    Name: name,
    Id: net?.id ?? predefinedId(name),
    Created: net?.created ?? "",
    Scope: "local",
    Driver: driver,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: {}, Config: net ? [{ Subnet: net.subnet, Gateway: net.gateway, ...(net.ipRange ? { IPRange: net.ipRange } : {}) }] : [] },
    Internal: net?.internal ?? false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: containers,
    Options: net ? { ...net.options, ...(name === DEFAULT_BRIDGE_NETWORK ? { "com.docker.network.bridge.default_bridge": "true" } : {}), "com.docker.network.bridge.name": net.bridge } : {},
    Labels: net?.labels ?? {},
    ...(net?.lab ? { Lab: net.lab } : {}),
  };
}
