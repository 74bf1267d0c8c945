// The topology as a picture that teaches, in Graphviz's DOT (and SVG through @viz-js/viz):
//
//   container ─eth0─▶ veth ─▶ bridge ─MASQUERADE─▶ host routing ─▶ uplink ─▶ outside
//                         (inside the host box: the host's own network namespace)
//   outside ─▶ uplink address:port ─▶ DNAT ─▶ container address:port     (published ports)
//   bridge ┤×├ bridge                                                    (isolation: dashed, barred both ends)
//   container ─eth0─▶ parent NIC ─▶ LAN                                  (macvlan, ipvlan: no bridge, no NAT)
//
// Each network has a colour of its own (its name's when it is called red, blue, …), which edges its
// bridge, veths and interfaces. Text is monospace: Graphviz sizes boxes for Courier's fixed advance, which
// every monospace font shares, so no renderer's font makes text spill out of its box.
import { VXLAN_PORT } from "../model.js";
import {
  bridgeOf, entryProblem, isolated, tunnels, type GraphBridge, type GraphCluster, type GraphLan, type GraphPort, type GraphRemoteContainer, type GraphRemoteHost,
  type GraphSandbox, type GraphVxlan, type Topology,
} from "./topology.js";

// ---- colours -------------------------------------------------------------------------------------

/** A network named (or dash-, dot- or underscore-suffixed) after a colour is drawn in it. */
const NAMED: Record<string, string> = {
  red: "#dc2626", blue: "#2563eb", green: "#16a34a", orange: "#ea580c", purple: "#9333ea", yellow: "#ca8a04",
  pink: "#db2777", brown: "#92400e", cyan: "#0891b2", teal: "#0d9488", gray: "#4b5563", grey: "#4b5563", black: "#111827",
};
/** For other names: distinct from one another and from red and blue, which the seeds use for two networks. */
const PALETTE = ["#0d9488", "#9333ea", "#ea580c", "#65a30d", "#db2777", "#92400e", "#0891b2", "#4f46e5", "#ca8a04"];

const namedColour = (network: string) => network.toLowerCase().split(/[-_.]/).map((w) => NAMED[w]).find(Boolean);

function hash(text: string): number {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
}

/**
 * A colour per network, stable: a network keeps its colour from one run to the next whatever else is
 * drawn, unless two names hash to the same slot, when the later name (in sorted order) takes the next free one.
 */
export function networkColours(networks: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const taken = new Set<string>();
  for (const n of networks) {
    const c = namedColour(n);
    if (c) out.set(n, c), taken.add(c);
  }
  for (const n of [...networks].filter((n) => !out.has(n)).sort()) {
    const start = hash(n) % PALETTE.length;
    const free = PALETTE.map((_, i) => PALETTE[(start + i) % PALETTE.length]).find((c) => !taken.has(c)) ?? PALETTE[start];
    out.set(n, free);
    taken.add(free);
  }
  return out;
}

/** The colour mixed with white: a fill light enough for black text. */
export function tint(hex: string, keep = 0.12): string {
  const mix = (i: number) => Math.round(parseInt(hex.slice(i, i + 2), 16) * keep + 255 * (1 - keep)).toString(16).padStart(2, "0");
  return `#${mix(1)}${mix(3)}${mix(5)}`;
}

const DROP = "#b91c1c";
const PORT = "#111827";
const NEUTRAL = "#6b7280";

// ---- DOT -----------------------------------------------------------------------------------------

const q = (s: string) => `"${s.replace(/["\\]/g, "\\$&")}"`;
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const attrs = (a: Record<string, string | number | undefined>) =>
  `[${Object.entries(a).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${typeof v === "string" && v.startsWith("<") ? v : q(String(v))}`).join(", ")}]`;

/** An HTML-like label: a bold title row, then plain rows, each its own cell so nothing runs over. */
function table(o: { title: string; rows: string[]; warn?: string[] }): string {
  const cell = (text: string, extra = "") => `<TR><TD${extra}>${text}</TD></TR>`;
  return `<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">${cell(`<B>${esc(o.title)}</B>`)}${o.rows.map((r) => cell(esc(r))).join("")}${(o.warn ?? []).map((w) => cell(`<FONT COLOR="${DROP}">${esc(w)}</FONT>`)).join("")}</TABLE>>`;
}

