import fc from "fast-check";
import assert from "node:assert/strict";
import { IPPROTO } from "./addr.ts";
import {
  destOptsLen,
  type DestOptsRepr,
  emitDestOpts,
  emitRoutingType2,
  OptionsHeader,
  parseDestOpts,
  parseRoutingHeader,
  ROUTING_TYPE2_LEN,
  type RoutingType2Repr,
  walkExtensionHeaders,
} from "./ext_headers.ts";
import type { Parsed } from "./result.ts";
import {
  arbDestOpts,
  arbIPv6,
  arbRoutingType2,
  emitted,
  hex,
  HOA,
  HOA_HEX,
  mutated,
  parseNoThrow,
  randomBytes,
  rec,
} from "./test_util.ts";

// Destination Options of the seed BU: HAO at 8n+6 behind a 4-octet PadN (RFC 6275 §6.3).
const DSTOPTS_HAO = hex(`
  87 02         # next header 135 (MH), hdr ext len 2 (24 octets)
  01 02 00 00   # PadN, 2 octets of data
  c9 10 ${HOA_HEX}  # Home Address option
`);

// The seed BA's type 2 routing header (RFC 6275 §6.4).
const RH2 = hex(`
  87 02 02 01   # next header 135, hdr ext len 2, routing type 2, segments left 1
  00000000      # reserved
  ${HOA_HEX}
`);

const dopts = (options: DestOptsRepr["options"], nextHeader = 135): DestOptsRepr => ({
  nextHeader,
  options,
});
const emitD = (r: DestOptsRepr) => emitted(r, destOptsLen, emitDestOpts);

Deno.test("ext_headers: golden Destination Options with HAO", () => {
  const repr = dopts([{ type: "hao", homeAddress: HOA }]);
  assert.equal(destOptsLen(repr), 24);
  assert.deepEqual(emitD(repr), DSTOPTS_HAO);
  assert.deepEqual(parseDestOpts(DSTOPTS_HAO), { ok: true, value: { repr, length: 24 } });
});

Deno.test("ext_headers: the one padding helper aligns HAO at 8n+6 after other options", () => {
  const x = { type: "unknown" as const, code: 0x1e, data: hex("ab") };
  // Unknown (3 octets) at 2, Pad1 at 5, HAO at 6.
  assert.deepEqual(
    emitD(dopts([x, { type: "hao", homeAddress: HOA }])),
    hex(`87 02  1e 01 ab  00  c9 10 ${HOA_HEX}`),
  );
  // HAO at 6 behind PadN 4, unknown at 24, PadN 5 up to 32.
  assert.deepEqual(
    emitD(dopts([{ type: "hao", homeAddress: HOA }, x], 59)),
    hex(`3b 03  01 02 00 00  c9 10 ${HOA_HEX}  1e 01 ab  01 03 00 00 00`),
  );
  // No options at all: one PadN of 6.
  assert.deepEqual(emitD(dopts([], 59)), hex("3b 00 01 04 00 00 00 00"));
  // Options already ending on 8: no padding.
  assert.deepEqual(
    emitD(dopts([{ type: "unknown", code: 0x05, data: hex("0102 0304") }], 6)),
    hex("06 00 05 04 01020304"),
  );
});

Deno.test("ext_headers: Pad1 and PadN of any size are skipped on parse", () => {
  const padded = hex(`3b 02  00 00 00 00  c9 10 ${HOA_HEX}`); // four Pad1
  const r = parseDestOpts(padded);
  assert.ok(r.ok);
  assert.deepEqual(r.value.repr, dopts([{ type: "hao", homeAddress: HOA }], 59));
  const big = hex("3b 01 01 0c 000000000000000000000000"); // PadN of 14
  assert.deepEqual(parseDestOpts(big), { ok: true, value: { repr: dopts([], 59), length: 16 } });
});

Deno.test("ext_headers: unknown options follow the RFC 8200 §4.2 action bits", () => {
  const withOpt = (type: number) => hex(`3b 00 ${type.toString(16)} 02 aabb 0100`);
  // 00: skip and keep.
  assert.deepEqual(parseDestOpts(withOpt(0x3e)), {
    ok: true,
    value: { repr: dopts([{ type: "unknown", code: 0x3e, data: hex("aabb") }], 59), length: 8 },
  });
  // 01: discard silently.
  assert.deepEqual(parseDestOpts(withOpt(0x7e)), {
    ok: false,
    kind: "unsupported",
    offset: 2,
    field: "option",
  });
  // 10 and 11: discard and answer Parameter Problem code 2 pointing at the option.
  for (const t of [0xbe, 0xfe]) {
    const b = withOpt(t);
    assert.deepEqual(parseDestOpts(b), {
      ok: false,
      kind: "unsupported",
      offset: 2,
      field: "option",
      reply: { type: "paramProblem", code: 2, pointer: 2, invoking: b },
    });
  }
});

