import fc from "fast-check";
import assert from "node:assert/strict";
import { IPPROTO } from "../wire/addr.ts";
import { parseMobility } from "../wire/mobility.ts";
import { HA, hex, HOA, toHex } from "../wire/test_util.ts";
import { type EspAlgorithm, type EspSaConfig, hexKey } from "./config.ts";
import {
  aesCbcDecryptBlocks,
  aesCbcEncryptBlocks,
  type Bytes,
  type EspParsed,
  hmacSha256_128,
  protect,
  timingSafeEqual,
  unprotect,
  type Unprotected,
} from "./esp.ts";
import {
  MAX_SEQUENCE,
  SecurityAssociation,
  SecurityAssociationDatabase,
  SequenceExhaustedError,
} from "./sa.ts";

const subtle = crypto.subtle;

/** Bytes of hex text (comments allowed), over a plain ArrayBuffer as WebCrypto wants. */
const bytes = (text: string): Bytes => hex(text).slice();

// ---- the primitives against published vectors -------------------------------------------------

Deno.test("WebCrypto AES-GCM: McGrew & Viega test cases 3 and 4 (GCM spec, 128-bit key)", async () => {
  const key = await subtle.importKey(
    "raw",
    bytes("feffe9928665731c6d6a8f9467308308"),
    "AES-GCM",
    false,
    ["encrypt"],
  );
  const iv = bytes("cafebabefacedbaddecaf888");
  const p = bytes(`d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72
    1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b391aafd255`);
  const c3 = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv }, key, p));
  assert.equal(
    toHex(c3),
    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e" +
      "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985" +
      "4d5c2af327cd64a62cf35abd2ba6fab4",
  );
  const c4 = new Uint8Array(
    await subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: bytes("feedfacedeadbeeffeedfacedeadbeefabaddad2") },
      key,
      p.subarray(0, 60),
    ),
  );
  assert.equal(toHex(c4.subarray(60)), "5bc94fbc3221a5db94fae95ae7121a47");
});

Deno.test("WebCrypto AES-GCM: RFC 4106 ESP vector (draft-mcgrew-gcm-test-01, nonce = salt ‖ IV)", async () => {
  // Key 4c80…a634, salt 2e443b68, SPI 0x00004321, 64-bit sequence 0x8765432100000000 (the AAD
  // is SPI ‖ ESN here), explicit IV 4956ed7e3b244cfe, an IPv4/UDP plaintext.
  const key = await subtle.importKey(
    "raw",
    bytes("4c80cdefbb5d10da906ac73c3613a634"),
    "AES-GCM",
    false,
    ["encrypt"],
  );
  const out = new Uint8Array(
    await subtle.encrypt(
      {
        name: "AES-GCM",
        iv: bytes("2e443b68 4956ed7e3b244cfe"),
        additionalData: bytes("00004321 87654321 00000000"),
      },
      key,
      bytes(`45000048699a000080114db7c0a80102 c0a801010a9bf15638d3010000010000
        00000000045f736970045f7564700373 69700963796265726369747902646b00
        0021000101020201`),
    ),
  );
  assert.equal(
    toHex(out),
    "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34" +
      "cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce" +
      "61bc17d768fd9732459018148f6cbe722fd04796562dfdb4",
  );
});

Deno.test("AES-CBC without PKCS#7: RFC 3602 cases 1 and 2, both directions", async () => {
  const cases = [
    [
      "06a9214036b8a15b512e03d534120006",
      "3dafba429d9eb430b422da802c9fac41",
      toHex(new TextEncoder().encode("Single block msg")),
      "e353779c1079aeb82708942dbe77181a",
    ],
    [
      "c286696d887c9aa0611bbb3e2025a45a",
      "562e17996d093d28ddb3ba695a2e6f58",
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
      "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
    ],
  ];
  for (const [k, iv, p, c] of cases) {
    const key = await subtle.importKey("raw", bytes(k), "AES-CBC", false, ["encrypt", "decrypt"]);
    assert.equal(toHex(await aesCbcEncryptBlocks(key, bytes(iv), bytes(p))), c);
    assert.equal(toHex(await aesCbcDecryptBlocks(key, bytes(iv), bytes(c))), p);
  }
});

