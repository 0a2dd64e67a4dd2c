/**
 * Batched, pooled I/O for the data-path Workers (STYLE.md point 7, after wireguard-go's
 * `tun.Device.Read(bufs, sizes, offset)`): a ring of packet buffers with headroom and the
 * `mmsghdr` vector that points into it, built once; a preallocated `pollfd` set; the raw
 * IPPROTO_IPV6 (41) socket of RFC 2473 tunnels; a stop signal (eventfd + shared flag).
 *
 * Everything goes through the one FFI door, `ffi/libc.ts`. These are local to the tunnel
 * because the hot path wants precomputed pointers and no allocation per call, which the
 * general-purpose wrappers in `ffi/` (e.g. `pollBlocking(fds): number[]`) do not promise.
 *
 * @module
 */

import { check, errno, libc } from "../../ffi/libc.ts";
import {
  AF_INET6,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  F_GETFL,
  F_SETFL,
  IPPROTO_IPV6,
  IPV6_PKTINFO,
  IPV6_UNICAST_HOPS,
  O_NONBLOCK,
  POLLIN,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOL_IPV6,
  SOL_SOCKET,
} from "../../ffi/constants.ts";
import {
  addressOf,
  CMSGHDR,
  cmsgSpace,
  encodeSockaddrIn6,
  IN6_PKTINFO,
  IOVEC,
  MMSGHDR,
  MSGHDR,
  POLLFD,
  SOCKADDR_IN6,
} from "../../ffi/structs.ts";

/** Bytes kept free in front of every packet: room for an outer IPv6 header (RFC 2473 §3). */
export const HEADROOM = 40;
/** Largest datagram a raw socket delivers (IPv6 payload length is 16 bits). */
export const MAX_PACKET = 65535;
/** Length of an Ethernet header (RFC 2464 §3, no VLAN tag). */
export const ETHER_HEADER = 14;

const TWO32 = 4294967296;

function setPtr(dv: DataView, off: number, addr: number): void {
  dv.setUint32(off, addr >>> 0, true);
  dv.setUint32(off + 4, Math.floor(addr / TWO32), true);
}

/** Options of a {@linkcode MsgRing}. */
export interface MsgRingOptions {
  /** Number of messages per batch. */
  count: number;
  /** Data bytes per slot after the headroom. */
  capacity?: number;
  /**
   * `perSlot`: one sockaddr_in6 per message (receive: the source; send: the destination);
   * `shared`: every message names the same sockaddr_in6 (send to one peer).
   */
  names: "perSlot" | "shared";
  /** Attach one shared IPV6_PKTINFO control message (the source address) to every message. */
  pktinfo?: boolean;
}

/**
 * `count` packet buffers (`HEADROOM` + `capacity` bytes each, one allocation) and the
 * `struct mmsghdr[count]` (one iovec each) pointing into them, for recvmmsg/sendmmsg.
 * Pointers are computed once; per packet only lengths (and, for offsets inside a slot, the
 * iovec base) are written.
 */
export class MsgRing {
  readonly count: number;
  readonly capacity: number;
  /** Slot stride in `pool`. */
  readonly stride: number;
  /** All packet memory. */
  readonly pool: Uint8Array;
  /** Per slot: view starting at the data (after the headroom), `capacity` bytes. */
  readonly data: Uint8Array[] = [];
  /** Per slot: view starting `ETHER_HEADER` bytes before the data (frames on a tap). */
  readonly frame: Uint8Array[] = [];
  /** The `struct mmsghdr` vector. */
  readonly vec: Uint8Array;
  /** Per slot: the vector from that slot on (for resuming a partial sendmmsg). */
  readonly vecFrom: Uint8Array[] = [];
  /** sockaddr_in6 storage: per slot, or one shared. */
  readonly names: Uint8Array;
  readonly #dv: DataView;
  readonly #meta: Uint8Array;
  readonly #poolAddr: number;
  readonly #namesPerSlot: boolean;
  readonly #control: Uint8Array | null;

