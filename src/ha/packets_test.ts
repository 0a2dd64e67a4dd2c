import assert from "node:assert/strict";
import fc from "fast-check";
import { formatIPv6, parseIPv6 } from "../wire/addr.ts";
import { IPPROTO } from "../wire/addr.ts";
import { upperLayerChecksum } from "../wire/checksum.ts";
import {
  buildBindingUpdate,
  buildEthernetFrame,
  buildIcmpv6Packet,
  parsePacket,
} from "../wire/packet.ts";
import { parseEthernet } from "../wire/ethernet.ts";
import type { BuRepr } from "../wire/mobility.ts";
import {
  baPacket,
  bePacket,
  dadEvidence,
  dadProbe,
  decodeBuFast,
  decodeDstOptsDatagram,
  decodeMhDatagram,
  ICMP_INVOKING_MAX,
  linkIcmp,
  paramProblemPacket,
  proxyAnswer,
  unsolicitedNa,
} from "./packets.ts";
import { parseIpv6 } from "../wire/ipv6.ts";
import { parseIcmpv6 } from "../wire/icmpv6.ts";
import { COA, HA, HOA, homeBu } from "../wire/test_util.ts";

const MAC = "02:00:00:00:00:01";

const bu: Omit<BuRepr, "type"> = homeBu(4242, 150);

/** The bytes a raw socket of the first extension header's protocol gets: no IPv6 header. */
function afterIpv6(pkt: Uint8Array): Uint8Array {
  return pkt.slice(40);
}

Deno.test("decodeDstOptsDatagram: BU with HAO, checksum over the HoA", () => {
  const pkt = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu });
  const d = decodeDstOptsDatagram(afterIpv6(pkt), COA, HA);
  assert.equal(d.kind, "event");
  if (d.kind !== "event" || d.event.type !== "mh") return assert.fail("not an MH event");
  assert.equal(d.event.homeAddress, HOA);
  assert.equal(d.event.hao, true);
  assert.equal(d.event.src, COA);
  assert.equal(d.event.message.type, "bu");
  if (d.event.message.type !== "bu") return;
  assert.equal(d.event.message.sequence, 4242);
  assert.equal(d.event.message.lifetime, 150);
  assert.deepEqual(d.event.message.options, [{ type: "altCoa", address: COA }]);
});

Deno.test("decodeDstOptsDatagram: a checksum over the CoA (not the HoA) is refused", () => {
  const pkt = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu });
  const data = afterIpv6(pkt);
  const mhOff = (data[1] + 1) * 8;
  // recompute the MH checksum the wrong way (pseudo-source = CoA)
  data[mhOff + 4] = 0;
  data[mhOff + 5] = 0;
  const wrong = upperLayerChecksum(COA, HA, IPPROTO.MH, data.subarray(mhOff));
  data[mhOff + 4] = wrong >> 8;
  data[mhOff + 5] = wrong & 0xff;
  const d = decodeDstOptsDatagram(data, COA, HA);
  assert.equal(d.kind, "bad");
  if (d.kind !== "bad") return;
  assert.equal(d.where, "mh");
  assert.equal(d.error.kind, "checksum");
  assert.equal(d.error.field, "checksum");
  assert.equal(d.error.offset, mhOff + 4);
});

Deno.test("decodeDstOptsDatagram: truncated and non-MH payloads", () => {
  const pkt = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu });
  const data = afterIpv6(pkt);
  const cut = decodeDstOptsDatagram(data.subarray(0, 5), COA, HA);
  assert.equal(cut.kind, "bad");
  assert.equal(cut.kind === "bad" && cut.where, "dstopts");
  const tcp = data.slice();
  tcp[0] = IPPROTO.TCP;
  // another upper layer behind a HAO: reported for a Binding Error check (RFC 6275 §9.3.1)
  assert.deepEqual(decodeDstOptsDatagram(tcp, COA, HA), {
    kind: "event",
    event: { type: "haoPacket", src: COA, dst: HA, homeAddress: HOA, nextHeader: IPPROTO.TCP },
  });
  const short = decodeDstOptsDatagram(data.subarray(0, data.length - 8), COA, HA);
  assert.equal(short.kind === "bad" && short.error.kind, "truncated");
});

