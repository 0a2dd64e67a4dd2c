/**
 * The home agent's protocol core, sans I/O (RFC 6275 §9.5, §10.3, §10.4.1).
 *
 * `handle(event, now)` takes a received mobility message, a Duplicate Address Detection
 * result, a timer tick or persisted state, and returns the actions the wiring must carry out
 * (send a BA/BE, install/remove a binding's route + proxy ND + tunnel entry, send an
 * unsolicited NA, run DAD, persist, log). `nextDeadline()` says when to call it again. Nothing
 * here reads a clock or touches a socket: `now` is milliseconds on the caller's clock.
 *
 * @module
 */

import { inPrefix, ipv6Bytes } from "../wire/addr.ts";
import type { MobilityRepr } from "../wire/mobility.ts";
import { canonicalIPv6Fast as canonicalIPv6, formatIPv6Fast, parseIPv6Into } from "./fast_addr.ts";
import {
  type Binding,
  BindingCache,
  LIFETIME_UNIT_MS,
  type PersistedBinding,
  seqGreater,
} from "./binding_cache.ts";

/** Binding Acknowledgement status codes the home agent sends (RFC 6275 §6.1.8). */
export const HA_STATUS = {
  ACCEPTED: 0,
  UNSPECIFIED: 128,
  ADMIN_PROHIBITED: 129,
  INSUFFICIENT_RESOURCES: 130,
  HOME_REG_NOT_SUPPORTED: 131,
  NOT_HOME_SUBNET: 132,
  NOT_HOME_AGENT: 133,
  DAD_FAILED: 134,
  SEQ_OUT_OF_WINDOW: 135,
  REG_TYPE_CHANGE: 139,
} as const;

/** Binding Error status codes (RFC 6275 §6.1.9). */
export const HA_BE_STATUS = { UNKNOWN_HAO: 1, UNKNOWN_MH_TYPE: 2 } as const;

/** Binding Errors for unknown home addresses go to one source at most this often (§9.3.3). */
export const BE_INTERVAL_MS = 1000;

/** Default DAD wait: RetransTimer (1 s, RFC 4861 §10) × DupAddrDetectTransmits (1). */
export const DEFAULT_DAD_WAIT_MS = 1000;

/** Configuration of the core (a subset of the daemon's HaConfig). */
export interface HaCoreConfig {
  /** The home agent's own address on the home link. */
  haAddress: string;
  /** The home subnet prefix (RFC 6275 §10.3.1, status 132 outside it). */
  homePrefix: { prefix: string; length: number };
  /** Home addresses allowed to register; empty = any address in the home prefix (129). */
  allow: string[];
  /** Largest lifetime granted, in seconds (rounded down to 4 s units, at least one unit). */
  maxLifetime: number;
  /** strict: BA after the DAD wait; optimistic: BA at once, DAD in parallel. */
  dad: "strict" | "optimistic";
  /** DAD wait in ms (default {@linkcode DEFAULT_DAD_WAIT_MS}). */
  dadWaitMs?: number;
  /** Addresses that may never be registered as home addresses (129), e.g. the HA's own. */
  reserved?: string[];
}

/** Something that happened, handed to {@linkcode HomeAgentCore.handle}. */
export type HaEvent =
  /**
   * A mobility message whose checksum was verified (RFC 6275 §9.5.1). `src`/`dst` are the
   * IPv6 header's addresses, `homeAddress` the HAO's address, or `src` when there was no HAO.
   */
  | {
    type: "mh";
    src: string;
    dst: string;
    homeAddress: string;
    hao: boolean;
    message: MobilityRepr;
  }
  /**
   * A packet other than a mobility message arrived with a Home Address option (RFC 6275
   * §9.3.1); `src` is its source (the claimed CoA), `homeAddress` the HAO's address.
   */
  | { type: "haoPacket"; src: string; dst: string; homeAddress: string; nextHeader: number }
  /** DAD saw another node claim `homeAddress` (an NA for it, or an NS from :: for it). */
  | { type: "dadDuplicate"; homeAddress: string; evidence: string }
  /**
   * The wiring could not carry out an `install` (table full, rtnetlink error): the binding is
   * dropped and the mobile node told 130 "insufficient resources" (RFC 6275 §6.1.8). The
   * wiring skips the `sendBa`/`unsolicitedNa` that followed the failed install.
   */
  | { type: "installFailed"; homeAddress: string; error: string }
  /** The deadline from {@linkcode HomeAgentCore.nextDeadline} passed. */
  | { type: "timer" }
  /** Bindings read back from the state directory at start. */
  | { type: "restore"; bindings: PersistedBinding[] };

