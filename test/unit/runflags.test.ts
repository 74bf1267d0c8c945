// `run` in Docker's spelling (issue 15): several --network, the long --network form, --mac-address,
// --net-alias, --restart, the flags ctnet refuses, and an image name where ctnet wants a host program.
// Planners run against an in-memory state: they read the host's links, but change nothing.
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/cli.js";
import { planRun, type RunOptions } from "../../src/commands/containers.js";
import { UsageError } from "../../src/errors.js";
import { emptyState, type State } from "../../src/model.js";
import { networkAttachments, parseMac, parseNetworkSpec, refuseDockerOnlyFlags, refuseImageName } from "../../src/cli/runflags.js";

/** Two user networks, red 10.9.0.0/24 and blue 10.8.0.0/24, and nothing on them. */
function fixture(): State {
  const s = emptyState();
  const net = (name: string, subnet: string, gateway: string) => ({
    name, id: name.padEnd(64, "0"), created: "2024-01-01T00:00:00.000Z", driver: "bridge" as const, bridge: `ctbr-${name}`,
    subnet, gateway, internal: false, options: {}, labels: {},
  });
  s.networks.red = net("red", "10.9.0.0/24", "10.9.0.1");
  s.networks.blue = net("blue", "10.8.0.0/24", "10.8.0.1");
  return s;
}

const run = (o: Partial<RunOptions>, state = fixture()) => planRun(state, "/x", { name: "c1", command: [], detach: true, ...o });

/** The UsageError `f` throws: one line, and the state untouched. */
function refusal(f: (s: State) => unknown): string {
  const state = fixture();
  const before = JSON.stringify(state);
  let err: unknown;
  try {
    f(state);
  } catch (e) {
    err = e;
  }
  expect(err, "expected a UsageError").toBeInstanceOf(UsageError);
  expect((err as Error).message).not.toContain("\n");
  expect(JSON.stringify(state)).toBe(before);
  return (err as Error).message;
}

const cmdLines = (steps: ReturnType<typeof run>["plan"]["steps"]) => steps.flatMap((s) => (s.kind === "cmd" ? [s.argv.join(" ")] : []));

