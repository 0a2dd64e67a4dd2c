/**
 * The oracle harness itself: our pcap writer round-trips, and tshark reads its
 * files (LINKTYPE_RAW and LINKTYPE_ETHERNET) packet by packet.
 */

import assert from "node:assert/strict";
import { needs } from "../helpers/env.ts";
import { decodePcap, encodePcap, LINKTYPE } from "./pcap.ts";
import { fromHex, toHex, tsharkDissect } from "./oracle.ts";

// Hand-written IPv6 headers (no codec involved): 2001:db8::1 → 2001:db8::2,
// next header 59, hop limit 7 and 2001:db8::3 → ff02::1 with 4 bytes of payload.
const RAW_PACKETS = [
  "60000000" + "0000" + "3b" + "07" +
  "20010db8000000000000000000000001" + "20010db8000000000000000000000002",
  "6000000a" + "0004" + "3b" + "ff" +
  "20010db8000000000000000000000003" + "ff020000000000000000000000000001" + "deadbeef",
].map(fromHex);

Deno.test("oracle/pcap: encode/decode round trip", () => {
  const file = encodePcap(RAW_PACKETS, LINKTYPE.RAW);
  assert.equal(file.length, 24 + 16 + 40 + 16 + 44);
  const back = decodePcap(file);
  assert.equal(back.linktype, 101);
  assert.deepEqual(back.packets.map(toHex), RAW_PACKETS.map(toHex));
  assert.throws(() => decodePcap(file.subarray(0, file.length - 1)), /truncated/);
});

Deno.test({
  name: "oracle/pcap: tshark reads our pcap files (raw IPv6 and Ethernet)",
  ignore: needs(["tshark"]),
  async fn() {
    const raw = await tsharkDissect(RAW_PACKETS, { linktype: LINKTYPE.RAW });
    assert.deepEqual(raw.map((p) => p.fields.get("ipv6.src")), [["2001:db8::1"], [
      "2001:db8::3",
    ]]);
    assert.deepEqual(raw.map((p) => p.fields.get("ipv6.hlim")), [["7"], ["255"]]);
    assert.deepEqual(raw.map((p) => p.fields.get("ipv6.flow")), [["0x000000"], ["0x00000a"]]);
    assert.deepEqual(raw.map((p) => p.malformed), [false, false]);

    const eth = fromHex("333300000001" + "525400000010" + "86dd");
    const frames = RAW_PACKETS.map((p) => {
      const f = new Uint8Array(14 + p.length);
      f.set(eth);
      f.set(p, 14);
      return f;
    });
    const [a, b] = await tsharkDissect(frames, { linktype: LINKTYPE.ETHERNET });
    assert.deepEqual(a.fields.get("eth.src"), ["52:54:00:00:00:10"]);
    assert.equal(a.protocols, "eth:ethertype:ipv6");
    assert.deepEqual(b.fields.get("ipv6.dst"), ["ff02::1"]);
    assert.deepEqual(b.fields.get("data.data"), ["de:ad:be:ef"]);

    // The harness sees tshark's complaints: payload length beyond the frame
    // (expert info) and a Mobility Header cut short (malformed).
    const bad = [
      fromHex(toHex(RAW_PACKETS[1]).replace("00043bff", "00643bff")),
      fromHex(
        "60000000" + "0004" + "87" + "40" + toHex(RAW_PACKETS[0].subarray(8, 40)) + "3b010500",
      ),
    ];
    const [long, short] = await tsharkDissect(bad, { linktype: LINKTYPE.RAW });
    assert.match(long.expert.join(), /payload length exceeds framing/);
    assert.equal(short.malformed, true);
  },
});
