/**
 * The mobile node's signaling I/O (RFC 6275 §11.7): sending Binding Updates and receiving
 * Binding Acknowledgements, Binding Refresh Requests and Binding Errors, on kernels with or
 * without CONFIG_IPV6_MIP6.
 *
 * - BUs leave a raw IPPROTO_MH socket whose kernel checksum is off (IPV6_CHECKSUM -1): the
 *   MH checksum is computed here over the home address (§6.1.1); the HAO goes in an
 *   IPV6_DSTOPTS cmsg and the care-of source in IPV6_PKTINFO (RFC 3542).
 * - BAs and BRRs come with a type 2 routing header. A kernel without MIP6 drops those, but a
 *   raw IPPROTO_ROUTING (43) socket gets a copy first: data = RH2 + MH.
 * - Binding Errors come without RH2, on the IPPROTO_MH socket.
 * - Returning home (§11.5.4), the deregistration BU is sent from the home address, which this
 *   host does not own: a whole packet through an IPPROTO_RAW socket. The HA answers to the
 *   home address on the home link, i.e. to the VM's MAC: a packet socket on the home
 *   interface (promiscuous, so a bridge device passes up frames for a port's MAC too) sees it.
 *   The Neighbor Advertisement for the home address leaves through that packet socket.
 *
 * Decoding is split from the sockets ({@linkcode decodeRoutingDatagram},
 * {@linkcode decodeMhDatagram}, {@linkcode decodeHomeFrame}) so that it is testable without root.
 *
 * The receive loops run on the main thread, next to the timers and the control socket, and
 * the raw IPPROTO_ROUTING socket gets a copy of *every* packet with a routing header, the
 * home-link packet socket every frame on the link. So each loop does a bounded amount of work
 * per wake-up ({@linkcode RX_BUDGET} datagrams, then it yields to the event loop with
 * `setTimeout(0)` before reading on), and drops what is not for it by a byte peek before any
 * parse or allocation ({@linkcode peekRoutingDatagram}, {@linkcode peekHomeFrame}): routing
 * type 2 followed by MH, from the home agent; on the home link, IPv6 from the home agent to a
 * watched home address carrying MH (or a routing header) — on the home link the kernel already
 * applies that filter ({@linkcode homeLinkFilter}, SO_ATTACH_FILTER). The discards are counted
 * (`rx_not_mh`, `rx_not_from_ha`; home-link frames not for us are only counted as
 * `home_frames_ignored`).
 *
 * @module
 */

import { ETH_P_ALL, IPPROTO_MH, IPPROTO_RAW, IPPROTO_ROUTING } from "../../ffi/constants.ts";
import { PacketSocket } from "../../ffi/packet_socket.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { RawSocket6, RecvRing } from "../../ffi/raw_socket.ts";
import { formatIPv6, IPPROTO, parseIPv6 } from "../wire/addr.ts";
import { emitDestOpts, parseRoutingHeader } from "../wire/ext_headers.ts";
import {
  type BaRepr,
  type BeRepr,
  type BrrRepr,
  type BuRepr,
  emitMobility,
  type MobilityRepr,
  parseMobility,
} from "../wire/mobility.ts";
import { buildMobilityPacket, parsePacket } from "../wire/packet.ts";
import { homeLinkFilter } from "./home_filter.ts";

/** A signaling message addressed to the mobile node, with the addressing the BUL checks. */
export type Received =
  | { type: "ba"; src: string; dst: string; rh2HomeAddress?: string; ba: BaRepr }
  | { type: "brr"; src: string; dst: string; rh2HomeAddress?: string; brr: BrrRepr }
  | { type: "be"; src: string; dst: string; be: BeRepr };

/** Why a datagram was not a signaling message for us (a counter name). */
export type Discard =
  | "rx_malformed"
  | "rx_checksum"
  | "rx_not_mh"
  | "rx_not_from_ha"
  | "rx_other_mh"
  | "rx_duplicate";

/** Datagrams (or frames) a receive loop handles per wake-up before yielding to the event loop. */
export const RX_BUDGET = 64;

