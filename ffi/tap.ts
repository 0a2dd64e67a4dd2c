/**
 * tun/tap devices through `/dev/net/tun` + TUNSETIFF (Linux
 * Documentation/networking/tuntap.rst). The device lives in the network
 * namespace of the thread that opened it and disappears when the fd closes.
 * MAC, MTU and up/down are set with interface ioctls on a helper AF_INET6
 * datagram socket opened at the same time (so in the same namespace), never by
 * running `ip`.
 *
 * @module
 */

import {
  AF_INET6,
  ARPHRD_ETHER,
  IFF_NO_PI,
  IFF_TAP,
  IFF_TUN,
  IFF_UP,
  IFF_VNET_HDR,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  SIOCGIFFLAGS,
  SIOCGIFHWADDR,
  SIOCGIFINDEX,
  SIOCGIFMTU,
  SIOCSIFFLAGS,
  SIOCSIFHWADDR,
  SIOCSIFMTU,
  SOCK_DGRAM,
  TUNGETIFF,
  TUNSETIFF,
  TUNSETOFFLOAD,
} from "./constants.ts";
import { check, cstring, Errno, errno, ErrnoError, libc } from "./libc.ts";
import { OwnedFd } from "./fd.ts";
import { openSocket } from "./raw_socket.ts";
import {
  decodeIfreqName,
  encodeIfreq,
  formatMac,
  HOST_LE,
  IFREQ,
  parseMacInto,
} from "./structs.ts";

/**
 * TUNSETOFFLOAD on a tun/tap fd: the TUN_F_* offloads its reader handles (TUN_F_CSUM, then
 * TUN_F_TSO4/TSO6, TUN_F_USO4|TUN_F_USO6 together). With them the kernel hands over frames with
 * unfinished checksums (CHECKSUM_PARTIAL) and up to 64 KB TCP/UDP segments, described by the
 * virtio_net_hdr in front of each frame — so only meaningful on a device opened with
 * IFF_VNET_HDR. 0 turns them all off. An offload the kernel does not know fails with EINVAL.
 * Works on an fd alone (e.g. in a Worker).
 */
export function setTunOffload(fd: number, flags: number): void {
  // TUNSETOFFLOAD is _IOW('T', 208, unsigned int) but takes the flags by value.
  check(
    `ioctl(TUNSETOFFLOAD 0x${flags.toString(16)})`,
    libc().ioctl_int(fd, BigInt(TUNSETOFFLOAD), BigInt(flags)),
  );
}

/**
 * TUNGETIFF on a tun/tap fd: the device's IFF_* flags as set by TUNSETIFF (IFF_TUN or IFF_TAP,
 * IFF_NO_PI, IFF_VNET_HDR, …). Works on an fd alone (e.g. in a Worker).
 */
export function tunDeviceFlags(fd: number): number {
  const ifr = new Uint8Array(IFREQ.SIZE);
  check("ioctl(TUNGETIFF)", libc().ioctl(fd, BigInt(TUNGETIFF), ifr));
  return new DataView(ifr.buffer).getUint16(IFREQ.FLAGS, HOST_LE);
}

/** Options of `TunTapDevice.open`. */
export interface TunTapOptions {
  /** "tap": Ethernet frames (IFF_TAP); "tun": IP packets (IFF_TUN). Always IFF_NO_PI. */
  mode: "tap" | "tun";
  /** Prefix every frame with a 10-byte struct virtio_net_hdr (IFF_VNET_HDR). */
  vnetHdr?: boolean;
  /** O_NONBLOCK: `read` returns -1 instead of waiting. */
  nonblocking?: boolean;
}

/**
 * A tun or tap device owned by this process. `read`/`write` move one frame
 * (tap) or packet (tun) per call, straight from/to the caller's buffer.
 */
export class TunTapDevice extends OwnedFd {
  #ctl: number;
  /** Interface name (as the kernel assigned it, e.g. for "tap%d"). */
  readonly name: string;
  /** Interface index. */
  readonly ifindex: number;
  /** The options it was opened with. */
  readonly mode: "tap" | "tun";
  readonly vnetHdr: boolean;
  readonly #ifr: Uint8Array<ArrayBuffer>;
  readonly #ifrDv: DataView;

