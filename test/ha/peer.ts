/**
 * Drives `scapy_peer.py` (an independent MIPv6 peer in Python/scapy) inside a lab namespace:
 * one JSON request per line on its stdin, one JSON answer per line on its stdout.
 *
 * @module
 */

import { PYTHON } from "../helpers/env.ts";
import type { Netns } from "../helpers/netns.ts";

const SCRIPT = new URL("./scapy_peer.py", import.meta.url).pathname;

/** A running scapy peer; requests are answered in order. */
export class ScapyPeer implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #queue: Promise<unknown> = Promise.resolve();
  #stderr = "";
  #stderrDone: Promise<void>;

  private constructor(readonly ns: Netns, child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = lines(child.stdout)[Symbol.asyncIterator]();
    this.#stderrDone = (async () => {
      const dec = new TextDecoder();
      for await (const c of child.stderr) this.#stderr += dec.decode(c, { stream: true });
    })();
  }

  /** Starts the peer in `ns` and waits until scapy is loaded. */
  static async start(ns: Netns): Promise<ScapyPeer> {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", ns.name, PYTHON, "-u", SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const p = new ScapyPeer(ns, child);
    const first = await p.#next(30_000);
    if (!first?.ready) throw new Error(`scapy peer in ${ns.name} did not start: ${p.#stderr}`);
    return p;
  }

  async #next(ms: number): Promise<Record<string, unknown> | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(
        () =>
          rej(new Error(`scapy peer in ${this.ns.name}: no answer in ${ms} ms\n${this.#stderr}`)),
        ms,
      );
    });
    try {
      const r = await Promise.race([this.#lines.next(), timeout]);
      if (r.done) throw new Error(`scapy peer in ${this.ns.name} exited:\n${this.#stderr}`);
      return JSON.parse(r.value);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `{cmd, ...args}`; resolves with the result, throws the peer's error. */
  request<T = Record<string, unknown>>(
    cmd: string,
    args: Record<string, unknown> = {},
    ms = 30_000,
  ): Promise<T> {
    const run = async () => {
      await this.#writer.write(new TextEncoder().encode(JSON.stringify({ cmd, ...args }) + "\n"));
      const r = await this.#next(ms);
      if (!r?.ok) throw new Error(`scapy peer ${cmd}: ${r?.error}\n${this.#stderr}`);
      return r.result as T;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Stops the peer. Idempotent. */
  async close(): Promise<void> {
    try {
      await this.#writer.close();
    } catch { /* already closed */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 2000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#stderrDone;
    try {
      await this.#lines.return?.();
    } catch { /* ignore */ }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}
