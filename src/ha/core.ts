/**
 * The home agent's protocol core, sans I/O (RFC 6275 §9.5, §10.3, §10.4.1; RFC 4877 §4).
 *
 * `handle(event, now)` takes a received mobility message, a Duplicate Address Detection
 * result, a timer tick or persisted state, and returns the actions the wiring must carry out
 * (send a BA/BE/Parameter Problem, install/remove a binding's route + proxy ND + tunnel entry,
 * send an unsolicited NA, run DAD, persist, log). `nextDeadline()` says when to call it again.
 * Nothing here reads a clock or touches a socket: `now` is milliseconds on the caller's clock
 * (the daemon's is monotonic).
 *
 * Binding Update checks, in order (each refusal is counted and logged, rate-limited):
 * 1. the destination is the home agent address (`haAddress`), else dropped (a BA from another
 *    of the host's addresses would not match the mobile node's Security Policy);
 * 2. the home address is unicast routable (§9.5.1), else dropped;
 * 3. ESP (RFC 4877 §4, RFC 6275 §5.1): a BU for a home address with a Security Association,
 *    or any BU with `requireEsp`, must have come under ESP, else dropped;
 * 4. sequence number greater than the last accepted one (§9.5.1), else 135;
 * 5. H set (§9.5.1): without H the BU is a correspondent registration, which needs a valid
 *    Binding Authorization Data option (§9.5.1, return routability §5.2) — this home agent
 *    runs no return routability (route optimisation administratively disabled, §8.2), so no
 *    such BU can be valid: 139 when the home address has a home registration, else dropped;
 * 6. A set, else 128; R (RFC 3963 mobile router) → 140; P (RFC 5213 proxy registration) → 152;
 * 7. lifetime 0 or care-of address = home address: deregistration (§10.3.2), 133 without entry;
 * 8. home address in the home prefix (§10.3.1) → else 132; not reserved (the host's own
 *    addresses, the Subnet-Router anycast address (RFC 4291 §2.6.1) and the reserved subnet
 *    anycast addresses (RFC 2526 §2)) and in the allow list → else 129;
 * 9. care-of address valid → else 174 "invalid care-of address" (RFC 6275 §6.1.8): unicast
 *    routable, outside the home prefix, not one of the host's addresses, not a registered
 *    home address. A care-of address that is itself a home address would make the data path
 *    encapsulate a packet towards another binding, whose tunnel sends it back: a loop;
 * 10. L set (§10.3.1): the link-local address with the home address's interface identifier is
 *    defended too; 129 when it is the host's or another binding's.
 *
 * @module
 */

import { inPrefix, ipv6Bytes } from "../wire/addr.ts";
import { BA_STATUS, BE_STATUS, type MobilityRepr } from "../wire/mobility.ts";
import {
  canonicalIPv6Fast as canonicalIPv6,
  formatIPv6Fast,
  parseIPv6Into,
} from "../wire/fast_addr.ts";
import {
  type Binding,
  BindingCache,
  LIFETIME_UNIT_MS,
  type PersistedBinding,
  seqGreater,
} from "./binding_cache.ts";

/** Error messages (Binding Errors, Parameter Problems) to one source at most this often. */
export const BE_INTERVAL_MS = 1000;

/**
 * Error messages of every kind and to every destination together: a token bucket of this
 * rate (per second) and burst (RFC 6275 §9.3.3 "rate-limited", RFC 4443 §2.4 (f)). With only
 * the per-source limit, BUs or HAO packets from spoofed sources would make the home agent a
 * reflector.
 */
export const ERROR_RATE = { perSecond: 10, burst: 20 } as const;

/** Sources whose last error message is remembered (least recently sent forgotten first). */
export const ERROR_SOURCES = 4096;

/** Default DAD wait: RetransTimer (1 s, RFC 4861 §10) × DupAddrDetectTransmits (1). */
export const DEFAULT_DAD_WAIT_MS = 1000;

/** Unsolicited NAs per registration: MAX_NEIGHBOR_ADVERTISEMENT (RFC 4861 §10). */
export const MAX_NEIGHBOR_ADVERTISEMENT = 3;

/** Spacing of the unsolicited NAs: RetransTimer (RFC 4861 §7.2.6, §10). */
export const NA_INTERVAL_MS = 1000;

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
  /**
   * Every address of this host (all interfaces): never a care-of address (174), never a home
   * address (129). `setOwnAddresses` replaces the list.
   */
  ownAddresses?: string[];
  /** Home addresses that have an ESP Security Association: their BUs must come under ESP. */
  espHomeAddresses?: string[];
  /** Every BU must come under ESP (`--require-esp`). */
  requireEsp?: boolean;
  /** Rate of error messages (default {@linkcode ERROR_RATE}). */
  errorRate?: { perSecond: number; burst: number };
}

