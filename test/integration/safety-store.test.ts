// The data-safety issue, the store and the executor: a full disk (1, 14), the lock (3), two state dirs on
// one host (4), kernel objects deleted by hand (6), a state dir that is not ctnet's own (9). Each runs in
// a private host (isolated.ts) and checks the kernel and the files, not only what ctnet says.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CTNET, jsonLines } from "./harness.js";
import { IsolatedHost, useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();
const dirs: string[] = [];
const newDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-safety-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  while (dirs.length) fs.rmSync(dirs.pop()!, { recursive: true, force: true });
});

/** ctnet with another state dir, inside the private host. */
const inDir = (h: IsolatedHost, dir: string, ...args: string[]) => h.sh([CTNET, ...args], { env: h.env({ CTNET_STATE_DIR: dir }) });

/** The private host's ctnet objects: marked links, namespaces, CTNET rules. */
const ctnetObjects = (h: IsolatedHost) => {
  const k = h.kernel();
  return {
    links: k.links.split("\n").filter((l) => l.includes("ctnet:")),
    netns: k.netns,
    iptables: k.iptables.split("\n").filter((l) => l.includes("CTNET")),
  };
};

describe("a full disk", () => {
  it("fails the command that does not fit, with one line, changes nothing, and every later command reads the last good state; reset and doctor work full", async () => {
    const h = await newHost();
    const dir = newDir();
    // a 64 KiB file system for the state dir, inside the private host's mount namespace only
    expect(h.sh(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "ctnet-full", dir]).code).toBe(0);
    const ctnet = (...args: string[]) => inDir(h, dir, ...args);
    const files = () => h.sh(["ls", "-A", dir]).stdout.split("\n").filter(Boolean).sort();
    expect(ctnet("net", "create", "--subnet", "10.254.0.0/16", "full").code).toBe(0);
    const made: string[] = [];
    let failure = null;
    for (let i = 1; i <= 80 && !failure; i++) {
      const r = ctnet("run", "-d", "--net", "full", "--name", `f${i}`, "-e", `PAD=${"x".repeat(300)}`);
      if (r.code === 0) made.push(`f${i}`);
      else failure = { name: `f${i}`, ...r };
    }
    expect(failure, "the disk never filled up").not.toBeNull();
    expect(failure!.code).toBe(1);
    expect(failure!.stderr.trim().split("\n")).toHaveLength(1);
    expect(failure!.stderr).toMatch(/no space left on device/);
    // nothing of the refused container reached the kernel, and no temp file was left
    expect(h.sh(["ip", "netns", "list"]).stdout).not.toMatch(new RegExp(`^${failure!.name}\\b`, "m"));
    expect(files().filter((f) => f.endsWith(".tmp"))).toEqual([]);
    // every container that was reported made is in the state, and the state reads
    const ps = ctnet("ps", "-a", "-q");
    expect(ps.code, ps.stderr).toBe(0);
    const ls = ctnet("ps", "-a", "--format", "json");
    expect(jsonLines(ls.stdout).map((c: any) => c.Names).sort()).toEqual([...made].sort());

    // now fill the disk to the last byte with somebody else's file: doctor and reset still work
    h.sh(["sh", "-c", `dd if=/dev/zero of=${dir}/filler bs=1k 2>/dev/null; true`]);
    const doc = ctnet("doctor");
    expect(doc.stdout + doc.stderr).not.toMatch(/ENOSPC|no space/i);
    expect(doc.stdout).toContain("no differences");
    const reset = ctnet("reset", "-y");
    expect(reset.code, reset.stderr).toBe(0);
    expect(ctnetObjects(h)).toEqual({ links: [], netns: "", iptables: [] });
    // the state dir holds the other file only (ctnet did not make the mount point: it stays)
    expect(files()).toEqual(["filler"]);
    h.sh(["umount", dir]);
  }, 300_000);
});

describe("the lock", () => {
  it("cannot be lost by deleting files: a second command waits while the first holds it", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.254.1.0/24", "lk");
    const first = h.spawnCtnet(["run", "-d", "--net", "lk", "--name", "a1"], { CTNET_TEST_PAUSE_AFTER_STEP: "2" });
    let err1 = "";
    first.stderr!.on("data", (d) => (err1 += d));
    while (!/test pause.*\(pid \d+\)/.test(err1)) await new Promise((r) => setTimeout(r, 20));
    const pid = /\(pid (\d+)\)/.exec(err1)![1];
    // whatever lock files there are, a user deletes them all
    for (const f of fs.readdirSync(h.stateDir)) if (f.startsWith("lock")) fs.rmSync(path.join(h.stateDir, f), { force: true });
    const second = h.spawnCtnet(["run", "-d", "--net", "lk", "--name", "b1"]);
    let secondDone = false;
    const secondExit = new Promise<number>((resolve) => second.on("close", (code) => ((secondDone = true), resolve(code ?? 128))));
    await new Promise((r) => setTimeout(r, 2000));
    expect(secondDone, "the second command ran while the first held the lock").toBe(false);
    // the first is interrupted: it rolls back, and only then the second runs
    h.sh(["kill", "-TERM", pid]);
    await new Promise((r) => first.on("close", r));
    expect(await secondExit).toBe(0);
    expect(Object.keys(h.state().containers)).toEqual(["b1"]);
    expect(h.ping("b1", "10.254.1.1")).toBe(true);
    const doc = h.ctnet("doctor");
    expect(doc.stdout, doc.stderr).toContain("no differences");
    h.ok("reset", "-y");
  }, 120_000);
});

