/**
 * `deno task bench` (root): Kagemusha's data path and home agent against OpenVPN with null
 * cipher and against the kernel's direct path, on the reference topology (issue 4).
 *
 * ```sh
 * deno run -A test/bench/bench.ts [--json FILE] [--only direct,openvpn,kagemusha,memory,signaling]
 *   [--iperf-seconds 5] [--rounds 3] [--pings 500] [--ping-interval-ms 5] [--hoas 10000] [--window 128]
 *   [--vms 100] [--signaling-deadline-s 30] [--datapath-workers 1]
 * ```
 *
 * Sections, in this order (one failing does not stop the others):
 * 1. direct: host B ↔ cn routed by the home agent's kernel, no tunnel;
 * 2. openvpn: OpenVPN 2.6 p2p over UDP, `--cipher none --auth none`, host B ↔ ha, cn routed
 *    through it;
 * 3. kagemusha: the VM moved to host B behind `kagemusha mn`, `kagemusha ha` in ha;
 * 4. memory: `kagemusha mn` serving `--vms` VMs (100 taps) on host C, all registered;
 * 5. signaling: a load generator (bu_load.ts) playing `--hoas` mobile nodes from one CoA.
 *
 * Prints markdown tables, then the JSON (or writes it to `--json FILE`). Exit code 0 when
 * every section ran, 1 when one failed, 2 when a prerequisite is missing. Targets missed are
 * reported, not failed: they are ratios within the run, not timed tests. Everything the run
 * creates (namespaces, processes, the scratch directory) is removed at the end, also on
 * failure and on Ctrl-C.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { LabProcess, Netns } from "../../src/demo/lab.ts";
import { ADDR, kagemusha, Topology } from "../../src/demo/topology.ts";
import { controlRequest } from "../../src/control/client.ts";
import { clockTicks, type ProcSample, readMemory, resolveExecPid, sample } from "./proc.ts";
import {
  type BenchResult,
  combineRounds,
  type DirectionResult,
  evaluateTargets,
  markdown,
  type MemoryResult,
  type PathResult,
  type SignalingResult,
} from "./report.ts";
import type { LoadPhase } from "./signaling.ts";
import { bindingStates, manyVmConfig } from "./daemons.ts";
import { cpuSecondsPerGB, parseIperf3, parsePing, summarizeRtts } from "./stats.ts";

const SECTIONS = ["direct", "openvpn", "kagemusha", "memory", "signaling"] as const;
type Section = typeof SECTIONS[number];

const { values: args } = parseArgs({
  options: {
    json: { type: "string" },
    only: { type: "string" },
    "iperf-seconds": { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    pings: { type: "string", default: "500" },
    "ping-interval-ms": { type: "string", default: "5" },
    hoas: { type: "string", default: "10000" },
    window: { type: "string", default: "128" },
    vms: { type: "string", default: "100" },
    "signaling-deadline-s": { type: "string", default: "30" },
    "datapath-workers": { type: "string", default: "1" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help) {
  console.log(
    "usage: deno run -A test/bench/bench.ts [--json FILE] [--only " + SECTIONS.join(",") +
      "] [--iperf-seconds N] [--rounds N] [--pings N] [--ping-interval-ms N] [--hoas N] [--window N] [--vms N]" +
      " [--signaling-deadline-s N] [--datapath-workers 1|2]",
  );
  Deno.exit(0);
}
const only = new Set<Section>(
  args.only ? args.only.split(",").map((s) => s.trim() as Section) : SECTIONS,
);
for (const s of only) {
  if (!SECTIONS.includes(s)) {
    console.error(`bench: unknown section ${s} (known: ${SECTIONS.join(", ")})`);
    Deno.exit(2);
  }
}
const IPERF_S = Number(args["iperf-seconds"]);
const ROUNDS = Number(args.rounds);
const PINGS = Number(args.pings);
const PING_MS = Number(args["ping-interval-ms"]);
const HOAS = Number(args.hoas);
const WINDOW = Number(args.window);
const VMS = Number(args.vms);
const SIG_DEADLINE_S = Number(args["signaling-deadline-s"]);
/** The daemons' `--datapath-workers`: 1 (both directions in one thread, the default) or 2. */
const WORKERS = args["datapath-workers"];
if (WORKERS !== "1" && WORKERS !== "2") {
  console.error(`bench: --datapath-workers must be 1 or 2, got ${WORKERS}`);
  Deno.exit(2);
}
const WORKER_FLAGS = ["--datapath-workers", WORKERS];

