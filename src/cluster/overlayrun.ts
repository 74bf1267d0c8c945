// The store's side of overlay networks (docs/overlay.md): `net create -d overlay` as one transaction,
// the networks every joined host lists, and the address and name claims of `run` and `rm`. The kernel's
// side is planned by src/drivers/overlay.ts.
import fs from "node:fs";
import { OpError, UsageError } from "../errors.js";
import {
  addrText, addrValue, allocateAddress, checkHostAddress, checkUsableSubnet, chooseSubnet, contains, macFor, overlaps, parseAddress, parseCidr, type Cidr,
} from "../ipam.js";
import { DEFAULT_BRIDGE_NETWORK, PREDEFINED_NETWORKS, bridgeIfname, newId, validateName } from "../naming.js";
import { mutateEach, openStore, type GlobalOptions } from "../plan/core.js";
import { hostAddresses, hostSubnetsInUse } from "../host/sys.js";
import { normaliseOptions, parseKeyValues, type CreateNetworkOptions } from "../commands/networks.js";
import { singleIpamFlags } from "../commands/netoptions.js";
import { networkAttachments } from "../cli/runflags.js";
import { VXLAN_OVERHEAD, ensureOverlayOnHost, type RemoteEndpoint } from "../drivers/overlay.js";
import { PREFIX, checkReachable, keys, storeOf, type EndpointValue, type HostValue } from "./cluster.js";
import type { Compare, Etcd, KeyValue, TxnOp } from "./etcd.js";
import type { RunOptions } from "../commands/containers.js";
import type { NetworkRecord, State } from "../model.js";

/** An overlay network as the store holds it: the same for every host. */
export interface OverlayNetworkValue {
  name: string;
  id: string;
  created: string;
  subnet: string;
  gateway: string;
  ipRange?: string;
  internal: boolean;
  /** -o options as given (mtu: the user's; each host otherwise uses its underlay's less 50) */
  options: Record<string, string>;
  labels: Record<string, string>;
  vni: number;
  /** the host it was created on */
  host: string;
}

/** Docker's overlay driver hands out VNIs from 4096 up (libnetwork's vxlan id pool). */
const FIRST_VNI = 4096;
const CLAIM_ATTEMPTS = 20;

/** The MTU of the link that holds this host's VTEP address. */
function underlayMtu(vtep: string): number {
  const dev = hostAddresses().find((a) => a.address === vtep)?.ifname;
  return dev ? Number(fs.readFileSync(`/sys/class/net/${dev}/mtu`, "utf8")) : 1500;
}

/** This host's record of an overlay network: its bridge name and its MTU (underlay less 50 unless -o mtu). */
export function localRecord(v: OverlayNetworkValue, vtep: string): NetworkRecord {
  return {
    name: v.name, id: v.id, created: v.created, driver: "overlay", vni: v.vni, bridge: bridgeIfname(v.name),
    subnet: v.subnet, gateway: v.gateway, ...(v.ipRange ? { ipRange: v.ipRange } : {}), internal: v.internal,
    options: { ...v.options, mtu: v.options.mtu ?? String(underlayMtu(vtep) - VXLAN_OVERHEAD) }, labels: v.labels,
  };
}

/** One line of a --dry-run: what the store transaction does. */
function renderTxn(compare: Compare[], success: TxnOp[], when?: string): string {
  const ifs = compare.map((c) => (c.target === "CREATE" ? `absent ${c.key}` : c.key)).join(" && ");
  const thens = success.map((op) => ("put" in op ? `put ${op.put.key}${op.put.lease ? " (lease)" : ""}` : "delete" in op ? `delete ${op.delete.key}` : "")).join("; ");
  return `# store transaction${when ? `, ${when}` : ""}: if ${ifs} then ${thens}\n`;
}

const byPrefix = (kvs: KeyValue[], prefix: string) => kvs.filter((kv) => kv.key.startsWith(PREFIX + prefix));

