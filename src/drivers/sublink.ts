// What macvlan and ipvlan share: drivers whose endpoints are sub-interfaces of a parent link (a NIC, a
// VLAN sub-interface) made straight inside the sandbox. The network itself is then only a record: no
// bridge, no gateway address on the host, no firewall rules (the containers' traffic leaves through the
// parent without crossing the host's IP stack). ctnet makes a parent only where asked to: a missing
// 802.1q sub-interface (`-o parent=eth0.50`), or the veth pair an --internal network runs on.
import { OpError, UsageError } from "../errors.js";
import { overlaps, parseCidr } from "../ipam.js";
import { fitIfname, linkAlias } from "../naming.js";
import type { KernelModule } from "../host/facts.js";
import type { Plan } from "../plan/plan.js";
import { MTU_KEYS, addressesUp, checkInner, checkMtu } from "./endpoints.js";
import type { Attachment, Finding, LinkView, NetworkDriver, PlanContext } from "./driver.js";
import type { Endpoint, NetworkRecord, State } from "../model.js";

export interface SubLinkKind {
  /** the driver's name, which is also the rtnetlink kind of its links and the kernel module making them */
  name: "macvlan" | "ipvlan";
  /** the -o key choosing the mode, its values (the first is the default) and the `ip link` words giving it */
  modeKey: string;
  modes: readonly string[];
  modeArgs: (mode: string) => string[];
  /** whether each endpoint has a MAC of its own (macvlan) or shares the parent's (ipvlan) */
  ownMac: boolean;
  /** ipvlan l3 routes without a gateway: the default route goes out of the link itself */
  routesViaGateway: (net: NetworkRecord) => boolean;
}

const VLAN_PARENT = /^(.+)\.(\d+)$/;

/** The veth pair an --internal network's endpoints hang on: a parent with no wire behind it. */
const internalParent = (network: string) => ({ ifname: fitIfname("ctpa-", network), peer: fitIfname("ctpb-", network) });

/** The link ctnet made for the network's parent, if it made it (an internal network's veth: the end that takes its peer along). */
const ownLinks = (net: NetworkRecord): string[] => (net.ownParent ? [net.options.parent] : []);

function validateParent(ctx: PlanContext, state: State, net: NetworkRecord): void {
  const parent = net.options.parent;
  const { facts } = ctx;
  const link = facts.link(parent);
  if (!link) {
    const vlan = VLAN_PARENT.exec(parent);
    if (!vlan || !facts.link(vlan[1])) throw new UsageError(`parent interface ${parent} does not exist on the host (-o parent)`);
    const id = Number(vlan[2]);
    if (id < 1 || id > 4094) throw new UsageError(`parent ${parent}: VLAN id ${id} is outside 1..4094`);
    if (!facts.kernelHas("8021q")) throw new OpError(`kernel module 8021q is missing: cannot create the 802.1q sub-interface ${parent} (-o parent)`);
    net.ownParent = true;
  } else {
    if (link.alias?.startsWith(linkAlias("veth", ""))) throw new UsageError(`parent ${parent} is a container's veth (${link.alias}): give the host's NIC or a VLAN sub-interface`);
    const ownBridge = Object.values(state.networks).find((n) => n.bridge === parent);
    if (ownBridge || link.alias?.startsWith(linkAlias("bridge", ""))) throw new UsageError(`parent ${parent} is the bridge of ctnet network ${ownBridge?.name ?? link.alias!.split(":").pop()}: give the host's NIC or a VLAN sub-interface`);
    if (link.alias?.startsWith(linkAlias("parent", ""))) throw new UsageError(`parent ${parent} is ctnet's own parent of an internal network: give the host's NIC or a VLAN sub-interface`);
    if (net.options.mtu && Number(net.options.mtu) > link.mtu) throw new UsageError(`mtu ${net.options.mtu} is above the mtu ${link.mtu} of parent ${parent}`);
  }
  const subnet = parseCidr(net.subnet);
  for (const other of Object.values(state.networks)) {
    if (other.options.parent !== parent) continue;
    if (other.ownParent) throw new UsageError(`parent ${parent} belongs to network ${other.name}, which created it`);
    if (net.ownParent) throw new UsageError(`parent ${parent} is used by network ${other.name}`);
    if (overlaps(parseCidr(other.subnet), subnet)) throw new UsageError(`parent ${parent} is already used by network ${other.name} with an overlapping subnet ${other.subnet}`);
    // passthru hands the parent whole to one link: the kernel refuses any other on it
    if ([net, other].some((n) => n.options.macvlan_mode === "passthru")) throw new UsageError(`parent ${parent} is used by network ${other.name}, and macvlan_mode=passthru takes a parent whole`);
  }
}

function createParent(plan: Plan, net: NetworkRecord): void {
  if (!net.ownParent) return;
  if (net.internal) {
    const { ifname, peer } = internalParent(net.name);
    // a wire to nowhere: the kernel has no dummy links here and a veth pair with both ends up has a carrier
    plan.cmd(["ip", "link", "add", ifname, "type", "veth", "peer", "name", peer], `parent of internal network ${net.name}: a veth pair with nothing behind it`, ["ip", "link", "del", ifname]);
    // one end carries the mark: deleting it deletes its peer, which doctor and reset then need not know
    plan.cmd(["ip", "link", "set", ifname, "alias", linkAlias("parent", net.name), "up"], "mark it as ctnet's, up", null);
    plan.cmd(["ip", "link", "set", peer, "up"], "up, so the pair has a carrier", null);
    return;
  }
  const parent = net.options.parent;
  const [, base, id] = VLAN_PARENT.exec(parent)!;
  plan.cmd(["ip", "link", "add", "link", base, "name", parent, "type", "vlan", "id", id], `802.1q sub-interface ${parent}: VLAN ${id} on ${base} (-o parent)`, ["ip", "link", "del", parent]);
  plan.cmd(["ip", "link", "set", parent, "alias", linkAlias("parent", net.name), "up"], "mark it as ctnet's, up", null);
}

