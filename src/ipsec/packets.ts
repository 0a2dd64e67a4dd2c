/**
 * Whole ESP-protected signaling packets (layouts in `mod.ts`): builders for the Binding Update
 * and Binding Acknowledgement as they go on the wire, and the receive side that turns an ESP
 * payload plus its addressing into a checked Mobility Header.
 *
 * @module
 */

import { IPPROTO } from "../wire/addr.ts";
import {
  destOptsLen,
  type DestOptsRepr,
  emitDestOpts,
  emitRoutingType2,
  ROUTING_TYPE2_LEN,
  walkExtensionHeaders,
} from "../wire/ext_headers.ts";
import { emitIpv6, IPV6_HEADER_LEN, type Ipv6Repr, parseIpv6 } from "../wire/ipv6.ts";
import { emitMobility, mobilityLen, type MobilityRepr, parseMobility } from "../wire/mobility.ts";
import {
  type BindingAckPacket,
  type BindingUpdatePacket,
  DEFAULT_HOP_LIMIT,
} from "../wire/packet.ts";
import { type EspError, type EspParsed, protect, unprotect } from "./esp.ts";
import type { SecurityAssociation, SecurityAssociationDatabase } from "./sa.ts";

/**
 * The Mobility Header of `mh`, checksummed over `sum` (RFC 6275 §6.1.1), protected under `sa`:
 * the ESP bytes a raw IPPROTO_ESP socket sends (the kernel adds IPv6 and, from an IPV6_DSTOPTS
 * cmsg, the HAO before them).
 */
export async function protectMobility(
  sa: SecurityAssociation,
  mh: MobilityRepr,
  sum: { src: string; dst: string },
): Promise<Uint8Array> {
  const buf = new Uint8Array(mobilityLen(mh));
  emitMobility(mh, buf, sum);
  return await protect(sa, IPPROTO.MH, buf);
}

function assemble(ip: Omit<Ipv6Repr, "payloadLength">, ext: Uint8Array, esp: Uint8Array) {
  const out = new Uint8Array(IPV6_HEADER_LEN + ext.length + esp.length);
  emitIpv6({ ...ip, payloadLength: ext.length + esp.length }, out);
  out.set(ext, IPV6_HEADER_LEN);
  out.set(esp, IPV6_HEADER_LEN + ext.length);
  return out;
}

/**
 * A protected home-registration Binding Update (RFC 6275 §11.7.1, RFC 4877 §4.1):
 * IPv6 (CoA → HA) | Destination Options (HAO) | ESP | MH, the MH checksum over HoA → HA.
 * @throws {SequenceExhaustedError} when `sa` may send no more.
 */
export async function buildProtectedBindingUpdate(
  sa: SecurityAssociation,
  p: BindingUpdatePacket,
): Promise<Uint8Array> {
  const esp = await protectMobility(sa, { ...p.bu, type: "bu" }, {
    src: p.homeAddress,
    dst: p.homeAgent,
  });
  const dopts: DestOptsRepr = {
    nextHeader: IPPROTO.ESP,
    options: [{ type: "hao", homeAddress: p.homeAddress }],
  };
  const ext = new Uint8Array(destOptsLen(dopts));
  emitDestOpts(dopts, ext);
  return assemble(
    {
      src: p.careOf,
      dst: p.homeAgent,
      nextHeader: IPPROTO.DSTOPTS,
      hopLimit: p.hopLimit ?? DEFAULT_HOP_LIMIT,
    },
    ext,
    esp,
  );
}

/**
 * A protected Binding Acknowledgement to a mobile node away from home (RFC 6275 §10.3.1,
 * RFC 4877 §4.1): IPv6 (HA → CoA) | type 2 routing header (HoA) | ESP | MH, the MH checksum
 * over HA → HoA.
 * @throws {SequenceExhaustedError} when `sa` may send no more.
 */
export async function buildProtectedBindingAck(
  sa: SecurityAssociation,
  p: BindingAckPacket,
): Promise<Uint8Array> {
  const esp = await protectMobility(sa, { ...p.ba, type: "ba" }, {
    src: p.homeAgent,
    dst: p.homeAddress,
  });
  const ext = new Uint8Array(ROUTING_TYPE2_LEN);
  emitRoutingType2({ nextHeader: IPPROTO.ESP, segmentsLeft: 1, homeAddress: p.homeAddress }, ext);
  return assemble(
    {
      src: p.homeAgent,
      dst: p.careOf,
      nextHeader: IPPROTO.ROUTING,
      hopLimit: p.hopLimit ?? DEFAULT_HOP_LIMIT,
    },
    ext,
    esp,
  );
}

/**
 * IPv6 | ESP | MH without extension headers: the BU from home and its BA (RFC 6275 §11.5.4),
 * checksummed src → dst.
 * @throws {SequenceExhaustedError} when `sa` may send no more.
 */
