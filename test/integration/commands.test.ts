// The container and network commands beyond the red/blue story, on the real kernel: run -it with a
// terminal (the seed types `ping ubuntu3` inside `docker run -it`), --rm, logs, stop, ps and net ls
// output for scripts, net prune, --ip-range/--gateway/--internal, aliases, --ip, -e, --hostname, cleanup.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { CTNET, Lab, hostSnapshot, jsonLines, settled, sh, uniq, useLabs } from "./harness.js";
import { IsolatedHost } from "./isolated.js";

const newLab = useLabs();

/** An unusual /24 of its own for each network, so parallel test runs do not collide. */
let nextSubnet = 0;
const base = 150 + Math.floor(Math.random() * 40) * 2;
const subnet = () => `10.${base + (nextSubnet >> 8)}.${nextSubnet++ & 255}.0/24`;
const prefixOf = (cidr: string) => cidr.split(".").slice(0, 3).join(".");

/** Runs ctnet inside a pseudo-terminal (util-linux `script`), typing `keys` into it. */
function inTerminal(lab: Lab, args: string[], keys: string): { code: number; output: string } {
  const command = [CTNET, ...args].map((w) => `'${w}'`).join(" ");
  const r = sh(["sh", "-c", `(${keys}) | script -qec "$0" /dev/null`, command], undefined, { ...process.env, CTNET_STATE_DIR: lab.stateDir, NO_COLOR: "1" });
  return { code: r.code, output: r.stdout + r.stderr };
}

const procState = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0];
  } catch {
    return "gone";
  }
};

/** Every path under /etc/netns, files in subdirectories (shared hosts files) included. */
function etcNetnsPaths(): string[] {
  try {
    return (fs.readdirSync("/etc/netns", { recursive: true }) as string[]).map((p) => `/etc/netns/${p}`);
  } catch {
    return [];
  }
}

/** Everything the host holds whose name mentions one of `names`. */
function leftoversOf(names: string[]): string[] {
  const snap = hostSnapshot();
  return [...snap.links.split(" "), ...snap.netns.split(" "), ...etcNetnsPaths(), ...snap.iptables.split("\n")].filter((item) => names.some((n) => item.includes(n)));
}

describe("run -it: the seed's interactive shell", () => {
  it("gives a shell on a terminal that resolves peers by name, sees -e, survives Ctrl-C and passes the exit code", () => {
    const lab = newLab();
    const net = uniq("it");
    const [peer, me] = [uniq("u3"), uniq("u4")];
    lab.ok("net", "create", "--subnet", subnet(), net);
    lab.ok("run", "-d", "--net", net, "--name", peer);
    const keys = [
      `printf '%s\\n' 'tty; [ -t 0 ] && echo STDIN-IS-A-TTY; echo "FOO=$FOO"; hostname; ping ${peer}'`,
      "sleep 2",
      "printf '\\003'",
      "sleep 0.5",
      "printf '%s\\n' 'echo still-here; exit 5'",
    ].join("; ");
    const r = inTerminal(lab, ["run", "-it", "--net", net, "--name", me, "-e", "FOO=bar baz"], keys);
    expect(r.output).toMatch(/\/dev\/pts\/\d+/);
    expect(r.output).toContain("STDIN-IS-A-TTY");
    expect(r.output).toContain("FOO=bar baz");
    expect(r.output).toMatch(new RegExp(`^${me}\\r?$`, "m"));
    // the name resolves (the DNS server answers names; ping prints the address it got back)
    expect(r.output).toMatch(new RegExp(`PING ${peer} \\(`));
    expect(r.output).toMatch(/64 bytes from /);
    expect(r.output).toContain("still-here");
    expect(r.code).toBe(5);
    // without --rm the container stays, exited; as in Docker, an exited container's address is released
    const [row] = jsonLines(lab.ok("ps", "-a", "--format", "json")).filter((c: any) => c.Names === me);
    expect(row.State).toBe("exited");
    expect(lab.state().containers[me].endpoints).toEqual([]);
    expect(lab.state().containers[me].released.map((r: any) => r.network)).toEqual([net]);
  });

  it("--rm removes the container, its namespace, veth and name files when the shell exits", () => {
    const lab = newLab();
    const net = uniq("rm");
    const me = uniq("c");
    lab.ok("net", "create", "--subnet", subnet(), net);
    const r = inTerminal(lab, ["run", "-it", "--rm", "--net", net, "--name", me], "printf '%s\\n' 'ip -br link show eth0; exit 0'");
    expect(r.code).toBe(0);
    expect(r.output).toMatch(/eth0@if\d+\s+UP/);
    expect(lab.state().containers[me]).toBeUndefined();
    expect(settled(() => leftoversOf([me]), [])).toEqual([]);
    expect(fs.existsSync(`/etc/netns/${me}`)).toBe(false);
  });

  it("a foreground run without a terminal passes output and exit code; -itd stays up idle", () => {
    const lab = newLab();
    const net = uniq("fg");
    lab.ok("net", "create", "--subnet", subnet(), net);
    const fg = uniq("f");
    const r = lab.run("run", "--net", net, "--name", fg, "--", "sh", "-c", "echo out; echo err >&2; exit 4");
    expect(r.code).toBe(4);
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toBe("err\n");
    const bg = uniq("b");
    lab.ok("run", "-itd", "--net", net, "--name", bg);
    // a shell with /dev/null as its terminal would have exited at once
    expect(sh(["sleep", "0.5"]).code).toBe(0);
    expect(lab.ok("ps", "-q").trim().split("\n")).toEqual([lab.state().containers[bg].id.slice(0, 12)]);
  });
});

