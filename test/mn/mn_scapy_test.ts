/**
 * `kagemusha mn` against an independent home agent written with scapy (test/mn/scapy_ha.py),
 * with tshark decoding the signaling captured on the foreign link.
 *
 * @module
 */

import assert from "node:assert/strict";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { tsharkFields } from "../helpers/tshark.ts";
import { controlRequest } from "../../src/control/client.ts";
import { COA, ForeignHost, HA, HOA, kagemusha, REPO } from "./mn_lab.ts";

const ignore = needs(["ip", "tshark", PYTHON], { root: true });

/** tshark's fields of every MIPv6 packet in `pcap`, one object per packet. */
function tsharkMip6(pcap: string): Promise<Array<Record<string, string>>> {
  return tsharkFields(pcap, "mipv6", [
    "ipv6.src",
    "ipv6.dst",
    "mip6.mhtype",
    "mip6.bu.seqnr",
    "mip6.bu.a_flag",
    "mip6.bu.h_flag",
    "mip6.bu.l_flag",
    "mip6.bu.k_flag",
    "mip6.bu.lifetime",
    "ipv6.opt.mipv6.home_address",
    "mip6.acoa.acoa",
    "mip6.ba.status",
    "mip6.ba.seqnr",
    "ipv6.routing.mipv6.home_address",
  ]);
}

Deno.test({
  name: "mn registers with a scapy HA; tshark decodes BU (HAO, Alt-CoA, A H set, L K clear) and BA",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    const pcap = `${fh.dir}/foreign.pcap`;
    const tshark = fh.host.spawn(["tshark", "-n", "-i", "eth0", "-w", pcap]);
    await tshark.waitFor("Capturing on", 15_000);
    const ha = await fh.startScapyHa();
    const mn = fh.startDaemon();
    const b = await fh.waitBinding(mn, (b) => b?.state === "registered");

    // What the independent HA decoded by hand.
    const [bu] = await ha.waitCount("bu", 1);
    assert.equal(bu.src, COA);
    assert.equal(bu.dst, HA);
    assert.equal(bu.hoa, HOA);
    assert.equal(bu.altcoa, COA);
    assert.deepEqual(bu.flags, { A: true, H: true, L: false, K: false });
    assert.equal(bu.lifetime, 15); // 60 s in 4 s units
    assert.equal(bu.checksum_ok, true, "MH checksum over the HoA (RFC 6275 §6.1.1)");

    // What the daemon reports.
    assert.equal(b.homeAddress, HOA);
    assert.equal(b.careOfAddress, COA);
    assert.equal(b.homeAgent, HA);
    assert.equal(b.sequence, bu.seq);
    assert.ok(b.lifetimeRemaining > 50 && b.lifetimeRemaining <= 60, `${b.lifetimeRemaining}`);

    // status --json through the CLI, as an operator runs it.
    const cli = await fh.host.exec(kagemusha("status", "--control", fh.control, "--json"));
    const st = JSON.parse(cli.stdout);
    assert.equal(st.role, "mn");
    assert.equal(st.bindings[0].state, "registered");
    for (
      const k of ["homeAddress", "careOfAddress", "homeAgent", "sequence", "lifetimeRemaining"]
    ) {
      assert.ok(k in st.bindings[0], k);
    }
    assert.equal(st.counters.ba_accepted, 1);
    assert.equal(st.counters.bu_sent, 1);

    // SIGTERM: exit 0, tap and the bridge it created are gone.
    assert.ok((await fh.links()).includes("kgtap0"));
    const code = await mn.stop("SIGTERM");
    assert.equal(code.code, 0, mn.stderr);
    const links = await fh.links();
    assert.ok(!links.includes("kgtap0"), links.join(","));
    assert.ok(!links.includes("kgbr0"), links.join(","));

    await tshark.stop("SIGINT");
    const pkts = await tsharkMip6(pcap);
    const tbu = pkts.find((p) => p["mip6.mhtype"] === "5");
    assert.ok(tbu, JSON.stringify(pkts));
    assert.equal(tbu["ipv6.src"], COA);
    assert.equal(tbu["ipv6.dst"], HA);
    assert.equal(tbu["mip6.bu.seqnr"], String(bu.seq));
    // tshark 4.0 prints booleans as 1/0 (older as True/False)
    const on = (v: string) => v === "1" || v === "True";
    assert.ok(on(tbu["mip6.bu.a_flag"]), "A");
    assert.ok(on(tbu["mip6.bu.h_flag"]), "H");
    assert.ok(!on(tbu["mip6.bu.l_flag"]), "L");
    assert.ok(!on(tbu["mip6.bu.k_flag"]), "K");
    assert.equal(tbu["mip6.bu.lifetime"], "15");
    assert.equal(tbu["ipv6.opt.mipv6.home_address"], HOA);
    assert.equal(tbu["mip6.acoa.acoa"], COA);
    const tba = pkts.find((p) => p["mip6.mhtype"] === "6");
    assert.ok(tba, JSON.stringify(pkts));
    assert.equal(tba["mip6.ba.status"], "0");
    assert.equal(tba["mip6.ba.seqnr"], String(bu.seq));
    assert.equal(tba["ipv6.routing.mipv6.home_address"], HOA);
  },
});

