import assert from "node:assert/strict";
import { buildBindingAck, buildEthernetFrame, buildMobilityPacket } from "../wire/packet.ts";
import type { BaRepr } from "../wire/mobility.ts";
import {
  decodeHomeFrame,
  decodeMhDatagram,
  decodeProtected,
  decodeProtectedHomeFrame,
  decodeProtectedRoutingDatagram,
  decodeRoutingDatagram,
  peekHomeFrame,
  peekRoutingDatagram,
} from "./signaling.ts";
import { protect } from "../ipsec/esp.ts";
import {
  buildProtectedBindingAck,
  buildProtectedMobilityPacket,
  protectMobility,
} from "../ipsec/packets.ts";
import { SecurityAssociation, SecurityAssociationDatabase } from "../ipsec/sa.ts";
import { emitRoutingType2, ROUTING_TYPE2_LEN } from "../wire/ext_headers.ts";
import { PAIR } from "./testdata/esp_pair.ts";
import { parseIPv6 } from "../wire/addr.ts";
import { pickCareOf, raIntervalOverride, stateNameFor } from "./daemon.ts";
import { IFA_F } from "../../ffi/netlink.ts";
import { COA, HA, HOA } from "../wire/test_util.ts";

const BA: BaRepr = {
  type: "ba",
  status: 0,
  flags: { key: false, mobileRouter: false, proxy: false },
  sequence: 77,
  lifetime: 15,
  options: [],
};

Deno.test("decodeRoutingDatagram: RH2 + BA as a raw IPPROTO_ROUTING socket delivers it", () => {
  const pkt = buildBindingAck({ homeAgent: HA, careOf: COA, homeAddress: HOA, ba: BA });
  const data = pkt.subarray(40); // the raw socket's data starts at the routing header
  const d = decodeRoutingDatagram(data, HA, COA);
  assert.ok(d.ok);
  assert.deepEqual(d.msg, { type: "ba", src: HA, dst: COA, rh2HomeAddress: HOA, ba: BA });
  // A flipped bit fails the checksum (computed over the HoA as final destination).
  const bad = data.slice();
  bad[bad.length - 1] ^= 1;
  assert.deepEqual(decodeRoutingDatagram(bad, HA, COA), { ok: false, why: "rx_checksum" });
  // The same bytes "from" another source fail too: the source is in the pseudo-header.
  assert.deepEqual(decodeRoutingDatagram(data, "2001:db8::66", COA), {
    ok: false,
    why: "rx_checksum",
  });
  // Not a routing header we know, or not followed by MH.
  assert.deepEqual(decodeRoutingDatagram(data.subarray(0, 5), HA, COA), {
    ok: false,
    why: "rx_malformed",
  });
  const notMh = data.slice();
  notMh[0] = 58;
  assert.deepEqual(decodeRoutingDatagram(notMh, HA, COA), { ok: false, why: "rx_not_mh" });
});

Deno.test("decodeMhDatagram: a Binding Error on the MH socket", () => {
  const pkt = buildMobilityPacket({
    src: HA,
    dst: COA,
    mh: { type: "be", status: 1, homeAddress: HOA },
  });
  const d = decodeMhDatagram(pkt.subarray(40), HA, COA);
  assert.ok(d.ok);
  assert.deepEqual(d.msg, {
    type: "be",
    src: HA,
    dst: COA,
    be: { type: "be", status: 1, homeAddress: HOA },
  });
  assert.equal(decodeMhDatagram(new Uint8Array(3), HA, COA).ok, false);
});

