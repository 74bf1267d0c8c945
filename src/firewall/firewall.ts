// The firewall layer: the one place that turns intent (intent.ts: networks, published ports, the loopback
// guard) into iptables rules, reads and keys what the kernel holds (iptables.ts), and answers doctor
// (expected against present) and trace (walk.ts). Callers hold a FirewallDriver (`firewall`, below) and
// never write an iptables word themselves; docs/firewall.md shows the interface an nftables driver
// implements next.
//
// ctnet's rules live only in its own chains; the built-in chains get one jump each.
//
//   filter FORWARD      -> CTNET-FORWARD (inserted first, so a DROP policy or others' rules come after)
//   CTNET-FORWARD       1. a DROP of anything first addressed to 127/8 (a port published on 127.0.0.1,
//                          reached from a host that routes 127/8 via this one): the loopback guard
//                       2. -> CTNET-USER, the user's chain (Docker's DOCKER-USER): ctnet creates it empty
//                          and never adds to, flushes or reorders it; what it ACCEPTs or DROPs is decided
//                          before any of ctnet's isolation or accepts
//                       3. -> CTNET-ISOLATION, then per network: replies in, published ports in, out of the
//                          bridge, within the bridge (ACCEPT, or DROP with icc=false), and a final DROP of
//                          anything else entering the bridge (an outside host that routes the subnet via
//                          this one reaches published ports only)
//   CTNET-ISOLATION     per network: leaving its bridge for another -> CTNET-ISOLATION-2; internal networks
//                          drop anything not to or from their own subnet
//   CTNET-ISOLATION-2   per network: entering its bridge (from another ctnet network) -> DROP, except
//                          DNATed traffic, which CTNET-PORTS then judges (published ports via a host address)
//   CTNET-PORTS         published ports: ACCEPT of DNATed traffic to the container's port
//   CTNET-INPUT         (filter INPUT) while the host has an overlay network, first: VXLAN to its VTEP from
//                          each other member's VTEP -> RETURN, from anywhere else -> DROP; where
//                          route_localnet is on: drop new traffic from a bridge to 127/8; per user network:
//                          DNS queries to its gateway from outside its subnet -> DROP
//   nat POSTROUTING     -> CTNET-POSTROUTING: MASQUERADE of each network's subnet leaving its bridge, and
//                          hairpin and loopback-sourced traffic to published ports
//   nat PREROUTING, OUTPUT (dst-type LOCAL) -> CTNET-DNAT: DNAT of published ports
import { Plan } from "../plan/plan.js";
import {
  addArgv, deleteArgv, ipt, readChain, ruleKey, type PresentRule, type Rule, type RuleSet, type Table,
} from "./iptables.js";
import { ANY_ADDRESS, forwardedNetworks, mappingText, networksIntent, type FirewallIntent, type NetworkIntent, type PortIntent, type VxlanIntent } from "./intent.js";
import type { Packet, Walk } from "./walk.js";
import type { NetworkRecord, PortMapping, State } from "../model.js";

export type { Rule, RuleSet, Table } from "./iptables.js";

interface Chain {
  table: Table;
  name: string;
}

/** The user's chain: created empty, then theirs alone (never flushed, reordered or deleted while it holds rules). */
export const USER_CHAIN = "CTNET-USER";

export const CHAINS: Chain[] = [
  { table: "filter", name: "CTNET-FORWARD" },
  { table: "filter", name: USER_CHAIN },
  { table: "filter", name: "CTNET-ISOLATION" },
  { table: "filter", name: "CTNET-ISOLATION-2" },
  { table: "filter", name: "CTNET-PORTS" },
  { table: "filter", name: "CTNET-INPUT" },
  { table: "nat", name: "CTNET-POSTROUTING" },
  { table: "nat", name: "CTNET-DNAT" },
];

const LOCAL = ["-m", "addrtype", "--dst-type", "LOCAL"];

/**
 * The loopback guard, the jumps into ctnet's chains, in their chains' order. Those with a position go at
 * the top of their chain, in this order (placeBase), ahead of whatever others put there.
 */