describe("run -d --rm (seed 002: docker run --rm -dit --network none …)", () => {
  /** pids of --rm watchers for this lab's state dir */
  const watchers = (lab: Lab) =>
    fs.readdirSync("/proc").filter((pid) => {
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        return argv.includes("autoremove") && argv.includes(lab.stateDir);
      } catch {
        return false;
      }
    });
  const waitFor = (what: () => boolean) => {
    for (let i = 0; i < 100 && !what(); i++) sh(["sleep", "0.1"]);
    return what();
  };

  it("removes the container when its process ends, by itself or by stop", () => {
    const lab = newLab();
    const [short, idle] = [uniq("s"), uniq("i")];
    lab.ok("run", "--rm", "-dit", "--network", "none", "--name", idle);
    expect(lab.ok("exec", idle, "ip", "-o", "link").trim().split("\n")).toHaveLength(1);
    lab.ok("run", "-d", "--rm", "--net", "none", "--name", short, "--", "sleep", "3");
    expect(watchers(lab)).toHaveLength(2);
    expect(waitFor(() => !lab.state().containers[short])).toBe(true);
    expect(lab.state().containers[idle]).toBeDefined();
    lab.ok("stop", idle);
    expect(waitFor(() => !lab.state().containers[idle])).toBe(true);
    expect(leftoversOf([short, idle])).toEqual([]);
    expect(waitFor(() => watchers(lab).length === 0)).toBe(true);
  });

  it("the watcher goes away when the container is removed first", () => {
    const lab = newLab();
    const c = uniq("w");
    lab.ok("run", "-d", "--rm", "--net", "none", "--name", c);
    expect(watchers(lab)).toHaveLength(1);
    lab.ok("rm", "-f", c);
    expect(waitFor(() => watchers(lab).length === 0)).toBe(true);
    // a new container of the same name is not the one the watcher was for
    lab.ok("run", "-d", "--net", "none", "--name", c);
    sh(["sleep", "0.5"]);
    expect(lab.state().containers[c]).toBeDefined();
  });

  it("a watcher whose container was removed before it first looked ends at once", () => {
    // the race above made deterministic: an rm within one poll of the run left the watcher waiting
    // two minutes for a container that never came
    const lab = newLab();
    const c = uniq("g");
    lab.ok("run", "-d", "--net", "none", "--name", c);
    const id = lab.state().containers[c].id;
    lab.ok("rm", "-f", c);
    const r = spawnSync(CTNET, ["autoremove", id], { env: { ...process.env, CTNET_STATE_DIR: lab.stateDir }, timeout: 15_000 });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
  });
});

