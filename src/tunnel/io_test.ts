import assert from "node:assert/strict";
import { AF_INET6, SOCK_DGRAM } from "../../ffi/constants.ts";
import { check, libc } from "../../ffi/libc.ts";
import { Poller } from "../../ffi/poll.ts";
import { openSocket, RecvRing, SendRing } from "../../ffi/raw_socket.ts";
import { encodeSockaddrIn6, SOCKADDR_IN6 } from "../../ffi/structs.ts";
import { ipv6PacketLength, recvNow, sendAll, type SendFailures, StopSignal } from "./io.ts";

Deno.test("ipv6PacketLength: header peek", () => {
  const p = new Uint8Array(100);
  p[0] = 0x60;
  p[4] = 0;
  p[5] = 20;
  p[6] = 17;
  assert.equal(ipv6PacketLength(p, 100), 60); // trailing bytes beyond the payload length
  assert.equal(ipv6PacketLength(p, 60), 60);
  assert.equal(ipv6PacketLength(p, 59), -1); // payload length beyond what arrived
  assert.equal(ipv6PacketLength(p, 39), -1);
  p[0] = 0x45;
  assert.equal(ipv6PacketLength(p, 100), -1); // IPv4
  p[0] = 0x6f; // traffic class bits do not matter
  assert.equal(ipv6PacketLength(p, 100), 60);
  p[5] = 0;
  p[6] = 0; // payload length 0 + Hop-by-Hop: a jumbogram
  assert.equal(ipv6PacketLength(p, 100), -1);
  p[6] = 59; // payload length 0, no next header: a bare header is fine
  assert.equal(ipv6PacketLength(p, 100), 40);
});

function udpPair(): { tx: number; rx: number; close(): void } {
  const rx = openSocket(AF_INET6, SOCK_DGRAM, 17, { label: "socket(udp rx)" });
  const sa = new Uint8Array(SOCKADDR_IN6.SIZE);
  const dv = new DataView(sa.buffer);
  // A free port on ::1 (no getsockname in the libc table: try random ones).
  for (let attempt = 0;; attempt++) {
    encodeSockaddrIn6(dv, 0, { addr: "::1", port: 20000 + Math.floor(Math.random() * 40000) });
    if (libc().bind(rx, sa, sa.length) === 0) break;
    if (attempt === 50) check("bind", -1);
  }
  const tx = openSocket(AF_INET6, SOCK_DGRAM, 17, { label: "socket(udp tx)" });
  check("connect", libc().connect(tx, sa, sa.length));
  return {
    tx,
    rx,
    close() {
      libc().close(tx);
      libc().close(rx);
    },
  };
}

Deno.test("sendAll: skips the message the kernel refuses, sends the rest", () => {
  const s = udpPair();
  try {
    const ring = new SendRing(4, 70000);
    const lengths = new Int32Array(4);
    const sizes = [100, 70000, 200, 300]; // 70000 > 65507: EMSGSIZE for UDP
    sizes.forEach((n, i) => {
      ring.clearDst(i);
      ring.buffers[i].fill(i + 1, 0, n);
      ring.setLength(i, n);
      lengths[i] = n;
    });
    const fail: SendFailures = { packets: 0, bytes: 0, errno: 0 };
    sendAll(s.tx, ring, 4, lengths, fail);
    assert.deepEqual(fail, { packets: 1, bytes: 70000, errno: 90 /* EMSGSIZE */ });
    const rring = new RecvRing(8, 2048);
    const n = recvNow(s.rx, rring);
    assert.equal(n, 3);
    assert.deepEqual([0, 1, 2].map((i) => rring.length(i)), [100, 200, 300]);
    assert.equal(rring.buffers[1][0], 3);
    assert.equal(recvNow(s.rx, rring), 0); // nothing queued: returns, does not block
  } finally {
    s.close();
  }
});

Deno.test("StopSignal: flag and eventfd wake a poll", () => {
  const stop = new StopSignal();
  try {
    const p = new Poller([stop.fd]);
    assert.equal(p.wait(0), 0);
    assert.equal(new Int32Array(stop.flag)[0], 0);
    stop.signal();
    assert.equal(p.wait(1000), 1);
    assert.equal(p.wait(0), 1); // never drained: wakes every Worker
    assert.equal(new Int32Array(stop.flag)[0], 1);
  } finally {
    stop.close();
    stop.close();
  }
});
