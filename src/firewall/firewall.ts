// The iptables layer. ctnet's rules live only in its own chains; the built-in chains get one jump each.
//
//   filter FORWARD      -> CTNET-FORWARD (inserted first, so a DROP policy or others' rules come after)
//   CTNET-FORWARD       a DROP of anything first addressed to 127/8 (a port published on 127.0.0.1,
//                          reached from a host that routes 127/8 via this one), CTNET-ISOLATION, then
//                          per network: replies in, published ports in,
//                          out of the bridge, within the bridge (ACCEPT, or DROP with icc=false), and a
//                          final DROP of anything else entering the bridge (an outside host that routes
//                          the subnet via this one reaches published ports only)
//   CTNET-ISOLATION     per network: leaving its bridge for another -> CTNET-ISOLATION-2; internal networks
//                          drop anything not to or from their own subnet
//   CTNET-ISOLATION-2   per network: entering its bridge (from another ctnet network) -> DROP, except
//                          DNATed traffic, which CTNET-PORTS then judges (published ports via a host address)
//   CTNET-PORTS         published ports (src/ports.ts): ACCEPT of DNATed traffic to the container's port
//   CTNET-INPUT         (filter INPUT) where route_localnet is on: drop new traffic from a bridge to 127/8
//   nat POSTROUTING     -> CTNET-POSTROUTING: MASQUERADE of each network's subnet leaving its bridge, and
//                          (src/ports.ts) hairpin and loopback-sourced traffic to published ports
//   nat PREROUTING, OUTPUT (dst-type LOCAL) -> CTNET-DNAT: DNAT of published ports (src/ports.ts)
import { Plan } from "../plan/plan.js";
import { run } from "../host/sys.js";
import type { NetworkRecord, State } from "../model.js";

export type Table = "filter" | "nat";

export interface Rule {
  table: Table;
  chain: string;
  spec: string[];
  why: string;
  /** insert at the top of the chain instead of appending */
  first?: boolean;
}

interface Chain {
  table: Table;
  name: string;
}

export const CHAINS: Chain[] = [
  { table: "filter", name: "CTNET-FORWARD" },
  { table: "filter", name: "CTNET-ISOLATION" },
  { table: "filter", name: "CTNET-ISOLATION-2" },
  { table: "filter", name: "CTNET-PORTS" },
  { table: "filter", name: "CTNET-INPUT" },
  { table: "nat", name: "CTNET-POSTROUTING" },
  { table: "nat", name: "CTNET-DNAT" },
];

const LOCAL = ["-m", "addrtype", "--dst-type", "LOCAL"];

/** The rules that tie ctnet's chains into the built-in ones, in the order they are installed. */
export const BASE_RULES: Rule[] = [
  { table: "filter", chain: "CTNET-FORWARD", spec: ["-j", "CTNET-ISOLATION"], why: "isolation between ctnet networks is checked before any accept" },
  {
    table: "filter", chain: "CTNET-FORWARD", spec: ["-m", "conntrack", "--ctorigdst", "127.0.0.0/8", "-j", "DROP"],
    why: "a port published on 127.0.0.1 is for this host only: drop what came in from another host addressed to 127/8", first: true,
  },
  { table: "filter", chain: "FORWARD", spec: ["-j", "CTNET-FORWARD"], why: "send forwarded traffic through ctnet's rules first", first: true },
  { table: "filter", chain: "INPUT", spec: ["-j", "CTNET-INPUT"], why: "guard the host's loopback on bridges where published ports need route_localnet", first: true },
  { table: "nat", chain: "POSTROUTING", spec: ["-j", "CTNET-POSTROUTING"], why: "let ctnet masquerade container traffic leaving the host" },
  { table: "nat", chain: "PREROUTING", spec: [...LOCAL, "-j", "CTNET-DNAT"], why: "published ports: traffic arriving for a host address" },
  { table: "nat", chain: "OUTPUT", spec: [...LOCAL, "-j", "CTNET-DNAT"], why: "published ports: traffic from the host itself to a host address" },
];

export const ipt = (table: Table, ...args: string[]) => ["iptables", "-w", "-t", table, ...args];

