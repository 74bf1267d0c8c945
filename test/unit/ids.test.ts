// Containers and networks by name, full id or id prefix, in Docker's order: an exact full id, then an
// exact name, then a unique id prefix; an ambiguous prefix is refused naming its candidates.
// Containers: moby daemon/container.go GetContainer (and its "multiple IDs found with provided prefix").
// Networks: moby daemon/network.go FindNetwork ("network X is ambiguous (2 matches found based on ID prefix)").
import { describe, expect, it } from "vitest";
import { planRm, planRun } from "../../src/commands/containers.js";
import { planStop } from "../../src/commands/lifecycle.js";
import { UsageError } from "../../src/errors.js";
import { emptyState, type ContainerRecord, type NetworkRecord, type State } from "../../src/model.js";
import { findContainer, inspectNetwork, planConnect, planNetRm, resolveNetwork } from "../../src/commands/networks.js";
import { predefinedId } from "../../src/naming.js";
import { decodeState, encodeState } from "../../src/store/statefile.js";

const WEB_ID = "ab12" + "0".repeat(60);
const DB_ID = "ab34" + "0".repeat(60);
const RED_ID = "cd12" + "1".repeat(60);
const BLUE_ID = "cd34" + "1".repeat(60);

const network = (name: string, id: string, subnet: string): NetworkRecord => ({
  name, id, created: "2026-01-01T00:00:00.000Z", driver: "bridge", bridge: `ctbr-${name}`,
  subnet: `${subnet}.0/24`, gateway: `${subnet}.1`, internal: false, options: {}, labels: {},
});

const container = (name: string, id: string, ip: string): ContainerRecord => ({
  name, id, created: "2026-01-01T00:00:00.000Z", hostname: name, mode: "bridge", netns: name,
  endpoints: [{ network: "red", id: "e".repeat(64), ifname: "eth0", hostIf: `ve-${name}.red`, ip, prefixLen: 24, mac: "02:42:0a:00:00:02", aliases: [] }],
  command: ["sleep", "infinity"], env: {}, pid: null, pidStart: null, ports: [], expose: [],
});

/** web and db on red, their ids sharing the prefix "ab"; blue unused, its id sharing "cd" with red's. */
function fixture(): State {
  const s = emptyState();
  s.networks.red = network("red", RED_ID, "10.9.1");
  s.networks.blue = network("blue", BLUE_ID, "10.9.2");
  s.containers.web = container("web", WEB_ID, "10.9.1.2");
  s.containers.db = container("db", DB_ID, "10.9.1.3");
  return s;
}

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error("expected a refusal");
};

describe("a container", () => {
  it("by its full id, any unique id prefix (even one character), or its name", () => {
    const s = fixture();
    expect(findContainer(s, WEB_ID).name).toBe("web");
    expect(findContainer(s, "ab1").name).toBe("web");
    expect(findContainer(s, "ab3").name).toBe("db");
    expect(findContainer(s, "db").name).toBe("db");
    s.containers.x = container("x", "f" + "0".repeat(63), "10.9.1.4");
    expect(findContainer(s, "f").name).toBe("x");
  });

  it("an ambiguous id prefix is refused, naming the candidates", () => {
    expect(refusal(() => findContainer(fixture(), "ab"))).toBe("container id prefix ab is ambiguous: it matches web, db");
  });

  it("a name wins over an id prefix, and a full id over a name", () => {
    const s = fixture();
    s.containers.ab = container("ab", "9".repeat(64), "10.9.1.4");
    expect(findContainer(s, "ab").name).toBe("ab");
    // a container may be named like another's full id: the id wins, as in Docker
    s.containers[DB_ID] = container(DB_ID, "8".repeat(64), "10.9.1.5");
    expect(findContainer(s, DB_ID).name).toBe("db");
  });

  it("nothing else: an unknown name, the empty string, a property every object has", () => {
    for (const term of ["ghost", "ab5", "", "constructor"]) expect(refusal(() => findContainer(fixture(), term))).toBe(`no such container: ${term}`);
  });

  it("by name, in a state read from its file, parses no other record", () => {
    const text = encodeState(fixture());
    const broken = text.split("\n").map((l) => (l.startsWith('{"name":"db"') ? l.slice(0, 20) : l)).join("\n");
    expect(findContainer(decodeState(broken), "web").id).toBe(WEB_ID);
    expect(findContainer(decodeState(text), "ab1").name).toBe("web");
  });

  it("rm and stop take ids", () => {
    const s = fixture();
    planStop(s, "/nonexistent", ["ab3"]);
    planRm(s, "/nonexistent-state", [WEB_ID.slice(0, 12), "ab3"], true);
    expect(Object.keys(s.containers)).toEqual([]);
  });
});

