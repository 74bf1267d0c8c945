// Simulated hosts of one cluster on this one machine: each a private host (isolated.ts: its own network,
// mount, pid and UTS namespaces, /run/netns, /etc/netns and state dir) with an eth1 on an underlay, a
// bridge in yet another private namespace; and a 3-member etcd cluster (Debian's etcd 3.4), each member
// on a private host of its own on the same underlay. Everything dies with its pid namespace: stop() (run
// by the hooks of useSimCluster, also when a test failed) kills them all and removes their directories.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { afterAll, beforeAll } from "vitest";
import { IsolatedHost } from "./isolated.js";

export const UNDERLAY_PREFIX = "10.77.0";
const ETCD_MEMBERS = 3;

export interface SimHost extends IsolatedHost {
  name: string;
  /** the host's underlay address: its VTEP */
  ip: string;
}

export class SimCluster {
  readonly hosts: SimHost[] = [];
  readonly etcdMembers: IsolatedHost[] = [];
  private underlay!: IsolatedHost;
  private nextHost = 1;

  /** etcd://… of every member, as `cluster join --store` takes it */
  get store(): string {
    return `etcd://${this.etcdMembers.map((_, i) => `${UNDERLAY_PREFIX}.${101 + i}:2379`).join(",")}`;
  }

  static async start(): Promise<SimCluster> {
    const c = new SimCluster();
    try {
      c.underlay = await IsolatedHost.start({ hostname: "underlay" });
      c.underNs(["ip", "link", "add", "ul0", "type", "bridge"]);
      c.underNs(["ip", "link", "set", "ul0", "up"]);
      await c.startEtcd();
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** Runs argv in the underlay's network namespace alone: its ip sees the outer /proc, so `netns PID` works. */
  private underNs(argv: string[]): void {
    const r = spawnSync("nsenter", ["-t", String(this.underlay.init), "-n", "--", ...argv], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
  }

  /** Plugs a private host into the underlay as eth1 with address .N. */
  private plug(host: IsolatedHost, port: string, n: number): string {
    const ip = `${UNDERLAY_PREFIX}.${n}`;
    this.underNs(["ip", "link", "add", port, "type", "veth", "peer", "name", "eth1", "netns", String(host.init)]);
    this.underNs(["ip", "link", "set", port, "master", "ul0", "up"]);
    for (const argv of [["ip", "addr", "add", `${ip}/24`, "dev", "eth1"], ["ip", "link", "set", "eth1", "up"]]) {
      const r = host.sh(argv);
      if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
    }
    return ip;
  }

  private async startEtcd(): Promise<void> {
    const peers = Array.from({ length: ETCD_MEMBERS }, (_, i) => `m${i + 1}=http://${UNDERLAY_PREFIX}.${101 + i}:2380`).join(",");
    for (let i = 0; i < ETCD_MEMBERS; i++) {
      const member = await IsolatedHost.start({ hostname: `etcd${i + 1}` });
      this.etcdMembers.push(member);
      const ip = this.plug(member, `ul-etcd${i + 1}`, 101 + i);
      const argv = member.argv([
        "etcd", "--name", `m${i + 1}`, "--data-dir", `${member.stateDir}/etcd`,
        "--listen-client-urls", `http://${ip}:2379`, "--advertise-client-urls", `http://${ip}:2379`,
        "--listen-peer-urls", `http://${ip}:2380`, "--initial-advertise-peer-urls", `http://${ip}:2380`,
        "--initial-cluster", peers, "--initial-cluster-state", "new", "--initial-cluster-token", "ctnet-test",
      ]);
      const log = fs.openSync(`${member.stateDir}/etcd.log`, "a");
      spawn(argv[0], argv.slice(1), { stdio: ["ignore", log, log] }).unref();
      fs.closeSync(log);
    }
    // healthy: a write through the cluster commits (it needs a leader and a quorum)
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = this.etcdMembers[0].sh(["etcdctl", `--endpoints=${this.store.slice("etcd://".length)}`, "--dial-timeout=1s", "put", "/ctnet-test/ready", "1"], { env: { ...process.env, ETCDCTL_API: "3" } });
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`etcd cluster did not become healthy: ${r.stderr}\n${fs.readFileSync(`${this.etcdMembers[0].stateDir}/etcd.log`, "utf8").slice(-2000)}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** A new simulated host on the underlay, named hN (its hostname too). */
  async addHost(): Promise<SimHost> {
    const n = this.nextHost++;
    const host = (await IsolatedHost.start({ hostname: `h${n}` })) as SimHost;
    this.hosts.push(host);
    host.name = `h${n}`;
    host.ip = this.plug(host, `ul-h${n}`, n);
    return host;
  }

  /** The host dies at once, every process in it (its agent too), as a machine that loses power. */
  async kill(host: SimHost): Promise<void> {
    this.hosts.splice(this.hosts.indexOf(host), 1);
    await host.stop();
  }

  /** One etcd member dies (its data stays until stop). */
  async killEtcdMember(i: number): Promise<void> {
    await this.etcdMembers[i].stop();
  }

  async stop(): Promise<void> {
    for (const h of [...this.hosts, ...this.etcdMembers]) await h.stop().catch(() => {});
    if (this.underlay) await this.underlay.stop().catch(() => {});
    this.hosts.length = 0;
    this.etcdMembers.length = 0;
  }
}

/** Starts a cluster before the file's tests and stops it after them, also when one failed. */
/** Waits until `check` holds (the agents converge asynchronously), failing after `ms`. */
export async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function useSimCluster(hosts: number): () => SimCluster {
  let cluster: SimCluster | null = null;
  beforeAll(async () => {
    cluster = await SimCluster.start();
    for (let i = 0; i < hosts; i++) await cluster.addHost();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  return () => cluster!;
}
