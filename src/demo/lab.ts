/**
 * Network namespaces for the demo, the tests and the benchmark. Every namespace, link and process created
 * through a `Lab` is removed by `lab.close()` (use `await using lab = new Lab()`),
 * also when the test fails. Names carry the test process's pid so parallel
 * runs never collide, and nothing is ever configured outside the lab's own
 * namespaces.
 *
 * @module
 */

let counter = 0;

/** Result of a finished command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` to completion; throws with stderr unless `allowFail`. */
export async function run(
  argv: string[],
  opts: { allowFail?: boolean; stdin?: string } = {},
): Promise<RunResult> {
  const cmd = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (!opts.allowFail && res.code !== 0) {
    throw new Error(`${argv.join(" ")} exited ${res.code}: ${res.stderr.trim()}`);
  }
  return res;
}

/** A process started in a namespace; its output is collected for diagnosis. */
export class LabProcess {
  #out = "";
  #err = "";
  readonly done: Promise<Deno.CommandStatus>;
  #pumps: Promise<void>[] = [];
  constructor(readonly name: string, readonly child: Deno.ChildProcess) {
    this.#pumps.push(this.#pump(child.stdout, (s) => this.#out += s));
    this.#pumps.push(this.#pump(child.stderr, (s) => this.#err += s));
    this.done = child.status;
  }
  async #pump(stream: ReadableStream<Uint8Array>, sink: (s: string) => void) {
    const dec = new TextDecoder();
    for await (const chunk of stream) sink(dec.decode(chunk, { stream: true }));
  }
  /** Everything printed on stdout so far. */
  get stdout(): string {
    return this.#out;
  }
  /** Everything printed on stderr so far. */
  get stderr(): string {
    return this.#err;
  }
  /** Waits until `pattern` shows up in stdout or stderr, or throws after `ms`. */
  async waitFor(pattern: RegExp | string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    const hit = () =>
      typeof pattern === "string"
        ? (this.#out + this.#err).includes(pattern)
        : pattern.test(this.#out + this.#err);
    while (!hit()) {
      if (Date.now() > deadline) {
        throw new Error(
          `${this.name}: ${pattern} not seen in ${ms} ms\nstdout:\n${this.#out}\nstderr:\n${this.#err}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  /** Sends `signal` and waits for exit; returns the exit status. */
  async stop(signal: Deno.Signal = "SIGTERM", ms = 5_000): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, ms);
    const st = await this.done;
    clearTimeout(timer);
    await Promise.all(this.#pumps);
    return st;
  }
}

/** One network namespace of a lab. */
export class Netns {
  constructor(readonly lab: Lab, readonly name: string) {}
  /** Runs a command inside the namespace. */
  exec(argv: string[], opts: { allowFail?: boolean; stdin?: string } = {}): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.name, ...argv], opts);
  }
  /** `ip …` inside the namespace. */
  ip(...args: string[]): Promise<RunResult> {
    return run(["ip", "-n", this.name, ...args]);
  }
  /** Writes a sysctl inside the namespace. */
  sysctl(key: string, value: string | number): Promise<RunResult> {
    return this.exec(["sysctl", "-qw", `${key}=${value}`]);
  }
  /** Starts a long-running process in the namespace; the lab stops it on close. */
  spawn(argv: string[], opts: { env?: Record<string, string> } = {}): LabProcess {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.name, ...argv],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: opts.env,
    }).spawn();
    const p = new LabProcess(`${this.name}:${argv[0]}`, child);
    this.lab.processes.push(p);
    return p;
  }
}

/**
 * A set of namespaces and processes owned by one test. `close()` kills the
 * processes, then deletes the namespaces (which removes every link in them).
 */
export class Lab implements AsyncDisposable {
  readonly namespaces: Netns[] = [];
  readonly processes: LabProcess[] = [];
  readonly id = `k${Deno.pid % 100000}${crypto.randomUUID().slice(0, 4)}x${++counter}`;

  /** Creates namespace `<lab id>-<short>` with loopback up and DAD disabled. */
  async netns(short: string): Promise<Netns> {
    const ns = new Netns(this, `${this.id}-${short}`);
    await run(["ip", "netns", "add", ns.name]);
    this.namespaces.push(ns);
    await ns.ip("link", "set", "lo", "up");
    await ns.sysctl("net.ipv6.conf.all.accept_dad", 0);
    await ns.sysctl("net.ipv6.conf.default.accept_dad", 0);
    return ns;
  }

  /** A veth pair `a`(in `na`) — `b`(in `nb`), both up. */
  async veth(na: Netns, a: string, nb: Netns, b: string): Promise<void> {
    const tmp = `${this.id}v${this.namespaces.length}${counter++}`.slice(0, 15);
    await na.ip("link", "add", a, "type", "veth", "peer", "name", tmp);
    await na.ip("link", "set", tmp, "netns", nb.name);
    await nb.ip("link", "set", tmp, "name", b);
    await na.ip("link", "set", a, "up");
    await nb.ip("link", "set", b, "up");
  }

  /** Stops every process, deletes every namespace. Idempotent. */
  async close(): Promise<void> {
    for (const p of this.processes.splice(0)) await p.stop("SIGKILL", 2000);
    for (const ns of this.namespaces.splice(0)) {
      // kill stragglers still holding the namespace, then delete it
      await run(["ip", "netns", "pids", ns.name], { allowFail: true }).then(async (r) => {
        for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
          await run(["kill", "-9", pid], { allowFail: true });
        }
      });
      await run(["ip", "netns", "del", ns.name], { allowFail: true });
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
