// The filter-table walk behind `ctnet trace`, on iptables-save text: jumps, RETURN, negation, conntrack
// state, policies, and rules with matches it cannot judge; and when trace reads the cluster's store.
import { describe, expect, it } from "vitest";
import { emptyState } from "../../src/model.js";
import { crossesHosts } from "../../src/commands/trace.js";
import { parseRuleset } from "../../src/firewall/iptables.js";
import { walkForward, type Packet } from "../../src/firewall/walk.js";

const SAVE = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:DOCKER-USER - [0:0]
:CTNET-FORWARD - [0:0]
:CTNET-ISOLATION - [0:0]
:CTNET-ISOLATION-2 - [0:0]
:CTNET-PORTS - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j CTNET-FORWARD
-A DOCKER-USER -j RETURN
-A CTNET-FORWARD -j CTNET-ISOLATION
-A CTNET-FORWARD -o ctbr-red -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A CTNET-FORWARD -o ctbr-red -j CTNET-PORTS
-A CTNET-FORWARD -i ctbr-red ! -o ctbr-red -j ACCEPT
-A CTNET-FORWARD -i ctbr-red -o ctbr-red -j ACCEPT
-A CTNET-FORWARD -i ctbr-blue -o ctbr-blue -j DROP
-A CTNET-ISOLATION -i ctbr-blue ! -o ctbr-blue -j CTNET-ISOLATION-2
-A CTNET-ISOLATION -i ctbr-red ! -o ctbr-red -j CTNET-ISOLATION-2
-A CTNET-ISOLATION-2 -o ctbr-red -m conntrack --ctstate DNAT -j RETURN
-A CTNET-ISOLATION-2 -o ctbr-red -j DROP
-A CTNET-PORTS -d 172.18.0.2/32 -o ctbr-red -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT
-A CTNET-PORTS -m comment --comment "odd one" -m physdev --physdev-is-bridged -j ACCEPT
COMMIT
`;

const packet = (p: Partial<Packet>): Packet => ({ in: "ctbr-blue", out: "ctbr-red", src: "172.19.0.3", dst: "172.18.0.2", proto: "icmp", dport: null, ctstate: new Set(["NEW"]), ...p });
const table = parseRuleset(SAVE);

describe("walkForward", () => {
  it("names the isolation rule that drops traffic between networks, without the chains that returned", () => {
    const r = walkForward(table, packet({}));
    expect(r.verdict).toBe("DROP");
    expect(r.path).toEqual([
      "-A FORWARD -j CTNET-FORWARD",
      "-A CTNET-FORWARD -j CTNET-ISOLATION",
      "-A CTNET-ISOLATION -i ctbr-blue ! -o ctbr-blue -j CTNET-ISOLATION-2",
      "-A CTNET-ISOLATION-2 -o ctbr-red -j DROP",
    ]);
  });

  it("lets DNATed traffic to a published port through CTNET-PORTS", () => {
    const r = walkForward(table, packet({ proto: "tcp", dport: 80, ctstate: new Set(["NEW", "DNAT"]) }));
    expect(r.verdict).toBe("ACCEPT");
    expect(r.path.at(-1)).toBe("-A CTNET-PORTS -d 172.18.0.2/32 -o ctbr-red -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT");
  });

  it("within a bridge: accept on red, icc=false drop on blue", () => {
    expect(walkForward(table, packet({ in: "ctbr-red", src: "172.18.0.3" })).verdict).toBe("ACCEPT");
    expect(walkForward(table, packet({ out: "ctbr-blue", dst: "172.19.0.2" })).path.at(-1)).toBe("-A CTNET-FORWARD -i ctbr-blue -o ctbr-blue -j DROP");
  });

  it("falls back to the chain policy, and passes over rules it cannot evaluate", () => {
    const r = walkForward(table, packet({ in: "eth9", out: "ctbr-red", proto: "tcp", dport: 22, ctstate: new Set(["NEW", "DNAT"]) }));
    expect(r.verdict).toBe("DROP");
    expect(r.path.at(-1)).toMatch(/^:FORWARD DROP \(the chain's policy/);
    expect(r.skipped).toEqual(['-A CTNET-PORTS -m comment --comment "odd one" -m physdev --physdev-is-bridged -j ACCEPT']);
  });
});

describe("crossesHosts: when trace reads the cluster's store", () => {
  const state = () => {
    const s = emptyState();
    s.networks.ov = { name: "ov", driver: "overlay", vni: 4096 } as any;
    s.networks.red = { name: "red", driver: "bridge" } as any;
    s.containers.a = { name: "a", id: "a".repeat(64), mode: "bridge", endpoints: [{ network: "ov", ip: "10.200.0.2" }] } as any;
    s.containers.r = { name: "r", id: "b".repeat(64), mode: "bridge", endpoints: [{ network: "red", ip: "172.18.0.2" }] } as any;
    s.cluster = { store: "etcd://10.77.0.101:2379", host: "h1", advertise: "10.77.0.1", ttl: 15, lease: "1", joined: "" };
    return s;
  };

  it("on a joined host, from a container on an overlay network to no container of this host", () => {
    expect(crossesHosts(state(), "a", "b")).toBe(true);
    expect(crossesHosts(state(), "a", "10.200.0.3")).toBe(true);
  });

  it("not to a container of this host, not from a container on no overlay network, not on a host that has not joined", () => {
    expect(crossesHosts(state(), "a", "r")).toBe(false);
    expect(crossesHosts(state(), "a", "172.18.0.2")).toBe(false);
    expect(crossesHosts(state(), "r", "b")).toBe(false);
    const alone = state();
    delete alone.cluster;
    expect(crossesHosts(alone, "a", "b")).toBe(false);
  });
});
