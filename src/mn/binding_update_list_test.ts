import assert from "node:assert/strict";
import {
  BindingUpdateListEntry,
  type BulAction,
  type BulEvent,
  type BulOptions,
  seqGreater,
} from "./binding_update_list.ts";
import type { BaRepr, BuRepr } from "../wire/mobility.ts";
import { COA, HA, HOA } from "../wire/test_util.ts";

/** An entry driven by a fake clock: `advance(ms)` fires every deadline on the way. */
class Harness {
  now = 0;
  readonly entry: BindingUpdateListEntry;
  readonly actions: Array<BulAction & { at: number }> = [];
  constructor(opts: Partial<BulOptions> = {}) {
    this.entry = new BindingUpdateListEntry({
      homeAddress: HOA,
      homeAgent: HA,
      careOf: COA,
      lifetime: 600,
      lastSequence: 41,
      ...opts,
    });
  }
  send(e: BulEvent): BulAction[] {
    const out = this.entry.handle(e, this.now);
    for (const a of out) this.actions.push({ ...a, at: this.now });
    return out;
  }
  advance(ms: number) {
    const end = this.now + ms;
    for (;;) {
      const d = this.entry.nextDeadline();
      if (d === null || d > end) break;
      assert.ok(d >= this.now, "deadline in the past");
      this.now = d;
      this.send({ type: "timer" });
    }
    this.now = end;
  }
  bus(): Array<{ at: number; bu: BuRepr; careOf: string; atHome: boolean }> {
    return this.actions.flatMap((a) => a.type === "sendBu" ? [a] : []);
  }
  lastBu(): BuRepr {
    const b = this.bus();
    assert.ok(b.length > 0, "no BU sent");
    return b[b.length - 1].bu;
  }
  ba(
    status: number,
    sequence: number,
    opts: Partial<BaRepr> & { src?: string; rh2?: string | null; dst?: string } = {},
  ) {
    const ba: BaRepr = {
      type: "ba",
      status,
      flags: { key: false, mobileRouter: false, proxy: false },
      sequence,
      lifetime: opts.lifetime ?? 150,
      options: opts.options ?? [],
    };
    const e: BulEvent = {
      type: "ba",
      src: opts.src ?? HA,
      dst: opts.dst ?? COA,
      ba,
    };
    if (opts.rh2 !== null) e.rh2HomeAddress = opts.rh2 ?? HOA;
    return this.send(e);
  }
  states(): string[] {
    return this.actions.flatMap((a) => a.type === "state" ? [a.to] : []);
  }
}

Deno.test("first BU: A and H set, L and K clear, lifetime in 4 s units, Alt-CoA, next sequence", () => {
  const h = new Harness({ lifetime: 601 });
  const out = h.send({ type: "start" });
  // The sequence is persisted before the BU goes out.
  assert.deepEqual(out.map((a) => a.type), ["state", "persistSequence", "sendBu"]);
  const bu = h.lastBu();
  assert.equal(bu.sequence, 42);
  assert.equal(bu.flags.ack, true);
  assert.equal(bu.flags.home, true);
  assert.equal(bu.flags.linkLocal, false);
  assert.equal(bu.flags.key, false);
  assert.equal(bu.lifetime, 151); // 601 s rounded up to 4 s units
  assert.deepEqual(bu.options, [{ type: "altCoa", address: COA }]);
  assert.equal(h.entry.state, "registering");
  assert.deepEqual(out[1], { type: "persistSequence", sequence: 42 });
});

Deno.test("retransmission: 1.5 s then doubling to 32 s, new sequence each time, failed after the bound, keeps retrying", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.advance(600_000);
  const bus = h.bus();
  const gaps = bus.slice(1).map((b, i) => b.at - bus[i].at);
  assert.deepEqual(gaps.slice(0, 8), [1500, 3000, 6000, 12000, 24000, 32000, 32000, 32000]);
  assert.ok(gaps.slice(5).every((g) => g === 32000));
  // Every transmission has a fresh sequence number.
  assert.deepEqual(bus.slice(0, 4).map((b) => b.bu.sequence), [42, 43, 44, 45]);
  // failed after 16 transmissions without a BA, then still retrying at 32 s.
  const failedAt = h.actions.find((a) => a.type === "state" && a.to === "failed")!.at;
  assert.equal(failedAt, bus[16].at);
  assert.ok(bus.some((b) => b.at > failedAt + 64_000));
  assert.equal(h.entry.state, "failed");
  assert.match(h.entry.reason, /no valid Binding Acknowledgement after 16/);
  // A valid BA still recovers it.
  h.ba(0, h.lastBu().sequence);
  assert.equal(h.entry.state, "registered");
});

