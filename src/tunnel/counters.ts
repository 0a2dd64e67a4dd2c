/**
 * Named 64-bit counters in a `SharedArrayBuffer`: the data-path Workers add to them (once per
 * batch, through {@linkcode CounterBatch}), the main thread reads them for status output.
 *
 * @module
 */

import { VM_DROP_COUNTERS } from "../mn/pseudo_home.ts";

/**
 * The counters the data path keeps (also the default slot list of {@linkcode SharedCounters}).
 *
 * - `tunnel_tx_packets` / `tunnel_tx_bytes`: inner packets put into the tunnel (RFC 2473 §3),
 *   bytes counted without the outer header;
 * - `tunnel_rx_packets` / `tunnel_rx_bytes`: decapsulated packets delivered to the device
 *   (tun on the HA, a VM's tap on the MN; MN bytes without the Ethernet header);
 * - `tunnel_tx_no_binding`: device → tunnel packets whose destination has no binding (HA) or
 *   whose VM is not active (MN);
 * - `tunnel_loop`: device → tunnel packets whose binding's tunnel endpoint is itself a Home
 *   Address of the table (RFC 2473 §4 tunnel loop; the HA refuses such care-of addresses, this
 *   is defence in depth), dropped;
 * - `tunnel_unknown`: tunnel → device packets for/from an address with no binding;
 * - `tunnel_spoofed`: tunnel → device packets whose outer source is not the binding's tunnel
 *   endpoint (HA: the HoA's CoA; MN: the home agent), RFC 6275 §10.4.5;
 * - `tunnel_malformed`: not an IPv6 packet, or its payload length disagrees with its size;
 * - `tunnel_truncated`: a datagram larger than the receive buffer;
 * - `tunnel_tx_errors` / `tunnel_rx_errors`: sendmmsg / device write failures;
 * - `tunnel_tx_batches` / `tunnel_rx_batches`: batches handled (packets ÷ batches = batch size);
 * - `tunnel_tx_gso_split`: super-packets (virtio_net_hdr GSO, up to 64 KB) read from a device
 *   and split into tunnel-sized segments (each segment counts in `tunnel_tx_packets`);
 * - `tunnel_tx_gso_dropped`: super-packets that could not be split (an IPv6 extension header
 *   before TCP/UDP, a GSO type never offered, bad headers), dropped;
 * - `tunnel_rx_coalesced`: decapsulated TCP segments merged into the previous one of their
 *   flow before the device write (each still counts in `tunnel_rx_packets`);
 * - `tunnel_rx_nic_gro`: decapsulated TCP packets the receiving NIC's GRO had merged already
 *   (partial checksum, segment size lost): passed on re-segmented for the minimum MTU;
 * - `vm_frames`: frames read from VM taps; `vm_replies`: ND/echo answers written back;
 *   `vm_too_big`: ICMPv6 Packet Too Big sent to a guest (RFC 2473 §7); `vm_dropped`: frames
 *   the pseudo home network dropped, and the same frames once more by reason: the
 *   `vm_drop_*` names of `VM_DROP_COUNTERS` (src/mn/pseudo_home.ts: `vm_drop_ipv4`,
 *   `vm_drop_dhcpv6`, `vm_drop_multicast`, …), which add up to `vm_dropped`.
 */
export const DATAPATH_COUNTERS = [
  "tunnel_tx_packets",
  "tunnel_tx_bytes",
  "tunnel_rx_packets",
  "tunnel_rx_bytes",
  "tunnel_tx_no_binding",
  "tunnel_loop",
  "tunnel_unknown",
  "tunnel_spoofed",
  "tunnel_malformed",
  "tunnel_truncated",
  "tunnel_tx_errors",
  "tunnel_rx_errors",
  "tunnel_tx_batches",
  "tunnel_rx_batches",
  "tunnel_tx_gso_split",
  "tunnel_tx_gso_dropped",
  "tunnel_rx_coalesced",
  "tunnel_rx_nic_gro",
  "vm_frames",
  "vm_replies",
  "vm_too_big",
  "vm_dropped",
  ...VM_DROP_COUNTERS,
] as const;

/** What a Worker needs to attach to a {@linkcode SharedCounters}. */
export interface SharedCountersInit {
  /** Slot names, in slot order. */
  names: readonly string[];
  /** The shared memory (8 bytes per slot). */
  buffer: SharedArrayBuffer;
}

/** Named `BigInt64Array` slots on a `SharedArrayBuffer`, safe to update from any thread. */
export class SharedCounters {
  /** Slot names, in slot order. */
  readonly names: readonly string[];
  /** The shared memory (8 bytes per slot). */
  readonly buffer: SharedArrayBuffer;
  readonly #slots: BigInt64Array;
  readonly #index = new Map<string, number>();

