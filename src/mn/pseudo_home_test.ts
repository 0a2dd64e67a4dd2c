import assert from "node:assert/strict";
import fc from "fast-check";
import {
  buildHomeAddressNa,
  buildUnsolicitedRa,
  buildUnsolicitedRouterNa,
  FRAME_ACTION,
  handleVmFrame,
  makePseudoHomeContext,
  newFrameVerdict,
  RA_DEFAULTS,
  RA_FRAME_LEN,
  VM_DROP_COUNTERS,
} from "./pseudo_home.ts";

// Golden frames built by scapy: test/mn/gen_pseudo_home_golden.py.
const GOLDEN: Record<string, string> = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/pseudo_home_golden.json", import.meta.url)),
);

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
const golden = (name: string) => hex(GOLDEN[name]);

const VM = {
  homeAddress: "2001:db8:2000::10",
  prefixLength: 64,
  vmMac: "52:54:00:00:00:10",
  routerMac: "02:00:00:00:00:01",
  routerLl: "fe80::1",
};
const ctx = makePseudoHomeContext(VM, 1460);

function run(frame: Uint8Array) {
  const out = new Uint8Array(2048);
  const v = newFrameVerdict();
  handleVmFrame(frame, frame.length, ctx, out, v);
  return { v, out: out.subarray(0, v.length) };
}

function expectReply(request: string, answer: string, action: number = FRAME_ACTION.REPLY) {
  const { v, out } = run(golden(request));
  assert.equal(v.action, action, `${request}: ${v.reason}`);
  assert.equal(toHex(out), GOLDEN[answer]);
}

Deno.test("NS for the router's link-local → NA with routerMac, R S O set (golden)", () => {
  expectReply("ns_router", "na_router");
});

Deno.test("unicast NUD NS for another home host, to a stale MAC → NA, S O set, R clear", () => {
  // The NS's destination MAC is a MAC the guest cached before it moved: still accepted.
  expectReply("ns_host", "na_host");
});

Deno.test("RS from a link-local → RA for the home prefix (golden)", () => {
  expectReply("rs", "ra");
});

Deno.test("RS from :: → RA to all-nodes (golden)", () => {
  expectReply("rs_unspec", "ra_allnodes");
});

Deno.test("echo request to the router's link-local → echo reply (golden)", () => {
  expectReply("echo_req", "echo_rep");
});

Deno.test("a 1500-byte packet → Packet Too Big MTU 1460, 1280 bytes, from routerLl (golden)", () => {
  const { v, out } = run(golden("big"));
  assert.equal(v.action, FRAME_ACTION.TOO_BIG);
  assert.equal(out.length, 14 + 1280);
  assert.equal(toHex(out), GOLDEN["ptb"]);
});

Deno.test("unsolicited router NA, RA and home-address NA match scapy's", () => {
  const out = new Uint8Array(256);
  let n = buildUnsolicitedRouterNa(ctx, out);
  assert.equal(toHex(out.subarray(0, n)), GOLDEN["una_router"]);
  out.fill(0xee);
  n = buildUnsolicitedRa(ctx, out);
  assert.equal(toHex(out.subarray(0, n)), GOLDEN["ra_allnodes"]);
  out.fill(0xee);
  n = buildHomeAddressNa(ctx, out);
  assert.equal(toHex(out.subarray(0, n)), GOLDEN["home_na"]);
});

Deno.test("DAD probes and MLD reports are dropped", () => {
  let r = run(golden("dad"));
  assert.equal(r.v.action, FRAME_ACTION.DROP);
  assert.equal(r.v.reason, "DAD probe");
  r = run(golden("mld"));
  assert.equal(r.v.action, FRAME_ACTION.DROP);
  assert.equal(r.v.reason, "multicast destination");
});

