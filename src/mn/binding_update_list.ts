/**
 * The mobile node's Binding Update List entry for one VM's home registration, as a sans-I/O
 * state machine (RFC 6275 §11.7 sending Binding Updates, §11.8 retransmissions, §11.7.3
 * receiving Binding Acknowledgements, §11.7.4 Binding Refresh Requests, §11.3.6 Binding
 * Errors, §11.5.4 returning home).
 *
 * `handle(event, now)` takes what happened (start, timer, BA/BRR/BE received, handover,
 * deregister) and returns what to do (send a BU, persist the sequence number, record a state
 * change with its reason, log). `nextDeadline()` tells the loop when to call back with a
 * `timer` event. `now` is in milliseconds and only ever comes in as an argument.
 *
 * States: `registering` (BU in flight, no valid binding known), `registered` (the HA accepted;
 * refreshes happen in this state), `deregistering` (lifetime-0 BU in flight),
 * `deregistered` (no binding; also the initial state) and `failed` (no valid BA after
 * {@linkcode BUL_DEFAULTS.maxTransmissions} tries: the entry keeps retrying every 32 s, so it
 * recovers by itself when the home agent comes back; `handover` restarts at once).
 *
 * Retransmission (§11.8): the first BU of an attempt waits 1.5 s for its BA when no binding
 * is known to exist at the HA (InitialBindackTimeoutFirstReg, the HA may run DAD) and 1 s
 * otherwise (INITIAL_BINDACK_TIMEOUT); each retransmission doubles the wait up to 32 s
 * (MAX_BINDACK_TIMEOUT) and then keeps retrying every 32 s. Every transmission carries a new
 * sequence number (§11.7.1: greater than the previous BU's), and a BA is accepted for any
 * sequence number sent in the current attempt, so a late BA still counts while a BA for an
 * attempt superseded by a handover is ignored.
 *
 * @module
 */

import type { BaRepr, BeRepr, BrrRepr, BuRepr } from "../wire/mobility.ts";
import { BA_STATUS, baStatusText, BE_STATUS, HOME_REGISTRATION_FLAGS } from "../wire/mobility.ts";

/** Registration state of one VM's binding. */
export type BulState = "registering" | "registered" | "deregistering" | "deregistered" | "failed";

/** Tunables (RFC 6275 §12 protocol constants, and the bound this implementation chose). */
export const BUL_DEFAULTS = {
  /** InitialBindackTimeoutFirstReg (§13): 1.5 s. */
  initialTimeoutFirstRegMs: 1500,
  /** INITIAL_BINDACK_TIMEOUT (§12): 1 s. */
  initialTimeoutMs: 1000,
  /** MAX_BINDACK_TIMEOUT (§12): 32 s. */
  maxTimeoutMs: 32_000,
  /**
   * Transmissions of one attempt before the state becomes `failed`: 1.5+3+6+12+24 s, then
   * 11 × 32 s ≈ 6.6 minutes without a valid BA. Retries continue every 32 s afterwards.
   */
  maxTransmissions: 16,
  /** Consecutive status-135 BAs answered at once before falling back to the backoff timer. */
  max135Immediate: 3,
  /** Refresh when this fraction of the granted lifetime has passed (unless a BRA says sooner). */
  refreshFraction: 0.8,
} as const;

/** Configuration of one entry. */
export interface BulOptions {
  homeAddress: string;
  homeAgent: string;
  careOf: string;
  /** Requested lifetime in seconds (sent in 4 s units, rounded up, at most 65535 units). */
  lifetime: number;
  /** The last sequence number used (the next BU carries this + 1, modulo 2^16). */
  lastSequence: number;
  /**
   * False when `lastSequence` is a random start (nothing persisted for this HoA): a sequence
   * handed over by the previous host then replaces it even when it looks older. Default true.
   */
  sequenceKnown?: boolean;
  /** Override {@linkcode BUL_DEFAULTS}. */
  tunables?: Partial<typeof BUL_DEFAULTS>;
}

