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

import {
  ETH_P_ALL,
  IPPROTO_ESP,
  IPPROTO_MH,
  IPPROTO_NONE,
  IPPROTO_RAW,
  IPPROTO_ROUTING,
} from "../../ffi/constants.ts";
import { PacketSocket } from "../../ffi/packet_socket.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { RawSocket6, RecvRing } from "../../ffi/raw_socket.ts";
import { unprotect } from "../ipsec/esp.ts";
import { buildProtectedMobilityPacket, protectMobility } from "../ipsec/packets.ts";
import {
  type SecurityAssociation,
  SecurityAssociationDatabase,
  SequenceExhaustedError,
} from "../ipsec/sa.ts";
import { logger, RateLimiter } from "../log.ts";
import { formatIPv6, IPPROTO, parseIPv6 } from "../wire/addr.ts";
import { emitDestOpts, parseRoutingHeader, walkExtensionHeaders } from "../wire/ext_headers.ts";
import { parseIpv6 } from "../wire/ipv6.ts";
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
import { ESP_RX_COUNTERS, espDropCounter, type EspRxCounter } from "./esp_binding.ts";
import { homeLinkFilter } from "./home_filter.ts";

const log = logger("mn", "esp");

/** How a message came out of ESP (RFC 4303): the SA's SPI and the packet's Sequence Number. */
export interface EspInfo {
  spi: number;
  sequence: number;
}

/**
 * A signaling message addressed to the mobile node, with the addressing the BUL checks; `esp`
 * when it arrived ESP-protected (RFC 4877 §4), checked against the home address's own SA.
 */
export type Received =
  | { type: "ba"; src: string; dst: string; rh2HomeAddress?: string; ba: BaRepr; esp?: EspInfo }
  | {
    type: "brr";
    src: string;
    dst: string;
    rh2HomeAddress?: string;
    brr: BrrRepr;
    esp?: EspInfo;
  }
  | { type: "be"; src: string; dst: string; be: BeRepr };

/** Why a datagram was not a signaling message for us (a counter name). */
export type Discard =
  | "rx_malformed"
  | "rx_checksum"
  | "rx_not_mh"
  | "rx_not_from_ha"
  | "rx_other_mh"
  | "rx_duplicate"
  | EspRxCounter;

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
 * routing header whose next header is MH, or ESP (a protected BA, RFC 4877 §4), and `src`
 * (16 bytes) must be the home agent. Returns null when worth decoding, else the discard
 * counter. No allocation.
 */
export function peekRoutingDatagram(
  data: Uint8Array,
  len: number,
  src: Uint8Array,
  homeAgent: Uint8Array,
): Discard | null {
  if (len < 8 || (data[0] !== IPPROTO.MH && data[0] !== IPPROTO_ESP) || data[2] !== RH_TYPE2) {
    return "rx_not_mh";
  }
  if (!sameAddress(src, 0, homeAgent)) return "rx_not_from_ha";
  return null;
}

const ETH_HLEN = 14;
const IP6_NH = ETH_HLEN + 6;
const IP6_SRC = ETH_HLEN + 8;
const IP6_DST = ETH_HLEN + 24;

/**
 * The cheap check on a home-link frame before decoding it (the packet socket sees every frame
 * on the link): IPv6, next header MH, a routing header or ESP (a protected BA to a
 * deregistration from home, RFC 4877 §4), source the home agent, destination one of
 * `homeAddresses` (16 bytes each). No allocation.
 */
export function peekHomeFrame(
  frame: Uint8Array,
  len: number,
  homeAgent: Uint8Array,
  homeAddresses: readonly Uint8Array[],
): boolean {
  if (len < ETH_HLEN + 40 + 8 || frame[12] !== 0x86 || frame[13] !== 0xdd) return false;
  const nh = frame[IP6_NH];
  if (nh !== IPPROTO.MH && nh !== IPPROTO_ROUTING && nh !== IPPROTO_ESP) return false;
  if (!sameAddress(frame, IP6_SRC, homeAgent)) return false;
  for (const h of homeAddresses) if (sameAddress(frame, IP6_DST, h)) return true;
  return false;
}

/**
 * Result of decoding a received datagram; `detail` says more about an ESP refusal (kind,
 * field, SPI) for the log.
 */
export type Decoded = { ok: true; msg: Received } | { ok: false; why: Discard; detail?: string };

