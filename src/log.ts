/**
 * Logging for the daemons: @logtape/logtape to stderr, one line per record,
 * and a rate limiter for log lines caused by remote input (BIRD's `log_rl`).
 *
 * @module
 */
import { configure, getLogger, type Logger, type LogRecord, reset } from "@logtape/logtape";

/** Levels accepted by `--log-level`. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/**
 * Configures logging once per process: records of `level` and above from the
 * "kagemusha" category go to stderr as `LEVEL category: message {props}`.
 */
export async function setupLogging(level: LogLevel): Promise<void> {
  await reset();
  await configure({
    sinks: { stderr: (r: LogRecord) => console.error(formatRecord(r)) },
    loggers: [
      { category: ["kagemusha"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** `LEVEL category: message {properties}` — one line, for journald and tests. */
export function formatRecord(r: LogRecord): string {
  const msg = r.message.map((m) => typeof m === "string" ? m : JSON.stringify(m)).join("");
  const props = Object.keys(r.properties).length ? " " + JSON.stringify(r.properties) : "";
  return `${r.level.toUpperCase()} ${r.category.slice(1).join(".")}: ${msg}${props}`;
}

/** A logger under ["kagemusha", ...category]. */
export function logger(...category: string[]): Logger {
  return getLogger(["kagemusha", ...category]);
}

/**
 * Allows at most `perInterval` events per key in each `intervalMs` window and
 * counts what it suppressed, so a flood of malformed packets costs a few log
 * lines plus one summary ("… 1234 more suppressed").
 */
export class RateLimiter {
  #windows = new Map<string, { start: number; count: number; suppressed: number }>();
  constructor(readonly perInterval = 5, readonly intervalMs = 10_000) {}

  /** True when a line for `key` may be logged at time `now` (ms). */
  allow(key: string, now: number): boolean {
    let w = this.#windows.get(key);
    if (!w || now - w.start >= this.intervalMs) {
      const carried = w?.suppressed ?? 0;
      w = { start: now, count: 0, suppressed: 0 };
      this.#windows.set(key, w);
      this.#lastSuppressed.set(key, carried);
      if (this.#windows.size > 4096) this.#evict(now);
    }
    if (w.count < this.perInterval) {
      w.count++;
      return true;
    }
    w.suppressed++;
    return false;
  }

  /**
   * How many lines for `key` the previous window suppressed (reported once,
   * with the first line allowed in the new window).
   */
  suppressed(key: string): number {
    const n = this.#lastSuppressed.get(key) ?? 0;
    this.#lastSuppressed.delete(key);
    return n;
  }

  #lastSuppressed = new Map<string, number>();

  #evict(now: number) {
    for (const [k, w] of this.#windows) {
      if (now - w.start >= this.intervalMs) this.#windows.delete(k);
    }
  }
}
