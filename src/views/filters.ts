// Docker's --filter KEY=VALUE for ps, net ls and net prune, with moby's own matching rules, each cited
// from moby v20.10-v28 (daemon/list.go, daemon/network/filter.go, daemon/prune.go, filters/parse.go):
// values of one key OR together (label excepted: every label value must hold), different keys AND.
import { UsageError } from "../errors.js";
import { containerLabels, lifeState, networkNames, type ContainerRecord, type NetworkRecord, type State } from "../model.js";
import { PREDEFINED_NETWORKS, predefinedId } from "../naming.js";

/** key → its values; a value given twice counts once, as in moby's filters.Args */
export type Filters = Map<string, Set<string>>;

export const PS_FILTERS = ["id", "name", "label", "network", "status", "publish", "expose", "before", "since"];
export const NET_LS_FILTERS = ["name", "id", "driver", "label", "scope", "type", "dangling"];
export const NET_PRUNE_FILTERS = ["label", "label!", "until"];

/** Keys Docker's ps takes that have nothing to act on here: refused with the reason. */
const NOT_IN_CTNET: Record<string, string> = {
  ancestor: "ctnet has no images", volume: "ctnet has no volumes", health: "ctnet has no health checks",
  exited: "ctnet does not record exit codes", isolation: "Windows only", "is-task": "ctnet has no swarm services",
};

/** Docker's states (api/types/container/state.go); ctnet's containers are only ever running or exited. */
const DOCKER_STATES = ["created", "running", "paused", "restarting", "removing", "exited", "dead"];

/**
 * Parses repeated --filter values like the docker CLI (opts.FilterOpt → filters.ParseFlag): the key is
 * trimmed and lower-cased, the value trimmed, an empty flag ignored; then, like the daemon's
 * Args.Validate, a key the command does not take is `invalid filter 'KEY'`.
 */
export function parseFilters(specs: string[] | undefined, accepted: string[]): Filters {
  const filters: Filters = new Map();
  for (const spec of specs ?? []) {
    if (spec === "") continue;
    const eq = spec.indexOf("=");
    if (eq < 0) throw new UsageError(`bad format of filter ${JSON.stringify(spec)} (expected name=value)`);
    const key = spec.slice(0, eq).trim().toLowerCase();
    if (!accepted.includes(key)) {
      const why = accepted === PS_FILTERS ? NOT_IN_CTNET[key] : undefined;
      throw new UsageError(`invalid filter '${key}'${why ? `: ${why}` : ""}`);
    }
    if (!filters.has(key)) filters.set(key, new Set());
    filters.get(key)!.add(spec.slice(eq + 1).trim());
  }
  return filters;
}

/**
 * Args.Match: the text equals a value or a value, read as a regular expression, is found in it (so
 * `name=web` is a substring match and `name=^web$` an exact one); a value that is no valid expression
 * matches only itself. Without values for the key everything matches.
 */
function matcher(values: Set<string> | undefined): (text: string) => boolean {
  if (!values) return () => true;
  const patterns = [...values].flatMap((v) => {
    try {
      return [new RegExp(v)];
    } catch {
      return [];
    }
  });
  return (text) => values.has(text) || patterns.some((p) => p.test(text));
}

/** Args.MatchKVList: every `k` or `k=v` value holds of the labels (AND, unlike the other keys). */
function matchLabels(values: Set<string>, labels: Record<string, string>): boolean {
  if (Object.keys(labels).length === 0) return false;
  return [...values].every((value) => {
    const eq = value.indexOf("=");
    const key = eq < 0 ? value : value.slice(0, eq);
    return Object.hasOwn(labels, key) && (eq < 0 || labels[key] === value.slice(eq + 1));
  });
}

interface PortRange {
  start: number;
  end: number;
  proto: string;
}

/** daemon/list.go portOp: PORT[-END][/PROTO], tcp by default; an address part is refused. */
function parsePortFilter(key: string, value: string): PortRange {
  if (value.includes(":")) throw new UsageError(`filter for '${key}' should not contain ':': ${value}`);
  const slash = value.indexOf("/");
  const ports = slash < 0 ? value : value.slice(0, slash);
  const proto = slash < 0 || slash === value.length - 1 ? "tcp" : value.slice(slash + 1);
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(ports);
  const start = Number(m?.[1]);
  const end = m?.[2] === undefined ? start : Number(m[2]);
  if (!m || end > 65535 || start > end) throw new UsageError(`invalid filter '${key}=${value}': expected PORT[-END][/PROTO]`);
  return { start, end, proto };
}

