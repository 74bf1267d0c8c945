// Processes in the foreground: `run` without -d and `exec` hand the terminal to the container's process
// and return its exit code; `logs` prints what a detached process wrote.
import fs from "node:fs";
import { UsageError } from "../errors.js";
import { mutate, openStore, readState, type GlobalOptions } from "../plan/core.js";
import { isRunning, logPath, parseEnv, planRm, planRun, recordProcess, type RunOptions } from "./containers.js";
import { findContainer } from "./networks.js";
import { Plan, shJoin } from "../plan/plan.js";
import { processArgv } from "../host/sandbox.js";
import { processStartTime } from "../store/store.js";

export async function runContainer(g: GlobalOptions, o: RunOptions): Promise<number> {
  const stateDir = openStore(g).dir;
  let argv: string[] = [];
  let name = "";
  let id = "";
  let warnings: string[] = [];
  await mutate(g, (draft) => {
    const planned = planRun(draft, stateDir, o);
    argv = planned.argv;
    name = planned.container.name;
    id = planned.container.id;
    warnings = planned.warnings;
    return { plan: planned.plan, commit: (spawned) => recordProcess(planned.container, spawned.get(name)) };
  });
  for (const w of warnings) process.stderr.write(`ctnet: warning: ${w}\n`);
  if (g.dryRun) {
    if (!o.detach) process.stdout.write(`\n# then, in the foreground:\n${shJoin(argv)}\n`);
    return 0;
  }
  if (o.detach) {
    console.log(id);
    return 0;
  }
  const code = await foreground(argv, !!o.interactive, async (pid) => {
    await mutate(g, (draft) => {
      recordProcess(draft.containers[name], { pid, start: processStartTime(pid) });
      return { plan: new Plan(`record ${name}`) };
    });
  });
  await mutate(g, (draft) => {
    const c = draft.containers[name];
    if (!c) return { plan: new Plan(`${name} is gone`) };
    if (o.rm) return { plan: planRm(draft, stateDir, [name], true) };
    recordProcess(c, undefined);
    return { plan: new Plan(`record ${name} exited`) };
  });
  return code;
}

/** Runs argv with the terminal attached; ctnet ignores Ctrl-C meanwhile so the process gets it alone. */
async function foreground(argv: string[], stdin: boolean, started: (pid: number) => Promise<void>): Promise<number> {
  const { spawn } = await import("node:child_process");
  const ignore = () => {};
  process.on("SIGINT", ignore);
  try {
    const child = spawn(argv[0], argv.slice(1), { stdio: [stdin ? "inherit" : "ignore", "inherit", "inherit"] });
    const exit = new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => resolve(code ?? 128 + (signal === "SIGKILL" ? 9 : 15)));
    });
    if (child.pid) await started(child.pid);
    return await exit;
  } finally {
    process.off("SIGINT", ignore);
  }
}

export async function execInContainer(g: GlobalOptions, name: string, cmd: string[], o: { interactive?: boolean; env?: string[] }): Promise<number> {
  const state = readState(g);
  const c = findContainer(state, name);
  if (!isRunning(c)) throw new UsageError(`container ${c.name} is not running`);
  return foreground(processArgv(state, c, cmd, parseEnv(o.env), false), !!o.interactive, async () => {});
}

export function printLogs(g: GlobalOptions, name: string): void {
  const store = openStore(g);
  const c = findContainer(store.read(), name);
  try {
    process.stdout.write(fs.readFileSync(logPath(store.dir, c.name)));
  } catch (err: any) {
    if (err.code !== "ENOENT") throw err;
  }
}
