import fc from "fast-check";
import assert from "node:assert/strict";
import { IPPROTO } from "./addr.ts";
import {
  buildBindingAck,
  buildBindingUpdate,
  buildEthernetFrame,
  buildIcmpv6Packet,
  buildMobilityPacket,
  parsePacket,
} from "./packet.ts";
import type { BaRepr, BuRepr } from "./mobility.ts";
import {
  arbIcmpv6,
  arbIPv6,
  arbMobility,
  arbMobilityOption,
  COA,
  COA_HEX,
  HA,
  HA_HEX,
  hex,
  HOA,
  HOA_HEX,
  homeBu,
  mutated,
  parseNoThrow,
  randomBytes,
  rec,
} from "./test_util.ts";

const BU: BuRepr = { type: "bu", ...homeBu(13, 15) };
const BA: BaRepr = {
  type: "ba",
  status: 0,
  flags: { key: false, mobileRouter: false, proxy: false },
  sequence: 13,
  lifetime: 15,
  options: [],
};

// Packet 1 of the seed capture: "IP6 2001:db8:3000::3 > 2001:db8:2000::1: DSTOPT mobility: BU
// seq #=13 AH lifetime=60". tshark 4.0 dissects these bytes with the same fields.
const SEED_BU = hex(`
  60000000 0038 3c 40  ${COA_HEX} ${HA_HEX}    # IPv6: 56 octets, DestOpts, hop limit 64
  87 02 01 02 0000 c9 10 ${HOA_HEX}             # DestOpts: PadN 4, HAO at 8n+6
  3b 03 05 00 01e9 000d c000 000f 0100 0310 ${COA_HEX}   # MH BU, sum over HoA -> HA
`);

// Packet 2: "IP6 2001:db8:2000::1 > 2001:db8:3000::3: srcrt (len=2, type=2, segleft=1,
// [0]2001:db8:2000::10) mobility: BA status=0 seq #=13 lifetime=60".
const SEED_BA = hex(`
  60000000 0028 2b 40  ${HA_HEX} ${COA_HEX}     # IPv6: 40 octets, Routing, hop limit 64
  87 02 02 01 00000000 ${HOA_HEX}               # RH2, segments left 1
  3b 01 06 00 21c6 0000 000d 000f 0102 0000     # MH BA, sum over HA -> HoA
`);

Deno.test("packet: seed Binding Update, built and parsed", () => {
  const pkt = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu: BU });
  assert.deepEqual(pkt, SEED_BU);
  // `type` may be left out of the BU.
  const { type: _, ...untyped } = BU;
  assert.deepEqual(
    buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu: untyped }),
    SEED_BU,
  );
  const r = parsePacket(SEED_BU);
  assert.ok(r.ok);
  assert.deepEqual(r.value.ipv6, {
    src: COA,
    dst: HA,
    nextHeader: IPPROTO.DSTOPTS,
    hopLimit: 64,
    payloadLength: 56,
    trafficClass: 0,
    flowLabel: 0,
  });
  assert.equal(r.value.homeAddress, HOA);
  assert.equal(r.value.rh2, undefined);
  assert.equal(r.value.upperProtocol, IPPROTO.MH);
  assert.deepEqual(r.value.upper, SEED_BU.subarray(64));
  assert.deepEqual(r.value.mh, BU);
});

Deno.test("packet: seed Binding Acknowledgement, built and parsed", () => {
  const pkt = buildBindingAck({ homeAgent: HA, careOf: COA, homeAddress: HOA, ba: BA });
  assert.deepEqual(pkt, SEED_BA);
  const r = parsePacket(SEED_BA);
  assert.ok(r.ok);
  assert.deepEqual(r.value.rh2, { nextHeader: IPPROTO.MH, segmentsLeft: 1, homeAddress: HOA });
  assert.equal(r.value.homeAddress, undefined);
  assert.deepEqual(r.value.mh, BA);
});

Deno.test("packet: RH2 already processed (segments left 0) sums over the IPv6 destination", () => {
  // What a MIP6 kernel hands up: addresses swapped, segments left 0, dst = HoA.
  const p = SEED_BA.slice();
  p.set(hex(HOA_HEX), 24);
  p.set(hex(COA_HEX), 48);
  p[43] = 0;
  assert.ok(parsePacket(p).ok);
  // With a segment left the HoA in the RH2 (now the CoA) would be used: checksum fails.
  p[43] = 1;
  assert.deepEqual(parsePacket(p), { ok: false, kind: "checksum", offset: 68, field: "checksum" });
});

