// `ctnet reset`: remove everything ctnet made on this host, and its state (like Mininet's `mn -c`).
// What counts as ctnet's is what carries its marks (see doctor.ts) plus what its state names; a bridge,
// namespace or chain somebody else made has none of them and is left alone. So is what another live state
// dir of this host explains (doctor.ts, sparedByOthers): ctnet's chains stay while it has networks.
import fs from "node:fs";
import path from "node:path";
import { UsageError } from "../errors.js";
import { openStore, requireRoot, type GlobalOptions } from "../plan/core.js";
import { driverOf } from "../drivers/registry.js";
import { hasCtnetMark, readKernel, sparedByOthers } from "./doctor.js";
import { execute, finishJournal, recoverJournal } from "../plan/executor.js";
import { inspectNameFile } from "../host/files.js";
import { LINK_ALIAS_PREFIX } from "../naming.js";
import { namespacePids } from "../host/sandbox.js";
import { NAME_FILES } from "../dns/names.js";
import { removeDnsServer } from "../dns/aardvark.js";
import { Plan, renderScript } from "../plan/plan.js";
import { processAlive, type Store } from "../store/store.js";
import { bridgesInKernel, othersForwarding } from "../firewall/firewall.js";
import { firewall } from "../firewall/iptables-driver.js";
import { intentOf } from "../firewall/intent.js";
import { handOverForwarding, syncRegistry, takeHandedOverForwarding } from "../store/statedirs.js";
import { readSysctl, requireTools, sysctlPath } from "../host/sys.js";
import { emptyState, type State } from "../model.js";

/** Removes a container's name file; a link ctnet did not make there is left (and said), never followed. */
function removeNameFileStep(plan: Plan, file: string): void {
  const now = inspectNameFile(file);
  if (now.kind === "link") plan.link(file, null, now.target, `remove ${file}`);
  else if (now.kind === "file") plan.write(file, null, now.content, `remove ${file}`);
  else if (now.kind === "foreign") process.stderr.write(`ctnet: warning: ${now.problem}; reset leaves it\n`);
}

/** The state, or an empty one (with a warning) when it is unreadable: reset then goes by the marks alone. */
function stateForReset(store: Store): State {
  try {
    return store.read();
  } catch (err: any) {
    process.stderr.write(`ctnet: ${err.message.split(";")[0]}: resetting by ctnet's marks alone\n`);
    return emptyState();
  }
}