Deno.test("HMAC-SHA-256-128: RFC 4868 §2.7.2.1 AUTH256-1 and RFC 4231 case 1", async () => {
  const data = new TextEncoder().encode("Hi There");
  for (
    const [k, want] of [
      ["0b".repeat(32), "198a607eb44bfbc69903a0f1cf2bbdc5"],
      ["0b".repeat(20), "b0344c61d8db38535ca8afceaf0bf12b"],
    ]
  ) {
    const key = await subtle.importKey("raw", bytes(k), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    assert.equal(toHex(await hmacSha256_128(key, data)), want);
  }
  assert.equal(timingSafeEqual(bytes("0102"), bytes("0102")), true);
  assert.equal(timingSafeEqual(bytes("0102"), bytes("0103")), false);
  assert.equal(timingSafeEqual(bytes("0102"), bytes("01")), false);
});

// ---- ESP packets -------------------------------------------------------------------------------

// Built by hand in Python from the RFCs (test/ipsec/gen_esp_golden.py, no Kagemusha code): the
// seed BU (seq 13, HoA -> HA) and BA of src/wire/mobility_test.ts inside ESP.
const GOLDEN: { cfg: EspSaConfig; seq: number; inner: "bu" | "ba"; bytes: Uint8Array }[] = [
  {
    cfg: {
      spi: 0x4b4d0001,
      algorithm: "aes-gcm-128",
      key: "000102030405060708090a0b0c0d0e0fcafebabe",
    },
    seq: 1,
    inner: "bu",
    bytes: bytes(`4b4d0001 00000001  0000000000000001  # SPI, seq, IV = seq
      89061c994b9651f95b1bc112477faa27f3698cf889f74885feb51ff477ed29388585b57b  # 36 encrypted
      e939ef0b0bc263adbf7b91b030d63eaa  # tag`),
  },
  {
    cfg: {
      spi: 0x4b4d0002,
      algorithm: "aes-gcm-256",
      key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fdeadbeef",
    },
    seq: 0x01020304,
    inner: "ba",
    bytes: bytes(`4b4d0002 01020304 0000000001020304
      a6271fa7a2c57168c349ae162f85aed7c1e38c23  69dc42b0d9f1385fc7e3d2b685432e3a`),
  },
  {
    cfg: {
      spi: 0x4b4d0003,
      algorithm: "aes-cbc-hmac-sha256",
      key: "404142434445464748494a4b4c4d4e4f",
      authKey: "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f",
    },
    seq: 2,
    inner: "bu",
    bytes: bytes(`4b4d0003 00000002 707172737475767778797a7b7c7d7e7f  # random IV, here fixed
      9039aa81407c51983eb86277c149bd337070fc18c243a511fb854b7f892eb870
      85a7ae8e2c57d9d3cfdd86f307cda564  2573278f9f6147bd2544d8b9726728f7`),
  },
  {
    cfg: {
      spi: 0x4b4d0004,
      algorithm: "null-hmac-sha256",
      key: "",
      authKey: "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
    },
    seq: 7,
    inner: "ba",
    bytes: bytes(`4b4d0004 00000007 3b01060021c60000000d000f01020000 0102 0287
      dee44ce0de75a8e6885075201c8419bb`),
  },
];

function pair(cfg: EspSaConfig, homeAddress = HOA) {
  const out = new SecurityAssociation(cfg, { direction: "outbound", homeAddress, homeAgent: HA });
  const inb = new SecurityAssociation(cfg, { direction: "inbound", homeAddress, homeAgent: HA });
  const sad = new SecurityAssociationDatabase();
  sad.add(inb);
  return { out, inb, sad };
}

function checkInner(r: EspParsed<Unprotected>, inner: "bu" | "ba"): void {
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.value.nextHeader, IPPROTO.MH);
  // The MH checksum is over the HoA, as without ESP (RFC 6275 §6.1.1).
  const sum = inner === "bu" ? { src: HOA, dst: HA } : { src: HA, dst: HOA };
  const mh = parseMobility(r.value.payload, sum);
  assert.ok(mh.ok, JSON.stringify(mh));
  assert.equal(mh.value.type, inner);
  if (mh.value.type === "bu" || mh.value.type === "ba") assert.equal(mh.value.sequence, 13);
}

Deno.test("unprotect: golden packets of every algorithm (Python-built), then replay", async () => {
  for (const g of GOLDEN) {
    const { inb, sad } = pair(g.cfg);
    const r = await unprotect(sad, g.bytes, { homeAddress: HOA, homeAgent: HA });
    checkInner(r, g.inner);
    if (r.ok) assert.equal(r.value.sequence, g.seq);
    assert.equal(inb.counters.unprotected, 1, g.cfg.algorithm);
    const again = await unprotect(sad, g.bytes);
    assert.equal(again.ok, false);
    if (!again.ok) {
      assert.deepEqual([again.kind, again.field, again.offset], ["replay", "sequence", 4]);
    }
    assert.equal(inb.counters.replay_duplicate, 1);
  }
});