Deno.test("ext_headers: malformed and truncated Destination Options", () => {
  const fail = (b: Uint8Array) => {
    const r = parseDestOpts(b);
    assert.ok(!r.ok);
    return [r.kind, r.offset, r.field];
  };
  assert.deepEqual(fail(hex("3b")), ["truncated", 0, "header"]);
  assert.deepEqual(fail(DSTOPTS_HAO.subarray(0, 23)), ["truncated", 1, "hdrExtLen"]);
  // HAO with length 15.
  assert.deepEqual(fail(hex(`3b 02 01 02 0000 c9 0f ${HOA_HEX}`)), [
    "malformed",
    7,
    "optionLength",
  ]);
  // PadN running past the header.
  assert.deepEqual(fail(hex("3b 00 01 05 00000000")), ["malformed", 3, "optionLength"]);
  // Option type in the last octet: no room for its length.
  assert.deepEqual(fail(hex("3b 00 01 03 000000 3e")), ["malformed", 7, "optionLength"]);
  // Two HAOs.
  const two = hex(`3b 05 01 02 0000 c9 10 ${HOA_HEX} 01 04 00000000 c9 10 ${HOA_HEX}`);
  assert.deepEqual(fail(two), ["malformed", 30, "option"]);
});

Deno.test("ext_headers: golden type 2 routing header", () => {
  const repr: RoutingType2Repr = { nextHeader: 135, segmentsLeft: 1, homeAddress: HOA };
  assert.deepEqual(emitted(repr, () => ROUTING_TYPE2_LEN, emitRoutingType2), RH2);
  assert.deepEqual(parseRoutingHeader(RH2), { ok: true, value: { repr, length: 24 } });
  assert.throws(() => emitRoutingType2({ ...repr, segmentsLeft: 2 }, new Uint8Array(24)));
  assert.throws(() => emitRoutingType2(repr, new Uint8Array(23)), RangeError);
});

Deno.test("ext_headers: routing header failures", () => {
  const f = (b: Uint8Array) => parseRoutingHeader(b);
  assert.deepEqual(f(RH2.subarray(0, 3)), {
    ok: false,
    kind: "truncated",
    offset: 0,
    field: "header",
  });
  assert.deepEqual(f(RH2.subarray(0, 20)), {
    ok: false,
    kind: "truncated",
    offset: 1,
    field: "hdrExtLen",
  });
  const wrongLen = hex(`87 04 02 01 00000000 ${HOA_HEX} ${HOA_HEX}`);
  assert.deepEqual(f(wrongLen), { ok: false, kind: "malformed", offset: 1, field: "hdrExtLen" });
  const sl2 = RH2.slice();
  sl2[3] = 2;
  assert.deepEqual(f(sl2), { ok: false, kind: "malformed", offset: 3, field: "segmentsLeft" });
  // Type 0 (deprecated, RFC 5095) with a segment left: Parameter Problem code 0 at the type.
  const t0 = RH2.slice();
  t0[2] = 0;
  assert.deepEqual(f(t0), {
    ok: false,
    kind: "unsupported",
    offset: 2,
    field: "routingType",
    reply: { type: "paramProblem", code: 0, pointer: 2, invoking: t0 },
  });
  t0[3] = 0;
  assert.deepEqual(f(t0), { ok: false, kind: "unsupported", offset: 2, field: "routingType" });
});

const MH8 = hex("3b 00 00 00 0000 0000"); // a minimal MH (BRR) as upper layer

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

Deno.test("ext_headers: walk Hop-by-Hop, RH2, DestOpts(HAO) to the MH", () => {
  const hbh = hex("2b 00 05 02 0000 0100"); // -> routing; Router Alert (type 5), PadN
  const rh2 = RH2.slice();
  rh2[0] = IPPROTO.DSTOPTS;
  const b = concat(hbh, rh2, DSTOPTS_HAO, MH8);
  assert.deepEqual(walkExtensionHeaders(b, IPPROTO.HOPOPTS), {
    ok: true,
    value: {
      homeAddress: HOA,
      rh2: { nextHeader: IPPROTO.DSTOPTS, segmentsLeft: 1, homeAddress: HOA },
      upperProtocol: IPPROTO.MH,
      upperOffset: 56,
    },
  });
  // Straight to the upper layer.
  assert.deepEqual(walkExtensionHeaders(MH8, IPPROTO.MH), {
    ok: true,
    value: { upperProtocol: IPPROTO.MH, upperOffset: 0 },
  });
});

