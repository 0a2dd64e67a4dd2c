/**
 * `kagemusha mn` with ESP-protected signaling (RFC 4877 §4, RFC 4303 transport mode) against
 * the independent scapy home agent (test/mn/scapy_ha.py with --esp: scapy's own ESP decrypts
 * our BUs and protects its BAs), with tshark decrypting the capture given the SAs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { controlRequest } from "../../src/control/client.ts";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab, run } from "../helpers/netns.ts";
import { tsharkFields } from "../helpers/tshark.ts";
import {
  COA,
  ESP_PAIR,
  ForeignHost,
  HA,
  HOA,
  homeLink,
  kagemusha,
  ROUTER_MAC,
  type ScapyEvent,
  startScapyHa,
  tsharkEspArgs,
  VM_MAC,
} from "./mn_lab.ts";

const ignore = needs(["ip", "tshark", PYTHON], { root: true });
const ESP_ARG = ["--esp", JSON.stringify(ESP_PAIR)];

interface EspStatus {
  state: string;
  reason: string;
  bu: { spi: number; sequence: number; reserved: number | null };
  ba: { spi: number; replayTop: number };
}

async function espOf(fh: ForeignHost): Promise<EspStatus> {
  const st = await fh.status() as unknown as { bindings: Array<{ esp: EspStatus }> };
  return st.bindings[0].esp;
}

function espSeq(e: ScapyEvent): number {
  assert.ok(typeof e.esp === "object" && e.esp !== null, `not protected: ${JSON.stringify(e)}`);
  return e.esp.seq;
}

/** Every decrypted ESP packet in `pcap` as tshark dissects it, one object per packet. */
function tsharkEsp(pcap: string): Promise<Array<Record<string, string>>> {
  return tsharkFields(pcap, "esp", [
    "ipv6.src",
    "ipv6.dst",
    "esp.spi",
    "esp.sequence",
    "esp.icv_good",
    "mip6.mhtype",
    "mip6.bu.seqnr",
    "mip6.bu.a_flag",
    "mip6.bu.h_flag",
    "mip6.bu.k_flag",
    "mip6.bu.lifetime",
    "ipv6.opt.mipv6.home_address",
    "mip6.acoa.acoa",
    "mip6.ba.status",
    "mip6.ba.seqnr",
    "ipv6.routing.mipv6.home_address",
  ], tsharkEspArgs(ESP_PAIR));
}

const spiHex = (spi: number) => `0x${spi.toString(16).padStart(8, "0")}`;

