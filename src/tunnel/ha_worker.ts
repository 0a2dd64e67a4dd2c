/**
 * Home agent data-path Worker (RFC 6275 §10.4.1 and §10.4.5, RFC 2473 §3–4). A Worker runs the
 * pumps its init names (`roles`): both in one Worker by default, one per Worker on request
 * (`worker_loop.ts`).
 *
 * - `tx`: tun → tunnel. Packets the kernel routed into the tun (destination a Home Address)
 *   are sent to the binding's Care-of Address through the raw IPPROTO_IPV6 socket bound to the
 *   home agent address; the kernel prepends the outer header. A CoA that is itself a Home
 *   Address of the table would be a tunnel loop (RFC 2473 §4): dropped, `tunnel_loop`. On a tun with IFF_VNET_HDR the
 *   kernel hands over 64 KB TCP (and UDP) super-packets, split here into segments
 *   (`gso.ts`), and packets with partial checksums, finished here.
 * - `rx`: tunnel → tun. Inner packets received on that socket are written to the tun only when
 *   the inner source is a registered HoA and the outer source is that binding's CoA. On a tun
 *   with IFF_VNET_HDR consecutive TCP segments of a batch are merged first (`gro.ts`).
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { POLLERR } from "../../ffi/constants.ts";
import { SendRing } from "../../ffi/raw_socket.ts";
import { copyBytes, finishChecksum } from "./checksum.ts";
import type { CounterBatch, SharedCountersInit } from "./counters.ts";
import { groMergedGso, writeCoalesced } from "./gro.ts";
import { GsoSplitter } from "./gso.ts";
import {
  HEADROOM,
  ipv6PacketLength,
  newReadBuffer,
  READ_CAPACITY,
  READ_IP_AT,
  recvNow,
  SendBatch,
  setNonblocking,
  tunnelReceiver,
} from "./io.ts";
import { TableReader } from "./table.ts";
import { GSO, VNET, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, vnetU16 } from "./vnet.ts";
import type { PumpInit } from "./worker_host.ts";
import { type Pump, pumpWorker } from "./worker_loop.ts";

/** The init message of a home agent Worker. */
export interface HaWorkerInit extends PumpInit {
  tunFd: number;
  /** The tun carries a virtio_net_hdr per packet and has offloads on (see `vnet.ts`). */
  vnet: boolean;
  sockFd: number;
  table: SharedArrayBuffer;
  counters: SharedCountersInit;
  batch: number;
  capacity: number;
}

const IP6_SRC = 8;
const IP6_DST = 24;

/** What both pumps start from (each gets its own table reader: it keeps the last lookup). */
function pumpBase(init: HaWorkerInit, c: CounterBatch) {
  return {
    lib: libc(),
    table: new TableReader(init.table),
    B: init.batch,
    cap: init.capacity,
    tunFd: init.tunFd,
    sockFd: init.sockFd,
    vnet: init.vnet,
    hdrLen: init.vnet ? VNET_HDR_LEN : 0,
    MALFORMED: c.slot("tunnel_malformed"),
  };
}

/** tun → tunnel. */
function txPump(init: HaWorkerInit, c: CounterBatch): Pump {
  const { lib, table, B, cap, tunFd, sockFd, vnet, hdrLen, MALFORMED } = pumpBase(init, c);
  setNonblocking(tunFd);
  const ring = new SendRing(B, cap, { headroom: HEADROOM });
  for (let i = 0; i < B; i++) ring.setDst(i, new Uint8Array(16)); // family, namelen
  const out = new SendBatch(sockFd, ring, c);
  // Reads land so that the IPv6 header is at READ_IP_AT, the virtio_net_hdr before it.
  const rmem = newReadBuffer();
  const rb = rmem.u8;
  const readView = rb.subarray(READ_IP_AT - hdrLen);
  const readCap = BigInt(Math.min(readView.length, READ_CAPACITY));
  const packet = rb.subarray(READ_IP_AT);
  const split = new GsoSplitter();
  const NO_BINDING = c.slot("tunnel_tx_no_binding");
  const LOOP = c.slot("tunnel_loop");
  const GSO_SPLIT = c.slot("tunnel_tx_gso_split");
  const GSO_DROPPED = c.slot("tunnel_tx_gso_dropped");
  return {
    fds: [tunFd],
    service(revents) {
      // A tun whose device is gone polls POLLERR for ever.
      if (revents(0) & POLLERR) throw new Error(`tun fd ${tunFd}: POLLERR (device gone?)`);
      let reads = 0;
      while (reads < B) {
        const r = lib.read_i32(tunFd, readView, readCap);
        if (r < 0) break; // EAGAIN: drained (a real error shows up in poll's revents)
        reads++;
        const len = ipv6PacketLength(packet, r - hdrLen);
        if (len < 0) {
          c.add(MALFORMED, 1);
          continue;
        }
        const slot = table.lookup(packet, IP6_DST);
        if (slot < 0) {
          c.add(NO_BINDING, 1);
          continue;
        }
        // RFC 2473 §4: a CoA that is a HoA routes the encapsulated packet back into the tun,
        // where it would be encapsulated again, without end.
        if (table.outerIsKey()) {
          c.add(LOOP, 1);
          continue;
        }
        const at = READ_IP_AT - VNET_HDR_LEN; // the header, when there is one
        const gsoType = vnet ? rb[at + VNET.GSO_TYPE] : GSO.NONE;
        if (gsoType !== GSO.NONE) {
          const segs = split.prepare(
            rmem,
            READ_IP_AT,
            len,
            gsoType,
            vnetU16(rb, at + VNET.GSO_SIZE),
          );
          if (segs < 0) {
            c.add(GSO_DROPPED, 1);
            continue;
          }
          for (let i = 0; i < segs; i++) {
            const s = out.slot();
            table.copyOuter(ring.addrs[s], 0);
            out.commit(split.emit(i, out.mem, out.ipAt[s]));
          }
          c.add(GSO_SPLIT, 1);
          continue;
        }
        if (vnet && (rb[at + VNET.FLAGS] & VNET_F_NEEDS_CSUM) !== 0) {
          // csum_start counts from the start of the packet (no link header on a tun).
          const start = READ_IP_AT + vnetU16(rb, at + VNET.CSUM_START);
          const field = start + vnetU16(rb, at + VNET.CSUM_OFFSET);
          if (!finishChecksum(rmem, start, READ_IP_AT + len, field)) {
            c.add(MALFORMED, 1);
            continue;
          }
        }
        const s = out.slot();
        table.copyOuter(ring.addrs[s], 0);
        copyBytes(rmem, READ_IP_AT, out.mem, out.ipAt[s], len);
        out.commit(len);
      }
      out.flush();
      c.flush();
    },
  };
}

