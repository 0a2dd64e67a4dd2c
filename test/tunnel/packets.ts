/**
 * Inner packets for the tunnel tests, built byte by byte (independent of the code under test).
 *
 * @module
 */

import { parseIPv6 } from "../../src/wire/addr.ts";
import { upperLayerChecksum } from "../../src/wire/checksum.ts";

/** An IPv6 + UDP packet (RFC 8200 §3, RFC 768) with a correct checksum (RFC 8200 §8.1). */
export function udpPacket(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  payload: Uint8Array,
  hopLimit = 64,
): Uint8Array<ArrayBuffer> {
  const udpLen = 8 + payload.length;
  const p = new Uint8Array(40 + udpLen);
  const dv = new DataView(p.buffer);
  p[0] = 0x60;
  dv.setUint16(4, udpLen);
  p[6] = 17;
  p[7] = hopLimit;
  p.set(parseIPv6(src), 8);
  p.set(parseIPv6(dst), 24);
  dv.setUint16(40, sport);
  dv.setUint16(42, dport);
  dv.setUint16(44, udpLen);
  p.set(payload, 48);
  const c = upperLayerChecksum(src, dst, 17, p.subarray(40));
  dv.setUint16(46, c === 0 ? 0xffff : c);
  return p;
}

/** Deterministic payload of `size` bytes that differs for every size and position. */
export function pattern(size: number, seed = 0): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(size);
  let x = (size * 2654435761 + seed * 40503 + 1) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Hex text of bytes. */
export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Bytes of hex text. */
export function unhex(s: string): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return b;
}