export const BASE_RULES: Rule[] = [
  {
    table: "filter", chain: "CTNET-FORWARD", spec: ["-m", "conntrack", "--ctorigdst", "127.0.0.0/8", "-j", "DROP"],
    why: "a port published on 127.0.0.1 is for this host only: drop what came in from another host addressed to 127/8", position: 1,
  },
  { table: "filter", chain: "CTNET-FORWARD", spec: ["-j", USER_CHAIN], why: `the user's rules in ${USER_CHAIN} decide before any of ctnet's (as Docker's DOCKER-USER)`, position: 1 },
  { table: "filter", chain: "CTNET-FORWARD", spec: ["-j", "CTNET-ISOLATION"], why: "isolation between ctnet networks is checked before any accept", position: 1 },
  { table: "filter", chain: "FORWARD", spec: ["-j", "CTNET-FORWARD"], why: "send forwarded traffic through ctnet's rules first", position: 1 },
  { table: "filter", chain: "INPUT", spec: ["-j", "CTNET-INPUT"], why: "ctnet's guards of the host: its loopback on bridges where published ports need route_localnet, the DNS servers, the VXLAN port", position: 1 },
  { table: "nat", chain: "POSTROUTING", spec: ["-j", "CTNET-POSTROUTING"], why: "let ctnet masquerade container traffic leaving the host" },
  { table: "nat", chain: "PREROUTING", spec: [...LOCAL, "-j", "CTNET-DNAT"], why: "published ports: traffic arriving for a host address" },
  { table: "nat", chain: "OUTPUT", spec: [...LOCAL, "-j", "CTNET-DNAT"], why: "published ports: traffic from the host itself to a host address" },
];

/**
 * The base rules to add, given the keys of those present: each positioned one at the place that keeps the
 * base's order (after the base rules of its chain that are there or added before it).
 */
export function placeBase(present: (key: string) => boolean): Rule[] {
  const out: Rule[] = [];
  const above = new Map<string, number>();
  for (const r of BASE_RULES) {
    const chain = `${r.table} ${r.chain}`;
    const place = (above.get(chain) ?? 0) + 1;
    if (r.position) above.set(chain, place);
    if (!present(ruleKey(r))) out.push(r.position ? { ...r, position: place } : r);
  }
  return out;
}

export function addRule(plan: Plan, r: Rule): void {
  plan.cmd(addArgv(r), r.why, deleteArgv(r));
}

export function deleteRule(plan: Plan, r: Rule): void {
  plan.cmd(deleteArgv(r), `remove: ${r.why}`, addArgv(r));
  let deleted = deletedBy.get(plan);
  if (!deleted) deletedBy.set(plan, (deleted = []));
  deleted.push(ruleKey(r));
}

// ---- rules from intent ---------------------------------------------------------------------------

