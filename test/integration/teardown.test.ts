// Teardown at the kernel's speed (issue 13, part 2): a deleted namespace's veths go in the background, so
// plans wait for them once (before they make a link or namespace, and at their end) instead of after each
// namespace; a single `rm -f` leaves the wait to the next command that takes one of the names.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CTNET } from "./harness.js";
import { IsolatedHost } from "./isolated.js";

let host: IsolatedHost;
beforeAll(async () => {
  host = await IsolatedHost.start();
});
afterAll(async () => {
  await host?.stop();
});

const veths = () => host.sh(["ip", "-o", "link", "show", "type", "veth"]).stdout.split("\n").filter((l) => / ve-/.test(l)).length;

describe("waiting for deleted veths", () => {
  it("run of a name removed a moment ago waits for its old veth, and works", () => {
    const clean = host.kernel();
    host.ok("net", "create", "--subnet", "10.251.0.0/24", "tw");
    for (let i = 0; i < 5; i++) {
      host.ok("run", "-d", "--net", "tw", "--name", "again");
      // rm and run in one shell: the old veth is still going when run plans
      const r = host.sh(["sh", "-c", `${CTNET} rm -f again && ${CTNET} run -d --net tw --name again`]);
      expect(r.code, r.stderr).toBe(0);
      expect(host.sh(["ip", "-n", "again", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout).toContain("10.251.0.");
      host.ok("rm", "-f", "again");
    }
    host.ok("net", "rm", "tw");
    // net rm waits at its end: nothing of the network or its containers is left when it returns
    expect(host.kernel()).toEqual(clean);
  }, 120_000);

  it("rm -f of several and down return with every veth gone", () => {
    host.ok("net", "create", "--subnet", "10.251.1.0/24", "td");
    for (let i = 0; i < 8; i++) host.ok("run", "-d", "--net", "td", "--name", `d${i}`);
    expect(veths()).toBe(8);
    host.ok("rm", "-f", "d0", "d1", "d2", "d3");
    expect(veths()).toBe(4);
    host.ok("rm", "-f", "d4", "d5", "d6", "d7");
    expect(veths()).toBe(0);
    host.ok("net", "rm", "td");
  }, 120_000);
});
