/**
 * Test helpers for the `src/wire` codecs: hex literals, fast-check arbitraries for every Repr,
 * byte mutators, and the never-throw harness that files crashers under `test/testdata/wire/`.
 *
 * Used by the `*_test.ts` files beside it; not part of the library.
 *
 * @module
 */

import fc from "fast-check";
import assert from "node:assert/strict";
import { formatIPv6, formatMac } from "./addr.ts";
import type { DestOptsRepr, Ipv6Option, RoutingType2Repr } from "./ext_headers.ts";
import type { Icmpv6Repr, NdOption } from "./icmpv6.ts";
import type { BaFlags, BuFlags, BuRepr, MobilityOption, MobilityRepr } from "./mobility.ts";
import type { Parsed } from "./result.ts";

/** Home address of the reference topology (DESIGN.md). */
export const HOA = "2001:db8:2000::10";
/** Home agent of the reference topology (also the home router). */
export const HA = "2001:db8:2000::1";
/** Care-of address of the reference topology (hostB on the foreign link). */
export const COA = "2001:db8:3000::3";
/** {@linkcode HOA} as hex text, for golden byte strings. */
export const HOA_HEX = "20010db8 20000000 00000000 00000010";
/** {@linkcode HA} as hex text. */
export const HA_HEX = "20010db8 20000000 00000000 00000001";
/** {@linkcode COA} as hex text. */
export const COA_HEX = "20010db8 30000000 00000000 00000003";

/** BU flags with every bit clear (RFC 6275 §6.1.7). */
export const NO_BU_FLAGS: BuFlags = {
  ack: false,
  home: false,
  linkLocal: false,
  key: false,
  mapReg: false,
  mobileRouter: false,
  proxy: false,
  forceUdp: false,
};

/**
 * A home registration's BU (RFC 6275 §11.7.1): A and H set, the rest clear, with the Alternate
 * Care-of Address option carrying `coa`. A fresh object each call.
 */
export function homeBu(sequence: number, lifetime: number, coa = COA): Omit<BuRepr, "type"> {
  return {
    sequence,
    flags: { ...NO_BU_FLAGS, ack: true, home: true },
    lifetime,
    options: [{ type: "altCoa", address: coa }],
  };
}

/** Bytes from hex text; whitespace, `|` and `#` comments to end of line are ignored. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/#[^\n]*/g, "").replace(/[\s|]/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${clean}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Where crashers are filed: `test/testdata/wire/<codec>/`. */
export const CORPUS_DIR = new URL("../../test/testdata/wire/", import.meta.url);

const KINDS = new Set(["truncated", "malformed", "unsupported", "checksum"]);

/** Asserts `r` is a well-formed Parsed: ok with a value, or a typed failure inside `len` bytes. */
export function assertWellFormed(r: Parsed<unknown>, len: number): void {
  if (r.ok) {
    assert.ok(r.value !== undefined);
    return;
  }
  assert.ok(KINDS.has(r.kind), `unknown failure kind ${r.kind}`);
  assert.ok(Number.isInteger(r.offset), `offset ${r.offset}`);
  assert.ok(r.offset >= -40 && r.offset <= len, `offset ${r.offset} outside 0..${len}`);
  assert.equal(typeof r.field, "string");
  assert.ok(r.field.length > 0);
}

const filed = new Map<string, number>();

/**
 * Runs `parse(bytes)`; when it throws, files `bytes` as a crasher under
 * `test/testdata/wire/<codec>/` (so the corpus replay test keeps it; at most 5 per codec
 * and run, as shrinking throws again on each smaller input) and rethrows.
 */
export function parseNoThrow<T>(
  codec: string,
  parse: (b: Uint8Array) => Parsed<T>,
  bytes: Uint8Array,
): Parsed<T> {
  try {
    const r = parse(bytes);
    assertWellFormed(r, bytes.length);
    return r;
  } catch (e) {
    // Shrinking re-throws on ever smaller inputs: keep the first few of each codec per run.
    const n = filed.get(codec) ?? 0;
    if (n >= 5) throw e;
    filed.set(codec, n + 1);
    const dir = new URL(`${codec}/`, CORPUS_DIR);
    Deno.mkdirSync(dir, { recursive: true });
    const name = `crash-${toHex(bytes).slice(0, 24)}-${bytes.length}.bin`;
    Deno.writeFileSync(new URL(name, dir), bytes);
    throw e;
  }
}

/** Random IPv6 addresses in canonical text, with plenty of zero groups (to exercise `::`). */
export const arbIPv6: fc.Arbitrary<string> = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  })
  .map((g) => {
    const b = new Uint8Array(16);
    g.forEach((v, i) => {
      b[2 * i] = v >> 8;
      b[2 * i + 1] = v & 0xff;
    });
    return formatIPv6(b);
  });