Deno.test("decodeHomeFrame: the BA to a deregistration from home, nothing else", () => {
  const ip = buildMobilityPacket({ src: HA, dst: HOA, mh: BA });
  const frame = buildEthernetFrame({ dst: "52:54:00:00:00:10", src: "02:00:00:00:00:99" }, ip);
  const d = decodeHomeFrame(frame, HA, new Set([HOA]));
  assert.ok(d !== null && d.ok);
  assert.deepEqual(d.msg, { type: "ba", src: HA, dst: HOA, ba: BA });
  // Other home addresses, other sources, non-IPv6 frames: silently not ours.
  assert.equal(decodeHomeFrame(frame, HA, new Set(["2001:db8:2000::11"])), null);
  assert.equal(decodeHomeFrame(frame, "2001:db8:2000::2", new Set([HOA])), null);
  const arp = frame.slice();
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(decodeHomeFrame(arp, HA, new Set([HOA])), null);
  const bad = frame.slice();
  bad[bad.length - 2] ^= 0xff;
  assert.deepEqual(decodeHomeFrame(bad, HA, new Set([HOA])), { ok: false, why: "rx_checksum" });
});

Deno.test("pickCareOf: a global, usable, preferably non-deprecated address", () => {
  const g = (address: string, flags = 0, scope = "global") => ({ address, flags, scope });
  assert.equal(pickCareOf([g("fe80::1", 0, "link")]), null);
  assert.equal(pickCareOf([g("2001:db8::1", IFA_F.TENTATIVE)]), null);
  assert.equal(
    pickCareOf([g("2001:db8::1", IFA_F.DEPRECATED), g("2001:db8::2", IFA_F.PERMANENT)]),
    "2001:db8::2",
  );
  assert.equal(pickCareOf([g("2001:db8::1", IFA_F.DEPRECATED)]), "2001:db8::1");
});

Deno.test("stateNameFor: one plain file name per home address", () => {
  assert.equal(stateNameFor("2001:DB8:2000:0::10"), "binding-2001_db8_2000__10");
});

Deno.test("peekRoutingDatagram: RH2 + MH from the HA only, before any parse", () => {
  const pkt = buildBindingAck({ homeAgent: HA, careOf: COA, homeAddress: HOA, ba: BA });
  const data = pkt.subarray(40);
  const ha = parseIPv6(HA);
  assert.equal(peekRoutingDatagram(data, data.length, ha, ha), null);
  assert.equal(peekRoutingDatagram(data, data.length, parseIPv6(COA), ha), "rx_not_from_ha");
  const rh0 = data.slice();
  rh0[2] = 0; // routing type 0
  assert.equal(peekRoutingDatagram(rh0, rh0.length, ha, ha), "rx_not_mh");
  const udp = data.slice();
  udp[0] = 17;
  assert.equal(peekRoutingDatagram(udp, udp.length, ha, ha), "rx_not_mh");
  assert.equal(peekRoutingDatagram(data, 7, ha, ha), "rx_not_mh");
});

Deno.test("peekHomeFrame: IPv6 MH from the HA to a watched home address", () => {
  const ip = buildMobilityPacket({ src: HA, dst: HOA, mh: BA });
  const frame = buildEthernetFrame({ dst: "52:54:00:00:00:10", src: "02:00:00:00:00:99" }, ip);
  const ha = parseIPv6(HA);
  const hoas = [parseIPv6("2001:db8:2000::11"), parseIPv6(HOA)];
  assert.equal(peekHomeFrame(frame, frame.length, ha, hoas), true);
  assert.equal(peekHomeFrame(frame, frame.length, ha, [hoas[0]]), false);
  assert.equal(peekHomeFrame(frame, frame.length, parseIPv6(COA), hoas), false);
  const udp = frame.slice();
  udp[20] = 17;
  assert.equal(peekHomeFrame(udp, udp.length, ha, hoas), false);
  const arp = frame.slice();
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(peekHomeFrame(arp, arp.length, ha, hoas), false);
  assert.equal(peekHomeFrame(frame, 14 + 40, ha, hoas), false);
  // What passes the peek decodes to the BA.
  const d = decodeHomeFrame(frame, HA, new Set([HOA]));
  assert.ok(d !== null && d.ok && d.msg.type === "ba");
});

