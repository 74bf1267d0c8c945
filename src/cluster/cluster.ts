// A cluster of ctnet hosts sharing one etcd store (docs/overlay.md). This file holds the store's layout
// and the membership commands: cluster join, leave, ls. Only commands that touch the cluster load it.
import fs from "node:fs";
import path from "node:path";
import { OpError, UsageError } from "../errors.js";
import { parseAddress } from "../ipam.js";
import { mutate, openStore, readState, type GlobalOptions } from "../plan/core.js";
import { Plan, renderStep } from "../plan/plan.js";
import { hostAddresses } from "../host/sys.js";
import { processAlive, processStartTime } from "../store/store.js";
import { Etcd, parseStoreUrl, type TxnOp } from "./etcd.js";
import { PREFIX, keys, peerVteps, type EndpointValue, type HostValue } from "./claims.js";
import type { ClusterJoin, State } from "../model.js";

export const DEFAULT_TTL = 15;
const MAX_TTL = 30;

/** The store client of a joined host, or a UsageError when this host has not joined. */
export function storeOf(state: State): Etcd {
  if (!state.cluster) throw new UsageError("this host has not joined a cluster: run 'ctnet cluster join --store etcd://HOST:PORT --advertise IP' first");
  return new Etcd(parseStoreUrl(state.cluster.store)!);
}

export const agentPidFile = (stateDir: string) => path.join(stateDir, "agent.pid");

/** The running agent's pid, or null (no pid file, or its process is gone). */
export function agentPid(stateDir: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(agentPidFile(stateDir), "utf8");
  } catch {
    return null;
  }
  const [pid, start] = text.trim().split(" ");
  return processAlive(Number(pid), start) ? Number(pid) : null;
}

/** The pid file's line: pid and start time, so that a reused pid is not taken for the agent. */
export const agentPidLine = (pid: number) => `${pid} ${processStartTime(pid)}\n`;

/** Starts this host's agent in the background (a session of its own, so it outlives the command). */
export async function startAgent(stateDir: string): Promise<number> {
  const { spawn } = await import("node:child_process");
  fs.mkdirSync(path.join(stateDir, "logs"), { recursive: true, mode: 0o700 });
  const log = fs.openSync(path.join(stateDir, "logs", "agent.log"), "a", 0o600);
  const child = spawn(process.execPath, [process.argv[1], "--state-dir", stateDir, "agent"], { detached: true, stdio: ["ignore", log, log] });
  fs.closeSync(log);
  child.unref();
  // the agent writes its own pid file as it starts; this one is there at once, for the next command
  fs.writeFileSync(agentPidFile(stateDir), agentPidLine(child.pid!), { mode: 0o600 });
  return child.pid!;
}

/** Stops the agent (SIGTERM) and removes its pid file. */
export function stopAgent(stateDir: string): void {
  const pid = agentPid(stateDir);
  if (pid !== null) process.kill(pid, "SIGTERM");
  fs.rmSync(agentPidFile(stateDir), { force: true });
}

/** Any command on a joined host calls this: an agent that died is started again. */
export async function reviveAgent(stateDir: string): Promise<void> {
  if (fs.existsSync(agentPidFile(stateDir)) && agentPid(stateDir) === null) await startAgent(stateDir);
}

export interface JoinOptions {
  store: string;
  advertise: string;
  /** the host's name in the cluster; default its hostname */
  hostname?: string;
  ttl?: string;
}

export async function joinCluster(g: GlobalOptions, o: JoinOptions): Promise<void> {
  const endpoints = parseStoreUrl(o.store);
  if (!endpoints) throw new UsageError(`invalid --store ${JSON.stringify(o.store)}: expected etcd://HOST:PORT[,HOST:PORT…]`);
  parseAddress(o.advertise, "--advertise");
  if (!hostAddresses().some((a) => a.address === o.advertise)) throw new UsageError(`--advertise ${o.advertise} is not an address of this host`);
  const ttl = o.ttl === undefined ? DEFAULT_TTL : Number(o.ttl);
  if (!Number.isInteger(ttl) || ttl < 2 || ttl > MAX_TTL) throw new UsageError(`invalid --ttl ${JSON.stringify(o.ttl)}: seconds, 2..${MAX_TTL}`);
  const host = o.hostname ?? (await import("node:os")).hostname();
  // a join a killed command left half done is rolled back (its keys deleted) or completed first
  await recoverFirst(g);
  const state = readState(g);
  if (state.cluster) throw new UsageError(`this host already joined the cluster at ${state.cluster.store} as ${state.cluster.host}: 'ctnet cluster leave' first`);
  const etcd = new Etcd(endpoints);
  const stateDir = openStore(g).dir;
  let lease = "0";
  try {
    const other = await etcd.get(keys.host(host));
    if (other) throw new UsageError(`host ${host} is already a live member of the cluster (VTEP ${(JSON.parse(other.value) as HostValue).vtep}): give this one another --hostname`);
    // before the plan: a lease nobody keeps alive expires by itself, so a join killed here leaves nothing
    if (!g.dryRun) lease = await etcd.leaseGrant(ttl);
    const value: HostValue = { host, vtep: o.advertise, joined: new Date().toISOString() };
    // the other members, for the VXLAN guard: read before the join's transaction, a step of the plan below;
    // a host that joins in between is added by the agent, which compares them with the store's as it starts
    const members = (await etcd.list(PREFIX + "members/")).kvs.map((kv) => JSON.parse(kv.value) as HostValue);
    const join: ClusterJoin = { store: etcd.url, host, advertise: o.advertise, ttl, lease, joined: value.joined, peers: peerVteps(members, o.advertise) };
    try {
      await mutate(g, (draft) => {
        draft.cluster = join;
        const plan = new Plan(`cluster join ${etcd.url}`);
        // no agent yet: a pid file naming none makes the next command start it, should this one be
        // killed after the join is saved and before it starts the agent (cli.ts, reviveAgent)
        plan.write(agentPidFile(stateDir), "0 0\n", null, "the agent is to be started (by this command, or the next one should this one be killed first)");
        // if absent, put with the lease: two hosts cannot join under one name
        plan.store(etcd.url, [{ key: keys.host(host), target: "CREATE", createRevision: 0 }],
          [{ put: { key: keys.host(host), value: JSON.stringify(value), lease } }, { put: { key: keys.member(host), value: JSON.stringify(value) } }],
          [{ delete: { key: keys.host(host) } }, { delete: { key: keys.member(host) } }],
          `join the cluster as ${host}, VTEP ${o.advertise}`);
        return { plan };
      });
    } catch (err) {
      await etcd.leaseRevoke(lease).catch(() => {});
      throw err;
    }
  } finally {
    etcd.close();
  }
  if (!g.dryRun) await startAgent(stateDir);
}


