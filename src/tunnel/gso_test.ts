import assert from "node:assert/strict";
import fc from "fast-check";
import { upperLayerChecksum } from "../wire/checksum.ts";
import { streamBytes, TCP, tcpSegment, udpDatagram } from "../../test/tunnel/tcp_packets.ts";
import { PacketMemory } from "./checksum.ts";
import { GsoSplitter, SPLIT_ERROR } from "./gso.ts";
import { GSO } from "./vnet.ts";

const SRC = "2001:db8:2000::10";
const DST = "2001:db8:2000::2";
const IP_AT = 24; // where the data path's read buffer holds the IPv6 header
const SLOT = 2048;

function load(pkt: Uint8Array): PacketMemory {
  const m = new PacketMemory(new ArrayBuffer(IP_AT + pkt.length + 8));
  m.u8.set(pkt, IP_AT);
  return m;
}

/** Splits into fresh slots 8-aligned at 40 + i·SLOT; returns copies of the segments. */
function splitAll(src: PacketMemory, len: number, type: number, gso: number): Uint8Array[] {
  const s = new GsoSplitter();
  const n = s.prepare(src, IP_AT, len, type, gso);
  assert.ok(n > 0, `prepare: ${n}`);
  const dst = new PacketMemory(new ArrayBuffer(40 + n * SLOT));
  dst.u8.fill(0xee); // stale bytes: emit must write every header byte it relies on
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const at = 40 + i * SLOT;
    const l = s.emit(i, dst, at);
    assert.ok(l <= s.segmentLength, `segment ${i}: ${l} > ${s.segmentLength}`);
    out.push(dst.u8.slice(at, at + l));
  }
  return out;
}

const be32 = (b: Uint8Array, at: number) =>
  ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
const be16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];

