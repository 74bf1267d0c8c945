// The rule walk behind `ctnet trace`: a packet through the filter table's FORWARD chain as the kernel holds
// it (parsed by iptables.ts), from rule to rule and through every jump, to the rule or policy that decides.
import { addrValue, contains, parseCidr } from "../ipam.js";
import type { PresentRule, RuleSet } from "./iptables.js";

export interface Packet {
  in: string;
  out: string;
  src: string;
  dst: string;
  proto: "icmp" | "tcp";
  dport: number | null;
  /** conntrack states the packet has: NEW, plus DNAT when a published port rewrote it */
  ctstate: Set<string>;
}

export interface Walk {
  verdict: string;
  /** the rules that led to the verdict, as `iptables -S` prints them, ending with the deciding one */
  path: string[];
  /** rules passed over because they use a match the walk cannot evaluate */
  skipped: string[];
}

const ifMatch = (pattern: string, name: string) => (pattern.endsWith("+") ? name.startsWith(pattern.slice(0, -1)) : name === pattern);
const inCidr = (cidr: string, addr: string) => contains(parseCidr(cidr.includes("/") ? cidr : `${cidr}/32`), addrValue(addr));

/** Whether a rule's matches hold for the packet; null when it uses a match ctnet cannot evaluate. */
function matches(rule: PresentRule, p: Packet): { match: boolean | null; target: string | null } {
  const a = rule.spec;
  let target: string | null = null;
  let negate = false;
  let unknown = false;
  let ok = true;
  const test = (cond: boolean) => {
    if (cond === negate) ok = false;
    negate = false;
  };
  for (let i = 0; i < a.length; i++) {
    const w = a[i];
    switch (w) {
      case "!": negate = true; break;
      case "-i": test(ifMatch(a[++i], p.in)); break;
      case "-o": test(ifMatch(a[++i], p.out)); break;
      case "-s": test(inCidr(a[++i], p.src)); break;
      case "-d": test(inCidr(a[++i], p.dst)); break;
      // trace's packets start in a container, where they are not DNATed: their original destination is theirs
      case "--ctorigdst": test(inCidr(a[++i], p.dst)); break;
      case "-p": { const proto = a[++i]; test(proto === "all" || proto === p.proto); break; }
      case "--dport": test(p.dport !== null && Number(a[++i]) === p.dport); break;
      case "--ctstate": case "--state": test(a[++i].split(",").some((s) => p.ctstate.has(s))); break;
      case "-m": i++; break; // the match's own options follow and are handled above, or are unknown
      case "--comment": i++; break;
      case "-j": case "-g": target = a[++i]; i = a.length; break;
      default:
        if (w.startsWith("-")) unknown = true;
    }
  }
  return { match: unknown ? null : ok, target };
}

const TERMINAL = new Set(["ACCEPT", "DROP", "REJECT"]);

/** Walks the packet through filter FORWARD; returns the verdict and the rules that led to it. */
export function walkForward(set: RuleSet, p: Packet): Walk {
  const rules = new Map<string, PresentRule[]>();
  for (const r of set.rules) if (r.table === "filter") rules.set(r.chain, [...(rules.get(r.chain) ?? []), r]);
  const policies = new Map(set.chains.filter((c) => c.table === "filter").map((c) => [c.name, c.policy]));
  const path: string[] = [];
  const skipped: string[] = [];
  const walk = (chain: string, depth: number): string | null => {
    if (depth > 16) return null;
    for (const rule of rules.get(chain) ?? []) {
      const { match, target } = matches(rule, p);
      if (match === null) {
        skipped.push(rule.line);
        continue;
      }
      if (!match || target === null) continue;
      if (target === "RETURN") return null;
      path.push(rule.line);
      if (TERMINAL.has(target)) return target;
      if (rules.has(target) || policies.has(target)) {
        const verdict = walk(target, depth + 1);
        if (verdict) return verdict;
      }
      path.pop(); // a chain that returned, or LOG, MARK and the like, did not decide
    }
    return null;
  };
  const decided = walk("FORWARD", 0);
  const verdict = decided ?? policies.get("FORWARD") ?? "ACCEPT";
  if (!decided) path.push(`:FORWARD ${verdict} (the chain's policy: no rule decided)`);
  return { verdict, path, skipped };
}
