// graph on a joined host (issue 17): the cluster part of a topology — this host's VXLAN devices, the other
// hosts with their containers, the tunnels — drawn as text and DOT from a topology object; and a topology
// without a cluster drawn as before.
import { describe, expect, it } from "vitest";
import { renderDot } from "../../src/views/graphdot.js";
import { renderText } from "../../src/commands/graph.js";
import { entryProblem, tunnels, type GraphCluster, type GraphRemoteHost, type Topology } from "../../src/views/topology.js";

const facts = { leavingChecked: true, enteringDropped: true, iccDropped: false, internalDropped: false, masquerade: true };

function topology(cluster?: GraphCluster): Topology {
  return {
    bridges: [{ network: "ov", ifname: "ctbr-ov", present: true, up: true, addrs: ["10.200.0.1/24"], internal: false, ports: ["ve-a.ov"], hiddenPorts: 0, subnet: "10.200.0.0/24", firewall: facts }],
    lans: [],
    sandboxes: [{ container: "a", netns: "a", mode: "bridge", present: true, sharedBy: [], ifaces: [{ ifname: "eth0", addrs: ["10.200.0.2/24"], mac: "02:42:0a:c8:00:02", up: true, peer: "ve-a.ov" }] }],
    strayVeths: [],
    ports: [],
    uplink: null,
    forwarding: true,
    ...(cluster ? { cluster } : {}),
  };
}

const h2: GraphRemoteHost = {
  host: "h2", vtep: "10.77.0.2", alive: true,
  containers: [
    { container: "b", network: "ov", ip: "10.200.0.3", mac: "02:42:0a:c8:00:03", fdbDst: "10.77.0.2", arp: true },
    { container: "c", network: "ov", ip: "10.200.0.4", mac: "02:42:0a:c8:00:04", fdbDst: null, arp: true },
  ],
};
const h3: GraphRemoteHost = { host: "h3", vtep: "10.77.0.3", alive: true, containers: [{ container: "d", network: "ov", ip: "10.200.0.5", mac: "02:42:0a:c8:00:05", fdbDst: "10.77.0.3", arp: true }] };
const h4: GraphRemoteHost = { host: "h4", vtep: "10.77.0.4", alive: false, containers: [{ container: "e", network: "ov", ip: "10.200.0.6", mac: "02:42:0a:c8:00:06", fdbDst: null, arp: false }] };
const cluster: GraphCluster = {
  store: "etcd://10.77.0.101:2379", host: "h1", vtep: "10.77.0.1",
  vxlans: [{ network: "ov", ifname: "ctvx-4096", vni: 4096, bridge: "ctbr-ov", present: true, up: true, local: "10.77.0.1", stale: [{ mac: "02:42:0a:c8:00:09", dst: "10.77.0.9" }] }],
  hosts: [h2, h3, h4, { host: "h5", vtep: "10.77.0.5", alive: true, containers: [] }],
};

describe("tunnels and their problems", () => {
  it("one tunnel per VXLAN device and remote host with containers on its network; broken: entries missing or elsewhere", () => {
    const t = tunnels(cluster);
    expect(t.map((x) => [x.vxlan.ifname, x.host.host, x.containers.map((r) => r.container), x.broken.map((r) => r.container)])).toEqual([
      ["ctvx-4096", "h2", ["b", "c"], ["c"]],
      ["ctvx-4096", "h3", ["d"], []],
      ["ctvx-4096", "h4", ["e"], ["e"]],
    ]);
  });

  it("names what is wrong with a container's entries", () => {
    const [b, c] = h2.containers;
    expect(entryProblem(h2, b, "ctvx-4096")).toBeNull();
    expect(entryProblem(h2, c, "ctvx-4096")).toBe("FDB entry MISSING on ctvx-4096");
    expect(entryProblem(h2, { ...b, fdbDst: "10.77.0.7" }, "ctvx-4096")).toBe("FDB entry on ctvx-4096 points at VTEP 10.77.0.7, not 10.77.0.2");
    expect(entryProblem(h2, { ...b, arp: false }, "ctvx-4096")).toBe("ARP entry MISSING on ctvx-4096");
    expect(entryProblem(h4, h4.containers[0], "ctvx-4096")).toBe("host Down: its entries are removed");
    expect(entryProblem(h4, { ...h4.containers[0], fdbDst: "10.77.0.4" }, "ctvx-4096")).toBe("host Down, yet its FDB entry is still on ctvx-4096");
  });
});

