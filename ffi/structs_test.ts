import assert from "node:assert/strict";
import fc from "fast-check";
import {
  addressOf,
  cmsgAlign,
  CMSGHDR,
  cmsgLen,
  cmsgSpace,
  decodeIcmp6Filter,
  decodeIfreqName,
  decodeIn6Pktinfo,
  decodeMsghdr,
  decodeSockaddrIn6,
  decodeSockaddrLl,
  encodeIcmp6Filter,
  encodeIfreq,
  encodeIn6Pktinfo,
  encodeIovec,
  encodeIpv6Mreq,
  encodeMsghdr,
  encodePacketMreq,
  encodePollfd,
  encodeSockaddrIn6,
  encodeSockaddrLl,
  formatIpv6,
  formatMac,
  getU64,
  ICMP6_FILTER_LAYOUT,
  IFREQ,
  IN6_PKTINFO,
  IOVEC,
  IPV6_MREQ,
  MMSGHDR,
  MSGHDR,
  PACKET_MREQ,
  parseCmsgs,
  parseIpv6,
  parseMac,
  POLLFD,
  pollfdRevents,
  putU64,
  SOCKADDR_IN6,
  SOCKADDR_LL,
  TIMESPEC,
  TPACKET_AUXDATA,
  writeCmsgHeader,
} from "./structs.ts";

// Values checked against gcc offsetof/sizeof on x86_64 glibc (the aarch64 LP64 ABI is the same).
Deno.test("structs: every LP64 offset and size is pinned", () => {
  assert.deepEqual(
    { ...SOCKADDR_IN6 },
    { SIZE: 28, FAMILY: 0, PORT: 2, FLOWINFO: 4, ADDR: 8, SCOPE_ID: 24 },
  );
  assert.deepEqual(
    { ...SOCKADDR_LL },
    { SIZE: 20, FAMILY: 0, PROTOCOL: 2, IFINDEX: 4, HATYPE: 8, PKTTYPE: 10, HALEN: 11, ADDR: 12 },
  );
  assert.deepEqual({ ...IOVEC }, { SIZE: 16, BASE: 0, LEN: 8 });
  assert.deepEqual(
    { ...MSGHDR },
    {
      SIZE: 56,
      NAME: 0,
      NAMELEN: 8,
      IOV: 16,
      IOVLEN: 24,
      CONTROL: 32,
      CONTROLLEN: 40,
      FLAGS: 48,
    },
  );
  assert.deepEqual({ ...MMSGHDR }, { SIZE: 64, HDR: 0, LEN: 56 });
  assert.deepEqual(
    { ...CMSGHDR },
    { SIZE: 16, LEN: 0, LEVEL: 8, TYPE: 12, DATA: 16, ALIGN: 8 },
  );
  assert.deepEqual({ ...IN6_PKTINFO }, { SIZE: 20, ADDR: 0, IFINDEX: 16 });
  assert.deepEqual({ ...IPV6_MREQ }, { SIZE: 20, ADDR: 0, IFINDEX: 16 });
  assert.deepEqual({ ...PACKET_MREQ }, { SIZE: 16, IFINDEX: 0, TYPE: 4, ALEN: 6, ADDRESS: 8 });
  assert.deepEqual(
    { ...TPACKET_AUXDATA },
    { SIZE: 20, STATUS: 0, LEN: 4, SNAPLEN: 8, MAC: 12, NET: 14, VLAN_TCI: 16, VLAN_TPID: 18 },
  );
  assert.deepEqual(
    { ...IFREQ },
    {
      SIZE: 40,
      NAME: 0,
      NAME_SIZE: 16,
      UNION: 16,
      FLAGS: 16,
      MTU: 16,
      IFINDEX: 16,
      HWADDR_FAMILY: 16,
      HWADDR_DATA: 18,
    },
  );
  assert.deepEqual({ ...POLLFD }, { SIZE: 8, FD: 0, EVENTS: 4, REVENTS: 6 });
  assert.equal(ICMP6_FILTER_LAYOUT.SIZE, 32);
  assert.deepEqual({ ...TIMESPEC }, { SIZE: 16, SEC: 0, NSEC: 8 });
});

Deno.test("structs: CMSG_ALIGN / CMSG_SPACE / CMSG_LEN match glibc", () => {
  assert.equal(cmsgAlign(0), 0);
  assert.equal(cmsgAlign(1), 8);
  assert.equal(cmsgAlign(8), 8);
  assert.equal(cmsgLen(20), 36);
  assert.equal(cmsgSpace(20), 40); // in6_pktinfo
  assert.equal(cmsgSpace(4), 24); // int
  assert.equal(cmsgSpace(24), 40); // a 24-byte extension header
  assert.equal(cmsgSpace(2048), 2064);
});

