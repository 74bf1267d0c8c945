// `run` flags in Docker's spelling: several --network (each maybe in the long form), --mac-address,
// --restart, and the flags scripts copy from Docker that ctnet refuses with what it does instead.
import { UsageError } from "../errors.js";
import { shJoin } from "../plan/plan.js";
import { hasTool } from "../host/sys.js";

/** One --network: the first is eth0 and carries the default route, the others follow in order (Docker 25+). */
export interface NetworkAttachment {
  target: string;
  ip?: string;
  aliases?: string[];
  mac?: string;
}

/** What --ip, --network-alias and --mac-address give: they apply to the first --network, as in Docker. */
export interface FirstNetworkFlags {
  ip?: string;
  networkAlias?: string[];
  macAddress?: string;
}

// docker/cli opts/network.go (the long form) and parseNetworkAttachmentOpt: keys ctnet cannot honour
const REFUSED_KEYS: Record<string, string> = {
  ip6: "ctnet's networks are IPv4 only",
  "link-local-ip": "ctnet gives a container one address per network",
  "driver-opt": "ctnet's bridge driver has no endpoint options",
  "gw-priority": "the default route goes via the first network that is not --internal",
};
const KNOWN_KEYS = ["name", "alias", "ip", "ip6", "mac-address", "link-local-ip", "driver-opt"];

/** Parses one --network value: NETWORK, or Docker's long form name=NET,alias=A,ip=IP,mac-address=M. */
export function parseNetworkSpec(spec: string): NetworkAttachment {
  if (!spec.includes("=")) return { target: spec };
  const out: NetworkAttachment = { target: "" };
  for (const field of spec.split(",")) {
    const eq = field.indexOf("=");
    const key = field.slice(0, eq).trim();
    const value = field.slice(eq + 1).trim();
    if (eq <= 0) throw new UsageError(`invalid --network ${JSON.stringify(spec)}: expected KEY=VALUE fields, not ${JSON.stringify(field)}`);
    if (key in REFUSED_KEYS) throw new UsageError(`--network ${key}= is not supported: ${REFUSED_KEYS[key]}`);
    if (key === "name") out.target = value;
    else if (key === "alias") (out.aliases ??= []).push(value);
    else if (key === "ip") out.ip = value;
    else if (key === "mac-address") out.mac = parseMac(value, "--network mac-address=");
    else throw new UsageError(`invalid --network ${JSON.stringify(spec)}: unknown key ${key} (known: ${KNOWN_KEYS.join(", ")})`);
  }
  if (!out.target) throw new UsageError(`invalid --network ${JSON.stringify(spec)}: no name=NETWORK`);
  return out;
}

/**
 * Every --network of one `run`, the first with the single-network flags folded in. Docker refuses a
 * flag and the same key in the first --network's long form (docker/cli container/opts.go applyContainerOptions).
 */
export function networkAttachments(specs: string | string[] | undefined, flags: FirstNetworkFlags): NetworkAttachment[] {
  const list = (typeof specs === "string" ? [specs] : specs?.length ? specs : ["bridge"]).map(parseNetworkSpec);
  const first = list[0];
  if (flags.networkAlias?.length) {
    if (first.aliases) throw new UsageError("conflicting options: cannot specify both --network-alias and per-network alias");
    first.aliases = flags.networkAlias;
  }
  if (flags.ip) {
    if (first.ip) throw new UsageError("conflicting options: cannot specify both --ip and per-network IPv4 address");
    first.ip = flags.ip;
  }
  if (flags.macAddress) {
    if (first.mac) throw new UsageError("conflicting options: cannot specify both --mac-address and per-network MAC address");
    first.mac = parseMac(flags.macAddress, "--mac-address");
  }
  return list;
}

/** A unicast MAC (the kernel refuses a multicast one for a veth), as lower-case colon-separated octets. */
export function parseMac(text: string, flag: string): string {
  const octets = text.split(/[:-]/);
  if (octets.length !== 6 || !octets.every((o) => /^[0-9a-fA-F]{2}$/.test(o))) {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(text)}: not a MAC address (like 02:42:ac:11:00:02)`);
  }
  const mac = octets.join(":").toLowerCase();
  if (parseInt(octets[0], 16) & 1) throw new UsageError(`invalid ${flag} ${mac}: a multicast address; an interface needs a unicast one`);
  if (mac === "00:00:00:00:00:00") throw new UsageError(`invalid ${flag} ${mac}: the all-zero address`);
  return mac;
}

/** `run` flags Docker has and ctnet refuses: the flag, and what ctnet does instead. */
const REFUSED_FLAGS: Array<{ key: string; flag: string; why: string }> = [
  { key: "volume", flag: "-v/--volume", why: "a ctnet container sees the host's files as they are (ctnet isolates the network only); use --verbose to echo commands" },
  { key: "mount", flag: "--mount", why: "a ctnet container sees the host's files as they are (ctnet isolates the network only)" },
  { key: "capAdd", flag: "--cap-add", why: "a ctnet container's process has the capabilities of the user running ctnet (ctnet isolates the network only)" },
  { key: "capDrop", flag: "--cap-drop", why: "a ctnet container's process has the capabilities of the user running ctnet (ctnet isolates the network only)" },
  { key: "sysctl", flag: "--sysctl", why: "set it once the container runs: ip netns exec NAME sysctl -w KEY=VALUE" },
];

const RESTART_POLICY = /^(no|always|unless-stopped|on-failure(:\d+)?)$/;

/** Refuses, with one line, the Docker flags ctnet cannot honour (see docs/docker.md). */
export function refuseDockerOnlyFlags(opts: Record<string, unknown>): void {
  for (const { key, flag, why } of REFUSED_FLAGS) {
    if (opts[key] !== undefined) throw new UsageError(`${flag} is not supported: ${why}`);
  }
  const restart = opts.restart as string | undefined;
  if (restart === undefined || restart === "no") return;
  if (!RESTART_POLICY.test(restart)) throw new UsageError(`invalid --restart ${JSON.stringify(restart)}: expected no, on-failure[:N], always or unless-stopped`);
  throw new UsageError(`--restart ${restart} is not supported: ctnet has no daemon to restart a container, only --restart no`);
}

// a Docker image reference: [registry[:port]/]name[/name…][:tag][@digest]
const IMAGE_REF = /^([a-z0-9.-]+(:\d+)?\/)?[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:\w[\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;

/**
 * `ctnet run … ubuntu`: Docker's image where ctnet wants a host program. Refused, showing the command
 * line without it; a word that names a program on the host runs that program. `args` is the command
 * line after "ctnet", ending with `command`.
 */
export function refuseImageName(command: string[], args: string[]): void {
  const prog = command[0];
  if (prog === undefined || prog.startsWith("/") || prog.startsWith(".") || !IMAGE_REF.test(prog) || hasTool(prog)) return;
  const without = [...args.slice(0, args.length - command.length), ...command.slice(1)];
  throw new UsageError(`${prog} is not a program on this host, and ctnet has no images (a container runs a host program): if ${prog} is an image, leave it out: ${shJoin(["ctnet", ...without])}`);
}
