// `ctnet graph`: the topology as the kernel has it right now — bridges with their gateway addresses,
// veth pairs, namespaces with their interfaces and addresses — plus the published ports ctnet recorded.
// State only says which objects to look at; every link and address shown was read back from the kernel.
import { UsageError } from "./errors.js";
import { LINK_ALIAS_PREFIX } from "./naming.js";
import { run } from "./sys.js";
import type { State } from "./model.js";

export interface GraphIface {
  ifname: string;
  addrs: string[];
  mac: string;
  up: boolean;
  /** host-side veth this interface is paired with */
  peer?: string;
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
}

export interface Topology {
  bridges: GraphBridge[];
  sandboxes: GraphSandbox[];
  /** veths plugged into the bridges shown whose other end belongs to no container shown */
  strayVeths: Array<{ ifname: string; bridge: string }>;
  ports: GraphPort[];
}

const json = (argv: string[]): any[] => {
  const res = run(argv);
  return res.code === 0 && res.stdout.trim() ? JSON.parse(res.stdout) : [];
};
const v4 = (link: any): string[] => (link.addr_info ?? []).filter((a: any) => a.family === "inet").map((a: any) => `${a.local}/${a.prefixlen}`);
const isUp = (link: any) => (link.flags ?? []).includes("UP");

/** Reads the live topology of the objects `state` holds (only those of `lab` when given). */
export function readTopology(state: State, lab?: string): Topology {
  const containers = Object.values(state.containers).filter((c) => lab === undefined || c.lab === lab);
  const networks = Object.values(state.networks).filter((n) => lab === undefined || n.lab === lab || containers.some((c) => c.endpoints.some((e) => e.network === n.name)));
  if (lab !== undefined && containers.length === 0 && networks.length === 0) throw new UsageError(`lab ${lab} holds nothing`);

  // one scan of the host's links and addresses serves every bridge and veth
  const hostLinks = json(["ip", "-j", "-d", "addr", "show"]);
  const byName = new Map(hostLinks.map((l) => [l.ifname as string, l]));
  const byIndex = new Map(hostLinks.map((l) => [l.ifindex as number, l]));
  const shown = new Set(containers.map((c) => c.name));
  const elsewhere = new Set(Object.values(state.containers).filter((c) => !shown.has(c.name)).flatMap((c) => c.endpoints.map((e) => e.hostIf)));
  const bridges: GraphBridge[] = networks.map((n) => {
    const link = byName.get(n.bridge);
    const plugged = hostLinks.filter((l) => l.master === n.bridge).map((l) => l.ifname as string);
    return {
      network: n.name, ifname: n.bridge, present: !!link, up: !!link && isUp(link), addrs: link ? v4(link) : [],
      internal: n.internal, ...(n.lab ? { lab: n.lab } : {}),
      ports: plugged.filter((p) => !elsewhere.has(p)), hiddenPorts: plugged.filter((p) => elsewhere.has(p)).length,
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
        box.ifaces.push({ ifname: l.ifname, addrs: v4(l), mac: l.address, up: isUp(l), ...(peerName ? { peer: peerName } : {}) });
      }
    }
    sandboxes.push(box);
  }
  const strayVeths = bridges.flatMap((b) => b.ports.filter((p) => !peered.has(p)).map((ifname) => ({ ifname, bridge: b.ifname })));
  const ports = containers.flatMap((c) => c.ports.map((p) => ({ container: c.name, hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, proto: p.proto })));
  return { bridges, sandboxes, strayVeths, ports };
}

const bridgeOf = (t: Topology, hostIf: string) => t.bridges.find((b) => b.ports.includes(hostIf));

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

// ---- DOT and SVG -------------------------------------------------------------------------------

const q = (s: string) => `"${s.replace(/["\\]/g, "\\$&")}"`;
const label = (lines: string[]) => q(lines.join("\n")).replace(/\n/g, "\\n");

