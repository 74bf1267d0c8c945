// Each driver's plans for create, attach, detach and remove, against a fake host snapshot (HostFacts):
// no root, and nothing of this machine's links, modules or sysctls decides the outcome.
import { describe, expect, it } from "vitest";
import { planRun } from "../../src/commands/containers.js";
import { planConnect, planDisconnect, planNetCreate, planNetRm, type CreateNetworkOptions } from "../../src/commands/networks.js";
import type { PlanContext } from "../../src/drivers/driver.js";
import { registry } from "../../src/drivers/registry.js";
import { OpError, UsageError } from "../../src/errors.js";
import type { HostFacts, KernelModule, LinkFact } from "../../src/host/facts.js";
import { emptyState, type State } from "../../src/model.js";
import { renderScript, type Plan } from "../../src/plan/plan.js";
import { BASE_RULES, CHAINS } from "../../src/firewall/firewall.js";
import { ruleKey, type RuleSet } from "../../src/firewall/iptables.js";

interface FakeHost {
  links?: Array<Partial<LinkFact> & { ifname: string }>;
  modules?: KernelModule[];
  sysctls?: Record<string, string>;
  rules?: RuleSet;
}

/** A host with the links, modules and sysctls given, and no routes. */
function fakeContext(host: FakeHost = {}): PlanContext {
  const links = new Map((host.links ?? []).map((l) => [l.ifname, { kind: "", master: null, mtu: 1500, alias: null, up: true, ...l }]));
  const facts: HostFacts = {
    hasLink: (ifname) => links.has(ifname),
    hasNetns: () => false,
    link: (ifname) => links.get(ifname) ?? null,
    vethLeaving: () => false,
    sysctl: (key) => host.sysctls?.[key] ?? "",
    kernelHas: (m) => (host.modules ?? ["macvlan"]).includes(m),
    subnetsInUse: () => [],
    ctnetBridgesInFirewall: () => new Set(),
    othersForwarding: () => [],
    listeningSockets: () => [],
    hostAddresses: () => new Set(),
    firewallRules: () => host.rules ?? { chains: [], rules: [] },
    firewallChain: () => [],
    hasTool: () => true,
  };
  return { facts, drivers: registry };
}

const LAN_HOST: FakeHost = { links: [{ ifname: "eno1", kind: "" }], sysctls: { "net.ipv4.ip_forward": "1" } };
const steps = (plan: Plan) => plan.steps.map((s) => (s.kind === "cmd" ? s.argv.join(" ") : `${s.kind}`));
const cmds = (plan: Plan) => steps(plan).filter((s) => s.startsWith("ip ") || s.startsWith("sysctl ") || s.startsWith("iptables"));

function withNetwork(ctx: PlanContext, o: CreateNetworkOptions, name = "lan"): { state: State; plan: Plan } {
  const state = emptyState();
  const plan = planNetCreate(state, name, o, ctx);
  return { state, plan };
}

const run = (state: State, ctx: PlanContext, name: string, net: string, extra: object = {}) =>
  planRun(state, "/nonexistent-state", { command: [], detach: true, name, net, ...extra }, ctx);

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error");
}

