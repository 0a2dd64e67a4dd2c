/**
 * The benchmark's result document (also its JSON output), the issue's targets evaluated on it,
 * and the markdown tables printed at the end of a run. Pure: tested in `stats_test.ts`.
 *
 * @module
 */
import type { RttSummary } from "./stats.ts";
import type { LoadPhase } from "./signaling.ts";

/** One iperf3 direction with the daemons' CPU during it. */
export interface DirectionResult {
  /** Receiver goodput, Mbit/s (10⁶). */
  mbps: number;
  /** Bytes the receiver got. */
  bytes: number;
  /** iperf3 test duration (s). */
  seconds: number;
  /** Wall time of the iperf3 client run, the denominator of `cpuPercent` (s). */
  wallSeconds?: number;
  /** Throughput of each round (Mbit/s), when combined from several. */
  rounds?: number[];
  /** TCP retransmissions (sender), when reported. */
  retransmits: number | null;
  /** CPU seconds of the path's daemons (all of them, all threads) over the test. */
  cpuSeconds?: number;
  /** `cpuSeconds` ÷ wall time × 100: percent of one core. */
  cpuPercent?: number;
  /** `cpuSeconds` per 10⁹ bytes moved. */
  cpuPerGB?: number;
}

/** Memory and CPU totals of one daemon process. */
export interface ProcessResult {
  name: string;
  pid: number;
  /** CPU seconds over the whole path measurement (both iperf3 directions + pings). */
  cpuSeconds: number;
  /** RSS at the end (KiB). */
  vmRssKb: number;
  /** Peak RSS over the process's life (KiB). */
  vmHwmKb: number;
  /** Of the RSS at the end: anonymous (private) and file-backed (the shared executable). */
  rssAnonKb?: number;
  rssFileKb?: number;
}

/** One path: direct, OpenVPN or Kagemusha. */
export interface PathResult {
  /** Row label. */
  label: string;
  /** Traffic towards the correspondent (client sends). */
  up?: DirectionResult;
  /** Traffic from the correspondent (`iperf3 -R`). */
  down?: DirectionResult;
  /** RTT of pings to the correspondent, plus the loss ratio. */
  rtt?: RttSummary & { sent: number; lost: number };
  /**
   * The same pings again after the iperf3 rounds: the daemons' code has run a while (a JIT
   * compiles it on first use; `rtt` is measured right after the daemons start).
   */
  rttAfter?: RttSummary & { sent: number; lost: number };
  /** The daemons carrying the path (none for the kernel's direct path). */
  processes?: ProcessResult[];
  /** Both directions together: CPU % of one core and CPU s/GB. */
  cpu?: { seconds: number; percent: number; perGB: number };
  /** Data-path counters of the daemons after the rounds, by daemon (Kagemusha). */
  counters?: Record<string, Record<string, number>>;
  /** Why the path could not be measured. */
  error?: string;
}

/** `kagemusha mn` memory with 1 and 100 VMs. */
export interface MemoryResult {
  oneVm?: {
    idleVmRssKb: number;
    /** Anonymous / file-backed parts of the idle RSS. */
    idleRssAnonKb?: number;
    idleRssFileKb?: number;
    vmRssKb: number;
    vmHwmKb: number;
    note: string;
  };
  hundredVms?: {
    vms: number;
    registered: number;
    vmRssKb: number;
    vmHwmKb: number;
    rssAnonKb?: number;
    rssFileKb?: number;
    /** Seconds from start until every binding showed registered. */
    registerSeconds: number;
  };
  error?: string;
}

/** Home-agent signaling. */
export interface SignalingResult {
  hoas: number;
  window: number;
  phases: (LoadPhase & { haCpuSeconds?: number; haCpuUsPerBu?: number })[];
  /** Home agent RSS after the phases (KiB). */
  haVmRssKb?: number;
  haVmHwmKb?: number;
  error?: string;
}

/** A target of issue 4 checked against this run. */
export interface TargetResult {
  target: string;
  goal: string;
  measured: string;
  /** null when it could not be evaluated (a section failed). */
  met: boolean | null;
  /** How far above (met) or below (missed) the goal, in words. */
  margin: string;
}

/** The whole run. */
export interface BenchResult {
  date: string;
  machine: {
    cpus: number;
    kernel: string;
    deno: string;
    clkTck: number;
    /** 1, 5, 15 min load averages at the start (other work on the machine skews results). */
    loadavg: number[];
    loadavgAfter?: number[];
  };
  settings: {
    iperfSeconds: number;
    rounds: number;
    pings: number;
    pingIntervalMs: number;
    /** The daemons' --datapath-workers (absent in results older than the option). */
    datapathWorkers?: number;
  };
  paths: { direct: PathResult; openvpn: PathResult; kagemusha: PathResult };
  memory: MemoryResult;
  signaling: SignalingResult;
  targets: TargetResult[];
  /** Wall time of the whole run (s). */
  seconds: number;
}

