import assert from "node:assert/strict";
import fc from "fast-check";
import { formatIPv6, parseIPv6, tryParseIPv6 } from "../wire/addr.ts";
import { TableReader, TunnelTable, tunnelTableBytes } from "./table.ts";
import { parseIPv6Into } from "../wire/fast_addr.ts";

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

Deno.test("TableReader: lookups by packet bytes see each change at the next lookup", () => {
  const t = new TunnelTable(8);
  t.set(HOA, { outer: COA, vm: 1 });
  const r = new TableReader(t.buffer);
  const pkt = new Uint8Array(40);
  pkt.set(parseIPv6(HOA), 24);
  const s = r.lookup(pkt, 24);
  assert.ok(s >= 0);
  assert.equal(r.vm, 1);
  assert.ok(r.outerIs(parseIPv6(COA), 0));
  assert.ok(!r.outerIs(parseIPv6("2001:db8:3000::4"), 0));
  const out = new Uint8Array(20);
  r.copyOuter(out, 4);
  assert.deepEqual(out.subarray(4), parseIPv6(COA));
  // No refresh step: the reader works on the shared memory.
  t.set(HOA, { outer: "2001:db8:4000::3" });
  // What the last lookup found is a private copy: a later change does not tear it.
  assert.ok(r.outerIs(parseIPv6(COA), 0));
  assert.ok(r.lookup(pkt, 24) >= 0);
  assert.ok(r.outerIs(parseIPv6("2001:db8:4000::3"), 0));
  assert.equal(r.vm, -1);
  t.delete(HOA);
  assert.equal(r.lookup(pkt, 24), -1);
  assert.equal(r.size, 0);
  assert.equal(r.retries, 0); // nothing changed during a lookup
});

Deno.test("TunnelTable: keys and outer addresses as bytes, same entries as text", () => {
  const t = new TunnelTable(8);
  const hoa = parseIPv6(HOA);
  t.set(hoa, { outer: parseIPv6(COA), vm: 3 });
  assert.deepEqual(t.get(HOA), { outer: COA, vm: 3 });
  assert.deepEqual(t.get(hoa), { outer: COA, vm: 3 });
  t.set(HOA, { outer: "2001:db8:4000::3" });
  assert.equal(t.size, 1);
  assert.throws(() => t.set(new Uint8Array(15), { outer: COA }), TypeError);
  assert.equal(t.delete(hoa), true);
  assert.equal(t.size, 0);
});

Deno.test("parseIPv6Into agrees with tryParseIPv6 (valid, mutated and random texts)", () => {
  const out = new Uint8Array(20);
  const check = (text: string) => {
    out.fill(0xee);
    const want = tryParseIPv6(text);
    const ok = parseIPv6Into(text, out, 2);
    assert.equal(ok, want !== null, JSON.stringify(text));
    if (want !== null) assert.deepEqual(out.subarray(2, 18), want, text);
  };
  const bytes = fc.uint8Array({ minLength: 16, maxLength: 16 });
  // Canonical forms, including runs of zeros of every length and position.
  const sparse = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  }).map((g) => new Uint8Array(g.flatMap((x) => [x >> 8, x & 0xff])));
  fc.assert(fc.property(fc.oneof(bytes, sparse), (b) => check(formatIPv6(b))), {
    numRuns: 2000,
  });
  // Non-canonical spellings: full form, leading zeros, upper case, dotted tails.
  fc.assert(
    fc.property(bytes, fc.boolean(), fc.boolean(), (b, upper, dotted) => {
      const groups = Array.from({ length: 8 }, (_, i) => ((b[2 * i] << 8) | b[2 * i + 1]));
      let text = groups.map((g) => g.toString(16).padStart(4, "0")).join(":");
      if (dotted) {
        text = groups.slice(0, 6).map((g) => g.toString(16)).join(":") + ":" +
          Array.from(b.subarray(12)).join(".");
      }
      check(upper ? text.toUpperCase() : text);
    }),
    { numRuns: 1000 },
  );
  // Random strings over the address alphabet (mostly invalid).
  const alphabet = fc.constantFrom(..."0123456789abcdefABCDEFg:.:::% ".split(""));
  fc.assert(
    fc.property(fc.array(alphabet, { maxLength: 46 }).map((a) => a.join("")), check),
    { numRuns: 5000 },
  );
  for (
    const t of [
      "::",
      "::1",
      "1::",
      ":::",
      "1:",
      ":1",
      "1::2::3",
      "1:2:3:4:5:6:7::8",
      "1:2:3:4:5:6:7:8::",
      "::1:2:3:4:5:6:7",
      "::1:2:3:4:5:6:7:8",
      "1:2:3:4:5:6:7:8:9",
      "12345::",
      "::ffff:1.2.3.4",
      "::1.2.3.4",
      "1.2.3.4",
      "1.2.3.4::",
      "::1.2.3.04",
      "::1.2.3.256",
      "::1.2.3",
      "::1.2.3.4.5",
      "1:2:3:4:5:6:1.2.3.4",
      "1:2:3:4:5:6:7:1.2.3.4",
      "fe80::1%eth0",
      "2001:db8::",
      "",
    ]
  ) check(t);
});