function attach(kind: SubLinkKind, plan: Plan, ctx: PlanContext, netns: string, attachments: Attachment[]): void {
  for (const { net, ep } of attachments) {
    const mtu = net.options.mtu ? ["mtu", net.options.mtu] : [];
    const mac = ep.mac ? ["address", ep.mac] : [];
    const mode = net.options[kind.modeKey] ?? kind.modes[0];
    // made inside the sandbox in one request: the name is free there whatever the host's links are called
    plan.cmd(
      ["ip", "link", "add", ep.ifname, "link", net.options.parent, ...mac, ...mtu, "netns", netns, "type", kind.name, ...kind.modeArgs(mode)],
      `${kind.name} ${ep.ifname} of ${netns} on ${net.options.parent} (network ${net.name}, ${kind.modeKey}=${mode})`,
      ["ip", "-n", netns, "link", "del", ep.ifname],
    );
  }
  addressesUp(plan, netns, attachments, true);
}

function checkNetwork(net: NetworkRecord, host: LinkView): Finding[] {
  const parent = net.options.parent;
  if (host.links.has(parent)) return [];
  const what = `network ${net.name}: parent ${parent}`;
  if (!net.ownParent) return [{ text: `${what} is missing (not fixable: it is the host's, bring it back or remove the network)`, phase: 6 }];
  return [{ text: `${what}, which ctnet made, is missing`, phase: 6, fix: (plan) => createParent(plan, net) }];
}

function checkEndpoint(kind: SubLinkKind, ctx: PlanContext, ns: string, net: NetworkRecord, ep: Endpoint, inner: LinkView): Finding[] {
  const link = inner.links.get(ep.ifname);
  const what = `container ${ns} on ${ep.network}`;
  if (!link || link.kind !== kind.name) {
    return [{
      text: `${what}: ${kind.name} ${ep.ifname} is ${link ? `a ${link.kind || "plain"} link` : "missing"}`,
      phase: 7,
      recreatesLink: true,
      fix: (plan) => {
        if (link) plan.cmd(["ip", "-n", ns, "link", "del", ep.ifname], `remove the ${ep.ifname} that is not ${net.name}'s`, null);
        attach(kind, plan, ctx, ns, [{ net, ep }]);
      },
    }];
  }
  return checkInner(ns, net, ep, inner);
}

export function subLinkDriver(kind: SubLinkKind): NetworkDriver {
  return {
    name: kind.name,
    optionKeys: { parent: "parent", [kind.modeKey]: kind.modeKey, ...MTU_KEYS },
    checkOption(key, value) {
      if (key === "mtu") checkMtu(value);
      else if (key === kind.modeKey && !kind.modes.includes(value)) throw new UsageError(`invalid ${key} ${JSON.stringify(value)}: one of ${kind.modes.join(", ")}`);
      else if (key === "parent" && !/^[^\s/:]{1,15}$/.test(value)) throw new UsageError(`invalid parent ${JSON.stringify(value)}: an interface name`);
    },
    validate(ctx, state, net, req) {
      // the kernel first: without the module nothing else about the network matters
      if (!ctx.facts.kernelHas(kind.name as KernelModule)) throw new OpError(`kernel module ${kind.name} is missing: this kernel cannot make ${kind.name} links`);
      if (!req.subnetGiven) throw new UsageError(`${kind.name} networks need --subnet: the subnet of the LAN behind the parent`);
      net.bridge = "";
      if (net.internal) {
        if (net.options.parent) throw new UsageError(`an --internal ${kind.name} network has no parent: drop -o parent`);
        const { ifname, peer } = internalParent(net.name);
        for (const l of [ifname, peer]) if (ctx.facts.hasLink(l)) throw new UsageError(`interface ${l} for network ${net.name} already exists on the host`);
        net.options.parent = ifname;
        net.ownParent = true;
        return;
      }
      if (!net.options.parent) throw new UsageError(`${kind.name} networks need -o parent=IFACE: the host's link to the LAN`);
      validateParent(ctx, state, net);
    },
    create: (plan, _ctx, _state, net) => createParent(plan, net),
    remove(plan, _ctx, _state, net) {
      // a parent ctnet did not make stays as found
      const [first] = ownLinks(net);
      if (first) plan.cmd(["ip", "link", "del", first], `delete ${first}, the parent ctnet made for ${net.name}`, null);
    },
    attach: (plan, ctx, netns, attachments) => attach(kind, plan, ctx, netns, attachments),
    detach(plan, _ctx, netns, ep) {
      plan.cmd(["ip", "-n", netns, "link", "del", ep.ifname], `unplug ${ep.ifname} from ${ep.network}`, null);
    },
    networkLinks: ownLinks,
    macPerEndpoint: kind.ownMac,
    endpointHostLink: () => "",
    checkNetwork,
    checkEndpoint: (ctx, ns, net, ep, _host, inner) => checkEndpoint(kind, ctx, ns, net, ep, inner),
    hostSide: (net) => ({ ifname: net.options.parent, role: "parent" }),
    defaultRoute: (net, ep) => (kind.routesViaGateway(net) ? ["via", net.gateway] : ["dev", ep.ifname]),
  };
}
