/**
 * Oracle: packets built by our codecs (src/wire/packet.ts builders and emitters),
 * dissected by tshark (Wireshark 4.0 `mipv6`, `ipv6`, `icmpv6` dissectors).
 *
 * tshark does not verify the Mobility Header checksum, so every checksum is also
 * recomputed independently (by hand, in scapy_oracle.py: pseudo-header source =
 * HoA when a HAO is present, RFC 6275 §6.1.1).
 */

import assert from "node:assert/strict";
import { buildEthernetFrame, isMulticast, multicastMac } from "../../src/wire/mod.ts";
import { ADDR, type OurCase, ourCases, ptbTruncationCase } from "./cases.ts";
import { needsScapy, runScapyOracle, toHex, tsharkDissect, type TsharkPacket } from "./oracle.ts";

interface PyResult {
  name: string;
  checksum: { stored: number | null; rfc: number | null; scapy: number | null };
}

const ND_OPTION_CODE = { sourceLinkLayer: 1, targetLinkLayer: 2, prefixInfo: 3, mtu: 5 } as const;
const ICMP_TYPE = {
  packetTooBig: 2,
  routerSolicitation: 133,
  routerAdvertisement: 134,
  neighborSolicitation: 135,
  neighborAdvertisement: 136,
} as const;
const MH_TYPE_CODE = { brr: 0, bu: 5, ba: 6, be: 7 } as const;

const bit = (b: boolean) => (b ? "1" : "0");
const hex16 = (n: number) => `0x${n.toString(16).padStart(4, "0")}`;

function frameFor(packet: Uint8Array, dst: string, srcMac: string): Uint8Array {
  const dstMac = isMulticast(dst) ? multicastMac(dst) : ADDR.vmMac;
  return buildEthernetFrame({ dst: dstMac, src: srcMac }, packet);
}

