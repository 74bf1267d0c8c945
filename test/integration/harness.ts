// Shared by the integration tests: run the built CLI as a user would, give every test its own state
// dir and unique names, and prove the host is left exactly as it was found.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { decodeState } from "../../src/store/statefile.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CTNET = path.join(ROOT, "bin/ctnet");

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(argv: string[], input?: string, env: NodeJS.ProcessEnv = process.env): Result {
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: "utf8", env, timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/**
 * read() once it equals `want`, or as it is after `ms`: for what the kernel finishes after a command
 * returned (a single `rm -f` does not wait for its veths, which go with their namespace).
 */
export function settled<T>(read: () => T, want: T, ms = 3_000): T {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = read();
    if (JSON.stringify(got) === JSON.stringify(want) || Date.now() > deadline) return got;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

/** `ps`/`net ls --format json`: one object a line, as docker 23+ prints them. */
export const jsonLines = (text: string): any[] => text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

/** Short random suffix: names end up inside 15-character interface names. */
export const uniq = (prefix: string) => `${prefix}${Math.random().toString(36).slice(2, 6)}`;

/** One isolated ctnet world: its own state dir; `cleanup` removes whatever it still holds. */
export class Lab {
  readonly stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-test-"));

  run(...args: string[]): Result {
    return sh([CTNET, ...args], undefined, { ...process.env, CTNET_STATE_DIR: this.stateDir, NO_COLOR: "1" });
  }

  /** Runs ctnet and fails the test, with its stderr, unless it succeeded. */
  ok(...args: string[]): string {
    const r = this.run(...args);
    expect(r.code, `ctnet ${args.join(" ")} failed: ${r.stderr}`).toBe(0);
    return r.stdout;
  }

  /** A command inside a container's namespace (with its /etc/hosts), as `ip netns exec` gives it. */
  inNs(container: string, ...argv: string[]): Result {
    return sh(["ip", "netns", "exec", container, ...argv]);
  }

  ping(from: string, to: string): boolean {
    return this.inNs(from, "ping", "-c1", "-W1", to).code === 0;
  }

  /** The state file, every record read (a plain object). */
  state(): any {
    return JSON.parse(JSON.stringify(decodeState(fs.readFileSync(path.join(this.stateDir, "state.json"), "utf8"))));
  }

  cleanup(): void {
    let state: any = null;
    try {
      state = this.state();
    } catch {
      /* nothing was ever created */
    }
    if (state) {
      const containers = Object.keys(state.containers);
      // joined containers first: their owners refuse removal while they exist
      containers.sort((a, b) => Number(!!state.containers[b].joined) - Number(!!state.containers[a].joined));
      for (const c of containers) this.run("rm", "-f", c);
      const nets = Object.keys(state.networks).filter((n) => n !== "bridge");
      if (nets.length) this.run("net", "rm", ...nets);
    }
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** What the host holds of interest to ctnet, without counters, to compare before and after a test. */
export function hostSnapshot(): Record<string, string> {
  const links = sh(["ip", "-o", "link", "show"]).stdout.split("\n").map((l) => l.split(":")[1]?.trim().split("@")[0]).filter(Boolean).sort();
  let etcNetns: string[] = [];
  try {
    etcNetns = fs.readdirSync("/etc/netns").sort();
  } catch {
    /* none */
  }
  const iptables = ["filter", "nat"].map((t) =>
    sh(["iptables-save", "-t", t]).stdout.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/, "")).join("\n"),
  );
  return {
    links: links.join(" "),
    netns: sh(["ip", "netns", "list"]).stdout.split("\n").map((l) => l.split(" ")[0]).filter(Boolean).sort().join(" "),
    etcNetns: etcNetns.join(" "),
    iptables: iptables.join("\n"),
    ipForward: fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim(),
  };
}

/** ctnet objects (by their naming scheme) the host still holds. */
export function ctnetLeftovers(): string[] {
  const s = hostSnapshot();
  return [
    ...s.links.split(" ").filter((l) => /^(ctnet0|ctbr-|ve-)/.test(l)),
    ...s.iptables.split("\n").filter((l) => l.includes("CTNET")),
  ];
}

/**
 * Registers the hooks a test file needs for its Labs: each is cleaned up after its test, also when the
 * test failed. With `hostUnchanged`, the whole host must end the file as it began it.
 */
export function useLabs(opts: { hostUnchanged?: boolean } = {}): () => Lab {
  const labs: Lab[] = [];
  let before: Record<string, string> | undefined;
  if (opts.hostUnchanged) beforeAll(() => void (before = hostSnapshot()));
  afterEach(() => {
    while (labs.length) labs.pop()!.cleanup();
  });
  if (opts.hostUnchanged) afterAll(() => expect(hostSnapshot()).toEqual(before));
  return () => {
    const lab = new Lab();
    labs.push(lab);
    return lab;
  };
}

/** The parts of hostSnapshot() that mention one of `tokens`: other tests may change the rest meanwhile. */
export function scopedSnapshot(tokens: string[]): Record<string, string[]> {
  const snap = hostSnapshot();
  const mine = (items: string[]) => items.filter((item) => tokens.some((t) => item.includes(t)));
  return {
    links: mine(snap.links.split(" ")),
    netns: mine(snap.netns.split(" ")),
    etcNetns: mine(snap.etcNetns.split(" ")),
    iptables: mine(snap.iptables.split("\n")),
  };
}