  constructor(opts: MsgRingOptions) {
    const count = opts.count;
    if (!Number.isInteger(count) || count < 1 || count > 1024) {
      throw new RangeError(`MsgRing count must be 1..1024, got ${count}`);
    }
    this.count = count;
    this.capacity = opts.capacity ?? MAX_PACKET;
    this.stride = (HEADROOM + this.capacity + 63) & ~63;
    this.pool = new Uint8Array(this.stride * count);
    this.#poolAddr = Number(addressOf(this.pool));
    this.#namesPerSlot = opts.names === "perSlot";
    const nameBytes = (this.#namesPerSlot ? count : 1) * SOCKADDR_IN6.SIZE;
    const ctlBytes = opts.pktinfo ? cmsgSpace(IN6_PKTINFO.SIZE) : 0;
    // One allocation for every struct: large enough to live off the V8 heap (stable address).
    const vecBytes = count * MMSGHDR.SIZE;
    const iovBytes = count * IOVEC.SIZE;
    const nameOff = vecBytes + iovBytes;
    const ctlOff = (nameOff + nameBytes + 7) & ~7;
    this.#meta = new Uint8Array(Math.max(256, ctlOff + ctlBytes));
    const dv = new DataView(this.#meta.buffer);
    this.#dv = dv;
    this.vec = this.#meta.subarray(0, vecBytes);
    this.names = this.#meta.subarray(nameOff, nameOff + nameBytes);
    this.#control = ctlBytes > 0 ? this.#meta.subarray(ctlOff, ctlOff + ctlBytes) : null;
    const metaAddr = Number(addressOf(this.#meta));
    for (let i = 0; i < count; i++) {
      const slot = i * this.stride;
      this.data.push(this.pool.subarray(slot + HEADROOM, slot + HEADROOM + this.capacity));
      this.frame.push(
        this.pool.subarray(slot + HEADROOM - ETHER_HEADER, slot + HEADROOM + this.capacity),
      );
      this.vecFrom.push(this.#meta.subarray(i * MMSGHDR.SIZE, vecBytes));
      const m = i * MMSGHDR.SIZE;
      const iov = vecBytes + i * IOVEC.SIZE;
      const name = nameOff + (this.#namesPerSlot ? i * SOCKADDR_IN6.SIZE : 0);
      setPtr(dv, m + MSGHDR.NAME, metaAddr + name);
      dv.setUint32(m + MSGHDR.NAMELEN, SOCKADDR_IN6.SIZE, true);
      setPtr(dv, m + MSGHDR.IOV, metaAddr + iov);
      setPtr(dv, m + MSGHDR.IOVLEN, 1);
      if (ctlBytes > 0) {
        setPtr(dv, m + MSGHDR.CONTROL, metaAddr + ctlOff);
        setPtr(dv, m + MSGHDR.CONTROLLEN, ctlBytes);
      }
      setPtr(dv, iov + IOVEC.BASE, this.#poolAddr + slot + HEADROOM);
      setPtr(dv, iov + IOVEC.LEN, this.capacity);
    }
    for (let i = 0; i < (this.#namesPerSlot ? count : 1); i++) {
      encodeSockaddrIn6(dv, nameOff + i * SOCKADDR_IN6.SIZE, { addr: new Uint8Array(16) });
    }
    if (this.#control) {
      dv.setBigUint64(ctlOff + CMSGHDR.LEN, BigInt(CMSGHDR.SIZE + IN6_PKTINFO.SIZE), true);
      dv.setInt32(ctlOff + CMSGHDR.LEVEL, SOL_IPV6, true);
      dv.setInt32(ctlOff + CMSGHDR.TYPE, IPV6_PKTINFO, true);
    }
  }

  /** Offset in `names` of the 16 address bytes of slot `i`'s sockaddr (or the shared one). */
  nameAddr(i: number): number {
    return (this.#namesPerSlot ? i * SOCKADDR_IN6.SIZE : 0) + SOCKADDR_IN6.ADDR;
  }

  /** Sets the source address of the shared IPV6_PKTINFO control message (RFC 3542 §6.1). */
  setPktinfoSource(addr: Uint8Array): void {
    if (!this.#control) throw new Error("MsgRing built without pktinfo");
    this.#control.set(addr.subarray(0, 16), CMSGHDR.DATA + IN6_PKTINFO.ADDR);
    new DataView(this.#control.buffer, this.#control.byteOffset).setUint32(
      CMSGHDR.DATA + IN6_PKTINFO.IFINDEX,
      0,
      true,
    );
  }

  /** Sends slot `i`'s data `[HEADROOM + offset, … + length)`: sets its iovec. */
  setSend(i: number, offset: number, length: number): void {
    const iov = this.count * MMSGHDR.SIZE + i * IOVEC.SIZE;
    setPtr(this.#dv, iov + IOVEC.BASE, this.#poolAddr + i * this.stride + HEADROOM + offset);
    this.#dv.setUint32(iov + IOVEC.LEN, length, true);
  }

  /** Sets slot `i`'s iovec length only (data at the slot's `HEADROOM`). */
  setLength(i: number, length: number): void {
    this.#dv.setUint32(this.count * MMSGHDR.SIZE + i * IOVEC.SIZE + IOVEC.LEN, length, true);
  }

  /** Slot `i`'s iovec length. */
  length(i: number): number {
    return this.#dv.getUint32(this.count * MMSGHDR.SIZE + i * IOVEC.SIZE + IOVEC.LEN, true);
  }

  /** Makes slots `[0, n)` ready for the next recvmmsg (msg_namelen, iovec, flags). */
  resetRecv(n: number): void {
    const dv = this.#dv;
    for (let i = 0; i < n; i++) {
      const m = i * MMSGHDR.SIZE;
      dv.setUint32(m + MSGHDR.NAMELEN, SOCKADDR_IN6.SIZE, true);
      dv.setInt32(m + MSGHDR.FLAGS, 0, true);
    }
  }

  /** Bytes received into slot `i` by the last recvmmsg (`msg_len`). */
  received(i: number): number {
    return this.#dv.getUint32(i * MMSGHDR.SIZE + MMSGHDR.LEN, true);
  }

  /** `msg_flags` of slot `i` after recvmmsg (MSG_TRUNC …). */
  flags(i: number): number {
    return this.#dv.getInt32(i * MMSGHDR.SIZE + MSGHDR.FLAGS, true);
  }
}

/** Outcome of {@linkcode sendAll}: messages and bytes the kernel refused. */
export interface SendFailures {
  packets: number;
  bytes: number;
  /** errno of the last refusal (0 when none). */
  errno: number;
}

/**
 * sendmmsg over `ring` slots `[0, n)`, skipping messages the kernel refuses (EMSGSIZE,
 * EADDRNOTAVAIL, ENETUNREACH …: sendmmsg stops at the first failing message). Writes the
 * failures into `out` (reused, no allocation).
 */
export function sendAll(fd: number, ring: MsgRing, n: number, out: SendFailures): void {
  const lib = libc();
  out.packets = 0;
  out.bytes = 0;
  out.errno = 0;
  let off = 0;
  while (off < n) {
    const r = lib.sendmmsg(fd, ring.vecFrom[off], n - off, 0);
    if (r > 0) {
      off += r;
      continue;
    }
    const e = errno();
    if (e === 4 /* EINTR */) continue;
    out.errno = e;
    out.packets++;
    out.bytes += ring.length(off);
    off++;
  }
}

/** A preallocated `struct pollfd` set: `fds` watched for POLLIN. */
export class Poller {
  readonly #buf: Uint8Array;
  readonly #dv: DataView;
  readonly #n: bigint;

  constructor(fds: readonly number[]) {
    this.#n = BigInt(fds.length);
    this.#buf = new Uint8Array(Math.max(256, fds.length * POLLFD.SIZE));
    this.#dv = new DataView(this.#buf.buffer);
    fds.forEach((fd, i) => {
      this.#dv.setInt32(i * POLLFD.SIZE + POLLFD.FD, fd, true);
      this.#dv.setInt16(i * POLLFD.SIZE + POLLFD.EVENTS, POLLIN, true);
    });
  }

  /** Blocks the calling thread (Workers only) until an fd is ready or `timeoutMs` passes. */
  wait(timeoutMs: number): number {
    const r = libc().poll(this.#buf, this.#n, timeoutMs);
    if (r < 0 && errno() !== 4) check("poll", r);
    return r < 0 ? 0 : r;
  }

  /** revents of entry `i` after the last `wait`. */
  revents(i: number): number {
    return this.#dv.getUint16(i * POLLFD.SIZE + POLLFD.REVENTS, true);
  }
}

/** Sets O_NONBLOCK on `fd` (the whole open file description, shared by every dup). */
export function setNonblocking(fd: number): void {
  const lib = libc();
  const fl = check("fcntl(F_GETFL)", lib.fcntl(fd, F_GETFL, 0));
  if ((fl & O_NONBLOCK) === 0) check("fcntl(F_SETFL)", lib.fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

function setIntOpt(fd: number, level: number, name: number, value: number, what: string): void {
  const v = new Uint8Array(4);
  new DataView(v.buffer).setInt32(0, value, true);
  check(`setsockopt(${what})`, libc().setsockopt(fd, level, name, v, 4));
}

/**
 * The raw IPPROTO_IPV6 (41) socket of an IPv6-in-IPv6 tunnel (RFC 2473 §3): sending an inner
 * packet to a peer makes the kernel prepend the outer header (next header 41, hop limit
 * `hopLimit`); receiving yields the inner packet (what follows the outer header) with the
 * outer source in `msg_name`. Without an ip6_tunnel module, a raw socket is how the kernel
 * hands such packets to userland (and it then sends no Parameter Problem for them).
 */
export class TunnelSocket {
  #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * Opens the socket; with `bind`, binds it to that local address (the outer source of
   * everything sent, and only packets to it are received).
   */
  static open(opts: { bind?: string; hopLimit?: number; bufferBytes?: number } = {}): TunnelSocket {
    const lib = libc();
    const fd = check(
      "socket(AF_INET6, SOCK_RAW, 41)",
      lib.socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_IPV6),
    );
    const s = new TunnelSocket(fd);
    try {
      setIntOpt(fd, SOL_IPV6, IPV6_UNICAST_HOPS, opts.hopLimit ?? 64, "IPV6_UNICAST_HOPS");
      const bytes = opts.bufferBytes ?? 4 << 20;
      for (
        const [force, plain, name] of [[SO_RCVBUFFORCE, SO_RCVBUF, "SO_RCVBUF"], [
          SO_SNDBUFFORCE,
          SO_SNDBUF,
          "SO_SNDBUF",
        ]] as const
      ) {
        const v = new Uint8Array(4);
        new DataView(v.buffer).setInt32(0, bytes, true);
        if (lib.setsockopt(fd, SOL_SOCKET, force, v, 4) < 0) {
          setIntOpt(fd, SOL_SOCKET, plain, bytes, name);
        }
      }
      if (opts.bind !== undefined) {
        const sa = new Uint8Array(SOCKADDR_IN6.SIZE);
        encodeSockaddrIn6(new DataView(sa.buffer), 0, { addr: opts.bind });
        check(`bind(${opts.bind})`, lib.bind(fd, sa, sa.length));
      }
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  /** The file descriptor (-1 once closed). */
  get fd(): number {
    return this.#fd;
  }

  /** Closes the socket; idempotent. */
  close(): void {
    if (this.#fd >= 0) {
      libc().close(this.#fd);
      this.#fd = -1;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * How the main thread stops its Workers: a shared flag the loops check once per batch, and an
 * eventfd each Worker polls next to its data fds so that a Worker blocked in poll() wakes up.
 * The eventfd is never drained, so one signal wakes every Worker.
 */
export class StopSignal {
  /** Int32 flag: 0 = run, 1 = stop. */
  readonly flag: SharedArrayBuffer = new SharedArrayBuffer(4);
  #fd: number;

  constructor() {
    this.#fd = check("eventfd", libc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  }

  /** The eventfd (-1 once closed). */
  get fd(): number {
    return this.#fd;
  }

  /** Sets the flag and makes the eventfd readable. */
  signal(): void {
    Atomics.store(new Int32Array(this.flag), 0, 1);
    if (this.#fd < 0) return;
    const one = new Uint8Array(8);
    one[0] = 1;
    libc().write(this.#fd, one, 8n);
  }

  /** Closes the eventfd; idempotent. Only after every Worker has stopped. */
  close(): void {
    if (this.#fd >= 0) {
      libc().close(this.#fd);
      this.#fd = -1;
    }
  }
}

/**
 * Length of the IPv6 packet at the start of `b` (40 + payload length), or -1 when the first
 * `len` bytes are not one: too short, version not 6, payload length beyond `len`, or a
 * jumbogram (payload length 0 with a Hop-by-Hop header, RFC 2675), which no path here carries.
 * A cheap header peek, not a parse (STYLE.md point 7).
 */
export function ipv6PacketLength(b: Uint8Array, len: number): number {
  if (len < 40 || (b[0] & 0xf0) !== 0x60) return -1;
  const plen = (b[4] << 8) | b[5];
  if (plen === 0 && b[6] === 0) return -1;
  const total = 40 + plen;
  return total > len ? -1 : total;
}
