/**
 * C struct layouts for Linux LP64 (x86_64 and aarch64 agree on every layout
 * here: 8-byte pointers and size_t, 4-byte int and socklen_t, little-endian
 * host byte order). Offsets and sizes are named constants pinned by
 * `structs_test.ts`; encoders write every byte they own, decoders read plain
 * values. Network-order fields (ports, flowinfo, sll_protocol) are big-endian,
 * the rest host order.
 *
 * @module
 */

import { cstring, errno, ErrnoError, libc } from "./libc.ts";
import { formatIPv6 } from "../src/wire/addr.ts";
import { parseIPv6Into } from "../src/wire/fast_addr.ts";

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("ffi/structs.ts assumes a little-endian host (x86_64, aarch64)");
}

/** Host byte order flag for DataView calls (little-endian on every supported target). */
export const HOST_LE = true;

// ---- pointers ---------------------------------------------------------------------------

/**
 * The address of `buf`'s first byte (byteOffset included), for writing into C
 * structs. User-space addresses on x86_64 and aarch64 fit in 48 bits, so a
 * number holds them exactly. Costs ~0.3 µs: call once per owned buffer and cache.
 */
export function addressOf(buf: Uint8Array): number {
  if (buf.byteLength === 0) return 0;
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** Writes a u64 (pointer or size_t) below 2^53 as two host-order u32 halves: no BigInt. */
export function putU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v >>> 0, HOST_LE);
  dv.setUint32(off + 4, Math.floor(v / 0x1_0000_0000), HOST_LE);
}

/** Reads a u64 (pointer or size_t) below 2^53 without BigInt. */
export function getU64(dv: DataView, off: number): number {
  return dv.getUint32(off, HOST_LE) + dv.getUint32(off + 4, HOST_LE) * 0x1_0000_0000;
}

// ---- layouts -------------------------------------------------------------------------------

/** struct sockaddr_in6 (RFC 3493 §3.3): 28 bytes. */
export const SOCKADDR_IN6 = {
  SIZE: 28,
  FAMILY: 0, // u16 host
  PORT: 2, // u16 network
  FLOWINFO: 4, // u32 network
  ADDR: 8, // 16 bytes
  SCOPE_ID: 24, // u32 host
} as const;

/** struct sockaddr_ll (packet(7)): 20 bytes. */
export const SOCKADDR_LL = {
  SIZE: 20,
  FAMILY: 0, // u16 host
  PROTOCOL: 2, // u16 network
  IFINDEX: 4, // i32 host
  HATYPE: 8, // u16 host
  PKTTYPE: 10, // u8
  HALEN: 11, // u8
  ADDR: 12, // 8 bytes
} as const;

/** struct iovec: 16 bytes. */
export const IOVEC = { SIZE: 16, BASE: 0, LEN: 8 } as const;

/** struct msghdr: 56 bytes (padding after msg_namelen and msg_flags). */
export const MSGHDR = {
  SIZE: 56,
  NAME: 0, // void*
  NAMELEN: 8, // socklen_t
  IOV: 16, // struct iovec*
  IOVLEN: 24, // size_t
  CONTROL: 32, // void*
  CONTROLLEN: 40, // size_t
  FLAGS: 48, // int
} as const;

/** struct mmsghdr: a msghdr followed by msg_len, padded to 64 bytes. */
export const MMSGHDR = { SIZE: 64, HDR: 0, LEN: 56 } as const;

/** struct cmsghdr: 16-byte header, data 8-aligned (CMSG_ALIGN). */
export const CMSGHDR = { SIZE: 16, LEN: 0, LEVEL: 8, TYPE: 12, DATA: 16, ALIGN: 8 } as const;

/** struct in6_pktinfo (RFC 3542 §6): 20 bytes. */
export const IN6_PKTINFO = { SIZE: 20, ADDR: 0, IFINDEX: 16 } as const;

