/**
 * rtnetlink: links, addresses, routes and neighbours over an AF_NETLINK /
 * NETLINK_ROUTE socket (RFC 3549 §2.2, §3.1; Linux rtnetlink(7), netlink(7)).
 *
 * Two levels, as in `src/wire/`:
 * - pure codecs: {@link NlMessage} builds a request (nlmsghdr, a fixed family
 *   header, attributes aligned to 4, nested attributes), the `*Request()`
 *   functions build every request this module sends, and the `parse*()`
 *   functions read replies into plain values (`{ ok: false, … }` for bad input);
 * - {@link Rtnetlink}: one socket, synchronous acked requests and dumps with
 *   sequence numbers checked, errors as {@link NetlinkError} (an `ErrnoError`)
 *   naming the request and its object, e.g.
 *   `RTM_NEWROUTE 2001:db8::10/128: EEXIST (File exists)`.
 *
 * Everything here runs on setup paths (daemon start, handover): it allocates
 * freely and blocks (bounded by a receive timeout) for the kernel's answer.
 *
 * Layouts (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h, linux/neighbour.h):
 *
 * ```text
 *  nlmsghdr (16)            ifinfomsg (16)             ifaddrmsg (8)
 *  0  u32 nlmsg_len         0  u8  ifi_family          0 u8  ifa_family
 *  4  u16 nlmsg_type        1  u8  pad                 1 u8  ifa_prefixlen
 *  6  u16 nlmsg_flags       2  u16 ifi_type            2 u8  ifa_flags
 *  8  u32 nlmsg_seq         4  i32 ifi_index           3 u8  ifa_scope
 *  12 u32 nlmsg_pid         8  u32 ifi_flags           4 u32 ifa_index
 *                           12 u32 ifi_change
 *  rtmsg (12)               ndmsg (12)                 rtattr / nlattr (4 + data, padded to 4)
 *  0 u8 rtm_family          0  u8  ndm_family          0 u16 len (header + data, unpadded)
 *  1 u8 rtm_dst_len         1  u8  pad1                2 u16 type (bit 15 nested, 14 byte order)
 *  2 u8 rtm_src_len         2  u16 pad2
 *  3 u8 rtm_tos             4  i32 ndm_ifindex         nlmsgerr (20 + TLVs with NETLINK_EXT_ACK)
 *  4 u8 rtm_table           8  u16 ndm_state           0 i32 error (-errno, 0 = ack)
 *  5 u8 rtm_protocol        10 u8  ndm_flags           4 nlmsghdr of the request (capped)
 *  6 u8 rtm_scope           11 u8  ndm_type
 *  7 u8 rtm_type
 *  8 u32 rtm_flags
 * ```
 *
 * All multi-byte fields are in host byte order (little-endian on the targets
 * Kagemusha supports: x86_64, aarch64); addresses are in network order.
 *
 * @module
 */

import { formatIPv6, formatMac, parseIPv6, parseMac } from "../src/wire/addr.ts";
import { check, cstring, Errno, errno, ErrnoError, libc } from "./libc.ts";
import { RecvRing } from "./raw_socket.ts";

// ---------------------------------------------------------------------------
// Constants (kept here: ffi/constants.ts is another helper's file)
// ---------------------------------------------------------------------------

const AF_UNSPEC = 0;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const MSG_TRUNC = 0x20;
const MSG_WAITFORONE = 0x10000;
const IFF_UP = 0x1;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CLOEXEC = 0x80000;
const ETIMEDOUT = 110;
const EPROTO = 71;

/** Layout sizes (bytes) of the kernel structures used here; pinned by a test. */
export const NL_SIZES = {
  nlmsghdr: 16,
  nlattr: 4,
  nlmsgerr: 20,
  sockaddr_nl: 12,
  ifinfomsg: 16,
  ifaddrmsg: 8,
  rtmsg: 12,
  ndmsg: 12,
} as const;

/** Netlink control message types (linux/netlink.h). */
export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;

/** nlmsg_flags (linux/netlink.h; RFC 3549 §2.3.2). */
export const NLM_F = {
  REQUEST: 0x01,
  MULTI: 0x02,
  ACK: 0x04,
  ECHO: 0x08,
  DUMP_INTR: 0x10,
  DUMP_FILTERED: 0x20,
  ROOT: 0x100,
  MATCH: 0x200,
  DUMP: 0x300,
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
  /** on an NLMSG_ERROR: the echoed request was capped (NETLINK_CAP_ACK) */
  CAPPED: 0x100,
  /** on an NLMSG_ERROR: extended-ack TLVs follow */
  ACK_TLVS: 0x200,
} as const;

/** rtnetlink message types (linux/rtnetlink.h). */
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
} as const;

/** Link attributes (linux/if_link.h), incl. IFLA_INFO_* and IFLA_BR_* nested ones. */
export const IFLA = {
  ADDRESS: 1,
  BROADCAST: 2,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  MASTER: 10,
  OPERSTATE: 16,
  LINKINFO: 18,
  INFO_KIND: 1,
  INFO_DATA: 2,
  BR_FORWARD_DELAY: 1,
  BR_STP_STATE: 5,
  BR_MCAST_SNOOPING: 23,
} as const;

/** Address attributes (linux/if_addr.h). */
export const IFA = {
  ADDRESS: 1,
  LOCAL: 2,
  LABEL: 3,
  CACHEINFO: 6,
  FLAGS: 8,
} as const;

/** Address flags (linux/if_addr.h), ifa_flags / IFA_FLAGS. */
export const IFA_F = {
  SECONDARY: 0x01,
  NODAD: 0x02,
  OPTIMISTIC: 0x04,
  DADFAILED: 0x08,
  HOMEADDRESS: 0x10,
  DEPRECATED: 0x20,
  TENTATIVE: 0x40,
  PERMANENT: 0x80,
  MANAGETEMPADDR: 0x100,
  NOPREFIXROUTE: 0x200,
} as const;

/** Route attributes and rtmsg field values (linux/rtnetlink.h). */
export const RTA = {
  DST: 1,
  SRC: 2,
  IIF: 3,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  TABLE: 15,
} as const;

/** rtm_table / rtm_protocol / rtm_scope / rtm_type values (linux/rtnetlink.h). */
export const RT = {
  TABLE_MAIN: 254,
  TABLE_LOCAL: 255,
  PROT_UNSPEC: 0,
  PROT_STATIC: 4,
  SCOPE_UNIVERSE: 0,
  SCOPE_SITE: 200,
  SCOPE_LINK: 253,
  SCOPE_HOST: 254,
  SCOPE_NOWHERE: 255,
  TYPE_UNICAST: 1,
} as const;

/** Neighbour attributes, states and flags (linux/neighbour.h). */
export const NDA = { DST: 1, LLADDR: 2 } as const;
/** Neighbour cache states (linux/neighbour.h). */
export const NUD = { NOARP: 0x40, PERMANENT: 0x80 } as const;
/** Neighbour flags (linux/neighbour.h); NTF_PROXY marks a proxy ND entry. */
export const NTF = { PROXY: 0x08 } as const;

const RTM_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(RTM).map(([k, v]) => [v, `RTM_${k}`]),
);

/** The symbolic name of a netlink message type, e.g. 24 → "RTM_NEWROUTE". */
export function messageTypeName(type: number): string {
  if (type === NLMSG.ERROR) return "NLMSG_ERROR";
  if (type === NLMSG.DONE) return "NLMSG_DONE";
  return RTM_NAMES[type] ?? `nlmsg type ${type}`;
}

