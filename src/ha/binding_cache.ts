/**
 * The home agent's Binding Cache (RFC 6275 §9.1, §10.1): one entry per home address,
 * sequence-number arithmetic (§9.5.1) and the persisted form of the cache.
 *
 * Pure data: no clock, no I/O. Times are milliseconds on the caller's clock. The daemon uses a
 * monotonic clock (`performance.now()`), so an NTP step neither expires nor prolongs a binding;
 * only the persisted copy holds wall-clock times (`writePersisted`'s `wallOffset`), which the
 * daemon turns back into remaining time at start.
 *
 * @module
 */

import { canonicalIPv6, tryParseIPv6 } from "../wire/addr.ts";

/** Lifetime unit of the BU/BA Lifetime field: 4 seconds (RFC 6275 §6.1.7, §6.1.8). */
export const LIFETIME_UNIT_MS = 4000;

/** Largest Lifetime field value (16 bits). */
export const MAX_LIFETIME_UNITS = 0xffff;

/**
 * True when sequence number `a` is greater than `b` modulo 2^16 (RFC 6275 §9.5.1): `a` is
 * *not* greater when it lies in the range of `b` and the preceding 32768 values, inclusive.
 */
export function seqGreater(a: number, b: number): boolean {
  const d = (a - b) & 0xffff;
  return d !== 0 && d < 0x8000;
}

/** State of a Binding Cache entry. */
export type BindingState =
  /** First registration waiting for Duplicate Address Detection (strict mode), no BA yet. */
  | "dad"
  /** Registered: routes, proxy ND and tunnel entry installed. */
  | "registered";

/** One Binding Cache entry (RFC 6275 §9.1), always a home registration here. */
export interface Binding {
  /** Home address (canonical text), the key. */
  homeAddress: string;
  /** Registered care-of address. */
  careOf: string;
  /** Source address the last accepted BU came from (where BAs go). */
  replyTo: string;
  /** HA address the BU was sent to (source of BAs). */
  haAddress: string;
  /** Sequence number of the last accepted BU. */
  sequence: number;
  /** Granted lifetime in 4-second units. */
  lifetimeUnits: number;
  /** When the binding expires (caller's clock, ms). */
  expiresAt: number;
  /** When the binding was first registered (caller's clock, ms). */
  registeredAt: number;
  /** Registration state. */
  state: BindingState;
  /** End of the Duplicate Address Detection window, while DAD runs (strict or optimistic). */
  dadUntil?: number;
  /**
   * When the next repeat of the unsolicited Neighbor Advertisement is due (RFC 4861 §7.2.6: up
   * to MAX_NEIGHBOR_ADVERTISEMENT = 3 in all, RetransTimer apart), and how many are left.
   */
  naAt?: number;
  naLeft?: number;
  /**
   * The mobile node's link-local address (fe80::/64 + the home address's interface identifier)
   * the home agent defends too, when the BU set L (RFC 6275 §10.3.1).
   */
  linkLocal?: string;
  /** The last accepted BU came under ESP (RFC 4877 §4): BAs answering it go protected too. */
  protected?: boolean;
}

/** The persisted form of one live binding. */
export interface PersistedBinding {
  homeAddress: string;
  careOf: string;
  replyTo: string;
  haAddress: string;
  sequence: number;
  lifetimeUnits: number;
  /** Wall-clock ms (Date.now()) in the file; the caller's clock once handed to the core. */
  expiresAt: number;
  /** Wall-clock ms in the file; the caller's clock once handed to the core. */
  registeredAt: number;
  /** Set when the home agent defends the mobile node's link-local address too (L bit). */
  linkLocal?: string;
}

/** The persisted form of the cache (`StateStore` document). */
export interface PersistedCache {
  version: 1;
  bindings: PersistedBinding[];
  /**
   * The ESP state that must survive a restart (RFC 4303 §3.3.3, §3.4.3): per SA the outbound
   * sequence number reserved so far, or the inbound replay window (`SaState` of src/ipsec).
   */
  esp?: unknown[];
}

