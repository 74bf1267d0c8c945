// The name files ctnet writes (a container's hosts, hostname and resolv.conf under /etc/netns, the DNS
// server's files in the state dir): read when plans are made, written by their steps. Writes stay in place
// (same inode), so the bind mounts of running containers see each change. No link is followed: one planted
// there (to /etc/shadow, say) would otherwise be written through, or its target deleted.
import fs from "node:fs";
import path from "node:path";
import { UsageError } from "../errors.js";

const { O_RDONLY, O_WRONLY, O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fs.constants;

/**
 * The link ctnet made before names moved to the DNS server: a container's hosts file to its network's
 * shared one in this dir. Still recognised, so that containers made then can be removed.
 */
const OLD_NETWORK_HOSTS_DIR = "/etc/netns/.ctnet-hosts";
function isCtnetLink(file: string, target: string): boolean {
  return /^\/etc\/netns\/[^/]+\/hosts$/.test(file) && path.dirname(file) !== OLD_NETWORK_HOSTS_DIR
    && path.dirname(target) === OLD_NETWORK_HOSTS_DIR && /^[^/]+\.hosts$/.test(path.basename(target)) && path.normalize(target) === target;
}

/** What is at a name file's path; "foreign" says what is wrong (and names the path). */
export type NameFile =
  | { kind: "absent" }
  | { kind: "file"; content: string }
  | { kind: "link"; target: string }
  | { kind: "foreign"; problem: string };

/** The problem with `st` at `file` when ctnet is to write or remove a plain file there, or null. */
function problemOf(file: string, st: fs.Stats, linkAllowed: boolean): string | null {
  if (st.isSymbolicLink()) {
    const target = linkTarget(file);
    return linkAllowed && target !== null && isCtnetLink(file, target) ? null : `${file} is a symbolic link ctnet did not make (to ${target}): remove it`;
  }
  if (!st.isFile()) return `${file} is not a plain file: remove it`;
  // a second name of a file elsewhere on the same file system would be written through as surely
  if (st.nlink > 1) return `${file} has ${st.nlink - 1} other hard link(s) ctnet did not make: remove it`;
  return null;
}

/** Where a symbolic link points, or null when `file` is not one (or does not exist). */
export function linkTarget(file: string): string | null {
  try {
    return fs.readlinkSync(file);
  } catch {
    return null;
  }
}

/** /etc/netns/NAME (or the shared hosts dir) must not be a link to a directory elsewhere. */
function dirProblem(dir: string): string | null {
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  return st?.isSymbolicLink() ? `${dir} is a symbolic link ctnet did not make (to ${linkTarget(dir)}): remove it` : null;
}

/** A name file as it is on disk, nothing followed. For doctor and reset, which report what they cannot use. */
export function inspectNameFile(file: string): NameFile {
  const bad = dirProblem(path.dirname(file));
  if (bad) return { kind: "foreign", problem: bad };
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(file, { throwIfNoEntry: false });
  } catch (err: any) {
    // a plain file in place of the directory: nothing to follow; the step that makes the directory fails
    if (err.code !== "ENOTDIR") throw err;
  }
  if (!st) return { kind: "absent" };
  const problem = problemOf(file, st, true);
  if (problem) return { kind: "foreign", problem };
  if (st.isSymbolicLink()) return { kind: "link", target: fs.readlinkSync(file) };
  const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    return { kind: "file", content: fs.readFileSync(fd, "utf8") };
  } finally {
    fs.closeSync(fd);
  }
}

/** The content of a name file (null: absent, or ctnet's link), for planning: anything foreign is bad input. */
export function readNameFile(file: string): string | null {
  const now = inspectNameFile(file);
  if (now.kind === "foreign") throw new UsageError(now.problem);
  return now.kind === "file" ? now.content : null;
}

/** The target of ctnet's link at `file` (null: none there), for planning: anything foreign is bad input. */
export function readNameLink(file: string): string | null {
  const now = inspectNameFile(file);
  if (now.kind === "foreign") throw new UsageError(now.problem);
  return now.kind === "link" ? now.target : null;
}

// ---- the steps -------------------------------------------------------------------------------------

/** Writes through the existing inode so bind mounts (ip netns exec's /etc/hosts) see the change. */
export function writeInPlace(file: string, content: string | null): void {
  if (content === null) return removeNameFile(file);
  inDir(file, true, (entry) => {
    // O_NONBLOCK: a fifo planted there fails the open instead of hanging; truncated only once checked
    const fd = fs.openSync(entry, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o644);
    try {
      const problem = problemOf(file, fs.fstatSync(fd), false);
      if (problem) throw new Error(problem);
      fs.ftruncateSync(fd, 0);
      fs.writeFileSync(fd, content);
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** Points `file` at `target` (replacing ctnet's file or link there), or removes it when target is null. */
export function linkInPlace(file: string, target: string | null): void {
  if (target === null) return removeNameFile(file);
  inDir(file, true, (entry) => {
    removeEntry(file, entry);
    fs.symlinkSync(target, entry);
  });
}

/** Removes a file (or ctnet's link) and, under /etc/netns, the directory it leaves empty. */
export function removeNameFile(file: string): void {
  const emptied = inDir(file, false, (entry) => {
    removeEntry(file, entry);
    return fs.readdirSync(path.dirname(entry)).length === 0;
  });
  const dir = path.dirname(file);
  try {
    if (emptied && dir.startsWith("/etc/netns/")) fs.rmdirSync(dir);
  } catch (err: any) {
    // gone already, or refilled by another ctnet between the two calls: either way not ours to remove
    if (!["ENOENT", "ENOTEMPTY"].includes(err.code)) throw err;
  }
}

function removeEntry(file: string, entry: string): void {
  const st = fs.lstatSync(entry, { throwIfNoEntry: false });
  if (!st) return;
  // removing a hard link leaves the file's other names as they are
  const problem = st.isFile() ? null : problemOf(file, st, true);
  if (problem) throw new Error(problem);
  fs.unlinkSync(entry);
}

/**
 * Runs `act` on /proc/self/fd/N/NAME, N being `file`'s directory opened without following a link: what
 * openat(2) does, so that directory cannot be swapped for a link between the check and the act. `create`:
 * makes the directory first (another state dir may remove an emptied one meanwhile: retried); otherwise a
 * missing directory means nothing to do (undefined).
 */
function inDir<T>(file: string, create: boolean, act: (entry: string) => T): T | undefined {
  const dir = path.dirname(file);
  for (let attempt = 0; ; attempt++) {
    if (create) {
      try {
        fs.mkdirSync(dir, { recursive: true });
      } catch (err: any) {
        if (err.code !== "EEXIST") throw err; // a dangling link in its place: the open below names it
      }
    }
    let fd: number;
    try {
      fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (err: any) {
      if (err.code === "ENOENT" && !create) return undefined;
      if (err.code === "ENOENT" && attempt < 3) continue;
      throw new Error(dirProblem(dir) ?? (err.code === "ENOTDIR" ? `${dir} is not a directory` : err.message));
    }
    const entry = `/proc/self/fd/${fd}/${path.basename(file)}`;
    try {
      return act(entry);
    } catch (err: any) {
      if (err.code === "ENOENT" && create && attempt < 3) continue; // its directory was removed after the open
      if (err.code === "ELOOP") throw new Error(`${file} is a symbolic link ctnet did not make (to ${linkTarget(file)}): remove it`);
      if (typeof err.message === "string") err.message = err.message.replaceAll(entry, file);
      throw err;
    } finally {
      fs.closeSync(fd);
    }
  }
}
