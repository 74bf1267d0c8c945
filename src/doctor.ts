// `ctnet doctor`: state against kernel. Reads what the host holds (links, addresses, routes, namespaces,
// iptables, /etc/netns files, processes, sysctls), compares it with what ctnet's state implies, and lists
// every difference. `doctor --fix` turns the differences into one plan (dry-runnable like any other):
// containers whose namespace is gone are released, then everything the state implies is recreated and
// everything carrying ctnet's marks that the state does not explain is removed.
//
// Marks: a link whose alias starts "ctnet:", an iptables chain named CTNET-…, a rule in (or jumping to)
// such a chain, a namespace or /etc/netns dir whose hosts file starts "# ctnet". Nothing else is touched.
// doctor assumes one ctnet state per host (network namespace): marked objects of another --state-dir are
// orphans to it.
import fs from "node:fs";
import { OpError, UsageError } from "./errors.js";
import { mutate, openStore, type GlobalOptions } from "./core.js";
import { addBridgeArgv, attachEndpoints, readSysctl } from "./drivers/bridge.js";
import { pendingPlan } from "./executor.js";
import { BASE_RULES, CHAINS, addRule, ipt, networkRules, type Rule, type Table } from "./firewall.js";
import { DEFAULT_BRIDGE_NETWORK, LINK_ALIAS_PREFIX, linkAlias } from "./naming.js";
import { membersOf, routeNetwork } from "./networks.js";
import { Plan } from "./plan.js";
import { portLayer } from "./ports.js";
import { NETWORK_HOSTS_DIR, hostsFileFor, linkTarget, networkHostsFile, networkHostsPath, sharedHostsNetwork, syncNameFiles } from "./sandbox.js";
import { processAlive, type Store } from "./store.js";
import { isRoot, netnsNames, readOrNull, run } from "./sys.js";
import type { ContainerRecord, State } from "./model.js";

// ---- the kernel's view ---------------------------------------------------------------------------

export interface KernelLink {
  ifname: string;
  kind: string;
  master: string | null;
  alias: string | null;
  up: boolean;
  mtu: number;
}

export interface KernelRule {
  table: Table;
  chain: string;
  /** the rule as iptables-save prints it after "-A CHAIN", unquoted */
  spec: string[];
  key: string;
}

export interface Kernel {
  links: Map<string, KernelLink>;
  /** IPv4 addresses (a.b.c.d/len) by interface */
  addrs: Map<string, string[]>;
  netns: Set<string>;
  /** /etc/netns/NAME -> its hosts file (null when absent) */
  etcNetns: Map<string, string | null>;
  chains: Array<{ table: Table; name: string }>;
  rules: KernelRule[];
}

const json = (argv: string[]): any[] => {
  const res = run(argv);
  return res.code === 0 && res.stdout.trim() ? JSON.parse(res.stdout) : [];
};

export function readLinks(ns?: string): Map<string, KernelLink> {
  const links = json(["ip", ...(ns ? ["-n", ns] : []), "-d", "-j", "link", "show"]);
  return new Map(
    links.map((l) => [
      l.ifname,
      { ifname: l.ifname, kind: l.linkinfo?.info_kind ?? "", master: l.master ?? null, alias: l.ifalias ?? null, up: (l.flags ?? []).includes("UP"), mtu: l.mtu },
    ]),
  );
}

export function readAddrs(ns?: string): Map<string, string[]> {
  const links = json(["ip", ...(ns ? ["-n", ns] : []), "-4", "-j", "addr", "show"]);
  return new Map(links.map((l) => [l.ifname, (l.addr_info ?? []).map((a: any) => `${a.local}/${a.prefixlen}`)]));
}

/** Splits an iptables-save line into words, honouring its double quotes. */
export function splitRuleLine(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]);
  return words;
}

const LONG_FORMS: Record<string, string> = {
  "--source": "-s", "--destination": "-d", "--in-interface": "-i", "--out-interface": "-o",
  "--protocol": "-p", "--jump": "-j", "--match": "-m", "--goto": "-g",
};

/**
 * A rule's identity independent of how it was written: option groups ("! -o br", "-m conntrack",
 * "--ctstate DNAT") sorted, single addresses as /32, and the "-m tcp" iptables-save adds after "-p tcp"
 * dropped. iptables-save prints addresses and interfaces before matches, whatever order they were given in.
 */
