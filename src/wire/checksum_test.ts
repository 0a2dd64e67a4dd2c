import fc from "fast-check";
import assert from "node:assert/strict";
import { IPPROTO, parseIPv6 } from "./addr.ts";
import { onesComplementSum, pseudoHeaderSum, upperLayerChecksum } from "./checksum.ts";
import { emitMobility, type MobilityRepr, parseMobility } from "./mobility.ts";
import { buildBindingUpdate, parsePacket } from "./packet.ts";
import { COA, HA, hex, HOA, homeBu } from "./test_util.ts";

Deno.test("checksum: RFC 1071 §3 example", () => {
  // 0001 + f203 + f4f5 + f6f7 = 2ddf0 -> ddf2; checksum ~ddf2 = 220d.
  const b = hex("00 01 f2 03 f4 f5 f6 f7");
  assert.equal(onesComplementSum(b), 0xddf2);
  assert.equal(~onesComplementSum(b) & 0xffff, 0x220d);
});

Deno.test("checksum: odd length pads with a zero octet; initial value is added", () => {
  assert.equal(onesComplementSum(hex("01")), 0x0100);
  assert.equal(onesComplementSum(hex("ab cd ef")), 0xabcd + 0xef00 - 0xffff);
  assert.equal(onesComplementSum(hex("ffff ffff")), 0xffff);
  assert.equal(onesComplementSum(new Uint8Array(0), 0x1234), 0x1234);
  assert.equal(onesComplementSum(hex("0001"), 0xffff), 0x0001);
});

Deno.test("checksum: pseudo-header sum by hand", () => {
  // src 2001:db8:2000::10, dst 2001:db8:2000::1, length 32, next header 135:
  // (2001+0db8+2000+0010) + (2001+0db8+2000+0001) + 0020 + 0087 = 4dc9 + 4dba + a7 = 9c2a.
  const s = pseudoHeaderSum(parseIPv6(HOA), parseIPv6(HA), 32, IPPROTO.MH);
  assert.equal(s, 0x9c2a);
  // A 32-bit length: its high half is summed too.
  assert.equal(pseudoHeaderSum(new Uint8Array(16), new Uint8Array(16), 0x10002, 0), 0x0003);
});

// The BU of the seed capture (MH only), checksum 0x01e9 over HoA -> HA. Cross-checked with a
// separate Python implementation and tshark 4.0 (which prints the stored value).
const BU_MH = hex(`
  3b 03 05 00  01 e9  00 0d  c0 00  00 0f   # proto 59, len 3, BU, csum, seq 13, A|H, 15 units
  01 00                                     # PadN 2 octets
  03 10 20010db8 30000000 00000000 00000003 # Alt-CoA 2001:db8:3000::3
`);

Deno.test("checksum: the seed BU's MH checksum is over HoA -> HA", () => {
  const zeroed = BU_MH.slice();
  zeroed[4] = zeroed[5] = 0;
  assert.equal(upperLayerChecksum(HOA, HA, IPPROTO.MH, zeroed), 0x01e9);
  assert.equal(upperLayerChecksum(HOA, HA, IPPROTO.MH, BU_MH), 0);
  assert.notEqual(upperLayerChecksum(COA, HA, IPPROTO.MH, BU_MH), 0);
  assert.equal(parseMobility(BU_MH, { src: HOA, dst: HA }).ok, true);
  assert.deepEqual(parseMobility(BU_MH, { src: COA, dst: HA }), {
    ok: false,
    kind: "checksum",
    offset: 4,
    field: "checksum",
  });
});

Deno.test("checksum: a BU with HAO summed over the CoA (what a kernel without MIP6 does) fails", () => {
  const bu: MobilityRepr = { type: "bu", ...homeBu(13, 15) };
  const pkt = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu });
  assert.equal(parsePacket(pkt).ok, true);
  const wrong = pkt.slice();
  emitMobility(bu, wrong.subarray(64), { src: COA, dst: HA });
  assert.deepEqual(parsePacket(wrong), {
    ok: false,
    kind: "checksum",
    offset: 40 + 24 + 4,
    field: "checksum",
  });
});

Deno.test("checksum: sums split anywhere even, and a stored checksum verifies to 0", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      (a, b, src, dst) => {
        const even = a.subarray(0, a.length & ~1);
        const whole = new Uint8Array(even.length + b.length);
        whole.set(even);
        whole.set(b, even.length);
        assert.equal(onesComplementSum(whole), onesComplementSum(b, onesComplementSum(even)));
        // Store a checksum in octets 2-3 of a message, then verify.
        const msg = new Uint8Array(4 + b.length);
        msg.set(b, 4);
        const c = upperLayerChecksum(src, dst, 58, msg);
        msg[2] = c >> 8;
        msg[3] = c;
        assert.equal(upperLayerChecksum(src, dst, 58, msg), 0);
      },
    ),
    { numRuns: 100_000 },
  );
});