/** Log severity of a {@linkcode HaAction} of type `log`. */
export type HaLogLevel = "debug" | "info" | "warning" | "error";

/** Something the wiring must do, returned by {@linkcode HomeAgentCore.handle}. */
export type HaAction =
  /**
   * Send a Binding Acknowledgement from `from` to `to`; when `to` differs from `homeAddress`
   * the packet carries a type 2 routing header with `homeAddress` (RFC 6275 §6.4, §9.5.4).
   * `lifetime` is in 4-second units.
   */
  | {
    type: "sendBa";
    from: string;
    to: string;
    homeAddress: string;
    status: number;
    sequence: number;
    lifetime: number;
  }
  /** Send a Binding Error (RFC 6275 §6.1.9, §9.3.3). */
  | { type: "sendBe"; from: string; to: string; homeAddress: string; status: number }
  /**
   * Install (or update, when `previousCareOf` is set) a binding: /128 route into the tunnel
   * device, proxy ND on the home link for it (RFC 6275 §10.4.1), tunnel table HoA → CoA.
   */
  | { type: "install"; homeAddress: string; careOf: string; previousCareOf?: string }
  /** Remove everything `install` set up for `homeAddress`. */
  | { type: "remove"; homeAddress: string; careOf: string; reason: string }
  /** Multicast an unsolicited NA (O=1) for `homeAddress` to all-nodes (RFC 6275 §10.4.1). */
  | { type: "unsolicitedNa"; homeAddress: string }
  /** Start Duplicate Address Detection for `homeAddress` on the home link (RFC 4862 §5.4). */
  | { type: "startDad"; homeAddress: string }
  /** DAD for `homeAddress` is over (window elapsed, duplicate found or binding gone). */
  | { type: "stopDad"; homeAddress: string }
  /** The set of registered bindings changed: write the cache to the state directory. */
  | { type: "persist" }
  /**
   * A state change or a rejection, with its reason. `rateKey` is set when the log line is
   * triggered by remote input and must go through a rate limiter.
   */
  | {
    type: "log";
    level: HaLogLevel;
    message: string;
    fields: Record<string, unknown>;
    rateKey?: string;
    /**
     * Set on the line of a routine binding change ("registered", "moved", "deregistered",
     * "expired", "restored"): at thousands per second the wiring logs a few one by one and
     * counts the rest into a periodic summary (the status counters have every one).
     */
    summary?: HaSummaryKind;
  };

/** Kinds of binding changes whose log lines may be summarised (see the `log` action). */
export type HaSummaryKind = "registered" | "moved" | "deregistered" | "expired" | "restored";

/** A binding as reported by the control socket's `status`. */
export interface BindingStatus {
  homeAddress: string;
  careOfAddress: string;
  sequence: number;
  /** Seconds left (0 while DAD runs in strict mode). */
  lifetimeRemaining: number;
  /** Granted lifetime in seconds. */
  lifetimeGranted: number;
  state: "dad" | "registered";
  /** ISO time of the first registration. */
  registeredAt: string;
}

function isUnicastRoutable(b: Uint8Array): boolean {
  if (b[0] === 0xff) return false; // multicast
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return false; // link-local fe80::/10
  let zero = true;
  for (let i = 0; i < 15; i++) if (b[i] !== 0) zero = false;
  if (zero && (b[15] === 0 || b[15] === 1)) return false; // :: and ::1
  return true;
}

const BA_STATUS_KEYS: string[] = [];

/** The `persist` action carries nothing: one shared, frozen object. */
const PERSIST: HaAction = Object.freeze({ type: "persist" });

/**
 * The home agent state machine (RFC 6275 §9.5 and §10.3): Binding Cache, BU validation in
 * RFC order, Duplicate Address Detection on first registration, expiry.
 */
