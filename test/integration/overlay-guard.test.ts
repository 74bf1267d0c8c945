// Who may send VXLAN to a host (docs/overlay.md): while a host has an overlay network, its CTNET-INPUT
// lets UDP 4789 to its VTEP in from the other members' VTEPs only. Simulated hosts (simhosts.ts): h1-h3
// join; h4 sits on the same underlay without joining, then joins, dies and is pruned. A VXLAN device
// built by hand on a host (`probe`, the overlay network's VNI, a static FDB entry to h1's VTEP) sends
// echo requests to a container of h1: whether they arrive is read from the container's own ICMP counters.
import { describe, expect, it } from "vitest";
import { until, useSimCluster, type SimHost } from "./simhosts.js";

const sim = useSimCluster(3);
const host = (name: string) => sim().hosts.find((h) => h.name === name)!;
const join = (h: SimHost) => h.ok("cluster", "join", "--store", sim().store, "--advertise", h.ip, "--ttl", "4");

/** CTNET-INPUT's rules as `iptables -S` prints them, without the chain's own line ([] when it is missing). */
const inputRules = (h: SimHost) => h.sh(["iptables", "-S", "CTNET-INPUT"]).stdout.split("\n").filter((l) => l.startsWith("-A "));
/** The guard's rules for VTEP `vtep`: a RETURN per peer, in the order given, then the DROP. */
const guard = (vtep: string, peers: string[]) => [
  ...peers.map((p) => `-A CTNET-INPUT -s ${p}/32 -d ${vtep}/32 -p udp -m udp --dport 4789 -j RETURN`),
  `-A CTNET-INPUT -d ${vtep}/32 -p udp -m udp --dport 4789 -j DROP`,
];
const vxlanRules = (h: SimHost) => inputRules(h).filter((l) => l.includes("--dport 4789"));
/** Packets the guard's DROP on h has matched. */
const dropped = (h: SimHost) => {
  const line = h.sh(["iptables", "-v", "-S", "CTNET-INPUT"]).stdout.split("\n").find((l) => l.includes("--dport 4789 -c ") && l.includes("-j DROP"));
  return Number(/-c (\d+) /.exec(line ?? "")?.[1] ?? NaN);
};
/** Echo requests container `c` of h has received (its namespace's ICMP counters). */
const echoesIn = (h: SimHost, c: string) => {
  const snmp = h.inNs(c, "cat", "/proc/net/snmp").stdout.split("\n").filter((l) => l.startsWith("Icmp:"));
  const [names, values] = snmp.map((l) => l.split(/\s+/));
  return Number(values[names.indexOf("InEchos")]);
};

const net = (h: SimHost, c: string) => JSON.parse(h.ok("inspect", c))[0].NetworkSettings.Networks.ov;
const vniOf = (h: SimHost) => JSON.parse(h.ok("net", "inspect", "ov"))[0].Options["com.docker.network.driver.overlay.vxlanid_list"];

/** A VXLAN device of the network's VNI on `from`, outside ctnet, that sends container a's frames to h1's VTEP. */
function buildProbe(from: SimHost, h1: SimHost): void {
  const a = net(h1, "a");
  for (const argv of [
    ["ip", "link", "add", "probe", "type", "vxlan", "id", vniOf(h1), "local", from.ip, "dstport", "4789", "nolearning"],
    ["ip", "addr", "add", "10.230.0.250/24", "dev", "probe"],
    ["ip", "link", "set", "probe", "up"],
    ["ip", "neigh", "replace", a.IPAddress, "lladdr", a.MacAddress, "dev", "probe", "nud", "permanent"],
    ["bridge", "fdb", "append", a.MacAddress, "dev", "probe", "dst", h1.ip],
  ]) {
    const r = from.sh(argv);
    if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
  }
}
/** Sends three echo requests through the probe of `from` to a; no reply can come back (h1 knows no way to it). */
const probe = (from: SimHost, h1: SimHost) => from.sh(["ping", "-c3", "-i0.2", "-W1", net(h1, "a").IPAddress]);

