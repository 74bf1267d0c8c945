// What `ps` and `inspect` print for containers, in Docker's shapes: its columns and their order, its
// status words, its inspect keys in its order with its nulls and empties (see docs/json.md for what
// differs on purpose). Pure over the state and the exit records, so unit tests check them field by field.
import { DEFAULT_BRIDGE_NETWORK, predefinedId } from "../naming.js";
import { formatPorts } from "../firewall/ports.js";
import { filterContainers, type Filters } from "./filters.js";
import { containerLabels, lifeState, networkNames, runModeText, type ContainerRecord, type LifeState, type State } from "../model.js";
import type { ExitRecord } from "../commands/process.js";


/** docker/go-units HumanDuration: what `ps` shows in CREATED and STATUS. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/** Docker's State.String(): `Up 3 seconds`, `Up 3 seconds (Paused)`, `Exited (3) 2 seconds ago`, `Created`. */
export function statusText(c: ContainerRecord, running: boolean, exit: ExitRecord | null, now = Date.now()): string {
  if (running) return `Up ${humanDuration(now - Date.parse(c.startedAt ?? c.created))}${c.paused ? " (Paused)" : ""}`;
  if (lifeState(c, false) === "created") return "Created";
  if (!exit) return "Exited";
  return `Exited (${exit.code}) ${humanDuration(now - Date.parse(exit.finishedAt))} ago`;
}


/** HostConfig.NetworkMode: `default` for the default bridge, as Docker's client sends it when --net is not given. */
function networkModeOf(c: ContainerRecord): string {
  if (c.mode !== "bridge") return runModeText(c);
  const first = networkNames(c)[0];
  return first === undefined || first === DEFAULT_BRIDGE_NETWORK ? "default" : first;
}

/** What stands in the IMAGE column: ctnet has no images; the program the container runs is the nearest thing. */
const imageOf = (c: ContainerRecord) => c.command[0]?.split("/").pop() ?? "";

/** One `ps` row: `docker ps --format json`'s keys in its (alphabetical) order, and ctnet's Lab. */
export interface ContainerSummary {
  Command: string;
  CreatedAt: string;
  ID: string;
  Image: string;
  Labels: string;
  Lab?: string;
  LocalVolumes: "0";
  Mounts: "";
  Names: string;
  Networks: string;
  Ports: string;
  RunningFor: string;
  Size: "0B";
  State: LifeState;
  Status: string;
}

/**
 * ps: running containers (every one with `all`), newest first, those the --filter values pass. `exitOf`
 * gives a stopped container's last exit (from its record or its exit file).
 */
export function listContainers(state: State, all: boolean, filters: Filters, exitOf: (c: ContainerRecord, running: boolean) => ExitRecord | null, isRunning: (c: ContainerRecord) => boolean): ContainerSummary[] {
  const now = Date.now();
  // one look at /proc per container: with 1000 of them each extra look costs ~10 ms
  const listed = Object.values(state.containers)
    .map((c) => ({ c, running: isRunning(c) }))
    .sort((a, b) => b.c.created.localeCompare(a.c.created));
  return filterContainers(state, listed, filters, all).map(({ c, running }) => ({
    Command: c.command.join(" "),
    CreatedAt: c.created,
    ID: c.id.slice(0, 12),
    Image: imageOf(c),
    Labels: c.lab ? `ctnet.lab=${c.lab}` : "",
    ...(c.lab ? { Lab: c.lab } : {}),
    LocalVolumes: "0",
    Mounts: "",
    Names: c.name,
    Networks: c.mode === "bridge" ? networkNames(c).join(",") : networkModeOf(c),
    Ports: running ? formatPorts(c) : "",
    RunningFor: `${humanDuration(now - Date.parse(c.created))} ago`,
    Size: "0B",
    State: lifeState(c, running),
    Status: statusText(c, running, running ? null : exitOf(c, running), now),
  }));
}

/** Docker's default `ps` table: these columns, in this order, NAMES last. */
export const PS_COLUMNS = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"];

/** A row of the default table; COMMAND quoted and cut at 20 characters as Docker's (formatter.Ellipsis). */
export function psTableRow(r: ContainerSummary): string[] {
  const command = [...r.Command].length > 20 ? [...r.Command].slice(0, 19).join("") + "…" : r.Command;
  return [r.ID, r.Image, JSON.stringify(command), r.RunningFor, r.Status, r.Ports, r.Names];
}

/** Go's zero time, which Docker prints for a start or finish that has not happened. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

export interface InspectFacts {
  running: boolean;
  exit: ExitRecord | null;
  /** State.Pid: the container's command (the exit recorder's child), 0 when not running */
  pid: number;
  logPath: string;
}

