/**
 * Ethernet II frames (IEEE 802.3, RFC 2464 for IPv6 over Ethernet).
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Destination MAC (6 octets)                 |
 * +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                               |                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+       Source MAC (6 octets)   +
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           EtherType           |  Payload ...
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * @module
 */

import { formatMac, parseMac } from "./addr.ts";
import { fail, ok, type Parsed, type ParseError } from "./result.ts";

/** Length of an Ethernet II header without VLAN tags. */
export const ETHERNET_HEADER_LEN = 14;

const DST = 0;
const SRC = 6;
const ETHERTYPE = 12;
const PAYLOAD = 14;

/** Zero-copy view of an Ethernet II frame. Getters assume `checkLen()` passed. */
export class EthernetFrame {
  /** The frame's bytes. */
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** Null when the header fits, else a truncation failure. */
  checkLen(): ParseError | null {
    return this.bytes.length < ETHERNET_HEADER_LEN ? fail("truncated", 0, "header") : null;
  }

  /** Destination MAC (a sub-view). */
  get dst(): Uint8Array {
    return this.bytes.subarray(DST, DST + 6);
  }
  set dst(mac: Uint8Array) {
    this.bytes.set(mac.subarray(0, 6), DST);
  }

  /** Source MAC (a sub-view). */
  get src(): Uint8Array {
    return this.bytes.subarray(SRC, SRC + 6);
  }
  set src(mac: Uint8Array) {
    this.bytes.set(mac.subarray(0, 6), SRC);
  }

  /** EtherType. */
  get ethertype(): number {
    return (this.bytes[ETHERTYPE] << 8) | this.bytes[ETHERTYPE + 1];
  }
  set ethertype(v: number) {
    this.bytes[ETHERTYPE] = v >> 8;
    this.bytes[ETHERTYPE + 1] = v;
  }

  /** Everything after the header (a sub-view). */
  get payload(): Uint8Array {
    return this.bytes.subarray(PAYLOAD);
  }
}

/** High-level form of an Ethernet header. */
export interface EthernetRepr {
  /** Destination MAC, lowercase `xx:xx:xx:xx:xx:xx`. */
  dst: string;
  /** Source MAC. */
  src: string;
  /** EtherType (e.g. {@linkcode ETHERTYPE_IPV6}). */
  ethertype: number;
}

/** Parses an Ethernet II header; `payload` is a sub-view of the rest of the frame. */
export function parseEthernet(
  bytes: Uint8Array,
): Parsed<{ repr: EthernetRepr; payload: Uint8Array }> {
  const f = new EthernetFrame(bytes);
  const err = f.checkLen();
  if (err) return err;
  return ok({
    repr: { dst: formatMac(bytes, DST), src: formatMac(bytes, SRC), ethertype: f.ethertype },
    payload: f.payload,
  });
}

/**
 * Writes the 14-byte header of `repr` at the start of `buf` and returns 14.
 * @throws {RangeError} when `buf` is too small or the EtherType is out of range.
 * @throws {TypeError} on bad MAC text.
 */
export function emitEthernet(repr: EthernetRepr, buf: Uint8Array): number {
  if (buf.length < ETHERNET_HEADER_LEN) {
    throw new RangeError(`emitEthernet: buffer of ${buf.length} bytes, need 14`);
  }
  if (!Number.isInteger(repr.ethertype) || repr.ethertype < 0 || repr.ethertype > 0xffff) {
    throw new RangeError(`ethertype out of range: ${repr.ethertype}`);
  }
  const f = new EthernetFrame(buf);
  f.dst = parseMac(repr.dst);
  f.src = parseMac(repr.src);
  f.ethertype = repr.ethertype;
  return ETHERNET_HEADER_LEN;
}