describe("UDP 4789 accepted only from the cluster's members", () => {
  it("setup: h1, h2, h3 join; an overlay network with a container on h1 and on h2", () => {
    const [h1, h2, h3] = sim().hosts;
    for (const h of [h1, h2, h3]) join(h);
    h1.ok("net", "create", "-d", "overlay", "--subnet", "10.230.0.0/24", "ov");
    h1.ok("run", "-d", "--name", "a", "--net", "ov");
    h2.ok("run", "-d", "--name", "b", "--net", "ov");
  });

  it("CTNET-INPUT of each host with a container begins with a RETURN per other member's VTEP, then the DROP; containers reach each other", async () => {
    const [h1, h2, h3] = sim().hosts;
    // h1 joined first: the others came after, and its agent wrote them to its state
    // (the agent's plan moves the rules, then saves the state)
    await until("h1's guard lets h2 and h3 in", () => inputRules(h1).slice(0, 3).join("\n") === guard(h1.ip, [h2.ip, h3.ip]).join("\n") && h1.state().cluster.peers.join(" ") === `${h2.ip} ${h3.ip}`);
    await until("h2's guard lets h1 and h3 in", () => inputRules(h2).slice(0, 3).join("\n") === guard(h2.ip, [h1.ip, h3.ip]).join("\n") && h2.state().cluster.peers.join(" ") === `${h1.ip} ${h3.ip}`);
    // no overlay network on h3 yet: nothing to guard
    expect(vxlanRules(h3)).toEqual([]);
    await until("a reaches b", () => h1.ping("a", net(h2, "b").IPAddress));
    await until("b reaches a", () => h2.ping("b", net(h1, "a").IPAddress));
    for (const h of [h1, h2]) expect(h.ctnet("doctor").code).toBe(0);
  });

  it("VXLAN from a host of the underlay that is no member is dropped; from a member it gets in", async () => {
    const [h1, , h3] = sim().hosts;
    const h4 = await sim().addHost();
    buildProbe(h4, h1);
    buildProbe(h3, h1);
    const [echoes, drops] = [echoesIn(h1, "a"), dropped(h1)];
    expect(probe(h4, h1).code).not.toBe(0);
    expect(echoesIn(h1, "a")).toBe(echoes);
    expect(dropped(h1)).toBeGreaterThanOrEqual(drops + 3);
    // the same frames from a member's VTEP reach the container (so the probe would get in, but for the guard)
    probe(h3, h1);
    expect(echoesIn(h1, "a")).toBeGreaterThanOrEqual(echoes + 3);
    h3.sh(["ip", "link", "del", "probe"]);
  });

  it("a host that joins later is let in, its RETURN at its place before the DROP; a dead member stays let in until it is pruned", async () => {
    const [h1, h2, h3] = [host("h1"), host("h2"), host("h3")];
    const h4 = host("h4");
    join(h4);
    await until("h1 lets h4 in", () => inputRules(h1).slice(0, 4).join("\n") === guard(h1.ip, [h2.ip, h3.ip, h4.ip]).join("\n"));
    const echoes = echoesIn(h1, "a");
    probe(h4, h1);
    expect(echoesIn(h1, "a")).toBeGreaterThanOrEqual(echoes + 3);
    // a dead host's lease expires, but it is still a member: it must get in again when it comes back
    await sim().kill(h4);
    await until("h4 is down", () => h1.ok("cluster", "ls", "--format", "{{.Hostname}} {{.Status}}").includes("h4 Down"), 15_000);
    expect(vxlanRules(h1)).toEqual(guard(h1.ip, [h2.ip, h3.ip, h4.ip]));
    h1.ok("cluster", "prune", "h4");
    // h2's agent too, its state saved: the next test kills it
    for (const [h, peers] of [[h1, [h2.ip, h3.ip]], [h2, [h1.ip, h3.ip]]] as const) {
      await until(`${h.name} forgets h4`, () => vxlanRules(h).join("\n") === guard(h.ip, [...peers]).join("\n") && h.state().cluster.peers.join(" ") === peers.join(" "));
    }
  }, 40_000);

  it("a host that leaves is no longer let in: its RETURN goes on the others within seconds, on a host whose agent was down once it is back", async () => {
    const [h1, h2, h3] = [host("h1"), host("h2"), host("h3")];
    expect(vxlanRules(h2)).toEqual(guard(h2.ip, [h1.ip, h3.ip]));
    const agent = h2.sh(["cat", `${h2.stateDir}/agent.pid`]).stdout.split(" ")[0];
    h2.sh(["kill", "-KILL", agent]);
    await until("h2's agent is gone", () => h2.sh(["kill", "-0", agent]).code !== 0);
    h3.ok("cluster", "leave");
    // (the agent's plan moves the rules, then saves the state)
    await until("h1 forgets h3", () => vxlanRules(h1).join("\n") === guard(h1.ip, [h2.ip]).join("\n") && h1.state().cluster.peers.join(" ") === h2.ip);
    // nothing converged h2 meanwhile: doctor says so; the next command (doctor too) starts its agent
    // again, which compares as it starts
    expect(vxlanRules(h2)).toEqual(guard(h2.ip, [h1.ip, h3.ip]));
    expect(h2.ctnet("doctor").stdout).toContain(`the members this host lets send VXLAN differ from the store's (no longer members: ${h3.ip})`);
    // the revived agent starts node, takes a lease again, lists the store and plans the change
    await until("h2 forgets h3", () => vxlanRules(h2).join("\n") === guard(h2.ip, [h1.ip]).join("\n") && h2.state().cluster.peers.join(" ") === h1.ip, 20_000);
    // h2's lease may have lapsed while its agent was dead: h1 then forgot b, and learns it again once h2's
    // agent is back
    for (const h of [h1, h2]) await until(`${h.name} agrees with the store`, () => h.ctnet("doctor").code === 0, 10_000);
  });

  it("doctor reports a lost RETURN and a stranger's one; --fix puts the guard back as it was", async () => {
    const [h1, h2] = [host("h1"), host("h2")];
    const lost = guard(h1.ip, [h2.ip])[0];
    h1.sh(["iptables", "-D", ...lost.split(" ").slice(1)]);
    h1.sh(["iptables", "-I", "CTNET-INPUT", "1", "-s", "10.77.0.9/32", "-d", `${h1.ip}/32`, "-p", "udp", "-m", "udp", "--dport", "4789", "-j", "RETURN"]);
    // b's answers come from h2's VTEP: dropped now
    expect(h1.ping("a", net(h2, "b").IPAddress)).toBe(false);
    const found = h1.ctnet("doctor");
    expect(found.code).toBe(1);
    expect(found.stdout).toContain(`rule missing: -t filter -A CTNET-INPUT -d ${h1.ip}/32 -p udp -m udp --dport 4789 -s ${h2.ip}/32 -j RETURN`);
    expect(found.stdout).toContain(`stale rule -t filter -A CTNET-INPUT -s 10.77.0.9/32 -d ${h1.ip}/32 -p udp -m udp --dport 4789 -j RETURN`);
    h1.ok("doctor", "--fix");
    expect(inputRules(h1).slice(0, 2)).toEqual(guard(h1.ip, [h2.ip]));
    expect(h1.ctnet("doctor").code).toBe(0);
    await until("a reaches b again", () => h1.ping("a", net(h2, "b").IPAddress));
  });

  it("two overlay networks share one guard; it goes with the host's last overlay container", () => {
    const [h1, h2] = [host("h1"), host("h2")];
    h1.ok("net", "create", "-d", "overlay", "--subnet", "10.231.0.0/24", "ov2");
    h1.ok("net", "create", "--subnet", "10.66.2.0/24", "lan");
    h1.ok("run", "-d", "--name", "a2", "--net", "ov2");
    h1.ok("run", "-d", "--name", "l", "--net", "lan");
    expect(vxlanRules(h1)).toEqual(guard(h1.ip, [h2.ip]));
    h1.ok("rm", "-f", "a2");
    expect(vxlanRules(h1)).toEqual(guard(h1.ip, [h2.ip]));
    h1.ok("rm", "-f", "a");
    // the bridge network keeps ctnet's chains; the guard is gone from them
    expect(inputRules(h1).length).toBeGreaterThan(0);
    expect(vxlanRules(h1)).toEqual([]);
    expect(h1.ctnet("doctor").code).toBe(0);
    h1.ok("rm", "-f", "l");
    h1.ok("net", "rm", "lan");
    expect(h1.sh(["iptables", "-S"]).stdout).not.toContain("4789");
  });
});
