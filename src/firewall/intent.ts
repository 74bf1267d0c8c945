// What the firewall is asked for, in its own words: networks with their isolation, icc, masquerade and
// internal flags, the published ports with the address and network each one reaches, and who may send
// this host VXLAN. The firewall driver (firewall.ts) turns an intent into rules; nothing in an intent
// names iptables, so an nftables driver takes the same intent (docs/firewall.md).
import { VXLAN_PORT, bridged, type ContainerRecord, type Endpoint, type NetworkRecord, type PortMapping, type State } from "../model.js";
import { DEFAULT_BRIDGE_NETWORK } from "../naming.js";

export interface NetworkIntent {
  name: string;
  /** the interface its containers' traffic enters and leaves the host by */
  bridge: string;
  subnet: string;
  gateway: string;
  /** its containers' names are answered by a DNS server on the gateway (user networks, docs/dns.md) */
  names: boolean;
  /** nothing leaves or enters the subnet */
  internal: boolean;
  /** containers of the network reach each other (-o icc) */
  icc: boolean;
  /** traffic leaving the host takes the host's address (-o masquerade) */
  masquerade: boolean;
}

export interface PortIntent {
  container: string;
  /** the container's address on `network` */
  ip: string;
  network: NetworkIntent;
  mapping: PortMapping;
}

/**
 * The guard of this host's VXLAN port while it has an overlay network: the cluster's members may send to
 * its VTEP, nothing else may. One per host, not one per overlay network: one VTEP and one port carry
 * every VNI, so a field of the intent cannot be installed twice by two overlay networks, where a copy on
 * each overlay NetworkIntent would have to be deduplicated and handed from network to network as they go.
 */
export interface VxlanIntent {
  /** this host's VTEP (its advertise address) */
  vtep: string;
  port: number;
  /** the other members' VTEPs, in address order; dead members too (a lease that expired must not cut a host off) */
  peers: string[];
}

/** The loopback guard (a DROP of forwarded traffic first addressed to 127/8) is in every intent with a network. */
export interface FirewallIntent {
  networks: NetworkIntent[];
  ports: PortIntent[];
  /** present while one of `networks` is an overlay network */
  vxlan?: VxlanIntent;
}

export const networkIntent = (net: NetworkRecord): NetworkIntent => ({
  name: net.name,
  bridge: net.bridge,
  subnet: net.subnet,
  gateway: net.gateway,
  names: net.name !== DEFAULT_BRIDGE_NETWORK,
  internal: net.internal,
  icc: (net.options.icc ?? "true") === "true",
  masquerade: !net.internal && (net.options.masquerade ?? "true") === "true",
});

/** The endpoint on the network holding the container's default route: replies leave the way requests came. */
export function publishingEndpoint(state: State, c: ContainerRecord): Endpoint | undefined {
  if (c.mode !== "bridge") return undefined;
  // a network without a bridge (macvlan, ipvlan) is reached on its own addresses: nothing to publish from
  return c.endpoints.find((e) => state.networks[e.network] && !state.networks[e.network].internal && bridged(state.networks[e.network]));
}

/** Each published mapping of the state's containers, on its container's publishing endpoint. */
export function portIntents(state: State): PortIntent[] {
  const out: PortIntent[] = [];
  for (const c of Object.values(state.containers)) {
    const ep = c.ports.length > 0 ? publishingEndpoint(state, c) : undefined;
    if (!ep) continue;
    const network = networkIntent(state.networks[ep.network]);
    for (const mapping of c.ports) out.push({ container: c.name, ip: ep.ip, network, mapping });
  }
  return out;
}

/**
 * The networks whose traffic the host forwards, and so filters: those with a bridge on the host. A macvlan
 * or ipvlan network's containers reach the wire beside the host, past its FORWARD chain.
 */
export const forwardedNetworks = (state: State): NetworkRecord[] => Object.values(state.networks).filter(bridged);

/** The guard of the VXLAN port that `nets` (forwarded networks of `state`) need: none without an overlay network. */
function vxlanIntent(state: State, nets: NetworkRecord[]): VxlanIntent | undefined {
  const join = state.cluster;
  // a state from before the members were kept (no peers) gets its guard once the agent has written them
  if (!join?.peers || !nets.some((n) => n.driver === "overlay")) return undefined;
  return { vtep: join.advertise, port: VXLAN_PORT, peers: join.peers };
}

/** The intent of networks `nets` of `state`, without ports (ports.ts plans those). */
export const networksIntent = (state: State, nets: NetworkRecord[]): FirewallIntent => ({ networks: nets.map(networkIntent), ports: [], vxlan: vxlanIntent(state, nets) });

export const intentOf = (state: State): FirewallIntent => ({ ...networksIntent(state, forwardedNetworks(state)), ports: portIntents(state) });

/** The host address of a mapping published on every address of the host. */
export const ANY_ADDRESS = "0.0.0.0";

export const mappingText = (m: PortMapping) => `${m.hostIp}:${m.hostPort}->${m.containerPort}/${m.proto}`;