function checkPrefix(len: number): void {
  if (!Number.isInteger(len) || len < 0 || len > 128) {
    throw new RangeError(`IPv6 prefix length ${len} out of 0..128`);
  }
}

// ---------------------------------------------------------------------------
// Message builder
// ---------------------------------------------------------------------------

/** Rounds up to the netlink alignment of 4 (NLMSG_ALIGN / NLA_ALIGN). */
export function nlAlign(len: number): number {
  return (len + 3) & ~3;
}

/**
 * Builds one netlink message: a 16-byte nlmsghdr, a fixed family header, then
 * attributes (each 4-byte aligned, padding zeroed), nests closed with
 * {@link NlMessage.endNest}. {@link NlMessage.finish} writes the header.
 */
export class NlMessage {
  #buf: Uint8Array<ArrayBuffer>;
  #view: DataView;
  #len: number = NL_SIZES.nlmsghdr;
  #nests: number[] = [];

  constructor(readonly type: number, readonly flags: number, capacity = 256) {
    this.#buf = new Uint8Array(Math.max(capacity, NL_SIZES.nlmsghdr));
    this.#view = new DataView(this.#buf.buffer);
  }

  #reserve(n: number): number {
    const at = this.#len;
    const need = at + nlAlign(n);
    if (need > this.#buf.length) {
      const grown = new Uint8Array(Math.max(need, this.#buf.length * 2));
      grown.set(this.#buf.subarray(0, at));
      this.#buf = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#buf.fill(0, at, need);
    this.#len = need;
    return at;
  }

  /** Appends a fixed header (ifinfomsg, rtmsg, …) verbatim, padded to 4. */
  header(bytes: Uint8Array): this {
    const at = this.#reserve(bytes.length); // may replace #buf: reserve first
    this.#buf.set(bytes, at);
    return this;
  }

  /** Appends attribute `type` carrying `data` (RFC 3549 §2.3.2.1 TLV). */
  attr(type: number, data: Uint8Array): this {
    const at = this.#reserve(NL_SIZES.nlattr + data.length);
    this.#view.setUint16(at, NL_SIZES.nlattr + data.length, true);
    this.#view.setUint16(at + 2, type, true);
    this.#buf.set(data, at + NL_SIZES.nlattr);
    return this;
  }

  /** A u8 attribute. */
  u8(type: number, v: number): this {
    return this.attr(type, Uint8Array.of(v));
  }

  /** A u32 attribute (host order). */
  u32(type: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return this.attr(type, b);
  }

  /** A NUL-terminated string attribute (NLA_NUL_STRING; accepted as NLA_STRING too). */
  str(type: number, s: string): this {
    const bytes = new TextEncoder().encode(s);
    const b = new Uint8Array(bytes.length + 1);
    b.set(bytes);
    return this.attr(type, b);
  }

  /** Opens a nested attribute; close it with {@link endNest}. */
  beginNest(type: number): this {
    const at = this.#reserve(NL_SIZES.nlattr);
    this.#view.setUint16(at + 2, type, true);
    this.#nests.push(at);
    return this;
  }

  /** Closes the innermost nest, writing its length. */
  endNest(): this {
    const at = this.#nests.pop();
    if (at === undefined) throw new Error("endNest() without beginNest()");
    this.#view.setUint16(at, this.#len - at, true);
    return this;
  }

  /** Writes the nlmsghdr and returns the message bytes (a copy). */
  finish(seq: number, pid = 0): Uint8Array<ArrayBuffer> {
    if (this.#nests.length) throw new Error("finish() with an open nest");
    this.#view.setUint32(0, this.#len, true);
    this.#view.setUint16(4, this.type, true);
    this.#view.setUint16(6, this.flags, true);
    this.#view.setUint32(8, seq >>> 0, true);
    this.#view.setUint32(12, pid >>> 0, true);
    return this.#buf.slice(0, this.#len);
  }
}

// ---------------------------------------------------------------------------
// Family headers (every byte written)
// ---------------------------------------------------------------------------

/** Encodes struct ifinfomsg (16 bytes). */
export function ifinfomsg(
  h: { family?: number; type?: number; index?: number; flags?: number; change?: number },
): Uint8Array {
  const b = new Uint8Array(NL_SIZES.ifinfomsg);
  const v = new DataView(b.buffer);
  v.setUint8(0, h.family ?? AF_UNSPEC);
  v.setUint16(2, h.type ?? 0, true);
  v.setInt32(4, h.index ?? 0, true);
  v.setUint32(8, h.flags ?? 0, true);
  v.setUint32(12, h.change ?? 0, true);
  return b;
}

/** Encodes struct ifaddrmsg (8 bytes). */
export function ifaddrmsg(
  h: { family?: number; prefixLength?: number; flags?: number; scope?: number; index?: number },
): Uint8Array {
  const b = new Uint8Array(NL_SIZES.ifaddrmsg);
  const v = new DataView(b.buffer);
  v.setUint8(0, h.family ?? AF_INET6);
  v.setUint8(1, h.prefixLength ?? 0);
  v.setUint8(2, (h.flags ?? 0) & 0xff);
  v.setUint8(3, h.scope ?? 0);
  v.setUint32(4, h.index ?? 0, true);
  return b;
}

/** Encodes struct rtmsg (12 bytes). */
export function rtmsg(
  h: {
    family?: number;
    dstLen?: number;
    srcLen?: number;
    tos?: number;
    table?: number;
    protocol?: number;
    scope?: number;
    type?: number;
    flags?: number;
  },
): Uint8Array {
  const b = new Uint8Array(NL_SIZES.rtmsg);
  const v = new DataView(b.buffer);
  v.setUint8(0, h.family ?? AF_INET6);
  v.setUint8(1, h.dstLen ?? 0);
  v.setUint8(2, h.srcLen ?? 0);
  v.setUint8(3, h.tos ?? 0);
  v.setUint8(4, h.table ?? 0);
  v.setUint8(5, h.protocol ?? 0);
  v.setUint8(6, h.scope ?? 0);
  v.setUint8(7, h.type ?? 0);
  v.setUint32(8, h.flags ?? 0, true);
  return b;
}

/** Encodes struct ndmsg (12 bytes). */
export function ndmsg(
  h: { family?: number; index?: number; state?: number; flags?: number; type?: number },
): Uint8Array {
  const b = new Uint8Array(NL_SIZES.ndmsg);
  const v = new DataView(b.buffer);
  v.setUint8(0, h.family ?? AF_INET6);
  v.setInt32(4, h.index ?? 0, true);
  v.setUint16(8, h.state ?? 0, true);
  v.setUint8(10, h.flags ?? 0);
  v.setUint8(11, h.type ?? 0);
  return b;
}

// ---------------------------------------------------------------------------
// Requests (pure: what Rtnetlink sends, testable against golden bytes)
// ---------------------------------------------------------------------------

/** A link named by its interface name or its ifindex. */
export type LinkRef = string | number;

/** A request ready to be numbered and sent; `what` names it in errors. */
export interface NlRequest {
  message: NlMessage;
  /** e.g. "RTM_NEWROUTE 2001:db8::10/128" */
  what: string;
}

function linkObject(ref: LinkRef): string {
  return typeof ref === "number" ? `ifindex ${ref}` : ref;
}

function withLinkRef(m: NlMessage, ref: LinkRef, h: Parameters<typeof ifinfomsg>[0]): NlMessage {
  if (typeof ref === "number") return m.header(ifinfomsg({ ...h, index: ref }));
  return m.header(ifinfomsg({ ...h, index: 0 })).str(IFLA.IFNAME, ref);
}

/** RTM_GETLINK for one link (by index, or by IFLA_IFNAME). */
export function getLinkRequest(ref: LinkRef): NlRequest {
  const m = withLinkRef(new NlMessage(RTM.GETLINK, NLM_F.REQUEST), ref, {});
  return { message: m, what: `RTM_GETLINK ${linkObject(ref)}` };
}

/** RTM_GETLINK dump of every link. */
export function dumpLinksRequest(): NlRequest {
  const m = new NlMessage(RTM.GETLINK, NLM_F.REQUEST | NLM_F.DUMP).header(ifinfomsg({}));
  return { message: m, what: "RTM_GETLINK dump" };
}

/** Options of a new bridge. */
export interface BridgeOptions {
  /**
   * IGMP/MLD snooping (IFLA_BR_MCAST_SNOOPING). Default off: a pseudo home
   * link must flood ND multicast to the daemon's tap, which never sends MLD
   * reports of its own.
   */
  multicastSnooping?: boolean;
}

/**
 * RTM_NEWLINK creating a bridge: IFLA_LINKINFO { IFLA_INFO_KIND "bridge",
 * IFLA_INFO_DATA { IFLA_BR_FORWARD_DELAY 0, IFLA_BR_STP_STATE 0,
 * IFLA_BR_MCAST_SNOOPING } }, so that ports forward at once.
 */
export function createBridgeRequest(name: string, opts: BridgeOptions = {}): NlRequest {
  const m = new NlMessage(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL)
    .header(ifinfomsg({}))
    .str(IFLA.IFNAME, name)
    .beginNest(IFLA.LINKINFO)
    .str(IFLA.INFO_KIND, "bridge")
    .beginNest(IFLA.INFO_DATA)
    .u32(IFLA.BR_FORWARD_DELAY, 0)
    .u32(IFLA.BR_STP_STATE, 0)
    .u8(IFLA.BR_MCAST_SNOOPING, opts.multicastSnooping ? 1 : 0)
    .endNest()
    .endNest();
  return { message: m, what: `RTM_NEWLINK ${name} type bridge` };
}

/** Link properties changed by {@link changeLinkRequest}. */
export interface LinkChange {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** ifindex of the new master; 0 detaches */
  master?: number;
}

/** RTM_NEWLINK without NLM_F_CREATE: changes an existing link (`ip link set`). */
export function changeLinkRequest(ref: LinkRef, change: LinkChange): NlRequest {
  const m = withLinkRef(new NlMessage(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK), ref, {
    flags: change.up ? IFF_UP : 0,
    change: change.up === undefined ? 0 : IFF_UP,
  });
  const parts: string[] = [];
  if (change.up !== undefined) parts.push(change.up ? "up" : "down");
  if (change.mtu !== undefined) {
    m.u32(IFLA.MTU, change.mtu);
    parts.push(`mtu ${change.mtu}`);
  }
  if (change.mac !== undefined) {
    m.attr(IFLA.ADDRESS, parseMac(change.mac));
    parts.push(`address ${change.mac}`);
  }
  if (change.master !== undefined) {
    m.u32(IFLA.MASTER, change.master);
    parts.push(change.master ? `master ifindex ${change.master}` : "nomaster");
  }
  return { message: m, what: `RTM_NEWLINK ${[linkObject(ref), ...parts].join(" ")}` };
}

/** RTM_DELLINK. */
export function deleteLinkRequest(ref: LinkRef): NlRequest {
  const m = withLinkRef(new NlMessage(RTM.DELLINK, NLM_F.REQUEST | NLM_F.ACK), ref, {});
  return { message: m, what: `RTM_DELLINK ${linkObject(ref)}` };
}

/**
 * RTM_NEWADDR / RTM_DELADDR for an IPv6 address (IFA_LOCAL and IFA_ADDRESS,
 * IFA_FLAGS carrying flags beyond the u8 field, e.g. IFA_F_NODAD).
 */
export function addressRequest(
  type: typeof RTM.NEWADDR | typeof RTM.DELADDR,
  ifindex: number,
  addr: string,
  prefixLength: number,
  opts: { flags?: number; replace?: boolean } = {},
): NlRequest {
  checkPrefix(prefixLength);
  const a = parseIPv6(addr);
  const flags = opts.flags ?? 0;
  const nlFlags = type === RTM.NEWADDR
    ? NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | (opts.replace ? NLM_F.REPLACE : NLM_F.EXCL)
    : NLM_F.REQUEST | NLM_F.ACK;
  const m = new NlMessage(type, nlFlags)
    .header(ifaddrmsg({ family: AF_INET6, prefixLength, flags, index: ifindex }))
    .attr(IFA.LOCAL, a)
    .attr(IFA.ADDRESS, a);
  if (type === RTM.NEWADDR) m.u32(IFA.FLAGS, flags);
  return {
    message: m,
    what: `${messageTypeName(type)} ${formatIPv6(a)}/${prefixLength} ifindex ${ifindex}`,
  };
}

/** RTM_GETADDR dump of IPv6 addresses. */
export function dumpAddressesRequest(): NlRequest {
  const m = new NlMessage(RTM.GETADDR, NLM_F.REQUEST | NLM_F.DUMP)
    .header(ifaddrmsg({ family: AF_INET6 }));
  return { message: m, what: "RTM_GETADDR dump" };
}

/** Options of a route request. */
export interface RouteOptions {
  /** outgoing interface (RTA_OIF) */
  oif?: number;
  /** next hop (RTA_GATEWAY) */
  gateway?: string;
  /** RTA_PRIORITY (the `metric` of `ip route`) */
  metric?: number;
  /** NLM_F_REPLACE instead of NLM_F_EXCL (RTM_NEWROUTE only) */
  replace?: boolean;
}

/**
 * RTM_NEWROUTE / RTM_DELROUTE for an IPv6 route in the main table. A new route
 * is proto static, scope universe, type unicast; a delete matches any protocol.
 */
export function routeRequest(
  type: typeof RTM.NEWROUTE | typeof RTM.DELROUTE,
  dst: string,
  prefixLength: number,
  opts: RouteOptions = {},
): NlRequest {
  checkPrefix(prefixLength);
  const d = parseIPv6(dst);
  const add = type === RTM.NEWROUTE;
  const m = new NlMessage(
    type,
    add
      ? NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | (opts.replace ? NLM_F.REPLACE : NLM_F.EXCL)
      : NLM_F.REQUEST | NLM_F.ACK,
  ).header(rtmsg({
    family: AF_INET6,
    dstLen: prefixLength,
    table: RT.TABLE_MAIN,
    protocol: add ? RT.PROT_STATIC : RT.PROT_UNSPEC,
    scope: add ? RT.SCOPE_UNIVERSE : RT.SCOPE_NOWHERE,
    type: RT.TYPE_UNICAST,
  }));
  if (prefixLength > 0) m.attr(RTA.DST, d);
  if (opts.gateway !== undefined) m.attr(RTA.GATEWAY, parseIPv6(opts.gateway));
  if (opts.oif !== undefined) m.u32(RTA.OIF, opts.oif);
  if (opts.metric !== undefined) m.u32(RTA.PRIORITY, opts.metric);
  return { message: m, what: `${messageTypeName(type)} ${formatIPv6(d)}/${prefixLength}` };
}

/** RTM_GETROUTE dump of IPv6 routes (all tables). */
export function dumpRoutesRequest(): NlRequest {
  const m = new NlMessage(RTM.GETROUTE, NLM_F.REQUEST | NLM_F.DUMP)
    .header(rtmsg({ family: AF_INET6 }));
  return { message: m, what: "RTM_GETROUTE dump" };
}

/**
 * RTM_NEWNEIGH / RTM_DELNEIGH. `proxy` sets NTF_PROXY (a proxy ND entry, RFC
 * 4861 §7.2.8 as used by a home agent, RFC 6275 §10.4.1); otherwise a
 * NUD_PERMANENT entry with `mac` as NDA_LLADDR. A new entry replaces an
 * existing one unless `exclusive`.
 */
export function neighborRequest(
  type: typeof RTM.NEWNEIGH | typeof RTM.DELNEIGH,
  addr: string,
  ifindex: number,
  opts: { proxy?: boolean; mac?: string; exclusive?: boolean } = {},
): NlRequest {
  const a = parseIPv6(addr);
  const add = type === RTM.NEWNEIGH;
  const m = new NlMessage(
    type,
    add
      ? NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | (opts.exclusive ? NLM_F.EXCL : NLM_F.REPLACE)
      : NLM_F.REQUEST | NLM_F.ACK,
  ).header(ndmsg({
    family: AF_INET6,
    index: ifindex,
    state: add ? NUD.PERMANENT : 0,
    flags: opts.proxy ? NTF.PROXY : 0,
  })).attr(NDA.DST, a);
  if (opts.mac !== undefined) m.attr(NDA.LLADDR, parseMac(opts.mac));
  const obj = `${opts.proxy ? "proxy " : ""}${formatIPv6(a)}` +
    `${opts.mac ? ` lladdr ${opts.mac}` : ""} ifindex ${ifindex}`;
  return { message: m, what: `${messageTypeName(type)} ${obj}` };
}

// ---------------------------------------------------------------------------
// Parsing (bad input is a value, not an exception)
// ---------------------------------------------------------------------------

/** Why a reply could not be parsed. */
export interface NlParseError {
  ok: false;
  kind: "truncated" | "malformed";
  offset: number;
}

/** A parse outcome. */
export type NlParsed<T> = { ok: true; value: T } | NlParseError;

/** One received netlink message; `payload` follows the 16-byte header (a sub-view). */
export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Uint8Array;
}

/** Splits a datagram into netlink messages (NLMSG_OK / NLMSG_NEXT). */
export function parseMessages(buf: Uint8Array): NlParsed<NlMsg[]> {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NlMsg[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NL_SIZES.nlmsghdr) return { ok: false, kind: "truncated", offset: off };
    const len = v.getUint32(off, true);
    if (len < NL_SIZES.nlmsghdr) return { ok: false, kind: "malformed", offset: off };
    if (len > buf.length - off) return { ok: false, kind: "truncated", offset: off };
    out.push({
      type: v.getUint16(off + 4, true),
      flags: v.getUint16(off + 6, true),
      seq: v.getUint32(off + 8, true),
      pid: v.getUint32(off + 12, true),
      payload: buf.subarray(off + NL_SIZES.nlmsghdr, off + len),
    });
    off += nlAlign(len);
  }
  return { ok: true, value: out };
}

/** One attribute: `type` without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits. */
export interface NlAttr {
  type: number;
  value: Uint8Array;
}

/** Reads a run of attributes (zero-copy sub-views). */
export function parseAttrs(buf: Uint8Array): NlParsed<NlAttr[]> {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NlAttr[] = [];
  let off = 0;
  while (off + NL_SIZES.nlattr <= buf.length) {
    const len = v.getUint16(off, true);
    if (len < NL_SIZES.nlattr) return { ok: false, kind: "malformed", offset: off };
    if (len > buf.length - off) return { ok: false, kind: "truncated", offset: off };
    out.push({
      type: v.getUint16(off + 2, true) & 0x3fff,
      value: buf.subarray(off + NL_SIZES.nlattr, off + len),
    });
    off += nlAlign(len);
  }
  return { ok: true, value: out };
}

function attrMap(buf: Uint8Array, base: number): NlParsed<Map<number, Uint8Array>> {
  const r = parseAttrs(buf);
  if (!r.ok) return { ...r, offset: r.offset + base };
  return { ok: true, value: new Map(r.value.map((a) => [a.type, a.value])) };
}

function u32(b: Uint8Array | undefined): number | undefined {
  if (!b || b.length < 4) return undefined;
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

function cstr(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? b : b.subarray(0, nul));
}

/** The content of an NLMSG_ERROR: `error` is a positive errno, 0 for an ack. */
export interface NlErrorInfo {
  error: number;
  /** NLMSGERR_ATTR_MSG of an extended ack */
  extack?: string;
  /** the nlmsghdr of the request it answers */
  request: { type: number; flags: number; seq: number };
}

/** Parses an NLMSG_ERROR payload (struct nlmsgerr, then extended-ack TLVs). */
export function parseError(msg: NlMsg): NlParsed<NlErrorInfo> {
  const p = msg.payload;
  if (p.length < NL_SIZES.nlmsgerr) return { ok: false, kind: "truncated", offset: 16 };
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const info: NlErrorInfo = {
    error: -v.getInt32(0, true) | 0, // | 0: an ack is 0, not -0
    request: {
      type: v.getUint16(8, true),
      flags: v.getUint16(10, true),
      seq: v.getUint32(12, true),
    },
  };
  if (msg.flags & NLM_F.ACK_TLVS) {
    // TLVs follow the echoed request: its header only when capped, else all of it.
    const echoed = msg.flags & NLM_F.CAPPED ? NL_SIZES.nlmsghdr : v.getUint32(4, true);
    const start = 4 + nlAlign(echoed);
    if (start > p.length) return { ok: false, kind: "truncated", offset: 16 + p.length };
    const tlv = attrMap(p.subarray(start), 16 + start);
    if (!tlv.ok) return tlv;
    const text = tlv.value.get(1 /* NLMSGERR_ATTR_MSG */);
    if (text) info.extack = cstr(text);
  }
  return { ok: true, value: info };
}

/** A link as {@link Rtnetlink.getLinks} reports it. */
export interface LinkInfo {
  index: number;
  name: string;
  /** "aa:bb:cc:dd:ee:ff"; "" for links without a hardware address (tun) */
  mac: string;
  mtu: number;
  /** administratively up (IFF_UP) */
  up: boolean;
  /** ifindex of the master (bridge) when enslaved */
  master?: number;
}

/** Parses an RTM_NEWLINK (reply to RTM_GETLINK). */
export function parseLink(msg: NlMsg): NlParsed<LinkInfo> {
  const p = msg.payload;
  if (p.length < NL_SIZES.ifinfomsg) return { ok: false, kind: "truncated", offset: 16 };
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const attrs = attrMap(p.subarray(NL_SIZES.ifinfomsg), 16 + NL_SIZES.ifinfomsg);
  if (!attrs.ok) return attrs;
  const a = attrs.value;
  const name = a.get(IFLA.IFNAME);
  if (!name) return { ok: false, kind: "malformed", offset: 16 + NL_SIZES.ifinfomsg };
  const mac = a.get(IFLA.ADDRESS);
  const info: LinkInfo = {
    index: v.getInt32(4, true),
    name: cstr(name),
    mac: mac ? formatMac(mac) : "",
    mtu: u32(a.get(IFLA.MTU)) ?? 0,
    up: (v.getUint32(8, true) & IFF_UP) !== 0,
  };
  const master = u32(a.get(IFLA.MASTER));
  if (master) info.master = master;
  return { ok: true, value: info };
}

/** An IPv6 address as {@link Rtnetlink.getAddresses} reports it. */
export interface AddrInfo {
  ifindex: number;
  address: string;
  prefixLength: number;
  /** ifa_scope: 253 "link", 254 "host", anything else "global" */
  scope: "global" | "link" | "host";
  /** IFA_F_* (IFA_FLAGS when present, else the u8 ifa_flags) */
  flags: number;
}

/** Parses an RTM_NEWADDR; `null` value for a non-IPv6 address. */
export function parseAddress(msg: NlMsg): NlParsed<AddrInfo | null> {
  const p = msg.payload;
  if (p.length < NL_SIZES.ifaddrmsg) return { ok: false, kind: "truncated", offset: 16 };
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (v.getUint8(0) !== AF_INET6) return { ok: true, value: null };
  const attrs = attrMap(p.subarray(NL_SIZES.ifaddrmsg), 16 + NL_SIZES.ifaddrmsg);
  if (!attrs.ok) return attrs;
  const addr = attrs.value.get(IFA.LOCAL) ?? attrs.value.get(IFA.ADDRESS);
  if (!addr || addr.length !== 16) {
    return { ok: false, kind: "malformed", offset: 16 + NL_SIZES.ifaddrmsg };
  }
  const scope = v.getUint8(3);
  return {
    ok: true,
    value: {
      ifindex: v.getUint32(4, true),
      address: formatIPv6(addr),
      prefixLength: v.getUint8(1),
      scope: scope === RT.SCOPE_LINK ? "link" : scope === RT.SCOPE_HOST ? "host" : "global",
      flags: u32(attrs.value.get(IFA.FLAGS)) ?? v.getUint8(2),
    },
  };
}

/** An IPv6 route as {@link Rtnetlink.getRoutes} reports it. */
export interface RouteInfo {
  dst: string;
  prefixLength: number;
  /** RTA_TABLE when present, else rtm_table */
  table: number;
  protocol: number;
  /** rtm_type (1 unicast, 2 local, 5 multicast, …) */
  type: number;
  oif?: number;
  gateway?: string;
  metric?: number;
}

/** Parses an RTM_NEWROUTE; `null` value for a non-IPv6 route. */
export function parseRoute(msg: NlMsg): NlParsed<RouteInfo | null> {
  const p = msg.payload;
  if (p.length < NL_SIZES.rtmsg) return { ok: false, kind: "truncated", offset: 16 };
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (v.getUint8(0) !== AF_INET6) return { ok: true, value: null };
  const attrs = attrMap(p.subarray(NL_SIZES.rtmsg), 16 + NL_SIZES.rtmsg);
  if (!attrs.ok) return attrs;
  const a = attrs.value;
  const dst = a.get(RTA.DST);
  const gw = a.get(RTA.GATEWAY);
  if ((dst && dst.length !== 16) || (gw && gw.length !== 16)) {
    return { ok: false, kind: "malformed", offset: 16 + NL_SIZES.rtmsg };
  }
  const info: RouteInfo = {
    dst: formatIPv6(dst ?? new Uint8Array(16)),
    prefixLength: v.getUint8(1),
    table: u32(a.get(RTA.TABLE)) ?? v.getUint8(4),
    protocol: v.getUint8(5),
    type: v.getUint8(7),
  };
  const oif = u32(a.get(RTA.OIF));
  if (oif !== undefined) info.oif = oif;
  if (gw) info.gateway = formatIPv6(gw);
  const metric = u32(a.get(RTA.PRIORITY));
  if (metric !== undefined) info.metric = metric;
  return { ok: true, value: info };
}

// ---------------------------------------------------------------------------
// The socket
// ---------------------------------------------------------------------------

/**
 * A failed rtnetlink request: an `ErrnoError` whose `syscall` names the
 * request and its object (`RTM_NEWROUTE 2001:db8::10/128`). The kernel's
 * extended-ack text, when it sent one, is in `extack` and ends the message.
 */
export class NetlinkError extends ErrnoError {
  override name = "NetlinkError";
  constructor(what: string, errno: number, readonly extack?: string) {
    super(what, errno);
    if (extack) this.message += ` — ${extack}`;
  }
}

function expect<T>(r: NlParsed<T>, what: string): T {
  if (!r.ok) throw new Error(`${what}: ${r.kind} reply at offset ${r.offset}`);
  return r.value;
}

/**
 * What answers a request: "ack" an NLMSG_ERROR (0 = done), "get" one reply
 * message (or an error), "dump" NLM_F_MULTI parts until NLMSG_DONE.
 */
export type NlReplyMode = "ack" | "get" | "dump";

/**
 * Sans-I/O reply matching for one request: feed it each received datagram;
 * `feed()` returns true once the answer is complete, throws
 * {@link NetlinkError} when the kernel refused the request (NLMSG_ERROR < 0,
 * NLMSG_DONE < 0, overrun), and drops messages carrying another sequence
 * number (counted in `stale`).
 */
export class NlReplyCollector {
  /** The answer's messages (payloads copied: receive buffers are reused). */
  readonly msgs: NlMsg[] = [];
  /** Some part carried NLM_F_DUMP_INTR: the dump may be inconsistent. */
  intr = false;
  /** Messages dropped for a sequence number other than `seq`. */
  stale = 0;
  #done = false;

  constructor(readonly what: string, readonly seq: number, readonly mode: NlReplyMode) {}

  /** Consumes one datagram; true when the answer is complete. */
  feed(datagram: Uint8Array): boolean {
    if (this.#done) throw new Error(`${this.what}: reply fed after completion`);
    for (const m of expect(parseMessages(datagram), this.what)) {
      if (m.seq !== this.seq) {
        this.stale++;
        continue;
      }
      if (m.flags & NLM_F.DUMP_INTR) this.intr = true;
      switch (m.type) {
        case NLMSG.NOOP:
          continue;
        case NLMSG.OVERRUN:
          throw new NetlinkError(`${this.what} (overrun)`, Errno.ENOBUFS);
        case NLMSG.ERROR: {
          const info = expect(parseError(m), this.what);
          if (info.error !== 0) throw new NetlinkError(this.what, info.error, info.extack);
          return this.#done = true; // an ack
        }
        case NLMSG.DONE: {
          const p = m.payload;
          const err = p.length >= 4
            ? -new DataView(p.buffer, p.byteOffset, 4).getInt32(0, true)
            : 0;
          if (err > 0) throw new NetlinkError(this.what, err);
          return this.#done = true;
        }
      }
      if (this.mode === "ack") {
        throw new NetlinkError(`${this.what} (unexpected ${messageTypeName(m.type)})`, EPROTO);
      }
      this.msgs.push({ ...m, payload: m.payload.slice() });
      if (this.mode === "get" && !(m.flags & NLM_F.MULTI)) return this.#done = true;
    }
    return false;
  }
}

/**
 * One change carried out by {@link Rtnetlink.batch}. A route's `dst` is text or 16 bytes
 * (a caller that holds the bytes saves the text parsing).
 */
export type RtnlChange =
  | ({ op: "addRoute"; dst: string | Uint8Array; prefixLength: number } & RouteOptions)
  | (
    & { op: "deleteRoute"; dst: string | Uint8Array; prefixLength: number }
    & Omit<RouteOptions, "replace">
  )
  | { op: "addProxyNeighbor" | "deleteProxyNeighbor"; addr: string; ifindex: number };

function addrText(a: string | Uint8Array): string {
  return typeof a === "string" ? a : formatIPv6(checkAddress(a));
}

/** The request of one {@link RtnlChange} (the same bytes the single-change methods send). */
export function changeRequest(c: RtnlChange): NlRequest {
  switch (c.op) {
    case "addRoute":
      return routeRequest(RTM.NEWROUTE, addrText(c.dst), c.prefixLength, c);
    case "deleteRoute":
      return routeRequest(RTM.DELROUTE, addrText(c.dst), c.prefixLength, {
        ...c,
        replace: undefined,
      });
    case "addProxyNeighbor":
      return neighborRequest(RTM.NEWNEIGH, c.addr, c.ifindex, { proxy: true });
    case "deleteProxyNeighbor":
      return neighborRequest(RTM.DELNEIGH, c.addr, c.ifindex, { proxy: true });
  }
}

/**
 * Sans-I/O ack matching for a batch: `count` requests numbered `firstSeq … firstSeq + count - 1`
 * went out together (several netlink messages in one datagram, each with NLM_F_ACK; the
 * kernel handles and acknowledges them one by one, netlink(7)). Feed it each received
 * datagram; `feed()` returns true once every request has its NLMSG_ERROR. `errors[i]` is null
 * for an ack, the {@link NetlinkError} of a refusal otherwise, named with `what(i)` (asked for
 * only then). Messages with other sequence numbers are dropped and counted in `stale`.
 */
export class NlBatchCollector {
  /** Per request: null (done), a NetlinkError (refused), undefined (no answer yet). */
  readonly errors: (NetlinkError | null | undefined)[];
  /** Messages dropped for a sequence number outside the batch. */
  stale = 0;
  #left: number;
  #buf: ArrayBufferLike | undefined;
  #view: DataView | undefined;

  constructor(
    readonly count: number,
    readonly firstSeq: number,
    readonly what: (i: number) => string,
  ) {
    this.errors = new Array(count).fill(undefined);
    this.#left = count;
  }

  /**
   * Consumes one datagram; true when every request is answered. Plain acks are read in place
   * (thousands per batch: no object per ack); anything else is parsed in full.
   */
  feed(datagram: Uint8Array, length = datagram.length): boolean {
    if (datagram.buffer !== this.#buf) {
      this.#buf = datagram.buffer;
      this.#view = new DataView(datagram.buffer);
    }
    const v = this.#view!, base = datagram.byteOffset;
    const end = Math.min(length, datagram.length);
    for (let off = 0; off < end;) {
      const len = end - off >= NL_SIZES.nlmsghdr ? v.getUint32(base + off, true) : 0;
      if (len < NL_SIZES.nlmsghdr || len > end - off) {
        // throws, naming why
        expect(parseMessages(datagram.subarray(off, end)), "rtnetlink batch");
        throw new Error("rtnetlink batch: unparsable reply"); // not reached
      }
      const i = (v.getUint32(base + off + 8, true) - this.firstSeq) >>> 0;
      if (i >= this.count) this.stale++;
      else if (
        v.getUint16(base + off + 4, true) === NLMSG.ERROR && len >= NL_SIZES.nlmsghdr + 4 &&
        v.getInt32(base + off + NL_SIZES.nlmsghdr, true) === 0
      ) {
        if (this.errors[i] === undefined) {
          this.errors[i] = null;
          this.#left--;
        }
      } else {
        const [m] = expect(parseMessages(datagram.subarray(off, off + len)), "rtnetlink batch");
        this.#other(m, i);
      }
      off += nlAlign(len);
    }
    return this.#left === 0;
  }

  #other(m: NlMsg, i: number): void {
    if (m.type === NLMSG.OVERRUN) {
      throw new NetlinkError(`${this.what(i)} (overrun)`, Errno.ENOBUFS);
    }
    if (m.type !== NLMSG.ERROR) {
      if (m.type === NLMSG.NOOP) return;
      throw new NetlinkError(`${this.what(i)} (unexpected ${messageTypeName(m.type)})`, EPROTO);
    }
    if (this.errors[i] !== undefined) return; // a duplicate: keep the first answer
    const info = expect(parseError(m), "rtnetlink batch ack");
    this.errors[i] = info.error === 0
      ? null
      : new NetlinkError(this.what(i), info.error, info.extack);
    this.#left--;
  }
}

/**
 * Writes the request of `c` at `out[at]` with sequence number `seq`; returns its length. Route
 * changes with an outgoing interface and no gateway or metric — what a home agent adds and
 * removes by the thousand — are written from a template (the bytes of {@link routeRequest},
 * the tests hold them equal), without building an {@link NlMessage}; others through
 * {@link changeRequest}. `out` must have room for 256 bytes.
 */
export function writeChange(c: RtnlChange, seq: number, out: Uint8Array, at: number): number {
  if (
    (c.op === "addRoute" || c.op === "deleteRoute") && c.oif !== undefined &&
    c.gateway === undefined && c.metric === undefined && c.prefixLength > 0
  ) {
    const add = c.op === "addRoute";
    const key = add ? (c.replace ? 0 : 1) : 2;
    const t = ROUTE_TEMPLATES[key] ??= routeRequest(
      add ? RTM.NEWROUTE : RTM.DELROUTE,
      "::1",
      128,
      { oif: 1, replace: add ? c.replace : undefined },
    ).message.finish(0);
    checkPrefix(c.prefixLength);
    const d = typeof c.dst === "string" ? parseIPv6(c.dst) : checkAddress(c.dst);
    for (let i = 0; i < t.length; i++) out[at + i] = t[i];
    for (let i = 0; i < 16; i++) out[at + ROUTE_DST + i] = d[i];
    putLe32(out, at + 8, seq >>> 0);
    out[at + NL_SIZES.nlmsghdr + 1] = c.prefixLength; // rtm_dst_len
    putLe32(out, at + ROUTE_OIF, c.oif >>> 0);
    return t.length;
  }
  const bytes = changeRequest(c).message.finish(seq);
  out.set(bytes, at);
  return bytes.length;
}

function putLe32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = v >>> 24;
}

function checkAddress(b: Uint8Array): Uint8Array {
  if (b.length !== 16) throw new TypeError(`IPv6 address must be 16 bytes, got ${b.length}`);
  return b;
}

/** Offsets in a route template: RTA_DST's address, RTA_OIF's value. */
const ROUTE_DST = 16 + 12 + 4;
const ROUTE_OIF = ROUTE_DST + 16 + 4;
const ROUTE_TEMPLATES: Uint8Array[] = [];

/** Requests per datagram of {@link Rtnetlink.batch}: their acks must fit the receive buffer. */
export const BATCH_CHUNK = 64;

/**
 * One rtnetlink socket (RFC 3549 §2.2, rtnetlink(7)) in the network namespace
 * of the calling thread at {@link Rtnetlink.open}. Requests are synchronous:
 * each is numbered, sent, and answered before the call returns; replies with
 * another sequence number (left over from an abandoned request) are dropped.
 */
export class Rtnetlink implements Disposable {
  #fd: number;
  #seq: number;
  #rx = new Uint8Array(64 * 1024);
  #tx = new Uint8Array(0);
  #acks: RecvRing | undefined;
  #dest = new Uint8Array(NL_SIZES.sockaddr_nl);
  /** Replies dropped because their sequence number was not the awaited one. */
  staleReplies = 0;

