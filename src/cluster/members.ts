// The cluster's members as this host's state keeps them (ClusterJoin.peers): the VTEPs the guard of its
// VXLAN port lets in (firewall.ts, vxlanRules). `cluster join` writes them; the agent keeps them equal to
// the store's members (joins, `cluster leave`, `cluster prune`), each change in one plan that also moves
// the guard's rules.
import { mutate, type GlobalOptions } from "../plan/core.js";
import { Plan } from "../plan/plan.js";
import { planChange } from "../firewall/firewall.js";
import { intentOf } from "../firewall/intent.js";
import { liveHostFacts } from "../host/facts.js";
import { peerVteps, type HostValue } from "./claims.js";
import type { ClusterJoin, State } from "../model.js";

const RETRY_MS = 2_000;

/** The peers the state holds as far as this agent knows: as it read them at its start, then as it wrote them. */
let known: string | undefined;
/** The store's latest, for the change under way to go on with. */
let wanted: string[] = [];
let busy = false;

/**
 * Called on every change the agent sees (most are claims): compares the store's members with the state's,
 * and only when they differ takes the lock and plans the change. One plan at a time, then the latest
 * members; a failed plan is tried again.
 */
export function convergePeersSoon(g: GlobalOptions, join: ClusterJoin, members: HostValue[], log: (msg: string) => void): void {
  wanted = peerVteps(members, join.advertise);
  known ??= join.peers?.join(" ");
  if (!busy) convergePeers(g, log);
}

function convergePeers(g: GlobalOptions, log: (msg: string) => void): void {
  const peers = wanted;
  if (peers.join(" ") === known) return;
  busy = true;
  setPeers(g, peers)
    .then(() => {
      known = peers.join(" ");
      log(`the other members' VTEPs: ${peers.join(", ") || "none"}`);
    }, async (err) => {
      log(`cannot update the other members' VTEPs: ${err.message}`);
      await new Promise((r) => setTimeout(r, RETRY_MS));
    })
    .finally(() => {
      busy = false;
      convergePeers(g, log);
    });
}

/** The state's peers set to `peers`, and the guard's rules changed with them (none without overlay networks). */
export function planPeers(plan: Plan, draft: State, peers: string[]): void {
  // the host left meanwhile: nothing to guard
  if (!draft.cluster) return;
  const before = intentOf(draft);
  draft.cluster.peers = peers;
  planChange(plan, draft, before, intentOf(draft), liveHostFacts());
}

async function setPeers(g: GlobalOptions, peers: string[]): Promise<void> {
  await mutate(g, (draft) => {
    const plan = new Plan("cluster members changed");
    planPeers(plan, draft, peers);
    return { plan };
  });
}