/** `docker inspect` of a container: Docker's keys in Docker's order, limited to what ctnet has. */
export function inspectContainer(state: State, c: ContainerRecord, facts: InspectFacts): object {
  const { running, exit } = facts;
  const short = c.id.slice(0, 12);
  const networks: Record<string, object> = {};
  const entry = (network: string, aliases: string[] | null, requestedIp: string | undefined, live: { id: string; mac: string; ip: string; prefixLen: number } | null, dnsNames: string[] | null, extra: object = {}) => {
    const net = state.networks[network];
    return {
      IPAMConfig: requestedIp ? { IPv4Address: requestedIp } : null,
      Links: null,
      Aliases: aliases,
      MacAddress: live?.mac ?? "",
      DriverOpts: null,
      GwPriority: 0,
      NetworkID: net?.id ?? (network === "host" || network === "none" ? predefinedId(network) : ""),
      EndpointID: live?.id ?? "",
      Gateway: live && net ? net.gateway : "",
      IPAddress: live?.ip ?? "",
      IPPrefixLen: live?.prefixLen ?? 0,
      IPv6Gateway: "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      DNSNames: dnsNames,
      ...extra,
    };
  };
  const userNet = (network: string) => network !== DEFAULT_BRIDGE_NETWORK;
  for (const ep of c.endpoints) {
    networks[ep.network] = entry(ep.network, userNet(ep.network) ? [short, ...ep.aliases] : null, ep.requested?.ip,
      { id: ep.id, mac: ep.mac, ip: ep.ip, prefixLen: ep.prefixLen }, userNet(ep.network) ? [c.name, ...ep.aliases, short] : null,
      { Interface: ep.ifname, HostInterface: ep.hostIf });
  }
  for (const r of c.released ?? []) networks[r.network] = entry(r.network, userNet(r.network) ? [short, ...r.aliases] : null, r.requested?.ip, null, null);
  if (c.mode === "host" || c.mode === "none") networks[c.mode] = entry(c.mode, null, undefined, null, null);

  // the default bridge fills the top-level fields (Docker's legacy single-network view); others leave them empty
  const bridge = c.endpoints.find((e) => e.network === DEFAULT_BRIDGE_NETWORK);
  const ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of c.ports) {
    (bindings[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
    if (running) (ports[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  }
  const exposed: Record<string, object> = {};
  for (const e of c.expose) {
    exposed[`${e.containerPort}/${e.proto}`] = {};
    if (running) ports[`${e.containerPort}/${e.proto}`] ??= null;
  }
  const status = lifeState(c, running);
  const etc = c.netns && (c.mode === "bridge" || c.mode === "none") ? `/etc/netns/${c.netns}` : null;
  return {
    Id: c.id,
    Created: c.created,
    Path: c.command[0],
    Args: c.command.slice(1),
    State: {
      Status: status,
      Running: running,
      Paused: status === "paused",
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: facts.pid,
      ExitCode: exit?.code ?? 0,
      Error: "",
      StartedAt: c.startedAt ?? (status === "created" ? ZERO_TIME : c.created),
      FinishedAt: exit?.finishedAt || ZERO_TIME,
    },
    Image: "",
    HostnamePath: etc ? `${etc}/hostname` : "",
    HostsPath: etc ? `${etc}/hosts` : "",
    LogPath: facts.logPath,
    Name: `/${c.name}`,
    RestartCount: 0,
    Platform: "linux",
    HostConfig: {
      NetworkMode: networkModeOf(c),
      PortBindings: bindings,
      RestartPolicy: { Name: "no", MaximumRetryCount: 0 },
      AutoRemove: !!c.autoRemove,
      Dns: c.dns?.servers ?? [],
      DnsOptions: c.dns?.options ?? [],
      DnsSearch: c.dns?.search ?? [],
      ExtraHosts: c.extraHosts?.length ? c.extraHosts.map((h) => `${h.name}:${h.ip}`) : null,
      // Docker's form: /LINKED:/THIS/ALIAS
      Links: c.links?.length ? c.links.map((l) => `/${l.name}:/${c.name}/${l.alias}`) : null,
    },
    Config: {
      Hostname: c.hostname,
      Domainname: "",
      User: "",
      ...(c.expose.length ? { ExposedPorts: exposed } : {}),
      Env: Object.entries(c.env).map(([k, v]) => `${k}=${v}`),
      Cmd: c.command,
      Image: "",
      WorkingDir: "",
      Entrypoint: null,
      Labels: containerLabels(c),
    },
    NetworkSettings: {
      Bridge: "",
      SandboxID: c.netns ?? "",
      SandboxKey: c.netns ? `/run/netns/${c.netns}` : "",
      Ports: ports,
      HairpinMode: false,
      LinkLocalIPv6Address: "",
      LinkLocalIPv6PrefixLen: 0,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: bridge?.id ?? "",
      Gateway: bridge ? state.networks[bridge.network]?.gateway ?? "" : "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      IPAddress: bridge?.ip ?? "",
      IPPrefixLen: bridge?.prefixLen ?? 0,
      IPv6Gateway: "",
      MacAddress: bridge?.mac ?? "",
      Networks: networks,
    },
  };
}
