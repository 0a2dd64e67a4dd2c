import assert from "node:assert/strict";
import fc from "fast-check";
import { RA_CONSTANTS, RouterAdvertiser } from "./router_advertiser.ts";

const MIN = 200_000;
const MAX = 600_000;

/** Runs the schedule on a fake clock, sending whenever due; returns the send times. */
function simulate(ra: RouterAdvertiser, from: number, until: number, step = 1000): number[] {
  const sent: number[] = [];
  for (let now = from; now <= until; now += step) {
    if (ra.due(now)) {
      sent.push(now);
      ra.sent(now);
    }
  }
  return sent;
}

Deno.test("nothing is due before start or after stop", () => {
  const ra = new RouterAdvertiser({ minIntervalMs: MIN, maxIntervalMs: MAX });
  assert.equal(ra.nextDeadline(), null);
  assert.equal(ra.due(1e12), false);
  ra.start(0);
  assert.ok(ra.running);
  assert.ok(ra.nextDeadline()! <= RA_CONSTANTS.maxInitialIntervalMs);
  ra.stop();
  assert.equal(ra.running, false);
  assert.equal(ra.nextDeadline(), null);
  assert.deepEqual(simulate(ra, 0, 3_600_000), []);
  // A handover RA reported while stopped does not restart the schedule.
  ra.sent(5);
  assert.equal(ra.nextDeadline(), null);
});

Deno.test("first three RAs within 16 s of each other, then MinRtrAdvInterval..MaxRtrAdvInterval", () => {
  // random() = 0.99: every interval near the maximum, so the initial cap is visible.
  const ra = new RouterAdvertiser({ minIntervalMs: MIN, maxIntervalMs: MAX, random: () => 0.99 });
  ra.start(0);
  ra.sent(0); // the RA sent at handover
  const sent = simulate(ra, 0, 4 * 3_600_000);
  assert.equal(sent[0], 16_000);
  assert.equal(sent[1], 32_000);
  const gaps = sent.slice(2).map((t, i) => t - sent[i + 1]);
  assert.ok(gaps.length > 10);
  for (const g of gaps) assert.ok(g >= MIN && g <= MAX + 1000, `gap ${g}`);
  // Intervals are drawn from [min, max]: 200 s + 0.99 × 400 s = 596 s.
  assert.equal(gaps[0], 596_000);
});

Deno.test("the guest's default route (lifetime 3 × MaxRtrAdvInterval) never expires while away", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 0.999999, noNaN: true }), { minLength: 1 }),
      (rs) => {
        let i = 0;
        const ra = new RouterAdvertiser({
          minIntervalMs: MIN,
          maxIntervalMs: MAX,
          random: () => rs[i++ % rs.length],
        });
        ra.start(1000);
        const sent = [1000];
        ra.sent(1000);
        sent.push(...simulate(ra, 1000, 1000 + 24 * 3_600_000, 500));
        const lifetime = 3 * MAX;
        for (let k = 1; k < sent.length; k++) {
          const gap = sent[k] - sent[k - 1];
          assert.ok(gap >= Math.min(MIN, RA_CONSTANTS.maxInitialIntervalMs) && gap <= MAX + 500);
          assert.ok(gap < lifetime);
        }
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("a multicast RA sent outside the schedule resets the timer; restart caps again", () => {
  const ra = new RouterAdvertiser({ minIntervalMs: MIN, maxIntervalMs: MAX, random: () => 0.5 });
  ra.start(0);
  for (let t = 0; t < 3; t++) ra.sent(t);
  assert.equal(ra.nextDeadline(), 2 + 400_000);
  ra.sent(100_000); // e.g. a handover RA
  assert.equal(ra.nextDeadline(), 100_000 + 400_000);
  ra.start(150_000); // idempotent while running
  assert.equal(ra.nextDeadline(), 500_000);
  ra.stop();
  ra.start(1_000_000); // a new stay away: the initial cap applies again
  assert.equal(ra.nextDeadline(), 1_000_000 + 16_000);
  assert.throws(() => new RouterAdvertiser({ minIntervalMs: 0, maxIntervalMs: 1 }), RangeError);
  assert.throws(() => new RouterAdvertiser({ minIntervalMs: 5, maxIntervalMs: 4 }), RangeError);
});
