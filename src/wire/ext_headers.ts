/**
 * IPv6 extension headers Kagemusha needs (RFC 8200 §4): Destination Options with the Home
 * Address option (RFC 6275 §6.3), the type 2 Routing Header (RFC 6275 §6.4), and a walker over
 * a packet's extension-header chain.
 *
 * Destination Options (and Hop-by-Hop Options) header, RFC 8200 §4.3/§4.6:
 *
 * ```text
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Next Header  |  Hdr Ext Len  |                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 * .                            Options                            .
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  Hdr Ext Len: length in 8-octet units, not counting the first 8.
 * ```
 *
 * Home Address option, RFC 6275 §6.3 (alignment 8n+6):
 *
 * ```text
 *                                 +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *                                 |  Option Type  | Option Length |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                   Home Address (16 octets)                    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  Option Type 0xC9, Option Length 16.
 * ```
 *
 * Type 2 Routing Header, RFC 6275 §6.4:
 *
 * ```text
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Next Header  | Hdr Ext Len=2 | Routing Type=2|Segments Left=1|  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                            Reserved                           |  4
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                   Home Address (16 octets)                    |  8
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * @module
 */

import { formatIPv6, IPPROTO, ipv6Bytes } from "./addr.ts";
import type { Icmpv6Repr } from "./icmpv6.ts";
import { layoutOptions, type OptionSlot, TlvIterator, writeLayoutPadding } from "./options.ts";
import { fail, ok, type Parsed, type ParseError, rebase } from "./result.ts";

/** Home Address option type (RFC 6275 §6.3). */
export const HAO_OPTION_TYPE = 0xc9;
/** Length of a type 2 routing header (RFC 6275 §6.4). */
export const ROUTING_TYPE2_LEN = 24;

const NEXT_HEADER = 0;
const HDR_EXT_LEN = 1;
const OPTIONS = 2;
const RH_TYPE = 2;
const RH_SEGMENTS_LEFT = 3;
const RH_RESERVED = 4;
const RH2_HOME_ADDRESS = 8;
const HAO_LEN = 16;

/** Maximum length of an options header: (255 + 1) · 8 octets. */
const MAX_EXT_LEN = 2048;

/**
 * The two octets every extension header starts with (RFC 8200 §4.3–§4.6): Next Header and Hdr
 * Ext Len; the views below add their own fields.
 */
export class ExtensionHeader {
  constructor(readonly bytes: Uint8Array) {}

  /** Next Header. */
  get nextHeader(): number {
    return this.bytes[NEXT_HEADER];
  }
  set nextHeader(v: number) {
    this.bytes[NEXT_HEADER] = v;
  }

  /** Hdr Ext Len (8-octet units after the first 8). */
  get hdrExtLen(): number {
    return this.bytes[HDR_EXT_LEN];
  }
  set hdrExtLen(v: number) {
    this.bytes[HDR_EXT_LEN] = v;
  }

  /** Header length in octets. */
  get length(): number {
    return (this.bytes[HDR_EXT_LEN] + 1) * 8;
  }
}

/** Zero-copy view of a Hop-by-Hop or Destination Options header. */
export class OptionsHeader extends ExtensionHeader {
  /** Null when the whole header (per Hdr Ext Len) fits, else a truncation failure. */
  checkLen(): ParseError | null {
    if (this.bytes.length < 2) return fail("truncated", 0, "header");
    if (this.bytes.length < this.length) return fail("truncated", HDR_EXT_LEN, "hdrExtLen");
    return null;
  }

  /** Zero-copy iterator over the options (Pad1/PadN skipped). */
  options(): TlvIterator {
    return new TlvIterator(this.bytes, OPTIONS, this.length);
  }
}

/** Zero-copy view of a Routing header (RFC 8200 §4.4), type 2 fields per RFC 6275 §6.4. */
export class RoutingHeader extends ExtensionHeader {
  /** Null when the header fits, else a truncation failure. */
  checkLen(): ParseError | null {
    if (this.bytes.length < 4) return fail("truncated", 0, "header");
    if (this.bytes.length < this.length) return fail("truncated", HDR_EXT_LEN, "hdrExtLen");
    return null;
  }

