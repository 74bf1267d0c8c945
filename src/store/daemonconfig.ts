// Docker's daemon settings for networking, read from a file in daemon.json's format
// (https://docs.docker.com/reference/cli/dockerd/#daemon-configuration-file): /etc/ctnet/daemon.json,
// or $CTNET_DAEMON_CONFIG. Read once, and only by the commands that need it (creating a network, the
// default bridge, its inspect, --dns); a missing file means Docker's defaults. Keys that are not about
// networking (storage-driver, log-driver, …) belong to Docker's daemon and are ignored, so a copy of
// Docker's own file works.
import fs from "node:fs";
import { UsageError } from "../errors.js";
import { bridgeOption } from "../commands/netoptions.js";
import { addrText, checkHostAddress, checkUsableSubnet, networkOf, parseAddress, parseCidr, type AddressPool, type Cidr } from "../ipam.js";

const DEFAULT_DAEMON_CONFIG = "/etc/ctnet/daemon.json";

export interface DaemonConfig {
  file: string;
  /** bip: the default bridge's gateway address and subnet (fixed-cidr's first address and itself without bip) */
  bip?: { gateway: string; subnet: Cidr };
  /** fixed-cidr inside bip's subnet: where the default bridge's containers get their addresses */
  fixedCidr?: Cidr;
  /** default-address-pools; undefined: Docker's (172.17-31.0.0/16, 192.168.0.0/16 in /20s) */
  pools?: AddressPool[];
  /** mtu, icc, ip-masq, ip: the default bridge's options, as -o would give them */
  bridgeOptions: Record<string, string>;
  /** ip-forward: whether ctnet may turn net.ipv4.ip_forward on */
  ipForward: boolean;
  dns: string[];
}

/** Networking keys of Docker's daemon.json that ctnet does not implement, with why. */
const UNSUPPORTED: Record<string, string> = {
  bridge: "ctnet makes its default bridge itself (ctnet0)",
  "fixed-cidr-v6": "ctnet's networks are IPv4 only",
  "default-gateway": "containers route via their network's gateway",
  "default-gateway-v6": "ctnet's networks are IPv4 only",
};

const daemonConfigPath = () => process.env.CTNET_DAEMON_CONFIG || DEFAULT_DAEMON_CONFIG;

let cached: DaemonConfig | undefined;

/** The daemon settings; an invalid file is one line naming the file and the key, exit 2. */
export function daemonConfig(): DaemonConfig {
  const file = daemonConfigPath();
  if (cached?.file === file) return cached;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err: any) {
    if (err.code !== "ENOENT") throw new UsageError(`${file}: cannot read it: ${err.message}`);
    text = "{}";
  }
  cached = parseDaemonConfig(text, file);
  return cached;
}

/** The --dns servers a container gets when run gives none: daemon.json's "dns" (empty: the host's resolv.conf). */
export const defaultDns = (): string[] => daemonConfig().dns;

