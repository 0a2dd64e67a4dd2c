/**
 * Human-readable rendering of a daemon's `status` reply.
 *
 * @module
 */

interface StatusLike {
  role?: string;
  bindings?: Record<string, unknown>[];
  counters?: Record<string, number>;
}

/** A table of bindings followed by non-zero counters. */
export function formatStatus(status: unknown): string {
  const s = (status ?? {}) as StatusLike;
  const lines = [`role: ${s.role ?? "?"}`];
  const rows = s.bindings ?? [];
  if (rows.length === 0) lines.push("bindings: none");
  else {
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    const cell = (v: unknown) =>
      v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v);
    const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
    lines.push(cols.map((c, i) => c.padEnd(width[i])).join("  "));
    for (const r of rows) lines.push(cols.map((c, i) => cell(r[c]).padEnd(width[i])).join("  "));
  }
  const counters = Object.entries(s.counters ?? {}).filter(([, v]) => v !== 0);
  if (counters.length) {
    lines.push("counters:");
    for (const [k, v] of counters.sort()) lines.push(`  ${k} ${v}`);
  }
  return lines.join("\n");
}
