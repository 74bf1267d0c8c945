// The topology `ctnet graph` reads from the kernel (commands/graph.ts) and draws (graphdot.ts), as data:
// both depend on this module, neither on the other.
import type { NetworkFacts } from "../firewall/firewall.js";

export interface GraphIface {
  ifname: string;
  addrs: string[];
  mac: string;
  up: boolean;
  /** host-side veth this interface is paired with */
  peer?: string;
  /** the network without a bridge (macvlan, ipvlan) whose parent this link hangs on */
  lan?: string;
}

/** A network whose containers hang on a parent link of the host (macvlan, ipvlan): the parent and the LAN behind it. */
export interface GraphLan {
  network: string;
  driver: string;
  /** the host's link the containers' links hang on */
  parent: string;
  present: boolean;
  up: boolean;
  subnet: string;
  gateway: string;
  internal: boolean;
  lab?: string;
}

export interface GraphBridge {
  network: string;
  ifname: string;
  present: boolean;
  up: boolean;
  addrs: string[];
  internal: boolean;
  lab?: string;
  /** host-side veths plugged into it, in the kernel's order */
  ports: string[];
  /** veths of containers outside the lab shown (the default bridge is shared) */
  hiddenPorts: number;
  subnet: string;
  /** what ctnet's rules for this bridge in the kernel's iptables do (all false when none are there) */
  firewall: NetworkFacts;
}

/** The host's way out: its default route's interface and addresses. */
export interface GraphUplink {
  ifname: string;
  addrs: string[];
  gateway: string | null;
}

export interface GraphSandbox {
  container: string;
  netns: string | null;
  mode: string;
  present: boolean;
  ifaces: GraphIface[];
  /** container: mode members sharing this namespace */
  sharedBy: string[];
  lab?: string;
}

export interface GraphPort {
  container: string;
  hostIp: string;
  hostPort: number;
  containerPort: number;
  proto: string;
  /** the DNAT rule's --to-destination as the kernel's CTNET-DNAT holds it; null when it is missing */
  dnatTo: string | null;
}

/** A remote container of an overlay network this host shows, from its claim in the store. */
export interface GraphRemoteContainer {
  container: string;
  network: string;
  ip: string;
  mac: string;
  /** the VTEP this host's FDB entry for the MAC sends frames to (bridge fdb show dev ctvx-VNI); null: no entry */
  fdbDst: string | null;
  /** this host's VXLAN device holds the ARP entry IP -> MAC it answers from (proxy) */
  arp: boolean;
}

/** Another member of the cluster, alive (its lease held) or Down, with its containers on this host's overlays. */
export interface GraphRemoteHost {
  host: string;
  vtep: string;
  alive: boolean;
  containers: GraphRemoteContainer[];
}

/** The VXLAN device of an overlay network on this host, plugged into the network's bridge. */
export interface GraphVxlan {
  network: string;
  ifname: string;
  vni: number;
  bridge: string;
  present: boolean;
  up: boolean;
  /** its local address as the kernel holds it (should be this host's VTEP) */
  local: string | null;
  /** FDB entries pointing at a VTEP no live host's claim explains, as mac -> VTEP */
  stale: Array<{ mac: string; dst: string }>;
}

/** On a joined host: this host in its cluster, the other members and the tunnels to them. */
export interface GraphCluster {
  store: string;
  host: string;
  vtep: string;
  vxlans: GraphVxlan[];
  hosts: GraphRemoteHost[];
  /** the store could not be read: the other hosts are unknown */
  error?: string;
}

export interface Topology {
  bridges: GraphBridge[];
  lans: GraphLan[];
  sandboxes: GraphSandbox[];
  /** veths plugged into the bridges shown whose other end belongs to no container shown */
  strayVeths: Array<{ ifname: string; bridge: string }>;
  ports: GraphPort[];
  /** null when the host has no default route */
  uplink: GraphUplink | null;
  /** net.ipv4.ip_forward: containers reach beyond their bridge only when it is on */
  forwarding: boolean;
  /** present only on a host that joined a cluster */
  cluster?: GraphCluster;
}

/** Traffic from bridge `from` to bridge `to` meets a DROP in ctnet's isolation chains. */
export function isolated(from: GraphBridge, to: GraphBridge): boolean {
  return (from.firewall.leavingChecked && to.firewall.enteringDropped) || from.firewall.internalDropped || to.firewall.internalDropped;
}

export const bridgeOf = (t: Topology, hostIf: string) => t.bridges.find((b) => b.ports.includes(hostIf));

/** A tunnel: from this host's VXLAN device of a network to a remote host's VTEP, carrying that host's containers. */
export interface GraphTunnel {
  vxlan: GraphVxlan;
  host: GraphRemoteHost;
  containers: GraphRemoteContainer[];
  /** the containers whose entries are wrong (entryProblem): an FDB entry missing or elsewhere, an ARP entry missing, a host Down */
  broken: GraphRemoteContainer[];
}

/** One tunnel per VXLAN device of this host and remote host with containers on its network. */
export function tunnels(c: GraphCluster): GraphTunnel[] {
  return c.vxlans.flatMap((vxlan) => c.hosts.flatMap((host) => {
    const containers = host.containers.filter((r) => r.network === vxlan.network);
    return containers.length ? [{ vxlan, host, containers, broken: containers.filter((r) => entryProblem(host, r, vxlan.ifname) !== null) }] : [];
  }));
}

/** What is wrong with a remote container's entries on this host's VXLAN device `vxlan`, or null when nothing. */
export function entryProblem(h: GraphRemoteHost, r: GraphRemoteContainer, vxlan: string): string | null {
  if (!h.alive) return r.fdbDst === null ? "host Down: its entries are removed" : `host Down, yet its FDB entry is still on ${vxlan}`;
  if (r.fdbDst === null) return `FDB entry MISSING on ${vxlan}`;
  if (r.fdbDst !== h.vtep) return `FDB entry on ${vxlan} points at VTEP ${r.fdbDst}, not ${h.vtep}`;
  if (!r.arp) return `ARP entry MISSING on ${vxlan}`;
  return null;
}