Deno.test("packet: Binding Error, ICMPv6 and Ethernet builders", () => {
  const be = buildMobilityPacket({
    src: HA,
    dst: COA,
    mh: { type: "be", status: 1, homeAddress: HOA },
  });
  assert.deepEqual(
    be,
    hex(`60000000 0018 87 40 ${HA_HEX} ${COA_HEX} 3b 02 07 00 c31e 0100 ${HOA_HEX}`),
  );
  const na = buildIcmpv6Packet({
    src: HA,
    dst: HOA,
    hopLimit: 255,
    icmp: {
      type: "neighborAdvertisement",
      router: true,
      solicited: true,
      override: true,
      target: HA,
      options: [{ type: "targetLinkLayer", mac: "52:54:00:00:00:01" }],
    },
  });
  assert.deepEqual(
    na,
    hex(
      `60000000 0020 3a ff ${HA_HEX} ${HOA_HEX} 88 00 5a10 e0000000 ${HA_HEX} 02 01 525400000001`,
    ),
  );
  const r = parsePacket(na);
  assert.ok(r.ok && r.value.icmp?.type === "neighborAdvertisement");
  assert.equal(r.value.ipv6.hopLimit, 255);
  const frame = buildEthernetFrame({ dst: "52:54:00:00:00:10", src: "52:54:00:00:00:01" }, na);
  assert.deepEqual(frame.subarray(0, 14), hex("525400000010 525400000001 86dd"));
  assert.deepEqual(frame.subarray(14), na);
});

Deno.test("packet: ICMPv6 behind a HAO is summed over the home address", () => {
  const echo = buildIcmpv6Packet({
    src: HOA,
    dst: HA,
    hopLimit: 64,
    icmp: { type: "echoRequest", identifier: 1, sequence: 2, data: hex("aabbcc") },
  });
  // Re-frame it as CoA -> HA with a HAO carrying the HoA: the checksum stays valid.
  const dopts = hex(`3a 02 01 02 0000 c9 10 ${HOA_HEX}`);
  const pkt = new Uint8Array(echo.length + 24);
  pkt.set(echo.subarray(0, 40));
  pkt.set(dopts, 40);
  pkt.set(echo.subarray(40), 64);
  pkt.set(hex(COA_HEX), 8);
  pkt[5] += 24;
  pkt[6] = IPPROTO.DSTOPTS;
  const r = parsePacket(pkt);
  assert.ok(r.ok);
  assert.equal(r.value.homeAddress, HOA);
  assert.equal(r.value.icmp?.type, "echoRequest");
});

Deno.test("packet: failures are rebased onto the packet, Parameter Problem carries it", () => {
  // An unknown destination option of action 10 (always answer).
  const pkt = SEED_BU.slice();
  pkt[40 + 6] = 0x8a; // the HAO's type byte: now unknown, action 10
  assert.deepEqual(parsePacket(pkt), {
    ok: false,
    kind: "unsupported",
    offset: 46,
    field: "option",
    reply: { type: "paramProblem", code: 2, pointer: 46, invoking: pkt },
  });
  // Action 11: answered to a unicast destination, not to a multicast one (RFC 8200 §4.2).
  pkt[46] = 0xca;
  const uni = parsePacket(pkt);
  assert.ok(!uni.ok && uni.reply?.type === "paramProblem" && uni.reply.pointer === 46);
  const multi = pkt.slice();
  multi.set(hex("ff020000 00000000 00000000 00000001"), 24);
  assert.deepEqual(parsePacket(multi), {
    ok: false,
    kind: "unsupported",
    offset: 46,
    field: "option",
  });
  // MH Payload Proto other than 59: Parameter Problem code 0 at the field (RFC 6275 §9.2).
  // Keep the checksum right: the sum is checked before the payload proto.
  const proto = SEED_BU.slice();
  proto[64] = 6;
  const fixed = fixChecksum(proto, 64, HOA, HA);
  const r = parsePacket(fixed);
  assert.deepEqual(r, {
    ok: false,
    kind: "malformed",
    offset: 64,
    field: "payloadProto",
    reply: { type: "paramProblem", code: 0, pointer: 64, invoking: fixed },
  });
  // Truncated IPv6 payload.
  assert.deepEqual(parsePacket(SEED_BU.subarray(0, 95)), {
    ok: false,
    kind: "truncated",
    offset: 4,
    field: "payloadLength",
  });
});