/** Addresses the bench adds to the reference topology. */
const BENCH = {
  /** OpenVPN tun addresses (ha end, host B end). */
  ovpnHa: "2001:db8:6000::1",
  ovpnB: "2001:db8:6000::2",
  /** The load generator's link to ha. */
  genHa: "2001:db8:5000::1",
  genCoa: "2001:db8:5000::3",
  /** First of the generator's home addresses (its last 16 bits count up). */
  genHoaBase: "2001:db8:2000::1:0",
  iperfPort: 5201,
} as const;

const log = (msg: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

// ---- prerequisites ----------------------------------------------------------------------------

function preflight(): void {
  const problems: string[] = [];
  if (Deno.uid() !== 0) problems.push("must run as root (network namespaces, raw sockets)");
  const need = ["ip", "iperf3", "ping", "getconf", "timeout"];
  if (only.has("openvpn")) need.push("openvpn");
  for (const tool of need) {
    const r = new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
      .outputSync();
    if (!r.success) problems.push(`${tool} not found on PATH (apt-get install ${tool})`);
  }
  if (problems.length) {
    console.error(`bench: cannot run:\n  ${problems.join("\n  ")}`);
    Deno.exit(2);
  }
}

/** The daemon sources of issues 3 and 5; missing ones mean "daemon not ready". */
function daemonsReady(): string | null {
  const missing = ["../../src/ha/daemon.ts", "../../src/mn/daemon.ts"].filter((p) => {
    try {
      Deno.statSync(new URL(p, import.meta.url));
      return false;
    } catch {
      return true;
    }
  });
  return missing.length
    ? `daemon not ready: ${missing.map((p) => p.slice(6)).join(", ")} does not exist yet`
    : null;
}

// ---- measurement primitives -----------------------------------------------------------------

interface Proc {
  name: string;
  pid: number;
}

function cpuDelta(a: ProcSample[], b: ProcSample[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += b[i].cpuSeconds - a[i].cpuSeconds;
  return s;
}

async function iperf(p: ActivePath, reverse: boolean): Promise<DirectionResult> {
  const { client, dst, procs } = p;
  const argv = [
    "timeout",
    String(IPERF_S + 20),
    "iperf3",
    "-c",
    dst,
    "-p",
    String(BENCH.iperfPort),
    "-t",
    String(IPERF_S),
    "-J",
    "--connect-timeout",
    "3000",
  ];
  if (reverse) argv.push("-R");
  if (p.src) argv.push("-B", p.src);
  const before = sample(procs);
  const t0 = performance.now();
  const out = await client.exec(argv, { allowFail: true });
  const wall = (performance.now() - t0) / 1000;
  const after = sample(procs);
  if (out.code === 124) throw new Error(`iperf3 ${reverse ? "-R " : ""}to ${dst} timed out`);
  const res = parseIperf3(out.stdout);
  const d: DirectionResult = {
    mbps: res.bitsPerSecond / 1e6,
    bytes: res.bytes,
    seconds: res.seconds,
    wallSeconds: wall,
    retransmits: res.retransmits,
  };
  if (procs.length) {
    const cpu = cpuDelta(before, after);
    d.cpuSeconds = cpu;
    d.cpuPercent = (cpu / wall) * 100;
    d.cpuPerGB = cpuSecondsPerGB(cpu, res.bytes);
  }
  return d;
}

async function pingRtt(p: ActivePath): Promise<NonNullable<PathResult["rtt"]>> {
  const { client, dst } = p;
  const from = p.src ? ["-I", p.src] : [];
  // warm up neighbour caches and the tunnel; fail fast when nothing gets through
  let warm = 0;
  for (let attempt = 0; attempt < 3 && warm === 0; attempt++) {
    const w = await client.exec([
      "ping",
      "-6",
      "-n",
      ...from,
      "-c",
      "3",
      "-i",
      "0.05",
      "-W",
      "1",
      dst,
    ], {
      allowFail: true,
    });
    warm = w.stdout.includes("packets transmitted") ? parsePing(w.stdout).received : 0;
  }
  if (warm === 0) throw new Error(`no ping reply from ${dst} through this path (3 tries)`);
  const deadline = Math.ceil((PINGS * PING_MS) / 1000) + 10;
  const out = await client.exec([
    "ping",
    "-6",
    "-n",
    ...from,
    "-c",
    String(PINGS),
    "-i",
    String(PING_MS / 1000),
    "-W",
    "1",
    "-w",
    String(deadline),
    dst,
  ], { allowFail: true });
  const res = parsePing(out.stdout);
  if (res.received === 0) throw new Error(`ping ${dst}: no reply (${out.stderr.trim()})`);
  return {
    ...summarizeRtts(res.rtts),
    sent: res.transmitted,
    lost: res.transmitted - res.received,
  };
}

/** A path ready to measure: where the client runs, what it reaches, which daemons carry it. */
interface ActivePath {
  key: PathKey;
  label: string;
  client: Netns;
  dst: string;
  /** Source address the client binds (iperf3 -B, ping -I), when the path needs one. */
  src?: string;
  procs: Proc[];
  /** Undoes the path's setup (stops its daemons); also reads final figures. */
  teardown: () => Promise<void>;
  /** The daemons' data-path counters after the rounds (Kagemusha's `status`). */
  counters?: () => Promise<Record<string, Record<string, number>>>;
  /** Filled while measuring. */
  rtt?: PathResult["rtt"];
  rttAfter?: PathResult["rttAfter"];
  up: DirectionResult[];
  down: DirectionResult[];
  start?: ProcSample[];
  error?: string;
}

type PathKey = "direct" | "openvpn" | "kagemusha";

/** The path's result from its rounds: median throughput, CPU summed over every round. */
function finishPath(p: ActivePath): PathResult {
  if (p.error) return { label: p.label, error: p.error };
  const res: PathResult = {
    label: p.label,
    up: combineRounds(p.up),
    down: combineRounds(p.down),
    rtt: p.rtt,
    rttAfter: p.rttAfter,
  };
  if (p.procs.length && p.start) {
    const end = sample(p.procs);
    res.processes = end.map((e, i) => ({
      name: e.name,
      pid: e.pid,
      cpuSeconds: e.cpuSeconds - p.start![i].cpuSeconds,
      vmRssKb: e.vmRssKb,
      vmHwmKb: e.vmHwmKb,
      rssAnonKb: e.rssAnonKb,
      rssFileKb: e.rssFileKb,
    }));
    const all = [...p.up, ...p.down];
    const cpu = all.reduce((x, d) => x + (d.cpuSeconds ?? 0), 0);
    const wall = all.reduce((x, d) => x + (d.wallSeconds ?? d.seconds), 0);
    const bytes = all.reduce((x, d) => x + d.bytes, 0);
    res.cpu = { seconds: cpu, percent: (cpu / wall) * 100, perGB: cpuSecondsPerGB(cpu, bytes) };
  }
  return res;
}

function failed(label: string, e: unknown): PathResult {
  const error = e instanceof Error ? e.message : String(e);
  log(`${label}: FAILED: ${error}`);
  return { label, error };
}

async function until<T>(
  what: string,
  ms: number,
  probe: () => Promise<T | undefined>,
  proc?: LabProcess,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last = "";
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (proc) {
      const exited = await Promise.race([
        proc.done.then((s) => s),
        new Promise<null>((r) => setTimeout(() => r(null), 0)),
      ]);
      if (exited) {
        throw new Error(
          `${what}: ${proc.name} exited with code ${exited.code}\n${tail(proc.stderr)}${
            tail(proc.stdout)
          }`,
        );
      }
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not after ${ms} ms${last ? ` (last error: ${last})` : ""}${
          proc ? `\n${tail(proc.stderr)}${tail(proc.stdout)}` : ""
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(s: string, lines = 15): string {
  const l = s.trim().split("\n");
  return l.length && l[0] ? l.slice(-lines).join("\n") + "\n" : "";
}

// ---- status of the daemons ------------------------------------------------------------------

async function waitRegistered(
  control: string,
  n: number,
  ms: number,
  proc: LabProcess,
): Promise<number> {
  const t0 = performance.now();
  await until(`${n} binding(s) registered on ${control}`, ms, async () => {
    const st = bindingStates(await controlRequest(control, "status", undefined, 3000));
    return st.filter((s) => s === "registered").length >= n ? true : undefined;
  }, proc);
  return (performance.now() - t0) / 1000;
}

// ---- sections --------------------------------------------------------------------------------

function directPath(t: Topology): ActivePath {
  return {
    key: "direct",
    label: "direct (kernel)",
    client: t.hosts.hostB,
    dst: ADDR.cn,
    procs: [],
    teardown: () => Promise.resolve(),
    up: [],
    down: [],
  };
}

async function openvpnPath(t: Topology): Promise<ActivePath> {
  const label = "OpenVPN 2.6 null cipher";
  const common = [
    "openvpn",
    "--dev",
    "ovpn0",
    "--dev-type",
    "tun",
    "--proto",
    "udp6",
    "--port",
    "1194",
    "--cipher",
    "none",
    "--auth",
    "none",
    "--verb",
    "3",
  ];
  log(`${label}: starting (p2p, UDP over IPv6, host B ↔ ha)`);
  const srv = t.ha.spawn([
    ...common,
    "--local",
    ADDR.haB,
    "--remote",
    ADDR.coaB,
    "--ifconfig-ipv6",
    `${BENCH.ovpnHa}/64`,
    BENCH.ovpnB,
  ]);
  const cli = t.hosts.hostB.spawn([
    ...common,
    "--local",
    ADDR.coaB,
    "--remote",
    ADDR.haB,
    "--ifconfig-ipv6",
    `${BENCH.ovpnB}/64`,
    BENCH.ovpnHa,
  ]);
  const hostB = t.hosts.hostB;
  const teardown = async () => {
    await hostB.ip("-6", "rule", "del", "from", BENCH.ovpnB, "table", "100").catch(() => {});
    await hostB.ip("-6", "route", "flush", "table", "100").catch(() => {});
    await cli.stop();
    await srv.stop();
  };
  try {
    await srv.waitFor("Initialization Sequence Completed", 15_000);
    await cli.waitFor("Initialization Sequence Completed", 15_000);
    const procs = [
      { name: "openvpn host B", pid: await resolveExecPid(cli.child.pid) },
      { name: "openvpn ha", pid: await resolveExecPid(srv.child.pid) },
    ];
    // Traffic from host B's tunnel address goes through the tunnel (policy routing, host B
    // only; ha reaches 2001:db8:6000::/64 over ovpn0). Host B's own address keeps the direct
    // path, and the VM's traffic (Kagemusha's path) is not affected.
    await hostB.ip(
      "-6",
      "route",
      "add",
      `${ADDR.cn}/128`,
      "via",
      BENCH.ovpnHa,
      "dev",
      "ovpn0",
      "table",
      "100",
    );
    await hostB.ip("-6", "rule", "add", "from", BENCH.ovpnB, "table", "100");
    return {
      key: "openvpn",
      label,
      client: hostB,
      dst: ADDR.cn,
      src: BENCH.ovpnB,
      procs,
      teardown,
      up: [],
      down: [],
    };
  } catch (e) {
    const msg = `${e instanceof Error ? e.message : e}\nopenvpn ha:\n${
      tail(srv.stdout)
    }openvpn host B:\n${tail(cli.stdout)}`;
    await teardown();
    throw new Error(msg);
  }
}

interface Kgm {
  ha?: LabProcess;
  haPid?: number;
}

async function startHa(t: Topology, k: Kgm): Promise<number> {
  if (k.haPid !== undefined) return k.haPid;
  const notReady = daemonsReady();
  if (notReady) throw new Error(notReady);
  // optimistic DAD: first registrations are not held for the DAD second (RFC 6275 §10.3.1)
  k.ha = t.startHomeAgent(["--dad", "optimistic", "--log-level", "warning", ...WORKER_FLAGS]);
  await until(
    "home agent control socket",
    20_000,
    async () => (await controlRequest(`${t.dir}/ha.sock`, "status", undefined, 2000)) ?? true,
    k.ha,
  );
  k.haPid = await resolveExecPid(k.ha.child.pid);
  return k.haPid;
}

function withLogs(e: unknown, logs: [string, LabProcess | undefined][]): Error {
  return new Error(
    `${e instanceof Error ? e.message : e}\n` +
      logs.map(([n, p]) => p ? `${n} log:\n${tail(p.stderr)}${tail(p.stdout)}` : "").join(""),
  );
}

async function kagemushaPath(t: Topology, k: Kgm, memory: MemoryResult): Promise<ActivePath> {
  const label = "Kagemusha (mn + ha)";
  let mn: LabProcess | undefined;
  try {
    const notReady = daemonsReady();
    if (notReady) throw new Error(notReady);
    log(`${label}: starting kagemusha ha, moving the VM to host B, starting kagemusha mn`);
    const haPid = await startHa(t, k);
    await t.moveVm("hostB");
    mn = t.startMobileNode("hostB", ["--log-level", "warning", ...WORKER_FLAGS]);
    await waitRegistered(t.controlPath("hostB"), 1, 20_000, mn);
    const mnPid = await resolveExecPid(mn.child.pid);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = readMemory(mnPid);
    const procs = [{ name: "mn", pid: mnPid }, { name: "ha", pid: haPid }];
    const mnProc = mn;
    const teardown = async () => {
      try {
        const mem = readMemory(mnPid);
        memory.oneVm = {
          ...mem,
          idleVmRssKb: idle.vmRssKb,
          idleRssAnonKb: idle.rssAnonKb,
          idleRssFileKb: idle.rssFileKb,
          note: "the throughput run's daemon: idle = 1 s after registration; now/peak = after " +
            "iperf3 and ping",
        };
      } catch { /* exited: figures stay unset */ }
      await mnProc.stop();
    };
    const counters = async () => {
      const out: Record<string, Record<string, number>> = {};
      for (const [name, path] of [["mn", t.controlPath("hostB")], ["ha", `${t.dir}/ha.sock`]]) {
        const st = await controlRequest(path, "status") as { counters?: Record<string, unknown> };
        out[name] = Object.fromEntries(
          Object.entries(st.counters ?? {}).filter(([k, v]) =>
            typeof v === "number" && /^(tunnel|vm)_/.test(k)
          ),
        ) as Record<string, number>;
      }
      return out;
    };
    return {
      key: "kagemusha",
      label,
      client: t.vm,
      dst: ADDR.cn,
      procs,
      teardown,
      counters,
      up: [],
      down: [],
    };
  } catch (e) {
    await mn?.stop();
    throw withLogs(e, [["ha", k.ha], ["mn", mn]]);
  }
}

async function sectionMemory(t: Topology, k: Kgm, memory: MemoryResult): Promise<void> {
  try {
    const notReady = daemonsReady();
    if (notReady) throw new Error(notReady);
    await startHa(t, k);
    const control = `${t.dir}/hostC-mn${VMS}.sock`;
    const file = `${t.dir}/mn${VMS}.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify(manyVmConfig(VMS, { control, stateDir: `${t.dir}/hostC-state${VMS}` })),
    );
    log(`memory: kagemusha mn with ${VMS} VMs on host C`);
    const mn = t.hosts.hostC.spawn(kagemusha("mn", "--config", file, ...WORKER_FLAGS));
    const secs = await waitRegistered(control, VMS, 60_000, mn);
    const pid = await resolveExecPid(mn.child.pid);
    // let the start-up garbage settle before reading the resident set
    await new Promise((r) => setTimeout(r, 1000));
    const st = bindingStates(await controlRequest(control, "status"));
    const mem = readMemory(pid);
    // the home agent's side: every one of those home addresses has a registered binding
    const haSt = await controlRequest(`${t.dir}/ha.sock`, "status") as {
      bindings?: { homeAddress?: string; state?: string }[];
    };
    const ours = (haSt.bindings ?? []).filter((b) =>
      b.state === "registered" && /^2001:db8:2000::1[0-9a-f]{3}$/.test(b.homeAddress ?? "")
    ).length;
    if (ours < VMS) {
      throw new Error(`home agent shows ${ours}/${VMS} of the VMs registered`);
    }
    memory.hundredVms = {
      vms: VMS,
      registered: st.filter((s) =>
        s === "registered"
      ).length,
      ...mem,
      registerSeconds: secs,
    };
    log(`memory: ${VMS} VMs registered in ${secs.toFixed(1)} s, RSS ${mem.vmRssKb} KiB`);
    await mn.stop();
  } catch (e) {
    memory.error = e instanceof Error ? e.message : String(e);
    log(`memory: FAILED: ${memory.error}`);
  }
}

async function sectionSignaling(t: Topology, k: Kgm, sig: SignalingResult): Promise<void> {
  try {
    const haPid = await startHa(t, k);
    const gen = await t.lab.netns("gen");
    await t.lab.veth(t.ha, "fg", gen, "eth0");
    await t.ha.ip("addr", "add", `${BENCH.genHa}/64`, "dev", "fg", "nodad");
    await gen.ip("addr", "add", `${BENCH.genCoa}/64`, "dev", "eth0", "nodad");
    await gen.ip("route", "add", "default", "via", BENCH.genHa, "dev", "eth0");
    const script = new URL("./bu_load.ts", import.meta.url).pathname;
    for (const [phase, seq] of [["first", 100], ["refresh", 1000]] as const) {
      log(`signaling: ${HOAS} ${phase === "first" ? "first registrations" : "refreshes"}`);
      const before = sample([{ name: "ha", pid: haPid }]);
      const out = await gen.exec([
        Deno.execPath(),
        "run",
        "-A",
        script,
        "--coa",
        BENCH.genCoa,
        "--ha",
        ADDR.ha,
        "--base",
        BENCH.genHoaBase,
        "--count",
        String(HOAS),
        "--window",
        String(WINDOW),
        "--seq",
        String(seq),
        "--phase",
        phase,
        "--deadline-s",
        String(SIG_DEADLINE_S),
      ], { allowFail: true });
      const after = sample([{ name: "ha", pid: haPid }]);
      if (out.code !== 0) throw new Error(`bu_load ${phase} exited ${out.code}: ${out.stderr}`);
      const p = JSON.parse(out.stdout) as LoadPhase;
      const cpu = cpuDelta(before, after);
      sig.phases.push({
        ...p,
        haCpuSeconds: cpu,
        haCpuUsPerBu: p.completed ? (cpu / p.completed) * 1e6 : NaN,
      });
      log(
        `signaling: ${phase}: ${p.completed}/${p.count} in ${p.seconds.toFixed(2)} s = ` +
          `${Math.round(p.rate)} /s, ${p.retransmits} retransmits, statuses ${
            JSON.stringify(p.statuses)
          }`,
      );
    }
    const mem = readMemory(haPid);
    sig.haVmRssKb = mem.vmRssKb;
    sig.haVmHwmKb = mem.vmHwmKb;
  } catch (e) {
    sig.error = e instanceof Error ? e.message : String(e);
    log(`signaling: FAILED: ${sig.error}`);
  }
}

/**
 * Sets up the selected paths, pings each (`--pings`), runs `--rounds` rounds of iperf3 (both
 * directions) interleaved across the paths, the order rotating each round, so that a burst of
 * other work on the machine hits every path alike. Throughput is the median of the rounds.
 */
async function measurePaths(t: Topology, k: Kgm, result: BenchResult): Promise<void> {
  const active: ActivePath[] = [];
  const setups: [PathKey, () => Promise<ActivePath>][] = [
    ["direct", () => Promise.resolve(directPath(t))],
    ["openvpn", () => openvpnPath(t)],
    ["kagemusha", () => kagemushaPath(t, k, result.memory)],
  ];
  try {
    for (const [key, setup] of setups) {
      if (!only.has(key)) continue;
      try {
        active.push(await setup());
      } catch (e) {
        result.paths[key] = failed(result.paths[key].label, e);
      }
    }
    for (const p of active) {
      p.start = sample(p.procs);
      try {
        log(`${p.label}: ping ×${PINGS} at ${PING_MS} ms → ${p.dst}`);
        p.rtt = await pingRtt(p);
        log(`${p.label}: RTT avg ${p.rtt.avg.toFixed(3)} ms, p99 ${p.rtt.p99.toFixed(3)} ms`);
      } catch (e) {
        p.error = e instanceof Error ? e.message : String(e);
        log(`${p.label}: FAILED: ${p.error}`);
      }
    }
    for (let r = 0; r < ROUNDS; r++) {
      const order = active.map((_, i) => active[(i + r) % active.length]);
      for (const p of order) {
        if (p.error) continue;
        try {
          const up = await iperf(p, false);
          const down = await iperf(p, true);
          p.up.push(up);
          p.down.push(down);
          log(
            `round ${r + 1}/${ROUNDS} ${p.label}: → ${up.mbps.toFixed(1)}, ← ${
              down.mbps.toFixed(1)
            } Mbit/s`,
          );
        } catch (e) {
          p.error = e instanceof Error ? e.message : String(e);
          log(`${p.label}: FAILED: ${p.error}`);
        }
      }
    }
    for (const p of active) {
      if (p.error) continue;
      try {
        log(`${p.label}: ping ×${PINGS} at ${PING_MS} ms again, after the rounds`);
        p.rttAfter = await pingRtt(p);
      } catch (e) {
        log(`${p.label}: pings after the rounds failed: ${e instanceof Error ? e.message : e}`);
      }
    }
    for (const p of active) {
      result.paths[p.key] = finishPath(p);
      if (p.counters) {
        try {
          result.paths[p.key].counters = await p.counters();
        } catch (e) {
          log(`${p.label}: status unreadable: ${e instanceof Error ? e.message : e}`);
        }
      }
    }
  } finally {
    for (const p of active) await p.teardown();
  }
}

// ---- main ------------------------------------------------------------------------------------

async function main(): Promise<number> {
  preflight();
  const t0 = performance.now();
  const t = new Topology();
  let closing: Promise<void> | undefined;
  const cleanup = () => closing ??= t.close();
  const onSignal = () => {
    console.error("\nbench: interrupted, removing namespaces and processes …");
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const skipped = (label: string): PathResult => ({ label, error: "skipped (--only)" });
  const result: BenchResult = {
    date: new Date().toISOString(),
    machine: {
      cpus: navigator.hardwareConcurrency,
      kernel: Deno.osRelease(),
      deno: Deno.version.deno,
      clkTck: clockTicks(),
      loadavg: Deno.loadavg(),
    },
    settings: {
      iperfSeconds: IPERF_S,
      rounds: ROUNDS,
      pings: PINGS,
      pingIntervalMs: PING_MS,
      datapathWorkers: Number(WORKERS),
    },
    paths: {
      direct: skipped("direct (kernel)"),
      openvpn: skipped("OpenVPN 2.6 null cipher"),
      kagemusha: skipped("Kagemusha (mn + ha)"),
    },
    memory: {},
    signaling: { hoas: HOAS, window: WINDOW, phases: [] },
    targets: [],
    seconds: 0,
  };
  try {
    log("building the reference topology");
    await t.build();
    const srv = t.cn.spawn(["iperf3", "-s", "-p", String(BENCH.iperfPort), "--forceflush"]);
    await srv.waitFor("Server listening", 10_000);
    const k: Kgm = {};
    await measurePaths(t, k, result);
    if (only.has("memory")) await sectionMemory(t, k, result.memory);
    if (only.has("signaling")) await sectionSignaling(t, k, result.signaling);
  } finally {
    log("cleaning up");
    await cleanup();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  result.machine.loadavgAfter = Deno.loadavg();
  result.targets = evaluateTargets(result);
  result.seconds = (performance.now() - t0) / 1000;
  console.log(markdown(result));
  const json = JSON.stringify(result, null, 2);
  if (args.json) {
    await Deno.writeTextFile(args.json, json + "\n");
    console.log(`\nJSON written to ${args.json}`);
  } else {
    console.log("\n```json\n" + json + "\n```");
  }
  log(`done in ${result.seconds.toFixed(0)} s`);
  const sectionFailed =
    Object.values(result.paths).some((p) => p.error && p.error !== "skipped (--only)") ||
    result.memory.error !== undefined || result.signaling.error !== undefined;
  return sectionFailed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
