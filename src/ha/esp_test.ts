import assert from "node:assert/strict";
import type { EspSaConfig } from "../ipsec/config.ts";
import {
  buildProtectedBindingUpdate,
  buildProtectedMobilityPacket,
  unprotectPacket,
} from "../ipsec/packets.ts";
import { SecurityAssociation, SecurityAssociationDatabase } from "../ipsec/sa.ts";
import type { BuRepr } from "../wire/mobility.ts";
import { ESP_SEQUENCE_RESERVE, espCounterName, HaEsp, peekSpi } from "./esp.ts";
import { COA, HA, HOA, homeBu } from "../wire/test_util.ts";

const HOA2 = "2001:db8:2000::11";

const GCM_BU: EspSaConfig = {
  spi: 0x1001,
  algorithm: "aes-gcm-128",
  key: "0f1e2d3c4b5a69788796a5b4c3d2e1f05a17c0de",
};
const GCM_BA: EspSaConfig = {
  spi: 0x1002,
  algorithm: "aes-gcm-128",
  key: "603deb1015ca71be2b73aef0857d7781c0ffee11",
};
const CBC_BU: EspSaConfig = {
  spi: 0x2001,
  algorithm: "aes-cbc-hmac-sha256",
  key: "2b7e151628aed2a6abf7158809cf4f3c",
  authKey: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
};
const CBC_BA: EspSaConfig = { ...CBC_BU, spi: 0x2002 };

const CONFIG = [
  { homeAddress: HOA, bu: GCM_BU, ba: GCM_BA },
  { homeAddress: HOA2, bu: CBC_BU, ba: CBC_BA },
];

/** The mobile node's side of HOA's pair (BU out, BA in). */
function mnSad(hoa = HOA, buSa = GCM_BU, baSa = GCM_BA): SecurityAssociationDatabase {
  const sad = new SecurityAssociationDatabase();
  sad.add(
    new SecurityAssociation(buSa, { direction: "outbound", homeAddress: hoa, homeAgent: HA }),
  );
  sad.add(new SecurityAssociation(baSa, { direction: "inbound", homeAddress: hoa, homeAgent: HA }));
  return sad;
}

function bu(sequence: number): Omit<BuRepr, "type"> {
  return homeBu(sequence, 30);
}

/** The ESP bytes and HAO of a protected BU, as the DSTOPTS socket path hands them over. */
async function protectedBu(sad: SecurityAssociationDatabase, seq: number, hoa = HOA) {
  const pkt = await buildProtectedBindingUpdate(sad.outbound(hoa, HA)!, {
    careOf: COA,
    homeAgent: HA,
    homeAddress: hoa,
    bu: bu(seq),
  });
  return pkt.slice(40 + 24); // IPv6 header, DestOpts (PadN + HAO)
}

Deno.test("HaEsp: SAD from config; BU unprotected with its SPI; replay, tamper, policy counted", async () => {
  const esp = new HaEsp(CONFIG, HA);
  assert.deepEqual(esp.homeAddresses, [HOA, HOA2]);
  const mn = mnSad();
  const bytes = await protectedBu(mn, 7);
  assert.equal(peekSpi(bytes), 0x1001);
  const r = await esp.unprotect(bytes, { src: COA, dst: HA, hao: HOA });
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.spi, 0x1001);
  assert.equal(r.value.mh.type === "bu" && r.value.mh.sequence, 7);
  // the same packet again: a replay (RFC 4303 §3.4.3)
  const again = await esp.unprotect(bytes, { src: COA, dst: HA, hao: HOA });
  assert.equal(again.ok, false);
  assert.equal(!again.ok && again.counter, "esp_replay");
  // one bit flipped in the ciphertext: integrity (§3.4.4)
  const next = await protectedBu(mn, 8);
  next[20] ^= 0x01;
  const bad = await esp.unprotect(next, { src: COA, dst: HA, hao: HOA });
  assert.equal(!bad.ok && bad.counter, "esp_integrity");
  // HOA's SA used for HOA2's registration: policy (RFC 4877 §4)
  const other = await esp.unprotect(await protectedBu(mn, 9), { src: COA, dst: HA, hao: HOA2 });
  assert.equal(!other.ok && other.counter, "esp_policy");
  // an SPI nobody configured
  const stray = (await protectedBu(mn, 10)).slice();
  stray[0] = 0x77;
  const u = await esp.unprotect(stray, { src: COA, dst: HA, hao: HOA });
  assert.equal(!u.ok && u.counter, "esp_unknown_spi");
  assert.deepEqual(esp.counters, {
    esp_received: 1,
    esp_replay: 1,
    esp_integrity: 1,
    esp_policy: 1,
    esp_unknown_spi: 1,
  });
  assert.equal(espCounterName({ kind: "checksum", field: "mh.checksum" }), "esp_mh_checksum");
  // CBC + HMAC for the second home address, from home (no HAO: the source is the HoA)
  const mn2 = mnSad(HOA2, CBC_BU, CBC_BA);
  const home = await buildProtectedMobilityPacket(mn2.outbound(HOA2, HA)!, {
    src: HOA2,
    dst: HA,
    mh: { type: "bu", ...bu(3), lifetime: 0, options: [] },
  });
  const h = await esp.unprotect(home.slice(40), { src: HOA2, dst: HA });
  assert.ok(h.ok);
  assert.equal(h.spi, 0x2001);
});