Deno.test("BA accepted → registered; refresh before the lifetime ends, from 1 s backoff", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.advance(200);
  h.ba(0, 42, { lifetime: 25 }); // HA grants 100 s (less than asked)
  assert.equal(h.entry.state, "registered");
  assert.equal(h.entry.status(h.now).lifetimeRemaining, 99); // counted from the BU's send time
  assert.equal(h.entry.nextDeadline(), 80_000); // 0.8 × 100 s after the BU was sent
  h.advance(79_000);
  assert.equal(h.bus().length, 1);
  h.advance(1_000);
  assert.equal(h.bus().length, 2);
  assert.equal(h.lastBu().sequence, 43);
  assert.equal(h.entry.state, "registered"); // refreshing keeps the binding's state
  h.advance(1_000);
  assert.equal(h.bus().length, 3); // refresh retransmitted after 1 s (binding exists)
  h.advance(500);
  h.ba(0, 43, { lifetime: 25 }); // a BA for the earlier refresh BU still counts
  assert.equal(h.entry.state, "registered");
  assert.equal(h.entry.nextDeadline(), 80_000 + 80_000);
  assert.equal(h.entry.counters.bu_refreshes, 1);
});

Deno.test("an unanswered refresh: the binding expires → registering, retries continue", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.ba(0, 42, { lifetime: 5 }); // 20 s
  h.advance(19_999);
  assert.equal(h.entry.state, "registered");
  h.advance(1);
  assert.equal(h.entry.state, "registering");
  assert.match(h.entry.reason, /lifetime ran out/);
  const before = h.bus().length;
  h.advance(40_000);
  assert.ok(h.bus().length > before);
});

Deno.test("Binding Refresh Advice sets the refresh interval", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.ba(0, 42, { lifetime: 150, options: [{ type: "bra", interval: 10 }] });
  assert.equal(h.entry.nextDeadline(), 40_000);
});

Deno.test("BA status 135: resend at once with the BA's sequence + 1, then accept", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.advance(100);
  const out = h.ba(135, 5000);
  const sent = out.find((a) => a.type === "sendBu");
  assert.ok(sent && sent.type === "sendBu");
  assert.equal(sent.bu.sequence, 5001);
  assert.ok(out.some((a) => a.type === "persistSequence" && a.sequence === 5001));
  // A late BA for the superseded sequence 42 is no longer in flight.
  h.ba(0, 42);
  assert.equal(h.entry.state, "registering");
  assert.equal(h.entry.counters.ba_ignored, 1);
  h.ba(0, 5001);
  assert.equal(h.entry.state, "registered");
  assert.equal(h.entry.sequence, 5001);
  assert.equal(h.entry.counters.ba_seq_out_of_window, 1);
});

Deno.test("repeated 135s stop being answered at once (no BU storm)", () => {
  const h = new Harness();
  h.send({ type: "start" });
  for (let i = 0; i < 6; i++) h.ba(135, 100);
  assert.equal(h.bus().length, 1 + 3);
  // The backoff timer continues with the HA's number + 1.
  h.advance(60_000);
  assert.equal(h.bus()[4].bu.sequence, 101);
});

Deno.test("other refusals are logged with their meaning and retried with backoff, not at once", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.advance(500);
  const out = h.ba(129, 42);
  assert.ok(!out.some((a) => a.type === "sendBu"));
  const log = out.find((a) => a.type === "log");
  assert.ok(log && log.type === "log");
  assert.match(log.message, /129 \(Administratively prohibited\)/);
  assert.equal(h.entry.state, "registering");
  assert.equal(h.entry.counters.ba_refused, 1);
  h.advance(1000);
  assert.equal(h.bus().length, 2);
  assert.equal(h.bus()[1].at, 1500);
});

