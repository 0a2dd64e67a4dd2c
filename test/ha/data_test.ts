/**
 * Interception and tunnelling by `kagemusha ha` (RFC 6275 §10.4.1, §10.4.5; RFC 2473): a
 * correspondent on the home link pings the HoA; the scapy mobile node sees the echo requests
 * arrive IPv6-in-IPv6 from the HA at its CoA and answers through the reverse tunnel; a tunnelled
 * packet with a foreign inner source is dropped and counted; oversize packets get a Packet Too
 * Big from the HA's kernel (tunnel MTU = home-link MTU − 40).
 */

import assert from "node:assert/strict";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { CN, COA, HA, haStatus, haTopology, HOA, sendBu, startHa } from "./ha_lab.ts";
import { ScapyPeer } from "./peer.ts";

const ignore = needs(["ip", "ping", PYTHON], { root: true });

interface Tunnelled {
  outer_src: string;
  outer_dst: string;
  inner_src: string;
  inner_dst: string;
  icmp: string | null;
  id?: number;
  seq?: number;
}

Deno.test({
  name: "ha e2e: ping the HoA through the tunnel; foreign inner source dropped; PTB",
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
    const reg = await sendBu<{ reply: { status: number; latency_ms: number } | null }>(mn, {
      seq: 1,
      lifetime: 60,
    });
    assert.equal(reg.reply?.status, 0);
    console.log(
      `BU→BA (optimistic DAD, first registration): ${reg.reply!.latency_ms.toFixed(1)} ms`,
    );

    // cn → HoA: intercepted, tunnelled to the CoA; the MN answers through the reverse tunnel.
    await mn.request("responder_start", { name: "echo", iface: "eth0", coa: COA, ha: HA });
    const ping = await t.cn.exec(
      ["ping", "-6", "-n", "-c", "5", "-i", "0.2", "-W", "2", HOA],
      { allowFail: true },
    );
    const tun = await mn.request<{ requests: Tunnelled[]; replies: number }>("responder_stop", {
      name: "echo",
    });
    assert.equal(ping.code, 0, `ping failed:\n${ping.stdout}${ping.stderr}\n${ha.stderr}`);
    assert.match(ping.stdout, /5 packets transmitted, 5 received/);
    const rtt = /= [\d.]+\/([\d.]+)\//.exec(ping.stdout)?.[1];
    console.log(`ping cn → HoA via HA tunnel: avg RTT ${rtt} ms`);
    const echoes = tun.requests.filter((r) => r.icmp === "echo-request");
    assert.equal(echoes.length, 5);
    for (const e of echoes) {
      assert.equal(e.outer_src, HA, "outer source: the home agent");
      assert.equal(e.outer_dst, COA, "outer destination: the care-of address");
      assert.equal(e.inner_src, CN);
      assert.equal(e.inner_dst, HOA);
    }
    assert.equal(tun.replies, 5);

    // Reverse tunnel: an inner source that is not the binding's HoA is dropped and counted,
    // the genuine one is forwarded.
    const before = (await haStatus(t)).counters;
    await cn.request("capture_start", { name: "rev", iface: "eth0" });
    await mn.request("tunnel_send", {
      coa: COA,
      ha: HA,
      inner_src: "2001:db8:2000::99",
      inner_dst: CN,
      count: 3,
      id: 0x5353,
    });
    await mn.request("tunnel_send", {
      coa: COA,
      ha: HA,
      inner_src: HOA,
      inner_dst: CN,
      count: 1,
      id: 0x4b47,
    });
    await new Promise((r) => setTimeout(r, 500));
    const seen = await cn.request<{ echo: { src: string; dst: string; id: number }[] }>(
      "capture_stop",
      { name: "rev" },
    );
    assert.deepEqual(seen.echo.filter((e) => e.id === 0x5353), [], "spoofed inner source leaked");
    assert.deepEqual(seen.echo.filter((e) => e.id === 0x4b47).map((e) => [e.src, e.dst]), [[
      HOA,
      CN,
    ]]);
    const after = (await haStatus(t)).counters;
    const dropped = (after.tunnel_spoofed - before.tunnel_spoofed) +
      (after.tunnel_unknown - before.tunnel_unknown);
    assert.equal(dropped, 3, JSON.stringify(after));
    assert.ok(after.tunnel_tx_packets >= 5 && after.tunnel_rx_packets >= 6, JSON.stringify(after));

    // A packet that no longer fits once encapsulated: the HA's kernel answers Packet Too Big
    // with the tunnel MTU (1500 - 40), which the correspondent records.
    await t.cn.exec(["ping", "-6", "-n", "-c", "2", "-W", "1", "-s", "1452", "-M", "do", HOA], {
      allowFail: true,
    });
    const route = await t.cn.exec(["ip", "-6", "route", "get", HOA]);
    assert.match(route.stdout, /mtu 1460/, route.stdout);

    assert.equal((await ha.stop()).code, 0, ha.stderr);
    await Deno.remove(t.dir, { recursive: true });
  },
});