/** struct ipv6_mreq (RFC 3493 §5.2): 20 bytes. */
export const IPV6_MREQ = { SIZE: 20, ADDR: 0, IFINDEX: 16 } as const;

/** struct packet_mreq: 16 bytes. */
export const PACKET_MREQ = { SIZE: 16, IFINDEX: 0, TYPE: 4, ALEN: 6, ADDRESS: 8 } as const;

/** struct tpacket_auxdata: 20 bytes. */
export const TPACKET_AUXDATA = {
  SIZE: 20,
  STATUS: 0,
  LEN: 4,
  SNAPLEN: 8,
  MAC: 12,
  NET: 14,
  VLAN_TCI: 16,
  VLAN_TPID: 18,
} as const;

/** struct ifreq: 16-byte name, 24-byte union; 40 bytes. */
export const IFREQ = {
  SIZE: 40,
  NAME: 0,
  NAME_SIZE: 16,
  UNION: 16,
  FLAGS: 16, // short ifr_flags
  MTU: 16, // int ifr_mtu
  IFINDEX: 16, // int ifr_ifindex
  HWADDR_FAMILY: 16, // struct sockaddr ifr_hwaddr: sa_family
  HWADDR_DATA: 18, // sa_data[14]
} as const;

/** struct pollfd: 8 bytes. */
export const POLLFD = { SIZE: 8, FD: 0, EVENTS: 4, REVENTS: 6 } as const;

/** struct icmp6_filter (RFC 3542 §3.2): 8 × u32 bitmap, set bit = block; 32 bytes. */
export const ICMP6_FILTER_LAYOUT = { SIZE: 32 } as const;

/** struct timespec: 16 bytes. */
export const TIMESPEC = { SIZE: 16, SEC: 0, NSEC: 8 } as const;

// ---- cmsg arithmetic -------------------------------------------------------------------------

/** CMSG_ALIGN: rounds up to 8. */
export function cmsgAlign(len: number): number {
  return (len + 7) & ~7;
}

/** CMSG_SPACE(len): bytes a cmsg with `len` data bytes occupies in the control buffer. */
export function cmsgSpace(len: number): number {
  return CMSGHDR.SIZE + cmsgAlign(len);
}

/** CMSG_LEN(len): the value of cmsg_len for `len` data bytes. */
export function cmsgLen(len: number): number {
  return CMSGHDR.SIZE + len;
}

/**
 * Writes one cmsg header at `off` (data is written by the caller at
 * `off + CMSGHDR.DATA`); zeroes the alignment padding. Returns the offset of
 * the next cmsg.
 */
export function writeCmsgHeader(
  dv: DataView,
  off: number,
  level: number,
  type: number,
  dataLen: number,
): number {
  putU64(dv, off + CMSGHDR.LEN, cmsgLen(dataLen));
  dv.setInt32(off + CMSGHDR.LEVEL, level, HOST_LE);
  dv.setInt32(off + CMSGHDR.TYPE, type, HOST_LE);
  const end = off + cmsgSpace(dataLen);
  for (let i = off + CMSGHDR.DATA + dataLen; i < end; i++) dv.setUint8(i, 0);
  return end;
}

/** One control message found by `parseCmsgs`: where its data lies in the control buffer. */
export interface CmsgRef {
  level: number;
  type: number;
  /** Offset of the data within the control buffer. */
  offset: number;
  /** Data length (cmsg_len - 16). */
  length: number;
}

/**
 * Length of the data of the cmsg at `off`, or -1 when no complete cmsg starts
 * there (end of `controlLen` reached or a malformed cmsg_len).
 */
export function cmsgDataLen(dv: DataView, off: number, controlLen: number): number {
  if (off + CMSGHDR.SIZE > controlLen) return -1;
  const len = getU64(dv, off + CMSGHDR.LEN);
  if (len < CMSGHDR.SIZE || off + len > controlLen) return -1;
  return len - CMSGHDR.SIZE;
}

