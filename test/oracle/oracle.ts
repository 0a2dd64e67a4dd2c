/**
 * Helpers for the oracle tests: run tshark on packets and flatten its JSON
 * dissection; run the scapy oracle script with Debian's python3.
 *
 * @module
 */

import { IN_CI, needs, PYTHON } from "../helpers/env.ts";
import { runPythonJson } from "../helpers/python.ts";
import { LINKTYPE, writePcap } from "./pcap.ts";

/** Path of the python side of the scapy oracle. */
export const SCAPY_ORACLE = new URL("./scapy_oracle.py", import.meta.url).pathname;

/** One packet as tshark dissected it. */
export interface TsharkPacket {
  /** Every field name → all its values, in dissection order (nested trees flattened). */
  fields: Map<string, string[]>;
  /** `_ws.expert.message` texts (empty when tshark had nothing to say). */
  expert: string[];
  /** True when tshark added a `_ws.malformed` item. */
  malformed: boolean;
  /** `frame.protocols`, e.g. "eth:ethertype:ipv6:ipv6.dstopts:mipv6". */
  protocols: string;
}

function flatten(node: unknown, into: Map<string, string[]>): void {
  if (node === null || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (typeof v === "string") {
        const list = into.get(key);
        if (list) list.push(v);
        else into.set(key, [v]);
      } else {
        if (v !== null && typeof v === "object") {
          // A subtree: remember that it was there (e.g. "_ws.malformed", "_ws.expert").
          const list = into.get(key);
          if (list) list.push("");
          else into.set(key, [""]);
        }
        flatten(v, into);
      }
    }
  }
}

/**
 * Writes `packets` into one pcap (in a temp dir removed afterwards) and returns
 * tshark's dissection of each (`tshark -n -T json --no-duplicate-keys`, so a
 * repeated field becomes an array instead of a lost duplicate key).
 */
export async function tsharkDissect(
  packets: Uint8Array[],
  opts: { linktype?: number; tsharkArgs?: string[] } = {},
): Promise<TsharkPacket[]> {
  const dir = await Deno.makeTempDir({ prefix: "kagemusha-oracle-" });
  try {
    const file = `${dir}/packets.pcap`;
    await writePcap(file, packets, opts.linktype ?? LINKTYPE.ETHERNET);
    const out = await new Deno.Command("tshark", {
      args: ["-n", "-r", file, "-T", "json", "--no-duplicate-keys", ...(opts.tsharkArgs ?? [])],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(`tshark failed (${out.code}): ${stderr}`);
    const docs = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      _source: { layers: unknown };
    }[];
    if (docs.length !== packets.length) {
      throw new Error(`tshark dissected ${docs.length} of ${packets.length} packets: ${stderr}`);
    }
    return docs.map((d) => {
      const fields = new Map<string, string[]>();
      flatten(d._source.layers, fields);
      return {
        fields,
        expert: fields.get("_ws.expert.message") ?? [],
        malformed: fields.has("_ws.malformed"),
        protocols: fields.get("frame.protocols")?.[0] ?? "",
      };
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

let scapyChecked: string | null | undefined;

/** Probes (once) whether /usr/bin/python3 can import scapy; returns its version or null. */
export function scapyVersion(): string | null {
  if (scapyChecked === undefined) {
    const r = new Deno.Command(PYTHON, {
      args: [SCAPY_ORACLE, "check"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    scapyChecked = r.success
      ? (JSON.parse(new TextDecoder().decode(r.stdout)) as { scapy: string }).scapy
      : null;
  }
  return scapyChecked;
}

/**
 * What to pass as `ignore:` for a test that needs `tools` plus Debian's python3
 * with scapy importable. Under CI=true a missing piece throws (never a skip).
 */
export function needsScapy(tools: string[] = []): boolean {
  if (needs([...tools, PYTHON])) return true;
  if (scapyVersion() !== null) return false;
  const msg = `${PYTHON} cannot "import scapy" (install python3-scapy)`;
  if (IN_CI) throw new Error(`${msg} (CI=true: refusing to skip)`);
  console.warn(`${msg}: test ignored`);
  return true;
}

/** Runs `scapy_oracle.py <mode>` with `input` as JSON on stdin; returns its JSON output. */
export function runScapyOracle<T>(mode: "build" | "parse", input?: unknown): Promise<T> {
  return runPythonJson<T>([SCAPY_ORACLE, mode], input, `scapy oracle ${mode}`);
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes of a hex string. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) throw new TypeError(`bad hex ${hex}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * A JSON-comparable copy of a Repr: Uint8Array → hex string, undefined members
 * dropped (so deepEqual with python's JSON works).
 */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return toHex(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}
