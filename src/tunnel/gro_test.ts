import assert from "node:assert/strict";
import fc from "fast-check";
import { upperLayerChecksum } from "../wire/checksum.ts";
import { streamBytes, TCP, type TcpFields, tcpSegment } from "../../test/tunnel/tcp_packets.ts";
import { finishChecksum, fold, PacketMemory, pseudoSum } from "./checksum.ts";
import { groMergedGso, mergedSegmentSize, TcpCoalescer } from "./gro.ts";
import { GsoSplitter } from "./gso.ts";
import { GSO, VNET_F_NEEDS_CSUM, VNET_HDR_LEN } from "./vnet.ts";

const SRC = "2001:db8:2000::2";
const DST = "2001:db8:2000::10";
const STRIDE = 65536 + 128;
const IP = 40; // a RecvRing slot's IPv6 header: after 40 bytes of headroom
const LINK = 14; // a tap: Ethernet header

interface Unit {
  /** The IPv6 packet as it would be written (after the link header). */
  packet: Uint8Array;
  segments: number;
  vnet: {
    flags: number;
    gsoType: number;
    hdrLen: number;
    gsoSize: number;
    start: number;
    off: number;
  };
}

/** Runs one batch through a coalescer, each packet in its own slot; returns the units. */
function coalesce(packets: Uint8Array[], capacity = 65535): Unit[] {
  const m = new PacketMemory(new ArrayBuffer(STRIDE * Math.max(1, packets.length)));
  m.u8.fill(0x5a);
  const co = new TcpCoalescer(m, {
    maxUnits: Math.max(1, packets.length),
    capacity,
    linkHeader: LINK,
  });
  co.reset();
  packets.forEach((p, k) => {
    m.u8.set(p, k * STRIDE + IP);
    co.add(k * STRIDE + IP, p.length, k);
  });
  co.finish();
  const units: Unit[] = [];
  for (let u = 0; u < co.units; u++) {
    const off = co.unitOffset[u];
    assert.equal(co.unitTag[u], (off - IP) / STRIDE, "the tag is the first packet's");
    const h = off - LINK - VNET_HDR_LEN;
    const b = m.u8;
    const u16 = (at: number) => b[h + at] | (b[h + at + 1] << 8);
    units.push({
      packet: b.slice(off, off + co.unitLength[u]),
      segments: co.unitSegments[u],
      vnet: {
        flags: b[h],
        gsoType: b[h + 1],
        hdrLen: u16(2),
        gsoSize: u16(4),
        start: u16(6),
        off: u16(8),
      },
    });
  }
  return units;
}

const NO_VNET = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, start: 0, off: 0 };

/** Consecutive segments of one flow (seq from `seq0`), `sizes` payload bytes each. */
function flow(sizes: number[], over: Partial<TcpFields> = {}, seq0 = 1000): Uint8Array[] {
  let seq = seq0;
  return sizes.map((n) => {
    const p = tcpSegment({
      src: SRC,
      dst: DST,
      seq,
      ack: 77,
      payload: streamBytes(seq, n),
      ...over,
    });
    seq += n;
    return p;
  });
}

/** What the kernel does with a NEEDS_CSUM packet: finish the checksum; then verify it. */
function kernelChecksumOk(u: Unit): boolean {
  const m = new PacketMemory(new ArrayBuffer(u.packet.length + 8));
  m.u8.set(u.packet, 0);
  const start = u.vnet.start - LINK;
  assert.ok(finishChecksum(m, start, u.packet.length, start + u.vnet.off));
  return upperLayerChecksum(SRC, DST, 6, m.u8.subarray(40, u.packet.length)) === 0;
}