describe("several --network (docs.docker.com/reference/cli/docker/container/run/#network: Docker 25+)", () => {
  it("the first is eth0 with the default route, the others follow in order, all in the one run plan", () => {
    const { plan, container } = run({ net: ["red", "blue"] });
    expect(container.endpoints.map((e) => [e.network, e.ifname, e.ip])).toEqual([["red", "eth0", "10.9.0.2"], ["blue", "eth1", "10.8.0.2"]]);
    const lines = cmdLines(plan.steps);
    expect(lines).toContain("ip -n c1 route add default via 10.9.0.1");
    expect(lines.filter((l) => l.includes("route"))).toHaveLength(1);
    expect(lines).toContain("ip link add ve-c1.blue master ctbr-blue up type veth peer name eth1 address 02:42:0a:08:00:02 netns c1");
    // the process starts with both networks in place
    const spawn = plan.steps.findIndex((s) => s.kind === "spawn");
    expect(plan.steps.findIndex((s) => s.kind === "cmd" && s.argv.join(" ").includes("addr add 10.8.0.2/24"))).toBeLessThan(spawn);
  });

  it("--ip, --network-alias and --mac-address go to the first network", () => {
    const { container } = run({ net: ["red", "blue"], ip: "10.9.0.7", networkAlias: ["web"], macAddress: "02:00:00:00:00:07" });
    expect(container.endpoints[0]).toMatchObject({ network: "red", ip: "10.9.0.7", aliases: ["web"], mac: "02:00:00:00:00:07" });
    expect(container.endpoints[1]).toMatchObject({ network: "blue", ip: "10.8.0.2", aliases: [], mac: "02:42:0a:08:00:02" });
  });

  it("the long form gives each network its own ip, aliases and MAC", () => {
    const { container } = run({ net: ["name=red,ip=10.9.0.9,alias=a1,alias=a2", "name=blue,mac-address=02-AA-00-00-00-01"] });
    expect(container.endpoints[0]).toMatchObject({ network: "red", ip: "10.9.0.9", aliases: ["a1", "a2"], mac: "02:42:0a:09:00:09" });
    expect(container.endpoints[1]).toMatchObject({ network: "blue", mac: "02:aa:00:00:00:01" });
  });

  it("a lone --network, as before, and the default bridge without any", () => {
    expect(run({ net: "red" }).container.endpoints.map((e) => e.network)).toEqual(["red"]);
    expect(run({ net: [] }).container.endpoints.map((e) => e.network)).toEqual(["bridge"]);
  });

  // docker/cli container/opts.go parseNetworkOpts and applyContainerOptions
  it.each<[Partial<RunOptions>, string]>([
    [{ net: ["host", "red"] }, "conflicting options: cannot attach both user-defined and non-user-defined network-modes"],
    [{ net: ["red", "bridge"] }, "conflicting options: cannot attach both user-defined and non-user-defined network-modes"],
    [{ net: ["red", "container:x"] }, "conflicting options: cannot attach both user-defined and non-user-defined network-modes"],
    [{ net: ["red", "red"] }, "network red is specified multiple times"],
    [{ net: ["red", "green"] }, "network green not found"],
    [{ net: ["red", "name=blue,ip=10.9.0.5"] }, "--ip 10.9.0.5 is outside network blue's subnet 10.8.0.0/24"],
    [{ net: "name=red,ip=10.9.0.5", ip: "10.9.0.6" }, "conflicting options: cannot specify both --ip and per-network IPv4 address"],
    [{ net: "name=red,alias=a", networkAlias: ["b"] }, "conflicting options: cannot specify both --network-alias and per-network alias"],
    [{ net: "name=red,mac-address=02:00:00:00:00:01", macAddress: "02:00:00:00:00:02" }, "conflicting options: cannot specify both --mac-address and per-network MAC address"],
    [{ net: "host", macAddress: "02:00:00:00:00:01" }, "conflicting options: --mac-address and --net host"],
    [{ net: "red", macAddress: "zz" }, 'invalid --mac-address "zz": not a MAC address (like 02:42:ac:11:00:02)'],
    [{ net: "name=red,ip6=fd00::2" }, "--network ip6= is not supported: ctnet's networks are IPv4 only"],
    [{ net: "name=red,link-local-ip=169.254.1.1" }, "--network link-local-ip= is not supported: ctnet gives a container one address per network"],
    [{ net: "name=red,driver-opt=a=b" }, "--network driver-opt= is not supported: ctnet's bridge driver has no endpoint options"],
    [{ net: "name=red,color=blue" }, 'invalid --network "name=red,color=blue": unknown key color (known: name, alias, ip, ip6, mac-address, link-local-ip, driver-opt)'],
    [{ net: "ip=10.9.0.5" }, 'invalid --network "ip=10.9.0.5": no name=NETWORK'],
  ])("refuses %j", (o, message) => {
    expect(refusal((s) => run(o, s))).toBe(message);
  });
});

describe("--mac-address (docker run --mac-address: a unicast MAC)", () => {
  it.each([
    ["02:42:AC:11:00:02", "02:42:ac:11:00:02"],
    ["02-42-ac-11-00-02", "02:42:ac:11:00:02"],
  ])("%s is %s", (text, mac) => expect(parseMac(text, "--mac-address")).toBe(mac));
  it.each([
    ["01:00:5e:00:00:01", "invalid --mac-address 01:00:5e:00:00:01: a multicast address; an interface needs a unicast one"],
    ["ff:ff:ff:ff:ff:ff", "invalid --mac-address ff:ff:ff:ff:ff:ff: a multicast address; an interface needs a unicast one"],
    ["00:00:00:00:00:00", "invalid --mac-address 00:00:00:00:00:00: the all-zero address"],
    ["02:42:ac:11:00", 'invalid --mac-address "02:42:ac:11:00": not a MAC address (like 02:42:ac:11:00:02)'],
  ])("refuses %s", (text, message) => expect(() => parseMac(text, "--mac-address")).toThrow(new UsageError(message)));

  it("reaches the veth the plan creates", () => {
    const lines = cmdLines(run({ net: "red", macAddress: "02:00:00:00:be:ef" }).plan.steps);
    expect(lines).toContain("ip link add ve-c1.red master ctbr-red up type veth peer name eth0 address 02:00:00:00:be:ef netns c1");
  });
});

describe("the --network value", () => {
  it("is a name, or Docker's long form", () => {
    expect(parseNetworkSpec("red")).toEqual({ target: "red" });
    expect(parseNetworkSpec("name=red, alias=x ,ip=10.9.0.3")).toEqual({ target: "red", aliases: ["x"], ip: "10.9.0.3" });
    expect(networkAttachments(undefined, {})).toEqual([{ target: "bridge" }]);
  });
});

