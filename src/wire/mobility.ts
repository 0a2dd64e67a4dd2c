/**
 * Mobility Header messages and options (RFC 6275 §6.1–6.2).
 *
 * Mobility Header, RFC 6275 §6.1.1:
 *
 * ```text
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Payload Proto |  Header Len   |   MH Type     |   Reserved    |  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           Checksum            |                               |  4
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
 * .                        Message Data                           .
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  Payload Proto 59; Header Len in 8-octet units, not counting the first 8.
 * ```
 *
 * Message data by type (offsets from the start of the MH):
 *
 * ```text
 * Binding Refresh Request (§6.1.2)    Binding Update (§6.1.7)
 *  6 | Reserved (16)               |   6 | Sequence # (16)             |
 *  8 | Mobility options ...        |   8 |A|H|L|K|M|R|P|F| Reserved   |
 *                                     10 | Lifetime (16, 4 s units)    |
 *                                     12 | Mobility options ...        |
 * Binding Acknowledgement (§6.1.8)    Binding Error (§6.1.9)
 *  6 | Status (8)  |K|R|P|Reserved|    6 | Status (8)  | Reserved (8)  |
 *  8 | Sequence # (16)             |   8 | Home Address (16 octets)    |
 * 10 | Lifetime (16, 4 s units)    |  24 | Mobility options ...        |
 * 12 | Mobility options ...        |
 * ```
 *
 * Mobility options (§6.2): Pad1 (a single 0 octet); otherwise Type, Length (of the data), data:
 * PadN 1, Binding Refresh Advice 2 (interval, 2n), Alternate Care-of Address 3 (8n+6),
 * Nonce Indices 4 (home, care-of; 2n), Binding Authorization Data 5 (8n+2).
 *
 * @module
 */

import { formatIPv6, IPPROTO, ipv6Bytes } from "./addr.ts";
import { upperLayerChecksum } from "./checksum.ts";
import type { Icmpv6Repr } from "./icmpv6.ts";
import { layoutOptions, type OptionSlot, TlvIterator, writeLayoutPadding } from "./options.ts";
import { fail, ok, type Parsed, type ParseError } from "./result.ts";

/** Mobility Header types (RFC 6275 §6.1.2–6.1.9). */
export const MH_TYPE = {
  BRR: 0,
  HOTI: 1,
  COTI: 2,
  HOT: 3,
  COT: 4,
  BU: 5,
  BA: 6,
  BE: 7,
} as const;

/** Binding Acknowledgement status values (RFC 6275 §6.1.8, RFC 5213 for 139). */
export const BA_STATUS = {
  ACCEPTED: 0,
  ACCEPTED_PREFIX_DISCOVERY: 1,
  UNSPECIFIED: 128,
  ADMIN_PROHIBITED: 129,
  INSUFFICIENT_RESOURCES: 130,
  HOME_REG_NOT_SUPPORTED: 131,
  NOT_HOME_SUBNET: 132,
  NOT_HOME_AGENT: 133,
  DAD_FAILED: 134,
  SEQ_OUT_OF_WINDOW: 135,
  EXPIRED_HOME_NONCE_INDEX: 136,
  EXPIRED_CARE_OF_NONCE_INDEX: 137,
  EXPIRED_NONCES: 138,
  REG_TYPE_CHANGE: 139,
  /** RFC 3963 §6.1.1 (NEMO). */
  MOBILE_ROUTER_NOT_PERMITTED: 140,
  /** RFC 5213 §8.9 (Proxy Mobile IPv6). */
  PROXY_REG_NOT_ENABLED: 152,
  /** RFC 6275 §6.1.8. */
  INVALID_CARE_OF_ADDRESS: 174,
} as const;

/** Binding Error status values (RFC 6275 §6.1.9). */
export const BE_STATUS = { UNKNOWN_HAO: 1, UNKNOWN_MH_TYPE: 2 } as const;

/** Mobility option types (RFC 6275 §6.2). */
export const MH_OPT = {
  PAD1: 0,
  PADN: 1,
  BRA: 2,
  ALT_COA: 3,
  NONCE: 4,
  AUTH: 5,
} as const;

