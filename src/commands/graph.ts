// `ctnet graph`: the topology as the kernel has it right now — bridges with their gateway addresses,
// veth pairs, namespaces with their interfaces and addresses — plus the published ports ctnet recorded.
// State only says which objects to look at; every link, address and firewall fact shown was read back
// from the kernel. Drawing is in graphdot.ts (DOT, SVG) and graphpng.ts (PNG).
import fs from "node:fs";
import { UsageError } from "../errors.js";
import { LINK_ALIAS_PREFIX } from "../naming.js";
import { run } from "../host/sys.js";
import { driverOf } from "../drivers/registry.js";
import type { State } from "../model.js";

export interface GraphIface {
  ifname: string;
  addrs: string[];
  mac: string;
  up: boolean;
  /** host-side veth this interface is paired with */
  peer?: string;
  /** the network without a bridge (macvlan, ipvlan) whose parent this link hangs on */
  lan?: string;
}

/** A network whose containers hang on a parent link of the host (macvlan, ipvlan): the parent and the LAN behind it. */
export interface GraphLan {
  network: string;
  driver: string;
  /** the host's link the containers' links hang on */
  parent: string;
  present: boolean;
  up: boolean;
  subnet: string;
  gateway: string;
  internal: boolean;
  lab?: string;
}

export interface GraphBridge {
  network: string;
  ifname: string;
  present: boolean;
  up: boolean;
  addrs: string[];
  internal: boolean;
  lab?: string;
  /** host-side veths plugged into it, in the kernel's order */
  ports: string[];
  /** veths of containers outside the lab shown (the default bridge is shared) */
  hiddenPorts: number;
  subnet: string;
  /** what ctnet's rules for this bridge in the kernel's iptables do (all false when none are there) */
  firewall: BridgeFirewall;
}

export interface BridgeFirewall {
  /** CTNET-ISOLATION sends traffic leaving this bridge for another one to CTNET-ISOLATION-2 */
  leavingChecked: boolean;
  /** CTNET-ISOLATION-2 drops traffic from other ctnet networks entering this bridge */
  enteringDropped: boolean;
  /** CTNET-FORWARD drops traffic between two ports of this bridge (icc=false) */
  iccDropped: boolean;
  /** the internal network's rules: nothing leaves or enters its subnet */
  internalDropped: boolean;
  /** CTNET-POSTROUTING masquerades the subnet leaving through another interface */
  masquerade: boolean;
}

/** The host's way out: its default route's interface and addresses. */
export interface GraphUplink {
  ifname: string;
  addrs: string[];
  gateway: string | null;
}

export interface GraphSandbox {
  container: string;
  netns: string | null;
  mode: string;
  present: boolean;
  ifaces: GraphIface[];
  /** container: mode members sharing this namespace */
  sharedBy: string[];
  lab?: string;
}

export interface GraphPort {
  container: string;
  hostIp: string;
  hostPort: number;
  containerPort: number;
  proto: string;
  /** the DNAT rule's --to-destination as the kernel's CTNET-DNAT holds it; null when it is missing */
  dnatTo: string | null;
}

export interface Topology {
  bridges: GraphBridge[];
  lans: GraphLan[];
  sandboxes: GraphSandbox[];
  /** veths plugged into the bridges shown whose other end belongs to no container shown */
  strayVeths: Array<{ ifname: string; bridge: string }>;
  ports: GraphPort[];
  /** null when the host has no default route */
  uplink: GraphUplink | null;
  /** net.ipv4.ip_forward: containers reach beyond their bridge only when it is on */
  forwarding: boolean;
}

const json = (argv: string[]): any[] => {
  const res = run(argv);
  return res.code === 0 && res.stdout.trim() ? JSON.parse(res.stdout) : [];
};
const v4 = (link: any): string[] => (link.addr_info ?? []).filter((a: any) => a.family === "inet").map((a: any) => `${a.local}/${a.prefixlen}`);
const isUp = (link: any) => (link.flags ?? []).includes("UP");

/**
 * A rule as `table chain` and its options ("-i br", "! -d net", …) sorted: `iptables -S` prints options
 * in its own order, not the order ctnet gave them in.
 */
