/**
 * The pseudo home network: what the daemon's end of a VM's tap does with each Ethernet frame
 * the guest sends (Kagemusha's "pseudo home network", RFC 4861 Neighbor Discovery on the home
 * link, RFC 2473 §7 for tunnel MTU).
 *
 * {@linkcode handleVmFrame} is pure and allocation-free: it reads one frame, and either points
 * at the IPv6 packet to put into the tunnel, or writes a reply frame (Neighbor Advertisement,
 * Router Advertisement, Echo Reply, Packet Too Big) into a caller-owned buffer, or drops the
 * frame with a reason. The data-path Workers call it per frame with a reused
 * {@linkcode FrameVerdict}; nothing here touches a socket or the clock.
 *
 * Rules, in order:
 * - the source MAC must be the VM's; the destination MAC is ignored (after a migration the
 *   guest still has the home router's MAC, or another home host's, in its neighbour cache,
 *   and the bridge floods those frames to the tap);
 * - IPv6 only, well-formed (version 6, payload length within the frame);
 * - Neighbor Solicitation (hop limit 255): from `::` (DAD) → drop; for the VM's own addresses
 *   (the HoA, the EUI-64 link-local of its MAC, the NS's own source) → drop; for the router's
 *   link-local or any other home-prefix address → solicited NA with the router MAC (R set for
 *   the router's address; S and O set); other targets → drop;
 * - Router Solicitation → Router Advertisement for the home prefix (SLLA = router MAC,
 *   prefix information with L and A);
 * - Echo Request to the router's link-local → Echo Reply;
 * - other ND messages (NA, RA, Redirect), multicast destinations (MLD, ...), link-local
 *   destinations or sources → drop;
 * - from the HoA to a global unicast destination → tunnel, or, when the packet exceeds
 *   `tunnelMtu`, an ICMPv6 Packet Too Big (MTU = tunnelMtu, source = router link-local,
 *   invoking packet truncated so the PTB is at most 1280 bytes, RFC 4443 §3.2);
 * - anything else → drop.
 *
 * @module
 */

import { formatIPv6, linkLocalFromMac, parseIPv6, parseMac } from "../wire/addr.ts";

/** What {@linkcode handleVmFrame} decided. */
export const FRAME_ACTION = {
  /** The IPv6 packet `frame[offset, offset + length)` goes into the tunnel. */
  TUNNEL: 0,
  /** A frame of `length` bytes was written at the start of `out`: write it to the tap. */
  REPLY: 1,
  /** Nothing to do; `reason` says why. */
  DROP: 2,
  /** An ICMPv6 Packet Too Big frame of `length` bytes was written into `out` (RFC 2473 §7). */
  TOO_BIG: 3,
} as const;

/** One of {@linkcode FRAME_ACTION}'s values. */
export type FrameAction = typeof FRAME_ACTION[keyof typeof FRAME_ACTION];

/** The verdict for one frame; reuse one object per Worker (it is overwritten every call). */
export interface FrameVerdict {
  /** What to do. */
  action: FrameAction;
  /** TUNNEL: offset of the IPv6 packet in the frame; otherwise 0. */
  offset: number;
  /** TUNNEL: IPv6 packet length; REPLY/TOO_BIG: frame length in `out`; DROP: 0. */
  length: number;
  /** A short constant string (no allocation): why, for counters and debug logs. */
  reason: string;
}

/** A fresh verdict to reuse across calls. */
export function newFrameVerdict(): FrameVerdict {
  return { action: FRAME_ACTION.DROP, offset: 0, length: 0, reason: "" };
}

/** The VM fields the pseudo home network needs (a `VmConfig` satisfies this). */
export interface PseudoHomeVm {
  /** The VM's Home Address (HoA). */
  homeAddress: string;
  /** Length of the home prefix the HoA lives in. */
  prefixLength: number;
  /** The VM NIC's MAC. */
  vmMac: string;
  /** The MAC the daemon answers Neighbor Discovery with (never the tap's own MAC). */
  routerMac: string;
  /** The home router's link-local address as the guest knows it. */
  routerLl: string;
}

