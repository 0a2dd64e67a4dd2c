/**
 * Measurement (prints; asserts only delivery and an idle data path): ping RTT vm → cn through
 * the MN and HA data paths (offload devices), next to the kernel's own path mn → ha → cn in the
 * same lab, with the method of the benchmark (`ping -c 500 -i 0.005`, after a warm-up), and the
 * CPU the two data-path processes spent meanwhile and while idle afterwards.
 *
 * What it asserts: every ping answered, and the data paths idle at ~0 CPU once traffic stops
 * (a busy-poll must never outlive the traffic that started it).
 *
 * The data paths run the daemons' default, one Worker per side for both directions: a round trip
 * wakes the mobile node's Worker twice and the home agent's once (the correspondent's answer is
 * on the tun before the home agent's write() returns). Earlier measurements with a Worker per
 * direction (tcpdump on every hop, hot code, this 2-vCPU machine): each of the four Worker hops
 * took 20–55 µs — mostly the wake-up of a Worker blocked in poll() on a vCPU that went idle —
 * against 1–6 µs per kernel hop (veth, bridge, forwarding). Tried and not kept: polling on after
 * a batch (nothing to catch at one ping per 5 ms, and the spinning thread delays the next Worker:
 * 0.40 ms instead of 0.28–0.36 at 50 µs, 0.78 at 200 µs, 12.7 ms spinning for ever); waking the
 * other Worker of a side ahead of the reply so that it spins for it (its hop drops from ~43 to
 * ~14 µs, the others grow as much; paired A/B in one lab: 0.181 vs 0.197 ms at 100 µs, no
 * difference at 50 or 200 µs).
 *
 * @module
 */

import assert from "node:assert/strict";
import { needs } from "../helpers/env.ts";
import { Lab, type Netns } from "../helpers/netns.ts";
import { TempDir } from "./control.ts";
import { ADDR, buildFullLab, type FullLab } from "./full_lab.ts";

const PINGS = 500;

interface Rtt {
  avg: number;
  p50: number;
  p99: number;
  mdev: number;
  received: number;
}

async function ping(ns: Netns, dst: string, count: number, intervalS: number): Promise<Rtt> {
  const r = await ns.exec(
    ["ping", "-6", "-n", "-c", String(count), "-i", String(intervalS), "-W", "1", dst],
    { allowFail: true },
  );
  const rtts = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const sorted = [...rtts].sort((a, b) => a - b);
  const avg = rtts.reduce((s, x) => s + x, 0) / Math.max(1, rtts.length);
  const mdev = Math.sqrt(rtts.reduce((s, x) => s + (x - avg) ** 2, 0) / Math.max(1, rtts.length));
  return {
    avg,
    p50: sorted[Math.floor(sorted.length / 2)] ?? NaN,
    p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? NaN,
    mdev,
    received: rtts.length,
  };
}

/** utime + stime of a process, seconds (/proc/<pid>/stat fields 14 and 15, USER_HZ 100). */
function cpuSeconds(pid: number): number {
  const st = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

function daemonsCpu(L: FullLab): number {
  return cpuSeconds(L.mnDriver.child.pid) + cpuSeconds(L.haDriver.child.pid);
}

const f = (x: number) => x.toFixed(3);

Deno.test({
  name: "RTT through MN + HA data paths vs the kernel's path; idle data paths use no CPU",
  ignore: needs(["ip", "ping"], { root: true }),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await TempDir.create();
    await using lab = new Lab();
    const L = await buildFullLab(lab, tmp, { vnetHdr: true });
    // Warm-up as the benchmark does it: ND on every hop, the tunnel, the kernel path. The data
    // paths' code is still cold (not yet optimised by V8): the first figure.
    await ping(L.vm, ADDR.cn, 3, 0.05);
    await ping(L.mn, ADDR.cn, 3, 0.05);
    const direct = await ping(L.mn, ADDR.cn, PINGS, 0.005);
    const c0 = daemonsCpu(L);
    const t0 = performance.now();
    const cold = await ping(L.vm, ADDR.cn, PINGS, 0.005);
    const busy = daemonsCpu(L) - c0;
    const busyS = (performance.now() - t0) / 1000;
    // Then hot: 5000 more round trips first (a flood ping), as in a daemon that ran a while.
    await L.vm.exec(["ping", "-6", "-n", "-q", "-f", "-c", "5000", ADDR.cn], { allowFail: true });
    const tunnel = await ping(L.vm, ADDR.cn, PINGS, 0.005);
    assert.equal(cold.received, PINGS);
    assert.equal(tunnel.received, PINGS);
    assert.equal(direct.received, PINGS);

    // Idle: nothing moves for 2 s; the Workers must be blocked, not spinning.
    const i0 = daemonsCpu(L);
    await new Promise((r) => setTimeout(r, 2000));
    const idle = daemonsCpu(L) - i0;
    const line = (name: string, r: Rtt) =>
      `${name} avg ${f(r.avg)} p50 ${f(r.p50)} p99 ${f(r.p99)} mdev ${f(r.mdev)}` +
      ` (added ${f(r.avg - direct.avg)})`;
    console.log(
      `RTT ms, ${PINGS} pings at 5 ms: kernel mn→cn avg ${f(direct.avg)} p99 ${f(direct.p99)}\n` +
        `${line("tunnel, cold code", cold)}\n${line("tunnel, hot code ", tunnel)}\n` +
        `data-path CPU: ${(100 * busy / busyS).toFixed(1)} % of a core during the cold pings, ` +
        `${idle.toFixed(2)} s over 2 s idle`,
    );
    // The drivers' main threads poll a control file every 20 ms: allow a little.
    assert.ok(idle <= 0.1, `idle data paths used ${idle} s of CPU in 2 s`);
    for (const p of [L.mnDriver, L.haDriver]) await p.stop("SIGTERM", 10_000);
  },
});
