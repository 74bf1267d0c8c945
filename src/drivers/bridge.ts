// The bridge network driver: a Linux bridge holding the gateway address, its firewall rules, and the
// veth endpoints that plug sandboxes into it.
import fs from "node:fs";
import { addRule, bridgesInKernel, deleteRule, enlist, installBase, networkRules, othersForwarding, presentRules, removeBase } from "../firewall/firewall.js";
import { addrValue, macFor } from "../ipam.js";
import { linkAlias } from "../naming.js";
import type { Plan } from "../plan/plan.js";
import { linkExists } from "../host/sys.js";
import { handOverForwarding, takeHandedOverForwarding } from "../store/statedirs.js";
import { daemonConfig } from "../store/daemonconfig.js";
import type { Endpoint, NetworkRecord, State } from "../model.js";

const IP_FORWARD = "net.ipv4.ip_forward";
const IPV6_MIN_MTU = 1280;

/** Networks whose bridge is (or, after this plan, will be) up: user networks always, "bridge" while in use. */
export const activeNetworks = (state: State) => Object.values(state.networks);

/** Creates the bridge, its address and rules. Call before adding `net` to state.networks. */
export function setUpNetwork(plan: Plan, state: State, net: NetworkRecord): void {
  const br = net.bridge;
  // adds only what the kernel lacks: another state dir (or an older ctnet) may have installed it
  if (activeNetworks(state).length === 0) installBase(plan, state);
  const earlier = teardowns.get(state);
  earlier?.bridges.delete(br);
  plan.cmd(addBridgeArgv(net), `bridge for network ${net.name}`, ["ip", "link", "del", br]);
  plan.cmd(["ip", "link", "set", br, "alias", linkAlias("bridge", net.name)], "mark it as ctnet's", null);
  if (net.options.mtu) plan.cmd(["ip", "link", "set", br, "mtu", net.options.mtu], `mtu ${net.options.mtu} (-o mtu)`, null);
  const prefix = net.subnet.split("/")[1];
  plan.cmd(["ip", "addr", "add", `${net.gateway}/${prefix}`, "dev", br], `gateway ${net.gateway} of ${net.subnet}`, null);
  plan.cmd(["ip", "link", "set", br, "up"], `bring ${br} up`, ["ip", "link", "set", br, "down"]);
  for (const rule of networkRules(net)) addRule(plan, rule);
  // forwarding as the host will have it by then: an earlier plan of the command may turn it off
  const forwarding = earlier?.forwarding ?? readSysctl(IP_FORWARD);
  // daemon.json's "ip-forward": false leaves the setting to the host, as dockerd does
  if (!net.internal && !state.sysctls[IP_FORWARD] && forwarding === "0" && daemonConfig().ipForward) {
    plan.cmd(["sysctl", "-w", `${IP_FORWARD}=1`], "the host must forward packets between bridges and the outside", ["sysctl", "-w", `${IP_FORWARD}=0`]);
    state.sysctls[IP_FORWARD] = { key: IP_FORWARD, previous: "0", value: "1" };
  }
}

/**
 * The bridge gets a MAC of its own, derived from its gateway like a container's from its address: a
 * bridge without one takes the lowest MAC among its ports, so the gateway's MAC would change as
 * containers come and go and their ARP caches would point at a veth that left. Docker sets one too.
 */
export function addBridgeArgv(net: NetworkRecord): string[] {
  return ["ip", "link", "add", net.bridge, "address", macFor(addrValue(net.gateway)), "type", "bridge"];
}

/**
 * What the plans built against one draft state, i.e. one command, remove: `up` and `down` build a plan
 * per object (lab.ts). The last network's removal, in one of them, must not mistake the bridges the
 * others remove for networks of another state dir that still need the chains; a network `up` sets up
 * after that must turn forwarding on again.
 */
const teardowns = new WeakMap<State, { bridges: Set<string>; /** the forwarding setting restored */ forwarding?: string }>();