Deno.test({
  name: "ESP: mn registers with the scapy HA through ESP (scapy decrypts the BU, protects the " +
    "BA); tshark decrypts the BU (seq, A/H, HAO, Alt-CoA) and the BA",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    const pcap = `${fh.dir}/foreign.pcap`;
    const tshark = fh.host.spawn(["tshark", "-n", "-i", "eth0", "-w", pcap]);
    await tshark.waitFor("Capturing on", 15_000);
    const ha = await fh.startScapyHa(ESP_ARG);
    const mn = fh.startDaemonWithEsp();
    const b = await fh.waitBinding(mn, (b) => b?.state === "registered");
    assert.doesNotMatch(mn.stderr, /no ESP configured/);
    assert.match(mn.stderr, /ESP-protected/);

    // What scapy decrypted and decoded by hand.
    const [bu] = await ha.waitCount("bu", 1);
    assert.deepEqual(bu.esp, { spi: ESP_PAIR.bu.spi, seq: 1 });
    assert.equal(bu.src, COA);
    assert.equal(bu.hoa, HOA);
    assert.equal(bu.altcoa, COA);
    assert.deepEqual(bu.flags, { A: true, H: true, L: false, K: false });
    assert.equal(bu.checksum_ok, true, "MH checksum over the HoA, inside ESP");
    assert.equal(ha.events().filter((e) => e.event === "esp_error").length, 0);
    const [ba] = await ha.waitCount("ba", 1);
    assert.equal(ba.esp, 1);

    // What the daemon reports.
    assert.equal(b.sequence, bu.seq);
    const esp = await espOf(fh);
    assert.equal(esp.state, "protected");
    assert.equal(esp.bu.sequence, 1);
    assert.equal(esp.bu.reserved, 65, "reserved 64 ahead before the first packet");
    assert.equal(esp.ba.replayTop, 1);
    const c = (await fh.status()).counters;
    assert.equal(c.bu_protected, 1);
    assert.equal(c.rx_protected, 1);
    assert.equal(c.ba_accepted, 1);
    // On disk: the ESP reservation next to the BU sequence, owned by this host.
    const file = JSON.parse(
      Deno.readTextFileSync(`${fh.stateDir}/binding-2001_db8_2000__10.json`),
    );
    assert.equal(file.esp.owned, true);
    assert.deepEqual(file.esp.sas[0], {
      spi: ESP_PAIR.bu.spi,
      direction: "outbound",
      sequence: 65,
    });
    assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
    // Shutdown wrote the inbound window.
    const after = JSON.parse(
      Deno.readTextFileSync(`${fh.stateDir}/binding-2001_db8_2000__10.json`),
    );
    assert.equal(after.esp.sas[1].replay.top, 1);

    await tshark.stop("SIGINT");
    const pkts = await tsharkEsp(pcap);
    const tbu = pkts.find((p) => p["mip6.mhtype"] === "5");
    assert.ok(tbu, JSON.stringify(pkts));
    assert.equal(tbu["ipv6.src"], COA);
    assert.equal(tbu["ipv6.dst"], HA);
    assert.equal(tbu["esp.spi"], spiHex(ESP_PAIR.bu.spi));
    assert.equal(tbu["esp.sequence"], "1");
    assert.equal(tbu["esp.icv_good"], "1", "tshark verified our GCM tag");
    assert.equal(tbu["mip6.bu.seqnr"], String(bu.seq));
    const on = (v: string) => v === "1" || v === "True";
    assert.ok(on(tbu["mip6.bu.a_flag"]), "A");
    assert.ok(on(tbu["mip6.bu.h_flag"]), "H");
    assert.ok(!on(tbu["mip6.bu.k_flag"]), "K");
    assert.equal(tbu["mip6.bu.lifetime"], "15");
    assert.equal(tbu["ipv6.opt.mipv6.home_address"], HOA);
    assert.equal(tbu["mip6.acoa.acoa"], COA);
    const tba = pkts.find((p) => p["mip6.mhtype"] === "6");
    assert.ok(tba, JSON.stringify(pkts));
    assert.equal(tba["esp.spi"], spiHex(ESP_PAIR.ba.spi));
    assert.equal(tba["esp.icv_good"], "1");
    assert.equal(tba["mip6.ba.status"], "0");
    assert.equal(tba["mip6.ba.seqnr"], String(bu.seq));
    assert.equal(tba["ipv6.routing.mipv6.home_address"], HOA);
    // Nothing went on the wire in the clear.
    const plain = await run(["tshark", "-n", "-r", pcap, "-Y", "mipv6 && !esp"]);
    assert.equal(plain.stdout.trim(), "", "an unprotected MH was sent or answered");
  },
});

Deno.test({
  name: "ESP: an unprotected BA is ignored (esp_unprotected_ba), a replayed BA dropped " +
    "(esp_replay), the retransmission's protected BA registers",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    // The first BU gets a BA in the clear (correct sequence, RH2 and checksum); the second a
    // protected BA, sent twice.
    const ha = await fh.startScapyHa([...ESP_ARG, "--plain-ba", "1", "--replay-ba"]);
    const mn = fh.startDaemonWithEsp();
    const b = await fh.waitBinding(mn, (b) => b?.state === "registered");
    const bus = ha.bus();
    assert.ok(bus.length >= 2, JSON.stringify(bus));
    assert.equal(b.sequence, bus[1].seq, "registered by the retransmission's BA");
    assert.deepEqual(bus.slice(0, 2).map(espSeq), [1, 2]);
    const bas = await ha.waitCount("ba", 2);
    assert.equal(bas[0].esp, null, "the first BA went out unprotected");
    assert.equal(bas[0].seq, bus[0].seq);
    assert.equal(bas[1].esp, 1);
    // Let the duplicate arrive.
    const deadline = Date.now() + 3000;
    let c = (await fh.status()).counters;
    while (c.esp_replay < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      c = (await fh.status()).counters;
    }
    assert.equal(c.esp_unprotected_ba, 1, JSON.stringify(c));
    assert.equal(c.esp_replay, 1, JSON.stringify(c));
    assert.equal(c.ba_accepted, 1);
    assert.equal(c.ba_ignored, 0, "neither reached the binding update list");
    assert.equal(c.rx_protected, 1);
    assert.match(mn.stderr, /dropped an unprotected BA/);
    assert.match(mn.stderr, /esp_replay/);
    assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
  },
});

