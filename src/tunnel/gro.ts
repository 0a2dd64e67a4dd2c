/**
 * Coalescing of received TCP segments (what the kernel's GRO does, `tcp_gro_receive`): within
 * one recvmmsg batch, consecutive in-order segments of one flow are merged into one large
 * packet that the data path writes to a tun/tap with a GSO virtio_net_hdr (GSO_TCPV6,
 * NEEDS_CSUM), so the kernel takes 64 KB per write instead of one segment.
 *
 * A segment joins the open packet of its flow (same addresses and ports) only when it is the
 * exact continuation: next sequence number, same ACK number, window, data offset, options,
 * traffic class, flow label and hop limit, flags ACK (PSH allowed on the last one: it closes
 * the packet), a payload no larger than the first one's (a shorter one closes it), within the
 * buffer's capacity, and both checksums verify (a segment the kernel would drop stays alone, so
 * the kernel still drops it). SYN, FIN, RST, URG, ECE, CWR, pure ACKs and everything else pass
 * through unmerged and close their flow's open packet, so that no flow is reordered: packets
 * leave in the order of their first segment.
 *
 * Packets the receiving NIC's GRO already merged. The tunnel arrives on a raw socket, and a
 * kernel's GRO (`ip6ip6_gro_receive`, on by default on real NICs) merges consecutive tunnelled
 * TCP segments before the socket sees them: the socket then hands over one inner packet of up
 * to 64 KB whose TCP checksum field holds only the pseudo-header sum (`tcp6_gro_complete`),
 * and the segment size is lost. Written to a device as it is, such a packet would be dropped
 * (bad checksum, larger than any MTU) and the flow would stall. {@linkcode groMergedGso}
 * recognises it (the field equals the folded pseudo-header sum and the whole checksum does not
 * verify); it is passed on as GSO_TCPV6 + NEEDS_CSUM with segments of
 * {@linkcode mergedSegmentSize} payload bytes — sized for the IPv6 minimum MTU (RFC 8200 §5),
 * so that however the kernel re-segments it, every segment fits any path (TCP is a byte
 * stream: segment boundaries carry no meaning) — or split here on a device without offloads.
 *
 * Sans-I/O and allocation-free: the caller `add`s each packet of a batch (each in its own
 * buffer slot with room to grow), calls `finish`, then writes the units.
 *
 * @module
 */