/** Lists the control messages in the first `controlLen` bytes of `dv` (control path). */
export function parseCmsgs(dv: DataView, controlLen: number): CmsgRef[] {
  const out: CmsgRef[] = [];
  let off = 0;
  for (;;) {
    const length = cmsgDataLen(dv, off, controlLen);
    if (length < 0) return out;
    out.push({
      level: dv.getInt32(off + CMSGHDR.LEVEL, HOST_LE),
      type: dv.getInt32(off + CMSGHDR.TYPE, HOST_LE),
      offset: off + CMSGHDR.DATA,
      length,
    });
    off += cmsgSpace(length);
  }
}

// ---- IPv6 and MAC text ------------------------------------------------------------------------

/**
 * Parses IPv6 text (RFC 4291 §2.2, incl. `::` and a trailing dotted quad) into 16 bytes at
 * `out[off]`, with src/wire's allocation-free parser. A `%zone` suffix is ignored here (see
 * `parseSockaddrText`). Throws on malformed text: addresses come from configuration, never
 * from the wire.
 */
export function parseIpv6Into(text: string, out: Uint8Array, off = 0): void {
  const pct = text.indexOf("%");
  if (!parseIPv6Into(pct >= 0 ? text.slice(0, pct) : text, out, off)) {
    throw new TypeError(`invalid IPv6 address: ${JSON.stringify(text)}`);
  }
}

/** Parses IPv6 text into a fresh 16-byte array. */
export function parseIpv6(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(16);
  parseIpv6Into(text, out);
  return out;
}

/** Formats 16 bytes at `bytes[off]` as RFC 5952 text (src/wire's formatter). */
export function formatIpv6(bytes: Uint8Array, off = 0): string {
  return formatIPv6(bytes, off);
}

/** Parses `aa:bb:cc:dd:ee:ff` (or `-` separated) into 6 bytes at `out[off]`. */
export function parseMacInto(text: string, out: Uint8Array, off = 0): void {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new TypeError(`invalid MAC address: ${JSON.stringify(text)}`);
  }
  for (let i = 0; i < 6; i++) out[off + i] = parseInt(parts[i], 16);
}

/** Parses a MAC address into a fresh 6-byte array. */
export function parseMac(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(6);
  parseMacInto(text, out);
  return out;
}

/** Formats 6 bytes at `bytes[off]` as `aa:bb:cc:dd:ee:ff`. */
export function formatMac(bytes: Uint8Array, off = 0): string {
  const p: string[] = [];
  for (let i = 0; i < 6; i++) p.push(bytes[off + i].toString(16).padStart(2, "0"));
  return p.join(":");
}

// ---- interface names -----------------------------------------------------------------------

/**
 * if_nametoindex(3): the index of interface `name` in the calling thread's
 * network namespace. Throws `ErrnoError` naming the device (e.g.
 * `if_nametoindex(nope0): ENODEV (No such device)`).
 */
export function ifNameToIndex(name: string): number {
  if (name.length === 0 || name.length >= 16) {
    throw new TypeError(`invalid interface name: ${JSON.stringify(name)}`);
  }
  const idx = libc().if_nametoindex(cstring(name));
  if (idx === 0) throw new ErrnoError(`if_nametoindex(${name})`, errno() || 19);
  return idx;
}

// ---- sockaddr_in6 ---------------------------------------------------------------------------

/** Decoded struct sockaddr_in6. */
export interface SockaddrIn6 {
  /** Address text (RFC 5952). */
  addr: string;
  port: number;
  flowinfo: number;
  scopeId: number;
}

/**
 * Writes a struct sockaddr_in6 (all 28 bytes) at `off`. `addr` is text or 16
 * bytes; `%zone` text sets the scope id (numeric or an interface name).
 */
