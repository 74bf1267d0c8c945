// Issue 5, points 2-4, 6 and 7: parallel scripts, drift (doctor), reset, the state file, privilege.
// Each runs in a private host (see isolated.ts) so whole-kernel comparisons are exact, and checks the
// kernel itself as well as what ctnet says.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { CTNET, jsonLines, sh } from "./harness.js";
import { IsolatedHost, useIsolatedHosts } from "./isolated.js";
import { decodeState } from "../../src/store/statefile.js";

const newHost = useIsolatedHosts();

const agree = (h: IsolatedHost) => {
  const r = h.ctnet("doctor");
  expect(r.stdout, r.stderr).toContain("no differences");
  expect(r.code).toBe(0);
};

describe("parallel scripts", () => {
  it("50 concurrent run -d on one network all succeed with distinct addresses and names that resolve", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.0.0/24", "par");
    const script = `for i in $(seq 1 50); do ${CTNET} run -d --net par --name p$i >/dev/null 2>>/tmp/par-err-$$ & done; wait; cat /tmp/par-err-$$; rm -f /tmp/par-err-$$`;
    const r = h.sh(["sh", "-c", script], { timeout: 300_000 });
    expect(r.stdout.trim(), "stderr of the 50 runs").toBe("");
    const state = h.state();
    const ips = Object.values(state.containers).map((c: any) => c.endpoints[0].ip);
    expect(ips).toHaveLength(50);
    expect(new Set(ips).size).toBe(50);
    // the kernel agrees: 50 namespaces, each with its own address on eth0
    const nsAddrs = new Set<string>();
    for (let i = 1; i <= 50; i++) {
      const a = h.sh(["ip", "-n", `p${i}`, "-4", "-o", "addr", "show", "dev", "eth0"]).stdout;
      nsAddrs.add(/inet (\S+)\//.exec(a)![1]);
    }
    expect([...nsAddrs].sort()).toEqual([...ips].sort());
    // names resolve both ways round, and traffic flows
    expect(h.inNs("p1", "getent", "hosts", "p50").stdout).toContain(state.containers.p50.endpoints[0].ip);
    expect(h.inNs("p50", "getent", "hosts", "p1").stdout).toContain(state.containers.p1.endpoints[0].ip);
    expect(h.ping("p17", "p33")).toBe(true);
    agree(h);
    h.ok("reset", "-y");
  }, 600_000);

  it("five concurrent net create of one name: exactly one succeeds, four say why", async () => {
    const h = await newHost();
    const script = `for i in 1 2 3 4 5; do (${CTNET} net create same >/dev/null 2>&1; echo "rc=$?") & done; wait`;
    const rcs = h.sh(["sh", "-c", script]).stdout.trim().split("\n").sort();
    expect(rcs).toEqual(["rc=0", "rc=2", "rc=2", "rc=2", "rc=2"]);
    const errs = h.sh(["sh", "-c", `${CTNET} net create same 2>&1`]).stdout.trim().split("\n");
    expect(errs).toEqual(["ctnet: network with name same already exists"]);
    expect(h.sh(["ip", "-o", "link", "show", "type", "bridge"]).stdout.trim().split("\n")).toHaveLength(1);
    agree(h);
    h.ok("net", "rm", "same");
  });

  it("a lock held by a killed process does not block the next command", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.1.0/24", "lk");
    // a ctnet paused mid-plan holds the lock; SIGKILL it there
    const child = h.spawnCtnet(["run", "-d", "--net", "lk", "--name", "lk1"], { CTNET_TEST_PAUSE_AFTER_STEP: "3" });
    const pid = await new Promise<string>((resolve) => {
      let err = "";
      child.stderr!.on("data", (d) => {
        err += d;
        const m = /\(pid (\d+)\)/.exec(err);
        if (m) resolve(m[1]);
      });
    });
    h.sh(["kill", "-KILL", pid]);
    await new Promise((r) => child.on("close", r));
    const started = Date.now();
    h.ok("run", "-d", "--net", "lk", "--name", "lk2");
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(Object.keys(h.state().containers)).toEqual(["lk2"]);
    expect(h.sh(["ip", "netns", "list"]).stdout).not.toContain("lk1");
    agree(h);
  });
});