/** A mobility option (RFC 6275 §6.2). Pad1/PadN are consumed by the parser, made by the emitter. */
export type MobilityOption =
  /** Binding Refresh Advice (§6.2.4): refresh interval in 4-second units. */
  | { type: "bra"; interval: number }
  /** Alternate Care-of Address (§6.2.5). */
  | { type: "altCoa"; address: string }
  /** Nonce Indices (§6.2.6). */
  | { type: "nonce"; homeNonceIndex: number; careOfNonceIndex: number }
  /** Binding Authorization Data (§6.2.7): the authenticator. */
  | { type: "auth"; data: Uint8Array }
  /** Any other option, kept as is. */
  | { type: "unknown"; code: number; data: Uint8Array };

/** Binding Update flags, A H L K M R P F from the high bit (RFC 6275 §6.1.7, RFC 3963, RFC 5213, RFC 5555). */
export interface BuFlags {
  ack: boolean;
  home: boolean;
  linkLocal: boolean;
  key: boolean;
  mapReg: boolean;
  mobileRouter: boolean;
  proxy: boolean;
  forceUdp: boolean;
}

/**
 * The flags of a home registration Binding Update from a guest-transparent mobile node: A and H
 * set (RFC 6275 §11.7.1), L clear (the guest's link-local address stays on the pseudo home
 * network), K clear (no return routability keys, RFC 6275 §11.7.1), M, R, P, F clear.
 */
export const HOME_REGISTRATION_FLAGS: Readonly<BuFlags> = Object.freeze({
  ack: true,
  home: true,
  linkLocal: false,
  key: false,
  mapReg: false,
  mobileRouter: false,
  proxy: false,
  forceUdp: false,
});

/** Binding Acknowledgement flags K R P from the high bit (RFC 6275 §6.1.8, RFC 3963, RFC 5213). */
export interface BaFlags {
  key: boolean;
  mobileRouter: boolean;
  proxy: boolean;
}

/** Binding Refresh Request (RFC 6275 §6.1.2). */
export type BrrRepr = { type: "brr"; options: MobilityOption[] };
/** Binding Update (RFC 6275 §6.1.7); lifetime in 4-second units. */
export type BuRepr = {
  type: "bu";
  sequence: number;
  flags: BuFlags;
  lifetime: number;
  options: MobilityOption[];
};
/** Binding Acknowledgement (RFC 6275 §6.1.8); lifetime in 4-second units. */
export type BaRepr = {
  type: "ba";
  status: number;
  flags: BaFlags;
  sequence: number;
  lifetime: number;
  options: MobilityOption[];
};
/** Binding Error (RFC 6275 §6.1.9). */
export type BeRepr = { type: "be"; status: number; homeAddress: string };
/** Any other MH type: `data` is everything after the checksum field (message data + options). */
export type UnknownMhRepr = { type: "unknown"; mhType: number; data: Uint8Array };

/** A Mobility Header message (RFC 6275 §6.1). */
export type MobilityRepr = BrrRepr | BuRepr | BaRepr | BeRepr | UnknownMhRepr;

/** Human-readable text of a BA status (RFC 6275 §6.1.8), `"status N"` when unknown. */
export function baStatusText(n: number): string {
  switch (n) {
    case 0:
      return "Binding Update accepted";
    case 1:
      return "Accepted but prefix discovery necessary";
    case 128:
      return "Reason unspecified";
    case 129:
      return "Administratively prohibited";
    case 130:
      return "Insufficient resources";
    case 131:
      return "Home registration not supported";
    case 132:
      return "Not home subnet";
    case 133:
      return "Not home agent for this mobile node";
    case 134:
      return "Duplicate Address Detection failed";
    case 135:
      return "Sequence number out of window";
    case 136:
      return "Expired home nonce index";
    case 137:
      return "Expired care-of nonce index";
    case 138:
      return "Expired nonces";
    case 139:
      return "Registration type change disallowed";
    case 140:
      return "Mobile router operation not permitted";
    case 152:
      return "Proxy registration not enabled";
    case 174:
      return "Invalid care-of address";
    default:
      return `status ${n}`;
  }
}

