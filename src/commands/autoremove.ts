// `run -d --rm` without a daemon: the run plan starts a small watcher, in the host's namespaces and a
// session of its own (so neither the container's signals nor its namespace's process list reach it),
// that waits for the container's process to end and then removes the container with the ordinary rm
// plan — after `stop` too, as Docker does. It ends by itself when the container is removed first.
import { mutate, readState, type GlobalOptions } from "../plan/core.js";
import { planRm } from "./containers.js";
import { isRunning } from "./process.js";
import { Plan } from "../plan/plan.js";
import type { ContainerRecord, State } from "../model.js";

const POLL_MS = 250;
/** the run plan saves the container once all its steps are done; a run that fails kills the watcher */
const APPEAR_WITHIN_MS = 120_000;

const byId = (state: State, id: string): ContainerRecord | undefined => Object.values(state.containers).find((c) => c.id === id);
const sleep = () => new Promise((resolve) => setTimeout(resolve, POLL_MS));

export async function watchAndRemove(g: GlobalOptions, id: string): Promise<void> {
  const deadline = Date.now() + APPEAR_WITHIN_MS;
  let c = byId(readState(g), id);
  while (!c && Date.now() < deadline) {
    await sleep();
    c = byId(readState(g), id);
  }
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
