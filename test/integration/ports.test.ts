// Port publishing on the real kernel with real TCP and UDP traffic: from the host (127.0.0.1, localhost,
// its own address), a sibling container (hairpin), the container itself, a container on another network,
// and an "outside host" (a namespace joined to the host by a veth, routing through it). Outbound NAT,
// internal networks, icc=false, publish/unpublish on a running container, conflicts, teardown order, and
// the reachability again with the FORWARD policy set to DROP.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Lab, hostSnapshot, jsonLines, sh, uniq, type Result } from "./harness.js";
import { IsolatedHost } from "./isolated.js";

/** Where a scenario runs: this host (with its own state dir) or a private host (its own netns and iptables). */
interface World {
  sh(argv: string[], input?: string): Result;
  ctnet(...args: string[]): Result;
  /** the state file's text */
  state(): string;
}

const ok = (w: World, ...args: string[]): string => {
  const r = w.ctnet(...args);
  expect(r.code, `ctnet ${args.join(" ")} failed: ${r.stderr}`).toBe(0);
  return r.stdout;
};

const made: string[] = [];
const name = (prefix: string) => {
  const n = uniq(prefix);
  made.push(n);
  return n;
};

/** Ports 18000-18999, a fresh block of ten per test, so reruns and other test files do not meet. */
let nextBlock = 18000 + Math.floor(Math.random() * 60) * 10;
const portBlock = () => (nextBlock += 10) - 10;

const cleanups: Array<() => void> = [];
let rawBefore: Record<string, string>;

beforeAll(() => {
  rawBefore = hostSnapshot();
});
afterEach(() => {
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch {
      /* keep cleaning */
    }
  }
});
/**
 * The part of a host snapshot this file could have touched (its names, subnets and ports) plus the
 * built-in chains' policies: other test files may change the rest of the host at the same time.
 */
function mine(s: Record<string, string>): Record<string, string> {
  const re = new RegExp([...made, "10\\.218\\.", "10\\.219\\.", "--dport 18\\d\\d\\d", "^:(INPUT|FORWARD|OUTPUT) "].join("|"));
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.split(k === "iptables" ? "\n" : " ").filter((l) => re.test(l)).join("\n")]));
}

afterAll(() => {
  expect(mine(hostSnapshot())).toEqual(mine(rawBefore));
});

function realWorld(): World {
  const lab = new Lab();
  cleanups.push(() => lab.cleanup());
  return { sh: (argv, input) => sh(argv, input), ctnet: (...args) => lab.run(...args), state: () => JSON.stringify(lab.state()) };
}

/**
 * Stand-in servers: TCP and UDP on 80 and 81, each answering with its name and the peer's address. The
 * short sleep keeps socat's child alive until the answer is sent (socat may drop it when the child exits).
 */
const answer = (what: string) => `SYSTEM:'echo ${what} $SOCAT_PEERADDR; sleep 0.2'`;
const SERVER = [
  `socat TCP-LISTEN:80,fork,reuseaddr ${answer("tcp80")} &`,
  `socat TCP-LISTEN:81,fork,reuseaddr ${answer("tcp81")} &`,
  `socat UDP-RECVFROM:81,fork ${answer("udp81")} &`,
  `exec socat UDP-RECVFROM:80,fork ${answer("udp80")}`,
].join(" ");

const inNs = (ns: string | null, argv: string[]) => (ns ? ["ip", "netns", "exec", ns, ...argv] : argv);

function waitListening(w: World, ns: string, ports: string[]): void {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const out = w.sh(inNs(ns, ["ss", "-Hltun"])).stdout;
    if (ports.every((p) => out.includes(`:${p} `))) return;
    if (Date.now() > deadline) throw new Error(`servers in ${ns} not listening on ${ports.join(", ")}: ${out}`);
    sh(["sleep", "0.1"]);
  }
}

/** The server's answer over TCP, or "" when nothing answered. */
function tcp(w: World, from: string | null, addr: string, port: number): string {
  const r = w.sh(inNs(from, ["socat", "-t3", "-T3", "-", `TCP4:${addr}:${port},connect-timeout=3`]), "");
  return r.code === 0 ? r.stdout.trim() : "";
}