/** Graphviz source: bridges inside the host box, one node per namespace, veths as edges. */
export function renderDot(t: Topology): string {
  const lines = [
    "graph ctnet {",
    '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.9];',
    '  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled", fillcolor="#ffffff"];',
    '  edge [fontname="Helvetica", fontsize=9];',
    '  subgraph cluster_host { label="host"; style="rounded"; color="#888888";',
  ];
  if (t.ports.length || t.sandboxes.some((s) => s.mode === "host")) lines.push(`    host [label="host network\\nnamespace", shape=box3d, fillcolor="#eeeeee"];`);
  for (const b of t.bridges) {
    const flags = [b.internal ? "internal" : "", !b.present ? "MISSING" : !b.up ? "DOWN" : ""].filter(Boolean).join(", ");
    lines.push(`    ${q(`br:${b.ifname}`)} [label=${label([`network ${b.network}`, `bridge ${b.ifname}`, ...b.addrs, ...(flags ? [flags] : [])])}, fillcolor="#dbeafe"];`);
  }
  lines.push("  }");
  for (const s of t.sandboxes) {
    if (s.mode === "host") {
      lines.push(`  ${q(`ctr:${s.container}`)} [label=${label([s.container, "--net host"])}, fillcolor="#fef3c7"];`);
      lines.push(`  ${q(`ctr:${s.container}`)} -- host [style=bold, label="same namespace"];`);
      continue;
    }
    const ifaces = s.ifaces.filter((i) => i.ifname !== "lo").map((i) => `${i.ifname} ${i.addrs.join(" ")}`.trim());
    const body = !s.present ? ["namespace MISSING"] : ifaces.length ? ifaces : ["lo only"];
    lines.push(`  ${q(`ns:${s.netns}`)} [label=${label([s.container, `netns ${s.netns}`, ...body])}, fillcolor="${s.mode === "none" ? "#f3f4f6" : "#dcfce7"}"];`);
    for (const i of s.ifaces) {
      if (!i.peer) continue;
      const b = bridgeOf(t, i.peer);
      if (b) lines.push(`  ${q(`ns:${s.netns}`)} -- ${q(`br:${b.ifname}`)} [label=${q(`${i.ifname} ⇄ ${i.peer}`)}];`);
    }
    for (const member of s.sharedBy) {
      lines.push(`  ${q(`ctr:${member}`)} [label=${label([member, `--net container:${s.container}`])}, fillcolor="#fce7f3"];`);
      lines.push(`  ${q(`ctr:${member}`)} -- ${q(`ns:${s.netns}`)} [style=dashed, label="shares netns"];`);
    }
  }
  for (const v of t.strayVeths) {
    lines.push(`  ${q(`veth:${v.ifname}`)} [label=${q(v.ifname)}, shape=ellipse, fillcolor="#fee2e2"];`);
    lines.push(`  ${q(`veth:${v.ifname}`)} -- ${q(`br:${v.bridge}`)};`);
  }
  for (const p of t.ports) {
    const target = t.sandboxes.find((s) => s.container === p.container);
    if (!target?.netns) continue;
    lines.push(`  host -- ${q(`ns:${target.netns}`)} [color="#2563eb", fontcolor="#2563eb", style=dashed, label=${q(`${p.hostIp}:${p.hostPort} → ${p.containerPort}/${p.proto}`)}];`);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}

/** SVG through Graphviz compiled to WebAssembly (@viz-js/viz): real layout, no binary to install. */
export async function renderSvg(t: Topology): Promise<string> {
  const mod: any = await import("@viz-js/viz");
  const viz = await (mod.instance ?? mod.default.instance)();
  return viz.renderString(renderDot(t), { format: "svg" });
}

export const GRAPH_FORMATS = ["text", "dot", "svg", "json"] as const;

export async function graphCommand(state: State, o: { format?: string; lab?: string }): Promise<void> {
  const fmt = o.format ?? "text";
  if (!(GRAPH_FORMATS as readonly string[]).includes(fmt)) throw new UsageError(`invalid --format ${JSON.stringify(fmt)}: ${GRAPH_FORMATS.join(", ")}`);
  const t = readTopology(state, o.lab);
  if (fmt === "json") process.stdout.write(JSON.stringify(t, null, 4) + "\n");
  else if (fmt === "dot") process.stdout.write(renderDot(t));
  else if (fmt === "svg") process.stdout.write(await renderSvg(t));
  else process.stdout.write(renderText(t));
}
