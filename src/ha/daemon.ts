/**
 * The userland home agent daemon (`kagemusha ha`): wiring between the sans-I/O
 * {@linkcode HomeAgentCore} and the kernel, on any Linux kernel (no CONFIG_IPV6_MIP6 needed).
 *
 * - BUs with a Home Address option arrive on a raw IPPROTO_DSTOPTS socket (the kernel hands
 *   raw sockets a copy before it drops the unknown option), read with recvmmsg until it is
 *   empty at each wake-up; MH without HAO on a raw IPPROTO_MH socket (kernel checksum off,
 *   IPV6_RECVDSTOPTS so a MIP6 kernel's double delivery is skipped). The MH checksum is verified
 *   over the HoA (RFC 6275 §6.1.1).
 * - ESP (RFC 4877, userland, `esp.ts`): a protected BU away from home reaches the DSTOPTS
 *   socket as Destination Options (HAO, next header 50) + ESP; one from home a raw IPPROTO_ESP
 *   socket (IPV6_RECVDSTOPTS: packets that had a HAO were the DSTOPTS socket's). Unprotected
 *   (WebCrypto, asynchronous, in arrival order) they become the same `mh` events, marked with
 *   the SPI; the core's policy drops unprotected BUs for home addresses with an SA. BAs that
 *   answer a protected BU leave protected, after their sequence number is reserved on disk.
 * - What a batch of BUs asks for is carried out together: tunnel table entries at once, the
 *   /128 routes in one rtnetlink batch (one sendto, one ack each), then every BA, unsolicited
 *   NA and DAD probe in one sendmmsg on an IPPROTO_RAW socket (whole packets: the kernel
 *   refuses a type 2 routing header in sendmsg without MIP6). A BA 0 leaves only after its
 *   route is in place.
 * - Proxy ND (RFC 6275 §10.4.1) and DAD (RFC 4862 §5.4) run in userland on a packet socket of
 *   the home link that sees every NS and NA (see `link_socket.ts` for why not the kernel's
 *   neighbour proxy: its cost grows with the number of entries).
 * - Interception: a tun device with a /128 route per HoA, served by the data-path Workers
 *   (`startHaDatapath`), MTU = home-link MTU − 40 so the kernel sends Packet Too Big.
 * - Everything added is undone on deregistration/expiry and at SIGTERM/SIGINT; the Binding
 *   Cache is kept in the state directory (compact JSON, writes coalesced, wall-clock times) and
 *   re-installed at start. The core runs on the monotonic clock (`performance.now()`), so an
 *   NTP step neither expires nor prolongs bindings.
 * - Forwarding sysctls: `forwarding.ts` (all/forwarding is what Linux needs; every other
 *   device is written back; the snapshot taken before the first change is kept on disk and
 *   restored exactly, also after a crash). At start, routes via the tunnel device that no live
 *   binding explains are removed.
 * - Routine binding changes are logged one by one up to a budget, then summarised
 *   (`LogBudget`); the status counters count every one.
 *
 * @module
 */

import v8 from "node:v8";
import type { HaConfig } from "../config/schema.ts";
import { ControlServer } from "../control/server.ts";
import { Cleanup, waitForShutdown } from "../daemon/lifecycle.ts";
import { logger, RateLimiter } from "../log.ts";
import { StateStore } from "../state/store.ts";
import {
  type LinkInfo,
  type NetlinkError,
  readSysctl,
  Rtnetlink,
  type RtnlChange,
  writeSysctl,
} from "../../ffi/netlink.ts";
import type { PacketSocket } from "../../ffi/packet_socket.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { RawSocket6, RecvRing, SendRing } from "../../ffi/raw_socket.ts";
import { TunTapDevice } from "../../ffi/tap.ts";
import { ErrnoError } from "../../ffi/libc.ts";
import { IPPROTO_ESP, IPPROTO_RAW } from "../../ffi/constants.ts";
import { IPPROTO, parseMac } from "../wire/addr.ts";
import { SharedCounters } from "../tunnel/counters.ts";
import { type Datapath, startHaDatapath } from "../tunnel/ha_datapath.ts";
import { TunnelTable } from "../tunnel/table.ts";
import { parsePersistedCache } from "./binding_cache.ts";
import { type HaAction, type HaEvent, HomeAgentCore } from "./core.ts";
import { HaEsp, peekSpi } from "./esp.ts";
import {
  forwardingKey,
  type ForwardingSnapshot,
  parseSnapshot,
  planForwarding,
} from "./forwarding.ts";
import { emitBindingAck, emitDadProbe, emitUnsolicitedNa } from "./emit.ts";
import { formatIPv6Fast, parseIPv6Into } from "../wire/fast_addr.ts";
import { openLinkSocket } from "./link_socket.ts";
import { LogBudget } from "./log_budget.ts";
import {
  ALL_NODES,
  bePacket,
  dadEvidence,
  decodeBuFast,
  type Decoded,
  decodeDstOptsDatagram,
  decodeMhDatagram,
  linkIcmp,
  paramProblemPacket,
  proxyAnswer,
} from "./packets.ts";

const log = logger("ha");

/** Name of the Binding Cache document in the state directory. */
export const STATE_NAME = "ha-bindings";

/**
 * Name of the forwarding sysctl snapshot in the state directory: written before the first
 * change, removed after the values were restored (present at start = the last run crashed).
 */
export const FORWARDING_STATE = "ha-forwarding";

/** How often the host's own addresses are read again (ms). */
const OWN_ADDRESSES_MS = 30_000;

/** Protected packets waiting to be unprotected before new ones are dropped (a flood). */
const ESP_BACKLOG = 4096;

/** The daemon's clock: monotonic milliseconds (never stepped by NTP). */
const clock = (): number => performance.now();

/** Wall clock minus the daemon's clock, now. */
const wallOffset = (): number => Date.now() - performance.now();

/** Capacity of the shared HoA → CoA table handed to the data path. */
export const TABLE_CAPACITY = 32768;

/** Tunnel overhead: the outer IPv6 header (RFC 2473). */
const TUNNEL_OVERHEAD = 40;

/** Changes to the Binding Cache within this many ms (more for a big cache) share one write. */
const PERSIST_DELAY_MS = 20;

/** Longest spacing of state writes under a steady stream of changes (ms). */
const PERSIST_MAX_DELAY_MS = 2000;

/** How long a receive loop waits before re-checking for shutdown (ms). */
const POLL_MS = 200;

/** Datagrams per recvmmsg and packets per sendmmsg. */
const BATCH = 64;

/** recvmmsg batches taken per wake-up before the event loop gets a turn (timers, control). */
const BATCHES_PER_WAKE = 16;

/** Bytes per send slot: a BA with RH2 is 80, an NA 72, a BE 64. */
const TX_SLOT = 256;

