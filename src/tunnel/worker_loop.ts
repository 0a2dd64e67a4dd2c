/**
 * Worker-side scaffolding shared by the data-path Workers: receive the init message once, run
 * the blocking loop, report `ready` / `stopped` to the main thread.
 *
 * @module
 */

import type { WorkerReport } from "./worker_host.ts";

declare const self: {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: WorkerReport): void;
};

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
