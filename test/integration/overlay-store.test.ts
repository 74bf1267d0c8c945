// The etcd client (src/cluster/etcd.ts) against a real 3-member etcd cluster on simulated hosts: run as a
// script inside a host of the underlay.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useSimCluster } from "./simhosts.js";

const sim = useSimCluster(1);
// dist/ is one bundle: the client alone is bundled from its source for these scripts
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-etcd-client-"));
const CLIENT = path.join(dir, "etcd.mjs");
beforeAll(async () => {
  await build({ entryPoints: [path.resolve(__dirname, "../../src/cluster/etcd.ts")], bundle: true, format: "esm", platform: "node", outfile: CLIENT, logLevel: "warning" });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `body` (an async function body with `etcd` in scope) on host h1; returns what it returns, as JSON. */
function onHost(body: string, endpoints = sim().store): any {
  const script = `import { Etcd, parseStoreUrl } from ${JSON.stringify(CLIENT)};
const etcd = new Etcd(parseStoreUrl(${JSON.stringify(endpoints)}));
const out = await (async () => { ${body} })();
etcd.close();
process.stdout.write(JSON.stringify(out ?? null));`;
  const r = sim().hosts[0].sh([process.execPath, "--input-type=module", "-e", script]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

describe("etcd client over the JSON gateway", () => {
  it("puts, gets and lists keys (base64 on the wire, UTF-8 here)", () => {
    expect(onHost(`await etcd.put("/t/a", "één"); await etcd.put("/t/b", "2"); await etcd.put("/u", "x");
      const l = await etcd.list("/t/"); return [(await etcd.get("/t/a")).value, l.kvs.map((kv) => kv.key), await etcd.get("/nope")];`))
      .toEqual(["één", ["/t/a", "/t/b"], null]);
  });

  it("a create-if-absent transaction succeeds once; the second gets the first one's value", () => {
    expect(onHost(`const c = [{ key: "/t/claim", target: "CREATE", createRevision: 0 }];
      const one = await etcd.txn(c, [{ put: { key: "/t/claim", value: "h1" } }], [{ range: { key: "/t/claim" } }]);
      const two = await etcd.txn(c, [{ put: { key: "/t/claim", value: "h2" } }], [{ range: { key: "/t/claim" } }]);
      return [one.succeeded, two.succeeded, two.ranges[0][0].value];`)).toEqual([true, false, "h1"]);
  });

  it("a key put with a lease lives while the lease is renewed and goes when it expires", () => {
    expect(onHost(`const lease = await etcd.leaseGrant(2); await etcd.put("/t/leased", "x", lease);
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      for (let i = 0; i < 4; i++) { await sleep(700); await etcd.leaseKeepAlive(lease); }
      const alive = !!(await etcd.get("/t/leased"));
      await sleep(4000);
      return [alive, await etcd.get("/t/leased"), await etcd.leaseKeepAlive(lease)];`)).toEqual([true, null, 0]);
  }, 20_000);

  it("a watch from a revision sees puts and deletes; a compacted revision ends it with the compaction", () => {
    expect(onHost(`const from = (await etcd.list("/w/")).revision + 1;
      await etcd.put("/w/1", "a"); await etcd.delete("/w/1");
      const seen = await new Promise((resolve) => { const got = []; const stop = etcd.watch("/w/", from, (events) => {
        got.push(...events.map((e) => e.type + " " + e.kv.key)); if (got.length === 2) { stop(); resolve(got); } }, () => {}); });
      const rev = await etcd.put("/w/2", "b");
      await etcd.call("/v3/kv/compaction", { revision: String(rev) });
      const compacted = await new Promise((resolve) => etcd.watch("/w/", from, () => {}, (err, c) => resolve(c)));
      return [seen, compacted === rev];`)).toEqual([["PUT /w/1", "DELETE /w/1"], true]);
  });

  it("an unreachable store is one error naming it", () => {
    expect(onHost(`try { await etcd.get("/x"); } catch (e) { return [e.constructor.name, e.message]; }`, "etcd://10.77.0.250:2379"))
      .toEqual(["OpError", expect.stringMatching(/^etcd store etcd:\/\/10\.77\.0\.250:2379 is unreachable/)]);
  });

  it("with one member of three lost, reads and transactions go on through the others", async () => {
    await sim().killEtcdMember(0);
    expect(onHost(`await etcd.put("/t/after", "1");
      const r = await etcd.txn([{ key: "/t/after2", target: "CREATE", createRevision: 0 }], [{ put: { key: "/t/after2", value: "x" } }]);
      return [(await etcd.get("/t/after")).value, r.succeeded];`)).toEqual(["1", true]);
  });
});
