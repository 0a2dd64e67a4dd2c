/**
 * The pseudo home network: what the daemon's end of a VM's tap does with each Ethernet frame
 * the guest sends (Kagemusha's "pseudo home network", RFC 4861 Neighbor Discovery on the home
 * link, RFC 2473 §7 for tunnel MTU).
 *
 * {@linkcode handleVmFrame} is pure and allocation-free: it reads one frame, and either points
 * at the IPv6 packet to put into the tunnel, or writes a reply frame (Neighbor Advertisement,
 * Router Advertisement, Echo Reply, Packet Too Big) into a caller-owned buffer, or drops the
 * frame with a reason and the index of its drop counter ({@linkcode VM_DROP_COUNTERS}). The
 * data-path Workers call it per frame with a reused {@linkcode FrameVerdict}; nothing here
 * touches a socket or the clock.
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
 * - Router Solicitation → Router Advertisement (contents below);
 * - Echo Request to the router's link-local → Echo Reply;
 * - other ND messages (NA, RA, Redirect), multicast destinations (MLD, DHCPv6, ...),
 *   link-local destinations or sources → drop;
 * - from the HoA to a global unicast destination → tunnel, or, when the packet exceeds
 *   `tunnelMtu`, an ICMPv6 Packet Too Big (MTU = tunnelMtu, source = router link-local,
 *   invoking packet truncated so the PTB is at most 1280 bytes, RFC 4443 §3.2);
 * - anything else → drop.
 *
 * ## What a guest sees while it is away from home
 *
 * One router, at `routerLl` with `routerMac`, which answers Neighbor Solicitations for itself
 * and for every other address of the home prefix, answers pings, and advertises (RFC 4861
 * §4.2; per VM from `vm.ra`, {@linkcode RaOptions}, defaults in {@linkcode RA_DEFAULTS}):
 * - Cur Hop Limit 64, M and O flags as configured (default 0), Router Lifetime as configured
 *   (default 3 × MaxRtrAdvInterval = 1800 s), Reachable Time and Retrans Timer unspecified;
 * - the Source Link-Layer Address option (the router MAC);
 * - an MTU option (§4.6.4) only when `mtu` is configured;
 * - one Prefix Information option for the home prefix with L=1 and, by default, **A=0**
 *   (valid 30 days, preferred 7 days): the prefix stays on-link but the guest configures no
 *   new SLAAC or temporary address from it — those could not be tunnelled (only the HoA is
 *   registered), so the guest keeps using its configured home address;
 * - a Recursive DNS Server option (RFC 8106 §5.1) only when `rdnss` lists servers; lifetime
 *   3 × MaxRtrAdvInterval.
 *
 * The daemon sends this RA on a Router Solicitation (from the Worker), when the VM arrives
 * (handover, registration) and periodically while the VM is away (RFC 4861 §6.2.4, see
 * `router_advertiser.ts`), so the guest's default route never expires.
 *
 * ## What is not relayed (each counted in its `vm_drop_*` counter, never silently)
 * - IPv4 and ARP (`vm_drop_ipv4`), other EtherTypes (`vm_drop_ethertype`): the tunnel is
 *   IPv6 in IPv6 for the HoA only;
 * - DHCPv6 to ff02::1:2 (`vm_drop_dhcpv6`): nothing answers or relays it while the VM is away,
 *   so M=1/O=1 guests keep the lease they have; give `rdnss` for DNS instead;
 * - other multicast — MLD reports, mDNS, … (`vm_drop_multicast`) — and link-local
 *   destinations (`vm_drop_link_local`): the home link's other hosts are not reachable at
 *   link scope;
 * - packets from any address other than the HoA (`vm_drop_not_hoa`): SLAAC or temporary
 *   addresses the guest formed at home, other static addresses, link-local sources towards
 *   off-link destinations — the home agent has a binding for the HoA only;
 * - Neighbor Discovery the pseudo router does not answer (`vm_drop_nd`): DAD probes, NS for
 *   the VM's own addresses or for targets off the home prefix, NA/RA/Redirect from the guest;
 * - malformed frames (`vm_drop_malformed`), frames from another MAC (`vm_drop_foreign_mac`).
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
  /** DROP: index of the counter in {@linkcode VM_DROP_COUNTERS}; otherwise -1. */
  dropCounter: number;
}