Deno.test("protect: byte-exact golden for AES-GCM (IV = sequence) and NULL", async () => {
  for (const g of GOLDEN) {
    if (g.cfg.algorithm === "aes-cbc-hmac-sha256") continue; // random IV: checked by round trip
    const { out } = pair(g.cfg);
    assert.equal(
      out.importState({ spi: g.cfg.spi, direction: "outbound", sequence: g.seq - 1 }),
      null,
    );
    const payload = g.inner === "bu"
      ? bytes("3b03050001e9000dc000000f0100031020010db8300000000000000000000003")
      : bytes("3b01060021c60000000d000f01020000");
    assert.equal(toHex(await protect(out, IPPROTO.MH, payload)), toHex(g.bytes), g.cfg.algorithm);
    assert.equal(out.counters.protected, 1);
  }
});

const CONFIGS: Record<EspAlgorithm, EspSaConfig> = {
  "aes-gcm-128": { spi: 0x1001, algorithm: "aes-gcm-128", key: "11".repeat(20) },
  "aes-gcm-256": { spi: 0x1002, algorithm: "aes-gcm-256", key: "22".repeat(36) },
  "aes-cbc-hmac-sha256": {
    spi: 0x1003,
    algorithm: "aes-cbc-hmac-sha256",
    key: "33".repeat(32),
    authKey: "44".repeat(32),
  },
  "null-hmac-sha256": {
    spi: 0x1004,
    algorithm: "null-hmac-sha256",
    key: "",
    authKey: "55".repeat(32),
  },
};
const ALGORITHMS = Object.keys(CONFIGS) as EspAlgorithm[];

