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
}

/** Traffic from bridge `from` to bridge `to` meets a DROP in ctnet's isolation chains. */
export function isolated(from: GraphBridge, to: GraphBridge): boolean {
  return (from.firewall.leavingChecked && to.firewall.enteringDropped) || from.firewall.internalDropped || to.firewall.internalDropped;
}

export const bridgeOf = (t: Topology, hostIf: string) => t.bridges.find((b) => b.ports.includes(hostIf));
