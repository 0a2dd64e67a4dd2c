import fc from "fast-check";
import assert from "node:assert/strict";
import {
  BA_STATUS,
  baStatusText,
  BE_STATUS,
  emitMobility,
  MH_TYPE,
  MobilityHeader,
  mobilityLen,
  type MobilityRepr,
  parseMobility,
} from "./mobility.ts";
import type { Parsed } from "./result.ts";
import {
  arbIPv6,
  arbMobility,
  COA,
  emitted,
  HA,
  hex,
  HOA,
  mutated,
  NO_BU_FLAGS,
  parseNoThrow,
  randomBytes,
  rec,
} from "./test_util.ts";

const CN = "2001:db8:5000::5";

// Checksums below were computed by hand-written Python (RFC 1071 + RFC 8200 §8.1 pseudo-header),
// independently of checksum.ts; tshark 4.0 dissects the seed BU/BA with the same field values.
const goldens: { name: string; repr: MobilityRepr; src: string; dst: string; bytes: Uint8Array }[] =
  [
    {
      name: "seed BU: A|H, seq 13, 15 units (60 s), Alt-CoA at 8n+6, sum HoA -> HA",
      repr: {
        type: "bu",
        sequence: 13,
        flags: { ...NO_BU_FLAGS, ack: true, home: true },
        lifetime: 15,
        options: [{ type: "altCoa", address: COA }],
      },
      src: HOA,
      dst: HA,
      bytes: hex(`
      3b 03 05 00   # payload proto 59, header len 3 (32 octets), MH type 5, reserved
      01 e9         # checksum
      00 0d         # sequence 13
      c0 00         # A|H, reserved
      00 0f         # lifetime 15 units
      01 00         # PadN (2 octets): Alt-CoA goes to offset 14 = 8n+6
      03 10 20010db8 30000000 00000000 00000003
    `),
    },
    {
      name: "seed BA: accepted, seq 13, 15 units, padded to 16, sum HA -> HoA",
      repr: {
        type: "ba",
        status: BA_STATUS.ACCEPTED,
        flags: { key: false, mobileRouter: false, proxy: false },
        sequence: 13,
        lifetime: 15,
        options: [],
      },
      src: HA,
      dst: HOA,
      bytes: hex(`
      3b 01 06 00  21 c6   # header len 1, MH type 6, checksum
      00 00                # status 0, K|R|P clear
      00 0d  00 0f         # sequence 13, lifetime 15
      01 02 00 00          # PadN to 16 octets
    `),
    },
    {
      name: "BA with K and a Binding Refresh Advice (2n, needs no padding)",
      repr: {
        type: "ba",
        status: 0,
        flags: { key: true, mobileRouter: false, proxy: false },
        sequence: 13,
        lifetime: 15,
        options: [{ type: "bra", interval: 60 }],
      },
      src: HA,
      dst: HOA,
      bytes: hex("3b 01 06 00 20 0a  00 80  00 0d 00 0f  02 02 00 3c"),
    },
    {
      name: "BU with Nonce Indices (2n) then Binding Authorization Data (8n+2)",
      repr: {
        type: "bu",
        sequence: 7,
        flags: { ...NO_BU_FLAGS, key: true },
        lifetime: 64,
        options: [
          { type: "nonce", homeNonceIndex: 0x0102, careOfNonceIndex: 0x0304 },
          { type: "auth", data: hex("000102030405060708090a0b") },
        ],
      },
      src: HOA,
      dst: CN,
      bytes: hex(`
      3b 03 05 00 b8 4c  00 07  10 00  00 40
      04 04 0102 0304              # Nonce Indices at 12
      05 0c 000102030405060708090a0b   # Auth at 18 = 8n+2, ends at 32
    `),
    },
    {
      name: "Binding Error: unknown HAO",
      repr: { type: "be", status: BE_STATUS.UNKNOWN_HAO, homeAddress: HOA },
      src: HA,
      dst: COA,
      bytes: hex("3b 02 07 00 c3 1e  01 00  20010db8 20000000 00000000 00000010"),
    },
    {
      name: "Binding Refresh Request",
      repr: { type: "brr", options: [] },
      src: HA,
      dst: HOA,
      bytes: hex("3b 00 00 00 28 ed 00 00"),
    },
    {
      name: "HoTI is kept as an unknown type, its data untouched",
      repr: { type: "unknown", mhType: MH_TYPE.HOTI, data: hex("0000 1122334455667788") },
      src: HOA,
      dst: CN,
      bytes: hex("3b 01 01 00 e6 8a 0000 1122334455667788"),
    },
  ];

