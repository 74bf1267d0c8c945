// iptables as words: the one rule key, the one parser of what the kernel holds (`iptables-save`, and
// `iptables -S`, whose rule lines are the same), its inverse (a ruleset as iptables-save text, which is
// also what `iptables-restore` reads), and the argv of rule steps. No other module of ctnet splits,
// keys or writes iptables lines: an nftables backend replaces this file and firewall.ts, nothing else.
import { OpError } from "../errors.js";
import { run } from "../host/sys.js";

export type Table = "filter" | "nat";
const TABLES: Table[] = ["filter", "nat"];

/** A rule ctnet wants, and why (the plan step's reason). */
export interface Rule {
  table: Table;
  chain: string;
  spec: string[];
  why: string;
  /** insert at this place of the chain (1: the top) instead of appending */
  position?: number;
}

/** A rule the kernel holds. */
export interface PresentRule {
  table: Table;
  chain: string;
  /** the words after "-A CHAIN", unquoted */
  spec: string[];
  key: string;
  /** as `iptables -S` prints it (with "-t nat " for nat rules), for messages */
  line: string;
}

interface PresentChain {
  table: Table;
  name: string;
  /** ACCEPT, DROP… for built-in chains; "-" for user chains */
  policy: string;
}

/** What the kernel holds, in its order. */
export interface RuleSet {
  chains: PresentChain[];
  rules: PresentRule[];
}

export const ipt = (table: Table, ...args: string[]) => ["iptables", "-w", "-t", table, ...args];

export const addArgv = (r: Rule) => ipt(r.table, ...(r.position ? ["-I", r.chain, String(r.position)] : ["-A", r.chain]), ...r.spec);
export const deleteArgv = (r: { table: Table; chain: string; spec: string[] }) => ipt(r.table, "-D", r.chain, ...r.spec);

/** Splits an iptables-save line into words, honouring its double quotes. */
function splitRuleLine(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]));
}