Deno.test("GsoSplitter: a 64 KB TCPv6 super-packet → 46 segments (golden fields, checksums)", () => {
  // Timestamps option (NOP NOP TS): a 32-byte TCP header, as Linux sends.
  const options = new Uint8Array([1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
  const mss = 1428; // 1500 − 40 − 32
  const payload = streamBytes(0, 65535 - 40 - 32 - 40); // 65423 bytes of IPv6 payload room
  const seq0 = 0xffff_f000; // wraps inside the packet
  const superPkt = tcpSegment({
    src: SRC,
    dst: DST,
    seq: seq0,
    ack: 0x01020304,
    flags: TCP.ACK | TCP.PSH | TCP.FIN | TCP.CWR,
    window: 0x1234,
    options,
    payload,
    noChecksum: true, // as the kernel hands it over: the checksum left partial
  });
  const segs = splitAll(load(superPkt), superPkt.length, GSO.TCPV6, mss);
  const n = Math.ceil(payload.length / mss);
  assert.equal(n, 46);
  assert.equal(segs.length, n);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const s = segs[i];
    const chunk = Math.min(mss, payload.length - off);
    assert.equal(s.length, 40 + 32 + chunk, `segment ${i} length`);
    assert.equal(be16(s, 4), 32 + chunk, "payload length");
    assert.deepEqual(s.subarray(0, 4), superPkt.subarray(0, 4));
    assert.deepEqual(
      s.subarray(6, 40),
      superPkt.subarray(6, 40),
      "next header, hop limit, addresses",
    );
    assert.deepEqual(s.subarray(40, 44), superPkt.subarray(40, 44), "ports");
    assert.equal(be32(s, 44), (seq0 + off) >>> 0, `segment ${i} sequence number`);
    assert.equal(be32(s, 48), 0x01020304, "ACK number");
    assert.equal(s[52], 8 << 4, "data offset");
    const want: number = TCP.ACK | (i === 0 ? TCP.CWR : 0) | (i === n - 1 ? TCP.PSH | TCP.FIN : 0);
    assert.equal(s[53], want, `segment ${i} flags`);
    assert.equal(be16(s, 54), 0x1234, "window");
    assert.deepEqual(s.subarray(60, 72), options);
    assert.deepEqual(s.subarray(72), payload.subarray(off, off + chunk), `segment ${i} payload`);
    // Independent check: src/wire's checksum over the segment as sent sums to zero.
    assert.equal(upperLayerChecksum(SRC, DST, 6, s.subarray(40)), 0, `segment ${i} checksum`);
    off += chunk;
  }
  assert.equal(off, payload.length);
});

Deno.test("GsoSplitter: an odd segment size (unaligned copies) still gives exact segments", () => {
  const payload = streamBytes(7, 10_000);
  const pkt = tcpSegment({ src: SRC, dst: DST, seq: 5, ack: 6, payload, noChecksum: true });
  const segs = splitAll(load(pkt), pkt.length, GSO.TCPV6, 1397);
  assert.equal(segs.length, Math.ceil(10_000 / 1397));
  const joined = new Uint8Array(10_000);
  let off = 0;
  for (const s of segs) {
    assert.equal(upperLayerChecksum(SRC, DST, 6, s.subarray(40)), 0);
    assert.equal(be32(s, 44), 5 + off);
    joined.set(s.subarray(60), off);
    off += s.length - 60;
  }
  assert.deepEqual(joined, payload);
});

Deno.test("GsoSplitter: UDP (GSO_UDP_L4) segments get their own length and checksum", () => {
  const payload = streamBytes(3, 5000);
  const pkt = udpDatagram(SRC, DST, payload);
  const segs = splitAll(load(pkt), pkt.length, GSO.UDP_L4, 1200);
  assert.equal(segs.length, 5);
  let off = 0;
  for (const s of segs) {
    const chunk = Math.min(1200, 5000 - off);
    assert.equal(s.length, 48 + chunk);
    assert.equal(be16(s, 4), 8 + chunk);
    assert.equal(be16(s, 44), 8 + chunk, "UDP length");
    assert.notEqual(be16(s, 46), 0, "UDP checksum never 0");
    assert.equal(upperLayerChecksum(SRC, DST, 17, s.subarray(40)), 0);
    assert.deepEqual(s.subarray(48), payload.subarray(off, off + chunk));
    off += chunk;
  }
});

Deno.test("GsoSplitter: no payload → one segment; refusals are values", () => {
  const bare = tcpSegment({ src: SRC, dst: DST, seq: 1, ack: 1, payload: new Uint8Array(0) });
  const one = splitAll(load(bare), bare.length, GSO.TCPV6, 1000);
  assert.equal(one.length, 1);
  assert.equal(upperLayerChecksum(SRC, DST, 6, one[0].subarray(40)), 0);
  const s = new GsoSplitter();
  const pkt = tcpSegment({ src: SRC, dst: DST, seq: 1, ack: 1, payload: new Uint8Array(100) });
  const m = load(pkt);
  assert.equal(s.prepare(m, IP_AT, pkt.length, GSO.UDP_L4, 50), SPLIT_ERROR.UNSUPPORTED);
  assert.equal(s.prepare(m, IP_AT, pkt.length, GSO.TCPV4, 50), SPLIT_ERROR.UNSUPPORTED);
  assert.equal(s.prepare(m, IP_AT, pkt.length, GSO.TCPV6, 0), SPLIT_ERROR.MALFORMED);
  assert.equal(s.prepare(m, IP_AT, 50, GSO.TCPV6, 10), SPLIT_ERROR.MALFORMED);
  m.u8[IP_AT + 52] = 4 << 4; // data offset 16 bytes
  assert.equal(s.prepare(m, IP_AT, pkt.length, GSO.TCPV6, 10), SPLIT_ERROR.MALFORMED);
  m.u8[IP_AT + 52] = 5 << 4;
  m.u8[IP_AT] = 0x45;
  assert.equal(s.prepare(m, IP_AT, pkt.length, GSO.TCPV6, 10), SPLIT_ERROR.UNSUPPORTED);
  assert.equal(s.count, 0);
});

Deno.test("GsoSplitter: any payload and segment size → contiguous valid segments (property)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 20_000 }),
      fc.integer({ min: 1, max: 1440 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom(0, 12, 40),
      (size, mss, seq, optLen) => {
        const payload = streamBytes(seq, size);
        const pkt = tcpSegment({
          src: SRC,
          dst: DST,
          seq,
          ack: 9,
          flags: TCP.ACK | TCP.PSH,
          options: new Uint8Array(optLen).fill(1),
          payload,
          noChecksum: true,
        });
        const segs = splitAll(load(pkt), pkt.length, GSO.TCPV6, mss);
        const hdr = 60 + optLen;
        let off = 0;
        segs.forEach((s, i) => {
          assert.equal(be32(s, 44), (seq + off) >>> 0);
          assert.equal(s[53] & TCP.PSH, i === segs.length - 1 ? TCP.PSH : 0);
          assert.equal(upperLayerChecksum(SRC, DST, 6, s.subarray(40)), 0);
          assert.deepEqual(s.subarray(hdr), payload.subarray(off, off + s.length - hdr));
          off += s.length - hdr;
        });
        assert.equal(off, size);
      },
    ),
    { numRuns: 150 },
  );
});
