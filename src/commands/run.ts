// Processes in the foreground: `run` without -d and `exec` hand the terminal to the container's process
// and return its exit code; `logs` prints what a detached process wrote. `create` ends here too.
import fs from "node:fs";
import { UsageError } from "../errors.js";
import { mutate, openStore, readState, type GlobalOptions } from "../plan/core.js";
import { parseEnv, planRm, planRun, type RunOptions } from "./containers.js";
import { isRunning, logPath, recordProcess } from "./process.js";
import { planExited } from "./lifecycle.js";
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
    return {
      plan: planned.plan,
      commit: (spawned) => {
        recordProcess(planned.container, spawned.get(name));
        if (o.detach) planned.container.startedAt = new Date().toISOString();
      },
    };
  });
  for (const w of warnings) process.stderr.write(`ctnet: warning: ${w}\n`);
  if (g.dryRun) {
    if (!o.detach) process.stdout.write(`\n# then, in the foreground:\n${shJoin(argv)}\n`);
    return 0;
  }
  if (o.detach || o.create) {
    console.log(id);
    return 0;
  }
  const code = await foreground(argv, !!o.interactive, async (pid) => {
    await mutate(g, (draft) => {
      recordProcess(draft.containers[name], { pid, start: processStartTime(pid) });
      draft.containers[name].startedAt = new Date().toISOString();
      return { plan: new Plan(`record ${name}`) };
    });
  });
  await mutate(g, (draft) => {
    const c = draft.containers[name];
    if (!c) return { plan: new Plan(`${name} is gone`) };
    if (o.rm) return { plan: planRm(draft, stateDir, [name], true) };
    // ctnet saw it end: its exit is recorded and its endpoints released, as Docker's daemon does
    return { plan: planExited(draft, c, code) };
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

export interface LogOptions {
  follow?: boolean;
  /** a number of lines, or "all" */
  tail?: string;
  since?: string;
  timestamps?: boolean;
}

/**
 * `logs`: what the container's process wrote (stdout and stderr, as one file), the last --tail lines of
 * it; with -f, then what it writes until its process ends. --since and --timestamps are refused: without
 * a daemon reading the output, the log holds no time per line.
 */
export async function printLogs(g: GlobalOptions, name: string, o: LogOptions = {}): Promise<void> {
  for (const [flag, given] of [["--since", o.since !== undefined], ["--timestamps", !!o.timestamps]] as const) {
    if (given) throw new UsageError(`logs ${flag}: ctnet's logs hold no time per line (no daemon reads the output to stamp it); use --tail`);
  }
  const tail = o.tail === undefined || o.tail === "all" ? Infinity : /^\d+$/.test(o.tail) ? Number(o.tail) : NaN;
  if (Number.isNaN(tail)) throw new UsageError(`invalid --tail ${JSON.stringify(o.tail)}: a number of lines, or all`);
  const store = openStore(g);
  const c = findContainer(store.read(), name);
  const file = logPath(store.dir, c.name);
  let text: Buffer;
  try {
    text = fs.readFileSync(file);
  } catch (err: any) {
    if (err.code !== "ENOENT") throw err;
    text = Buffer.alloc(0);
  }
  process.stdout.write(tail === Infinity ? text : lastLines(text, tail));
  if (!o.follow) return;
  let offset = text.length;
  const more = () => {
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return;
    }
    if (size <= offset) return;
    const fd = fs.openSync(file, "r");
    try {
      const chunk = Buffer.alloc(size - offset);
      fs.readSync(fd, chunk, 0, chunk.length, offset);
      offset = size;
      process.stdout.write(chunk);
    } finally {
      fs.closeSync(fd);
    }
  };
  while (isRunning(c)) {
    more();
    await new Promise((r) => setTimeout(r, 100));
  }
  more();
}

/** The last `n` lines of a log (a final line without a newline counts). */
function lastLines(text: Buffer, n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  let end = text.length;
  if (end > 0 && text[end - 1] === 0x0a) end--;
  let at = end;
  for (let seen = 0; at > 0; at--) {
    if (text[at - 1] === 0x0a && ++seen === n) break;
  }
  return text.subarray(at);
}
