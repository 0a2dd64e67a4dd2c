/**
 * What the home agent puts on the wire and how it reads what raw sockets hand it: pure
 * functions between bytes and {@linkcode HaEvent}s / {@linkcode HaAction}s, so the daemon only
 * moves buffers.
 *
 * @module
 */

import {
  canonicalIPv6,
  ETHERTYPE_IPV6,
  IPPROTO,
  ipv6Bytes,
  isMulticast,
  multicastMac,
  solicitedNodeMulticast,
} from "../wire/addr.ts";
import { parseEthernet } from "../wire/ethernet.ts";
import { parseDestOpts } from "../wire/ext_headers.ts";
import { type Icmpv6Repr, parseIcmpv6 } from "../wire/icmpv6.ts";
import { parseIpv6 } from "../wire/ipv6.ts";
import { type BaRepr, parseMobility } from "../wire/mobility.ts";
import {
  buildBindingAck,
  buildEthernetFrame,
  buildIcmpv6Packet,
  buildMobilityPacket,
} from "../wire/packet.ts";
import type { ParseError } from "../wire/result.ts";
import type { HaAction, HaEvent } from "./core.ts";
import { formatIPv6Fast } from "../wire/fast_addr.ts";

/** All-nodes multicast (RFC 4291 §2.7.1). */
export const ALL_NODES = "ff02::1";

/** Hop limit of Neighbor Discovery messages (RFC 4861 §7.1). */
export const ND_HOP_LIMIT = 255;

/** A datagram decoded by {@linkcode decodeDstOptsDatagram} / {@linkcode decodeMhDatagram}. */
export type Decoded =
  /** A checksum-verified mobility message, or another packet with a HAO, for the core. */
  | { kind: "event"; event: Extract<HaEvent, { type: "mh" | "haoPacket" }> }
  /**
   * ESP behind the Destination Options header (RFC 4877 §4.1, RFC 4303 §3.1.1): `esp` (a view
   * from the SPI to the end) goes to `unprotectMobility` with the addresses around it.
   */
  | { kind: "esp"; src: string; dst: string; hao?: string; esp: Uint8Array }
  /** Nothing for the home agent (not a mobility message, or seen on the other socket). */
  | { kind: "ignore"; why: string }
  /**
   * Malformed or spoofed input; `error.field` names the offending field. `problem` is the
   * Parameter Problem event RFC 6275 §9.2 asks for (bad Payload Proto, short Header Len).
   */
  | {
    kind: "bad";
    where: "dstopts" | "mh";
    error: ParseError;
    problem?: Extract<HaEvent, { type: "paramProblem" }>;
  };

/** Octets of the invoking packet an ICMPv6 error may quote: 1280 − 40 − 8 (RFC 4443 §2.4 c). */
export const ICMP_INVOKING_MAX = 1280 - 48;

/**
 * The invoking packet of an ICMPv6 error about `payload` as a raw socket hands it over (the
 * bytes after the IPv6 header): an IPv6 header rebuilt from what the socket reports (source,
 * destination, `nextHeader`, the payload length; traffic class, flow label and hop limit are not
 * reported and are written as 0), then the payload, cut at {@linkcode ICMP_INVOKING_MAX}.
 */
export function invokingPacket(
  payload: Uint8Array,
  o: { src: string; dst: string; nextHeader: number },
): Uint8Array {
  const n = Math.min(ICMP_INVOKING_MAX, 40 + payload.length);
  const out = new Uint8Array(n);
  out[0] = 0x60;
  out[4] = (payload.length >> 8) & 0xff;
  out[5] = payload.length & 0xff;
  out[6] = o.nextHeader;
  out.set(ipv6Bytes(o.src), 8);
  out.set(ipv6Bytes(o.dst), 24);
  out.set(payload.subarray(0, n - 40), 40);
  return out;
}

/** The Parameter Problem event for an MH failure at `at` octets into `payload`, if any. */
function problemOf(
  e: ParseError,
  at: number,
  payload: Uint8Array,
  o: { src: string; dst: string; nextHeader: number },
): Extract<HaEvent, { type: "paramProblem" }> | undefined {
  if (e.reply?.type !== "paramProblem") return undefined;
  return {
    type: "paramProblem",
    src: o.src,
    dst: o.dst,
    pointer: 40 + at + e.reply.pointer,
    invoking: invokingPacket(payload, o),
  };
}