/** Routing type of the type 2 routing header (RFC 6275 §6.4). */
const RH_TYPE2 = 2;

function sameAddress(a: Uint8Array, aAt: number, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[aAt + i] !== b[i]) return false;
  return true;
}

/**
 * The cheap check before decoding what the raw IPPROTO_ROUTING socket delivered (it gets a
 * copy of every packet with any routing header): `data[0, len)` must start with a type 2
 * routing header whose next header is MH, and `src` (16 bytes) must be the home agent.
 * Returns null when worth decoding, else the discard counter. No allocation.
 */
export function peekRoutingDatagram(
  data: Uint8Array,
  len: number,
  src: Uint8Array,
  homeAgent: Uint8Array,
): Discard | null {
  if (len < 8 || data[0] !== IPPROTO.MH || data[2] !== RH_TYPE2) return "rx_not_mh";
  if (!sameAddress(src, 0, homeAgent)) return "rx_not_from_ha";
  return null;
}

const ETH_HLEN = 14;
const IP6_NH = ETH_HLEN + 6;
const IP6_SRC = ETH_HLEN + 8;
const IP6_DST = ETH_HLEN + 24;

/**
 * The cheap check on a home-link frame before decoding it (the packet socket sees every frame
 * on the link): IPv6, next header MH or a routing header, source the home agent, destination
 * one of `homeAddresses` (16 bytes each). No allocation.
 */
export function peekHomeFrame(
  frame: Uint8Array,
  len: number,
  homeAgent: Uint8Array,
  homeAddresses: readonly Uint8Array[],
): boolean {
  if (len < ETH_HLEN + 40 + 8 || frame[12] !== 0x86 || frame[13] !== 0xdd) return false;
  const nh = frame[IP6_NH];
  if (nh !== IPPROTO.MH && nh !== IPPROTO_ROUTING) return false;
  if (!sameAddress(frame, IP6_SRC, homeAgent)) return false;
  for (const h of homeAddresses) if (sameAddress(frame, IP6_DST, h)) return true;
  return false;
}

/** Result of decoding a received datagram. */
export type Decoded = { ok: true; msg: Received } | { ok: false; why: Discard };

function classify(
  mh: MobilityRepr,
  src: string,
  dst: string,
  rh2HomeAddress: string | undefined,
): Decoded {
  switch (mh.type) {
    case "ba":
      return {
        ok: true,
        msg: rh2HomeAddress === undefined
          ? { type: "ba", src, dst, ba: mh }
          : { type: "ba", src, dst, rh2HomeAddress, ba: mh },
      };
    case "brr":
      return {
        ok: true,
        msg: rh2HomeAddress === undefined
          ? { type: "brr", src, dst, brr: mh }
          : { type: "brr", src, dst, rh2HomeAddress, brr: mh },
      };
    case "be":
      return { ok: true, msg: { type: "be", src, dst, be: mh } };
    default:
      return { ok: false, why: "rx_other_mh" };
  }
}

/**
 * Decodes what a raw IPPROTO_ROUTING socket delivered: a routing header, then (for us) a
 * Mobility Header. The MH checksum is verified with the final destination, the RH2's home
 * address (RFC 6275 §6.1.1, RFC 8200 §8.1).
 */
export function decodeRoutingDatagram(data: Uint8Array, src: string, dst: string): Decoded {
  const rh = parseRoutingHeader(data);
  if (!rh.ok) return { ok: false, why: "rx_malformed" };
  if (rh.value.repr.nextHeader !== IPPROTO.MH) return { ok: false, why: "rx_not_mh" };
  const home = rh.value.repr.homeAddress;
  const mh = parseMobility(data.subarray(rh.value.length), { src, dst: home });
  if (!mh.ok) return { ok: false, why: mh.kind === "checksum" ? "rx_checksum" : "rx_malformed" };
  return classify(mh.value, src, dst, home);
}

