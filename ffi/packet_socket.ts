/**
 * AF_PACKET raw sockets (packet(7)) bound to one interface: whole Ethernet
 * frames in and out, multicast membership, PACKET_AUXDATA.
 *
 * @module
 */

import {
  AF_PACKET,
  ETH_P_ALL,
  PACKET_ADD_MEMBERSHIP,
  PACKET_AUXDATA,
  PACKET_DROP_MEMBERSHIP,
  PACKET_IGNORE_OUTGOING,
  PACKET_MR_ALLMULTI,
  PACKET_MR_MULTICAST,
  PACKET_MR_PROMISC,
  SOCK_RAW,
  SOL_PACKET,
  SOL_SOCKET,
} from "./constants.ts";
import { check, Errno, errno, ErrnoError, libc } from "./libc.ts";
import { OwnedFd } from "./fd.ts";
import {
  openSocket,
  recvBatch,
  type RecvRing,
  sendBatch,
  type SendRing,
  setBufferSizes,
} from "./raw_socket.ts";
import {
  addressOf,
  cmsgDataLen,
  CMSGHDR,
  cmsgSpace,
  encodePacketMreq,
  encodeSockaddrLl,
  HOST_LE,
  ifNameToIndex,
  IOVEC,
  MSGHDR,
  parseMac,
  putU64,
  SOCKADDR_LL,
  TPACKET_AUXDATA,
} from "./structs.ts";

/** Options of `PacketSocket.open`. */
export interface PacketSocketOptions {
  /** EtherType to receive (host order), default ETH_P_ALL. */
  protocol?: number;
  /** SOCK_NONBLOCK: `recv` returns -1 instead of waiting. */
  nonblocking?: boolean;
  /** PACKET_IGNORE_OUTGOING: do not see frames this host transmits on the interface. */
  ignoreOutgoing?: boolean;
  /** PACKET_AUXDATA: report tp_status (e.g. TP_STATUS_CSUMNOTREADY) in `lastAuxStatus`. */
  auxData?: boolean;
}

const CTL_SIZE = cmsgSpace(TPACKET_AUXDATA.SIZE) + 16;
/** SO_ATTACH_FILTER (asm-generic/socket.h; x86-64 and arm64). */
const SO_ATTACH_FILTER = 26;

/**
 * `socket(AF_PACKET, SOCK_RAW, htons(protocol))` bound to one interface.
 * Owns its fd; `close()` is idempotent.
 */
export class PacketSocket extends OwnedFd {
  /** Interface name. */
  readonly ifname: string;
  /** Interface index. */
  readonly ifindex: number;
  /** EtherType filter (host order). */
  readonly protocol: number;
  /** sll_pkttype of the last frame `recv` returned (PACKET_HOST 0 … PACKET_OUTGOING 4). */
  lastPacketType = 0;
  /** tp_status of the last frame (with `auxData`), -1 when not reported. */
  lastAuxStatus = -1;
  /** Full length of the last frame on the wire (larger than the return value when cut). */
  lastWireLength = 0;
  readonly #msg = new Uint8Array(new ArrayBuffer(MSGHDR.SIZE));
  readonly #msgDv = new DataView(this.#msg.buffer);
  readonly #iovDv = new DataView(new ArrayBuffer(IOVEC.SIZE));
  readonly #name = new Uint8Array(new ArrayBuffer(SOCKADDR_LL.SIZE));
  readonly #ctl = new Uint8Array(new ArrayBuffer(CTL_SIZE));
  readonly #ctlDv = new DataView(this.#ctl.buffer);
  #buf: Uint8Array | undefined;
  #bufPtr = 0;
  #filter: Uint8Array | undefined;

