// `ctnet graph`: the topology as the kernel has it right now — bridges with their gateway addresses,
// veth pairs, namespaces with their interfaces and addresses — plus the published ports ctnet recorded.
// State only says which objects to look at; every link, address and firewall fact shown was read back
// from the kernel. Drawing is in graphdot.ts (DOT, SVG) and graphpng.ts (PNG).
import { UsageError } from "../errors.js";
import { LINK_ALIAS_PREFIX } from "../naming.js";
import { readSysctl, runJson } from "../host/sys.js";
import { firewall } from "../firewall/iptables-driver.js";
import { networkIntent } from "../firewall/intent.js";
import { driverOf } from "../drivers/registry.js";
import { vxlanIfname } from "../drivers/overlay.js";
import { entryProblem, tunnels, type GraphBridge, type GraphCluster, type GraphIface, type GraphLan, type GraphSandbox, type Topology } from "../views/topology.js";
import type { State } from "../model.js";

const v4 = (link: any): string[] => (link.addr_info ?? []).filter((a: any) => a.family === "inet").map((a: any) => `${a.local}/${a.prefixlen}`);
const isUp = (link: any) => (link.flags ?? []).includes("UP");

/**
 * Reads the live topology of the objects `state` holds (only those of `lab` when given). With `linksOnly`
 * (the text format, which shows no more) it skips iptables and the routes: firewall facts read as none.
 */
export function readTopology(state: State, lab?: string, o: { linksOnly?: boolean } = {}): Topology {
  const containers = Object.values(state.containers).filter((c) => lab === undefined || c.lab === lab);
  const networks = Object.values(state.networks).filter((n) => lab === undefined || n.lab === lab || containers.some((c) => c.endpoints.some((e) => e.network === n.name)));
  if (lab !== undefined && containers.length === 0 && networks.length === 0) throw new UsageError(`lab ${lab} holds nothing`);

  // one scan of the host's links and addresses serves every bridge and veth
  const hostLinks = runJson(["ip", "-j", "-d", "addr", "show"]);
  const byName = new Map(hostLinks.map((l) => [l.ifname as string, l]));
  const byIndex = new Map(hostLinks.map((l) => [l.ifindex as number, l]));
  const shown = new Set(containers.map((c) => c.name));
  const elsewhere = new Set(Object.values(state.containers).filter((c) => !shown.has(c.name)).flatMap((c) => c.endpoints.map((e) => e.hostIf)));
  const rules = o.linksOnly ? { chains: [], rules: [] } : firewall.readHost({ strict: false });
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
    // an overlay's VXLAN device is drawn as the cluster's (topology.cluster), not as a port
    const vxlan = n.driver === "overlay" ? vxlanIfname(n.vni!) : undefined;
    const plugged = hostLinks.filter((l) => l.master === n.bridge && l.ifname !== vxlan).map((l) => l.ifname as string);
    return {
      network: n.name, ifname: n.bridge, present: !!link, up: !!link && isUp(link), addrs: link ? v4(link) : [],
      internal: n.internal, ...(n.lab ? { lab: n.lab } : {}),
      ports: plugged.filter((p) => !elsewhere.has(p)), hiddenPorts: plugged.filter((p) => elsewhere.has(p)).length,
      subnet: n.subnet, firewall: firewall.networkFacts(rules, networkIntent(n)),
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
      const links = runJson(["ip", "-n", c.netns, "-j", "-d", "addr", "show"]);
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
    container: c.name, hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, proto: p.proto, dnatTo: firewall.publishedTo(rules, p),
  })));
  const route = o.linksOnly ? undefined : runJson(["ip", "-j", "route", "show", "default"])[0];
  const uplinkLink = route?.dev ? byName.get(route.dev) : undefined;
  const uplink = route?.dev ? { ifname: route.dev as string, addrs: uplinkLink ? v4(uplinkLink) : [], gateway: (route.gateway as string) ?? null } : null;
  const forwarding = !o.linksOnly && readForwarding();
  return { bridges, lans, sandboxes, strayVeths, ports, uplink, forwarding };
}

