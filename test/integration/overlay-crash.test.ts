// SIGKILL at every step of an overlay `run`, `rm` and `net create -d overlay` (killpoints.ts): the claims
// are steps of the journaled plan, so the next command rolls them back (releasing the claims) or completes
// them, and afterwards the store's claims and this host's kernel agree with its state.
// Every kill point is tried even when one fails; the failures are listed together.
import { describe, expect, it } from "vitest";
import { useSimCluster, type SimHost } from "./simhosts.js";
import { journalFiles, kill, startPaused } from "./killpoints.js";

const sim = useSimCluster(1);

/** Every key under the store's prefix (etcdctl on the host itself), with its value. */
function storeKeys(h: SimHost, prefix = "/ctnet/"): Record<string, string> {
  const r = h.sh(["etcdctl", `--endpoints=${sim().store.slice("etcd://".length)}`, "get", "--prefix", prefix], { env: { ...process.env, ETCDCTL_API: "3" } });
  if (r.code !== 0) throw new Error(r.stderr);
  const lines = r.stdout.split("\n").filter(Boolean);
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) out[lines[i]] = lines[i + 1];
  return out;
}

/** What must hold after every repair: the host's claims are exactly its containers' overlay addresses and names. */
function consistent(h: SimHost, net: string, vni: number): string[] {
  const problems: string[] = [];
  const state = h.state();
  const local = Object.values<any>(state.containers).flatMap((c: any) => c.endpoints.filter((e: any) => e.network === net).map((e: any) => `${c.name} ${e.ip}`)).sort();
  const keys = storeKeys(h, `/ctnet/endpoints/${net}/`);
  const claimed = Object.values(keys).map((v) => JSON.parse(v)).filter((v) => v.host === h.name).map((v) => `${v.container} ${v.ip}`).sort();
  if (JSON.stringify(local) !== JSON.stringify(claimed)) problems.push(`claims ${JSON.stringify(claimed)} but containers ${JSON.stringify(local)}`);
  const names = Object.keys(storeKeys(h, `/ctnet/names/${net}/`)).map((k) => k.split("/").pop()).sort();
  const localNames = local.map((l) => l.split(" ")[0]);
  if (JSON.stringify(names) !== JSON.stringify(localNames)) problems.push(`names ${JSON.stringify(names)} but containers ${JSON.stringify(localNames)}`);
  const vxlan = h.sh(["ip", "link", "show", `ctvx-${vni}`]).code === 0;
  if (vxlan !== local.length > 0) problems.push(`VXLAN device ${vxlan ? "present" : "missing"} with ${local.length} containers`);
  if (journalFiles(h.stateDir).length > 0) problems.push(`journal left: ${journalFiles(h.stateDir).join(", ")}`);
  return problems;
}

/** The kill points of `args`: 0 (journal written) to the plan's last step, and after the state is saved. */
async function killPoints(h: SimHost, args: string[]): Promise<string[]> {
  const probe = await startPaused(h, args, "0");
  expect(probe.pid, `${args.join(" ")} pauses at step 0: ${probe.stderr()}`).not.toBeNull();
  await kill(h, probe);
  return [...Array.from({ length: probe.total + 1 }, (_, i) => String(i)), "commit"];
}