/** Decodes what a raw IPPROTO_MH socket delivered (the MH alone, no routing header). */
export function decodeMhDatagram(data: Uint8Array, src: string, dst: string): Decoded {
  const mh = parseMobility(data, { src, dst });
  if (!mh.ok) return { ok: false, why: mh.kind === "checksum" ? "rx_checksum" : "rx_malformed" };
  return classify(mh.value, src, dst, undefined);
}

/**
 * Decodes an Ethernet frame seen on the home link: a Mobility Header message from `homeAgent`
 * to one of `homeAddresses` (the BA to a deregistration from home, §11.5.4). Anything else:
 * null (the home link carries all sorts of traffic; none of it is counted).
 */
export function decodeHomeFrame(
  frame: Uint8Array,
  homeAgent: string,
  homeAddresses: ReadonlySet<string>,
): Decoded | null {
  if (frame.length < 14 + 40 + 8 || frame[12] !== 0x86 || frame[13] !== 0xdd) return null;
  // Cheap peek before a full parse: source = HA.
  const src = formatIPv6(frame, 14 + 8);
  if (src !== homeAgent) return null;
  const dst = formatIPv6(frame, 14 + 24);
  if (!homeAddresses.has(dst)) return null;
  const p = parsePacket(frame.subarray(14));
  if (!p.ok) return p.kind === "checksum" ? { ok: false, why: "rx_checksum" } : null;
  if (p.value.mh === undefined) return null;
  return classify(p.value.mh, src, dst, p.value.rh2?.homeAddress);
}

/** Counters of the signaling sockets. */
export interface SignalingCounters {
  bu_sent: number;
  bu_send_errors: number;
  rx_messages: number;
  rx_malformed: number;
  rx_checksum: number;
  rx_not_mh: number;
  rx_not_from_ha: number;
  rx_other_mh: number;
  rx_duplicate: number;
  /** Receive loops that used their whole budget and yielded before reading on. */
  rx_yields: number;
  /** Home-link frames seen while watching that were not a message for us. */
  home_frames_ignored: number;
  /** The home-link BPF filter could not be attached (the userland peek still filters). */
  home_filter_errors: number;
  home_na_sent: number;
}

/** What to send: a BU from the BUL's `sendBu` action. */
export interface BuSend {
  bu: BuRepr;
  careOf: string;
  homeAddress: string;
  homeAgent: string;
  atHome: boolean;
}

/** The mobile node's signaling sockets. `close()` is idempotent. */
export class MnSignaling {
  readonly counters: SignalingCounters = {
    bu_sent: 0,
    bu_send_errors: 0,
    rx_messages: 0,
    rx_malformed: 0,
    rx_checksum: 0,
    rx_not_mh: 0,
    rx_not_from_ha: 0,
    rx_other_mh: 0,
    rx_duplicate: 0,
    rx_yields: 0,
    home_frames_ignored: 0,
    home_filter_errors: 0,
    home_na_sent: 0,
  };
  readonly #mh: RawSocket6;
  readonly #rt: RawSocket6;
  #raw: RawSocket6 | null = null;
  #home: PacketSocket | null = null;
  #homeAddrs = new Set<string>();
  /** `#homeAddrs` as bytes, for the peek. */
  #homeAddrBytes: Uint8Array[] = [];
  readonly #haBytes: Uint8Array;
  #closed = false;
  readonly #mhBuf = new Uint8Array(1024);
  readonly #doBuf = new Uint8Array(64);
  readonly #rxBuf = new Uint8Array(65536);
  /**
   * One recvmmsg per wake-up on the routing socket. A BA or BRR is well under 1280 bytes;
   * longer datagrams (cut, MSG_TRUNC) are somebody else's.
   */
  readonly #rtRing = new RecvRing(RX_BUDGET, 1280, { control: true });
  readonly #rtDst = new Uint8Array(16);
  #loops: Promise<void>[] = [];

