// Issue 15 item 9: CTNET-USER, ctnet's DOCKER-USER. ctnet creates it empty and jumps to it from
// CTNET-FORWARD right after the loopback guard, ahead of all its own isolation and accepts; the user's rules
// there decide for ctnet's traffic and survive every ctnet command, doctor --fix and reset (which removes
// the chain only when it is empty). Docker's counterpart: docs.docker.com/engine/network/packet-filtering-firewalls/
// ("Add iptables policies before Docker's rules"). Runs in a private host (isolated.ts).
import { describe, expect, it } from "vitest";
import { IsolatedHost, useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();

const chain = (h: IsolatedHost, name: string) => {
  const r = h.sh(["iptables", "-w", "-S", name]);
  return r.code === 0 ? r.stdout.split("\n").filter((l) => l.startsWith("-A ")) : null;
};

const agree = (h: IsolatedHost) => {
  const r = h.ctnet("doctor");
  expect(r.stdout, r.stderr).toContain("no differences");
};

describe("CTNET-USER", () => {
  it("is made empty and jumped to right after the loopback guard; a user's DROP there blocks container-to-container traffic and survives net create/rm, doctor --fix and reset", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.252.1.0/24", "n1");
    h.ok("run", "-d", "--net", "n1", "--name", "a");
    h.ok("run", "-d", "--net", "n1", "--name", "b");
    const ipB = h.state().containers.b.endpoints[0].ip;
    expect(h.ping("a", ipB)).toBe(true);
    expect(chain(h, "CTNET-USER")).toEqual([]);
    expect(chain(h, "CTNET-FORWARD")!.slice(0, 3)).toEqual([
      "-A CTNET-FORWARD -m conntrack --ctorigdst 127.0.0.0/8 -j DROP",
      "-A CTNET-FORWARD -j CTNET-USER",
      "-A CTNET-FORWARD -j CTNET-ISOLATION",
    ]);

    // the user's rule, as Docker's docs show for DOCKER-USER
    const mine = [`-A CTNET-USER -d ${ipB}/32 -j DROP`];
    h.sh(["iptables", "-w", "-A", "CTNET-USER", "-d", ipB, "-j", "DROP"]);
    expect(h.ping("a", ipB)).toBe(false);

    // other commands neither flush nor move it, and doctor does not call it stale
    h.ok("net", "create", "--subnet", "10.252.2.0/24", "n2");
    h.ok("run", "-d", "--net", "n2", "--name", "c");
    h.ok("rm", "-f", "c");
    h.ok("net", "rm", "n2");
    expect(chain(h, "CTNET-USER")).toEqual(mine);
    expect(h.ping("a", ipB)).toBe(false);
    agree(h);

    // doctor --fix puts a lost jump back at its place, and leaves the user's rule
    h.sh(["iptables", "-w", "-D", "CTNET-FORWARD", "-j", "CTNET-USER"]);
    expect(h.ping("a", ipB)).toBe(true);
    h.ok("doctor", "--fix");
    expect(chain(h, "CTNET-FORWARD")![1]).toBe("-A CTNET-FORWARD -j CTNET-USER");
    expect(chain(h, "CTNET-USER")).toEqual(mine);
    expect(h.ping("a", ipB)).toBe(false);

    // the last network goes: ctnet's chains with it, the user's chain stays with its rule
    h.ok("rm", "-f", "a", "b");
    const rm = h.ctnet("net", "rm", "n1");
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stderr).toBe("");
    expect(chain(h, "CTNET-FORWARD")).toBeNull();
    expect(chain(h, "CTNET-USER")).toEqual(mine);
    agree(h);
    h.ok("doctor", "--fix");
    expect(chain(h, "CTNET-USER")).toEqual(mine);

    // a new network finds it and jumps to it again
    h.ok("net", "create", "--subnet", "10.252.1.0/24", "n1");
    h.ok("run", "-d", "--net", "n1", "--name", "a");
    h.ok("run", "-d", "--net", "n1", "--name", "b", "--ip", ipB);
    expect(chain(h, "CTNET-FORWARD")![1]).toBe("-A CTNET-FORWARD -j CTNET-USER");
    expect(h.ping("a", ipB)).toBe(false);
    agree(h);

    // reset removes everything of ctnet's but the user's chain while it holds rules
    h.ok("reset", "-y");
    expect(h.sh(["iptables-save"]).stdout.split("\n").filter((l) => l.includes("CTNET"))).toEqual([":CTNET-USER - [0:0]", ...mine]);
    // and takes it once it is empty
    h.sh(["iptables", "-w", "-F", "CTNET-USER"]);
    h.ok("reset", "-y");
    expect(h.sh(["iptables-save"]).stdout).not.toContain("CTNET");
  }, 180_000);
});
