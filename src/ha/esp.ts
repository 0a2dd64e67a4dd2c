/**
 * ESP for the home agent's signaling (RFC 4877 §4, RFC 4303 transport mode, userland): the
 * Security Association Database built from `HaConfig.esp` (per home address: the `bu` SA
 * inbound, the `ba` SA outbound), the receive side turning ESP bytes into a checked Mobility
 * Header with the SPI it came under, the send side building protected Binding Acknowledgements,
 * and the state that must survive a restart.
 *
 * Sequence numbers of the outbound SAs are *reserved* {@linkcode ESP_SEQUENCE_RESERVE} ahead
 * and the reservation written to disk (synchronously, before the packet is built) whenever a
 * packet would go past it; a restart continues after the reservation. With AES-GCM a repeated
 * sequence number is a repeated nonce (RFC 4106 §3.1: the IV must never repeat under one key),
 * which gives the key stream away: after a crash the counter jumps forward by at most 64, it
 * never goes back. Inbound replay windows are written with the binding cache.
 *
 * @module
 */

import type { HaConfig } from "../config/schema.ts";
import type { EspError } from "../ipsec/esp.ts";
import {
  buildProtectedBindingAck,
  buildProtectedMobilityPacket,
  type ProtectedMobility,
  unprotectMobility,
} from "../ipsec/packets.ts";
import {
  MAX_SEQUENCE,
  SaStateJson,
  SecurityAssociation,
  SecurityAssociationDatabase,
} from "../ipsec/sa.ts";
import { canonicalIPv6 } from "../wire/addr.ts";
import type { HaAction } from "./core.ts";
import { baOf, baToHomeAddress } from "./packets.ts";

/** Outbound sequence numbers reserved per state write. */
export const ESP_SEQUENCE_RESERVE = 64;

/** Why a protected packet was refused, as a status counter name (`esp_replay`, …). */
export function espCounterName(e: Pick<EspError, "kind" | "field">): string {
  const kind = e.kind.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return e.field.startsWith("mh.") ? `esp_mh_${kind}` : `esp_${kind}`;
}

/** The SPI of ESP bytes (first four octets), or undefined when too short. */
export function peekSpi(esp: Uint8Array): number | undefined {
  if (esp.length < 4) return undefined;
  return ((esp[0] << 24) | (esp[1] << 16) | (esp[2] << 8) | esp[3]) >>> 0;
}

/** Result of {@linkcode HaEsp.unprotect}. */
export type HaEspResult =
  | { ok: true; value: ProtectedMobility; spi: number }
  | { ok: false; error: EspError; spi: number | undefined; counter: string };

/** The home agent's ESP: SAD, counters, protected BAs, movable state. */
export class HaEsp {
  readonly sad = new SecurityAssociationDatabase();
  readonly #haAddress: string;
  /** Outbound SPI → the highest sequence number known to be reserved on disk. */
  readonly #reserved = new Map<number, number>();
  readonly counters: Record<string, number> = {};
  /** The home addresses with an SA pair. */
  readonly homeAddresses: string[];

  constructor(entries: HaConfig["esp"], haAddress: string) {
    this.#haAddress = canonicalIPv6(haAddress);
    this.homeAddresses = [];
    for (const e of entries) {
      const hoa = canonicalIPv6(e.homeAddress);
      this.homeAddresses.push(hoa);
      const binding = { homeAddress: hoa, homeAgent: this.#haAddress };
      this.sad.add(new SecurityAssociation(e.bu, { ...binding, direction: "inbound" }));
      const out = new SecurityAssociation(e.ba, { ...binding, direction: "outbound" });
      this.sad.add(out);
      this.#reserved.set(out.spi, 0);
    }
  }

  #count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
  }

  /**
   * ESP bytes of a signaling packet to the home agent (RFC 4877 §4): `hao` when it had a Home
   * Address option (away from home), else the source is the home address (at home).
   */
  async unprotect(
    esp: Uint8Array,
    at: { src: string; dst: string; hao?: string },
  ): Promise<HaEspResult> {
    const spi = peekSpi(esp);
    const r = await unprotectMobility(this.sad, esp, { ...at, receiver: "homeAgent" });
    if (r.ok) {
      this.#count("esp_received");
      return { ok: true, value: r.value, spi: r.value.sa.spi };
    }
    const counter = espCounterName(r);
    this.#count(counter);
    return { ok: false, error: r, spi, counter };
  }

  /**
   * The sequence numbers the next `packets` protected BAs to `homeAddress` take would need a
   * new reservation on disk: returns the value to persist first (then {@linkcode committed}),
   * or undefined when they are covered. Throws for a home address without an outbound SA.
   */
  reservationNeeded(homeAddress: string, packets = 1): number | undefined {
    const sa = this.#outbound(homeAddress);
    const reserved = this.#reserved.get(sa.spi) ?? 0;
    if (sa.lastSequence + packets <= reserved) return undefined;
    return Math.min(MAX_SEQUENCE, sa.lastSequence + Math.max(packets, ESP_SEQUENCE_RESERVE));
  }

