#!/usr/bin/env node
// ctnet's benchmark: one run measures ctnet's commands (latency, and how it grows with the number of
// containers and published ports) against the iproute2 floor and every peer installed here (drivers in
// bench/peers, which bench/peers/setup.sh installs), and prints one table with ratios and the targets of
// issues 6 and 13.
//
//   node bench/bench.mjs                  full size (about 10 minutes on 2 cores)
//   node bench/bench.mjs --size tiny      seconds, only to prove the bench works (CI); also CTNET_BENCH_SIZE=tiny
//   options: --peers floor,netavark,cni,docker | --no-peers    which comparisons to run (default: all installed)
//            --scale N    containers in the one-network series (default 1000; 4 when tiny)
//            --host       run ctnet on the host itself instead of a private network namespace
//            --json FILE  also write the figures as JSON
//
// ctnet runs inside a private network, mount and pid namespace (its own /run/netns and /etc/netns), so the
// 1000 containers never show up on the host, other users' snapshots of it stay unchanged, and everything
// dies with the bench even if it is killed. The floor, netavark and CNI drivers run there too; Docker
// needs its daemon and runs on the host. One more lab is then set up and torn down by ctnet on the host
// itself (names of its own, a state dir of its own, removed even when the bench fails or is interrupted):
// `down` there took 5x as long as in the private namespace.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// another build can be measured with CTNET_BENCH_CLI=/path/to/bin/ctnet (e.g. a copy of an older one)
const CTNET = path.resolve(process.env.CTNET_BENCH_CLI || path.join(ROOT, "bin/ctnet"));
// the peer drivers; CTNET_BENCH_PEERS=DIR runs other drivers of the same interface (bench/peers/lib.sh)
const PEER_DIR = path.resolve(process.env.CTNET_BENCH_PEERS || path.join(ROOT, "bench/peers"));

const SIZES = {
  // reps: samples per latency median; lab: containers/networks of the up/down lab; scale: containers on one
  // network; ports: published ports on one container; window: runs/publishes averaged at each end of a series
  full: { reps: 15, netReps: 10, lab: 100, labNets: 4, scale: 1000, ports: 200, window: 10, peerN: 50, dockerN: 20, dnsQueries: 1000 },
  tiny: { reps: 2, netReps: 2, lab: 4, labNets: 2, scale: 4, ports: 3, window: 1, peerN: 2, dockerN: 2, dnsQueries: 20 },
};

// issue 6, and issue 13 for the teardown: rm (was 100 ms), netRm, downPerCtr (on the host, 100 containers)
const TARGETS = {
  run: 150, rm: 50, netRm: 80, upPerCtr: 10, downPerCtr: 5, view: 150, growth: 1.2, memMB: 100, dockerShare: 0.5,
};

// ---- arguments ------------------------------------------------------------------------------------

function parseArgs(argv) {
  const o = { size: process.env.CTNET_BENCH_SIZE || "full", peers: null, host: false, json: null, inside: false, scale: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--size") o.size = value();
    else if (a.startsWith("--size=")) o.size = a.slice(7);
    else if (a === "--peers") o.peers = value().split(",").filter(Boolean);
    else if (a === "--no-peers") o.peers = [];
    else if (a === "--host") o.host = true;
    else if (a === "--scale") o.scale = Number(value());
    else if (a === "--json") o.json = path.resolve(value());
    else if (a === "--inside") o.inside = true;
    else usage(`unknown argument ${a}`);
  }
  if (!SIZES[o.size]) usage(`--size must be ${Object.keys(SIZES).join(" or ")}`);
  if (o.scale !== null && !(Number.isInteger(o.scale) && o.scale >= 2 && o.scale <= 4000)) usage("--scale must be a whole number from 2 to 4000");
  for (const p of o.peers ?? []) if (!PEERS[p]) usage(`unknown peer ${p}: ${Object.keys(PEERS).join(", ")}`);
  return o;
}

function usage(message) {
  process.stderr.write(`bench: ${message}\nusage: node bench/bench.mjs [--size full|tiny] [--peers LIST | --no-peers] [--host] [--json FILE]\n`);
  process.exit(2);
}

// ---- measuring ------------------------------------------------------------------------------------

