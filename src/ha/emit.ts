/**
 * The three packets a home agent sends per registration, written straight into a caller's
 * buffer (a send ring slot) from 16-byte addresses: no intermediate objects, one checksum pass.
 * `src/wire/packet.ts` builds the same bytes from `Repr`s (the tests hold these to it); this is
 * the per-BU path, that one is the reference and serves the rare messages.
 *
 * ```text
 *  Binding Acknowledgement (RFC 6275 §6.1.8, §6.4, §9.5.4), 80 octets (56 without the RH2):
 *   0 IPv6 header: 6 | payload length 40 | next header 43 | hop limit 64 | HA → CoA
 *  40 type 2 routing header: next header 135 | len 2 | type 2 | segments left 1 | 0 | HoA
 *  64 Mobility Header: 59 | len 1 | type 6 | 0 | checksum | status | K R P | seq | lifetime
 *  76   PadN (1, 2, 0, 0): the message is a multiple of 8 octets (RFC 6275 §6.1.1)
 *  The checksum's pseudo-header runs HA → HoA (the final destination, RFC 6275 §6.1.1).
 *
 *  Neighbor Advertisement (RFC 4861 §4.4), 72 octets: IPv6 (hop limit 255) + 136 | 0 | checksum
 *   | R S O | reserved | target | option 2 (target link-layer address), length 1, MAC.
 *  Neighbor Solicitation for DAD (RFC 4862 §5.4.2), 64 octets: IPv6 :: → solicited-node group,
 *   hop limit 255 + 135 | 0 | checksum | reserved | target.
 * ```
 *
 * @module
 */

const IPV6_LEN = 40;
const RH2_LEN = 24;
const BA_LEN = 16;
const NA_LEN = 32;
const NS_LEN = 24;

/** Octets of a BA with a type 2 routing header. */
export const BA_PACKET_LEN = IPV6_LEN + RH2_LEN + BA_LEN;
/** Octets of an unsolicited NA with a target link-layer address option. */
export const NA_PACKET_LEN = IPV6_LEN + NA_LEN;
/** Octets of a DAD probe. */
export const DAD_PACKET_LEN = IPV6_LEN + NS_LEN;

const NH_ROUTING = 43;
const NH_ICMPV6 = 58;
const NH_NONE = 59;
const NH_MH = 135;
const MH_TYPE_BA = 6;

/** Folded one's-complement sum of `b[start..end)` (even length) added to `sum` (RFC 1071). */
function sum16(b: Uint8Array, start: number, end: number, sum: number): number {
  for (let i = start; i < end; i += 2) sum += (b[i] << 8) | b[i + 1];
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >> 8;
  b[at + 1] = v;
}

function copy16(out: Uint8Array, at: number, src: Uint8Array, from: number): void {
  for (let i = 0; i < 16; i++) out[at + i] = src[from + i];
}

function ipv6Header(
  out: Uint8Array,
  at: number,
  payload: number,
  nextHeader: number,
  hopLimit: number,
): void {
  out[at] = 0x60;
  out[at + 1] = out[at + 2] = out[at + 3] = 0;
  put16(out, at + 4, payload);
  out[at + 6] = nextHeader;
  out[at + 7] = hopLimit;
}

/** Fields of {@linkcode emitBindingAck}; addresses are 16 bytes at the given offsets. */
export interface BaFields {
  /** The home agent (IPv6 source, checksum source). */
  ha: Uint8Array;
  haAt?: number;
  /** Where the BA goes: the care-of address, or the home address itself (then no RH2). */
  to: Uint8Array;
  toAt?: number;
  /** The home address (RH2, checksum destination). */
  hoa: Uint8Array;
  hoaAt?: number;
  status: number;
  sequence: number;
  /** In 4-second units. */
  lifetime: number;
}

/**
 * Writes a Binding Acknowledgement (RFC 6275 §6.1.8) at `out[at]`: with a type 2 routing
 * header carrying the home address when `to` is not the home address (§6.4, §9.5.4), without
 * one otherwise. Returns its length. Flags K, R and P are clear; every octet is written.
 */