Deno.test("TcpCoalescer: in-order segments of one flow become one GSO_TCPV6 packet", () => {
  const sizes = [1428, 1428, 1428, 1428, 1000];
  const segs = flow(sizes, { options: new Uint8Array([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]) });
  segs[4].set( // the last one pushes
    tcpSegment({
      src: SRC,
      dst: DST,
      seq: 1000 + 4 * 1428,
      ack: 77,
      flags: TCP.ACK | TCP.PSH,
      options: new Uint8Array([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]),
      payload: streamBytes(1000 + 4 * 1428, 1000),
    }),
  );
  const units = coalesce(segs);
  assert.equal(units.length, 1);
  const u = units[0];
  assert.equal(u.segments, 5);
  const total = sizes.reduce((a, b) => a + b);
  assert.equal(u.packet.length, 40 + 32 + total);
  assert.equal((u.packet[4] << 8) | u.packet[5], 32 + total, "payload length");
  assert.equal(u.packet[53], TCP.ACK | TCP.PSH, "PSH of the last segment");
  assert.deepEqual(u.packet.subarray(72), streamBytes(1000, total));
  assert.deepEqual(u.vnet, {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: GSO.TCPV6,
    hdrLen: LINK + 72,
    gsoSize: 1428,
    start: LINK + 40,
    off: 16,
  });
  assert.ok(kernelChecksumOk(u), "finishing the partial checksum gives a valid packet");
});

Deno.test("TcpCoalescer: what must not merge passes through unchanged, in order", () => {
  const base = flow([1000, 1000]);
  type Case = [string, (second: Uint8Array, first: Uint8Array) => Uint8Array];
  const reseg = (o: Partial<TcpFields>) => () =>
    tcpSegment({ src: SRC, dst: DST, seq: 2000, ack: 77, payload: streamBytes(2000, 1000), ...o });
  const cases: Case[] = [
    ["another port", reseg({ sport: 40001 })],
    ["a sequence gap", reseg({ seq: 2001 })],
    ["another ACK number", reseg({ ack: 78 })],
    ["SYN", reseg({ flags: TCP.SYN | TCP.ACK })],
    ["FIN", reseg({ flags: TCP.FIN | TCP.ACK })],
    ["RST", reseg({ flags: TCP.RST | TCP.ACK })],
    ["URG", reseg({ flags: TCP.URG | TCP.ACK })],
    ["ECE", reseg({ flags: TCP.ECE | TCP.ACK })],
    ["CWR", reseg({ flags: TCP.CWR | TCP.ACK })],
    ["no ACK flag", reseg({ flags: 0 })],
    ["another window", reseg({ window: 513 })],
    ["other options", reseg({ options: new Uint8Array([1, 1, 1, 1]) })],
    ["another hop limit", reseg({ hopLimit: 63 })],
    ["another flow label", reseg({ flow: 5 })],
    [
      "a larger payload",
      () =>
        tcpSegment({ src: SRC, dst: DST, seq: 2000, ack: 77, payload: streamBytes(2000, 1001) }),
    ],
    ["a bad checksum", (s) => {
      const c = s.slice();
      c[100] ^= 0x40;
      return c;
    }],
    ["a pure ACK", reseg({ payload: new Uint8Array(0) })],
  ];
  for (const [name, make] of cases) {
    const second = make(base[1], base[0]);
    const units = coalesce([base[0], second]);
    assert.equal(units.length, 2, name);
    assert.deepEqual(units[0].packet, base[0], `${name}: first unchanged`);
    assert.deepEqual(units[1].packet, second, `${name}: second unchanged`);
    assert.deepEqual(units[0].vnet, NO_VNET, name);
    assert.deepEqual(units[1].vnet, NO_VNET, name);
  }
  // A bad first segment stays alone; the next two merge after it.
  const three = flow([1000, 1000, 1000]);
  three[0][90] ^= 1;
  const u = coalesce(three);
  assert.deepEqual(u.map((x) => x.segments), [1, 2]);
  assert.deepEqual(u[0].packet, three[0]);
  assert.ok(kernelChecksumOk(u[1]));
});

