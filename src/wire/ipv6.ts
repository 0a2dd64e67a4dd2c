/**
 * The fixed IPv6 header (RFC 8200 §3).
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version| Traffic Class |           Flow Label                  |  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |         Payload Length        |  Next Header  |   Hop Limit   |  4
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                                                               |
 * +                         Source Address                        +  8
 * |                          (16 octets)                          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                                                               |
 * +                      Destination Address                      + 24
 * |                          (16 octets)                          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * @module
 */

import { formatIPv6, ipv6Bytes } from "./addr.ts";
import { fail, ok, type Parsed, type ParseError } from "./result.ts";

/** Length of the fixed IPv6 header. */
export const IPV6_HEADER_LEN = 40;

const VER_TC_FL = 0;
const PAYLOAD_LEN = 4;
const NEXT_HEADER = 6;
const HOP_LIMIT = 7;
const SRC = 8;
const DST = 24;

/** Zero-copy view of an IPv6 header. Getters assume `checkLen()` passed. */
export class Ipv6Header {
  /** The packet's bytes (header first). */
  readonly bytes: Uint8Array;
  readonly #dv: DataView;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Null when the fixed header fits, else a truncation failure. */
  checkLen(): ParseError | null {
    return this.bytes.length < IPV6_HEADER_LEN ? fail("truncated", 0, "header") : null;
  }

  /** Version (6). */
  get version(): number {
    return this.bytes[VER_TC_FL] >> 4;
  }
  set version(v: number) {
    this.bytes[VER_TC_FL] = (v << 4) | (this.bytes[VER_TC_FL] & 0x0f);
  }

  /** Traffic Class (DSCP + ECN). */
  get trafficClass(): number {
    return (this.#dv.getUint16(VER_TC_FL) >> 4) & 0xff;
  }
  set trafficClass(v: number) {
    const w = this.#dv.getUint16(VER_TC_FL);
    this.#dv.setUint16(VER_TC_FL, (w & 0xf00f) | ((v & 0xff) << 4));
  }

  /** Flow Label (20 bits). */
  get flowLabel(): number {
    return this.#dv.getUint32(VER_TC_FL) & 0xfffff;
  }
  set flowLabel(v: number) {
    const w = this.#dv.getUint32(VER_TC_FL);
    this.#dv.setUint32(VER_TC_FL, ((w & 0xfff00000) | (v & 0xfffff)) >>> 0);
  }

  /** Payload Length (octets after the fixed header). */
  get payloadLength(): number {
    return this.#dv.getUint16(PAYLOAD_LEN);
  }
  set payloadLength(v: number) {
    this.#dv.setUint16(PAYLOAD_LEN, v);
  }

  /** Next Header. */
  get nextHeader(): number {
    return this.bytes[NEXT_HEADER];
  }
  set nextHeader(v: number) {
    this.bytes[NEXT_HEADER] = v;
  }

  /** Hop Limit. */
  get hopLimit(): number {
    return this.bytes[HOP_LIMIT];
  }
  set hopLimit(v: number) {
    this.bytes[HOP_LIMIT] = v;
  }

  /** Source address (a 16-byte sub-view). */
  get src(): Uint8Array {
    return this.bytes.subarray(SRC, SRC + 16);
  }
  set src(a: Uint8Array) {
    this.bytes.set(a.subarray(0, 16), SRC);
  }

  /** Destination address (a 16-byte sub-view). */
  get dst(): Uint8Array {
    return this.bytes.subarray(DST, DST + 16);
  }
  set dst(a: Uint8Array) {
    this.bytes.set(a.subarray(0, 16), DST);
  }

  /** The payload: exactly `payloadLength` bytes (a sub-view; assumes they are present). */
  get payload(): Uint8Array {
    return this.bytes.subarray(IPV6_HEADER_LEN, IPV6_HEADER_LEN + this.payloadLength);
  }
}

/** High-level form of an IPv6 header. */
export interface Ipv6Repr {
  /** Source address, RFC 5952 text. */
  src: string;
  /** Destination address, RFC 5952 text. */
  dst: string;
  /** Next Header (see `IPPROTO`). */
  nextHeader: number;
  /** Hop Limit. */
  hopLimit: number;
  /** Payload Length in octets. */
  payloadLength: number;
  /** Traffic Class; 0 when omitted. */
  trafficClass?: number;
  /** Flow Label; 0 when omitted. */
  flowLabel?: number;
}

/**
 * Parses an IPv6 header (RFC 8200 §3). `payload` is a sub-view of exactly `payloadLength`
 * bytes; bytes after it (link-layer padding) are ignored. Jumbograms (RFC 2675) are
 * "unsupported".
 */
export function parseIpv6(bytes: Uint8Array): Parsed<{ repr: Ipv6Repr; payload: Uint8Array }> {
  const h = new Ipv6Header(bytes);
  const err = h.checkLen();
  if (err) return err;
  if (h.version !== 6) return fail("malformed", VER_TC_FL, "version");
  const len = h.payloadLength;
  if (len === 0 && h.nextHeader === 0 && bytes.length > IPV6_HEADER_LEN) {
    return fail("unsupported", PAYLOAD_LEN, "payloadLength");
  }
  if (IPV6_HEADER_LEN + len > bytes.length) return fail("truncated", PAYLOAD_LEN, "payloadLength");
  return ok({
    repr: {
      src: formatIPv6(bytes, SRC),
      dst: formatIPv6(bytes, DST),
      nextHeader: h.nextHeader,
      hopLimit: h.hopLimit,
      payloadLength: len,
      trafficClass: h.trafficClass,
      flowLabel: h.flowLabel,
    },
    payload: h.payload,
  });
}

function checkRange(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`Ipv6Repr.${name} out of range 0..${max}: ${v}`);
  }
}

/**
 * Writes the 40-byte header of `repr` at the start of `buf` and returns 40. The payload is the
 * caller's to write.
 * @throws {RangeError} on a too-small buffer or out-of-range fields.
 * @throws {TypeError} on bad address text.
 */
export function emitIpv6(repr: Ipv6Repr, buf: Uint8Array): number {
  if (buf.length < IPV6_HEADER_LEN) {
    throw new RangeError(`emitIpv6: buffer of ${buf.length} bytes, need 40`);
  }
  const tc = repr.trafficClass ?? 0;
  const fl = repr.flowLabel ?? 0;
  checkRange("nextHeader", repr.nextHeader, 0xff);
  checkRange("hopLimit", repr.hopLimit, 0xff);
  checkRange("payloadLength", repr.payloadLength, 0xffff);
  checkRange("trafficClass", tc, 0xff);
  checkRange("flowLabel", fl, 0xfffff);
  const src = ipv6Bytes(repr.src);
  const dst = ipv6Bytes(repr.dst);
  const h = new Ipv6Header(buf);
  buf[0] = 0x60 | (tc >> 4);
  buf[1] = ((tc & 0x0f) << 4) | (fl >> 16);
  buf[2] = (fl >> 8) & 0xff;
  buf[3] = fl & 0xff;
  h.payloadLength = repr.payloadLength;
  h.nextHeader = repr.nextHeader;
  h.hopLimit = repr.hopLimit;
  h.src = src;
  h.dst = dst;
  return IPV6_HEADER_LEN;
}
