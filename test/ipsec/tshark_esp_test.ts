/**
 * Oracle: tshark (Wireshark 4.0), given the SAs, decrypts the ESP Kagemusha protects, checks
 * its ICV, and dissects the Mobility Header inside — for every algorithm, for a BU
 * (IPv6 | DestOpts(HAO) | ESP | MH), a BA (IPv6 | RH2 | ESP | MH) and a BU from home
 * (IPv6 | ESP | MH). A packet with one flipped ICV bit must come out "icv_bad".
 */

import assert from "node:assert/strict";
import {
  buildProtectedBindingAck,
  buildProtectedBindingUpdate,
  buildProtectedMobilityPacket,
} from "../../src/ipsec/packets.ts";
import { needs } from "../helpers/env.ts";
import { toHex, tsharkDissect, type TsharkPacket } from "../oracle/oracle.ts";
import { LINKTYPE } from "../oracle/pcap.ts";
import { ADDR, ALGORITHMS, ba, bu, SA_CONFIGS, saFor, tsharkEspArgs } from "./esp_oracle.ts";

const colon = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");

interface Case {
  name: string;
  packet: Uint8Array;
  spi: number;
  seq: number;
  ext: string;
  check: (t: TsharkPacket, one: (f: string) => string) => void;
}

async function cases(): Promise<Case[]> {
  const out: Case[] = [];
  for (const alg of ALGORITHMS) {
    const sa = saFor(alg, "outbound");
    const spi = SA_CONFIGS[alg].spi;
    // Move the counter so the sequence numbers are not all 1.
    sa.importState({ spi, direction: "outbound", sequence: 40 });
    out.push({
      name: `${alg}: BU away from home`,
      packet: await buildProtectedBindingUpdate(sa, { ...ADDR, bu: bu(1001) }),
      spi,
      seq: 41,
      ext: ":ipv6.dstopts",
      check: (t, one) => {
        assert.equal(one("mip6.mhtype"), "5");
        assert.equal(one("mip6.bu.seqnr"), "1001");
        assert.equal(one("mip6.bu.a_flag"), "1");
        assert.equal(one("mip6.bu.h_flag"), "1");
        assert.equal(one("mip6.bu.k_flag"), "0");
        assert.equal(one("mip6.bu.lifetime"), "150");
        assert.equal(one("mip6.acoa.acoa"), ADDR.careOf);
        assert.equal(one("ipv6.opt.mipv6.home_address"), ADDR.homeAddress);
        assert.equal(one("ipv6.dstopts.nxt"), "50");
        assert.equal(t.fields.get("ipv6.src")?.[0], ADDR.careOf);
      },
    });
    out.push({
      name: `${alg}: BA to the care-of address`,
      packet: await buildProtectedBindingAck(sa, { ...ADDR, ba: ba(1001, 0) }),
      spi,
      seq: 42,
      ext: ":ipv6.routing",
      check: (_t, one) => {
        assert.equal(one("mip6.mhtype"), "6");
        assert.equal(one("mip6.ba.seqnr"), "1001");
        assert.equal(one("mip6.ba.status"), "0");
        assert.equal(one("mip6.ba.lifetime"), "150");
        assert.equal(one("ipv6.routing.mipv6.home_address"), ADDR.homeAddress);
        assert.equal(one("ipv6.routing.nxt"), "50");
      },
    });
    out.push({
      name: `${alg}: BU from home (deregistration)`,
      packet: await buildProtectedMobilityPacket(sa, {
        src: ADDR.homeAddress,
        dst: ADDR.homeAgent,
        mh: { type: "bu", ...bu(1002), lifetime: 0, options: [] },
      }),
      spi,
      seq: 43,
      ext: "",
      check: (_t, one) => {
        assert.equal(one("mip6.bu.seqnr"), "1002");
        assert.equal(one("mip6.bu.lifetime"), "0");
      },
    });
  }
  return out;
}

Deno.test({
  name: "tshark decrypts Kagemusha's ESP with the SAs and dissects the MH inside",
  ignore: needs(["tshark"]),
  fn: async () => {
    const all = await cases();
    const dissected = await tsharkDissect(all.map((c) => c.packet), {
      linktype: LINKTYPE.RAW,
      tsharkArgs: tsharkEspArgs(),
    });
    all.forEach((c, i) => {
      const t = dissected[i];
      const one = (f: string) => {
        const v = t.fields.get(f) ?? [];
        assert.equal(v.length, 1, `${c.name}: ${f} occurs ${v.length} times: ${v.join(", ")}`);
        return v[0];
      };
      assert.equal(t.malformed, false, `${c.name}: malformed`);
      assert.equal(t.protocols, `raw:ipv6${c.ext}:esp:mipv6`, `${c.name}: ${t.protocols}`);
      assert.equal(one("esp.spi"), `0x${c.spi.toString(16).padStart(8, "0")}`, c.name);
      assert.equal(one("esp.sequence"), String(c.seq), c.name);
      assert.equal(one("esp.icv_good"), "1", `${c.name}: tshark says the ICV is wrong`);
      assert.equal(one("esp.icv_bad"), "0", c.name);
      assert.equal(one("esp.protocol"), "0x87", `${c.name}: next header`);
      const padLen = Number(one("esp.pad_len"));
      if (padLen > 0) {
        const want = Array.from({ length: padLen }, (_, k) => k + 1);
        assert.equal(one("esp.pad"), colon(new Uint8Array(want)), `${c.name}: 1, 2, 3… padding`);
      }
      if (c.name.startsWith("aes-gcm")) {
        // RFC 4106 §3.1 as we do it: the explicit IV is the sequence number.
        assert.equal(one("esp.iv"), colon(hexSeq(c.seq)), `${c.name}: IV`);
      }
      assert.equal(one("mip6.proto"), "59");
      c.check(t, one);
      assert.deepEqual(t.expert, [], `${c.name}: expert info`);
    });
  },
});

function hexSeq(seq: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(4, seq);
  return b;
}

Deno.test({
  name: "tshark: a flipped ICV bit is reported bad for every algorithm",
  ignore: needs(["tshark"]),
  fn: async () => {
    const pkts: Uint8Array[] = [];
    for (const alg of ALGORITHMS) {
      const p = await buildProtectedBindingUpdate(saFor(alg, "outbound"), { ...ADDR, bu: bu(7) });
      p[p.length - 3] ^= 0x10;
      pkts.push(p);
    }
    const ds = await tsharkDissect(pkts, { linktype: LINKTYPE.RAW, tsharkArgs: tsharkEspArgs() });
    ds.forEach((t, i) => {
      const bad = t.fields.get("esp.icv_bad") ?? [];
      assert.deepEqual(bad, ["1"], `${ALGORITHMS[i]}: icv_bad ${bad} (${toHex(pkts[i])})`);
    });
  },
});