describe("overlay claims in the journal: SIGKILL at every step", () => {
  let vni = 0;

  it("cluster join: killed at each step, the next join rolls it back and joins, or finds it joined; the agent runs after the next command", async () => {
    const [h1] = sim().hosts;
    const args = ["cluster", "join", "--store", sim().store, "--advertise", h1.ip, "--ttl", "4"];
    const agentAlive = () => {
      const pid = h1.sh(["cat", `${h1.stateDir}/agent.pid`]).stdout.split(" ")[0];
      return Number(pid) > 0 && h1.sh(["kill", "-0", pid]).code === 0;
    };
    const failures: string[] = [];
    for (const at of await killPoints(h1, args)) {
      // every round starts from a host that has not joined
      const p = await startPaused(h1, args, at);
      if (p.pid === null) {
        failures.push(`${at}: did not pause: ${p.stderr()}`);
        continue;
      }
      await kill(h1, p);
      const again = h1.ctnet(...args);
      const want = at === "commit" ? 2 : 0;
      if (again.code !== want) failures.push(`${at}: join again exited ${again.code}, not ${want}: ${again.stderr.trim()}`);
      // any command that succeeds starts the agent a killed join did not start
      h1.ok("cluster", "ls");
      const keys = Object.keys(storeKeys(h1)).sort();
      if (JSON.stringify(keys) !== JSON.stringify([`/ctnet/hosts/${h1.name}`, `/ctnet/members/${h1.name}`])) failures.push(`${at}: store keys ${JSON.stringify(keys)}`);
      if (!h1.state().cluster) failures.push(`${at}: the state has no join`);
      if (!agentAlive()) failures.push(`${at}: no agent runs`);
      if (journalFiles(h1.stateDir).length > 0) failures.push(`${at}: journal left`);
      h1.ok("cluster", "leave");
      const left = Object.keys(storeKeys(h1));
      if (left.length > 0) failures.push(`${at}: after leave: ${JSON.stringify(left)}`);
    }
    expect(failures).toEqual([]);
  }, 240_000);

  it("net create -d overlay: killed at each step, the next command releases the claims or keeps them with the state", async () => {
    const [h1] = sim().hosts;
    h1.ok("cluster", "join", "--store", sim().store, "--advertise", h1.ip, "--ttl", "4");
    const args = ["net", "create", "-d", "overlay", "--subnet", "10.210.0.0/24", "ovk"];
    const failures: string[] = [];
    for (const at of await killPoints(h1, args)) {
      const p = await startPaused(h1, args, at);
      if (p.pid === null) {
        failures.push(`${at}: did not pause: ${p.stderr()}`);
        continue;
      }
      await kill(h1, p);
      // the next command: the same net create; rolled back, it succeeds; killed after its state was saved, the network stays
      const again = h1.ctnet(...args);
      const want = at === "commit" ? 2 : 0;
      if (again.code !== want) failures.push(`${at}: net create again exited ${again.code}, not ${want}: ${again.stderr.trim()}`);
      const nets = Object.keys(storeKeys(h1)).filter((k) => /\/(networks\/ovk|vnis\/|subnets\/10\.210\.)/.test(k));
      if (nets.length !== 3) failures.push(`${at}: store keys of ovk: ${JSON.stringify(nets)}`);
      if (journalFiles(h1.stateDir).length > 0) failures.push(`${at}: journal left`);
      h1.ok("net", "rm", "ovk");
      const left = Object.keys(storeKeys(h1)).filter((k) => /\/(networks\/ovk|subnets\/10\.210\.)/.test(k));
      if (left.length > 0) failures.push(`${at}: after net rm: ${JSON.stringify(left)}`);
    }
    expect(failures).toEqual([]);
    h1.ok("net", "create", "-d", "overlay", "--subnet", "10.210.0.0/24", "ovk");
    vni = Number(JSON.parse(h1.ok("net", "inspect", "ovk"))[0].Options["com.docker.network.driver.overlay.vxlanid_list"]);
  }, 240_000);

  it("run --net OVERLAY: killed at each step, the next run of the same name succeeds and claims once", async () => {
    const [h1] = sim().hosts;
    const args = ["run", "-d", "--name", "k", "--net", "ovk"];
    const failures: string[] = [];
    for (const at of await killPoints(h1, args)) {
      const p = await startPaused(h1, args, at);
      if (p.pid === null) {
        failures.push(`${at}: did not pause: ${p.stderr()}`);
        continue;
      }
      await kill(h1, p);
      const again = h1.ctnet(...args);
      // killed after its state was saved, the container exists: the name is in use
      const want = at === "commit" ? 2 : 0;
      if (again.code !== want) failures.push(`${at}: run again exited ${again.code}, not ${want}: ${again.stderr.trim()}`);
      failures.push(...consistent(h1, "ovk", vni).map((m) => `${at}, after the next run: ${m}`));
      h1.ok("rm", "-f", "k");
      failures.push(...consistent(h1, "ovk", vni).map((m) => `${at}, after rm: ${m}`));
    }
    expect(failures).toEqual([]);
  }, 600_000);

  it("rm of a container on an overlay network: killed at each step, the next command completes or undoes it", async () => {
    const [h1] = sim().hosts;
    const args = ["rm", "-f", "k"];
    h1.ok("run", "-d", "--name", "k", "--net", "ovk");
    const failures: string[] = [];
    for (const at of await killPoints(h1, args)) {
      if (!h1.state().containers.k) h1.ok("run", "-d", "--name", "k", "--net", "ovk");
      const p = await startPaused(h1, args, at);
      if (p.pid === null) {
        failures.push(`${at}: did not pause: ${p.stderr()}`);
        continue;
      }
      await kill(h1, p);
      // the next command: any command that changes something repairs first (net prune removes nothing here)
      h1.ok("net", "prune");
      failures.push(...consistent(h1, "ovk", vni).map((m) => `${at}: ${m}`));
    }
    expect(failures).toEqual([]);
  }, 600_000);
});