export function addRule(plan: Plan, r: Rule): void {
  const add = r.first ? ["-I", r.chain, "1"] : ["-A", r.chain];
  plan.cmd(ipt(r.table, ...add, ...r.spec), r.why, ipt(r.table, "-D", r.chain, ...r.spec));
}

export function deleteRule(plan: Plan, r: Rule): void {
  const add = r.first ? ["-I", r.chain, "1"] : ["-A", r.chain];
  plan.cmd(ipt(r.table, "-D", r.chain, ...r.spec), `remove: ${r.why}`, ipt(r.table, ...add, ...r.spec));
  let deleted = deletedBy.get(plan);
  if (!deleted) deletedBy.set(plan, (deleted = []));
  deleted.push(ruleKey(r.table, r.chain, r.spec));
}

/** Whether ctnet's chains are on the host already (possibly made by another state dir). */
export function baseInstalled(): boolean {
  return run(ipt("filter", "-S", "CTNET-FORWARD", "1")).code === 0;
}

// ---- what the kernel holds -----------------------------------------------------------------------
// A host may hold rules made by an older ctnet (an upgrade while networks exist) or by another state dir:
// the base is completed rather than assumed, and teardown deletes only the rules that are there.

interface KernelRule {
  key: string;
  /** as `iptables -S` prints it, for messages */
  line: string;
}

interface KernelRules {
  chains: Set<string>;
  rules: Set<string>;
  /** every rule of every chain, "table chain" -> rules in order (copies included) */
  byChain: Map<string, KernelRule[]>;
}

/** A rule as its option groups ("! -o br", "-m conntrack", …) in sorted order: iptables -S reorders options. */
function ruleKey(table: Table, chain: string, spec: string[]): string {
  const groups: string[][] = [];
  for (const w of spec) {
    const last = groups[groups.length - 1];
    const opens = w === "!" || (w.startsWith("-") && !(last?.length === 1 && last[0] === "!"));
    if (opens || !last) groups.push([w]);
    else last.push(w);
  }
  return `${table} ${chain} ${groups.map((g) => g.join(" ")).sort().join(" | ")}`;
}

/** One `iptables -S` per table, read once per plan (a plan's own steps do not change what it read). */
const snapshots = new WeakMap<Plan, KernelRules>();
/** Rules each plan deletes (keys, a copy per deletion). */
const deletedBy = new WeakMap<Plan, string[]>();

/**
 * One command builds its plans against one draft state: `up` and `down` build one per object and join
 * them (lab.ts). What one of them removes, another must know: the last network's removal needs the
 * rules that the plans removing containers delete, and a network set up after the base was removed
 * must set all of it up again.
 */
interface Command {
  plans: Set<Plan>;
  /** set once a plan of the command removes the base: the chains it deletes ("table name") */
  deletedChains: Set<string> | null;
}
const commands = new WeakMap<State, Command>();

function commandOf(state: State): Command {
  let cmd = commands.get(state);
  if (!cmd) commands.set(state, (cmd = { plans: new Set(), deletedChains: null }));
  return cmd;
}

/** Counts `plan`'s rule deletions as ctnet's own when a later plan built against `state` removes the base. */
export function enlist(plan: Plan, state: State): void {
  commandOf(state).plans.add(plan);
}

function kernelRules(plan: Plan): KernelRules {
  let snap = snapshots.get(plan);
  if (snap) return snap;
  snap = { chains: new Set(), rules: new Set(), byChain: new Map() };
  for (const table of ["filter", "nat"] as Table[]) {
    const res = run(ipt(table, "-S"));
    if (res.code !== 0) continue;
    for (const line of res.stdout.split("\n")) {
      const words = line.split(" ");
      if (words[0] === "-N") snap.chains.add(`${table} ${words[1]}`);
      if (words[0] !== "-A") continue;
      const key = ruleKey(table, words[1], words.slice(2));
      snap.rules.add(key);
      const chain = `${table} ${words[1]}`;
      let rules = snap.byChain.get(chain);
      if (!rules) snap.byChain.set(chain, (rules = []));
      rules.push({ key, line: table === "filter" ? line : `-t ${table} ${line}` });
    }
  }
  snapshots.set(plan, snap);
  return snap;
}