export function encodeSockaddrIn6(
  dv: DataView,
  off: number,
  sa: { addr: string | Uint8Array; port?: number; flowinfo?: number; scopeId?: number },
): void {
  dv.setUint16(off + SOCKADDR_IN6.FAMILY, 10, HOST_LE);
  dv.setUint16(off + SOCKADDR_IN6.PORT, sa.port ?? 0, false);
  dv.setUint32(off + SOCKADDR_IN6.FLOWINFO, sa.flowinfo ?? 0, false);
  const bytes = new Uint8Array(dv.buffer, dv.byteOffset + off + SOCKADDR_IN6.ADDR, 16);
  let scope = sa.scopeId ?? 0;
  if (typeof sa.addr === "string") {
    parseIpv6Into(sa.addr, bytes);
    const pct = sa.addr.indexOf("%");
    if (pct >= 0 && sa.scopeId === undefined) {
      const zone = sa.addr.slice(pct + 1);
      scope = /^\d+$/.test(zone) ? Number(zone) : ifNameToIndex(zone);
    }
  } else {
    if (sa.addr.length !== 16) throw new TypeError("IPv6 address must be 16 bytes");
    bytes.set(sa.addr);
  }
  dv.setUint32(off + SOCKADDR_IN6.SCOPE_ID, scope, HOST_LE);
}

/** Reads a struct sockaddr_in6 at `off`. */
export function decodeSockaddrIn6(dv: DataView, off = 0): SockaddrIn6 {
  return {
    addr: formatIpv6(new Uint8Array(dv.buffer, dv.byteOffset + off + SOCKADDR_IN6.ADDR, 16)),
    port: dv.getUint16(off + SOCKADDR_IN6.PORT, false),
    flowinfo: dv.getUint32(off + SOCKADDR_IN6.FLOWINFO, false),
    scopeId: dv.getUint32(off + SOCKADDR_IN6.SCOPE_ID, HOST_LE),
  };
}

// ---- sockaddr_ll -------------------------------------------------------------------------------

/** Decoded struct sockaddr_ll. */
export interface SockaddrLl {
  protocol: number;
  ifindex: number;
  hatype: number;
  pkttype: number;
  /** Hardware address bytes (halen of them). */
  addr: Uint8Array;
}

/** Writes a struct sockaddr_ll (all 20 bytes) at `off`. */
export function encodeSockaddrLl(
  dv: DataView,
  off: number,
  sa: { protocol: number; ifindex: number; hatype?: number; pkttype?: number; addr?: Uint8Array },
): void {
  dv.setUint16(off + SOCKADDR_LL.FAMILY, 17, HOST_LE);
  dv.setUint16(off + SOCKADDR_LL.PROTOCOL, sa.protocol, false);
  dv.setInt32(off + SOCKADDR_LL.IFINDEX, sa.ifindex, HOST_LE);
  dv.setUint16(off + SOCKADDR_LL.HATYPE, sa.hatype ?? 0, HOST_LE);
  dv.setUint8(off + SOCKADDR_LL.PKTTYPE, sa.pkttype ?? 0);
  const a = sa.addr ?? new Uint8Array(0);
  if (a.length > 8) throw new TypeError("sockaddr_ll address longer than 8 bytes");
  dv.setUint8(off + SOCKADDR_LL.HALEN, a.length);
  for (let i = 0; i < 8; i++) dv.setUint8(off + SOCKADDR_LL.ADDR + i, a[i] ?? 0);
}

/** Reads a struct sockaddr_ll at `off`. */
export function decodeSockaddrLl(dv: DataView, off = 0): SockaddrLl {
  const halen = Math.min(8, dv.getUint8(off + SOCKADDR_LL.HALEN));
  return {
    protocol: dv.getUint16(off + SOCKADDR_LL.PROTOCOL, false),
    ifindex: dv.getInt32(off + SOCKADDR_LL.IFINDEX, HOST_LE),
    hatype: dv.getUint16(off + SOCKADDR_LL.HATYPE, HOST_LE),
    pkttype: dv.getUint8(off + SOCKADDR_LL.PKTTYPE),
    addr: new Uint8Array(dv.buffer.slice(
      dv.byteOffset + off + SOCKADDR_LL.ADDR,
      dv.byteOffset + off + SOCKADDR_LL.ADDR + halen,
    )),
  };
}

