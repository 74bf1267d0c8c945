// ps / net ls / net prune --filter against Docker's documented examples and moby's own tests:
//   https://docs.docker.com/reference/cli/docker/container/ls/#filter (docker/cli docs/reference/commandline/container_ls.md)
//   https://docs.docker.com/reference/cli/docker/network/ls/#filter   (…/network_ls.md)
//   https://docs.docker.com/reference/cli/docker/network/prune/#filter (…/network_prune.md)
// Where the prose and moby's code disagree, the code wins and the case says so.
import { describe, expect, it } from "vitest";
import { isRunning } from "../../src/commands/process.js";
import { listContainers } from "../../src/views/containers.js";
import { UsageError } from "../../src/errors.js";
import { NET_LS_FILTERS, NET_PRUNE_FILTERS, PS_FILTERS, filterNetworks, parseFilters, parseTimestamp, pruneMatcher } from "../../src/views/filters.js";
import { emptyState, type ContainerRecord, type NetworkRecord, type PortMapping, type State } from "../../src/model.js";
import { listNetworks, planNetPrune } from "../../src/commands/networks.js";
import { predefinedId } from "../../src/naming.js";
import { processStartTime } from "../../src/store/store.js";

const hexId = (prefix: string) => prefix.padEnd(64, "0");

function network(name: string, id: string, labels: Record<string, string> = {}, created = "2024-01-01T00:00:00.000Z"): NetworkRecord {
  return { name, id: hexId(id), created, driver: "bridge", bridge: `ctbr-${name}`, subnet: "10.9.0.0/24", gateway: "10.9.0.1", internal: false, options: {}, labels };
}

let clock = 0;
/** A container on `net`, created after the previous one (ps lists newest first); running means this test's own pid. */
function container(name: string, id: string, o: { net?: string; running?: boolean; ports?: PortMapping[]; expose?: Array<[number, "tcp" | "udp"]>; lab?: string } = {}): ContainerRecord {
  const running = o.running ?? true;
  const net = o.net ?? "bridge";
  return {
    name, id: hexId(id), created: new Date(Date.UTC(2024, 0, 1, 0, 0, clock++)).toISOString(), hostname: name, mode: "bridge", netns: name,
    endpoints: [{ network: net, id: "e".repeat(64), ifname: "eth0", hostIf: `ve-${name}.${net}`, ip: "10.9.0.2", prefixLen: 24, mac: "02:42:0a:09:00:02", aliases: [] }],
    command: ["top"], env: {}, pid: running ? process.pid : null, pidStart: running ? processStartTime(process.pid) : null,
    ports: o.ports ?? [], expose: (o.expose ?? []).map(([containerPort, proto]) => ({ containerPort, proto })),
    ...(o.lab ? { lab: o.lab } : {}),
  };
}

function stateWith(containers: ContainerRecord[], networks: NetworkRecord[] = []): State {
  const s = emptyState();
  s.networks.bridge = { ...network("bridge", ""), id: predefinedId("bridge") };
  for (const n of networks) s.networks[n.name] = n;
  for (const c of containers) s.containers[c.name] = c;
  return s;
}

const ps = (s: State, filters: string[], all = false) => listContainers(s, all, parseFilters(filters, PS_FILTERS), () => null, isRunning).map((r) => r.Names);
const netLs = (s: State, filters: string[]) => filterNetworks(s, listNetworks(s), parseFilters(filters, NET_LS_FILTERS)).map((r) => r.Name);

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).not.toContain("\n");
    return (err as Error).message;
  }
  throw new Error("expected a UsageError");
}

describe("parsing --filter like the docker CLI", () => {
  it("refuses an unknown key with Docker's words, and a key without =; trims and lower-cases the key", () => {
    // moby filters.Args.Validate: invalidFilter{name} → "invalid filter 'foo'"
    expect(refusal(() => parseFilters(["foo=bar"], PS_FILTERS))).toBe("invalid filter 'foo'");
    expect(refusal(() => parseFilters(["status=running"], NET_LS_FILTERS))).toBe("invalid filter 'status'");
    expect(refusal(() => parseFilters(["name=x"], NET_PRUNE_FILTERS))).toBe("invalid filter 'name'");
    // keys Docker's ps takes but ctnet has nothing for say why
    expect(refusal(() => parseFilters(["ancestor=ubuntu"], PS_FILTERS))).toBe("invalid filter 'ancestor': ctnet has no images");
    // docker/cli opts.FilterOpt: "bad format of filter (expected name=value)"
    expect(refusal(() => parseFilters(["running"], PS_FILTERS))).toMatch(/^bad format of filter "running" \(expected name=value\)$/);
    expect(parseFilters([" NAME = web ", ""], PS_FILTERS)).toEqual(new Map([["name", new Set(["web"])]]));
  });
});

