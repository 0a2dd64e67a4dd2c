/**
 * Home-agent signaling load generator: plays `count` mobile nodes from one care-of address,
 * sending each a home-registration Binding Update (RFC 6275 §11.7.1) with a bounded window of
 * BUs outstanding, and counts the Binding Acknowledgements (§10.3.1) on a raw IPPROTO_ROUTING
 * socket (the BA arrives behind a type 2 routing header, which a kernel without MIP6 would
 * otherwise drop). Prints one JSON {@linkcode LoadPhase} on stdout.
 *
 * Run inside the generator's namespace (the bench does it):
 *
 * ```sh
 * deno run -A test/bench/bu_load.ts --coa 2001:db8:5000::3 --ha 2001:db8:2000::1 \
 *   --base 2001:db8:2000::1:0 --count 10000 --seq 100 --phase first
 * ```
 *
 * BUs are sent whole (IPv6 header included) on an IPPROTO_RAW socket. A BU unanswered after
 * `--timeout-ms` is sent again with the next sequence number, the timeout doubling each time
 * as a mobile node's would (RFC 6275 §11.8: InitialBindackTimeoutFirstReg 1.5 s, then ×2). A
 * BA answering any of the sequence numbers sent for a home address completes it. The phase
 * ends when every home address is answered or after `--deadline-s`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { RawSocket6, RecvRing } from "../../ffi/raw_socket.ts";
import { Poller } from "../../ffi/poll.ts";
import { parseIPv6 } from "../../src/wire/addr.ts";
import { bindingUpdate, hoaText, type LoadPhase, peekBindingAck } from "./signaling.ts";
import { percentile } from "./stats.ts";
import { cpuSeconds } from "./proc.ts";

const IPPROTO_RAW = 255;
const IPPROTO_ROUTING = 43;

const { values: a } = parseArgs({
  options: {
    coa: { type: "string" },
    ha: { type: "string" },
    base: { type: "string", default: "2001:db8:2000::1:0" },
    count: { type: "string", default: "10000" },
    window: { type: "string", default: "128" },
    seq: { type: "string", default: "100" },
    lifetime: { type: "string", default: "600" },
    "timeout-ms": { type: "string", default: "1500" },
    "deadline-s": { type: "string", default: "30" },
    phase: { type: "string", default: "first" },
  },
});
if (!a.coa || !a.ha) {
  console.error("bu_load: --coa and --ha are required");
  Deno.exit(2);
}
const coa = a.coa, ha = a.ha;
const count = Number(a.count), window = Number(a.window), seq0 = Number(a.seq);
const timeoutMs = Number(a["timeout-ms"]), deadlineMs = Number(a["deadline-s"]) * 1000;
const lifetime = Number(a.lifetime);
const base = parseIPv6(a.base);

const hoas = Array.from({ length: count }, (_, i) => hoaText(a.base, i));
const build = (i: number, seq: number) =>
  bindingUpdate({
    careOf: coa,
    homeAgent: ha,
    homeAddress: hoas[i],
    sequence: seq,
    lifetimeSeconds: lifetime,
  });
const packets = hoas.map((_, i) => build(i, seq0));

using tx = RawSocket6.open(IPPROTO_RAW);
using rx = RawSocket6.open(IPPROTO_ROUTING, { nonblocking: true });
rx.setBufferSizes({ rcv: 8 << 20 });
tx.setBufferSizes({ snd: 4 << 20 });
const ring = new RecvRing(64, 2048);
const poller = new Poller([rx.fd]);

const seq = new Uint16Array(count).fill(seq0 & 0xffff);
const sentAt = new Float64Array(count);
const state = new Uint8Array(count); // 0 not sent, 1 outstanding, 2 answered
const retried = new Uint8Array(count);
const timeout = new Float64Array(count).fill(timeoutMs);
// the outstanding BUs (at most `window`): a dense list scanned for timeouts every 10 ms
const live = new Int32Array(window);
const liveAt = new Int32Array(count).fill(-1);
let lastScan = 0;
const latencies: number[] = [];
const statuses: Record<string, number> = {};
let next = 0, outstanding = 0, completed = 0, accepted = 0, retransmits = 0, maxWindow = 0;

const cpu0 = cpuSeconds(Deno.pid);
const t0 = performance.now();
let tLast = t0;
for (;;) {
  let now = performance.now();
  while (outstanding < window && next < count) {
    const i = next++;
    tx.sendRaw(packets[i], ha);
    sentAt[i] = now;
    state[i] = 1;
    live[outstanding] = i;
    liveAt[i] = outstanding++;
  }
  if (outstanding > maxWindow) maxWindow = outstanding;
  if (now - lastScan >= 10) {
    lastScan = now;
    for (let k = 0; k < outstanding; k++) {
      const i = live[k];
      if (now - sentAt[i] < timeout[i]) continue;
      seq[i] = (seq[i] + 1) & 0xffff;
      timeout[i] = Math.min(timeout[i] * 2, 32_000);
      tx.sendRaw(build(i, seq[i]), ha);
      retransmits++;
      retried[i] = 1;
      sentAt[i] = now;
    }
  }
  if (completed === count || now - t0 > deadlineMs) break;
  if (poller.wait(outstanding > 0 ? 5 : 0) === 0) continue;
  const n = rx.recvBatch(ring);
  now = performance.now();
  for (let k = 0; k < n; k++) {
    const p = peekBindingAck(ring.buffers[k], ring.length(k), base);
    if (p === null || p.index >= count || state[p.index] !== 1) continue;
    const i = p.index;
    // any sequence number sent for this HoA completes it; status 135 carries the HA's last
    // accepted sequence number, not ours
    if (((p.sequence - seq0) & 0xffff) > ((seq[i] - seq0) & 0xffff) && p.status !== 135) {
      continue;
    }
    state[i] = 2;
    // remove i from the live list: move the last entry into its place
    const at = liveAt[i], last = live[--outstanding];
    live[at] = last;
    liveAt[last] = at;
    liveAt[i] = -1;
    completed++;
    if (p.status < 128) accepted++;
    statuses[p.status] = (statuses[p.status] ?? 0) + 1;
    if (!retried[i]) latencies.push(now - sentAt[i]);
    tLast = now;
  }
}

latencies.sort((x, y) => x - y);
const seconds = (tLast - t0) / 1000;
const result: LoadPhase = {
  name: a.phase,
  count,
  completed,
  accepted,
  seconds,
  rate: seconds > 0 ? completed / seconds : 0,
  retransmits,
  statuses,
  latencyMs: {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.length ? latencies[latencies.length - 1] : NaN,
  },
  window: maxWindow,
  generatorCpuSeconds: cpuSeconds(Deno.pid) - cpu0,
};
console.log(JSON.stringify(result));
