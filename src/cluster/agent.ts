// `ctnet agent`: the one long-running process of a joined host (docs/overlay.md). It keeps the host's
// lease alive and watches everything under the store's prefix; on each change it converges this host's
// VXLAN devices: a permanent FDB entry (MAC -> VTEP) and ARP entry for every container of every other
// live host, and nothing else; and the DNS server's lines for those containers in this host's overlay
// networks' files. A host whose lease expires drops out of "live": its entries and names go everywhere.
// The tunnel entries are the agent's alone (no lock); the DNS files are shared with the commands, so
// those it rewrites under the lock.
import fs from "node:fs";
import { UsageError } from "../errors.js";
import { openStore, readState, type GlobalOptions } from "../plan/core.js";
import { run } from "../host/sys.js";
import { peerArgvs, vxlanIfname, type RemoteEndpoint } from "../drivers/overlay.js";
import { agentPidFile, agentPidLine, storeOf } from "./cluster.js";
import { PREFIX, keys, type EndpointValue, type HostValue } from "./claims.js";
import { convergePeersSoon } from "./members.js";
import { createHash } from "node:crypto";
import { acquireLock, holder, tryHold } from "../store/lock.js";
import { readNameFile, writeInPlace } from "../host/files.js";
import { dnsConfigPath, dnsNames, remoteDnsLine, serverPid, withRemoteLines } from "../dns/aardvark.js";
import type { OverlayNetworkValue } from "./claims.js";
import type { KeyValue, WatchEvent } from "./etcd.js";
import type { State } from "../model.js";

const log = (msg: string) => process.stdout.write(`${new Date().toISOString()} ${msg}\n`);

/** What the agent knows of the store: the keys under the prefix, kept current by the watch. */
export class View {
  readonly kvs = new Map<string, KeyValue>();

  load(kvs: KeyValue[]): void {
    this.kvs.clear();
    for (const kv of kvs) this.kvs.set(kv.key, kv);
  }

  apply(events: WatchEvent[]): void {
    for (const e of events) {
      if (e.type === "PUT") this.kvs.set(e.kv.key, e.kv);
      else this.kvs.delete(e.kv.key);
    }
  }

  values<T>(prefix: string): T[] {
    return this.entries<T>(prefix).map(([, v]) => v);
  }

  entries<T>(prefix: string): Array<[KeyValue, T]> {
    const out: Array<[KeyValue, T]> = [];
    for (const [key, kv] of this.kvs) if (key.startsWith(PREFIX + prefix)) out.push([kv, JSON.parse(kv.value)]);
    return out;
  }

  /** The hosts whose lease is held. */
  live(): Set<string> {
    return new Set(this.values<HostValue>("hosts/").map((h) => h.host));
  }

  /** The entries each overlay network's VXLAN device should hold on host `self`, by device name. */
  desired(self: string): Map<string, RemoteEndpoint[]> {
    const live = this.live();
    const out = new Map<string, RemoteEndpoint[]>();
    const vniOf = new Map(this.values<OverlayNetworkValue>("networks/").map((n) => [n.name, n.vni]));
    for (const vni of vniOf.values()) out.set(vxlanIfname(vni), []);
    for (const ep of this.values<EndpointValue>("endpoints/")) {
      const vni = vniOf.get(ep.network);
      if (vni === undefined || ep.host === self || !live.has(ep.host)) continue;
      out.get(vxlanIfname(vni))!.push({ ip: ep.ip, mac: ep.mac, vtep: ep.vtep });
    }
    return out;
  }

  /** The DNS lines of other live hosts' containers each overlay network's file should hold, by network. */
  remoteNames(self: string): Map<string, string[]> {
    const live = this.live();
    const out = new Map<string, string[]>();
    const claims = this.values<EndpointValue>("endpoints/").filter((ep) => ep.host !== self && live.has(ep.host));
    for (const ep of claims.sort((a, b) => a.ip.localeCompare(b.ip, undefined, { numeric: true }))) {
      const names = dnsNames({ name: ep.container, id: ep.id ?? "" }, ep.network, ep.aliases ?? []).filter(Boolean);
      out.set(ep.network, [...(out.get(ep.network) ?? []), remoteDnsLine(ep.host, ep.id ?? ep.container, ep.ip, names)]);
    }
    return out;
  }
}

