/**
 * Home agent signaling load, measured alone (root): builds the {@linkcode haTopology}, starts
 * `kagemusha ha --dad optimistic` in it, runs the bench's generator (`test/bench/bu_load.ts`)
 * from the mobile node's namespace for `--count` first registrations then as many refreshes,
 * and prints one JSON line with the rates, the HA's CPU per BU and its RSS.
 *
 * ```sh
 * deno run -A test/ha/signaling_load.ts [--count 10000] [--window 128] [--runs 1]
 *   [--deno-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"] [--log-level warning] [--settle-s 0]
 * ```
 *
 * Not a test: a measuring tool for the home agent's own files (the bench's numbers come from
 * `deno task bench`, which drives the same generator on the reference topology).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Lab } from "../helpers/netns.ts";
import { COA, HA, haCommand, haStatus, haTopology } from "./ha_lab.ts";

const { values: a } = parseArgs({
  options: {
    count: { type: "string", default: "10000" },
    window: { type: "string", default: "128" },
    runs: { type: "string", default: "1" },
    "deno-flags": { type: "string", default: "" },
    "log-level": { type: "string", default: "warning" },
    "settle-s": { type: "string", default: "0" },
    base: { type: "string", default: "2001:db8:2000::1:0" },
  },
});

const GEN = new URL("../bench/bu_load.ts", import.meta.url).pathname;

function procStatus(pid: number): { rssKb: number; hwmKb: number } {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? NaN);
  return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
}

/** The largest mappings by RSS (KiB), to see what holds the memory. */
function topMappings(pid: number, n = 12): string[] {
  const lines = Deno.readTextFileSync(`/proc/${pid}/smaps`).split("\n");
  const maps: { name: string; rss: number }[] = [];
  for (const l of lines) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) {
      const f = l.split(/\s+/);
      const [lo, hi] = f[0].split("-").map((x) => parseInt(x, 16));
      maps.push({ name: `${f[5] ?? "[anon]"} ${((hi - lo) / 1024) | 0}K`, rss: 0 });
    } else if (l.startsWith("Rss:")) maps[maps.length - 1].rss = Number(l.split(/\s+/)[1]);
  }
  const sum: Record<string, number> = {};
  for (const m of maps) {
    const k = m.name.startsWith(" ") ? `anon ${m.name.trim()}` : m.name.split(" ")[0];
    sum[k] = (sum[k] ?? 0) + m.rss;
  }
  return Object.entries(sum).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${v} ${k}`);
}

function cpuSeconds(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, CLK_TCK 100
}

/** The deno process under `ip netns exec` (which may fork). */
async function realPid(pid: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const comm = Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
    if (comm !== "ip") return pid;
    const kids = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim();
    if (kids !== "") return realPid(Number(kids.split(/\s+/)[0]));
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no deno process under ip netns exec");
}

async function once(): Promise<Record<string, unknown>> {
  await using lab = new Lab();
  const t = await haTopology(lab);
  const ha = t.ha.spawn(
    haCommand(
      { ...t, denoFlags: a["deno-flags"].split(" ").filter(Boolean) },
      "--dad",
      "optimistic",
      "--log-level",
      a["log-level"],
    ),
  );
  try {
    for (let i = 0;; i++) {
      try {
        await haStatus(t);
        break;
      } catch (e) {
        if (i > 400) throw new Error(`home agent not ready: ${e}\n${ha.stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const pid = await realPid(ha.child.pid);
    const pidFile = Deno.env.get("HA_LOAD_PID_FILE");
    if (pidFile) {
      Deno.writeTextFileSync(pidFile, String(pid));
      await new Promise((r) => setTimeout(r, 1500)); // time to attach a profiler
    }
    const idle = procStatus(pid);
    if (Deno.env.get("HA_LOAD_MAPS")) console.error("idle maps", topMappings(pid));
    const idleSt = await haStatus(t) as unknown as { memory?: unknown };
    const out: Record<string, unknown> = { idleRssKb: idle.rssKb, idleMemory: idleSt.memory };
    for (const [phase, seq] of [["first", 100], ["refresh", 1000]] as const) {
      const cpu0 = cpuSeconds(pid);
      const r = await t.mn.exec([
        Deno.execPath(),
        "run",
        "-A",
        GEN,
        "--coa",
        COA,
        "--ha",
        HA,
        "--base",
        a.base,
        "--count",
        a.count,
        "--window",
        a.window,
        "--seq",
        String(seq),
        "--phase",
        phase,
      ], { allowFail: true });
      if (r.code !== 0) throw new Error(`bu_load ${phase}: ${r.stderr}`);
      const p = JSON.parse(r.stdout);
      const cpu = cpuSeconds(pid) - cpu0;
      out[phase] = {
        rate: Math.round(p.rate),
        completed: p.completed,
        retransmits: p.retransmits,
        statuses: p.statuses,
        p50Ms: Number(p.latencyMs.p50.toFixed(2)),
        p99Ms: Number(p.latencyMs.p99.toFixed(2)),
        haCpuUsPerBu: Math.round(cpu / p.completed * 1e6),
      };
    }
    const m = procStatus(pid);
    if (Deno.env.get("HA_LOAD_MAPS")) console.error("end maps", topMappings(pid));
    out.rssKb = m.rssKb;
    out.hwmKb = m.hwmKb;
    if (Number(a["settle-s"]) > 0) {
      await new Promise((r) => setTimeout(r, Number(a["settle-s"]) * 1000));
      out.settledRssKb = procStatus(pid).rssKb;
    }
    const st = await haStatus(t);
    out.bindings = st.bindings.length;
    out.memory = (st as unknown as { memory?: unknown }).memory;
    return out;
  } finally {
    await ha.stop("SIGTERM", 30_000);
    const dump = Deno.env.get("HA_LOAD_STDOUT");
    if (dump) Deno.writeTextFileSync(dump, ha.stdout);
    if (a["log-level"] !== "warning") {
      // keep the tail for the reader when asked for more logs
      console.error(ha.stderr.slice(-2000));
    }
  }
}

for (let i = 0; i < Number(a.runs); i++) console.log(JSON.stringify(await once()));
