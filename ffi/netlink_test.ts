// Unit tests of ffi/netlink.ts: requests against golden bytes derived by hand
// from the kernel headers' layouts (nlmsghdr 16, ifinfomsg 16, ifaddrmsg 8,
// rtmsg 12, ndmsg 12, nlattr 4 + data padded to 4), parsing of canned replies
// (NLMSG_ERROR with and without extended ack, multi-part dumps), and a few
// read-only calls on a real NETLINK_ROUTE socket (no root needed).

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  addressRequest,
  BATCH_CHUNK,
  changeLinkRequest,
  changeRequest,
  createBridgeRequest,
  deleteLinkRequest,
  dumpAddressesRequest,
  dumpLinksRequest,
  getLinkRequest,
  ifaddrmsg,
  ifinfomsg,
  ndmsg,
  neighborRequest,
  NetlinkError,
  NL_SIZES,
  nlAlign,
  NlBatchCollector,
  NlMessage,
  type NlMsg,
  NlReplyCollector,
  parseAddress,
  parseAttrs,
  parseError,
  parseLink,
  parseMessages,
  parseRoute,
  readSysctl,
  routeRequest,
  RTM,
  rtmsg,
  Rtnetlink,
  type RtnlChange,
  writeChange,
  writeSysctl,
} from "./netlink.ts";
import { formatIPv6 } from "../src/wire/addr.ts";
import { ErrnoError } from "./libc.ts";

/** Hex text (spaces and newlines ignored) to bytes. */
function hex(s: string): Uint8Array {
  const t = s.replace(/\s+/g, "");
  assert.equal(t.length % 2, 0, "odd hex length");
  return Uint8Array.from(t.match(/../g) ?? [], (h) => parseInt(h, 16));
}
/** `n` zero bytes as hex. */
const z = (n: number) => "00".repeat(n);
const DB8_10 = `20010db8 ${z(11)} 10`; // 2001:db8::10
const DB8_1 = `20010db8 ${z(11)} 01`; // 2001:db8::1
const DB8_5 = `20010db8 ${z(11)} 05`;
const DB8_6 = `20010db8 ${z(11)} 06`;

function assertBytes(actual: Uint8Array, expected: Uint8Array) {
  const h = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
  assert.equal(h(actual), h(expected));
}

function only(buf: Uint8Array): NlMsg {
  const r = parseMessages(buf);
  assert.ok(r.ok);
  assert.equal(r.value.length, 1);
  return r.value[0];
}

// ---------------------------------------------------------------------------
// Layouts and the builder
// ---------------------------------------------------------------------------

Deno.test("layout sizes match linux/netlink.h, rtnetlink.h, if_addr.h, neighbour.h", () => {
  assert.deepEqual(NL_SIZES, {
    nlmsghdr: 16,
    nlattr: 4,
    nlmsgerr: 20,
    sockaddr_nl: 12,
    ifinfomsg: 16,
    ifaddrmsg: 8,
    rtmsg: 12,
    ndmsg: 12,
  });
  assert.equal(ifinfomsg({}).length, 16);
  assert.equal(ifaddrmsg({}).length, 8);
  assert.equal(rtmsg({}).length, 12);
  assert.equal(ndmsg({}).length, 12);
  assert.deepEqual([0, 1, 3, 4, 5, 17].map(nlAlign), [0, 4, 4, 4, 8, 20]);
});

Deno.test("family headers put every field at its offset", () => {
  assertBytes(
    ifinfomsg({ family: 7, type: 0x0304, index: -2, flags: 0x10049, change: 0xffffffff }),
    hex("07 00 0403 feffffff 49000100 ffffffff"),
  );
  assertBytes(
    ifaddrmsg({ family: 10, prefixLength: 64, flags: 0x182, scope: 253, index: 0x01020304 }),
    hex("0a 40 82 fd 04030201"), // ifa_flags keeps the low byte only
  );
  assertBytes(
    rtmsg({
      family: 10,
      dstLen: 128,
      srcLen: 1,
      tos: 2,
      table: 254,
      protocol: 4,
      scope: 253,
      type: 1,
      flags: 0x200,
    }),
    hex("0a 80 01 02 fe 04 fd 01 00020000"),
  );
  assertBytes(
    ndmsg({ family: 10, index: 4, state: 0x80, flags: 0x08, type: 1 }),
    hex("0a 00 0000 04000000 8000 08 01"),
  );
});

