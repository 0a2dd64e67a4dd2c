import assert from "node:assert/strict";
import fc from "fast-check";
import { formatIPv6, formatMac } from "../wire/addr.ts";
import { parsePacket } from "../wire/packet.ts";
import { emitBindingAck, emitDadProbe, emitUnsolicitedNa } from "./emit.ts";
import { baPacket, dadProbe, unsolicitedNa } from "./packets.ts";

const addr = fc.uint8Array({ minLength: 16, maxLength: 16 });

Deno.test("emitBindingAck writes the bytes of baPacket (with and without RH2), every octet", () => {
  fc.assert(
    fc.property(
      addr,
      addr,
      addr,
      fc.boolean(),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffff }),
      (ha, coa, hoa, atHome, status, sequence, lifetime) => {
        const to = atHome ? hoa : coa;
        const want = baPacket({
          type: "sendBa",
          from: formatIPv6(ha),
          to: formatIPv6(to),
          homeAddress: formatIPv6(hoa),
          status,
          sequence,
          lifetime,
        });
        const out = new Uint8Array(200).fill(0xa5); // a reused buffer: garbage must not leak
        const n = emitBindingAck(out, 7, { ha, to, hoa, status, sequence, lifetime });
        assert.deepEqual(out.subarray(7, 7 + n), want);
      },
    ),
    { numRuns: 3000 },
  );
  // and an independent parse agrees: RH2 with the HoA, checksum valid over HA → HoA
  const ha = new Uint8Array(16), coa = new Uint8Array(16), hoa = new Uint8Array(16);
  ha.set([0x20, 0x01, 0x0d, 0xb8, 0x20]);
  ha[15] = 1;
  coa.set([0x20, 0x01, 0x0d, 0xb8, 0x30]);
  coa[15] = 3;
  hoa.set(ha);
  hoa[15] = 0x10;
  const out = new Uint8Array(80);
  emitBindingAck(out, 0, { ha, to: coa, hoa, status: 0, sequence: 42, lifetime: 15 });
  const p = parsePacket(out);
  assert.ok(p.ok, JSON.stringify(p));
  assert.equal(p.value.rh2?.homeAddress, "2001:db8:2000::10");
  assert.equal(p.value.mh?.type, "ba");
  assert.deepEqual(p.value.mh?.type === "ba" && [p.value.mh.sequence, p.value.mh.lifetime], [
    42,
    15,
  ]);
});

Deno.test("emitUnsolicitedNa and emitDadProbe write the bytes of the wire builders", () => {
  fc.assert(
    fc.property(
      addr,
      addr,
      fc.uint8Array({ minLength: 6, maxLength: 6 }),
      fc.boolean(),
      (src, target, mac, router) => {
        const out = new Uint8Array(100).fill(0x5a);
        const n = emitUnsolicitedNa(out, 3, { src, target, mac, router });
        const want = unsolicitedNa({
          src: formatIPv6(src),
          target: formatIPv6(target),
          mac: formatMac(mac),
          router,
        });
        assert.deepEqual(out.subarray(3, 3 + n), want);
        const m = emitDadProbe(out, 1, { target });
        assert.deepEqual(out.subarray(1, 1 + m), dadProbe(formatIPv6(target)));
      },
    ),
    { numRuns: 2000 },
  );
});