function udp(w: World, from: string | null, addr: string, port: number): string {
  const r = w.sh(inNs(from, ["socat", "-t2", "-T2", "-", `UDP4:${addr}:${port}`]), "ping\n");
  return r.code === 0 ? r.stdout.trim() : "";
}

interface Outside {
  ns: string;
  addr: string;
  hostAddr: string;
}

/** A host outside: its own namespace, a veth to this host with 10.219.N.0/30, default route via this host. */
function makeOutside(w: World, n: number): Outside {
  const ns = name("po");
  const hostIf = name("vpo");
  const [hostAddr, addr] = [`10.219.${n}.1`, `10.219.${n}.2`];
  cleanups.push(() => {
    const pids = w.sh(["ip", "netns", "pids", ns]).stdout.split(/\s+/).filter(Boolean);
    if (pids.length) w.sh(["kill", "-KILL", ...pids]);
    w.sh(["ip", "link", "del", hostIf]);
    w.sh(["ip", "netns", "del", ns]);
  });
  for (const argv of [
    ["ip", "netns", "add", ns],
    ["ip", "link", "add", hostIf, "type", "veth", "peer", "name", "up0", "netns", ns],
    ["ip", "addr", "add", `${hostAddr}/30`, "dev", hostIf],
    ["ip", "link", "set", hostIf, "up"],
    ["ip", "-n", ns, "link", "set", "lo", "up"],
    ["ip", "-n", ns, "addr", "add", `${addr}/30`, "dev", "up0"],
    ["ip", "-n", ns, "link", "set", "up0", "up"],
    ["ip", "-n", ns, "route", "add", "default", "via", hostAddr],
  ]) {
    const r = w.sh(argv);
    expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(0);
  }
  return { ns, addr, hostAddr };
}

const ipOf = (w: World, c: string, net: string): string => JSON.parse(ok(w, "inspect", c))[0].NetworkSettings.Networks[net].IPAddress;

function startServer(w: World, net: string, extra: string[]): string {
  const web = name("web");
  ok(w, "run", "-d", "--net", net, "--name", web, ...extra, "sh", "-c", SERVER);
  waitListening(w, web, ["80", "81"]);
  return web;
}

/** The whole reachability story: every kind of client, TCP and UDP, and the direct route refused. */
function reachability(w: World): void {
  const P = portBlock();
  const [a, b] = [name("pa"), name("pb")];
  ok(w, "net", "create", "--subnet", "10.218.1.0/24", a);
  ok(w, "net", "create", "--subnet", "10.218.2.0/24", b);
  const out = makeOutside(w, 1);
  const web = startServer(w, a, ["-p", `${P}:80`, "-p", `${P}:80/udp`]);
  const sib = name("sib");
  const far = name("far");
  ok(w, "run", "-d", "--net", a, "--name", sib);
  ok(w, "run", "-d", "--net", b, "--name", far);

  for (const addr of ["127.0.0.1", "localhost", out.hostAddr]) {
    expect(tcp(w, null, addr, P), `host -> ${addr}`).toMatch(/^tcp80 /);
    expect(udp(w, null, addr, P), `host -> ${addr}`).toMatch(/^udp80 /);
  }
  for (const from of [sib, web, far, out.ns]) {
    expect(tcp(w, from, out.hostAddr, P), `${from} -> host address`).toMatch(/^tcp80 /);
    expect(udp(w, from, out.hostAddr, P), `${from} -> host address`).toMatch(/^udp80 /);
  }
  // inbound keeps the client's address; the hairpin from the network itself comes via its gateway
  expect(tcp(w, out.ns, out.hostAddr, P)).toBe(`tcp80 ${out.addr}`);
  expect(tcp(w, sib, out.hostAddr, P)).toBe("tcp80 10.218.1.1");

  // an outside host routing the container subnet through this one reaches nothing directly
  expect(w.sh(["ip", "-n", out.ns, "route", "add", "10.218.1.0/24", "via", out.hostAddr]).code).toBe(0);
  const webIp = ipOf(w, web, a);
  expect(tcp(w, null, webIp, 81), "the host reaches the container directly").toMatch(/^tcp81 /);
  expect(tcp(w, out.ns, webIp, 81)).toBe("");
  expect(udp(w, out.ns, webIp, 81)).toBe("");
  expect(tcp(w, out.ns, webIp, 80), "even a published container port, when not via the host's address").toBe("");
  expect(tcp(w, out.ns, out.hostAddr, P)).toMatch(/^tcp80 /);
}

