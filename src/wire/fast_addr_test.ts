import assert from "node:assert/strict";
import fc from "fast-check";
import { canonicalIPv6, formatIPv6, tryParseIPv6 } from "./addr.ts";
import { canonicalIPv6Fast, formatIPv6Fast, parseIPv6Into } from "./fast_addr.ts";

/** Texts that are addresses in many spellings, and near misses. */
const texts = fc.oneof(
  fc.ipV6(),
  fc.ipV6().map((s) => s.toUpperCase()),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIPv6(b)),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) =>
    Array.from({ length: 8 }, (_, i) => ((b[2 * i] << 8) | b[2 * i + 1]).toString(16)).join(":")
  ),
  fc.stringMatching(/^[0-9a-fA-F:.]{0,46}$/),
  fc.string({ maxLength: 46 }),
);

Deno.test("parseIPv6Into accepts and rejects exactly what tryParseIPv6 does", () => {
  fc.assert(
    fc.property(texts, (t) => {
      const out = new Uint8Array(20);
      const ok = parseIPv6Into(t, out, 2);
      const ref = tryParseIPv6(t);
      assert.equal(ok, ref !== null, t);
      if (ref) assert.deepEqual(out.subarray(2, 18), ref, t);
    }),
    { numRuns: 20000 },
  );
  for (
    const bad of ["", ":", ":::", "1:", ":1", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::"]
  ) {
    assert.equal(parseIPv6Into(bad, new Uint8Array(16)), false, bad);
  }
});

Deno.test("formatIPv6Fast and canonicalIPv6Fast agree with the wire codec (RFC 5952)", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 8 }),
      (b, zeros) => {
        for (const g of zeros) b[2 * g] = b[2 * g + 1] = 0; // runs of zero groups
        assert.equal(formatIPv6Fast(b), formatIPv6(b));
      },
    ),
    { numRuns: 20000 },
  );
  fc.assert(fc.property(fc.ipV6(), (t) => assert.equal(canonicalIPv6Fast(t), canonicalIPv6(t))));
  assert.equal(formatIPv6Fast(new Uint8Array(16)), "::");
  assert.equal(canonicalIPv6Fast("::FFFF:10.0.0.1"), "::ffff:10.0.0.1");
  assert.throws(() => canonicalIPv6Fast("2001:db8::g"), /not an IPv6 address/);
});