const PAYLOAD_PROTO = 0;
const HEADER_LEN = 1;
const MH_TYPE_OFF = 2;
const RESERVED = 3;
const CHECKSUM = 4;
const DATA = 6;
// Binding Update
const BU_SEQUENCE = 6;
const BU_FLAGS = 8;
const BU_LIFETIME = 10;
const BU_OPTIONS = 12;
// Binding Acknowledgement
const BA_STATUS_OFF = 6;
const BA_FLAGS = 7;
const BA_SEQUENCE = 8;
const BA_LIFETIME = 10;
const BA_OPTIONS = 12;
// Binding Error
const BE_STATUS_OFF = 6;
const BE_HOME_ADDRESS = 8;
const BE_OPTIONS = 24;
// Binding Refresh Request
const BRR_OPTIONS = 8;

/** Maximum MH length: (255 + 1) · 8 octets. */
const MAX_MH_LEN = 2048;

/** Minimum message length per MH type (RFC 6275 §6.1.2–6.1.9), for the §9.2 Header Len check. */
const MIN_LEN: Record<number, number> = { 0: 8, 1: 16, 2: 16, 3: 24, 4: 24, 5: 12, 6: 12, 7: 24 };

/** Zero-copy view of a Mobility Header. Getters assume `checkLen()` passed. */
export class MobilityHeader {
  readonly #dv: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Null when the header (per Header Len) fits, else a truncation failure. */
  checkLen(): ParseError | null {
    if (this.bytes.length < 8) return fail("truncated", 0, "header");
    if (this.bytes.length < this.length) return fail("truncated", HEADER_LEN, "headerLen");
    return null;
  }

  /** Payload Proto (59). */
  get payloadProto(): number {
    return this.bytes[PAYLOAD_PROTO];
  }
  set payloadProto(v: number) {
    this.bytes[PAYLOAD_PROTO] = v;
  }

  /** Header Len (8-octet units after the first 8). */
  get headerLen(): number {
    return this.bytes[HEADER_LEN];
  }
  set headerLen(v: number) {
    this.bytes[HEADER_LEN] = v;
  }

  /** Message length in octets. */
  get length(): number {
    return (this.bytes[HEADER_LEN] + 1) * 8;
  }

  /** MH Type. */
  get mhType(): number {
    return this.bytes[MH_TYPE_OFF];
  }
  set mhType(v: number) {
    this.bytes[MH_TYPE_OFF] = v;
  }

  /** Checksum. */
  get checksum(): number {
    return this.#dv.getUint16(CHECKSUM);
  }
  set checksum(v: number) {
    this.#dv.setUint16(CHECKSUM, v);
  }

  /** BU and BA: Sequence #. */
  get sequence(): number {
    return this.#dv.getUint16(this.mhType === MH_TYPE.BA ? BA_SEQUENCE : BU_SEQUENCE);
  }
  set sequence(v: number) {
    this.#dv.setUint16(this.mhType === MH_TYPE.BA ? BA_SEQUENCE : BU_SEQUENCE, v);
  }

  /** BU and BA: Lifetime in 4-second units. */
  get lifetime(): number {
    return this.#dv.getUint16(this.mhType === MH_TYPE.BA ? BA_LIFETIME : BU_LIFETIME);
  }
  set lifetime(v: number) {
    this.#dv.setUint16(this.mhType === MH_TYPE.BA ? BA_LIFETIME : BU_LIFETIME, v);
  }

  /** BU: the flags octet (A H L K M R P F). */
  get buFlags(): number {
    return this.bytes[BU_FLAGS];
  }
  set buFlags(v: number) {
    this.bytes[BU_FLAGS] = v;
  }

  /** BA and BE: Status. */
  get status(): number {
    return this.bytes[BA_STATUS_OFF];
  }
  set status(v: number) {
    this.bytes[BA_STATUS_OFF] = v;
  }

  /** BA: the flags octet (K R P, then reserved). */
  get baFlags(): number {
    return this.bytes[BA_FLAGS];
  }
  set baFlags(v: number) {
    this.bytes[BA_FLAGS] = v;
  }

  /** BE: Home Address (a 16-byte sub-view). */
  get homeAddress(): Uint8Array {
    return this.bytes.subarray(BE_HOME_ADDRESS, BE_HOME_ADDRESS + 16);
  }

