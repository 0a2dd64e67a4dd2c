/**
 * Mobile node data-path Worker (RFC 6275 §11.3.1 reverse tunnelling, RFC 2473 encapsulation,
 * Kagemusha's pseudo home network). A Worker runs the pumps its init names (`roles`): both in
 * one Worker by default, one per Worker on request (`worker_loop.ts`).
 *
 * - `tx`: VM taps → tunnel. Every frame a guest sends is classified by `handleVmFrame`
 *   (`src/mn/pseudo_home.ts`): ND/RS/echo answers and Packet Too Big go back to that tap;
 *   packets from the HoA of an active VM go to the home agent through the raw IPPROTO_IPV6
 *   socket, outer source the CoA (IPV6_PKTINFO); the rest is dropped and counted. On a tap with
 *   IFF_VNET_HDR, partial checksums are finished first, and a GSO super-frame (a 64 KB TCP or
 *   UDP segment) is split into tunnel-sized segments (`gso.ts`); whether it fits the tunnel is
 *   judged by its segment size (headers + gso_size), not by the super-frame's: segments that
 *   would not fit draw the Packet Too Big (RFC 2473 §7), as an over-MTU plain frame does.
 * - `rx`: tunnel → VM taps. Inner packets whose outer source is the home agent and whose
 *   destination is an active VM's HoA are framed (destination the VM MAC, source the router
 *   MAC, EtherType 0x86dd) in the buffer's headroom and written to that VM's tap; on a tap with
 *   IFF_VNET_HDR consecutive TCP segments of a batch are merged first (`gro.ts`).
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { POLLERR, POLLIN } from "../../ffi/constants.ts";
import { SendRing } from "../../ffi/raw_socket.ts";
import {
  FRAME_ACTION,
  handleVmFrame,
  makePseudoHomeContext,
  newFrameVerdict,
  type PseudoHomeVm,
  VM_DROP_COUNTERS,
} from "../mn/pseudo_home.ts";
import { parseIPv6, parseMac } from "../wire/addr.ts";
import { copyBytes, finishChecksum } from "./checksum.ts";
import type { CounterBatch, SharedCountersInit } from "./counters.ts";
import { groMergedGso, writeCoalesced } from "./gro.ts";
import { GsoSplitter } from "./gso.ts";
import {
  ETHER_HEADER,
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
import { MnControlReader } from "./mn_control.ts";
import { GSO, VNET, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, vnetU16 } from "./vnet.ts";
import type { PumpInit } from "./worker_host.ts";
import { type Pump, pumpWorker } from "./worker_loop.ts";

/** One VM as the Workers see it. */
export interface MnWorkerVm extends PseudoHomeVm {
  tapFd: number;
  /** The tap carries a virtio_net_hdr per frame and has offloads on (see `vnet.ts`). */
  vnet: boolean;
}

/** The init message of a mobile node Worker. */
export interface MnWorkerInit extends PumpInit {
  vms: MnWorkerVm[];
  sockFd: number;
  control: SharedArrayBuffer;
  counters: SharedCountersInit;
  linkMtu: number;
  batch: number;
  capacity: number;
}

const IP6_DST = 24;
/** Where frames start in the read buffer: the IPv6 header lands at READ_IP_AT. */
const FRAME_AT = READ_IP_AT - ETHER_HEADER;
/** Classifying a GSO super-frame: no Packet Too Big on its total size (segments are judged). */
const NO_MTU = 0xffff;

/** What both pumps start from (each gets its own control reader: refresh() consumes a change). */
function pumpBase(init: MnWorkerInit, c: CounterBatch) {
  return {
    lib: libc(),
    ctl: new MnControlReader(init.control),
    B: init.batch,
    cap: init.capacity,
    V: init.vms.length,
    taps: init.vms.map((v) => v.tapFd),
    vnets: init.vms.map((v) => v.vnet),
    sockFd: init.sockFd,
    MALFORMED: c.slot("tunnel_malformed"),
  };
}

