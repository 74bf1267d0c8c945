// Interface names must fit the kernel's 15 characters, stay readable and never collide.
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { IFNAMSIZ, bridgeIfname, hostVethIfname, validateName } from "../../src/naming.js";

describe("bridge names", () => {
  it("short user networks keep their whole name; the default network is ctnet0", () => {
    expect(bridgeIfname("red")).toBe("ctbr-red");
    expect(bridgeIfname("blue_2.x")).toBe("ctbr-blue_2.x");
    expect(bridgeIfname("bridge")).toBe("ctnet0");
  });

  it("long names are cut to 15 characters, keep a readable prefix and a hash that tells them apart", () => {
    const a = bridgeIfname("frontend-network-a");
    const b = bridgeIfname("frontend-network-b");
    for (const name of [a, b]) {
      expect(name.length).toBeLessThanOrEqual(IFNAMSIZ);
      expect(name).toMatch(/^ctbr-front-[0-9a-f]{4}$/);
    }
    expect(a).not.toBe(b);
    // stable: the same network always maps to the same bridge
    expect(bridgeIfname("frontend-network-a")).toBe(a);
  });

  it("a name of exactly 10 characters fits without a hash", () => {
    expect(bridgeIfname("abcdefghij")).toBe("ctbr-abcdefghij");
    expect(bridgeIfname("abcdefghijk")).toMatch(/^ctbr-abcde-[0-9a-f]{4}$/);
  });
});

describe("veth names", () => {
  it("say which container and network a host-side veth belongs to", () => {
    expect(hostVethIfname("ubuntu1", "red")).toBe("ve-ubuntu1.red");
  });

  it("stay within 15 characters and unique for long or similar names", () => {
    const names = new Set<string>();
    const containers = ["ubuntu1", "ubuntu2", "a-really-long-container-name", "a-really-long-container-nam3"];
    const networks = ["red", "blue", "a-long-network-name"];
    for (const c of containers) {
      for (const n of networks) {
        const ifname = hostVethIfname(c, n);
        expect(ifname.length, ifname).toBeLessThanOrEqual(IFNAMSIZ);
        expect(ifname).toMatch(/^ve-[A-Za-z0-9_.-]+$/);
        names.add(ifname);
      }
    }
    expect(names.size).toBe(containers.length * networks.length);
    // cut: the container part stays readable; the bridge it hangs off names the network
    expect(hostVethIfname("ubuntu1", "a-long-network-name")).toMatch(/^ve-ubuntu1-[0-9a-f]{4}$/);
  });
});

describe("name validation", () => {
  it.each(["a", "ubuntu1", "A.b_c-d", "0abc", "x".repeat(64)])("accepts %s", (name) => {
    expect(() => validateName("container", name)).not.toThrow();
  });

  it.each(["", "-x", ".x", "_x", "a b", "a/b", "a!", "ü", "x".repeat(65), "a\nb"])("refuses %j with the rule in the message", (name) => {
    expect(() => validateName("network", name)).toThrow(UsageError);
    expect(() => validateName("network", name)).toThrow(`invalid network name ${JSON.stringify(name)}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}`);
  });
});
