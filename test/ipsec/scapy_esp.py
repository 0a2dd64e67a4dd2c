#!/usr/bin/python3
"""Scapy oracle for Kagemusha's userland ESP (run with Debian's /usr/bin/python3).

  scapy_esp.py check    -> {"scapy": version}
  scapy_esp.py decrypt  -> reads [{name, sa, hex}] (whole IPv6 packets protected by Kagemusha),
                           prints [{name, ok, error?, esp, inner}] as scapy sees them after
                           scapy.layers.ipsec.SecurityAssociation.decrypt()
  scapy_esp.py encrypt  -> reads [{name, sa, seq, hex}] (whole plain IPv6 packets: BU with
                           HAO, BA with RH2), prints [{name, hex}] encrypted by scapy in
                           transport mode (ESP after the HAO / the routing header)

`sa` is {spi, algorithm, key, authKey} in Kagemusha's config vocabulary (src/ipsec/config.ts),
mapped here to scapy's names: aes-gcm-* -> AES-GCM (key || salt), aes-cbc-hmac-sha256 ->
AES-CBC + SHA2-256-128, null-hmac-sha256 -> NULL + SHA2-256-128.

`inner` is the decrypted packet's Mobility Header as scapy dissects it, plus its checksum
recomputed here by hand (RFC 1071 over the RFC 8200 sec. 8.1 pseudo-header, source = the Home
Address option's address when present, destination = the type 2 routing header's address:
RFC 6275 sec. 6.1.1), independently of scapy and Kagemusha.

Scapy 2.5's decrypt() trips over a type 2 routing header (DESIGN.md): the ESP part is
rebuilt as IPv6(nh=50)/ESP(...) with the addresses the checksum needs, as suggested there.
"""

import json
import struct
import sys

from scapy.all import raw
from scapy.layers.inet6 import (
    HAO,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    MIP6MH_BA,
    MIP6MH_BU,
)
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation


def make_sa(sa, seq=1):
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


def addr(text):
    import socket
    return socket.inet_pton(socket.AF_INET6, text)


def rfc_checksum(src, dst, mh_bytes):
    pseudo = addr(src) + addr(dst) + struct.pack("!I", len(mh_bytes)) + b"\0\0\0\x87"
    data = pseudo + mh_bytes
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mh_fields(mh):
    if isinstance(mh, MIP6MH_BU):
        return {"type": "bu", "sequence": mh.seq, "flags": int(mh.flags), "lifetime": mh.mhtime,
                "cksum": mh.cksum}
    if isinstance(mh, MIP6MH_BA):
        return {"type": "ba", "sequence": mh.seq, "status": mh.status, "flags": int(mh.flags),
                "lifetime": mh.mhtime, "cksum": mh.cksum}
    return {"type": mh.__class__.__name__}


def decrypt_one(item):
    pkt = IPv6(bytes.fromhex(item["hex"]))
    out = {"name": item["name"]}
    hao = pkt[HAO].hoa if pkt.haslayer(HAO) else None
    rh2 = None
    if pkt.haslayer(IPv6ExtHdrRouting):
        rt = pkt[IPv6ExtHdrRouting]
        rh2 = rt.addresses[0] if rt.addresses else None
        out["rh2_type"] = rt.type
    esp = pkt[ESP]
    out["esp"] = {"spi": esp.spi, "seq": esp.seq, "len": len(raw(esp))}
    out["hao"] = hao
    out["rh2"] = rh2
    if rh2 is not None:
        # scapy 2.5 cannot decrypt with the RH2 in place: keep only what ESP needs.
        pkt = IPv6(src=pkt.src, dst=pkt.dst, nh=50) / ESP(raw(esp))
    try:
        dec = make_sa(item["sa"]).decrypt(pkt)
    except IPSecIntegrityError as e:
        out["ok"] = False
        out["error"] = "integrity: %s" % e
        return out
    # scapy guesses the payload class from the IPv6 header, not from the Destination Options
    # header that now names the MH: re-dissect the reassembled bytes.
    dec = IPv6(raw(dec))
    out["decrypted_hex"] = raw(dec).hex()
    # Where the MH ended up, and the header that now names it.
    layer = dec
    while layer.payload and not isinstance(layer.payload, (MIP6MH_BU, MIP6MH_BA)):
        layer = layer.payload
    mh = layer.payload
    out["ok"] = True
    out["nh_before_mh"] = layer.nh
    out["inner"] = mh_fields(mh)
    mh_bytes = raw(mh)
    out["inner"]["hex"] = mh_bytes.hex()
    src = hao if hao is not None else dec.src
    dst = rh2 if rh2 is not None else dec.dst
    out["inner"]["checksum_ok"] = rfc_checksum(src, dst, mh_bytes) == 0
    return out


def encrypt_one(item):
    pkt = IPv6(bytes.fromhex(item["hex"]))
    sa = make_sa(item["sa"], seq=item["seq"])
    enc = sa.encrypt(pkt)
    return {"name": item["name"], "hex": raw(enc).hex()}


def main():
    mode = sys.argv[1]
    if mode == "check":
        import scapy
        print(json.dumps({"scapy": scapy.__version__}))
        return
    items = json.load(sys.stdin)
    fn = {"decrypt": decrypt_one, "encrypt": encrypt_one}[mode]
    print(json.dumps([fn(i) for i in items]))


if __name__ == "__main__":
    main()
