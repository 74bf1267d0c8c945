// How ctnet names what it creates, so anyone can read the kernel's state back to the model:
//
//   container NAME             network namespace NAME (`ip netns exec NAME …` works), its own
//                              /etc/netns/NAME/{hosts,hostname,resolv.conf} (src/dns/names.ts)
//   user network NET's names   STATE_DIR/dns/NET, the file of ctnet's DNS server for NET (src/dns/aardvark.ts)
//   default network "bridge"   Linux bridge ctnet0
//   user network NET           Linux bridge "ctbr-NET"; names that do not fit 15 characters are cut and
//                              given a 4-hex hash: "ctbr-" + 5 chars + "-" + hash
//   overlay network NET        bridge as a user network's, plus VXLAN device "ctvx-VNI" (drivers/overlay.ts)
//   endpoint (CTR on NET)      host-side veth "ve-CTR.NET" (cut like bridges when long); inside the
//                              namespace eth0, eth1, … in the order the container joined its networks
//   every link ctnet creates   carries the alias "ctnet:…" (see `ip -d link`), the mark `doctor` and `reset` trust
//   iptables                   only chains named CTNET-…, plus one jump rule each from the built-in chains
import { createHash } from "node:crypto";
import { UsageError } from "./errors.js";

export const DEFAULT_BRIDGE_NETWORK = "bridge";
export const DEFAULT_BRIDGE_IFNAME = "ctnet0";
export const PREDEFINED_NETWORKS = ["bridge", "host", "none"] as const;
export const LINK_ALIAS_PREFIX = "ctnet:";
export const IFNAMSIZ = 15;

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/** Docker's rule for container and network names. Also keeps names safe as paths and argv. */
export function validateName(kind: "network" | "container" | "lab" | "alias", name: string): void {
  if (!NAME_RE.test(name)) {
    throw new UsageError(
      `invalid ${kind} name ${JSON.stringify(name)}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}`,
    );
  }
}

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 4);
}

/** Fits `prefix + body` into IFNAMSIZ, keeping it readable and unique via a hash when it must be cut. */
export function fitIfname(prefix: string, body: string): string {
  const full = prefix + body;
  if (full.length <= IFNAMSIZ) return full;
  const room = IFNAMSIZ - prefix.length - 5;
  return `${prefix}${body.slice(0, room)}-${shortHash(body)}`;
}

export function bridgeIfname(network: string): string {
  return network === DEFAULT_BRIDGE_NETWORK ? DEFAULT_BRIDGE_IFNAME : fitIfname("ctbr-", network);
}

export function hostVethIfname(container: string, network: string): string {
  return fitIfname("ve-", `${container}.${network}`);
}

export function linkAlias(kind: "bridge" | "veth" | "parent" | "vxlan", owner: string): string {
  return `${LINK_ALIAS_PREFIX}${kind}:${owner}`;
}

export const netnsPath = (ns: string) => `/run/netns/${ns}`;
export const netnsEtcDir = (ns: string) => `/etc/netns/${ns}`;

/** Docker-style 64-hex identifiers. */
export function newId(): string {
  return createHash("sha256").update(`${process.pid}:${process.hrtime.bigint()}:${Math.random()}`).digest("hex");
}

/** The ids of the predefined networks (bridge, host, none): fixed, as each Docker engine's are for its life. */
export const predefinedId = (name: string) => createHash("sha256").update(`ctnet-predefined:${name}`).digest("hex");