import { fold, type PacketMemory, pseudoSum, transportChecksumOk } from "./checksum.ts";
import { GSO, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from "./vnet.ts";
import type { CounterBatch } from "./counters.ts";

const IP6_LEN = 40;
const NH_TCP = 6;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;
/** Flows with an open packet at a time (a batch rarely holds more). */
const OPEN_MAX = 8;
/** The IPv6 minimum link MTU (RFC 8200 §5). */
const MIN_MTU = 1280;

/**
 * Payload bytes per segment when a GRO-merged packet with a `tcpLen`-byte TCP header is split
 * again: what fits the IPv6 minimum MTU (1220 without options, 1208 with timestamps).
 */
export function mergedSegmentSize(tcpLen: number): number {
  return MIN_MTU - IP6_LEN - tcpLen;
}

/**
 * Whether the IPv6 packet `m.u8[off, off + len)` is TCP that a receiving NIC's GRO merged
 * (its checksum field holds the folded pseudo-header sum, CHECKSUM_PARTIAL, and the whole
 * checksum does not verify; see the module doc). Returns the segment size to split it with
 * ({@linkcode mergedSegmentSize}), or 0 for any other packet. Costs a 32-byte sum per TCP
 * packet, a full checksum only when the field matches.
 */
export function groMergedGso(m: PacketMemory, off: number, len: number): number {
  const b = m.u8;
  if (len < IP6_LEN + 20 || b[off + 6] !== NH_TCP) return 0;
  const t = off + IP6_LEN;
  const tcpLen = (b[t + 12] >> 4) << 2;
  if (tcpLen < 20 || IP6_LEN + tcpLen > len) return 0;
  const ps = fold(pseudoSum(m, off, len - IP6_LEN, NH_TCP));
  if (((b[t + 16] << 8) | b[t + 17]) !== ps) return 0;
  if (transportChecksumOk(m, off, t, off + len, NH_TCP)) return 0;
  return mergedSegmentSize(tcpLen);
}

/** Options of {@linkcode TcpCoalescer}. */
export interface TcpCoalescerOptions {
  /** Most packets per batch. */
  maxUnits: number;
  /** Bytes a slot holds from its IPv6 header on: the largest merged packet. */
  capacity: number;
  /** Bytes of link header in front of the IPv6 header on the device (14 on a tap, 0 on a tun). */
  linkHeader: number;
}

/**
 * Merges a batch's TCP segments into GSO packets (see the module doc). Packet offsets must be
 * 4-aligned, and `linkHeader` + {@linkcode VNET_HDR_LEN} bytes in front of each must be free
 * for the virtio_net_hdr `finish` writes.
 */
export class TcpCoalescer {
  /** Units (packets to write) after the last `add`s. */
  units = 0;
  /** Segments appended to another one in this batch. */
  merged = 0;
  /** Packets of this batch a NIC's GRO had merged already (see {@linkcode groMergedGso}). */
  premerged = 0;
  /** Per unit: offset of its IPv6 header. */
  readonly unitOffset: Int32Array;
  /** Per unit: IPv6 length (grows as segments are appended). */
  readonly unitLength: Int32Array;
  /** Per unit: how many received packets it carries. */
  readonly unitSegments: Int32Array;
  /** Per unit: the caller's tag of its first packet (e.g. its slot index). */
  readonly unitTag: Int32Array;
  /** Per unit: the received bytes it carries (the packets' lengths before merging). */
  readonly unitBytes: Int32Array;
  readonly #m: PacketMemory;
  readonly #capacity: number;
  readonly #link: number;
  readonly #hdr: Int32Array;
  readonly #gso: Int32Array;
  readonly #next: Uint32Array;
  readonly #verified: Int8Array;
  readonly #open = new Int32Array(OPEN_MAX);
  #openCount = 0;

  /** A coalescer over the slots in `mem` (a recvmmsg ring's memory). */
  constructor(mem: PacketMemory, opts: TcpCoalescerOptions) {
    const n = opts.maxUnits;
    this.#m = mem;
    this.#capacity = Math.min(opts.capacity, IP6_LEN + 0xffff);
    this.#link = opts.linkHeader;
    this.unitOffset = new Int32Array(n);
    this.unitLength = new Int32Array(n);
    this.unitSegments = new Int32Array(n);
    this.unitTag = new Int32Array(n);
    this.unitBytes = new Int32Array(n);
    this.#hdr = new Int32Array(n);
    this.#gso = new Int32Array(n);
    this.#next = new Uint32Array(n);
    this.#verified = new Int8Array(n);
  }

  /** Starts a new batch. */
  reset(): void {
    this.units = 0;
    this.merged = 0;
    this.premerged = 0;
    this.#openCount = 0;
  }

  /**
   * Adds the IPv6 packet `mem.u8[off, off + len)` (its length already checked against the
   * payload length field). Returns the unit it went to: a new one, or an open one it was
   * appended to (its bytes then moved there).
   */
  add(off: number, len: number, tag: number): number {
    if ((off & 3) !== 0) throw new RangeError(`packet offset ${off} not 4-aligned`);
    const b = this.#m.u8;
    const isTcp = len >= IP6_LEN + 4 && b[off + 6] === NH_TCP;
    let candidate = false;
    let tcpLen = 0;
    if (isTcp && len >= IP6_LEN + 20) {
      tcpLen = (b[off + IP6_LEN + 12] >> 4) << 2;
      const flags = b[off + IP6_LEN + 13];
      candidate = tcpLen >= 20 && IP6_LEN + tcpLen < len &&
        (flags === TCP_ACK || flags === (TCP_ACK | TCP_PSH));
    }
    // A packet a NIC's GRO merged carries only a partial checksum: never append to it or
    // append it; it leaves as a GSO packet of its own.
    const premergedGso = isTcp ? groMergedGso(this.#m, off, len) : 0;
    if (premergedGso > 0) candidate = false;
    let fi = -1;
    if (isTcp) {
      for (let j = 0; j < this.#openCount; j++) {
        if (this.#sameFlow(this.unitOffset[this.#open[j]], off)) {
          fi = j;
          break;
        }
      }
    }
    if (fi >= 0) {
      const f = this.#open[fi];
      if (candidate && this.#append(f, fi, off, len, tcpLen)) return f;
      this.#close(fi);
    }
    if (this.units === this.unitOffset.length) {
      throw new RangeError(`more than ${this.unitOffset.length} packets in a batch`);
    }
    const u = this.units++;
    this.unitOffset[u] = off;
    this.unitLength[u] = len;
    this.unitSegments[u] = 1;
    this.unitTag[u] = tag;
    this.unitBytes[u] = len;
    this.#hdr[u] = IP6_LEN + tcpLen;
    this.#gso[u] = -premergedGso; // negative: a NIC-merged packet (finish() tells them apart)
    if (premergedGso > 0) this.premerged++;
    if (candidate && (b[off + IP6_LEN + 13] & TCP_PSH) === 0) {
      const t = off + IP6_LEN;
      const seq = ((b[t + 4] << 24) | (b[t + 5] << 16) | (b[t + 6] << 8) | b[t + 7]) >>> 0;
      this.#hdr[u] = IP6_LEN + tcpLen;
      this.#gso[u] = len - IP6_LEN - tcpLen;
      this.#next[u] = (seq + this.#gso[u]) >>> 0;
      this.#verified[u] = 0;
      if (this.#openCount === OPEN_MAX) this.#close(0);
      this.#open[this.#openCount++] = u;
    }
    return u;
  }

  /**
   * Completes the batch: every merged unit gets its IPv6 payload length, the pseudo-header sum
   * in its TCP checksum field (CHECKSUM_PARTIAL) and a virtio_net_hdr GSO_TCPV6 in front of its
   * link header; every other unit an all-zero virtio_net_hdr.
   */
  finish(): void {
    const m = this.#m;
    const b = m.u8;
    const link = this.#link;
    for (let u = 0; u < this.units; u++) {
      const off = this.unitOffset[u];
      const at = off - link - VNET_HDR_LEN;
      if (this.unitSegments[u] === 1) {
        const pre = -this.#gso[u];
        if (pre > 0) {
          // NIC-merged: the checksum field already holds the pseudo-header sum.
          const big = this.unitLength[u] - this.#hdr[u] > pre;
          const hdrLen = link + this.#hdr[u];
          const type = big ? GSO.TCPV6 : GSO.NONE;
          writeVnetHdr(b, at, VNET_F_NEEDS_CSUM, type, hdrLen, big ? pre : 0, link + IP6_LEN, 16);
        } else {
          writeVnetHdr(b, at, 0, GSO.NONE, 0, 0, 0, 0);
        }
        continue;
      }
      const upper = this.unitLength[u] - IP6_LEN;
      b[off + 4] = upper >>> 8;
      b[off + 5] = upper & 0xff;
      const ps = fold(pseudoSum(m, off, upper, NH_TCP));
      b[off + IP6_LEN + 16] = ps >>> 8;
      b[off + IP6_LEN + 17] = ps & 0xff;
      writeVnetHdr(
        b,
        at,
        VNET_F_NEEDS_CSUM,
        GSO.TCPV6,
        link + this.#hdr[u],
        this.#gso[u],
        link + IP6_LEN,
        16,
      );
    }
    this.#openCount = 0;
  }

  #sameFlow(h: number, p: number): boolean {
    const w = this.#m.u32;
    // Source, destination (bytes 8–39) and the two ports (40–43): nine aligned words.
    for (let k = 2; k < 11; k++) if (w[(h >>> 2) + k] !== w[(p >>> 2) + k]) return false;
    return true;
  }

  #append(f: number, fi: number, p: number, len: number, tcpLen: number): boolean {
    const m = this.#m;
    const b = m.u8;
    const w = m.u32;
    const h = this.unitOffset[f];
    if (this.#hdr[f] !== IP6_LEN + tcpLen) return false;
    // Version, traffic class, flow label; hop limit.
    if (w[h >>> 2] !== w[p >>> 2] || b[h + 7] !== b[p + 7]) return false;
    const ht = h + IP6_LEN;
    const pt = p + IP6_LEN;
    // ACK number; data offset and window (flags: head ACK, this ACK or ACK|PSH); options.
    if (w[(ht + 8) >>> 2] !== w[(pt + 8) >>> 2]) return false;
    if (b[ht + 12] !== b[pt + 12] || b[ht + 14] !== b[pt + 14] || b[ht + 15] !== b[pt + 15]) {
      return false;
    }
    for (let k = 20; k < tcpLen; k += 4) {
      if (w[(ht + k) >>> 2] !== w[(pt + k) >>> 2]) return false;
    }
    const seq = ((b[pt + 4] << 24) | (b[pt + 5] << 16) | (b[pt + 6] << 8) | b[pt + 7]) >>> 0;
    if (seq !== this.#next[f]) return false;
    const pay = len - IP6_LEN - tcpLen;
    const gso = this.#gso[f];
    if (pay > gso || this.unitLength[f] + pay > this.#capacity) return false;
    if (this.#verified[f] === 0) {
      this.#verified[f] = transportChecksumOk(m, h, ht, h + this.unitLength[f], NH_TCP) ? 1 : -1;
    }
    if (this.#verified[f] < 0 || !transportChecksumOk(m, p, pt, p + len, NH_TCP)) return false;
    b.copyWithin(h + this.unitLength[f], pt + tcpLen, p + len);
    this.unitLength[f] += pay;
    this.unitSegments[f]++;
    this.unitBytes[f] += len;
    this.#next[f] = (seq + pay) >>> 0;
    this.merged++;
    if ((b[pt + 13] & TCP_PSH) !== 0) {
      b[ht + 13] |= TCP_PSH;
      this.#close(fi);
    } else if (pay < gso) {
      this.#close(fi);
    }
    return true;
  }

  #close(fi: number): void {
    for (let j = fi + 1; j < this.#openCount; j++) this.#open[j - 1] = this.#open[j];
    this.#openCount--;
  }
}

/** Counter slots a receive path counts written coalesced units in. */
export interface GroCounterSlots {
  packets: number;
  bytes: number;
  errors: number;
  coalesced: number;
  nicGro: number;
}

/**
 * Finishes `gro`'s batch and writes every unit with `writeUnit(u)` (true when the device took
 * it), counting its segments as packets/bytes or as errors, then the batch's merges. Shared by
 * the home agent's tun writer and the mobile node's tap writer; `writeUnit` is made once per
 * pump, so a batch allocates nothing.
 */
export function writeCoalesced(
  gro: TcpCoalescer,
  c: CounterBatch,
  slots: GroCounterSlots,
  writeUnit: (u: number) => boolean,
): void {
  gro.finish();
  for (let u = 0; u < gro.units; u++) {
    if (writeUnit(u)) {
      c.add(slots.packets, gro.unitSegments[u]);
      c.add(slots.bytes, gro.unitBytes[u]);
    } else {
      c.add(slots.errors, gro.unitSegments[u]);
    }
  }
  c.add(slots.coalesced, gro.merged);
  c.add(slots.nicGro, gro.premerged);
}
