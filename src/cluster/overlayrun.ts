// The store's side of overlay networks (docs/overlay.md): `net create -d overlay` as one transaction,
// the networks every joined host lists, and what `run`, `rm`, `net connect` and `start` read of the store
// before they plan their claims (claims.ts). The kernel's side is planned by src/drivers/overlay.ts.
import { OpError, UsageError } from "../errors.js";
import {
  addrText, addrValue, allocateAddress, checkHostAddress, checkUsableSubnet, chooseSubnet, contains, macFor, overlaps, parseAddress, parseCidr, type Cidr,
} from "../ipam.js";
import { DEFAULT_BRIDGE_NETWORK, PREDEFINED_NETWORKS, newId, validateName } from "../naming.js";
import { mutate, mutateEach, openStore, readState, type GlobalOptions } from "../plan/core.js";
import { Plan, renderStep } from "../plan/plan.js";
import { hostSubnetsInUse } from "../host/sys.js";
import { normaliseOptions, parseKeyValues, type CreateNetworkOptions } from "../commands/networks.js";
import { singleIpamFlags } from "../commands/netoptions.js";
import { networkAttachments } from "../cli/runflags.js";
import { ensureOverlayOnHost, type RemoteEndpoint } from "../drivers/overlay.js";
import { checkReachable, recoverFirst, stopAgent, storeOf } from "./cluster.js";
import { PREFIX, keys, localRecord, overlayEndpoints, setClusterView, type EndpointValue, type HostValue, type OverlayNetworkValue } from "./claims.js";
import type { Compare, Etcd, KeyValue, TxnOp } from "./etcd.js";
import type { RunOptions } from "../commands/containers.js";
import type { NetworkRecord, State } from "../model.js";

/** Docker's overlay driver hands out VNIs from 4096 up (libnetwork's vxlan id pool). */
const FIRST_VNI = 4096;
const CLAIM_ATTEMPTS = 20;

/** After a claim step failed: whether a key it puts now holds another value (another host was first). */
async function claimedBySomeoneElse(etcd: Etcd, success: TxnOp[]): Promise<boolean> {
  try {
    for (const op of success) {
      if (!("put" in op)) continue;
      const kv = await etcd.get(op.put.key);
      if (kv && kv.value !== op.put.value) return true;
    }
  } catch {
    /* the store is gone: the step's own error says so */
  }
  return false;
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
    await recoverFirst(g);
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
      const undo: TxnOp[] = success.map((op) => ({ delete: { key: "put" in op ? op.put.key : "" } }));
      // a plan of one store step, journaled: a crash before the state is saved releases the claims. Nothing
      // changes in the kernel until a container joins the network.
      try {
        await mutate(g, () => ({ plan: new Plan(`net create -d overlay ${name}`).store(etcd.url, compare, success, undo, `claim overlay network ${name}, its VNI ${vni} and its subnet ${value.subnet}`) }));
        return g.dryRun ? null : value.id;
      } catch (err) {
        // another host claimed the name, VNI or subnet between the read and now: read again
        if (!(await claimedBySomeoneElse(etcd, success))) throw err;
      }
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

/**
 * `run`/`create` on a joined host. When the first network is an overlay network, the container's address
 * and name are claimed by the plan's first step (a create-if-absent transaction, undone by rollback and
 * crash recovery) and the network is brought up on this host; its last step marks the claim up. When
 * another host took the address or the name meanwhile, the whole run is planned again from the store.
 */
export async function runOnCluster(g: GlobalOptions, state: State, o: RunOptions, run: () => Promise<number>): Promise<number> {
  const given = { ip: o.ip, name: o.name };
  await recoverFirst(g);
  state = readState(g);
  // a later --network may be an overlay network (one this host has none of yet is not in its state):
  // joined as net connect joins it, from the store's claims. Later bridge networks need no store
  const later = networkAttachments(o.net, o).slice(1);
  const laterOverlay = () => later.some((a) => state.networks[a.target]?.driver !== "bridge");
  if (laterOverlay()) await readCluster(g, state);
  const etcd = storeOf(state);
  try {
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const claim = await planClaim(etcd, state, o);
      if (!claim) return await run();
      let code: number;
      try {
        code = await run();
      } catch (err) {
        if (!(await claimedBySomeoneElse(etcd, claim))) throw err;
        Object.assign(o, given, { beforePlan: undefined });
        state = readState(g);
        // the failed plan's claims on later networks are in the view: it is read again
        if (laterOverlay()) await readCluster(g, state);
        continue;
      }
      // once the state holds the container (the agent releases an up claim no container holds), unless a
      // foreground run --rm released it meanwhile
      const [ep] = claim;
      if (!g.dryRun && "put" in ep) await etcd.txn([{ key: ep.put.key, target: "VALUE", value: ep.put.value }], [{ put: { key: ep.put.key, value: JSON.stringify({ ...JSON.parse(ep.put.value), up: true }) } }]);
      return code;
    }
  } finally {
    etcd.close();
  }
  throw new OpError(`could not claim an address on ${o.net} in ${CLAIM_ATTEMPTS} attempts: the store is too busy`);
}

/**
 * Chooses the address of `run --net OVERLAY` from the store's claims and hands planRun, through
 * o.beforePlan, the steps that claim it and bring the network up here. Returns the claim's puts; null
 * when the first network is no overlay network.
 */
