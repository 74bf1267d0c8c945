// The name files a command's earlier sub-plans leave (up, restart, stop of several containers are made of
// the plans of single planners): later planners read them from here, not from the disk.
import type { Plan } from "../plan/plan.js";
import { readNameFile } from "../host/files.js";

/**
 * The name files as the earlier plans of one command leave them (a lab's plan is made of the plans of
 * single commands, see lab.ts): path -> content. Read in place of the disk for those paths.
 */
export const plannedNameFiles = new Map<string, string | null>();

/** What `file` holds once the steps planned so far have run; nothing foreign followed. */
export function pendingContent(plan: Plan, file: string): string | null {
  return plan.pending("write", file, () => (plannedNameFiles.has(file) ? plannedNameFiles.get(file)! : readNameFile(file)));
}