/** The rules one network needs, in installation order. */
export function networkRules(net: NetworkIntent): Rule[] {
  const br = net.bridge;
  const rules: Rule[] = [];
  const f = (chain: string, spec: string[], why: string) => rules.push({ table: "filter", chain, spec, why });
  if (net.internal) {
    f("CTNET-ISOLATION", ["-i", br, "!", "-d", net.subnet, "-j", "DROP"], `${net.name} is internal: nothing leaves its subnet`);
    f("CTNET-ISOLATION", ["-o", br, "!", "-s", net.subnet, "-j", "DROP"], `${net.name} is internal: nothing enters from outside its subnet`);
  } else {
    f("CTNET-ISOLATION", ["-i", br, "!", "-o", br, "-j", "CTNET-ISOLATION-2"], `traffic leaving ${net.name} is checked against other ctnet networks`);
    f("CTNET-ISOLATION-2", ["-o", br, "-m", "conntrack", "--ctstate", "DNAT", "-j", "RETURN"], `other ctnet networks may use ${net.name}'s published ports (CTNET-PORTS decides)`);
  }
  f("CTNET-ISOLATION-2", ["-o", br, "-j", "DROP"], `other ctnet networks cannot reach ${net.name}`);
  f("CTNET-FORWARD", ["-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"], `replies reach containers on ${net.name}`);
  f("CTNET-FORWARD", ["-o", br, "-j", "CTNET-PORTS"], `published ports of ${net.name} are accepted from outside`);
  if (!net.internal) f("CTNET-FORWARD", ["-i", br, "!", "-o", br, "-j", "ACCEPT"], `containers on ${net.name} reach the outside`);
  f("CTNET-FORWARD", ["-i", br, "-o", br, "-j", net.icc ? "ACCEPT" : "DROP"], net.icc ? `containers on ${net.name} reach each other` : `icc=false: containers on ${net.name} cannot reach each other`);
  f("CTNET-FORWARD", ["-o", br, "-j", "DROP"], `nothing else enters ${net.name}: hosts routing ${net.subnet} via this one reach published ports only`);
  if (net.names) {
    // a query to the gateway is the host's INPUT, past the isolation of FORWARD; and aardvark-dns answers a
    // client it does not know with the names of the network it was asked on (the host asks from the gateway)
    f("CTNET-INPUT", ["-d", `${net.gateway}/32`, "!", "-s", net.subnet, "-p", "udp", "-m", "udp", "--dport", "53", "-j", "DROP"],
      `only ${net.name}'s containers ask its DNS server for ${net.name}'s names`);
  }
  if (net.masquerade) {
    rules.push({ table: "nat", chain: "CTNET-POSTROUTING", spec: ["-s", net.subnet, "!", "-o", br, "-j", "MASQUERADE"], why: `traffic from ${net.name} leaves with the host's address` });
  }
  return rules;
}

const protoMatch = (p: string, port: number) => ["-p", p, "-m", p, "--dport", String(port)];

/**
 * The guard of the VXLAN port: a RETURN per other member's VTEP, then a DROP of the rest, matching this
 * host's VTEP address only (another VXLAN user's address is not ctnet's to guard). They sit at the top of
 * CTNET-INPUT, the RETURNs in address order and the DROP right after them, each at its place: a member
 * that joins later gets its RETURN at its place ahead of the DROP, and doctor puts a lost one back there.
 */
export function vxlanRules(v: VxlanIntent | undefined): Rule[] {
  if (!v) return [];
  const toVtep = ["-d", `${v.vtep}/32`, ...protoMatch("udp", v.port)];
  const rule = (spec: string[], why: string, position: number): Rule => ({ table: "filter", chain: "CTNET-INPUT", spec: [...toVtep, ...spec], why, position });
  return [
    ...v.peers.map((peer, i) => rule(["-s", `${peer}/32`, "-j", "RETURN"], `cluster member ${peer} may send VXLAN to this host`, i + 1)),
    rule(["-j", "DROP"], `only the cluster's members may send VXLAN to ${v.vtep}: anyone else could put frames into overlay networks`, v.peers.length + 1),
  ];
}

/** The three rules of one published mapping: ACCEPT of what was DNATed, hairpin MASQUERADE, the DNAT. */
export function portRules(p: PortIntent): Rule[] {
  const { mapping: m, network: net } = p;
  const br = net.bridge;
  const to = `${p.ip}:${m.containerPort}`;
  const dnatOnly = ["-m", "conntrack", "--ctstate", "DNAT"];
  return [
    {
      table: "filter", chain: "CTNET-PORTS",
      spec: ["-d", `${p.ip}/32`, "-o", br, ...protoMatch(m.proto, m.containerPort), ...dnatOnly, "-j", "ACCEPT"],
      why: `let published traffic through to ${p.container} ${to}/${m.proto}`,
    },
    {
      table: "nat", chain: "CTNET-POSTROUTING",
      spec: ["-s", net.subnet, "-d", `${p.ip}/32`, "-o", br, ...protoMatch(m.proto, m.containerPort), ...dnatOnly, "-j", "MASQUERADE"],
      why: `hairpin: containers on ${net.name} reaching ${p.container}'s published port get answers via the host`,
    },
    {
      table: "nat", chain: "CTNET-DNAT",
      spec: [...(m.hostIp === ANY_ADDRESS ? [] : ["-d", `${m.hostIp}/32`]), ...protoMatch(m.proto, m.hostPort), "-j", "DNAT", "--to-destination", to],
      why: `publish ${mappingText(m)}: ${m.hostIp === ANY_ADDRESS ? "every host address" : m.hostIp} port ${m.hostPort} goes to ${p.container} ${to}`,
    },
  ];
}