  /** Offset of the mobility options for this MH type (`DATA` when the type is not decoded). */
  get optionsOffset(): number {
    switch (this.mhType) {
      case MH_TYPE.BRR:
        return BRR_OPTIONS;
      case MH_TYPE.BU:
        return BU_OPTIONS;
      case MH_TYPE.BA:
        return BA_OPTIONS;
      case MH_TYPE.BE:
        return BE_OPTIONS;
      default:
        return DATA;
    }
  }

  /** Zero-copy iterator over the mobility options (Pad1/PadN skipped). */
  options(): TlvIterator {
    return new TlvIterator(this.bytes, this.optionsOffset, this.length);
  }
}

const BU_FLAG_BITS: [keyof BuFlags, number][] = [
  ["ack", 0x80],
  ["home", 0x40],
  ["linkLocal", 0x20],
  ["key", 0x10],
  ["mapReg", 0x08],
  ["mobileRouter", 0x04],
  ["proxy", 0x02],
  ["forceUdp", 0x01],
];
const BA_FLAG_BITS: [keyof BaFlags, number][] = [
  ["key", 0x80],
  ["mobileRouter", 0x40],
  ["proxy", 0x20],
];

function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function paramProblem(pointer: number, invoking: Uint8Array): Icmpv6Repr {
  return { type: "paramProblem", code: 0, pointer, invoking };
}

function parseOptions(h: MobilityHeader): Parsed<MobilityOption[]> {
  const out: MobilityOption[] = [];
  const it = h.options();
  for (let o = it.next(); o !== null; o = it.next()) {
    if ("ok" in o) return o;
    const d = o.data;
    const badLen = fail("malformed", o.offset + 1, "optionLength");
    switch (o.code) {
      case MH_OPT.BRA:
        if (d.length !== 2) return badLen;
        out.push({ type: "bra", interval: u16(d, 0) });
        break;
      case MH_OPT.ALT_COA:
        if (d.length !== 16) return badLen;
        out.push({ type: "altCoa", address: formatIPv6(d) });
        break;
      case MH_OPT.NONCE:
        if (d.length !== 4) return badLen;
        out.push({ type: "nonce", homeNonceIndex: u16(d, 0), careOfNonceIndex: u16(d, 2) });
        break;
      case MH_OPT.AUTH:
        out.push({ type: "auth", data: d.slice() });
        break;
      default:
        out.push({ type: "unknown", code: o.code, data: d.slice() });
    }
  }
  return ok(out);
}

/**
 * Parses a Mobility Header message (RFC 6275 §6.1, processing rules §9.2). `bytes` must be
 * exactly the message (Header Len says how long: shorter is "truncated", longer "malformed").
 * When `check` is given the checksum is verified over the pseudo-header with `check.src` and
 * `check.dst` (RFC 6275 §6.1.1: pass the home address as src when a HAO was present, and the
 * final destination, the home address, as dst when a type 2 routing header still had a segment
 * left). Payload Proto other than 59, or a Header Len too short for the MH Type, is "malformed"
 * with the Parameter Problem code 0 reply §9.2 asks for. Unknown MH types parse as
 * `{ type: "unknown" }` (the receiver answers them with a Binding Error, status 2).
 */
