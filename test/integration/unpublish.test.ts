// Loose ends of publishing, on a private host (its own conntrack table and iptables): unpublish and rm
// end the UDP flows of the mapping they remove, so a client that keeps sending from one source port is not
// left talking to the old container; -p with --net host is discarded with a warning, as Docker does.
import { describe, expect, it } from "vitest";
import { jsonLines, sh } from "./harness.js";
import { IsolatedHost } from "./isolated.js";

const HOST = "10.219.41.1";
const OUT = "10.219.41.2";
const hasConntrack = sh(["sh", "-c", "command -v conntrack"]).code === 0;

async function inPrivateHost(story: (host: IsolatedHost) => void): Promise<void> {
  const host = await IsolatedHost.start();
  try {
    story(host);
  } finally {
    await host.stop();
  }
}

function must(host: IsolatedHost, ...argv: string[]): string {
  const r = host.sh(argv);
  expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** An outside host joined to this one by a veth, routing through it. */
function outside(host: IsolatedHost): void {
  must(host, "ip", "netns", "add", "out");
  must(host, "ip", "link", "add", "vout", "type", "veth", "peer", "name", "eth0", "netns", "out");
  must(host, "ip", "addr", "add", `${HOST}/30`, "dev", "vout");
  must(host, "ip", "link", "set", "vout", "up");
  must(host, "ip", "-n", "out", "addr", "add", `${OUT}/30`, "dev", "eth0");
  must(host, "ip", "-n", "out", "link", "set", "eth0", "up");
  must(host, "ip", "-n", "out", "route", "add", "default", "via", HOST);
}

/** One datagram from the outside host's UDP port `from` to the host's `port`; the answer, or "". */
function udpFrom(host: IsolatedHost, from: number, port: number): string {
  const r = host.sh(["ip", "netns", "exec", "out", "socat", "-t2", "-T2", "-", `UDP4:${HOST}:${port},sourceport=${from},reuseaddr`], { input: "ping\n" });
  return r.code === 0 ? r.stdout.trim() : "";
}

/** Conntrack entries of UDP flows to host port `port` that were translated to `ip`. */
const flowsTo = (host: IsolatedHost, port: number, ip: string) =>
  host.sh(["conntrack", "-L", "-p", "udp", "--orig-port-dst", String(port), "--reply-src", ip]).stdout.trim();

const udpServer = (name: string) => `exec socat UDP-RECVFROM:80,fork SYSTEM:'echo ${name} $SOCAT_PEERADDR; sleep 0.2'`;

describe("unpublish and rm end the UDP flows of the mappings they remove", () => {
  it.skipIf(!hasConntrack)("a client sending from one source port follows the port to its new container", async () => {
    await inPrivateHost((host) => {
      outside(host);
      host.ok("net", "create", "--subnet", "10.218.45.0/24", "nf");
      host.ok("run", "-d", "--net", "nf", "--name", "a", "-p", "9090:80/udp", "sh", "-c", udpServer("A"));
      host.ok("run", "-d", "--net", "nf", "--name", "b", "sh", "-c", udpServer("B"));
      for (const c of ["a", "b"]) {
        for (let i = 0; i < 100 && !host.inNs(c, "ss", "-Hlun").stdout.includes(":80 "); i++) sh(["sleep", "0.1"]);
      }
      const ipOf = (c: string) => JSON.parse(host.ok("inspect", c))[0].NetworkSettings.Networks.nf.IPAddress;
      const [a, b] = [ipOf("a"), ipOf("b")];

      expect(udpFrom(host, 40001, 9090)).toBe(`A ${OUT}`);
      expect(flowsTo(host, 9090, a)).toContain(`sport=40001`);
      const plan = host.ok("port", "unpublish", "--dry-run", "a", "9090:80/udp");
      expect(plan).toContain(`conntrack -D -p udp --orig-port-dst 9090 --reply-src ${a} --reply-port-src 80 || [ $? -eq 1 ]`);

      host.ok("port", "unpublish", "a", "9090:80/udp");
      expect(flowsTo(host, 9090, a)).toBe("");
      host.ok("port", "publish", "b", "9090:80/udp");
      // without the flush the flow's old entry would still send this datagram to a, which still runs
      expect(udpFrom(host, 40001, 9090)).toBe(`B ${OUT}`);

      // rm: the same for the container that goes; a run with no flow to forget succeeds as well
      expect(flowsTo(host, 9090, b)).toContain("sport=40001");
      host.ok("rm", "-f", "b");
      expect(flowsTo(host, 9090, b)).toBe("");
      host.ok("rm", "-f", "a");
      host.ok("net", "rm", "nf");
      expect(host.sh(["iptables-save"]).stdout).not.toContain("CTNET");
    });
  }, 120_000);
});

describe("-p with --net host", () => {
  it("is discarded with a warning, like Docker: exit 0, no mapping, no rule", async () => {
    await inPrivateHost((host) => {
      const r = host.ctnet("run", "-d", "--net", "host", "--name", "h", "-p", "9091:80", "-p", "9092:80/udp", "-P");
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr.trim()).toBe("ctnet: warning: published ports are discarded when using host network mode (-p 9091:80 -p 9092:80/udp -P): the container listens on the host's ports itself");
      expect(host.ok("port", "h")).toBe("");
      expect(jsonLines(host.ok("ps", "--format", "json"))[0].Ports).toBe("");
      expect(host.sh(["iptables-save"]).stdout).not.toMatch(/9091|9092/);
      // a bad spec is still refused, before anything happens
      const bad = host.ctnet("run", "-d", "--net", "host", "--name", "h2", "-p", "0:80");
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('invalid port 0 in "0:80"');
      expect(Object.keys(host.state().containers)).toEqual(["h"]);
      host.ok("rm", "-f", "h");
    });
  }, 60_000);
});