describe("bridge", () => {
  it("creates a bridge with its gateway, and turns forwarding on only where the snapshot says it is off", () => {
    const off = withNetwork(fakeContext({ sysctls: { "net.ipv4.ip_forward": "0" } }), { subnet: "10.20.0.0/24" });
    expect(cmds(off.plan)).toEqual(expect.arrayContaining([
      "ip link add ctbr-lan address 02:42:0a:14:00:01 type bridge",
      "ip addr add 10.20.0.1/24 dev ctbr-lan",
      "ip link set ctbr-lan up",
      "sysctl -w net.ipv4.ip_forward=1",
    ]));
    const on = withNetwork(fakeContext({ sysctls: { "net.ipv4.ip_forward": "1" } }), { subnet: "10.20.0.0/24" });
    expect(cmds(on.plan)).not.toContain("sysctl -w net.ipv4.ip_forward=1");
    expect(on.state.networks.lan).toMatchObject({ driver: "bridge", bridge: "ctbr-lan", gateway: "10.20.0.1" });
  });

  it("adds only the part of the firewall base the snapshot's rules lack", () => {
    const ipt = (plan: Plan) => cmds(plan).filter((l) => l.startsWith("iptables"));
    const fresh = ipt(withNetwork(fakeContext(), { subnet: "10.20.0.0/24" }).plan);
    expect(fresh.filter((l) => l.includes(" -N "))).toHaveLength(CHAINS.length);
    const base: RuleSet = {
      chains: CHAINS.map((c) => ({ table: c.table, name: c.name, policy: "-" })),
      rules: BASE_RULES.map((r) => ({ table: r.table, chain: r.chain, spec: r.spec, key: ruleKey(r), line: "" })),
    };
    const present = ipt(withNetwork(fakeContext({ rules: base }), { subnet: "10.20.0.0/24" }).plan);
    expect(present.filter((l) => l.includes(" -N "))).toEqual([]);
    expect(present.length).toBe(fresh.length - CHAINS.length - BASE_RULES.length);
    expect(present.every((l) => l.includes("ctbr-lan") || l.includes("10.20.0.0/24"))).toBe(true);
  });

  it("removing the base, a rollback puts CTNET-FORWARD's first rules back in the base's order", () => {
    const base: RuleSet = {
      chains: CHAINS.map((c) => ({ table: c.table, name: c.name, policy: "-" })),
      rules: BASE_RULES.map((r) => ({ table: r.table, chain: r.chain, spec: r.spec, key: ruleKey(r), line: "" })),
    };
    const ctx = fakeContext({ rules: base });
    const { state } = withNetwork(ctx, { subnet: "10.20.0.0/24" });
    // the undos run in reverse: each -I CHAIN N puts its rule at N of the chain as the rollback leaves it
    const chain: string[] = [];
    for (const step of [...planNetRm(state, ["lan"], ctx).steps].reverse()) {
      const undo = step.kind === "cmd" ? step.undo : null;
      if (!undo || undo[undo.indexOf("-I") + 1] !== "CTNET-FORWARD" || !undo.includes("-I")) continue;
      const at = undo.indexOf("-I");
      chain.splice(Number(undo[at + 2]) - 1, 0, undo.slice(at + 3).join(" "));
    }
    const wanted = BASE_RULES.filter((r) => r.chain === "CTNET-FORWARD").map((r) => r.spec.join(" "));
    expect(chain).toEqual(wanted);
  });

  it("removing the last network puts forwarding back, unless the snapshot shows another tool forwarding", () => {
    const restore = "sysctl -w net.ipv4.ip_forward=0";
    for (const [others, expected] of [[[], true], [["-A FORWARD -j DOCKER-USER"], false]] as const) {
      const ctx = fakeContext({ sysctls: { "net.ipv4.ip_forward": "0" } });
      const { state } = withNetwork(ctx, { subnet: "10.20.0.0/24" });
      const after = { ...ctx, facts: { ...ctx.facts, sysctl: () => "1", othersForwarding: () => [...others] } };
      expect(cmds(planNetRm(state, ["lan"], after)).includes(restore)).toBe(expected);
    }
  });

  it("refuses a bridge name the snapshot already holds", () => {
    const err = thrown(() => withNetwork(fakeContext({ links: [{ ifname: "ctbr-lan", kind: "bridge" }] }), { subnet: "10.20.0.0/24" }));
    expect(err.message).toBe("interface ctbr-lan for network lan already exists on the host");
  });

  it("attaches with a veth pair plugged into the bridge, detaches by deleting its host end, removes the bridge", () => {
    const ctx = fakeContext({ sysctls: { "net.ipv4.ip_forward": "1" } });
    const { state } = withNetwork(ctx, { subnet: "10.20.0.0/24" });
    const { plan } = run(state, ctx, "c1", "lan");
    expect(cmds(plan)).toEqual(expect.arrayContaining([
      "ip link add ve-c1.lan master ctbr-lan up type veth peer name eth0 address 02:42:0a:14:00:02 netns c1",
      "ip -n c1 addr add 10.20.0.2/24 dev eth0",
      "ip -n c1 route add default via 10.20.0.1",
    ]));
    expect(cmds(planDisconnect(state, "lan", "c1", ctx))).toContain("ip link del ve-c1.lan");
    expect(cmds(planConnect(state, "lan", "c1", {}, ctx))).toContain("ip link add ve-c1.lan master ctbr-lan up type veth peer name eth0 address 02:42:0a:14:00:02 netns c1");
  });
});

