// Docker's daemon settings for networking (issue 15, item 8), from a file in daemon.json's format
// (https://docs.docker.com/reference/cli/dockerd/#daemon-configuration-file).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { emptyState } from "../../src/model.js";
import { chooseSubnet, parseCidr } from "../../src/ipam.js";
import { daemonConfig, defaultDns, parseDaemonConfig } from "../../src/store/daemonconfig.js";
import { inspectNetwork, planNetCreate } from "../../src/commands/networks.js";

const F = "/etc/ctnet/daemon.json";
const parse = (json: object | string) => parseDaemonConfig(typeof json === "string" ? json : JSON.stringify(json), F);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-daemonjson-"));
let n = 0;
/** A daemon.json of its own path (the settings are read once per path) for the commands that follow. */
function useConfig(json: object): string {
  const file = path.join(dir, `daemon-${n++}.json`);
  fs.writeFileSync(file, JSON.stringify(json));
  process.env.CTNET_DAEMON_CONFIG = file;
  return file;
}
const saved = process.env.CTNET_DAEMON_CONFIG;
afterEach(() => {
  if (saved === undefined) delete process.env.CTNET_DAEMON_CONFIG;
  else process.env.CTNET_DAEMON_CONFIG = saved;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("reading daemon.json", () => {
  it("a missing file is Docker's defaults", () => {
    process.env.CTNET_DAEMON_CONFIG = path.join(dir, "missing.json");
    expect(daemonConfig()).toMatchObject({ bridgeOptions: {}, ipForward: true, dns: [] });
    expect(daemonConfig().bip).toBeUndefined();
    expect(daemonConfig().pools).toBeUndefined();
  });

  it("reads the networking keys and ignores Docker's others", () => {
    const cfg = parse({
      bip: "10.66.0.5/24", "default-address-pools": [{ base: "10.200.0.0/16", size: 24 }], mtu: 1400, icc: false,
      "ip-masq": false, ip: "127.0.0.1", "ip-forward": false, iptables: true, dns: ["1.1.1.1", "9.9.9.9"], "storage-driver": "overlay2",
    });
    expect(cfg.bip).toEqual({ gateway: "10.66.0.5", subnet: parseCidr("10.66.0.0/24") });
    expect(cfg.pools).toEqual([{ base: parseCidr("10.200.0.0/16"), size: 24 }]);
    expect(cfg.bridgeOptions).toEqual({ mtu: "1400", icc: "false", masquerade: "false", host_ip: "127.0.0.1" });
    expect(cfg.ipForward).toBe(false);
    expect(cfg.dns).toEqual(["1.1.1.1", "9.9.9.9"]);
  });

  it("fixed-cidr is where the default bridge's containers get addresses within bip, or its subnet without bip", () => {
    // moby daemon/daemon_unix.go getDefaultBridgeIPAMConf, with the docs' example
    expect(parse({ bip: "192.168.1.1/24", "fixed-cidr": "192.168.1.0/25" })).toMatchObject({ bip: { gateway: "192.168.1.1", subnet: parseCidr("192.168.1.0/24") }, fixedCidr: parseCidr("192.168.1.0/25") });
    const alone = parse({ "fixed-cidr": "10.70.0.0/24" });
    expect(alone.bip).toEqual({ gateway: "10.70.0.1", subnet: parseCidr("10.70.0.0/24") });
    expect(alone.fixedCidr).toBeUndefined();
    useConfig({ bip: "10.66.0.1/24", "fixed-cidr": "10.66.0.128/25" });
    expect(inspectNetwork(emptyState(), "bridge")).toMatchObject({ IPAM: { Config: [{ Subnet: "10.66.0.0/24", IPRange: "10.66.0.128/25", Gateway: "10.66.0.1" }] } });
  });

  it("exposes dns as the default for run --dns", () => {
    useConfig({ dns: ["192.0.2.53"] });
    expect(defaultDns()).toEqual(["192.0.2.53"]);
  });

  it.each<[object | string, string]>([
    ['{"bip": "10.0.0.1/24",', `${F}: invalid JSON: `],
    ["[]", `${F}: expected a JSON object`],
    [{ bip: "10.66.0.0/24" }, `${F}: bip: address 10.66.0.0 is not a usable host address of 10.66.0.0/24`],
    [{ bip: "10.66.0.1" }, `${F}: bip: expected an address with a prefix length such as "192.168.1.1/24", not "10.66.0.1"`],
    [{ bip: "127.0.0.1/8" }, `${F}: bip: subnet 127.0.0.0/8 overlaps 127.0.0.0/8, which is loopback`],
    [{ "default-address-pools": [{ base: "10.200.0.0/16", size: 8 }] }, `${F}: default-address-pools[0]: size 8 must be between the base's prefix length 16 and 30`],
    [{ "default-address-pools": [{ base: "10.200.0.0/16" }] }, `${F}: default-address-pools[0]: expected {"base": CIDR, "size": prefix length}`],
    [{ "default-address-pools": [] }, `${F}: default-address-pools: expected a list`],
    [{ mtu: "1400" }, `${F}: mtu: expected a number, not "1400"`],
    [{ mtu: 9 }, `${F}: mtu: invalid mtu "9": must be 576..65535`],
    [{ icc: "false" }, `${F}: icc: expected true or false, not "false"`],
    [{ ip: "any" }, `${F}: ip: invalid address "any": not an IPv4 address`],
    [{ iptables: false }, `${F}: iptables: false is not supported: ctnet's isolation, NAT and published ports are iptables rules`],
    [{ ipv6: true }, `${F}: ipv6: true is not supported`],
    [{ bip: "10.66.0.1/24", "fixed-cidr": "10.67.0.0/25" }, `${F}: fixed-cidr: 10.67.0.0/25 is not inside bip's subnet 10.66.0.0/24`],
    [{ "fixed-cidr": "10.66.0.1/25" }, `${F}: fixed-cidr: invalid fixed-cidr 10.66.0.1/25: host bits are set`],
    [{ bridge: "br0" }, `${F}: bridge: not supported`],
    [{ dns: "1.1.1.1" }, `${F}: dns: expected a list of addresses`],
    [{ dns: ["one"] }, `${F}: dns[0]: invalid address "one": not an IPv4 address`],
  ])("refuses %j in one line naming the file and the key", (json, message) => {
    let err: unknown;
    try {
      parse(json);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message.startsWith(message)).toBe(true);
    expect((err as Error).message).not.toContain("\n");
  });
});

describe("what the settings change", () => {
  it("default-address-pools: subnets cut from the pools in order; the default bridge takes the first", () => {
    const pools = [{ base: parseCidr("10.200.0.0/23"), size: 24 }, { base: parseCidr("10.201.0.0/16"), size: 20 }];
    expect(chooseSubnet([], false, pools).text).toBe("10.200.0.0/24");
    expect(chooseSubnet([], true, pools).text).toBe("10.200.1.0/24");
    expect(chooseSubnet([parseCidr("10.200.1.0/24")], true, pools).text).toBe("10.201.0.0/20");
  });

  it("user networks take the pools' subnets, past bip's", () => {
    useConfig({ bip: "10.66.0.1/24", "default-address-pools": [{ base: "10.66.0.0/16", size: 24 }] });
    const s = emptyState();
    planNetCreate(s, "n1", {});
    expect(s.networks.n1.subnet).toBe("10.66.1.0/24");
    // Docker's default bridge holds bip from the daemon's start: a user network cannot take it
    const file = process.env.CTNET_DAEMON_CONFIG;
    expect(() => planNetCreate(s, "n2", { subnet: "10.66.0.128/25" })).toThrow(`subnet 10.66.0.128/25 overlaps the default bridge's subnet (bip) in ${file}`);
  });

  it("net inspect bridge shows bip, mtu, icc, ip-masq and ip before the first container, as Docker's default bridge", () => {
    useConfig({ bip: "10.66.0.5/24", mtu: 1400, icc: false, "ip-masq": false, ip: "127.0.0.1" });
    const doc = inspectNetwork(emptyState(), "bridge") as any;
    expect(doc.IPAM.Config).toEqual([{ Subnet: "10.66.0.0/24", Gateway: "10.66.0.5" }]);
    expect(doc.Options).toEqual({
      "com.docker.network.bridge.default_bridge": "true",
      "com.docker.network.bridge.enable_icc": "false",
      "com.docker.network.bridge.enable_ip_masquerade": "false",
      "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
      "com.docker.network.bridge.name": "ctnet0",
      "com.docker.network.driver.mtu": "1400",
    });
  });
});