/** Byte forms of one VM's addresses, prepared once (RFC 4861 roles on the pseudo home link). */
export interface PseudoHomeContext {
  /** HoA, 16 bytes. */
  readonly homeAddress: Uint8Array;
  /** Home prefix (HoA with the host bits cleared), 16 bytes. */
  readonly prefix: Uint8Array;
  /** Home prefix length. */
  readonly prefixLength: number;
  /** VM MAC, 6 bytes. */
  readonly vmMac: Uint8Array;
  /** EUI-64 link-local address of the VM MAC (RFC 4291 appendix A), 16 bytes. */
  readonly vmLinkLocal: Uint8Array;
  /** Router MAC, 6 bytes. */
  readonly routerMac: Uint8Array;
  /** Router link-local address, 16 bytes. */
  readonly routerLl: Uint8Array;
  /**
   * Largest IPv6 packet from the guest that still fits the path once the 40-byte outer header
   * is added: the link MTU minus 40 (RFC 2473 §6.7). Larger ones get a Packet Too Big.
   */
  readonly tunnelMtu: number;
  /** Router Lifetime advertised in RAs, seconds (RFC 4861 §4.2). */
  readonly routerLifetime: number;
  /** Valid / preferred lifetimes of the prefix information option, seconds (RFC 4861 §4.6.2). */
  readonly validLifetime: number;
  readonly preferredLifetime: number;
}

/**
 * Prepares the byte forms for one VM. `tunnelMtu` is the link MTU minus the 40-byte tunnel
 * header (e.g. 1460 on a 1500-byte link): the largest inner packet that still fits.
 * @throws {TypeError} on malformed addresses (config errors, not packets).
 */
export function makePseudoHomeContext(vm: PseudoHomeVm, tunnelMtu: number): PseudoHomeContext {
  if (!Number.isInteger(tunnelMtu) || tunnelMtu < 1280) {
    throw new RangeError(`tunnelMtu must be an integer >= 1280 (RFC 8200 §5), got ${tunnelMtu}`);
  }
  if (!Number.isInteger(vm.prefixLength) || vm.prefixLength < 1 || vm.prefixLength > 128) {
    throw new RangeError(`prefixLength must be 1..128, got ${vm.prefixLength}`);
  }
  const homeAddress = parseIPv6(vm.homeAddress);
  const prefix = homeAddress.slice();
  for (let bit = vm.prefixLength; bit < 128; bit++) prefix[bit >> 3] &= ~(0x80 >> (bit & 7));
  const routerMac = parseMac(vm.routerMac);
  const vmMac = parseMac(vm.vmMac);
  if (equalBytes(routerMac, 0, vmMac, 0, 6)) {
    throw new TypeError(`routerMac must differ from the VM's MAC (${vm.vmMac})`);
  }
  return {
    homeAddress,
    prefix,
    prefixLength: vm.prefixLength,
    vmMac,
    vmLinkLocal: parseIPv6(linkLocalFromMac(vm.vmMac)),
    routerMac,
    routerLl: parseIPv6(vm.routerLl),
    tunnelMtu,
    routerLifetime: 1800,
    validLifetime: 2592000,
    preferredLifetime: 604800,
  };
}

// ---- layout -----------------------------------------------------------------------------

const ETH_LEN = 14;
const ETH_DST = 0;
const ETH_SRC = 6;
const ETH_TYPE = 12;
const ETHERTYPE_IPV6 = 0x86dd;

const IP6 = ETH_LEN; // IPv6 header offset in a frame
const IP6_LEN = 40;
const IP6_PLEN = 4;
const IP6_NH = 6;
const IP6_HLIM = 7;
const IP6_SRC = 8;
const IP6_DST = 24;

const ICMP = IP6 + IP6_LEN; // ICMPv6 offset in a frame without extension headers
const NH_ICMPV6 = 58;

const ICMP_PTB = 2;
const ICMP_ECHO_REQUEST = 128;
const ICMP_ECHO_REPLY = 129;
const ND_RS = 133;
const ND_RA = 134;
const ND_NS = 135;
const ND_NA = 136;
const ND_REDIRECT = 137;

