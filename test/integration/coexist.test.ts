// Living with Docker (issue 3, point 5). Docker's real rule sets (docker-20.10 iptables-save, with
// DOCKER-USER, the isolation stages, netavark's chains, docker0's MASQUERADE) are loaded into a private
// host whose FORWARD policy is DROP, as dockerd leaves it, beside a docker0 with a "Docker container"
// that Docker's own rules serve. ctnet's whole story runs there with real traffic, and after every ctnet
// command, and once ctnet is gone, every line of iptables-save that is not ctnet's (both tables, chain
// policies, rules and their order) is exactly what was loaded. Both orders: Docker's rules first (ctnet
// puts its jumps above them) and Docker's rules loaded after ctnet's (a dockerd started later inserts its
// FORWARD and POSTROUTING rules at the top).
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, sh, type Result } from "./harness.js";
import { IsolatedHost } from "./isolated.js";

// what a real Docker 20.10 engine left in iptables (see its README.md)
const REFERENCE = path.join(ROOT, "test/fixtures/docker-20.10");

/** iptables-save as lines, without comments and counters. */
const saved = (text: string) => text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.replace(/ \[\d+:\d+\]$/, ""));
const notCtnet = (lines: string[]) => lines.filter((l) => !l.includes("CTNET"));

/** Docker's rules as a dockerd that turned forwarding on leaves them: the reference with FORWARD's policy DROP. */
const dockerRules = (file: string) => saved(fs.readFileSync(path.join(REFERENCE, file), "utf8")).map((l) => (l.startsWith(":FORWARD ") ? ":FORWARD DROP" : l));

/**
 * The reference for `iptables-restore --noflush` on a host that has ctnet's rules already, as a dockerd
 * starting then programs it: its FORWARD and POSTROUTING rules inserted at the top (in the reference's
 * order), its PREROUTING and OUTPUT jumps appended. Built-in chains are not declared (that would reset
 * their policies).
 */
function dockerStartingLater(file: string): string {
  const at = new Map<string, number>();
  return fs.readFileSync(path.join(REFERENCE, file), "utf8").split("\n")
    .filter((l) => !/^:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) /.test(l))
    .map((l) => {
      const m = /^-A (FORWARD|POSTROUTING) (.*)$/.exec(l);
      if (!m) return l;
      at.set(m[1], (at.get(m[1]) ?? 0) + 1);
      return `-I ${m[1]} ${at.get(m[1])} ${m[2]}`;
    })
    .join("\n");
}

const HOST = "10.219.40.1"; // the host's address towards the outside host
const OUT = "10.219.40.2"; // the outside host
const DOCKER_CTR = "172.17.0.2"; // the reference's DNAT sends host port 8080 there

const answer = (what: string) => `SYSTEM:'echo ${what} $SOCAT_PEERADDR; sleep 0.2'`;
/** ctnet's web container: TCP and UDP on 80, TCP on 81, each answering with its name and the peer. */
const SERVER = [`socat TCP-LISTEN:81,fork,reuseaddr ${answer("tcp81")} &`, `socat UDP-RECVFROM:80,fork ${answer("udp80")} &`, `exec socat TCP-LISTEN:80,fork,reuseaddr ${answer("tcp80")}`].join(" ");

class Scene {
  /** the non-ctnet lines iptables-save must keep showing */
  expected: string[] = [];

  constructor(readonly host: IsolatedHost) {}

  sh(argv: string[], input?: string): Result {
    return this.host.sh(argv, { input });
  }

  must(...argv: string[]): void {
    const r = this.sh(argv);
    expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(0);
  }

  rules(): string[] {
    return saved(this.sh(["iptables-save"]).stdout);
  }

  /** Runs ctnet, then checks that everybody else's rules are exactly as they were. */
  ctnet(...args: string[]): string {
    const out = this.host.ok(...args);
    expect(notCtnet(this.rules()), `others' rules after ctnet ${args.join(" ")}`).toEqual(this.expected);
    return out;
  }

  in(ns: string | null, argv: string[]): string[] {
    return ns ? ["ip", "netns", "exec", ns, ...argv] : argv;
  }

  /** The server's answer, or "" when none came within `wait` seconds (a second is plenty on one host: closed ports use that). */
  tcp(from: string | null, addr: string, port: number, wait = 3): string {
    const r = this.sh(this.in(from, ["socat", `-t${wait}`, `-T${wait}`, "-", `TCP4:${addr}:${port},connect-timeout=${wait}`]), "");
    return r.code === 0 ? r.stdout.trim() : "";
  }