  /**
   * Counters named `names` (default {@linkcode DATAPATH_COUNTERS}), zeroed, or attached to an
   * existing `buffer` of the same names.
   */
  constructor(names: readonly string[] = DATAPATH_COUNTERS, buffer?: SharedArrayBuffer) {
    if (new Set(names).size !== names.length) throw new TypeError("duplicate counter names");
    buffer ??= new SharedArrayBuffer(names.length * 8);
    if (buffer.byteLength !== names.length * 8) {
      throw new TypeError(
        `counter buffer holds ${buffer.byteLength / 8} slots, not ${names.length}`,
      );
    }
    this.names = [...names];
    this.buffer = buffer;
    this.#slots = new BigInt64Array(buffer);
    names.forEach((n, i) => this.#index.set(n, i));
  }

  /** Attaches to counters created elsewhere (e.g. in a Worker). */
  static attach(init: SharedCountersInit): SharedCounters {
    return new SharedCounters(init.names, init.buffer);
  }

  /** What to post to a Worker so it can {@linkcode SharedCounters.attach}. */
  share(): SharedCountersInit {
    return { names: this.names, buffer: this.buffer };
  }

  /** Slot index of `name`. @throws {RangeError} for a name not in the list. */
  index(name: string): number {
    const i = this.#index.get(name);
    if (i === undefined) throw new RangeError(`no counter named ${JSON.stringify(name)}`);
    return i;
  }

  /** Adds `n` to counter `name` (atomically). */
  add(name: string, n: number | bigint = 1): void {
    this.addAt(this.index(name), n);
  }

  /** Adds `n` to slot `i` (atomically). */
  addAt(i: number, n: number | bigint): void {
    Atomics.add(this.#slots, i, typeof n === "bigint" ? n : BigInt(n));
  }

  /** The current value of `name`. */
  get(name: string): number {
    return Number(Atomics.load(this.#slots, this.index(name)));
  }

  /** Every counter's current value. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < this.names.length; i++) {
      out[this.names[i]] = Number(Atomics.load(this.#slots, i));
    }
    return out;
  }

  /** Sets every counter to zero. */
  reset(): void {
    for (let i = 0; i < this.names.length; i++) Atomics.store(this.#slots, i, 0n);
  }
}

/**
 * A Worker's private accumulator: per-packet increments are plain number additions; `flush()`
 * (once per batch) adds the non-zero ones to the shared counters.
 */
export class CounterBatch {
  readonly #acc: Float64Array;
  #dirty = false;

  /** A private accumulator for `shared`. */
  constructor(readonly shared: SharedCounters) {
    this.#acc = new Float64Array(shared.names.length);
  }

  /** Slot index of `name` (resolve once, then use {@linkcode CounterBatch.add}). */
  slot(name: string): number {
    return this.shared.index(name);
  }

  /** Adds `n` to slot `i` locally. */
  add(i: number, n: number): void {
    this.#acc[i] += n;
    this.#dirty = true;
  }

  /** Publishes the local sums and zeroes them. */
  flush(): void {
    if (!this.#dirty) return;
    const acc = this.#acc;
    for (let i = 0; i < acc.length; i++) {
      if (acc[i] !== 0) {
        this.shared.addAt(i, acc[i]);
        acc[i] = 0;
      }
    }
    this.#dirty = false;
  }
}

/**
 * The counter slots every tunnel → device pump uses (home agent and mobile node alike), with
 * `gro` in the shape `writeCoalesced` takes.
 */
export function tunnelRxSlots(c: CounterBatch) {
  const s = {
    RX_PACKETS: c.slot("tunnel_rx_packets"),
    RX_BYTES: c.slot("tunnel_rx_bytes"),
    UNKNOWN: c.slot("tunnel_unknown"),
    SPOOFED: c.slot("tunnel_spoofed"),
    TRUNCATED: c.slot("tunnel_truncated"),
    RX_ERRORS: c.slot("tunnel_rx_errors"),
    RX_BATCHES: c.slot("tunnel_rx_batches"),
    COALESCED: c.slot("tunnel_rx_coalesced"),
    NIC_GRO: c.slot("tunnel_rx_nic_gro"),
  };
  return {
    ...s,
    gro: {
      packets: s.RX_PACKETS,
      bytes: s.RX_BYTES,
      errors: s.RX_ERRORS,
      coalesced: s.COALESCED,
      nicGro: s.NIC_GRO,
    },
  };
}
