/**
 * The Internet checksum (RFC 1071) and the IPv6 upper-layer pseudo-header (RFC 8200 §8.1).
 *
 * @module
 */

import { ipv6Bytes } from "./addr.ts";

/**
 * One's-complement sum of `bytes` as big-endian 16-bit words (an odd last byte is padded with
 * zero), added to `initial`, folded to 16 bits. Not complemented (RFC 1071 §4.1).
 */
export function onesComplementSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  const n = bytes.length;
  const even = n & ~1;
  for (let i = 0; i < even; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (n & 1) sum += bytes[n - 1] << 8;
  // Folding: sum stays far below 2^53 for any realistic length.
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Folded (uncomplemented) sum of the IPv6 pseudo-header: source, destination, 32-bit
 * upper-layer packet length, three zero bytes and the next header value (RFC 8200 §8.1).
 */
export function pseudoHeaderSum(
  src: Uint8Array,
  dst: Uint8Array,
  upperLength: number,
  nextHeader: number,
): number {
  let sum = onesComplementSum(src);
  sum = onesComplementSum(dst, sum);
  sum += (upperLength >>> 16) + (upperLength & 0xffff) + (nextHeader & 0xff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * The checksum to store in an upper-layer header (ICMPv6 RFC 4443 §2.3, MH RFC 6275 §6.1.1):
 * the complement of the sum of the pseudo-header and `payload`. `payload` is the whole
 * upper-layer packet with the checksum field as it is: zero it to compute a checksum; a payload
 * carrying a correct checksum gives 0.
 */
export function upperLayerChecksum(
  src: string | Uint8Array,
  dst: string | Uint8Array,
  nextHeader: number,
  payload: Uint8Array,
): number {
  const ph = pseudoHeaderSum(ipv6Bytes(src), ipv6Bytes(dst), payload.length, nextHeader);
  return ~onesComplementSum(payload, ph) & 0xffff;
}
