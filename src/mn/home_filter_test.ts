import assert from "node:assert/strict";
import fc from "fast-check";
import { BPF_INSN_LEN, BPF_OP, homeLinkFilter } from "./home_filter.ts";
import { buildEthernetFrame, buildMobilityPacket } from "../wire/packet.ts";
import { parseIPv6 } from "../wire/addr.ts";
import { HA, HOA } from "../wire/test_util.ts";

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A classic BPF interpreter for the instructions the filter may use (the kernel's semantics:
 * loads are big-endian, a load past the end of the packet returns 0 = drop).
 */
function runBpf(prog: Uint8Array, pkt: Uint8Array): number {
  const dv = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const n = prog.length / BPF_INSN_LEN;
  let a = 0;
  for (let pc = 0; pc < n; pc++) {
    const code = dv.getUint16(pc * 8, LE);
    const jt = prog[pc * 8 + 2], jf = prog[pc * 8 + 3];
    const k = dv.getUint32(pc * 8 + 4, LE);
    const pv = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
    switch (code) {
      case BPF_OP.LD_W_ABS:
        if (k + 4 > pkt.length) return 0;
        a = pv.getUint32(k);
        break;
      case BPF_OP.LD_H_ABS:
        if (k + 2 > pkt.length) return 0;
        a = pv.getUint16(k);
        break;
      case BPF_OP.LD_B_ABS:
        if (k + 1 > pkt.length) return 0;
        a = pkt[k];
        break;
      case BPF_OP.JEQ_K:
        pc += a === k ? jt : jf;
        break;
      case BPF_OP.RET_K:
        return k;
      default:
        throw new Error(`opcode ${code} at ${pc}`);
    }
    assert.ok(pc + 1 < n, "jump past the end");
  }
  throw new Error("fell off the end");
}

function ba(src: string, dst: string): Uint8Array {
  const ip = buildMobilityPacket({
    src,
    dst,
    mh: {
      type: "ba",
      status: 0,
      flags: { key: false, mobileRouter: false, proxy: false },
      sequence: 1,
      lifetime: 0,
      options: [],
    },
  });
  return buildEthernetFrame({ dst: "52:54:00:00:00:10", src: "02:00:00:00:00:99" }, ip);
}

Deno.test("homeLinkFilter: accepts MH and routing headers from the HA, drops the rest", () => {
  const prog = homeLinkFilter(parseIPv6(HA));
  assert.equal(prog.length % BPF_INSN_LEN, 0);
  const f = ba(HA, HOA);
  assert.ok(runBpf(prog, f) > 0);
  const rh = f.slice();
  rh[20] = 43;
  assert.ok(runBpf(prog, rh) > 0);
  const esp = f.slice();
  esp[20] = 50;
  assert.ok(runBpf(prog, esp) > 0, "ESP (a protected BA, RFC 4877 §4) passes");
  const udp = f.slice();
  udp[20] = 17;
  assert.equal(runBpf(prog, udp), 0);
  assert.equal(runBpf(prog, ba("2001:db8:2000::2", HOA)), 0);
  // A source differing in the last byte only: every word is compared.
  assert.equal(runBpf(prog, ba("2001:db8:2000::3", HOA)), 0);
  assert.equal(runBpf(prog, ba("2001:db8:2001::1", HOA)), 0);
  const arp = f.slice();
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(runBpf(prog, arp), 0);
  assert.equal(runBpf(prog, f.subarray(0, 30)), 0);
  assert.throws(() => homeLinkFilter(new Uint8Array(4)), TypeError);
});

Deno.test("homeLinkFilter: fast-check, accept iff IPv6 + source HA + next header 135/43/50", () => {
  const haBytes = parseIPv6(HA);
  const prog = homeLinkFilter(haBytes);
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 60 }),
      fc.boolean(),
      fc.constantFrom(135, 43, 50, 17, 58, 60),
      (bytes, fromHa, nh) => {
        const f = new Uint8Array(Math.max(bytes.length, 54));
        f.set(bytes);
        if (fromHa) f.set(haBytes, 22);
        f[12] = 0x86;
        f[13] = 0xdd;
        f[20] = nh;
        const cut = f.subarray(0, bytes.length % 2 === 0 ? bytes.length : 54);
        // The last load reads bytes 34..37: a shorter frame fails a load, which drops it.
        const want = cut.length >= 38 && (nh === 135 || nh === 43 || nh === 50) &&
          cut.subarray(22, 38).every((b, i) => b === haBytes[i]);
        assert.equal(runBpf(prog, cut) > 0, want);
      },
    ),
  );
});
