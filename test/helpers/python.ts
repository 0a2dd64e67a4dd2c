/**
 * Runs a python helper script (Debian's python3, e.g. a scapy oracle) with JSON on stdin and
 * JSON on stdout.
 *
 * @module
 */

import { PYTHON } from "./env.ts";

/**
 * `python3 args…` with `input` as JSON on stdin (nothing when undefined); returns the parsed
 * JSON it prints. A failing script throws `${what} failed: <stderr>`.
 */
export async function runPythonJson<T>(
  args: readonly string[],
  input: unknown,
  what: string,
): Promise<T> {
  const child = new Deno.Command(PYTHON, {
    args: [...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input === undefined ? "" : JSON.stringify(input)));
  await writer.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(`${what} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}
