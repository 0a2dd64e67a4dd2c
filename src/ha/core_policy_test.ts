/**
 * Policy decisions of the home agent core that a review found missing or wrong: care-of
 * addresses that would loop (C2), a bounded deadline heap (M1), error-message rate limits
 * (M2), unsolicited NA flags and repeats (m1), the H/R/P/L flags (m2, m3), reserved home
 * addresses (m4), the destination check (m5), Parameter Problem (m6), ESP policy (RFC 4877).
 */

import assert from "node:assert/strict";
import type { MobilityRepr } from "../wire/mobility.ts";
import {
  ERROR_RATE,
  ERROR_SOURCES,
  type HaAction,
  type HaCoreConfig,
  type HaEvent,
  HomeAgentCore,
  linkLocalOf,
  reservedAnycast,
} from "./core.ts";
import { HEAP_SLACK } from "./binding_cache.ts";
import { ipv6Bytes } from "../wire/addr.ts";
import { COA, HA, HOA, NO_BU_FLAGS } from "../wire/test_util.ts";

const T0 = 5_000;

function cfg(over: Partial<HaCoreConfig> = {}): HaCoreConfig {
  return {
    haAddress: HA,
    homePrefix: { prefix: "2001:db8:2000::", length: 64 },
    allow: [],
    maxLifetime: 60,
    dad: "optimistic",
    ...over,
  };
}

type Flags = Extract<MobilityRepr, { type: "bu" }>["flags"];

function bu(
  seq: number,
  o: {
    hoa?: string;
    coa?: string;
    src?: string;
    dst?: string;
    lifetime?: number;
    flags?: Partial<Flags>;
    spi?: number;
    hao?: boolean;
  } = {},
): HaEvent {
  const src = o.src ?? COA;
  return {
    type: "mh",
    src,
    dst: o.dst ?? HA,
    homeAddress: o.hoa ?? HOA,
    hao: o.hao ?? true,
    protected: o.spi === undefined ? false : { spi: o.spi },
    message: {
      type: "bu",
      sequence: seq,
      flags: { ...NO_BU_FLAGS, ack: true, home: true, ...o.flags },
      lifetime: o.lifetime ?? 10,
      options: [{ type: "altCoa", address: o.coa ?? src }],
    },
  };
}

function only<T extends HaAction["type"]>(a: HaAction[], t: T): Extract<HaAction, { type: T }>[] {
  return a.filter((x) => x.type === t) as Extract<HaAction, { type: T }>[];
}

function kinds(a: HaAction[]): string[] {
  return a.filter((x) => x.type !== "log").map((x) => x.type);
}

function status(a: HaAction[]): number | undefined {
  return only(a, "sendBa")[0]?.status;
}

Deno.test("C2: a care-of address that is another binding's home address is refused (174)", () => {
  // the reviewer's loop: HoA ::a via CoA ::b and HoA ::b via CoA ::a
  const core = new HomeAgentCore(cfg());
  const a = "2001:db8:2000::a", b = "2001:db8:2000::b";
  const first = core.handle(bu(1, { hoa: a, coa: b }), T0);
  assert.equal(status(first), 174);
  assert.deepEqual(only(first, "install"), []);
  const second = core.handle(bu(1, { hoa: b, coa: a }), T0);
  assert.equal(status(second), 174);
  assert.equal(core.cache.size, 0);
  // with ::a registered via a foreign care-of address, ::b via ::a is refused all the same
  assert.equal(status(core.handle(bu(1, { hoa: a }), T0)), 0);
  const loop = core.handle(bu(1, { hoa: b, coa: a }), T0);
  assert.equal(status(loop), 174);
  assert.deepEqual(only(loop, "install"), []);
  assert.equal(core.cache.size, 1);
});