const MIB = 1024;

/** Median of `xs` (mean of the middle two for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * One direction from several rounds: the median throughput; bytes, durations, retransmits
 * and CPU summed, so that CPU % and CPU s/GB cover every round.
 */
export function combineRounds(rounds: readonly DirectionResult[]): DirectionResult | undefined {
  if (rounds.length === 0) return undefined;
  const sum = (f: (d: DirectionResult) => number | null | undefined) =>
    rounds.reduce((x, d) => x + (f(d) ?? 0), 0);
  const out: DirectionResult = {
    mbps: median(rounds.map((d) => d.mbps)),
    bytes: sum((d) => d.bytes),
    seconds: sum((d) => d.seconds),
    wallSeconds: sum((d) => d.wallSeconds ?? d.seconds),
    retransmits: rounds.some((d) => d.retransmits !== null) ? sum((d) => d.retransmits) : null,
    rounds: rounds.map((d) => d.mbps),
  };
  if (rounds.some((d) => d.cpuSeconds !== undefined)) {
    const cpu = sum((d) => d.cpuSeconds);
    out.cpuSeconds = cpu;
    out.cpuPercent = (cpu / out.wallSeconds!) * 100;
    out.cpuPerGB = out.bytes > 0 ? cpu / (out.bytes / 1e9) : NaN;
  }
  return out;
}

/** Fixed-point text, "–" for a missing or non-finite value. */
export function fmt(x: number | undefined | null, digits = 1): string {
  return x === undefined || x === null || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

/** Mbit/s with a sensible precision ("12 600", "84.4"). */
export function fmtMbps(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "–";
  return x >= 1000 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1);
}

/** A ratio as "3.21×". */
export function fmtRatio(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? "–" : `${x.toFixed(x < 10 ? 2 : 1)}×`;
}

/** KiB as MiB text. */
export function fmtMiB(kb: number | undefined): string {
  return kb === undefined || !Number.isFinite(kb) ? "–" : `${(kb / MIB).toFixed(1)} MiB`;
}

const r = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b !== 0
    ? a / b
    : undefined;

/** Signed milliseconds, "+0.104" / "−0.029". */
export function fmtSigned(x: number | undefined, digits = 3): string {
  return x === undefined || !Number.isFinite(x)
    ? "–"
    : `${x < 0 ? "−" : "+"}${Math.abs(x).toFixed(digits)}`;
}

/**
 * Added RTT of a tunnel: its average minus the direct path's (ms), from the first pings, or
 * with `after` from the pings after the iperf3 rounds.
 */
export function addedRtt(
  path: PathResult,
  direct: PathResult,
  after = false,
): number | undefined {
  const a = after ? path.rttAfter : path.rtt;
  const b = after ? direct.rttAfter : direct.rtt;
  if (!a || !b) return undefined;
  return a.avg - b.avg;
}

function judge(
  target: string,
  goal: string,
  measured: number | undefined,
  limit: number,
  kind: "atLeast" | "atMost",
  show: (x: number) => string,
): TargetResult {
  if (measured === undefined || !Number.isFinite(measured)) {
    return { target, goal, measured: "not measured", met: null, margin: "–" };
  }
  const met = kind === "atLeast" ? measured >= limit : measured <= limit;
  const pct = Math.abs(measured / limit - 1) * 100;
  const margin = kind === "atLeast"
    ? (met ? `${pct.toFixed(0)} % above the goal` : `${pct.toFixed(0)} % short of the goal`)
    : (met ? `${pct.toFixed(0)} % under the limit` : `${pct.toFixed(0)} % over the limit`);
  return { target, goal, measured: show(measured), met, margin };
}

