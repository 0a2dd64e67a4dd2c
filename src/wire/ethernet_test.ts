import fc from "fast-check";
import assert from "node:assert/strict";
import { ETHERTYPE_IPV6 } from "./addr.ts";
import { emitEthernet, ETHERNET_HEADER_LEN, EthernetFrame, parseEthernet } from "./ethernet.ts";
import { arbMac, emitted, hex, mutated, parseNoThrow, randomBytes, rec } from "./test_util.ts";

// An NS from the VM (52:54:00:00:00:10) to the solicited-node MAC of 2001:db8:2000::1.
const FRAME = hex(`
  33 33 ff 00 00 01   # destination
  52 54 00 00 00 10   # source
  86 dd               # EtherType IPv6
  60 00 00 00         # payload starts
`);

Deno.test("ethernet: golden parse", () => {
  const r = parseEthernet(FRAME);
  assert.ok(r.ok);
  assert.deepEqual(r.value.repr, {
    dst: "33:33:ff:00:00:01",
    src: "52:54:00:00:00:10",
    ethertype: ETHERTYPE_IPV6,
  });
  assert.deepEqual(r.value.payload, hex("60000000"));
  // The payload is a view, not a copy.
  assert.equal(r.value.payload.buffer, FRAME.buffer);
});

Deno.test("ethernet: golden emit and view setters", () => {
  const buf = new Uint8Array(18).fill(0xee);
  const n = emitEthernet(
    { dst: "33:33:ff:00:00:01", src: "52:54:00:00:00:10", ethertype: 0x86dd },
    buf,
  );
  assert.equal(n, ETHERNET_HEADER_LEN);
  assert.deepEqual(buf.subarray(0, 14), FRAME.subarray(0, 14));
  assert.deepEqual(buf.subarray(14), hex("eeeeeeee"), "payload untouched");
  const v = new EthernetFrame(buf);
  v.ethertype = 0x0800;
  assert.equal(buf[12], 0x08);
  assert.equal(v.ethertype, 0x0800);
});

Deno.test("ethernet: truncated and programmer errors", () => {
  assert.deepEqual(parseEthernet(new Uint8Array(13)), {
    ok: false,
    kind: "truncated",
    offset: 0,
    field: "header",
  });
  const repr = { dst: "33:33:00:00:00:01", src: "52:54:00:00:00:10", ethertype: 0x86dd };
  assert.throws(() => emitEthernet(repr, new Uint8Array(13)), RangeError);
  assert.throws(() => emitEthernet({ ...repr, src: "nope" }, new Uint8Array(14)), TypeError);
  assert.throws(
    () => emitEthernet({ ...repr, ethertype: 0x10000 }, new Uint8Array(14)),
    RangeError,
  );
});

const arbRepr = rec({
  dst: arbMac,
  src: arbMac,
  ethertype: fc.integer({ min: 0, max: 0xffff }),
});

Deno.test("ethernet: emit -> parse is identity", () => {
  fc.assert(
    fc.property(arbRepr, (repr) => {
      const b = emitted(repr, () => ETHERNET_HEADER_LEN, emitEthernet);
      const r = parseEthernet(b);
      assert.ok(r.ok);
      assert.deepEqual(r.value.repr, repr);
    }),
    { numRuns: 30_000 },
  );
});

Deno.test("ethernet: random and mutated bytes never throw", () => {
  fc.assert(
    fc.property(randomBytes(40), (b) => void parseNoThrow("ethernet", parseEthernet, b)),
    { numRuns: 40_000 },
  );
  const valid = arbRepr.map((r) => emitted(r, () => ETHERNET_HEADER_LEN, emitEthernet));
  fc.assert(
    fc.property(mutated(valid), (b) => void parseNoThrow("ethernet", parseEthernet, b)),
    { numRuns: 40_000 },
  );
});