describe("macvlan", () => {
  const create = (o: CreateNetworkOptions, host: FakeHost = LAN_HOST) => withNetwork(fakeContext(host), { driver: "macvlan", ...o });

  it("creates nothing in the kernel on an existing parent: the network is a record; net rm leaves the parent", () => {
    const ctx = fakeContext(LAN_HOST);
    const { state, plan } = withNetwork(ctx, { driver: "macvlan", subnet: "192.168.1.0/24", gateway: "192.168.1.254", opt: ["parent=eno1"] });
    expect(plan.steps).toEqual([]);
    expect(state.networks.lan).toMatchObject({ driver: "macvlan", bridge: "", gateway: "192.168.1.254", options: { parent: "eno1" } });
    expect(planNetRm(state, ["lan"], ctx).steps).toEqual([]);
  });

  it("attaches a macvlan link made inside the sandbox, with the address, MAC, mode and default route via the gateway; detach deletes it there", () => {
    const ctx = fakeContext(LAN_HOST);
    const { state } = withNetwork(ctx, { driver: "macvlan", subnet: "192.168.1.0/24", gateway: "192.168.1.254", opt: ["parent=eno1", "macvlan_mode=vepa", "mtu=1400"] });
    const { plan, container } = run(state, ctx, "c1", "lan", { ip: "192.168.1.20" });
    expect(cmds(plan)).toEqual([
      "ip netns add c1",
      "ip link add eth0 link eno1 address 02:42:c0:a8:01:14 mtu 1400 netns c1 type macvlan mode vepa",
      "ip -n c1 addr add 192.168.1.20/24 dev eth0",
      "ip -n c1 link set eth0 addrgenmode none",
      "ip -n c1 link set eth0 up",
      "ip -n c1 route add default via 192.168.1.254",
      "ip -n c1 link set lo up",
    ]);
    const made = plan.steps.find((s) => s.kind === "cmd" && s.argv.includes("macvlan"));
    expect(made?.kind === "cmd" && made.undo).toEqual(["ip", "-n", "c1", "link", "del", "eth0"]);
    expect(container.endpoints[0]).toMatchObject({ hostIf: "", ifname: "eth0", ip: "192.168.1.20" });
    expect(cmds(planDisconnect(state, "lan", "c1", ctx))).toEqual(["ip -n c1 link del eth0"]);
  });

  it("net connect adds a second macvlan link, eth1, inside the container; the default route stays where it was", () => {
    const ctx = fakeContext(LAN_HOST);
    const { state } = withNetwork(ctx, { subnet: "10.20.0.0/24" }, "br");
    planNetCreate(state, "lan", { driver: "macvlan", subnet: "192.168.1.0/24", opt: ["parent=eno1"] }, ctx);
    run(state, ctx, "c1", "br");
    expect(cmds(planConnect(state, "lan", "c1", {}, ctx))).toEqual([
      "ip link add eth1 link eno1 address 02:42:c0:a8:01:02 netns c1 type macvlan mode bridge",
      "ip -n c1 addr add 192.168.1.2/24 dev eth1",
      "ip -n c1 link set eth1 addrgenmode none",
      "ip -n c1 link set eth1 up",
    ]);
  });

  it("makes a missing 802.1q parent where the kernel has 8021q, and removes it with the network", () => {
    const host = { ...LAN_HOST, modules: ["macvlan", "8021q"] as KernelModule[] };
    const ctx = fakeContext(host);
    const { state, plan } = withNetwork(ctx, { driver: "macvlan", subnet: "192.168.50.0/24", opt: ["parent=eno1.50"] });
    expect(cmds(plan)).toEqual(["ip link add link eno1 name eno1.50 type vlan id 50", "ip link set eno1.50 alias ctnet:parent:lan up"]);
    expect(state.networks.lan.ownParent).toBe(true);
    expect(cmds(planNetRm(state, ["lan"], ctx))).toEqual(["ip link del eno1.50"]);
  });

  it("names the missing 8021q module (an OpError: exit 1) where the kernel lacks it", () => {
    const err = thrown(() => create({ subnet: "192.168.50.0/24", opt: ["parent=eno1.50"] }));
    expect(err).toBeInstanceOf(OpError);
    expect(err.message).toBe("kernel module 8021q is missing: cannot create the 802.1q sub-interface eno1.50 (-o parent)");
  });

  it("runs an --internal network on a veth pair of its own, with no default route for its containers", () => {
    const ctx = fakeContext(LAN_HOST);
    const { state, plan } = withNetwork(ctx, { driver: "macvlan", internal: true, subnet: "10.30.0.0/24" });
    expect(cmds(plan)).toEqual([
      "ip link add ctpa-lan type veth peer name ctpb-lan",
      "ip link set ctpa-lan alias ctnet:parent:lan up",
      "ip link set ctpb-lan up",
    ]);
    const { plan: runPlan } = run(state, ctx, "c1", "lan");
    expect(cmds(runPlan)).toContain("ip link add eth0 link ctpa-lan address 02:42:0a:1e:00:02 netns c1 type macvlan mode bridge");
    expect(cmds(runPlan).some((s) => s.includes("route add default"))).toBe(false);
    delete state.containers.c1;
    expect(cmds(planNetRm(state, ["lan"], ctx))).toEqual(["ip link del ctpa-lan"]);
  });

  it.each<[string, CreateNetworkOptions, FakeHost | undefined, string]>([
    ["an unknown parent", { subnet: "10.1.0.0/24", opt: ["parent=eth9"] }, undefined, "parent interface eth9 does not exist on the host (-o parent)"],
    ["a ctnet bridge", { subnet: "10.1.0.0/24", opt: ["parent=ctbr-x"] }, { links: [{ ifname: "ctbr-x", kind: "bridge", alias: "ctnet:bridge:x" }] }, "parent ctbr-x is the bridge of ctnet network x: give the host's NIC or a VLAN sub-interface"],
    ["a container's veth", { subnet: "10.1.0.0/24", opt: ["parent=ve-a.x"] }, { links: [{ ifname: "ve-a.x", kind: "veth", alias: "ctnet:veth:a/x" }] }, "parent ve-a.x is a container's veth (ctnet:veth:a/x): give the host's NIC or a VLAN sub-interface"],
    ["no subnet", { opt: ["parent=eno1"] }, undefined, "macvlan networks need --subnet: the subnet of the LAN behind the parent"],
    ["no parent", { subnet: "10.1.0.0/24" }, undefined, "macvlan networks need -o parent=IFACE: the host's link to the LAN"],
    ["a parent on an internal network", { subnet: "10.1.0.0/24", internal: true, opt: ["parent=eno1"] }, undefined, "an --internal macvlan network has no parent: drop -o parent"],
    ["a bridge option", { subnet: "10.1.0.0/24", opt: ["parent=eno1", "icc=false"] }, undefined, "option icc belongs to the bridge driver, not macvlan"],
    ["an ipvlan option", { subnet: "10.1.0.0/24", opt: ["parent=eno1", "ipvlan_mode=l3"] }, undefined, "option ipvlan_mode belongs to the ipvlan driver, not macvlan"],
    ["an unknown mode", { subnet: "10.1.0.0/24", opt: ["parent=eno1", "macvlan_mode=hub"] }, undefined, 'invalid macvlan_mode "hub": one of bridge, private, vepa, passthru'],
    ["an mtu above the parent's", { subnet: "10.1.0.0/24", opt: ["parent=eno1", "mtu=9000"] }, undefined, "mtu 9000 is above the mtu 1500 of parent eno1"],
  ])("refuses %s with one line (a UsageError: exit 2)", (_what, o, host, message) => {
    const err = thrown(() => create(o, host ? { ...LAN_HOST, ...host, links: [...LAN_HOST.links!, ...(host.links ?? [])] } : LAN_HOST));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe(message);
  });

  it("refuses a parent another network uses with an overlapping subnet, takes it with a disjoint one", () => {
    const ctx = fakeContext(LAN_HOST);
    const { state } = withNetwork(ctx, { driver: "macvlan", subnet: "192.168.1.0/25", opt: ["parent=eno1"] }, "one");
    const err = thrown(() => planNetCreate(state, "two", { driver: "macvlan", subnet: "192.168.1.0/24", opt: ["parent=eno1"] }, ctx));
    expect(err.message).toBe("parent eno1 is already used by network one with an overlapping subnet 192.168.1.0/25");
    planNetCreate(state, "three", { driver: "macvlan", subnet: "192.168.1.128/25", opt: ["parent=eno1"] }, ctx);
    expect(Object.keys(state.networks)).toEqual(["one", "three"]);
  });

  it("refuses a second network on a parent a passthru network takes whole", () => {
    const ctx = fakeContext(LAN_HOST);
    const { state } = withNetwork(ctx, { driver: "macvlan", subnet: "192.168.1.0/25", opt: ["parent=eno1", "macvlan_mode=passthru"] }, "one");
    const err = thrown(() => planNetCreate(state, "two", { driver: "macvlan", subnet: "192.168.1.128/25", opt: ["parent=eno1"] }, ctx));
    expect(err.message).toBe("parent eno1 is used by network one, and macvlan_mode=passthru takes a parent whole");
  });

  it("refuses a macvlan option given to a bridge network", () => {
    expect(thrown(() => withNetwork(fakeContext(), { subnet: "10.1.0.0/24", opt: ["parent=eno1"] })).message).toBe("option parent belongs to the macvlan driver, not bridge");
  });

  it("publishes no ports: its containers are reached on their own address", () => {
    const ctx = fakeContext(LAN_HOST);
    const { state } = withNetwork(ctx, { driver: "macvlan", subnet: "192.168.1.0/24", opt: ["parent=eno1"] });
    expect(thrown(() => run(state, ctx, "c1", "lan", { publish: ["8080:80"] })).message).toBe(
      "container c1 is only on networks without a bridge (lan): macvlan and ipvlan containers are reached on their own address, not through published ports",
    );
  });
});

