/**
 * Encapsulating Security Payload framing (RFC 4303 §2): the header, the trailer inside the
 * encrypted part, and the Integrity Check Value. The cryptography lives in `src/ipsec/`; this
 * codec only knows where the fields are, given the algorithm's IV and ICV lengths.
 *
 * ESP packet, RFC 4303 §2 (offsets from the SPI):
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
 * |               Security Parameters Index (SPI)                 | ^   0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   4
 * |                      Sequence Number                          | |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   8
 * |                IV (ivLen octets, per algorithm)               | |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ | ---- encrypted part
 * |                    Payload Data (variable)                    | |   ^
 * ~                                                               ~ |   |
 * +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
 * |               |     Padding (0-255 bytes): 1, 2, 3, ...       | |   |
 * +-+-+-+-+-+-+-+-+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
 * |                               |  Pad Length   | Next Header   | v   v
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ------
 * |         Integrity Check Value (icvLen octets, per algorithm)  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  The encrypted part is a multiple of `align` octets: the cipher's block size and 4 (§2.4:
 *  Pad Length and Next Header end on a 4-octet boundary). The ICV covers SPI through Next
 *  Header (§2.8); AES-GCM authenticates SPI and Sequence Number as AAD instead (RFC 4106 §5).
 * ```
 *
 * @module
 */

import { fail, ok, type Parsed, type ParseError } from "./result.ts";

/** Length of SPI + Sequence Number (RFC 4303 §2.1, §2.2). */
export const ESP_HEADER_LEN = 8;
/** Length of Pad Length + Next Header (RFC 4303 §2.5, §2.6). */
export const ESP_TRAILER_LEN = 2;
/** Largest Pad Length (RFC 4303 §2.5). */
export const ESP_MAX_PAD = 255;

const SPI = 0;
const SEQUENCE = 4;
const IV = 8;

/**
 * Where an algorithm puts things (RFC 4303 §2.3, §2.4, §2.8): IV length, ICV length, and the
 * alignment of the encrypted part (the least common multiple of the cipher's block size and 4).
 */
export interface EspLayout {
  /** Octets of IV after the Sequence Number (0 for NULL encryption, RFC 2410). */
  ivLen: number;
  /** Octets of ICV at the end. */
  icvLen: number;
  /** The encrypted part's length is a multiple of this (4, or 16 for AES-CBC). */
  align: number;
}

/**
 * Zero-copy view of an ESP packet (from the SPI to the end of the ICV) under a layout.
 * Getters of the variable parts assume `checkLen()` passed.
 */
export class EspPacket {
  readonly #dv: DataView;