describe("two state dirs on one host", () => {
  it("racing net create and net rm never leave a network without ctnet's chains, nor fail on them", async () => {
    const h = await newHost();
    const one = newDir();
    const two = newDir();
    const both = (a: string, b: string) =>
      h.sh(["sh", "-c", `e1=$(mktemp); e2=$(mktemp); CTNET_STATE_DIR=${one} ${CTNET} ${a} >/dev/null 2>$e1 & CTNET_STATE_DIR=${two} ${CTNET} ${b} >/dev/null 2>$e2 & wait %1; r1=$?; wait %2; r2=$?; echo "$r1 $r2"; cat $e1 $e2; rm -f $e1 $e2`]);
    for (let round = 0; round < 6; round++) {
      // both dirs make their first network at the same time
      let r = both(`net create --subnet 10.254.10.0/24 x${round}`, `net create --subnet 10.254.20.0/24 y${round}`);
      expect(r.stdout, `round ${round}: both create`).toMatch(/^0 0\n$/);
      // one removes its last network while the other makes a second one
      r = both(`net rm x${round}`, `net create --subnet 10.254.30.0/24 z${round}`);
      expect(r.stdout, `round ${round}: rm against create`).toMatch(/^0 0\n$/);
      // the second dir's networks still have every rule they need
      const fwd = h.sh(["iptables", "-S", "FORWARD"]).stdout;
      expect(fwd, `round ${round}`).toContain("-j CTNET-FORWARD");
      expect(h.sh(["iptables", "-S", "CTNET-FORWARD"]).stdout).toContain("-j CTNET-ISOLATION");
      expect(h.sh(["iptables", "-S", "CTNET-ISOLATION-2"]).stdout).toContain(`ctbr-z${round}`);
      r = both(`net ls`, `net rm y${round} z${round}`);
      expect(r.stdout).toMatch(/^0 0\n$/);
      expect(ctnetObjects(h)).toEqual({ links: [], netns: "", iptables: [] });
    }
  }, 300_000);
});