/** tunnel → tun. */
function rxPump(init: HaWorkerInit, c: CounterBatch): Pump {
  const { lib, table, B, cap, tunFd, sockFd, vnet, hdrLen, MALFORMED } = pumpBase(init, c);
  const rx = tunnelReceiver(c, B, cap, 0);
  const { ring, data, mem, gro, split, scratch } = rx;
  const {
    RX_PACKETS,
    RX_BYTES,
    UNKNOWN,
    SPOOFED,
    TRUNCATED,
    RX_ERRORS,
    RX_BATCHES,
    NIC_GRO,
    gro: groSlots,
  } = rx.slots;
  // What a write hands the tun: the packet, or virtio_net_hdr + packet.
  const writes = ring.buffers.map((b) => b.subarray(HEADROOM - hdrLen));
  const scratchPacket = scratch.u8.subarray(READ_IP_AT);
  /** Writes the NIC-merged packet of slot `k` as `gso`-byte segments; false if one failed. */
  const writeSplit = (k: number, len: number, gso: number): boolean => {
    const n = split.prepare(mem, data[k].byteOffset, len, GSO.TCPV6, gso);
    let ok = n > 0;
    for (let i = 0; i < n; i++) {
      const l = split.emit(i, scratch, READ_IP_AT);
      if (lib.write_i32(tunFd, scratchPacket, BigInt(l)) < 0) ok = false;
    }
    return ok;
  };
  /** Writes coalesced unit u (vnet header + packet) to the tun. */
  const writeUnit = (u: number): boolean =>
    lib.write_i32(tunFd, writes[gro.unitTag[u]], BigInt(gro.unitLength[u] + hdrLen)) >= 0;
  return {
    fds: [sockFd],
    service() {
      // (A socket's pending error is consumed by recvmmsg.)
      const n = recvNow(sockFd, ring);
      if (n === 0) return;
      gro.reset();
      for (let k = 0; k < n; k++) {
        const buf = data[k];
        if (ring.truncated(k)) {
          c.add(TRUNCATED, 1);
          continue;
        }
        const len = ipv6PacketLength(buf, ring.length(k));
        if (len < 0) {
          c.add(MALFORMED, 1);
          continue;
        }
        // RFC 6275 §10.4.5: the inner source must be a HoA whose binding names this CoA.
        const slot = table.lookup(buf, IP6_SRC);
        if (slot < 0) {
          c.add(UNKNOWN, 1);
          continue;
        }
        if (!table.outerIs(ring.addrs[k], 0)) {
          c.add(SPOOFED, 1);
          continue;
        }
        if (vnet) {
          gro.add(buf.byteOffset, len, k);
          continue;
        }
        const pre = groMergedGso(mem, buf.byteOffset, len);
        if (pre > 0) c.add(NIC_GRO, 1);
        const ok = pre > 0 ? writeSplit(k, len, pre) : lib.write_i32(tunFd, buf, BigInt(len)) >= 0;
        if (!ok) {
          c.add(RX_ERRORS, 1);
        } else {
          c.add(RX_PACKETS, 1);
          c.add(RX_BYTES, len);
        }
      }
      if (vnet) writeCoalesced(gro, c, groSlots, writeUnit);
      c.add(RX_BATCHES, 1);
      c.flush();
    },
  };
}

pumpWorker({ tx: txPump, rx: rxPump });
