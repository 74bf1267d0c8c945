// Docker's container network model as ctnet stores it: Networks, Containers (each with a Sandbox, its
// network namespace) and Endpoints (a link plus an address on one network; drivers/ makes them).

/** The network drivers (drivers/registry.ts holds one of each); the model names them without importing them. */
export type DriverName = "bridge" | "macvlan" | "ipvlan" | "overlay" | "host" | "null";

export interface NetworkRecord {
  name: string;
  id: string;
  created: string;
  /** the driver that makes it (drivers/registry.ts); predefined networks' drivers (host, null) have no records */
  driver: DriverName;
  /** overlay: the VXLAN network identifier, claimed in the cluster's store (src/drivers/overlay.ts) */
  vni?: number;
  /**
   * Linux bridge interface name (see naming.ts); "" for drivers without a bridge (macvlan, ipvlan), whose
   * traffic leaves through their parent without crossing the host's firewall: they have no ctnet rules.
   */
  bridge: string;
  subnet: string;
  gateway: string;
  ipRange?: string;
  /** --aux-address: name -> address, never given to a container */
  auxAddresses?: Record<string, string>;
  internal: boolean;
  /** net create --attachable: shown by inspect, changes nothing (any container may join) */
  attachable?: boolean;
  /** as given with -o, normalised to the driver's short keys (bridge: icc, masquerade, host_ip, mtu, see commands/netoptions.ts; macvlan: parent, macvlan_mode, mtu…) */
  options: Record<string, string>;
  /** macvlan, ipvlan: ctnet made the parent (options.parent) and removes it with the network */
  ownParent?: boolean;
  labels: Record<string, string>;
  lab?: string;
  /** `up`: digest of the lab file entry this network was made from; a changed entry is recreated */
  labDigest?: string;
}

export interface Endpoint {
  network: string;
  id: string;
  /** interface name inside the sandbox: eth0, eth1, … */
  ifname: string;
  /** host-side veth, enslaved to the network's bridge; "" where the endpoint has no host side (macvlan, ipvlan) */
  hostIf: string;
  ip: string;
  prefixLen: number;
  mac: string;
  aliases: string[];
  /** what was asked for with --ip / --mac-address (inspect's IPAMConfig; start gives them back) */
  requested?: { ip?: string; mac?: string };
}

/** A network a stopped (or created) container rejoins at start: its endpoint was released (Docker's stop). */
export interface ReleasedEndpoint {
  network: string;
  aliases: string[];
  requested?: Endpoint["requested"];
}

export type RunMode = "bridge" | "host" | "none" | "container";

export interface PortMapping {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  proto: "tcp" | "udp";
}

/** a container port declared with --expose (or by -p): what -P publishes */
export type ExposedPort = Pick<PortMapping, "containerPort" | "proto">;

export interface ContainerRecord {
  name: string;
  id: string;
  created: string;
  hostname: string;
  mode: RunMode;
  /** the network namespace the processes live in; null for host mode */
  netns: string | null;
  /** container:X mode: the container whose namespace this one joined */
  joined?: string;
  endpoints: Endpoint[];
  command: string[];
  env: Record<string, string>;
  /** main process; null once stopped */
  pid: number | null;
  /** the process start time from /proc/PID/stat, so a reused pid is not mistaken for ours */
  pidStart: string | null;
  ports: PortMapping[];
  expose: ExposedPort[];
  /** made by `create` and not started yet (Docker's "created") */
  notStarted?: boolean;
  /** when the process last started (ISO) */
  startedAt?: string;
  /** the last exit, folded in when ctnet next looks (stop, start, kill, rm): the process's own record is a file (exitPath) */
  finishedAt?: string;
  exitCode?: number;
  /** the networks a stopped container rejoins at start, in order (its endpoints are released meanwhile) */
  released?: ReleasedEndpoint[];
  /** --rm: removed when its process ends (by the watcher a detached start spawns, see autoremove.ts) */
  autoRemove?: boolean;
  /** pause: its processes are frozen in a freezer cgroup of ctnet's */
  paused?: boolean;
  lab?: string;
  /** `up`: digest of the lab file entry this container was made from; a changed entry is recreated */
  labDigest?: string;
  /** --dns, --dns-search, --dns-option (src/dns/names.ts) */
  dns?: { servers?: string[]; search?: string[]; options?: string[] };
  /** --add-host, host-gateway resolved */
  extraHosts?: Array<{ name: string; ip: string }>;
  /** --link NAME[:ALIAS], with the linked container's address when it was made */
  links?: Array<{ name: string; alias: string; ip: string }>;
}