export const loopbackReachable = (hostIp: string) => hostIp === ANY_ADDRESS || hostIp.startsWith("127.");

/** A bridge with a port published on 127.0.0.1: route_localnet's guard, and the answer's way back. */
export function localnetRules(net: NetworkIntent): Rule[] {
  const br = net.bridge;
  return [
    {
      table: "filter", chain: "CTNET-INPUT",
      spec: ["-i", br, "-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED", "-j", "DROP"],
      why: `route_localnet on ${br} must not open the host's loopback services to containers`,
    },
    {
      table: "nat", chain: "CTNET-POSTROUTING",
      spec: ["-s", "127.0.0.0/8", "-o", br, "-j", "MASQUERADE"],
      why: `connections from 127.0.0.1 to ${net.name}'s published ports leave with the gateway's address`,
    },
  ];
}

/** The port rules of an intent, each once (a rule shared by two mappings stays while one needs it), by key. */
export function portRuleMap(ports: PortIntent[]): Map<string, Rule> {
  const rules = new Map<string, Rule>();
  const add = (r: Rule) => rules.set(ruleKey(r), r);
  const localnet = new Map<string, NetworkIntent>();
  for (const p of ports) {
    portRules(p).forEach(add);
    if (loopbackReachable(p.mapping.hostIp)) localnet.set(p.network.bridge, p.network);
  }
  for (const net of localnet.values()) localnetRules(net).forEach(add);
  return rules;
}

/** Every rule an intent implies, in installation order (none without a network: the base goes with the last). */
export function expectedRules(intent: FirewallIntent): Rule[] {
  if (intent.networks.length === 0) return [];
  return [...BASE_RULES, ...intent.networks.flatMap(networkRules), ...vxlanRules(intent.vxlan), ...portRuleMap(intent.ports).values()];
}

// ---- what the kernel holds, per plan ------------------------------------------------------------
// A host may hold rules made by an older ctnet (an upgrade while networks exist) or by another state dir:
// the base is completed rather than assumed, and teardown deletes only the rules that are there.

interface KernelRules {
  chains: Set<string>;
  keys: Set<string>;
  /** every rule of every chain, "table chain" -> rules in order (copies included) */
  byChain: Map<string, PresentRule[]>;
}

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
  /** bridges whose networks the command's plans remove: not other state dirs' networks */
  removedBridges: Set<string>;
}
const commands = new WeakMap<State, Command>();

function commandOf(state: State): Command {
  let cmd = commands.get(state);
  if (!cmd) commands.set(state, (cmd = { plans: new Set(), deletedChains: null, removedBridges: new Set() }));
  return cmd;
}

/** Counts `plan`'s rule deletions as ctnet's own when a later plan built against `state` removes the base. */
export function enlist(plan: Plan, state: State): void {
  commandOf(state).plans.add(plan);
}

/** What planning the firewall reads of the host: HostFacts (host/facts.ts) provides it, read once per command. */
export interface FirewallFacts {
  /** the kernel's filter and nat rules (none when they cannot be read) */
  firewallRules(): RuleSet;
  /** bridges of ctnet networks of any state dir, as the kernel's isolation chain names them */
  ctnetBridgesInFirewall(): Set<string>;
}

function kernelRules(facts: FirewallFacts): KernelRules {
  const set = facts.firewallRules();
  const snap: KernelRules = { chains: new Set(set.chains.map((c) => `${c.table} ${c.name}`)), keys: new Set(), byChain: new Map() };
  for (const r of set.rules) {
    snap.keys.add(r.key);
    const chain = `${r.table} ${r.chain}`;
    let rules = snap.byChain.get(chain);
    if (!rules) snap.byChain.set(chain, (rules = []));
    rules.push(r);
  }
  return snap;
}

