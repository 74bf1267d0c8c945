// What every network driver provides, and what planners give it. A driver turns a network record into
// plan steps (create, remove), plugs sandboxes into the network (attach, detach), and tells doctor what
// the kernel should hold for a network and its endpoints (checkNetwork, checkEndpoint). Drivers read
// the host only through the HostFacts snapshot they are given and never spawn anything themselves.
import type { HostFacts, LinkFact } from "../host/facts.js";
import type { Plan } from "../plan/plan.js";
import type { DriverName } from "../model.js";
import type { Endpoint, NetworkRecord, State } from "../model.js";

/** What planners receive besides the state: the host as this command found it, and the drivers. */
export interface PlanContext {
  facts: HostFacts;
  drivers: DriverRegistry;
}

/** The drivers by name (src/drivers/registry.ts). */
export interface DriverRegistry {
  /** the driver `net create -d NAME` means; a UsageError for an unknown one */
  named(name: string): NetworkDriver & { name: DriverName };
  /** the driver of a network */
  of(net: NetworkRecord): NetworkDriver;
}

export interface Attachment {
  net: NetworkRecord;
  ep: Endpoint;
}

/** The links and IPv4 addresses of one namespace (the host's or a container's), as doctor reads them. */
export interface LinkView {
  links: Map<string, LinkFact>;
  /** a.b.c.d/len by interface */
  addrs: Map<string, string[]>;
}

/** One difference between what ctnet's state implies and what the kernel holds (doctor). */
export interface Finding {
  text: string;
  /** fixes run in phase order: removals first, then what the state needs, innermost last */
  phase: number;
  fix?: (plan: Plan) => void;
  /** the fix makes an endpoint's link anew, so the routes through it must be made again too */
  recreatesLink?: boolean;
}

/** What `net create` asks of a driver beyond the common fields. */
export interface NetworkRequest {
  /** --subnet was given (the drivers that join an existing LAN need it) */
  subnetGiven: boolean;
}

export interface NetworkDriver {
  /** the name `net create -d`, `net ls` and `inspect` use */
  readonly name: string;
  /** `-o` keys the driver takes: Docker's long names and ctnet's short ones, each to the short one */
  readonly optionKeys: Readonly<Record<string, string>>;
  /** How an unknown option's error lists the known ones, where the short keys do not say it */
  readonly optionsHelp?: string;
  /** Checks one option's value (its short key); throws UsageError. May return it normalised, as records keep it. */
  checkOption(key: string, value: string): string | void;
  /**
   * Checks a network about to be created against the state and the host; throws UsageError for bad
   * input (exit 2) and OpError for a host that cannot carry it, such as a missing kernel module (exit 1).
   * May fill in what the driver derives (its interface name, defaults of its options).
   */
  validate(ctx: PlanContext, state: State, net: NetworkRecord, req: NetworkRequest): void;
  /** Plans the network's kernel objects. Call before adding `net` to state.networks. */
  create(plan: Plan, ctx: PlanContext, state: State, net: NetworkRecord): void;
  /** Plans their removal, leaving what ctnet did not make (a parent NIC) as found. Call after removing `net` from state. */
  remove(plan: Plan, ctx: PlanContext, state: State, net: NetworkRecord): void;
  /** Plugs a sandbox into networks of this driver: one link per endpoint, its address, up. */
  attach(plan: Plan, ctx: PlanContext, netns: string, attachments: Attachment[]): void;
  /** Unplugs one endpoint from a running sandbox. */
  detach(plan: Plan, ctx: PlanContext, netns: string, ep: Endpoint, net: NetworkRecord): void;
  /** The host-side links ctnet made for the network: doctor and reset know them as ctnet's. */
  networkLinks(net: NetworkRecord): string[];
  /** Whether each endpoint has a MAC of its own (bridge, macvlan), or shares its parent's (ipvlan: no --mac-address). */
  readonly macPerEndpoint: boolean;
  /** The interface name of a new endpoint's link on the host, or "" when it has none (it lives in the sandbox only). */
  endpointHostLink(container: string, net: NetworkRecord): string;
  /** What doctor finds wrong with the network's kernel objects on the host. */
  checkNetwork(net: NetworkRecord, host: LinkView): Finding[];
  /** What doctor finds wrong with one endpoint; `inner` is the sandbox's namespace. Fixes may recreate it. */
  checkEndpoint(ctx: PlanContext, netns: string, net: NetworkRecord, ep: Endpoint, host: LinkView, inner: LinkView): Finding[];
  /** The network's link on the host, as `graph`, `trace` and the subnet checks see it: its bridge, or the parent its containers hang on. */
  hostSide(net: NetworkRecord): { ifname: string; role: "bridge" | "parent" } | null;
  /** The words after `ip route add default` for a sandbox whose default route goes through `ep`. */
  defaultRoute(net: NetworkRecord, ep: Endpoint): string[];
}
