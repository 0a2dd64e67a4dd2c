/**
 * The pseudo router's Router Advertisement options against scapy (not Kagemusha's codecs):
 * the RDNSS option (RFC 8106 §5.1) byte for byte with `ICMPv6NDOptRDNSS`, and whole RAs with
 * per-VM contents dissected by scapy field by field.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { needs, PYTHON } from "../helpers/env.ts";
import {
  buildUnsolicitedRa,
  makePseudoHomeContext,
  type RaOptions,
  writeRdnssOption,
} from "../../src/mn/pseudo_home.ts";
import { formatIPv6, parseIPv6 } from "../../src/wire/addr.ts";

const ignore = needs([PYTHON]);

const SCRIPT = `
import json, sys
from scapy.layers.inet6 import *
from scapy.layers.l2 import Ether
out = []
for c in json.load(sys.stdin):
    if c["kind"] == "rdnss":
        out.append(bytes(ICMPv6NDOptRDNSS(lifetime=c["lifetime"], dns=c["dns"])).hex())
    else:
        p = Ether(bytes.fromhex(c["frame"]))
        ra = p[ICMPv6ND_RA]
        r = {"M": ra.M, "O": ra.O, "lifetime": ra.routerlifetime, "chlim": ra.chlim}
        # the checksum scapy computes over the same bytes
        q = IPv6(bytes(p[IPv6]))
        c0 = q[ICMPv6ND_RA].cksum
        del q[ICMPv6ND_RA].cksum
        r["cksum_ok"] = IPv6(bytes(q))[ICMPv6ND_RA].cksum == c0
        pi = p[ICMPv6NDOptPrefixInfo]
        r["L"], r["A"], r["prefix"], r["plen"] = pi.L, pi.A, pi.prefix, pi.prefixlen
        r["mtu"] = p[ICMPv6NDOptMTU].mtu if ICMPv6NDOptMTU in p else None
        if ICMPv6NDOptRDNSS in p:
            r["dns"], r["dnslife"] = p[ICMPv6NDOptRDNSS].dns, p[ICMPv6NDOptRDNSS].lifetime
        else:
            r["dns"], r["dnslife"] = None, None
        out.append(r)
print(json.dumps(out))
`;

async function scapy(cases: unknown[]): Promise<unknown[]> {
  const p = new Deno.Command(PYTHON, {
    args: ["-c", SCRIPT],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(cases)));
  await w.close();
  const r = await p.output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
  return JSON.parse(new TextDecoder().decode(r.stdout));
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const VM = {
  homeAddress: "2001:db8:2000::10",
  prefixLength: 64,
  vmMac: "52:54:00:00:00:10",
  routerMac: "02:00:00:00:00:01",
  routerLl: "fe80::1",
};

Deno.test({
  name: "RDNSS option (RFC 8106 §5.1) is byte for byte scapy's ICMPv6NDOptRDNSS",
  ignore,
  async fn() {
    const cases = fc.sample(
      fc.record({
        lifetime: fc.oneof(fc.constant(0xffffffff), fc.constant(0), fc.nat()),
        dns: fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), {
          minLength: 1,
          maxLength: 8,
        }),
      }),
      { numRuns: 60, seed: 5 },
    );
    const ours = cases.map(({ lifetime, dns }) => {
      const servers = new Uint8Array(16 * dns.length);
      dns.forEach((a, i) => servers.set(a, 16 * i));
      const out = new Uint8Array(8 + servers.length + 4).fill(0xee);
      const end = writeRdnssOption(out, 2, lifetime, servers);
      assert.equal(end, 2 + 8 + servers.length);
      return hex(out.subarray(2, end));
    });
    const theirs = await scapy(cases.map((c) => ({
      kind: "rdnss",
      lifetime: c.lifetime,
      dns: c.dns.map((a) => formatIPv6(a)),
    })));
    assert.deepEqual(ours, theirs);
    assert.throws(() => writeRdnssOption(new Uint8Array(64), 0, 1, new Uint8Array(0)));
    assert.throws(() => writeRdnssOption(new Uint8Array(64), 0, 1, new Uint8Array(15)));
    assert.throws(() => writeRdnssOption(new Uint8Array(16), 0, 1, new Uint8Array(16)));
  },
});

Deno.test({
  name: "per-VM RA contents as scapy dissects them (M, O, lifetime, L/A, MTU, RDNSS, checksum)",
  ignore,
  async fn() {
    const configs: RaOptions[] = [
      {},
      { autonomous: true },
      { managed: true, other: true, routerLifetime: 0 },
      { routerLifetime: 9000, mtu: 1400 },
      { other: true, rdnss: ["2001:db8:2000::53"] },
      {
        managed: true,
        autonomous: true,
        routerLifetime: 60,
        mtu: 9000,
        rdnss: ["2001:db8::1", "2001:db8::2", "2001:db8::3"],
      },
    ];
    const frames = configs.map((ra) => {
      const ctx = makePseudoHomeContext({ ...VM, ra }, 1460);
      const out = new Uint8Array(ctx.raFrameLen);
      return { ctx, frame: hex(out.subarray(0, buildUnsolicitedRa(ctx, out))) };
    });
    const got = await scapy(frames.map((f) => ({ kind: "ra", frame: f.frame }))) as Array<
      Record<string, unknown>
    >;
    configs.forEach((ra, i) => {
      const g = got[i];
      const lifetime = ra.routerLifetime ?? 1800;
      assert.equal(g.M, ra.managed ? 1 : 0, `case ${i}`);
      assert.equal(g.O, ra.other ? 1 : 0, `case ${i}`);
      assert.equal(g.lifetime, lifetime, `case ${i}`);
      assert.equal(g.chlim, 64);
      assert.equal(g.cksum_ok, true, `case ${i}: checksum`);
      assert.equal(g.L, 1);
      assert.equal(g.A, ra.autonomous ? 1 : 0, `case ${i}`);
      assert.equal(g.prefix, "2001:db8:2000::");
      assert.equal(g.plen, 64);
      assert.equal(g.mtu, ra.mtu ?? null, `case ${i}`);
      assert.deepEqual(
        g.dns,
        ra.rdnss?.map((a) => formatIPv6(parseIPv6(a))) ?? null,
        `case ${i}`,
      );
      // RFC 8106 §5.1: at least 3 × MaxRtrAdvInterval.
      if (ra.rdnss !== undefined) {
        const expect = lifetime > 0 && lifetime < 1800 ? lifetime : 1800;
        assert.equal(g.dnslife, expect, `case ${i}`);
        assert.ok((g.dnslife as number) >= 3 * frames[i].ctx.maxRtrAdvIntervalS);
      }
    });
  },
});