/** What the entry reacts to. */
export type BulEvent =
  /** Register now (daemon start, or after standby). */
  | { type: "start" }
  /** `nextDeadline()` passed. */
  | { type: "timer" }
  /**
   * A Binding Acknowledgement (checksum already verified) from `src` to `dst`; `rh2HomeAddress`
   * is the address of its type 2 routing header when it had one.
   */
  | { type: "ba"; src: string; dst: string; rh2HomeAddress?: string; ba: BaRepr }
  /** A Binding Refresh Request (§6.1.2), same addressing fields as a BA. */
  | { type: "brr"; src: string; dst: string; rh2HomeAddress?: string; brr: BrrRepr }
  /** A Binding Error (§6.1.9). */
  | { type: "be"; src: string; be: BeRepr }
  /**
   * Re-send the BU at once (a migrated guest resumed, or the care-of address changed),
   * optionally from a new care-of address and continuing a sequence handed over by the
   * previous host.
   */
  | { type: "handover"; careOf?: string; sequence?: number; bindingExists?: boolean }
  /**
   * Deregister (lifetime 0). `atHome`: the VM is back on its home link (§11.5.4): the BU's
   * care-of address is the home address and it is sent from the home address. `sequence`
   * continues a sequence handed over by the host the VM came from.
   */
  | { type: "deregister"; atHome?: boolean; sequence?: number; bindingExists?: boolean }
  /**
   * Stop without signaling: the VM left this host and the next host now owns the binding
   * (after an `export`). No BU is sent, timers stop, the state becomes `deregistered`.
   */
  | { type: "release"; reason?: string };

/** What the wiring must do. */
export type BulAction =
  /**
   * Send `bu` to `homeAgent` with care-of `careOf` (source address, and Alt-CoA option).
   * When `atHome`, `careOf` equals the HoA: send from the HoA, without a HAO (§11.5.4).
   */
  | {
    type: "sendBu";
    bu: BuRepr;
    careOf: string;
    homeAddress: string;
    homeAgent: string;
    atHome: boolean;
    retransmission: boolean;
  }
  /** Store `sequence` (the last one used) so a restart or the next host continues it. */
  | { type: "persistSequence"; sequence: number }
  /** The state changed, and why. */
  | { type: "state"; from: BulState; to: BulState; reason: string }
  /**
   * A log line. `remote` is set for lines caused by remote input (rate-limit those by key).
   */
  | {
    type: "log";
    level: "debug" | "info" | "warning" | "error";
    message: string;
    remote?: string;
  };

/** A state change kept in the entry's history. */
export interface BulTransition {
  at: number;
  from: BulState;
  to: BulState;
  reason: string;
}

/** Counters of one entry. */
export interface BulCounters {
  bu_queued: number;
  bu_retransmissions: number;
  ba_accepted: number;
  ba_refused: number;
  /** BAs ignored: not from the HA, wrong/missing RH2, or no matching sequence in flight. */
  ba_ignored: number;
  ba_seq_out_of_window: number;
  brr_received: number;
  brr_ignored: number;
  be_received: number;
  be_ignored: number;
  bu_refreshes: number;
}

/** The status a control client sees. */
export interface BulStatus {
  homeAddress: string;
  careOfAddress: string;
  homeAgent: string;
  state: BulState;
  /** Last sequence number sent. */
  sequence: number;
  /** Seconds left of the binding the HA granted (0 when none). */
  lifetimeRemaining: number;
  /** Why the current state was entered. */
  reason: string;
  /** Transmissions in the current attempt. */
  transmissions: number;
  atHome: boolean;
}

/** True when sequence `a` is newer than `b` modulo 2^16 (RFC 6275 §9.5.1). */
export function seqGreater(a: number, b: number): boolean {
  const d = (a - b) & 0xffff;
  return d !== 0 && d < 0x8000;
}

const HISTORY = 32;

/** One VM's home registration (RFC 6275 §11.7–11.8). */
export class BindingUpdateListEntry {
  readonly homeAddress: string;
  readonly homeAgent: string;
  readonly counters: BulCounters = {
    bu_queued: 0,
    bu_retransmissions: 0,
    ba_accepted: 0,
    ba_refused: 0,
    ba_ignored: 0,
    ba_seq_out_of_window: 0,
    brr_received: 0,
    brr_ignored: 0,
    be_received: 0,
    be_ignored: 0,
    bu_refreshes: 0,
  };
  /** The last state changes, oldest first. */
  readonly history: BulTransition[] = [];

