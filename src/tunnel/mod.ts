/**
 * The data path: shared binding table and counters, and the home agent / mobile node Workers
 * that move packets between devices and the IPv6-in-IPv6 tunnel (RFC 2473, RFC 6275 §10.4,
 * §11.3.1).
 *
 * @module
 */

export { CounterBatch, DATAPATH_COUNTERS, SharedCounters } from "./counters.ts";
export type { SharedCountersInit } from "./counters.ts";
export { startHaDatapath } from "./ha_datapath.ts";
export type { Datapath, HaDatapathOptions } from "./ha_datapath.ts";
export { startMnDatapath } from "./mn_datapath.ts";
export type { MnDatapath, MnDatapathOptions, MnDatapathVm } from "./mn_datapath.ts";
export { MnControl } from "./mn_control.ts";
export { DEFAULT_BATCH, ETHER_HEADER, HEADROOM, ipv6PacketLength, MAX_PACKET } from "./io.ts";
export { enableOffloads, hasVnetHdr, VNET_HDR_LEN } from "./vnet.ts";
export { TableReader, TunnelTable } from "./table.ts";
export type { TunnelEntry } from "./table.ts";
