/**
 * RawSocket6 against a real kernel, in two lab namespaces: the Mobile IPv6
 * signaling shapes (RFC 6275 §6.1.7 BU with a HAO, §6.1.8 BA with a type 2
 * routing header) built by hand here, byte for byte.
 */

import assert from "node:assert/strict";
import {
  IPPROTO_DSTOPTS,
  IPPROTO_ICMPV6,
  IPPROTO_MH,
  IPPROTO_RAW,
  IPPROTO_ROUTING,
} from "../../ffi/constants.ts";
import { ErrnoError } from "../../ffi/libc.ts";
import { RawSocket6 } from "../../ffi/raw_socket.ts";
import { parseIpv6 } from "../../ffi/structs.ts";
import { needs } from "../helpers/env.ts";
import { Lab, type Netns } from "../helpers/netns.ts";
import { inNetns } from "./in_netns.ts";
import { checksum, concat, linkInfo, recvOne, upPair } from "./packets.ts";

const COA = "2001:db8:3000::3";
const HA = "2001:db8:3000::1";
const HOA = "2001:db8:2000::10";

/** Binding Update (RFC 6275 §6.1.7), A|H, seq 7, lifetime 100 (×4 s), with an Alternate CoA. */
function bindingUpdate(): Uint8Array {
  const m = new Uint8Array(32);
  m[0] = 59; // payload proto: none
  m[1] = 3; // header length: (32 / 8) - 1
  m[2] = 5; // MH type: BU
  m[6] = 0x00, m[7] = 0x07; // sequence 7
  m[8] = 0xc0; // A | H
  m[10] = 0x00, m[11] = 100; // lifetime
  m[12] = 1, m[13] = 0; // PadN(0): Alternate CoA must sit at 8n+6
  m[14] = 3, m[15] = 16; // Alternate Care-of Address option
  m.set(parseIpv6(COA), 16);
  const c = checksum(HOA, HA, IPPROTO_MH, m); // §6.1.1: the HoA when a HAO is present
  m[4] = c >> 8, m[5] = c & 0xff;
  return m;
}

/** Destination Options header with PadN(2) and a Home Address option (RFC 6275 §6.3). */
function haoDestOpts(): Uint8Array {
  const h = new Uint8Array(24);
  h[0] = 0; // next header: the kernel fills it in
  h[1] = 2; // (24 / 8) - 1
  h[2] = 1, h[3] = 2; // PadN, 2 bytes: the HAO at 8n+6
  h[6] = 0xc9, h[7] = 16;
  h.set(parseIpv6(HOA), 8);
  return h;
}

/** Type 2 routing header carrying the HoA (RFC 6275 §6.4). */
function rh2(nextHeader: number): Uint8Array {
  const h = new Uint8Array(24);
  h[0] = nextHeader;
  h[1] = 2;
  h[2] = 2; // routing type 2
  h[3] = 1; // segments left
  h.set(parseIpv6(HOA), 8);
  return h;
}

/** Binding Acknowledgement (RFC 6275 §6.1.8): status 0, seq 7, lifetime 100, PadN(2). */
function bindingAck(): Uint8Array {
  const m = new Uint8Array(16);
  m[0] = 59, m[1] = 1, m[2] = 6;
  m[6] = 0; // status accepted
  m[8] = 0x00, m[9] = 0x07;
  m[10] = 0x00, m[11] = 100;
  m[12] = 1, m[13] = 2; // PadN(2)
  const c = checksum(HA, HOA, IPPROTO_MH, m); // final destination: the HoA
  m[4] = c >> 8, m[5] = c & 0xff;
  return m;
}

async function twoHosts(lab: Lab): Promise<{ mn: Netns; ha: Netns }> {
  const [mn, ha] = await upPair(lab, "ffimip6-mn", "ffimip6-ha");
  await mn.ip("addr", "add", `${COA}/64`, "dev", "eth0", "nodad");
  await ha.ip("addr", "add", `${HA}/64`, "dev", "eth0", "nodad");
  return { mn, ha };
}

