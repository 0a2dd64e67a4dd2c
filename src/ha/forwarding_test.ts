import assert from "node:assert/strict";
import fc from "fast-check";
import {
  forwardingKey,
  type ForwardingSnapshot,
  parseSnapshot,
  planForwarding,
  type SysctlWrite,
} from "./forwarding.ts";

/** The kernel's rules, as measured (see forwarding.ts): `all` writes default and every device. */
function run(s: ForwardingSnapshot, writes: SysctlWrite[]): ForwardingSnapshot {
  const out = { all: s.all, default: s.default, interfaces: { ...s.interfaces } };
  for (const [key, v] of writes) {
    const dev = key.split("/")[3];
    if (dev === "all") {
      out.all = v;
      out.default = v;
      for (const d of Object.keys(out.interfaces)) out.interfaces[d] = v;
    } else if (dev === "default") out.default = v;
    else {
      assert.ok(dev in out.interfaces, `write to a missing device ${dev}`);
      out.interfaces[dev] = v;
    }
  }
  return out;
}

const plain = (s: ForwardingSnapshot) => JSON.parse(JSON.stringify(s));

const snapshot = fc.record({
  all: fc.constantFrom("0", "1"),
  default: fc.constantFrom("0", "1"),
  interfaces: fc.record({
    lo: fc.constantFrom("0", "1"),
    home0: fc.constantFrom("0", "1"),
    fgn0: fc.constantFrom("0", "1"),
    eth9: fc.constantFrom("0", "1"),
  }),
});

Deno.test("planForwarding: forwarding on, only the home interface changed, undo exact", () => {
  fc.assert(
    fc.property(snapshot, (orig) => {
      const { apply, undo } = planForwarding(orig, orig, "home0");
      const on = run(orig, apply);
      assert.equal(on.all, "1");
      assert.equal(on.interfaces.home0, "1");
      assert.equal(on.default, orig.default);
      for (const d of ["lo", "fgn0", "eth9"]) {
        assert.equal(on.interfaces[d], orig.interfaces[d as keyof typeof orig.interfaces], d);
      }
      assert.deepEqual(plain(run(on, undo)), plain(orig));
    }),
  );
});

Deno.test("planForwarding: after a crash, the saved snapshot is what the undo restores", () => {
  fc.assert(
    fc.property(snapshot, (orig) => {
      const crashed = run(orig, planForwarding(orig, orig, "home0").apply); // left behind
      const { apply, undo } = planForwarding(crashed, orig, "home0");
      assert.deepEqual(apply, [], "nothing left to change");
      assert.deepEqual(plain(run(run(crashed, apply), undo)), plain(orig));
    }),
  );
});

Deno.test("planForwarding: the usual host (all 0) writes all, default and devices back", () => {
  const orig = { all: "0", default: "0", interfaces: { lo: "0", home0: "0", fgn0: "0" } };
  const { apply, undo } = planForwarding(orig, orig, "home0");
  assert.deepEqual(apply, [
    [forwardingKey("all"), "1"],
    [forwardingKey("default"), "0"],
    [forwardingKey("lo"), "0"],
    [forwardingKey("fgn0"), "0"],
  ]);
  assert.deepEqual(undo, [[forwardingKey("all"), "0"]]);
  // a router already: only the home interface
  const router = { all: "1", default: "1", interfaces: { lo: "1", home0: "0" } };
  assert.deepEqual(planForwarding(router, router, "home0"), {
    apply: [[forwardingKey("home0"), "1"]],
    undo: [[forwardingKey("home0"), "0"]],
  });
  // a device that appeared since the snapshot is not written by the undo
  const later = { ...orig, interfaces: { ...orig.interfaces, tun7: "0" } };
  assert.ok(planForwarding(later, orig, "home0").undo.every(([k]) => !k.includes("tun7")));
});

Deno.test("parseSnapshot accepts what the daemon writes, nothing else", () => {
  const s = { all: "0", default: "1", interfaces: { "eth0.100": "1", lo: "0" } };
  assert.deepEqual(parseSnapshot(JSON.parse(JSON.stringify(s))), s);
  assert.equal(parseSnapshot(undefined), null);
  assert.equal(parseSnapshot({ ...s, all: 1 }), null);
  assert.equal(parseSnapshot({ ...s, interfaces: { "../x": "1" } }), null);
});
