/**
 * ESP transport-mode processing (RFC 4303 §3.3, §3.4) with WebCrypto only:
 * - AES-GCM, 16-octet ICV (RFC 4106): nonce = salt ‖ 8-octet explicit IV, the IV being the
 *   Sequence Number (zero-extended: never repeated under one key, §3.1 / RFC 4303 §3.3.3);
 *   AAD = SPI ‖ Sequence Number (RFC 4106 §5, no ESN);
 * - AES-CBC (RFC 3602) with a random IV, then HMAC-SHA-256-128 (RFC 4868) over SPI … Next
 *   Header (encrypt-then-MAC, RFC 4303 §3.3.2.1);
 * - NULL encryption (RFC 2410) with HMAC-SHA-256-128.
 *
 * Inbound order (RFC 4303 §3.4.2–§3.4.4): SA lookup by SPI, policy (the SA's home registration
 * matches the packet, RFC 4877 §4), replay check, integrity (constant-time compare of the
 * truncated HMAC; AES-GCM's tag is checked inside WebCrypto), window update, decryption,
 * padding check.
 *
 * Both functions copy what they are given before their first `await`: the caller may reuse its
 * buffer as soon as the call returns its promise.
 *
 * @module
 */

import { canonicalIPv6 } from "../wire/addr.ts";
import {
  emitEspHeader,
  emitEspTrailer,
  ESP_HEADER_LEN,
  espEncryptedLen,
  parseEsp,
  parseEspTrailer,
  peekEspSpi,
} from "../wire/esp.ts";
import type { ParseErrorKind } from "../wire/result.ts";
import type { SecurityAssociation, SecurityAssociationDatabase } from "./sa.ts";

/**
 * Why an inbound ESP packet was refused. Beyond the codec's kinds: `unknownSpi` (no SA,
 * RFC 4303 §3.4.2), `policy` (the SA serves another home address or home agent, RFC 4877 §4),
 * `replay` (field `sequence`: duplicate or left of the window, §3.4.3), `integrity` (field
 * `icv`, §3.4.4).
 */
export type EspErrorKind = ParseErrorKind | "unknownSpi" | "policy" | "replay" | "integrity";

/** A refused inbound packet: a value, never thrown. Offsets count from the SPI. */
export interface EspError {
  ok: false;
  kind: EspErrorKind;
  offset: number;
  field: string;
  /** The SA when one was found (its counters already tell the story). */
  sa?: SecurityAssociation;
}

/** What {@linkcode unprotect} hands back: the SA, the Sequence Number and the inner payload. */
export interface Unprotected {
  sa: SecurityAssociation;
  sequence: number;
  /** Protocol of `payload` (135 for a Mobility Header; 59 is a dummy packet to drop, §2.6). */
  nextHeader: number;
  /** The decrypted payload (a fresh buffer). */
  payload: Uint8Array;
}

/** Result of {@linkcode unprotect}: like `Parsed`, with ESP's failure kinds. */
export type EspParsed<T> = { ok: true; value: T } | EspError;

function refuse(
  kind: EspErrorKind,
  offset: number,
  field: string,
  sa?: SecurityAssociation,
): EspError {
  return sa === undefined ? { ok: false, kind, offset, field } : {
    ok: false,
    kind,
    offset,
    field,
    sa,
  };
}

/** Compares without an early exit, so the time taken says nothing about where they differ. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** A byte array over a plain ArrayBuffer (what WebCrypto takes). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** The 8-octet explicit IV of an AES-GCM packet: the Sequence Number, zero-extended. */
function gcmIv(seq: number): Bytes {
  const iv = new Uint8Array(8);
  new DataView(iv.buffer).setUint32(4, seq);
  return iv;
}

function gcmNonce(salt: Uint8Array, iv: Uint8Array): Bytes {
  const n = new Uint8Array(12);
  n.set(salt, 0);
  n.set(iv, 4);
  return n;
}

/** HMAC-SHA-256-128 (RFC 4868 §2.6): HMAC-SHA-256 of `data`, its leftmost 16 octets. */
export async function hmacSha256_128(key: CryptoKey, data: Bytes): Promise<Bytes> {
  const full = new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
  return full.subarray(0, 16); // HMAC-SHA-256-128: the leftmost 128 bits (RFC 4868 §2.6)
}

