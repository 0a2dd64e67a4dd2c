/**
 * Packets built by Kagemusha's own codecs (src/wire/packet.ts builders) for the
 * oracle tests, each with what was asked of the builder: the oracles must read
 * the same values back.
 *
 * @module
 */

import {
  buildBindingAck,
  buildBindingUpdate,
  buildIcmpv6Packet,
  buildMobilityPacket,
  emitIpv6,
  emitMobility,
  type Icmpv6Repr,
  IPPROTO,
  IPV6_HEADER_LEN,
  mobilityLen,
  type MobilityRepr,
  parseIPv6,
} from "../../src/wire/mod.ts";
import { NO_BU_FLAGS } from "../../src/wire/test_util.ts";

/** Reference addresses (DESIGN.md topology). */
export const ADDR = {
  hoa: "2001:db8:2000::10",
  ha: "2001:db8:2000::1",
  coa: "2001:db8:3000::3",
  coa2: "2001:db8:4000::3",
  cn: "2001:db8:2000::2",
  vmMac: "52:54:00:00:00:10",
  haMac: "52:54:00:aa:bb:01",
} as const;

/** One packet we built, and what it should contain. */
export interface OurCase {
  name: string;
  /** The whole IPv6 packet. */
  packet: Uint8Array;
  ipv6: { src: string; dst: string; nextHeader: number; hopLimit: number };
  /** HoA in a Home Address destination option. */
  homeAddress?: string;
  /** HoA in a type 2 routing header (segments left 1). */
  rh2?: string;
  mh?: MobilityRepr;
  icmp?: Icmpv6Repr;
}

/** A large packet from the VM, the kind that triggers a Packet Too Big (RFC 2473 §7). */
export function bigInvokingPacket(): Uint8Array {
  const payloadLen = 1460;
  const p = new Uint8Array(IPV6_HEADER_LEN + payloadLen);
  emitIpv6({
    src: ADDR.hoa,
    dst: "2001:db8:5000::7",
    nextHeader: IPPROTO.NONE,
    hopLimit: 64,
    payloadLength: payloadLen,
  }, p);
  for (let i = IPV6_HEADER_LEN; i < p.length; i++) p[i] = i & 0xff;
  return p;
}

/**
 * A mobility packet with an RH2 (e.g. a Binding Refresh Request to a mobile node
 * away from home), assembled here: packet.ts builds an RH2 only for BAs: IPv6 + RH2(HoA) + MH, checksum with the HoA as destination.
 */
export function buildWithRh2(
  src: string,
  dst: string,
  homeAddress: string,
  mh: MobilityRepr,
  hopLimit = 64,
): Uint8Array {
  const mhLen = mobilityLen(mh);
  const p = new Uint8Array(IPV6_HEADER_LEN + 24 + mhLen);
  emitIpv6({
    src,
    dst,
    nextHeader: IPPROTO.ROUTING,
    hopLimit,
    payloadLength: 24 + mhLen,
  }, p);
  // Type 2 routing header (RFC 6275 §6.4), written by hand so this helper
  // does not depend on the codec under test for the RH2 itself.
  const rh = p.subarray(IPV6_HEADER_LEN, IPV6_HEADER_LEN + 24);
  rh.set([IPPROTO.MH, 2, 2, 1, 0, 0, 0, 0]);
  rh.set(parseIPv6(homeAddress), 8);
  emitMobility(mh, p.subarray(IPV6_HEADER_LEN + 24), { src, dst: homeAddress });
  return p;
}

