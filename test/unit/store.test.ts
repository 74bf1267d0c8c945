// The JSON store: atomic replacement, the previous version kept, a lock that waits for live holders and
// breaks those of dead ones, and corruption reported, never silently reset.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import { emptyState, type State } from "../../src/model.js";
import { decodeState } from "../../src/statefile.js";
import { Store, processAlive, processStartTime, resolveStateDir } from "../../src/store.js";

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

describe("the lock", () => {
  it("is taken and released, and leaves no lock file", () => {
    const store = newStore();
    store.lock();
    expect(fs.readFileSync(store.lockFile, "utf8")).toBe(`${process.pid} ${processStartTime(process.pid)}`);
    store.unlock();
    expect(fs.existsSync(store.lockFile)).toBe(false);
  });

  it("breaks a lock whose holder is dead", () => {
    const store = newStore();
    store.ensureDir();
    // a pid above pid_max's default cannot be alive
    fs.writeFileSync(store.lockFile, "4194304999 12345");
    store.lock();
    expect(fs.readFileSync(store.lockFile, "utf8")).toContain(String(process.pid));
    store.unlock();
  });

  it("breaks a lock whose pid was reused by another process (start time differs)", () => {
    const store = newStore();
    store.ensureDir();
    fs.writeFileSync(store.lockFile, `${process.ppid} 1`);
    store.lock();
    expect(fs.readFileSync(store.lockFile, "utf8")).toContain(String(process.pid));
    store.unlock();
  });

  it("waits for a live holder and gets the lock once it lets go", async () => {
    const store = newStore();
    store.ensureDir();
    const released = path.join(store.dir, "released");
    // a separate process holds the lock the way ctnet does (pid and start time), then drops it
    const holder = spawn(process.execPath, [
      "-e",
      `const fs = require("fs");
       const stat = fs.readFileSync("/proc/self/stat", "utf8");
       const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
       fs.writeFileSync(${JSON.stringify(store.lockFile)}, process.pid + " " + start, { flag: "wx" });
       console.log("locked");
       setTimeout(() => { fs.writeFileSync(${JSON.stringify(released)}, ""); fs.rmSync(${JSON.stringify(store.lockFile)}); }, 400);`,
    ]);
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    store.lock();
    // we only got it after the holder released it, not by breaking a live lock
    expect(fs.existsSync(released)).toBe(true);
    expect(fs.readFileSync(store.lockFile, "utf8")).toContain(String(process.pid));
    store.unlock();
    await new Promise((resolve) => holder.once("exit", resolve));
  });
});
