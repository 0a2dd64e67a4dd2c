"""Frames a guest sends on its NIC, built by scapy (not Kagemusha's codecs).

usage: guest_frames.py IFACE MAC MODE
  MODE "unrelayed": a DHCPv6 Solicit to ff02::1:2, an IPv4 UDP datagram and an ARP request;
                    the pseudo home network relays none of them. Prints SENT 3.
  MODE "rs":        a Router Solicitation to ff02::2, then waits up to 5 s for a Router
                    Advertisement; prints RA {json of its fields as scapy dissects them}.
"""
import json
import sys

from scapy.utils6 import in6_mactoifaceid
from scapy.all import ARP, IP, UDP, Ether, conf, sendp, sniff
from scapy.layers.dhcp6 import DHCP6_Solicit, DHCP6OptClientId, DUID_LL
from scapy.layers.inet6 import (
    IPv6,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
)

conf.verb = 0
iface, mac, mode = sys.argv[1], sys.argv[2], sys.argv[3]
ll = "fe80::" + in6_mactoifaceid(mac).lower()

if mode == "unrelayed":
    frames = [
        Ether(src=mac, dst="33:33:00:01:00:02")
        / IPv6(src=ll, dst="ff02::1:2", hlim=1)
        / UDP(sport=546, dport=547)
        / DHCP6_Solicit(trid=0x1234)
        / DHCP6OptClientId(duid=DUID_LL(lladdr=mac)),
        Ether(src=mac, dst="02:00:00:00:01:10")
        / IP(src="192.0.2.10", dst="192.0.2.1")
        / UDP(sport=1234, dport=53),
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="192.0.2.10", pdst="192.0.2.1"),
    ]
    sendp(frames, iface=iface)
    print(f"SENT {len(frames)}")
elif mode == "rs":
    rs = (
        Ether(src=mac, dst="33:33:00:00:00:02")
        / IPv6(src=ll, dst="ff02::2", hlim=255)
        / ICMPv6ND_RS()
        / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    )
    got = sniff(
        iface=iface,
        lfilter=lambda p: ICMPv6ND_RA in p,
        count=1,
        timeout=5,
        started_callback=lambda: sendp(rs, iface=iface),
    )
    if not got:
        print("NO-RA")
        sys.exit(1)
    p = got[0]
    ra = p[ICMPv6ND_RA]
    pi = p[ICMPv6NDOptPrefixInfo]
    print("RA " + json.dumps({
        "dst": p[IPv6].dst,
        "M": ra.M,
        "O": ra.O,
        "routerLifetime": ra.routerlifetime,
        "L": pi.L,
        "A": pi.A,
        "prefix": pi.prefix,
        "mtu": p[ICMPv6NDOptMTU].mtu if ICMPv6NDOptMTU in p else None,
    }))
else:
    sys.exit(f"unknown mode {mode}")
