import assert from "node:assert/strict";
import fc from "fast-check";
import type { MobilityRepr } from "../wire/mobility.ts";
import { type HaAction, type HaCoreConfig, type HaEvent, HomeAgentCore } from "./core.ts";
import { HEAP_SLACK, parsePersistedCache, seqGreater } from "./binding_cache.ts";
import { COA, HA, HOA } from "../wire/test_util.ts";

const COA2 = "2001:db8:4000::3";
const T0 = 1_700_000_000_000;

function cfg(over: Partial<HaCoreConfig> = {}): HaCoreConfig {
  return {
    haAddress: HA,
    homePrefix: { prefix: "2001:db8:2000::", length: 64 },
    allow: [],
    maxLifetime: 60,
    dad: "strict",
    ...over,
  };
}

type Bu = Extract<MobilityRepr, { type: "bu" }>;

interface BuOpts {
  lifetime?: number;
  ack?: boolean;
  home?: boolean;
  altCoa?: string;
  linkLocal?: boolean;
  mobileRouter?: boolean;
  proxy?: boolean;
}

function buMsg(sequence: number, o: BuOpts = {}): Bu {
  return {
    type: "bu",
    sequence,
    flags: {
      ack: o.ack ?? true,
      home: o.home ?? true,
      linkLocal: o.linkLocal ?? false,
      key: false,
      mapReg: false,
      mobileRouter: o.mobileRouter ?? false,
      proxy: o.proxy ?? false,
      forceUdp: false,
    },
    lifetime: o.lifetime ?? 10,
    options: o.altCoa === undefined ? [] : [{ type: "altCoa", address: o.altCoa }],
  };
}

function buEv(
  sequence: number,
  o: BuOpts & { src?: string; hoa?: string; dst?: string; spi?: number } = {},
): HaEvent {
  const src = o.src ?? COA;
  return {
    type: "mh",
    src,
    dst: o.dst ?? HA,
    homeAddress: o.hoa ?? HOA,
    hao: true,
    message: buMsg(sequence, { altCoa: src, ...o }),
    protected: o.spi === undefined ? false : { spi: o.spi },
  };
}

function bas(actions: HaAction[]) {
  return actions.filter((a) => a.type === "sendBa") as Extract<HaAction, { type: "sendBa" }>[];
}

function kinds(actions: HaAction[]): string[] {
  return actions.filter((a) => a.type !== "log").map((a) => a.type);
}

/**
 * Registers HOA via COA in optimistic mode (BA at once) and lets the DAD window and the repeats
 * of the unsolicited NA pass.
 */
function registered(over: Partial<HaCoreConfig> = {}, seq = 100): HomeAgentCore {
  const core = new HomeAgentCore(cfg({ dad: "optimistic", ...over }));
  const a = core.handle(buEv(seq), T0);
  assert.equal(bas(a)[0].status, 0);
  core.handle({ type: "timer" }, T0 + 1000);
  core.handle({ type: "timer" }, T0 + 2000);
  return core;
}

Deno.test("seqGreater: modulo 2^16 per RFC 6275 §9.5.1", () => {
  assert.equal(seqGreater(1, 0), true);
  assert.equal(seqGreater(0, 0), false);
  assert.equal(seqGreater(0, 1), false);
  assert.equal(seqGreater(0, 65535), true); // wrap
  assert.equal(seqGreater(32767, 0), true);
  assert.equal(seqGreater(32768, 0), false); // last + 32768 is "less or equal"
  assert.equal(seqGreater(65535, 0), false);
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffff }),
      (a, b) => {
        // exactly one of: equal, a > b, b > a — except the antipode, where neither is greater
        const d = (a - b) & 0xffff;
        if (d === 0 || d === 0x8000) return !seqGreater(a, b) && !seqGreater(b, a);
        return seqGreater(a, b) !== seqGreater(b, a);
      },
    ),
  );
});

