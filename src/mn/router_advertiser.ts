/**
 * When the pseudo router sends unsolicited multicast Router Advertisements to a VM that is
 * away from home (RFC 4861 §6.2.4), as a sans-I/O schedule: the daemon asks `due(now)`, sends
 * the RA, and reports it with `sent(now)`; `nextDeadline()` feeds its single timer.
 *
 * Without periodic RAs a guest's default route (Router Lifetime 3 × MaxRtrAdvInterval) would
 * expire that long after the last handover. Rules:
 * - advertising starts when the VM becomes active on this host (`start`) and stops while it is
 *   home or released (`stop`);
 * - after every multicast RA (periodic, or the one sent at handover/registration) the next one
 *   is due after a uniformly random interval in [MinRtrAdvInterval, MaxRtrAdvInterval]
 *   (§6.2.4: the timer is reset on every multicast RA);
 * - the first MAX_INITIAL_RTR_ADVERTISEMENTS (3) RAs after `start` wait at most
 *   MAX_INITIAL_RTR_ADVERT_INTERVAL (16 s), so a guest that missed the first one while resuming
 *   soon gets another (§6.2.4, §10).
 *
 * @module
 */

/** RFC 4861 §10 router constants. */
export const RA_CONSTANTS = {
  /** MAX_INITIAL_RTR_ADVERT_INTERVAL: 16 s. */
  maxInitialIntervalMs: 16_000,
  /** MAX_INITIAL_RTR_ADVERTISEMENTS: 3. */
  maxInitialAdvertisements: 3,
} as const;

/** Options of {@linkcode RouterAdvertiser}. */
export interface RouterAdvertiserOptions {
  /** MinRtrAdvInterval, ms (> 0). */
  minIntervalMs: number;
  /** MaxRtrAdvInterval, ms (>= minIntervalMs). */
  maxIntervalMs: number;
  /** Uniform random number in [0, 1) (default `Math.random`; a test passes its own). */
  random?: () => number;
}

/** The periodic unsolicited RA schedule of one VM (RFC 4861 §6.2.4). */
export class RouterAdvertiser {
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly #random: () => number;
  #next: number | null = null;
  #initialLeft = 0;
  /** Unsolicited RAs reported through `sent` since construction. */
  sentCount = 0;

  constructor(opts: RouterAdvertiserOptions) {
    if (!(opts.minIntervalMs > 0) || !(opts.maxIntervalMs >= opts.minIntervalMs)) {
      throw new RangeError(
        `RA intervals must satisfy 0 < min <= max: ${opts.minIntervalMs}, ${opts.maxIntervalMs}`,
      );
    }
    this.minIntervalMs = opts.minIntervalMs;
    this.maxIntervalMs = opts.maxIntervalMs;
    this.#random = opts.random ?? Math.random;
  }

  /** True between `start` and `stop`. */
  get running(): boolean {
    return this.#next !== null;
  }

  /**
   * The VM became active here: advertise. Idempotent while running. The first RA is due within
   * MAX_INITIAL_RTR_ADVERT_INTERVAL unless the caller sends one at once and reports it.
   */
  start(now: number): void {
    if (this.#next !== null) return;
    this.#initialLeft = RA_CONSTANTS.maxInitialAdvertisements;
    this.#next = now + this.#interval();
  }

  /** The VM is home or left this host: no more RAs. */
  stop(): void {
    this.#next = null;
    this.#initialLeft = 0;
  }

  /** True when an RA is due at `now` (send it, then call `sent`). */
  due(now: number): boolean {
    return this.#next !== null && now >= this.#next;
  }

  /** A multicast RA was just written to the VM: the next one is due after a new interval. */
  sent(now: number): void {
    this.sentCount++;
    if (this.#next === null) return;
    if (this.#initialLeft > 0) this.#initialLeft--;
    this.#next = now + this.#interval();
  }

  /** When the next RA is due, or null when not advertising. */
  nextDeadline(): number | null {
    return this.#next;
  }

  #interval(): number {
    const r = this.#random();
    let ms = this.minIntervalMs + r * (this.maxIntervalMs - this.minIntervalMs);
    if (this.#initialLeft > 0) ms = Math.min(ms, RA_CONSTANTS.maxInitialIntervalMs);
    return ms;
  }
}