  #t: typeof BUL_DEFAULTS;
  #careOf: string;
  #lifetimeUnits: number;
  #state: BulState = "deregistered";
  #reason = "not started";
  #lastSeq: number;
  #seqKnown: boolean;
  #atHome = false;

  /** A BU of the current attempt awaits its BA. */
  #inFlight = false;
  /** The current attempt is a deregistration (lifetime 0). */
  #dereg = false;
  #attemptFirstSeq = 0;
  /** Sequence numbers sent in this attempt, from #attemptFirstSeq. */
  #attemptCount = 0;
  /** Send times by sequence number & 31 (the lifetime counts from when the BU was sent). */
  #sentAt: number[] = new Array(32).fill(0);
  /** A deregistration gives up (any binding has expired at the HA) at this time. */
  #deregGiveUpAt: number | null = null;
  #transmissions = 0;
  #timeoutMs = 0;
  #retransmitAt: number | null = null;
  #consecutive135 = 0;
  #lastSentAt = 0;

  /** The HA holds a binding (as far as we know) until this time. */
  #bindingExpiresAt: number | null = null;
  #refreshAt: number | null = null;
  /** A binding is known (or was handed over) to exist at the HA: retransmit from 1 s. */
  #hadBinding = false;

  constructor(opts: BulOptions) {
    this.homeAddress = opts.homeAddress;
    this.homeAgent = opts.homeAgent;
    this.#careOf = opts.careOf;
    if (!(opts.lifetime >= 0)) throw new RangeError(`lifetime must be >= 0: ${opts.lifetime}`);
    this.#lifetimeUnits = Math.min(65535, Math.max(1, Math.ceil(opts.lifetime / 4)));
    if (!Number.isInteger(opts.lastSequence) || opts.lastSequence < 0) {
      throw new RangeError(`lastSequence must be a non-negative integer: ${opts.lastSequence}`);
    }
    this.#lastSeq = opts.lastSequence & 0xffff;
    this.#seqKnown = opts.sequenceKnown ?? true;
    this.#t = { ...BUL_DEFAULTS, ...opts.tunables };
  }

  /** Current state. */
  get state(): BulState {
    return this.#state;
  }
  /** Why the current state was entered. */
  get reason(): string {
    return this.#reason;
  }
  /** Last sequence number sent. */
  get sequence(): number {
    return this.#lastSeq;
  }
  /** Current care-of address. */
  get careOf(): string {
    return this.#careOf;
  }
  /** True once a deregistration from the home link was asked for. */
  get atHome(): boolean {
    return this.#atHome;
  }
  /** True while the HA is believed to tunnel for this VM (state registered). */
  get registered(): boolean {
    return this.#state === "registered";
  }

