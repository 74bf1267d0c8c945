// Issue 15, item 10: the shapes scripts read, field by field against what Docker prints.
//   docker/go-units duration_test.go (TestHumanDuration): ps's CREATED and STATUS durations
//   moby container/state.go (State.String, StateString): ps's STATUS and inspect's State.Status
//   test/fixtures/docker-20.10/docker-ps.txt: the columns of `docker ps`, in order
//   test/fixtures/docker-20.10/docker-ubuntu1-netsettings.json: `docker inspect` NetworkSettings, key order
//   docs.docker.com/reference/cli/docker/inspect ("Get an instance's IP address": .NetworkSettings.Networks)
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { humanDuration, inspectContainer, listContainers, psTableRow, PS_COLUMNS, statusText, type InspectFacts } from "../../src/views/containers.js";
import { predefinedId } from "../../src/naming.js";
import { emptyState, type ContainerRecord, type Endpoint, type State } from "../../src/model.js";

const FIXTURES = new URL("../fixtures/docker-20.10/", import.meta.url);
const fixture = (name: string) => fs.readFileSync(new URL(name, FIXTURES), "utf8");

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const MONTH = 30 * DAY;
const YEAR = 365 * DAY;

describe("humanDuration (docker/go-units TestHumanDuration, every case)", () => {
  const cases: Array<[string, number]> = [
    ["Less than a second", 450], ["1 second", SECOND], ["45 seconds", 45 * SECOND], ["46 seconds", 46 * SECOND], ["59 seconds", 59 * SECOND],
    ["About a minute", 60 * SECOND], ["About a minute", MINUTE], ["3 minutes", 3 * MINUTE], ["35 minutes", 35 * MINUTE],
    ["35 minutes", 35 * MINUTE + 40 * SECOND], ["45 minutes", 45 * MINUTE], ["45 minutes", 45 * MINUTE + 40 * SECOND], ["46 minutes", 46 * MINUTE],
    ["59 minutes", 59 * MINUTE], ["About an hour", HOUR], ["About an hour", HOUR + 29 * MINUTE], ["2 hours", HOUR + 31 * MINUTE],
    ["2 hours", HOUR + 59 * MINUTE], ["3 hours", 3 * HOUR], ["3 hours", 3 * HOUR + 29 * MINUTE], ["4 hours", 3 * HOUR + 31 * MINUTE],
    ["4 hours", 3 * HOUR + 59 * MINUTE], ["4 hours", 3 * HOUR + 60 * MINUTE], ["24 hours", 24 * HOUR], ["36 hours", DAY + 12 * HOUR],
    ["2 days", 2 * DAY], ["7 days", 7 * DAY], ["13 days", 13 * DAY + 5 * HOUR], ["2 weeks", 2 * WEEK], ["2 weeks", 2 * WEEK + 4 * DAY],
    ["3 weeks", 3 * WEEK], ["4 weeks", 4 * WEEK], ["4 weeks", 4 * WEEK + 3 * DAY], ["4 weeks", MONTH], ["6 weeks", MONTH + 2 * WEEK],
    ["2 months", 2 * MONTH], ["2 months", 2 * MONTH + 2 * WEEK], ["3 months", 3 * MONTH], ["3 months", 3 * MONTH + WEEK],
    ["5 months", 5 * MONTH + 2 * WEEK], ["13 months", 13 * MONTH], ["23 months", 23 * MONTH], ["24 months", 24 * MONTH],
    ["2 years", 24 * MONTH + 2 * WEEK], ["3 years", 3 * YEAR + 2 * MONTH],
  ];
  it.each(cases)("%s", (text, ms) => expect(humanDuration(ms)).toBe(text));
});

const ID = "eadf310eb841e8a9ef247b5dda26d65bbfa288e8295f1773bc25370be975236e";
const NOW = Date.parse("2026-11-23T18:40:00Z");

function endpoint(network: string, ip: string, extra: Partial<Endpoint> = {}): Endpoint {
  return { network, id: "be31a86287e8689c3de18bc3110faaf3673e06aefb55bef960b851c4a03d0362", ifname: "eth0", hostIf: `ve-ubuntu1.${network}`, ip, prefixLen: 16, mac: "02:42:ac:12:00:02", aliases: [], ...extra };
}

function container(o: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    name: "ubuntu1", id: ID, created: "2026-11-23T18:38:50.000Z", hostname: "ubuntu1", mode: "bridge", netns: "ubuntu1",
    endpoints: [], command: ["sleep", "100000"], env: {}, pid: null, pidStart: null, ports: [], expose: [], ...o,
  };
}

