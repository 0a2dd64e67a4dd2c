#!/usr/bin/python3
"""Golden frames for src/mn/pseudo_home_test.ts, built by scapy (not Kagemusha's codecs).

Run: /usr/bin/python3 test/mn/gen_pseudo_home_golden.py > src/mn/testdata/pseudo_home_golden.json
Each reply frame is what RFC 4861 / RFC 4443 say the pseudo home network should answer to
the matching request frame.
"""
from scapy.all import *
from scapy.layers.inet6 import *
VM="52:54:00:00:00:10"; RM="02:00:00:00:00:01"; LL="fe80::5054:ff:fe00:10"; HOA="2001:db8:2000::10"; RLL="fe80::1"
def h(p): return bytes(p).hex()
out={}
# NS for router from guest LL, to solicited-node mcast, with SLLA
ns_r = Ether(src=VM,dst="33:33:ff:00:00:01")/IPv6(src=LL,dst="ff02::1:ff00:1",hlim=255)/ICMPv6ND_NS(tgt=RLL)/ICMPv6NDOptSrcLLAddr(lladdr=VM)
out["ns_router"]=h(ns_r)
out["na_router"]=h(Ether(src=RM,dst=VM)/IPv6(src=RLL,dst=LL,hlim=255)/ICMPv6ND_NA(R=1,S=1,O=1,tgt=RLL)/ICMPv6NDOptDstLLAddr(lladdr=RM))
# NUD unicast NS from HoA for home host ::2, dst MAC old router MAC, no SLLA
ns_h = Ether(src=VM,dst="aa:bb:cc:dd:ee:ff")/IPv6(src=HOA,dst="2001:db8:2000::2",hlim=255)/ICMPv6ND_NS(tgt="2001:db8:2000::2")
out["ns_host"]=h(ns_h)
out["na_host"]=h(Ether(src=RM,dst=VM)/IPv6(src="2001:db8:2000::2",dst=HOA,hlim=255)/ICMPv6ND_NA(R=0,S=1,O=1,tgt="2001:db8:2000::2")/ICMPv6NDOptDstLLAddr(lladdr=RM))
# RS from LL
rs = Ether(src=VM,dst="33:33:00:00:00:02")/IPv6(src=LL,dst="ff02::2",hlim=255)/ICMPv6ND_RS()/ICMPv6NDOptSrcLLAddr(lladdr=VM)
out["rs"]=h(rs)
# Default RA contents: M=O=0, lifetime 3 x MaxRtrAdvInterval (1800 s), prefix L=1 A=0.
def ra(dst): return Ether(src=RM,dst=VM)/IPv6(src=RLL,dst=dst,hlim=255)/ICMPv6ND_RA(chlim=64,M=0,O=0,routerlifetime=1800,reachabletime=0,retranstimer=0,prf=0)/ICMPv6NDOptSrcLLAddr(lladdr=RM)/ICMPv6NDOptPrefixInfo(prefixlen=64,L=1,A=0,validlifetime=2592000,preferredlifetime=604800,prefix="2001:db8:2000::")
out["ra"]=h(ra(LL))
# Configured: ra = {managed, other, autonomous, routerLifetime 900, mtu 1400, rdnss [2]}
out["ra_configured"]=h(Ether(src=RM,dst=VM)/IPv6(src=RLL,dst="ff02::1",hlim=255)/ICMPv6ND_RA(chlim=64,M=1,O=1,routerlifetime=900,reachabletime=0,retranstimer=0,prf=0)/ICMPv6NDOptSrcLLAddr(lladdr=RM)/ICMPv6NDOptMTU(mtu=1400)/ICMPv6NDOptPrefixInfo(prefixlen=64,L=1,A=1,validlifetime=2592000,preferredlifetime=604800,prefix="2001:db8:2000::")/ICMPv6NDOptRDNSS(lifetime=900,dns=["2001:db8:2000::53","2001:db8:5353::1"]))
# DHCPv6 Solicit from the guest's link-local
out["dhcpv6_solicit"]=h(Ether(src=VM,dst="33:33:00:01:00:02")/IPv6(src=LL,dst="ff02::1:2",hlim=1)/UDP(sport=546,dport=547)/DHCP6_Solicit(trid=0x1234)/DHCP6OptClientId(duid=DUID_LL(lladdr=VM))/DHCP6OptElapsedTime())
out["rs_unspec"]=h(Ether(src=VM,dst="33:33:00:00:00:02")/IPv6(src="::",dst="ff02::2",hlim=255)/ICMPv6ND_RS())
out["ra_allnodes"]=h(ra("ff02::1"))
out["una_router"]=h(Ether(src=RM,dst=VM)/IPv6(src=RLL,dst="ff02::1",hlim=255)/ICMPv6ND_NA(R=1,S=0,O=1,tgt=RLL)/ICMPv6NDOptDstLLAddr(lladdr=RM))
out["home_na"]=h(Ether(src=VM,dst="33:33:00:00:00:01")/IPv6(src=HOA,dst="ff02::1",hlim=255)/ICMPv6ND_NA(R=0,S=0,O=1,tgt=HOA)/ICMPv6NDOptDstLLAddr(lladdr=VM))
# echo to router LL
er = Ether(src=VM,dst=RM)/IPv6(src=LL,dst=RLL,hlim=64)/ICMPv6EchoRequest(id=0x1234,seq=7,data=b"kagemusha-ping")
out["echo_req"]=h(er)
out["echo_rep"]=h(Ether(src=RM,dst=VM)/IPv6(src=RLL,dst=LL,hlim=64)/ICMPv6EchoReply(id=0x1234,seq=7,data=b"kagemusha-ping"))
# DAD
out["dad"]=h(Ether(src=VM,dst="33:33:ff:00:00:10")/IPv6(src="::",dst="ff02::1:ff00:10",hlim=255)/ICMPv6ND_NS(tgt=HOA))
# big udp packet from HoA: 1500 bytes ip
big = IPv6(src=HOA,dst="2001:db8:2000::2",hlim=64)/UDP(sport=1000,dport=2000)/Raw((bytes(range(256))*6)[:1452])
big = IPv6(bytes(big))
out["big"]=h(Ether(src=VM,dst="aa:bb:cc:dd:ee:ff")/big)
out["ptb"]=h(Ether(src=RM,dst=VM)/IPv6(src=RLL,dst=HOA,hlim=255)/ICMPv6PacketTooBig(mtu=1460)/Raw(bytes(big)[:1232]))
# MLD report
out["mld"]=h(Ether(src=VM,dst="33:33:00:00:00:16")/IPv6(src=LL,dst="ff02::16",hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLReport2())
import json; print(json.dumps(out, indent=1))