/**
 * Decodes what a raw IPPROTO_DSTOPTS socket received: a Destination Options header (with the
 * Home Address option, RFC 6275 §6.3) followed by the rest of the packet. A Mobility Header
 * behind it is parsed with its checksum verified over the home address as source
 * (RFC 6275 §6.1.1). `src` is the packet's source (the CoA), `dst` its destination (PKTINFO).
 */
export function decodeDstOptsDatagram(bytes: Uint8Array, src: string, dst: string): Decoded {
  const d = parseDestOpts(bytes);
  if (!d.ok) return { kind: "bad", where: "dstopts", error: d };
  const { repr, length } = d.value;
  const hao = repr.options.find((o) => o.type === "hao");
  if (repr.nextHeader === IPPROTO.ESP) {
    const esp = bytes.subarray(length);
    return hao?.type === "hao"
      ? { kind: "esp", src, dst, hao: hao.homeAddress, esp }
      : { kind: "esp", src, dst, esp };
  }
  if (repr.nextHeader !== IPPROTO.MH) {
    if (hao?.type === "hao") {
      const homeAddress = hao.homeAddress;
      return {
        kind: "event",
        event: { type: "haoPacket", src, dst, homeAddress, nextHeader: repr.nextHeader },
      };
    }
    return { kind: "ignore", why: `next header ${repr.nextHeader} after destination options` };
  }
  const homeAddress = hao?.type === "hao" ? hao.homeAddress : src;
  const mh = parseMobility(bytes.subarray(length), { src: homeAddress, dst });
  if (!mh.ok) {
    const problem = problemOf(mh, length, bytes, { src, dst, nextHeader: IPPROTO.DSTOPTS });
    const error = { ...mh, offset: mh.offset + length };
    return problem === undefined
      ? { kind: "bad", where: "mh", error }
      : { kind: "bad", where: "mh", error, problem };
  }
  return {
    kind: "event",
    event: { type: "mh", src, dst, homeAddress, hao: hao !== undefined, message: mh.value },
  };
}

/**
 * The usual case of {@linkcode decodeDstOptsDatagram} — a well-formed home-registration BU
 * behind a Destination Options header holding the HAO (RFC 6275 §6.1.7, §6.3, §11.7.1) — read
 * straight from the bytes: the checksum summed over the HoA's and `dstBytes`' octets
 * (RFC 6275 §6.1.1), no intermediate option lists or address text but the HoA's and an
 * Alternate Care-of Address'. Returns the same event the general decoder would, or null for
 * anything else (other options, bad lengths or checksum, other MH types…): the caller then asks
 * {@linkcode decodeDstOptsDatagram}, which also names what is wrong.
 */