Deno.test({
  name: "mn: 1.5 s first retransmission, status 135 → BA seq + 1, BRR → BU, sequence reserved 64 " +
    "ahead, deregister on exit, restart continues after it, corrupt state file survived",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    // Ignore the first BU; answer the second with 135 / "last accepted" 5000; then accept,
    // and send a Binding Refresh Request 1 s after the registration.
    const ha = await fh.startScapyHa([
      "--silent",
      "1",
      "--first-status",
      "135",
      "--first-seq",
      "5000",
      "--brr-after",
      "1",
    ]);
    const mn = fh.startDaemon(["--deregister-on-exit"]);
    const b = await fh.waitBinding(mn, (b) => b?.state === "registered");
    const bus = ha.bus();
    assert.ok(bus.length >= 3, JSON.stringify(bus));
    const gap = bus[1].t! - bus[0].t!;
    assert.ok(gap > 1.3 && gap < 1.9, `first retransmission after ${gap} s, want 1.5 s`);
    assert.equal(bus[1].seq, (bus[0].seq! + 1) & 0xffff, "a retransmission has a new sequence");
    assert.equal(bus[2].seq, 5001, "after status 135 the BU carries the BA's sequence + 1");
    assert.ok(bus[2].t! - bus[1].t! < 0.5, "135 answered at once");
    assert.equal(b.sequence, 5001);

    // BRR → a BU at once, accepted.
    await ha.waitCount("brr", 1);
    const after = await ha.waitCount("bu", 4);
    assert.equal(after[3].seq, 5002);
    await fh.waitBinding(mn, (b) => b.counters.brr_received === 1 && b.state === "registered");

    // The state directory holds a reservation 64 ahead of the sequence that wrote it (5001,
    // after 135): the BUs up to it (BRR's 5002, the deregistration's 5003) wrote nothing.
    const files = [...Deno.readDirSync(fh.stateDir)].map((e) => e.name);
    const file = files.find((f) => f.startsWith("binding-"));
    assert.ok(file, files.join(","));
    const statePath = `${fh.stateDir}/${file}`;
    const saved = JSON.parse(Deno.readTextFileSync(statePath));
    assert.equal(saved.homeAddress, HOA);
    assert.equal(saved.sequence, 5001 + 64);
    const writes = (await fh.status()).counters.sequence_writes;
    assert.ok(writes >= 1 && writes <= 3, `sequence writes ${writes}`);

    // --deregister-on-exit: a BU with lifetime 0, then exit 0.
    const st = await mn.stop("SIGTERM", 8000);
    assert.equal(st.code, 0, mn.stderr);
    const last = ha.bus().at(-1)!;
    assert.equal(last.lifetime, 0);
    assert.equal(last.seq, 5003);
    assert.match(mn.stderr, /deregistered/);

    assert.equal(JSON.parse(Deno.readTextFileSync(statePath)).sequence, 5065, "no write since");

    // A restart (as after a crash) continues after the reservation: a jump forward.
    const mn2 = fh.startDaemon();
    await fh.waitBinding(mn2, (b) => b?.state === "registered");
    const again = ha.bus().at(-1)!;
    assert.equal(again.seq, 5066);
    assert.equal((await mn2.stop("SIGTERM")).code, 0);
    assert.equal(JSON.parse(Deno.readTextFileSync(statePath)).sequence, 5066 + 64);

    // A corrupt state file does not stop the daemon: logged, random start, registered.
    Deno.writeTextFileSync(statePath, '{"sequence": 51');
    const mn3 = fh.startDaemon();
    const b3 = await fh.waitBinding(mn3, (b) => b?.state === "registered");
    assert.match(mn3.stderr, /state file unusable .*random sequence/);
    assert.equal(ha.bus().at(-1)!.seq, b3.sequence);
    assert.equal((await mn3.stop("SIGTERM")).code, 0);
    const reserved = JSON.parse(Deno.readTextFileSync(statePath)).sequence;
    assert.ok(((reserved - b3.sequence) & 0xffff) <= 64, `reserved ${reserved}`);
  },
});

