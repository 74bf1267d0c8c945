// The benchmark at its tiny size: proves it runs end to end with the project's own peer drivers
// (bench/peers) and prints its table (timings are never asserted: this machine is shared and noisy),
// that a peer not installed here is skipped with a note, and that it leaves the host as it found it, also
// when the lab it tears down on the host itself fails.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { ROOT, hostSnapshot } from "./harness.js";

/** The bench, given more time than harness.sh's 60 s: on a loaded machine a tiny run can take that. */
function bench(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync("node", [path.join(ROOT, "bench/bench.mjs"), "--size", "tiny", ...args], { encoding: "utf8", env, timeout: 170_000 });
  if (r.error) throw r.error;
  const lines = r.stdout.split("\n");
  const row = (label: string) => lines.find((l) => l.startsWith(`| ${label}`))?.split("|").map((c) => c.trim());
  return { code: r.status, stderr: r.stderr, lines, row };
}

it("bench --size tiny prints the comparison table and cleans up", () => {
  const before = hostSnapshot();
  const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-bench-test-")), "bench.json");
  try {
    const { code, stderr, lines, row } = bench(["--peers", "floor,netavark,cni", "--json", json]);
    expect(code, stderr).toBe(0);
    expect(lines[0]).toMatch(/^ctnet bench, size tiny: \d+ cores/);
    const header = lines.find((l) => l.startsWith("| measure"));
    expect(header).toContain("floor ip -batch (ctnet ×)");
    const rows = [
      "run -d --net X", "rm -f (median)", "rm -f, then run -d of its name", "net create", "net rm", "up, per container (4 on 2 nets)",
      "down, per container, private netns", "up, per container, on the host", "down, per container, on the host",
      "ps with 4", "net ls with 4", "net inspect with 4", "publish #3", "peak memory",
    ];
    for (const label of rows) {
      const cells = row(label);
      expect(cells, `row ${label}`).toBeDefined();
      // the ctnet column holds a measured figure
      expect(cells![2], `row ${label}`).toMatch(/^\d+(\.\d)? (ms|MB)/);
    }
    // issue 13's targets stand beside the teardown rows
    const targetOf = (label: string) => row(label)!.at(-3);
    expect([targetOf("rm -f (median)"), targetOf("net rm"), targetOf("down, per container, on the host")]).toEqual(["≤ 50 ms", "≤ 80 ms", "≤ 5 ms"]);
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
    expect(figures.m.downHost).toBeGreaterThan(0);
    expect(figures.peers["iproute2-batch"].setup).toBeGreaterThan(0);
  } finally {
    fs.rmSync(path.dirname(json), { recursive: true, force: true });
  }
  expect(hostSnapshot()).toEqual(before);
}, 180_000);

it("bench removes its lab from the host when a command of it fails there", () => {
  const before = hostSnapshot();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-bench-test-"));
  try {
    // this ctnet fails the `down` of the host's lab (its file is host-lab.yaml), after the lab was made
    const failing = path.join(dir, "failing-ctnet.mjs");
    fs.writeFileSync(failing, [
      `if (process.argv[2] === "down" && process.argv.some((a) => a.endsWith("host-lab.yaml"))) { process.stderr.write("down refused by the test\\n"); process.exit(1); }`,
      `const { main } = await import(${JSON.stringify(path.join(ROOT, "dist/cli.js"))});`,
      "await main(process.argv);",
    ].join("\n"));
    const { code, stderr, lines, row } = bench(["--no-peers"], { ...process.env, CTNET_BENCH_CLI: failing });
    expect(code, stderr).toBe(0);
    expect(row("up, per container, on the host")![2]).toMatch(/^\d+(\.\d)? ms/);
    expect(row("down, per container, on the host")![2]).toBe("—");
    expect(lines.find((l) => l.startsWith("note: down on the host: "))).toMatch(/host-lab\.yaml failed \(1\): down refused by the test$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  expect(hostSnapshot()).toEqual(before);
}, 180_000);