describe("published ports (seed 002: -p 8080:80)", () => {
  it("answer TCP and UDP from the host, its loopback, containers on the same and another network, and an outside host", () => {
    reachability(realWorld());
  });

  it("on 127.0.0.1 answer only on loopback; on a given HOSTIP only there", () => {
    const w = realWorld();
    const P = portBlock();
    const net = name("pl");
    ok(w, "net", "create", "--subnet", "10.218.3.0/24", net);
    const out = makeOutside(w, 3);
    const web = startServer(w, net, ["-p", `127.0.0.1:${P}:80`, "-p", `127.0.0.1:${P}:80/udp`, "-p", `${out.hostAddr}:${P + 1}:80`]);
    expect(tcp(w, null, "127.0.0.1", P)).toMatch(/^tcp80 /);
    expect(udp(w, null, "127.0.0.1", P)).toMatch(/^udp80 /);
    expect(tcp(w, out.ns, out.hostAddr, P)).toBe("");
    expect(udp(w, out.ns, out.hostAddr, P)).toBe("");
    expect(tcp(w, null, out.hostAddr, P)).toBe("");
    expect(tcp(w, out.ns, out.hostAddr, P + 1)).toMatch(/^tcp80 /);
    expect(tcp(w, null, "127.0.0.1", P + 1)).toBe("");
    expect(ok(w, "port", web).trim().split("\n")).toEqual([`80/tcp -> 127.0.0.1:${P}`, `80/tcp -> ${out.hostAddr}:${P + 1}`, `80/udp -> 127.0.0.1:${P}`]);
    // route_localnet was set for the bridge, recorded, and goes with the last loopback port
    const br = JSON.parse(ok(w, "net", "inspect", net))[0].Options["com.docker.network.bridge.name"];
    const localnet = `/proc/sys/net/ipv4/conf/${br}/route_localnet`;
    expect(fs.readFileSync(localnet, "utf8").trim()).toBe("1");
    ok(w, "port", "unpublish", web, "80/udp", `127.0.0.1:${P}:80`);
    expect(fs.readFileSync(localnet, "utf8").trim()).toBe("0");
    expect(tcp(w, out.ns, out.hostAddr, P + 1)).toMatch(/^tcp80 /);
  });

  it("publish and unpublish on a running container", () => {
    const w = realWorld();
    const P = portBlock();
    const net = name("pp");
    ok(w, "net", "create", "--subnet", "10.218.4.0/24", net);
    const out = makeOutside(w, 4);
    const web = startServer(w, net, []);
    expect(tcp(w, out.ns, out.hostAddr, P)).toBe("");
    expect(ok(w, "port", "publish", web, `${P}:80`, `${P}:80/udp`, `${P + 1}-${P + 2}:80-81`).trim().split("\n")).toEqual([
      `80/tcp -> 0.0.0.0:${P}`, `80/tcp -> 0.0.0.0:${P + 1}`, `80/udp -> 0.0.0.0:${P}`, `81/tcp -> 0.0.0.0:${P + 2}`,
    ]);
    expect(tcp(w, out.ns, out.hostAddr, P)).toMatch(/^tcp80 /);
    expect(udp(w, out.ns, out.hostAddr, P)).toMatch(/^udp80 /);
    expect(tcp(w, out.ns, out.hostAddr, P + 2)).toMatch(/^tcp81 /);
    expect(jsonLines(ok(w, "ps", "--format", "json"))[0].Ports).toBe(`0.0.0.0:${P}->80/tcp, 0.0.0.0:${P + 1}-${P + 2}->80-81/tcp, 0.0.0.0:${P}->80/udp`);

    ok(w, "port", "unpublish", web, "80/udp");
    expect(udp(w, out.ns, out.hostAddr, P)).toBe("");
    expect(tcp(w, out.ns, out.hostAddr, P)).toMatch(/^tcp80 /);
    ok(w, "port", "unpublish", web, `${P}:80`);
    expect(tcp(w, out.ns, out.hostAddr, P)).toBe("");
    expect(tcp(w, out.ns, out.hostAddr, P + 1)).toMatch(/^tcp80 /);
    const again = w.ctnet("port", "unpublish", web, `${P}:80`);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`"${P}:80" is not published by container ${web}`);
    ok(w, "port", "unpublish", web, "80-81");
    const webIp = ipOf(w, web, net);
    expect(sh(["iptables-save"]).stdout).not.toContain(webIp);
    expect(ok(w, "port", web)).toBe("");
  });

  it("-P publishes every --expose'd port on a free port of the ephemeral range", () => {
    const w = realWorld();
    const net = name("pe");
    ok(w, "net", "create", "--subnet", "10.218.5.0/24", net);
    const web = startServer(w, net, ["--expose", "80", "--expose", "80/udp", "--expose", "81", "-p", `${portBlock()}:81`, "-P"]);
    const [low, high] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    const hostPort = (spec: string) => Number(ok(w, "port", web, spec).trim().split(":")[1]);
    const [t, u] = [hostPort("80"), hostPort("80/udp")];
    for (const p of [t, u]) {
      expect(p).toBeGreaterThanOrEqual(low);
      expect(p).toBeLessThanOrEqual(high);
    }
    expect(ok(w, "port", web).trim().split("\n")).toHaveLength(3);
    expect(tcp(w, null, "127.0.0.1", t)).toMatch(/^tcp80 /);
    expect(udp(w, null, "127.0.0.1", u)).toMatch(/^udp80 /);
    const [row] = jsonLines(ok(w, "ps", "--format", "json"));
    expect(row.Ports).toContain(`0.0.0.0:${t}->80/tcp`);
    expect(JSON.parse(ok(w, "inspect", web))[0].NetworkSettings.Ports["80/udp"]).toEqual([{ HostIp: "0.0.0.0", HostPort: String(u) }]);
  });
});