const inRanges = (ranges: PortRange[], port: number, proto: string) => ranges.some((r) => r.proto === proto && port >= r.start && port <= r.end);

/** A container as ps sees it: its record and whether its process runs. */
export interface Listed {
  c: ContainerRecord;
  running: boolean;
}

/**
 * `ps --filter`, after moby's daemon/list.go (Containers, filterByNameIDMatches, includeContainerInList).
 * `listed` is every container, newest first; `all` is -a.
 */
export function filterContainers(state: State, listed: Listed[], filters: Filters, all: boolean): Listed[] {
  const status = filters.get("status");
  for (const s of status ?? []) {
    if (!DOCKER_STATES.includes(s)) throw new UsageError(`invalid filter 'status=${s}': must be one of ${DOCKER_STATES.join(", ")}`);
  }
  // a status filter lists stopped containers without -a
  const showStopped = all || status !== undefined;
  const publish = [...filters.get("publish") ?? []].map((v) => parsePortFilter("publish", v));
  const expose = [...filters.get("expose") ?? []].map((v) => parsePortFilter("expose", v));
  // before/since name one container by full id or exact name; Docker's daemon takes no short id there
  // (docker/for-linux#258), ctnet takes one as its docs show and as every other ctnet command does
  const anchor = (key: string) => {
    const values = [...filters.get(key) ?? []];
    return values.length === 0 ? undefined : values.map((v) => findListed(listed, v)).at(-1)!.c.id;
  };
  let before = anchor("before");
  const since = anchor("since");
  const nameMatches = matcher(filters.get("name"));
  const idMatches = matcher(filters.get("id"));
  const labels = filters.get("label");
  const networks = filters.get("network");

  const out: Listed[] = [];
  for (const row of candidates(listed, filters, nameMatches)) {
    const { c, running } = row;
    // before skips every newer container up to its own; since stops at its own: both come before the
    // running check, so a stopped anchor still counts without -a
    if (before !== undefined) {
      if (c.id === before) before = undefined;
      continue;
    }
    if (since !== undefined && c.id === since) break;
    if (!running && !showStopped) continue;
    if (!nameMatches(c.name) && !nameMatches(`/${c.name}`)) continue;
    if (!idMatches(c.id)) continue;
    if (labels && !matchLabels(labels, containerLabels(c))) continue;
    if (status && !status.has(lifeState(c, running))) continue;
    if (networks && ![...networks].some((v) => onNetwork(state, c, v))) continue;
    if ((publish.length || expose.length) && !portSummary(c).some((p) =>
      inRanges(publish, p.publicPort, p.proto) || inRanges(expose, p.privatePort, p.proto))) continue;
    out.push(row);
  }
  return out;
}

/**
 * filterByNameIDMatches: with id filters, the containers a value is the prefix of, when it is the prefix
 * of one only (an ambiguous prefix matches none); else, with name filters, the containers they match.
 */
function candidates(listed: Listed[], filters: Filters, nameMatches: (text: string) => boolean): Listed[] {
  const ids = filters.get("id");
  if (ids) {
    const found = new Set<string>();
    for (const prefix of ids) {
      const hits = listed.filter((r) => r.c.id.startsWith(prefix));
      if (hits.length === 1) found.add(hits[0].c.id);
    }
    return listed.filter((r) => found.has(r.c.id));
  }
  if (filters.has("name")) return listed.filter((r) => nameMatches(r.c.name) || nameMatches(`/${r.c.name}`));
  return listed;
}