export function ruleKey(table: string, chain: string, spec: string[]): string {
  const groups: string[][] = [];
  let negate = false;
  for (const raw of spec) {
    const w = LONG_FORMS[raw] ?? raw;
    if (w === "!") {
      negate = true;
      continue;
    }
    if (/^--?[a-zA-Z]/.test(w) || groups.length === 0) {
      groups.push(negate ? ["!", w] : [w]);
      negate = false;
    } else {
      const g = groups[groups.length - 1];
      const opt = g[g.length - 1];
      g.push((opt === "-s" || opt === "-d") && !w.includes("/") ? `${w}/32` : w);
    }
  }
  const proto = groups.find((g) => g[0] === "-p")?.[1];
  const kept = groups.filter((g) => !(g[0] === "-m" && g[1] === proto));
  return `${table} ${chain} ${kept.map((g) => g.join(" ")).sort().join(" | ")}`;
}

export function readIptables(): { chains: Kernel["chains"]; rules: KernelRule[] } {
  const chains: Kernel["chains"] = [];
  const rules: KernelRule[] = [];
  for (const table of ["filter", "nat"] as Table[]) {
    const res = run(["iptables-save", "-t", table]);
    if (res.code !== 0) throw new OpError(`iptables-save -t ${table} failed: ${res.stderr.trim()}`);
    for (const line of res.stdout.split("\n")) {
      if (line.startsWith(":")) chains.push({ table, name: line.slice(1).split(" ")[0] });
      else if (line.startsWith("-A ")) {
        const [, chain, ...spec] = splitRuleLine(line);
        rules.push({ table, chain, spec, key: ruleKey(table, chain, spec) });
      }
    }
  }
  return { chains, rules };
}

export function readEtcNetns(): Map<string, string | null> {
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync("/etc/netns");
  } catch {
    /* none */
  }
  return new Map(dirs.map((d) => [d, readOrNull(`/etc/netns/${d}/hosts`)]));
}

export function readKernel(): Kernel {
  return { links: readLinks(), addrs: readAddrs(), netns: netnsNames(), etcNetns: readEtcNetns(), ...readIptables() };
}

export const isCtnetChain = (name: string) => name.startsWith("CTNET-");
export const isCtnetRule = (r: KernelRule) => isCtnetChain(r.chain) || r.spec.some((w, i) => (r.spec[i - 1] === "-j" || r.spec[i - 1] === "-g") && isCtnetChain(w));
export const hasCtnetMark = (hosts: string | null | undefined) => !!hosts?.startsWith("# ctnet");

/** A recorded sysctl's file: net.ipv4.conf.DEV.KEY keeps DEV whole (bridge names may contain dots). */
export function sysctlPath(key: string): string {
  const conf = /^net\.ipv4\.conf\.(.+)\.([a-z_]+)$/.exec(key);
  return conf ? `/proc/sys/net/ipv4/conf/${conf[1]}/${conf[2]}` : `/proc/sys/${key.replace(/\./g, "/")}`;
}

const readSysctlKey = (key: string) => readOrNull(sysctlPath(key))?.trim() ?? readSysctl(key);

// ---- differences ---------------------------------------------------------------------------------

/** One difference, and how --fix repairs it (absent: doctor can only report it). */
export interface Finding {
  text: string;
  /** fixes run in phase order: removals first, then what the state needs, innermost last */
  phase: number;
  fix?: (plan: Plan) => void;
}

const ownNamespace = (c: ContainerRecord) => (c.mode === "bridge" || c.mode === "none") && !!c.netns;

/** Rules the state implies, in installation order. */
export function expectedRules(state: State): Rule[] {
  const nets = Object.values(state.networks);
  if (nets.length === 0) return [];
  return [...BASE_RULES, ...nets.flatMap(networkRules), ...portLayer(state).rules.values()];
}

/**
 * Releases (from `state`) the containers whose namespace is gone, e.g. after a reboot: nothing of their
 * sandbox is left to repair. Returns the findings that say so. The default network goes with its last one.
 */