Deno.test("NlMessage: attributes padded to 4 with zeros, nests sized, buffer grows", () => {
  const m = new NlMessage(0x1234, 0x0001, 16)
    .header(hex("aa bb cc")) // padded to 4
    .u8(1, 0xff)
    .beginNest(2)
    .attr(3, new Uint8Array(300).fill(0xee))
    .beginNest(4)
    .u32(5, 0xdeadbeef)
    .endNest()
    .endNest()
    .str(6, "x");
  const b = m.finish(0xfffffffe, 77);
  const dv = new DataView(b.buffer);
  assert.equal(dv.getUint32(0, true), b.length);
  assert.equal(b.length, 16 + 4 + 8 + (4 + 304 + 12) + 8);
  assertBytes(b.subarray(4, 16), hex("3412 0100 feffffff 4d000000"));
  assertBytes(b.subarray(16, 28), hex("aabbcc00 0500 0100 ff000000"));
  assertBytes(b.subarray(28, 32), hex("4001 0200")); // nest of 4 + 304 + 12 = 320
  assertBytes(b.subarray(32, 36), hex("3001 0300")); // 304 = 4 + 300
  assert.ok(b.subarray(36, 336).every((x) => x === 0xee));
  assertBytes(b.subarray(336, 348), hex("0c00 0400 0800 0500 efbeadde"));
  assertBytes(b.subarray(348), hex("0600 0600 7800 0000"));
  assert.throws(() => new NlMessage(1, 1).endNest(), /without beginNest/);
  assert.throws(() => new NlMessage(1, 1).beginNest(1).finish(1), /open nest/);
});

// ---------------------------------------------------------------------------
// Requests: golden bytes
// ---------------------------------------------------------------------------

Deno.test("createBridge: RTM_NEWLINK with IFLA_LINKINFO{KIND bridge, DATA{fwd 0, stp 0, snoop 0}}", () => {
  const req = createBridgeRequest("br0");
  assert.equal(req.what, "RTM_NEWLINK br0 type bridge");
  assertBytes(
    req.message.finish(1),
    hex(`
      54000000 1000 0506 01000000 00000000
      ${z(16)}
      0800 0300 62723000
      2c00 1200
        0b00 0100 627269646765 00 00
        1c00 0200
          0800 0100 00000000
          0800 0500 00000000
          0500 1700 00 000000`),
  );
  // snooping on when asked
  const on = createBridgeRequest("br0", { multicastSnooping: true }).message.finish(1);
  assertBytes(on.subarray(76), hex("0500 1700 01 000000"));
});

Deno.test("link changes: by name (IFLA_IFNAME) and by index; up/down via ifi_change", () => {
  const up = changeLinkRequest("eth0", { up: true });
  assert.equal(up.what, "RTM_NEWLINK eth0 up");
  assertBytes(
    up.message.finish(5),
    hex(`2c000000 1000 0500 05000000 00000000
         00 00 0000 00000000 01000000 01000000
         0900 0300 65746830 00 000000`),
  );
  const down = changeLinkRequest(3, { up: false }).message.finish(5);
  assertBytes(down.subarray(16), hex("00 00 0000 03000000 00000000 01000000"));

  const many = changeLinkRequest(5, { mtu: 1280, mac: "52:54:00:00:00:10", master: 7 });
  assert.equal(
    many.what,
    "RTM_NEWLINK ifindex 5 mtu 1280 address 52:54:00:00:00:10 master ifindex 7",
  );
  assertBytes(
    many.message.finish(6),
    hex(`3c000000 1000 0500 06000000 00000000
         00 00 0000 05000000 00000000 00000000
         0800 0400 00050000
         0a00 0100 525400000010 0000
         0800 0a00 07000000`),
  );
  const nomaster = changeLinkRequest("veth0", { master: 0 });
  assert.equal(nomaster.what, "RTM_NEWLINK veth0 nomaster");
  assertBytes(nomaster.message.finish(1).subarray(44), hex("0800 0a00 00000000"));
  assert.throws(() => changeLinkRequest(1, { mac: "52:54:00:00:00" }), TypeError);
});

