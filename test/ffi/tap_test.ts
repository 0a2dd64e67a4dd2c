/**
 * TunTapDevice and PacketSocket in a lab namespace: the device is created from
 * this process with its thread moved into the namespace (setns), configured
 * by ioctl only, checked with `ip -j link`, and frames cross it both ways.
 */

import assert from "node:assert/strict";
import { IFF_RUNNING, IFF_UP, IPPROTO_ICMPV6 } from "../../ffi/constants.ts";
import { PacketSocket } from "../../ffi/packet_socket.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { parseIpv6, parseMac } from "../../ffi/structs.ts";
import { TunTapDevice } from "../../ffi/tap.ts";
import { needs } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { inNetns } from "./in_netns.ts";
import { checksum, concat, ethernetFrame, eventually, ipv6Header, linkInfo } from "./packets.ts";

const TAP_MAC = "02:4b:47:00:00:01";
const PEER_MAC = parseMac("02:4b:47:00:00:02");
const BROADCAST = parseMac("ff:ff:ff:ff:ff:ff");
const ETH_EXPERIMENTAL = 0x88b5; // IEEE 802 local experimental EtherType

/** Reads frames until `match` accepts one (the kernel also sends ND/MLD out of the device). */
async function readUntil(
  fd: number,
  read: (buf: Uint8Array) => number,
  match: (frame: Uint8Array) => boolean,
): Promise<Uint8Array> {
  const buf = new Uint8Array(4096);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (!await waitReadable(fd, 500)) continue;
    for (let n = read(buf); n >= 0; n = read(buf)) {
      const f = buf.slice(0, n);
      if (match(f)) return f;
    }
  }
  throw new Error("expected frame not seen within 5 s");
}

const isType = (t: number, off = 0) => (f: Uint8Array) =>
  f[off + 12] === t >> 8 && f[off + 13] === (t & 0xff);

Deno.test({
  name: "TunTapDevice: tap in a namespace, MAC/MTU/up by ioctl, frames both ways",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const ns = await lab.netns("ffitap-tap");
    const name = `${lab.id}t`.slice(0, 15);
    const tap = inNetns(ns, () => TunTapDevice.open(name, { mode: "tap", nonblocking: true }));
    try {
      assert.equal(tap.name, name);
      assert.equal(tap.mode, "tap");
      tap.setMac(TAP_MAC);
      tap.setMtu(1400);
      tap.setUp(true);
      assert.equal(tap.getMac(), TAP_MAC);
      assert.equal(tap.getMtu(), 1400);
      assert.equal(tap.getFlags() & (IFF_UP | IFF_RUNNING), IFF_UP | IFF_RUNNING);

      // the kernel's view, through iproute2
      const link = await linkInfo(ns, name);
      assert.equal(link.ifindex, tap.ifindex);
      assert.equal(link.address, TAP_MAC);
      assert.equal(link.mtu, 1400);
      assert.ok(link.flags.includes("UP"), JSON.stringify(link.flags));
      // nothing leaked into the namespace this test runs in
      const outside = new Deno.Command("ip", { args: ["link", "show", "dev", name] }).outputSync();
      assert.equal(outside.success, false);

      using ps = inNetns(ns, () => PacketSocket.open(name, { nonblocking: true }));
      assert.equal(ps.ifindex, tap.ifindex);
      const rxBefore = (await linkInfo(ns, name, true)).stats64.rx.packets;

      // tap → kernel: a frame written to the device is received on it
      const inbound = ethernetFrame(
        BROADCAST,
        PEER_MAC,
        ETH_EXPERIMENTAL,
        new TextEncoder().encode("kagemusha: written to the tap"),
      );
      assert.equal(tap.write(inbound), inbound.length);
      const seen = await readUntil(ps.fd, (b) => ps.recv(b), isType(ETH_EXPERIMENTAL));
      assert.deepEqual(seen, inbound);
      assert.equal(ps.lastPacketType, 1); // PACKET_BROADCAST
      const rxAfter = (await linkInfo(ns, name, true)).stats64.rx.packets;
      assert.ok(rxAfter >= rxBefore + 1, `rx_packets ${rxBefore} → ${rxAfter}`);

      // kernel → tap: a frame sent out of the device is read from the fd
      const outbound = ethernetFrame(
        parseMac(TAP_MAC),
        PEER_MAC,
        ETH_EXPERIMENTAL + 1,
        new TextEncoder().encode("kagemusha: sent into the tap"),
      );
      assert.equal(ps.send(outbound), outbound.length);
      const got = await readUntil(tap.fd, (b) => tap.read(b), isType(ETH_EXPERIMENTAL + 1));
      assert.deepEqual(got, outbound);
    } finally {
      tap.close();
      tap.close(); // idempotent
    }
    assert.equal(tap.fd, -1);
    const gone = await eventually(async () =>
      (await ns.exec(["ip", "link", "show", "dev", name], { allowFail: true })).code !== 0
    );
    assert.ok(gone, "the device outlived close()");
  },
});

