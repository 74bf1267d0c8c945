// Issue 14, robustness: SIGKILL at every step of the plans that change the DNS server (its files, its
// start, its signal, its stop), in a private host. After each kill the next command recovers the plan,
// and then what the server answers agrees with the state: a name is answered exactly when its container
// is in the state, doctor finds nothing wrong, and the server runs exactly when a user network has a
// container. A rolled-back run leaves no name behind in the server's memory (the undo of the check that
// it runs signals it once its files are back).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IsolatedHost } from "./isolated.js";
import { journalFiles, kill, startPaused } from "./killpoints.js";

let h: IsolatedHost;
beforeAll(async () => {
  h = await IsolatedHost.start();
  h.ok("net", "create", "--subnet", "10.253.1.0/24", "red");
});
afterAll(async () => {
  await h?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const inState = (name: string) => name in h.state().containers;
const serverRuns = () => h.sh(["pgrep", "-x", "aardvark-dns"]).code === 0;
/** NOERROR with an answer, or NXDOMAIN, from the DNS server as `from` asks it (-q: "b" is no record type). */
function answers(from: string, name: string): boolean | null {
  const out = h.inNs(from, "dig", "+tries=2", "+time=1", "-q", name).stdout;
  if (/status: NXDOMAIN/.test(out)) return false;
  if (/status: NOERROR/.test(out) && /ANSWER: [1-9]/.test(out)) return true;
  return null;
}
async function settled(from: string, name: string, want: boolean): Promise<boolean | null> {
  let got = answers(from, name);
  for (let i = 0; i < 20 && got !== want; i++, await sleep(100)) got = answers(from, name);
  return got;
}

/** Kills `args` at every step (and at "commit"), lets the next command recover, checks, tears down. */
async function killEverywhere(setup: string[][], args: string[], check: () => Promise<string[]>, teardown: () => void): Promise<string[]> {
  const failures: string[] = [];
  let total = Infinity;
  for (let n = 0; n <= total + 1; n++) {
    const at = n === total + 1 ? "commit" : String(n);
    setup.forEach((c) => h.ok(...c));
    const p = await startPaused(h, args, at);
    if (p.pid === null) {
      failures.push(`${args.join(" ")} did not pause at ${at}: ${p.stderr()}`);
      break;
    }
    if (p.total >= 0) total = p.total;
    await kill(h, p);
    // any command recovers the interrupted plan first; this one then refuses its input
    const next = h.ctnet("stop", "nosuch");
    const problems: string[] = [];
    if (!next.stderr.includes("recovered the interrupted plan")) problems.push(`not recovered: ${next.stderr.trim()}`);
    if (journalFiles(h.stateDir).length > 0) problems.push("journal left");
    problems.push(...(await check()));
    const doctor = h.ctnet("doctor").stdout.split("\n").filter((l) => l && !l.startsWith("sysctl ") && !/^no differences|^\d+ differences?:/.test(l));
    problems.push(...doctor.map((l) => `doctor: ${l}`));
    if (problems.length > 0) failures.push(`killed after step ${at} of ${total}:\n  ${problems.join("\n  ")}`);
    teardown();
  }
  return failures;
}

describe("SIGKILL at every step of the DNS server's changes", () => {
  it("run on a network whose server runs (check, file, signal), and rm of that container", async () => {
    h.ok("run", "-d", "--net", "red", "--name", "a");
    // after each repair: a asks for b, and the answer follows the state; then b goes for the next round
    const bAnswersAsInState = async () => {
      const want = inState("b");
      const got = await settled("a", "b", want);
      return got === want ? [] : [`b is ${want ? "" : "not "}in the state, but the DNS server answers ${got === null ? "nothing" : got ? "its name" : "NXDOMAIN"}`];
    };
    const removeB = () => {
      if (inState("b")) h.ok("rm", "-f", "b");
    };
    const runFailures = await killEverywhere([], ["run", "-d", "--net", "red", "--name", "b"], bAnswersAsInState, removeB);
    expect(runFailures).toEqual([]);
    const rmFailures = await killEverywhere([["run", "-d", "--net", "red", "--name", "b"]], ["rm", "-f", "b"], bAnswersAsInState, removeB);
    expect(rmFailures).toEqual([]);
    h.ok("rm", "-f", "a");
  });

  it("the first run on a user network (the server started) and the last rm (the server stopped)", async () => {
    const check = async () => (serverRuns() === inState("a") ? [] : [`a is ${inState("a") ? "" : "not "}in the state, but the DNS server ${serverRuns() ? "runs" : "does not run"}`]);
    const teardown = () => {
      if (inState("a")) h.ok("rm", "-f", "a");
    };
    expect(await killEverywhere([], ["run", "-d", "--net", "red", "--name", "a"], check, teardown)).toEqual([]);
    expect(await killEverywhere([["run", "-d", "--net", "red", "--name", "a"]], ["rm", "-f", "a"], check, teardown)).toEqual([]);
  });
});