Deno.test("link get, dump and delete", () => {
  assertBytes(
    dumpLinksRequest().message.finish(9),
    hex(`20000000 1200 0103 09000000 00000000 ${z(16)}`),
  );
  const get = getLinkRequest("eth0");
  assert.equal(get.what, "RTM_GETLINK eth0");
  assertBytes(
    get.message.finish(2),
    hex(`2c000000 1200 0100 02000000 00000000 ${z(16)} 0900 0300 65746830 00 000000`),
  );
  assertBytes(
    getLinkRequest(7).message.finish(2),
    hex(`20000000 1200 0100 02000000 00000000 00000000 07000000 ${z(8)}`),
  );
  const del = deleteLinkRequest("br0");
  assert.equal(del.what, "RTM_DELLINK br0");
  assertBytes(
    del.message.finish(4),
    hex(`28000000 1100 0500 04000000 00000000 ${z(16)} 0800 0300 62723000`),
  );
});

Deno.test("addresses: RTM_NEWADDR with IFA_LOCAL, IFA_ADDRESS, IFA_FLAGS(NODAD); RTM_DELADDR", () => {
  const add = addressRequest(RTM.NEWADDR, 2, "2001:DB8:0::1", 64, { flags: 0x02 });
  assert.equal(add.what, "RTM_NEWADDR 2001:db8::1/64 ifindex 2");
  assertBytes(
    add.message.finish(7),
    hex(`48000000 1400 0506 07000000 00000000
         0a 40 02 00 02000000
         1400 0200 ${DB8_1}
         1400 0100 ${DB8_1}
         0800 0800 02000000`),
  );
  const rep = addressRequest(RTM.NEWADDR, 2, "2001:db8::1", 64, { replace: true });
  assertBytes(rep.message.finish(7).subarray(4, 8), hex("1400 0505"));
  const del = addressRequest(RTM.DELADDR, 2, "2001:db8::1", 64);
  assert.equal(del.what, "RTM_DELADDR 2001:db8::1/64 ifindex 2");
  assertBytes(
    del.message.finish(8),
    hex(`40000000 1500 0500 08000000 00000000
         0a 40 00 00 02000000
         1400 0200 ${DB8_1}
         1400 0100 ${DB8_1}`),
  );
  assertBytes(
    dumpAddressesRequest().message.finish(0),
    hex("18000000 1600 0103 00000000 00000000 0a 00 00 00 00000000"),
  );
  assert.throws(() => addressRequest(RTM.NEWADDR, 2, "2001:db8::1", 129), RangeError);
  assert.throws(() => addressRequest(RTM.NEWADDR, 2, "2001:db8::g", 64), TypeError);
});

Deno.test("routes: RTM_NEWROUTE (EXCL or REPLACE), default route, RTM_DELROUTE", () => {
  const add = routeRequest(RTM.NEWROUTE, "2001:db8::10", 128, { oif: 3, metric: 1024 });
  assert.equal(add.what, "RTM_NEWROUTE 2001:db8::10/128");
  assertBytes(
    add.message.finish(0x12345678),
    hex(`40000000 1800 0506 78563412 00000000
         0a 80 00 00 fe 04 00 01 00000000
         1400 0100 ${DB8_10}
         0800 0400 03000000
         0800 0600 00040000`),
  );
  const via = routeRequest(RTM.NEWROUTE, "2001:db8::", 64, { gateway: "fe80::1", replace: true });
  assertBytes(
    via.message.finish(2),
    hex(`44000000 1800 0505 02000000 00000000
         0a 40 00 00 fe 04 00 01 00000000
         1400 0100 20010db8 ${z(12)}
         1400 0500 fe80 ${z(13)} 01`),
  );
  // ::/0 carries no RTA_DST
  const dflt = routeRequest(RTM.NEWROUTE, "::", 0, { gateway: "fe80::1" }).message.finish(1);
  assert.equal(dflt.length, 16 + 12 + 20);
  assertBytes(dflt.subarray(28, 32), hex("1400 0500"));
  const del = routeRequest(RTM.DELROUTE, "2001:db8::10", 128, { oif: 3 });
  assert.equal(del.what, "RTM_DELROUTE 2001:db8::10/128");
  assertBytes(
    del.message.finish(3),
    hex(`38000000 1900 0500 03000000 00000000
         0a 80 00 00 fe 00 ff 01 00000000
         1400 0100 ${DB8_10}
         0800 0400 03000000`),
  );
});

