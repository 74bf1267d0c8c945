// Address policy: which subnet a new network gets, which address a container gets, what is refused.
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import {
  addrText, addrValue, allocateAddress, checkHostAddress, checkUsableSubnet, chooseSubnet, macFor, parseAddress, parseCidr, type Pool,
} from "../../src/ipam.js";

const pool = (subnet: string, gateway: string, range = subnet): Pool => ({
  subnet: parseCidr(subnet), gateway: addrValue(gateway), range: parseCidr(range),
});
const taken = (...ips: string[]) => new Set(ips);
const alloc = (p: Pool, used: Set<string>) => {
  const a = allocateAddress(p, used);
  return a === null ? null : addrText(a);
};

describe("subnet choice", () => {
  it("user networks take 172.18.0.0/16, 172.19.0.0/16, … in order", () => {
    expect(chooseSubnet([], true).text).toBe("172.18.0.0/16");
    expect(chooseSubnet([parseCidr("172.18.0.0/16")], true).text).toBe("172.19.0.0/16");
    expect(chooseSubnet([parseCidr("172.18.0.0/16"), parseCidr("172.19.0.0/16")], true).text).toBe("172.20.0.0/16");
  });

  it("the default bridge prefers 172.17.0.0/16, like docker0", () => {
    expect(chooseSubnet([], false).text).toBe("172.17.0.0/16");
    expect(chooseSubnet([parseCidr("172.17.0.0/16")], false).text).toBe("172.18.0.0/16");
  });

  it("skips any candidate overlapping something in use, however small or large", () => {
    // a single /24 route inside 172.18 rules out the whole /16
    expect(chooseSubnet([parseCidr("172.18.200.0/24")], true).text).toBe("172.19.0.0/16");
    // a host address's network covering several candidates
    expect(chooseSubnet([parseCidr("172.16.0.0/13")], true).text).toBe("172.24.0.0/16");
    // all of 172.16/12 taken: Docker's next pool, 192.168.0.0/16 in /20s
    expect(chooseSubnet([parseCidr("172.16.0.0/12")], true).text).toBe("192.168.0.0/20");
    expect(chooseSubnet([parseCidr("172.16.0.0/12"), parseCidr("192.168.0.0/24")], true).text).toBe("192.168.16.0/20");
  });

  it("says so when every pool is used", () => {
    expect(() => chooseSubnet([parseCidr("172.16.0.0/12"), parseCidr("192.168.0.0/16")], true)).toThrow(/no free subnet left.*--subnet/);
  });
});

describe("address allocation", () => {
  const p = pool("10.1.0.0/24", "10.1.0.1");

  it("gives the lowest free address after the gateway", () => {
    expect(alloc(p, taken())).toBe("10.1.0.2");
    expect(alloc(p, taken("10.1.0.2", "10.1.0.3"))).toBe("10.1.0.4");
  });

  it("reuses a released address before going higher", () => {
    expect(alloc(p, taken("10.1.0.2", "10.1.0.4", "10.1.0.5"))).toBe("10.1.0.3");
  });

  it("never hands out the gateway, wherever it is", () => {
    expect(alloc(pool("10.1.0.0/24", "10.1.0.2"), taken())).toBe("10.1.0.1");
    expect(alloc(pool("10.1.0.0/24", "10.1.0.2"), taken("10.1.0.1"))).toBe("10.1.0.3");
  });

  it("stays inside --ip-range and skips the subnet's network address", () => {
    expect(alloc(pool("10.1.0.0/24", "10.1.0.254", "10.1.0.128/28"), taken())).toBe("10.1.0.128");
    expect(alloc(pool("10.1.0.0/24", "10.1.0.1", "10.1.0.0/28"), taken())).toBe("10.1.0.2");
  });

  it("never hands out the broadcast address, and returns null when full", () => {
    const small = pool("10.1.0.0/30", "10.1.0.1");
    expect(alloc(small, taken())).toBe("10.1.0.2");
    expect(alloc(small, taken("10.1.0.2"))).toBeNull();
    const range = pool("10.1.0.0/24", "10.1.0.1", "10.1.0.240/28");
    const all = [...Array(15).keys()].map((i) => `10.1.0.${240 + i}`);
    expect(alloc(range, taken(...all))).toBeNull();
  });
});