// ---- iovec / msghdr / mmsghdr -------------------------------------------------------------------

/** Writes a struct iovec at `off`. */
export function encodeIovec(dv: DataView, off: number, base: number, len: number): void {
  putU64(dv, off + IOVEC.BASE, base);
  putU64(dv, off + IOVEC.LEN, len);
}

/** Fields of a struct msghdr (pointers as addresses). */
export interface Msghdr {
  name: number;
  namelen: number;
  iov: number;
  iovlen: number;
  control: number;
  controllen: number;
  flags: number;
}

/** Writes a struct msghdr (all 56 bytes, padding zeroed) at `off`. */
export function encodeMsghdr(dv: DataView, off: number, m: Msghdr): void {
  putU64(dv, off + MSGHDR.NAME, m.name);
  dv.setUint32(off + MSGHDR.NAMELEN, m.namelen, HOST_LE);
  dv.setUint32(off + MSGHDR.NAMELEN + 4, 0, HOST_LE);
  putU64(dv, off + MSGHDR.IOV, m.iov);
  putU64(dv, off + MSGHDR.IOVLEN, m.iovlen);
  putU64(dv, off + MSGHDR.CONTROL, m.control);
  putU64(dv, off + MSGHDR.CONTROLLEN, m.controllen);
  dv.setInt32(off + MSGHDR.FLAGS, m.flags, HOST_LE);
  dv.setUint32(off + MSGHDR.FLAGS + 4, 0, HOST_LE);
}

/** Reads a struct msghdr at `off`. */
export function decodeMsghdr(dv: DataView, off = 0): Msghdr {
  return {
    name: getU64(dv, off + MSGHDR.NAME),
    namelen: dv.getUint32(off + MSGHDR.NAMELEN, HOST_LE),
    iov: getU64(dv, off + MSGHDR.IOV),
    iovlen: getU64(dv, off + MSGHDR.IOVLEN),
    control: getU64(dv, off + MSGHDR.CONTROL),
    controllen: getU64(dv, off + MSGHDR.CONTROLLEN),
    flags: dv.getInt32(off + MSGHDR.FLAGS, HOST_LE),
  };
}

// ---- in6_pktinfo, ipv6_mreq, packet_mreq, icmp6_filter ------------------------------------------

/** Writes a struct in6_pktinfo at `off` (RFC 3542 §6.1). */
export function encodeIn6Pktinfo(
  dv: DataView,
  off: number,
  addr: string | Uint8Array,
  ifindex: number,
): void {
  const bytes = new Uint8Array(dv.buffer, dv.byteOffset + off + IN6_PKTINFO.ADDR, 16);
  if (typeof addr === "string") parseIpv6Into(addr, bytes);
  else bytes.set(addr.subarray(0, 16));
  dv.setUint32(off + IN6_PKTINFO.IFINDEX, ifindex, HOST_LE);
}

/** Reads a struct in6_pktinfo at `off`. */
export function decodeIn6Pktinfo(dv: DataView, off = 0): { addr: string; ifindex: number } {
  return {
    addr: formatIpv6(new Uint8Array(dv.buffer, dv.byteOffset + off + IN6_PKTINFO.ADDR, 16)),
    ifindex: dv.getUint32(off + IN6_PKTINFO.IFINDEX, HOST_LE),
  };
}