Deno.test("neighbours: proxy (NTF_PROXY), permanent with NDA_LLADDR, delete", () => {
  const proxy = neighborRequest(RTM.NEWNEIGH, "2001:db8::5", 4, { proxy: true });
  assert.equal(proxy.what, "RTM_NEWNEIGH proxy 2001:db8::5 ifindex 4");
  assertBytes(
    proxy.message.finish(9),
    hex(`30000000 1c00 0505 09000000 00000000
         0a 00 0000 04000000 8000 08 00
         1400 0100 ${DB8_5}`),
  );
  const perm = neighborRequest(RTM.NEWNEIGH, "2001:db8::6", 4, { mac: "52:54:00:00:00:10" });
  assertBytes(
    perm.message.finish(10),
    hex(`3c000000 1c00 0505 0a000000 00000000
         0a 00 0000 04000000 8000 00 00
         1400 0100 ${DB8_6}
         0a00 0200 525400000010 0000`),
  );
  const del = neighborRequest(RTM.DELNEIGH, "2001:db8::5", 4, { proxy: true });
  assert.equal(del.what, "RTM_DELNEIGH proxy 2001:db8::5 ifindex 4");
  assertBytes(
    del.message.finish(11),
    hex(`30000000 1d00 0500 0b000000 00000000
         0a 00 0000 04000000 0000 08 00
         1400 0100 ${DB8_5}`),
  );
});

// ---------------------------------------------------------------------------
// Replies: canned bytes
// ---------------------------------------------------------------------------

// The echoed request header of RTM_NEWROUTE seq 5 (capped ack: header only).
const ECHO_ROUTE = "40000000 1800 0506 05000000 00000000";
const ACK_5 = hex(`24000000 0200 0001 05000000 34120000 00000000 ${ECHO_ROUTE}`);
const EEXIST_5 = hex(`24000000 0200 0001 05000000 34120000 efffffff ${ECHO_ROUTE}`);
// EEXIST with extended ack: NLMSGERR_ATTR_MSG "Route exists", NLMSGERR_ATTR_OFFS 0x20
const EEXIST_EXTACK_5 = hex(`40000000 0200 0003 05000000 34120000 efffffff ${ECHO_ROUTE}
  1100 0100 526f7574652065786973747300 000000
  0800 0200 20000000`);

Deno.test("parseMessages: splits aligned messages, reports truncated and malformed", () => {
  const two = new Uint8Array([...ACK_5, ...EEXIST_5]);
  const r = parseMessages(two);
  assert.ok(r.ok);
  assert.deepEqual(r.value.map((m) => [m.type, m.flags, m.seq, m.pid, m.payload.length]), [
    [2, 0x100, 5, 0x1234, 20],
    [2, 0x100, 5, 0x1234, 20],
  ]);
  assert.deepEqual(parseMessages(two.subarray(0, 40)), {
    ok: false,
    kind: "truncated",
    offset: 36,
  });
  assert.deepEqual(parseMessages(two.subarray(0, 50)), {
    ok: false,
    kind: "truncated",
    offset: 36,
  });
  const bad = hex("08000000 0200 0000 01000000 00000000");
  assert.deepEqual(parseMessages(bad), { ok: false, kind: "malformed", offset: 0 });
  assert.deepEqual(parseMessages(new Uint8Array(0)), { ok: true, value: [] });
});

Deno.test("parseAttrs: types lose NLA_F_NESTED, bad lengths are values", () => {
  const r = parseAttrs(hex("0500 1280 07 000000 0800 0300 01020304"));
  assert.ok(r.ok);
  assert.deepEqual(r.value.map((a) => [a.type, Array.from(a.value)]), [
    [0x12, [7]],
    [3, [1, 2, 3, 4]],
  ]);
  assert.deepEqual(parseAttrs(hex("0900 0100 00000000")), {
    ok: false,
    kind: "truncated",
    offset: 0,
  });
  assert.deepEqual(parseAttrs(hex("0400 0100 0200 0100")), {
    ok: false,
    kind: "malformed",
    offset: 4,
  });
});

Deno.test("parseError: ack, errno, extended ack after a capped or a full echo", () => {
  const ack = parseError(only(ACK_5));
  assert.deepEqual(ack, {
    ok: true,
    value: { error: 0, request: { type: 24, flags: 0x605, seq: 5 } },
  });
  const e = parseError(only(EEXIST_5));
  assert.ok(e.ok);
  assert.equal(e.value.error, 17);
  assert.equal(e.value.extack, undefined);
  const x = parseError(only(EEXIST_EXTACK_5));
  assert.ok(x.ok);
  assert.equal(x.value.extack, "Route exists");
  // not capped: the whole 0x20-byte request is echoed, TLVs after it
  const full = hex(`4c000000 0200 0002 05000000 00000000 eaffffff
    20000000 1200 0100 05000000 00000000 ${z(16)}
    0d00 0100 626164206e616d6500 000000
    0800 0200 10000000`);
  const f = parseError(only(full));
  assert.ok(f.ok);
  assert.equal(f.value.error, 22);
  assert.equal(f.value.extack, "bad name");
  assert.deepEqual(parseError(only(hex("14000000 0200 0000 05000000 00000000 00000000"))), {
    ok: false,
    kind: "truncated",
    offset: 16,
  });
});

