/**
 * Mobile node data-path Worker (one per direction; RFC 6275 §11.3.1 reverse tunnelling,
 * RFC 2473 encapsulation, Kagemusha's pseudo home network).
 *
 * - `tx`: VM taps → tunnel. Every frame a guest sends is classified by `handleVmFrame`
 *   (`src/mn/pseudo_home.ts`): ND/RS/echo answers and Packet Too Big go back to that tap;
 *   packets from the HoA of an active VM go to the home agent through the raw IPPROTO_IPV6
 *   socket, outer source the CoA (IPV6_PKTINFO); the rest is dropped and counted.
 * - `rx`: tunnel → VM taps. Inner packets whose outer source is the home agent and whose
 *   destination is an active VM's HoA are framed (destination the VM MAC, source the router
 *   MAC, EtherType 0x86dd) in the buffer's headroom and written to that VM's tap.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { POLLERR, POLLIN } from "../../ffi/constants.ts";
import { Poller } from "../../ffi/poll.ts";
import { RecvRing, SendRing } from "../../ffi/raw_socket.ts";
import {
  FRAME_ACTION,
  handleVmFrame,
  makePseudoHomeContext,
  newFrameVerdict,
  type PseudoHomeVm,
} from "../mn/pseudo_home.ts";
import { parseIPv6, parseMac } from "../wire/addr.ts";
import { CounterBatch, SharedCounters, type SharedCountersInit } from "./counters.ts";
import {
  ETHER_HEADER,
  HEADROOM,
  ipv6PacketLength,
  recvNow,
  sendAll,
  type SendFailures,
  setNonblocking,
} from "./io.ts";
import { MnControlReader } from "./mn_control.ts";
import { workerMain } from "./worker_loop.ts";

/** One VM as the Workers see it. */
export interface MnWorkerVm extends PseudoHomeVm {
  tapFd: number;
}

/** The init message of a mobile node Worker. */
export interface MnWorkerInit {
  role: "tx" | "rx";
  vms: MnWorkerVm[];
  sockFd: number;
  stopFd: number;
  stopFlag: SharedArrayBuffer;
  control: SharedArrayBuffer;
  counters: SharedCountersInit;
  linkMtu: number;
  batch: number;
  capacity: number;
}

const IP6_DST = 24;
const FRAME_AT = HEADROOM - ETHER_HEADER; // frames start here so that IPv6 lands at HEADROOM

