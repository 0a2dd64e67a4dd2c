#!/usr/bin/python3
"""An independent home agent for testing `kagemusha mn`, written with scapy (Debian's
python3-scapy, run with /usr/bin/python3), NOT with Kagemusha's codecs.

It sniffs Binding Updates on IFACE (IPv6 + Destination Options with the Home Address option +
Mobility Header type 5), decodes them by hand from the raw bytes (RFC 6275 sec. 6.1.7, 6.3),
verifies the MH checksum by hand over the home address (sec. 6.1.1), and answers each with a
Binding Acknowledgement carrying a type 2 routing header (scapy builds the packet; the
checksum, over the HoA as final destination, is computed here: sec. 6.1.1 / RFC 8200 sec. 8.1).

With --esp (RFC 4877 sec. 4) the BUs arrive as IPv6 | DestOpts(HAO) | ESP | MH (or IPv6 | ESP |
MH from home): scapy's own ESP (scapy.layers.ipsec.SecurityAssociation) decrypts them with the
"bu" SA, the decrypted packet is re-parsed (IPv6(raw(dec)), DESIGN.md) and decoded by hand as
above; BAs are built in the clear as above and encrypted by scapy in transport mode with the
"ba" SA (ESP after the type 2 routing header).

Every BU seen and every message sent is printed as one JSON line on stdout:
  {"event": "bu", "src", "dst", "hoa", "seq", "flags": {"A","H","L","K"}, "lifetime",
   "altcoa", "checksum_ok", "t" (capture time, seconds), "esp": {"spi", "seq"} | null}
  {"event": "esp_error", "error"}      (an ESP BU scapy could not decrypt)
  {"event": "ba", "dst", "hoa", "seq", "status", "lifetime", "esp": ESP seq | null}
  {"event": "brr", "dst", "hoa"}
  {"event": "na", "src", "dst", "target", "R", "S", "O", "tlla", "ethsrc", "ethdst"}

Options:
  --iface IFACE --ha ADDR     where to listen, the HA address BUs must be sent to
  --status N                  BA status for every BU (default 0)
  --first-status N --first-seq N
                              answer the first BU with this status/sequence instead (e.g. 135
                              and the HA's "last accepted" sequence number)
  --lifetime UNITS            granted lifetime in 4 s units (default: what the BU asked)
  --silent N                  do not answer the first N BUs (retransmission tests)
  --brr-after S               S seconds after the first accepted registration, send a Binding
                              Refresh Request (sec. 6.1.2) to the HoA via the CoA with RH2
  --duration S                exit after S seconds (default 120)
  --esp JSON                  {"bu": SA, "ba": SA}, each {spi, algorithm, key, authKey?} in
                              Kagemusha's vocabulary (src/ipsec/config.ts): decrypt ESP BUs,
                              protect every BA
  --plain-ba N                with --esp: answer the first N BUs with an unprotected BA
  --replay-ba                 with --esp: send every protected BA twice (the same bytes)
"""

import argparse
import json
import socket
import struct
import sys
import threading
import time

from scapy.all import Ether, conf, get_if_hwaddr, sendp, sniff, raw
from scapy.layers.inet6 import IPv6, IPv6ExtHdrRouting, MIP6MH_BA, MIP6MH_BRR
from scapy.layers.ipsec import ESP, SecurityAssociation

conf.verb = 0


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def mh_checksum(src, dst, mh):
    """RFC 8200 sec. 8.1 pseudo-header + RFC 1071 sum; the MH checksum field must be zero."""
    ph = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
          + struct.pack("!I", len(mh)) + b"\0\0\0" + bytes([135]))
    return (~csum(ph + mh)) & 0xFFFF


def ntop(b):
    return socket.inet_ntop(socket.AF_INET6, bytes(b))


def make_sa(sa):
    """scapy's SA for one of Kagemusha's SA configurations (as test/ipsec/scapy_esp.py)."""
    key = bytes.fromhex(sa["key"])
    auth = bytes.fromhex(sa.get("authKey", ""))
    alg = sa["algorithm"]
    if alg.startswith("aes-gcm"):
        return SecurityAssociation(ESP, spi=sa["spi"], crypt_algo="AES-GCM", crypt_key=key,
                                   auth_algo="NULL")
    if alg == "aes-cbc-hmac-sha256":
        return SecurityAssociation(ESP, spi=sa["spi"], crypt_algo="AES-CBC", crypt_key=key,
                                   auth_algo="SHA2-256-128", auth_key=auth)
    if alg == "null-hmac-sha256":
        return SecurityAssociation(ESP, spi=sa["spi"], crypt_algo="NULL", crypt_key=None,
                                   auth_algo="SHA2-256-128", auth_key=auth)
    raise ValueError(alg)


