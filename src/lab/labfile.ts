// Lab files: YAML that declares a whole topology (networks and containers) for `ctnet up`. Parsed into
// yaml's node tree so every error can name the file, line, column and field path it is about, and
// checked against a fixed schema before anything is planned.
import fs from "node:fs";
import type { Document, LineCounter, Node as YamlNode, Pair, Scalar, YAMLMap, YAMLSeq } from "yaml";
import { UsageError } from "../errors.js";
import { parseAddress, parseCidr } from "../ipam.js";
import { validateName } from "../naming.js";
import { normaliseOptions } from "../commands/networks.js";
import { driverNamed } from "../drivers/registry.js";
import { parseExposeSpec, parsePublishSpec } from "../firewall/ports.js";

/** Bigger than any lab a class needs; keeps a stray file (a log, an image) from being parsed. */
export const MAX_LAB_FILE_BYTES = 1024 * 1024;
/** The schema nests five levels (containers.web.networks.back.aliases); flow collections deeper are refused unparsed. */
const MAX_FLOW_DEPTH = 8;
const MAX_OBJECTS = 4096;

export interface Where {
  line: number;
  col: number;
}

export interface NetworkSpec {
  name: string;
  where: Where;
  /** absent for bridge, so that a lab's bridge networks keep their digests */
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  internal: boolean;
  options: Record<string, string>;
  labels: Record<string, string>;
}

export interface AttachSpec {
  network: string;
  ip?: string;
  aliases: string[];
  where: Where;
}

export interface ContainerSpec {
  name: string;
  where: Where;
  /** the --net value: bridge (the default network), host, none, container:NAME, or its first network */
  mode: "bridge" | "host" | "none" | "container";
  /** container mode: the lab container whose namespace it joins */
  joins?: string;
  networks: AttachSpec[];
  ports: string[];
  publishAll: boolean;
  expose: string[];
  command: string[];
  hostname?: string;
  env: string[];
  /** compose's dns, dns_search, dns_opt, extra_hosts, links: run's --dns, --dns-search, --dns-option, --add-host, --link */
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  addHost?: string[];
  link?: string[];
}

export interface LabSpec {
  file: string;
  name: string;
  networks: NetworkSpec[];
  containers: ContainerSpec[];
}

type Y = typeof import("yaml");