Deno.test("structs: cmsg writer and parser round-trip, padding zeroed", () => {
  const buf = new Uint8Array(128).fill(0xee);
  const dv = new DataView(buf.buffer);
  let off = writeCmsgHeader(dv, 0, 41, 50, 20);
  encodeIn6Pktinfo(dv, CMSGHDR.DATA, "2001:db8::1", 7);
  const second = off;
  off = writeCmsgHeader(dv, off, 41, 52, 4);
  dv.setInt32(second + CMSGHDR.DATA, 64, true);
  assert.equal(off, 64);
  // golden header bytes: cmsg_len 36 (u64 LE), level 41, type 50
  assert.deepEqual([...buf.subarray(0, 16)], [36, 0, 0, 0, 0, 0, 0, 0, 41, 0, 0, 0, 50, 0, 0, 0]);
  assert.deepEqual([...buf.subarray(36, 40)], [0, 0, 0, 0]); // alignment padding
  const refs = parseCmsgs(dv, off);
  assert.deepEqual(refs, [
    { level: 41, type: 50, offset: 16, length: 20 },
    { level: 41, type: 52, offset: 56, length: 4 },
  ]);
  assert.deepEqual(decodeIn6Pktinfo(dv, 16), { addr: "2001:db8::1", ifindex: 7 });
  // a truncated control length hides the second cmsg; garbage lengths stop the walk
  assert.equal(parseCmsgs(dv, 50).length, 1);
  putU64(dv, 40, 9999);
  assert.equal(parseCmsgs(dv, off).length, 1);
});

Deno.test("structs: IPv6 text parsing and RFC 5952 formatting", () => {
  assert.deepEqual(
    [...parseIpv6("2001:db8::1")],
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  );
  assert.equal(formatIpv6(parseIpv6("2001:0db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");
  assert.equal(formatIpv6(parseIpv6("2001:db8:0:1:1:1:1:1")), "2001:db8:0:1:1:1:1:1");
  assert.equal(formatIpv6(parseIpv6("::")), "::");
  assert.equal(formatIpv6(parseIpv6("::1")), "::1");
  assert.equal(formatIpv6(parseIpv6("FE80::1%eth0")), "fe80::1");
  assert.equal(formatIpv6(parseIpv6("::ffff:192.0.2.1")), "::ffff:192.0.2.1");
  for (
    const bad of ["", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", "g::", ":::"]
  ) {
    assert.throws(() => parseIpv6(bad), TypeError, bad);
  }
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
      assert.deepEqual(parseIpv6(formatIpv6(b)), b);
    }),
  );
});

Deno.test("structs: MAC text", () => {
  assert.deepEqual([...parseMac("52:54:00:00:00:1A")], [0x52, 0x54, 0, 0, 0, 0x1a]);
  assert.equal(formatMac(parseMac("2-0-0-0-0-1")), "02:00:00:00:00:01");
  assert.throws(() => parseMac("52:54:00:00:00"), TypeError);
});

Deno.test("structs: sockaddr_in6 golden bytes and round trip", () => {
  const buf = new Uint8Array(SOCKADDR_IN6.SIZE).fill(0xaa);
  const dv = new DataView(buf.buffer);
  encodeSockaddrIn6(dv, 0, { addr: "fe80::1", port: 0x1234, flowinfo: 0xabcde, scopeId: 3 });
  assert.deepEqual([...buf], [
    10,
    0,
    0x12,
    0x34,
    0,
    0x0a,
    0xbc,
    0xde, //
    0xfe,
    0x80,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1, //
    3,
    0,
    0,
    0,
  ]);
  assert.deepEqual(decodeSockaddrIn6(dv), {
    addr: "fe80::1",
    port: 0x1234,
    flowinfo: 0xabcde,
    scopeId: 3,
  });
  encodeSockaddrIn6(dv, 0, { addr: "fe80::2%9" });
  assert.equal(decodeSockaddrIn6(dv).scopeId, 9);
  assert.equal(decodeSockaddrIn6(dv).port, 0);
});

