// Issue 5, point 5: a corpus of hostile input. Every entry must be refused with exit 2, one line on
// stderr, nothing on stdout, in bounded time, and leave the state dir and the kernel byte-for-byte as they
// were. Runs in a private host (isolated.ts) holding a network and a container, so overlaps and name
// clashes have something to clash with, and so the whole-kernel snapshot is exact.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CTNET } from "./harness.js";
import { IsolatedHost } from "./isolated.js";

let host: IsolatedHost;
let labDir: string;
beforeAll(async () => {
  host = await IsolatedHost.start();
  host.ok("net", "create", "--subnet", "10.254.0.0/24", "hn");
  host.ok("run", "-d", "--net", "hn", "--name", "hc");
  labDir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-hostile-"));
});
afterAll(async () => {
  host?.ok("reset", "-y");
  await host?.stop();
  fs.rmSync(labDir, { recursive: true, force: true });
});

const TIME_LIMIT_MS = 15_000;

const BAD_NAMES = [
  "", " ", "a b", "a;rm -rf /", "$(id)", "`id`", "a|b", "a&b", "a>b", "a<b", "'q'", '"q"', "../x", "..", ".", "./x",
  "x/y", "/etc", "a\\b", "é", "名前", "ä-b", "a\u202eb", "a\nb", "a\tb", "x".repeat(65), "x".repeat(5000), "_x", ".x", "-x",
  "a*", "a?", "a[", "{a}", "a#b", "a%b", "a@b", "a:b", "a=b", "a,b", "~root", "a\u0001b", "a\u00a0b", "ｆｕｌｌ",
];

const BAD_CIDRS = [
  "10.0.0.0", "10.0.0.0/33", "10.0.0/24", "256.1.1.0/24", "10.0.0.0/-1", "abc", "10.0.0.0/24/24", " 10.0.0.0/24", "10.0.0.0/24 ",
  "10.0.0.1/24", "10.250.3.7/16", "10.254.0.0/24", "10.254.0.0/16", "10.254.0.128/25", "10.0.0.0/8", "192.0.2.0/24", "192.0.2.128/25",
  "10.9.9.0/31", "10.9.9.0/32", "127.0.0.0/8", "127.1.0.0/16", "169.254.0.0/16", "224.0.0.0/4", "239.1.0.0/16", "240.0.0.0/24",
  "0.0.0.0/0", "0.0.0.0/8", "fd00::/64", "::/0", "10.0.0.0/", "/24", "10.0.0.0//24", "10.0.0.0/24\n", "１0.0.0.0/24", "10.0.0.0/2a",
  "0x0a.0.0.0/8", "10.0.0.0/99999999999999999999", "10.0.0.0/24;reboot", "$(reboot)/24", "",
];

const BAD_OPTS = [
  "mtu=67", "mtu=65536", "mtu=-1", "mtu=abc", "mtu=", "mtu=1500.5", "mtu=0x5dc", "mtu= 1500", "mtu=1e3", "mtu=99999999999999999999",
  "foo=bar", "=x", "mtu", "MTU=1500", "icc=yes", "icc=", "masquerade=on", "com.docker.network.driver.mtu=10", "x=y=z", "icc=true;id",
  "com.docker.network.bridge.name=", "com.docker.network.bridge.name=a/b", "com.docker.network.bridge.name=br%d",
  "com.docker.network.bridge.name=-x", "com.docker.network.bridge.name=ctbr-hn", "com.docker.network.bridge.name=uplink0",
  "com.docker.network.bridge.name=x".padEnd(48, "x"), "com.docker.network.bridge.host_binding_ipv4=::1", "com.docker.network.bridge.inhibit_ipv4=true",
];

const BAD_PORTS = [
  "0:80", "70000:80", "80:0", "abc", "80/sctp", "80/", "1.2.3.4.5:80:80", "[::1]:80:80", "80-70", "80-90:100-105", "-1", "80:80:80:80",
  "80:", "1-65536", "256.0.0.1:80:80", "80/tcp/udp", "８０", "99999999999999999999", "",
];

