// Port specs, host-port allocation and the rule layer, without the kernel: -p/--expose parsing with its
// refusals, conflicts against a given picture of the host, and which rules a state implies.
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { emptyState, type ContainerRecord, type State } from "../../src/model.js";
import { Plan, type CmdStep } from "../../src/plan/plan.js";
import {
  MAX_PUBLISHED_PORTS, formatPorts, parseExposeSpec, parsePublishSpec, planPublish, planUnpublish, portLayer, portLines, resolveMappings, retirePorts,
  type HostPorts,
} from "../../src/firewall/ports.js";

const refused = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).not.toContain("\n");
    return (err as Error).message;
  }
  throw new Error("expected a UsageError");
};

describe("parsePublishSpec", () => {
  it.each([
    ["80", { hostIp: "", hostPorts: null, containerPorts: [80, 80], proto: "tcp" }],
    ["8080:80", { hostIp: "", hostPorts: [8080, 8080], containerPorts: [80, 80], proto: "tcp" }],
    ["8080:80/udp", { hostIp: "", hostPorts: [8080, 8080], containerPorts: [80, 80], proto: "udp" }],
    ["127.0.0.1:8080:80/tcp", { hostIp: "127.0.0.1", hostPorts: [8080, 8080], containerPorts: [80, 80], proto: "tcp" }],
    ["127.0.0.1::80", { hostIp: "127.0.0.1", hostPorts: null, containerPorts: [80, 80], proto: "tcp" }],
    ["8000-8002:80-82", { hostIp: "", hostPorts: [8000, 8002], containerPorts: [80, 82], proto: "tcp" }],
    ["80-82/UDP", { hostIp: "", hostPorts: null, containerPorts: [80, 82], proto: "udp" }],
    ["1:65535", { hostIp: "", hostPorts: [1, 1], containerPorts: [65535, 65535], proto: "tcp" }],
  ])("%s", (spec, want) => {
    expect(parsePublishSpec(spec)).toEqual({ text: spec, ...want });
  });

  it.each([
    ["0:80", 'invalid port 0 in "0:80": ports are 1-65535'],
    ["8080:0", 'invalid port 0 in "8080:0": ports are 1-65535'],
    ["70000:80", 'invalid port 70000 in "70000:80": ports are 1-65535'],
    ["8080:65536", 'invalid port 65536 in "8080:65536": ports are 1-65535'],
    ["8002-8000:80-82", 'invalid port range 8002-8000 in "8002-8000:80-82": 8002 is above 8000'],
    ["8000-8002:80-81", 'host ports 8000-8002 and container ports 80-81 in "8000-8002:80-81" differ in number (3 and 2)'],
    ["8000:80-81", 'host ports 8000 and container ports 80-81 in "8000:80-81" differ in number (1 and 2)'],
    ["80/sctp", 'unknown protocol "sctp" in "80/sctp": ctnet publishes tcp and udp'],
    ["80/", 'unknown protocol "" in "80/": ctnet publishes tcp and udp'],
    ["http", 'invalid port "http" in "http": expected PORT or START-END'],
    ["", 'invalid port "" in "": expected PORT or START-END'],
    ["1.2.3:80:80", 'invalid host address "1.2.3" in "1.2.3:80:80": not an IPv4 address'],
    ["[::1]:80:80", 'invalid port spec "[::1]:80:80": ctnet publishes on IPv4 addresses only'],
    ["a:b:c:d", 'invalid port spec "a:b:c:d": expected [HOSTIP:][HOSTPORT:]PORT[/tcp|/udp]'],
  ])("refuses %j", (spec, message) => {
    expect(refused(() => parsePublishSpec(spec))).toBe(message);
  });
});