/** A struct ipv6_mreq for IPV6_JOIN_GROUP/LEAVE_GROUP. */
export function encodeIpv6Mreq(addr: string, ifindex: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(IPV6_MREQ.SIZE);
  parseIpv6Into(addr, out, IPV6_MREQ.ADDR);
  new DataView(out.buffer).setInt32(IPV6_MREQ.IFINDEX, ifindex, HOST_LE);
  return out;
}

/** A struct packet_mreq for PACKET_ADD_MEMBERSHIP/DROP_MEMBERSHIP. */
export function encodePacketMreq(
  ifindex: number,
  type: number,
  addr: Uint8Array = new Uint8Array(0),
): Uint8Array<ArrayBuffer> {
  if (addr.length > 8) throw new TypeError("packet_mreq address longer than 8 bytes");
  const out = new Uint8Array(PACKET_MREQ.SIZE);
  const dv = new DataView(out.buffer);
  dv.setInt32(PACKET_MREQ.IFINDEX, ifindex, HOST_LE);
  dv.setUint16(PACKET_MREQ.TYPE, type, HOST_LE);
  dv.setUint16(PACKET_MREQ.ALEN, addr.length, HOST_LE);
  out.set(addr, PACKET_MREQ.ADDRESS);
  return out;
}

/**
 * A struct icmp6_filter passing only `passTypes` (RFC 3542 §3.2: a set bit
 * blocks; ICMP6_FILTER_SETBLOCKALL then ICMP6_FILTER_SETPASS per type).
 */
export function encodeIcmp6Filter(passTypes: readonly number[]): Uint8Array<ArrayBuffer> {
  const words = new Uint32Array(8).fill(0xffffffff);
  for (const t of passTypes) {
    if (!Number.isInteger(t) || t < 0 || t > 255) throw new RangeError(`ICMPv6 type ${t}`);
    words[t >> 5] &= ~(1 << (t & 31));
  }
  return new Uint8Array(words.buffer);
}

/** The ICMPv6 types a struct icmp6_filter passes. */
export function decodeIcmp6Filter(buf: Uint8Array): number[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, ICMP6_FILTER_LAYOUT.SIZE);
  const out: number[] = [];
  for (let t = 0; t < 256; t++) {
    if ((dv.getUint32((t >> 5) * 4, HOST_LE) & (1 << (t & 31))) === 0) out.push(t);
  }
  return out;
}

// ---- ifreq ----------------------------------------------------------------------------------

/** A zeroed struct ifreq with `name` filled in (throws if the name does not fit IFNAMSIZ). */
export function encodeIfreq(name: string): Uint8Array<ArrayBuffer> {
  const b = new TextEncoder().encode(name);
  if (b.length === 0 || b.length >= IFREQ.NAME_SIZE) {
    throw new TypeError(`invalid interface name: ${JSON.stringify(name)}`);
  }
  const out = new Uint8Array(IFREQ.SIZE);
  out.set(b, IFREQ.NAME);
  return out;
}

/** The interface name in a struct ifreq. */
export function decodeIfreqName(buf: Uint8Array): string {
  let end = IFREQ.NAME;
  while (end < IFREQ.NAME_SIZE && buf[end] !== 0) end++;
  return new TextDecoder().decode(buf.subarray(IFREQ.NAME, end));
}

// ---- pollfd ------------------------------------------------------------------------------------

/** Writes a struct pollfd at index `i` of a pollfd array (revents zeroed). */
export function encodePollfd(dv: DataView, i: number, fd: number, events: number): void {
  const off = i * POLLFD.SIZE;
  dv.setInt32(off + POLLFD.FD, fd, HOST_LE);
  dv.setInt16(off + POLLFD.EVENTS, events, HOST_LE);
  dv.setInt16(off + POLLFD.REVENTS, 0, HOST_LE);
}

/** revents of entry `i` of a pollfd array. */
export function pollfdRevents(dv: DataView, i: number): number {
  return dv.getUint16(i * POLLFD.SIZE + POLLFD.REVENTS, HOST_LE);
}
