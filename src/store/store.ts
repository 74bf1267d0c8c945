// The JSON store: one state file per state dir, written atomically (temp file, fsync, rename) with the
// previous good version kept beside it. The lock that serialises every mutating invocation: lock.ts.
// What is in the file, and how a record is read only when used: statefile.ts.
import fs from "node:fs";
import path from "node:path";
import { OpError, UsageError } from "../errors.js";
import { emptyState, type State } from "../model.js";
import { decodeState, encodeState } from "./statefile.js";
import { acquireLock } from "./lock.js";

export const DEFAULT_STATE_DIR = "/var/lib/ctnet";

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

export class Store {
  readonly file: string;
  readonly backup: string;
  readonly journalFile: string;
  readonly logDir: string;
  private release: (() => void) | null = null;

  constructor(readonly dir: string) {
    this.file = path.join(dir, "state.json");
    this.backup = path.join(dir, "state.json.bak");
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

  /**
   * Makes the state dir and its logs dir, private to root, and returns the ones it made (relative to the
   * state dir, "." for itself). A directory that exists is used as it is: its mode is its owner's business
   * (CTNET_STATE_DIR=/tmp must not turn /tmp private); ctnet's files in it are private by their own mode.
   */
  ensureDir(): string[] {
    const made: string[] = [];
    for (const [dir, rel] of [[this.dir, "."], [this.logDir, "logs"]]) {
      if (fs.existsSync(dir)) continue;
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      // mkdir's mode passes through the umask
      fs.chmodSync(dir, 0o700);
      made.push(rel);
    }
    return made;
  }

  /**
   * Saves the state: complete and durable on disk before this returns, or an error and the previous state
   * left as it was. The text goes to a temp file (every byte checked, fsync), the previous version is
   * kept as the backup, the temp file is renamed over the state file and the directory fsynced. Space for
   * it can be claimed beforehand (reserve), so that a full disk stops a command before its plan runs.
   */
  write(state: State): void {
    const text = Buffer.from(encodeState(state));
    const tmp = this.tempFile();
    try {
      const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
      try {
        writeAll(fd, text);
        fs.ftruncateSync(fd, text.length);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (err: any) {
      fs.rmSync(tmp, { force: true });
      throw new OpError(`cannot save the state in ${this.dir}: ${err.code === "ENOSPC" ? "no space left on device" : err.message}`);
    }
    this.keepBackup();
    fs.renameSync(tmp, this.file);
    fsyncDir(this.dir);
  }

  /**
   * Claims `bytes` on disk for the next write (a temp file of that size), or fails with a one-line error
   * when the disk cannot hold them. The claim is used by write(), or dropped by unreserve().
   */
  reserve(bytes: number): void {
    const tmp = this.tempFile();
    try {
      const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
      try {
        writeAll(fd, Buffer.alloc(bytes));
      } finally {
        fs.closeSync(fd);
      }
    } catch (err: any) {
      fs.rmSync(tmp, { force: true });
      throw new OpError(`cannot save the state in ${this.dir}: ${err.code === "ENOSPC" ? "no space left on device" : err.message} (nothing was changed)`);
    }
  }

  /** Drops what reserve() claimed. */
  unreserve(): void {
    fs.rmSync(this.tempFile(), { force: true });
  }

  private tempFile(): string {
    return `${this.file}.${process.pid}.tmp`;
  }

  /**
   * The current state becomes the backup: a hard link (no copy), made aside and renamed over the old
   * backup, so a failure (a full directory) keeps the older backup rather than none.
   */
  private keepBackup(): void {
    const aside = `${this.backup}.${process.pid}.tmp`;
    try {
      fs.rmSync(aside, { force: true });
      fs.linkSync(this.file, aside);
      fs.renameSync(aside, this.backup);
    } catch {
      fs.rmSync(aside, { force: true });
    }
  }

  /**
   * Takes the lock (see lock.ts), making the state dir if needed; returns the directories it made. Files a
   * killed command left half-written are removed: with the lock held, no one else is writing them.
   */
  async lock(who: string): Promise<string[]> {
    const made = this.ensureDir();
    this.release = await acquireLock(who);
    for (const f of fs.readdirSync(this.dir)) if (LEFTOVER.test(f)) fs.rmSync(path.join(this.dir, f), { force: true });
    return made;
  }

  unlock(): void {
    this.release?.();
    this.release = null;
  }
}

/** Temp files of ctnet's own writes (and an older ctnet's lock files), left by a command that was killed. */
const LEFTOVER = /^(state\.json(\.bak)?\.\d+\.tmp|journal(\.progress)?\.json\.tmp|lock\.\d+\.tmp|lock\.break-.*)$/;

/** Writes all of `data` at the start of the file: a short write is continued, and a full disk is an error. */
function writeAll(fd: number, data: Buffer): void {
  for (let done = 0; done < data.length; ) {
    const n = fs.writeSync(fd, data, done, data.length - done, done);
    if (n <= 0) throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    done += n;
  }
}

/** Makes a rename in `dir` durable. */
function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
