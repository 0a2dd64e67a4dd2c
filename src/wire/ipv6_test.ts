import fc from "fast-check";
import assert from "node:assert/strict";
import { IPPROTO } from "./addr.ts";
import { emitIpv6, IPV6_HEADER_LEN, Ipv6Header, type Ipv6Repr, parseIpv6 } from "./ipv6.ts";
import { arbIPv6, emitted, hex, mutated, parseNoThrow, randomBytes, rec } from "./test_util.ts";

// The IPv6 header of the seed capture's BU (RFC 8200 §3 layout).
const BU_HEADER = hex(`
  6 00 00000          # version 6, traffic class 0, flow label 0
  0038 3c 40          # payload length 56, next header 60 (DestOpts), hop limit 64
  20010db8 30000000 00000000 00000003   # 2001:db8:3000::3
  20010db8 20000000 00000000 00000001   # 2001:db8:2000::1
`);

Deno.test("ipv6: golden parse", () => {
  const pkt = new Uint8Array(40 + 56 + 3);
  pkt.set(BU_HEADER);
  pkt.fill(7, 40);
  const r = parseIpv6(pkt);
  assert.ok(r.ok);
  assert.deepEqual(r.value.repr, {
    src: "2001:db8:3000::3",
    dst: "2001:db8:2000::1",
    nextHeader: IPPROTO.DSTOPTS,
    hopLimit: 64,
    payloadLength: 56,
    trafficClass: 0,
    flowLabel: 0,
  });
  assert.equal(r.value.payload.length, 56, "payload is exactly payloadLength (link padding cut)");
});

Deno.test("ipv6: golden emit with traffic class and flow label", () => {
  const buf = new Uint8Array(40).fill(0xff);
  const repr: Ipv6Repr = {
    src: "2001:db8:3000::3",
    dst: "2001:db8:2000::1",
    nextHeader: 60,
    hopLimit: 64,
    payloadLength: 56,
  };
  assert.equal(emitIpv6(repr, buf), IPV6_HEADER_LEN);
  assert.deepEqual(buf, BU_HEADER);
  emitIpv6({ ...repr, trafficClass: 0xb8, flowLabel: 0x12345 }, buf);
  assert.deepEqual(buf.subarray(0, 4), hex("6b 81 23 45"));
  const v = new Ipv6Header(buf);
  assert.equal(v.trafficClass, 0xb8);
  assert.equal(v.flowLabel, 0x12345);
  v.flowLabel = 0xfffff;
  v.trafficClass = 0x01;
  assert.deepEqual(buf.subarray(0, 4), hex("60 1f ff ff"));
  assert.equal(v.version, 6);
});

Deno.test("ipv6: failures", () => {
  assert.deepEqual(parseIpv6(BU_HEADER.subarray(0, 39)), {
    ok: false,
    kind: "truncated",
    offset: 0,
    field: "header",
  });
  assert.deepEqual(parseIpv6(BU_HEADER), {
    ok: false,
    kind: "truncated",
    offset: 4,
    field: "payloadLength",
  });
  const v4 = BU_HEADER.slice();
  v4[0] = 0x45;
  assert.deepEqual(parseIpv6(v4), { ok: false, kind: "malformed", offset: 0, field: "version" });
  const jumbo = new Uint8Array(48);
  jumbo.set(BU_HEADER);
  jumbo[4] = jumbo[5] = jumbo[6] = 0;
  assert.equal((parseIpv6(jumbo) as { kind: string }).kind, "unsupported");
  const repr = { src: "::1", dst: "::1", nextHeader: 59, hopLimit: 1, payloadLength: 0 };
  assert.throws(() => emitIpv6(repr, new Uint8Array(39)), RangeError);
  assert.throws(() => emitIpv6({ ...repr, payloadLength: 65536 }, new Uint8Array(40)), RangeError);
  assert.throws(() => emitIpv6({ ...repr, flowLabel: 1 << 20 }, new Uint8Array(40)), RangeError);
  assert.throws(() => emitIpv6({ ...repr, src: "2001:db8::g" }, new Uint8Array(40)), TypeError);
});

const arbRepr: fc.Arbitrary<Ipv6Repr> = rec({
  src: arbIPv6,
  dst: arbIPv6,
  nextHeader: fc.integer({ min: 0, max: 255 }),
  hopLimit: fc.integer({ min: 0, max: 255 }),
  payloadLength: fc.integer({ min: 0, max: 64 }),
  trafficClass: fc.integer({ min: 0, max: 255 }),
  flowLabel: fc.integer({ min: 0, max: 0xfffff }),
});

function packet(repr: Ipv6Repr): Uint8Array {
  const b = new Uint8Array(40 + repr.payloadLength);
  b.set(emitted(repr, () => IPV6_HEADER_LEN, emitIpv6));
  return b;
}

Deno.test("ipv6: emit -> parse is identity", () => {
  fc.assert(
    fc.property(arbRepr, (repr) => {
      const r = parseIpv6(packet(repr));
      if (repr.payloadLength === 0 && repr.nextHeader === 0) return; // jumbogram marker
      assert.ok(r.ok);
      assert.deepEqual(r.value.repr, repr);
      assert.equal(r.value.payload.length, repr.payloadLength);
    }),
    { numRuns: 30_000 },
  );
});

Deno.test("ipv6: random and mutated bytes never throw", () => {
  fc.assert(
    fc.property(randomBytes(120), (b) => void parseNoThrow("ipv6", parseIpv6, b)),
    { numRuns: 35_000 },
  );
  fc.assert(
    fc.property(mutated(arbRepr.map(packet)), (b) => void parseNoThrow("ipv6", parseIpv6, b)),
    { numRuns: 35_000 },
  );
});