export class HomeAgentCore {
  readonly cache = new BindingCache();
  readonly #cfg: Required<HaCoreConfig>;
  readonly #maxUnits: number;
  readonly #counters: Record<string, number> = {};
  #restored = false;
  readonly #beSentAt = new Map<string, number>();
  readonly #prefixBytes: Uint8Array;
  readonly #hoaBytes = new Uint8Array(16);
  readonly #coaBytes = new Uint8Array(16);

  constructor(config: HaCoreConfig) {
    this.#cfg = {
      dadWaitMs: DEFAULT_DAD_WAIT_MS,
      reserved: [],
      ...config,
      haAddress: canonicalIPv6(config.haAddress),
      allow: config.allow.map(canonicalIPv6),
    };
    this.#cfg.reserved = [...(config.reserved ?? []).map(canonicalIPv6), this.#cfg.haAddress];
    this.#maxUnits = Math.max(1, Math.min(0xffff, Math.floor(config.maxLifetime / 4)));
    this.#prefixBytes = ipv6Bytes(config.homePrefix.prefix);
  }

  /** Largest lifetime granted, in 4-second units. */
  get maxLifetimeUnits(): number {
    return this.#maxUnits;
  }

  /** Earliest time `handle({type: "timer"})` has work to do, or undefined. */
  nextDeadline(): number | undefined {
    return this.cache.nextDeadline();
  }

  /** Event counters (BUs received, BAs by status, expiries, DAD results…). */
  counters(): Record<string, number> {
    return { ...this.#counters };
  }

  /** The bindings as the control socket reports them. */
  status(now: number): BindingStatus[] {
    return this.cache.entries().map((b) => ({
      homeAddress: b.homeAddress,
      careOfAddress: b.careOf,
      sequence: b.sequence,
      lifetimeRemaining: b.state === "registered"
        ? Math.max(0, Math.round((b.expiresAt - now) / 1000))
        : 0,
      lifetimeGranted: b.lifetimeUnits * 4,
      state: b.state,
      registeredAt: new Date(b.registeredAt).toISOString(),
    }));
  }

  /** Processes `event` at time `now` (ms); returns the actions to carry out, in order. */
  handle(event: HaEvent, now: number): HaAction[] {
    const out: HaAction[] = [];
    this.#runTimers(now, out);
    switch (event.type) {
      case "timer":
        break;
      case "mh":
        this.#mh(event, now, out);
        break;
      case "dadDuplicate":
        this.#dadDuplicate(event, now, out);
        break;
      case "restore":
        this.#restore(event.bindings, now, out);
        break;
      case "installFailed":
        this.#installFailed(event, out);
        break;
      case "haoPacket":
        this.#haoPacket(event, now, out);
        break;
    }
    return out;
  }

  #count(name: string, n = 1): void {
    this.#counters[name] = (this.#counters[name] ?? 0) + n;
  }

  #log(
    out: HaAction[],
    level: HaLogLevel,
    message: string,
    fields: Record<string, unknown>,
    rateKey?: string,
  ): void {
    out.push(
      rateKey === undefined
        ? { type: "log", level, message, fields }
        : { type: "log", level, message, fields, rateKey },
    );
  }

  /** A binding change's log line, which the wiring may fold into a summary at high rates. */
  #logChange(
    out: HaAction[],
    summary: HaSummaryKind,
    message: string,
    fields: Record<string, unknown>,
  ): void {
    out.push({ type: "log", level: "info", message, fields, summary });
  }

  #ba(
    out: HaAction[],
    b: { from: string; to: string; homeAddress: string },
    status: number,
    sequence: number,
    lifetime: number,
  ): void {
    this.#count("ba_sent");
    this.#count(BA_STATUS_KEYS[status] ??= `ba_status_${status}`);
    out.push({ type: "sendBa", ...b, status, sequence, lifetime });
  }

  #runTimers(now: number, out: HaAction[]): void {
    let changed = false;
    for (const b of this.cache.due(now)) {
      if (b.dadUntil !== undefined && b.dadUntil <= now) {
        b.dadUntil = undefined;
        out.push({ type: "stopDad", homeAddress: b.homeAddress });
        if (b.state === "dad") {
          // RFC 6275 §10.3.1: DAD passed, the registration completes now.
          b.state = "registered";
          b.expiresAt = now + b.lifetimeUnits * LIFETIME_UNIT_MS;
          this.cache.touch(b);
          this.#count("dad_passed");
          this.#count("bindings_registered");
          out.push({ type: "install", homeAddress: b.homeAddress, careOf: b.careOf });
          out.push({ type: "unsolicitedNa", homeAddress: b.homeAddress });
          this.#ba(out, this.#replyOf(b), HA_STATUS.ACCEPTED, b.sequence, b.lifetimeUnits);
          this.#logChange(
            out,
            "registered",
            "registered {homeAddress} via {careOf} (seq {sequence}, {lifetime} s) after DAD",
            this.#fields(b),
          );
          changed = true;
        } else {
          this.#count("dad_passed");
          this.#log(out, "debug", "optimistic DAD for {homeAddress} found no duplicate", {
            homeAddress: b.homeAddress,
          });
        }
      }
      if (b.state === "registered" && b.expiresAt <= now) {
        this.cache.delete(b.homeAddress);
        this.#count("bindings_expired");
        out.push({
          type: "remove",
          homeAddress: b.homeAddress,
          careOf: b.careOf,
          reason: "expired",
        });
        this.#logChange(
          out,
          "expired",
          "binding for {homeAddress} via {careOf} expired",
          this.#fields(b),
        );
        changed = true;
      }
    }
    if (changed) out.push(PERSIST);
  }

  #replyOf(b: Binding): { from: string; to: string; homeAddress: string } {
    return { from: b.haAddress, to: b.replyTo, homeAddress: b.homeAddress };
  }

  #fields(b: Binding): Record<string, unknown> {
    return {
      homeAddress: b.homeAddress,
      careOf: b.careOf,
      sequence: b.sequence,
      lifetime: b.lifetimeUnits * 4,
    };
  }

  #mh(ev: Extract<HaEvent, { type: "mh" }>, now: number, out: HaAction[]): void {
    const m = ev.message;
    if (m.type === "bu") return this.#bu(ev, m, now, out);
    if (m.type === "unknown") {
      // RFC 6275 §9.2: unknown MH Type → Binding Error status 2 to the packet's source.
      this.#count("mh_unknown_type");
      this.#count("be_sent");
      out.push({
        type: "sendBe",
        from: canonicalIPv6(ev.dst),
        to: canonicalIPv6(ev.src),
        homeAddress: ev.hao ? canonicalIPv6(ev.homeAddress) : "::",
        status: HA_BE_STATUS.UNKNOWN_MH_TYPE,
      });
      this.#log(
        out,
        "warning",
        "unknown mobility header type {mhType} from {src}: Binding Error sent",
        { mhType: m.mhType, src: ev.src },
        "mh-unknown-type",
      );
      return;
    }
    this.#count("mh_ignored");
    this.#log(out, "debug", "ignored mobility message {kind} from {src}", {
      kind: m.type,
      src: ev.src,
    }, "mh-ignored");
  }

  #bu(
    ev: Extract<HaEvent, { type: "mh" }>,
    bu: Extract<MobilityRepr, { type: "bu" }>,
    now: number,
    out: HaAction[],
  ): void {
    this.#count("bu_received");
    const src = canonicalIPv6(ev.src);
    const hoaBytes = this.#hoaBytes, coaBytes = this.#coaBytes;
    if (!parseIPv6Into(ev.homeAddress, hoaBytes)) canonicalIPv6(ev.homeAddress); // throws
    const hoa = formatIPv6Fast(hoaBytes);
    const haAddr = ev.dst === this.#cfg.haAddress ? ev.dst : canonicalIPv6(ev.dst);
    let alt: string | undefined;
    for (const o of bu.options) if (o.type === "altCoa") alt = o.address;
    if (!parseIPv6Into(alt ?? src, coaBytes)) canonicalIPv6(alt ?? src); // throws
    const coa = alt !== undefined ? formatIPv6Fast(coaBytes) : src;
    const reply = { from: haAddr, to: src, homeAddress: hoa };
    const seq = bu.sequence;
    const info = { homeAddress: hoa, careOf: coa, sequence: seq, src };
    const reject = (status: number, why: string, lastSeq = seq) =>
      this.#reject(out, reply, info, status, why, lastSeq);

    // RFC 6275 §9.5.1: the packet MUST contain a unicast routable home address.
    if (!isUnicastRoutable(hoaBytes)) {
      this.#count("bu_discarded");
      this.#log(
        out,
        "warning",
        "BU from {src} discarded: home address {homeAddress} not unicast routable",
        info,
        "bu-hoa",
      );
      return;
    }
    // The care-of address (Alt-CoA option when present) must be unicast routable too.
    if (!isUnicastRoutable(coaBytes)) {
      this.#count("bu_discarded");
      this.#log(
        out,
        "warning",
        "BU from {src} discarded: care-of address {careOf} not unicast routable",
        info,
        "bu-coa",
      );
      return;
    }
    const entry = this.cache.get(hoa);
    // §9.5.1: sequence number must be greater than the last accepted one, modulo 2^16;
    // otherwise 135 carrying the last accepted sequence number.
    if (entry !== undefined && !seqGreater(seq, entry.sequence)) {
      return reject(
        HA_STATUS.SEQ_OUT_OF_WINDOW,
        `sequence ${seq} not greater than last accepted ${entry.sequence}`,
        entry.sequence,
      );
    }
    // §9.5.1: a binding exists and the H bit differs from its home registration flag → 139.
    if (!bu.flags.home) {
      if (entry !== undefined) {
        return reject(HA_STATUS.REG_TYPE_CHANGE, "H bit clear for an existing home registration");
      }
      // No return routability / correspondent registration here: only home registrations.
      return reject(
        HA_STATUS.HOME_REG_NOT_SUPPORTED,
        "H bit clear: only home registrations are served",
      );
    }
    // §6.1.7: a home registration sets A; this home agent answers every BU and insists on it.
    if (!bu.flags.ack) {
      return reject(HA_STATUS.UNSPECIFIED, "A bit clear in a home registration");
    }
    // §9.5.1 / §10.3.2: lifetime 0 or CoA == HoA is a deregistration.
    if (bu.lifetime === 0 || coa === hoa) {
      if (entry === undefined) {
        return reject(HA_STATUS.NOT_HOME_AGENT, "deregistration without a binding");
      }
      this.cache.delete(hoa);
      if (entry.dadUntil !== undefined) out.push({ type: "stopDad", homeAddress: hoa });
      if (entry.state === "registered") {
        out.push({
          type: "remove",
          homeAddress: hoa,
          careOf: entry.careOf,
          reason: "deregistered",
        });
        out.push(PERSIST);
      }
      this.#count("bindings_deregistered");
      this.#ba(out, reply, HA_STATUS.ACCEPTED, seq, 0);
      this.#logChange(
        out,
        "deregistered",
        "deregistered {homeAddress} (was via {previous}, seq {sequence})",
        { ...info, previous: entry.careOf },
      );
      return;
    }
    // §10.3.1: the home address must be on-link for the home prefix.
    if (!inPrefix(hoaBytes, this.#prefixBytes, this.#cfg.homePrefix.length)) {
      return reject(HA_STATUS.NOT_HOME_SUBNET, "home address outside the home prefix");
    }
    if (this.#cfg.reserved.includes(hoa)) {
      return reject(HA_STATUS.ADMIN_PROHIBITED, "home address reserved");
    }
    if (this.#cfg.allow.length > 0 && !this.#cfg.allow.includes(hoa)) {
      return reject(HA_STATUS.ADMIN_PROHIBITED, "home address not in the allow list");
    }
    const units = Math.min(bu.lifetime, this.#maxUnits);
    if (entry !== undefined) {
      const previous = entry.careOf;
      // keep the strings already held when the text is the same: a refresh then leaves only
      // short-lived garbage (RSS at signaling rates is mostly V8's young generation growing)
      if (coa !== previous) entry.careOf = coa;
      if (src !== entry.replyTo) entry.replyTo = src;
      if (haAddr !== entry.haAddress) entry.haAddress = haAddr;
      entry.sequence = seq;
      entry.lifetimeUnits = units;
      if (entry.state === "dad") {
        // Still in DAD (strict): the BA after the wait answers this newer BU.
        this.#log(out, "debug", "BU seq {sequence} for {homeAddress} while DAD runs", info);
        return;
      }
      // Re-registration: no DAD (RFC 6275 §10.3.1 only asks for it on the first one).
      entry.expiresAt = now + units * LIFETIME_UNIT_MS;
      this.cache.touch(entry);
      if (previous !== coa) {
        out.push({ type: "install", homeAddress: hoa, careOf: coa, previousCareOf: previous });
      }
      out.push(PERSIST);
      this.#count("bindings_refreshed");
      this.#ba(out, reply, HA_STATUS.ACCEPTED, seq, units);
      if (previous !== coa) {
        this.#count("bindings_moved");
        this.#logChange(
          out,
          "moved",
          "moved {homeAddress} from {previous} to {careOf} (seq {sequence}, {lifetime} s)",
          { ...info, previous, lifetime: units * 4 },
        );
      } else {
        // a refresh changes no state but the expiry: routine, counted, logged at debug
        this.#log(
          out,
          "debug",
          "refreshed {homeAddress} via {careOf} (seq {sequence}, {lifetime} s)",
          {
            ...info,
            lifetime: units * 4,
          },
        );
      }
      return;
    }
    // First registration: Duplicate Address Detection on the home link (§10.3.1).
    const dadUntil = now + this.#cfg.dadWaitMs;
    const b: Binding = {
      homeAddress: hoa,
      careOf: coa,
      replyTo: src,
      haAddress: haAddr,
      sequence: seq,
      lifetimeUnits: units,
      // strict: counts from the BA after DAD (re-set then); optimistic: from now
      expiresAt: (this.#cfg.dad === "strict" ? dadUntil : now) + units * LIFETIME_UNIT_MS,
      registeredAt: now,
      state: this.#cfg.dad === "strict" ? "dad" : "registered",
      dadUntil,
    };
    this.cache.set(b);
    this.#count("dad_started");
    out.push({ type: "startDad", homeAddress: hoa });
    if (this.#cfg.dad === "strict") {
      this.#log(out, "info", "first BU for {homeAddress} via {careOf}: DAD before the BA", info);
      return;
    }
    this.#count("bindings_registered");
    out.push({ type: "install", homeAddress: hoa, careOf: coa });
    out.push({ type: "unsolicitedNa", homeAddress: hoa });
    out.push(PERSIST);
    this.#ba(out, reply, HA_STATUS.ACCEPTED, seq, units);
    this.#logChange(
      out,
      "registered",
      "registered {homeAddress} via {careOf} (seq {sequence}, {lifetime} s), optimistic DAD running",
      { ...info, lifetime: units * 4 },
    );
  }

  /** A BA refusing the BU (`status` ≥ 128) and its rate-limited log line. */
  #reject(
    out: HaAction[],
    reply: { from: string; to: string; homeAddress: string },
    info: Record<string, unknown>,
    status: number,
    why: string,
    lastSeq: number,
  ): void {
    this.#ba(out, reply, status, lastSeq, 0);
    this.#log(out, "warning", `BU for {homeAddress} from {src} rejected (${status}): ${why}`, {
      ...info,
      status,
    }, `bu-reject-${status}`);
  }

  #dadDuplicate(ev: Extract<HaEvent, { type: "dadDuplicate" }>, _now: number, out: HaAction[]) {
    const hoa = canonicalIPv6(ev.homeAddress);
    const b = this.cache.get(hoa);
    if (b === undefined || b.dadUntil === undefined) {
      this.#log(out, "debug", "late DAD evidence for {homeAddress} ignored: {evidence}", {
        homeAddress: hoa,
        evidence: ev.evidence,
      });
      return;
    }
    this.cache.delete(hoa);
    this.#count("dad_duplicates");
    out.push({ type: "stopDad", homeAddress: hoa });
    if (b.state === "dad") {
      // Strict: RFC 6275 §10.3.1, status 134.
      this.#ba(out, this.#replyOf(b), HA_STATUS.DAD_FAILED, b.sequence, 0);
      this.#log(out, "warning", "DAD failed for {homeAddress}: {evidence}; BA 134 sent", {
        homeAddress: hoa,
        evidence: ev.evidence,
        careOf: b.careOf,
      });
      return;
    }
    // Optimistic: the MN already has its BA; drop the binding and say so loudly.
    out.push({ type: "remove", homeAddress: hoa, careOf: b.careOf, reason: "duplicate address" });
    out.push(PERSIST);
    this.#log(
      out,
      "error",
      "DUPLICATE ADDRESS: {homeAddress} is in use on the home link ({evidence}); binding via {careOf} dropped after an optimistic BA",
      { homeAddress: hoa, evidence: ev.evidence, careOf: b.careOf },
    );
  }

  /**
   * RFC 6275 §9.3.1: a HAO without a Binding Cache entry for that home address and source →
   * Binding Error status 1, rate-limited per source (§9.3.3: here one per second). With a
   * home registration for it the packet is still not deliverable (route optimisation is not
   * served): counted only.
   */
  #haoPacket(ev: Extract<HaEvent, { type: "haoPacket" }>, now: number, out: HaAction[]): void {
    const hoa = canonicalIPv6(ev.homeAddress);
    const src = canonicalIPv6(ev.src);
    const b = this.cache.get(hoa);
    if (b !== undefined && b.careOf === src) {
      this.#count("hao_packets_bound");
      return;
    }
    this.#count("hao_packets_unbound");
    const last = this.#beSentAt.get(src);
    if (last !== undefined && now - last < BE_INTERVAL_MS) return;
    if (this.#beSentAt.size >= 4096) {
      for (const [k, t] of this.#beSentAt) if (now - t >= BE_INTERVAL_MS) this.#beSentAt.delete(k);
    }
    this.#beSentAt.set(src, now);
    this.#count("be_sent");
    out.push({
      type: "sendBe",
      from: canonicalIPv6(ev.dst),
      to: src,
      homeAddress: hoa,
      status: HA_BE_STATUS.UNKNOWN_HAO,
    });
    this.#log(
      out,
      "warning",
      "packet (next header {nextHeader}) from {src} with home address {homeAddress} but no binding: Binding Error 1 sent",
      { src, homeAddress: hoa, nextHeader: ev.nextHeader },
      "be-unknown-hao",
    );
  }

  #installFailed(ev: Extract<HaEvent, { type: "installFailed" }>, out: HaAction[]): void {
    const hoa = canonicalIPv6(ev.homeAddress);
    const b = this.cache.delete(hoa);
    if (b === undefined) return;
    this.#count("install_failed");
    if (b.dadUntil !== undefined) out.push({ type: "stopDad", homeAddress: hoa });
    out.push({ type: "remove", homeAddress: hoa, careOf: b.careOf, reason: "install failed" });
    out.push(PERSIST);
    this.#ba(out, this.#replyOf(b), HA_STATUS.INSUFFICIENT_RESOURCES, b.sequence, 0);
    this.#log(out, "error", "binding for {homeAddress} via {careOf} dropped: {error}", {
      homeAddress: hoa,
      careOf: b.careOf,
      error: ev.error,
    }, "install-failed");
  }

  #restore(list: PersistedBinding[], now: number, out: HaAction[]): void {
    if (this.#restored) {
      this.#log(out, "warning", "state restore ignored: already restored", {});
      return;
    }
    this.#restored = true;
    let dropped = false;
    for (const p of list) {
      const hoa = canonicalIPv6(p.homeAddress);
      const why = p.expiresAt <= now
        ? "expired while stopped"
        : !inPrefix(hoa, this.#cfg.homePrefix.prefix, this.#cfg.homePrefix.length)
        ? "outside the home prefix"
        : this.#cfg.allow.length > 0 && !this.#cfg.allow.includes(hoa)
        ? "not in the allow list"
        : this.cache.get(hoa) !== undefined
        ? "duplicate record"
        : undefined;
      if (why !== undefined) {
        dropped = true;
        this.#log(out, "info", "persisted binding for {homeAddress} not restored: {why}", {
          homeAddress: hoa,
          why,
        });
        continue;
      }
      const b: Binding = {
        ...p,
        homeAddress: hoa,
        careOf: canonicalIPv6(p.careOf),
        replyTo: canonicalIPv6(p.replyTo),
        haAddress: canonicalIPv6(p.haAddress),
        state: "registered",
      };
      this.cache.set(b);
      this.#count("bindings_restored");
      out.push({ type: "install", homeAddress: hoa, careOf: b.careOf });
      out.push({ type: "unsolicitedNa", homeAddress: hoa });
      this.#logChange(
        out,
        "restored",
        "restored {homeAddress} via {careOf} (seq {sequence}, {remaining} s left)",
        {
          ...this.#fields(b),
          remaining: Math.round((b.expiresAt - now) / 1000),
        },
      );
    }
    if (dropped) out.push(PERSIST);
  }
}
