// `ctnet up` and `ctnet down`: a lab file applied as ONE plan. The planners of single commands (net create,
// run -d, net connect, rm, net rm) run one after another against one draft state and their steps are
// collected, so a lab goes up all or nothing, and `--dry-run` shows the whole script.
import { createHash } from "node:crypto";
import { UsageError } from "../errors.js";
import { mutate, openStore, type GlobalOptions } from "../plan/core.js";
import { planRm, planRun } from "../commands/containers.js";
import { isRunning, recordProcess } from "../commands/process.js";
import { planConnect, planNetCreate, planNetRm } from "../commands/networks.js";
import { Plan, removalRank, waitedPaths, type Step, type WriteStep } from "../plan/plan.js";
import { nameFileContent } from "../dns/names.js";
import { keepOneServerControl } from "../dns/planned.js";
import { forgetSubPlans, noteSubPlan } from "../host/sandbox.js";
import type { ContainerSpec, LabSpec, NetworkSpec, Where } from "./labfile.js";
import type { Spawned } from "../plan/executor.js";
import { runModeText, type ContainerRecord, type State } from "../model.js";

export type Change = "created" | "recreated" | "removed";

/** One object the plan changes, and the steps [start, end) that change it. */
export interface Piece {
  kind: "network" | "container";
  name: string;
  change: Change;
  end: number;
}

export interface LabPlan {
  plan: Plan;
  pieces: Piece[];
  /** objects the file declares that are already as declared */
  unchanged: string[];
  commit: (spawned: Map<string, Spawned>) => void;
}

const digest = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);

function networkDigest(n: NetworkSpec): string {
  const { where: _where, ...rest } = n;
  return digest(rest);
}

function containerDigest(c: ContainerSpec): string {
  const { where: _where, networks, ...rest } = c;
  return digest({ ...rest, networks: networks.map(({ where: _w, ...a }) => a) });
}

/** Collects planner output into one plan; a file written several times is written once, with its final content. */
class LabPlanBuilder {
  readonly plan: Plan;
  private readonly owner: number[] = [];
  private readonly pieces: Array<Omit<Piece, "end">> = [];
  private readonly writes = new Map<string, WriteStep>();
  /** steps from here on only create things (see finish) */
  private creationStart: number | null = null;

  constructor(title: string, private readonly file: string | null) {
    this.plan = new Plan(title);
  }

  /** Runs one planner; its UsageErrors name the lab file position of the object it plans. */
  add(kind: Piece["kind"], name: string, change: Change, where: Where | null, build: () => Plan): void {
    let sub: Plan;
    try {
      sub = build();
    } catch (err) {
      if (err instanceof UsageError && where && this.file) {
        throw new UsageError(`${this.file}:${where.line}:${where.col}: ${kind === "network" ? "networks" : "containers"}.${name}: ${err.message}`);
      }
      throw err;
    }
    const index = this.pieces.push({ kind, name, change }) - 1;
    noteSubPlan(sub);
    for (const step of sub.steps) {
      if (step.kind === "write") {
        // the first write keeps its place (the file must exist before the process that bind-mounts it
        // starts) and the content of the last one (a container's files are made again by finish()); a
        // link step in between (an old link to a shared hosts file removed) starts a new run of writes
        const first = this.writes.get(step.path);
        if (first) {
          first.content = step.content;
          continue;
        }
        this.writes.set(step.path, step);
      }
      if (step.kind === "link") this.writes.delete(step.path);
      this.plan.steps.push(step);
      this.owner.push(index);
    }
  }

  beginCreation(): void {
    this.creationStart = this.plan.steps.length;
  }