/** `net create -d overlay`: the network, its VNI and its subnet claimed in one transaction; nothing in the kernel yet. */
export async function createOverlayNetwork(g: GlobalOptions, state: State, name: string, o: CreateNetworkOptions): Promise<string | null> {
  validateName("network", name);
  if ((PREDEFINED_NETWORKS as readonly string[]).includes(name)) throw new UsageError(`network name ${name} is predefined and cannot be created`);
  if (state.networks[name]) throw new UsageError(`network with name ${name} already exists`);
  const options = normaliseOptions(parseKeyValues(o.opt, "option"), "overlay");
  const labels = parseKeyValues(o.label, "label");
  const flags = singleIpamFlags(o);
  if (o.auxAddress?.length) throw new UsageError("--aux-address is not supported on overlay networks yet");
  if (flags.gateway && !flags.subnet) throw new UsageError("--gateway needs --subnet");
  if (flags.ipRange && !flags.subnet) throw new UsageError("--ip-range needs --subnet");
  let subnet = flags.subnet ? parseCidr(flags.subnet) : null;
  if (subnet) checkUsableSubnet(subnet);
  const etcd = storeOf(state);
  try {
    await checkReachable(etcd);
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const all = (await etcd.list(PREFIX)).kvs;
      const nets = byPrefix(all, "networks/").map((kv) => JSON.parse(kv.value) as OverlayNetworkValue);
      if (nets.some((n) => n.name === name)) throw new UsageError(`network with name ${name} already exists`);
      const used: Array<{ cidr: Cidr; where: string }> = [
        ...hostSubnetsInUse().filter((u) => !Object.values(state.networks).some((n) => n.bridge === u.dev)),
        ...Object.values(state.networks).map((n) => ({ cidr: parseCidr(n.subnet), where: `ctnet network ${n.name}` })),
        ...nets.map((n) => ({ cidr: parseCidr(n.subnet), where: `overlay network ${n.name}` })),
      ];
      if (flags.subnet) {
        const hit = used.find((u) => overlaps(u.cidr, subnet!));
        if (hit) throw new UsageError(`subnet ${subnet!.text} overlaps ${hit.where}`);
      } else subnet = chooseSubnet(used.map((u) => u.cidr), true);
      let gateway = subnet!.first + 1n;
      if (flags.gateway) {
        gateway = parseAddress(flags.gateway, "gateway").bigInt();
        checkHostAddress(subnet!, gateway, "gateway", flags.gateway);
      }
      if (flags.ipRange) {
        const range = parseCidr(flags.ipRange, "ip-range");
        if (!contains(subnet!, range.first) || !contains(subnet!, range.last)) throw new UsageError(`ip-range ${range.text} is not inside subnet ${subnet!.text}`);
      }
      const vnis = new Set(byPrefix(all, "vnis/").map((kv) => Number(kv.key.slice((PREFIX + "vnis/").length))));
      let vni = FIRST_VNI;
      while (vnis.has(vni)) vni++;
      const value: OverlayNetworkValue = {
        name, id: newId(), created: new Date().toISOString(), subnet: subnet!.text, gateway: addrText(gateway), ...(flags.ipRange ? { ipRange: parseCidr(flags.ipRange, "ip-range").text } : {}),
        internal: !!o.internal, options, labels, vni, host: state.cluster!.host,
      };
      const compare: Compare[] = [keys.network(name), keys.vni(vni), keys.subnet(value.subnet)].map((key) => ({ key, target: "CREATE", createRevision: 0 }));
      const success: TxnOp[] = [
        { put: { key: keys.network(name), value: JSON.stringify(value) } },
        { put: { key: keys.vni(vni), value: name } },
        { put: { key: keys.subnet(value.subnet), value: name } },
      ];
      if (g.dryRun) {
        process.stdout.write(`#!/bin/sh\n# ctnet plan: net create -d overlay ${name}\n${renderTxn(compare, success)}# nothing changes in the kernel until a container joins it\n`);
        return null;
      }
      // another host claimed the name, VNI or subnet between the read and now: read again
      if ((await etcd.txn(compare, success)).succeeded) return value.id;
    }
    throw new OpError(`could not claim a VNI and subnet for ${name} in ${CLAIM_ATTEMPTS} attempts: the store is too busy`);
  } finally {
    etcd.close();
  }
}

/** Every overlay network of the cluster as this host would have it (for net ls and net inspect). */
export async function clusterNetworks(state: State): Promise<NetworkRecord[]> {
  const etcd = storeOf(state);
  try {
    const { kvs } = await etcd.list(PREFIX + "networks/");
    return kvs.map((kv) => state.networks[(JSON.parse(kv.value) as OverlayNetworkValue).name] ?? localRecord(JSON.parse(kv.value), state.cluster!.advertise));
  } finally {
    etcd.close();
  }
}

