/**
 * ESP for one VM's home registration, as the mobile node keeps it (RFC 4877 §4: the BUs and
 * BAs of a home registration are protected by ESP in transport mode, RFC 4303), sans-I/O: the
 * decisions the daemon takes around `src/ipsec` — may this VM send now, what must be on disk
 * before it does, what goes to the next host and what comes from the previous one, which
 * unprotected messages are refused, which counter a refused packet lands in.
 *
 * ## The sequence counter belongs to the VM, and is never reused
 *
 * With AES-GCM the explicit IV is the ESP Sequence Number (RFC 4106 §3.1, `src/ipsec/esp.ts`):
 * sending two different packets with one Sequence Number under one key repeats a GCM nonce,
 * which gives away the authentication key. So:
 * - **crash**: before a Sequence Number beyond the one on disk is used, a reservation
 *   {@linkcode ESP_SEQUENCE_RESERVE} ahead is written (fsync'd) — like the BU sequence
 *   (`sequence_reservation.ts`), one write per 64 BUs. A restart continues after the
 *   reservation: a jump forward the home agent's replay window accepts (RFC 4303 §3.4.3).
 * - **migration**: `export` hands the counter (and the inbound replay window) to the next
 *   host and *releases* the SA here: this host refuses to send with it (also after a restart,
 *   the release is on disk) until a `handover` brings newer state back. The next host imports
 *   it never moving backwards (`SecurityAssociation.importState`: max(ours, theirs)).
 * - **unknown state**: a daemon started in `--standby` without state on disk does not know
 *   what other hosts sent: it waits for a handover with ESP state ("state needed"). A daemon
 *   started normally without state owns the SA from Sequence Number 1 (a new SA: the first
 *   host to use it).
 * - **exhaustion**: after 2^32 − 1 packets (no ESN) the SA may send no more
 *   (`SequenceExhaustedError`, RFC 4303 §3.3.3): "rekey needed", every further BU refused.
 *
 * ## The inbound window
 *
 * The replay window (RFC 4303 §3.4.3) is written with every state write (reservation, export,
 * handover, shutdown), not per BA. A window older than the last BA after a crash lets no
 * replayed BA through to the binding: a replayed BA also carries the MH sequence number of a
 * BU sent before the crash, and every BU after the restart continues after the BU sequence
 * reservation, so the Binding Update List refuses it (RFC 6275 §11.7.3).
 *
 * @module
 */

import type { EspPairConfig } from "../ipsec/config.ts";
import type { EspErrorKind } from "../ipsec/esp.ts";
import {
  MAX_SEQUENCE,
  type SaCounters,
  type SaState,
  SecurityAssociation,
  type SecurityAssociationDatabase,
} from "../ipsec/sa.ts";

/** ESP Sequence Numbers reserved per state write. */
export const ESP_SEQUENCE_RESERVE = 64;

/**
 * Durable ESP Sequence Numbers without a write per packet: the value on disk is a number
 * every Sequence Number used so far is at most; a restart continues after it. 32 bits, no
 * wrap (RFC 4303 §3.3.3: without ESN the counter never cycles).
 */
export class EspSequenceReservation {
  #reserved: number | null;

  /** `stored`: the reservation read from the state file (null when none). */
  constructor(stored: number | null) {
    this.#reserved = stored;
  }

  /** The last reservation known to be on disk, or null. */
  get reserved(): number | null {
    return this.#reserved;
  }