/** Options of {@linkcode BindingCache.writePersisted}. */
export interface WriteOptions {
  /**
   * Added to every time before it is written: wall clock minus the caller's clock (the daemon's
   * `Date.now() - performance.now()`), so the file holds wall-clock times. Default 0.
   */
  wallOffset?: number;
  /** ESP states written as the document's `esp` member (small: one entry per SA). */
  esp?: readonly unknown[];
}

const NONE_DUE: readonly Binding[] = Object.freeze([]);

/**
 * Heap items allowed per binding before a rebuild: an entry has at most three live deadlines
 * (DAD end, next NA, expiry), so at least half the items of a heap this full are stale.
 */
export const HEAP_SLACK = 6;

/** Heap items allowed beyond `HEAP_SLACK` per binding (so that tiny caches never rebuild). */
const HEAP_BASE = 64;

/**
 * The Binding Cache: home address → entry, with a min-heap of deadlines (BIRD-style: one
 * timer for the earliest) so that timers cost O(log n) per change, not a scan of the cache.
 * Heap items are checked lazily: an item whose binding is gone or whose deadline moved is
 * skipped. Whoever changes an entry's `expiresAt`, `dadUntil` or `naAt` in place calls `touch`.
 *
 * Lazy deletion leaves stale items behind (every refresh adds one, a deletion removes none), so
 * the heap is rebuilt from the live entries whenever it holds more than
 * {@linkcode HEAP_SLACK} items per entry (plus a constant): its size stays proportional to the
 * number of bindings, and the rebuild's cost, spread over the pushes that made it necessary,
 * is O(1) each.
 */
export class BindingCache {
  #entries = new Map<string, Binding>();
  // the heap as two parallel arrays (deadline, home address): no object per scheduled deadline
  #ht: number[] = [];
  #hh: string[] = [];

  /** The entry for `homeAddress` (canonical text), if any. */
  get(homeAddress: string): Binding | undefined {
    return this.#entries.get(homeAddress);
  }

  /** Adds or replaces the entry for `b.homeAddress` and schedules its deadlines. */
  set(b: Binding): void {
    this.#entries.set(b.homeAddress, b);
    this.touch(b);
  }

  /** Schedules `b`'s current deadlines after an in-place change. */
  touch(b: Binding): void {
    if (this.#ht.length + 3 > HEAP_SLACK * this.#entries.size + HEAP_BASE) {
      this.#rebuild(); // schedules every live entry's deadlines, `b`'s included
      return;
    }
    this.#schedule(b);
  }