Deno.test("decodeMhDatagram: no HAO means the source is the home address", () => {
  const pkt = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: COA, bu });
  const data = afterIpv6(pkt);
  const mh = data.subarray((data[1] + 1) * 8);
  const d = decodeMhDatagram(mh, COA, HA, false);
  assert.equal(d.kind, "event");
  assert.equal(d.kind === "event" && d.event.homeAddress, COA);
  assert.equal(d.kind === "event" && d.event.type === "mh" && d.event.hao, false);
  assert.equal(decodeMhDatagram(mh, COA, HA, true).kind, "ignore");
  assert.equal(decodeMhDatagram(mh, HOA, HA, false).kind, "bad");
});

Deno.test("baPacket: RH2 carries the HoA, checksum with the HoA as destination", () => {
  const pkt = baPacket({
    type: "sendBa",
    from: HA,
    to: COA,
    homeAddress: HOA,
    status: 0,
    sequence: 4242,
    lifetime: 15,
  });
  assert.equal(pkt[6], IPPROTO.ROUTING);
  const p = parsePacket(pkt);
  assert.ok(p.ok);
  if (!p.ok) return;
  assert.equal(p.value.ipv6.src, HA);
  assert.equal(p.value.ipv6.dst, COA);
  assert.deepEqual(p.value.rh2, { nextHeader: IPPROTO.MH, segmentsLeft: 1, homeAddress: HOA });
  assert.equal(p.value.mh?.type, "ba");
  if (p.value.mh?.type !== "ba") return;
  assert.equal(p.value.mh.status, 0);
  assert.equal(p.value.mh.sequence, 4242);
  assert.equal(p.value.mh.lifetime, 15);
  // golden: fixed fields of the MH (payload proto 59, header len 1, type 6)
  const mh = pkt.subarray(64);
  assert.deepEqual([...mh.subarray(0, 3)], [59, 1, 6]);
  assert.equal(upperLayerChecksum(HA, HOA, IPPROTO.MH, mh), 0);
});

Deno.test("baPacket: to the home address itself, no RH2", () => {
  const pkt = baPacket({
    type: "sendBa",
    from: HA,
    to: HOA,
    homeAddress: HOA,
    status: 0,
    sequence: 1,
    lifetime: 0,
  });
  assert.equal(pkt[6], IPPROTO.MH);
  const p = parsePacket(pkt);
  assert.ok(p.ok && p.value.rh2 === undefined && p.value.mh?.type === "ba");
});

Deno.test("bePacket: status and home address", () => {
  const p = parsePacket(
    bePacket({ type: "sendBe", from: HA, to: COA, homeAddress: HOA, status: 2 }),
  );
  assert.ok(p.ok);
  assert.deepEqual(p.ok && p.value.mh, { type: "be", status: 2, homeAddress: HOA });
});

Deno.test("dadProbe: NS from :: to the solicited-node group, hop limit 255, no SLLA", () => {
  const pkt = dadProbe(HOA);
  const p = parsePacket(pkt);
  assert.ok(p.ok);
  if (!p.ok) return;
  assert.equal(p.value.ipv6.src, "::");
  assert.equal(p.value.ipv6.dst, "ff02::1:ff00:10");
  assert.equal(p.value.ipv6.hopLimit, 255);
  assert.deepEqual(p.value.icmp, { type: "neighborSolicitation", target: HOA, options: [] });
});

Deno.test("unsolicitedNa: O=1 S=0 to all-nodes with the HA's MAC", () => {
  const pkt = unsolicitedNa({ src: "fe80::1", target: HOA, mac: MAC, router: true });
  const p = parsePacket(pkt);
  assert.ok(p.ok);
  if (!p.ok) return;
  assert.equal(p.value.ipv6.dst, "ff02::1");
  assert.equal(p.value.ipv6.hopLimit, 255);
  assert.deepEqual(p.value.icmp, {
    type: "neighborAdvertisement",
    router: true,
    solicited: false,
    override: true,
    target: HOA,
    options: [{ type: "targetLinkLayer", mac: MAC }],
  });
  // flags octet: R (0x80) | O (0x20)
  assert.equal(pkt[44], 0xa0);
});