function ruleKey(table: string, chain: string, spec: string): string {
  const groups = spec.replace(/(^| )! (-\S+)/g, "$1!$2").trim().split(/ (?=!?-)/).sort();
  return `${table} ${chain} ${groups.join(" ")}`;
}

/** Keys (ruleKey) of every rule of both tables (empty when iptables fails) and the nat rules as printed. */
function firewallRules(): { keys: Set<string>; nat: string[] } {
  const keys = new Set<string>();
  const nat: string[] = [];
  for (const table of ["filter", "nat"]) {
    const res = run(["iptables", "-w", "-t", table, "-S"]);
    if (res.code !== 0) continue;
    for (const line of res.stdout.split("\n")) {
      const m = /^-A (\S+) (.*)$/.exec(line);
      if (!m) continue;
      keys.add(ruleKey(table, m[1], m[2]));
      if (table === "nat") nat.push(line);
    }
  }
  return { keys, nat };
}

function bridgeFirewall(keys: Set<string>, br: string, subnet: string): BridgeFirewall {
  const has = (table: string, chain: string, spec: string) => keys.has(ruleKey(table, chain, spec));
  return {
    leavingChecked: has("filter", "CTNET-ISOLATION", `-i ${br} ! -o ${br} -j CTNET-ISOLATION-2`),
    enteringDropped: has("filter", "CTNET-ISOLATION-2", `-o ${br} -j DROP`),
    iccDropped: has("filter", "CTNET-FORWARD", `-i ${br} -o ${br} -j DROP`),
    internalDropped: has("filter", "CTNET-ISOLATION", `-i ${br} ! -d ${subnet} -j DROP`) && has("filter", "CTNET-ISOLATION", `-o ${br} ! -s ${subnet} -j DROP`),
    masquerade: has("nat", "CTNET-POSTROUTING", `-s ${subnet} ! -o ${br} -j MASQUERADE`),
  };
}

/** The DNAT target of a published port in CTNET-DNAT (ports.ts writes the rule; iptables -S prints it so). */
function dnatTarget(nat: string[], p: { hostIp: string; hostPort: number; proto: string }): string | null {
  const dest = p.hostIp === "0.0.0.0" ? "" : `-d ${p.hostIp}/32 `;
  const head = `-A CTNET-DNAT ${dest}-p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination `;
  const line = nat.find((l) => l.startsWith(head));
  return line ? line.slice(head.length) : null;
}

/** Traffic from bridge `from` to bridge `to` meets a DROP in ctnet's isolation chains. */
export function isolated(from: GraphBridge, to: GraphBridge): boolean {
  return (from.firewall.leavingChecked && to.firewall.enteringDropped) || from.firewall.internalDropped || to.firewall.internalDropped;
}

/**
 * Reads the live topology of the objects `state` holds (only those of `lab` when given). With `linksOnly`
 * (the text format, which shows no more) it skips iptables and the routes: firewall facts read as none.
 */