export function decodeBuFast(
  bytes: Uint8Array,
  src: string,
  dst: string,
  dstBytes: Uint8Array,
): Decoded | null {
  const n = bytes.length;
  if (n < 8 || bytes[0] !== IPPROTO.MH) return null;
  const dlen = (bytes[1] + 1) * 8;
  if (dlen > n) return null;
  let hao = -1;
  for (let i = 2; i < dlen;) {
    const t = bytes[i];
    if (t === 0) { // Pad1
      i++;
      continue;
    }
    if (i + 2 > dlen) return null;
    const l = bytes[i + 1];
    if (i + 2 + l > dlen) return null;
    if (t === 1) { // PadN, zeros
      for (let k = 0; k < l; k++) if (bytes[i + 2 + k] !== 0) return null;
    } else if (t === 0xc9 && l === 16 && hao < 0) hao = i + 2;
    else return null;
    i += 2 + l;
  }
  if (hao < 0) return null;
  const m = dlen, mlen = n - dlen;
  if (
    mlen < 12 || bytes[m] !== IPPROTO.NONE || bytes[m + 2] !== 5 ||
    (bytes[m + 1] + 1) * 8 !== mlen
  ) return null;
  let sum = mlen + IPPROTO.MH;
  for (let i = 0; i < 16; i += 2) {
    sum += ((bytes[hao + i] << 8) | bytes[hao + i + 1]) + ((dstBytes[i] << 8) | dstBytes[i + 1]);
  }
  for (let i = m; i < n; i += 2) sum += (bytes[i] << 8) | bytes[i + 1]; // mlen is even
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  if (sum !== 0xffff) return null;
  let alt = -1;
  for (let i = m + 12; i < n;) {
    const t = bytes[i];
    if (t === 0) {
      i++;
      continue;
    }
    if (i + 2 > n) return null;
    const l = bytes[i + 1];
    if (i + 2 + l > n) return null;
    if (t === 1) {
      for (let k = 0; k < l; k++) if (bytes[i + 2 + k] !== 0) return null;
    } else if (t === 3 && l === 16 && alt < 0) alt = i + 2;
    else return null;
    i += 2 + l;
  }
  const f = bytes[m + 8];
  return {
    kind: "event",
    event: {
      type: "mh",
      src,
      dst,
      homeAddress: formatIPv6Fast(bytes, hao),
      hao: true,
      message: {
        type: "bu",
        sequence: (bytes[m + 6] << 8) | bytes[m + 7],
        flags: {
          ack: (f & 0x80) !== 0,
          home: (f & 0x40) !== 0,
          linkLocal: (f & 0x20) !== 0,
          key: (f & 0x10) !== 0,
          mapReg: (f & 0x08) !== 0,
          mobileRouter: (f & 0x04) !== 0,
          proxy: (f & 0x02) !== 0,
          forceUdp: (f & 0x01) !== 0,
        },
        lifetime: (bytes[m + 10] << 8) | bytes[m + 11],
        options: alt < 0 ? [] : [{ type: "altCoa", address: formatIPv6Fast(bytes, alt) }],
      },
    },
  };
}

/**
 * Decodes what a raw IPPROTO_MH socket received (the Mobility Header only). A packet that also
 * carried a Destination Options header (`hadDstOpts`, from IPV6_RECVDSTOPTS: a kernel with MIP6
 * delivered it here too) is left to the DSTOPTS socket so it is not handled twice.
 */
export function decodeMhDatagram(
  bytes: Uint8Array,
  src: string,
  dst: string,
  hadDstOpts: boolean,
): Decoded {
  if (hadDstOpts) return { kind: "ignore", why: "carried destination options" };
  const mh = parseMobility(bytes, { src, dst });
  if (!mh.ok) {
    const problem = problemOf(mh, 0, bytes, { src, dst, nextHeader: IPPROTO.MH });
    return problem === undefined
      ? { kind: "bad", where: "mh", error: mh }
      : { kind: "bad", where: "mh", error: mh, problem };
  }
  return {
    kind: "event",
    event: { type: "mh", src, dst, homeAddress: src, hao: false, message: mh.value },
  };
}

type SendBa = Omit<Extract<HaAction, { type: "sendBa" }>, "protect">;

/** The BA a `sendBa` action asks for (K, R, P clear: home registration only). */
export function baOf(a: SendBa): Omit<BaRepr, "type"> {
  return {
    status: a.status,
    flags: { key: false, mobileRouter: false, proxy: false },
    sequence: a.sequence,
    lifetime: a.lifetime,
    options: [],
  };
}

/**
 * The BA goes to the home address itself (the mobile node registered from home, RFC 6275
 * §11.5.4): no type 2 routing header.
 */
export function baToHomeAddress(a: SendBa): boolean {
  return canonicalIPv6(a.to) === canonicalIPv6(a.homeAddress);
}

/**
 * The whole packet of a `sendBa` action: IPv6 + type 2 routing header (HoA) + BA when the
 * mobile node is away (RFC 6275 §6.1.8, §9.5.4), plain IPv6 + BA when it sent from its home
 * address. Built whole because a kernel without MIP6 refuses IPV6_RTHDR type 2.
 */
export function baPacket(a: SendBa): Uint8Array {
  const ba = baOf(a);
  if (baToHomeAddress(a)) {
    return buildMobilityPacket({ src: a.from, dst: a.to, mh: { type: "ba", ...ba } });
  }
  return buildBindingAck({ homeAgent: a.from, careOf: a.to, homeAddress: a.homeAddress, ba });
}

/**
 * The whole packet of a `sendParamProblem` action: ICMPv6 Parameter Problem code 0 (erroneous
 * header field, RFC 4443 §3.4) with the pointer and the invoking packet, hop limit 64.
 */
