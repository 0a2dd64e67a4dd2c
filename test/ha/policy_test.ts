/**
 * `kagemusha ha` refuses what it must, seen from an independent scapy mobile node: a care-of
 * address that would make a tunnel loop (174), R (140), P (152), H clear (dropped), BUs to
 * another address of the host (dropped), reserved anycast home addresses (129), and a bad
 * Payload Proto answered with ICMPv6 Parameter Problem pointing at the field (RFC 6275 §9.2).
 * After the refused loop attempt a ping to the home address still crosses the tunnel once.
 */

import assert from "node:assert/strict";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { COA, HA, HA_FGN, haStatus, haTopology, sendBu, startHa } from "./ha_lab.ts";
import { ScapyPeer } from "./peer.ts";

const ignore = needs(["ip", "ping", PYTHON], { root: true });

interface Reply {
  kind: string;
  status?: number;
  seq?: number;
  code?: number;
  pointer?: number;
  invoking_hex?: string;
  src: string;
}

Deno.test({
  name: "ha e2e: loop-making care-of addresses, R/P/H flags, wrong destination, Parameter Problem",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    const [ha, mn] = await Promise.all([
      startHa(t, ["--dad", "optimistic"]),
      ScapyPeer.start(t.mn),
    ]);
    await using _mn = mn;
    const bu = async (o: Record<string, unknown>) =>
      (await sendBu<{ reply: Reply | null }>(mn, {
        lifetime: 30,
        timeout: 1.5,
        ...o,
      })).reply;

    // C2: the reviewer's two BUs — HoA ::a via CoA ::b, HoA ::b via CoA ::a — are refused
    const a = "2001:db8:2000::a", b = "2001:db8:2000::b";
    assert.equal((await bu({ hoa: a, alt_coa: b, seq: 1 }))?.status, 174);
    assert.equal((await bu({ hoa: b, alt_coa: a, seq: 1 }))?.status, 174);
    // with ::a registered properly, ::b via ::a is still refused
    assert.equal((await bu({ hoa: a, seq: 2 }))?.status, 0);
    assert.equal((await bu({ hoa: b, alt_coa: a, seq: 2 }))?.status, 174);
    // the home agent's own addresses are no care-of addresses
    assert.equal((await bu({ hoa: b, alt_coa: HA_FGN, seq: 3 }))?.status, 174);
    let st = await haStatus(t);
    assert.deepEqual(st.bindings.map((x) => x.homeAddress), [a]);
    assert.equal(st.counters.ba_status_174, 4);

    // one ping to ::a crosses the tunnel once: no packet storm in the data path
    await mn.request("responder_start", { name: "echo", iface: "eth0", coa: COA, ha: HA });
    const before = (await haStatus(t)).counters.tunnel_tx_packets ?? 0;
    const ping = await t.cn.exec(["ping", "-6", "-n", "-c", "1", "-W", "2", a], {
      allowFail: true,
    });
    const tun = await mn.request<{ requests: unknown[]; replies: number }>("responder_stop", {
      name: "echo",
    });
    assert.equal(ping.code, 0, ping.stdout);
    assert.equal(tun.replies, 1);
    await new Promise((r) => setTimeout(r, 300));
    const tx = ((await haStatus(t)).counters.tunnel_tx_packets ?? 0) - before;
    assert.ok(tx >= 1 && tx <= 3, `${tx} packets into the tunnel for one ping`);

    // R (RFC 3963) → 140, P (RFC 5213) → 152; H clear → dropped (no return routability)
    assert.equal((await bu({ flags: "AHR", seq: 10 }))?.status, 140);
    assert.equal((await bu({ flags: "AHP", seq: 11 }))?.status, 152);
    assert.equal(await bu({ flags: "A", seq: 12 }), null);
    // reserved anycast home addresses (RFC 4291 §2.6.1, RFC 2526) → 129
    assert.equal((await bu({ hoa: "2001:db8:2000::", seq: 13 }))?.status, 129);
    assert.equal((await bu({ hoa: "2001:db8:2000:0:fdff:ffff:ffff:ffff", seq: 14 }))?.status, 129);
    // a BU to another address of the host is not the home agent's: dropped
    assert.equal(await bu({ ha: HA_FGN, seq: 15 }), null);
    st = await haStatus(t);
    assert.equal(st.counters.bu_correspondent_discarded, 1);
    assert.equal(st.counters.mh_wrong_destination, 1);

    // Payload Proto 6 instead of 59: ICMPv6 Parameter Problem code 0 at the field, to the CoA
    const pp = await bu({ seq: 16, payload_proto: 6, timeout: 2 });
    assert.ok(pp, `no Parameter Problem\n${ha.stderr}`);
    assert.equal(pp.kind, "param_problem");
    assert.equal(pp.src, HA);
    assert.equal(pp.code, 0);
    // IPv6 header (40) + Destination Options with the HAO (24): Payload Proto at 64
    assert.equal(pp.pointer, 64);
    const inv = pp.invoking_hex!;
    assert.equal(parseInt(inv.slice(64 * 2, 64 * 2 + 2), 16), 6, "the quoted field");
    // a Header Len too short for a BU: pointer at Header Len (65); one second later (the
    // per-source limit of error messages)
    await new Promise((r) => setTimeout(r, 1100));
    const hl = await bu({ seq: 17, header_len: 0, alt_coa: null, timeout: 2 });
    assert.equal(hl?.kind, "param_problem");
    assert.equal(hl?.pointer, 65);
    st = await haStatus(t);
    assert.equal(st.counters.icmp_param_problem_sent, 2);

    assert.equal((await ha.stop()).code, 0, ha.stderr);
    await Deno.remove(t.dir, { recursive: true });
  },
});