describe("ps --filter (docs: container ls, Filtering)", () => {
  it("label: a key alone or key=value (ctnet's containers carry ctnet.lab); two labels must both hold", () => {
    const s = stateWith([container("nostalgic_shockley", "673394ef1d4c", { lab: "red" }), container("high_albattani", "d85756f57265", { lab: "blue" }), container("plain", "aa")]);
    expect(ps(s, ["label=ctnet.lab"])).toEqual(["high_albattani", "nostalgic_shockley"]);
    expect(ps(s, ["label=ctnet.lab=blue"])).toEqual(["high_albattani"]);
    // moby Args.MatchKVList: every label value must hold (AND), unlike other repeated keys
    expect(ps(s, ["label=ctnet.lab=blue", "label=ctnet.lab=red"])).toEqual([]);
  });

  it("name: all or part of the name, a regular expression, with or without the leading slash", () => {
    const s = stateWith([container("nostalgic_shockley", "673394ef1d4c"), container("nostalgic_stallman", "9b6247364a03"), container("top", "d5c976d3c462"), container("i_am_nostalgic", "715ebfcee040")]);
    expect(ps(s, ["name=nostalgic_stallman"])).toEqual(["nostalgic_stallman"]);
    expect(ps(s, ["name=nostalgic"])).toEqual(["i_am_nostalgic", "nostalgic_stallman", "nostalgic_shockley"]);
    // daemon/list.go matches "/name" and "name" with filters.Args.Match (regexp.MatchString)
    expect(ps(s, ["name=^nostalgic"])).toEqual(["nostalgic_stallman", "nostalgic_shockley"]);
    expect(ps(s, ["name=^/top$"])).toEqual(["top"]);
    // same key twice: either; different keys: both
    expect(ps(s, ["name=top", "name=i_am"])).toEqual(["i_am_nostalgic", "top"]);
    expect(ps(s, ["name=nostalgic", "id=9b62"])).toEqual(["nostalgic_stallman"]);
  });

  it("id: a prefix of one container's id; a prefix two ids share matches neither (moby GetByPrefix)", () => {
    const s = stateWith([container("a", "abc1"), container("b", "abc2"), container("c", "def")]);
    expect(ps(s, ["id=abc1"])).toEqual(["a"]);
    expect(ps(s, ["id=abc"])).toEqual([]);
    expect(ps(s, ["id=abc1", "id=def"])).toEqual(["c", "a"]);
  });

  it("status: running or exited (ctnet has no other state); any status lists stopped containers without -a", () => {
    const s = stateWith([container("up", "11"), container("down", "22", { running: false })]);
    expect(ps(s, ["status=running"])).toEqual(["up"]);
    expect(ps(s, ["status=exited"])).toEqual(["down"]);
    expect(ps(s, ["status=exited", "status=running"])).toEqual(["down", "up"]);
    expect(ps(s, ["status=paused"])).toEqual([]);
    expect(refusal(() => ps(s, ["status=stopped"]))).toBe("invalid filter 'status=stopped': must be one of created, running, paused, restarting, removing, exited, dead");
  });

  it("before / since: containers created before or after one named by id or name", () => {
    // the docs' three containers, oldest first
    const s = stateWith([container("distracted_fermat", "6e63f6ff38b0"), container("focused_hamilton", "4aace5031105"), container("desperate_dubinsky", "9c3527ed70ce")]);
    expect(ps(s, ["before=9c3527ed70ce"])).toEqual(["focused_hamilton", "distracted_fermat"]);
    expect(ps(s, ["since=6e63f6ff38b0"])).toEqual(["desperate_dubinsky", "focused_hamilton"]);
    expect(ps(s, ["before=desperate_dubinsky", "since=distracted_fermat"])).toEqual(["focused_hamilton"]);
    expect(ps(s, ["before=/desperate_dubinsky"])).toEqual(["focused_hamilton", "distracted_fermat"]);
    expect(refusal(() => ps(s, ["since=nobody"]))).toBe("no such container: nobody");
    expect(refusal(() => ps(stateWith([container("a", "abc1"), container("b", "abc2")]), ["since=abc"]))).toBe("container id prefix abc is ambiguous: it starts b, a");
  });

  it("before: a stopped anchor still counts without -a, stopped containers before it stay hidden (daemon/list.go order)", () => {
    const s = stateWith([container("old", "01", { running: false }), container("mid", "02"), container("anchor", "03", { running: false }), container("new", "04")]);
    expect(ps(s, ["before=anchor"])).toEqual(["mid"]);
    expect(ps(s, ["before=anchor"], true)).toEqual(["mid", "old"]);
  });

  it("network: a network's exact name or a prefix of its id", () => {
    const net1 = network("net1", "8c0b4110ae93");
    const s = stateWith([container("test1", "9d4893ed80fe", { net: "net1" }), container("test2", "77", { net: "net2" })], [net1, network("net2", "99")]);
    expect(ps(s, ["network=net1"])).toEqual(["test1"]);
    expect(ps(s, [`network=${net1.id}`])).toEqual(["test1"]);
    expect(ps(s, ["network=8c0b"])).toEqual(["test1"]);
    // the docs say "a name containing net1", but daemon/list.go looks the name up exactly
    expect(ps(s, ["network=net"])).toEqual([]);
    expect(ps(s, ["network=net1", "network=net2"])).toEqual(["test2", "test1"]);
  });

  it("publish / expose: host ports and container ports, ranges and protocols (tcp by default)", () => {
    // moby integration-cli TestPsListContainersFilterPorts: --publish=80 (host port picked), --expose=8080, -p 1090:90
    const s = stateWith([
      container("id1", "01", { ports: [{ hostIp: "0.0.0.0", hostPort: 32768, containerPort: 80, proto: "tcp" }], expose: [[80, "tcp"]] }),
      container("id2", "02", { expose: [[8080, "tcp"]] }),
      container("id3", "03", { ports: [{ hostIp: "0.0.0.0", hostPort: 1090, containerPort: 90, proto: "tcp" }], expose: [[90, "tcp"]] }),
    ]);
    expect(ps(s, ["publish=80-8080/udp"])).toEqual([]);
    expect(ps(s, ["expose=8081"])).toEqual([]);
    // the docs show publish=80 finding 0.0.0.0:32768->80/tcp; moby matches the host port (the test above)
    expect(ps(s, ["publish=80-81"])).toEqual([]);
    expect(ps(s, ["expose=80/tcp"])).toEqual(["id1"]);
    expect(ps(s, ["publish=1090"])).toEqual(["id3"]);
    expect(ps(s, ["expose=90"])).toEqual(["id3"]);
    expect(ps(s, ["expose=8000-8080/tcp"])).toEqual(["id2"]);
    expect(ps(s, ["publish=32768/tcp"])).toEqual(["id1"]);
    // publish and expose together: a port that passes either (one loop over the ports in daemon/list.go)
    expect(ps(s, ["publish=1090", "expose=8080"])).toEqual(["id3", "id2"]);
    expect(refusal(() => ps(s, ["publish=127.0.0.1:80:80"]))).toBe("filter for 'publish' should not contain ':': 127.0.0.1:80:80");
    expect(refusal(() => ps(s, ["expose=90-80"]))).toMatch(/^invalid filter 'expose=90-80'/);
  });
});

