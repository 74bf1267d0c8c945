import { describe, expect, it } from "vitest";
import { strayClaims } from "../../src/cluster/agent.js";
import { emptyState } from "../../src/model.js";
import { peerVteps, type EndpointValue } from "../../src/cluster/claims.js";
import type { KeyValue } from "../../src/cluster/etcd.js";

const NOW = Date.parse("2026-12-01T18:00:00Z");
function claim(container: string, ip: string, extra: Partial<EndpointValue> = {}): [KeyValue, EndpointValue] {
  const ep: EndpointValue = { network: "ov", ip, mac: "02:42:0a:00:00:02", host: "h1", vtep: "10.77.0.1", container, claimed: new Date(NOW - 1000).toISOString(), ...extra };
  return [{ key: `/ctnet/endpoints/ov/${ip}`, value: JSON.stringify(ep), createRevision: 5, modRevision: 6, version: 1, lease: "0" }, ep];
}

describe("the agent's stray claims", () => {
  const state = emptyState();
  state.containers.a = { name: "a", endpoints: [{ network: "ov", ip: "10.0.0.2" }] } as any;

  it("releases a claim whose run finished but whose container is gone (run --rm), not one its container holds", () => {
    const stray = strayClaims([claim("a", "10.0.0.2", { up: true }), claim("b", "10.0.0.3", { up: true })], "h1", state, NOW);
    expect(stray.map((kv) => kv.key)).toEqual(["/ctnet/endpoints/ov/10.0.0.3"]);
  });

  it("leaves a fresh claim whose run may still be saving, and releases it once it is old", () => {
    const fresh = claim("c", "10.0.0.4");
    expect(strayClaims([fresh], "h1", state, NOW)).toEqual([]);
    expect(strayClaims([fresh], "h1", state, NOW + 60_000)).toHaveLength(1);
  });

  it("never touches another host's claims", () => {
    expect(strayClaims([claim("z", "10.0.0.9", { host: "h2", up: true })], "h1", state, NOW)).toEqual([]);
  });
});

describe("the members this host lets send VXLAN (ClusterJoin.peers)", () => {
  it("are the other members' VTEPs, each once, in address order", () => {
    const m = (host: string, vtep: string) => ({ host, vtep, joined: "" });
    expect(peerVteps([m("h10", "10.77.0.10"), m("h1", "10.77.0.1"), m("h9", "10.77.0.9"), m("old", "10.77.0.9")], "10.77.0.1")).toEqual(["10.77.0.9", "10.77.0.10"]);
  });
});
