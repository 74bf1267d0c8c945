// The firewall layer without the kernel: intent -> rules -> iptables-save text -> parse -> key, the rules
// as the kernel prints them back keyed the same, doctor's expected-against-present, reset's keeping of the
// user's chain, trace's walk on a parsed ruleset, and the VXLAN guard as members and overlay networks come and go.
import { describe, expect, it } from "vitest";
import { CHAINS, planChange, planNetworkDown, planNetworkUp, vxlanRules, type FirewallFacts, type RuleDifference, type SparedRules } from "../../src/firewall/firewall.js";
import { firewall } from "../../src/firewall/iptables-driver.js";
import { dnatOf, parseRuleset, renderSave, ruleKey, type RuleSet } from "../../src/firewall/iptables.js";
import { intentOf, type FirewallIntent, type NetworkIntent } from "../../src/firewall/intent.js";
import { emptyState, type NetworkRecord, type State } from "../../src/model.js";
import { Plan, type CmdStep } from "../../src/plan/plan.js";
import type { Packet } from "../../src/firewall/walk.js";

const red: NetworkIntent = { name: "red", bridge: "ctbr-red", subnet: "10.9.0.0/24", gateway: "10.9.0.1", names: true, internal: false, icc: true, masquerade: true };
const lab: NetworkIntent = { name: "lab", bridge: "ctbr-lab", subnet: "10.8.0.0/24", gateway: "10.8.0.1", names: true, internal: true, icc: false, masquerade: false };
const intent: FirewallIntent = {
  networks: [red, lab],
  ports: [
    { container: "web", ip: "10.9.0.2", network: red, mapping: { hostIp: "0.0.0.0", hostPort: 8080, containerPort: 80, proto: "tcp" } },
    { container: "web", ip: "10.9.0.2", network: red, mapping: { hostIp: "192.0.2.10", hostPort: 5353, containerPort: 53, proto: "udp" } },
  ],
};

/**
 * What iptables-save (iptables-nft 1.8) printed after iptables-restore of this intent's rules in a fresh
 * network namespace: options reordered ("! -d NET -i BR"), "-m tcp" added, chains sorted.
 */
