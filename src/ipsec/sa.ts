/**
 * Security Associations and the Security Association Database for the ESP that protects home
 * registrations (RFC 4303, RFC 4877 §4). Manually keyed, 32-bit sequence numbers (no Extended
 * Sequence Numbers), anti-replay window of 64 (RFC 4303 §3.4.3).
 *
 * The sequence counter and the replay window belong to the VM, like the BU sequence number:
 * they are exported as JSON when the VM leaves a host and imported on the next one, and an
 * import never moves a counter backwards.
 *
 * @module
 */

import { z } from "zod";
import { canonicalIPv6 } from "../wire/addr.ts";
import type { EspLayout } from "../wire/esp.ts";
import { type EspAlgorithm, EspSaConfig, hexKey } from "./config.ts";

/** Framing of each algorithm (RFC 4106 §3–6, RFC 3602 §3, RFC 2410, RFC 4868 §2.3). */
export const ESP_LAYOUTS: Record<EspAlgorithm, EspLayout> = {
  // 8-octet explicit IV, 16-octet tag, no block alignment beyond 4 (RFC 4106 §3, §3.2, §6).
  "aes-gcm-128": { ivLen: 8, icvLen: 16, align: 4 },
  "aes-gcm-256": { ivLen: 8, icvLen: 16, align: 4 },
  // 16-octet IV, 16-octet blocks (RFC 3602 §3); HMAC-SHA-256-128 ICV (RFC 4868 §2.3).
  "aes-cbc-hmac-sha256": { ivLen: 16, icvLen: 16, align: 16 },
  // No IV, block size 1 (RFC 2410 §2), so 4-octet alignment (RFC 4303 §2.4).
  "null-hmac-sha256": { ivLen: 0, icvLen: 16, align: 4 },
};

/** The last Sequence Number an SA may send without ESN (RFC 4303 §3.3.3). */
export const MAX_SEQUENCE = 0xffffffff;

/** Which way an SA carries packets, seen from this node. */
export type SaDirection = "inbound" | "outbound";

/**
 * Thrown by {@linkcode SecurityAssociation.nextSequence} (and so by `protect`) once the SA has
 * sent Sequence Number 2^32 − 1: without ESN the counter must not cycle, a new SA is needed
 * (RFC 4303 §3.3.3). Not a programmer error, but a state the operator must act on (rekey), and
 * it leaves nothing half-sent.
 */
export class SequenceExhaustedError extends Error {
  constructor(readonly spi: number) {
    super(
      `ESP SA ${spi}: sequence number space exhausted (2^32 - 1 sent); ` +
        `configure a new SA (RFC 4303 §3.3.3: the counter must not cycle)`,
    );
    this.name = "SequenceExhaustedError";
  }
}

/** Result of a replay check (RFC 4303 §3.4.3). */
export type ReplayVerdict = "ok" | "duplicate" | "tooOld";

const WINDOW = 64;
const MASK = (1n << 64n) - 1n;

/**
 * The receiver's anti-replay window (RFC 4303 §3.4.3, Appendix A without ESN): `top` is the
 * highest Sequence Number accepted (0: none yet), bit i of `bitmap` says `top − i` was
 * accepted. Check before the integrity check; {@linkcode accept} only after it passed.
 */
export class ReplayWindow {
  /** Window size in packets. */
  static readonly SIZE = WINDOW;
  #top = 0;
  #bitmap = 0n;

  /** Highest Sequence Number accepted so far (0: none). */
  get top(): number {
    return this.#top;
  }

  /** The bitmap, bit 0 = `top`. */
  get bitmap(): bigint {
    return this.#bitmap;
  }

