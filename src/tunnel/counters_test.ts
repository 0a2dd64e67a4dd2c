import assert from "node:assert/strict";
import { CounterBatch, DATAPATH_COUNTERS, SharedCounters } from "./counters.ts";

Deno.test("SharedCounters: named slots, add, snapshot, reset", () => {
  const c = new SharedCounters();
  assert.deepEqual(c.names, [...DATAPATH_COUNTERS]);
  c.add("tunnel_tx_packets");
  c.add("tunnel_tx_bytes", 1400);
  c.add("tunnel_tx_bytes", 2n ** 40n);
  const s = c.snapshot();
  assert.equal(s.tunnel_tx_packets, 1);
  assert.equal(s.tunnel_tx_bytes, 1400 + 2 ** 40);
  assert.equal(s.tunnel_spoofed, 0);
  assert.equal(Object.keys(s).length, DATAPATH_COUNTERS.length);
  assert.throws(() => c.add("no_such_counter"), RangeError);
  c.reset();
  assert.equal(c.get("tunnel_tx_bytes"), 0);
});

Deno.test("SharedCounters: custom names, attach shares memory, bad buffers refused", () => {
  const c = new SharedCounters(["a", "b"]);
  const d = SharedCounters.attach(c.share());
  d.add("b", 5);
  assert.deepEqual(c.snapshot(), { a: 0, b: 5 });
  assert.throws(() => new SharedCounters(["a", "a"]), TypeError);
  assert.throws(() => new SharedCounters(["a", "b", "c"], c.buffer), TypeError);
});

Deno.test("CounterBatch: nothing visible until flush", () => {
  const c = new SharedCounters(["x", "y"]);
  const b = new CounterBatch(c);
  const y = b.slot("y");
  b.add(y, 3);
  b.add(y, 4);
  assert.equal(c.get("y"), 0);
  b.flush();
  assert.equal(c.get("y"), 7);
  b.flush();
  assert.equal(c.get("y"), 7);
});

Deno.test("SharedCounters: Workers add concurrently, the main thread reads the sum", async () => {
  const c = new SharedCounters(["n"]);
  const code = `
    import { SharedCounters, CounterBatch } from ${
    JSON.stringify(new URL("./counters.ts", import.meta.url).href)
  };
    self.onmessage = (e) => {
      const b = new CounterBatch(SharedCounters.attach(e.data));
      for (let i = 0; i < 100000; i++) { b.add(0, 1); if ((i & 63) === 63) b.flush(); }
      b.flush();
      self.postMessage("done");
    };`;
  const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const workers = [0, 1, 2].map(() => new Worker(url, { type: "module" }));
  try {
    await Promise.all(workers.map((w) =>
      new Promise<void>((resolve) => {
        w.onmessage = () => resolve();
        w.postMessage(c.share());
      })
    ));
    assert.equal(c.get("n"), 300000);
  } finally {
    workers.forEach((w) => w.terminate());
    URL.revokeObjectURL(url);
  }
});
