// Shared by the kill-at-every-step tests (crash.test.ts, crash-more.test.ts): the test hook
// CTNET_TEST_PAUSE_AFTER_STEP=N stops a plan after exactly N steps (batches are cut there, so every
// boundary is reachable) and waits for a signal; the tests SIGKILL ctnet there and check the repair.
import fs from "node:fs";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { decodeState } from "../../src/store/statefile.js";
import type { IsolatedHost } from "./isolated.js";

export interface Paused {
  child: ChildProcess;
  /** null when the plan ended before reaching the pause point */
  pid: string | null;
  total: number;
  stderr: () => string;
  exit: Promise<number>;
}

/** Starts ctnet with the pause hook; resolves once it is paused, or once it exited without pausing. */
export async function startPaused(host: IsolatedHost, args: string[], at: string, env: NodeJS.ProcessEnv = {}): Promise<Paused> {
  const child = host.spawnCtnet(args, { ...env, CTNET_TEST_PAUSE_AFTER_STEP: at });
  let err = "";
  const exit = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 128)));
  const paused = await new Promise<{ pid: string | null; total: number }>((resolve) => {
    child.stderr!.on("data", (d) => {
      err += d;
      const m = /test pause after step \S+(?: of (\d+))? \(pid (\d+)\)/.exec(err);
      if (m) resolve({ pid: m[2], total: Number(m[1] ?? -1) });
    });
    exit.then(() => resolve({ pid: null, total: -1 }));
  });
  return { child, ...paused, stderr: () => err, exit };
}

/** SIGKILLs a paused ctnet and waits until it is gone. */
export async function kill(host: IsolatedHost, p: Paused): Promise<void> {
  host.sh(["kill", "-KILL", p.pid!]);
  await p.exit;
}

export const journalFiles = (stateDir: string) => fs.readdirSync(stateDir).filter((f) => f.startsWith("journal"));

/**
 * The state as ctnet reads it (no file is the empty state), without the generation every saved plan counts
 * up and the record of the dirs ctnet made (the first command makes the logs dir).
 */
export function stateText(stateDir: string): string {
  const file = path.join(stateDir, "state.json");
  const { generation: _, madeDirs: _dirs, ...state } = fs.existsSync(file) ? decodeState(fs.readFileSync(file, "utf8")) : { version: 1, networks: {}, containers: {}, sysctls: {} };
  return JSON.stringify(state, null, 1);
}