/** The overlay network `run --net TARGET` means, from the store; null when TARGET is not one. */
async function overlayNetwork(etcd: Etcd, state: State, target: string): Promise<OverlayNetworkValue | null> {
  const local = state.networks[target];
  if (local && local.driver !== "overlay") return null;
  if (!local && ((PREDEFINED_NETWORKS as readonly string[]).includes(target) || target === "default" || target.startsWith("container:"))) return null;
  const kv = await etcd.get(keys.network(target));
  return kv ? JSON.parse(kv.value) : null;
}

export interface OverlayClaim {
  /** after the run's plan ran: the claim says its link is up, which the agents converge on (--dry-run: prints the claim's transaction) */
  up(): Promise<void>;
  /** after the run's plan failed: the claim is released */
  release(): Promise<void>;
}

/**
 * Before `run --net OVERLAY`: claims the container's address and name on the network in the store (one
 * create-if-absent transaction, retried with the next free address when another host took it first), and
 * hands planRun what it needs to bring the network up here. null when the first network is no overlay.
 */
export async function claimForRun(g: GlobalOptions, state: State, o: RunOptions): Promise<OverlayClaim | null> {
  const [first] = networkAttachments(o.net, o);
  if (state.networks[first.target]?.driver === "bridge" || first.target === DEFAULT_BRIDGE_NETWORK) return null;
  const join = state.cluster!;
  const etcd = storeOf(state);
  const v = await overlayNetwork(etcd, state, first.target);
  if (!v) {
    etcd.close();
    return null;
  }
  const name = (o.name ??= newId().slice(0, 12));
  validateName("container", name);
  if (state.containers[name]) throw new UsageError(`container name ${name} is already in use`);
  const net = localRecord(v, join.advertise);
  const subnet = parseCidr(v.subnet);
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const all = (await etcd.list(PREFIX)).kvs;
    const live = new Set(byPrefix(all, "hosts/").map((kv) => (JSON.parse(kv.value) as HostValue).host));
    const claims = byPrefix(all, `endpoints/${v.name}/`).map((kv) => JSON.parse(kv.value) as EndpointValue);
    const holder = byPrefix(all, `names/${v.name}/`).find((kv) => kv.key === keys.name(v.name, name));
    if (holder) throw new UsageError(`container name ${name} is already in use on overlay network ${v.name} (host ${holder.value})`);
    const taken = new Map(claims.map((c) => [c.ip, c]));
    let ip: string;
    if (first.ip) {
      ip = addrText(addrValue(parseAddress(first.ip, "--ip").correctForm()));
      const other = taken.get(ip);
      if (other) throw new UsageError(`--ip ${ip} is already in use on network ${v.name} (container ${other.container} on host ${other.host})`);
    } else {
      const free = allocateAddress({ subnet, gateway: addrValue(v.gateway), range: v.ipRange ? parseCidr(v.ipRange) : subnet }, new Set(taken.keys()));
      if (free === null) throw new UsageError(`no free address left on network ${v.name} (${v.ipRange ?? v.subnet})`);
      ip = addrText(free);
    }
    const claim: EndpointValue = { network: v.name, ip, mac: first.mac ?? macFor(addrValue(ip)), host: join.host, vtep: join.advertise, container: name, claimed: new Date().toISOString() };
    const peers: RemoteEndpoint[] = claims.filter((c) => c.host !== join.host && live.has(c.host)).map(({ ip, mac, vtep }) => ({ ip, mac, vtep }));
    const compare: Compare[] = [keys.endpoint(v.name, ip), keys.name(v.name, name)].map((key) => ({ key, target: "CREATE", createRevision: 0 }));
    const success: TxnOp[] = [{ put: { key: keys.endpoint(v.name, ip), value: JSON.stringify(claim) } }, { put: { key: keys.name(v.name, name), value: join.host } }];
    // the address goes to planRun as --ip would: newEndpoint then checks it against this host's containers
    if (!first.ip) o.ip = ip;
    o.beforePlan = (plan, draft, ctx) => void ensureOverlayOnHost(plan, ctx, draft, net, peers);
    if (g.dryRun) {
      etcd.close();
      // printed after the plan's script, which must begin with its #! line
      return { up: async () => void process.stdout.write(`\n${renderTxn(compare, success, "before step 1")}`), release: async () => {} };
    }
    if ((await etcd.txn(compare, success)).succeeded) {
      return {
        up: async () => {
          await etcd.put(keys.endpoint(v.name, ip), JSON.stringify({ ...claim, up: true }));
          etcd.close();
        },
        release: async () => {
          await etcd.txn([], [{ delete: { key: keys.endpoint(v.name, ip) } }, { delete: { key: keys.name(v.name, name) } }]).catch(() => {});
          etcd.close();
        },
      };
    }
    if (first.ip) continue;
  }
  etcd.close();
  throw new OpError(`could not claim an address on ${v.name} in ${CLAIM_ATTEMPTS} attempts: the store is too busy`);
}

