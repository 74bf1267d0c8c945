// Issue 15, item 10: the shapes scripts read, through the built CLI, against the kernel's facts and the
// seeds' command lines as typed (image names dropped: ctnet has none). Docs: docker inspect ("Get an
// instance's IP address", "List all port bindings"), docker container ls ("Format the output").
import { describe, expect, it } from "vitest";
import { useIsolatedHosts, type IsolatedHost } from "./isolated.js";

const newHost = useIsolatedHosts();
const inspect = (h: IsolatedHost, name: string) => JSON.parse(h.ok("inspect", name))[0];

describe("inspect and ps, as seed 002 reads them", () => {
  it("docker container inspect web1 --format='{{json .NetworkSettings}}': Ports, the default bridge's top-level address as the kernel has it", async () => {
    const h = await newHost();
    h.ok("run", "-d", "--name", "web1", "-p", "8080:80", "sleep", "1000");
    const settings = JSON.parse(h.ok("container", "inspect", "web1", "--format={{json .NetworkSettings}}"));
    expect(settings.Ports).toEqual({ "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] });
    const kernel = h.sh(["ip", "-n", "web1", "-4", "-o", "addr", "show", "eth0"]).stdout.match(/inet (\S+)\/(\d+)/)!;
    const innerMac = h.inNs("web1", "cat", "/sys/class/net/eth0/address").stdout.trim();
    const route = h.sh(["ip", "-n", "web1", "route", "show", "default"]).stdout.match(/via (\S+)/)![1];
    expect(settings).toMatchObject({ IPAddress: kernel[1], IPPrefixLen: Number(kernel[2]), Gateway: route, MacAddress: innerMac });
    expect(settings.EndpointID).toBe(settings.Networks.bridge.EndpointID);
    expect(settings.Networks.bridge.IPAMConfig).toBeNull();
    // `docker ps` of the seed: Docker's columns, PORTS as Docker shows them
    const [header, row] = h.ok("ps").trimEnd().split("\n");
    expect(header.split(/ {2,}/)).toEqual(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]);
    expect(row).toMatch(/^[0-9a-f]{12} +sleep +"sleep 1000" +(Less than a second|\d+ seconds?) ago +Up .+ +0\.0\.0\.0:8080->80\/tcp +web1$/);
  });
});

describe("the container group as seed 003 types it", () => {
  it("container run -d --name c1 --network eui_bridge sleep 1d; c2 pings c1 by name; ps --format '{{.Networks}}'", async () => {
    const h = await newHost();
    h.ok("network", "create", "-d", "bridge", "eui_bridge");
    h.ok("container", "run", "-d", "--name", "c1", "--network", "eui_bridge", "sleep", "1d");
    const c2 = h.ctnet("container", "run", "--rm", "--name", "c2", "--network", "eui_bridge", "ping", "-c1", "-W2", "c1");
    expect(c2.code, c2.stderr).toBe(0);
    expect(h.ok("ps", "--format", "{{.Names}} {{.Networks}}").trim()).toBe("c1 eui_bridge");
  });
});

describe("host, none, and a foreground run's exit", () => {
  it("--net host / none: Networks holds a host / none entry; HostConfig.NetworkMode names the mode", async () => {
    const h = await newHost();
    h.ok("run", "-d", "--net", "host", "--name", "h", "sleep", "1000");
    h.ok("run", "-d", "--net", "none", "--name", "n", "sleep", "1000");
    for (const mode of ["host", "none"]) {
      const c = inspect(h, mode[0]);
      expect(Object.keys(c.NetworkSettings.Networks)).toEqual([mode]);
      expect(c.HostConfig.NetworkMode).toBe(mode);
      expect(c.NetworkSettings.Networks[mode].NetworkID).toBe(JSON.parse(h.ok("net", "inspect", mode))[0].Id);
    }
  });

  it("a foreground run that exits: its code kept (Exited (4)), its endpoint released as Docker's daemon does", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.60.0.0/24", "red");
    h.ok("run", "-d", "--net", "red", "--name", "peer");
    expect(h.ctnet("run", "--net", "red", "--name", "fg", "--", "sh", "-c", "exit 4").code).toBe(4);
    expect(inspect(h, "fg").State).toMatchObject({ Status: "exited", ExitCode: 4 });
    expect(h.ok("ps", "-a", "--filter", "name=fg", "--format", "{{.Status}}")).toMatch(/^Exited \(4\) /);
    expect(Object.values(JSON.parse(h.ok("net", "inspect", "red"))[0].Containers).map((c: any) => c.Name)).toEqual(["peer"]);
    expect(h.sh(["ip", "link", "show", "ve-fg.red"]).code).not.toBe(0);
    // started again, detached, it rejoins red
    h.ok("start", "fg");
    expect(inspect(h, "fg").NetworkSettings.Networks.red.IPAddress).toMatch(/^10\.60\.0\./);
  });
});
