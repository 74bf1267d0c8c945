// The JSON store: atomic replacement, the previous version kept, room claimed before a plan runs, a lock
// that waits for live holders and dies with its holder, and corruption reported, never silently reset.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import { emptyState, type State } from "../../src/model.js";
import { decodeState } from "../../src/store/statefile.js";
import { acquireLock } from "../../src/store/lock.js";
import { Store, processAlive, processStartTime, resolveStateDir } from "../../src/store/store.js";

const dirs: string[] = [];
const newStore = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-store-"));
  dirs.push(d);
  return new Store(path.join(d, "state"));
};
afterEach(() => {
  while (dirs.length) fs.rmSync(dirs.pop()!, { recursive: true, force: true });
});

const withNetwork = (name: string): State => {
  const s = emptyState();
  s.networks[name] = {
    name, id: "f".repeat(64), created: "2024-01-01T00:00:00.000Z", driver: "bridge", bridge: `ctbr-${name}`,
    subnet: "10.9.0.0/24", gateway: "10.9.0.1", internal: false, options: {}, labels: {},
  };
  return s;
};

describe("state dir", () => {
  it("comes from --state-dir, then CTNET_STATE_DIR, then /var/lib/ctnet", () => {
    const saved = process.env.CTNET_STATE_DIR;
    try {
      process.env.CTNET_STATE_DIR = "/tmp/from-env";
      expect(resolveStateDir("/tmp/from-flag")).toBe("/tmp/from-flag");
      expect(resolveStateDir()).toBe("/tmp/from-env");
      delete process.env.CTNET_STATE_DIR;
      expect(resolveStateDir()).toBe("/var/lib/ctnet");
      expect(resolveStateDir("relative")).toBe(path.resolve("relative"));
    } finally {
      if (saved === undefined) delete process.env.CTNET_STATE_DIR;
      else process.env.CTNET_STATE_DIR = saved;
    }
  });
});

describe("reading and writing", () => {
  it("a missing state reads as empty, without creating anything", () => {
    const store = newStore();
    expect(store.read()).toEqual(emptyState());
    expect(fs.existsSync(store.dir)).toBe(false);
  });

  it("writes replace the file atomically and keep the previous version as backup", () => {
    const store = newStore();
    store.ensureDir();
    store.write(withNetwork("red"));
    expect(store.read().networks.red.subnet).toBe("10.9.0.0/24");
    expect(fs.existsSync(store.backup)).toBe(false);

    // a reader holding the old file (here: a second link to its inode) never sees a half-written state
    const reader = path.join(store.dir, "reader");
    fs.linkSync(store.file, reader);
    store.write(withNetwork("blue"));
    expect(decodeState(fs.readFileSync(reader, "utf8")).networks.red).toBeDefined();
    expect(Object.keys(store.read().networks)).toEqual(["blue"]);
    expect(Object.keys(decodeState(fs.readFileSync(store.backup, "utf8")).networks)).toEqual(["red"]);
    // no temp files are left behind, and the state is private to root
    expect(fs.readdirSync(store.dir).sort()).toEqual(["logs", "reader", "state.json", "state.json.bak"]);
    expect(fs.statSync(store.file).mode & 0o777).toBe(0o600);
  });

  it("a corrupt state file is an error naming the backup, not a silent reset", () => {
    const store = newStore();
    store.ensureDir();
    store.write(withNetwork("red"));
    store.write(withNetwork("blue"));
    fs.writeFileSync(store.file, '{"version": 1, "networks": {');
    expect(() => store.read()).toThrow(OpError);
    expect(() => store.read()).toThrow(/state file .*state\.json is corrupt .*state\.json\.bak/);
    fs.writeFileSync(store.file, JSON.stringify({ version: 3, networks: {}, containers: {} }));
    expect(() => store.read()).toThrow(/not a ctnet state/);
    // the message's advice works: the backup is a good state
    fs.copyFileSync(store.backup, store.file);
    expect(Object.keys(store.read().networks)).toEqual(["red"]);
  });
});

describe("process liveness", () => {
  it("a process that exited but is not reaped yet (a zombie) is not alive", () => {
    const child = spawn("sleep", ["0.2"]);
    const start = processStartTime(child.pid!);
    expect(processAlive(child.pid!, start)).toBe(true);
    expect(processAlive(child.pid!, "1")).toBe(false);
    // node reaps children from its event loop: blocking it keeps the exited child a zombie
    const state = () => fs.readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1][0];
    const deadline = Date.now() + 10_000;
    while (state() !== "Z" && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    expect(state()).toBe("Z");
    expect(processAlive(child.pid!, start)).toBe(false);
  });
});

describe("the state dir's mode", () => {
  it("a dir ctnet makes is private; one that exists keeps its mode", () => {
    const store = newStore();
    expect(store.ensureDir()).toEqual([".", "logs"]);
    expect(fs.statSync(store.dir).mode & 0o7777).toBe(0o700);
    expect(fs.statSync(store.logDir).mode & 0o7777).toBe(0o700);

    const shared = newStore();
    fs.mkdirSync(shared.dir, { mode: 0o777 });
    fs.chmodSync(shared.dir, 0o1777);
    expect(shared.ensureDir()).toEqual(["logs"]);
    expect(fs.statSync(shared.dir).mode & 0o7777).toBe(0o1777);
  });
});

describe("saving", () => {
  it("uses the room reserved before the plan, and leaves no temp file", () => {
    const store = newStore();
    store.ensureDir();
    store.reserve(100_000);
    expect(fs.readdirSync(store.dir).filter((f) => f.endsWith(".tmp"))).toHaveLength(1);
    store.write(withNetwork("red"));
    expect(fs.readdirSync(store.dir).sort()).toEqual(["logs", "state.json"]);
    // the reserved file was cut to the state's length: no zeros follow it
    expect(fs.readFileSync(store.file, "utf8").endsWith("\n")).toBe(true);
    expect(Object.keys(store.read().networks)).toEqual(["red"]);
    store.reserve(10);
    store.unreserve();
    expect(fs.readdirSync(store.dir).sort()).toEqual(["logs", "state.json"]);
  });
});

describe("the lock", () => {
  const name = () => `ctnet-test/${process.pid}/${Math.random()}`;

  it("is held until released, and a second taker waits for it", async () => {
    const lock = name();
    const release = await acquireLock("first", lock);
    let second = false;
    const waiting = acquireLock("second", lock).then((r) => ((second = true), r));
    await new Promise((r) => setTimeout(r, 200));
    expect(second).toBe(false);
    release();
    (await waiting)();
    expect(second).toBe(true);
  });

  it("is released by the kernel when its holder is killed, and leaves nothing on disk", async () => {
    const lock = name();
    const store = newStore();
    // a separate process takes the lock the way ctnet does, then is killed while holding it
    const holder = spawn(process.execPath, [
      "-e",
      `require("net").createServer().listen({ path: "\\0" + ${JSON.stringify(lock)} }, () => console.log("locked"));`,
    ]);
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    let taken = false;
    const waiting = acquireLock("after", lock).then((r) => ((taken = true), r));
    await new Promise((r) => setTimeout(r, 200));
    expect(taken).toBe(false);
    holder.kill("SIGKILL");
    (await waiting)();
    expect(taken).toBe(true);
    expect(fs.existsSync(store.dir)).toBe(false);
  });
});
