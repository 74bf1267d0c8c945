// Container commands: run (and create) in the four modes (bridge or a user network, host, none,
// container:X) and rm; the rest of a container's life is in lifecycle.ts, its views in views/containers.ts.
import fs from "node:fs";
import { UsageError } from "../errors.js";
import { attachEndpoints } from "../drivers/registry.js";
import { enlist } from "../firewall/firewall.js";
import { DEFAULT_BRIDGE_NETWORK, newId, validateName } from "../naming.js";
import {
  ensureDefaultBridge, findContainer, findNetwork, liveContext, newEndpoint, parseKeyValues, releaseDefaultBridge, resolveNetwork, routeNetwork,
} from "./networks.js";
import { Plan, removalRank, type Step } from "../plan/plan.js";
import { portLayer, publishOnRun, retirePorts, type PublishOptions } from "../firewall/ports.js";
import { releaseOverlaysOnHost } from "../drivers/overlay.js";
import { claimOnConnect, dropUnbuiltOverlays, lendOverlay, overlayToJoin, planRelease } from "../cluster/claims.js";
import type { PlanContext } from "../drivers/driver.js";
import {
  IDLE_COMMAND, checkExecutable, createNamespace, deleteNamespace, loopbackUp, namespacePids, processArgv,
} from "../host/sandbox.js";
import { parseAddHosts, parseDnsServers, parseLinks, removeContainerFiles, syncNames, syncNeighbourHosts, writeContainerFiles } from "../dns/names.js";
import { syncDnsServer } from "../dns/aardvark.js";
import { containerDigests } from "../store/statefile.js";
import { networkAttachments, type FirstNetworkFlags } from "../cli/runflags.js";
import { exitPath, isRunning, logPath, spawnMain, thaw } from "./process.js";
import type { ContainerRecord, RunMode, State } from "../model.js";

export interface RunOptions extends PublishOptions, FirstNetworkFlags {
  name?: string;
  hostname?: string;
  /** each --network as given (NETWORK or Docker's long form name=NET,…); default bridge */
  net?: string | string[];
  env?: string[];
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  /** `create`: the container is made, its endpoints and process wait for `start` */
  create?: boolean;
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  addHost?: string[];
  link?: string[];
  command: string[];
  lab?: string;
  /** `up`: the container joined with --net container:NAME starts earlier in the same plan */
  joinsPending?: boolean;
  /** the container's id, chosen before planning when the store claim must carry it (overlay networks) */
  id?: string;
  /** an overlay network: brings it up on this host first (src/cluster/overlayrun.ts, claimForRun) */
  beforePlan?: (plan: Plan, draft: State, ctx: PlanContext) => void;
}

const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;


/** Parses --net: bridge (default), host, none, container:NAME or a user network. */
function parseMode(state: State, spec: string, joinsPending = false): { mode: RunMode; network?: string; joined?: ContainerRecord } {
  if (spec === "default") return { mode: "bridge", network: DEFAULT_BRIDGE_NETWORK };
  if (spec.startsWith("container:")) {
    let joined = findContainer(state, spec.slice("container:".length));
    if (joined.mode === "container") joined = state.containers[joined.joined!];
    if (joined.mode === "host") throw new UsageError(`container ${joined.name} uses the host's network: use --net host instead`);
    if (!isRunning(joined) && !joinsPending) throw new UsageError(`cannot join container ${joined.name}: it is not running`);
    return { mode: "container", joined };
  }
  // a network by name or id; the predefined ones have ids too (net ls)
  const network = resolveNetwork(state, spec);
  if (network === "host" || network === "none") return { mode: network };
  return { mode: "bridge", network };
}

/**
 * The networks of the second and later --network (Docker 25+): user networks, each once, by name. An
 * overlay network of the cluster this host has no container on yet is not in the state: it is joined as
 * `net connect` joins it (claims.ts, claimOnConnect).
 */
function moreNetworks(state: State, all: Array<{ target: string }>): string[] {
  if (all.length === 1) return [];
  const predefined = (t: string) => ["bridge", "default", "host", "none"].includes(t) || t.startsWith("container:");
  if (all.some((a) => predefined(a.target))) throw new UsageError("conflicting options: cannot attach both user-defined and non-user-defined network-modes");
  const nets = all.map((a, i) => (i > 0 && overlayToJoin(state, a.target)?.name) || findNetwork(state, a.target).name);
  const twice = nets.find((n, i) => nets.indexOf(n) !== i);
  if (twice) throw new UsageError(`network ${twice} is specified multiple times`);
  return nets.slice(1);
}

export function parseEnv(pairs: string[] | undefined): string[] {
  return (pairs ?? []).map((pair) => {
    if (pair.includes("=")) {
      if (pair.startsWith("=")) throw new UsageError(`invalid environment variable ${JSON.stringify(pair)}: expected KEY=VALUE`);
      return pair;
    }
    const value = process.env[pair];
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(pair)) throw new UsageError(`invalid environment variable ${JSON.stringify(pair)}: expected KEY=VALUE`);
    return value === undefined ? null : `${pair}=${value}`;
  }).filter((p): p is string => p !== null);
}