Deno.test("raIntervalOverride: the test-only MIN,MAX seconds, or the defaults", () => {
  assert.deepEqual(raIntervalOverride(undefined), {});
  assert.deepEqual(raIntervalOverride(""), {});
  assert.deepEqual(raIntervalOverride(" 1, 2.5 "), {
    minRtrAdvIntervalS: 1,
    maxRtrAdvIntervalS: 2.5,
  });
  for (const bad of ["2", "0,1", "3,2", "a,b", "1,2,3"]) {
    assert.throws(() => raIntervalOverride(bad), RangeError, bad);
  }
});

// ---- ESP (RFC 4877 §4) ----------------------------------------------------------------------

/** The HA's outbound BA SA and the mobile node's SAD with the matching inbound one. */
function espPeers() {
  const at = { homeAddress: HOA, homeAgent: HA };
  const ha = new SecurityAssociation(PAIR.ba, { direction: "outbound", ...at });
  const sad = new SecurityAssociationDatabase();
  sad.add(new SecurityAssociation(PAIR.ba, { direction: "inbound", ...at }));
  return { ha, sad };
}

Deno.test("decodeProtectedRoutingDatagram: RH2 | ESP | BA, as the raw ROUTING socket delivers it", async () => {
  const { ha, sad } = espPeers();
  const pkt = await buildProtectedBindingAck(ha, {
    homeAgent: HA,
    careOf: COA,
    homeAddress: HOA,
    ba: BA,
  });
  const data = pkt.subarray(40);
  const hab = parseIPv6(HA);
  assert.equal(peekRoutingDatagram(data, data.length, hab, hab), null, "ESP after RH2 passes");
  const d = await decodeProtectedRoutingDatagram(sad, data, HA, COA);
  assert.ok(d.ok, JSON.stringify(d));
  assert.deepEqual(d.msg, {
    type: "ba",
    src: HA,
    dst: COA,
    rh2HomeAddress: HOA,
    ba: BA,
    esp: { spi: PAIR.ba.spi, sequence: 1 },
  });
  // The same bytes again: a replay (RFC 4303 §3.4.3).
  const again = await decodeProtectedRoutingDatagram(sad, data, HA, COA);
  assert.ok(!again.ok && again.why === "esp_replay", JSON.stringify(again));
  // One flipped ICV bit (a fresh packet, so the replay check passes first).
  const next = (await buildProtectedBindingAck(ha, {
    homeAgent: HA,
    careOf: COA,
    homeAddress: HOA,
    ba: BA,
  })).subarray(40);
  const flipped = next.slice();
  flipped[flipped.length - 1] ^= 1;
  const bad = await decodeProtectedRoutingDatagram(sad, flipped, HA, COA);
  assert.ok(!bad.ok && bad.why === "esp_integrity", JSON.stringify(bad));
  // The authentic one still goes through afterwards (a forgery moved no window).
  assert.ok((await decodeProtectedRoutingDatagram(sad, next, HA, COA)).ok);
  // The RH2 names another home address than the SA's: policy (RFC 4877 §4).
  const other = (await buildProtectedBindingAck(ha, {
    homeAgent: HA,
    careOf: COA,
    homeAddress: "2001:db8:2000::11",
    ba: BA,
  })).subarray(40);
  const pol = await decodeProtectedRoutingDatagram(sad, other, HA, COA);
  assert.ok(!pol.ok && pol.why === "esp_policy", JSON.stringify(pol));
  // Sent by someone else than the home agent (the source is not covered by the ICV).
  const spoof = (await buildProtectedBindingAck(ha, {
    homeAgent: HA,
    careOf: COA,
    homeAddress: HOA,
    ba: BA,
  })).subarray(40);
  const s = await decodeProtectedRoutingDatagram(sad, spoof, "2001:db8:2000::66", COA);
  assert.ok(!s.ok && s.why === "esp_policy", JSON.stringify(s));
  // An SPI nobody configured.
  const unknown = next.slice();
  unknown[24 + 3] ^= 0xff;
  const u = await decodeProtectedRoutingDatagram(sad, unknown, HA, COA);
  assert.ok(!u.ok && u.why === "esp_unknown_spi", JSON.stringify(u));
  // Without ESP the plain decoder answers (the daemon then applies the policy).
  const plain = buildBindingAck({ homeAgent: HA, careOf: COA, homeAddress: HOA, ba: BA });
  const p = await decodeProtectedRoutingDatagram(sad, plain.subarray(40), HA, COA);
  assert.ok(p.ok && p.msg.type === "ba" && p.msg.esp === undefined);
});

