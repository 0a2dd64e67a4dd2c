/**
 * Segmentation of the super-packets a tun/tap with TCP/UDP segmentation offload hands over
 * (virtio_net_hdr GSO_TCPV6 / GSO_UDP_L4): one IPv6 + TCP (or UDP) header and up to 64 KB of
 * payload, to be split into `gso_size`-byte segments that each fit the tunnel — what the
 * kernel's `tcp_gso_segment` / `__udp_gso_segment` would have done (RFC 9293 §3.1 header
 * fields, RFC 8200 §8.1 checksums).
 *
 * Per segment: the IPv6 payload length; TCP sequence number advanced by the payload before it,
 * FIN and PSH only on the last segment, CWR only on the first (RFC 3168 §6.1.2); UDP length;
 * a complete checksum (whatever the super-packet carried: the kernel leaves a partial one).
 * Sans-I/O and allocation-free: `prepare` once per super-packet, then `emit` per segment into
 * whatever buffer the caller picks (a sendmmsg ring slot).
 *
 * @module
 */

import { copyAndSum, copyBytes, fold, type PacketMemory, sum16 } from "./checksum.ts";
import { GSO } from "./vnet.ts";

const IP6_LEN = 40;
const NH_TCP = 6;
const NH_UDP = 17;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/** Why {@linkcode GsoSplitter.prepare} refused a super-packet. */
export const SPLIT_ERROR = {
  /** Not IPv6, or the GSO type does not match the next header (extension headers included). */
  UNSUPPORTED: -1,
  /** Headers cut short, a bad TCP data offset, or a zero segment size. */
  MALFORMED: -2,
} as const;

/** Splits one GSO super-packet into segments (reuse one per Worker). */
export class GsoSplitter {
  /** Segments of the prepared super-packet. */
  count = 0;
  /** IPv6 length of its largest segment: headers + min(gso_size, payload). */
  segmentLength = 0;
  #src: PacketMemory | undefined;
  #ip = 0;
  #hdr = 0;
  #payload = 0;
  #gso = 0;
  #nh = 0;
  #seq = 0;
  #flags = 0;
  #addrSum = 0;

  /**
   * Takes the super-packet `src.u8[ip, ip + ipLen)` (an IPv6 packet, next header TCP for
   * `GSO.TCPV6` or UDP for `GSO.UDP_L4`, the ECN bit ignored) to be cut into `gsoSize`-byte
   * payloads. Returns the number of segments (≥ 1), or a negative {@linkcode SPLIT_ERROR}.
   * The source must stay untouched until the last `emit`.
   */
  prepare(src: PacketMemory, ip: number, ipLen: number, gsoType: number, gsoSize: number): number {
    this.count = 0;
    this.segmentLength = 0;
    const b = src.u8;
    if (ipLen < IP6_LEN || ip + ipLen > b.length || (b[ip] >> 4) !== 6) {
      return SPLIT_ERROR.UNSUPPORTED;
    }
    const nh = b[ip + 6];
    const type = gsoType & ~GSO.ECN;
    const l4 = ip + IP6_LEN;
    let hdr: number;
    if (type === GSO.TCPV6 && nh === NH_TCP) {
      if (ipLen < IP6_LEN + 20) return SPLIT_ERROR.MALFORMED;
      const tcpLen = (b[l4 + 12] >> 4) << 2;
      if (tcpLen < 20 || IP6_LEN + tcpLen > ipLen) return SPLIT_ERROR.MALFORMED;
      hdr = IP6_LEN + tcpLen;
      this.#seq = ((b[l4 + 4] << 24) | (b[l4 + 5] << 16) | (b[l4 + 6] << 8) | b[l4 + 7]) >>> 0;
      this.#flags = b[l4 + 13];
    } else if (type === GSO.UDP_L4 && nh === NH_UDP) {
      if (ipLen < IP6_LEN + 8) return SPLIT_ERROR.MALFORMED;
      hdr = IP6_LEN + 8;
    } else {
      return SPLIT_ERROR.UNSUPPORTED;
    }
    if (!(gsoSize >= 1)) return SPLIT_ERROR.MALFORMED;
    const payload = ipLen - hdr;
    this.#src = src;
    this.#ip = ip;
    this.#hdr = hdr;
    this.#payload = payload;
    this.#gso = gsoSize;
    this.#nh = nh;
    this.#addrSum = sum16(src, ip + 8, 32);
    this.count = payload === 0 ? 1 : Math.ceil(payload / gsoSize);
    this.segmentLength = hdr + Math.min(gsoSize, payload);
    return this.count;
  }

  /**
   * Writes segment `i` (0 ≤ i < count) as a complete IPv6 packet at `dst.u8[at]` and returns
   * its length. `dst` must not overlap the source.
   */
  emit(i: number, dst: PacketMemory, at: number): number {
    const src = this.#src!;
    const hdr = this.#hdr;
    const off = i * this.#gso;
    const chunk = Math.max(0, Math.min(this.#gso, this.#payload - off));
    const len = hdr + chunk;
    const d = dst.u8;
    copyBytes(src, this.#ip, dst, at, hdr);
    const upper = len - IP6_LEN;
    d[at + 4] = upper >>> 8;
    d[at + 5] = upper & 0xff;
    const l4 = at + IP6_LEN;
    let field: number;
    if (this.#nh === NH_TCP) {
      const seq = (this.#seq + off) >>> 0;
      d[l4 + 4] = seq >>> 24;
      d[l4 + 5] = (seq >>> 16) & 0xff;
      d[l4 + 6] = (seq >>> 8) & 0xff;
      d[l4 + 7] = seq & 0xff;
      let flags = this.#flags;
      if (i < this.count - 1) flags &= ~(TCP_FIN | TCP_PSH);
      if (i > 0) flags &= ~TCP_CWR;
      d[l4 + 13] = flags;
      field = l4 + 16;
    } else {
      d[l4 + 4] = upper >>> 8;
      d[l4 + 5] = upper & 0xff;
      field = l4 + 6;
    }
    d[field] = 0;
    d[field + 1] = 0;
    const s = copyAndSum(src, this.#ip + hdr + off, dst, at + hdr, chunk) +
      sum16(dst, l4, hdr - IP6_LEN) + this.#addrSum + upper + this.#nh;
    let c = ~fold(s) & 0xffff;
    if (c === 0 && this.#nh === NH_UDP) c = 0xffff;
    d[field] = c >>> 8;
    d[field + 1] = c & 0xff;
    return len;
  }
}
