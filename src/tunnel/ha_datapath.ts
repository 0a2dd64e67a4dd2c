/**
 * The home agent's data path (RFC 6275 §10.4.1 "Intercepting Packets for a Mobile Node",
 * §10.4.5 "Handling Reverse Tunneled Packets"; RFC 2473 IPv6-in-IPv6 encapsulation).
 *
 * The HA daemon creates a tun device (IFF_TUN | IFF_NO_PI), routes each registered HoA/128
 * into it and sets its MTU to the home-link MTU − 40, so that the kernel itself answers
 * correspondents with ICMPv6 Packet Too Big for packets that would not fit the tunnel
 * (RFC 2473 §7, RFC 4443 §3.2): the data path never sees them. A Worker (or one per
 * direction) then moves packets: tun → raw IPPROTO_IPV6 socket (to the CoA) and raw socket →
 * tun, in batches.
 *
 * When the tun was opened with IFF_VNET_HDR the data path turns on its offloads (TUNSETOFFLOAD:
 * partial checksums, TCP/UDP segmentation): the kernel then hands over up to 64 KB per read,
 * which the data path splits into segments (the kernel's forwarding path has already checked
 * that each segment fits the tun's MTU), and it merges received TCP segments into 64 KB writes.
 * Without IFF_VNET_HDR it moves one packet per read and per write.
 *
 * @module
 */

import type { SharedCounters } from "./counters.ts";
import { DEFAULT_BATCH, MAX_PACKET, openTunnelSocket } from "./io.ts";
import type { HaWorkerInit } from "./ha_worker.ts";
import { TunnelTable } from "./table.ts";
import { enableOffloads, hasVnetHdr } from "./vnet.ts";
import { type Datapath, type DatapathWorkers, startDatapath } from "./worker_host.ts";

export type { Datapath };

/** Options of {@linkcode startHaDatapath}. */
export interface HaDatapathOptions {
  /**
   * An IFF_TUN | IFF_NO_PI device the HA daemon created; the kernel routes HoA/128 into it.
   * Opened with IFF_VNET_HDR too, it gets offloads (the fast path).
   */
  tunFd: number;
  /** The home agent address: outer source of tunnelled packets, outer destination of reverse ones. */
  haAddress: string;
  /** HoA → CoA. */
  table: TunnelTable;
  /** Where the Workers count (see `DATAPATH_COUNTERS`). */
  counters: SharedCounters;
  /** The home-link MTU (the tun's MTU is this − 40; set by the daemon). */
  mtu: number;
  /** Messages per recvmmsg/sendmmsg batch (default 64). */
  batch?: number;
  /** Workers for the two directions (default 1: both in one; see `pumpLayout`). */
  workers?: DatapathWorkers;
}

/**
 * Starts the home agent data path (one Worker, or one per direction: `workers`): tun → tunnel
 * (inner destination a registered HoA → sent to its CoA, else `tunnel_tx_no_binding`) and
 * tunnel → tun (outer source = the CoA bound to the inner source HoA, else `tunnel_unknown` /
 * `tunnel_spoofed`, never forwarded).
 * The tun fd is switched to O_NONBLOCK (and offloads on, with IFF_VNET_HDR); it stays open
 * (it belongs to the daemon).
 * @throws {ErrnoError} when the raw socket cannot be opened or bound to `haAddress`.
 */
export function startHaDatapath(opts: HaDatapathOptions): Promise<Datapath> {
  if (!Number.isInteger(opts.mtu) || opts.mtu < 1280 + 40) {
    throw new RangeError(`home-link MTU must be >= 1320 (tunnel MTU >= 1280), got ${opts.mtu}`);
  }
  const vnet = hasVnetHdr(opts.tunFd);
  if (vnet) enableOffloads(opts.tunFd);
  const socket = openTunnelSocket({ bind: opts.haAddress });
  const init = {
    tunFd: opts.tunFd,
    vnet,
    sockFd: socket.fd,
    table: opts.table.buffer,
    counters: opts.counters.share(),
    batch: opts.batch ?? DEFAULT_BATCH,
    // Reverse-tunnelled packets may arrive reassembled up to 64 KiB; the tun side never
    // carries more than its MTU, but one buffer size keeps the ring simple.
    capacity: MAX_PACKET,
  };
  return startDatapath<HaWorkerInit>(
    new URL("./ha_worker.ts", import.meta.url),
    "kagemusha-ha",
    init,
    {
      socket,
      counters: opts.counters,
      workers: opts.workers,
    },
  );
}