/** The packets, built by our codecs. */
export function ourCases(): OurCase[] {
  const { hoa, ha, coa, coa2, vmMac, haMac } = ADDR;
  const cases: OurCase[] = [];
  const bu = (name: string, careOf: string, mh: MobilityRepr & { type: "bu" }) =>
    cases.push({
      name,
      packet: buildBindingUpdate({ careOf, homeAgent: ha, homeAddress: hoa, bu: mh }),
      ipv6: { src: careOf, dst: ha, nextHeader: IPPROTO.DSTOPTS, hopLimit: 64 },
      homeAddress: hoa,
      mh,
    });
  const ba = (name: string, careOf: string, mh: MobilityRepr & { type: "ba" }) =>
    cases.push({
      name,
      packet: buildBindingAck({ homeAgent: ha, careOf, homeAddress: hoa, ba: mh }),
      ipv6: { src: ha, dst: careOf, nextHeader: IPPROTO.ROUTING, hopLimit: 64 },
      rh2: hoa,
      mh,
    });
  const icmp = (name: string, src: string, dst: string, repr: Icmpv6Repr, hopLimit = 255) =>
    cases.push({
      name,
      packet: buildIcmpv6Packet({ src, dst, hopLimit, icmp: repr }),
      ipv6: { src, dst, nextHeader: IPPROTO.ICMPV6, hopLimit },
      icmp: repr,
    });

  // Home registration: A, H, Alt-CoA (RFC 6275 §11.7.1). Flags are spread over three
  // BUs so that each of A H L K M R P F is set in exactly one of them.
  bu("bu_home_registration", coa, {
    type: "bu",
    sequence: 4242,
    flags: { ...NO_BU_FLAGS, ack: true, home: true },
    lifetime: 150,
    options: [{ type: "altCoa", address: coa }],
  });
  bu("bu_l_k_r_f", coa2, {
    type: "bu",
    sequence: 65535,
    flags: { ...NO_BU_FLAGS, linkLocal: true, key: true, mobileRouter: true, forceUdp: true },
    lifetime: 0,
    options: [{ type: "altCoa", address: coa2 }],
  });
  bu("bu_a_m_p_nonce", coa, {
    type: "bu",
    sequence: 1,
    flags: { ...NO_BU_FLAGS, ack: true, mapReg: true, proxy: true },
    lifetime: 0xffff,
    options: [{ type: "nonce", homeNonceIndex: 0x1234, careOfNonceIndex: 0xabcd }],
  });
  ba("ba_accepted_bra", coa, {
    type: "ba",
    status: 0,
    flags: { key: false, mobileRouter: false, proxy: false },
    sequence: 4242,
    lifetime: 150,
    options: [{ type: "bra", interval: 60 }],
  });
  ba("ba_135_k", coa2, {
    type: "ba",
    status: 135,
    flags: { key: true, mobileRouter: false, proxy: false },
    sequence: 77,
    lifetime: 0,
    options: [],
  });
  ba("ba_133_r_p", coa, {
    type: "ba",
    status: 133,
    flags: { key: false, mobileRouter: true, proxy: true },
    sequence: 9,
    lifetime: 0,
    options: [],
  });
  const be: MobilityRepr = { type: "be", status: 1, homeAddress: hoa };
  cases.push({
    name: "be_unknown_hao",
    packet: buildMobilityPacket({ src: ha, dst: coa, mh: be }),
    ipv6: { src: ha, dst: coa, nextHeader: IPPROTO.MH, hopLimit: 64 },
    mh: be,
  });
  const be2: MobilityRepr = { type: "be", status: 2, homeAddress: "::" };
  cases.push({
    name: "be_unknown_mh_type",
    packet: buildMobilityPacket({ src: ha, dst: coa2, mh: be2 }),
    ipv6: { src: ha, dst: coa2, nextHeader: IPPROTO.MH, hopLimit: 64 },
    mh: be2,
  });
  const brr: MobilityRepr = { type: "brr", options: [] };
  cases.push({
    name: "brr",
    packet: buildMobilityPacket({ src: ha, dst: coa, mh: brr }),
    ipv6: { src: ha, dst: coa, nextHeader: IPPROTO.MH, hopLimit: 64 },
    mh: brr,
  });
  const brrRh2: MobilityRepr = { type: "brr", options: [] };
  cases.push({
    name: "brr_rh2",
    packet: buildWithRh2(ha, coa, hoa, brrRh2),
    ipv6: { src: ha, dst: coa, nextHeader: IPPROTO.ROUTING, hopLimit: 64 },
    rh2: hoa,
    mh: brrRh2,
  });

  icmp("ns_slla", "fe80::5054:ff:fe00:10", "ff02::1:ff00:1", {
    type: "neighborSolicitation",
    target: ha,
    options: [{ type: "sourceLinkLayer", mac: vmMac }],
  });
  icmp("ns_dad", "::", "ff02::1:ff00:10", {
    type: "neighborSolicitation",
    target: hoa,
    options: [],
  });
  icmp("na_solicited_router", ha, hoa, {
    type: "neighborAdvertisement",
    router: true,
    solicited: true,
    override: false,
    target: ha,
    options: [{ type: "targetLinkLayer", mac: haMac }],
  });
  icmp("na_unsolicited_override", hoa, "ff02::1", {
    type: "neighborAdvertisement",
    router: false,
    solicited: false,
    override: true,
    target: hoa,
    options: [{ type: "targetLinkLayer", mac: vmMac }],
  });
  icmp("rs_slla", "fe80::5054:ff:fe00:10", "ff02::2", {
    type: "routerSolicitation",
    options: [{ type: "sourceLinkLayer", mac: vmMac }],
  });
  icmp("ra_slla_prefix_mtu", "fe80::1", "ff02::1", {
    type: "routerAdvertisement",
    curHopLimit: 64,
    managed: false,
    other: true,
    routerLifetime: 1800,
    reachableTime: 30000,
    retransTimer: 1000,
    options: [
      { type: "sourceLinkLayer", mac: haMac },
      {
        type: "prefixInfo",
        prefix: "2001:db8:2000::",
        prefixLength: 64,
        onLink: true,
        autonomous: true,
        validLifetime: 2592000,
        preferredLifetime: 604800,
      },
      { type: "mtu", mtu: 1500 },
    ],
  });
  icmp("ra_managed_offlink_prefix", "fe80::1", "ff02::1", {
    type: "routerAdvertisement",
    curHopLimit: 0,
    managed: true,
    other: false,
    routerLifetime: 0,
    reachableTime: 0,
    retransTimer: 0,
    options: [{
      type: "prefixInfo",
      prefix: "2001:db8:3000::",
      prefixLength: 48,
      onLink: false,
      autonomous: true,
      validLifetime: 0xffffffff,
      preferredLifetime: 0,
    }],
  });
  icmp("ptb_small", ha, hoa, {
    type: "packetTooBig",
    mtu: 1400,
    invoking: bigInvokingPacket().subarray(0, 200),
  }, 64);
  return cases;
}

/**
 * A Packet Too Big whose invoking packet is larger than fits: the emitter must
 * truncate it so that the whole packet is 1280 bytes (RFC 4443 §2.4 (c)).
 */
export function ptbTruncationCase(): { packet: Uint8Array; invoking: Uint8Array } {
  const invoking = bigInvokingPacket();
  const packet = buildIcmpv6Packet({
    src: ADDR.ha,
    dst: ADDR.hoa,
    hopLimit: 64,
    icmp: { type: "packetTooBig", mtu: 1280, invoking },
  });
  return { packet, invoking };
}

/** Payload length of the IPv6 header of `packet`. */
export function payloadLength(packet: Uint8Array): number {
  return (packet[4] << 8) | packet[5];
}
