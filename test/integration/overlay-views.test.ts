// graph and trace across hosts (issue 17, teaching): on simulated hosts (simhosts.ts), h1 draws h2, its
// VTEP and the tunnel its VXLAN device holds to it, and traces a packet from a (h1) to b (h2) hop by hop,
// each hop read from the kernel or the store; an FDB entry deleted by hand shows as a broken tunnel and an
// unreachable trace, and the probe agrees with both explanations.
import { beforeAll, describe, expect, it } from "vitest";
import { until, useSimCluster, type SimHost } from "./simhosts.js";

const sim = useSimCluster(2);
const VNI = 4096;
const VX = `ctvx-${VNI}`;

let ipA = "";
let ipB = "";
let macB = "";
const ipOf = (h: SimHost, c: string) => JSON.parse(h.ok("inspect", c))[0].NetworkSettings.Networks.ov.IPAddress as string;

describe("graph and trace across hosts", () => {
  // the setting: two joined hosts, an overlay network, a on h1 and b on h2 pinging each other
  beforeAll(async () => {
    const [h1, h2] = sim().hosts;
    // a short lease: the last test waits for h2 to be seen Down
    for (const h of [h1, h2]) h.ok("cluster", "join", "--store", sim().store, "--advertise", h.ip, "--ttl", "3");
    h1.ok("net", "create", "-d", "overlay", "--subnet", "10.210.0.0/24", "ov");
    h1.ok("run", "-d", "--name", "a", "--net", "ov");
    h2.ok("run", "-d", "--name", "b", "--net", "ov");
    [ipA, ipB] = [ipOf(h1, "a"), ipOf(h2, "b")];
    macB = JSON.parse(h2.ok("inspect", "b"))[0].NetworkSettings.Networks.ov.MacAddress;
    await until("a reaches b", () => h1.ping("a", ipB));
    await until("b reaches a", () => h2.ping("b", ipA));
  }, 60_000);

  it("graph on h1 draws h2, its VTEP, b and the tunnel from ctvx-VNI (text, JSON, DOT, SVG)", () => {
    const [h1, h2] = sim().hosts;
    const text = h1.ok("graph");
    expect(text).toContain(`  └─ ${VX} ⇄ VXLAN VNI ${VNI} from VTEP ${h1.ip}, tunnels to h2 ${h2.ip}\n`);
    expect(text).toContain(`cluster ${sim().store}: this host h1, VTEP ${h1.ip}\n  host h2, VTEP ${h2.ip}, Ready\n    └─ b ${ipB} on ov: ${VX} → VTEP ${h2.ip}\n`);
    // the VXLAN device is the tunnels' end, not a veth whose container is missing
    expect(text).not.toContain("other end not in a container shown");

    const t = JSON.parse(h1.ok("graph", "--format", "json"));
    expect(t.strayVeths).toEqual([]);
    expect(t.bridges.find((b: any) => b.network === "ov").ports).not.toContain(VX);
    expect(t.cluster).toEqual({
      store: sim().store, host: "h1", vtep: h1.ip,
      vxlans: [{ network: "ov", ifname: VX, vni: VNI, bridge: "ctbr-ov", present: true, up: true, local: h1.ip, stale: [] }],
      hosts: [{ host: "h2", vtep: h2.ip, alive: true, containers: [{ container: "b", network: "ov", ip: ipB, mac: macB, fdbDst: h2.ip, arp: true }] }],
    });

    const dot = h1.ok("graph", "--format", "dot");
    expect(dot).toContain(`subgraph "cluster_remote_h2" {`);
    expect(dot).toMatch(new RegExp(`"vxlan:${VX}" -> "vtep:h2" \\[[^\\]]*label="VXLAN VNI ${VNI} → ${h2.ip.replace(/\./g, "\\.")}:4789", class="tunnel network-ov"`));
    expect(dot).toContain(`"vtep:h2" -> "remote:h2:ov:b"`);
    expect(dot).toContain(`"br:ctbr-ov" -> "vxlan:${VX}"`);
    const svg = h1.ok("graph", "--format", "svg");
    expect(svg).toContain('class="edge tunnel network&#45;ov"');
  });

  it("trace a → b across hosts lists the hops, each read, and the probe agrees", () => {
    const [h1, h2] = sim().hosts;
    const text = h1.ok("trace", "a", "b");
    const hops = [
      `ctnet's DNS server answers b to a with ${ipB} (network ov): a container of host h2`,
      `route in a: ${ipB} dev eth0, on-link src ${ipA}`,
      `filter FORWARD for ${ipA} → ${ipB} (icmp), in ctbr-ov, out ctbr-ov: ACCEPT`,
      `bridge ctbr-ov hands frames for other hosts to its port ${VX} (VXLAN VNI ${VNI}, local VTEP ${h1.ip})`,
      `${VX} answers a's ARP request for ${ipB} with ${macB}`,
      `FDB entry on ${VX}: ${macB} → VTEP ${h2.ip}`,
      `underlay: VXLAN (UDP 4789, VNI ${VNI}) to ${h2.ip} leaves by eth1 src ${h1.ip}`,
      `host h2 (VTEP ${h2.ip}, Ready) delivers to b: its claim /ctnet/endpoints/ov/${ipB} in the store`,
      "expected: REACHABLE",
      "the probe agrees",
    ];
    const at = hops.map((h) => text.indexOf(h));
    expect(at.every((i) => i >= 0), text).toBe(true);
    expect([...at].sort((x, y) => x - y), text).toEqual(at);
    expect(text).toMatch(/probe: .*ping -c 1 -W 1 b → reached/);

    const byAddress = JSON.parse(h1.ok("trace", "--format", "json", "a", ipB));
    expect(byAddress).toMatchObject({ expected: "reachable", agrees: true, sharedNetworks: ["ov"], remote: { container: "b", network: "ov", host: "h2", vtep: h2.ip, alive: true } });
    expect(byAddress.facts[0]).toBe(`${ipB} is b on overlay network ov, on host h2 (its claim in the store)`);
  });

  it("h2's FDB entry deleted by hand on h1: graph draws the tunnel broken, trace expects unreachable, the probes agree", () => {
    const [h1, h2] = sim().hosts;
    expect(h1.sh(["bridge", "fdb", "del", macB, "dev", VX, "dst", h2.ip, "self"]).code).toBe(0);

    expect(h1.ok("graph")).toContain(`    └─ b ${ipB} on ov: FDB entry MISSING on ${VX}\n`);
    const t = JSON.parse(h1.ok("graph", "--format", "json"));
    expect(t.cluster.hosts[0].containers[0]).toMatchObject({ container: "b", fdbDst: null, arp: true });
    expect(h1.ok("graph", "--format", "dot")).toMatch(new RegExp(`"vxlan:${VX}" -> "vtep:h2" \\[style="dashed", [^\\]]*label="× b: FDB entry MISSING on ${VX}", class="tunnel broken network-ov"`));

    const r = h1.ctnet("trace", "a", "b");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`no FDB entry for ${macB} on ${VX}: the device learns nothing (nolearning), so the frame is dropped`);
    expect(r.stdout).toContain("expected: UNREACHABLE");
    expect(r.stdout).toMatch(/probe: .* → failed/);
    expect(r.stdout).toContain("the probe agrees");
    expect(h1.ping("a", ipB)).toBe(false);
  });

  it("h2 dies: graph draws it Down with b, trace names the Down host and expects unreachable, the probe agrees", async () => {
    const [h1, h2] = sim().hosts;
    const vtep2 = h2.ip;
    await sim().kill(h2);
    await until("h1 sees h2 Down", () => JSON.parse(h1.ok("graph", "--format", "json")).cluster.hosts[0].alive === false, 15_000);
    expect(h1.ok("graph")).toContain(`  host h2, VTEP ${vtep2}, Down\n    └─ b ${ipB} on ov: host Down`);
    const dot = h1.ok("graph", "--format", "dot");
    expect(dot).toMatch(/subgraph "cluster_remote_h2" \{\n {4}graph \[label=<<B>host h2<\/B>: VTEP [\d.]+, Down>, [^\]]*class="remote-host down"\]/);
    expect(dot).toMatch(/"vxlan:ctvx-4096" -> "vtep:h2" \[style="dashed", [^\]]*class="tunnel broken network-ov"/);

    const r = JSON.parse(h1.ok("trace", "--format", "json", "a", ipB));
    expect(r).toMatchObject({ expected: "unreachable", agrees: true, remote: { host: "h2", alive: false }, probe: { ok: false } });
    expect(r.facts).toContain(`host h2 (VTEP ${vtep2}) holds b (its claim in the store) but is Down: its lease expired, nothing answers there`);
  });
});