Deno.test("structs: sockaddr_ll golden bytes and round trip", () => {
  const buf = new Uint8Array(SOCKADDR_LL.SIZE).fill(0xaa);
  const dv = new DataView(buf.buffer);
  encodeSockaddrLl(dv, 0, {
    protocol: 0x86dd,
    ifindex: 5,
    pkttype: 4,
    hatype: 1,
    addr: parseMac("02:00:00:00:00:01"),
  });
  assert.deepEqual([...buf], [17, 0, 0x86, 0xdd, 5, 0, 0, 0, 1, 0, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
  const d = decodeSockaddrLl(dv);
  assert.equal(d.protocol, 0x86dd);
  assert.equal(d.ifindex, 5);
  assert.equal(d.pkttype, 4);
  assert.equal(formatMac(d.addr), "02:00:00:00:00:01");
});

Deno.test("structs: msghdr, iovec, u64 helpers", () => {
  const buf = new Uint8Array(MSGHDR.SIZE).fill(0xff);
  const dv = new DataView(buf.buffer);
  const m = {
    name: 0x7fff_1234_5678,
    namelen: 28,
    iov: 0x5555_0000_0010,
    iovlen: 1,
    control: 0,
    controllen: 0,
    flags: -1,
  };
  encodeMsghdr(dv, 0, m);
  assert.deepEqual(decodeMsghdr(dv), m);
  assert.deepEqual([...buf.subarray(12, 16)], [0, 0, 0, 0]); // padding after msg_namelen
  assert.deepEqual([...buf.subarray(52, 56)], [0, 0, 0, 0]); // padding after msg_flags
  assert.equal(dv.getBigUint64(0, true), 0x7fff_1234_5678n);
  const iov = new DataView(new ArrayBuffer(IOVEC.SIZE));
  encodeIovec(iov, 0, 2 ** 47 + 5, 1500);
  assert.equal(iov.getBigUint64(0, true), 2n ** 47n + 5n);
  assert.equal(getU64(iov, 8), 1500);
  fc.assert(fc.property(fc.maxSafeNat(), (v) => {
    putU64(iov, 0, v);
    return getU64(iov, 0) === v && iov.getBigUint64(0, true) === BigInt(v);
  }));
});

Deno.test("structs: addressOf includes the view's byteOffset", () => {
  const b = new Uint8Array(new ArrayBuffer(64));
  assert.equal(addressOf(b.subarray(10)) - addressOf(b), 10);
  assert.equal(addressOf(b), addressOf(b)); // stable
  assert.equal(addressOf(new Uint8Array(0)), 0);
});

Deno.test("structs: ipv6_mreq, packet_mreq, in6_pktinfo, pollfd, ifreq", () => {
  const mreq = encodeIpv6Mreq("ff02::1:ff00:10", 4);
  assert.equal(mreq.length, 20);
  assert.deepEqual([...mreq.subarray(16)], [4, 0, 0, 0]);
  assert.equal(formatIpv6(mreq), "ff02::1:ff00:10");
  const pm = encodePacketMreq(3, 0, parseMac("33:33:00:00:00:01"));
  assert.deepEqual([...pm], [3, 0, 0, 0, 0, 0, 6, 0, 0x33, 0x33, 0, 0, 0, 1, 0, 0]);
  const pfd = new DataView(new ArrayBuffer(16));
  encodePollfd(pfd, 1, 42, 1);
  pfd.setInt16(14, 0x11, true);
  assert.equal(pfd.getInt32(8, true), 42);
  assert.equal(pfd.getInt16(12, true), 1);
  assert.equal(pollfdRevents(pfd, 1), 0x11);
  const ifr = encodeIfreq("tap0");
  assert.equal(ifr.length, 40);
  assert.equal(decodeIfreqName(ifr), "tap0");
  assert.throws(() => encodeIfreq("a-name-too-long-"), TypeError);
  assert.throws(() => encodeIfreq(""), TypeError);
});

Deno.test("structs: icmp6_filter (RFC 3542 §3.2 bit semantics: set = block)", () => {
  const f = encodeIcmp6Filter([135, 136, 4]);
  assert.equal(f.length, 32);
  assert.deepEqual(decodeIcmp6Filter(f), [4, 135, 136]);
  const w = new DataView(f.buffer);
  assert.equal(w.getUint32(0, true), 0xffffffef); // type 4: bit 4 of word 0 cleared
  assert.equal(w.getUint32(16, true), ~(1 << 7 | 1 << 8) >>> 0); // 135, 136 in word 4
  assert.deepEqual(decodeIcmp6Filter(encodeIcmp6Filter([])), []);
  assert.throws(() => encodeIcmp6Filter([256]), RangeError);
});