describe("container lifecycle", () => {
  it("logs prints what a detached process wrote, stdout and stderr", () => {
    const lab = newLab();
    const c = uniq("l");
    lab.ok("run", "-d", "--net", "none", "--name", c, "--", "sh", "-c", "echo hello; echo oops >&2; sleep 600");
    let logs = "";
    for (let i = 0; i < 50 && !logs.includes("oops"); i++) {
      sh(["sleep", "0.1"]);
      logs = lab.ok("logs", c);
    }
    expect(logs).toBe("hello\noops\n");
  });

  it("stop ends the process and releases its address; ps -a shows it exited, ps does not; rm then removes it", () => {
    const lab = newLab();
    const net = uniq("st");
    const [a, b] = [uniq("a"), uniq("b")];
    lab.ok("net", "create", "--subnet", subnet(), net);
    lab.ok("run", "-d", "--net", net, "--name", a);
    lab.ok("run", "-d", "--net", net, "--name", b);
    const pid = lab.state().containers[a].pid;
    expect(lab.ok("stop", a).trim()).toBe(a);
    // gone, or an exited zombie its new parent has not reaped yet
    expect(procState(pid)).toMatch(/^(gone|Z)$/);
    expect(lab.ok("ps", "--format", "json")).not.toContain(`"Names":"${a}"`);
    const all = jsonLines(lab.ok("ps", "-a", "--format", "json"));
    expect(all.find((r: any) => r.Names === a)).toMatchObject({ State: "exited" });
    expect(all.find((r: any) => r.Names === a).Status).toMatch(/^Exited \(\d+\) /);
    expect(lab.ok("ps", "-a")).toMatch(new RegExp(`Exited \\(\\d+\\) .*\\s${a}$`, "m"));
    expect(JSON.parse(lab.ok("inspect", a))[0].State).toMatchObject({ Running: false, Pid: 0 });
    // as in Docker, a stopped container leaves its networks: its name and address are gone
    expect(lab.ping(b, a)).toBe(false);
    expect(lab.run("exec", a, "true").code).toBe(2);
    lab.ok("rm", a);
    expect(leftoversOf([a])).toEqual([]);
    expect(lab.ok("ps", "-aq").trim()).toBe(lab.state().containers[b].id.slice(0, 12));
  });

  it("ps -q and --format json give ids and objects scripts can use", () => {
    const lab = newLab();
    const [a, b] = [uniq("p"), uniq("q")];
    lab.ok("run", "-d", "--net", "none", "--name", a);
    lab.ok("run", "-d", "--net", "none", "--name", b, "--", "sleep", "300");
    const ids = lab.ok("ps", "-q").trim().split("\n").sort();
    const state = lab.state();
    expect(ids).toEqual([state.containers[a].id.slice(0, 12), state.containers[b].id.slice(0, 12)].sort());
    const rows = jsonLines(lab.ok("ps", "--format", "json"));
    expect(rows.find((r: any) => r.Names === b)).toMatchObject({ ID: state.containers[b].id.slice(0, 12), Command: "sleep 300", State: "running", Networks: "none" });
    // an id prefix works wherever a name does
    expect(JSON.parse(lab.ok("inspect", ids[0]))[0].Id.startsWith(ids[0])).toBe(true);
    expect(lab.run("ps", "--format", "yaml").code).toBe(2);
  });

  it("-e reaches the process and exec; --hostname sets hostname, /etc/hostname and /etc/hosts", () => {
    const lab = newLab();
    const net = uniq("en");
    const c = uniq("e");
    lab.ok("net", "create", "--subnet", subnet(), net);
    lab.ok("run", "-d", "--net", net, "--name", c, "--hostname", "web01", "-e", "GREETING=hello world", "-e", "EMPTY=", "--", "sh", "-c", 'echo "[$GREETING][$EMPTY]"; sleep 600');
    for (let i = 0; i < 50 && !lab.ok("logs", c).includes("]"); i++) sh(["sleep", "0.1"]);
    expect(lab.ok("logs", c)).toBe("[hello world][]\n");
    expect(lab.ok("exec", "-e", "X=1", c, "sh", "-c", "echo $X")).toBe("1\n");
    expect(lab.ok("exec", c, "hostname").trim()).toBe("web01");
    expect(lab.inNs(c, "cat", "/etc/hostname").stdout).toBe("web01\n");
    expect(lab.inNs(c, "getent", "hosts", "web01").stdout).toMatch(/^10\.\d+\.\d+\.2\s+web01 /);
    expect(JSON.parse(lab.ok("inspect", c))[0].Config).toMatchObject({ Hostname: "web01", Env: ["GREETING=hello world", "EMPTY="] });
  });
});