export async function buildProtectedMobilityPacket(
  sa: SecurityAssociation,
  p: { src: string; dst: string; mh: MobilityRepr; hopLimit?: number },
): Promise<Uint8Array> {
  const esp = await protectMobility(sa, p.mh, { src: p.src, dst: p.dst });
  return assemble(
    {
      src: p.src,
      dst: p.dst,
      nextHeader: IPPROTO.ESP,
      hopLimit: p.hopLimit ?? DEFAULT_HOP_LIMIT,
    },
    new Uint8Array(0),
    esp,
  );
}

/** How an ESP payload arrived: the addresses around it. */
export interface EspAddressing {
  /** IPv6 source (the CoA for a BU away from home, the HA for a BA). */
  src: string;
  /** IPv6 destination (the HA for a BU, the CoA for a BA away from home). */
  dst: string;
  /** The Home Address option's address, when the packet had one (BU away from home). */
  hao?: string;
  /** The type 2 routing header's address, when the packet had one (BA away from home). */
  rh2?: string;
}

/** A Mobility Header that came out of ESP. */
export interface ProtectedMobility {
  sa: SecurityAssociation;
  sequence: number;
  mh: MobilityRepr;
  /** The home address the packet named (HAO/RH2, else the at-home src/dst). */
  homeAddress: string;
}

/**
 * Unprotects the ESP bytes of a signaling packet and parses the Mobility Header inside, as
 * `receiver` (the home agent receives BUs, the mobile node BAs):
 * - the SA must be the home address's own (RFC 4877 §4): at the home agent the HoA is the
 *   HAO's (else the source) and the home agent the destination; at the mobile node the HoA is
 *   the RH2's (else the destination) and the home agent the source;
 * - the MH checksum is verified over HAO-or-source → RH2-or-destination (RFC 6275 §6.1.1);
 * - a Next Header other than 135 is "unsupported" (field `innerNextHeader`; 59 is a dummy
 *   packet, RFC 4303 §2.6, to drop silently). MH failures keep the codec's kind, their field
 *   gets a `mh.` prefix and their offset counts inside the decrypted MH (it has no place on
 *   the wire); ESP failures count from the SPI.
 */
export async function unprotectMobility(
  sad: SecurityAssociationDatabase,
  esp: Uint8Array,
  at: EspAddressing & { receiver: "homeAgent" | "mobileNode" },
): Promise<EspParsed<ProtectedMobility>> {
  const homeAddress = at.receiver === "homeAgent" ? at.hao ?? at.src : at.rh2 ?? at.dst;
  const homeAgent = at.receiver === "homeAgent" ? at.dst : at.src;
  const r = await unprotect(sad, esp, { homeAddress, homeAgent });
  if (!r.ok) return r;
  const { sa, sequence, nextHeader, payload } = r.value;
  if (nextHeader !== IPPROTO.MH) {
    return { ok: false, kind: "unsupported", offset: 0, field: "innerNextHeader", sa };
  }
  const mh = parseMobility(payload, { src: at.hao ?? at.src, dst: at.rh2 ?? at.dst });
  if (!mh.ok) return { ok: false, kind: mh.kind, offset: mh.offset, field: `mh.${mh.field}`, sa };
  return { ok: true, value: { sa, sequence, mh: mh.value, homeAddress } };
}

/**
 * A whole IPv6 packet (e.g. from a packet socket): header, extension headers (HAO, RH2), then
 * ESP, handed to {@linkcode unprotectMobility}. A packet without ESP is "unsupported" (field
 * `nextHeader`); codec failures keep their kind, field and offset.
 */
export async function unprotectPacket(
  sad: SecurityAssociationDatabase,
  bytes: Uint8Array,
  receiver: "homeAgent" | "mobileNode",
): Promise<EspParsed<ProtectedMobility & { ipv6: Ipv6Repr }>> {
  const ip = parseIpv6(bytes);
  if (!ip.ok) return plain(ip);
  const walk = walkExtensionHeaders(ip.value.payload, ip.value.repr.nextHeader);
  if (!walk.ok) return { ...plain(walk), offset: walk.offset + IPV6_HEADER_LEN };
  const c = walk.value;
  if (c.upperProtocol !== IPPROTO.ESP) {
    return { ok: false, kind: "unsupported", offset: 6, field: "nextHeader" };
  }
  const at: EspAddressing & { receiver: "homeAgent" | "mobileNode" } = {
    src: ip.value.repr.src,
    dst: ip.value.repr.dst,
    receiver,
  };
  if (c.homeAddress !== undefined) at.hao = c.homeAddress;
  if (c.rh2 !== undefined && c.rh2.segmentsLeft > 0) at.rh2 = c.rh2.homeAddress;
  const r = await unprotectMobility(sad, ip.value.payload.subarray(c.upperOffset), at);
  if (!r.ok) {
    const espAt = IPV6_HEADER_LEN + c.upperOffset;
    // ESP-level offsets count from the SPI; "mh." ones are inside the decrypted payload.
    return r.field.startsWith("mh.") ? r : { ...r, offset: r.offset + espAt };
  }
  return { ok: true, value: { ...r.value, ipv6: ip.value.repr } };
}

function plain(e: { kind: EspError["kind"]; offset: number; field: string }): EspError {
  return { ok: false, kind: e.kind, offset: e.offset, field: e.field };
}
