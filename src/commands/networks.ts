// Network commands (net create/rm/prune/connect/disconnect) turned into plans, and the views that
// list and inspect networks the way `docker network` does.
import { UsageError } from "../errors.js";
import {
  addrText, addrValue, allocateAddress, checkHostAddress, checkUsableSubnet, chooseSubnet, contains,
  macFor, overlaps, parseAddress, parseCidr, type Cidr,
} from "../ipam.js";
import { PREDEFINED_DRIVERS, attachEndpoints, driverNamed, driverOptions, registry, routeReason } from "../drivers/registry.js";
import type { PlanContext } from "../drivers/driver.js";
import { liveHostFacts } from "../host/facts.js";
import { DEFAULT_BRIDGE_NETWORK, PREDEFINED_NETWORKS, bridgeIfname, newId, predefinedId, validateName } from "../naming.js";
import { Plan } from "../plan/plan.js";
import { dropUnpublishable, installPorts, portLayer, retirePorts } from "../firewall/ports.js";
import { syncNames } from "../dns/names.js";
import { containerDigests, containerRecords } from "../store/statefile.js";
import { daemonConfig } from "../store/daemonconfig.js";
import {
  auxNameOf, ipamConfigView, optionsView, parseAuxAddresses, parseKeyValues, refuseSwarmFlags, singleIpamFlags, type IpamFlags,
} from "./netoptions.js";
import { bridged, runModeText, type ContainerRecord, type Endpoint, type NetworkRecord, type State } from "../model.js";
import { claimOnConnect, overlayToJoin, releaseOnDisconnect } from "../cluster/claims.js";

export interface CreateNetworkOptions extends IpamFlags {
  driver?: string;
  internal?: boolean;
  /** accepted as Docker does (any container may join a ctnet network); refused: the swarm flags */
  attachable?: boolean;
  configOnly?: boolean;
  configFrom?: string;
  scope?: string;
  ingress?: boolean;
  opt?: string[];
  label?: string[];
  lab?: string;
}

export { parseKeyValues } from "./netoptions.js";

/** The host as this command finds it, read as planners ask (host/facts.ts). */
export const liveContext = (): PlanContext => ({ facts: liveHostFacts(), drivers: registry });

/** -o pairs of a network of `driver`, normalised to its short keys; bad keys and values are usage errors. */
export function normaliseOptions(raw: Record<string, string>, driver = "bridge"): Record<string, string> {
  return driverOptions(driverNamed(driver), raw);
}

/**
 * Subnets the new network must not overlap: the host's routes and addresses, and every ctnet network.
 * Those on `lan`, the parent a macvlan network joins, are the LAN's own: its subnet is meant to be theirs.
 */
function subnetsInUse(ctx: PlanContext, state: State, lan?: string): Array<{ cidr: Cidr; where: string }> {
  const ours = new Set(Object.values(state.networks).filter(bridged).map((n) => n.bridge));
  return [
    ...ctx.facts.subnetsInUse().filter((u) => !ours.has(u.dev) && u.dev !== lan),
    ...Object.values(state.networks).map((n) => ({ cidr: parseCidr(n.subnet), where: `ctnet network ${n.name}` })),
  ];
}