/**
 * What queries over every container need of each one: its name, how it resolves names, its addresses.
 * The state file keeps one per container beside the records, so that `run` on a busy network picks an
 * address and writes the network's hosts file without parsing a record but its own (statefile.ts).
 */
export interface ContainerDigest extends Pick<ContainerRecord, "name" | "mode" | "hostname"> {
  endpoints: Pick<Endpoint, "network" | "ip" | "hostIf" | "aliases">[];
}

export interface SysctlChange {
  key: string;
  previous: string;
  value: string;
}

export interface State {
  version: 1;
  networks: Record<string, NetworkRecord>;
  containers: Record<string, ContainerRecord>;
  sysctls: Record<string, SysctlChange>;
  /** counts saved plans: a journal names the generation its plan saves, so recovery sees whether it did */
  generation?: number;
  /** the directories ctnet made ("." is the state dir, "logs" its logs): reset removes only these */
  madeDirs?: string[];
  /** this host's membership of a cluster (cluster join; src/cluster/cluster.ts) */
  cluster?: ClusterJoin;
}

export interface ClusterJoin {
  /** etcd://HOST:PORT[,HOST:PORT…] */
  store: string;
  /** this host's name in the cluster (its hostname) */
  host: string;
  /** the underlay address other hosts reach this host's VTEP at */
  advertise: string;
  /** seconds the host's lease lives without renewal */
  ttl: number;
  /** the etcd lease the host's key is bound to (decimal id) */
  lease: string;
  joined: string;
  /**
   * The other members' VTEPs, dead ones too, in address order: the only senders the guard of this host's
   * VXLAN port lets in (firewall.ts, vxlanRules). Written by `cluster join`, kept current by the agent
   * (cluster/members.ts). Absent in a state written before ctnet kept them: no guard until the agent has.
   */
  peers?: string[];
}

/** The UDP port of every VXLAN device ctnet makes: IANA's, as Docker's overlay driver uses. */
export const VXLAN_PORT = 4789;

/** The labels `docker inspect` shows in Config.Labels: a lab's containers carry its name. */
export const containerLabels = (c: ContainerRecord): Record<string, string> => (c.lab ? { "ctnet.lab": c.lab } : {});

export const emptyState = (): State => ({ version: 1, networks: {}, containers: {}, sysctls: {} });

/** A container's run mode as `--net` takes it: bridge, host, none or container:NAME. */
export const runModeText = (c: { mode: RunMode; joined?: string | null }) => (c.mode === "container" ? `container:${c.joined}` : c.mode);

/** Whether the network has a bridge on the host, on which the firewall layer keys its rules. */
export const bridged = (net: NetworkRecord) => net.bridge !== "";

export type LifeState = "created" | "running" | "paused" | "exited";

/** Docker's State.Status: a container made by create and never started is "created". */
export function lifeState(c: ContainerRecord, running: boolean): LifeState {
  if (running) return c.paused ? "paused" : "running";
  return c.notStarted ? "created" : "exited";
}

/** Every network the container is configured for, its released ones (while stopped) included, in order. */
export const networkNames = (c: ContainerRecord): string[] => [...c.endpoints.map((e) => e.network), ...(c.released ?? []).map((r) => r.network)];
