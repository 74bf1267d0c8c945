// The store's layout (docs/overlay.md) and the plan steps that claim and release a container's keys in
// it. Small and free of the etcd client: container commands on any host load it (rm plans a release).
import fs from "node:fs";
import os from "node:os";
import { UsageError } from "../errors.js";
import { addrText, addrValue, allocateAddress, macFor, parseAddress, parseCidr } from "../ipam.js";
import { bridgeIfname } from "../naming.js";
import { containerDigests } from "../store/statefile.js";
import { VXLAN_OVERHEAD, ensureOverlayOnHost, releaseOverlaysOnHost, type RemoteEndpoint } from "../drivers/overlay.js";
import type { PlanContext } from "../drivers/driver.js";
import type { Plan } from "../plan/plan.js";
import type { ContainerRecord, NetworkRecord, State } from "../model.js";

/** Every key ctnet writes lives under this prefix; the agent watches all of it. */
export const PREFIX = "/ctnet/";
export const keys = {
  /** a live host: bound to its lease, gone when the host stops renewing it */
  host: (h: string) => `${PREFIX}hosts/${h}`,
  /** a member, alive or not: written at join, removed at leave (cluster ls shows the dead ones) */
  member: (h: string) => `${PREFIX}members/${h}`,
  network: (n: string) => `${PREFIX}networks/${n}`,
  vni: (vni: number) => `${PREFIX}vnis/${vni}`,
  subnet: (cidr: string) => `${PREFIX}subnets/${cidr}`,
  /** an address claim: one per container and overlay network */
  endpoint: (n: string, ip: string) => `${PREFIX}endpoints/${n}/${ip}`,
  /** a container name on an overlay network, unique across hosts */
  name: (n: string, c: string) => `${PREFIX}names/${n}/${c}`,
};

export interface HostValue {
  host: string;
  vtep: string;
  joined: string;
}

export interface EndpointValue {
  network: string;
  ip: string;
  mac: string;
  host: string;
  vtep: string;
  container: string;
  /** the container's id and --network-alias names: other hosts' DNS servers answer them (agent.ts) */
  id?: string;
  aliases?: string[];
  /** set once the container's link is up on its host (the agents converge on it) */
  up?: boolean;
  /** when the claim was made (ISO 8601): the agent releases a claim its host's state never took up */
  claimed: string;
}

/** The VTEPs of the members other than `vtep` (this host's), each once, in address order: ClusterJoin.peers. */
export const peerVteps = (members: HostValue[], vtep: string): string[] =>
  [...new Set(members.map((m) => m.vtep))].filter((v) => v !== vtep).sort((a, b) => addrValue(a) - addrValue(b));

/** An overlay network as the store holds it: the same for every host. */
export interface OverlayNetworkValue {
  name: string;
  id: string;
  created: string;
  subnet: string;
  gateway: string;
  ipRange?: string;
  internal: boolean;
  /** -o options as given (mtu: the user's; each host otherwise uses its underlay's less 50) */
  options: Record<string, string>;
  labels: Record<string, string>;
  vni: number;
  /** the host it was created on */
  host: string;
}

/** The MTU of the link that holds this host's VTEP address (getifaddrs, not `ip`: net ls calls it per overlay network). */
function underlayMtu(vtep: string): number {
  const dev = Object.entries(os.networkInterfaces()).find(([, addrs]) => addrs?.some((a) => a.address === vtep))?.[0];
  return dev ? Number(fs.readFileSync(`/sys/class/net/${dev}/mtu`, "utf8")) : 1500;
}

/** This host's record of an overlay network: its bridge name and its MTU (underlay less 50 unless -o mtu). */
export function localRecord(v: OverlayNetworkValue, vtep: string): NetworkRecord {
  return {
    name: v.name, id: v.id, created: v.created, driver: "overlay", vni: v.vni, bridge: bridgeIfname(v.name),
    subnet: v.subnet, gateway: v.gateway, ...(v.ipRange ? { ipRange: v.ipRange } : {}), internal: v.internal,
    options: { ...v.options, mtu: v.options.mtu ?? String(underlayMtu(vtep) - VXLAN_OVERHEAD) }, labels: v.labels,
  };
}

/** The overlay endpoints of a container, by their network's driver in `state`. */
export const overlayEndpoints = (state: State, c: ContainerRecord) => c.endpoints.filter((e) => state.networks[e.network]?.driver === "overlay");

/**
 * Releases the claims (address and name) of containers' overlay endpoints: one store step, planned after
 * the containers are gone from the kernel. Not undone: a plan that has released them is completed.
 */
export function planRelease(plan: Plan, state: State, containers: ContainerRecord[], why: string): void {
  const ops = containers.flatMap((c) => overlayEndpoints(state, c).flatMap((e) => [{ delete: { key: keys.endpoint(e.network, e.ip) } }, { delete: { key: keys.name(e.network, c.name) } }]));
  if (ops.length > 0 && state.cluster) plan.store(state.cluster.store, [], ops, null, why);
}