/** The signal that interrupted the bench (set by its handler, see main; only between asynchronous steps). */
let interrupted = null;
/** Lets the handler of a signal that came during a blocking spawnSync run (the event loop's poll phase). */
const signalsHandled = () => new Promise((resolve) => setTimeout(resolve, 20));

const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;
const median = (xs) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

class Ctnet {
  constructor(stateDir) {
    this.stateDir = stateDir;
    this.env = { ...process.env, CTNET_STATE_DIR: this.stateDir, NO_COLOR: "1" };
    this.peakKB = 0;
    this.peakWhat = "";
  }

  /** Runs ctnet, returns its wall time in ms; throws with its stderr unless it succeeded. */
  time(...args) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [CTNET, ...args], { env: this.env, encoding: "utf8", maxBuffer: 64 << 20 });
    const t = ms(start);
    if (r.status !== 0) throw new Error(`ctnet ${args.join(" ")} failed (${r.status}): ${(r.stderr || r.error?.message || "").trim()}`);
    return t;
  }

  /**
   * Like time, but the bench's signal handlers run meanwhile (they cannot while a spawnSync blocks), and no
   * command starts once the bench is interrupted: for what runs on the host, which nothing else cleans up.
   */
  async timeWhileListening(...args) {
    await signalsHandled();
    if (interrupted) throw new Error(`interrupted (${interrupted})`);
    const start = process.hrtime.bigint();
    const child = spawn(process.execPath, [CTNET, ...args], { env: this.env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const [code, signal] = await new Promise((resolve) => child.on("close", (...end) => resolve(end)));
    const t = ms(start);
    if (code !== 0) throw new Error(`ctnet ${args.join(" ")} failed (${code ?? signal}): ${stderr.trim()}`);
    return t;
  }

  /** Whether this ctnet has a command (labs and ports came after the core): its --help must name it. */
  has(...words) {
    const r = spawnSync(process.execPath, [CTNET, ...words, "--help"], { env: this.env, encoding: "utf8" });
    return r.status === 0 && r.stdout.includes(`Usage: ctnet ${words.join(" ")}`);
  }

  /** Peak resident memory of one ctnet process (GNU time's %M, from the kernel's rusage), in KB. */
  memory(...args) {
    if (!fs.existsSync("/usr/bin/time")) return null;
    const r = spawnSync("/usr/bin/time", ["-f", "ctnet-bench-maxrss %M", process.execPath, CTNET, ...args], { env: this.env, encoding: "utf8", maxBuffer: 64 << 20 });
    const kb = Number(/ctnet-bench-maxrss (\d+)/.exec(r.stderr)?.[1]);
    if (r.status !== 0 || !kb) return null;
    if (kb > this.peakKB) [this.peakKB, this.peakWhat] = [kb, args.slice(0, 2).join(" ")];
    return kb;
  }

  /** The names of the containers and networks in the state file (format 2: the header line; format 1: one object). */
  state() {
    let text;
    try {
      text = fs.readFileSync(path.join(this.stateDir, "state.json"), "utf8");
    } catch {
      return { containers: [], networks: [] };
    }
    let head;
    try {
      head = JSON.parse(text.split("\n")[0]);
    } catch {
      head = JSON.parse(text);
    }
    const containers = Array.isArray(head.containers) ? head.containers.map((d) => d.name) : Object.keys(head.containers ?? {});
    return { containers, networks: Object.keys(head.networks ?? {}) };
  }

  /** Removes whatever the bench left in its state dir, then the dir. */
  cleanup(labFile) {
    const tryRun = (...args) => spawnSync(process.execPath, [CTNET, ...args], { env: this.env, encoding: "utf8" });
    if (labFile && fs.existsSync(labFile)) tryRun("down", "-f", labFile);
    const names = this.state().containers;
    for (let i = 0; i < names.length; i += 100) tryRun("rm", "-f", ...names.slice(i, i + 100));
    const nets = this.state().networks.filter((n) => n !== "bridge");
    if (nets.length) tryRun("net", "rm", ...nets);
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }
}

// ---- the peers ------------------------------------------------------------------------------------

/** Each peer: its driver in PEER_DIR, how many containers it measures, and whether it must run on the host. */
const PEERS = {
  floor: { script: "iproute2.sh", n: (s) => s.peerN, host: false },
  netavark: { script: "netavark.sh", n: (s) => s.peerN, host: false },
  cni: { script: "cni.sh", n: (s) => s.peerN, host: false },
  docker: { script: "docker.sh", n: (s) => s.dockerN, host: true },
};

/**
 * Runs peer drivers; returns { figure: { setup, teardown, n } } from their "NAME N= setup_ms= teardown_ms="
 * lines. A driver whose peer is not installed says "skip: why", which becomes a note.
 */
function runPeers(names, size, notes) {
  const out = {};
  for (const name of names) {
    const peer = PEERS[name];
    const script = path.join(PEER_DIR, peer.script);
    if (!fs.existsSync(script)) {
      notes.push(`${name}: driver ${script} not found, skipped`);
      continue;
    }
    progress(`peer ${name} (N=${peer.n(size)})`);
    const r = spawnSync("bash", [script, String(peer.n(size))], { encoding: "utf8", timeout: 600_000 });
    const skipped = /^skip: (.*)$/m.exec(r.stdout ?? "");
    if (skipped) {
      notes.push(`${name}: skipped, ${skipped[1]}`);
      continue;
    }
    let figures = 0;
    for (const line of (r.stdout ?? "").split("\n")) {
      const m = /^(\S+) N=(\d+) setup_ms=([\d.]+) teardown_ms=([\d.]+)$/.exec(line);
      if (!m) continue;
      out[m[1]] = { setup: Number(m[3]), teardown: Number(m[4]), n: Number(m[2]) };
      figures++;
    }
    if (r.status !== 0 || figures === 0) {
      notes.push(`${name}: driver failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.error?.message || "").trim().split("\n").at(-1) ?? ""}`);
    }
  }
  return out;
}

// ---- the ctnet measurements -----------------------------------------------------------------------

const progress = (what) => process.stderr.write(`bench: ${what}\n`);

/** Short names: they end up in 15-character interface names. */
const tag = `b${Math.random().toString(36).slice(2, 5)}`;

/** Each figure as it is measured, so an interrupted run still tells something. */
const record = (m, key, value) => {
  m[key] = value;
  progress(`  ${key} = ${typeof value === "number" ? value.toFixed(1) : value}`);
};

function measureCtnet(size, stateDir, notes) {
  const ct = new Ctnet(stateDir);
  const labFile = path.join(ct.stateDir, "bench-lab.yaml");
  const m = {};
  try {
    // -- latency of run and rm, on a user network with a few neighbours
    progress(`run -d / rm -f latency (${size.reps} each)`);
    const lat = `${tag}l`;
    ct.time("net", "create", "--subnet", "10.236.0.0/24", lat);
    const runs = [];
    const rms = [];
    for (let i = 0; i < size.reps; i++) runs.push(ct.time("run", "-d", "--net", lat, "--name", `${tag}r${i}`));
    for (let i = 0; i < size.reps; i++) rms.push(ct.time("rm", "-f", `${tag}r${i}`));
    record(m, "run", median(runs));
    record(m, "rm", median(rms));
    // rm -f leaves its veth to the kernel and a run that takes the name waits for it: the pair, back to back
    const cycles = [];
    ct.time("run", "-d", "--net", lat, "--name", `${tag}q`);
    for (let i = 0; i < size.reps; i++) cycles.push(ct.time("rm", "-f", `${tag}q`) + ct.time("run", "-d", "--net", lat, "--name", `${tag}q`));
    record(m, "rmRun", median(cycles));
    ct.time("rm", "-f", `${tag}q`);
    ct.time("net", "rm", lat);

    measureDns(ct, size, m, notes);

    // -- run on macvlan, beside run on a bridge: the parent is one end of a veth pair made for it
    progress(`run -d on macvlan (${size.reps})`);
    const parent = `${tag}mp`;
    const ip = (...args) => spawnSync("ip", args, { stdio: "ignore" }).status === 0;
    if (ip("link", "add", parent, "type", "veth", "peer", "name", `${tag}mw`) && ip("link", "set", parent, "up")) {
      try {
        const mv = `${tag}m`;
        ct.time("net", "create", "-d", "macvlan", "--subnet", "10.237.0.0/24", "-o", `parent=${parent}`, mv);
        const mvRuns = [];
        for (let i = 0; i < size.reps; i++) mvRuns.push(ct.time("run", "-d", "--net", mv, "--name", `${tag}v${i}`));
        record(m, "runMacvlan", median(mvRuns));
        ct.time("rm", "-f", ...Array.from({ length: size.reps }, (_, i) => `${tag}v${i}`));
        ct.time("net", "rm", mv);
      } finally {
        ip("link", "del", parent);
      }
    } else notes.push("run on macvlan: not measured (no veth pair for a parent)");

    // -- net create / net rm
    progress(`net create / net rm (${size.netReps} each)`);
    const creates = [];
    const netRms = [];
    for (let i = 0; i < size.netReps; i++) creates.push(ct.time("net", "create", "--subnet", `10.238.${i}.0/24`, `${tag}n${i}`));
    for (let i = 0; i < size.netReps; i++) netRms.push(ct.time("net", "rm", `${tag}n${i}`));
    record(m, "netCreate", median(creates));
    record(m, "netRm", median(netRms));

    // -- a lab: up and down, per container
    if (ct.has("up") && ct.has("down")) {
      progress(`up / down of a lab of ${size.lab} containers on ${size.labNets} networks`);
      writeLab(labFile, tag, "10.237", size);
      record(m, "up", ct.time("up", "-f", labFile) / size.lab);
      ct.memory("ps");
      record(m, "down", ct.time("down", "-f", labFile) / size.lab);
    } else {
      notes.push("up/down: this ctnet has no `up`/`down` commands yet, skipped");
    }

    // -- published ports on one container: the last publish against the first
    if (ct.has("port", "publish")) {
      progress(`${size.ports} published ports, one at a time`);
      const pn = `${tag}p`;
      ct.time("net", "create", "--subnet", "10.239.0.0/24", pn);
      ct.time("run", "-d", "--net", pn, "--name", `${tag}pc`);
      const base = 45100;
      const pubs = [];
      for (let i = 0; i < size.ports; i++) pubs.push(ct.time("port", "publish", `${tag}pc`, `${base + i}:${8000 + i}`));
      record(m, "publishFirst", median(pubs.slice(0, size.window)));
      record(m, "publishLast", median(pubs.slice(-size.window)));
      ct.memory("port", "publish", `${tag}pc`, `${base + size.ports}:${8000 + size.ports}`);
      ct.time("rm", "-f", `${tag}pc`);
      ct.time("net", "rm", pn);
    } else {
      notes.push("publish: this ctnet has no `port publish` command yet, skipped");
    }

    // -- many containers on one network: the last run against the first, and the views
    progress(`${size.scale} containers on one network`);
    const big = `${tag}s`;
    ct.time("net", "create", "--subnet", "10.236.16.0/20", big);
    const series = [];
    for (let i = 0; i < size.scale; i++) {
      series.push(ct.time("run", "-d", "--net", big, "--name", `${tag}s${i}`));
      if ((i + 1) % 100 === 0) progress(`  ${i + 1} containers, last run ${series.at(-1).toFixed(0)} ms`);
    }
    record(m, "scaleFirst", median(series.slice(0, size.window)));
    record(m, "scaleLast", median(series.slice(-size.window)));
    // the same views through a Go template (issue 15): what parsing and running one adds
    const views = {
      ps: ["ps"], netLs: ["net", "ls"], netInspect: ["net", "inspect", big],
      psTemplate: ["ps", "--format", "table {{.ID}}\t{{.Names}}\t{{.Networks}}"],
      netLsTemplate: ["net", "ls", "--format", "{{.Name}} {{.Driver}}"],
      inspectTemplate: ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", `${tag}s0`],
    };
    for (const [key, args] of Object.entries(views)) record(m, key, median(Array.from({ length: Math.max(3, size.window) }, () => ct.time(...args))));
    ct.memory("ps");
    ct.memory("net", "inspect", big);
    ct.memory("run", "-d", "--net", big, "--name", `${tag}sx`);
    record(m, "scaleRm", ct.time("rm", "-f", `${tag}s0`));
    m.peakMB = ct.peakKB ? ct.peakKB / 1024 : null;
    m.peakWhat = ct.peakWhat;
    m.stateKB = fs.statSync(path.join(ct.stateDir, "state.json")).size / 1024;
    if (!m.peakMB) notes.push("memory: /usr/bin/time (GNU time) not found, peak memory not measured");
  } finally {
    progress("cleaning up");
    ct.cleanup(labFile);
  }
  return m;
}

const PROBE = path.join(ROOT, "bench/dnsprobe.mjs");
const probe = (ctr, ...args) => {
  const r = spawnSync("ip", ["netns", "exec", ctr, process.execPath, PROBE, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`dnsprobe ${args.join(" ")} in ${ctr}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};

/**
 * Names (issue 14): p50 of size.dnsQueries A queries from a container to ctnet's DNS server (aardvark-dns),
 * and how long after `run` returns the new container's name answers; the same two figures for dnsmasq,
 * the other candidate, serving the same names from a hosts file reloaded on SIGHUP (docs/dns.md).
 */
function measureDns(ct, size, m, notes) {
  if (!fs.existsSync("/usr/lib/podman/aardvark-dns")) return notes.push("dns: aardvark-dns not installed, skipped");
  progress(`DNS: ${size.dnsQueries} queries, and new names (${size.reps})`);
  const net = `${tag}d`;
  const gw = "10.236.8.1";
  ct.time("net", "create", "--subnet", "10.236.8.0/24", net);
  ct.time("run", "-d", "--net", net, "--name", `${tag}d0`);
  ct.time("run", "-d", "--net", net, "--name", `${tag}d1`);
  record(m, "dnsP50", probe(`${tag}d0`, "latency", gw, "53", `${tag}d1`, String(size.dnsQueries)).p50);
  const untils = [];
  for (let i = 2; i < 2 + size.reps; i++) {
    ct.time("run", "-d", "--net", net, "--name", `${tag}d${i}`);
    untils.push(probe(`${tag}d0`, "until", gw, "53", `${tag}d${i}`).ms);
  }
  record(m, "dnsNewName", median(untils));
  const dnsmasq = spawnSync("sh", ["-c", "command -v dnsmasq"], { encoding: "utf8" }).stdout.trim();
  if (dnsmasq) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-bench-dnsmasq-"));
    const hosts = path.join(dir, "hosts");
    fs.writeFileSync(hosts, `10.236.8.3	${tag}d1
`);
    const pidFile = path.join(dir, "pid");
    spawnSync(dnsmasq, ["--user=root", "--no-resolv", "--no-hosts", `--addn-hosts=${hosts}`, `--listen-address=${gw}`, "--port=5354", "--bind-interfaces", `--pid-file=${pidFile}`]);
    try {
      record(m, "dnsmasqP50", probe(`${tag}d0`, "latency", gw, "5354", `${tag}d1`, String(size.dnsQueries)).p50);
      const reloads = [];
      for (let i = 0; i < size.reps; i++) {
        fs.appendFileSync(hosts, `10.236.8.${100 + i}	${tag}m${i}
`);
        process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGHUP");
        reloads.push(probe(`${tag}d0`, "until", gw, "5354", `${tag}m${i}`).ms);
      }
      record(m, "dnsmasqNewName", median(reloads));
    } finally {
      try {
        process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGTERM");
      } catch {
        /* it did not start */
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else notes.push("dns: dnsmasq not installed, the second candidate not measured");
  ct.time("rm", "-f", ...Array.from({ length: 2 + size.reps }, (_, i) => `${tag}d${i}`));
  ct.time("net", "rm", net);
}

/** A lab of size.lab containers spread over size.labNets networks on subnets NET.N.0/24, named after `prefix`. */
function writeLab(file, prefix, net, size) {
  const lines = [`name: ${prefix}lab`, "networks:"];
  for (let n = 0; n < size.labNets; n++) lines.push(`  ${prefix}k${n}: {subnet: ${net}.${n}.0/24}`);
  lines.push("containers:");
  for (let i = 0; i < size.lab; i++) lines.push(`  ${prefix}c${i}: {networks: [${prefix}k${i % size.labNets}]}`);
  fs.writeFileSync(file, lines.join("\n") + "\n");
}

/**
 * `up` and `down` of the same lab on the host itself, where the kernel holds everything else on the machine
 * (in the private namespace `down` was 5x faster). Its names start with a tag no link, namespace or
 * /etc/netns entry on the host starts with, its subnets are 10.234.N.0/24, its state dir is its own, and
 * whatever of it exists is removed before this returns, also when a command failed or the bench was
 * interrupted; ctnet only ever removes what that state dir records.
 */
async function measureHostDown(size, notes) {
  const ct = new Ctnet(fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-bench-host-")));
  const labFile = path.join(ct.stateDir, "host-lab.yaml");
  const m = {};
  try {
    if (!(ct.has("up") && ct.has("down"))) {
      notes.push("down on the host: this ctnet has no `up`/`down` commands yet, skipped");
      return m;
    }
    const prefix = hostTag();
    progress(`up / down of a lab of ${size.lab} containers on ${size.labNets} networks on the host (names ${prefix}…)`);
    writeLab(labFile, prefix, "10.234", size);
    record(m, "upHost", (await ct.timeWhileListening("up", "-f", labFile)) / size.lab);
    record(m, "downHost", (await ct.timeWhileListening("down", "-f", labFile)) / size.lab);
  } catch (e) {
    notes.push(`down on the host: ${e.message.split("\n")[0]}`);
  } finally {
    progress("cleaning up the host lab");
    ct.cleanup(labFile);
  }
  return m;
}

/** A name prefix nothing on the host uses yet: no link (veths "ve-PREFIX…", bridges "ctbr-PREFIX…"), namespace or /etc/netns entry. */
function hostTag() {
  const taken = (prefix) => {
    const inUse = (dir, pattern) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []).some((n) => pattern.test(n));
    return inUse("/sys/class/net", new RegExp(`^(ve-|ctbr-)?${prefix}`)) || inUse("/run/netns", new RegExp(`^${prefix}`)) || inUse("/etc/netns", new RegExp(`^${prefix}`));
  };
  for (;;) {
    const prefix = `h${Math.random().toString(36).slice(2, 5)}`;
    if (prefix.length === 4 && !taken(prefix)) return prefix;
  }
}

// ---- the table ------------------------------------------------------------------------------------

const fmt = (v, unit = " ms") => (v === undefined || v === null || Number.isNaN(v) ? "—" : `${v < 10 ? v.toFixed(1) : v.toFixed(0)}${unit}`);

function buildRows(m, p, size, onHost) {
  const floorCols = (key) => ({ perCmd: p["iproute2-per-command"]?.[key], floor: p["iproute2-batch"]?.[key], netavark: p.netavark?.[key], cni: p["cni-bridge"]?.[key], docker: p["docker-run"]?.[key] });
  const none = {};
  const dockerRun = p["docker-run"]?.setup;
  const rows = [
    { what: "run -d --net X (median)", v: m.run, peers: floorCols("setup"), target: `≤ ${TARGETS.run} ms, ≤ ½ docker`, met: m.run <= TARGETS.run && (dockerRun === undefined || m.run <= dockerRun * TARGETS.dockerShare) },
    { what: "run -d --net X, X macvlan (median)", v: m.runMacvlan, peers: none, target: "≤ run on a bridge", met: m.runMacvlan === undefined ? undefined : m.runMacvlan <= m.run },
    { what: "rm -f (median)", v: m.rm, peers: floorCols("teardown"), target: `≤ ${TARGETS.rm} ms`, met: m.rm <= TARGETS.rm },
    { what: "rm -f, then run -d of its name (median)", v: m.rmRun, peers: none },
    { what: "net create (median)", v: m.netCreate, peers: none },
    { what: "net rm (median)", v: m.netRm, peers: none, target: `≤ ${TARGETS.netRm} ms`, met: m.netRm <= TARGETS.netRm },
    { what: `up, per container (${size.lab} on ${size.labNets} nets)`, v: m.up, peers: floorCols("setup"), target: `≤ ${TARGETS.upPerCtr} ms`, met: m.up === undefined ? undefined : m.up <= TARGETS.upPerCtr },
    // the lab of the private namespace; with --host it ran on the host and is the row below
    { what: "down, per container, private netns", v: onHost ? undefined : m.down, peers: floorCols("teardown") },
    { what: "up, per container, on the host", v: onHost ? m.up : m.upHost, peers: none },
    { what: "down, per container, on the host", v: onHost ? m.down : m.downHost, peers: floorCols("teardown"), target: `≤ ${TARGETS.downPerCtr} ms`, met: (onHost ? m.down : m.downHost) <= TARGETS.downPerCtr },
    { what: `run #1 on one net (${size.window > 1 ? `median of first ${size.window}` : "first"})`, v: m.scaleFirst, peers: none },
    { what: `run #${size.scale} (${size.window > 1 ? `median of last ${size.window}` : "last"})`, v: m.scaleLast, peers: none, ratio: m.scaleLast / m.scaleFirst, target: `≤ ${TARGETS.growth}× run #1`, met: m.scaleLast / m.scaleFirst <= TARGETS.growth },
    { what: `rm -f with ${size.scale} containers`, v: m.scaleRm, peers: none },
    { what: `ps with ${size.scale} containers`, v: m.ps, peers: none, target: `≤ ${TARGETS.view} ms`, met: m.ps <= TARGETS.view },
    { what: `net ls with ${size.scale} containers`, v: m.netLs, peers: none, target: `≤ ${TARGETS.view} ms`, met: m.netLs <= TARGETS.view },
    { what: `net inspect with ${size.scale} containers`, v: m.netInspect, peers: none, target: `≤ ${TARGETS.view} ms`, met: m.netInspect <= TARGETS.view },
    { what: "DNS answer from a container, p50 (aardvark-dns)", v: m.dnsP50, peers: none },
    { what: "a new name answers, after run returns (median)", v: m.dnsNewName, peers: none },
    { what: "DNS answer, p50, dnsmasq (the other candidate)", v: m.dnsmasqP50, peers: none },
    { what: "a new name answers, after SIGHUP, dnsmasq (median)", v: m.dnsmasqNewName, peers: none },
    { what: `ps --format TEMPLATE, ${size.scale} containers`, v: m.psTemplate, peers: none, ratio: m.psTemplate / m.ps, target: `≤ ${TARGETS.view} ms`, met: m.psTemplate <= TARGETS.view },
    { what: `net ls --format TEMPLATE, ${size.scale} containers`, v: m.netLsTemplate, peers: none, ratio: m.netLsTemplate / m.netLs, target: `≤ ${TARGETS.view} ms`, met: m.netLsTemplate <= TARGETS.view },
    { what: `inspect -f TEMPLATE, ${size.scale} containers`, v: m.inspectTemplate, peers: none, target: `≤ ${TARGETS.view} ms`, met: m.inspectTemplate <= TARGETS.view },
    { what: "publish #1", v: m.publishFirst, peers: none },
    { what: `publish #${size.ports}`, v: m.publishLast, peers: none, ratio: m.publishLast / m.publishFirst, target: `≤ ${TARGETS.growth}× publish #1`, met: m.publishLast === undefined ? undefined : m.publishLast / m.publishFirst <= TARGETS.growth },
    { what: `peak memory, one process (${m.peakWhat || "—"})`, v: m.peakMB, unit: " MB", peers: none, target: `< ${TARGETS.memMB} MB`, met: m.peakMB ? m.peakMB < TARGETS.memMB : undefined },
  ];
  return rows;
}

function renderTable(rows, p) {
  const peerCols = [
    ["perCmd", "ip 1 proc/cmd", "iproute2-per-command"], ["floor", "floor ip -batch", "iproute2-batch"],
    ["netavark", "netavark", "netavark"], ["cni", "CNI bridge", "cni-bridge"], ["docker", "docker", "docker-run"],
  ].filter(([, , key]) => p[key]);
  const head = ["measure", "ctnet", ...peerCols.map(([, title]) => `${title} (ctnet ×)`), "target", "met"];
  const body = rows.map((r) => {
    const cell = (key) => {
      const v = r.peers[key];
      if (v === undefined || r.v === undefined || r.v === null) return "—";
      return `${fmt(v)} (×${(r.v / v).toFixed(r.v / v < 10 ? 2 : 0)})`;
    };
    const own = fmt(r.v, r.unit) + (r.ratio !== undefined && !Number.isNaN(r.ratio) ? ` (${r.ratio.toFixed(2)}×)` : "");
    return [r.what, own, ...peerCols.map(([key]) => cell(key)), r.target ?? "", r.met === undefined || Number.isNaN(r.v) || r.v === undefined ? (r.target ? "—" : "") : r.met ? "yes" : "NO"];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)].join("\n");
}

// ---- running it all -------------------------------------------------------------------------------

/**
 * A private network + mount + pid namespace with its own /run (so /run/netns and ctnet's registry of
 * state dirs, /run/ctnet, die with it) and /etc/netns, like a fresh host.
 */
const PRIVATE_HOST = [
  "mount -t proc proc /proc",
  "mount -t tmpfs -o mode=0755 ctnet-bench /run",
  "mkdir /run/netns",
  "mount -t tmpfs -o mode=0755 ctnet-bench /etc/netns",
  "ip link set lo up",
  // a fresh namespace has no iptables tables until something lists them
  "iptables -w -t filter -L -n >/dev/null && iptables -w -t nat -L -n >/dev/null",
  // not exec: sh stays the namespace's init, so a Ctrl-C ends node and with node every process and namespace
  '"$0" "$@"',
].join(" && ");

function inside(opts, stateDir) {
  const size = sizeOf(opts);
  const notes = [];
  const wanted = (opts.peers ?? Object.keys(PEERS)).filter((n) => !PEERS[n].host);
  const peers = runPeers(wanted, size, notes);
  const m = measureCtnet(size, stateDir, notes);
  return { m, peers, notes };
}

const sizeOf = (opts) => ({ ...SIZES[opts.size], ...(opts.scale ? { scale: opts.scale } : {}) });

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) usage("must run as root (ctnet and the peers change the network)");
  if (opts.inside) {
    process.stdout.write(JSON.stringify(inside(opts, process.env.CTNET_BENCH_STATE_DIR)) + "\n");
    return;
  }
  const size = sizeOf(opts);
  const started = Date.now();
  const notes = [];
  // ctnet's state lives here and goes when the bench ends, even when it is interrupted
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-bench-"));
  // a signal ends the commands running; this process outlives them to clean up, and starts no more
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => (interrupted = sig));
  let result;
  try {
    if (opts.host) {
      result = inside(opts, stateDir);
    } else {
      fs.mkdirSync("/run/netns", { recursive: true });
      fs.mkdirSync("/etc/netns", { recursive: true });
      const args = [fileURLToPath(import.meta.url), "--inside", "--size", opts.size, "--peers", (opts.peers ?? Object.keys(PEERS)).join(",") || ",", ...(opts.scale ? ["--scale", String(opts.scale)] : [])];
      const r = spawnSync("unshare", ["--net", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--", "sh", "-c", PRIVATE_HOST, process.execPath, ...args], {
        encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20, env: { ...process.env, CTNET_BENCH_STATE_DIR: stateDir },
      });
      await signalsHandled();
      const last = r.stdout.trim().split("\n").at(-1);
      if (r.status !== 0 || !last?.startsWith("{")) {
        process.stderr.write(`bench: the private-namespace run ${interrupted ? `was interrupted (${interrupted})` : `failed (exit ${r.status ?? r.signal})`}; everything it made went with its namespace\n`);
        process.exitCode = interrupted ? 130 : 1;
        return;
      }
      result = JSON.parse(last);
    }
  } finally {
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
  notes.push(...result.notes);
  if (!opts.host) Object.assign(result.m, await measureHostDown(size, notes));
  if (interrupted) {
    process.stderr.write(`bench: interrupted (${interrupted}); the host lab was removed\n`);
    process.exitCode = 130;
    return;
  }
  const hostPeers = (opts.peers ?? Object.keys(PEERS)).filter((n) => PEERS[n].host);
  Object.assign(result.peers, runPeers(hostPeers, size, notes));
  const rows = buildRows(result.m, result.peers, size, opts.host);
  const table = renderTable(rows, result.peers);
  const where = opts.host ? "on the host" : "in a private network namespace (Docker on the host)";
  const header = `ctnet bench, size ${opts.size}: ${os.cpus().length} cores, node ${process.version}, ${os.release()}, ${where}; ${((Date.now() - started) / 1000).toFixed(0)} s`;
  const footer = [
    `peer columns: the peer's own time per container (drivers in ${path.relative(ROOT, PEER_DIR) || "."}), and ctnet's time as a multiple of it`,
    `state file with ${size.scale} containers: ${result.m.stateKB ? result.m.stateKB.toFixed(0) + " KB" : "—"}`,
    ...notes.map((n) => `note: ${n}`),
  ];
  process.stdout.write(`${header}\n\n${table}\n\n${footer.join("\n")}\n`);
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ size: opts.size, ...result, rows }, null, 1) + "\n");
}

await main();