describe("the limit on published ports", () => {
  it("takes a range of MAX_PUBLISHED_PORTS and refuses a longer one, naming the limit", () => {
    expect(MAX_PUBLISHED_PORTS).toBe(1024);
    expect(parsePublishSpec("10000-11023:10000-11023/udp").containerPorts).toEqual([10000, 11023]);
    expect(refused(() => parsePublishSpec("1-65535:1-65535"))).toBe(
      'port range 1-65535 in "1-65535:1-65535" has 65535 ports: a container publishes at most 1024 ports (docs/ports.md, "Limits")',
    );
    expect(refused(() => parsePublishSpec("127.0.0.1::2000-3024"))).toBe(
      'port range 2000-3024 in "127.0.0.1::2000-3024" has 1025 ports: a container publishes at most 1024 ports (docs/ports.md, "Limits")',
    );
  });

  it("counts what a container publishes already, and leaves unpublish of any range alone", () => {
    const s = stateWith([{ hostIp: "0.0.0.0", hostPort: 8080, containerPort: 80, proto: "tcp" }]);
    expect(refused(() => planPublish(s, s.containers.web, ["20000-20999:1000-1999", "30000-30023:3000-3023"]))).toBe(
      'container web would publish 1025 ports: a container publishes at most 1024 ports (docs/ports.md, "Limits")',
    );
    expect(s.containers.web.ports).toHaveLength(1);
    const plan = planUnpublish(s, s.containers.web, ["1-65535"]);
    expect(s.containers.web.ports).toEqual([]);
    expect(plan.steps.some((st) => st.kind === "cmd" && st.argv.join(" ").includes("-D CTNET-DNAT"))).toBe(true);
  });
});

describe("parseExposeSpec", () => {
  it("expands ranges and keeps the protocol", () => {
    expect(parseExposeSpec("80-81/udp")).toEqual([{ containerPort: 80, proto: "udp" }, { containerPort: 81, proto: "udp" }]);
    expect(parseExposeSpec("443")).toEqual([{ containerPort: 443, proto: "tcp" }]);
    expect(refused(() => parseExposeSpec("0"))).toBe('invalid port 0 in "0": ports are 1-65535');
  });
});

const host = (over: Partial<HostPorts> = {}): HostPorts => ({
  held: [], addresses: new Set(["127.0.0.1", "192.0.2.2"]), ephemeral: [40000, 40005], ...over,
});

