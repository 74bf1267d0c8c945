// The core story on the real kernel: red/blue, the four run modes, the default bridge, dry-run.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { ctnetLeftovers, hostSnapshot, sh, uniq, useLabs } from "./harness.js";

const newLab = useLabs({ hostUnchanged: true });

describe("red/blue (seed 001)", () => {
  it("resolves names only on shared user networks and isolates networks by address too", () => {
    const lab = newLab();
    const [red, blue] = [uniq("red"), uniq("blu")];
    const [u1, u2, u3, u4] = [1, 2, 3, 4].map((i) => uniq(`u${i}`));
    lab.ok("net", "create", red);
    lab.ok("net", "create", blue);
    lab.ok("run", "-d", "--net", red, "--name", u1);
    lab.ok("run", "-d", "--net", red, "--name", u2);
    lab.ok("run", "-d", "--net", blue, "--name", u3);
    lab.ok("run", "-d", "--net", blue, "--name", u4);

    const unknown = lab.inNs(u4, "ping", "-c1", "-W1", u2);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/Name or service not known|unknown host/);
    expect(lab.ping(u4, u3)).toBe(true);

    const inspect = JSON.parse(lab.ok("inspect", u2))[0];
    const u2Ip = inspect.NetworkSettings.Networks[red].IPAddress;
    expect(u2Ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(lab.ping(u1, u2Ip)).toBe(true);
    expect(lab.ping(u4, u2Ip)).toBe(false);

    lab.ok("net", "connect", blue, u1);
    expect(lab.ping(u4, u1)).toBe(true);
    lab.ok("net", "disconnect", blue, u1);
    expect(lab.ping(u4, u1)).toBe(false);
    expect(lab.inNs(u4, "getent", "hosts", u1).code).not.toBe(0);
  });

  it("inspects networks the way docker network inspect does", () => {
    const lab = newLab();
    const net = uniq("ins");
    const c = uniq("c");
    lab.ok("net", "create", "--subnet", "10.211.0.0/24", "--label", "course=net101", net);
    lab.ok("run", "-d", "--net", net, "--name", c);
    const [doc] = JSON.parse(lab.ok("net", "inspect", net));
    expect(doc).toMatchObject({
      Name: net, Scope: "local", Driver: "bridge", Internal: false,
      IPAM: { Config: [{ Subnet: "10.211.0.0/24", Gateway: "10.211.0.1" }] },
      Labels: { course: "net101" },
    });
    const [entry] = Object.values(doc.Containers) as any[];
    expect(entry).toMatchObject({ Name: c, IPv4Address: "10.211.0.2/24", MacAddress: "02:42:0a:d3:00:02" });
    expect(sh(["ip", "-br", "addr", "show", "dev", doc.Options["com.docker.network.bridge.name"]]).stdout).toContain("10.211.0.1/24");
  });
});

describe("run modes", () => {
  it("none: only lo inside", () => {
    const lab = newLab();
    const c = uniq("n");
    lab.ok("run", "-d", "--net", "none", "--name", c);
    const links = lab.inNs(c, "ip", "-o", "link").stdout.trim().split("\n");
    expect(links).toHaveLength(1);
    expect(links[0]).toContain("lo:");
    expect(lab.inNs(c, "ip", "route").stdout.trim()).toBe("");
  });

  it("host: the process sees the host's interfaces", () => {
    const lab = newLab();
    const c = uniq("h");
    lab.ok("run", "-d", "--net", "host", "--name", c);
    const hostLinks = sh(["ip", "-o", "link"]).stdout.split("\n").length;
    expect(lab.run("exec", c, "ip", "-o", "link").stdout.split("\n").length).toBe(hostLinks);
    expect(lab.run("net", "inspect", "host").stdout).toContain(c);
  });

  it("container:X shares X's interfaces and address", () => {
    const lab = newLab();
    const net = uniq("cm");
    const [x, y] = [uniq("x"), uniq("y")];
    lab.ok("net", "create", net);
    lab.ok("run", "-d", "--net", net, "--name", x);
    lab.ok("run", "-d", "--net", `container:${x}`, "--name", y, "--", "sleep", "600");
    const ofX = lab.ok("exec", x, "ip", "-4", "-o", "addr");
    const ofY = lab.ok("exec", y, "ip", "-4", "-o", "addr");
    expect(ofY).toBe(ofX);
    expect(ofY).toContain("eth0");
    expect(lab.run("rm", "-f", x).code).toBe(2);
  });

  it("the default bridge: reachable by address, not by name, and gone with its last container", () => {
    const lab = newLab();
    const [a, b] = [uniq("a"), uniq("b")];
    lab.ok("run", "-d", "--name", a);
    lab.ok("run", "-d", "--name", b);
    const bIp = JSON.parse(lab.ok("inspect", b))[0].NetworkSettings.Networks.bridge.IPAddress;
    expect(lab.ping(a, bIp)).toBe(true);
    expect(lab.ping(a, b)).toBe(false);
    expect(sh(["ip", "link", "show", "ctnet0"]).code).toBe(0);
    expect(lab.ok("exec", a, "hostname").trim()).toBe(a);
    lab.ok("rm", "-f", a, b);
    expect(sh(["ip", "link", "show", "ctnet0"]).code).not.toBe(0);
    expect(ctnetLeftovers()).toEqual([]);
  });
});

