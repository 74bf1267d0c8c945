#!/usr/bin/env node
// Asks a DNS server from inside a container (run with `ip netns exec NAME node bench/dnsprobe.mjs …`), one
// UDP query at a time, and prints JSON:
//   latency SERVER PORT NAME COUNT   {"p50": ms, "p90": ms, "answered": n}  (an A record each time)
//   until   SERVER PORT NAME         {"ms": ms}  from the first query until NAME has an A record
import dgram from "node:dgram";

const [mode, server, port, name, count = "1000"] = process.argv.slice(2);

function query(id) {
  const labels = name.split(".").flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  // header: id, RD, one question; then QNAME, QTYPE A, QCLASS IN
  return Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

const socket = dgram.createSocket("udp4");
let id = 0;
// a server reloading its files drops queries meanwhile (no answer, and no error on an unconnected socket)
const TIMEOUT_MS = mode === "until" ? 20 : 1000;

/** One query; resolves with whether the answer holds a record, or null after TIMEOUT_MS without one. */
function ask() {
  const mine = ++id & 0xffff;
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(null), TIMEOUT_MS);
    const onMessage = (msg) => {
      if (msg.readUInt16BE(0) === mine) done((msg[3] & 15) === 0 && msg.readUInt16BE(6) > 0);
    };
    const done = (value) => {
      clearTimeout(timer);
      socket.off("message", onMessage);
      resolve(value);
    };
    socket.on("message", onMessage);
    socket.send(query(mine), Number(port), server);
  });
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
if (mode === "latency") {
  const times = [];
  let answered = 0;
  for (let i = 0; i < Number(count); i++) {
    const t0 = process.hrtime.bigint();
    if (await ask()) answered++;
    times.push(ms(t0));
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ p50: times[Math.floor(times.length / 2)], p90: times[Math.floor(times.length * 0.9)], answered }));
} else {
  const t0 = process.hrtime.bigint();
  while (!(await ask())) await new Promise((r) => setTimeout(r, 1));
  console.log(JSON.stringify({ ms: ms(t0) }));
}
socket.close();
