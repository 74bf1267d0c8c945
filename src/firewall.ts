// The iptables layer. ctnet's rules live only in its own chains; the built-in chains get one jump each.
//
//   filter FORWARD      -> CTNET-FORWARD (inserted first, so a DROP policy or others' rules come after)
//   CTNET-FORWARD       -> CTNET-ISOLATION first, then per network: replies in, published ports in,
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
import { Plan } from "./plan.js";
import { run } from "./sys.js";
import type { NetworkRecord } from "./model.js";

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
}

/** Whether ctnet's chains are on the host already (possibly made by another state dir). */
export function baseInstalled(): boolean {
  return run(ipt("filter", "-S", "CTNET-FORWARD", "1")).code === 0;
}

// ---- what the kernel holds -----------------------------------------------------------------------
// A host may hold rules made by an older ctnet (an upgrade while networks exist) or by another state dir:
// the base is completed rather than assumed, and teardown deletes only the rules that are there.

interface KernelRules {
  chains: Set<string>;
  rules: Set<string>;
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
/** Plans that remove the base: a later step of the same plan that sets it up again must add all of it. */
const baseRemovedBy = new WeakSet<Plan>();

function kernelRules(plan: Plan): KernelRules {
  let snap = snapshots.get(plan);
  if (snap) return snap;
  snap = { chains: new Set(), rules: new Set() };
  for (const table of ["filter", "nat"] as Table[]) {
    const res = run(ipt(table, "-S"));
    if (res.code !== 0) continue;
    for (const line of res.stdout.split("\n")) {
      const words = line.split(" ");
      if (words[0] === "-N") snap.chains.add(`${table} ${words[1]}`);
      if (words[0] === "-A") snap.rules.add(ruleKey(table, words[1], words.slice(2)));
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

/** Adds whatever part of the base the kernel lacks: all of it on a fresh host. */
export function installBase(plan: Plan): void {
  const fresh = baseRemovedBy.has(plan);
  const have = kernelRules(plan);
  for (const c of CHAINS) {
    if (fresh || !have.chains.has(`${c.table} ${c.name}`)) plan.cmd(ipt(c.table, "-N", c.name), `create ctnet's chain ${c.name} (${c.table})`, ipt(c.table, "-X", c.name));
  }
  for (const r of BASE_RULES) if (fresh || presentRules(plan, [r]).length === 0) addRule(plan, r);
}

/** Removes the jumps first, so no packet meets a chain while it is being emptied. */
export function removeBase(plan: Plan): void {
  const have = kernelRules(plan);
  for (const r of presentRules(plan, [...BASE_RULES].reverse())) deleteRule(plan, r);
  for (const c of [...CHAINS].reverse()) {
    if (!have.chains.has(`${c.table} ${c.name}`)) continue;
    plan.cmd(ipt(c.table, "-X", c.name), `delete ctnet's chain ${c.name} (${c.table})`, ipt(c.table, "-N", c.name));
  }
  baseRemovedBy.add(plan);
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
