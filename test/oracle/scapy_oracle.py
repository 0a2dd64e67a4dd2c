#!/usr/bin/python3
"""Scapy oracle for Kagemusha's packet codecs (run with Debian's /usr/bin/python3).

  scapy_oracle.py check   -> prints {"scapy": version} when scapy imports
  scapy_oracle.py build   -> packets BUILT BY SCAPY, as JSON on stdout:
                             [{name, hex, fields, checksum}]
  scapy_oracle.py parse   -> reads [{name, hex}] (whole IPv6 packets) as JSON on
                             stdin, prints [{name, fields, checksum}]

`fields` is scapy's dissection of the bytes, written in the vocabulary of
src/wire's Repr types (MobilityRepr, Icmpv6Repr, ...) so that the Deno side can
compare with deepEqual. `checksum` holds:
  stored  - the checksum field in the bytes,
  rfc     - computed here by hand, without scapy and without Kagemusha: walk the
            extension headers, pseudo-header source = HoA when a Home Address
            option is present (RFC 6275 sec. 6.1.1 / 6.3), destination = the type 2
            routing header's address when segments left is 1 (RFC 8200 sec. 8.1,
            RFC 6275 sec. 6.4), RFC 1071 one's complement sum,
  offset  - where the upper layer (MH or ICMPv6) starts in the packet,
  scapy   - scapy's own in6_chksum() over the same bytes. Scapy 2.5 only picks the
            HoA when the Destination Options header holds exactly one option
            (the HAO), so a re-dissected header with PadN + HAO makes it sum over
            the CoA; we hand it a header with the HAO alone (the quirk noted in
            DESIGN.md), everything else is scapy's.
"""

import json
import struct
import sys

from scapy.all import raw
from scapy.config import conf
from scapy.layers.inet6 import (
    HAO,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    MIP6MH_BA,
    MIP6MH_BE,
    MIP6MH_BRR,
    MIP6MH_BU,
    MIP6OptAltCoA,
    MIP6OptBRAdvice,
    MIP6OptNonceIndices,
    Pad1,
    PadN,
    in6_chksum,
)
from scapy.layers.inet import UDP
from scapy.packet import NoPayload, Raw

conf.verb = 0

MH_CLASSES = (MIP6MH_BU, MIP6MH_BA, MIP6MH_BE, MIP6MH_BRR)
ICMP_CLASSES = (ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6PacketTooBig)


# ---------------------------------------------------------------- checksums


def ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = 0
    for (w,) in struct.iter_unpack("!H", data):
        s += w
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def rfc_checksum(pkt: bytes) -> dict:
    """Independent upper-layer checksum: no scapy, no Kagemusha code."""
    plen = struct.unpack("!H", pkt[4:6])[0]
    end = 40 + plen
    src, dst, nh, off = pkt[8:24], pkt[24:40], pkt[6], 40
    while nh in (0, 43, 60):  # hop-by-hop, routing, destination options
        hlen = (pkt[off + 1] + 1) * 8
        if nh == 60:
            i = off + 2
            while i < off + hlen:
                t = pkt[i]
                if t == 0:  # Pad1
                    i += 1
                    continue
                ln = pkt[i + 1]
                if t == 0xC9 and ln == 16:  # Home Address option
                    src = pkt[i + 2 : i + 18]
                i += 2 + ln
        elif nh == 43 and pkt[off + 2] == 2 and pkt[off + 3] == 1:  # RH2, segleft 1
            dst = pkt[off + 8 : off + 24]
        nh, off = pkt[off], off + hlen
    upper = bytearray(pkt[off:end])
    at = {135: 4, 58: 2}.get(nh)
    if at is None:
        return {"proto": nh}
    stored = struct.unpack("!H", upper[at : at + 2])[0]
    upper[at : at + 2] = b"\0\0"
    pseudo = src + dst + struct.pack("!I", len(upper)) + b"\0\0\0" + bytes([nh])
    rfc = ~ones_complement_sum(pseudo + bytes(upper)) & 0xFFFF
    return {"proto": nh, "offset": off, "stored": stored, "rfc": rfc}