Deno.test("strict DAD: BA 0 only after the DAD wait, then install + unsolicited NA", () => {
  const core = new HomeAgentCore(cfg());
  const a1 = core.handle(buEv(7, { lifetime: 10 }), T0);
  assert.deepEqual(kinds(a1), ["startDad"]);
  assert.equal(core.nextDeadline(), T0 + 1000);
  assert.equal(core.status(T0)[0].state, "dad");
  assert.deepEqual(kinds(core.handle({ type: "timer" }, T0 + 999)), []);
  const a2 = core.handle({ type: "timer" }, T0 + 1000);
  assert.deepEqual(kinds(a2), ["stopDad", "install", "unsolicitedNa", "sendBa", "persist"]);
  assert.deepEqual(bas(a2)[0], {
    type: "sendBa",
    from: HA,
    to: COA,
    homeAddress: HOA,
    status: 0,
    sequence: 7,
    lifetime: 10,
    protect: false,
  });
  assert.deepEqual(a2.find((a) => a.type === "install"), {
    type: "install",
    homeAddress: HOA,
    careOf: COA,
  });
  // the unsolicited NA is repeated twice, a second apart; lifetime counts from the BA
  assert.equal(core.nextDeadline(), T0 + 2000);
  assert.deepEqual(kinds(core.handle({ type: "timer" }, T0 + 2000)), ["unsolicitedNa"]);
  assert.deepEqual(kinds(core.handle({ type: "timer" }, T0 + 3000)), ["unsolicitedNa"]);
  assert.equal(core.nextDeadline(), T0 + 1000 + 40_000);
  assert.equal(core.status(T0 + 1000)[0].lifetimeRemaining, 40);
  assert.equal(core.counters().ba_status_0, 1);
});

Deno.test("strict DAD: a duplicate gives BA 134 and no binding", () => {
  const core = new HomeAgentCore(cfg());
  core.handle(buEv(7), T0);
  const a = core.handle(
    { type: "dadDuplicate", homeAddress: HOA, evidence: "NA from x" },
    T0 + 500,
  );
  assert.deepEqual(kinds(a), ["stopDad", "sendBa"]);
  assert.equal(bas(a)[0].status, 134);
  assert.equal(bas(a)[0].sequence, 7);
  assert.equal(bas(a)[0].lifetime, 0);
  assert.equal(core.cache.size, 0);
  assert.deepEqual(kinds(core.handle({ type: "timer" }, T0 + 2000)), []);
  // the MN may try again: a fresh first registration
  assert.deepEqual(kinds(core.handle(buEv(8), T0 + 3000)), ["startDad"]);
});

Deno.test("strict DAD: a newer BU during the wait is the one the BA answers", () => {
  const core = new HomeAgentCore(cfg());
  core.handle(buEv(7), T0);
  assert.deepEqual(kinds(core.handle(buEv(8, { src: COA2 }), T0 + 600)), []);
  const stale = core.handle(buEv(8), T0 + 700);
  assert.equal(bas(stale)[0].status, 135);
  assert.equal(bas(stale)[0].sequence, 8);
  const a = core.handle({ type: "timer" }, T0 + 1000);
  assert.equal(bas(a)[0].sequence, 8);
  assert.equal(bas(a)[0].to, COA2);
  assert.equal(core.status(T0 + 1000)[0].careOfAddress, COA2);
});

Deno.test("optimistic DAD: BA at once, DAD in parallel", () => {
  const core = new HomeAgentCore(cfg({ dad: "optimistic" }));
  const a = core.handle(buEv(1), T0);
  assert.deepEqual(kinds(a), ["startDad", "install", "unsolicitedNa", "persist", "sendBa"]);
  assert.equal(bas(a)[0].status, 0);
  assert.equal(core.nextDeadline(), T0 + 1000);
  assert.deepEqual(kinds(core.handle({ type: "timer" }, T0 + 1000)), ["stopDad", "unsolicitedNa"]);
  assert.deepEqual(kinds(core.handle({ type: "timer" }, T0 + 2000)), ["unsolicitedNa"]);
  assert.equal(core.nextDeadline(), T0 + 40_000);
  // evidence after the window is ignored
  const late = core.handle({ type: "dadDuplicate", homeAddress: HOA, evidence: "x" }, T0 + 1500);
  assert.deepEqual(kinds(late), []);
  assert.equal(core.cache.size, 1);
});

