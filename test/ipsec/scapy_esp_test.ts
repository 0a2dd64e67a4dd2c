/**
 * Oracle: scapy's ESP (scapy.layers.ipsec.SecurityAssociation, with python3-cryptography)
 * against Kagemusha's, both ways, for every algorithm scapy shares with us (AES-GCM-128/256,
 * AES-CBC + SHA2-256-128, NULL + SHA2-256-128):
 * - scapy decrypts and verifies whole BU (IPv6 | DestOpts(HAO) | ESP | MH) and BA
 *   (IPv6 | RH2 | ESP | MH) packets we protect; the decrypted BU is byte for byte the plain
 *   BU our builder makes, and the MH checksum (recomputed in Python over the HoA) holds;
 * - we unprotect what scapy encrypts from our plain BU/BA (transport mode: scapy puts ESP
 *   after the HAO / the routing header, with its own random IVs);
 * - a bit flipped in our packet makes scapy's integrity check fail (the oracle does check).
 */

import assert from "node:assert/strict";
import { buildProtectedBindingAck, buildProtectedBindingUpdate } from "../../src/ipsec/packets.ts";
import { unprotectPacket } from "../../src/ipsec/packets.ts";
import { SecurityAssociationDatabase } from "../../src/ipsec/sa.ts";
import { emitMobility, mobilityLen, type MobilityRepr } from "../../src/wire/mobility.ts";
import { buildBindingAck, buildBindingUpdate } from "../../src/wire/packet.ts";
import { fromHex, needsScapy, toHex } from "../oracle/oracle.ts";
import { ADDR, ALGORITHMS, ba, bu, runScapyEsp, SA_CONFIGS, saFor } from "./esp_oracle.ts";

interface Decrypted {
  name: string;
  ok: boolean;
  error?: string;
  esp: { spi: number; seq: number; len: number };
  hao: string | null;
  rh2: string | null;
  nh_before_mh?: number;
  decrypted_hex?: string;
  inner?: {
    type: string;
    sequence: number;
    status?: number;
    flags: number;
    lifetime: number;
    hex: string;
    checksum_ok: boolean;
  };
}

function mhBytes(mh: MobilityRepr, sum: { src: string; dst: string }): string {
  const b = new Uint8Array(mobilityLen(mh));
  emitMobility(mh, b, sum);
  return toHex(b);
}

// scapy's MIP6MH_BU flags field lists P R M K L H A from bit 0: A|H = 0x60.
const SCAPY_AH = 0x60;

Deno.test({
  name: "scapy decrypts and verifies the BU and BA Kagemusha protects (every algorithm)",
  ignore: needsScapy(),
  fn: async () => {
    const items: { name: string; sa: unknown; hex: string }[] = [];
    const expected: { name: string; kind: "bu" | "ba"; spi: number; seq: number }[] = [];
    for (const alg of ALGORITHMS) {
      const sa = saFor(alg, "outbound");
      const add = (name: string, kind: "bu" | "ba", p: Uint8Array) => {
        items.push({ name, sa: SA_CONFIGS[alg], hex: toHex(p) });
        expected.push({ name, kind, spi: SA_CONFIGS[alg].spi, seq: sa.lastSequence });
      };
      add(`${alg} BU`, "bu", await buildProtectedBindingUpdate(sa, { ...ADDR, bu: bu(4660) }));
      add(`${alg} BA`, "ba", await buildProtectedBindingAck(sa, { ...ADDR, ba: ba(4660, 0) }));
      const tampered = await buildProtectedBindingUpdate(sa, { ...ADDR, bu: bu(4661) });
      tampered[64 + 10] ^= 0x01; // ESP byte 10: IV (GCM, CBC) or MH (NULL), all covered
      items.push({ name: `${alg} tampered`, sa: SA_CONFIGS[alg], hex: toHex(tampered) });
    }
    const out = await runScapyEsp<Decrypted[]>("decrypt", items);
    assert.equal(out.length, items.length);
    const plainBu = toHex(buildBindingUpdate({ ...ADDR, bu: bu(4660) }));
    const buMh = mhBytes({ type: "bu", ...bu(4660) }, {
      src: ADDR.homeAddress,
      dst: ADDR.homeAgent,
    });
    const baMh = toHex(buildBindingAck({ ...ADDR, ba: ba(4660, 0) }).subarray(40 + 24));
    for (const r of out) {
      if (r.name.endsWith("tampered")) {
        assert.equal(r.ok, false, `${r.name}: scapy accepted a flipped bit`);
        assert.match(r.error ?? "", /integrity/);
        continue;
      }
      const want = expected.find((e) => e.name === r.name)!;
      assert.equal(r.ok, true, `${r.name}: ${r.error}`);
      assert.equal(r.esp.spi, want.spi, r.name);
      assert.equal(r.esp.seq, want.seq, r.name);
      assert.equal(r.nh_before_mh, 135, `${r.name}: next header restored to MH`);
      assert.equal(r.inner?.type, want.kind, r.name);
      assert.equal(r.inner?.sequence, 4660, r.name);
      assert.equal(r.inner?.lifetime, 150, r.name);
      assert.equal(r.inner?.checksum_ok, true, `${r.name}: MH checksum over the HoA`);
      if (want.kind === "bu") {
        assert.equal(r.hao, ADDR.homeAddress);
        assert.equal(r.inner?.flags, SCAPY_AH);
        assert.equal(r.inner?.hex, buMh);
        // Decrypted and reassembled by scapy: exactly the unprotected BU of src/wire.
        assert.equal(r.decrypted_hex, plainBu, `${r.name}: decrypted packet`);
      } else {
        assert.equal(r.rh2, ADDR.homeAddress);
        assert.equal(r.inner?.status, 0);
        assert.equal(r.inner?.hex, baMh);
      }
    }
  },
});

