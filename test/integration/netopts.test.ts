// Network options in Docker's names and the default bridge as Docker sets it up (issue 15, items 7 and 8),
// for real in a private host (isolated.ts): the kernel and the traffic are checked, not only the JSON.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CTNET } from "./harness.js";
import { type IsolatedHost, useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-netopts-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** ctnet in the private host with a daemon.json of these settings */
function withDaemonJson(h: IsolatedHost, settings: object) {
  const file = path.join(dir, `daemon-${Math.random().toString(16).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(settings));
  const env = h.env({ CTNET_DAEMON_CONFIG: file });
  return {
    ctnet: (...args: string[]) => h.sh([CTNET, ...args], { env }),
    ok(...args: string[]) {
      const r = h.sh([CTNET, ...args], { env });
      if (r.code !== 0) throw new Error(`ctnet ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
  };
}

const inspect = (h: { ok: (...a: string[]) => string }, net: string) => JSON.parse(h.ok("net", "inspect", net))[0];
const linkOf = (h: IsolatedHost, name: string) => JSON.parse(h.sh(["ip", "-j", "-d", "link", "show", "dev", name]).stdout || "[]")[0];

/**
 * A host "wan" on the private host's uplink, at its default gateway 192.0.2.1, answering TCP port 7
 * with the source address it sees: what masquerading does is visible there.
 */
function addWan(h: IsolatedHost): void {
  for (const argv of [
    ["ip", "netns", "add", "wan"], ["ip", "link", "set", "uplink1", "netns", "wan"],
    ["ip", "-n", "wan", "addr", "add", "192.0.2.1/24", "dev", "uplink1"], ["ip", "-n", "wan", "link", "set", "uplink1", "up"],
    // containers' own addresses route back via this host, so unmasqueraded traffic gets its answer too
    ["ip", "-n", "wan", "route", "add", "10.0.0.0/8", "via", "192.0.2.10"],
  ]) expect(h.sh(argv).code, argv.join(" ")).toBe(0);
  h.sh(["sh", "-c", "ip netns exec wan socat TCP-LISTEN:7,fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR' >/dev/null 2>&1 &"]);
  expect(h.sh(["sh", "-c", "for i in $(seq 50); do ip netns exec wan ss -ltn | grep -q ':7 ' && exit 0; sleep 0.1; done; exit 1"]).code).toBe(0);
}
const sourceSeenByWan = (h: IsolatedHost, ctr: string) => h.inNs(ctr, "socat", "-T3", "-", "TCP4:192.0.2.1:7,connect-timeout=3").stdout.trim();

describe("net create -o with Docker's names (moby daemon/libnetwork/drivers/bridge/labels.go)", () => {
  it("com.docker.network.bridge.name: the bridge has that name, carries the traffic, and goes with net rm", async () => {
    // docs.docker.com/engine/network/drivers/bridge/#options: "Interface name to use when creating the Linux bridge"
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.31.0.0/24", "-o", "com.docker.network.bridge.name=br-lab0", "red");
    expect(linkOf(h, "br-lab0")?.linkinfo?.info_kind).toBe("bridge");
    expect(h.sh(["ip", "-o", "-4", "addr", "show", "dev", "br-lab0"]).stdout).toContain("10.31.0.1/24");
    expect(inspect(h, "red").Options).toEqual({ "com.docker.network.bridge.name": "br-lab0" });
    h.ok("run", "-d", "--net", "red", "--name", "a");
    h.ok("run", "-d", "--net", "red", "--name", "b");
    expect(linkOf(h, "ve-a.red").master).toBe("br-lab0");
    expect(h.ping("a", "b")).toBe(true);
    // the firewall names the chosen bridge
    expect(h.sh(["iptables", "-S", "CTNET-FORWARD"]).stdout).toContain("-i br-lab0 -o br-lab0 -j ACCEPT");
    // doctor finds the bridge by its mark, whatever its name: nothing differs
    expect(h.ctnet("doctor").code).toBe(0);
    h.ok("rm", "-f", "a", "b");
    h.ok("net", "rm", "red");
    expect(linkOf(h, "br-lab0")).toBeUndefined();
    expect(h.sh(["iptables-save"]).stdout).not.toContain("br-lab0");
    // an existing interface is refused in one line, and nothing is made
    const r = h.ctnet("net", "create", "-o", "com.docker.network.bridge.name=uplink0", "blue");
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("ctnet: com.docker.network.bridge.name uplink0: an interface of that name already exists on the host\n");
    expect(h.ok("net", "ls", "-q", "-f", "name=blue")).toBe("");
  });

  it("enable_icc=0 (Go's ParseBool) drops container-to-container traffic; inspect shows Docker's long name", async () => {
    // moby bridge_linux.go fromLabels: strconv.ParseBool(value) for EnableICC
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.32.0.0/24", "-o", "com.docker.network.bridge.enable_icc=0", "red");
    h.ok("run", "-d", "--net", "red", "--name", "a");
    h.ok("run", "-d", "--net", "red", "--name", "b");
    expect(h.ping("a", "b")).toBe(false);
    expect(h.ping("a", "10.32.0.1")).toBe(true);
    expect(inspect(h, "red").Options["com.docker.network.bridge.enable_icc"]).toBe("false");
    expect(inspect(h, "red").Options.icc).toBeUndefined();
  });

  it("enable_ip_masquerade=false: traffic leaves with the container's own address, not the host's", async () => {
    // moby bridge_linux.go: EnableIPMasquerade false leaves out the MASQUERADE rule of the subnet
    const h = await newHost();
    addWan(h);
    h.ok("net", "create", "--subnet", "10.33.0.0/24", "nat");
    h.ok("net", "create", "--subnet", "10.34.0.0/24", "-o", "com.docker.network.bridge.enable_ip_masquerade=False", "routed");
    h.ok("run", "-d", "--net", "nat", "--name", "n");
    h.ok("run", "-d", "--net", "routed", "--name", "r");
    expect(sourceSeenByWan(h, "n")).toBe("192.0.2.10");
    expect(sourceSeenByWan(h, "r")).toBe("10.34.0.2");
    expect(inspect(h, "routed").Options["com.docker.network.bridge.enable_ip_masquerade"]).toBe("false");
  });

  it("host_binding_ipv4: a port published without a host address answers only there", async () => {
    // docs.docker.com/engine/network/drivers/bridge/#options: "Default IP when binding container ports"
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.35.0.0/24", "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", "local");
    h.ok("run", "-d", "--net", "local", "--name", "web", "-p", "8080:80", "--", "socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hello");
    expect(h.ok("port", "web")).toBe("80/tcp -> 127.0.0.1:8080\n");
    const get = (addr: string) => h.sh(["socat", "-T3", "-", `TCP4:${addr}:8080,connect-timeout=2`]).stdout.trim();
    expect(get("127.0.0.1")).toBe("hello");
    expect(get("192.0.2.10")).toBe("");
    // an address given with -p wins, as in Docker
    h.ok("run", "-d", "--net", "local", "--name", "web2", "-p", "192.0.2.10:8081:80", "--", "socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hi");
    expect(h.ok("port", "web2")).toBe("80/tcp -> 192.0.2.10:8081\n");
  });

  it("com.docker.network.driver.mtu sets the bridge's and the containers' MTU, which the path then has", async () => {
    // moby bridge_linux.go: config.Mtu is set on the bridge and on both ends of each endpoint's veth
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.36.0.0/24", "-o", "com.docker.network.driver.mtu=1400", "small");
    h.ok("run", "-d", "--net", "small", "--name", "a");
    h.ok("run", "-d", "--net", "small", "--name", "b");
    expect(linkOf(h, "ctbr-small").mtu).toBe(1400);
    expect(h.inNs("a", "cat", "/sys/class/net/eth0/mtu").stdout.trim()).toBe("1400");
    // 1372 bytes of ICMP payload + 28 of headers fill 1400 exactly; one more cannot leave unfragmented
    expect(h.inNs("a", "ping", "-c1", "-W1", "-M", "do", "-s", "1372", "b").code).toBe(0);
    expect(h.inNs("a", "ping", "-c1", "-W1", "-M", "do", "-s", "1373", "b").code).not.toBe(0);
    expect(inspect(h, "small").Options["com.docker.network.driver.mtu"]).toBe("1400");
  });
});

describe("net create's IPAM and other flags (docker/cli cli/command/network/create.go)", () => {
  it("--aux-address is never given to a container and is shown in IPAM.Config; --attachable and disconnect -f are accepted", async () => {
    const h = await newHost();
    h.ok("net", "create", "--attachable", "--subnet", "10.37.0.0/24", "--aux-address", "router=10.37.0.2", "--aux-address", "nas=10.37.0.3", "red");
    h.ok("run", "-d", "--net", "red", "--name", "a");
    expect(h.inNs("a", "ip", "-4", "-o", "addr", "show", "eth0").stdout).toContain("10.37.0.4/24");
    const doc = inspect(h, "red");
    expect(doc.IPAM.Config).toEqual([{ Subnet: "10.37.0.0/24", Gateway: "10.37.0.1", AuxiliaryAddresses: { router: "10.37.0.2", nas: "10.37.0.3" } }]);
    expect(doc.Attachable).toBe(true);
    const r = h.ctnet("run", "-d", "--net", "red", "--ip", "10.37.0.2", "--name", "b");
    expect([r.code, r.stderr]).toEqual([2, "ctnet: --ip 10.37.0.2 is network red's aux-address router\n"]);
    // two gateways for one subnet: docker/cli's own message
    const g = h.ctnet("net", "create", "--subnet", "10.38.0.0/24", "--gateway", "10.38.0.1", "--gateway", "10.38.0.254", "blue");
    expect([g.code, g.stderr]).toEqual([2, "ctnet: cannot configure multiple gateways (10.38.0.1, 10.38.0.254) for the same subnet (10.38.0.0/24)\n"]);
    const c = h.ctnet("net", "create", "--config-only", "blue");
    expect(c.code).toBe(2);
    expect(c.stderr.trim().split("\n")).toHaveLength(1);
    h.ok("net", "disconnect", "-f", "red", "a");
    expect(h.inNs("a", "ip", "-o", "link", "show", "eth0").code).not.toBe(0);
  });
});

describe("the default bridge, as Docker sets it up (moby daemon/daemon_unix.go initBridgeDriver)", () => {
  it("net inspect bridge shows its IPAM config and Docker's Options before the first container, and the same after", async () => {
    const h = await newHost();
    const before = inspect(h, "bridge");
    expect(before.IPAM.Config).toEqual([{ Subnet: "172.17.0.0/16", Gateway: "172.17.0.1" }]);
    // what docker network inspect bridge prints on a default Docker 20.10 engine, with ctnet's bridge name
    expect(before.Options).toEqual({
      "com.docker.network.bridge.default_bridge": "true",
      "com.docker.network.bridge.enable_icc": "true",
      "com.docker.network.bridge.enable_ip_masquerade": "true",
      "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
      "com.docker.network.bridge.name": "ctnet0",
      "com.docker.network.driver.mtu": "1500",
    });
    // inspecting made nothing
    expect(linkOf(h, "ctnet0")).toBeUndefined();
    h.ok("run", "-d", "--name", "a");
    const after = inspect(h, "bridge");
    expect(after.IPAM.Config).toEqual(before.IPAM.Config);
    expect(after.Options).toEqual(before.Options);
    expect(Object.values(after.Containers).map((c: any) => c.IPv4Address)).toEqual(["172.17.0.2/16"]);
  });

  it("daemon.json's bip, fixed-cidr, mtu, icc and ip set up the default bridge; default-address-pools the user networks", async () => {
    // docs.docker.com/reference/cli/dockerd/#daemon-configuration-file: "bip", "fixed-cidr", "mtu", "icc", "ip", "default-address-pools"
    const h = await newHost();
    const d = withDaemonJson(h, {
      bip: "10.99.0.1/24", "fixed-cidr": "10.99.0.128/25", mtu: 1400, icc: false, ip: "127.0.0.1",
      "default-address-pools": [{ base: "10.100.0.0/16", size: 24 }], "storage-driver": "overlay2",
    });
    expect(inspect(d, "bridge").IPAM.Config).toEqual([{ Subnet: "10.99.0.0/24", IPRange: "10.99.0.128/25", Gateway: "10.99.0.1" }]);
    d.ok("run", "-d", "--name", "a", "-p", "8080:80", "--", "socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hello");
    d.ok("run", "-d", "--name", "b");
    expect(h.sh(["ip", "-o", "-4", "addr", "show", "dev", "ctnet0"]).stdout).toContain("10.99.0.1/24");
    expect(linkOf(h, "ctnet0").mtu).toBe(1400);
    // the whole /24 is the subnet; addresses come from fixed-cidr
    expect(h.inNs("a", "ip", "-4", "-o", "addr", "show", "eth0").stdout).toContain("10.99.0.128/24");
    expect(h.inNs("a", "cat", "/sys/class/net/eth0/mtu").stdout.trim()).toBe("1400");
    expect(h.ping("b", "a")).toBe(false);
    expect(h.ping("b", "10.99.0.1")).toBe(true);
    expect(d.ok("port", "a")).toBe("80/tcp -> 127.0.0.1:8080\n");
    expect(d.ctnet("doctor").code).toBe(0);
    expect(inspect(d, "bridge").Options).toMatchObject({ "com.docker.network.bridge.enable_icc": "false", "com.docker.network.driver.mtu": "1400", "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1" });
    d.ok("net", "create", "red");
    expect(inspect(d, "red").IPAM.Config).toEqual([{ Subnet: "10.100.0.0/24", Gateway: "10.100.0.1" }]);
  });

  it("daemon.json ip-forward: false leaves forwarding off; an invalid file is one line naming it and the key", async () => {
    const h = await newHost();
    const d = withDaemonJson(h, { "ip-forward": false });
    d.ok("net", "create", "--subnet", "10.39.0.0/24", "red");
    expect(h.sh(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe("0");
    const bad = withDaemonJson(h, { bip: "10.99.0.0/24" });
    const kernel = h.kernel();
    const r = bad.ctnet("run", "-d", "--name", "a");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ctnet: \S+daemon-\w+\.json: bip: address 10\.99\.0\.0 is not a usable host address of 10\.99\.0\.0\/24\n$/);
    expect(h.kernel()).toEqual(kernel);
    // read only by the commands that need it: the others work whatever the file holds
    for (const args of [["ps", "-a"], ["net", "ls"], ["net", "inspect", "red"], ["run", "-d", "--net", "red", "--name", "u"], ["inspect", "u"]]) {
      const ok = bad.ctnet(...args);
      expect([args.join(" "), ok.code, ok.stderr]).toEqual([args.join(" "), 0, ""]);
    }
  });
});
