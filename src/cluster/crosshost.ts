// What `graph` and `trace` read of the cluster on a joined host (docs/overlay.md): the store's members,
// live hosts and claims, and this host's VXLAN devices with the FDB and ARP entries the kernel holds for
// them. Loaded only by graph and trace on a host that joined a cluster.
import { storeOf } from "./cluster.js";
import { PREFIX, type EndpointValue, type HostValue } from "./claims.js";
import { View, tunnelEntries } from "./agent.js";
import { vxlanIfname } from "../drivers/overlay.js";
import { runJson } from "../host/sys.js";
import type { GraphCluster, GraphVxlan } from "../views/topology.js";
import type { State } from "../model.js";

/** The store as graph and trace need it: every member, which of them are alive, and every claim. */
export interface StoreView {
  members: HostValue[];
  live: Set<string>;
  claims: EndpointValue[];
}

/** Reads the store once; an unreachable store is an error with the store's message. */
async function readStoreView(state: State): Promise<StoreView> {
  const etcd = storeOf(state);
  try {
    const view = new View();
    view.load((await etcd.list(PREFIX)).kvs);
    return {
      members: view.values<HostValue>("members/").sort((a, b) => a.host.localeCompare(b.host)),
      live: view.live(),
      claims: view.values<EndpointValue>("endpoints/").sort((a, b) => a.ip.localeCompare(b.ip, undefined, { numeric: true })),
    };
  } finally {
    etcd.close();
  }
}

/** The store view, or the reason it could not be read. */
export async function tryStoreView(state: State): Promise<StoreView | { error: string }> {
  try {
    return await readStoreView(state);
  } catch (err: any) {
    return { error: err.message ?? String(err) };
  }
}

/**
 * This host's part of the cluster for `graph`: its VXLAN devices (the overlay networks of `networks`),
 * the other members with their containers on those networks (from their claims), and for each such
 * container the FDB and ARP entries this host's kernel holds for it.
 */
export function readClusterGraph(state: State, networks: string[], store: StoreView | { error: string }): GraphCluster {
  const join = state.cluster!;
  const links = new Map(runJson(["ip", "-j", "-d", "link", "show", "type", "vxlan"]).map((l) => [l.ifname as string, l]));
  const overlays = networks.map((n) => state.networks[n]).filter((n) => n?.driver === "overlay");
  const entries = new Map(overlays.map((n) => [n.name, links.has(vxlanIfname(n.vni!)) ? tunnelEntries(vxlanIfname(n.vni!)) : { fdb: [], neigh: [] }]));
  const view = "error" in store ? null : store;
  const claims = !view ? [] : view.claims.filter((e) => entries.has(e.network) && e.host !== join.host);
  const vxlans: GraphVxlan[] = overlays.map((n) => {
    const ifname = vxlanIfname(n.vni!);
    const link = links.get(ifname);
    const explained = (e: { mac: string; dst: string }) => claims.some((c) => c.network === n.name && c.mac === e.mac && c.vtep === e.dst && !!view?.live.has(c.host));
    return {
      network: n.name, ifname, vni: n.vni!, bridge: n.bridge, present: !!link, up: !!link && (link.flags ?? []).includes("UP"),
      local: link?.linkinfo?.info_data?.local ?? null, stale: !view ? [] : entries.get(n.name)!.fdb.filter((e) => !explained(e)),
    };
  });
  const members = !view ? [] : view.members.filter((m) => m.host !== join.host);
  return {
    store: join.store, host: join.host, vtep: join.advertise, vxlans,
    hosts: members.map((m) => ({
      host: m.host, vtep: m.vtep, alive: view!.live.has(m.host),
      containers: claims.filter((c) => c.host === m.host).map((c) => {
        const have = entries.get(c.network)!;
        return {
          container: c.container, network: c.network, ip: c.ip, mac: c.mac,
          fdbDst: have.fdb.find((e) => e.mac === c.mac)?.dst ?? null, arp: have.neigh.some((e) => e.dst === c.ip && e.lladdr === c.mac),
        };
      }),
    })),
    ...("error" in store ? { error: store.error } : {}),
  };
}
