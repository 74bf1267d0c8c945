// Issue 5, point 1: ctnet killed (SIGKILL) at every step boundary of run, net create, net connect, up and
// rm leaves nothing the next command cannot repair; Ctrl-C (SIGINT/SIGTERM) mid-plan rolls back before exit.
// The test hook CTNET_TEST_PAUSE_AFTER_STEP=N stops a plan after exactly N steps (batches are cut there,
// so every boundary is reachable) and waits for a signal.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { settled } from "./harness.js";
import { IsolatedHost } from "./isolated.js";
import { journalFiles as journalFilesOf, startPaused as startPausedOn, stateText as stateTextOf } from "./killpoints.js";
import { decodeState } from "../../src/store/statefile.js";

let host: IsolatedHost;
beforeAll(async () => {
  host = await IsolatedHost.start();
});
afterAll(async () => {
  await host?.stop();
});

const journalFiles = () => journalFilesOf(host.stateDir);
const stateText = () => stateTextOf(host.stateDir);
const startPaused = (args: string[], at: string) => startPausedOn(host, args, at);

function expectAgree(): void {
  const doc = host.ctnet("doctor");
  expect(doc.stdout, doc.stderr).toContain("no differences");
  expect(doc.code).toBe(0);
}

/**
 * For every pause point of `args` (0..steps, then "commit"): kill ctnet there, repair with doctor --fix
 * (odd points) or by running the command again (even points), and check state and kernel: rolled back
 * exactly to where they were, or (when the command was re-run or had committed) forward to its result.
 * `undo` brings the host back to the baseline after a successful run.
 */
async function killAtEveryStep(args: string[], undo: string[][]): Promise<number> {
  const kernel0 = host.kernel();
  const state0 = stateText();
  let total = Infinity;
  let points = 0;
  for (let n = 0; n <= total + 1; n++) {
    const at = n === total + 1 ? "commit" : String(n);
    const p = await startPaused(args, at);
    expect(p.pid, `ctnet ${args.join(" ")} did not pause at ${at}: ${p.stderr()}`).not.toBeNull();
    if (p.total >= 0) total = p.total;
    expect(journalFiles()).toContain("journal.json");
    host.sh(["kill", "-KILL", p.pid!]);
    await p.exit;
    points++;
    const committed = at === "commit";
    if (committed || n % 2 === 1) {
      const fix = host.ctnet("doctor", "--fix");
      expect(fix.code, `doctor --fix after a kill at ${at}: ${fix.stdout}${fix.stderr}`).toBe(0);
      expect(fix.stderr).toContain("recovered the interrupted plan");
      expect(journalFiles()).toEqual([]);
      expectAgree();
      // before the commit point the plan is rolled back; after it, its state is kept (and undone here)
      if (committed) for (const u of undo) host.ok(...u);
      else expect(stateText(), `state after a kill at ${at}`).toBe(state0);
    } else {
      const again = host.ctnet(...args);
      expect(again.code, `re-running after a kill at ${at}: ${again.stderr}`).toBe(0);
      expect(again.stderr).toContain("recovered the interrupted plan");
      expectAgree();
      for (const u of undo) host.ok(...u);
    }
    expect(journalFiles()).toEqual([]);
    expectAgree();
    expect(host.kernel(), `kernel after a kill at ${at}`).toEqual(kernel0);
  }
  return points;
}

describe("SIGKILL at every step", () => {
  it("net create on a fresh host (chains and sysctl included) and on one with networks", async () => {
    const points = await killAtEveryStep(["net", "create", "--subnet", "10.252.1.0/24", "crn"], [["net", "rm", "crn"]]);
    expect(points).toBeGreaterThan(15);
    host.ok("net", "create", "--subnet", "10.252.0.0/24", "base");
    expect(await killAtEveryStep(["net", "create", "--subnet", "10.252.1.0/24", "-o", "mtu=1400", "crn"], [["net", "rm", "crn"]])).toBeGreaterThan(8);
  }, 600_000);

  it("run -d on a user network, with a neighbour whose hosts file changes", async () => {
    host.ok("run", "-d", "--net", "base", "--name", "b1");
    const points = await killAtEveryStep(["run", "-d", "--net", "base", "--name", "c2"], [["rm", "-f", "c2"]]);
    expect(points).toBeGreaterThan(8);
    // the survivors still talk, by name
    host.ok("run", "-d", "--net", "base", "--name", "c2");
    expect(host.ping("c2", "b1")).toBe(true);
    host.ok("rm", "-f", "c2");
  }, 600_000);

  it("net connect", async () => {
    host.ok("net", "create", "--subnet", "10.252.2.0/24", "other");
    const points = await killAtEveryStep(["net", "connect", "other", "b1"], [["net", "disconnect", "other", "b1"]]);
    expect(points).toBeGreaterThan(6);
  }, 600_000);

  it("up -f LAB", async () => {
    const lab = path.join(host.stateDir, "..", `ctnet-crash-lab-${process.pid}.yaml`);
    fs.writeFileSync(lab, "name: crashlab\nnetworks:\n  labnet:\n    subnet: 10.252.3.0/24\ncontainers:\n  l1:\n    networks: [labnet]\n  l2:\n    networks: [labnet]\n");
    try {
      const points = await killAtEveryStep(["up", "-f", lab], [["down", "-f", lab]]);
      expect(points).toBeGreaterThan(15);
    } finally {
      fs.rmSync(lab, { force: true });
    }
  }, 600_000);
});

