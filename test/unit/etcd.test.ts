import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Etcd, decodeKv, encodeTxn, parseStoreUrl, prefixEnd, type Compare, type TxnOp } from "../../src/cluster/etcd.js";
import { Plan, renderStep, renderUndo, type StoreStep } from "../../src/plan/plan.js";
import { irreversible } from "../../src/plan/executor.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("etcd JSON gateway encoding", () => {
  it("ends a prefix range at the prefix with its last byte incremented", () => {
    expect(prefixEnd("/ctnet/hosts/").toString()).toBe("/ctnet/hosts0");
    // U+00FF is c3 bf in UTF-8: the last byte is incremented, not the character
    expect([...prefixEnd("a\u00ff")]).toEqual([0x61, 0xc3, 0xc0]);
  });

  it("encodes a create-if-absent transaction with base64 keys and string revisions", () => {
    expect(encodeTxn([{ key: "/k", target: "CREATE", createRevision: 0 }], [{ put: { key: "/k", value: "v", lease: "42" } }], [{ range: { key: "/k" } }])).toEqual({
      compare: [{ key: b64("/k"), result: "EQUAL", target: "CREATE", create_revision: "0" }],
      success: [{ request_put: { key: b64("/k"), value: b64("v"), lease: "42" } }],
      failure: [{ request_range: { key: b64("/k") } }],
    });
  });

  it("encodes a compare over a prefix (no key under it) with its range end", () => {
    const body: any = encodeTxn([{ key: "/e/n/", target: "CREATE", createRevision: 0, prefix: true }], []);
    expect(body.compare[0]).toEqual({ key: b64("/e/n/"), result: "EQUAL", target: "CREATE", create_revision: "0", range_end: b64("/e/n0") });
  });

  it("encodes a prefix delete with its range end", () => {
    const body: any = encodeTxn([], [{ delete: { key: "/p/", prefix: true } }]);
    expect(body.success[0].request_delete_range).toEqual({ key: b64("/p/"), range_end: b64("/p0") });
  });

  it("decodes a key-value as the gateway sends it (int64 as strings, defaults left out)", () => {
    expect(decodeKv({ key: b64("/a"), create_revision: "2", mod_revision: "5", version: "3", value: b64("x") })).toEqual({
      key: "/a", value: "x", createRevision: 2, modRevision: 5, version: 3, lease: "0",
    });
    expect(decodeKv({ key: b64("/a"), mod_revision: "7" }).value).toBe("");
  });

  it("parses etcd:// store URLs with one or more members, and refuses others", () => {
    expect(parseStoreUrl("etcd://10.0.0.1:2379,h2:2379")).toEqual(["10.0.0.1:2379", "h2:2379"]);
    expect(parseStoreUrl("http://10.0.0.1:2379")).toBeNull();
    expect(parseStoreUrl("etcd://10.0.0.1")).toBeNull();
    expect(parseStoreUrl("etcd://a:99999")).toBeNull();
  });
});

describe("store steps of a plan", () => {
  const step = new Plan("run k").store("etcd://10.0.0.1:2379,10.0.0.2:2379", [{ key: "/ctnet/names/ov/k", target: "CREATE", createRevision: 0 }], [{ put: { key: "/ctnet/names/ov/k", value: '{"h":"a b"}' } }], [{ delete: { key: "/ctnet/names/ov/k" } }], "claim k").steps[0];

  it("print as the etcdctl txn that does the same, and their undo as the one that releases", () => {
    expect(renderStep(step)).toBe(`etcdctl --endpoints=10.0.0.1:2379,10.0.0.2:2379 txn <<'EOF'\ncreate("/ctnet/names/ov/k") = "0"\n\nput /ctnet/names/ov/k "{\\"h\\":\\"a b\\"}"\n\n\nEOF`);
    expect(renderUndo(step)).toBe(`etcdctl --endpoints=10.0.0.1:2379,10.0.0.2:2379 txn <<'EOF'\n\ndel /ctnet/names/ov/k\n\n\nEOF`);
  });

  it("a claim is undone by rollback; a release without undo is past the point of no return", () => {
    expect(irreversible(step)).toBe(false);
    expect(irreversible({ ...(step as StoreStep), success: [{ delete: { key: "/ctnet/names/ov/k" } }], undo: null })).toBe(true);
  });
});

describe("a transaction a member applied without answering", () => {
  // two members of one store: the first applies what it gets and never answers (a slow disk, a lost
  // answer), the second answers as etcd does. Only what a create-if-absent claim uses is served
  const store = new Map<string, string>();
  const servers: http.Server[] = [];
  const unb64 = (s: string) => Buffer.from(s, "base64").toString();
  const member = (answers: boolean) =>
    new Promise<string>((resolve) => {
      const server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
          const r = JSON.parse(body);
          let answer: object;
          if (req.url === "/v3/kv/range") {
            const v = store.get(unb64(r.key));
            answer = { header: { revision: "1" }, ...(v === undefined ? {} : { kvs: [{ key: r.key, value: Buffer.from(v).toString("base64"), create_revision: "1", mod_revision: "1", version: "1" }] }) };
          } else {
            const succeeded = r.compare.every((c: any) => !store.has(unb64(c.key)));
            for (const op of succeeded ? r.success : r.failure) store.set(unb64(op.request_put.key), unb64(op.request_put.value));
            answer = { header: { revision: "2" }, succeeded };
          }
          if (answers) res.end(JSON.stringify(answer));
        });
      });
      servers.push(server);
      server.listen(0, "127.0.0.1", () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`));
    });
  afterEach(() => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      s.close();
    }
    store.clear();
  });
  const claim = (value: string): [Compare[], TxnOp[]] => [[{ key: "/ctnet/names/ov/k", target: "CREATE", createRevision: 0 }], [{ put: { key: "/ctnet/names/ov/k", value } }]];

  it("is its caller's: the next member's failed compare finds the store as the transaction leaves it", async () => {
    const etcd = new Etcd([await member(false), await member(true)], 200);
    const r = await etcd.txn(...claim('{"host":"h1"}'));
    etcd.close();
    expect(r.succeeded).toBe(true);
    expect(store.get("/ctnet/names/ov/k")).toBe('{"host":"h1"}');
  });

  it("a key another host holds is still taken", async () => {
    store.set("/ctnet/names/ov/k", '{"host":"h2"}');
    const etcd = new Etcd([await member(false), await member(true)], 200);
    const r = await etcd.txn(...claim('{"host":"h1"}'));
    etcd.close();
    expect(r.succeeded).toBe(false);
  });
});
