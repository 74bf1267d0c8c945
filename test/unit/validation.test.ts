// Bad input is refused while planning, before any step: one line that names what is wrong. These run
// the planners against an in-memory state (they read the host's routes and links, but change nothing).
import { describe, expect, it } from "vitest";
import { planRm, planRun, type RunOptions } from "../../src/commands/containers.js";
import { planStop } from "../../src/commands/lifecycle.js";
import { UsageError } from "../../src/errors.js";
import { emptyState, type State } from "../../src/model.js";
import { planConnect, planDisconnect, planNetCreate, planNetRm, type CreateNetworkOptions } from "../../src/commands/networks.js";
import { processStartTime } from "../../src/store/store.js";

/** red 10.9.0.0/24 with u1 (running: it is this test's own process) at .2 and u2 (stopped) at .3. */
function fixture(): State {
  const s = emptyState();
  s.networks.red = {
    name: "red", id: "a".repeat(64), created: "2024-01-01T00:00:00.000Z", driver: "bridge", bridge: "ctbr-red",
    subnet: "10.9.0.0/24", gateway: "10.9.0.1", internal: false, options: {}, labels: {},
  };
  const ctr = (name: string, ip: string, running: boolean) => ({
    name, id: name.repeat(32).slice(0, 64), created: "2024-01-01T00:00:00.000Z", hostname: name, mode: "bridge" as const, netns: name,
    endpoints: [{ network: "red", id: "e".repeat(64), ifname: "eth0", hostIf: `ve-${name}.red`, ip, prefixLen: 24, mac: "02:42:0a:09:00:02", aliases: [] }],
    command: ["sleep", "infinity"], env: {}, pid: running ? process.pid : null, pidStart: running ? processStartTime(process.pid) : null,
    ports: [], expose: [],
  });
  s.containers.u1 = ctr("u1", "10.9.0.2", true);
  s.containers.u2 = ctr("u2", "10.9.0.3", false);
  return s;
}

/** Runs a planner and returns its UsageError message; the state must come out untouched. */
function refusal(plan: (s: State) => unknown): string {
  const state = fixture();
  const before = JSON.stringify(state);
  let err: unknown;
  try {
    plan(state);
  } catch (e) {
    err = e;
  }
  expect(err, "expected a UsageError").toBeInstanceOf(UsageError);
  const message = (err as Error).message;
  expect(message).not.toContain("\n");
  expect(JSON.stringify(state)).toBe(before);
  return message;
}

const create = (name: string, o: CreateNetworkOptions = {}) => (s: State) => planNetCreate(s, name, o);
const run = (o: Partial<RunOptions>) => (s: State) => planRun(s, "/nonexistent-state", { command: [], detach: true, ...o });

describe("net create refuses", () => {
  it.each<[string, CreateNetworkOptions, string | RegExp]>([
    ["bad name", {}, 'invalid network name "bad name": must match [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}'],
    ["bridge", {}, "network name bridge is predefined and cannot be created"],
    ["host", {}, "network name host is predefined and cannot be created"],
    ["red", {}, "network with name red already exists"],
    ["n1", { driver: "weave" }, 'unknown network driver "weave": known are bridge, macvlan, ipvlan, overlay, host, null'],
    // the local path cannot make one: net create -d overlay goes to the cluster (src/cluster/overlayrun.ts)
    ["n1", { driver: "overlay" }, "overlay networks are made by 'ctnet net create -d overlay' on a host that joined a cluster (lab files cannot make them yet)"],
    ["n1", { opt: ["color=blue"] }, 'unknown network option "color": known are com.docker.network.bridge.name, com.docker.network.bridge.enable_icc, com.docker.network.bridge.enable_ip_masquerade, com.docker.network.bridge.host_binding_ipv4, com.docker.network.driver.mtu (or icc, masquerade, mtu)'],
    ["n1", { opt: ["mtu=9"] }, 'invalid mtu "9": must be 576..65535'],
    ["n1", { opt: ["icc=yes"] }, 'invalid value for icc: "yes" (true or false)'],
    ["n1", { opt: ["novalue"] }, 'invalid option "novalue": expected KEY=VALUE'],
    ["n1", { label: ["=x"] }, 'invalid label "=x": expected KEY=VALUE'],
    ["n1", { gateway: "10.8.0.1" }, "--gateway needs --subnet"],
    ["n1", { ipRange: "10.8.0.0/28" }, "--ip-range needs --subnet"],
    ["n1", { subnet: "10.8.0.0/33" }, 'invalid subnet "10.8.0.0/33": expected a CIDR like 10.10.0.0/24'],
    ["n1", { subnet: "10.8.0.9/24" }, "invalid subnet 10.8.0.9/24: host bits are set (did you mean 10.8.0.0/24?)"],
    ["n1", { subnet: "10.9.0.128/25" }, "subnet 10.9.0.128/25 overlaps ctnet network red"],
    ["n1", { subnet: "127.0.0.0/16" }, "subnet 127.0.0.0/16 overlaps 127.0.0.0/8, which is loopback"],
    ["n1", { subnet: "224.0.0.0/16" }, "subnet 224.0.0.0/16 overlaps 224.0.0.0/4, which is multicast"],
    ["n1", { subnet: "0.0.0.0/16" }, "subnet 0.0.0.0/16 overlaps 0.0.0.0/8, which is the 'this network' range"],
    ["n1", { subnet: "10.8.0.0/24", gateway: "10.8.0.0" }, "gateway 10.8.0.0 is not a usable host address of 10.8.0.0/24"],
    ["n1", { subnet: "10.8.0.0/24", gateway: "10.8.0.255" }, "gateway 10.8.0.255 is not a usable host address of 10.8.0.0/24"],
    ["n1", { subnet: "10.8.0.0/24", gateway: "10.7.0.1" }, "gateway 10.7.0.1 is not a usable host address of 10.8.0.0/24"],
    ["n1", { subnet: "10.8.0.0/24", gateway: "10.8.0" }, 'invalid gateway "10.8.0": not an IPv4 address'],
    ["n1", { subnet: "10.8.0.0/24", ipRange: "10.8.1.0/28" }, "ip-range 10.8.1.0/28 is not inside subnet 10.8.0.0/24"],
    ["n1", { subnet: "10.8.0.0/24", ipRange: "10.8.0.0/23" }, "ip-range 10.8.0.0/23 is not inside subnet 10.8.0.0/24"],
  ])("%s %j", (name, o, message) => {
    expect(refusal(create(name, o))).toBe(message);
  });
});

