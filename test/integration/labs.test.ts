// Labs on the real kernel: up applies a whole file as one plan, converges on a second run, refuses
// others' names and bad files before changing anything, down removes the lab and nothing else; graph
// reads the live topology back; trace explains reachability and its probe agrees.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { jsonLines, uniq, useLabs, scopedSnapshot } from "./harness.js";

const dirs: string[] = [];
const newLab = useLabs();
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Writes a lab file into a fresh temp dir; returns its path. */
function labFile(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-labfile-"));
  dirs.push(dir);
  const file = path.join(dir, "ctnet.yaml");
  fs.writeFileSync(file, text);
  return file;
}

const oct = () => 200 + Math.floor(Math.random() * 50);

/** A two-network lab with unique names: web on both (fixed address and alias on back), db on back only. */
function shop() {
  const n = { lab: uniq("lab"), front: uniq("lf"), back: uniq("lb"), web: uniq("w"), db: uniq("d"), side: uniq("s") };
  const [a, b] = [oct(), oct()];
  const front = `10.233.${a}`;
  const back = `10.234.${b}`;
  const text = (extra = "") => `name: ${n.lab}
networks:
  ${n.front}: {subnet: ${front}.0/24}
  ${n.back}: {subnet: ${back}.0/24, internal: true}
containers:
  ${n.web}:
    networks:
      ${n.front}: {}
      ${n.back}: {ip: ${back}.10, aliases: [www]}
    command: ["socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hi from web"]
    environment: {MODE: demo}
  ${n.db}:
    networks: [${n.back}]
${extra}`;
  return { n, front, back, text, tokens: [n.front, n.back, n.web, n.db, n.side, front, back] };
}

