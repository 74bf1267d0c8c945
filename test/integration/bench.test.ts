// The benchmark at its tiny size: proves it runs end to end with the project's own peer drivers
// (bench/peers) and prints its table (timings are never asserted: this machine is shared and noisy),
// that a peer not installed here is skipped with a note, and that it leaves the host as it found it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { ROOT, hostSnapshot, sh } from "./harness.js";

it("bench --size tiny prints the comparison table and cleans up", () => {
  const before = hostSnapshot();
  const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-bench-test-")), "bench.json");
  try {
    const r = sh(["node", path.join(ROOT, "bench/bench.mjs"), "--size", "tiny", "--peers", "floor,netavark,cni", "--json", json]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^ctnet bench, size tiny: \d+ cores/);
    const header = lines.find((l) => l.startsWith("| measure"));
    expect(header).toContain("floor ip -batch (ctnet ×)");
    const row = (label: string) => lines.find((l) => l.startsWith(`| ${label}`))?.split("|").map((c) => c.trim());
    for (const label of ["run -d --net X", "rm -f (median)", "net create", "net rm", "up, per container", "down, per container", "ps with 4", "net ls with 4", "net inspect with 4", "publish #3", "peak memory"]) {
      const cells = row(label);
      expect(cells, `row ${label}`).toBeDefined();
      // the ctnet column holds a measured figure
      expect(cells![2], `row ${label}`).toMatch(/^\d+(\.\d)? (ms|MB)/);
    }
    // the floor ran and its column has a figure with ctnet's ratio to it
    expect(row("run -d --net X")![4]).toMatch(/^\d+(\.\d)? ms \(×\d/);
    // netavark and the CNI plugins: a column when installed, else a note saying how to install them
    for (const [peer, column, pkg] of [["netavark", "netavark (ctnet ×)", "netavark"], ["cni", "CNI bridge (ctnet ×)", "containernetworking-plugins"]]) {
      const note = lines.find((l) => l.startsWith(`note: ${peer}: `));
      if (header!.includes(column)) expect(note, `${peer} ran, yet: ${note}`).toBeUndefined();
      else expect(note).toBe(`note: ${peer}: skipped, ${peer === "cni" ? "the CNI plugins are" : "netavark is"} not installed (bench/peers/setup.sh installs Debian's ${pkg})`);
    }
    expect(lines).toContain("peer columns: the peer's own time per container (drivers in bench/peers), and ctnet's time as a multiple of it");
    const figures = JSON.parse(fs.readFileSync(json, "utf8"));
    expect(figures.m.run).toBeGreaterThan(0);
    expect(figures.peers["iproute2-batch"].setup).toBeGreaterThan(0);
  } finally {
    fs.rmSync(path.dirname(json), { recursive: true, force: true });
  }
  expect(hostSnapshot()).toEqual(before);
}, 180_000);