describe("parsing and validation", () => {
  it("parses CIDRs into canonical form", () => {
    expect(parseCidr("10.10.0.0/24")).toMatchObject({ text: "10.10.0.0/24", prefix: 24 });
    expect(addrText(parseCidr("10.10.0.0/24").last)).toBe("10.10.0.255");
  });

  it.each(["10.10.0/24", "10.10.0.0", "10.10.0.0/33", "10.10.0.256/24", "abc", "10.10.0.0/24 ", "-1.0.0.0/8", ""])("refuses the malformed CIDR %j", (text) => {
    expect(() => parseCidr(text)).toThrow(UsageError);
    expect(() => parseCidr(text)).toThrow(`invalid subnet ${JSON.stringify(text)}: expected a CIDR like 10.10.0.0/24`);
  });

  it("refuses host bits and suggests the network", () => {
    expect(() => parseCidr("10.10.0.5/24")).toThrow("invalid subnet 10.10.0.5/24: host bits are set (did you mean 10.10.0.0/24?)");
    expect(() => parseCidr("10.10.0.5/24", "ip-range")).toThrow(/^invalid ip-range/);
  });

  it.each([
    ["127.1.0.0/16", "loopback"],
    ["224.0.0.0/24", "multicast"],
    ["239.1.0.0/16", "multicast"],
    ["0.0.0.0/8", "'this network'"],
    ["0.0.0.0/0", "'this network'"],
    ["169.254.0.0/16", "link-local"],
    ["240.0.0.0/8", "class E"],
  ])("refuses the reserved range %s (%s)", (subnet, label) => {
    expect(() => checkUsableSubnet(parseCidr(subnet))).toThrow(UsageError);
    expect(() => checkUsableSubnet(parseCidr(subnet))).toThrow(label);
  });

  it("refuses subnets too small for a gateway and a container", () => {
    expect(() => checkUsableSubnet(parseCidr("10.0.0.0/31"))).toThrow(/too small/);
    expect(() => checkUsableSubnet(parseCidr("10.0.0.0/30"))).not.toThrow();
  });

  it("accepts only usable host addresses as gateway", () => {
    const s = parseCidr("10.2.0.0/24");
    const check = (ip: string) => () => checkHostAddress(s, addrValue(ip), "gateway", ip);
    expect(check("10.2.0.1")).not.toThrow();
    expect(check("10.2.0.254")).not.toThrow();
    expect(check("10.2.0.0")).toThrow("gateway 10.2.0.0 is not a usable host address of 10.2.0.0/24");
    expect(check("10.2.0.255")).toThrow("gateway 10.2.0.255 is not a usable host address of 10.2.0.0/24");
    expect(check("10.3.0.1")).toThrow("gateway 10.3.0.1 is not a usable host address of 10.2.0.0/24");
  });

  it.each(["10.2.0", "10.2.0.1/24", "10.2.0.300", "x", " 10.2.0.1"])("refuses the address %j", (text) => {
    expect(() => parseAddress(text, "gateway")).toThrow(`invalid gateway ${JSON.stringify(text)}: not an IPv4 address`);
  });

  it("converts dotted quads and values both ways, above 2^31 too", () => {
    for (const text of ["0.0.0.0", "10.236.19.238", "172.18.0.2", "192.168.255.254", "255.255.255.255"]) {
      expect(addrText(addrValue(text))).toBe(text);
      expect(addrValue(text)).toBe(Number(parseAddress(text, "address").bigInt()));
    }
    expect(addrText(parseAddress("203.0.113.9", "address").bigInt())).toBe("203.0.113.9");
  });

  it("derives Docker's MAC from the address", () => {
    expect(macFor(addrValue("172.18.0.2"))).toBe("02:42:ac:12:00:02");
    expect(macFor(addrValue("10.211.0.255"))).toBe("02:42:0a:d3:00:ff");
    expect(macFor(addrValue("192.168.255.254"))).toBe("02:42:c0:a8:ff:fe");
  });
});