Deno.test("optimistic DAD: a duplicate is logged as an error and the binding dropped", () => {
  const core = new HomeAgentCore(cfg({ dad: "optimistic" }));
  core.handle(buEv(1), T0);
  const a = core.handle({ type: "dadDuplicate", homeAddress: HOA, evidence: "NA" }, T0 + 300);
  assert.deepEqual(kinds(a), ["stopDad", "remove", "persist"]);
  const log = a.find((x) => x.type === "log");
  assert.equal(log?.type === "log" && log.level, "error");
  assert.equal(bas(a).length, 0);
  assert.equal(core.cache.size, 0);
  assert.equal(core.counters().dad_duplicates, 1);
});

Deno.test("lifetime is clamped to maxLifetime in 4 s units", () => {
  const core = new HomeAgentCore(cfg({ dad: "optimistic", maxLifetime: 60 }));
  assert.equal(bas(core.handle(buEv(1, { lifetime: 1000 }), T0))[0].lifetime, 15);
  assert.equal(bas(core.handle(buEv(2, { lifetime: 5 }), T0))[0].lifetime, 5);
  assert.equal(new HomeAgentCore(cfg({ maxLifetime: 10 })).maxLifetimeUnits, 2);
  assert.equal(new HomeAgentCore(cfg({ maxLifetime: 1 })).maxLifetimeUnits, 1);
  assert.equal(new HomeAgentCore(cfg({ maxLifetime: 1e9 })).maxLifetimeUnits, 0xffff);
});

Deno.test("re-registration skips DAD; a new CoA re-installs with previousCareOf", () => {
  const core = registered();
  const same = core.handle(buEv(101), T0 + 5000);
  assert.deepEqual(kinds(same), ["persist", "sendBa"]);
  assert.equal(core.nextDeadline(), T0 + 5000 + 40_000);
  const moved = core.handle(buEv(102, { src: COA2 }), T0 + 6000);
  assert.deepEqual(kinds(moved), ["install", "persist", "sendBa"]);
  assert.deepEqual(moved[0], {
    type: "install",
    homeAddress: HOA,
    careOf: COA2,
    previousCareOf: COA,
  });
  assert.equal(bas(moved)[0].to, COA2);
  assert.equal(core.counters().dad_started, 1);
});

Deno.test("135: stale sequence numbers get the last accepted one back", () => {
  const core = registered({}, 100);
  for (const stale of [100, 99, 0, 100 + 32768, 65535]) {
    const a = core.handle(buEv(stale), T0 + 2000);
    assert.equal(bas(a).length, 1, `seq ${stale}`);
    assert.equal(bas(a)[0].status, 135, `seq ${stale}`);
    assert.equal(bas(a)[0].sequence, 100, `seq ${stale}`);
    assert.equal(bas(a)[0].lifetime, 0);
  }
  // binding untouched by the rejects
  assert.equal(core.status(T0 + 2000)[0].sequence, 100);
  assert.equal(bas(core.handle(buEv(101 + 32766), T0 + 2000))[0].status, 0);
  assert.equal(core.counters().ba_status_135, 5);
});

Deno.test("135 wraps around 2^16", () => {
  const core = registered({}, 65535);
  const a = core.handle(buEv(0), T0 + 2000);
  assert.equal(bas(a)[0].status, 0);
  assert.equal(bas(a)[0].sequence, 0);
  assert.equal(bas(core.handle(buEv(65535), T0 + 2000))[0].status, 135);
});