/** Recomputes the MH checksum of `pkt` (MH at `at`) over `src` -> `dst`. */
function fixChecksum(pkt: Uint8Array, at: number, src: string, dst: string): Uint8Array {
  const out = pkt.slice();
  const mh = out.subarray(at);
  mh[4] = mh[5] = 0;
  // Sum by hand rather than through the codec under test.
  const words: number[] = [];
  const push = (b: Uint8Array) => {
    for (let i = 0; i < b.length; i += 2) words.push((b[i] << 8) | (b[i + 1] ?? 0));
  };
  push(hex(src === HOA ? HOA_HEX : HA_HEX));
  push(hex(dst === HA ? HA_HEX : HOA_HEX));
  words.push(0, mh.length, 0, IPPROTO.MH);
  push(mh);
  let s = words.reduce((a, b) => a + b, 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  mh[4] = c >> 8;
  mh[5] = c & 0xff;
  return out;
}

const arbBuPacket = rec({
  careOf: arbIPv6,
  homeAgent: arbIPv6,
  homeAddress: arbIPv6,
  sequence: fc.integer({ min: 0, max: 0xffff }),
  lifetime: fc.integer({ min: 0, max: 0xffff }),
  ack: fc.boolean(),
  options: fc.array(arbMobilityOption, { maxLength: 3 }),
});

Deno.test("packet: built BU/BA/MH/ICMPv6 packets parse back to what was built", () => {
  fc.assert(
    fc.property(arbBuPacket, (p) => {
      const bu: BuRepr = {
        ...BU,
        sequence: p.sequence,
        lifetime: p.lifetime,
        flags: { ...BU.flags, ack: p.ack },
        options: p.options,
      };
      const r = parsePacket(buildBindingUpdate({ ...p, bu }));
      assert.ok(r.ok);
      assert.equal(r.value.homeAddress, p.homeAddress);
      assert.equal(r.value.ipv6.src, p.careOf);
      assert.deepEqual(r.value.mh, bu);
      const ba: BaRepr = { ...BA, sequence: p.sequence, lifetime: p.lifetime, options: p.options };
      const a = parsePacket(
        buildBindingAck({
          homeAgent: p.homeAgent,
          careOf: p.careOf,
          homeAddress: p.homeAddress,
          ba,
        }),
      );
      assert.ok(a.ok);
      assert.equal(a.value.rh2?.homeAddress, p.homeAddress);
      assert.deepEqual(a.value.mh, ba);
    }),
    { numRuns: 10_000 },
  );
  fc.assert(
    fc.property(arbIPv6, arbIPv6, arbMobility, arbIcmpv6, (src, dst, mh, icmp) => {
      const m = parsePacket(buildMobilityPacket({ src, dst, mh }));
      assert.ok(m.ok);
      assert.deepEqual(m.value.mh, mh);
      const i = parsePacket(buildIcmpv6Packet({ src, dst, hopLimit: 255, icmp }));
      assert.ok(i.ok);
      assert.deepEqual(i.value.icmp, icmp);
    }),
    { numRuns: 10_000 },
  );
});

Deno.test("packet: random and mutated packets never throw", () => {
  const nextHeaders = [0, 43, 44, 50, 58, 59, 60, 135];
  const shaped = rec({ b: randomBytes(160), nh: fc.constantFrom(...nextHeaders) }).map(
    ({ b, nh }) => {
      const p = new Uint8Array(40 + b.length);
      p.set(b, 40);
      p[0] = 0x60;
      p[4] = b.length >> 8;
      p[5] = b.length & 0xff;
      p[6] = nh;
      return p;
    },
  );
  fc.assert(
    fc.property(shaped, (b) => void parseNoThrow("packet", parsePacket, b)),
    { numRuns: 30_000 },
  );
  fc.assert(
    fc.property(randomBytes(120), (b) => void parseNoThrow("packet", parsePacket, b)),
    { numRuns: 10_000 },
  );
  const valid = fc.oneof(
    arbBuPacket.map((p) =>
      buildBindingUpdate({ ...p, bu: { ...BU, sequence: p.sequence, options: p.options } })
    ),
    arbBuPacket.map((p) =>
      buildBindingAck({ ...p, ba: { ...BA, sequence: p.sequence, options: p.options } })
    ),
    fc.tuple(arbIPv6, arbIPv6, arbMobility).map(([src, dst, mh]) =>
      buildMobilityPacket({ src, dst, mh })
    ),
    fc.tuple(arbIPv6, arbIPv6, arbIcmpv6).map(([src, dst, icmp]) =>
      buildIcmpv6Packet({ src, dst, hopLimit: 255, icmp })
    ),
  );
  // Mutations aimed past the IPv6 header, so most inputs reach the inner parsers.
  const inner = fc.tuple(
    valid,
    fc.array(rec({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), {
      minLength: 1,
      maxLength: 3,
    }),
  ).map(([p, edits]) => {
    const q = p.slice();
    for (const e of edits) if (q.length > 40) q[40 + (e.at % (q.length - 40))] = e.v;
    return q;
  });
  fc.assert(
    fc.property(inner, (b) => void parseNoThrow("packet", parsePacket, b)),
    { numRuns: 30_000 },
  );
  fc.assert(
    fc.property(mutated(valid), (b) => void parseNoThrow("packet", parsePacket, b)),
    { numRuns: 20_000 },
  );
});
