/**
 * Linux constants for the generic ABI shared by x86_64 and aarch64 (values from
 * the kernel's uapi headers; both targets agree on every value here).
 *
 * @module
 */

// ---- address families, socket types, levels ---------------------------------------------

/** Unspecified address family. */
export const AF_UNSPEC = 0;
/** IPv4 (only used to name the family in ioctl requests). */
export const AF_INET = 2;
/** IPv6 (RFC 3542 sockets). */
export const AF_INET6 = 10;
/** Netlink. */
export const AF_NETLINK = 16;
/** Packet sockets (link layer). */
export const AF_PACKET = 17;

/** Datagram sockets. */
export const SOCK_DGRAM = 2;
/** Raw sockets. */
export const SOCK_RAW = 3;
/** Flag for socket(): close on exec. */
export const SOCK_CLOEXEC = 0o2000000;
/** Flag for socket(): nonblocking. */
export const SOCK_NONBLOCK = 0o4000;

/** setsockopt level: socket. */
export const SOL_SOCKET = 1;
/** setsockopt level: IPv6 (= IPPROTO_IPV6). */
export const SOL_IPV6 = 41;
/** setsockopt level: ICMPv6 (= IPPROTO_ICMPV6). */
export const SOL_ICMPV6 = 58;
/** setsockopt level: packet sockets. */
export const SOL_PACKET = 263;

// ---- protocol numbers (IANA) -----------------------------------------------------------

/** IPv6 Hop-by-Hop Options header (RFC 8200 §4.3). */
export const IPPROTO_HOPOPTS = 0;
/** TCP. */
export const IPPROTO_TCP = 6;
/** UDP. */
export const IPPROTO_UDP = 17;
/** IPv6 encapsulated in IPv6 (RFC 2473). */
export const IPPROTO_IPV6 = 41;
/** IPv6 Routing header (RFC 8200 §4.4; type 2: RFC 6275 §6.4). */
export const IPPROTO_ROUTING = 43;
/** IPv6 Fragment header. */
export const IPPROTO_FRAGMENT = 44;
/** ESP (RFC 4303). */
export const IPPROTO_ESP = 50;
/** AH. */
export const IPPROTO_AH = 51;
/** ICMPv6 (RFC 4443). */
export const IPPROTO_ICMPV6 = 58;
/** No next header. */
export const IPPROTO_NONE = 59;
/** IPv6 Destination Options header (RFC 8200 §4.6; HAO: RFC 6275 §6.3). */
export const IPPROTO_DSTOPTS = 60;
/** Mobility Header (RFC 6275 §6.1). */
export const IPPROTO_MH = 135;
/** Raw IPv6 with the IPv6 header included by the sender. */
export const IPPROTO_RAW = 255;

// ---- IPv6 socket options (RFC 3542, Linux numbering) ----------------------------------

