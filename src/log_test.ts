import assert from "node:assert/strict";
import { formatRecord, RateLimiter } from "./log.ts";

Deno.test("rate limiter: N per window per key, suppressed count reported once", () => {
  const rl = new RateLimiter(3, 1000);
  const allowed = Array.from({ length: 10 }, (_, i) => rl.allow("bad-bu", i));
  assert.deepEqual(allowed, [true, true, true, false, false, false, false, false, false, false]);
  assert.equal(rl.allow("other", 5), true, "keys are independent");
  assert.equal(rl.allow("bad-bu", 1000), true, "new window");
  assert.equal(rl.suppressed("bad-bu"), 7);
  assert.equal(rl.suppressed("bad-bu"), 0);
});

Deno.test("log record format is one line with level, category and properties", () => {
  const line = formatRecord({
    category: ["kagemusha", "ha"],
    level: "warning",
    message: ["malformed BU from ", "2001:db8::1"],
    rawMessage: "",
    properties: { field: "checksum" },
    timestamp: 0,
  });
  assert.equal(line, 'WARNING ha: malformed BU from 2001:db8::1 {"field":"checksum"}');
});