export function paramProblemPacket(a: Extract<HaAction, { type: "sendParamProblem" }>): Uint8Array {
  return buildIcmpv6Packet({
    src: a.from,
    dst: a.to,
    hopLimit: 64,
    icmp: { type: "paramProblem", code: 0, pointer: a.pointer, invoking: a.invoking },
  });
}

/** The whole packet of a `sendBe` action (RFC 6275 §6.1.9, §9.3.3). */
export function bePacket(a: Extract<HaAction, { type: "sendBe" }>): Uint8Array {
  return buildMobilityPacket({
    src: a.from,
    dst: a.to,
    mh: { type: "be", status: a.status, homeAddress: a.homeAddress },
  });
}

/**
 * A Duplicate Address Detection probe for `target` (RFC 4862 §5.4.2): NS from the unspecified
 * address to the target's solicited-node group, hop limit 255, no source link-layer option.
 */
export function dadProbe(target: string): Uint8Array {
  return buildIcmpv6Packet({
    src: "::",
    dst: solicitedNodeMulticast(target),
    hopLimit: ND_HOP_LIMIT,
    icmp: { type: "neighborSolicitation", target, options: [] },
  });
}

/**
 * The unsolicited Neighbor Advertisement a home agent multicasts for a home address it starts
 * defending (RFC 6275 §10.4.1, RFC 4861 §7.2.6): to all-nodes, Override set, Solicited clear,
 * target link-layer address = the home agent's MAC. RFC 6275 §10.4.1 has the Router flag
 * cleared in it: the advertisement speaks for the mobile node, a host (pass `router: false`).
 */
export function unsolicitedNa(
  o: { src: string; target: string; mac: string; router: boolean },
): Uint8Array {
  return buildIcmpv6Packet({
    src: o.src,
    dst: ALL_NODES,
    hopLimit: ND_HOP_LIMIT,
    icmp: {
      type: "neighborAdvertisement",
      router: o.router,
      solicited: false,
      override: true,
      target: o.target,
      options: [{ type: "targetLinkLayer", mac: o.mac }],
    },
  });
}

/** Result of {@linkcode dadEvidence}. */
export type DadVerdict =
  | { kind: "duplicate"; homeAddress: string; evidence: string }
  | { kind: "none" }
  | { kind: "bad"; error: ParseError };

/**
 * Looks at an ICMPv6 message received on the home link while DAD runs for the addresses in
 * `watched` (RFC 4862 §5.4.3–5.4.4): an NA for a watched address, or an NS for it from the
 * unspecified address (another node's DAD), means the address is taken. NAs carrying our own
 * link-layer address (`ownMac`, e.g. the kernel's proxy answers) and messages whose hop limit
 * is not 255 (off-link, RFC 4861 §7.1) are not evidence.
 */
export function dadEvidence(
  bytes: Uint8Array,
  meta: { src: string; dst: string; hopLimit?: number },
  watched: ReadonlySet<string>,
  ownMac: string,
): DadVerdict {
  if (watched.size === 0) return { kind: "none" };
  const p = parseIcmpv6(bytes, { src: meta.src, dst: meta.dst });
  if (!p.ok) return { kind: "bad", error: p };
  const m: Icmpv6Repr = p.value;
  if (m.type !== "neighborAdvertisement" && m.type !== "neighborSolicitation") {
    return { kind: "none" };
  }
  const target = canonicalIPv6(m.target);
  if (!watched.has(target)) return { kind: "none" };
  if (meta.hopLimit !== undefined && meta.hopLimit !== ND_HOP_LIMIT) return { kind: "none" };
  if (m.type === "neighborAdvertisement") {
    const tlla = m.options.find((o) => o.type === "targetLinkLayer");
    const mac = tlla?.type === "targetLinkLayer" ? tlla.mac : undefined;
    if (mac === ownMac) return { kind: "none" };
    return {
      kind: "duplicate",
      homeAddress: target,
      evidence: `NA for ${target} from ${meta.src}${mac ? ` (${mac})` : ""}`,
    };
  }
  if (canonicalIPv6(meta.src) !== "::") return { kind: "none" };
  return { kind: "duplicate", homeAddress: target, evidence: `DAD probe for ${target} from ::` };
}