const readForwarding = () => readSysctl("net.ipv4.ip_forward") === "1";


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
    const vx = t.cluster?.vxlans.find((v) => v.network === b.network);
    b.ports.forEach((p, n) => {
      const end = sandboxOf(p);
      const branch = n === b.ports.length - 1 && !vx ? "└─" : "├─";
      const shared = end && end.s.sharedBy.length ? ` (shared with ${end.s.sharedBy.join(", ")})` : "";
      out.push(`  ${branch} ${p} ⇄ ${end ? `${end.s.container}: ${ifaceText(end.i)}${shared}` : "(other end not in a container shown)"}`);
    });
    if (b.hiddenPorts) out.push(`  (and ${b.hiddenPorts} veth${b.hiddenPorts > 1 ? "s" : ""} of containers outside this lab)`);
    else if (b.ports.length === 0 && !vx) out.push("  (no containers)");
    if (vx) {
      const ends = tunnels(t.cluster!).filter((x) => x.vxlan === vx).map((x) => `${x.host.host} ${x.host.vtep}`);
      const flags = !vx.present ? "  [MISSING in the kernel]" : !vx.up ? "  [DOWN]" : "";
      out.push(`  └─ ${vx.ifname} ⇄ VXLAN VNI ${vx.vni} from VTEP ${vx.local ?? "?"}${ends.length ? `, tunnels to ${ends.join(", ")}` : ""}${flags}`);
    }
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
  if (t.cluster) out.push(...clusterText(t.cluster));
  if (out.length === 0) out.push("nothing to draw: no ctnet networks or containers");
  return out.join("\n") + "\n";
}

/** The other hosts of the cluster, their containers on the overlay networks shown, and how this host's tunnels reach them. */
function clusterText(c: GraphCluster): string[] {
  const out = [`cluster ${c.store}: this host ${c.host}, VTEP ${c.vtep}`];
  if (c.error) out.push(`  store unreadable (${c.error}): the other hosts are unknown`);
  for (const h of c.hosts) {
    out.push(`  host ${h.host}, VTEP ${h.vtep}, ${h.alive ? "Ready" : "Down"}`);
    h.containers.forEach((r, n) => {
      const vx = c.vxlans.find((v) => v.network === r.network)!;
      const problem = entryProblem(h, r, vx.ifname);
      out.push(`    ${n === h.containers.length - 1 ? "└─" : "├─"} ${r.container} ${r.ip} on ${r.network}: ${problem ?? `${vx.ifname} → VTEP ${r.fdbDst}`}`);
    });
  }
  for (const v of c.vxlans) for (const e of v.stale) out.push(`  stale FDB entry on ${v.ifname}: ${e.mac} → VTEP ${e.dst} (no live host's claim)`);
  return out;
}

export const GRAPH_FORMATS = ["text", "dot", "svg", "png", "json"] as const;

export async function graphCommand(state: State, o: { format?: string; lab?: string }): Promise<void> {
  const fmt = o.format ?? "text";
  if (!(GRAPH_FORMATS as readonly string[]).includes(fmt)) throw new UsageError(`invalid --format ${JSON.stringify(fmt)}: ${GRAPH_FORMATS.join(", ")}`);
  // a PNG on a terminal is noise that can upset it: refuse before reading anything
  if (fmt === "png" && process.stdout.isTTY) throw new UsageError("--format png writes binary data: redirect it to a file (ctnet graph --format png > topology.png)");
  const t = readTopology(state, o.lab, { linksOnly: fmt === "text" });
  // a joined host also draws the other hosts and the tunnels to them; the store client loads only then
  if (state.cluster && o.lab === undefined) {
    const { readClusterGraph, tryStoreView } = await import("../cluster/crosshost.js");
    t.cluster = readClusterGraph(state, t.bridges.map((b) => b.network), await tryStoreView(state));
  }
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
