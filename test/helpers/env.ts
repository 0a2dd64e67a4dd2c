/**
 * What a test needs from the machine. Under CI=true a missing tool or missing
 * root is a failure, never a skip; on a developer machine the test is marked
 * ignored (reported as such, not as passed).
 *
 * @module
 */

const found = new Map<string, boolean>();

/** True when `tool` is on PATH (or is an absolute path that exists). */
export function hasTool(tool: string): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    const r = new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
      .outputSync();
    ok = r.success;
    found.set(tool, ok);
  }
  return ok;
}

/** True when running as root (uid 0). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** True when CI=true: nothing may be skipped. */
export const IN_CI = Deno.env.get("CI") === "true";

/**
 * Returns what to pass as `ignore` to `Deno.test` for a test needing `tools`
 * (and root when `root` is set). Under CI it throws instead, so a missing
 * prerequisite fails the run loudly.
 */
export function needs(tools: string[], opts: { root?: boolean } = {}): boolean {
  const missing = tools.filter((t) => !hasTool(t));
  if (opts.root && !isRoot()) missing.push("root privileges");
  if (missing.length === 0) return false;
  const msg = `test prerequisites missing: ${missing.join(", ")}`;
  if (IN_CI) throw new Error(`${msg} (CI=true: refusing to skip)`);
  console.warn(`${msg}: test ignored`);
  return true;
}

/** The interpreter the scapy oracle runs with (Debian's python3-scapy). */
export const PYTHON = "/usr/bin/python3";