/** Process memory and V8's heap spaces (size / used bytes), for the status answer. */
function memory(): Record<string, unknown> {
  const spaces: Record<string, [number, number]> = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.space_size > 0) spaces[s.space_name] = [s.space_size, s.space_used_size];
  }
  return { ...Deno.memoryUsage(), heapSpaces: spaces };
}

function errCode(e: unknown): string | undefined {
  return e instanceof ErrnoError ? e.code : undefined;
}

/** 16 bytes of canonical address text (from the core: always valid). */
function addressBytes(text: string): Uint8Array {
  const b = new Uint8Array(16);
  if (!parseIPv6Into(text, b)) throw new TypeError(`not an IPv6 address: ${text}`);
  return b;
}

function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A running home agent. Use {@linkcode runHomeAgent}; exposed for tests and embedding. */
export class HomeAgentDaemon {
  readonly core: HomeAgentCore;
  readonly #cfg: HaConfig;
  readonly #cleanup = new Cleanup();
  readonly #limiter = new RateLimiter();
  readonly #budget = new LogBudget();
  #summaryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #counters: Record<string, number> = {};
  readonly #dadWatch = new Set<string>();
  #dirty = false;
  #persistTimer: ReturnType<typeof setTimeout> | undefined;
  #persistDelay = PERSIST_DELAY_MS;
  readonly #stateBuf = new Uint8Array(64 * 1024);
  /** HoA → CoA of what is installed in the kernel and the tunnel table. */
  readonly #installed = new Map<string, string>();
  /** Link-local address defended for a binding with the L bit → its HoA, and back. */
  readonly #llDefended = new Map<string, string>();
  readonly #llOf = new Map<string, string>();
  /** ESP, when SAs are configured. */
  readonly #esp: HaEsp | undefined;
  /** The current drain of the queue of protected packets (awaited at stop). */
  #espRx: Promise<void> = Promise.resolve();
  /** Protected BAs built (asynchronously) and sent in the order the core asked for them. */
  #espTx: Promise<void> = Promise.resolve();
  readonly #loops: Promise<void>[] = [];
  #rtnl!: Rtnetlink;
  #link!: LinkInfo;
  #linkLocal!: string;
  #tun!: TunTapDevice;
  #table!: TunnelTable;
  #dpCounters!: SharedCounters;
  #datapath: Datapath | undefined;
  #tx!: RawSocket6;
  #linkSock!: PacketSocket;
  #store!: StateStore;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt: number | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;

  // batched I/O: preallocated, reused for every batch
  readonly #rxRing = new RecvRing(BATCH, 2048, { control: true });
  readonly #linkRing = new RecvRing(16, 2048);
  readonly #txRing = new SendRing(BATCH, TX_SLOT);
  #txCount = 0;
  readonly #haBytes = new Uint8Array(16);
  readonly #llBytes = new Uint8Array(16);
  readonly #allNodes = new Uint8Array(16);
  readonly #mac = new Uint8Array(6);
  readonly #a1 = new Uint8Array(16);
  readonly #a2 = new Uint8Array(16);
  readonly #a3 = new Uint8Array(16);

  #fail!: (why: string) => void;
  /** Resolves with the reason when the home agent cannot go on (e.g. its data path died). */
  readonly failed: Promise<string> = new Promise((r) => this.#fail = r);

  constructor(config: HaConfig) {
    this.#cfg = config;
    this.#esp = config.esp.length > 0 ? new HaEsp(config.esp, config.address) : undefined;
    this.core = new HomeAgentCore({
      haAddress: config.address,
      homePrefix: config.homePrefix,
      allow: config.allow,
      maxLifetime: config.maxLifetime,
      dad: config.dad,
      espHomeAddresses: this.#esp?.homeAddresses ?? [],
      requireEsp: config.requireEsp,
    });
  }

  #count(name: string, n = 1): void {
    this.#counters[name] = (this.#counters[name] ?? 0) + n;
  }

