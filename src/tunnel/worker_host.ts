/**
 * Main-thread side of the data-path Workers: start one with its init message, wait until it is
 * ready (or failed to set up), and join it after the stop signal.
 *
 * Protocol: main → Worker one `init` message; Worker → main `{ type: "ready" }` once its loop
 * is about to start, or `{ type: "stopped", error }` when setup fails or the loop ends.
 *
 * @module
 */

import type { SharedCounters } from "./counters.ts";
import { StopSignal } from "./io.ts";

/** Messages a data-path Worker posts. */
export type WorkerReport =
  | { type: "ready" }
  | { type: "stopped"; error?: string };

/** A running data-path Worker. */
export class WorkerHandle {
  /** Resolves when the Worker reported `stopped` (or died): the error text, or null. */
  readonly stopped: Promise<string | null>;
  readonly #worker: Worker;
  #terminated = false;

  private constructor(worker: Worker, stopped: Promise<string | null>) {
    this.#worker = worker;
    this.stopped = stopped;
  }

  /**
   * Starts the Worker module `url` named `name` and posts it `init`; resolves once it reports
   * ready, rejects with its error when setup fails.
   */
  static start(url: URL, name: string, init: unknown): Promise<WorkerHandle> {
    const worker = new Worker(url.href, { type: "module", name });
    let onReady!: () => void;
    const ready = new Promise<void>((r) => onReady = r);
    const stopped = new Promise<string | null>((resolve) => {
      worker.onmessage = (e: MessageEvent<WorkerReport>) => {
        if (e.data.type === "ready") onReady();
        else if (e.data.type === "stopped") resolve(e.data.error ?? null);
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        resolve(`${name}: ${e.message}`);
      };
    });
    worker.postMessage(init);
    const handle = new WorkerHandle(worker, stopped);
    return Promise.race([
      ready.then(() => handle),
      stopped.then((err) => {
        handle.terminate();
        throw new Error(`${name} failed to start: ${err ?? "stopped"}`);
      }),
    ]);
  }

  /** Waits up to `ms` for the Worker's `stopped`, then terminates it. Returns its error. */
  async join(ms = 5000): Promise<string | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<string>((r) => {
      timer = setTimeout(() => r("did not stop in time"), ms);
    });
    try {
      return await Promise.race([this.stopped, timeout]);
    } finally {
      clearTimeout(timer);
      this.terminate();
    }
  }

  /** Terminates the Worker; idempotent. */
  terminate(): void {
    if (!this.#terminated) {
      this.#terminated = true;
      this.#worker.terminate();
    }
  }
}

/** A set of Workers started and stopped together. */
export interface WorkerGroup {
  /** Signals the stop, joins every Worker, then runs `release`. Idempotent. */
  stop(): Promise<void>;
  /** Resolves once every Worker ended: null after `stop()`, else the first Worker's error. */
  readonly done: Promise<string | null>;
}

/**
 * Starts one Worker of module `url` per entry of `inits` (named `<name>-<key>`), in order.
 * `signal` must wake every Worker (set their stop flag, make their eventfd readable);
 * `release` closes what the group's owner opened for them, after all have stopped. When a
 * Worker ends on its own (an error), the others are stopped too. If one fails to start, the
 * ones already started are stopped, `release` runs, and the error is thrown.
 */
export async function startWorkerGroup(
  url: URL,
  name: string,
  inits: Record<string, unknown>,
  signal: () => void,
  release: () => void,
): Promise<WorkerGroup> {
  const workers: WorkerHandle[] = [];
  let stopping: Promise<string | null> | undefined;
  const shutdown = (): Promise<string | null> =>
    stopping ??= (async () => {
      signal();
      const errors = await Promise.all(workers.map((w) => w.join()));
      release();
      return errors.find((e) => e !== null) ?? null;
    })();
  try {
    for (const [key, init] of Object.entries(inits)) {
      workers.push(await WorkerHandle.start(url, `${name}-${key}`, init));
    }
  } catch (e) {
    await shutdown();
    throw e;
  }
  let asked = false;
  const done = Promise.race(workers.map((w) => w.stopped)).then(async (first) => {
    const unasked = !asked;
    await shutdown();
    return unasked ? first : null;
  });
  return {
    async stop() {
      asked = true;
      await shutdown();
    },
    done,
  };
}

/**
 * How many Workers carry a data path's two directions: 1 (the default) runs both pumps in one
 * Worker (lower latency, one V8 isolate less); 2 gives each direction a Worker (a core each).
 */
export type DatapathWorkers = 1 | 2;

/** The Workers of a data path by name, with the directions each one moves. */
export function pumpLayout(workers: DatapathWorkers = 1): Record<string, ("tx" | "rx")[]> {
  return workers === 2 ? { rx: ["rx"], tx: ["tx"] } : { io: ["tx", "rx"] };
}

/** What every data-path Worker's init carries besides its own fields. */
export interface PumpInit {
  /** The directions this Worker moves: `tx` device → tunnel, `rx` tunnel → device. */
  roles: readonly ("tx" | "rx")[];
  stopFd: number;
  stopFlag: SharedArrayBuffer;
}

/** A running data path. */
export interface Datapath {
  /** Wakes the Workers (eventfd), joins them, closes what the data path opened. Idempotent. */
  stop(): Promise<void>;
  /** The counters' current values. */
  counters(): Record<string, number>;
  /**
   * Resolves when every Worker has ended: null after `stop()`, or the first error of a Worker
   * that died on its own (e.g. the tun fd went away). Never rejects.
   */
  readonly done: Promise<string | null>;
}

/**
 * Starts the Workers of a data path from module `url`: each gets `init`, its roles
 * (`pumpLayout(workers)`) and the stop signal. The tunnel `socket` is closed with the stop
 * signal once every Worker has stopped (or at once, when one fails to start).
 */
export async function startDatapath<I extends PumpInit>(
  url: URL,
  name: string,
  init: Omit<I, keyof PumpInit>,
  opts: { socket: { close(): void }; counters: SharedCounters; workers?: DatapathWorkers },
): Promise<Datapath> {
  let stopper: StopSignal;
  try {
    stopper = new StopSignal();
  } catch (e) {
    opts.socket.close();
    throw e;
  }
  const inits: Record<string, Omit<I, keyof PumpInit> & PumpInit> = {};
  for (const [key, roles] of Object.entries(pumpLayout(opts.workers))) {
    inits[key] = { ...init, roles, stopFd: stopper.fd, stopFlag: stopper.flag };
  }
  const group = await startWorkerGroup(url, name, inits, () => stopper.signal(), () => {
    stopper.close();
    opts.socket.close();
  });
  return { stop: () => group.stop(), counters: () => opts.counters.snapshot(), done: group.done };
}
