// net create's Docker surface (issue 15, item 7): the bridge driver's -o options under Docker's names,
// the IPAM flags as docker/cli consolidates them, and the Options and IPAM that `network inspect` prints.
// Planners run against an in-memory state; they read the host's routes and links and change nothing.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { emptyState, type State } from "../../src/model.js";
import { inspectNetwork, newEndpoint, normaliseOptions, planNetCreate, type CreateNetworkOptions } from "../../src/commands/networks.js";


const saved = process.env.CTNET_DAEMON_CONFIG;
// Docker's defaults, whatever /etc/ctnet/daemon.json this machine has
beforeEach(() => void (process.env.CTNET_DAEMON_CONFIG = "/nonexistent/ctnet-test-daemon.json"));
afterEach(() => {
  if (saved === undefined) delete process.env.CTNET_DAEMON_CONFIG;
  else process.env.CTNET_DAEMON_CONFIG = saved;
});

function fixture(): State {
  const s = emptyState();
  s.networks.red = {
    name: "red", id: "a".repeat(64), created: "2024-01-01T00:00:00.000Z", driver: "bridge", bridge: "ctbr-red",
    subnet: "10.9.0.0/24", gateway: "10.9.0.1", internal: false, options: {}, labels: {},
  };
  return s;
}

const create = (name: string, o: CreateNetworkOptions, state = fixture()) => {
  planNetCreate(state, name, o);
  return state.networks[name];
};

function refusal(o: CreateNetworkOptions): string {
  const state = fixture();
  const before = JSON.stringify(state);
  let err: unknown;
  try {
    planNetCreate(state, "n1", o);
  } catch (e) {
    err = e;
  }
  expect(err, "expected a UsageError").toBeInstanceOf(UsageError);
  expect(JSON.stringify(state)).toBe(before);
  const message = (err as Error).message;
  expect(message).not.toContain("\n");
  return message;
}

const inspect = (state: State, name: string) => inspectNetwork(state, name) as any;

