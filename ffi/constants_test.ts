import assert from "node:assert/strict";
import * as C from "./constants.ts";

/** Linux asm-generic _IOC(dir, type, nr, size): the encoding of x86_64 and aarch64. */
const ioc = (dir: number, type: string, nr: number, size: number) =>
  ((dir << 30) | (size << 16) | (type.charCodeAt(0) << 8) | nr) >>> 0;
const IOW = (t: string, nr: number, size: number) => ioc(1, t, nr, size);
const IOR = (t: string, nr: number, size: number) => ioc(2, t, nr, size);

Deno.test("constants: tun ioctls follow the _IOW/_IOR encoding of <linux/if_tun.h>", () => {
  assert.equal(C.TUNSETIFF, IOW("T", 202, 4));
  assert.equal(C.TUNSETIFF, 0x400454ca);
  assert.equal(C.TUNSETPERSIST, IOW("T", 203, 4));
  assert.equal(C.TUNSETOFFLOAD, IOW("T", 208, 4));
  assert.equal(C.TUNGETIFF, IOR("T", 210, 4));
  assert.equal(C.TUNSETVNETHDRSZ, IOW("T", 216, 4));
});

Deno.test("constants: the values the ffi/ contract names", () => {
  const expected: Record<string, number> = {
    AF_INET6: 10,
    AF_PACKET: 17,
    AF_NETLINK: 16,
    SOCK_RAW: 3,
    SOCK_DGRAM: 2,
    SOCK_CLOEXEC: 0o2000000,
    SOCK_NONBLOCK: 0o4000,
    SOL_SOCKET: 1,
    SOL_IPV6: 41,
    SOL_PACKET: 263,
    IPPROTO_ICMPV6: 58,
    IPPROTO_RAW: 255,
    IPPROTO_IPV6: 41,
    IPPROTO_ROUTING: 43,
    IPPROTO_DSTOPTS: 60,
    IPPROTO_MH: 135,
    IPV6_CHECKSUM: 7,
    IPV6_UNICAST_HOPS: 16,
    IPV6_MULTICAST_IF: 17,
    IPV6_MULTICAST_HOPS: 18,
    IPV6_MULTICAST_LOOP: 19,
    IPV6_JOIN_GROUP: 20,
    IPV6_LEAVE_GROUP: 21,
    IPV6_RECVPKTINFO: 49,
    IPV6_PKTINFO: 50,
    IPV6_RECVHOPLIMIT: 51,
    IPV6_HOPLIMIT: 52,
    IPV6_RECVRTHDR: 56,
    IPV6_RTHDR: 57,
    IPV6_RECVDSTOPTS: 58,
    IPV6_DSTOPTS: 59,
    ICMP6_FILTER: 1,
    SO_BINDTODEVICE: 25,
    SO_RCVBUF: 8,
    SO_SNDBUF: 7,
    SO_RCVBUFFORCE: 33,
    SO_SNDBUFFORCE: 32,
    PACKET_ADD_MEMBERSHIP: 1,
    PACKET_AUXDATA: 8,
    ETH_P_ALL: 3,
    ETH_P_IPV6: 0x86dd,
    O_RDWR: 2,
    O_CLOEXEC: 0o2000000,
    O_NONBLOCK: 0o4000,
    F_GETFL: 3,
    F_SETFL: 4,
    POLLIN: 1,
    POLLOUT: 4,
    IFF_TUN: 1,
    IFF_TAP: 2,
    IFF_NO_PI: 0x1000,
    IFF_VNET_HDR: 0x4000,
    SIOCGIFHWADDR: 0x8927,
    SIOCSIFHWADDR: 0x8924,
    SIOCGIFMTU: 0x8921,
    SIOCSIFMTU: 0x8922,
    SIOCGIFFLAGS: 0x8913,
    SIOCSIFFLAGS: 0x8914,
    IFF_UP: 1,
    EFD_NONBLOCK: 0o4000,
    EFD_CLOEXEC: 0o2000000,
    MSG_DONTWAIT: 0x40,
    MSG_TRUNC: 0x20,
    MSG_CTRUNC: 0x8,
  };
  const actual = C as unknown as Record<string, number>;
  for (const [k, v] of Object.entries(expected)) assert.equal(actual[k], v, k);
});
