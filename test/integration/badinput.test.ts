// Bad input, on the real CLI: each case gets one line naming what is wrong, exit 2 (1 for an operation
// that failed), and changes nothing: the state file is byte for byte the same and the host holds no
// new or missing object of this test's networks and containers.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CTNET, Lab, sh, uniq, type Result, scopedSnapshot } from "./harness.js";

const lab = new Lab();
const other = new Lab();
const oct = () => 200 + Math.floor(Math.random() * 50);
const net = uniq("bi");
const otherNet = uniq("bo");
const subnet = `10.247.${oct()}.0/24`;
const otherSubnet = `10.248.${oct()}.0/24`;
const prefix3 = subnet.split(".").slice(0, 3).join(".");
const c1 = uniq("bc");
const c2 = uniq("bd");
const fresh = uniq("bn");
const tokens = [net, otherNet, c1, c2, fresh, prefix3, otherSubnet.split(".").slice(0, 3).join(".")];

beforeAll(() => {
  lab.ok("net", "create", "--subnet", subnet, net);
  other.ok("net", "create", "--subnet", otherSubnet, otherNet);
  lab.ok("run", "-d", "--net", net, "--name", c1, "--ip", `${prefix3}.10`);
  lab.ok("run", "-d", "--net", net, "--name", c2);
  lab.ok("stop", c2);
});
afterAll(() => {
  lab.cleanup();
  other.cleanup();
  expect(scopedSnapshot(tokens)).toEqual({ links: [], netns: [], etcNetns: [], iptables: [] });
});

/** Runs a refused command and checks the three promises: exit code, one-line message, nothing changed. */
function expectRefused(run: () => Result, code: number, message: string | RegExp): void {
  const stateBefore = fs.readFileSync(path.join(lab.stateDir, "state.json"), "utf8");
  const hostBefore = scopedSnapshot(tokens);
  const r = run();
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^ctnet: /);
  if (typeof message === "string") expect(lines[0]).toBe(`ctnet: ${message}`);
  else expect(lines[0]).toMatch(message);
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe("");
  expect(fs.readFileSync(path.join(lab.stateDir, "state.json"), "utf8")).toBe(stateBefore);
  expect(scopedSnapshot(tokens)).toEqual(hostBefore);
}

const refused = (args: string[], message: string | RegExp, code = 2) => expectRefused(() => lab.run(...args), code, message);

describe("unknown objects", () => {
  it("an unknown network", () => {
    refused(["run", "-d", "--net", "nosuchnet", "--name", fresh], "network nosuchnet not found");
    refused(["net", "rm", "nosuchnet"], "network nosuchnet not found");
    refused(["net", "inspect", "nosuchnet"], "network nosuchnet not found");
    refused(["net", "connect", "nosuchnet", c1], "network nosuchnet not found");
  });

  it("an unknown container", () => {
    for (const args of [["rm", "-f", fresh], ["stop", fresh], ["inspect", fresh], ["logs", fresh], ["exec", fresh, "true"], ["net", "connect", net, fresh], ["net", "disconnect", net, fresh]]) {
      refused(args, `no such container: ${fresh}`);
    }
  });

  // several names, one unknown: each is done or refused on its own, as in Docker (see ids.test.ts)
});

describe("names", () => {
  it("a duplicate name", () => {
    refused(["run", "-d", "--net", net, "--name", c1], `container name ${c1} is already in use`);
    refused(["net", "create", net], `network with name ${net} already exists`);
    refused(["net", "create", "bridge"], "network name bridge is predefined and cannot be created");
  });

  it.each(["a b", "-x", ".x", "a/b", "x".repeat(65), "ä"])("the name %j", (name) => {
    const rule = `must match [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}`;
    refused(["net", "create", "--", name], `invalid network name ${JSON.stringify(name)}: ${rule}`);
    refused(["run", "-d", "--name", name], `invalid container name ${JSON.stringify(name)}: ${rule}`);
  });
});