  #schedule(b: Binding): void {
    if (b.dadUntil !== undefined) this.#push(b.dadUntil, b.homeAddress);
    if (b.naAt !== undefined) this.#push(b.naAt, b.homeAddress);
    this.#push(b.expiresAt, b.homeAddress);
  }

  /** Drops every heap item and schedules the live entries' deadlines again. */
  #rebuild(): void {
    this.#ht.length = 0;
    this.#hh.length = 0;
    for (const b of this.#entries.values()) this.#schedule(b);
  }

  /** Removes the entry for `homeAddress`; returns it if it existed. */
  delete(homeAddress: string): Binding | undefined {
    const b = this.#entries.get(homeAddress);
    this.#entries.delete(homeAddress);
    if (this.#ht.length > HEAP_SLACK * this.#entries.size + HEAP_BASE) this.#rebuild();
    return b;
  }

  /** Number of entries (registered and waiting for DAD). */
  get size(): number {
    return this.#entries.size;
  }

  /** All entries, in insertion order. */
  entries(): Binding[] {
    return [...this.#entries.values()];
  }

  /**
   * Entries that had a deadline at or before `now` (each once). The caller checks which of
   * the entry's deadlines passed; its later deadlines stay scheduled.
   */
  due(now: number): readonly Binding[] {
    if (this.#ht.length === 0 || this.#ht[0] > now) return NONE_DUE;
    const out = new Map<string, Binding>();
    while (this.#ht.length > 0 && this.#ht[0] <= now) {
      const hoa = this.#pop();
      const b = this.#entries.get(hoa);
      if (b !== undefined) out.set(hoa, b);
    }
    return [...out.values()];
  }

  /** Earliest expiry or DAD deadline of any entry, or undefined when empty. */
  nextDeadline(): number | undefined {
    while (this.#ht.length > 0) {
      const t = this.#ht[0];
      const b = this.#entries.get(this.#hh[0]);
      if (b !== undefined && (b.dadUntil === t || b.expiresAt === t || b.naAt === t)) return t;
      this.#pop();
    }
    return undefined;
  }

  /** Heap items held (live and stale), for tests. */
  get scheduled(): number {
    return this.#ht.length;
  }

  #push(t: number, hoa: string): void {
    const ht = this.#ht, hh = this.#hh;
    let i = ht.length;
    ht.push(t);
    hh.push(hoa);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (ht[p] <= t) break;
      ht[i] = ht[p];
      hh[i] = hh[p];
      i = p;
    }
    ht[i] = t;
    hh[i] = hoa;
  }

  #pop(): string {
    const ht = this.#ht, hh = this.#hh;
    const top = hh[0];
    const t = ht.pop()!;
    const hoa = hh.pop()!;
    const n = ht.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = -1;
        let mt = t;
        if (l < n && ht[l] < mt) {
          m = l;
          mt = ht[l];
        }
        if (r < n && ht[r] < mt) m = r;
        if (m < 0) break;
        ht[i] = ht[m];
        hh[i] = hh[m];
        i = m;
      }
      ht[i] = t;
      hh[i] = hoa;
    }
    return top;
  }

  /**
   * Registered entries in their persisted form (entries still in strict DAD are not kept), times
   * moved by `o.wallOffset` and rounded as `writePersisted` writes them.
   */
  toPersisted(o: WriteOptions = {}): PersistedCache {
    const off = o.wallOffset ?? 0;
    const doc: PersistedCache = {
      version: 1,
      bindings: this.entries().filter((b) => b.state === "registered").map((b) => {
        const p: PersistedBinding = {
          homeAddress: b.homeAddress,
          careOf: b.careOf,
          replyTo: b.replyTo,
          haAddress: b.haAddress,
          sequence: b.sequence,
          lifetimeUnits: b.lifetimeUnits,
          expiresAt: wallTime(b.expiresAt, off),
          registeredAt: wallTime(b.registeredAt, off),
        };
        if (b.linkLocal !== undefined) p.linkLocal = b.linkLocal;
        return p;
      }),
    };
    if (o.esp !== undefined) doc.esp = [...o.esp];
    return doc;
  }

  /**
   * Writes `toPersisted()` as compact JSON, one binding per line, into `buf` (at least 1 KiB),
   * calling `flush(length)` whenever it is nearly full and at the end; `flush` takes the bytes
   * out before returning. No string or object is made per binding: the daemon writes the whole
   * cache after changes (10,000 bindings are about 2 MB). Addresses are canonical text (hex
   * digits, ':' and '.'): ASCII that needs no escaping.
   */
  writePersisted(buf: Uint8Array, flush: (length: number) => void, o: WriteOptions = {}): void {
    const off = o.wallOffset ?? 0;
    let n = 0;
    const str = (t: string) => {
      for (let i = 0; i < t.length; i++) buf[n++] = t.charCodeAt(i);
    };
    const digits = (v: number, width: number) => { // v < 2^31: integer arithmetic
      const start = n;
      do {
        buf[n++] = 48 + v % 10;
        v = (v / 10) | 0;
      } while (v > 0 || n - start < width);
      for (let i = start, j = n - 1; i < j; i++, j--) {
        const c = buf[i];
        buf[i] = buf[j];
        buf[j] = c;
      }
    };
    const num = (v: number) => { // a non-negative integer below 2^53: two halves below 10^8
      const hi = Math.floor(v / 1e8), lo = v - hi * 1e8;
      if (hi > 0) {
        digits(hi, 1);
        digits(lo, 8);
      } else digits(lo, 1);
    };
    str('{"version":1,"bindings":[');
    let first = true;
    for (const b of this.#entries.values()) {
      if (b.state !== "registered") continue;
      if (n + 512 > buf.length) {
        flush(n);
        n = 0;
      }
      str(first ? '\n{"homeAddress":"' : ',\n{"homeAddress":"');
      str(b.homeAddress);
      str('","careOf":"');
      str(b.careOf);
      str('","replyTo":"');
      str(b.replyTo);
      str('","haAddress":"');
      str(b.haAddress);
      str('","sequence":');
      num(b.sequence);
      str(',"lifetimeUnits":');
      num(b.lifetimeUnits);
      str(',"expiresAt":');
      num(wallTime(b.expiresAt, off));
      str(',"registeredAt":');
      num(wallTime(b.registeredAt, off));
      if (b.linkLocal !== undefined) {
        str(',"linkLocal":"');
        str(b.linkLocal);
        str('"');
      }
      str("}");
      first = false;
    }
    str("\n]");
    if (o.esp !== undefined) {
      // one SA per line, under a hundred bytes each: JSON text (numbers and hex digits only)
      str(',"esp":[');
      for (let i = 0; i < o.esp.length; i++) {
        const text = (i === 0 ? "\n" : ",\n") + JSON.stringify(o.esp[i]);
        if (n + text.length + 8 > buf.length) {
          flush(n);
          n = 0;
        }
        if (text.length + 8 > buf.length) throw new RangeError("ESP state larger than the buffer");
        str(text);
      }
      str("\n]");
    }
    str("}\n");
    flush(n);
  }

  /** What `writePersisted` writes, as text (tests, small caches). */
  persistedJson(o: WriteOptions = {}): string {
    const parts: string[] = [];
    const buf = new Uint8Array(4096);
    const dec = new TextDecoder();
    this.writePersisted(buf, (len) => parts.push(dec.decode(buf.subarray(0, len))), o);
    return parts.join("");
  }
}