export function emitBindingAck(out: Uint8Array, at: number, f: BaFields): number {
  const haAt = f.haAt ?? 0, toAt = f.toAt ?? 0, hoaAt = f.hoaAt ?? 0;
  let rh2 = false;
  for (let i = 0; i < 16; i++) {
    if (f.to[toAt + i] !== f.hoa[hoaAt + i]) {
      rh2 = true;
      break;
    }
  }
  const ext = rh2 ? RH2_LEN : 0;
  ipv6Header(out, at, ext + BA_LEN, rh2 ? NH_ROUTING : NH_MH, 64);
  copy16(out, at + 8, f.ha, haAt);
  copy16(out, at + 24, f.to, toAt);
  let m = at + IPV6_LEN;
  if (rh2) {
    out[m] = NH_MH;
    out[m + 1] = 2;
    out[m + 2] = 2;
    out[m + 3] = 1;
    out[m + 4] =
      out[m + 5] =
      out[m + 6] =
      out[m + 7] =
        0;
    copy16(out, m + 8, f.hoa, hoaAt);
    m += RH2_LEN;
  }
  out[m] = NH_NONE;
  out[m + 1] = BA_LEN / 8 - 1;
  out[m + 2] = MH_TYPE_BA;
  out[m + 3] = 0;
  out[m + 4] = out[m + 5] = 0;
  out[m + 6] = f.status;
  out[m + 7] = 0;
  put16(out, m + 8, f.sequence);
  put16(out, m + 10, f.lifetime);
  out[m + 12] = 1; // PadN
  out[m + 13] = 2;
  out[m + 14] = out[m + 15] = 0;
  let sum = sum16(f.ha, haAt, haAt + 16, 0);
  sum = sum16(f.hoa, hoaAt, hoaAt + 16, sum);
  sum += BA_LEN + NH_MH;
  sum = sum16(out, m, m + BA_LEN, sum);
  put16(out, m + 4, ~fold(sum) & 0xffff);
  return IPV6_LEN + ext + BA_LEN;
}

function icmpChecksum(out: Uint8Array, at: number, len: number): void {
  // pseudo-header: the packet's own source and destination, length, next header 58
  let sum = sum16(out, at + 8, at + IPV6_LEN, 0);
  sum += len + NH_ICMPV6;
  sum = sum16(out, at + IPV6_LEN, at + IPV6_LEN + len, sum);
  put16(out, at + IPV6_LEN + 2, ~fold(sum) & 0xffff);
}

/**
 * Writes an unsolicited Neighbor Advertisement for `target` to all-nodes (RFC 4861 §7.2.6,
 * RFC 6275 §10.4.1: Solicited clear, Override set) from link-local `src`, with `mac` as the
 * target link-layer address. Returns its length.
 */
export function emitUnsolicitedNa(
  out: Uint8Array,
  at: number,
  f: { src: Uint8Array; target: Uint8Array; targetAt?: number; mac: Uint8Array; router: boolean },
): number {
  ipv6Header(out, at, NA_LEN, NH_ICMPV6, 255);
  copy16(out, at + 8, f.src, 0);
  out.fill(0, at + 24, at + 40);
  out[at + 24] = 0xff;
  out[at + 25] = 0x02;
  out[at + 39] = 0x01;
  const m = at + IPV6_LEN;
  out[m] = 136;
  out[m + 1] = 0;
  out[m + 2] = out[m + 3] = 0;
  out[m + 4] = (f.router ? 0x80 : 0) | 0x20;
  out[m + 5] = out[m + 6] = out[m + 7] = 0;
  copy16(out, m + 8, f.target, f.targetAt ?? 0);
  out[m + 24] = 2;
  out[m + 25] = 1;
  for (let i = 0; i < 6; i++) out[m + 26 + i] = f.mac[i];
  icmpChecksum(out, at, NA_LEN);
  return NA_PACKET_LEN;
}

/**
 * Writes a Duplicate Address Detection probe for `target` (RFC 4862 §5.4.2): NS from the
 * unspecified address to the target's solicited-node group (RFC 4291 §2.7.1), hop limit 255,
 * no source link-layer address option. Returns its length.
 */
export function emitDadProbe(
  out: Uint8Array,
  at: number,
  f: { target: Uint8Array; targetAt?: number },
): number {
  const t = f.targetAt ?? 0;
  ipv6Header(out, at, NS_LEN, NH_ICMPV6, 255);
  out.fill(0, at + 8, at + 40);
  out[at + 24] = 0xff;
  out[at + 25] = 0x02;
  out[at + 35] = 0x01;
  out[at + 36] = 0xff;
  out[at + 37] = f.target[t + 13];
  out[at + 38] = f.target[t + 14];
  out[at + 39] = f.target[t + 15];
  const m = at + IPV6_LEN;
  out[m] = 135;
  out[m + 1] = 0;
  out[m + 2] = out[m + 3] = 0;
  out[m + 4] =
    out[m + 5] =
    out[m + 6] =
    out[m + 7] =
      0;
  copy16(out, m + 8, f.target, t);
  icmpChecksum(out, at, NS_LEN);
  return DAD_PACKET_LEN;
}
