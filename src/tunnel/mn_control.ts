/**
 * The mobile node data path's shared state: current Care-of Address, home agent address and
 * which VMs are active (binding in flight or registered, RFC 6275 §11.7.1), in a
 * `SharedArrayBuffer` written by the main thread and read by the Workers once per batch.
 *
 * Layout (bytes): 0 generation i32 (odd while changing, as in `table.ts`), 4 flags i32
 * (bit 0: CoA set, bit 1: HA set), 8 VM count i32, 16 CoA (16), 32 HA (16), 48 active[VM count]
 * (one byte each).
 *
 * @module
 */

import { formatIPv6, parseIPv6 } from "../wire/addr.ts";

const GEN = 0;
const FLAGS = 1;
const COUNT = 2;
const COA = 16;
const HA = 32;
const ACTIVE = 48;
const HAVE_COA = 1;
const HAVE_HA = 2;

function isUnspecified(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

/** Writer side (main thread). */
export class MnControl {
  /** The shared memory; pass it to the Workers. */
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;

  /** Shared state for `vms` VMs, all inactive, no CoA or HA yet. */
  constructor(vms: number) {
    if (!Number.isInteger(vms) || vms < 1 || vms > 4096) {
      throw new RangeError(`VM count must be 1..4096, got ${vms}`);
    }
    this.buffer = new SharedArrayBuffer(ACTIVE + ((vms + 7) & ~7));
    this.#i32 = new Int32Array(this.buffer, 0, 4);
    this.#bytes = new Uint8Array(this.buffer);
    this.#i32[COUNT] = vms;
  }

  /** Number of VMs. */
  get vms(): number {
    return this.#i32[COUNT];
  }

  #change(fn: () => void): void {
    Atomics.add(this.#i32, GEN, 1);
    try {
      fn();
    } finally {
      Atomics.add(this.#i32, GEN, 1);
    }
  }

  #setAddress(at: number, flag: number, addr: string): void {
    const b = parseIPv6(addr);
    this.#change(() => {
      this.#bytes.set(b, at);
      const f = Atomics.load(this.#i32, FLAGS);
      Atomics.store(this.#i32, FLAGS, isUnspecified(b) ? f & ~flag : f | flag);
    });
  }

  /** The outer source of tunnelled packets; "::" = none (nothing is tunnelled). */
  setCareOf(addr: string): void {
    this.#setAddress(COA, HAVE_COA, addr);
  }

  /** The outer destination of tunnelled packets and the only accepted outer source. */
  setHomeAgent(addr: string): void {
    this.#setAddress(HA, HAVE_HA, addr);
  }

  /** Whether VM `vm`'s packets go through the tunnel. */
  setActive(vm: number, on: boolean): void {
    if (!Number.isInteger(vm) || vm < 0 || vm >= this.vms) {
      throw new RangeError(`no VM ${vm} (have ${this.vms})`);
    }
    this.#change(() => {
      this.#bytes[ACTIVE + vm] = on ? 1 : 0;
    });
  }

  /** Current state (control path). */
  state(): { careOf: string | null; homeAgent: string | null; active: boolean[] } {
    const f = Atomics.load(this.#i32, FLAGS);
    return {
      careOf: f & HAVE_COA ? formatIPv6(this.#bytes, COA) : null,
      homeAgent: f & HAVE_HA ? formatIPv6(this.#bytes, HA) : null,
      active: Array.from({ length: this.vms }, (_, i) => this.#bytes[ACTIVE + i] === 1),
    };
  }
}

/** Worker side: a private copy refreshed when the generation moved (seqlock, as in table.ts). */
export class MnControlReader {
  /** Current CoA (valid when `haveCareOf`). */
  readonly careOf = new Uint8Array(16);
  /** Current HA (valid when `haveHomeAgent`). */
  readonly homeAgent = new Uint8Array(16);
  /** Per VM: 1 = active. */
  readonly active: Uint8Array;
  haveCareOf = false;
  haveHomeAgent = false;
  readonly #i32: Int32Array;
  readonly #shared: Uint8Array;
  readonly #copy: Uint8Array;
  #seen = -1;

  constructor(buffer: SharedArrayBuffer) {
    this.#i32 = new Int32Array(buffer, 0, 4);
    this.#shared = new Uint8Array(buffer);
    this.#copy = new Uint8Array(buffer.byteLength);
    this.active = this.#copy.subarray(ACTIVE, ACTIVE + this.#i32[COUNT]);
    this.refresh();
  }

  /** Re-reads the shared state if it changed; returns whether it did. */
  refresh(): boolean {
    if (Atomics.load(this.#i32, GEN) === this.#seen) return false;
    for (;;) {
      const g = Atomics.load(this.#i32, GEN);
      if ((g & 1) !== 0) continue;
      this.#copy.set(this.#shared);
      if (Atomics.load(this.#i32, GEN) !== g) continue;
      this.#seen = g;
      const flags = new DataView(this.#copy.buffer).getInt32(FLAGS * 4, true);
      this.haveCareOf = (flags & HAVE_COA) !== 0;
      this.haveHomeAgent = (flags & HAVE_HA) !== 0;
      this.careOf.set(this.#copy.subarray(COA, COA + 16));
      this.homeAgent.set(this.#copy.subarray(HA, HA + 16));
      return true;
    }
  }
}