describe("SIGKILL at every step of a deleting plan", () => {
  it("rm -f: the container is afterwards either whole (rolled back) or gone entirely (completed)", async () => {
    host.ok("net", "create", "--subnet", "10.252.9.0/24", "kbase");
    const kernel0 = host.kernel();
    const state0 = stateText();
    let total = Infinity;
    const outcomes = new Set<string>();
    for (let n = 0; n <= total + 1; n++) {
      const at = n === total + 1 ? "commit" : String(n);
      host.ok("run", "-d", "--net", "kbase", "--name", "kr");
      const kernel1 = host.kernel();
      const state1 = stateText();
      const p = await startPaused(["rm", "-f", "kr"], at);
      expect(p.pid, `rm did not pause at ${at}: ${p.stderr()}`).not.toBeNull();
      if (p.total >= 0) total = p.total;
      host.sh(["kill", "-KILL", p.pid!]);
      await p.exit;
      const fix = host.ctnet("doctor", "--fix");
      expect(fix.code, `doctor --fix after a kill at ${at}: ${fix.stdout}${fix.stderr}`).toBe(0);
      expect(journalFiles()).toEqual([]);
      expectAgree();
      if ("kr" in host.state().containers) {
        outcomes.add("whole");
        expect(stateText(), `state after a kill at ${at}`).toBe(state1);
        expect(host.kernel(), `kernel after a kill at ${at}`).toEqual(kernel1);
        host.ok("rm", "-f", "kr");
      } else {
        outcomes.add("gone");
      }
      expect(stateText()).toBe(state0);
      expect(settled(() => host.kernel(), kernel0), `kernel after a kill at ${at}`).toEqual(kernel0);
    }
    // both sides of the point of no return were reached
    expect([...outcomes].sort()).toEqual(["gone", "whole"]);
    host.ok("net", "rm", "kbase");
  }, 600_000);
});

describe("the journal", () => {
  /** The journal of `args` as written before its first step; the plan is then killed and rolled back. */
  async function journalOf(args: string[]): Promise<any> {
    const p = await startPaused(args, "0");
    expect(p.pid, p.stderr()).not.toBeNull();
    const journal = JSON.parse(fs.readFileSync(path.join(host.stateDir, "journal.json"), "utf8"));
    host.sh(["kill", "-KILL", p.pid!]);
    await p.exit;
    expect(host.ctnet("doctor", "--fix").code).toBe(0);
    return journal;
  }
  const generation = () => decodeState(fs.readFileSync(path.join(host.stateDir, "state.json"), "utf8")).generation!;

  it("holds the whole state only for a plan that deletes something no undo brings back", async () => {
    const before = generation();
    const run = await journalOf(["run", "-d", "--net", "base", "--name", "jr"]);
    expect(run.generation).toBe(before + 1);
    expect(run).not.toHaveProperty("after");
    host.ok("run", "-d", "--net", "base", "--name", "jr");
    const rm = await journalOf(["rm", "-f", "jr"]);
    expect(rm.generation).toBe(rm.after.generation);
    expect(rm.after.containers).not.toHaveProperty("jr");
    expect(Object.keys(host.state().containers)).toContain("jr");
    host.ok("rm", "-f", "jr");
    expectAgree();
  }, 60_000);
});

describe("doctor while another command is in the middle of its plan", () => {
  beforeAll(() => void host.ok("net", "create", "--subnet", "10.252.9.0/24", "mids"));
  afterAll(() => void host.ok("net", "rm", "mids"));

  it("waits for it to finish, and then finds nothing (none of its half-made container)", async () => {
    const p = await startPaused(["run", "-d", "--net", "mids", "--name", "mid"], "6");
    expect(p.pid, p.stderr()).not.toBeNull();
    const doctor = host.spawnCtnet(["doctor"]);
    let out = "";
    doctor.stdout!.on("data", (d) => (out += d));
    const code = new Promise<number>((resolve) => doctor.on("close", (c) => resolve(c ?? 128)));
    // doctor is waiting for the lock meanwhile (without it, it would be done and have reported the run)
    await new Promise((r) => setTimeout(r, 2_000));
    host.sh(["kill", "-TERM", p.pid!]);
    expect(await p.exit).toBe(1);
    expect([await code, out]).toEqual([0, expect.stringContaining("no differences")]);
  });

  it("that holds the lock longer is named, and doctor reads anyway", async () => {
    const p = await startPaused(["run", "-d", "--net", "mids", "--name", "mid"], "6");
    expect(p.pid, p.stderr()).not.toBeNull();
    const doc = host.ctnet("doctor");
    host.sh(["kill", "-TERM", p.pid!]);
    await p.exit;
    expect(doc.code).toBe(1);
    expect(doc.stdout).toContain(`read without the lock: timed out after 5 s waiting for another ctnet command to finish (pid ${p.pid}: `);
    // what the paused run made so far is there to see
    expect(doc.stdout).toMatch(/^\d+ differences?: 'ctnet doctor --fix' repairs them/m);
    expectAgree();
  });
});

describe("SIGINT and SIGTERM during a plan", () => {
  for (const sig of ["INT", "TERM"] as const) {
    it(`SIG${sig} rolls the plan back before ctnet exits`, async () => {
      const kernel0 = host.kernel();
      const state0 = stateText();
      const p = await startPaused(["run", "-d", "--net", "base", "--name", "sig"], "6");
      expect(p.pid).not.toBeNull();
      host.sh(["kill", `-${sig}`, p.pid!]);
      const code = await p.exit;
      expect(code).toBe(1);
      expect(p.stderr()).toMatch(new RegExp(`interrupted by SIG${sig}.*rolled back`));
      // no journal is left for the next command: ctnet cleaned up itself
      expect(journalFiles()).toEqual([]);
      expect(stateText()).toBe(state0);
      expect(host.kernel()).toEqual(kernel0);
      expectAgree();
    });
  }

  it("the hook is off by default: a plain run does not pause", () => {
    host.ok("run", "-d", "--net", "base", "--name", "plain");
    host.ok("rm", "-f", "plain");
  });
});