describe("resolveMappings", () => {
  it("maps ranges port by port and defaults to every address", () => {
    expect(resolveMappings([parsePublishSpec("8000-8001:80-81/udp")], host(), "web")).toEqual([
      { hostIp: "0.0.0.0", hostPort: 8000, containerPort: 80, proto: "udp" },
      { hostIp: "0.0.0.0", hostPort: 8001, containerPort: 81, proto: "udp" },
    ]);
  });

  it("allocates the first free ephemeral ports, skipping held ones and its own", () => {
    const h = host({ held: [{ hostIp: "0.0.0.0", hostPort: 40000, proto: "tcp", why: "x" }, { hostIp: "127.0.0.1", hostPort: 40001, proto: "tcp", why: "x" }] });
    const got = resolveMappings([parsePublishSpec("80"), parsePublishSpec("81"), parsePublishSpec("80/udp")], h, "web");
    expect(got.map((m) => `${m.hostPort}/${m.proto}`)).toEqual(["40002/tcp", "40003/tcp", "40000/udp"]);
  });

  it("refuses taken host ports, naming the holder", () => {
    const h = () => host({ held: [
      { hostIp: "0.0.0.0", hostPort: 8080, proto: "tcp", why: "already published by container web1 (0.0.0.0:8080->80/tcp)" },
      { hostIp: "127.0.0.1", hostPort: 9090, proto: "udp", why: 'in use on the host: "dnsd" (pid 7) is listening on 127.0.0.1:9090/udp' },
    ] });
    expect(refused(() => resolveMappings([parsePublishSpec("127.0.0.1:8080:80")], h(), "web2"))).toBe(
      'host port 127.0.0.1:8080/tcp in "127.0.0.1:8080:80" is already published by container web1 (0.0.0.0:8080->80/tcp)',
    );
    expect(refused(() => resolveMappings([parsePublishSpec("9090:53/udp")], h(), "web2"))).toBe(
      'host port 0.0.0.0:9090/udp in "9090:53/udp" is in use on the host: "dnsd" (pid 7) is listening on 127.0.0.1:9090/udp',
    );
    // a different address, or the other protocol, does not clash
    expect(resolveMappings([parsePublishSpec("192.0.2.2:9090:53/udp"), parsePublishSpec("8080:80/udp")], h(), "web2")).toHaveLength(2);
  });

  it("refuses specs that clash with each other, and addresses not on this host", () => {
    expect(refused(() => resolveMappings([parsePublishSpec("8080:80"), parsePublishSpec("8080:81")], host(), "web"))).toBe(
      'host port 0.0.0.0:8080/tcp in "8080:81" is already published by container web (0.0.0.0:8080->80/tcp)',
    );
    expect(refused(() => resolveMappings([parsePublishSpec("10.9.9.9:8080:80")], host(), "web"))).toBe(
      'host address 10.9.9.9 in "10.9.9.9:8080:80" is not an address of this host',
    );
  });

  it("resolves a whole range of free ports past many holders, each port once", () => {
    const held = Array.from({ length: 500 }, (_, i) => ({ hostIp: i % 2 ? "127.0.0.1" : "0.0.0.0", hostPort: 40000 + 2 * i, proto: "tcp" as const, why: "x" }));
    const h = host({ ephemeral: [40000, 49999], held });
    const got = resolveMappings([parsePublishSpec("1000-1999"), parsePublishSpec("192.0.2.2::1-10")], h, "web");
    const ports = got.map((m) => m.hostPort);
    expect(new Set(ports).size).toBe(1010);
    // every even port of 40000-40998 is held (on 0.0.0.0 or on 127.0.0.1, which clashes with 0.0.0.0)
    expect(ports.slice(0, 3)).toEqual([40001, 40003, 40005]);
    expect(ports.slice(0, 1000).filter((p) => p < 41000 && p % 2 === 0)).toEqual([]);
    // 192.0.2.2 clashes with the 0.0.0.0 holders and with this spec's own 0.0.0.0 ports, not with 127.0.0.1's
    expect(ports.slice(1000)).toEqual([40002, 40006, 40010, 40014, 40018, 40022, 40026, 40030, 40034, 40038]);
  });

  it("says when the ephemeral range is exhausted", () => {
    const h = host({ ephemeral: [40000, 40000], held: [{ hostIp: "0.0.0.0", hostPort: 40000, proto: "tcp", why: "x" }] });
    expect(refused(() => resolveMappings([parsePublishSpec("80")], h, "web"))).toBe(
      "no free host port left for tcp in 40000-40000 (/proc/sys/net/ipv4/ip_local_port_range)",
    );
  });
});

function stateWith(ports: ContainerRecord["ports"], expose: ContainerRecord["expose"] = []): State {
  const s = emptyState();
  for (const [name, subnet, internal] of [["red", "10.9.0.0/24", false], ["lock", "10.8.0.0/24", true]] as const) {
    s.networks[name] = {
      name, id: name, created: "", driver: "bridge", bridge: `ctbr-${name}`, subnet, gateway: subnet.replace(/0\/24$/, "1"),
      internal, options: {}, labels: {},
    };
  }
  s.containers.web = {
    name: "web", id: "w".repeat(64), created: "", hostname: "web", mode: "bridge", netns: "web",
    endpoints: [
      { network: "lock", id: "e", ifname: "eth0", hostIf: "ve-web.lock", ip: "10.8.0.2", prefixLen: 24, mac: "", aliases: [] },
      { network: "red", id: "e", ifname: "eth1", hostIf: "ve-web.red", ip: "10.9.0.2", prefixLen: 24, mac: "", aliases: [] },
    ],
    command: [], env: {}, pid: null, pidStart: null, ports, expose,
  };
  return s;
}

const ruleText = (r: { table: string; chain: string; spec: string[] }) => `${r.table} ${r.chain} ${r.spec.join(" ")}`;