/** How a mobility message arrived: under ESP with this SPI (RFC 4303), or not. */
export type Protection = { spi: number } | false;

/** Something that happened, handed to {@linkcode HomeAgentCore.handle}. */
export type HaEvent =
  /**
   * A mobility message whose checksum was verified (RFC 6275 §9.5.1). `src`/`dst` are the
   * IPv6 header's addresses, `homeAddress` the HAO's address, or `src` when there was no HAO.
   * `protected` tells whether it came out of ESP (RFC 4877 §4); absent means not.
   */
  | {
    type: "mh";
    src: string;
    dst: string;
    homeAddress: string;
    hao: boolean;
    message: MobilityRepr;
    protected?: Protection;
  }
  /**
   * A packet other than a mobility message arrived with a Home Address option (RFC 6275
   * §9.3.1); `src` is its source (the claimed CoA), `homeAddress` the HAO's address.
   */
  | { type: "haoPacket"; src: string; dst: string; homeAddress: string; nextHeader: number }
  /**
   * A mobility header with a bad Payload Proto or a Header Len too short for its type
   * (RFC 6275 §9.2): answer with ICMPv6 Parameter Problem code 0 pointing at the field, sent
   * to the packet's source. `pointer` counts from the start of `invoking` (the IPv6 header).
   */
  | { type: "paramProblem"; src: string; dst: string; pointer: number; invoking: Uint8Array }
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
  /** Bindings read back from the state directory at start (times on the caller's clock). */
  | { type: "restore"; bindings: PersistedBinding[] };

/** Log severity of a {@linkcode HaAction} of type `log`. */
export type HaLogLevel = "debug" | "info" | "warning" | "error";

/** Something the wiring must do, returned by {@linkcode HomeAgentCore.handle}. */
export type HaAction =
  /**
   * Send a Binding Acknowledgement from `from` to `to`; when `to` differs from `homeAddress`
   * the packet carries a type 2 routing header with `homeAddress` (RFC 6275 §6.4, §9.5.4).
   * `lifetime` is in 4-second units. `protect`: under the home address's outbound ESP SA,
   * because the BU it answers came under ESP (RFC 4877 §4).
   */
  | {
    type: "sendBa";
    from: string;
    to: string;
    homeAddress: string;
    status: number;
    sequence: number;
    lifetime: number;
    protect: boolean;
  }
  /** Send a Binding Error (RFC 6275 §6.1.9, §9.3.3), never under ESP. */
  | { type: "sendBe"; from: string; to: string; homeAddress: string; status: number }
  /** Send ICMPv6 Parameter Problem code 0 (RFC 4443 §3.4) about `invoking`. */
  | { type: "sendParamProblem"; from: string; to: string; pointer: number; invoking: Uint8Array }
  /**
   * Install (or update, when `previousCareOf` is set) a binding: /128 route into the tunnel
   * device, proxy ND on the home link for it (RFC 6275 §10.4.1) and for `linkLocal` when set
   * (L bit, §10.3.1), tunnel table HoA → CoA.
   */
  | {
    type: "install";
    homeAddress: string;
    careOf: string;
    previousCareOf?: string;
    linkLocal?: string;
  }
  /** Remove everything `install` set up for `homeAddress`. */
  | { type: "remove"; homeAddress: string; careOf: string; reason: string }
  /**
   * Multicast an unsolicited NA for `homeAddress` (and `linkLocal`) to all-nodes: Override set,
   * Router clear (RFC 6275 §10.4.1). Repeated up to MAX_NEIGHBOR_ADVERTISEMENT times.
   */
  | { type: "unsolicitedNa"; homeAddress: string; linkLocal?: string }
  /** Start Duplicate Address Detection for `homeAddress` (and `linkLocal`) (RFC 4862 §5.4). */
  | { type: "startDad"; homeAddress: string; linkLocal?: string }
  /** DAD for `homeAddress` (and `linkLocal`) is over (window elapsed, duplicate or gone). */
  | { type: "stopDad"; homeAddress: string; linkLocal?: string }
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
  /** The link-local address defended too (L bit). */
  linkLocal?: string;
  /** Whether the last accepted BU came under ESP. */
  protected: boolean;
}

/** False for multicast, link-local, loopback, unspecified and IPv4-mapped addresses. */
export function isUnicastRoutable(b: Uint8Array): boolean {
  if (b[0] === 0xff) return false; // multicast
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return false; // link-local fe80::/10
  let zero = true;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) zero = false;
  if (zero && b[10] === 0xff && b[11] === 0xff) return false; // ::ffff:0:0/96 (RFC 4291 §2.5.5.2)
  for (let i = 10; i < 15; i++) if (b[i] !== 0) zero = false;
  if (zero && (b[15] === 0 || b[15] === 1)) return false; // :: and ::1
  return true;
}

