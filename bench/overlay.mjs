#!/usr/bin/env node
// Issue 17's bench rows, on simulated hosts (test/integration/simhosts.ts, bundled here with esbuild):
// three private hosts on an underlay bridge and a 3-member etcd cluster, all on this machine. bench.mjs
// runs one private host without a store, so the overlay rows live here.
//
//   node bench/overlay.mjs [--reps N] [--claims N]
//
// Rows: `run -d` + `rm -f` on an overlay network vs on a bridge network, on the same host (median of N
// each, interleaved; target overlay ≤ 1.3× bridge); a name run on one host answering on another (target
// ≤ 500 ms median); `cluster ls` and `net ls` with 3 hosts and N claims in
// the store (default 300; target ≤ 150 ms). Those claims are put into the store directly (the two
// commands only read it), spread over the three hosts. Every command goes through nsenter into its host:
// a few ms more on every row alike.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const REPS = arg("--reps", 15);
const CLAIMS = arg("--claims", 300);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-bench-overlay-"));
const bundle = path.join(dir, "simhosts.mjs");
// harness.ts finds bin/ctnet from its own directory: the bundle is told where the source was
const define = { "import.meta.url": JSON.stringify(pathToFileURL(path.join(ROOT, "test/integration/harness.ts")).href) };
// the test hooks simhosts.ts and isolated.ts register are not used here: vitest becomes a stub
const noVitest = {
  name: "no-vitest",
  setup(b) {
    b.onResolve({ filter: /^vitest$/ }, () => ({ path: "vitest", namespace: "stub" }));
    b.onLoad({ filter: /.*/, namespace: "stub" }, () => ({ contents: "const hook = () => {}; export const beforeAll = hook, afterAll = hook, afterEach = hook, beforeEach = hook, describe = hook, it = hook, expect = hook;", loader: "js" }));
  },
};
await build({ entryPoints: [path.join(ROOT, "test/integration/simhosts.ts")], bundle: true, format: "esm", platform: "node", outfile: bundle, plugins: [noVitest], define, logLevel: "warning" });
const { SimCluster } = await import(bundle);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function timed(h, ...args) {
  const t = process.hrtime.bigint();
  const r = h.ctnet(...args);
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.code !== 0) throw new Error(`ctnet ${args.join(" ")} on ${h.name}: ${r.stderr}`);
  return ms;
}

const sim = await SimCluster.start();
try {
  const hosts = [await sim.addHost(), await sim.addHost(), await sim.addHost()];
  for (const h of hosts) h.ok("cluster", "join", "--store", sim.store, "--advertise", h.ip);
  const [h1] = hosts;
  h1.ok("net", "create", "-d", "overlay", "--subnet", "10.230.0.0/16", "ov");
  h1.ok("net", "create", "--subnet", "10.231.0.0/16", "br");
  // one container stays on each network: the rows measure a run on a network already up on the host
  h1.ok("run", "-d", "--name", "keep-ov", "--net", "ov");
  h1.ok("run", "-d", "--name", "keep-br", "--net", "br");
  const runs = { ov: [], br: [] };
  const rms = { ov: [], br: [] };
  for (let i = 0; i < REPS; i++) {
    for (const net of ["br", "ov"]) {
      runs[net].push(timed(h1, "run", "-d", "--name", `c-${net}-${i}`, "--net", net));
      rms[net].push(timed(h1, "rm", "-f", `c-${net}-${i}`));
    }
  }
  // a name run on h1 answering on h2: from the moment run returns, polled from a container on h2 with dig
  // (each poll, nsenter + ip netns exec + dig, takes a few ms: the figure is at most that much late)
  const h2 = hosts[1];
  h2.ok("run", "-d", "--name", "asker", "--net", "ov");
  const nameLag = [];
  for (let i = 0; i < REPS; i++) {
    const name = `named-${i}`;
    timed(h1, "run", "-d", "--name", name, "--net", "ov");
    const t = process.hrtime.bigint();
    while (h2.inNs("asker", "dig", "+short", "+tries=1", "+time=1", "-q", name).stdout.trim() === "") {
      if (Number(process.hrtime.bigint() - t) / 1e6 > 10_000) throw new Error(`${name} did not answer on h2 within 10 s`);
    }
    nameLag.push(Number(process.hrtime.bigint() - t) / 1e6);
    h1.ok("rm", "-f", name);
  }
  // the claims of CLAIMS containers, a third on each host
  const lines = [];
  for (let i = 0; i < CLAIMS; i++) {
    const h = hosts[i % 3];
    const ip = `10.230.${2 + Math.floor(i / 250)}.${(i % 250) + 1}`;
    const value = { network: "ov", ip, mac: "02:42:00:00:00:00", host: h.name, vtep: h.ip, container: `b${i}`, claimed: new Date().toISOString(), up: true };
    lines.push(`put /ctnet/endpoints/ov/${ip} '${JSON.stringify(value)}'`, `put /ctnet/names/ov/b${i} ${h.name}`);
  }
  for (const line of lines) {
    const [, key, ...rest] = line.split(" ");
    const r = h1.sh(["etcdctl", `--endpoints=${sim.store.slice("etcd://".length)}`, "put", key, rest.join(" ").replace(/^'|'$/g, "")], { env: { ...process.env, ETCDCTL_API: "3" } });
    if (r.code !== 0) throw new Error(r.stderr);
  }
  // the three agents take in the puts (a watch event each) before the reads are timed
  await new Promise((r) => setTimeout(r, 3000));
  const ls = Array.from({ length: REPS }, () => timed(h1, "cluster", "ls"));
  const netLs = Array.from({ length: REPS }, () => timed(h1, "net", "ls"));
  // a command that reads no store, through the same nsenter: what the machine's load makes of any command
  const ps = Array.from({ length: REPS }, () => timed(h1, "ps"));
  const row = (name, ms, target) => console.log(`${name.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms${target ? `   ${target}` : ""}`);
  const [ovRun, brRun] = [median(runs.ov), median(runs.br)];
  console.log(`overlay bench: 3 simulated hosts, 3-member etcd, median of ${REPS}`);
  row("run -d, bridge network", brRun);
  row("run -d, overlay network", ovRun, `${(ovRun / brRun).toFixed(2)}× bridge (target ≤ 1.3×)`);
  row("rm -f, bridge network", median(rms.br));
  row("rm -f, overlay network", median(rms.ov), `${(median(rms.ov) / median(rms.br)).toFixed(2)}× bridge`);
  row("run on h1 -> the name answers on h2", median(nameLag), "target ≤ 500 ms (from run's return)");
  row(`cluster ls, 3 hosts, ${CLAIMS} claims`, median(ls), "target ≤ 150 ms");
  row(`net ls, 3 hosts, ${CLAIMS} claims`, median(netLs), "target ≤ 150 ms");
  row("ps (no store: the floor of any command here)", median(ps));
} finally {
  await sim.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