/** VM taps → tunnel (and the pseudo home network's answers back to the taps). */
function txPump(init: MnWorkerInit, c: CounterBatch): Pump {
  const { lib, ctl, B, cap, V, taps, vnets, sockFd, MALFORMED } = pumpBase(init, c);
  // RFC 2473 §7 / pseudo_home.ts: inner packets above linkMtu − 40 get a Packet Too Big.
  const tunnelMtu = init.linkMtu - 40;
  const ctxs = init.vms.map((v) => makePseudoHomeContext(v, tunnelMtu));
  const gsoCtxs = init.vms.map((v) => makePseudoHomeContext(v, NO_MTU));
  for (const fd of taps) setNonblocking(fd);
  const ring = new SendRing(B, cap, { headroom: HEADROOM, pktinfo: true });
  const out = new SendBatch(sockFd, ring, c);
  const rmem = newReadBuffer();
  const rb = rmem.u8;
  // With a virtio_net_hdr the read starts 10 bytes earlier; the frame lands at FRAME_AT.
  const readVnet = rb.subarray(FRAME_AT - VNET_HDR_LEN);
  const readPlain = rb.subarray(FRAME_AT);
  const capVnet = BigInt(Math.min(readVnet.length, READ_CAPACITY));
  const capPlain = BigInt(Math.min(readPlain.length, READ_CAPACITY - VNET_HDR_LEN));
  const frame = readPlain;
  const HDR = FRAME_AT - VNET_HDR_LEN;
  // Replies: the frame at `reply`, an all-zero virtio_net_hdr before it (flags 0, no GSO).
  const replyBuf = new Uint8Array(new ArrayBuffer(VNET_HDR_LEN + ETHER_HEADER + 0xffff + 40));
  const reply = replyBuf.subarray(VNET_HDR_LEN);
  const verdict = newFrameVerdict();
  const split = new GsoSplitter();
  const NO_BINDING = c.slot("tunnel_tx_no_binding");
  const GSO_SPLIT = c.slot("tunnel_tx_gso_split");
  const GSO_DROPPED = c.slot("tunnel_tx_gso_dropped");
  const VM_FRAMES = c.slot("vm_frames");
  const VM_REPLIES = c.slot("vm_replies");
  const VM_TOO_BIG = c.slot("vm_too_big");
  const VM_DROPPED = c.slot("vm_dropped");
  /** Counter slot of each drop reason, indexed by a DROP verdict's `dropCounter`. */
  const DROP_SLOTS = Int32Array.from(VM_DROP_COUNTERS, (n) => c.slot(n));
  const RX_ERRORS = c.slot("tunnel_rx_errors");
  /** Destination (the HA) and IPV6_PKTINFO source (the CoA, RFC 3542 §6.1) of every slot. */
  const program = () => {
    for (let i = 0; i < B; i++) {
      ring.setDst(i, ctl.homeAgent);
      ring.setSrc(i, ctl.careOf);
    }
  };
  program();

  return {
    fds: taps,
    service(revents) {
      if (ctl.refresh()) program();
      const tunnelOk = ctl.haveCareOf && ctl.haveHomeAgent;
      for (let v = 0; v < V; v++) {
        const rv = revents(v);
        if (rv & POLLERR) throw new Error(`tap fd ${taps[v]}: POLLERR (device gone?)`);
        if ((rv & POLLIN) === 0) continue;
        const fd = taps[v];
        const vnet = vnets[v];
        const hdrLen = vnet ? VNET_HDR_LEN : 0;
        const readView = vnet ? readVnet : readPlain;
        const readCap = vnet ? capVnet : capPlain;
        const replyView = vnet ? replyBuf : reply;
        const active = ctl.active[v] === 1 && tunnelOk;
        let reads = 0;
        while (reads < B) {
          const r = lib.read_i32(fd, readView, readCap);
          if (r < 0) break; // EAGAIN
          reads++;
          c.add(VM_FRAMES, 1);
          const len = r - hdrLen;
          const gsoType = vnet ? rb[HDR + VNET.GSO_TYPE] : GSO.NONE;
          if (gsoType !== GSO.NONE) {
            // A super-frame: classify it as a whole (no MTU), then judge its segments.
            handleVmFrame(frame, len, gsoCtxs[v], reply, verdict);
            if (verdict.action === FRAME_ACTION.TUNNEL) {
              const segs = split.prepare(
                rmem,
                FRAME_AT + verdict.offset,
                verdict.length,
                gsoType,
                vnetU16(rb, HDR + VNET.GSO_SIZE),
              );
              if (segs < 0) {
                c.add(GSO_DROPPED, 1);
                continue;
              }
              if (split.segmentLength > tunnelMtu) {
                // Packet Too Big, computed on the frame (RFC 2473 §7, RFC 4443 §3.2).
                handleVmFrame(frame, len, ctxs[v], reply, verdict);
              } else if (!active) {
                c.add(NO_BINDING, 1);
                continue;
              } else {
                for (let i = 0; i < segs; i++) {
                  const s = out.slot();
                  out.commit(split.emit(i, out.mem, out.ipAt[s]));
                }
                c.add(GSO_SPLIT, 1);
                continue;
              }
            }
          } else {
            if (vnet && (rb[HDR + VNET.FLAGS] & VNET_F_NEEDS_CSUM) !== 0) {
              // csum_start counts from the start of the frame (the Ethernet header).
              const start = FRAME_AT + vnetU16(rb, HDR + VNET.CSUM_START);
              const field = start + vnetU16(rb, HDR + VNET.CSUM_OFFSET);
              if (!finishChecksum(rmem, start, FRAME_AT + len, field)) {
                c.add(MALFORMED, 1);
                continue;
              }
            }
            handleVmFrame(frame, len, ctxs[v], reply, verdict);
          }
          switch (verdict.action) {
            case FRAME_ACTION.TUNNEL: {
              if (!active) {
                c.add(NO_BINDING, 1);
                break;
              }
              const s = out.slot();
              copyBytes(rmem, FRAME_AT + verdict.offset, out.mem, out.ipAt[s], verdict.length);
              out.commit(verdict.length);
              break;
            }
            case FRAME_ACTION.REPLY:
            case FRAME_ACTION.TOO_BIG:
              if (lib.write_i32(fd, replyView, BigInt(verdict.length + hdrLen)) < 0) {
                c.add(RX_ERRORS, 1);
              } else {
                c.add(verdict.action === FRAME_ACTION.REPLY ? VM_REPLIES : VM_TOO_BIG, 1);
              }
              break;
            default:
              c.add(VM_DROPPED, 1);
              c.add(DROP_SLOTS[verdict.dropCounter], 1);
          }
        }
      }
      out.flush();
      c.flush();
    },
  };
}