function classify(
  mh: MobilityRepr,
  src: string,
  dst: string,
  rh2HomeAddress: string | undefined,
  esp?: EspInfo,
): Decoded {
  switch (mh.type) {
    case "ba": {
      const msg: Received = { type: "ba", src, dst, ba: mh };
      if (rh2HomeAddress !== undefined) msg.rh2HomeAddress = rh2HomeAddress;
      if (esp !== undefined) msg.esp = esp;
      return { ok: true, msg };
    }
    case "brr": {
      const msg: Received = { type: "brr", src, dst, brr: mh };
      if (rh2HomeAddress !== undefined) msg.rh2HomeAddress = rh2HomeAddress;
      if (esp !== undefined) msg.esp = esp;
      return { ok: true, msg };
    }
    case "be":
      // Binding Errors are never protected (RFC 6275 §6.1.9: any node may send one).
      return esp === undefined
        ? { ok: true, msg: { type: "be", src, dst, be: mh } }
        : { ok: false, why: "rx_other_mh" };
    default:
      return { ok: false, why: "rx_other_mh" };
  }
}

/**
 * Unprotects the ESP part of a signaling packet to the mobile node (RFC 4303 §3.4, RFC 4877
 * §4) and decodes the Mobility Header inside: the SA found by SPI must be the one of the home
 * address the packet names (`rh2`, else the destination) with the home agent `src`; the MH
 * checksum is verified over `src` → home address (RFC 6275 §6.1.1). An authentic dummy packet
 * (next header 59, RFC 4303 §2.6) is `esp_dummy`, to drop silently; other refusals name their
 * counter ({@linkcode espDropCounter}). Copies `esp` before its first `await`.
 */
export async function decodeProtected(
  sad: SecurityAssociationDatabase,
  esp: Uint8Array,
  at: { src: string; dst: string; rh2?: string },
): Promise<Decoded> {
  const home = at.rh2 ?? at.dst;
  const r = await unprotect(sad, esp, { homeAddress: home, homeAgent: at.src });
  if (!r.ok) {
    const spi = r.sa?.spi ??
      (esp.length >= 4 ? new DataView(esp.buffer, esp.byteOffset).getUint32(0) : 0);
    return { ok: false, why: espDropCounter(r), detail: `${r.kind} (${r.field}), SPI ${spi}` };
  }
  const { sa, sequence, nextHeader, payload } = r.value;
  if (nextHeader === IPPROTO_NONE) return { ok: false, why: "esp_dummy" };
  if (nextHeader !== IPPROTO.MH) {
    return {
      ok: false,
      why: "esp_not_mh",
      detail: `next header ${nextHeader} inside SA ${sa.spi} seq ${sequence}`,
    };
  }
  const mh = parseMobility(payload, { src: at.src, dst: home });
  if (!mh.ok) {
    return {
      ok: false,
      why: mh.kind === "checksum" ? "esp_checksum" : "esp_malformed",
      detail: `MH ${mh.kind} (${mh.field}) inside SA ${sa.spi} seq ${sequence}`,
    };
  }
  return classify(mh.value, at.src, at.dst, at.rh2, { spi: sa.spi, sequence });
}

/**
 * Decodes what a raw IPPROTO_ROUTING socket delivered: a routing header, then (for us) a
 * Mobility Header. The MH checksum is verified with the final destination, the RH2's home
 * address (RFC 6275 §6.1.1, RFC 8200 §8.1). ESP after the routing header is not decoded here
 * (`rx_not_mh`): see {@linkcode decodeProtectedRoutingDatagram}.
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

/**
 * Decodes what a raw IPPROTO_ROUTING socket delivered when the type 2 routing header is
 * followed by ESP (a protected BA or BRR, RFC 4877 §4: IPv6 | RH2 | ESP | MH): the RH2's home
 * address selects the SA policy and the checksum's destination ({@linkcode decodeProtected}).
 * Anything else after the routing header goes to {@linkcode decodeRoutingDatagram}.
 */
