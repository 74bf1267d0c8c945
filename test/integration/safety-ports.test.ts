// Data-safety issue, items 8 and 12, each in a private host (isolated.ts):
//  8. a port range is refused above the documented limit at once (it used to be planned for minutes with
//     the lock held), and a range at the limit is published, answers and goes away whole;
// 12. a port published on 127.0.0.1 is not reached by a neighbour that routes 127.0.0.1 through this host
//     (the DNAT in nat PREROUTING takes any interface), whatever ran before: other publications, route_localnet.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { IsolatedHost, useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();

const run = (h: IsolatedHost, argv: string[]) => {
  const r = h.sh(argv);
  expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(0);
};

/** The answer of a TCP server, "" when none came. */
const tcp = (h: IsolatedHost, ns: string | null, addr: string, port: number): string => {
  const argv = ["socat", "-t3", "-T3", "-", `TCP4:${addr}:${port},connect-timeout=3`];
  const r = h.sh(ns ? ["ip", "netns", "exec", ns, ...argv] : argv, { input: "" });
  return r.code === 0 ? r.stdout.trim() : "";
};

const udpSend = (h: IsolatedHost, ns: string | null, addr: string, port: number): void => {
  const argv = ["socat", "-u", "-", `UDP4:${addr}:${port}`];
  h.sh(ns ? ["ip", "netns", "exec", ns, ...argv] : argv, { input: "ping\n" });
};

function waitListening(h: IsolatedHost, ns: string, ports: number[]): void {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const out = h.sh(["ip", "netns", "exec", ns, "ss", "-Hltun"]).stdout;
    if (ports.every((p) => out.includes(`:${p} `))) return;
    if (Date.now() > deadline) throw new Error(`${ns} is not listening on ${ports.join(", ")}: ${out}`);
    h.sh(["sleep", "0.1"]);
  }
}

/** iptables-save without ctnet's lines and counters: what is not ctnet's must stay as it was. */
const othersRules = (h: IsolatedHost) =>
  h.sh(["iptables-save"]).stdout.split("\n").filter((l) => !l.startsWith("#") && !l.includes("CTNET")).map((l) => l.replace(/\[\d+:\d+\]/, "")).join("\n");

describe("item 12: ports published on 127.0.0.1 stay on this host", () => {
  it("a neighbour routing 127.0.0.1 via this host reaches no container, after 0.0.0.0 ports and route_localnet too; the host still does", async () => {
    const h = await newHost();
    // someone else's rule, which ctnet must leave as it is
    run(h, ["iptables", "-w", "-A", "FORWARD", "-p", "udp", "--dport", "9", "-j", "ACCEPT"]);
    const others = othersRules(h);

    // the neighbour: lo down, so 127/8 is not its own, a route to it via this host, and route_localnet
    // on its link so answers from 127.0.0.1 would be taken
    run(h, ["ip", "netns", "add", "nb"]);
    run(h, ["ip", "link", "add", "nbhost", "type", "veth", "peer", "name", "eth0", "netns", "nb"]);
    run(h, ["ip", "addr", "add", "198.51.100.1/24", "dev", "nbhost"]);
    run(h, ["ip", "link", "set", "nbhost", "up"]);
    run(h, ["ip", "-n", "nb", "addr", "add", "198.51.100.2/24", "dev", "eth0"]);
    run(h, ["ip", "-n", "nb", "link", "set", "eth0", "up"]);
    run(h, ["ip", "-n", "nb", "route", "add", "127.0.0.0/8", "via", "198.51.100.1"]);
    run(h, ["ip", "netns", "exec", "nb", "sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"]);

    // every UDP datagram web receives is logged with its sender: "never reaches a container" is checked there
    const udpLog = path.join(h.stateDir, "udp-peers.log");
    h.ok("net", "create", "--subnet", "10.77.0.0/24", "safe");
    h.ok("run", "-d", "--net", "safe", "--name", "web", "-p", "127.0.0.1:18080:80", "-p", "127.0.0.1:18080:81/udp", "--",
      "sh", "-c", `socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo hello' & exec socat -u UDP-RECVFROM:81,fork SYSTEM:'echo $SOCAT_PEERADDR >> ${udpLog}'`);
    waitListening(h, "web", [80, 81]);

    const neighbourBlocked = (port: number, why: string, addresses = ["127.0.0.1"]) => {
      for (const a of addresses) expect(tcp(h, "nb", a, port), `neighbour -> ${a}:${port} ${why}`).toBe("");
    };
    const hostReaches = (port: number) => expect(tcp(h, null, "127.0.0.1", port), `host -> 127.0.0.1:${port}`).toBe("hello");

    hostReaches(18080);
    neighbourBlocked(18080, "(127.0.0.1 mapping)", ["127.0.0.1", "127.0.0.2"]);

    // other publications: a 0.0.0.0 port on the same container, and on another network (route_localnet on ctnet0)
    h.ok("port", "publish", "web", "18081:80");
    h.ok("run", "-d", "--name", "web2", "-p", "18082:80", "--", "socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hello");
    waitListening(h, "web2", [80]);
    // the neighbour's path is real: the host's address answers it
    expect(tcp(h, "nb", "198.51.100.1", 18081)).toBe("hello");
    expect(tcp(h, "nb", "198.51.100.1", 18082)).toBe("hello");
    for (const port of [18080, 18081, 18082]) {
      hostReaches(port);
      neighbourBlocked(port, "(after 0.0.0.0 publications)");
    }

    // sysctls other tools (or tests) leave behind: route_localnet everywhere
    for (const key of ["all", "default", "nbhost"]) run(h, ["sysctl", "-qw", `net.ipv4.conf.${key}.route_localnet=1`]);
    for (const port of [18080, 18081, 18082]) {
      hostReaches(port);
      neighbourBlocked(port, "(route_localnet=1 everywhere)");
    }
    udpSend(h, null, "127.0.0.1", 18080);
    udpSend(h, "nb", "127.0.0.1", 18080);
    udpSend(h, "nb", "127.0.0.2", 18080);
    h.sh(["sleep", "1"]);
    const peers = fs.readFileSync(udpLog, "utf8");
    expect(peers, "the host's datagram arrived").toMatch(/10\.77\.0\.1/);
    expect(peers, "the neighbour's datagrams never reached web").not.toContain("198.51.100.2");

    // the guard is one of ctnet's rules: doctor expects it, and --fix puts back a lost one (an older ctnet's host)
    expect(h.ctnet("doctor").stdout).not.toContain("ctorigdst");
    run(h, ["iptables", "-w", "-D", "CTNET-FORWARD", "-m", "conntrack", "--ctorigdst", "127.0.0.0/8", "-j", "DROP"]);
    expect(tcp(h, "nb", "127.0.0.1", 18080), "the hole, without the guard").toBe("hello");
    const doctor = h.ctnet("doctor");
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toContain("rule missing: ");
    expect(doctor.stdout).toContain("--ctorigdst 127.0.0.0/8");
    h.ok("doctor", "--fix");
    neighbourBlocked(18080, "(after doctor --fix)");
    expect(h.sh(["iptables", "-w", "-S", "CTNET-FORWARD", "1"]).stdout.trim()).toBe("-A CTNET-FORWARD -m conntrack --ctorigdst 127.0.0.0/8 -j DROP");

    // and it goes with the rest of ctnet's rules; nobody else's rule was touched
    h.ok("rm", "-f", "web", "web2");
    h.ok("net", "rm", "safe");
    expect(h.sh(["iptables-save"]).stdout).not.toContain("CTNET");
    expect(othersRules(h)).toBe(others);
  }, 300_000);
});