def scapy_checksum(p, pkt: bytes, info: dict):
    """Scapy's in6_chksum over the original upper-layer bytes (checksum zeroed)."""
    upper_layer = None
    layer = p
    while not isinstance(layer, NoPayload):
        if isinstance(layer, MH_CLASSES + ICMP_CLASSES):
            upper_layer = layer
            break
        layer = layer.payload
    if upper_layer is None or "offset" not in info:
        return None
    if p.haslayer(IPv6ExtHdrDestOpt):
        d = p[IPv6ExtHdrDestOpt]
        haos = [o for o in d.options if isinstance(o, HAO)]
        if haos and len(d.options) != 1:  # scapy quirk: HAO must be alone
            d.options = haos[:1]
    end = 40 + struct.unpack("!H", pkt[4:6])[0]
    upper = bytearray(pkt[info["offset"] : end])
    at = 4 if info["proto"] == 135 else 2
    upper[at : at + 2] = b"\0\0"
    return in6_chksum(info["proto"], upper_layer.underlayer, bytes(upper))


# ---------------------------------------------------------------- describe


def mh_options(opts, reserved):
    out = []
    for o in opts:
        if isinstance(o, (Pad1, PadN)):
            if isinstance(o, PadN) and any(o.optdata):
                reserved.append("mh PadN data")
            continue
        if isinstance(o, MIP6OptBRAdvice):
            out.append({"type": "bra", "interval": o.rinter})
        elif isinstance(o, MIP6OptAltCoA):
            out.append({"type": "altCoa", "address": o.acoa})
        elif isinstance(o, MIP6OptNonceIndices):
            out.append({"type": "nonce", "homeNonceIndex": o.hni, "careOfNonceIndex": o.coni})
        else:
            b = raw(o)
            out.append({"type": "unknown", "code": b[0], "data": b[2:].hex()})
    return out


def describe_mh(m, reserved):
    if m.res:
        reserved.append("mh reserved")
    if isinstance(m, MIP6MH_BU):
        f = int(m.flags)
        if m.reserved & 0xFF:
            reserved.append("bu reserved")
        return {
            "type": "bu",
            "sequence": m.seq,
            "flags": {
                "ack": bool(f & 0x40),
                "home": bool(f & 0x20),
                "linkLocal": bool(f & 0x10),
                "key": bool(f & 0x08),
                "mapReg": bool(f & 0x04),
                "mobileRouter": bool(f & 0x02),
                "proxy": bool(f & 0x01),
                # scapy 2.5 knows 7 flags; F (RFC 5555) is the top bit of its "reserved"
                "forceUdp": bool(m.reserved & 0x100),
            },
            "lifetime": m.mhtime,
            "options": mh_options(m.options, reserved),
        }
    if isinstance(m, MIP6MH_BA):
        f = int(m.flags)
        if m.res2:
            reserved.append("ba reserved")
        return {
            "type": "ba",
            "status": m.status,
            "flags": {"key": bool(f & 4), "mobileRouter": bool(f & 2), "proxy": bool(f & 1)},
            "sequence": m.seq,
            "lifetime": m.mhtime,
            "options": mh_options(m.options, reserved),
        }
    if isinstance(m, MIP6MH_BE):
        if m.reserved:
            reserved.append("be reserved")
        return {"type": "be", "status": m.status, "homeAddress": m.ha}
    if isinstance(m, MIP6MH_BRR):
        if m.res2:
            reserved.append("brr reserved")
        return {"type": "brr", "options": mh_options(m.options, reserved)}
    raise ValueError(f"unexpected MH {m.summary()}")


