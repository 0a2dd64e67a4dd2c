import fc from "fast-check";
import assert from "node:assert/strict";
import {
  canonicalIPv6,
  formatIPv6,
  formatMac,
  inPrefix,
  isMulticast,
  linkLocalFromMac,
  multicastMac,
  parseIPv6,
  parseMac,
  solicitedNodeMulticast,
  tryParseIPv6,
} from "./addr.ts";
import { hex } from "./test_util.ts";

Deno.test("addr: RFC 5952 canonical text", () => {
  const cases: [string, string][] = [
    ["2001:0db8:2000:0000:0000:0000:0000:0010", "2001:db8:2000::10"],
    ["2001:DB8::1", "2001:db8::1"], // §4.3 lowercase
    ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"], // §4.2.1 longest run
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // §4.2.2 no :: for one group
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // §4.2.3 longest run wins
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // §4.2.3 first of equal runs
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["fe80::5054:ff:fe00:10", "fe80::5054:ff:fe00:10"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"], // §5 IPv4-mapped
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    ["ff02::1:ff00:10", "ff02::1:ff00:10"],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIPv6(input), want, input);
});

Deno.test("addr: bad IPv6 text", () => {
  for (
    const bad of [
      "",
      ":",
      ":::",
      "1::2::3",
      ":1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7::8",
      "12345::",
      "g::",
      "::1%eth0",
      "1.2.3.4",
      "::1.2.3",
      "::256.1.1.1",
      "::01.1.1.1",
      "1:2:3:4:5:6:7:1.2.3.4",
      " ::1",
    ]
  ) {
    assert.equal(tryParseIPv6(bad), null, bad);
    assert.throws(() => parseIPv6(bad), (e: Error) =>
      e instanceof TypeError && e.message.includes(
        JSON.stringify(bad),
      ));
  }
});

Deno.test("addr: parse bytes", () => {
  assert.deepEqual(parseIPv6("2001:db8:2000::10"), hex("20010db8 20000000 00000000 00000010"));
  assert.deepEqual(parseIPv6("::ffff:1.2.3.4"), hex("00000000 00000000 0000ffff 01020304"));
  assert.deepEqual(parseIPv6("1:2:3:4:5:6:7:8"), hex("0001000200030004 0005000600070008"));
  assert.equal(formatIPv6(hex("ff 20010db8 20000000 00000000 00000001"), 1), "2001:db8:2000::1");
  assert.throws(() => formatIPv6(new Uint8Array(15)), RangeError);
});

Deno.test("addr: MACs", () => {
  assert.deepEqual(parseMac("52:54:00:00:00:10"), hex("525400000010"));
  assert.deepEqual(parseMac("AA:bb:CC:00:11:22"), hex("aabbcc001122"));
  assert.equal(formatMac(hex("00 525400000010"), 1), "52:54:00:00:00:10");
  for (
    const bad of [
      "",
      "52:54:00:00:00",
      "52:54:00:00:00:10:11",
      "5254.0000.0010",
      "52-54-00-00-00-10",
    ]
  ) {
    assert.throws(() => parseMac(bad), TypeError, bad);
  }
});

Deno.test("addr: multicast and EUI-64 helpers", () => {
  assert.equal(solicitedNodeMulticast("2001:db8:2000::10"), "ff02::1:ff00:10");
  assert.equal(solicitedNodeMulticast("fe80::5054:ff:fe12:3456"), "ff02::1:ff12:3456");
  assert.equal(multicastMac("ff02::1:ff00:10"), "33:33:ff:00:00:10");
  assert.equal(multicastMac("ff02::1"), "33:33:00:00:00:01");
  assert.equal(linkLocalFromMac("52:54:00:00:00:10"), "fe80::5054:ff:fe00:10");
  assert.equal(linkLocalFromMac("02:00:00:00:00:01"), "fe80::ff:fe00:1");
  assert.ok(isMulticast("ff02::1"));
  assert.ok(!isMulticast("2001:db8::1"));
});

Deno.test("addr: inPrefix", () => {
  assert.ok(inPrefix("2001:db8:2000::10", "2001:db8:2000::", 64));
  assert.ok(!inPrefix("2001:db8:3000::3", "2001:db8:2000::", 64));
  assert.ok(inPrefix("2001:db8:3000::3", "2001:db8:2000::", 34)); // 0x2000 vs 0x3000: bit 36
  assert.ok(!inPrefix("2001:db8:3000::3", "2001:db8:2000::", 36));
  assert.ok(inPrefix("::1", "ffff::", 0));
  assert.ok(inPrefix("2001:db8::1", "2001:db8::1", 128));
  assert.ok(!inPrefix("2001:db8::1", "2001:db8::2", 128));
  assert.throws(() => inPrefix("::", "::", 129), RangeError);
});

Deno.test("addr: formatIPv6 agrees with the WHATWG URL serializer, parse inverts it", () => {
  // The URL standard serializes IPv6 hosts with RFC 5952 compression (but never dotted IPv4).
  const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
  fc.assert(
    fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (g) => {
      const b = new Uint8Array(16);
      g.forEach((v, i) => {
        b[2 * i] = v >> 8;
        b[2 * i + 1] = v;
      });
      const text = formatIPv6(b);
      assert.deepEqual(parseIPv6(text), b);
      if (!text.startsWith("::ffff:") || !text.includes(".")) {
        assert.equal(`[${text}]`, new URL(`http://[${text}]/`).hostname);
      }
    }),
    { numRuns: 50_000 },
  );
});

Deno.test("addr: tryParseIPv6 never throws and agrees with URL on what is an address", () => {
  const alphabet = fc.constantFrom(..."0123456789abcdefABCDEF:.:::g%");
  fc.assert(
    fc.property(fc.string({ unit: alphabet, maxLength: 44 }), (s) => {
      const b = tryParseIPv6(s);
      let url: string | null = null;
      try {
        url = new URL(`http://[${s}]/`).hostname;
      } catch {
        url = null;
      }
      // Leading zeros beyond four digits and such are rejected by both.
      assert.equal(b !== null, url !== null, s);
      if (b !== null) assert.deepEqual(tryParseIPv6(url!.slice(1, -1)), b);
    }),
    { numRuns: 50_000 },
  );
});
