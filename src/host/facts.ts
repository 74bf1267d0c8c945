// The host facts planners need, gathered by reading the kernel here so that planners (and the drivers)
// never spawn or read anything themselves: a plan is a function of the state and this snapshot, and unit
// tests plan against a fake one. The live snapshot reads each fact the first time a planner asks for it
// and keeps it for the rest of the command (a `run` must not pay for facts only `net create` needs).
import fs from "node:fs";
import { gunzipSync } from "node:zlib";
import { bridgesInKernel, othersForwarding } from "../firewall/firewall.js";
import { goingAway, hostSubnetsInUse, linkExists, netnsExists, readOrNull, readSysctl, run, vethLeaving, type SubnetUse } from "./sys.js";

export interface LinkFact {
  ifname: string;
  /** the rtnetlink kind (bridge, veth, macvlan, vlan…); "" for a plain device such as a NIC */
  kind: string;
  master: string | null;
  mtu: number;
  alias: string | null;
  up: boolean;
}

/** Kernel modules a driver may need, with the kernel config symbol that builds them. */
const KERNEL_MODULES = { macvlan: "CONFIG_MACVLAN", ipvlan: "CONFIG_IPVLAN", "8021q": "CONFIG_VLAN_8021Q" } as const;
export type KernelModule = keyof typeof KERNEL_MODULES;

export interface HostFacts {
  /** whether a link of that name exists in the host's namespace (one an earlier plan of the command deletes does not) */
  hasLink(ifname: string): boolean;
  /** the link's details, null when there is none */
  link(ifname: string): LinkFact | null;
  /** whether a named network namespace exists (/run/netns; one an earlier plan of the command deletes does not) */
  hasNetns(name: string): boolean;
  /** a ctnet veth whose namespace is deleted: the kernel is removing it and its name is about to be free */
  vethLeaving(ifname: string): boolean;
  /** a sysctl's value ("" when the key does not exist) */
  sysctl(key: string): string;
  /** false only when the kernel surely lacks the module (neither built in nor loadable) */
  kernelHas(module: KernelModule): boolean;
  /** IPv4 subnets the host's routes and addresses use */
  subnetsInUse(): SubnetUse[];
  /** bridges of ctnet networks of any state dir, as the kernel's isolation chain names them */
  ctnetBridgesInFirewall(): Set<string>;
  /** rules of the built-in FORWARD chain that are not ctnet's: another tool forwards through this host */
  othersForwarding(): string[];
}

/** Asks the kernel over netlink: /sys/class/net shows the namespace sysfs was mounted in, which may be another's. */
function readLink(ifname: string): LinkFact | null {
  const res = run(["ip", "-j", "-d", "link", "show", "dev", ifname]);
  const [link] = res.code === 0 ? JSON.parse(res.stdout || "[]") : [];
  if (!link) return null;
  return {
    ifname, kind: link.linkinfo?.info_kind ?? "", master: link.master ?? null, mtu: link.mtu, alias: link.ifalias ?? null,
    up: (link.flags ?? []).includes("UP"),
  };
}

/**
 * A module is there when the kernel shows it loaded (/sys/module), its build config says built in or
 * loadable, or the module lists of the running kernel name it. With none of them readable ctnet cannot
 * tell, and leaves the answer to the kernel.
 */
function readKernelHas(module: KernelModule): boolean {
  if (fs.existsSync(`/sys/module/${module}`)) return true;
  let readable = false;
  try {
    const config = gunzipSync(fs.readFileSync("/proc/config.gz")).toString("utf8");
    readable = true;
    if (new RegExp(`^${KERNEL_MODULES[module]}=[ym]$`, "m").test(config)) return true;
  } catch {
    /* a kernel built without IKCONFIG_PROC */
  }
  const release = readOrNull("/proc/sys/kernel/osrelease")?.trim();
  for (const list of ["modules.builtin", "modules.dep"]) {
    const text = release ? readOrNull(`/lib/modules/${release}/${list}`) : null;
    if (text === null) continue;
    readable = true;
    if (new RegExp(`/${module}\\.ko`).test(text)) return true;
  }
  return !readable;
}

function memo<T>(read: (key: string) => T): (key: string) => T {
  const seen = new Map<string, T>();
  return (key) => {
    if (!seen.has(key)) seen.set(key, read(key));
    return seen.get(key)!;
  };
}

/** The host's facts as this command finds them. Link existence is not kept: `up` plans several commands in one process (goingAway). */
export function liveHostFacts(): HostFacts {
  const link = memo(readLink);
  return {
    hasLink: linkExists,
    hasNetns: netnsExists,
    link: (ifname) => (goingAway.links.has(ifname) ? null : link(ifname)),
    vethLeaving,
    sysctl: (key) => readSysctl(key) ?? "",
    kernelHas: memo((m) => readKernelHas(m as KernelModule)),
    subnetsInUse: hostSubnetsInUse,
    ctnetBridgesInFirewall: bridgesInKernel,
    othersForwarding,
  };
}