/**
 * AES-CBC (RFC 3602) of whole 16-octet blocks without WebCrypto's PKCS#7 padding (ESP pads
 * itself): WebCrypto returns the blocks plus one padding block, dropped here. `key` needs the
 * "encrypt" usage.
 */
export async function aesCbcEncryptBlocks(key: CryptoKey, iv: Bytes, plain: Bytes): Promise<Bytes> {
  const out = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv }, key, plain));
  return out.subarray(0, plain.length);
}

/**
 * AES-CBC (RFC 3602) decryption of whole 16-octet blocks without PKCS#7: WebCrypto insists on
 * valid padding, so a block that decrypts to a full padding block (16 × 0x10) is appended.
 * That block is E_K(0x10… ⊕ C_last), what encrypting nothing with IV = C_last returns. `key`
 * needs the "encrypt" and "decrypt" usages; `cipher` must be a non-empty multiple of 16.
 */
export async function aesCbcDecryptBlocks(
  key: CryptoKey,
  iv: Bytes,
  cipher: Bytes,
): Promise<Bytes> {
  const last = cipher.subarray(cipher.length - 16);
  const pad = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-CBC", iv: last }, key, new Uint8Array(0)),
  );
  const buf = new Uint8Array(cipher.length + 16);
  buf.set(cipher, 0);
  buf.set(pad, cipher.length);
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, buf));
}

/**
 * Protects `payload` (an upper-layer message, e.g. a Mobility Header) under outbound `sa`
 * (RFC 4303 §3.3): returns ESP header + IV + encrypted payload/padding/trailer + ICV, to be
 * placed after the IPv6 header and any Destination Options (HAO) or type 2 routing header, with
 * the preceding Next Header set to 50. The Sequence Number is taken before the first `await`.
 * @throws {SequenceExhaustedError} when the SA has sent 2^32 − 1 packets (nothing is sent).
 * @throws {TypeError} when `sa` is inbound; {RangeError} on a bad `nextHeader`.
 */
export async function protect(
  sa: SecurityAssociation,
  nextHeader: number,
  payload: Uint8Array,
): Promise<Uint8Array> {
  const { ivLen, icvLen, align } = sa.layout;
  const encLen = espEncryptedLen(payload.length, align);
  const out = new Uint8Array(ESP_HEADER_LEN + ivLen + encLen + icvLen);
  const plain = new Uint8Array(encLen);
  plain.set(payload, 0);
  emitEspTrailer(plain, payload.length, { nextHeader, align });
  const seq = sa.nextSequence(); // throws before anything else happens
  emitEspHeader(sa.spi, seq, out);
  const encAt = ESP_HEADER_LEN + ivLen;
  const keys = await sa.cryptoKeys();
  switch (sa.algorithm) {
    case "aes-gcm-128":
    case "aes-gcm-256": {
      const iv = gcmIv(seq);
      out.set(iv, ESP_HEADER_LEN);
      const sealed = await crypto.subtle.encrypt(
        {
          name: "AES-GCM",
          iv: gcmNonce(keys.salt, iv),
          additionalData: out.subarray(0, ESP_HEADER_LEN),
          tagLength: icvLen * 8,
        },
        keys.cipher!,
        plain,
      );
      out.set(new Uint8Array(sealed), encAt); // ciphertext ‖ tag
      break;
    }
    case "aes-cbc-hmac-sha256": {
      const iv = crypto.getRandomValues(new Uint8Array(ivLen)); // unpredictable, RFC 3602 §3
      out.set(iv, ESP_HEADER_LEN);
      out.set(await aesCbcEncryptBlocks(keys.cipher!, iv, plain), encAt);
      out.set(await hmacSha256_128(keys.auth!, out.subarray(0, encAt + encLen)), encAt + encLen);
      break;
    }
    case "null-hmac-sha256":
      out.set(plain, encAt);
      out.set(await hmacSha256_128(keys.auth!, out.subarray(0, encAt + encLen)), encAt + encLen);
      break;
  }
  sa.counters.protected++;
  return out;
}

/** What the packet around the ESP header says about the registration (RFC 4877 §4). */
export interface UnprotectExpect {
  /**
   * The home address the packet is about: the HAO's (BU away from home), the type 2 routing
   * header's (BA), or the source/destination when at home. Must be the SA's.
   */
  homeAddress?: string;
  /** The home agent: the packet's destination (BU) or source (BA). Must be the SA's. */
  homeAgent?: string;
}