describe("refusals change nothing", () => {
  it("refuses taken ports, naming the owner, and bad specs, with exit 2", async () => {
    const w = realWorld();
    const P = portBlock();
    const [net, internal] = [name("pc"), name("pi")];
    ok(w, "net", "create", "--subnet", "10.218.6.0/24", net);
    ok(w, "net", "create", "--internal", "--subnet", "10.218.7.0/24", internal);
    const web = startServer(w, net, ["-p", `${P}:80`]);
    const listener: ChildProcess = spawn("socat", [`TCP-LISTEN:${P + 1},reuseaddr,fork`, "SYSTEM:true"], { stdio: "ignore" });
    cleanups.push(() => listener.kill("SIGKILL"));
    for (let i = 0; i < 50 && !sh(["ss", "-Hltn"]).stdout.includes(`:${P + 1} `); i++) await new Promise((r) => setTimeout(r, 100));

    const x = name("x");
    const run = (...args: string[]) => ["run", "-d", "--net", net, "--name", x, ...args];
    const cases: Array<[string[], string | RegExp]> = [
      [run("-p", `${P}:80`), `host port 0.0.0.0:${P}/tcp in "${P}:80" is already published by container ${web} (0.0.0.0:${P}->80/tcp)`],
      [run("-p", `127.0.0.1:${P}:81`), `is already published by container ${web}`],
      [run("-p", `${P + 1}:80`), new RegExp(`host port 0.0.0.0:${P + 1}/tcp in "${P + 1}:80" is in use on the host: "socat" \\(pid ${listener.pid}\\) is listening on .*:${P + 1}/tcp`)],
      [run("-p", "0:80"), 'invalid port 0 in "0:80": ports are 1-65535'],
      [run("-p", `${P}:65536`), `invalid port 65536 in "${P}:65536": ports are 1-65535`],
      [run("-p", `${P + 3}-${P + 2}:80-81`), `invalid port range ${P + 3}-${P + 2} in "${P + 3}-${P + 2}:80-81": ${P + 3} is above ${P + 2}`],
      [run("-p", `${P + 2}-${P + 4}:80-81`), `differ in number (3 and 2)`],
      [run("-p", `${P + 2}:80/sctp`), `unknown protocol "sctp" in "${P + 2}:80/sctp": ctnet publishes tcp and udp`],
      [run("-p", `10.218.250.1:${P + 2}:80`), `host address 10.218.250.1 in "10.218.250.1:${P + 2}:80" is not an address of this host`],
      [["run", "-d", "--net", internal, "--name", x, "-p", `${P + 2}:80`], `container ${x} is only on internal networks (${internal}): internal networks cannot publish ports`],
      [["port", "publish", web, `${P}:80`], `is already published by container ${web}`],
      [["port", "publish", web, "80/icmp"], 'unknown protocol "icmp"'],
      [["port", "unpublish", web, "81"], `"81" is not published by container ${web} (it publishes 0.0.0.0:${P}->80/tcp)`],
    ];
    for (const [args, message] of cases) {
      const before = { host: mine(hostSnapshot()), state: w.state() };
      const r = w.ctnet(...args);
      expect(r.code, `ctnet ${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      if (typeof message === "string") expect(r.stderr).toContain(message);
      else expect(r.stderr).toMatch(message);
      expect({ host: mine(hostSnapshot()), state: w.state() }).toEqual(before);
    }
    expect(tcp(w, null, "127.0.0.1", P)).toMatch(/^tcp80 /);
  });
});

describe("reaching the outside", () => {
  it("masquerades to the host's address, not with masquerade=false, and not at all from internal networks", () => {
    const w = realWorld();
    const P = portBlock();
    const [m, nm, int] = [name("pm"), name("pn"), name("pi")];
    ok(w, "net", "create", "--subnet", "10.218.8.0/24", m);
    ok(w, "net", "create", "--subnet", "10.218.9.0/24", "-o", "com.docker.network.bridge.enable_ip_masquerade=false", nm);
    ok(w, "net", "create", "--subnet", "10.218.10.0/24", "--internal", int);
    const out = makeOutside(w, 8);
    // the outside host echoes who it sees; it can answer untranslated containers through this host
    expect(w.sh(["ip", "-n", out.ns, "route", "add", "10.218.9.0/24", "via", out.hostAddr]).code).toBe(0);
    const echo = `socat TCP-LISTEN:${P},fork,reuseaddr ${answer("")} >/dev/null 2>&1 & socat UDP-RECVFROM:${P},fork ${answer("")} >/dev/null 2>&1 &`;
    expect(w.sh(["ip", "netns", "exec", out.ns, "sh", "-c", echo]).code).toBe(0);
    waitListening(w, out.ns, [String(P)]);
    const [c1, c2, c3] = [name("cm"), name("cn"), name("ci")];
    ok(w, "run", "-d", "--net", m, "--name", c1);
    ok(w, "run", "-d", "--net", nm, "--name", c2);
    ok(w, "run", "-d", "--net", int, "--name", c3);

    expect(tcp(w, c1, out.addr, P)).toBe(out.hostAddr);
    expect(udp(w, c1, out.addr, P)).toBe(out.hostAddr);
    const c2Ip = ipOf(w, c2, nm);
    expect(tcp(w, c2, out.addr, P)).toBe(c2Ip);
    expect(udp(w, c2, out.addr, P)).toBe(c2Ip);
    expect(tcp(w, c3, out.addr, P)).toBe("");
    expect(udp(w, c3, out.addr, P)).toBe("");
    // not even with a route: the internal network's rules drop it at the host
    expect(w.sh(["ip", "-n", c3, "route", "add", "default", "via", "10.218.10.1"]).code).toBe(0);
    expect(tcp(w, c3, out.addr, P)).toBe("");
    expect(udp(w, c3, out.addr, P)).toBe("");
  });

  it("icc=false drops container-to-container traffic while published ports still answer", () => {
    const w = realWorld();
    const P = portBlock();
    const net = name("pk");
    ok(w, "net", "create", "--subnet", "10.218.11.0/24", "-o", "com.docker.network.bridge.enable_icc=false", net);
    const out = makeOutside(w, 11);
    const web = startServer(w, net, ["-p", `${P}:80`, "-p", `${P}:80/udp`]);
    const sib = name("sib");
    ok(w, "run", "-d", "--net", net, "--name", sib);
    const webIp = ipOf(w, web, net);
    expect(tcp(w, sib, webIp, 80)).toBe("");
    expect(udp(w, sib, webIp, 80)).toBe("");
    expect(tcp(w, sib, webIp, 81)).toBe("");
    expect(tcp(w, sib, out.hostAddr, P)).toMatch(/^tcp80 /);
    expect(udp(w, sib, out.hostAddr, P)).toMatch(/^udp80 /);
    expect(tcp(w, out.ns, out.hostAddr, P)).toMatch(/^tcp80 /);
    expect(tcp(w, null, webIp, 81)).toMatch(/^tcp81 /);
  });
});

describe("teardown", () => {
  it("disconnect moves ports to the next network and rm removes them, rules before links", () => {
    const w = realWorld();
    const P = portBlock();
    const [a, b] = [name("ta"), name("tb")];
    ok(w, "net", "create", "--subnet", "10.218.12.0/24", a);
    ok(w, "net", "create", "--subnet", "10.218.13.0/24", b);
    const out = makeOutside(w, 12);
    const web = startServer(w, a, ["-p", `${P}:80`, "-p", `${P}:80/udp`]);
    ok(w, "net", "connect", b, web);
    const [ipA, ipB] = [ipOf(w, web, a), ipOf(w, web, b)];
    expect(tcp(w, out.ns, out.hostAddr, P)).toBe(`tcp80 ${out.addr}`);

    const steps = (plan: string) => plan.split("\n").filter((l) => l && !l.startsWith("#") && l !== "set -e");
    const firstIndex = (lines: string[], re: RegExp) => lines.findIndex((l) => re.test(l));
    const lastIndex = (lines: string[], re: RegExp) => lines.length - 1 - [...lines].reverse().findIndex((l) => re.test(l));
    const disconnect = steps(ok(w, "net", "disconnect", "--dry-run", a, web));
    const unplug = firstIndex(disconnect, /^ip link del /);
    expect(lastIndex(disconnect, new RegExp(`iptables .* -D .*${ipA.replace(/\./g, "\\.")}`))).toBeLessThan(unplug);
    expect(firstIndex(disconnect, /-D CTNET-DNAT/)).toBeLessThan(firstIndex(disconnect, /-D CTNET-PORTS/));
    expect(firstIndex(disconnect, new RegExp(`-A CTNET-DNAT .*${ipB.replace(/\./g, "\\.")}`))).toBeGreaterThan(unplug);

    ok(w, "net", "disconnect", a, web);
    const rules = sh(["iptables-save"]).stdout;
    expect(rules).not.toContain(`${ipA}:80`);
    expect(rules).toContain(`--to-destination ${ipB}:80`);
    expect(tcp(w, out.ns, out.hostAddr, P)).toBe(`tcp80 ${out.addr}`);
    expect(udp(w, out.ns, out.hostAddr, P)).toBe(`udp80 ${out.addr}`);

    const rm = steps(ok(w, "rm", "-f", "--dry-run", web));
    // the veth goes with its namespace (ip netns del) or on its own (ip link del): after every rule either way
    expect(lastIndex(rm, /^iptables /)).toBeLessThan(firstIndex(rm, /^ip (link|netns) del /));
    expect(rm.filter((l) => /^iptables /.test(l)).every((l) => l.includes(" -D "))).toBe(true);
    ok(w, "rm", "-f", web);
    expect(sh(["iptables-save"]).stdout).not.toMatch(new RegExp(`--dport ${P}\\b|${ipB.replace(/\./g, "\\.")}`));
    // the route_localnet the mappings needed goes with them (ip_forward stays: networks a and b remain)
    expect(Object.keys(JSON.parse(w.state()).sysctls).filter((k) => k.includes("route_localnet"))).toEqual([]);
  });
});

describe("FORWARD policy DROP", () => {
  it("changes nothing: the same reachability on a private host whose FORWARD policy is DROP", async () => {
    // a private network namespace (its own iptables): other test files on this host never see the DROP
    const host = await IsolatedHost.start();
    try {
      const previous = /^-P FORWARD (\w+)$/m.exec(host.sh(["iptables", "-S", "FORWARD"]).stdout)?.[1] ?? "ACCEPT";
      expect(host.sh(["iptables", "-P", "FORWARD", "DROP"]).code).toBe(0);
      try {
        const w: World = {
          sh: (argv, input) => host.sh(argv, { input }),
          ctnet: (...args) => host.ctnet(...args),
          state: () => JSON.stringify(host.state()),
        };
        reachability(w);
      } finally {
        host.sh(["iptables", "-P", "FORWARD", previous]);
      }
    } finally {
      await host.stop();
    }
  });
});
