// The macvlan and ipvlan drivers on a real kernel, in a private host (isolated.ts): a "lan" namespace on
// the far end of a veth plays the physical network, and the near end, lanp, is the parent NIC.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { IsolatedHost, useIsolatedHosts } from "./isolated.js";
import { liveHostFacts } from "../../src/host/facts.js";
import { journalFiles, kill, startPaused, stateText } from "./killpoints.js";

const newHost = useIsolatedHosts();

const LAN = "192.168.77";

/** A private host whose parent NIC lanp is wired to the namespace `lan` (the LAN's router, .1). */
async function hostWithLan(): Promise<IsolatedHost> {
  const h = await newHost();
  for (const argv of [
    ["ip", "link", "add", "lanp", "type", "veth", "peer", "name", "lanwire"],
    ["ip", "netns", "add", "lan"],
    ["ip", "link", "set", "lanwire", "netns", "lan"],
    ["ip", "-n", "lan", "addr", "add", `${LAN}.1/24`, "dev", "lanwire"],
    ["ip", "-n", "lan", "link", "set", "lanwire", "up"],
    ["ip", "-n", "lan", "link", "set", "lo", "up"],
    ["ip", "link", "set", "lanp", "up"],
  ]) {
    const r = h.sh(argv);
    if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
  }
  return h;
}

/** whether this kernel makes ipvlan links: the ipvlan tests that need it are skipped, saying so, where it does not */
const KERNEL_HAS_IPVLAN = liveHostFacts().kernelHas("ipvlan");

const ipOf = (h: IsolatedHost, name: string, net: string) => h.state().containers[name].endpoints.find((e: any) => e.network === net).ip as string;