export function parseMobility(
  bytes: Uint8Array,
  check?: { src: string; dst: string },
): Parsed<MobilityRepr> {
  const h = new MobilityHeader(bytes);
  const err = h.checkLen();
  if (err) return err;
  const len = h.length;
  if (bytes.length > len) return fail("malformed", HEADER_LEN, "headerLen");
  if (check && upperLayerChecksum(check.src, check.dst, IPPROTO.MH, bytes) !== 0) {
    return fail("checksum", CHECKSUM, "checksum");
  }
  if (h.payloadProto !== IPPROTO.NONE) {
    return fail("malformed", PAYLOAD_PROTO, "payloadProto", paramProblem(PAYLOAD_PROTO, bytes));
  }
  const type = h.mhType;
  const min = MIN_LEN[type];
  if (min !== undefined && len < min) {
    return fail("malformed", HEADER_LEN, "headerLen", paramProblem(HEADER_LEN, bytes));
  }
  if (type !== MH_TYPE.BRR && type !== MH_TYPE.BU && type !== MH_TYPE.BA && type !== MH_TYPE.BE) {
    return ok({ type: "unknown", mhType: type, data: bytes.slice(DATA, len) });
  }
  const opts = parseOptions(h);
  if (!opts.ok) return opts;
  const options = opts.value;
  switch (type) {
    case MH_TYPE.BRR:
      return ok({ type: "brr", options });
    case MH_TYPE.BU: {
      const f = h.buFlags;
      const flags = {} as BuFlags;
      for (const [k, bit] of BU_FLAG_BITS) flags[k] = (f & bit) !== 0;
      return ok({ type: "bu", sequence: h.sequence, flags, lifetime: h.lifetime, options });
    }
    case MH_TYPE.BA: {
      const f = h.baFlags;
      const flags = {} as BaFlags;
      for (const [k, bit] of BA_FLAG_BITS) flags[k] = (f & bit) !== 0;
      return ok({
        type: "ba",
        status: h.status,
        flags,
        sequence: h.sequence,
        lifetime: h.lifetime,
        options,
      });
    }
    default:
      return ok({ type: "be", status: h.status, homeAddress: formatIPv6(bytes, BE_HOME_ADDRESS) });
  }
}

function optionSlot(o: MobilityOption): OptionSlot {
  switch (o.type) {
    case "bra":
      return { size: 4, n: 2, k: 0 };
    case "altCoa":
      return { size: 18, n: 8, k: 6 };
    case "nonce":
      return { size: 6, n: 2, k: 0 };
    case "auth":
      return { size: 2 + o.data.length, n: 8, k: 2 };
    default:
      return { size: 2 + o.data.length, n: 1, k: 0 };
  }
}

function optionsStart(repr: MobilityRepr): number {
  switch (repr.type) {
    case "brr":
      return BRR_OPTIONS;
    case "bu":
      return BU_OPTIONS;
    case "ba":
      return BA_OPTIONS;
    case "be":
      return BE_OPTIONS;
    default:
      return DATA;
  }
}

/** Length in octets of the message `repr` (a multiple of 8, options and padding included). */
export function mobilityLen(repr: MobilityRepr): number {
  if (repr.type === "unknown") return DATA + repr.data.length;
  if (repr.type === "be") return BE_OPTIONS;
  return layoutOptions(optionsStart(repr), repr.options.map(optionSlot)).end;
}

function check16(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new RangeError(`${name} out of range 0..65535: ${v}`);
  }
}

function check8(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) {
    throw new RangeError(`${name} out of range 0..255: ${v}`);
  }
}

function writeOption(buf: Uint8Array, at: number, o: MobilityOption): void {
  const put16 = (off: number, v: number) => {
    buf[off] = v >> 8;
    buf[off + 1] = v;
  };
  switch (o.type) {
    case "bra":
      buf[at] = MH_OPT.BRA;
      buf[at + 1] = 2;
      put16(at + 2, o.interval);
      break;
    case "altCoa":
      buf[at] = MH_OPT.ALT_COA;
      buf[at + 1] = 16;
      buf.set(ipv6Bytes(o.address), at + 2);
      break;
    case "nonce":
      buf[at] = MH_OPT.NONCE;
      buf[at + 1] = 4;
      put16(at + 2, o.homeNonceIndex);
      put16(at + 4, o.careOfNonceIndex);
      break;
    case "auth":
      buf[at] = MH_OPT.AUTH;
      buf[at + 1] = o.data.length;
      buf.set(o.data, at + 2);
      break;
    default:
      buf[at] = o.code;
      buf[at + 1] = o.data.length;
      buf.set(o.data, at + 2);
  }
}

