// Running programs (always as argv, never through a shell) and reading the host's network state.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { OpError, UsageError } from "../errors.js";
import { networkOf, type Cidr } from "../ipam.js";
import { netnsPath } from "../naming.js";

/** Debian package that provides each program ctnet runs, for the "please install" message. */
const PACKAGE_OF: Record<string, string> = {
  ip: "iproute2",
  bridge: "iproute2",
  ss: "iproute2",
  iptables: "iptables",
  "iptables-save": "iptables",
  "iptables-restore": "iptables",
  nsenter: "util-linux",
  unshare: "util-linux",
  sysctl: "procps",
  ping: "iputils-ping",
  socat: "socat",
};

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(argv: string[], input?: string): RunResult {
  const res = spawnSync(argv[0], argv.slice(1), { input, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (res.error) {
    if ((res.error as NodeJS.ErrnoException).code === "ENOENT") throw missingTool(argv[0]);
    throw new OpError(`cannot run ${argv[0]}: ${res.error.message}`);
  }
  return { code: res.status ?? 128, stdout: res.stdout, stderr: res.stderr };
}

export function missingTool(program: string): UsageError {
  const pkg = PACKAGE_OF[program];
  return new UsageError(`${program} not found${pkg ? `: install it with 'apt-get install ${pkg}'` : ""}`);
}

/** Runs a read-only query and returns stdout, failing with the command and its stderr. */
export function query(argv: string[]): string {
  const res = run(argv);
  if (res.code !== 0) throw new OpError(`${argv.join(" ")} failed: ${res.stderr.trim() || `exit ${res.code}`}`);
  return res.stdout;
}

/** Whether `program` is a path that exists or a name on the PATH (as execvp finds it). */
export function hasTool(program: string): boolean {
  if (program.includes("/")) return fs.existsSync(program);
  const dirs = (process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":");
  return dirs.some((d) => fs.existsSync(`${d}/${program}`));
}

export function requireTools(...programs: string[]): void {
  for (const p of programs) if (!hasTool(p)) throw missingTool(p);
}

// ---- the host's view -------------------------------------------------------------------------

/**
 * Links and namespaces that an earlier part of the plan being built deletes (`up` recreating what changed):
 * a later part may take their names again, and their routes do not count as in use.
 */
export const goingAway = { links: new Set<string>(), netns: new Set<string>() };

/** A file's text, or null when it cannot be read (most often: it does not exist). */
export function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** A program's JSON output (`ip -j …`): an empty list when it fails or prints nothing. */
export function runJson(argv: string[]): any[] {
  const res = run(argv);
  return res.code === 0 && res.stdout.trim() ? JSON.parse(res.stdout) : [];
}

/** A sysctl's file: net.ipv4.conf.DEV.KEY keeps DEV whole (interface names may contain dots). */
export function sysctlPath(key: string): string {
  const conf = /^net\.ipv4\.conf\.(.+)\.([a-z_]+)$/.exec(key);
  return conf ? `/proc/sys/net/ipv4/conf/${conf[1]}/${conf[2]}` : `/proc/sys/${key.replace(/\./g, "/")}`;
}

/** A sysctl's value, trimmed; null when the kernel has no such key (e.g. the device is gone). */
export const readSysctl = (key: string): string | null => readOrNull(sysctlPath(key))?.trim() ?? null;

export const linkExists = (ifname: string) => !goingAway.links.has(ifname) && fs.existsSync(`/sys/class/net/${ifname}`);

/**
 * Whether a link is a ctnet veth whose namespace is deleted: the kernel removes it in the background, in
 * some 40 ms, and its name is then free (a plan that takes it waits for it to go).
 */
export function vethLeaving(ifname: string): boolean {
  const ns = /^ctnet:veth:([^/]+)\//.exec(readOrNull(`/sys/class/net/${ifname}/ifalias`) ?? "")?.[1];
  return ns !== undefined && !fs.existsSync(netnsPath(ns));
}

export const netnsExists = (ns: string) => !goingAway.netns.has(ns) && fs.existsSync(netnsPath(ns));

export function netnsNames(): Set<string> {
  try {
    return new Set(fs.readdirSync("/run/netns").filter((ns) => !goingAway.netns.has(ns)));
  } catch {
    return new Set();
  }
}

export interface HostAddress {
  ifname: string;
  address: string;
  prefix: number;
}

export function hostAddresses(): HostAddress[] {
  const links = JSON.parse(query(["ip", "-j", "-4", "addr", "show"]) || "[]");
  return links.flatMap((link: any) =>
    (link.addr_info ?? []).map((a: any) => ({ ifname: link.ifname, address: a.local, prefix: a.prefixlen })),
  );
}

/** Subnets already used on the host: every IPv4 route (except default routes) and every address's network. */
export interface SubnetUse {
  cidr: Cidr;
  where: string;
  dev: string;
}

export function hostSubnetsInUse(): SubnetUse[] {
  const out: SubnetUse[] = [];
  for (const route of JSON.parse(query(["ip", "-j", "-4", "route", "show", "table", "main"]) || "[]")) {
    if (route.dst === "default" || goingAway.links.has(route.dev)) continue;
    const dst = route.dst.includes("/") ? route.dst : `${route.dst}/32`;
    try {
      out.push({ cidr: networkOf(dst), where: `route ${route.dst}${route.dev ? ` dev ${route.dev}` : ""}`, dev: route.dev ?? "" });
    } catch {
      /* a route ctnet cannot parse cannot overlap in a way it can reason about */
    }
  }
  for (const a of hostAddresses()) {
    if (a.address.startsWith("127.") || goingAway.links.has(a.ifname)) continue;
    out.push({ cidr: networkOf(`${a.address}/${a.prefix}`), where: `address ${a.address}/${a.prefix} on ${a.ifname}`, dev: a.ifname });
  }
  return out;
}

export const isRoot = () => process.getuid?.() === 0;

/**
 * Async twin of run(): lets signal handlers fire between plan steps. The child runs in its own process
 * group, so Ctrl-C reaches ctnet alone and a step is never cut in half by it; `started` learns its pid.
 */
export function runAsync(argv: string[], input?: string, started?: (pid: number) => void): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"], detached: true });
    if (child.pid !== undefined) started?.(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.on("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "ENOENT" ? missingTool(argv[0]) : new OpError(`cannot run ${argv[0]}: ${err.message}`)),
    );
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}