describe("network options", () => {
  it("--gateway and --ip-range: the bridge holds the gateway, containers get addresses from the range", () => {
    const lab = newLab();
    const net = uniq("gw");
    const cidr = subnet();
    const p = prefixOf(cidr);
    lab.ok("net", "create", "--subnet", cidr, "--gateway", `${p}.254`, "--ip-range", `${p}.128/28`, net);
    const [a, b] = [uniq("a"), uniq("b")];
    lab.ok("run", "-d", "--net", net, "--name", a);
    lab.ok("run", "-d", "--net", net, "--name", b);
    const [doc] = JSON.parse(lab.ok("net", "inspect", net));
    expect(doc.IPAM.Config).toEqual([{ Subnet: cidr, Gateway: `${p}.254`, IPRange: `${p}.128/28` }]);
    expect(sh(["ip", "-4", "-o", "addr", "show", "dev", `ctbr-${net}`]).stdout).toContain(`inet ${p}.254/24`);
    expect(JSON.parse(lab.ok("inspect", b))[0].NetworkSettings.Networks[net]).toMatchObject({ IPAddress: `${p}.129`, Gateway: `${p}.254` });
    expect(lab.inNs(a, "ip", "route", "show", "default").stdout).toContain(`default via ${p}.254 dev eth0`);
    expect(lab.ping(a, `${p}.254`)).toBe(true);
    expect(lab.ping(a, b)).toBe(true);
    // a released address is reused first
    lab.ok("rm", "-f", a);
    const c = uniq("c");
    lab.ok("run", "-d", "--net", net, "--name", c);
    expect(JSON.parse(lab.ok("inspect", c))[0].NetworkSettings.Networks[net].IPAddress).toBe(`${p}.128`);
  });

  it("--internal: containers reach each other but nothing outside their subnet, even with a route", () => {
    const lab = newLab();
    const [inner, outer] = [uniq("in"), uniq("ou")];
    const [innerCidr, outerCidr] = [subnet(), subnet()];
    lab.ok("net", "create", "--internal", "--subnet", innerCidr, inner);
    lab.ok("net", "create", "--subnet", outerCidr, outer);
    const [a, b, o] = [uniq("a"), uniq("b"), uniq("o")];
    lab.ok("run", "-d", "--net", inner, "--name", a);
    lab.ok("run", "-d", "--net", inner, "--name", b);
    lab.ok("run", "-d", "--net", outer, "--name", o);
    expect(JSON.parse(lab.ok("net", "inspect", inner))[0].Internal).toBe(true);
    expect(lab.ping(a, b)).toBe(true);
    expect(lab.inNs(a, "ip", "route", "show", "default").stdout).toBe("");
    // give it a way out by hand: the internal network's rules still drop it
    expect(lab.inNs(a, "ip", "route", "add", "default", "via", `${prefixOf(innerCidr)}.1`).code).toBe(0);
    const oIp = `${prefixOf(outerCidr)}.2`;
    expect(lab.ping(a, oIp)).toBe(false);
    expect(sh(["iptables", "-S", "CTNET-ISOLATION"]).stdout).toContain(`-A CTNET-ISOLATION ! -d ${innerCidr} -i ctbr-${inner} -j DROP`);
  });

  it("net ls -q and --format json list the predefined networks and ours", () => {
    const lab = newLab();
    const net = uniq("ls");
    const id = lab.ok("net", "create", "--subnet", subnet(), net).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ids = lab.ok("net", "ls", "-q").trim().split("\n");
    expect(ids).toHaveLength(4);
    expect(ids).toContain(id.slice(0, 12));
    const rows = jsonLines(lab.ok("net", "ls", "--format", "json"));
    expect(rows.map((r: any) => r.Name).sort()).toEqual(["bridge", "host", "none", net].sort());
    expect(rows.find((r: any) => r.Name === net)).toMatchObject({ ID: id, Driver: "bridge", Scope: "local", Internal: false });
    expect(rows.find((r: any) => r.Name === "none")).toMatchObject({ Driver: "null" });
  });

  it("net prune removes only networks without containers", () => {
    const lab = newLab();
    const [used, idle1, idle2] = [uniq("pu"), uniq("pi"), uniq("pj")];
    for (const n of [used, idle1, idle2]) lab.ok("net", "create", "--subnet", subnet(), n);
    lab.ok("run", "-d", "--net", used, "--name", uniq("c"));
    expect(lab.ok("net", "prune").trim().split("\n").sort()).toEqual([idle1, idle2].sort());
    expect(Object.keys(lab.state().networks)).toEqual([used]);
    expect(leftoversOf([idle1, idle2])).toEqual([]);
    expect(lab.ok("net", "prune", "--dry-run")).toContain("# nothing to do");
  });
});

