/**
 * Test driver: UDP endpoints for the tunnel tests (a correspondent node's view).
 *
 * Modes (JSON in argv[0]):
 * - `{"mode":"sweep","dst":…,"port":…,"from":1,"to":1452}`: for every payload size, sends a
 *   datagram with a size-specific pattern and waits for the same bytes back (3 tries, 1 s each).
 *   Prints `SWEEP {"ok":n,"bad":[sizes…]}`.
 * - `{"mode":"listen","port":…}`: prints `GOT <from> <len> <hex>` per datagram.
 * - `{"mode":"echo","port":…}`: a UDP echo server; prints `READY`.
 * - `{"mode":"tcp-echo","port":…}`: a TCP echo server; prints `READY`.
 * - `{"mode":"tcp-client","dst":…,"port":…,"bytes":…}`: sends `bytes` of a pattern over one TCP
 *   connection while reading the echo; prints `TCP {"sent":…,"matched":…,"ms":…}`.
 * - `{"mode":"blast","dst":…,"port":…,"size":1400,"seconds":2}`: sendmmsg in batches of 64 on
 *   a connected socket; prints `BLAST <packets>`.
 *
 * @module
 */

import dgram from "node:dgram";
import { AF_INET6, SOCK_DGRAM } from "../../ffi/constants.ts";
import { check, libc } from "../../ffi/libc.ts";
import { openSocket, sendBatch, SendRing } from "../../ffi/raw_socket.ts";
import { encodeSockaddrIn6, SOCKADDR_IN6 } from "../../ffi/structs.ts";
import { hex, pattern } from "./packets.ts";

const cfg = JSON.parse(Deno.args[0]) as {
  mode: "sweep" | "listen" | "blast" | "echo" | "tcp-echo" | "tcp-client";
  bytes?: number;
  dst?: string;
  port: number;
  from?: number;
  to?: number;
  size?: number;
  seconds?: number;
};

if (cfg.mode === "echo") {
  const s = dgram.createSocket({ type: "udp6" });
  s.on("message", (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
  s.bind(cfg.port, "::", () => console.log("READY"));
} else if (cfg.mode === "tcp-echo") {
  const listener = Deno.listen({ hostname: "::", port: cfg.port });
  console.log("READY");
  for await (const conn of listener) {
    conn.readable.pipeTo(conn.writable).catch(() => {});
  }
} else if (cfg.mode === "tcp-client") {
  const t0 = performance.now();
  const total = cfg.bytes ?? 1 << 20;
  const data = pattern(total, 7);
  const conn = await Deno.connect({ hostname: cfg.dst!, port: cfg.port });
  const writing = (async () => {
    const w = conn.writable.getWriter();
    for (let off = 0; off < total; off += 65536) await w.write(data.subarray(off, off + 65536));
  })();
  let got = 0;
  let matched = 0;
  const r = conn.readable.getReader();
  while (got < total) {
    const { value, done } = await r.read();
    if (done) break;
    for (let i = 0; i < value.length; i++) if (value[i] === data[got + i]) matched++;
    got += value.length;
  }
  await writing;
  conn.close();
  console.log(
    `TCP ${JSON.stringify({ sent: total, got, matched, ms: Math.round(performance.now() - t0) })}`,
  );
} else if (cfg.mode === "listen") {
  const s = dgram.createSocket({ type: "udp6" });
  s.on("message", (msg, rinfo) => {
    console.log(`GOT ${rinfo.address} ${msg.length} ${hex(new Uint8Array(msg))}`);
  });
  s.bind(cfg.port, "::", () => console.log("READY"));
} else if (cfg.mode === "sweep") {
  const s = dgram.createSocket({ type: "udp6" });
  await new Promise<void>((r) => s.bind(0, "::", () => r()));
  let waiting: ((m: Uint8Array) => void) | null = null;
  s.on("message", (msg) => waiting?.(new Uint8Array(msg)));
  const ok: number[] = [];
  const bad: number[] = [];
  for (let size = cfg.from ?? 1; size <= (cfg.to ?? 1452); size++) {
    const payload = pattern(size);
    let good = false;
    for (let attempt = 0; attempt < 3 && !good; attempt++) {
      const got = new Promise<Uint8Array | null>((resolve) => {
        const t = setTimeout(() => resolve(null), 1000);
        waiting = (m) => {
          if (m.length !== size) return; // a late echo of an earlier size
          clearTimeout(t);
          resolve(m);
        };
      });
      s.send(payload, cfg.port, cfg.dst!);
      const m = await got;
      good = m !== null && m.every((b, i) => b === payload[i]);
    }
    (good ? ok : bad).push(size);
  }
  console.log(`SWEEP ${JSON.stringify({ ok: ok.length, bad })}`);
  s.close();
} else {
  const fd = openSocket(AF_INET6, SOCK_DGRAM, 17, { label: "socket(udp)" });
  const sa = new Uint8Array(SOCKADDR_IN6.SIZE);
  encodeSockaddrIn6(new DataView(sa.buffer), 0, { addr: cfg.dst!, port: cfg.port });
  check("connect", libc().connect(fd, sa, sa.length));
  const size = cfg.size ?? 1400;
  const ring = new SendRing(64, size);
  for (let i = 0; i < 64; i++) {
    ring.buffers[i].set(pattern(size, i));
    ring.setLength(i, size);
    ring.clearDst(i);
  }
  let packets = 0;
  const end = performance.now() + (cfg.seconds ?? 2) * 1000;
  while (performance.now() < end) {
    try {
      packets += sendBatch(fd, ring, 64);
    } catch { /* ECONNREFUSED from an ICMP error: keep going */ }
  }
  console.log(`BLAST ${packets}`);
  libc().close(fd);
}