/** The given rules that the kernel holds (before the command's plans run). */
function presentRules(facts: FirewallFacts, rules: Rule[]): Rule[] {
  const have = kernelRules(facts).keys;
  return rules.filter((r) => have.has(ruleKey(r)));
}

/** Adds whatever part of the base the kernel lacks (or an earlier plan of the command removes): all of it on a fresh host. */
function installBase(plan: Plan, state: State, facts: FirewallFacts): void {
  const cmd = commandOf(state);
  enlist(plan, state);
  const have = kernelRules(facts);
  for (const c of CHAINS) {
    const id = `${c.table} ${c.name}`;
    // the user's chain, once made, is theirs: kept by the removal of the base when it holds rules
    const kept = c.name === USER_CHAIN && (have.byChain.get(id)?.length ?? 0) > 0;
    if ((cmd.deletedChains?.has(id) && !kept) || !have.chains.has(id)) plan.cmd(ipt(c.table, "-N", c.name), `create ctnet's chain ${c.name} (${c.table})`, ipt(c.table, "-X", c.name));
  }
  for (const r of placeBase((key) => !cmd.deletedChains && have.keys.has(key))) addRule(plan, r);
  cmd.deletedChains = null;
}

export const jumpTarget = (r: PresentRule) => {
  const at = r.spec.findIndex((w) => w === "-j" || w === "-g");
  return at >= 0 && r.spec[at + 1]?.startsWith("CTNET-") ? r.spec[at + 1] : undefined;
};

/**
 * Removes the jumps first, so no packet meets a chain while it is being emptied; then the chains.
 *
 * A rule somebody else added inside a CTNET chain (`iptables -A CTNET-FORWARD …`) lives in ctnet's
 * chain, which ctnet made and now removes: the chain is flushed before it is deleted (no undo: those
 * rules are not ctnet's to put back), and ONE warning names every such rule. CTNET-USER is the exception:
 * it is the user's, and stays (rules and all) while it holds any. Rules outside CTNET chains are never
 * touched, besides ctnet's own jumps: a chain one of them still jumps to stays, with whatever of theirs
 * is in it and any chain that jumps to in turn, and the warning says so. Returns the warning.
 */
function removeBase(plan: Plan, state: State, facts: FirewallFacts): string | null {
  const cmd = commandOf(state);
  enlist(plan, state);
  const have = kernelRules(facts);
  // each with its place: a rollback puts them back by -I at that place, in the base's order
  for (const r of placeBase(() => false).reverse()) {
    const copies = have.byChain.get(`${r.table} ${r.chain}`)?.filter((k) => k.key === ruleKey(r)).length ?? 0;
    for (let i = 0; i < copies; i++) deleteRule(plan, r);
  }
  // what stays in each chain once the command's plans have run: rules none of them deletes
  const deletions = new Map<string, number>();
  for (const p of cmd.plans) for (const key of deletedBy.get(p) ?? []) deletions.set(key, (deletions.get(key) ?? 0) + 1);
  const left = new Map<string, PresentRule[]>();
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
  const keep = (from: string, rules: PresentRule[]) => {
    for (const r of rules) {
      const target = jumpTarget(r);
      const id = target && `${from.split(" ")[0]} ${target}`;
      if (!id || !ours.includes(id) || kept.has(id)) continue;
      kept.add(id);
      keep(id, left.get(id) ?? []);
    }
  };
  for (const [chain, rules] of left) if (!ours.includes(chain)) keep(chain, rules);
  const userChain = `filter ${USER_CHAIN}`;
  const userKept = (left.get(userChain)?.length ?? 0) > 0;
  if (userKept) keep(userChain, left.get(userChain)!);
  const deleted = ours.filter((id) => !kept.has(id) && !(id === userChain && userKept));
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
  const othersKept = [...kept].filter((id) => id !== userChain);
  if (othersKept.length) said.push(`${othersKept.map((id) => id.split(" ")[1]).join(", ")} stay${othersKept.length === 1 ? "s" : ""}: rules ctnet did not add jump there`);
  return said.length ? said.join("; ") : null;
}