/** Evaluates the targets of issue 4 (ratios within the same run). */
export function evaluateTargets(
  res: Pick<BenchResult, "paths" | "memory" | "signaling">,
): TargetResult[] {
  const { direct, openvpn, kagemusha } = res.paths;
  const out: TargetResult[] = [];
  for (const dir of ["up", "down"] as const) {
    const name = dir === "up" ? "VM → cn" : "cn → VM";
    out.push(judge(
      `throughput ${name}`,
      "≥ 4× OpenVPN null cipher",
      r(kagemusha[dir]?.mbps, openvpn[dir]?.mbps),
      4,
      "atLeast",
      (x) =>
        `${fmtRatio(x)} (${fmtMbps(kagemusha[dir]?.mbps)} vs ${
          fmtMbps(openvpn[dir]?.mbps)
        } Mbit/s)`,
    ));
  }
  for (const after of [false, true]) {
    const kAdd = addedRtt(kagemusha, direct, after), oAdd = addedRtt(openvpn, direct, after);
    out.push(judge(
      after ? "added RTT, after traffic" : "added RTT, first pings",
      "≤ ½ of OpenVPN's added RTT",
      oAdd !== undefined && oAdd > 0 ? r(kAdd, oAdd) : undefined,
      0.5,
      "atMost",
      (x) => `${fmt(x, 2)} of OpenVPN's (${fmtSigned(kAdd)} vs ${fmtSigned(oAdd)} ms)`,
    ));
  }
  out.push(judge(
    "mn RSS, 1 VM",
    "≤ 64 MiB",
    res.memory.oneVm?.vmHwmKb,
    64 * MIB,
    "atMost",
    (x) => `${fmtMiB(x)} peak`,
  ));
  out.push(judge(
    "mn RSS, 100 VMs",
    "≤ 96 MiB",
    res.memory.hundredVms?.vmHwmKb,
    96 * MIB,
    "atMost",
    (x) => `${fmtMiB(x)} peak`,
  ));
  for (const p of res.signaling.phases ?? []) {
    out.push(judge(
      `HA signaling, ${p.name === "first" ? "first registrations" : "refreshes"}`,
      "≥ 10 000 BU/BA per s",
      p.completed > 0 ? p.rate : undefined,
      10_000,
      "atLeast",
      (x) =>
        `${Math.round(x).toLocaleString("en-US")} /s` +
        (p.completed < p.count ? ` (only ${p.completed}/${p.count} answered in time)` : ""),
    ));
  }
  if ((res.signaling.phases ?? []).length === 0) {
    out.push({
      target: "HA signaling",
      goal: "≥ 10 000 BU/BA per s",
      measured: "not measured",
      met: null,
      margin: "–",
    });
  }
  return out;
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function rssOf(p: PathResult): string {
  if (!p.processes?.length) return "–";
  return p.processes.map((q) => `${q.name} ${fmtMiB(q.vmHwmKb)}`).join(", ");
}

/** The markdown report: main table (like the seed's), ratios, memory, signaling, targets. */
export function markdown(res: BenchResult): string {
  const { direct, openvpn, kagemusha } = res.paths;
  const paths = [direct, openvpn, kagemusha];
  const s = res.settings;
  const out: string[] = [];
  out.push(
    `Kagemusha benchmark, ${res.date} — ${res.machine.cpus} CPUs, Linux ${res.machine.kernel}, ` +
      `Deno ${res.machine.deno}, load average ${
        res.machine.loadavg.map((x) => x.toFixed(2)).join(" ")
      } at the start. iperf3 TCP ${s.iperfSeconds} s per direction, median of ${s.rounds} ` +
      `rounds interleaved across the paths; ` +
      `${s.pings} pings at ${s.pingIntervalMs} ms; jitter = mdev (population standard ` +
      `deviation of the RTTs, as ping prints it); CPU % = daemons' utime+stime over wall time ` +
      `(100 % = one core), CPU s/GB per 10⁹ bytes of TCP payload; RSS = peak (VmHWM). ` +
      `Kagemusha data path: ${
        (s.datapathWorkers ?? 2) === 1
          ? "one Worker per daemon for both directions"
          : "a Worker per direction"
      }.`,
    "",
  );
  out.push(table(
    [
      "path",
      "TCP → cn Mbit/s",
      "TCP ← cn Mbit/s",
      "CPU %",
      "CPU s/GB",
      "RTT avg ms",
      "RTT p99 ms",
      "jitter ms",
      "peak RSS",
    ],
    paths.map((p) =>
      p.error ? [p.label, `not measured: ${p.error.split("\n")[0]}`, "", "", "", "", "", "", ""] : [
        p.label,
        fmtMbps(p.up?.mbps),
        fmtMbps(p.down?.mbps),
        fmt(p.cpu?.percent, 0),
        fmt(p.cpu?.perGB, 2),
        fmt(p.rtt?.avg, 3),
        fmt(p.rtt?.p99, 3),
        fmt(p.rtt?.mdev, 3),
        rssOf(p),
      ]
    ),
  ));
  out.push("");
  const ratioRow = (label: string, base: PathResult) => [
    label,
    fmtRatio(r(kagemusha.up?.mbps, base.up?.mbps)),
    fmtRatio(r(kagemusha.down?.mbps, base.down?.mbps)),
    fmtRatio(r(kagemusha.cpu?.percent, base.cpu?.percent)),
    fmtRatio(r(kagemusha.cpu?.perGB, base.cpu?.perGB)),
    fmtRatio(r(kagemusha.rtt?.avg, base.rtt?.avg)),
    fmtRatio(r(kagemusha.rtt?.p99, base.rtt?.p99)),
    fmtRatio(r(kagemusha.rtt?.mdev, base.rtt?.mdev)),
  ];
  out.push(table(
    ["Kagemusha ÷", "→ cn", "← cn", "CPU %", "CPU s/GB", "RTT avg", "RTT p99", "jitter"],
    [ratioRow("OpenVPN", openvpn), ratioRow("direct", direct)],
  ));
  out.push("");
  const mnc = kagemusha.counters?.mn;
  if (mnc) {
    const split = mnc.tunnel_tx_gso_split ?? 0;
    out.push(
      `Kagemusha data path: ${
        split > 0 ? "offloads in use" : "no GSO super-frames seen (offloads off)"
      } — mn tunnel_tx_gso_split ${split}, tunnel_tx_packets ${mnc.tunnel_tx_packets ?? "?"}, ` +
        `tunnel_tx_batches ${mnc.tunnel_tx_batches ?? "?"}, tunnel_rx_packets ${
          mnc.tunnel_rx_packets ?? "?"
        }, tunnel_rx_batches ${mnc.tunnel_rx_batches ?? "?"}.`,
      "",
    );
  }
  out.push(
    `Added RTT over the direct path: OpenVPN ${fmtSigned(addedRtt(openvpn, direct))} ms, ` +
      `Kagemusha ${fmtSigned(addedRtt(kagemusha, direct))} ms (first pings, daemons just ` +
      `started); after the iperf3 rounds: OpenVPN ${
        fmtSigned(addedRtt(openvpn, direct, true))
      } ms, Kagemusha ${fmtSigned(addedRtt(kagemusha, direct, true))} ms (RTT avg / p99 ` +
      paths.map((p) => `${p.label} ${fmt(p.rttAfter?.avg, 3)} / ${fmt(p.rttAfter?.p99, 3)}`)
        .join(", ") +
      " ms).",
    "",
  );
  const m = res.memory;
  out.push(table([
    "kagemusha mn",
    "RSS, registered and idle",
    "of which anonymous / file-backed",
    "RSS after traffic",
    "peak RSS",
  ], [
    [
      "1 VM",
      fmtMiB(m.oneVm?.idleVmRssKb),
      `${fmtMiB(m.oneVm?.idleRssAnonKb)} / ${fmtMiB(m.oneVm?.idleRssFileKb)}`,
      fmtMiB(m.oneVm?.vmRssKb),
      fmtMiB(m.oneVm?.vmHwmKb),
    ],
    [
      `${m.hundredVms?.vms ?? 100} VMs (${m.hundredVms?.registered ?? 0} registered)`,
      fmtMiB(m.hundredVms?.vmRssKb),
      `${fmtMiB(m.hundredVms?.rssAnonKb)} / ${fmtMiB(m.hundredVms?.rssFileKb)}`,
      "–",
      fmtMiB(m.hundredVms?.vmHwmKb),
    ],
  ]));
  out.push(
    "",
    "File-backed pages are mostly the Deno executable's text, shared by every Deno process " +
      "on the host; anonymous pages are the daemon's own (V8 heaps of the main thread and " +
      "each Worker, buffers).",
  );
  if (m.error) out.push("", `Memory section: ${m.error.split("\n")[0]}`);
  out.push("");
  const sig = res.signaling;
  out.push(table(
    [
      `HA signaling, ${sig.hoas} HoAs, window ${sig.window}`,
      "BU/BA per s",
      "answered",
      "retransmits",
      "BA latency p50/p99 ms",
      "HA CPU µs per BU",
      "generator CPU %",
    ],
    sig.phases.map((p) => [
      p.name === "first" ? "first registrations" : "refreshes",
      Math.round(p.rate).toLocaleString("en-US"),
      `${p.completed}/${p.count} (${
        Object.entries(p.statuses).map(([k, v]) => `status ${k}: ${v}`).join(", ")
      })`,
      String(p.retransmits),
      `${fmt(p.latencyMs.p50, 2)} / ${fmt(p.latencyMs.p99, 2)}`,
      fmt(p.haCpuUsPerBu, 0),
      fmt(
        p.generatorCpuSeconds === undefined ? undefined : p.generatorCpuSeconds / p.seconds * 100,
        0,
      ),
    ]),
  ));
  if (sig.haVmRssKb !== undefined) {
    out.push(
      "",
      `Home agent RSS with the ${sig.hoas} bindings: ${fmtMiB(sig.haVmRssKb)} (peak ${
        fmtMiB(sig.haVmHwmKb)
      }).`,
    );
  }
  if (sig.error) out.push("", `Signaling section: ${sig.error.split("\n")[0]}`);
  out.push("");
  out.push(table(
    ["target (issue 4)", "goal", "measured", "met", "margin"],
    res.targets.map((t) => [
      t.target,
      t.goal,
      t.measured,
      t.met === null ? "?" : t.met ? "met" : "**missed**",
      t.margin,
    ]),
  ));
  return out.join("\n");
}
