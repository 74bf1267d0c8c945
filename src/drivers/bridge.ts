// The bridge network driver: a Linux bridge holding the gateway address, its firewall rules, and the
// veth endpoints that plug sandboxes into it.
import { planNetworkDown, planNetworkUp } from "../firewall/firewall.js";
import { addrValue, macFor } from "../ipam.js";
import { bridgeIfname, hostVethIfname, linkAlias } from "../naming.js";
import type { Plan } from "../plan/plan.js";
import { handOverForwarding, takeHandedOverForwarding } from "../store/statedirs.js";
import { daemonConfig } from "../store/daemonconfig.js";
import { BRIDGE_OPTIONS_HELP, BRIDGE_OPTION_KEYS, bridgeOption, checkBridgeName } from "../commands/netoptions.js";
import { UsageError } from "../errors.js";
import { addressesUp, checkInner } from "./endpoints.js";
import type { Attachment, Finding, LinkView, NetworkDriver, PlanContext } from "./driver.js";
import { bridged, type Endpoint, type NetworkRecord, type State } from "../model.js";

const IP_FORWARD = "net.ipv4.ip_forward";

/** Networks whose bridge is (or, after this plan, will be) up: user networks always, "bridge" while in use. */
const activeNetworks = (state: State) => Object.values(state.networks).filter(bridged);