export function readTopology(state: State, lab?: string, o: { linksOnly?: boolean } = {}): Topology {
  const containers = Object.values(state.containers).filter((c) => lab === undefined || c.lab === lab);
  const networks = Object.values(state.networks).filter((n) => lab === undefined || n.lab === lab || containers.some((c) => c.endpoints.some((e) => e.network === n.name)));
  if (lab !== undefined && containers.length === 0 && networks.length === 0) throw new UsageError(`lab ${lab} holds nothing`);

  // one scan of the host's links and addresses serves every bridge and veth
  const hostLinks = json(["ip", "-j", "-d", "addr", "show"]);
  const byName = new Map(hostLinks.map((l) => [l.ifname as string, l]));
  const byIndex = new Map(hostLinks.map((l) => [l.ifindex as number, l]));
  const shown = new Set(containers.map((c) => c.name));
  const elsewhere = new Set(Object.values(state.containers).filter((c) => !shown.has(c.name)).flatMap((c) => c.endpoints.map((e) => e.hostIf)));
  const rules = o.linksOnly ? { keys: new Set<string>(), nat: [] } : firewallRules();
  const lans: GraphLan[] = [];
  for (const n of networks) {
    const side = driverOf(n).hostSide(n);
    if (side?.role !== "parent") continue;
    const link = byName.get(side.ifname);
    lans.push({
      network: n.name, driver: n.driver, parent: side.ifname, present: !!link, up: !!link && isUp(link),
      subnet: n.subnet, gateway: n.gateway, internal: n.internal, ...(n.lab ? { lab: n.lab } : {}),
    });
  }
  const onLan = new Set(lans.map((l) => l.network));
  const bridges: GraphBridge[] = networks.filter((n) => driverOf(n).hostSide(n)?.role === "bridge").map((n) => {
    const link = byName.get(n.bridge);
    const plugged = hostLinks.filter((l) => l.master === n.bridge).map((l) => l.ifname as string);
    return {
      network: n.name, ifname: n.bridge, present: !!link, up: !!link && isUp(link), addrs: link ? v4(link) : [],
      internal: n.internal, ...(n.lab ? { lab: n.lab } : {}),
      ports: plugged.filter((p) => !elsewhere.has(p)), hiddenPorts: plugged.filter((p) => elsewhere.has(p)).length,
      subnet: n.subnet, firewall: bridgeFirewall(rules.keys, n.bridge, n.subnet),
    };
  });

  const sandboxes: GraphSandbox[] = [];
  const peered = new Set<string>();
  for (const c of containers) {
    if (c.mode === "container") continue;
    const box: GraphSandbox = {
      container: c.name, netns: c.netns, mode: c.mode, present: c.mode === "host", ifaces: [],
      sharedBy: containers.filter((o) => o.joined === c.name).map((o) => o.name), ...(c.lab ? { lab: c.lab } : {}),
    };
    if (c.netns) {
      const links = json(["ip", "-n", c.netns, "-j", "-d", "addr", "show"]);
      box.present = links.length > 0;
      for (const l of links) {
        const peer = l.link_index ? byIndex.get(l.link_index) : undefined;
        const peerName = peer && (peer.ifalias ?? "").startsWith(LINK_ALIAS_PREFIX) ? peer.ifname : undefined;
        if (peerName) peered.add(peerName);
        const lan = c.endpoints.find((e) => e.ifname === l.ifname && onLan.has(e.network))?.network;
        box.ifaces.push({ ifname: l.ifname, addrs: v4(l), mac: l.address, up: isUp(l), ...(peerName ? { peer: peerName } : {}), ...(lan ? { lan } : {}) });
      }
    }
    sandboxes.push(box);
  }
  const strayVeths = bridges.flatMap((b) => b.ports.filter((p) => !peered.has(p)).map((ifname) => ({ ifname, bridge: b.ifname })));
  const ports = containers.flatMap((c) => c.ports.map((p) => ({
    container: c.name, hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, proto: p.proto, dnatTo: dnatTarget(rules.nat, p),
  })));
  const route = o.linksOnly ? undefined : json(["ip", "-j", "route", "show", "default"])[0];
  const uplinkLink = route?.dev ? byName.get(route.dev) : undefined;
  const uplink = route?.dev ? { ifname: route.dev as string, addrs: uplinkLink ? v4(uplinkLink) : [], gateway: (route.gateway as string) ?? null } : null;
  const forwarding = !o.linksOnly && readForwarding();
  return { bridges, lans, sandboxes, strayVeths, ports, uplink, forwarding };
}

function readForwarding(): boolean {
  try {
    return fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim() === "1";
  } catch {
    return false;
  }
}

export const bridgeOf = (t: Topology, hostIf: string) => t.bridges.find((b) => b.ports.includes(hostIf));

// ---- text --------------------------------------------------------------------------------------