// A two-datagram link dump (seq 9): lo and veth0, then a stale DONE (seq 8) and the DONE.
const LINK_LO = `3c000000 1000 0200 09000000 34120000
  00 00 0403 01000000 49000100 00000000
  0700 0300 6c6f00 00
  0800 0400 00000100
  0a00 0100 000000000000 0000`;
const LINK_VETH = `50000000 1000 0200 09000000 34120000
  00 00 0100 03000000 03100000 00000000
  0a00 0300 7665746830 00 0000
  0800 0400 dc050000
  0a00 0100 525400000010 0000
  0800 0a00 02000000
  0500 1000 06 000000`;
const DONE_8 = "14000000 0300 0200 08000000 34120000 00000000";
const DONE_9 = "14000000 0300 0200 09000000 34120000 00000000";

Deno.test("parseLink: name, index, mac, mtu, admin state, master", () => {
  const msgs = parseMessages(hex(LINK_LO + LINK_VETH));
  assert.ok(msgs.ok);
  assert.deepEqual(msgs.value.map((m) => parseLink(m)), [
    { ok: true, value: { index: 1, name: "lo", mac: "00:00:00:00:00:00", mtu: 65536, up: true } },
    {
      ok: true,
      value: { index: 3, name: "veth0", mac: "52:54:00:00:00:10", mtu: 1500, up: true, master: 2 },
    },
  ]);
  // a link without IFLA_ADDRESS (tun) and down; one without a name is malformed
  const tun = only(hex(`2c000000 1000 0000 01000000 00000000
    00 00 fe ff 09000000 00000000 00000000
    0900 0300 74756e30 00 000000`));
  assert.deepEqual(parseLink(tun), {
    ok: true,
    value: { index: 9, name: "tun0", mac: "", mtu: 0, up: false },
  });
  const noname = only(hex(`20000000 1000 0000 01000000 00000000 ${z(16)}`));
  assert.deepEqual(parseLink(noname), { ok: false, kind: "malformed", offset: 32 });
});

Deno.test("parseAddress: IFA_FLAGS over ifa_flags, scopes, IPv4 ignored", () => {
  const global = only(hex(`48000000 1400 0200 01000000 00000000
    0a 40 80 00 02000000
    1400 0100 ${DB8_1}
    1400 0600 ${z(16)}
    0800 0800 82020000`));
  assert.deepEqual(parseAddress(global), {
    ok: true,
    value: { ifindex: 2, address: "2001:db8::1", prefixLength: 64, scope: "global", flags: 0x282 },
  });
  const ll = only(hex(`2c000000 1400 0200 01000000 00000000
    0a 40 c0 fd 03000000
    1400 0200 fe80 ${z(12)} 0201`));
  assert.deepEqual(parseAddress(ll), {
    ok: true,
    value: { ifindex: 3, address: "fe80::201", prefixLength: 64, scope: "link", flags: 0xc0 },
  });
  const v4 = only(
    hex("20000000 1400 0200 01000000 00000000 02 08 80 fe 01000000 0800 0100 7f000001"),
  );
  assert.deepEqual(parseAddress(v4), { ok: true, value: null });
  const short = only(
    hex("20000000 1400 0200 01000000 00000000 0a 40 00 00 01000000 0800 0100 7f000001"),
  );
  assert.deepEqual(parseAddress(short), { ok: false, kind: "malformed", offset: 24 });
});

Deno.test("parseRoute: dst, table, protocol, oif, gateway, metric", () => {
  const r = only(hex(`5c000000 1800 0200 01000000 00000000
    0a 80 00 00 fe 04 00 01 00000000
    0800 0f00 fe000000
    1400 0100 ${DB8_10}
    0800 0600 00040000
    0800 0400 03000000
    1400 0500 fe80 ${z(13)} 01`));
  assert.deepEqual(parseRoute(r), {
    ok: true,
    value: {
      dst: "2001:db8::10",
      prefixLength: 128,
      table: 254,
      protocol: 4,
      type: 1,
      oif: 3,
      gateway: "fe80::1",
      metric: 1024,
    },
  });
});

