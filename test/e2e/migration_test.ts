/**
 * End to end, issue 5: `kagemusha ha` + one `kagemusha mn` per host on the
 * reference topology. The VM moves home → B → C → home while the
 * correspondent pings it every 10 ms and a TCP conversation runs; each move
 * must keep both alive (the TCP connection is never reset). Away from home a
 * 1500-byte ping works in both directions once Packet Too Big taught the
 * sender the tunnel MTU, every UDP payload size from 1 to 1500 bytes comes back intact,
 * and 16 MiB bulk TCP transfers arrive intact.
 *
 * @module
 */
import assert from "node:assert/strict";
import { controlRequest } from "../../src/control/client.ts";
import { formatTimeline, migrate, type MoveResult, waitControl } from "../../src/demo/demo.ts";
import { bulkTransfer, PingProbe, TcpProbe } from "../../src/demo/probes.ts";
import { ADDR, Topology } from "../../src/demo/topology.ts";
import { needs } from "../helpers/env.ts";

const ignore = needs(["ip", "ping"], { root: true });
const UDP_TOOL = new URL("../tunnel/udp_tool.ts", import.meta.url).pathname;

async function bigPing(
  t: Topology,
  from: "vm" | "cn",
  to: string,
): Promise<{ received: number; out: string }> {
  const ns = from === "vm" ? t.vm : t.cn;
  // 1452 bytes of payload = a 1500-byte IPv6 packet; the first one draws the PTB.
  const r = await ns.exec(["ping", "-n", "-c", "6", "-i", "0.2", "-W", "1", "-s", "1452", to], {
    allowFail: true,
  });
  const m = /(\d+) received/.exec(r.stdout);
  return { received: m ? Number(m[1]) : 0, out: r.stdout + r.stderr };
}

Deno.test({
  name: "migration e2e: home → B → C → home keeps ping and TCP alive; PMTU and bulk TCP away",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using t = await new Topology().build();
    const ha = t.startHomeAgent();
    await waitControl(`${t.dir}/ha.sock`);
    for (const h of ["hostA", "hostB", "hostC"] as const) {
      t.startMobileNode(h, ["--standby"]);
      await waitControl(t.controlPath(h));
    }
    const ping = new PingProbe(t.cn, ADDR.hoa, 10);
    const tcp = new TcpProbe(t.vm, t.cn, ADDR.hoa);
    await tcp.start();
    await tcp.waitProgress(10);

    const rows: MoveResult[] = [];
    // home → B
    rows.push(await migrate(t, "hostB", ping, tcp));
    assert.equal(rows[0].state, "registered");
    assert.equal(tcp.error(), undefined);

    // away: 1500-byte packets both ways after PTB, and a bulk TCP transfer
    const up = await bigPing(t, "vm", ADDR.cn);
    assert.ok(up.received >= 4, `vm → cn 1500-byte ping: ${up.out}`);
    const route = await t.vm.exec(["ip", "-6", "route", "get", ADDR.cn]);
    assert.match(route.stdout, /mtu 1460/, `guest learnt the tunnel MTU: ${route.stdout}`);
    const down = await bigPing(t, "cn", ADDR.hoa);
    assert.ok(down.received >= 4, `cn → vm 1500-byte ping: ${down.out}`);
    const mnStatus = await controlRequest(t.controlPath("hostB"), "status") as {
      counters: Record<string, number>;
    };
    assert.ok((mnStatus.counters.vm_too_big ?? 0) >= 1, "the pseudo home network sent a PTB");

    // integrity of every UDP payload size 1..1500 (IPv6 packets of 49..1548 bytes: the larger
    // ones are fragmented by the guest once the PTB taught it the tunnel MTU)
    const echo = t.cn.spawn([
      Deno.execPath(),
      "run",
      "-A",
      UDP_TOOL,
      JSON.stringify({
        mode: "echo",
        port: 7777,
      }),
    ]);
    await echo.waitFor("READY");
    const sweep = await t.vm.exec([
      Deno.execPath(),
      "run",
      "-A",
      UDP_TOOL,
      JSON.stringify({ mode: "sweep", dst: ADDR.cn, port: 7777, from: 1, to: 1500 }),
    ]);
    const swept = /SWEEP (.*)/.exec(sweep.stdout);
    assert.ok(swept, sweep.stdout + sweep.stderr);
    assert.deepEqual(JSON.parse(swept[1]), { ok: 1500, bad: [] });
    await echo.stop();

    const bulk = await bulkTransfer(t.vm, t.cn, ADDR.cn, 16 * 2 ** 20);
    assert.equal(bulk.received, bulk.sent, "16 MiB vm → cn arrived intact");
    const back = await bulkTransfer(t.cn, t.vm, ADDR.hoa, 16 * 2 ** 20);
    assert.equal(back.received, back.sent, "16 MiB cn → vm arrived intact");
    console.log(
      `bulk TCP through the tunnel: 16 MiB vm → cn in ${bulk.ms} ms, cn → vm in ${back.ms} ms`,
    );

    // B → C → home
    rows.push(await migrate(t, "hostC", ping, tcp));
    assert.equal(rows[1].state, "registered");
    rows.push(await migrate(t, "hostA", ping, tcp));
    assert.equal(rows[2].state, "deregistered");
    await tcp.waitProgress(10);
    assert.equal(tcp.error(), undefined, "the TCP connection was never reset");

    const haStatus = await controlRequest(`${t.dir}/ha.sock`, "status") as { bindings: unknown[] };
    assert.equal(haStatus.bindings.length, 0, "back home: no binding left at the HA");
    // at home again the correspondent reaches the VM directly (not through the HA's proxy)
    const neigh = await t.cn.exec(["ip", "-6", "neigh", "show", ADDR.hoa]);
    assert.match(neigh.stdout, new RegExp(ADDR.vmMac), `cn's neighbour entry: ${neigh.stdout}`);

    for (const r of rows) {
      assert.ok(
        r.firstReplyMs < 5000,
        `${r.from} → ${r.to}: first reply after ${r.firstReplyMs} ms`,
      );
    }
    console.log(`\n${formatTimeline(rows)}\n`);
    await ping.stop();
    await tcp.stop();
    assert.equal((await ha.stop("SIGTERM")).code, 0);
  },
});
