/**
 * The socket paths phase 2 will wire, proved on this kernel (no ESP, no XFRM, no MIP6) in two
 * lab namespaces, with the packets of src/ipsec:
 * - mobile node → home agent: the ESP bytes through a raw IPPROTO_ESP socket with the HAO in
 *   an IPV6_DSTOPTS cmsg; the home agent's raw IPPROTO_DSTOPTS socket gets DestOpts + ESP and
 *   unprotects it. The kernel drops the packet at the HAO, so a raw IPPROTO_ESP socket on the
 *   home agent gets no second copy;
 * - home agent → mobile node: IPv6 | RH2 | ESP | MH whole through IPPROTO_RAW; the mobile
 *   node's raw IPPROTO_ROUTING socket gets RH2 + ESP + MH;
 * - at home: IPv6 (HoA → HA) | ESP | MH reaches a raw IPPROTO_ESP socket on the home agent.
 */

import assert from "node:assert/strict";
import { IPPROTO_DSTOPTS, IPPROTO_ESP, IPPROTO_RAW, IPPROTO_ROUTING } from "../../ffi/constants.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { RawSocket6 } from "../../ffi/raw_socket.ts";
import {
  buildProtectedBindingAck,
  buildProtectedMobilityPacket,
  protectMobility,
  unprotectMobility,
} from "../../src/ipsec/packets.ts";
import { SecurityAssociationDatabase } from "../../src/ipsec/sa.ts";
import { IPPROTO } from "../../src/wire/addr.ts";
import { emitDestOpts } from "../../src/wire/ext_headers.ts";
import { inNetns } from "../ffi/in_netns.ts";
import { recvOne, upPair } from "../ffi/packets.ts";
import { needs } from "../helpers/env.ts";
import { Lab, type Netns } from "../helpers/netns.ts";
import { ADDR, ba, bu, saFor } from "./esp_oracle.ts";

const { homeAddress: HOA, homeAgent: HA, careOf: COA } = ADDR;

async function twoHosts(lab: Lab): Promise<{ mn: Netns; ha: Netns }> {
  const [mn, ha] = await upPair(lab, "esp-mn", "esp-ha");
  await mn.ip("addr", "add", `${COA}/64`, "dev", "eth0", "nodad");
  await mn.ip("route", "add", "2001:db8:2000::/64", "dev", "eth0");
  await ha.ip("addr", "add", `${HA}/64`, "dev", "eth0", "nodad");
  await ha.ip("route", "add", "2001:db8:3000::/64", "dev", "eth0");
  return { mn, ha };
}

/** The SADs of both ends, with the GCM pair. */
function sads() {
  const mn = new SecurityAssociationDatabase();
  const ha = new SecurityAssociationDatabase();
  mn.add(saFor("aes-gcm-128", "outbound"));
  ha.add(saFor("aes-gcm-128", "inbound"));
  // BA SA: another algorithm, so both directions are exercised with different keys.
  ha.add(saFor("null-hmac-sha256", "outbound"));
  mn.add(saFor("null-hmac-sha256", "inbound"));
  return { mn, ha };
}

Deno.test({
  name: "kernel: protected BU via IPPROTO_ESP + IPV6_DSTOPTS reaches the HA's DSTOPTS socket",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const { mn, ha } = await twoHosts(lab);
    const sad = sads();
    using tx = inNetns(mn, () => RawSocket6.open(IPPROTO_ESP));
    using rx = inNetns(ha, () => RawSocket6.open(IPPROTO_DSTOPTS, { nonblocking: true }));
    using espRx = inNetns(ha, () => RawSocket6.open(IPPROTO_ESP, { nonblocking: true }));
    rx.setRecvPktInfo(true);
    // A raw ESP socket does no checksumming (unlike IPPROTO_MH's default offset 4).
    assert.equal(tx.getChecksumOffset(), -1);

    const esp = await protectMobility(sad.mn.outbound(HOA, HA)!, { type: "bu", ...bu(9) }, {
      src: HOA,
      dst: HA,
    });
    const hao = new Uint8Array(24);
    emitDestOpts({ nextHeader: 0, options: [{ type: "hao", homeAddress: HOA }] }, hao);
    assert.equal(tx.send(esp, { dst: HA, src: COA, dstOpts: hao }), esp.length);

    const buf = new Uint8Array(2048);
    const info = await recvOne(rx, buf);
    assert.equal(info.src, COA);
    assert.equal(info.dst, HA);
    assert.equal(buf[0], IPPROTO.ESP, "the kernel set the DestOpts' next header to ESP");
    assert.deepEqual(buf.subarray(24, info.length), esp);
    const r = await unprotectMobility(sad.ha, buf.subarray(24, info.length), {
      src: info.src,
      dst: info.dst!,
      hao: HOA,
      receiver: "homeAgent",
    });
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.value.mh, { type: "bu", ...bu(9) });
    // Without MIP6 the kernel stops at the HAO: no copy for the ESP socket.
    assert.equal(await waitReadable(espRx.fd, 300), false);
  },
});

Deno.test({
  name: "kernel: protected BA (RH2) via IPPROTO_RAW reaches the MN's ROUTING socket",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const { mn, ha } = await twoHosts(lab);
    const sad = sads();
    using raw = inNetns(ha, () => RawSocket6.open(IPPROTO_RAW));
    using rx = inNetns(mn, () => RawSocket6.open(IPPROTO_ROUTING, { nonblocking: true }));
    rx.setRecvPktInfo(true);
    const pkt = await buildProtectedBindingAck(sad.ha.outbound(HOA, HA)!, {
      ...ADDR,
      ba: ba(9),
    });
    assert.equal(raw.sendRaw(pkt, COA), pkt.length);
    const buf = new Uint8Array(2048);
    const info = await recvOne(rx, buf);
    assert.deepEqual(buf.subarray(0, info.length), pkt.subarray(40));
    const r = await unprotectMobility(sad.mn, buf.subarray(24, info.length), {
      src: info.src,
      dst: info.dst!,
      rh2: HOA,
      receiver: "mobileNode",
    });
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.value.mh, { type: "ba", ...ba(9) });
  },
});

Deno.test({
  name: "kernel: a protected BU from home reaches a raw IPPROTO_ESP socket on the HA",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const { mn, ha } = await twoHosts(lab);
    const sad = sads();
    using raw = inNetns(mn, () => RawSocket6.open(IPPROTO_RAW));
    using rx = inNetns(ha, () => RawSocket6.open(IPPROTO_ESP, { nonblocking: true }));
    rx.setRecvPktInfo(true);
    const pkt = await buildProtectedMobilityPacket(sad.mn.outbound(HOA, HA)!, {
      src: HOA,
      dst: HA,
      mh: { type: "bu", ...bu(10), lifetime: 0, options: [] },
    });
    assert.equal(raw.sendRaw(pkt, HA), pkt.length);
    const buf = new Uint8Array(2048);
    const info = await recvOne(rx, buf);
    assert.equal(info.src, HOA);
    const r = await unprotectMobility(sad.ha, buf.subarray(0, info.length), {
      src: info.src,
      dst: info.dst!,
      receiver: "homeAgent",
    });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.value.mh.type === "bu" && r.value.mh.lifetime, 0);
  },
});