describe("a network", () => {
  it("by its full id, a unique id prefix, or its name", () => {
    const s = fixture();
    expect(resolveNetwork(s, RED_ID)).toBe("red");
    expect(resolveNetwork(s, RED_ID.slice(0, 12))).toBe("red");
    expect(resolveNetwork(s, "cd3")).toBe("blue");
    expect(resolveNetwork(s, "blue")).toBe("blue");
  });

  it("an ambiguous id prefix is refused, naming the candidates", () => {
    expect(refusal(() => resolveNetwork(fixture(), "cd"))).toBe("network id prefix cd is ambiguous: it matches red, blue");
  });

  it("a name wins over an id prefix, and a full id over a name", () => {
    const s = fixture();
    s.networks.cd = network("cd", "7".repeat(64), "10.9.3");
    expect(resolveNetwork(s, "cd")).toBe("cd");
    s.networks[BLUE_ID] = network(BLUE_ID, "6".repeat(64), "10.9.4");
    expect(resolveNetwork(s, BLUE_ID)).toBe("blue");
  });

  it("bridge, host and none by the ids net ls shows, before the default bridge exists", () => {
    const s = fixture();
    for (const name of ["bridge", "host", "none"]) {
      expect(resolveNetwork(s, predefinedId(name))).toBe(name);
      expect(resolveNetwork(s, predefinedId(name).slice(0, 12))).toBe(name);
      expect((inspectNetwork(s, predefinedId(name).slice(0, 12)) as { Name: string }).Name).toBe(name);
      // docker network rm $(docker network ls -q) refuses the predefined ones by their names
      expect(refusal(() => planNetRm(s, [predefinedId(name).slice(0, 12)]))).toBe(`network ${name} is predefined and cannot be removed`);
    }
  });

  it("net rm, net inspect, net connect and run --net take ids", () => {
    const s = fixture();
    expect((inspectNetwork(s, "cd1") as { Name: string }).Name).toBe("red");
    planConnect(s, BLUE_ID.slice(0, 12), "ab3", {});
    expect(s.containers.db.endpoints.map((e) => e.network)).toEqual(["red", "blue"]);
    const run = planRun(s, "/nonexistent-state", { name: "c1", net: RED_ID, command: [], detach: true });
    expect(run.container.endpoints[0].network).toBe("red");
    expect(planRun(s, "/nonexistent-state", { name: "c2", net: predefinedId("none").slice(0, 12), command: [], detach: true }).container.mode).toBe("none");
    expect(planRun(s, "/nonexistent-state", { name: "c3", net: predefinedId("host"), command: [], detach: true }).container.mode).toBe("host");
    const t = fixture();
    planNetRm(t, [BLUE_ID.slice(0, 12)]);
    expect(Object.keys(t.networks)).toEqual(["red"]);
  });

  it("an unknown one, and a property every object has", () => {
    for (const term of ["green", "cd5", "", "constructor"]) expect(refusal(() => resolveNetwork(fixture(), term))).toBe(`network ${term} not found`);
  });
});
