/**
 * Small pieces the data-path Workers share, on top of `ffi/` (`RawSocket6`, `SendRing`,
 * `RecvRing`, `Poller`, `EventFd`): buffer geometry, the tunnel socket's setup, a sendmmsg loop
 * that skips refused messages, a non-blocking recvmmsg, the stop signal, and the cheap IPv6
 * header peek (STYLE.md point 7).
 *
 * @module
 */

import { check, errno, libc } from "../../ffi/libc.ts";
import { F_GETFL, F_SETFL, IPPROTO_IPV6, MSG_DONTWAIT, O_NONBLOCK } from "../../ffi/constants.ts";
import { EventFd } from "../../ffi/poll.ts";
import { RawSocket6, RecvRing, type SendRing } from "../../ffi/raw_socket.ts";
import { PacketMemory } from "./checksum.ts";
import { type CounterBatch, tunnelRxSlots } from "./counters.ts";
import { TcpCoalescer } from "./gro.ts";
import { GsoSplitter } from "./gso.ts";
import { VNET_HDR_LEN } from "./vnet.ts";

/** Bytes kept free in front of every packet: room for an outer IPv6 header (RFC 2473 §3). */
export const HEADROOM = 40;
/** Largest datagram a raw socket delivers (the IPv6 payload length is 16 bits). */
export const MAX_PACKET = 65535;
/** Length of an Ethernet header (RFC 2464 §3, no VLAN tag). */
export const ETHER_HEADER = 14;
/** Messages per recvmmsg/sendmmsg batch unless told otherwise. */
export const DEFAULT_BATCH = 64;
/**
 * Where a Worker's device read buffer holds the IPv6 header: 8-aligned (so that TCP payloads
 * are word-aligned for the checksum), with room in front for a virtio_net_hdr and an Ethernet
 * header.
 */
export const READ_IP_AT = 24;
/** Bytes a device read may return: virtio_net_hdr + Ethernet + the largest IPv6 packet. */
export const READ_CAPACITY = VNET_HDR_LEN + ETHER_HEADER + 40 + 0xffff;

/** A device read buffer: the IPv6 header of what is read lands at {@linkcode READ_IP_AT}. */
export function newReadBuffer(): PacketMemory {
  return new PacketMemory(new ArrayBuffer(READ_IP_AT + 40 + 0xffff + 8));
}

/**
 * Opens the raw IPPROTO_IPV6 (41) socket of an IPv6-in-IPv6 tunnel (RFC 2473 §3): sending an
 * inner packet to a peer makes the kernel prepend the outer header (next header 41, hop limit
 * 64, RFC 2473 §6.3 "tunnel hop limit"); receiving yields what follows the outer header, with
 * the outer source in `msg_name`. With `bind`, that address is the outer source of everything
 * sent and only packets sent to it are received. Without an ip6_tunnel module in the kernel,
 * a raw socket is how such packets reach userland (and the kernel then sends no Parameter
 * Problem for them).
 */
export function openTunnelSocket(opts: { bind?: string; bufferBytes?: number } = {}): RawSocket6 {
  const s = RawSocket6.open(IPPROTO_IPV6);
  try {
    s.setUnicastHops(64);
    const bytes = opts.bufferBytes ?? 4 << 20;
    s.setBufferSizes({ rcv: bytes, snd: bytes });
    if (opts.bind !== undefined) s.bind(opts.bind);
  } catch (e) {
    s.close();
    throw e;
  }
  return s;
}

/** Outcome of {@linkcode sendAll}: messages and bytes the kernel refused. */
export interface SendFailures {
  packets: number;
  bytes: number;
  /** errno of the last refusal (0 when none). */
  errno: number;
}

/**
 * sendmmsg of `ring` slots `[0, n)` (blocking: a full socket buffer is back-pressure),
 * skipping the messages the kernel refuses (EMSGSIZE, EADDRNOTAVAIL, ENETUNREACH …: sendmmsg
 * stops at the first failing one). `lengths[i]` is slot i's length, for the byte count.
 * Writes the failures into `out` (reused: no allocation).
 */