describe("macvlan", () => {
  it("puts containers on the LAN: they reach its machines and each other (by name), the LAN reaches them, bridge networks do not", async () => {
    const h = await hostWithLan();
    h.ok("net", "create", "-d", "macvlan", "--subnet", `${LAN}.0/24`, "--gateway", `${LAN}.1`, "--ip-range", `${LAN}.128/25`, "-o", "parent=lanp", "mv");
    h.ok("run", "-d", "--net", "mv", "--name", "a");
    h.ok("run", "-d", "--net", "mv", "--name", "b", "--ip", `${LAN}.50`);
    const a = ipOf(h, "a", "mv");
    expect(a.startsWith(`${LAN}.1`)).toBe(true);
    expect(h.sh(["ip", "-n", "a", "-d", "link", "show", "eth0"]).stdout).toMatch(/macvlan mode bridge/);
    expect(h.sh(["ip", "-n", "a", "route", "show", "default"]).stdout).toMatch(`default via ${LAN}.1 dev eth0`);
    // IPv4 only, as on bridge networks: no link-local address sending DAD and router solicitations to the LAN
    expect(h.sh(["ip", "-n", "a", "-6", "addr", "show", "dev", "eth0"]).stdout).toBe("");
    expect(h.ping("a", `${LAN}.1`)).toBe(true);
    expect(h.sh(["ip", "netns", "exec", "lan", "ping", "-c1", "-W1", a]).code).toBe(0);
    expect(h.ping("a", "b")).toBe(true);
    expect(h.ping("b", "a")).toBe(true);
    const [inspect] = JSON.parse(h.ok("net", "inspect", "mv"));
    expect(inspect).toMatchObject({ Driver: "macvlan", Options: { parent: "lanp" }, IPAM: { Config: [{ Subnet: `${LAN}.0/24`, Gateway: `${LAN}.1`, IPRange: `${LAN}.128/25` }] } });
    expect(h.ok("net", "ls", "--format", "{{.Name}} {{.Driver}}").split("\n")).toContain("mv macvlan");
    // graph draws the parent and the LAN behind it, not a bridge
    const text = h.ok("graph");
    expect(text).toContain(`network mv: macvlan on parent lanp (LAN ${LAN}.0/24, gateway ${LAN}.1)`);
    expect(text).toContain(`b: eth0 ${LAN}.50/24`);
    expect(text).not.toMatch(/bridge\s*\(no address\)/);
    const dot = h.ok("graph", "--format", "dot");
    expect(dot).toMatch(/"ns:a":"eth0" -> "parent:mv"/);
    expect(dot).toMatch(/"parent:mv" -> "lan:mv"/);
    expect(h.ctnet("doctor").code).toBe(0);

    h.ok("net", "create", "--subnet", "10.66.0.0/24", "br");
    h.ok("run", "-d", "--net", "br", "--name", "c");
    expect(h.ping("c", "10.66.0.1")).toBe(true);
    expect(h.ping("c", a)).toBe(false);
    expect(h.ping("a", ipOf(h, "c", "br"))).toBe(false);
    // trace agrees with the pings, through the driver interface
    const across = h.ctnet("trace", "c", "a");
    expect(across.stdout).toMatch(/the host cannot reach its own macvlan containers through their parent lanp/);
    expect(h.ctnet("trace", "a", "b").stdout).toMatch(/goes over parent lanp, not through the host's IP stack or firewall/);
  });

  it("net rm leaves the parent as found, and nothing of ctnet behind", async () => {
    const h = await hostWithLan();
    const before = h.kernel();
    h.ok("net", "create", "-d", "macvlan", "--subnet", `${LAN}.0/24`, "-o", "parent=lanp", "-o", "macvlan_mode=private", "mv");
    h.ok("run", "-d", "--net", "mv", "--name", "a");
    expect(h.sh(["ip", "-n", "a", "-d", "link", "show", "eth0"]).stdout).toMatch(/macvlan mode private/);
    h.ok("rm", "-f", "a");
    h.ok("net", "rm", "mv");
    expect(h.kernel()).toEqual(before);
  });

  it("an --internal network runs on a parent of ctnet's own: containers reach each other, not the LAN; net rm removes the parent", async () => {
    const h = await hostWithLan();
    const before = h.kernel();
    h.ok("net", "create", "-d", "macvlan", "--internal", "--subnet", "10.77.0.0/24", "inner");
    h.ok("run", "-d", "--net", "inner", "--name", "a");
    h.ok("run", "-d", "--net", "inner", "--name", "b");
    expect(h.ping("a", "b")).toBe(true);
    expect(h.sh(["ip", "-n", "a", "route", "show", "default"]).stdout).toBe("");
    expect(h.ping("a", `${LAN}.1`)).toBe(false);
    const doctor = h.ctnet("doctor");
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    h.ok("rm", "-f", "a", "b");
    h.ok("net", "rm", "inner");
    expect(h.kernel()).toEqual(before);
  });

  it("doctor finds a container's lost macvlan link and --fix makes it again, with its route", async () => {
    const h = await hostWithLan();
    h.ok("net", "create", "-d", "macvlan", "--subnet", `${LAN}.0/24`, "-o", "parent=lanp", "mv");
    h.ok("run", "-d", "--net", "mv", "--name", "a");
    expect(h.ctnet("doctor").code).toBe(0);
    h.sh(["ip", "-n", "a", "link", "del", "eth0"]);
    const found = h.ctnet("doctor");
    expect(found.code).not.toBe(0);
    expect(found.stdout + found.stderr).toMatch(/container a on mv: macvlan eth0 is missing/);
    h.ok("doctor", "--fix");
    expect(h.ctnet("doctor").code).toBe(0);
    expect(h.ping("a", `${LAN}.1`)).toBe(true);
  });

  it("doctor --fix adopts a running macvlan container the state lost (a restored backup): its endpoint, name and address", async () => {
    const h = await hostWithLan();
    h.ok("net", "create", "-d", "macvlan", "--subnet", `${LAN}.0/24`, "-o", "parent=lanp", "mv");
    h.ok("run", "-d", "--net", "mv", "--name", "a");
    h.ok("run", "-d", "--net", "mv", "--name", "b");
    const before = h.state().containers.b;
    fs.copyFileSync(path.join(h.stateDir, "state.json.bak"), path.join(h.stateDir, "state.json"));
    expect(Object.keys(h.state().containers)).toEqual(["a"]);
    expect(h.ctnet("doctor").stdout).toMatch(/orphan container b .*--fix adopts it/);
    const fix = h.ctnet("doctor", "--fix");
    expect(fix.code, fix.stdout + fix.stderr).toBe(0);
    const b = h.state().containers.b;
    expect(b).toMatchObject({ mode: "bridge", pid: before.pid });
    expect(b.endpoints).toEqual([{ ...before.endpoints[0], id: b.endpoints[0].id }]);
    expect(h.ping("a", "b")).toBe(true);
    const agree = h.ctnet("doctor");
    expect(agree.code, agree.stdout).toBe(0);
  });

  it("the host cannot reach its own macvlan containers; the shim recipe of docs/drivers.md lets it", async () => {
    const h = await hostWithLan();
    h.ok("net", "create", "-d", "macvlan", "--subnet", `${LAN}.0/24`, "--gateway", `${LAN}.1`, "--ip-range", `${LAN}.192/27`, "-o", "parent=lanp", "office");
    h.ok("run", "-d", "--net", "office", "--name", "a");
    const a = ipOf(h, "a", "office");
    h.sh(["ip", "addr", "add", `${LAN}.10/24`, "dev", "lanp"]);
    expect(h.sh(["ping", "-c1", "-W1", `${LAN}.1`]).code).toBe(0);
    expect(h.sh(["ping", "-c1", "-W1", a]).code).not.toBe(0);
    for (const argv of [
      ["ip", "link", "add", "office-shim", "link", "lanp", "type", "macvlan", "mode", "bridge"],
      ["ip", "addr", "add", `${LAN}.223/32`, "dev", "office-shim"],
      ["ip", "link", "set", "office-shim", "up"],
      ["ip", "route", "add", `${LAN}.192/27`, "dev", "office-shim"],
    ]) expect(h.sh(argv).code, argv.join(" ")).toBe(0);
    expect(h.sh(["ping", "-c1", "-W1", a]).code).toBe(0);
  });

  it("reset removes macvlan containers and the parent ctnet made, and leaves the host's parent", async () => {
    const h = await hostWithLan();
    const before = h.kernel();
    h.ok("net", "create", "-d", "macvlan", "--subnet", `${LAN}.0/24`, "-o", "parent=lanp", "mv");
    h.ok("net", "create", "-d", "macvlan", "--internal", "--subnet", "10.77.0.0/24", "inner");
    h.ok("run", "-d", "--net", "mv", "--name", "a");
    h.ok("run", "-d", "--net", "inner", "--name", "b");
    h.ok("reset", "--yes");
    expect(h.kernel()).toEqual(before);
  });

  it("labs: a lab file's macvlan network (driver, options: {parent}) comes up on the LAN and goes down leaving the parent as found", async () => {
    const h = await hostWithLan();
    const file = path.join(h.stateDir, "..", `ctnet-macvlan-lab-${process.pid}.yaml`);
    fs.writeFileSync(file, `name: office
networks:
  lan: {driver: macvlan, subnet: ${LAN}.0/24, gateway: ${LAN}.1, options: {parent: lanp}}
containers:
  desk: {networks: [lan]}
  printer: {networks: {lan: {ip: ${LAN}.9}}}
`);
    try {
      const before = h.kernel();
      h.ok("up", "-f", file);
      expect(h.ping("desk", `${LAN}.1`)).toBe(true);
      expect(h.ping("desk", "printer")).toBe(true);
      expect(h.sh(["ip", "netns", "exec", "lan", "ping", "-c1", "-W1", `${LAN}.9`]).code).toBe(0);
      h.ok("down", "--lab", "office");
      expect(h.kernel()).toEqual(before);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it("refuses bad input with one line, exit 2, nothing changed", async () => {
    const h = await hostWithLan();
    h.ok("net", "create", "--subnet", "10.66.0.0/24", "br");
    h.ok("run", "-d", "--net", "br", "--name", "c");
    h.ok("net", "create", "-d", "macvlan", "--subnet", `${LAN}.0/25`, "-o", "parent=lanp", "mv1");
    const veth = h.state().containers.c.endpoints[0].hostIf;
    const before = h.kernel();
    const files = h.stateFiles();
    for (const [args, message] of [
      [["-o", "parent=nosuch0", "--subnet", "10.1.0.0/24"], /parent interface nosuch0 does not exist/],
      [["-o", "parent=ctbr-br", "--subnet", "10.1.0.0/24"], /parent ctbr-br is the bridge of ctnet network br/],
      [["-o", `parent=${veth}`, "--subnet", "10.1.0.0/24"], /is a container's veth/],
      [["-o", "parent=lanp", "--subnet", `${LAN}.0/24`], /parent lanp is already used by network mv1 with an overlapping subnet/],
      [["-o", "parent=lanp"], /macvlan networks need --subnet/],
      [["-o", "parent=lanp", "--subnet", "10.1.0.0/24", "-o", "icc=false"], /option icc belongs to the bridge driver, not macvlan/],
      [["-o", "parent=lanp", "--subnet", "10.1.0.0/24", "-o", "mtu=9000"], /mtu 9000 is above the mtu 1500 of parent lanp/],
      [["-o", "parent=lanp", "--subnet", "10.1.0.0/24", "-o", "macvlan_mode=nosuch"], /invalid macvlan_mode "nosuch"/],
    ] as const) {
      const r = h.ctnet("net", "create", "-d", "macvlan", ...args, "mv2");
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    const other = h.ctnet("net", "create", "-o", "parent=lanp", "br2");
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/option parent belongs to the macvlan driver, not bridge/);
    expect(h.kernel()).toEqual(before);
    expect(h.stateFiles()).toEqual(files);
  });

  it("a VLAN parent needs the kernel's 8021q module: one line naming it, exit 1, nothing changed", async () => {
    const h = await hostWithLan();
    const vlanWorks = h.sh(["ip", "link", "add", "link", "lanp", "name", "lanp.9", "type", "vlan", "id", "9"]).code === 0;
    h.sh(["ip", "link", "del", "lanp.9"]);
    const before = h.kernel();
    const r = h.ctnet("net", "create", "-d", "macvlan", "--subnet", `${LAN}.0/24`, "-o", "parent=lanp.50", "v50");
    if (vlanWorks) {
      expect(r.code, r.stderr).toBe(0);
      expect(h.sh(["ip", "-d", "link", "show", "lanp.50"]).stdout).toMatch(/vlan protocol 802.1Q id 50/);
      h.ok("net", "rm", "v50");
    } else {
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/kernel module 8021q is missing/);
    }
    expect(h.kernel()).toEqual(before);
  });
});

describe("ipvlan", () => {
  it.skipIf(KERNEL_HAS_IPVLAN)("where the kernel lacks it, net create fails before any step: one line naming the module, exit 1, nothing changed", async () => {
    const h = await hostWithLan();
    const before = h.kernel();
    const r = h.ctnet("net", "create", "-d", "ipvlan", "--subnet", `${LAN}.0/24`, "-o", "parent=lanp", "-o", "ipvlan_mode=l2", "iv");
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/kernel module ipvlan is missing/);
    expect(h.kernel()).toEqual(before);
  });

  it.skipIf(!KERNEL_HAS_IPVLAN)(`puts containers on the LAN with the parent's MAC${KERNEL_HAS_IPVLAN ? "" : " (skipped: this kernel has no ipvlan module)"}`, async () => {
    const h = await hostWithLan();
    h.ok("net", "create", "-d", "ipvlan", "--subnet", `${LAN}.0/24`, "--gateway", `${LAN}.1`, "-o", "parent=lanp", "iv");
    h.ok("run", "-d", "--net", "iv", "--name", "a");
    h.ok("run", "-d", "--net", "iv", "--name", "b");
    expect(h.ping("a", `${LAN}.1`)).toBe(true);
    expect(h.ping("a", "b")).toBe(true);
    const mac = (argv: string[]) => JSON.parse(h.sh(argv).stdout)[0].address;
    expect(mac(["ip", "-n", "a", "-j", "link", "show", "eth0"])).toBe(mac(["ip", "-j", "link", "show", "lanp"]));
  });
});

describe("kill at every step", () => {
  for (const [what, setup, args, teardown] of [
    ["net create -d macvlan --internal", [] as string[][], ["net", "create", "-d", "macvlan", "--internal", "--subnet", "10.77.0.0/24", "inner"], ["net", "rm", "inner"]],
    ["run on macvlan", [["net", "create", "-d", "macvlan", "--subnet", `${LAN}.0/24`, "-o", "parent=lanp", "mv"]], ["run", "-d", "--net", "mv", "--name", "a"], ["rm", "-f", "a"]],
  ] as const) {
    it(`${what}: SIGKILL after each step; the next command recovers, the result matches an uninterrupted run, and undoing it leaves the host as found`, async () => {
      const h = await hostWithLan();
      for (const s of setup) h.ok(...s);
      const before = { state: stateText(h.stateDir), kernel: h.kernel() };
      let total = Infinity;
      for (let n = 0; n <= total + 1; n++) {
        const at = n === total + 1 ? "commit" : String(n);
        const p = await startPaused(h, [...args], at);
        expect(p.pid, `no pause at ${at}: ${p.stderr()}`).not.toBeNull();
        if (p.total >= 0) total = p.total;
        await kill(h, p);
        // after the commit the command is done; before it, running it again recovers and then does it
        const r = h.ctnet(...(at === "commit" ? teardown : args));
        expect(r.code, `at ${at}: ${r.stderr}`).toBe(0);
        expect(r.stderr, `at ${at}`).toMatch(/recovered the interrupted plan/);
        expect(journalFiles(h.stateDir)).toEqual([]);
        if (at !== "commit") {
          const doctor = h.ctnet("doctor");
          expect(doctor.code, `at ${at}: ${doctor.stdout}`).toBe(0);
          h.ok(...teardown);
        }
        expect(stateText(h.stateDir), `at ${at}`).toBe(before.state);
        expect(h.kernel(), `at ${at}`).toEqual(before.kernel);
      }
    });
  }
});
