/**
 * recvmmsg/sendmmsg rings moving 1000 packets between two lab namespaces,
 * through IPv6 raw sockets and through packet sockets, every byte checked.
 */

import assert from "node:assert/strict";
import { PacketSocket } from "../../ffi/packet_socket.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { RawSocket6, RecvRing, SendRing } from "../../ffi/raw_socket.ts";
import { formatIpv6, parseIpv6, parseMac } from "../../ffi/structs.ts";
import { needs } from "../helpers/env.ts";
import { Lab, type Netns } from "../helpers/netns.ts";
import { inNetns } from "./in_netns.ts";
import { linkInfo, upPair } from "./packets.ts";

const A = "2001:db8:1::1";
const B = "2001:db8:1::2";
const PROTO = 253; // RFC 3692 experimental protocol number
const TOTAL = 1000;
const SIZE = 300;

/** Payload of packet `seq`: its number, then a pattern that depends on it. */
function fill(buf: Uint8Array, off: number, seq: number, len: number): void {
  new DataView(buf.buffer, buf.byteOffset).setUint32(off, seq);
  for (let i = 4; i < len; i++) buf[off + i] = (seq * 31 + i) & 0xff;
}

function checkPayload(data: Uint8Array, off: number, len: number): number {
  const seq = new DataView(data.buffer, data.byteOffset).getUint32(off);
  for (let i = 4; i < len; i++) {
    if (data[off + i] !== ((seq * 31 + i) & 0xff)) throw new Error(`packet ${seq}: byte ${i}`);
  }
  return seq;
}

async function pair(lab: Lab): Promise<{ a: Netns; b: Netns; macA: string; macB: string }> {
  const [a, b] = await upPair(lab, "ffibatch-a", "ffibatch-b");
  await a.ip("addr", "add", `${A}/64`, "dev", "eth0", "nodad");
  await b.ip("addr", "add", `${B}/64`, "dev", "eth0", "nodad");
  const macA = (await linkInfo(a, "eth0")).address;
  const macB = (await linkInfo(b, "eth0")).address;
  // static neighbors: no packet waits for address resolution
  await a.ip("-6", "neigh", "replace", B, "lladdr", macB, "dev", "eth0", "nud", "permanent");
  await b.ip("-6", "neigh", "replace", A, "lladdr", macA, "dev", "eth0", "nud", "permanent");
  return { a, b, macA, macB };
}

Deno.test({
  name: "batch: 1000 packets through sendmmsg/recvmmsg rings on IPv6 raw sockets",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const { a, b } = await pair(lab);
    const ifB = (await linkInfo(b, "eth0")).ifindex;
    using tx = inNetns(a, () => RawSocket6.open(PROTO));
    using rx = inNetns(b, () => RawSocket6.open(PROTO, { nonblocking: true }));
    rx.setRecvPktInfo(true);
    rx.setBufferSizes({ rcv: 4 << 20 });

    const send = new SendRing(64, 2048, { pktinfo: true });
    const recv = new RecvRing(64, 2048, { control: true });
    const dst = parseIpv6(B), src = parseIpv6(A);
    for (let i = 0; i < send.slots; i++) {
      send.setDst(i, dst);
      send.setSrc(i, src);
    }
    const seen = new Uint8Array(TOTAL);
    const dstOut = new Uint8Array(16);
    let received = 0, batches = 0;
    const drain = () => {
      for (let n = rx.recvBatch(recv); n > 0; n = rx.recvBatch(recv)) {
        batches++;
        for (let i = 0; i < n; i++) {
          assert.equal(recv.length(i), SIZE);
          assert.equal(recv.truncated(i), false);
          assert.deepEqual(recv.addrs[i], src);
          assert.ok(recv.dstAddr(i, dstOut));
          assert.deepEqual(dstOut, dst);
          assert.equal(recv.ifindex(i), ifB);
          const seq = checkPayload(recv.buffers[i], recv.headroom, SIZE);
          assert.equal(seen[seq], 0, `packet ${seq} twice`);
          seen[seq] = 1;
          received++;
        }
      }
    };

    const t0 = performance.now();
    for (let next = 0; next < TOTAL;) {
      const k = Math.min(send.slots, TOTAL - next);
      for (let i = 0; i < k; i++) {
        fill(send.buffers[i], send.headroom, next + i, SIZE);
        send.setLength(i, SIZE);
      }
      for (let done = 0; done < k;) done += tx.sendBatch(send, k - done, done);
      assert.equal(send.length(k - 1), SIZE); // msg_len of the last slot sent
      next += k;
      drain();
    }
    while (received < TOTAL && await waitReadable(rx.fd, 2000)) drain();
    const ms = performance.now() - t0;
    assert.equal(received, TOTAL, `${TOTAL - received} packets lost`);
    assert.ok(seen.every((x) => x === 1));
    assert.ok(batches < TOTAL, "recvmmsg never returned more than one packet");
    console.log(
      `  raw6 rings: ${TOTAL} × ${SIZE} B in ${ms.toFixed(1)} ms, ${batches} recvmmsg batches`,
    );
    assert.equal(formatIpv6(recv.addrs[0]), A);
  },
});

Deno.test({
  name: "batch: 1000 Ethernet frames through rings on packet sockets",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const { a, b, macA, macB } = await pair(lab);
    const ETYPE = 0x88b5;
    using tx = inNetns(a, () => PacketSocket.open("eth0", { protocol: ETYPE }));
    using rx = inNetns(b, () => PacketSocket.open("eth0", { protocol: ETYPE, nonblocking: true }));
    rx.setBufferSizes({ rcv: 4 << 20 });
    const send = new SendRing(128, 1514);
    const recv = new RecvRing(128, 1514);
    const header = new Uint8Array(14);
    header.set(parseMac(macB), 0);
    header.set(parseMac(macA), 6);
    header[12] = ETYPE >> 8, header[13] = ETYPE & 0xff;
    const FRAME = 14 + SIZE;

    const seen = new Uint8Array(TOTAL);
    let received = 0;
    const drain = () => {
      for (let n = rx.recvBatch(recv); n > 0; n = rx.recvBatch(recv)) {
        for (let i = 0; i < n; i++) {
          assert.equal(recv.length(i), FRAME);
          assert.equal(recv.packetType(i), 0); // PACKET_HOST
          assert.deepEqual(recv.buffers[i].subarray(0, 14), header);
          const seq = checkPayload(recv.buffers[i], 14, SIZE);
          assert.equal(seen[seq], 0);
          seen[seq] = 1;
          received++;
        }
      }
    };
    for (let next = 0; next < TOTAL;) {
      const k = Math.min(send.slots, TOTAL - next);
      for (let i = 0; i < k; i++) {
        send.buffers[i].set(header);
        fill(send.buffers[i], 14, next + i, SIZE);
        send.setLength(i, FRAME); // no destination: the socket's binding
      }
      for (let done = 0; done < k;) done += tx.sendBatch(send, k - done, done);
      next += k;
      drain();
    }
    while (received < TOTAL && await waitReadable(rx.fd, 2000)) drain();
    assert.equal(received, TOTAL, `${TOTAL - received} frames lost`);
  },
});