export function sendAll(
  fd: number,
  ring: SendRing,
  n: number,
  lengths: Int32Array,
  out: SendFailures,
): void {
  const lib = libc();
  out.packets = 0;
  out.bytes = 0;
  out.errno = 0;
  let off = 0;
  while (off < n) {
    const r = lib.sendmmsg(fd, ring.from[off], n - off, 0);
    if (r > 0) {
      off += r;
      continue;
    }
    const e = errno();
    if (e === 4 /* EINTR */) continue;
    out.errno = e;
    out.packets++;
    out.bytes += lengths[off];
    off++;
  }
}

/**
 * The sending side of a tunnel Worker: inner packets are copied (or segmented) into the slots
 * of a `SendRing` whose IPv6 headers sit at `ipAt[i]` (8-aligned), and the batch leaves in one
 * sendmmsg on the tunnel socket (the kernel prepends the outer header) when the ring is full or
 * the Worker flushes. Counts tunnel_tx_* per flush.
 *
 * (Writing the outer header here and sending on an IPPROTO_RAW socket was measured ~10 %
 * slower per packet than letting the kernel build it: 4.2 vs 3.8 µs on a veth pair.)
 */
export class SendBatch {
  /** Slots filled so far. */
  n = 0;
  /** Views over the ring's slot memory. */
  readonly mem: PacketMemory;
  /** Offset of slot i's IPv6 header in `mem`. */
  readonly ipAt: Int32Array;
  readonly #lengths: Int32Array;
  readonly #fail: SendFailures = { packets: 0, bytes: 0, errno: 0 };
  #bytes = 0;
  readonly #packets: number;
  readonly #byteCount: number;
  readonly #errors: number;
  readonly #batches: number;

  /** `ring` must have been built with `headroom` in front of the data (the IPv6 header). */
  constructor(readonly fd: number, readonly ring: SendRing, readonly counters: CounterBatch) {
    this.mem = PacketMemory.of(ring.buffers[0]);
    this.ipAt = new Int32Array(ring.slots);
    for (let i = 0; i < ring.slots; i++) {
      this.ipAt[i] = ring.buffers[i].byteOffset + ring.headroom;
      if ((this.ipAt[i] & 7) !== 0) throw new RangeError("SendBatch: slot data not 8-aligned");
    }
    this.#lengths = new Int32Array(ring.slots);
    this.#packets = counters.slot("tunnel_tx_packets");
    this.#byteCount = counters.slot("tunnel_tx_bytes");
    this.#errors = counters.slot("tunnel_tx_errors");
    this.#batches = counters.slot("tunnel_tx_batches");
  }

  /** The next free slot, after sending the batch when the ring is full. */
  slot(): number {
    if (this.n === this.ring.slots) this.flush();
    return this.n;
  }

  /** Slot `slot()` returned now holds a packet of `len` bytes at `ipAt[slot]`. */
  commit(len: number): void {
    const n = this.n++;
    this.ring.setLength(n, len);
    this.#lengths[n] = len;
    this.#bytes += len;
  }