/** Checks tshark's view of one of our packets against what the builder was asked for. */
function checkCase(c: OurCase, t: TsharkPacket, py: PyResult): void {
  const all = (f: string) => t.fields.get(f) ?? [];
  const one = (f: string) => {
    const v = all(f);
    assert.equal(v.length, 1, `${c.name}: ${f} occurs ${v.length} times: ${v.join(", ")}`);
    return v[0];
  };
  const eq = (f: string, want: string | number) =>
    assert.equal(one(f), String(want), `${c.name}: ${f}`);
  const list = (f: string, want: (string | number)[]) =>
    assert.deepEqual(all(f), want.map(String), `${c.name}: ${f}`);

  assert.equal(t.malformed, false, `${c.name}: tshark says malformed`);
  assert.deepEqual(t.expert, [], `${c.name}: tshark expert info`);

  eq("eth.type", "0x86dd");
  const ext = c.homeAddress !== undefined
    ? ":ipv6.dstopts"
    : c.rh2 !== undefined
    ? ":ipv6.routing"
    : "";
  const upper = c.mh ? "mipv6" : "icmpv6";
  assert.equal(
    t.protocols.startsWith(`eth:ethertype:ipv6${ext}:${upper}`),
    true,
    `${c.name}: protocols ${t.protocols}`,
  );

  // IPv6 header. tshark's packet list shows the HoA as source of a HAO packet;
  // the field ipv6.src is the real (care-of) source.
  assert.equal(all("ipv6.src")[0], c.ipv6.src, `${c.name}: ipv6.src`);
  assert.equal(all("ipv6.dst")[0], c.ipv6.dst, `${c.name}: ipv6.dst`);
  assert.equal(all("ipv6.nxt")[0], String(c.ipv6.nextHeader), `${c.name}: ipv6.nxt`);
  assert.equal(all("ipv6.hlim")[0], String(c.ipv6.hopLimit), `${c.name}: ipv6.hlim`);
  assert.equal(all("ipv6.plen")[0], String(c.packet.length - 40), `${c.name}: ipv6.plen`);

  // Extension headers.
  if (c.homeAddress !== undefined) {
    eq("ipv6.dstopts.nxt", 135);
    eq("ipv6.opt.mipv6.home_address", c.homeAddress);
    // Padding (Pad1 0x00, PadN 0x01) and exactly one HAO (0xc9, action 11).
    const types = all("ipv6.opt.type");
    assert.deepEqual(types.filter((x) => x !== "0x00" && x !== "0x01"), ["0xc9"], c.name);
    assert.equal(all("ipv6.opt.type.action")[types.indexOf("0xc9")], "3", c.name);
  } else {
    list("ipv6.opt.mipv6.home_address", []);
  }
  if (c.rh2 !== undefined) {
    eq("ipv6.routing.type", 2);
    eq("ipv6.routing.segleft", 1);
    eq("ipv6.routing.len_oct", 24);
    eq("ipv6.routing.nxt", 135);
    eq("ipv6.routing.mipv6.home_address", c.rh2);
  } else {
    list("ipv6.routing.mipv6.home_address", []);
  }

  assert.equal(py.checksum.stored, py.checksum.rfc, `${c.name}: checksum vs independent RFC sum`);

  if (c.mh) {
    const mh = c.mh;
    eq("mip6.proto", 59);
    eq("mip6.reserved", "0x00");
    eq("mip6.mhtype", MH_TYPE_CODE[mh.type as keyof typeof MH_TYPE_CODE]);
    // tshark shows the stored checksum; it must be the independently computed one.
    eq("mip6.csum", hex16(py.checksum.rfc!));
    const extLen = Number(all("ipv6.dstopts.len_oct")[0] ?? all("ipv6.routing.len_oct")[0] ?? 0);
    assert.equal(
      (Number(one("mip6.hlen")) + 1) * 8,
      c.packet.length - 40 - extLen,
      `${c.name}: mip6.hlen`,
    );
    const opts = "options" in mh ? mh.options : [];
    list(
      "mip6.acoa.acoa",
      opts.flatMap((o) => (o.type === "altCoa" ? [o.address] : [])),
    );
    list("mip6.bra.interval", opts.flatMap((o) => (o.type === "bra" ? [o.interval] : [])));
    list("mip6.ni.hni", opts.flatMap((o) => (o.type === "nonce" ? [o.homeNonceIndex] : [])));
    list("mip6.ni.cni", opts.flatMap((o) => (o.type === "nonce" ? [o.careOfNonceIndex] : [])));
    switch (mh.type) {
      case "bu":
        eq("mip6.bu.seqnr", mh.sequence);
        eq("mip6.bu.a_flag", bit(mh.flags.ack));
        eq("mip6.bu.h_flag", bit(mh.flags.home));
        eq("mip6.bu.l_flag", bit(mh.flags.linkLocal));
        eq("mip6.bu.k_flag", bit(mh.flags.key));
        eq("mip6.bu.m_flag", bit(mh.flags.mapReg));
        eq("mip6.nemo.bu.r_flag", bit(mh.flags.mobileRouter));
        eq("mip6.bu.p_flag", bit(mh.flags.proxy));
        eq("mip6.bu.f_flag", bit(mh.flags.forceUdp));
        eq("mip6.bu.t_flag", "0"); // RFC 5845 T and RFC 6089 B: reserved for us
        eq("mip6.bu.b_flag", "0");
        eq("mip6.bu.lifetime", mh.lifetime);
        break;
      case "ba":
        eq("mip6.ba.status", mh.status);
        eq("mip6.ba.k_flag", bit(mh.flags.key));
        eq("mip6.nemo.ba.r_flag", bit(mh.flags.mobileRouter));
        eq("mip6.ba.p_flag", bit(mh.flags.proxy));
        eq("mip6.ba.t_flag", "0");
        eq("mip6.ba.b_flag", "0");
        eq("mip6.ba.seqnr", mh.sequence);
        eq("mip6.ba.lifetime", mh.lifetime);
        break;
      case "be":
        eq("mip6.be.status", mh.status);
        eq("mip6.be.haddr", mh.homeAddress);
        break;
      case "brr":
        eq("mip6.binding_refresh_request", "00:00"); // the reserved field
        break;
      default:
        throw new Error(`${c.name}: no tshark check for ${mh.type}`);
    }
    return;
  }

  const icmp = c.icmp!;
  eq("icmpv6.type", ICMP_TYPE[icmp.type as keyof typeof ICMP_TYPE]);
  eq("icmpv6.code", 0);
  eq("icmpv6.checksum", hex16(py.checksum.rfc!));
  eq("icmpv6.checksum.status", 1); // tshark verified it: Good
  if (icmp.type === "packetTooBig") {
    eq("icmpv6.mtu", icmp.mtu);
    // The invoking packet, dissected as the second IPv6 header.
    const inner = icmp.invoking;
    assert.equal(all("ipv6.src")[1], "2001:db8:2000::10", `${c.name}: inner src`);
    assert.equal(all("ipv6.dst")[1], "2001:db8:5000::7", `${c.name}: inner dst`);
    assert.equal(
      one("data.data").replaceAll(":", ""),
      toHex(inner.subarray(40)),
      `${c.name}: inner payload`,
    );
    return;
  }
  if (!("options" in icmp)) throw new Error(`${c.name}: no tshark check for ${icmp.type}`);
  const opts = icmp.options;
  list(
    "icmpv6.opt.type",
    opts.map((o) => ND_OPTION_CODE[o.type as keyof typeof ND_OPTION_CODE]),
  );
  list(
    "icmpv6.opt.src_linkaddr",
    opts.flatMap((o) => (o.type === "sourceLinkLayer" ? [o.mac] : [])),
  );
  list(
    "icmpv6.opt.target_linkaddr",
    opts.flatMap((o) => (o.type === "targetLinkLayer" ? [o.mac] : [])),
  );
  list("icmpv6.opt.mtu", opts.flatMap((o) => (o.type === "mtu" ? [o.mtu] : [])));
  const prefixes = opts.flatMap((o) => (o.type === "prefixInfo" ? [o] : []));
  list("icmpv6.opt.prefix", prefixes.map((p) => p.prefix));
  list("icmpv6.opt.prefix.length", prefixes.map((p) => p.prefixLength));
  list("icmpv6.opt.prefix.flag.l", prefixes.map((p) => bit(p.onLink)));
  list("icmpv6.opt.prefix.flag.a", prefixes.map((p) => bit(p.autonomous)));
  list("icmpv6.opt.prefix.flag.r", prefixes.map(() => "0"));
  list("icmpv6.opt.prefix.flag.reserved", prefixes.map(() => "0"));
  list("icmpv6.opt.prefix.valid_lifetime", prefixes.map((p) => p.validLifetime));
  list("icmpv6.opt.prefix.preferred_lifetime", prefixes.map((p) => p.preferredLifetime));
  switch (icmp.type) {
    case "neighborSolicitation":
      eq("icmpv6.reserved", "00:00:00:00");
      eq("icmpv6.nd.ns.target_address", icmp.target);
      break;
    case "neighborAdvertisement":
      eq("icmpv6.nd.na.flag.r", bit(icmp.router));
      eq("icmpv6.nd.na.flag.s", bit(icmp.solicited));
      eq("icmpv6.nd.na.flag.o", bit(icmp.override));
      eq("icmpv6.nd.na.flag.rsv", 0);
      eq("icmpv6.nd.na.target_address", icmp.target);
      break;
    case "routerSolicitation":
      eq("icmpv6.reserved", "00:00:00:00");
      break;
    case "routerAdvertisement":
      eq("icmpv6.nd.ra.cur_hop_limit", icmp.curHopLimit);
      eq("icmpv6.nd.ra.flag.m", bit(icmp.managed));
      eq("icmpv6.nd.ra.flag.o", bit(icmp.other));
      eq("icmpv6.nd.ra.flag.h", 0);
      eq("icmpv6.nd.ra.flag.prf", 0);
      eq("icmpv6.nd.ra.flag.p", 0);
      eq("icmpv6.nd.ra.flag.rsv", 0);
      eq("icmpv6.nd.ra.router_lifetime", icmp.routerLifetime);
      eq("icmpv6.nd.ra.reachable_time", icmp.reachableTime);
      eq("icmpv6.nd.ra.retrans_timer", icmp.retransTimer);
      break;
    default:
      throw new Error(`${c.name}: no tshark check for ${JSON.stringify(icmp)}`);
  }
}