Deno.test("protect/unprotect round trip: any payload, every algorithm, lengths and IVs", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...ALGORITHMS),
      fc.uint8Array({ maxLength: 600 }),
      fc.integer({ min: 0, max: 255 }),
      async (alg, payload, nh) => {
        const { out, sad } = pair(CONFIGS[alg]);
        const e = await protect(out, nh, payload);
        const { ivLen, icvLen, align } = out.layout;
        assert.equal((e.length - 8 - ivLen - icvLen) % align, 0);
        assert.ok(e.length - 8 - ivLen - icvLen - payload.length - 2 < align, "least padding");
        if (alg !== "null-hmac-sha256" && payload.length >= 16) {
          assert.notEqual(toHex(e).indexOf(toHex(payload)), 8 * 2 + ivLen * 2, "encrypted");
        }
        const r = await unprotect(sad, e);
        assert.ok(r.ok, JSON.stringify(r));
        assert.deepEqual(r.value.payload, payload);
        assert.equal(r.value.nextHeader, nh);
        assert.equal(r.value.sequence, 1);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("protect: sequence numbers 1, 2, 3…; GCM IV is the sequence; CBC IVs differ", async () => {
  const g = pair(CONFIGS["aes-gcm-128"]);
  const c = pair(CONFIGS["aes-cbc-hmac-sha256"]);
  const seen = new Set<string>();
  for (let i = 1; i <= 5; i++) {
    const e = await protect(g.out, 135, new Uint8Array(8));
    assert.equal(toHex(e.subarray(4, 8)), i.toString(16).padStart(8, "0"));
    assert.equal(toHex(e.subarray(8, 16)), i.toString(16).padStart(16, "0"));
    const f = await protect(c.out, 135, new Uint8Array(8));
    seen.add(toHex(f.subarray(8, 24)));
  }
  assert.equal(seen.size, 5);
  // Concurrent calls take distinct numbers before their first await.
  const many = await Promise.all([1, 2, 3, 4].map(() => protect(g.out, 135, new Uint8Array(4))));
  assert.deepEqual(many.map((e) => e[7]).sort(), [6, 7, 8, 9]);
});

Deno.test("protect: refuses once 2^32 - 1 was sent (no ESN, RFC 4303 §3.3.3)", async () => {
  const { out, sad } = pair(CONFIGS["aes-gcm-128"]);
  out.importState({ spi: 0x1001, direction: "outbound", sequence: MAX_SEQUENCE - 1 });
  const last = await protect(out, 135, new Uint8Array(4));
  assert.equal(toHex(last.subarray(4, 8)), "ffffffff");
  await assert.rejects(() => protect(out, 135, new Uint8Array(4)), SequenceExhaustedError);
  assert.equal(out.counters.exhausted, 1);
  assert.equal(out.counters.protected, 1);
  assert.equal((await unprotect(sad, last)).ok, true);
  await assert.rejects(
    () => protect(pair(CONFIGS["aes-gcm-128"]).inb, 135, new Uint8Array(1)),
    TypeError,
  );
});

Deno.test("unprotect: replay window through real packets — reorder, duplicate, too old", async () => {
  const { out, inb, sad } = pair(CONFIGS["aes-gcm-256"]);
  const pkts: Uint8Array[] = [];
  for (let i = 0; i < 70; i++) pkts.push(await protect(out, 135, new Uint8Array([i])));
  const ok = async (i: number) => (await unprotect(sad, pkts[i])).ok;
  assert.equal(await ok(2), true); // seq 3
  assert.equal(await ok(0), true); // seq 1, late: inside the window
  assert.equal(await ok(0), false); // duplicate
  assert.equal(await ok(68), true); // seq 69: window now 6..69
  assert.equal(await ok(1), false); // seq 2: too old
  assert.equal(await ok(4), false); // seq 5: too old (64 behind)
  assert.equal(await ok(5), true); // seq 6: the last slot
  assert.equal(inb.counters.replay_duplicate, 1);
  assert.equal(inb.counters.replay_too_old, 2);
  assert.equal(inb.counters.unprotected, 4);
});

Deno.test("unprotect: replay check comes before integrity, the window moves only after it", async () => {
  const { out, inb, sad } = pair(CONFIGS["aes-cbc-hmac-sha256"]);
  const p1 = await protect(out, 135, new Uint8Array(10));
  const p2 = await protect(out, 135, new Uint8Array(10));
  assert.equal((await unprotect(sad, p1)).ok, true);
  // A forged copy of seq 1: rejected as a replay, before any ICV work.
  const forged1 = p1.slice();
  forged1[forged1.length - 1] ^= 1;
  const r1 = await unprotect(sad, forged1);
  assert.equal(r1.ok ? "ok" : r1.kind, "replay");
  assert.equal(inb.counters.integrity_failures, 0);
  // A forged seq 2: integrity failure, and seq 2 stays acceptable for the genuine packet.
  const forged2 = p2.slice();
  forged2[30] ^= 0x80;
  const r2 = await unprotect(sad, forged2);
  assert.equal(
    r2.ok ? "ok" : `${r2.kind}/${r2.field}/${r2.offset}`,
    `integrity/icv/${p2.length - 16}`,
  );
  assert.equal(inb.replay.top, 1);
  assert.equal((await unprotect(sad, p2)).ok, true);
});

Deno.test("unprotect: every flipped bit is refused and counted (each algorithm)", async () => {
  for (const alg of ALGORITHMS) {
    const { out, inb, sad } = pair(CONFIGS[alg]);
    const mh = bytes("3b03050001e9000dc000000f0100031020010db8300000000000000000000003");
    const pkt = await protect(out, 135, mh);
    let integrity = 0;
    let other = 0;
    for (let bit = 0; bit < pkt.length * 8; bit++) {
      const t = pkt.slice();
      t[bit >> 3] ^= 0x80 >> (bit & 7);
      const r = await unprotect(sad, t);
      assert.equal(r.ok, false, `${alg}: bit ${bit} flipped and accepted`);
      if (r.ok) continue;
      if (bit < 32) {
        assert.equal(r.kind, "unknownSpi", `${alg}: SPI bit ${bit}`);
        other++;
      } else if (bit < 64 && new DataView(t.buffer).getUint32(4) === 0) {
        assert.equal(r.kind, "replay", `${alg}: sequence 1 became 0, never valid`);
      } else {
        assert.equal(r.kind, "integrity", `${alg}: bit ${bit}: ${r.kind}`);
        integrity++;
      }
    }
    assert.equal(inb.counters.integrity_failures, integrity, alg);
    assert.equal(sad.counters.unknown_spi, other, alg);
    assert.equal(inb.replay.top, 0, "nothing forged moved the window");
    assert.equal((await unprotect(sad, pkt)).ok, true, `${alg}: the genuine packet still passes`);
  }
});

Deno.test("unprotect: policy — the SA must be the home address's own (RFC 4877 §4)", async () => {
  const { out, inb, sad } = pair(CONFIGS["aes-gcm-128"]);
  const pkt = await protect(out, 135, new Uint8Array(8));
  const r = await unprotect(sad, pkt, { homeAddress: "2001:db8:2000::99" });
  assert.equal(r.ok ? "ok" : `${r.kind}/${r.field}`, "policy/homeAddress");
  const r2 = await unprotect(sad, pkt, { homeAddress: HOA, homeAgent: "2001:db8:2000::2" });
  assert.equal(r2.ok ? "ok" : `${r2.kind}/${r2.field}`, "policy/homeAgent");
  assert.equal(inb.counters.policy_mismatch, 2);
  assert.equal(inb.replay.top, 0);
  const ok = await unprotect(sad, pkt, { homeAddress: "2001:db8:2000:0::10", homeAgent: HA });
  assert.equal(ok.ok, true);
});

Deno.test("unprotect: bad padding behind a valid ICV is malformed at the padding octet", async () => {
  const cfg = CONFIGS["null-hmac-sha256"];
  const { inb, sad } = pair(cfg);
  const auth = await subtle.importKey(
    "raw",
    hexKey(cfg.authKey!)!,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  // payload aa bb cc dd, padding 01 03 (should be 01 02), pad length 2, next header 135
  const body = bytes("00001004 00000001 aabbccdd 0103 0287");
  const icv = await hmacSha256_128(auth, body);
  const pkt = new Uint8Array([...body, ...icv]);
  const r = await unprotect(sad, pkt);
  assert.equal(r.ok ? "ok" : `${r.kind}/${r.field}/${r.offset}`, "malformed/padding/13");
  assert.equal(inb.counters.malformed, 1);
});

Deno.test("unprotect: unknown SPI, SPI 0, short input are values and counted", async () => {
  const { sad } = pair(CONFIGS["aes-gcm-128"]);
  const kinds = [];
  for (const b of [bytes("000010"), bytes("00000000 00000001"), bytes("00009999 00000001 00")]) {
    const r = await unprotect(sad, b);
    kinds.push(r.ok ? "ok" : `${r.kind}/${r.field}`);
  }
  assert.deepEqual(kinds, ["truncated/spi", "malformed/spi", "unknownSpi/spi"]);
  assert.deepEqual(sad.counters, { unknown_spi: 1, malformed: 2 });
  const short = await unprotect(sad, bytes("00001001 00000001 00"));
  assert.equal(short.ok ? "ok" : `${short.kind}/${short.field}`, "truncated/iv");
});

Deno.test("unprotect: a copy that raced the first through the ICV check is a replay", async () => {
  const { out, inb, sad } = pair(CONFIGS["aes-gcm-128"]);
  const pkt = await protect(out, 135, new Uint8Array(20));
  const rs = await Promise.all([unprotect(sad, pkt), unprotect(sad, pkt), unprotect(sad, pkt)]);
  assert.equal(rs.filter((r) => r.ok).length, 1);
  assert.equal(inb.counters.replay_duplicate, 2);
});

Deno.test("unprotect/protect: the caller's buffer may be reused once the call returned", async () => {
  const { out, sad } = pair(CONFIGS["aes-cbc-hmac-sha256"]);
  const payload = new Uint8Array(40).fill(7);
  const pending = protect(out, 135, payload);
  payload.fill(0);
  const pkt = await pending;
  const rx = new Uint8Array(256);
  rx.set(pkt);
  const p = unprotect(sad, rx.subarray(0, pkt.length));
  rx.fill(0xff); // the receive loop took the next datagram into the same buffer
  const r = await p;
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.value.payload, new Uint8Array(40).fill(7));
});

Deno.test("unprotect: random bytes never throw (random and known SPIs)", async () => {
  const sad = new SecurityAssociationDatabase();
  for (const alg of ALGORITHMS) {
    sad.add(
      new SecurityAssociation(CONFIGS[alg], {
        direction: "inbound",
        homeAddress: HOA,
        homeAgent: HA,
      }),
    );
  }
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.constant(-1), fc.constantFrom(0x1001, 0x1002, 0x1003, 0x1004)),
      fc.uint8Array({ maxLength: 200 }),
      async (spi, body) => {
        let b = body;
        if (spi >= 0) {
          b = new Uint8Array(4 + body.length);
          new DataView(b.buffer).setUint32(0, spi);
          b.set(body, 4);
        }
        const r = await unprotect(sad, b);
        if (r.ok) return; // a forged ICV: practically impossible
        assert.ok(
          ["truncated", "malformed", "unknownSpi", "replay", "integrity"].includes(r.kind),
          r.kind,
        );
        assert.ok(r.offset >= 0 && r.offset <= b.length, `offset ${r.offset}`);
      },
    ),
    { numRuns: 1000 },
  );
});