  /** Routing Type. */
  get routingType(): number {
    return this.bytes[RH_TYPE];
  }
  set routingType(v: number) {
    this.bytes[RH_TYPE] = v;
  }

  /** Segments Left. */
  get segmentsLeft(): number {
    return this.bytes[RH_SEGMENTS_LEFT];
  }
  set segmentsLeft(v: number) {
    this.bytes[RH_SEGMENTS_LEFT] = v;
  }

  /** Type 2: the Home Address (a 16-byte sub-view). */
  get homeAddress(): Uint8Array {
    return this.bytes.subarray(RH2_HOME_ADDRESS, RH2_HOME_ADDRESS + 16);
  }
  set homeAddress(a: Uint8Array) {
    this.bytes.set(a.subarray(0, 16), RH2_HOME_ADDRESS);
  }
}

/** An option of a Destination Options header. Pad1/PadN are consumed and made by the codec. */
export type Ipv6Option =
  /** Home Address option (RFC 6275 §6.3). */
  | { type: "hao"; homeAddress: string }
  /** Any other option, kept; `code` is the full option type octet. */
  | { type: "unknown"; code: number; data: Uint8Array };

/** High-level form of a Destination Options header. */
export interface DestOptsRepr {
  nextHeader: number;
  options: Ipv6Option[];
}

/** High-level form of a type 2 Routing Header (RFC 6275 §6.4). */
export interface RoutingType2Repr {
  nextHeader: number;
  /** 1 on the wire; 0 once the receiving stack processed the header. */
  segmentsLeft: number;
  homeAddress: string;
}

function paramProblem(code: number, pointer: number, invoking: Uint8Array): Icmpv6Repr {
  return { type: "paramProblem", code, pointer, invoking };
}

/**
 * Parses the options of a Hop-by-Hop or Destination Options header. Unknown options follow the
 * RFC 8200 §4.2 action bits: 00 kept, 01 "unsupported", 10/11 "unsupported" with an ICMPv6
 * Parameter Problem code 2 reply pointing at the option (for 11 the whole-packet parser drops the
 * reply when the destination is multicast).
 */
function parseOptionsHeader(
  bytes: Uint8Array,
  allowHao: boolean,
): Parsed<{ repr: DestOptsRepr; length: number }> {
  const h = new OptionsHeader(bytes);
  const err = h.checkLen();
  if (err) return err;
  const options: Ipv6Option[] = [];
  const it = h.options();
  let sawHao = false;
  for (let o = it.next(); o !== null; o = it.next()) {
    if ("ok" in o) return o;
    if (allowHao && o.code === HAO_OPTION_TYPE) {
      if (o.data.length !== HAO_LEN) return fail("malformed", o.offset + 1, "optionLength");
      if (sawHao) return fail("malformed", o.offset, "option");
      sawHao = true;
      options.push({ type: "hao", homeAddress: formatIPv6(o.data) });
      continue;
    }
    const action = o.code >> 6;
    if (action === 0) {
      options.push({ type: "unknown", code: o.code, data: o.data.slice() });
    } else if (action === 1) {
      return fail("unsupported", o.offset, "option");
    } else {
      return fail("unsupported", o.offset, "option", paramProblem(2, o.offset, bytes));
    }
  }
  return ok({ repr: { nextHeader: h.nextHeader, options }, length: h.length });
}

/**
 * Parses a Destination Options header (RFC 8200 §4.6) with the Home Address option
 * (RFC 6275 §6.3). `length` is the header's length in octets. A HAO of the wrong length or a
 * second HAO is "malformed"; unknown options follow the RFC 8200 §4.2 action bits.
 */
export function parseDestOpts(bytes: Uint8Array): Parsed<{ repr: DestOptsRepr; length: number }> {
  return parseOptionsHeader(bytes, true);
}

function checkByte(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) {
    throw new RangeError(`${name} out of range 0..255: ${v}`);
  }
}

