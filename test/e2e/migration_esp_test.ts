/**
 * End to end with ESP-protected signaling on both daemons (RFC 4877 §4, AES-GCM): the shape of
 * migration_test.ts — `kagemusha ha` plus one `kagemusha mn` per host on the reference
 * topology, the VM moving home → B → C → home under ping and a TCP conversation — with the
 * VM's SA pair configured on the home agent (`esp`, `requireEsp`: no unprotected BU is
 * accepted) and on every host (`vms[].esp`). The ESP sequence counter moves with the VM
 * (`export` → `handover`): each host continues right after the previous one, so the home
 * agent's replay window never sees a sequence number twice (its `esp_replay` stays 0).
 *
 * The mobile nodes are started from a config file alone: the `--home-address/--vm-mac/--tap`
 * flags of `Topology.startMobileNode` would describe the VM a second time (ESP keys are only
 * accepted in a `vms` entry of the file).
 *
 * @module
 */
import assert from "node:assert/strict";
import { controlRequest } from "../../src/control/client.ts";
import { formatTimeline, migrate, type MoveResult, waitControl } from "../../src/demo/demo.ts";
import { PingProbe, TcpProbe } from "../../src/demo/probes.ts";
import { ADDR, type HostName, kagemusha, Topology } from "../../src/demo/topology.ts";
import type { EspPairConfig } from "../../src/ipsec/config.ts";
import { needs } from "../helpers/env.ts";

const ignore = needs(["ip", "ping"], { root: true });

/** The VM's pair: AES-GCM both ways (RFC 4106), different keys and SPIs. */
const PAIR: EspPairConfig = {
  bu: {
    spi: 0x6b670001,
    algorithm: "aes-gcm-128",
    key: "8e73b0f7da0e6452c810f32b809079e5" + "62f8ead2",
  },
  ba: {
    spi: 0x6b670002,
    algorithm: "aes-gcm-256",
    key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308" + "cafebabe",
  },
};

const HOSTS: HostName[] = ["hostA", "hostB", "hostC"];

interface MnEsp {
  state: string;
  bu: { sequence: number; reserved: number | null; counters: { protected: number } };
  ba: { replayTop: number; counters: Record<string, number> };
}

interface MnStatus {
  bindings: Array<{ state: string; esp: MnEsp | null }>;
  counters: Record<string, number>;
}

async function mnStatus(t: Topology, h: HostName): Promise<MnStatus> {
  return await controlRequest(t.controlPath(h), "status") as MnStatus;
}

interface HaSa {
  spi: number;
  direction: string;
  sequence?: number;
  replay?: { top: number; bitmap: string };
  counters: Record<string, number>;
}

async function haStatus(
  t: Topology,
): Promise<{ counters: Record<string, number>; esp: { sas: HaSa[] } | null }> {
  return await controlRequest(`${t.dir}/ha.sock`, "status") as {
    counters: Record<string, number>;
    esp: { sas: HaSa[] } | null;
  };
}