Deno.test("133: deregistration without a binding (lifetime 0, or CoA == HoA)", () => {
  const core = new HomeAgentCore(cfg());
  const a = core.handle(buEv(5, { lifetime: 0 }), T0);
  assert.deepEqual(kinds(a), ["sendBa"]);
  assert.equal(bas(a)[0].status, 133);
  assert.equal(bas(a)[0].sequence, 5);
  const home: HaEvent = {
    type: "mh",
    src: HOA,
    dst: HA,
    homeAddress: HOA,
    hao: false,
    message: buMsg(6, { lifetime: 10 }),
  };
  const b = core.handle(home, T0);
  assert.equal(bas(b)[0].status, 133);
  assert.equal(bas(b)[0].to, HOA);
});

Deno.test("deregistration removes the binding and answers 0 with lifetime 0", () => {
  const core = registered();
  const a = core.handle(buEv(101, { lifetime: 0 }), T0 + 3000);
  assert.deepEqual(kinds(a), ["remove", "persist", "sendBa"]);
  assert.equal(a[0].type === "remove" && a[0].reason, "deregistered");
  assert.deepEqual(bas(a)[0], {
    type: "sendBa",
    from: HA,
    to: COA,
    homeAddress: HOA,
    status: 0,
    sequence: 101,
    lifetime: 0,
    protect: false,
  });
  assert.equal(core.cache.size, 0);
  assert.equal(core.nextDeadline(), undefined);
});

Deno.test("deregistration from home: Alt-CoA == HoA, BA straight to the HoA", () => {
  const core = registered();
  const a = core.handle({
    type: "mh",
    src: HOA,
    dst: HA,
    homeAddress: HOA,
    hao: false,
    message: buMsg(101, { altCoa: HOA, lifetime: 10 }),
  }, T0 + 3000);
  assert.deepEqual(kinds(a), ["remove", "persist", "sendBa"]);
  assert.equal(bas(a)[0].to, HOA);
  assert.equal(bas(a)[0].status, 0);
});

Deno.test("deregistration during strict DAD cancels it without install", () => {
  const core = new HomeAgentCore(cfg());
  core.handle(buEv(1), T0);
  const a = core.handle(buEv(2, { lifetime: 0 }), T0 + 200);
  assert.deepEqual(kinds(a), ["stopDad", "sendBa"]);
  assert.equal(bas(a)[0].status, 0);
  assert.deepEqual(kinds(core.handle({ type: "timer" }, T0 + 1000)), []);
});

Deno.test("132: home address outside the home prefix", () => {
  const core = new HomeAgentCore(cfg());
  const a = core.handle(buEv(1, { hoa: "2001:db8:2001::10" }), T0);
  assert.equal(bas(a)[0].status, 132);
  assert.equal(bas(a)[0].homeAddress, "2001:db8:2001::10");
  assert.equal(core.cache.size, 0);
});

Deno.test("129: allow list and reserved addresses", () => {
  const core = new HomeAgentCore(cfg({ allow: ["2001:db8:2000::20"] }));
  assert.equal(bas(core.handle(buEv(1), T0))[0].status, 129);
  assert.deepEqual(kinds(core.handle(buEv(1, { hoa: "2001:db8:2000::20" }), T0)), ["startDad"]);
  const open = new HomeAgentCore(cfg());
  assert.equal(bas(open.handle(buEv(1, { hoa: HA }), T0))[0].status, 129);
  assert.deepEqual(kinds(open.handle(buEv(1), T0)), ["startDad"]);
});

Deno.test("H bit clear: 139 with a home registration, else dropped (no return routability)", () => {
  const core = registered();
  const a = core.handle(buEv(101, { home: false }), T0 + 2000);
  assert.equal(bas(a)[0].status, 139);
  assert.equal(core.status(T0 + 2000)[0].sequence, 100);
  // RFC 6275 §9.5.1: a correspondent registration without valid Binding Authorization Data is
  // silently discarded; this home agent runs no return routability, so none is valid
  const fresh = new HomeAgentCore(cfg());
  assert.deepEqual(kinds(fresh.handle(buEv(1, { home: false }), T0)), []);
  assert.equal(fresh.cache.size, 0);
  assert.equal(fresh.counters().bu_correspondent_discarded, 1);
});