Deno.test("ext_headers: walk stops at Fragment and ESP, skips unknown routing with 0 left", () => {
  const frag = hex("3a 00 0001 12345678");
  const d = hex("2c 00 01 04 00000000"); // DestOpts -> Fragment
  assert.deepEqual(walkExtensionHeaders(concat(d, frag), IPPROTO.DSTOPTS), {
    ok: true,
    value: { upperProtocol: IPPROTO.FRAGMENT, upperOffset: 8 },
  });
  assert.deepEqual(walkExtensionHeaders(hex("000003e8 00000001"), IPPROTO.ESP), {
    ok: true,
    value: { upperProtocol: IPPROTO.ESP, upperOffset: 0 },
  });
  const rh0 = hex(`3b 02 00 00 00000000 ${HOA_HEX}`); // type 0, segments left 0
  assert.deepEqual(walkExtensionHeaders(rh0, IPPROTO.ROUTING), {
    ok: true,
    value: { upperProtocol: IPPROTO.NONE, upperOffset: 24 },
  });
});

Deno.test("ext_headers: walk failures are rebased onto the payload", () => {
  // Hop-by-Hop after a DestOpts: Parameter Problem code 1 at the Next Header naming it.
  const d = hex("00 00 01 04 00000000");
  const b = concat(d, hex("3b 00 01 04 00000000"));
  assert.deepEqual(walkExtensionHeaders(b, IPPROTO.DSTOPTS), {
    ok: false,
    kind: "malformed",
    offset: 0,
    field: "nextHeader",
    reply: { type: "paramProblem", code: 1, pointer: 0, invoking: b },
  });
  // An unknown option of action 10 in the second header: offset and pointer count from `b`.
  const bad = concat(hex("3c 00 01 04 00000000"), hex("3b 00 9e 02 aabb 0100"));
  assert.deepEqual(walkExtensionHeaders(bad, IPPROTO.DSTOPTS), {
    ok: false,
    kind: "unsupported",
    offset: 10,
    field: "option",
    reply: { type: "paramProblem", code: 2, pointer: 10, invoking: bad },
  });
  // Two HAOs in two headers.
  const h1 = DSTOPTS_HAO.slice();
  h1[0] = IPPROTO.DSTOPTS;
  const r = walkExtensionHeaders(concat(h1, DSTOPTS_HAO, MH8), IPPROTO.DSTOPTS);
  assert.deepEqual(r, { ok: false, kind: "malformed", offset: 24, field: "homeAddress" });
  // Truncated chain.
  const t = walkExtensionHeaders(DSTOPTS_HAO.subarray(0, 1), IPPROTO.DSTOPTS);
  assert.deepEqual(t, { ok: false, kind: "truncated", offset: 0, field: "header" });
});

Deno.test("ext_headers: DestOpts emit -> parse is identity; HAO always at 8n+6", () => {
  fc.assert(
    fc.property(arbDestOpts, (repr) => {
      const b = emitD(repr);
      assert.equal(b.length % 8, 0);
      const r = parseDestOpts(b);
      assert.ok(r.ok);
      assert.deepEqual(r.value, { repr, length: b.length });
      const it = new OptionsHeader(b).options();
      for (let o = it.next(); o !== null; o = it.next()) {
        assert.ok(!("ok" in o));
        if (o.code === 0xc9) assert.equal(o.offset % 8, 6);
      }
    }),
    { numRuns: 30_000 },
  );
});

Deno.test("ext_headers: RH2 emit -> parse is identity", () => {
  fc.assert(
    fc.property(arbRoutingType2, (repr) => {
      const b = emitted(repr, () => ROUTING_TYPE2_LEN, emitRoutingType2);
      assert.deepEqual(parseRoutingHeader(b), { ok: true, value: { repr, length: 24 } });
    }),
    { numRuns: 20_000 },
  );
});

