import assert from "node:assert/strict";
import fc from "fast-check";
import { onesComplementSum, upperLayerChecksum } from "../wire/checksum.ts";
import {
  copyAndSum,
  copyBytes,
  finishChecksum,
  fold,
  PacketMemory,
  pseudoSum,
  sum16,
  transportChecksumOk,
} from "./checksum.ts";
import { tcpSegment } from "../../test/tunnel/tcp_packets.ts";

/** The reference: src/wire's byte-at-a-time sum (independent code), folded. */
function refSum(b: Uint8Array): number {
  return onesComplementSum(b);
}

Deno.test("sum16: equals the byte-wise RFC 1071 sum at every alignment and length", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 3000 }),
      fc.nat(11),
      (bytes, pad) => {
        const m = new PacketMemory(new ArrayBuffer(pad + bytes.length + 8));
        m.u8.set(bytes, pad);
        assert.equal(fold(sum16(m, pad, bytes.length)), refSum(bytes));
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("sum16: a 64 KiB buffer of 0xff bytes (largest sums) folds exactly", () => {
  const n = 65536 + 3;
  const m = new PacketMemory(new ArrayBuffer(n + 8));
  m.u8.fill(0xff);
  for (const off of [0, 1, 2, 3]) {
    assert.equal(fold(sum16(m, off, n)), refSum(m.u8.subarray(off, off + n)));
  }
});

Deno.test("copyAndSum / copyBytes: copy exactly and sum the copy, any alignment", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 2000 }),
      fc.nat(7),
      fc.nat(7),
      (bytes, from, to) => {
        const src = new PacketMemory(new ArrayBuffer(from + bytes.length + 8));
        src.u8.set(bytes, from);
        const dst = new PacketMemory(new ArrayBuffer(to + bytes.length + 16));
        dst.u8.fill(0xaa);
        const s = copyAndSum(src, from, dst, to, bytes.length);
        assert.deepEqual(dst.u8.subarray(to, to + bytes.length), bytes);
        assert.equal(dst.u8[to + bytes.length], 0xaa, "wrote past the end");
        if (to > 0) assert.equal(dst.u8[to - 1], 0xaa, "wrote before the start");
        assert.equal(fold(s), refSum(bytes));
        const dst2 = new PacketMemory(new ArrayBuffer(to + bytes.length + 16));
        copyBytes(src, from, dst2, to, bytes.length);
        assert.deepEqual(dst2.u8.subarray(to, to + bytes.length), bytes);
      },
    ),
    { numRuns: 300 },
  );
});

const SRC = "2001:db8:2000::10";
const DST = "2001:db8:2000::2";

Deno.test("finishChecksum: completes a CHECKSUM_PARTIAL TCP segment like the kernel", () => {
  const pkt = tcpSegment({ src: SRC, dst: DST, seq: 1, ack: 2, payload: new Uint8Array(1001) });
  pkt.subarray(60).forEach((_, i, a) => a[i] = (i * 13) & 0xff);
  const m = new PacketMemory(new ArrayBuffer(pkt.length + 16));
  m.u8.set(pkt, 8);
  // The kernel leaves the folded pseudo-header sum in the checksum field.
  const ps = fold(pseudoSum(m, 8, pkt.length - 40, 6));
  m.u8[8 + 56] = ps >>> 8;
  m.u8[8 + 57] = ps & 0xff;
  assert.ok(finishChecksum(m, 8 + 40, 8 + pkt.length, 8 + 56));
  const out = m.u8.subarray(8, 8 + pkt.length);
  assert.equal(upperLayerChecksum(SRC, DST, 6, out.subarray(40)), 0);
  assert.ok(transportChecksumOk(m, 8, 48, 8 + pkt.length, 6));
  out[100] ^= 1;
  assert.ok(!transportChecksumOk(m, 8, 48, 8 + pkt.length, 6));
  // Out of range: nothing written.
  assert.ok(!finishChecksum(m, 8 + 40, 8 + 60, 8 + 59));
  assert.ok(!finishChecksum(m, 8 + 40, m.u8.length + 1, 8 + 56));
});

Deno.test("finishChecksum: a UDP checksum that computes to 0 is sent as 0xffff", () => {
  // Find a payload byte pair that makes the complement 0 (sum 0xffff): solve for it.
  const m = new PacketMemory(new ArrayBuffer(128));
  const at = 8;
  const b = m.u8;
  b[at] = 0x60;
  b[at + 6] = 17;
  b.set([0x20, 0x01, 0x0d, 0xb8], at + 8);
  b.set([0x20, 0x01, 0x0d, 0xb8], at + 24);
  const udp = at + 40;
  const len = 8 + 2;
  b[udp + 5] = len;
  b[at + 5] = len;
  const ps = fold(pseudoSum(m, at, len, 17));
  b[udp + 6] = ps >>> 8;
  b[udp + 7] = ps & 0xff;
  // Choose the payload word so that the total folds to 0xffff.
  const without = fold(sum16(m, udp, 8));
  const need = (0xffff - without) & 0xffff;
  b[udp + 8] = need >>> 8;
  b[udp + 9] = need & 0xff;
  assert.equal(fold(sum16(m, udp, len)), 0xffff);
  assert.ok(finishChecksum(m, udp, udp + len, udp + 6));
  assert.equal((b[udp + 6] << 8) | b[udp + 7], 0xffff);
});