Deno.test("C2: care-of addresses inside the home prefix, of the host, or not unicast → 174", () => {
  const core = new HomeAgentCore(cfg({ ownAddresses: ["2001:db8:3000::1", "fe80::1"] }));
  for (
    const coa of [
      "2001:db8:2000::99", // inside the home prefix
      HA, // the home agent address
      "2001:db8:3000::1", // another address of the host
      "ff02::1",
      "fe80::5",
      "::1",
      "::",
      "::ffff:192.0.2.7",
    ]
  ) {
    const a = core.handle(bu(1, { coa }), T0);
    assert.equal(status(a), 174, coa);
    assert.equal(only(a, "sendBa")[0].to, COA, "the BA goes to the packet's source");
  }
  assert.equal(core.counters().ba_status_174, 8);
  assert.equal(core.cache.size, 0);
  // the deregistration case CoA == HoA is not a care-of address problem
  assert.equal(status(core.handle(bu(2), T0)), 0);
  const bye = core.handle(bu(3, { coa: HOA, lifetime: 5 }), T0 + 10);
  assert.equal(status(bye), 0);
  assert.deepEqual(only(bye, "remove").map((r) => r.reason), ["deregistered"]);
  // a moved binding is checked the same way and keeps its old care-of address
  assert.equal(status(core.handle(bu(4), T0 + 20)), 0);
  assert.equal(status(core.handle(bu(5, { coa: "2001:db8:2000::77" }), T0 + 30)), 174);
  assert.equal(core.cache.get(HOA)?.careOf, COA);
  // setOwnAddresses replaces the list
  core.setOwnAddresses(["2001:db8:4000::1"]);
  assert.equal(status(core.handle(bu(6, { coa: "2001:db8:4000::1" }), T0 + 40)), 174);
  assert.equal(status(core.handle(bu(7, { coa: "2001:db8:3000::1" }), T0 + 50)), 0);
});

Deno.test("C2: restore drops a binding whose care-of address is invalid", () => {
  const core = new HomeAgentCore(cfg());
  const p = (hoa: string, careOf: string) => ({
    homeAddress: hoa,
    careOf,
    replyTo: COA,
    haAddress: HA,
    sequence: 1,
    lifetimeUnits: 10,
    expiresAt: T0 + 30_000,
    registeredAt: T0,
  });
  const a = core.handle({
    type: "restore",
    bindings: [
      p("2001:db8:2000::a", "2001:db8:2000::b"),
      p("2001:db8:2000::c", COA),
      p("2001:db8:2000::d", "ff02::1"),
      p("2001:db8:2000::", COA),
    ],
  }, T0);
  assert.deepEqual(only(a, "install").map((i) => i.homeAddress), ["2001:db8:2000::c"]);
  const why = a.filter((x) => x.type === "log" && /not restored/.test(x.message))
    .map((x) => x.type === "log" && x.fields.why);
  assert.equal(why.length, 3);
  assert.match(String(why[0]), /inside the home prefix/);
  assert.match(String(why[1]), /not unicast routable/);
  assert.match(String(why[2]), /Subnet-Router anycast/);
});

Deno.test("M1: the deadline heap stays bounded by the bindings (100,000 refreshes)", () => {
  const core = new HomeAgentCore(cfg());
  core.handle(bu(1), T0);
  for (let i = 2; i <= 100_001; i++) core.handle(bu(i & 0xffff), T0 + i);
  assert.equal(core.cache.size, 1);
  assert.ok(core.cache.scheduled <= HEAP_SLACK + 64, `${core.cache.scheduled} heap items`);
  // deletions shrink it too
  const many = new HomeAgentCore(cfg({ homePrefix: { prefix: "2001:db8:2000::", length: 64 } }));
  for (let i = 0; i < 2000; i++) {
    many.handle(bu(1, { hoa: `2001:db8:2000::1:${i.toString(16)}` }), T0);
  }
  for (let i = 0; i < 2000; i++) {
    many.handle(bu(2, { hoa: `2001:db8:2000::1:${i.toString(16)}`, lifetime: 0 }), T0 + 1);
  }
  assert.equal(many.cache.size, 0);
  assert.ok(many.cache.scheduled <= 64, `${many.cache.scheduled} heap items after deletions`);
  assert.equal(many.nextDeadline(), undefined);
});

