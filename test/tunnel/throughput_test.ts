/**
 * Measurement (prints, does not assert a speed): TCP throughput vm ⇄ cn through the MN and HA
 * data paths, 64 MiB each way with iperf3, side by side in one run:
 * - "plain": tap and tun without IFF_VNET_HDR (one frame per read, one packet per write);
 * - "offload": IFF_VNET_HDR + TUNSETOFFLOAD (64 KB TCP segments split by the data path,
 *   received segments coalesced into GSO packets).
 * Also printed: the CPU seconds both data-path processes spent per GB moved, which depends less
 * on what else the machine runs than the throughput does. What it asserts: each transfer moved
 * the 64 MiB, and the offload run really used GSO both ways (the split and merge counters
 * moved).
 *
 * @module
 */

import assert from "node:assert/strict";
import { needs } from "../helpers/env.ts";
import { Lab, type Netns } from "../helpers/netns.ts";
import { readCounters, TempDir } from "./control.ts";
import { ADDR, buildFullLab, type FullLab } from "./full_lab.ts";

const BYTES = 64 << 20;

interface Iperf {
  mbps: number;
  /** Bytes the sender wrote (exactly `-n`) and the receiver reported. */
  sent: number;
  received: number;
  retransmits: number;
  /** CPU seconds of both data-path processes per 10⁹ bytes moved (load-independent-ish). */
  cpuPerGB?: number;
}

async function iperf(client: Netns, server: Netns, dst: string, reverse: boolean): Promise<Iperf> {
  const port = String(5201 + Math.floor(Math.random() * 500));
  const srv = server.spawn(["iperf3", "-s", "-1", "--forceflush", "-p", port]);
  await srv.waitFor(/listening/i, 10_000);
  const args = ["iperf3", "-c", dst, "-p", port, "-n", String(BYTES), "-J"];
  if (reverse) args.push("-R");
  const r = await client.exec(args, { allowFail: true });
  await srv.stop("SIGTERM", 3000);
  const j = JSON.parse(r.stdout);
  assert.ok(j.end?.sum_received, `iperf3: ${r.stdout.slice(0, 2000)} ${r.stderr}`);
  return {
    mbps: j.end.sum_received.bits_per_second / 1e6,
    sent: j.end.sum_sent.bytes,
    received: j.end.sum_received.bytes,
    retransmits: j.end.sum_sent.retransmits ?? 0,
  };
}

/** utime + stime of a process, seconds (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const st = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  const hz = 100; // USER_HZ on Linux
  return (Number(f[11]) + Number(f[12])) / hz;
}

/** CPU seconds both drivers (MN and HA data paths) spent during `fn`. */
async function withCpu<T>(L: FullLab, fn: () => Promise<T>): Promise<[T, number]> {
  const pids = [L.mnDriver.child.pid, L.haDriver.child.pid];
  const a = pids.map(cpuSeconds);
  const r = await fn();
  const b = pids.map(cpuSeconds);
  return [r, b[0] - a[0] + b[1] - a[1]];
}

async function measure(L: FullLab): Promise<{ up: Iperf; down: Iperf }> {
  // Warm-up: ND, PMTU (the guest learns 1460 from the PTB), then the measured transfers.
  await L.vm.exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", ADDR.cn], { allowFail: true });
  await L.vm.exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1452", ADDR.cn], {
    allowFail: true,
  });
  await L.cn.exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1452", ADDR.hoa], {
    allowFail: true,
  });
  const [up, upCpu] = await withCpu(L, () => iperf(L.vm, L.cn, ADDR.cn, false));
  const [down, downCpu] = await withCpu(L, () => iperf(L.vm, L.cn, ADDR.cn, true));
  up.cpuPerGB = upCpu / (up.sent / 1e9);
  down.cpuPerGB = downCpu / (down.sent / 1e9);
  return { up, down };
}

function line(name: string, r: { up: Iperf; down: Iperf }): string {
  const f = (x: Iperf) =>
    `${x.mbps.toFixed(0).padStart(5)} Mbit/s, ${
      x.cpuPerGB?.toFixed(1)
    } CPU s/GB (${x.retransmits} retr)`;
  return `${name.padEnd(8)} vm → cn ${f(r.up)}   cn → vm ${f(r.down)}`;
}

Deno.test({
  name: "throughput: 64 MiB each way through MN + HA data paths, plain vs offload (printed)",
  ignore: needs(["ip", "ping", "iperf3"], { root: true }),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await TempDir.create();
    const results: Array<[string, { up: Iperf; down: Iperf }]> = [];
    for (const vnetHdr of [false, true]) {
      await using lab = new Lab();
      const L = await buildFullLab(lab, tmp, { vnetHdr, tag: vnetHdr ? "o" : "p" });
      const before = await readCounters(L.mnDriver, L.mnCtl);
      const haBefore = await readCounters(L.haDriver, L.haCtl);
      const r = await measure(L);
      for (const x of [r.up, r.down]) {
        assert.ok(x.sent >= BYTES && x.received >= 0.9 * BYTES, JSON.stringify(x));
      }
      const mn = await readCounters(L.mnDriver, L.mnCtl);
      const ha = await readCounters(L.haDriver, L.haCtl);
      const d = (a: Record<string, number>, b: Record<string, number>, k: string) =>
        (b[k] ?? 0) - (a[k] ?? 0);
      if (vnetHdr) {
        assert.ok(d(before, mn, "tunnel_tx_gso_split") > 0, JSON.stringify(mn));
        assert.ok(d(haBefore, ha, "tunnel_tx_gso_split") > 0, JSON.stringify(ha));
        assert.ok(d(before, mn, "tunnel_rx_coalesced") > 0, JSON.stringify(mn));
        assert.ok(d(haBefore, ha, "tunnel_rx_coalesced") > 0, JSON.stringify(ha));
      }
      assert.equal(d(before, mn, "tunnel_malformed") + d(haBefore, ha, "tunnel_malformed"), 0);
      results.push([vnetHdr ? "offload" : "plain", r]);
      console.log(line(results.at(-1)![0], r));
      for (const p of [L.mnDriver, L.haDriver]) await p.stop("SIGTERM", 10_000);
    }
    console.log(`\n${results.map(([n, r]) => line(n, r)).join("\n")}\n`);
  },
});
