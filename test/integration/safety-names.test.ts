// Names and the files under /etc/netns, in a private host (its /etc/netns is a private tmpfs):
// - lab containers resolve exactly the containers they share a network with (through the DNS server,
//   src/dns), made again or not, and `down` works, also on a container linked to a shared hosts file
//   as versions before the DNS server left it;
// - a symbolic link planted under /etc/netns (a container's dir, its hosts, hostname or resolv.conf) is
//   never followed: commands refuse before changing anything, naming the path, and steps that meet one
//   later (rollback, crash recovery) fail without touching its target.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { IsolatedHost } from "./isolated.js";

let h: IsolatedHost;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-names-"));
beforeAll(async () => {
  h = await IsolatedHost.start();
});
afterEach(() => {
  // each test starts from an empty host: reset removes what ctnet made; planted links are the test's own
  h.sh(["sh", "-c", "find /etc/netns -mindepth 1 -maxdepth 2 -type l -delete"]);
  const r = h.ctnet("reset", "-y");
  expect(r.code, r.stderr).toBe(0);
  sh("find /etc/netns -mindepth 1 -delete");
});
afterAll(async () => {
  await h?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sh = (script: string) => {
  const r = h.sh(["sh", "-c", script]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
};
// the DNS server answers an unknown single-label name at once (NXDOMAIN); a known one may need the few
// ms the server takes to read its files again after the command
const resolves = (from: string, name: string) =>
  h.inNs(from, "sh", "-c", 'for i in 1 2 3 4 5; do getent hosts "$0" >/dev/null && exit 0; sleep 0.1; done; exit 1', name).code === 0;
const dnsFile = (net: string) => fs.readFileSync(path.join(h.stateDir, "dns", net), "utf8");
const isLink = (p: string) => sh(`[ -L ${p} ] && echo yes || echo no`).trim() === "yes";

function agree(): void {
  const r = h.ctnet("doctor");
  expect(r.stdout, r.stderr).toContain("no differences");
}

function labFile(text: string): string {
  const file = path.join(fs.mkdtempSync(path.join(tmp, "lab-")), "ctnet.yaml");
  fs.writeFileSync(file, text);
  return file;
}

describe("names in labs", () => {
  it("a lab container on two networks gets a file of its own: no names leak across networks, down works", () => {
    const file = labFile(`name: rb
networks:
  red: {subnet: 10.77.1.0/24}
  blue: {subnet: 10.77.2.0/24}
containers:
  l1: {networks: [red]}
  l2: {networks: [red, blue]}
  l3: {networks: [blue]}
`);
    h.ok("up", "-f", file);
    expect(resolves("l1", "l3")).toBe(false);
    expect(resolves("l3", "l1")).toBe(false);
    expect(isLink("/etc/netns/l2/hosts")).toBe(false);
    expect(dnsFile("red")).not.toContain("l3");
    expect(dnsFile("blue")).not.toContain("l1");
    expect(resolves("l1", "l2")).toBe(true);
    expect(resolves("l3", "l2")).toBe(true);
    expect(resolves("l2", "l1")).toBe(true);
    expect(resolves("l2", "l3")).toBe(true);
    agree();
    const down = h.ctnet("down", "-f", file);
    expect(down.code, down.stderr).toBe(0);
    expect(h.sh(["find", "/etc/netns", "-mindepth", "1"]).stdout).toBe("");
  });

  it("down works on a lab whose two-network container was linked to a shared file (as earlier versions left it)", () => {
    const file = labFile(`name: old
networks:
  ored: {subnet: 10.77.13.0/24}
  oblue: {subnet: 10.77.14.0/24}
containers:
  o1: {networks: [ored]}
  o2: {networks: [ored, oblue]}
`);
    h.ok("up", "-f", file);
    sh("rm /etc/netns/o2/hosts && ln -s /etc/netns/.ctnet-hosts/ored.hosts /etc/netns/o2/hosts");
    const down = h.ctnet("down", "-f", file);
    expect(down.code, down.stderr).toBe(0);
    expect(h.sh(["find", "/etc/netns", "-mindepth", "1"]).stdout).toBe("");
  });

  it("a lab container made again (its environment changed) resolves its network's names again, and they it", () => {
    const text = (mode: string) => `name: env
networks:
  en: {subnet: 10.77.15.0/24}
containers:
  e1: {networks: [en]}
  e2: {networks: [en], environment: {MODE: ${mode}}}
`;
    h.ok("up", "-f", labFile(text("one")));
    expect(resolves("e2", "e1")).toBe(true);
    expect(h.ok("up", "-f", labFile(text("two")))).toContain("container e2 recreated");
    expect(resolves("e2", "e1")).toBe(true);
    expect(resolves("e1", "e2")).toBe(true);
    expect(isLink("/etc/netns/e2/hosts")).toBe(false);
    agree();
    h.ok("down", "--lab", "env");
  });

  it("lab containers made again (entry changed, networks changed) resolve their neighbours, and they them", () => {
    const text = (mode: string, c2: string, c3: string) => `name: conv
networks:
  cv: {subnet: 10.77.3.0/24}
  cw: {subnet: 10.77.12.0/24}
containers:
  c1: {networks: [cv]}
  c2: {networks: [${c2}], environment: {MODE: ${mode}}}
  c3: {networks: [${c3}], environment: {MODE: ${mode}}}
  c4: {networks: [cw]}
`;
    const names = (c2: string[], c3: string[]) => {
      const on = { c1: ["cv"], c2, c3, c4: ["cw"] } as Record<string, string[]>;
      for (const [a, netsA] of Object.entries(on)) {
        for (const [b, netsB] of Object.entries(on)) {
          if (a !== b) expect(resolves(a, b), `${a} resolves ${b}`).toBe(netsA.some((n) => netsB.includes(n)));
        }
      }
      agree();
    };
    h.ok("up", "-f", labFile(text("one", "cv", "cv, cw")));
    names(["cv"], ["cv", "cw"]);
    // the same networks, another environment: both made again
    const out = h.ok("up", "-f", labFile(text("two", "cv", "cv, cw")));
    expect(out).toContain("container c2 recreated");
    expect(out).toContain("container c3 recreated");
    names(["cv"], ["cv", "cw"]);
    // networks swapped
    h.ok("up", "-f", labFile(text("two", "cv, cw", "cw")));
    names(["cv", "cw"], ["cw"]);
    h.ok("down", "--lab", "conv");
  });
});

// ---- planted links ---------------------------------------------------------------------------------

/** A victim outside /etc/netns: a dir holding files named like the ones ctnet writes, and a lone file. */
function victim() {
  const dir = fs.mkdtempSync(path.join(tmp, "victim-"));
  for (const f of ["hosts", "hostname", "red.hosts"]) fs.writeFileSync(path.join(dir, f), `precious ${f}\n`);
  const file = path.join(dir, "file");
  fs.writeFileSync(file, "precious file\n");
  const snapshot = () =>
    fs.readdirSync(dir).sort().map((f) => {
      const st = fs.lstatSync(path.join(dir, f));
      return `${f} ${st.ino} ${fs.readFileSync(path.join(dir, f), "utf8")}`;
    });
  const before = snapshot();
  return { dir, file, unchanged: () => expect(snapshot()).toEqual(before) };
}

/** Exit 2, one line naming `file`, and nothing changed on the host or in the state. */
function refuses(args: string[], file: string): void {
  const kernel = h.kernel();
  const state = h.stateFiles();
  const r = h.ctnet(...args);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).toContain(file);
  expect(h.kernel()).toEqual(kernel);
  expect(h.stateFiles()).toEqual(state);
}

describe("links planted under /etc/netns are never followed", () => {
  it("run refuses a container dir, hosts, hostname or resolv.conf that is a link", () => {
    const v = victim();
    h.ok("net", "create", "--subnet", "10.77.4.0/24", "red");

    sh(`mkdir -p /etc/netns && ln -s ${v.dir} /etc/netns/x1`);
    refuses(["run", "-d", "--net", "red", "--name", "x1"], "/etc/netns/x1");
    sh(`mkdir /etc/netns/x2 && ln -s ${v.file} /etc/netns/x2/hostname`);
    refuses(["run", "-d", "--net", "red", "--name", "x2"], "/etc/netns/x2/hostname");
    sh(`mkdir /etc/netns/x3 && ln -s ${v.file} /etc/netns/x3/hosts`);
    refuses(["run", "-d", "--net", "red", "--name", "x3"], "/etc/netns/x3/hosts");
    // a link that looks like ctnet's but points elsewhere is not ctnet's either
    sh(`mkdir /etc/netns/x4 && ln -s /etc/netns/.ctnet-hosts/../../..${v.dir}/red.hosts /etc/netns/x4/hosts`);
    refuses(["run", "-d", "--net", "red", "--name", "x4", "--hostname", "own"], "/etc/netns/x4/hosts");

    sh(`mkdir /etc/netns/x5 && ln -s ${v.file} /etc/netns/x5/resolv.conf`);
    refuses(["run", "-d", "--net", "red", "--name", "x5"], "/etc/netns/x5/resolv.conf");
    // a hard link is a second name of the same file: written through just as surely
    sh("echo precious > /etc/netns/keep && mkdir /etc/netns/x6 && ln /etc/netns/keep /etc/netns/x6/hostname");
    refuses(["run", "-d", "--net", "red", "--name", "x6"], "/etc/netns/x6/hostname");
    expect(sh("cat /etc/netns/keep")).toBe("precious\n");
    v.unchanged();

    // with the links gone, the same commands work
    sh("rm -rf /etc/netns/x1 /etc/netns/x2 /etc/netns/x3 /etc/netns/x4 /etc/netns/x5 /etc/netns/x6 /etc/netns/keep");
    h.ok("run", "-d", "--net", "red", "--name", "x1");
    h.ok("run", "-d", "--net", "red", "--name", "x2");
    expect(resolves("x1", "x2")).toBe(true);
    agree();
  });

  it("rm, net connect and net disconnect refuse files of existing containers replaced by links", () => {
    const v = victim();
    h.ok("net", "create", "--subnet", "10.77.5.0/24", "red");
    h.ok("net", "create", "--subnet", "10.77.6.0/24", "blue");
    h.ok("run", "-d", "--net", "red", "--name", "a");
    h.ok("run", "-d", "--net", "red", "--name", "b");
    h.ok("net", "connect", "blue", "b");

    // a container's dir swapped for a link to the victim dir (which holds a hosts and a hostname)
    sh("mv /etc/netns/b /etc/netns/b.real && ln -s " + v.dir + " /etc/netns/b");
    refuses(["net", "disconnect", "blue", "b"], "/etc/netns/b");
    refuses(["rm", "-f", "b"], "/etc/netns/b");
    sh("rm /etc/netns/b && mv /etc/netns/b.real /etc/netns/b");
    sh("mv /etc/netns/a /etc/netns/a.real && ln -s " + v.dir + " /etc/netns/a");
    refuses(["net", "connect", "blue", "a"], "/etc/netns/a");
    refuses(["rm", "-f", "a"], "/etc/netns/a");
    sh("rm /etc/netns/a && mv /etc/netns/a.real /etc/netns/a");

    // single files swapped for links
    sh(`mv /etc/netns/b/hosts /tmp/b.hosts && ln -s ${v.file} /etc/netns/b/hosts`);
    refuses(["net", "disconnect", "blue", "b"], "/etc/netns/b/hosts");
    refuses(["rm", "-f", "b"], "/etc/netns/b/hosts");
    sh("rm /etc/netns/b/hosts && mv /tmp/b.hosts /etc/netns/b/hosts");
    sh(`rm /etc/netns/b/hostname && ln -s ${v.file} /etc/netns/b/hostname`);
    refuses(["rm", "-f", "b"], "/etc/netns/b/hostname");
    sh(`rm /etc/netns/a/resolv.conf && ln -s ${v.file} /etc/netns/a/resolv.conf`);
    refuses(["rm", "-f", "a"], "/etc/netns/a/resolv.conf");
    v.unchanged();
  });

  it("up and down refuse a lab container's planted links", () => {
    const v = victim();
    const file = labFile(`name: pl
networks:
  pn: {subnet: 10.77.7.0/24}
containers:
  p1: {networks: [pn]}
  p2: {networks: [pn], hostname: own}
`);
    sh(`ln -s ${v.dir} /etc/netns/p2`);
    refuses(["up", "-f", file], "/etc/netns/p2");
    sh("rm /etc/netns/p2");
    h.ok("up", "-f", file);
    sh(`mv /etc/netns/p2 /tmp/p2.real && ln -s ${v.dir} /etc/netns/p2`);
    refuses(["down", "-f", file], "/etc/netns/p2");
    sh("rm /etc/netns/p2 && mv /tmp/p2.real /etc/netns/p2");
    sh(`rm /etc/netns/p2/hostname && ln -s ${v.file} /etc/netns/p2/hostname`);
    refuses(["down", "-f", file], "/etc/netns/p2/hostname");
    v.unchanged();
  });
});

// ---- links planted while a plan runs -------------------------------------------------------------------

/** Starts ctnet with the pause hook and resolves once it is paused after `at` steps. */
async function paused(args: string[], at: number): Promise<{ child: ChildProcess; pid: string; exit: Promise<number>; stderr: () => string }> {
  const child = h.spawnCtnet(args, { CTNET_TEST_PAUSE_AFTER_STEP: String(at) });
  let err = "";
  const exit = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 128)));
  const pid = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (d) => {
      err += d;
      const m = /test pause after step \S+ of \d+ \(pid (\d+)\)/.exec(err);
      if (m) resolve(m[1]);
    });
    exit.then(() => reject(new Error(`ctnet exited before pausing: ${err}`)));
  });
  return { child, pid, exit, stderr: () => err };
}

