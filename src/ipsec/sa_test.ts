import fc from "fast-check";
import assert from "node:assert/strict";
import { EspPairConfig, EspSaConfig } from "./config.ts";
import {
  MAX_SEQUENCE,
  ReplayWindow,
  SecurityAssociation,
  SecurityAssociationDatabase,
  SequenceExhaustedError,
} from "./sa.ts";
import { HA, HOA } from "../wire/test_util.ts";

const GCM_KEY = "000102030405060708090a0b0c0d0e0f" + "cafebabe";
const AUTH = "20".repeat(32);

function sa(
  direction: "inbound" | "outbound",
  spi = 0x1001,
  homeAddress = HOA,
): SecurityAssociation {
  return new SecurityAssociation({ spi, algorithm: "aes-gcm-128", key: GCM_KEY }, {
    direction,
    homeAddress,
    homeAgent: HA,
  });
}

Deno.test("replay window: new, duplicate, too old, slide (RFC 4303 §3.4.3)", () => {
  const w = new ReplayWindow();
  assert.equal(w.check(0), "tooOld", "sequence 0 is never sent without ESN");
  assert.equal(w.accept(1), "ok");
  assert.equal(w.accept(1), "duplicate");
  assert.equal(w.accept(5), "ok");
  assert.equal(w.accept(3), "ok", "late but inside the window");
  assert.equal(w.accept(3), "duplicate");
  assert.equal(w.check(2), "ok");
  assert.equal(w.top, 5);
  assert.equal(w.bitmap, 0b10101n);
  assert.equal(w.accept(68), "ok"); // slides: 5 is now 63 behind, 4 is 64 behind
  assert.equal(w.check(5), "duplicate");
  assert.equal(w.check(4), "tooOld");
  assert.equal(w.check(2), "tooOld");
  assert.equal(w.accept(1000), "ok"); // jump past the whole window
  assert.equal(w.bitmap, 1n);
  assert.equal(w.check(936), "tooOld", "64 behind the top: outside a window of 64");
  assert.equal(w.check(937), "ok", "63 behind: the window's last slot");
  assert.equal(w.check(999), "ok");
  assert.equal(w.check(MAX_SEQUENCE), "ok");
  assert.deepEqual(w.toJSON(), { top: 1000, bitmap: "0000000000000001" });
});

Deno.test("replay window agrees with a set-based model of RFC 4303 §3.4.3", () => {
  fc.assert(fc.property(
    fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 200 }),
    (seqs) => {
      const w = new ReplayWindow();
      const seen = new Set<number>();
      let top = 0;
      for (const s of seqs) {
        const want = s === 0 || (s <= top && top - s >= 64)
          ? "tooOld"
          : seen.has(s)
          ? "duplicate"
          : "ok";
        assert.equal(w.accept(s), want, `seq ${s} after top ${top}`);
        if (want === "ok") {
          seen.add(s);
          top = Math.max(top, s);
        }
      }
      assert.equal(w.top, top);
    },
  ));
});

Deno.test("replay window: merge is the union, JSON round trip", () => {
  const a = new ReplayWindow();
  const b = new ReplayWindow();
  for (const s of [1, 2, 10]) a.accept(s);
  for (const s of [3, 70, 72]) b.accept(s);
  const c = new ReplayWindow();
  c.merge(a.toJSON());
  c.merge(b.toJSON());
  assert.equal(c.top, 72);
  for (const s of [10, 70, 72]) assert.equal(c.check(s), "duplicate", `${s}`);
  for (const s of [9, 11, 71]) assert.equal(c.check(s), "ok", `${s}`);
  for (const s of [1, 2, 3, 8]) assert.equal(c.check(s), "tooOld", `${s}`);
  const d = new ReplayWindow();
  d.merge(JSON.parse(JSON.stringify(c)));
  assert.deepEqual(d.toJSON(), c.toJSON());
});

