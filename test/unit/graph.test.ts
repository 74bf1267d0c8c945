// The network colours of `graph --format svg|png` (src/graphdot.ts): named after the network when it is
// called after a colour, otherwise from a palette, stable from one run to the next, distinct in one picture.
import { describe, expect, it } from "vitest";
import { networkColours, tint } from "../../src/views/graphdot.js";

describe("networkColours", () => {
  it("draws red and blue networks in red and blue, also when the colour is one word of the name", () => {
    const c = networkColours(["red", "blue", "net-Green", "front"]);
    expect(c.get("red")).toBe("#dc2626");
    expect(c.get("blue")).toBe("#2563eb");
    expect(c.get("net-Green")).toBe("#16a34a");
    expect(["#dc2626", "#2563eb"]).not.toContain(c.get("front"));
  });

  it("keeps a network's colour whatever else is drawn, and gives each network of a picture its own", () => {
    const names = ["front", "back", "db", "cache", "my_net", "bridge"];
    const all = networkColours(names);
    expect(new Set(all.values()).size).toBe(names.length);
    expect(networkColours(["my_net"]).get("my_net")).toBe(networkColours(["my_net", "red", "blue"]).get("my_net"));
    expect(networkColours([...names].reverse())).toEqual(all);
  });

  it("tints a colour towards white for fills", () => {
    expect(tint("#000000", 0)).toBe("#ffffff");
    expect(tint("#dc2626", 1)).toBe("#dc2626");
  });
});