Deno.test({
  name: "ESP state: SIGKILL + restart continues after the reservation; export hands the " +
    "counter over and releases the SA; a handover brings it back, never backwards",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    const ha = await fh.startScapyHa(ESP_ARG);
    const mn = fh.startDaemonWithEsp();
    await fh.waitBinding(mn, (b) => b?.state === "registered");
    // Three more BUs (the guest "resumed"): ESP sequence numbers 2, 3, 4.
    for (let i = 2; i <= 4; i++) {
      await controlRequest(fh.control, "handover");
      await fh.waitBinding(mn, () => ha.bus().length === i, 5000);
      await fh.waitBinding(mn, (b) => b.state === "registered");
    }
    assert.deepEqual(ha.bus().map(espSeq), [1, 2, 3, 4]);
    // A crash: no shutdown path runs.
    await mn.stop("SIGKILL");
    const mn2 = fh.startDaemonWithEsp();
    await fh.waitBinding(mn2, (b) => b?.state === "registered");
    const restarted = espSeq(ha.bus()[4]);
    assert.equal(restarted, 66, "continued after the reservation (65): no sequence reused");
    assert.match(mn2.stderr, /continuing after sequence 65/);

    // export: the counter and the window go to the next host; this host stops using the SA.
    const exp = await controlRequest(fh.control, "export") as {
      bindings: Array<{ esp: Array<Record<string, unknown>> }>;
    };
    const states = exp.bindings[0].esp;
    assert.deepEqual(states[0], { spi: ESP_PAIR.bu.spi, direction: "outbound", sequence: 66 });
    assert.equal(states[1].direction, "inbound");
    assert.equal((states[1].replay as { top: number }).top, 5);
    let esp = await espOf(fh);
    assert.equal(esp.state, "released");
    const file = JSON.parse(
      Deno.readTextFileSync(`${fh.stateDir}/binding-2001_db8_2000__10.json`),
    );
    assert.equal(file.esp.owned, false, "the release is on disk");
    // A handover without ESP state: refused, nothing sent.
    await controlRequest(fh.control, "handover");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(ha.bus().length, 5, "no BU with a released SA");
    const c = (await fh.status()).counters;
    assert.ok(c.esp_no_state >= 1, JSON.stringify(c));
    assert.match(mn2.stderr, /no ESP state handed over/);
    // The VM comes back from a host that sent up to ESP sequence 100.
    await controlRequest(fh.control, "handover", {
      bindings: [{
        homeAddress: HOA,
        sequence: 9000,
        esp: [{ ...states[0], sequence: 100 }, states[1]],
      }],
    });
    await fh.waitBinding(mn2, (b) => b.state === "registered" && b.sequence > 9000, 8000);
    const back = ha.bus().at(-1)!;
    assert.equal(espSeq(back), 101, "continues after the handed-over counter");
    esp = await espOf(fh);
    assert.equal(esp.state, "protected");
    // An old copy of a state never moves the counter back.
    await controlRequest(fh.control, "handover", {
      bindings: [{ homeAddress: HOA, sequence: 9000, esp: states }],
    });
    await fh.waitBinding(mn2, () => ha.bus().length === 7, 5000);
    assert.equal(espSeq(ha.bus()[6]), 102);
    assert.equal((await mn2.stop("SIGTERM")).code, 0, mn2.stderr);

    // A standby daemon that never had the state waits for it.
    await Deno.remove(fh.stateDir, { recursive: true });
    const mn3 = fh.startDaemonWithEsp(ESP_PAIR, ["--standby"]);
    await mn3.waitFor("mobile node ready", 20_000);
    esp = await espOf(fh);
    assert.equal(esp.state, "state needed");
    assert.equal((await mn3.stop("SIGTERM")).code, 0, mn3.stderr);
  },
});

Deno.test({
  name: "ESP: a VM without ESP gets a startup warning (unauthenticated signaling)",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    await fh.startScapyHa();
    const mn = fh.startDaemonWithEsp(null);
    await fh.waitBinding(mn, (b) => b?.state === "registered");
    assert.match(mn.stderr, /WARN.*no ESP configured.*unauthenticated/);
    const st = await fh.status() as unknown as { bindings: Array<{ esp: unknown }> };
    assert.equal(st.bindings[0].esp, null);
    assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
  },
});