/** Checksum offset for raw sockets (-1 = off). RFC 3542 §3.1. */
export const IPV6_CHECKSUM = 7;
/** Default hop limit for unicast. */
export const IPV6_UNICAST_HOPS = 16;
/** Outgoing interface for multicast. */
export const IPV6_MULTICAST_IF = 17;
/** Hop limit for multicast. */
export const IPV6_MULTICAST_HOPS = 18;
/** Loop back own multicast. */
export const IPV6_MULTICAST_LOOP = 19;
/** Join a multicast group (struct ipv6_mreq). */
export const IPV6_JOIN_GROUP = 20;
/** Leave a multicast group. */
export const IPV6_LEAVE_GROUP = 21;
/** Path MTU discovery mode. */
export const IPV6_MTU_DISCOVER = 23;
/** Extended errors. */
export const IPV6_RECVERR = 25;
/** IPv6 only. */
export const IPV6_V6ONLY = 26;
/** Header included (Linux ≥ 4.5; implied by IPPROTO_RAW). */
export const IPV6_HDRINCL = 36;
/** Receive IPV6_PKTINFO ancillary data. RFC 3542 §6.1. */
export const IPV6_RECVPKTINFO = 49;
/** Packet info cmsg (struct in6_pktinfo). RFC 3542 §6. */
export const IPV6_PKTINFO = 50;
/** Receive IPV6_HOPLIMIT ancillary data. */
export const IPV6_RECVHOPLIMIT = 51;
/** Hop limit cmsg (int). */
export const IPV6_HOPLIMIT = 52;
/** Receive Hop-by-Hop options. */
export const IPV6_RECVHOPOPTS = 53;
/** Hop-by-Hop options cmsg. */
export const IPV6_HOPOPTS = 54;
/** Receive routing headers. RFC 3542 §4. */
export const IPV6_RECVRTHDR = 56;
/** Routing header cmsg. */
export const IPV6_RTHDR = 57;
/** Receive destination options. */
export const IPV6_RECVDSTOPTS = 58;
/** Destination options cmsg (after the routing header). */
export const IPV6_DSTOPTS = 59;
/** Traffic class cmsg. */
export const IPV6_TCLASS = 67;

/** ICMPv6 type filter (level SOL_ICMPV6). RFC 3542 §3.2. */
export const ICMP6_FILTER = 1;

// ---- SOL_SOCKET options ------------------------------------------------------------------

/** Reuse addresses. */
export const SO_REUSEADDR = 2;
/** Send buffer size. */
export const SO_SNDBUF = 7;
/** Receive buffer size. */
export const SO_RCVBUF = 8;
/** Bind to a device by name. */
export const SO_BINDTODEVICE = 25;
/** Send buffer size beyond wmem_max (CAP_NET_ADMIN). */
export const SO_SNDBUFFORCE = 32;
/** Receive buffer size beyond rmem_max (CAP_NET_ADMIN). */
export const SO_RCVBUFFORCE = 33;

// ---- packet sockets ----------------------------------------------------------------------

/** Add a membership (struct packet_mreq). */
export const PACKET_ADD_MEMBERSHIP = 1;
/** Drop a membership. */
export const PACKET_DROP_MEMBERSHIP = 2;
/** Deliver struct tpacket_auxdata as a cmsg. */
export const PACKET_AUXDATA = 8;
/** Skip the qdisc layer on send. */
export const PACKET_QDISC_BYPASS = 20;
/** Do not deliver frames this host sends. */
export const PACKET_IGNORE_OUTGOING = 23;
/** packet_mreq type: a multicast address. */
export const PACKET_MR_MULTICAST = 0;
/** packet_mreq type: promiscuous mode. */
export const PACKET_MR_PROMISC = 1;
/** packet_mreq type: all multicast. */
export const PACKET_MR_ALLMULTI = 2;
/** sockaddr_ll.sll_pkttype: to us. */
export const PACKET_HOST = 0;
/** sockaddr_ll.sll_pkttype: sent by us. */
export const PACKET_OUTGOING = 4;
/** tpacket_auxdata.tp_status: checksum left for the hardware. */
export const TP_STATUS_CSUMNOTREADY = 8;

/** Every EtherType. */
export const ETH_P_ALL = 0x0003;
/** IPv6 EtherType. */
export const ETH_P_IPV6 = 0x86dd;
/** ARPHRD_ETHER (sa_family in SIOCSIFHWADDR). */
export const ARPHRD_ETHER = 1;

// ---- files, fcntl, poll, eventfd ---------------------------------------------------------

/** open(): read-only. */
export const O_RDONLY = 0;
/** open(): read/write. */
export const O_RDWR = 2;
/** open()/fcntl(): nonblocking. */
export const O_NONBLOCK = 0o4000;
/** open(): close on exec. */
export const O_CLOEXEC = 0o2000000;
/** fcntl: get status flags. */
export const F_GETFL = 3;
/** fcntl: set status flags. */
export const F_SETFL = 4;