/** Removes rules before the bridge, so no rule outlives the link it names. Call after removing `net` from state. */
export function tearDownNetwork(plan: Plan, state: State, net: NetworkRecord): void {
  enlist(plan, state);
  // only the rules that are there: a network made by an older ctnet may lack some
  for (const rule of presentRules(plan, networkRules(net)).reverse()) deleteRule(plan, rule);
  let removed = teardowns.get(state);
  if (!removed) teardowns.set(state, (removed = { bridges: new Set() }));
  removed.bridges.add(net.bridge);
  const remaining = activeNetworks(state).filter((n) => n.name !== net.name);
  if (remaining.length === 0) {
    // each network, of any state dir, has a rule in CTNET-ISOLATION-2: the chains go with the last one
    const others = [...bridgesInKernel()].filter((br) => !removed.bridges.has(br));
    const warning = others.length === 0 ? removeBase(plan, state) : null;
    if (warning) process.stderr.write(`ctnet: warning: ${warning}\n`);
    // forwarding goes back with the last network of any state dir: one whose last network goes while
    // another's remain hands its record over (statedirs.ts) to whichever takes the last one away
    const fwd = state.sysctls[IP_FORWARD] ?? (others.length === 0 ? takeHandedOverForwarding(state) : null);
    if (fwd && others.length > 0) handOverForwarding(state, fwd);
    // a dockerd started after ctnet found forwarding on and left it so: turning it off would cut Docker off
    else if (fwd && readSysctl(IP_FORWARD) === fwd.value && othersForwarding().length === 0) {
      plan.cmd(["sysctl", "-w", `${IP_FORWARD}=${fwd.previous}`], "no ctnet network is left: restore the host's forwarding setting", ["sysctl", "-w", `${IP_FORWARD}=${fwd.value}`]);
      removed.forwarding = fwd.previous;
    }
    delete state.sysctls[IP_FORWARD];
  }
  plan.cmd(["ip", "link", "del", net.bridge], `delete bridge of network ${net.name}`, null);
}

export function readSysctl(key: string): string {
  try {
    return fs.readFileSync(`/proc/sys/${key.replace(/\./g, "/")}`, "utf8").trim();
  } catch {
    return "";
  }
}

export interface Attachment {
  net: NetworkRecord;
  ep: Endpoint;
}

/**
 * Plugs a sandbox into bridges: veth pairs and addresses, plus a default route via `routeVia`'s gateway.
 * Host-side commands come first and namespace-side ones after, so each side runs as one `ip -batch`.
 */
export function attachEndpoints(plan: Plan, netns: string, attachments: Attachment[], routeVia?: NetworkRecord): void {
  for (const { net, ep } of attachments) {
    // a veth of that name that is still going (its container was removed a moment ago): wait for it.
    // One this very plan deletes (up recreating a container) is waited for by the plan's own waits.
    if (linkExists(ep.hostIf)) plan.waitGone([ep.hostIf], `wait until the kernel has removed the ${ep.hostIf} of before`);
    // one netlink request makes the pair, plugs the host end into the bridge and brings it up, where
    // separate `ip link set … master`, `… up` and `… mtu` commands each took another request
    const mtu = net.options.mtu ? ["mtu", net.options.mtu] : [];
    plan.cmd(
      ["ip", "link", "add", ep.hostIf, ...mtu, "master", net.bridge, "up", "type", "veth", "peer", "name", ep.ifname, ...mtu, "address", ep.mac, "netns", netns],
      `veth pair for ${netns} on ${net.name}: ${ep.hostIf} on the host, plugged into ${net.bridge}; ${ep.ifname} inside`,
      ["ip", "link", "del", ep.hostIf],
    );
    // the kernel ignores an alias given at creation
    plan.cmd(["ip", "link", "set", ep.hostIf, "alias", linkAlias("veth", `${netns}/${net.name}`)], "mark it as ctnet's", null);
  }
  const inNs = (...args: string[]) => ["ip", "-n", netns, ...args];
  for (const { net, ep } of attachments) {
    plan.cmd(inNs("addr", "add", `${ep.ip}/${ep.prefixLen}`, "dev", ep.ifname), `${ep.ip} on ${net.name}`, null);
    // ctnet's networks are IPv4 only, and Docker 20.10 leaves such an eth0 without IPv6 too. A link-local
    // address would make the kernel send DAD, MLD and router solicitations, multicast the bridge floods
    // to every port: with n containers, each run cost n deliveries in the other namespaces. A link made
    // with an mtu below IPv6's minimum has no IPv6 at all, and the kernel refuses an addrgenmode for it.
    if (Number(net.options.mtu ?? IPV6_MIN_MTU) < IPV6_MIN_MTU) plan.cmd(inNs("link", "set", ep.ifname, "up"), `bring ${ep.ifname} up (mtu ${net.options.mtu}: no IPv6 on it)`, null);
    else plan.cmd(inNs("link", "set", ep.ifname, "addrgenmode", "none", "up"), `bring ${ep.ifname} up, without an IPv6 link-local address`, null);
  }
  if (routeVia) {
    plan.cmd(inNs("route", "add", "default", "via", routeVia.gateway), `default route via ${routeVia.name}'s gateway`, null);
  }
}

export function detachEndpoint(plan: Plan, ep: Endpoint): void {
  // deleting one end of a veth pair deletes both, with the address and routes of the inner end
  plan.cmd(["ip", "link", "del", ep.hostIf], `unplug ${ep.ifname} from ${ep.network}`, null);
}
