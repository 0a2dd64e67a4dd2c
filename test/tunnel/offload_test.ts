/**
 * TUNSETOFFLOAD through `ffi/tap.ts` (`setOffload`, `setTunOffload`, `tunDeviceFlags`) and the
 * data path's use of it (`vnet.ts`), against the kernel: a UDP socket sending one 8000-byte
 * UDP_SEGMENT datagram out of a tap is seen by the tap's reader as eight frames without
 * offloads and as one GSO_UDP_L4 super-frame with them — which `GsoSplitter` turns back into
 * the eight datagrams the kernel would have sent; small datagrams come with a partial checksum
 * that `finishChecksum` completes.
 *
 * @module
 */

import assert from "node:assert/strict";
import { AF_INET6, SOCK_DGRAM, TUN_F_CSUM, TUN_F_TSO6 } from "../../ffi/constants.ts";
import { check, ErrnoError, libc } from "../../ffi/libc.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { openSocket } from "../../ffi/raw_socket.ts";
import { encodeSockaddrIn6, SOCKADDR_IN6 } from "../../ffi/structs.ts";
import { tunDeviceFlags, TunTapDevice } from "../../ffi/tap.ts";
import { upperLayerChecksum } from "../../src/wire/checksum.ts";
import { finishChecksum, PacketMemory } from "../../src/tunnel/checksum.ts";
import { GsoSplitter } from "../../src/tunnel/gso.ts";
import {
  enableOffloads,
  GSO,
  hasVnetHdr,
  TUN_F_USO6,
  VNET,
  VNET_F_NEEDS_CSUM,
  VNET_HDR_LEN,
  vnetU16,
} from "../../src/tunnel/vnet.ts";
import { inNetns } from "../ffi/in_netns.ts";
import { needs } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";

const ME = "2001:db8:9::1";
const PEER = "2001:db8:9::2";
const PORT = 9999;
const IP_AT = VNET_HDR_LEN + 14; // IPv6 header offset in a frame read with its vnet header

/** Reads frames for `ms` and keeps the UDP ones to PORT. */
async function udpFrames(tap: TunTapDevice, ms: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const end = Date.now() + ms;
  const buf = new Uint8Array(70_000);
  while (Date.now() < end) {
    if (!await waitReadable(tap.fd, Math.max(1, end - Date.now()))) continue;
    for (let r = tap.read(buf); r > 0; r = tap.read(buf)) {
      const f = buf.slice(0, r);
      if (f[IP_AT - 2] === 0x86 && f[IP_AT - 1] === 0xdd && f[IP_AT + 6] === 17) {
        if (((f[IP_AT + 42] << 8) | f[IP_AT + 43]) === PORT) out.push(f);
      }
    }
  }
  return out;
}

Deno.test({
  name: "TUNSETOFFLOAD: the tap reader gets partial checksums and UDP super-frames, split here",
  ignore: needs(["ip"], { root: true }),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const ns = await lab.netns("offl");
    const name = `${lab.id}o`.slice(0, 15);
    using tap = inNetns(
      ns,
      () => TunTapDevice.open(name, { mode: "tap", vnetHdr: true, nonblocking: true }),
    );
    using plain = inNetns(ns, () => TunTapDevice.open(`${name}p`.slice(-15), { mode: "tap" }));
    tap.setUp(true);
    assert.ok(hasVnetHdr(tap.fd));
    assert.ok(!hasVnetHdr(plain.fd));
    assert.ok((tunDeviceFlags(plain.fd) & 0x0002) !== 0, "IFF_TAP");
    // TSO needs checksum offload: the kernel refuses it alone.
    assert.throws(
      () => tap.setOffload(TUN_F_TSO6),
      (e) => e instanceof ErrnoError && e.code === "EINVAL",
    );
    await ns.ip("addr", "add", `${ME}/64`, "dev", tap.name, "nodad");
    await ns.ip(
      "-6",
      "neigh",
      "add",
      PEER,
      "lladdr",
      "02:00:00:00:09:02",
      "dev",
      tap.name,
      "nud",
      "permanent",
    );

    const sock = inNetns(ns, () => openSocket(AF_INET6, SOCK_DGRAM, 17, { label: "udp" }));
    try {
      const sa = new Uint8Array(SOCKADDR_IN6.SIZE);
      encodeSockaddrIn6(new DataView(sa.buffer), 0, { addr: PEER, port: PORT });
      check("connect", libc().connect(sock, sa, sa.length));
      const seg = new Uint8Array(4);
      new DataView(seg.buffer).setInt32(0, 1000, true);
      check("UDP_SEGMENT", libc().setsockopt(sock, 17, 103, seg, 4)); // SOL_UDP, UDP_SEGMENT
      const big = new Uint8Array(8000).map((_, i) => (i * 7) & 0xff);
      const send = () => check("write", Number(libc().write(sock, big, BigInt(big.length))));

      tap.setOffload(0);
      send();
      const without = await udpFrames(tap, 300);
      assert.equal(without.length, 8, "segmented by the kernel");
      for (const f of without) assert.equal(f[VNET.GSO_TYPE], GSO.NONE);

      const flags = enableOffloads(tap.fd);
      assert.equal(flags & (TUN_F_CSUM | TUN_F_TSO6), TUN_F_CSUM | TUN_F_TSO6);
      assert.ok(
        (flags & TUN_F_USO6) !== 0,
        `this kernel takes USO (flags 0x${flags.toString(16)})`,
      );
      send();
      const withOffload = await udpFrames(tap, 300);
      assert.equal(withOffload.length, 1, "one super-frame");
      const f = withOffload[0];
      assert.equal(f[VNET.GSO_TYPE], GSO.UDP_L4);
      assert.equal(vnetU16(f, VNET.GSO_SIZE), 1000);
      const m = new PacketMemory(new ArrayBuffer(f.length + 8));
      m.u8.set(f, 0);
      const split = new GsoSplitter();
      assert.equal(split.prepare(m, IP_AT, f.length - IP_AT, GSO.UDP_L4, 1000), 8);
      const o = new PacketMemory(new ArrayBuffer(2048));
      for (let i = 0; i < 8; i++) {
        const l = split.emit(i, o, 8);
        const s = o.u8.subarray(8, 8 + l);
        // Byte for byte what the kernel sent without offloads (IPv6 + UDP + payload).
        assert.deepEqual(s, without[i].subarray(IP_AT), `datagram ${i}`);
        assert.equal(upperLayerChecksum(ME, PEER, 17, s.subarray(40)), 0);
      }

      // A small datagram: the checksum is left partial, described by csum_start/offset.
      check("UDP_SEGMENT off", libc().setsockopt(sock, 17, 103, new Uint8Array(4), 4));
      check("write", Number(libc().write(sock, big, 300n)));
      const [small] = await udpFrames(tap, 300);
      assert.ok(small, "the small datagram");
      assert.equal(small[VNET.FLAGS] & VNET_F_NEEDS_CSUM, VNET_F_NEEDS_CSUM);
      const sm = new PacketMemory(new ArrayBuffer(small.length + 8));
      sm.u8.set(small, 0);
      const start = VNET_HDR_LEN + vnetU16(small, VNET.CSUM_START);
      assert.ok(finishChecksum(sm, start, small.length, start + vnetU16(small, VNET.CSUM_OFFSET)));
      assert.equal(upperLayerChecksum(ME, PEER, 17, sm.u8.subarray(IP_AT + 40, small.length)), 0);
    } finally {
      libc().close(sock);
    }
  },
});