Deno.test({
  name: "oracle/tshark: MH, HAO, RH2, ND and PTB built by our codecs dissect to the same fields",
  ignore: needsScapy(["tshark"]),
  async fn() {
    const cases = ourCases();
    const ptb = ptbTruncationCase();
    const frames = [
      ...cases.map((c) => frameFor(c.packet, c.ipv6.dst, ADDR.haMac)),
      frameFor(ptb.packet, ADDR.hoa, ADDR.haMac),
    ];
    const [dissected, py] = await Promise.all([
      tsharkDissect(frames),
      runScapyOracle<PyResult[]>("parse", [
        ...cases.map((c) => ({ name: c.name, hex: toHex(c.packet) })),
        { name: "ptb_truncated", hex: toHex(ptb.packet) },
      ]),
    ]);
    assert.equal(dissected.length, cases.length + 1);
    cases.forEach((c, i) => {
      const t = dissected[i];
      // RFC 2464 §7: multicast goes to 33:33 + the low 32 bits of the destination.
      const low32 = Array.from(c.packet.subarray(36, 40), (b) => b.toString(16).padStart(2, "0"));
      const wantDst = isMulticast(c.ipv6.dst) ? ["33", "33", ...low32].join(":") : ADDR.vmMac;
      assert.equal(t.fields.get("eth.dst")?.[0], wantDst, `${c.name}: eth.dst`);
      assert.equal(t.fields.get("eth.src")?.[0], ADDR.haMac, `${c.name}: eth.src`);
      checkCase(c, t, py[i]);
    });

    // Packet Too Big with an invoking packet too large to quote whole: the whole
    // ICMPv6 packet is cut to the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
    const t = dissected[cases.length];
    const p = py[cases.length];
    assert.equal(ptb.packet.length, 1280);
    assert.equal(t.malformed, false, "ptb_truncated: malformed");
    assert.equal(t.fields.get("frame.len")?.[0], String(14 + 1280));
    assert.deepEqual(t.fields.get("ipv6.plen"), ["1240", String(ptb.invoking.length - 40)]);
    assert.deepEqual(t.fields.get("icmpv6.mtu"), ["1280"]);
    assert.deepEqual(t.fields.get("icmpv6.checksum.status"), ["1"]);
    assert.deepEqual(t.fields.get("icmpv6.checksum"), [hex16(p.checksum.rfc!)]);
    assert.equal(p.checksum.stored, p.checksum.rfc, "ptb_truncated: checksum");
    assert.deepEqual(t.fields.get("ipv6.src"), [ADDR.ha, ADDR.hoa]);
    // The quoted part is a prefix of the invoking packet.
    const quoted = t.fields.get("data.data")?.[0]?.replaceAll(":", "") ?? "";
    assert.equal(quoted, toHex(ptb.invoking.subarray(40, 1280 - 48)));
  },
});
