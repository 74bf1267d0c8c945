// Issue 15, item 5: a container's life after run, as Docker's commands shape it — create/start, stop -t
// (endpoints released), restart, kill -s, rename, pause/unpause, wait, logs -f/--tail, the `container`
// group. Each case cites the Docker doc or moby test it follows. Every case runs in a private host
// (isolated.ts) and checks the kernel and real traffic, not only what ctnet prints.
import { describe, expect, it } from "vitest";
import { useIsolatedHosts, type IsolatedHost } from "./isolated.js";

const newHost = useIsolatedHosts();

/**
 * The address ctnet's DNS server gives FROM for NAME ("" when none), asked inside FROM (docs/dns.md): a
 * single-label name it does not know is NXDOMAIN at once. Asked after 0.1 s, the few ms the server takes
 * to read its files again after the command.
 */
const resolve = (h: IsolatedHost, from: string, name: string) => {
  h.sh(["sleep", "0.1"]);
  return h.ok("exec", from, "dig", "+short", "+tries=3", "+time=1", "-q", name).trim().split("\n")[0];
};
const inspect = (h: IsolatedHost, name: string) => JSON.parse(h.ok("inspect", name))[0];
const links = (h: IsolatedHost) => h.sh(["ip", "-o", "link", "show"]).stdout;

describe("stop and start (docs: docker container stop, docker network connect --ip)", () => {
  it("stop releases the addresses and names, start brings them back; an --ip address is given back as it was", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.50.0.0/24", "red");
    h.ok("run", "-d", "--net", "red", "--name", "a");
    h.ok("run", "-d", "--net", "red", "--ip", "10.50.0.50", "--name", "fixed");
    h.ok("run", "-d", "--net", "red", "--name", "b");
    const aIp = inspect(h, "a").NetworkSettings.Networks.red.IPAddress;
    expect(resolve(h, "b", "a")).toBe(aIp);
    expect(h.ping("b", aIp)).toBe(true);

    const stop = h.ctnet("stop", "a", "fixed");
    expect(stop.stdout.trim().split("\n")).toEqual(["a", "fixed"]);
    expect(stop.stderr).toBe("");
    // its names stop resolving, its veth is gone, nothing answers at its address
    expect(resolve(h, "b", "a")).toBe("");
    expect(resolve(h, "b", "fixed")).toBe("");
    expect(links(h)).not.toMatch(/ve-a\.red/);
    expect(h.ping("b", aIp)).toBe(false);
    // stopped, inspect keeps the network with no address (Docker's shape for a stopped container)
    const stopped = inspect(h, "a");
    expect(stopped.State.Status).toBe("exited");
    expect(stopped.NetworkSettings.Networks.red).toMatchObject({ IPAddress: "", EndpointID: "", Gateway: "", IPPrefixLen: 0 });
    // and `net inspect` no longer lists it, as Docker's lists endpoints only
    expect(Object.values(JSON.parse(h.ok("net", "inspect", "red"))[0].Containers).map((c: any) => c.Name)).toEqual(["b"]);
    // its address can be taken meanwhile
    h.ok("run", "-d", "--net", "red", "--ip", aIp, "--name", "taker");
    expect(resolve(h, "b", "taker")).toBe(aIp);

    expect(h.ok("start", "a", "fixed").trim().split("\n")).toEqual(["a", "fixed"]);
    const aAgain = inspect(h, "a").NetworkSettings.Networks.red.IPAddress;
    expect(aAgain).not.toBe(aIp);
    expect(resolve(h, "b", "a")).toBe(aAgain);
    expect(h.ping("b", "a")).toBe(true);
    // "the IP address you specify is reapplied when a stopped container is restarted" (docker network connect)
    const fixed = inspect(h, "fixed").NetworkSettings.Networks.red;
    expect(fixed.IPAddress).toBe("10.50.0.50");
    expect(fixed.IPAMConfig).toEqual({ IPv4Address: "10.50.0.50" });
    expect(h.ping("b", "fixed")).toBe(true);
  });

  it("start refuses, with one line and nothing changed, when the --ip address was taken meanwhile (\"the container fails to start\")", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.51.0.0/24", "red");
    h.ok("run", "-d", "--net", "red", "--ip", "10.51.0.9", "--name", "fixed");
    h.ok("stop", "fixed");
    h.ok("run", "-d", "--net", "red", "--ip", "10.51.0.9", "--name", "other");
    const before = h.kernel();
    const r = h.ctnet("start", "fixed");
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/10\.51\.0\.9 is already in use/);
    expect(h.kernel()).toEqual(before);
    expect(inspect(h, "fixed").State.Status).toBe("exited");
  });

  it("net connect / disconnect of a stopped container change the networks it joins at start (\"a container connects to its configured networks when it runs\")", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.55.0.0/24", "red");
    h.ok("net", "create", "--subnet", "10.56.0.0/24", "blue");
    h.ok("run", "-d", "--net", "red", "--name", "s");
    h.ok("stop", "s");
    h.ok("net", "connect", "--ip", "10.56.0.77", "blue", "s");
    h.ok("net", "disconnect", "red", "s");
    expect(links(h)).not.toMatch(/ve-s\./);
    expect(Object.keys(inspect(h, "s").NetworkSettings.Networks)).toEqual(["blue"]);
    expect(inspect(h, "s").NetworkSettings.Networks.blue).toMatchObject({ IPAddress: "", IPAMConfig: { IPv4Address: "10.56.0.77" } });
    h.ok("start", "s");
    const nets = inspect(h, "s").NetworkSettings.Networks;
    expect(Object.keys(nets)).toEqual(["blue"]);
    expect(nets.blue.IPAddress).toBe("10.56.0.77");
    expect(h.inNs("s", "ip", "-4", "-o", "addr", "show", "eth0").stdout).toContain("10.56.0.77/24");
  });

  it("stop -t 1 kills a process that ignores SIGTERM (exit 137); a plain stop of one that does not shows 143 (docs: docker container stop --time)", async () => {
    const h = await newHost();
    h.ok("run", "-d", "--name", "stubborn", "--", "sh", "-c", "trap '' TERM; while :; do sleep 1; done");
    h.ok("run", "-d", "--name", "meek", "sleep", "1000");
    h.ok("stop", "-t", "1", "stubborn");
    h.ok("stop", "meek");
    expect(inspect(h, "stubborn").State).toMatchObject({ Status: "exited", Running: false, ExitCode: 137, Pid: 0 });
    expect(inspect(h, "meek").State.ExitCode).toBe(143);
    expect(h.ctnet("stop", "-t", "soon", "meek").code).toBe(2);
    // nothing of either is left running in its namespace
    expect(h.sh(["ip", "netns", "pids", "stubborn"]).stdout.trim()).toBe("");
  });
});

