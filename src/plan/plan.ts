// A plan is the ordered list of kernel and file changes one command makes. Every step says why it
// exists and how to undo it; the executor runs them, and `--dry-run` prints them as a POSIX sh script.
import type { Compare, TxnOp } from "../cluster/etcd.js";

export interface CmdStep {
  kind: "cmd";
  argv: string[];
  why: string;
  /** argv that reverts this step; null when it cannot be reverted (it is then placed late in the plan). */
  undo: string[] | null;
  /** an exit status besides 0 that also means done (conntrack -D exits 1 when nothing matched) */
  alsoOk?: number;
}

/** Writes a file in place (same inode, so bind mounts of it see the change); content null removes it. */
export interface WriteStep {
  kind: "write";
  path: string;
  content: string | null;
  /** What the file held before, null when it did not exist: the undo restores it. */
  previous: string | null;
  why: string;
}

/** Starts a container's process in the background; its pid is handed to the plan's result. */
export interface SpawnStep {
  kind: "spawn";
  argv: string[];
  container: string;
  log: string;
  why: string;
}

/** Stops processes (SIGKILL, or SIGTERM with a grace period). Cannot be undone. */
export interface KillStep {
  kind: "kill";
  pids: number[];
  signal: "SIGTERM" | "SIGKILL";
  why: string;
  /** SIGTERM: how long the processes get to end before SIGKILL (stop -t); 10 s when absent */
  graceSeconds?: number;
}

/**
 * Makes `path` a symbolic link to `target` (null removes the link). ip netns exec follows it when it
 * bind-mounts /etc/netns/NAME/hosts, so containers can share one hosts file that is updated in place.
 */
export interface LinkStep {
  kind: "link";
  path: string;
  target: string | null;
  /** the link's target before, null when there was no link: the undo restores it */
  previous: string | null;
  why: string;
}

/**
 * Where a step goes in a plan that removes several containers: first what acts on the links and addresses
 * the namespaces take along (firewall rules in one `iptables-restore`, conntrack entries, a veth's
 * hairpin setting: no rule outlives what it names), then every process stopped, then every namespace
 * deleted (consecutive, so one `ip -batch` does them all, and each takes its veth pairs along), then the
 * waits for those veths (the executor joins them into one), then the rest in plan order.
 */
export function removalRank(step: Step): number {
  if (step.kind === "kill") return 1;
  if (step.kind !== "cmd") return 4;
  const [prog, ...args] = step.argv;
  if (prog === "iptables" || prog === "conntrack" || (prog === "ip" && args[0] === "link" && args[1] === "set")) return 0;
  if (step.argv[0] === "ip" && step.argv[1] === "netns" && step.argv[2] === "del") return 2;
  return waitedPaths(step) ? 3 : 4;
}

/** sh that waits until none of the paths given as its arguments exists (the executor polls in-process). */
export const WAIT_GONE = 'for p; do while [ -e "$p" ]; do sleep 0.01; done; done';

/** The paths a step planned by Plan.waitGone waits for; null for any other step. */
export const waitedPaths = (step: Step): string[] | null =>
  step.kind === "cmd" && step.argv[0] === "sh" && step.argv[2] === WAIT_GONE ? step.argv.slice(4) : null;

/**
 * A transaction in a cluster's etcd store (src/cluster/etcd.ts): an overlay network's or container's
 * claims. It fails when a compare does not hold (another host claimed the key first). Its undo, a
 * transaction too, releases what it claimed: rollback and crash recovery release claims like links.
 */
export interface StoreStep {
  kind: "store";
  /** etcd://HOST:PORT[,HOST:PORT…] */
  store: string;
  compare: Compare[];
  success: TxnOp[];
  /** null when it cannot be reverted (a release: the plan is then completed, never undone) */
  undo: TxnOp[] | null;
  why: string;
}

export type Step = CmdStep | WriteStep | SpawnStep | KillStep | LinkStep | StoreStep;

export class Plan {
  readonly steps: Step[] = [];
  /**
   * Whether the plan ends by waiting for the links its deleted namespaces take along (see the executor).
   * A plan that leaves that to the next command needing one of their names sets it to false.
   */
  waitAtEnd = true;

  constructor(readonly title: string) {}

  cmd(argv: string[], why: string, undo: string[] | null = null, alsoOk?: number): this {
    this.steps.push({ kind: "cmd", argv, why, undo, ...(alsoOk === undefined ? {} : { alsoOk }) });
    return this;
  }

  write(path: string, content: string | null, previous: string | null, why: string): this {
    if (content === previous) return this;
    this.steps.push({ kind: "write", path, content, previous, why });
    return this;
  }

  link(path: string, target: string | null, previous: string | null, why: string): this {
    if (target === previous) return this;
    this.steps.push({ kind: "link", path, target, previous, why });
    return this;
  }

  /**
   * What `path` holds once the steps planned so far have run (`kind` "write": its content, "link": its link
   * target): the last such step for it in this plan, else `onDisk()`. A plan that changes one file twice
   * must undo each change to what the change before it left.
   */
  pending(kind: "write" | "link", path: string, onDisk: () => string | null): string | null {
    for (let i = this.steps.length - 1; i >= 0; i--) {
      const step = this.steps[i];
      if (step.kind === "write" && kind === "write" && step.path === path) return step.content;
      if (step.kind === "link" && kind === "link" && step.path === path) return step.target;
    }
    return onDisk();
  }