  constructor(
    readonly homeAgent: string,
    readonly homeInterface: string,
    readonly onMessage: (m: Received) => void,
  ) {
    this.#haBytes = parseIPv6(homeAgent);
    this.#mh = RawSocket6.open(IPPROTO_MH, { nonblocking: true });
    try {
      // RFC 6275 §6.1.1: the checksum covers the HoA; the kernel would use the CoA.
      this.#mh.setChecksumOffset(-1);
      this.#mh.setRecvPktInfo(true);
      // On a MIP6 kernel a BA also reaches this socket after RH2 processing: recognise it.
      this.#mh.setRecvRtHdr(true);
      this.#rt = RawSocket6.open(IPPROTO_ROUTING, { nonblocking: true });
      this.#rt.setRecvPktInfo(true);
    } catch (e) {
      this.#mh.close();
      throw e;
    }
    this.#loops.push(this.#routingLoop(), this.#mhLoop());
  }

  /** Sends a BU as the BUL asked (§11.7.1; from home §11.5.4). Errors are returned, not thrown. */
  sendBu(s: BuSend): string | null {
    try {
      if (s.atHome) {
        // From the home address, no HAO: a whole packet through IPPROTO_RAW; the BA comes
        // back to the home address on the home link.
        this.watchHome(s.homeAddress);
        this.#raw ??= RawSocket6.open(IPPROTO_RAW);
        const pkt = buildMobilityPacket({ src: s.homeAddress, dst: s.homeAgent, mh: s.bu });
        this.#raw.sendRaw(pkt, s.homeAgent);
      } else {
        const n = emitMobility(s.bu, this.#mhBuf, { src: s.homeAddress, dst: s.homeAgent });
        const d = emitDestOpts({
          nextHeader: IPPROTO.MH,
          options: [{ type: "hao", homeAddress: s.homeAddress }],
        }, this.#doBuf);
        this.#mh.send(this.#mhBuf.subarray(0, n), {
          dst: s.homeAgent,
          src: s.careOf,
          dstOpts: this.#doBuf.subarray(0, d),
        });
      }
      this.counters.bu_sent++;
      return null;
    } catch (e) {
      this.counters.bu_send_errors++;
      return (e as Error).message;
    }
  }

