/**
 * IPv6 raw sockets (RFC 3542) with ancillary data for the Mobile IPv6
 * signaling path (RFC 6275 §6: HAO in IPV6_DSTOPTS, RH2 seen through
 * IPV6_RECVRTHDR or a raw IPPROTO_ROUTING socket), plus recvmmsg/sendmmsg
 * rings for the data path.
 *
 * Every buffer the kernel sees (msghdr, iovec, sockaddr, control area) is
 * allocated once per socket or ring and its address cached; a send or receive
 * writes a few fields and makes one FFI call. The caller's payload is handed to
 * the kernel in place (its address is cached while the same Uint8Array is
 * passed again).
 *
 * @module
 */

import {
  AF_INET6,
  ICMP6_FILTER,
  IPV6_CHECKSUM,
  IPV6_DSTOPTS,
  IPV6_HOPLIMIT,
  IPV6_JOIN_GROUP,
  IPV6_LEAVE_GROUP,
  IPV6_MULTICAST_HOPS,
  IPV6_MULTICAST_IF,
  IPV6_MULTICAST_LOOP,
  IPV6_PKTINFO,
  IPV6_RECVDSTOPTS,
  IPV6_RECVHOPLIMIT,
  IPV6_RECVPKTINFO,
  IPV6_RECVRTHDR,
  IPV6_RTHDR,
  IPV6_UNICAST_HOPS,
  MSG_CTRUNC,
  MSG_TRUNC,
  MSG_WAITFORONE,
  SO_BINDTODEVICE,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_ICMPV6,
  SOL_IPV6,
  SOL_PACKET,
  SOL_SOCKET,
} from "./constants.ts";
import { check, cstring, Errno, errno, ErrnoError, libc } from "./libc.ts";
import { OwnedFd } from "./fd.ts";
import {
  addressOf,
  cmsgDataLen,
  CMSGHDR,
  cmsgSpace,
  encodeIcmp6Filter,
  encodeIpv6Mreq,
  encodeSockaddrIn6,
  encodeSockaddrLl,
  formatIpv6,
  HOST_LE,
  IN6_PKTINFO,
  IOVEC,
  MMSGHDR,
  MSGHDR,
  parseIpv6Into,
  putU64,
  SOCKADDR_IN6,
  TPACKET_AUXDATA,
  writeCmsgHeader,
} from "./structs.ts";

/** Largest IPv6 extension header: (255 + 1) × 8 octets (RFC 8200 §4.3). */
export const MAX_EXT_HDR_LEN = 2048;

const PKTINFO_SPACE = cmsgSpace(IN6_PKTINFO.SIZE);
const INT_SPACE = cmsgSpace(4);
const EXT_SPACE = cmsgSpace(MAX_EXT_HDR_LEN);
/** Control area of a socket: PKTINFO + HOPLIMIT + RTHDR + DSTOPTS at their largest, + slack. */
const CONTROL_SIZE = PKTINFO_SPACE + 2 * INT_SPACE + 2 * EXT_SPACE;

/** Where and how `RawSocket6.send` sends (RFC 3542 §6–§9 ancillary data). */
export interface SendOptions {
  /** Destination; `%zone` text or `ifindex` gives a link-local scope. */
  dst: string;
  /** Source address (IPV6_PKTINFO); must be an address of this host. */
  src?: string;
  /** Outgoing interface (IPV6_PKTINFO), also the scope of a link-local `dst`. */
  ifindex?: number;
  /** Hop limit for this packet (IPV6_HOPLIMIT). */
  hopLimit?: number;
  /** A complete Destination Options header, placed after any routing header (IPV6_DSTOPTS). */
  dstOpts?: Uint8Array;
  /** A complete Routing header (IPV6_RTHDR); a kernel without MIP6 refuses type 2 (EINVAL). */
  rtHdr?: Uint8Array;
}

/** What `RawSocket6.recv` got. Optional fields are present when enabled and delivered. */
export interface RecvInfo {
  /** Bytes written into the caller's buffer. */
  length: number;
  /** Source address. */
  src: string;
  /** Destination address (IPV6_RECVPKTINFO). */
  dst?: string;
  /** Arrival interface (IPV6_RECVPKTINFO). */
  ifindex?: number;
  /** Hop limit (IPV6_RECVHOPLIMIT). */
  hopLimit?: number;
  /** Destination Options header, copied (IPV6_RECVDSTOPTS). */
  dstOpts?: Uint8Array;
  /** Routing header, copied (IPV6_RECVRTHDR). */
  rtHdr?: Uint8Array;
  /** The datagram was longer than the buffer (MSG_TRUNC). */
  truncated: boolean;
  /** Some ancillary data did not fit (MSG_CTRUNC). */
  controlTruncated: boolean;
}

function checkExtHeader(kind: string, h: Uint8Array): void {
  if (h.length < 8 || h.length > MAX_EXT_HDR_LEN || (h[1] + 1) * 8 !== h.length) {
    throw new TypeError(
      `${kind}: extension header must be (hdrlen + 1) × 8 bytes, got ${h.length} with hdrlen ${
        h[1]
      }`,
    );
  }
}

