import fc from "fast-check";
import assert from "node:assert/strict";
import {
  emitEsp,
  emitEspHeader,
  emitEspTrailer,
  ESP_HEADER_LEN,
  espEncryptedLen,
  type EspLayout,
  espLen,
  EspPacket,
  espPadLength,
  parseEsp,
  parseEspTrailer,
  peekEspSpi,
} from "./esp.ts";
import { assertWellFormed, hex, toHex } from "./test_util.ts";

const GCM: EspLayout = { ivLen: 8, icvLen: 16, align: 4 };
const CBC: EspLayout = { ivLen: 16, icvLen: 16, align: 16 };
const NULL: EspLayout = { ivLen: 0, icvLen: 16, align: 4 };

// The NULL + HMAC-SHA-256-128 golden of test/ipsec/gen_esp_golden.py (built by hand in Python):
// the seed BA in clear, so every field can be read off.
const NULL_GOLDEN = hex(`
  4b4d0004                          # SPI
  00000007                          # sequence 7
  3b01060021c60000000d000f01020000  # payload: the seed BA (16 octets)
  01 02                             # padding 1, 2 (RFC 4303 §2.4)
  02 87                             # pad length 2, next header 135 (MH)
  dee44ce0de75a8e6885075201c8419bb  # ICV
`);

Deno.test("esp: golden NULL packet — header, encrypted part, ICV", () => {
  const r = parseEsp(NULL_GOLDEN, NULL);
  assert.ok(r.ok);
  assert.equal(r.value.spi, 0x4b4d0004);
  assert.equal(r.value.sequence, 7);
  assert.equal(r.value.iv.length, 0);
  assert.equal(toHex(r.value.encrypted), "3b01060021c60000000d000f010200000102" + "0287");
  assert.equal(toHex(r.value.icv), "dee44ce0de75a8e6885075201c8419bb");
  const t = parseEspTrailer(r.value.encrypted);
  assert.ok(t.ok);
  assert.equal(t.value.nextHeader, 135);
  assert.equal(toHex(t.value.payload), "3b01060021c60000000d000f01020000");
  assert.equal(toHex(t.value.padding), "0102");
  const v = new EspPacket(NULL_GOLDEN, NULL);
  assert.equal(v.authenticated.length, NULL_GOLDEN.length - 16);
  assert.equal(peekEspSpi(NULL_GOLDEN), 0x4b4d0004);
});

Deno.test("esp: emit writes every byte back (golden, reused dirty buffer)", () => {
  const r = parseEsp(NULL_GOLDEN, NULL);
  assert.ok(r.ok);
  const buf = new Uint8Array(80).fill(0xee);
  const n = emitEsp(r.value, buf);
  assert.equal(n, NULL_GOLDEN.length);
  assert.equal(espLen(r.value), NULL_GOLDEN.length);
  assert.deepEqual(buf.subarray(0, n), NULL_GOLDEN);
  assert.throws(() => emitEsp({ ...r.value, spi: 0 }, buf), RangeError);
  assert.throws(() => emitEsp(r.value, new Uint8Array(10)), RangeError);
  assert.throws(() => emitEspHeader(2 ** 32, 1, buf), RangeError);
});

Deno.test("esp: view setters and IV/ICV positions under the GCM layout", () => {
  const b = new Uint8Array(8 + 8 + 4 + 16);
  const v = new EspPacket(b, GCM);
  v.spi = 0xfedcba98;
  v.sequence = 0x01020304;
  assert.equal(toHex(b.subarray(0, 8)), "fedcba9801020304");
  assert.equal(v.iv.byteOffset - b.byteOffset, 8);
  assert.equal(v.encryptedOffset, 16);
  assert.equal(v.encrypted.length, 4);
  assert.equal(v.icv.byteOffset - b.byteOffset, 20);
  assert.equal(v.checkLen(), null);
});