  constructor(readonly bytes: Uint8Array, readonly layout: EspLayout) {
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Null when the packet holds header, IV, an encrypted part of at least one `align` unit and
   * the ICV; else a truncation failure. (Whether the encrypted part is a whole number of units
   * is {@linkcode parseEsp}'s business: a value, "malformed".)
   */
  checkLen(): ParseError | null {
    if (this.bytes.length < ESP_HEADER_LEN) return fail("truncated", 0, "header");
    const { ivLen, icvLen, align } = this.layout;
    if (this.bytes.length < ESP_HEADER_LEN + ivLen) return fail("truncated", IV, "iv");
    if (this.bytes.length < ESP_HEADER_LEN + ivLen + Math.max(align, ESP_TRAILER_LEN) + icvLen) {
      return fail("truncated", IV + ivLen, "encrypted");
    }
    return null;
  }

  /** Security Parameters Index (§2.1). */
  get spi(): number {
    return this.#dv.getUint32(SPI);
  }
  set spi(v: number) {
    this.#dv.setUint32(SPI, v);
  }

  /** Sequence Number, the low 32 bits (§2.2). */
  get sequence(): number {
    return this.#dv.getUint32(SEQUENCE);
  }
  set sequence(v: number) {
    this.#dv.setUint32(SEQUENCE, v);
  }

  /** The IV (a sub-view). */
  get iv(): Uint8Array {
    return this.bytes.subarray(IV, IV + this.layout.ivLen);
  }

  /** Offset of the encrypted part (payload, padding, Pad Length, Next Header). */
  get encryptedOffset(): number {
    return IV + this.layout.ivLen;
  }

  /** The encrypted part (a sub-view). */
  get encrypted(): Uint8Array {
    return this.bytes.subarray(this.encryptedOffset, this.bytes.length - this.layout.icvLen);
  }

  /** What an HMAC ICV covers: SPI through the end of the encrypted part (§2.8, §3.3.4). */
  get authenticated(): Uint8Array {
    return this.bytes.subarray(0, this.bytes.length - this.layout.icvLen);
  }

  /** The Integrity Check Value (a sub-view). */
  get icv(): Uint8Array {
    return this.bytes.subarray(this.bytes.length - this.layout.icvLen);
  }
}

/** The SPI of an ESP packet, or null when fewer than 4 octets (a cheap peek for SA lookup). */
export function peekEspSpi(bytes: Uint8Array): number | null {
  if (bytes.length < 4) return null;
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
}

/** High-level form of an ESP packet. `iv`, `encrypted` and `icv` are sub-views when parsed. */
export interface EspRepr {
  /** Security Parameters Index (§2.1); 0 is reserved and never on the wire. */
  spi: number;
  /** Sequence Number (§2.2), 32 bits (no Extended Sequence Numbers). */
  sequence: number;
  iv: Uint8Array;
  /** Payload, padding, Pad Length, Next Header — still encrypted. */
  encrypted: Uint8Array;
  icv: Uint8Array;
}

/**
 * Parses the framing of an ESP packet under `layout` (RFC 4303 §2). "truncated" when the
 * fixed parts do not fit, "malformed" for SPI 0 (§2.1) or an encrypted part that is not a whole
 * number of `layout.align` units (§2.4). Nothing is decrypted or verified here.
 */
export function parseEsp(bytes: Uint8Array, layout: EspLayout): Parsed<EspRepr> {
  const p = new EspPacket(bytes, layout);
  const err = p.checkLen();
  if (err) return err;
  if (p.spi === 0) return fail("malformed", SPI, "spi");
  const enc = p.encrypted;
  if (enc.length % layout.align !== 0) return fail("malformed", p.encryptedOffset, "encrypted");
  return ok({ spi: p.spi, sequence: p.sequence, iv: p.iv, encrypted: enc, icv: p.icv });
}

/** Length in octets of the ESP packet of `repr`. */
export function espLen(repr: EspRepr): number {
  return ESP_HEADER_LEN + repr.iv.length + repr.encrypted.length + repr.icv.length;
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${name} out of range 0..2^32-1: ${v}`);
  }
}

/**
 * Writes the ESP packet of `repr` at the start of `buf` and returns its length.
 * @throws {RangeError} on a too-small buffer, SPI 0, or out-of-range fields.
 */
export function emitEsp(repr: EspRepr, buf: Uint8Array): number {
  checkU32("EspRepr.spi", repr.spi);
  if (repr.spi === 0) throw new RangeError("SPI 0 is reserved (RFC 4303 §2.1)");
  checkU32("EspRepr.sequence", repr.sequence);
  const len = espLen(repr);
  if (buf.length < len) throw new RangeError(`emitEsp: buffer of ${buf.length}, need ${len}`);
  emitEspHeader(repr.spi, repr.sequence, buf);
  buf.set(repr.iv, IV);
  buf.set(repr.encrypted, IV + repr.iv.length);
  buf.set(repr.icv, IV + repr.iv.length + repr.encrypted.length);
  return len;
}

/**
 * Writes SPI and Sequence Number at the start of `buf` (RFC 4303 §2.1, §2.2); returns 8.
 * @throws {RangeError} on a too-small buffer or out-of-range values.
 */
export function emitEspHeader(spi: number, sequence: number, buf: Uint8Array): number {
  checkU32("spi", spi);
  checkU32("sequence", sequence);
  if (buf.length < ESP_HEADER_LEN) throw new RangeError("emitEspHeader: buffer under 8 octets");
  const dv = new DataView(buf.buffer, buf.byteOffset, ESP_HEADER_LEN);
  dv.setUint32(SPI, spi);
  dv.setUint32(SEQUENCE, sequence);
  return ESP_HEADER_LEN;
}

/**
 * Pad Length for `payloadLen` octets of payload so that payload + padding + the 2-octet trailer
 * is a multiple of `align` (RFC 4303 §2.4), the least padding that does it.
 */
export function espPadLength(payloadLen: number, align: number): number {
  const r = (payloadLen + ESP_TRAILER_LEN) % align;
  return r === 0 ? 0 : align - r;
}

/** Length of the encrypted part (payload, padding, trailer) for `payloadLen` octets. */
export function espEncryptedLen(payloadLen: number, align: number): number {
  return payloadLen + espPadLength(payloadLen, align) + ESP_TRAILER_LEN;
}

/**
 * Writes padding 1, 2, 3, … (RFC 4303 §2.4, the default for ciphers that do not define it),
 * Pad Length and Next Header after the `payloadLen` octets of payload already at the start of
 * `buf`; returns the length of the whole plaintext (a multiple of `align`).
 * @throws {RangeError} on a too-small buffer, a bad `nextHeader`, or `align` over 256.
 */
export function emitEspTrailer(
  buf: Uint8Array,
  payloadLen: number,
  opts: { nextHeader: number; align: number },
): number {
  const { nextHeader, align } = opts;
  if (!Number.isInteger(nextHeader) || nextHeader < 0 || nextHeader > 0xff) {
    throw new RangeError(`nextHeader out of range 0..255: ${nextHeader}`);
  }
  if (!Number.isInteger(align) || align < 1 || align > ESP_MAX_PAD + 1) {
    throw new RangeError(`align out of range 1..256: ${align}`);
  }
  const pad = espPadLength(payloadLen, align);
  const len = payloadLen + pad + ESP_TRAILER_LEN;
  if (buf.length < len) {
    throw new RangeError(`emitEspTrailer: buffer of ${buf.length}, need ${len}`);
  }
  for (let i = 0; i < pad; i++) buf[payloadLen + i] = i + 1;
  buf[payloadLen + pad] = pad;
  buf[payloadLen + pad + 1] = nextHeader;
  return len;
}

/** The decrypted encrypted part, split. `payload` and `padding` are sub-views. */
export interface EspPlaintext {
  payload: Uint8Array;
  padding: Uint8Array;
  /** Next Header (§2.6): the protocol of `payload`; 59 marks a dummy packet (§2.6, §2.4). */
  nextHeader: number;
}

/**
 * Splits a decrypted encrypted part into payload, padding and trailer (RFC 4303 §2.4–2.6).
 * "truncated" when shorter than the trailer; "malformed" when Pad Length exceeds what precedes
 * it (field `padLength`) or the padding is not 1, 2, 3, … (field `padding`, offset of the first
 * wrong octet: every cipher here leaves padding to ESP's default, which the receiver checks).
 * Offsets count from the start of `plain`.
 */
export function parseEspTrailer(plain: Uint8Array): Parsed<EspPlaintext> {
  if (plain.length < ESP_TRAILER_LEN) return fail("truncated", 0, "trailer");
  const padLenAt = plain.length - 2;
  const pad = plain[padLenAt];
  if (pad > padLenAt) return fail("malformed", padLenAt, "padLength");
  const start = padLenAt - pad;
  for (let i = 0; i < pad; i++) {
    if (plain[start + i] !== i + 1) return fail("malformed", start + i, "padding");
  }
  return ok({
    payload: plain.subarray(0, start),
    padding: plain.subarray(start, padLenAt),
    nextHeader: plain[padLenAt + 1],
  });
}
