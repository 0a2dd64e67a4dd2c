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
 * One writer (the thread that owns the `TunnelTable`); readers take a consistent copy with
 * {@linkcode TableReader.refresh}, a seqlock on the generation counter, once per batch.
 *
 * @module
 */

import { formatIPv6, parseIPv6 } from "../wire/addr.ts";

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
  for (;;) {
    const at = HEADER + i * SLOT_SIZE;
    if (view.getInt32(at + SLOT_USED, true) !== 1) return -(i + 1);
    if (sameAddress(bytes, at + SLOT_INNER, key, keyOff)) return i;
    i = (i + 1) & mask;
  }
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

  #parse(inner: string): Uint8Array {
    this.#key.set(parseIPv6(inner));
    return this.#key;
  }

  /**
   * Adds or replaces the entry for `inner`.
   * @throws {RangeError} when the table is full, {TypeError} on malformed addresses.
   */
  set(inner: string, entry: TunnelEntry): void {
    const key = this.#parse(inner);
    const outer = parseIPv6(entry.outer);
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

  /** Removes the entry for `inner`; returns whether there was one. */
  delete(inner: string): boolean {
    const key = this.#parse(inner);
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

  /** The entry for `inner`, or undefined. */
  get(inner: string): TunnelEntry | undefined {
    const slot = probe(this.#bytes, this.#view, this.#mask, this.#parse(inner), 0);
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
 * The Worker side of a {@linkcode TunnelTable}: a private copy refreshed when the generation
 * changes (check once per batch), and allocation-free lookups keyed by bytes inside a packet.
 */
export class TableReader {
  readonly #shared: Uint8Array;
  readonly #gen: Int32Array;
  readonly #copy: Uint8Array;
  readonly #view: DataView;
  readonly #mask: number;
  #seen = -1;

  /** Attaches to the `buffer` of a {@linkcode TunnelTable}. */
  constructor(buffer: SharedArrayBuffer) {
    this.#shared = new Uint8Array(buffer);
    this.#gen = new Int32Array(buffer, 0, HEADER / 4);
    if (this.#gen[MAGIC] !== MAGIC_VALUE) throw new TypeError("buffer is not a TunnelTable");
    this.#copy = new Uint8Array(buffer.byteLength);
    this.#view = new DataView(this.#copy.buffer);
    this.#mask = this.#gen[SLOTS] - 1;
    this.refresh();
  }

  /**
   * Takes a fresh consistent copy when the table changed since the last call (seqlock: the
   * generation is even and unchanged across the copy). Returns whether it copied.
   */
  refresh(): boolean {
    const g = Atomics.load(this.#gen, GEN);
    if (g === this.#seen) return false;
    for (;;) {
      const g1 = Atomics.load(this.#gen, GEN);
      if ((g1 & 1) === 0) {
        this.#copy.set(this.#shared);
        if (Atomics.load(this.#gen, GEN) === g1) {
          this.#seen = g1;
          return true;
        }
      }
      // A change is in progress on the writer's thread; it takes microseconds: spin.
    }
  }

  /** Entries in the current copy. */
  get size(): number {
    return this.#view.getInt32(SIZE * 4, true);
  }

  /** Slot holding the 16-byte address at `b[off]`, or -1. */
  lookup(b: Uint8Array, off: number): number {
    const s = probe(this.#copy, this.#view, this.#mask, b, off);
    return s < 0 ? -1 : s;
  }

  /**
   * Whether slot `slot`'s outer address is itself an inner address of the table (a Home
   * Address): tunnelling to it would bring the packet back into the tunnel (RFC 2473 §4).
   */
  outerIsKey(slot: number): boolean {
    return probe(
      this.#copy,
      this.#view,
      this.#mask,
      this.#copy,
      HEADER + slot * SLOT_SIZE + SLOT_OUTER,
    ) >= 0;
  }

  /** Whether slot `slot`'s outer address equals the 16 bytes at `b[off]`. */
  outerIs(slot: number, b: Uint8Array, off: number): boolean {
    return sameAddress(this.#copy, HEADER + slot * SLOT_SIZE + SLOT_OUTER, b, off);
  }

  /** Copies slot `slot`'s outer address to `out[off..+16]`. */
  copyOuter(slot: number, out: Uint8Array, off: number): void {
    const at = HEADER + slot * SLOT_SIZE + SLOT_OUTER;
    for (let i = 0; i < 16; i++) out[off + i] = this.#copy[at + i];
  }

  /** Slot `slot`'s VM index, -1 when none. */
  vm(slot: number): number {
    return this.#view.getInt32(HEADER + slot * SLOT_SIZE + SLOT_VM, true);
  }
}