Deno.test("SA: sequence starts at 1, never repeats, refuses after 2^32 - 1", () => {
  const out = sa("outbound");
  assert.equal(out.nextSequence(), 1);
  assert.equal(out.nextSequence(), 2);
  assert.equal(out.lastSequence, 2);
  assert.equal(
    out.importState({ spi: 0x1001, direction: "outbound", sequence: MAX_SEQUENCE - 1 }),
    null,
  );
  assert.equal(out.remaining, 1);
  assert.equal(out.nextSequence(), MAX_SEQUENCE);
  assert.throws(() => out.nextSequence(), SequenceExhaustedError);
  assert.throws(() => out.nextSequence(), /exhausted.*new SA/);
  assert.equal(out.counters.exhausted, 2);
  assert.equal(out.lastSequence, MAX_SEQUENCE);
  assert.throws(() => sa("inbound").nextSequence(), TypeError);
});

Deno.test("SA: state export/import moves with the VM and never goes backwards", () => {
  const a = sa("outbound");
  for (let i = 0; i < 5; i++) a.nextSequence();
  const moved = JSON.parse(JSON.stringify(a.exportState()));
  assert.deepEqual(moved, { spi: 0x1001, direction: "outbound", sequence: 5 });
  const b = sa("outbound");
  assert.equal(b.importState(moved), null);
  assert.equal(b.nextSequence(), 6);
  assert.equal(b.importState({ ...moved, sequence: 2 }), null, "older state");
  assert.equal(b.nextSequence(), 7, "an older export does not move the counter back");
  assert.equal(b.importState(moved, { skip: 100 }), null);
  assert.equal(b.nextSequence(), 108, "max(7, 5) + 100, then + 1");
  assert.match(b.importState({ ...moved, spi: 9 })!, /SPI 9/);
  assert.match(b.importState({ ...moved, direction: "inbound" })!, /inbound/);
  assert.match(b.importState({ spi: 0x1001, direction: "outbound" })!, /without sequence/);
  assert.match(b.importState({ ...moved, sequence: -1 })!, /bad state/);
  assert.match(b.importState("nonsense")!, /bad state/);
  assert.match(b.importState({ ...moved, extra: 1 })!, /bad state/);

  const r1 = sa("inbound");
  for (const s of [1, 2, 3, 9]) r1.replay.accept(s);
  const r2 = sa("inbound");
  r2.replay.accept(10);
  assert.equal(r2.importState(JSON.parse(JSON.stringify(r1.exportState()))), null);
  assert.equal(r2.replay.top, 10);
  for (const s of [3, 9, 10]) assert.equal(r2.replay.check(s), "duplicate");
  assert.equal(r2.replay.check(4), "ok");
});

Deno.test("SA: keys never appear in JSON", () => {
  const s = new SecurityAssociation(
    { spi: 300, algorithm: "null-hmac-sha256", key: "", authKey: AUTH },
    { direction: "outbound", homeAddress: "2001:DB8:2000:0::10", homeAgent: HA },
  );
  const text = JSON.stringify(s);
  assert.equal(text.includes("2020202020"), false);
  assert.equal(s.homeAddress, HOA, "addresses canonical");
  assert.match(text, /"algorithm":"null-hmac-sha256"/);
});

Deno.test("SAD: inbound by SPI, outbound by (HoA, HA), per-home export/import", () => {
  const sad = new SecurityAssociationDatabase();
  const bu = sa("outbound", 0x1001);
  const ba = sa("inbound", 0x1002);
  const other = sa("inbound", 0x2002, "2001:db8:2000::20");
  sad.add(bu);
  sad.add(ba);
  sad.add(other);
  assert.equal(sad.inbound(0x1002), ba);
  assert.equal(sad.inbound(0x1001), undefined, "outbound SPIs are not looked up inbound");
  assert.equal(sad.outbound("2001:db8:2000:0:0::10", "2001:db8:2000::1"), bu);
  assert.equal(sad.outbound(HOA, "2001:db8:2000::2"), undefined);
  assert.throws(() => sad.add(sa("inbound", 0x1002, "2001:db8:2000::30")), /SPI 4098/);
  assert.throws(() => sad.add(sa("outbound", 0x3001)), /exists/);
  assert.deepEqual(sad.forHome(HOA), [ba, bu]);
  assert.equal([...sad].length, 3);

  bu.nextSequence();
  ba.replay.accept(4);
  const state = JSON.parse(JSON.stringify(sad.exportState(HOA)));
  assert.deepEqual(state, [
    { spi: 0x1002, direction: "inbound", replay: { top: 4, bitmap: "0000000000000001" } },
    { spi: 0x1001, direction: "outbound", sequence: 1 },
  ]);
  const next = new SecurityAssociationDatabase();
  const bu2 = sa("outbound", 0x1001);
  const ba2 = sa("inbound", 0x1002);
  next.add(bu2);
  next.add(ba2);
  assert.deepEqual(next.importState(HOA, state), []);
  assert.equal(bu2.nextSequence(), 2);
  assert.equal(ba2.replay.check(4), "duplicate");
  assert.deepEqual(
    next.importState(HOA, [{ spi: 7, direction: "inbound", replay: state[0].replay }]),
    [
      `ESP state: no inbound SA 7 for ${HOA}`,
    ],
  );
  assert.equal(next.importState(HOA, {}).length, 1);

  sad.remove(ba);
  assert.equal(sad.inbound(0x1002), undefined);
  sad.remove(bu);
  assert.equal(sad.outbound(HOA, HA), undefined);
});