/** The given rules that the kernel holds (before `plan` runs). */
export function presentRules(plan: Plan, rules: Rule[]): Rule[] {
  const have = kernelRules(plan).rules;
  return rules.filter((r) => have.has(ruleKey(r.table, r.chain, r.spec)));
}

/** Adds whatever part of the base the kernel lacks (or an earlier plan of the command removes): all of it on a fresh host. */
export function installBase(plan: Plan, state: State): void {
  const cmd = commandOf(state);
  enlist(plan, state);
  const have = kernelRules(plan);
  for (const c of CHAINS) {
    const id = `${c.table} ${c.name}`;
    if (cmd.deletedChains?.has(id) || !have.chains.has(id)) plan.cmd(ipt(c.table, "-N", c.name), `create ctnet's chain ${c.name} (${c.table})`, ipt(c.table, "-X", c.name));
  }
  for (const r of BASE_RULES) if (cmd.deletedChains || presentRules(plan, [r]).length === 0) addRule(plan, r);
  cmd.deletedChains = null;
}

const jumpTarget = (line: string) => /(?:^| )-[jg] (CTNET-\S+)/.exec(line)?.[1];

/**
 * Removes the jumps first, so no packet meets a chain while it is being emptied; then the chains.
 *
 * A rule somebody else added inside a CTNET chain (`iptables -A CTNET-FORWARD …`) lives in ctnet's
 * chain, which ctnet made and now removes: the chain is flushed before it is deleted (no undo: those
 * rules are not ctnet's to put back), and ONE warning names every such rule. Rules outside CTNET chains
 * are never touched, besides ctnet's own jumps: a chain one of them still jumps to stays, with whatever
 * of theirs is in it and any chain that jumps to in turn, and the warning says so. Returns the warning.
 */
export function removeBase(plan: Plan, state: State): string | null {
  const cmd = commandOf(state);
  enlist(plan, state);
  const have = kernelRules(plan);
  for (const r of [...BASE_RULES].reverse()) {
    const copies = have.byChain.get(`${r.table} ${r.chain}`)?.filter((k) => k.key === ruleKey(r.table, r.chain, r.spec)).length ?? 0;
    for (let i = 0; i < copies; i++) deleteRule(plan, r);
  }
  // what stays in each chain once the command's plans have run: rules none of them deletes
  const deletions = new Map<string, number>();
  for (const p of cmd.plans) for (const key of deletedBy.get(p) ?? []) deletions.set(key, (deletions.get(key) ?? 0) + 1);
  const left = new Map<string, KernelRule[]>();
  for (const [chain, rules] of have.byChain) {
    left.set(chain, rules.filter((r) => {
      const n = deletions.get(r.key) ?? 0;
      if (n > 0) deletions.set(r.key, n - 1);
      return n === 0;
    }));
  }
  const ours = CHAINS.map((c) => `${c.table} ${c.name}`).filter((id) => have.chains.has(id));
  // chains others' rules still jump to stay, and so do the chains those jump to in turn
  const kept = new Set<string>();
  const keep = (from: string, rules: KernelRule[]) => {
    for (const r of rules) {
      const target = jumpTarget(r.line);
      const id = target && `${from.split(" ")[0]} ${target}`;
      if (!id || !ours.includes(id) || kept.has(id)) continue;
      kept.add(id);
      keep(id, left.get(id) ?? []);
    }
  };
  for (const [chain, rules] of left) if (!ours.includes(chain)) keep(chain, rules);
  const deleted = ours.filter((id) => !kept.has(id));
  const flushed: string[] = [];
  for (const id of deleted) {
    const foreign = left.get(id) ?? [];
    if (foreign.length === 0) continue;
    const [table, name] = id.split(" ") as [Table, string];
    flushed.push(...foreign.map((r) => r.line));
    plan.cmd(ipt(table, "-F", name), `${name} still holds rules ctnet did not add: they go with ctnet's chain (${foreign.map((r) => r.line).join("; ")})`, null);
  }
  for (const id of [...deleted].reverse()) {
    const [table, name] = id.split(" ") as [Table, string];
    plan.cmd(ipt(table, "-X", name), `delete ctnet's chain ${name} (${table})`, ipt(table, "-N", name));
  }
  cmd.deletedChains = new Set(deleted);
  const said: string[] = [];
  if (flushed.length) said.push(`ctnet's chains go, and with them ${flushed.length === 1 ? "a rule" : `${flushed.length} rules`} ctnet did not add: ${flushed.join("; ")}`);
  if (kept.size) said.push(`${[...kept].map((id) => id.split(" ")[1]).join(", ")} stay${kept.size === 1 ? "s" : ""}: rules ctnet did not add jump there`);
  return said.length ? said.join("; ") : null;
}

