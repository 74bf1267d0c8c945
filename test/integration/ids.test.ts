// Ids everywhere and several names each on its own, as Docker does (issue 15), in a private host:
// - every command that takes a container or network name takes its full id or a unique prefix of it
//   (docker rm/stop/exec/logs/port/inspect, docker network rm/inspect/connect, docker run --network);
// - `docker rm -f a nosuch` removes a, says "Error: No such container: nosuch" on stderr and exits 1;
//   `docker inspect a nosuch` prints [a] and exits 1; `docker network rm a nosuch` removes a;
// - `docker network rm $(docker network ls -q)` removes the user networks and refuses the predefined
//   ones ("bridge is a pre-defined network and cannot be removed"), one line each.
import { describe, expect, it } from "vitest";
import { useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();

const lines = (text: string) => text.split("\n").filter(Boolean);

describe("several names, each on its own", () => {
  it("rm -f a nosuch removes a; stop a nosuch stops a; both exit 1 with one stderr line; all refused exits 2, nothing changed", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.251.0.0/24", "red");
    for (const c of ["a", "b", "s"]) h.ok("run", "-d", "--net", "red", "--name", c);

    const stop = h.ctnet("stop", "s", "nosuch");
    expect(stop.code).toBe(1);
    expect(lines(stop.stderr)).toEqual(["ctnet: no such container: nosuch"]);
    expect(lines(stop.stdout)).toEqual(["s"]);
    expect(h.state().containers.s.pid).toBeNull();

    const rm = h.ctnet("rm", "-f", "a", "nosuch");
    expect(rm.code).toBe(1);
    expect(lines(rm.stderr)).toEqual(["ctnet: no such container: nosuch"]);
    expect(lines(rm.stdout)).toEqual(["a"]);
    expect(Object.keys(h.state().containers).sort()).toEqual(["b", "s"]);
    expect(h.sh(["ip", "netns", "list"]).stdout).not.toMatch(/^a\b/m);

    // a refusal other than an unknown name: b runs, so rm without -f refuses it and removes s
    const refused = h.ctnet("rm", "b", "s");
    expect(refused.code).toBe(1);
    expect(lines(refused.stderr)).toEqual(["ctnet: container b is running: stop it first or use rm -f"]);
    expect(Object.keys(h.state().containers)).toEqual(["b"]);

    const before = h.kernel();
    const none = h.ctnet("rm", "-f", "x1", "x2");
    expect(none.code).toBe(2);
    expect(lines(none.stderr)).toEqual(["ctnet: no such container: x1", "ctnet: no such container: x2"]);
    expect(none.stdout).toBe("");
    expect(h.kernel()).toEqual(before);
  });

  it("rm -f of names that all exist is still one plan", async () => {
    const h = await newHost();
    for (const c of ["a", "b", "c"]) h.ok("run", "-d", "--name", c);
    const script = h.ok("rm", "-f", "--dry-run", "a", "b", "c");
    expect(script.match(/^# ctnet plan: /gm)).toEqual(["# ctnet plan: "]);
    // one plan: every process killed first, then the namespaces together (the executor batches them)
    expect(script.match(/^ip netns del\S* \S+/gm)).toEqual(["ip netns del a", "ip netns del b", "ip netns del c"]);
  });

  it("inspect a nosuch prints [a] and exits 1; net inspect, net rm likewise", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.251.1.0/24", "red");
    h.ok("net", "create", "--subnet", "10.251.2.0/24", "blue");
    h.ok("run", "-d", "--net", "red", "--name", "a");

    const inspect = h.ctnet("inspect", "a", "nosuch");
    expect(inspect.code).toBe(1);
    expect(JSON.parse(inspect.stdout).map((c: { Name: string }) => c.Name)).toEqual(["/a"]);
    expect(lines(inspect.stderr)).toEqual(["ctnet: no such container: nosuch"]);

    const netInspect = h.ctnet("net", "inspect", "nosuch", "red");
    expect(netInspect.code).toBe(1);
    expect(JSON.parse(netInspect.stdout).map((n: { Name: string }) => n.Name)).toEqual(["red"]);
    expect(lines(netInspect.stderr)).toEqual(["ctnet: network nosuch not found"]);

    const netRm = h.ctnet("net", "rm", "blue", "nosuch");
    expect(netRm.code).toBe(1);
    expect(lines(netRm.stdout)).toEqual(["blue"]);
    expect(lines(netRm.stderr)).toEqual(["ctnet: network nosuch not found"]);
    expect(Object.keys(h.state().networks)).toEqual(["red"]);
    expect(h.sh(["ip", "link", "show", "ctbr-blue"]).code).not.toBe(0);
  });

  it("net rm $(net ls -q) removes the unused user networks and refuses the predefined ones and those in use", async () => {
    const h = await newHost();
    for (const [i, n] of ["red", "blue", "green"].entries()) h.ok("net", "create", "--subnet", `10.251.${10 + i}.0/24`, n);
    h.ok("run", "-d", "--net", "red", "--name", "a");
    h.ok("run", "-d", "--name", "d");
    const ids = lines(h.ok("net", "ls", "-q"));
    expect(ids).toHaveLength(6);
    const r = h.ctnet("net", "rm", ...ids);
    expect(r.code).toBe(1);
    expect(lines(r.stderr).sort()).toEqual([
      "ctnet: network bridge is predefined and cannot be removed",
      "ctnet: network host is predefined and cannot be removed",
      "ctnet: network none is predefined and cannot be removed",
      "ctnet: network red has active endpoints (a)",
    ]);
    expect(lines(r.stdout)).toHaveLength(2);
    expect(Object.keys(h.state().networks).sort()).toEqual(["bridge", "red"]);
  });
});

describe("ids everywhere", () => {
  it("networks and containers by full id and id prefix: net inspect, run --net, net connect, exec, logs, port, rm", async () => {
    const h = await newHost();
    const redId = h.ok("net", "create", "--subnet", "10.251.20.0/24", "red").trim();
    const blueId = h.ok("net", "create", "--subnet", "10.251.21.0/24", "blue").trim();
    expect(JSON.parse(h.ok("net", "inspect", redId.slice(0, 12)))[0].Name).toBe("red");

    const id = h.ok("run", "-d", "--net", redId, "-p", "8080:80", "--name", "a", "sh", "-c", "echo hello; exec sleep infinity").trim();
    expect(h.state().containers.a.endpoints.map((e: { network: string }) => e.network)).toEqual(["red"]);
    h.ok("run", "-d", "--net", blueId.slice(0, 12), "--name", "b");
    expect(h.state().containers.b.endpoints.map((e: { network: string }) => e.network)).toEqual(["blue"]);
    const noneId = lines(h.ok("net", "ls", "-q")).find((i) => JSON.parse(h.ok("net", "inspect", i))[0].Name === "none")!;
    h.ok("run", "-d", "--net", noneId, "--name", "n");
    expect(h.state().containers.n.mode).toBe("none");

    const short = id.slice(0, 12);
    h.ok("net", "connect", blueId.slice(0, 12), short);
    expect(h.state().containers.a.endpoints.map((e: { network: string }) => e.network)).toEqual(["red", "blue"]);
    expect(h.ok("exec", short, "cat", "/etc/hostname").trim()).toBe("a");
    expect(h.ok("logs", id)).toContain("hello");
    expect(h.ok("port", short)).toContain("80/tcp -> 0.0.0.0:8080");
    expect(JSON.parse(h.ok("inspect", short))[0].Id).toBe(id);
    h.ok("net", "disconnect", blueId, id);
    expect(lines(h.ok("rm", "-f", id))).toEqual([id]);
    expect(Object.keys(h.state().containers).sort()).toEqual(["b", "n"]);
  });
});