function optionSlots(repr: DestOptsRepr): OptionSlot[] {
  return repr.options.map((o) =>
    o.type === "hao" ? { size: 2 + HAO_LEN, n: 8, k: 6 } : { size: 2 + o.data.length, n: 1, k: 0 }
  );
}

/** Length in octets of the Destination Options header of `repr` (a multiple of 8). */
export function destOptsLen(repr: DestOptsRepr): number {
  return layoutOptions(OPTIONS, optionSlots(repr)).end;
}

/**
 * Writes the Destination Options header of `repr` at the start of `buf`, padding included (HAO
 * at 8n+6, RFC 6275 §6.3), and returns its length.
 * @throws {RangeError} on a too-small buffer, a header over 2048 octets, or bad field values.
 * @throws {TypeError} on bad address text.
 */
export function emitDestOpts(repr: DestOptsRepr, buf: Uint8Array): number {
  checkByte("DestOptsRepr.nextHeader", repr.nextHeader);
  const slots = optionSlots(repr);
  const layout = layoutOptions(OPTIONS, slots);
  const len = layout.end;
  if (len > MAX_EXT_LEN) throw new RangeError(`Destination Options header too long: ${len}`);
  if (buf.length < len) throw new RangeError(`emitDestOpts: buffer of ${buf.length}, need ${len}`);
  const addrs = repr.options.map((o) => {
    if (o.type === "hao") return ipv6Bytes(o.homeAddress);
    checkByte("option code", o.code);
    if (o.code === 0 || o.code === 1) throw new RangeError("padding options are made by the codec");
    if (o.data.length > 0xff) throw new RangeError(`option data too long: ${o.data.length}`);
    return o.data;
  });
  buf[NEXT_HEADER] = repr.nextHeader;
  buf[HDR_EXT_LEN] = len / 8 - 1;
  repr.options.forEach((o, i) => {
    const at = layout.at[i];
    buf[at] = o.type === "hao" ? HAO_OPTION_TYPE : o.code;
    buf[at + 1] = addrs[i].length;
    buf.set(addrs[i], at + 2);
  });
  writeLayoutPadding(buf, OPTIONS, layout, slots.map((s) => s.size));
  return len;
}

/**
 * Parses a Routing header. Type 2 (RFC 6275 §6.4) needs Hdr Ext Len 2 and Segments Left 0 or 1
 * ("malformed" otherwise). Any other routing type is "unsupported"; when its Segments Left is
 * non-zero the reply is the Parameter Problem code 0 pointing at the Routing Type that
 * RFC 8200 §4.4 asks for (with Segments Left 0 the walker ignores such a header, as §4.4 says).
 */
export function parseRoutingHeader(
  bytes: Uint8Array,
): Parsed<{ repr: RoutingType2Repr; length: number }> {
  const h = new RoutingHeader(bytes);
  const err = h.checkLen();
  if (err) return err;
  if (h.routingType !== 2) {
    return h.segmentsLeft === 0
      ? fail("unsupported", RH_TYPE, "routingType")
      : fail("unsupported", RH_TYPE, "routingType", paramProblem(0, RH_TYPE, bytes));
  }
  if (h.hdrExtLen !== 2) return fail("malformed", HDR_EXT_LEN, "hdrExtLen");
  if (h.segmentsLeft > 1) return fail("malformed", RH_SEGMENTS_LEFT, "segmentsLeft");
  return ok({
    repr: {
      nextHeader: h.nextHeader,
      segmentsLeft: h.segmentsLeft,
      homeAddress: formatIPv6(bytes, RH2_HOME_ADDRESS),
    },
    length: ROUTING_TYPE2_LEN,
  });
}

/**
 * Writes a type 2 Routing Header (RFC 6275 §6.4), reserved octets zeroed, and returns 24.
 * @throws {RangeError} on a too-small buffer, `segmentsLeft` other than 0/1, bad `nextHeader`.
 * @throws {TypeError} on bad address text.
 */