describe("the sandbox's mounts", () => {
  it("a container's process holds no copy of /run/netns: namespaces made later are not mounted into it", async () => {
    const lab = newLab();
    const net = uniq("mnt");
    const [a, j, b] = [uniq("ma"), uniq("mj"), uniq("mb")];
    lab.ok("net", "create", "--subnet", "10.247.9.0/24", net);
    lab.ok("run", "-d", "--net", net, "--name", a);
    lab.ok("run", "-d", "--net", `container:${a}`, "--name", j);
    lab.ok("run", "-d", "--net", net, "--name", b);
    const mountsOf = async (name: string) => {
      const pid = lab.state().containers[name].pid;
      // the process detaches /run/netns before it execs its command
      for (let i = 0; i < 100 && !fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("sleep"); i++) await new Promise((r) => setTimeout(r, 20));
      return fs.readFileSync(`/proc/${pid}/mountinfo`, "utf8");
    };
    // the host holds b's namespace as a mount under /run/netns; a's and j's processes hold none at all
    expect(fs.readFileSync("/proc/self/mountinfo", "utf8")).toContain(`/run/netns/${b} `);
    for (const name of [a, j, b]) {
      const mounts = await mountsOf(name);
      expect(mounts, name).not.toMatch(/ nsfs |\/run\/netns\//);
      expect(mounts, name).toMatch(/ \/etc\/hosts /);
    }
    expect(lab.ping(b, a)).toBe(true);
    expect(lab.ok("exec", j, "hostname").trim()).toBe(a);
  });
});

describe("IPv6 on an IPv4 network", () => {
  it("eth0 has no IPv6 address and sends no IPv6 packets (Docker 20.10 does the same); lo keeps ::1", async () => {
    const lab = newLab();
    const [net, other] = [uniq("v6"), uniq("v6o")];
    const [a, b] = [uniq("6a"), uniq("6b")];
    lab.ok("net", "create", "--subnet", "10.247.10.0/24", net);
    lab.ok("net", "create", "--subnet", "10.247.11.0/24", other);
    lab.ok("run", "-d", "--net", net, "--name", a);
    lab.ok("run", "-d", "--net", other, "--name", b);
    lab.ok("net", "connect", net, b);
    // a link-local address would be made at once and its DAD, MLD and router solicitations sent within
    // about a second: wait past that, then read what each interface sent
    await new Promise((r) => setTimeout(r, 1500));
    for (const [c, dev] of [[a, "eth0"], [b, "eth0"], [b, "eth1"]]) {
      expect(lab.inNs(c, "ip", "-6", "-o", "addr", "show", "dev", dev).stdout, `${c} ${dev}`).toBe("");
      const sent = lab.inNs(c, "cat", `/proc/net/dev_snmp6/${dev}`).stdout;
      expect(sent, `${c} ${dev}`).toMatch(/^Ip6OutRequests\s+0$/m);
      expect(sent, `${c} ${dev}`).toMatch(/^Icmp6OutMsgs\s+0$/m);
      expect(lab.inNs(c, "ip", "-6", "-o", "addr", "show", "dev", "lo").stdout, c).toContain("::1/128");
    }
    expect(lab.ping(b, a)).toBe(true);
  });

  it("the gateway's MAC is the bridge's own (02:42 + gateway address) and stays as containers come and go", () => {
    const lab = newLab();
    const net = uniq("mac");
    const cs = [uniq("m1"), uniq("m2"), uniq("m3")];
    lab.ok("net", "create", "--subnet", "10.247.12.0/24", net);
    const bridge = JSON.parse(lab.ok("net", "inspect", net))[0].Options["com.docker.network.bridge.name"];
    const mac = () => fs.readFileSync(`/sys/class/net/${bridge}/address`, "utf8").trim();
    expect(mac()).toBe("02:42:0a:f7:0c:01");
    for (const [i, c] of cs.entries()) {
      lab.ok("run", "-d", "--net", net, "--name", c);
      // a bridge without a MAC of its own takes its ports' lowest: give this port one below 02:42:…
      const port = lab.state().containers[c].endpoints[0].hostIf;
      expect(sh(["ip", "link", "set", port, "address", `00:00:00:00:00:0${i + 1}`]).code).toBe(0);
      expect(mac(), c).toBe("02:42:0a:f7:0c:01");
    }
    lab.ok("rm", "-f", cs[0]);
    expect(mac()).toBe("02:42:0a:f7:0c:01");
    expect(lab.ping(cs[1], "10.247.12.1")).toBe(true);
  });
});

describe("plans", () => {
  it("--dry-run prints a script and changes nothing, even without a state dir", () => {
    const lab = newLab();
    const snap = hostSnapshot();
    const net = uniq("dry");
    const out = lab.ok("net", "create", "--dry-run", net);
    expect(out).toMatch(/^#!\/bin\/sh/);
    expect(out).toMatch(new RegExp(`ip link add ctbr-${net} address 02:42:(\\w\\w:){3}01 type bridge`));
    const run = lab.ok("run", "--dry-run", "-d", "--name", uniq("d"));
    expect(run).toContain("ip netns add");
    expect(hostSnapshot()).toEqual(snap);
    expect(sh(["ls", lab.stateDir]).stdout.trim()).toBe("");
  });

  it("a failing step rolls back the steps before it and leaves state as it was", () => {
    const lab = newLab();
    const net = uniq("rb");
    lab.ok("net", "create", net);
    const c = uniq("c");
    const snap = hostSnapshot();
    const stateBefore = lab.state();
    // a plain file where the hosts directory must go makes a late step fail, after the namespace,
    // veth and addresses were made: all of those must be undone
    fs.mkdirSync("/etc/netns", { recursive: true });
    fs.writeFileSync(`/etc/netns/${c}`, "in the way\n");
    try {
      const r = lab.run("run", "-d", "--net", net, "--name", c);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("rolled back");
    } finally {
      fs.rmSync(`/etc/netns/${c}`);
    }
    expect(lab.state()).toEqual(stateBefore);
    expect(hostSnapshot()).toEqual(snap);
  });
});
