import assert from "node:assert/strict";
import { ErrnoError } from "./libc.ts";
import { EventFd, pollBlocking, Poller, waitReadable } from "./poll.ts";

const NOT_AN_FD = 999_999;

Deno.test("poll: waitReadable does not block the event loop (a timer fires while it waits)", async () => {
  using efd = new EventFd();
  let firedAt = 0;
  const t0 = performance.now();
  const timer = setTimeout(() => firedAt = performance.now(), 30);
  const ready = await waitReadable(efd.fd, 300);
  const t1 = performance.now();
  clearTimeout(timer);
  assert.equal(ready, false);
  assert.ok(t1 - t0 >= 250, `timed out after ${t1 - t0} ms`);
  assert.ok(firedAt > 0, "the timer never fired");
  assert.ok(firedAt - t0 < 200, `timer fired ${firedAt - t0} ms in, after the poll`);
});

Deno.test("poll: waitReadable resolves true when the fd becomes readable", async () => {
  using efd = new EventFd();
  const t0 = performance.now();
  const timer = setTimeout(() => efd.signal(), 50);
  const ready = await waitReadable(efd.fd, 5000);
  clearTimeout(timer);
  assert.equal(ready, true);
  assert.ok(performance.now() - t0 < 2000);
  assert.equal(efd.drain(), 1);
  assert.equal(await waitReadable(efd.fd, 0), false);
});

Deno.test("poll: a bad fd is EBADF everywhere", async () => {
  await assert.rejects(
    () => waitReadable(NOT_AN_FD, 100),
    (e: unknown) =>
      e instanceof ErrnoError && e.code === "EBADF" && /poll\(fd 999999\)/.test(e.message),
  );
  assert.throws(
    () => pollBlocking([NOT_AN_FD], 0),
    (e: unknown) => e instanceof ErrnoError && e.code === "EBADF",
  );
});

Deno.test("poll: pollBlocking and Poller report exactly the ready fds", () => {
  using a = new EventFd();
  using b = new EventFd();
  assert.deepEqual(pollBlocking([a.fd, b.fd], 0), []);
  b.signal();
  assert.deepEqual(pollBlocking([a.fd, b.fd], 1000), [b.fd]);
  const p = new Poller([a.fd, b.fd]);
  a.signal();
  assert.equal(p.wait(1000), 2);
  assert.ok(p.ready(0) && p.ready(1));
  a.drain();
  b.drain();
  assert.equal(p.wait(10), 0);
  assert.ok(!p.ready(0) && !p.ready(1));
});

Deno.test("poll: EventFd counts, drains, closes idempotently, EBADF after close", () => {
  const e = new EventFd();
  e.signal();
  e.signal();
  e.signal();
  assert.equal(e.drain(), 3);
  assert.equal(e.drain(), 0);
  e.close();
  e.close();
  assert.equal(e.fd, -1);
  assert.throws(() => e.signal(), (x: unknown) => x instanceof ErrnoError && x.code === "EBADF");
});

Deno.test("poll: EventFd wakes a Worker blocked in pollBlocking", async () => {
  using data = new EventFd(); // never signaled: stands for an idle data socket
  using wake = new EventFd();
  const worker = new Worker(new URL("../test/ffi/poll_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const messages: { kind: string; ready?: number[]; ms?: number }[] = [];
    let notify = () => {};
    worker.onmessage = (e) => {
      messages.push(e.data);
      notify();
    };
    const next = async (ms: number) => {
      const deadline = Date.now() + ms;
      while (messages.length === 0 && Date.now() < deadline) {
        await new Promise<void>((r) => {
          notify = r;
          setTimeout(r, 20);
        });
      }
      return messages.shift();
    };
    worker.postMessage({ fds: [data.fd, wake.fd], timeoutMs: 20_000 });
    assert.equal((await next(10_000))?.kind, "polling");
    // it stays blocked...
    assert.equal(await next(300), undefined);
    // ...until the main thread signals
    const t0 = performance.now();
    wake.signal();
    const woke = await next(5000);
    assert.ok(woke, "the worker did not wake up");
    assert.equal(woke.kind, "woke");
    assert.deepEqual(woke.ready, [wake.fd]);
    assert.ok(woke.ms! >= 250, `worker returned after ${woke.ms} ms, before the signal`);
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(wake.drain(), 1);
  } finally {
    wake.signal(); // never leave the worker thread blocked in poll
    worker.terminate();
  }
});