Deno.test("128: A bit clear in a home registration", () => {
  const core = new HomeAgentCore(cfg());
  const a = core.handle(buEv(1, { ack: false }), T0);
  assert.equal(bas(a)[0].status, 128);
  assert.equal(core.cache.size, 0);
});

Deno.test("a non-unicast home address is discarded silently", () => {
  const core = new HomeAgentCore(cfg());
  assert.deepEqual(kinds(core.handle(buEv(1, { hoa: "ff02::1" }), T0)), []);
  assert.deepEqual(kinds(core.handle(buEv(1, { hoa: "::ffff:192.0.2.1" }), T0)), []);
  assert.equal(core.counters().bu_discarded, 2);
});

Deno.test("Alt-CoA gives the care-of address, the BA goes to the packet source", () => {
  const core = new HomeAgentCore(cfg({ dad: "optimistic" }));
  const a = core.handle({
    type: "mh",
    src: COA,
    dst: HA,
    homeAddress: HOA,
    hao: true,
    message: buMsg(1, { altCoa: COA2 }),
  }, T0);
  assert.equal(bas(a)[0].to, COA);
  assert.equal(a.find((x) => x.type === "install")?.type === "install" && COA2, COA2);
  assert.equal(core.status(T0)[0].careOfAddress, COA2);
});

Deno.test("unknown MH type gets a Binding Error status 2", () => {
  const core = new HomeAgentCore(cfg());
  const a = core.handle({
    type: "mh",
    src: COA,
    dst: HA,
    homeAddress: HOA,
    hao: true,
    message: { type: "unknown", mhType: 42, data: new Uint8Array(4) },
  }, T0);
  assert.deepEqual(a.filter((x) => x.type !== "log"), [
    { type: "sendBe", from: HA, to: COA, homeAddress: HOA, status: 2 },
  ]);
  const b = core.handle({
    type: "mh",
    src: COA2,
    dst: HA,
    homeAddress: COA,
    hao: false,
    message: { type: "unknown", mhType: 200, data: new Uint8Array(0) },
  }, T0 + 1000);
  assert.equal(b[0].type === "sendBe" && b[0].homeAddress, "::");
  // known-but-unserved types are ignored, not answered
  const c = core.handle({
    type: "mh",
    src: COA,
    dst: HA,
    homeAddress: HOA,
    hao: true,
    message: { type: "brr", options: [] },
  }, T0);
  assert.deepEqual(kinds(c), []);
});

Deno.test("expiry removes the binding; a refresh pushes it back", () => {
  const core = registered(); // granted 10 units = 40 s at T0
  assert.deepEqual(kinds(core.handle({ type: "timer" }, T0 + 39_999)), []);
  core.handle(buEv(101), T0 + 30_000); // expires at T0 + 70 s now
  assert.deepEqual(kinds(core.handle({ type: "timer" }, T0 + 40_000)), []);
  const a = core.handle({ type: "timer" }, T0 + 70_000);
  assert.deepEqual(kinds(a), ["remove", "persist"]);
  assert.equal(a[0].type === "remove" && a[0].reason, "expired");
  assert.equal(core.cache.size, 0);
  assert.equal(core.counters().bindings_expired, 1);
  // a BU after expiry is a first registration again (any sequence accepted)
  assert.deepEqual(kinds(core.handle(buEv(3), T0 + 71_000)), [
    "startDad",
    "install",
    "unsolicitedNa",
    "persist",
    "sendBa",
  ]);
});