  private constructor(fd: number, ctl: number, ifr: Uint8Array<ArrayBuffer>, opts: TunTapOptions) {
    super(fd);
    this.#ctl = ctl;
    this.#ifr = ifr;
    this.#ifrDv = new DataView(ifr.buffer);
    this.name = decodeIfreqName(ifr);
    this.mode = opts.mode;
    this.vnetHdr = opts.vnetHdr ?? false;
    this.ifindex = this.#ioctl(SIOCGIFINDEX, "SIOCGIFINDEX", () => {}).getInt32(
      IFREQ.IFINDEX,
      HOST_LE,
    );
  }

  /**
   * Creates (or attaches to) device `name` in the calling thread's network
   * namespace: open("/dev/net/tun") + ioctl(TUNSETIFF, IFF_TAP|IFF_TUN |
   * IFF_NO_PI [| IFF_VNET_HDR]). Needs CAP_NET_ADMIN; errors name the device.
   */
  static open(name: string, opts: TunTapOptions): TunTapDevice {
    const ifr = encodeIfreq(name);
    const flags = (opts.mode === "tap" ? IFF_TAP : IFF_TUN) | IFF_NO_PI |
      (opts.vnetHdr ? IFF_VNET_HDR : 0);
    const oflags = O_RDWR | O_CLOEXEC | (opts.nonblocking ? O_NONBLOCK : 0);
    const fd = check("open(/dev/net/tun)", libc().open(cstring("/dev/net/tun"), oflags, 0));
    let ctl = -1;
    try {
      new DataView(ifr.buffer).setInt16(IFREQ.FLAGS, flags, HOST_LE);
      // TUNSETIFF is _IOW('T', 202, int) but takes a struct ifreq *.
      check(`ioctl(TUNSETIFF ${name})`, libc().ioctl(fd, BigInt(TUNSETIFF), ifr));
      ctl = openSocket(AF_INET6, SOCK_DGRAM, 0, { label: "socket(AF_INET6, SOCK_DGRAM)" });
      return new TunTapDevice(fd, ctl, ifr, opts);
    } catch (e) {
      libc().close(fd);
      if (ctl >= 0) libc().close(ctl);
      throw e;
    }
  }

  /**
   * Reads one frame (tap) or packet (tun) into `buf`. Returns its length, or
   * -1 when none is queued on a nonblocking device (EAGAIN) or on EINTR. A
   * frame longer than `buf` is cut.
   */
  read(buf: Uint8Array): number {
    const r = libc().read(this.fd, buf, BigInt(buf.byteLength));
    if (r < 0) {
      const e = errno();
      if (e === Errno.EAGAIN || e === Errno.EINTR) return -1;
      throw new ErrnoError(`read(${this.name})`, e);
    }
    return Number(r);
  }

  /**
   * Writes one frame (tap) or packet (tun), the first `len` bytes of `buf`;
   * the kernel receives it as if it came in on the device. Returns the bytes
   * written, -1 on EAGAIN.
   */
  write(buf: Uint8Array, len: number = buf.byteLength): number {
    if (len > buf.byteLength) throw new RangeError(`write(${this.name}): len > buffer`);
    const r = libc().write(this.fd, buf, BigInt(len));
    if (r < 0) {
      const e = errno();
      if (e === Errno.EAGAIN) return -1;
      throw new ErrnoError(`write(${this.name})`, e);
    }
    return Number(r);
  }

  /** ioctl on the helper socket with the device's ifreq; `fill` writes the union first. */
  #ioctl(req: number, label: string, fill: (dv: DataView) => void): DataView {
    const dv = this.#ifrDv;
    this.#ifr.fill(0, IFREQ.UNION);
    fill(dv);
    check(`ioctl(${label} ${this.name})`, libc().ioctl(this.#ctl, BigInt(req), this.#ifr));
    return dv;
  }

  /** Sets the Ethernet address (SIOCSIFHWADDR). */
  setMac(mac: string): void {
    this.#ioctl(SIOCSIFHWADDR, `SIOCSIFHWADDR ${mac}`, (dv) => {
      dv.setUint16(IFREQ.HWADDR_FAMILY, ARPHRD_ETHER, HOST_LE);
      parseMacInto(mac, this.#ifr, IFREQ.HWADDR_DATA);
    });
  }

  /** The Ethernet address (SIOCGIFHWADDR). */
  getMac(): string {
    this.#ioctl(SIOCGIFHWADDR, "SIOCGIFHWADDR", () => {});
    return formatMac(this.#ifr, IFREQ.HWADDR_DATA);
  }

  /** Sets the MTU (SIOCSIFMTU). */
  setMtu(mtu: number): void {
    this.#ioctl(SIOCSIFMTU, `SIOCSIFMTU ${mtu}`, (dv) => dv.setInt32(IFREQ.MTU, mtu, HOST_LE));
  }

  /** The MTU (SIOCGIFMTU). */
  getMtu(): number {
    return this.#ioctl(SIOCGIFMTU, "SIOCGIFMTU", () => {}).getInt32(IFREQ.MTU, HOST_LE);
  }

  /** TUNSETOFFLOAD (see {@linkcode setTunOffload}): the TUN_F_* offloads this reader handles. */
  setOffload(flags: number): void {
    setTunOffload(this.fd, flags);
  }

  /** Interface flags (SIOCGIFFLAGS: IFF_UP, IFF_RUNNING, …). */
  getFlags(): number {
    return this.#ioctl(SIOCGIFFLAGS, "SIOCGIFFLAGS", () => {}).getUint16(IFREQ.FLAGS, HOST_LE);
  }

  /** Brings the device up or down (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP changed). */
  setUp(up: boolean): void {
    const flags = this.getFlags();
    const next = up ? flags | IFF_UP : flags & ~IFF_UP;
    this.#ioctl(
      SIOCSIFFLAGS,
      `SIOCSIFFLAGS ${up ? "up" : "down"}`,
      (dv) => dv.setUint16(IFREQ.FLAGS, next, HOST_LE),
    );
  }

  /** Gives the device fd away (e.g. to a Worker) without closing it; closes the helper socket. */
  override release(): number {
    this.#closeCtl();
    return super.release();
  }

  #closeCtl(): void {
    if (this.#ctl >= 0) {
      const c = this.#ctl;
      this.#ctl = -1;
      libc().close(c);
    }
  }

  /** Closes the device (a non-persistent device disappears). Idempotent. */
  override close(): void {
    this.#closeCtl();
    super.close();
  }

  protected override closeLabel(): string {
    return `close(${this.name})`;
  }
}