Deno.test("TableReader.outerIsKey: a tunnel endpoint that is itself an inner address", () => {
  const t = new TunnelTable(8);
  const other = "2001:db8:2000::11";
  t.set(HOA, { outer: COA });
  t.set(other, { outer: HOA }); // other → HOA, HOA → COA: tunnelling to `other` loops
  const r = new TableReader(t.buffer);
  assert.ok(r.lookup(parseIPv6(HOA), 0) >= 0);
  assert.equal(r.outerIsKey(), false);
  assert.ok(r.lookup(parseIPv6(other), 0) >= 0);
  assert.equal(r.outerIsKey(), true);
  t.delete(HOA);
  assert.ok(r.lookup(parseIPv6(other), 0) >= 0);
  assert.equal(r.outerIsKey(), false);
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
      for (const k of pool) {
        assert.equal(t.get(k)?.outer, model.get(k));
        const s = r.lookup(parseIPv6(k), 0);
        assert.equal(s >= 0, model.has(k));
        if (s >= 0) assert.ok(r.outerIs(parseIPv6(model.get(k)!), 0));
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

Deno.test("TableReader in a Worker: consistent entries while the main thread churns", async () => {
  // Entry i's outer address is 2001 : v v … v (12 bytes of the version v) : the key's last two
  // bytes. A lookup that mixed two states — an outer address torn between two versions, or a
  // slot that a backward-shift delete refilled with another key's entry — shows a mismatch.
  const N = 48;
  const t = new TunnelTable(64);
  const keys = Array.from(
    { length: N },
    (_, i) => parseIPv6(`2001:db8:2000::${(i + 1).toString(16)}`),
  );
  const outer = new Uint8Array(16);
  const code = `
    import { TableReader } from ${JSON.stringify(new URL("./table.ts", import.meta.url).href)};
    import { parseIPv6 } from ${JSON.stringify(new URL("../wire/addr.ts", import.meta.url).href)};
    self.onmessage = (e) => {
      const r = new TableReader(e.data.buffer);
      const stop = new Int32Array(e.data.stop);
      const keys = Array.from({ length: ${N} }, (_, i) => parseIPv6("2001:db8:2000::" + (i + 1).toString(16)));
      let lookups = 0, hits = 0, bad = 0;
      self.postMessage("running");
      while (Atomics.load(stop, 0) === 0) {
        for (let i = 0; i < ${N}; i++) {
          lookups++;
          if (r.lookup(keys[i], 0) < 0) continue;
          hits++;
          const o = r.outer;
          let ok = o[0] === 0x20 && o[1] === 0x01 && o[14] === keys[i][14] && o[15] === keys[i][15];
          for (let k = 3; k < 14; k++) if (o[k] !== o[2]) ok = false;
          if (!ok) bad++;
        }
      }
      self.postMessage({ lookups, hits, bad, retries: r.retries });
    };`;
  const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const w = new Worker(url, { type: "module" });
  const stop = new SharedArrayBuffer(4);
  try {
    let running!: () => void;
    const started = new Promise<void>((r) => running = r);
    const done = new Promise<{ lookups: number; hits: number; bad: number; retries: number }>(
      (resolve) => w.onmessage = (e) => e.data === "running" ? running() : resolve(e.data),
    );
    w.postMessage({ buffer: t.buffer, stop });
    await started;
    // Changes back to back for 300 ms (the Worker reads on its own thread meanwhile).
    const end = performance.now() + 300;
    let v = 0;
    outer[0] = 0x20;
    outer[1] = 0x01;
    while (performance.now() < end) {
      for (let i = 0; i < N; i++) {
        v++;
        if ((v * 7 + i) % 3 === 0) {
          t.delete(keys[i]);
        } else {
          outer.fill(v & 0xff, 2, 14);
          outer[14] = keys[i][14];
          outer[15] = keys[i][15];
          t.set(keys[i], { outer });
        }
      }
    }
    Atomics.store(new Int32Array(stop), 0, 1);
    const r = await done;
    assert.equal(r.bad, 0, JSON.stringify(r));
    assert.ok(r.hits > 1000 && r.retries > 0, JSON.stringify(r));
    console.log(`${v} changes, ${r.lookups} lookups, ${r.retries} retried`);
  } finally {
    w.terminate();
    URL.revokeObjectURL(url);
  }
});