Deno.test("Binding Refresh Request → BU at once", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.ba(0, 42);
  h.advance(10_000);
  const out = h.send({
    type: "brr",
    src: HA,
    dst: COA,
    rh2HomeAddress: HOA,
    brr: { type: "brr", options: [] },
  });
  const bu = out.find((a) => a.type === "sendBu");
  assert.ok(bu && bu.type === "sendBu");
  assert.equal(bu.bu.sequence, 43);
  assert.equal(bu.bu.lifetime, 150);
  // A forged BRR (not from the HA) is ignored.
  const forged = h.send({
    type: "brr",
    src: "2001:db8:6666::1",
    dst: COA,
    rh2HomeAddress: HOA,
    brr: { type: "brr", options: [] },
  });
  assert.ok(!forged.some((a) => a.type === "sendBu"));
  assert.equal(h.entry.counters.brr_ignored, 1);
});

Deno.test("stray and forged BAs are ignored and counted", () => {
  const h = new Harness();
  h.ba(0, 42); // nothing in flight yet
  h.send({ type: "start" });
  h.ba(0, 42, { src: "2001:db8:6666::1" }); // not from the HA
  h.ba(0, 42, { rh2: null }); // no RH2 (and not at home)
  h.ba(0, 42, { rh2: "2001:db8:2000::99" }); // RH2 for another HoA
  h.ba(0, 41); // a sequence never sent in this attempt
  h.ba(0, 43); // a sequence not sent yet
  assert.equal(h.entry.state, "registering");
  assert.equal(h.entry.counters.ba_ignored, 6);
  assert.equal(h.entry.counters.ba_accepted, 0);
  const logs = h.actions.filter((a) => a.type === "log");
  assert.ok(
    logs.every((l) => l.type === "log" && l.remote !== undefined),
    "remote-input logs keyed",
  );
  h.ba(0, 42);
  assert.equal(h.entry.state, "registered");
});

Deno.test("handover: BAs for the old attempt are ignored; 1 s backoff once a binding exists", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.ba(0, 42);
  h.advance(5_000);
  h.send({ type: "handover", careOf: "2001:db8:4000::3" });
  assert.equal(h.entry.state, "registering");
  const bu = h.bus()[1];
  assert.equal(bu.careOf, "2001:db8:4000::3");
  assert.deepEqual(bu.bu.options, [{ type: "altCoa", address: "2001:db8:4000::3" }]);
  h.ba(0, 42); // the old binding's BA, replayed
  assert.equal(h.entry.state, "registering");
  h.advance(1_000);
  assert.equal(h.bus().length, 3);
  assert.equal(h.bus()[2].at - h.bus()[1].at, 1000);
  h.ba(0, 44);
  assert.equal(h.entry.state, "registered");
  assert.equal(h.entry.status(h.now).careOfAddress, "2001:db8:4000::3");
});

Deno.test("handover continues a handed-over sequence (only forward)", () => {
  const h = new Harness({ lastSequence: 10 });
  h.send({ type: "handover", sequence: 3000 });
  assert.equal(h.lastBu().sequence, 3001);
  // An older exported sequence never moves the counter back.
  h.send({ type: "handover", sequence: 5 });
  assert.equal(h.lastBu().sequence, 3002);
  // Handed-over state means a binding exists: 1 s backoff.
  h.advance(1_000);
  assert.equal(h.bus().length, 3);
});

Deno.test("sequence numbers wrap modulo 2^16", () => {
  const h = new Harness({ lastSequence: 65534 });
  h.send({ type: "start" });
  h.advance(1500);
  h.advance(3000);
  assert.deepEqual(h.bus().map((b) => b.bu.sequence), [65535, 0, 1]);
  h.ba(0, 65535); // the first of the attempt, across the wrap
  assert.equal(h.entry.state, "registered");
  assert.ok(seqGreater(0, 65535));
  assert.ok(!seqGreater(65535, 0));
  assert.ok(!seqGreater(7, 7));
  assert.ok(seqGreater(0x8000 + 6, 7));
  assert.ok(!seqGreater(0x8000 + 7, 7));
});

Deno.test("deregistration: lifetime 0, BA → deregistered, nothing pending", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.ba(0, 42);
  h.send({ type: "deregister" });
  assert.equal(h.entry.state, "deregistering");
  assert.equal(h.lastBu().lifetime, 0);
  assert.equal(h.lastBu().sequence, 43);
  h.ba(0, 43, { lifetime: 0 });
  assert.equal(h.entry.state, "deregistered");
  assert.equal(h.entry.nextDeadline(), null);
  assert.deepEqual(h.states(), ["registering", "registered", "deregistering", "deregistered"]);
  assert.equal(h.entry.history.length, 4);
});