  /**
   * Orders the creating steps in five phases so the executor needs few processes: the name files written
   * (a container's hosts file marks its namespace as ctnet's, so it is there first), every host-side `ip`
   * command (namespaces, bridges, veth pairs: one `ip -batch`), then each namespace's own `ip -n NS`
   * commands (one batch per namespace), then the rest (firewall rules, remounts) in plan order, then the
   * processes in plan order. Each phase only depends on earlier ones: a namespace and
   * a veth exist before they are configured, a bridge before its rules, a hosts file before the process
   * that bind-mounts it.
   */
  private phase(): void {
    const start = this.creationStart;
    if (start === null) return;
    // name files keep their plan order among themselves: a container given a second network first links
    // to its network's file, then swaps the link for a file of its own (its processes start later, so no
    // remount comes between)
    // (and a wait for a veth still going goes before the host-side batch that takes its name again)
    const nameFile = (step: Step) => step.kind === "write" || step.kind === "link" || waitedPaths(step) !== null;
    // the check that the DNS server runs goes before its files: its undo signals it once they are back
    const dnsCheck = (step: Step) => step.kind === "cmd" && step.argv[0] === "kill" && step.argv[1] === "-0";
    const rank = (step: Step) => (dnsCheck(step) ? -2 : nameFile(step) ? -1 : step.kind === "spawn" ? 3 : step.kind !== "cmd" || step.argv[0] !== "ip" ? 2 : step.argv[1] === "-n" ? 1 : 0);
    const byNs = (step: Step) => (step as { argv?: string[] }).argv?.[2] ?? "";
    this.reorder(start, this.plan.steps.length, rank, (step) => (rank(step) === 1 ? byNs(step) : ""));
  }

  /**
   * Orders the removing steps (those before the creating ones) as removalRank says: the rules, every
   * process stopped, every namespace deleted in one `ip -batch`, then the rest in plan order (bridges,
   * sysctls, name files).
   */
  private phaseRemoval(): void {
    this.reorder(0, this.creationStart ?? this.plan.steps.length, removalRank, () => "");
  }

  /**
   * Sorts steps [from, to) by rank, keeping plan order within a rank; steps of one rank that belong to
   * different groups (namespaces) stay together, groups in the order they first appear.
   */
  private reorder(from: number, to: number, rank: (step: Step) => number, group: (step: Step) => string): void {
    const idx = this.plan.steps.map((_, i) => i).slice(from, to);
    const step = (i: number) => this.plan.steps[i];
    const firstOf = new Map<string, number>();
    for (const i of idx) if (!firstOf.has(`${rank(step(i))} ${group(step(i))}`)) firstOf.set(`${rank(step(i))} ${group(step(i))}`, i);
    idx.sort((a, b) => {
      const ra = rank(step(a));
      const rb = rank(step(b));
      if (ra !== rb) return ra - rb;
      const ga = group(step(a));
      const gb = group(step(b));
      if (ga !== gb) return firstOf.get(`${ra} ${ga}`)! - firstOf.get(`${rb} ${gb}`)!;
      return a - b;
    });
    const steps = idx.map((i) => this.plan.steps[i]);
    const owner = idx.map((i) => this.owner[i]);
    this.plan.steps.splice(from, steps.length, ...steps);
    this.owner.splice(from, owner.length, ...owner);
  }

  finish(state: State): Piece[] {
    this.phaseRemoval();
    this.phase();
    const killed = new Set(this.plan.steps.flatMap((step) => (step.kind === "kill" ? step.pids.map((pid) => `--mount=/proc/${pid}/ns/mnt`) : [])));
    const linkedLater = new Set<string>();
    const keep = this.plan.steps.map((step) => !(step.kind === "cmd" && step.argv[0] === "nsenter" && killed.has(step.argv[1])));
    keepOneServerControl(this.plan.steps, keep);
    for (let i = this.plan.steps.length - 1; i >= 0; i--) {
      const step = this.plan.steps[i];
      if (step.kind === "link") linkedLater.add(step.path);
      if (step.kind !== "write" || linkedLater.has(step.path)) continue;
      const content = nameFileContent(state, step.path);
      if (content === undefined) continue;
      step.content = content;
      keep[i] = step.content !== step.previous;
    }
    const steps = this.plan.steps.filter((_, i) => keep[i]);
    const owner = this.owner.filter((_, i) => keep[i]);
    this.plan.steps.splice(0, this.plan.steps.length, ...steps);
    // a piece is done once its last step is; one left with no steps is done with the piece before it
    const ends = new Array<number>(this.pieces.length).fill(0);
    owner.forEach((piece, i) => (ends[piece] = i + 1));
    let done = 0;
    return this.pieces.map((p, i) => ({ ...p, end: (done = Math.max(done, ends[i])) }));
  }
}