Deno.test("NlReplyCollector: multi-part dump across datagrams, stale sequence numbers dropped", () => {
  const c = new NlReplyCollector("RTM_GETLINK dump", 9, "dump");
  assert.equal(c.feed(hex(LINK_LO + LINK_VETH)), false);
  assert.equal(c.feed(hex(DONE_8 + DONE_9)), true);
  assert.equal(c.stale, 1);
  assert.equal(c.intr, false);
  assert.deepEqual(c.msgs.map((m) => parseLink(m).ok && parseLink(m)), [
    { ok: true, value: { index: 1, name: "lo", mac: "00:00:00:00:00:00", mtu: 65536, up: true } },
    {
      ok: true,
      value: { index: 3, name: "veth0", mac: "52:54:00:00:00:10", mtu: 1500, up: true, master: 2 },
    },
  ]);
  // the collected payloads are copies: overwriting the datagram does not change them
  const dg = hex(LINK_LO + DONE_9);
  const c2 = new NlReplyCollector("dump", 9, "dump");
  assert.equal(c2.feed(dg), true);
  dg.fill(0);
  assert.equal(parseLink(c2.msgs[0]).ok, true);
  assert.throws(() => c2.feed(hex(DONE_9)), /after completion/);
});

Deno.test("NlReplyCollector: NLM_F_DUMP_INTR flagged, NLMSG_DONE with an error", () => {
  const c = new NlReplyCollector("RTM_GETADDR dump", 9, "dump");
  const intr = hex(DONE_9);
  intr[6] |= 0x10;
  assert.equal(c.feed(intr), true);
  assert.equal(c.intr, true);
  const bad = new NlReplyCollector("RTM_GETROUTE dump", 9, "dump");
  assert.throws(
    () => bad.feed(hex("14000000 0300 0200 09000000 34120000 f9ffffff")),
    (e: unknown) =>
      e instanceof NetlinkError && e.errno === 7 &&
      e.message === "RTM_GETROUTE dump: E2BIG (Argument list too long)",
  );
});

Deno.test("NlReplyCollector: ack; errors name the request and its object", () => {
  const ok = new NlReplyCollector("RTM_NEWROUTE 2001:db8::10/128", 5, "ack");
  assert.equal(ok.feed(ACK_5), true);
  assert.equal(ok.msgs.length, 0);

  const e = new NlReplyCollector("RTM_NEWROUTE 2001:db8::10/128", 5, "ack");
  assert.throws(() => e.feed(EEXIST_5), (err: unknown) => {
    assert.ok(err instanceof ErrnoError);
    assert.ok(err instanceof NetlinkError);
    assert.equal(err.code, "EEXIST");
    assert.equal(err.syscall, "RTM_NEWROUTE 2001:db8::10/128");
    assert.equal(err.message, "RTM_NEWROUTE 2001:db8::10/128: EEXIST (File exists)");
    return true;
  });
  const x = new NlReplyCollector("RTM_NEWROUTE 2001:db8::10/128", 5, "ack");
  assert.throws(
    () => x.feed(EEXIST_EXTACK_5),
    (err: unknown) =>
      err instanceof NetlinkError && err.extack === "Route exists" &&
      err.message === "RTM_NEWROUTE 2001:db8::10/128: EEXIST (File exists) — Route exists",
  );
  // an ack for another (older) request is not ours
  const other = new NlReplyCollector("RTM_NEWADDR x", 6, "ack");
  assert.equal(other.feed(EEXIST_5), false);
  assert.equal(other.stale, 1);
  // data where an ack is due is a protocol error
  const odd = new NlReplyCollector("RTM_NEWLINK br0", 9, "ack");
  assert.throws(() => odd.feed(hex(LINK_LO)), /RTM_NEWLINK br0 \(unexpected RTM_NEWLINK\): EPROTO/);
  // a malformed datagram is reported, naming the request
  const trunc = new NlReplyCollector("RTM_GETLINK eth0", 9, "get");
  assert.throws(() => trunc.feed(hex(LINK_LO).subarray(0, 30)), /RTM_GETLINK eth0: truncated/);
});

