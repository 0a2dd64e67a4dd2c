/// <reference lib="deno.worker" />
/**
 * Worker for ffi/poll_test.ts: blocks its thread in pollBlocking on the fds it
 * is given, then reports which became ready and after how long.
 */
import { pollBlocking } from "../../ffi/poll.ts";

self.onmessage = (e: MessageEvent<{ fds: number[]; timeoutMs: number }>) => {
  const { fds, timeoutMs } = e.data;
  self.postMessage({ kind: "polling" });
  const t0 = performance.now();
  const ready = pollBlocking(fds, timeoutMs);
  self.postMessage({ kind: "woke", ready, ms: performance.now() - t0 });
};