Deno.test("decodeProtected: an authentic dummy packet (next header 59) is dropped silently", async () => {
  const { ha, sad } = espPeers();
  const rh = new Uint8Array(ROUTING_TYPE2_LEN);
  emitRoutingType2({ nextHeader: 50, segmentsLeft: 1, homeAddress: HOA }, rh);
  const dummy = await protect(ha, 59, new Uint8Array(16));
  const data = new Uint8Array(rh.length + dummy.length);
  data.set(rh);
  data.set(dummy, rh.length);
  assert.deepEqual(await decodeProtectedRoutingDatagram(sad, data, HA, COA), {
    ok: false,
    why: "esp_dummy",
  });
  // Authentic, but UDP inside: not for us, and said so.
  const udp = await protect(ha, 17, new Uint8Array(16));
  const u = await decodeProtected(sad, udp, { src: HA, dst: COA, rh2: HOA });
  assert.ok(!u.ok && u.why === "esp_not_mh" && /next header 17/.test(u.detail ?? ""));
  // A protected Binding Error is not a thing (BEs come unprotected, RFC 6275 §6.1.9).
  const be = await protectMobility(ha, { type: "be", status: 1, homeAddress: HOA }, {
    src: HA,
    dst: HOA,
  });
  const b = await decodeProtected(sad, be, { src: HA, dst: COA, rh2: HOA });
  assert.deepEqual(b, { ok: false, why: "rx_other_mh" });
});

Deno.test("decodeProtectedHomeFrame: IPv6 (HA → HoA) | ESP | BA on the home link", async () => {
  const { ha, sad } = espPeers();
  const ip = await buildProtectedMobilityPacket(ha, { src: HA, dst: HOA, mh: BA });
  const frame = buildEthernetFrame({ dst: "52:54:00:00:00:10", src: "02:00:00:00:00:99" }, ip);
  const hab = parseIPv6(HA);
  assert.equal(peekHomeFrame(frame, frame.length, hab, [parseIPv6(HOA)]), true);
  assert.equal(
    await decodeProtectedHomeFrame(sad, frame, HA, new Set(["2001:db8:2000::11"])),
    null,
  );
  assert.equal(
    await decodeProtectedHomeFrame(sad, frame, "2001:db8:2000::2", new Set([HOA])),
    null,
  );
  const d = await decodeProtectedHomeFrame(sad, frame, HA, new Set([HOA]));
  assert.ok(d !== null && d.ok, JSON.stringify(d));
  assert.deepEqual(d.msg, {
    type: "ba",
    src: HA,
    dst: HOA,
    ba: BA,
    esp: { spi: PAIR.ba.spi, sequence: 1 },
  });
  const replay = await decodeProtectedHomeFrame(sad, frame, HA, new Set([HOA]));
  assert.ok(replay !== null && !replay.ok && replay.why === "esp_replay");
  // A plain BA frame is not this decoder's (null): decodeHomeFrame takes it.
  const plain = buildEthernetFrame(
    { dst: "52:54:00:00:00:10", src: "02:00:00:00:00:99" },
    buildMobilityPacket({ src: HA, dst: HOA, mh: BA }),
  );
  assert.equal(await decodeProtectedHomeFrame(sad, plain, HA, new Set([HOA])), null);
});