export function defaultCommand(o: RunOptions): string[] {
  if (o.command.length > 0) return o.command;
  // a detached shell would read EOF from /dev/null and exit at once: -itd keeps the container up idle
  if (o.detach) return IDLE_COMMAND;
  if (o.interactive || o.tty) return [fs.existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh"];
  return IDLE_COMMAND;
}

/** Plans `run`: the sandbox, its endpoints and names, and (detached) the container's process. */
export function planRun(state: State, stateDir: string, o: RunOptions, ctx = liveContext()): { plan: Plan; container: ContainerRecord; argv: string[]; warnings: string[] } {
  const id = o.id ?? newId();
  const name = o.name ?? id.slice(0, 12);
  validateName("container", name);
  if (state.containers[name]) throw new UsageError(`container name ${name} is already in use`);
  const plan = new Plan(`run ${name}`);
  o.beforePlan?.(plan, state, ctx);
  const [first, ...more] = networkAttachments(o.net, o);
  const modeSpec = first.target;
  const { mode, network, joined } = parseMode(state, modeSpec, o.joinsPending);
  if (mode !== "bridge" && (first.ip || first.aliases?.length)) throw new UsageError(`--ip and --network-alias need a bridge network, not --net ${modeSpec}`);
  if (mode !== "bridge" && first.mac) throw new UsageError(`conflicting options: --mac-address and --net ${modeSpec}`);
  const moreNets = moreNetworks(state, [first, ...more]);
  if (mode === "container" && o.hostname) throw new UsageError("conflicting options: --hostname and --net container:NAME");
  const ownNs = mode === "bridge" || mode === "none";
  if (ownNs && ctx.facts.hasNetns(name)) throw new UsageError(`a network namespace named ${name} already exists on this host`);
  // Docker's rule: a name that is no valid hostname (mysql_app) leaves the container its short id as one
  const validHostname = (h: string) => HOSTNAME_RE.test(h) && h.length <= 63;
  const hostname = o.hostname ?? (mode === "container" ? joined!.hostname : validHostname(name) ? name : id.slice(0, 12));
  if (!validHostname(hostname)) throw new UsageError(`invalid hostname ${JSON.stringify(hostname)}`);
  if (mode !== "bridge" && mode !== "none" && (o.dns?.length || o.dnsSearch?.length || o.dnsOption?.length || o.addHost?.length)) {
    throw new UsageError(`--dns, --dns-search, --dns-option and --add-host need a container of its own network namespace, not --net ${modeSpec}`);
  }
  const command = defaultCommand(o);
  checkExecutable(command);
  const env = parseEnv(o.env);

  const c: ContainerRecord = {
    name, id, created: new Date().toISOString(), hostname, mode,
    netns: ownNs ? name : mode === "container" ? joined!.netns : null,
    ...(joined ? { joined: joined.name } : {}),
    endpoints: [], command, env: parseKeyValues(env, "environment variable"), pid: null, pidStart: null, ports: [], expose: [],
    ...(o.rm ? { autoRemove: true } : {}), ...(o.lab ? { lab: o.lab } : {}),
  };
  const net = !network ? null : network === DEFAULT_BRIDGE_NETWORK ? ensureDefaultBridge(plan, state, ctx) : state.networks[network];
  if (net) c.endpoints.push(newEndpoint(state, c, net, first, ctx));
  // what `net connect` would add, planned with the first so the process starts with every network
  more.forEach((a, i) => {
    const req = o.create ? a : claimOnConnect(plan, ctx, state, moreNets[i], c, a);
    c.endpoints.push(newEndpoint(state, c, state.networks[moreNets[i]] ?? lendOverlay(state, moreNets[i]), req, ctx));
  });
  const dns = { servers: parseDnsServers(o.dns), search: o.dnsSearch?.length ? o.dnsSearch : undefined, options: o.dnsOption?.length ? o.dnsOption : undefined };
  if (dns.servers || dns.search || dns.options) c.dns = JSON.parse(JSON.stringify(dns));
  if (o.addHost?.length) c.extraHosts = parseAddHosts(o.addHost, net?.gateway ?? null);
  if (o.link?.length) c.links = parseLinks(state, o.link, c.endpoints.map((e) => e.network), (t) => findContainer(state, t));
  state.containers[name] = c;
  const warnings = o.create ? createOnly(state, c, o, ctx) : [];
  // the name files come first: /etc/netns/NAME/hosts is what marks a namespace as ctnet's, so there is
  // never a moment in which the namespace exists unmarked (doctor and reset would not know it as ctnet's)
  writeContainerFiles(plan, state, c);
  if (ownNs) createNamespace(plan, name);
  if (net && !o.create) attachEndpoints(plan, ctx, name, c.endpoints.map((ep) => ({ net: state.networks[ep.network], ep })), routeNetwork(state, c));
  if (ownNs) loopbackUp(plan, name);
  if (o.create) return { plan, container: c, argv: [], warnings };
  warnings.push(...publishOnRun(plan, ctx, state, c, o));
  // its names answer from its start: one line in the DNS server's file of each of its user networks (the
  // hosts files of its neighbours on networks the server cannot serve)
  const onNetworks = c.endpoints.map((e) => e.network);
  syncNeighbourHosts(plan, state, c, onNetworks);
  syncDnsServer(plan, state, [{ container: c, networks: onNetworks }]);
  const argv = processArgv(state, c, command, env, true);
  if (o.detach) spawnMain(plan, state, stateDir, c, false);
  return { plan, container: c, argv, warnings };
}

/**
 * `create`: everything run checks is checked (addresses, ports), then the endpoints are kept as the
 * networks to join at start, as Docker allocates them at start; published ports are resolved now (their
 * host ports reserved for the container) and their rules installed at start.
 */
function createOnly(state: State, c: ContainerRecord, o: RunOptions, ctx: PlanContext): string[] {
  const warnings = publishOnRun(new Plan("create: ports are installed at start"), ctx, state, c, o);
  c.released = c.endpoints.map((ep) => ({ network: ep.network, aliases: ep.aliases, ...(ep.requested ? { requested: ep.requested } : {}) }));
  c.endpoints = [];
  c.notStarted = true;
  dropUnbuiltOverlays(state);
  return warnings;
}


/** Plans `rm`: names first (peers stop resolving it), then processes, links, the namespace. */
export function planRm(state: State, stateDir: string, names: string[], force: boolean, ctx = liveContext()): Plan {
  const plan = new Plan(`rm ${names.join(" ")}`);
  // the port rules it deletes are ctnet's, should a later plan of the same command (down) remove the base
  enlist(plan, state);
  const removing = new Set(names.map((n) => findContainer(state, n).name));
  // one container: no waiting for its veths to go; the next command that takes one of their names waits
  if (removing.size === 1) plan.waitAtEnd = false;
  for (const name of removing) {
    const c = state.containers[name];
    if (isRunning(c) && !force) throw new UsageError(`container ${name} is running: stop it first or use rm -f`);
    const sharers = containerDigests(state)
      .filter((o) => o.mode === "container" && !removing.has(o.name) && state.containers[o.name].joined === name);
    if (sharers.length > 0) throw new UsageError(`container ${name} shares its network namespace with ${sharers.map((s) => s.name).join(", ")}: remove them first`);
  }
  const thaws: Step[] = [];
  const gone = new Map<string, ContainerRecord>();
  for (const name of removing) {
    const c = state.containers[name];
    gone.set(name, c);
    // the port layer is every publishing container's rules: one that publishes nothing leaves it as it is
    const portsBefore = c.ports.length > 0 ? portLayer(state) : null;
    delete state.containers[name];
    if (portsBefore) retirePorts(plan, state, portsBefore, portLayer(state), ctx.facts);
    syncNames(plan, state, c);
    const pids = new Set<number>();
    const planned = plan.steps.length;
    thaw(plan, c);
    thaws.push(...plan.steps.slice(planned));
    if (isRunning(c)) pids.add(c.pid!);
    if (c.mode === "bridge" || c.mode === "none") for (const pid of namespacePids(c.netns!)) pids.add(pid);
    plan.kill([...pids], "SIGKILL", `stop ${name}'s processes`);
    if (c.mode === "bridge" || c.mode === "none") {
      // the namespace takes its veth pairs with it (see deleteNamespace)
      deleteNamespace(plan, c.netns!, c.endpoints.map((ep) => ep.hostIf).filter(Boolean));
      removeContainerFiles(plan, c.netns!);
    }
    const files = [logPath(stateDir, name), exitPath(stateDir, c)].filter((f) => fs.existsSync(f));
    if (files.length > 0) plan.cmd(["rm", "-f", ...files], `remove ${name}'s log${files.length > 1 ? " and exit status" : ""}`, null);
  }
  releaseDefaultBridge(plan, state, ctx);
  planRelease(plan, state, [...gone.values()], `release the overlay addresses and names of ${[...removing].join(", ")}`);
  releaseOverlaysOnHost(plan, ctx, state);
  // stable: within a rank, the plan order each container's steps were planned in
  plan.steps.sort((a, b) => removalRank(a) - removalRank(b));
  // a paused container is thawed before anything else: a frozen process takes SIGKILL only once thawed
  plan.steps.sort((a, b) => Number(thaws.includes(b)) - Number(thaws.includes(a)));
  return plan;
}
