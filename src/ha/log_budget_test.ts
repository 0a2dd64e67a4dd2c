import assert from "node:assert/strict";
import { LogBudget } from "./log_budget.ts";

Deno.test("LogBudget: a few lines per kind and window, the rest counted for the summary", () => {
  const b = new LogBudget(2, 1000);
  assert.deepEqual([1, 2, 3, 4].map((t) => b.take("registered", t)), [true, true, false, false]);
  assert.equal(b.take("moved", 5), true, "kinds have their own budget");
  assert.equal(b.holding, true);
  assert.equal(b.windowEnd, 1001);
  assert.deepEqual(b.flush(), { registered: 2 });
  assert.equal(b.holding, false);
  assert.deepEqual(b.flush(), {});
  // the next window starts fresh
  assert.equal(b.take("registered", 1001), true);
  assert.equal(b.take("registered", 1002), true);
  assert.equal(b.take("registered", 1003), false);
  assert.deepEqual(b.flush(), { registered: 1 });
});
