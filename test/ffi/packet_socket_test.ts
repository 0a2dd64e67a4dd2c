/**
 * PacketSocket details on a veth pair between two lab namespaces: multicast
 * membership as the kernel lists it, PACKET_AUXDATA checksum status, and
 * PACKET_IGNORE_OUTGOING.
 */

import assert from "node:assert/strict";
import { ETH_P_IPV6, IPPROTO_UDP, TP_STATUS_CSUMNOTREADY } from "../../ffi/constants.ts";
import { PacketSocket } from "../../ffi/packet_socket.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { parseMac } from "../../ffi/structs.ts";
import { needs } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { inNetns } from "./in_netns.ts";
import { ethernetFrame, eventually, upPair } from "./packets.ts";

const GROUP = "33:33:00:00:4b:47";

Deno.test({
  name: "PacketSocket: multicast membership shows in the device's list and goes with close",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const ns = await lab.netns("ffipkt-mc");
    const other = await lab.netns("ffipkt-peer");
    await lab.veth(ns, "eth0", other, "eth0");
    const maddr = async () => (await ns.exec(["cat", "/proc/net/dev_mcast"])).stdout;
    assert.doesNotMatch(await maddr(), /333300004b47/);
    const ps = inNetns(ns, () => PacketSocket.open("eth0"));
    ps.addMulticast(GROUP);
    assert.match(await maddr(), /\beth0\s+\d+\s+\d+\s+333300004b47\n/);
    ps.dropMulticast(GROUP);
    assert.doesNotMatch(await maddr(), /333300004b47/);
    ps.addMulticast(GROUP);
    ps.close();
    ps.close();
    assert.ok(await eventually(async () => !/333300004b47/.test(await maddr())));
  },
});

Deno.test({
  name: "PacketSocket: PACKET_AUXDATA reports a UDP checksum left for the 'hardware' on veth",
  ignore: needs(["ip", "bash"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const [a, b] = await upPair(lab, "ffipkt-auxa", "ffipkt-auxb");
    await a.ip("addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad");
    await b.ip("addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad");
    using ps = inNetns(
      b,
      () => PacketSocket.open("eth0", { protocol: ETH_P_IPV6, nonblocking: true, auxData: true }),
    );
    // the kernel's own UDP stack sends (bash /dev/udp): checksum offloaded to the veth
    await a.exec(["bash", "-c", "echo kagemusha > /dev/udp/2001:db8:1::2/9"]);
    const buf = new Uint8Array(2048);
    let status = -1;
    while (status < 0 && await waitReadable(ps.fd, 3000)) {
      for (let n = ps.recv(buf); n >= 0; n = ps.recv(buf)) {
        if (buf[14 + 6] === IPPROTO_UDP) status = ps.lastAuxStatus;
      }
    }
    assert.ok(status >= 0, "no UDP frame seen");
    assert.equal(status & TP_STATUS_CSUMNOTREADY, TP_STATUS_CSUMNOTREADY);
    assert.equal(ps.lastPacketType === 0 || ps.lastPacketType === 2, true);
  },
});

Deno.test({
  name: "PacketSocket: ignoreOutgoing hides frames this host transmits",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const [a, b] = await upPair(lab, "ffipkt-outa", "ffipkt-outb");
    const ETYPE = 0x88b5;
    using tx = inNetns(a, () => PacketSocket.open("eth0", { protocol: ETYPE }));
    // outgoing frames reach ETH_P_ALL sockets only (dev_queue_xmit_nit)
    using all = inNetns(a, () => PacketSocket.open("eth0", { nonblocking: true }));
    using quiet = inNetns(
      a,
      () => PacketSocket.open("eth0", { nonblocking: true, ignoreOutgoing: true }),
    );
    const frame = ethernetFrame(
      parseMac("ff:ff:ff:ff:ff:ff"),
      parseMac("02:00:00:00:00:01"),
      ETYPE,
      new Uint8Array([7]),
    );
    const buf = new Uint8Array(2048);
    const ours = () => buf[12] === ETYPE >> 8 && buf[13] === (ETYPE & 0xff);
    // both may see other traffic (IPv6 ND/MLD of the veth): drain it first
    while (all.recv(buf) >= 0 || quiet.recv(buf) >= 0);
    assert.equal(tx.send(frame), frame.length);
    let seen = false;
    while (!seen && await waitReadable(all.fd, 3000)) {
      for (let n = all.recv(buf); n >= 0 && !seen; n = all.recv(buf)) {
        if (ours()) {
          seen = true;
          assert.equal(n, frame.length);
          assert.equal(all.lastPacketType, 4); // PACKET_OUTGOING
        }
      }
    }
    assert.ok(seen, "the ETH_P_ALL socket did not see the outgoing frame");
    for (let n = quiet.recv(buf); n >= 0; n = quiet.recv(buf)) {
      assert.ok(!ours(), "ignoreOutgoing socket saw our own frame");
    }
    // ...while it still hears incoming frames
    using txb = inNetns(b, () => PacketSocket.open("eth0", { protocol: ETYPE }));
    txb.send(frame);
    let heard = false;
    while (!heard && await waitReadable(quiet.fd, 3000)) {
      for (let n = quiet.recv(buf); n >= 0 && !heard; n = quiet.recv(buf)) {
        heard = ours() && quiet.lastPacketType === 1; // PACKET_BROADCAST
      }
    }
    assert.ok(heard, "the ignoreOutgoing socket missed an incoming frame");
  },
});

Deno.test({
  name: "PacketSocket: setAllMulticast counts in the device's allmulti, close drops it",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const ns = await lab.netns("ffipkt-allmc");
    const other = await lab.netns("ffipkt-allmc-peer");
    await lab.veth(ns, "eth0", other, "eth0");
    // IFLA_ALLMULTI: the device's all-multicast count (kernel memberships included; the
    // IFF_ALLMULTI flag `ip link` prints shows only what user space set with SIOCSIFFLAGS)
    const allmulti = async () =>
      JSON.parse((await ns.exec(["ip", "-d", "-j", "link", "show", "eth0"])).stdout)[0]
        .allmulti as number;
    const before = await allmulti();
    const ps = inNetns(ns, () => PacketSocket.open("eth0"));
    ps.setAllMulticast(true);
    assert.equal(await allmulti(), before + 1, "membership counts");
    ps.setAllMulticast(false);
    assert.equal(await allmulti(), before, "dropping it uncounts");
    ps.setAllMulticast(true);
    ps.close();
    assert.ok(await eventually(async () => await allmulti() === before), "close drops it");
  },
});
