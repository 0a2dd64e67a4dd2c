/**
 * Type-length-value options shared by IPv6 extension headers (RFC 8200 §4.2) and the Mobility
 * Header (RFC 6275 §6.2): Pad1 is a single zero octet, every other option is type, length (of
 * the data, in octets) and data. One padding helper lays options out with their alignment
 * requirements (`xn+y`, counted from the start of the enclosing header) and pads the whole to a
 * multiple of 8 octets: the HAO's and Alt-CoA's 8n+6 live here, once.
 *
 * Internal to `src/wire` (not re-exported by `mod.ts`).
 *
 * @module
 */

import { fail, type ParseError } from "./result.ts";

/** Pad1 option type (RFC 8200 §4.2, RFC 6275 §6.2.2). */
export const PAD1 = 0;
/** PadN option type (RFC 8200 §4.2, RFC 6275 §6.2.3). */
export const PADN = 1;

/** An option to lay out: total size (type + length + data) and alignment `n`·x + `k`. */
export interface OptionSlot {
  size: number;
  n: number;
  k: number;
}

/** Where each option goes, and the padded end. */
export interface OptionLayout {
  /** Offset of each option, in order. */
  at: number[];
  /** End of the options area, a multiple of 8. */
  end: number;
}

/** Octets of padding to put at `offset` so the next option starts at an offset ≡ k (mod n). */
export function alignPadding(offset: number, n: number, k: number): number {
  return (((k - offset) % n) + n) % n;
}

/**
 * Lays out `slots` starting at `start`, inserting the least padding that meets each option's
 * alignment, then pads to a multiple of 8 octets (RFC 8200 §4.2 / RFC 6275 §6.2).
 */
export function layoutOptions(start: number, slots: readonly OptionSlot[]): OptionLayout {
  const at: number[] = [];
  let off = start;
  for (const s of slots) {
    off += alignPadding(off, s.n, s.k);
    at.push(off);
    off += s.size;
  }
  off += alignPadding(off, 8, 0);
  return { at, end: off };
}

/** Writes `len` octets of padding at `offset`: Pad1 for one octet, PadN with zero data otherwise. */
export function writePadding(buf: Uint8Array, offset: number, len: number): void {
  if (len === 0) return;
  if (len === 1) {
    buf[offset] = PAD1;
    return;
  }
  buf[offset] = PADN;
  buf[offset + 1] = len - 2;
  buf.fill(0, offset + 2, offset + len);
}

/**
 * Fills every gap of `layout` (before, between and after the options of sizes `sizes`) with
 * padding, starting from `start`.
 */
export function writeLayoutPadding(
  buf: Uint8Array,
  start: number,
  layout: OptionLayout,
  sizes: readonly number[],
): void {
  let off = start;
  for (let i = 0; i < layout.at.length; i++) {
    writePadding(buf, off, layout.at[i] - off);
    off = layout.at[i] + sizes[i];
  }
  writePadding(buf, off, layout.end - off);
}

/** One option seen by {@linkcode TlvIterator}: its type, where it starts, its data (a sub-view). */
export interface TlvOption {
  code: number;
  offset: number;
  data: Uint8Array;
}

/**
 * Zero-copy iterator over the TLV options in `bytes[start, end)`, skipping Pad1 and PadN.
 * `next()` returns an option, null at the end, or a "malformed" failure when an option runs
 * past `end` (field `optionLength`).
 */
export class TlvIterator {
  #off: number;

  constructor(readonly bytes: Uint8Array, start: number, readonly end: number) {
    this.#off = start;
  }

  /** The next non-padding option, null when done, or a failure. */
  next(): TlvOption | ParseError | null {
    const b = this.bytes;
    while (this.#off < this.end) {
      const at = this.#off;
      const code = b[at];
      if (code === PAD1) {
        this.#off = at + 1;
        continue;
      }
      if (at + 2 > this.end) return fail("malformed", at, "optionLength");
      const len = b[at + 1];
      if (at + 2 + len > this.end) return fail("malformed", at + 1, "optionLength");
      this.#off = at + 2 + len;
      if (code === PADN) continue;
      return { code, offset: at, data: b.subarray(at + 2, at + 2 + len) };
    }
    return null;
  }
}