describe("exit codes, wait and ps status (docs: docker container wait, docker container ls)", () => {
  it("a detached process's exit code is kept: wait prints it, ps shows `Exited (3) … ago`, inspect State has it", async () => {
    const h = await newHost();
    h.ok("run", "-d", "--name", "three", "--", "sh", "-c", "sleep 0.3; exit 3");
    expect(h.ok("wait", "three").trim()).toBe("3");
    const ps = h.ok("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}").trim();
    expect(ps).toMatch(/^three exited Exited \(3\) (Less than a second|\d+ seconds?) ago$/);
    const state = inspect(h, "three").State;
    expect(state).toMatchObject({ Status: "exited", Running: false, Paused: false, ExitCode: 3, Error: "", Pid: 0 });
    expect(Date.parse(state.FinishedAt)).toBeGreaterThanOrEqual(Date.parse(state.StartedAt));
    // wait of several prints each in order; an unknown name is one line on stderr, exit 1
    const r = h.ctnet("wait", "three", "nosuch");
    expect(r.stdout).toBe("3\n");
    expect(r.code).toBe(1);
  });
});

describe("create, then start (docs: docker container create)", () => {
  it("create makes the container without an address or process; start runs it detached, on its networks", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.52.0.0/24", "red");
    h.ok("run", "-d", "--net", "red", "--name", "peer");
    const id = h.ok("create", "--net", "red", "--name", "later", "-p", "8080:80").trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(h.ok("ps", "-a", "--filter", "status=created", "--format", "{{.Names}} {{.Status}}").trim()).toBe("later Created");
    const created = inspect(h, "later");
    expect(created.State).toMatchObject({ Status: "created", Running: false, ExitCode: 0, StartedAt: "0001-01-01T00:00:00Z", FinishedAt: "0001-01-01T00:00:00Z" });
    expect(created.HostConfig.PortBindings).toEqual({ "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] });
    expect(links(h)).not.toMatch(/ve-later/);
    expect(resolve(h, "peer", "later")).toBe("");
    expect(h.sh(["iptables-save", "-t", "nat"]).stdout).not.toMatch(/--dport 8080/);

    expect(h.ok("start", "later").trim()).toBe("later");
    expect(inspect(h, "later").State.Status).toBe("running");
    expect(h.ping("peer", "later")).toBe(true);
    expect(h.sh(["iptables-save", "-t", "nat"]).stdout).toMatch(/--dport 8080/);
    // start of a running container does nothing and says its name, as Docker's
    expect(h.ok("start", "later").trim()).toBe("later");
  });
});

describe("restart, kill, rename (docs: docker container restart, kill, rename)", () => {
  it("restart gives a new process; kill -s USR1 reaches the command only; kill ends it with 137 and releases it", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.53.0.0/24", "red");
    h.ok("run", "-d", "--net", "red", "--name", "peer");
    h.ok("run", "-d", "--net", "red", "--name", "k", "--", "sh", "-c", "trap 'echo got USR1' USR1; while :; do sleep 0.1; done");
    const pid1 = inspect(h, "k").State.Pid;
    h.ok("restart", "-t", "1", "k");
    const pid2 = inspect(h, "k").State.Pid;
    expect(pid2).not.toBe(pid1);
    expect(inspect(h, "k").State.Running).toBe(true);
    expect(h.ping("peer", "k")).toBe(true);

    h.ok("kill", "-s", "USR1", "k");
    for (let i = 0; i < 50 && !h.ok("logs", "k").includes("got USR1"); i++) h.sh(["sleep", "0.1"]);
    expect(h.ok("logs", "k")).toContain("got USR1");
    expect(inspect(h, "k").State.Running).toBe(true);
    expect(h.ctnet("kill", "-s", "NOPE", "k").code).toBe(2);

    h.ok("kill", "k");
    expect(inspect(h, "k").State).toMatchObject({ Status: "exited", ExitCode: 137 });
    expect(resolve(h, "peer", "k")).toBe("");
    expect(h.ctnet("kill", "k").code).toBe(2);
  });

  it("rename changes the name every peer resolves and every command takes; the old name is free", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.54.0.0/24", "red");
    h.ok("run", "-d", "--net", "red", "--name", "peer");
    h.ok("run", "-d", "--net", "red", "--name", "old", "--", "sh", "-c", "echo hello; sleep 1000");
    const ip = inspect(h, "old").NetworkSettings.Networks.red.IPAddress;
    h.ok("rename", "old", "new");
    expect(resolve(h, "peer", "new")).toBe(ip);
    expect(resolve(h, "peer", "old")).toBe("");
    expect(h.ok("logs", "new")).toBe("hello\n");
    expect(inspect(h, "new").Name).toBe("/new");
    expect(h.ctnet("inspect", "old").code).toBe(2);
    expect(h.ctnet("rename", "new", "peer").code).toBe(2);
    // stopped and started under its new name, it is still itself
    h.ok("restart", "-t", "1", "new");
    expect(h.ping("peer", "new")).toBe(true);
  });
});