const nsId = (s: GraphSandbox) => `ns:${s.netns}`;
const brId = (b: GraphBridge) => `br:${b.ifname}`;
const vethId = (ifname: string) => `veth:${ifname}`;
const dnatId = (p: GraphPort) => `dnat:${p.proto}:${p.hostIp}:${p.hostPort}`;
const parentId = (l: GraphLan) => `parent:${l.network}`;

/** Graphviz source of the topology (a digraph: arrows follow traffic leaving the containers). */
export function renderDot(t: Topology): string {
  const colour = networkColours([...t.bridges, ...t.lans].map((b) => b.network));
  const netColour = (b: GraphBridge | undefined) => (b ? colour.get(b.network)! : NEUTRAL);
  const out: string[] = [
    "digraph ctnet {",
    '  graph [rankdir=LR, fontname="Courier", fontsize=12, nodesep=0.3, ranksep=0.55, newrank=true, bgcolor="white", pad=0.2];',
    '  node [fontname="Courier", fontsize=11, shape=box, style="rounded,filled", fillcolor="#ffffff", margin="0.12,0.06", penwidth=1.4];',
    '  edge [fontname="Courier", fontsize=10, arrowsize=0.7, penwidth=1.4];',
  ];
  const line = (indent: number, text: string) => out.push(`${"  ".repeat(indent)}${text}`);

  // -- containers, outside the host box: one node per namespace, one cell (and port) per interface
  for (const s of t.sandboxes.filter((s) => s.mode !== "host")) {
    const nets = s.ifaces.map((i) => i.lan ?? (i.peer ? bridgeOf(t, i.peer)?.network : undefined)).filter((n): n is string => !!n);
    const own = nets.length > 0 && nets.every((n) => n === nets[0]) ? colour.get(nets[0])! : NEUTRAL;
    const ifaceCells = s.ifaces.filter((i) => i.ifname !== "lo").map((i) => {
      const c = i.lan ? colour.get(i.lan)! : i.peer ? netColour(bridgeOf(t, i.peer)) : NEUTRAL;
      const text = `${i.ifname} ${i.addrs.join(" ") || "(no address)"}${i.up ? "" : " DOWN"}`;
      return `<TR><TD PORT=${q(i.ifname)} BORDER="1" COLOR="${c}" BGCOLOR="#ffffff" STYLE="rounded">${esc(text)}</TD></TR>`;
    });
    const notes = !s.present ? [`<TR><TD><FONT COLOR="${DROP}">namespace MISSING</FONT></TD></TR>`] : ifaceCells.length ? [] : ["<TR><TD>lo only</TD></TR>"];
    const head = `<TR><TD><B>${esc(s.container)}</B></TD></TR><TR><TD>netns ${esc(s.netns ?? "")}${s.mode === "bridge" ? "" : ` (--net ${s.mode})`}</TD></TR>`;
    const label = `<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="3">${head}${ifaceCells.join("")}${notes.join("")}</TABLE>>`;
    line(1, `${q(nsId(s))} ${attrs({ label, color: own, fillcolor: tint(own), class: "container", tooltip: `container ${s.container}: network namespace ${s.netns}` })};`);
    for (const member of s.sharedBy) {
      line(1, `${q(`ctr:${member}`)} ${attrs({ label: table({ title: member, rows: [`--net container:${s.container}`] }), color: own, fillcolor: "#ffffff", class: "container" })};`);
      line(1, `${q(`ctr:${member}`)} -> ${q(nsId(s))} ${attrs({ style: "dashed", arrowhead: "none", label: "shares its netns", color: own, class: "shares" })};`);
    }
  }

  // -- the host box: its network namespace, holding the veths, bridges, routing, NAT and uplink
  line(1, "subgraph cluster_host {");
  const self = t.cluster ? `<B>host ${esc(t.cluster.host)}</B>: its own network namespace, VTEP ${esc(t.cluster.vtep)}` : "<B>host</B>: its own network namespace";
  line(2, `graph ${attrs({ label: `<${self}>`, style: "rounded,filled", fillcolor: "#f9fafb", color: NEUTRAL, labeljust: "l", class: "host" })};`);
  const forwarding = t.forwarding ? "ip_forward=1" : "ip_forward=0: nothing forwarded";
  line(2, `host ${attrs({ label: table({ title: "host routing", rows: t.forwarding ? [forwarding] : [], warn: t.forwarding ? [] : [forwarding] }), color: NEUTRAL, fillcolor: "#ffffff", class: "routing" })};`);
  for (const s of t.sandboxes.filter((s) => s.mode === "host")) {
    line(2, `${q(`ctr:${s.container}`)} ${attrs({ label: table({ title: s.container, rows: ["--net host: uses this namespace"] }), color: NEUTRAL, fillcolor: "#fef3c7", class: "container" })};`);
    line(2, `${q(`ctr:${s.container}`)} -> host ${attrs({ style: "dashed", arrowhead: "none", color: NEUTRAL, class: "shares" })};`);
  }
  for (const b of t.bridges) {
    const c = netColour(b);
    const warn = [
      b.firewall.iccDropped ? "icc=false: its containers cannot reach each other" : "",
      b.firewall.internalDropped || b.internal ? "internal: no way in or out" : "",
      !b.present ? "bridge MISSING" : !b.up ? "DOWN" : "",
    ].filter(Boolean);
    const rows = [`bridge ${b.ifname}`, ...b.addrs.map((a) => `${a} (gateway)`), ...(b.hiddenPorts ? [`+${b.hiddenPorts} veth(s) of other labs`] : [])];
    line(2, `${q(brId(b))} ${attrs({ label: table({ title: `network ${b.network}`, rows, warn }), color: c, fillcolor: tint(c), penwidth: 2.2, class: `bridge network-${b.network}`, tooltip: `network ${b.network}: bridge ${b.ifname}, subnet ${b.subnet}` })};`);
    // out of the bridge: masqueraded, routed as is, or dropped (internal)
    if (b.firewall.internalDropped) {
      line(2, `${q(brId(b))} -> host ${attrs({ style: "dashed", color: DROP, fontcolor: DROP, arrowhead: "tee", label: `× DROP: internal, nothing leaves ${b.subnet}`, class: `out drop network-${b.network}` })};`);
    } else {
      line(2, `${q(brId(b))} -> host ${attrs({ color: c, fontcolor: c, label: b.firewall.masquerade ? `MASQUERADE ${b.subnet}` : "routed, not masqueraded", class: `out network-${b.network}` })};`);
    }
  }
  // the veth pairs: the host end inside the host box, its eth0 in the container
  for (const s of t.sandboxes) {
    for (const i of s.ifaces) {
      const b = i.peer ? bridgeOf(t, i.peer) : undefined;
      if (!i.peer || !b) continue;
      const c = netColour(b);
      const full = i.peer === `ve-${s.container}.${b.network}`;
      const rows = full ? [] : [`${s.container} on ${b.network}`];
      const tooltip = `veth ${i.peer}: host end of ${s.container}'s ${i.ifname}, plugged into ${b.ifname} (network ${b.network})`;
      line(2, `${q(vethId(i.peer))} ${attrs({ label: table({ title: i.peer, rows }), color: c, fillcolor: "#ffffff", class: `veth network-${b.network}`, tooltip })};`);
      line(2, `${q(vethId(i.peer))} -> ${q(brId(b))} ${attrs({ color: c, class: `plug network-${b.network}`, tooltip: `${i.peer} is a port of ${b.ifname}` })};`);
    }
  }
  for (const v of t.strayVeths) {
    const b = t.bridges.find((x) => x.ifname === v.bridge);
    line(2, `${q(vethId(v.ifname))} ${attrs({ label: table({ title: v.ifname, rows: [], warn: ["other end in no container shown"] }), color: DROP, fillcolor: "#fee2e2", class: "veth stray" })};`);
    line(2, `${q(vethId(v.ifname))} -> ${q(`br:${v.bridge}`)} ${attrs({ color: netColour(b), class: "plug" })};`);
  }
  // macvlan, ipvlan: the parent NIC in the host box, the containers' links hang on it
  for (const l of t.lans) {
    const c = colour.get(l.network)!;
    const warn = [l.internal ? "internal: a parent of ctnet's own" : "the host cannot reach these containers through it", !l.present ? "parent MISSING" : !l.up ? "DOWN" : ""].filter(Boolean);
    line(2, `${q(parentId(l))} ${attrs({ label: table({ title: `network ${l.network}`, rows: [`${l.driver} parent ${l.parent}`, l.subnet], warn }), color: c, fillcolor: tint(c), penwidth: 2.2, class: `parent network-${l.network}`, tooltip: `network ${l.network}: ${l.driver} links on ${l.parent}` })};`);
  }
  if (t.uplink) {
    line(2, `${q(`uplink:${t.uplink.ifname}`)} ${attrs({ label: table({ title: `uplink ${t.uplink.ifname}`, rows: t.uplink.addrs.length ? t.uplink.addrs : ["(no address)"] }), color: "#374151", fillcolor: "#e5e7eb", penwidth: 2, class: "uplink", tooltip: "the interface of the host's default route" })};`);
    line(2, `host -> ${q(`uplink:${t.uplink.ifname}`)} ${attrs({ color: "#374151", label: "default route", class: "route" })};`);
  }
  for (const p of t.ports) line(2, `${q(dnatId(p))} ${attrs(dnatNode(p))};`);
  if (t.cluster) vxlanNodes(t, t.cluster, colour, line);
  line(1, "}");
  if (t.cluster) remoteHosts(t.cluster, colour, line);

  // the pair's other end: the container's interface
  for (const s of t.sandboxes) {
    for (const i of s.ifaces) {
      const b = i.peer ? bridgeOf(t, i.peer) : undefined;
      if (!i.peer || !b || !s.netns) continue;
      const c = netColour(b);
      line(1, `${q(nsId(s))}:${q(i.ifname)} -> ${q(vethId(i.peer))} ${attrs({ color: c, penwidth: 2.2, arrowhead: "none", class: `pair network-${b.network}`, tooltip: `veth pair: ${i.ifname} in ${s.container} ⇄ ${i.peer} on the host` })};`);
    }
  }
  if (t.uplink) {
    const via = t.uplink.gateway ? [`via gateway ${t.uplink.gateway}`] : [];
    line(1, `outside ${attrs({ label: table({ title: "outside", rows: ["LAN, internet", ...via] }), shape: "box", style: "rounded,dashed", color: NEUTRAL, class: "outside" })};`);
    line(1, `${q(`uplink:${t.uplink.ifname}`)} -> outside ${attrs({ color: "#374151", class: "route" })};`);
  }

  // a macvlan or ipvlan link goes straight to its parent, and the parent to the LAN: no bridge, no NAT
  for (const s of t.sandboxes) {
    for (const i of s.ifaces) {
      const l = t.lans.find((x) => x.network === i.lan);
      if (!l || !s.netns) continue;
      line(1, `${q(nsId(s))}:${q(i.ifname)} -> ${q(parentId(l))} ${attrs({ color: colour.get(l.network)!, penwidth: 2.2, class: `${l.driver} network-${l.network}`, label: l.driver, tooltip: `${i.ifname} of ${s.container} is a ${l.driver} link on ${l.parent}` })};`);
    }
  }
  for (const l of t.lans.filter((x) => !x.internal)) {
    const c = colour.get(l.network)!;
    line(1, `${q(`lan:${l.network}`)} ${attrs({ label: table({ title: `LAN of ${l.network}`, rows: [l.subnet, `gateway ${l.gateway}`] }), shape: "box", style: "rounded,dashed", color: c, class: `lan network-${l.network}` })};`);
    line(1, `${q(parentId(l))} -> ${q(`lan:${l.network}`)} ${attrs({ color: c, class: `wire network-${l.network}`, label: `wire of ${l.parent}` })};`);
  }

  // published ports: from a host address through the DNAT to the container's address and port. The
  // edges run container→host with dir=back, so the DNAT sits between them in the layout.
  const hostAddr = t.uplink?.addrs[0]?.split("/")[0];
  for (const p of t.ports) {
    const target = t.sandboxes.find((s) => s.container === p.container);
    const entry = t.uplink ? q(`uplink:${t.uplink.ifname}`) : "host";
    const from = p.hostIp === "0.0.0.0" ? `${hostAddr ?? "any host address"}:${p.hostPort}` : `${p.hostIp}:${p.hostPort}`;
    line(1, `${q(dnatId(p))} -> ${entry} ${attrs({ dir: "back", color: PORT, fontcolor: PORT, style: "bold", label: `${from}/${p.proto}`, class: "published" })};`);
    const iface = target?.ifaces.find((i) => p.dnatTo && i.addrs.some((a) => a.split("/")[0] === p.dnatTo!.split(":")[0]));
    if (target?.netns && iface) {
      line(1, `${q(nsId(target))}:${q(iface.ifname)} -> ${q(dnatId(p))} ${attrs({ dir: "back", color: PORT, style: "bold", class: "published", tooltip: `DNAT to ${p.dnatTo}/${p.proto}` })};`);
    }
  }

  // isolation: one barred, dashed edge per pair of networks whose traffic ctnet's chains drop
  for (const [n, a] of t.bridges.entries()) {
    for (const b of t.bridges.slice(n + 1)) {
      const [ab, ba] = [isolated(a, b), isolated(b, a)];
      if (!ab && !ba) continue;
      const dir = ab && ba ? "both" : ab ? "forward" : "back";
      const what = ab && ba ? "both ways" : ab ? `${a.network} to ${b.network}` : `${b.network} to ${a.network}`;
      line(1, `${q(brId(a))} -> ${q(brId(b))} ${attrs({ constraint: "false", style: "dashed", color: DROP, fontcolor: DROP, dir, arrowhead: "tee", arrowtail: "tee", label: `× DROP ${what}`, class: "isolation", tooltip: `CTNET-ISOLATION drops traffic between ${a.network} and ${b.network} (${what})` })};`);
    }
  }
  out.push("}");
  return out.join("\n") + "\n";
}