/** argv lists that must each be refused. */
function corpus(): string[][] {
  const out: string[][] = [];
  for (const n of BAD_NAMES) {
    out.push(["net", "create", "--subnet", "10.99.0.0/24", "--", n]);
    out.push(["run", "-d", `--name=${n}`]);
    out.push(["run", "-d", "--net", "hn", "--network-alias", n, "--name", "okalias"]);
    out.push(["run", "-d", "--hostname", n, "--name", "okhost"]);
    out.push(["net", "connect", "hn", "--", n]);
    out.push(["run", "-d", `--net=${n}`, "--name", "oknet"]);
  }
  for (const c of BAD_CIDRS) out.push(["net", "create", `--subnet=${c}`, "okcidr"]);
  for (const o of BAD_OPTS) out.push(["net", "create", "--subnet", "10.98.0.0/24", "-o", o, "okopt"]);
  for (const p of BAD_PORTS) out.push(["run", "-d", "--net", "hn", "--name", "okport", "-p", p]);
  out.push(
    ["net", "create", "--subnet", "10.97.0.0/24", "--gateway", "10.97.0.0", "g1"],
    ["net", "create", "--subnet", "10.97.0.0/24", "--gateway", "10.97.0.255", "g2"],
    ["net", "create", "--subnet", "10.97.0.0/24", "--gateway", "10.96.0.1", "g3"],
    ["net", "create", "--subnet", "10.97.0.0/24", "--gateway", "x", "g4"],
    ["net", "create", "--gateway", "10.97.0.1", "g5"],
    ["net", "create", "--subnet", "10.97.0.0/24", "--ip-range", "10.96.0.0/25", "g6"],
    ["net", "create", "--subnet", "10.97.0.0/24", "--ip-range", "nonsense", "g7"],
    ["net", "create", "--driver", "overlay", "g8"],
    ["net", "create", "--subnet", "10.97.0.0/24", "--gateway", "10.97.0.1", "--gateway", "10.97.0.2", "g10"],
    ["net", "create", "--subnet", "10.97.0.0/24", "--aux-address", "r=10.97.0.1", "g11"],
    ["net", "create", "--subnet", "10.97.0.0/24", "--aux-address", "r=10.96.0.1", "g12"],
    ["net", "create", "--aux-address", "r=10.97.0.5", "g13"],
    ["net", "create", "--config-only", "g14"],
    ["net", "create", "--config-from", "hn", "g15"],
    ["net", "create", "--label", "=x", "g9"],
    ["net", "create", "hn"],
    ["net", "create", "bridge"],
    ["net", "create", "host"],
    ["run", "-d", "--net", "hn", "--ip", "10.254.0.1", "--name", "ip1"],
    ["run", "-d", "--net", "hn", "--ip", "10.254.0.0", "--name", "ip2"],
    ["run", "-d", "--net", "hn", "--ip", "10.254.0.255", "--name", "ip3"],
    ["run", "-d", "--net", "hn", "--ip", "10.253.0.5", "--name", "ip4"],
    ["run", "-d", "--net", "hn", "--ip", "10.254.0.300", "--name", "ip5"],
    ["run", "-d", "--net", "hn", "--ip", "10.254.0.2", "--name", "ip6"],
    ["run", "-d", "--net", "hn", "--ip", "x", "--name", "ip7"],
    ["run", "-d", "--name", "hc"],
    ["run", "-d", "--name", "e1", "-e", "=x"],
    ["run", "-d", "--name", "e2", "-e", "A B"],
    ["run", "-d", "--name", "x1", "--", "/nonexistent/binary"],
    ["run", "-d", "--name", "x2", "--", ""],
    ["run", "-d", "--net", "container:", "--name", "j1"],
    ["run", "-d", "--net", "container:../hc", "--name", "j2"],
    ["net", "rm", "bridge"],
    ["net", "rm", "../hn"],
    ["rm", "../hc"],
    ["net", "disconnect", "hn", "nosuch"],
    ["net", "ls", "--format", "xml"],
    ["--state-dir", "", "net", "ls"],
    ["net", "create", "--bogus-flag", "z1"],
    ["frobnicate"],
  );
  return out;
}

