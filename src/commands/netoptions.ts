// `net create`'s Docker surface: the bridge driver's -o options under Docker's names (moby
// daemon/libnetwork/drivers/bridge/labels.go, bridge_linux.go fromLabels), the IPAM flags as docker/cli
// consolidates them (cli/command/network/create.go createIPAMConfig), and the Options `network inspect`
// prints. Records keep ctnet's short keys (icc, masquerade, host_ip, mtu): state files written before
// the long names existed read the same.
import { UsageError } from "../errors.js";
import { addrText, addrValue, checkHostAddress, contains, parseAddress, type Cidr } from "../ipam.js";
import { DEFAULT_BRIDGE_IFNAME, DEFAULT_BRIDGE_NETWORK, IFNAMSIZ } from "../naming.js";
import { MTU_KEYS, checkMtu } from "../drivers/endpoints.js";
import type { PlanContext } from "../drivers/driver.js";
import type { NetworkRecord, State } from "../model.js";

const BRIDGE_NAME = "com.docker.network.bridge.name";
const DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge";

/** Options of Docker's bridge driver that ctnet has nothing for, with why. */
const UNSUPPORTED: Record<string, string> = {
  "com.docker.network.bridge.inhibit_ipv4": "the bridge always holds the gateway address",
  "com.docker.network.bridge.gateway_mode_ipv4": "ctnet's networks are always NATed",
  "com.docker.network.bridge.gateway_mode_ipv6": "ctnet's networks are IPv4 only",
  "com.docker.network.bridge.trusted_host_interfaces": "published ports answer on every host interface",
  "com.docker.network.container_iface_prefix": "container interfaces are always eth0, eth1, …",
  "com.docker.network.enable_ipv6": "ctnet's networks are IPv4 only",
  "com.docker.network.enable_ipv4": "ctnet's networks are always IPv4",
  [DEFAULT_BRIDGE]: "only the predefined network bridge is the default bridge",
};

/** Docker's name of each option a record keeps under a short key, as `network inspect` prints it. */
const LONG_NAMES: Record<string, string> = {
  icc: "com.docker.network.bridge.enable_icc",
  masquerade: "com.docker.network.bridge.enable_ip_masquerade",
  host_ip: "com.docker.network.bridge.host_binding_ipv4",
  mtu: "com.docker.network.driver.mtu",
};

/**
 * The bridge driver's -o keys, Docker's long names and ctnet's first short ones, each to the key a record
 * keeps. Docker's options ctnet has nothing for are keys too, so that they are refused with the reason.
 */
export const BRIDGE_OPTION_KEYS: Readonly<Record<string, string>> = {
  [BRIDGE_NAME]: "name",
  icc: "icc", [LONG_NAMES.icc]: "icc",
  masquerade: "masquerade", [LONG_NAMES.masquerade]: "masquerade",
  [LONG_NAMES.host_ip]: "host_ip",
  ...MTU_KEYS,
  ...Object.fromEntries(Object.keys(UNSUPPORTED).map((k) => [k, k])),
};

export const BRIDGE_OPTIONS_HELP = `${[BRIDGE_NAME, ...Object.values(LONG_NAMES)].join(", ")} (or icc, masquerade, mtu)`;

/** What Docker's default bridge shows for the options daemon.json leaves at their defaults */
const DEFAULT_BRIDGE_VALUES: Record<string, string> = { icc: "true", masquerade: "true", host_ip: "0.0.0.0", mtu: "1500" };

/** Go's strconv.ParseBool, which Docker uses for every boolean option */
const GO_BOOLS: Record<string, "true" | "false"> = {
  1: "true", t: "true", T: "true", TRUE: "true", true: "true", True: "true",
  0: "false", f: "false", F: "false", FALSE: "false", false: "false", False: "false",
};

/** Checks one bridge option (by its record key) and returns it as the record keeps it. */
export function bridgeOption(key: string, value: string): string {
  if (UNSUPPORTED[key]) throw new UsageError(`network option ${key} is not supported: ${UNSUPPORTED[key]}`);
  switch (key) {
    case "icc":
    case "masquerade": {
      const b = GO_BOOLS[value];
      if (!b) throw new UsageError(`invalid value for ${key}: ${JSON.stringify(value)} (true or false)`);
      return b;
    }
    case "host_ip":
      return parseAddress(value, LONG_NAMES.host_ip).correctForm();
    case "mtu":
      checkMtu(value);
      return String(Number(value));
    default:
      // the bridge's name, checked against the host when the network is validated (checkBridgeName)
      return value;
  }
}

/**
 * A bridge name the user chose (-o com.docker.network.bridge.name): a name the kernel takes for a new
 * link, that no link and no ctnet network has. Docker adopts an existing bridge of that name; ctnet
 * refuses, since it changes nothing it did not create.
 */
export function checkBridgeName(ctx: PlanContext, state: State, name: string): void {
  // within the kernel's dev_valid_name (under IFNAMSIZ with the NUL; no "/", ":" or space), and more: a
  // "%" makes the kernel pick a name of its own (br%d -> br0), a leading "-" reads as an option to ip
  if (!/^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/.test(name) || name.length > IFNAMSIZ) {
    throw new UsageError(`invalid ${BRIDGE_NAME} ${JSON.stringify(name)}: an interface name of 1 to ${IFNAMSIZ} letters, digits, "_", "." or "-", not starting with "." or "-"`);
  }
  if (name === DEFAULT_BRIDGE_IFNAME || name.startsWith("ve-")) {
    throw new UsageError(`invalid ${BRIDGE_NAME} ${JSON.stringify(name)}: ctnet names its default bridge ${DEFAULT_BRIDGE_IFNAME} and its veths ve-…`);
  }
  const clash = Object.values(state.networks).find((n) => n.bridge === name);
  if (clash) throw new UsageError(`${BRIDGE_NAME} ${name} is the bridge of network ${clash.name}`);
  if (ctx.facts.hasLink(name)) throw new UsageError(`${BRIDGE_NAME} ${name}: an interface of that name already exists on the host`);
}

