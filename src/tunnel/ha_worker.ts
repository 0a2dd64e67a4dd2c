/**
 * Home agent data-path Worker (one per direction, RFC 6275 §10.4.1 and §10.4.5, RFC 2473 §3–4).
 *
 * - `tx`: tun → tunnel. Packets the kernel routed into the tun (destination a Home Address)
 *   are sent to the binding's Care-of Address through the raw IPPROTO_IPV6 socket bound to the
 *   home agent address; the kernel prepends the outer header.
 * - `rx`: tunnel → tun. Inner packets received on that socket are written to the tun only when
 *   the inner source is a registered HoA and the outer source is that binding's CoA.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { POLLERR } from "../../ffi/constants.ts";
import { Poller } from "../../ffi/poll.ts";
import { RecvRing, SendRing } from "../../ffi/raw_socket.ts";
import { CounterBatch, SharedCounters, type SharedCountersInit } from "./counters.ts";
import {
  HEADROOM,
  ipv6PacketLength,
  recvNow,
  sendAll,
  type SendFailures,
  setNonblocking,
} from "./io.ts";
import { TableReader } from "./table.ts";
import { workerMain } from "./worker_loop.ts";

/** The init message of a home agent Worker. */
export interface HaWorkerInit {
  role: "tx" | "rx";
  tunFd: number;
  sockFd: number;
  stopFd: number;
  stopFlag: SharedArrayBuffer;
  table: SharedArrayBuffer;
  counters: SharedCountersInit;
  batch: number;
  capacity: number;
}

const IP6_SRC = 8;
const IP6_DST = 24;

function setup(init: HaWorkerInit): { loop(): void; close(): void } {
  const lib = libc();
  const table = new TableReader(init.table);
  const c = new CounterBatch(SharedCounters.attach(init.counters));
  const stop = new Int32Array(init.stopFlag);
  const B = init.batch;
  const cap = init.capacity;
  const capBig = BigInt(cap);
  const { tunFd, sockFd } = init;
  const MALFORMED = c.slot("tunnel_malformed");
  const dataFd = init.role === "tx" ? tunFd : sockFd;
  const poller = new Poller([dataFd, init.stopFd]);

  /** Blocks until data or stop; returns false on stop. */
  const waitData = (): boolean => {
    poller.wait(-1);
    if (poller.revents(1) !== 0) return false;
    // A tun whose device is gone polls POLLERR for ever. (A socket's pending error is
    // consumed by the next recvmmsg instead.)
    if (init.role === "tx" && (poller.revents(0) & POLLERR)) {
      throw new Error(`tun fd ${tunFd}: POLLERR (device gone?)`);
    }
    return true;
  };

  if (init.role === "tx") {
    setNonblocking(tunFd);
    const ring = new SendRing(B, cap, { headroom: HEADROOM });
    const data = ring.buffers.map((b) => b.subarray(HEADROOM));
    const lengths = new Int32Array(B);
    for (let i = 0; i < B; i++) ring.setDst(i, new Uint8Array(16)); // family, namelen
    const TX_PACKETS = c.slot("tunnel_tx_packets");
    const TX_BYTES = c.slot("tunnel_tx_bytes");
    const NO_BINDING = c.slot("tunnel_tx_no_binding");
    const TX_ERRORS = c.slot("tunnel_tx_errors");
    const TX_BATCHES = c.slot("tunnel_tx_batches");
    const fail: SendFailures = { packets: 0, bytes: 0, errno: 0 };
    return {
      loop() {
        let more = false; // the last batch was full: read again before polling
        while (Atomics.load(stop, 0) === 0) {
          if (!more && !waitData()) break;
          table.refresh();
          let n = 0;
          let reads = 0;
          let bytes = 0;
          while (reads < B) {
            const buf = data[n];
            const r = Number(lib.read(tunFd, buf, capBig));
            if (r < 0) break; // EAGAIN: drained (a real error shows up in poll's revents)
            reads++;
            const len = ipv6PacketLength(buf, r);
            if (len < 0) {
              c.add(MALFORMED, 1);
              continue;
            }
            const slot = table.lookup(buf, IP6_DST);
            if (slot < 0) {
              c.add(NO_BINDING, 1);
              continue;
            }
            table.copyOuter(slot, ring.addrs[n], 0);
            ring.setLength(n, len);
            lengths[n] = len;
            bytes += len;
            n++;
          }
          more = reads === B;
          if (n > 0) {
            sendAll(sockFd, ring, n, lengths, fail);
            c.add(TX_PACKETS, n - fail.packets);
            c.add(TX_BYTES, bytes - fail.bytes);
            if (fail.packets > 0) c.add(TX_ERRORS, fail.packets);
            c.add(TX_BATCHES, 1);
          }
          c.flush();
        }
        c.flush();
      },
      close() {},
    };
  }

  const ring = new RecvRing(B, cap, { headroom: HEADROOM });
  const data = ring.buffers.map((b) => b.subarray(HEADROOM));
  const RX_PACKETS = c.slot("tunnel_rx_packets");
  const RX_BYTES = c.slot("tunnel_rx_bytes");
  const UNKNOWN = c.slot("tunnel_unknown");
  const SPOOFED = c.slot("tunnel_spoofed");
  const TRUNCATED = c.slot("tunnel_truncated");
  const RX_ERRORS = c.slot("tunnel_rx_errors");
  const RX_BATCHES = c.slot("tunnel_rx_batches");
  return {
    loop() {
      let more = false;
      while (Atomics.load(stop, 0) === 0) {
        if (!more && !waitData()) break;
        table.refresh();
        const n = recvNow(sockFd, ring);
        if (n === 0) {
          more = false;
          continue;
        }
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
          if (!table.outerIs(slot, ring.addrs[k], 0)) {
            c.add(SPOOFED, 1);
            continue;
          }
          if (Number(lib.write(tunFd, buf, BigInt(len))) < 0) {
            c.add(RX_ERRORS, 1);
            continue;
          }
          c.add(RX_PACKETS, 1);
          c.add(RX_BYTES, len);
        }
        c.add(RX_BATCHES, 1);
        c.flush();
        more = n === B;
      }
      c.flush();
    },
    close() {},
  };
}

workerMain(setup);
