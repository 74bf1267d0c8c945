// A small etcd v3 client over etcd's JSON gateway (/v3/...), on node:http with keep-alive. Chosen for
// start-up: a whole ctnet process doing one put and one get took 80-94 ms with node:http, 160-185 ms with
// global fetch (undici loads) and 233-253 ms with the etcd3 package (grpc-js, proto parsing); see
// docs/overlay.md. Keys and values are base64 on the wire; int64 fields are decimal strings.
import http from "node:http";
import { OpError } from "../errors.js";

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: string;
}

export interface WatchEvent {
  type: "PUT" | "DELETE";
  kv: KeyValue;
}

/** `prefix`: the compare holds for every key under `key` (CREATE 0 over a prefix: no key there at all) */
export type Compare = { key: string; target: "CREATE"; createRevision: number; prefix?: boolean } | { key: string; target: "MOD"; modRevision: number } | { key: string; target: "VALUE"; value: string };
export type TxnOp = { put: { key: string; value: string; lease?: string } } | { delete: { key: string; prefix?: boolean } } | { range: { key: string; prefix?: boolean } };

const b64 = (text: string) => Buffer.from(text).toString("base64");
const unb64 = (text: string | undefined) => (text ? Buffer.from(text, "base64").toString() : "");

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix), as bytes. */
export function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) return Buffer.concat([bytes.subarray(0, i), Buffer.from([bytes[i] + 1])]);
  }
  return Buffer.from([0]);
}

const rangeEnd = (prefix: string) => prefixEnd(prefix).toString("base64");

export function decodeKv(kv: any): KeyValue {
  return {
    key: unb64(kv.key), value: unb64(kv.value), createRevision: Number(kv.create_revision ?? 0),
    modRevision: Number(kv.mod_revision ?? 0), version: Number(kv.version ?? 0), lease: kv.lease ?? "0",
  };
}

function encodeOp(op: TxnOp): object {
  if ("put" in op) return { request_put: { key: b64(op.put.key), value: b64(op.put.value), ...(op.put.lease ? { lease: op.put.lease } : {}) } };
  if ("delete" in op) return { request_delete_range: { key: b64(op.delete.key), ...(op.delete.prefix ? { range_end: rangeEnd(op.delete.key) } : {}) } };
  return { request_range: { key: b64(op.range.key), ...(op.range.prefix ? { range_end: rangeEnd(op.range.key) } : {}) } };
}

/** The body of /v3/kv/txn. */
export function encodeTxn(compare: Compare[], success: TxnOp[], failure: TxnOp[] = []): object {
  return {
    compare: compare.map((c) => {
      const base = { key: b64(c.key), result: "EQUAL", target: c.target, ...("prefix" in c && c.prefix ? { range_end: rangeEnd(c.key) } : {}) };
      if (c.target === "CREATE") return { ...base, create_revision: String(c.createRevision) };
      if (c.target === "MOD") return { ...base, mod_revision: String(c.modRevision) };
      return { ...base, value: b64(c.value) };
    }),
    success: success.map(encodeOp),
    failure: failure.map(encodeOp),
  };
}

/** "etcd://h1:2379,h2:2379" -> ["h1:2379", "h2:2379"]; null when it is not such a URL. */
export function parseStoreUrl(url: string): string[] | null {
  const m = /^etcd:\/\/([^/]+)\/?$/.exec(url);
  if (!m) return null;
  const endpoints = m[1].split(",");
  return endpoints.every((e) => /^[A-Za-z0-9.-]+:\d{1,5}$/.test(e) && Number(e.split(":")[1]) <= 65535) ? endpoints : null;
}

/** gRPC's status for a member that cannot serve (no leader): another member may */
const UNAVAILABLE = 14;
const CONNECT_TIMEOUT_MS = 500;

export class Etcd {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  /** the endpoint that answered last: tried first next time */
  private current = 0;

  constructor(readonly endpoints: string[], readonly timeoutMs = 2000) {}

  get url(): string {
    return `etcd://${this.endpoints.join(",")}`;
  }