Deno.test("restore: live bindings re-installed with their sequence, stale ones dropped", () => {
  const old = registered({}, 500);
  old.handle(buEv(9, { hoa: "2001:db8:2000::11" }), T0 + 100);
  const doc = JSON.parse(JSON.stringify(old.cache.toPersisted()));
  const parsed = parsePersistedCache(doc);
  assert.deepEqual(parsed.rejected, []);
  assert.equal(parsed.bindings.length, 2);

  const core = new HomeAgentCore(cfg({ dad: "optimistic" }));
  // HOA expires at T0 + 40 s, ::11 at T0 + 40.1 s: restart in between
  const a = core.handle({ type: "restore", bindings: parsed.bindings }, T0 + 40_050);
  assert.deepEqual(kinds(a), ["install", "unsolicitedNa", "persist"]);
  assert.deepEqual(a.find((x) => x.type === "install"), {
    type: "install",
    homeAddress: "2001:db8:2000::11",
    careOf: COA,
  });
  assert.equal(core.status(T0 + 40_050)[0].lifetimeRemaining, 0);
  const early = new HomeAgentCore(cfg({ dad: "optimistic" }));
  const b = early.handle({ type: "restore", bindings: parsed.bindings }, T0 + 20_000);
  assert.deepEqual(kinds(b), ["install", "unsolicitedNa", "install", "unsolicitedNa"]);
  assert.equal(early.status(T0 + 20_000)[0].lifetimeRemaining, 20);
  // the unsolicited NA goes three times for restored bindings too
  assert.deepEqual(kinds(early.handle({ type: "timer" }, T0 + 21_000)), [
    "unsolicitedNa",
    "unsolicitedNa",
  ]);
  // restored sequence is enforced, refresh skips DAD
  const c = early.handle(buEv(500), T0 + 20_060);
  assert.equal(bas(c)[0].status, 135);
  assert.equal(bas(c)[0].sequence, 500);
  assert.deepEqual(kinds(early.handle(buEv(501), T0 + 20_070)), ["persist", "sendBa"]);
  assert.equal(kinds(early.handle({ type: "timer" }, T0 + 22_000)).length, 2);
  // and the restored bindings expire on their original schedule
  assert.deepEqual(kinds(early.handle({ type: "timer" }, T0 + 40_100)), ["remove", "persist"]);
  // restoring twice is refused
  assert.deepEqual(kinds(early.handle({ type: "restore", bindings: parsed.bindings }, T0)), []);
});

Deno.test("restore drops bindings the new configuration no longer allows", () => {
  const old = registered();
  const core = new HomeAgentCore(cfg({ allow: ["2001:db8:2000::99"] }));
  const a = core.handle({ type: "restore", bindings: old.cache.toPersisted().bindings }, T0 + 10);
  assert.deepEqual(kinds(a), ["persist"]);
  assert.equal(core.cache.size, 0);
});

Deno.test("persisted cache parsing names the bad field and keeps good records", () => {
  const good = registered().cache.toPersisted().bindings[0];
  const r = parsePersistedCache({
    version: 1,
    bindings: [good, { ...good, careOf: "nope" }, { ...good, sequence: 70000 }, 5],
  });
  assert.equal(r.bindings.length, 1);
  assert.deepEqual(r.rejected, [
    "bindings[1].careOf: invalid",
    "bindings[2].sequence: invalid",
    "bindings[3].homeAddress: invalid",
  ]);
  assert.deepEqual(parsePersistedCache(undefined), { bindings: [], rejected: [], esp: [] });
  assert.equal(parsePersistedCache({ version: 2 }).rejected.length, 1);
});

Deno.test("strict entries in DAD are not persisted", () => {
  const core = new HomeAgentCore(cfg());
  core.handle(buEv(1), T0);
  assert.deepEqual(core.cache.toPersisted().bindings, []);
  core.handle({ type: "timer" }, T0 + 1000);
  assert.equal(core.cache.toPersisted().bindings.length, 1);
});

