// The state file's format. JSON lines (format 2): a header line with the networks, the sysctls, the
// generation and a digest of every container (model.ts, ContainerDigest), then one line per container
// record, in the digests' order. A command parses a record only when it reads it, and writes the lines
// of the records it never read back as they were: `run` on a network of 1000 containers parses and
// serialises its own record and the digests, not 1000 records (docs/performance.md). Format 1, one JSON
// object, is still read; the next write turns it into format 2.
import type { ContainerDigest, ContainerRecord, State } from "../model.js";

interface Header {
  version: 2;
  generation?: number;
  madeDirs?: string[];
  cluster?: State["cluster"];
  networks: State["networks"];
  sysctls: State["sysctls"];
  containers: ContainerDigest[];
}

/** A record as it is in the file, not parsed yet. */
class Unread {
  constructor(
    readonly line: string,
    readonly digest: ContainerDigest,
  ) {}
}

type Slot = ContainerRecord | Unread;

/** A record's line in the file: as it was read when no one parsed it. */
const lineOf = (slot: Slot) => (slot instanceof Unread ? slot.line : JSON.stringify(slot));

/** The slots behind each state's containers read from a file (see decodeState), by its proxy. */
const slotsOf = new WeakMap<State["containers"], Map<string, Slot>>();

export const digestOf = (c: ContainerRecord): ContainerDigest => ({
  name: c.name, mode: c.mode, hostname: c.hostname,
  endpoints: c.endpoints.map(({ network, ip, hostIf, aliases }) => ({ network, ip, hostIf, aliases })),
});

/**
 * What queries over every container read (see ContainerDigest): the digest kept in the file for a record
 * no one has read, the record itself for the others. Reading them parses no record.
 */
export function containerDigests(state: State): ContainerDigest[] {
  const slots = slotsOf.get(state.containers);
  if (!slots) return Object.values(state.containers);
  return Array.from(slots.values(), (slot) => (slot instanceof Unread ? slot.digest : slot));
}

/** Every container record, parsing the ones not read yet: what a lookup by id reads (ids are not in the digests). */
export function containerRecords(state: State): ContainerRecord[] {
  const slots = slotsOf.get(state.containers);
  if (!slots) return Object.values(state.containers);
  return Array.from(slots, ([name, slot]) => (slot instanceof Unread ? state.containers[name] : slot));
}

export function encodeState(state: State): string {
  const slots = slotsOf.get(state.containers) ?? new Map(Object.entries(state.containers));
  const header: Header = {
    version: 2,
    ...(state.generation === undefined ? {} : { generation: state.generation }),
    ...(state.madeDirs === undefined ? {} : { madeDirs: state.madeDirs }),
    ...(state.cluster === undefined ? {} : { cluster: state.cluster }),
    networks: state.networks,
    sysctls: state.sysctls,
    containers: Array.from(slots.values(), (slot) => (slot instanceof Unread ? slot.digest : digestOf(slot))),
  };
  let text = JSON.stringify(header) + "\n";
  for (const slot of slots.values()) text += lineOf(slot) + "\n";
  return text;
}

/**
 * The state as one JSON object (format 1), the records no one read copied as their lines: what a journal
 * holds of the state its plan leads to, without parsing 1000 records to serialise them again.
 */
export function stateJson(state: State): string {
  const slots = slotsOf.get(state.containers);
  if (!slots) return JSON.stringify(state);
  const { containers: _, ...rest } = state;
  const records = Array.from(slots, ([name, slot]) => `${JSON.stringify(name)}:${lineOf(slot)}`);
  // rest always has version, networks and sysctls: its text ends in "}" after them
  return `${JSON.stringify(rest).slice(0, -1)},"containers":{${records.join(",")}}}`;
}

/**
 * Parses a state file's text; a record is parsed when first read. `corrupt` makes the error for a record
 * line found broken then (the file as a whole is checked here: its header, and one line per digest).
 */
export function decodeState(text: string, corrupt: (err: Error) => Error = (err) => err): State {
  const firstLine = text.indexOf("\n");
  const head = JSON.parse(firstLine < 0 ? text : text.slice(0, firstLine));
  if (head?.version === 1) {
    const state = head as State;
    if (typeof state.networks !== "object" || typeof state.containers !== "object") throw new Error("not a ctnet state (format 1)");
    state.sysctls ??= {};
    return state;
  }
  if (head?.version !== 2 || typeof head.networks !== "object" || typeof head.sysctls !== "object" || !Array.isArray(head.containers)) {
    throw new Error("not a ctnet state (format 1 or 2)");
  }
  const header = head as Header;
  const lines = text.slice(firstLine + 1).split("\n");
  if (lines.pop() !== "" || lines.length !== header.containers.length) {
    throw new Error(`${header.containers.length} containers listed, ${lines.length} records found`);
  }
  const slots = new Map<string, Slot>();
  header.containers.forEach((digest, i) => slots.set(digest.name, new Unread(lines[i], digest)));
  const read = (name: string): ContainerRecord | undefined => {
    const slot = slots.get(name);
    if (!(slot instanceof Unread)) return slot;
    let record: ContainerRecord;
    try {
      record = JSON.parse(slot.line);
    } catch (err: any) {
      throw corrupt(new Error(`record of container ${name}: ${err.message}`));
    }
    if (record?.name !== name) throw corrupt(new Error(`the record listed as container ${name} is ${JSON.stringify(record?.name)}'s`));
    slots.set(name, record);
    return record;
  };
  // containers as a plain object would behave, kept in a Map: giving a plain object 1000 properties, or
  // 1000 lazy ones, took longer than parsing every record. A property reads as an accessor so that
  // listing the names (Object.keys) parses nothing.
  const containers = new Proxy({} as State["containers"], {
    get: (target, name) => (typeof name === "string" && slots.has(name) ? read(name) : Reflect.get(target, name)),
    set: (target, name, value) => (typeof name === "string" ? (slots.set(name, value), true) : Reflect.set(target, name, value)),
    has: (target, name) => (typeof name === "string" && slots.has(name)) || Reflect.has(target, name),
    deleteProperty: (target, name) => (typeof name === "string" ? slots.delete(name) || true : Reflect.deleteProperty(target, name)),
    ownKeys: () => [...slots.keys()],
    getOwnPropertyDescriptor: (_target, name) =>
      typeof name === "string" && slots.has(name)
        ? { get: () => read(name), set: (value: ContainerRecord) => slots.set(name, value), enumerable: true, configurable: true }
        : undefined,
    defineProperty: () => false,
  });
  slotsOf.set(containers, slots);
  const state: State = { version: 1, networks: header.networks, containers, sysctls: header.sysctls };
  if (header.generation !== undefined) state.generation = header.generation;
  if (header.madeDirs !== undefined) state.madeDirs = header.madeDirs;
  if (header.cluster !== undefined) state.cluster = header.cluster;
  return state;
}