describe("portLayer", () => {
  it("publishes on the first non-internal network, with ACCEPT, hairpin and DNAT per mapping", () => {
    const layer = portLayer(stateWith([{ hostIp: "192.0.2.2", hostPort: 8080, containerPort: 80, proto: "tcp" }]));
    expect([...layer.rules.values()].map(ruleText)).toEqual([
      "filter CTNET-PORTS -d 10.9.0.2/32 -o ctbr-red -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT",
      "nat CTNET-POSTROUTING -s 10.9.0.0/24 -d 10.9.0.2/32 -o ctbr-red -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j MASQUERADE",
      "nat CTNET-DNAT -d 192.0.2.2/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.9.0.2:80",
    ]);
    expect(layer.localnet.size).toBe(0);
  });

  it("adds the loopback rules once per bridge when a port answers on 127.0.0.1, and shares rules between mappings", () => {
    const layer = portLayer(stateWith([
      { hostIp: "0.0.0.0", hostPort: 8080, containerPort: 80, proto: "tcp" },
      { hostIp: "127.0.0.1", hostPort: 8081, containerPort: 80, proto: "tcp" },
    ]));
    expect([...layer.localnet.keys()]).toEqual(["ctbr-red"]);
    const keys = [...layer.rules.values()].map(ruleText);
    expect(keys.filter((k) => k.includes("CTNET-PORTS"))).toHaveLength(1);
    expect(keys.filter((k) => k.includes("CTNET-DNAT"))).toHaveLength(2);
    expect(keys).toContain("nat CTNET-POSTROUTING -s 127.0.0.0/8 -o ctbr-red -j MASQUERADE");
    expect(keys).toContain("filter CTNET-INPUT -i ctbr-red -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP");
  });
});

describe("retirePorts", () => {
  it("removes DNAT first and each chain's rules in the order they were added (iptables-nft deletes from a chain's end in quadratic time)", () => {
    const s = stateWith([1, 2, 3].map((p) => ({ hostIp: "192.0.2.2", hostPort: 8000 + p, containerPort: p, proto: "tcp" as const })));
    const before = portLayer(s);
    s.containers.web.ports = [];
    const plan = new Plan("rm");
    retirePorts(plan, s, before, portLayer(s));
    const removed = (plan.steps as CmdStep[]).filter((st) => st.argv[0] === "iptables").map((st) => `${st.argv[5]} ${/--dport (\d+)/.exec(st.argv.join(" "))![1]}`);
    expect(removed).toEqual([
      "CTNET-DNAT 8001", "CTNET-DNAT 8002", "CTNET-DNAT 8003",
      "CTNET-POSTROUTING 1", "CTNET-POSTROUTING 2", "CTNET-POSTROUTING 3",
      "CTNET-PORTS 1", "CTNET-PORTS 2", "CTNET-PORTS 3",
    ]);
  });
});

describe("views", () => {
  it("folds consecutive mappings into ranges and lists exposed-only ports, like docker ps", () => {
    const s = stateWith(
      [
        ...[80, 81, 82].map((p) => ({ hostIp: "0.0.0.0", hostPort: 8000 + p, containerPort: p, proto: "tcp" as const })),
        { hostIp: "127.0.0.1", hostPort: 5353, containerPort: 53, proto: "udp" as const },
      ],
      [{ containerPort: 443, proto: "tcp" }, { containerPort: 80, proto: "tcp" }],
    );
    expect(formatPorts(s.containers.web)).toBe("0.0.0.0:8080-8082->80-82/tcp, 127.0.0.1:5353->53/udp, 443/tcp");
  });

  it("prints docker port lines, or the addresses of one port", () => {
    const s = stateWith([{ hostIp: "0.0.0.0", hostPort: 8080, containerPort: 80, proto: "tcp" }, { hostIp: "0.0.0.0", hostPort: 5353, containerPort: 53, proto: "udp" }]);
    expect(portLines(s.containers.web)).toEqual(["53/udp -> 0.0.0.0:5353", "80/tcp -> 0.0.0.0:8080"]);
    expect(portLines(s.containers.web, "80")).toEqual(["0.0.0.0:8080"]);
    expect(refused(() => portLines(s.containers.web, "53"))).toBe("no public port '53/tcp' published for web");
  });
});