  udp(from: string | null, addr: string, port: number, wait = 2): string {
    const r = this.sh(this.in(from, ["socat", `-t${wait}`, `-T${wait}`, "-", `UDP4:${addr}:${port}`]), "ping\n");
    return r.code === 0 ? r.stdout.trim() : "";
  }

  waitListening(ns: string, ports: string[]): void {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const out = this.sh(this.in(ns, ["ss", "-Hltun"])).stdout;
      if (ports.every((p) => out.includes(`:${p} `))) return;
      if (Date.now() > deadline) throw new Error(`${ns} is not listening on ${ports.join(", ")}: ${out}`);
      sh(["sleep", "0.1"]);
    }
  }

  /** A namespace plugged into `bridge` or, without one, joined to the host by a /30 veth; default route via the host. */
  namespace(ns: string, hostIf: string, addr: string, gateway: string, prefix: number, bridge?: string): void {
    this.must("ip", "netns", "add", ns);
    this.must("ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns);
    if (bridge) this.must("ip", "link", "set", hostIf, "master", bridge);
    else this.must("ip", "addr", "add", `${gateway}/${prefix}`, "dev", hostIf);
    this.must("ip", "link", "set", hostIf, "up");
    this.must("ip", "-n", ns, "link", "set", "lo", "up");
    this.must("ip", "-n", ns, "addr", "add", `${addr}/${prefix}`, "dev", "eth0");
    this.must("ip", "-n", ns, "link", "set", "eth0", "up");
    this.must("ip", "-n", ns, "route", "add", "default", "via", gateway);
  }

  /** The outside host, echoing who it sees on TCP and UDP port 7000. */
  outside(): void {
    this.namespace("out", "vout", OUT, HOST, 30);
    this.must("ip", "netns", "exec", "out", "sh", "-c", `socat TCP-LISTEN:7000,fork,reuseaddr ${answer("")} >/dev/null 2>&1 & socat UDP-RECVFROM:7000,fork ${answer("")} >/dev/null 2>&1 &`);
    this.waitListening("out", ["7000"]);
  }

  /** What dockerd makes besides rules: docker0 and, on it, a container serving TCP 80. */
  dockerLinks(): void {
    this.must("ip", "link", "add", "docker0", "type", "bridge");
    this.must("ip", "addr", "add", "172.17.0.1/16", "dev", "docker0");
    this.must("ip", "link", "set", "docker0", "up");
    this.namespace("dk", "vdk", DOCKER_CTR, "172.17.0.1", 16, "docker0");
    this.must("ip", "netns", "exec", "dk", "sh", "-c", `socat TCP-LISTEN:80,fork,reuseaddr ${answer("docker")} >/dev/null 2>&1 &`);
    this.waitListening("dk", ["80"]);
  }

  /**
   * dockerd starting on a host where ctnet is at work already. It finds forwarding on and keeps it; the
   * policy is set to DROP anyway, as dockerd does where it turns forwarding on itself: the harder case.
   */
  dockerStarts(file: string): void {
    this.dockerLinks();
    const r = this.sh(["iptables-restore", "--noflush"], dockerStartingLater(file));
    expect(r.code, r.stderr).toBe(0);
    this.must("iptables", "-P", "FORWARD", "DROP");
  }

  forwarding(): string {
    return this.sh(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trim();
  }

  ipOf(container: string, net: string): string {
    return JSON.parse(this.host.ok("inspect", container))[0].NetworkSettings.Networks[net].IPAddress;
  }
}

async function inPrivateHost(story: (s: Scene) => void): Promise<void> {
  const host = await IsolatedHost.start();
  try {
    story(new Scene(host));
  } finally {
    await host.stop();
  }
}

/** Two networks, a published port, siblings: ctnet's half of the story. */
function ctnetUp(s: Scene): void {
  s.ctnet("net", "create", "--subnet", "10.218.41.0/24", "na");
  s.ctnet("net", "create", "--subnet", "10.218.42.0/24", "nb");
  s.ctnet("run", "-d", "--net", "na", "--name", "web", "-p", "9080:80", "-p", "9080:80/udp", "sh", "-c", SERVER);
  s.waitListening("web", ["80", "81"]);
  s.ctnet("run", "-d", "--net", "na", "--name", "sib");
  s.ctnet("run", "-d", "--net", "nb", "--name", "far");
}

/** Everything both tools promise, with real traffic, while both are there. */
function bothWork(s: Scene, dockerPublishes: boolean): void {
  // ctnet's published port: from outside, the host's loopback, another ctnet network, the same one (hairpin)
  expect(s.tcp("out", HOST, 9080)).toBe(`tcp80 ${OUT}`);
  expect(s.udp("out", HOST, 9080)).toBe(`udp80 ${OUT}`);
  expect(s.tcp(null, "127.0.0.1", 9080)).toMatch(/^tcp80 /);
  expect(s.udp(null, "127.0.0.1", 9080)).toMatch(/^udp80 /);
  expect(s.tcp("far", HOST, 9080)).toMatch(/^tcp80 /);
  expect(s.tcp("sib", HOST, 9080)).toBe("tcp80 10.218.41.1");
  // isolation between ctnet networks, and no way in but published ports for a host routing the subnet here
  const webIp = s.ipOf("web", "na");
  expect(s.tcp("far", webIp, 81, 1)).toBe("");
  expect(s.tcp("out", webIp, 81, 1)).toBe("");
  // outbound, translated to the host's address
  expect(s.tcp("sib", OUT, 7000)).toBe(HOST);
  expect(s.udp("far", OUT, 7000)).toBe(HOST);
  // Docker's side: its container reaches the outside through Docker's MASQUERADE, and ctnet's published port
  expect(s.tcp("dk", OUT, 7000)).toBe(HOST);
  expect(s.tcp("dk", HOST, 9080)).toMatch(/^tcp80 /);
  if (dockerPublishes) {
    // the reference's -p 8080:80, served by Docker's DNAT and DOCKER chain, from outside and from ctnet
    expect(s.tcp("out", HOST, 8080)).toBe(`docker ${OUT}`);
    expect(s.tcp("sib", HOST, 8080)).toMatch(/^docker /);
  }
}

/** Publish, unpublish, a dry run and doctor, each checked against others' rules. */
function ctnetChanges(s: Scene, dockerPublishes: boolean): void {
  s.ctnet("port", "publish", "web", "9081:81");
  expect(s.tcp("out", HOST, 9081)).toBe(`tcp81 ${OUT}`);
  s.ctnet("port", "unpublish", "web", "9080:80/udp");
  expect(s.udp("out", HOST, 9080, 1)).toBe("");
  expect(s.tcp("out", HOST, 9080)).toBe(`tcp80 ${OUT}`);
  s.ctnet("rm", "-f", "--dry-run", "web");
  s.ctnet("net", "create", "--subnet", "10.218.43.0/24", "nc");
  s.ctnet("run", "-d", "--net", "nc", "--name", "web2", "-p", "9082:81", "sh", "-c", SERVER);
  s.waitListening("web2", ["81"]);
  expect(s.tcp("out", HOST, 9082)).toBe(`tcp81 ${OUT}`);
  if (dockerPublishes) {
    // Docker's published ports are taken even with no docker-proxy listening ("userland-proxy": false)
    const taken = s.host.ctnet("run", "-d", "--net", "nc", "--name", "web3", "-p", "8080:80");
    expect(taken.code).toBe(2);
    expect(taken.stderr.trim()).toBe(`ctnet: host port 0.0.0.0:8080/tcp in "8080:80" is published by Docker (DNAT to ${DOCKER_CTR}:80 in its nat chain DOCKER)`);
    // and -P passes over 32768, which Docker's own -P took
    expect(s.sh(["sysctl", "-n", "net.ipv4.ip_local_port_range"]).stdout.split(/\s+/)[0]).toBe("32768");
    s.ctnet("run", "-d", "--net", "nc", "--name", "web3", "--expose", "81", "-P", "sh", "-c", SERVER);
    expect(s.host.ok("port", "web3", "81").trim()).toBe("0.0.0.0:32769");
    s.waitListening("web3", ["81"]);
    expect(s.tcp("out", HOST, 32769)).toBe(`tcp81 ${OUT}`);
    expect(s.tcp("out", HOST, 32768, 1), "Docker's DNAT to a container that is not there").toBe("");
  }
  const doctor = s.host.ctnet("doctor");
  expect(doctor.code, `doctor: ${doctor.stdout}${doctor.stderr}`).toBe(0);
}

describe("living with Docker's rules (FORWARD policy DROP)", () => {
  for (const [file, dockerPublishes] of [["iptables-save.txt", true], ["iptables-save-idle.txt", false]] as const) {
    it(`Docker first (${file}): ctnet works beside it and never touches its rules`, async () => {
      await inPrivateHost((s) => {
        s.dockerLinks();
        s.outside();
        s.must("iptables-restore", `${path.join(REFERENCE, file)}`);
        s.must("iptables", "-P", "FORWARD", "DROP");
        s.must("sysctl", "-qw", "net.ipv4.ip_forward=1");
        // what was loaded is the reference, line for line (with dockerd's DROP policy)
        s.expected = notCtnet(s.rules());
        expect(s.expected).toEqual(dockerRules(file));

        ctnetUp(s);
        // ctnet's jump goes above Docker's, which keep their order
        expect(s.rules().find((l) => l.startsWith("-A FORWARD "))).toBe("-A FORWARD -j CTNET-FORWARD");
        bothWork(s, dockerPublishes);
        // ctnet's guard comes first here: Docker's containers reach ctnet's only through published ports
        expect(s.tcp("dk", s.ipOf("web", "na"), 81, 1)).toBe("");
        ctnetChanges(s, dockerPublishes);

        for (const args of [["rm", "-f", "web", "web2", ...(dockerPublishes ? ["web3"] : [])], ["rm", "-f", "sib", "far"], ["net", "rm", "na", "nb", "nc"]]) s.ctnet(...args);
        expect(s.rules(), "nothing of ctnet is left and Docker's rules are as loaded").toEqual(dockerRules(file));
        expect(s.forwarding()).toBe("1");
        expect(s.tcp("dk", OUT, 7000)).toBe(HOST);
        if (dockerPublishes) expect(s.tcp("out", HOST, 8080)).toBe(`docker ${OUT}`);
      });
    }, 240_000);
  }

  it("Docker after ctnet: dockerd's rules go on top, ctnet keeps working and its teardown leaves them (and forwarding) alone", async () => {
    const file = "iptables-save.txt";
    await inPrivateHost((s) => {
      s.outside();
      s.expected = notCtnet(s.rules());
      expect(s.forwarding()).toBe("0");
      ctnetUp(s);
      expect(s.forwarding(), "ctnet turns forwarding on (and records it)").toBe("1");

      s.dockerStarts(file);
      s.expected = notCtnet(s.rules());
      expect(s.expected).toEqual(dockerRules(file));
      const forward = s.rules().filter((l) => l.startsWith("-A FORWARD "));
      expect(forward[0]).toBe("-A FORWARD -j DOCKER-USER");
      expect(forward.indexOf("-A FORWARD -j CTNET-FORWARD")).toBe(forward.length - 1);

      bothWork(s, true);
      // Docker's "-i docker0 ! -o docker0 -j ACCEPT" now comes before ctnet's guard: to Docker, ctnet's
      // bridges are the outside world, and its containers reach ctnet's unpublished ports
      const webIp = s.ipOf("web", "na");
      expect(s.tcp("dk", webIp, 81)).toMatch(/^tcp81 /);
      // Docker's place for the host's own rules, DOCKER-USER, closes that (docs/ports.md); ctnet leaves it be
      s.must("iptables", "-I", "DOCKER-USER", "-o", "ctbr-+", "!", "-i", "ctbr-+", "-m", "conntrack", "--ctstate", "NEW", "-m", "conntrack", "!", "--ctstate", "DNAT", "-j", "DROP");
      s.expected = notCtnet(s.rules());
      expect(s.tcp("dk", webIp, 81, 1)).toBe("");
      expect(s.tcp("dk", HOST, 9080)).toMatch(/^tcp80 /);
      expect(s.tcp("sib", webIp, 81)).toMatch(/^tcp81 /);
      bothWork(s, true);
      ctnetChanges(s, true);

      // the whole of ctnet goes at once
      s.ctnet("reset", "-y");
      expect(s.rules(), "nothing of ctnet is left and everybody else's rules are as they were").toEqual(s.expected);
      expect(s.forwarding(), "Docker still forwards: ctnet leaves ip_forward on").toBe("1");
      expect(s.tcp("dk", OUT, 7000)).toBe(HOST);
      expect(s.tcp("out", HOST, 8080)).toBe(`docker ${OUT}`);
    });
  }, 240_000);

  it("Docker after ctnet, then ctnet's networks removed one by one: forwarding stays on for Docker", async () => {
    await inPrivateHost((s) => {
      s.outside();
      s.expected = notCtnet(s.rules());
      s.ctnet("net", "create", "--subnet", "10.218.44.0/24", "nd");
      expect(s.forwarding()).toBe("1");
      s.dockerStarts("iptables-save-idle.txt");
      s.expected = notCtnet(s.rules());
      s.ctnet("net", "rm", "nd");
      expect(s.rules()).toEqual(dockerRules("iptables-save-idle.txt"));
      expect(s.forwarding()).toBe("1");
      expect(s.tcp("dk", OUT, 7000)).toBe(HOST);
    });
  }, 120_000);
});