const OPT_SLLA = 1;
const OPT_TLLA = 2;
const OPT_PREFIX = 3;

/** RFC 8200 §5: the minimum MTU, the ceiling for an ICMPv6 error packet (RFC 4443 §2.4(c)). */
const MIN_MTU = 1280;

/** Frame length of a Neighbor Advertisement with a TLLA option. */
export const NA_FRAME_LEN = ETH_LEN + IP6_LEN + 24 + 8;
/** Frame length of the Router Advertisement (SLLA + prefix information). */
export const RA_FRAME_LEN = ETH_LEN + IP6_LEN + 16 + 8 + 32;
/** Largest PTB frame: a 1280-byte IPv6 packet plus the Ethernet header. */
export const PTB_MAX_FRAME_LEN = ETH_LEN + MIN_MTU;

// ---- the frame logic --------------------------------------------------------------------

function drop(v: FrameVerdict, reason: string): void {
  v.action = FRAME_ACTION.DROP;
  v.offset = 0;
  v.length = 0;
  v.reason = reason;
}

function reply(v: FrameVerdict, action: FrameAction, length: number, reason: string): void {
  v.action = action;
  v.offset = 0;
  v.length = length;
  v.reason = reason;
}

/**
 * Classifies one frame read from a VM's tap (see the module doc for the rules). Never throws
 * and never allocates, whatever the bytes. `frame[0, length)` is the frame; `out` receives a
 * reply frame and should hold at least 1514 bytes (an echo reply that would not fit is
 * dropped). The verdict is written into `verdict`.
 */
export function handleVmFrame(
  frame: Uint8Array,
  length: number,
  ctx: PseudoHomeContext,
  out: Uint8Array,
  verdict: FrameVerdict,
): void {
  if (!(length <= frame.length)) length = frame.length;
  if (length < ETH_LEN) return drop(verdict, "runt frame");
  if (!equalBytes(frame, ETH_SRC, ctx.vmMac, 0, 6)) return drop(verdict, "source MAC not the VM's");
  if (((frame[ETH_TYPE] << 8) | frame[ETH_TYPE + 1]) !== ETHERTYPE_IPV6) {
    return drop(verdict, "not IPv6");
  }
  if (length < ETH_LEN + IP6_LEN) return drop(verdict, "truncated IPv6 header");
  if (frame[IP6] >> 4 !== 6) return drop(verdict, "IP version not 6");
  const payloadLen = (frame[IP6 + IP6_PLEN] << 8) | frame[IP6 + IP6_PLEN + 1];
  const ipLen = IP6_LEN + payloadLen;
  // Jumbograms (payload length 0 + Hop-by-Hop jumbo option) are not relayed either.
  if (payloadLen === 0 && frame[IP6 + IP6_NH] === 0) return drop(verdict, "jumbogram");
  if (ETH_LEN + ipLen > length) return drop(verdict, "truncated IPv6 payload");
  const nh = frame[IP6 + IP6_NH];

  // Neighbor Discovery and pings to the router, before any routing decision: a unicast
  // NUD probe for another home host has a global destination and must not be tunneled.
  if (nh === NH_ICMPV6 && payloadLen >= 4) {
    const type = frame[ICMP];
    if (type >= ND_RS && type <= ND_REDIRECT) {
      return handleNd(frame, ipLen, ctx, out, verdict, type);
    }
    if (type === ICMP_ECHO_REQUEST && equalBytes(frame, IP6 + IP6_DST, ctx.routerLl, 0, 16)) {
      return echoReply(frame, ipLen, ctx, out, verdict);
    }
  }

  const dst0 = frame[IP6 + IP6_DST];
  if (dst0 === 0xff) return drop(verdict, "multicast destination");
  if (isLinkLocalAt(frame, IP6 + IP6_DST)) return drop(verdict, "link-local destination");
  if (isUnspecifiedOrLoopbackAt(frame, IP6 + IP6_DST)) return drop(verdict, "invalid destination");
  if (!equalBytes(frame, IP6 + IP6_SRC, ctx.homeAddress, 0, 16)) {
    return drop(
      verdict,
      isLinkLocalAt(frame, IP6 + IP6_SRC)
        ? "link-local source to an off-link destination"
        : "source not the home address",
    );
  }
  if (ipLen > ctx.tunnelMtu) return packetTooBig(frame, ipLen, ctx, out, verdict);
  verdict.action = FRAME_ACTION.TUNNEL;
  verdict.offset = IP6;
  verdict.length = ipLen;
  verdict.reason = "tunnel";
}