/** Rewrites the NS target in a copy of `frame` and fixes the ICMPv6 checksum. */
function withTarget(frame: Uint8Array, target: number[]): Uint8Array {
  const f = frame.slice();
  f.set(target, 14 + 40 + 8);
  fixIcmpChecksum(f);
  return f;
}
function fixIcmpChecksum(f: Uint8Array) {
  const plen = (f[18] << 8) | f[19];
  f[56] = 0;
  f[57] = 0;
  let sum = 0;
  for (let i = 22; i < 54; i += 2) sum += (f[i] << 8) | f[i + 1];
  sum += plen + 58;
  for (let i = 54; i < 54 + plen; i += 2) sum += (f[i] << 8) | (i + 1 < 54 + plen ? f[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  f[56] = c >> 8;
  f[57] = c & 0xff;
}

Deno.test("NS for the VM's own addresses is never answered", () => {
  const hoa = [0x20, 0x01, 0x0d, 0xb8, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
  const ll = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0, 0xff, 0xfe, 0, 0, 0x10];
  for (const t of [hoa, ll]) {
    const r = run(withTarget(golden("ns_router"), t));
    assert.equal(r.v.action, FRAME_ACTION.DROP);
    assert.equal(r.v.reason, "NS for the VM's own address");
  }
  // A target off the home prefix and not the router: dropped, not answered.
  const off = [0x20, 0x01, 0x0d, 0xb8, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3];
  assert.equal(run(withTarget(golden("ns_router"), off)).v.action, FRAME_ACTION.DROP);
  // Sanity: the rewrite itself keeps a valid NS (another home host → answered).
  const other = [0x20, 0x01, 0x0d, 0xb8, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];
  assert.equal(run(withTarget(golden("ns_router"), other)).v.action, FRAME_ACTION.REPLY);
});

Deno.test("ND with a bad checksum, hop limit or from a foreign MAC is dropped", () => {
  const bad = golden("ns_router");
  bad[57] ^= 1;
  assert.equal(run(bad).v.reason, "bad ICMPv6 checksum");
  const hl = golden("ns_router");
  hl[21] = 64;
  assert.equal(run(hl).v.reason, "ND hop limit not 255");
  const mac = golden("ns_router");
  mac[11] ^= 1;
  assert.equal(run(mac).v.reason, "source MAC not the VM's");
});

/** A UDP packet from `src` to `dst` of total IPv6 length `ipLen`, in a frame. */
function udpFrame(src: number[], dst: number[], ipLen: number, dstMac = [0x02, 0, 0, 0, 0, 1]) {
  const f = new Uint8Array(14 + ipLen);
  f.set(dstMac, 0);
  f.set([0x52, 0x54, 0, 0, 0, 0x10], 6);
  f.set([0x86, 0xdd, 0x60], 12);
  f[18] = (ipLen - 40) >> 8;
  f[19] = (ipLen - 40) & 0xff;
  f[20] = 17;
  f[21] = 64;
  f.set(src, 22);
  f.set(dst, 38);
  return f;
}
const HOA = [0x20, 0x01, 0x0d, 0xb8, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const CN = [0x20, 0x01, 0x0d, 0xb8, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2];

Deno.test("IPv6 from the HoA to a global address → TUNNEL, whatever the destination MAC", () => {
  for (const mac of [[0x02, 0, 0, 0, 0, 1], [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]]) {
    const f = udpFrame(HOA, CN, 1460, mac);
    // Ethernet padding after the packet must not be tunneled.
    const padded = new Uint8Array(f.length + 6);
    padded.set(f);
    const { v } = run(padded);
    assert.equal(v.action, FRAME_ACTION.TUNNEL, v.reason);
    assert.equal(v.offset, 14);
    assert.equal(v.length, 1460);
  }
  // One byte over the tunnel MTU → TOO_BIG.
  assert.equal(run(udpFrame(HOA, CN, 1461)).v.action, FRAME_ACTION.TOO_BIG);
});

Deno.test("other sources and destinations are dropped with a reason", () => {
  const other = [0x20, 0x01, 0x0d, 0xb8, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11];
  const ll = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2];
  const cases: Array<[number[], number[], string]> = [
    [other, CN, "source not the home address"],
    [ll, CN, "link-local source to an off-link destination"],
    [HOA, ll, "link-local destination"],
    [HOA, [0xff, 0x0e, ...new Array(13).fill(0), 1], "multicast destination"],
    [HOA, new Array(16).fill(0), "invalid destination"],
  ];
  for (const [s, d, reason] of cases) {
    const { v } = run(udpFrame(s, d, 100));
    assert.equal(v.action, FRAME_ACTION.DROP);
    assert.equal(v.reason, reason);
  }
  // Truncated: payload length beyond the frame.
  const t = udpFrame(HOA, CN, 100);
  assert.equal(run(t.subarray(0, 90)).v.reason, "truncated IPv6 payload");
  // IPv4 / ARP, other EtherTypes.
  const arp = udpFrame(HOA, CN, 100);
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(run(arp).v.reason, "IPv4/ARP not relayed");
  arp[13] = 0x00;
  assert.equal(run(arp).v.reason, "IPv4/ARP not relayed");
  arp[12] = 0x88;
  arp[13] = 0xcc; // LLDP
  assert.equal(run(arp).v.reason, "not IPv6");
});

Deno.test("every drop names its counter: DHCPv6, IPv4/ARP, not the HoA, multicast, ND", () => {
  const counter = (f: Uint8Array) => {
    const { v } = run(f);
    assert.equal(v.action, FRAME_ACTION.DROP, v.reason);
    return VM_DROP_COUNTERS[v.dropCounter];
  };
  const dhcp = run(golden("dhcpv6_solicit")).v;
  assert.equal(dhcp.reason, "DHCPv6 to ff02::1:2 not relayed");
  assert.equal(VM_DROP_COUNTERS[dhcp.dropCounter], "vm_drop_dhcpv6");
  const other = [0x20, 0x01, 0x0d, 0xb8, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11];
  assert.equal(counter(udpFrame(other, CN, 100)), "vm_drop_not_hoa");
  // ff02::1:3 (LLMNR) is plain multicast, not DHCPv6.
  const llmnr = [0xff, 0x02, ...new Array(11).fill(0), 1, 0, 3];
  assert.equal(counter(udpFrame(HOA, llmnr, 100)), "vm_drop_multicast");
  const arp = udpFrame(HOA, CN, 100);
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(counter(arp), "vm_drop_ipv4");
  assert.equal(counter(golden("dad")), "vm_drop_nd");
  assert.equal(counter(golden("mld")), "vm_drop_multicast");
  const mac = golden("ns_router");
  mac[11] ^= 1;
  assert.equal(counter(mac), "vm_drop_foreign_mac");
  const bad = golden("ns_router");
  bad[57] ^= 1;
  assert.equal(counter(bad), "vm_drop_malformed");
  // Replies and tunnelled packets carry no drop counter.
  assert.equal(run(golden("rs")).v.dropCounter, -1);
  assert.equal(run(udpFrame(HOA, CN, 100)).v.dropCounter, -1);
});

const CONFIGURED = {
  managed: true,
  other: true,
  autonomous: true,
  routerLifetime: 900,
  mtu: 1400,
  rdnss: ["2001:db8:2000::53", "2001:db8:5353::1"],
};

Deno.test("default RA: M=O=0, lifetime 1800 = 3 × MaxRtrAdvInterval, prefix L=1 A=0", () => {
  assert.equal(ctx.routerLifetime, 3 * RA_DEFAULTS.maxRtrAdvIntervalS);
  assert.equal(ctx.raFrameLen, RA_FRAME_LEN);
  const { out } = run(golden("rs"));
  assert.equal(out[54 + 5], 0); // M, O
  assert.equal((out[54 + 6] << 8) | out[54 + 7], 1800);
  assert.equal(out[54 + 16 + 8 + 3], 0x80); // L only
  assert.equal(ctx.maxRtrAdvIntervalS, 600);
  assert.equal(ctx.minRtrAdvIntervalS, 200);
});

Deno.test("configured RA (M, O, A, lifetime, MTU, RDNSS) matches scapy's, solicited and not", () => {
  const c = makePseudoHomeContext({ ...VM, ra: CONFIGURED }, 1460);
  assert.equal(c.raFrameLen, GOLDEN["ra_configured"].length / 2);
  const out = new Uint8Array(512).fill(0xee);
  const n = buildUnsolicitedRa(c, out);
  assert.equal(toHex(out.subarray(0, n)), GOLDEN["ra_configured"]);
  // An RS from :: is answered with the same RA to all-nodes.
  const v = newFrameVerdict();
  const reply = new Uint8Array(1514);
  const rs = golden("rs_unspec");
  handleVmFrame(rs, rs.length, c, reply, v);
  assert.equal(v.action, FRAME_ACTION.REPLY);
  assert.equal(toHex(reply.subarray(0, v.length)), GOLDEN["ra_configured"]);
  // Too small a buffer is a programmer error for the unsolicited RA, a drop for the reply.
  assert.throws(() => buildUnsolicitedRa(c, new Uint8Array(c.raFrameLen - 1)), RangeError);
  handleVmFrame(rs, rs.length, c, new Uint8Array(c.raFrameLen - 1), v);
  assert.equal(VM_DROP_COUNTERS[v.dropCounter], "vm_drop_other");
});

Deno.test("RA schedule bounds: lifetime 3 × max interval; a short lifetime lowers the intervals", () => {
  const short = makePseudoHomeContext({ ...VM, ra: { routerLifetime: 30 } }, 1460);
  assert.equal(short.routerLifetime, 30);
  assert.equal(short.maxRtrAdvIntervalS, 10);
  assert.ok(short.minRtrAdvIntervalS > 0 && short.minRtrAdvIntervalS <= 10 * 0.33 + 1e-9);
  assert.equal(short.rdnssLifetime, 30);
  const test = makePseudoHomeContext(VM, 1460, { maxRtrAdvIntervalS: 2, minRtrAdvIntervalS: 1 });
  assert.equal(test.routerLifetime, 6);
  assert.equal(test.maxRtrAdvIntervalS, 2);
  assert.equal(test.minRtrAdvIntervalS, 1);
  // Lifetime 0 (not a default router) keeps the default intervals.
  const zero = makePseudoHomeContext({ ...VM, ra: { routerLifetime: 0 } }, 1460);
  assert.equal(zero.maxRtrAdvIntervalS, 600);
  assert.throws(() => makePseudoHomeContext({ ...VM, ra: { routerLifetime: 9001 } }, 1460));
  assert.throws(() => makePseudoHomeContext({ ...VM, ra: { mtu: 1000 } }, 1460));
  assert.throws(() =>
    makePseudoHomeContext({ ...VM, ra: { rdnss: new Array(9).fill("2001:db8::53") } }, 1460)
  );
  assert.throws(() => makePseudoHomeContext({ ...VM, ra: { rdnss: ["nope"] } }, 1460));
  assert.throws(() => makePseudoHomeContext(VM, 1460, { maxRtrAdvIntervalS: 0 }));
});

Deno.test("makePseudoHomeContext rejects a router MAC equal to the VM's and tiny MTUs", () => {
  const vm = {
    homeAddress: "2001:db8:2000::10",
    prefixLength: 64,
    vmMac: "52:54:00:00:00:10",
    routerMac: "52:54:00:00:00:10",
    routerLl: "fe80::1",
  };
  assert.throws(() => makePseudoHomeContext(vm, 1460), TypeError);
  assert.throws(() => makePseudoHomeContext({ ...vm, routerMac: "02:00:00:00:00:01" }, 1000));
});

Deno.test("fast-check: random frames and mutated golden frames never throw", () => {
  const seeds = Object.values(GOLDEN).map(hex);
  const out = new Uint8Array(1514);
  const v = newFrameVerdict();
  const check = (frame: Uint8Array, len: number) => {
    handleVmFrame(frame, len, ctx, out, v);
    assert.ok(v.action >= 0 && v.action <= 3);
    if (v.action === FRAME_ACTION.DROP) {
      assert.ok(VM_DROP_COUNTERS[v.dropCounter] !== undefined, v.reason);
    } else {
      assert.equal(v.dropCounter, -1);
    }
    if (v.action === FRAME_ACTION.TUNNEL) {
      assert.ok(v.offset + v.length <= Math.min(len, frame.length));
      assert.ok(v.length <= ctx.tunnelMtu);
    } else if (v.action !== FRAME_ACTION.DROP) {
      assert.ok(v.length > 0 && v.length <= out.length);
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1600 }), fc.integer({ min: -5, max: 2000 }), (f, l) => {
      check(f, l);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: seeds.length - 1 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.nat(),
      (i, edits, cut) => {
        const f = seeds[i].slice();
        // Keep the VM's source MAC most of the time so mutations reach the deep paths.
        for (const [pos, val] of edits) f[pos % f.length] = val;
        if (edits.length % 2 === 0) f.set([0x52, 0x54, 0, 0, 0, 0x10], 6);
        check(f, cut % (f.length + 1));
        check(f, f.length);
      },
    ),
    { numRuns: 5000 },
  );
});
