import assert from "node:assert/strict";
import fc from "fast-check";
import { SEQUENCE_RESERVE, SequenceReservation, storedSequence } from "./sequence_reservation.ts";
import { seqGreater } from "./binding_update_list.ts";

Deno.test("one write per 64 BUs; the write is ahead of every sequence sent under it", () => {
  const r = new SequenceReservation(null);
  const writes: number[] = [];
  for (let seq = 65500; seq < 65500 + 640; seq++) {
    const w = r.toPersist(seq);
    if (w !== null) {
      writes.push(w);
      r.committed(w);
    }
    // Whatever is on disk now lets a restart continue after `seq`.
    assert.ok(seqGreater(r.reserved!, seq) || r.reserved === (seq & 0xffff));
  }
  assert.equal(writes.length, 10);
  assert.equal(writes[0], (65500 + SEQUENCE_RESERVE) & 0xffff);
  assert.equal(writes[1], (65500 + 65 + SEQUENCE_RESERVE) & 0xffff);
});

Deno.test("a restart continues after the stored reservation; the next BU writes a new one", () => {
  const r = new SequenceReservation(1000);
  assert.equal(r.toPersist(1000), null);
  assert.equal(r.toPersist(1001), 1001 + SEQUENCE_RESERVE);
});

Deno.test("a sequence behind the window (status 135, handover) writes at once", () => {
  const r = new SequenceReservation(5064);
  assert.equal(r.toPersist(5030), null);
  assert.equal(r.toPersist(4999), 4999 + SEQUENCE_RESERVE); // the HA's number, older
  assert.equal(r.toPersist(9000), 9000 + SEQUENCE_RESERVE); // a handed-over one, newer
});

Deno.test("fast-check: after any walk, the stored value is >= every sequence used", () => {
  fc.assert(
    fc.property(
      fc.nat(0xffff),
      fc.array(fc.oneof(fc.constant(1), fc.constant(1), fc.integer({ min: -200, max: 200 }))),
      (start, steps) => {
        const r = new SequenceReservation(null);
        let seq = start;
        for (const d of steps) {
          seq = (seq + d) & 0xffff;
          const w = r.toPersist(seq);
          if (w !== null) r.committed(w);
          const ahead = (r.reserved! - seq) & 0xffff;
          assert.ok(ahead <= SEQUENCE_RESERVE, `seq ${seq} reserved ${r.reserved}`);
        }
      },
    ),
  );
});

Deno.test("storedSequence: the state file's sequence, or null for anything else", () => {
  assert.equal(storedSequence({ sequence: 70000 }), 70000 & 0xffff);
  assert.equal(storedSequence({ sequence: 5 }), 5);
  for (const bad of [undefined, null, [], "5", { sequence: "5" }, { sequence: 1.5 }, { x: 1 }]) {
    assert.equal(storedSequence(bad), null, JSON.stringify(bad));
  }
  assert.equal(storedSequence({ sequence: -1 }), null);
});