export async function decodeProtectedRoutingDatagram(
  sad: SecurityAssociationDatabase,
  data: Uint8Array,
  src: string,
  dst: string,
): Promise<Decoded> {
  const rh = parseRoutingHeader(data);
  if (!rh.ok) return { ok: false, why: "rx_malformed" };
  if (rh.value.repr.nextHeader !== IPPROTO_ESP) return decodeRoutingDatagram(data, src, dst);
  return await decodeProtected(sad, data.subarray(rh.value.length), {
    src,
    dst,
    rh2: rh.value.repr.homeAddress,
  });
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

/**
 * A home-link frame carrying ESP (the protected BA to a deregistration from home, RFC 4877 §4:
 * IPv6 (HA → HoA) | ESP | MH): the same checks as {@linkcode decodeHomeFrame}, then
 * {@linkcode decodeProtected}. Null for a frame that is not IPv6 from `homeAgent` to one of
 * `homeAddresses` with ESP.
 */
export async function decodeProtectedHomeFrame(
  sad: SecurityAssociationDatabase,
  frame: Uint8Array,
  homeAgent: string,
  homeAddresses: ReadonlySet<string>,
): Promise<Decoded | null> {
  if (frame.length < 14 + 40 + 8 || frame[12] !== 0x86 || frame[13] !== 0xdd) return null;
  const ip = parseIpv6(frame.subarray(14));
  if (!ip.ok) return null;
  const { src, dst } = ip.value.repr;
  if (src !== homeAgent || !homeAddresses.has(dst)) return null;
  const walk = walkExtensionHeaders(ip.value.payload, ip.value.repr.nextHeader);
  if (!walk.ok) return { ok: false, why: "rx_malformed" };
  if (walk.value.upperProtocol !== IPPROTO_ESP) return null;
  const rh2 = walk.value.rh2 !== undefined && walk.value.rh2.segmentsLeft > 0
    ? walk.value.rh2.homeAddress
    : undefined;
  const at: { src: string; dst: string; rh2?: string } = { src, dst };
  if (rh2 !== undefined) at.rh2 = rh2;
  return await decodeProtected(sad, ip.value.payload.subarray(walk.value.upperOffset), at);
}

/** Counters of the signaling sockets (ESP refusals by reason: {@linkcode ESP_RX_COUNTERS}). */
export interface SignalingCounters extends Record<EspRxCounter, number> {
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
  /** BUs sent ESP-protected (also counted in `bu_sent`). */
  bu_protected: number;
  /** Protected BUs dropped unsent: their SA was released (exported) while they were sealed. */
  bu_dropped_released: number;
  /** Messages that came out of ESP and went on to the binding update list. */
  rx_protected: number;
}

/** Inbound ESP packets being unprotected at once; more are dropped (`esp_busy`). */
export const ESP_RX_IN_FLIGHT = 64;

/** What became of a protected BU ({@linkcode MnSignaling.sendProtectedBu}). */
export type ProtectedSendResult =
  | { ok: true; espSequence: number }
  | { ok: false; error: string; exhausted?: true; released?: true };

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
    bu_protected: 0,
    bu_dropped_released: 0,
    rx_protected: 0,
    ...Object.fromEntries(ESP_RX_COUNTERS.map((k) => [k, 0])) as Record<EspRxCounter, number>,
  };
  readonly #mh: RawSocket6;
  /** Raw IPPROTO_ESP socket for protected BUs away from home (opened on first use). */
  #espTx: RawSocket6 | null = null;
  /** Protected sends leave in the order their Sequence Numbers were taken. */
  #sendChain: Promise<unknown> = Promise.resolve();
  #espInFlight = 0;
  #espPending = new Set<Promise<void>>();
  readonly #rl = new RateLimiter();
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

  /**
   * @param sad the SAs of every VM with ESP (RFC 4877 §4): inbound ones unprotect BAs
   */
  constructor(
    readonly homeAgent: string,
    readonly homeInterface: string,
    readonly onMessage: (m: Received) => void,
    readonly sad: SecurityAssociationDatabase = new SecurityAssociationDatabase(),
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
   * Sends a BU protected under the outbound `sa` (RFC 4877 §4, RFC 4303 transport mode):
   * - away from home: the ESP bytes (MH inside, its checksum over HoA → HA, RFC 6275 §6.1.1)
   *   through a raw IPPROTO_ESP socket, the HAO in an IPV6_DSTOPTS cmsg and the care-of
   *   address as IPV6_PKTINFO source: IPv6 | DestOpts(HAO) | ESP | MH;
   * - from home (§11.5.4): IPv6 (HoA → HA) | ESP | MH, whole through IPPROTO_RAW.
   *
   * The ESP Sequence Number is taken synchronously, before this returns its promise, so calls
   * made in order number their packets in order; the packets also leave in that order.
   * `current()` is asked just before the packet leaves: false (the SA was released by an
   * export meanwhile) drops it unsent. Resolves with the Sequence Number used, or why not:
   * `exhausted` for `SequenceExhaustedError` (RFC 4303 §3.3.3: rekey needed). Never rejects.
   */
  sendProtectedBu(
    s: BuSend,
    sa: SecurityAssociation,
    current: () => boolean = () => true,
  ): Promise<ProtectedSendResult> {
    let sealed: Promise<Uint8Array>;
    try {
      if (s.atHome) {
        this.watchHome(s.homeAddress);
        sealed = buildProtectedMobilityPacket(sa, {
          src: s.homeAddress,
          dst: s.homeAgent,
          mh: s.bu,
        });
      } else {
        sealed = protectMobility(sa, s.bu, { src: s.homeAddress, dst: s.homeAgent });
      }
    } catch (e) {
      this.counters.bu_send_errors++;
      return Promise.resolve({ ok: false, error: (e as Error).message });
    }
    // protect() took the Sequence Number before its first await: it is the SA's last one now.
    const espSequence = sa.lastSequence;
    const job = this.#sendChain.then(async (): Promise<ProtectedSendResult> => {
      let bytes: Uint8Array;
      try {
        bytes = await sealed;
      } catch (e) {
        this.counters.bu_send_errors++;
        return e instanceof SequenceExhaustedError
          ? { ok: false, error: e.message, exhausted: true }
          : { ok: false, error: (e as Error).message };
      }
      if (!current()) {
        this.counters.bu_dropped_released++;
        return { ok: false, error: "the ESP SA was released before the BU left", released: true };
      }
      if (this.#closed) {
        this.counters.bu_send_errors++;
        return { ok: false, error: "signaling closed" };
      }
      try {
        if (s.atHome) {
          this.#raw ??= RawSocket6.open(IPPROTO_RAW);
          this.#raw.sendRaw(bytes, s.homeAgent);
        } else {
          if (this.#espTx === null) {
            const tx = RawSocket6.open(IPPROTO_ESP);
            // Send-only: keep the receive queue (a copy of inbound ESP on MIP6 kernels) small.
            try {
              tx.setBufferSizes({ rcv: 4096 });
            } catch { /* the default size works too */ }
            this.#espTx = tx;
          }
          const d = emitDestOpts({
            nextHeader: IPPROTO_ESP,
            options: [{ type: "hao", homeAddress: s.homeAddress }],
          }, this.#doBuf);
          this.#espTx.send(bytes, {
            dst: s.homeAgent,
            src: s.careOf,
            dstOpts: this.#doBuf.subarray(0, d),
          });
        }
      } catch (e) {
        this.counters.bu_send_errors++;
        return { ok: false, error: (e as Error).message };
      }
      this.counters.bu_sent++;
      this.counters.bu_protected++;
      return { ok: true, espSequence };
    });
    this.#sendChain = job;
    return job;
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
    if (data[0] === IPPROTO_ESP && !this.#espRoom()) return;
    if (ring.truncated(i) || !ring.dstAddr(i, this.#rtDst)) {
      this.counters.rx_malformed++;
      return;
    }
    const dst = formatIPv6(this.#rtDst);
    if (data[0] === IPPROTO_ESP) {
      // decodeProtected copies the bytes before its first await: the ring may be reused.
      this.#unprotecting(
        decodeProtectedRoutingDatagram(this.sad, data.subarray(0, len), this.homeAgent, dst),
      );
      return;
    }
    this.#deliver(decodeRoutingDatagram(data.subarray(0, len), this.homeAgent, dst));
  }

  /**
   * Delivers the result of an ESP decode when it is done. At most {@linkcode ESP_RX_IN_FLIGHT}
   * at once: WebCrypto work for packets anyone can send from the home agent's address stays
   * bounded (replays and unknown SPIs are refused before any crypto anyway).
   */
  #unprotecting(p: Promise<Decoded | null>): void {
    this.#espInFlight++;
    const done: Promise<void> = p.then((d) => {
      if (d !== null && !this.#closed) this.#deliver(d);
    }, (e) => {
      this.counters.esp_malformed++;
      log.error("ESP decode failed: {error}", { error: (e as Error).message });
    }).finally(() => {
      this.#espInFlight--;
      this.#espPending.delete(done);
    });
    this.#espPending.add(done);
  }

  /** True when another ESP decode may start now; else counts `esp_busy`. */
  #espRoom(): boolean {
    if (this.#espInFlight < ESP_RX_IN_FLIGHT) return true;
    this.counters.esp_busy++;
    return false;
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
            if (frame[IP6_NH] === IPPROTO_ESP) {
              if (!this.#espRoom()) continue;
              this.#unprotecting(
                decodeProtectedHomeFrame(
                  this.sad,
                  frame.subarray(0, len),
                  this.homeAgent,
                  this.#homeAddrs,
                ).then((d) => {
                  if (d === null) this.counters.home_frames_ignored++;
                  return d;
                }),
              );
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
      // Refused ESP (but not dummies, RFC 4303 §2.6: silently) gets a rate-limited line.
      if (d.why.startsWith("esp_") && d.why !== "esp_dummy") {
        const now = Date.now();
        if (this.#rl.allow(d.why, now)) {
          const sup = this.#rl.suppressed(d.why);
          log.warning("dropped ESP signaling from {src}: {why} {detail}{sup}", {
            src: this.homeAgent,
            why: d.why,
            detail: d.detail ?? "",
            sup: sup > 0 ? ` (${sup} similar suppressed)` : "",
          });
        }
      }
      return;
    }
    this.counters.rx_messages++;
    if (d.msg.type !== "be" && d.msg.esp !== undefined) this.counters.rx_protected++;
    this.onMessage(d.msg);
  }

  /** Closes every socket and waits for the receive loops to end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#loops);
    await this.#sendChain.catch(() => {});
    await Promise.all([...this.#espPending]);
    this.#mh.close();
    this.#rt.close();
    this.#raw?.close();
    this.#espTx?.close();
    this.#home = null;
  }
}