/** The overlay DNS files of `state` whose other hosts' lines differ from `wanted`: file -> its new content. */
function namesToWrite(state: State, wanted: Map<string, string[]>): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const net of Object.values(state.networks)) {
    if (net.driver !== "overlay") continue;
    const file = dnsConfigPath(net.name);
    const now = readNameFile(file);
    // no file: no container of this host has names there yet; the run that adds one writes it
    if (now === null) continue;
    const next = withRemoteLines(state, net.name, now, wanted.get(net.name) ?? []);
    if (next !== now) out.set(file, next);
  }
  return out;
}

/**
 * SIGHUP reaches aardvark-dns's handler only once the server registered it; before that (a server a
 * command started a moment ago) it ends the server. Waits, at most a second, for SIGHUP to be caught.
 */
async function catchesHangup(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const status = readNameFile(`/proc/${pid}/status`) ?? "";
    const caught = /^SigCgt:\s*([0-9a-f]+)/m.exec(status);
    if (!caught) return false;
    if (BigInt(`0x${caught[1]}`) & 1n) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/**
 * Brings the other hosts' lines of this host's overlay DNS files to the store's, then tells the server.
 * Read first without the lock (most events change no name here); written under it, read again there.
 * `afterCommand`: a command of this host claimed an address, and is still making the network's file
 * (from its local lines only) — which the read without the lock cannot see yet: the lock waits for it.
 */
async function convergeNames(g: GlobalOptions, view: View, self: string, afterCommand: boolean): Promise<void> {
  const wanted = view.remoteNames(self);
  if (!afterCommand && namesToWrite(readState(g), wanted).size === 0) return;
  const unlock = await acquireLock(`ctnet agent (pid ${process.pid}): names of other hosts' containers`);
  try {
    const writes = namesToWrite(readState(g), wanted);
    for (const [file, content] of writes) writeInPlace(file, content);
    const pid = serverPid();
    if (writes.size > 0 && pid !== null && (await catchesHangup(pid))) process.kill(pid, "SIGHUP");
    if (writes.size > 0) log(`names of other hosts' containers: ${[...writes.keys()].join(", ")}`);
  } finally {
    unlock();
  }
}

/** A VXLAN device's per-MAC tunnel entries (those with a dst: the device's own and the bridge's have none) and ARP entries. */
export function tunnelEntries(vxlan: string): { fdb: Array<{ mac: string; dst: string }>; neigh: Array<{ dst: string; lladdr?: string }> } {
  const fdb = JSON.parse(run(["bridge", "-j", "fdb", "show", "dev", vxlan]).stdout || "[]") as Array<{ mac: string; dst?: string }>;
  const neigh = JSON.parse(run(["ip", "-j", "neigh", "show", "dev", vxlan]).stdout || "[]") as Array<{ dst: string; lladdr?: string }>;
  return { fdb: fdb.filter((e): e is { mac: string; dst: string } => !!e.dst), neigh };
}

/**
 * Makes one VXLAN device's FDB and ARP entries exactly `peers`: replaces every wanted one, deletes the
 * rest. False when the device is not there (no container of this host on its network).
 */
function converge(vxlan: string, peers: RemoteEndpoint[]): boolean {
  if (!fs.existsSync(`/sys/class/net/${vxlan}`)) return false;
  const { fdb, neigh } = tunnelEntries(vxlan);
  const wanted = new Set(peers.map((p) => `${p.mac} ${p.vtep}`));
  const wantedIps = new Set(peers.map((p) => p.ip));
  const bridgeCmds: string[] = [];
  const ipCmds: string[] = [];
  for (const p of peers) {
    const { fdb: f, neigh: n } = peerArgvs(vxlan, p);
    bridgeCmds.push(f.slice(1).join(" "));
    ipCmds.push(n.slice(1).join(" "));
  }
  for (const e of fdb) if (!wanted.has(`${e.mac} ${e.dst}`)) bridgeCmds.push(`fdb del ${e.mac} dev ${vxlan} dst ${e.dst} self`);
  for (const e of neigh) if (!wantedIps.has(e.dst)) ipCmds.push(`neigh del ${e.dst} dev ${vxlan}`);
  // one process per tool however many entries: -force goes on past an entry that vanished meanwhile
  if (bridgeCmds.length) run(["bridge", "-force", "-batch", "-"], bridgeCmds.join("\n") + "\n");
  if (ipCmds.length) run(["ip", "-force", "-batch", "-"], ipCmds.join("\n") + "\n");
  return true;
}

/** How long a claim may wait for the `run` that made it to save its state (a run takes well under a second). */
const CLAIM_GRACE_MS = 30_000;
const REAP_INTERVAL_MS = 2_000;

/**
 * This host's claims that no container of its state holds: a `run --rm` removed by its watcher, a run
 * killed between its claim and its state save. Released unless the run may still be saving.
 */
export function strayClaims(claims: Array<[KeyValue, EndpointValue]>, self: string, state: State, now: number): KeyValue[] {
  return claims
    .filter(([, ep]) => ep.host === self)
    .filter(([, ep]) => !state.containers[ep.container]?.endpoints.some((e) => e.network === ep.network && e.ip === ep.ip))
    .filter(([, ep]) => ep.up || now - Date.parse(ep.claimed) > CLAIM_GRACE_MS)
    .map(([kv]) => kv);
}

export async function runAgent(g: GlobalOptions): Promise<void> {
  const stateDir = openStore(g).dir;
  const state = readState(g);
  const join = state.cluster;
  if (!join) {
    // nothing to keep alive: no command should start this agent again (cluster.ts, reviveAgent)
    fs.rmSync(agentPidFile(stateDir), { force: true });
    throw new UsageError("this host has not joined a cluster: the agent has nothing to do");
  }
  // one agent per state dir: two would both answer for the host (its lease, the DNS files), and `cluster
  // leave` or `reset` would stop only the one the pid file names. A second one (two commands revived a
  // dead agent at once; a join and a command that revived the agent of the join's pid file) points the
  // pid file at the first, and ends. The kernel lets go of the name when the agent dies, however it dies
  const name = `ctnet/agent/${createHash("sha256").update(stateDir).digest("hex").slice(0, 32)}`;
  if (!(await tryHold(name, `${process.pid}\n`))) {
    const first = Number((await holder(name)) ?? 0);
    if (first > 0) fs.writeFileSync(agentPidFile(stateDir), agentPidLine(first), { mode: 0o600 });
    log(`the agent of this host runs already (pid ${first || "unknown"}): this one ends`);
    return;
  }
  const etcd = storeOf(state);
  fs.writeFileSync(agentPidFile(stateDir), agentPidLine(process.pid), { mode: 0o600 });
  const view = new View();
  let lease = join.lease;
  process.on("SIGTERM", () => {
    log("SIGTERM: stopping");
    process.exit(0);
  });

  // names: one convergence at a time, the latest view once it is done
  let naming: Promise<void> | null = null;
  let nameAgain: boolean | null = null;
  const convergeNamesSoon = (afterCommand = false) => {
    if (naming) return void (nameAgain = (nameAgain ?? false) || afterCommand);
    naming = convergeNames(g, view, join.host, afterCommand)
      .catch((err) => void log(`cannot update the names of other hosts' containers: ${err.message}`))
      .finally(() => {
        naming = null;
        if (nameAgain !== null) {
          const again = nameAgain;
          nameAgain = null;
          convergeNamesSoon(again);
        }
      });
  };
  // a device is converged again only when what it should hold changed since (most events are claims on
  // other networks, and each convergence costs two processes); all of them after a listing, and after a
  // new claim of this host (its command is making a device). A device not there is forgotten: one that a
  // command made from what it read of the store before it waited for the lock is converged by the
  // periodic check below
  const converged = new Map<string, string>();
  const convergeDevices = (which: (vxlan: string) => boolean) => {
    for (const [vxlan, peers] of view.desired(join.host)) {
      const wanted = JSON.stringify(peers);
      if (!which(vxlan) || converged.get(vxlan) === wanted) continue;
      if (converge(vxlan, peers)) converged.set(vxlan, wanted);
      else converged.delete(vxlan);
    }
  };
  const convergeAll = (events?: WatchEvent[]) => {
    // a new claim (version 1), not the mark `up` a run puts on its claim once done
    const ownClaim = !!events?.some((e) => e.type === "PUT" && e.kv.version === 1 && e.kv.key.startsWith(PREFIX + "endpoints/") && (JSON.parse(e.kv.value) as EndpointValue).host === join.host);
    if (!events || ownClaim) converged.clear();
    convergeDevices(() => true);
    convergeNamesSoon(ownClaim);
    // who may send VXLAN here: the members, dead ones too (cluster/members.ts)
    convergePeersSoon(g, join, view.values<HostValue>("members/"), log);
  };

  // the lease: renewed at a third of its TTL; one that expired (the host was cut off longer than that) is
  // replaced, and the host's key put again with the new one
  const hostValue = JSON.stringify({ host: join.host, vtep: join.advertise, joined: join.joined } satisfies HostValue);
  const renew = async () => {
    try {
      if ((await etcd.leaseKeepAlive(lease)) > 0) return;
      lease = await etcd.leaseGrant(join.ttl);
      await etcd.put(keys.host(join.host), hostValue, lease);
      // pruned while it was cut off: a member again (the others' guards let members in, cluster ls lists them)
      const rejoined = await etcd.txn([{ key: keys.member(join.host), target: "CREATE", createRevision: 0 }], [{ put: { key: keys.member(join.host), value: hostValue } }]);
      log(`lease expired: host key put again with lease ${lease}${rejoined.succeeded ? "; the host had been pruned: a member again" : ""}`);
    } catch (err: any) {
      log(`lease renewal failed: ${err.message}`);
    }
  };
  await renew();
  setInterval(renew, (join.ttl * 1000) / 3);

  // releases stray claims (strayClaims), each only if it is unchanged since it was read
  const reap = async () => {
    let local: State;
    try {
      local = openStore(g).read();
    } catch {
      return;
    }
    for (const kv of strayClaims(view.entries<EndpointValue>("endpoints/"), join.host, local, Date.now())) {
      const ep = JSON.parse(kv.value) as EndpointValue;
      await etcd.txn([{ key: kv.key, target: "MOD", modRevision: kv.modRevision }], [{ delete: { key: kv.key } }, { delete: { key: keys.name(ep.network, ep.container) } }])
        .then((r) => r.succeeded && log(`released the claim of ${ep.container} on ${ep.network} (${ep.ip}): no such container here`), (err) => log(`cannot release ${kv.key}: ${err.message}`));
    }
  };
  // a command's rebuild or a rollback may put back older lines: the names are checked again with the claims
  setInterval(() => {
    convergeDevices((vxlan) => !converged.has(vxlan) && fs.existsSync(`/sys/class/net/${vxlan}`));
    void reap().then(() => convergeNamesSoon());
  }, REAP_INTERVAL_MS);

  // list, converge, watch from the listing's revision; re-list when the watch ends (a compaction, a member lost)
  for (;;) {
    let revision: number;
    try {
      const listed = await etcd.list(PREFIX);
      view.load(listed.kvs);
      revision = listed.revision;
      convergeAll();
    } catch (err: any) {
      log(`cannot list the store: ${err.message}`);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    const ended = await new Promise<string>((resolve) => {
      etcd.watch(PREFIX, revision + 1, (events, rev) => {
        view.apply(events);
        revision = rev;
        convergeAll(events);
      }, (err, compacted) => resolve(compacted ? `revision ${revision + 1} compacted (now ${compacted}): listing again` : `watch ended: ${err?.message}`));
    });
    log(ended);
    await new Promise((r) => setTimeout(r, 200));
  }
}