Deno.test({
  name: "Kagemusha unprotects the BU and BA scapy encrypts (every algorithm)",
  ignore: needsScapy(),
  fn: async () => {
    const items: { name: string; sa: unknown; seq: number; hex: string }[] = [];
    for (const alg of ALGORITHMS) {
      items.push({
        name: `${alg} BU`,
        sa: SA_CONFIGS[alg],
        seq: 1000,
        hex: toHex(buildBindingUpdate({ ...ADDR, bu: bu(77) })),
      });
      items.push({
        name: `${alg} BA`,
        sa: SA_CONFIGS[alg],
        seq: 1001,
        hex: toHex(buildBindingAck({ ...ADDR, ba: ba(77, 135) })),
      });
    }
    const out = await runScapyEsp<{ name: string; hex: string }[]>("encrypt", items);
    for (const [i, alg] of ALGORITHMS.entries()) {
      const ha = new SecurityAssociationDatabase();
      const mn = new SecurityAssociationDatabase();
      const haIn = saFor(alg, "inbound");
      const mnIn = saFor(alg, "inbound");
      ha.add(haIn);
      mn.add(mnIn);
      const buPkt = fromHex(out[2 * i].hex);
      const baPkt = fromHex(out[2 * i + 1].hex);
      // scapy put ESP behind the HAO / the RH2 (transport mode, RFC 4303 §3.1.1).
      assert.equal(buPkt[6], 60, `${alg}: BU starts with destination options`);
      assert.equal(buPkt[40], 50, `${alg}: destination options name ESP`);
      assert.equal(baPkt[6], 43, `${alg}: BA starts with the routing header`);
      assert.equal(baPkt[40], 50, `${alg}: the routing header names ESP`);

      const r = await unprotectPacket(ha, buPkt, "homeAgent");
      assert.ok(r.ok, `${alg} BU: ${JSON.stringify(r)}`);
      assert.deepEqual(r.value.mh, { type: "bu", ...bu(77) });
      assert.equal(r.value.sequence, 1000);
      assert.equal(r.value.homeAddress, ADDR.homeAddress);
      const r2 = await unprotectPacket(mn, baPkt, "mobileNode");
      assert.ok(r2.ok, `${alg} BA: ${JSON.stringify(r2)}`);
      assert.deepEqual(r2.value.mh, { type: "ba", ...ba(77, 135) });
      assert.equal(r2.value.sequence, 1001);
      // And the replay window saw them.
      assert.equal((await unprotectPacket(ha, buPkt, "homeAgent")).ok, false);
      assert.equal(haIn.counters.replay_duplicate, 1);
    }
  },
});