/** A fresh verdict to reuse across calls. */
export function newFrameVerdict(): FrameVerdict {
  return { action: FRAME_ACTION.DROP, offset: 0, length: 0, reason: "", dropCounter: -1 };
}

/**
 * The counters of frames the pseudo home network does not relay, by reason (see the module
 * doc); a DROP verdict's `dropCounter` indexes this list. The data path adds each dropped
 * frame to `vm_dropped` and to the counter named here.
 */
export const VM_DROP_COUNTERS = [
  "vm_drop_foreign_mac",
  "vm_drop_ipv4",
  "vm_drop_ethertype",
  "vm_drop_malformed",
  "vm_drop_nd",
  "vm_drop_dhcpv6",
  "vm_drop_multicast",
  "vm_drop_link_local",
  "vm_drop_not_hoa",
  "vm_drop_other",
] as const;

/** Name of one {@linkcode VM_DROP_COUNTERS} entry. */
export type VmDropCounter = typeof VM_DROP_COUNTERS[number];

const D_FOREIGN_MAC = 0;
const D_IPV4 = 1;
const D_ETHERTYPE = 2;
const D_MALFORMED = 3;
const D_ND = 4;
const D_DHCPV6 = 5;
const D_MULTICAST = 6;
const D_LINK_LOCAL = 7;
const D_NOT_HOA = 8;
const D_OTHER = 9;

/**
 * What the pseudo router's Router Advertisements say, per VM (`vm.ra` in the configuration;
 * RFC 4861 §4.2, §4.6.2, §4.6.4, RFC 8106 §5.1). Every field is optional; see
 * {@linkcode RA_DEFAULTS}.
 */
export interface RaOptions {
  /** M flag (addresses by DHCPv6; DHCPv6 is not relayed while away). Default false. */
  managed?: boolean;
  /** O flag (other configuration by DHCPv6). Default false. */
  other?: boolean;
  /**
   * A flag of the home prefix's Prefix Information option. Default false: the guest keeps
   * its configured HoA and forms no SLAAC/temporary address that could not be tunnelled.
   */
  autonomous?: boolean;
  /**
   * Router Lifetime, seconds: 0 (not a default router) or up to 9000 (RFC 4861 §6.2.1).
   * Default 3 × MaxRtrAdvInterval (1800 s).
   */
  routerLifetime?: number;
  /** Recursive DNS servers (RFC 8106 §5.1), global unicast. Default none (no option). */
  rdnss?: string[];
  /** Link MTU to advertise (RFC 4861 §4.6.4), >= 1280. Default none (no option). */
  mtu?: number;
}

/** Defaults of {@linkcode RaOptions} and of the periodic RA schedule (RFC 4861 §6.2.1). */
export const RA_DEFAULTS = {
  managed: false,
  other: false,
  autonomous: false,
  /** MaxRtrAdvInterval, seconds (RFC 4861 §6.2.1 default 600). */
  maxRtrAdvIntervalS: 600,
  /** MinRtrAdvInterval, seconds (RFC 4861 default 0.33 × MaxRtrAdvInterval). */
  minRtrAdvIntervalS: 200,
  /** Prefix valid lifetime, seconds (AdvValidLifetime default, RFC 4861 §6.2.1). */
  validLifetime: 2592000,
  /** Prefix preferred lifetime, seconds (AdvPreferredLifetime default). */
  preferredLifetime: 604800,
} as const;

/** Largest Router Lifetime (RFC 4861 §6.2.1). */
const MAX_ROUTER_LIFETIME = 9000;
/** RDNSS servers an RA carries at most (the config allows 8). */
const MAX_RDNSS = 8;

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
  /** Router Advertisement contents (defaults: {@linkcode RA_DEFAULTS}). */
  ra?: RaOptions;
}