describe("ipvlan", () => {
  const IPVLAN_HOST: FakeHost = { ...LAN_HOST, modules: ["macvlan", "ipvlan"] };

  it("fails before any step where the kernel lacks the module: one line naming it, an OpError (exit 1)", () => {
    const state = emptyState();
    const err = thrown(() => planNetCreate(state, "lan", { driver: "ipvlan", subnet: "192.168.1.0/24", opt: ["parent=eno1", "ipvlan_mode=l2"] }, fakeContext(LAN_HOST)));
    expect(err).toBeInstanceOf(OpError);
    expect(err.message).toBe("kernel module ipvlan is missing: this kernel cannot make ipvlan links");
    expect(state).toEqual(emptyState());
  });

  it("l2: links share the parent's MAC (no address given), default route via the gateway; the dry-run script shows every step with its reason", () => {
    const ctx = fakeContext(IPVLAN_HOST);
    const { state, plan } = withNetwork(ctx, { driver: "ipvlan", subnet: "192.168.1.0/24", opt: ["parent=eno1"] });
    expect(plan.steps).toEqual([]);
    const { plan: runPlan } = run(state, ctx, "c1", "lan");
    const script = renderScript(runPlan);
    expect(script).toMatch(/# \d+\. ipvlan eth0 of c1 on eno1 \(network lan, ipvlan_mode=l2\)\nip link add eth0 link eno1 netns c1 type ipvlan mode l2\n/);
    expect(script).toContain("ip -n c1 route add default via 192.168.1.1");
    expect(cmds(planDisconnect(state, "lan", "c1", ctx))).toEqual(["ip -n c1 link del eth0"]);
    expect(planNetRm(state, ["lan"], ctx).steps).toEqual([]);
  });

  it("refuses --mac-address: its links share the parent's MAC", () => {
    const ctx = fakeContext(IPVLAN_HOST);
    const { state } = withNetwork(ctx, { driver: "ipvlan", subnet: "192.168.1.0/24", opt: ["parent=eno1"] });
    expect(thrown(() => run(state, ctx, "c1", "lan", { macAddress: "02:00:00:00:00:09" })).message).toBe("--mac-address: the endpoints of ipvlan network lan share the MAC of its parent");
  });

  it("l3: the default route goes out of the link, with no gateway", () => {
    const ctx = fakeContext(IPVLAN_HOST);
    const { state } = withNetwork(ctx, { driver: "ipvlan", subnet: "192.168.1.0/24", opt: ["parent=eno1", "ipvlan_mode=l3"] });
    const { plan } = run(state, ctx, "c1", "lan");
    expect(cmds(plan)).toEqual(expect.arrayContaining(["ip link add eth0 link eno1 netns c1 type ipvlan mode l3", "ip -n c1 route add default dev eth0"]));
  });

  it("refuses a macvlan option and an unknown mode", () => {
    const ctx = fakeContext(IPVLAN_HOST);
    expect(thrown(() => withNetwork(ctx, { driver: "ipvlan", subnet: "10.1.0.0/24", opt: ["parent=eno1", "macvlan_mode=bridge"] })).message).toBe("option macvlan_mode belongs to the macvlan driver, not ipvlan");
    expect(thrown(() => withNetwork(ctx, { driver: "ipvlan", subnet: "10.1.0.0/24", opt: ["parent=eno1", "ipvlan_mode=l9"] })).message).toBe('invalid ipvlan_mode "l9": one of l2, l3');
  });
});

describe("the predefined drivers", () => {
  it.each(["host", "null"])("refuse another %s network", (driver) => {
    expect(thrown(() => withNetwork(fakeContext(), { driver })).message).toBe(`only one instance of "${driver}" network is allowed`);
  });
});
