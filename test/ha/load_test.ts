/**
 * `kagemusha ha` under a burst of signaling (RFC 6275 §10.3.1): 1,000 mobile nodes played by
 * the bench's load generator (`test/bench/bu_load.ts`, its own codec-free BU builder and BA
 * peek) register, refresh, then replay a stale sequence number. Checks what the batching
 * (recvmmsg, rtnetlink batches of 64, sendmmsg rings of 64) must not lose: every BU answered
 * with the right status, one route per HoA in the kernel and none after shutdown, every
 * registration counted, and the binding-change log lines folded into a summary.
 */

import assert from "node:assert/strict";
import { needs } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { COA, eventually, HA, haStatus, haTopology, kernelState, startHa, TUN } from "./ha_lab.ts";

const GEN = new URL("../bench/bu_load.ts", import.meta.url).pathname;
const COUNT = 1000;

Deno.test({
  name: "ha e2e: 1,000 mobile nodes register, refresh and replay at full rate",
  ignore: needs(["ip"], { root: true }),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    const ha = await startHa(t, ["--dad", "optimistic", "--log-level", "info"]);
    const load = async (phase: string, seq: number) => {
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
        "2001:db8:2000::1:0",
        "--count",
        String(COUNT),
        "--window",
        "256",
        "--seq",
        String(seq),
        "--phase",
        phase,
        "--deadline-s",
        "20",
      ]);
      const p = JSON.parse(r.stdout);
      console.log(
        `${phase}: ${p.completed} in ${p.seconds.toFixed(2)} s = ${Math.round(p.rate)}/s`,
      );
      return p as { completed: number; statuses: Record<string, number>; retransmits: number };
    };

    const first = await load("first", 100);
    assert.deepEqual(first.statuses, { "0": COUNT }, ha.stderr.slice(-2000));
    let k = await kernelState(t.ha);
    assert.equal(k.hoaRoutes.length, COUNT);
    assert.ok(k.hoaRoutes.every((r) => r.dev === TUN));
    assert.deepEqual(k.proxies, [], "proxy ND is in userland: no kernel entry per binding");
    let st = await haStatus(t);
    assert.equal(st.bindings.length, COUNT);
    assert.equal(st.counters.bindings_registered, COUNT);
    // one unsolicited NA per registration at once, two repeats a second apart (RFC 4861 §7.2.6)
    assert.ok(st.counters.unsolicited_na_sent >= COUNT, `${st.counters.unsolicited_na_sent}`);
    assert.equal(st.counters.dad_probes_sent, COUNT);
    assert.equal(st.counters.ba_status_0, COUNT + first.retransmits);

    const refresh = await load("refresh", 1000);
    assert.deepEqual(refresh.statuses, { "0": COUNT });
    st = await haStatus(t);
    assert.ok(st.counters.bindings_refreshed >= COUNT);
    assert.ok(st.bindings.every((b) => b.sequence >= 1000 && b.careOfAddress === COA));

    // the same sequence numbers again: 135 with the last accepted one (RFC 6275 §9.5.1)
    const stale = await load("stale", 1000);
    assert.deepEqual(stale.statuses, { "135": COUNT });
    assert.equal((await haStatus(t)).bindings.length, COUNT);
    assert.ok(
      await eventually(
        async () => (await haStatus(t)).counters.unsolicited_na_sent === 3 * COUNT,
        5000,
      ),
      "three unsolicited NAs per registration",
    );

    assert.equal((await ha.stop()).code, 0, ha.stderr.slice(-2000));
    k = await kernelState(t.ha);
    assert.deepEqual(k.hoaRoutes, [], "every route removed at shutdown");
    assert.ok(!k.links.includes(TUN));
    // a few registrations are logged one by one, the rest summarised (counted all the same)
    const oneByOne = ha.stderr.match(/registered 2001:db8:2000::1:/g)?.length ?? 0;
    assert.ok(oneByOne > 0 && oneByOne <= 20, `${oneByOne} registration lines`);
    assert.match(
      ha.stderr,
      new RegExp(`binding changes not logged one by one.*${COUNT - oneByOne} registered`),
    );
    // rejections are rate-limited too
    assert.ok((ha.stderr.match(/rejected \(135\)/g)?.length ?? 0) <= 10);
    await Deno.remove(t.dir, { recursive: true });
  },
});