/** The 1-based number of the last step of `args`' plan whose comment contains `what`. */
function stepOf(args: string[], what: string): number {
  const script = h.ok(...args, "--dry-run");
  const steps = [...script.matchAll(/^# (\d+)\. (.*)$/gm)].filter((m) => m[2].includes(what));
  expect(steps.length, `no step "${what}" in:\n${script}`).toBeGreaterThan(0);
  return Number(steps[steps.length - 1][1]);
}

describe("links planted while a plan runs", () => {
  it("a rollback does not write through a link planted after the step it undoes", async () => {
    const v = victim();
    h.ok("net", "create", "--subnet", "10.77.8.0/24", "red");
    h.ok("net", "create", "--subnet", "10.77.9.0/24", "blue");
    h.ok("run", "-d", "--net", "red", "--name", "a", "--hostname", "own");
    const args = ["net", "connect", "blue", "a"];
    const at = stepOf(args, "names a resolves by itself");
    const p = await paused(args, at);
    // the connect wrote a's own hosts file; it is swapped for a link to the victim, and the plan interrupted
    sh(`rm /etc/netns/a/hosts && ln -s ${v.file} /etc/netns/a/hosts`);
    h.sh(["kill", "-INT", p.pid]);
    expect(await p.exit).toBe(1);
    v.unchanged();
    expect(p.stderr()).toContain("/etc/netns/a/hosts");
  });

  it("a crashed rm finished by the next command does not delete through a dir planted meanwhile", async () => {
    const v = victim();
    h.ok("net", "create", "--subnet", "10.77.10.0/24", "red");
    h.ok("net", "create", "--subnet", "10.77.11.0/24", "blue");
    h.ok("run", "-d", "--net", "red", "--name", "a");
    h.ok("net", "connect", "blue", "a");
    // past its point of no return (the processes are killed), the rm is finished by the next command
    const args = ["rm", "-f", "a"];
    const p = await paused(args, stepOf(args, "stop a's processes"));
    sh(`mv /etc/netns/a /tmp/a.real && ln -s ${v.dir} /etc/netns/a`);
    h.sh(["kill", "-KILL", p.pid]);
    await p.exit;
    // the next command finishes the rm: its file steps fail on the link, as when it ran
    const next = h.ctnet("run", "-d", "--name", "z", "--net", "none");
    expect(next.stderr).toContain("recovered");
    v.unchanged();
    expect(next.code, next.stderr).toBe(0);
    sh("rm /etc/netns/a && rm -rf /tmp/a.real");
  });
});