describe("up and down", () => {
  it("brings a lab up in one plan, converges, and takes it down again leaving the host as found", () => {
    const lab = newLab();
    const s = shop();
    const before = scopedSnapshot(s.tokens);
    const file = labFile(s.text());

    const dry = lab.ok("up", "-f", file, "--dry-run");
    expect(dry).toMatch(/^#!\/bin\/sh/);
    expect(dry).toContain(`ip netns add ${s.n.web}`);
    expect(dry).toContain(`ip link add ctbr-${s.n.front} address 02:42:`);
    expect(scopedSnapshot(s.tokens)).toEqual(before);

    const out = lab.ok("up", "-f", file);
    expect(out).toContain(`container ${s.n.web} created`);
    expect(out).toContain(`lab ${s.n.lab} is up`);
    // names as written: db reaches web by name and by its alias on the shared internal network
    expect(lab.ping(s.n.db, s.n.web)).toBe(true);
    expect(lab.ping(s.n.db, "www")).toBe(true);
    expect(lab.inNs(s.n.db, "getent", "hosts", "www").stdout).toContain(`${s.back}.10`);
    expect(lab.inNs(s.n.db, "socat", "-u", `TCP:${s.n.web}:80`, "-").stdout).toBe("hi from web\n");
    const state = lab.state();
    expect(state.containers[s.n.web].lab).toBe(s.n.lab);
    expect(state.networks[s.n.back].lab).toBe(s.n.lab);
    expect(state.containers[s.n.web].env).toEqual({ MODE: "demo" });

    // ps/net ls --lab, lab ls, JSON
    const ps = jsonLines(lab.ok("ps", "--lab", s.n.lab, "--format", "json"));
    expect(ps.map((r: any) => r.Names).sort()).toEqual([s.n.db, s.n.web].sort());
    expect(ps.every((r: any) => r.Lab === s.n.lab)).toBe(true);
    expect(lab.ok("ps", "--lab", "nosuchlab", "-q")).toBe("");
    const nets = jsonLines(lab.ok("net", "ls", "--lab", s.n.lab, "--format", "json"));
    expect(nets.map((r: any) => r.Name).sort()).toEqual([s.n.back, s.n.front].sort());
    expect(lab.ok("lab", "ls", "-q").trim()).toBe(s.n.lab);

    // a second up with the same file changes nothing
    const pidBefore = lab.state().containers[s.n.web].pid;
    expect(lab.ok("up", "-f", file, "--dry-run")).toContain("# nothing to do");
    expect(lab.ok("up", "-f", file)).toContain("is up to date");
    expect(lab.state().containers[s.n.web].pid).toBe(pidBefore);

    // converge: a new container, a changed one (command), and db dropped from the file
    const changed = s.text().replace("hi from web", "hello again").replace(new RegExp(`  ${s.n.db}:\\n    networks: \\[${s.n.back}\\]\\n`), "") +
      `  ${s.n.side}:\n    networks: [${s.n.front}]\n`;
    const file2 = labFile(changed);
    const conv = lab.ok("up", "-f", file2);
    expect(conv).toContain(`container ${s.n.db} removed`);
    expect(conv).toContain(`container ${s.n.web} recreated`);
    expect(conv).toContain(`container ${s.n.side} created`);
    expect(conv).not.toMatch(/network .* (created|removed)/);
    expect(Object.keys(lab.state().containers).sort()).toEqual([s.n.side, s.n.web].sort());
    expect(lab.inNs(s.n.side, "socat", "-u", `TCP:${s.n.web}:80`, "-").stdout).toBe("hello again\n");
    expect(lab.inNs(s.n.side, "getent", "hosts", s.n.db).code).not.toBe(0);

    const down = lab.ok("down", "-f", file2);
    expect(down).toContain(`lab ${s.n.lab} is down`);
    expect(lab.state().containers).toEqual({});
    expect(Object.values(lab.state().networks).filter((n: any) => n.lab)).toEqual([]);
    expect(scopedSnapshot(s.tokens)).toEqual(before);
  });

  it("down removes that lab's objects only; up refuses names owned elsewhere before changing anything", () => {
    const lab = newLab();
    const s = shop();
    const loose = uniq("lo");
    const otherNet = uniq("on");
    lab.ok("net", "create", "--subnet", `10.235.${oct()}.0/24`, otherNet);
    lab.ok("run", "-d", "--net", otherNet, "--name", loose);
    const file = labFile(s.text());
    lab.ok("up", "-f", file);

    // a file claiming a container that belongs to no lab: refused, pointing at the entry
    const thief = labFile(`name: ${uniq("th")}\ncontainers:\n  ${loose}: {}\n`);
    const snap = scopedSnapshot([...s.tokens, loose, otherNet]);
    const stateBefore = lab.state();
    const r = lab.run("up", "-f", thief);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${thief}:3:3: containers.${loose}: container ${loose} already exists and belongs to no lab`);
    // and one claiming a network of another lab
    const thief2 = labFile(`name: ${uniq("th")}\nnetworks:\n  ${s.n.front}: {}\n`);
    const r2 = lab.run("up", "-f", thief2);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`belongs to lab ${s.n.lab}`);
    expect(lab.state()).toEqual(stateBefore);
    expect(scopedSnapshot([...s.tokens, loose, otherNet])).toEqual(snap);

    lab.ok("down", "--lab", s.n.lab);
    const left = lab.state();
    expect(Object.keys(left.containers)).toEqual([loose]);
    expect(Object.keys(left.networks)).toEqual([otherNet]);
    expect(lab.ok("exec", loose, "true")).toBe("");
  });

  it("a failing step rolls the whole lab back", () => {
    const lab = newLab();
    const s = shop();
    const before = scopedSnapshot(s.tokens);
    // a plain file where db's hosts directory must go makes a late step fail
    fs.mkdirSync("/etc/netns", { recursive: true });
    fs.writeFileSync(`/etc/netns/${s.n.db}`, "in the way\n");
    try {
      const r = lab.run("up", "-f", labFile(s.text()));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("rolled back");
    } finally {
      fs.rmSync(`/etc/netns/${s.n.db}`);
    }
    expect(scopedSnapshot(s.tokens)).toEqual(before);
    expect(lab.run("ps", "-aq").stdout).toBe("");
  });

  it("container: mode joins a lab container started in the same plan; -v echoes each command", () => {
    const lab = newLab();
    const [name, owner, side] = [uniq("lab"), uniq("o"), uniq("s")];
    const net = uniq("cn");
    const file = labFile(`name: ${name}
networks:
  ${net}: {subnet: 10.236.${oct()}.0/24}
containers:
  ${side}: {network_mode: "container:${owner}"}
  ${owner}:
    networks: [${net}]
    command: ["socat", "TCP-LISTEN:7000,bind=127.0.0.1,fork,reuseaddr", "SYSTEM:echo shared loopback"]
`);
    const r = lab.run("up", "-v", "-f", file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`+ ip netns add ${owner}`);
    expect(lab.ok("exec", side, "socat", "-u", "TCP:127.0.0.1:7000", "-")).toBe("shared loopback\n");
    expect(lab.ok("down", "-f", file)).toContain(`container ${side} removed`);
  });
});

describe("errors that point", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["unknown key", "name: x\ncontainers:\n  c:\n    colour: red\n", /:4:5: containers\.c\.colour: unknown key/],
    ["wrong type", "name: x\ncontainers:\n  c:\n    command: {a: 1}\n", /:4:14: containers\.c\.command: expected a string, got a map/],
    ["undeclared network", "name: x\nnetworks:\n  a: {}\ncontainers:\n  c:\n    networks: [a, b]\n", /:6:19: containers\.c\.networks\[1\]: network "b" is not declared under networks/],
    ["malformed YAML", "name: x\ncontainers: {c: [\n", /:\d+:\d+: malformed YAML/],
    ["bad subnet", "name: x\nnetworks:\n  a: {subnet: 10.0.0.1/24}\n", /:3:15: networks\.a\.subnet: invalid subnet 10\.0\.0\.1\/24: host bits are set/],
    ["bad port", "name: x\ncontainers:\n  c:\n    ports: [\"80:80/sctp\"]\n", /:4:13: containers\.c\.ports\[0\]: unknown protocol/],
    ["too deep", "name: x\ncontainers: [[[[[[[[[[1]]]]]]]]]]\n", /:2:\d+: nested deeper than a lab file allows/],
    ["missing name", "containers: {}\n", /:1:1: name: missing/],
  ];
  for (const [what, text, message] of cases) {
    it(`${what}: exit 2 with FILE:LINE:COL, nothing changed`, () => {
      const lab = newLab();
      const file = labFile(text);
      const r = lab.run("up", "-f", file);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toMatch(message);
      expect(fs.existsSync(path.join(lab.stateDir, "state.json"))).toBe(false);
    });
  }

  it("refuses a file over 1 MiB without parsing it", () => {
    const lab = newLab();
    const file = labFile(`name: x\n#${"x".repeat(1024 * 1024)}\n`);
    const r = lab.run("up", "-f", file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/more than a lab file may hold/);
  });
});

describe("seeing", () => {
  it("graph draws the live topology as text, DOT and SVG with the expected nodes and edges", () => {
    const lab = newLab();
    const s = shop();
    lab.ok("up", "-f", labFile(s.text()));
    const text = lab.ok("graph", "--lab", s.n.lab);
    expect(text).toContain(`network ${s.n.back}: bridge ctbr-${s.n.back} ${s.back}.1/24`);
    expect(text).toMatch(new RegExp(`ve-${s.n.db}\\S* ⇄ ${s.n.db}: eth0 ${s.back.replace(/\./g, "\\.")}\\.\\d+/24`));
    const dot = lab.ok("graph", "--lab", s.n.lab, "--format", "dot");
    // the chain container(ethN) -> veth -> bridge, the veth being the endpoint's host side
    const chain = (c: string, net: string) => {
      const e = lab.state().containers[c].endpoints.find((x: any) => x.network === net);
      return [`ns:${c}:${e.ifname}->veth:${e.hostIf}`, `veth:${e.hostIf}->br:ctbr-${net}`];
    };
    expect(dot).toContain(`"ns:${s.n.web}":"eth0" -> "veth:`);
    const svg = lab.ok("graph", "--lab", s.n.lab, "--format", "svg");
    expect(svg).toMatch(/^<\?xml/);
    const titles = [...svg.matchAll(/<title>([^<]*)<\/title>/g)].map((m) => m[1].replace(/&#45;/g, "-").replace(/&gt;/g, ">"));
    for (const node of [`ns:${s.n.web}`, `ns:${s.n.db}`, `br:ctbr-${s.n.front}`, `br:ctbr-${s.n.back}`]) expect(titles).toContain(node);
    for (const [c, net] of [[s.n.web, s.n.front], [s.n.web, s.n.back], [s.n.db, s.n.back]]) expect(titles).toEqual(expect.arrayContaining(chain(c, net)));
    // db is on back alone: one chain out of its namespace
    expect(titles.filter((t) => t.startsWith(`ns:${s.n.db}:`))).toHaveLength(1);
    // the kernel, not the state file: a veth deleted behind ctnet's back disappears from the picture
    const veth = lab.state().containers[s.n.db].endpoints[0].hostIf;
    expect(lab.inNs(s.n.db, "ip", "link", "del", "eth0").code).toBe(0);
    const after = JSON.parse(lab.ok("graph", "--lab", s.n.lab, "--format", "json"));
    expect(after.bridges.find((b: any) => b.network === s.n.back).ports).not.toContain(veth);
  });

  it("trace explains red/blue from ubuntu4 to ubuntu2 and its probe agrees", () => {
    const lab = newLab();
    const [red, blue] = [uniq("red"), uniq("blu")];
    const [u1, u2, u3, u4] = [1, 2, 3, 4].map((i) => uniq(`u${i}`));
    lab.ok("up", "-f", labFile(`name: ${uniq("rb")}
networks:
  ${red}: {subnet: 10.237.${oct()}.0/24}
  ${blue}: {subnet: 10.238.${oct()}.0/24}
containers:
  ${u1}: {networks: [${red}]}
  ${u2}: {networks: [${red}], command: ["socat", "TCP-LISTEN:5000,fork,reuseaddr", "SYSTEM:echo u2"]}
  ${u3}: {networks: [${blue}]}
  ${u4}: {networks: [${blue}]}
`));
    const t = JSON.parse(lab.ok("trace", u4, u2, "--format", "json"));
    expect(t.nameResolves).toBe(false);
    expect(t.sharedNetworks).toEqual([]);
    expect(t.expected).toBe("unreachable");
    expect(t.rules[t.rules.length - 1]).toBe(`-A CTNET-ISOLATION-2 -o ctbr-${red} -j DROP`);
    expect(t.facts.join("\n")).toContain(`${u2} is unknown in ${u4}`);
    expect(t.probe.ok).toBe(false);
    expect(t.agrees).toBe(true);

    const byAddress = JSON.parse(lab.ok("trace", u4, t.address, "5000", "--format", "json"));
    expect(byAddress.expected).toBe("unreachable");
    expect(byAddress.rules[byAddress.rules.length - 1]).toBe(`-A CTNET-ISOLATION-2 -o ctbr-${red} -j DROP`);
    expect(byAddress.agrees).toBe(true);

    const same = JSON.parse(lab.ok("trace", u1, u2, "5000", "--format", "json"));
    expect(same.sharedNetworks).toEqual([red]);
    expect(same.expected).toBe("reachable");
    expect(same.probe.ok).toBe(true);
    expect(same.agrees).toBe(true);

    const text = lab.ok("trace", u4, u2);
    expect(text).toContain("share no network");
    expect(text).toContain(`-A CTNET-ISOLATION-2 -o ctbr-${red} -j DROP`);
    expect(text).toContain("the probe agrees");
  });
});