describe("names and addresses", () => {
  it("--network-alias and net connect --alias resolve for peers, and stop with disconnect", () => {
    const lab = newLab();
    const [front, back] = [uniq("fr"), uniq("bk")];
    lab.ok("net", "create", "--subnet", subnet(), front);
    lab.ok("net", "create", "--subnet", subnet(), back);
    const [web, client, db] = [uniq("w"), uniq("c"), uniq("d")];
    lab.ok("run", "-d", "--net", front, "--name", web, "--network-alias", "www", "--network-alias", "site");
    lab.ok("run", "-d", "--net", front, "--name", client);
    lab.ok("run", "-d", "--net", back, "--name", db);
    expect(lab.ping(client, "www")).toBe(true);
    expect(lab.ping(client, "site")).toBe(true);
    expect(lab.inNs(client, "getent", "hosts", "database").code).not.toBe(0);
    lab.ok("net", "connect", "--alias", "database", front, db);
    expect(lab.ping(client, "database")).toBe(true);
    expect(lab.ping(client, db)).toBe(true);
    expect(JSON.parse(lab.ok("inspect", db))[0].NetworkSettings.Networks[front].Aliases).toContain("database");
    lab.ok("net", "disconnect", front, db);
    expect(lab.inNs(client, "getent", "hosts", "database").code).not.toBe(0);
    // an alias belongs to its network: db's peers on back never learnt it
    expect(lab.inNs(db, "getent", "hosts", "www").code).not.toBe(0);
  });

  it("running processes see names follow run, connect, disconnect and rm, their own container's included", () => {
    const lab = newLab();
    const [red, blue] = [uniq("nr"), uniq("nb")];
    lab.ok("net", "create", "--subnet", subnet(), red);
    lab.ok("net", "create", "--subnet", subnet(), blue);
    const [watcher, peer, late] = [uniq("w"), uniq("p"), uniq("l")];
    lab.ok("run", "-d", "--net", blue, "--name", peer);
    // one long-lived process, started before any of the changes, reports what it can resolve
    const script = `while :; do for n in ${peer} ${late}; do getent hosts $n >/dev/null && echo "$n yes" || echo "$n no"; done; echo ---; sleep 0.2; done`;
    lab.ok("run", "-d", "--net", red, "--name", watcher, "--", "sh", "-c", script);
    // the last complete report (the one after the last "---" may be half written)
    const seen = () => lab.ok("logs", watcher).split("---\n").at(-2) ?? "";
    const eventually = (want: string) => {
      for (let i = 0; i < 50 && seen() !== want; i++) sh(["sleep", "0.2"]);
      return seen();
    };
    expect(eventually(`${peer} no\n${late} no\n`)).toBe(`${peer} no\n${late} no\n`);
    lab.ok("net", "connect", blue, watcher);
    expect(eventually(`${peer} yes\n${late} no\n`)).toBe(`${peer} yes\n${late} no\n`);
    lab.ok("run", "-d", "--net", blue, "--name", late);
    expect(eventually(`${peer} yes\n${late} yes\n`)).toBe(`${peer} yes\n${late} yes\n`);
    lab.ok("rm", "-f", late);
    expect(eventually(`${peer} yes\n${late} no\n`)).toBe(`${peer} yes\n${late} no\n`);
    lab.ok("net", "disconnect", blue, watcher);
    expect(eventually(`${peer} no\n${late} no\n`)).toBe(`${peer} no\n${late} no\n`);
  });

  it("--ip picks the address; net connect --ip too", () => {
    const lab = newLab();
    const [n1, n2] = [uniq("i1"), uniq("i2")];
    const [c1, c2] = [subnet(), subnet()];
    lab.ok("net", "create", "--subnet", c1, n1);
    lab.ok("net", "create", "--subnet", c2, n2);
    const [a, b] = [uniq("a"), uniq("b")];
    lab.ok("run", "-d", "--net", n1, "--ip", `${prefixOf(c1)}.77`, "--name", a);
    lab.ok("run", "-d", "--net", n1, "--name", b);
    expect(lab.inNs(a, "ip", "-4", "-o", "addr", "show", "eth0").stdout).toContain(`inet ${prefixOf(c1)}.77/24`);
    expect(lab.ping(b, `${prefixOf(c1)}.77`)).toBe(true);
    // automatic allocation goes around the fixed address
    expect(JSON.parse(lab.ok("inspect", b))[0].NetworkSettings.Networks[n1].IPAddress).toBe(`${prefixOf(c1)}.2`);
    lab.ok("net", "connect", "--ip", `${prefixOf(c2)}.99`, n2, a);
    expect(lab.inNs(a, "ip", "-4", "-o", "addr", "show", "eth1").stdout).toContain(`inet ${prefixOf(c2)}.99/24`);
    const taken = lab.run("run", "-d", "--net", n1, "--ip", `${prefixOf(c1)}.77`, "--name", uniq("x"));
    expect(taken.code).toBe(2);
    expect(taken.stderr).toContain("already in use");
  });
});

