// Names through a network's shared hosts file (docs/performance.md): single-network containers link to
// it, a running process sees names added after it started, the others keep files of their own, and the
// shared file goes with the network's last member.
import fs from "node:fs";
import { expect, it } from "vitest";
import { uniq, useLabs } from "./harness.js";

const newLab = useLabs({ hostUnchanged: true });

const shared = (net: string) => `/etc/netns/.ctnet-hosts/${net}.hosts`;
const hostsOf = (c: string) => `/etc/netns/${c}/hosts`;
const isLink = (p: string) => fs.lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;

async function until(what: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (what()) return true;
  return what();
}

it("a running process resolves a container that joined its network after it started", async () => {
  const lab = newLab();
  const [net, a, b] = [uniq("nm"), uniq("na"), uniq("nb")];
  lab.ok("net", "create", "--subnet", "10.241.0.0/24", net);
  // a's main process waits for b's name to appear in the /etc/hosts it has had mounted since it started
  lab.ok("run", "-d", "--net", net, "--name", a, "sh", "-c", `until getent hosts ${b} >/dev/null; do sleep 0.1; done; echo seen ${b}`);
  expect(isLink(hostsOf(a))).toBe(true);
  expect(fs.readlinkSync(hostsOf(a))).toBe(shared(net));
  lab.ok("run", "-d", "--net", net, "--name", b, "--network-alias", "web");
  expect(await until(() => lab.ok("logs", a).includes(`seen ${b}`))).toBe(true);
  expect(lab.inNs(b, "getent", "hosts", a).stdout).toMatch(/^10\.241\.0\.\d+\s/);
  expect(lab.inNs(a, "getent", "hosts", "web").stdout).toContain(b);
  lab.ok("rm", "-f", a, b);
  expect(fs.existsSync(shared(net))).toBe(false);
});

it("connect gives a container a file of its own with both networks, disconnect links it back", () => {
  const lab = newLab();
  const [red, blue, r1, b1, own] = [uniq("nr"), uniq("nu"), uniq("r"), uniq("b"), uniq("h")];
  lab.ok("net", "create", "--subnet", "10.241.1.0/24", red);
  lab.ok("net", "create", "--subnet", "10.241.2.0/24", blue);
  lab.ok("run", "-d", "--net", red, "--name", r1);
  lab.ok("run", "-d", "--net", blue, "--name", b1);
  // a hostname of its own: its own file, which lists it under that hostname
  lab.ok("run", "-d", "--net", red, "--name", own, "--hostname", "custom");
  expect(isLink(hostsOf(own))).toBe(false);
  expect(lab.inNs(own, "getent", "hosts", "custom").code).toBe(0);
  expect(lab.inNs(own, "getent", "hosts", r1).code).toBe(0);
  expect(lab.inNs(r1, "getent", "hosts", b1).code).not.toBe(0);

  lab.ok("net", "connect", blue, r1);
  expect(isLink(hostsOf(r1))).toBe(false);
  expect(lab.inNs(r1, "getent", "hosts", b1).code).toBe(0);
  expect(lab.inNs(r1, "getent", "hosts", own).code).toBe(0);
  expect(lab.inNs(b1, "getent", "hosts", r1).code).toBe(0);

  lab.ok("net", "disconnect", blue, r1);
  expect(fs.readlinkSync(hostsOf(r1))).toBe(shared(red));
  expect(lab.inNs(r1, "getent", "hosts", b1).code).not.toBe(0);
  expect(lab.inNs(b1, "getent", "hosts", r1).code).not.toBe(0);
  expect(fs.readFileSync(shared(blue), "utf8")).not.toContain(r1);

  // removing several at once leaves no shared file behind
  lab.ok("rm", "-f", r1, b1, own);
  expect(fs.existsSync(shared(red))).toBe(false);
  expect(fs.existsSync(shared(blue))).toBe(false);
});
