/**
 * Pure helpers of the benchmark: statistics over RTT samples, parsers for the output of
 * `ping`, `iperf3 -J` and `/proc/<pid>/{stat,status}`, and the arithmetic of CPU cost.
 * Nothing here touches the system, so `stats_test.ts` checks it with canned text.
 *
 * @module
 */

/** Summary of RTT samples, in milliseconds. */
export interface RttSummary {
  /** Replies counted. */
  count: number;
  min: number;
  avg: number;
  max: number;
  /** Median (nearest rank). */
  p50: number;
  /** 99th percentile (nearest rank). */
  p99: number;
  /**
   * Jitter as `ping` prints it ("mdev"): the population standard deviation of the RTTs,
   * sqrt(mean(x²) − mean(x)²).
   */
  mdev: number;
  /**
   * Jitter as RFC 3550 §6.4.1 / RFC 5481 "IPDV" thinks of it: the mean absolute difference
   * between consecutive RTTs (in arrival order).
   */
  ipdv: number;
}

/**
 * Nearest-rank percentile (`p` in 0…100) of `sorted` (ascending): the smallest value such
 * that at least p % of the samples are ≤ it. NaN for no samples.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  if (p <= 0) return sorted[0];
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, rank) - 1];
}

/** Summarizes RTT samples given in arrival order (ms). Throws on an empty list. */
export function summarizeRtts(samples: readonly number[]): RttSummary {
  if (samples.length === 0) throw new Error("no RTT samples (every ping was lost)");
  const sorted = [...samples].sort((a, b) => a - b);
  let sum = 0, sum2 = 0;
  for (const x of samples) {
    sum += x;
    sum2 += x * x;
  }
  const n = samples.length;
  const avg = sum / n;
  let diffs = 0;
  for (let i = 1; i < n; i++) diffs += Math.abs(samples[i] - samples[i - 1]);
  return {
    count: n,
    min: sorted[0],
    avg,
    max: sorted[n - 1],
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mdev: Math.sqrt(Math.max(0, sum2 / n - avg * avg)),
    ipdv: n > 1 ? diffs / (n - 1) : 0,
  };
}

/** What {@linkcode parsePing} extracts from iputils `ping` output. */
export interface PingOutput {
  /** RTT of each reply in the order printed (ms), duplicates excluded. */
  rtts: number[];
  /** "N packets transmitted". */
  transmitted: number;
  /** "M received". */
  received: number;
}

const PING_REPLY = /icmp_seq=(\d+)\b.*?\btime[=<]([\d.]+) ms(.*)$/;
const PING_TOTALS = /(\d+) packets transmitted, (\d+) (?:packets )?received/;

/** Parses iputils `ping` output (per-reply lines and the totals line). */
export function parsePing(text: string): PingOutput {
  const rtts: number[] = [];
  const seen = new Set<number>();
  let transmitted = NaN, received = NaN;
  for (const line of text.split("\n")) {
    const m = PING_REPLY.exec(line);
    if (m) {
      const seq = Number(m[1]);
      if (m[3].includes("DUP!") || seen.has(seq)) continue;
      seen.add(seq);
      rtts.push(Number(m[2]));
      continue;
    }
    const t = PING_TOTALS.exec(line);
    if (t) {
      transmitted = Number(t[1]);
      received = Number(t[2]);
    }
  }
  if (Number.isNaN(transmitted)) throw new Error("ping output has no totals line");
  return { rtts, transmitted, received };
}

/** One iperf3 TCP test, from the receiver's side. */
export interface IperfResult {
  /** Goodput seen by the receiver (bit/s). */
  bitsPerSecond: number;
  /** Payload bytes the receiver got. */
  bytes: number;
  /** Test duration (s). */
  seconds: number;
  /** TCP retransmissions on the sender (when iperf3 reports them). */
  retransmits: number | null;
  /** True for `-R` (server sends). */
  reverse: boolean;
}

/** Extracts the receiver-side totals from `iperf3 -J` output; throws on an iperf3 error. */
export function parseIperf3(json: string): IperfResult {
  // deno-lint-ignore no-explicit-any
  let doc: any;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new Error(`iperf3 did not print JSON: ${json.slice(0, 200)}`);
  }
  if (typeof doc?.error === "string") throw new Error(`iperf3: ${doc.error}`);
  const recv = doc?.end?.sum_received;
  const sent = doc?.end?.sum_sent;
  if (typeof recv?.bits_per_second !== "number" || typeof recv?.bytes !== "number") {
    throw new Error("iperf3 JSON lacks end.sum_received");
  }
  return {
    bitsPerSecond: recv.bits_per_second,
    bytes: recv.bytes,
    seconds: recv.seconds ?? (recv.end - recv.start),
    retransmits: typeof sent?.retransmits === "number" ? sent.retransmits : null,
    reverse: doc?.start?.test_start?.reverse === 1,
  };
}

/** CPU time fields of `/proc/<pid>/stat` (proc(5)), in clock ticks. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** Field 14: user-mode ticks of all threads. */
  utime: number;
  /** Field 15: kernel-mode ticks of all threads. */
  stime: number;
  /** Field 20. */
  numThreads: number;
}

/**
 * Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and parentheses,
 * so the fields after it are split from the *last* ')'.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) {
    throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  }
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); field k is rest[k - 3]
  const field = (k: number) => {
    const v = Number(rest[k - 3]);
    if (!Number.isFinite(v)) throw new Error(`/proc/<pid>/stat field ${k} missing`);
    return v;
  };
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0],
    ppid: field(4),
    utime: field(14),
    stime: field(15),
    numThreads: field(20),
  };
}

/** Memory fields of `/proc/<pid>/status`, in KiB. */
export interface ProcMemory {
  /** Resident set size now. */
  vmRssKb: number;
  /** Peak resident set size ("high water mark"). */
  vmHwmKb: number;
  /** Resident anonymous memory (heaps, stacks): the process's own (Linux ≥ 4.5, else NaN). */
  rssAnonKb: number;
  /** Resident file pages (mostly the executable's text, shared with other processes). */
  rssFileKb: number;
}

/** Parses VmRSS, VmHWM, RssAnon and RssFile out of `/proc/<pid>/status`. */
export function parseProcStatus(text: string): ProcMemory {
  const find = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const get = (key: string) => {
    const v = find(key);
    if (Number.isNaN(v)) {
      throw new Error(`/proc/<pid>/status has no ${key} (kernel thread or zombie?)`);
    }
    return v;
  };
  return {
    vmRssKb: get("VmRSS"),
    vmHwmKb: get("VmHWM"),
    rssAnonKb: find("RssAnon"),
    rssFileKb: find("RssFile"),
  };
}

/** Bytes in the "GB" of CPU s/GB (decimal, as iperf3's and the issue's units). */
export const GB = 1e9;

/** CPU seconds spent per gigabyte (10⁹ bytes) moved. */
export function cpuSecondsPerGB(cpuSeconds: number, bytes: number): number {
  return bytes > 0 ? cpuSeconds / (bytes / GB) : NaN;
}

/** CPU seconds from a tick count given CLK_TCK (`getconf CLK_TCK`, 100 on Linux). */
export function ticksToSeconds(ticks: number, clkTck: number): number {
  return ticks / clkTck;
}

/** `a / b`, NaN when either is not a positive finite number. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}
