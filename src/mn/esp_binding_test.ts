import assert from "node:assert/strict";
import fc from "fast-check";
import { protect, unprotect } from "../ipsec/esp.ts";
import {
  MAX_SEQUENCE,
  SecurityAssociation,
  SecurityAssociationDatabase,
  SequenceExhaustedError,
} from "../ipsec/sa.ts";
import {
  acceptUnprotected,
  ESP_SEQUENCE_RESERVE,
  espDropCounter,
  EspSequenceReservation,
  storedEsp,
  VmEsp,
} from "./esp_binding.ts";
import { PAIR } from "./testdata/esp_pair.ts";
import { HA, HOA } from "../wire/test_util.ts";

const AT = { homeAddress: HOA, homeAgent: HA };

/** What the state file would hold, through JSON like the real one. */
function fileOf(esp: VmEsp): unknown {
  return JSON.parse(JSON.stringify({ homeAddress: HOA, sequence: 7, esp: esp.persisted() }));
}

/** Sends like the daemon: beforeSend, write (commit) when asked, then protect. */
async function send(esp: VmEsp): Promise<number> {
  const v = esp.beforeSend();
  assert.ok(v.ok, JSON.stringify(v));
  if (v.persist !== null) esp.committed(esp.persisted(v.persist).sas[0].sequence!);
  const p = protect(esp.bu, 135, new Uint8Array(8));
  const seq = esp.bu.lastSequence; // taken synchronously
  const bytes = await p;
  assert.equal(new DataView(bytes.buffer).getUint32(4), seq);
  return seq;
}

Deno.test("EspSequenceReservation: 64 ahead, one write per 64, never backwards, capped at 2^32-1", () => {
  const r = new EspSequenceReservation(null);
  assert.equal(r.toPersist(1), 1 + ESP_SEQUENCE_RESERVE);
  r.committed(65);
  for (let s = 2; s <= 65; s++) assert.equal(r.toPersist(s), null, `seq ${s}`);
  assert.equal(r.toPersist(66), 130);
  r.committed(10); // an older value never lowers the reservation
  assert.equal(r.reserved, 65);
  const high = new EspSequenceReservation(MAX_SEQUENCE - 10);
  assert.equal(high.toPersist(MAX_SEQUENCE - 10), null);
  assert.equal(high.toPersist(MAX_SEQUENCE - 9), MAX_SEQUENCE);
});

Deno.test("espDropCounter: one counter per EspError kind", () => {
  assert.equal(espDropCounter({ kind: "replay", field: "sequence" }), "esp_replay");
  assert.equal(espDropCounter({ kind: "integrity", field: "icv" }), "esp_integrity");
  assert.equal(espDropCounter({ kind: "unknownSpi", field: "spi" }), "esp_unknown_spi");
  assert.equal(espDropCounter({ kind: "policy", field: "homeAddress" }), "esp_policy");
  assert.equal(espDropCounter({ kind: "checksum", field: "mh.checksum" }), "esp_checksum");
  assert.equal(espDropCounter({ kind: "unsupported", field: "innerNextHeader" }), "esp_not_mh");
  assert.equal(espDropCounter({ kind: "unsupported", field: "mh.type" }), "esp_malformed");
  assert.equal(espDropCounter({ kind: "truncated", field: "spi" }), "esp_malformed");
  assert.equal(espDropCounter({ kind: "malformed", field: "padding" }), "esp_malformed");
});

Deno.test("acceptUnprotected: a VM with ESP takes no unprotected BA; BRR and BE stay open", () => {
  assert.equal(acceptUnprotected("ba", true), false);
  assert.equal(acceptUnprotected("ba", false), true);
  assert.equal(acceptUnprotected("brr", true), true);
  assert.equal(acceptUnprotected("be", true), true);
});

