/**
 * Whole packets as the daemons send and receive them: IPv6 + extension headers + Mobility Header
 * or ICMPv6, with the checksums RFC 6275 §6.1.1 asks for, and Ethernet framing.
 *
 * Builders allocate a fresh `Uint8Array` (signaling is not the per-packet hot path); they throw
 * only on programmer errors (bad address text, out-of-range fields).
 *
 * @module
 */

import { ETHERTYPE_IPV6, IPPROTO, isMulticast } from "./addr.ts";
import { emitEthernet, ETHERNET_HEADER_LEN } from "./ethernet.ts";
import {
  destOptsLen,
  type DestOptsRepr,
  emitDestOpts,
  emitRoutingType2,
  ROUTING_TYPE2_LEN,
  type RoutingType2Repr,
  walkExtensionHeaders,
} from "./ext_headers.ts";
import { emitIcmpv6, icmpv6Len, type Icmpv6Repr, parseIcmpv6 } from "./icmpv6.ts";
import { emitIpv6, IPV6_HEADER_LEN, type Ipv6Repr, parseIpv6 } from "./ipv6.ts";
import {
  type BaRepr,
  type BuRepr,
  emitMobility,
  mobilityLen,
  type MobilityRepr,
  parseMobility,
} from "./mobility.ts";
import { fail, ok, type Parsed, type ParseError, rebase } from "./result.ts";

/** Hop limit of signaling packets when the caller gives none. */
export const DEFAULT_HOP_LIMIT = 64;

/** Arguments of {@linkcode buildBindingUpdate}. */
export interface BindingUpdatePacket {
  /** Care-of address: the IPv6 source. */
  careOf: string;
  /** Home agent: the IPv6 destination. */
  homeAgent: string;
  /** Home address: carried in the HAO, and the checksum's source. */
  homeAddress: string;
  /** The Binding Update (`type` may be left out). */
  bu: Omit<BuRepr, "type"> & { type?: "bu" };
  /** Hop limit; {@linkcode DEFAULT_HOP_LIMIT} when omitted. */
  hopLimit?: number;
}

/**
 * A home-registration Binding Update as a mobile node sends it (RFC 6275 §6.1.7, §11.7.1):
 * IPv6 (CoA → HA) + Destination Options with the Home Address option + MH, the MH checksum
 * computed with the home address as source (RFC 6275 §6.1.1, §6.3).
 */
export function buildBindingUpdate(p: BindingUpdatePacket): Uint8Array {
  const mh: MobilityRepr = { ...p.bu, type: "bu" };
  const dopts: DestOptsRepr = {
    nextHeader: IPPROTO.MH,
    options: [{ type: "hao", homeAddress: p.homeAddress }],
  };
  const dlen = destOptsLen(dopts);
  const mlen = mobilityLen(mh);
  const out = new Uint8Array(IPV6_HEADER_LEN + dlen + mlen);
  emitIpv6({
    src: p.careOf,
    dst: p.homeAgent,
    nextHeader: IPPROTO.DSTOPTS,
    hopLimit: p.hopLimit ?? DEFAULT_HOP_LIMIT,
    payloadLength: dlen + mlen,
  }, out);
  emitDestOpts(dopts, out.subarray(IPV6_HEADER_LEN));
  emitMobility(mh, out.subarray(IPV6_HEADER_LEN + dlen), {
    src: p.homeAddress,
    dst: p.homeAgent,
  });
  return out;
}

/** Arguments of {@linkcode buildBindingAck}. */
export interface BindingAckPacket {
  /** Home agent: the IPv6 source. */
  homeAgent: string;
  /** Care-of address: the IPv6 destination. */
  careOf: string;
  /** Home address: carried in the type 2 routing header, and the checksum's destination. */
  homeAddress: string;
  /** The Binding Acknowledgement (`type` may be left out). */
  ba: Omit<BaRepr, "type"> & { type?: "ba" };
  /** Hop limit; {@linkcode DEFAULT_HOP_LIMIT} when omitted. */
  hopLimit?: number;
}

/**
 * A Binding Acknowledgement as a home agent sends it to a mobile node away from home
 * (RFC 6275 §6.1.8, §10.3.1): IPv6 (HA → CoA) + type 2 routing header (HoA, Segments Left 1) +
 * MH, the checksum computed with the final destination, the home address (RFC 6275 §6.1.1).
 */
export function buildBindingAck(p: BindingAckPacket): Uint8Array {
  const mh: MobilityRepr = { ...p.ba, type: "ba" };
  const mlen = mobilityLen(mh);
  const out = new Uint8Array(IPV6_HEADER_LEN + ROUTING_TYPE2_LEN + mlen);
  emitIpv6({
    src: p.homeAgent,
    dst: p.careOf,
    nextHeader: IPPROTO.ROUTING,
    hopLimit: p.hopLimit ?? DEFAULT_HOP_LIMIT,
    payloadLength: ROUTING_TYPE2_LEN + mlen,
  }, out);
  const rh2: RoutingType2Repr = {
    nextHeader: IPPROTO.MH,
    segmentsLeft: 1,
    homeAddress: p.homeAddress,
  };
  emitRoutingType2(rh2, out.subarray(IPV6_HEADER_LEN));
  emitMobility(mh, out.subarray(IPV6_HEADER_LEN + ROUTING_TYPE2_LEN), {
    src: p.homeAgent,
    dst: p.homeAddress,
  });
  return out;
}

/**
 * IPv6 + MH with no extension header (e.g. a Binding Error, RFC 6275 §9.3.1, or a BA to a mobile
 * node at home), checksummed src → dst.
 */
