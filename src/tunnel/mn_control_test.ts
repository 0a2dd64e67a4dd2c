import assert from "node:assert/strict";
import { parseIPv6 } from "../wire/addr.ts";
import { MnControl, MnControlReader } from "./mn_control.ts";

Deno.test("MnControl: CoA, HA and active flags reach a reader on refresh", () => {
  const c = new MnControl(3);
  const r = new MnControlReader(c.buffer);
  assert.deepEqual(c.state(), { careOf: null, homeAgent: null, active: [false, false, false] });
  assert.equal(r.haveCareOf, false);
  c.setCareOf("2001:db8:3000::3");
  c.setHomeAgent("2001:db8:2000::1");
  c.setActive(2, true);
  assert.equal(r.haveCareOf, false); // a private copy until refresh
  assert.equal(r.refresh(), true);
  assert.equal(r.refresh(), false);
  assert.equal(r.haveCareOf, true);
  assert.equal(r.haveHomeAgent, true);
  assert.deepEqual(r.careOf, parseIPv6("2001:db8:3000::3"));
  assert.deepEqual(r.homeAgent, parseIPv6("2001:db8:2000::1"));
  assert.deepEqual([...r.active], [0, 0, 1]);
  c.setCareOf("::"); // handover in progress: no CoA, nothing tunnelled
  r.refresh();
  assert.equal(r.haveCareOf, false);
  assert.deepEqual(c.state(), {
    careOf: null,
    homeAgent: "2001:db8:2000::1",
    active: [false, false, true],
  });
  assert.throws(() => c.setActive(3, true), RangeError);
  assert.throws(() => c.setCareOf("bogus"), TypeError);
  assert.throws(() => new MnControl(0), RangeError);
});
