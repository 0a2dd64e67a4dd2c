/**
 * Unit tests of the benchmark's pure helpers (statistics, parsers of ping / iperf3 / /proc
 * output, the load generator's packets, target evaluation). The benchmark itself is not part
 * of `deno task test`.
 */
import assert from "node:assert/strict";
import {
  cpuSecondsPerGB,
  parseIperf3,
  parsePing,
  parseProcStat,
  parseProcStatus,
  percentile,
  summarizeRtts,
} from "./stats.ts";
import { childrenOf, cpuSeconds, readMemory, readStat, resolveExecPid } from "./proc.ts";
import { bindingUpdate, hoaText, peekBindingAck } from "./signaling.ts";
import { combineRounds, evaluateTargets, markdown, median, type PathResult } from "./report.ts";
import { bindingStates, manyVmConfig } from "./daemons.ts";
import { parseIPv6 } from "../../src/wire/addr.ts";
import { buildBindingAck, parsePacket } from "../../src/wire/packet.ts";
import { loadMnConfig } from "../../src/config/load.ts";

// iputils ping, captured on this machine: its own summary line is the oracle for our maths.
const PING = `PING ::1(::1) 56 data bytes
64 bytes from ::1: icmp_seq=1 ttl=64 time=0.095 ms
64 bytes from ::1: icmp_seq=2 ttl=64 time=0.028 ms
64 bytes from ::1: icmp_seq=3 ttl=64 time=0.034 ms
64 bytes from ::1: icmp_seq=4 ttl=64 time=0.034 ms
64 bytes from ::1: icmp_seq=5 ttl=64 time=0.037 ms
64 bytes from ::1: icmp_seq=6 ttl=64 time=0.037 ms
64 bytes from ::1: icmp_seq=7 ttl=64 time=0.037 ms
64 bytes from ::1: icmp_seq=8 ttl=64 time=0.037 ms

--- ::1 ping statistics ---
8 packets transmitted, 8 received, 0% packet loss, time 113ms
rtt min/avg/max/mdev = 0.028/0.042/0.095/0.020 ms
`;

Deno.test("bench/stats: ping output parsed; avg and mdev agree with ping's own summary", () => {
  const p = parsePing(PING);
  assert.equal(p.transmitted, 8);
  assert.equal(p.received, 8);
  assert.deepEqual(p.rtts, [0.095, 0.028, 0.034, 0.034, 0.037, 0.037, 0.037, 0.037]);
  const s = summarizeRtts(p.rtts);
  const [min, avg, max, mdev] = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(PING)!
    .slice(1).map(Number);
  assert.equal(s.min, min);
  assert.equal(s.max, max);
  assert.ok(Math.abs(s.avg - avg) < 0.0005, `avg ${s.avg} vs ping ${avg}`);
  assert.ok(Math.abs(s.mdev - mdev) < 0.0005, `mdev ${s.mdev} vs ping ${mdev}`);
  // consecutive differences: .067 .006 0 .003 0 0 0 → mean 0.076/7
  assert.ok(Math.abs(s.ipdv - 0.076 / 7) < 1e-9);
  assert.equal(s.p99, 0.095);
  assert.equal(s.p50, 0.037); // sorted: .028 .034 .034 [.037] …
});

Deno.test("bench/stats: ping duplicates and losses", () => {
  const text = `64 bytes from x: icmp_seq=1 ttl=64 time=1.00 ms
64 bytes from x: icmp_seq=1 ttl=64 time=1.50 ms (DUP!)
64 bytes from x: icmp_seq=3 ttl=64 time=2.00 ms
5 packets transmitted, 2 received, +1 duplicates, 60% packet loss, time 4ms`;
  const p = parsePing(text);
  assert.deepEqual(p.rtts, [1, 2]);
  assert.equal(p.transmitted, 5);
  assert.equal(p.received, 2);
  assert.throws(() => parsePing("ping: connect: Network is unreachable"), /no totals/);
  assert.throws(() => summarizeRtts([]), /no RTT samples/);
});

