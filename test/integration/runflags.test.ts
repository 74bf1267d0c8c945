// `run` in Docker's spelling (issue 15), for real in a private host (isolated.ts): several --network,
// --mac-address, the long --network form, -v as Docker's --volume, and an image name refused.
import { describe, expect, it } from "vitest";
import { useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();

describe("run flags from Docker", () => {
  it("run --network a --network b: eth0 on a with the default route, eth1 on b, names resolve on both (Docker 25+)", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.31.0.0/24", "a");
    h.ok("net", "create", "--subnet", "10.32.0.0/24", "b");
    h.ok("run", "-d", "--name", "pa", "--network", "a");
    h.ok("run", "-d", "--name", "pb", "--network", "b");
    h.ok("run", "-d", "--name", "both", "--network", "a", "--network", "b");
    expect(h.inNs("both", "ip", "-4", "-o", "addr", "show", "eth0").stdout).toContain("10.31.0.3/24");
    expect(h.inNs("both", "ip", "-4", "-o", "addr", "show", "eth1").stdout).toContain("10.32.0.3/24");
    expect(h.inNs("both", "ip", "route", "show", "default").stdout.trim()).toBe("default via 10.31.0.1 dev eth0");
    expect(h.inNs("both", "getent", "hosts", "pa").stdout).toMatch(/^10\.31\.0\.2\s/);
    expect(h.inNs("both", "getent", "hosts", "pb").stdout).toMatch(/^10\.32\.0\.2\s/);
    expect(h.inNs("pb", "getent", "hosts", "both").stdout).toMatch(/^10\.32\.0\.3\s/);
    expect(h.ping("both", "pa") && h.ping("both", "pb") && h.ping("pb", "both")).toBe(true);
  });

  it("--mac-address is eth0's MAC in the namespace; the long form sets ip, alias and MAC per network", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.33.0.0/24", "a");
    h.ok("net", "create", "--subnet", "10.34.0.0/24", "b");
    h.ok("run", "-d", "--name", "m1", "--net", "a", "--mac-address", "02:00:00:00:AB:01");
    expect(h.inNs("m1", "cat", "/sys/class/net/eth0/address").stdout.trim()).toBe("02:00:00:00:ab:01");
    h.ok("run", "-d", "--name", "m2", "--network", "name=a,ip=10.33.0.50,alias=web", "--network", "name=b,mac-address=02:00:00:00:ab:02,alias=db");
    expect(h.inNs("m2", "ip", "-4", "-o", "addr", "show", "eth0").stdout).toContain("10.33.0.50/24");
    expect(h.inNs("m2", "cat", "/sys/class/net/eth1/address").stdout.trim()).toBe("02:00:00:00:ab:02");
    expect(h.inNs("m1", "getent", "hosts", "web").stdout).toMatch(/^10\.33\.0\.50\s/);
    expect(JSON.parse(h.ok("inspect", "m2"))[0].NetworkSettings.Networks.b.MacAddress).toBe("02:00:00:00:ab:02");
  });

  it("an image name, run -v VOLUME and --restart always are refused with one line, and change nothing", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.35.0.0/24", "red");
    const before = h.kernel();
    const files = h.stateFiles();
    const image = h.ctnet("run", "-itd", "--net=red", "--name", "ubuntu1", "ubuntu");
    expect(image).toMatchObject({
      code: 2,
      stderr: "ctnet: ubuntu is not a program on this host, and ctnet has no images (a container runs a host program): if ubuntu is an image, leave it out: ctnet run -itd --net=red --name ubuntu1\n",
    });
    expect(h.ctnet("run", "-d", "-v", "/srv:/srv", "--net", "red", "sleep", "9")).toMatchObject({ code: 2, stderr: expect.stringMatching(/^ctnet: -v\/--volume is not supported: [^\n]*\n$/) });
    expect(h.ctnet("run", "-d", "--restart", "always", "--net", "red")).toMatchObject({ code: 2, stderr: expect.stringMatching(/^ctnet: --restart always is not supported: [^\n]*\n$/) });
    expect(h.kernel()).toEqual(before);
    expect(h.stateFiles()).toEqual(files);
  });

  it("ctnet -v run echoes each command (run -v being Docker's --volume)", async () => {
    const h = await newHost();
    const r = h.ctnet("-v", "run", "-d", "--name", "v1");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("+ ip netns add v1");
  });
});
