// A private host for tests that look at (or wipe) *everything* ctnet-shaped: doctor, reset, crash
// recovery and the hostile corpus compare whole-kernel snapshots, which other test files running on this
// machine at the same time would disturb. The private host is real kernel state, just unshared: its own
// network namespace (links, addresses, routes, iptables, sysctls), mount namespace (with its own
// /run/netns and /etc/netns) and pid namespace, so every process started inside dies with it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach } from "vitest";
import { CTNET, type Result } from "./harness.js";
import { decodeState } from "../../src/store/statefile.js";

const SETUP = [
  "mount -t proc proc /proc",
  // sysfs shows the network namespace of whoever mounts it: /sys/class/net must list this host's links
  "mount -t sysfs sysfs /sys",
  "mount -t tmpfs -o mode=0755 ctnet-test /run/netns",
  "mount -t tmpfs -o mode=0755 ctnet-test /etc/netns",
  // the registry of state dirs (src/statedirs.ts) of this host alone, gone with it
  "mount -t tmpfs -o mode=0700 ctnet-test /run/ctnet",
  "ip link set lo up",
  // an uplink with a default route, like a real host's eth0, so subnets and routes have something to avoid
  "ip link add uplink0 type veth peer name uplink1",
  "ip addr add 192.0.2.10/24 dev uplink0",
  "ip link set uplink1 up",
  "ip link set uplink0 up",
  "ip route add default via 192.0.2.1",
  // like a host that does not forward yet: ctnet must turn it on and record that it did
  "sysctl -qw net.ipv4.ip_forward=0",
  // a fresh namespace has no tables until something lists them: make them exist, as on any real host
  "iptables -w -t filter -N setup-tmp && iptables -w -t filter -X setup-tmp",
  "iptables -w -t nat -N setup-tmp && iptables -w -t nat -X setup-tmp",
  "echo ready",
  // pid 1 of the private host reaps orphans (containers whose ctnet exited), as a real init does
  `exec python3 -c 'import os, time\nwhile True:\n  try: os.wait()\n  except ChildProcessError: time.sleep(0.2)'`,
].join(" && ");

/** The stable facts of each link (no timers, counters or carrier): name, kind, master, alias, flags, mtu, MAC. */
function linkSummary(json: string): string {
  return (JSON.parse(json || "[]") as any[])
    // a bridge's MAC follows its ports (the lowest of theirs): it is not a fact ctnet sets
    .map((l) => [l.ifname, l.linkinfo?.info_kind ?? "", l.master ?? "", l.ifalias ?? "", (l.flags ?? []).filter((f: string) => !["LOWER_UP", "NO-CARRIER", "M-DOWN"].includes(f)).join(","), l.mtu, l.linkinfo?.info_kind === "bridge" ? "" : l.address].join(" "))
    .join("\n") + "\n";
}

export class IsolatedHost {
  readonly stateDir: string;
  private holder!: ChildProcess;
  /** pid (in the outer pid namespace) of the private host's init, whose namespaces commands enter */
  init = 0;

  private constructor() {
    this.stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-iso-"));
  }

  /** `hostname`: a UTS namespace of its own with that name (simhosts.ts: hosts of one cluster). */
  static async start(opts: { hostname?: string } = {}): Promise<IsolatedHost> {
    const host = new IsolatedHost();
    const uts = opts.hostname ? ["--uts"] : [];
    const setup = opts.hostname ? `hostname ${opts.hostname} && ${SETUP}` : SETUP;
    fs.mkdirSync("/run/netns", { recursive: true });
    fs.mkdirSync("/etc/netns", { recursive: true });
    fs.mkdirSync("/run/ctnet", { recursive: true, mode: 0o700 });
    host.holder = spawn("unshare", ["--net", ...uts, "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--", "sh", "-c", setup], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    host.holder.stderr!.on("data", (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      host.holder.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
      host.holder.on("exit", () => reject(new Error(`private host did not start: ${err}`)));
    });
    const children = fs.readFileSync(`/proc/${host.holder.pid}/task/${host.holder.pid}/children`, "utf8").trim();
    host.init = Number(children.split(" ")[0]);
    return host;
  }

  /** argv prefixed so that it runs inside the private host. */
  argv(argv: string[]): string[] {
    return ["nsenter", "-t", String(this.init), "-n", "-m", "-p", "-u", "--", ...argv];
  }

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { ...process.env, CTNET_STATE_DIR: this.stateDir, NO_COLOR: "1", ...extra };
  }