  /** One POST to the gateway, trying each member in turn; an unreachable store is an OpError naming it. */
  async call(path: string, body: object): Promise<any> {
    return (await this.send(path, body)).res;
  }

  /**
   * call(), and whether an earlier member got the request and gave no answer: it may have applied it
   * (etcd's own "request timed out" is such an answer), so the member that answered saw it done.
   */
  private async send(path: string, body: object): Promise<{ res: any; ambiguous: boolean }> {
    let last: Error | null = null;
    let ambiguous = false;
    for (let i = 0; i < this.endpoints.length; i++) {
      const at = (this.current + i) % this.endpoints.length;
      try {
        const res = await this.post(this.endpoints[at], path, body);
        this.current = at;
        return { res, ambiguous };
      } catch (err: any) {
        if (err instanceof OpError) throw err;
        ambiguous ||= err.sent === true;
        last = err;
      }
    }
    throw new OpError(`etcd store ${this.url} is unreachable: ${last?.message ?? "no endpoint"}`);
  }

  private post(endpoint: string, path: string, body: object): Promise<any> {
    const [host, port] = [endpoint.slice(0, endpoint.lastIndexOf(":")), Number(endpoint.slice(endpoint.lastIndexOf(":") + 1))];
    const data = JSON.stringify(body);
    return new Promise((resolve, reject_) => {
      // once connected, the member may have applied the request whatever becomes of its answer
      let connected = false;
      const reject = (err: Error) => reject_(Object.assign(err, { sent: connected }));
      const req = http.request({ host, port, path, method: "POST", agent: this.agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          let json: any;
          try {
            json = JSON.parse(text);
          } catch {
            return reject(new Error(`bad answer from ${endpoint}: ${text.slice(0, 80)}`));
          }
          // a member without a leader (lost quorum) says so: another member may have one
          if (res.statusCode !== 200) {
            const message = `etcd ${endpoint}${path}: ${json?.message ?? json?.error ?? res.statusCode}`;
            return reject(json?.code === UNAVAILABLE ? new Error(message) : new OpError(message));
          }
          resolve(json);
        });
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer from ${endpoint} within ${this.timeoutMs} ms`)));
      // a member that is down does not answer ARP: the kernel gives up after 3 s; the next member is
      // tried long before that (a LAN connects in well under a millisecond)
      req.on("socket", (socket) => {
        if (!socket.connecting) return void (connected = true);
        const timer = setTimeout(() => req.destroy(new Error(`cannot connect to ${endpoint} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
        socket.once("connect", () => {
          connected = true;
          clearTimeout(timer);
        });
        socket.once("close", () => clearTimeout(timer));
      });
      req.on("error", reject);
      req.end(data);
    });
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    const res = await this.call("/v3/kv/put", { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
    return Number(res.header.revision);
  }

  async get(key: string): Promise<KeyValue | null> {
    const res = await this.call("/v3/kv/range", { key: b64(key) });
    return res.kvs?.length ? decodeKv(res.kvs[0]) : null;
  }

  /** Every key under `prefix`, with the store's revision at the time of the read (to watch from). */
  async list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const res = await this.call("/v3/kv/range", { key: b64(prefix), range_end: rangeEnd(prefix) });
    return { kvs: (res.kvs ?? []).map(decodeKv), revision: Number(res.header.revision) };
  }

  async delete(key: string, prefix = false): Promise<number> {
    const res = await this.call("/v3/kv/deleterange", { key: b64(key), ...(prefix ? { range_end: rangeEnd(key) } : {}) });
    return Number(res.deleted ?? 0);
  }

  /** If every compare holds, `success`, else `failure`, atomically; the range answers decoded. */
  async txn(compare: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<{ succeeded: boolean; ranges: KeyValue[][]; revision: number }> {
    const { res, ambiguous } = await this.send("/v3/kv/txn", encodeTxn(compare, success, failure));
    const ranges = (res.responses ?? []).filter((r: any) => r.response_range).map((r: any) => (r.response_range.kvs ?? []).map(decodeKv));
    // a member that gave no answer applied it, and its compares then failed on the next member: a
    // claim would else be taken for another host's (and left behind)
    const succeeded = res.succeeded === true || (ambiguous && (await this.holds(success)));
    return { succeeded, ranges, revision: Number(res.header.revision) };
  }

  /** Whether the store is as `ops` leave it: each put's value there, each deleted key gone. */
  private async holds(ops: TxnOp[]): Promise<boolean> {
    if (ops.length === 0) return false;
    for (const op of ops) {
      if ("range" in op) return false;
      if ("put" in op && (await this.get(op.put.key))?.value !== op.put.value) return false;
      if ("delete" in op && (op.delete.prefix ? (await this.list(op.delete.key)).kvs.length > 0 : (await this.get(op.delete.key)) !== null)) return false;
    }
    return true;
  }

  async leaseGrant(ttl: number): Promise<string> {
    return (await this.call("/v3/lease/grant", { TTL: ttl })).ID;
  }

  /** Renews a lease once; its remaining TTL, 0 when it has expired (or never was). */
  async leaseKeepAlive(id: string): Promise<number> {
    const res = await this.call("/v3/lease/keepalive", { ID: id });
    return Number(res.result?.TTL ?? 0);
  }

  async leaseRevoke(id: string): Promise<void> {
    await this.call("/v3/lease/revoke", { ID: id });
  }

  /**
   * Watches every key under `prefix` from revision `from`. onEvents gets each batch; onEnd is called once
   * when the stream ends, with the compacted revision when `from` was compacted away (re-list then).
   */
  watch(prefix: string, from: number, onEvents: (events: WatchEvent[], revision: number) => void, onEnd: (err: Error | null, compacted: number) => void): () => void {
    const endpoint = this.endpoints[this.current];
    const [host, port] = [endpoint.slice(0, endpoint.lastIndexOf(":")), Number(endpoint.slice(endpoint.lastIndexOf(":") + 1))];
    let ended = false;
    const end = (err: Error | null, compacted = 0) => {
      if (ended) return;
      ended = true;
      req.destroy();
      // the next watch starts with the next member: this one may be the one that is gone
      if (err) this.current = (this.current + 1) % this.endpoints.length;
      onEnd(err, compacted);
    };
    const req = http.request({ host, port, path: "/v3/watch", method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        buf += d;
        let nl: number;
        // the gateway writes one JSON object per line
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          const r = JSON.parse(line).result ?? {};
          if (r.compact_revision && r.compact_revision !== "0") return end(null, Number(r.compact_revision));
          if (r.canceled) return end(new Error("watch canceled"));
          if (r.events?.length) onEvents(r.events.map((e: any) => ({ type: e.type === "DELETE" ? "DELETE" : "PUT", kv: decodeKv(e.kv) })), Number(r.header.revision));
        }
      });
      res.on("end", () => end(new Error("watch stream ended")));
      res.on("error", (err) => end(err));
    });
    // an idle watch stream carries nothing: a member cut off from this host would leave it silent for
    // ever. TCP keepalive probes (after 1 s idle; libuv probes every second, 10 times) end it with
    // ETIMEDOUT within about 11 s, and the watcher starts again through another member
    req.on("socket", (socket) => socket.setKeepAlive(true, 1000));
    req.on("error", (err) => end(err));
    req.end(JSON.stringify({ create_request: { key: b64(prefix), range_end: rangeEnd(prefix), start_revision: String(from) } }));
    return () => {
      ended = true;
      req.destroy();
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A plan's store step (plan.ts StoreStep): null when done, else why not (a compare failed: a key is taken). */
export async function storeTxn(store: string, compare: Compare[], success: TxnOp[]): Promise<string | null> {
  const etcd = new Etcd(parseStoreUrl(store)!);
  try {
    const r = await etcd.txn(compare, success);
    return r.succeeded ? null : `${compare.map((c) => c.key).join(", ")}: another host changed ${compare.length === 1 ? "it" : "them"} first`;
  } catch (err: any) {
    return err.message;
  } finally {
    etcd.close();
  }
}