function bit(b: Uint8Array, i: number): number {
  return (b[i >> 3] >> (7 - (i & 7))) & 1;
}

/**
 * Why `b` (inside a prefix of `length` bits) is a reserved subnet anycast address, or
 * undefined: the Subnet-Router anycast address, every bit after the prefix zero (RFC 4291
 * §2.6.1), or one of the 128 reserved subnet anycast addresses of RFC 2526 §2 — for a /64
 * (EUI-64 interface identifiers) the identifiers fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff
 * (universal/local bit zero), for other lengths the highest 128 addresses of the subnet.
 */
export function reservedAnycast(b: Uint8Array, length: number): string | undefined {
  if (length >= 128) return undefined;
  let zeros = true;
  for (let i = length; i < 128 && zeros; i++) if (bit(b, i) !== 0) zeros = false;
  if (zeros) return "the Subnet-Router anycast address (RFC 4291 §2.6.1)";
  if (length > 121) return undefined;
  let ones = true;
  for (let i = length; i < 121 && ones; i++) {
    // EUI-64 format (a /64): the universal/local bit, bit 70, is 0 in the reserved IDs
    const want = length === 64 && i === 70 ? 0 : 1;
    if (bit(b, i) !== want) ones = false;
  }
  return ones ? "a reserved subnet anycast address (RFC 2526 §2)" : undefined;
}

/** The link-local address fe80::/64 + the interface identifier of `hoa` (RFC 4291 §2.5.6). */
export function linkLocalOf(hoa: Uint8Array): string {
  const ll = new Uint8Array(16);
  ll[0] = 0xfe;
  ll[1] = 0x80;
  for (let i = 8; i < 16; i++) ll[i] = hoa[i];
  return formatIPv6Fast(ll);
}

/**
 * A token bucket for all error messages plus the time of the last one per source, in a map
 * kept in sending order (the least recently served source is the first key): both O(1) per
 * message and the map bounded by {@linkcode ERROR_SOURCES}.
 */
class ErrorLimiter {
  #tokens: number;
  #at = -Infinity;
  readonly #last = new Map<string, number>();
  constructor(readonly perSecond: number, readonly burst: number) {
    this.#tokens = burst;
  }