  /** Sends the filled slots (sendmmsg, skipping refused messages) and counts them. */
  flush(): void {
    const n = this.n;
    if (n === 0) return;
    const fail = this.#fail;
    sendAll(this.fd, this.ring, n, this.#lengths, fail);
    const c = this.counters;
    c.add(this.#packets, n - fail.packets);
    c.add(this.#byteCount, this.#bytes - fail.bytes);
    if (fail.packets > 0) c.add(this.#errors, fail.packets);
    c.add(this.#batches, 1);
    this.n = 0;
    this.#bytes = 0;
  }
}

/**
 * recvmmsg into `ring` without blocking (MSG_DONTWAIT): returns the count, 0 when nothing is
 * queued. The Workers poll first, but a poll may also report only a pending error (consumed by
 * this call, which then must not block, or the other pump and the stop signal would wait).
 */
export function recvNow(fd: number, ring: RecvRing): number {
  ring.prepare();
  const n = libc().recvmmsg(fd, ring.mmsghdrs, ring.slots, MSG_DONTWAIT, null);
  if (n <= 0) return 0;
  ring.filled(n);
  return n;
}

/*
 * Lengths of device reads and writes (libc `read`/`write`, `size_t`) are passed as `BigInt(len)`
 * on purpose. Measured (Deno 2.9, 5 M write(2) calls to /dev/null, 1 MiB V8 nursery):
 *   BigInt(len) ........ 284 ns/call, no garbage (Turbofan lowers it into the fast call's int64)
 *   a cached BigInt .... 289 ns, no garbage
 *   a number ........... 409 ns: V8's fast call wants a BigInt for a 64-bit parameter; a number
 *                        takes the slow path (and allocates)
 *   a u32 parameter .... 298 ns, no garbage
 * The `isize` result of `read`/`write` comes back as a BigInt (~190 scavenges per 5 M calls,
 * ~40 bytes each, against 3–8 with an `i32` result), so the Workers call `read_i32` /
 * `write_i32` (ffi/libc.ts: the same functions with the result as a plain number). (A wrapper
 * function here around the call measured ~15 ns and ~15 % more garbage: call sites stay direct.)
 */

/** Sets O_NONBLOCK on `fd` (the open file description: shared with every dup of it). */
export function setNonblocking(fd: number): void {
  const lib = libc();
  const fl = check("fcntl(F_GETFL)", lib.fcntl(fd, F_GETFL, 0));
  if ((fl & O_NONBLOCK) === 0) check("fcntl(F_SETFL)", lib.fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

/**
 * How the main thread stops its Workers: a shared flag the loops check once per poll round, and an
 * eventfd each Worker polls next to its data fds, so that a Worker blocked in poll() wakes. The
 * eventfd is never drained: one signal wakes every Worker.
 */
export class StopSignal {
  /** Int32 flag: 0 = run, 1 = stop. */
  readonly flag: SharedArrayBuffer = new SharedArrayBuffer(4);
  readonly #event = new EventFd();

  /** The eventfd (-1 once closed). */
  get fd(): number {
    return this.#event.fd;
  }

  /** Sets the flag and makes the eventfd readable. */
  signal(): void {
    Atomics.store(new Int32Array(this.flag), 0, 1);
    if (this.#event.fd >= 0) this.#event.signal();
  }

  /** Closes the eventfd; idempotent. Only once every Worker has stopped. */
  close(): void {
    this.#event.close();
  }
}

/**
 * Length of the IPv6 packet at the start of `b` (40 + payload length), or -1 when the first
 * `len` bytes are not one: too short, version not 6, payload length beyond `len`, or a
 * jumbogram (payload length 0 with a Hop-by-Hop header, RFC 2675), which no path here carries.
 * A cheap header peek, not a parse.
 */
export function ipv6PacketLength(b: Uint8Array, len: number): number {
  if (len < 40 || (b[0] & 0xf0) !== 0x60) return -1;
  const plen = (b[4] << 8) | b[5];
  if (plen === 0 && b[6] === 0) return -1;
  const total = 40 + plen;
  return total > len ? -1 : total;
}

/**
 * What a tunnel → device pump receives into: a `RecvRing` of `batch` slots with the outer-header
 * headroom, the views of its data, the coalescer that merges in place (`linkHeader` bytes of
 * framing in front of each unit), a splitter and a scratch buffer for packets a NIC's GRO merged
 * (written to a device without offloads one segment at a time), and the receive counters.
 */
export function tunnelReceiver(
  c: CounterBatch,
  batch: number,
  capacity: number,
  linkHeader: number,
) {
  const ring = new RecvRing(batch, capacity, { headroom: HEADROOM });
  const mem = PacketMemory.of(ring.buffers[0]);
  return {
    ring,
    mem,
    data: ring.buffers.map((b) => b.subarray(HEADROOM)),
    gro: new TcpCoalescer(mem, { maxUnits: batch, capacity, linkHeader }),
    split: new GsoSplitter(),
    scratch: newReadBuffer(),
    slots: tunnelRxSlots(c),
  };
}