Deno.test("bench/stats: nearest-rank percentiles", () => {
  const xs = Array.from({ length: 200 }, (_, i) => i + 1); // 1…200
  assert.equal(percentile(xs, 99), 198);
  assert.equal(percentile(xs, 50), 100);
  assert.equal(percentile(xs, 100), 200);
  assert.equal(percentile(xs, 0), 1);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

Deno.test("bench/stats: iperf3 -J receiver totals, errors", () => {
  const doc = {
    start: { test_start: { reverse: 1 } },
    end: {
      sum_sent: { bytes: 1_000_100, bits_per_second: 1.6e6, retransmits: 3 },
      sum_received: {
        start: 0,
        end: 5.0001,
        seconds: 5.0001,
        bytes: 1_000_000,
        bits_per_second: 1.6e6,
      },
    },
  };
  const r = parseIperf3(JSON.stringify(doc));
  assert.equal(r.bytes, 1_000_000);
  assert.equal(r.bitsPerSecond, 1.6e6);
  assert.equal(r.retransmits, 3);
  assert.equal(r.reverse, true);
  assert.throws(
    () => parseIperf3(JSON.stringify({ error: "unable to connect to server" })),
    /iperf3: unable to connect/,
  );
  assert.throws(() => parseIperf3("iperf3: error"), /did not print JSON/);
  assert.throws(() => parseIperf3("{}"), /sum_received/);
});

Deno.test("bench/stats: /proc/<pid>/stat with a hostile comm, /proc/<pid>/status", () => {
  const line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 567 0 0 20 0 7 0 " +
    "100 2000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  const s = parseProcStat(line);
  assert.equal(s.pid, 4242);
  assert.equal(s.comm, "a) b (c)");
  assert.equal(s.state, "S");
  assert.equal(s.ppid, 1);
  assert.equal(s.utime, 1234);
  assert.equal(s.stime, 567);
  assert.equal(s.numThreads, 7);
  assert.throws(() => parseProcStat("garbage"), /not a \/proc/);
  const status = "Name:\tdeno\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
  const mem = parseProcStatus(status);
  assert.equal(mem.vmRssKb, 40960);
  assert.equal(mem.vmHwmKb, 51200);
  assert.ok(Number.isNaN(mem.rssAnonKb)); // old kernels: absent, not an error
  const split = parseProcStatus(status + "RssAnon:\t   30000 kB\nRssFile:\t   10960 kB\n");
  assert.equal(split.rssAnonKb, 30000);
  assert.equal(split.rssFileKb, 10960);
  assert.throws(() => parseProcStatus("Name:\tkthreadd\n"), /no VmRSS/);
  assert.equal(cpuSecondsPerGB(3, 2e9), 1.5);
  assert.ok(Number.isNaN(cpuSecondsPerGB(1, 0)));
});

Deno.test("bench/proc: this process, read from the real /proc", async () => {
  const st = readStat(Deno.pid);
  assert.equal(st.pid, Deno.pid);
  assert.ok(st.numThreads >= 1);
  // burn a little CPU: utime+stime must not go backwards and must be finite
  const a = cpuSeconds(Deno.pid);
  let x = 0;
  for (let i = 0; i < 2e7; i++) x += i % 7;
  assert.ok(x > 0);
  assert.ok(cpuSeconds(Deno.pid) >= a);
  const m = readMemory(Deno.pid);
  assert.ok(m.vmRssKb > 1000 && m.vmHwmKb >= m.vmRssKb);
  assert.equal(await resolveExecPid(Deno.pid), Deno.pid); // not an `ip` process
  // a child shows up under /proc/<pid>/task/*/children
  const child = new Deno.Command("sleep", { args: ["5"] }).spawn();
  try {
    assert.ok(childrenOf(Deno.pid).includes(child.pid));
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

Deno.test("bench/signaling: BUs parse back with HAO, A+H and the Alternate CoA", () => {
  assert.equal(hoaText("2001:db8:2000::1:0", 0x1234), "2001:db8:2000::1:1234");
  assert.throws(() => hoaText("2001:db8::", 70000), RangeError);
  const pkt = bindingUpdate({
    careOf: "2001:db8:5000::3",
    homeAgent: "2001:db8:2000::1",
    homeAddress: "2001:db8:2000::1:2a",
    sequence: 65537,
    lifetimeSeconds: 600,
  });
  const p = parsePacket(pkt);
  assert.ok(p.ok, JSON.stringify(p));
  assert.equal(p.value.ipv6.src, "2001:db8:5000::3");
  assert.equal(p.value.homeAddress, "2001:db8:2000::1:2a");
  const mh = p.value.mh;
  assert.ok(mh?.type === "bu");
  assert.equal(mh.sequence, 1);
  assert.equal(mh.lifetime, 150);
  assert.ok(mh.flags.ack && mh.flags.home && !mh.flags.key);
  assert.deepEqual(mh.options, [{ type: "altCoa", address: "2001:db8:5000::3" }]);
});

Deno.test("bench/signaling: BA peek from a raw routing socket's data and from a whole packet", () => {
  const base = parseIPv6("2001:db8:2000::1:0");
  const ba = buildBindingAck({
    homeAgent: "2001:db8:2000::1",
    careOf: "2001:db8:5000::3",
    homeAddress: "2001:db8:2000::1:2a",
    ba: {
      status: 135,
      flags: { key: false, mobileRouter: false, proxy: false },
      sequence: 0xbeef,
      lifetime: 150,
      options: [],
    },
  });
  const want = { index: 0x2a, status: 135, sequence: 0xbeef, lifetime: 150 };
  const fromRh = ba.slice(40);
  assert.deepEqual(peekBindingAck(fromRh, fromRh.length, base), want);
  assert.deepEqual(peekBindingAck(ba, ba.length, base), want);
  // outside the /112, truncated, or not a BA
  assert.equal(peekBindingAck(fromRh, fromRh.length, parseIPv6("2001:db8:2000::2:0")), null);
  assert.equal(peekBindingAck(fromRh, 30, base), null);
  const notBa = fromRh.slice();
  notBa[24 + 2] = 5;
  assert.equal(peekBindingAck(notBa, notBa.length, base), null);
});

Deno.test("bench/daemons: the many-VM config is accepted by the real config loader", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/mn.json`;
    const cfg = manyVmConfig(100, { control: `${dir}/c.sock`, stateDir: `${dir}/s` });
    await Deno.writeTextFile(file, JSON.stringify(cfg));
    const c = loadMnConfig({ config: file });
    assert.equal(c.vms.length, 100);
    assert.equal(c.vms[0].homeAddress, "2001:db8:2000::1000");
    assert.equal(c.vms[99].homeAddress, "2001:db8:2000::1063");
    assert.equal(c.vms[99].vmMac, "52:54:00:01:00:63");
    assert.equal(c.vms[99].tap, "kgm99");
    assert.equal(new Set(c.vms.map((v) => v.vmMac)).size, 100);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(
    bindingStates({ bindings: [{ state: "registered" }, { status: "pending" }, {}] }),
    ["registered", "pending", "?"],
  );
  assert.deepEqual(bindingStates(null), []);
});

Deno.test("bench/report: targets met and missed, with margins", () => {
  const path = (label: string, up: number, down: number, rtt: number): PathResult => ({
    label,
    up: { mbps: up, bytes: 1, seconds: 5, retransmits: 0 },
    down: { mbps: down, bytes: 1, seconds: 5, retransmits: 0 },
    rtt: {
      count: 1,
      min: rtt,
      avg: rtt,
      max: rtt,
      p50: rtt,
      p99: rtt,
      mdev: 0,
      ipdv: 0,
      sent: 1,
      lost: 0,
    },
  });
  const res = {
    paths: {
      direct: path("direct", 10000, 10000, 0.02),
      openvpn: path("openvpn", 500, 400, 0.12),
      kagemusha: path("kgm", 2500, 1000, 0.06),
    },
    memory: {
      oneVm: { idleVmRssKb: 30 * 1024, vmRssKb: 40 * 1024, vmHwmKb: 50 * 1024, note: "" },
      hundredVms: {
        vms: 100,
        registered: 100,
        vmRssKb: 1,
        vmHwmKb: 120 * 1024,
        registerSeconds: 1,
      },
    },
    signaling: {
      hoas: 10,
      window: 4,
      phases: [{
        name: "first",
        count: 10,
        completed: 10,
        accepted: 10,
        seconds: 0.0005,
        rate: 20000,
        retransmits: 0,
        statuses: { "0": 10 },
        latencyMs: { p50: 0.1, p99: 0.2, max: 0.3 },
        window: 4,
      }],
    },
  };
  const t = evaluateTargets(res);
  const by = (name: string) => t.find((x) => x.target.startsWith(name))!;
  assert.equal(by("throughput VM → cn").met, true); // 5×
  assert.match(by("throughput VM → cn").margin, /25 % above/);
  assert.equal(by("throughput cn → VM").met, false); // 2.5×
  assert.match(by("throughput cn → VM").margin, /38 % short/);
  assert.equal(by("added RTT, first pings").met, true); // 0.04 vs 0.10 → 0.4
  assert.equal(by("added RTT, after traffic").met, null); // no pings after the rounds
  const after = (p: PathResult, avg: number): PathResult => ({
    ...p,
    rttAfter: { ...p.rtt!, avg },
  });
  const hot = evaluateTargets({
    ...res,
    paths: {
      direct: after(res.paths.direct, 0.02),
      openvpn: after(res.paths.openvpn, 0.12),
      kagemusha: after(res.paths.kagemusha, 0.09), // 0.07 vs 0.10 → 0.7
    },
  });
  const hotRtt = hot.find((x) => x.target === "added RTT, after traffic")!;
  assert.equal(hotRtt.met, false);
  assert.match(hotRtt.measured, /0\.70 of OpenVPN's/);
  assert.equal(by("mn RSS, 1 VM").met, true);
  assert.equal(by("mn RSS, 100 VMs").met, false);
  assert.match(by("mn RSS, 100 VMs").margin, /25 % over/);
  assert.equal(by("HA signaling").met, true);
  const md = markdown({
    ...res,
    date: "d",
    machine: { cpus: 2, kernel: "k", deno: "v", clkTck: 100, loadavg: [0, 0, 0] },
    settings: { iperfSeconds: 5, rounds: 3, pings: 500, pingIntervalMs: 5 },
    targets: t,
    seconds: 1,
  });
  assert.match(md, /\| kgm \| 2,500 \| 1,000 \|/);
  assert.match(md, /\| OpenVPN \| 5\.00× \| 2\.50× \|/);
  assert.match(md, /\*\*missed\*\*/);
  // a section that did not run is "not measured", never met
  const none = evaluateTargets({
    paths: {
      direct: { label: "d" },
      openvpn: { label: "o" },
      kagemusha: { label: "k", error: "x" },
    },
    memory: {},
    signaling: { hoas: 0, window: 0, phases: [] },
  });
  assert.ok(none.every((x) => x.met === null));
});

Deno.test("bench/report: rounds combine to the median throughput and summed CPU", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const d = (mbps: number, cpu: number) => ({
    mbps,
    bytes: 1e9,
    seconds: 5,
    wallSeconds: 5,
    retransmits: 1,
    cpuSeconds: cpu,
  });
  const c = combineRounds([d(300, 1), d(900, 2), d(600, 3)])!;
  assert.equal(c.mbps, 600);
  assert.deepEqual(c.rounds, [300, 900, 600]);
  assert.equal(c.bytes, 3e9);
  assert.equal(c.retransmits, 3);
  assert.equal(c.cpuSeconds, 6);
  assert.equal(c.cpuPerGB, 2);
  assert.equal(c.cpuPercent, 40); // 6 s over 15 s
  assert.equal(combineRounds([]), undefined);
  const direct = combineRounds([{ mbps: 1, bytes: 1, seconds: 1, retransmits: null }])!;
  assert.equal(direct.cpuSeconds, undefined);
  assert.equal(direct.retransmits, null);
});
