/**
 * The virtio-net header a tun/tap opened with IFF_VNET_HDR puts in front of every frame
 * (Linux include/uapi/linux/virtio_net.h `struct virtio_net_hdr`, 10 bytes, host byte order on
 * the little-endian hosts this runs on), and switching a device's offloads on.
 *
 * ```
 *  0      1          2         4          6            8             10
 *  +------+----------+---------+----------+------------+-------------+
 *  |flags | gso_type | hdr_len | gso_size | csum_start | csum_offset |
 *  +------+----------+---------+----------+------------+-------------+
 * ```
 *
 * - `flags` NEEDS_CSUM: the checksum at `csum_start + csum_offset` holds only the
 *   pseudo-header sum; the reader must sum `[csum_start, end)` and store the complement.
 *   DATA_VALID: the checksum was verified.
 * - `gso_type` TCPV6 / UDP_L4: the frame is a super-packet of `gso_size`-byte segments
 *   (headers once, payload up to 64 KB) that the reader splits; `hdr_len` is not trusted (on
 *   the forwarding path the kernel may report a whole segment), headers are parsed instead.
 * - offsets count from the start of the frame (the Ethernet header on a tap).
 *
 * @module
 */

import { IFF_VNET_HDR, TUN_F_CSUM, TUN_F_TSO6 } from "../../ffi/constants.ts";
import { ErrnoError } from "../../ffi/libc.ts";
import { setTunOffload, tunDeviceFlags } from "../../ffi/tap.ts";

/** sizeof(struct virtio_net_hdr): the prefix of every frame on an IFF_VNET_HDR device. */
export const VNET_HDR_LEN = 10;

/** virtio_net_hdr field offsets. */
export const VNET = {
  FLAGS: 0,
  GSO_TYPE: 1,
  HDR_LEN: 2,
  GSO_SIZE: 4,
  CSUM_START: 6,
  CSUM_OFFSET: 8,
} as const;

/** `flags`: the checksum is partial (CHECKSUM_PARTIAL). */
export const VNET_F_NEEDS_CSUM = 1;
/** `flags`: the checksum was verified (CHECKSUM_UNNECESSARY). */
export const VNET_F_DATA_VALID = 2;

/** `gso_type` values. */
export const GSO = {
  NONE: 0,
  TCPV4: 1,
  UDP: 3,
  TCPV6: 4,
  UDP_L4: 5,
  /** Flag bit: the segments carry ECN CE (needs TUN_F_TSO_ECN, never offered here). */
  ECN: 0x80,
} as const;

/** TUNSETOFFLOAD: UDP segmentation over IPv4 (only together with TUN_F_USO6). */
export const TUN_F_USO4 = 0x20;
/** TUNSETOFFLOAD: UDP segmentation over IPv6 (only together with TUN_F_USO4). */
export const TUN_F_USO6 = 0x40;

/** Reads a little-endian u16 of the header at `at`. */
export function vnetU16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

/** Writes a whole virtio_net_hdr at `b[at]` (every byte: buffers are reused). */
export function writeVnetHdr(
  b: Uint8Array,
  at: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  b[at] = flags;
  b[at + 1] = gsoType;
  b[at + 2] = hdrLen & 0xff;
  b[at + 3] = hdrLen >>> 8;
  b[at + 4] = gsoSize & 0xff;
  b[at + 5] = gsoSize >>> 8;
  b[at + 6] = csumStart & 0xff;
  b[at + 7] = csumStart >>> 8;
  b[at + 8] = csumOffset & 0xff;
  b[at + 9] = csumOffset >>> 8;
}

/** Whether the tun/tap device behind `fd` was opened with IFF_VNET_HDR (TUNGETIFF). */
export function hasVnetHdr(fd: number): boolean {
  return (tunDeviceFlags(fd) & IFF_VNET_HDR) !== 0;
}

/**
 * Turns on what the data path handles on an IFF_VNET_HDR device: partial checksums and TCP
 * segmentation over IPv6, plus UDP segmentation when the kernel knows it (Linux ≥ 6.2; USO4
 * has to come with USO6). Returns the TUN_F_* flags set.
 */
export function enableOffloads(fd: number): number {
  const base = TUN_F_CSUM | TUN_F_TSO6;
  const withUso = base | TUN_F_USO4 | TUN_F_USO6;
  try {
    setTunOffload(fd, withUso);
    return withUso;
  } catch (e) {
    if (!(e instanceof ErrnoError) || e.code !== "EINVAL") throw e;
  }
  setTunOffload(fd, base);
  return base;
}