/** Random MACs in canonical text. */
export const arbMac: fc.Arbitrary<string> = fc
  .uint8Array({ minLength: 6, maxLength: 6 })
  .map((b) => formatMac(b));

/** `fc.record` with ordinary (not null-prototype) objects, so `deepEqual` against parses works. */
// deno-lint-ignore no-explicit-any
export function rec<T extends Record<string, fc.Arbitrary<any>>>(
  model: T,
): fc.Arbitrary<{ [K in keyof T]: T[K] extends fc.Arbitrary<infer U> ? U : never }> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<
    { [K in keyof T]: T[K] extends fc.Arbitrary<infer U> ? U : never }
  >;
}

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (max: number, min = 0) => fc.uint8Array({ minLength: min, maxLength: max });

/** Destination options the codec round-trips: at most one HAO, unknown options of action 00. */
export const arbDestOpts: fc.Arbitrary<DestOptsRepr> = fc
  .record({
    nextHeader: u8,
    hao: fc.option(arbIPv6, { nil: undefined }),
    haoAt: fc.nat(4),
    unknown: fc.array(
      rec({
        code: fc.integer({ min: 2, max: 0x3f }),
        data: bytes(20),
      }),
      { maxLength: 4 },
    ),
  })
  .map(({ nextHeader, hao, haoAt, unknown }) => {
    const options: Ipv6Option[] = unknown.map((u) => ({ type: "unknown", ...u }));
    if (hao !== undefined) {
      options.splice(Math.min(haoAt, options.length), 0, { type: "hao", homeAddress: hao });
    }
    return { nextHeader, options };
  });

/** Type 2 routing headers. */
export const arbRoutingType2: fc.Arbitrary<RoutingType2Repr> = rec({
  nextHeader: u8,
  segmentsLeft: fc.integer({ min: 0, max: 1 }),
  homeAddress: arbIPv6,
});

/** Mobility options, including unknown codes (6..255) and auth data. */
export const arbMobilityOption: fc.Arbitrary<MobilityOption> = fc.oneof(
  rec({ type: fc.constant("bra" as const), interval: u16 }),
  rec({ type: fc.constant("altCoa" as const), address: arbIPv6 }),
  rec({
    type: fc.constant("nonce" as const),
    homeNonceIndex: u16,
    careOfNonceIndex: u16,
  }),
  rec({ type: fc.constant("auth" as const), data: bytes(24) }),
  rec({
    type: fc.constant("unknown" as const),
    code: fc.integer({ min: 6, max: 0xff }),
    data: bytes(20),
  }),
);

const arbBuFlags: fc.Arbitrary<BuFlags> = rec({
  ack: fc.boolean(),
  home: fc.boolean(),
  linkLocal: fc.boolean(),
  key: fc.boolean(),
  mapReg: fc.boolean(),
  mobileRouter: fc.boolean(),
  proxy: fc.boolean(),
  forceUdp: fc.boolean(),
});
const arbBaFlags: fc.Arbitrary<BaFlags> = rec({
  key: fc.boolean(),
  mobileRouter: fc.boolean(),
  proxy: fc.boolean(),
});
const mhOptions = fc.array(arbMobilityOption, { maxLength: 5 });

/** Every MobilityRepr variant; unknown types get data making a multiple of 8 octets. */
export const arbMobility: fc.Arbitrary<MobilityRepr> = fc.oneof(
  rec({ type: fc.constant("brr" as const), options: mhOptions }),
  rec({
    type: fc.constant("bu" as const),
    sequence: u16,
    flags: arbBuFlags,
    lifetime: u16,
    options: mhOptions,
  }),
  rec({
    type: fc.constant("ba" as const),
    status: u8,
    flags: arbBaFlags,
    sequence: u16,
    lifetime: u16,
    options: mhOptions,
  }),
  rec({ type: fc.constant("be" as const), status: u8, homeAddress: arbIPv6 }),
  rec({
    type: fc.constant("unknown" as const),
    mhType: fc.oneof(fc.integer({ min: 8, max: 0xff }), fc.integer({ min: 1, max: 4 })),
    // HoTI/CoTI need 16 octets, HoT/CoT 24: 18 octets of data always satisfies both.
    data: fc.nat(8).chain((n) => bytes(8 * n + 18, 8 * n + 18)),
  }),
);

/** ND options, including unknown codes with data making a multiple of 8 octets. */
export const arbNdOption: fc.Arbitrary<NdOption> = fc.oneof(
  rec({ type: fc.constant("sourceLinkLayer" as const), mac: arbMac }),
  rec({ type: fc.constant("targetLinkLayer" as const), mac: arbMac }),
  rec({
    type: fc.constant("prefixInfo" as const),
    prefix: arbIPv6,
    prefixLength: fc.integer({ min: 0, max: 128 }),
    onLink: fc.boolean(),
    autonomous: fc.boolean(),
    validLifetime: u32,
    preferredLifetime: u32,
  }),
  rec({ type: fc.constant("mtu" as const), mtu: u32 }),
  rec({
    type: fc.constant("unknown" as const),
    code: fc.oneof(fc.constant(4), fc.integer({ min: 6, max: 0xff })),
    data: fc.nat(3).chain((n) => bytes(8 * n + 6, 8 * n + 6)),
  }),
);