Deno.test({
  name: "ESP returning home: protected deregistration from the HoA (IPPROTO_RAW), protected " +
    "BA caught on the home link",
  ignore,
  async fn() {
    await using lab = new Lab();
    const dir = await Deno.makeTempDir({ prefix: "kgm-mn-esp-home-" });
    try {
      const { hostA, ha } = await homeLink(lab);
      const sha = await startScapyHa(ha, ["--home-mac", VM_MAC, ...ESP_ARG]);
      const control = `${dir}/mn.sock`;
      const cfg = `${dir}/mn.json`;
      await Deno.writeTextFile(
        cfg,
        JSON.stringify({
          interface: "brhome",
          homeAgent: HA,
          control,
          stateDir: `${dir}/state`,
          logLevel: "debug",
          standby: true,
          vms: [{
            homeAddress: `${HOA}/64`,
            vmMac: VM_MAC,
            routerMac: ROUTER_MAC,
            tap: "kgtap0",
            bridge: "brhome",
            esp: ESP_PAIR,
          }],
        }),
      );
      const mn = hostA.spawn(kagemusha("mn", "--config", cfg));
      await mn.waitFor("mobile node ready", 20_000);
      // Back from a foreign host that sent BU sequence 700 and ESP sequence 40.
      await controlRequest(control, "handover", {
        bindings: [{
          homeAddress: HOA,
          sequence: 700,
          esp: [{ spi: ESP_PAIR.bu.spi, direction: "outbound", sequence: 40 }],
        }],
      });
      const [bu] = await sha.waitCount("bu", 1);
      assert.equal(bu.src, HOA, "sent from the home address");
      assert.equal((bu as { home?: boolean }).home, true, "no HAO");
      assert.deepEqual(bu.esp, { spi: ESP_PAIR.bu.spi, seq: 41 });
      assert.equal(bu.lifetime, 0);
      assert.equal(bu.seq, 701);
      assert.equal(bu.checksum_ok, true);
      const [ba] = await sha.waitCount("ba", 1);
      assert.equal(ba.esp, 1, "the BA to the HoA was protected");
      const deadline = Date.now() + 5000;
      let b: { state: string; reason: string };
      for (;;) {
        const st = await controlRequest(control, "status") as {
          bindings: Array<{ state: string; reason: string }>;
          counters: Record<string, number>;
        };
        b = st.bindings[0];
        if (b.state === "deregistered" && /acknowledged/.test(b.reason)) {
          assert.equal(st.counters.rx_protected, 1);
          break;
        }
        if (Date.now() > deadline) throw new Error(`${JSON.stringify(b)}\n${mn.stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "ESP: the last sequence number (2^32 - 1) is sent, then BUs are refused: 'rekey needed'",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    const ha = await fh.startScapyHa(ESP_ARG);
    const mn = fh.startDaemonWithEsp(ESP_PAIR, ["--standby"]);
    await mn.waitFor("mobile node ready", 20_000);
    const last = 0xffffffff;
    await controlRequest(fh.control, "handover", {
      bindings: [{
        homeAddress: HOA,
        sequence: 100,
        esp: [{ spi: ESP_PAIR.bu.spi, direction: "outbound", sequence: last - 1 }],
      }],
    });
    await fh.waitBinding(mn, (b) => b.state === "registered");
    assert.equal(espSeq(ha.bus()[0]), last, "scapy decrypted the last sequence number");
    // The next BU would need sequence 2^32: without ESN the counter must not cycle.
    await controlRequest(fh.control, "handover");
    const deadline = Date.now() + 5000;
    let esp = await espOf(fh);
    while (esp.state !== "rekey needed" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      esp = await espOf(fh);
    }
    assert.equal(esp.state, "rekey needed");
    await controlRequest(fh.control, "handover");
    await new Promise((r) => setTimeout(r, 300));
    const c = (await fh.status()).counters;
    assert.equal(c.esp_exhausted, 2, JSON.stringify(c));
    assert.equal(ha.bus().length, 1, "nothing sent after the last sequence number");
    assert.match(mn.stderr, /exhausted.*rekey needed/);
    assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
  },
});