Deno.test("returning home: CoA = HoA, sent from home, the BA to the HoA without RH2 counts", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.ba(0, 42);
  h.send({ type: "deregister", atHome: true });
  const b = h.bus()[1];
  assert.equal(b.atHome, true);
  assert.equal(b.careOf, HOA);
  assert.deepEqual(b.bu.options, [{ type: "altCoa", address: HOA }]);
  assert.equal(b.bu.lifetime, 0);
  h.ba(0, 43, { rh2: null, dst: "2001:db8:2000::77" }); // not to the HoA: ignored
  assert.equal(h.entry.state, "deregistering");
  h.ba(0, 43, { rh2: null, dst: HOA, lifetime: 0 });
  assert.equal(h.entry.state, "deregistered");
});

Deno.test("an unanswered deregistration ends when the binding's lifetime has run out", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.ba(0, 42, { lifetime: 30 }); // 120 s
  h.advance(10_000);
  h.send({ type: "deregister" });
  h.advance(109_999);
  assert.notEqual(h.entry.state, "deregistered");
  h.advance(1);
  assert.equal(h.entry.state, "deregistered");
  assert.match(h.entry.reason, /lifetime has run out/);
  assert.equal(h.entry.nextDeadline(), null);
});

Deno.test("Binding Error status 1 → register again; forged BE ignored", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.ba(0, 42);
  h.advance(3000);
  const forged = h.send({
    type: "be",
    src: "2001:db8:6666::1",
    be: { type: "be", status: 1, homeAddress: HOA },
  });
  assert.ok(!forged.some((a) => a.type === "sendBu"));
  const out = h.send({ type: "be", src: HA, be: { type: "be", status: 1, homeAddress: HOA } });
  assert.ok(out.some((a) => a.type === "sendBu"));
  assert.equal(h.entry.state, "registering");
  // First-registration backoff: the HA has no binding.
  h.advance(1500);
  assert.equal(h.bus().length, 3);
  const st2 = h.send({ type: "be", src: HA, be: { type: "be", status: 2, homeAddress: HOA } });
  assert.ok(st2.some((a) => a.type === "log" && /unrecognized MH Type/.test(a.message)));
  assert.equal(h.entry.counters.be_ignored, 1);
  assert.equal(h.entry.counters.be_received, 2);
});

Deno.test("release: no BU, timers stop, deregistered; BAs afterwards are strays", () => {
  const h = new Harness();
  h.send({ type: "start" });
  h.ba(0, 42);
  const out = h.send({ type: "release" });
  assert.ok(!out.some((a) => a.type === "sendBu"));
  assert.equal(h.entry.state, "deregistered");
  assert.equal(h.entry.nextDeadline(), null);
  h.advance(1_000_000);
  assert.equal(h.bus().length, 1);
  h.ba(0, 42);
  assert.equal(h.entry.state, "deregistered");
  // Returning home on the next host continues the handed-over sequence.
  const h2 = new Harness({ lastSequence: 7 });
  h2.send({ type: "deregister", atHome: true, sequence: h.entry.sequence });
  assert.equal(h2.lastBu().sequence, 43);
});

Deno.test("deregistration refused with 133 (no binding at the HA) ends as deregistered", () => {
  const h = new Harness();
  h.send({ type: "deregister", atHome: true });
  h.ba(133, 42, { rh2: null, dst: HOA });
  assert.equal(h.entry.state, "deregistered");
  assert.match(h.entry.reason, /133/);
  assert.equal(h.entry.nextDeadline(), null);
  // A registration refused with 133 keeps retrying instead.
  const r = new Harness();
  r.send({ type: "start" });
  r.ba(133, 42);
  assert.equal(r.entry.state, "registering");
  assert.notEqual(r.entry.nextDeadline(), null);
});

Deno.test("a random start sequence gives way to a handed-over one, even an 'older' one", () => {
  const h = new Harness({ lastSequence: 12624, sequenceKnown: false });
  h.send({ type: "handover", sequence: 9000 });
  assert.equal(h.lastBu().sequence, 9001);
  // Once known, only forward.
  const k = new Harness({ lastSequence: 12624 });
  k.send({ type: "handover", sequence: 9000 });
  assert.equal(k.lastBu().sequence, 12625);
});

Deno.test("handover from a host without a binding (the VM was at home): 1.5 s first timeout", () => {
  const h = new Harness();
  h.send({ type: "handover", sequence: 100, bindingExists: false });
  h.advance(1499);
  assert.equal(h.bus().length, 1);
  h.advance(1);
  assert.equal(h.bus().length, 2);
});