export function planNetCreate(state: State, name: string, o: CreateNetworkOptions, ctx = liveContext()): Plan {
  validateName("network", name);
  if ((PREDEFINED_NETWORKS as readonly string[]).includes(name)) throw new UsageError(`network name ${name} is predefined and cannot be created`);
  if (state.networks[name]) throw new UsageError(`network with name ${name} already exists`);
  refuseSwarmFlags(o);
  const driver = ctx.drivers.named(o.driver ?? "bridge");
  const options = driverOptions(driver, parseKeyValues(o.opt, "option"));
  const labels = parseKeyValues(o.label, "label");
  const flags = singleIpamFlags(o);
  if (flags.gateway && !flags.subnet) throw new UsageError("--gateway needs --subnet");
  if (flags.ipRange && !flags.subnet) throw new UsageError("--ip-range needs --subnet");

  let subnet = flags.subnet ? parseCidr(flags.subnet) : null;
  if (subnet) checkUsableSubnet(subnet);
  let gateway = subnet ? subnet.first + 1n : 0n;
  if (subnet && flags.gateway) {
    gateway = parseAddress(flags.gateway, "gateway").bigInt();
    checkHostAddress(subnet, gateway, "gateway", flags.gateway);
  }
  let ipRange: string | undefined;
  if (subnet && flags.ipRange) {
    const range = parseCidr(flags.ipRange, "ip-range");
    if (!contains(subnet, range.first) || !contains(subnet, range.last)) throw new UsageError(`ip-range ${range.text} is not inside subnet ${subnet.text}`);
    ipRange = range.text;
  }
  const net: NetworkRecord = {
    name, id: newId(), created: new Date().toISOString(), driver: driver.name, bridge: "",
    subnet: subnet?.text ?? "", gateway: "", ...(ipRange ? { ipRange } : {}),
    internal: !!o.internal, ...(o.attachable ? { attachable: true } : {}), options, labels, ...(o.lab ? { lab: o.lab } : {}),
  };
  driver.validate(ctx, state, net, { subnetGiven: !!subnet });
  const side = driver.hostSide(net);
  const used = userSubnetsInUse(ctx, state, side?.role === "parent" ? side.ifname : undefined);
  if (subnet) {
    const hit = used.find((u) => overlaps(u.cidr, subnet!));
    if (hit) throw new UsageError(`subnet ${subnet.text} overlaps ${hit.where}`);
  } else {
    subnet = chooseUserSubnet(used);
    gateway = subnet.first + 1n;
  }
  const auxAddresses = parseAuxAddresses(o.auxAddress, flags.subnet ? subnet : null, Number(gateway));
  if (Object.keys(auxAddresses).length) net.auxAddresses = auxAddresses;
  net.subnet = subnet.text;
  net.gateway = addrText(gateway);
  const plan = new Plan(`net create ${name}`);
  driver.create(plan, ctx, state, net);
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

export function planNetRm(state: State, terms: string[], ctx = liveContext()): Plan {
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
    ctx.drivers.of(net).remove(plan, ctx, state, net);
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

/**
 * What a user network must not overlap: the host's and ctnet's subnets, and daemon.json's bip while the
 * default bridge waits for its first container (Docker's is there from the daemon's start).
 */
function userSubnetsInUse(ctx: PlanContext, state: State, lan?: string): Array<{ cidr: Cidr; where: string }> {
  const { bip, file } = daemonConfig();
  const used = subnetsInUse(ctx, state, lan);
  return bip && !state.networks[DEFAULT_BRIDGE_NETWORK] ? [...used, { cidr: bip.subnet, where: `the default bridge's subnet (bip) in ${file}` }] : used;
}

/** A user network's subnet from the address pools (daemon.json's, else Docker's), past the first, the default bridge's, unless bip gives it one. */
function chooseUserSubnet(used: Array<{ cidr: Cidr }>): Cidr {
  const { bip, pools } = daemonConfig();
  return chooseSubnet(used.map((u) => u.cidr), !bip, pools);
}

/**
 * The default network as it is, or as its first container will make it: daemon.json's bip (and
 * fixed-cidr), else the pools' first free subnet (172.17.0.0/16 where free, like docker0), with its
 * mtu, icc, ip-masq and ip.
 */
export function defaultBridgeRecord(state: State, ctx = liveContext()): NetworkRecord {
  const existing = state.networks[DEFAULT_BRIDGE_NETWORK];
  if (existing) return existing;
  const { bip, fixedCidr, pools, bridgeOptions, file } = daemonConfig();
  const used = subnetsInUse(ctx, state);
  const hit = bip && used.find((u) => overlaps(u.cidr, bip.subnet));
  if (hit) throw new UsageError(`${file}: bip ${bip.gateway}/${bip.subnet.prefix} overlaps ${hit.where}`);
  const subnet = bip?.subnet ?? chooseSubnet(used.map((u) => u.cidr), false, pools);
  return {
    name: DEFAULT_BRIDGE_NETWORK, id: predefinedId(DEFAULT_BRIDGE_NETWORK), created: new Date().toISOString(),
    driver: "bridge", bridge: bridgeIfname(DEFAULT_BRIDGE_NETWORK), subnet: subnet.text,
    gateway: bip?.gateway ?? addrText(subnet.first + 1n), ...(fixedCidr ? { ipRange: fixedCidr.text } : {}),
    internal: false, options: { ...bridgeOptions }, labels: {},
  };
}

/** The default network is created with its first container. */
export function ensureDefaultBridge(plan: Plan, state: State, ctx = liveContext()): NetworkRecord {
  const existing = state.networks[DEFAULT_BRIDGE_NETWORK];
  if (existing) return existing;
  const net = defaultBridgeRecord(state, ctx);
  if (ctx.facts.hasLink(net.bridge)) throw new UsageError(`interface ${net.bridge} already exists on the host but ctnet's state has no default network: run 'ctnet doctor'`);
  ctx.drivers.of(net).create(plan, ctx, state, net);
  state.networks[net.name] = net;
  return net;
}

/** Removes the default network with its last container, so an idle host holds nothing of ctnet. */
export function releaseDefaultBridge(plan: Plan, state: State, ctx = liveContext()): void {
  const net = state.networks[DEFAULT_BRIDGE_NETWORK];
  if (!net || membersOf(state, net.name).length > 0) return;
  delete state.networks[net.name];
  ctx.drivers.of(net).remove(plan, ctx, state, net);
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
export function newEndpoint(state: State, c: ContainerRecord, net: NetworkRecord, req: EndpointRequest, ctx = liveContext()): Endpoint {
  const subnet = parseCidr(net.subnet);
  const hostIf = ctx.drivers.of(net).endpointHostLink(c.name, net);
  // one pass over the digests (statefile.ts): `run` on a network of 1000 parses none of their records
  const taken = new Set<string>();
  let hostIfTaken = false;
  for (const other of containerDigests(state)) {
    for (const e of other.endpoints) {
      if (e.network === net.name) taken.add(e.ip);
      if (hostIf && e.hostIf === hostIf) hostIfTaken = true;
    }
  }
  // the kernel's limit; past it the veth's `master` fails with a bare "Exchange full"
  if (bridged(net) && taken.size >= BRIDGE_MAX_PORTS) throw new UsageError(`network ${net.name} is full: a Linux bridge takes at most ${BRIDGE_MAX_PORTS} interfaces`);
  let ip: number;
  if (req.ip) {
    if (net.name === DEFAULT_BRIDGE_NETWORK) throw new UsageError("--ip is supported on user-defined networks only");
    ip = Number(parseAddress(req.ip, "--ip").bigInt());
    if (!contains(subnet, ip)) throw new UsageError(`--ip ${req.ip} is outside network ${net.name}'s subnet ${net.subnet}`);
    checkHostAddress(subnet, ip, "--ip", req.ip);
    if (ip === addrValue(net.gateway)) throw new UsageError(`--ip ${req.ip} is the gateway of network ${net.name}`);
    if (taken.has(addrText(ip))) throw new UsageError(`--ip ${req.ip} is already in use on network ${net.name}`);
    const aux = auxNameOf(net, ip);
    if (aux) throw new UsageError(`--ip ${req.ip} is network ${net.name}'s aux-address ${aux}`);
  } else {
    const range = net.ipRange ? parseCidr(net.ipRange) : subnet;
    const free = allocateAddress({ subnet, gateway: addrValue(net.gateway), range, reserved: Object.values(net.auxAddresses ?? {}) }, taken);
    if (free === null) throw new UsageError(`no free address left on network ${net.name} (${net.ipRange ?? net.subnet})`);
    ip = free;
  }
  if (req.aliases?.length && net.name === DEFAULT_BRIDGE_NETWORK) throw new UsageError("network-scoped aliases are supported on user-defined networks only");
  for (const alias of req.aliases ?? []) validateName("alias", alias);
  const { macPerEndpoint } = ctx.drivers.of(net);
  if (req.mac && !macPerEndpoint) throw new UsageError(`--mac-address: the endpoints of ${net.driver} network ${net.name} share the MAC of its parent`);
  const used = new Set(c.endpoints.map((e) => e.ifname));
  let n = 0;
  while (used.has(`eth${n}`)) n++;
  // a veth of a container removed a moment ago may still be going (see the executor's waits): run waits for it
  if (hostIfTaken || (hostIf && ctx.facts.hasLink(hostIf) && !ctx.facts.vethLeaving(hostIf))) {
    throw new UsageError(`interface ${hostIf} for ${c.name} on ${net.name} already exists on the host`);
  }
  return {
    network: net.name, id: newId(), ifname: `eth${n}`, hostIf, ip: addrText(ip), prefixLen: subnet.prefix,
    // "" where the link shares its parent's MAC (ipvlan): inspect shows none, as Docker does
    mac: macPerEndpoint ? req.mac ?? macFor(ip) : "", aliases: [...new Set(req.aliases ?? [])],
    ...(req.ip || req.mac ? { requested: { ...(req.ip ? { ip: addrText(ip) } : {}), ...(req.mac ? { mac: req.mac } : {}) } } : {}),
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

export function planConnect(state: State, netTerm: string, ctrName: string, req: EndpointRequest, ctx = liveContext()): Plan {
  const c = findContainer(state, ctrName);
  // an overlay network of the cluster is in the state only while a container of this host is on it
  const netName = overlayToJoin(state, netTerm)?.name ?? resolveNetwork(state, netTerm);
  const plan = new Plan(`net connect ${netName} ${c.name}`);
  if (c.mode !== "bridge") throw new UsageError(`container ${c.name} uses --net ${runModeText(c)}: it cannot be connected to networks`);
  if (netName === "host" || netName === "none") throw new UsageError(`container cannot be connected to the ${netName} network`);
  // a stopped container's networks are joined at start (lifecycle.ts): Docker's connect only records it then
  if (c.released) return recordForStart(state, c, netName, req, ctx, plan);
  req = claimOnConnect(plan, ctx, state, netName, c, req);
  const net = netName === DEFAULT_BRIDGE_NETWORK ? ensureDefaultBridge(plan, state, ctx) : findNetwork(state, netName);
  if (c.endpoints.some((e) => e.network === net.name)) throw new UsageError(`container ${c.name} is already connected to network ${net.name}`);
  const before = routeNetwork(state, c);
  const ep = newEndpoint(state, c, net, req, ctx);
  c.endpoints.push(ep);
  const after = routeNetwork(state, c);
  attachEndpoints(plan, ctx, c.netns!, [{ net, ep }], before ? undefined : after);
  syncNames(plan, state, c, [net.name]);
  return plan;
}

/** `net connect` of a stopped container: --ip and the aliases checked now, the address chosen at start. */
function recordForStart(state: State, c: ContainerRecord, netName: string, req: EndpointRequest, ctx: ReturnType<typeof liveContext>, plan: Plan): Plan {
  if (c.released!.some((r) => r.network === netName)) throw new UsageError(`container ${c.name} is already connected to network ${netName}`);
  const checked = state.networks[netName] || req.ip || req.aliases?.length ? newEndpoint(state, c, findNetwork(state, netName), req, ctx) : undefined;
  c.released!.push({ network: netName, aliases: checked?.aliases ?? [], ...(checked?.requested ? { requested: checked.requested } : {}) });
  return plan;
}

export function planDisconnect(state: State, netTerm: string, ctrName: string, ctx = liveContext()): Plan {
  const c = findContainer(state, ctrName);
  const netName = resolveNetwork(state, netTerm);
  const plan = new Plan(`net disconnect ${netName} ${c.name}`);
  // a stopped container: only its record of the network to join at start goes
  if (c.released?.some((r) => r.network === netName)) return (c.released = c.released.filter((r) => r.network !== netName)), plan;
  const ep = c.endpoints.find((e) => e.network === netName);
  if (!ep) throw new UsageError(`container ${c.name} is not connected to network ${netName}`);
  const before = routeNetwork(state, c);
  const portsBefore = portLayer(state);
  c.endpoints = c.endpoints.filter((e) => e !== ep);
  // published ports follow the default route to the next network, or go when none can carry them
  dropUnpublishable(state, c);
  const portsAfter = portLayer(state);
  retirePorts(plan, state, portsBefore, portsAfter, ctx.facts);
  ctx.drivers.of(state.networks[ep.network]).detach(plan, ctx, c.netns!, ep, state.networks[ep.network]);
  const after = routeNetwork(state, c);
  if (after && after !== before) {
    const through = c.endpoints.find((e) => e.network === after.name)!;
    const route = ctx.drivers.of(after).defaultRoute(after, through);
    plan.cmd(["ip", "-n", c.netns!, "route", "replace", "default", ...route], routeReason(after, through, route), null);
  }
  installPorts(plan, state, portsBefore, portsAfter, ctx.facts);
  syncNames(plan, state, c, [netName]);
  releaseDefaultBridge(plan, state, ctx);
  releaseOnDisconnect(plan, ctx, state, netName, c, ep.ip);
  return plan;
}

// ---- views -------------------------------------------------------------------------------------


/** One `net ls` row, with the keys `docker network ls --format json` and `ps --format json` use. */
export interface NetworkSummary {
  ID: string;
  Name: string;
  Driver: string;
  Scope: "local" | "global";
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

/** Overlay networks span the cluster, as Docker's do: "global". */
const scopeOf = (net: NetworkRecord) => (net.driver === "overlay" ? "global" : "local");

export function listNetworks(state: State): NetworkSummary[] {
  const rows: NetworkSummary[] = [];
  const bridge = state.networks[DEFAULT_BRIDGE_NETWORK];
  for (const name of PREDEFINED_NETWORKS) {
    const net = name === DEFAULT_BRIDGE_NETWORK ? bridge : undefined;
    rows.push({
      ID: predefinedId(name), Name: name, Driver: PREDEFINED_DRIVERS[name], Scope: "local",
      Subnet: net?.subnet ?? "", Internal: false,
      Containers: Object.values(state.containers).filter((c) => (name === "bridge" ? c.endpoints.some((e) => e.network === name) : c.mode === name)).length,
      IPv6: false, Labels: "", CreatedAt: net?.created ?? "",
    });
  }
  for (const net of Object.values(state.networks)) {
    if (net.name === DEFAULT_BRIDGE_NETWORK) continue;
    rows.push({ ID: net.id, Name: net.name, Driver: net.driver, Scope: scopeOf(net), Subnet: net.subnet, Internal: net.internal, Containers: membersOf(state, net.name).length,
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
  const driver = net?.driver ?? PREDEFINED_DRIVERS[name as keyof typeof PREDEFINED_DRIVERS];
  // Docker's default bridge is there from the daemon's start: show it as its first container will make it
  const shown = net ?? (name === DEFAULT_BRIDGE_NETWORK ? defaultBridgeRecord(state) : undefined);
  return {
    Name: name,
    Id: net?.id ?? predefinedId(name),
    Created: net?.created ?? "",
    Scope: net ? scopeOf(net) : "local",
    Driver: driver,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: {}, Config: shown ? [ipamConfigView(shown)] : [] },
    Internal: net?.internal ?? false,
    Attachable: net?.attachable ?? false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: containers,
    Options: shown ? { ...optionsView(shown), ...(shown.vni !== undefined ? { "com.docker.network.driver.overlay.vxlanid_list": String(shown.vni) } : {}) } : {},
    Labels: net?.labels ?? {},
    ...(net?.lab ? { Lab: net.lab } : {}),
  };
}
