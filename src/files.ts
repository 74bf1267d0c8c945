// The file steps of plans (the hosts and hostname files under /etc/netns, the shared hosts files of
// networks): written in place, so the bind mounts of running containers see each change.
import fs from "node:fs";

/** Writes through the existing inode so bind mounts (ip netns exec's /etc/hosts) see the change. */
export function writeInPlace(path: string, content: string | null): void {
  if (content === null) return removeNameFile(path);
  inDir(path, () => fs.writeFileSync(path, content));
}

/** Points `path` at `target` (replacing what was there), or removes it when target is null. */
export function linkInPlace(path: string, target: string | null): void {
  if (target === null) return removeNameFile(path);
  fs.rmSync(path, { force: true });
  inDir(path, () => fs.symlinkSync(target, path));
}

/** Runs `make` with path's directory present; another state dir may remove an emptied /etc/netns dir meanwhile. */
function inDir(path: string, make: () => void): void {
  for (let attempt = 0; ; attempt++) {
    fs.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    try {
      return make();
    } catch (err: any) {
      if (err.code !== "ENOENT" || attempt > 2) throw err;
    }
  }
}

/** Removes a file (or link) and, under /etc/netns, the directory it leaves empty. */
function removeNameFile(path: string): void {
  fs.rmSync(path, { force: true });
  const dir = path.slice(0, path.lastIndexOf("/"));
  try {
    if (dir.startsWith("/etc/netns/") && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
  } catch (err: any) {
    // gone already, or refilled by another ctnet between the two calls: either way not ours to remove
    if (!["ENOENT", "ENOTEMPTY"].includes(err.code)) throw err;
  }
}