/** Opens a socket or throws `ErrnoError` naming `label`. */
export function openSocket(
  domain: number,
  type: number,
  protocol: number,
  opts: { nonblocking?: boolean; label: string },
): number {
  const flags = SOCK_CLOEXEC | (opts.nonblocking ? SOCK_NONBLOCK : 0);
  return check(opts.label, libc().socket(domain, type | flags, protocol));
}

/** One preallocated msghdr with a single iovec, a name area and a control area. */
class MsgBuffers {
  readonly msg = new Uint8Array(new ArrayBuffer(MSGHDR.SIZE));
  readonly msgDv = new DataView(this.msg.buffer);
  readonly iov = new Uint8Array(new ArrayBuffer(IOVEC.SIZE));
  readonly iovDv = new DataView(this.iov.buffer);
  readonly name: Uint8Array;
  readonly nameDv: DataView;
  readonly ctl: Uint8Array;
  readonly ctlDv: DataView;
  readonly ctlPtr: number;
  #buf: Uint8Array | undefined;
  #bufPtr = 0;

  constructor(nameSize: number, controlSize: number) {
    this.name = new Uint8Array(new ArrayBuffer(nameSize));
    this.nameDv = new DataView(this.name.buffer);
    this.ctl = new Uint8Array(new ArrayBuffer(controlSize));
    this.ctlDv = new DataView(this.ctl.buffer);
    this.ctlPtr = addressOf(this.ctl);
    putU64(this.msgDv, MSGHDR.NAME, addressOf(this.name));
    putU64(this.msgDv, MSGHDR.IOV, addressOf(this.iov));
    putU64(this.msgDv, MSGHDR.IOVLEN, 1);
  }

  /** Points the iovec at `buf` (address cached while the same view comes back). */
  setData(buf: Uint8Array, len: number): void {
    if (buf !== this.#buf) {
      this.#buf = buf;
      this.#bufPtr = addressOf(buf);
    }
    putU64(this.iovDv, IOVEC.BASE, this.#bufPtr);
    putU64(this.iovDv, IOVEC.LEN, len);
  }

  setName(len: number): void {
    this.msgDv.setUint32(MSGHDR.NAMELEN, len, HOST_LE);
  }

  setControl(len: number): void {
    putU64(this.msgDv, MSGHDR.CONTROL, len === 0 ? 0 : this.ctlPtr);
    putU64(this.msgDv, MSGHDR.CONTROLLEN, len);
    this.msgDv.setInt32(MSGHDR.FLAGS, 0, HOST_LE);
  }

  get namelen(): number {
    return this.msgDv.getUint32(MSGHDR.NAMELEN, HOST_LE);
  }

  get controllen(): number {
    return this.msgDv.getUint32(MSGHDR.CONTROLLEN, HOST_LE);
  }

  get flags(): number {
    return this.msgDv.getInt32(MSGHDR.FLAGS, HOST_LE);
  }
}

/**
 * An IPv6 raw socket (`socket(AF_INET6, SOCK_RAW, protocol)`, RFC 3542).
 * Owns its fd: `close()` is idempotent and `using` closes it. Calls after
 * `close()` fail with `EBADF`.
 */
export class RawSocket6 extends OwnedFd {
  /** The protocol given to socket(2): 135 (MH), 60, 43, 41, 58, 255 (IPPROTO_RAW)… */
  readonly protocol: number;
  readonly #s = new MsgBuffers(SOCKADDR_IN6.SIZE, CONTROL_SIZE);
  readonly #r = new MsgBuffers(SOCKADDR_IN6.SIZE, CONTROL_SIZE + INT_SPACE);
  #dst: string | undefined;
  #dstScope = 0;
  #src: string | undefined;
  readonly #srcBytes = new Uint8Array(16);
  readonly #int = new Uint8Array(new ArrayBuffer(4));

  private constructor(fd: number, protocol: number) {
    super(fd);
    this.protocol = protocol;
  }

  /**
   * Opens `socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, protocol)` in the calling
   * thread's network namespace (needs CAP_NET_RAW).
   */
  static open(protocol: number, opts: { nonblocking?: boolean } = {}): RawSocket6 {
    const fd = openSocket(AF_INET6, SOCK_RAW, protocol, {
      nonblocking: opts.nonblocking,
      label: `socket(AF_INET6, SOCK_RAW, ${protocol})`,
    });
    return new RawSocket6(fd, protocol);
  }

  /**
   * Takes ownership of a raw socket fd opened elsewhere in this process (e.g.
   * handed to a Worker with `release()` + postMessage).
   */
  static adopt(fd: number, protocol: number): RawSocket6 {
    return new RawSocket6(fd, protocol);
  }

  // ---- options -------------------------------------------------------------------------------