/** Containers in an order where each comes after the one whose namespace it joins. */
function joinOrder<T extends { name: string; joins?: string }>(items: T[]): T[] {
  const byName = new Map(items.map((i) => [i.name, i]));
  const out: T[] = [];
  const placed = new Set<string>();
  const place = (item: T) => {
    if (placed.has(item.name)) return;
    placed.add(item.name);
    const owner = item.joins ? byName.get(item.joins) : undefined;
    if (owner) place(owner);
    out.push(item);
  };
  items.forEach(place);
  return out;
}

/** Removal order: those that joined another's namespace go before their owner. */
const removalOrder = (cs: ContainerRecord[]) => [...cs].sort((a, b) => Number(b.mode === "container") - Number(a.mode === "container"));

/** The plan that makes the host hold exactly what `spec` declares for its lab. */
export function planUp(draft: State, stateDir: string, spec: LabSpec): LabPlan {
  return planning(() => planUpInner(draft, stateDir, spec));
}

/** Runs a lab planner; what it noted as going away or planned stays with its plan. */
function planning(plan: () => LabPlan): LabPlan {
  try {
    return plan();
  } finally {
    forgetSubPlans();
  }
}

function planUpInner(draft: State, stateDir: string, spec: LabSpec): LabPlan {
  const lab = spec.name;
  const at = (w: Where) => `${spec.file}:${w.line}:${w.col}`;
  for (const n of spec.networks) {
    const existing = draft.networks[n.name];
    if (existing && existing.lab !== lab) {
      throw new UsageError(`${at(n.where)}: networks.${n.name}: network ${n.name} already exists and belongs to ${existing.lab ? `lab ${existing.lab}` : "no lab"}; rename it in the file`);
    }
  }
  for (const c of spec.containers) {
    const existing = draft.containers[c.name];
    if (existing && existing.lab !== lab) {
      throw new UsageError(`${at(c.where)}: containers.${c.name}: container ${c.name} already exists and belongs to ${existing.lab ? `lab ${existing.lab}` : "no lab"}; rename it in the file`);
    }
  }

  const wantedNets = new Map(spec.networks.map((n) => [n.name, n]));
  const netsToRemove = Object.values(draft.networks).filter((n) => n.lab === lab && (!wantedNets.has(n.name) || n.labDigest !== networkDigest(wantedNets.get(n.name)!)));
  const replacedNets = new Set(netsToRemove.map((n) => n.name));
  const netsToCreate = spec.networks.filter((n) => !draft.networks[n.name] || replacedNets.has(n.name));

  // a container is made again when its entry changed, its process died, its networks are not the
  // declared ones (someone connected it by hand), a network of it is replaced, or its owner is
  const wantedCtrs = new Map(spec.containers.map((c) => [c.name, c]));
  const fresh = new Set<string>();
  for (const c of joinOrder(spec.containers)) {
    const existing = draft.containers[c.name];
    const nets = c.mode === "bridge" ? (c.networks.length ? c.networks.map((a) => a.network) : ["bridge"]) : [];
    const stale = !existing || existing.labDigest !== containerDigest(c) || !isRunning(existing)
      || existing.endpoints.map((e) => e.network).join(",") !== nets.join(",")
      || nets.some((n) => replacedNets.has(n)) || (c.joins !== undefined && fresh.has(c.joins));
    if (stale) fresh.add(c.name);
  }
  const ctrsToRemove = Object.values(draft.containers).filter((c) => c.lab === lab && (!wantedCtrs.has(c.name) || fresh.has(c.name)));

  const b = new LabPlanBuilder(`up ${lab} (${spec.file})`, spec.file);
  for (const c of removalOrder(ctrsToRemove)) {
    b.add("container", c.name, "removed", null, () => planRm(draft, stateDir, [c.name], true));
  }
  for (const n of netsToRemove) b.add("network", n.name, "removed", wantedNets.get(n.name)?.where ?? null, () => planNetRm(draft, [n.name]));
  b.beginCreation();
  for (const n of netsToCreate) {
    b.add("network", n.name, replacedNets.has(n.name) ? "recreated" : "created", n.where, () => {
      const plan = planNetCreate(draft, n.name, {
        driver: n.driver, subnet: n.subnet, gateway: n.gateway, ipRange: n.ipRange, internal: n.internal, lab,
        opt: Object.entries(n.options).map(([k, v]) => `${k}=${v}`),
        label: Object.entries(n.labels).map(([k, v]) => `${k}=${v}`),
      });
      draft.networks[n.name].labDigest = networkDigest(n);
      return plan;
    });
  }
  const started: string[] = [];
  const replacedCtrs = new Set(ctrsToRemove.map((c) => c.name));
  for (const c of joinOrder(spec.containers)) {
    if (!fresh.has(c.name)) continue;
    const change: Change = replacedCtrs.has(c.name) ? "recreated" : "created";
    b.add("container", c.name, change, c.where, () => planContainer(draft, stateDir, lab, c));
    started.push(c.name);
  }
  const pieces = b.finish(draft);
  const changed = new Set(pieces.map((p) => `${p.kind} ${p.name}`));
  const unchanged = [...spec.networks.map((n) => `network ${n.name}`), ...spec.containers.map((c) => `container ${c.name}`)].filter((o) => !changed.has(o));
  return {
    plan: b.plan, pieces, unchanged,
    commit: (spawned) => started.forEach((name) => recordProcess(draft.containers[name], spawned.get(name))),
  };
}