function handleNd(
  frame: Uint8Array,
  ipLen: number,
  ctx: PseudoHomeContext,
  out: Uint8Array,
  v: FrameVerdict,
  type: number,
): void {
  // RFC 4861 §6.1.1, §7.1.1: hop limit 255, code 0, valid checksum, options of nonzero length.
  if (frame[IP6 + IP6_HLIM] !== 255) return drop(v, "ND hop limit not 255");
  if (frame[ICMP + 1] !== 0) return drop(v, "ND code not 0");
  if (type === ND_NA) return drop(v, "neighbor advertisement from the guest");
  if (type === ND_RA) return drop(v, "router advertisement from the guest");
  if (type === ND_REDIRECT) return drop(v, "redirect from the guest");
  const icmpLen = ipLen - IP6_LEN;
  if (!checksumOk(frame, icmpLen)) return drop(v, "bad ICMPv6 checksum");
  const srcUnspecified = isUnspecifiedAt(frame, IP6 + IP6_SRC);

  if (type === ND_RS) {
    if (icmpLen < 8) return drop(v, "truncated router solicitation");
    const slla = findOption(frame, ICMP + 8, ICMP + icmpLen, OPT_SLLA);
    if (slla === -2) return drop(v, "malformed ND option");
    if (srcUnspecified && slla >= 0) return drop(v, "RS from :: with a link-layer option");
    if (out.length < RA_FRAME_LEN) return drop(v, "reply buffer too small");
    // Unicast to the soliciting address, or to all-nodes when it came from :: (RFC 4861 §6.2.6).
    writeRa(ctx, out, frame, srcUnspecified ? -1 : IP6 + IP6_SRC);
    return reply(v, FRAME_ACTION.REPLY, RA_FRAME_LEN, "router advertisement");
  }

  if (type !== ND_NS) return drop(v, "unexpected ND type");
  if (icmpLen < 24) return drop(v, "truncated neighbor solicitation");
  const target = ICMP + 8;
  if (frame[target] === 0xff) return drop(v, "NS for a multicast target");
  const slla = findOption(frame, ICMP + 24, ICMP + icmpLen, OPT_SLLA);
  if (slla === -2) return drop(v, "malformed ND option");
  if (srcUnspecified) return drop(v, "DAD probe");
  if (
    equalBytes(frame, target, ctx.homeAddress, 0, 16) ||
    equalBytes(frame, target, ctx.vmLinkLocal, 0, 16) ||
    equalBytes(frame, target, frame, IP6 + IP6_SRC, 16)
  ) {
    return drop(v, "NS for the VM's own address");
  }
  const isRouter = equalBytes(frame, target, ctx.routerLl, 0, 16);
  if (!isRouter && !inPrefixAt(frame, target, ctx.prefix, ctx.prefixLength)) {
    return drop(v, "NS target neither the router nor on the home prefix");
  }
  if (out.length < NA_FRAME_LEN) return drop(v, "reply buffer too small");
  // Ethernet destination: the SLLA when given, else the frame's source (the VM MAC).
  copy(out, ETH_DST, frame, slla >= 0 ? slla + 2 : ETH_SRC, 6);
  copy(out, ETH_SRC, ctx.routerMac, 0, 6);
  writeIpv6Header(out, 24 + 8, 255);
  copy(out, IP6 + IP6_SRC, frame, target, 16);
  copy(out, IP6 + IP6_DST, frame, IP6 + IP6_SRC, 16);
  // R for the router, S (solicited), O (override: replace whatever MAC the guest cached
  // before it moved, RFC 4861 §7.2.5).
  writeNa(out, frame, target, ctx.routerMac, (isRouter ? 0x80 : 0) | 0x40 | 0x20);
  return reply(v, FRAME_ACTION.REPLY, NA_FRAME_LEN, "neighbor advertisement");
}