  /**
   * Whether `seq` may be accepted, without changing anything: new (right of the window or an
   * unmarked slot in it), a duplicate, or too old (left of the window). Sequence Number 0 is
   * never sent without ESN (the counter starts at 1, §3.3.3): too old.
   */
  check(seq: number): ReplayVerdict {
    if (seq === 0) return "tooOld";
    if (seq > this.#top) return "ok";
    const diff = this.#top - seq;
    if (diff >= WINDOW) return "tooOld";
    return (this.#bitmap >> BigInt(diff)) & 1n ? "duplicate" : "ok";
  }

  /**
   * Marks `seq` as received, sliding the window when it is new on the right. Checks again
   * first (two copies may both have passed `check` while their ICVs were being verified) and
   * returns the verdict; the window changes only on "ok".
   */
  accept(seq: number): ReplayVerdict {
    const v = this.check(seq);
    if (v !== "ok") return v;
    if (seq > this.#top) {
      const shift = seq - this.#top;
      this.#bitmap = shift >= WINDOW ? 1n : ((this.#bitmap << BigInt(shift)) | 1n) & MASK;
      this.#top = seq;
    } else {
      this.#bitmap |= 1n << BigInt(this.#top - seq);
    }
    return "ok";
  }

  /** The window as JSON: `{ top, bitmap }`, the bitmap as 16 hex digits (bit 0 = top). */
  toJSON(): { top: number; bitmap: string } {
    return { top: this.#top, bitmap: this.#bitmap.toString(16).padStart(16, "0") };
  }

  /**
   * Merges a window received from elsewhere: afterwards every Sequence Number either window
   * had accepted counts as received (the union), so no replay slips through a move.
   */
  merge(other: { top: number; bitmap: string | bigint }): void {
    const otherMap = typeof other.bitmap === "bigint" ? other.bitmap : BigInt(`0x${other.bitmap}`);
    const top = Math.max(this.#top, other.top);
    const align = (t: number, m: bigint) => {
      const shift = top - t;
      return shift >= WINDOW ? 0n : (m << BigInt(shift)) & MASK;
    };
    this.#bitmap = align(this.#top, this.#bitmap) | align(other.top, otherMap & MASK);
    this.#top = top;
  }
}

/** Counters of one SA, in the daemons' snake_case. */
export interface SaCounters {
  /** Outbound: packets protected. */
  protected: number;
  /** Inbound: packets that passed the replay and integrity checks. */
  unprotected: number;
  /** Inbound: rejected, Sequence Number already received (RFC 4303 §3.4.3). */
  replay_duplicate: number;
  /** Inbound: rejected, Sequence Number left of the window. */
  replay_too_old: number;
  /** Inbound: ICV (or GCM tag) did not verify (RFC 4303 §3.4.4). */
  integrity_failures: number;
  /** Inbound: bad framing, or bad padding after a valid ICV. */
  malformed: number;
  /** Inbound: the SA's home address or home agent did not match the packet (RFC 4877 §4). */
  policy_mismatch: number;
  /** Outbound: refused, sequence space exhausted. */
  exhausted: number;
}

/** The movable state of one SA, as JSON (no keys: both hosts have those from configuration). */
export interface SaState {
  spi: number;
  direction: SaDirection;
  /** Outbound: the last Sequence Number sent (0: none yet). */
  sequence?: number;
  /** Inbound: the replay window. */
  replay?: { top: number; bitmap: string };
}

/** zod schema of {@linkcode SaState} (what an import accepts). */
export const SaStateJson = z.object({
  spi: z.number().int().min(1).max(0xffffffff),
  direction: z.enum(["inbound", "outbound"]),
  sequence: z.number().int().min(0).max(MAX_SEQUENCE).optional(),
  replay: z.object({
    top: z.number().int().min(0).max(MAX_SEQUENCE),
    bitmap: z.string().regex(/^[0-9a-f]{1,16}$/),
  }).strict().optional(),
}).strict();

/** The CryptoKeys of an SA, imported once (WebCrypto, non-extractable). */
export interface SaKeys {
  /** AES-GCM or AES-CBC key; null for NULL encryption. */
  cipher: CryptoKey | null;
  /** HMAC-SHA-256 key; null for AES-GCM. */
  auth: CryptoKey | null;
  /** AES-GCM: the 4-octet salt, first part of the nonce (RFC 4106 §4). */
  salt: Uint8Array;
}

/** Where an SA sits: its home registration (RFC 4877 §4: SPD entries by home address). */
export interface SaBinding {
  direction: SaDirection;
  /** The mobile node's home address (here: the VM's). */
  homeAddress: string;
  /** The home agent's address. */
  homeAgent: string;
}

/**
 * One manually keyed ESP Security Association (RFC 4301 §4.4.2) in one direction, bound to a
 * home address and home agent (RFC 4877 §4). Keys stay in private fields (never in JSON or
 * logs); the sequence counter (outbound) or replay window (inbound) is the movable state.
 */
export class SecurityAssociation {
  readonly spi: number;
  readonly algorithm: EspAlgorithm;
  readonly direction: SaDirection;
  readonly homeAddress: string;
  readonly homeAgent: string;
  /** Framing of the algorithm. */
  readonly layout: EspLayout;
  /** Inbound only: the anti-replay window. */
  readonly replay = new ReplayWindow();
  readonly counters: SaCounters = {
    protected: 0,
    unprotected: 0,
    replay_duplicate: 0,
    replay_too_old: 0,
    integrity_failures: 0,
    malformed: 0,
    policy_mismatch: 0,
    exhausted: 0,
  };
  readonly #cipherKey: Uint8Array<ArrayBuffer>;
  readonly #salt: Uint8Array<ArrayBuffer>;
  readonly #authKey: Uint8Array<ArrayBuffer>;
  #keys: Promise<SaKeys> | null = null;
  #sent = 0;

  /**
   * @param config a configured SA (validated again here)
   * @param binding direction and home registration it serves
   * @throws {z.ZodError} on an invalid configuration; {TypeError} on bad address text.
   */
  constructor(config: EspSaConfig, binding: SaBinding) {
    const c = EspSaConfig.parse(config);
    this.spi = c.spi;
    this.algorithm = c.algorithm;
    this.direction = binding.direction;
    this.homeAddress = canonicalIPv6(binding.homeAddress);
    this.homeAgent = canonicalIPv6(binding.homeAgent);
    this.layout = ESP_LAYOUTS[c.algorithm];
    const key = hexKey(c.key)!;
    if (c.algorithm === "aes-gcm-128" || c.algorithm === "aes-gcm-256") {
      this.#cipherKey = key.slice(0, key.length - 4);
      this.#salt = key.slice(key.length - 4);
    } else {
      this.#cipherKey = key;
      this.#salt = new Uint8Array(0);
    }
    this.#authKey = c.authKey === undefined ? new Uint8Array(0) : hexKey(c.authKey)!;
  }

  /** Outbound: the last Sequence Number sent (0: none yet). */
  get lastSequence(): number {
    return this.#sent;
  }

  /** Outbound: how many more packets this SA may send. */
  get remaining(): number {
    return MAX_SEQUENCE - this.#sent;
  }

  /**
   * Outbound: takes the next Sequence Number (the first is 1, RFC 4303 §3.3.3). Synchronous,
   * so concurrent `protect` calls never share one.
   * @throws {SequenceExhaustedError} after 2^32 − 1 (counted in `exhausted`).
   * @throws {TypeError} on an inbound SA.
   */
  nextSequence(): number {
    if (this.direction !== "outbound") throw new TypeError(`ESP SA ${this.spi} is inbound`);
    if (this.#sent >= MAX_SEQUENCE) {
      this.counters.exhausted++;
      throw new SequenceExhaustedError(this.spi);
    }
    return ++this.#sent;
  }

  /** The CryptoKeys, imported on first use (AES-CBC keys can encrypt and decrypt: see esp.ts). */
  cryptoKeys(): Promise<SaKeys> {
    this.#keys ??= this.#importKeys();
    return this.#keys;
  }

  async #importKeys(): Promise<SaKeys> {
    const subtle = crypto.subtle;
    let cipher: CryptoKey | null = null;
    let auth: CryptoKey | null = null;
    switch (this.algorithm) {
      case "aes-gcm-128":
      case "aes-gcm-256":
        cipher = await subtle.importKey("raw", this.#cipherKey, "AES-GCM", false, [
          this.direction === "outbound" ? "encrypt" : "decrypt",
        ]);
        break;
      case "aes-cbc-hmac-sha256":
        cipher = await subtle.importKey("raw", this.#cipherKey, "AES-CBC", false, [
          "encrypt",
          "decrypt",
        ]);
        break;
    }
    if (this.#authKey.length > 0) {
      auth = await subtle.importKey(
        "raw",
        this.#authKey,
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
    }
    return { cipher, auth, salt: this.#salt };
  }

  /** The movable state (RFC 4303 §3.3.3 counter, §3.4.3 window) as JSON. */
  exportState(): SaState {
    return this.direction === "outbound"
      ? { spi: this.spi, direction: "outbound", sequence: this.#sent }
      : { spi: this.spi, direction: "inbound", replay: this.replay.toJSON() };
  }

  /**
   * Takes over state exported by another host (or an earlier run). The outbound counter
   * becomes max(ours, theirs) + `skip` (never backwards: a repeated Sequence Number would be
   * dropped as a replay and, with AES-GCM, would repeat a nonce); the inbound window becomes
   * the union of both. `skip` covers packets the other host may have sent after its export
   * (e.g. when the state was read from a file written before the last send). Returns an error
   * text for state that does not fit this SA (other SPI or direction, bad JSON), else null.
   */
  importState(raw: unknown, opts: { skip?: number } = {}): string | null {
    const r = SaStateJson.safeParse(raw);
    if (!r.success) return `ESP SA ${this.spi}: bad state: ${r.error.issues[0]?.message}`;
    const s = r.data;
    if (s.spi !== this.spi) return `ESP SA ${this.spi}: state is for SPI ${s.spi}`;
    if (s.direction !== this.direction) {
      return `ESP SA ${this.spi}: state is ${s.direction}, SA is ${this.direction}`;
    }
    const skip = opts.skip ?? 0;
    if (!Number.isInteger(skip) || skip < 0) return `ESP SA ${this.spi}: bad skip ${skip}`;
    if (this.direction === "outbound") {
      if (s.sequence === undefined) return `ESP SA ${this.spi}: outbound state without sequence`;
      this.#sent = Math.min(MAX_SEQUENCE, Math.max(this.#sent, s.sequence) + skip);
    } else {
      if (s.replay === undefined) return `ESP SA ${this.spi}: inbound state without replay`;
      this.replay.merge(s.replay);
    }
    return null;
  }

  /** A summary for status output (no keys). */
  toJSON(): Record<string, unknown> {
    return {
      ...this.exportState(),
      algorithm: this.algorithm,
      homeAddress: this.homeAddress,
      homeAgent: this.homeAgent,
      counters: { ...this.counters },
    };
  }
}

/** Counters of the database itself (packets no SA could be found for). */
export interface SadCounters {
  /** Inbound packets with an SPI no SA has (RFC 4303 §3.4.2: discarded, auditable). */
  unknown_spi: number;
  /** Inbound packets too short to hold an SPI, or with the reserved SPI 0. */
  malformed: number;
}

function pairKey(homeAddress: string, homeAgent: string): string {
  return `${canonicalIPv6(homeAddress)}|${canonicalIPv6(homeAgent)}`;
}

/**
 * The Security Association Database (RFC 4301 §4.4.2) of one node: inbound SAs by SPI,
 * outbound SAs by (home address, home agent) — the only selector home registrations need
 * (RFC 4877 §4: one SA pair per home address; the MH type is always BU outbound on the mobile
 * node and BA outbound on the home agent).
 */
export class SecurityAssociationDatabase {
  readonly counters: SadCounters = { unknown_spi: 0, malformed: 0 };
  readonly #inbound = new Map<number, SecurityAssociation>();
  readonly #outbound = new Map<string, SecurityAssociation>();

  /**
   * Adds an SA.
   * @throws {RangeError} when its inbound SPI or outbound (home address, home agent) is taken
   * (a configuration error the config schema should have caught).
   */
  add(sa: SecurityAssociation): void {
    if (sa.direction === "inbound") {
      if (this.#inbound.has(sa.spi)) throw new RangeError(`inbound ESP SPI ${sa.spi} already used`);
      this.#inbound.set(sa.spi, sa);
    } else {
      const k = pairKey(sa.homeAddress, sa.homeAgent);
      if (this.#outbound.has(k)) {
        throw new RangeError(`an outbound ESP SA for ${sa.homeAddress} -> ${sa.homeAgent} exists`);
      }
      this.#outbound.set(k, sa);
    }
  }

  /** Removes `sa` (no-op when absent). */
  remove(sa: SecurityAssociation): void {
    if (sa.direction === "inbound") {
      if (this.#inbound.get(sa.spi) === sa) this.#inbound.delete(sa.spi);
    } else {
      const k = pairKey(sa.homeAddress, sa.homeAgent);
      if (this.#outbound.get(k) === sa) this.#outbound.delete(k);
    }
  }

  /** The inbound SA with `spi`. */
  inbound(spi: number): SecurityAssociation | undefined {
    return this.#inbound.get(spi);
  }

  /** The outbound SA for the registration of `homeAddress` with `homeAgent`. */
  outbound(homeAddress: string, homeAgent: string): SecurityAssociation | undefined {
    return this.#outbound.get(pairKey(homeAddress, homeAgent));
  }

  /** Every SA serving `homeAddress`. */
  forHome(homeAddress: string): SecurityAssociation[] {
    const h = canonicalIPv6(homeAddress);
    return [...this].filter((sa) => sa.homeAddress === h);
  }

  /** The movable state of every SA serving `homeAddress` (to go with the VM). */
  exportState(homeAddress: string): SaState[] {
    return this.forHome(homeAddress).map((sa) => sa.exportState());
  }

  /**
   * Imports states exported by {@linkcode exportState} into the SAs of `homeAddress` with the
   * same SPI and direction (see {@linkcode SecurityAssociation.importState}). Returns the
   * errors (one text per state that could not be applied); empty when all went in.
   */
  importState(homeAddress: string, states: unknown, opts: { skip?: number } = {}): string[] {
    if (!Array.isArray(states)) return ["ESP state: expected an array"];
    const mine = this.forHome(homeAddress);
    const errors: string[] = [];
    for (const s of states) {
      const r = SaStateJson.safeParse(s);
      if (!r.success) {
        errors.push(`ESP state: ${r.error.issues[0]?.message}`);
        continue;
      }
      const sa = mine.find((m) => m.spi === r.data.spi && m.direction === r.data.direction);
      if (sa === undefined) {
        errors.push(`ESP state: no ${r.data.direction} SA ${r.data.spi} for ${homeAddress}`);
        continue;
      }
      const e = sa.importState(r.data, opts);
      if (e !== null) errors.push(e);
    }
    return errors;
  }

  /** Every SA, inbound first. */
  *[Symbol.iterator](): IterableIterator<SecurityAssociation> {
    yield* this.#inbound.values();
    yield* this.#outbound.values();
  }
}