/** A time on the caller's clock as a non-negative integer on the wall clock. */
function wallTime(t: number, offset: number): number {
  return Math.max(0, Math.round(t + offset));
}

function addr(v: unknown): string | null {
  if (typeof v !== "string" || tryParseIPv6(v) === null) return null;
  return canonicalIPv6(v);
}

function int(v: unknown, max: number): number | null {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max ? v : null;
}

/**
 * Validates a persisted cache document read back from disk. Returns the bindings it holds and
 * a description of every record that was rejected (a damaged file never crashes the daemon).
 */
export function parsePersistedCache(
  doc: unknown,
): { bindings: PersistedBinding[]; rejected: string[]; esp: unknown[] } {
  const rejected: string[] = [];
  if (doc === undefined) return { bindings: [], rejected, esp: [] };
  if (typeof doc !== "object" || doc === null || (doc as { version?: unknown }).version !== 1) {
    return { bindings: [], rejected: ["document: not a version 1 binding cache"], esp: [] };
  }
  const rawEsp = (doc as { esp?: unknown }).esp;
  let esp: unknown[] = [];
  if (Array.isArray(rawEsp)) esp = rawEsp;
  else if (rawEsp !== undefined) rejected.push("esp: not an array");
  const list = (doc as { bindings?: unknown }).bindings;
  if (!Array.isArray(list)) return { bindings: [], rejected: ["bindings: not an array"], esp };
  const bindings: PersistedBinding[] = [];
  list.forEach((r: unknown, i) => {
    const o = (typeof r === "object" && r !== null ? r : {}) as Record<string, unknown>;
    const fields = {
      homeAddress: addr(o.homeAddress),
      careOf: addr(o.careOf),
      replyTo: addr(o.replyTo),
      haAddress: addr(o.haAddress),
      sequence: int(o.sequence, 0xffff),
      lifetimeUnits: int(o.lifetimeUnits, MAX_LIFETIME_UNITS),
      expiresAt: int(o.expiresAt, Number.MAX_SAFE_INTEGER),
      registeredAt: int(o.registeredAt, Number.MAX_SAFE_INTEGER),
    };
    const bad = Object.entries(fields).find(([, v]) => v === null);
    if (bad) {
      rejected.push(`bindings[${i}].${bad[0]}: invalid`);
      return;
    }
    const p = fields as PersistedBinding;
    if (o.linkLocal !== undefined) {
      const ll = addr(o.linkLocal);
      if (ll === null) {
        rejected.push(`bindings[${i}].linkLocal: invalid`);
        return;
      }
      p.linkLocal = ll;
    }
    bindings.push(p);
  });
  return { bindings, rejected, esp };
}
