// `doctor` on a joined host (docs/overlay.md): this host's overlay kernel state (the FDB and ARP entries
// of its VXLAN devices) and its claims compared with the store, and its agent checked. The store is read
// before the diagnosis, which is synchronous; --fix converges through doctor's plan.
import fs from "node:fs";
import { agentPid, startAgent, storeOf } from "./cluster.js";
import { PREFIX, keys, overlayEndpoints, peerVteps, type EndpointValue, type HostValue } from "./claims.js";
import { planPeers } from "./members.js";
import { View, strayClaims, tunnelEntries } from "./agent.js";
import { peerArgvs, vxlanIfname } from "../drivers/overlay.js";
import { dnsConfigPath, fixRemoteNames, remoteLines } from "../dns/aardvark.js";
import { readOrNull } from "../host/sys.js";
import type { Finding } from "../drivers/driver.js";
import type { Compare } from "./etcd.js";
import type { State } from "../model.js";

export interface OverlayCheck {
  findings: (state: State) => Finding[];
  /** after doctor --fix: the agent started when it was not running */
  afterFix: () => Promise<void>;
}

export async function readOverlayCheck(state: State, stateDir: string): Promise<OverlayCheck> {
  const join = state.cluster!;
  const etcd = storeOf(state);
  const view = new View();
  try {
    view.load((await etcd.list(PREFIX)).kvs);
  } catch (err: any) {
    return { findings: () => [{ text: `${err.message}: the overlay networks' state is not compared with it`, phase: 8 }], afterFix: async () => {} };
  } finally {
    etcd.close();
  }
  const agentRunning = () => agentPid(stateDir) !== null;
  return {
    findings: (st) => {
      const out: Finding[] = [];
      if (!agentRunning()) out.push({ text: `the cluster agent of this host is not running: --fix starts it (nothing converges this host's FDB and ARP entries, nor the members its VXLAN guard lets in, meanwhile)`, phase: 8 });
      // the members the VXLAN guard lets in (the agent keeps them; a stopped agent does not)
      const peers = peerVteps(view.values<HostValue>("members/"), join.advertise);
      const held = st.cluster?.peers ?? [];
      if (st.cluster && peers.join(" ") !== held.join(" ")) {
        const missing = peers.filter((p) => !held.includes(p));
        const gone = held.filter((p) => !peers.includes(p));
        out.push({
          text: `the members this host lets send VXLAN differ from the store's (${[missing.length ? `missing: ${missing.join(", ")}` : "", gone.length ? `no longer members: ${gone.join(", ")}` : ""].filter(Boolean).join("; ")})`,
          phase: 9,
          fix: (plan) => planPeers(plan, st, peers),
        });
      }
      const desired = view.desired(join.host);
      const names = view.remoteNames(join.host);
      for (const net of Object.values(st.networks)) {
        if (net.driver !== "overlay") continue;
        // the DNS server's lines for other hosts' containers (the agent writes them; no file: no local names yet)
        const file = readOrNull(dnsConfigPath(net.name));
        if (file !== null) {
          const want = names.get(net.name) ?? [];
          const have = remoteLines(st, net.name, file);
          const first = (line: string) => line.split(/\s+/)[2].split(",")[0];
          const missing = want.filter((l) => !have.includes(l)).map(first);
          const stale = have.filter((l) => !want.includes(l)).map(first);
          if (missing.length + stale.length > 0) {
            out.push({
              text: `overlay network ${net.name}: the DNS server's names of other hosts' containers differ from the store (${[missing.length ? `missing: ${missing.join(", ")}` : "", stale.length ? `stale: ${stale.join(", ")}` : ""].filter(Boolean).join("; ")})`,
              phase: 8,
              fix: (plan) => fixRemoteNames(plan, st, net.name, want),
            });
          }
        }
        const vx = vxlanIfname(net.vni!);
        // a missing device is the driver's finding (overlay.ts, checkNetwork)
        if (!fs.existsSync(`/sys/class/net/${vx}`)) continue;
        const want = desired.get(vx) ?? [];
        const have = tunnelEntries(vx);
        for (const p of want) {
          const { fdb, neigh } = peerArgvs(vx, p);
          if (!have.fdb.some((e) => e.mac === p.mac && e.dst === p.vtep)) {
            out.push({ text: `overlay network ${net.name}: FDB entry ${p.mac} -> VTEP ${p.vtep} (${p.ip}) is missing`, phase: 9, fix: (plan) => plan.cmd(fdb, `frames for ${p.mac} (${p.ip}) go to VTEP ${p.vtep}`, null) });
          }
          if (!have.neigh.some((e) => e.dst === p.ip && e.lladdr === p.mac)) {
            out.push({ text: `overlay network ${net.name}: ARP entry ${p.ip} -> ${p.mac} is missing`, phase: 9, fix: (plan) => plan.cmd(neigh, `${vx} answers ARP for ${p.ip} itself`, null) });
          }
        }
        for (const e of have.fdb) {
          if (want.some((p) => p.mac === e.mac && p.vtep === e.dst)) continue;
          out.push({ text: `overlay network ${net.name}: stale FDB entry ${e.mac} -> VTEP ${e.dst}: no live host's claim in the store`, phase: 3, fix: (plan) => plan.cmd(["bridge", "fdb", "del", e.mac, "dev", vx, "dst", e.dst, "self"], `remove the stale FDB entry of ${e.mac}`, null) });
        }
        for (const e of have.neigh) {
          if (want.some((p) => p.ip === e.dst)) continue;
          out.push({ text: `overlay network ${net.name}: stale ARP entry ${e.dst}: no live host's claim in the store`, phase: 3, fix: (plan) => plan.cmd(["ip", "neigh", "del", e.dst, "dev", vx], `remove the stale ARP entry of ${e.dst}`, null) });
        }
      }
      const claims = view.entries<EndpointValue>("endpoints/");
      for (const kv of strayClaims(claims, join.host, st, Date.now())) {
        const ep = JSON.parse(kv.value) as EndpointValue;
        out.push({
          text: `claim of ${ep.container} on overlay network ${ep.network} (${ep.ip}) in the store: no such container on this host`,
          phase: 2,
          fix: (plan) => plan.store(join.store, [{ key: kv.key, target: "MOD", modRevision: kv.modRevision }], [{ delete: { key: kv.key } }, { delete: { key: keys.name(ep.network, ep.container) } }], null, `release the stray claim of ${ep.container} on ${ep.network}`),
        });
      }
      for (const c of Object.values(st.containers)) {
        for (const e of overlayEndpoints(st, c)) {
          if (claims.some(([, v]) => v.host === join.host && v.network === e.network && v.ip === e.ip && v.container === c.name)) continue;
          const claim: EndpointValue = { network: e.network, ip: e.ip, mac: e.mac, host: join.host, vtep: join.advertise, container: c.name, id: c.id, aliases: e.aliases, claimed: new Date().toISOString(), up: true };
          const [epKey, nameKey] = [keys.endpoint(e.network, e.ip), keys.name(e.network, c.name)];
          const text = `container ${c.name} on overlay network ${e.network} (${e.ip}): its claim is missing from the store (other hosts cannot reach it)`;
          const taken = view.kvs.get(epKey);
          const nameHolder = view.kvs.get(nameKey)?.value;
          if (taken || (nameHolder && nameHolder !== join.host)) {
            out.push({ text: `${text}; not fixable: ${taken ? `the address is claimed by ${(JSON.parse(taken.value) as EndpointValue).container} on host ${(JSON.parse(taken.value) as EndpointValue).host}` : `the name is held by host ${nameHolder}`} (rm the container and run it again)`, phase: 8 });
            continue;
          }
          // the name may be left over from the claim: it is this host's then
          const compare: Compare[] = [{ key: epKey, target: "CREATE", createRevision: 0 }, nameHolder ? { key: nameKey, target: "VALUE", value: join.host } : { key: nameKey, target: "CREATE", createRevision: 0 }];
          out.push({
            text,
            phase: 9,
            fix: (plan) => plan.store(join.store, compare, [{ put: { key: epKey, value: JSON.stringify(claim) } }, { put: { key: nameKey, value: join.host } }], [{ delete: { key: epKey } }, { delete: { key: nameKey } }], `claim ${e.ip} and the name ${c.name} on ${e.network} again`),
          });
        }
      }
      return out;
    },
    afterFix: async () => {
      if (!agentRunning()) await startAgent(stateDir);
    },
  };
}
