/**
 * Test driver: the far end of an IPv6-in-IPv6 tunnel (RFC 2473) on a raw IPPROTO_IPV6 socket,
 * written without the code under test (plain `ffi/` sockets).
 *
 * Modes (JSON in argv[0]):
 * - `{"mode":"echo","peer":HA}`: every inner packet from outer source `peer` is sent back with
 *   inner source/destination (and UDP ports) swapped, from the outer destination it came to.
 *   Prints `ECHO <len> <outer dst> <outer hop limit> <hex of the first 64 inner bytes>` first.
 * - `{"mode":"sink","peer":HA}`: counts inner packets from `peer`; prints `SINK <packets>
 *   <bytes>` every 200 ms.
 * - `{"mode":"inject","bind":SRC,"peer":HA,"hex":…}`: sends one inner packet, exits.
 * - `{"mode":"blast","bind":SRC,"peer":HA,"hex":…,"seconds":2}`: sends that inner packet in
 *   batches of 64 for `seconds`, prints `BLAST <packets>`.
 *
 * @module
 */

import { IPPROTO_IPV6 } from "../../ffi/constants.ts";
import { Poller } from "../../ffi/poll.ts";
import { RawSocket6, recvBatch, RecvRing, sendBatch, SendRing } from "../../ffi/raw_socket.ts";
import { parseIPv6 } from "../../src/wire/addr.ts";
import { hex, unhex } from "./packets.ts";

const cfg = JSON.parse(Deno.args[0]) as {
  mode: "echo" | "sink" | "inject" | "blast";
  peer: string;
  bind?: string;
  hex?: string;
  seconds?: number;
};

const sock = RawSocket6.open(IPPROTO_IPV6);
sock.setBufferSizes({ rcv: 8 << 20, snd: 8 << 20 });
if (cfg.bind) sock.bind(cfg.bind);

function swap(p: Uint8Array, a: number, b: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const t = p[a + i];
    p[a + i] = p[b + i];
    p[b + i] = t;
  }
}

if (cfg.mode === "echo") {
  sock.setRecvPktInfo(true);
  sock.setRecvHopLimit(true);
  const buf = new Uint8Array(65536);
  console.log("READY");
  for (;;) {
    const info = sock.recv(buf);
    if (info === null || info.src !== cfg.peer) continue;
    const p = buf.subarray(0, info.length);
    console.log(`ECHO ${info.length} ${info.dst} ${info.hopLimit} ${hex(p.subarray(0, 64))}`);
    swap(p, 8, 24, 16);
    if (p[6] === 17 && p.length >= 48) swap(p, 40, 42, 2);
    sock.send(p, { dst: info.src, src: info.dst });
  }
} else if (cfg.mode === "sink") {
  const ring = new RecvRing(64, 65536);
  const poller = new Poller([sock.fd]);
  const peer = parseIPv6(cfg.peer);
  let packets = 0, bytes = 0, last = performance.now();
  console.log("READY");
  for (;;) {
    if (poller.wait(50) > 0) {
      const n = recvBatch(sock.fd, ring);
      for (let i = 0; i < n; i++) {
        let same = true;
        for (let k = 0; k < 16; k++) if (ring.addrs[i][k] !== peer[k]) same = false;
        if (!same) continue;
        packets++;
        bytes += ring.length(i);
      }
    }
    const now = performance.now();
    if (now - last >= 200) {
      console.log(`SINK ${packets} ${bytes}`);
      last = now;
    }
  }
} else {
  const pkt = unhex(cfg.hex!);
  if (cfg.mode === "inject") {
    sock.send(pkt, { dst: cfg.peer });
    console.log("SENT");
  } else {
    const ring = new SendRing(64, pkt.length);
    const peer = parseIPv6(cfg.peer);
    for (let i = 0; i < 64; i++) {
      ring.buffers[i].set(pkt);
      ring.setLength(i, pkt.length);
      ring.setDst(i, peer);
    }
    let packets = 0;
    const end = performance.now() + (cfg.seconds ?? 2) * 1000;
    while (performance.now() < end) packets += sendBatch(sock.fd, ring, 64);
    console.log(`BLAST ${packets}`);
  }
  sock.close();
}