export function releaseLost(state: State, kernel: Kernel): Finding[] {
  const out: Finding[] = [];
  for (const c of Object.values(state.containers)) {
    if (!ownNamespace(c) || kernel.netns.has(c.netns!)) continue;
    const alive = c.pid !== null && processAlive(c.pid, c.pidStart);
    out.push({
      text: `container ${c.name}: namespace ${c.netns} is gone (a reboot?): --fix releases the container${alive ? ` and stops its process ${c.pid}` : ""}`,
      phase: 1,
      fix: alive ? (plan) => plan.kill([c.pid!], "SIGKILL", `${c.name}'s namespace is gone: stop its process`) : undefined,
    });
    delete state.containers[c.name];
  }
  // containers joined to a released one lost their namespace too
  for (const c of Object.values(state.containers)) {
    if (c.mode === "container" && !state.containers[c.joined!]) {
      out.push({ text: `container ${c.name}: the container whose namespace it joined (${c.joined}) is gone: --fix releases it`, phase: 1 });
      delete state.containers[c.name];
    }
  }
  const dflt = state.networks[DEFAULT_BRIDGE_NETWORK];
  if (out.length > 0 && dflt && membersOf(state, dflt.name).length === 0) delete state.networks[dflt.name];
  return out;
}

/** Everything that differs between `state` and `kernel`; fixes add steps to the plan they are given. */
export function compare(state: State, kernel: Kernel): Finding[] {
  const out: Finding[] = [];
  const nets = Object.values(state.networks);
  const containers = Object.values(state.containers);

  // -- links ---------------------------------------------------------------------------------------
  const expectedLinks = new Set([...nets.map((n) => n.bridge), ...containers.flatMap((c) => c.endpoints.map((e) => e.hostIf))]);
  for (const link of kernel.links.values()) {
    if (link.alias?.startsWith(LINK_ALIAS_PREFIX) && !expectedLinks.has(link.ifname)) {
      const bridge = link.kind === "bridge";
      out.push({
        text: `orphan ${bridge ? "bridge" : "link"} ${link.ifname} (alias ${link.alias}): not in ctnet's state`,
        phase: bridge ? 4 : 3,
        fix: (plan) => plan.cmd(["ip", "link", "del", link.ifname], `remove orphan ${link.ifname} (${link.alias})`, null),
      });
    }
  }
  for (const net of nets) {
    const br = kernel.links.get(net.bridge);
    const gw = `${net.gateway}/${net.subnet.split("/")[1]}`;
    const what = `network ${net.name}: bridge ${net.bridge}`;
    if (!br) {
      out.push({
        text: `${what} is missing`,
        phase: 6,
        fix: (plan) => {
          plan.cmd(addBridgeArgv(net), `recreate the bridge of ${net.name}`, ["ip", "link", "del", net.bridge]);
          plan.cmd(["ip", "link", "set", net.bridge, "alias", linkAlias("bridge", net.name)], "mark it as ctnet's", null);
          if (net.options.mtu) plan.cmd(["ip", "link", "set", net.bridge, "mtu", net.options.mtu], `mtu ${net.options.mtu}`, null);
          plan.cmd(["ip", "addr", "add", gw, "dev", net.bridge], `gateway ${net.gateway}`, null);
          plan.cmd(["ip", "link", "set", net.bridge, "up"], `bring ${net.bridge} up`, null);
        },
      });
      continue;
    }
    if (br.kind !== "bridge") {
      out.push({ text: `${what} exists but is a ${br.kind || "plain"} link, not a bridge (not fixable: remove it by hand)`, phase: 6 });
      continue;
    }
    if (br.alias !== linkAlias("bridge", net.name)) {
      out.push({ text: `${what} lacks ctnet's mark (alias ${br.alias ?? "none"})`, phase: 6, fix: (plan) => plan.cmd(["ip", "link", "set", net.bridge, "alias", linkAlias("bridge", net.name)], "mark it as ctnet's", null) });
    }
    if (!(kernel.addrs.get(net.bridge) ?? []).includes(gw)) {
      out.push({ text: `${what} lacks its gateway address ${gw}`, phase: 6, fix: (plan) => plan.cmd(["ip", "addr", "add", gw, "dev", net.bridge], `gateway ${net.gateway}`, ["ip", "addr", "del", gw, "dev", net.bridge]) });
    }
    if (net.options.mtu && String(br.mtu) !== net.options.mtu) {
      out.push({ text: `${what} has mtu ${br.mtu}, not ${net.options.mtu}`, phase: 6, fix: (plan) => plan.cmd(["ip", "link", "set", net.bridge, "mtu", net.options.mtu], `mtu ${net.options.mtu}`, ["ip", "link", "set", net.bridge, "mtu", String(br.mtu)]) });
    }
    if (!br.up) out.push({ text: `${what} is down`, phase: 6, fix: (plan) => plan.cmd(["ip", "link", "set", net.bridge, "up"], `bring ${net.bridge} up`, ["ip", "link", "set", net.bridge, "down"]) });
  }

  // -- namespaces, endpoints, names, processes -------------------------------------------------------
  const expectedNs = new Set(containers.filter(ownNamespace).map((c) => c.netns!));
  for (const ns of kernel.netns) {
    if (expectedNs.has(ns) || !hasCtnetMark(kernel.etcNetns.get(ns))) continue;
    out.push({
      text: `orphan namespace ${ns} (its /etc/netns/${ns}/hosts is ctnet's): not in ctnet's state`,
      phase: 2,
      fix: (plan) => {
        const pids = run(["ip", "netns", "pids", ns]).stdout.split(/\s+/).filter(Boolean).map(Number);
        plan.kill(pids, "SIGKILL", `stop the processes of orphan namespace ${ns}`);
        plan.cmd(["ip", "netns", "del", ns], `remove orphan namespace ${ns}`, null);
        removeEtcFiles(plan, ns);
      },
    });
  }
  for (const [dir, hosts] of kernel.etcNetns) {
    if (expectedNs.has(dir) || kernel.netns.has(dir) || !hasCtnetMark(hosts)) continue;
    out.push({ text: `orphan /etc/netns/${dir}: ctnet's hosts file for a namespace that does not exist`, phase: 2, fix: (plan) => removeEtcFiles(plan, dir) });
  }
  for (const c of containers) out.push(...compareContainer(state, c, kernel));
  out.push(...compareSharedHosts(state));

  // -- iptables --------------------------------------------------------------------------------------
  out.push(...compareRules(state, kernel));

  // -- sysctls ---------------------------------------------------------------------------------------
  for (const s of Object.values(state.sysctls)) {
    const now = readSysctlKey(s.key);
    if (now !== s.value) {
      out.push({
        text: `sysctl ${s.key} is ${now || "absent"}, but ctnet set it to ${s.value}`,
        phase: 9,
        // a sysctl of a bridge that is recreated above exists again by the time this step runs
        fix: (plan) => plan.cmd(["sysctl", "-w", `${sysctlPath(s.key).slice("/proc/sys/".length)}=${s.value}`], `ctnet needs ${s.key}=${s.value}`, null),
      });
    }
  }
  return out;
}

