// The overlay network driver's data plane on one host (docs/overlay.md): per overlay network a Linux
// bridge holding the network's gateway (the same address on every host, as Docker's overlay does) and a
// VXLAN device plugged into it, built when the host's first container joins the network and removed with
// its last. The VXLAN device learns nothing (`nolearning`) and answers ARP from its neighbour table
// (`proxy`): each remote container gets a permanent FDB entry (its MAC -> its host's VTEP) and a permanent
// ARP entry, planned here for the containers known at `run` and kept converged by the agent afterwards.
// The bridge, its firewall rules and the veth endpoints are the bridge driver's. Pure planning: the store
// is read by the caller (src/cluster/overlayrun.ts).
import { UsageError } from "../errors.js";
import { bridgeIfname, linkAlias } from "../naming.js";
import { containerDigests } from "../store/statefile.js";
import { bridgeDriver } from "./bridge.js";
import { MTU_KEYS, checkMtu } from "./endpoints.js";
import type { NetworkDriver, PlanContext } from "./driver.js";
import type { Plan } from "../plan/plan.js";
import { VXLAN_PORT, type NetworkRecord, type State } from "../model.js";

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

/** The remote containers a network's creation on this host programs at once (the store's, read by the caller). */
const peersAtCreate = new WeakMap<NetworkRecord, RemoteEndpoint[]>();

function addVxlan(plan: Plan, net: NetworkRecord, vtep: string, peers: RemoteEndpoint[]): void {
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
}

const vtepOf = (state: State) => {
  if (!state.cluster) throw new UsageError("overlay networks need a cluster: run 'ctnet cluster join' first");
  return state.cluster.advertise;
};

export const overlayDriver: NetworkDriver = {
  ...bridgeDriver,
  name: "overlay",
  optionKeys: { ...MTU_KEYS },
  checkOption: (_key, value) => checkMtu(value),
  // the local `net create` path (and lab files) cannot make one: the network is the cluster's
  validate() {
    throw new UsageError("overlay networks are made by 'ctnet net create -d overlay' on a host that joined a cluster (lab files cannot make them yet)");
  },
  create(plan, ctx, state, net) {
    bridgeDriver.create(plan, ctx, state, net);
    addVxlan(plan, net, vtepOf(state), peersAtCreate.get(net) ?? []);
  },
  remove(plan, ctx, state, net) {
    // the device goes first and takes its FDB and ARP entries along
    plan.cmd(["ip", "link", "del", vxlanIfname(net.vni!)], `delete the VXLAN device of ${net.name}: its last container here is gone`, null);
    bridgeDriver.remove(plan, ctx, state, net);
  },
  networkLinks: (net) => [net.bridge, vxlanIfname(net.vni!)],
  checkNetwork(net, host) {
    const out = bridgeDriver.checkNetwork(net, host);
    const vx = vxlanIfname(net.vni!);
    if (!host.links.has(vx)) {
      // its VTEP is the cluster's business (state.cluster): not fixed here, the next container's run remakes it
      out.push({ text: `overlay network ${net.name}: VXLAN device ${vx} is missing (not fixable by doctor yet: remove and run its containers again)`, phase: 6 });
    }
    return out;
  },
};

/**
 * Brings an overlay network up on this host unless it is already (the state holds the local copy of every
 * overlay network that has containers here): the bridge driver's bridge, gateway and rules, then the VXLAN
 * device with the entries of `peers`. `net.options.mtu` is this host's overlay MTU.
 */
export function ensureOverlayOnHost(plan: Plan, ctx: PlanContext, state: State, net: NetworkRecord, peers: RemoteEndpoint[]): NetworkRecord {
  const existing = state.networks[net.name];
  if (existing) return existing;
  net.bridge = bridgeIfname(net.name);
  peersAtCreate.set(net, peers);
  overlayDriver.create(plan, ctx, state, net);
  state.networks[net.name] = net;
  return net;
}

/** Removes this host's part of every overlay network that no container here uses any more. */
export function releaseOverlaysOnHost(plan: Plan, ctx: PlanContext, state: State): void {
  const used = new Set(containerDigests(state).flatMap((c) => c.endpoints.map((e) => e.network)));
  for (const net of Object.values(state.networks)) {
    if (net.driver !== "overlay" || used.has(net.name)) continue;
    delete state.networks[net.name];
    overlayDriver.remove(plan, ctx, state, net);
  }
}