describe("cleanup", () => {
  it("after the last container and network go, nothing of them is left on the host", () => {
    const lab = newLab();
    const [n1, n2] = [uniq("k1"), uniq("k2")];
    const cidrs = [subnet(), subnet()];
    lab.ok("net", "create", "--subnet", cidrs[0], n1);
    lab.ok("net", "create", "--subnet", cidrs[1], "--internal", n2);
    const cs = [uniq("a"), uniq("b"), uniq("c"), uniq("d")];
    lab.ok("run", "-d", "--net", n1, "--name", cs[0]);
    lab.ok("run", "-d", "--net", n2, "--name", cs[1], "--network-alias", "x");
    lab.ok("run", "-d", "--net", "none", "--name", cs[2]);
    lab.ok("run", "-d", "--net", `container:${cs[0]}`, "--name", cs[3]);
    lab.ok("net", "connect", n2, cs[0]);
    const mine = [n1, n2, ...cs, ...cidrs.map((c) => `${prefixOf(c)}.`)];
    expect(leftoversOf(mine).length).toBeGreaterThan(10);
    lab.ok("rm", "-f", cs[3], cs[0], cs[1], cs[2]);
    lab.ok("net", "rm", n1, n2);
    expect(leftoversOf(mine)).toEqual([]);
    expect(lab.state()).toEqual({ version: 1, networks: {}, containers: {}, sysctls: {}, generation: expect.any(Number), madeDirs: ["logs"] });
    expect(sh(["ip", "-o", "link", "show"]).stdout).not.toMatch(new RegExp(`ctnet:(veth|bridge):(${cs.join("|")}|${n1}|${n2})\\b`));
  });
});

