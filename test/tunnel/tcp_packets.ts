/**
 * TCP/UDP over IPv6 packets for the data path's unit tests, built field by field with
 * `src/wire/checksum.ts` (independent of the code under test).
 *
 * @module
 */

import { parseIPv6 } from "../../src/wire/addr.ts";
import { upperLayerChecksum } from "../../src/wire/checksum.ts";

/** TCP flag bits (RFC 9293 §3.1). */
export const TCP = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Fields of {@linkcode tcpSegment}. */
export interface TcpFields {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  seq: number;
  ack: number;
  flags?: number;
  window?: number;
  /** TCP options, a multiple of 4 bytes. */
  options?: Uint8Array;
  payload: Uint8Array;
  hopLimit?: number;
  /** Traffic class and flow label word (the low 28 bits of the first IPv6 word). */
  flow?: number;
  /** Leave the checksum field 0 instead of computing it. */
  noChecksum?: boolean;
}

/** An IPv6 + TCP packet with a correct checksum (RFC 8200 §8.1). */
export function tcpSegment(f: TcpFields): Uint8Array<ArrayBuffer> {
  const opts = f.options ?? new Uint8Array(0);
  if (opts.length % 4 !== 0) throw new RangeError("options must be a multiple of 4 bytes");
  const tcpLen = 20 + opts.length;
  const p = new Uint8Array(40 + tcpLen + f.payload.length);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, (6 << 28) | ((f.flow ?? 0) & 0x0fffffff));
  dv.setUint16(4, tcpLen + f.payload.length);
  p[6] = 6;
  p[7] = f.hopLimit ?? 64;
  p.set(parseIPv6(f.src), 8);
  p.set(parseIPv6(f.dst), 24);
  dv.setUint16(40, f.sport ?? 40000);
  dv.setUint16(42, f.dport ?? 5201);
  dv.setUint32(44, f.seq >>> 0);
  dv.setUint32(48, f.ack >>> 0);
  p[52] = (tcpLen / 4) << 4;
  p[53] = f.flags ?? TCP.ACK;
  dv.setUint16(54, f.window ?? 512);
  p.set(opts, 60);
  p.set(f.payload, 40 + tcpLen);
  if (!f.noChecksum) dv.setUint16(56, upperLayerChecksum(f.src, f.dst, 6, p.subarray(40)));
  return p;
}

/** An IPv6 + UDP packet with a correct checksum (0 sent as 0xffff). */
export function udpDatagram(
  src: string,
  dst: string,
  payload: Uint8Array,
  ports: [number, number] = [5000, 6000],
): Uint8Array<ArrayBuffer> {
  const p = new Uint8Array(48 + payload.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x60;
  dv.setUint16(4, 8 + payload.length);
  p[6] = 17;
  p[7] = 64;
  p.set(parseIPv6(src), 8);
  p.set(parseIPv6(dst), 24);
  dv.setUint16(40, ports[0]);
  dv.setUint16(42, ports[1]);
  dv.setUint16(44, 8 + payload.length);
  p.set(payload, 48);
  const c = upperLayerChecksum(src, dst, 17, p.subarray(40));
  dv.setUint16(46, c === 0 ? 0xffff : c);
  return p;
}

/** `n` bytes of a deterministic pattern starting at stream offset `from`. */
export function streamBytes(from: number, n: number, seed = 1): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = Math.imul((from + i) ^ seed, 2654435761) >>> 0;
    b[i] = (x >>> 13) & 0xff;
  }
  return b;
}