def nd_options(layer, reserved):
    out = []
    o = layer.payload
    while not isinstance(o, NoPayload):
        if isinstance(o, ICMPv6NDOptDstLLAddr):  # subclass of SrcLLAddr: test first
            out.append({"type": "targetLinkLayer", "mac": o.lladdr})
        elif isinstance(o, ICMPv6NDOptSrcLLAddr):
            out.append({"type": "sourceLinkLayer", "mac": o.lladdr})
        elif isinstance(o, ICMPv6NDOptPrefixInfo):
            if o.R or o.res1 or o.res2:
                reserved.append("prefix info reserved")
            out.append({
                "type": "prefixInfo",
                "prefix": o.prefix,
                "prefixLength": o.prefixlen,
                "onLink": bool(o.L),
                "autonomous": bool(o.A),
                "validLifetime": o.validlifetime,
                "preferredLifetime": o.preferredlifetime,
            })
        elif isinstance(o, ICMPv6NDOptMTU):
            if o.res:
                reserved.append("mtu reserved")
            out.append({"type": "mtu", "mtu": o.mtu})
        elif isinstance(o, Raw):
            out.append({"type": "trailing", "data": o.load.hex()})
        else:
            b = raw(o)[: o.len * 8] if getattr(o, "len", None) else raw(o)
            out.append({"type": "unknown", "code": b[0], "data": b[2:].hex()})
        o = o.payload
    return out


def describe_icmp(c, reserved):
    if c.code:
        reserved.append("icmp code")
    if isinstance(c, ICMPv6ND_NS):
        if c.res:
            reserved.append("ns reserved")
        return {"type": "neighborSolicitation", "target": c.tgt, "options": nd_options(c, reserved)}
    if isinstance(c, ICMPv6ND_NA):
        if c.res:
            reserved.append("na reserved")
        return {
            "type": "neighborAdvertisement",
            "router": bool(c.R),
            "solicited": bool(c.S),
            "override": bool(c.O),
            "target": c.tgt,
            "options": nd_options(c, reserved),
        }
    if isinstance(c, ICMPv6ND_RS):
        if c.res:
            reserved.append("rs reserved")
        return {"type": "routerSolicitation", "options": nd_options(c, reserved)}
    if isinstance(c, ICMPv6ND_RA):
        if c.H or c.prf or c.P or c.res:
            reserved.append("ra H/prf/P/reserved bits")
        return {
            "type": "routerAdvertisement",
            "curHopLimit": c.chlim,
            "managed": bool(c.M),
            "other": bool(c.O),
            "routerLifetime": c.routerlifetime,
            "reachableTime": c.reachabletime,
            "retransTimer": c.retranstimer,
            "options": nd_options(c, reserved),
        }
    if isinstance(c, ICMPv6PacketTooBig):
        return {"type": "packetTooBig", "mtu": c.mtu, "invoking": raw(c.payload).hex()}
    raise ValueError(f"unexpected ICMPv6 {c.summary()}")


def describe(p) -> dict:
    reserved = []
    out = {
        "ipv6": {
            "src": p.src,
            "dst": p.dst,
            "nextHeader": p.nh,
            "hopLimit": p.hlim,
            "payloadLength": p.plen,
        },
    }
    layer = p.payload
    while not isinstance(layer, NoPayload):
        if isinstance(layer, IPv6ExtHdrDestOpt):
            for o in layer.options:
                if isinstance(o, HAO):
                    out["homeAddress"] = o.hoa
                elif isinstance(o, PadN) and any(o.optdata):
                    reserved.append("destopt PadN data")
                elif not isinstance(o, (Pad1, PadN)):
                    out.setdefault("destOptsOther", []).append(raw(o).hex())
        elif isinstance(layer, IPv6ExtHdrRouting):
            if layer.reserved:
                reserved.append("rh2 reserved")
            out["rh2"] = {
                "routingType": layer.type,
                "segmentsLeft": layer.segleft,
                "homeAddress": layer.addresses[0] if layer.addresses else None,
            }
        elif isinstance(layer, MH_CLASSES):
            out["mh"] = describe_mh(layer, reserved)
            break
        elif isinstance(layer, ICMP_CLASSES):
            out["icmp"] = describe_icmp(layer, reserved)
            break
        else:
            out["other"] = layer.summary()
            break
        layer = layer.payload
    out["reservedNonZero"] = reserved
    return out


def analyse(name: str, pkt: bytes) -> dict:
    p = IPv6(pkt)
    fields = describe(p)
    info = rfc_checksum(pkt)
    ck = {"stored": info.get("stored"), "rfc": info.get("rfc"), "offset": info.get("offset")}
    ck["scapy"] = scapy_checksum(IPv6(pkt), pkt, info)
    return {"name": name, "hex": pkt.hex(), "fields": fields, "checksum": ck}