/** What a command that may join overlay networks read of the store before planning (overlayrun.ts, readCluster). */
export interface ClusterView {
  networks: Map<string, OverlayNetworkValue>;
  claims: EndpointValue[];
  live: Set<string>;
}

let view: ClusterView | null = null;
export const setClusterView = (v: ClusterView) => void (view = v);

/** The overlay network `term` names when this host has none of that name in its state (net connect, start). */
export const overlayToJoin = (state: State, term: string): OverlayNetworkValue | null => (state.networks[term] ? null : view?.networks.get(term) ?? null);

/**
 * Connecting container `c` to overlay network `name` (net connect, start): the claim of its address and
 * name as a store step (its undo releases them), the network brought up on this host when it is not yet,
 * and the address chosen among the cluster's claims. Returns the request with that address; `req` as
 * given for any other network.
 */
export function claimOnConnect<R extends { ip?: string; mac?: string; aliases?: string[] }>(plan: Plan, ctx: PlanContext, state: State, name: string, c: ContainerRecord, req: R): R {
  const v = view?.networks.get(name);
  if (!state.cluster || !v || (state.networks[name] && state.networks[name].driver !== "overlay")) return req;
  // already on it: the connect planner refuses that in its own words
  if (c.endpoints.some((e) => e.network === name)) return req;
  const claims = view!.claims.filter((e) => e.network === name);
  const holder = claims.find((e) => e.container === c.name);
  if (holder) throw new UsageError(`container name ${c.name} is already in use on overlay network ${name} (host ${holder.host})`);
  let ip = req.ip;
  if (ip) {
    ip = addrText(addrValue(parseAddress(ip, "--ip").correctForm()));
    const other = claims.find((e) => e.ip === ip);
    if (other) throw new UsageError(`--ip ${ip} is already in use on network ${name} (container ${other.container} on host ${other.host})`);
  } else {
    const subnet = parseCidr(v.subnet);
    const free = allocateAddress({ subnet, gateway: addrValue(v.gateway), range: v.ipRange ? parseCidr(v.ipRange) : subnet }, new Set(claims.map((e) => e.ip)));
    if (free === null) throw new UsageError(`no free address left on network ${name} (${v.ipRange ?? v.subnet})`);
    ip = addrText(free);
  }
  const join = state.cluster;
  const claim: EndpointValue = { network: name, ip, mac: req.mac ?? macFor(addrValue(ip)), host: join.host, vtep: join.advertise, container: c.name, id: c.id, aliases: req.aliases ?? [], claimed: new Date().toISOString() };
  const [epKey, nameKey] = [keys.endpoint(name, ip), keys.name(name, c.name)];
  plan.store(join.store, [epKey, nameKey].map((key) => ({ key, target: "CREATE", createRevision: 0 })), [{ put: { key: epKey, value: JSON.stringify(claim) } }, { put: { key: nameKey, value: join.host } }],
    [{ delete: { key: epKey } }, { delete: { key: nameKey } }], `claim ${ip} and the name ${c.name} on overlay network ${name}`);
  view!.claims.push(claim);
  const peers: RemoteEndpoint[] = claims.filter((e) => e.host !== join.host && view!.live.has(e.host)).map(({ ip, mac, vtep }) => ({ ip, mac, vtep }));
  ensureOverlayOnHost(plan, ctx, state, localRecord(v, join.advertise), peers);
  return { ...req, ip };
}

/**
 * Disconnecting container `c` from overlay network `name` (net disconnect, stop), after its endpoint is
 * gone from the state: its claims released, and the network taken down here with its last container.
 */
export function releaseOnDisconnect(plan: Plan, ctx: PlanContext, state: State, name: string, c: ContainerRecord, ip: string): void {
  if (state.networks[name]?.driver !== "overlay" || !state.cluster) return;
  plan.store(state.cluster.store, [], [{ delete: { key: keys.endpoint(name, ip) } }, { delete: { key: keys.name(name, c.name) } }], null, `release ${ip} and the name ${c.name} on overlay network ${name}`);
  // restart: the start planned after this stop claims again
  if (view) view.claims = view.claims.filter((e) => !(e.network === name && e.ip === ip && e.host === state.cluster!.host));
  releaseOverlaysOnHost(plan, ctx, state);
}

/** `create` with an overlay network among its later --network: the record lent to the planner, as for the first (overlayrun.ts). */
export function lendOverlay(state: State, name: string): NetworkRecord {
  return (state.networks[name] = localRecord(view!.networks.get(name)!, state.cluster!.advertise));
}

/**
 * `create` on an overlay network: its record was lent to the planner (overlayrun.ts); the network is built
 * on this host by the first container that starts on it, so a record no container's endpoint uses goes.
 */
export function dropUnbuiltOverlays(state: State): void {
  const used = new Set(containerDigests(state).flatMap((c) => c.endpoints.map((e) => e.network)));
  for (const net of Object.values(state.networks)) if (net.driver === "overlay" && !used.has(net.name)) delete state.networks[net.name];
}