// ---- the cluster (a joined host): VXLAN devices, the other hosts, the tunnels -----------------------

type Line = (indent: number, text: string) => void;
const vxId = (v: GraphVxlan) => `vxlan:${v.ifname}`;
const vtepId = (h: GraphRemoteHost) => `vtep:${h.host}`;
const remoteId = (h: GraphRemoteHost, r: GraphRemoteContainer) => `remote:${h.host}:${r.network}:${r.container}`;

/** Inside the host box: each overlay bridge's VXLAN device, the bridge's port into the tunnels. */
function vxlanNodes(t: Topology, c: GraphCluster, colour: Map<string, string>, line: Line): void {
  for (const v of c.vxlans) {
    const col = colour.get(v.network) ?? NEUTRAL;
    const warn = [!v.present ? "VXLAN device MISSING" : !v.up ? "DOWN" : "", ...v.stale.map((e) => `stale FDB ${e.mac} → ${e.dst}`)].filter(Boolean);
    const rows = [`VNI ${v.vni}`, `from VTEP ${v.local ?? "?"}, UDP ${VXLAN_PORT}`];
    line(2, `${q(vxId(v))} ${attrs({ label: table({ title: `VXLAN ${v.ifname}`, rows, warn }), color: warn.length ? DROP : col, fillcolor: "#ffffff", class: `vxlan network-${v.network}`, tooltip: `${v.ifname}: VXLAN device of overlay network ${v.network}, plugged into ${v.bridge}` })};`);
    const b = t.bridges.find((x) => x.ifname === v.bridge);
    if (b) line(2, `${q(brId(b))} -> ${q(vxId(v))} ${attrs({ color: col, class: `plug network-${v.network}`, tooltip: `${v.ifname} is a port of ${v.bridge}` })};`);
  }
  if (c.error) line(2, `store ${attrs({ label: table({ title: "cluster store", rows: [c.store], warn: [`unreadable: ${c.error}`] }), color: DROP, fillcolor: "#fee2e2", class: "store" })};`);
}

