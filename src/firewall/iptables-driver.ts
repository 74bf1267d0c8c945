// The iptables FirewallDriver: what doctor (differences), reset, trace (the walk) and graph (facts) ask of
// the firewall, beside the planning in firewall.ts. A module of its own so that run, rm and ps, which only
// plan, do not load it.
import type { Plan } from "../plan/plan.js";
import {
  BASE_RULES, CHAINS, USER_CHAIN, addRule, expectedRules, jumpTarget, networkRules, placeBase, planChange, portRules,
  type FirewallDriver, type NetworkFacts, type RuleDifference, type SparedRules,
} from "./firewall.js";
import { deleteArgv, dnatOf, ipt, parseRuleset, readRuleset, ruleKey, type PresentRule, type Rule, type RuleSet, type Table } from "./iptables.js";
import type { FirewallIntent, NetworkIntent, PortIntent } from "./intent.js";
import { walkForward } from "./walk.js";
import type { PortMapping } from "../model.js";

function networkFacts(present: RuleSet, net: NetworkIntent): NetworkFacts {
  const keys = new Set(present.rules.map((r) => r.key));
  // the network's rules as each setting would make them: which of them the kernel holds tells the setting
  const has = (n: Partial<NetworkIntent>, pick: (r: Rule) => boolean) => networkRules({ ...net, ...n }).filter(pick).every((r) => keys.has(ruleKey(r)));
  const target = (r: Rule, chain: string, jump: string) => r.chain === chain && r.spec[r.spec.length - 1] === jump;
  return {
    leavingChecked: has({ internal: false }, (r) => target(r, "CTNET-ISOLATION", "CTNET-ISOLATION-2")),
    enteringDropped: has({}, (r) => target(r, "CTNET-ISOLATION-2", "DROP")),
    iccDropped: has({ icc: false }, (r) => target(r, "CTNET-FORWARD", "DROP") && r.spec.includes("-i")),
    internalDropped: has({ internal: true }, (r) => target(r, "CTNET-ISOLATION", "DROP")),
    masquerade: has({ internal: false, masquerade: true }, (r) => r.table === "nat"),
  };
}

function publishedPorts(present: RuleSet): Array<{ ip: string; mapping: PortMapping; to: string }> {
  const out: Array<{ ip: string; mapping: PortMapping; to: string }> = [];
  for (const r of present.rules) {
    const d = r.table === "nat" && r.chain === "CTNET-DNAT" ? dnatOf(r.spec) : null;
    const to = d && /^(.+):(\d+)$/.exec(d.to);
    if (d && to) out.push({ ip: to[1], to: d.to, mapping: { hostIp: d.hostIp, hostPort: d.hostPort, containerPort: Number(to[2]), proto: d.proto } });
  }
  return out;
}

function publishedTo(present: RuleSet, m: PortMapping): string | null {
  const p = publishedPorts(present).find(({ mapping: d }) => d.hostIp === m.hostIp && d.hostPort === m.hostPort && d.proto === m.proto);
  return p?.to ?? null;
}

function holdsPort(present: RuleSet, p: PortIntent): boolean {
  const keys = new Set(present.rules.map((r) => r.key));
  return portRules(p).every((r) => keys.has(ruleKey(r)));
}

const isUserRule = (r: { table: string; chain: string }) => r.table === "filter" && r.chain === USER_CHAIN;
const isCtnetChain = (name: string) => name.startsWith("CTNET-");
/** A rule in one of ctnet's chains, or jumping to one. */
const isCtnetRule = (r: PresentRule) => isCtnetChain(r.chain) || r.spec.some((w, i) => (r.spec[i - 1] === "-j" || r.spec[i - 1] === "-g") && isCtnetChain(w));

/** A rule as `iptables -t TABLE -A CHAIN …` for messages. */
const show = (r: { table: Table; chain: string; spec: string[] }) => `-t ${r.table} -A ${r.chain} ${r.spec.join(" ")}`;

