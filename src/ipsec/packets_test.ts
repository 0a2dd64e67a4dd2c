import assert from "node:assert/strict";
import { IPPROTO } from "../wire/addr.ts";
import { walkExtensionHeaders } from "../wire/ext_headers.ts";
import type { BaRepr, BuRepr } from "../wire/mobility.ts";
import { buildBindingAck, buildBindingUpdate } from "../wire/packet.ts";
import type { EspSaConfig } from "./config.ts";
import { protect } from "./esp.ts";
import {
  buildProtectedBindingAck,
  buildProtectedBindingUpdate,
  buildProtectedMobilityPacket,
  protectMobility,
  unprotectMobility,
  unprotectPacket,
} from "./packets.ts";
import { SecurityAssociation, SecurityAssociationDatabase } from "./sa.ts";
import { COA, HA, HOA, homeBu } from "../wire/test_util.ts";

const BU_CFG: EspSaConfig = { spi: 0x2001, algorithm: "aes-gcm-128", key: "a1".repeat(20) };
const BA_CFG: EspSaConfig = {
  spi: 0x2002,
  algorithm: "null-hmac-sha256",
  key: "",
  authKey: "b2".repeat(32),
};
const BU: Omit<BuRepr, "type"> = homeBu(4242, 15);
const BA: Omit<BaRepr, "type"> = {
  status: 0,
  flags: { key: false, mobileRouter: false, proxy: false },
  sequence: 4242,
  lifetime: 15,
  options: [],
};

/** Both ends of one registration: the mobile node's SAD and the home agent's. */
function ends() {
  const at = (cfg: EspSaConfig, direction: "inbound" | "outbound") =>
    new SecurityAssociation(cfg, { direction, homeAddress: HOA, homeAgent: HA });
  const mn = new SecurityAssociationDatabase();
  const ha = new SecurityAssociationDatabase();
  mn.add(at(BU_CFG, "outbound"));
  mn.add(at(BA_CFG, "inbound"));
  ha.add(at(BU_CFG, "inbound"));
  ha.add(at(BA_CFG, "outbound"));
  return { mn, ha };
}

Deno.test("protected BU: IPv6 | DestOpts(HAO) | ESP | MH, and the home agent reads it back", async () => {
  const { mn, ha } = ends();
  const pkt = await buildProtectedBindingUpdate(mn.outbound(HOA, HA)!, {
    careOf: COA,
    homeAgent: HA,
    homeAddress: HOA,
    bu: BU,
  });
  assert.equal(pkt[6], IPPROTO.DSTOPTS);
  const chain = walkExtensionHeaders(pkt.subarray(40), pkt[6]);
  assert.ok(chain.ok);
  assert.equal(chain.value.homeAddress, HOA);
  assert.equal(chain.value.upperProtocol, IPPROTO.ESP);
  assert.equal(chain.value.upperOffset, 24);
  // The same packet as the plain builder's, with ESP between the HAO and the MH.
  const plainBu = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu: BU });
  assert.deepEqual(pkt.subarray(0, 4), plainBu.subarray(0, 4));
  assert.deepEqual(pkt.subarray(8, 40), plainBu.subarray(8, 40));
  assert.deepEqual(pkt.subarray(41, 64), plainBu.subarray(41, 64));

  const r = await unprotectPacket(ha, pkt, "homeAgent");
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.value.mh, { type: "bu", ...BU });
  assert.equal(r.value.homeAddress, HOA);
  assert.equal(r.value.sa.spi, BU_CFG.spi);
  assert.equal(r.value.ipv6.src, COA);
  const again = await unprotectPacket(ha, pkt, "homeAgent");
  assert.equal(
    again.ok ? "ok" : `${again.kind}/${again.field}/${again.offset}`,
    "replay/sequence/68",
  );
});