/** Tunnel → VM taps. */
function rxPump(init: MnWorkerInit, c: CounterBatch): Pump {
  const { lib, ctl, B, cap, V, taps, vnets, sockFd, MALFORMED } = pumpBase(init, c);
  const rx = tunnelReceiver(c, B, cap, ETHER_HEADER);
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
  // What a write hands a tap: the frame (Ethernet header in the headroom), or
  // virtio_net_hdr + frame.
  const frames = ring.buffers.map((b) => b.subarray(HEADROOM - ETHER_HEADER));
  const vnetFrames = ring.buffers.map((b) => b.subarray(HEADROOM - ETHER_HEADER - VNET_HDR_LEN));
  const anyVnet = vnets.some((x) => x);
  const scratchFrame = scratch.u8.subarray(FRAME_AT);
  const vmOf = new Int32Array(B);
  const hoas = init.vms.map((v) => parseIPv6(v.homeAddress));
  const vmMacs = init.vms.map((v) => parseMac(v.vmMac));
  const routerMacs = init.vms.map((v) => parseMac(v.routerMac));

  /** Index of the active VM whose HoA is at `b[off]`, or -1 (a linear scan: few VMs). */
  const vmFor = (b: Uint8Array, off: number): number => {
    for (let v = 0; v < V; v++) {
      if (ctl.active[v] !== 1) continue;
      const h = hoas[v];
      let i = 0;
      while (i < 16 && b[off + i] === h[i]) i++;
      if (i === 16) return v;
    }
    return -1;
  };

  /** Writes the Ethernet header of slot k's packet for VM v. */
  const frameFor = (k: number, v: number) => {
    const f = frames[k];
    f.set(vmMacs[v], 0);
    f.set(routerMacs[v], 6);
    f[12] = 0x86;
    f[13] = 0xdd;
  };
  /** Writes coalesced unit u (vnet header + Ethernet + packet) to its VM's tap. */
  const writeUnit = (u: number): boolean => {
    const k = gro.unitTag[u];
    const v = vmOf[k];
    frameFor(k, v);
    const wlen = gro.unitLength[u] + ETHER_HEADER + VNET_HDR_LEN;
    return lib.write_i32(taps[v], vnetFrames[k], BigInt(wlen)) >= 0;
  };

  return {
    fds: [sockFd],
    service() {
      ctl.refresh();
      const n = recvNow(sockFd, ring);
      if (n === 0) return;
      const ha = ctl.homeAgent;
      gro.reset();
      for (let k = 0; k < n; k++) {
        if (ring.truncated(k)) {
          c.add(TRUNCATED, 1);
          continue;
        }
        const buf = data[k];
        const len = ipv6PacketLength(buf, ring.length(k));
        if (len < 0) {
          c.add(MALFORMED, 1);
          continue;
        }
        // Only the home agent may send us tunnelled packets (RFC 6275 §11.3.1).
        const src = ring.addrs[k];
        let i = 0;
        while (i < 16 && src[i] === ha[i]) i++;
        if (i !== 16 || !ctl.haveHomeAgent) {
          c.add(SPOOFED, 1);
          continue;
        }
        const v = vmFor(buf, IP6_DST);
        if (v < 0) {
          c.add(UNKNOWN, 1);
          continue;
        }
        if (vnets[v]) {
          // The destination is part of the flow: a unit never mixes VMs.
          vmOf[k] = v;
          gro.add(buf.byteOffset, len, k);
          continue;
        }
        const pre = groMergedGso(mem, buf.byteOffset, len);
        let ok = true;
        if (pre > 0) {
          c.add(NIC_GRO, 1);
          const segs = split.prepare(mem, buf.byteOffset, len, GSO.TCPV6, pre);
          ok = segs > 0;
          scratchFrame.set(vmMacs[v], 0);
          scratchFrame.set(routerMacs[v], 6);
          scratchFrame[12] = 0x86;
          scratchFrame[13] = 0xdd;
          for (let s = 0; s < segs; s++) {
            const l = split.emit(s, scratch, READ_IP_AT) + ETHER_HEADER;
            if (lib.write_i32(taps[v], scratchFrame, BigInt(l)) < 0) ok = false;
          }
        } else {
          frameFor(k, v);
          ok = lib.write_i32(taps[v], frames[k], BigInt(len + ETHER_HEADER)) >= 0;
        }
        if (!ok) {
          c.add(RX_ERRORS, 1);
          continue;
        }
        c.add(RX_PACKETS, 1);
        c.add(RX_BYTES, len);
      }
      if (anyVnet) writeCoalesced(gro, c, groSlots, writeUnit);
      c.add(RX_BATCHES, 1);
      c.flush();
    },
  };
}

pumpWorker({ tx: txPump, rx: rxPump });
