// Overlay networks and the rest of a container's life (simhosts.ts): net connect / net disconnect, stop,
// start, restart and create claim and release the container's overlay address and name in the store,
// and bring the network up on the host or take it down with its last container.
import { describe, expect, it } from "vitest";
import { useSimCluster, type SimHost } from "./simhosts.js";

const sim = useSimCluster(2);

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The host's claims in the store: "container ip" for each. */
function claims(h: SimHost): string[] {
  const r = h.sh(["etcdctl", `--endpoints=${sim().store.slice("etcd://".length)}`, "get", "--prefix", "/ctnet/endpoints/ov/", "--print-value-only"], { env: { ...process.env, ETCDCTL_API: "3" } });
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((v) => v.host === h.name).map((v) => `${v.container} ${v.ip}`).sort();
}
const ipOn = (h: SimHost, c: string) => JSON.parse(h.ok("inspect", c))[0].NetworkSettings.Networks.ov?.IPAddress ?? null;
const vxlanUp = (h: SimHost) => h.sh(["ip", "link", "show", "ctvx-4096"]).code === 0;

describe("overlay networks through a container's life", () => {
  it("setup: two joined hosts, an overlay network, a container on the second host", () => {
    const [h1, h2] = sim().hosts;
    for (const h of [h1, h2]) h.ok("cluster", "join", "--store", sim().store, "--advertise", h.ip, "--ttl", "4");
    h1.ok("net", "create", "-d", "overlay", "--subnet", "10.220.0.0/24", "ov");
    h2.ok("run", "-d", "--name", "b", "--net", "ov");
  });

  it("net connect claims an address in the store and brings the network up; net disconnect releases both", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("run", "-d", "--name", "a");
    h1.ok("net", "connect", "ov", "a");
    const ip = ipOn(h1, "a");
    expect(claims(h1)).toEqual([`a ${ip}`]);
    expect(ip).not.toBe(ipOn(h2, "b"));
    await until("a reaches b across hosts", () => h1.ping("a", ipOn(h2, "b")));
    await until("b reaches a", () => h2.ping("b", ip));
    // the name is the network's across hosts: b cannot be connected here under a name h2 holds
    h1.ok("run", "-d", "--name", "b");
    const dup = h1.ctnet("net", "connect", "ov", "b");
    expect([dup.code, dup.stderr.trim()]).toEqual([2, "ctnet: container name b is already in use on overlay network ov (host h2)"]);
    h1.ok("rm", "-f", "b");
    h1.ok("net", "disconnect", "ov", "a");
    expect(claims(h1)).toEqual([]);
    expect(vxlanUp(h1)).toBe(false);
    expect(h1.ctnet("doctor").code).toBe(0);
    h1.ok("rm", "-f", "a");
  });

  it("stop releases the claim and takes the network down with the host's last container; start claims again; restart keeps one claim", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("run", "-d", "--name", "s", "--net", "ov");
    expect(claims(h1)).toHaveLength(1);
    h1.ok("stop", "-t", "0", "s");
    expect(claims(h1)).toEqual([]);
    expect(vxlanUp(h1)).toBe(false);
    h1.ok("start", "s");
    const ip = ipOn(h1, "s");
    expect(claims(h1)).toEqual([`s ${ip}`]);
    await until("s reaches b after start", () => h1.ping("s", ipOn(h2, "b")));
    h1.ok("restart", "-t", "0", "s");
    expect(claims(h1)).toEqual([`s ${ipOn(h1, "s")}`]);
    await until("s reaches b after restart", () => h1.ping("s", ipOn(h2, "b")));
    expect(h1.ctnet("doctor").code).toBe(0);
    h1.ok("rm", "-f", "s");
    expect(claims(h1)).toEqual([]);
  });

  it("create claims nothing until start; start claims and joins the network, rm releases", async () => {
    const [h1, h2] = sim().hosts;
    h1.ok("create", "--name", "c", "--net", "ov");
    expect(claims(h1)).toEqual([]);
    expect(vxlanUp(h1)).toBe(false);
    h1.ok("start", "c");
    expect(claims(h1)).toEqual([`c ${ipOn(h1, "c")}`]);
    await until("c reaches b", () => h1.ping("c", ipOn(h2, "b")));
    h1.ok("rm", "-f", "c");
    expect(claims(h1)).toEqual([]);
    expect(vxlanUp(h1)).toBe(false);
  });
});
