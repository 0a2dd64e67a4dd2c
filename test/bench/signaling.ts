/**
 * Pure parts of the home-agent signaling load generator (`bu_load.ts`): the home addresses it
 * plays, its Binding Updates, and a cheap peek at the Binding Acknowledgements a raw
 * IPPROTO_ROUTING socket hands over (RFC 6275 §6.1.8 behind a type 2 routing header, §6.4).
 *
 * @module
 */
import { formatIPv6, IPPROTO, parseIPv6 } from "../../src/wire/addr.ts";
import { HOME_REGISTRATION_FLAGS, MH_TYPE } from "../../src/wire/mobility.ts";
import { buildBindingUpdate } from "../../src/wire/packet.ts";

/** Home address number `i` (0 … 65535): `base` with its last 16 bits replaced by `i`. */
export function hoaBytes(base: Uint8Array, i: number): Uint8Array {
  if (!Number.isInteger(i) || i < 0 || i > 0xffff) throw new RangeError(`HoA index ${i}`);
  const b = base.slice();
  b[14] = i >> 8;
  b[15] = i & 0xff;
  return b;
}

/** Home address number `i` as text. */
export function hoaText(base: string, i: number): string {
  return formatIPv6(hoaBytes(parseIPv6(base), i));
}

/**
 * A home-registration Binding Update from `careOf` for `homeAddress` (RFC 6275 §11.7.1: A and
 * H set, HAO, Alternate Care-of Address option), lifetime in seconds (rounded up to 4 s units).
 */
export function bindingUpdate(p: {
  careOf: string;
  homeAgent: string;
  homeAddress: string;
  sequence: number;
  lifetimeSeconds: number;
}): Uint8Array {
  return buildBindingUpdate({
    careOf: p.careOf,
    homeAgent: p.homeAgent,
    homeAddress: p.homeAddress,
    bu: {
      sequence: p.sequence & 0xffff,
      flags: { ...HOME_REGISTRATION_FLAGS },
      lifetime: Math.ceil(p.lifetimeSeconds / 4),
      options: [{ type: "altCoa", address: p.careOf }],
    },
  });
}

/** What {@linkcode peekBindingAck} reads. */
export interface BaPeek {
  /** Index of the home address (its last 16 bits) when its first 112 bits match `base`. */
  index: number;
  /** BA status (RFC 6275 §6.1.8). */
  status: number;
  /** BA sequence number. */
  sequence: number;
  /** BA lifetime in 4 s units. */
  lifetime: number;
}

const RH2_LEN = 24;
const MH_MIN_BA = 12;

/**
 * Reads a Binding Acknowledgement out of what a raw IPPROTO_ROUTING socket delivered: the
 * data starts at the routing header (a whole IPv6 packet is accepted too). Returns null for
 * anything else (not a type 2 routing header, not a BA, a home address outside `base`'s /112).
 * No checksum check: this is a load counter, not a protocol implementation.
 */
export function peekBindingAck(data: Uint8Array, len: number, base: Uint8Array): BaPeek | null {
  let o = 0;
  if (len >= 40 && data[0] >> 4 === 6 && data[6] === IPPROTO.ROUTING) o = 40;
  if (len < o + RH2_LEN + MH_MIN_BA) return null;
  if (data[o + 1] !== 2 || data[o + 2] !== 2 || data[o] !== IPPROTO.MH) return null;
  const h = o + 8;
  for (let k = 0; k < 14; k++) if (data[h + k] !== base[k]) return null;
  const m = o + RH2_LEN;
  if (data[m + 2] !== MH_TYPE.BA) return null;
  return {
    index: (data[h + 14] << 8) | data[h + 15],
    status: data[m + 6],
    sequence: (data[m + 8] << 8) | data[m + 9],
    lifetime: (data[m + 10] << 8) | data[m + 11],
  };
}

/** Result of one phase of the load generator. */
export interface LoadPhase {
  /** "first" (new bindings) or "refresh" (existing bindings, higher sequence numbers). */
  name: string;
  /** Home addresses in the phase. */
  count: number;
  /** BAs received for them (any status). */
  completed: number;
  /** BAs with status < 128 (accepted). */
  accepted: number;
  /** Wall time from the first BU to the last BA (s). */
  seconds: number;
  /** completed ÷ seconds: BU/BA transactions per second. */
  rate: number;
  /** BUs sent again after the timeout (with the next sequence number). */
  retransmits: number;
  /** BA count by status. */
  statuses: Record<string, number>;
  /** BU → BA time (ms) of answered first transmissions. */
  latencyMs: { p50: number; p99: number; max: number };
  /** Most BUs outstanding at once. */
  window: number;
  /**
   * CPU seconds the generator itself used in the phase: close to `seconds` means the
   * generator, not the home agent, was the bottleneck.
   */
  generatorCpuSeconds?: number;
}
