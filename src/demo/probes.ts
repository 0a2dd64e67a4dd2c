/**
 * Traffic probes for the demo and the end-to-end tests: a 10 ms ping whose
 * replies are tracked by sequence number, and a TCP echo conversation that
 * must survive every move.
 *
 * @module
 */
import type { LabProcess, Netns } from "./lab.ts";

/** One reply seen by {@link PingProbe}. */
export interface PingReply {
  seq: number;
  /** Wall-clock time of the reply (ms since the epoch, from ping -D). */
  at: number;
  rttMs: number;
}

/** `ping -D -O -i <interval>` to `target`, replies indexed by sequence number. */
export class PingProbe {
  readonly proc: LabProcess;
  constructor(ns: Netns, target: string, readonly intervalMs = 10, size = 56) {
    this.proc = ns.spawn([
      "ping",
      "-n",
      "-D",
      "-O",
      "-i",
      String(intervalMs / 1000),
      "-W",
      "1",
      "-s",
      String(size),
      target,
    ]);
  }

  /** Every reply so far, in arrival order (duplicates dropped). */
  replies(): PingReply[] {
    const seen = new Set<number>();
    const out: PingReply[] = [];
    const re = /^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+) .*time=([\d.]+) ms/;
    for (const line of this.proc.stdout.split("\n")) {
      const m = re.exec(line);
      if (!m) continue;
      const seq = Number(m[2]);
      if (seen.has(seq)) continue;
      seen.add(seq);
      out.push({ seq, at: Number(m[1]) * 1000, rttMs: Number(m[3]) });
    }
    return out;
  }

  /** Highest sequence number sent so far (from "no answer yet" lines and replies). */
  lastSent(): number {
    let max = 0;
    for (const m of this.proc.stdout.matchAll(/icmp_seq=(\d+)/g)) max = Math.max(max, Number(m[1]));
    return max;
  }

  /** The first reply received at or after wall-clock `t` (ms). */
  firstReplyAfter(t: number): PingReply | undefined {
    return this.replies().find((r) => r.at >= t);
  }

  /**
   * Pings lost across an outage that started at wall-clock `from` and was
   * over by `until`: sequence numbers after the last reply received before
   * `from` and before the first reply received at or after `until` that got
   * no reply at all.
   */
  lostBetween(from: number, until: number): number {
    const rs = this.replies();
    const before = rs.filter((r) => r.at < from);
    const last = before.length ? before[before.length - 1].seq : 0;
    const next = rs.find((r) => r.at >= until);
    const end = next ? next.seq : this.lastSent() + 1;
    const answered = new Set(rs.map((r) => r.seq));
    let lost = 0;
    for (let seq = last + 1; seq < end; seq++) if (!answered.has(seq)) lost++;
    return lost;
  }

  /** Waits until a reply arrives after wall-clock `t`, or throws after `ms`. */
  async waitReplyAfter(t: number, ms = 15_000): Promise<PingReply> {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = this.firstReplyAfter(t);
      if (r) return r;
      if (Date.now() > deadline) {
        throw new Error(
          `no ping reply within ${ms} ms; ping output tail:\n` +
            this.proc.stdout.split("\n").slice(-5).join("\n"),
        );
      }
      await new Promise((res) => setTimeout(res, 10));
    }
  }

  /** Stops ping. */
  async stop(): Promise<void> {
    await this.proc.stop("SIGINT");
  }
}

const TCP_SCRIPT = new URL("./tcp_echo.ts", import.meta.url).pathname;

/**
 * A TCP conversation from `client` to `server`'s `address`:`port`: the client
 * writes a numbered line every `intervalMs` and reads the echo; it prints
 * `ok N` per echo and `error …` (then exits 1) on any reset or timeout.
 */
export class TcpProbe {
  readonly server: LabProcess;
  client?: LabProcess;
  constructor(
    readonly serverNs: Netns,
    readonly clientNs: Netns,
    readonly address: string,
    readonly port = 5001,
  ) {
    this.server = serverNs.spawn([
      Deno.execPath(),
      "run",
      "-A",
      TCP_SCRIPT,
      "server",
      String(port),
    ]);
  }

  /** Starts the client once the server listens. */
  async start(intervalMs = 20): Promise<void> {
    await this.server.waitFor("listening");
    this.client = this.clientNs.spawn([
      Deno.execPath(),
      "run",
      "-A",
      TCP_SCRIPT,
      "client",
      this.address,
      String(this.port),
      String(intervalMs),
    ]);
    await this.client.waitFor(/ok \d+/);
  }

  /** Echoes received so far. */
  echoes(): number {
    const m = [...(this.client?.stdout ?? "").matchAll(/ok (\d+)/g)];
    return m.length ? Number(m[m.length - 1][1]) : 0;
  }

  /** The client's error line, if the connection broke. */
  error(): string | undefined {
    return /error .*/.exec(this.client?.stdout ?? "")?.[0];
  }

  /** Waits for `n` more echoes than now, or throws naming the connection's fate. */
  async waitProgress(n = 5, ms = 15_000): Promise<void> {
    const target = this.echoes() + n;
    const deadline = Date.now() + ms;
    while (this.echoes() < target) {
      const err = this.error();
      if (err) throw new Error(`TCP connection broke: ${err}`);
      if (Date.now() > deadline) throw new Error(`TCP connection stalled at ${this.echoes()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops both ends. */
  async stop(): Promise<void> {
    await this.client?.stop("SIGTERM");
    await this.server.stop("SIGTERM");
  }
}

/**
 * Sends `bytes` of a pseudo-random stream over one TCP connection from
 * `sourceNs` to `sinkNs` (`address`:`port`) and returns what each side
 * counted and hashed; equal hashes mean the stream arrived intact.
 */
export async function bulkTransfer(
  sourceNs: Netns,
  sinkNs: Netns,
  address: string,
  bytes: number,
  port = 5002,
): Promise<{ sent: string; received: string; ms: number }> {
  const sink = sinkNs.spawn([Deno.execPath(), "run", "-A", TCP_SCRIPT, "sink", String(port)]);
  await sink.waitFor("listening");
  const t0 = Date.now();
  const src = await sourceNs.exec([
    Deno.execPath(),
    "run",
    "-A",
    TCP_SCRIPT,
    "source",
    address,
    String(port),
    String(bytes),
  ]);
  await sink.waitFor(/received \d+/, 30_000);
  const ms = Date.now() - t0;
  await sink.stop();
  const sent = /sent (\d+ \w+)/.exec(src.stdout)?.[1] ?? `nothing: ${src.stderr}`;
  const received = /received (\d+ \w+)/.exec(sink.stdout)?.[1] ?? "nothing";
  return { sent, received, ms };
}