describe("run refuses", () => {
  it.each<[Partial<RunOptions>, string]>([
    [{ name: "u1" }, "container name u1 is already in use"],
    [{ name: "-u" }, 'invalid container name "-u": must match [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}'],
    [{ name: "c1", net: "green" }, "network green not found"],
    [{ name: "c1", net: "container:nobody" }, "no such container: nobody"],
    [{ name: "c1", net: "container:u2" }, "cannot join container u2: it is not running"],
    [{ name: "c1", net: "container:u1", hostname: "h" }, "conflicting options: --hostname and --net container:NAME"],
    [{ name: "c1", net: "host", ip: "10.9.0.5" }, "--ip and --network-alias need a bridge network, not --net host"],
    [{ name: "c1", net: "none", networkAlias: ["a"] }, "--ip and --network-alias need a bridge network, not --net none"],
    [{ name: "c1", net: "red", ip: "10.8.0.5" }, "--ip 10.8.0.5 is outside network red's subnet 10.9.0.0/24"],
    [{ name: "c1", net: "red", ip: "10.9.0.2" }, "--ip 10.9.0.2 is already in use on network red"],
    [{ name: "c1", net: "red", ip: "10.9.0.1" }, "--ip 10.9.0.1 is the gateway of network red"],
    [{ name: "c1", net: "red", ip: "10.9.0.255" }, "--ip 10.9.0.255 is not a usable host address of 10.9.0.0/24"],
    [{ name: "c1", net: "red", ip: "10.9.0" }, 'invalid --ip "10.9.0": not an IPv4 address'],
    [{ name: "c1", net: "red", networkAlias: ["no way"] }, 'invalid alias name "no way": must match [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}'],
    [{ name: "c1", net: "red", hostname: "under_score" }, 'invalid hostname "under_score"'],
    [{ name: "c1", net: "red", command: ["no-such-program-xyz"] }, "executable file not found in $PATH: no-such-program-xyz"],
    [{ name: "c1", net: "red", command: ["/no/such/file"] }, "executable not found: /no/such/file"],
    [{ name: "c1", net: "red", env: ["=x"] }, 'invalid environment variable "=x": expected KEY=VALUE'],
  ])("%j", (o, message) => {
    expect(refusal(run(o))).toBe(message);
  });

  it("a 1024th endpoint on one network: the kernel's bridge takes 1023 ports", () => {
    const full = fixture();
    full.networks.red.subnet = "10.9.0.0/20";
    const template = full.containers.u2;
    for (let i = 3; i <= 1023; i++) {
      const name = `f${i}`;
      full.containers[name] = { ...template, name, netns: name, endpoints: [{ ...template.endpoints[0], hostIf: `ve-${name}.red`, ip: `10.9.${(i + 1) >> 8}.${(i + 1) & 255}` }] };
    }
    expect(Object.keys(full.containers)).toHaveLength(1023);
    expect(() => planRun(full, "/x", { name: "c1", net: "red", command: [], detach: true })).toThrow(
      new UsageError("network red is full: a Linux bridge takes at most 1023 interfaces"),
    );
    delete full.containers.f1023;
    expect(planRun(full, "/x", { name: "c1", net: "red", command: [], detach: true }).container.endpoints[0].ip).toBe("10.9.4.0");
  });
});