describe("net ls --filter (docs: network ls, Filtering)", () => {
  const s = stateWith(
    [container("c1", "c1", { net: "dev" })],
    [network("test1", "db9db329f835", { usage: "dev" }), network("test2", "f6e212da9dfd", { usage: "prod" }), network("foo", "95e74588f40d"), network("foobar", "06e7eef0a170"), network("dev", "63d1ff1f77b0")],
  );

  it("driver, label, name, id, scope, type", () => {
    expect(netLs(s, ["driver=bridge"])).toEqual(["bridge", "dev", "foo", "foobar", "test1", "test2"]);
    expect(netLs(s, ["driver=null"])).toEqual(["none"]);
    expect(netLs(s, ["label=usage"])).toEqual(["test1", "test2"]);
    expect(netLs(s, ["label=usage=prod"])).toEqual(["test2"]);
    expect(netLs(s, ["name=foobar"])).toEqual(["foobar"]);
    expect(netLs(s, ["name=foo"])).toEqual(["foo", "foobar"]);
    expect(netLs(s, [`id=${hexId("63d1ff1f77b0")}`])).toEqual(["dev"]);
    expect(netLs(s, ["id=95e74588f40d"])).toEqual(["foo"]);
    expect(netLs(s, ["id=95e"])).toEqual(["foo"]);
    expect(netLs(s, ["scope=local"])).toHaveLength(8);
    expect(netLs(s, ["scope=swarm"])).toEqual([]);
    expect(netLs(s, ["type=custom"])).toEqual(["dev", "foo", "foobar", "test1", "test2"]);
    // "Multiple filter flags are combined as an OR filter": -f type=custom -f type=builtin returns both
    expect(netLs(s, ["type=custom", "type=builtin"])).toHaveLength(8);
    expect(netLs(s, ["type=builtin", "name=on"])).toEqual(["none"]);
    expect(refusal(() => netLs(s, ["type=user"]))).toBe("invalid filter 'type=user': builtin or custom");
  });

  it("dangling: user networks without containers, or the others (daemon/network/filter.go)", () => {
    expect(netLs(s, ["dangling=true"])).toEqual(["foo", "foobar", "test1", "test2"]);
    expect(netLs(s, ["dangling=0"])).toEqual(["bridge", "dev", "host", "none"]);
    expect(refusal(() => netLs(s, ["dangling=yes"]))).toBe(`invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`);
    expect(refusal(() => netLs(s, ["dangling=true", "dangling=false"]))).toBe(`got more than one value for filter key "dangling"`);
  });
});