/** Reads and checks a lab file; every problem is a UsageError "FILE:LINE:COL: path: message". */
export async function loadLabFile(file: string): Promise<LabSpec> {
  let size: number;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new UsageError(`${file}: not a regular file`);
    size = st.size;
  } catch (err: any) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${file}: cannot read lab file: ${err.code === "ENOENT" ? "no such file" : err.message}`);
  }
  if (size > MAX_LAB_FILE_BYTES) throw new UsageError(`${file}: ${size} bytes is more than a lab file may hold (${MAX_LAB_FILE_BYTES})`);
  const text = fs.readFileSync(file, "utf8");
  // yaml's Node entry is CommonJS: bundled, its exports sit on the namespace's default
  const yaml: any = await import("yaml");
  return parseLab(text, file, yaml.LineCounter ? yaml : yaml.default);
}

/** Parses lab text; `yaml` is passed in so the module is loaded only by commands that need it. */
export function parseLab(text: string, file: string, yaml: Y): LabSpec {
  const lineCounter = new yaml.LineCounter();
  const fail = (offset: number, path: string, message: string): never => {
    const { line, col } = lineCounter.linePos(offset);
    throw new UsageError(`${file}:${line}:${col}: ${path ? `${path}: ` : ""}${message}`);
  };
  checkFlowDepth(text, (offset) => {
    const before = text.slice(0, offset).split("\n");
    throw new UsageError(`${file}:${before.length}:${before[before.length - 1].length + 1}: nested deeper than a lab file allows (${MAX_FLOW_DEPTH} levels)`);
  });
  const doc = yaml.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    fail(err.pos[0], "", `malformed YAML: ${err.message.split("\n")[0]}`);
  }
  return new LabReader(yaml, doc, lineCounter, file, fail).read();
}

/** Refuses deeply nested flow collections ([[[[…]]]]) before the parser recurses into them. */
function checkFlowDepth(text: string, tooDeep: (offset: number) => void): void {
  let depth = 0;
  let quote: string | null = null;
  let comment = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (comment) {
      if (ch === "\n") comment = false;
    } else if (quote) {
      if (ch === "\\" && quote === '"') i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === "#" && (i === 0 || /\s/.test(text[i - 1]))) {
      comment = true;
    } else if (ch === "[" || ch === "{") {
      if (++depth > MAX_FLOW_DEPTH) return tooDeep(i);
    } else if ((ch === "]" || ch === "}") && depth > 0) {
      depth--;
    }
  }
}

type Fail = (offset: number, path: string, message: string) => never;

class LabReader {
  private objects = 0;

  constructor(
    private readonly yaml: Y,
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
    private readonly fail: Fail,
  ) {}

  private at(node: YamlNode | null | undefined): number {
    return node?.range?.[0] ?? 0;
  }

  private where(node: YamlNode | null | undefined): Where {
    return this.lines.linePos(this.at(node));
  }

  /** Follows anchors (*name) to the node they stand for. */
  private deref(node: unknown): YamlNode | null {
    if (this.yaml.isAlias(node)) return (node.resolve(this.doc) as YamlNode | undefined) ?? null;
    return (node as YamlNode) ?? null;
  }

  private map(node: YamlNode | null, path: string, keys: readonly string[]): Map<string, { key: YamlNode; value: YamlNode | null }> {
    if (!this.yaml.isMap(node)) this.fail(this.at(node), path, `expected a map${this.got(node)}`);
    const out = new Map<string, { key: YamlNode; value: YamlNode | null }>();
    for (const pair of (node as YAMLMap).items as Pair<YamlNode, YamlNode>[]) {
      const key = this.deref(pair.key);
      if (!this.yaml.isScalar(key) || typeof key.value !== "string" && typeof key.value !== "number") {
        this.fail(this.at(key), path, "keys must be plain names");
      }
      const name = String((key as Scalar).value);
      if (keys.length > 0 && !keys.includes(name)) {
        this.fail(this.at(key), path ? `${path}.${name}` : name, `unknown key (known: ${keys.join(", ")})`);
      }
      out.set(name, { key: key as YamlNode, value: this.deref(pair.value) });
    }
    return out;
  }

  private got(node: YamlNode | null): string {
    if (node === null || (this.yaml.isScalar(node) && node.value === null)) return ", got nothing";
    if (this.yaml.isSeq(node)) return ", got a list";
    if (this.yaml.isMap(node)) return ", got a map";
    if (this.yaml.isScalar(node)) return `, got ${typeof node.value} ${JSON.stringify(node.value)}`;
    return "";
  }

  private isEmpty(node: YamlNode | null): boolean {
    return node === null || (this.yaml.isScalar(node) && node.value === null);
  }

  private string(node: YamlNode | null, path: string, opts: { numbers?: boolean } = {}): string {
    if (this.yaml.isScalar(node)) {
      if (typeof node.value === "string") return node.value;
      if (opts.numbers && typeof node.value === "number" && Number.isInteger(node.value)) return String(node.value);
    }
    return this.fail(this.at(node), path, `expected a string${opts.numbers ? " or a number" : ""}${this.got(node)}`);
  }

  /** Option and label values: YAML's true/false/12 are taken as the strings they spell. */
  private scalarText(node: YamlNode | null, path: string): string {
    if (this.yaml.isScalar(node) && ["string", "number", "boolean"].includes(typeof node.value)) return String(node.value);
    if (this.isEmpty(node)) return "";
    return this.fail(this.at(node), path, `expected a string, number or true/false${this.got(node)}`);
  }

  private bool(node: YamlNode | null, path: string): boolean {
    if (this.yaml.isScalar(node) && typeof node.value === "boolean") return node.value;
    return this.fail(this.at(node), path, `expected true or false${this.got(node)}`);
  }

  private seq(node: YamlNode | null, path: string): YamlNode[] {
    if (!this.yaml.isSeq(node)) return this.fail(this.at(node), path, `expected a list${this.got(node)}`);
    return ((node as YAMLSeq).items as YamlNode[]).map((item) => this.deref(item)!);
  }

  private count(node: YamlNode | null, path: string): void {
    if (++this.objects > MAX_OBJECTS) this.fail(this.at(node), path, `more than ${MAX_OBJECTS} networks and containers in one lab`);
  }

  /** Runs a check that throws UsageError and re-throws it pointing at `node`. */
  private check<T>(node: YamlNode | null, path: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof UsageError) return this.fail(this.at(node), path, err.message);
      throw err;
    }
  }

  private keyValues(node: YamlNode | null, path: string): Record<string, string> {
    if (this.isEmpty(node)) return {};
    const out: Record<string, string> = {};
    for (const [k, { value }] of this.map(node, path, [])) out[k] = this.scalarText(value, `${path}.${k}`);
    return out;
  }

  read(): LabSpec {
    const root = this.deref(this.doc.contents);
    if (this.isEmpty(root)) this.fail(0, "", "empty lab file: expected a map with name, networks and containers");
    const top = this.map(root, "", ["name", "networks", "containers"]);
    const nameNode = top.get("name");
    if (!nameNode) this.fail(this.at(root), "name", "missing: every lab needs a name");
    const name = this.string(nameNode!.value, "name");
    this.check(nameNode!.value, "name", () => validateName("lab", name));

    const networks: NetworkSpec[] = [];
    const netEntry = top.get("networks");
    if (netEntry && !this.isEmpty(netEntry.value)) {
      for (const [net, { key, value }] of this.map(netEntry.value, "networks", [])) networks.push(this.network(net, key, value));
    }
    const declared = new Set(networks.map((n) => n.name));

    const containers: ContainerSpec[] = [];
    const ctrEntry = top.get("containers");
    const ctrNodes = ctrEntry && !this.isEmpty(ctrEntry.value) ? this.map(ctrEntry.value, "containers", []) : new Map();
    for (const [ctr, { key, value }] of ctrNodes) containers.push(this.container(ctr, key, value, declared, new Set(ctrNodes.keys())));
    this.checkJoins(containers, ctrNodes);
    return { file: this.file, name, networks, containers };
  }

  private network(name: string, key: YamlNode, node: YamlNode | null): NetworkSpec {
    const path = `networks.${name}`;
    this.count(key, path);
    this.check(key, path, () => validateName("network", name));
    if (["bridge", "host", "none"].includes(name)) this.fail(this.at(key), path, `${name} is a predefined network; containers use it with network_mode: ${name}`);
    const spec: NetworkSpec = { name, where: this.where(key), internal: false, options: {}, labels: {} };
    if (this.isEmpty(node)) return spec;
    const fields = this.map(node, path, ["driver", "subnet", "gateway", "ip_range", "internal", "options", "labels"]);
    for (const [field, { value }] of fields) {
      const p = `${path}.${field}`;
      switch (field) {
        case "driver": {
          const driver = this.check(value, p, () => driverNamed(this.string(value, p)).name);
          if (driver !== "bridge") spec.driver = driver;
          break;
        }
        case "subnet":
          spec.subnet = this.check(value, p, () => parseCidr(this.string(value, p)).text);
          break;
        case "gateway":
          spec.gateway = this.string(value, p);
          this.check(value, p, () => parseAddress(spec.gateway!, "gateway"));
          break;
        case "ip_range":
          spec.ipRange = this.check(value, p, () => parseCidr(this.string(value, p), "ip_range").text);
          break;
        case "internal":
          spec.internal = this.bool(value, p);
          break;
        case "options":
          spec.options = this.keyValues(value, p);
          break;
        case "labels":
          spec.labels = this.keyValues(value, p);
          break;
      }
    }
    // after the loop: the options are the driver's, whichever of the two comes first
    const options = fields.get("options");
    if (options) this.check(options.value, `${path}.options`, () => normaliseOptions(spec.options, spec.driver));
    if ((spec.gateway || spec.ipRange) && !spec.subnet) this.fail(this.at(node), path, `${spec.gateway ? "gateway" : "ip_range"} needs a subnet`);
    return spec;
  }

  private container(name: string, key: YamlNode, node: YamlNode | null, declared: Set<string>, labContainers: Set<string>): ContainerSpec {
    const path = `containers.${name}`;
    this.count(key, path);
    this.check(key, path, () => validateName("container", name));
    const spec: ContainerSpec = { name, where: this.where(key), mode: "bridge", networks: [], ports: [], publishAll: false, expose: [], command: [], env: [] };
    if (this.isEmpty(node)) return spec;
    const fields = this.map(node, path, ["networks", "network_mode", "ports", "publish_all", "expose", "command", "hostname", "environment", "dns", "dns_search", "dns_opt", "extra_hosts", "links"]);
    for (const [field, { value }] of fields) {
      const p = `${path}.${field}`;
      switch (field) {
        case "networks":
          spec.networks = this.attachments(value, p, declared);
          break;
        case "network_mode": {
          const mode = this.string(value, p);
          if (mode === "bridge" || mode === "host" || mode === "none") spec.mode = mode;
          else if (mode.startsWith("container:")) {
            spec.mode = "container";
            spec.joins = mode.slice("container:".length);
            if (!labContainers.has(spec.joins)) this.fail(this.at(value), p, `container ${JSON.stringify(spec.joins)} is not declared in this lab's containers`);
            if (spec.joins === name) this.fail(this.at(value), p, "a container cannot join its own namespace");
          } else this.fail(this.at(value), p, `expected bridge, host, none or container:NAME, got ${JSON.stringify(mode)}`);
          break;
        }
        case "ports":
          spec.ports = this.seq(value, p).map((item, i) => this.portSpec(item, `${p}[${i}]`, true));
          break;
        case "publish_all":
          spec.publishAll = this.bool(value, p);
          break;
        case "expose":
          spec.expose = this.seq(value, p).map((item, i) => this.portSpec(item, `${p}[${i}]`, false));
          break;
        case "command":
          if (this.yaml.isSeq(value)) spec.command = this.seq(value, p).map((item, i) => this.string(item, `${p}[${i}]`, { numbers: true }));
          else spec.command = ["sh", "-c", this.string(value, p)];
          if (spec.command.length === 0) this.fail(this.at(value), p, "empty command (leave it out for an idle container)");
          break;
        case "hostname":
          spec.hostname = this.string(value, p);
          break;
        case "environment":
          spec.env = this.environment(value, p);
          break;
        // compose: a string or a list; extra_hosts also a map HOST: IP
        case "dns":
          spec.dns = this.strings(value, p);
          break;
        case "dns_search":
          spec.dnsSearch = this.strings(value, p);
          break;
        case "dns_opt":
          spec.dnsOption = this.strings(value, p);
          break;
        case "extra_hosts":
          spec.addHost = this.yaml.isMap(value) ? Object.entries(this.keyValues(value, p)).map(([host, ip]) => `${host}:${ip}`) : this.strings(value, p);
          break;
        case "links":
          spec.link = this.strings(value, p);
          break;
      }
    }
    if (spec.networks.length > 0 && fields.has("network_mode")) {
      this.fail(this.at(fields.get("network_mode")!.key), `${path}.network_mode`, "give either networks or network_mode, not both");
    }
    if (spec.mode === "container" && spec.hostname) this.fail(this.at(fields.get("hostname")!.key), `${path}.hostname`, "a container: mode container takes the hostname of the one it joins");
    const publishes = spec.ports.length > 0 || spec.publishAll;
    if (publishes && (spec.mode === "host" || spec.mode === "none" || spec.mode === "container")) {
      this.fail(this.at(fields.get(fields.has("ports") ? "ports" : "publish_all")!.key), path, `ports cannot be published in network_mode ${spec.mode}`);
    }
    return spec;
  }

  private attachments(node: YamlNode | null, path: string, declared: Set<string>): AttachSpec[] {
    const refer = (net: string, at: YamlNode | null, p: string) => {
      if (!declared.has(net)) {
        const hint = ["bridge", "host", "none"].includes(net) ? ` (use network_mode: ${net})` : "";
        this.fail(this.at(at), p, `network ${JSON.stringify(net)} is not declared under networks${hint}`);
      }
    };
    if (this.yaml.isSeq(node)) {
      const seen = new Set<string>();
      return this.seq(node, path).map((item, i) => {
        const net = this.string(item, `${path}[${i}]`);
        refer(net, item, `${path}[${i}]`);
        if (seen.has(net)) this.fail(this.at(item), `${path}[${i}]`, `network ${net} listed twice`);
        seen.add(net);
        return { network: net, aliases: [], where: this.where(item) };
      });
    }
    const out: AttachSpec[] = [];
    for (const [net, { key, value }] of this.map(node, path, [])) {
      const p = `${path}.${net}`;
      refer(net, key, p);
      const att: AttachSpec = { network: net, aliases: [], where: this.where(key) };
      if (!this.isEmpty(value)) {
        for (const [field, { value: v }] of this.map(value, p, ["ip", "aliases"])) {
          if (field === "ip") {
            att.ip = this.string(v, `${p}.ip`);
            this.check(v, `${p}.ip`, () => parseAddress(att.ip!, "ip"));
          } else {
            att.aliases = this.seq(v, `${p}.aliases`).map((a, i) => {
              const alias = this.string(a, `${p}.aliases[${i}]`);
              this.check(a, `${p}.aliases[${i}]`, () => validateName("container", alias));
              return alias;
            });
          }
        }
      }
      out.push(att);
    }
    return out;
  }

  /** ports: -p specs, expose: --expose specs, checked by the same parsers `run` uses. Numbers are fine. */
  private portSpec(node: YamlNode | null, path: string, publish: boolean): string {
    const text = this.string(node, path, { numbers: true });
    this.check(node, path, () => (publish ? parsePublishSpec(text) : parseExposeSpec(text)));
    return text;
  }

  /** A string, or a list of them. */
  private strings(node: YamlNode | null, path: string): string[] {
    return this.yaml.isSeq(node) ? this.seq(node, path).map((item, i) => this.string(item, `${path}[${i}]`)) : [this.string(node, path)];
  }

  private environment(node: YamlNode | null, path: string): string[] {
    if (this.yaml.isSeq(node)) {
      return this.seq(node, path).map((item, i) => {
        const pair = this.string(item, `${path}[${i}]`);
        if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(pair)) this.fail(this.at(item), `${path}[${i}]`, `expected KEY=VALUE, got ${JSON.stringify(pair)}`);
        return pair;
      });
    }
    return Object.entries(this.keyValues(node, path)).map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) this.fail(this.at(node), `${path}.${k}`, "not a valid variable name");
      return `${k}=${v}`;
    });
  }

  /** container: chains must end at a container with its own namespace, without cycles. */
  private checkJoins(containers: ContainerSpec[], nodes: Map<string, { key: YamlNode }>): void {
    const byName = new Map(containers.map((c) => [c.name, c]));
    for (const c of containers) {
      const seen = new Set([c.name]);
      let cur = c;
      while (cur.mode === "container") {
        const next = byName.get(cur.joins!)!;
        if (seen.has(next.name)) this.fail(this.at(nodes.get(c.name)!.key), `containers.${c.name}.network_mode`, `container: modes form a cycle (${[...seen, next.name].join(" -> ")})`);
        if (next.mode === "host") this.fail(this.at(nodes.get(c.name)!.key), `containers.${c.name}.network_mode`, `${next.name} uses the host's network: use network_mode: host instead`);
        seen.add(next.name);
        cur = next;
      }
    }
  }
}