Deno.test("M2: all error messages share one token bucket; spoofed sources reflect little", () => {
  const core = new HomeAgentCore(cfg());
  const hao = (src: string): HaEvent => ({
    type: "haoPacket",
    src,
    dst: HA,
    homeAddress: "2001:db8:2000::77",
    nextHeader: 17,
  });
  const unknown = (src: string): HaEvent => ({
    type: "mh",
    src,
    dst: HA,
    homeAddress: src,
    hao: false,
    message: { type: "unknown", mhType: 42, data: new Uint8Array(0) },
  });
  let sent = 0;
  for (let i = 0; i < 500; i++) {
    // 500 sources within 50 ms: the refill in that time is half a message
    const src = `2001:db8:9:${(i >> 8).toString(16)}::${(i & 0xff).toString(16)}`;
    sent += only(core.handle(i % 2 ? hao(src) : unknown(src), T0 + i / 10), "sendBe").length;
  }
  assert.equal(sent, ERROR_RATE.burst);
  assert.equal(core.counters().be_rate_limited, 500 - sent);
  // Parameter Problems draw from the same bucket
  const pp = core.handle({
    type: "paramProblem",
    src: "2001:db8:9::1:1",
    dst: HA,
    pointer: 64,
    invoking: new Uint8Array(48),
  }, T0 + 50);
  assert.deepEqual(kinds(pp), []);
  assert.equal(core.counters().icmp_rate_limited, 1);
  // after a pause the bucket refills
  const later = core.handle(unknown("2001:db8:9::2:2"), T0 + 60_000);
  assert.equal(only(later, "sendBe").length, 1);
});

Deno.test("M2: one error per second per source, the source table bounded", () => {
  const core = new HomeAgentCore(cfg({ errorRate: { perSecond: 1e9, burst: 1e9 } }));
  const hao = (src: string, now: number) =>
    only(
      core.handle({ type: "haoPacket", src, dst: HA, homeAddress: HOA, nextHeader: 6 }, now),
      "sendBe",
    ).length;
  assert.equal(hao("2001:db8:9::1", T0), 1);
  assert.equal(hao("2001:db8:9::1", T0 + 999), 0);
  assert.equal(hao("2001:db8:9::1", T0 + 1000), 1);
  for (let i = 0; i < 3 * ERROR_SOURCES; i++) {
    hao(`2001:db8:a::${i.toString(16)}`, T0 + 2000);
  }
  assert.ok(core.errorSources <= ERROR_SOURCES, `${core.errorSources} sources held`);
  assert.equal(core.counters().be_sent, 2 + 3 * ERROR_SOURCES);
  // a multicast source gets nothing
  assert.equal(hao("ff02::1", T0 + 5000), 0);
});

Deno.test("m1: unsolicited NA three times, a second apart; R clear is the wiring's (emit)", () => {
  const core = new HomeAgentCore(cfg());
  const times: number[] = [];
  for (let t = T0; t <= T0 + 5000; t += 250) {
    const a = t === T0 ? core.handle(bu(1), t) : core.handle({ type: "timer" }, t);
    if (only(a, "unsolicitedNa").length) times.push(t - T0);
  }
  assert.deepEqual(times, [0, 1000, 2000]);
  assert.equal(core.counters().unsolicited_na_repeated, 2);
  // a deregistration ends the repeats
  const c2 = new HomeAgentCore(cfg());
  c2.handle(bu(1), T0);
  c2.handle(bu(2, { lifetime: 0 }), T0 + 10);
  assert.deepEqual(kinds(c2.handle({ type: "timer" }, T0 + 5000)), []);
});

