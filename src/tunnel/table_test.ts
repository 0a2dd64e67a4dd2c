import assert from "node:assert/strict";
import fc from "fast-check";
import { parseIPv6 } from "../wire/addr.ts";
import { TableReader, TunnelTable, tunnelTableBytes } from "./table.ts";

const HOA = "2001:db8:2000::10";
const COA = "2001:db8:3000::3";

Deno.test("TunnelTable: set, get, replace, delete, size", () => {
  const t = new TunnelTable(4);
  assert.equal(t.size, 0);
  assert.equal(t.get(HOA), undefined);
  t.set(HOA, { outer: COA });
  assert.deepEqual(t.get(HOA), { outer: COA });
  assert.equal(t.size, 1);
  // Text forms are canonicalised: the same address in another spelling is the same key.
  t.set("2001:0db8:2000:0:0:0:0:0010", { outer: "2001:db8:4000::3", vm: 2 });
  assert.deepEqual(t.get(HOA), { outer: "2001:db8:4000::3", vm: 2 });
  assert.equal(t.size, 1);
  assert.equal(t.delete(HOA), true);
  assert.equal(t.delete(HOA), false);
  assert.equal(t.get(HOA), undefined);
  assert.equal(t.size, 0);
});

Deno.test("TunnelTable: generation is even at rest and moves on every change", () => {
  const t = new TunnelTable(4);
  const g0 = t.generation;
  assert.equal(g0 % 2, 0);
  t.set(HOA, { outer: COA });
  const g1 = t.generation;
  assert.equal(g1 % 2, 0);
  assert.ok(g1 > g0);
  t.delete("2001:db8:2000::99"); // absent: no change
  assert.equal(t.generation, g1);
  t.delete(HOA);
  assert.ok(t.generation > g1);
  assert.equal(t.generation % 2, 0);
});

Deno.test("TunnelTable: capacity is enforced, replacing at capacity is allowed", () => {
  const t = new TunnelTable(3);
  for (let i = 1; i <= 3; i++) t.set(`2001:db8::${i}`, { outer: COA });
  assert.throws(() => t.set("2001:db8::4", { outer: COA }), RangeError);
  t.set("2001:db8::2", { outer: "2001:db8:4000::3" });
  assert.equal(t.size, 3);
  assert.throws(() => new TunnelTable(0), RangeError);
  assert.throws(() => t.set("not-an-address", { outer: COA }), TypeError);
  assert.throws(() => t.set("2001:db8::5", { outer: "nope" }), TypeError);
});

Deno.test("TunnelTable: a second view over the buffer sees the same entries", () => {
  const t = new TunnelTable(16);
  t.set(HOA, { outer: COA, vm: 0 });
  const u = new TunnelTable(16, t.buffer);
  assert.deepEqual(u.get(HOA), { outer: COA, vm: 0 });
  assert.equal(t.buffer.byteLength, tunnelTableBytes(16));
  assert.throws(() => new TunnelTable(8, t.buffer), TypeError);
});

Deno.test("TableReader: lookups by packet bytes, refreshed on generation change only", () => {
  const t = new TunnelTable(8);
  t.set(HOA, { outer: COA, vm: 1 });
  const r = new TableReader(t.buffer);
  const pkt = new Uint8Array(40);
  pkt.set(parseIPv6(HOA), 24);
  const s = r.lookup(pkt, 24);
  assert.ok(s >= 0);
  assert.equal(r.vm(s), 1);
  assert.ok(r.outerIs(s, parseIPv6(COA), 0));
  assert.ok(!r.outerIs(s, parseIPv6("2001:db8:3000::4"), 0));
  const out = new Uint8Array(20);
  r.copyOuter(s, out, 4);
  assert.deepEqual(out.subarray(4), parseIPv6(COA));
  assert.equal(r.refresh(), false);
  t.delete(HOA);
  // Not visible until refresh: the reader works on its own copy.
  assert.ok(r.lookup(pkt, 24) >= 0);
  assert.equal(r.refresh(), true);
  assert.equal(r.lookup(pkt, 24), -1);
  assert.equal(r.size, 0);
});