describe("item 8: port ranges", () => {
  const LIMIT_TEXT = 'a container publishes at most 1024 ports (docs/ports.md, "Limits")';

  it("-p 1-65535:1-65535 is refused at once with exit 2 naming the limit, by run, --dry-run and port publish; nothing changes", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.77.1.0/24", "rg");
    h.ok("run", "-d", "--net", "rg", "--name", "idle");
    const [kernel, files] = [h.kernel(), h.stateFiles()];
    const refusal = `ctnet: port range 1-65535 in "1-65535:1-65535" has 65535 ports: ${LIMIT_TEXT}\n`;
    for (const args of [
      ["run", "-d", "--net", "rg", "--name", "big", "-p", "1-65535:1-65535"],
      ["run", "-d", "--dry-run", "--net", "rg", "--name", "big", "-p", "1-65535:1-65535"],
      ["port", "publish", "idle", "1-65535:1-65535"],
    ]) {
      const r = h.ctnet(...args);
      expect({ code: r.code, stderr: r.stderr, stdout: r.stdout }, args.join(" ")).toEqual({ code: 2, stderr: refusal, stdout: "" });
    }
    // -P of a large --expose range counts too
    const r = h.ctnet("run", "-d", "--net", "rg", "--name", "big", "--expose", "1000-1999", "--expose", "3000-3099", "-P");
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `ctnet: container big would publish 1100 ports: ${LIMIT_TEXT}\n` });
    expect(h.kernel()).toEqual(kernel);
    expect(h.stateFiles()).toEqual(files);
  }, 180_000);

  it("a range up to the limit, by run and port publish, answers on its first and last ports and goes away whole", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.77.2.0/24", "rg");
    h.ok("run", "-d", "--net", "rg", "--name", "rng", "-p", "20000-20511:1-512", "--",
      "sh", "-c", "socat TCP-LISTEN:1,fork,reuseaddr SYSTEM:'echo first' & socat TCP-LISTEN:512,fork,reuseaddr SYSTEM:'echo last' & exec socat TCP-LISTEN:1024,fork,reuseaddr SYSTEM:'echo top'");
    waitListening(h, "rng", [1, 512, 1024]);
    h.ok("port", "publish", "rng", "21000-21511:513-1024");
    expect(h.state().containers.rng.ports).toHaveLength(1024);
    expect(tcp(h, null, "127.0.0.1", 20000)).toBe("first");
    expect(tcp(h, null, "192.0.2.10", 20511)).toBe("last");
    expect(tcp(h, null, "192.0.2.10", 21511)).toBe("top");
    const dnat = () => h.sh(["iptables", "-w", "-t", "nat", "-S", "CTNET-DNAT"]).stdout.split("\n").filter((l) => l.startsWith("-A")).length;
    expect(dnat()).toBe(1024);

    // one more port is above the limit: refused, nothing changed
    const r = h.ctnet("port", "publish", "rng", "9999:9999");
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `ctnet: container rng would publish 1025 ports: ${LIMIT_TEXT}\n` });
    expect(dnat()).toBe(1024);
    expect(h.ctnet("doctor").stdout).toContain("no differences");

    // unpublish of a range names any ports; rm takes the rest
    h.ok("port", "unpublish", "rng", "1-512");
    expect(dnat()).toBe(512);
    expect(tcp(h, null, "127.0.0.1", 20000)).toBe("");
    expect(tcp(h, null, "192.0.2.10", 21511)).toBe("top");
    h.ok("rm", "-f", "rng");
    expect(dnat()).toBe(0);
    // the network's DNS guard (--dport 53 in CTNET-INPUT) stays with the network
    expect(h.sh(["iptables-save"]).stdout).not.toMatch(/--dport (?!53 )|CTNET-PORTS -d/);
    expect(h.ctnet("doctor").stdout).toContain("no differences");
  }, 300_000);
});