Deno.test("dadEvidence: NA or DAD NS from others, not our own or off-link ones", () => {
  const watched = new Set([HOA]);
  const icmp = (src: string, dst: string, m: Parameters<typeof buildIcmpv6Packet>[0]["icmp"]) =>
    buildIcmpv6Packet({ src, dst, hopLimit: 255, icmp: m }).slice(40);
  const na = (mac: string) =>
    icmp("fe80::99", "ff02::1", {
      type: "neighborAdvertisement",
      router: false,
      solicited: false,
      override: true,
      target: HOA,
      options: [{ type: "targetLinkLayer", mac }],
    });
  const meta = { src: "fe80::99", dst: "ff02::1", hopLimit: 255 };
  const dup = dadEvidence(na("52:54:00:00:00:10"), meta, watched, MAC);
  assert.equal(dup.kind, "duplicate");
  assert.match(dup.kind === "duplicate" ? dup.evidence : "", /52:54:00:00:00:10/);
  assert.equal(dadEvidence(na(MAC), meta, watched, MAC).kind, "none");
  assert.equal(
    dadEvidence(na("52:54:00:00:00:10"), { ...meta, hopLimit: 64 }, watched, MAC).kind,
    "none",
  );
  assert.equal(dadEvidence(na("52:54:00:00:00:10"), meta, new Set(), MAC).kind, "none");
  const probe = dadProbe(HOA).slice(40);
  const pm = { src: "::", dst: "ff02::1:ff00:10", hopLimit: 255 };
  assert.equal(dadEvidence(probe, pm, watched, MAC).kind, "duplicate");
  // an address resolution NS (source set) is not a duplicate
  const ns = icmp("2001:db8:2000::2", "ff02::1:ff00:10", {
    type: "neighborSolicitation",
    target: HOA,
    options: [{ type: "sourceLinkLayer", mac: "52:54:00:00:00:02" }],
  });
  assert.equal(
    dadEvidence(
      ns,
      { src: "2001:db8:2000::2", dst: "ff02::1:ff00:10", hopLimit: 255 },
      watched,
      MAC,
    )
      .kind,
    "none",
  );
  // a corrupted message is reported as bad, naming the checksum
  const bad = na("52:54:00:00:00:10");
  bad[10] ^= 1;
  const v = dadEvidence(bad, meta, watched, MAC);
  assert.equal(v.kind === "bad" && v.error.field, "checksum");
});

