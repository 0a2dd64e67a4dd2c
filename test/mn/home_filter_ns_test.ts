/**
 * The home-link BPF filter (`src/mn/home_filter.ts`) as the kernel runs it: attached with
 * `PacketSocket.attachFilter` to an ETH_P_ALL socket in a namespace, it lets through only
 * IPv6 frames from the home agent carrying MH or a routing header, while an unfiltered
 * socket on the same device sees every frame sent.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketSocket } from "../../ffi/packet_socket.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { needs } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { inNetns } from "../ffi/in_netns.ts";
import { upPair } from "../ffi/packets.ts";
import { homeLinkFilter } from "../../src/mn/home_filter.ts";
import { parseIPv6 } from "../../src/wire/addr.ts";
import { buildEthernetFrame, buildMobilityPacket } from "../../src/wire/packet.ts";

const HA = "2001:db8:2000::1";
const HOA = "2001:db8:2000::10";

function frame(src: string, nh: number, seq: number): Uint8Array {
  const ip = buildMobilityPacket({
    src,
    dst: HOA,
    mh: {
      type: "ba",
      status: 0,
      flags: { key: false, mobileRouter: false, proxy: false },
      sequence: seq,
      lifetime: 0,
      options: [],
    },
  });
  ip[6] = nh;
  return buildEthernetFrame({ dst: "52:54:00:00:00:10", src: "02:00:00:00:00:99" }, ip);
}

/** Sequence numbers (BA bytes 8..9) of our test frames `ps` receives within `ms`. */
async function collect(ps: PacketSocket, ms: number): Promise<number[]> {
  const buf = new Uint8Array(2048);
  const seqs: number[] = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && await waitReadable(ps.fd, 200)) {
    for (let n = ps.recv(buf); n >= 0; n = ps.recv(buf)) {
      // Ours: IPv6 to the HoA (the veth's own ND/MLD traffic is not).
      if (n >= 62 && buf[12] === 0x86 && buf[13] === 0xdd && buf[38 + 15] === 0x10) {
        seqs.push((buf[54 + 8] << 8) | buf[54 + 9]);
      }
    }
  }
  return seqs;
}

Deno.test({
  name: "home-link BPF filter in the kernel: only MH/RH/ESP frames from the HA reach the socket",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const [a, b] = await upPair(lab, "mnbpf-a", "mnbpf-b");
    using filtered = inNetns(b, () => PacketSocket.open("eth0", { nonblocking: true }));
    filtered.attachFilter(homeLinkFilter(parseIPv6(HA)));
    using all = inNetns(b, () => PacketSocket.open("eth0", { nonblocking: true }));
    // Frames queued between bind and attach went unfiltered: drain both first.
    const buf = new Uint8Array(2048);
    while (filtered.recv(buf) >= 0 || all.recv(buf) >= 0);
    using tx = inNetns(a, () => PacketSocket.open("eth0"));
    tx.send(frame(HA, 135, 1)); // BA from the HA: passes
    tx.send(frame(HA, 17, 2)); // "UDP" from the HA: dropped
    tx.send(frame("2001:db8:2000::2", 135, 3)); // MH from another host: dropped
    tx.send(frame("2001:db8:2000::1:0:1", 135, 4)); // differs in word 2 only: dropped
    tx.send(frame(HA, 43, 5)); // routing header from the HA: passes
    const arp = frame(HA, 135, 6);
    arp[12] = 0x08;
    arp[13] = 0x06;
    tx.send(arp); // not IPv6: dropped
    tx.send(frame(HA, 50, 7)); // ESP from the HA (a protected BA, RFC 4877 §4): passes
    tx.send(frame("2001:db8:2000::2", 50, 8)); // ESP from another host: dropped
    assert.deepEqual((await collect(all, 1500)).sort(), [1, 2, 3, 4, 5, 7, 8]);
    assert.deepEqual((await collect(filtered, 500)).sort(), [1, 5, 7]);
    assert.throws(() => filtered.attachFilter(new Uint8Array(7)), RangeError);
  },
});
