// Issue 14: names like Docker's. A DNS server (aardvark-dns) for user networks, one /etc/hosts per
// container, resolv.conf per container, and the resolver flags. Each test runs in a private host whose
// /etc/resolv.conf points at a dnsmasq of its own (the "upstream": www.example.test is 10.9.9.9), and
// asks with dig, getent and ping from inside the containers.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { IsolatedHost, useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();
/** The tests' own files (resolv.conf, dnsmasq pids, lab files): removed at the end, also on failure. */
const tmpDirs: string[] = [];
const tmpDir = (prefix: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
};
afterAll(() => tmpDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A private host whose resolver is `resolver` ("upstream": a dnsmasq on the uplink address 192.0.2.10;
 * "stub": systemd-resolved's shape, 127.0.0.53 forwarding to it, with no /run/systemd/resolve/resolv.conf
 * unless `systemdFile`).
 */
async function hostWith(resolver: "upstream" | "stub", systemdFile = false): Promise<IsolatedHost> {
  const h = await newHost();
  const dir = tmpDir("ctnet-dns-");
  const conf = path.join(dir, "resolv.conf");
  fs.writeFileSync(conf, resolver === "stub" ? "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n" : "nameserver 192.0.2.10\n");
  const up = h.sh(["dnsmasq", "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=192.0.2.10", "--address=/www.example.test/10.9.9.9", "--pid-file=" + path.join(dir, "up.pid")]);
  expect(up.code, up.stderr).toBe(0);
  if (resolver === "stub") {
    const stub = h.sh(["dnsmasq", "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.53", "--server=192.0.2.10", "--pid-file=" + path.join(dir, "stub.pid")]);
    expect(stub.code, stub.stderr).toBe(0);
  }
  expect(h.sh(["mount", "--bind", conf, "/etc/resolv.conf"]).code).toBe(0);
  // the private host's own /run/systemd: systemd-resolved's file only when asked for
  expect(h.sh(["sh", "-c", "mkdir -p /run/systemd && mount -t tmpfs none /run/systemd"]).code).toBe(0);
  if (systemdFile) expect(h.sh(["sh", "-c", "mkdir -p /run/systemd/resolve && echo 'nameserver 192.0.2.10' > /run/systemd/resolve/resolv.conf"]).code).toBe(0);
  return h;
}

/** The A records dig gets for `name` inside `ctr` (its resolv.conf's server); "NXDOMAIN" when none exists. */
function dig(h: IsolatedHost, ctr: string, name: string, server?: string): string {
  // -q: a name such as "a" is not taken for a record type
  const r = h.inNs(ctr, "dig", "+short", "+tries=3", "+time=1", ...(server ? [`@${server}`] : []), "-q", name);
  const status = h.inNs(ctr, "dig", "+tries=3", "+time=1", ...(server ? [`@${server}`] : []), "-q", name).stdout;
  if (/status: NXDOMAIN/.test(status)) return "NXDOMAIN";
  return r.stdout.trim();
}

/** Retries for up to 2 s: names follow a command "within a second". */
async function eventually(get: () => string, want: string): Promise<string> {
  let got = get();
  for (let i = 0; i < 20 && got !== want; i++) {
    await sleep(100);
    got = get();
  }
  return got;
}

const ipOf = (h: IsolatedHost, name: string, net: string) => h.state().containers[name].endpoints.find((e: any) => e.network === net).ip as string;

describe("the DNS server of user networks", () => {
  it("red/blue through DNS: names, aliases, short ids and NAME.NETWORK answer on a shared network only", async () => {
    const h = await hostWith("upstream");
    h.ok("net", "create", "red");
    h.ok("net", "create", "blue");
    h.ok("run", "-d", "--net", "red", "--name", "ubuntu1", "--network-alias", "web");
    h.ok("run", "-d", "--net", "red", "--name", "ubuntu2");
    h.ok("run", "-d", "--net", "blue", "--name", "ubuntu3");
    h.ok("run", "-d", "--net", "blue", "--name", "ubuntu4");
    const ip1 = ipOf(h, "ubuntu1", "red");
    expect(await eventually(() => dig(h, "ubuntu2", "ubuntu1"), ip1)).toBe(ip1);
    expect(dig(h, "ubuntu2", "web")).toBe(ip1);
    expect(dig(h, "ubuntu2", "ubuntu1.red")).toBe(ip1);
    const shortId = h.state().containers.ubuntu1.id.slice(0, 12);
    expect(dig(h, "ubuntu2", shortId)).toBe(ip1);
    // blue's names are not red's
    expect(dig(h, "ubuntu4", "ubuntu1")).toBe("NXDOMAIN");
    expect(dig(h, "ubuntu2", "ubuntu3")).toBe("NXDOMAIN");
    // nor when red asks blue's server on blue's gateway: that query is the host's INPUT, past FORWARD's
    // isolation, and aardvark-dns answers a client it does not know (CTNET-INPUT drops it)
    const blueGw = h.state().networks.blue.gateway;
    const ip3 = ipOf(h, "ubuntu3", "blue");
    expect(dig(h, "ubuntu2", "ubuntu3", blueGw)).not.toContain(ip3);
    // getent (glibc) and ping agree with dig
    expect(h.inNs("ubuntu4", "getent", "hosts", "ubuntu3").stdout).toContain(ipOf(h, "ubuntu3", "blue"));
    expect(h.inNs("ubuntu4", "getent", "hosts", "ubuntu1").code).not.toBe(0);
    expect(h.ping("ubuntu4", "ubuntu3")).toBe(true);
    // outside names go to the host's upstream
    expect(dig(h, "ubuntu4", "www.example.test")).toBe("10.9.9.9");
    // connect: blue's containers now resolve ubuntu1, and ubuntu1 resolves blue's
    h.ok("net", "connect", "blue", "ubuntu1");
    const ip1blue = ipOf(h, "ubuntu1", "blue");
    expect(await eventually(() => dig(h, "ubuntu3", "ubuntu1"), ip1blue)).toBe(ip1blue);
    expect(dig(h, "ubuntu1", "ubuntu4")).toBe(ipOf(h, "ubuntu4", "blue"));
    // disconnect, stop and rm take names away
    h.ok("net", "disconnect", "blue", "ubuntu1");
    expect(await eventually(() => dig(h, "ubuntu3", "ubuntu1"), "NXDOMAIN")).toBe("NXDOMAIN");
    h.ok("stop", "ubuntu2");
    expect(await eventually(() => dig(h, "ubuntu1", "ubuntu2"), "NXDOMAIN")).toBe("NXDOMAIN");
    h.ok("rm", "-f", "ubuntu4");
    expect(await eventually(() => dig(h, "ubuntu3", "ubuntu4"), "NXDOMAIN")).toBe("NXDOMAIN");
  });

  it("is started with the first container on a user network, in the state dir, and stopped with the last", async () => {
    const h = await hostWith("upstream");
    h.ok("net", "create", "red");
    const running = () => h.sh(["pgrep", "-x", "aardvark-dns"]).stdout.trim();
    expect(running()).toBe("");
    h.ok("run", "-d", "--net", "red", "--name", "a");
    expect(running()).not.toBe("");
    const conf = fs.readFileSync(path.join(h.stateDir, "dns", "red"), "utf8").split("\n");
    expect(conf[0]).toBe(h.state().networks.red.gateway);
    expect(conf[1]).toMatch(new RegExp(`^[0-9a-f]{64} ${ipOf(h, "a", "red").replace(/\./g, "\\.")}  a,[0-9a-f]{12},a\\.red$`));
    h.ok("rm", "-f", "a");
    expect(running()).toBe("");
    expect(fs.existsSync(path.join(h.stateDir, "dns", "red"))).toBe(false);
  });

  it("killed, it is started again by the next command and by doctor --fix, its files rebuilt from the state", async () => {
    const h = await hostWith("upstream");
    h.ok("net", "create", "red");
    h.ok("run", "-d", "--net", "red", "--name", "a");
    h.ok("run", "-d", "--net", "red", "--name", "b");
    const kill = async () => {
      h.sh(["pkill", "-KILL", "-x", "aardvark-dns"]);
      while (h.sh(["pgrep", "-x", "aardvark-dns"]).code === 0) await sleep(20);
    };
    await kill();
    fs.writeFileSync(path.join(h.stateDir, "dns", "red"), "garbage\n");
    expect(h.ctnet("doctor").stdout).toMatch(/DNS server .* is not running/);
    h.ok("doctor", "--fix");
    expect(await eventually(() => dig(h, "a", "b"), ipOf(h, "b", "red"))).toBe(ipOf(h, "b", "red"));
    await kill();
    h.ok("run", "-d", "--net", "red", "--name", "c");
    expect(await eventually(() => dig(h, "c", "a"), ipOf(h, "a", "red"))).toBe(ipOf(h, "a", "red"));
    expect(dig(h, "a", "c")).toBe(ipOf(h, "c", "red"));
  });

  it("reset stops it and removes its files", async () => {
    const h = await hostWith("upstream");
    h.ok("net", "create", "red");
    h.ok("run", "-d", "--net", "red", "--name", "a");
    h.ok("reset", "-y");
    expect(h.sh(["pgrep", "-x", "aardvark-dns"]).stdout.trim()).toBe("");
    expect(fs.existsSync(path.join(h.stateDir, "dns"))).toBe(false);
  });
});

describe("outside names from every container", () => {
  it("a loopback stub on the host (systemd-resolved's 127.0.0.53): user networks, the default bridge, container:X", async () => {
    const h = await hostWith("stub", true);
    h.ok("net", "create", "red");
    h.ok("run", "-d", "--net", "red", "--name", "u");
    h.ok("run", "-d", "--name", "d");
    h.ok("run", "-d", "--net", "container:d", "--name", "j");
    expect(await eventually(() => dig(h, "u", "www.example.test"), "10.9.9.9")).toBe("10.9.9.9");
    // the default bridge gets systemd-resolved's upstreams, as Docker does
    expect(h.sh(["cat", "/etc/netns/d/resolv.conf"]).stdout).toContain("nameserver 192.0.2.10");
    expect(h.inNs("d", "getent", "hosts", "www.example.test").stdout).toContain("10.9.9.9");
    // container:X uses X's files
    expect(h.ctnet("exec", "j", "getent", "hosts", "www.example.test").stdout).toContain("10.9.9.9");
    // the default bridge gives no names between containers
    h.ok("run", "-d", "--name", "d2");
    expect(h.inNs("d2", "getent", "hosts", "d").code).not.toBe(0);
  });
});

describe("names follow the commands", () => {
  it("a running process resolves a container that joined its network after it started", async () => {
    const h = await hostWith("upstream");
    h.ok("net", "create", "red");
    // a's main process waits for b's name, asking the resolver it has had since it started
    h.ok("run", "-d", "--net", "red", "--name", "a", "sh", "-c", "until getent hosts b >/dev/null; do sleep 0.1; done; echo seen b");
    h.ok("run", "-d", "--net", "red", "--name", "b", "--network-alias", "web");
    let seen = "";
    for (let i = 0; i < 50 && !seen.includes("seen b"); i++, await sleep(100)) seen = h.ok("logs", "a");
    expect(seen).toContain("seen b");
    expect(h.inNs("a", "getent", "hosts", "web").stdout).toContain(ipOf(h, "b", "red"));
  });
});

describe("lab files", () => {
  it("compose's dns, dns_search, dns_opt, extra_hosts and links; names between the lab's containers", async () => {
    const h = await hostWith("upstream");
    const dir = tmpDir("ctnet-dns-lab-");
    const file = path.join(dir, "ctnet.yaml");
    fs.writeFileSync(file, `name: names
networks:
  back: {subnet: 10.78.1.0/24}
containers:
  db: {networks: {back: {aliases: [mysql]}}}
  app:
    networks: [back]
    dns: 192.0.2.10
    dns_search: [example.test]
    dns_opt: [ndots:1]
    extra_hosts: {cache.local: 10.0.0.9}
  old: {}
  legacy: {links: ["old:o"], extra_hosts: ["gw:host-gateway"]}
`);
    h.ok("up", "-f", file);
    const ip = ipOf(h, "db", "back");
    expect(await eventually(() => dig(h, "app", "mysql"), ip)).toBe(ip);
    expect(dig(h, "db", "app")).toBe(ipOf(h, "app", "back"));
    expect(h.inNs("app", "getent", "hosts", "cache.local").stdout).toContain("10.0.0.9");
    const conf = h.sh(["cat", "/etc/netns/app/resolv.conf"]).stdout;
    expect(conf).toContain("search example.test");
    expect(conf).toContain("options ndots:1");
    expect(fs.readFileSync(path.join(h.stateDir, "dns", "back"), "utf8")).toMatch(/ app,[0-9a-f]{12},app\.back 192\.0\.2\.10\n/);
    expect(h.inNs("legacy", "getent", "hosts", "o").stdout).toContain(ipOf(h, "old", "bridge"));
    expect(h.inNs("legacy", "getent", "hosts", "gw").stdout).toContain(h.state().networks.bridge.gateway);
    h.ok("down", "-f", file);
    expect(h.sh(["pgrep", "-x", "aardvark-dns"]).stdout.trim()).toBe("");
  });
});

describe("one /etc/hosts per container", () => {
  it("an edit inside one container stays there, and survives the next run on its network", async () => {
    const h = await hostWith("upstream");
    h.ok("net", "create", "red");
    h.ok("run", "-d", "--net", "red", "--name", "a");
    h.ok("run", "-d", "--net", "red", "--name", "b");
    expect(h.inNs("a", "sh", "-c", "echo '10.1.2.3 mine' >> /etc/hosts").code).toBe(0);
    h.ok("run", "-d", "--net", "red", "--name", "c");
    expect(h.inNs("a", "getent", "hosts", "mine").stdout).toContain("10.1.2.3");
    expect(h.inNs("b", "getent", "hosts", "mine").code).not.toBe(0);
    const hosts = h.sh(["cat", "/etc/netns/b/hosts"]).stdout;
    expect(hosts).toContain("127.0.0.1\tlocalhost");
    expect(hosts).toContain(`${ipOf(h, "b", "red")}\tb`);
    expect(hosts).not.toContain("\ta\n");
  });
});

describe("the resolver flags", () => {
  it("--dns, --dns-search, --dns-option on the default bridge; --dns on a user network is where the server forwards", async () => {
    const h = await hostWith("upstream");
    h.ok("run", "-d", "--name", "d", "--dns", "192.0.2.10", "--dns", "192.0.2.11", "--dns-search", "example.test", "--dns-option", "ndots:2");
    const conf = h.sh(["cat", "/etc/netns/d/resolv.conf"]).stdout;
    expect(conf).toContain("nameserver 192.0.2.10\nnameserver 192.0.2.11\n");
    expect(conf).toContain("search example.test");
    expect(conf).toContain("options ndots:2");
    // the search domain is used: "www" is www.example.test
    expect(h.inNs("d", "getent", "hosts", "www").stdout).toContain("10.9.9.9");
    h.ok("net", "create", "red");
    h.ok("run", "-d", "--net", "red", "--name", "u", "--dns", "192.0.2.10");
    expect(fs.readFileSync(path.join(h.stateDir, "dns", "red"), "utf8")).toMatch(/ u,[0-9a-f]{12},u\.red 192\.0\.2\.10\n/);
    expect(h.sh(["cat", "/etc/netns/u/resolv.conf"]).stdout).toContain(`nameserver ${h.state().networks.red.gateway}`);
    expect(h.ctnet("run", "--dns", "nope", "--name", "x").code).toBe(2);
  });

  it("--add-host NAME:IP and host-gateway, -h for --hostname", async () => {
    const h = await hostWith("upstream");
    h.ok("net", "create", "red");
    h.ok("run", "-d", "--net", "red", "--name", "a", "-h", "box", "--add-host", "db.local:10.0.0.7", "--add-host", "host.docker.internal:host-gateway");
    expect(h.inNs("a", "getent", "hosts", "db.local").stdout).toContain("10.0.0.7");
    expect(h.inNs("a", "getent", "hosts", "host.docker.internal").stdout).toContain(h.state().networks.red.gateway);
    expect(h.state().containers.a.hostname).toBe("box");
    expect(h.sh(["ip", "netns", "exec", "a", "cat", "/etc/hostname"]).stdout).toBe("box\n");
    const bad = h.ctnet("run", "--add-host", "nocolon", "--name", "y");
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("--link NAME:ALIAS on the default bridge: the linked name and alias resolve in the linking container only", async () => {
    const h = await hostWith("upstream");
    h.ok("run", "-d", "--name", "mysql");
    h.ok("run", "-d", "--name", "app", "--link", "mysql:db");
    const ip = ipOf(h, "mysql", "bridge");
    expect(h.inNs("app", "getent", "hosts", "db").stdout).toContain(ip);
    expect(h.inNs("app", "getent", "hosts", "mysql").stdout).toContain(ip);
    expect(h.ping("app", "db")).toBe(true);
    h.ok("run", "-d", "--name", "other");
    expect(h.inNs("other", "getent", "hosts", "db").code).not.toBe(0);
    expect(h.ctnet("run", "--link", "nosuch", "--name", "z").code).toBe(2);
  });

  it("seed 002 as typed: --name=mysql_app gets its short id as hostname, and its name resolves", async () => {
    const h = await hostWith("upstream");
    h.ok("net", "create", "my_net");
    h.ok("run", "-dit", "--name=mysql_app", "--net", "my_net");
    h.ok("run", "-dit", "--name=web", "--net", "my_net");
    const c = h.state().containers.mysql_app;
    expect(c.hostname).toBe(c.id.slice(0, 12));
    const ip = ipOf(h, "mysql_app", "my_net");
    expect(await eventually(() => dig(h, "web", "mysql_app"), ip)).toBe(ip);
    expect(h.ping("web", "mysql_app")).toBe(true);
  });
});

describe("one command, many planners: the server told once, stopped and started again", () => {
  /** How often a dry run of `args` plans `what` (an argv's start) for the DNS server. */
  const planned = (h: IsolatedHost, what: RegExp, ...args: string[]) => {
    const dry = h.ctnet(...args, "--dry-run");
    expect(dry.code, dry.stderr).toBe(0);
    return (dry.stdout.match(what) ?? []).length;
  };
  const HUP = /kill -HUP /g;
  const START = /aardvark-dns --config /g;
  const agree = (h: IsolatedHost) => expect(h.ctnet("doctor").stdout).toContain("no differences");

  it("up that replaces a lab's only network stops the server and starts it for the new containers", async () => {
    const h = await hostWith("upstream");
    const file = path.join(h.stateDir, "only.yaml");
    const lab = (subnet: string) => fs.writeFileSync(file, `name: only\nnetworks:\n  n1: {subnet: ${subnet}}\ncontainers:\n  c1: {networks: [n1]}\n  c2: {networks: [n1]}\n`);
    lab("10.78.3.0/24");
    h.ok("up", "-f", file);
    lab("10.78.4.0/24");
    const again = h.ctnet("up", "-f", file);
    expect(again.code, again.stderr).toBe(0);
    // (was: kill -0 and kill -HUP of the stopped server, no server for the new containers)
    expect(again.stderr).toBe("");
    const ip = ipOf(h, "c2", "n1");
    expect(ip).toMatch(/^10\.78\.4\./);
    expect(await eventually(() => dig(h, "c1", "c2"), ip)).toBe(ip);
    agree(h);
    h.ok("down", "-f", file);
    expect(h.sh(["pgrep", "-x", "aardvark-dns"]).stdout.trim()).toBe("");
  });

  it("net connect to a network made before: the file lists its members in the state's order, as doctor reads it", async () => {
    const h = await hostWith("upstream");
    h.ok("net", "create", "older");
    h.ok("net", "create", "newer");
    h.ok("run", "-d", "--net", "newer", "--name", "first");
    h.ok("run", "-d", "--net", "older", "--name", "second");
    h.ok("net", "connect", "older", "first");
    agree(h);
    const ip = ipOf(h, "first", "older");
    expect(await eventually(() => dig(h, "second", "first"), ip)).toBe(ip);
  });

  it("rm -f of several containers at once: one signal for their files, and the server stopped with the last file", async () => {
    const h = await hostWith("upstream");
    for (const n of ["na", "nb", "nc"]) h.ok("net", "create", n);
    for (const [c, n] of [["a", "na"], ["b", "nb"], ["c", "nc"]]) h.ok("run", "-d", "--net", n, "--name", c);
    // two files change, the server reads them once (a second SIGHUP right after the first can end it)
    expect(planned(h, HUP, "rm", "-f", "a", "b")).toBe(1);
    h.ok("rm", "-f", "c");
    // the files left are counted as the plan leaves them, not as they are on disk: the last two go in one rm
    expect(planned(h, /kill -TERM /g, "rm", "-f", "a", "b")).toBe(1);
    h.ok("rm", "-f", "a", "b");
    expect(h.sh(["pgrep", "-x", "aardvark-dns"]).stdout.trim()).toBe("");
    agree(h);
  });

  it("stop and start of several containers at once: one signal, one start after the last file", async () => {
    const h = await hostWith("upstream");
    for (const n of ["na", "nb"]) h.ok("net", "create", n);
    for (const [c, n] of [["a", "na"], ["b", "nb"], ["c", "nb"]]) h.ok("run", "-d", "--net", n, "--name", c);
    expect(planned(h, HUP, "stop", "a", "b")).toBe(1);
    h.ok("stop", "a", "b", "c");
    expect(h.sh(["pgrep", "-x", "aardvark-dns"]).stdout.trim()).toBe("");
    expect(planned(h, START, "start", "a", "b", "c")).toBe(1);
    h.ok("start", "a", "b", "c");
    const ip = ipOf(h, "c", "nb");
    expect(await eventually(() => dig(h, "b", "c"), ip)).toBe(ip);
    agree(h);
  });

  it("down of a lab on two networks stops the server with the last file", async () => {
    const h = await hostWith("upstream");
    const file = path.join(h.stateDir, "two.yaml");
    fs.writeFileSync(file, "name: two\nnetworks:\n  n1: {subnet: 10.78.5.0/24}\n  n2: {subnet: 10.78.6.0/24}\ncontainers:\n  c1: {networks: [n1]}\n  c2: {networks: [n2]}\n");
    h.ok("up", "-f", file);
    expect(planned(h, /kill -TERM /g, "down", "-f", file)).toBe(1);
    h.ok("down", "-f", file);
    expect(h.sh(["pgrep", "-x", "aardvark-dns"]).stdout.trim()).toBe("");
  });
});
