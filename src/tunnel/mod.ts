/**
 * The data path: shared binding table and counters, and the home agent / mobile node Workers
 * that move packets between devices and the IPv6-in-IPv6 tunnel (RFC 2473, RFC 6275 §10.4,
 * §11.3.1).
 *
 * Devices opened with IFF_VNET_HDR get offloads (`vnet.ts`): the kernel hands over 64 KB TCP
 * (and UDP) super-frames, split into tunnel-sized segments (`gso.ts`), and received segments
 * are merged into 64 KB GSO writes (`gro.ts`); both without allocation per packet
 * (`checksum.ts`). Plain devices move one packet per read and per write.
 *
 * @module
 */

export { CounterBatch, DATAPATH_COUNTERS, SharedCounters } from "./counters.ts";
export type { SharedCountersInit } from "./counters.ts";
export { startHaDatapath } from "./ha_datapath.ts";
export type { Datapath, HaDatapathOptions } from "./ha_datapath.ts";
export { startMnDatapath } from "./mn_datapath.ts";
export type { MnDatapath, MnDatapathOptions, MnDatapathVm } from "./mn_datapath.ts";
export type { RaOptions } from "../mn/pseudo_home.ts";
export { MnControl } from "./mn_control.ts";
export { DEFAULT_BATCH, ETHER_HEADER, HEADROOM, ipv6PacketLength, MAX_PACKET } from "./io.ts";
export { enableOffloads, hasVnetHdr, VNET_HDR_LEN } from "./vnet.ts";
export { GsoSplitter, SPLIT_ERROR } from "./gso.ts";
export { groMergedGso, mergedSegmentSize, TcpCoalescer } from "./gro.ts";
export type { TcpCoalescerOptions } from "./gro.ts";
export { PacketMemory } from "./checksum.ts";
export { TableReader, TunnelTable } from "./table.ts";
export type { TunnelEntry } from "./table.ts";
