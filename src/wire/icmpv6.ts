/**
 * ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861) messages.
 *
 * ICMPv6 message, RFC 4443 §2.1, and the bodies decoded here (offsets from the message start):
 *
 * ```text
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         Message Body                          |  4
 *
 * Dest Unreachable 1 / Time Exceeded 3 (§3.1, §3.3):  4 Unused (32)      8 invoking packet
 * Packet Too Big 2 (§3.2):                            4 MTU (32)         8 invoking packet
 * Parameter Problem 4 (§3.4):                         4 Pointer (32)     8 invoking packet
 * Echo Request 128 / Reply 129 (§4.1, §4.2):          4 Identifier (16)  6 Sequence (16)  8 data
 * Router Solicitation 133 (RFC 4861 §4.1):            4 Reserved (32)    8 options
 * Router Advertisement 134 (RFC 4861 §4.2):           4 Cur Hop Limit    5 |M|O|Reserved|
 *                                                     6 Router Lifetime (16)
 *                                                     8 Reachable Time (32)
 *                                                    12 Retrans Timer (32)   16 options
 * Neighbor Solicitation 135 (RFC 4861 §4.3):          4 Reserved (32)    8 Target (16 octets)
 *                                                    24 options
 * Neighbor Advertisement 136 (RFC 4861 §4.4):         4 |R|S|O| Reserved (29 bits)
 *                                                     8 Target (16 octets)  24 options
 * ```
 *
 * ND options, RFC 4861 §4.6: Type (8), Length (8, in 8-octet units including type and length;
 * 0 is invalid), data. Source/Target Link-layer Address 1/2 (`len 1`: MAC), Prefix Information 3
 * (`len 4`: prefix length, |L|A|Reserved1|, valid lifetime, preferred lifetime, Reserved2,
 * prefix), MTU 5 (`len 1`: Reserved (16), MTU (32)).
 *
 * @module
 */

import { formatIPv6, formatMac, IPPROTO, ipv6Bytes, parseMac } from "./addr.ts";
import { upperLayerChecksum } from "./checksum.ts";
import { IPV6_HEADER_LEN } from "./ipv6.ts";
import { fail, ok, type Parsed, type ParseError } from "./result.ts";

/** ICMPv6 message types decoded here (RFC 4443 §2.1, RFC 4861 §4). */
export const ICMPV6_TYPE = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAM_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
} as const;

/** ND option types decoded here (RFC 4861 §4.6). */
export const ND_OPT = {
  SOURCE_LINK_LAYER: 1,
  TARGET_LINK_LAYER: 2,
  PREFIX_INFO: 3,
  MTU: 5,
} as const;

/** Largest packet an ICMPv6 error may make (RFC 4443 §2.4 (c)): the IPv6 minimum MTU. */
export const ICMPV6_ERROR_MAX_PACKET = 1280;

/** An ND option (RFC 4861 §4.6). */
export type NdOption =
  | { type: "sourceLinkLayer"; mac: string }
  | { type: "targetLinkLayer"; mac: string }
  | {
    type: "prefixInfo";
    prefix: string;
    prefixLength: number;
    onLink: boolean;
    autonomous: boolean;
    validLifetime: number;
    preferredLifetime: number;
  }
  | { type: "mtu"; mtu: number }
  | { type: "unknown"; code: number; data: Uint8Array };

/** An ICMPv6 message (RFC 4443 §3–4, RFC 4861 §4). */
export type Icmpv6Repr =
  | { type: "echoRequest" | "echoReply"; identifier: number; sequence: number; data: Uint8Array }
  | { type: "packetTooBig"; mtu: number; invoking: Uint8Array }
  | { type: "paramProblem"; code: number; pointer: number; invoking: Uint8Array }
  | { type: "destUnreachable"; code: number; invoking: Uint8Array }
  | { type: "timeExceeded"; code: number; invoking: Uint8Array }
  | { type: "routerSolicitation"; options: NdOption[] }
  | {
    type: "routerAdvertisement";
    curHopLimit: number;
    managed: boolean;
    other: boolean;
    routerLifetime: number;
    reachableTime: number;
    retransTimer: number;
    options: NdOption[];
  }
  | { type: "neighborSolicitation"; target: string; options: NdOption[] }
  | {
    type: "neighborAdvertisement";
    router: boolean;
    solicited: boolean;
    override: boolean;
    target: string;
    options: NdOption[];
  }
  | { type: "unknown"; icmpType: number; code: number; body: Uint8Array };