  /** Whether an error message to `src` may go at `now`; takes a token when it may. */
  allow(src: string, now: number): "ok" | "source" | "global" {
    const last = this.#last.get(src);
    if (last !== undefined && now - last < BE_INTERVAL_MS) return "source";
    if (this.#at !== -Infinity) {
      this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#at) * this.perSecond / 1000);
    }
    this.#at = now;
    if (this.#tokens < 1) return "global";
    this.#tokens -= 1;
    if (last !== undefined) this.#last.delete(src); // re-inserted last: most recent
    this.#last.set(src, now);
    if (this.#last.size > ERROR_SOURCES) this.#last.delete(this.#last.keys().next().value!);
    return "ok";
  }

  /** Sources remembered (tests). */
  get sources(): number {
    return this.#last.size;
  }
}

const BA_STATUS_KEYS: string[] = [];

/** The `persist` action carries nothing: one shared, frozen object. */
const PERSIST: HaAction = Object.freeze({ type: "persist" });

type MhEvent = Extract<HaEvent, { type: "mh" }>;
type Reply = { from: string; to: string; homeAddress: string; protect: boolean };

/**
 * The home agent state machine (RFC 6275 §9.5 and §10.3): Binding Cache, BU validation in
 * RFC order, Duplicate Address Detection on first registration, unsolicited NAs, expiry.
 */
export class HomeAgentCore {
  readonly cache = new BindingCache();
  readonly #cfg: Required<HaCoreConfig>;
  readonly #maxUnits: number;
  readonly #counters: Record<string, number> = {};
  #restored = false;
  readonly #errors: ErrorLimiter;
  readonly #prefixBytes: Uint8Array;
  readonly #hoaBytes = new Uint8Array(16);
  readonly #coaBytes = new Uint8Array(16);
  readonly #srcBytes = new Uint8Array(16);
  readonly #reserved: Set<string>;
  #own = new Set<string>();
  readonly #allow: Set<string>;
  readonly #esp: Set<string>;
  /** Link-local address → the home address whose binding defends it (L bit). */
  readonly #llOwner = new Map<string, string>();

  constructor(config: HaCoreConfig) {
    this.#cfg = {
      dadWaitMs: DEFAULT_DAD_WAIT_MS,
      reserved: [],
      ownAddresses: [],
      espHomeAddresses: [],
      requireEsp: false,
      errorRate: ERROR_RATE,
      ...config,
      haAddress: canonicalIPv6(config.haAddress),
      allow: config.allow.map(canonicalIPv6),
    };
    this.#reserved = new Set([
      ...(config.reserved ?? []).map(canonicalIPv6),
      this.#cfg.haAddress,
    ]);
    this.setOwnAddresses(config.ownAddresses ?? []);
    this.#allow = new Set(this.#cfg.allow);
    this.#esp = new Set((config.espHomeAddresses ?? []).map(canonicalIPv6));
    this.#maxUnits = Math.max(1, Math.min(0xffff, Math.floor(config.maxLifetime / 4)));
    this.#prefixBytes = ipv6Bytes(config.homePrefix.prefix);
    this.#errors = new ErrorLimiter(this.#cfg.errorRate.perSecond, this.#cfg.errorRate.burst);
  }

  /** Replaces the host's own addresses (never care-of, never home addresses). */
  setOwnAddresses(addresses: readonly string[]): void {
    this.#own = new Set(addresses.map(canonicalIPv6));
    this.#own.add(this.#cfg.haAddress);
  }

  /** Largest lifetime granted, in 4-second units. */
  get maxLifetimeUnits(): number {
    return this.#maxUnits;
  }

  /** Sources the error rate limiter remembers (bounded by {@linkcode ERROR_SOURCES}). */
  get errorSources(): number {
    return this.#errors.sources;
  }

  /** Earliest time `handle({type: "timer"})` has work to do, or undefined. */
  nextDeadline(): number | undefined {
    return this.cache.nextDeadline();
  }

  /** Event counters (BUs received, BAs by status, expiries, DAD results…). */
  counters(): Record<string, number> {
    return { ...this.#counters };
  }

  /**
   * The bindings as the control socket reports them; `wallOffset` turns the caller's clock
   * into the wall clock for `registeredAt` (default 0: the caller's clock is the wall clock).
   */
  status(now: number, wallOffset = 0): BindingStatus[] {
    return this.cache.entries().map((b) => {
      const s: BindingStatus = {
        homeAddress: b.homeAddress,
        careOfAddress: b.careOf,
        sequence: b.sequence,
        lifetimeRemaining: b.state === "registered"
          ? Math.max(0, Math.round((b.expiresAt - now) / 1000))
          : 0,
        lifetimeGranted: b.lifetimeUnits * 4,
        state: b.state,
        registeredAt: new Date(b.registeredAt + wallOffset).toISOString(),
        protected: b.protected === true,
      };
      if (b.linkLocal !== undefined) s.linkLocal = b.linkLocal;
      return s;
    });
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
      case "paramProblem":
        this.#paramProblem(event, now, out);
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

  #ba(out: HaAction[], r: Reply, status: number, sequence: number, lifetime: number): void {
    this.#count("ba_sent");
    this.#count(BA_STATUS_KEYS[status] ??= `ba_status_${status}`);
    if (r.protect) this.#count("ba_protected");
    out.push({
      type: "sendBa",
      from: r.from,
      to: r.to,
      homeAddress: r.homeAddress,
      status,
      sequence,
      lifetime,
      protect: r.protect,
    });
  }

  /** Whether an error message to `to` may be sent now (global and per-source limits). */
  #errorAllowed(to: string, now: number, what: string): boolean {
    const v = this.#errors.allow(to, now);
    if (v === "ok") return true;
    this.#count(v === "global" ? `${what}_rate_limited` : `${what}_source_limited`);
    return false;
  }

  #runTimers(now: number, out: HaAction[]): void {
    let changed = false;
    for (const b of this.cache.due(now)) {
      if (b.dadUntil !== undefined && b.dadUntil <= now) {
        b.dadUntil = undefined;
        out.push(this.#nd("stopDad", b.homeAddress, b));
        if (b.state === "dad") {
          // RFC 6275 §10.3.1: DAD passed, the registration completes now.
          b.state = "registered";
          b.expiresAt = now + b.lifetimeUnits * LIFETIME_UNIT_MS;
          this.#startNa(b, now);
          this.cache.touch(b);
          this.#count("dad_passed");
          this.#count("bindings_registered");
          out.push(this.#installOf(b));
          out.push(this.#nd("unsolicitedNa", b.homeAddress, b));
          this.#ba(out, this.#replyOf(b), BA_STATUS.ACCEPTED, b.sequence, b.lifetimeUnits);
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
        this.#drop(b);
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
        continue;
      }
      if (b.naAt !== undefined && b.naAt <= now && b.state === "registered") {
        // RFC 4861 §7.2.6 / RFC 6275 §10.4.1: repeat the unsolicited NA, RetransTimer apart
        out.push(this.#nd("unsolicitedNa", b.homeAddress, b));
        this.#count("unsolicited_na_repeated");
        const left = (b.naLeft ?? 1) - 1;
        b.naLeft = left;
        b.naAt = left > 0 ? now + NA_INTERVAL_MS : undefined;
        if (b.naAt !== undefined) this.cache.touch(b);
      }
    }
    if (changed) out.push(PERSIST);
  }

  /** Schedules the repeats of the unsolicited NA just sent for `b`. */
  #startNa(b: Binding, now: number): void {
    b.naLeft = MAX_NEIGHBOR_ADVERTISEMENT - 1;
    b.naAt = b.naLeft > 0 ? now + NA_INTERVAL_MS : undefined;
  }

  /** Removes `b` from the cache and frees its link-local address. */
  #drop(b: Binding): void {
    this.cache.delete(b.homeAddress);
    if (b.linkLocal !== undefined && this.#llOwner.get(b.linkLocal) === b.homeAddress) {
      this.#llOwner.delete(b.linkLocal);
    }
  }

  /** An ND action for `homeAddress` and, with the L bit, `b`'s link-local address. */
  #nd(type: "unsolicitedNa" | "startDad" | "stopDad", homeAddress: string, b: Binding): HaAction {
    return b.linkLocal === undefined
      ? { type, homeAddress }
      : { type, homeAddress, linkLocal: b.linkLocal };
  }

  #installOf(b: Binding, previousCareOf?: string): HaAction {
    const a: Extract<HaAction, { type: "install" }> = {
      type: "install",
      homeAddress: b.homeAddress,
      careOf: b.careOf,
    };
    if (previousCareOf !== undefined) a.previousCareOf = previousCareOf;
    if (b.linkLocal !== undefined) a.linkLocal = b.linkLocal;
    return a;
  }

  #replyOf(b: Binding): Reply {
    return {
      from: b.haAddress,
      to: b.replyTo,
      homeAddress: b.homeAddress,
      protect: b.protected === true,
    };
  }

  #fields(b: Binding): Record<string, unknown> {
    return {
      homeAddress: b.homeAddress,
      careOf: b.careOf,
      sequence: b.sequence,
      lifetime: b.lifetimeUnits * 4,
    };
  }

  #mh(ev: MhEvent, now: number, out: HaAction[]): void {
    const m = ev.message;
    // Only messages to the home agent address (`--address`) are served: a BA from another of
    // the host's addresses would not match the mobile node's Security Policy (RFC 4877 §4),
    // and a Binding Error from it would come from an address the mobile node never used.
    const dst = ev.dst === this.#cfg.haAddress ? ev.dst : canonicalIPv6(ev.dst);
    if (dst !== this.#cfg.haAddress) {
      this.#count("mh_wrong_destination");
      this.#log(
        out,
        "warning",
        "mobility message from {src} to {dst} dropped: not the home agent address {address}",
        { src: ev.src, dst, address: this.#cfg.haAddress },
        "mh-wrong-destination",
      );
      return;
    }
    if (m.type === "bu") return this.#bu(ev, m, now, out);
    if (m.type === "unknown") {
      // RFC 6275 §9.2: unknown MH Type → Binding Error status 2 to the packet's source.
      this.#count("mh_unknown_type");
      const to = canonicalIPv6(ev.src);
      if (!parseIPv6Into(to, this.#srcBytes) || !isUnicastRoutable(this.#srcBytes)) return;
      if (!this.#errorAllowed(to, now, "be")) return;
      this.#count("be_sent");
      out.push({
        type: "sendBe",
        from: dst,
        to,
        homeAddress: ev.hao ? canonicalIPv6(ev.homeAddress) : "::",
        status: BE_STATUS.UNKNOWN_MH_TYPE,
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

  #discard(out: HaAction[], counter: string, why: string, info: Record<string, unknown>): void {
    this.#count("bu_discarded");
    this.#count(counter);
    this.#log(out, "warning", `BU for {homeAddress} from {src} dropped: ${why}`, info, counter);
  }

  #bu(
    ev: MhEvent,
    bu: Extract<MobilityRepr, { type: "bu" }>,
    now: number,
    out: HaAction[],
  ): void {
    this.#count("bu_received");
    const src = canonicalIPv6(ev.src);
    const hoaBytes = this.#hoaBytes, coaBytes = this.#coaBytes;
    if (!parseIPv6Into(ev.homeAddress, hoaBytes)) canonicalIPv6(ev.homeAddress); // throws
    const hoa = formatIPv6Fast(hoaBytes);
    const haAddr = this.#cfg.haAddress; // #mh checked the destination
    let alt: string | undefined;
    for (const o of bu.options) if (o.type === "altCoa") alt = o.address;
    if (!parseIPv6Into(alt ?? src, coaBytes)) canonicalIPv6(alt ?? src); // throws
    const coa = alt !== undefined ? formatIPv6Fast(coaBytes) : src;
    const prot = ev.protected !== undefined && ev.protected !== false;
    const reply: Reply = { from: haAddr, to: src, homeAddress: hoa, protect: prot };
    const seq = bu.sequence;
    const info: Record<string, unknown> = { homeAddress: hoa, careOf: coa, sequence: seq, src };
    if (prot) info.spi = (ev.protected as { spi: number }).spi;
    const reject = (status: number, why: string, lastSeq = seq) =>
      this.#reject(out, reply, info, status, why, lastSeq);

    // RFC 6275 §9.5.1: the packet MUST contain a unicast routable home address.
    if (!isUnicastRoutable(hoaBytes)) {
      return this.#discard(out, "bu_bad_home_address", "home address not unicast routable", info);
    }
    // RFC 4877 §4, RFC 6275 §5.1: BUs for a home address with an SA only under ESP.
    if (!prot && (this.#cfg.requireEsp || this.#esp.has(hoa))) {
      return this.#discard(
        out,
        "bu_unprotected_dropped",
        this.#esp.has(hoa)
          ? "not under ESP, and this home address has a Security Association (RFC 4877 §4)"
          : "not under ESP (--require-esp)",
        info,
      );
    }
    // the BA goes to the packet's source: never to a multicast or unspecified one
    if (!parseIPv6Into(src, this.#srcBytes) || !isUnicastRoutable(this.#srcBytes)) {
      return this.#discard(out, "bu_bad_source", "source not unicast routable", info);
    }
    const entry = this.cache.get(hoa);
    // §9.5.1: sequence number must be greater than the last accepted one, modulo 2^16;
    // otherwise 135 carrying the last accepted sequence number.
    if (entry !== undefined && !seqGreater(seq, entry.sequence)) {
      return reject(
        BA_STATUS.SEQ_OUT_OF_WINDOW,
        `sequence ${seq} not greater than last accepted ${entry.sequence}`,
        entry.sequence,
      );
    }
    if (!bu.flags.home) {
      // §9.5.1: a binding exists and the H bit differs from its home registration flag → 139.
      if (entry !== undefined) {
        return reject(BA_STATUS.REG_TYPE_CHANGE, "H bit clear for an existing home registration");
      }
      // A correspondent registration: valid only with Binding Authorization Data from return
      // routability (§9.5.1), which this home agent does not run (§8.2: route optimisation
      // disabled). Such a BU can never be valid: silently discarded, as §9.5.1 asks.
      return this.#discard(
        out,
        "bu_correspondent_discarded",
        "H bit clear: a correspondent registration, and route optimisation is not served",
        info,
      );
    }
    // §6.1.7: a home registration sets A; this home agent answers every BU and insists on it.
    if (!bu.flags.ack) {
      return reject(BA_STATUS.UNSPECIFIED, "A bit clear in a home registration");
    }
    if (bu.flags.mobileRouter) {
      return reject(
        BA_STATUS.MOBILE_ROUTER_NOT_PERMITTED,
        "R bit set: mobile router operation (RFC 3963) is not served",
      );
    }
    if (bu.flags.proxy) {
      return reject(
        BA_STATUS.PROXY_REG_NOT_ENABLED,
        "P bit set: proxy registration (RFC 5213) is not served, this is no local mobility anchor",
      );
    }
    // §9.5.1 / §10.3.2: lifetime 0 or CoA == HoA is a deregistration.
    if (bu.lifetime === 0 || coa === hoa) {
      if (entry === undefined) {
        return reject(BA_STATUS.NOT_HOME_AGENT, "deregistration without a binding");
      }
      this.#drop(entry);
      if (entry.dadUntil !== undefined) {
        out.push(this.#nd("stopDad", hoa, entry));
      }
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
      this.#ba(out, reply, BA_STATUS.ACCEPTED, seq, 0);
      this.#logChange(
        out,
        "deregistered",
        "deregistered {homeAddress} (was via {previous}, seq {sequence})",
        { ...info, previous: entry.careOf },
      );
      return;
    }
    const hoaProblem = this.#homeAddressProblem(hoaBytes, hoa);
    if (hoaProblem !== undefined) return reject(hoaProblem[0], hoaProblem[1]);
    const coaProblem = this.#careOfProblem(coaBytes, coa);
    if (coaProblem !== undefined) {
      return reject(BA_STATUS.INVALID_CARE_OF_ADDRESS, `care-of address ${coa} is ${coaProblem}`);
    }
    let linkLocal: string | undefined;
    if (bu.flags.linkLocal) {
      // §10.3.1: with L the home agent defends the link-local address too
      linkLocal = linkLocalOf(hoaBytes);
      const owner = this.#llOwner.get(linkLocal);
      if (this.#own.has(linkLocal) || (owner !== undefined && owner !== hoa)) {
        return reject(
          BA_STATUS.ADMIN_PROHIBITED,
          `L bit: link-local address ${linkLocal} belongs to ${owner ?? "the home agent"}`,
        );
      }
    }
    const units = Math.min(bu.lifetime, this.#maxUnits);
    if (entry !== undefined) {
      const previous = entry.careOf;
      const previousLl = entry.linkLocal;
      // keep the strings already held when the text is the same: a refresh then leaves only
      // short-lived garbage (RSS at signaling rates is mostly V8's young generation growing)
      if (coa !== previous) entry.careOf = coa;
      if (src !== entry.replyTo) entry.replyTo = src;
      if (haAddr !== entry.haAddress) entry.haAddress = haAddr;
      entry.sequence = seq;
      entry.lifetimeUnits = units;
      entry.protected = prot;
      const llChanged = previousLl !== linkLocal;
      if (llChanged) this.#setLinkLocal(entry, linkLocal);
      if (entry.state === "dad") {
        // Still in DAD (strict): the BA after the wait answers this newer BU.
        this.#log(out, "debug", "BU seq {sequence} for {homeAddress} while DAD runs", info);
        return;
      }
      // Re-registration: no DAD (RFC 6275 §10.3.1 only asks for it on the first one).
      entry.expiresAt = now + units * LIFETIME_UNIT_MS;
      this.cache.touch(entry);
      if (previous !== coa || llChanged) out.push(this.#installOf(entry, previous));
      out.push(PERSIST);
      this.#count("bindings_refreshed");
      this.#ba(out, reply, BA_STATUS.ACCEPTED, seq, units);
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
    if (prot) b.protected = true;
    if (linkLocal !== undefined) this.#setLinkLocal(b, linkLocal);
    if (this.#cfg.dad !== "strict") this.#startNa(b, now);
    this.cache.set(b);
    this.#count("dad_started");
    out.push(this.#nd("startDad", hoa, b));
    if (this.#cfg.dad === "strict") {
      this.#log(out, "info", "first BU for {homeAddress} via {careOf}: DAD before the BA", info);
      return;
    }
    this.#count("bindings_registered");
    out.push(this.#installOf(b));
    out.push(this.#nd("unsolicitedNa", hoa, b));
    out.push(PERSIST);
    this.#ba(out, reply, BA_STATUS.ACCEPTED, seq, units);
    this.#logChange(
      out,
      "registered",
      "registered {homeAddress} via {careOf} (seq {sequence}, {lifetime} s), optimistic DAD running",
      { ...info, lifetime: units * 4 },
    );
  }

  #setLinkLocal(b: Binding, ll: string | undefined): void {
    if (b.linkLocal !== undefined && this.#llOwner.get(b.linkLocal) === b.homeAddress) {
      this.#llOwner.delete(b.linkLocal);
    }
    if (ll === undefined) delete b.linkLocal;
    else {
      b.linkLocal = ll;
      this.#llOwner.set(ll, b.homeAddress);
    }
  }

  /** Status and reason when `hoa` may not be registered (RFC 6275 §10.3.1), else undefined. */
  #homeAddressProblem(b: Uint8Array, hoa: string): [number, string] | undefined {
    if (!inPrefix(b, this.#prefixBytes, this.#cfg.homePrefix.length)) {
      return [BA_STATUS.NOT_HOME_SUBNET, "home address outside the home prefix"];
    }
    if (this.#reserved.has(hoa) || this.#own.has(hoa)) {
      return [BA_STATUS.ADMIN_PROHIBITED, "home address reserved (an address of this host)"];
    }
    const anycast = reservedAnycast(b, this.#cfg.homePrefix.length);
    if (anycast !== undefined) return [BA_STATUS.ADMIN_PROHIBITED, `home address is ${anycast}`];
    if (this.#allow.size > 0 && !this.#allow.has(hoa)) {
      return [BA_STATUS.ADMIN_PROHIBITED, "home address not in the allow list"];
    }
    return undefined;
  }

  /** Why `coa` cannot be a care-of address, or undefined (see the module doc, step 9). */
  #careOfProblem(b: Uint8Array, coa: string): string | undefined {
    if (!isUnicastRoutable(b)) {
      return "not unicast routable (multicast, link-local, loopback, unspecified or IPv4-mapped)";
    }
    if (inPrefix(b, this.#prefixBytes, this.#cfg.homePrefix.length)) {
      return "inside the home prefix";
    }
    if (this.#own.has(coa)) return "an address of the home agent";
    if (this.cache.get(coa) !== undefined) return "a registered home address";
    return undefined;
  }

  /** A BA refusing the BU (`status` ≥ 128) and its rate-limited log line. */
  #reject(
    out: HaAction[],
    reply: Reply,
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
    const target = canonicalIPv6(ev.homeAddress);
    const hoa = this.#llOwner.get(target) ?? target;
    const b = this.cache.get(hoa);
    if (b === undefined || b.dadUntil === undefined) {
      this.#log(out, "debug", "late DAD evidence for {homeAddress} ignored: {evidence}", {
        homeAddress: target,
        evidence: ev.evidence,
      });
      return;
    }
    this.#drop(b);
    this.#count("dad_duplicates");
    out.push(this.#nd("stopDad", hoa, b));
    if (b.state === "dad") {
      // Strict: RFC 6275 §10.3.1, status 134.
      this.#ba(out, this.#replyOf(b), BA_STATUS.DAD_FAILED, b.sequence, 0);
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
   * Binding Error status 1, rate-limited (§9.3.3: one per second per source, and all error
   * messages together by {@linkcode ERROR_RATE}). With a home registration for it the packet is
   * still not deliverable (route optimisation is not served): counted only.
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
    if (!parseIPv6Into(src, this.#srcBytes) || !isUnicastRoutable(this.#srcBytes)) return;
    if (!this.#errorAllowed(src, now, "be")) return;
    this.#count("be_sent");
    out.push({
      type: "sendBe",
      from: canonicalIPv6(ev.dst),
      to: src,
      homeAddress: hoa,
      status: BE_STATUS.UNKNOWN_HAO,
    });
    this.#log(
      out,
      "warning",
      "packet (next header {nextHeader}) from {src} with home address {homeAddress} but no binding: Binding Error 1 sent",
      { src, homeAddress: hoa, nextHeader: ev.nextHeader },
      "be-unknown-hao",
    );
  }

  /** RFC 6275 §9.2: Parameter Problem code 0 for a bad Payload Proto or Header Len. */
  #paramProblem(ev: Extract<HaEvent, { type: "paramProblem" }>, now: number, out: HaAction[]) {
    this.#count("mh_param_problem");
    const to = canonicalIPv6(ev.src);
    if (!parseIPv6Into(to, this.#srcBytes) || !isUnicastRoutable(this.#srcBytes)) return;
    if (!this.#errorAllowed(to, now, "icmp")) return;
    this.#count("icmp_param_problem_sent");
    out.push({
      type: "sendParamProblem",
      from: canonicalIPv6(ev.dst),
      to,
      pointer: ev.pointer,
      invoking: ev.invoking,
    });
  }

  #installFailed(ev: Extract<HaEvent, { type: "installFailed" }>, out: HaAction[]): void {
    const hoa = canonicalIPv6(ev.homeAddress);
    const b = this.cache.get(hoa);
    if (b === undefined) return;
    this.#drop(b);
    this.#count("install_failed");
    if (b.dadUntil !== undefined) out.push(this.#nd("stopDad", hoa, b));
    out.push({ type: "remove", homeAddress: hoa, careOf: b.careOf, reason: "install failed" });
    out.push(PERSIST);
    this.#ba(out, this.#replyOf(b), BA_STATUS.INSUFFICIENT_RESOURCES, b.sequence, 0);
    this.#log(out, "error", "binding for {homeAddress} via {careOf} dropped: {error}", {
      homeAddress: hoa,
      careOf: b.careOf,
      error: ev.error,
    }, "install-failed");
  }

  /**
   * Bindings from the state directory (times already on the caller's clock): each is checked
   * as a registration would be — home address (132/129 reasons), care-of address (174 reasons,
   * a registered home address included) — and re-installed, or dropped with the reason.
   */
  #restore(list: PersistedBinding[], now: number, out: HaAction[]): void {
    if (this.#restored) {
      this.#log(out, "warning", "state restore ignored: already restored", {});
      return;
    }
    this.#restored = true;
    let dropped = false;
    const hoas = new Set<string>();
    for (const p of list) {
      try {
        hoas.add(canonicalIPv6(p.homeAddress));
      } catch { /* reported below */ }
    }
    for (const p of list) {
      const hoa = canonicalIPv6(p.homeAddress);
      const coa = canonicalIPv6(p.careOf);
      const hb = ipv6Bytes(hoa), cb = ipv6Bytes(coa);
      const hoaWhy = this.#homeAddressProblem(hb, hoa)?.[1];
      const coaWhy = hoas.has(coa) ? "a registered home address" : this.#careOfProblem(cb, coa);
      const why = p.expiresAt <= now
        ? "expired while stopped"
        : hoaWhy !== undefined
        ? hoaWhy
        : coaWhy !== undefined
        ? `care-of address ${coa} is ${coaWhy}`
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
        homeAddress: hoa,
        careOf: coa,
        replyTo: canonicalIPv6(p.replyTo),
        haAddress: canonicalIPv6(p.haAddress),
        sequence: p.sequence,
        lifetimeUnits: p.lifetimeUnits,
        expiresAt: p.expiresAt,
        registeredAt: p.registeredAt,
        state: "registered",
      };
      if (p.linkLocal !== undefined) {
        const ll = linkLocalOf(hb);
        if (!this.#own.has(ll) && !this.#llOwner.has(ll)) this.#setLinkLocal(b, ll);
      }
      this.#startNa(b, now);
      this.cache.set(b);
      this.#count("bindings_restored");
      out.push(this.#installOf(b));
      out.push(this.#nd("unsolicitedNa", hoa, b));
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