for (const g of goldens) {
  Deno.test(`mobility: golden ${g.name}`, () => {
    const sum = { src: g.src, dst: g.dst };
    assert.equal(mobilityLen(g.repr), g.bytes.length);
    assert.deepEqual(emitted(g.repr, mobilityLen, (r, b) => emitMobility(r, b, sum)), g.bytes);
    assert.deepEqual(parseMobility(g.bytes, sum), { ok: true, value: g.repr });
    assert.deepEqual(parseMobility(g.bytes), { ok: true, value: g.repr });
  });
}

Deno.test("mobility: view getters read the seed BU", () => {
  const v = new MobilityHeader(goldens[0].bytes);
  assert.equal(v.checkLen(), null);
  assert.equal(v.payloadProto, 59);
  assert.equal(v.length, 32);
  assert.equal(v.mhType, MH_TYPE.BU);
  assert.equal(v.checksum, 0x01e9);
  assert.equal(v.sequence, 13);
  assert.equal(v.buFlags, 0xc0);
  assert.equal(v.lifetime, 15);
  assert.equal(v.optionsOffset, 12);
  const ba = new MobilityHeader(goldens[1].bytes);
  assert.equal(ba.sequence, 13);
  assert.equal(ba.status, 0);
});

Deno.test("mobility: Binding Error options are accepted and dropped", () => {
  const be = new Uint8Array(32);
  be.set(goldens[4].bytes);
  be[1] = 3;
  be.set(hex("01 06 000000000000"), 24);
  assert.deepEqual(parseMobility(be), { ok: true, value: goldens[4].repr });
});

function failure(r: Parsed<MobilityRepr>) {
  assert.ok(!r.ok);
  return { kind: r.kind, offset: r.offset, field: r.field, reply: r.reply };
}

Deno.test("mobility: RFC 6275 §9.2 failures with Parameter Problem replies", () => {
  const bu = goldens[0].bytes;
  const proto = bu.slice();
  proto[0] = 6;
  assert.deepEqual(failure(parseMobility(proto)), {
    kind: "malformed",
    offset: 0,
    field: "payloadProto",
    reply: { type: "paramProblem", code: 0, pointer: 0, invoking: proto },
  });
  // A BU of Header Len 0 (8 octets) is shorter than a BU.
  const short = hex("3b 00 05 00 0000 000d");
  assert.deepEqual(failure(parseMobility(short)), {
    kind: "malformed",
    offset: 1,
    field: "headerLen",
    reply: { type: "paramProblem", code: 0, pointer: 1, invoking: short },
  });
  // A BE needs 24 octets.
  const be = goldens[4].bytes.slice(0, 16);
  be[1] = 1;
  assert.equal(failure(parseMobility(be)).field, "headerLen");
});

Deno.test("mobility: truncated, overlong, bad options, bad checksum", () => {
  const bu = goldens[0].bytes;
  const f = (b: Uint8Array, check?: { src: string; dst: string }) =>
    failure(parseMobility(b, check));
  assert.deepEqual(f(bu.subarray(0, 7)), {
    kind: "truncated",
    offset: 0,
    field: "header",
    reply: undefined,
  });
  assert.deepEqual(f(bu.subarray(0, 31)), {
    kind: "truncated",
    offset: 1,
    field: "headerLen",
    reply: undefined,
  });
  const longer = new Uint8Array(40);
  longer.set(bu);
  assert.equal(f(longer).field, "headerLen");
  assert.equal(f(longer).kind, "malformed");
  // Alt-CoA with length 15.
  const alt = bu.slice();
  alt[15] = 15;
  assert.deepEqual(f(alt), {
    kind: "malformed",
    offset: 15,
    field: "optionLength",
    reply: undefined,
  });
  // BRA with length 3 in a BA.
  const bra = goldens[2].bytes.slice();
  bra[13] = 1;
  assert.deepEqual(f(bra), {
    kind: "malformed",
    offset: 13,
    field: "optionLength",
    reply: undefined,
  });
  // PadN running past the end of the message.
  const pad = goldens[1].bytes.slice();
  pad[13] = 3;
  assert.deepEqual(f(pad), {
    kind: "malformed",
    offset: 13,
    field: "optionLength",
    reply: undefined,
  });
  // Checksum verified only when asked, and over the right addresses.
  assert.deepEqual(f(bu, { src: COA, dst: HA }), {
    kind: "checksum",
    offset: 4,
    field: "checksum",
    reply: undefined,
  });
  const flipped = bu.slice();
  flipped[7] ^= 1;
  assert.equal(f(flipped, { src: HOA, dst: HA }).kind, "checksum");
  assert.equal(parseMobility(flipped).ok, true);
});

