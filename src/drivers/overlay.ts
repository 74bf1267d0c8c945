// The overlay network driver's data plane on one host (docs/overlay.md): per overlay network a Linux
// bridge holding the network's gateway (the same address on every host, as Docker's overlay does) and a
// VXLAN device plugged into it, built when the host's first container joins the network and removed with
// its last. The VXLAN device learns nothing (`nolearning`) and answers ARP from its neighbour table
// (`proxy`): each remote container gets a permanent FDB entry (its MAC -> its host's VTEP) and a permanent
// ARP entry, planned here for the containers known at `run` and kept converged by the agent afterwards.
// Pure planning: the store is read by the caller (src/cluster/overlayrun.ts).
import { setUpNetwork, tearDownNetwork } from "./bridge.js";
import { linkAlias } from "../naming.js";
import { membersOf } from "../commands/networks.js";
import type { Plan } from "../plan/plan.js";
import type { NetworkRecord, State } from "../model.js";

export const VXLAN_PORT = 4789;
/** outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers */
export const VXLAN_OVERHEAD = 50;

/** The VXLAN device of a network: named by its VNI, which is unique in the cluster and fits IFNAMSIZ. */
export const vxlanIfname = (vni: number) => `ctvx-${vni}`;

export interface RemoteEndpoint {
  ip: string;
  mac: string;
  vtep: string;
}

/** The two entries that send a remote container's frames to its host: FDB (MAC -> VTEP) and ARP (IP -> MAC). */
export function peerArgvs(vxlan: string, peer: RemoteEndpoint): { fdb: string[]; neigh: string[] } {
  return {
    fdb: ["bridge", "fdb", "replace", peer.mac, "dev", vxlan, "dst", peer.vtep, "self", "permanent"],
    neigh: ["ip", "neigh", "replace", peer.ip, "lladdr", peer.mac, "dev", vxlan, "nud", "permanent"],
  };
}

/**
 * Brings the network up on this host unless it is already (the draft holds the local copy of every overlay
 * network that has containers here): bridge, gateway and firewall rules as a bridge network's, then the
 * VXLAN device and the entries of the remote containers. `net.options.mtu` is this host's overlay MTU.
 */
export function ensureOverlayOnHost(plan: Plan, state: State, net: NetworkRecord, vtep: string, peers: RemoteEndpoint[]): NetworkRecord {
  const existing = state.networks[net.name];
  if (existing) return existing;
  setUpNetwork(plan, state, net);
  const vx = vxlanIfname(net.vni!);
  plan.cmd(
    ["ip", "link", "add", vx, "mtu", net.options.mtu, "type", "vxlan", "id", String(net.vni), "local", vtep, "dstport", String(VXLAN_PORT), "nolearning", "proxy"],
    `VXLAN device of overlay network ${net.name} (VNI ${net.vni}) from this host's VTEP ${vtep}; no learning: the store says where each MAC lives`,
    ["ip", "link", "del", vx],
  );
  plan.cmd(["ip", "link", "set", vx, "alias", linkAlias("vxlan", net.name)], "mark it as ctnet's", null);
  plan.cmd(["ip", "link", "set", vx, "master", net.bridge, "up"], `plug ${vx} into ${net.bridge}`, null);
  for (const peer of peers) {
    const { fdb, neigh } = peerArgvs(vx, peer);
    plan.cmd(fdb, `frames for ${peer.mac} (${peer.ip}) go to VTEP ${peer.vtep}`, null);
    plan.cmd(neigh, `${vx} answers ARP for ${peer.ip} itself`, null);
  }
  state.networks[net.name] = net;
  return net;
}

/** Removes this host's part of every overlay network that no container here uses any more. */
export function releaseOverlaysOnHost(plan: Plan, state: State): void {
  for (const net of Object.values(state.networks)) {
    if (net.driver !== "overlay" || membersOf(state, net.name).length > 0) continue;
    delete state.networks[net.name];
    // the device goes first and takes its FDB and ARP entries along
    plan.cmd(["ip", "link", "del", vxlanIfname(net.vni!)], `delete the VXLAN device of ${net.name}: its last container here is gone`, null);
    tearDownNetwork(plan, state, net);
  }
}