Deno.test("batch requests are the single-change requests; NlBatchCollector matches acks by seq", () => {
  const bytes = (r: { message: NlMessage }) => r.message.finish(7);
  assertBytes(
    bytes(changeRequest({ op: "addRoute", dst: "2001:db8::10", prefixLength: 128, oif: 3 })),
    bytes(routeRequest(RTM.NEWROUTE, "2001:db8::10", 128, { oif: 3 })),
  );
  assertBytes(
    bytes(changeRequest({ op: "deleteRoute", dst: "2001:db8::10", prefixLength: 128, oif: 3 })),
    bytes(routeRequest(RTM.DELROUTE, "2001:db8::10", 128, { oif: 3 })),
  );
  assertBytes(
    bytes(changeRequest({ op: "addProxyNeighbor", addr: "2001:db8::10", ifindex: 2 })),
    bytes(neighborRequest(RTM.NEWNEIGH, "2001:db8::10", 2, { proxy: true })),
  );
  assertBytes(
    bytes(changeRequest({ op: "deleteProxyNeighbor", addr: "2001:db8::10", ifindex: 2 })),
    bytes(neighborRequest(RTM.DELNEIGH, "2001:db8::10", 2, { proxy: true })),
  );
  assert.ok(BATCH_CHUNK >= 16 && BATCH_CHUNK <= 256);

  // writeChange: the template path gives the bytes of the general builders, text or bytes
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.integer({ min: 1, max: 128 }),
      fc.integer({ min: 1, max: 0x7fffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom("addRoute", "deleteRoute"),
      fc.option(fc.boolean()),
      (dst, len, oif, seq, op, replace) => {
        const text = formatIPv6(dst);
        const ch = (d: string | Uint8Array): RtnlChange =>
          op === "addRoute"
            ? { op, dst: d, prefixLength: len, oif, replace: replace ?? undefined }
            : { op, dst: d, prefixLength: len, oif };
        const want = changeRequest(ch(text)).message.finish(seq);
        for (const d of [text, dst]) {
          const out = new Uint8Array(300).fill(0xee);
          const n = writeChange(ch(d), seq, out, 7);
          assertBytes(out.subarray(7, 7 + n), want);
        }
      },
    ),
    { numRuns: 500 },
  );
  // and the general path for the rest (a gateway, proxies)
  const out = new Uint8Array(300);
  const gw: RtnlChange = {
    op: "addRoute",
    dst: "2001:db8::",
    prefixLength: 64,
    gateway: "fe80::1",
  };
  assertBytes(out.subarray(0, writeChange(gw, 3, out, 0)), changeRequest(gw).message.finish(3));

  // three requests numbered 4, 5, 6: acks arrive over two datagrams, with a stale one
  const seq = (b: Uint8Array, n: number) => {
    const c = b.slice();
    new DataView(c.buffer).setUint32(8, n, true);
    return c;
  };
  const names = ["RTM_NEWROUTE a/128", "RTM_NEWROUTE b/128", "RTM_NEWROUTE c/128"];
  const asked: number[] = [];
  const c = new NlBatchCollector(3, 4, (i) => {
    asked.push(i);
    return names[i];
  });
  assert.equal(c.feed(new Uint8Array([...seq(ACK_5, 4), ...seq(ACK_5, 3)])), false);
  assert.equal(c.feed(new Uint8Array([...EEXIST_EXTACK_5, ...seq(ACK_5, 6)])), true);
  assert.equal(c.stale, 1);
  assert.equal(c.errors[0], null);
  assert.equal(c.errors[2], null);
  const e = c.errors[1];
  assert.ok(e instanceof NetlinkError);
  assert.equal(e.code, "EEXIST");
  assert.equal(e.message, "RTM_NEWROUTE b/128: EEXIST (File exists) — Route exists");
  assert.deepEqual(asked, [1], "names are made for errors only");

  // a datagram cut short is reported
  assert.throws(
    () => new NlBatchCollector(1, 5, String).feed(ACK_5.subarray(0, 20)),
    /rtnetlink batch: truncated/,
  );
  // sequence numbers wrap at 2^32
  const w = new NlBatchCollector(2, 0xffffffff, String);
  assert.equal(w.feed(seq(ACK_5, 0xffffffff)), false);
  assert.equal(w.feed(seq(ACK_5, 0)), true);
  // data where acks are due is a protocol error, naming the request
  const odd = new NlBatchCollector(1, 9, () => "RTM_NEWROUTE z/128");
  assert.throws(() => odd.feed(hex(LINK_LO)), /RTM_NEWROUTE z\/128 \(unexpected RTM_NEWLINK\)/);
});