  private constructor(fd: number) {
    this.#fd = fd;
    this.#seq = (Date.now() & 0x7fffffff) >>> 0;
    new DataView(this.#dest.buffer).setUint16(0, AF_NETLINK, true); // nl_pid 0: the kernel
  }

  /**
   * Opens and binds a NETLINK_ROUTE socket with extended acks, capped acks and
   * a receive timeout (default 5 s) so a missing answer cannot hang the caller.
   */
  static open(opts: { timeoutMs?: number } = {}): Rtnetlink {
    const c = libc();
    const fd = check(
      "socket(AF_NETLINK)",
      c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE),
    );
    try {
      const sa = new Uint8Array(NL_SIZES.sockaddr_nl);
      new DataView(sa.buffer).setUint16(0, AF_NETLINK, true);
      check("bind(AF_NETLINK)", c.bind(fd, sa, sa.length));
      const one = new Uint8Array(Uint32Array.of(1).buffer);
      // Best effort: without them errors still work, only less detailed.
      c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
      c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
      const ms = opts.timeoutMs ?? 5000;
      const tv = new Uint8Array(16);
      const tvv = new DataView(tv.buffer);
      tvv.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
      tvv.setBigInt64(8, BigInt((ms % 1000) * 1000), true);
      check("setsockopt(SO_RCVTIMEO)", c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16));
    } catch (e) {
      c.close(fd);
      throw e;
    }
    return new Rtnetlink(fd);
  }

