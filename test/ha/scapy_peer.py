#!/usr/bin/python3
"""An independent Mobile IPv6 peer for the home agent tests, written with scapy and the
Python standard library only (none of Kagemusha's codecs).

It runs inside one network namespace and answers JSON requests, one per line on stdin,
with one JSON line on stdout. Roles:

- mobile node on the foreign link: send a Binding Update with a Home Address option
  (RFC 6275 section 6.1.7, 6.3; the MH checksum computed here with the HoA as source,
  section 6.1.1) and wait for the Binding Acknowledgement (type 2 routing header,
  checksum verified with the HoA as destination), or a Binding Error;
  answer echo requests that arrive IPv6-in-IPv6 through the tunnel (RFC 2473);
- node on the home link: capture Neighbor Advertisements, send Neighbor Solicitations;
- ESP (RFC 4303 transport mode, RFC 4877): Binding Updates encrypted with scapy's own
  SecurityAssociation (AES-GCM, AES-CBC + HMAC-SHA-256-128), the home agent's protected
  Binding Acknowledgements decrypted with it (DESIGN.md quirks: with a type 2 routing header
  the ESP part is rebuilt as IPv6(nh=50)/ESP(...) first; the result is re-dissected from bytes).

The Mobility Header bytes are built and parsed by hand (struct), scapy builds/dissects the
IPv6 headers, Destination Options and ICMPv6. Packets leave through a raw IPPROTO_RAW socket
(the kernel routes them), frames are read with an AF_PACKET socket.
"""

import json
import select
import socket
import struct
import sys
import threading
import time

from scapy.all import (  # noqa: E402
    HAO,
    ICMPv6ParamProblem,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    Ether,
    UDP,
    raw,
)
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation  # noqa: E402

ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4
MH = 135


