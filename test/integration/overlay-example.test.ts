// examples/overlay.sh run as a user would, inside a private host (it makes its simulated hosts there):
// its pings across hosts answer, the MTU story holds, and it leaves nothing behind.
import path from "node:path";
import { expect, it } from "vitest";
import { ROOT } from "./harness.js";
import { useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();

it("examples/overlay.sh: three hosts, one overlay network, pings across hosts", async () => {
  const h = await newHost();
  const before = h.kernel();
  const workDirs = () => h.sh(["sh", "-c", "ls -d /tmp/ctnet-overlay-example.* 2>/dev/null || true"]).stdout;
  const dirsBefore = workDirs();
  const r = h.sh(["sh", "-c", 'exec "$0" 2>&1', path.join(ROOT, "examples/overlay.sh")], { env: h.env({ NO_COLOR: "1" }) });
  expect(r.code, r.stdout).toBe(0);
  const pings = r.stdout.split("\n").filter((l) => / packet loss/.test(l));
  // three pings across hosts and the 1422-byte one: answered; the 1423-byte one: too long
  expect(pings.slice(0, 4).every((l) => l.includes(" 0% packet loss")), r.stdout).toBe(true);
  expect(r.stdout).toMatch(/message too long/);
  // the last cluster ls, on h2: every host with its container
  expect(r.stdout).toMatch(/^h1\s+10\.77\.0\.1\s+Ready\s+1\nh2 \*\s+10\.77\.0\.2\s+Ready\s+1\nh3\s+10\.77\.0\.3\s+Ready\s+1$/m);
  expect(r.stdout.match(/dst 10\.77\.0\.[23] self permanent/g)).toHaveLength(2);
  // graph and trace on h1: the tunnels to the other hosts, and c1 -> c2 across them, as the probe finds it
  expect(r.stdout).toContain("  └─ ctvx-4096 ⇄ VXLAN VNI 4096 from VTEP 10.77.0.1, tunnels to h2 10.77.0.2, h3 10.77.0.3\n");
  expect(r.stdout).toMatch(/• FDB entry on ctvx-4096: [0-9a-f:]+ → VTEP 10\.77\.0\.2\n[^]*expected: REACHABLE\n.*→ reached[^]*the probe agrees/);
  expect(h.kernel()).toEqual(before);
  expect(workDirs()).toBe(dirsBefore);
}, 120_000);