/**
 * Rules of the built-in FORWARD chain other than ctnet's jump: some other tool (Docker, netavark, libvirt…)
 * forwards through this host and may count on the net.ipv4.ip_forward that ctnet turned on before it came.
 */
export function othersForwarding(): string[] {
  return run(ipt("filter", "-S", "FORWARD")).stdout.split("\n").filter((l) => l.startsWith("-A FORWARD ") && !l.includes(" CTNET-"));
}

/**
 * Bridges of ctnet networks present in the kernel's isolation chain (each network has one rule there),
 * including those of other state dirs: the base chains stay while any remain.
 */
export function bridgesInKernel(): Set<string> {
  const res = run(ipt("filter", "-S", "CTNET-ISOLATION-2"));
  const bridges = res.stdout.split("\n").map((l) => /^-A CTNET-ISOLATION-2 -o (\S+) -j DROP$/.exec(l)?.[1]);
  return new Set(bridges.filter((b): b is string => !!b));
}

export const option = (net: NetworkRecord, key: string, fallback: string) => net.options[key] ?? fallback;

/** The rules one bridge network needs, in installation order. */
export function networkRules(net: NetworkRecord): Rule[] {
  const br = net.bridge;
  const rules: Rule[] = [];
  const f = (chain: string, spec: string[], why: string) => rules.push({ table: "filter", chain, spec, why });
  if (net.internal) {
    f("CTNET-ISOLATION", ["-i", br, "!", "-d", net.subnet, "-j", "DROP"], `${net.name} is internal: nothing leaves its subnet`);
    f("CTNET-ISOLATION", ["-o", br, "!", "-s", net.subnet, "-j", "DROP"], `${net.name} is internal: nothing enters from outside its subnet`);
  } else {
    f("CTNET-ISOLATION", ["-i", br, "!", "-o", br, "-j", "CTNET-ISOLATION-2"], `traffic leaving ${net.name} is checked against other ctnet networks`);
  }
  if (!net.internal) {
    f("CTNET-ISOLATION-2", ["-o", br, "-m", "conntrack", "--ctstate", "DNAT", "-j", "RETURN"], `other ctnet networks may use ${net.name}'s published ports (CTNET-PORTS decides)`);
  }
  f("CTNET-ISOLATION-2", ["-o", br, "-j", "DROP"], `other ctnet networks cannot reach ${net.name}`);
  f("CTNET-FORWARD", ["-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"], `replies reach containers on ${net.name}`);
  f("CTNET-FORWARD", ["-o", br, "-j", "CTNET-PORTS"], `published ports of ${net.name} are accepted from outside`);
  if (!net.internal) f("CTNET-FORWARD", ["-i", br, "!", "-o", br, "-j", "ACCEPT"], `containers on ${net.name} reach the outside`);
  const icc = option(net, "icc", "true") === "true";
  f("CTNET-FORWARD", ["-i", br, "-o", br, "-j", icc ? "ACCEPT" : "DROP"], icc ? `containers on ${net.name} reach each other` : `icc=false: containers on ${net.name} cannot reach each other`);
  f("CTNET-FORWARD", ["-o", br, "-j", "DROP"], `nothing else enters ${net.name}: hosts routing ${net.subnet} via this one reach published ports only`);
  if (!net.internal && option(net, "masquerade", "true") === "true") {
    rules.push({ table: "nat", chain: "CTNET-POSTROUTING", spec: ["-s", net.subnet, "!", "-o", br, "-j", "MASQUERADE"], why: `traffic from ${net.name} leaves with the host's address` });
  }
  return rules;
}