function removeEtcFiles(plan: Plan, ns: string): void {
  for (const f of ["hosts", "hostname"]) {
    const p = `/etc/netns/${ns}/${f}`;
    const previous = readOrNull(p);
    if (previous !== null) plan.write(p, null, previous, `remove ${p}`);
  }
}

function compareContainer(state: State, c: ContainerRecord, kernel: Kernel): Finding[] {
  const out: Finding[] = [];
  if (c.pid !== null && processAlive(c.pid, c.pidStart) && c.netns) {
    const nsOf = (p: string) => {
      try {
        return fs.statSync(p).ino;
      } catch {
        return null;
      }
    };
    const want = nsOf(`/run/netns/${c.netns}`);
    const has = nsOf(`/proc/${c.pid}/ns/net`);
    if (want !== null && has !== null && want !== has) {
      out.push({ text: `container ${c.name}: process ${c.pid} is not in namespace ${c.netns} (not fixable: rm -f and run it again)`, phase: 8 });
    }
  }
  if (!ownNamespace(c)) return out;
  const ns = c.netns!;
  const inner = readLinks(ns);
  const innerAddrs = readAddrs(ns);
  const lostRoute: string[] = [];
  for (const ep of c.endpoints) {
    const net = state.networks[ep.network];
    const host = kernel.links.get(ep.hostIf);
    const what = `container ${c.name} on ${ep.network}`;
    if (!net) {
      out.push({ text: `${what}: network ${ep.network} is not in ctnet's state (not fixable: disconnect it)`, phase: 8 });
      continue;
    }
    if (!host || !inner.has(ep.ifname)) {
      const route = routeNetwork(state, c)?.name === net.name;
      if (route) lostRoute.push(net.gateway);
      out.push({
        text: `${what}: veth ${host ? ep.ifname : ep.hostIf} is missing`,
        phase: 7,
        fix: (plan) => {
          if (host) plan.cmd(["ip", "link", "del", ep.hostIf], `remove the half of ${c.name}'s veth that is left`, null);
          else if (inner.has(ep.ifname)) plan.cmd(["ip", "-n", ns, "link", "del", ep.ifname], `remove the half of ${c.name}'s veth that is left`, null);
          attachEndpoints(plan, ns, [{ net, ep }], route ? net : undefined);
        },
      });
      continue;
    }
    if (host.alias !== linkAlias("veth", `${ns}/${net.name}`)) {
      out.push({ text: `${what}: ${ep.hostIf} lacks ctnet's mark`, phase: 7, fix: (plan) => plan.cmd(["ip", "link", "set", ep.hostIf, "alias", linkAlias("veth", `${ns}/${net.name}`)], "mark it as ctnet's", null) });
    }
    if (host.master !== net.bridge || !host.up) {
      out.push({
        text: `${what}: ${ep.hostIf} is ${host.master !== net.bridge ? `not plugged into ${net.bridge}${host.master ? ` (but ${host.master})` : ""}` : "down"}`,
        phase: 7,
        fix: (plan) => plan.cmd(["ip", "link", "set", ep.hostIf, "master", net.bridge, "up"], `plug ${ep.hostIf} into ${net.bridge}`, null),
      });
    }
    const cidr = `${ep.ip}/${ep.prefixLen}`;
    if (!(innerAddrs.get(ep.ifname) ?? []).includes(cidr)) {
      out.push({ text: `${what}: ${ep.ifname} lacks its address ${cidr}`, phase: 7, fix: (plan) => plan.cmd(["ip", "-n", ns, "addr", "add", cidr, "dev", ep.ifname], `${ep.ip} on ${net.name}`, null) });
    }
    if (!inner.get(ep.ifname)!.up) {
      out.push({ text: `${what}: ${ep.ifname} is down`, phase: 7, fix: (plan) => plan.cmd(["ip", "-n", ns, "link", "set", ep.ifname, "up"], `bring ${ep.ifname} up`, null) });
    }
  }
  const via = routeNetwork(state, c);
  if (via && !lostRoute.includes(via.gateway)) {
    const routes = json(["ip", "-n", ns, "-j", "-4", "route", "show", "default"]);
    if (!routes.some((r) => r.gateway === via.gateway)) {
      out.push({
        text: `container ${c.name}: default route via ${via.gateway} (${via.name}) is missing`,
        phase: 8,
        fix: (plan) => plan.cmd(["ip", "-n", ns, "route", "replace", "default", "via", via.gateway], `default route via ${via.name}'s gateway`, null),
      });
    }
  }
  if (kernel.netns.has(ns)) {
    // a single-network container links to its network's shared hosts file (compared once, below)
    const shared = sharedHostsNetwork(c);
    const hostsFile = `/etc/netns/${ns}/hosts`;
    const hostname = readOrNull(`/etc/netns/${ns}/hostname`);
    let problem: string | null = null;
    if (shared) {
      if (linkTarget(hostsFile) !== networkHostsPath(shared)) problem = `hosts is not linked to network ${shared}'s shared file`;
    } else {
      const hosts = linkTarget(hostsFile) === null ? readOrNull(hostsFile) : null;
      if (hosts !== hostsFileFor(state, c)) problem = `hosts ${hosts === null ? "is missing" : "differs from ctnet's state"}`;
    }
    if (!problem && hostname !== `${c.hostname}\n`) problem = `hostname ${hostname === null ? "is missing" : "differs from ctnet's state"}`;
    if (problem) out.push({ text: `container ${c.name}: /etc/netns/${ns}/${problem}`, phase: 8, fix: (plan) => syncNameFiles(plan, state, [c.name]) });
  }
  return out;
}

