/**
 * Reading processes from /proc: CPU ticks and memory of the daemons under test, and the real
 * pid behind `ip netns exec … cmd` (which may or may not fork, depending on iproute2).
 *
 * @module
 */
import {
  parseProcStat,
  parseProcStatus,
  type ProcMemory,
  type ProcStat,
  ticksToSeconds,
} from "./stats.ts";

let clkTck: number | undefined;

/** `getconf CLK_TCK` (the unit of utime/stime in /proc/<pid>/stat), read once. */
export function clockTicks(): number {
  if (clkTck === undefined) {
    const out = new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).outputSync();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    clkTck = out.success && n > 0 ? n : 100;
  }
  return clkTck;
}

/** `/proc/<pid>/stat`, parsed. */
export function readStat(pid: number): ProcStat {
  return parseProcStat(Deno.readTextFileSync(`/proc/${pid}/stat`));
}

/** VmRSS / VmHWM of `pid` (KiB). */
export function readMemory(pid: number): ProcMemory {
  return parseProcStatus(Deno.readTextFileSync(`/proc/${pid}/status`));
}

/** utime + stime of `pid` (all threads) in seconds. */
export function cpuSeconds(pid: number): number {
  const s = readStat(pid);
  return ticksToSeconds(s.utime + s.stime, clockTicks());
}

/** Direct children of `pid` (from /proc/<pid>/task/<tid>/children). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: Deno.DirEntry[] = [];
  try {
    tasks = [...Deno.readDirSync(`/proc/${pid}/task`)];
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const txt = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`);
      for (const c of txt.split(/\s+/).filter(Boolean)) out.push(Number(c));
    } catch { /* task gone */ }
  }
  return out;
}

/**
 * The process that really runs a command started as `ip netns exec NS cmd …` from `pid`
 * (the ip process): `pid` itself when ip exec'd in place, otherwise the first descendant that
 * is not `ip`. Waits up to `ms` for the exec to happen. Throws when none shows up.
 */
export async function resolveExecPid(pid: number, ms = 5000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const stat = readStat(pid);
      if (stat.comm !== "ip") return pid;
      const queue = childrenOf(pid);
      while (queue.length) {
        const c = queue.shift()!;
        try {
          if (readStat(c).comm !== "ip") return c;
          queue.push(...childrenOf(c));
        } catch { /* gone */ }
      }
    } catch (e) {
      throw new Error(`process ${pid} is gone: ${e instanceof Error ? e.message : e}`);
    }
    if (Date.now() > deadline) throw new Error(`no child of ip process ${pid} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Snapshot of a set of named processes: CPU seconds and memory. */
export interface ProcSample {
  name: string;
  pid: number;
  cpuSeconds: number;
  vmRssKb: number;
  vmHwmKb: number;
  rssAnonKb: number;
  rssFileKb: number;
}

/** Samples each `{name, pid}` now. */
export function sample(procs: readonly { name: string; pid: number }[]): ProcSample[] {
  return procs.map(({ name, pid }) => ({
    name,
    pid,
    cpuSeconds: cpuSeconds(pid),
    ...readMemory(pid),
  }));
}