export function renderText(t: Topology): string {
  const out: string[] = [];
  const ifaceText = (i: GraphIface) => `${i.ifname} ${i.addrs.join(" ") || "(no address)"}${i.up ? "" : " DOWN"}`;
  const sandboxOf = (hostIf: string) => {
    for (const s of t.sandboxes) for (const i of s.ifaces) if (i.peer === hostIf) return { s, i };
    return undefined;
  };
  for (const b of t.bridges) {
    const flags = [b.internal ? "internal" : "", b.lab ? `lab ${b.lab}` : "", !b.present ? "MISSING in the kernel" : !b.up ? "DOWN" : ""].filter(Boolean);
    out.push(`network ${b.network}: bridge ${b.ifname} ${b.addrs.join(" ") || "(no address)"}${flags.length ? `  [${flags.join(", ")}]` : ""}`);
    b.ports.forEach((p, n) => {
      const end = sandboxOf(p);
      const branch = n === b.ports.length - 1 ? "└─" : "├─";
      const shared = end && end.s.sharedBy.length ? ` (shared with ${end.s.sharedBy.join(", ")})` : "";
      out.push(`  ${branch} ${p} ⇄ ${end ? `${end.s.container}: ${ifaceText(end.i)}${shared}` : "(other end not in a container shown)"}`);
    });
    if (b.hiddenPorts) out.push(`  (and ${b.hiddenPorts} veth${b.hiddenPorts > 1 ? "s" : ""} of containers outside this lab)`);
    else if (b.ports.length === 0) out.push("  (no containers)");
  }
  for (const l of t.lans) {
    const flags = [l.internal ? "internal" : "", l.lab ? `lab ${l.lab}` : "", !l.present ? "parent MISSING in the kernel" : !l.up ? "parent DOWN" : ""].filter(Boolean);
    const lan = l.internal ? "no LAN: a parent of ctnet's own" : `LAN ${l.subnet}, gateway ${l.gateway}`;
    out.push(`network ${l.network}: ${l.driver} on parent ${l.parent} (${lan})${flags.length ? `  [${flags.join(", ")}]` : ""}`);
    const members = t.sandboxes.flatMap((s) => s.ifaces.filter((i) => i.lan === l.network).map((i) => ({ s, i })));
    members.forEach(({ s, i }, n) => out.push(`  ${n === members.length - 1 ? "└─" : "├─"} ${s.container}: ${ifaceText(i)}`));
    if (members.length === 0) out.push("  (no containers)");
  }
  const others = t.sandboxes.filter((s) => s.mode !== "bridge");
  if (others.length) out.push("other sandboxes:");
  for (const s of others) {
    const what = s.mode === "host" ? "the host's own network namespace" : !s.present ? `namespace ${s.netns} MISSING` : s.ifaces.map(ifaceText).join(", ");
    out.push(`  ${s.container} [${s.mode}]: ${what}${s.sharedBy.length ? ` (shared with ${s.sharedBy.join(", ")})` : ""}`);
  }
  const missing = t.sandboxes.filter((s) => s.mode === "bridge" && !s.present);
  for (const s of missing) out.push(`  ${s.container}: namespace ${s.netns} MISSING in the kernel`);
  if (t.ports.length) out.push("published ports:");
  for (const p of t.ports) out.push(`  ${p.hostIp}:${p.hostPort} → ${p.container}:${p.containerPort}/${p.proto}`);
  if (out.length === 0) out.push("nothing to draw: no ctnet networks or containers");
  return out.join("\n") + "\n";
}

export const GRAPH_FORMATS = ["text", "dot", "svg", "png", "json"] as const;

export async function graphCommand(state: State, o: { format?: string; lab?: string }): Promise<void> {
  const fmt = o.format ?? "text";
  if (!(GRAPH_FORMATS as readonly string[]).includes(fmt)) throw new UsageError(`invalid --format ${JSON.stringify(fmt)}: ${GRAPH_FORMATS.join(", ")}`);
  // a PNG on a terminal is noise that can upset it: refuse before reading anything
  if (fmt === "png" && process.stdout.isTTY) throw new UsageError("--format png writes binary data: redirect it to a file (ctnet graph --format png > topology.png)");
  const t = readTopology(state, o.lab, { linksOnly: fmt === "text" });
  if (fmt === "json") process.stdout.write(JSON.stringify(t, null, 4) + "\n");
  else if (fmt === "text") process.stdout.write(renderText(t));
  else {
    // Graphviz (and for PNG, the rasteriser) are loaded only for the formats that need them
    const { renderDot, renderSvg } = await import("../views/graphdot.js");
    if (fmt === "dot") process.stdout.write(renderDot(t));
    else if (fmt === "svg") process.stdout.write(await renderSvg(t));
    else process.stdout.write((await import("../views/graphpng.js")).svgToPng(await renderSvg(t)));
  }
}