/** Options of {@linkcode makePseudoHomeContext}. */
export interface PseudoHomeOptions {
  /**
   * MaxRtrAdvInterval / MinRtrAdvInterval of the periodic RAs, seconds (default 600 / 200;
   * smaller values are for tests). The default Router Lifetime is 3 × the maximum.
   */
  maxRtrAdvIntervalS?: number;
  minRtrAdvIntervalS?: number;
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
  /** RA byte 5: M (0x80) and O (0x40) flags (RFC 4861 §4.2). */
  readonly raFlags: number;
  /** Prefix Information flags: L (0x80), A (0x40) when autonomous (RFC 4861 §4.6.2). */
  readonly prefixFlags: number;
  /** MTU option value, 0 for no MTU option (RFC 4861 §4.6.4). */
  readonly raMtu: number;
  /** RDNSS addresses, 16 bytes each, concatenated (RFC 8106 §5.1); empty for no option. */
  readonly rdnss: Uint8Array;
  /** RDNSS lifetime, seconds: 3 × MaxRtrAdvInterval (RFC 8106 §5.1). */
  readonly rdnssLifetime: number;
  /** Length of the Router Advertisement frame with these options. */
  readonly raFrameLen: number;
  /**
   * MaxRtrAdvInterval / MinRtrAdvInterval of the periodic unsolicited RAs, seconds: the
   * configured (or default) ones, lowered when the Router Lifetime is shorter than three
   * maximum intervals, so that at least three RAs refresh the guest's default route within
   * one lifetime (RFC 4861 §6.2.1 wants AdvDefaultLifetime >= MaxRtrAdvInterval).
   */
  readonly maxRtrAdvIntervalS: number;
  readonly minRtrAdvIntervalS: number;
}

/**
 * Prepares the byte forms for one VM. `tunnelMtu` is the link MTU minus the 40-byte tunnel
 * header (e.g. 1460 on a 1500-byte link): the largest inner packet that still fits.
 * @throws {TypeError} on malformed addresses (config errors, not packets).
 */
export function makePseudoHomeContext(
  vm: PseudoHomeVm,
  tunnelMtu: number,
  opts: PseudoHomeOptions = {},
): PseudoHomeContext {
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
  const ra = vm.ra ?? {};
  const baseMax = opts.maxRtrAdvIntervalS ?? RA_DEFAULTS.maxRtrAdvIntervalS;
  const baseMin = opts.minRtrAdvIntervalS ??
    (opts.maxRtrAdvIntervalS === undefined
      ? RA_DEFAULTS.minRtrAdvIntervalS
      : Math.min(RA_DEFAULTS.minRtrAdvIntervalS, baseMax * 0.33));
  if (!(baseMax > 0) || !(baseMin > 0) || baseMin > baseMax) {
    throw new RangeError(
      `RA intervals must satisfy 0 < min <= max, got min ${baseMin} s, max ${baseMax} s`,
    );
  }
  const routerLifetime = ra.routerLifetime ??
    Math.min(MAX_ROUTER_LIFETIME, Math.max(1, Math.round(3 * baseMax)));
  if (
    !Number.isInteger(routerLifetime) || routerLifetime < 0 ||
    routerLifetime > MAX_ROUTER_LIFETIME
  ) {
    throw new RangeError(
      `ra.routerLifetime must be 0..9000 s (RFC 4861 §6.2.1): ${routerLifetime}`,
    );
  }
  let maxS = baseMax;
  let minS = baseMin;
  if (routerLifetime > 0 && routerLifetime < 3 * baseMax) {
    maxS = routerLifetime / 3;
    minS = Math.min(baseMin, maxS * 0.33);
  }
  const mtu = ra.mtu ?? 0;
  if (mtu !== 0 && (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > 0xffffffff)) {
    throw new RangeError(`ra.mtu must be an integer >= 1280 (RFC 8200 §5): ${mtu}`);
  }
  const servers = ra.rdnss ?? [];
  if (servers.length > MAX_RDNSS) {
    throw new RangeError(`ra.rdnss: at most ${MAX_RDNSS} servers, got ${servers.length}`);
  }
  const rdnss = new Uint8Array(16 * servers.length);
  servers.forEach((a, i) => rdnss.set(parseIPv6(a), 16 * i));
  return {
    homeAddress,
    prefix,
    prefixLength: vm.prefixLength,
    vmMac,
    vmLinkLocal: parseIPv6(linkLocalFromMac(vm.vmMac)),
    routerMac,
    routerLl: parseIPv6(vm.routerLl),
    tunnelMtu,
    routerLifetime,
    validLifetime: RA_DEFAULTS.validLifetime,
    preferredLifetime: RA_DEFAULTS.preferredLifetime,
    raFlags: (ra.managed ?? RA_DEFAULTS.managed ? 0x80 : 0) |
      (ra.other ?? RA_DEFAULTS.other ? 0x40 : 0),
    prefixFlags: 0x80 | (ra.autonomous ?? RA_DEFAULTS.autonomous ? 0x40 : 0),
    raMtu: mtu,
    rdnss,
    rdnssLifetime: Math.min(0xffffffff, Math.ceil(3 * maxS)),
    raFrameLen: RA_FRAME_LEN + (mtu !== 0 ? 8 : 0) +
      (servers.length > 0 ? 8 + rdnss.length : 0),
    maxRtrAdvIntervalS: maxS,
    minRtrAdvIntervalS: minS,
  };
}

