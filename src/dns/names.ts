// The names service: how a container finds the others, as Docker's embedded DNS and /etc files do.
//
// - Each container keeps files of its own under /etc/netns/NAME (ip netns exec bind-mounts them over
//   /etc): hostname, hosts (Docker's lines: localhost, its own addresses, --add-host, --link) and
//   resolv.conf. They are written when it runs and when its own endpoints change, never for a neighbour
//   on a bridge network: an edit of /etc/hosts inside one container stays in that container. (On macvlan,
//   ipvlan and overlay networks, which the server cannot serve, the members' names are in those files.)
// - The names of user networks are answered by one DNS server per state dir, podman's aardvark-dns,
//   running in the host's namespace on every user network's gateway (port 53), configured by one file per
//   network in STATE_DIR/dns (aardvark.ts). A `run` changes one line of one file and signals the server:
//   O(1) in the size of the network. See docs/dns.md.
//
// Planners call syncNames(plan, state, c, networks) whenever container c joins or leaves `networks` (run,
// connect, disconnect, rm, stop, start): it is the one hook. The state passed is the state after the change.
import path from "node:path";
import fs from "node:fs";
import { isIP } from "node:net";
import { UsageError } from "../errors.js";
import { netnsEtcDir } from "../naming.js";
import type { Plan } from "../plan/plan.js";
import type { ContainerRecord, State } from "../model.js";
import { readNameLink } from "../host/files.js";
import { dnsNames, servesNames, syncDnsServer } from "./aardvark.js";
import { DEFAULT_BRIDGE_NETWORK } from "../naming.js";
import { pendingContent } from "./planned.js";
import { containerDigests } from "../store/statefile.js";

const HOSTS_HEADER = [
  "127.0.0.1\tlocalhost",
  "::1\tlocalhost ip6-localhost ip6-loopback",
  "fe00::0\tip6-localnet",
  "ff00::0\tip6-mcastprefix",
  "ff02::1\tip6-allnodes",
  "ff02::2\tip6-allrouters",
];

/** The first line of every hosts file ctnet writes: it marks the namespace as ctnet's (doctor, reset). */
const hostsMark = (c: Pick<ContainerRecord, "name">) => `# ctnet: /etc/hosts of container ${c.name}`;

export const NAME_FILES = ["hosts", "hostname", "resolv.conf"] as const;
export const nameFilePath = (ns: string, file: (typeof NAME_FILES)[number]) => path.join(netnsEtcDir(ns), file);

