/**
 * Mobility Header messages and options (RFC 6275 §6.1–6.2).
 *
 * @module
 */

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