/** Outside the host box: one box per other host (its VTEP, its containers on the overlays shown), and the tunnels. */
function remoteHosts(c: GraphCluster, colour: Map<string, string>, line: Line): void {
  for (const h of c.hosts) {
    const status = h.alive ? "Ready" : "Down";
    line(1, `subgraph ${q(`cluster_remote_${h.host}`)} {`);
    line(2, `graph ${attrs({ label: `<<B>host ${esc(h.host)}</B>: VTEP ${esc(h.vtep)}, ${status}>`, style: h.alive ? "rounded,filled" : "rounded,dashed,filled", fillcolor: h.alive ? "#f9fafb" : "#f3f4f6", color: h.alive ? NEUTRAL : DROP, fontcolor: h.alive ? "#111827" : DROP, labeljust: "l", class: `remote-host ${status.toLowerCase()}` })};`);
    line(2, `${q(vtepId(h))} ${attrs({ label: table({ title: `VTEP ${h.vtep}`, rows: [`UDP ${VXLAN_PORT}`], warn: h.alive ? [] : ["host Down"] }), color: "#374151", fillcolor: "#e5e7eb", class: "vtep", tooltip: `host ${h.host}'s underlay address, where its tunnels end` })};`);
    for (const r of h.containers) {
      const col = colour.get(r.network) ?? NEUTRAL;
      line(2, `${q(remoteId(h, r))} ${attrs({ label: table({ title: r.container, rows: [`${r.ip} on ${r.network}`, r.mac] }), color: col, fillcolor: tint(col), class: `container remote network-${r.network}`, tooltip: `container ${r.container} on host ${h.host} (its claim in the store)` })};`);
      line(2, `${q(vtepId(h))} -> ${q(remoteId(h, r))} ${attrs({ color: col, class: `deliver network-${r.network}`, tooltip: `${h.host} delivers ${r.mac} to ${r.container}` })};`);
    }
    line(1, "}");
  }
  for (const x of tunnels(c)) {
    const col = colour.get(x.vxlan.network) ?? NEUTRAL;
    const problems = x.broken.map((r) => `${r.container}: ${entryProblem(x.host, r, x.vxlan.ifname)}`);
    const label = problems.length ? `× ${problems.join("; ")}` : `VXLAN VNI ${x.vxlan.vni} → ${x.host.vtep}:${VXLAN_PORT}`;
    const tooltip = `tunnel from ${x.vxlan.ifname} to host ${x.host.host} (VTEP ${x.host.vtep}): ${x.containers.map((r) => r.container).join(", ")}`;
    line(1, `${q(vxId(x.vxlan))} -> ${q(vtepId(x.host))} ${attrs({ style: problems.length ? "dashed" : "bold", color: problems.length ? DROP : col, fontcolor: problems.length ? DROP : col, penwidth: 2.2, label, class: `tunnel${problems.length ? " broken" : ""} network-${x.vxlan.network}`, tooltip })};`);
  }
}

function dnatNode(p: GraphPort): Record<string, string> {
  const where = p.hostIp === "0.0.0.0" ? `every host address :${p.hostPort}` : `${p.hostIp}:${p.hostPort}`;
  const label = p.dnatTo
    ? table({ title: `DNAT ${p.proto}`, rows: [where, `→ ${p.dnatTo}`] })
    : table({ title: `DNAT ${p.proto}`, rows: [where, `→ ${p.container}:${p.containerPort}`], warn: ["rule MISSING in CTNET-DNAT"] });
  return { label, color: p.dnatTo ? PORT : DROP, fillcolor: "#ffffff", class: "dnat", tooltip: `published port ${p.hostIp}:${p.hostPort} → ${p.containerPort}/${p.proto} of ${p.container}` };
}

/** SVG through Graphviz compiled to WebAssembly (@viz-js/viz): real layout, no binary to install. */
export async function renderSvg(t: Topology): Promise<string> {
  const mod: any = await import("@viz-js/viz");
  const viz = await (mod.instance ?? mod.default.instance)();
  return viz.renderString(renderDot(t), { format: "svg" });
}
