// The state file's format: a header with every container's digest, then one line per record, parsed only
// when read and written back untouched when not.
import { describe, expect, it } from "vitest";
import { emptyState, type ContainerRecord, type State } from "../../src/model.js";
import { containerDigests, decodeState, digestOf, encodeState, stateJson } from "../../src/store/statefile.js";

const container = (name: string, ip: string, extra: Partial<ContainerRecord> = {}): ContainerRecord => ({
  name, id: name.padEnd(64, "0"), created: "2026-01-01T00:00:00.000Z", hostname: name, mode: "bridge", netns: name,
  endpoints: [{ network: "big", id: "e".repeat(64), ifname: "eth0", hostIf: `ve-${name}.big`, ip, prefixLen: 24, mac: "02:42:0a:00:00:02", aliases: [] }],
  command: ["sleep", "infinity"], env: {}, pid: 42, pidStart: "1", ports: [], expose: [], ...extra,
});

const stateOf = (...records: ContainerRecord[]): State => {
  const s = emptyState();
  s.generation = 7;
  s.sysctls["net.ipv4.ip_forward"] = { key: "net.ipv4.ip_forward", previous: "0", value: "1" };
  for (const c of records) s.containers[c.name] = c;
  return s;
};

/** the text with the record line of `name` made unparsable */
const breakRecord = (text: string, name: string) =>
  text.split("\n").map((l) => (l.startsWith(`{"name":"${name}"`) ? l.slice(0, 20) : l)).join("\n");

describe("the state file", () => {
  it("round-trips a state: header line with the digests, then one line per record", () => {
    const state = stateOf(container("a", "10.0.0.2"), container("b", "10.0.0.3", { endpoints: [], mode: "none" }));
    const text = encodeState(state);
    const lines = text.split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe("");
    const header = JSON.parse(lines[0]);
    expect(header.version).toBe(2);
    expect(header.containers).toEqual([digestOf(state.containers.a), digestOf(state.containers.b)]);
    expect(JSON.parse(lines[1])).toEqual(state.containers.a);
    expect(JSON.parse(JSON.stringify(decodeState(text)))).toEqual(JSON.parse(JSON.stringify(state)));
    expect(encodeState(decodeState(text))).toBe(text);
  });

  it("parses no record to list names and digests, and writes unread records back as they were", () => {
    const text = breakRecord(encodeState(stateOf(container("a", "10.0.0.2"), container("b", "10.0.0.3"))), "b");
    const state = decodeState(text);
    // b's line is broken, yet nothing that does not read b's record notices
    expect(Object.keys(state.containers)).toEqual(["a", "b"]);
    expect("b" in state.containers).toBe(true);
    expect(containerDigests(state).map((d) => d.endpoints[0].ip)).toEqual(["10.0.0.2", "10.0.0.3"]);
    state.containers.a.pid = null;
    const again = encodeState(state);
    expect(again.split("\n")[2]).toBe(text.split("\n")[2]);
    expect(JSON.parse(again.split("\n")[1]).pid).toBeNull();
    // reading it is an error naming the container, raised by the reader given
    expect(() => state.containers.b).toThrow(/record of container b/);
    const named = decodeState(text, (err) => new Error(`wrapped: ${err.message}`));
    expect(() => Object.values(named.containers)).toThrow(/^wrapped: record of container b/);
  });

  it("a record read and changed is written, digest included; a removed name that comes back is the new record", () => {
    const state = decodeState(encodeState(stateOf(container("a", "10.0.0.2"), container("b", "10.0.0.3"))));
    state.containers.a.endpoints[0].aliases.push("web");
    delete state.containers.b;
    expect("b" in state.containers).toBe(false);
    expect(state.containers.b).toBeUndefined();
    state.containers.b = container("b", "10.0.0.9");
    state.containers.c = container("c", "10.0.0.4");
    const back = decodeState(encodeState(state));
    expect(Object.keys(back.containers)).toEqual(["a", "b", "c"]);
    expect(containerDigests(back).map((d) => [d.name, d.endpoints[0].ip, d.endpoints[0].aliases])).toEqual([
      ["a", "10.0.0.2", ["web"]], ["b", "10.0.0.9", []], ["c", "10.0.0.4", []],
    ]);
    expect(back.containers.b.endpoints[0].ip).toBe("10.0.0.9");
    expect(back.generation).toBe(7);
  });

  it("behaves as a plain object for the ways ctnet reads containers", () => {
    const state = decodeState(encodeState(stateOf(container("a", "10.0.0.2"), container("b", "10.0.0.3"))));
    expect(Object.entries(state.containers).map(([k, v]) => [k, v.endpoints[0].ip])).toEqual([["a", "10.0.0.2"], ["b", "10.0.0.3"]]);
    expect({ ...state.containers }.b.name).toBe("b");
    expect(Object.getOwnPropertyDescriptor(state.containers, "a")?.enumerable).toBe(true);
    expect(state.containers.hasOwnProperty("a")).toBe(true);
    expect(String(state.containers)).toBe("[object Object]");
    expect(state.containers.zzz).toBeUndefined();
  });

  it("reads format 1 (one JSON object), and the truncated or foreign file is an error", () => {
    const old = stateOf(container("a", "10.0.0.2"));
    const v1 = decodeState(JSON.stringify(old) + "\n");
    expect(v1.containers.a.endpoints[0].ip).toBe("10.0.0.2");
    expect(decodeState(encodeState(v1)).containers.a).toEqual(old.containers.a);
    const text = encodeState(stateOf(container("a", "10.0.0.2"), container("b", "10.0.0.3")));
    expect(() => decodeState(text.split("\n").slice(0, 2).join("\n") + "\n")).toThrow(/2 containers listed, 1 records found/);
    expect(() => decodeState(text.slice(0, -1))).toThrow(/records found/);
    const swapped = text.split("\n");
    [swapped[1], swapped[2]] = [swapped[2], swapped[1]];
    expect(() => decodeState(swapped.join("\n")).containers.a).toThrow(/listed as container a is "b"'s/);
    expect(() => decodeState('{"version":3}')).toThrow(/not a ctnet state/);
  });

  it("gives the state as one JSON object (what a journal holds) from the records' lines, parsing none", () => {
    const original = stateOf(container("a", "10.0.0.2"), container("b", "10.0.0.3"));
    const state = decodeState(encodeState(original));
    state.containers.a.pid = null;
    delete state.containers.b;
    state.containers.c = container("c", "10.0.0.4");
    const expected = JSON.parse(JSON.stringify({ ...original, containers: { a: { ...original.containers.a, pid: null }, c: state.containers.c } }));
    expect(JSON.parse(stateJson(state))).toEqual(expected);
    expect(JSON.parse(stateJson(original))).toEqual(JSON.parse(JSON.stringify(original)));
    // an unread record is copied, not parsed: a broken one goes through as it is
    const broken = decodeState(breakRecord(encodeState(original), "b"));
    expect(stateJson(broken)).toContain(`"b":{"name":"b"`);
  });
});