function validateOption(o: MobilityOption): void {
  switch (o.type) {
    case "bra":
      return check16("bra.interval", o.interval);
    case "altCoa":
      ipv6Bytes(o.address);
      return;
    case "nonce":
      check16("nonce.homeNonceIndex", o.homeNonceIndex);
      return check16("nonce.careOfNonceIndex", o.careOfNonceIndex);
    case "auth":
      if (o.data.length > 0xff) throw new RangeError(`auth data too long: ${o.data.length}`);
      return;
    default:
      check8("option code", o.code);
      if (o.code === MH_OPT.PAD1 || o.code === MH_OPT.PADN) {
        throw new RangeError("padding options are made by the codec");
      }
      if (o.data.length > 0xff) throw new RangeError(`option data too long: ${o.data.length}`);
  }
}

/**
 * Writes the message `repr` at the start of `buf` — every octet, reserved fields and padding
 * included — with the checksum over the pseudo-header of `sum.src` → `sum.dst`
 * (RFC 6275 §6.1.1: the home address as src when the packet carries a HAO, the home address as
 * dst when it carries a type 2 routing header). Returns the length.
 * @throws {RangeError} on a too-small buffer or out-of-range fields (an unknown type's data must
 * make the message a multiple of 8 octets, at least 8).
 * @throws {TypeError} on bad address text.
 */
export function emitMobility(
  repr: MobilityRepr,
  buf: Uint8Array,
  sum: { src: string; dst: string },
): number {
  const len = mobilityLen(repr);
  if (len > MAX_MH_LEN) throw new RangeError(`Mobility Header too long: ${len}`);
  if (buf.length < len) throw new RangeError(`emitMobility: buffer of ${buf.length}, need ${len}`);
  let mhType: number;
  switch (repr.type) {
    case "brr":
      mhType = MH_TYPE.BRR;
      break;
    case "bu":
      mhType = MH_TYPE.BU;
      check16("bu.sequence", repr.sequence);
      check16("bu.lifetime", repr.lifetime);
      break;
    case "ba":
      mhType = MH_TYPE.BA;
      check8("ba.status", repr.status);
      check16("ba.sequence", repr.sequence);
      check16("ba.lifetime", repr.lifetime);
      break;
    case "be":
      mhType = MH_TYPE.BE;
      check8("be.status", repr.status);
      ipv6Bytes(repr.homeAddress);
      break;
    default:
      mhType = repr.mhType;
      check8("mhType", mhType);
      if (len < 8 || len % 8 !== 0) {
        throw new RangeError(`unknown MH data must make a multiple of 8 octets, got ${len}`);
      }
  }
  if (repr.type !== "be" && repr.type !== "unknown") repr.options.forEach(validateOption);
  const src = ipv6Bytes(sum.src);
  const dst = ipv6Bytes(sum.dst);
  const out = buf.subarray(0, len);
  const h = new MobilityHeader(out);
  h.payloadProto = IPPROTO.NONE;
  h.headerLen = len / 8 - 1;
  h.mhType = mhType;
  out[RESERVED] = 0;
  h.checksum = 0;
  switch (repr.type) {
    case "brr":
      out[6] = 0;
      out[7] = 0;
      break;
    case "bu": {
      h.sequence = repr.sequence;
      let f = 0;
      for (const [k, bit] of BU_FLAG_BITS) if (repr.flags[k]) f |= bit;
      h.buFlags = f;
      out[BU_FLAGS + 1] = 0;
      h.lifetime = repr.lifetime;
      break;
    }
    case "ba": {
      h.status = repr.status;
      let f = 0;
      for (const [k, bit] of BA_FLAG_BITS) if (repr.flags[k]) f |= bit;
      h.baFlags = f;
      h.sequence = repr.sequence;
      h.lifetime = repr.lifetime;
      break;
    }
    case "be":
      h.status = repr.status;
      out[BE_STATUS_OFF + 1] = 0;
      out.set(ipv6Bytes(repr.homeAddress), BE_HOME_ADDRESS);
      break;
    default:
      out.set(repr.data, DATA);
  }
  if (repr.type !== "be" && repr.type !== "unknown") {
    const start = optionsStart(repr);
    const slots = repr.options.map(optionSlot);
    const layout = layoutOptions(start, slots);
    repr.options.forEach((o, i) => writeOption(out, layout.at[i], o));
    writeLayoutPadding(out, start, layout, slots.map((s) => s.size));
  }
  h.checksum = upperLayerChecksum(src, dst, IPPROTO.MH, out);
  return len;
}