def esp_offset(b):
    """Offset of the ESP header in IPv6 bytes b (after HBH/DestOpts/Routing), or None."""
    if len(b) < 40 or b[0] >> 4 != 6:
        return None
    nh, off = b[6], 40
    while nh in (0, 60, 43):
        if off + 8 > len(b):
            return None
        nh, off = b[off], off + (b[off + 1] + 1) * 8
    return off if nh == 50 else None


def decrypt_bu(pkt, sa):
    """The sniffed ESP BU decrypted by scapy, as plain IPv6 bytes (HAO kept), and its ESP
    SPI/sequence; raises on a failed ICV."""
    ip = pkt[IPv6]
    esp = ip[ESP]
    info = {"spi": esp.spi, "seq": esp.seq}
    dec = sa.decrypt(ip)
    # scapy guesses the payload class from the IPv6 header, not from the Destination Options
    # header that now names the MH: re-parse the reassembled bytes (DESIGN.md).
    return bytes(raw(IPv6(raw(dec)))), info


def decode_bu(pkt, b=None):
    """Hand decoding of IPv6 + DestOpts(HAO) + MH BU from raw bytes; None if not such a BU."""
    if Ether not in pkt:
        return None
    if b is None:
        b = bytes(pkt[Ether].payload)
    if len(b) < 40 or b[0] >> 4 != 6:
        return None
    src, dst, nh = ntop(b[8:24]), ntop(b[24:40]), b[6]
    off = 40
    hoa = None
    while nh in (0, 60, 43):
        if off + 8 > len(b):
            return None
        hlen = (b[off + 1] + 1) * 8
        if nh == 60:
            p = off + 2
            while p < off + hlen:
                t = b[p]
                if t == 0:
                    p += 1
                    continue
                ln = b[p + 1]
                if t == 0xC9 and ln == 16:
                    hoa = ntop(b[p + 2:p + 18])
                p += 2 + ln
        nh = b[off]
        off += hlen
    if nh != 135 or off + 12 > len(b):
        return None
    home = hoa is None
    if home:
        # From the home link (RFC 6275 sec. 11.5.4): no HAO, the source is the home address.
        hoa = src
    mh = b[off:off + (b[off + 1] + 1) * 8]
    if mh[2] != 5:
        return None
    zeroed = mh[:4] + b"\0\0" + mh[6:]
    stored = struct.unpack("!H", mh[4:6])[0]
    seq = struct.unpack("!H", mh[6:8])[0]
    fl = mh[8]
    lifetime = struct.unpack("!H", mh[10:12])[0]
    altcoa = None
    p = 12
    while p < len(mh):
        t = mh[p]
        if t == 0:
            p += 1
            continue
        ln = mh[p + 1]
        if t == 3 and ln == 16:
            altcoa = ntop(mh[p + 2:p + 18])
        p += 2 + ln
    return {
        "event": "bu",
        "src": src,
        "dst": dst,
        "hoa": hoa,
        "seq": seq,
        "flags": {"A": bool(fl & 0x80), "H": bool(fl & 0x40), "L": bool(fl & 0x20),
                  "K": bool(fl & 0x10)},
        "lifetime": lifetime,
        "altcoa": altcoa,
        "checksum_ok": mh_checksum(hoa, dst, zeroed) == stored,
        "home": home,
        "t": float(pkt.time),
        "_mac": pkt[Ether].src,
    }


def decode_na(pkt):
    """A Neighbor Advertisement (RFC 4861 sec. 4.4) decoded by hand, or None."""
    if Ether not in pkt:
        return None
    b = bytes(pkt[Ether].payload)
    if len(b) < 64 or b[0] >> 4 != 6 or b[6] != 58 or b[40] != 136:
        return None
    tlla = None
    p = 64
    while p + 8 <= len(b) and b[p + 1] > 0:
        if b[p] == 2:
            tlla = ":".join("%02x" % x for x in b[p + 2:p + 8])
        p += b[p + 1] * 8
    return {"event": "na", "src": ntop(b[8:24]), "dst": ntop(b[24:40]), "target": ntop(b[48:64]),
            "R": bool(b[44] & 0x80), "S": bool(b[44] & 0x40), "O": bool(b[44] & 0x20),
            "tlla": tlla, "ethsrc": pkt[Ether].src, "ethdst": pkt[Ether].dst}