/** A chain: optional HbH, optional DestOpts (no HAO), optional RH2, optional DestOpts (HAO). */
const arbChain = rec({
  hbh: fc.option(arbDestOpts.map((d) => d.options.filter((o) => o.type !== "hao")), {
    nil: undefined,
  }),
  d1: fc.option(arbDestOpts.map((d) => d.options.filter((o) => o.type !== "hao")), {
    nil: undefined,
  }),
  rh2: fc.option(rec({ segmentsLeft: fc.integer({ min: 0, max: 1 }), homeAddress: arbIPv6 }), {
    nil: undefined,
  }),
  hao: fc.option(arbIPv6, { nil: undefined }),
  upper: fc.constantFrom(IPPROTO.MH, IPPROTO.ICMPV6, IPPROTO.NONE, IPPROTO.TCP, IPPROTO.ESP),
});

type Chain = typeof arbChain extends fc.Arbitrary<infer C> ? C : never;

function emitChain(c: Chain): { first: number; bytes: Uint8Array } {
  const parts: { proto: number; bytes: (next: number) => Uint8Array }[] = [];
  if (c.hbh) {
    const o = c.hbh;
    parts.push({ proto: IPPROTO.HOPOPTS, bytes: (n) => emitD({ nextHeader: n, options: o }) });
  }
  if (c.d1) {
    const o = c.d1;
    parts.push({ proto: IPPROTO.DSTOPTS, bytes: (n) => emitD({ nextHeader: n, options: o }) });
  }
  if (c.rh2) {
    const r = c.rh2;
    parts.push({
      proto: IPPROTO.ROUTING,
      bytes: (n) => emitted({ nextHeader: n, ...r }, () => ROUTING_TYPE2_LEN, emitRoutingType2),
    });
  }
  if (c.hao) {
    const h = c.hao;
    parts.push({
      proto: IPPROTO.DSTOPTS,
      bytes: (n) => emitD({ nextHeader: n, options: [{ type: "hao", homeAddress: h }] }),
    });
  }
  const encoded = parts.map((p, i) => p.bytes(i + 1 < parts.length ? parts[i + 1].proto : c.upper));
  return { first: parts.length ? parts[0].proto : c.upper, bytes: concat(...encoded, MH8) };
}

Deno.test("ext_headers: walk over emitted chains finds what was put in", () => {
  fc.assert(
    fc.property(arbChain, (c) => {
      const { first, bytes } = emitChain(c);
      const r = walkExtensionHeaders(bytes, first);
      assert.ok(r.ok);
      assert.equal(r.value.upperProtocol, c.upper);
      assert.equal(r.value.upperOffset, bytes.length - MH8.length);
      assert.equal(r.value.homeAddress, c.hao);
      assert.deepEqual(r.value.rh2?.homeAddress, c.rh2?.homeAddress);
    }),
    { numRuns: 20_000 },
  );
});

const walkFirstByte = (b: Uint8Array): Parsed<unknown> =>
  b.length === 0 ? walkExtensionHeaders(b, 0) : walkExtensionHeaders(b.subarray(1), b[0]);

Deno.test("ext_headers: random and mutated bytes never throw", () => {
  const headerLike = (b: Uint8Array) => {
    // Bias random bytes towards plausible Hdr Ext Len values.
    if (b.length > 1) b[1] %= 4;
    return b;
  };
  fc.assert(
    fc.property(
      randomBytes(64).map(headerLike),
      (b) => void parseNoThrow("dest_opts", parseDestOpts, b),
    ),
    { numRuns: 35_000 },
  );
  fc.assert(
    fc.property(
      mutated(arbDestOpts.map(emitD)),
      (b) => void parseNoThrow("dest_opts", parseDestOpts, b),
    ),
    { numRuns: 35_000 },
  );
  fc.assert(
    fc.property(
      randomBytes(48).map(headerLike),
      (b) => void parseNoThrow("routing", parseRoutingHeader, b),
    ),
    { numRuns: 40_000 },
  );
  fc.assert(
    fc.property(
      mutated(arbRoutingType2.map((r) => emitted(r, () => 24, emitRoutingType2))),
      (b) => void parseNoThrow("routing", parseRoutingHeader, b),
    ),
    { numRuns: 40_000 },
  );
  const chainBytes = arbChain.map((c) => {
    const { first, bytes } = emitChain(c);
    return concat(Uint8Array.of(first), bytes);
  });
  fc.assert(
    fc.property(
      fc.tuple(fc.constantFrom(0, 43, 60, 44, 135), randomBytes(96)).map(([nh, b]) =>
        concat(Uint8Array.of(nh), b)
      ),
      (b) => void parseNoThrow("ext_chain", walkFirstByte, b),
    ),
    { numRuns: 40_000 },
  );
  fc.assert(
    fc.property(mutated(chainBytes), (b) => void parseNoThrow("ext_chain", walkFirstByte, b)),
    { numRuns: 40_000 },
  );
});