function echoReply(
  frame: Uint8Array,
  ipLen: number,
  ctx: PseudoHomeContext,
  out: Uint8Array,
  v: FrameVerdict,
): void {
  const icmpLen = ipLen - IP6_LEN;
  if (icmpLen < 8) return drop(v, "truncated echo request");
  if (frame[ICMP + 1] !== 0) return drop(v, "echo request code not 0");
  if (!checksumOk(frame, icmpLen)) return drop(v, "bad ICMPv6 checksum");
  if (ETH_LEN + ipLen > out.length) return drop(v, "reply buffer too small");
  copy(out, ETH_DST, frame, ETH_SRC, 6);
  copy(out, ETH_SRC, ctx.routerMac, 0, 6);
  writeIpv6Header(out, icmpLen, 64);
  copy(out, IP6 + IP6_SRC, ctx.routerLl, 0, 16);
  copy(out, IP6 + IP6_DST, frame, IP6 + IP6_SRC, 16);
  copy(out, ICMP, frame, ICMP, icmpLen);
  out[ICMP] = ICMP_ECHO_REPLY;
  setChecksum(out, icmpLen);
  return reply(v, FRAME_ACTION.REPLY, ETH_LEN + ipLen, "echo reply");
}

function packetTooBig(
  frame: Uint8Array,
  ipLen: number,
  ctx: PseudoHomeContext,
  out: Uint8Array,
  v: FrameVerdict,
): void {
  // RFC 4443 §3.2 / §2.4(c): as much of the invoking packet as fits in 1280 bytes.
  const invoking = Math.min(ipLen, MIN_MTU - IP6_LEN - 8);
  const icmpLen = 8 + invoking;
  if (ETH_LEN + IP6_LEN + icmpLen > out.length) return drop(v, "reply buffer too small");
  copy(out, ETH_DST, frame, ETH_SRC, 6);
  copy(out, ETH_SRC, ctx.routerMac, 0, 6);
  writeIpv6Header(out, icmpLen, 255);
  copy(out, IP6 + IP6_SRC, ctx.routerLl, 0, 16);
  copy(out, IP6 + IP6_DST, frame, IP6 + IP6_SRC, 16);
  out[ICMP] = ICMP_PTB;
  out[ICMP + 1] = 0;
  out[ICMP + 2] = 0;
  out[ICMP + 3] = 0;
  const mtu = ctx.tunnelMtu;
  out[ICMP + 4] = mtu >>> 24;
  out[ICMP + 5] = (mtu >>> 16) & 0xff;
  out[ICMP + 6] = (mtu >>> 8) & 0xff;
  out[ICMP + 7] = mtu & 0xff;
  copy(out, ICMP + 8, frame, IP6, invoking);
  setChecksum(out, icmpLen);
  return reply(v, FRAME_ACTION.TOO_BIG, ETH_LEN + IP6_LEN + icmpLen, "packet too big");
}

// ---- frames the daemon sends on its own -------------------------------------------------

/**
 * Writes an unsolicited Neighbor Advertisement for the router's link-local address (R=1,
 * S=0, O=1, TLLA = router MAC) to all-nodes, Ethernet destination the VM MAC (RFC 4861
 * §7.2.6): sent when the VM becomes active on this host, so a guest that just moved replaces
 * the home router's MAC in its neighbour cache at once. Returns the frame length.
 */
export function buildUnsolicitedRouterNa(ctx: PseudoHomeContext, out: Uint8Array): number {
  copy(out, ETH_DST, ctx.vmMac, 0, 6);
  copy(out, ETH_SRC, ctx.routerMac, 0, 6);
  writeIpv6Header(out, 24 + 8, 255);
  copy(out, IP6 + IP6_SRC, ctx.routerLl, 0, 16);
  writeAllNodes(out, IP6 + IP6_DST);
  writeNa(out, ctx.routerLl, 0, ctx.routerMac, 0x80 | 0x20);
  return NA_FRAME_LEN;
}

/**
 * Writes an unsolicited Router Advertisement for the home prefix (RFC 4861 §6.2.3) to
 * all-nodes, Ethernet destination the VM MAC. Returns the frame length.
 */