# ---------------------------------------------------------------- build


HOA = "2001:db8:2000::10"
HA = "2001:db8:2000::1"
COA = "2001:db8:3000::3"
COA2 = "2001:db8:4000::3"


def scapy_packets():
    """Packets built by scapy. BU flags are passed explicitly (scapy defaults to K|H|A)."""
    a, h, l, k = 0x40, 0x20, 0x10, 0x08
    return [
        ("bu_hao_altcoa", IPv6(src=COA, dst=HA)
         / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
         / MIP6MH_BU(seq=4242, flags=a | h, mhtime=150, options=[MIP6OptAltCoA(acoa=COA)])),
        ("bu_hao_alk_dereg", IPv6(src=COA2, dst=HA, hlim=17)
         / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
         / MIP6MH_BU(seq=65535, flags=a | l | k, mhtime=0)),
        ("ba_rh2_bra", IPv6(src=HA, dst=COA)
         / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
         / MIP6MH_BA(status=0, flags=0, seq=4242, mhtime=150,
                     options=[MIP6OptBRAdvice(rinter=60)])),
        ("ba_rh2_135_k", IPv6(src=HA, dst=COA2)
         / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
         / MIP6MH_BA(status=135, flags=4, seq=77, mhtime=0)),
        ("be_unknown_hao", IPv6(src=HA, dst=COA) / MIP6MH_BE(status=1, ha=HOA)),
        ("brr_rh2", IPv6(src=HA, dst=COA)
         / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA]) / MIP6MH_BRR()),
        ("ns_slla", IPv6(src="fe80::5054:ff:fe00:10", dst="ff02::1:ff00:1", hlim=255)
         / ICMPv6ND_NS(tgt=HA) / ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:00:00:10")),
        ("ns_dad", IPv6(src="::", dst="ff02::1:ff00:10", hlim=255) / ICMPv6ND_NS(tgt=HOA)),
        ("na_tlla", IPv6(src=HA, dst=HOA, hlim=255)
         / ICMPv6ND_NA(R=1, S=1, O=0, tgt=HA) / ICMPv6NDOptDstLLAddr(lladdr="52:54:00:aa:bb:01")),
        ("na_unsolicited_override", IPv6(src=HOA, dst="ff02::1", hlim=255)
         / ICMPv6ND_NA(R=0, S=0, O=1, tgt=HOA) / ICMPv6NDOptDstLLAddr(lladdr="52:54:00:00:00:10")),
        ("ra_slla_prefix_mtu", IPv6(src="fe80::1", dst="ff02::1", hlim=255)
         / ICMPv6ND_RA(chlim=64, M=0, O=1, prf=0, routerlifetime=1800,
                       reachabletime=30000, retranstimer=1000)
         / ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:aa:bb:01")
         / ICMPv6NDOptPrefixInfo(prefix="2001:db8:2000::", prefixlen=64, L=1, A=1,
                                 validlifetime=2592000, preferredlifetime=604800)
         / ICMPv6NDOptMTU(mtu=1500)),
        ("rs_slla", IPv6(src="fe80::5054:ff:fe00:10", dst="ff02::2", hlim=255)
         / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:00:00:10")),
        ("ptb", IPv6(src=HA, dst=HOA)
         / ICMPv6PacketTooBig(mtu=1400)
         / raw(IPv6(src=HOA, dst="2001:db8:5000::7") / UDP(sport=4000, dport=5001)
               / Raw(b"k" * 64))),
    ]


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "check":
        import scapy

        print(json.dumps({"scapy": scapy.VERSION}))
    elif mode == "build":
        print(json.dumps([analyse(n, raw(p)) for n, p in scapy_packets()]))
    elif mode == "parse":
        cases = json.load(sys.stdin)
        print(json.dumps([analyse(c["name"], bytes.fromhex(c["hex"])) for c in cases]))
    else:
        sys.exit("usage: scapy_oracle.py check|build|parse")


if __name__ == "__main__":
    main()
