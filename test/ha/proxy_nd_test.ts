/**
 * Proxy Neighbor Discovery by `kagemusha ha` (RFC 6275 §10.4.1), observed from a third
 * namespace on the home link with scapy: the unsolicited NA (O=1, R=0, all-nodes, HA's MAC,
 * three times a second apart) on registration, NS for the HoA answered with the HA's MAC,
 * and neither after deregistration; with the L bit the link-local address is defended too.
 */

import assert from "node:assert/strict";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { CN, HA, haStatus, haTopology, HOA, kernelState, sendBu, startHa } from "./ha_lab.ts";
import { ScapyPeer } from "./peer.ts";

const ignore = needs(["ip", PYTHON], { root: true });

interface Na {
  src: string;
  dst: string;
  hlim?: number;
  target?: string;
  R: number;
  S: number;
  O: number;
  tlla: string | null;
  eth_src: string;
  eth_dst?: string;
  latency_ms?: number;
  t?: number;
}

Deno.test({
  name: "ha e2e: proxy ND seen from the home link (unsolicited NA, NS answered, both stop)",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    const [ha, mn, cn] = await Promise.all([
      startHa(t, ["--dad", "optimistic"]),
      ScapyPeer.start(t.mn),
      ScapyPeer.start(t.cn),
    ]);
    await using _mn = mn;
    await using _cn = cn;
    const bu = (seq: number, lifetime: number) =>
      sendBu<{ reply: { status: number } | null }>(mn, { seq, lifetime });
    const ns = () =>
      cn.request<{ na: Na | null }>("ns", {
        iface: "eth0",
        src: CN,
        src_mac: t.cnMac,
        target: HOA,
        timeout: 1.5,
      });

    // Before registration nobody answers for the HoA.
    assert.equal((await ns()).na, null);

    await cn.request("capture_start", { name: "reg", iface: "eth0" });
    assert.equal((await bu(1, 30)).reply?.status, 0);
    await new Promise((r) => setTimeout(r, 2600));
    const reg = await cn.request<{ na: Na[] }>("capture_stop", { name: "reg" });
    const unsolicited = reg.na.filter((n) => n.target === HOA);
    // MAX_NEIGHBOR_ADVERTISEMENT (3) of them, RetransTimer (1 s) apart (RFC 4861 §7.2.6)
    assert.equal(unsolicited.length, 3, JSON.stringify(reg.na));
    for (let i = 1; i < 3; i++) {
      const gap = unsolicited[i].t! - unsolicited[i - 1].t!;
      assert.ok(gap >= 0.95, `NA ${i} only ${gap.toFixed(3)} s after the one before`);
    }
    for (const u of unsolicited) {
      assert.equal(u.dst, "ff02::1");
      assert.equal(u.hlim, 255);
      assert.equal(u.O, 1, "override flag");
      assert.equal(u.S, 0, "not solicited");
      assert.equal(u.R, 0, "router flag clear: sent for the mobile node (RFC 6275 §10.4.1)");
      assert.equal(u.tlla, t.haMac);
      assert.equal(u.eth_src, t.haMac);
      assert.match(u.src, /^fe80::/);
    }

    // Address resolution for the HoA: answered by the HA (userland proxy ND on its link
    // socket), with the HA's MAC, to the solicitor's link-layer address.
    const answer = (await ns()).na;
    assert.ok(answer, `no NA for ${HOA}\n${ha.stderr}`);
    assert.equal(answer.tlla, t.haMac);
    assert.equal(answer.eth_src, t.haMac);
    assert.equal(answer.eth_dst, t.cnMac);
    assert.equal(answer.hlim, 255);
    assert.equal(answer.S, 1);
    assert.equal(answer.O, 0, "a proxy answer does not override (RFC 4861 §7.2.8)");
    assert.equal(answer.R, 0, "the target is a host");
    assert.equal(answer.dst, CN);
    console.log(`proxy NA latency (NS→NA): ${answer.latency_ms?.toFixed(1)} ms`);

    // A reachability probe (unicast to the HoA, at the HA's MAC, no source link-layer option,
    // RFC 4861 §7.3.1) is answered too: to the frame's source MAC.
    const probe = (await cn.request<{ na: Na | null }>("ns", {
      iface: "eth0",
      src: CN,
      src_mac: t.cnMac,
      target: HOA,
      unicast_mac: t.haMac,
      timeout: 1.5,
    })).na;
    assert.ok(probe, `no NA for a unicast NS\n${ha.stderr}`);
    assert.equal(probe.S, 1);
    assert.equal(probe.dst, CN);
    assert.equal(probe.eth_dst, t.cnMac);
    assert.equal(probe.tlla, t.haMac);

    // Another node's DAD probe for the HoA is defended too (NA to all-nodes), once the HA's
    // own optimistic DAD window is over.
    await new Promise((r) => setTimeout(r, 1000));
    const defended = (await cn.request<{ na: Na | null }>("ns", {
      iface: "eth0",
      src: "::",
      src_mac: t.cnMac,
      target: HOA,
      dad: true,
      timeout: 1.5,
    })).na;
    assert.ok(defended, "DAD probe for a registered HoA must be answered");
    assert.equal(defended.dst, "ff02::1");
    assert.equal(defended.tlla, t.haMac);
    assert.equal((await haStatus(t)).bindings.length, 1, "binding survives the probe");

    // L bit (RFC 6275 §10.3.1): the home agent defends fe80::<interface id of the HoA> too
    const LL_HOA = "2001:db8:2000::20";
    const withL = (seq: number, lifetime: number) =>
      sendBu<{ reply: { status: number } | null }>(mn, {
        hoa: LL_HOA,
        seq,
        lifetime,
        flags: "AHL",
      });
    const nsLl = () =>
      cn.request<{ na: Na | null }>("ns", {
        iface: "eth0",
        src: CN,
        src_mac: t.cnMac,
        target: "fe80::20",
        timeout: 1.5,
      });
    assert.equal((await nsLl()).na, null);
    assert.equal((await withL(1, 30)).reply?.status, 0);
    const llAnswer = (await nsLl()).na;
    assert.ok(llAnswer, `no NA for fe80::20\n${ha.stderr}`);
    assert.equal(llAnswer.tlla, t.haMac);
    assert.equal(llAnswer.R, 0);
    assert.equal((await withL(2, 0)).reply?.status, 0);
    assert.equal((await nsLl()).na, null, "not defended after deregistration");

    // The mobile node returns home (here: the HoA moves to the cn namespace) and deregisters
    // from its home address, without HAO (RFC 6275 §11.5.4): the BU reaches the HA's raw MH
    // socket, the BA comes back without a routing header, and the proxy stops.
    await cn.request("capture_start", { name: "after", iface: "eth0" });
    await t.cn.ip("addr", "add", `${HOA}/64`, "dev", "eth0", "nodad");
    const home = (await cn.request<{
      reply: { kind: string; status: number; seq: number; rh2: unknown; cksum_ok: boolean } | null;
    }>("bu", {
      iface: "eth0",
      coa: HOA,
      ha: HA,
      hoa: HOA,
      hao: false,
      alt_coa: HOA,
      seq: 2,
      lifetime: 0,
    })).reply;
    assert.ok(home, `no BA at home\n${ha.stderr}`);
    assert.equal(home.kind, "ba");
    assert.equal(home.status, 0);
    assert.equal(home.seq, 2);
    assert.equal(home.rh2, null, "no type 2 routing header to a node at home");
    assert.equal(home.cksum_ok, true);
    assert.equal((await haStatus(t)).bindings.length, 0);
    await t.cn.ip("addr", "del", `${HOA}/64`, "dev", "eth0");
    assert.equal((await ns()).na, null, "NS for a deregistered HoA must go unanswered");
    const after = await cn.request<{ na: Na[] }>("capture_stop", { name: "after" });
    assert.deepEqual(after.na.filter((n) => n.target === HOA), []);
    assert.deepEqual((await kernelState(t.ha)).proxies, []);

    assert.equal((await ha.stop()).code, 0, ha.stderr);
    await Deno.remove(t.dir, { recursive: true });
  },
});