const ndOptions = fc.array(arbNdOption, { maxLength: 4 });
const ICMP_KNOWN = new Set([1, 2, 3, 4, 128, 129, 133, 134, 135, 136]);

/** Every Icmpv6Repr variant (error `invoking` within the 1232 octets that fit in 1280). */
export const arbIcmpv6: fc.Arbitrary<Icmpv6Repr> = fc.oneof(
  rec({
    type: fc.constantFrom("echoRequest" as const, "echoReply" as const),
    identifier: u16,
    sequence: u16,
    data: bytes(64),
  }),
  rec({ type: fc.constant("packetTooBig" as const), mtu: u32, invoking: bytes(80) }),
  rec({
    type: fc.constant("paramProblem" as const),
    code: u8,
    pointer: u32,
    invoking: bytes(80),
  }),
  rec({ type: fc.constant("destUnreachable" as const), code: u8, invoking: bytes(80) }),
  rec({ type: fc.constant("timeExceeded" as const), code: u8, invoking: bytes(80) }),
  rec({ type: fc.constant("routerSolicitation" as const), options: ndOptions }),
  rec({
    type: fc.constant("routerAdvertisement" as const),
    curHopLimit: u8,
    managed: fc.boolean(),
    other: fc.boolean(),
    routerLifetime: u16,
    reachableTime: u32,
    retransTimer: u32,
    options: ndOptions,
  }),
  rec({
    type: fc.constant("neighborSolicitation" as const),
    target: arbIPv6,
    options: ndOptions,
  }),
  rec({
    type: fc.constant("neighborAdvertisement" as const),
    router: fc.boolean(),
    solicited: fc.boolean(),
    override: fc.boolean(),
    target: arbIPv6,
    options: ndOptions,
  }),
  rec({
    type: fc.constant("unknown" as const),
    icmpType: u8.filter((t) => !ICMP_KNOWN.has(t)),
    code: u8,
    body: bytes(40),
  }),
);

/** One edit of a byte string. */
type Edit =
  | { op: "set"; at: number; v: number }
  | { op: "flip"; at: number; bit: number }
  | { op: "cut"; at: number }
  | { op: "add"; v: Uint8Array };

const arbEdit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 4, arbitrary: rec({ op: fc.constant("set" as const), at: fc.nat(), v: u8 }) },
  {
    weight: 3,
    arbitrary: rec({
      op: fc.constant("flip" as const),
      at: fc.nat(),
      bit: fc.nat(7),
    }),
  },
  { weight: 1, arbitrary: rec({ op: fc.constant("cut" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: rec({ op: fc.constant("add" as const), v: bytes(12, 1) }) },
);

function applyEdits(input: Uint8Array, edits: Edit[]): Uint8Array {
  let b = input.slice();
  for (const e of edits) {
    if (e.op === "add") {
      const n = new Uint8Array(b.length + e.v.length);
      n.set(b);
      n.set(e.v, b.length);
      b = n;
    } else if (b.length === 0) {
      continue;
    } else if (e.op === "cut") {
      b = b.slice(0, e.at % b.length);
    } else if (e.op === "set") {
      b[e.at % b.length] = e.v;
    } else {
      b[e.at % b.length] ^= 1 << e.bit;
    }
  }
  return b;
}

/** Valid encodings from `valid`, then one to four random edits (set, bit flip, cut, append). */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(valid, fc.array(arbEdit, { minLength: 1, maxLength: 4 }))
    .map(([b, edits]) => applyEdits(b, edits));
}

/** Random bytes up to `max` long, biased to short inputs. */
export function randomBytes(max: number): fc.Arbitrary<Uint8Array> {
  return fc.oneof(bytes(16), bytes(max));
}

/**
 * Emits `repr` into two buffers of exactly the announced length, one zero-filled and one
 * 0xff-filled, and asserts both come out the same: emit writes every octet.
 */
export function emitted<R>(
  repr: R,
  len: (r: R) => number,
  emit: (r: R, buf: Uint8Array) => number,
): Uint8Array {
  const n = len(repr);
  const a = new Uint8Array(n);
  const b = new Uint8Array(n).fill(0xff);
  assert.equal(emit(repr, a), n, "emit wrote a different length than announced");
  assert.equal(emit(repr, b), n, "emit wrote a different length than announced");
  assert.deepEqual(a, b, "emit left octets unwritten");
  return a;
}