  spawn(argv: string[], container: string, log: string, why: string): this {
    this.steps.push({ kind: "spawn", argv, container, log, why });
    return this;
  }

  /** Waits until the kernel has removed `links` (the veths a deleted namespace takes along; see the executor). */
  waitGone(links: string[], why: string): this {
    if (links.length > 0) this.cmd(["sh", "-c", WAIT_GONE, "sh", ...links.map((l) => `/sys/class/net/${l}`)], why, null);
    return this;
  }

  store(store: string, compare: Compare[], success: TxnOp[], undo: TxnOp[] | null, why: string): this {
    this.steps.push({ kind: "store", store, compare, success, undo, why });
    return this;
  }

  kill(pids: number[], signal: KillStep["signal"], why: string, graceSeconds?: number): this {
    if (pids.length > 0) this.steps.push({ kind: "kill", pids, signal, why, ...(graceSeconds === undefined ? {} : { graceSeconds }) });
    return this;
  }

  append(other: Plan): this {
    this.steps.push(...other.steps);
    return this;
  }

  get empty(): boolean {
    return this.steps.length === 0;
  }
}

// ---- rendering as sh -------------------------------------------------------------------------

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one word for POSIX sh. */
export function shQuote(word: string): string {
  if (word !== "" && SAFE_WORD.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export const shJoin = (argv: string[]) => argv.map(shQuote).join(" ");

function heredocMarker(content: string): string {
  let marker = "EOF";
  while (content.split("\n").includes(marker)) marker += "_";
  return marker;
}

/** A store transaction as `etcdctl txn` reads it from stdin: compares, a blank line, the operations. */
function renderTxn(store: string, compare: Compare[], ops: TxnOp[]): string {
  const quote = (v: string) => JSON.stringify(v);
  const ifs = compare.map((c) => {
    if (c.target === "CREATE") return `create(${quote(c.key)}) = "${c.createRevision}"${c.prefix ? " # every key under it" : ""}`;
    if (c.target === "MOD") return `mod(${quote(c.key)}) = "${c.modRevision}"`;
    return `value(${quote(c.key)}) = ${quote(c.value)}`;
  });
  const thens = ops.map((op) => ("put" in op ? `put ${op.put.key} ${quote(op.put.value)}` : "delete" in op ? `del ${op.delete.prefix ? "--prefix " : ""}${op.delete.key}` : `get ${op.range.key}`));
  const body = [...ifs, "", ...thens, "", ""].join("\n");
  return `etcdctl --endpoints=${store.slice("etcd://".length)} txn <<'${heredocMarker(body)}'\n${body}\n${heredocMarker(body)}`;
}

/** One step as the sh lines that do the same thing. */
export function renderStep(step: Step): string {
  switch (step.kind) {
    case "cmd":
      return step.alsoOk === undefined ? shJoin(step.argv) : `${shJoin(step.argv)} || [ $? -eq ${step.alsoOk} ]`;
    case "write": {
      if (step.content === null) return shJoin(["rm", "-f", step.path]);
      const dir = step.path.slice(0, step.path.lastIndexOf("/"));
      const body = step.content.endsWith("\n") ? step.content : step.content + "\n";
      const marker = heredocMarker(body);
      return `mkdir -p ${shQuote(dir)} && cat > ${shQuote(step.path)} <<'${marker}'\n${body}${marker}`;
    }
    case "link": {
      if (step.target === null) return shJoin(["rm", "-f", step.path]);
      const dir = step.path.slice(0, step.path.lastIndexOf("/"));
      return `mkdir -p ${shQuote(dir)} && ${shJoin(["ln", "-sfn", step.target, step.path])}`;
    }
    case "spawn":
      return `setsid ${shJoin(step.argv)} </dev/null >>${shQuote(step.log)} 2>&1 &`;
    case "kill":
      return shJoin(["kill", step.signal === "SIGKILL" ? "-KILL" : "-TERM", ...step.pids.map(String)]);
    case "store":
      return renderTxn(step.store, step.compare, step.success);
  }
}

export function renderUndo(step: Step): string | null {
  switch (step.kind) {
    case "cmd":
      return step.undo ? shJoin(step.undo) : null;
    case "write":
      return renderStep({ ...step, content: step.previous, previous: step.content });
    case "link":
      return renderStep({ ...step, target: step.previous, previous: step.target });
    case "spawn":
      return `kill -KILL <pid of ${step.container}>`;
    case "kill":
      return null;
    case "store":
      return step.undo ? renderTxn(step.store, [], step.undo) : null;
  }
}

/** The whole plan as a runnable script, each step preceded by its reason. */
export function renderScript(plan: Plan): string {
  const lines = ["#!/bin/sh", `# ctnet plan: ${plan.title}`, "set -e"];
  if (plan.empty) lines.push("# nothing to do");
  plan.steps.forEach((step, i) => {
    // a reason may quote user words (a command with newlines): every line of it stays a comment
    lines.push("", `# ${i + 1}. ${step.why.replace(/\n/g, "\n#    ")}`, renderStep(step));
  });
  return lines.join("\n") + "\n";
}