/** Lab files that must each be refused by up -f. */
function badLabs(): Record<string, string | Buffer> {
  const deep = "name: deep\nnetworks: " + "[".repeat(5000) + "]".repeat(5000) + "\n";
  const deepBlock = "name: deepb\nnetworks:\n" + Array.from({ length: 400 }, (_, i) => " ".repeat(i + 2) + `k${i}:`).join("\n") + " x\n";
  return {
    "empty.yaml": "",
    "name-number.yaml": "name: 5\n",
    "name-list.yaml": "name: [a]\n",
    "name-traversal.yaml": "name: ../etc\n",
    "name-meta.yaml": "name: 'a;b'\n",
    "networks-number.yaml": "name: l\nnetworks: 5\n",
    "containers-list.yaml": "name: l\ncontainers: [1, 2]\n",
    "unknown-top.yaml": "name: l\nbogus: 1\n",
    "unknown-net-key.yaml": "name: l\nnetworks:\n  n1:\n    colour: red\n",
    "unknown-ctr-key.yaml": "name: l\ncontainers:\n  c1:\n    privileged: true\n",
    "bad-subnet.yaml": "name: l\nnetworks:\n  n1:\n    subnet: 10.0.0.1/24\n",
    "overlap.yaml": "name: l\nnetworks:\n  n1:\n    subnet: 10.254.0.0/24\n",
    "reserved.yaml": "name: l\nnetworks:\n  n1:\n    subnet: 127.5.0.0/16\n",
    "bad-mtu.yaml": "name: l\nnetworks:\n  n1:\n    options:\n      mtu: '70000'\n",
    "unknown-network.yaml": "name: l\ncontainers:\n  c1:\n    networks: [nowhere]\n",
    "bad-ctr-name.yaml": "name: l\ncontainers:\n  '../c':\n    networks: []\n",
    "bad-port.yaml": "name: l\nnetworks:\n  n1: {}\ncontainers:\n  c1:\n    networks: [n1]\n    ports: ['70000:80']\n",
    "ports-type.yaml": "name: l\ncontainers:\n  c1:\n    ports: 80\n",
    "command-type.yaml": "name: l\ncontainers:\n  c1:\n    command: {a: 1}\n",
    "syntax.yaml": "name: l\nnetworks: [\n",
    "tabs.yaml": "name: l\nnetworks:\n\tn1: {}\n",
    "duplicate-keys.yaml": "name: l\nname: m\n",
    "deep-flow.yaml": deep,
    "deep-block.yaml": deepBlock,
    "huge.yaml": "name: huge\n# " + "x".repeat(3 * 1024 * 1024) + "\n",
    "many.yaml": "name: many\nnetworks:\n" + Array.from({ length: 5000 }, (_, i) => `  n${i}: {}`).join("\n") + "\n",
    "binary.yaml": Buffer.from([0, 1, 2, 255, 254, 0, 10, 13]),
    "anchors.yaml": "name: l\na: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n",
    "tag.yaml": "name: !!js/function 'function(){}'\n",
    "ctr-name-long.yaml": `name: l\ncontainers:\n  ${"c".repeat(100)}: {}\n`,
  };
}

interface Outcome {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function runOne(args: string[]): Promise<Outcome> {
  const started = Date.now();
  const child = host.spawnCtnet(args);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), TIME_LIMIT_MS * 2);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ args, code: code ?? 128, stdout, stderr, ms: Date.now() - started });
    }),
  );
}

async function runAll(list: string[][], parallel = 8): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < list.length) out.push(await runOne(list[next++]));
    }),
  );
  return out;
}

function expectRefused(outcomes: Outcome[]): void {
  const wrong = outcomes.filter(
    (o) => o.code !== 2 || o.stdout !== "" || o.stderr.trim() === "" || o.stderr.trimEnd().split("\n").length !== 1 || o.ms > TIME_LIMIT_MS,
  );
  expect(wrong.map((o) => `${JSON.stringify(o.args)} -> exit ${o.code} in ${o.ms} ms, stdout ${JSON.stringify(o.stdout.slice(0, 200))}, stderr ${JSON.stringify(o.stderr.slice(0, 300))}`)).toEqual([]);
}

describe("hostile input", () => {
  it("the command-line corpus: exit 2, one line, bounded time, nothing changed", async () => {
    const list = corpus();
    expect(list.length).toBeGreaterThanOrEqual(200);
    const kernel = host.kernel();
    const files = host.stateFiles();
    const outcomes = await runAll(list);
    expectRefused(outcomes);
    expect(host.stateFiles()).toEqual(files);
    expect(host.kernel()).toEqual(kernel);
  }, 600_000);

  it("malformed lab files: exit 2, one line, bounded time, nothing changed", async () => {
    const labs = badLabs();
    for (const [name, content] of Object.entries(labs)) fs.writeFileSync(path.join(labDir, name), content);
    const kernel = host.kernel();
    const files = host.stateFiles();
    const outcomes = await runAll(Object.keys(labs).map((name) => ["up", "-f", path.join(labDir, name)]));
    expectRefused(outcomes);
    expect(host.stateFiles()).toEqual(files);
    expect(host.kernel()).toEqual(kernel);
  }, 600_000);

  it("bad input on a host ctnet never touched leaves no state dir behind", async () => {
    const fresh = path.join(labDir, "never");
    const r = host.sh([CTNET, "--state-dir", fresh, "net", "create", "--subnet", "10.0.0.1/24", "n"]);
    expect(r.code).toBe(2);
    expect(fs.existsSync(fresh)).toBe(false);
  });
});
