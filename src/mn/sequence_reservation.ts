/**
 * Durable BU sequence numbers without an fsync per Binding Update (RFC 6275 §11.7.1: each BU
 * carries a sequence number greater than the previous one, modulo 2^16).
 *
 * Instead of the last sequence used, the state file holds a *reservation*: a number
 * {@linkcode SEQUENCE_RESERVE} ahead of the sequence that made the write. BUs up to the
 * reservation need no write; the first BU past it (or behind the window, after a status 135
 * or a handover moved the counter) writes a new one. After a crash the daemon continues after
 * the reservation: a jump forward of at most 64, which the home agent accepts like any newer
 * sequence number (§9.5.1). One synchronous state write per 64 BUs instead of one per BU.
 *
 * @module
 */

/** Sequence numbers reserved per state write. */
export const SEQUENCE_RESERVE = 64;

/** Which reservation to persist before a sequence number may be sent. */
export class SequenceReservation {
  #reserved: number | null;

  /** `stored`: the reservation read from the state file (null when none was readable). */
  constructor(stored: number | null) {
    this.#reserved = stored === null ? null : stored & 0xffff;
  }

  /** The last reservation known to be on disk, or null. */
  get reserved(): number | null {
    return this.#reserved;
  }

  /**
   * The value to write before `seq` is sent, or null when `seq` is already covered: it lies
   * in [reserved − 64, reserved] modulo 2^16, so a restart continues after it.
   */
  toPersist(seq: number): number | null {
    const s = seq & 0xffff;
    if (this.#reserved !== null) {
      const ahead = (this.#reserved - s) & 0xffff;
      if (ahead <= SEQUENCE_RESERVE) return null;
    }
    return (s + SEQUENCE_RESERVE) & 0xffff;
  }

  /** `value` (from `toPersist`) is now durable. */
  committed(value: number): void {
    this.#reserved = value & 0xffff;
  }
}

/**
 * The sequence a restart continues after, from a state file's contents: `{sequence}` as an
 * integer, or null when absent or not of that shape.
 */
export function storedSequence(stored: unknown): number | null {
  if (typeof stored !== "object" || stored === null || Array.isArray(stored)) return null;
  const seq = (stored as Record<string, unknown>).sequence;
  return Number.isInteger(seq) && (seq as number) >= 0 ? (seq as number) & 0xffff : null;
}
