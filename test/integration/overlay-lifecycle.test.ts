// Overlay networks and the rest of a container's life (simhosts.ts): net connect / net disconnect, stop,
// start, restart and create claim and release the container's overlay address and name in the store,
// and bring the network up on the host or take it down with its last container; doctor compares a host's
// overlay kernel state and claims with the store; cluster prune releases a dead host's claims.
import { describe, expect, it } from "vitest";
import { until, useSimCluster, type SimHost } from "./simhosts.js";

const sim = useSimCluster(3);

/** The host's claims in the store: "container ip" for each. */
function claims(h: SimHost, of = h.name): string[] {
  const r = h.sh(["etcdctl", `--endpoints=${sim().store.slice("etcd://".length)}`, "get", "--prefix", "/ctnet/endpoints/ov/", "--print-value-only"], { env: { ...process.env, ETCDCTL_API: "3" } });
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((v) => v.host === of).map((v) => `${v.container} ${v.ip}`).sort();
}
const ipOn = (h: SimHost, c: string) => JSON.parse(h.ok("inspect", c))[0].NetworkSettings.Networks.ov?.IPAddress ?? null;
const vxlanUp = (h: SimHost) => h.sh(["ip", "link", "show", "ctvx-4096"]).code === 0;

describe("overlay networks through a container's life", () => {
  it("setup: two joined hosts, an overlay network, a container on the second host", () => {
    const [h1, h2] = sim().hosts;
    for (const h of [h1, h2]) h.ok("cluster", "join", "--store", sim().store, "--advertise", h.ip, "--ttl", "4");
    h1.ok("net", "create", "-d", "overlay", "--subnet", "10.220.0.0/24", "ov");
    h2.ok("run", "-d", "--name", "b", "--net", "ov");
  });

  it("net connect claims an address in the store and brings the network up; net disconnect releases both", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("run", "-d", "--name", "a");
    h1.ok("net", "connect", "ov", "a");
    const ip = ipOn(h1, "a");
    expect(claims(h1)).toEqual([`a ${ip}`]);
    expect(ip).not.toBe(ipOn(h2, "b"));
    await until("a reaches b across hosts", () => h1.ping("a", ipOn(h2, "b")));
    await until("b reaches a", () => h2.ping("b", ip));
    // the name is the network's across hosts: b cannot be connected here under a name h2 holds
    h1.ok("run", "-d", "--name", "b");
    const dup = h1.ctnet("net", "connect", "ov", "b");
    expect([dup.code, dup.stderr.trim()]).toEqual([2, "ctnet: container name b is already in use on overlay network ov (host h2)"]);
    // connecting again is refused as on any network, not as a name clash with itself; a bad --ip as on any
    const again = h1.ctnet("net", "connect", "ov", "a");
    expect([again.code, again.stderr.trim()]).toEqual([2, "ctnet: container a is already connected to network ov"]);
    h1.ok("rm", "-f", "b");
    h1.ok("run", "-d", "--name", "c");
    const badIp = h1.ctnet("net", "connect", "--ip", "999.1.1.1", "ov", "c");
    h1.ok("rm", "-f", "c");
    expect([badIp.code, badIp.stderr.trim()]).toEqual([2, 'ctnet: invalid --ip "999.1.1.1": not an IPv4 address']);
    h1.ok("net", "disconnect", "ov", "a");
    expect(claims(h1)).toEqual([]);
    expect(vxlanUp(h1)).toBe(false);
    expect(h1.ctnet("doctor").code).toBe(0);
    h1.ok("rm", "-f", "a");
  });

  it("run --network LAN --network OVERLAY: the overlay network as a later --network is claimed and brought up as net connect does", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("net", "create", "--subnet", "10.221.0.0/24", "lan");
    h1.ok("run", "-d", "--name", "m", "--network", "lan", "--network", "ov", "--network-alias", "lanonly");
    const ip = ipOn(h1, "m");
    expect(claims(h1)).toEqual([`m ${ip}`]);
    expect(vxlanUp(h1)).toBe(true);
    // eth0 on lan with the default route, eth1 on the overlay
    expect(h1.inNs("m", "ip", "-4", "-o", "addr", "show", "eth1").stdout).toContain(`${ip}/24`);
    expect(h1.inNs("m", "ip", "route", "show", "default").stdout).toContain("10.221.0.1");
    await until("m reaches b across hosts", () => h1.ping("m", ipOn(h2, "b")));
    await until("b resolves m by name", () => h2.inNs("b", "dig", "+short", "+tries=1", "+time=1", "-q", "m").stdout.trim() === ip);
    h1.ok("rm", "-f", "m");
    h1.ok("net", "rm", "lan");
    expect(claims(h1)).toEqual([]);
    expect(vxlanUp(h1)).toBe(false);
  });

  it("an --internal overlay network: containers of different hosts reach each other, nothing outside", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("net", "create", "-d", "overlay", "--internal", "--subnet", "10.222.0.0/24", "ovi");
    h1.ok("run", "-d", "--name", "i1", "--net", "ovi");
    h2.ok("run", "-d", "--name", "i2", "--net", "ovi");
    const ipOf = (h: SimHost, c: string) => JSON.parse(h.ok("inspect", c))[0].NetworkSettings.Networks.ovi.IPAddress;
    await until("i1 reaches i2 across hosts", () => h1.ping("i1", ipOf(h2, "i2")));
    expect(h1.ping("i1", "i2")).toBe(true);
    // the other host's underlay address is outside the network: the internal rules drop the way there
    expect(h1.ping("i1", h2.ip)).toBe(false);
    expect(h1.ping("i1", h1.ip)).toBe(false);
    // on a network that is not internal, a container reaches outside through its own host, masqueraded
    // (as Docker's docker_gwbridge): a host of the underlay sees it come from h1's address
    const h3 = sim().hosts[2];
    h1.ok("run", "-d", "--name", "o1", "--net", "ov");
    h3.sh(["sh", "-c", "(timeout 10 socat -T5 UDP-RECVFROM:9999 SYSTEM:'echo $SOCAT_PEERADDR' >/dev/null 2>&1 &)"]);
    await until("the listener on h3", () => h3.sh(["sh", "-c", "ss -uln | grep -q ':9999 '"]).code === 0);
    const seen = h1.sh(["ip", "netns", "exec", "o1", "sh", "-c", `echo hi | socat -T3 - UDP:${h3.ip}:9999`]).stdout.trim();
    expect(seen).toBe(h1.ip);
    h1.ok("rm", "-f", "o1");
    h1.ok("rm", "-f", "i1");
    h2.ok("rm", "-f", "i2");
    h1.ok("net", "rm", "ovi");
  });

  it("stop releases the claim and takes the network down with the host's last container; start claims again; restart keeps one claim", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("run", "-d", "--name", "s", "--net", "ov");
    expect(claims(h1)).toHaveLength(1);
    h1.ok("stop", "-t", "0", "s");
    expect(claims(h1)).toEqual([]);
    expect(vxlanUp(h1)).toBe(false);
    h1.ok("start", "s");
    const ip = ipOn(h1, "s");
    expect(claims(h1)).toEqual([`s ${ip}`]);
    await until("s reaches b after start", () => h1.ping("s", ipOn(h2, "b")));
    h1.ok("restart", "-t", "0", "s");
    expect(claims(h1)).toEqual([`s ${ipOn(h1, "s")}`]);
    await until("s reaches b after restart", () => h1.ping("s", ipOn(h2, "b")));
    expect(h1.ctnet("doctor").code).toBe(0);
    h1.ok("rm", "-f", "s");
    expect(claims(h1)).toEqual([]);
  });

  it("create claims nothing until start; start claims and joins the network, rm releases", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("create", "--name", "c", "--net", "ov");
    expect(claims(h1)).toEqual([]);
    expect(vxlanUp(h1)).toBe(false);
    h1.ok("start", "c");
    expect(claims(h1)).toEqual([`c ${ipOn(h1, "c")}`]);
    await until("c reaches b", () => h1.ping("c", ipOn(h2, "b")));
    h1.ok("rm", "-f", "c");
    expect(claims(h1)).toEqual([]);
    expect(vxlanUp(h1)).toBe(false);
  });

  it("doctor finds missing and stale FDB/ARP entries and a missing claim; doctor --fix converges them", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("run", "-d", "--name", "d", "--net", "ov");
    const [ipB, ipD] = [ipOn(h2, "b"), ipOn(h1, "d")];
    const macB = JSON.parse(h2.ok("inspect", "b"))[0].NetworkSettings.Networks.ov.MacAddress;
    await until("d reaches b", () => h1.ping("d", ipB));
    expect(h1.ctnet("doctor").code).toBe(0);
    // the store loses d's claim (every agent converges on that event: then the kernel is changed), the
    // kernel loses b's entries and gains an entry nobody claims
    h1.sh(["etcdctl", `--endpoints=${sim().store.slice("etcd://".length)}`, "del", `/ctnet/endpoints/ov/${ipD}`], { env: { ...process.env, ETCDCTL_API: "3" } });
    await new Promise((r) => setTimeout(r, 500));
    h1.sh(["bridge", "fdb", "del", macB, "dev", "ctvx-4096", "dst", h2.ip, "self"]);
    h1.sh(["ip", "neigh", "del", ipB, "dev", "ctvx-4096"]);
    h1.sh(["bridge", "fdb", "append", "02:42:0a:dc:00:63", "dev", "ctvx-4096", "dst", "10.77.0.99", "self", "permanent"]);
    const r = h1.ctnet("doctor");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`overlay network ov: FDB entry ${macB} -> VTEP ${h2.ip} (${ipB}) is missing`);
    expect(r.stdout).toContain(`overlay network ov: ARP entry ${ipB} -> ${macB} is missing`);
    expect(r.stdout).toContain(`overlay network ov: stale FDB entry 02:42:0a:dc:00:63 -> VTEP 10.77.0.99`);
    expect(r.stdout).toContain(`container d on overlay network ov (${ipD}): its claim is missing from the store`);
    const fixed = h1.ctnet("doctor", "--fix");
    expect([fixed.code, fixed.stdout]).toEqual([0, expect.stringContaining("repaired")]);
    expect(claims(h1)).toEqual([`d ${ipD}`]);
    // the answer comes back through h2's device, whose agent learns the new claim of d in its own time
    await until("d reaches b again", () => h1.ping("d", ipB));
    await until("b reaches d again", () => h2.ping("b", ipD));
    h1.ok("rm", "-f", "d");
  });

  it("cluster prune releases a dead host's claims; a live host is refused", async () => {
    const [h1, , h3] = sim().hosts;
    h3.ok("cluster", "join", "--store", sim().store, "--advertise", h3.ip, "--ttl", "4");
    h3.ok("run", "-d", "--name", "x", "--net", "ov");
    const ipX = ipOn(h3, "x");
    const alive = h1.ctnet("cluster", "prune", "h3");
    expect([alive.code, alive.stderr.trim()]).toEqual([2, "ctnet: host h3 is alive (its lease is held): only a dead host's claims can be released"]);
    expect(h1.ctnet("cluster", "prune", "h1").code).toBe(2);
    expect(h1.ctnet("cluster", "prune", "nosuch").code).toBe(2);
    await sim().kill(h3);
    const row = () => h1.ok("cluster", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Containers}}").split("\n").find((l) => l.startsWith("h3 "));
    await until("h3 is down", () => row() === "h3 Down 1", 15_000);
    // its claims are kept until pruned: never re-addressed silently
    expect(claims(h1, "h3")).toEqual([`x ${ipX}`]);
    expect(h1.ok("cluster", "prune", "h3").trim()).toBe("h3");
    expect(claims(h1, "h3")).toEqual([]);
    expect(row()).toBeUndefined();
    // its address and name are free again
    h1.ok("run", "-d", "--name", "x", "--net", "ov", "--ip", ipX);
    h1.ok("rm", "-f", "x");
  }, 60_000);
});
