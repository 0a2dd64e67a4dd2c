/**
 * A line-per-command control file between a test and its driver processes (the Lab starts
 * them with stdin closed): the test appends JSON lines, the driver executes each once and
 * prints `ACK <id>`.
 *
 * @module
 */

import type { LabProcess } from "../helpers/netns.ts";

/** One command. */
export interface Command {
  id: number;
  cmd: string;
  [k: string]: unknown;
}

/** Driver side: polls `path` every 20 ms and runs new lines through `handle`. */
export function followCommands(path: string, handle: (c: Command) => void): { stop(): void } {
  let done = 0;
  const timer = setInterval(() => {
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch {
      return;
    }
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    for (; done < lines.length; done++) {
      const c = JSON.parse(lines[done]) as Command;
      try {
        handle(c);
        console.log(`ACK ${c.id}`);
      } catch (e) {
        console.log(`NACK ${c.id} ${e}`);
      }
    }
  }, 20);
  return { stop: () => clearInterval(timer) };
}

let nextId = 1;

/** Test side: appends a command for `proc` and waits for its ACK. */
export async function command(
  proc: LabProcess,
  path: string,
  cmd: Omit<Command, "id">,
): Promise<number> {
  const id = nextId++;
  await Deno.writeTextFile(path, JSON.stringify({ ...cmd, id }) + "\n", { append: true });
  await proc.waitFor(new RegExp(`^N?ACK ${id}\\b`, "m"));
  if (new RegExp(`^NACK ${id}\\b`, "m").test(proc.stdout)) {
    throw new Error(`command ${JSON.stringify(cmd)} failed: ${proc.stdout}`);
  }
  return id;
}

/** Test side: the driver's counters now. */
export async function readCounters(
  proc: LabProcess,
  path: string,
): Promise<Record<string, number>> {
  const id = await command(proc, path, { cmd: "counters" });
  const m = proc.stdout.match(new RegExp(`^COUNTERS ${id} (.*)$`, "m"));
  if (!m) throw new Error(`no counters in ${proc.stdout}`);
  return JSON.parse(m[1]);
}

/** A temporary directory for control files, removed on dispose (also when a test fails). */
export class TempDir implements AsyncDisposable {
  private constructor(readonly path: string) {}

  /** Creates one under the system temp dir. */
  static async create(): Promise<TempDir> {
    return new TempDir(await Deno.makeTempDir({ prefix: "kgm-tunnel-" }));
  }

  /** A path inside the directory. */
  file(name: string): string {
    return `${this.path}/${name}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.path, { recursive: true }).catch(() => {});
  }
}