/**
 * Rules of the built-in FORWARD chain other than ctnet's jump: some other tool (Docker, netavark, libvirt…)
 * forwards through this host and may count on the net.ipv4.ip_forward that ctnet turned on before it came.
 */
export function othersForwarding(): string[] {
  return readChain("filter", "FORWARD").filter((r) => !jumpTarget(r)).map((r) => r.line);
}

/**
 * Bridges of ctnet networks present in the kernel's isolation chain (each network has one rule there),
 * including those of other state dirs: the base chains stay while any remain.
 */
export function bridgesInKernel(): Set<string> {
  const bridges = readChain("filter", "CTNET-ISOLATION-2").map((r) => (r.spec.length === 4 && r.spec[0] === "-o" && r.spec[2] === "-j" && r.spec[3] === "DROP" ? r.spec[1] : null));
  return new Set(bridges.filter((b): b is string => !!b));
}

// ---- the driver ----------------------------------------------------------------------------------

/** What planning a change of networks tells the network driver. */
export interface FirewallChange {
  /** bridges of other state dirs' networks the kernel holds (read only when the last network goes) */
  otherBridges: string[];
  /** for the user: rules ctnet did not add that went with its chains, or chains that stay */
  warning: string | null;
}

/** What doctor and reset leave alone: what other state dirs (or running orphans) explain. */
export interface SparedRules {
  /** keys of the rules other state dirs' states imply */
  rules: Set<string>;
  /** rules naming these bridges or addresses stay */
  bridges: Set<string>;
  ips: Set<string>;
  /** another state dir has networks: ctnet's chains and the jumps into them stay */
  base: boolean;
  /** another state dir cannot be read: nothing of ctnet's that this state does not explain is touched */
  everything: boolean;
}

/** A difference doctor reports, and how --fix repairs it (phases as in doctor.ts). */
export interface RuleDifference {
  text: string;
  phase: number;
  fix?: (plan: Plan) => void;
}

/**
 * The firewall as the rest of ctnet sees it: intent in, plan steps, parsed rules, differences and walks
 * out. `iptablesFirewall` implements it; an nftables one (an `inet ctnet` table) would implement the same.
 */
export interface FirewallDriver {
  /** Steps taking the host from what `before` implies to what `after` implies (networks; ports: ports.ts). */
  plan(plan: Plan, state: State, before: FirewallIntent, after: FirewallIntent, facts: FirewallFacts): FirewallChange;
  /** Parses what the kernel holds, as the backend's own dump prints it. */
  read(dump: string): RuleSet;
  /** Reads the kernel's rules; a failing read is an error, or with strict: false reads as no rules. */
  readHost(o?: { strict?: boolean }): RuleSet;
  /** Every rule an intent implies, in installation order. */
  expected(intent: FirewallIntent): Rule[];
  /** A rule's identity, equal for a rule as ctnet writes it and as the kernel prints it back. */
  key(rule: { table: string; chain: string; spec: string[] }): string;
  /** doctor: what differs between what the intent implies and what the kernel holds. */
  differences(intent: FirewallIntent, present: RuleSet, spared: SparedRules): RuleDifference[];
  /** reset: removes what is ctnet's (this state's, or unclaimed) and keeps the user's chain while it holds rules. */
  planReset(plan: Plan, present: RuleSet, own: FirewallIntent, spared: SparedRules): void;
  /** trace: the rules a packet meets in the forward path, and the verdict. */
  walk(present: RuleSet, packet: Packet): Walk;
  /** graph: what the rules present for a network do. */
  networkFacts(present: RuleSet, net: NetworkIntent): NetworkFacts;
  /** graph: where the kernel's rules send a published port (ADDRESS:PORT), null when no rule does. */
  publishedTo(present: RuleSet, m: PortMapping): string | null;
  /** doctor: the mappings the kernel's rules publish, each with the container address it goes to. */
  publishedPorts(present: RuleSet): Array<{ ip: string; mapping: PortMapping }>;
  /** doctor: whether the kernel holds every rule of a published port. */
  holdsPort(present: RuleSet, p: PortIntent): boolean;
}

