// The JSON store: one state file per state dir, written atomically (temp file, fsync, rename) with the
// previous good version kept beside it, and a lock file that serialises every mutating invocation.
import fs from "node:fs";
import path from "node:path";
import { OpError } from "./errors.js";
import { emptyState, type State } from "./model.js";

export const DEFAULT_STATE_DIR = "/var/lib/ctnet";
const LOCK_WAIT_MS = 60_000;

export function resolveStateDir(flag?: string): string {
  return path.resolve(flag ?? process.env.CTNET_STATE_DIR ?? DEFAULT_STATE_DIR);
}

/** Start time of a process (field 22 of /proc/PID/stat), or null when it is gone. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

export function processAlive(pid: number, start: string | null): boolean {
  const now = processStartTime(pid);
  return now !== null && (start === null || now === start);
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
export const sleepMs = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

export class Store {
  readonly file: string;
  readonly backup: string;
  readonly lockFile: string;
  readonly journalFile: string;
  readonly logDir: string;
  private locked = false;

  constructor(readonly dir: string) {
    this.file = path.join(dir, "state.json");
    this.backup = path.join(dir, "state.json.bak");
    this.lockFile = path.join(dir, "lock");
    this.journalFile = path.join(dir, "journal.json");
    this.logDir = path.join(dir, "logs");
  }

  /** Reads the state; a missing file is an empty state, a broken one is an error, never a silent reset. */
  read(): State {
    let text: string;
    try {
      text = fs.readFileSync(this.file, "utf8");
    } catch (err: any) {
      if (err.code === "ENOENT") return emptyState();
      throw new OpError(`cannot read state file ${this.file}: ${err.message}`);
    }
    try {
      const state = JSON.parse(text) as State;
      if (state?.version !== 1 || typeof state.networks !== "object" || typeof state.containers !== "object") {
        throw new Error("not a ctnet state (version 1)");
      }
      state.sysctls ??= {};
      return state;
    } catch (err: any) {
      throw new OpError(
        `state file ${this.file} is corrupt (${err.message}); the previous good version is ${this.backup} — ` +
          `inspect it, then copy it over the state file to restore`,
      );
    }
  }

  ensureDir(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.logDir, { recursive: true, mode: 0o700 });
  }

  write(state: State): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, "w", 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(state, null, 1) + "\n");
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // keep the last good version beside the new one: a hard link costs no copy
    try {
      fs.rmSync(this.backup, { force: true });
      fs.linkSync(this.file, this.backup);
    } catch (err: any) {
      if (err.code !== "ENOENT") throw err;
    }
    fs.renameSync(tmp, this.file);
  }

  /**
   * Takes the state dir's lock, waiting for other invocations. A lock left by a dead process (its pid
   * gone or reused) is broken at once.
   */
  lock(): void {
    this.ensureDir();
    const me = `${process.pid} ${processStartTime(process.pid)}`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(this.lockFile, me, { flag: "wx", mode: 0o600 });
        this.locked = true;
        return;
      } catch (err: any) {
        if (err.code !== "EEXIST") throw new OpError(`cannot create lock ${this.lockFile}: ${err.message}`);
      }
      this.breakStaleLock();
      if (Date.now() > deadline) {
        throw new OpError(`timed out waiting for the lock ${this.lockFile} (held by pid ${this.lockHolder() ?? "?"})`);
      }
      sleepMs(Math.min(5 + attempt * 2, 50) + Math.random() * 10);
    }
  }

  private lockHolder(): string | null {
    try {
      return fs.readFileSync(this.lockFile, "utf8");
    } catch {
      return null;
    }
  }

  private breakStaleLock(): void {
    const holder = this.lockHolder();
    if (holder === null) return;
    const [pid, start] = holder.split(" ");
    // a lock file still being written has no pid yet: leave it to its writer
    if (!pid || processAlive(Number(pid), start === "null" ? null : start)) return;
    const aside = `${this.lockFile}.stale.${process.pid}`;
    try {
      fs.renameSync(this.lockFile, aside);
      // another waiter may have replaced the stale lock with a live one between our read and rename
      if (fs.readFileSync(aside, "utf8") !== holder) fs.renameSync(aside, this.lockFile);
      else fs.rmSync(aside, { force: true });
    } catch {
      /* somebody else broke it first */
    }
  }

  unlock(): void {
    if (!this.locked) return;
    fs.rmSync(this.lockFile, { force: true });
    this.locked = false;
  }
}