export interface HostRow {
  Hostname: string;
  Vtep: string;
  Status: "Ready" | "Down";
  Containers: number;
  Self: boolean;
}

/** `cluster ls`: every member, live or not, with its VTEP and how many overlay containers it has. */
export async function listHosts(g: GlobalOptions): Promise<HostRow[]> {
  const state = readState(g);
  const etcd = storeOf(state);
  try {
    const all = await etcd.list(PREFIX);
    const live = new Set<string>();
    const members = new Map<string, HostValue>();
    const count = new Map<string, number>();
    for (const kv of all.kvs) {
      const rest = kv.key.slice(PREFIX.length);
      if (rest.startsWith("hosts/")) live.add(rest.slice("hosts/".length));
      else if (rest.startsWith("members/")) members.set(rest.slice("members/".length), JSON.parse(kv.value));
      else if (rest.startsWith("endpoints/")) {
        const ep = JSON.parse(kv.value) as EndpointValue;
        count.set(ep.host, (count.get(ep.host) ?? 0) + 1);
      }
    }
    return [...members.values()]
      .map((m) => ({ Hostname: m.host, Vtep: m.vtep, Status: live.has(m.host) ? ("Ready" as const) : ("Down" as const), Containers: count.get(m.host) ?? 0, Self: m.host === state.cluster!.host }))
      .sort((a, b) => a.Hostname.localeCompare(b.Hostname));
  } finally {
    etcd.close();
  }
}

/**
 * `cluster prune HOST…`: a dead host's claims released and its membership removed, each host in one
 * transaction that holds only while its lease is gone (a host that comes back in between keeps them). A
 * live host, this host or a stranger is refused. Claims are never released by a lease's expiry alone:
 * the addresses of a host that is only cut off must not be handed to others behind its back.
 */
export async function pruneHosts(g: GlobalOptions, hosts: string[], pruned: (host: string) => void): Promise<void> {
  const state = readState(g);
  const etcd = storeOf(state);
  try {
    const all = (await etcd.list(PREFIX)).kvs;
    const has = (key: string) => all.some((kv) => kv.key === key);
    for (const host of hosts) {
      if (host === state.cluster!.host) throw new UsageError(`${host} is this host: 'ctnet cluster leave' takes it out of the cluster`);
      if (!has(keys.member(host))) throw new UsageError(`no host ${host} in the cluster`);
      if (has(keys.host(host))) throw new UsageError(`host ${host} is alive (its lease is held): only a dead host's claims can be released`);
    }
    for (const host of hosts) {
      const claims = all.filter((kv) => kv.key.startsWith(PREFIX + "endpoints/")).map((kv) => JSON.parse(kv.value) as EndpointValue).filter((e) => e.host === host);
      const ops: TxnOp[] = [...claims.flatMap((e) => [{ delete: { key: keys.endpoint(e.network, e.ip) } }, { delete: { key: keys.name(e.network, e.container) } }]), { delete: { key: keys.member(host) } }];
      if (g.dryRun) {
        process.stdout.write(`${renderStep({ kind: "store", store: etcd.url, compare: [{ key: keys.host(host), target: "CREATE", createRevision: 0 }], success: ops, undo: null, why: "" })}\n`);
        continue;
      }
      if (!(await etcd.txn([{ key: keys.host(host), target: "CREATE", createRevision: 0 }], ops)).succeeded) throw new OpError(`host ${host} came back meanwhile: its claims are kept`);
      pruned(host);
    }
  } finally {
    etcd.close();
  }
}

/**
 * A plan a killed command left behind may hold claims: it is recovered (rolled back: its claims released,
 * or completed) before the store's claims are read, so that the next command does not meet them.
 */
export async function recoverFirst(g: GlobalOptions): Promise<void> {
  const store = openStore(g);
  if (g.dryRun || !fs.existsSync(store.journalFile)) return;
  const { recoverJournal } = await import("../plan/executor.js");
  await store.lock(`ctnet ${process.argv.slice(2).join(" ")}`);
  try {
    await recoverJournal(store, g.verbose);
  } finally {
    store.unlock();
  }
}

/** An unreachable store stops a command before its first step: one line naming the store, exit 1. */
export async function checkReachable(etcd: Etcd): Promise<void> {
  try {
    await etcd.get(keys.host("-"));
  } catch (err) {
    etcd.close();
    throw err instanceof OpError ? err : new OpError(String(err));
  }
}