export function buildUnsolicitedRa(ctx: PseudoHomeContext, out: Uint8Array): number {
  writeRa(ctx, out, out, -1);
  return RA_FRAME_LEN;
}

/**
 * Writes the Neighbor Advertisement a mobile node multicasts for its Home Address when it
 * returns home (RFC 6275 §11.5.4): source and target the HoA, destination all-nodes, R=0,
 * S=0, O=1, TLLA = the VM MAC, Ethernet source the VM MAC, destination 33:33:00:00:00:01.
 * The guest does not know it moved, so the host sends this on its behalf. Returns the length.
 */
export function buildHomeAddressNa(ctx: PseudoHomeContext, out: Uint8Array): number {
  out[0] = 0x33;
  out[1] = 0x33;
  out[2] = 0;
  out[3] = 0;
  out[4] = 0;
  out[5] = 1;
  copy(out, ETH_SRC, ctx.vmMac, 0, 6);
  writeIpv6Header(out, 24 + 8, 255);
  copy(out, IP6 + IP6_SRC, ctx.homeAddress, 0, 16);
  writeAllNodes(out, IP6 + IP6_DST);
  writeNa(out, ctx.homeAddress, 0, ctx.vmMac, 0x20);
  return NA_FRAME_LEN;
}

/** Human-readable form of a context (for logs and status). */
export function describePseudoHome(ctx: PseudoHomeContext): string {
  return `HoA ${formatIPv6(ctx.homeAddress)}/${ctx.prefixLength} router ${
    formatIPv6(ctx.routerLl)
  } tunnel MTU ${ctx.tunnelMtu}`;
}

// ---- helpers (no allocation) ------------------------------------------------------------

function writeIpv6Header(out: Uint8Array, payloadLen: number, hopLimit: number): void {
  out[ETH_TYPE] = ETHERTYPE_IPV6 >> 8;
  out[ETH_TYPE + 1] = ETHERTYPE_IPV6 & 0xff;
  out[IP6] = 0x60;
  out[IP6 + 1] = 0;
  out[IP6 + 2] = 0;
  out[IP6 + 3] = 0;
  out[IP6 + IP6_PLEN] = payloadLen >> 8;
  out[IP6 + IP6_PLEN + 1] = payloadLen & 0xff;
  out[IP6 + IP6_NH] = NH_ICMPV6;
  out[IP6 + IP6_HLIM] = hopLimit;
}

function writeAllNodes(out: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++) out[at + i] = 0;
  out[at] = 0xff;
  out[at + 1] = 0x02;
  out[at + 15] = 0x01;
}

/** ICMPv6 NA body at ICMP (24 bytes) + TLLA option (8 bytes), then the checksum. */
function writeNa(
  out: Uint8Array,
  targetSrc: Uint8Array,
  targetAt: number,
  tlla: Uint8Array,
  flags: number,
): void {
  out[ICMP] = ND_NA;
  out[ICMP + 1] = 0;
  out[ICMP + 2] = 0;
  out[ICMP + 3] = 0;
  out[ICMP + 4] = flags;
  out[ICMP + 5] = 0;
  out[ICMP + 6] = 0;
  out[ICMP + 7] = 0;
  copy(out, ICMP + 8, targetSrc, targetAt, 16);
  out[ICMP + 24] = OPT_TLLA;
  out[ICMP + 25] = 1;
  copy(out, ICMP + 26, tlla, 0, 6);
  setChecksum(out, 32);
}