Deno.test({
  name: "TunTapDevice: IFF_VNET_HDR prefixes frames with a 10-byte virtio_net_hdr",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const ns = await lab.netns("ffitap-vnet");
    const name = `${lab.id}v`.slice(0, 15);
    using tap = inNetns(
      ns,
      () => TunTapDevice.open(name, { mode: "tap", vnetHdr: true, nonblocking: true }),
    );
    tap.setUp(true);
    using ps = inNetns(ns, () => PacketSocket.open(name, { nonblocking: true }));
    const frame = ethernetFrame(BROADCAST, PEER_MAC, ETH_EXPERIMENTAL, new Uint8Array([1, 2, 3]));
    // in: header (all zero: no checksum/GSO) + frame
    assert.equal(tap.write(concat(new Uint8Array(10), frame)), 10 + frame.length);
    assert.deepEqual(await readUntil(ps.fd, (b) => ps.recv(b), isType(ETH_EXPERIMENTAL)), frame);
    // out: the reader gets the header first
    ps.send(frame);
    const got = await readUntil(tap.fd, (b) => tap.read(b), isType(ETH_EXPERIMENTAL, 10));
    assert.equal(got.length, 10 + frame.length);
    assert.deepEqual(got.subarray(0, 10), new Uint8Array(10)); // flags 0, GSO_NONE
    assert.deepEqual(got.subarray(10), frame);
  },
});

Deno.test({
  name: "TunTapDevice: tun mode carries bare IPv6 packets (the kernel answers an echo request)",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const ns = await lab.netns("ffitap-tun");
    const name = `${lab.id}u`.slice(0, 15);
    using tun = inNetns(ns, () => TunTapDevice.open(name, { mode: "tun", nonblocking: true }));
    assert.equal(tun.read(new Uint8Array(2048)), -1); // nonblocking, nothing queued: EAGAIN
    tun.setUp(true);
    const link = await linkInfo(ns, name);
    assert.equal(link.link_type, "none");
    await ns.ip("addr", "add", "2001:db8:99::1/64", "dev", name, "nodad");

    const echo = new Uint8Array(16);
    echo[0] = 128; // Echo Request (RFC 4443 §4.1)
    echo[4] = 0x4b, echo[5] = 0x47, echo[7] = 1; // id, seq
    echo.set([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4], 8);
    const c = checksum("2001:db8:99::2", "2001:db8:99::1", IPPROTO_ICMPV6, echo);
    echo[2] = c >> 8, echo[3] = c & 0xff;
    const pkt = concat(
      ipv6Header("2001:db8:99::2", "2001:db8:99::1", IPPROTO_ICMPV6, echo.length),
      echo,
    );
    assert.equal(tun.write(pkt), pkt.length);
    const reply = await readUntil(
      tun.fd,
      (b) => tun.read(b),
      (p) => p[0] >> 4 === 6 && p[6] === IPPROTO_ICMPV6 && p[40] === 129,
    );
    assert.deepEqual(reply.subarray(8, 24), parseIpv6("2001:db8:99::1"));
    assert.deepEqual(reply.subarray(24, 40), parseIpv6("2001:db8:99::2"));
    assert.deepEqual(reply.subarray(44), echo.subarray(4)); // id, seq and data echoed
  },
});