const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const BODY = 4;
const ERR_INVOKING = 8;
const ECHO_ID = 4;
const ECHO_SEQ = 6;
const ECHO_DATA = 8;
const RS_OPTIONS = 8;
const RA_HOP_LIMIT = 4;
const RA_FLAGS = 5;
const RA_LIFETIME = 6;
const RA_REACHABLE = 8;
const RA_RETRANS = 12;
const RA_OPTIONS = 16;
const N_FLAGS = 4;
const N_TARGET = 8;
const N_OPTIONS = 24;
/** Longest `invoking` an error message carries: 1280 - 40 (IPv6) - 8 (ICMPv6 header). */
const MAX_INVOKING = ICMPV6_ERROR_MAX_PACKET - IPV6_HEADER_LEN - ERR_INVOKING;
/** Longest ICMPv6 message an IPv6 payload can hold. */
const MAX_MESSAGE = 0xffff;

/** Zero-copy view of an ICMPv6 message. Getters assume `checkLen()` passed. */
export class Icmpv6Message {
  readonly #dv: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Null when the fixed part for this type fits, else a truncation failure. */
  checkLen(): ParseError | null {
    if (this.bytes.length < BODY) return fail("truncated", 0, "header");
    if (this.bytes.length < minLen(this.type)) return fail("truncated", BODY, "body");
    return null;
  }

  /** Type. */
  get type(): number {
    return this.bytes[TYPE];
  }
  set type(v: number) {
    this.bytes[TYPE] = v;
  }

  /** Code. */
  get code(): number {
    return this.bytes[CODE];
  }
  set code(v: number) {
    this.bytes[CODE] = v;
  }

  /** Checksum. */
  get checksum(): number {
    return this.#dv.getUint16(CHECKSUM);
  }
  set checksum(v: number) {
    this.#dv.setUint16(CHECKSUM, v);
  }

  /** The 32-bit word after the checksum (MTU, Pointer, Unused, Reserved, NA flags). */
  get word(): number {
    return this.#dv.getUint32(BODY);
  }
  set word(v: number) {
    this.#dv.setUint32(BODY, v >>> 0);
  }

  /** Echo: Identifier. */
  get identifier(): number {
    return this.#dv.getUint16(ECHO_ID);
  }
  set identifier(v: number) {
    this.#dv.setUint16(ECHO_ID, v);
  }

  /** Echo: Sequence Number. */
  get sequence(): number {
    return this.#dv.getUint16(ECHO_SEQ);
  }
  set sequence(v: number) {
    this.#dv.setUint16(ECHO_SEQ, v);
  }

  /** NS/NA: Target Address (a 16-byte sub-view). */
  get target(): Uint8Array {
    return this.bytes.subarray(N_TARGET, N_TARGET + 16);
  }

  /** RA: Router Lifetime (seconds). */
  get routerLifetime(): number {
    return this.#dv.getUint16(RA_LIFETIME);
  }

  /** RA: Reachable Time (ms). */
  get reachableTime(): number {
    return this.#dv.getUint32(RA_REACHABLE);
  }

  /** RA: Retrans Timer (ms). */
  get retransTimer(): number {
    return this.#dv.getUint32(RA_RETRANS);
  }

  /** Offset of the ND options for RS/RA/NS/NA, -1 for other types. */
  get optionsOffset(): number {
    const t = this.type;
    if (t === ICMPV6_TYPE.ROUTER_SOLICITATION) return RS_OPTIONS;
    if (t === ICMPV6_TYPE.ROUTER_ADVERTISEMENT) return RA_OPTIONS;
    const ns = t === ICMPV6_TYPE.NEIGHBOR_SOLICITATION || t === ICMPV6_TYPE.NEIGHBOR_ADVERTISEMENT;
    return ns ? N_OPTIONS : -1;
  }

  /** Zero-copy iterator over the ND options (RS/RA/NS/NA only). */
  options(): NdOptionIterator {
    const start = this.optionsOffset;
    return new NdOptionIterator(this.bytes, start < 0 ? this.bytes.length : start);
  }
}

