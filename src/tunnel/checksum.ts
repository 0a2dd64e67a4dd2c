/**
 * The data path's byte work, without allocation: a pair of views over one packet buffer, the
 * Internet checksum (RFC 1071) read a 32-bit word at a time, the IPv6 pseudo-header (RFC 8200
 * §8.1), finishing a checksum the kernel left partial (CHECKSUM_PARTIAL, virtio_net_hdr
 * `csum_start`/`csum_offset`), and word-wise copies between buffers.
 *
 * Offsets are absolute in the buffer. The word-wise paths need 4-aligned offsets; the data
 * path keeps IPv6 headers 8-aligned so that TCP payloads (header lengths are multiples of 4)
 * stay aligned, and everything else falls back to a byte loop.
 *
 * @module
 */

/** A `Uint8Array` and a `Uint32Array` over the same whole `ArrayBuffer` (offsets are shared). */
export class PacketMemory {
  /** Bytes, from offset 0 of the buffer. */
  readonly u8: Uint8Array;
  /** Host-order 32-bit words, from offset 0 (word i = bytes 4i … 4i+3, little-endian host). */
  readonly u32: Uint32Array;

  /** Views over `buffer` (its length is rounded down to whole words for `u32`). */
  constructor(buffer: ArrayBuffer) {
    this.u8 = new Uint8Array(buffer);
    this.u32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }

  /** Views over the whole buffer behind `view` (`view.byteOffset` is where `view` starts). */
  static of(view: Uint8Array): PacketMemory {
    return new PacketMemory(view.buffer as ArrayBuffer);
  }
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("src/tunnel/checksum.ts assumes a little-endian host");
}

/**
 * Unfolded one's-complement sum of `m.u8[off, off + len)` read as big-endian 16-bit words, the
 * first word starting at `off` (an odd last byte is padded with zero; RFC 1071 §4.1). Fold it
 * with {@linkcode fold}. Exact for `len` up to 128 KiB.
 */
export function sum16(m: PacketMemory, off: number, len: number): number {
  const b = m.u8;
  const end = off + len;
  let s = 0;
  if ((off & 1) !== 0) {
    for (; off + 1 < end; off += 2) s += (b[off] << 8) | b[off + 1];
    if (off < end) s += b[off] << 8;
    return s;
  }
  if ((off & 2) !== 0 && off + 2 <= end) {
    s += (b[off] << 8) | b[off + 1];
    off += 2;
  }
  // Whole words: the sum of little-endian 16-bit halves is the byte-swapped sum of the
  // big-endian words (RFC 1071 §2(B)): fold it, swap it back.
  const w = m.u32;
  const wEnd = end >>> 2;
  let lo = 0;
  let hi = 0;
  for (let i = off >>> 2; i < wEnd; i++) {
    const x = w[i];
    lo += x & 0xffff;
    hi += x >>> 16;
  }
  if (wEnd << 2 > off) off = wEnd << 2;
  if (off + 2 <= end) {
    s += (b[off] << 8) | b[off + 1];
    off += 2;
  }
  if (off < end) s += b[off] << 8;
  let le = lo + hi;
  le = (le % 0x10000) + Math.floor(le / 0x10000);
  le = (le & 0xffff) + (le >>> 16);
  return s + (((le & 0xff) << 8) | (le >>> 8));
}

/** Folds an unfolded sum (below 2^53) to 16 bits with end-around carry; not complemented. */
export function fold(s: number): number {
  s = (s % 0x10000) + Math.floor(s / 0x10000);
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16);
}

/**
 * Unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1) of the packet whose IPv6 header is at
 * `ip`: its source and destination, `upperLength` and `nextHeader`.
 */
export function pseudoSum(
  m: PacketMemory,
  ip: number,
  upperLength: number,
  nextHeader: number,
): number {
  return sum16(m, ip + 8, 32) + (upperLength >>> 16) + (upperLength & 0xffff) + nextHeader;
}

/**
 * Finishes a checksum the sender left to "hardware" (CHECKSUM_PARTIAL: the field at `field`
 * holds the folded pseudo-header sum): sums `[start, end)`, stores the complement big-endian at
 * `field`, 0 sent as 0xffff (as the kernel's `skb_checksum_help`; required for UDP, RFC 8200
 * §8.1, harmless for TCP). Returns false, touching nothing, when the field is not inside.
 */
export function finishChecksum(
  m: PacketMemory,
  start: number,
  end: number,
  field: number,
): boolean {
  if (start < 0 || field < start || field + 2 > end || end > m.u8.length) return false;
  const c = ~fold(sum16(m, start, end - start)) & 0xffff;
  const v = c === 0 ? 0xffff : c;
  m.u8[field] = v >>> 8;
  m.u8[field + 1] = v & 0xff;
  return true;
}

/**
 * Whether the TCP or UDP checksum of the IPv6 packet at `ip` (upper layer at `l4`, the packet
 * ending at `end`, next header `nh`) verifies (RFC 8200 §8.1: the sum over pseudo-header and
 * upper layer, checksum included, folds to 0xffff).
 */
export function transportChecksumOk(
  m: PacketMemory,
  ip: number,
  l4: number,
  end: number,
  nh: number,
): boolean {
  return fold(pseudoSum(m, ip, end - l4, nh) + sum16(m, l4, end - l4)) === 0xffff;
}

/** Copies `len` bytes from `src.u8[from]` to `dst.u8[to]` (word-wise when both are 4-aligned). */
export function copyBytes(
  src: PacketMemory,
  from: number,
  dst: PacketMemory,
  to: number,
  len: number,
): void {
  const s = src.u8;
  const d = dst.u8;
  let i = 0;
  if (((from | to) & 3) === 0) {
    const sw = src.u32;
    const dw = dst.u32;
    const words = len >>> 2;
    const a = from >>> 2;
    const b = to >>> 2;
    for (let k = 0; k < words; k++) dw[b + k] = sw[a + k];
    i = words << 2;
  }
  for (; i < len; i++) d[to + i] = s[from + i];
}

/**
 * Copies `len` bytes like {@linkcode copyBytes} and returns the unfolded {@linkcode sum16} of
 * the copy (as it lies at `to`), in one pass when both offsets are 4-aligned.
 */
export function copyAndSum(
  src: PacketMemory,
  from: number,
  dst: PacketMemory,
  to: number,
  len: number,
): number {
  if (((from | to) & 3) !== 0) {
    copyBytes(src, from, dst, to, len);
    return sum16(dst, to, len);
  }
  const sw = src.u32;
  const dw = dst.u32;
  const words = len >>> 2;
  const a = from >>> 2;
  const b = to >>> 2;
  let lo = 0;
  let hi = 0;
  for (let k = 0; k < words; k++) {
    const x = sw[a + k];
    dw[b + k] = x;
    lo += x & 0xffff;
    hi += x >>> 16;
  }
  let le = lo + hi;
  le = (le % 0x10000) + Math.floor(le / 0x10000);
  le = (le & 0xffff) + (le >>> 16);
  let s = ((le & 0xff) << 8) | (le >>> 8);
  const sb = src.u8;
  const db = dst.u8;
  let i = words << 2;
  for (; i < len; i++) db[to + i] = sb[from + i];
  i = words << 2;
  if (i + 2 <= len) {
    s += (db[to + i] << 8) | db[to + i + 1];
    i += 2;
  }
  if (i < len) s += db[to + i] << 8;
  return s;
}
