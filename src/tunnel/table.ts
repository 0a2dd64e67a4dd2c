/**
 * The binding table the data-path Workers read: inner address (a Home Address) → outer
 * address (its Care-of Address, RFC 6275 §10.1 "binding cache"; or the home agent on the MN
 * side) plus an optional VM index, in a `SharedArrayBuffer` so that the main thread can change
 * bindings while Workers forward packets, without a message per change.
 *
 * Layout (little-endian host, all offsets in bytes):
 *
 * ```
 *  0 generation  i32  bumped (Atomics) before and after every change: odd = change in progress
 *  4 size        i32  entries in use
 *  8 capacity    i32  most entries the table accepts
 * 12 slots       i32  number of slots (power of two, ≥ 2 × capacity: open addressing)
 * 16 magic       i32
 * 20 reserved    12 bytes
 * 32 slot[0] … slot[slots-1], 40 bytes each:
 *      +0  inner address  16 bytes
 *      +16 outer address  16 bytes
 *      +32 vm             i32 (-1 = none)
 *      +36 used           i32 (1 = in use)
 * ```
 *
 * Linear probing keyed by a hash of the 16 bytes, deletion by backward shift (no tombstones).
 * One writer (the thread that owns the `TunnelTable`). Readers look entries up in the shared
 * memory itself under a seqlock on the generation counter ({@linkcode TableReader.lookup}):
 * read the generation (even), probe and copy the entry out, read it again; when it moved, or
 * was odd, do it again. A change costs the readers nothing but the retry of a lookup that
 * overlapped it (an earlier design copied the whole table into each Worker per change: 2.6 MB
 * and ~80 µs per change per Worker at the HA's 32768 entries).
 *
 * Addresses given as text are parsed into a reused scratch buffer without allocation
 * ({@linkcode parseIPv6Into}); `Uint8Array` keys skip the parse.
 *
 * @module
 */

import { formatIPv6 } from "../wire/addr.ts";
import { parseIPv6Into } from "../wire/fast_addr.ts";

const HEADER = 32;
const GEN = 0; // i32 index
const SIZE = 1;
const CAPACITY = 2;
const SLOTS = 3;
const MAGIC = 4;
const MAGIC_VALUE = 0x4b475454; // "KGTT"

/** Bytes per slot. */
export const SLOT_SIZE = 40;
/** Offset of the inner address in a slot. */
export const SLOT_INNER = 0;
/** Offset of the outer address in a slot. */
export const SLOT_OUTER = 16;
const SLOT_VM = 32;
const SLOT_USED = 36;

/** What a table entry holds, in text form. */
export interface TunnelEntry {
  /** The tunnel endpoint for this inner address (RFC 5952 text). */
  outer: string;
  /** Index of the VM (MN side), absent when not set. */
  vm?: number;
}