Deno.test("every state change has a log line with a reason", () => {
  const core = new HomeAgentCore(cfg({ dad: "optimistic" }));
  const all = [
    ...core.handle(buEv(1), T0),
    ...core.handle(buEv(2, { src: COA2 }), T0 + 10),
    ...core.handle(buEv(3, { lifetime: 0 }), T0 + 20),
  ];
  const logs = all.filter((a) => a.type === "log").map((a) => a.type === "log" ? a.message : "");
  assert.match(logs[0], /registered/);
  assert.match(logs[1], /moved/);
  assert.match(logs[2], /deregistered/);
  // binding changes carry their summary kind (the wiring may fold them at high rates); a
  // plain refresh is routine: debug, no summary kind
  const changes = all.filter((a) => a.type === "log" && a.summary !== undefined);
  assert.deepEqual(changes.map((a) => a.type === "log" && a.summary), [
    "registered",
    "moved",
    "deregistered",
  ]);
  const again = registered();
  const refresh = again.handle(buEv(101), T0 + 5).filter((a) => a.type === "log");
  assert.deepEqual(refresh.map((a) => a.type === "log" && [a.level, a.summary]), [[
    "debug",
    undefined,
  ]]);
  assert.equal(again.counters().bindings_refreshed, 1);
});

Deno.test("persistedJson is toPersisted as compact JSON, one binding per line", () => {
  const core = new HomeAgentCore(cfg({ dad: "optimistic" }));
  assert.deepEqual(JSON.parse(core.cache.persistedJson()), { version: 1, bindings: [] });
  for (let i = 0; i < 40; i++) { // more than one 4 KiB buffer's worth
    core.handle(buEv(10 + i, { hoa: `2001:db8:2000::${(0x20 + i).toString(16)}` }), T0 + i);
  }
  core.handle(buEv(11, { hoa: "2001:db8:2000::21", src: COA2 }), T0 + 99); // a move
  const text = core.cache.persistedJson();
  assert.deepEqual(JSON.parse(text), core.cache.toPersisted());
  assert.equal(text.split("\n").length, 40 + 3);
  assert.ok(text.length > 8192);
  // any integer up to 2^53 comes out as JSON.stringify would write it
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.maxSafeNat(), fc.maxSafeNat(), fc.nat(0xffff)), { maxLength: 8 }),
      (rows) => {
        const c = new HomeAgentCore(cfg({ dad: "optimistic" }));
        c.handle({
          type: "restore",
          bindings: rows.map(([exp, reg, seq], i) => ({
            homeAddress: `2001:db8:2000::${(0x100 + i).toString(16)}`,
            careOf: COA,
            replyTo: COA,
            haAddress: HA,
            sequence: seq,
            lifetimeUnits: 10,
            expiresAt: Math.max(exp, T0 + 1),
            registeredAt: reg,
          })),
        }, T0);
        assert.deepEqual(JSON.parse(c.cache.persistedJson()), c.cache.toPersisted());
      },
    ),
  );
  const strict = new HomeAgentCore(cfg({ dad: "strict" }));
  strict.handle(buEv(1), T0);
  assert.deepEqual(JSON.parse(strict.cache.persistedJson()).bindings, [], "DAD entries stay out");
});