Deno.test("esp: framing failures are typed values", () => {
  const cases: [string, Uint8Array, EspLayout, string, string, number][] = [
    ["empty", new Uint8Array(0), GCM, "truncated", "header", 0],
    ["no IV", new Uint8Array(12), GCM, "truncated", "iv", 8],
    ["no room for trailer + ICV", new Uint8Array(8 + 8 + 16), GCM, "truncated", "encrypted", 16],
    ["CBC needs one block", new Uint8Array(8 + 16 + 8 + 16), CBC, "truncated", "encrypted", 24],
    ["SPI 0", new Uint8Array(8 + 4 + 16), NULL, "malformed", "spi", 0],
    [
      "CBC partial block",
      hex("00000100 00000001" + "00".repeat(16 + 20 + 16)),
      CBC,
      "malformed",
      "encrypted",
      24,
    ],
    [
      "GCM not 4-aligned",
      hex("00000100 00000001" + "00".repeat(8 + 6 + 16)),
      GCM,
      "malformed",
      "encrypted",
      16,
    ],
  ];
  for (const [name, bytes, layout, kind, field, offset] of cases) {
    const r = parseEsp(bytes, layout);
    assert.equal(r.ok, false, name);
    if (r.ok) continue;
    assert.deepEqual([r.kind, r.field, r.offset], [kind, field, offset], name);
  }
  assert.equal(peekEspSpi(new Uint8Array(3)), null);
});

Deno.test("esp: pad length makes payload + trailer a multiple of align (RFC 4303 §2.4)", () => {
  assert.equal(espPadLength(32, 4), 2);
  assert.equal(espPadLength(30, 4), 0);
  assert.equal(espPadLength(32, 16), 14);
  assert.equal(espPadLength(14, 16), 0);
  assert.equal(espPadLength(0, 16), 14);
  assert.equal(espEncryptedLen(32, 16), 48);
  const buf = new Uint8Array(48).fill(0xaa);
  buf.set([9, 9, 9], 0);
  assert.equal(emitEspTrailer(buf, 3, { nextHeader: 135, align: 16 }), 16);
  assert.equal(toHex(buf.subarray(0, 16)), "090909" + "0102030405060708090a0b" + "0b87");
  assert.throws(() => emitEspTrailer(buf, 3, { nextHeader: 256, align: 4 }), RangeError);
  assert.throws(() => emitEspTrailer(new Uint8Array(4), 3, { nextHeader: 1, align: 4 }));
});

Deno.test("esp: trailer checks pad length and the 1, 2, 3… padding", () => {
  const bad: [string, Uint8Array, string, string, number][] = [
    ["one octet", hex("87"), "truncated", "trailer", 0],
    ["pad length past the start", hex("01 02 05 87"), "malformed", "padLength", 2],
    ["padding 1 2 4", hex("aa 01 02 04 03 87"), "malformed", "padding", 3],
    ["padding of zeros", hex("aa bb 00 00 02 87"), "malformed", "padding", 2],
  ];
  for (const [name, plain, kind, field, offset] of bad) {
    const r = parseEspTrailer(plain);
    assert.equal(r.ok, false, name);
    if (!r.ok) assert.deepEqual([r.kind, r.field, r.offset], [kind, field, offset], name);
  }
  const none = parseEspTrailer(hex("00 3b"));
  assert.ok(none.ok);
  assert.equal(none.value.payload.length, 0);
  assert.equal(none.value.nextHeader, 59);
});

Deno.test("esp: trailer round trip for any payload and alignment", () => {
  fc.assert(fc.property(
    fc.uint8Array({ maxLength: 300 }),
    fc.constantFrom(1, 4, 8, 16, 64),
    fc.integer({ min: 0, max: 255 }),
    (payload, align, nh) => {
      const buf = new Uint8Array(payload.length + align + 2);
      buf.set(payload);
      const n = emitEspTrailer(buf, payload.length, { nextHeader: nh, align });
      assert.equal(n % align, 0);
      assert.equal(n, espEncryptedLen(payload.length, align));
      const r = parseEspTrailer(buf.subarray(0, n));
      assert.ok(r.ok);
      assert.deepEqual(r.value.payload, payload);
      assert.equal(r.value.nextHeader, nh);
      assert.ok(r.value.padding.length < align);
    },
  ));
});

Deno.test("esp: random bytes never throw (framing under every layout, trailer)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
      for (const layout of [GCM, CBC, NULL]) {
        const r = parseEsp(b, layout);
        assertWellFormed(r, b.length);
        if (r.ok) {
          assert.equal(
            ESP_HEADER_LEN + r.value.iv.length + r.value.encrypted.length + 16,
            b.length,
          );
          assert.equal(r.value.encrypted.length % layout.align, 0);
        }
      }
      assertWellFormed(parseEspTrailer(b), b.length);
    }),
    { numRuns: 2000 },
  );
});
