// The names service's pure parts: the files it writes and the flags it reads (src/dns/names.ts).
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { hostsFileFor, parseAddHosts, parseDnsServers, parseResolvConf } from "../../src/dns/names.js";
import { dnsEntries } from "../../src/dns/aardvark.js";
import { emptyState, type ContainerRecord } from "../../src/model.js";

const container = (over: Partial<ContainerRecord> = {}): ContainerRecord => ({
  name: "web", id: "0123456789abcdef".repeat(4), created: "", hostname: "web", mode: "bridge", netns: "web",
  endpoints: [{ network: "red", id: "e", ifname: "eth0", hostIf: "ve-web.red", ip: "172.18.0.2", prefixLen: 16, mac: "02:42:ac:12:00:02", aliases: ["Front"] }],
  command: [], env: {}, pid: 1, pidStart: null, ports: [], expose: [], ...over,
});

describe("the DNS server's line of a container", () => {
  it("is aardvark-dns's: id, IPv4, no IPv6, names (lower case), then its --dns servers", () => {
    expect(dnsEntries(container(), "red")).toBe(`${"0123456789abcdef".repeat(4)} 172.18.0.2  web,front,0123456789ab,web.red`);
    expect(dnsEntries(container({ dns: { servers: ["9.9.9.9", "1.1.1.1"] } }), "red")).toMatch(/,web\.red 9\.9\.9\.9,1\.1\.1\.1$/);
    expect(dnsEntries(container(), "blue")).toBeNull();
  });
});

describe("a container's /etc/hosts", () => {
  it("holds Docker's lines: localhost, --add-host, --link, its own address under its hostname and name", () => {
    const text = hostsFileFor(emptyState(), container({ hostname: "box", extraHosts: [{ name: "db.local", ip: "10.0.0.7" }], links: [{ name: "mysql", alias: "db", ip: "172.17.0.3" }] }));
    expect(text.split("\n")).toEqual([
      "# ctnet: /etc/hosts of container web",
      "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters",
      "10.0.0.7\tdb.local", "172.17.0.3\tdb mysql", "172.18.0.2\tbox web", "",
    ]);
  });
});

describe("flags", () => {
  it("--add-host NAME:IP, NAME=IP, an IPv6 address, host-gateway", () => {
    expect(parseAddHosts(["a:10.0.0.1", "b=10.0.0.2", "c:::1", "d:[fd00::2]", "e:host-gateway"], "172.18.0.1")).toEqual([
      { name: "a", ip: "10.0.0.1" }, { name: "b", ip: "10.0.0.2" }, { name: "c", ip: "::1" }, { name: "d", ip: "fd00::2" }, { name: "e", ip: "172.18.0.1" },
    ]);
  });

  it.each([
    [["nocolon"], null, 'invalid --add-host "nocolon": expected NAME:IP with a host name'],
    [["a:notanip"], null, 'invalid --add-host "a:notanip": "notanip" is not an IP address'],
    [["a:host-gateway"], null, "--add-host a:host-gateway: host-gateway needs a bridge network (the host's address on it)"],
  ])("refuses %j", (values, gateway, message) => {
    expect(() => parseAddHosts(values, gateway)).toThrow(new UsageError(message));
  });

  it("--dns takes IP addresses only", () => {
    expect(parseDnsServers(["1.1.1.1", "2606:4700::1111"])).toEqual(["1.1.1.1", "2606:4700::1111"]);
    expect(() => parseDnsServers(["dns.google"])).toThrow(new UsageError('invalid --dns "dns.google": not an IP address'));
    // colons alone are no IPv6 address (Docker's net.ParseIP refuses them too)
    expect(() => parseDnsServers([":::"])).toThrow(new UsageError('invalid --dns ":::": not an IP address'));
  });

  it("resolv.conf as the host has it: servers, search, options; comments ignored", () => {
    expect(parseResolvConf("# x\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nsearch a.test b.test\noptions edns0 trust-ad\n")).toEqual({
      nameservers: ["127.0.0.53", "fe80::1"], search: ["a.test", "b.test"], options: ["edns0", "trust-ad"],
    });
  });
});