describe("logs (docs: docker container logs)", () => {
  it("--tail prints the last lines; -f follows until the process ends; --since is refused in one line", async () => {
    const h = await newHost();
    h.ok("run", "-d", "--name", "talker", "--", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 3; echo late");
    expect(h.ok("logs", "--tail", "2", "talker").trim().split("\n")).toEqual(["line4", "line5"]);
    expect(h.ok("logs", "-n", "0", "talker")).toBe("");
    expect(h.ok("logs", "-f", "talker").trim().split("\n")).toEqual(["line1", "line2", "line3", "line4", "line5", "late"]);
    const since = h.ctnet("logs", "--since", "1m", "talker");
    expect(since.code).toBe(2);
    expect(since.stderr.trim().split("\n")).toHaveLength(1);
    expect(h.ctnet("logs", "-t", "talker").code).toBe(2);
  });
});

describe("pause and unpause (docs: docker container pause: the cgroups freezer)", () => {
  it("freezes every process of the container in a freezer cgroup, shown as (Paused), and thaws them; stop of a paused container works", async () => {
    const h = await newHost();
    // the private host's fresh sysfs has no cgroups: mount the freezer hierarchy in its mount namespace
    expect(h.sh(["sh", "-c", "mount -t tmpfs cg /sys/fs/cgroup && mkdir /sys/fs/cgroup/freezer && mount -t cgroup -o freezer freezer /sys/fs/cgroup/freezer"]).code).toBe(0);
    // the freezer hierarchy is the real host's: whatever happens, nothing stays frozen or behind
    const cleanUp = "for d in /sys/fs/cgroup/freezer/ctnet/*/; do [ -d \"$d\" ] && echo THAWED > \"$d/freezer.state\" && for p in $(cat \"$d/cgroup.procs\"); do echo $p > /sys/fs/cgroup/freezer/cgroup.procs; done; rmdir \"$d\"; done; rmdir /sys/fs/cgroup/freezer/ctnet 2>/dev/null; true";
    try {
      h.ok("run", "-d", "--name", "p", "sleep", "1000");
      const id = inspect(h, "p").Id;
      h.ok("pause", "p");
      expect(h.sh(["cat", `/sys/fs/cgroup/freezer/ctnet/${id}/freezer.state`]).stdout.trim()).toBe("FROZEN");
      const pid = inspect(h, "p").State.Pid;
      expect(h.sh(["cat", `/proc/${pid}/cgroup`]).stdout).toContain(`freezer:/ctnet/${id}`);
      expect(h.ok("ps", "--format", "{{.State}} {{.Status}}").trim()).toMatch(/^paused Up .* \(Paused\)$/);
      expect(inspect(h, "p").State).toMatchObject({ Status: "paused", Running: true, Paused: true });
      expect(h.ctnet("pause", "p").code).toBe(2);
      h.ok("unpause", "p");
      expect(h.sh(["test", "-e", `/sys/fs/cgroup/freezer/ctnet/${id}`]).code).not.toBe(0);
      expect(inspect(h, "p").State.Status).toBe("running");
      h.ok("pause", "p");
      h.ok("stop", "-t", "1", "p");
      expect(inspect(h, "p").State.Status).toBe("exited");
      expect(h.sh(["test", "-e", `/sys/fs/cgroup/freezer/ctnet/${id}`]).code).not.toBe(0);
      // rm -f of a paused container thaws it first, then removes it
      h.ok("run", "-d", "--name", "q", "sleep", "1000");
      const qid = inspect(h, "q").Id;
      h.ok("pause", "q");
      h.ok("rm", "-f", "q");
      expect(h.ctnet("inspect", "q").code).toBe(2);
      expect(h.sh(["test", "-e", `/sys/fs/cgroup/freezer/ctnet/${qid}`]).code).not.toBe(0);
      expect(h.sh(["ip", "netns", "list"]).stdout).not.toMatch(/^q\b/m);
      // nothing of ctnet is left in the host's freezer hierarchy
      expect(h.sh(["test", "-e", "/sys/fs/cgroup/freezer/ctnet"]).code).not.toBe(0);
    } finally {
      h.sh(["sh", "-c", cleanUp]);
    }
  });

  it("without a freezer hierarchy, pause is refused in one line, nothing changed", async () => {
    const h = await newHost();
    h.ok("run", "-d", "--name", "p", "sleep", "1000");
    const r = h.ctnet("pause", "p");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ctnet: cannot pause p: .*freezer/);
    expect(inspect(h, "p").State.Status).toBe("running");
  });
});

describe("the container group (seeds 002/003 type `docker container run`; docs: docker container)", () => {
  it("container run|ls|ps|inspect|stop|start|rm|prune work as the top-level commands", async () => {
    const h = await newHost();
    h.ok("container", "run", "-d", "--name", "web", "-p", "8080:80", "sleep", "1000");
    h.ok("container", "run", "-d", "--name", "gone", "true");
    expect(h.ok("container", "ls", "--format", "{{.Names}}").trim()).toBe("web");
    expect(h.ok("container", "ps", "-a", "-q").trim().split("\n")).toHaveLength(2);
    expect(JSON.parse(h.ok("container", "inspect", "web"))[0].Name).toBe("/web");
    h.ok("container", "stop", "web");
    h.ok("container", "start", "web");
    expect(h.ok("container", "list", "--format", "{{.Names}} {{.Ports}}").trim()).toBe("web 0.0.0.0:8080->80/tcp");
    expect(h.ok("container", "port", "web").trim()).toBe("80/tcp -> 0.0.0.0:8080");
    h.ok("container", "wait", "gone");
    expect(h.ok("container", "prune").trim()).toBe("gone");
    h.ok("container", "rm", "-f", "web");
    expect(h.ok("ps", "-a", "-q")).toBe("");
  });
});