// ---- layout -----------------------------------------------------------------------------

const ETH_LEN = 14;
const ETH_DST = 0;
const ETH_SRC = 6;
const ETH_TYPE = 12;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;

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
const OPT_MTU = 5;
/** Recursive DNS Server option (RFC 8106 §5.1). */
const OPT_RDNSS = 25;

/** RFC 8200 §5: the minimum MTU, the ceiling for an ICMPv6 error packet (RFC 4443 §2.4(c)). */
const MIN_MTU = 1280;

/** Frame length of a Neighbor Advertisement with a TLLA option. */
export const NA_FRAME_LEN = ETH_LEN + IP6_LEN + 24 + 8;
/**
 * Frame length of the Router Advertisement with SLLA and prefix information only; the MTU
 * and RDNSS options add to it (`PseudoHomeContext.raFrameLen`).
 */
export const RA_FRAME_LEN = ETH_LEN + IP6_LEN + 16 + 8 + 32;
/** Largest PTB frame: a 1280-byte IPv6 packet plus the Ethernet header. */
export const PTB_MAX_FRAME_LEN = ETH_LEN + MIN_MTU;

// ---- the frame logic --------------------------------------------------------------------

function drop(v: FrameVerdict, reason: string, counter: number): void {
  v.action = FRAME_ACTION.DROP;
  v.offset = 0;
  v.length = 0;
  v.reason = reason;
  v.dropCounter = counter;
}