def with_rh2(ha, coa, hoa, mh_layer):
    """IPv6(HA -> CoA) / RH2(HoA, segleft 1) / MH, MH checksum over HA -> HoA by hand."""
    p = IPv6(src=ha, dst=coa, hlim=64) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[hoa]) / mh_layer
    b = bytearray(raw(p))
    mh_off = 40 + 24
    b[mh_off + 4:mh_off + 6] = b"\0\0"
    c = mh_checksum(ha, hoa, bytes(b[mh_off:]))
    b[mh_off + 4:mh_off + 6] = struct.pack("!H", c)
    return bytes(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--ha", required=True)
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--first-status", type=int)
    ap.add_argument("--first-seq", type=int)
    ap.add_argument("--lifetime", type=int)
    ap.add_argument("--silent", type=int, default=0)
    ap.add_argument("--brr-after", type=float)
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--home-mac", help="Ethernet destination of BAs to a BU sent from home")
    ap.add_argument("--watch-na", help="also report Neighbor Advertisements for this target")
    ap.add_argument("--esp", help='{"bu": SA, "ba": SA} (JSON)')
    ap.add_argument("--plain-ba", type=int, default=0)
    ap.add_argument("--replay-ba", action="store_true")
    a = ap.parse_args()
    mymac = get_if_hwaddr(a.iface)
    state = {"n": 0, "brr_sent": False}
    esp_cfg = json.loads(a.esp) if a.esp else None
    bu_sa = make_sa(esp_cfg["bu"]) if esp_cfg else None
    ba_sa = make_sa(esp_cfg["ba"]) if esp_cfg else None

    def send_ip(ipbytes, dstmac):
        sendp(Ether(src=mymac, dst=dstmac, type=0x86DD) / ipbytes, iface=a.iface)

    def protect(ipbytes):
        """The plain BA packet encrypted by scapy in transport mode; its ESP sequence."""
        enc = ba_sa.encrypt(IPv6(ipbytes))
        return bytes(raw(enc)), enc[ESP].seq

    def handle(pkt):
        if a.watch_na:
            na = decode_na(pkt)
            if na is not None and na["target"] == a.watch_na:
                out(na)
                return
        esp = None
        if Ether in pkt and esp_offset(bytes(pkt[Ether].payload)) is not None:
            if bu_sa is None or IPv6 not in pkt or pkt[IPv6].dst != a.ha:
                return
            try:
                plain, esp = decrypt_bu(pkt, bu_sa)
            except Exception as e:  # integrity failure, unknown SPI, bad padding
                out({"event": "esp_error", "error": "%s: %s" % (type(e).__name__, e)})
                return
            bu = decode_bu(pkt, plain)
        else:
            bu = decode_bu(pkt)
        if bu is None or bu["dst"] != a.ha:
            return
        bu["esp"] = esp
        mac = bu.pop("_mac")
        out(bu)
        state["n"] += 1
        if state["n"] <= a.silent:
            return
        if state["n"] == a.silent + 1 and a.first_status is not None:
            status, seq = a.first_status, a.first_seq if a.first_seq is not None else bu["seq"]
        else:
            status, seq = a.status, bu["seq"]
        lifetime = bu["lifetime"] if a.lifetime is None else a.lifetime
        if status >= 128:
            lifetime = 0
        ba = MIP6MH_BA(status=status, flags=0, seq=seq, mhtime=lifetime)
        if bu["home"]:
            # Care-of address = home address: the BA goes to the HoA, no RH2 (sec. 11.5.4).
            if not a.home_mac:
                return
            b = bytearray(raw(IPv6(src=a.ha, dst=bu["hoa"], hlim=64) / ba))
            b[44:46] = b"\0\0"
            b[44:46] = struct.pack("!H", mh_checksum(a.ha, bu["hoa"], bytes(b[40:])))
            ipbytes, dstmac = bytes(b), a.home_mac
        else:
            ipbytes, dstmac = with_rh2(a.ha, bu["src"], bu["hoa"], ba), mac
        esp_seq = None
        if ba_sa is not None and state["n"] > a.silent + a.plain_ba:
            ipbytes, esp_seq = protect(ipbytes)
        send_ip(ipbytes, dstmac)
        if esp_seq is not None and a.replay_ba:
            send_ip(ipbytes, dstmac)
        out({"event": "ba", "dst": bu["src"], "hoa": bu["hoa"], "seq": seq, "status": status,
             "lifetime": lifetime, "esp": esp_seq})
        if a.brr_after is not None and status < 128 and not state["brr_sent"] and bu["lifetime"] > 0:
            state["brr_sent"] = True

            def brr():
                b = with_rh2(a.ha, bu["src"], bu["hoa"], MIP6MH_BRR())
                send_ip(protect(b)[0] if ba_sa is not None else b, mac)
                out({"event": "brr", "dst": bu["src"], "hoa": bu["hoa"]})

            threading.Timer(a.brr_after, brr).start()

    sniff(iface=a.iface, prn=handle, store=False, timeout=a.duration,
          started_callback=lambda: out({"event": "ready", "mac": mymac}))


if __name__ == "__main__":
    main()
