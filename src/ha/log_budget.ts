/**
 * Log lines of routine binding changes at signaling rates: the first few of each kind in a
 * window are logged one by one, the rest are counted and reported as one summary line when the
 * window ends (BIRD's `log_rl` idea, for state changes rather than errors). Every change stays
 * observable: one by one in the status counters, in bulk in the summary.
 *
 * @module
 */

/** Per-window budget of one-by-one lines, per kind of change. */
export class LogBudget {
  #start = Number.NEGATIVE_INFINITY;
  readonly #used = new Map<string, number>();
  readonly #held = new Map<string, number>();

  /** `perWindow` lines of each kind per `windowMs`. */
  constructor(readonly perWindow = 20, readonly windowMs = 10_000) {}

  /**
   * True when a line of `kind` may be logged at `now` (ms); false when it was counted for the
   * summary instead. A new window starts when the last one is over (call `flush` first to
   * report what the last one held).
   */
  take(kind: string, now: number): boolean {
    if (now - this.#start >= this.windowMs) {
      this.#start = now;
      this.#used.clear();
    }
    const n = this.#used.get(kind) ?? 0;
    if (n < this.perWindow) {
      this.#used.set(kind, n + 1);
      return true;
    }
    this.#held.set(kind, (this.#held.get(kind) ?? 0) + 1);
    return false;
  }

  /** Whether lines are held for a summary. */
  get holding(): boolean {
    return this.#held.size > 0;
  }

  /** When the current window ends (ms), the time to call `flush`. */
  get windowEnd(): number {
    return this.#start + this.windowMs;
  }

  /** The counts held back since the last flush, by kind (empty when none), and resets them. */
  flush(): Record<string, number> {
    const out = Object.fromEntries(this.#held);
    this.#held.clear();
    return out;
  }
}