describe("a private host inside this one", () => {
  // /run/ctnet of the private host is a tmpfs of its own (as isolated.ts and examples/overlay.sh make
  // them); on this host it is a plain directory. An rmdir of it here succeeds and detaches the private
  // host's tmpfs, whose next command then lists its dir in this host's /run/ctnet, for good
  it("keeps its own list of state dirs when this host's last state dir is unlisted", async () => {
    const h = await newHost();
    const script = [
      "set -e",
      // this host's /run of its own: /run/ctnet a plain directory in it, gone with the private host h
      "mount -t tmpfs outer-run /run",
      "mkdir -p /run/ctnet /run/netns /run/s-outer /run/s-inner",
      "unshare --mount --propagation private --net sh -c 'mount -t tmpfs inner /run/ctnet && mount -t sysfs sysfs /sys && ip link set lo up && exec sleep 600' &",
      "inner=$!",
      "for i in $(seq 100); do nsenter -t $inner -m findmnt -n --mountpoint /run/ctnet >/dev/null 2>&1 && break; sleep 0.1; done",
      `CTNET_STATE_DIR=/run/s-outer ${CTNET} net create --subnet 10.251.1.0/24 outer1 >/dev/null`,
      `CTNET_STATE_DIR=/run/s-outer ${CTNET} net rm outer1 >/dev/null`,
      `nsenter -t $inner -n -m env CTNET_STATE_DIR=/run/s-inner ${CTNET} net create --subnet 10.251.2.0/24 inner1 >/dev/null`,
      // the topmost mount on /run/ctnet in the private host (h's own, hidden under this /run, is listed too)
      `echo "inner: $(nsenter -t $inner -m awk '$5 == "/run/ctnet" { s = $0 } END { sub(/.* - /, "", s); split(s, f, " "); print f[2] }' /proc/self/mountinfo)"`,
      'echo "outer: $(ls -A /run/ctnet | tr "\\n" " ")"',
      `nsenter -t $inner -n -m env CTNET_STATE_DIR=/run/s-inner ${CTNET} net rm inner1 >/dev/null`,
      "kill $inner",
    ].join("\n");
    const r = h.sh(["sh", "-c", script]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("inner: inner\nouter: \n");
  });
});

describe("objects deleted by hand", () => {
  it("run after its network's bridge was deleted fails naming the right step and leaves nothing; removals of what is gone succeed", async () => {
    const h = await newHost();
    const clean = h.kernel();
    h.ok("net", "create", "--subnet", "10.254.2.0/24", "hb");
    h.sh(["ip", "link", "del", "ctbr-hb"]);
    const r = h.ctnet("run", "-d", "--net", "hb", "--name", "h1");
    expect(r.code).toBe(1);
    // the failing step is the veth's, whose master is gone, not the namespace's
    expect(r.stderr).toMatch(/ip link add ve-h1\.hb .*master ctbr-hb.* failed/);
    expect(r.stderr).toMatch(/rolled back/);
    expect(h.sh(["ip", "netns", "list"]).stdout).not.toMatch(/^h1\b/m);
    expect(fs.existsSync(path.join(h.stateDir, "journal.json"))).toBe(false);
    // removing the network whose bridge is gone is success
    h.ok("net", "rm", "hb");
    expect(h.kernel()).toEqual(clean);

    // a container whose veth was deleted by hand, a port whose rules were flushed, a network whose bridge went
    h.ok("net", "create", "--subnet", "10.254.3.0/24", "hc");
    h.ok("run", "-d", "--net", "hc", "--name", "h2", "-p", "8081:80");
    h.ok("run", "-d", "--net", "hc", "--name", "h3");
    h.sh(["iptables", "-t", "nat", "-F", "CTNET-DNAT"]);
    const un = h.ctnet("port", "unpublish", "h2", "80");
    expect(un.code, un.stderr).toBe(0);
    expect(un.stderr).not.toMatch(/warning/);
    h.sh(["ip", "link", "del", "ve-h3.hc"]);
    const rm = h.ctnet("rm", "-f", "h3");
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stderr).not.toMatch(/warning|failed/);
    h.ok("rm", "-f", "h2");
    h.sh(["ip", "link", "del", "ctbr-hc"]);
    const nr = h.ctnet("net", "rm", "hc");
    expect(nr.code, nr.stderr).toBe(0);
    expect(nr.stderr).not.toMatch(/warning|failed/);
    expect(h.kernel()).toEqual(clean);
  }, 120_000);
});

describe("a state dir that holds other files", () => {
  it("keeps its mode and its other files, through run, rm and reset", async () => {
    const h = await newHost();
    const dir = newDir();
    fs.chmodSync(dir, 0o1777);
    fs.writeFileSync(path.join(dir, "other"), "not ctnet's");
    fs.mkdirSync(path.join(dir, "logs"));
    fs.writeFileSync(path.join(dir, "logs", "x.txt"), "not ctnet's either");
    const ctnet = (...args: string[]) => {
      const r = inDir(h, dir, ...args);
      expect(r.code, `ctnet ${args.join(" ")}: ${r.stderr}`).toBe(0);
    };
    ctnet("net", "create", "--subnet", "10.254.4.0/24", "sd");
    ctnet("run", "-d", "--net", "sd", "--name", "s1");
    expect(fs.statSync(dir).mode & 0o7777).toBe(0o1777);
    ctnet("rm", "-f", "s1");
    ctnet("run", "-d", "--net", "sd", "--name", "s2");
    ctnet("reset", "-y");
    expect(fs.statSync(dir).mode & 0o7777).toBe(0o1777);
    expect(fs.readdirSync(dir).sort()).toEqual(["logs", "other"]);
    expect(fs.readdirSync(path.join(dir, "logs"))).toEqual(["x.txt"]);

    // a dir ctnet made itself is private, and reset takes it away again
    const own = path.join(newDir(), "state");
    expect(inDir(h, own, "net", "create", "--subnet", "10.254.5.0/24", "so").code).toBe(0);
    expect(fs.statSync(own).mode & 0o7777).toBe(0o700);
    expect(inDir(h, own, "reset", "-y").code).toBe(0);
    expect(fs.existsSync(own)).toBe(false);
  }, 120_000);
});

describe("doctor and the default bridge", () => {
  it("agrees with a running container on the default bridge (its containers keep hosts files of their own)", async () => {
    const h = await newHost();
    h.ok("run", "-d", "--name", "db1");
    const doc = h.ctnet("doctor");
    expect(doc.stdout, doc.stderr).toContain("no differences");
    h.ok("rm", "-f", "db1");
  }, 60_000);
});