/** The shared hosts files of user networks (see sandbox.ts): content, and orphans of gone networks. */
function compareSharedHosts(state: State): Finding[] {
  const out: Finding[] = [];
  let files: string[] = [];
  try {
    files = fs.readdirSync(NETWORK_HOSTS_DIR).map((f) => `${NETWORK_HOSTS_DIR}/${f}`);
  } catch {
    /* none yet */
  }
  const wanted = new Map<string, string>();
  for (const net of Object.values(state.networks)) {
    // the default bridge gives no names: its containers keep files of their own
    if (net.name === DEFAULT_BRIDGE_NETWORK) continue;
    const content = networkHostsFile(state, net.name);
    if (content !== null) wanted.set(networkHostsPath(net.name), content);
  }
  for (const [file, content] of wanted) {
    const now = readOrNull(file);
    if (now !== content) {
      out.push({ text: `${file} ${now === null ? "is missing" : "differs from ctnet's state"}`, phase: 8, fix: (plan) => plan.write(file, content, now, `names on the network, from ctnet's state`) });
    }
  }
  for (const file of files) {
    const now = readOrNull(file);
    if (wanted.has(file) || !hasCtnetMark(now)) continue;
    out.push({ text: `orphan ${file}: a shared hosts file of a network not in ctnet's state`, phase: 2, fix: (plan) => plan.write(file, null, now, `remove orphan ${file}`) });
  }
  return out;
}

