/**
 * What the home agent puts on the wire and how it reads what raw sockets hand it: pure
 * functions between bytes and {@linkcode HaEvent}s / {@linkcode HaAction}s, so the daemon only
 * moves buffers.
 *
 * @module
 */

import { canonicalIPv6, IPPROTO, solicitedNodeMulticast } from "../wire/addr.ts";
import { parseDestOpts } from "../wire/ext_headers.ts";
import { type Icmpv6Repr, parseIcmpv6 } from "../wire/icmpv6.ts";
import { parseMobility } from "../wire/mobility.ts";
import { buildBindingAck, buildIcmpv6Packet, buildMobilityPacket } from "../wire/packet.ts";
import type { ParseError } from "../wire/result.ts";
import type { HaAction, HaEvent } from "./core.ts";

/** All-nodes multicast (RFC 4291 §2.7.1). */
export const ALL_NODES = "ff02::1";

/** Hop limit of Neighbor Discovery messages (RFC 4861 §7.1). */
export const ND_HOP_LIMIT = 255;

/** A datagram decoded by {@linkcode decodeDstOptsDatagram} / {@linkcode decodeMhDatagram}. */
export type Decoded =
  /** A checksum-verified mobility message, or another packet with a HAO, for the core. */
  | { kind: "event"; event: Extract<HaEvent, { type: "mh" | "haoPacket" }> }
  /** Nothing for the home agent (not a mobility message, or seen on the other socket). */
  | { kind: "ignore"; why: string }
  /** Malformed or spoofed input; `error.field` names the offending field. */
  | { kind: "bad"; where: "dstopts" | "mh"; error: ParseError };

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
    return {
      kind: "bad",
      where: "mh",
      error: { ...mh, offset: mh.offset + length },
    };
  }
  return {
    kind: "event",
    event: { type: "mh", src, dst, homeAddress, hao: hao !== undefined, message: mh.value },
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
  if (!mh.ok) return { kind: "bad", where: "mh", error: mh };
  return {
    kind: "event",
    event: { type: "mh", src, dst, homeAddress: src, hao: false, message: mh.value },
  };
}

/**
 * The whole packet of a `sendBa` action: IPv6 + type 2 routing header (HoA) + BA when the
 * mobile node is away (RFC 6275 §6.1.8, §9.5.4), plain IPv6 + BA when it sent from its home
 * address. Built whole because a kernel without MIP6 refuses IPV6_RTHDR type 2.
 */
export function baPacket(a: Extract<HaAction, { type: "sendBa" }>): Uint8Array {
  const ba = {
    status: a.status,
    flags: { key: false, mobileRouter: false, proxy: false },
    sequence: a.sequence,
    lifetime: a.lifetime,
    options: [],
  };
  if (canonicalIPv6(a.to) === canonicalIPv6(a.homeAddress)) {
    return buildMobilityPacket({ src: a.from, dst: a.to, mh: { type: "ba", ...ba } });
  }
  return buildBindingAck({ homeAgent: a.from, careOf: a.to, homeAddress: a.homeAddress, ba });
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
 * Router set when the home agent forwards, target link-layer address = the home agent's MAC.
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
