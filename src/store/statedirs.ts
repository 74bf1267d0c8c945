// The state dirs in use on this host: several may share one network namespace (--state-dir, labs, tests),
// and doctor and reset of one must leave alone what another's state explains. Kept in /run, cleared on
// reboot like the kernel objects it describes, and keyed by the network namespace (the inode of
// /proc/self/ns/net), so private hosts made with unshare do not see each other's:
//   /run/ctnet/<netns inode>/<sha256 of the dir's path>  the dir's path
//   /run/ctnet/<netns inode>/ip_forward                  forwarding as it was before ctnet turned it on,
//                                                        handed over by a dir whose last network went
//                                                        while another dir's networks still needed it
// Every mutating command of the namespace holds the same lock (lock.ts), so updates never race. Nothing
// here follows a link: /run/ctnet and its entries are made 0700/0600, and one planted in their place is
// refused.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pendingPlan } from "../plan/executor.js";
import { Store } from "./store.js";
import type { State, SysctlChange } from "../model.js";

const ROOT = "/run/ctnet";
const { O_RDONLY, O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

function registryDir(): string {
  const ns = /^net:\[(\d+)\]$/.exec(fs.readlinkSync("/proc/self/ns/net"))?.[1];
  if (!ns) throw new Error("cannot tell this process's network namespace from /proc/self/ns/net");
  return path.join(ROOT, ns);
}

const canonical = (dir: string) => {
  try {
    return fs.realpathSync.native(dir);
  } catch {
    return path.resolve(dir);
  }
};

const entryFile = (dir: string) => path.join(registryDir(), crypto.createHash("sha256").update(canonical(dir)).digest("hex"));

/** Makes `dir` (0700) unless it is there; anything but a directory of ours in its place is refused. */
function ensureDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err: any) {
    if (err.code !== "EEXIST") throw err;
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.()) throw new Error(`${dir} is not a directory of ctnet's: remove it`);
}

function writePrivate(file: string, content: string): void {
  ensureDir(ROOT);
  ensureDir(path.dirname(file));
  const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK, 0o600);
  try {
    if (!fs.fstatSync(fd).isFile()) throw new Error(`${file} is not a plain file: remove it`);
    fs.writeFileSync(fd, content);
  } finally {
    fs.closeSync(fd);
  }
}

function readPrivate(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    return fs.fstatSync(fd).isFile() ? fs.readFileSync(fd, "utf8") : null;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Unlists one dir, and its namespace's directory once empty. /run/ctnet itself stays (empty, gone at
 * reboot): private hosts mount a tmpfs of their own on it (examples/overlay.sh, the tests), and an rmdir
 * here would succeed on their mount point and detach it, sending their entries into this host's list.
 */
function remove(file: string): void {
  try {
    fs.unlinkSync(file);
    fs.rmdirSync(path.dirname(file));
  } catch {
    /* gone already, or the namespace's directory still lists others */
  }
}

const inUse = (state: State) => Object.keys(state.networks).length > 0 || Object.keys(state.containers).length > 0;

/** What a command of one dir hands over for the last of any dir's networks to restore (see bridge.ts). */
const forwardingChanges = new WeakMap<State, { handOver?: SysctlChange; consumed?: boolean }>();

export function handOverForwarding(state: State, record: SysctlChange): void {
  forwardingChanges.set(state, { handOver: record });
}

/** The forwarding record another dir handed over, if any; `state`'s save then removes it. */
export function takeHandedOverForwarding(state: State): SysctlChange | null {
  const text = readPrivate(path.join(registryDir(), "ip_forward"));
  if (text === null) return null;
  try {
    const record = JSON.parse(text) as SysctlChange;
    forwardingChanges.set(state, { consumed: true });
    return record;
  } catch {
    return null;
  }
}

/**
 * After `state` is saved in `dir` (`removed`: reset removed it): lists the dir while it has a network or
 * container, and writes or removes the forwarding record its command handed over or took. One existsSync
 * in the common case: every command that changes something calls it.
 */
export function syncRegistry(dir: string, state: State, o: { removed?: boolean } = {}): void {
  const fwd = forwardingChanges.get(state);
  forwardingChanges.delete(state);
  try {
    const file = entryFile(dir);
    const listed = fs.existsSync(file);
    const wanted = !o.removed && inUse(state);
    if (wanted && !listed) writePrivate(file, `${canonical(dir)}\n`);
    else if (!wanted && listed) remove(file);
    if (fwd?.handOver) writePrivate(path.join(registryDir(), "ip_forward"), JSON.stringify(fwd.handOver));
    else if (fwd?.consumed) remove(path.join(registryDir(), "ip_forward"));
  } catch (err: any) {
    // the command's work is done and saved: only other dirs' doctor and reset lose sight of this one
    process.stderr.write(`ctnet: warning: cannot update the state dirs listed in ${ROOT}: ${err.message}; doctor and reset of another state dir may take this one's objects for orphans\n`);
  }
}

export interface OtherStateDir {
  dir: string;
  /** null: it cannot be read, or a plan of it is unfinished (`problem` says which): it explains nothing for sure */
  state: State | null;
  problem?: string;
}

/** The other state dirs listed in this network namespace; those gone (no state file) are unlisted. */
export function otherStateDirs(ownDir: string): OtherStateDir[] {
  const own = canonical(ownDir);
  let names: string[] = [];
  try {
    names = fs.readdirSync(registryDir()).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return [];
  }
  const out: OtherStateDir[] = [];
  for (const name of names) {
    const file = path.join(registryDir(), name);
    const dir = readPrivate(file)?.trim();
    if (!dir || dir === own) continue;
    const store = new Store(dir);
    if (!fs.existsSync(store.file)) {
      remove(file);
      continue;
    }
    try {
      const pending = pendingPlan(store);
      if (pending) {
        out.push({ dir, state: null, problem: `a plan of it ("${pending.title}") is unfinished` });
        continue;
      }
      const state = store.read();
      // a decoded state reads its records lazily: read them all now, so that a broken one shows here
      Object.values(state.containers);
      out.push({ dir, state });
    } catch (err: any) {
      out.push({ dir, state: null, problem: err.message.split(";")[0] });
    }
  }
  return out;
}