describe("cleanup of a whole host", () => {
  it("the last container and network take the default bridge, every chain and rule, and ip_forward with them", async () => {
    // a private host: here "nothing of ctnet" can be checked whole, chains included, whatever else runs
    const host = await IsolatedHost.start();
    try {
      const before = host.kernel();
      expect(before.iptables).not.toContain("CTNET");
      host.ok("net", "create", "red");
      host.ok("net", "create", "--internal", "blue");
      host.ok("run", "-d", "--name", "web");
      host.ok("run", "-d", "--net", "red", "--name", "u1", "--network-alias", "one");
      host.ok("run", "-d", "--net", "blue", "--name", "u2");
      host.ok("run", "-d", "--net", "none", "--name", "lonely");
      host.ok("run", "-d", "--net", "host", "--name", "hosty");
      host.ok("run", "-d", "--net", "container:u1", "--name", "side");
      host.ok("net", "connect", "blue", "u1");
      host.ok("net", "connect", "bridge", "u2");
      const during = host.kernel();
      expect(during.links).toMatch(/^ctnet0 bridge/m);
      expect(during.iptables).toContain("-A FORWARD -j CTNET-FORWARD");
      expect(during.sysctl.split("\n")[0]).toBe("1");
      host.ok("rm", "-f", "side", "web", "u1");
      // the default bridge stays while u2 is connected to it, and goes with its last endpoint
      expect(host.kernel().links).toMatch(/^ctnet0 bridge/m);
      host.ok("net", "disconnect", "bridge", "u2");
      expect(host.kernel().links).not.toMatch(/^ctnet0/m);
      host.ok("rm", "-f", "u2", "lonely", "hosty");
      host.ok("net", "rm", "red", "blue");
      expect(host.kernel()).toEqual(before);
      expect(host.state()).toEqual({ version: 1, networks: {}, containers: {}, sysctls: {}, generation: expect.any(Number), madeDirs: ["logs"] });
    } finally {
      await host.stop();
    }
  });
});

describe("dry-run scripts", () => {
  it("of every mutating command parse as sh and change nothing", () => {
    const lab = newLab();
    const [n1, n2] = [uniq("d1"), uniq("d2")];
    lab.ok("net", "create", "--subnet", subnet(), n1);
    lab.ok("net", "create", "--subnet", subnet(), n2);
    const [a, b] = [uniq("a"), uniq("b")];
    lab.ok("run", "-d", "--net", n1, "--name", a);
    lab.ok("run", "-d", "--net", n1, "--name", b, "--network-alias", "web.1");
    const mine = [n1, n2, a, b];
    const hostBefore = leftoversOf(mine);
    const stateBefore = fs.readFileSync(`${lab.stateDir}/state.json`, "utf8");
    const commands = [
      ["net", "create", "--dry-run", "--subnet", subnet(), "--label", "who=me & you", uniq("d3")],
      ["run", "--dry-run", "-d", "--net", n1, "--name", uniq("c"), "-e", "A=it's $HOME", "--", "sh", "-c", "echo 'a'\necho b; sleep 1"],
      ["run", "--dry-run", "-it", "--net", n2, "--name", uniq("c")],
      ["run", "--dry-run", "-d", "--net", "none", "--name", uniq("c")],
      ["run", "--dry-run", "-d", "--net", "host", "--name", uniq("c")],
      ["run", "--dry-run", "-d", "--net", `container:${a}`, "--name", uniq("c")],
      ["net", "connect", "--dry-run", "--alias", "db", n2, a],
      ["net", "disconnect", "--dry-run", n1, b],
      ["stop", "--dry-run", a],
      ["rm", "--dry-run", "-f", a, b],
      ["net", "rm", "--dry-run", n2],
      ["net", "prune", "--dry-run"],
    ];
    for (const args of commands) {
      const out = lab.ok(...args);
      expect(out, args.join(" ")).toMatch(/^#!\/bin\/sh\n# ctnet plan: /);
      const parsed = sh(["sh", "-n"], out);
      expect(parsed.code, `${args.join(" ")}:\n${parsed.stderr}\n${out}`).toBe(0);
    }
    expect(fs.readFileSync(`${lab.stateDir}/state.json`, "utf8")).toBe(stateBefore);
    expect(leftoversOf(mine)).toEqual(hostBefore);
  });
});
