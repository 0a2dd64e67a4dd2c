/**
 * Packet codecs of Kagemusha: Ethernet, IPv6, extension headers (HAO, RH2), Mobility Header,
 * ICMPv6 + Neighbor Discovery, ESP (RFC 4303), checksums, whole-packet builders.
 *
 * @module
 */

export * from "./result.ts";
export * from "./addr.ts";
export * from "./checksum.ts";
export * from "./ethernet.ts";
export * from "./ipv6.ts";
export * from "./mobility.ts";
export * from "./icmpv6.ts";
export * from "./ext_headers.ts";
export * from "./packet.ts";
export * from "./esp.ts";