Deno.test("protected BA: IPv6 | RH2 | ESP | MH, and the mobile node reads it back", async () => {
  const { mn, ha } = ends();
  const pkt = await buildProtectedBindingAck(ha.outbound(HOA, HA)!, {
    homeAgent: HA,
    careOf: COA,
    homeAddress: HOA,
    ba: BA,
  });
  assert.equal(pkt[6], IPPROTO.ROUTING);
  assert.equal(pkt[40], IPPROTO.ESP);
  const plainBa = buildBindingAck({ homeAgent: HA, careOf: COA, homeAddress: HOA, ba: BA });
  // NULL encryption: the MH is in clear, byte for byte the plain BA's (checksum over the HoA).
  assert.deepEqual(pkt.subarray(64 + 8, 64 + 8 + 16), plainBa.subarray(64));
  const r = await unprotectPacket(mn, pkt, "mobileNode");
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.value.mh, { type: "ba", ...BA });
  assert.equal(r.value.homeAddress, HOA);
});

Deno.test("protected packets at home: IPv6 | ESP | MH both ways", async () => {
  const { mn, ha } = ends();
  const bu = await buildProtectedMobilityPacket(mn.outbound(HOA, HA)!, {
    src: HOA,
    dst: HA,
    mh: { type: "bu", ...BU, lifetime: 0, options: [] },
  });
  assert.equal(bu[6], IPPROTO.ESP);
  const r = await unprotectPacket(ha, bu, "homeAgent");
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.value.mh.type === "bu" && r.value.mh.lifetime, 0);
  const ba = await buildProtectedMobilityPacket(ha.outbound(HOA, HA)!, {
    src: HA,
    dst: HOA,
    mh: { type: "ba", ...BA, lifetime: 0 },
  });
  const r2 = await unprotectPacket(mn, ba, "mobileNode");
  assert.ok(r2.ok, JSON.stringify(r2));
});

Deno.test("unprotectMobility: a HAO naming another home address is refused (RFC 4877 §4)", async () => {
  const { mn, ha } = ends();
  const sa = mn.outbound(HOA, HA)!;
  const esp = await protectMobility(sa, { type: "bu", ...BU }, { src: HOA, dst: HA });
  const other = "2001:db8:2000::66";
  const r = await unprotectMobility(ha, esp, {
    src: COA,
    dst: HA,
    hao: other,
    receiver: "homeAgent",
  });
  assert.equal(r.ok ? "ok" : `${r.kind}/${r.field}`, "policy/homeAddress");
  // Sent to another home agent address: also refused.
  const r2 = await unprotectMobility(ha, esp, {
    src: COA,
    dst: "2001:db8:2000::2",
    hao: HOA,
    receiver: "homeAgent",
  });
  assert.equal(r2.ok ? "ok" : `${r2.kind}/${r2.field}`, "policy/homeAgent");
  // The genuine addressing still works: nothing above consumed the sequence number.
  const r3 = await unprotectMobility(ha, esp, {
    src: COA,
    dst: HA,
    hao: HOA,
    receiver: "homeAgent",
  });
  assert.ok(r3.ok, JSON.stringify(r3));
});

Deno.test("unprotectMobility: the inner MH checksum is checked over the HoA", async () => {
  const { mn, ha } = ends();
  const sa = mn.outbound(HOA, HA)!;
  // A sender that summed over the CoA (the kernel's mistake, DESIGN.md) is caught after ESP.
  const esp = await protectMobility(sa, { type: "bu", ...BU }, { src: COA, dst: HA });
  const r = await unprotectMobility(ha, esp, {
    src: COA,
    dst: HA,
    hao: HOA,
    receiver: "homeAgent",
  });
  assert.equal(r.ok ? "ok" : `${r.kind}/${r.field}/${r.offset}`, "checksum/mh.checksum/4");
  // Not an MH inside: unsupported.
  const udp = await protect(sa, IPPROTO.UDP, new Uint8Array(8));
  const r2 = await unprotectMobility(ha, udp, {
    src: COA,
    dst: HA,
    hao: HOA,
    receiver: "homeAgent",
  });
  assert.equal(r2.ok ? "ok" : `${r2.kind}/${r2.field}`, "unsupported/innerNextHeader");
});

Deno.test("unprotectPacket: non-ESP packets and broken headers are values", async () => {
  const { ha } = ends();
  const plainBu = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu: BU });
  const r = await unprotectPacket(ha, plainBu, "homeAgent");
  assert.equal(r.ok ? "ok" : `${r.kind}/${r.field}`, "unsupported/nextHeader");
  const r2 = await unprotectPacket(ha, plainBu.subarray(0, 30), "homeAgent");
  assert.equal(r2.ok ? "ok" : r2.kind, "truncated");
});