function reply(v: FrameVerdict, action: FrameAction, length: number, reason: string): void {
  v.action = action;
  v.offset = 0;
  v.length = length;
  v.reason = reason;
  v.dropCounter = -1;
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
  if (length < ETH_LEN) return drop(verdict, "runt frame", D_MALFORMED);
  if (!equalBytes(frame, ETH_SRC, ctx.vmMac, 0, 6)) {
    return drop(verdict, "source MAC not the VM's", D_FOREIGN_MAC);
  }
  const etherType = (frame[ETH_TYPE] << 8) | frame[ETH_TYPE + 1];
  if (etherType !== ETHERTYPE_IPV6) {
    return etherType === ETHERTYPE_IPV4 || etherType === ETHERTYPE_ARP
      ? drop(verdict, "IPv4/ARP not relayed", D_IPV4)
      : drop(verdict, "not IPv6", D_ETHERTYPE);
  }
  if (length < ETH_LEN + IP6_LEN) return drop(verdict, "truncated IPv6 header", D_MALFORMED);
  if (frame[IP6] >> 4 !== 6) return drop(verdict, "IP version not 6", D_MALFORMED);
  const payloadLen = (frame[IP6 + IP6_PLEN] << 8) | frame[IP6 + IP6_PLEN + 1];
  const ipLen = IP6_LEN + payloadLen;
  // Jumbograms (payload length 0 + Hop-by-Hop jumbo option) are not relayed either.
  if (payloadLen === 0 && frame[IP6 + IP6_NH] === 0) return drop(verdict, "jumbogram", D_MALFORMED);
  if (ETH_LEN + ipLen > length) return drop(verdict, "truncated IPv6 payload", D_MALFORMED);
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
  if (dst0 === 0xff) {
    return isAllDhcpAt(frame, IP6 + IP6_DST)
      ? drop(verdict, "DHCPv6 to ff02::1:2 not relayed", D_DHCPV6)
      : drop(verdict, "multicast destination", D_MULTICAST);
  }
  if (isLinkLocalAt(frame, IP6 + IP6_DST)) {
    return drop(verdict, "link-local destination", D_LINK_LOCAL);
  }
  if (isUnspecifiedOrLoopbackAt(frame, IP6 + IP6_DST)) {
    return drop(verdict, "invalid destination", D_MALFORMED);
  }
  if (!equalBytes(frame, IP6 + IP6_SRC, ctx.homeAddress, 0, 16)) {
    return drop(
      verdict,
      isLinkLocalAt(frame, IP6 + IP6_SRC)
        ? "link-local source to an off-link destination"
        : "source not the home address",
      D_NOT_HOA,
    );
  }
  if (ipLen > ctx.tunnelMtu) return packetTooBig(frame, ipLen, ctx, out, verdict);
  verdict.action = FRAME_ACTION.TUNNEL;
  verdict.offset = IP6;
  verdict.length = ipLen;
  verdict.reason = "tunnel";
  verdict.dropCounter = -1;
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
  if (frame[IP6 + IP6_HLIM] !== 255) return drop(v, "ND hop limit not 255", D_MALFORMED);
  if (frame[ICMP + 1] !== 0) return drop(v, "ND code not 0", D_MALFORMED);
  if (type === ND_NA) return drop(v, "neighbor advertisement from the guest", D_ND);
  if (type === ND_RA) return drop(v, "router advertisement from the guest", D_ND);
  if (type === ND_REDIRECT) return drop(v, "redirect from the guest", D_ND);
  const icmpLen = ipLen - IP6_LEN;
  if (!checksumOk(frame, icmpLen)) return drop(v, "bad ICMPv6 checksum", D_MALFORMED);
  const srcUnspecified = isUnspecifiedAt(frame, IP6 + IP6_SRC);

  if (type === ND_RS) {
    if (icmpLen < 8) return drop(v, "truncated router solicitation", D_MALFORMED);
    const slla = findOption(frame, ICMP + 8, ICMP + icmpLen, OPT_SLLA);
    if (slla === -2) return drop(v, "malformed ND option", D_MALFORMED);
    if (srcUnspecified && slla >= 0) {
      return drop(v, "RS from :: with a link-layer option", D_MALFORMED);
    }
    if (out.length < ctx.raFrameLen) return drop(v, "reply buffer too small", D_OTHER);
    // Unicast to the soliciting address, or to all-nodes when it came from :: (RFC 4861 §6.2.6).
    writeRa(ctx, out, frame, srcUnspecified ? -1 : IP6 + IP6_SRC);
    return reply(v, FRAME_ACTION.REPLY, ctx.raFrameLen, "router advertisement");
  }

  if (type !== ND_NS) return drop(v, "unexpected ND type", D_ND);
  if (icmpLen < 24) return drop(v, "truncated neighbor solicitation", D_MALFORMED);
  const target = ICMP + 8;
  if (frame[target] === 0xff) return drop(v, "NS for a multicast target", D_MALFORMED);
  const slla = findOption(frame, ICMP + 24, ICMP + icmpLen, OPT_SLLA);
  if (slla === -2) return drop(v, "malformed ND option", D_MALFORMED);
  if (srcUnspecified) return drop(v, "DAD probe", D_ND);
  if (
    equalBytes(frame, target, ctx.homeAddress, 0, 16) ||
    equalBytes(frame, target, ctx.vmLinkLocal, 0, 16) ||
    equalBytes(frame, target, frame, IP6 + IP6_SRC, 16)
  ) {
    return drop(v, "NS for the VM's own address", D_ND);
  }
  const isRouter = equalBytes(frame, target, ctx.routerLl, 0, 16);
  if (!isRouter && !inPrefixAt(frame, target, ctx.prefix, ctx.prefixLength)) {
    return drop(v, "NS target neither the router nor on the home prefix", D_ND);
  }
  if (out.length < NA_FRAME_LEN) return drop(v, "reply buffer too small", D_OTHER);
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
  if (icmpLen < 8) return drop(v, "truncated echo request", D_MALFORMED);
  if (frame[ICMP + 1] !== 0) return drop(v, "echo request code not 0", D_MALFORMED);
  if (!checksumOk(frame, icmpLen)) return drop(v, "bad ICMPv6 checksum", D_MALFORMED);
  if (ETH_LEN + ipLen > out.length) return drop(v, "reply buffer too small", D_OTHER);
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
  if (ETH_LEN + IP6_LEN + icmpLen > out.length) return drop(v, "reply buffer too small", D_OTHER);
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
 * all-nodes, Ethernet destination the VM MAC; its contents are the context's (module doc).
 * `out` must hold `ctx.raFrameLen` bytes. Returns the frame length.
 */
export function buildUnsolicitedRa(ctx: PseudoHomeContext, out: Uint8Array): number {
  if (out.length < ctx.raFrameLen) {
    throw new RangeError(`buildUnsolicitedRa: buffer of ${out.length} < ${ctx.raFrameLen} bytes`);
  }
  writeRa(ctx, out, out, -1);
  return ctx.raFrameLen;
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
  const icmpLen = ctx.raFrameLen - ICMP;
  writeIpv6Header(out, icmpLen, 255);
  copy(out, IP6 + IP6_SRC, ctx.routerLl, 0, 16);
  if (dstAt >= 0) copy(out, IP6 + IP6_DST, src, dstAt, 16);
  else writeAllNodes(out, IP6 + IP6_DST);
  let p = ICMP;
  out[p] = ND_RA;
  out[p + 1] = 0;
  out[p + 2] = 0;
  out[p + 3] = 0;
  out[p + 4] = 64; // Cur Hop Limit
  out[p + 5] = ctx.raFlags; // M, O; Prf 0 (medium), reserved 0
  out[p + 6] = ctx.routerLifetime >> 8;
  out[p + 7] = ctx.routerLifetime & 0xff;
  for (let i = 8; i < 16; i++) out[p + i] = 0; // Reachable Time, Retrans Timer: unspecified
  p += 16;
  out[p] = OPT_SLLA;
  out[p + 1] = 1;
  copy(out, p + 2, ctx.routerMac, 0, 6);
  p += 8;
  if (ctx.raMtu !== 0) {
    out[p] = OPT_MTU;
    out[p + 1] = 1;
    out[p + 2] = 0;
    out[p + 3] = 0;
    put32(out, p + 4, ctx.raMtu);
    p += 8;
  }
  out[p] = OPT_PREFIX;
  out[p + 1] = 4;
  out[p + 2] = ctx.prefixLength;
  out[p + 3] = ctx.prefixFlags; // L (on-link), A (autonomous) when configured
  put32(out, p + 4, ctx.validLifetime);
  put32(out, p + 8, ctx.preferredLifetime);
  put32(out, p + 12, 0); // Reserved2
  copy(out, p + 16, ctx.prefix, 0, 16);
  p += 32;
  if (ctx.rdnss.length > 0) p = writeRdnssOption(out, p, ctx.rdnssLifetime, ctx.rdnss);
  setChecksum(out, icmpLen);
}

/**
 * Writes a Recursive DNS Server option (RFC 8106 §5.1) at `out[at]`: type 25, length
 * 1 + 2 × N (8-byte units), 2 reserved bytes, Lifetime (seconds; 0xffffffff = infinity),
 * then N 16-byte addresses (`servers`, concatenated). Returns the offset after it.
 * @throws {RangeError} when `servers` holds no address, a partial one, or more than 127.
 */
export function writeRdnssOption(
  out: Uint8Array,
  at: number,
  lifetime: number,
  servers: Uint8Array,
): number {
  const n = servers.length / 16;
  if (!Number.isInteger(n) || n < 1 || 1 + 2 * n > 255) {
    throw new RangeError(`RDNSS: 1..127 addresses of 16 bytes, got ${servers.length} bytes`);
  }
  const len = 8 + servers.length;
  if (at + len > out.length) throw new RangeError("RDNSS: buffer too small");
  out[at] = OPT_RDNSS;
  out[at + 1] = 1 + 2 * n;
  out[at + 2] = 0;
  out[at + 3] = 0;
  put32(out, at + 4, lifetime);
  copy(out, at + 8, servers, 0, servers.length);
  return at + len;
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

/** ff02::1:2, All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1). */
function isAllDhcpAt(b: Uint8Array, at: number): boolean {
  if (b[at] !== 0xff || b[at + 1] !== 0x02) return false;
  for (let i = 2; i < 13; i++) if (b[at + i] !== 0) return false;
  return b[at + 13] === 1 && b[at + 14] === 0 && b[at + 15] === 2;
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
