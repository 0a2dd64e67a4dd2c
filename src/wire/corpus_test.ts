import assert from "node:assert/strict";
import { parseEthernet } from "./ethernet.ts";
import { parseDestOpts, parseRoutingHeader, walkExtensionHeaders } from "./ext_headers.ts";
import { parseIcmpv6 } from "./icmpv6.ts";
import { parseIpv6 } from "./ipv6.ts";
import { parseMobility } from "./mobility.ts";
import { parsePacket } from "./packet.ts";
import type { Parsed } from "./result.ts";
import { CORPUS_DIR, parseNoThrow } from "./test_util.ts";

const CHECK = { src: "2001:db8:2000::10", dst: "2001:db8:2000::1" };

/** The parsers each corpus directory is replayed through (file = input bytes). */
const PARSERS: Record<string, ((b: Uint8Array) => Parsed<unknown>)[]> = {
  ethernet: [parseEthernet],
  ipv6: [parseIpv6],
  dest_opts: [parseDestOpts],
  routing: [parseRoutingHeader],
  // First octet: the Next Header naming the first extension header.
  ext_chain: [(b) => walkExtensionHeaders(b.subarray(1), b[0] ?? 0)],
  mobility: [parseMobility, (b) => parseMobility(b, CHECK)],
  icmpv6: [parseIcmpv6, (b) => parseIcmpv6(b, CHECK)],
  packet: [parsePacket],
};

Deno.test("corpus: every file under test/testdata/wire/ parses to a value, never a throw", () => {
  let files = 0;
  for (const dir of Deno.readDirSync(CORPUS_DIR)) {
    assert.ok(dir.isDirectory, `unexpected file ${dir.name}`);
    const parsers = PARSERS[dir.name];
    assert.ok(parsers, `no parser for corpus directory ${dir.name}`);
    for (const f of Deno.readDirSync(new URL(`${dir.name}/`, CORPUS_DIR))) {
      const bytes = Deno.readFileSync(new URL(`${dir.name}/${f.name}`, CORPUS_DIR));
      for (const p of parsers) parseNoThrow(dir.name, p, bytes);
      files++;
    }
  }
  assert.ok(files >= Object.keys(PARSERS).length, `only ${files} corpus files`);
});