export function parseDaemonConfig(text: string, file: string): DaemonConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new UsageError(`${file}: expected a JSON object`);
  const cfg: DaemonConfig = { file, bridgeOptions: {}, ipForward: true, dns: [] };
  const bad = (key: string, problem: string) => new UsageError(`${file}: ${key}: ${problem}`);
  const bool = (key: string, v: unknown) => {
    if (typeof v !== "boolean") throw bad(key, `expected true or false, not ${JSON.stringify(v)}`);
    return v;
  };
  const inner = <T>(key: string, f: () => T) => {
    try {
      return f();
    } catch (err) {
      throw bad(key, (err as Error).message);
    }
  };
  for (const [key, v] of Object.entries(json as Record<string, unknown>)) {
    if (UNSUPPORTED[key]) throw bad(key, `not supported: ${UNSUPPORTED[key]}`);
    switch (key) {
      case "bip": {
        // a CIDR whose address is the bridge's own: "192.168.1.5/24" (dockerd --bip)
        if (typeof v !== "string" || !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(v)) throw bad(key, `expected an address with a prefix length such as "192.168.1.1/24", not ${JSON.stringify(v)}`);
        const ip = inner(key, () => parseAddress(v.split("/")[0], "address"));
        const subnet = inner(key, () => networkOf(v));
        inner(key, () => checkUsableSubnet(subnet));
        inner(key, () => checkHostAddress(subnet, ip.bigInt(), "address", ip.correctForm()));
        cfg.bip = { gateway: ip.correctForm(), subnet };
        break;
      }
      case "fixed-cidr":
        if (typeof v !== "string") throw bad(key, `expected a CIDR such as "10.66.0.0/25", not ${JSON.stringify(v)}`);
        cfg.fixedCidr = inner(key, () => parseCidr(v, "fixed-cidr"));
        break;
      case "default-address-pools":
        if (!Array.isArray(v) || v.length === 0) throw bad(key, 'expected a list such as [{"base": "10.10.0.0/16", "size": 24}]');
        cfg.pools = v.map((p, i) => {
          const at = `${key}[${i}]`;
          if (typeof p !== "object" || p === null || typeof p.base !== "string" || !Number.isInteger(p.size)) throw bad(at, 'expected {"base": CIDR, "size": prefix length}');
          const base = inner(at, () => parseCidr(p.base, "base"));
          if (p.size < base.prefix || p.size > 30) throw bad(at, `size ${p.size} must be between the base's prefix length ${base.prefix} and 30`);
          return { base, size: p.size };
        });
        break;
      case "mtu":
        if (!Number.isInteger(v)) throw bad(key, `expected a number, not ${JSON.stringify(v)}`);
        // Docker's default: a bridge's own
        if (v !== 1500) cfg.bridgeOptions.mtu = inner(key, () => bridgeOption("mtu", String(v)));
        break;
      case "icc":
        if (!bool(key, v)) cfg.bridgeOptions.icc = "false";
        break;
      case "ip-masq":
        if (!bool(key, v)) cfg.bridgeOptions.masquerade = "false";
        break;
      case "ip":
        if (typeof v !== "string") throw bad(key, `expected an IPv4 address, not ${JSON.stringify(v)}`);
        cfg.bridgeOptions.host_ip = inner(key, () => parseAddress(v, "address").correctForm());
        break;
      case "ip-forward":
        cfg.ipForward = bool(key, v);
        break;
      case "iptables":
        if (!bool(key, v)) throw bad(key, "false is not supported: ctnet's isolation, NAT and published ports are iptables rules");
        break;
      case "ipv6":
        if (bool(key, v)) throw bad(key, "true is not supported: ctnet's networks are IPv4 only");
        break;
      case "dns":
        if (!Array.isArray(v)) throw bad(key, `expected a list of addresses, not ${JSON.stringify(v)}`);
        cfg.dns = v.map((a, i) => {
          if (typeof a !== "string") throw bad(`${key}[${i}]`, `expected an address, not ${JSON.stringify(a)}`);
          return inner(`${key}[${i}]`, () => parseAddress(a, "address").correctForm());
        });
        break;
    }
  }
  // moby daemon_unix.go getDefaultBridgeIPAMConf: with bip, fixed-cidr is the sub-pool containers get
  // addresses from; without, it is the default bridge's subnet
  const fixed = cfg.fixedCidr;
  if (fixed && !cfg.bip) {
    inner("fixed-cidr", () => checkUsableSubnet(fixed));
    cfg.bip = { gateway: addrText(fixed.first + 1n), subnet: fixed };
    delete cfg.fixedCidr;
  } else if (fixed && (fixed.first < cfg.bip!.subnet.first || fixed.last > cfg.bip!.subnet.last)) {
    throw bad("fixed-cidr", `${fixed.text} is not inside bip's subnet ${cfg.bip!.subnet.text}`);
  }
  return cfg;
}