Deno.test("TcpCoalescer: flows interleave without reordering any of them", () => {
  const a = flow([1200, 1200, 1200]);
  const b = flow([1200, 1200], { sport: 50000 }, 9000);
  const units = coalesce([a[0], b[0], a[1], b[1], a[2]]);
  assert.deepEqual(units.map((u) => u.segments), [3, 2]);
  assert.equal(new DataView(units[0].packet.buffer).getUint32(44), 1000);
  assert.deepEqual(units[1].packet.subarray(60), streamBytes(9000, 2400));
  // A pure ACK of flow a in between: a[1] must not jump ahead of it.
  const ack = tcpSegment({ src: SRC, dst: DST, seq: 2200, ack: 77, payload: new Uint8Array(0) });
  const v = coalesce([a[0], ack, a[1], a[2]]);
  assert.deepEqual(v.map((u) => u.segments), [1, 1, 2]);
  assert.deepEqual(v[1].packet, ack);
  // PSH ends a packet; a shorter segment ends it too.
  const p = flow([1000, 1000, 1000]);
  const pushed = tcpSegment({
    src: SRC,
    dst: DST,
    seq: 1000,
    ack: 77,
    flags: TCP.ACK | TCP.PSH,
    payload: streamBytes(1000, 1000),
  });
  assert.deepEqual(coalesce([pushed, p[1], p[2]]).map((u) => u.segments), [1, 2]);
  const short = flow([1000, 600, 600]);
  assert.deepEqual(coalesce(short).map((u) => u.segments), [2, 1]);
  // Capacity: 40 + 20 + 2 × 1428 fits in 3000 bytes, a third segment does not.
  assert.deepEqual(coalesce(flow([1428, 1428, 1428]), 3000).map((u) => u.segments), [2, 1]);
  // Not TCP at all (UDP): untouched.
  const udp = flow([100])[0].slice();
  udp[6] = 17;
  assert.deepEqual(coalesce([udp, udp]).map((u) => u.segments), [1, 1]);
});

Deno.test("segment then coalesce: the byte stream and the segments survive (property)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 60_000 }),
      fc.integer({ min: 536, max: 1440 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.boolean(),
      fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
      (size, mss, seq, withTs, drop) => {
        // A super-packet as a guest's TCP hands it over, split the way the data path sends it…
        const options = withTs ? new Uint8Array([1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8]) : undefined;
        const hdr = 60 + (options?.length ?? 0);
        const sp = tcpSegment({
          src: SRC,
          dst: DST,
          seq,
          ack: 5,
          flags: TCP.ACK | TCP.PSH,
          options,
          payload: streamBytes(seq, size),
          noChecksum: true,
        });
        const src = new PacketMemory(new ArrayBuffer(24 + sp.length + 8));
        src.u8.set(sp, 24);
        const split = new GsoSplitter();
        const n = split.prepare(src, 24, sp.length, GSO.TCPV6, mss);
        const out = new PacketMemory(new ArrayBuffer(n * 2048));
        const segs = Array.from({ length: n }, (_, i) => {
          const l = split.emit(i, out, i * 2048);
          return out.u8.slice(i * 2048, i * 2048 + l);
        });
        // …some lost on the way, the rest received in one batch and coalesced.
        const kept = segs.filter((_, i) => !drop[i % 64] || i === 0);
        const units = coalesce(kept);
        let k = 0;
        for (const u of units) {
          const mine = kept.slice(k, k + u.segments);
          k += u.segments;
          if (u.segments === 1) {
            assert.deepEqual(u.packet, mine[0]);
            continue;
          }
          // The merged payload is exactly its segments' payloads…
          const joined = mine.map((s) => s.subarray(hdr));
          assert.deepEqual(
            u.packet.subarray(hdr),
            new Uint8Array(joined.flatMap((s) => [...s])),
          );
          assert.ok(kernelChecksumOk(u));
          // …and splitting it again by its gso_size (what the kernel may do) gives them back.
          const m = new PacketMemory(new ArrayBuffer(24 + u.packet.length + 8));
          m.u8.set(u.packet, 24);
          const again = new GsoSplitter();
          assert.equal(
            again.prepare(m, 24, u.packet.length, u.vnet.gsoType, u.vnet.gsoSize),
            u.segments,
          );
          const o = new PacketMemory(new ArrayBuffer(2048));
          for (let i = 0; i < u.segments; i++) {
            const l = again.emit(i, o, 0);
            assert.deepEqual(o.u8.slice(0, l), mine[i]);
          }
        }
        assert.equal(k, kept.length);
      },
    ),
    { numRuns: 60 },
  );
});