Deno.test("config: EspSaConfig accepts each algorithm with the right keys", () => {
  const good = [
    { spi: 256, algorithm: "aes-gcm-128", key: GCM_KEY },
    { spi: 0xffffffff, algorithm: "aes-gcm-256", key: "ab".repeat(36) },
    { spi: 1000, algorithm: "aes-cbc-hmac-sha256", key: "01".repeat(16), authKey: AUTH },
    { spi: 1000, algorithm: "aes-cbc-hmac-sha256", key: "01".repeat(32), authKey: AUTH },
    { spi: 1000, algorithm: "null-hmac-sha256", key: "", authKey: AUTH.toUpperCase() },
    { spi: 1000, algorithm: "aes-gcm-128", key: "00:01:02:03 04050607 08090a0b 0c0d0e0f cafebabe" },
  ];
  for (const c of good) assert.ok(EspSaConfig.safeParse(c).success, JSON.stringify(c));
});

Deno.test("config: EspSaConfig errors name the field and the rule", () => {
  const bad: [unknown, string, RegExp][] = [
    [{ spi: 255, algorithm: "aes-gcm-128", key: GCM_KEY }, "spi", /reserved/],
    [{ spi: 2 ** 32, algorithm: "aes-gcm-128", key: GCM_KEY }, "spi", /./],
    [{ spi: 300, algorithm: "aes-gcm-128", key: "00".repeat(16) }, "key", /salt/],
    [{ spi: 300, algorithm: "aes-gcm-128", key: GCM_KEY, authKey: AUTH }, "authKey", /AEAD/],
    [{ spi: 300, algorithm: "aes-cbc-hmac-sha256", key: "00".repeat(16) }, "authKey", /needs/],
    [
      { spi: 300, algorithm: "aes-cbc-hmac-sha256", key: "00".repeat(24), authKey: AUTH },
      "key",
      /16 or 32/,
    ],
    [
      {
        spi: 300,
        algorithm: "aes-cbc-hmac-sha256",
        key: "00".repeat(16),
        authKey: "00".repeat(20),
      },
      "authKey",
      /must be 32/,
    ],
    [{ spi: 300, algorithm: "null-hmac-sha256", key: AUTH, authKey: AUTH }, "key", /empty/],
    [{ spi: 300, algorithm: "aes-gcm-128", key: "xyz" }, "key", /hex/],
    [{ spi: 300, algorithm: "des", key: "" }, "algorithm", /./],
    [{ spi: 300, algorithm: "aes-gcm-128", key: GCM_KEY, salt: "00" }, "", /salt/],
  ];
  for (const [c, path, msg] of bad) {
    const r = EspSaConfig.safeParse(c);
    assert.equal(r.success, false, JSON.stringify(c));
    if (r.success) continue;
    const issue = r.error.issues[0];
    assert.equal(issue.path.join("."), path, JSON.stringify(r.error.issues));
    assert.match(issue.message + JSON.stringify(issue), msg);
  }
  const pair = EspPairConfig.safeParse({
    bu: { spi: 300, algorithm: "aes-gcm-128", key: GCM_KEY },
    ba: { spi: 300, algorithm: "aes-gcm-128", key: GCM_KEY },
  });
  assert.equal(pair.success, false);
});