describe("doctor", () => {
  it("lists each drift, exits 1, and --fix repairs it (dry-runnable); after a simulated reboot --fix then re-creating works", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.2.0/24", "dn");
    h.ok("run", "-d", "--net", "dn", "--name", "d1");
    h.ok("run", "-d", "--net", "dn", "--name", "d2");
    agree(h);
    // drift: a deleted veth, a missing rule, a duplicate and a stale DNAT rule, an orphan bridge,
    // an orphan namespace with ctnet's hosts mark, the DNS server's file of dn garbled (a container's own
    // /etc/hosts edited by hand is the container's business, as in Docker: kept), forwarding turned off
    h.sh(["ip", "link", "del", "ve-d1.dn"]);
    h.sh(["iptables", "-t", "nat", "-D", "CTNET-POSTROUTING", "-s", "10.253.2.0/24", "!", "-o", "ctbr-dn", "-j", "MASQUERADE"]);
    h.sh(["iptables", "-t", "filter", "-A", "CTNET-ISOLATION-2", "-o", "ctbr-dn", "-j", "DROP"]);
    h.sh(["iptables", "-t", "nat", "-A", "CTNET-DNAT", "-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.253.2.99:80"]);
    h.sh(["sh", "-c", "ip link add ctbr-old type bridge && ip link set ctbr-old alias ctnet:bridge:old"]);
    h.sh(["sh", "-c", "ip netns add ghost && mkdir -p /etc/netns/ghost && echo '# ctnet: /etc/hosts of container ghost' > /etc/netns/ghost/hosts"]);
    h.sh(["sh", "-c", "echo '10.9.9.9 intruder' >> /etc/netns/d2/hosts"]);
    h.sh(["sh", "-c", `echo garbage > ${h.stateDir}/dns/dn`]);
    h.sh(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    const report = h.ctnet("doctor");
    expect(report.code).toBe(1);
    for (const expected of [
      /container d1 on dn: veth ve-d1\.dn is missing/,
      /rule missing: -t nat -A CTNET-POSTROUTING -s 10\.253\.2\.0\/24 ! -o ctbr-dn -j MASQUERADE/,
      /duplicate rule \(2 copies\) -t filter -A CTNET-ISOLATION-2 -o ctbr-dn -j DROP/,
      /stale rule -t nat -A CTNET-DNAT .*--dport 8080 -j DNAT --to-destination 10\.253\.2\.99:80/,
      /orphan bridge ctbr-old/,
      /orphan namespace ghost/,
      /\/dns\/dn differs from ctnet.s state/,
      /sysctl net\.ipv4\.ip_forward is 0, but ctnet set it to 1/,
    ]) expect(report.stdout).toMatch(expected);
    expect(report.stdout).toMatch(/^sysctl net\.ipv4\.ip_forward = 1 \(set by ctnet; was 0/m);

    const kernelBefore = h.kernel();
    const dry = h.ctnet("doctor", "--fix", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^#!\/bin\/sh/);
    expect(dry.stdout).toContain("ip link del ctbr-old");
    expect(dry.stdout).toContain("iptables -w -t nat -D CTNET-DNAT -p tcp -m tcp --dport 8080");
    expect(h.kernel()).toEqual(kernelBefore);

    const fix = h.ctnet("doctor", "--fix");
    expect(fix.code, fix.stdout + fix.stderr).toBe(0);
    agree(h);
    const nat = h.sh(["iptables-save", "-t", "nat"]).stdout;
    expect(nat).not.toContain("10.253.2.99");
    expect(nat).toContain("-A CTNET-POSTROUTING -s 10.253.2.0/24 ! -o ctbr-dn -j MASQUERADE");
    expect(h.sh(["iptables-save", "-t", "filter"]).stdout.match(/-A CTNET-ISOLATION-2 -o ctbr-dn -j DROP/g)).toHaveLength(1);
    expect(h.sh(["ip", "link", "show", "ctbr-old"]).code).not.toBe(0);
    expect(h.sh(["ip", "netns", "list"]).stdout).not.toContain("ghost");
    expect(fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8")).toBeDefined();
    expect(h.sh(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe("1");
    expect(h.inNs("d2", "cat", "/etc/hosts").stdout).toContain("intruder");
    expect(h.inNs("d1", "getent", "hosts", "d2").stdout).toContain("10.253.2.");
    expect(h.ping("d1", "d2")).toBe(true);

    // a reboot: every process, namespace, bridge and rule is gone; the state file remains
    const stateBefore = h.state();
    for (const c of ["d1", "d2"]) h.sh(["kill", "-KILL", String(stateBefore.containers[c].pid)]);
    h.sh(["sh", "-c", "ip -all netns del; ip link del ctbr-dn; iptables -F; iptables -X; iptables -t nat -F; iptables -t nat -X; sysctl -qw net.ipv4.ip_forward=0"]);
    const lost = h.ctnet("doctor");
    expect(lost.code).toBe(1);
    expect(lost.stdout).toMatch(/container d1: namespace d1 is gone/);
    expect(lost.stdout).toMatch(/network dn: bridge ctbr-dn is missing/);
    expect(lost.stdout).toMatch(/chain CTNET-FORWARD \(filter\) is missing/);
    expect(h.ctnet("doctor", "--fix").code).toBe(0);
    agree(h);
    expect(Object.keys(h.state().containers)).toEqual([]);
    expect(Object.keys(h.state().networks)).toEqual(["dn"]);
    h.ok("run", "-d", "--net", "dn", "--name", "d1");
    h.ok("run", "-d", "--net", "dn", "--name", "d2");
    expect(h.ping("d1", "d2")).toBe(true);
    agree(h);
  }, 120_000);

  it("after a simulated reboot, doctor --fix then up -f LAB restores a lab", async () => {
    const h = await newHost();
    const lab = path.join(h.stateDir, "..", `ctnet-reboot-lab-${process.pid}.yaml`);
    fs.writeFileSync(lab, "name: rb\nnetworks:\n  rbnet:\n    subnet: 10.253.3.0/24\ncontainers:\n  r1:\n    networks: [rbnet]\n  r2:\n    networks: [rbnet]\n");
    try {
      h.ok("up", "-f", lab);
      for (const c of Object.values(h.state().containers) as any[]) h.sh(["kill", "-KILL", String(c.pid)]);
      h.sh(["sh", "-c", "ip -all netns del; ip link del ctbr-rbnet; iptables -F; iptables -X; iptables -t nat -F; iptables -t nat -X"]);
      expect(h.ctnet("doctor").code).toBe(1);
      expect(h.ctnet("doctor", "--fix").code).toBe(0);
      h.ok("up", "-f", lab);
      expect(h.ping("r1", "r2")).toBe(true);
      agree(h);
      h.ok("down", "-f", lab);
    } finally {
      fs.rmSync(lab, { force: true });
    }
  }, 120_000);
});

describe("reset", () => {
  it("removes everything ctnet made and its state, and nothing someone else made", async () => {
    const h = await newHost();
    const pristine = h.kernel();
    // someone else's bridge, namespace and chain (with a jump), and a look-alike without ctnet's marks
    h.sh(["sh", "-c", [
      "ip link add br-theirs type bridge", "ip netns add theirs", "mkdir -p /etc/netns/theirs", "echo '127.0.0.1 theirs' > /etc/netns/theirs/hosts",
      "iptables -N THEIRS", "iptables -A THEIRS -j ACCEPT", "iptables -A FORWARD -j THEIRS", "ip link add ctbr-lookalike type bridge",
    ].join(" && ")]);
    const theirs = h.kernel();
    h.ok("net", "create", "--subnet", "10.253.4.0/24", "rs");
    h.ok("run", "-d", "--net", "rs", "--name", "r1");
    h.ok("run", "-d", "--name", "r2");
    h.ok("run", "-d", "--net", "none", "--name", "r3");
    const pids = Object.values(h.state().containers).map((c: any) => c.pid);
    // without a terminal and without -y it refuses, changing nothing
    const refused = h.ctnet("reset");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("-y");
    expect(h.state().containers.r1).toBeDefined();
    const dry = h.ok("reset", "--dry-run");
    expect(dry).toContain("ip netns del r1");
    expect(dry).not.toContain("theirs");
    expect(dry).not.toContain("lookalike");
    h.ok("reset", "-y");
    // the test made the state dir, so ctnet leaves it, emptied of its own files
    expect(fs.readdirSync(h.stateDir)).toEqual([]);
    // forwarding stays on: someone else's FORWARD rules and bridge still need it (see firewall.othersForwarding)
    expect({ ...h.kernel(), sysctl: "" }).toEqual({ ...theirs, sysctl: "" });
    expect(h.sh(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe("1");
    for (const pid of pids) expect(h.sh(["test", "-e", `/proc/${pid}`]).code, `process ${pid}`).not.toBe(0);
    // and ctnet works again from scratch
    h.ok("net", "create", "--subnet", "10.253.4.0/24", "rs");
    h.ok("net", "rm", "rs");
    h.sh(["sh", "-c", "iptables -D FORWARD -j THEIRS && iptables -F THEIRS && iptables -X THEIRS && ip link del br-theirs && ip link del ctbr-lookalike && ip netns del theirs && rm -r /etc/netns/theirs && sysctl -qw net.ipv4.ip_forward=0"]);
    expect(h.kernel()).toEqual(pristine);
  }, 120_000);

  it("asks on a terminal: no keeps everything, yes resets", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.5.0/24", "tty");
    // script(1) gives ctnet a terminal; the answer arrives on it
    const no = h.sh(["script", "-qec", `${CTNET} reset`, "/dev/null"], { input: "n\n" });
    expect(no.stdout).toContain("Continue? [y/N]");
    expect(no.stdout).toContain("nothing was changed");
    expect(h.state().networks.tty).toBeDefined();
    expect(h.sh(["ip", "link", "show", "ctbr-tty"]).code).toBe(0);
    const yes = h.sh(["script", "-qec", `${CTNET} reset`, "/dev/null"], { input: "y\n" });
    expect(yes.stdout).toContain("nothing of ctnet is left");
    expect(h.sh(["ip", "link", "show", "ctbr-tty"]).code).not.toBe(0);
    expect(fs.existsSync(path.join(h.stateDir, "state.json"))).toBe(false);
  });
});

describe("the state file", () => {
  it("a broken record fails only the commands that read it; run on its network reads digests and keeps the line", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.9.0/24", "lz");
    h.ok("run", "-d", "--net", "lz", "--name", "l1");
    const file = path.join(h.stateDir, "state.json");
    const lines = fs.readFileSync(file, "utf8").split("\n");
    const at = lines.findIndex((l) => l.startsWith('{"name":"l1"'));
    const broken = lines[at].replace('"command":', '"command"');
    expect(broken).not.toBe(lines[at]);
    fs.writeFileSync(file, [...lines.slice(0, at), broken, ...lines.slice(at + 1)].join("\n"));

    // run picks an address and writes the network's hosts file from l1's digest, without its record
    h.ok("run", "-d", "--net", "lz", "--name", "l2");
    expect(fs.readFileSync(file, "utf8").split("\n")).toContain(broken);
    expect(h.ping("l2", "l1")).toBe(true);
    const ps = h.ctnet("ps");
    expect(ps.code).toBe(1);
    expect(ps.stderr).toMatch(/^ctnet: state file .*state\.json is corrupt \(record of container l1: .*JSON.*\); .*state\.json\.bak/);
    expect(ps.stderr.trim().split("\n")).toHaveLength(1);
    expect(h.ctnet("rm", "-f", "l1").code).toBe(1);

    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(broken, lines[at]));
    expect(jsonLines(h.ok("ps", "--format", "json")).map((r: any) => r.Names).sort()).toEqual(["l1", "l2"]);
    h.ok("rm", "-f", "l1", "l2");
    h.ok("net", "rm", "lz");
    agree(h);
  });

  it("corruption is reported with path and parse error, never reset; the backup is kept and doctor says how to restore", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.6.0/24", "sf1");
    h.ok("net", "create", "--subnet", "10.253.7.0/24", "sf2");
    const file = path.join(h.stateDir, "state.json");
    const bak = `${file}.bak`;
    expect(Object.keys(decodeState(fs.readFileSync(bak, "utf8")).networks)).toEqual(["sf1"]);
    // modes: dir 0700, every file 0600, logs too
    h.ok("run", "-d", "--net", "sf1", "--name", "s1", "--", "sh", "-c", "echo hello; sleep infinity");
    const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);
    expect(mode(h.stateDir)).toBe("700");
    expect(mode(path.join(h.stateDir, "logs"))).toBe("700");
    for (const f of ["state.json", "state.json.bak", "logs/s1.log"]) expect(mode(path.join(h.stateDir, f)), f).toBe("600");
    h.ok("rm", "-f", "s1");

    const good = fs.readFileSync(file, "utf8");
    const truncated = good.slice(0, good.length / 2);
    fs.writeFileSync(file, truncated);
    for (const args of [["net", "ls"], ["ps"], ["net", "create", "--subnet", "10.253.8.0/24", "sf3"], ["run", "-d", "--net", "sf1", "--name", "x"]]) {
      const r = h.ctnet(...args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toMatch(/corrupt \(.*JSON.*\)/);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    // nothing was reset or changed: the broken file is as it was, the backup too, and no bridge appeared
    expect(fs.readFileSync(file, "utf8")).toBe(truncated);
    expect(h.sh(["ip", "link", "show", "ctbr-sf3"]).code).not.toBe(0);
    const doc = h.ctnet("doctor");
    expect(doc.code).toBe(1);
    expect(doc.stdout).toContain(`cp -p ${bak} ${file}`);
    fs.copyFileSync(bak, file);
    expect(h.ctnet("net", "ls").code).toBe(0);
    // the previous version still lists s1 (the last write removed it): doctor sees its namespace is gone
    expect(h.ctnet("doctor").stdout).toMatch(/container s1: namespace s1 is gone/);
    h.ok("doctor", "--fix");
    agree(h);
    h.ok("net", "rm", "sf1", "sf2");
  });
});

describe("privilege", () => {
  const asNobody = (h: IsolatedHost, ...args: string[]) =>
    h.sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", CTNET, ...args], { env: h.env({ CTNET_STATE_DIR: h.stateDir }) });

  it("mutating commands refuse without root, --dry-run works, read-only commands say when they need root; sysctls are recorded", async () => {
    const h = await newHost();
    const kernel0 = h.kernel();
    const lab = `/tmp/ctnet-nobody-lab-${process.pid}.yaml`;
    fs.writeFileSync(lab, "name: nb\nnetworks:\n  nbnet: {}\n", { mode: 0o644 });
    for (const args of [["net", "create", "nope"], ["run", "-d", "--name", "nope"], ["net", "rm", "x"], ["rm", "-f", "x"], ["doctor", "--fix"], ["reset", "-y"], ["up", "-f", lab]]) {
      const r = asNobody(h, ...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(/must run as root/);
    }
    fs.rmSync(lab);
    // a fresh host (no state dir yet): the plan is shown to anyone
    const fresh = `/tmp/ctnet-nobody-fresh-${process.pid}`;
    const dry = h.sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", CTNET, "--state-dir", fresh, "net", "create", "--dry-run", "--subnet", "10.253.9.0/24", "seen"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("ip link add ctbr-seen address 02:42:0a:fd:09:01 type bridge");
    expect(fs.existsSync(fresh)).toBe(false);
    expect(h.kernel()).toEqual(kernel0);

    // ctnet's state is root's: a non-root reader is told so in one line
    h.ok("net", "create", "--subnet", "10.253.9.0/24", "pv");
    const ls = asNobody(h, "net", "ls");
    expect(ls.code).toBe(1);
    expect(ls.stderr.trim()).toMatch(/permission denied .*use sudo/);
    expect(asNobody(h, "doctor").code).toBe(2);
    expect(asNobody(h, "--version").code).toBe(0);

    // the private host started with forwarding off: ctnet turned it on, recorded it, doctor lists it,
    // and the last network's removal puts it back
    expect(h.state().sysctls["net.ipv4.ip_forward"]).toEqual({ key: "net.ipv4.ip_forward", previous: "0", value: "1" });
    expect(h.ok("doctor")).toContain("sysctl net.ipv4.ip_forward = 1 (set by ctnet; was 0");
    h.ok("net", "rm", "pv");
    expect(h.sh(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe("0");
    expect(h.kernel()).toEqual(kernel0);
  });

  it("on the real host too, a non-root user changes nothing", () => {
    const before = sh(["ip", "-o", "link", "show"]).stdout.split("\n").length;
    const r = sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", CTNET, "--state-dir", "/tmp/ctnet-nobody-none", "net", "create", "nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("must run as root");
    expect(fs.existsSync("/tmp/ctnet-nobody-none")).toBe(false);
    expect(sh(["ip", "link", "show", "ctbr-nope"]).code).not.toBe(0);
    expect(before).toBeGreaterThan(1);
  });
});