describe("subnets and addresses", () => {
  it.each(["10.249.1/24", "10.249.1.0/33", "10.249.1.0", "10.249.1.300/24", "banana"])("the malformed CIDR %j", (cidr) => {
    refused(["net", "create", "--subnet", cidr, fresh], `invalid subnet ${JSON.stringify(cidr)}: expected a CIDR like 10.10.0.0/24`);
  });

  it("host bits set", () => {
    refused(["net", "create", "--subnet", `${prefix3}.7/24`, fresh], `invalid subnet ${prefix3}.7/24: host bits are set (did you mean ${subnet}?)`);
  });

  it("a subnet overlapping another ctnet network", () => {
    refused(["net", "create", "--subnet", `${prefix3}.128/25`, fresh], `subnet ${prefix3}.128/25 overlaps ctnet network ${net}`);
  });

  it("a subnet overlapping a route of the host", () => {
    // the other lab's bridge is, for this lab, just a route on the host
    const [o1, o2, o3] = otherSubnet.split(".");
    refused(["net", "create", "--subnet", `${o1}.${o2}.${o3}.64/26`, fresh], new RegExp(`^ctnet: subnet ${o1}\\.${o2}\\.${o3}\\.64/26 overlaps (route|address) .*ctbr-${otherNet}`));
  });

  it.each([
    ["127.0.0.0/16", "127.0.0.0/8, which is loopback"],
    ["224.1.0.0/16", "224.0.0.0/4, which is multicast"],
    ["0.0.0.0/8", "0.0.0.0/8, which is the 'this network' range"],
  ])("the reserved range %s", (cidr, what) => {
    refused(["net", "create", "--subnet", cidr, fresh], `subnet ${cidr} overlaps ${what}`);
  });

  it.each([".0", ".255", "x"])("a gateway that is not a usable host address (%s; x: outside the subnet)", (last) => {
    const gw = last === "x" ? "10.250.8.1" : `10.250.9${last}`;
    refused(["net", "create", "--subnet", "10.250.9.0/24", "--gateway", gw, fresh], `gateway ${gw} is not a usable host address of 10.250.9.0/24`);
  });

  it("--ip outside the subnet, already taken, the gateway, or not an address", () => {
    refused(["run", "-d", "--net", net, "--ip", "10.251.0.5", "--name", fresh], `--ip 10.251.0.5 is outside network ${net}'s subnet ${subnet}`);
    refused(["run", "-d", "--net", net, "--ip", `${prefix3}.10`, "--name", fresh], `--ip ${prefix3}.10 is already in use on network ${net}`);
    refused(["run", "-d", "--net", net, "--ip", `${prefix3}.1`, "--name", fresh], `--ip ${prefix3}.1 is the gateway of network ${net}`);
    refused(["run", "-d", "--net", net, "--ip", "not-an-ip", "--name", fresh], `invalid --ip "not-an-ip": not an IPv4 address`);
    refused(["net", "connect", "--ip", `${prefix3}.10`, net, c2], new RegExp(`is already connected|already in use`));
  });

  it("an unknown driver", () => {
    refused(["net", "create", "-d", "foo", fresh], /unknown network driver "foo": known are bridge, macvlan, ipvlan/);
  });
});

/**
 * The built CLI copied where user nobody can run it: the checkout may sit under a directory only root
 * may enter (/root). The bundle in dist/ needs nothing from node_modules.
 */
function cliForEveryone(): { cli: string; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-cli-"));
  fs.chmodSync(dir, 0o755);
  const root = path.dirname(path.dirname(CTNET));
  for (const part of ["package.json", "bin", "dist"]) fs.cpSync(path.join(root, part), path.join(dir, part), { recursive: true });
  return { cli: path.join(dir, "bin", "ctnet"), dir };
}

describe("the environment", () => {
  const asNobody = (cli: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
    sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", cli, ...args], undefined, { ...process.env, CTNET_STATE_DIR: lab.stateDir, NO_COLOR: "1", ...env });

  it("not root: refused, but --dry-run still prints the plan", () => {
    const { cli, dir } = cliForEveryone();
    try {
      expectRefused(() => asNobody(cli, ["net", "create", "--subnet", "10.250.10.0/24", fresh]), 2, "ctnet must run as root to change the network (try sudo, or --dry-run to see the plan)");
      expectRefused(() => asNobody(cli, ["rm", "-f", c1]), 2, /must run as root/);
      const unborn = path.join(os.tmpdir(), uniq("ctnet-nobody-"));
      const dry = asNobody(cli, ["net", "create", "--dry-run", "--subnet", "10.250.10.0/24", fresh], { CTNET_STATE_DIR: unborn });
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toContain(`ip link add ctbr-${fresh} address 02:42:0a:fa:0a:01 type bridge`);
      expect(fs.existsSync(unborn)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  /** A PATH holding node and the given programs only. */
  function pathWith(...programs: string[]): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-path-"));
    fs.symlinkSync(process.execPath, path.join(dir, "node"));
    for (const p of programs) fs.symlinkSync(sh(["sh", "-c", `command -v ${p}`]).stdout.trim(), path.join(dir, p));
    return dir;
  }
  const withPath = (dir: string, ...args: string[]) => sh([CTNET, ...args], undefined, { ...process.env, PATH: dir, CTNET_STATE_DIR: lab.stateDir, NO_COLOR: "1" });

  it("ip or iptables missing: the message names the Debian package", () => {
    const noIp = pathWith();
    const noIptables = pathWith("ip");
    try {
      expectRefused(() => withPath(noIp, "net", "create", "--subnet", "10.250.11.0/24", fresh), 2, "ip not found: install it with 'apt-get install iproute2'");
      expectRefused(() => withPath(noIp, "rm", "-f", c1), 2, "ip not found: install it with 'apt-get install iproute2'");
      expectRefused(() => withPath(noIptables, "net", "create", "--subnet", "10.250.11.0/24", fresh), 2, "iptables not found: install it with 'apt-get install iptables'");
    } finally {
      fs.rmSync(noIp, { recursive: true });
      fs.rmSync(noIptables, { recursive: true });
    }
  });

  it("a corrupt state file: the operation fails (exit 1) and the file is left for the user to restore", () => {
    const broken = new Lab();
    fs.writeFileSync(path.join(broken.stateDir, "state.json"), "{ not json");
    try {
      const r = broken.run("net", "create", "--subnet", "10.250.12.0/24", fresh);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/^ctnet: state file .*state\.json is corrupt .*state\.json\.bak/);
      expect(fs.readFileSync(path.join(broken.stateDir, "state.json"), "utf8")).toBe("{ not json");
      expect(scopedSnapshot([fresh])).toEqual({ links: [], netns: [], etcNetns: [], iptables: [] });
    } finally {
      fs.rmSync(broken.stateDir, { recursive: true, force: true });
    }
  });
});