/** What ctnet's rules for one network in the kernel do (all false when none are there). */
export interface NetworkFacts {
  /** traffic leaving the network for another one is checked against the other networks */
  leavingChecked: boolean;
  /** traffic from other ctnet networks entering this one is dropped */
  enteringDropped: boolean;
  /** traffic between two containers of the network is dropped (icc=false) */
  iccDropped: boolean;
  /** the internal network's rules: nothing leaves or enters its subnet */
  internalDropped: boolean;
  /** the subnet is masqueraded leaving through another interface */
  masquerade: boolean;
}

export function planChange(plan: Plan, state: State, before: FirewallIntent, after: FirewallIntent, facts: FirewallFacts): FirewallChange {
  const cmd = commandOf(state);
  enlist(plan, state);
  const change: FirewallChange = { otherBridges: [], warning: null };
  const bridgesBefore = new Set(before.networks.map((n) => n.bridge));
  const bridgesAfter = new Set(after.networks.map((n) => n.bridge));
  const gone = before.networks.filter((n) => !bridgesAfter.has(n.bridge));
  const added = after.networks.filter((n) => !bridgesBefore.has(n.bridge));
  // only the rules that are there: a network made by an older ctnet may lack some
  for (const net of gone) {
    for (const rule of presentRules(facts, networkRules(net)).reverse()) deleteRule(plan, rule);
    cmd.removedBridges.add(net.bridge);
  }
  // the VXLAN guard: what only one side has (all of it when the first or last overlay network comes or
  // goes, else the RETURNs of members that came or went); removed from the bottom up, so that a rollback
  // puts each back at its place, and added top down, each at its place
  const guardBefore = vxlanRules(before.vxlan);
  const guardAfter = vxlanRules(after.vxlan);
  const onlyIn = (rules: Rule[], other: Rule[]) => rules.filter((r) => !other.some((o) => ruleKey(o) === ruleKey(r)));
  for (const rule of presentRules(facts, onlyIn(guardBefore, guardAfter)).reverse()) deleteRule(plan, rule);
  if (after.networks.length === 0 && gone.length > 0) {
    // each network, of any state dir, has a rule in CTNET-ISOLATION-2: the chains go with the last one
    change.otherBridges = [...facts.ctnetBridgesInFirewall()].filter((br) => !cmd.removedBridges.has(br));
    if (change.otherBridges.length === 0) change.warning = removeBase(plan, state, facts);
  }
  // adds only what the kernel lacks: another state dir (or an older ctnet) may have installed it
  if (before.networks.length === 0 && added.length > 0) installBase(plan, state, facts);
  for (const net of added) {
    cmd.removedBridges.delete(net.bridge);
    for (const rule of networkRules(net)) addRule(plan, rule);
  }
  for (const rule of onlyIn(guardAfter, guardBefore)) addRule(plan, rule);
  return change;
}

/** The firewall part of creating `net`, a bridge network (call before adding it to state.networks). */
export const planNetworkUp = (plan: Plan, state: State, net: NetworkRecord, facts: FirewallFacts): FirewallChange => {
  const others = forwardedNetworks(state).filter((n) => n.bridge !== net.bridge);
  return planChange(plan, state, networksIntent(state, others), networksIntent(state, [...others, net]), facts);
};

/** The firewall part of removing `net` (call after removing it from state.networks). */
export const planNetworkDown = (plan: Plan, state: State, net: NetworkRecord, facts: FirewallFacts): FirewallChange => {
  const others = forwardedNetworks(state).filter((n) => n.bridge !== net.bridge);
  return planChange(plan, state, networksIntent(state, [...others, net]), networksIntent(state, others), facts);
};