/** The plan, and how many other live state dirs' objects it leaves alone. */
export function planReset(store: Store, state: State): { plan: Plan; others: number } {
  const plan = new Plan("reset: remove everything ctnet made, and its state");
  const kernel = readKernel();
  const { spared, others, warnings } = sparedByOthers(store.dir, kernel);
  for (const w of warnings) process.stderr.write(`ctnet: warning: ${w}\n`);
  const ownNs = new Set(Object.values(state.containers).map((c) => c.netns).filter((ns): ns is string => !!ns));
  const ownLinks = new Set([...Object.values(state.networks).flatMap((n) => driverOf(n).networkLinks(n)), ...Object.values(state.containers).flatMap((c) => c.endpoints.map((e) => e.hostIf))]);
  // what carries ctnet's marks belongs to this dir unless another's state explains it (or may: unreadable)
  const unclaimed = !spared.everything;
  const ours = (ns: string) => ownNs.has(ns) || (unclaimed && !spared.namespaces.has(ns) && hasCtnetMark(kernel.etcNetns.get(ns)));

  // processes first, so nothing keeps using what is removed next
  const pids = new Set<number>();
  for (const c of Object.values(state.containers)) if (c.pid !== null && processAlive(c.pid, c.pidStart)) pids.add(c.pid);
  const namespaces = [...kernel.netns].filter(ours).sort();
  for (const ns of namespaces) for (const pid of namespacePids(ns)) pids.add(pid);
  plan.kill([...pids].sort((a, b) => a - b), "SIGKILL", "stop every container process");

  // the firewall: ctnet's rules and chains (the user's chain CTNET-USER stays while it holds rules)
  firewall.planReset(plan, kernel, intentOf(state), spared);

  // namespaces first: each takes its veth pairs along, all of them at once in the background, where
  // `ip link del` of each veth waits for the kernel in turn; then the other marked links, bridges last
  const marked = [...kernel.links.values()].filter(
    (l) => ownLinks.has(l.ifname) || (unclaimed && !spared.links.has(l.ifname) && l.alias?.startsWith(LINK_ALIAS_PREFIX)),
  );
  const deleted = new Set(namespaces);
  const takenAlong = marked.filter((l) => deleted.has(/^ctnet:veth:([^/]+)\//.exec(l.alias ?? "")?.[1] ?? ""));
  for (const ns of namespaces) plan.cmd(["ip", "netns", "del", ns], `delete namespace ${ns}`, null);
  for (const l of marked.filter((m) => !takenAlong.includes(m)).sort((a, b) => Number(a.kind === "bridge") - Number(b.kind === "bridge"))) {
    plan.cmd(["ip", "link", "del", l.ifname], `delete ${l.ifname} (${l.alias})`, null);
  }
  plan.waitGone(takenAlong.map((l) => l.ifname), `wait until the kernel has removed ${takenAlong.map((l) => l.ifname).join(", ")}`);
  for (const [dir, hosts] of kernel.etcNetns) {
    if (!ownNs.has(dir) && !(unclaimed && !spared.namespaces.has(dir) && hasCtnetMark(hosts))) continue;
    for (const f of NAME_FILES) removeNameFileStep(plan, `/etc/netns/${dir}/${f}`);
  }

  // the DNS server of user networks, and its files in the state dir
  removeDnsServer(plan);

  // sysctls ctnet changed go back, unless someone changed them since, or (forwarding) another tool uses it.
  // Forwarding another state dir's networks still need stays on: the last of them restores it (bridge.ts).
  const othersBridges = [...bridgesInKernel()].filter((br) => !marked.some((l) => l.ifname === br));
  const handedOver = othersBridges.length === 0 && !spared.everything && !state.sysctls[IP_FORWARD] ? takeHandedOverForwarding(state) : null;
  for (const s of [...Object.values(state.sysctls), ...(handedOver ? [handedOver] : [])]) {
    const file = sysctlPath(s.key);
    if (s.key === IP_FORWARD && (othersBridges.length > 0 || spared.everything)) {
      handOverForwarding(state, s);
      continue;
    }
    if (s.key === IP_FORWARD && othersForwarding().length > 0) continue;
    if (readSysctl(s.key) === s.value) {
      plan.cmd(["sysctl", "-w", `${file.slice("/proc/sys/".length)}=${s.previous}`], `restore ${s.key} (ctnet set it to ${s.value})`, null);
    }
  }

  // the state itself: only the files ctnet writes there, as the state dir may hold others' files too
  const files = ownFiles(store, state).filter((f) => fs.lstatSync(f, { throwIfNoEntry: false }));
  if (files.length) plan.cmd(["rm", "-f", ...files], "remove ctnet's state", null);
  return { plan, others };
}

const IP_FORWARD = "net.ipv4.ip_forward";

/**
 * The files ctnet writes in a state dir: the state and its backup, the journal, an older ctnet's lock
 * file, and the logs and exit statuses (ID.exit) of containers, those the state knows or, in a logs dir
 * ctnet made, any container's.
 */
function ownFiles(store: Store, state: State): string[] {
  const names = ["state.json", "state.json.bak", "journal.json", "journal.progress.json", "lock"].map((f) => path.join(store.dir, f));
  const logs = new Set(Object.values(state.containers).flatMap((c) => [`${c.name}.log`, `${c.id}.exit`]));
  if (state.cluster) logs.add("agent.log");
  if (state.madeDirs?.includes("logs")) {
    try {
      for (const f of fs.readdirSync(store.logDir)) if (/^[a-zA-Z0-9][a-zA-Z0-9_.-]*\.log$|^[0-9a-f]{64}\.exit$/.test(f)) logs.add(f);
    } catch {
      /* no logs dir */
    }
  }
  return [...names, ...[...logs].map((f) => path.join(store.logDir, f))];
}

async function confirm(store: Store, state: State): Promise<boolean> {
  const n = (count: number, what: string) => `${count} ${what}${count === 1 ? "" : "s"}`;
  const question =
    `This removes ${n(Object.keys(state.containers).length, "container")}, ${n(Object.keys(state.networks).length, "network")}, ` +
    `everything else on this host that carries ctnet's marks, and the state in ${store.dir}.\nContinue? [y/N] `;
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export async function resetCommand(g: GlobalOptions, o: { yes?: boolean }): Promise<void> {
  const store = openStore(g);
  if (g.dryRun) {
    process.stdout.write(renderScript(planReset(store, stateForReset(store)).plan));
    return;
  }
  requireRoot();
  requireTools("ip", "iptables", "iptables-save", "sysctl");
  if (!o.yes) {
    if (!process.stdin.isTTY) throw new UsageError("reset asks for confirmation on a terminal: pass -y to reset from a script");
    if (!(await confirm(store, stateForReset(store)))) {
      process.stderr.write("reset cancelled: nothing was changed\n");
      return;
    }
  }
  // a joined host's agent would put back the FDB and ARP entries reset removes (cluster.ts)
  if (fs.existsSync(path.join(store.dir, "agent.pid"))) (await import("../cluster/cluster.js")).stopAgent(store.dir);
  const made = await store.lock(`ctnet reset`);
  let madeDirs: string[] = made;
  let others = 0;
  try {
    // an unfinished plan may have started processes only its journal knows about; on a full disk its
    // recovery may fail to save a state, which reset removes anyway
    try {
      await recoverJournal(store, g.verbose, true);
    } catch (err: any) {
      process.stderr.write(`ctnet: ${err.message.split("\n")[0]}: resetting anyway\n`);
    }
    const state = stateForReset(store);
    madeDirs = [...new Set([...made, ...(state.madeDirs ?? [])])];
    // no journal: reset needs no disk space (it works on a full disk), and a reset that was killed is
    // finished by running it again
    const reset = planReset(store, state);
    others = reset.others;
    await execute(reset.plan, { verbose: g.verbose });
    finishJournal(store);
    syncRegistry(store.dir, state, { removed: true });
  } finally {
    store.unlock();
  }
  // the directories ctnet made, when nothing else lives in them
  for (const dir of ["logs", "."].filter((d) => madeDirs.includes(d))) {
    try {
      fs.rmdirSync(path.join(store.dir, dir));
    } catch {
      /* something that is not ctnet's lives there too: leave the directory */
    }
  }
  if (others === 0) process.stdout.write("ctnet reset: nothing of ctnet is left on this host\n");
  else process.stdout.write(`ctnet reset: nothing of this state dir is left; ${others} other state dir${others === 1 ? "'s" : "s'"} objects were left alone\n`);
}