async function planClaim(etcd: Etcd, state: State, o: RunOptions): Promise<TxnOp[] | null> {
  const [first] = networkAttachments(o.net, o);
  if (state.networks[first.target]?.driver === "bridge" || first.target === DEFAULT_BRIDGE_NETWORK) return null;
  const join = state.cluster!;
  const v = await overlayNetwork(etcd, state, first.target);
  if (!v) return null;
  if (o.create) {
    // nothing is claimed or built until start (claims.ts, claimOnConnect): the planner only needs the record
    o.beforePlan = (_plan, draft) => void (draft.networks[v.name] ??= localRecord(v, join.advertise));
    return null;
  }
  o.id ??= newId();
  const name = (o.name ??= o.id.slice(0, 12));
  validateName("container", name);
  if (state.containers[name]) throw new UsageError(`container name ${name} is already in use`);
  const net = localRecord(v, join.advertise);
  const subnet = parseCidr(v.subnet);
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
  const claim: EndpointValue = { network: v.name, ip, mac: first.mac ?? macFor(addrValue(ip)), host: join.host, vtep: join.advertise, container: name, id: o.id, aliases: first.aliases ?? [], claimed: new Date().toISOString() };
  const peers: RemoteEndpoint[] = claims.filter((c) => c.host !== join.host && live.has(c.host)).map(({ ip, mac, vtep }) => ({ ip, mac, vtep }));
  const [epKey, nameKey] = [keys.endpoint(v.name, ip), keys.name(v.name, name)];
  const compare: Compare[] = [epKey, nameKey].map((key) => ({ key, target: "CREATE", createRevision: 0 }));
  const success: TxnOp[] = [{ put: { key: epKey, value: JSON.stringify(claim) } }, { put: { key: nameKey, value: join.host } }];
  // the address goes to planRun as --ip would: newEndpoint then checks it against this host's containers
  if (!first.ip) o.ip = ip;
  o.beforePlan = (plan, draft, ctx) => {
    plan.store(join.store, compare, success, [{ delete: { key: epKey } }, { delete: { key: nameKey } }], `claim ${ip} and the name ${name} on overlay network ${v.name}`);
    ensureOverlayOnHost(plan, ctx, draft, net, peers);
  };
  return success;
}

/**
 * Before a command that may connect containers to overlay networks (net connect, start, restart): the
 * store's networks and claims, for its planners (claims.ts, claimOnConnect), after any plan a killed
 * command left is recovered. An unreachable store stops it here, before its first step.
 */
export async function readCluster(g: GlobalOptions, state: State): Promise<void> {
  const etcd = storeOf(state);
  try {
    await checkReachable(etcd);
    await recoverFirst(g);
    const all = (await etcd.list(PREFIX)).kvs;
    setClusterView({
      networks: new Map(byPrefix(all, "networks/").map((kv) => JSON.parse(kv.value) as OverlayNetworkValue).map((v) => [v.name, v])),
      claims: byPrefix(all, "endpoints/").map((kv) => JSON.parse(kv.value) as EndpointValue),
      live: new Set(byPrefix(all, "hosts/").map((kv) => (JSON.parse(kv.value) as HostValue).host)),
    });
  } finally {
    etcd.close();
  }
}

/**
 * Before `rm` of containers on overlay networks: the store must be reachable (else nothing is removed:
 * the rm plan's last step releases their claims).
 */
export async function checkStoreForRemoval(state: State, names: string[]): Promise<void> {
  if (!names.some((n) => state.containers[n] && overlayEndpoints(state, state.containers[n]).length > 0)) return;
  const etcd = storeOf(state);
  await checkReachable(etcd);
  etcd.close();
}

/** Removes containers (leave --force); their plan releases their claims. */
async function removeContainers(g: GlobalOptions, state: State, names: string[]): Promise<void> {
  const { planRm } = await import("../commands/containers.js");
  await checkStoreForRemoval(state, names);
  await mutateEach(g, names, (draft, some) => planRm(draft, openStore(g).dir, some, true), () => {});
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
        process.stdout.write(`${renderStep({ kind: "store", store: etcd.url, compare, success, undo: null, why: "" })}\n`);
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

export async function leaveCluster(g: GlobalOptions, force: boolean): Promise<void> {
  const state = readState(g);
  const etcd = storeOf(state);
  const join = state.cluster!;
  const stateDir = openStore(g).dir;
  try {
    const onOverlay = Object.values(state.containers).filter((c) => c.endpoints.some((e) => state.networks[e.network]?.driver === "overlay"));
    if (onOverlay.length > 0 && !force) throw new UsageError(`this host has containers on overlay networks (${onOverlay.map((c) => c.name).join(", ")}): remove them, or leave with --force`);
    if (onOverlay.length > 0) {
      await removeContainers(g, state, onOverlay.map((c) => c.name));
    }
    stopAgent(stateDir);
    await etcd.txn([], [{ delete: { key: keys.host(join.host) } }, { delete: { key: keys.member(join.host) } }]);
    await etcd.leaseRevoke(join.lease).catch(() => {});
    await mutate(g, (draft) => {
      delete draft.cluster;
      return { plan: new Plan("cluster leave") };
    });
  } finally {
    etcd.close();
  }
}