  /**
   * The value to write before Sequence Number `seq` is sent, or null when `seq` is already
   * covered (at most the reservation). At most {@linkcode MAX_SEQUENCE}.
   */
  toPersist(seq: number): number | null {
    if (this.#reserved !== null && seq <= this.#reserved) return null;
    return Math.min(MAX_SEQUENCE, seq + ESP_SEQUENCE_RESERVE);
  }

  /** `value` is now durable (a reservation never moves backwards). */
  committed(value: number): void {
    this.#reserved = Math.max(this.#reserved ?? 0, value);
  }
}

/** Counters of refused inbound ESP signaling, by reason (the daemon's snake_case). */
export const ESP_RX_COUNTERS = [
  "esp_replay",
  "esp_integrity",
  "esp_unknown_spi",
  "esp_policy",
  "esp_malformed",
  "esp_checksum",
  "esp_not_mh",
  "esp_dummy",
  "esp_busy",
] as const;

/** One of {@linkcode ESP_RX_COUNTERS}. */
export type EspRxCounter = typeof ESP_RX_COUNTERS[number];

/**
 * The counter a refused ESP packet lands in: its `EspErrorKind` (replay RFC 4303 §3.4.3,
 * integrity §3.4.4, unknown SPI §3.4.2, policy RFC 4877 §4), a bad MH checksum inside
 * (`field` starting with `mh.`, kind checksum), a payload that is not a Mobility Header
 * (`innerNextHeader`), else malformed.
 */
export function espDropCounter(e: { kind: EspErrorKind; field: string }): EspRxCounter {
  switch (e.kind) {
    case "replay":
      return "esp_replay";
    case "integrity":
      return "esp_integrity";
    case "unknownSpi":
      return "esp_unknown_spi";
    case "policy":
      return "esp_policy";
    case "checksum":
      return "esp_checksum";
    case "unsupported":
      return e.field === "innerNextHeader" ? "esp_not_mh" : "esp_malformed";
    default:
      return "esp_malformed";
  }
}

/**
 * Whether a signaling message that arrived *without* ESP may go to the binding update list
 * (RFC 4877 §4): a VM with ESP configured accepts only protected Binding Acknowledgements.
 * Binding Refresh Requests (they only make the mobile node send a BU, itself protected) and
 * Binding Errors (RFC 6275 §6.1.9: any node may send one) stay acceptable unprotected.
 */
export function acceptUnprotected(type: "ba" | "brr" | "be", espConfigured: boolean): boolean {
  return !(espConfigured && type === "ba");
}

/** What the state file keeps of a VM's ESP (the `esp` key next to the BU sequence). */
export interface StoredEsp {
  /** Whether this host owns the SA (false after an export: another host sends with it). */
  owned: boolean;
  /** The SAs' movable state; the outbound `sequence` is the reservation. */
  sas: SaState[];
}

/** The `esp` part of a state file, or null when absent or not of that shape. */
export function storedEsp(stored: unknown): StoredEsp | null {
  if (typeof stored !== "object" || stored === null || Array.isArray(stored)) return null;
  const esp = (stored as Record<string, unknown>).esp;
  if (typeof esp !== "object" || esp === null || Array.isArray(esp)) return null;
  const e = esp as Record<string, unknown>;
  if (typeof e.owned !== "boolean" || !Array.isArray(e.sas)) return null;
  return { owned: e.owned, sas: e.sas as SaState[] };
}

/** Why a VM may not send a protected BU now. */
export type EspRefusal = "exhausted" | "released" | "stateNeeded";

/** {@linkcode VmEsp.beforeSend}'s answer. */
export type EspSendVerdict =
  /** Send; write `persist` (with {@linkcode VmEsp.persisted}) first when not null. */
  | { ok: true; persist: number | null; generation: number }
  | { ok: false; why: EspRefusal; message: string };

/** Who may send with the VM's SA. */
export type EspOwnership = "owned" | "released" | "stateNeeded";

/** The per-VM ESP status for the control socket (no keys). */
export interface VmEspStatus {
  /** `protected`, or why BUs are refused: `rekey needed`, `released`, `state needed`. */
  state: "protected" | "rekey needed" | "released" | "state needed";
  reason: string;
  bu: {
    spi: number;
    algorithm: string;
    /** Last ESP Sequence Number taken. */
    sequence: number;
    /** What is on disk (null: nothing yet). */
    reserved: number | null;
    counters: SaCounters;
  };
  ba: {
    spi: number;
    algorithm: string;
    /** Highest Sequence Number accepted. */
    replayTop: number;
    counters: SaCounters;
  };
}

/**
 * One VM's pair of SAs (RFC 4877 §4: `bu` outbound, `ba` inbound), added to the daemon's SAD,
 * with the ownership and reservation rules of this module's documentation.
 */
export class VmEsp {
  readonly bu: SecurityAssociation;
  readonly ba: SecurityAssociation;
  /** What happened to the stored state at construction (for the log). */
  readonly notes: string[] = [];
  readonly #reservation: EspSequenceReservation;
  #ownership: EspOwnership;
  #reason: string;
  #exhausted = false;
  #generation = 0;