export function buildMobilityPacket(
  p: { src: string; dst: string; mh: MobilityRepr; hopLimit?: number },
): Uint8Array {
  const mlen = mobilityLen(p.mh);
  const out = new Uint8Array(IPV6_HEADER_LEN + mlen);
  emitIpv6({
    src: p.src,
    dst: p.dst,
    nextHeader: IPPROTO.MH,
    hopLimit: p.hopLimit ?? DEFAULT_HOP_LIMIT,
    payloadLength: mlen,
  }, out);
  emitMobility(p.mh, out.subarray(IPV6_HEADER_LEN), { src: p.src, dst: p.dst });
  return out;
}

/**
 * IPv6 + ICMPv6 (RFC 4443), checksummed src → dst. Neighbor Discovery needs `hopLimit` 255
 * (RFC 4861 §6.1.1, §7.1.1). Error messages are cut to 1280 octets (RFC 4443 §2.4 (c)).
 */
export function buildIcmpv6Packet(
  p: { src: string; dst: string; hopLimit: number; icmp: Icmpv6Repr },
): Uint8Array {
  const ilen = icmpv6Len(p.icmp);
  const out = new Uint8Array(IPV6_HEADER_LEN + ilen);
  emitIpv6({
    src: p.src,
    dst: p.dst,
    nextHeader: IPPROTO.ICMPV6,
    hopLimit: p.hopLimit,
    payloadLength: ilen,
  }, out);
  emitIcmpv6(p.icmp, out.subarray(IPV6_HEADER_LEN), { src: p.src, dst: p.dst });
  return out;
}

/** Prepends an Ethernet II header (EtherType IPv6, RFC 2464) to `ipv6Packet`. */
export function buildEthernetFrame(
  macs: { dst: string; src: string },
  ipv6Packet: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(ETHERNET_HEADER_LEN + ipv6Packet.length);
  emitEthernet({ dst: macs.dst, src: macs.src, ethertype: ETHERTYPE_IPV6 }, out);
  out.set(ipv6Packet, ETHERNET_HEADER_LEN);
  return out;
}

/** A whole IPv6 packet, parsed. */
export interface ParsedPacket {
  /** The fixed header. */
  ipv6: Ipv6Repr;
  /** From a Home Address option (RFC 6275 §6.3). */
  homeAddress?: string;
  /** The type 2 routing header (RFC 6275 §6.4). */
  rh2?: RoutingType2Repr;
  /** Protocol of the first header after the extension headers walked. */
  upperProtocol: number;
  /** That header and everything after it (a sub-view). */
  upper: Uint8Array;
  /** The Mobility Header message when `upperProtocol` is 135. */
  mh?: MobilityRepr;
  /** The ICMPv6 message when `upperProtocol` is 58. */
  icmp?: Icmpv6Repr;
}

/** The pseudo-header addresses of a packet's upper layer (RFC 8200 §8.1, RFC 6275 §6.1.1). */
export function checksumAddresses(
  p: { ipv6: Ipv6Repr; homeAddress?: string; rh2?: RoutingType2Repr },
): { src: string; dst: string } {
  return {
    src: p.homeAddress ?? p.ipv6.src,
    dst: p.rh2 !== undefined && p.rh2.segmentsLeft > 0 ? p.rh2.homeAddress : p.ipv6.dst,
  };
}

/**
 * Parses a whole IPv6 packet: header, extension headers (HAO, RH2), and a Mobility Header or
 * ICMPv6 message with its checksum verified the RFC 6275 way — over the home address as source
 * when a HAO is present (§6.1.1, §6.3) and the home address as destination when a type 2 routing
 * header has a segment left (RFC 8200 §8.1). Failure offsets count from the first byte of
 * `bytes`; Parameter Problem replies point into, and carry, the whole packet (the reply for an
 * unknown option of action 11 is dropped when the destination is multicast, RFC 8200 §4.2).
 */
export function parsePacket(bytes: Uint8Array): Parsed<ParsedPacket> {
  const ip = parseIpv6(bytes);
  if (!ip.ok) return ip;
  const ipv6 = ip.value.repr;
  const payload = ip.value.payload;
  const invoking = bytes.subarray(0, IPV6_HEADER_LEN + payload.length);
  const inner = (err: ParseError, delta: number): ParseError => {
    const r = rebase(err, IPV6_HEADER_LEN + delta, invoking);
    const optType = invoking[r.offset];
    if (
      r.reply !== undefined && r.field === "option" && optType >> 6 === 3 && isMulticast(ipv6.dst)
    ) {
      return fail(r.kind, r.offset, r.field);
    }
    return r;
  };
  const walk = walkExtensionHeaders(payload, ipv6.nextHeader);
  if (!walk.ok) return inner(walk, 0);
  const chain = walk.value;
  const upper = payload.subarray(chain.upperOffset);
  const out: ParsedPacket = { ipv6, upperProtocol: chain.upperProtocol, upper };
  if (chain.homeAddress !== undefined) out.homeAddress = chain.homeAddress;
  if (chain.rh2 !== undefined) out.rh2 = chain.rh2;
  if (chain.upperProtocol === IPPROTO.MH) {
    const mh = parseMobility(upper, checksumAddresses(out));
    if (!mh.ok) return inner(mh, chain.upperOffset);
    out.mh = mh.value;
  } else if (chain.upperProtocol === IPPROTO.ICMPV6) {
    const icmp = parseIcmpv6(upper, checksumAddresses(out));
    if (!icmp.ok) return inner(icmp, chain.upperOffset);
    out.icmp = icmp.value;
  }
  return ok(out);
}