/**
 * Before `rm` of containers on overlay networks: the store must be reachable (else nothing is removed);
 * returns what releases their claims once they are gone.
 */
export async function claimsOfRemoval(state: State, names: string[]): Promise<((removed: string[]) => Promise<void>) | null> {
  const eps = (name: string) => (state.containers[name]?.endpoints ?? []).filter((e) => state.networks[e.network]?.driver === "overlay");
  if (!names.some((n) => eps(n).length > 0)) return null;
  const etcd = storeOf(state);
  await checkReachable(etcd);
  return async (removed) => {
    const ops: TxnOp[] = removed.flatMap((n) => eps(n).flatMap((e) => [{ delete: { key: keys.endpoint(e.network, e.ip) } }, { delete: { key: keys.name(e.network, n) } }]));
    try {
      if (ops.length) await etcd.txn([], ops);
    } finally {
      etcd.close();
    }
  };
}

/** Removes containers (leave --force), releasing their claims. */
export async function removeContainers(g: GlobalOptions, state: State, names: string[]): Promise<void> {
  const { planRm } = await import("../commands/containers.js");
  const release = await claimsOfRemoval(state, names);
  const removed: string[] = [];
  await mutateEach(g, names, (draft, some) => planRm(draft, openStore(g).dir, some, true), (n) => removed.push(n));
  await release?.(removed);
}

/**
 * `net rm` of overlay networks this host has no container on: each removed from the store in one
 * transaction that holds only while no host has a container on it (no claim under its endpoint prefix).
 * Returns the names it is not about (not overlay networks of the store), for the local `net rm`.
 */
export async function removeOverlayNetworks(g: GlobalOptions, state: State, names: string[], removed: (name: string) => void): Promise<string[]> {
  const etcd = storeOf(state);
  const rest: string[] = [];
  try {
    for (const name of names) {
      if (state.networks[name]?.driver === "bridge" || (PREDEFINED_NETWORKS as readonly string[]).includes(name)) {
        rest.push(name);
        continue;
      }
      const kv = await etcd.get(keys.network(name));
      if (!kv) {
        rest.push(name);
        continue;
      }
      const v = JSON.parse(kv.value) as OverlayNetworkValue;
      const compare: Compare[] = [{ key: keys.endpoint(name, ""), target: "CREATE", createRevision: 0, prefix: true }, { key: keys.network(name), target: "MOD", modRevision: kv.modRevision }];
      const success: TxnOp[] = [{ delete: { key: keys.network(name) } }, { delete: { key: keys.vni(v.vni) } }, { delete: { key: keys.subnet(v.subnet) } }, { delete: { key: keys.name(name, ""), prefix: true } }];
      if (g.dryRun) {
        process.stdout.write(renderTxn(compare, success));
        continue;
      }
      if ((await etcd.txn(compare, success)).succeeded) {
        removed(name);
        continue;
      }
      const users = (await etcd.list(keys.endpoint(name, ""))).kvs.map((e) => JSON.parse(e.value) as EndpointValue);
      const hosts = [...new Set(users.map((u) => u.host))].sort();
      throw new UsageError(`network ${name} has active endpoints (${users.map((u) => u.container).sort().join(", ")}) on host${hosts.length === 1 ? "" : "s"} ${hosts.join(", ")}`);
    }
  } finally {
    etcd.close();
  }
  return rest;
}