/** An ICMPv6 message seen on the home link by the home agent's link socket. */
export interface LinkIcmp {
  /** Ethernet source of the frame. */
  ethSrc: string;
  /** IPv6 source, destination (RFC 5952 text) and hop limit. */
  src: string;
  dst: string;
  hopLimit: number;
  /** The ICMPv6 message (a sub-view of the frame). */
  icmp: Uint8Array;
}

/**
 * Reads an Ethernet frame carrying IPv6 + ICMPv6 with no extension header (how Neighbor
 * Discovery travels, RFC 4861 §7.1); null for anything else (the link socket's filter lets
 * only NS and NA through, this re-checks).
 */
export function linkIcmp(frame: Uint8Array): LinkIcmp | null {
  const e = parseEthernet(frame);
  if (!e.ok || e.value.repr.ethertype !== ETHERTYPE_IPV6) return null;
  const ip = parseIpv6(e.value.payload);
  if (!ip.ok || ip.value.repr.nextHeader !== IPPROTO.ICMPV6) return null;
  const { src, dst, hopLimit } = ip.value.repr;
  return { ethSrc: e.value.repr.src, src, dst, hopLimit, icmp: ip.value.payload };
}

/** Result of {@linkcode proxyAnswer}. */
export type ProxyVerdict =
  /** Send `frame` (a whole Ethernet frame) on the home link. */
  | { kind: "answer"; frame: Uint8Array; target: string; to: string }
  /** Not a valid solicitation for an address the home agent defends. */
  | { kind: "none" }
  | { kind: "bad"; error: ParseError };

/**
 * Proxy Neighbor Discovery for the home addresses of registered mobile nodes (RFC 6275
 * §10.4.1, RFC 4861 §7.2.8): a valid Neighbor Solicitation (RFC 4861 §7.1.1: hop limit 255,
 * checksum, code 0, a non-multicast target; from the unspecified address only to the
 * solicited-node group and without a source link-layer option) for a `defended` target gets a
 * Neighbor Advertisement with the home agent's MAC as target link-layer address, Override
 * clear (a proxy, §7.2.8), Router clear (the target is a host). An address resolution or
 * reachability probe is answered to its source, Solicited set (RFC 4861 §7.2.4); another
 * node's Duplicate Address Detection probe to all-nodes, Solicited clear — the home address is
 * defended. The Ethernet destination is the solicitor's source link-layer option, else the
 * frame's source (a unicast probe may carry no option), or 33:33:00:00:00:01.
 */
export function proxyAnswer(
  m: LinkIcmp,
  defended: (homeAddress: string) => boolean,
  own: { mac: string; src: string },
): ProxyVerdict {
  if (m.icmp.length < 1 || m.icmp[0] !== 135) return { kind: "none" };
  if (m.hopLimit !== ND_HOP_LIMIT) return { kind: "none" };
  const p = parseIcmpv6(m.icmp, { src: m.src, dst: m.dst });
  if (!p.ok) return { kind: "bad", error: p };
  const ns = p.value;
  if (ns.type !== "neighborSolicitation") return { kind: "none" };
  const target = canonicalIPv6(ns.target);
  if (isMulticast(target) || !defended(target)) return { kind: "none" };
  const sll = ns.options.find((o) => o.type === "sourceLinkLayer");
  const dad = canonicalIPv6(m.src) === "::";
  if (dad && (canonicalIPv6(m.dst) !== solicitedNodeMulticast(target) || sll !== undefined)) {
    return { kind: "none" }; // RFC 4861 §7.1.1
  }
  const to = dad ? ALL_NODES : m.src;
  const packet = buildIcmpv6Packet({
    src: own.src,
    dst: to,
    hopLimit: ND_HOP_LIMIT,
    icmp: {
      type: "neighborAdvertisement",
      router: false,
      solicited: !dad,
      override: false,
      target,
      options: [{ type: "targetLinkLayer", mac: own.mac }],
    },
  });
  const ethDst = dad
    ? multicastMac(ALL_NODES)
    : sll?.type === "sourceLinkLayer"
    ? sll.mac
    : m.ethSrc;
  return {
    kind: "answer",
    frame: buildEthernetFrame({ dst: ethDst, src: own.mac }, packet),
    target,
    to,
  };
}
