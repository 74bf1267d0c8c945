// Overlay networks across simulated hosts (simhosts.ts): three private hosts on an underlay bridge, a
// 3-member etcd cluster, real VXLAN traffic between containers of different hosts.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { until, useSimCluster, type SimHost } from "./simhosts.js";
import { CTNET } from "./harness.js";

const sim = useSimCluster(3);

const host = (name: string) => sim().hosts.find((h) => h.name === name)!;
const fdb = (h: SimHost, vni: number) => h.sh(["bridge", "fdb", "show", "dev", `ctvx-${vni}`]).stdout;
const join = (h: SimHost, ...extra: string[]) => h.ok("cluster", "join", "--store", sim().store, "--advertise", h.ip, ...extra);

describe("overlay networks across hosts", () => {
  it("bad input to cluster join and net create -d overlay: one line, exit 2, nothing changed", () => {
    const h1 = host("h1");
    const before = h1.stateFiles();
    const cases: Array<[string[], RegExp]> = [
      [["cluster", "join", "--store", "http://10.77.0.101:2379", "--advertise", h1.ip], /invalid --store "http:\/\/10\.77\.0\.101:2379": expected etcd:\/\/HOST:PORT/],
      [["cluster", "join", "--store", sim().store, "--advertise", "10.77.0.99"], /--advertise 10\.77\.0\.99 is not an address of this host/],
      [["cluster", "join", "--store", sim().store, "--advertise", h1.ip, "--ttl", "31"], /invalid --ttl "31": seconds, 2\.\.30/],
      [["net", "create", "-d", "overlay", "ov0"], /this host has not joined a cluster/],
      [["cluster", "ls"], /this host has not joined a cluster/],
    ];
    for (const [args, message] of cases) {
      const r = h1.ctnet(...args);
      expect([r.code, r.stderr.trim().split("\n").length], args.join(" ")).toEqual([2, 1]);
      expect(r.stderr).toMatch(message);
    }
    expect(h1.stateFiles()).toEqual(before);
  });

  it("cluster join on every host; cluster ls shows them all, alive, with their VTEPs", () => {
    const [h1, h2, h3] = sim().hosts;
    join(h1, "--ttl", "4");
    join(h2, "--ttl", "4");
    join(h3, "--ttl", "4");
    const rows = h2.ok("cluster", "ls", "--format", "{{.Hostname}} {{.Vtep}} {{.Status}}").trim().split("\n");
    expect(rows).toEqual([`h1 ${h1.ip} Ready`, `h2 ${h2.ip} Ready`, `h3 ${h3.ip} Ready`]);
    // a second host of the same name is refused while the first is alive
    const again = h3.ctnet("cluster", "join", "--store", sim().store, "--advertise", h3.ip);
    expect(again.code).toBe(2);
  });

  it("an overlay network created on one host shows on every host, scope global", () => {
    const [h1, h2, h3] = sim().hosts;
    h1.ok("net", "create", "-d", "overlay", "--subnet", "10.200.0.0/24", "ov1");
    for (const h of [h1, h2, h3]) {
      expect(h.ok("net", "ls", "--filter", "name=ov1", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").trim()).toBe("ov1 overlay global");
      const inspect = JSON.parse(h.ok("net", "inspect", "ov1"))[0];
      expect(inspect).toMatchObject({ Driver: "overlay", Scope: "global", IPAM: { Config: [{ Subnet: "10.200.0.0/24", Gateway: "10.200.0.1" }] } });
    }
    // the name is the cluster's: another host cannot create it again
    expect(h2.ctnet("net", "create", "-d", "overlay", "ov1").code).toBe(2);
    // --dry-run shows the one transaction (as etcdctl runs it) and claims nothing
    const dry = h3.ok("net", "create", "--dry-run", "-d", "overlay", "ovdry");
    expect(dry).toMatch(/^# 1\. claim overlay network ovdry, its VNI 4097 and its subnet [\d./]+\netcdctl --endpoints=[\d.:,]+ txn <<'EOF'\ncreate\("\/ctnet\/networks\/ovdry"\) = "0"\ncreate\("\/ctnet\/vnis\/4097"\) = "0"\ncreate\("\/ctnet\/subnets\/[\d./]+"\) = "0"\n\nput \/ctnet\/networks\/ovdry /m);
    expect(h1.ok("net", "ls", "--format", "{{.Name}}")).not.toContain("ovdry");
  });

  it("containers on two hosts ping each other across the VXLAN tunnel; the MTU is the underlay's less 50", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("run", "-d", "--name", "a", "--net", "ov1", "--network-alias", "web");
    h2.ok("run", "-d", "--name", "b", "--net", "ov1");
    const ipOf = (h: SimHost, c: string) => JSON.parse(h.ok("inspect", c))[0].NetworkSettings.Networks.ov1.IPAddress;
    const [ipA, ipB] = [ipOf(h1, "a"), ipOf(h2, "b")];
    expect(ipA).not.toBe(ipB);
    // b's run plan itself programmed a, whom the store already knew; a's host learns of b (for the replies
    // too) from its agent, which converges on b's claim a few ms after it is made
    await until("b reaches a", () => h2.ping("b", ipA));
    await until("a reaches b", () => h1.ping("a", ipB));
    expect(h1.inNs("a", "cat", "/sys/class/net/eth0/mtu").stdout.trim()).toBe("1450");
    // 1422 bytes of ICMP payload + 28 of headers = 1450: passes with DF set; one more byte does not
    expect(h1.inNs("a", "ping", "-c1", "-W1", "-M", "do", "-s", "1422", ipB).code).toBe(0);
    const big = h1.inNs("a", "ping", "-c1", "-W1", "-M", "do", "-s", "1423", ipB);
    expect(big.code).not.toBe(0);
    expect(big.stdout + big.stderr).toMatch(/message too long|mtu/i);
    // doctor knows the VXLAN device as the overlay network's: no drift on either host
    for (const h of [h1, h2]) expect(h.ctnet("doctor").code, h.ctnet("doctor").stdout).toBe(0);
    expect(h1.ok("graph")).toContain("ctbr-ov1");
  });

  it("containers resolve each other's names across hosts: name, alias, short id, NAME.NETWORK; a bridge network's container does not", async () => {
    const [h1, h2] = sim().hosts;
    const ipA = JSON.parse(h1.ok("inspect", "a"))[0].NetworkSettings.Networks.ov1.IPAddress;
    const ipB = JSON.parse(h2.ok("inspect", "b"))[0].NetworkSettings.Networks.ov1.IPAddress;
    const shortA = JSON.parse(h1.ok("inspect", "a"))[0].Id.slice(0, 12);
    const resolves = (h: SimHost, from: string, name: string) => h.inNs(from, "dig", "+short", "+tries=1", "+time=1", "-q", name).stdout.trim();
    for (const name of ["a", "web", shortA, "a.ov1"]) await until(`b resolves ${name}`, () => resolves(h2, "b", name) === ipA);
    await until("a resolves b", () => resolves(h1, "a", "b") === ipB);
    expect(h2.inNs("b", "getent", "hosts", "web").stdout).toContain(ipA);
    expect(h2.ping("b", "a")).toBe(true);
    // the other hosts' lines are the agent's: doctor finds no drift in the DNS files
    for (const h of [h1, h2]) expect(h.ctnet("doctor").stdout).toContain("no differences");
    // with the agent stopped, a remote line lost by hand is doctor's finding, and --fix puts it back
    h2.sh(["pkill", "-f", `${h2.stateDir} agent`]);
    await until("h2's agent is gone", () => h2.sh(["pgrep", "-f", `${h2.stateDir} agent`]).code !== 0);
    const file = `${h2.stateDir}/dns/ov1`;
    h2.sh(["sed", "-i", "/^h1\\//d", file]);
    expect(h2.ctnet("doctor").stdout).toContain("overlay network ov1: the DNS server's names of other hosts' containers differ from the store (missing: a)");
    expect(h2.ctnet("doctor", "--fix").code).toBe(0);
    await until("b resolves a again", () => resolves(h2, "b", "a") === ipA);
    h2.ok("net", "create", "--subnet", "10.66.1.0/24", "lan");
    h2.ok("run", "-d", "--name", "outsider", "--net", "lan");
    expect(resolves(h2, "outsider", "a")).toBe("");
    h2.ok("rm", "-f", "outsider");
    h2.ok("net", "rm", "lan");
    // a container that goes is forgotten on the other host
    h1.ok("run", "-d", "--name", "brief2", "--net", "ov1");
    await until("b resolves brief2", () => resolves(h2, "b", "brief2") !== "");
    h1.ok("rm", "-f", "brief2");
    await until("b forgets brief2", () => resolves(h2, "b", "brief2") === "");
  });

  it("addresses are claimed in the store: no two hosts hand out the same one, also when they run at once", async () => {
    const [h1, h2, h3] = sim().hosts;
    const procs = [h1, h2, h3].flatMap((h) => [1, 2, 3].map((i) => h.spawnCtnet(["run", "-d", "--name", `p${h.name}-${i}`, "--net", "ov1"])));
    const codes = await Promise.all(procs.map((p) => new Promise<number>((r) => p.on("exit", (c) => r(c ?? 1)))));
    expect(codes).toEqual(Array(9).fill(0));
    const ips = [h1, h2, h3].flatMap((h) => [1, 2, 3].map((i) => JSON.parse(h.ok("inspect", `p${h.name}-${i}`))[0].NetworkSettings.Networks.ov1.IPAddress));
    expect(new Set(ips).size).toBe(9);
    for (const h of [h1, h2, h3]) h.ok("rm", "-f", ...[1, 2, 3].map((i) => `p${h.name}-${i}`));
  });

  it("a container removed by its --rm watcher gives its claim back (the agent releases claims no container holds)", async () => {
    const h1 = host("h1");
    const count = () => h1.ok("cluster", "ls", "--format", "{{.Hostname}} {{.Containers}}").split("\n").find((l) => l.startsWith("h1 "));
    expect(count()).toBe("h1 1");
    h1.ok("run", "-d", "--rm", "--name", "brief", "--net", "ov1", "--", "sleep", "0.3");
    await until("the container is gone", () => h1.ok("ps", "-a", "--format", "{{.Names}}").trim() === "a", 10_000);
    await until("its claim is released", () => count() === "h1 1", 10_000);
  });

  it("an unreachable store fails an overlay command before its first step, with one line naming it; bridge networks keep working", () => {
    const h3 = sim().hosts[2];
    // the store's members are cut off from this host alone
    h3.sh(["ip", "link", "set", "eth1", "down"]);
    try {
      const before = h3.kernel();
      const r = h3.ctnet("run", "-d", "--name", "c", "--net", "ov1");
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(sim().store);
      expect(h3.kernel()).toEqual(before);
      h3.ok("net", "create", "local1");
      h3.ok("run", "-d", "--name", "l1", "--net", "local1");
      h3.ok("run", "-d", "--name", "l2", "--net", "local1");
      expect(h3.ping("l1", "l2")).toBe(true);
      h3.ok("rm", "-f", "l1", "l2");
      h3.ok("net", "rm", "local1");
    } finally {
      h3.sh(["ip", "link", "set", "eth1", "up"]);
    }
  });

  it("--dry-run of an overlay run prints the store transaction as its first step, then the kernel steps, and changes nothing", () => {
    const h3 = sim().hosts[2];
    const before = h3.kernel();
    const out = h3.ok("run", "--dry-run", "-d", "--name", "d", "--net", "ov1");
    expect(out).toMatch(/^#!\/bin\/sh\n/);
    expect(out).toMatch(/^# 1\. claim 10\.200\.0\.\d+ and the name d on overlay network ov1\netcdctl --endpoints=[\d.:,]+ txn <<'EOF'\ncreate\("\/ctnet\/endpoints\/ov1\/10\.200\.0\.\d+"\) = "0"\ncreate\("\/ctnet\/names\/ov1\/d"\) = "0"\n\nput \/ctnet\/endpoints\/ov1\/10\.200\.0\.\d+ "/m);
    expect(out).toMatch(/^ip link add ctvx-\d+ mtu 1450 type vxlan id \d+ local 10\.77\.0\.3 dstport 4789 nolearning proxy$/m);
    expect(out).toMatch(/^bridge fdb replace 02:42:0a:c8:00:\w\w dev ctvx-\d+ dst 10\.77\.0\.\d self permanent$/m);
    expect(h3.kernel()).toEqual(before);
    expect(h3.ok("cluster", "ls", "--format", "{{.Hostname}} {{.Containers}}")).toContain("h3 0");
  });

  it("rm removes the container's claim, and the last container takes the bridge and VXLAN device along", async () => {
    const [h1, h2] = sim().hosts;
    const vni = Number(JSON.parse(h1.ok("net", "inspect", "ov1"))[0].Options["com.docker.network.driver.overlay.vxlanid_list"]);
    await until("h1 knows b's MAC", () => fdb(h1, vni).includes(`dst ${h2.ip}`));
    h2.ok("rm", "-f", "b");
    expect(h2.sh(["ip", "link", "show", `ctvx-${vni}`]).code).not.toBe(0);
    await until("h1 forgets b", () => !fdb(h1, vni).includes(`dst ${h2.ip}`));
    expect(h2.ok("cluster", "ls", "--format", "{{.Hostname}} {{.Containers}}")).toContain("h2 0");
  });

  it("with the etcd member the agents watch through cut off, they watch through another and go on converging", async () => {
    const [h1, h2] = [host("h1"), host("h2")];
    // every agent started on the first member of --store; cut off, it ends no stream: they go silent
    sim().etcdMembers[0].sh(["ip", "link", "set", "eth1", "down"]);
    h2.ok("run", "-d", "--name", "late", "--net", "ov1");
    const ip = JSON.parse(h2.ok("inspect", "late"))[0].NetworkSettings.Networks.ov1.IPAddress;
    await until("h1 learns of late", () => h1.ping("a", ip), 20_000);
    h2.ok("rm", "-f", "late");
  }, 40_000);

  it("a host that dies: within its lease time its FDB and ARP entries are gone on the others", async () => {
    const [h1, h2] = sim().hosts;
    h2.ok("run", "-d", "--name", "b2", "--net", "ov1");
    const vni = Number(JSON.parse(h1.ok("net", "inspect", "ov1"))[0].Options["com.docker.network.driver.overlay.vxlanid_list"]);
    await until("h1 knows b2", () => fdb(h1, vni).includes(`dst ${h2.ip}`));
    await sim().kill(h2);
    // the lease is 4 s; etcd expires it within a second or so of that
    const arp = () => h1.sh(["ip", "neigh", "show", "dev", `ctvx-${vni}`]).stdout;
    await until("h1 forgets the dead host's container", () => !fdb(h1, vni).includes(`dst ${h2.ip}`) && !arp().includes("lladdr"), 10_000);
    await until("its name no longer answers", () => h1.inNs("a", "dig", "+short", "+tries=1", "+time=1", "-q", "b2").stdout.trim() === "", 5_000);
    expect(h1.ok("cluster", "ls", "--format", "{{.Hostname}} {{.Status}}")).toContain("h2 Down");
  }, 30_000);

  it("a dead agent is started again by the next ctnet command; reset stops it", async () => {
    const h3 = host("h3");
    const pidFile = `${h3.stateDir}/agent.pid`;
    const alive = (pid: string) => h3.sh(["kill", "-0", pid]).code === 0;
    const first = fs.readFileSync(pidFile, "utf8").split(" ")[0];
    expect(alive(first)).toBe(true);
    h3.sh(["kill", "-KILL", first]);
    await until("the agent is gone", () => !alive(first));
    h3.ok("ps");
    const second = fs.readFileSync(pidFile, "utf8").split(" ")[0];
    expect(second).not.toBe(first);
    expect(alive(second)).toBe(true);
    // one agent a host: another one started by hand (two commands reviving it at once) ends at once, and
    // leaves the pid file naming the first. First means the one holding the agent's abstract socket: the
    // revived one takes it once node has started, a moment after ps returned
    await until("the revived agent holds its socket", () => h3.sh(["cat", "/proc/net/unix"]).stdout.includes("@ctnet/agent/"), 20_000);
    expect(h3.sh([CTNET, "agent"], { timeout: 20_000 }).code).toBe(0);
    const agents = () => h3.sh(["pgrep", "-f", `${h3.stateDir} agent`]).stdout.trim().split("\n").filter(Boolean);
    expect(agents()).toEqual([second]);
    expect(fs.readFileSync(pidFile, "utf8").split(" ")[0]).toBe(second);
    h3.ok("reset", "-y");
    await until("reset stopped the agent", () => !alive(second));
    expect(fs.existsSync(pidFile)).toBe(false);
  });

  it("leave is refused while the host has containers on overlay networks; --force removes them and their claims", () => {
    const h1 = host("h1");
    const refused = h1.ctnet("cluster", "leave");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("(a)");
    h1.ok("cluster", "leave", "--force");
    expect(h1.ok("ps", "-a", "--format", "{{.Names}}")).toBe("");
    expect(h1.ok("net", "ls", "--format", "{{.Name}}")).not.toContain("ov1");
    expect(h1.sh(["ip", "-o", "link", "show", "type", "vxlan"]).stdout).toBe("");
    // a host that left is no member: it rejoins under its name at once
    join(h1);
    expect(h1.ok("cluster", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Containers}}")).toContain("h1 Ready 0");
  });

  it("net rm of an overlay network: refused while any host, dead ones too, has a container on it; else gone everywhere", () => {
    const h1 = host("h1");
    // b2 of the dead h2 keeps its claim until it is pruned
    const refused = h1.ctnet("net", "rm", "ov1");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("(b2) on host h2");
    h1.ok("net", "create", "-d", "overlay", "ov2");
    expect(h1.ok("net", "rm", "ov2").trim()).toBe("ov2");
    expect(h1.ok("net", "ls", "--format", "{{.Name}}")).not.toContain("ov2");
    // its VNI and subnet are free again: the next network gets them
    h1.ok("net", "create", "-d", "overlay", "ov3");
    expect(JSON.parse(h1.ok("net", "inspect", "ov3"))[0].Options["com.docker.network.driver.overlay.vxlanid_list"]).toBe("4097");
  });
});