function minLen(type: number): number {
  switch (type) {
    case ICMPV6_TYPE.ROUTER_ADVERTISEMENT:
      return RA_OPTIONS;
    case ICMPV6_TYPE.NEIGHBOR_SOLICITATION:
    case ICMPV6_TYPE.NEIGHBOR_ADVERTISEMENT:
      return N_OPTIONS;
    case ICMPV6_TYPE.DEST_UNREACHABLE:
    case ICMPV6_TYPE.PACKET_TOO_BIG:
    case ICMPV6_TYPE.TIME_EXCEEDED:
    case ICMPV6_TYPE.PARAM_PROBLEM:
    case ICMPV6_TYPE.ECHO_REQUEST:
    case ICMPV6_TYPE.ECHO_REPLY:
    case ICMPV6_TYPE.ROUTER_SOLICITATION:
      return 8;
    default:
      return BODY;
  }
}

/** One ND option seen by {@linkcode NdOptionIterator}: type, offset, data after type+length. */
export interface RawNdOption {
  code: number;
  offset: number;
  data: Uint8Array;
}

/**
 * Zero-copy iterator over ND options from `start` to the end of `bytes` (RFC 4861 §4.6).
 * `next()` gives an option, null at the end, or "malformed" (field `optionLength`) for a zero
 * length or an option running past the end.
 */
export class NdOptionIterator {
  #off: number;

  constructor(readonly bytes: Uint8Array, start: number) {
    this.#off = start;
  }