const KERNEL = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CTNET-FORWARD - [0:0]
:CTNET-INPUT - [0:0]
:CTNET-ISOLATION - [0:0]
:CTNET-ISOLATION-2 - [0:0]
:CTNET-PORTS - [0:0]
:CTNET-USER - [0:0]
-A INPUT -j CTNET-INPUT
-A FORWARD -j CTNET-FORWARD
-A CTNET-FORWARD -m conntrack --ctorigdst 127.0.0.0/8 -j DROP
-A CTNET-FORWARD -j CTNET-USER
-A CTNET-FORWARD -j CTNET-ISOLATION
-A CTNET-FORWARD -o ctbr-red -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A CTNET-FORWARD -o ctbr-red -j CTNET-PORTS
-A CTNET-FORWARD -i ctbr-red ! -o ctbr-red -j ACCEPT
-A CTNET-FORWARD -i ctbr-red -o ctbr-red -j ACCEPT
-A CTNET-FORWARD -o ctbr-red -j DROP
-A CTNET-FORWARD -o ctbr-lab -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A CTNET-FORWARD -o ctbr-lab -j CTNET-PORTS
-A CTNET-FORWARD -i ctbr-lab -o ctbr-lab -j DROP
-A CTNET-FORWARD -o ctbr-lab -j DROP
-A CTNET-INPUT ! -s 10.9.0.0/24 -d 10.9.0.1/32 -p udp -m udp --dport 53 -j DROP
-A CTNET-INPUT ! -s 10.8.0.0/24 -d 10.8.0.1/32 -p udp -m udp --dport 53 -j DROP
-A CTNET-INPUT -d 127.0.0.0/8 -i ctbr-red -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP
-A CTNET-ISOLATION -i ctbr-red ! -o ctbr-red -j CTNET-ISOLATION-2
-A CTNET-ISOLATION ! -d 10.8.0.0/24 -i ctbr-lab -j DROP
-A CTNET-ISOLATION ! -s 10.8.0.0/24 -o ctbr-lab -j DROP
-A CTNET-ISOLATION-2 -o ctbr-red -m conntrack --ctstate DNAT -j RETURN
-A CTNET-ISOLATION-2 -o ctbr-red -j DROP
-A CTNET-ISOLATION-2 -o ctbr-lab -j DROP
-A CTNET-PORTS -d 10.9.0.2/32 -o ctbr-red -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT
-A CTNET-PORTS -d 10.9.0.2/32 -o ctbr-red -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CTNET-DNAT - [0:0]
:CTNET-POSTROUTING - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j CTNET-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j CTNET-DNAT
-A POSTROUTING -j CTNET-POSTROUTING
-A CTNET-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.9.0.2:80
-A CTNET-DNAT -d 192.0.2.10/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.9.0.2:53
-A CTNET-POSTROUTING -s 10.9.0.0/24 ! -o ctbr-red -j MASQUERADE
-A CTNET-POSTROUTING -s 10.9.0.0/24 -d 10.9.0.2/32 -o ctbr-red -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j MASQUERADE
-A CTNET-POSTROUTING -s 10.9.0.0/24 -d 10.9.0.2/32 -o ctbr-red -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -j MASQUERADE
-A CTNET-POSTROUTING -s 127.0.0.0/8 -o ctbr-red -j MASQUERADE
COMMIT
`;

const none = (): SparedRules => ({ rules: new Set(), bridges: new Set(), ips: new Set(), base: false, everything: false });
const withRules = (set: RuleSet, lines: string[]): RuleSet => {
  const more = parseRuleset(lines.join("\n"));
  return { chains: set.chains, rules: [...set.rules, ...more.rules] };
};
const without = (set: RuleSet, line: string): RuleSet => ({ chains: set.chains, rules: set.rules.filter((r) => r.line !== line) });
const argvs = (fix: RuleDifference) => {
  const plan = new Plan("fix");
  fix.fix?.(plan);
  return (plan.steps as CmdStep[]).map((s) => s.argv.join(" "));
};

describe("intent -> rules -> iptables-save -> parse -> key", () => {
  const rules = firewall.expected(intent);

  it("comes back with every rule, in order (a section per table), under the same key", () => {
    const parsed = firewall.read(renderSave({ chains: CHAINS, rules }));
    const byTable = [...rules.filter((r) => r.table === "filter"), ...rules.filter((r) => r.table === "nat")];
    expect(parsed.rules.map((r) => r.key)).toEqual(byTable.map((r) => firewall.key(r)));
    expect(parsed.rules.map((r) => r.spec)).toEqual(byTable.map((r) => r.spec));
    expect(parsed.chains.map((c) => c.name).sort()).toEqual(CHAINS.map((c) => c.name).sort());
  });

  it("keys the rules as the kernel prints them back like the rules ctnet wrote", () => {
    const kernel = firewall.read(KERNEL);
    expect(new Set(kernel.rules.map((r) => r.key))).toEqual(new Set(rules.map((r) => firewall.key(r))));
    expect(kernel.rules).toHaveLength(rules.length);
  });

  it("one key for the spellings of one rule, and different keys for different rules", () => {
    const k = (spec: string) => ruleKey({ table: "filter", chain: "C", spec: spec.split(" ") });
    expect(k("-i br ! -d 10.0.0.0/8 -j DROP")).toBe(k("! --destination 10.0.0.0/8 --in-interface br --jump DROP"));
    expect(k("-d 10.9.0.2 -p tcp --dport 80 -j ACCEPT")).toBe(k("-d 10.9.0.2/32 -p tcp -m tcp --dport 80 -j ACCEPT"));
    expect(k("-i br ! -o br -j ACCEPT")).not.toBe(k("! -i br -o br -j ACCEPT"));
    expect(k("-o br -j DROP")).not.toBe(ruleKey({ table: "nat", chain: "C", spec: ["-o", "br", "-j", "DROP"] }));
  });

  it("reads a DNAT rule's mapping as ctnet and Docker write it (ports held by others)", () => {
    const spec = (line: string) => parseRuleset(line, "nat").rules[0].spec;
    // test/fixtures/docker-20.10/iptables-save.txt
    expect(dnatOf(spec("-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"))).toEqual({ hostIp: "0.0.0.0", proto: "tcp", hostPort: 8080, to: "172.17.0.2:80" });
    expect(dnatOf(spec("-A CTNET-DNAT -d 192.0.2.10/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.9.0.2:53"))).toEqual({ hostIp: "192.0.2.10", proto: "udp", hostPort: 5353, to: "10.9.0.2:53" });
    expect(dnatOf(spec("-A DOCKER ! -d 10.0.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80"))).toBeNull();
    expect(dnatOf(spec("-A DOCKER -i docker0 -j RETURN"))).toBeNull();
  });

  it("parses quoted words, policies and both dump forms", () => {
    const save = parseRuleset(`*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m comment --comment "a \\"b\\" c" -j ACCEPT\nCOMMIT\n`);
    expect(save.chains).toEqual([{ table: "filter", name: "FORWARD", policy: "DROP" }]);
    expect(save.rules[0].spec).toEqual(["-m", "comment", "--comment", 'a "b" c', "-j", "ACCEPT"]);
    const listed = parseRuleset("-P PREROUTING ACCEPT\n-N CTNET-DNAT\n-A CTNET-DNAT -p tcp -m tcp --dport 1 -j DNAT --to-destination 10.0.0.2:1\n", "nat");
    expect(listed.chains.map((c) => `${c.table} ${c.name} ${c.policy}`)).toEqual(["nat PREROUTING ACCEPT", "nat CTNET-DNAT -"]);
    expect(listed.rules[0].line).toBe("-t nat -A CTNET-DNAT -p tcp -m tcp --dport 1 -j DNAT --to-destination 10.0.0.2:1");
    expect(firewall.read(renderSave(save)).rules[0].spec).toEqual(save.rules[0].spec);
  });
});

describe("doctor: expected against present", () => {
  const kernel = firewall.read(KERNEL);

  it("finds nothing when the kernel holds what the intent implies", () => {
    expect(firewall.differences(intent, kernel, none())).toEqual([]);
  });

  it("reinstalls a network's group of rules in order when one is missing", () => {
    const found = firewall.differences(intent, without(kernel, "-A CTNET-FORWARD -i ctbr-red ! -o ctbr-red -j ACCEPT"), none());
    expect(found.map((f) => f.text)).toEqual(["rule missing: -t filter -A CTNET-FORWARD -i ctbr-red ! -o ctbr-red -j ACCEPT (containers on red reach the outside)"]);
    expect(argvs(found[0])).toEqual([
      "iptables -w -t filter -D CTNET-FORWARD -o ctbr-red -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "iptables -w -t filter -D CTNET-FORWARD -o ctbr-red -j CTNET-PORTS",
      "iptables -w -t filter -D CTNET-FORWARD -i ctbr-red -o ctbr-red -j ACCEPT",
      "iptables -w -t filter -D CTNET-FORWARD -o ctbr-red -j DROP",
      "iptables -w -t filter -A CTNET-FORWARD -o ctbr-red -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "iptables -w -t filter -A CTNET-FORWARD -o ctbr-red -j CTNET-PORTS",
      "iptables -w -t filter -A CTNET-FORWARD -i ctbr-red ! -o ctbr-red -j ACCEPT",
      "iptables -w -t filter -A CTNET-FORWARD -i ctbr-red -o ctbr-red -j ACCEPT",
      "iptables -w -t filter -A CTNET-FORWARD -o ctbr-red -j DROP",
    ]);
  });

  it("puts a lost jump to CTNET-USER back at its place, after the loopback guard", () => {
    const found = firewall.differences(intent, without(kernel, "-A CTNET-FORWARD -j CTNET-USER"), none());
    expect(found).toHaveLength(1);
    expect(argvs(found[0])).toEqual(["iptables -w -t filter -I CTNET-FORWARD 2 -j CTNET-USER"]);
  });

  it("leaves the user's rules in CTNET-USER alone, and calls others' rules in ctnet's chains stale", () => {
    const present = withRules(kernel, ["-A CTNET-USER -s 10.9.0.3/32 -j DROP", "-A CTNET-FORWARD -i ctbr-red -j LOG"]);
    const found = firewall.differences(intent, present, none());
    expect(found.map((f) => f.text)).toEqual(["stale rule -t filter -A CTNET-FORWARD -i ctbr-red -j LOG: nothing in ctnet's state needs it"]);
  });

  it("without networks: ctnet's chains are orphans, but CTNET-USER only when empty, and it is never flushed", () => {
    const chains = kernel.chains.filter((c) => c.name.startsWith("CTNET-"));
    const empty: RuleSet = { chains, rules: [] };
    const found = firewall.differences({ networks: [], ports: [] }, empty, none());
    const user = found.find((f) => f.text.startsWith("orphan chain CTNET-USER"))!;
    expect(argvs(user)).toEqual(["iptables -w -t filter -X CTNET-USER"]);
    const kept = firewall.differences({ networks: [], ports: [] }, withRules(empty, ["-A CTNET-USER -j DROP"]), none());
    expect(kept.map((f) => f.text).filter((t) => t.includes("CTNET-USER"))).toEqual([]);
    expect(kept).toHaveLength(chains.length - 1);
  });
});

describe("reset", () => {
  const kernel = firewall.read(KERNEL);
  const steps = (present: RuleSet) => {
    const plan = new Plan("reset");
    firewall.planReset(plan, present, intent, none());
    return (plan.steps as CmdStep[]).map((s) => s.argv.slice(4).join(" "));
  };

  it("removes the jumps and every chain of ctnet's, CTNET-USER too when it is empty", () => {
    const out = steps(kernel);
    expect(out).toContain("-D FORWARD -j CTNET-FORWARD");
    expect(out).toContain("-F CTNET-USER");
    expect(out).toContain("-X CTNET-USER");
    expect(out.filter((s) => s.startsWith("-X"))).toHaveLength(CHAINS.length);
  });

  it("keeps CTNET-USER with the user's rules", () => {
    const out = steps(withRules(kernel, ["-A CTNET-USER -d 10.9.0.2/32 -j DROP"]));
    expect(out.filter((s) => s.includes("CTNET-USER") && !s.startsWith("-F CTNET-FORWARD"))).toEqual([]);
    expect(out).toContain("-X CTNET-FORWARD");
  });
});

describe("trace: the walk on a parsed ruleset", () => {
  const kernel = firewall.read(KERNEL);
  const packet = (p: Partial<Packet>): Packet => ({ in: "ctbr-red", out: "ctbr-lab", src: "10.9.0.2", dst: "10.8.0.2", proto: "icmp", dport: null, ctstate: new Set(["NEW"]), ...p });

  it("drops red -> lab in the isolation chains", () => {
    const w = firewall.walk(kernel, packet({}));
    expect(w.verdict).toBe("DROP");
    expect(w.path).toEqual([
      "-A FORWARD -j CTNET-FORWARD",
      "-A CTNET-FORWARD -j CTNET-ISOLATION",
      "-A CTNET-ISOLATION -i ctbr-red ! -o ctbr-red -j CTNET-ISOLATION-2",
      "-A CTNET-ISOLATION-2 -o ctbr-lab -j DROP",
    ]);
  });

  it("lets the user's chain decide first, after the loopback guard", () => {
    const present = withRules(kernel, ["-A CTNET-USER -i ctbr-red -o ctbr-red -j DROP"]);
    const w = firewall.walk(present, packet({ out: "ctbr-red", dst: "10.9.0.3" }));
    expect(w).toEqual({ verdict: "DROP", path: ["-A FORWARD -j CTNET-FORWARD", "-A CTNET-FORWARD -j CTNET-USER", "-A CTNET-USER -i ctbr-red -o ctbr-red -j DROP"], skipped: [] });
    expect(firewall.walk(kernel, packet({ out: "ctbr-red", dst: "10.9.0.3" })).verdict).toBe("ACCEPT");
    const guard = firewall.walk(present, packet({ in: "uplink0", out: "ctbr-red", dst: "127.0.0.1" }));
    expect(guard.path.at(-1)).toBe("-A CTNET-FORWARD -m conntrack --ctorigdst 127.0.0.0/8 -j DROP");
  });
});

describe("graph: what a network's rules in the kernel do", () => {
  it("reads icc, isolation, internal and masquerade back", () => {
    const kernel = firewall.read(KERNEL);
    expect(firewall.networkFacts(kernel, red)).toEqual({ leavingChecked: true, enteringDropped: true, iccDropped: false, internalDropped: false, masquerade: true });
    expect(firewall.networkFacts(kernel, lab)).toEqual({ leavingChecked: false, enteringDropped: true, iccDropped: true, internalDropped: true, masquerade: false });
    expect(firewall.publishedTo(kernel, { hostIp: "192.0.2.10", hostPort: 5353, containerPort: 53, proto: "udp" })).toBe("10.9.0.2:53");
    expect(firewall.publishedTo(kernel, { hostIp: "0.0.0.0", hostPort: 5353, containerPort: 53, proto: "udp" })).toBeNull();
  });

  it("doctor: the ports the kernel publishes, and whether all of a port's rules are there", () => {
    const kernel = firewall.read(KERNEL);
    expect(firewall.publishedPorts(kernel).map(({ ip, mapping }) => ({ ip, mapping }))).toEqual(intent.ports.map((p) => ({ ip: p.ip, mapping: p.mapping })));
    expect(firewall.holdsPort(kernel, intent.ports[0])).toBe(true);
    const lost = without(kernel, "-A CTNET-PORTS -d 10.9.0.2/32 -o ctbr-red -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT");
    expect(firewall.holdsPort(lost, intent.ports[0])).toBe(false);
    expect(firewall.holdsPort(lost, intent.ports[1])).toBe(true);
  });
});

describe("the VXLAN guard: who may send to this host's VTEP", () => {
  const overlayNet = (name: string, subnet: string): NetworkRecord => ({
    name, id: name, created: "", driver: "overlay", vni: 4096, bridge: `ctbr-${name}`, subnet, gateway: subnet.replace(/0\/24$/, "1"), internal: false, options: {}, labels: {},
  });
  const joined = (peers?: string[], ...nets: NetworkRecord[]): State => ({
    ...emptyState(),
    networks: Object.fromEntries(nets.map((n) => [n.name, n])),
    cluster: { store: "etcd://10.77.0.101:2379", host: "h1", advertise: "10.77.0.1", ttl: 15, lease: "1", joined: "", ...(peers ? { peers } : {}) },
  });
  const ov = overlayNet("ov", "10.230.0.0/24");
  const ov2 = overlayNet("ov2", "10.231.0.0/24");
  const facts = (lines: string[]): FirewallFacts => ({ firewallRules: () => parseRuleset(lines.join("\n")), ctnetBridgesInFirewall: () => new Set() });
  const guardLines = (peers: string[]) => vxlanRules({ vtep: "10.77.0.1", port: 4789, peers }).map((r) => `-A CTNET-INPUT ${r.spec.join(" ")}`);
  const rules = (plan: Plan) => (plan.steps as CmdStep[]).map((s) => s.argv.slice(4).join(" ")).filter((s) => s.includes("4789"));

  it("is in the intent while the host has an overlay network and knows the members, once however many overlay networks", () => {
    expect(intentOf(joined(["10.77.0.2"], ov, ov2)).vxlan).toEqual({ vtep: "10.77.0.1", port: 4789, peers: ["10.77.0.2"] });
    expect(firewall.expected(intentOf(joined(["10.77.0.2"], ov, ov2))).filter((r) => r.spec.includes("4789")).map((r) => r.spec.join(" "))).toEqual([
      "-d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.2/32 -j RETURN",
      "-d 10.77.0.1/32 -p udp -m udp --dport 4789 -j DROP",
    ]);
    expect(intentOf(joined(["10.77.0.2"])).vxlan).toBeUndefined();
    // a state written before the members were kept: no guard (it would drop every member) until the agent writes them
    expect(intentOf(joined(undefined, ov)).vxlan).toBeUndefined();
  });

  it("comes with the first overlay network and goes with the last, after the other networks' rules and before the base", () => {
    const up = new Plan("up");
    const state = joined(["10.77.0.2", "10.77.0.3"]);
    planNetworkUp(up, state, ov, facts([]));
    expect(rules(up)).toEqual([
      "-I CTNET-INPUT 1 -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.2/32 -j RETURN",
      "-I CTNET-INPUT 2 -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.3/32 -j RETURN",
      "-I CTNET-INPUT 3 -d 10.77.0.1/32 -p udp -m udp --dport 4789 -j DROP",
    ]);
    state.networks.ov = ov;
    const second = new Plan("second");
    planNetworkUp(second, state, ov2, facts(guardLines(["10.77.0.2", "10.77.0.3"])));
    expect(rules(second)).toEqual([]);
    const down = new Plan("down");
    delete state.networks.ov;
    const kernel = firewall.read(renderSave({ chains: CHAINS, rules: firewall.expected(intentOf({ ...state, networks: { ov } })) }));
    planNetworkDown(down, state, ov, { firewallRules: () => kernel, ctnetBridgesInFirewall: () => new Set() });
    const all = (down.steps as CmdStep[]).map((s) => s.argv.slice(4).join(" "));
    expect(rules(down)).toEqual([
      "-D CTNET-INPUT -d 10.77.0.1/32 -p udp -m udp --dport 4789 -j DROP",
      "-D CTNET-INPUT -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.3/32 -j RETURN",
      "-D CTNET-INPUT -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.2/32 -j RETURN",
    ]);
    expect(all.indexOf(rules(down)[2])).toBeLessThan(all.indexOf("-X CTNET-INPUT"));
  });

  it("a change of members moves only their RETURNs, each new one at its place ahead of the DROP; a rollback restores the old order", () => {
    const state = joined(["10.77.0.2", "10.77.0.10"], ov);
    const before = intentOf(state);
    state.cluster!.peers = ["10.77.0.2", "10.77.0.3", "10.77.0.11"];
    const plan = new Plan("members");
    planChange(plan, state, before, intentOf(state), facts(guardLines(["10.77.0.2", "10.77.0.10"])));
    expect(rules(plan)).toEqual([
      "-D CTNET-INPUT -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.10/32 -j RETURN",
      "-I CTNET-INPUT 2 -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.3/32 -j RETURN",
      "-I CTNET-INPUT 3 -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.11/32 -j RETURN",
    ]);
    expect((plan.steps[0] as CmdStep).undo?.slice(4).join(" ")).toBe("-I CTNET-INPUT 2 -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.10/32 -j RETURN");
  });

  it("doctor: a lost RETURN goes back at its place, a stranger's is stale", () => {
    const want = intentOf(joined(["10.77.0.2", "10.77.0.3"], ov));
    const kernel = firewall.read(renderSave({ chains: CHAINS, rules: firewall.expected(want) }));
    expect(firewall.differences(want, kernel, none())).toEqual([]);
    const lost = without(kernel, "-A CTNET-INPUT -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.3/32 -j RETURN");
    const found = firewall.differences(want, withRules(lost, ["-A CTNET-INPUT -s 10.77.0.9/32 -d 10.77.0.1/32 -p udp -m udp --dport 4789 -j RETURN"]), none());
    expect(found.map((f) => f.text)).toEqual([
      "stale rule -t filter -A CTNET-INPUT -s 10.77.0.9/32 -d 10.77.0.1/32 -p udp -m udp --dport 4789 -j RETURN: nothing in ctnet's state needs it",
      "rule missing: -t filter -A CTNET-INPUT -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.3/32 -j RETURN (cluster member 10.77.0.3 may send VXLAN to this host)",
    ]);
    expect(argvs(found[1])).toEqual(["iptables -w -t filter -I CTNET-INPUT 2 -d 10.77.0.1/32 -p udp -m udp --dport 4789 -s 10.77.0.3/32 -j RETURN"]);
  });
});