Deno.test("TableReader.outerIsKey: a tunnel endpoint that is itself an inner address", () => {
  const t = new TunnelTable(8);
  const other = "2001:db8:2000::11";
  t.set(HOA, { outer: COA });
  t.set(other, { outer: HOA }); // other → HOA, HOA → COA: tunnelling to `other` loops
  const r = new TableReader(t.buffer);
  assert.equal(r.outerIsKey(r.lookup(parseIPv6(HOA), 0)), false);
  assert.equal(r.outerIsKey(r.lookup(parseIPv6(other), 0)), true);
  t.delete(HOA);
  r.refresh();
  assert.equal(r.outerIsKey(r.lookup(parseIPv6(other), 0)), false);
});

Deno.test("TunnelTable: random operations agree with a Map (collisions, backward-shift delete)", () => {
  // 12 addresses in a 6-entry table (16 slots): many probe chains wrap and collide.
  const pool = Array.from({ length: 12 }, (_, i) => `2001:db8:2000::${(i * 37 + 5).toString(16)}`);
  const op = fc.record({
    del: fc.boolean(),
    key: fc.integer({ min: 0, max: pool.length - 1 }),
    outer: fc.integer({ min: 1, max: 0xffff }),
  });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const t = new TunnelTable(6);
      const r = new TableReader(t.buffer);
      const model = new Map<string, string>();
      for (const o of ops) {
        const k = pool[o.key];
        if (o.del) {
          assert.equal(t.delete(k), model.delete(k));
        } else {
          const outer = `2001:db8:3000::${o.outer.toString(16)}`;
          if (!model.has(k) && model.size >= 6) {
            assert.throws(() => t.set(k, { outer }), RangeError);
          } else {
            t.set(k, { outer });
            model.set(k, outer);
          }
        }
        assert.equal(t.size, model.size);
      }
      r.refresh();
      for (const k of pool) {
        assert.equal(t.get(k)?.outer, model.get(k));
        const s = r.lookup(parseIPv6(k), 0);
        assert.equal(s >= 0, model.has(k));
        if (s >= 0) assert.ok(r.outerIs(s, parseIPv6(model.get(k)!), 0));
      }
      assert.deepEqual(
        new Map(t.entries().map(([k, e]) => [k, e.outer])),
        model,
      );
    }),
    { numRuns: 300 },
  );
});

Deno.test("TunnelTable: a Worker sees changes made after it attached", async () => {
  const t = new TunnelTable(8);
  t.set(HOA, { outer: COA });
  const code = `
    import { TableReader } from ${JSON.stringify(new URL("./table.ts", import.meta.url).href)};
    import { parseIPv6 } from ${JSON.stringify(new URL("../wire/addr.ts", import.meta.url).href)};
    let reader;
    self.onmessage = (e) => {
      if (e.data.buffer) reader = new TableReader(e.data.buffer);
      reader.refresh();
      const s = reader.lookup(parseIPv6(e.data.ask), 0);
      self.postMessage(s < 0 ? null : s);
    };`;
  const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const w = new Worker(url, { type: "module" });
  const ask = (m: unknown) =>
    new Promise<number | null>((resolve) => {
      w.onmessage = (e) => resolve(e.data);
      w.postMessage(m);
    });
  try {
    assert.notEqual(await ask({ buffer: t.buffer, ask: HOA }), null);
    assert.equal(await ask({ ask: "2001:db8:2000::11" }), null);
    t.set("2001:db8:2000::11", { outer: COA });
    t.delete(HOA);
    assert.notEqual(await ask({ ask: "2001:db8:2000::11" }), null);
    assert.equal(await ask({ ask: HOA }), null);
  } finally {
    w.terminate();
    URL.revokeObjectURL(url);
  }
});