function differences(intent: FirewallIntent, present: RuleSet, spared: SparedRules): RuleDifference[] {
  const out: RuleDifference[] = [];
  const expected = expectedRules(intent);
  // a running orphan left alone, or another state dir's network, keeps its rules, and the chains and
  // jumps that lead to them
  const keepBase = spared.bridges.size > 0 || spared.ips.size > 0 || spared.base || spared.everything;
  const wantChains = expected.length > 0 ? CHAINS : [];
  const baseKeys = new Set(BASE_RULES.map(ruleKey));
  const isSpared = (r: PresentRule) =>
    spared.everything || spared.rules.has(r.key) || isUserRule(r) ||
    (keepBase && baseKeys.has(r.key)) ||
    r.spec.some((w) => spared.bridges.has(w) || spared.ips.has(w.replace(/(\/32|:\d+)$/, "")));
  const have = new Map<string, PresentRule[]>();
  for (const r of present.rules) have.set(r.key, [...(have.get(r.key) ?? []), r]);
  const wanted = new Map(expected.map((r) => [ruleKey(r), r]));

  for (const r of present.rules) {
    if (!isCtnetRule(r) || isSpared(r)) continue;
    if (!wanted.has(r.key)) {
      out.push({ text: `stale rule ${show(r)}: nothing in ctnet's state needs it`, phase: 3, fix: (plan) => plan.cmd(deleteArgv(r), `remove stale rule`, null) });
    }
  }
  for (const [key, rules] of have) {
    if (!wanted.has(key) || rules.length < 2) continue;
    const r = rules[0];
    out.push({
      text: `duplicate rule (${rules.length} copies) ${show(r)}`,
      phase: 3,
      fix: (plan) => rules.slice(1).forEach(() => plan.cmd(deleteArgv(r), "remove a duplicate copy", null)),
    });
  }
  const wantChainSet = new Set(wantChains.map((c) => `${c.table} ${c.name}`));
  for (const c of present.chains) {
    if (!isCtnetChain(c.name) || wantChainSet.has(`${c.table} ${c.name}`) || keepBase) continue;
    if (isUserRule({ table: c.table, chain: c.name })) {
      // the user's chain outlives ctnet's networks while it holds their rules; empty, it is only ctnet's
      if (present.rules.some(isUserRule)) continue;
      out.push({ text: `orphan chain ${c.name} (${c.table}), empty`, phase: 4, fix: (plan) => plan.cmd(ipt(c.table, "-X", c.name), `delete orphan chain ${c.name}`, null) });
      continue;
    }
    out.push({
      text: `orphan chain ${c.name} (${c.table})`,
      phase: 4,
      fix: (plan) => {
        plan.cmd(ipt(c.table, "-F", c.name), `empty orphan chain ${c.name}`, null);
        plan.cmd(ipt(c.table, "-X", c.name), `delete orphan chain ${c.name}`, null);
      },
    });
  }
  const haveChains = new Set(present.chains.map((c) => `${c.table} ${c.name}`));
  for (const c of wantChains) {
    if (!haveChains.has(`${c.table} ${c.name}`)) {
      out.push({ text: `chain ${c.name} (${c.table}) is missing`, phase: 5, fix: (plan) => plan.cmd(ipt(c.table, "-N", c.name), `recreate ctnet's chain ${c.name}`, ipt(c.table, "-X", c.name)) });
    }
  }
  // base rules go back at their place; a network's rules in one chain only work in their order: when one
  // is missing, the group is reinstalled
  const missingBase = wantChains.length ? placeBase((key) => have.has(key)) : [];
  for (const r of missingBase) {
    out.push({ text: `rule missing: ${show(r)} (${r.why})`, phase: 6, fix: (plan) => addRule(plan, r) });
  }
  const groups = new Map<string, Rule[]>();
  for (const r of expected) {
    if (BASE_RULES.includes(r)) continue;
    const owner = /-[io] (\S+)/.exec(r.spec.join(" "))?.[1] ?? r.spec.join(" ");
    const g = `${owner} ${r.table} ${r.chain}`;
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  for (const rules of groups.values()) {
    const missing = rules.filter((r) => !have.has(ruleKey(r)));
    if (missing.length === 0) continue;
    const present = rules.filter((r) => !missing.includes(r));
    for (const r of missing) {
      out.push({
        text: `rule missing: ${show(r)} (${r.why})`,
        phase: 6,
        fix: (plan) => {
          if (r !== missing[0]) return;
          // reinstall the whole group in order
          for (const p of present) plan.cmd(deleteArgv(p), "reinstalled below, in order", null);
          for (const m of rules) addRule(plan, m);
        },
      });
    }
  }
  return out;
}

function planReset(plan: Plan, present: RuleSet, own: FirewallIntent, spared: SparedRules): void {
  const ownRules = new Set(expectedRules(own).map(ruleKey));
  const baseKeys = new Set(BASE_RULES.map(ruleKey));
  const unclaimed = !spared.everything;
  const keepChains = spared.base || spared.everything;
  const removable = (r: PresentRule) =>
    isCtnetRule(r) && !isUserRule(r) && !(keepChains && baseKeys.has(r.key)) && !spared.rules.has(r.key) && (ownRules.has(r.key) || unclaimed);
  // the jumps into ctnet's chains, then the chains, emptied; while another state dir has networks, the
  // chains stay and only this dir's rules in them go. The user's chain stays while it holds rules.
  for (const r of present.rules) {
    if (!removable(r)) continue;
    if (!isCtnetChain(r.chain)) plan.cmd(deleteArgv(r), `remove the jump from ${r.chain} into ctnet's chains`, null);
    else if (keepChains) plan.cmd(deleteArgv(r), `remove this state dir's rule from ${r.chain}`, null);
  }
  if (keepChains) return;
  const userRules = present.rules.filter(isUserRule);
  const chains = present.chains.filter((c) => isCtnetChain(c.name) && !(isUserRule({ table: c.table, chain: c.name }) && userRules.length > 0));
  // the user's rules that jump to a chain of ctnet's keep it (emptied of ctnet's rules)
  const jumpedTo = new Set(userRules.map(jumpTarget).filter((t): t is string => !!t));
  for (const c of chains) plan.cmd(ipt(c.table, "-F", c.name), `empty ctnet's chain ${c.name}`, null);
  for (const c of chains) if (!jumpedTo.has(c.name)) plan.cmd(ipt(c.table, "-X", c.name), `delete ctnet's chain ${c.name}`, null);
}

export const iptablesFirewall: FirewallDriver = {
  plan: planChange,
  read: (dump) => parseRuleset(dump),
  readHost: (o) => readRuleset(o?.strict ?? true),
  expected: expectedRules,
  key: ruleKey,
  differences,
  planReset,
  walk: walkForward,
  networkFacts,
  publishedTo,
  publishedPorts,
  holdsPort,
};

/** The firewall driver ctnet uses. */
export const firewall: FirewallDriver = iptablesFirewall;
