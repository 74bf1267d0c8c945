// ps, net ls and net prune --filter (issue 15) on real containers and networks, in a private host
// (isolated.ts). The matching rules are checked case by case in test/unit/filters.test.ts; this checks
// the commands end to end: the flags, -q output, refusals (exit 2, nothing changed) and what prune removes.
import { describe, expect, it } from "vitest";
import { useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();
const lines = (text: string) => text.split("\n").filter(Boolean);

describe("--filter on real objects", () => {
  it("ps, net ls and net prune select what Docker's filters select; a bad filter changes nothing", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.77.1.0/24", "--label", "usage=dev", "front");
    h.ok("net", "create", "--subnet", "10.77.2.0/24", "--label", "usage=prod", "back");
    h.ok("net", "create", "--subnet", "10.77.3.0/24", "--label", "usage=prod", "spare");
    h.ok("net", "create", "--subnet", "10.77.4.0/24", "idle");
    h.ok("run", "-d", "--net", "front", "--name", "web1", "-p", "8080:80");
    h.ok("run", "-d", "--net", "back", "--name", "db1", "--expose", "5432");
    h.ok("run", "-d", "--net", "back", "--name", "web2");
    h.ok("stop", "web2");
    const id = (name: string) => h.state().containers[name].id.slice(0, 12);

    // docs container ls: name is a substring, one key twice is either, two keys are both
    expect(lines(h.ok("ps", "-q", "--filter", "name=web"))).toEqual([id("web1")]);
    expect(lines(h.ok("ps", "-aq", "-f", "name=web"))).toEqual([id("web2"), id("web1")]);
    expect(lines(h.ok("ps", "-q", "-f", "status=exited"))).toEqual([id("web2")]);
    expect(lines(h.ok("ps", "-aq", "-f", "network=back", "-f", "name=web"))).toEqual([id("web2")]);
    expect(lines(h.ok("ps", "-q", "-f", "network=back", "-f", "network=front"))).toEqual([id("db1"), id("web1")]);
    expect(lines(h.ok("ps", "-q", "-f", "publish=8080/tcp"))).toEqual([id("web1")]);
    expect(lines(h.ok("ps", "-q", "-f", "expose=5000-6000"))).toEqual([id("db1")]);
    expect(lines(h.ok("ps", "-aq", "-f", "before=web2"))).toEqual([id("db1"), id("web1")]);
    expect(lines(h.ok("ps", "-aq", "-f", `since=${id("web1")}`))).toEqual([id("web2"), id("db1")]);

    // docs network ls: label, dangling, type
    const netIds = (...names: string[]) => names.map((n) => h.state().networks[n].id.slice(0, 12)).sort();
    expect(lines(h.ok("net", "ls", "-q", "-f", "label=usage=prod")).sort()).toEqual(netIds("back", "spare"));
    expect(lines(h.ok("net", "ls", "-q", "-f", "dangling=true")).sort()).toEqual(netIds("idle", "spare"));
    expect(lines(h.ok("net", "ls", "-f", "type=builtin")).slice(1).map((l) => l.split(/\s+/)[1])).toEqual(["bridge", "host", "none"]);

    // refusals: one line, exit 2, and prune removes nothing
    const before = h.stateFiles();
    for (const args of [["ps", "-f", "foo=bar"], ["net", "ls", "-f", "status=running"], ["net", "prune", "--filter", "name=idle"], ["net", "prune", "--filter", "until=soon"]]) {
      const r = h.ctnet(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(lines(r.stderr), args.join(" ")).toHaveLength(1);
    }
    expect(h.ctnet("ps", "-f", "foo=bar").stderr).toMatch(/invalid filter 'foo'/);
    expect(h.stateFiles()).toEqual(before);

    // docs network prune: label!= keeps the labelled ones; a network with containers is never pruned
    expect(lines(h.ok("net", "prune", "--filter", "label!=usage"))).toEqual(["idle"]);
    expect(lines(h.ok("net", "prune", "--filter", "label=usage=prod"))).toEqual(["spare"]);
    expect(h.sh(["ip", "link", "show", "ctbr-spare"]).code).not.toBe(0);
    expect(Object.keys(h.state().networks).sort()).toEqual(["back", "front"]);
  });
});