Deno.test("m3: R → 140, P → 152; L defends the link-local address too", () => {
  const core = new HomeAgentCore(cfg());
  assert.equal(status(core.handle(bu(1, { flags: { mobileRouter: true } }), T0)), 140);
  assert.equal(status(core.handle(bu(1, { flags: { proxy: true } }), T0)), 152);
  assert.equal(core.cache.size, 0);
  const ll = "fe80::10";
  assert.equal(linkLocalOf(ipv6Bytes(HOA)), ll);
  const a = core.handle(bu(1, { flags: { linkLocal: true } }), T0);
  assert.equal(status(a), 0);
  assert.deepEqual(only(a, "install")[0], {
    type: "install",
    homeAddress: HOA,
    careOf: COA,
    linkLocal: ll,
  });
  assert.deepEqual(only(a, "startDad")[0], { type: "startDad", homeAddress: HOA, linkLocal: ll });
  assert.deepEqual(only(a, "unsolicitedNa")[0], {
    type: "unsolicitedNa",
    homeAddress: HOA,
    linkLocal: ll,
  });
  assert.equal(core.status(T0)[0].linkLocal, ll);
  assert.equal(JSON.parse(core.cache.persistedJson()).bindings[0].linkLocal, ll);
  // DAD evidence against the link-local address fails the binding
  const dup = core.handle({ type: "dadDuplicate", homeAddress: ll, evidence: "NA" }, T0 + 10);
  assert.deepEqual(only(dup, "remove").map((r) => r.homeAddress), [HOA]);
  assert.equal(core.cache.size, 0);
  // a refresh without L stops defending it (install without linkLocal)
  core.handle(bu(5, { flags: { linkLocal: true } }), T0 + 20);
  core.handle({ type: "timer" }, T0 + 2000);
  const r = core.handle(bu(6), T0 + 2100);
  assert.deepEqual(only(r, "install")[0], {
    type: "install",
    homeAddress: HOA,
    careOf: COA,
    previousCareOf: COA,
  });
  // the home agent's own link-local address cannot be claimed
  const own = new HomeAgentCore(cfg({ ownAddresses: ["fe80::10"] }));
  assert.equal(status(own.handle(bu(1, { flags: { linkLocal: true } }), T0)), 129);
  // two home addresses with one interface identifier (a prefix shorter than 64): the second
  // cannot defend the same link-local address
  const wide = new HomeAgentCore(cfg({ homePrefix: { prefix: "2001:db8::", length: 32 } }));
  const l = { flags: { linkLocal: true }, src: "2001:db9::3" };
  assert.equal(status(wide.handle(bu(1, { ...l, hoa: "2001:db8:1::10" }), T0)), 0);
  assert.equal(status(wide.handle(bu(1, { ...l, hoa: "2001:db8:2::10" }), T0)), 129);
});

Deno.test("m4: Subnet-Router anycast and RFC 2526 reserved anycast home addresses → 129", () => {
  const core = new HomeAgentCore(cfg());
  for (
    const hoa of [
      "2001:db8:2000::",
      "2001:db8:2000:0:fdff:ffff:ffff:ff80",
      "2001:db8:2000:0:fdff:ffff:ffff:fffe",
      "2001:db8:2000:0:fdff:ffff:ffff:ffff",
    ]
  ) {
    const a = core.handle(bu(1, { hoa }), T0);
    assert.equal(status(a), 129, hoa);
  }
  for (
    const hoa of [
      "2001:db8:2000:0:fdff:ffff:ffff:ff7f", // below the reserved range
      "2001:db8:2000:0:ffff:ffff:ffff:ffff", // u/l bit set: not an RFC 2526 ID on a /64
    ]
  ) {
    assert.equal(status(core.handle(bu(1, { hoa }), T0)), 0, hoa);
  }
  // other prefix lengths: the highest 128 addresses of the subnet
  const b = (t: string) => ipv6Bytes(t);
  assert.match(reservedAnycast(b("2001:db8::ff"), 120)!, /RFC 2526/);
  assert.match(reservedAnycast(b("2001:db8::80"), 120)!, /RFC 2526/);
  assert.equal(reservedAnycast(b("2001:db8::7f"), 120), undefined);
  assert.match(reservedAnycast(b("2001:db8::"), 120)!, /Subnet-Router/);
  assert.match(reservedAnycast(b("2001:db8:0:ffff:ffff:ffff:ffff:ff85"), 48)!, /RFC 2526/);
  assert.equal(reservedAnycast(b("2001:db8::1"), 128), undefined);
});

Deno.test("m5: mobility messages to another local address are dropped and counted", () => {
  const core = new HomeAgentCore(cfg());
  const a = core.handle(bu(1, { dst: "2001:db8:3000::1" }), T0);
  assert.deepEqual(kinds(a), []);
  assert.equal(core.counters().mh_wrong_destination, 1);
  assert.equal(core.cache.size, 0);
  const e = core.handle({
    type: "mh",
    src: COA,
    dst: "2001:db8:3000::1",
    homeAddress: COA,
    hao: false,
    message: { type: "unknown", mhType: 9, data: new Uint8Array(0) },
  }, T0);
  assert.deepEqual(kinds(e), []);
  assert.equal(core.counters().mh_wrong_destination, 2);
  // the same address in another spelling is the home agent's
  assert.equal(status(core.handle(bu(1, { dst: "2001:0db8:2000:0::1" }), T0)), 0);
});