  /**
   * Starts watching the home link for frames to `homeAddress` (BA to a deregistration from
   * home); idempotent per address.
   */
  watchHome(homeAddress: string): void {
    this.#homeAddrs.add(homeAddress);
    this.#homeAddrBytes = [...this.#homeAddrs].map((a) => parseIPv6(a));
    if (this.#home !== null) return;
    const ps = PacketSocket.open(this.homeInterface, { protocol: ETH_P_ALL, nonblocking: true });
    try {
      // Only IPv6 MH/RH frames from the HA get queued (home_filter.ts); the peek stays.
      try {
        ps.attachFilter(homeLinkFilter(this.#haBytes));
      } catch {
        this.counters.home_filter_errors++;
      }
      ps.setPromiscuous(true);
    } catch (e) {
      ps.close();
      throw e;
    }
    this.#home = ps;
    this.#loops.push(this.#homeLoop(ps));
  }

  /** Stops watching for `homeAddress`; closes the packet socket when none is left. */
  unwatchHome(homeAddress: string): void {
    this.#homeAddrs.delete(homeAddress);
    this.#homeAddrBytes = [...this.#homeAddrs].map((a) => parseIPv6(a));
    // The receive loop sees the change and closes the socket (never under a pending poll).
    if (this.#homeAddrs.size === 0) this.#home = null;
  }

  /** Sends an Ethernet frame on the home interface (the NA for a home address, §11.5.4). */
  sendHomeFrame(frame: Uint8Array, len: number): string | null {
    try {
      let ps = this.#home;
      let temp = false;
      if (ps === null) {
        ps = PacketSocket.open(this.homeInterface, { protocol: ETH_P_ALL });
        temp = true;
      }
      try {
        ps.send(frame, len);
      } finally {
        if (temp) ps.close();
      }
      this.counters.home_na_sent++;
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  /** Lets timers and the control socket run between two budgets of received datagrams. */
  async #yield(): Promise<void> {
    this.counters.rx_yields++;
    await new Promise((r) => setTimeout(r, 0));
  }

  /** The raw IPPROTO_ROUTING socket: BAs and BRRs with a type 2 routing header. */
  async #routingLoop(): Promise<void> {
    const sock = this.#rt;
    const ring = this.#rtRing;
    while (!this.#closed) {
      const ready = await waitReadable(sock.fd, 500).catch(() => false);
      if (this.#closed) return;
      if (!ready) continue;
      for (;;) {
        let n: number;
        try {
          n = sock.recvBatch(ring);
        } catch {
          if (this.#closed) return;
          break;
        }
        for (let i = 0; i < n; i++) this.#onRouting(ring, i);
        if (n < ring.slots) break;
        await this.#yield();
        if (this.#closed) return;
      }
    }
  }

  #onRouting(ring: RecvRing, i: number): void {
    const data = ring.buffers[i];
    const len = Math.min(ring.length(i), ring.slotSize);
    const skip = peekRoutingDatagram(data, len, ring.addrs[i], this.#haBytes);
    if (skip !== null) {
      this.counters[skip]++;
      return;
    }
    if (ring.truncated(i) || !ring.dstAddr(i, this.#rtDst)) {
      this.counters.rx_malformed++;
      return;
    }
    this.#deliver(
      decodeRoutingDatagram(data.subarray(0, len), this.homeAgent, formatIPv6(this.#rtDst)),
    );
  }

  /** The raw IPPROTO_MH socket: Binding Errors (and, on a MIP6 kernel, BA duplicates). */
  async #mhLoop(): Promise<void> {
    const sock = this.#mh;
    const buf = this.#rxBuf;
    while (!this.#closed) {
      const ready = await waitReadable(sock.fd, 500).catch(() => false);
      if (this.#closed) return;
      if (!ready) continue;
      for (let budget = RX_BUDGET;; budget--) {
        if (this.#closed) return;
        if (budget === 0) {
          await this.#yield();
          if (this.#closed) return;
          budget = RX_BUDGET;
        }
        let info;
        try {
          info = sock.recv(buf);
        } catch {
          if (this.#closed) return;
          break;
        }
        if (info === null) break;
        if (info.src !== this.homeAgent) {
          this.counters.rx_not_from_ha++;
          continue;
        }
        if (info.dst === undefined || info.truncated) {
          this.counters.rx_malformed++;
          continue;
        }
        this.#deliver(
          info.rtHdr !== undefined
            ? { ok: false, why: "rx_duplicate" }
            : decodeMhDatagram(buf.subarray(0, info.length), info.src, info.dst),
        );
      }
    }
  }

  async #homeLoop(ps: PacketSocket): Promise<void> {
    // Frames on the home link are at most the link MTU; a longer (cut) one is not a BA.
    const ring = new RecvRing(RX_BUDGET, 2048);
    try {
      while (!this.#closed && this.#home === ps) {
        const ready = await waitReadable(ps.fd, 200).catch(() => false);
        if (this.#closed || this.#home !== ps) return;
        if (!ready) continue;
        for (;;) {
          const n = ps.recvBatch(ring);
          for (let i = 0; i < n; i++) {
            const frame = ring.buffers[i];
            const len = Math.min(ring.length(i), ring.slotSize);
            if (!peekHomeFrame(frame, len, this.#haBytes, this.#homeAddrBytes)) {
              this.counters.home_frames_ignored++;
              continue;
            }
            const d = decodeHomeFrame(frame.subarray(0, len), this.homeAgent, this.#homeAddrs);
            if (d !== null) this.#deliver(d);
            else this.counters.home_frames_ignored++;
          }
          if (n < ring.slots) break;
          await this.#yield();
          if (this.#closed || this.#home !== ps) return;
        }
      }
    } catch {
      // the socket failed: stop watching; a retransmitted BU will reopen it
      if (this.#home === ps) this.#home = null;
    } finally {
      ps.close();
    }
  }

  #deliver(d: Decoded): void {
    if (!d.ok) {
      this.counters[d.why]++;
      return;
    }
    this.counters.rx_messages++;
    this.onMessage(d.msg);
  }

  /** Closes every socket and waits for the receive loops to end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#loops);
    this.#mh.close();
    this.#rt.close();
    this.#raw?.close();
    this.#home = null;
  }
}