/** A full id, a name (a leading slash allowed, as Docker's), or a prefix of one container's id. */
function findListed(listed: Listed[], value: string): Listed {
  const name = value.replace(/^\//, "");
  const exact = listed.find((r) => r.c.id === value) ?? listed.find((r) => r.c.name === name);
  if (exact) return exact;
  const hits = value === "" ? [] : listed.filter((r) => r.c.id.startsWith(value));
  if (hits.length > 1) throw new UsageError(`container id prefix ${value} is ambiguous: it starts ${hits.map((r) => r.c.name).join(", ")}`);
  if (hits.length === 0) throw new UsageError(`no such container: ${value}`);
  return hits[0];
}

/** The networks `docker inspect` lists for the container, by name, or by a prefix of their id. */
function onNetwork(state: State, c: ContainerRecord, value: string): boolean {
  const attached = c.mode === "bridge" ? networkNames(c).map((name) => ({ name, id: state.networks[name]?.id ?? "" }))
    : c.mode === "container" ? [] : [{ name: c.mode, id: predefinedId(c.mode) }];
  return attached.some((n) => n.name === value || n.id.startsWith(value));
}

/** Docker's Ports summary: one entry per host binding, and exposed-only ports with public port 0. */
function portSummary(c: ContainerRecord): Array<{ publicPort: number; privatePort: number; proto: string }> {
  const bound = c.ports.map((p) => ({ publicPort: p.hostPort, privatePort: p.containerPort, proto: p.proto }));
  const unbound = c.expose.filter((e) => !c.ports.some((p) => p.containerPort === e.containerPort && p.proto === e.proto));
  return [...bound, ...unbound.map((e) => ({ publicPort: 0, privatePort: e.containerPort, proto: e.proto }))];
}

/** One `net ls` row as the filters see it. */
export interface NetworkView {
  Name: string;
  ID: string;
  Driver: string;
  Scope: string;
  Containers: number;
}

/** `net ls --filter`, after moby's daemon/network/filter.go FilterNetworks (v20.10-v28). */
export function filterNetworks<T extends NetworkView>(state: State, rows: T[], filters: Filters): T[] {
  const types = filters.get("type") ?? new Set<string>();
  for (const t of types) if (t !== "builtin" && t !== "custom") throw new UsageError(`invalid filter 'type=${t}': builtin or custom`);
  const dangling = oneBoolean(filters, "dangling");
  const nameMatches = matcher(filters.get("name"));
  const idMatches = matcher(filters.get("id"));
  const labels = filters.get("label");
  const drivers = filters.get("driver");
  const scopes = filters.get("scope");
  const builtin = (r: NetworkView) => (PREDEFINED_NETWORKS as readonly string[]).includes(r.Name);
  return rows.filter((r) =>
    (!drivers || drivers.has(r.Driver)) && (!scopes || scopes.has(r.Scope)) && nameMatches(r.Name) && idMatches(r.ID)
    && (!labels || matchLabels(labels, state.networks[r.Name]?.labels ?? {}))
    // dangling: a user network without containers (the predefined ones never are)
    && (dangling === undefined || dangling === (!builtin(r) && r.Containers === 0))
    && (types.size === 0 || types.has(builtin(r) ? "builtin" : "custom")));
}

function oneBoolean(filters: Filters, key: string): boolean | undefined {
  const values = [...filters.get(key) ?? []];
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new UsageError(`got more than one value for filter key "${key}"`);
  if (values[0] === "true" || values[0] === "1") return true;
  if (values[0] === "false" || values[0] === "0") return false;
  throw new UsageError(`invalid value for filter '${key}', must be "true" (or "1"), or "false" (or "0")`);
}

/**
 * `net prune --filter`, after moby's daemon/prune.go and daemon/network/filter.go: `label` must hold,
 * `label!` must not, and `until` keeps networks created after the time. Built before planning, so a
 * bad value refuses the command before anything runs.
 */
export function pruneMatcher(filters: Filters, now = Date.now()): (net: NetworkRecord) => boolean {
  const labels = filters.get("label");
  const notLabels = filters.get("label!");
  const untils = [...filters.get("until") ?? []];
  if (untils.length > 1) throw new UsageError("more than one until filter specified");
  const until = untils.length ? parseTimestamp(untils[0], now) : undefined;
  return (net) => (!labels || matchLabels(labels, net.labels)) && !(notLabels && matchLabels(notLabels, net.labels))
    && (until === undefined || Date.parse(net.created) <= until);
}

const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * moby's timestamp.Parse, as `until` takes it: a Go duration before now (`10m`, `1h30m`), an RFC 3339
 * date or time (local time when it names no zone), or Unix seconds. Returns epoch milliseconds.
 */
export function parseTimestamp(value: string, now: number): number {
  const bad = () => new UsageError(`invalid filter 'until=${value}': a duration (24h, 90m), an RFC 3339 date or time, or Unix seconds`);
  if (/^[-+]?([0-9.]+[a-zµμ]+)+$/.test(value) && value !== "0") {
    const sign = value.startsWith("-") ? -1 : 1;
    let ms = 0;
    for (const [, n, unit] of value.replace(/^[-+]/, "").matchAll(/([0-9.]+)([a-zµμ]+)/g)) {
      if (!(unit in GO_UNITS) || !/^(\d+\.?\d*|\.\d+)$/.test(n)) throw bad();
      ms += Number(n) * GO_UNITS[unit];
    }
    return now - sign * ms;
  }
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  // a date alone is midnight local time in Go's parser, but UTC in JavaScript's
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00` : value);
  if (!value.includes("-") || Number.isNaN(t)) throw bad();
  return t;
}
