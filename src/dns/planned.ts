// The name files a command's earlier sub-plans leave (up, restart, stop of several containers are made of
// the plans of single planners): later planners read them from here, not from the disk.
import type { CmdStep, Plan, Step } from "../plan/plan.js";
import { readNameFile } from "../host/files.js";

/**
 * The name files as the earlier plans of one command leave them (a lab's plan is made of the plans of
 * single commands, see lab.ts): path -> content. Read in place of the disk for those paths.
 */
export const plannedNameFiles = new Map<string, string | null>();

export const AARDVARK = "/usr/lib/podman/aardvark-dns";

/** A step that starts, signals or stops ctnet's DNS server (aardvark.ts). */
export const isServerControl = (step: Step): step is CmdStep =>
  step.kind === "cmd" && (step.argv[0] === AARDVARK || (step.argv[0] === "kill" && ["-0", "-HUP", "-TERM"].includes(step.argv[1])));

/**
 * A command made of several planners' plans tells the server once: the first check that it runs, the
 * last signal, the last start (each after the last write it is for). A stop stays: a plan that stops the
 * server and starts it again (a lab's only network replaced) has both.
 */
export function keepOneServerControl(steps: Step[], keep: boolean[] = steps.map(() => true)): boolean[] {
  const control = (step: Step, what: string) => isServerControl(step) && (what === "start" ? step.argv[0] === AARDVARK : step.argv[1] === what);
  for (const what of ["-0", "-HUP", "start"]) {
    const at = steps.map((step, i) => (control(step, what) ? i : -1)).filter((i) => i >= 0);
    const kept = what === "-0" ? at[0] : at[at.length - 1];
    for (const i of at) if (i !== kept) keep[i] = false;
  }
  return keep;
}

/**
 * The last step of the earlier plans that controls the DNS server: a later planner starts it again after
 * a stop, and does not signal one still to start. Noted with the name files, forgotten with them.
 */
export const plannedServerControl: { step?: CmdStep } = {};

/** What `file` holds once the steps planned so far have run; nothing foreign followed. */
export function pendingContent(plan: Plan, file: string): string | null {
  return plan.pending("write", file, () => (plannedNameFiles.has(file) ? plannedNameFiles.get(file)! : readNameFile(file)));
}