/** A container's /etc/hosts as Docker writes it: localhost lines, --add-host, --link, then its own addresses. */
export function hostsFileFor(state: State, c: ContainerRecord): string {
  const lines = [hostsMark(c), ...HOSTS_HEADER];
  for (const h of c.extraHosts ?? []) lines.push(`${h.ip}\t${h.name}`);
  for (const l of c.links ?? []) lines.push(`${l.ip}\t${[...new Set([l.alias, l.name])].join(" ")}`);
  const own = [...new Set([c.hostname, c.name])].join(" ");
  for (const ep of c.endpoints) lines.push(`${ep.ip}\t${own}`);
  if (c.endpoints.length === 0) lines.push(`127.0.1.1\t${own}`);
  for (const ep of c.endpoints) {
    if (!namedByHosts(state, ep.network)) continue;
    for (const o of membersOf(state, ep.network)) {
      if (o.name === c.name) continue;
      const theirs = o.endpoints.find((e) => e.network === ep.network)!;
      lines.push(`${theirs.ip}\t${dnsNames(o, ep.network, theirs.aliases).join(" ")}`);
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * User networks the DNS server cannot serve, because their gateway is no address of the host (macvlan,
 * ipvlan, overlay): their members' names are written into each member's hosts file instead, so a change
 * rewrites the hosts files of the network's containers (O(n), on these networks only; docs/dns.md).
 */
const namedByHosts = (state: State, network: string) => {
  const net = state.networks[network];
  return !!net && net.name !== DEFAULT_BRIDGE_NETWORK && !servesNames(net);
};

const membersOf = (state: State, network: string): ContainerRecord[] =>
  containerDigests(state).filter((d) => d.endpoints.some((e) => e.network === network)).map((d) => state.containers[d.name]);

// ---- resolv.conf ---------------------------------------------------------------------------

const isLoopback = (ip: string) => /^127\./.test(ip) || ip === "::1";

interface Resolver {
  nameservers: string[];
  search: string[];
  options: string[];
}

export function parseResolvConf(text: string): Resolver {
  const out: Resolver = { nameservers: [], search: [], options: [] };
  for (const raw of text.split("\n")) {
    const [key, ...words] = raw.replace(/[#;].*/, "").trim().split(/\s+/);
    if (key === "nameserver" && words[0]) out.nameservers.push(words[0].replace(/%.*/, ""));
    else if (key === "search" || key === "domain") out.search = words;
    else if (key === "options") out.options.push(...words);
  }
  return out;
}

const readText = (file: string) => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
};

/** Docker's defaults when the host has no upstream a container can reach (daemon/libnetwork resolvconf). */
const FALLBACK_SERVERS = ["8.8.8.8", "8.8.4.4"];

let hostUpstream: Resolver | null = null;
/**
 * The servers a container outside the DNS server can use, as Docker picks them: /etc/resolv.conf's, less
 * the loopback ones (a container's 127.0.0.53 is its own loopback); when that leaves none,
 * systemd-resolved's real upstreams in /run/systemd/resolve/resolv.conf; else Google's.
 */
function hostResolver(): Resolver {
  if (hostUpstream) return hostUpstream;
  const etc = parseResolvConf(readText("/etc/resolv.conf"));
  let servers = etc.nameservers.filter((s) => !isLoopback(s));
  if (servers.length === 0) servers = parseResolvConf(readText("/run/systemd/resolve/resolv.conf")).nameservers.filter((s) => !isLoopback(s));
  if (servers.length === 0) servers = FALLBACK_SERVERS;
  hostUpstream = { nameservers: servers, search: etc.search, options: etc.options.filter((o) => o !== "edns0" && o !== "trust-ad") };
  return hostUpstream;
}

/** The user network whose gateway a container asks for names: its first bridge one; null when it has none. */
const dnsNetwork = (state: State, c: ContainerRecord) =>
  c.mode === "bridge" ? c.endpoints.map((ep) => state.networks[ep.network]).find(servesNames) ?? null : null;

/**
 * resolv.conf of a container: on a user network the DNS server at that network's gateway (it forwards
 * what it does not know to --dns servers or the host's), elsewhere the host's upstreams or --dns.
 */
function resolvConfFor(state: State, c: ContainerRecord): string {
  const host = hostResolver();
  const dns = c.dns ?? {};
  const via = dnsNetwork(state, c);
  const servers = via ? [via.gateway] : dns.servers?.length ? dns.servers : host.nameservers;
  const search = dns.search ?? host.search;
  // Docker's embedded DNS gets ndots:0: a dotted name (NAME.NETWORK) is asked as it is first
  const options = dns.options ?? (via ? [...host.options.filter((o) => !o.startsWith("ndots:")), "ndots:0"] : host.options);
  const lines = [`# ctnet: resolv.conf of container ${c.name}${via ? `: names answered by ctnet's DNS server on ${via.name}'s gateway` : ""}`];
  for (const s of servers) lines.push(`nameserver ${s}`);
  if (search.length > 0 && search.join("") !== ".") lines.push(`search ${search.join(" ")}`);
  if (options.length > 0) lines.push(`options ${options.join(" ")}`);
  return lines.join("\n") + "\n";
}

// ---- the hook -------------------------------------------------------------------------------------


/** What a ctnet name file of a container should hold in `state` (null: absent); undefined: not one of them. */
export function nameFileContent(state: State, file: string): string | null | undefined {
  const m = /^\/etc\/netns\/([^/]+)\/(hosts|hostname|resolv\.conf)$/.exec(file);
  if (!m) return undefined;
  const c = Object.values(state.containers).find((o) => o.netns === m[1] && (o.mode === "bridge" || o.mode === "none"));
  if (!c) return null;
  return containerFile(state, c, m[2] as (typeof NAME_FILES)[number]);
}

function containerFile(state: State, c: ContainerRecord, file: (typeof NAME_FILES)[number]): string {
  if (file === "hostname") return `${c.hostname}\n`;
  return file === "hosts" ? hostsFileFor(state, c) : resolvConfFor(state, c);
}

/** The link to a network's shared hosts file that ctnet made before the DNS server: removed first. */
function dropOldLink(plan: Plan, file: string): void {
  const target = plan.pending("link", file, () => readNameLink(file));
  if (target !== null) plan.link(file, null, target, `${file} was a link to a shared hosts file (ctnet before its DNS server)`);
}

/** Writes a container's own name files; `keepEdits`: a hosts file already there is left as it is. */
export function writeContainerFiles(plan: Plan, state: State, c: ContainerRecord, keepEdits = false): void {
  if (c.mode !== "bridge" && c.mode !== "none") return;
  for (const f of NAME_FILES) {
    const file = nameFilePath(c.netns!, f);
    if (f === "hosts") dropOldLink(plan, file);
    const now = pendingContent(plan, file);
    if (keepEdits && f === "hosts" && now !== null && now.startsWith(hostsMark(c))) continue;
    plan.write(file, containerFile(state, c, f), now, f === "hosts" ? `names ${c.name} resolves by itself (its own /etc/hosts)` : `${f} of ${c.name}`);
  }
}

export function removeContainerFiles(plan: Plan, ns: string): void {
  for (const f of NAME_FILES) {
    const file = nameFilePath(ns, f);
    if (f === "hosts") dropOldLink(plan, file);
    const previous = pendingContent(plan, file);
    if (previous !== null) plan.write(file, null, previous, `remove ${file}`);
  }
}

/**
 * The one hook: container `c` (its record as it is after the change; absent from `state` when removed)
 * joined or left `networks`. Rewrites its own files when it still has a namespace, and its entries in
 * the DNS server's files of those networks, then starts, signals or stops the server.
 */
export function syncNames(plan: Plan, state: State, c: ContainerRecord, networks: string[] = c.endpoints.map((e) => e.network)): void {
  if (state.containers[c.name] === c) writeContainerFiles(plan, state, c);
  syncNeighbourHosts(plan, state, c, networks);
  syncDnsServer(plan, state, [{ container: c, networks }]);
}

/** On the networks of `networks` named by hosts files, the other members' files now that `c` joined or left. */
export function syncNeighbourHosts(plan: Plan, state: State, c: ContainerRecord, networks: string[]): void {
  const neighbours = new Set<ContainerRecord>();
  for (const n of networks) if (namedByHosts(state, n)) for (const o of membersOf(state, n)) if (o.name !== c.name) neighbours.add(o);
  for (const o of neighbours) writeContainerFiles(plan, state, o);
}



/**
 * What the DNS server answers container `c` for `name`, from the state: the address of a container that
 * shares a user network with it and has that name there (name, alias, short id, NAME.NETWORK). For trace.
 */
export function dnsAnswer(state: State, c: ContainerRecord, name: string): { ip: string; network: string } | null {
  const mine = new Set(c.endpoints.map((e) => e.network).filter((n) => servesNames(state.networks[n])));
  const wanted = name.toLowerCase().replace(/\.$/, "");
  for (const d of containerDigests(state)) {
    for (const ep of d.endpoints) {
      if (!mine.has(ep.network)) continue;
      const o = state.containers[d.name];
      if (o.pid !== null && dnsNames(o, ep.network, ep.aliases).includes(wanted)) return { ip: ep.ip, network: ep.network };
    }
  }
  return null;
}

// ---- flags ------------------------------------------------------------------------------------

const isIp = (s: string) => isIP(s) !== 0;
const HOST_NAME = /^[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$/;

/** --dns values: IP addresses (Docker refuses anything else). */
export function parseDnsServers(values: string[] | undefined): string[] | undefined {
  if (!values?.length) return undefined;
  for (const v of values) if (!isIp(v)) throw new UsageError(`invalid --dns ${JSON.stringify(v)}: not an IP address`);
  return values;
}

/** --add-host NAME:IP (or Docker 25's NAME=IP); host-gateway becomes `gateway` (the host on the container's network). */
export function parseAddHosts(values: string[] | undefined, gateway: string | null): Array<{ name: string; ip: string }> {
  return (values ?? []).map((v) => {
    const sep = /^[^:=]*[:=]/.exec(v);
    const name = sep ? v.slice(0, sep[0].length - 1) : "";
    let ip = sep ? v.slice(sep[0].length).replace(/^\[(.*)\]$/, "$1") : "";
    if (!HOST_NAME.test(name)) throw new UsageError(`invalid --add-host ${JSON.stringify(v)}: expected NAME:IP with a host name`);
    if (ip === "host-gateway") {
      if (gateway === null) throw new UsageError(`--add-host ${v}: host-gateway needs a bridge network (the host's address on it)`);
      ip = gateway;
    }
    if (!isIp(ip)) throw new UsageError(`invalid --add-host ${JSON.stringify(v)}: ${JSON.stringify(ip)} is not an IP address`);
    return { name, ip };
  });
}

/** --link NAME[:ALIAS]: a running container sharing a network with the new one; its address there. */
export function parseLinks(state: State, values: string[] | undefined, networks: string[], find: (term: string) => ContainerRecord): Array<{ name: string; alias: string; ip: string }> {
  return (values ?? []).map((v) => {
    const [target, alias = target, ...rest] = v.split(":");
    if (!target || rest.length > 0 || !HOST_NAME.test(alias)) throw new UsageError(`invalid --link ${JSON.stringify(v)}: expected NAME or NAME:ALIAS`);
    const other = find(target);
    const ep = other.endpoints.find((e) => networks.includes(e.network));
    if (!ep) throw new UsageError(`cannot link to ${other.name}: it is not on the network of the new container (${networks.join(", ") || "none"})`);
    return { name: other.name, alias, ip: ep.ip };
  });
}