export function parseKeyValues(pairs: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid ${what} ${JSON.stringify(pair)}: expected KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

// ---- IPAM flags ----------------------------------------------------------------------------------

export interface IpamFlags {
  subnet?: string | string[];
  gateway?: string | string[];
  ipRange?: string | string[];
  auxAddress?: string[];
}

const many = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * docker/cli's createIPAMConfig, for the one IPv4 subnet a bridge takes: a second --subnet is refused as
 * the bridge driver refuses it, a second --gateway or --ip-range as docker/cli does.
 */
export function singleIpamFlags(o: IpamFlags): { subnet?: string; gateway?: string; ipRange?: string } {
  const [subnets, gateways, ranges] = [many(o.subnet), many(o.gateway), many(o.ipRange)];
  for (const [flag, values] of [["--subnet", subnets], ["--gateway", gateways], ["--ip-range", ranges]] as const) {
    if (values.includes("")) throw new UsageError(`${flag} must not be empty`);
  }
  if (subnets.length > 1) throw new UsageError(`bridge networks take one subnet: ${subnets.join(", ")} (bridge driver doesn't support multiple subnets)`);
  if (gateways.length > 1) throw new UsageError(`cannot configure multiple gateways (${gateways.join(", ")}) for the same subnet${subnets[0] ? ` (${subnets[0]})` : ""}`);
  if (ranges.length > 1) throw new UsageError(`cannot configure multiple ranges (${ranges.join(", ")}) on the same subnet${subnets[0] ? ` (${subnets[0]})` : ""}`);
  return { subnet: subnets[0], gateway: gateways[0], ipRange: ranges[0] };
}

/**
 * --aux-address NAME=IP: addresses the network's driver keeps for other devices, never given to a
 * container (moby libnetwork network.go ipamAllocateVersion reserves each in the pool). Each must lie in
 * the subnet, be a host address, and not be the gateway or another name's.
 */
export function parseAuxAddresses(pairs: string[] | undefined, subnet: Cidr | null, gateway: number): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Map<number, string>([[gateway, "the gateway"]]);
  for (const [name, text] of Object.entries(parseKeyValues(pairs, "--aux-address"))) {
    const ip = Number(parseAddress(text, `--aux-address ${name}`).bigInt());
    if (!subnet || !contains(subnet, ip)) throw new UsageError(`no matching subnet for aux-address ${text}${subnet ? ` (subnet ${subnet.text})` : ": --aux-address needs --subnet"}`);
    checkHostAddress(subnet, ip, `aux-address ${name}`, text);
    const holder = seen.get(ip);
    if (holder) throw new UsageError(`aux-address ${name}=${text} is already ${holder === "the gateway" ? holder : `aux-address ${holder}`}`);
    seen.set(ip, name);
    out[name] = addrText(ip);
  }
  return out;
}

/** The auxiliary address --ip names, if any. */
export const auxNameOf = (net: NetworkRecord, ip: number) => Object.entries(net.auxAddresses ?? {}).find(([, a]) => addrValue(a) === ip)?.[0];

/** Docker flags of `network create` for swarm and config networks: refused, each with why. */
export function refuseSwarmFlags(o: { configOnly?: boolean; configFrom?: string; scope?: string; ingress?: boolean }): void {
  if (o.configOnly) throw new UsageError("--config-only is not supported: ctnet has no configuration-only networks (they serve swarm services and macvlan per node); create the network itself");
  if (o.configFrom !== undefined) throw new UsageError("--config-from is not supported: ctnet has no configuration-only networks to copy from; give --subnet, --gateway and -o here");
  if (o.scope !== undefined && o.scope !== "local") throw new UsageError(`--scope ${o.scope} is not supported: ctnet's networks are local to this host`);
  if (o.ingress) throw new UsageError("--ingress is not supported: it makes swarm's routing-mesh network, and ctnet has no swarm");
}

// ---- what inspect shows --------------------------------------------------------------------------

/**
 * `network inspect`'s Options. A network shows the options it was created with under Docker's names
 * (macvlan's and ipvlan's are Docker's already), and a bridge network always its bridge's name (Docker
 * shows that only when given; ctnet's is not derived from the id). The default bridge shows Docker's
 * full set, as moby daemon_unix.go initBridgeDriver passes it. Keys sorted, as Go prints a map.
 */
export function optionsView(net: NetworkRecord): Record<string, string> {
  const isDefault = net.name === DEFAULT_BRIDGE_NETWORK;
  const out: Record<string, string> = {};
  if (net.bridge) out[BRIDGE_NAME] = net.bridge;
  if (isDefault) out[DEFAULT_BRIDGE] = "true";
  for (const [key, value] of Object.entries({ ...(isDefault ? DEFAULT_BRIDGE_VALUES : {}), ...net.options })) out[LONG_NAMES[key] ?? key] = value;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** `network inspect`'s IPAM.Config entry, in the field order of Docker's IPAMConfig. */
export function ipamConfigView(net: NetworkRecord): object {
  const aux = net.auxAddresses && Object.keys(net.auxAddresses).length ? { AuxiliaryAddresses: net.auxAddresses } : {};
  return { Subnet: net.subnet, ...(net.ipRange ? { IPRange: net.ipRange } : {}), Gateway: net.gateway, ...aux };
}