/** run -d for one lab container, then net connect for each further network, as one piece of the plan. */
function planContainer(draft: State, stateDir: string, lab: string, c: ContainerSpec): Plan {
  const [first, ...rest] = c.networks;
  const net = c.mode === "bridge" ? first?.network ?? "bridge" : runModeText({ mode: c.mode, joined: c.joins });
  const { plan } = planRun(draft, stateDir, {
    name: c.name, hostname: c.hostname, net, ip: first?.ip, networkAlias: first?.aliases, env: c.env,
    detach: true, command: c.command, lab, joinsPending: c.mode === "container",
    publish: c.ports, publishAll: c.publishAll, expose: c.expose,
    dns: c.dns, dnsSearch: c.dnsSearch, dnsOption: c.dnsOption, addHost: c.addHost, link: c.link,
  });
  for (const a of rest) {
    // each connect is a plan of its own: it must see the name files as run (or the connect before) left them
    noteSubPlan(plan);
    plan.append(planConnect(draft, a.network, c.name, { ip: a.ip, aliases: a.aliases }));
  }
  draft.containers[c.name].labDigest = containerDigest(c);
  return plan;
}

/** The plan that removes every container and network of `lab`, and nothing else. */
export function planDown(draft: State, stateDir: string, lab: string): LabPlan {
  return planning(() => planDownInner(draft, stateDir, lab));
}

function planDownInner(draft: State, stateDir: string, lab: string): LabPlan {
  const b = new LabPlanBuilder(`down ${lab}`, null);
  for (const c of removalOrder(Object.values(draft.containers).filter((c) => c.lab === lab))) {
    b.add("container", c.name, "removed", null, () => planRm(draft, stateDir, [c.name], true));
  }
  for (const n of Object.values(draft.networks).filter((n) => n.lab === lab)) {
    b.add("network", n.name, "removed", null, () => planNetRm(draft, [n.name]));
  }
  return { plan: b.plan, pieces: b.finish(draft), unchanged: [], commit: () => {} };
}

