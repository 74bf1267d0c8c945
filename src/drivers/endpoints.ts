// What every driver's endpoints share once their link is in the sandbox: the address, the link brought
// up without IPv6, and doctor's checks of both. Also the mtu option, which every driver takes.
import { UsageError } from "../errors.js";
import type { Plan } from "../plan/plan.js";
import type { Attachment, Finding, LinkView } from "./driver.js";
import type { Endpoint, NetworkRecord } from "../model.js";

const IPV6_MIN_MTU = 1280;
const MIN_MTU = 576;

export const MTU_KEYS = { mtu: "mtu", "com.docker.network.driver.mtu": "mtu" } as const;

export function checkMtu(value: string): void {
  // Docker parses it and refuses only a negative one, leaving the rest to the kernel (68..65535 for a
  // bridge). ctnet refuses below 576, the smallest datagram every IPv4 host must accept (RFC 791).
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < MIN_MTU || n > 65535) throw new UsageError(`invalid mtu ${JSON.stringify(value)}: must be ${MIN_MTU}..65535`);
}

/**
 * Addresses the sandbox's new links and brings them up: namespace-side commands, one `ip -batch`.
 * `carrierAtOnce`: the link has a carrier the moment it is up (macvlan, ipvlan, not a veth whose peer is
 * still down), and the kernel gives it an IPv6 link-local address before an addrgenmode sent in the same
 * request applies: the mode is then set first, on its own.
 */
export function addressesUp(plan: Plan, netns: string, attachments: Attachment[], carrierAtOnce = false): void {
  const inNs = (...args: string[]) => ["ip", "-n", netns, ...args];
  for (const { net, ep } of attachments) {
    plan.cmd(inNs("addr", "add", `${ep.ip}/${ep.prefixLen}`, "dev", ep.ifname), `${ep.ip} on ${net.name}`, null);
    // ctnet's networks are IPv4 only, and Docker 20.10 leaves such an eth0 without IPv6 too. A link-local
    // address would make the kernel send DAD, MLD and router solicitations, multicast the bridge floods
    // to every port: with n containers, each run cost n deliveries in the other namespaces. A link made
    // with an mtu below IPv6's minimum has no IPv6 at all, and the kernel refuses an addrgenmode for it.
    if (Number(net.options.mtu ?? IPV6_MIN_MTU) < IPV6_MIN_MTU) plan.cmd(inNs("link", "set", ep.ifname, "up"), `bring ${ep.ifname} up (mtu ${net.options.mtu}: no IPv6 on it)`, null);
    else if (carrierAtOnce) {
      plan.cmd(inNs("link", "set", ep.ifname, "addrgenmode", "none"), `no IPv6 link-local address on ${ep.ifname}`, null);
      plan.cmd(inNs("link", "set", ep.ifname, "up"), `bring ${ep.ifname} up`, null);
    } else plan.cmd(inNs("link", "set", ep.ifname, "addrgenmode", "none", "up"), `bring ${ep.ifname} up, without an IPv6 link-local address`, null);
  }
}

/** Doctor's checks of an endpoint's link inside the sandbox, whose existence the driver checked. */
export function checkInner(ns: string, net: NetworkRecord, ep: Endpoint, inner: LinkView): Finding[] {
  const out: Finding[] = [];
  const what = `container ${ns} on ${ep.network}`;
  const cidr = `${ep.ip}/${ep.prefixLen}`;
  if (!(inner.addrs.get(ep.ifname) ?? []).includes(cidr)) {
    out.push({ text: `${what}: ${ep.ifname} lacks its address ${cidr}`, phase: 7, fix: (plan) => plan.cmd(["ip", "-n", ns, "addr", "add", cidr, "dev", ep.ifname], `${ep.ip} on ${net.name}`, null) });
  }
  if (!inner.links.get(ep.ifname)?.up) {
    out.push({ text: `${what}: ${ep.ifname} is down`, phase: 7, fix: (plan) => plan.cmd(["ip", "-n", ns, "link", "set", ep.ifname, "up"], `bring ${ep.ifname} up`, null) });
  }
  return out;
}