  /** The socket's file descriptor (-1 once closed). */
  get fd(): number {
    return this.#fd;
  }

  /** Closes the socket; idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    libc().close(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // -- transport ----------------------------------------------------------

  /**
   * Sends `req` and collects the answer. "ack": until the NLMSG_ERROR (0 = ok);
   * "get": one reply (or an error); "dump": parts until NLMSG_DONE.
   */
  #exchange(req: NlRequest, mode: NlReplyMode): NlReplyCollector {
    if (this.#fd < 0) throw new ErrnoError(`${req.what} (socket closed)`, Errno.EBADF);
    const c = libc();
    this.#seq = (this.#seq + 1) >>> 0;
    const seq = this.#seq;
    const bytes = req.message.finish(seq);
    check(
      `sendto(${req.what})`,
      c.sendto(this.#fd, bytes, BigInt(bytes.length), 0, this.#dest, this.#dest.length),
    );
    const collector = new NlReplyCollector(req.what, seq, mode);
    try {
      for (;;) {
        const n = Number(
          c.recvfrom(this.#fd, this.#rx, BigInt(this.#rx.length), MSG_TRUNC, null, null),
        );
        if (n < 0) {
          const e = errno();
          if (e === Errno.EINTR) continue;
          if (e === Errno.EAGAIN) throw new NetlinkError(`${req.what} (no reply)`, ETIMEDOUT);
          throw new NetlinkError(`${req.what} recvfrom`, e);
        }
        if (n > this.#rx.length) throw new NetlinkError(`${req.what} (reply)`, Errno.EMSGSIZE);
        if (collector.feed(this.#rx.subarray(0, n))) return collector;
      }
    } finally {
      this.staleReplies += collector.stale;
    }
  }

  #ack(req: NlRequest): void {
    this.#exchange(req, "ack");
  }

  /**
   * Carries out `changes` in order, up to {@link BATCH_CHUNK} requests per sendto(2) and one
   * ack each (netlink(7)): the per-request cost of a lone request is mostly its two syscalls,
   * so thousands of routes go in milliseconds instead of a round trip each. A refused change
   * does not stop the others (the kernel answers each message of a datagram on its own).
   * Returns, per change, null when done or the {@link NetlinkError} naming it.
   */
  batch(changes: readonly RtnlChange[]): (NetlinkError | null)[] {
    const out: (NetlinkError | null)[] = [];
    for (let at = 0; at < changes.length; at += BATCH_CHUNK) {
      out.push(...this.#batchChunk(changes.slice(at, at + BATCH_CHUNK)));
    }
    return out;
  }

  #batchChunk(changes: readonly RtnlChange[]): (NetlinkError | null)[] {
    if (this.#fd < 0) throw new ErrnoError("rtnetlink batch (socket closed)", Errno.EBADF);
    const c = libc();
    const firstSeq = (this.#seq + 1) >>> 0;
    if (this.#tx.length < changes.length * 256) this.#tx = new Uint8Array(changes.length * 256);
    const out = this.#tx;
    let len = 0;
    for (const ch of changes) {
      this.#seq = (this.#seq + 1) >>> 0;
      len += writeChange(ch, this.#seq, out, len); // lengths are multiples of 4: aligned
    }
    const what = (i: number) => changeRequest(changes[i]).what;
    if (c.sendto(this.#fd, out, BigInt(len), 0, this.#dest, this.#dest.length) < 0) {
      const e = errno();
      throw new ErrnoError(`sendto(rtnetlink batch of ${changes.length}, first ${what(0)})`, e);
    }
    // the kernel queues one ack per request: take them with recvmmsg, up to a ring at a time
    const ring = this.#acks ??= new RecvRing(BATCH_CHUNK, 1024);
    const collector = new NlBatchCollector(changes.length, firstSeq, what);
    try {
      for (;;) {
        ring.prepare();
        const n = c.recvmmsg(this.#fd, ring.mmsghdrs, ring.slots, MSG_WAITFORONE, null);
        if (n < 0) {
          const e = errno();
          if (e === Errno.EINTR) continue;
          const w = `rtnetlink batch (first ${what(0)})`;
          if (e === Errno.EAGAIN) throw new NetlinkError(`${w} (no reply)`, ETIMEDOUT);
          throw new NetlinkError(`${w} recvmmsg`, e);
        }
        ring.filled(n);
        let done = false;
        for (let i = 0; i < n; i++) {
          if (ring.truncated(i)) throw new NetlinkError("rtnetlink batch (reply)", Errno.EMSGSIZE);
          done = collector.feed(ring.buffers[i], ring.length(i));
        }
        if (done) break;
      }
    } finally {
      this.staleReplies += collector.stale;
    }
    return collector.errors as (NetlinkError | null)[];
  }

  /** A dump, redone (up to 3 times) when the kernel flags it inconsistent. */
  #dump(make: () => NlRequest): NlMsg[] {
    for (let i = 0;; i++) {
      const r = this.#exchange(make(), "dump");
      if (!r.intr || i === 2) return r.msgs;
    }
  }

  #index(ref: LinkRef): number {
    return typeof ref === "number" ? ref : this.linkIndex(ref);
  }

  // -- links --------------------------------------------------------------

  /** The ifindex of `name`; throws `RTM_GETLINK <name>: ENODEV (No such device)`. */
  linkIndex(name: string): number {
    return this.getLink(name).index;
  }

  /** One link, by name or index. */
  getLink(ref: LinkRef): LinkInfo {
    const req = getLinkRequest(ref);
    const { msgs } = this.#exchange(req, "get");
    const m = msgs.find((x) => x.type === RTM.NEWLINK);
    if (!m) throw new NetlinkError(`${req.what} (no link in reply)`, EPROTO);
    return expect(parseLink(m), req.what);
  }

  /** Every link of the namespace. */
  getLinks(): LinkInfo[] {
    return this.#dump(dumpLinksRequest)
      .filter((m) => m.type === RTM.NEWLINK)
      .map((m) => expect(parseLink(m), "RTM_GETLINK dump"));
  }

  /**
   * Creates bridge `name` with forward delay 0, STP off and (unless asked)
   * multicast snooping off, so that ports forward as soon as they are up.
   * Returns its ifindex.
   */
  createBridge(name: string, opts: BridgeOptions = {}): number {
    this.#ack(createBridgeRequest(name, opts));
    return this.linkIndex(name);
  }

  /** Deletes a link (a bridge, a veth, …). */
  deleteLink(ref: LinkRef): void {
    this.#ack(deleteLinkRequest(ref));
  }

  /** Sets a link administratively up or down. */
  setLinkUp(ref: LinkRef, up: boolean): void {
    this.#ack(changeLinkRequest(ref, { up }));
  }

  /** Sets a link's MTU. */
  setMtu(ref: LinkRef, mtu: number): void {
    this.#ack(changeLinkRequest(ref, { mtu }));
  }

  /** Sets a link's MAC address ("52:54:00:00:00:10"). */
  setMac(ref: LinkRef, mac: string): void {
    this.#ack(changeLinkRequest(ref, { mac }));
  }

  /** Enslaves `link` to `bridge`, or frees it with `null`. */
  setMaster(link: LinkRef, bridge: LinkRef | null): void {
    const master = bridge === null ? 0 : this.#index(bridge);
    const req = changeLinkRequest(link, { master });
    if (typeof bridge === "string") req.what = `RTM_NEWLINK ${linkObject(link)} master ${bridge}`;
    this.#ack(req);
  }

  // -- addresses ------------------------------------------------------------

  /**
   * Adds an IPv6 address. `nodad` sets IFA_F_NODAD (usable at once, RFC 4862
   * §5.4 skipped); `replace` updates an existing one instead of EEXIST.
   */
  addAddress(
    ifindex: LinkRef,
    addr: string,
    prefixLength: number,
    opts: { nodad?: boolean; replace?: boolean } = {},
  ): void {
    this.#ack(addressRequest(RTM.NEWADDR, this.#index(ifindex), addr, prefixLength, {
      flags: opts.nodad ? IFA_F.NODAD : 0,
      replace: opts.replace,
    }));
  }

  /** Removes an IPv6 address. */
  deleteAddress(ifindex: LinkRef, addr: string, prefixLength: number): void {
    this.#ack(addressRequest(RTM.DELADDR, this.#index(ifindex), addr, prefixLength));
  }

  /** IPv6 addresses, of every link or of `ifindex` only. */
  getAddresses(ifindex?: LinkRef): AddrInfo[] {
    const only = ifindex === undefined ? undefined : this.#index(ifindex);
    const out: AddrInfo[] = [];
    for (const m of this.#dump(dumpAddressesRequest)) {
      if (m.type !== RTM.NEWADDR) continue;
      const a = expect(parseAddress(m), "RTM_GETADDR dump");
      if (a && (only === undefined || a.ifindex === only)) out.push(a);
    }
    return out;
  }

  // -- routes -----------------------------------------------------------------

  /** Adds (or with `replace`, replaces) an IPv6 route in the main table. */
  addRoute(
    dst: string,
    prefixLength: number,
    opts: { oif?: LinkRef; gateway?: string; metric?: number; replace?: boolean } = {},
  ): void {
    const oif = opts.oif === undefined ? undefined : this.#index(opts.oif);
    this.#ack(routeRequest(RTM.NEWROUTE, dst, prefixLength, { ...opts, oif }));
  }

  /** Deletes an IPv6 route of the main table (narrowed by `oif`, `gateway`, `metric`). */
  deleteRoute(
    dst: string,
    prefixLength: number,
    opts: { oif?: LinkRef; gateway?: string; metric?: number } = {},
  ): void {
    const oif = opts.oif === undefined ? undefined : this.#index(opts.oif);
    this.#ack(routeRequest(RTM.DELROUTE, dst, prefixLength, { ...opts, oif }));
  }

  /** Every IPv6 route of every table. */
  getRoutes(): RouteInfo[] {
    const out: RouteInfo[] = [];
    for (const m of this.#dump(dumpRoutesRequest)) {
      if (m.type !== RTM.NEWROUTE) continue;
      const r = expect(parseRoute(m), "RTM_GETROUTE dump");
      if (r) out.push(r);
    }
    return out;
  }

  // -- neighbours -------------------------------------------------------------

  /**
   * Adds a proxy ND entry (NTF_PROXY): with `proxy_ndp` on, the kernel answers
   * Neighbor Solicitations for `addr` on `ifindex` (RFC 6275 §10.4.1).
   */
  addProxyNeighbor(addr: string, ifindex: LinkRef): void {
    this.#ack(neighborRequest(RTM.NEWNEIGH, addr, this.#index(ifindex), { proxy: true }));
  }

  /** Removes a proxy ND entry (ENOENT when absent). */
  deleteProxyNeighbor(addr: string, ifindex: LinkRef): void {
    this.#ack(neighborRequest(RTM.DELNEIGH, addr, this.#index(ifindex), { proxy: true }));
  }

  /** Adds or replaces a NUD_PERMANENT neighbour entry `addr` → `mac`. */
  addNeighbor(addr: string, mac: string, ifindex: LinkRef): void {
    this.#ack(neighborRequest(RTM.NEWNEIGH, addr, this.#index(ifindex), { mac }));
  }

  /** Removes a neighbour entry. */
  deleteNeighbor(addr: string, ifindex: LinkRef): void {
    this.#ack(neighborRequest(RTM.DELNEIGH, addr, this.#index(ifindex)));
  }
}

// ---------------------------------------------------------------------------
// sysctl (not netlink, but the same kind of setup step)
// ---------------------------------------------------------------------------

function sysctlPath(key: string): string {
  const k = key.includes("/") ? key : key.replaceAll(".", "/");
  if (!/^[A-Za-z0-9_.\-]+(\/[A-Za-z0-9_.\-]+)*$/.test(k) || k.split("/").includes("..")) {
    throw new TypeError(`invalid sysctl key "${key}"`);
  }
  return `/proc/sys/${k}`;
}

/**
 * Writes `/proc/sys/<key>` of the calling thread's network namespace, e.g.
 * `writeSysctl("net/ipv6/conf/eth0/proxy_ndp", 1)`. A dotted key
 * ("net.ipv6.conf.all.forwarding") is accepted when no part contains a dot;
 * use the slash form for interface names like "eth0.100".
 */
export function writeSysctl(key: string, value: string | number): void {
  const path = sysctlPath(key);
  const c = libc();
  const fd = check(`sysctl ${key}`, c.open(cstring(path), O_WRONLY | O_CLOEXEC, 0));
  try {
    const data = new TextEncoder().encode(`${value}\n`);
    check(`sysctl ${key}=${value}`, c.write(fd, data, BigInt(data.length)));
  } finally {
    c.close(fd);
  }
}

/** Reads `/proc/sys/<key>`, without the trailing newline. */
export function readSysctl(key: string): string {
  const path = sysctlPath(key);
  const c = libc();
  const fd = check(`sysctl ${key}`, c.open(cstring(path), O_RDONLY | O_CLOEXEC, 0));
  try {
    const buf = new Uint8Array(4096);
    const n = Number(check(`sysctl ${key}`, c.read(fd, buf, BigInt(buf.length))));
    return new TextDecoder().decode(buf.subarray(0, n)).replace(/\n$/, "");
  } finally {
    c.close(fd);
  }
}
