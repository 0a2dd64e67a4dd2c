/**
 * Home agent signaling load with ESP (root): `--count` mobile nodes, each with its own AES-GCM
 * SA pair in the home agent's `--config`, register (protected BU → protected BA) then refresh,
 * with at most `--window` BUs outstanding. Prints one JSON line: rates, the home agent's CPU
 * per BU, and the BA statuses (every BA decrypted after the timed part).
 *
 * ```sh
 * deno run -A test/ha/esp_load.ts [--count 2000] [--window 64]
 * ```
 *
 * Not a test: a measuring tool. The generator runs in the mobile node's namespace (this script
 * with `--gen`); the protected BUs are built before the clock starts.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Poller } from "../../ffi/poll.ts";
import { RawSocket6, RecvRing } from "../../ffi/raw_socket.ts";
import type { EspSaConfig } from "../../src/ipsec/config.ts";
import { buildProtectedBindingUpdate, unprotectMobility } from "../../src/ipsec/packets.ts";
import { SecurityAssociation, SecurityAssociationDatabase } from "../../src/ipsec/sa.ts";
import { formatIPv6 } from "../../src/wire/addr.ts";
import { homeBu } from "../../src/wire/test_util.ts";
import { Lab } from "../helpers/netns.ts";
import { COA, HA, haStatus, haTopology, startHa } from "./ha_lab.ts";

const { values: a } = parseArgs({
  options: {
    count: { type: "string", default: "2000" },
    window: { type: "string", default: "64" },
    gen: { type: "boolean", default: false },
    config: { type: "string" },
    seq: { type: "string", default: "100" },
    "esp-seq": { type: "string", default: "1" },
  },
});

const count = Number(a.count);

function hoa(i: number): string {
  return `2001:db8:2000::1:${i.toString(16)}`;
}

function pair(i: number): { homeAddress: string; bu: EspSaConfig; ba: EspSaConfig } {
  const k = (tag: number) => (i * 4 + tag).toString(16).padStart(8, "0").repeat(5);
  return {
    homeAddress: hoa(i),
    bu: { spi: 0x10000 + 2 * i, algorithm: "aes-gcm-128", key: k(1) },
    ba: { spi: 0x10001 + 2 * i, algorithm: "aes-gcm-128", key: k(2) },
  };
}

async function generate(): Promise<void> {
  const seq = Number(a.seq), espSeq = Number(a["esp-seq"]);
  const sad = new SecurityAssociationDatabase();
  const packets: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const p = pair(i);
    const b = { homeAddress: p.homeAddress, homeAgent: HA };
    const out = new SecurityAssociation(p.bu, { ...b, direction: "outbound" });
    out.importState({ spi: p.bu.spi, direction: "outbound", sequence: espSeq - 1 });
    sad.add(out);
    sad.add(new SecurityAssociation(p.ba, { ...b, direction: "inbound" }));
    packets.push(
      await buildProtectedBindingUpdate(out, {
        careOf: COA,
        homeAgent: HA,
        homeAddress: p.homeAddress,
        bu: homeBu(seq, 150, COA),
      }),
    );
  }
  using tx = RawSocket6.open(255);
  using rx = RawSocket6.open(43, { nonblocking: true });
  rx.setBufferSizes({ rcv: 8 << 20 });
  const ring = new RecvRing(64, 2048);
  const poller = new Poller([rx.fd]);
  const answered = new Uint8Array(count);
  const got: Uint8Array[] = [];
  let next = 0, outstanding = 0, done = 0;
  const t0 = performance.now();
  let tLast = t0;
  while (done < count && performance.now() - t0 < 30_000) {
    while (outstanding < Number(a.window) && next < count) {
      tx.sendRaw(packets[next++], HA);
      outstanding++;
    }
    if (poller.wait(5) === 0) continue;
    const n = rx.recvBatch(ring);
    for (let k = 0; k < n; k++) {
      const d = ring.buffers[k].subarray(0, ring.length(k));
      // RH2 (24) + ESP; the home address's last two octets index the mobile node
      if (d.length < 24 || d[2] !== 2 || d[0] !== 50) continue;
      const i = (d[22] << 8) | d[23]; // 2001:db8:2000::1:<i>
      if (i >= count || answered[i]) continue;
      answered[i] = 1;
      outstanding--;
      done++;
      got.push(d.slice());
      tLast = performance.now();
    }
  }
  const seconds = (tLast - t0) / 1000;
  const statuses: Record<string, number> = {};
  for (const d of got) {
    const home = formatIPv6(d, 8);
    const r = await unprotectMobility(sad, d.subarray(24), {
      src: HA,
      dst: COA,
      rh2: home,
      receiver: "mobileNode",
    });
    const key = r.ok && r.value.mh.type === "ba"
      ? String(r.value.mh.status)
      : `esp_${!r.ok && r.kind}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
  }
  console.log(JSON.stringify({ completed: done, seconds, rate: done / seconds, statuses }));
}

function cpuSeconds(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function realPid(pid: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    if (Deno.readTextFileSync(`/proc/${pid}/comm`).trim() !== "ip") return pid;
    const kids = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim();
    if (kids !== "") return realPid(Number(kids.split(/\s+/)[0]));
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no deno process under ip netns exec");
}

async function orchestrate(): Promise<void> {
  await using lab = new Lab();
  const t = await haTopology(lab);
  const config = `${t.dir}/ha.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({ esp: Array.from({ length: count }, (_, i) => pair(i)) }),
  );
  const ha = await startHa(t, [
    "--dad",
    "optimistic",
    "--config",
    config,
    "--log-level",
    "info",
    "--max-lifetime",
    "600",
  ]);
  try {
    const pid = await realPid(ha.child.pid);
    const out: Record<string, unknown> = { count, window: Number(a.window) };
    for (const [phase, seq, espSeq] of [["first", 100, 1], ["refresh", 101, 2]] as const) {
      const cpu0 = cpuSeconds(pid);
      const r = await t.mn.exec([
        Deno.execPath(),
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--gen",
        "--count",
        String(count),
        "--window",
        a.window,
        "--seq",
        String(seq),
        "--esp-seq",
        String(espSeq),
      ], { allowFail: true });
      if (r.code !== 0) throw new Error(`generator: ${r.stderr}`);
      const p = JSON.parse(r.stdout);
      out[phase] = {
        rate: Math.round(p.rate),
        completed: p.completed,
        statuses: p.statuses,
        haCpuUsPerBu: Math.round((cpuSeconds(pid) - cpu0) / p.completed * 1e6),
      };
    }
    const st = await haStatus(t);
    out.bindings = st.bindings.length;
    out.espReceived = st.counters.esp_received;
    out.stateWrites = st.counters.state_writes;
    out.reservationWrites = st.counters.esp_reservation_writes;
    console.log(JSON.stringify(out));
  } finally {
    await ha.stop("SIGTERM", 30_000);
  }
}

if (a.gen) await generate();
else await orchestrate();