  /**
   * Reservations for every outbound SA whose next packet is not covered yet: written once at
   * start, so that a burst of first registrations needs no write per BA. Pass each pair to
   * {@linkcode committed} once on disk.
   */
  reservationsForAll(): [homeAddress: string, value: number][] {
    const out: [string, number][] = [];
    for (const hoa of this.homeAddresses) {
      const v = this.reservationNeeded(hoa);
      if (v !== undefined) out.push([hoa, v]);
    }
    return out;
  }

  /** `value` from {@linkcode reservationNeeded} is on disk for `homeAddress`'s outbound SA. */
  committed(homeAddress: string, value: number): void {
    const sa = this.#outbound(homeAddress);
    this.#reserved.set(sa.spi, Math.max(this.#reserved.get(sa.spi) ?? 0, value));
  }

  #outbound(homeAddress: string): SecurityAssociation {
    const sa = this.sad.outbound(homeAddress, this.#haAddress);
    if (sa === undefined) throw new Error(`no outbound ESP SA for ${homeAddress}`);
    return sa;
  }

  /**
   * A protected BA for a `sendBa` action (RFC 4877 §4.1): IPv6 | RH2 | ESP | MH to a care-of
   * address, IPv6 | ESP | MH to the home address itself. The caller made sure the sequence
   * number is reserved ({@linkcode reservationNeeded}). The sequence number is taken before
   * this returns its promise, so BAs built one after another carry increasing numbers.
   * @throws {SequenceExhaustedError} when the SA may send no more (nothing is sent).
   */
  protectBa(a: Extract<HaAction, { type: "sendBa" }>): Promise<Uint8Array> {
    const sa = this.#outbound(a.homeAddress);
    const ba = baOf(a);
    this.#count("esp_ba_protected");
    if (baToHomeAddress(a)) {
      return buildProtectedMobilityPacket(sa, {
        src: a.from,
        dst: a.to,
        mh: { type: "ba", ...ba },
      });
    }
    return buildProtectedBindingAck(sa, {
      homeAgent: a.from,
      careOf: a.to,
      homeAddress: a.homeAddress,
      ba,
    });
  }

  /**
   * The state to write with the binding cache: inbound SAs' replay windows (RFC 4303 §3.4.3),
   * outbound SAs' *reserved* sequence numbers (never the last sent: see the module doc).
   */
  exportState(): unknown[] {
    const out: unknown[] = [];
    for (const sa of this.sad) {
      const s = sa.exportState();
      if (sa.direction === "outbound") s.sequence = this.#reserved.get(sa.spi) ?? 0;
      out.push(s);
    }
    return out;
  }

  /**
   * Takes state written by {@linkcode exportState} (an earlier run): outbound counters continue
   * after the reservation, inbound windows merge. Returns a description of each entry that does
   * not fit the configured SAs (another SPI: a rekeyed configuration), which is dropped.
   */
  importState(states: unknown[]): string[] {
    const problems: string[] = [];
    for (const raw of states) {
      const r = SaStateJson.safeParse(raw);
      if (!r.success) {
        problems.push(`ESP state: ${r.error.issues[0]?.message}`);
        continue;
      }
      const s = r.data;
      const sa = [...this.sad].find((x) => x.spi === s.spi && x.direction === s.direction);
      if (sa === undefined) {
        problems.push(`ESP state for ${s.direction} SPI ${s.spi}: no such SA configured`);
        continue;
      }
      const e = sa.importState(s);
      if (e !== null) problems.push(e);
      else if (sa.direction === "outbound") this.#reserved.set(sa.spi, sa.lastSequence);
    }
    return problems;
  }

  /**
   * Moves every outbound counter to at least `sequence` (state of an earlier run lost: see the
   * daemon). Returns how many SAs there are.
   */
  skipOutboundTo(sequence: number): number {
    let n = 0;
    for (const sa of this.sad) {
      if (sa.direction !== "outbound") continue;
      sa.importState({ spi: sa.spi, direction: "outbound", sequence });
      n++;
    }
    return n;
  }

  /** For `status`: every SA (no keys) with its counters, and the SAD's own counters. */
  status(): Record<string, unknown> {
    return {
      sas: [...this.sad].map((sa) => ({
        ...sa.toJSON(),
        reserved: sa.direction === "outbound" ? this.#reserved.get(sa.spi) ?? 0 : undefined,
      })),
      sad: { ...this.sad.counters },
    };
  }
}
