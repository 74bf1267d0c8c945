// The iptables layer. ctnet's rules live only in its own chains; the built-in chains get one jump each.
//
//   filter FORWARD      -> CTNET-FORWARD (inserted first, so a DROP policy or others' rules come after)
//   CTNET-FORWARD       -> CTNET-ISOLATION first, then per network: replies in, published ports in,
//                          out of the bridge, and within the bridge (ACCEPT, or DROP with icc=false)
//   CTNET-ISOLATION     per network: leaving its bridge for another -> CTNET-ISOLATION-2; internal networks
//                          drop anything not to or from their own subnet
//   CTNET-ISOLATION-2   per network: entering its bridge (from another ctnet network) -> DROP
//   CTNET-PORTS         published ports: ACCEPT to the container's address and port
//   nat POSTROUTING     -> CTNET-POSTROUTING: MASQUERADE of each network's subnet leaving its bridge
//   nat PREROUTING, OUTPUT (dst-type LOCAL) -> CTNET-DNAT: DNAT of published ports
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
  { table: "nat", name: "CTNET-POSTROUTING" },
  { table: "nat", name: "CTNET-DNAT" },
];

const LOCAL = ["-m", "addrtype", "--dst-type", "LOCAL"];

/** The rules that tie ctnet's chains into the built-in ones, in the order they are installed. */
export const BASE_RULES: Rule[] = [
  { table: "filter", chain: "CTNET-FORWARD", spec: ["-j", "CTNET-ISOLATION"], why: "isolation between ctnet networks is checked before any accept" },
  { table: "filter", chain: "FORWARD", spec: ["-j", "CTNET-FORWARD"], why: "send forwarded traffic through ctnet's rules first", first: true },
  { table: "nat", chain: "POSTROUTING", spec: ["-j", "CTNET-POSTROUTING"], why: "let ctnet masquerade container traffic leaving the host" },
  { table: "nat", chain: "PREROUTING", spec: [...LOCAL, "-j", "CTNET-DNAT"], why: "published ports: traffic arriving for a host address" },
  { table: "nat", chain: "OUTPUT", spec: [...LOCAL, "-j", "CTNET-DNAT"], why: "published ports: traffic from the host itself to a host address" },
];

const ipt = (table: Table, ...args: string[]) => ["iptables", "-w", "-t", table, ...args];

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

export function installBase(plan: Plan): void {
  for (const c of CHAINS) plan.cmd(ipt(c.table, "-N", c.name), `create ctnet's chain ${c.name} (${c.table})`, ipt(c.table, "-X", c.name));
  for (const r of BASE_RULES) addRule(plan, r);
}

/** Removes the jumps first, so no packet meets a chain while it is being emptied. */
export function removeBase(plan: Plan): void {
  for (const r of [...BASE_RULES].reverse()) deleteRule(plan, r);
  for (const c of [...CHAINS].reverse()) {
    plan.cmd(ipt(c.table, "-X", c.name), `delete ctnet's chain ${c.name} (${c.table})`, ipt(c.table, "-N", c.name));
  }
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
  f("CTNET-ISOLATION-2", ["-o", br, "-j", "DROP"], `other ctnet networks cannot reach ${net.name}`);
  f("CTNET-FORWARD", ["-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"], `replies reach containers on ${net.name}`);
  f("CTNET-FORWARD", ["-o", br, "-j", "CTNET-PORTS"], `published ports of ${net.name} are accepted from outside`);
  if (!net.internal) f("CTNET-FORWARD", ["-i", br, "!", "-o", br, "-j", "ACCEPT"], `containers on ${net.name} reach the outside`);
  const icc = option(net, "icc", "true") === "true";
  f("CTNET-FORWARD", ["-i", br, "-o", br, "-j", icc ? "ACCEPT" : "DROP"], icc ? `containers on ${net.name} reach each other` : `icc=false: containers on ${net.name} cannot reach each other`);
  if (!net.internal && option(net, "masquerade", "true") === "true") {
    rules.push({ table: "nat", chain: "CTNET-POSTROUTING", spec: ["-s", net.subnet, "!", "-o", br, "-j", "MASQUERADE"], why: `traffic from ${net.name} leaves with the host's address` });
  }
  return rules;
}
