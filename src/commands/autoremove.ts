// `run -d --rm` without a daemon: the run plan starts a small watcher, in the host's namespaces and a
// session of its own (so neither the container's signals nor its namespace's process list reach it),
// that waits for the container's process to end and then removes the container with the ordinary rm
// plan — after `stop` too, as Docker does. It ends by itself when the container is removed first.
import { mutate, readState, type GlobalOptions } from "../plan/core.js";
import { LOCK_NAME, acquireLock } from "../store/lock.js";
import { planRm } from "./containers.js";
import { isRunning } from "./process.js";
import { Plan } from "../plan/plan.js";
import type { ContainerRecord, State } from "../model.js";

const POLL_MS = 250;

const byId = (state: State, id: string): ContainerRecord | undefined => Object.values(state.containers).find((c) => c.id === id);
const sleep = () => new Promise((resolve) => setTimeout(resolve, POLL_MS));

/**
 * The container as the run that spawned the watcher left it. That run holds the lock until it saved the
 * container or undid itself, so once the watcher gets the lock, a container that is absent is gone for
 * good (the run failed, or an `rm` came first) — polling without the lock missed an `rm` that followed
 * the run within one poll and then waited for a container that never came.
 */
async function afterRun(g: GlobalOptions, id: string): Promise<ContainerRecord | undefined> {
  // however long the wait: a watcher that gave up would leave its container behind
  const unlock = await acquireLock(`ctnet autoremove ${id.slice(0, 12)}: reading the state`, LOCK_NAME, Infinity);
  try {
    return byId(readState(g), id);
  } finally {
    unlock();
  }
}

export async function watchAndRemove(g: GlobalOptions, id: string): Promise<void> {
  let c = await afterRun(g, id);
  while (c && isRunning(c)) {
    await sleep();
    c = byId(readState(g), id);
  }
  if (!c) return;
  const stateDir = (await import("../plan/core.js")).openStore(g).dir;
  await mutate(g, (draft) => {
    const now = byId(draft, id);
    // removed meanwhile, or (pid recorded late) running after all: nothing for the watcher to do
    if (!now || isRunning(now)) return { plan: new Plan(`autoremove ${id.slice(0, 12)}: nothing to do`) };
    return { plan: planRm(draft, stateDir, [now.name], true) };
  });
}