Deno.test("proxyAnswer: NS for a defended HoA answered with our MAC (RFC 6275 §10.4.1)", () => {
  const CN = "2001:db8:2000::2", CN_MAC = "52:54:00:00:00:02", LL = "fe80::1";
  const own = { mac: MAC, src: LL };
  const defended = (a: string) => a === HOA;
  const ns = (o: {
    src: string;
    dst: string;
    target?: string;
    sll?: boolean;
    hopLimit?: number;
    ethDst?: string;
  }) =>
    buildEthernetFrame(
      { dst: o.ethDst ?? "33:33:ff:00:00:10", src: CN_MAC },
      buildIcmpv6Packet({
        src: o.src,
        dst: o.dst,
        hopLimit: o.hopLimit ?? 255,
        icmp: {
          type: "neighborSolicitation",
          target: o.target ?? HOA,
          options: o.sll === false ? [] : [{ type: "sourceLinkLayer", mac: CN_MAC }],
        },
      }),
    );
  const answer = (frame: Uint8Array) => {
    const m = linkIcmp(frame);
    assert.ok(m);
    return proxyAnswer(m, defended, own);
  };
  const na = (v: ReturnType<typeof proxyAnswer>) => {
    assert.equal(v.kind, "answer");
    if (v.kind !== "answer") throw new Error();
    const eth = parseEthernet(v.frame);
    assert.ok(eth.ok);
    const p = parsePacket(eth.value.payload);
    assert.ok(p.ok, JSON.stringify(p));
    assert.equal(p.value.ipv6.hopLimit, 255);
    assert.equal(p.value.ipv6.src, LL);
    assert.equal(p.value.icmp?.type, "neighborAdvertisement");
    const icmp = p.value.icmp as Extract<typeof p.value.icmp, { type: "neighborAdvertisement" }>;
    // the checksum is valid: parsing with a check succeeds
    assert.ok(parsePacket(eth.value.payload).ok);
    return { eth: eth.value.repr, ip: p.value.ipv6, na: icmp };
  };

  // address resolution (multicast, SLLA): to the solicitor, S=1, O=0, R=0, our MAC
  const a = na(answer(ns({ src: CN, dst: "ff02::1:ff00:10" })));
  assert.deepEqual([a.ip.dst, a.eth.dst, a.eth.src], [CN, CN_MAC, MAC]);
  assert.deepEqual([a.na.solicited, a.na.override, a.na.router, a.na.target], [
    true,
    false,
    false,
    HOA,
  ]);
  assert.deepEqual(a.na.options, [{ type: "targetLinkLayer", mac: MAC }]);
  // reachability probe (unicast, no SLLA): back to the frame's source
  const u = na(answer(ns({ src: CN, dst: HOA, sll: false, ethDst: MAC })));
  assert.deepEqual([u.ip.dst, u.eth.dst, u.na.solicited], [CN, CN_MAC, true]);
  // another node's DAD probe: defended to all-nodes, S=0
  const d = na(answer(ns({ src: "::", dst: "ff02::1:ff00:10", sll: false })));
  assert.deepEqual([d.ip.dst, d.eth.dst, d.na.solicited], ["ff02::1", "33:33:00:00:00:01", false]);

  // not ours, off-link, invalid per RFC 4861 §7.1.1, or not an NS: no answer
  assert.equal(
    answer(ns({ src: CN, dst: "ff02::1:ff00:11", target: "2001:db8:2000::11" })).kind,
    "none",
  );
  assert.equal(answer(ns({ src: CN, dst: "ff02::1:ff00:10", hopLimit: 254 })).kind, "none");
  assert.equal(answer(ns({ src: "::", dst: "ff02::1:ff00:10", sll: true })).kind, "none");
  assert.equal(answer(ns({ src: "::", dst: HOA, sll: false })).kind, "none");
  const bad = ns({ src: CN, dst: "ff02::1:ff00:10" });
  bad[bad.length - 1] ^= 0xff; // checksum no longer matches
  assert.equal(answer(bad).kind, "bad");
  const notNs = buildEthernetFrame(
    { dst: "33:33:00:00:00:01", src: CN_MAC },
    unsolicitedNa({ src: "fe80::2", target: HOA, mac: CN_MAC, router: false }),
  );
  assert.equal(answer(notNs).kind, "none");
  // frames that are not IPv6 + ICMPv6
  assert.equal(linkIcmp(new Uint8Array(10)), null);
  const udp = ns({ src: CN, dst: "ff02::1:ff00:10" });
  udp[14 + 6] = 17;
  assert.equal(linkIcmp(udp), null);
});

Deno.test("decodeBuFast: the general decoder's event for well-formed BUs, null for the rest", () => {
  const addr = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIPv6(b));
  const flags = fc.record({
    ack: fc.boolean(),
    home: fc.boolean(),
    linkLocal: fc.boolean(),
    key: fc.boolean(),
    mapReg: fc.boolean(),
    mobileRouter: fc.boolean(),
    proxy: fc.boolean(),
    forceUdp: fc.boolean(),
  });
  const option = fc.oneof(
    addr.map((address) => ({ type: "altCoa" as const, address })),
    fc.integer({ min: 0, max: 0xffff }).map((interval) => ({ type: "bra" as const, interval })),
  );
  let fast = 0;
  fc.assert(
    fc.property(
      addr,
      addr,
      addr,
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffff }),
      flags,
      fc.array(option, { maxLength: 2 }),
      fc.option(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { freq: 2 }),
      (coa, ha, hoa, sequence, lifetime, flags, options, flip) => {
        const pkt = afterIpv6(buildBindingUpdate({
          careOf: coa,
          homeAgent: ha,
          homeAddress: hoa,
          bu: { sequence, flags, lifetime, options },
        }));
        if (flip) pkt[flip[0] % pkt.length] ^= flip[1]; // damage one byte
        const d = decodeBuFast(pkt, coa, ha, parseIPv6(ha));
        const ref = decodeDstOptsDatagram(pkt, coa, ha);
        if (d === null) {
          // only the unusual: BRA options, two Alt-CoAs, damaged bytes
          assert.ok(flip || options.length > 1 || options.some((o) => o.type === "bra"));
          return;
        }
        fast++;
        assert.deepEqual(d, ref);
      },
    ),
    { numRuns: 5000 },
  );
  assert.ok(fast > 1000, `fast path taken ${fast} times`);
  // a BU from the home address without HAO is not for this path
  const plain = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu });
  assert.equal(decodeBuFast(plain.slice(40 + 24), COA, HA, parseIPv6(HA)), null);
});