Deno.test("mobility: emit programmer errors throw", () => {
  const sum = { src: HOA, dst: HA };
  const bu = goldens[0].repr;
  assert.throws(() => emitMobility(bu, new Uint8Array(31), sum), RangeError);
  assert.throws(
    () => emitMobility({ ...bu, sequence: 65536 } as MobilityRepr, new Uint8Array(32), sum),
    RangeError,
  );
  assert.throws(() => emitMobility(bu, new Uint8Array(32), { src: "x", dst: HA }), TypeError);
  assert.throws(
    () =>
      emitMobility(
        { type: "unknown", mhType: 1, data: new Uint8Array(9) },
        new Uint8Array(64),
        sum,
      ),
    RangeError,
  );
  assert.throws(
    () =>
      emitMobility(
        { type: "brr", options: [{ type: "unknown", code: 1, data: new Uint8Array(2) }] },
        new Uint8Array(64),
        sum,
      ),
    RangeError,
  );
  assert.throws(
    () =>
      emitMobility(
        { type: "brr", options: [{ type: "altCoa", address: "::g" }] },
        new Uint8Array(64),
        sum,
      ),
    TypeError,
  );
});

Deno.test("mobility: BA status names", () => {
  assert.equal(baStatusText(BA_STATUS.SEQ_OUT_OF_WINDOW), "Sequence number out of window");
  assert.equal(baStatusText(BA_STATUS.NOT_HOME_AGENT), "Not home agent for this mobile node");
  assert.equal(baStatusText(BA_STATUS.INVALID_CARE_OF_ADDRESS), "Invalid care-of address");
  assert.equal(baStatusText(140), "Mobile router operation not permitted");
  assert.equal(baStatusText(999), "status 999");
  assert.equal(baStatusText(0), "Binding Update accepted");
  assert.equal(baStatusText(200), "status 200");
  assert.equal(BA_STATUS.REG_TYPE_CHANGE, 139);
});

const ALIGN: Record<number, [number, number]> = { 2: [2, 0], 3: [8, 6], 4: [2, 0], 5: [8, 2] };

Deno.test("mobility: emit -> parse is identity, checksum verifies, options aligned", () => {
  fc.assert(
    fc.property(arbMobility, arbIPv6, arbIPv6, (repr, src, dst) => {
      const sum = { src, dst };
      const b = emitted(repr, mobilityLen, (r, buf) => emitMobility(r, buf, sum));
      assert.equal(b.length % 8, 0);
      assert.deepEqual(parseMobility(b, sum), { ok: true, value: repr });
      if (repr.type === "unknown") return;
      const it = new MobilityHeader(b).options();
      for (let o = it.next(); o !== null; o = it.next()) {
        assert.ok(!("ok" in o));
        const a = ALIGN[o.code];
        if (a) assert.equal(o.offset % a[0], a[1], `option ${o.code} at ${o.offset}`);
      }
    }),
    { numRuns: 40_000 },
  );
});

const CHECK = { src: HOA, dst: HA };
const parseChecked = (b: Uint8Array) => parseMobility(b, CHECK);

Deno.test("mobility: random and mutated bytes never throw", () => {
  // Random bytes shaped like an MH often enough to reach the type and option parsers.
  const shaped = rec({ b: randomBytes(80), proto: fc.boolean(), hl: fc.nat(9) }).map(
    ({ b, proto, hl }) => {
      if (b.length > 0 && proto) b[0] = 59;
      if (b.length > 2) {
        b[1] = Math.min(hl, Math.max(0, (b.length >> 3) - 1));
        b[2] %= 9;
      }
      return b;
    },
  );
  fc.assert(
    fc.property(shaped, (b) => void parseNoThrow("mobility", parseMobility, b)),
    { numRuns: 30_000 },
  );
  const valid = arbMobility.map((r) =>
    emitted(r, mobilityLen, (repr, buf) => emitMobility(repr, buf, CHECK))
  );
  fc.assert(
    fc.property(mutated(valid), (b) => {
      parseNoThrow("mobility", parseMobility, b);
      parseNoThrow("mobility", parseChecked, b);
    }),
    { numRuns: 30_000 },
  );
});