Deno.test("m6: Parameter Problem for a malformed mobility header goes to the source", () => {
  const core = new HomeAgentCore(cfg());
  const invoking = new Uint8Array(64);
  const a = core.handle({ type: "paramProblem", src: COA, dst: HA, pointer: 64, invoking }, T0);
  assert.deepEqual(a.filter((x) => x.type !== "log"), [
    { type: "sendParamProblem", from: HA, to: COA, pointer: 64, invoking },
  ]);
  assert.equal(core.counters().icmp_param_problem_sent, 1);
  // per source: one per second
  const b = core.handle({ type: "paramProblem", src: COA, dst: HA, pointer: 64, invoking }, T0);
  assert.deepEqual(kinds(b), []);
});

Deno.test("ESP policy: BUs for a home address with an SA only under ESP, BAs protected", () => {
  const core = new HomeAgentCore(cfg({ dad: "strict", espHomeAddresses: [HOA] }));
  const plain = core.handle(bu(1), T0);
  assert.deepEqual(kinds(plain), []);
  assert.equal(core.counters().bu_unprotected_dropped, 1);
  // a deregistration without ESP is dropped the same way (no 133 to a spoofer either)
  assert.deepEqual(kinds(core.handle(bu(2, { lifetime: 0 }), T0)), []);
  assert.equal(core.counters().bu_unprotected_dropped, 2);
  // under ESP: DAD (strict), then a protected BA
  assert.deepEqual(kinds(core.handle(bu(3, { spi: 0x1001 }), T0)), ["startDad"]);
  const done = core.handle({ type: "timer" }, T0 + 1000);
  assert.deepEqual(only(done, "sendBa").map((b) => [b.status, b.protect]), [[0, true]]);
  // refusals of a protected BU go protected too
  const stale = core.handle(bu(3, { spi: 0x1001 }), T0 + 1100);
  assert.deepEqual(only(stale, "sendBa").map((b) => [b.status, b.protect]), [[135, true]]);
  // another home address without an SA may still register in the clear
  const other = core.handle(bu(1, { hoa: "2001:db8:2000::11" }), T0 + 1200);
  assert.deepEqual(kinds(other), ["startDad"]);
  // Binding Errors are never protected (no `protect` on sendBe)
  const be = core.handle({
    type: "mh",
    src: COA,
    dst: HA,
    homeAddress: HOA,
    hao: true,
    protected: { spi: 0x1001 },
    message: { type: "unknown", mhType: 77, data: new Uint8Array(0) },
  }, T0 + 1300);
  assert.deepEqual(Object.keys(only(be, "sendBe")[0]).sort(), [
    "from",
    "homeAddress",
    "status",
    "to",
    "type",
  ]);
  assert.equal(core.status(T0 + 1300)[0].protected, true);
});

Deno.test("ESP policy: --require-esp drops every unprotected BU", () => {
  const core = new HomeAgentCore(cfg({ requireEsp: true, espHomeAddresses: [HOA] }));
  assert.deepEqual(kinds(core.handle(bu(1, { hoa: "2001:db8:2000::11" }), T0)), []);
  assert.equal(core.counters().bu_unprotected_dropped, 1);
  const ok = core.handle(bu(1, { spi: 0x1001 }), T0);
  assert.deepEqual(only(ok, "sendBa").map((b) => [b.status, b.protect]), [[0, true]]);
});

Deno.test("status reports registeredAt on the wall clock from a monotonic core clock", () => {
  const core = new HomeAgentCore(cfg());
  core.handle(bu(1), 1234.5); // performance.now()-like time
  const wallOffset = Date.UTC(2030, 0, 1) - 1234.5;
  const s = core.status(2234.5, wallOffset)[0];
  assert.equal(s.registeredAt, "2030-01-01T00:00:00.000Z");
  assert.equal(s.lifetimeRemaining, 39);
  const doc = JSON.parse(core.cache.persistedJson({ wallOffset }));
  assert.equal(doc.bindings[0].registeredAt, Date.UTC(2030, 0, 1));
  assert.equal(doc.bindings[0].expiresAt, Date.UTC(2030, 0, 1) + 40_000);
  assert.deepEqual(core.cache.toPersisted({ wallOffset }), doc);
  const esp = [{ spi: 300, direction: "outbound", sequence: 64 }];
  assert.deepEqual(JSON.parse(core.cache.persistedJson({ wallOffset, esp })).esp, esp);
});