  private constructor(fd: number, ifname: string, ifindex: number, protocol: number) {
    super(fd);
    this.ifname = ifname;
    this.ifindex = ifindex;
    this.protocol = protocol;
    putU64(this.#msgDv, MSGHDR.NAME, addressOf(this.#name));
    putU64(this.#msgDv, MSGHDR.IOV, addressOf(new Uint8Array(this.#iovDv.buffer)));
    putU64(this.#msgDv, MSGHDR.IOVLEN, 1);
    putU64(this.#msgDv, MSGHDR.CONTROL, addressOf(this.#ctl));
  }

  /**
   * Opens a packet socket bound to interface `ifname` of the calling thread's
   * network namespace. A missing device throws `ErrnoError` naming it
   * (`if_nametoindex(nope0): ENODEV …`).
   */
  static open(ifname: string, opts: PacketSocketOptions = {}): PacketSocket {
    const protocol = opts.protocol ?? ETH_P_ALL;
    const ifindex = ifNameToIndex(ifname);
    // protocol 0 until bound: no frames of other interfaces queue up meanwhile
    const fd = openSocket(AF_PACKET, SOCK_RAW, 0, {
      nonblocking: opts.nonblocking,
      label: "socket(AF_PACKET, SOCK_RAW)",
    });
    const sock = new PacketSocket(fd, ifname, ifindex, protocol);
    try {
      if (opts.ignoreOutgoing) sock.#setInt(PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
      if (opts.auxData) sock.#setInt(PACKET_AUXDATA, 1, "PACKET_AUXDATA");
      const sa = new Uint8Array(SOCKADDR_LL.SIZE);
      encodeSockaddrLl(new DataView(sa.buffer), 0, { protocol, ifindex });
      check(`bind(AF_PACKET ${ifname})`, libc().bind(fd, sa, sa.length));
    } catch (e) {
      sock.close();
      throw e;
    }
    return sock;
  }

  /** Takes ownership of a packet socket fd opened elsewhere in this process. */
  static adopt(fd: number, ifname: string, ifindex: number, protocol = ETH_P_ALL): PacketSocket {
    return new PacketSocket(fd, ifname, ifindex, protocol);
  }

  #setInt(name: number, value: number, label: string): void {
    const v = new Uint8Array(4);
    new DataView(v.buffer).setInt32(0, value, HOST_LE);
    check(`setsockopt(${label})`, libc().setsockopt(this.fd, SOL_PACKET, name, v, 4));
  }

  /** Sends one whole frame (first `len` bytes of `frame`) out of the bound interface. */
  send(frame: Uint8Array, len: number = frame.byteLength): number {
    if (len > frame.byteLength) throw new RangeError(`send(${this.ifname}): len > buffer`);
    const r = libc().write(this.fd, frame, BigInt(len));
    if (r < 0) {
      const e = errno();
      if (e === Errno.EAGAIN) return -1;
      throw new ErrnoError(`send(AF_PACKET ${this.ifname})`, e);
    }
    return Number(r);
  }

  /**
   * Receives one frame into `buf`; returns the bytes stored, or -1 when none
   * is queued on a nonblocking socket (EAGAIN) or on EINTR. Sets
   * `lastPacketType`, `lastWireLength` and (with `auxData`) `lastAuxStatus`.
   */
  recv(buf: Uint8Array): number {
    const m = this.#msgDv;
    if (buf !== this.#buf) {
      this.#buf = buf;
      this.#bufPtr = addressOf(buf);
    }
    putU64(this.#iovDv, IOVEC.BASE, this.#bufPtr);
    putU64(this.#iovDv, IOVEC.LEN, buf.byteLength);
    m.setUint32(MSGHDR.NAMELEN, SOCKADDR_LL.SIZE, HOST_LE);
    putU64(m, MSGHDR.CONTROLLEN, CTL_SIZE);
    m.setInt32(MSGHDR.FLAGS, 0, HOST_LE);
    // MSG_TRUNC: return the wire length even when the frame was cut
    const r = libc().recvmsg(this.fd, this.#msg, 0x20);
    if (r < 0) {
      const e = errno();
      if (e === Errno.EAGAIN || e === Errno.EINTR) return -1;
      throw new ErrnoError(`recvmsg(AF_PACKET ${this.ifname})`, e);
    }
    const n = Number(r);
    this.lastWireLength = n;
    this.lastPacketType = this.#name[SOCKADDR_LL.PKTTYPE];
    this.lastAuxStatus = -1;
    const clen = m.getUint32(MSGHDR.CONTROLLEN, HOST_LE);
    for (let off = 0;;) {
      const len = cmsgDataLen(this.#ctlDv, off, clen);
      if (len < 0) break;
      if (
        this.#ctlDv.getInt32(off + CMSGHDR.LEVEL, HOST_LE) === SOL_PACKET &&
        this.#ctlDv.getInt32(off + CMSGHDR.TYPE, HOST_LE) === PACKET_AUXDATA &&
        len >= TPACKET_AUXDATA.SIZE
      ) {
        this.lastAuxStatus = this.#ctlDv.getUint32(
          off + CMSGHDR.DATA + TPACKET_AUXDATA.STATUS,
          HOST_LE,
        );
      }
      off += cmsgSpace(len);
    }
    return Math.min(n, buf.byteLength);
  }

  /** recvmmsg(2) into `ring` (see `RawSocket6.recvBatch`); `ring.packetType(i)` per slot. */
  recvBatch(ring: RecvRing): number {
    return recvBatch(this.fd, ring);
  }

  /** sendmmsg(2) of `n` slots of `ring` from `start` (slots without a destination use the binding). */
  sendBatch(ring: SendRing, n: number, start = 0): number {
    return sendBatch(this.fd, ring, n, start);
  }

  /** Receive frames sent to multicast `mac` (PACKET_ADD_MEMBERSHIP, PACKET_MR_MULTICAST). */
  addMulticast(mac: string): void {
    const m = encodePacketMreq(this.ifindex, PACKET_MR_MULTICAST, parseMac(mac));
    check(
      `setsockopt(PACKET_ADD_MEMBERSHIP ${mac} on ${this.ifname})`,
      libc().setsockopt(this.fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, m, m.length),
    );
  }

  /** Stop receiving multicast `mac` (PACKET_DROP_MEMBERSHIP). */
  dropMulticast(mac: string): void {
    const m = encodePacketMreq(this.ifindex, PACKET_MR_MULTICAST, parseMac(mac));
    check(
      `setsockopt(PACKET_DROP_MEMBERSHIP ${mac} on ${this.ifname})`,
      libc().setsockopt(this.fd, SOL_PACKET, PACKET_DROP_MEMBERSHIP, m, m.length),
    );
  }

  /**
   * Every multicast frame while this socket holds the membership (PACKET_MR_ALLMULTI,
   * packet(7)): the device's IFF_ALLMULTI count goes up, so a real NIC stops filtering multicast
   * groups; the kernel drops the membership when the socket closes.
   */
  setAllMulticast(on: boolean): void {
    const m = encodePacketMreq(this.ifindex, PACKET_MR_ALLMULTI);
    const opt = on ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP;
    check(
      `setsockopt(PACKET_MR_ALLMULTI ${on ? "on" : "off"} ${this.ifname})`,
      libc().setsockopt(this.fd, SOL_PACKET, opt, m, m.length),
    );
  }

  /** Promiscuous mode while this socket is open (PACKET_MR_PROMISC membership). */
  setPromiscuous(on: boolean): void {
    const m = encodePacketMreq(this.ifindex, PACKET_MR_PROMISC);
    const opt = on ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP;
    check(
      `setsockopt(PACKET_MR_PROMISC ${on ? "on" : "off"} ${this.ifname})`,
      libc().setsockopt(this.fd, SOL_PACKET, opt, m, m.length),
    );
  }

  /**
   * SO_ATTACH_FILTER: a classic BPF program (`struct sock_filter[]`, 8 bytes per instruction,
   * host byte order) the kernel runs on every frame before queueing it for this socket
   * (socket(7)). The kernel copies the program; `program` need not outlive the call.
   */
  attachFilter(program: Uint8Array): void {
    const n = program.byteLength / 8;
    if (!Number.isInteger(n) || n < 1 || n > 4096) {
      throw new RangeError(`attachFilter: 1…4096 instructions of 8 bytes, got ${program.length}`);
    }
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (16 bytes on LP64)
    // Held by the socket so that nothing can free it before the kernel copied it.
    const insns = this.#filter = program.slice();
    const fprog = new Uint8Array(16);
    const dv = new DataView(fprog.buffer);
    dv.setUint16(0, n, HOST_LE);
    putU64(dv, 8, addressOf(insns));
    check(
      `setsockopt(SO_ATTACH_FILTER on ${this.ifname})`,
      libc().setsockopt(this.fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, fprog.length),
    );
  }

  /** SO_RCVBUF/SO_SNDBUF (FORCE variants when privileged). */
  setBufferSizes(sizes: { rcv?: number; snd?: number }): void {
    setBufferSizes(this.fd, sizes);
  }
}