  /** The next option, null when done, or a failure. */
  next(): RawNdOption | ParseError | null {
    const b = this.bytes;
    const at = this.#off;
    if (at >= b.length) return null;
    if (at + 2 > b.length) return fail("malformed", at, "optionLength");
    const len = b[at + 1] * 8;
    if (len === 0) return fail("malformed", at + 1, "optionLength");
    if (at + len > b.length) return fail("malformed", at + 1, "optionLength");
    this.#off = at + len;
    return { code: b[at], offset: at, data: b.subarray(at + 2, at + len) };
  }
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function parseNdOptions(bytes: Uint8Array, start: number): Parsed<NdOption[]> {
  const out: NdOption[] = [];
  const it = new NdOptionIterator(bytes, start);
  for (let o = it.next(); o !== null; o = it.next()) {
    if ("ok" in o) return o;
    const d = o.data;
    switch (o.code) {
      case ND_OPT.SOURCE_LINK_LAYER:
      case ND_OPT.TARGET_LINK_LAYER:
        if (d.length !== 6) {
          // Not an Ethernet address: keep it as it is.
          out.push({ type: "unknown", code: o.code, data: d.slice() });
        } else {
          out.push({
            type: o.code === ND_OPT.SOURCE_LINK_LAYER ? "sourceLinkLayer" : "targetLinkLayer",
            mac: formatMac(d),
          });
        }
        break;
      case ND_OPT.PREFIX_INFO:
        if (d.length !== 30) return fail("malformed", o.offset + 1, "optionLength");
        if (d[0] > 128) return fail("malformed", o.offset + 2, "prefixLength");
        out.push({
          type: "prefixInfo",
          prefixLength: d[0],
          onLink: (d[1] & 0x80) !== 0,
          autonomous: (d[1] & 0x40) !== 0,
          validLifetime: u32(d, 2),
          preferredLifetime: u32(d, 6),
          prefix: formatIPv6(d, 14),
        });
        break;
      case ND_OPT.MTU:
        if (d.length !== 6) return fail("malformed", o.offset + 1, "optionLength");
        out.push({ type: "mtu", mtu: u32(d, 2) });
        break;
      default:
        out.push({ type: "unknown", code: o.code, data: d.slice() });
    }
  }
  return ok(out);
}

/**
 * Parses an ICMPv6 message (RFC 4443 §2.1 and §3–4, RFC 4861 §4). `bytes` is the whole message
 * (the rest of the IPv6 payload). When `check` is given the checksum is verified over the
 * pseudo-header `check.src` → `check.dst` (RFC 4443 §2.3; with a HAO the home address is the
 * source, RFC 6275 §6.3). ND messages need code 0 and options of non-zero length
 * (RFC 4861 §4.6, §6.1, §7.1), else "malformed"; the hop limit 255 check belongs to the caller.
 * The code of an echo message is not kept. Unknown types parse as `{ type: "unknown" }`.
 */
export function parseIcmpv6(
  bytes: Uint8Array,
  check?: { src: string; dst: string },
): Parsed<Icmpv6Repr> {
  const m = new Icmpv6Message(bytes);
  const err = m.checkLen();
  if (err) return err;
  if (check && upperLayerChecksum(check.src, check.dst, IPPROTO.ICMPV6, bytes) !== 0) {
    return fail("checksum", CHECKSUM, "checksum");
  }
  const type = m.type;
  const code = m.code;
  switch (type) {
    case ICMPV6_TYPE.ECHO_REQUEST:
    case ICMPV6_TYPE.ECHO_REPLY:
      return ok({
        type: type === ICMPV6_TYPE.ECHO_REQUEST ? "echoRequest" : "echoReply",
        identifier: m.identifier,
        sequence: m.sequence,
        data: bytes.slice(ECHO_DATA),
      });
    case ICMPV6_TYPE.DEST_UNREACHABLE:
      return ok({ type: "destUnreachable", code, invoking: bytes.slice(ERR_INVOKING) });
    case ICMPV6_TYPE.PACKET_TOO_BIG:
      return ok({ type: "packetTooBig", mtu: m.word, invoking: bytes.slice(ERR_INVOKING) });
    case ICMPV6_TYPE.TIME_EXCEEDED:
      return ok({ type: "timeExceeded", code, invoking: bytes.slice(ERR_INVOKING) });
    case ICMPV6_TYPE.PARAM_PROBLEM:
      return ok({
        type: "paramProblem",
        code,
        pointer: m.word,
        invoking: bytes.slice(ERR_INVOKING),
      });
    case ICMPV6_TYPE.ROUTER_SOLICITATION:
    case ICMPV6_TYPE.ROUTER_ADVERTISEMENT:
    case ICMPV6_TYPE.NEIGHBOR_SOLICITATION:
    case ICMPV6_TYPE.NEIGHBOR_ADVERTISEMENT: {
      if (code !== 0) return fail("malformed", CODE, "code");
      const opts = parseNdOptions(bytes, m.optionsOffset);
      if (!opts.ok) return opts;
      const options = opts.value;
      if (type === ICMPV6_TYPE.ROUTER_SOLICITATION) {
        return ok({ type: "routerSolicitation", options });
      }
      if (type === ICMPV6_TYPE.ROUTER_ADVERTISEMENT) {
        return ok({
          type: "routerAdvertisement",
          curHopLimit: bytes[RA_HOP_LIMIT],
          managed: (bytes[RA_FLAGS] & 0x80) !== 0,
          other: (bytes[RA_FLAGS] & 0x40) !== 0,
          routerLifetime: m.routerLifetime,
          reachableTime: m.reachableTime,
          retransTimer: m.retransTimer,
          options,
        });
      }
      const target = formatIPv6(bytes, N_TARGET);
      if (type === ICMPV6_TYPE.NEIGHBOR_SOLICITATION) {
        return ok({ type: "neighborSolicitation", target, options });
      }
      const f = bytes[N_FLAGS];
      return ok({
        type: "neighborAdvertisement",
        router: (f & 0x80) !== 0,
        solicited: (f & 0x40) !== 0,
        override: (f & 0x20) !== 0,
        target,
        options,
      });
    }
    default:
      return ok({ type: "unknown", icmpType: type, code, body: bytes.slice(BODY) });
  }
}

function ndOptionLen(o: NdOption): number {
  switch (o.type) {
    case "sourceLinkLayer":
    case "targetLinkLayer":
    case "mtu":
      return 8;
    case "prefixInfo":
      return 32;
    default:
      return 2 + o.data.length;
  }
}

function optionsLen(options: NdOption[]): number {
  let n = 0;
  for (const o of options) n += ndOptionLen(o);
  return n;
}

/**
 * Length in octets of the message `repr`. Error messages count `invoking` truncated so the IPv6
 * packet stays within 1280 octets (RFC 4443 §2.4 (c)).
 */
export function icmpv6Len(repr: Icmpv6Repr): number {
  switch (repr.type) {
    case "echoRequest":
    case "echoReply":
      return ECHO_DATA + repr.data.length;
    case "packetTooBig":
    case "paramProblem":
    case "destUnreachable":
    case "timeExceeded":
      return ERR_INVOKING + Math.min(repr.invoking.length, MAX_INVOKING);
    case "routerSolicitation":
      return RS_OPTIONS + optionsLen(repr.options);
    case "routerAdvertisement":
      return RA_OPTIONS + optionsLen(repr.options);
    case "neighborSolicitation":
    case "neighborAdvertisement":
      return N_OPTIONS + optionsLen(repr.options);
    default:
      return BODY + repr.body.length;
  }
}

function checkInt(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${name} out of range 0..${max}: ${v}`);
  }
}

function validateNdOption(o: NdOption): void {
  switch (o.type) {
    case "sourceLinkLayer":
    case "targetLinkLayer":
      parseMac(o.mac);
      return;
    case "prefixInfo":
      ipv6Bytes(o.prefix);
      checkInt("prefixInfo.prefixLength", o.prefixLength, 128);
      checkInt("prefixInfo.validLifetime", o.validLifetime, 0xffffffff);
      checkInt("prefixInfo.preferredLifetime", o.preferredLifetime, 0xffffffff);
      return;
    case "mtu":
      checkInt("mtu.mtu", o.mtu, 0xffffffff);
      return;
    default: {
      checkInt("option code", o.code, 0xff);
      const len = 2 + o.data.length;
      if (len % 8 !== 0 || len > 255 * 8) {
        throw new RangeError(`ND option data must make a multiple of 8 octets: ${len}`);
      }
    }
  }
}

function writeNdOptions(buf: Uint8Array, start: number, options: NdOption[]): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = start;
  for (const o of options) {
    const len = ndOptionLen(o);
    switch (o.type) {
      case "sourceLinkLayer":
      case "targetLinkLayer":
        buf[at] = o.type === "sourceLinkLayer"
          ? ND_OPT.SOURCE_LINK_LAYER
          : ND_OPT.TARGET_LINK_LAYER;
        buf.set(parseMac(o.mac), at + 2);
        break;
      case "prefixInfo":
        buf[at] = ND_OPT.PREFIX_INFO;
        buf[at + 2] = o.prefixLength;
        buf[at + 3] = (o.onLink ? 0x80 : 0) | (o.autonomous ? 0x40 : 0);
        dv.setUint32(at + 4, o.validLifetime);
        dv.setUint32(at + 8, o.preferredLifetime);
        dv.setUint32(at + 12, 0);
        buf.set(ipv6Bytes(o.prefix), at + 16);
        break;
      case "mtu":
        buf[at] = ND_OPT.MTU;
        buf[at + 2] = 0;
        buf[at + 3] = 0;
        dv.setUint32(at + 4, o.mtu);
        break;
      default:
        buf[at] = o.code;
        buf.set(o.data, at + 2);
    }
    buf[at + 1] = len / 8;
    at += len;
  }
}

/**
 * Writes the message `repr` at the start of `buf` — every octet, reserved fields included — with
 * its checksum over the pseudo-header `sum.src` → `sum.dst` (RFC 4443 §2.3) and returns the
 * length. Error messages carry `invoking` truncated to keep the packet within 1280 octets
 * (RFC 4443 §2.4 (c)).
 * @throws {RangeError} on a too-small buffer or out-of-range fields.
 * @throws {TypeError} on bad address or MAC text.
 */
export function emitIcmpv6(
  repr: Icmpv6Repr,
  buf: Uint8Array,
  sum: { src: string; dst: string },
): number {
  const len = icmpv6Len(repr);
  if (len > MAX_MESSAGE) throw new RangeError(`ICMPv6 message too long: ${len}`);
  if (buf.length < len) throw new RangeError(`emitIcmpv6: buffer of ${buf.length}, need ${len}`);
  let type: number;
  let code = 0;
  switch (repr.type) {
    case "echoRequest":
    case "echoReply":
      type = repr.type === "echoRequest" ? ICMPV6_TYPE.ECHO_REQUEST : ICMPV6_TYPE.ECHO_REPLY;
      checkInt("identifier", repr.identifier, 0xffff);
      checkInt("sequence", repr.sequence, 0xffff);
      break;
    case "packetTooBig":
      type = ICMPV6_TYPE.PACKET_TOO_BIG;
      checkInt("mtu", repr.mtu, 0xffffffff);
      break;
    case "paramProblem":
      type = ICMPV6_TYPE.PARAM_PROBLEM;
      code = repr.code;
      checkInt("pointer", repr.pointer, 0xffffffff);
      break;
    case "destUnreachable":
      type = ICMPV6_TYPE.DEST_UNREACHABLE;
      code = repr.code;
      break;
    case "timeExceeded":
      type = ICMPV6_TYPE.TIME_EXCEEDED;
      code = repr.code;
      break;
    case "routerSolicitation":
      type = ICMPV6_TYPE.ROUTER_SOLICITATION;
      break;
    case "routerAdvertisement":
      type = ICMPV6_TYPE.ROUTER_ADVERTISEMENT;
      checkInt("curHopLimit", repr.curHopLimit, 0xff);
      checkInt("routerLifetime", repr.routerLifetime, 0xffff);
      checkInt("reachableTime", repr.reachableTime, 0xffffffff);
      checkInt("retransTimer", repr.retransTimer, 0xffffffff);
      break;
    case "neighborSolicitation":
      type = ICMPV6_TYPE.NEIGHBOR_SOLICITATION;
      break;
    case "neighborAdvertisement":
      type = ICMPV6_TYPE.NEIGHBOR_ADVERTISEMENT;
      break;
    default:
      type = repr.icmpType;
      code = repr.code;
      checkInt("icmpType", type, 0xff);
  }
  checkInt("code", code, 0xff);
  let target: Uint8Array | undefined;
  if ("options" in repr) repr.options.forEach(validateNdOption);
  if ("target" in repr) target = ipv6Bytes(repr.target);
  const src = ipv6Bytes(sum.src);
  const dst = ipv6Bytes(sum.dst);
  const out = buf.subarray(0, len);
  const m = new Icmpv6Message(out);
  m.type = type;
  m.code = code;
  m.checksum = 0;
  switch (repr.type) {
    case "echoRequest":
    case "echoReply":
      m.identifier = repr.identifier;
      m.sequence = repr.sequence;
      out.set(repr.data, ECHO_DATA);
      break;
    case "packetTooBig":
    case "paramProblem":
    case "destUnreachable":
    case "timeExceeded":
      m.word = repr.type === "packetTooBig"
        ? repr.mtu
        : repr.type === "paramProblem"
        ? repr.pointer
        : 0;
      out.set(repr.invoking.subarray(0, len - ERR_INVOKING), ERR_INVOKING);
      break;
    case "routerSolicitation":
      m.word = 0;
      writeNdOptions(out, RS_OPTIONS, repr.options);
      break;
    case "routerAdvertisement": {
      const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
      out[RA_HOP_LIMIT] = repr.curHopLimit;
      out[RA_FLAGS] = (repr.managed ? 0x80 : 0) | (repr.other ? 0x40 : 0);
      dv.setUint16(RA_LIFETIME, repr.routerLifetime);
      dv.setUint32(RA_REACHABLE, repr.reachableTime);
      dv.setUint32(RA_RETRANS, repr.retransTimer);
      writeNdOptions(out, RA_OPTIONS, repr.options);
      break;
    }
    case "neighborSolicitation":
      m.word = 0;
      out.set(target!, N_TARGET);
      writeNdOptions(out, N_OPTIONS, repr.options);
      break;
    case "neighborAdvertisement":
      m.word = 0;
      out[N_FLAGS] = (repr.router ? 0x80 : 0) | (repr.solicited ? 0x40 : 0) |
        (repr.override ? 0x20 : 0);
      out.set(target!, N_TARGET);
      writeNdOptions(out, N_OPTIONS, repr.options);
      break;
    default:
      out.set(repr.body, BODY);
  }
  m.checksum = upperLayerChecksum(src, dst, IPPROTO.ICMPV6, out);
  return len;
}