Deno.test("VmEsp: a new SA on a normal start is ours; the first send reserves 64 ahead", async () => {
  const sad = new SecurityAssociationDatabase();
  const esp = new VmEsp(sad, PAIR, AT);
  assert.equal(esp.ownership, "owned");
  assert.equal(sad.outbound(HOA, HA), esp.bu);
  assert.equal(sad.inbound(PAIR.ba.spi), esp.ba);
  const v = esp.beforeSend();
  assert.deepEqual(v, { ok: true, persist: 65, generation: 0 });
  let writes = 0;
  for (let i = 1; i <= 130; i++) {
    const w = esp.beforeSend();
    assert.ok(w.ok);
    if (w.persist !== null) {
      writes++;
      assert.equal(esp.persisted(w.persist).sas[0].sequence, w.persist);
      esp.committed(w.persist);
    }
    assert.equal(await send(esp), i);
  }
  assert.equal(writes, 2, "1's and 66's reservations: one write per 64 packets");
  assert.equal(esp.persisted().sas[0].sequence, 130);
  assert.equal(esp.status().state, "protected");
  // Two VMs cannot share an SPI: the second VmEsp leaves nothing half-added.
  assert.throws(() => new VmEsp(sad, PAIR, { ...AT, homeAddress: "2001:db8:2000::11" }));
  assert.equal([...sad].length, 2);
});

Deno.test("VmEsp: after a crash the counter continues after the reservation (fast-check)", async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 200 }), async (n) => {
      const a = new VmEsp(new SecurityAssociationDatabase(), PAIR, AT);
      const used: number[] = [];
      for (let i = 0; i < n; i++) used.push(await send(a));
      // The "crash": only what was committed (persisted) survives; a new process reads it.
      const onDisk = n === 0 ? undefined : fileOf(a);
      const b = new VmEsp(new SecurityAssociationDatabase(), PAIR, AT, { stored: onDisk });
      assert.equal(b.ownership, "owned");
      const next = await send(b);
      assert.ok(used.every((s) => s < next), `reused: ${next} after ${used.at(-1)}`);
      assert.ok(next <= n + ESP_SEQUENCE_RESERVE + 1, `jumped too far: ${next} after ${n}`);
    }),
    { numRuns: 40 },
  );
});

Deno.test("VmEsp: export releases (durably); the next host imports, never backwards", async () => {
  const a = new VmEsp(new SecurityAssociationDatabase(), PAIR, AT);
  for (let i = 0; i < 5; i++) await send(a);
  const exported = JSON.parse(JSON.stringify(a.exportState(true)));
  assert.deepEqual(exported[0], { spi: PAIR.bu.spi, direction: "outbound", sequence: 5 });
  assert.equal(exported[1].direction, "inbound");
  assert.equal(a.ownership, "released");
  assert.equal(a.generation, 1, "packets sealed before the export are dropped");
  const refused = a.beforeSend();
  assert.ok(!refused.ok && refused.why === "released", JSON.stringify(refused));
  assert.equal(a.status().state, "released");
  // A restart of the old host does not take the SA back.
  const aAgain = new VmEsp(new SecurityAssociationDatabase(), PAIR, AT, { stored: fileOf(a) });
  assert.equal(aAgain.ownership, "released");
  assert.equal(aAgain.beforeSend().ok, false);

  // The next host, in standby with nothing on disk: nothing until the state arrives.
  const b = new VmEsp(new SecurityAssociationDatabase(), PAIR, AT, { standby: true });
  assert.equal(b.ownership, "stateNeeded");
  assert.equal(b.status().state, "state needed");
  assert.equal(b.beforeSend().ok, false);
  assert.equal(b.importState(undefined).length, 1, "a handover without ESP state is refused");
  assert.equal(b.ownership, "stateNeeded");
  assert.deepEqual(b.importState(exported), []);
  assert.equal(b.ownership, "owned");
  assert.equal(await send(b), 6);
  // An older state (a stale copy of the export) never moves the counter back.
  assert.deepEqual(b.importState(exported), []);
  assert.equal(await send(b), 7);
  // Back to the first host: it continues after what the second host sent.
  assert.deepEqual(a.importState(b.exportState(true)), []);
  assert.equal(a.ownership, "owned");
  assert.equal(await send(a), 8);
  // State for other SAs does not make an SA ours.
  const c = new VmEsp(new SecurityAssociationDatabase(), PAIR, AT, { standby: true });
  const other = [{ spi: 0x9999, direction: "outbound", sequence: 3 }];
  assert.equal(c.importState(other).length, 2);
  assert.equal(c.ownership, "stateNeeded");
});