function stateWith(c: ContainerRecord): State {
  const s = emptyState();
  for (const [name, subnet, gateway] of [["red", "172.18.0.0/16", "172.18.0.1"], ["bridge", "172.17.0.0/16", "172.17.0.1"]]) {
    s.networks[name] = { name, id: name === "red" ? "310143edb7661d4af1c98a1504d25bdd4e60d21f1945991a915af9bfd0e8935d" : predefinedId(name), created: "2026-11-23T18:38:49Z", driver: "bridge", bridge: `ctbr-${name}`, subnet, gateway, internal: false, options: {}, labels: {} };
  }
  s.containers[c.name] = c;
  return s;
}

const facts = (o: Partial<InspectFacts> = {}): InspectFacts => ({ running: true, exit: null, pid: 4242, logPath: "/var/lib/ctnet/logs/ubuntu1.log", ...o });
const inspect = (c: ContainerRecord, f: Partial<InspectFacts> = {}) => inspectContainer(stateWith(c), c, facts(f)) as any;

describe("ps STATUS (moby container/state.go State.String)", () => {
  const started = "2026-11-23T18:39:57Z";
  it("running: Up and the time since start, (Paused) when paused", () => {
    expect(statusText(container({ startedAt: started }), true, null, NOW)).toBe("Up 3 seconds");
    expect(statusText(container({ startedAt: started, paused: true }), true, null, NOW)).toBe("Up 3 seconds (Paused)");
  });
  it("exited: the code and the time since it ended; created: Created", () => {
    expect(statusText(container({ startedAt: started }), false, { code: 3, finishedAt: "2026-11-23T18:39:58Z" }, NOW)).toBe("Exited (3) 2 seconds ago");
    expect(statusText(container({ notStarted: true }), false, null, NOW)).toBe("Created");
  });
});

describe("ps columns (test/fixtures/docker-20.10/docker-ps.txt)", () => {
  it("are Docker's, in Docker's order, NAMES last", () => {
    expect(PS_COLUMNS).toEqual(fixture("docker-ps.txt").split("\n")[0].split(/ {2,}/));
  });
  it("a row: short id, the program for IMAGE, the command quoted and cut at 20 as Docker's, networks in {{.Networks}}", () => {
    const c = container({ startedAt: "2026-11-23T18:38:51Z", endpoints: [endpoint("red", "172.18.0.2")], command: ["httpd", "-f", "-p", "80", "-h", "/srv/www"] });
    const [row] = listContainers(stateWith(c), false, new Map(), () => null, () => true);
    expect(Object.keys(row)).toEqual(["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks", "Ports", "RunningFor", "Size", "State", "Status"]);
    expect(row.Networks).toBe("red");
    const cells = psTableRow(row);
    expect(cells.slice(0, 3)).toEqual(["eadf310eb841", "httpd", '"httpd -f -p 80 -h /…"']);
    expect(cells[6]).toBe("ubuntu1");
  });
  it("a stopped container still lists its networks and shows no ports", () => {
    const c = container({ startedAt: "2026-11-23T18:38:51Z", pid: 1, released: [{ network: "red", aliases: [] }], ports: [{ hostIp: "0.0.0.0", hostPort: 8080, containerPort: 80, proto: "tcp" }] });
    const [row] = listContainers(stateWith(c), true, new Map(), () => ({ code: 0, finishedAt: "2026-11-23T18:39:00Z" }), () => false);
    expect([row.Networks, row.Ports, row.State]).toEqual(["red", "", "exited"]);
  });
});