export function emitRoutingType2(repr: RoutingType2Repr, buf: Uint8Array): number {
  if (buf.length < ROUTING_TYPE2_LEN) {
    throw new RangeError(`emitRoutingType2: buffer of ${buf.length}, need 24`);
  }
  checkByte("RoutingType2Repr.nextHeader", repr.nextHeader);
  if (repr.segmentsLeft !== 0 && repr.segmentsLeft !== 1) {
    throw new RangeError(`type 2 routing header segmentsLeft must be 0 or 1: ${repr.segmentsLeft}`);
  }
  const home = ipv6Bytes(repr.homeAddress);
  const h = new RoutingHeader(buf);
  h.nextHeader = repr.nextHeader;
  h.hdrExtLen = 2;
  h.routingType = 2;
  h.segmentsLeft = repr.segmentsLeft;
  buf.fill(0, RH_RESERVED, RH2_HOME_ADDRESS);
  h.homeAddress = home;
  return ROUTING_TYPE2_LEN;
}

/** What {@linkcode walkExtensionHeaders} found. */
export interface ExtensionChain {
  /** From a Home Address option, when present. */
  homeAddress?: string;
  /** The type 2 routing header, when present. */
  rh2?: RoutingType2Repr;
  /** Protocol of the first header not walked (upper layer, Fragment, ESP, No Next Header…). */
  upperProtocol: number;
  /** Offset of that header in `bytes`. */
  upperOffset: number;
}

/**
 * Walks the extension headers of an IPv6 payload (RFC 8200 §4.1): Hop-by-Hop (first only),
 * Destination Options (HAO recorded), Routing (type 2 recorded; other types skipped when
 * Segments Left is 0), stopping at Fragment, ESP, No Next Header or any upper layer. Failures
 * carry offsets (and Parameter Problem pointers) relative to `bytes`; a Parameter Problem
 * about the first header's type points at -34, the IPv6 header's Next Header field.
 */
export function walkExtensionHeaders(
  bytes: Uint8Array,
  firstNextHeader: number,
): Parsed<ExtensionChain> {
  let nh = firstNextHeader;
  let off = 0;
  let prevNhField = -34; // offset of the Next Header field that named `nh`
  let homeAddress: string | undefined;
  let rh2: RoutingType2Repr | undefined;
  for (;;) {
    const rest = bytes.subarray(off);
    if (nh === IPPROTO.HOPOPTS) {
      if (off !== 0) {
        return fail("malformed", prevNhField, "nextHeader", paramProblem(1, prevNhField, bytes));
      }
      const r = parseOptionsHeader(rest, false);
      if (!r.ok) return rebase(r, off, bytes);
      nh = r.value.repr.nextHeader;
      prevNhField = off;
      off += r.value.length;
    } else if (nh === IPPROTO.DSTOPTS) {
      const r = parseDestOpts(rest);
      if (!r.ok) return rebase(r, off, bytes);
      for (const o of r.value.repr.options) {
        if (o.type !== "hao") continue;
        if (homeAddress !== undefined) return fail("malformed", off, "homeAddress");
        homeAddress = o.homeAddress;
      }
      nh = r.value.repr.nextHeader;
      prevNhField = off;
      off += r.value.length;
    } else if (nh === IPPROTO.ROUTING) {
      const r = parseRoutingHeader(rest);
      if (r.ok) {
        if (rh2 !== undefined) return fail("malformed", off, "routingHeader");
        rh2 = r.value.repr;
        nh = rh2.nextHeader;
        prevNhField = off;
        off += r.value.length;
      } else if (r.kind === "unsupported" && r.reply === undefined) {
        // Unknown routing type with Segments Left 0: ignore it (RFC 8200 §4.4).
        const h = new RoutingHeader(rest);
        nh = h.nextHeader;
        prevNhField = off;
        off += h.length;
      } else {
        return rebase(r, off, bytes);
      }
    } else {
      break;
    }
  }
  const chain: ExtensionChain = { upperProtocol: nh, upperOffset: off };
  if (homeAddress !== undefined) chain.homeAddress = homeAddress;
  if (rh2 !== undefined) chain.rh2 = rh2;
  return ok(chain);
}