/** poll: readable. */
export const POLLIN = 0x1;
/** poll: urgent data. */
export const POLLPRI = 0x2;
/** poll: writable. */
export const POLLOUT = 0x4;
/** poll: error. */
export const POLLERR = 0x8;
/** poll: hang-up. */
export const POLLHUP = 0x10;
/** poll: fd not open. */
export const POLLNVAL = 0x20;

/** eventfd: nonblocking. */
export const EFD_NONBLOCK = 0o4000;
/** eventfd: close on exec. */
export const EFD_CLOEXEC = 0o2000000;
/** eventfd: semaphore semantics. */
export const EFD_SEMAPHORE = 1;

/** setns(): network namespace. */
export const CLONE_NEWNET = 0x40000000;

// ---- send/recv flags ---------------------------------------------------------------------

/** Peek. */
export const MSG_PEEK = 0x2;
/** Control data truncated (msg_flags). */
export const MSG_CTRUNC = 0x8;
/** Data truncated (msg_flags), or return the real length (flags). */
export const MSG_TRUNC = 0x20;
/** Nonblocking for this call. */
export const MSG_DONTWAIT = 0x40;
/** recvmmsg: block for the first message only. */
export const MSG_WAITFORONE = 0x10000;

// ---- tun/tap and interface ioctls ----------------------------------------------------------

/** _IOW('T', 202, int): attach to / create a tun/tap device. */
export const TUNSETIFF = 0x400454ca;
/** _IOW('T', 203, int): keep the device after close. */
export const TUNSETPERSIST = 0x400454cb;
/** _IOW('T', 208, unsigned int): offloads the reader accepts (TUN_F_*). */
export const TUNSETOFFLOAD = 0x400454d0;
/** _IOR('T', 210, unsigned int): read back the flags and name. */
export const TUNGETIFF = 0x800454d2;
/** _IOW('T', 216, int): size of the virtio-net header. */
export const TUNSETVNETHDRSZ = 0x400454d8;
/** TUNSETOFFLOAD: the reader handles checksums. */
export const TUN_F_CSUM = 0x01;
/** TUNSETOFFLOAD: TSO over IPv4. */
export const TUN_F_TSO4 = 0x02;
/** TUNSETOFFLOAD: TSO over IPv6. */
export const TUN_F_TSO6 = 0x04;

/** TUNSETIFF: layer 3 device. */
export const IFF_TUN = 0x0001;
/** TUNSETIFF: layer 2 (Ethernet) device. */
export const IFF_TAP = 0x0002;
/** TUNSETIFF: no 4-byte packet information prefix. */
export const IFF_NO_PI = 0x1000;
/** TUNSETIFF: frames carry a struct virtio_net_hdr prefix. */
export const IFF_VNET_HDR = 0x4000;
/** Size of struct virtio_net_hdr (without num_buffers). */
export const VIRTIO_NET_HDR_LEN = 10;

/** Interface flag: administratively up. */
export const IFF_UP = 0x1;
/** Interface flag: running (carrier). */
export const IFF_RUNNING = 0x40;
/** Interface flag: promiscuous. */
export const IFF_PROMISC = 0x100;

/** Get interface flags (short in ifreq). */
export const SIOCGIFFLAGS = 0x8913;
/** Set interface flags. */
export const SIOCSIFFLAGS = 0x8914;
/** Get MTU (int in ifreq). */
export const SIOCGIFMTU = 0x8921;
/** Set MTU. */
export const SIOCSIFMTU = 0x8922;
/** Set hardware address (struct sockaddr in ifreq). */
export const SIOCSIFHWADDR = 0x8924;
/** Get hardware address. */
export const SIOCGIFHWADDR = 0x8927;
/** Get interface index. */
export const SIOCGIFINDEX = 0x8933;

/** Longest interface name including the NUL. */
export const IFNAMSIZ = 16;