describe("inspect (test/fixtures/docker-20.10/docker-ubuntu1-netsettings.json; docs: docker inspect)", () => {
  const docker = JSON.parse(fixture("docker-ubuntu1-netsettings.json"));

  it("NetworkSettings has Docker's keys in Docker's order, and each network entry too (ctnet's Interface, HostInterface last)", () => {
    const ours = inspect(container({ endpoints: [endpoint("red", "172.18.0.2")] })).NetworkSettings;
    expect(Object.keys(ours)).toEqual(Object.keys(docker));
    expect(Object.keys(ours.Networks.red)).toEqual([...Object.keys(docker.Networks.red), "Interface", "HostInterface"]);
  });

  it("a user network: Docker's values, the top-level fields empty (ubuntu1 on red in the fixture)", () => {
    const ours = inspect(container({ endpoints: [endpoint("red", "172.18.0.2")] })).NetworkSettings;
    const { Interface: _i, HostInterface: _h, DNSNames, ...entry } = ours.Networks.red;
    const { DNSNames: _d, ...dockers } = docker.Networks.red;
    expect(entry).toEqual(dockers);
    // Docker 26+ (API 1.44+) fills DNSNames; the fixture's 20.10 client sees null (docs/json.md)
    expect(DNSNames).toEqual(["ubuntu1", "eadf310eb841"]);
    for (const key of ["EndpointID", "Gateway", "IPAddress", "MacAddress", "Bridge"]) expect(ours[key]).toBe("");
    expect([ours.IPPrefixLen, ours.SecondaryIPAddresses, ours.Ports]).toEqual([0, null, {}]);
  });

  it("the default bridge fills the top-level IPAddress, Gateway, MacAddress, IPPrefixLen, EndpointID", () => {
    const ours = inspect(container({ endpoints: [endpoint("bridge", "172.17.0.2", { mac: "02:42:ac:11:00:02" })] })).NetworkSettings;
    expect(ours).toMatchObject({ IPAddress: "172.17.0.2", Gateway: "172.17.0.1", MacAddress: "02:42:ac:11:00:02", IPPrefixLen: 16, EndpointID: ours.Networks.bridge.EndpointID });
    expect(ours.Networks.bridge).toMatchObject({ Aliases: null, DNSNames: null, IPAMConfig: null });
  });

  it("--net host / none: Networks holds a `host` / `none` entry; --ip: IPAMConfig.IPv4Address", () => {
    for (const mode of ["host", "none"] as const) {
      const ours = inspect(container({ mode, netns: mode === "none" ? "ubuntu1" : null })).NetworkSettings.Networks;
      expect(Object.keys(ours)).toEqual([mode]);
      expect(ours[mode]).toMatchObject({ NetworkID: predefinedId(mode), IPAddress: "", IPAMConfig: null });
    }
    const fixed = inspect(container({ endpoints: [endpoint("red", "172.18.0.9", { requested: { ip: "172.18.0.9" } })] }));
    expect(fixed.NetworkSettings.Networks.red.IPAMConfig).toEqual({ IPv4Address: "172.18.0.9" });
  });

  it("State, Config and HostConfig: Docker's keys in Docker's order, its nulls and empties", () => {
    const c = container({ startedAt: "2026-11-23T18:38:51Z", env: { A: "1" }, expose: [{ containerPort: 80, proto: "tcp" }], endpoints: [endpoint("red", "172.18.0.2")],
      ports: [{ hostIp: "0.0.0.0", hostPort: 8080, containerPort: 80, proto: "tcp" }] });
    const ours = inspect(c);
    expect(Object.keys(ours)).toEqual(["Id", "Created", "Path", "Args", "State", "Image", "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "Platform", "HostConfig", "Config", "NetworkSettings"]);
    expect(ours.State).toEqual({ Status: "running", Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 4242, ExitCode: 0, Error: "", StartedAt: "2026-11-23T18:38:51Z", FinishedAt: "0001-01-01T00:00:00Z" });
    expect(ours.Config).toEqual({ Hostname: "ubuntu1", Domainname: "", User: "", ExposedPorts: { "80/tcp": {} }, Env: ["A=1"], Cmd: ["sleep", "100000"], Image: "", WorkingDir: "", Entrypoint: null, Labels: {} });
    expect(ours.HostConfig).toEqual({
      NetworkMode: "red", PortBindings: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] }, RestartPolicy: { Name: "no", MaximumRetryCount: 0 }, AutoRemove: false,
      Dns: [], DnsOptions: [], DnsSearch: [], ExtraHosts: null, Links: null,
    });
    expect(ours.NetworkSettings.Ports).toEqual({ "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] });
  });

  it("stopped: State exited with its code and end, the network kept without an address, no Ports; created: zero times", () => {
    const c = container({ startedAt: "2026-11-23T18:38:51Z", released: [{ network: "red", aliases: ["web"], requested: { ip: "172.18.0.9" } }] });
    const ours = inspect(c, { running: false, pid: 0, exit: { code: 3, finishedAt: "2026-11-23T18:39:58Z" } });
    expect(ours.State).toMatchObject({ Status: "exited", Running: false, Pid: 0, ExitCode: 3, FinishedAt: "2026-11-23T18:39:58Z" });
    expect(ours.NetworkSettings.Networks.red).toMatchObject({ IPAMConfig: { IPv4Address: "172.18.0.9" }, Aliases: ["eadf310eb841", "web"], NetworkID: "310143edb7661d4af1c98a1504d25bdd4e60d21f1945991a915af9bfd0e8935d", EndpointID: "", IPAddress: "", Gateway: "", IPPrefixLen: 0, MacAddress: "" });
    expect(ours.HostConfig.NetworkMode).toBe("red");
    const created = inspect(container({ notStarted: true }), { running: false, pid: 0 });
    expect(created.State).toMatchObject({ Status: "created", StartedAt: "0001-01-01T00:00:00Z", FinishedAt: "0001-01-01T00:00:00Z", ExitCode: 0 });
    expect(created.HostConfig.NetworkMode).toBe("default");
  });
});