  /** Sets everything up; on failure, undoes what was done and rethrows. */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async #start(): Promise<void> {
    const cfg = this.#cfg;
    const c = this.#cleanup;
    this.#rtnl = Rtnetlink.open();
    c.defer("rtnetlink socket", () => this.#rtnl.close());
    const rtnl = this.#rtnl;
    this.#link = rtnl.getLink(cfg.interface);
    const ifindex = this.#link.index;
    if (this.#link.mac === "") throw new Error(`${cfg.interface} has no link-layer address`);
    this.#store = new StateStore(cfg.stateDir);

    // The home agent address (RFC 6275 §10.1): add it when the operator did not.
    const addrs = rtnl.getAddresses(ifindex);
    if (!addrs.some((a) => a.address === cfg.address)) {
      rtnl.addAddress(ifindex, cfg.address, cfg.homePrefix.length, { nodad: true });
      log.info("added {address}/{length} to {interface}", {
        address: cfg.address,
        length: cfg.homePrefix.length,
        interface: cfg.interface,
      });
      c.defer(`address ${cfg.address}`, () => {
        this.#rtnl.deleteAddress(ifindex, cfg.address, cfg.homePrefix.length);
      });
    }
    this.#linkLocal = addrs.find((a) => a.scope === "link")?.address ?? cfg.address;
    parseIPv6Into(cfg.address, this.#haBytes);
    parseIPv6Into(this.#linkLocal, this.#llBytes);
    parseIPv6Into(ALL_NODES, this.#allNodes);
    this.#mac.set(parseMac(this.#link.mac));
    // The host's own addresses are never care-of addresses (nor home addresses): read now and
    // every OWN_ADDRESSES_MS (an address added later must not become a care-of address)
    this.core.setOwnAddresses(rtnl.getAddresses().map((a) => a.address));
    const ownTimer = setInterval(() => {
      try {
        this.core.setOwnAddresses(this.#rtnl.getAddresses().map((a) => a.address));
      } catch (e) {
        log.warning("cannot read the host's addresses: {error}", { error: String(e) });
      }
    }, OWN_ADDRESSES_MS);
    c.defer("address refresh timer", () => clearInterval(ownTimer));

    this.#setupForwarding();

    // Interception device: the kernel routes HoA/128 into it.
    this.#tun = TunTapDevice.open(cfg.tunnelDevice, { mode: "tun", vnetHdr: true });
    c.defer(`tun device ${cfg.tunnelDevice}`, () => this.#tun.close());
    this.#removeStrayRoutes();
    this.#tun.setMtu(this.#link.mtu - TUNNEL_OVERHEAD);
    this.#tun.setUp(true);
    this.#table = new TunnelTable(TABLE_CAPACITY);
    this.#dpCounters = new SharedCounters();
    this.#datapath = await startHaDatapath({
      tunFd: this.#tun.fd,
      haAddress: cfg.address,
      table: this.#table,
      counters: this.#dpCounters,
      mtu: this.#link.mtu,
      workers: cfg.datapathWorkers,
    });
    const dp = this.#datapath;
    c.defer("data path", () => dp.stop());
    dp.done.then((err) => {
      if (err !== null && !this.#stopping) {
        log.error("data path stopped: {err}", { err });
        this.#fail(`data path stopped: ${err}`);
      }
    });

    // Sockets.
    this.#tx = RawSocket6.open(IPPROTO_RAW);
    c.defer("IPPROTO_RAW socket", () => this.#tx.close());
    this.#tx.setMulticastIf(ifindex);
    this.#tx.setMulticastLoop(false);
    this.#tx.setBufferSizes({ snd: 1 << 20 });
    // a bound source spares the kernel a source address selection per packet (the packets
    // carry their own source: this one only steers the route lookup). Best effort: an
    // address still tentative (DAD) cannot be bound yet.
    try {
      this.#tx.bind(cfg.address);
    } catch (e) {
      log.debug("IPPROTO_RAW socket left unbound: {error}", { error: String(e) });
    }

    const dstopts = RawSocket6.open(IPPROTO.DSTOPTS, { nonblocking: true });
    c.defer("IPPROTO_DSTOPTS socket", () => dstopts.close());
    dstopts.setRecvPktInfo(true);
    dstopts.setBufferSizes({ rcv: 4 << 20 });

    const mh = RawSocket6.open(IPPROTO.MH, { nonblocking: true });
    c.defer("IPPROTO_MH socket", () => mh.close());
    mh.setChecksumOffset(-1);
    mh.setRecvPktInfo(true);
    mh.setRecvDstOpts(true);

    // ESP from home (no HAO): a raw socket of protocol 50. Only with SAs configured: it would
    // otherwise see the host's own IPsec traffic and count it as unknown SPIs.
    let esp: RawSocket6 | undefined;
    if (this.#esp !== undefined) {
      const sock = RawSocket6.open(IPPROTO_ESP, { nonblocking: true });
      c.defer("IPPROTO_ESP socket", () => sock.close());
      sock.setRecvPktInfo(true);
      sock.setRecvDstOpts(true);
      esp = sock;
    }

    this.#linkSock = openLinkSocket(cfg.interface);
    c.defer("home link ND socket", () => this.#linkSock.close());

    // Bindings that outlived the previous run: re-install before listening.
    c.defer("installed bindings", () => this.#uninstallAll());
    this.#restore();
    this.#reserveAllEsp();

    this.#loops.push(
      this.#pollLoop(dstopts.fd, "dstopts", () => this.#drainDstOpts(dstopts)),
      this.#pollLoop(mh.fd, "mh", () => this.#drainMh(mh)),
      this.#pollLoop(this.#linkSock.fd, "home link", () => this.#drainLink()),
    );
    if (esp !== undefined) {
      const sock = esp;
      this.#loops.push(this.#pollLoop(sock.fd, "esp", () => this.#drainEsp(sock)));
    }

    const control = await ControlServer.listen(cfg.control, {
      status: () => this.status(),
    });
    c.defer("control socket", () => control.close());
    log.info(
      "home agent ready on {interface} ({address}, home prefix {prefix}/{length}, DAD {dad}, max lifetime {maxLifetime} s, tunnel {tunnel} MTU {mtu})",
      {
        interface: cfg.interface,
        address: cfg.address,
        prefix: cfg.homePrefix.prefix,
        length: cfg.homePrefix.length,
        dad: cfg.dad,
        maxLifetime: cfg.maxLifetime,
        tunnel: cfg.tunnelDevice,
        mtu: this.#link.mtu - TUNNEL_OVERHEAD,
      },
    );
    if (this.#esp === undefined) {
      log.warning(
        'WARNING: binding signaling is unauthenticated: no ESP security association is configured, so any host that can reach {address} can register, move or delete a binding (RFC 6275 §5.1, RFC 4877). Configure manually keyed SAs per home address in the --config file ("esp": [{"homeAddress", "bu": {spi, algorithm, key, authKey?}, "ba": {…}}]) and add --require-esp',
        { address: cfg.address },
      );
    } else {
      log.info(
        "ESP protects signaling for {count} home address(es){rest}",
        {
          count: this.#esp.homeAddresses.length,
          rest: cfg.requireEsp
            ? "; BUs without ESP are dropped (--require-esp)"
            : "; BUs for other home addresses are accepted without ESP (no --require-esp)",
        },
      );
    }
  }

  /**
   * Forwarding on (see `forwarding.ts`): the snapshot of the host's values is written to the
   * state directory before the first change — or, when one is already there (the last run
   * crashed before restoring), taken from there — and restored exactly at stop.
   */
  #setupForwarding(): void {
    const cfg = this.#cfg;
    const read = (dev: string): string | undefined => {
      try {
        return readSysctl(forwardingKey(dev));
      } catch {
        return undefined; // a device without IPv6
      }
    };
    const current = this.#forwardingNow(read);
    let original: ForwardingSnapshot | null = null;
    try {
      original = parseSnapshot(this.#store.read(FORWARDING_STATE));
    } catch (e) {
      log.warning("forwarding snapshot unreadable, using the current values: {error}", {
        error: String(e),
      });
    }
    if (original !== null) {
      log.warning(
        "a previous run did not restore the forwarding sysctls (crash?): they go back to the values saved before it ({all} for all) at stop",
        { all: original.all },
      );
    } else {
      original = current;
      this.#store.write(FORWARDING_STATE, current); // before anything changes
    }
    const { apply } = planForwarding(current, original, cfg.interface);
    for (const [key, value] of apply) writeSysctl(key, value);
    if (apply.length > 0) {
      log.info("forwarding enabled: {writes}", {
        writes: apply.map(([k, v]) => `${k}=${v}`).join(", "),
      });
    }
    const snapshot = original;
    this.#cleanup.defer("forwarding sysctls", () => {
      // recomputed at stop: devices may have come and gone meanwhile
      const now = this.#forwardingNow(read);
      // `undo` starts from the state `apply` makes (usually: nothing left to apply)
      const back = planForwarding(now, snapshot, cfg.interface);
      for (const [key, value] of [...back.apply, ...back.undo]) writeSysctl(key, value);
      this.#store.remove(FORWARDING_STATE);
    });
  }

  #forwardingNow(read: (dev: string) => string | undefined): ForwardingSnapshot {
    const s: ForwardingSnapshot = {
      all: read("all") ?? "0",
      default: read("default") ?? "0",
      interfaces: {},
    };
    for (const l of this.#rtnl.getLinks()) {
      const v = read(l.name);
      if (v !== undefined) s.interfaces[l.name] = v;
    }
    return s;
  }

  /**
   * Routes into the tunnel device that no binding explains (left by a crashed run when the
   * device outlived it, e.g. made persistent by another tool): removed before the restore
   * installs the live ones again.
   */
  #removeStrayRoutes(): void {
    const tun = this.#tun.ifindex;
    const stray = this.#rtnl.getRoutes().filter((r) =>
      r.oif === tun && r.prefixLength === 128 && r.type === 1
    );
    if (stray.length === 0) return;
    const errors = this.#rtnl.batch(stray.map((r): RtnlChange => ({
      op: "deleteRoute",
      dst: addressBytes(r.dst),
      prefixLength: 128,
      oif: tun,
    }))).filter((e) => e !== null);
    log.warning("removed {count} stray route(s) via {tunnel}{errors}", {
      count: stray.length - errors.length,
      tunnel: this.#cfg.tunnelDevice,
      errors: errors.length ? ` (${errors.length} failed: ${errors[0]})` : "",
    });
  }

  /** The control socket's `status` answer. */
  status(): unknown {
    const now = clock();
    return {
      role: "ha",
      interface: this.#cfg.interface,
      address: this.#cfg.address,
      homePrefix: `${this.#cfg.homePrefix.prefix}/${this.#cfg.homePrefix.length}`,
      dad: this.#cfg.dad,
      maxLifetime: this.#cfg.maxLifetime,
      bindings: this.core.status(now, wallOffset()),
      memory: memory(),
      esp: this.#esp?.status() ?? null,
      counters: {
        ...this.core.counters(),
        ...this.#counters,
        ...(this.#esp?.counters ?? {}),
        ...(this.#datapath?.counters() ?? {}),
      },
    };
  }

  /** Stops: receive loops, timers, kernel state, sockets, control socket. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      clearTimeout(this.#timer);
      await Promise.all(this.#loops);
      await this.#espRx;
      await this.#espTx;
      clearTimeout(this.#persistTimer);
      this.#persistTimer = undefined;
      clearTimeout(this.#summaryTimer);
      this.#logSummary();
      if (this.#store !== undefined) this.#persistNow();
      const failed = await this.#cleanup.runAll();
      if (failed.length) log.warning("cleanup incomplete: {failed}", { failed });
    })();
    return this.#stopped;
  }

  #restore(): void {
    let doc: unknown;
    try {
      doc = this.#store.read(STATE_NAME);
    } catch (e) {
      log.error("binding cache in {dir} unreadable, starting empty: {error}", {
        dir: this.#cfg.stateDir,
        error: String(e),
      });
      this.#espStateLost();
      return;
    }
    const { bindings, rejected, esp } = parsePersistedCache(doc);
    for (const r of rejected) log.warning("persisted binding cache: {problem}", { problem: r });
    if (this.#esp !== undefined && rejected.some((r) => /^(document|esp):/.test(r))) {
      this.#espStateLost();
    }
    if (this.#esp !== undefined && esp.length > 0) {
      for (const p of this.#esp.importState(esp)) {
        log.warning("persisted ESP state: {problem}", { problem: p });
      }
      log.info("ESP state restored: {sas}", {
        sas: esp.map((s) => JSON.stringify(s)).join(", "),
      });
    }
    if (bindings.length === 0 && rejected.length === 0) return;
    // Earlier versions proxied home addresses with kernel proxy entries, which outlive a crash:
    // remove any left for the persisted bindings (ENOENT, the usual answer, is cheap).
    const ifindex = this.#link.index;
    const stale = bindings.map((b): RtnlChange => ({
      op: "deleteProxyNeighbor",
      addr: b.homeAddress,
      ifindex,
    }));
    this.#rtnl.batch(stale).forEach((e, i) => {
      if (e === null) {
        log.info("removed stale proxy entry for {homeAddress}", {
          homeAddress: bindings[i].homeAddress,
        });
      }
    });
    // the file holds wall-clock times; the core runs on the monotonic clock
    const off = wallOffset();
    for (const b of bindings) {
      b.expiresAt -= off;
      b.registeredAt -= off;
    }
    this.#dispatch({ type: "restore", bindings });
  }

  // ---- event loop ------------------------------------------------------------------------------

  /** Hands `event` to the core and carries out the actions; re-arms the timer. */
  #dispatch(event: HaEvent): void {
    const now = clock();
    this.#run(this.core.handle(event, now), now);
    this.#arm();
  }

  /** Hands a batch of received events to the core; their actions are carried out together. */
  #dispatchMany(events: HaEvent[]): void {
    if (events.length === 0) return;
    const now = clock();
    let actions: HaAction[] = [];
    for (const ev of events) {
      try {
        const out = this.core.handle(ev, now);
        if (actions.length === 0) actions = out;
        else for (const a of out) actions.push(a);
      } catch (e) {
        this.#count("rx_errors");
        log.error("event {type} not handled: {error}", { type: ev.type, error: String(e) });
      }
    }
    this.#run(actions, now);
    this.#arm();
  }

  /**
   * Carries out `actions` in two passes: state first (tunnel table, kernel routes in one
   * rtnetlink batch, DAD watch, persistence, logs), then packets in order in one sendmmsg —
   * leaving out the BA 0 and unsolicited NA of a binding whose install failed (the core then
   * answers 130 to its `installFailed`).
   */
  #run(actions: HaAction[], now: number): void {
    const nl: RtnlChange[] = [];
    const nlAction: number[] = [];
    const failed = new Map<number, string>(); // action index of a failed install → why
    const tun = this.#tun.ifindex;
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i];
      switch (a.type) {
        case "install": {
          try {
            this.#table.set(a.homeAddress, { outer: a.careOf });
          } catch (e) {
            failed.set(i, String(e));
            break;
          }
          if (!this.#installed.has(a.homeAddress)) {
            nl.push({
              op: "addRoute",
              dst: addressBytes(a.homeAddress),
              prefixLength: 128,
              oif: tun,
              replace: true,
            });
            nlAction.push(i);
          }
          this.#installed.set(a.homeAddress, a.careOf);
          this.#defendLinkLocal(a.homeAddress, a.linkLocal);
          break;
        }
        case "remove":
          this.#defendLinkLocal(a.homeAddress, undefined);
          if (this.#installed.delete(a.homeAddress)) {
            this.#table.delete(a.homeAddress);
            nl.push({
              op: "deleteRoute",
              dst: addressBytes(a.homeAddress),
              prefixLength: 128,
              oif: tun,
            });
            nlAction.push(i);
          }
          break;
        case "startDad":
          this.#dadWatch.add(a.homeAddress);
          if (a.linkLocal !== undefined) this.#dadWatch.add(a.linkLocal);
          break;
        case "stopDad":
          this.#dadWatch.delete(a.homeAddress);
          if (a.linkLocal !== undefined) this.#dadWatch.delete(a.linkLocal);
          break;
        case "persist":
          this.#schedulePersist();
          break;
        case "log":
          this.#logAction(a, now);
          break;
      }
    }
    if (nl.length > 0) {
      let results: (NetlinkError | null)[];
      try {
        results = this.#rtnl.batch(nl);
      } catch (e) {
        results = nl.map(() => e as NetlinkError);
      }
      for (let k = 0; k < results.length; k++) {
        const e = results[k];
        if (e === null) continue;
        const a = actions[nlAction[k]];
        if (a.type === "remove") {
          const code = errCode(e);
          if (code === "ESRCH" || code === "ENOENT") continue; // gone already
          this.#count("action_errors");
          log.error("remove failed: {error}", { error: String(e) });
        } else failed.set(nlAction[k], String(e));
      }
    }
    for (const why of failed.values()) {
      this.#count("action_errors");
      log.error("install failed: {error}", { error: why });
    }
    if (this.#esp !== undefined) this.#reserveEsp(actions);
    // packets, in order
    const failedNow = new Set<string>();
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i];
      try {
        switch (a.type) {
          case "install":
            if (failed.has(i)) failedNow.add(a.homeAddress);
            else failedNow.delete(a.homeAddress);
            break;
          case "remove":
            failedNow.delete(a.homeAddress);
            break;
          case "sendBa":
            if (a.status === 0 && failedNow.has(a.homeAddress)) break;
            if (a.protect) this.#sendProtectedBa(a);
            else this.#queueBa(a);
            break;
          case "sendBe":
            this.#queuePacket(bePacket(a), a.to);
            this.#count("be_packets_sent");
            break;
          case "sendParamProblem":
            // rare and rate-limited: straight out (up to 1280 octets, more than a ring slot)
            this.#tx.sendRaw(paramProblemPacket(a), a.to);
            this.#count("icmp_packets_sent");
            break;
          case "unsolicitedNa":
            if (failedNow.has(a.homeAddress)) break;
            this.#queueNa(a.homeAddress);
            if (a.linkLocal !== undefined) this.#queueNa(a.linkLocal);
            break;
          case "startDad":
            this.#queueDadProbe(a.homeAddress);
            if (a.linkLocal !== undefined) this.#queueDadProbe(a.linkLocal);
            break;
        }
      } catch (e) {
        this.#count("action_errors");
        log.error("{action} failed: {error}", { action: a.type, error: String(e) });
      }
    }
    this.#flushTx();
    if (failed.size > 0) {
      const again: HaAction[] = [];
      for (const [i, error] of failed) {
        const a = actions[i] as Extract<HaAction, { type: "install" }>;
        for (
          const b of this.core.handle(
            { type: "installFailed", homeAddress: a.homeAddress, error },
            now,
          )
        ) {
          again.push(b);
        }
      }
      this.#run(again, now);
    }
  }

  #logAction(a: Extract<HaAction, { type: "log" }>, now: number): void {
    if (!log.isEnabledFor(a.level)) return; // e.g. a refresh's debug line at the usual levels
    let fields = a.fields;
    if (a.rateKey !== undefined) {
      if (!this.#limiter.allow(a.rateKey, now)) return;
      const suppressed = this.#limiter.suppressed(a.rateKey);
      if (suppressed) fields = { ...fields, suppressed };
    }
    if (a.summary !== undefined && !this.#budget.take(a.summary, now)) {
      this.#summaryTimer ??= setTimeout(() => {
        this.#summaryTimer = undefined;
        this.#logSummary();
      }, Math.max(0, this.#budget.windowEnd - now));
      return;
    }
    log[a.level](a.message, fields);
  }

  /** One line for the binding changes the budget held back. */
  #logSummary(): void {
    if (!this.#budget.holding) return;
    const held = this.#budget.flush();
    const text = Object.entries(held).map(([k, n]) => `${n} ${k}`).join(", ");
    log.info(
      `binding changes not logged one by one in the last ${
        this.#budget.windowMs / 1000
      } s: ${text} (the status counters count each)`,
      { held },
    );
  }

  #arm(): void {
    if (this.#stopping) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      return;
    }
    const d = this.core.nextDeadline();
    if (d === this.#timerAt && this.#timer !== undefined) return; // armed for it already
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = d;
    if (d === undefined) return;
    const ms = Math.min(Math.max(0, d - clock()) + 1, 0x7fffffff);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.#dispatch({ type: "timer" });
    }, ms);
  }

  // ---- receiving ---------------------------------------------------------------------------------

  /** Waits for `fd` to be readable (a poll in Deno's blocking pool), then drains it. */
  async #pollLoop(fd: number, name: string, drain: () => void): Promise<void> {
    while (!this.#stopping) {
      let ready: boolean;
      try {
        ready = await waitReadable(fd, POLL_MS);
      } catch (e) {
        if (this.#stopping) break;
        log.error("{socket} socket poll failed: {error}", { socket: name, error: String(e) });
        await new Promise((r) => setTimeout(r, POLL_MS));
        continue;
      }
      if (!ready || this.#stopping) continue;
      try {
        drain();
      } catch (e) {
        this.#count("rx_errors");
        log.error("{socket} socket receive failed: {error}", { socket: name, error: String(e) });
      }
    }
  }

  /** BUs with a HAO: recvmmsg until the socket is empty (or the wake-up's share is used). */
  #drainDstOpts(sock: RawSocket6): void {
    const ring = this.#rxRing;
    const dst = this.#a1;
    for (let round = 0; round < BATCHES_PER_WAKE && !this.#stopping; round++) {
      const n = sock.recvBatch(ring);
      if (n === 0) return;
      this.#count("rx_batches");
      const events: HaEvent[] = [];
      for (let i = 0; i < n; i++) {
        const src = formatIPv6Fast(ring.addrs[i]);
        if (ring.truncated(i)) {
          this.#bad("dstopts", src, { kind: "truncated", field: "length", offset: ring.slotSize });
          continue;
        }
        let to = this.#cfg.address, toBytes = this.#haBytes;
        if (ring.dstAddr(i, dst) && !sameAddress(dst, this.#haBytes)) {
          to = formatIPv6Fast(dst);
          toBytes = dst;
        }
        const data = ring.buffers[i].subarray(0, ring.length(i));
        let d: Decoded;
        try {
          d = decodeBuFast(data, src, to, toBytes) ?? decodeDstOptsDatagram(data, src, to);
        } catch (e) {
          this.#count("rx_errors");
          log.error("dstopts datagram from {src} not handled: {error}", { src, error: String(e) });
          continue;
        }
        this.#decoded(d, src, events);
      }
      this.#dispatchMany(events);
      if (n < ring.slots) return; // the socket is empty
    }
  }

  /** Mobility messages without a HAO (e.g. a deregistration from home): rare, one by one. */
  #drainMh(sock: RawSocket6): void {
    const buf = this.#mhBuf;
    const events: HaEvent[] = [];
    for (let i = 0; i < BATCH && !this.#stopping; i++) {
      const info = sock.recv(buf);
      if (info === null) break;
      if (info.truncated) {
        this.#bad("mh", info.src, { kind: "truncated", field: "length", offset: buf.length });
        continue;
      }
      const d = decodeMhDatagram(
        buf.slice(0, info.length),
        info.src,
        info.dst ?? this.#cfg.address,
        info.dstOpts !== undefined,
      );
      this.#decoded(d, info.src, events);
    }
    this.#dispatchMany(events);
  }

  readonly #mhBuf = new Uint8Array(65536);

  #decoded(d: Decoded, src: string, events: HaEvent[]): void {
    if (d.kind === "event") {
      events.push(d.event);
      return;
    }
    if (d.kind === "esp") {
      const at = d.hao === undefined
        ? { src: d.src, dst: d.dst }
        : { src: d.src, dst: d.dst, hao: d.hao };
      this.#queueEsp(d.esp, at);
      return;
    }
    if (d.kind === "ignore") {
      this.#count("rx_ignored");
      return;
    }
    this.#bad(d.where === "dstopts" ? "destination options" : "mobility header", src, d.error);
    if (d.problem !== undefined) events.push(d.problem);
  }

  /** Protected BUs from home (no HAO): the raw IPPROTO_ESP socket, one by one. */
  #drainEsp(sock: RawSocket6): void {
    const buf = this.#espBuf;
    for (let i = 0; i < BATCH && !this.#stopping; i++) {
      const info = sock.recv(buf);
      if (info === null) break;
      if (info.dstOpts !== undefined) {
        // the packet had a Destination Options header (a MIP6 kernel delivered it here too
        // after the HAO): the DSTOPTS socket has it
        this.#count("rx_ignored");
        continue;
      }
      if (info.truncated) {
        this.#bad("ESP", info.src, { kind: "truncated", field: "length", offset: buf.length });
        continue;
      }
      this.#queueEsp(buf.subarray(0, info.length), {
        src: info.src,
        dst: info.dst ?? this.#cfg.address,
      });
    }
  }

  readonly #espBuf = new Uint8Array(65536);

  /**
   * Queues `esp` (copied now: the receive buffer is reused) to be unprotected after the packets
   * queued before it; the Mobility Headers go to the core as `mh` events marked with their SPI.
   * Without SAs configured, or beyond {@linkcode ESP_BACKLOG} waiting packets, it is dropped and
   * counted.
   */
  #queueEsp(esp: Uint8Array, at: { src: string; dst: string; hao?: string }): void {
    if (this.#esp === undefined) {
      this.#count("esp_not_configured");
      this.#logEsp("not_configured", peekSpi(esp), at.src, "no ESP SA configured");
      return;
    }
    if (this.#espQueue.length >= ESP_BACKLOG) {
      this.#count("esp_backlog_dropped");
      return;
    }
    this.#espQueue.push({ bytes: esp.slice(), at });
    if (!this.#espDraining) {
      this.#espDraining = true;
      this.#espRx = this.#drainEspQueue();
    }
  }

  readonly #espQueue: { bytes: Uint8Array; at: { src: string; dst: string; hao?: string } }[] = [];
  #espDraining = false;

  /**
   * Unprotects what is queued, up to {@linkcode BATCH} packets at a time (their WebCrypto work
   * overlaps; the results keep arrival order), and hands each group's events to the core
   * together: one batch of actions, one reservation write for its protected BAs.
   */
  async #drainEspQueue(): Promise<void> {
    const esp = this.#esp!;
    try {
      while (this.#espQueue.length > 0 && !this.#stopping) {
        const group = this.#espQueue.splice(0, BATCH);
        const results = await Promise.all(
          group.map((g) => esp.unprotect(g.bytes, g.at).catch((e) => e as Error)),
        );
        const events: HaEvent[] = [];
        for (let i = 0; i < group.length; i++) {
          const r = results[i], at = group[i].at;
          if (r instanceof Error) {
            this.#count("rx_errors");
            log.error("ESP packet from {src} not handled: {error}", {
              src: at.src,
              error: String(r),
            });
            continue;
          }
          if (!r.ok) {
            this.#logEsp(r.counter, r.spi, at.src, `${r.error.kind} (field ${r.error.field})`);
            continue;
          }
          events.push({
            type: "mh",
            src: at.src,
            dst: at.dst,
            homeAddress: at.hao ?? at.src,
            hao: at.hao !== undefined,
            message: r.value.mh,
            protected: { spi: r.spi },
          });
        }
        if (!this.#stopping) this.#dispatchMany(events);
      }
    } finally {
      this.#espQueue.length = 0;
      this.#espDraining = false;
    }
  }

  /** A refused protected packet: counted by the caller, logged here (rate-limited per reason). */
  #logEsp(reason: string, spi: number | undefined, src: string, why: string): void {
    const key = `esp:${reason}`;
    if (!this.#limiter.allow(key, clock())) return;
    const suppressed = this.#limiter.suppressed(key);
    log.warning(
      "ESP packet from {src} with SPI {spi} dropped: {why}" +
        (suppressed ? " ({suppressed} similar suppressed)" : ""),
      { src, spi: spi === undefined ? "none" : `0x${spi.toString(16)} (${spi})`, why, suppressed },
    );
  }

  /** Counts and (rate-limited) logs malformed or spoofed remote input, naming the field. */
  #bad(what: string, src: string, e: { kind: string; field: string; offset: number }): void {
    this.#count(`rx_${e.kind}`);
    const key = `bad:${what}:${e.field}`;
    const now = clock();
    if (!this.#limiter.allow(key, now)) return;
    const suppressed = this.#limiter.suppressed(key);
    log.warning(
      `dropped ${what} from {src}: ${e.kind} field {field} at offset {offset}` +
        (suppressed ? " ({suppressed} similar suppressed)" : ""),
      { src, field: e.field, offset: e.offset, kind: e.kind, suppressed },
    );
  }

  /** NS and NA seen on the home link: DAD evidence, then proxy answers (RFC 6275 §10.4.1). */
  #drainLink(): void {
    const ring = this.#linkRing;
    for (let round = 0; round < BATCHES_PER_WAKE && !this.#stopping; round++) {
      const n = this.#linkSock.recvBatch(ring);
      if (n === 0) return;
      for (let i = 0; i < n; i++) {
        try {
          this.#onLinkFrame(ring.buffers[i].subarray(0, Math.min(ring.length(i), ring.slotSize)));
        } catch (e) {
          this.#count("rx_errors");
          log.error("home link frame not handled: {error}", { error: String(e) });
        }
      }
      if (n < ring.slots) return;
    }
  }

  #onLinkFrame(frame: Uint8Array): void {
    const m = linkIcmp(frame);
    if (m === null) {
      this.#count("link_rx_other"); // the socket filter lets only NS/NA through
      return;
    }
    this.#count("link_rx_nd");
    if (this.#dadWatch.size > 0) {
      const v = dadEvidence(
        m.icmp,
        { src: m.src, dst: m.dst, hopLimit: m.hopLimit },
        this.#dadWatch,
        this.#link.mac,
      );
      if (v.kind === "bad") return this.#bad("ICMPv6", m.src, v.error);
      if (v.kind === "duplicate") {
        this.#dispatch({ type: "dadDuplicate", homeAddress: v.homeAddress, evidence: v.evidence });
      }
    }
    const p = proxyAnswer(m, (t) => this.#installed.has(t) || this.#llDefended.has(t), {
      mac: this.#link.mac,
      src: this.#linkLocal,
    });
    if (p.kind === "bad") return this.#bad("ICMPv6", m.src, p.error);
    if (p.kind === "none") return;
    this.#linkSock.send(p.frame);
    this.#count("proxy_na_sent");
  }

  // ---- sending ---------------------------------------------------------------------------------

  /**
   * A BA under the home address's outbound ESP SA (RFC 4877 §4): its sequence number is first
   * reserved on disk when needed (a write that fails means no BA: a sequence number that a
   * restart could reuse is never sent), then the packet is built (WebCrypto, asynchronous) and
   * sent after the BAs queued before it.
   */
  #sendProtectedBa(a: Extract<HaAction, { type: "sendBa" }>): void {
    const esp = this.#esp;
    if (esp === undefined) throw new Error("protected BA without ESP configured");
    const need = esp.reservationNeeded(a.homeAddress);
    if (need !== undefined) {
      const pending = this.#reservations;
      pending.set(a.homeAddress, need);
      this.#dirty = true;
      const ok = this.#persistNow();
      pending.delete(a.homeAddress);
      if (!ok) {
        this.#count("esp_ba_not_sent");
        log.error("protected BA to {to} not sent: its sequence number could not be reserved", {
          to: a.to,
        });
        return;
      }
      esp.committed(a.homeAddress, need);
      this.#count("esp_reservations");
    }
    let built: Promise<Uint8Array>;
    try {
      built = esp.protectBa(a); // takes the sequence number now
    } catch (e) {
      this.#count("esp_ba_not_sent");
      log.error("protected BA to {to} not sent: {error}", { to: a.to, error: String(e) });
      return;
    }
    this.#espTx = this.#espTx.then(async () => {
      try {
        const pkt = await built;
        this.#tx.sendRaw(pkt, a.to);
        this.#count("ba_packets_sent");
      } catch (e) {
        this.#count("tx_errors");
        if (this.#limiter.allow("tx-error", clock())) {
          log.error("sending a protected BA to {to} failed: {error}", {
            to: a.to,
            error: String(e),
          });
        }
      }
    });
  }

  /**
   * The ESP sequence numbers the protected BAs of `actions` will take, reserved on disk in one
   * state write for the whole batch (a first registration of many home addresses would
   * otherwise write once per BA). `#sendProtectedBa` checks again and writes alone if needed.
   */
  #reserveEsp(actions: HaAction[]): void {
    const esp = this.#esp!;
    let per: Map<string, number> | undefined;
    for (const a of actions) {
      if (a.type !== "sendBa" || !a.protect) continue;
      per ??= new Map();
      per.set(a.homeAddress, (per.get(a.homeAddress) ?? 0) + 1);
    }
    if (per === undefined) return;
    const pending = this.#reservations;
    for (const [hoa, k] of per) {
      try {
        const need = esp.reservationNeeded(hoa, k);
        if (need !== undefined) pending.set(hoa, need);
      } catch { /* no outbound SA: reported when the BA is built */ }
    }
    if (pending.size === 0) return;
    this.#dirty = true;
    if (this.#persistNow()) {
      for (const [hoa, v] of pending) esp.committed(hoa, v);
      this.#count("esp_reservations", pending.size);
      this.#count("esp_reservation_writes");
    }
    pending.clear();
  }

  /**
   * The state file exists but its ESP counters cannot be read: the previous run may have sent
   * any sequence number, and with AES-GCM a repeated one repeats a nonce. The outbound counters
   * jump to 2^31 (far beyond what a run sends in practice; the mobile node's window simply moves
   * forward). A deleted state directory cannot be told from a first start: that needs new keys.
   */
  #espStateLost(): void {
    const esp = this.#esp;
    if (esp === undefined) return;
    const skipped = esp.skipOutboundTo(2 ** 31);
    log.error(
      "ESP state of the previous run unreadable: outbound sequence numbers of {count} SA(s) continue at 2^31 so that none is reused (RFC 4303 §3.3.3); consider new keys",
      { count: skipped },
    );
  }

  /** One state write reserving sequence numbers for every outbound SA (after the restore). */
  #reserveAllEsp(): void {
    const esp = this.#esp;
    if (esp === undefined) return;
    const all = esp.reservationsForAll();
    if (all.length === 0) return;
    for (const [hoa, v] of all) this.#reservations.set(hoa, v);
    this.#dirty = true;
    if (this.#persistNow()) {
      for (const [hoa, v] of all) esp.committed(hoa, v);
      this.#count("esp_reservation_writes");
    }
    this.#reservations.clear();
  }

  /** Reservations being written (the state write includes them before they are committed). */
  readonly #reservations = new Map<string, number>();

  /** Keeps the link-local address `ll` of `hoa` defended (L bit), or stops when undefined. */
  #defendLinkLocal(hoa: string, ll: string | undefined): void {
    const old = this.#llOf.get(hoa);
    if (old === ll) return;
    if (old !== undefined) {
      this.#llOf.delete(hoa);
      if (this.#llDefended.get(old) === hoa) this.#llDefended.delete(old);
    }
    if (ll !== undefined) {
      this.#llOf.set(hoa, ll);
      this.#llDefended.set(ll, hoa);
    }
  }

  /** The next free send slot (sending the full ring first when needed). */
  #slot(): number {
    if (this.#txCount === this.#txRing.slots) this.#flushTx();
    return this.#txCount++;
  }

  #queueBa(a: Extract<HaAction, { type: "sendBa" }>): void {
    const ha = a.from === this.#cfg.address ? this.#haBytes : this.#a1;
    if (ha === this.#a1 && !parseIPv6Into(a.from, ha)) throw new TypeError(`bad from ${a.from}`);
    if (!parseIPv6Into(a.to, this.#a2)) throw new TypeError(`bad to ${a.to}`);
    if (!parseIPv6Into(a.homeAddress, this.#a3)) throw new TypeError(`bad HoA ${a.homeAddress}`);
    const i = this.#slot();
    const ring = this.#txRing;
    const len = emitBindingAck(ring.buffers[i], 0, {
      ha,
      to: this.#a2,
      hoa: this.#a3,
      status: a.status,
      sequence: a.sequence,
      lifetime: a.lifetime,
    });
    ring.setLength(i, len);
    ring.setDst(i, this.#a2);
    this.#count("ba_packets_sent");
  }

  #queuePacket(packet: Uint8Array, to: string): void {
    if (!parseIPv6Into(to, this.#a2)) throw new TypeError(`bad destination ${to}`);
    if (packet.length > TX_SLOT) throw new RangeError(`packet of ${packet.length} bytes`);
    const i = this.#slot();
    this.#txRing.buffers[i].set(packet);
    this.#txRing.setLength(i, packet.length);
    this.#txRing.setDst(i, this.#a2);
  }

  #queueNa(hoa: string): void {
    if (!parseIPv6Into(hoa, this.#a3)) throw new TypeError(`bad HoA ${hoa}`);
    const i = this.#slot();
    const ring = this.#txRing;
    const len = emitUnsolicitedNa(ring.buffers[i], 0, {
      src: this.#llBytes,
      target: this.#a3,
      mac: this.#mac,
      // RFC 6275 §10.4.1: the Router flag is cleared in the NA the home agent sends on the
      // mobile node's behalf (the target is a host); the proxy answers follow the same rule
      router: false,
    });
    ring.setLength(i, len);
    ring.setDst(i, this.#allNodes, this.#link.index);
    this.#count("unsolicited_na_sent");
  }

  #queueDadProbe(hoa: string): void {
    if (!parseIPv6Into(hoa, this.#a3)) throw new TypeError(`bad HoA ${hoa}`);
    const i = this.#slot();
    const ring = this.#txRing;
    const buf = ring.buffers[i];
    const len = emitDadProbe(buf, 0, { target: this.#a3 });
    ring.setLength(i, len);
    for (let k = 0; k < 16; k++) this.#a2[k] = buf[24 + k]; // the solicited-node group
    ring.setDst(i, this.#a2, this.#link.index);
    this.#count("dad_probes_sent");
  }

  /** Sends the queued packets with sendmmsg; a packet the kernel refuses is counted, skipped. */
  #flushTx(): void {
    const n = this.#txCount;
    this.#txCount = 0;
    let at = 0;
    while (at < n) {
      try {
        const sent = this.#tx.sendBatch(this.#txRing, n - at, at);
        if (sent <= 0) {
          this.#count("tx_dropped", n - at); // EAGAIN on a blocking socket: not expected
          return;
        }
        at += sent;
        this.#count("tx_batches");
      } catch (e) {
        // the first packet of the rest was refused (e.g. no route to a care-of address)
        this.#count("tx_errors");
        if (this.#limiter.allow("tx-error", clock())) {
          log.error("sending a signaling packet failed: {error}", { error: String(e) });
        }
        at++;
      }
    }
  }

  // ---- persistence -------------------------------------------------------------------------------

  /**
   * Writes the Binding Cache soon: changes arriving together (a burst of BUs) share one
   * write. `stop()` flushes a pending write.
   */
  #schedulePersist(): void {
    this.#dirty = true;
    if (this.#persistTimer !== undefined) return;
    this.#persistTimer = setTimeout(() => {
      this.#persistTimer = undefined;
      this.#persistNow();
    }, this.#persistDelay);
  }

  /** Writes the state now when it changed; false when the write failed. */
  #persistNow(): boolean {
    if (!this.#dirty) return true;
    this.#dirty = false;
    try {
      const t0 = performance.now();
      this.#writeState();
      // a big cache costs more to write: space writes so they take at most ~5% of the time
      const took = performance.now() - t0;
      this.#persistDelay = Math.min(PERSIST_MAX_DELAY_MS, Math.max(PERSIST_DELAY_MS, 20 * took));
      this.#count("state_writes");
      return true;
    } catch (e) {
      this.#dirty = true;
      this.#count("state_write_errors");
      log.error("cannot save the binding cache in {dir}: {error}", {
        dir: this.#cfg.stateDir,
        error: String(e),
      });
      return false;
    }
  }

  /**
   * The state file as `StateStore` keeps it (`<dir>/<name>.json`, read back by
   * `StateStore.read`), written atomically (temporary file, fsync, rename), serialised
   * straight into one reused 64 KiB buffer: `StateStore.write` pretty-prints a fresh object tree into
   * one string, megabytes of garbage per write at 10,000 bindings.
   */
  #writeState(): void {
    const dir = this.#cfg.stateDir;
    const path = `${dir}/${STATE_NAME}.json`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp${Deno.pid}`;
    const f = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
    try {
      const buf = this.#stateBuf;
      this.core.cache.writePersisted(buf, (len) => {
        let off = 0;
        while (off < len) off += f.writeSync(buf.subarray(off, len));
      }, { wallOffset: wallOffset(), esp: this.#espState() });
      f.syncSync();
    } finally {
      f.close();
    }
    Deno.renameSync(tmp, path);
  }

  /** The ESP state to write, with the reservations being made counted as made. */
  #espState(): unknown[] | undefined {
    const esp = this.#esp;
    if (esp === undefined) return undefined;
    const states = esp.exportState();
    if (this.#reservations.size === 0) return states;
    for (const [hoa, value] of this.#reservations) {
      const spi = esp.sad.outbound(hoa, this.#cfg.address)?.spi;
      for (const s of states as { spi: number; direction: string; sequence?: number }[]) {
        if (s.spi === spi && s.direction === "outbound") s.sequence = value;
      }
    }
    return states;
  }

  // ---- kernel state --------------------------------------------------------------------------------

  #uninstallAll(): void {
    const tun = this.#tun?.ifindex;
    const changes: RtnlChange[] = [];
    this.#table?.clear();
    for (const hoa of this.#installed.keys()) {
      if (tun !== undefined) {
        changes.push({ op: "deleteRoute", dst: addressBytes(hoa), prefixLength: 128, oif: tun });
      }
    }
    this.#installed.clear();
    const errors = this.#rtnl.batch(changes).filter((e) =>
      e !== null && errCode(e) !== "ESRCH" && errCode(e) !== "ENOENT"
    );
    if (errors.length) throw new Error(errors.map(String).join("; "));
  }
}

/**
 * Runs the home agent until SIGTERM/SIGINT (RFC 6275 §10): resolves with the exit code, 0
 * after a clean shutdown (routes, tun device, home-link socket and control socket removed; the
 * Binding Cache stays in the state directory), 1 when it could not start or its data path
 * died (everything is cleaned up the same way).
 */
export async function runHomeAgent(config: HaConfig): Promise<number> {
  const signal = waitForShutdown();
  const ha = new HomeAgentDaemon(config);
  try {
    await ha.start();
  } catch (e) {
    log.error("home agent failed to start: {error}", { error: String(e) });
    return 1;
  }
  const end = await Promise.race([
    signal.then((sig) => ({ sig, why: undefined })),
    ha.failed.then((why) => ({ sig: undefined, why })),
  ]);
  if (end.sig !== undefined) log.info("{signal}: shutting down", { signal: end.sig });
  else log.error("shutting down: {why}", { why: end.why });
  await ha.stop();
  log.info("home agent stopped");
  return end.sig !== undefined ? 0 : 1;
}
