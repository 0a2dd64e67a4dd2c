/**
 * IPv6 address text ⇄ bytes for the home agent's per-BU path, without regular expressions,
 * `split` or intermediate arrays: `src/wire/addr.ts` is the reference (and handles the rare
 * forms, e.g. an embedded dotted IPv4 tail), these give the same answers a few times faster
 * (a BU's handling parses and canonicalises four or five addresses, RFC 4291 §2.2,
 * RFC 5952 §4).
 *
 * @module
 */

import { formatIPv6, tryParseIPv6 } from "./addr.ts";

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87; // a-f
  return -1;
}

const groups = new Uint16Array(8);

/**
 * Parses IPv6 address text (RFC 4291 §2.2) into `out[off..off+16]`; false (and `out` left in
 * an unspecified state) when `text` is not an address. Same acceptance as
 * {@linkcode tryParseIPv6} of `src/wire/addr.ts`, which this defers to for text with a dot.
 */
export function parseIPv6Into(text: string, out: Uint8Array, off = 0): boolean {
  const n = text.length;
  if (n < 2 || n > 45) return false;
  let head = 0; // groups before "::"
  let tail = -1; // index in `groups` where the groups after "::" start, -1 without "::"
  let count = 0;
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    tail = 0;
    i = 2;
    if (i === n) {
      out.fill(0, off, off + 16);
      return true;
    }
  }
  for (;;) {
    let v = 0, digits = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      const h = hexValue(c);
      if (h < 0) {
        if (c === 46) return viaWire(text, out, off); // dotted IPv4 tail: the rare form
        break;
      }
      v = (v << 4) | h;
      if (++digits > 4) return false;
      i++;
    }
    if (digits === 0 || count === 8) return false;
    groups[count++] = v;
    if (i === n) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i < n && text.charCodeAt(i) === 58) {
      if (tail >= 0) return false; // a second "::"
      tail = count;
      i++;
      if (i === n) break;
    } else if (i === n) return false; // trailing single ":"
  }
  if (tail < 0) {
    if (count !== 8) return false;
    head = 8;
  } else {
    if (count > 7) return false; // "::" stands for at least one group
    head = tail;
  }
  for (let g = 0; g < head; g++) {
    out[off + 2 * g] = groups[g] >> 8;
    out[off + 2 * g + 1] = groups[g] & 0xff;
  }
  const after = count - head;
  for (let g = head; g < 8 - after; g++) {
    out[off + 2 * g] = 0;
    out[off + 2 * g + 1] = 0;
  }
  for (let k = 0; k < after; k++) {
    const g = 8 - after + k;
    out[off + 2 * g] = groups[head + k] >> 8;
    out[off + 2 * g + 1] = groups[head + k] & 0xff;
  }
  return true;
}

function viaWire(text: string, out: Uint8Array, off: number): boolean {
  const b = tryParseIPv6(text);
  if (b === null) return false;
  out.set(b, off);
  return true;
}

const HEX = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102];
const codes: number[] = [];

/**
 * RFC 5952 canonical text of the 16 bytes at `bytes[off]`: the same string as
 * `formatIPv6` of `src/wire/addr.ts` (which handles the IPv4-mapped form here). The characters
 * are gathered first and the string made in one piece (`s += …` would leave a chain of
 * intermediate strings per address: garbage at signaling rates).
 */
export function formatIPv6Fast(bytes: Uint8Array, off = 0): string {
  // IPv4-mapped ::ffff:a.b.c.d has its own text form (RFC 5952 §5)
  if (
    bytes[off + 10] === 0xff && bytes[off + 11] === 0xff && bytes[off] === 0 &&
    bytes[off + 1] === 0 && bytes[off + 2] === 0 && bytes[off + 3] === 0 &&
    bytes[off + 4] === 0 && bytes[off + 5] === 0 && bytes[off + 6] === 0 &&
    bytes[off + 7] === 0 && bytes[off + 8] === 0 && bytes[off + 9] === 0
  ) return formatIPv6(bytes, off);
  let bestStart = -1, bestLen = 1;
  for (let g = 0; g < 8;) {
    if (bytes[off + 2 * g] !== 0 || bytes[off + 2 * g + 1] !== 0) {
      g++;
      continue;
    }
    let j = g;
    while (j < 8 && bytes[off + 2 * j] === 0 && bytes[off + 2 * j + 1] === 0) j++;
    if (j - g > bestLen) {
      bestStart = g;
      bestLen = j - g;
    }
    g = j;
  }
  let n = 0;
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      codes[n++] = 58;
      codes[n++] = 58;
      g += bestLen - 1;
      continue;
    }
    if (n > 0 && g !== bestStart + bestLen) codes[n++] = 58;
    const v = (bytes[off + 2 * g] << 8) | bytes[off + 2 * g + 1];
    if (v >= 0x1000) codes[n++] = HEX[v >> 12];
    if (v >= 0x100) codes[n++] = HEX[(v >> 8) & 15];
    if (v >= 0x10) codes[n++] = HEX[(v >> 4) & 15];
    codes[n++] = HEX[v & 15];
  }
  codes.length = n;
  return String.fromCharCode.apply(null, codes);
}

const scratch = new Uint8Array(16);

/**
 * RFC 5952 canonical form of IPv6 address text (what `canonicalIPv6` of `src/wire/addr.ts`
 * returns). @throws {TypeError} naming the text when it is not an IPv6 address.
 */
export function canonicalIPv6Fast(text: string): string {
  if (!parseIPv6Into(text, scratch)) {
    throw new TypeError(`not an IPv6 address: ${JSON.stringify(text)}`);
  }
  return formatIPv6Fast(scratch);
}