describe("drawing a joined host", () => {
  it("text: the VXLAN device under its bridge, each other host with its containers, stale entries", () => {
    expect(renderText(topology(cluster))).toBe([
      "network ov: bridge ctbr-ov 10.200.0.1/24",
      "  ├─ ve-a.ov ⇄ a: eth0 10.200.0.2/24",
      "  └─ ctvx-4096 ⇄ VXLAN VNI 4096 from VTEP 10.77.0.1, tunnels to h2 10.77.0.2, h3 10.77.0.3, h4 10.77.0.4",
      "cluster etcd://10.77.0.101:2379: this host h1, VTEP 10.77.0.1",
      "  host h2, VTEP 10.77.0.2, Ready",
      "    ├─ b 10.200.0.3 on ov: ctvx-4096 → VTEP 10.77.0.2",
      "    └─ c 10.200.0.4 on ov: FDB entry MISSING on ctvx-4096",
      "  host h3, VTEP 10.77.0.3, Ready",
      "    └─ d 10.200.0.5 on ov: ctvx-4096 → VTEP 10.77.0.3",
      "  host h4, VTEP 10.77.0.4, Down",
      "    └─ e 10.200.0.6 on ov: host Down: its entries are removed",
      "  host h5, VTEP 10.77.0.5, Ready",
      "  stale FDB entry on ctvx-4096: 02:42:0a:c8:00:09 → VTEP 10.77.0.9 (no live host's claim)",
      "",
    ].join("\n"));
  });

  it("DOT: this host named with its VTEP, the VXLAN node on the bridge, a box per other host, a tunnel edge per host, broken ones dashed", () => {
    const dot = renderDot(topology(cluster));
    expect(dot).toContain('label=<<B>host h1</B>: its own network namespace, VTEP 10.77.0.1>');
    expect(dot).toMatch(/"vxlan:ctvx-4096" \[label=<.*VXLAN ctvx-4096.*VNI 4096.*from VTEP 10\.77\.0\.1, UDP 4789.*stale FDB 02:42:0a:c8:00:09 → 10\.77\.0\.9.*class="vxlan network-ov"/);
    expect(dot).toContain('"br:ctbr-ov" -> "vxlan:ctvx-4096"');
    for (const h of ["h2", "h3", "h4", "h5"]) expect(dot).toContain(`subgraph "cluster_remote_${h}" {`);
    expect(dot).toMatch(/"vxlan:ctvx-4096" -> "vtep:h3" \[style="bold", [^\]]*label="VXLAN VNI 4096 → 10\.77\.0\.3:4789", class="tunnel network-ov"/);
    expect(dot).toMatch(/"vxlan:ctvx-4096" -> "vtep:h2" \[style="dashed", [^\]]*label="× c: FDB entry MISSING on ctvx-4096", class="tunnel broken network-ov"/);
    expect(dot).toMatch(/"vxlan:ctvx-4096" -> "vtep:h4" \[style="dashed", [^\]]*class="tunnel broken network-ov"/);
    expect(dot).not.toContain('"vtep:h5" ->');
    expect(dot).not.toContain('-> "vtep:h5"');
    expect(dot).toContain('"vtep:h2" -> "remote:h2:ov:b"');
    expect(dot).toMatch(/class="remote-host down"/);
  });

  it("an unreadable store is said, and the local drawing stays", () => {
    const down = { ...cluster, vxlans: [{ ...cluster.vxlans[0], stale: [] }], hosts: [], error: "etcd store etcd://10.77.0.101:2379 is unreachable" };
    expect(renderText(topology(down))).toContain("cluster etcd://10.77.0.101:2379: this host h1, VTEP 10.77.0.1\n  store unreadable (etcd store etcd://10.77.0.101:2379 is unreachable): the other hosts are unknown\n");
    expect(renderDot(topology(down))).toMatch(/store \[label=<.*unreadable: etcd store/);
  });

  it("a host that joined no cluster is drawn as before: no VXLAN, no other host, the host box unnamed", () => {
    const dot = renderDot(topology());
    expect(dot).toContain("label=<<B>host</B>: its own network namespace>");
    expect(dot).not.toMatch(/vxlan|vtep|cluster_remote/);
    expect(renderText(topology())).toBe("network ov: bridge ctbr-ov 10.200.0.1/24\n  └─ ve-a.ov ⇄ a: eth0 10.200.0.2/24\n");
  });
});