describe("net prune --filter (docs: network prune, Filtering)", () => {
  const now = Date.parse("2024-06-02T12:00:00Z");
  const pruned = (filters: string[]) => {
    const s = stateWith([container("c1", "c1", { net: "busy" })], [
      network("foo-1-day-ago", "01", { env: "test" }, "2024-06-01T12:00:00Z"), network("foo-1-min-ago", "02", { env: "prod", keep: "yes" }, "2024-06-02T11:59:00Z"),
      network("busy", "03", {}, "2024-01-01T00:00:00Z"),
    ]);
    return planNetPrune(s, pruneMatcher(parseFilters(filters, NET_PRUNE_FILTERS), now)).removed;
  };

  it("until, label and label!; never a network with containers", () => {
    expect(pruned(["until=5m"])).toEqual(["foo-1-day-ago"]);
    expect(pruned(["until=2024-06-02T00:00:00Z"])).toEqual(["foo-1-day-ago"]);
    expect(pruned(["until=1717243200"])).toEqual(["foo-1-day-ago"]);
    expect(pruned([])).toEqual(["foo-1-day-ago", "foo-1-min-ago"]);
    expect(pruned(["label=env"])).toEqual(["foo-1-day-ago", "foo-1-min-ago"]);
    expect(pruned(["label=env=prod"])).toEqual(["foo-1-min-ago"]);
    expect(pruned(["label!=keep"])).toEqual(["foo-1-day-ago"]);
    expect(pruned(["label=env", "until=5m"])).toEqual(["foo-1-day-ago"]);
    // moby Args.MatchKVList: both labels must hold (moby#40286, docker/cli#6918), though the docs since 2026 say either
    expect(pruned(["label=env=prod", "label=keep"])).toEqual(["foo-1-min-ago"]);
    expect(pruned(["label=env=test", "label=keep"])).toEqual([]);
  });

  it("refuses a second until and a time it cannot read", () => {
    expect(refusal(() => pruned(["until=1h", "until=2h"]))).toBe("more than one until filter specified");
    expect(refusal(() => pruned(["until=yesterday"]))).toMatch(/^invalid filter 'until=yesterday'/);
  });

  it("reads until like moby's timestamp.Parse: Go durations, RFC 3339 (local without a zone), Unix seconds", () => {
    expect(parseTimestamp("1h30m", now)).toBe(now - 90 * 60_000);
    expect(parseTimestamp("1.5h", now)).toBe(now - 90 * 60_000);
    expect(parseTimestamp("2024-06-01T10:00:00+02:00", now)).toBe(Date.parse("2024-06-01T08:00:00Z"));
    expect(parseTimestamp("2024-06-01", now)).toBe(new Date(2024, 5, 1).getTime());
    expect(parseTimestamp("1717243200.5", now)).toBe(1717243200500);
    expect(() => parseTimestamp("10x", now)).toThrow(UsageError);
  });
});
