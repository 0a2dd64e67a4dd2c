/**
 * Kagemusha's FFI layer: the one `Deno.dlopen` (libc.ts) and the small owned
 * classes over it. Only `ffi/` touches libc; everything else imports from here
 * (or from the individual modules).
 *
 * - fd.ts: `OwnedFd`, the descriptor handling every owning class shares
 * - constants.ts: Linux ABI numbers (AF_*, IPPROTO_*, IPV6_*, ioctls, flags)
 * - structs.ts: LP64 struct layouts, encoders/decoders, IPv6/MAC text
 * - raw_socket.ts: `RawSocket6` (RFC 3542 ancillary data), `RecvRing`/`SendRing`
 * - tap.ts: `TunTapDevice`
 * - packet_socket.ts: `PacketSocket`
 * - poll.ts: `waitReadable`, `pollBlocking`, `Poller`, `EventFd`
 * - netlink.ts: `Rtnetlink`, `writeSysctl`
 *
 * @module
 */

export * from "./libc.ts";
export * from "./fd.ts";
export * from "./constants.ts";
export * from "./structs.ts";
export * from "./raw_socket.ts";
export * from "./tap.ts";
export * from "./packet_socket.ts";
export * from "./poll.ts";
export * from "./netlink.ts";