Deno.test({
  name:
    "mn --standby: no BU until handover; handover continues a sequence, new CoA; export releases",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    const ha = await fh.startScapyHa();
    const mn = fh.startDaemon(["--standby"]);
    await mn.waitFor("mobile node ready", 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(ha.bus().length, 0, "standby sends nothing");
    let b = (await fh.status()).bindings[0];
    assert.equal(b.state, "deregistered");
    assert.match(b.reason, /standby/);

    // The VM arrived from a host that exported sequence 9000.
    const t0 = performance.now();
    await controlRequest(fh.control, "handover", {
      bindings: [{ homeAddress: HOA, sequence: 9000 }],
    });
    b = await fh.waitBinding(mn, (b) => b.state === "registered", 5000);
    const handoverMs = performance.now() - t0;
    assert.equal(b.sequence, 9001);
    assert.equal(ha.bus()[0].seq, 9001);
    console.log(`handover command → registered: ${handoverMs.toFixed(1)} ms`);

    // A new care-of address on the same interface.
    await fh.host.ip("addr", "add", "2001:db8:3000::33/64", "dev", "eth0", "nodad");
    await controlRequest(fh.control, "handover", { careOf: "2001:db8:3000::33" });
    b = await fh.waitBinding(mn, (b) => b.state === "registered" && b.sequence === 9002, 5000);
    assert.equal(b.careOfAddress, "2001:db8:3000::33");
    const bu2 = ha.bus()[1];
    assert.equal(bu2.src, "2001:db8:3000::33");
    assert.equal(bu2.altcoa, "2001:db8:3000::33");

    // export: the sequence for the next host; this host stops (no refresh steals the binding).
    const exp = await controlRequest(fh.control, "export") as {
      bindings: Array<{ homeAddress: string; sequence: number; registered: boolean }>;
    };
    assert.deepEqual(exp.bindings, [{ homeAddress: HOA, sequence: 9002, registered: true }]);
    b = (await fh.status()).bindings[0];
    assert.equal(b.state, "deregistered");
    assert.match(b.reason, /exported/);
    const tap = JSON.parse((await fh.host.exec(["ip", "-j", "link", "show", "kgtap0"])).stdout)[0];
    assert.ok(!(tap.flags as string[]).includes("UP"), "tap down after export");
    assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
    assert.equal(ha.bus().length, 2, "no BU after export, none at exit without the flag");
  },
});

