/**
 * The mobile node's data path: between the VMs' taps (the pseudo home network) and the
 * IPv6-in-IPv6 tunnel to the home agent (RFC 6275 §11.3.1, RFC 2473).
 *
 * @module
 */

import type { SharedCounters } from "./counters.ts";
import { DEFAULT_BATCH, MAX_PACKET, openTunnelSocket } from "./io.ts";
import { MnControl } from "./mn_control.ts";
import type { MnWorkerInit } from "./mn_worker.ts";
import type { RaOptions } from "../mn/pseudo_home.ts";
import { enableOffloads, hasVnetHdr } from "./vnet.ts";
import { type Datapath, type DatapathWorkers, startDatapath } from "./worker_host.ts";

/** One VM on this host. */
export interface MnDatapathVm {
  /**
   * The daemon's end of the VM's tap (IFF_TAP | IFF_NO_PI), bridged to the VM's NIC. Opened
   * with IFF_VNET_HDR too, it gets offloads (the fast path: 64 KB TCP segments in, merged
   * segments out); frames the daemon writes itself then need a zeroed 10-byte virtio_net_hdr
   * in front (`VNET_HDR_LEN`).
   */
  tapFd: number;
  /** The VM's Home Address. */
  homeAddress: string;
  /** Length of the home prefix. */
  prefixLength: number;
  /** The VM NIC's MAC. */
  vmMac: string;
  /** The MAC the pseudo home network answers with; never the tap's own MAC (DESIGN.md). */
  routerMac: string;
  /** The home router's link-local address as the guest knows it. */
  routerLl: string;
  /**
   * What the Router Advertisement answering the guest's Router Solicitation says (RFC 4861
   * §6.2.6; `VmConfig.ra`, defaults in `RA_DEFAULTS` of src/mn/pseudo_home.ts). Give the
   * daemon's resolved options (its Router Lifetime included) so that the solicited RA says
   * what the periodic ones say.
   */
  ra?: RaOptions;
}

/** Options of {@linkcode startMnDatapath}. */
export interface MnDatapathOptions {
  /** The VMs on this host (at least one); VM i is `setActive(i, …)`. */
  vms: MnDatapathVm[];
  /** Outer source of tunnelled packets; "::" = none yet (nothing is tunnelled). */
  careOf: string;
  /** The home agent: outer destination, and the only outer source accepted. */
  homeAgent: string;
  /** Where the Workers count (see `DATAPATH_COUNTERS`). */
  counters: SharedCounters;
  /** MTU of the link the CoA is on: guests' packets above linkMtu − 40 get a Packet Too Big. */
  linkMtu: number;
  /** Messages per batch (default 64). */
  batch?: number;
  /** Workers for the two directions (default 1: both in one; see `pumpLayout`). */
  workers?: DatapathWorkers;
}

/** A running mobile node data path. */
export interface MnDatapath extends Datapath {
  /**
   * Whether VM `vmIndex`'s traffic goes through the tunnel (its binding is in flight or
   * registered, RFC 6275 §11.7.1). Initially every VM is inactive.
   */
  setActive(vmIndex: number, on: boolean): void;
  /** A new Care-of Address after a handover (RFC 6275 §11.5); "::" stops tunnelling. */
  setCareOf(addr: string): void;
  /** A new home agent address. */
  setHomeAgent(addr: string): void;
}

/**
 * Starts the mobile node data path (one Worker, or one per direction: `workers`). Tap fds are
 * switched to O_NONBLOCK (and offloads on, with IFF_VNET_HDR) and stay open (they belong to the
 * daemon, which may also write frames of its own to them, e.g. the unsolicited NA of
 * `buildUnsolicitedRouterNa`: a tap write is atomic per frame).
 * @throws {ErrnoError} when the raw IPPROTO_IPV6 socket cannot be opened.
 */
export async function startMnDatapath(opts: MnDatapathOptions): Promise<MnDatapath> {
  if (opts.vms.length === 0) throw new RangeError("startMnDatapath: no VMs");
  if (!Number.isInteger(opts.linkMtu) || opts.linkMtu < 1280 + 40) {
    throw new RangeError(`link MTU must be >= 1320 (tunnel MTU >= 1280), got ${opts.linkMtu}`);
  }
  const control = new MnControl(opts.vms.length);
  control.setCareOf(opts.careOf);
  control.setHomeAgent(opts.homeAgent);
  const vnets = opts.vms.map((v) => hasVnetHdr(v.tapFd));
  opts.vms.forEach((v, i) => vnets[i] && enableOffloads(v.tapFd));
  // Unbound: the CoA changes with every handover; the source goes in IPV6_PKTINFO.
  const socket = openTunnelSocket();
  const init = {
    vms: opts.vms.map((v, i) => ({
      tapFd: v.tapFd,
      vnet: vnets[i],
      homeAddress: v.homeAddress,
      prefixLength: v.prefixLength,
      vmMac: v.vmMac,
      routerMac: v.routerMac,
      routerLl: v.routerLl,
      ra: v.ra,
    })),
    sockFd: socket.fd,
    control: control.buffer,
    counters: opts.counters.share(),
    linkMtu: opts.linkMtu,
    batch: opts.batch ?? DEFAULT_BATCH,
    capacity: MAX_PACKET,
  };
  const dp = await startDatapath<MnWorkerInit>(
    new URL("./mn_worker.ts", import.meta.url),
    "kagemusha-mn",
    init,
    { socket, counters: opts.counters, workers: opts.workers },
  );
  return {
    ...dp,
    setActive: (vm, on) => control.setActive(vm, on),
    setCareOf: (addr) => control.setCareOf(addr),
    setHomeAgent: (addr) => control.setHomeAgent(addr),
  };
}
