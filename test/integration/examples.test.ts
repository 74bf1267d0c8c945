// Every example in examples/ runs as a user would run it, each in its own state dir, and its story's
// outcome is checked: the shell scripts by what they print, the lab files by traffic after `up`.
// Examples use the seeds' fixed names (red, ubuntu1, web1, …), so they run one after another.
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, ROOT, ctnetLeftovers, hostSnapshot, jsonLines, sh, useLabs } from "./harness.js";

const EXAMPLES = path.join(ROOT, "examples");
const newLab = useLabs();

/** Runs an example script the way its header says, with this test's state dir. */
function runScript(lab: Lab, script: string): string {
  // stderr into stdout, so each error stays under the command that printed it
  const r = sh(["sh", "-c", 'exec "$0" 2>&1', path.join(EXAMPLES, script)], undefined, { ...process.env, CTNET_STATE_DIR: lab.stateDir, NO_COLOR: "1" });
  expect(r.code, r.stdout).toBe(0);
  return r.stdout;
}

/** What the script printed after the line "$ COMMAND…" up to the next "$ " line. */
function after(out: string, command: string): string {
  const parts = out.split(/\n\$ /);
  const part = parts.find((p) => p.startsWith(command));
  expect(part, `no "$ ${command}" in the output`).toBeDefined();
  return part!.slice(part!.indexOf("\n") + 1);
}

/** Names the example uses, checked gone from the host after it ran. */
function gone(names: string[]): void {
  const snap = hostSnapshot();
  for (const n of names) {
    expect(snap.netns.split(" ")).not.toContain(n);
    expect(snap.etcNetns.split(" ")).not.toContain(n);
    expect(snap.links).not.toMatch(new RegExp(`(^| )(ctbr-${n}|ve-${n}\\.)`));
  }
}

function ipOf(lab: Lab, container: string): string {
  const doc = JSON.parse(lab.ok("inspect", container))[0];
  return (Object.values(doc.NetworkSettings.Networks)[0] as any).IPAddress;
}

/** Reads what a TCP server on the host's loopback answers (the published-port path), without curl. */
function fetch(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port }, () => sock.write("GET / HTTP/1.0\r\n\r\n"));
    let data = "";
    sock.setTimeout(3000, () => sock.destroy(new Error("timeout")));
    sock.on("data", (d) => (data += d));
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
  });
}