/** Which labs the state holds, with their object counts. */
export function listLabs(state: State): Array<{ Name: string; Networks: number; Containers: number; Running: number }> {
  const labs = new Map<string, { Name: string; Networks: number; Containers: number; Running: number }>();
  const entry = (name: string) => labs.get(name) ?? labs.set(name, { Name: name, Networks: 0, Containers: 0, Running: 0 }).get(name)!;
  for (const n of Object.values(state.networks)) if (n.lab) entry(n.lab).Networks++;
  for (const c of Object.values(state.containers)) {
    if (!c.lab) continue;
    const e = entry(c.lab);
    e.Containers++;
    if (isRunning(c)) e.Running++;
  }
  return [...labs.values()].sort((a, b) => a.Name.localeCompare(b.Name));
}

// ---- the commands ------------------------------------------------------------------------------

/** Reports pieces as they finish: a redrawn line on a terminal (stderr), plain lines otherwise. */
function reporter(pieces: Piece[]) {
  const tty = !!process.stderr.isTTY && process.env.TERM !== "dumb";
  // a reader that goes away (| head) must not stop a plan halfway: lines it misses are only a report
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
  const lines: string[] = [];
  let next = 0;
  const say = (p: Piece) => `${p.kind} ${p.name} ${p.change}`;
  return {
    progress(done: number) {
      while (next < pieces.length && pieces[next].end <= done) {
        const p = pieces[next++];
        if (tty) {
          lines.push(say(p));
          process.stderr.write(`\r\x1b[K[${next}/${pieces.length}] ${say(p)}`);
        } else process.stdout.write(`${say(p)}\n`);
      }
    },
    end() {
      this.progress(Number.MAX_SAFE_INTEGER);
      if (tty && lines.length) process.stderr.write("\r\x1b[K");
      for (const line of lines) process.stdout.write(`${line}\n`);
    },
  };
}

export interface LabCommandOptions {
  file?: string;
  lab?: string;
}

export async function upCommand(g: GlobalOptions, o: LabCommandOptions): Promise<void> {
  const { loadLabFile } = await import("./labfile.js");
  const spec = await loadLabFile(o.file ?? "ctnet.yaml");
  const stateDir = openStore(g).dir;
  let lp: LabPlan | undefined;
  let report: ReturnType<typeof reporter> | undefined;
  await mutate(g, (draft) => {
    lp = planUp(draft, stateDir, spec);
    report = reporter(lp.pieces);
    return { plan: lp.plan, commit: lp.commit, progress: (done) => report!.progress(done) };
  });
  if (g.dryRun || !lp) return;
  report!.end();
  const what = `${spec.networks.length} network${spec.networks.length === 1 ? "" : "s"}, ${spec.containers.length} container${spec.containers.length === 1 ? "" : "s"}`;
  process.stdout.write(lp.pieces.length === 0 ? `lab ${spec.name} is up to date (${what})\n` : `lab ${spec.name} is up (${what}; ${lp.unchanged.length} unchanged)\n`);
}

export async function downCommand(g: GlobalOptions, o: LabCommandOptions): Promise<void> {
  let lab = o.lab;
  if (lab === undefined) {
    const { loadLabFile } = await import("./labfile.js");
    lab = (await loadLabFile(o.file ?? "ctnet.yaml")).name;
  } else if (o.file) throw new UsageError("give either -f FILE or --lab NAME, not both");
  const stateDir = openStore(g).dir;
  let lp: LabPlan | undefined;
  let report: ReturnType<typeof reporter> | undefined;
  await mutate(g, (draft) => {
    lp = planDown(draft, stateDir, lab!);
    report = reporter(lp.pieces);
    return { plan: lp.plan, progress: (done) => report!.progress(done) };
  });
  if (g.dryRun || !lp) return;
  report!.end();
  process.stdout.write(lp.pieces.length === 0 ? `lab ${lab} holds nothing\n` : `lab ${lab} is down\n`);
}
