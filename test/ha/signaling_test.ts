/**
 * `kagemusha ha` against an independent scapy mobile node (RFC 6275 §9.5, §10.3): BA status 0
 * with a type 2 routing header carrying the HoA, sequence echoed, lifetime clamped; 135 with the
 * last accepted sequence; 133, 132, 134; Binding Errors for an unknown MH type and for a HAO
 * without a binding.
 */

import assert from "node:assert/strict";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab, run } from "../helpers/netns.ts";
import {
  type BindingJson,
  COA,
  HA,
  haStatus,
  haTopology,
  HOA,
  kernelState,
  sendBu,
  startHa,
  TUN,
} from "./ha_lab.ts";
import { ScapyPeer } from "./peer.ts";

const ignore = needs(["ip", PYTHON], { root: true });

interface MhReply {
  kind: "ba" | "be";
  src: string;
  dst: string;
  rh2: { home: string; segleft: number } | null;
  status: number;
  seq: number;
  lifetime: number;
  hoa?: string;
  cksum_ok: boolean;
  latency_ms: number;
}

Deno.test({
  name: "ha e2e: BU/BA with a scapy mobile node (strict DAD): 0, 135, 133, 132, 134, BE",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    // a node on the home link that already owns 2001:db8:2000::20 (DAD must fail for it)
    await t.cn.ip("addr", "add", "2001:db8:2000::20/64", "dev", "eth0", "nodad");
    const [ha, mn] = await Promise.all([
      startHa(t, ["--dad", "strict", "--max-lifetime", "60"]),
      ScapyPeer.start(t.mn),
    ]);
    await using _mn = mn;
    const bu = async (o: Record<string, unknown>) =>
      (await sendBu<{ reply: MhReply | null }>(mn, {
        lifetime: 100,
        timeout: 3,
        ...o,
      })).reply;

    // First registration: BA after the DAD wait; lifetime 100 units clamped to 60 s = 15.
    const first = await bu({ seq: 1000 });
    assert.ok(first, `no BA\n${ha.stderr}`);
    assert.equal(first.kind, "ba");
    assert.equal(first.status, 0);
    assert.equal(first.seq, 1000);
    assert.equal(first.lifetime, 15);
    assert.equal(first.src, HA);
    assert.equal(first.dst, COA);
    assert.deepEqual(first.rh2, { home: HOA, segleft: 1 });
    assert.equal(first.cksum_ok, true, "BA checksum (pseudo-header dst = HoA)");
    assert.ok(first.latency_ms >= 950, `strict DAD: BA after the wait, got ${first.latency_ms} ms`);
    console.log(`BU→BA first registration (strict DAD): ${first.latency_ms.toFixed(1)} ms`);

    // Re-registration: no DAD, BA at once.
    const again = await bu({ seq: 1001 });
    assert.equal(again?.status, 0);
    assert.equal(again?.seq, 1001);
    assert.ok(again!.latency_ms < 500, `re-registration took ${again!.latency_ms} ms`);
    console.log(`BU→BA re-registration: ${again!.latency_ms.toFixed(1)} ms`);

    // Stale sequence numbers: 135 carrying the last accepted one.
    for (const seq of [1001, 1000, 1001 + 32768]) {
      const r = await bu({ seq });
      assert.equal(r?.kind, "ba");
      assert.equal(r?.status, 135, `seq ${seq}`);
      assert.equal(r?.seq, 1001, `seq ${seq}: BA carries the last accepted sequence`);
      assert.equal(r?.lifetime, 0);
    }

    // Deregistration of a home address with no binding: 133.
    const dereg = await bu({ hoa: "2001:db8:2000::11", seq: 5, lifetime: 0 });
    assert.equal(dereg?.status, 133);
    assert.deepEqual(dereg?.rh2, { home: "2001:db8:2000::11", segleft: 1 });

    // Home address outside the home prefix: 132.
    const off = await bu({ hoa: "2001:db8:5000::10", seq: 1 });
    assert.equal(off?.status, 132);

    // A home address someone on the home link already uses: 134 after DAD.
    const taken = await bu({ hoa: "2001:db8:2000::20", seq: 1 });
    assert.equal(taken?.status, 134, `expected DAD failure\n${ha.stderr}`);

    // Unknown MH type: Binding Error status 2 naming the HoA.
    const be = (await mn.request<{ reply: MhReply | null }>("mh_unknown", {
      iface: "eth0",
      coa: COA,
      ha: HA,
      hoa: HOA,
      mh_type: 42,
      timeout: 3,
    })).reply;
    assert.equal(be?.kind, "be");
    assert.equal(be?.status, 2);
    assert.equal(be?.hoa, HOA);
    assert.equal(be?.cksum_ok, true);

    // Another packet with a HAO for a home address with no binding: Binding Error status 1.
    // Error messages go to one source at most once a second (RFC 6275 §9.3.3): wait for it.
    await new Promise((r) => setTimeout(r, 1100));
    const be1 = (await mn.request<{ reply: MhReply | null }>("hao_udp", {
      iface: "eth0",
      coa: COA,
      ha: HA,
      hoa: "2001:db8:2000::77",
      timeout: 3,
    })).reply;
    assert.equal(be1?.kind, "be");
    assert.equal(be1?.status, 1);
    assert.equal(be1?.hoa, "2001:db8:2000::77");

    // A BU whose checksum was computed over the CoA (not the HoA) is dropped and counted.
    const before = await haStatus(t);
    const bad = await bu({ seq: 1002, hao: true, timeout: 1, bad_checksum: true });
    assert.equal(bad, null);

    const st = await haStatus(t);
    assert.equal(st.role, "ha");
    assert.equal(st.bindings.length, 1);
    const b = st.bindings[0];
    assert.equal(b.homeAddress, HOA);
    assert.equal(b.careOfAddress, COA);
    assert.equal(b.sequence, 1001);
    assert.ok(b.lifetimeRemaining > 40 && b.lifetimeRemaining <= 60, `${b.lifetimeRemaining}`);
    assert.equal(st.counters.ba_status_135, 3);
    assert.equal(st.counters.ba_status_133, 1);
    assert.equal(st.counters.ba_status_132, 1);
    assert.equal(st.counters.ba_status_134, 1);
    assert.equal(st.counters.be_sent, 2);
    assert.equal((st.counters.rx_checksum ?? 0) - (before.counters.rx_checksum ?? 0), 1);
    assert.match(ha.stderr, /checksum field checksum/);

    // The same through the CLI: `kagemusha status --control PATH --json`.
    const cli = await run([
      Deno.execPath(),
      "run",
      "-A",
      new URL("../../mod.ts", import.meta.url).pathname,
      "status",
      "--control",
      t.control,
      "--json",
    ]);
    const js = JSON.parse(cli.stdout);
    assert.equal(js.role, "ha");
    assert.deepEqual(
      js.bindings.map((x: BindingJson) => [x.homeAddress, x.careOfAddress, x.sequence]),
      [[HOA, COA, 1001]],
    );
    assert.equal(typeof js.bindings[0].lifetimeRemaining, "number");
    assert.equal(js.counters.ba_status_135, 3);

    const k = await kernelState(t.ha);
    assert.deepEqual(k.hoaRoutes.map((r) => [r.dst, r.dev]), [[HOA, TUN]]);
    // proxy ND is answered in userland (proxy_nd_test.ts): no kernel proxy entry per binding
    assert.deepEqual(k.proxies, []);

    // Deregistration: BA 0, lifetime 0, binding and kernel state gone.
    const bye = await bu({ seq: 1003, lifetime: 0 });
    assert.equal(bye?.status, 0);
    assert.equal(bye?.lifetime, 0);
    assert.equal((await haStatus(t)).bindings.length, 0);
    const k2 = await kernelState(t.ha);
    assert.deepEqual(k2.hoaRoutes, []);
    assert.deepEqual(k2.proxies, []);

    const st2 = await ha.stop("SIGTERM");
    if (Deno.env.get("KGM_TEST_VERBOSE")) console.log(ha.stderr);
    assert.equal(st2.code, 0, ha.stderr);
    await Deno.remove(t.dir, { recursive: true });
  },
});