/** The server starts in the background after `up` returns: ask again for a few seconds before giving up. */
async function fetchWhenUp(port: number, expected: string): Promise<string> {
  let last = "";
  for (let i = 0; i < 30; i++) {
    last = await fetch(port).catch((err) => String(err));
    if (last.includes(expected)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

const RED_BLUE = ["ubuntu1", "ubuntu2", "ubuntu3", "ubuntu4", "red", "blue"];

describe("red/blue (seed 001)", () => {
  it("red-blue.sh: names within a network, isolation by address across, connect and disconnect", () => {
    const lab = newLab();
    const out = runScript(lab, "red-blue.sh");
    expect(after(out, "ctnet exec ubuntu4 ping -c 2 ubuntu3")).toContain("2 received");
    expect(after(out, "ctnet exec ubuntu4 ping -c 2 ubuntu2")).toContain("Name or service not known");
    expect(after(out, "ctnet exec ubuntu4 ping -c 2 172.")).toContain("100% packet loss");
    expect(after(out, "ctnet exec ubuntu4 ping -c 2 ubuntu1    # ubuntu1 is on blue now")).toContain("2 received");
    expect(after(out, "ctnet exec ubuntu4 ping -c 2 ubuntu1    # and gone again")).toContain("Name or service not known");
    expect(lab.run("ps", "-aq").stdout).toBe("");
    gone(RED_BLUE);
  });

  it("red-blue.yaml: the same story from one lab file, trace included", () => {
    const lab = newLab();
    const file = path.join(EXAMPLES, "red-blue.yaml");
    lab.ok("up", "-f", file);
    expect(lab.ping("ubuntu4", "ubuntu3")).toBe(true);
    expect(lab.ping("ubuntu1", "ubuntu2")).toBe(true);
    expect(lab.inNs("ubuntu4", "getent", "hosts", "ubuntu2").code).not.toBe(0);
    expect(lab.ping("ubuntu4", ipOf(lab, "ubuntu2"))).toBe(false);
    const t = JSON.parse(lab.ok("trace", "ubuntu4", "ubuntu2", "--format", "json"));
    expect(t.rules.at(-1)).toBe("-A CTNET-ISOLATION-2 -o ctbr-red -j DROP");
    expect(t.agrees).toBe(true);
    expect(lab.ok("down", "-f", file)).toContain("lab red-blue is down");
    gone(RED_BLUE);
  });
});

const MODES = ["bridged", "bridged2", "hosted", "isolated", "sidecar"];

describe("bridge, host, none and container modes (seeds 000, 002, 004)", () => {
  it("modes.sh", () => {
    const lab = newLab();
    const out = runScript(lab, "modes.sh");
    expect(after(out, "ip -br link show master ctnet0")).toMatch(/ve-bridged.*\n.*ve-bridged/);
    expect(after(out, "ctnet exec bridged2 ping -c 1 1")).toContain("1 received");
    expect(after(out, "ctnet exec bridged2 ping -c 1 bridged")).toContain("Name or service not known");
    expect(after(out, "ctnet exec isolated ip -br link").trim().split("\n")).toEqual([expect.stringMatching(/^lo /)]);
    expect(after(out, "ctnet exec sidecar ip -4 -br addr")).toMatch(/eth0\S*\s+UP\s+\d+\.\d+\.\d+\.\d+\/\d+/);
    expect(after(out, "ctnet exec sidecar socat")).toContain("hello from the loopback of bridged");
    expect(after(out, "ctnet exec bridged2 socat")).toContain("Connection refused");
    expect(lab.run("ps", "-aq").stdout).toBe("");
    gone(MODES);
  });

  it("modes.yaml", () => {
    const lab = newLab();
    const file = path.join(EXAMPLES, "modes.yaml");
    lab.ok("up", "-f", file);
    const bridged = ipOf(lab, "bridged");
    const [bridge] = JSON.parse(lab.ok("net", "inspect", "bridge"));
    expect(sh(["ip", "-br", "link", "show", "master", bridge.Options["com.docker.network.bridge.name"]]).stdout).toContain("ve-bridged");
    expect(lab.ping("bridged2", bridged)).toBe(true);
    expect(lab.ping("bridged2", "bridged")).toBe(false);
    // host mode: the very network namespace of the host; the others each have their own
    expect(lab.ok("exec", "hosted", "readlink", "/proc/self/ns/net")).toBe(sh(["readlink", "/proc/self/ns/net"]).stdout);
    expect(lab.ok("exec", "bridged", "readlink", "/proc/self/ns/net")).not.toBe(sh(["readlink", "/proc/self/ns/net"]).stdout);
    expect(lab.inNs("isolated", "ip", "-br", "link").stdout.trim()).toMatch(/^lo\s/);
    expect(lab.ok("exec", "sidecar", "ip", "-4", "-br", "addr")).toBe(lab.ok("exec", "bridged", "ip", "-4", "-br", "addr"));
    expect(lab.ok("exec", "sidecar", "socat", "-u", "TCP:127.0.0.1:7000", "-")).toBe("hello from the loopback of bridged\n");
    lab.ok("down", "-f", file);
    gone(MODES);
    expect(ctnetLeftovers().filter((l) => l.startsWith("ve-bridged"))).toEqual([]);
  });
});

describe("a two-tier app on a user bridge (seed 002)", () => {
  const answer = "wordpress stand-in - database at mysql_app:3306\nmysql stand-in on mysql-app - database wpdb for user wpuser\n";

  it("two-tier.sh", () => {
    const lab = newLab();
    const out = runScript(lab, "two-tier.sh");
    expect(after(out, "ctnet exec wp_app getent hosts mysql_app")).toMatch(/^\d+\.\d+\.\d+\.\d+\s+mysql_app/);
    expect(after(out, "ctnet exec wp_app socat")).toBe(answer);
    gone(["mysql_app", "wp_app", "my_net"]);
  });

  it("two-tier.yaml", async () => {
    const lab = newLab();
    const file = path.join(EXAMPLES, "two-tier.yaml");
    lab.ok("up", "-f", file);
    let got = "";
    for (let i = 0; i < 30 && got !== answer; i++) {
      if (i) await new Promise((r) => setTimeout(r, 100));
      got = lab.run("exec", "wp_app", "socat", "-u", "TCP:127.0.0.1:80", "-").stdout;
    }
    expect(got).toBe(answer);
    // the database is not on the default bridge: only my_net's members know its name
    expect(lab.ok("graph", "--lab", "two-tier")).toMatch(/network my_net: bridge ctbr-my_net[^\n]*\n[\s\S]*mysql_app: eth0/);
    lab.ok("down", "-f", file);
    gone(["mysql_app", "wp_app", "my_net"]);
  });
});

describe("published ports web1 -p 8080:80 and web2 -P (seed 002)", () => {
  it("ports.sh", () => {
    const lab = newLab();
    const out = runScript(lab, "ports.sh");
    expect(after(out, "ctnet port web1")).toBe("80/tcp -> 0.0.0.0:8080\n");
    const web2 = after(out, "ctnet port web2 80").trim();
    expect(web2).toMatch(/^0\.0\.0\.0:\d+$/);
    expect(after(out, "curl -s http://") ).toContain("Welcome to web1!");
    expect(after(out, `curl -s http://localhost:${web2.split(":")[1]}/`)).toContain("Welcome to web2!");
    expect(after(out, "iptables -t nat -nL CTNET-DNAT")).toMatch(/DNAT .*dpt:8080 to:\d+\.\d+\.\d+\.\d+:80/);
    expect(lab.run("ps", "-aq").stdout).toBe("");
    gone(["web1", "web2"]);
  });

  it("ports.yaml", async () => {
    const lab = newLab();
    const file = path.join(EXAMPLES, "ports.yaml");
    lab.ok("up", "-f", file);
    const rows = jsonLines(lab.ok("ps", "--lab", "ports", "--format", "json"));
    const portsOf = (name: string) => rows.find((r: any) => r.Names === name).Ports as string;
    expect(portsOf("web1")).toBe("0.0.0.0:8080->80/tcp");
    const web2 = /^0\.0\.0\.0:(\d+)->80\/tcp$/.exec(portsOf("web2"));
    expect(web2).not.toBeNull();
    const [low, high] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    expect(Number(web2![1])).toBeGreaterThanOrEqual(low);
    expect(Number(web2![1])).toBeLessThanOrEqual(high);
    expect(await fetchWhenUp(8080, "welcome to web1")).toContain("welcome to web1");
    expect(await fetchWhenUp(Number(web2![1]), "welcome to web2")).toContain("welcome to web2");
    expect(lab.ok("graph", "--lab", "ports", "--format", "dot")).toContain("0.0.0.0:8080 → 80/tcp");
    lab.ok("down", "-f", file);
    await expect(fetch(8080)).rejects.toThrow();
    gone(["web1", "web2"]);
  });
});