Deno.test("HaEsp: protected BAs after a reservation; a restart never reuses a sequence", async () => {
  const esp = new HaEsp(CONFIG, HA);
  const ba = (seq: number, to = COA) => ({
    type: "sendBa" as const,
    from: HA,
    to,
    homeAddress: HOA,
    status: 0,
    sequence: seq,
    lifetime: 7,
    protect: true,
  });
  assert.equal(esp.reservationNeeded(HOA), ESP_SEQUENCE_RESERVE, "nothing reserved yet");
  esp.committed(HOA, ESP_SEQUENCE_RESERVE);
  const mn = mnSad();
  const seen: number[] = [];
  for (let i = 1; i <= ESP_SEQUENCE_RESERVE; i++) {
    assert.equal(esp.reservationNeeded(HOA), undefined, `BA ${i} is covered`);
    const pkt = await esp.protectBa(ba(i));
    const r = await unprotectPacket(mn, pkt, "mobileNode");
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.value.mh.type === "ba" && r.value.mh.sequence, i);
    seen.push(r.value.sequence);
  }
  assert.deepEqual(seen, Array.from({ length: 64 }, (_, i) => i + 1));
  assert.equal(esp.reservationNeeded(HOA), 2 * ESP_SEQUENCE_RESERVE, "the 65th needs more");
  // what is written holds the reservation, not the last sequence number sent
  const state = esp.exportState() as { spi: number; direction: string; sequence?: number }[];
  assert.deepEqual(state.find((s) => s.spi === 0x1002), {
    spi: 0x1002,
    direction: "outbound",
    sequence: 64,
  });
  // a restart from that state goes on after it (a crash right after BA 64 included)
  const again = new HaEsp(CONFIG, HA);
  assert.deepEqual(again.importState(JSON.parse(JSON.stringify(esp.exportState()))), []);
  assert.equal(again.reservationNeeded(HOA), 64 + ESP_SEQUENCE_RESERVE);
  again.committed(HOA, 128);
  const first = await unprotectPacket(mn, await again.protectBa(ba(99)), "mobileNode");
  assert.ok(first.ok);
  assert.equal(first.value.sequence, 65);
  // at home: IPv6 | ESP | MH, no routing header
  const home = await again.protectBa(ba(100, HOA));
  assert.equal(home[6], 50);
  assert.ok((await unprotectPacket(mn, home, "mobileNode")).ok);
  // inbound windows travel too: a BU accepted before the restart is a replay after it
  const bytes = await protectedBu(mnSad(), 5);
  assert.ok((await esp.unprotect(bytes, { src: COA, dst: HA, hao: HOA })).ok);
  const third = new HaEsp(CONFIG, HA);
  third.importState(JSON.parse(JSON.stringify(esp.exportState())));
  const replay = await third.unprotect(bytes, { src: COA, dst: HA, hao: HOA });
  assert.equal(!replay.ok && replay.counter, "esp_replay");
  // state of SAs no longer configured is reported, not applied
  assert.match(
    third.importState([{ spi: 0x9999, direction: "inbound", replay: { top: 1, bitmap: "1" } }])[0],
    /no such SA configured/,
  );
  assert.equal((third.status().sas as unknown[]).length, 4);
  // a lost state: the counters jump far ahead instead of starting over
  const lost = new HaEsp(CONFIG, HA);
  assert.equal(lost.skipOutboundTo(2 ** 31), 2);
  assert.equal(lost.reservationNeeded(HOA), 2 ** 31 + ESP_SEQUENCE_RESERVE);
  lost.committed(HOA, 2 ** 31 + ESP_SEQUENCE_RESERVE);
  const jumped = await unprotectPacket(mnSad(), await lost.protectBa(ba(1)), "mobileNode");
  assert.ok(jumped.ok);
  assert.equal(jumped.value.sequence, 2 ** 31 + 1);
});