describe("-o under Docker's names (moby drivers/bridge/labels.go, bridge_linux.go fromLabels)", () => {
  it("takes the long names and ctnet's short ones, booleans as Go's strconv.ParseBool reads them", () => {
    expect(normaliseOptions({
      "com.docker.network.bridge.enable_icc": "0", "com.docker.network.bridge.enable_ip_masquerade": "F",
      "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1", "com.docker.network.driver.mtu": "1400",
    })).toEqual({ icc: "false", masquerade: "false", host_ip: "127.0.0.1", mtu: "1400" });
    expect(normaliseOptions({ icc: "True", masquerade: "1", mtu: "9000" })).toEqual({ icc: "true", masquerade: "true", mtu: "9000" });
  });

  it.each<[Record<string, string>, string | RegExp]>([
    [{ "com.docker.network.bridge.enable_icc": "yes" }, 'invalid value for icc: "yes" (true or false)'],
    [{ "com.docker.network.bridge.host_binding_ipv4": "localhost" }, 'invalid com.docker.network.bridge.host_binding_ipv4 "localhost": not an IPv4 address'],
    [{ "com.docker.network.driver.mtu": "-1" }, 'invalid mtu "-1": must be 576..65535'],
    [{ "com.docker.network.bridge.inhibit_ipv4": "true" }, "network option com.docker.network.bridge.inhibit_ipv4 is not supported: the bridge always holds the gateway address"],
    [{ "com.docker.network.bridge.default_bridge": "true" }, /not supported: only the predefined network bridge/],
    [{ color: "blue" }, /^unknown network option "color": known are com\.docker\.network\.bridge\.name, .*com\.docker\.network\.driver\.mtu \(or icc, masquerade, mtu\)$/],
  ])("refuses %j", (raw, message) => {
    expect(() => normaliseOptions(raw)).toThrow(message);
  });

  it("com.docker.network.bridge.name names the bridge", () => {
    expect(create("n1", { opt: ["com.docker.network.bridge.name=br-lab0"] }).bridge).toBe("br-lab0");
    expect(create("n1", { opt: ["com.docker.network.bridge.name=abcdefghijklmno"] }).bridge).toBe("abcdefghijklmno");
  });

  it.each<[string, string | RegExp]>([
    ["abcdefghijklmnop", /invalid com\.docker\.network\.bridge\.name "abcdefghijklmnop": an interface name of 1 to 15 letters/],
    ["a/b", /invalid com\.docker\.network\.bridge\.name "a\/b"/],
    ["br%d", /invalid com\.docker\.network\.bridge\.name "br%d"/],
    ["-x", /invalid com\.docker\.network\.bridge\.name "-x"/],
    ["..", /invalid com\.docker\.network\.bridge\.name "\.\."/],
    ["a b", /invalid com\.docker\.network\.bridge\.name "a b"/],
    ["", /invalid com\.docker\.network\.bridge\.name ""/],
    ["ctnet0", /ctnet names its default bridge ctnet0/],
    ["ve-x", /and its veths ve-/],
    ["ctbr-red", "com.docker.network.bridge.name ctbr-red is the bridge of network red"],
    ["lo", "com.docker.network.bridge.name lo: an interface of that name already exists on the host"],
  ])("refuses the bridge name %j", (name, message) => {
    expect(refusal({ opt: [`com.docker.network.bridge.name=${name}`] })).toMatch(message);
  });

  it("inspect shows Options under Docker's long names; a user network always names its bridge", () => {
    const s = fixture();
    create("n1", { opt: ["icc=false", "com.docker.network.driver.mtu=1400", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1"] }, s);
    expect(inspect(s, "n1").Options).toEqual({
      "com.docker.network.bridge.enable_icc": "false",
      "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
      "com.docker.network.bridge.name": "ctbr-n1",
      "com.docker.network.driver.mtu": "1400",
    });
    // keys in Go's sorted map order, as docker prints them
    expect(Object.keys(inspect(s, "n1").Options)).toEqual(Object.keys(inspect(s, "n1").Options).sort());
  });
});

describe("IPAM flags (docker/cli network/create.go createIPAMConfig)", () => {
  it.each<[CreateNetworkOptions, string]>([
    [{ subnet: ["10.8.0.0/24"], gateway: ["10.8.0.1", "10.8.0.2"] }, "cannot configure multiple gateways (10.8.0.1, 10.8.0.2) for the same subnet (10.8.0.0/24)"],
    [{ subnet: ["10.8.0.0/24"], ipRange: ["10.8.0.0/28", "10.8.0.16/28"] }, "cannot configure multiple ranges (10.8.0.0/28, 10.8.0.16/28) on the same subnet (10.8.0.0/24)"],
    [{ subnet: ["10.8.0.0/24", "10.7.0.0/24"] }, "bridge networks take one subnet: 10.8.0.0/24, 10.7.0.0/24 (bridge driver doesn't support multiple subnets)"],
    [{ auxAddress: ["r=10.8.0.5"] }, "no matching subnet for aux-address 10.8.0.5: --aux-address needs --subnet"],
    [{ subnet: "10.8.0.0/24", auxAddress: ["r=10.7.0.5"] }, "no matching subnet for aux-address 10.7.0.5 (subnet 10.8.0.0/24)"],
    [{ subnet: "10.8.0.0/24", auxAddress: ["r=10.8.0.1"] }, "aux-address r=10.8.0.1 is already the gateway"],
    [{ subnet: "10.8.0.0/24", auxAddress: ["r=10.8.0.5", "s=10.8.0.5"] }, "aux-address s=10.8.0.5 is already aux-address r"],
    [{ subnet: "10.8.0.0/24", auxAddress: ["r=10.8.0.255"] }, "aux-address r 10.8.0.255 is not a usable host address of 10.8.0.0/24"],
    [{ subnet: "10.8.0.0/24", auxAddress: ["r=router"] }, 'invalid --aux-address r "router": not an IPv4 address'],
    [{ subnet: "10.8.0.0/24", auxAddress: ["router"] }, 'invalid --aux-address "router": expected KEY=VALUE'],
  ])("refuses %j", (o, message) => {
    expect(refusal(o)).toBe(message);
  });

  it("keeps aux addresses out of allocation and off --ip, and shows them as AuxiliaryAddresses", () => {
    const s = fixture();
    const net = create("n1", { subnet: ["10.8.0.0/24"], ipRange: "10.8.0.0/29", auxAddress: ["router=10.8.0.2", "printer=10.8.0.3"] }, s);
    const ctr = { name: "c1", endpoints: [] } as any;
    expect(newEndpoint(s, ctr, net, {}).ip).toBe("10.8.0.4");
    expect(() => newEndpoint(s, ctr, net, { ip: "10.8.0.3" })).toThrow("--ip 10.8.0.3 is network n1's aux-address printer");
    // Docker's IPAMConfig field order: Subnet, IPRange, Gateway, AuxiliaryAddresses
    expect(JSON.stringify(inspect(s, "n1").IPAM.Config)).toBe(
      '[{"Subnet":"10.8.0.0/24","IPRange":"10.8.0.0/29","Gateway":"10.8.0.1","AuxiliaryAddresses":{"router":"10.8.0.2","printer":"10.8.0.3"}}]',
    );
  });
});

describe("swarm and config-only flags", () => {
  it.each<[CreateNetworkOptions, RegExp]>([
    [{ configOnly: true }, /^--config-only is not supported: ctnet has no configuration-only networks/],
    [{ configFrom: "base" }, /^--config-from is not supported/],
    [{ scope: "swarm" }, /^--scope swarm is not supported: ctnet's networks are local to this host$/],
    [{ ingress: true }, /^--ingress is not supported/],
  ])("refuses %j", (o, message) => {
    expect(refusal(o)).toMatch(message);
  });

  it("accepts --attachable and --scope local; inspect shows Attachable", () => {
    const s = fixture();
    create("n1", { attachable: true, scope: "local" }, s);
    expect(inspect(s, "n1").Attachable).toBe(true);
    expect(inspect(s, "red").Attachable).toBe(false);
  });
});