Deno.test("NlReplyCollector: get mode ends with the single reply", () => {
  const c = new NlReplyCollector("RTM_GETLINK lo", 9, "get");
  const single = hex(LINK_LO);
  single[6] = 0; // no NLM_F_MULTI
  assert.equal(c.feed(single), true);
  assert.equal(c.msgs.length, 1);
  const e = new NlReplyCollector("RTM_GETLINK eth9", 5, "get");
  assert.throws(
    () => e.feed(hex(`24000000 0200 0001 05000000 00000000 edffffff ${z(16)}`)),
    /^NetlinkError: RTM_GETLINK eth9: ENODEV \(No such device\)$/m,
  );
});

Deno.test("parsers never throw on arbitrary bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 40 }), (b, t) => {
      parseAttrs(b);
      const r = parseMessages(b);
      const m: NlMsg = { type: t, flags: 0x300, seq: 0, pid: 0, payload: b };
      for (const msg of r.ok ? [...r.value, m] : [m]) {
        parseError(msg);
        parseLink(msg);
        parseAddress(msg);
        parseRoute(msg);
      }
    }),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------
// A real socket, read-only (no privileges needed, nothing configured)
// ---------------------------------------------------------------------------

Deno.test("Rtnetlink: read-only queries of the current namespace", () => {
  const nl = Rtnetlink.open();
  try {
    const links = nl.getLinks();
    const lo = links.find((l) => l.name === "lo");
    assert.ok(lo, "lo listed");
    assert.equal(nl.linkIndex("lo"), lo.index);
    assert.equal(lo.mac, "00:00:00:00:00:00");
    assert.equal(lo.mtu, Number(readSysctl("net/ipv6/conf/lo/mtu")));
    assert.deepEqual(nl.getLink(lo.index), lo);
    assert.throws(
      () => nl.linkIndex("nosuchdev0"),
      (e: unknown) =>
        e instanceof ErrnoError && e.code === "ENODEV" &&
        e.message === "RTM_GETLINK nosuchdev0: ENODEV (No such device)",
    );
    // addresses and routes dump without error; ::1 sits on lo when IPv6 is on
    const addrs = nl.getAddresses(lo.index);
    assert.ok(addrs.every((a) => a.ifindex === lo.index));
    if (addrs.length) assert.ok(addrs.some((a) => a.address === "::1" && a.scope === "host"));
    assert.ok(Array.isArray(nl.getRoutes()));
    // the socket is still in step after an error and several dumps
    assert.equal(nl.linkIndex("lo"), lo.index);
  } finally {
    nl.close();
  }
  nl.close(); // idempotent
  assert.equal(nl.fd, -1);
  assert.throws(() => nl.getLinks(), /RTM_GETLINK dump \(socket closed\): EBADF/);
});

Deno.test("Rtnetlink: using-disposal closes the socket", () => {
  let outer: Rtnetlink | undefined;
  {
    using nl = Rtnetlink.open();
    outer = nl;
    assert.ok(nl.fd >= 0);
    assert.ok(nl.getLinks().length >= 1);
  }
  assert.equal(outer.fd, -1);
});

Deno.test("sysctl keys: slash and dotted forms, bad keys refused, errors name the key", () => {
  const want = Deno.readTextFileSync("/proc/sys/net/ipv6/conf/lo/mtu").trim();
  assert.equal(readSysctl("net/ipv6/conf/lo/mtu"), want);
  assert.equal(readSysctl("net.ipv6.conf.lo.mtu"), want);
  for (const bad of ["../etc/passwd", "/net/ipv6", "net/../../etc", "net ipv6", ""]) {
    assert.throws(() => readSysctl(bad), TypeError, bad);
    assert.throws(() => writeSysctl(bad, 1), TypeError, bad);
  }
  assert.throws(
    () => readSysctl("net/ipv6/conf/nosuchdev0/mtu"),
    (e: unknown) =>
      e instanceof ErrnoError && e.code === "ENOENT" &&
      e.message.startsWith("sysctl net/ipv6/conf/nosuchdev0/mtu: ENOENT"),
  );
});

Deno.test("requests name their object after normalising the address text", () => {
  assert.equal(
    routeRequest(RTM.NEWROUTE, "2001:0DB8:0:0::0010", 128).what,
    "RTM_NEWROUTE 2001:db8::10/128",
  );
  assert.throws(() => routeRequest(RTM.NEWROUTE, "2001:db8::10", -1), RangeError);
});
