// The lock every mutating command holds from before it reads its state until after it saved it.
//
// It is an abstract unix socket (@ctnet/lock), not a file: the kernel releases it when its holder dies,
// however it dies; nobody can unlink it from under its holder (deleting a lock file let a second command
// in, and the first then saved a stale state over the second's); and it needs no disk space, so reset
// and doctor work on a full disk. Abstract sockets belong to a network namespace, as every kernel object
// ctnet manages does: the lock serialises all of ctnet's commands in one network namespace (one host),
// whatever their state dir. Two state dirs thus never plan against the same kernel at once: the base
// chains they share, the free subnets and the free names are read and changed by one command at a time.
import net from "node:net";
import { OpError } from "../errors.js";

export const LOCK_NAME = "ctnet/lock";
const WAIT_MS = 60_000;

/** Asks the holder of an abstract socket who it is (the lock's answers with its pid and command); null when nobody answers. */
export function holder(name: string): Promise<string | null> {
  return new Promise((resolve) => {
    let answer = "";
    const conn = net.connect({ path: `\0${name}` });
    conn.setTimeout(500, () => conn.destroy());
    conn.on("data", (d) => (answer += d));
    conn.on("error", () => resolve(null));
    conn.on("close", () => resolve(answer.trim() || null));
  });
}

/**
 * Takes the lock, waiting (up to `waitMs`, a minute unless said) for another command to let go; returns
 * the function that lets go. `who` is what a waiting command is told about this holder.
 */
export async function acquireLock(who: string, name = LOCK_NAME, waitMs = WAIT_MS): Promise<() => void> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    const release = await tryHold(name, `pid ${process.pid}: ${who}\n`);
    if (release) return release;
    if (Date.now() > deadline) {
      throw new OpError(`timed out after ${waitMs / 1000} s waiting for another ctnet command to finish (${(await holder(name)) ?? "holder unknown"})`);
    }
    await new Promise((r) => setTimeout(r, Math.min(5 + attempt * 2, 50) + Math.random() * 10));
  }
}

/**
 * Takes abstract socket @name if nobody holds it, answering whoever connects with `answer`; returns the
 * function that lets go, or null when it is held. It does not keep the process alive.
 */
export async function tryHold(name: string, answer: string): Promise<(() => void) | null> {
  const server = net.createServer((conn) => conn.end(answer));
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    server.once("error", resolve);
    server.listen({ path: `\0${name}` }, () => resolve(null));
  });
  if (err?.code === "EADDRINUSE") return null;
  if (err) throw new OpError(`cannot take @${name}: ${err.message}`);
  // nor its holder's answers delay its exit
  server.unref();
  return () => server.close();
}