Deno.test({
  name: "RawSocket6: BU with a HAO in IPV6_DSTOPTS arrives at a raw IPPROTO_DSTOPTS socket",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const { mn, ha } = await twoHosts(lab);
    using tx = inNetns(mn, () => RawSocket6.open(IPPROTO_MH));
    using rx = inNetns(ha, () => RawSocket6.open(IPPROTO_DSTOPTS, { nonblocking: true }));
    using icmp = inNetns(mn, () => RawSocket6.open(IPPROTO_ICMPV6, { nonblocking: true }));
    rx.setRecvPktInfo(true);
    rx.setRecvHopLimit(true);
    icmp.setIcmp6Filter([4]); // Parameter Problem only
    // an MH raw socket starts with the kernel's checksum at offset 4 (DESIGN.md)
    assert.equal(tx.getChecksumOffset(), 4);
    tx.setChecksumOffset(-1);
    assert.equal(tx.getChecksumOffset(), -1);

    const bu = bindingUpdate();
    const hao = haoDestOpts();
    const sent = tx.send(bu, { dst: HA, src: COA, hopLimit: 61, dstOpts: hao });
    assert.equal(sent, bu.length);

    const buf = new Uint8Array(2048);
    const info = await recvOne(rx, buf);
    assert.equal(info.src, COA);
    assert.equal(info.dst, HA);
    assert.equal(info.ifindex, (await linkInfo(ha, "eth0")).ifindex);
    assert.equal(info.hopLimit, 61);
    assert.equal(info.truncated, false);
    // the data starts at the Destination Options header, next header = MH
    const expected = concat(hao, bu);
    expected[0] = IPPROTO_MH;
    assert.deepEqual(buf.subarray(0, info.length), expected);
    assert.equal(buf[6], 0xc9);
    assert.deepEqual(buf.subarray(8, 24), parseIpv6(HOA));

    // the kernel without MIP6 then answers Parameter Problem, code 2, pointing at the HAO
    const perr = await recvOne(icmp, buf);
    assert.equal(perr.src, HA);
    assert.equal(buf[0], 4);
    assert.equal(buf[1], 2);
    assert.equal(new DataView(buf.buffer).getUint32(4), 40 + 6);
  },
});

Deno.test({
  name: "RawSocket6: BA with a type 2 routing header, sent whole through IPPROTO_RAW",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const { mn, ha } = await twoHosts(lab);
    using raw = inNetns(ha, () => RawSocket6.open(IPPROTO_RAW));
    using rx = inNetns(mn, () => RawSocket6.open(IPPROTO_ROUTING, { nonblocking: true }));
    rx.setRecvPktInfo(true);

    const ba = bindingAck();
    const rh = rh2(IPPROTO_MH);
    const ip6 = new Uint8Array(40);
    const dv = new DataView(ip6.buffer);
    dv.setUint32(0, 0x60000000);
    dv.setUint16(4, rh.length + ba.length);
    ip6[6] = IPPROTO_ROUTING;
    ip6[7] = 64;
    ip6.set(parseIpv6(HA), 8);
    ip6.set(parseIpv6(COA), 24);
    const packet = concat(ip6, rh, ba);
    assert.equal(raw.sendRaw(packet, COA), packet.length);

    const buf = new Uint8Array(2048);
    const info = await recvOne(rx, buf);
    assert.equal(info.src, HA);
    assert.equal(info.dst, COA);
    assert.equal(info.ifindex, (await linkInfo(mn, "eth0")).ifindex);
    assert.deepEqual(buf.subarray(0, info.length), concat(rh, ba));

    // sendmsg with IPV6_RTHDR type 2 is refused by a kernel without MIP6
    using mh = inNetns(ha, () => RawSocket6.open(IPPROTO_MH));
    mh.setChecksumOffset(-1);
    assert.throws(
      () => mh.send(ba, { dst: COA, rtHdr: rh2(0) }),
      (e: unknown) => {
        assert.ok(e instanceof ErrnoError);
        assert.equal(e.code, "EINVAL");
        assert.equal(e.syscall, `sendmsg(to ${COA} with IPV6_RTHDR type 2)`);
        assert.match(e.message, /^sendmsg\(.*\): EINVAL \(Invalid argument\)$/);
        return true;
      },
    );
  },
});