  /**
   * @param sad the daemon's database; both SAs are added to it
   * @param config the VM's configured pair
   * @param at the registration: the VM's home address and the home agent
   * @param opts `stored`: the state file's contents (undefined: none); `corrupt`: a state
   * file exists but could not be read (the counter is unknown: nothing is sent before a
   * handover brings state); `standby`: the daemon waits for a handover (then without stored
   * state nothing may be sent before one)
   * @throws {z.ZodError} on an invalid SA configuration; {RangeError} on an SPI already in the
   * SAD.
   */
  constructor(
    readonly sad: SecurityAssociationDatabase,
    config: EspPairConfig,
    at: { homeAddress: string; homeAgent: string },
    opts: { stored?: unknown; corrupt?: boolean; standby?: boolean } = {},
  ) {
    this.bu = new SecurityAssociation(config.bu, { direction: "outbound", ...at });
    this.ba = new SecurityAssociation(config.ba, { direction: "inbound", ...at });
    sad.add(this.bu);
    try {
      sad.add(this.ba);
    } catch (e) {
      sad.remove(this.bu);
      throw e;
    }
    let reserved: number | null = null;
    const stored = storedEsp(opts.stored);
    let restored = false;
    if (stored !== null) {
      const { errors, outbound } = this.#import(stored.sas);
      if (outbound) {
        reserved = this.bu.lastSequence;
        restored = true;
        this.notes.push(
          `ESP: continuing after sequence ${reserved} (reserved) of SA ${this.bu.spi}` +
            (stored.owned ? "" : "; released to another host, waiting for a handover"),
        );
      } else {
        this.notes.push(
          `ESP: stored state is for other SAs (${errors.join("; ") || "no outbound SA"}): ` +
            "starting the configured SAs afresh",
        );
      }
    }
    this.#reservation = new EspSequenceReservation(reserved);
    if (restored) {
      this.#ownership = stored!.owned ? "owned" : "released";
      this.#reason = stored!.owned
        ? "restored from the state directory"
        : "exported to another host before the restart";
    } else if (opts.corrupt) {
      this.#ownership = "stateNeeded";
      this.#reason = "the state file is unusable: the ESP sequence counter is unknown; " +
        "waiting for a handover that brings it";
    } else if (opts.standby) {
      this.#ownership = "stateNeeded";
      this.#reason = "standby without ESP state: waiting for a handover that brings it";
    } else {
      this.#ownership = "owned";
      this.#reason = "new SA: first use on this host";
    }
  }

  /**
   * Applies movable states to the SA of the same SPI and direction (others are errors).
   * `outbound`: whether the outbound SA's state went in.
   */
  #import(states: unknown[]): { errors: string[]; outbound: boolean } {
    const errors: string[] = [];
    let outbound = false;
    for (const s of states) {
      const spi = (s as SaState | null)?.spi;
      const dir = (s as SaState | null)?.direction;
      const sa = [this.bu, this.ba].find((x) => x.spi === spi && x.direction === dir);
      if (sa === undefined) {
        errors.push(`ESP state: no ${String(dir)} SA ${String(spi)} for ${this.bu.homeAddress}`);
        continue;
      }
      const e = sa.importState(s);
      if (e !== null) errors.push(e);
      else if (sa === this.bu) outbound = true;
    }
    return { errors, outbound };
  }

  /** Who may send with the SA now. */
  get ownership(): EspOwnership {
    return this.#ownership;
  }

  /** Bumped when the SA is released: a packet protected before must not leave after. */
  get generation(): number {
    return this.#generation;
  }

  /** True once the outbound SA ran out of Sequence Numbers. */
  get exhausted(): boolean {
    return this.#exhausted;
  }

  /** The reservation on disk (null: none yet). */
  get reserved(): number | null {
    return this.#reservation.reserved;
  }

