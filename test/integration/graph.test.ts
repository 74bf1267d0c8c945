// Issue 13, part 3: `graph --format svg|png` draws what the seeds draw — the chain container(eth0) ->
// veth -> bridge -> host, each network in its colour, the uplink and NAT, published ports through their
// DNAT, the isolation between networks and icc=false / internal — read from the kernel. The pictures'
// structure is checked (nodes, edges, colours, which box holds what), not their pixels. Each test runs in
// a private host (isolated.ts), whose uplink0 192.0.2.10/24 with a default route via 192.0.2.1 is the uplink.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CTNET, ROOT } from "./harness.js";
import { IsolatedHost } from "./isolated.js";

const hosts: IsolatedHost[] = [];
async function newHost(): Promise<IsolatedHost> {
  const h = await IsolatedHost.start();
  hosts.push(h);
  return h;
}
afterEach(async () => {
  while (hosts.length) await hosts.pop()!.stop();
});

const RED = "#dc2626";
const BLUE = "#2563eb";
const DROP = "#b91c1c";

interface Shape {
  kind: "node" | "edge" | "cluster";
  title: string;
  classes: string[];
  body: string;
  /** text of the element, entities decoded */
  texts: string[];
  tooltips: string[];
  strokes: string[];
}

const decode = (s: string) => s.replace(/&#45;/g, "-").replace(/&gt;/g, ">").replace(/&lt;/g, "<").replace(/&amp;/g, "&").replace(/&#160;/g, " ").replace(/&#39;/g, "'").replace(/&quot;/g, '"');

/** Graphviz's SVG, one entry per node, edge and cluster (each a top-level <g> with its <title>). */
function shapes(svg: string): Shape[] {
  const starts = [...svg.matchAll(/<g id="(node|edge|clust)\d+" class="([^"]*)">/g)];
  return starts.map((m, n) => {
    const body = svg.slice(m.index!, starts[n + 1]?.index ?? svg.length);
    const kind = m[1] === "clust" ? "cluster" : (m[1] as "node" | "edge");
    return {
      kind, body, classes: decode(m[2]).split(" "),
      title: decode(/<title>([^<]*)<\/title>/.exec(body)![1]),
      texts: [...body.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => decode(t[1])),
      tooltips: [...body.matchAll(/xlink:title="([^"]*)"/g)].map((t) => decode(t[1])),
      strokes: [...body.matchAll(/stroke="(#[0-9a-f]{6})"/g)].map((s) => s[1]),
    };
  });
}

/** The bounding box of a shape's outline (path or polygon points). */
function box(s: Shape): { x0: number; y0: number; x1: number; y1: number } {
  const outline = /<(?:path|polygon)[^>]* (?:d|points)="([^"]*)"/.exec(s.body)![1];
  const nums = [...outline.matchAll(/-?\d+(?:\.\d+)?/g)].map((m) => Number(m[0]));
  const xs = nums.filter((_, i) => i % 2 === 0);
  const ys = nums.filter((_, i) => i % 2 === 1);
  return { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) };
}

const inside = (inner: Shape, outer: Shape) => {
  const [a, b] = [box(inner), box(outer)];
  return a.x0 >= b.x0 && a.x1 <= b.x1 && a.y0 >= b.y0 && a.y1 <= b.y1;
};

function find(all: Shape[], kind: Shape["kind"], title: string): Shape {
  const s = all.find((x) => x.kind === kind && x.title === title);
  expect(s, `${kind} ${title} in the picture (have: ${all.filter((x) => x.kind === kind).map((x) => x.title).join(", ")})`).toBeDefined();
  return s!;
}

/**
 * Every text of every node lies within its box. Text is monospace (Courier, 0.6 em per character, which
 * every monospace font shares), so its width is known without a font.
 */
function textFits(s: Shape): void {
  const b = box(s);
  const texts = [...s.body.matchAll(/<text ([^>]*)>([^<]*)<\/text>/g)];
  expect(texts.length, `${s.title} has text`).toBeGreaterThan(0);
  for (const [, attributes, content] of texts) {
    const attr = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(attributes)![1];
    const [anchor, x, size, text] = [attr("text-anchor"), Number(attr("x")), Number(attr("font-size")), decode(content)];
    const width = [...text].length * 0.6 * size;
    const left = anchor === "start" ? x : anchor === "middle" ? x - width / 2 : x - width;
    expect(left, `"${text}" starts inside ${s.title}`).toBeGreaterThanOrEqual(b.x0 - 0.5);
    expect(left + width, `"${text}" ends inside ${s.title}`).toBeLessThanOrEqual(b.x1 + 0.5);
  }
}