/** Hash of the 16 bytes at `b[off]` (FNV-1a over four 32-bit words, then mixed). */
export function hashAddress(b: Uint8Array, off: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i += 4) {
    const w = (b[off + i] << 24) | (b[off + i + 1] << 16) | (b[off + i + 2] << 8) |
      b[off + i + 3];
    h = Math.imul(h ^ w, 0x01000193);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

function sameAddress(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/**
 * Looks up `key[keyOff..+16]` in a table image (`bytes` holds the header and slots). Returns the
 * slot index holding it, or `-(i + 1)` where `i` is the empty slot where it would go.
 */
function probe(
  bytes: Uint8Array,
  view: DataView,
  mask: number,
  key: Uint8Array,
  keyOff: number,
): number {
  let i = hashAddress(key, keyOff) & mask;
  // At most every slot: a reader racing several changes may see a mix of states in which more
  // slots look used than ever are (its seqlock then discards the result).
  for (let n = 0; n <= mask; n++) {
    const at = HEADER + i * SLOT_SIZE;
    if (view.getInt32(at + SLOT_USED, true) !== 1) return -(i + 1);
    if (sameAddress(bytes, at + SLOT_INNER, key, keyOff)) return i;
    i = (i + 1) & mask;
  }
  return -(mask + 2); // not found, no free slot seen (only ever seen by a racing reader)
}

function slotCountFor(capacity: number): number {
  let n = 2;
  while (n < capacity * 2) n *= 2;
  return n;
}

/** Bytes of the `SharedArrayBuffer` a table of `capacity` entries needs. */
export function tunnelTableBytes(capacity: number): number {
  return HEADER + slotCountFor(capacity) * SLOT_SIZE;
}

/**
 * The shared binding table (writer side). Construct it on the main thread, hand `buffer` to
 * Workers (which read it through {@linkcode TableReader}), and change it with `set`/`delete`.
 * Only one thread may write.
 */
export class TunnelTable {
  /** The shared memory; pass it to Workers. */
  readonly buffer: SharedArrayBuffer;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #i32: Int32Array;
  readonly #mask: number;
  readonly #key = new Uint8Array(16);
  readonly #outer = new Uint8Array(16);

  /**
   * A table for up to `capacity` entries in a fresh `SharedArrayBuffer`, or a view over an
   * existing table's `buffer` (then `capacity` must match).
   */
  constructor(capacity: number, buffer?: SharedArrayBuffer) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20) {
      throw new RangeError(`TunnelTable capacity must be 1..${1 << 20}, got ${capacity}`);
    }
    const slots = slotCountFor(capacity);
    const bytes = HEADER + slots * SLOT_SIZE;
    if (buffer === undefined) {
      buffer = new SharedArrayBuffer(bytes);
      const i32 = new Int32Array(buffer, 0, HEADER / 4);
      i32[CAPACITY] = capacity;
      i32[SLOTS] = slots;
      i32[MAGIC] = MAGIC_VALUE;
    } else {
      const i32 = new Int32Array(buffer, 0, HEADER / 4);
      if (
        buffer.byteLength !== bytes || i32[MAGIC] !== MAGIC_VALUE ||
        i32[CAPACITY] !== capacity || i32[SLOTS] !== slots
      ) {
        throw new TypeError(`buffer is not a TunnelTable of capacity ${capacity}`);
      }
    }
    this.buffer = buffer;
    this.#bytes = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
    this.#i32 = new Int32Array(buffer, 0, HEADER / 4);
    this.#mask = slots - 1;
  }

  /** Most entries the table accepts. */
  get capacity(): number {
    return this.#i32[CAPACITY];
  }

  /** Entries in use. */
  get size(): number {
    return Atomics.load(this.#i32, SIZE);
  }

  /** The generation counter (even when no change is in progress). */
  get generation(): number {
    return Atomics.load(this.#i32, GEN);
  }

  /** `addr` as 16 bytes in `scratch` (text parsed without allocating), or `addr` itself. */
  #bytesOf(addr: string | Uint8Array, scratch: Uint8Array): Uint8Array {
    if (typeof addr === "string") {
      if (!parseIPv6Into(addr, scratch, 0)) {
        throw new TypeError(`not an IPv6 address: ${JSON.stringify(addr)}`);
      }
      return scratch;
    }
    if (!(addr instanceof Uint8Array) || addr.length !== 16) {
      throw new TypeError("an IPv6 address must be text or 16 bytes");
    }
    return addr;
  }

  /**
   * Adds or replaces the entry for `inner` (text or 16 bytes; `entry.outer` likewise).
   * Allocation-free.
   * @throws {RangeError} when the table is full, {TypeError} on malformed addresses.
   */
  set(inner: string | Uint8Array, entry: TunnelEntry | { outer: Uint8Array; vm?: number }): void {
    const key = this.#bytesOf(inner, this.#key);
    const outer = this.#bytesOf(entry.outer, this.#outer);
    const vm = entry.vm ?? -1;
    if (!Number.isInteger(vm) || vm < -1 || vm > 0x7fffffff) {
      throw new RangeError(`vm must be a non-negative integer, got ${entry.vm}`);
    }
    let slot = probe(this.#bytes, this.#view, this.#mask, key, 0);
    if (slot < 0 && this.size >= this.capacity) {
      throw new RangeError(`TunnelTable full (capacity ${this.capacity})`);
    }
    this.#begin();
    try {
      if (slot < 0) {
        slot = -slot - 1;
        this.#bytes.set(key, HEADER + slot * SLOT_SIZE + SLOT_INNER);
        this.#view.setInt32(HEADER + slot * SLOT_SIZE + SLOT_USED, 1, true);
        Atomics.add(this.#i32, SIZE, 1);
      }
      const at = HEADER + slot * SLOT_SIZE;
      this.#bytes.set(outer, at + SLOT_OUTER);
      this.#view.setInt32(at + SLOT_VM, vm, true);
    } finally {
      this.#end();
    }
  }

  /** Removes the entry for `inner` (text or 16 bytes); returns whether there was one. */
  delete(inner: string | Uint8Array): boolean {
    const key = this.#bytesOf(inner, this.#key);
    let hole = probe(this.#bytes, this.#view, this.#mask, key, 0);
    if (hole < 0) return false;
    this.#begin();
    try {
      // Backward-shift deletion keeps every probe sequence unbroken without tombstones.
      const mask = this.#mask;
      let j = hole;
      for (;;) {
        j = (j + 1) & mask;
        const at = HEADER + j * SLOT_SIZE;
        if (this.#view.getInt32(at + SLOT_USED, true) !== 1) break;
        const home = hashAddress(this.#bytes, at + SLOT_INNER) & mask;
        // Move j into the hole unless j's home lies cyclically in (hole, j].
        const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
        if (!between) {
          this.#bytes.copyWithin(HEADER + hole * SLOT_SIZE, at, at + SLOT_SIZE);
          hole = j;
        }
      }
      this.#bytes.fill(0, HEADER + hole * SLOT_SIZE, HEADER + (hole + 1) * SLOT_SIZE);
      Atomics.sub(this.#i32, SIZE, 1);
    } finally {
      this.#end();
    }
    return true;
  }

  /** The entry for `inner` (text or 16 bytes), or undefined. */
  get(inner: string | Uint8Array): TunnelEntry | undefined {
    const slot = probe(this.#bytes, this.#view, this.#mask, this.#bytesOf(inner, this.#key), 0);
    if (slot < 0) return undefined;
    return this.#entryAt(slot);
  }

  /** Every entry as `[inner, entry]` (control path: status output, tests). */
  entries(): Array<[string, TunnelEntry]> {
    const out: Array<[string, TunnelEntry]> = [];
    for (let s = 0; s <= this.#mask; s++) {
      const at = HEADER + s * SLOT_SIZE;
      if (this.#view.getInt32(at + SLOT_USED, true) !== 1) continue;
      out.push([formatIPv6(this.#bytes, at + SLOT_INNER), this.#entryAt(s)]);
    }
    return out;
  }

  /** Removes every entry. */
  clear(): void {
    this.#begin();
    this.#bytes.fill(0, HEADER);
    Atomics.store(this.#i32, SIZE, 0);
    this.#end();
  }

  #entryAt(slot: number): TunnelEntry {
    const at = HEADER + slot * SLOT_SIZE;
    const vm = this.#view.getInt32(at + SLOT_VM, true);
    const e: TunnelEntry = { outer: formatIPv6(this.#bytes, at + SLOT_OUTER) };
    if (vm >= 0) e.vm = vm;
    return e;
  }

  #begin(): void {
    Atomics.add(this.#i32, GEN, 1); // odd: readers retry
  }

  #end(): void {
    Atomics.add(this.#i32, GEN, 1); // even again, and different from before
  }
}

/**
 * The Worker side of a {@linkcode TunnelTable}: allocation-free lookups keyed by bytes inside a
 * packet, straight in the shared memory under the table's seqlock. A successful
 * {@linkcode TableReader.lookup} leaves a private copy of the entry (`outer`, `vm`) that stays
 * valid however the table changes afterwards; a change is visible to the next lookup.
 */
export class TableReader {
  /** The outer address of the entry the last successful lookup found (a private copy). */
  readonly outer: Uint8Array = new Uint8Array(16);
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #i32: Int32Array;
  readonly #mask: number;
  #vm = -1;
  #retries = 0;

  /** Attaches to the `buffer` of a {@linkcode TunnelTable}. */
  constructor(buffer: SharedArrayBuffer) {
    this.#i32 = new Int32Array(buffer, 0, HEADER / 4);
    if (this.#i32[MAGIC] !== MAGIC_VALUE) throw new TypeError("buffer is not a TunnelTable");
    this.#bytes = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
    this.#mask = this.#i32[SLOTS] - 1;
  }

  /** An even generation: no change in progress (spins while one is; changes take µs). */
  #begin(): number {
    for (;;) {
      const g = Atomics.load(this.#i32, GEN);
      if ((g & 1) === 0) return g;
    }
  }

  /**
   * Looks up the 16-byte address at `b[off]`: its slot (≥ 0), with `outer` and `vm` set to the
   * entry's, or -1. Consistent: what it returns was in the table at one instant.
   */
  lookup(b: Uint8Array, off: number): number {
    for (;;) {
      const g = this.#begin();
      const s = probe(this.#bytes, this.#view, this.#mask, b, off);
      if (s >= 0) {
        const at = HEADER + s * SLOT_SIZE;
        const o = this.outer;
        const bytes = this.#bytes;
        for (let i = 0; i < 16; i++) o[i] = bytes[at + SLOT_OUTER + i];
        this.#vm = this.#view.getInt32(at + SLOT_VM, true);
      }
      if (Atomics.load(this.#i32, GEN) === g) return s < 0 ? -1 : s;
      this.#retries++;
    }
  }

  /** Whether the 16-byte address at `b[off]` is an inner address of the table. */
  has(b: Uint8Array, off: number): boolean {
    for (;;) {
      const g = this.#begin();
      const s = probe(this.#bytes, this.#view, this.#mask, b, off);
      if (Atomics.load(this.#i32, GEN) === g) return s >= 0;
      this.#retries++;
    }
  }

  /**
   * Whether the last lookup's outer address is itself an inner address of the table (a Home
   * Address): tunnelling to it would bring the packet back into the tunnel (RFC 2473 §4).
   */
  outerIsKey(): boolean {
    return this.has(this.outer, 0);
  }

  /** Whether the last lookup's outer address equals the 16 bytes at `b[off]`. */
  outerIs(b: Uint8Array, off: number): boolean {
    return sameAddress(this.outer, 0, b, off);
  }

  /** Copies the last lookup's outer address to `out[off..+16]`. */
  copyOuter(out: Uint8Array, off: number): void {
    const o = this.outer;
    for (let i = 0; i < 16; i++) out[off + i] = o[i];
  }

  /** The last lookup's VM index, -1 when none. */
  get vm(): number {
    return this.#vm;
  }

  /** Entries in the table now. */
  get size(): number {
    return Atomics.load(this.#i32, SIZE);
  }

  /** Lookups repeated because the table changed under them (for tests and curiosity). */
  get retries(): number {
    return this.#retries;
  }
}