  /**
   * May a protected BU be sent now, and what must be written first: the reservation covering
   * the next Sequence Number when it is not yet on disk.
   */
  beforeSend(): EspSendVerdict {
    if (this.#exhausted) {
      return {
        ok: false,
        why: "exhausted",
        message: `ESP SA ${this.bu.spi} has sent 2^32 - 1 packets: rekey needed ` +
          "(configure a new SA on both ends; RFC 4303 §3.3.3)",
      };
    }
    if (this.#ownership !== "owned") {
      return {
        ok: false,
        why: this.#ownership,
        message: `ESP SA ${this.bu.spi} is not ours to send with: ${this.#reason}`,
      };
    }
    const next = Math.min(MAX_SEQUENCE, this.bu.lastSequence + 1);
    return { ok: true, persist: this.#reservation.toPersist(next), generation: this.#generation };
  }

  /** A reservation (from `beforeSend`) or a `persisted()` value is on disk now. */
  committed(value: number): void {
    this.#reservation.committed(value);
  }

  /** Protecting raised `SequenceExhaustedError`: refuse from now on. */
  markExhausted(): void {
    this.#exhausted = true;
    this.#reason = "sequence number space exhausted";
  }

  /**
   * The state to hand to the next host (RFC 4877 §4 SAs move with the home address): the
   * last Sequence Number taken and the replay window. With `release` this host stops sending
   * with the SA (and packets protected before but not yet sent are dropped).
   */
  exportState(release: boolean): SaState[] {
    const out = [this.bu.exportState(), this.ba.exportState()];
    if (release) {
      this.#ownership = "released";
      this.#reason = "exported: the VM left this host";
      this.#generation++;
    }
    return out;
  }

  /**
   * Takes over state handed over by the previous host: the counter never moves backwards, the
   * windows are merged. Owned afterwards when the outbound state went in. `states` undefined
   * (a handover without ESP state) keeps an owned SA owned and leaves any other waiting.
   * Returns the problems (empty when all went in).
   */
  importState(states: unknown): string[] {
    if (states === undefined) {
      if (this.#ownership === "owned") return [];
      return [
        `no ESP state handed over for SA ${this.bu.spi} (${this.#reason}); refusing to send ` +
        "with it: a reused sequence number would be a replay, and an AES-GCM nonce reuse",
      ];
    }
    if (!Array.isArray(states)) return ["ESP state: expected an array"];
    const { errors, outbound } = this.#import(states);
    if (outbound) {
      this.#ownership = "owned";
      this.#reason = "handed over by the previous host";
    } else if (this.#ownership !== "owned") {
      errors.push(`ESP state for outbound SA ${this.bu.spi} missing: still not sending`);
    }
    return errors;
  }

  /**
   * The `esp` value for the state file; its outbound sequence is what a restart continues
   * after: `reserve` (a new reservation from `beforeSend`), else the one on disk or the last
   * Sequence Number taken, whichever is higher. Once written, pass that sequence to
   * `committed`.
   */
  persisted(reserve: number | null = null): StoredEsp {
    const seq = Math.max(reserve ?? 0, this.#reservation.reserved ?? 0, this.bu.lastSequence);
    return {
      owned: this.#ownership === "owned",
      sas: [{ ...this.bu.exportState(), sequence: seq }, this.ba.exportState()],
    };
  }

  /** The status for the control socket. */
  status(): VmEspStatus {
    const state = this.#exhausted
      ? "rekey needed"
      : this.#ownership === "owned"
      ? "protected"
      : this.#ownership === "released"
      ? "released"
      : "state needed";
    return {
      state,
      reason: this.#reason,
      bu: {
        spi: this.bu.spi,
        algorithm: this.bu.algorithm,
        sequence: this.bu.lastSequence,
        reserved: this.#reservation.reserved,
        counters: { ...this.bu.counters },
      },
      ba: {
        spi: this.ba.spi,
        algorithm: this.ba.algorithm,
        replayTop: this.ba.replay.top,
        counters: { ...this.ba.counters },
      },
    };
  }

  /** Removes both SAs from the SAD. */
  close(): void {
    this.sad.remove(this.bu);
    this.sad.remove(this.ba);
  }
}
