/**
 * Worker-side scaffolding shared by the data-path Workers: receive the init message once, run
 * the blocking loop, report `ready` / `stopped` to the main thread.
 *
 * A Worker runs one or more {@linkcode Pump}s (a direction of the data path each: device →
 * tunnel, tunnel → device) in one poll(2) loop. One Worker for both directions is the default:
 * at the home agent, a packet that arrives through the tunnel socket is written to the tun, and
 * the correspondent's answer (produced in softirq context during that write()) is already queued
 * on the tun when the write returns, so the same thread sends it on without a second thread
 * having to wake on another CPU; and a daemon carries one V8 isolate less. Two Workers (one pump
 * each) let both directions use a core each.
 *
 * @module
 */

import { POLLERR, POLLHUP, POLLIN } from "../../ffi/constants.ts";
import { Poller } from "../../ffi/poll.ts";
import { CounterBatch, SharedCounters, type SharedCountersInit } from "./counters.ts";
import type { PumpInit, WorkerReport } from "./worker_host.ts";

declare const self: {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: WorkerReport): void;
};

/** One direction of a data path, driven by {@linkcode runPumps}. */
export interface Pump {
  /** The fds this pump reads (polled for POLLIN). */
  readonly fds: readonly number[];
  /**
   * Called after a poll that found one of `fds` readable (or in error); `revents(i)` is the
   * revents of `fds[i]`. Reads at most one batch per fd (poll is level-triggered: what is left
   * makes the next poll return at once, and the other pumps get their turn in between). Sends
   * block when a socket buffer is full (back-pressure): in a one-Worker layout that also holds
   * the other direction for that long.
   */
  service(revents: (i: number) => number): void;
}

const READY = POLLIN | POLLERR | POLLHUP;

/**
 * Polls every pump's fds and the stop eventfd, services the pumps with something to read,
 * until the stop flag is set or the eventfd becomes readable.
 */
export function runPumps(pumps: readonly Pump[], stopFd: number, stopFlag: SharedArrayBuffer) {
  const stop = new Int32Array(stopFlag);
  const fds = pumps.flatMap((p) => p.fds);
  const poller = new Poller([...fds, stopFd]);
  const STOP = fds.length;
  const bases = new Int32Array(pumps.length);
  for (let p = 1; p < pumps.length; p++) bases[p] = bases[p - 1] + pumps[p - 1].fds.length;
  const views = pumps.map((_, p) => (i: number) => poller.revents(bases[p] + i));
  while (Atomics.load(stop, 0) === 0) {
    poller.wait(-1);
    if (poller.revents(STOP) !== 0) break;
    for (let p = 0; p < pumps.length; p++) {
      const base = bases[p];
      const n = pumps[p].fds.length;
      let any = 0;
      for (let i = 0; i < n; i++) any |= poller.revents(base + i) & READY;
      if (any !== 0) pumps[p].service(views[p]);
    }
  }
}

/**
 * Installs the Worker's message handler: `setup(init)` builds everything and returns the
 * loop; the Worker then reports `ready` and runs the loop until it returns (stop signalled)
 * or throws; either way it reports `stopped` (with the error text).
 */
export function workerMain<T>(setup: (init: T) => { loop(): void; close(): void }): void {
  self.onmessage = (e: MessageEvent) => {
    self.onmessage = null;
    let worker: { loop(): void; close(): void } | undefined;
    let error: string | undefined;
    try {
      worker = setup(e.data as T);
      self.postMessage({ type: "ready" });
      worker.loop();
    } catch (err) {
      error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    } finally {
      try {
        worker?.close();
      } catch (err) {
        error ??= String(err);
      }
    }
    self.postMessage(error === undefined ? { type: "stopped" } : { type: "stopped", error });
  };
}

/**
 * The whole of a data-path Worker module: on its init message, builds the pumps its `roles`
 * name (`make.tx`, `make.rx`, sharing one counter batch: they run on this one thread) and runs
 * them until stopped.
 */
export function pumpWorker<I extends PumpInit & { counters: SharedCountersInit }>(
  make: Record<"tx" | "rx", (init: I, c: CounterBatch) => Pump>,
): void {
  workerMain((init: I) => {
    const c = new CounterBatch(SharedCounters.attach(init.counters));
    const pumps = init.roles.map((role) => make[role](init, c));
    return { loop: () => runPumps(pumps, init.stopFd, init.stopFlag), close() {} };
  });
}