/** A packet as a NIC's GRO leaves it: segments' payloads joined, checksum field partial. */
function nicMerged(sizes: number[], options?: Uint8Array): Uint8Array {
  const total = sizes.reduce((a, b) => a + b, 0);
  const p = tcpSegment({
    src: SRC,
    dst: DST,
    seq: 1000,
    ack: 77,
    flags: TCP.ACK | TCP.PSH,
    options,
    payload: streamBytes(1000, total),
    noChecksum: true,
  });
  const m = new PacketMemory(new ArrayBuffer(p.length + 8));
  m.u8.set(p, 0);
  const ps = fold(pseudoSum(m, 0, p.length - 40, 6));
  p[56] = ps >>> 8;
  p[57] = ps & 0xff;
  return p;
}

Deno.test("groMergedGso: recognises a NIC-merged packet, not a valid or a corrupt one", () => {
  const ts = new Uint8Array([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
  for (const [opts, gso] of [[undefined, 1220], [ts, 1208]] as const) {
    const p = nicMerged([1400, 1400, 1400], opts);
    const m = new PacketMemory(new ArrayBuffer(p.length + 8));
    m.u8.set(p, 0);
    assert.equal(groMergedGso(m, 0, p.length), gso);
    assert.equal(mergedSegmentSize(20 + (opts?.length ?? 0)), gso);
  }
  const valid = flow([1400])[0];
  const vm = new PacketMemory(new ArrayBuffer(valid.length));
  vm.u8.set(valid, 0);
  assert.equal(groMergedGso(vm, 0, valid.length), 0);
  vm.u8[100] ^= 1; // corrupt, and the field is no pseudo-header sum
  assert.equal(groMergedGso(vm, 0, valid.length), 0);
});

Deno.test("TcpCoalescer: a NIC-merged packet leaves alone as GSO for the minimum MTU", () => {
  const merged = nicMerged([1400, 1400, 1400]);
  const after = flow([1400, 1400], {}, 1000 + 4200);
  const units = coalesce([flow([1000], {}, 0)[0], merged, ...after]);
  assert.deepEqual(units.map((u) => u.segments), [1, 1, 2]);
  const u = units[1];
  assert.deepEqual(u.packet, merged);
  assert.deepEqual(u.vnet, {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: GSO.TCPV6,
    hdrLen: LINK + 60,
    gsoSize: 1220,
    start: LINK + 40,
    off: 16,
  });
  assert.ok(kernelChecksumOk(u));
  // Split by that size, every segment is a valid packet that fits 1280 bytes.
  const m = new PacketMemory(new ArrayBuffer(merged.length + 32));
  m.u8.set(merged, 24);
  const split = new GsoSplitter();
  const n = split.prepare(m, 24, merged.length, GSO.TCPV6, 1220);
  assert.equal(n, Math.ceil(4200 / 1220));
  const o = new PacketMemory(new ArrayBuffer(2048));
  for (let i = 0; i < n; i++) {
    const l = split.emit(i, o, 0);
    assert.ok(l <= 1280);
    assert.equal(upperLayerChecksum(SRC, DST, 6, o.u8.subarray(40, l)), 0);
  }
  // A small merged packet (under one segment) is only NEEDS_CSUM.
  const small = coalesce([nicMerged([500, 500])])[0];
  assert.deepEqual(small.vnet, {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: GSO.NONE,
    hdrLen: LINK + 60,
    gsoSize: 0,
    start: LINK + 40,
    off: 16,
  });
  assert.ok(kernelChecksumOk(small));
});