Deno.test("deadline heap agrees with a scan of the cache under random traffic", () => {
  const hoas = [HOA, "2001:db8:2000::11", "2001:db8:2000::12", "2001:db8:2000::13"];
  fc.assert(
    fc.property(
      fc.constantFrom<"strict" | "optimistic">("strict", "optimistic"),
      fc.array(
        fc.record({
          kind: fc.constantFrom("bu", "bu", "timer", "dup"),
          hoa: fc.integer({ min: 0, max: hoas.length - 1 }),
          seqStep: fc.integer({ min: -2, max: 3 }),
          lifetime: fc.integer({ min: 0, max: 20 }),
          dt: fc.integer({ min: 0, max: 30_000 }),
        }),
        { maxLength: 60 },
      ),
      (dad, steps) => {
        const core = new HomeAgentCore(cfg({ dad, maxLifetime: 40 }));
        const seqs = hoas.map(() => 100);
        let now = T0;
        for (const s of steps) {
          now += s.dt;
          const hoa = hoas[s.hoa];
          if (s.kind === "bu") {
            seqs[s.hoa] = (seqs[s.hoa] + s.seqStep + 0x10000) & 0xffff;
            core.handle(buEv(seqs[s.hoa], { hoa, lifetime: s.lifetime }), now);
          } else if (s.kind === "dup") {
            core.handle({ type: "dadDuplicate", homeAddress: hoa, evidence: "x" }, now);
          } else {
            core.handle({ type: "timer" }, now);
          }
          const scan = core.cache.entries().map((b) =>
            b.state === "dad"
              ? b.dadUntil!
              : Math.min(b.dadUntil ?? Infinity, b.naAt ?? Infinity, b.expiresAt)
          );
          const expect = scan.length ? Math.min(...scan) : undefined;
          if (core.nextDeadline() !== expect) return false;
          // nothing overdue survives an event
          for (const b of core.cache.entries()) {
            if (b.dadUntil !== undefined && b.dadUntil <= now) return false;
            if (b.naAt !== undefined && b.naAt <= now) return false;
            if (b.state === "registered" && b.expiresAt <= now) return false;
          }
          if (core.cache.scheduled > HEAP_SLACK * core.cache.size + 64) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("installFailed: binding dropped, BA 130, partial state removed", () => {
  const core = new HomeAgentCore(cfg());
  core.handle(buEv(5), T0);
  core.handle({ type: "timer" }, T0 + 1000); // install, NA, BA 0 (the wiring skips the BA)
  const a = core.handle(
    { type: "installFailed", homeAddress: HOA, error: "table full" },
    T0 + 1001,
  );
  assert.deepEqual(kinds(a), ["remove", "persist", "sendBa"]);
  assert.equal(bas(a)[0].status, 130);
  assert.equal(bas(a)[0].sequence, 5);
  assert.equal(bas(a)[0].to, COA);
  assert.equal(core.cache.size, 0);
  assert.deepEqual(
    kinds(core.handle({ type: "installFailed", homeAddress: HOA, error: "x" }, T0)),
    [],
  );
  // optimistic: DAD still running is stopped too
  const opt = new HomeAgentCore(cfg({ dad: "optimistic" }));
  opt.handle(buEv(1), T0);
  const b = opt.handle({ type: "installFailed", homeAddress: HOA, error: "EPERM" }, T0 + 1);
  assert.deepEqual(kinds(b), ["stopDad", "remove", "persist", "sendBa"]);
});

Deno.test("HAO without a binding: Binding Error 1, at most one per second per source", () => {
  const core = registered();
  const ev = (src: string, hoa = HOA): HaEvent => ({
    type: "haoPacket",
    src,
    dst: HA,
    homeAddress: hoa,
    nextHeader: 17,
  });
  // the registered HoA from its CoA: no error (counted)
  assert.deepEqual(kinds(core.handle(ev(COA), T0 + 2000)), []);
  // same HoA from another address, or an unknown HoA: BE 1 to the packet's source
  const a = core.handle(ev(COA2), T0 + 2000);
  assert.deepEqual(a.filter((x) => x.type !== "log"), [
    { type: "sendBe", from: HA, to: COA2, homeAddress: HOA, status: 1 },
  ]);
  assert.equal(core.counters().be_source_limited, undefined);
  assert.deepEqual(kinds(core.handle(ev(COA2, "2001:db8:2000::77"), T0 + 2500)), []);
  assert.deepEqual(kinds(core.handle(ev(COA2, "2001:db8:2000::77"), T0 + 3000)), ["sendBe"]);
  assert.equal(core.counters().hao_packets_bound, 1);
  assert.equal(core.counters().hao_packets_unbound, 3);
  assert.equal(core.counters().be_source_limited, 1);
});