  #setInt(level: number, name: number, value: number, label: string): void {
    new DataView(this.#int.buffer).setInt32(0, value, HOST_LE);
    check(`setsockopt(${label})`, libc().setsockopt(this.fd, level, name, this.#int, 4));
  }

  #getInt(level: number, name: number, label: string): number {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, 4, HOST_LE);
    check(`getsockopt(${label})`, libc().getsockopt(this.fd, level, name, this.#int, len));
    return new DataView(this.#int.buffer).getInt32(0, HOST_LE);
  }

  /**
   * IPV6_CHECKSUM (RFC 3542 §3.1): offset of the 16-bit checksum the kernel
   * computes and verifies, or -1 for none. An IPPROTO_MH socket starts at 4 and
   * a kernel without MIP6 sums over the CoA, while RFC 6275 §6.1.1 wants the
   * HoA when a HAO is present: set -1 and compute it yourself.
   */
  setChecksumOffset(offset: number): void {
    this.#setInt(SOL_IPV6, IPV6_CHECKSUM, offset, `IPV6_CHECKSUM ${offset}`);
  }

  /** The current IPV6_CHECKSUM offset (-1 = off). */
  getChecksumOffset(): number {
    return this.#getInt(SOL_IPV6, IPV6_CHECKSUM, "IPV6_CHECKSUM");
  }

  /** IPV6_RECVPKTINFO (RFC 3542 §6.1): deliver destination address and interface. */
  setRecvPktInfo(on: boolean): void {
    this.#setInt(SOL_IPV6, IPV6_RECVPKTINFO, on ? 1 : 0, "IPV6_RECVPKTINFO");
  }

  /** IPV6_RECVHOPLIMIT (RFC 3542 §6.3). */
  setRecvHopLimit(on: boolean): void {
    this.#setInt(SOL_IPV6, IPV6_RECVHOPLIMIT, on ? 1 : 0, "IPV6_RECVHOPLIMIT");
  }

  /** IPV6_RECVDSTOPTS (RFC 3542 §4): deliver Destination Options headers the kernel parsed. */
  setRecvDstOpts(on: boolean): void {
    this.#setInt(SOL_IPV6, IPV6_RECVDSTOPTS, on ? 1 : 0, "IPV6_RECVDSTOPTS");
  }

  /** IPV6_RECVRTHDR (RFC 3542 §4): deliver Routing headers the kernel parsed. */
  setRecvRtHdr(on: boolean): void {
    this.#setInt(SOL_IPV6, IPV6_RECVRTHDR, on ? 1 : 0, "IPV6_RECVRTHDR");
  }

  /** IPV6_UNICAST_HOPS: default hop limit of unicast packets (-1 = route default). */
  setUnicastHops(n: number): void {
    this.#setInt(SOL_IPV6, IPV6_UNICAST_HOPS, n, "IPV6_UNICAST_HOPS");
  }

  /** IPV6_MULTICAST_HOPS (ND messages need 255, RFC 4861 §6.1). */
  setMulticastHops(n: number): void {
    this.#setInt(SOL_IPV6, IPV6_MULTICAST_HOPS, n, "IPV6_MULTICAST_HOPS");
  }

  /** IPV6_MULTICAST_IF: outgoing interface for multicast. */
  setMulticastIf(ifindex: number): void {
    this.#setInt(SOL_IPV6, IPV6_MULTICAST_IF, ifindex, `IPV6_MULTICAST_IF ${ifindex}`);
  }

  /** IPV6_MULTICAST_LOOP: loop own multicast back to local listeners. */
  setMulticastLoop(on: boolean): void {
    this.#setInt(SOL_IPV6, IPV6_MULTICAST_LOOP, on ? 1 : 0, "IPV6_MULTICAST_LOOP");
  }

  /** IPV6_JOIN_GROUP (RFC 3493 §5.2). */
  joinGroup(addr: string, ifindex: number): void {
    const m = encodeIpv6Mreq(addr, ifindex);
    check(
      `setsockopt(IPV6_JOIN_GROUP ${addr} if ${ifindex})`,
      libc().setsockopt(this.fd, SOL_IPV6, IPV6_JOIN_GROUP, m, m.length),
    );
  }

  /** IPV6_LEAVE_GROUP (RFC 3493 §5.2). */
  leaveGroup(addr: string, ifindex: number): void {
    const m = encodeIpv6Mreq(addr, ifindex);
    check(
      `setsockopt(IPV6_LEAVE_GROUP ${addr} if ${ifindex})`,
      libc().setsockopt(this.fd, SOL_IPV6, IPV6_LEAVE_GROUP, m, m.length),
    );
  }

  /** SO_BINDTODEVICE: only traffic of interface `name` (the error names the device). */
  bindToDevice(name: string): void {
    const b = cstring(name);
    check(
      `setsockopt(SO_BINDTODEVICE ${name})`,
      libc().setsockopt(this.fd, SOL_SOCKET, SO_BINDTODEVICE, b, b.length),
    );
  }

  /** bind(2) to a local address (`%zone` allowed for link-local). */
  bind(addr: string): void {
    const sa = new Uint8Array(SOCKADDR_IN6.SIZE);
    encodeSockaddrIn6(new DataView(sa.buffer), 0, { addr });
    check(`bind(${addr})`, libc().bind(this.fd, sa, sa.length));
  }

  /** ICMP6_FILTER (RFC 3542 §3.2): pass only these ICMPv6 types (IPPROTO_ICMPV6 sockets). */
  setIcmp6Filter(passTypes: number[]): void {
    const f = encodeIcmp6Filter(passTypes);
    check(
      "setsockopt(ICMP6_FILTER)",
      libc().setsockopt(this.fd, SOL_ICMPV6, ICMP6_FILTER, f, f.length),
    );
  }

  /** SO_RCVBUF/SO_SNDBUF, using the *FORCE variants (beyond rmem_max) when privileged. */
  setBufferSizes(sizes: { rcv?: number; snd?: number }): void {
    setBufferSizes(this.fd, sizes);
  }

  // ---- send / receive --------------------------------------------------------------------------

  /**
   * sendmsg(2) of `payload` (the upper-layer part: the kernel builds the IPv6
   * header and the extension headers given as ancillary data, RFC 3542 §6–§9).
   * The msghdr, sockaddr and control buffers are the socket's own, reused.
   * Returns the bytes sent; throws `ErrnoError` naming the cmsgs used.
   */
  send(payload: Uint8Array, to: SendOptions): number {
    const s = this.#s;
    const scope = to.ifindex ?? 0;
    if (to.dst !== this.#dst || scope !== this.#dstScope) {
      this.#dst = undefined;
      encodeSockaddrIn6(s.nameDv, 0, { addr: to.dst, scopeId: to.ifindex });
      this.#dst = to.dst;
      this.#dstScope = scope;
    }
    s.setName(SOCKADDR_IN6.SIZE);
    const ctl = s.ctl, dv = s.ctlDv;
    let c = 0;
    if (to.src !== undefined || to.ifindex !== undefined) {
      const d = c + CMSGHDR.DATA;
      c = writeCmsgHeader(dv, c, SOL_IPV6, IPV6_PKTINFO, IN6_PKTINFO.SIZE);
      if (to.src === undefined) {
        ctl.fill(0, d + IN6_PKTINFO.ADDR, d + IN6_PKTINFO.ADDR + 16);
      } else {
        if (to.src !== this.#src) {
          this.#src = undefined;
          parseIpv6Into(to.src, this.#srcBytes);
          this.#src = to.src;
        }
        ctl.set(this.#srcBytes, d + IN6_PKTINFO.ADDR);
      }
      dv.setUint32(d + IN6_PKTINFO.IFINDEX, scope, HOST_LE);
    }
    if (to.hopLimit !== undefined) {
      const d = c + CMSGHDR.DATA;
      c = writeCmsgHeader(dv, c, SOL_IPV6, IPV6_HOPLIMIT, 4);
      dv.setInt32(d, to.hopLimit, HOST_LE);
    }
    if (to.rtHdr !== undefined) {
      checkExtHeader("IPV6_RTHDR", to.rtHdr);
      const d = c + CMSGHDR.DATA;
      c = writeCmsgHeader(dv, c, SOL_IPV6, IPV6_RTHDR, to.rtHdr.length);
      ctl.set(to.rtHdr, d);
    }
    if (to.dstOpts !== undefined) {
      checkExtHeader("IPV6_DSTOPTS", to.dstOpts);
      const d = c + CMSGHDR.DATA;
      c = writeCmsgHeader(dv, c, SOL_IPV6, IPV6_DSTOPTS, to.dstOpts.length);
      ctl.set(to.dstOpts, d);
    }
    s.setControl(c);
    s.setData(payload, payload.byteLength);
    const r = libc().sendmsg(this.fd, s.msg, 0);
    if (r < 0) {
      const e = errno();
      throw new ErrnoError(sendLabel("sendmsg", to), e);
    }
    return Number(r);
  }

  /**
   * Sends a complete IPv6 packet (header included) on an IPPROTO_RAW socket
   * with sendto(2); `dst` only selects the route. This is how a type 2 routing
   * header leaves a kernel without MIP6 (RFC 6275 §6.4).
   */
  sendRaw(packet: Uint8Array, dst: string): number {
    const s = this.#s;
    if (dst !== this.#dst || this.#dstScope !== 0) {
      this.#dst = undefined;
      encodeSockaddrIn6(s.nameDv, 0, { addr: dst });
      this.#dst = dst;
      this.#dstScope = 0;
    }
    const r = libc().sendto(
      this.fd,
      packet,
      BigInt(packet.byteLength),
      0,
      s.name,
      SOCKADDR_IN6.SIZE,
    );
    if (r < 0) {
      const e = errno();
      throw new ErrnoError(`sendto(raw IPv6 packet to ${dst})`, e);
    }
    return Number(r);
  }

  /**
   * recvmsg(2) into `buf` (for IPv6 raw sockets the data starts after the IPv6
   * header: at the extension header for IPPROTO_DSTOPTS/ROUTING sockets).
   * Returns null when nothing is there (EAGAIN on a nonblocking socket, EINTR).
   */
  recv(buf: Uint8Array): RecvInfo | null {
    const r = this.#r;
    r.setName(SOCKADDR_IN6.SIZE);
    r.setControl(r.ctl.length);
    r.setData(buf, buf.byteLength);
    const n = libc().recvmsg(this.fd, r.msg, 0);
    if (n < 0) {
      const e = errno();
      if (e === Errno.EAGAIN || e === Errno.EINTR) return null;
      throw new ErrnoError("recvmsg", e);
    }
    const flags = r.flags;
    const info: RecvInfo = {
      length: Number(n),
      src: formatIpv6(r.name, SOCKADDR_IN6.ADDR),
      truncated: (flags & MSG_TRUNC) !== 0,
      controlTruncated: (flags & MSG_CTRUNC) !== 0,
    };
    const clen = r.controllen, dv = r.ctlDv;
    for (let off = 0;;) {
      const len = cmsgDataLen(dv, off, clen);
      if (len < 0) break;
      const level = dv.getInt32(off + CMSGHDR.LEVEL, HOST_LE);
      const type = dv.getInt32(off + CMSGHDR.TYPE, HOST_LE);
      const d = off + CMSGHDR.DATA;
      if (level === SOL_IPV6) {
        if (type === IPV6_PKTINFO && len >= IN6_PKTINFO.SIZE) {
          info.dst = formatIpv6(r.ctl, d + IN6_PKTINFO.ADDR);
          info.ifindex = dv.getUint32(d + IN6_PKTINFO.IFINDEX, HOST_LE);
        } else if (type === IPV6_HOPLIMIT && len >= 4) {
          info.hopLimit = dv.getInt32(d, HOST_LE);
        } else if (type === IPV6_DSTOPTS) {
          info.dstOpts = r.ctl.slice(d, d + len);
        } else if (type === IPV6_RTHDR) {
          info.rtHdr = r.ctl.slice(d, d + len);
        }
      }
      off += cmsgSpace(len);
    }
    return info;
  }

  /**
   * recvmmsg(2) into `ring` (MSG_WAITFORONE: blocks for the first datagram on a
   * blocking socket, then takes what is queued). Returns the count, 0 on
   * EAGAIN/EINTR; `ring.length(i)`, `ring.srcAddrs[i]` describe each slot.
   */
  recvBatch(ring: RecvRing): number {
    return recvBatch(this.fd, ring);
  }

  /**
   * sendmmsg(2) of slots `start … start+n-1` of `ring`. Returns how many the
   * kernel took (fewer than n on a partial send; 0 on EAGAIN).
   */
  sendBatch(ring: SendRing, n: number, start = 0): number {
    return sendBatch(this.fd, ring, n, start);
  }
}

function sendLabel(call: string, to: SendOptions): string {
  const c: string[] = [];
  if (to.src !== undefined || to.ifindex !== undefined) c.push("IPV6_PKTINFO");
  if (to.hopLimit !== undefined) c.push("IPV6_HOPLIMIT");
  if (to.rtHdr !== undefined) c.push(`IPV6_RTHDR type ${to.rtHdr[2]}`);
  if (to.dstOpts !== undefined) c.push("IPV6_DSTOPTS");
  return `${call}(to ${to.dst}${c.length ? ` with ${c.join(", ")}` : ""})`;
}

/** SO_RCVBUF/SO_SNDBUF on any socket, trying the privileged *FORCE variants first. */
export function setBufferSizes(fd: number, sizes: { rcv?: number; snd?: number }): void {
  const v = new Uint8Array(4);
  const set = (force: number, plain: number, n: number, label: string) => {
    new DataView(v.buffer).setInt32(0, n, HOST_LE);
    if (libc().setsockopt(fd, SOL_SOCKET, force, v, 4) === 0) return;
    check(`setsockopt(${label} ${n})`, libc().setsockopt(fd, SOL_SOCKET, plain, v, 4));
  };
  if (sizes.rcv !== undefined) set(SO_RCVBUFFORCE, SO_RCVBUF, sizes.rcv, "SO_RCVBUF");
  if (sizes.snd !== undefined) set(SO_SNDBUFFORCE, SO_SNDBUF, sizes.snd, "SO_SNDBUF");
}

// ---- batch rings ---------------------------------------------------------------------------------

/** Bytes reserved per slot for a socket address (fits sockaddr_in6 and sockaddr_ll). */
export const RING_NAME_SIZE = 32;

/**
 * Preallocated mmsghdr array with one iovec, name and control area per slot.
 * Slot i's packet buffer is `buffers[i]` (headroom + slotSize bytes); the
 * iovec starts after the headroom.
 */
abstract class MsgRing {
  /** Number of slots. */
  readonly slots: number;
  /** Data bytes per slot (after the headroom). */
  readonly slotSize: number;
  /** Bytes kept free before each slot's data (room to prepend an outer header). */
  readonly headroom: number;
  /** Control bytes per slot. */
  readonly controlSize: number;
  /** Per-slot views of the whole slot (headroom included). */
  readonly buffers: Uint8Array[] = [];
  /** Per-slot 16-byte views of the IPv6 address in the slot's sockaddr_in6. */
  readonly addrs: Uint8Array[] = [];
  /** The mmsghdr array handed to the kernel. */
  readonly mmsghdrs: Uint8Array;
  /** `mmsghdrs` starting at slot i (for partial batches). */
  readonly from: Uint8Array[] = [];
  protected readonly hdv: DataView;
  protected readonly names: Uint8Array;
  protected readonly namesDv: DataView;
  protected readonly ctl: Uint8Array;
  protected readonly ctlDv: DataView;
  protected readonly iovDv: DataView;
  protected readonly dataPtr: number;
  protected readonly ctlPtr: number;
  protected readonly stride: number;

  constructor(slots: number, slotSize: number, headroom: number, controlSize: number) {
    if (!Number.isInteger(slots) || slots < 1 || slots > 1024) {
      throw new RangeError(`ring slots must be 1…1024 (UIO_MAXIOV), got ${slots}`);
    }
    if (!Number.isInteger(slotSize) || slotSize < 1) throw new RangeError("slotSize");
    this.slots = slots;
    this.slotSize = slotSize;
    this.headroom = headroom;
    this.controlSize = cmsgAlignUp(controlSize);
    this.stride = (headroom + slotSize + 63) & ~63;
    const data = new Uint8Array(new ArrayBuffer(this.stride * slots));
    this.mmsghdrs = new Uint8Array(new ArrayBuffer(MMSGHDR.SIZE * slots));
    this.hdv = new DataView(this.mmsghdrs.buffer);
    const iovs = new Uint8Array(new ArrayBuffer(IOVEC.SIZE * slots));
    this.iovDv = new DataView(iovs.buffer);
    this.names = new Uint8Array(new ArrayBuffer(RING_NAME_SIZE * slots));
    this.namesDv = new DataView(this.names.buffer);
    this.ctl = new Uint8Array(new ArrayBuffer(Math.max(8, this.controlSize * slots)));
    this.ctlDv = new DataView(this.ctl.buffer);
    this.dataPtr = addressOf(data);
    const iovPtr = addressOf(iovs), namePtr = addressOf(this.names);
    const ctlPtr = this.ctlPtr = addressOf(this.ctl);
    for (let i = 0; i < slots; i++) {
      this.buffers.push(data.subarray(i * this.stride, i * this.stride + headroom + slotSize));
      const a = i * RING_NAME_SIZE + SOCKADDR_IN6.ADDR;
      this.addrs.push(this.names.subarray(a, a + 16));
      this.from.push(this.mmsghdrs.subarray(i * MMSGHDR.SIZE));
      putU64(this.iovDv, i * IOVEC.SIZE + IOVEC.BASE, this.dataPtr + i * this.stride + headroom);
      putU64(this.iovDv, i * IOVEC.SIZE + IOVEC.LEN, slotSize);
      const h = i * MMSGHDR.SIZE;
      putU64(this.hdv, h + MSGHDR.NAME, namePtr + i * RING_NAME_SIZE);
      putU64(this.hdv, h + MSGHDR.IOV, iovPtr + i * IOVEC.SIZE);
      putU64(this.hdv, h + MSGHDR.IOVLEN, 1);
      putU64(this.hdv, h + MSGHDR.CONTROL, this.controlSize ? ctlPtr + i * this.controlSize : 0);
    }
  }

  /** msg_len of slot i after the last batch (bytes received or sent). */
  length(i: number): number {
    return this.hdv.getUint32(i * MMSGHDR.SIZE + MMSGHDR.LEN, HOST_LE);
  }
}

function cmsgAlignUp(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Slots for recvmmsg(2). After `recvBatch` returned `count`, slot i < count
 * holds `length(i)` bytes at `buffers[i][headroom…]`, the sender in
 * `addrs[i]` (IPv6) or `packetType(i)` (packet sockets), and ancillary data
 * readable with `dstAddr`/`ifindex`/`auxStatus`.
 */
export class RecvRing extends MsgRing {
  /** Slots filled by the last batch. */
  count = 0;
  #dirty: number;

  /**
   * `control` reserves ancillary space per slot (true: IPV6_PKTINFO +
   * IPV6_HOPLIMIT, or PACKET_AUXDATA; a number: that many bytes).
   */
  constructor(
    slots: number,
    slotSize: number,
    opts: { headroom?: number; control?: boolean | number } = {},
  ) {
    const control = opts.control === true
      ? PKTINFO_SPACE + INT_SPACE + cmsgSpace(TPACKET_AUXDATA.SIZE)
      : typeof opts.control === "number"
      ? opts.control
      : 0;
    super(slots, slotSize, opts.headroom ?? 0, control);
    this.#dirty = slots;
  }

  /** Resets the fields the kernel rewrote in the last batch. Called by `recvBatch`. */
  prepare(): void {
    const h = this.hdv;
    for (let i = 0; i < this.#dirty; i++) {
      const o = i * MMSGHDR.SIZE;
      h.setUint32(o + MSGHDR.NAMELEN, RING_NAME_SIZE, HOST_LE);
      putU64(h, o + MSGHDR.CONTROLLEN, this.controlSize);
      h.setInt32(o + MSGHDR.FLAGS, 0, HOST_LE);
    }
    this.#dirty = 0;
    this.count = 0;
  }

  /** Records a batch of `n` (called by `recvBatch`). */
  filled(n: number): void {
    this.count = n;
    this.#dirty = n;
  }

  /** msg_flags of slot i. */
  flags(i: number): number {
    return this.hdv.getInt32(i * MMSGHDR.SIZE + MSGHDR.FLAGS, HOST_LE);
  }

  /** Slot i's datagram was cut to slotSize (MSG_TRUNC). */
  truncated(i: number): boolean {
    return (this.flags(i) & MSG_TRUNC) !== 0;
  }

  /** The received bytes of slot i (a new view: convenience, not for the hot path). */
  data(i: number): Uint8Array {
    const b = this.buffers[i];
    return b.subarray(this.headroom, this.headroom + Math.min(this.length(i), this.slotSize));
  }

  /** The sender of slot i as text (allocates; the bytes are `addrs[i]`). */
  src(i: number): string {
    return formatIpv6(this.addrs[i]);
  }

  /** sll_pkttype of slot i on a packet socket (PACKET_HOST 0 … PACKET_OUTGOING 4). */
  packetType(i: number): number {
    return this.names[i * RING_NAME_SIZE + 10];
  }

  #findCmsg(i: number, level: number, type: number, minLen: number): number {
    const base = i * this.controlSize;
    const clen = this.hdv.getUint32(i * MMSGHDR.SIZE + MSGHDR.CONTROLLEN, HOST_LE);
    const dv = this.ctlDv;
    for (let off = 0;;) {
      if (off + CMSGHDR.SIZE > clen) return -1;
      const len = dv.getUint32(base + off + CMSGHDR.LEN, HOST_LE) - CMSGHDR.SIZE;
      if (len < 0 || off + CMSGHDR.SIZE + len > clen) return -1;
      if (
        dv.getInt32(base + off + CMSGHDR.LEVEL, HOST_LE) === level &&
        dv.getInt32(base + off + CMSGHDR.TYPE, HOST_LE) === type && len >= minLen
      ) return base + off + CMSGHDR.DATA;
      off += cmsgSpace(len);
    }
  }

  /** Copies slot i's IPV6_PKTINFO destination into `out[off]`; false when absent. */
  dstAddr(i: number, out: Uint8Array, off = 0): boolean {
    const d = this.#findCmsg(i, SOL_IPV6, IPV6_PKTINFO, IN6_PKTINFO.SIZE);
    if (d < 0) return false;
    for (let k = 0; k < 16; k++) out[off + k] = this.ctl[d + k];
    return true;
  }

  /** Slot i's arrival interface from IPV6_PKTINFO, 0 when absent. */
  ifindex(i: number): number {
    const d = this.#findCmsg(i, SOL_IPV6, IPV6_PKTINFO, IN6_PKTINFO.SIZE);
    return d < 0 ? 0 : this.ctlDv.getUint32(d + IN6_PKTINFO.IFINDEX, HOST_LE);
  }

  /** tp_status of slot i's PACKET_AUXDATA (packet sockets), -1 when absent. */
  auxStatus(i: number): number {
    const d = this.#findCmsg(i, SOL_PACKET, 8, TPACKET_AUXDATA.SIZE);
    return d < 0 ? -1 : this.ctlDv.getUint32(d + TPACKET_AUXDATA.STATUS, HOST_LE);
  }
}

/**
 * Slots for sendmmsg(2). Fill `buffers[i]` (data at `headroom` by default),
 * `setLength`, a destination (`setDst`, `setDstLl`, or none on a bound packet
 * socket) and optionally a source (`setSrc`, IPV6_PKTINFO), then `sendBatch`.
 */
export class SendRing extends MsgRing {
  /** `pktinfo` reserves room for a per-slot IPV6_PKTINFO source. */
  constructor(
    slots: number,
    slotSize: number,
    opts: { headroom?: number; pktinfo?: boolean } = {},
  ) {
    super(slots, slotSize, opts.headroom ?? 0, opts.pktinfo ? PKTINFO_SPACE : 0);
    for (let i = 0; i < slots; i++) {
      putU64(this.hdv, i * MMSGHDR.SIZE + MSGHDR.CONTROL, 0);
      putU64(this.iovDv, i * IOVEC.SIZE + IOVEC.LEN, 0);
    }
  }

  /** Slot i sends `len` bytes starting at the headroom. */
  setLength(i: number, len: number): void {
    this.setData(i, this.headroom, len);
  }

  /** Slot i sends `len` bytes of its own buffer starting at `offset` (e.g. headroom - 40). */
  setData(i: number, offset: number, len: number): void {
    if (offset < 0 || offset + len > this.headroom + this.slotSize) {
      throw new RangeError(`slot ${i}: ${offset}+${len} exceeds the slot`);
    }
    putU64(this.iovDv, i * IOVEC.SIZE + IOVEC.BASE, this.dataPtr + i * this.stride + offset);
    putU64(this.iovDv, i * IOVEC.SIZE + IOVEC.LEN, len);
  }

  /**
   * Slot i sends `len` bytes of a foreign buffer in place (its address is
   * taken now, ~0.3 µs; keep `buf` alive until the batch is sent).
   */
  setExternal(i: number, buf: Uint8Array, len = buf.byteLength): void {
    putU64(this.iovDv, i * IOVEC.SIZE + IOVEC.BASE, addressOf(buf));
    putU64(this.iovDv, i * IOVEC.SIZE + IOVEC.LEN, len);
  }

  /** Slot i goes to the 16-byte IPv6 address `addr` (sockaddr_in6, copied, no allocation). */
  setDst(i: number, addr: Uint8Array, scopeId = 0): void {
    const o = i * RING_NAME_SIZE, dv = this.namesDv;
    dv.setUint16(o + SOCKADDR_IN6.FAMILY, AF_INET6, HOST_LE);
    dv.setUint16(o + SOCKADDR_IN6.PORT, 0);
    dv.setUint32(o + SOCKADDR_IN6.FLOWINFO, 0);
    for (let k = 0; k < 16; k++) this.names[o + SOCKADDR_IN6.ADDR + k] = addr[k];
    dv.setUint32(o + SOCKADDR_IN6.SCOPE_ID, scopeId, HOST_LE);
    this.hdv.setUint32(i * MMSGHDR.SIZE + MSGHDR.NAMELEN, SOCKADDR_IN6.SIZE, HOST_LE);
  }

  /** `setDst` from text (setup convenience). */
  setDstText(i: number, addr: string, scopeId = 0): void {
    const b = new Uint8Array(16);
    parseIpv6Into(addr, b);
    this.setDst(i, b, scopeId);
  }

  /** Slot i goes out of interface `ifindex` as EtherType `protocol` (packet sockets). */
  setDstLl(i: number, ifindex: number, protocol: number): void {
    encodeSockaddrLl(this.namesDv, i * RING_NAME_SIZE, { protocol, ifindex });
    this.hdv.setUint32(i * MMSGHDR.SIZE + MSGHDR.NAMELEN, 20, HOST_LE);
  }

  /** Slot i has no destination (connected socket, bound packet socket). */
  clearDst(i: number): void {
    this.hdv.setUint32(i * MMSGHDR.SIZE + MSGHDR.NAMELEN, 0, HOST_LE);
  }

  /**
   * Slot i's source address / interface via IPV6_PKTINFO (needs `pktinfo`);
   * `addr` null removes it.
   */
  setSrc(i: number, addr: Uint8Array | null, ifindex = 0): void {
    const h = i * MMSGHDR.SIZE;
    if (addr === null) {
      putU64(this.hdv, h + MSGHDR.CONTROL, 0);
      putU64(this.hdv, h + MSGHDR.CONTROLLEN, 0);
      return;
    }
    if (this.controlSize < PKTINFO_SPACE) throw new TypeError("SendRing built without pktinfo");
    const base = i * this.controlSize;
    writeCmsgHeader(this.ctlDv, base, SOL_IPV6, IPV6_PKTINFO, IN6_PKTINFO.SIZE);
    for (let k = 0; k < 16; k++) this.ctl[base + CMSGHDR.DATA + k] = addr[k];
    this.ctlDv.setUint32(base + CMSGHDR.DATA + IN6_PKTINFO.IFINDEX, ifindex, HOST_LE);
    putU64(this.hdv, h + MSGHDR.CONTROL, this.ctlPtr + base);
    putU64(this.hdv, h + MSGHDR.CONTROLLEN, PKTINFO_SPACE);
  }
}

/** recvmmsg(2) on any datagram fd into `ring`; see `RawSocket6.recvBatch`. */
export function recvBatch(fd: number, ring: RecvRing): number {
  ring.prepare();
  const n = libc().recvmmsg(fd, ring.mmsghdrs, ring.slots, MSG_WAITFORONE, null);
  if (n < 0) {
    const e = errno();
    if (e === Errno.EAGAIN || e === Errno.EINTR) return 0;
    throw new ErrnoError("recvmmsg", e);
  }
  ring.filled(n);
  return n;
}

/** sendmmsg(2) on any datagram fd from `ring`; see `RawSocket6.sendBatch`. */
export function sendBatch(fd: number, ring: SendRing, n: number, start = 0): number {
  if (n === 0) return 0;
  if (start < 0 || n < 0 || start + n > ring.slots) {
    throw new RangeError(`sendBatch: slots ${start}…${start + n - 1} outside 0…${ring.slots - 1}`);
  }
  const r = libc().sendmmsg(fd, ring.from[start], n, 0);
  if (r < 0) {
    const e = errno();
    if (e === Errno.EAGAIN) return 0;
    throw new ErrnoError("sendmmsg", e);
  }
  return r;
}
