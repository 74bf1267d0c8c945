// The JSON store: one state file per state dir, written atomically (temp file, fsync, rename) with the
// previous good version kept beside it, and a lock file that serialises every mutating invocation.
// What is in the file, and how a record is read only when used: statefile.ts.
import fs from "node:fs";
import path from "node:path";
import { OpError, UsageError } from "./errors.js";
import { emptyState, type State } from "./model.js";
import { decodeState, encodeState } from "./statefile.js";
import { readOrNull } from "./sys.js";

export const DEFAULT_STATE_DIR = "/var/lib/ctnet";
const LOCK_WAIT_MS = 60_000;

export function resolveStateDir(flag?: string): string {
  // an empty flag would resolve to the working directory: refuse it rather than write state there
  if (flag === "") throw new UsageError("--state-dir must not be empty");
  return path.resolve(flag ?? (process.env.CTNET_STATE_DIR || DEFAULT_STATE_DIR));
}

/** /proc/PID/stat after the command name: [0] is the state, [19] the start time; null when gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** Start time of a process (field 22 of /proc/PID/stat), or null when it is gone. */
export function processStartTime(pid: number): string | null {
  return statFields(pid)?.[19] ?? null;
}

/** Whether pid is still the process that started at `start`; a zombie (exited, not yet reaped) is not. */
export function processAlive(pid: number, start: string | null): boolean {
  const fields = statFields(pid);
  return fields !== null && fields[0] !== "Z" && (start === null || fields[19] === start);
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
      if (err.code === "EACCES") throw new OpError(`cannot read state file ${this.file}: permission denied (ctnet's state is private to root: use sudo)`);
      throw new OpError(`cannot read state file ${this.file}: ${err.message}`);
    }
    const corrupt = (err: Error) =>
      new OpError(
        `state file ${this.file} is corrupt (${err.message}); the previous good version is ${this.backup} — ` +
          `inspect it, then copy it over the state file to restore`,
      );
    try {
      return decodeState(text, corrupt);
    } catch (err: any) {
      throw corrupt(err);
    }
  }

  ensureDir(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.logDir, { recursive: true, mode: 0o700 });
    // a directory made beforehand (mkdir under umask 022) would expose logs and state: keep both private
    for (const dir of [this.dir, this.logDir]) if ((fs.statSync(dir).mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
  }

  write(state: State): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, "w", 0o600);
    try {
      fs.writeSync(fd, encodeState(state));
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
      if (createWithContent(this.lockFile, me)) {
        this.locked = true;
        return;
      }
      breakIfStale(this.lockFile);
      if (Date.now() > deadline) {
        throw new OpError(`timed out waiting for the lock ${this.lockFile} (held by pid ${this.lockHolder() ?? "?"})`);
      }
      sleepMs(Math.min(5 + attempt * 2, 50) + Math.random() * 10);
    }
  }

  private lockHolder(): string | null {
    return readOrNull(this.lockFile);
  }

  unlock(): void {
    if (!this.locked) return;
    fs.rmSync(this.lockFile, { force: true });
    this.locked = false;
  }
}

/**
 * Creates `file` holding `content`, or returns false when it exists. The content is written to a
 * private temp file first and linked into place, so nobody ever sees the file empty: a holder killed
 * between create and write would otherwise leave a lock no one can judge.
 */
function createWithContent(file: string, content: string): boolean {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (err: any) {
    if (err.code === "EEXIST") return false;
    throw new OpError(`cannot create lock ${file}: ${err.message}`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Removes `file` (a lock: "PID START") if its holder is dead. Two waiters may find the same dead
 * holder; removing by name would let the slower one delete the lock the faster one just took. So a
 * breaker first claims the right to break this holder's lock with a token named after the holder
 * (created exclusively, so one breaker wins), re-reads the lock, and only removes it if the dead holder
 * still owns it. A breaker that dies holding a token is itself a dead holder: its token is broken the
 * same way.
 */
function breakIfStale(file: string): void {
  const holder = readOrNull(file);
  if (holder === null) return;
  const [pid, start] = holder.split(" ");
  if (!/^\d+$/.test(pid ?? "") || processAlive(Number(pid), start === "null" ? null : start ?? null)) return;
  const token = `${file}.break-${pid}-${start}`;
  if (!createWithContent(token, `${process.pid} ${processStartTime(process.pid)}`)) {
    breakIfStale(token);
    return;
  }
  try {
    if (readOrNull(file) === holder) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(token, { force: true });
  }
}