Deno.test({
  name: "migration e2e with ESP: home → B → C → home keeps ping and TCP alive; the ESP " +
    "sequence continues across hosts, the HA never sees a replay",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using t = await new Topology().build();
    const haCfg = `${t.dir}/ha-esp.json`;
    await Deno.writeTextFile(
      haCfg,
      JSON.stringify({ esp: [{ homeAddress: ADDR.hoa, ...PAIR }], requireEsp: true }),
    );
    const ha = t.startHomeAgent(["--config", haCfg]);
    await waitControl(`${t.dir}/ha.sock`).catch((e) => {
      throw new Error(`${(e as Error).message}\nha stderr:\n${ha.stderr}`);
    });
    for (const h of HOSTS) {
      const cfg = `${t.dir}/${h}-esp.json`;
      await Deno.writeTextFile(
        cfg,
        JSON.stringify({
          interface: h === "hostA" ? "br0" : "eth0",
          homeAgent: ADDR.ha,
          control: t.controlPath(h),
          stateDir: `${t.dir}/${h}-state`,
          standby: true,
          vms: [{
            homeAddress: `${ADDR.hoa}/64`,
            vmMac: ADDR.vmMac,
            tap: "kgm0",
            bridge: "br0",
            esp: PAIR,
          }],
        }),
      );
      const mn = t.hosts[h].spawn(kagemusha("mn", "--config", cfg));
      await waitControl(t.controlPath(h)).catch((e) => {
        throw new Error(`${(e as Error).message}\n${h} stderr:\n${mn.stderr}`);
      });
      const st = await mnStatus(t, h);
      // Standby without ESP state on disk: nothing may be sent before a handover brings it.
      assert.equal(st.bindings[0].esp?.state, "state needed", h);
    }
    const ping = new PingProbe(t.cn, ADDR.hoa, 10);
    const tcp = new TcpProbe(t.vm, t.cn, ADDR.hoa);
    await tcp.start();
    await tcp.waitProgress(10);

    const rows: MoveResult[] = [];
    /** Each host's ESP as it was when the VM left it (or at the end). */
    const left = new Map<HostName, MnEsp>();
    const moves: HostName[] = ["hostB", "hostC", "hostA"];
    for (const to of moves) {
      const from = t.vmHost;
      rows.push(await migrate(t, to, ping, tcp));
      assert.equal(rows.at(-1)!.state, to === "hostA" ? "deregistered" : "registered", to);
      const src = (await mnStatus(t, from)).bindings[0].esp!;
      assert.equal(src.state, "released", `${from} released the SA after the export`);
      left.set(from, src);
      const dst = (await mnStatus(t, to)).bindings[0].esp!;
      assert.equal(dst.state, "protected", to);
      // The first packet on the new host came right after the old host's last one.
      assert.equal(
        dst.bu.sequence - dst.bu.counters.protected,
        src.bu.sequence,
        `${from} → ${to}: ESP sequence handed over (${JSON.stringify({ src, dst })})`,
      );
      assert.equal(tcp.error(), undefined);
      if (to !== "hostA") {
        // The guest "resumed" once more: another protected BU from this host.
        await controlRequest(t.controlPath(to), "handover");
        const deadline = Date.now() + 10_000;
        for (;;) {
          const b = (await mnStatus(t, to)).bindings[0];
          if (b.state === "registered" && b.esp!.bu.counters.protected === 2) break;
          if (Date.now() > deadline) throw new Error(`${to}: ${JSON.stringify(b)}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
    await tcp.waitProgress(10);
    assert.equal(tcp.error(), undefined, "the TCP connection was never reset");
    const home = (await mnStatus(t, "hostA")).bindings[0].esp!;

    // The home agent: every BU came protected, none was a replay, none failed its check.
    const hs = await haStatus(t);
    const hc = hs.counters;
    const sent = [...left.values(), home].reduce((n, e) => n + e.bu.counters.protected, 0);
    assert.ok(sent >= 5, `protected BUs sent: ${sent}`);
    assert.equal(home.bu.sequence, sent, "one ESP sequence space across the three hosts");
    assert.ok((hc.esp_received ?? 0) >= sent, JSON.stringify(hc));
    assert.equal(hc.esp_replay ?? 0, 0, `HA saw a replayed ESP sequence: ${JSON.stringify(hc)}`);
    assert.equal(hc.esp_integrity ?? 0, 0, JSON.stringify(hc));
    // Its inbound BU SA: every packet accepted once, the window's top the last one sent.
    const buSa = hs.esp?.sas.find((x) => x.spi === PAIR.bu.spi && x.direction === "inbound");
    assert.ok(buSa, JSON.stringify(hs.esp));
    assert.equal(buSa.counters.unprotected, sent, JSON.stringify(buSa));
    assert.equal(buSa.counters.replay_duplicate, 0);
    assert.equal(buSa.counters.replay_too_old, 0);
    assert.equal(buSa.replay?.top, home.bu.sequence);
    // Its outbound BA SA: the last host's window (merged along the moves) ends at its counter.
    const baSa = hs.esp?.sas.find((x) => x.spi === PAIR.ba.spi && x.direction === "outbound");
    assert.ok(baSa, JSON.stringify(hs.esp));
    assert.equal(home.ba.replayTop, baSa.sequence, "the last BA's sequence, window handed over");
    for (const [h, e] of [...left.entries(), ["hostA", home] as const]) {
      assert.equal(e.ba.counters.replay_duplicate ?? 0, 0, h);
      assert.equal(e.ba.counters.integrity_failures ?? 0, 0, h);
    }
    for (const h of HOSTS) {
      const c = (await mnStatus(t, h)).counters;
      assert.equal(c.esp_replay, 0, `${h}: ${JSON.stringify(c)}`);
      assert.equal(c.esp_unprotected_ba, 0, `${h}: ${JSON.stringify(c)}`);
      assert.equal(c.esp_no_state, 0, `${h}: ${JSON.stringify(c)}`);
    }
    const haBindings = await controlRequest(`${t.dir}/ha.sock`, "status") as {
      bindings: unknown[];
    };
    assert.equal(haBindings.bindings.length, 0, "back home: no binding left at the HA");
    for (const r of rows) {
      assert.ok(
        r.firstReplyMs < 5000,
        `${r.from} → ${r.to}: first reply after ${r.firstReplyMs} ms`,
      );
    }
    console.log(`\n${formatTimeline(rows)}\n`);
    console.log(
      `ESP: ${sent} protected BUs over three hosts, sequence 1..${home.bu.sequence}; ` +
        `HA counters ${
          JSON.stringify(
            Object.fromEntries(Object.entries(hc).filter(([k]) => k.startsWith("esp"))),
          )
        }`,
    );
    await ping.stop();
    await tcp.stop();
    assert.equal((await ha.stop("SIGTERM")).code, 0);
  },
});
