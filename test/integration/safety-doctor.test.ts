// Data safety: following ctnet's own advice (restore state.json.bak, then doctor --fix) must never kill
// a running container the user did not name. A running container that carries ctnet's marks but is
// missing from the state is adopted back into it; only `doctor --fix --remove-orphans` removes it.
// doctor also reads a backup of the current format (JSON lines) record by record.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { jsonLines, settled } from "./harness.js";
import { IsolatedHost, useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();

const agree = (h: IsolatedHost) => {
  const r = h.ctnet("doctor");
  expect(r.stdout, r.stderr).toContain("no differences");
  expect(r.code).toBe(0);
};

const files = (h: IsolatedHost) => ({ file: path.join(h.stateDir, "state.json"), bak: path.join(h.stateDir, "state.json.bak") });
/** What doctor advises for a state file it cannot read, done as it says. */
const restoreBackup = (h: IsolatedHost) => {
  const { file, bak } = files(h);
  expect(h.sh(["cp", "-p", bak, file]).code).toBe(0);
};
const alive = (h: IsolatedHost, pid: number) => h.sh(["kill", "-0", String(pid)]).code === 0;
const running = (h: IsolatedHost) => jsonLines(h.ok("ps", "--format", "json")).map((r: any) => r.Names).sort();

describe("restoring the backup, then doctor --fix", () => {
  it("adopts the running container the backup lacks: alive, reachable by name, listed, its published port kept", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.30.0/24", "ad");
    h.ok("run", "-d", "--net", "ad", "--name", "c1");
    h.ok("run", "-d", "--net", "ad", "--name", "c2");
    const before = h.state().containers.c2;
    restoreBackup(h);
    expect(Object.keys(h.state().containers)).toEqual(["c1"]);

    const report = h.ctnet("doctor");
    expect(report.code).toBe(1);
    expect(report.stdout).toMatch(/orphan container c2 \(namespace c2, process \d+ sleep infinity\).*--fix adopts it/);
    // its veth is part of the container, not an orphan link --fix would delete
    expect(report.stdout).not.toMatch(/orphan link ve-c2/);

    const fix = h.ctnet("doctor", "--fix");
    expect(fix.code, fix.stdout + fix.stderr).toBe(0);
    expect(alive(h, before.pid)).toBe(true);
    const c2 = h.state().containers.c2;
    expect(c2).toMatchObject({ name: "c2", hostname: "c2", mode: "bridge", netns: "c2", pid: before.pid, pidStart: before.pidStart, command: ["sleep", "infinity"], ports: [] });
    expect(c2.id).not.toBe(before.id);
    expect(c2.endpoints).toEqual([{ ...before.endpoints[0], id: c2.endpoints[0].id }]);
    expect(h.ping("c2", "c1")).toBe(true);
    expect(h.ping("c2", h.state().containers.c1.endpoints[0].ip)).toBe(true);
    expect(h.ping("c1", "c2")).toBe(true);
    expect(running(h)).toEqual(["c1", "c2"]);
    agree(h);

    // a published port is adopted from its DNAT rules, and still answers
    h.ok("run", "-d", "--net", "ad", "--name", "web", "-p", "8080:80", "--", "socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hello");
    const web = h.state().containers.web;
    restoreBackup(h);
    expect(h.ctnet("doctor").stdout).toMatch(/orphan container web .*--fix adopts it/);
    expect(h.ctnet("doctor", "--fix").code).toBe(0);
    expect(alive(h, web.pid)).toBe(true);
    expect(h.state().containers.web).toMatchObject({ ports: web.ports, command: web.command, endpoints: [{ ip: web.endpoints[0].ip }] });
    expect(h.sh(["sh", "-c", "nc -w2 192.0.2.10 8080 </dev/null"]).stdout).toContain("hello");
    expect(running(h)).toEqual(["c1", "c2", "web"]);
    agree(h);
    h.ok("rm", "-f", "c1", "c2", "web");
    h.ok("net", "rm", "ad");
    agree(h);
  }, 120_000);

  it("--remove-orphans removes the orphan instead; one whose network is not in the state is left alone by plain --fix", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.31.0/24", "keep");
    h.ok("run", "-d", "--net", "keep", "--name", "k1");
    const kernelBefore = h.kernel();
    const { file } = files(h);
    const saved = fs.readFileSync(file);
    h.ok("net", "create", "--subnet", "10.253.32.0/24", "gone");
    h.ok("run", "-d", "--net", "gone", "--name", "x");
    h.ok("run", "-d", "--net", "keep", "--name", "k2");
    const pidX = h.state().containers.x.pid;
    const pidK2 = h.state().containers.k2.pid;
    // an older state: neither x nor its network, nor k2
    fs.writeFileSync(file, saved);

    const report = h.ctnet("doctor");
    expect(report.code).toBe(1);
    expect(report.stdout).toMatch(/orphan container x .*not adopted: network gone is not in ctnet's state/);
    expect(report.stdout).toMatch(/orphan container k2 .*--fix adopts it/);
    // plain --fix: k2 is adopted, x is reported and nothing of it is touched
    const fix = h.ctnet("doctor", "--fix");
    expect(fix.code).toBe(1);
    expect(fix.stdout).toMatch(/orphan container x .*not adopted/);
    expect(alive(h, pidX)).toBe(true);
    expect(alive(h, pidK2)).toBe(true);
    for (const link of ["ve-x.gone", "ctbr-gone"]) expect(h.sh(["ip", "link", "show", link]).code, link).toBe(0);
    expect(h.ping("x", "10.253.32.1")).toBe(true);
    expect(running(h)).toEqual(["k1", "k2"]);

    const bad = h.ctnet("doctor", "--remove-orphans");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^ctnet: .*--remove-orphans.*--fix.*\n$/);
    const dry = h.ctnet("doctor", "--fix", "--remove-orphans", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("ip netns del x");
    expect(alive(h, pidX)).toBe(true);

    // the user asks for it: x goes with its namespace, veth, files, and its network's leftovers
    const rm = h.ctnet("doctor", "--fix", "--remove-orphans");
    expect(rm.code, rm.stdout + rm.stderr).toBe(0);
    expect(alive(h, pidX)).toBe(false);
    expect(alive(h, pidK2)).toBe(true);
    agree(h);
    h.ok("rm", "-f", "k2");
    expect(settled(() => h.kernel(), kernelBefore)).toEqual(kernelBefore);
    expect(alive(h, pidK2)).toBe(false);
  }, 120_000);

  it("a container joined to another's namespace, which the state lacks, is noted and keeps running", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.34.0/24", "jn");
    h.ok("run", "-d", "--net", "jn", "--name", "owner");
    h.ok("run", "-d", "--net", "container:owner", "--name", "joiner", "--", "sleep", "1000");
    const pid = h.state().containers.joiner.pid;
    restoreBackup(h);
    const report = h.ctnet("doctor");
    expect(report.stdout).toMatch(new RegExp(`note: process ${pid} \\(sleep 1000\\) runs detached in owner's namespace .*--net container:owner`));
    expect(report.code).toBe(0);
    expect(h.ctnet("doctor", "--fix").code).toBe(0);
    expect(alive(h, pid)).toBe(true);
    expect(h.inNs("owner", "ping", "-c1", "-W1", "10.253.34.1").code).toBe(0);
  });
});

describe("doctor's advice on a corrupt state file", () => {
  it("reads the backup as JSON lines: a valid one is readable, one with a broken record line is not", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.33.0/24", "cb");
    h.ok("run", "-d", "--net", "cb", "--name", "b1");
    h.ok("run", "-d", "--net", "cb", "--name", "b2");
    const { file, bak } = files(h);
    expect(fs.readFileSync(bak, "utf8").trim().split("\n")).toHaveLength(2);
    const good = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, good.slice(0, good.length / 2));

    const doc = h.ctnet("doctor");
    expect(doc.code).toBe(1);
    expect(doc.stdout).toContain(`the previous good version is ${bak} (it is readable); to restore it: cp -p ${bak} ${file}`);

    const lines = fs.readFileSync(bak, "utf8").split("\n");
    lines[1] = lines[1].replace('"command":', '"command"');
    fs.writeFileSync(bak, lines.join("\n"));
    const broken = h.ctnet("doctor");
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/but it is unreadable too \(record of container b1: .*JSON/);
    expect(broken.stdout).not.toContain("it is readable");
  });
});