Deno.test("VmEsp: corrupt state file or rekeyed SAs", () => {
  const corrupt = new VmEsp(new SecurityAssociationDatabase(), PAIR, AT, { corrupt: true });
  assert.equal(corrupt.ownership, "stateNeeded", "unknown counter: wait for a handover");
  // The file holds state of SAs that were replaced in the configuration: a new SA starts.
  const stored = {
    esp: { owned: true, sas: [{ spi: 0x7777, direction: "outbound", sequence: 900 }] },
  };
  const fresh = new VmEsp(new SecurityAssociationDatabase(), PAIR, AT, { stored });
  assert.equal(fresh.ownership, "owned");
  assert.equal(fresh.bu.lastSequence, 0);
  assert.match(fresh.notes.join("\n"), /other SAs/);
  assert.equal(storedEsp({ esp: { owned: "yes", sas: [] } }), null);
  assert.equal(storedEsp({ sequence: 5 }), null);
  assert.equal(storedEsp(null), null);
});

Deno.test("VmEsp: the inbound replay window survives a restart and a move", async () => {
  const ha = new SecurityAssociation(PAIR.ba, { direction: "outbound", ...AT });
  const sealed: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) sealed.push(await protect(ha, 135, new Uint8Array(8)));
  const sadA = new SecurityAssociationDatabase();
  const a = new VmEsp(sadA, PAIR, AT);
  for (const p of sealed.slice(0, 2)) assert.ok((await unprotect(sadA, p, AT)).ok);
  // Restart from the file: the two BAs are replays now, the third is new.
  const sadB = new SecurityAssociationDatabase();
  const b = new VmEsp(sadB, PAIR, AT, { stored: fileOf(a) });
  const replay = await unprotect(sadB, sealed[1], AT);
  assert.ok(!replay.ok && espDropCounter(replay) === "esp_replay");
  assert.ok((await unprotect(sadB, sealed[2], AT)).ok);
  // Moved to another host with the export: all three are replays there.
  const sadC = new SecurityAssociationDatabase();
  const c = new VmEsp(sadC, PAIR, AT, { standby: true });
  assert.deepEqual(c.importState(b.exportState(true)), []);
  for (const p of sealed) {
    const r = await unprotect(sadC, p, AT);
    assert.ok(!r.ok && r.kind === "replay");
  }
  assert.equal(c.status().ba.replayTop, 3);
});

Deno.test("VmEsp: sequence space exhausted → refused, 'rekey needed'", async () => {
  const esp = new VmEsp(new SecurityAssociationDatabase(), PAIR, AT);
  esp.importState([{ spi: PAIR.bu.spi, direction: "outbound", sequence: MAX_SEQUENCE - 1 }]);
  assert.equal(await send(esp), MAX_SEQUENCE);
  const v = esp.beforeSend();
  assert.ok(v.ok, "the SA itself says when it is exhausted");
  await assert.rejects(protect(esp.bu, 135, new Uint8Array(8)), SequenceExhaustedError);
  esp.markExhausted();
  const after = esp.beforeSend();
  assert.ok(!after.ok && after.why === "exhausted");
  assert.match(after.message, /rekey needed/);
  assert.equal(esp.status().state, "rekey needed");
  assert.equal(esp.bu.counters.exhausted, 1);
});