def csum(src, dst, nh, data):
    """RFC 8200 section 8.1 upper-layer checksum over the pseudo-header."""
    ph = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    ph += struct.pack("!I", len(data)) + b"\0\0\0" + bytes([nh])
    s = ph + data
    if len(s) % 2:
        s += b"\0"
    total = sum(struct.unpack("!%dH" % (len(s) // 2), s))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def canon(a):
    return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, a))


def make_sa(sa, seq=1):
    """scapy's SecurityAssociation for an SA in Kagemusha's config vocabulary."""
    key = bytes.fromhex(sa["key"])
    auth = bytes.fromhex(sa.get("authKey", ""))
    alg = sa["algorithm"]
    if alg.startswith("aes-gcm"):
        return SecurityAssociation(ESP, spi=sa["spi"], seq_num=seq, crypt_algo="AES-GCM",
                                   crypt_key=key, auth_algo="NULL")
    if alg == "aes-cbc-hmac-sha256":
        return SecurityAssociation(ESP, spi=sa["spi"], seq_num=seq, crypt_algo="AES-CBC",
                                   crypt_key=key, auth_algo="SHA2-256-128", auth_key=auth)
    if alg == "null-hmac-sha256":
        return SecurityAssociation(ESP, spi=sa["spi"], seq_num=seq, crypt_algo="NULL",
                                   crypt_key=None, auth_algo="SHA2-256-128", auth_key=auth)
    raise ValueError(alg)


def mh_bu(seq, lifetime, flags, alt_coa, hoa, ha, payload_proto=59, header_len=None):
    """Binding Update (RFC 6275 section 6.1.7), checksum over HoA -> HA."""
    f = 0
    for ch, bit in (("A", 0x80), ("H", 0x40), ("L", 0x20), ("K", 0x10), ("R", 0x04),
                    ("P", 0x02)):
        if ch in flags:
            f |= bit
    body = struct.pack("!HBBH", seq, f, 0, lifetime)  # seq, flags, reserved, lifetime
    if alt_coa:
        # PadN(0) then the Alternate Care-of Address option at 8n+6
        opts = b"\x01\x00" + b"\x03\x10" + socket.inet_pton(socket.AF_INET6, alt_coa)
    else:
        opts = b"\x01\x02\x00\x00"  # PadN(2) to a multiple of 8
    msg = bytearray(struct.pack("!BBBBH", payload_proto, 0, 5, 0, 0) + body + opts)
    msg[1] = len(msg) // 8 - 1
    if header_len is not None:  # a Header Len that disagrees with the message (section 9.2)
        msg[1] = header_len
        msg = msg[: (header_len + 1) * 8]
    c = csum(hoa, ha, MH, bytes(msg))
    msg[4], msg[5] = c >> 8, c & 0xFF
    return bytes(msg)


def mh_unknown(mh_type, src, dst):
    msg = bytearray(struct.pack("!BBBBH", 59, 1, mh_type, 0, 0) + b"\0" * 10)
    c = csum(src, dst, MH, bytes(msg))
    msg[4], msg[5] = c >> 8, c & 0xFF
    return bytes(msg)


class Peer:
    def __init__(self):
        self.tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        # Keep the kernel (no ip6_tunnel) from answering tunnelled packets with ICMPv6 errors.
        self.sink41 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
        self.captures = {}
        self.responders = {}

    def send(self, pkt, dst):
        self.tx.sendto(raw(pkt), (dst, 0))

    @staticmethod
    def l2(iface):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
        s.bind((iface, ETH_P_IPV6))
        return s

    @staticmethod
    def frames(sock, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([sock], [], [], left)
            if not r:
                return
            data, addr = sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            yield Ether(data), time.monotonic()

    # ---- mobile node ------------------------------------------------------------------

    def parse_mh_reply(self, p, ha, coa, sa_ba=None):
        if IPv6 not in p or p[IPv6].src != canon(ha) or p[IPv6].dst != canon(coa):
            return None
        ip = p[IPv6]
        if ICMPv6ParamProblem in p:
            # RFC 6275 section 9.2 / RFC 4443 section 3.4: code 0 (erroneous header field) is
            # the home agent's; the kernel without MIP6 answers the HAO itself with code 2
            # (unrecognized option), which is not what these tests look for
            pp = p[ICMPv6ParamProblem]
            if pp.code != 0:
                return None
            return {"kind": "param_problem", "src": ip.src, "dst": ip.dst, "code": pp.code,
                    "pointer": pp.ptr, "invoking_hex": raw(pp.payload).hex()}
        rh2 = None
        layer = ip.payload
        nh = ip.nh
        if nh == 43:
            if not isinstance(layer, IPv6ExtHdrRouting) or layer.type != 2:
                return None
            rh2 = {"home": layer.addresses[0] if layer.addresses else None, "segleft": layer.segleft}
            nh = layer.nh
            layer = layer.payload
        esp = None
        if nh == 50:
            esp_raw = raw(layer)
            esp = {"spi": struct.unpack("!I", esp_raw[0:4])[0],
                   "seq": struct.unpack("!I", esp_raw[4:8])[0], "decrypted": False}
            if sa_ba is None or esp["spi"] != sa_ba["spi"]:
                return {"kind": "esp", "src": ip.src, "dst": ip.dst, "rh2": rh2, "esp": esp}
            # scapy 2.5 cannot decrypt with the RH2 in place (DESIGN.md): keep only ESP
            pkt = IPv6(src=ip.src, dst=ip.dst, nh=50) / ESP(esp_raw)
            try:
                dec = make_sa(sa_ba).decrypt(pkt)
            except IPSecIntegrityError as e:
                esp["error"] = "integrity: %s" % e
                return {"kind": "esp", "src": ip.src, "dst": ip.dst, "rh2": rh2, "esp": esp}
            dec = IPv6(raw(dec))  # re-dissected from bytes (DESIGN.md)
            esp["decrypted"] = True
            nh = dec.nh
            layer = dec.payload
        if nh != MH:
            return None
        b = raw(layer)
        if len(b) < 8:
            return None
        ck_dst = rh2["home"] if rh2 else ip.dst
        out = {
            "src": ip.src,
            "dst": ip.dst,
            "hlim": ip.hlim,
            "rh2": rh2,
            "mh_type": b[2],
            "cksum_ok": csum(ip.src, ck_dst, MH, b[: (b[1] + 1) * 8]) == 0,
        }
        if esp is not None:
            out["esp"] = esp
        if b[2] == 6:  # Binding Acknowledgement (RFC 6275 section 6.1.8)
            out.update(kind="ba", status=b[6], flags=b[7], seq=struct.unpack("!H", b[8:10])[0],
                       lifetime=struct.unpack("!H", b[10:12])[0])
        elif b[2] == 7:  # Binding Error (section 6.1.9)
            out.update(kind="be", status=b[6], hoa=socket.inet_ntop(socket.AF_INET6, b[8:24]))
        else:
            return None
        return out

    def cmd_bu(self, r):
        hoa, ha, coa = r["hoa"], r["ha"], r["coa"]
        # RFC 6275 section 6.1.1: the HoA is the pseudo-header source when a HAO is present;
        # bad_checksum sums over the CoA instead (what a kernel without MIP6 would do).
        ck_src = hoa if r.get("hao", True) and not r.get("bad_checksum") else coa
        mh = mh_bu(r["seq"], r["lifetime"], r.get("flags", "AH"), r.get("alt_coa"), ck_src, ha,
                   r.get("payload_proto", 59), r.get("header_len"))
        return self.signal(r, mh)

    def cmd_mh_unknown(self, r):
        hoa, ha = r["hoa"], r["ha"]
        return self.signal(r, mh_unknown(r["mh_type"], hoa, ha))

    def cmd_hao_udp(self, r):
        """A UDP datagram with a Home Address option (route-optimised traffic, section 9.3.1)."""
        return self.signal(r, None)

    def signal(self, r, mh):
        hoa, ha, coa = r["hoa"], r["ha"], r["coa"]
        if mh is None:
            pkt = (IPv6(src=coa, dst=ha) / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)])
                   / UDP(sport=4242, dport=4242) / b"kagemusha")
        elif r.get("hao", True):
            pkt = IPv6(src=coa, dst=ha) / IPv6ExtHdrDestOpt(nh=MH, options=[HAO(hoa=hoa)]) / mh
        else:
            pkt = IPv6(src=coa, dst=ha, nh=MH) / mh
        if r.get("sa_bu"):
            # ESP in transport mode, inserted by scapy after the Destination Options header
            # (RFC 4303 section 3.1.1): IPv6 | DestOpts (HAO) | ESP | MH
            pkt = make_sa(r["sa_bu"], seq=r.get("esp_seq", 1)).encrypt(IPv6(raw(pkt)))
        if r.get("dry"):  # built, not sent (for send_hex later)
            return {"reply": None, "sent_hex": raw(pkt).hex()}
        return self.exchange(r, raw(pkt))

    def exchange(self, r, data):
        """Send `data` (a whole IPv6 packet) and wait for the home agent's answer."""
        ha, coa = r["ha"], r["coa"]
        sock = self.l2(r["iface"])
        try:
            t0 = time.monotonic()
            self.tx.sendto(data, (ha, 0))
            for p, t in self.frames(sock, t0 + r.get("timeout", 3.0)):
                m = self.parse_mh_reply(p, ha, coa, r.get("sa_ba"))
                if m is not None:
                    m["latency_ms"] = (t - t0) * 1000
                    return {"reply": m, "sent_hex": data.hex()}
            return {"reply": None, "sent_hex": data.hex()}
        finally:
            sock.close()

    def cmd_send_hex(self, r):
        """Send packet bytes again (a replay), optionally with one octet flipped (tampering)."""
        data = bytearray(bytes.fromhex(r["hex"]))
        if r.get("flip") is not None:
            data[r["flip"]] ^= 0x01
        return self.exchange(r, bytes(data))

    # ---- tunnel (mobile node side) --------------------------------------------------------

    def cmd_responder_start(self, r):
        """Answer echo requests tunnelled from the HA to the CoA with tunnelled echo replies."""
        sock = self.l2(r["iface"])
        state = {"stop": False, "requests": [], "replies": 0}

        def run():
            while not state["stop"]:
                for p, _ in self.frames(sock, time.monotonic() + 0.2):
                    if IPv6 not in p or p[IPv6].nh != 41:
                        continue
                    outer = p[IPv6]
                    inner = outer.payload
                    if not isinstance(inner, IPv6):
                        continue
                    rec = {"outer_src": outer.src, "outer_dst": outer.dst, "inner_src": inner.src,
                           "inner_dst": inner.dst, "inner_hlim": inner.hlim}
                    if ICMPv6EchoRequest in inner:
                        e = inner[ICMPv6EchoRequest]
                        rec.update(icmp="echo-request", id=e.id, seq=e.seq)
                        state["requests"].append(rec)
                        if r.get("reply", True):
                            reply = (IPv6(src=r["coa"], dst=r["ha"], nh=41)
                                     / IPv6(src=inner.dst, dst=inner.src, hlim=64)
                                     / ICMPv6EchoReply(id=e.id, seq=e.seq, data=e.data))
                            self.send(reply, r["ha"])
                            state["replies"] += 1
                    else:
                        rec.update(icmp=None)
                        state["requests"].append(rec)
                    if state["stop"]:
                        break
            sock.close()

        th = threading.Thread(target=run, daemon=True)
        th.start()
        self.responders[r["name"]] = (state, th)
        return {"started": True}

    def cmd_responder_stop(self, r):
        state, th = self.responders.pop(r["name"])
        state["stop"] = True
        th.join()
        return {"requests": state["requests"], "replies": state["replies"]}

    def cmd_tunnel_send(self, r):
        """Send an echo request IPv6-in-IPv6 from the CoA to the HA with a chosen inner source."""
        for i in range(r.get("count", 1)):
            pkt = (IPv6(src=r["coa"], dst=r["ha"], nh=41)
                   / IPv6(src=r["inner_src"], dst=r["inner_dst"], hlim=64)
                   / ICMPv6EchoRequest(id=r.get("id", 0x4b47), seq=i, data=b"kagemusha"))
            self.send(pkt, r["ha"])
        return {"sent": r.get("count", 1)}

    # ---- home link --------------------------------------------------------------------------

    def cmd_capture_start(self, r):
        """Collect NAs and echo requests seen on `iface` until capture_stop."""
        sock = self.l2(r["iface"])
        state = {"stop": False, "na": [], "echo": []}

        def run():
            while not state["stop"]:
                for p, t in self.frames(sock, time.monotonic() + 0.2):
                    if ICMPv6ND_NA in p:
                        na = p[ICMPv6ND_NA]
                        tlla = p[ICMPv6NDOptDstLLAddr].lladdr if ICMPv6NDOptDstLLAddr in p else None
                        state["na"].append({"src": p[IPv6].src, "dst": p[IPv6].dst,
                                            "hlim": p[IPv6].hlim, "target": na.tgt, "R": na.R,
                                            "S": na.S, "O": na.O, "tlla": tlla,
                                            "eth_src": p[Ether].src, "t": t})
                    elif ICMPv6EchoRequest in p:
                        state["echo"].append({"src": p[IPv6].src, "dst": p[IPv6].dst,
                                              "id": p[ICMPv6EchoRequest].id})
                    if state["stop"]:
                        break
            sock.close()

        th = threading.Thread(target=run, daemon=True)
        th.start()
        self.captures[r["name"]] = (state, th)
        return {"started": True}

    def cmd_capture_stop(self, r):
        state, th = self.captures.pop(r["name"])
        state["stop"] = True
        th.join()
        return {"na": state["na"], "echo": state["echo"]}

    def cmd_ns(self, r):
        """Neighbor Solicitation for `target` (address resolution, RFC 4861 section 7.2.2)."""
        target = r["target"]
        t = socket.inet_pton(socket.AF_INET6, target)
        group = "ff02::1:ff%02x:%02x%02x" % (t[13], t[14], t[15])
        if r.get("dad"):
            # a DAD probe (RFC 4862 section 5.4.2): from ::, no source link-layer option
            pkt = IPv6(src="::", dst=group, hlim=255) / ICMPv6ND_NS(tgt=target)
        elif r.get("unicast_mac"):
            # a reachability probe (RFC 4861 section 7.3.1): unicast to the target, sent to the
            # link-layer address cached for it, no source link-layer option
            pkt = IPv6(src=r["src"], dst=target, hlim=255) / ICMPv6ND_NS(tgt=target)
        else:
            pkt = (IPv6(src=r["src"], dst=group, hlim=255) / ICMPv6ND_NS(tgt=target)
                   / ICMPv6NDOptSrcLLAddr(lladdr=r["src_mac"]))
        sock = self.l2(r["iface"])
        try:
            t0 = time.monotonic()
            # IPPROTO_RAW routes multicast by the socket's multicast interface: use a packet
            # socket instead, with the group's MAC.
            mac = r.get("unicast_mac") or "33:33:ff:%02x:%02x:%02x" % (t[13], t[14], t[15])
            out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            out.bind((r["iface"], 0))
            out.send(raw(Ether(src=r["src_mac"], dst=mac) / pkt))
            out.close()
            for p, tt in self.frames(sock, t0 + r.get("timeout", 2.0)):
                if ICMPv6ND_NA in p and p[ICMPv6ND_NA].tgt == canon(target):
                    na = p[ICMPv6ND_NA]
                    tlla = p[ICMPv6NDOptDstLLAddr].lladdr if ICMPv6NDOptDstLLAddr in p else None
                    return {"na": {"src": p[IPv6].src, "dst": p[IPv6].dst, "R": na.R, "S": na.S,
                                   "O": na.O, "tlla": tlla, "eth_src": p[Ether].src,
                                   "eth_dst": p[Ether].dst, "hlim": p[IPv6].hlim,
                                   "latency_ms": (tt - t0) * 1000}}
            return {"na": None}
        finally:
            sock.close()


def main():
    peer = Peer()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        try:
            fn = getattr(peer, "cmd_" + req["cmd"])
            res = {"ok": True, "result": fn(req)}
        except Exception as e:  # report, keep serving
            res = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