describe("graph --format svg", () => {
  it("draws the red/blue lab: chains, colours, isolation and uplink, all inside the right boxes", async () => {
    const h = await newHost();
    h.ok("up", "-f", path.join(ROOT, "examples/red-blue.yaml"));
    const svg = h.ok("graph", "--lab", "red-blue", "--format", "svg");
    const all = shapes(svg);
    const host = find(all, "cluster", "cluster_host");
    const members = { red: ["ubuntu1", "ubuntu2"], blue: ["ubuntu3", "ubuntu4"] };
    for (const [net, colour] of [["red", RED], ["blue", BLUE]] as const) {
      const bridge = find(all, "node", `br:ctbr-${net}`);
      expect(bridge.strokes).toContain(colour);
      expect(inside(bridge, host), `bridge of ${net} inside the host box`).toBe(true);
      expect(bridge.texts).toEqual(expect.arrayContaining([`network ${net}`, `bridge ctbr-${net}`]));
      // bridge -> host routing, masqueraded (the rule is in the kernel's nat table)
      const out = find(all, "edge", `br:ctbr-${net}->host`);
      expect(out.strokes).toContain(colour);
      expect(out.texts.join(" ")).toMatch(/MASQUERADE 172\.\d+\.0\.0\/16/);
      for (const c of members[net]) {
        const veth = `ve-${c}.${net}`;
        const container = find(all, "node", `ns:${c}`);
        expect(inside(container, host), `${c} outside the host box`).toBe(false);
        expect(container.texts.some((t) => /^eth0 172\.\d+\.0\.\d+\/16$/.test(t))).toBe(true);
        const vethNode = find(all, "node", `veth:${veth}`);
        expect(inside(vethNode, host), `${veth} inside the host box`).toBe(true);
        expect(vethNode.texts).toContain(veth);
        expect(vethNode.tooltips).toContain(`veth ${veth}: host end of ${c}'s eth0, plugged into ctbr-${net} (network ${net})`);
        // container(eth0) -> veth -> bridge, each edged in the network's colour
        expect(find(all, "edge", `ns:${c}:eth0->veth:${veth}`).strokes).toContain(colour);
        expect(find(all, "edge", `veth:${veth}->br:ctbr-${net}`).strokes).toContain(colour);
        expect(vethNode.strokes).toContain(colour);
        expect(container.strokes).toContain(colour);
      }
    }
    // the isolation: one dashed edge between the two bridges, barred both ends
    const drop = find(all, "edge", "br:ctbr-red->br:ctbr-blue");
    expect(drop.classes).toContain("isolation");
    expect(drop.body).toContain("stroke-dasharray");
    expect(drop.strokes).toContain(DROP);
    expect(drop.texts.join(" ")).toContain("DROP both ways");
    // the uplink: the default route's interface and address, then out
    const uplink = find(all, "node", "uplink:uplink0");
    expect(inside(uplink, host)).toBe(true);
    expect(uplink.texts).toContain("192.0.2.10/24");
    find(all, "edge", "host->uplink:uplink0");
    expect(find(all, "node", "outside").texts).toContain("via gateway 192.0.2.1");
    for (const s of all.filter((x) => x.kind !== "edge")) textFits(s);

    // read from the kernel: with one DROP rule gone, blue is reachable from red, and the picture says so
    h.sh(["iptables", "-w", "-D", "CTNET-ISOLATION-2", "-o", "ctbr-blue", "-j", "DROP"]);
    const after = find(shapes(h.ok("graph", "--lab", "red-blue", "--format", "svg")), "edge", "br:ctbr-red->br:ctbr-blue");
    expect(after.texts.join(" ")).toContain("DROP blue to red");
  });

  it("draws a published port from the host address through its DNAT to the container's address and port", async () => {
    const h = await newHost();
    h.ok("up", "-f", path.join(ROOT, "examples/ports.yaml"));
    const all = shapes(h.ok("graph", "--lab", "ports", "--format", "svg"));
    const dnat = find(all, "node", "dnat:tcp:0.0.0.0:8080");
    expect(inside(dnat, find(all, "cluster", "cluster_host"))).toBe(true);
    const web1 = JSON.parse(h.ok("graph", "--lab", "ports", "--format", "json")).sandboxes.find((s: any) => s.container === "web1");
    const ip = web1.ifaces.find((i: any) => i.ifname === "eth0").addrs[0].split("/")[0];
    expect(dnat.texts).toContain(`→ ${ip}:80`);
    expect(find(all, "edge", "dnat:tcp:0.0.0.0:8080->uplink:uplink0").texts).toContain("192.0.2.10:8080/tcp");
    expect(find(all, "edge", "ns:web1:eth0->dnat:tcp:0.0.0.0:8080").classes).toContain("published");
    // the DNAT rule deleted behind ctnet's back: the picture says it is missing instead of drawing the path
    h.sh(["iptables", "-w", "-t", "nat", "-D", "CTNET-DNAT", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", `${ip}:80`]);
    const broken = shapes(h.ok("graph", "--lab", "ports", "--format", "svg"));
    expect(find(broken, "node", "dnat:tcp:0.0.0.0:8080").texts).toContain("rule MISSING in CTNET-DNAT");
    expect(broken.some((s) => s.title === "ns:web1:eth0->dnat:tcp:0.0.0.0:8080")).toBe(false);
  });

  it("marks icc=false and internal networks, and draws no way out of an internal one", async () => {
    const h = await newHost();
    const file = path.join(h.stateDir, "lab.yaml");
    fs.writeFileSync(file, `name: marks
networks:
  quiet: {subnet: 10.91.0.0/24, options: {icc: "false"}}
  vault: {subnet: 10.92.0.0/24, internal: true}
containers:
  a1: {networks: [quiet]}
  v1: {networks: [vault]}
`);
    h.ok("up", "-f", file);
    const all = shapes(h.ok("graph", "--lab", "marks", "--format", "svg"));
    expect(find(all, "node", "br:ctbr-quiet").texts).toContain("icc=false: its containers cannot reach each other");
    expect(find(all, "node", "br:ctbr-vault").texts).toContain("internal: no way in or out");
    const out = find(all, "edge", "br:ctbr-vault->host");
    expect(out.classes).toContain("drop");
    expect(out.texts.join(" ")).toContain("nothing leaves 10.92.0.0/24");
    expect(find(all, "edge", "br:ctbr-quiet->br:ctbr-vault").texts.join(" ")).toContain("DROP both ways");
    // two networks without a colour name get two different colours of the palette
    const [quiet, vault] = ["quiet", "vault"].map((n) => find(all, "node", `br:ctbr-${n}`).strokes[0]);
    expect(quiet).not.toBe(vault);
  });
});

describe("graph --format png", () => {
  it("writes a PNG of the picture at twice the SVG's size (in pixels, 96 a 72-point inch)", async () => {
    const h = await newHost();
    h.ok("up", "-f", path.join(ROOT, "examples/red-blue.yaml"));
    const svg = h.ok("graph", "--lab", "red-blue", "--format", "svg");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-png-"));
    try {
      const file = path.join(dir, "red-blue.png");
      const r = h.sh(["sh", "-c", `"${CTNET}" graph --lab red-blue --format png > "${file}"`]);
      expect(r.code, r.stderr).toBe(0);
      const png = fs.readFileSync(file);
      expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
      const [w, hgt] = /<svg width="(\d+)pt" height="(\d+)pt"/.exec(svg)!.slice(1).map(Number);
      expect(Math.abs(png.readUInt32BE(16) - (2 * w * 96) / 72)).toBeLessThanOrEqual(1);
      expect(Math.abs(png.readUInt32BE(20) - (2 * hgt * 96) / 72)).toBeLessThanOrEqual(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses an unknown format with a one-line error and exit 2", async () => {
    const h = await newHost();
    const r = h.ctnet("graph", "--format", "gif");
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("png");
  });
});