Deno.test({
  name: "mn --config with two VMs: two bindings, two taps, one shared bridge, two state files",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    const ha = await fh.startScapyHa();
    const HOA2 = "2001:db8:2000::11";
    const cfg = `${fh.dir}/mn.json`;
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({
        interface: "eth0",
        homeAgent: HA,
        lifetime: 60,
        control: fh.control,
        stateDir: fh.stateDir,
        vms: [
          { homeAddress: `${HOA}/64`, vmMac: "52:54:00:00:00:10", tap: "kgtapa", bridge: "kgbr0" },
          { homeAddress: `${HOA2}/64`, vmMac: "52:54:00:00:00:11", tap: "kgtapb", bridge: "kgbr0" },
        ],
      }),
    );
    const mn = fh.host.spawn(kagemusha("mn", "--config", cfg));
    const deadline = Date.now() + 15_000;
    let st = await fh.status().catch(() => null);
    while (!st || st.bindings.some((b) => b.state !== "registered")) {
      if (Date.now() > deadline) throw new Error(`${JSON.stringify(st)}\n${mn.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
      st = await fh.status().catch(() => null);
    }
    assert.deepEqual(st.bindings.map((b) => b.homeAddress), [HOA, HOA2]);
    assert.deepEqual(new Set(ha.bus().map((b) => b.hoa)), new Set([HOA, HOA2]));
    const links = await fh.links();
    for (const l of ["kgtapa", "kgtapb", "kgbr0"]) assert.ok(links.includes(l), l);
    const files = [...Deno.readDirSync(fh.stateDir)].map((e) => e.name).sort();
    assert.deepEqual(files, ["binding-2001_db8_2000__10.json", "binding-2001_db8_2000__11.json"]);
    assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
    const after = await fh.links();
    for (const l of ["kgtapa", "kgtapb", "kgbr0"]) assert.ok(!after.includes(l), l);
  },
});

Deno.test({
  name: "routing-header flood: dropped by the peek (not from the HA) in budgets of 64, the " +
    "control socket keeps answering, the binding stays registered",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab);
    await fh.startScapyHa();
    const mn = fh.startDaemon();
    await fh.waitBinding(mn, (b) => b?.state === "registered");
    const flood = fh.ha.spawn([
      Deno.execPath(),
      "run",
      "-A",
      `${REPO}test/mn/rh_flood.ts`,
      "2001:db8:3000::66",
      COA,
      "2001:db8:2000::99",
      "4",
    ]);
    // Status every 100 ms while the flood runs: never slow.
    const t0 = Date.now();
    let worst = 0;
    let polls = 0;
    while (Date.now() - t0 < 4000) {
      const s = performance.now();
      const st = await fh.status();
      worst = Math.max(worst, performance.now() - s);
      polls++;
      assert.equal(st.bindings[0].state, "registered");
      await new Promise((r) => setTimeout(r, 100));
    }
    await flood.waitFor('"sent"', 10_000);
    const out = flood.stdout;
    await new Promise((r) => setTimeout(r, 300));
    const st = await fh.status();
    const c = st.counters;
    console.log(
      `flood: ${out.trim()}; worst status latency ${worst.toFixed(1)} ms over ` +
        `${polls} polls; counters ${
          JSON.stringify({
            rx_not_from_ha: c.rx_not_from_ha,
            rx_yields: c.rx_yields,
            ba_ignored: c.ba_ignored,
          })
        }`,
    );
    assert.ok(polls >= 20, `only ${polls} status answers in 4 s`);
    assert.ok(worst < 500, `status took ${worst} ms under the flood`);
    assert.ok(c.rx_not_from_ha > 1000, JSON.stringify(c));
    // The other half came from the HA address with an unknown HoA: decoded, not for a VM.
    assert.ok(c.rx_messages > 1000, JSON.stringify(c));
    assert.equal(st.bindings[0].state, "registered");
    assert.equal((await mn.stop("SIGTERM")).code, 0);
  },
});
