/**
 * Process lifetime helpers: an undo stack for everything a daemon creates
 * (taps, bridges, routes, sockets), and the shutdown signals.
 *
 * @module
 */
import { logger } from "../log.ts";

const log = logger("lifecycle");

/**
 * Undo steps, run last-in first-out. Every step is attempted even when an
 * earlier one fails; failures are logged with the step's label.
 */
export class Cleanup {
  #steps: { label: string; fn: () => void | Promise<void> }[] = [];

  /** Registers an undo step for something just created. */
  defer(label: string, fn: () => void | Promise<void>): void {
    this.#steps.push({ label, fn });
  }

  /** Number of pending steps. */
  get size(): number {
    return this.#steps.length;
  }

  /** Runs and forgets every step (LIFO). Returns the labels that failed. */
  async runAll(): Promise<string[]> {
    const failed: string[] = [];
    while (this.#steps.length) {
      const { label, fn } = this.#steps.pop()!;
      try {
        await fn();
      } catch (e) {
        failed.push(label);
        log.error("cleanup step {label} failed: {error}", { label, error: String(e) });
      }
    }
    return failed;
  }
}

/** Resolves with the first SIGTERM or SIGINT received; listeners are removed afterwards. */
export function waitForShutdown(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
    const handlers = signals.map((sig) => {
      const h = () => {
        signals.forEach((s, i) => Deno.removeSignalListener(s, handlers[i]));
        resolve(sig);
      };
      Deno.addSignalListener(sig, h);
      return h;
    });
  });
}