/**
 * Checks and decrypts an inbound ESP packet (`bytes` from the SPI to the end of the ICV; RFC
 * 4303 §3.4): SA by SPI, the registration `expect`ed (RFC 4877 §4: the outer addresses and the
 * HAO/RH2 are not covered by the ICV, so the SA must be the home address's own), replay check
 * before integrity (§3.4.3), ICV (§3.4.4), window update, decryption, padding. Every refusal is
 * a value and is counted (on the SA, or on `sad` when no SA was found).
 */
export async function unprotect(
  sad: SecurityAssociationDatabase,
  bytes: Uint8Array,
  expect: UnprotectExpect = {},
): Promise<EspParsed<Unprotected>> {
  const spi = peekEspSpi(bytes);
  if (spi === null) {
    sad.counters.malformed++;
    return refuse("truncated", 0, "spi");
  }
  if (spi === 0) {
    sad.counters.malformed++;
    return refuse("malformed", 0, "spi");
  }
  const sa = sad.inbound(spi);
  if (sa === undefined) {
    sad.counters.unknown_spi++;
    return refuse("unknownSpi", 0, "spi");
  }
  const badHome = expect.homeAddress !== undefined &&
    !sameAddress(expect.homeAddress, sa.homeAddress);
  if (badHome || (expect.homeAgent !== undefined && !sameAddress(expect.homeAgent, sa.homeAgent))) {
    sa.counters.policy_mismatch++;
    return refuse("policy", 0, badHome ? "homeAddress" : "homeAgent", sa);
  }
  const copy = bytes.slice(); // the caller's buffer may be reused while we await
  const p = parseEsp(copy, sa.layout);
  if (!p.ok) {
    sa.counters.malformed++;
    return refuse(p.kind, p.offset, p.field, sa);
  }
  const sequence = p.value.sequence;
  const first = sa.replay.check(sequence);
  if (first !== "ok") return replayed(sa, first);
  const { ivLen, icvLen } = sa.layout;
  const encAt = ESP_HEADER_LEN + ivLen;
  const icvAt = copy.length - icvLen;
  const iv = copy.subarray(ESP_HEADER_LEN, encAt);
  const encrypted = copy.subarray(encAt, icvAt);
  const keys = await sa.cryptoKeys();
  let plain: Bytes;
  switch (sa.algorithm) {
    case "aes-gcm-128":
    case "aes-gcm-256": {
      try {
        plain = new Uint8Array(
          await crypto.subtle.decrypt(
            {
              name: "AES-GCM",
              iv: gcmNonce(keys.salt, iv),
              additionalData: copy.subarray(0, ESP_HEADER_LEN),
              tagLength: icvLen * 8,
            },
            keys.cipher!,
            copy.subarray(encAt), // ciphertext ‖ tag
          ),
        );
      } catch {
        sa.counters.integrity_failures++;
        return refuse("integrity", icvAt, "icv", sa);
      }
      break;
    }
    default: {
      const want = await hmacSha256_128(keys.auth!, copy.subarray(0, icvAt));
      if (!timingSafeEqual(want, copy.subarray(icvAt))) {
        sa.counters.integrity_failures++;
        return refuse("integrity", icvAt, "icv", sa);
      }
      plain = sa.algorithm === "null-hmac-sha256"
        ? encrypted
        : await aesCbcDecryptBlocks(keys.cipher!, iv, encrypted);
    }
  }
  // Authentic: now (and only now) the window moves (§3.4.3). A copy that raced us loses here.
  const second = sa.replay.accept(sequence);
  if (second !== "ok") return replayed(sa, second);
  const t = parseEspTrailer(plain);
  if (!t.ok) {
    sa.counters.malformed++;
    return refuse(t.kind, t.offset + encAt, t.field, sa);
  }
  sa.counters.unprotected++;
  return {
    ok: true,
    value: { sa, sequence, nextHeader: t.value.nextHeader, payload: t.value.payload },
  };
}

function replayed(sa: SecurityAssociation, v: "duplicate" | "tooOld"): EspError {
  if (v === "duplicate") sa.counters.replay_duplicate++;
  else sa.counters.replay_too_old++;
  return refuse("replay", 4, "sequence", sa);
}

function sameAddress(a: string, canonical: string): boolean {
  try {
    return canonicalIPv6(a) === canonical;
  } catch {
    return false;
  }
}