/** Creates the bridge, its address and rules. Call before adding `net` to state.networks. */
function setUpNetwork(plan: Plan, ctx: PlanContext, state: State, net: NetworkRecord): void {
  const br = net.bridge;
  const earlier = teardowns.get(state);
  // the firewall first (ctnet's chains with the first network, then the network's rules): the bridge
  // never carries a packet its rules have not judged
  planNetworkUp(plan, state, net);
  plan.cmd(addBridgeArgv(net), `bridge for network ${net.name}`, ["ip", "link", "del", br]);
  plan.cmd(["ip", "link", "set", br, "alias", linkAlias("bridge", net.name)], "mark it as ctnet's", null);
  if (net.options.mtu) plan.cmd(["ip", "link", "set", br, "mtu", net.options.mtu], `mtu ${net.options.mtu} (-o mtu)`, null);
  const prefix = net.subnet.split("/")[1];
  plan.cmd(["ip", "addr", "add", `${net.gateway}/${prefix}`, "dev", br], `gateway ${net.gateway} of ${net.subnet}`, null);
  plan.cmd(["ip", "link", "set", br, "up"], `bring ${br} up`, ["ip", "link", "set", br, "down"]);
  // forwarding as the host will have it by then: an earlier plan of the command may turn it off
  const forwarding = earlier?.forwarding ?? ctx.facts.sysctl(IP_FORWARD);
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
function addBridgeArgv(net: NetworkRecord): string[] {
  return ["ip", "link", "add", net.bridge, "address", macFor(addrValue(net.gateway)), "type", "bridge"];
}

/**
 * What the plans built against one draft state, i.e. one command, did to forwarding: `up` and `down`
 * build a plan per object (lab.ts), and a network `up` sets up after the last one went must turn
 * forwarding on again. (Which bridges the command removes, the firewall layer keeps.)
 */
const teardowns = new WeakMap<State, { /** the forwarding setting restored */ forwarding?: string }>();

/** Removes rules before the bridge, so no rule outlives the link it names. Call after removing `net` from state. */
function tearDownNetwork(plan: Plan, ctx: PlanContext, state: State, net: NetworkRecord): void {
  // the firewall removes the network's rules, and ctnet's chains with the last network of every state dir
  const { otherBridges: others, warning } = planNetworkDown(plan, state, net, () => ctx.facts.ctnetBridgesInFirewall());
  let removed = teardowns.get(state);
  if (!removed) teardowns.set(state, (removed = {}));
  const remaining = activeNetworks(state).filter((n) => n.name !== net.name);
  if (remaining.length === 0) {
    if (warning) process.stderr.write(`ctnet: warning: ${warning}\n`);
    // forwarding goes back with the last network of any state dir: one whose last network goes while
    // another's remain hands its record over (statedirs.ts) to whichever takes the last one away
    const fwd = state.sysctls[IP_FORWARD] ?? (others.length === 0 ? takeHandedOverForwarding(state) : null);
    if (fwd && others.length > 0) handOverForwarding(state, fwd);
    // a dockerd started after ctnet found forwarding on and left it so: turning it off would cut Docker off
    else if (fwd && ctx.facts.sysctl(IP_FORWARD) === fwd.value && ctx.facts.othersForwarding().length === 0) {
      plan.cmd(["sysctl", "-w", `${IP_FORWARD}=${fwd.previous}`], "no ctnet network is left: restore the host's forwarding setting", ["sysctl", "-w", `${IP_FORWARD}=${fwd.value}`]);
      removed.forwarding = fwd.previous;
    }
    delete state.sysctls[IP_FORWARD];
  }
  plan.cmd(["ip", "link", "del", net.bridge], `delete bridge of network ${net.name}`, null);
}

/**
 * Plugs a sandbox into bridges: veth pairs, then addresses. Host-side commands come first and
 * namespace-side ones after, so each side runs as one `ip -batch`.
 */
function attachEndpoints(plan: Plan, ctx: PlanContext, netns: string, attachments: Attachment[]): void {
  for (const { net, ep } of attachments) {
    // a veth of that name that is still going (its container was removed a moment ago): wait for it.
    // One this very plan deletes (up recreating a container) is waited for by the plan's own waits.
    if (ctx.facts.hasLink(ep.hostIf)) plan.waitGone([ep.hostIf], `wait until the kernel has removed the ${ep.hostIf} of before`);
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
  addressesUp(plan, netns, attachments);
}

function checkNetwork(net: NetworkRecord, host: LinkView): Finding[] {
  const br = host.links.get(net.bridge);
  const gw = `${net.gateway}/${net.subnet.split("/")[1]}`;
  const what = `network ${net.name}: bridge ${net.bridge}`;
  if (!br) {
    return [{
      text: `${what} is missing`,
      phase: 6,
      fix: (plan) => {
        plan.cmd(addBridgeArgv(net), `recreate the bridge of ${net.name}`, ["ip", "link", "del", net.bridge]);
        plan.cmd(["ip", "link", "set", net.bridge, "alias", linkAlias("bridge", net.name)], "mark it as ctnet's", null);
        if (net.options.mtu) plan.cmd(["ip", "link", "set", net.bridge, "mtu", net.options.mtu], `mtu ${net.options.mtu}`, null);
        plan.cmd(["ip", "addr", "add", gw, "dev", net.bridge], `gateway ${net.gateway}`, null);
        plan.cmd(["ip", "link", "set", net.bridge, "up"], `bring ${net.bridge} up`, null);
      },
    }];
  }
  if (br.kind !== "bridge") return [{ text: `${what} exists but is a ${br.kind || "plain"} link, not a bridge (not fixable: remove it by hand)`, phase: 6 }];
  const out: Finding[] = [];
  if (br.alias !== linkAlias("bridge", net.name)) {
    out.push({ text: `${what} lacks ctnet's mark (alias ${br.alias ?? "none"})`, phase: 6, fix: (plan) => plan.cmd(["ip", "link", "set", net.bridge, "alias", linkAlias("bridge", net.name)], "mark it as ctnet's", null) });
  }
  if (!(host.addrs.get(net.bridge) ?? []).includes(gw)) {
    out.push({ text: `${what} lacks its gateway address ${gw}`, phase: 6, fix: (plan) => plan.cmd(["ip", "addr", "add", gw, "dev", net.bridge], `gateway ${net.gateway}`, ["ip", "addr", "del", gw, "dev", net.bridge]) });
  }
  if (net.options.mtu && String(br.mtu) !== net.options.mtu) {
    out.push({ text: `${what} has mtu ${br.mtu}, not ${net.options.mtu}`, phase: 6, fix: (plan) => plan.cmd(["ip", "link", "set", net.bridge, "mtu", net.options.mtu], `mtu ${net.options.mtu}`, ["ip", "link", "set", net.bridge, "mtu", String(br.mtu)]) });
  }
  if (!br.up) out.push({ text: `${what} is down`, phase: 6, fix: (plan) => plan.cmd(["ip", "link", "set", net.bridge, "up"], `bring ${net.bridge} up`, ["ip", "link", "set", net.bridge, "down"]) });
  return out;
}

function checkEndpoint(ctx: PlanContext, ns: string, net: NetworkRecord, ep: Endpoint, host: LinkView, inner: LinkView): Finding[] {
  const hostEnd = host.links.get(ep.hostIf);
  const what = `container ${ns} on ${ep.network}`;
  if (!hostEnd || !inner.links.has(ep.ifname)) {
    return [{
      text: `${what}: veth ${hostEnd ? ep.ifname : ep.hostIf} is missing`,
      phase: 7,
      recreatesLink: true,
      fix: (plan) => {
        if (hostEnd) plan.cmd(["ip", "link", "del", ep.hostIf], `remove the half of ${ns}'s veth that is left`, null);
        else if (inner.links.has(ep.ifname)) plan.cmd(["ip", "-n", ns, "link", "del", ep.ifname], `remove the half of ${ns}'s veth that is left`, null);
        attachEndpoints(plan, ctx, ns, [{ net, ep }]);
      },
    }];
  }
  const out: Finding[] = [];
  if (hostEnd.alias !== linkAlias("veth", `${ns}/${net.name}`)) {
    out.push({ text: `${what}: ${ep.hostIf} lacks ctnet's mark`, phase: 7, fix: (plan) => plan.cmd(["ip", "link", "set", ep.hostIf, "alias", linkAlias("veth", `${ns}/${net.name}`)], "mark it as ctnet's", null) });
  }
  if (hostEnd.master !== net.bridge || !hostEnd.up) {
    out.push({
      text: `${what}: ${ep.hostIf} is ${hostEnd.master !== net.bridge ? `not plugged into ${net.bridge}${hostEnd.master ? ` (but ${hostEnd.master})` : ""}` : "down"}`,
      phase: 7,
      fix: (plan) => plan.cmd(["ip", "link", "set", ep.hostIf, "master", net.bridge, "up"], `plug ${ep.hostIf} into ${net.bridge}`, null),
    });
  }
  return [...out, ...checkInner(ns, net, ep, inner)];
}

export const bridgeDriver: NetworkDriver = {
  name: "bridge",
  // Docker's option names and semantics: commands/netoptions.ts
  optionKeys: BRIDGE_OPTION_KEYS,
  optionsHelp: BRIDGE_OPTIONS_HELP,
  checkOption: bridgeOption,
  validate(ctx, state, net) {
    // -o com.docker.network.bridge.name: the record keeps it as the bridge itself
    const chosen = net.options.name;
    delete net.options.name;
    if (chosen !== undefined) checkBridgeName(ctx, state, chosen);
    net.bridge = chosen ?? bridgeIfname(net.name);
    const clash = Object.values(state.networks).find((n) => n.bridge === net.bridge);
    if (clash || ctx.facts.hasLink(net.bridge)) throw new UsageError(`interface ${net.bridge} for network ${net.name} already exists on the host${clash ? ` (network ${clash.name})` : ""}`);
  },
  create: setUpNetwork,
  remove: tearDownNetwork,
  attach: attachEndpoints,
  detach(plan, _ctx, _netns, ep) {
    // deleting one end of a veth pair deletes both, with the address and routes of the inner end
    plan.cmd(["ip", "link", "del", ep.hostIf], `unplug ${ep.ifname} from ${ep.network}`, null);
  },
  networkLinks: (net) => [net.bridge],
  macPerEndpoint: true,
  endpointHostLink: (container, net) => hostVethIfname(container, net.name),
  checkNetwork,
  checkEndpoint,
  hostSide: (net) => ({ ifname: net.bridge, role: "bridge" }),
  defaultRoute: (net) => ["via", net.gateway],
};