describe("Docker flags ctnet refuses (one line naming the flag)", () => {
  it.each<[Record<string, unknown>, string]>([
    // docs.docker.com/engine/containers/start-containers-automatically: a policy needs the daemon
    [{ restart: "always" }, "--restart always is not supported: ctnet has no daemon to restart a container, only --restart no"],
    [{ restart: "on-failure:3" }, "--restart on-failure:3 is not supported: ctnet has no daemon to restart a container, only --restart no"],
    [{ restart: "unless-stopped" }, "--restart unless-stopped is not supported: ctnet has no daemon to restart a container, only --restart no"],
    [{ restart: "sometimes" }, 'invalid --restart "sometimes": expected no, on-failure[:N], always or unless-stopped'],
    [{ volume: "/a:/b" }, "-v/--volume is not supported: a ctnet container sees the host's files as they are (ctnet isolates the network only); use --verbose to echo commands"],
    [{ capAdd: "NET_ADMIN" }, "--cap-add is not supported: a ctnet container's process has the capabilities of the user running ctnet (ctnet isolates the network only)"],
    [{ sysctl: "net.ipv4.ip_forward=1" }, "--sysctl is not supported: set it once the container runs: ip netns exec NAME sysctl -w KEY=VALUE"],
  ])("%j", (opts, message) => {
    expect(() => refuseDockerOnlyFlags(opts)).toThrow(new UsageError(message));
  });

  it("--restart no is what ctnet does anyway", () => {
    expect(() => refuseDockerOnlyFlags({ restart: "no", privileged: true })).not.toThrow();
  });

  it("run -v is Docker's --volume, refused before anything else; ctnet -v and run --verbose still echo", async () => {
    const parse = (...args: string[]) => buildProgram().parseAsync(["node", "ctnet", ...args]);
    await expect(parse("run", "-v", "/data:/data", "true")).rejects.toThrow(new UsageError(
      "-v/--volume is not supported: a ctnet container sees the host's files as they are (ctnet isolates the network only); use --verbose to echo commands",
    ));
    await expect(parse("run", "--net-alias", "a", "--cap-drop", "ALL", "true")).rejects.toThrow(/^--cap-drop is not supported/);
    const seen: Record<string, unknown>[] = [];
    for (const args of [["-v", "run"], ["run", "--verbose"]]) {
      const program = buildProgram();
      program.commands.find((c) => c.name() === "run")!.action((_cmd, _opts, cmd) => void seen.push(cmd.optsWithGlobals()));
      await program.parseAsync(["node", "ctnet", ...args, "true"]);
    }
    expect(seen.map((o) => o.verbose)).toEqual([true, true]);
  });
});

describe("-P with no port exposed", () => {
  // Docker publishes the image's EXPOSEd ports and says nothing when there are none; ctnet has no images
  it("warns that it publishes nothing, and plans no rule", () => {
    const { warnings, container, plan } = run({ net: "red", publishAll: true });
    expect(warnings).toEqual(["-P publishes nothing: no port is exposed (ctnet has no images to expose any): add --expose PORT or use -p"]);
    expect(container.ports).toEqual([]);
    expect(cmdLines(plan.steps).filter((l) => l.includes("CTNET-DNAT"))).toEqual([]);
    expect(run({ net: "red", publishAll: true, expose: ["80"] }).warnings).toEqual([]);
  });
});

describe("an image name where ctnet wants a command", () => {
  it("is refused with the command line without it", () => {
    const args = ["run", "-itd", "--net=red", "--name", "ubuntu1", "ubuntu"];
    expect(() => refuseImageName(["ubuntu"], args)).toThrow(new UsageError(
      "ubuntu is not a program on this host, and ctnet has no images (a container runs a host program): if ubuntu is an image, leave it out: ctnet run -itd --net=red --name ubuntu1",
    ));
    expect(() => refuseImageName(["nginx:1.25", "nginx", "-g", "daemon off;"], ["run", "-d", "nginx:1.25", "nginx", "-g", "daemon off;"])).toThrow(
      /leave it out: ctnet run -d nginx -g 'daemon off;'$/,
    );
    expect(() => refuseImageName(["library/redis"], ["run", "library/redis"])).toThrow(/^library\/redis is not a program on this host/);
  });

  it("is run when it names a program on the host, as before; paths are left to the executable check", () => {
    expect(() => refuseImageName(["sleep", "1"], ["run", "sleep", "1"])).not.toThrow();
    expect(() => refuseImageName(["/no/such"], ["run", "/no/such"])).not.toThrow();
    expect(() => refuseImageName([], ["run"])).not.toThrow();
  });
});