function compareRules(state: State, kernel: Kernel): Finding[] {
  const out: Finding[] = [];
  const expected = expectedRules(state);
  const wantChains = expected.length > 0 ? CHAINS : [];
  const have = new Map<string, KernelRule[]>();
  for (const r of kernel.rules) have.set(r.key, [...(have.get(r.key) ?? []), r]);
  const wanted = new Map(expected.map((r) => [ruleKey(r.table, r.chain, r.spec), r]));
  const show = (r: { table: Table; chain: string; spec: string[] }) => `-t ${r.table} -A ${r.chain} ${r.spec.join(" ")}`;

  for (const r of kernel.rules) {
    if (!isCtnetRule(r)) continue;
    if (!wanted.has(r.key)) {
      out.push({ text: `stale rule ${show(r)}: nothing in ctnet's state needs it`, phase: 3, fix: (plan) => plan.cmd(ipt(r.table, "-D", r.chain, ...r.spec), `remove stale rule`, null) });
    }
  }
  for (const [key, rules] of have) {
    if (!wanted.has(key) || rules.length < 2) continue;
    const r = rules[0];
    out.push({
      text: `duplicate rule (${rules.length} copies) ${show(r)}`,
      phase: 3,
      fix: (plan) => rules.slice(1).forEach(() => plan.cmd(ipt(r.table, "-D", r.chain, ...r.spec), "remove a duplicate copy", null)),
    });
  }
  const wantChainSet = new Set(wantChains.map((c) => `${c.table} ${c.name}`));
  for (const c of kernel.chains) {
    if (isCtnetChain(c.name) && !wantChainSet.has(`${c.table} ${c.name}`)) {
      out.push({
        text: `orphan chain ${c.name} (${c.table})`,
        phase: 4,
        fix: (plan) => {
          plan.cmd(ipt(c.table, "-F", c.name), `empty orphan chain ${c.name}`, null);
          plan.cmd(ipt(c.table, "-X", c.name), `delete orphan chain ${c.name}`, null);
        },
      });
    }
  }
  const haveChains = new Set(kernel.chains.map((c) => `${c.table} ${c.name}`));
  for (const c of wantChains) {
    if (!haveChains.has(`${c.table} ${c.name}`)) {
      out.push({ text: `chain ${c.name} (${c.table}) is missing`, phase: 5, fix: (plan) => plan.cmd(ipt(c.table, "-N", c.name), `recreate ctnet's chain ${c.name}`, ipt(c.table, "-X", c.name)) });
    }
  }
  // a network's rules in one chain only work in their order: when one is missing, the group is reinstalled
  const groups = new Map<string, Rule[]>();
  for (const r of expected) {
    const owner = BASE_RULES.includes(r) ? `base ${r.chain}` : `${r.table} ${r.chain} ${r.spec.join(" ")}`.match(/-[io] (\S+)/)?.[1] ?? r.spec.join(" ");
    const g = `${owner} ${r.table} ${r.chain}`;
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  for (const rules of groups.values()) {
    const missing = rules.filter((r) => !have.has(ruleKey(r.table, r.chain, r.spec)));
    if (missing.length === 0) continue;
    const present = rules.filter((r) => !missing.includes(r));
    const reorder = BASE_RULES.includes(rules[0]) ? [] : present;
    for (const r of missing) {
      out.push({
        text: `rule missing: ${show(r)} (${r.why})`,
        phase: 6,
        fix: (plan) => {
          if (r !== missing[0]) return;
          // reinstall the whole group in order; base jumps go first in their chains
          for (const p of reorder) plan.cmd(ipt(p.table, "-D", p.chain, ...p.spec), "reinstalled below, in order", null);
          for (const m of [...reorder, ...missing].sort((a, b) => rules.indexOf(a) - rules.indexOf(b))) {
            addRule(plan, m.chain === "CTNET-FORWARD" && m.spec.join(" ") === "-j CTNET-ISOLATION" ? { ...m, first: true } : m);
          }
        },
      });
    }
  }
  return out;
}

/** The whole diagnosis: a pending plan, lost containers (released in `state`), then every difference. */
export function diagnose(store: Store, state: State): Finding[] {
  const out: Finding[] = [];
  const pending = pendingPlan(store);
  if (pending) {
    out.push({
      text: `unfinished plan "${pending.title}" of pid ${pending.pid} (killed after ${pending.started} of ${pending.total} steps): the next command or doctor --fix will ${pending.action} it`,
      phase: 0,
    });
  }
  const kernel = readKernel();
  out.push(...releaseLost(state, kernel));
  out.push(...compare(state, kernel));
  return out;
}

// ---- the command -----------------------------------------------------------------------------------

export async function doctorCommand(g: GlobalOptions, o: { fix?: boolean }): Promise<number> {
  const store = openStore(g);
  if (!isRoot() && !(o.fix && g.dryRun)) throw new UsageError("ctnet doctor must run as root: it reads iptables and ctnet's private state");
  let state: State;
  try {
    state = store.read();
  } catch (err: any) {
    process.stdout.write(`${err.message}\n${restoreAdvice(store)}`);
    return 1;
  }
  if (!o.fix) {
    for (const s of Object.values(state.sysctls)) process.stdout.write(`sysctl ${s.key} = ${s.value} (set by ctnet; was ${s.previous}, restored when its last user goes)\n`);
    let findings: Finding[];
    try {
      findings = diagnose(store, state);
    } catch (err: any) {
      process.stdout.write(`${err.message}\n`);
      return 1;
    }
    for (const f of findings) process.stdout.write(`${f.text}\n`);
    if (findings.length === 0) process.stdout.write("no differences: ctnet's state and the kernel agree\n");
    else process.stdout.write(`${findings.length} difference${findings.length === 1 ? "" : "s"}: 'ctnet doctor --fix' repairs them ('--fix --dry-run' shows how)\n`);
    return findings.length === 0 ? 0 : 1;
  }
  let unfixable: string[] = [];
  await mutate(
    g,
    (draft) => {
      const findings = diagnose(store, draft).filter((f) => f.phase > 0);
      unfixable = findings.filter((f) => !f.fix && f.phase !== 1).map((f) => f.text);
      const plan = new Plan(`doctor --fix: ${findings.length} difference${findings.length === 1 ? "" : "s"}`);
      for (const f of [...findings].sort((a, b) => a.phase - b.phase)) f.fix?.(plan);
      return { plan };
    },
    { discardUnreadableJournal: true },
  );
  if (g.dryRun) return 0;
  const left = diagnose(store, store.read());
  for (const f of left) process.stdout.write(`${f.text}\n`);
  if (left.length === 0) process.stdout.write("repaired: ctnet's state and the kernel agree\n");
  else process.stdout.write(`${left.length} difference${left.length === 1 ? "" : "s"} left${unfixable.length ? " that doctor cannot fix" : ""}\n`);
  return left.length === 0 ? 0 : 1;
}

function restoreAdvice(store: Store): string {
  let bak = "";
  try {
    JSON.parse(fs.readFileSync(store.backup, "utf8"));
    bak = "it is readable";
  } catch (err: any) {
    bak = err.code === "ENOENT" ? "" : `but it is unreadable too (${err.message})`;
  }
  if (!bak) return `no previous version (${store.backup}) exists: move the broken file aside and run 'ctnet doctor' to see what ctnet left on the host\n`;
  return `the previous good version is ${store.backup} (${bak}); to restore it: cp -p ${store.backup} ${store.file}\n`;
}