describe("other commands refuse", () => {
  it.each<[string, (s: State) => unknown, string]>([
    ["rm of a running container without -f", (s) => planRm(s, "/x", ["u1"], false), "container u1 is running: stop it first or use rm -f"],
    ["rm of an unknown container", (s) => planRm(s, "/x", ["u2", "ghost"], true), "no such container: ghost"],
    ["stop of an unknown container", (s) => planStop(s, "/nonexistent", ["ghost"]), "no such container: ghost"],
    ["net rm of a network in use", (s) => planNetRm(s, ["red"]), "network red has active endpoints (u1, u2)"],
    ["net rm of a predefined network", (s) => planNetRm(s, ["none"]), "network none is predefined and cannot be removed"],
    ["net rm of an unknown network", (s) => planNetRm(s, ["green"]), "network green not found"],
    ["connect twice", (s) => planConnect(s, "red", "u1", {}), "container u1 is already connected to network red"],
    ["connect to host", (s) => planConnect(s, "host", "u1", {}), "container cannot be connected to the host network"],
    ["connect to an unknown network", (s) => planConnect(s, "green", "u1", {}), "network green not found"],
    ["connect an unknown container", (s) => planConnect(s, "red", "ghost", {}), "no such container: ghost"],
    ["disconnect from a network it is not on", (s) => planDisconnect(s, "host", "u1"), "container u1 is not connected to network host"],
    ["disconnect from an unknown network", (s) => planDisconnect(s, "blue", "u1"), "network blue not found"],
  ])("%s", (_what, plan, message) => {
    expect(refusal(plan)).toBe(message);
  });
});

describe("valid input", () => {
  it("run on a user network plans names (the namespace's mark), namespace, veth, address and route, in that order", () => {
    const state = fixture();
    const { plan, container } = planRun(state, "/var/lib/ctnet", { name: "c9", net: "red", networkAlias: ["web"], command: [], detach: true });
    expect(container.endpoints[0]).toMatchObject({ ip: "10.9.0.4", ifname: "eth0", hostIf: "ve-c9.red", mac: "02:42:0a:09:00:04", aliases: ["web"] });
    const lines = plan.steps.map((s) => (s.kind === "cmd" || s.kind === "spawn" ? s.argv.join(" ") : s.kind === "write" || s.kind === "link" ? `${s.kind} ${s.path}` : s.kind));
    const order = [
      "write /etc/netns/c9/hosts",
      "write /etc/netns/c9/resolv.conf",
      "ip netns add c9",
      "ip link add ve-c9.red master ctbr-red up type veth peer name eth0 address 02:42:0a:09:00:04 netns c9",
      "ip link set ve-c9.red alias ctnet:veth:c9/red",
      "ip -n c9 addr add 10.9.0.4/24 dev eth0",
      "ip -n c9 route add default via 10.9.0.1",
      "write /var/lib/ctnet/dns/red",
    ].map((l) => lines.indexOf(l));
    expect(order.every((i) => i >= 0), lines.join("\n")).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // its neighbours on red learn its name through the DNS server's file of red, theirs are not rewritten;
    // the process starts last
    expect(lines.filter((l) => l.startsWith("write /etc/netns/u"))).toEqual([]);
    expect(plan.steps.at(-1)).toMatchObject({ kind: "spawn", argv: expect.arrayContaining(["ip", "netns", "exec", "c9", "sleep", "infinity"]) });
    expect(state.containers.c9).toBe(container);
  });

  it("-itd keeps an idle process instead of a shell that would read EOF and exit", () => {
    const { container } = planRun(fixture(), "/x", { name: "c9", net: "red", interactive: true, tty: true, detach: true, command: [] });
    expect(container.command).toEqual(["sleep", "infinity"]);
    const fg = planRun(fixture(), "/x", { name: "c9", net: "red", interactive: true, tty: true, command: [] });
    expect(fg.container.command[0]).toMatch(/\/bin\/(ba)?sh$/);
  });

  it("-d --rm adds a watcher, started after the container's process, that removes it by id", () => {
    const { plan, container } = planRun(fixture(), "/var/lib/ctnet", { name: "c9", net: "red", rm: true, detach: true, command: [] });
    const [main, watcher] = plan.steps.slice(-2);
    expect(main).toMatchObject({ kind: "spawn", container: "c9" });
    expect(watcher).toMatchObject({ kind: "spawn", argv: expect.arrayContaining(["--state-dir", "/var/lib/ctnet", "autoremove", container.id]) });
  });

  it("rm deletes the namespace with its veth pairs and waits until their host ends are gone", () => {
    const state = fixture();
    state.containers.u1.pid = null;
    const plan = planRm(state, "/x", ["u2"], false);
    const lines = plan.steps.map((s) => (s.kind === "cmd" ? s.argv.join(" ") : s.kind === "write" ? `write ${s.path}` : s.kind));
    const del = lines.indexOf("ip netns del u2");
    expect(del).toBeGreaterThanOrEqual(0);
    expect(lines[del + 1]).toMatch(/^sh -c .* sh \/sys\/class\/net\/ve-u2\.red$/);
    expect(lines).not.toContain("ip link del ve-u2.red");
    expect(state.containers.u2).toBeUndefined();
  });
});