/** One word as iptables-save prints it and iptables-restore reads it. */
const quoteWord = (w: string) => (/[\s"']/.test(w) || w === "" ? `"${w.replace(/(["\\])/g, "\\$1")}"` : w);

const LONG_FORMS: Record<string, string> = {
  "--source": "-s", "--destination": "-d", "--in-interface": "-i", "--out-interface": "-o",
  "--protocol": "-p", "--jump": "-j", "--match": "-m", "--goto": "-g",
};

/**
 * A rule's identity independent of how it was written: option groups ("! -o br", "-m conntrack",
 * "--ctstate DNAT") sorted, long options as short ones, single addresses as /32, and the "-m tcp"
 * iptables-save adds after "-p tcp" dropped. iptables-save prints addresses and interfaces before
 * matches, whatever order they were given in, so the order of groups cannot count.
 */
export function ruleKey(r: { table: string; chain: string; spec: string[] }): string {
  const groups: string[][] = [];
  let negate = false;
  for (const raw of r.spec) {
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
  return `${r.table} ${r.chain} ${kept.map((g) => g.join(" ")).sort().join(" | ")}`;
}

/**
 * Parses iptables-save text (its "*table" lines say which table follows) or `iptables -S` text (which has
 * none: `table` says which it is).
 */
export function parseRuleset(text: string, table: Table = "filter"): RuleSet {
  const set: RuleSet = { chains: [], rules: [] };
  let current = table;
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) current = line.slice(1).trim() as Table;
    else if (line.startsWith(":")) {
      const [name, policy] = line.slice(1).split(" ");
      set.chains.push({ table: current, name, policy });
    } else if (line.startsWith("-P ") || line.startsWith("-N ")) {
      const [, name, policy] = line.split(" ");
      set.chains.push({ table: current, name, policy: policy ?? "-" });
    } else if (line.startsWith("-A ")) {
      const [, chain, ...spec] = splitRuleLine(line);
      const r = { table: current, chain, spec };
      set.rules.push({ ...r, key: ruleKey(r), line: current === "filter" ? line : `-t ${current} ${line}` });
    }
  }
  return set;
}

/** A ruleset as iptables-save prints it: chains, then rules in order, per table. */
export function renderSave(set: { chains: Array<{ table: Table; name: string; policy?: string }>; rules: Array<{ table: Table; chain: string; spec: string[] }> }): string {
  const out: string[] = [];
  for (const table of TABLES) {
    const chains = set.chains.filter((c) => c.table === table);
    const rules = set.rules.filter((r) => r.table === table);
    if (chains.length === 0 && rules.length === 0) continue;
    out.push(`*${table}`, ...chains.map((c) => `:${c.name} ${c.policy ?? "-"} [0:0]`));
    out.push(...rules.map((r) => ["-A", r.chain, ...r.spec].map(quoteWord).join(" ")), "COMMIT");
  }
  return out.join("\n") + "\n";
}

/** The kernel's filter and nat tables, one iptables-save each; with `strict`, a failing read is an error. */
export function readRuleset(strict = true): RuleSet {
  const set: RuleSet = { chains: [], rules: [] };
  for (const table of TABLES) {
    const res = run(["iptables-save", "-t", table]);
    if (res.code !== 0) {
      // one line: iptables-nft may print warnings before the error
      if (strict) throw new OpError(`iptables-save -t ${table} failed: ${res.stderr.trim().split(/\s*\n\s*/).join("; ")}`);
      continue;
    }
    const part = parseRuleset(res.stdout, table);
    set.chains.push(...part.chains);
    set.rules.push(...part.rules);
  }
  return set;
}

/** The rules of one chain as `iptables -S CHAIN` lists them (none when the chain is missing). */
export function readChain(table: Table, chain: string): PresentRule[] {
  const res = run(ipt(table, "-S", chain));
  return res.code === 0 ? parseRuleset(res.stdout, table).rules : [];
}

/** A DNAT rule's host address, protocol, host port and target, as ctnet and Docker write them. */
export function dnatOf(spec: string[]): { hostIp: string; proto: "tcp" | "udp"; hostPort: number; to: string } | null {
  // a negated match ("! -d ADDR") publishes on no one address: not a mapping
  const arg = (opt: string) => (spec.includes(opt) && spec[spec.indexOf(opt) - 1] !== "!" ? spec[spec.indexOf(opt) + 1] : undefined);
  const proto = arg("-p");
  const [port, to, dst] = [arg("--dport"), arg("--to-destination"), arg("-d")];
  if (arg("-j") !== "DNAT" || !proto || (proto !== "tcp" && proto !== "udp") || !port || !to || (spec.includes("-d") && !dst)) return null;
  return { hostIp: dst ? dst.replace(/\/32$/, "") : "0.0.0.0", proto, hostPort: Number(port), to };
}

// ---- running rule steps (plan/executor.ts) ------------------------------------------------------

/** Whether a plan step is an iptables command of ctnet's form (`iptables -w -t TABLE …`). */
export const isRuleStep = (argv: string[]) => argv[0] === "iptables" && argv[1] === "-w" && argv[2] === "-t";

/** `iptables -C` for a step that adds a rule (-A, or -I at a position), null for any other step. */
export function checkArgv(argv: string[]): string[] | null {
  if (!isRuleStep(argv)) return null;
  const [op, chain, ...rest] = argv.slice(4);
  if (op === "-A") return [...argv.slice(0, 4), "-C", chain, ...rest];
  if (op === "-I") return [...argv.slice(0, 4), "-C", chain, ...(/^\d+$/.test(rest[0] ?? "") ? rest.slice(1) : rest)];
  return null;
}

/** Whether a failed iptables step removed what was gone already (its purpose is met). */
export function removedAlready(argv: string[], stderr: string): boolean {
  const removes = argv.some((w) => w === "-D" || w === "-X" || w === "-F");
  return removes && /Bad rule \(does a matching rule exist|No chain\/target\/match by that name|does not exist/.test(stderr);
}

/**
 * Rule steps as one `iptables-restore --noflush` input: a section per run of steps on one table, in plan
 * order. lineOf[i] is step i's line; sectionEnd[i] its section's COMMIT line when it is a section's last
 * step (0 otherwise).
 */
export function restoreInput(argvs: string[][]): { input: string; lineOf: number[]; sectionEnd: number[] } {
  const lines: string[] = [];
  const lineOf: number[] = [];
  argvs.forEach((argv, i) => {
    if (i === 0 || argv[3] !== argvs[i - 1][3]) {
      if (i > 0) lines.push("COMMIT");
      lines.push(`*${argv[3]}`);
    }
    lines.push(argv.slice(4).map(quoteWord).join(" "));
    lineOf.push(lines.length);
  });
  lines.push("COMMIT");
  const sectionEnd = argvs.map((argv, i) => (i + 1 < argvs.length && argvs[i + 1][3] === argv[3] ? 0 : lineOf[i] + 1));
  return { input: lines.join("\n") + "\n", lineOf, sectionEnd };
}

/**
 * Which step of a failed `iptables-restore` failed, and how many took effect: each section commits its
 * table atomically, in order, so the sections before the failing one took effect and nothing of it did.
 * The error names a rule's line ("line N failed", or "Error occurred at line: N"), or its section's COMMIT
 * (nf_tables).
 */
export function restoreFailure(argvs: string[][], layout: { lineOf: number[]; sectionEnd: number[] }, stderr: string): { culprit: number; succeeded: number; message: string } {
  const { lineOf, sectionEnd } = layout;
  const line = Number(/(?:Error occurred at line: |line )(\d+)/.exec(stderr)?.[1] ?? lineOf[0]);
  let culprit = argvs.findIndex((_, i) => lineOf[i] >= line || (sectionEnd[i] !== 0 && sectionEnd[i] >= line));
  if (culprit === -1) culprit = argvs.length - 1;
  const table = argvs[culprit][3];
  let first = culprit;
  while (first > 0 && argvs[first - 1][3] === table) first--;
  const message = stderr.split("\n").find((l) => / failed: /.test(l))?.replace(/^.* failed: /, "") ?? stderr.split("\n")[0];
  return { culprit, succeeded: first, message };
}