function setup(init: MnWorkerInit): { loop(): void; close(): void } {
  const lib = libc();
  const ctl = new MnControlReader(init.control);
  const c = new CounterBatch(SharedCounters.attach(init.counters));
  const stop = new Int32Array(init.stopFlag);
  const B = init.batch;
  const cap = init.capacity;
  const V = init.vms.length;
  const taps = init.vms.map((v) => v.tapFd);
  const { sockFd } = init;
  const MALFORMED = c.slot("tunnel_malformed");

  if (init.role === "tx") {
    // RFC 2473 §7 / pseudo_home.ts: inner packets above linkMtu − 40 get a Packet Too Big.
    const ctxs = init.vms.map((v) => makePseudoHomeContext(v, init.linkMtu - 40));
    for (const fd of taps) setNonblocking(fd);
    const poller = new Poller([...taps, init.stopFd]);
    const ring = new SendRing(B, cap + ETHER_HEADER, { headroom: FRAME_AT, pktinfo: true });
    const frames = ring.buffers.map((b) => b.subarray(FRAME_AT));
    const frameCap = BigInt(frames[0].length);
    const lengths = new Int32Array(B);
    const out = new Uint8Array(new ArrayBuffer(cap + ETHER_HEADER));
    const verdict = newFrameVerdict();
    const fail: SendFailures = { packets: 0, bytes: 0, errno: 0 };
    const TX_PACKETS = c.slot("tunnel_tx_packets");
    const TX_BYTES = c.slot("tunnel_tx_bytes");
    const NO_BINDING = c.slot("tunnel_tx_no_binding");
    const TX_ERRORS = c.slot("tunnel_tx_errors");
    const TX_BATCHES = c.slot("tunnel_tx_batches");
    const VM_FRAMES = c.slot("vm_frames");
    const VM_REPLIES = c.slot("vm_replies");
    const VM_TOO_BIG = c.slot("vm_too_big");
    const VM_DROPPED = c.slot("vm_dropped");
    const RX_ERRORS = c.slot("tunnel_rx_errors");
    let n = 0;
    let bytes = 0;

    const flush = () => {
      if (n === 0) return;
      sendAll(sockFd, ring, n, lengths, fail);
      c.add(TX_PACKETS, n - fail.packets);
      c.add(TX_BYTES, bytes - fail.bytes);
      if (fail.packets > 0) c.add(TX_ERRORS, fail.packets);
      c.add(TX_BATCHES, 1);
      n = 0;
      bytes = 0;
    };
    /** Destination (the HA) and IPV6_PKTINFO source (the CoA, RFC 3542 §6.1) of every slot. */
    const program = () => {
      for (let i = 0; i < B; i++) {
        ring.setDst(i, ctl.homeAgent);
        ring.setSrc(i, ctl.careOf);
      }
    };
    program();

    return {
      loop() {
        let more = false; // some tap filled a whole batch: read again before polling
        while (Atomics.load(stop, 0) === 0) {
          if (!more) {
            poller.wait(-1);
            if (poller.revents(V) !== 0) break;
          }
          if (ctl.refresh()) program();
          const tunnelOk = ctl.haveCareOf && ctl.haveHomeAgent;
          const wasMore = more;
          more = false;
          for (let v = 0; v < V; v++) {
            const rv = poller.revents(v);
            if (rv & POLLERR) throw new Error(`tap fd ${taps[v]}: POLLERR (device gone?)`);
            if (!wasMore && (rv & POLLIN) === 0) continue;
            const fd = taps[v];
            const ctx = ctxs[v];
            const active = ctl.active[v] === 1 && tunnelOk;
            let reads = 0;
            while (reads < B) {
              const frame = frames[n];
              const r = Number(lib.read(fd, frame, frameCap));
              if (r < 0) break; // EAGAIN
              reads++;
              c.add(VM_FRAMES, 1);
              handleVmFrame(frame, r, ctx, out, verdict);
              switch (verdict.action) {
                case FRAME_ACTION.TUNNEL:
                  if (!active) {
                    c.add(NO_BINDING, 1);
                    break;
                  }
                  ring.setData(n, FRAME_AT + verdict.offset, verdict.length);
                  lengths[n] = verdict.length;
                  bytes += verdict.length;
                  if (++n === B) flush();
                  break;
                case FRAME_ACTION.REPLY:
                case FRAME_ACTION.TOO_BIG:
                  if (Number(lib.write(fd, out, BigInt(verdict.length))) < 0) {
                    c.add(RX_ERRORS, 1);
                  } else {
                    c.add(verdict.action === FRAME_ACTION.REPLY ? VM_REPLIES : VM_TOO_BIG, 1);
                  }
                  break;
                default:
                  c.add(VM_DROPPED, 1);
              }
            }
            if (reads === B) more = true;
          }
          flush();
          c.flush();
        }
        c.flush();
      },
      close() {},
    };
  }

  const poller = new Poller([sockFd, init.stopFd]);
  const ring = new RecvRing(B, cap, { headroom: HEADROOM });
  const data = ring.buffers.map((b) => b.subarray(HEADROOM));
  const frames = ring.buffers.map((b) => b.subarray(FRAME_AT));
  const hoas = init.vms.map((v) => parseIPv6(v.homeAddress));
  const vmMacs = init.vms.map((v) => parseMac(v.vmMac));
  const routerMacs = init.vms.map((v) => parseMac(v.routerMac));
  const RX_PACKETS = c.slot("tunnel_rx_packets");
  const RX_BYTES = c.slot("tunnel_rx_bytes");
  const UNKNOWN = c.slot("tunnel_unknown");
  const SPOOFED = c.slot("tunnel_spoofed");
  const TRUNCATED = c.slot("tunnel_truncated");
  const RX_ERRORS = c.slot("tunnel_rx_errors");
  const RX_BATCHES = c.slot("tunnel_rx_batches");

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

  return {
    loop() {
      let more = false;
      while (Atomics.load(stop, 0) === 0) {
        if (!more) {
          poller.wait(-1);
          if (poller.revents(1) !== 0) break;
        }
        ctl.refresh();
        const n = recvNow(sockFd, ring);
        more = n === B;
        if (n === 0) continue;
        const ha = ctl.homeAgent;
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
          const f = frames[k];
          f.set(vmMacs[v], 0);
          f.set(routerMacs[v], 6);
          f[12] = 0x86;
          f[13] = 0xdd;
          if (Number(lib.write(taps[v], f, BigInt(len + ETHER_HEADER))) < 0) {
            c.add(RX_ERRORS, 1);
            continue;
          }
          c.add(RX_PACKETS, 1);
          c.add(RX_BYTES, len);
        }
        c.add(RX_BATCHES, 1);
        c.flush();
      }
      c.flush();
    },
    close() {},
  };
}

workerMain(setup);