  /** The earliest time a `timer` event is due, or null when nothing is pending. */
  nextDeadline(): number | null {
    let d: number | null = null;
    const ts = [this.#retransmitAt, this.#refreshAt, this.#bindingExpiresAt, this.#deregGiveUpAt];
    for (const t of ts) {
      if (t !== null && (d === null || t < d)) d = t;
    }
    return d;
  }

  /** Status for the control socket. */
  status(now: number): BulStatus {
    const rem = this.#bindingExpiresAt === null
      ? 0
      : Math.max(0, Math.floor((this.#bindingExpiresAt - now) / 1000));
    return {
      homeAddress: this.homeAddress,
      careOfAddress: this.#careOf,
      homeAgent: this.homeAgent,
      state: this.#state,
      sequence: this.#lastSeq,
      lifetimeRemaining: rem,
      reason: this.#reason,
      transmissions: this.#transmissions,
      atHome: this.#atHome,
    };
  }

  /** Processes one event at time `now` (ms) and returns the actions to carry out, in order. */
  handle(event: BulEvent, now: number): BulAction[] {
    const out: BulAction[] = [];
    switch (event.type) {
      case "start":
        this.#atHome = false;
        this.#dereg = false;
        this.#deregGiveUpAt = null;
        this.#beginAttempt(now, out, "registering", "registration started");
        break;
      case "timer":
        this.#onTimer(now, out);
        break;
      case "ba":
        this.#onBa(event, now, out);
        break;
      case "brr":
        this.#onBrr(event, now, out);
        break;
      case "be":
        this.#onBe(event, now, out);
        break;
      case "handover":
        this.#onHandover(event, now, out);
        break;
      case "release":
        this.#stopAttempt();
        this.#dereg = false;
        this.#refreshAt = null;
        this.#bindingExpiresAt = null;
        this.#deregGiveUpAt = null;
        this.#setState("deregistered", event.reason ?? "released to the next host", now, out);
        break;
      case "deregister":
        if (event.sequence !== undefined) {
          this.#takeSequence(event.sequence, event.bindingExists);
        }
        this.#atHome = event.atHome === true;
        if (this.#atHome) this.#careOf = this.homeAddress;
        this.#dereg = true;
        this.#deregGiveUpAt = this.#bindingExpiresAt ?? now + this.#lifetimeUnits * 4000;
        this.#beginAttempt(
          now,
          out,
          "deregistering",
          this.#atHome ? "returned to the home link" : "deregistration requested",
        );
        break;
    }
    return out;
  }

  // ---- internals ------------------------------------------------------------------------

  #setState(to: BulState, reason: string, now: number, out: BulAction[]): void {
    if (to === this.#state && reason === this.#reason) return;
    const from = this.#state;
    this.#state = to;
    this.#reason = reason;
    if (from === to) return;
    this.history.push({ at: now, from, to, reason });
    if (this.history.length > HISTORY) this.history.shift();
    out.push({ type: "state", from, to, reason });
  }

  #beginAttempt(now: number, out: BulAction[], state: BulState, reason: string): void {
    this.#transmissions = 0;
    this.#consecutive135 = 0;
    this.#timeoutMs = this.#hadBinding || this.#dereg
      ? this.#t.initialTimeoutMs
      : this.#t.initialTimeoutFirstRegMs;
    this.#attemptFirstSeq = (this.#lastSeq + 1) & 0xffff;
    this.#attemptCount = 0;
    this.#refreshAt = null;
    this.#setState(state, reason, now, out);
    this.#send(now, out, false);
  }

  /** Sends the attempt's next BU with a fresh sequence number and arms the retransmission. */
  #send(now: number, out: BulAction[], retransmission: boolean): void {
    this.#lastSeq = (this.#lastSeq + 1) & 0xffff;
    this.#seqKnown = true;
    this.#transmissions++;
    this.#inFlight = true;
    this.#lastSentAt = now;
    this.#sentAt[this.#lastSeq & 31] = now;
    this.#attemptCount++;
    this.counters.bu_queued++;
    if (retransmission) this.counters.bu_retransmissions++;
    out.push({ type: "persistSequence", sequence: this.#lastSeq });
    const bu: BuRepr = {
      type: "bu",
      sequence: this.#lastSeq,
      flags: { ...HOME_REGISTRATION_FLAGS },
      lifetime: this.#dereg ? 0 : this.#lifetimeUnits,
      // §11.7.1: home registrations carry the Alternate Care-of Address option.
      options: [{ type: "altCoa", address: this.#careOf }],
    };
    out.push({
      type: "sendBu",
      bu,
      careOf: this.#careOf,
      homeAddress: this.homeAddress,
      homeAgent: this.homeAgent,
      atHome: this.#atHome,
      retransmission,
    });
    this.#retransmitAt = now + this.#timeoutMs;
  }

  #onTimer(now: number, out: BulAction[]): void {
    if (this.#dereg && this.#deregGiveUpAt !== null && now >= this.#deregGiveUpAt) {
      // Whatever binding the HA had has expired by now: nothing left to deregister.
      this.#stopAttempt();
      this.#deregGiveUpAt = null;
      this.#bindingExpiresAt = null;
      this.#hadBinding = false;
      this.#setState(
        "deregistered",
        "no BA to the deregistration; the binding's lifetime has run out",
        now,
        out,
      );
      return;
    }
    // Binding expired at the HA without a successful refresh.
    if (this.#bindingExpiresAt !== null && now >= this.#bindingExpiresAt) {
      this.#bindingExpiresAt = null;
      this.#refreshAt = null;
      this.#hadBinding = false;
      if (this.#state === "registered") {
        this.#setState("registering", "binding lifetime ran out before a refresh BA", now, out);
        if (!this.#inFlight) this.#beginAttempt(now, out, "registering", this.#reason);
      }
    }
    if (this.#refreshAt !== null && now >= this.#refreshAt) {
      this.#refreshAt = null;
      if (this.#state === "registered" && !this.#inFlight) {
        this.counters.bu_refreshes++;
        out.push({
          type: "log",
          level: "debug",
          message: `refreshing binding of ${this.homeAddress}`,
        });
        this.#transmissions = 0;
        this.#consecutive135 = 0;
        this.#timeoutMs = this.#t.initialTimeoutMs;
        this.#attemptFirstSeq = (this.#lastSeq + 1) & 0xffff;
        this.#attemptCount = 0;
        this.#send(now, out, false);
      }
    }
    if (this.#retransmitAt !== null && now >= this.#retransmitAt && this.#inFlight) {
      this.#timeoutMs = Math.min(this.#timeoutMs * 2, this.#t.maxTimeoutMs);
      if (this.#transmissions >= this.#t.maxTransmissions && this.#state !== "failed") {
        this.#setState(
          "failed",
          `no valid Binding Acknowledgement after ${this.#transmissions} Binding Updates` +
            (this.#dereg ? " (deregistration)" : ""),
          now,
          out,
        );
        this.#timeoutMs = this.#t.maxTimeoutMs;
      }
      this.#send(now, out, true);
    }
  }

  #stopAttempt(): void {
    this.#inFlight = false;
    this.#retransmitAt = null;
  }

  /** Checks the addressing of a BA/BRR: from the HA, to this HoA (RFC 6275 §11.7.3). */
  #fromHa(e: { src: string; dst: string; rh2HomeAddress?: string }): string | null {
    if (e.src !== this.homeAgent) return `source ${e.src} is not the home agent`;
    if (e.rh2HomeAddress !== undefined) {
      return e.rh2HomeAddress === this.homeAddress
        ? null
        : `type 2 routing header carries ${e.rh2HomeAddress}, not ${this.homeAddress}`;
    }
    // Without an RH2 only a message sent straight to the HoA on the home link is valid.
    if (this.#atHome && e.dst === this.homeAddress) return null;
    return "no type 2 routing header with the home address";
  }

  /**
   * Counts and logs (rate-limited as `<kind>-forged`) a BA/BRR that fails {@link #fromHa};
   * true when `e` is to be ignored.
   */
  #ignoredNotFromHa(
    kind: "ba" | "brr",
    e: { src: string; dst: string; rh2HomeAddress?: string },
    out: BulAction[],
  ): boolean {
    const bad = this.#fromHa(e);
    if (bad === null) return false;
    this.counters[kind === "ba" ? "ba_ignored" : "brr_ignored"]++;
    out.push({
      type: "log",
      level: "warning",
      message: `ignored ${kind.toUpperCase()}: ${bad}`,
      remote: `${kind}-forged`,
    });
    return true;
  }

  #inAttempt(seq: number): boolean {
    return ((seq - this.#attemptFirstSeq) & 0xffff) < this.#attemptCount;
  }

  #onBa(e: Extract<BulEvent, { type: "ba" }>, now: number, out: BulAction[]): void {
    const ba = e.ba;
    if (this.#ignoredNotFromHa("ba", e, out)) return;
    if (!this.#inFlight) {
      this.counters.ba_ignored++;
      out.push({
        type: "log",
        level: "info",
        message: `ignored BA seq ${ba.sequence}: no Binding Update in flight`,
        remote: "ba-stray",
      });
      return;
    }
    if (ba.status === BA_STATUS.SEQ_OUT_OF_WINDOW) {
      // §11.7.3: the BA carries the HA's last accepted sequence number; continue after it.
      this.counters.ba_seq_out_of_window++;
      this.#consecutive135++;
      out.push({
        type: "log",
        level: "info",
        message: `BA status 135 (${baStatusText(135)}): HA's sequence is ${ba.sequence}, ` +
          `resending with ${(ba.sequence + 1) & 0xffff}`,
      });
      this.#lastSeq = ba.sequence & 0xffff;
      this.#attemptFirstSeq = (this.#lastSeq + 1) & 0xffff;
      this.#attemptCount = 0;
      if (this.#consecutive135 <= this.#t.max135Immediate) {
        this.#send(now, out, true);
      } else {
        // Keep the backoff timer; the next retransmission uses the HA's number + 1.
        out.push({ type: "persistSequence", sequence: this.#lastSeq });
      }
      return;
    }
    if (!this.#inAttempt(ba.sequence)) {
      this.counters.ba_ignored++;
      out.push({
        type: "log",
        level: "info",
        message: `ignored BA seq ${ba.sequence}: not a sequence in flight ` +
          `(${this.#attemptFirstSeq}..${this.#lastSeq})`,
        remote: "ba-stray",
      });
      return;
    }
    this.#consecutive135 = 0;
    if (this.#dereg && ba.status === BA_STATUS.NOT_HOME_AGENT) {
      // §10.3.2: a deregistration for which the HA has no binding is refused with 133: there
      // is nothing left to deregister.
      this.counters.ba_refused++;
      this.#stopAttempt();
      this.#deregGiveUpAt = null;
      this.#bindingExpiresAt = null;
      this.#refreshAt = null;
      this.#hadBinding = false;
      this.#setState(
        "deregistered",
        `home agent holds no binding (status 133, ${baStatusText(133)})`,
        now,
        out,
      );
      return;
    }
    if (ba.status >= 128) {
      this.counters.ba_refused++;
      out.push({
        type: "log",
        level: "warning",
        message: `home agent refused BU seq ${ba.sequence} for ${this.homeAddress}: status ` +
          `${ba.status} (${baStatusText(ba.status)}); retrying in ` +
          `${((this.#retransmitAt ?? now) - now) / 1000} s`,
        remote: `ba-refused-${ba.status}`,
      });
      // Stay in flight; the backoff timer retries (§11.7.3 leaves the reaction to the MN).
      if (this.#state === "registered") {
        this.#setState("registering", `refresh refused: ${baStatusText(ba.status)}`, now, out);
      } else if (this.#state === "registering" || this.#state === "deregistering") {
        this.#setState(this.#state, `refused: ${baStatusText(ba.status)}`, now, out);
      }
      return;
    }
    // Accepted (0, or 1: accepted but prefix discovery necessary).
    this.counters.ba_accepted++;
    this.#stopAttempt();
    if (ba.status === BA_STATUS.ACCEPTED_PREFIX_DISCOVERY) {
      out.push({ type: "log", level: "info", message: baStatusText(ba.status) });
    }
    const d = (ba.sequence - this.#attemptFirstSeq) & 0xffff;
    const sentAt = this.#attemptCount - 1 - d < 32
      ? this.#sentAt[ba.sequence & 31]
      : this.#lastSentAt;
    if (this.#dereg) {
      this.#deregGiveUpAt = null;
      this.#bindingExpiresAt = null;
      this.#refreshAt = null;
      this.#hadBinding = false;
      this.#setState(
        "deregistered",
        `home agent acknowledged deregistration seq ${ba.sequence}`,
        now,
        out,
      );
      return;
    }
    const grantedS = ba.lifetime * 4;
    if (grantedS === 0) {
      // An accepted registration with lifetime 0 is no binding at all: keep trying.
      this.counters.ba_refused++;
      this.#bindingExpiresAt = null;
      this.#inFlight = true;
      this.#retransmitAt = now + this.#timeoutMs;
      this.#setState("registering", "home agent granted lifetime 0", now, out);
      return;
    }
    this.#hadBinding = true;
    // §11.7.3: the lifetime counts from when the BU was sent.
    this.#bindingExpiresAt = sentAt + grantedS * 1000;
    let refreshS = grantedS * this.#t.refreshFraction;
    for (const o of ba.options) {
      // §6.2.4 Binding Refresh Advice: refresh at this interval (4 s units).
      if (o.type === "bra" && o.interval > 0) refreshS = Math.min(refreshS, o.interval * 4);
    }
    this.#refreshAt = sentAt + Math.max(1, refreshS) * 1000;
    this.#setState(
      "registered",
      `home agent accepted seq ${ba.sequence}, lifetime ${grantedS} s`,
      now,
      out,
    );
  }

  #onBrr(e: Extract<BulEvent, { type: "brr" }>, now: number, out: BulAction[]): void {
    if (this.#ignoredNotFromHa("brr", e, out)) return;
    if (this.#dereg || this.#state === "deregistered") {
      this.counters.brr_ignored++;
      return;
    }
    this.counters.brr_received++;
    out.push({ type: "log", level: "info", message: `Binding Refresh Request from ${e.src}` });
    if (this.#inFlight) return; // a BU is already on its way (§11.7.4)
    this.#refreshAt = null;
    this.#transmissions = 0;
    this.#consecutive135 = 0;
    this.#timeoutMs = this.#t.initialTimeoutMs;
    this.#attemptFirstSeq = (this.#lastSeq + 1) & 0xffff;
    this.#attemptCount = 0;
    this.#send(now, out, false);
  }

  #onBe(e: Extract<BulEvent, { type: "be" }>, now: number, out: BulAction[]): void {
    if (e.src !== this.homeAgent || e.be.homeAddress !== this.homeAddress) {
      this.counters.be_ignored++;
      out.push({
        type: "log",
        level: "warning",
        message: `ignored Binding Error from ${e.src} for ${e.be.homeAddress}`,
        remote: "be-forged",
      });
      return;
    }
    this.counters.be_received++;
    if (e.be.status === BE_STATUS.UNKNOWN_HAO) {
      // §6.1.9 status 1: the HA has no binding for the HoA we used in a HAO: register again.
      out.push({
        type: "log",
        level: "warning",
        message: `Binding Error status 1 (unknown binding for Home Address destination option) ` +
          `from ${e.src}: registering again`,
      });
      if (this.#dereg || this.#state === "deregistered") return;
      this.#bindingExpiresAt = null;
      this.#refreshAt = null;
      this.#hadBinding = false;
      if (this.#inFlight) {
        this.#setState("registering", "Binding Error: home agent has no binding", now, out);
        return;
      }
      this.#beginAttempt(now, out, "registering", "Binding Error: home agent has no binding");
      return;
    }
    const text = e.be.status === BE_STATUS.UNKNOWN_MH_TYPE
      ? "unrecognized MH Type: the home agent does not understand a message we sent"
      : `status ${e.be.status}`;
    out.push({
      type: "log",
      level: "error",
      message: `Binding Error from ${e.src}: ${text}`,
      remote: `be-${e.be.status}`,
    });
  }

  /**
   * A sequence handed over by the previous host. It only moves the counter forward, unless
   * ours is a random start. `bindingExists` (default true): the previous host was registered,
   * so the HA holds a binding and the BU waits 1 s, not the first registration's 1.5 s.
   */
  #takeSequence(sequence: number, bindingExists = true): void {
    const s = sequence & 0xffff;
    this.#hadBinding = bindingExists;
    if (!this.#seqKnown || seqGreater(s, this.#lastSeq)) this.#lastSeq = s;
    this.#seqKnown = true;
  }

  #onHandover(e: Extract<BulEvent, { type: "handover" }>, now: number, out: BulAction[]): void {
    if (e.careOf !== undefined) this.#careOf = e.careOf;
    if (e.sequence !== undefined) this.#takeSequence(e.sequence, e.bindingExists);
    this.#atHome = false;
    this.#dereg = false;
    this.#deregGiveUpAt = null;
    this.#beginAttempt(
      now,
      out,
      "registering",
      e.careOf !== undefined ? `handover to care-of ${e.careOf}` : "handover: BU re-sent",
    );
  }
}