  sh(argv: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Result {
    const r = spawnSync(this.argv(argv)[0], this.argv(argv).slice(1), {
      input: opts.input, encoding: "utf8", env: opts.env ?? this.env(), timeout: opts.timeout ?? 120_000, maxBuffer: 64 << 20,
    });
    if (r.error) throw r.error;
    return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
  }

  ctnet(...args: string[]): Result {
    return this.sh([CTNET, ...args]);
  }

  /** Runs ctnet and throws with its stderr unless it succeeded. */
  ok(...args: string[]): string {
    const r = this.ctnet(...args);
    if (r.code !== 0) throw new Error(`ctnet ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** Starts ctnet in the background (for the pause hook and signals). */
  spawnCtnet(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const argv = this.argv([CTNET, ...args]);
    return spawn(argv[0], argv.slice(1), { env: this.env(env), stdio: ["ignore", "pipe", "pipe"] });
  }

  inNs(container: string, ...argv: string[]): Result {
    return this.sh(["ip", "netns", "exec", container, ...argv]);
  }

  ping(from: string, to: string): boolean {
    return this.inNs(from, "ping", "-c1", "-W1", to).code === 0;
  }

  /** The state file, every record read (a plain object). */
  state(): any {
    return JSON.parse(JSON.stringify(decodeState(fs.readFileSync(path.join(this.stateDir, "state.json"), "utf8"))));
  }

  /**
   * Everything ctnet could change, as text: links (with alias, master, state, mtu), addresses and routes
   * of the host and of every namespace, iptables without counters, /etc/netns files, forwarding.
   */
  kernel(): Record<string, string> {
    const q = (...argv: string[]) => this.sh(argv).stdout;
    const netns = q("ip", "netns", "list").split("\n").map((l) => l.split(" ")[0]).filter(Boolean).sort();
    const out: Record<string, string> = {
      links: linkSummary(q("ip", "-d", "-j", "link", "show")),
      addrs: q("ip", "-o", "-4", "addr", "show"),
      routes: q("ip", "-4", "route", "show", "table", "all").replace(/ linkdown/g, ""),
      iptables: q("iptables-save").split("\n").filter((l) => !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/, "")).join("\n"),
      netns: netns.join(" "),
      etcNetns: q("sh", "-c", "cd /etc/netns && for f in $(find . -type f | sort); do echo \"== $f\"; cat \"$f\"; done"),
      sysctl: q("sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.all.route_localnet"),
    };
    for (const ns of netns) {
      out[`ns ${ns}`] = linkSummary(q("ip", "-n", ns, "-d", "-j", "link", "show")) + q("ip", "-n", ns, "-o", "-4", "addr", "show") + q("ip", "-n", ns, "route", "show").replace(/ linkdown/g, "");
    }
    return out;
  }

  /** The state dir, file by file: relative path, mode and content. */
  stateFiles(): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (dir: string) => {
      for (const name of fs.readdirSync(dir).sort()) {
        const p = path.join(dir, name);
        const st = fs.statSync(p);
        const rel = path.relative(this.stateDir, p);
        if (st.isDirectory()) {
          out[`${rel}/`] = (st.mode & 0o7777).toString(8);
          walk(p);
        } else out[rel] = `${(st.mode & 0o7777).toString(8)} ${fs.readFileSync(p, "base64")}`;
      }
    };
    if (fs.existsSync(this.stateDir)) walk(this.stateDir);
    return out;
  }

  /** Ends every process of the private host (the kernel kills its pid namespace) and its namespaces. */
  async stop(): Promise<void> {
    // a holder killed by a signal keeps exitCode null: a second stop must not wait for an exit that came
    if (this.holder.exitCode === null && this.holder.signalCode === null) {
      const exited = new Promise((r) => this.holder.once("exit", r));
      this.holder.kill("SIGKILL");
      await exited;
    }
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** Registers the hook that stops every private host a test started, also when it failed; returns the starter. */
export function useIsolatedHosts(): () => Promise<IsolatedHost> {
  const hosts: IsolatedHost[] = [];
  afterEach(async () => {
    while (hosts.length) await hosts.pop()!.stop();
  });
  return async () => {
    const h = await IsolatedHost.start();
    hosts.push(h);
    return h;
  };
}