/** The RA frame; destination `src[dstAt..]` when dstAt >= 0, else all-nodes. */
function writeRa(ctx: PseudoHomeContext, out: Uint8Array, src: Uint8Array, dstAt: number): void {
  copy(out, ETH_DST, ctx.vmMac, 0, 6);
  copy(out, ETH_SRC, ctx.routerMac, 0, 6);
  writeIpv6Header(out, RA_FRAME_LEN - ICMP, 255);
  copy(out, IP6 + IP6_SRC, ctx.routerLl, 0, 16);
  if (dstAt >= 0) copy(out, IP6 + IP6_DST, src, dstAt, 16);
  else writeAllNodes(out, IP6 + IP6_DST);
  let p = ICMP;
  out[p] = ND_RA;
  out[p + 1] = 0;
  out[p + 2] = 0;
  out[p + 3] = 0;
  out[p + 4] = 64; // Cur Hop Limit
  out[p + 5] = 0; // M=0 O=0
  out[p + 6] = ctx.routerLifetime >> 8;
  out[p + 7] = ctx.routerLifetime & 0xff;
  for (let i = 8; i < 16; i++) out[p + i] = 0; // Reachable Time, Retrans Timer: unspecified
  p += 16;
  out[p] = OPT_SLLA;
  out[p + 1] = 1;
  copy(out, p + 2, ctx.routerMac, 0, 6);
  p += 8;
  out[p] = OPT_PREFIX;
  out[p + 1] = 4;
  out[p + 2] = ctx.prefixLength;
  out[p + 3] = 0xc0; // L (on-link) + A (autonomous)
  put32(out, p + 4, ctx.validLifetime);
  put32(out, p + 8, ctx.preferredLifetime);
  put32(out, p + 12, 0); // Reserved2
  copy(out, p + 16, ctx.prefix, 0, 16);
  setChecksum(out, RA_FRAME_LEN - ICMP);
}

function put32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

function copy(dst: Uint8Array, dstAt: number, src: Uint8Array, srcAt: number, n: number): void {
  if (dst === src && dstAt > srcAt) {
    for (let i = n - 1; i >= 0; i--) dst[dstAt + i] = src[srcAt + i];
  } else {
    for (let i = 0; i < n; i++) dst[dstAt + i] = src[srcAt + i];
  }
}

function equalBytes(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
}

function isLinkLocalAt(b: Uint8Array, at: number): boolean {
  return b[at] === 0xfe && (b[at + 1] & 0xc0) === 0x80;
}

function isUnspecifiedAt(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 16; i++) if (b[at + i] !== 0) return false;
  return true;
}

function isUnspecifiedOrLoopbackAt(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 15; i++) if (b[at + i] !== 0) return false;
  return b[at + 15] <= 1;
}

function inPrefixAt(b: Uint8Array, at: number, prefix: Uint8Array, len: number): boolean {
  const full = len >> 3;
  for (let i = 0; i < full; i++) if (b[at + i] !== prefix[i]) return false;
  const rest = len & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (b[at + full] & mask) === prefix[full];
}

/**
 * Walks ND options in [from, to): returns the offset of the first option of `type`, -1 when
 * absent, -2 when an option has length 0 or overruns the message (RFC 4861 §4.6).
 */
function findOption(b: Uint8Array, from: number, to: number, type: number): number {
  let found = -1;
  let p = from;
  while (p < to) {
    if (p + 2 > to) return -2;
    const len = b[p + 1] * 8;
    if (len === 0 || p + len > to) return -2;
    if (found < 0 && b[p] === type) {
      if (type === OPT_SLLA && len < 8) return -2;
      found = p;
    }
    p += len;
  }
  return found;
}

/** Folded one's-complement sum of the pseudo-header and the ICMPv6 message in a frame. */
function icmpSum(b: Uint8Array, icmpLen: number): number {
  let sum = 0;
  for (let i = IP6 + IP6_SRC; i < IP6 + IP6_DST + 16; i += 2) sum += (b[i] << 8) | b[i + 1];
  sum += (icmpLen >>> 16) + (icmpLen & 0xffff) + NH_ICMPV6;
  const end = ICMP + icmpLen;
  const even = ICMP + (icmpLen & ~1);
  for (let i = ICMP; i < even; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (even < end) sum += b[even] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function checksumOk(b: Uint8Array, icmpLen: number): boolean {
  return icmpSum(b, icmpLen) === 0xffff;
}

function setChecksum(b: Uint8Array, icmpLen: number): void {
  b[ICMP + 2] = 0;
  b[ICMP + 3] = 0;
  const c = ~icmpSum(b, icmpLen) & 0xffff;
  b[ICMP + 2] = c >> 8;
  b[ICMP + 3] = c & 0xff;
}