Deno.test("decodeDstOptsDatagram: ESP behind the HAO is handed over with the HoA", () => {
  const pkt = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu });
  const data = afterIpv6(pkt);
  const dlen = (data[1] + 1) * 8;
  data[0] = IPPROTO.ESP; // next header 50: the bytes after the DestOpts are ESP
  const d = decodeDstOptsDatagram(data, COA, HA);
  assert.equal(d.kind, "esp");
  if (d.kind !== "esp") return;
  assert.equal(d.hao, HOA);
  assert.equal(d.src, COA);
  assert.equal(d.dst, HA);
  assert.deepEqual(d.esp, data.subarray(dlen));
  // the fast BU decoder leaves it to the general one
  assert.equal(decodeBuFast(data, COA, HA, parseIPv6(HA)), null);
});

Deno.test("Parameter Problem (RFC 6275 §9.2): Payload Proto and Header Len, pointer at the field", () => {
  const pkt = buildBindingUpdate({ careOf: COA, homeAgent: HA, homeAddress: HOA, bu });
  const data = afterIpv6(pkt);
  const mhOff = (data[1] + 1) * 8;
  const fix = (b: Uint8Array) => { // checksum over the HoA again after an edit
    b[mhOff + 4] = b[mhOff + 5] = 0;
    const c = upperLayerChecksum(HOA, HA, IPPROTO.MH, b.subarray(mhOff));
    b[mhOff + 4] = c >> 8;
    b[mhOff + 5] = c & 0xff;
    return b;
  };
  const proto = data.slice();
  proto[mhOff] = IPPROTO.TCP;
  const d = decodeDstOptsDatagram(fix(proto), COA, HA);
  assert.equal(d.kind === "bad" && d.error.field, "payloadProto");
  const p = d.kind === "bad" ? d.problem : undefined;
  assert.ok(p, "a Parameter Problem event");
  assert.equal(p.src, COA, "to the packet's source, not the home address");
  assert.equal(p.pointer, 40 + mhOff, "points at Payload Proto in the invoking packet");
  const inv = parseIpv6(p.invoking);
  assert.ok(inv.ok);
  assert.equal(inv.value.repr.src, COA);
  assert.equal(inv.value.repr.dst, HA);
  assert.equal(inv.value.repr.nextHeader, IPPROTO.DSTOPTS);
  assert.equal(p.invoking[p.pointer], IPPROTO.TCP);

  // Header Len too short for a BU (MH without HAO: the raw MH socket's bytes)
  const mh = data.slice(mhOff);
  mh[1] = 0; // 8 octets, a BU needs at least 16 (RFC 6275 §6.1.7)
  const short = mh.subarray(0, 8);
  short[4] = short[5] = 0;
  const c = upperLayerChecksum(COA, HA, IPPROTO.MH, short);
  short[4] = c >> 8;
  short[5] = c & 0xff;
  const m = decodeMhDatagram(short, COA, HA, false);
  assert.equal(m.kind === "bad" && m.error.field, "headerLen");
  const q = m.kind === "bad" ? m.problem : undefined;
  assert.ok(q);
  assert.equal(q.pointer, 41);
  assert.equal(q.invoking[6], IPPROTO.MH);
  // a checksum failure gets no answer
  const bad = data.slice();
  bad[mhOff + 4] ^= 1;
  const n = decodeDstOptsDatagram(bad, COA, HA);
  assert.equal(n.kind === "bad" && n.problem, undefined);

  // the packet: ICMPv6 type 4 code 0 with pointer and the invoking packet, at most 1280 octets
  const out = paramProblemPacket({
    type: "sendParamProblem",
    from: HA,
    to: COA,
    pointer: p.pointer,
    invoking: p.invoking,
  });
  const ip = parseIpv6(out);
  assert.ok(ip.ok);
  const icmp = parseIcmpv6(ip.value.payload, { src: HA, dst: COA });
  assert.ok(icmp.ok && icmp.value.type === "paramProblem");
  if (!icmp.ok || icmp.value.type !== "paramProblem") return;
  assert.equal(icmp.value.code, 0);
  assert.equal(icmp.value.pointer, 40 + mhOff);
  assert.deepEqual(icmp.value.invoking, p.invoking);
  assert.ok(ICMP_INVOKING_MAX + 48 <= 1280);
});
