/**
 * The userland home agent daemon (`kagemusha ha`): wiring between the sans-I/O
 * {@linkcode HomeAgentCore} and the kernel, on any Linux kernel (no CONFIG_IPV6_MIP6 needed).
 *
 * - BUs with a Home Address option arrive on a raw IPPROTO_DSTOPTS socket (the kernel hands
 *   raw sockets a copy before it drops the unknown option); MH without HAO on a raw IPPROTO_MH
 *   socket (kernel checksum off, IPV6_RECVDSTOPTS so a MIP6 kernel's double delivery is
 *   skipped). The MH checksum is verified over the HoA (RFC 6275 §6.1.1).
 * - BAs/BEs, DAD probes and unsolicited NAs leave as whole packets on an IPPROTO_RAW socket
 *   (the kernel refuses a type 2 routing header in sendmsg without MIP6).
 * - Proxy ND (RFC 6275 §10.4.1) is the kernel's neighbour proxy (proxy_ndp, proxy entries by
 *   rtnetlink); DAD answers are read on a raw ICMPv6 socket with an NS/NA filter.
 * - Interception: a tun device with a /128 route per HoA, served by the data-path Workers
 *   (`startHaDatapath`), MTU = home-link MTU − 40 so the kernel sends Packet Too Big.
 * - Everything added is undone on deregistration/expiry and at SIGTERM/SIGINT; the Binding
 *   Cache is kept in the state directory and re-installed at start.
 *
 * @module
 */

import type { HaConfig } from "../config/schema.ts";
import { ControlServer } from "../control/server.ts";
import { Cleanup, waitForShutdown } from "../daemon/lifecycle.ts";
import { logger, RateLimiter } from "../log.ts";
import { StateStore } from "../state/store.ts";
import { type LinkInfo, readSysctl, Rtnetlink, writeSysctl } from "../../ffi/netlink.ts";
import { waitReadable } from "../../ffi/poll.ts";
import { RawSocket6, type RecvInfo } from "../../ffi/raw_socket.ts";
import { TunTapDevice } from "../../ffi/tap.ts";
import { ErrnoError } from "../../ffi/libc.ts";
import { IPPROTO_RAW } from "../../ffi/constants.ts";
import { IPPROTO, solicitedNodeMulticast } from "../wire/addr.ts";
import { ICMPV6_TYPE } from "../wire/icmpv6.ts";
import { SharedCounters } from "../tunnel/counters.ts";
import { type Datapath, startHaDatapath } from "../tunnel/ha_datapath.ts";
import { TunnelTable } from "../tunnel/table.ts";
import { parsePersistedCache } from "./binding_cache.ts";
import { type HaAction, type HaEvent, HomeAgentCore } from "./core.ts";
import {
  ALL_NODES,
  baPacket,
  bePacket,
  dadEvidence,
  dadProbe,
  type Decoded,
  decodeDstOptsDatagram,
  decodeMhDatagram,
  unsolicitedNa,
} from "./packets.ts";

const log = logger("ha");

/** Name of the Binding Cache document in the state directory. */
export const STATE_NAME = "ha-bindings";

/** Capacity of the shared HoA → CoA table handed to the data path. */
export const TABLE_CAPACITY = 65536;

/** Tunnel overhead: the outer IPv6 header (RFC 2473). */
const TUNNEL_OVERHEAD = 40;

/** Changes to the Binding Cache within this many ms (more for a big cache) share one write. */
const PERSIST_DELAY_MS = 20;

/** How long a receive loop waits before re-checking for shutdown (ms). */
const POLL_MS = 200;

function errCode(e: unknown): string | undefined {
  return e instanceof ErrnoError ? e.code : undefined;
}

/** A running home agent. Use {@linkcode runHomeAgent}; exposed for tests and embedding. */
export class HomeAgentDaemon {
  readonly core: HomeAgentCore;
  readonly #cfg: HaConfig;
  readonly #cleanup = new Cleanup();
  readonly #limiter = new RateLimiter();
  readonly #counters: Record<string, number> = {};
  readonly #dadWatch = new Set<string>();
  readonly #dadJoined = new Set<string>();
  #dirty = false;
  #persistTimer: ReturnType<typeof setTimeout> | undefined;
  #persistDelay = PERSIST_DELAY_MS;
  /** HoA → CoA of what is installed in the kernel and the tunnel table. */
  readonly #installed = new Map<string, string>();
  readonly #loops: Promise<void>[] = [];
  #rtnl!: Rtnetlink;
  #link!: LinkInfo;
  #linkLocal!: string;
  #tun!: TunTapDevice;
  #table!: TunnelTable;
  #dpCounters!: SharedCounters;
  #datapath: Datapath | undefined;
  #tx!: RawSocket6;
  #nd!: RawSocket6;
  #store!: StateStore;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;

  #fail!: (why: string) => void;
  /** Resolves with the reason when the home agent cannot go on (e.g. its data path died). */
  readonly failed: Promise<string> = new Promise((r) => this.#fail = r);

  constructor(config: HaConfig) {
    this.#cfg = config;
    this.core = new HomeAgentCore({
      haAddress: config.address,
      homePrefix: config.homePrefix,
      allow: config.allow,
      maxLifetime: config.maxLifetime,
      dad: config.dad,
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

    // Forwarding and the kernel's neighbour proxy, restored to what they were at the end.
    for (
      const [key, value] of [
        ["net/ipv6/conf/all/forwarding", "1"],
        [`net/ipv6/conf/${cfg.interface}/forwarding`, "1"],
        [`net/ipv6/conf/${cfg.interface}/proxy_ndp`, "1"],
        [`net/ipv6/neigh/${cfg.interface}/proxy_delay`, "0"],
      ]
    ) {
      const old = readSysctl(key);
      if (old === value) continue;
      writeSysctl(key, value);
      c.defer(`sysctl ${key}=${old}`, () => writeSysctl(key, old));
    }

    // Interception device: the kernel routes HoA/128 into it.
    this.#tun = TunTapDevice.open(cfg.tunnelDevice, { mode: "tun" });
    c.defer(`tun device ${cfg.tunnelDevice}`, () => this.#tun.close());
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

    const dstopts = RawSocket6.open(IPPROTO.DSTOPTS, { nonblocking: true });
    c.defer("IPPROTO_DSTOPTS socket", () => dstopts.close());
    dstopts.setRecvPktInfo(true);

    const mh = RawSocket6.open(IPPROTO.MH, { nonblocking: true });
    c.defer("IPPROTO_MH socket", () => mh.close());
    mh.setChecksumOffset(-1);
    mh.setRecvPktInfo(true);
    mh.setRecvDstOpts(true);

    this.#nd = RawSocket6.open(IPPROTO.ICMPV6, { nonblocking: true });
    c.defer("ICMPv6 socket", () => this.#nd.close());
    this.#nd.setIcmp6Filter([
      ICMPV6_TYPE.NEIGHBOR_SOLICITATION,
      ICMPV6_TYPE.NEIGHBOR_ADVERTISEMENT,
    ]);
    this.#nd.setRecvPktInfo(true);
    this.#nd.setRecvHopLimit(true);
    this.#nd.bindToDevice(cfg.interface);

    // Bindings that outlived the previous run: re-install before listening.
    this.#store = new StateStore(cfg.stateDir);
    c.defer("installed bindings", () => this.#uninstallAll());
    this.#restore();

    this.#loops.push(
      this.#recvLoop(dstopts, "dstopts", (d, i) => {
        this.#onDecoded(decodeDstOptsDatagram(d, i.src, i.dst ?? cfg.address), i.src);
      }),
      this.#recvLoop(mh, "mh", (d, i) => {
        this.#onDecoded(
          decodeMhDatagram(d, i.src, i.dst ?? cfg.address, i.dstOpts !== undefined),
          i.src,
        );
      }),
      this.#recvLoop(this.#nd, "icmpv6", (d, i) => this.#onNd(d, i)),
    );

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
  }

  /** The control socket's `status` answer. */
  status(): unknown {
    const now = Date.now();
    return {
      role: "ha",
      interface: this.#cfg.interface,
      address: this.#cfg.address,
      homePrefix: `${this.#cfg.homePrefix.prefix}/${this.#cfg.homePrefix.length}`,
      dad: this.#cfg.dad,
      maxLifetime: this.#cfg.maxLifetime,
      bindings: this.core.status(now),
      counters: {
        ...this.core.counters(),
        ...this.#counters,
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
      clearTimeout(this.#persistTimer);
      this.#persistTimer = undefined;
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
      return;
    }
    const { bindings, rejected } = parsePersistedCache(doc);
    for (const r of rejected) log.warning("persisted binding cache: {problem}", { problem: r });
    if (bindings.length === 0 && rejected.length === 0) return;
    this.#dispatch({ type: "restore", bindings });
    // A previous run that died without cleaning up may have left proxy entries (routes went
    // with its tun device): remove those of bindings that were not restored.
    for (const b of bindings) {
      if (this.core.cache.get(b.homeAddress) !== undefined) continue;
      try {
        this.#rtnl.deleteProxyNeighbor(b.homeAddress, this.#link.index);
        log.info("removed stale proxy entry for {homeAddress}", { homeAddress: b.homeAddress });
      } catch { /* none left: the usual case */ }
    }
  }

  // ---- event loop ------------------------------------------------------------------------------

  /** Hands `event` to the core and carries out the actions; re-arms the timer. */
  #dispatch(event: HaEvent): void {
    const now = Date.now();
    const actions = this.core.handle(event, now);
    const failed = new Map<string, string>();
    for (const a of actions) {
      // after a failed install, its BA 0 and NA must not go out (installFailed answers 130)
      if (
        (a.type === "sendBa" || a.type === "unsolicitedNa") && failed.has(a.homeAddress) &&
        (a.type === "unsolicitedNa" || a.status === 0)
      ) continue;
      try {
        this.#execute(a, now);
      } catch (e) {
        this.#count("action_errors");
        log.error("{action} failed: {error}", { action: a.type, error: String(e) });
        if (a.type === "install") failed.set(a.homeAddress, String(e));
      }
    }
    for (const [homeAddress, error] of failed) {
      this.#dispatch({ type: "installFailed", homeAddress, error });
    }
    this.#arm();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stopping) return;
    const d = this.core.nextDeadline();
    if (d === undefined) return;
    const ms = Math.min(Math.max(0, d - Date.now()) + 1, 0x7fffffff);
    this.#timer = setTimeout(() => this.#dispatch({ type: "timer" }), ms);
  }

  async #recvLoop(
    sock: RawSocket6,
    name: string,
    handle: (data: Uint8Array, info: RecvInfo & { dst?: string }) => void,
  ): Promise<void> {
    const buf = new Uint8Array(65536);
    while (!this.#stopping) {
      let ready: boolean;
      try {
        ready = await waitReadable(sock.fd, POLL_MS);
      } catch (e) {
        if (this.#stopping) break;
        log.error("{socket} socket poll failed: {error}", { socket: name, error: String(e) });
        await new Promise((r) => setTimeout(r, POLL_MS));
        continue;
      }
      if (!ready || this.#stopping) continue;
      for (let i = 0; i < 64 && !this.#stopping; i++) {
        let info: RecvInfo | null;
        try {
          info = sock.recv(buf);
        } catch (e) {
          log.error("{socket} socket receive failed: {error}", { socket: name, error: String(e) });
          break;
        }
        if (info === null) break;
        if (info.truncated) {
          this.#bad(`${name}`, info.src, {
            kind: "truncated",
            field: "length",
            offset: buf.length,
          });
          continue;
        }
        try {
          handle(buf.subarray(0, info.length), info);
        } catch (e) {
          this.#count("rx_errors");
          log.error("{socket} datagram from {src} not handled: {error}", {
            socket: name,
            src: info.src,
            error: String(e),
          });
        }
      }
    }
  }

  #onDecoded(d: Decoded, src: string): void {
    if (d.kind === "event") return this.#dispatch(d.event);
    if (d.kind === "ignore") {
      this.#count("rx_ignored");
      return;
    }
    this.#bad(d.where === "dstopts" ? "destination options" : "mobility header", src, d.error);
  }

  /** Counts and (rate-limited) logs malformed or spoofed remote input, naming the field. */
  #bad(what: string, src: string, e: { kind: string; field: string; offset: number }): void {
    this.#count(`rx_${e.kind}`);
    const key = `bad:${what}:${e.field}`;
    const now = Date.now();
    if (!this.#limiter.allow(key, now)) return;
    const suppressed = this.#limiter.suppressed(key);
    log.warning(
      `dropped ${what} from {src}: ${e.kind} field {field} at offset {offset}` +
        (suppressed ? " ({suppressed} similar suppressed)" : ""),
      { src, field: e.field, offset: e.offset, kind: e.kind, suppressed },
    );
  }

  #onNd(data: Uint8Array, info: RecvInfo): void {
    if (this.#dadWatch.size === 0) return;
    if (info.ifindex !== undefined && info.ifindex !== this.#link.index) return;
    const v = dadEvidence(
      data,
      { src: info.src, dst: info.dst ?? ALL_NODES, hopLimit: info.hopLimit },
      this.#dadWatch,
      this.#link.mac,
    );
    if (v.kind === "bad") return this.#bad("ICMPv6", info.src, v.error);
    if (v.kind === "duplicate") {
      this.#dispatch({ type: "dadDuplicate", homeAddress: v.homeAddress, evidence: v.evidence });
    }
  }

  // ---- actions ---------------------------------------------------------------------------------

  #execute(a: HaAction, now: number): void {
    switch (a.type) {
      case "sendBa":
        this.#tx.sendRaw(baPacket(a), a.to);
        this.#count("ba_packets_sent");
        return;
      case "sendBe":
        this.#tx.sendRaw(bePacket(a), a.to);
        this.#count("be_packets_sent");
        return;
      case "install":
        return this.#install(a.homeAddress, a.careOf);
      case "remove":
        return this.#uninstall(a.homeAddress);
      case "unsolicitedNa":
        this.#tx.sendRaw(
          unsolicitedNa({
            src: this.#linkLocal,
            target: a.homeAddress,
            mac: this.#link.mac,
            router: true,
          }),
          ALL_NODES,
        );
        this.#count("unsolicited_na_sent");
        return;
      case "startDad": {
        this.#dadWatch.add(a.homeAddress);
        const group = solicitedNodeMulticast(a.homeAddress);
        this.#joinDadGroup(a.homeAddress, group);
        this.#tx.sendRaw(dadProbe(a.homeAddress), group);
        this.#count("dad_probes_sent");
        return;
      }
      case "stopDad":
        this.#dadWatch.delete(a.homeAddress);
        if (this.#dadJoined.delete(a.homeAddress)) {
          try {
            this.#nd.leaveGroup(solicitedNodeMulticast(a.homeAddress), this.#link.index);
          } catch { /* gone with the socket */ }
        }
        return;
      case "persist":
        this.#schedulePersist();
        return;
      case "log": {
        let fields = a.fields;
        if (a.rateKey !== undefined) {
          if (!this.#limiter.allow(a.rateKey, now)) return;
          const suppressed = this.#limiter.suppressed(a.rateKey);
          if (suppressed) fields = { ...fields, suppressed };
        }
        log[a.level](a.message, fields);
        return;
      }
    }
  }

  /**
   * Makes the home link deliver the HoA's solicited-node group while DAD runs, so another
   * node's simultaneous DAD probe is heard (RFC 4862 §5.4.3). Best effort: an NA from the
   * address's owner goes to all-nodes and is heard anyway, and once the proxy entry exists the
   * kernel has joined the group itself (raw sockets see every group the host is in).
   */
  #joinDadGroup(hoa: string, group: string): void {
    if (this.#cfg.dad === "optimistic" || this.#installed.has(hoa) || this.#dadJoined.has(hoa)) {
      return; // optimistic: the proxy entry installed next joins the group for the device
    }
    try {
      this.#nd.joinGroup(group, this.#link.index);
      this.#dadJoined.add(hoa);
    } catch (e) {
      this.#count("dad_join_failed");
      if (this.#limiter.allow("dad-join", Date.now())) {
        log.warning("cannot join {group} for DAD of {homeAddress}: {error}", {
          group,
          homeAddress: hoa,
          error: String(e),
        });
      }
    }
  }

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

  #persistNow(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    try {
      const t0 = performance.now();
      this.#store.write(STATE_NAME, this.core.cache.toPersisted());
      // a big cache costs more to write: space writes so they take at most ~20% of the time
      const took = performance.now() - t0;
      this.#persistDelay = Math.min(1000, Math.max(PERSIST_DELAY_MS, 4 * took));
      this.#count("state_writes");
    } catch (e) {
      this.#count("state_write_errors");
      log.error("cannot save the binding cache in {dir}: {error}", {
        dir: this.#cfg.stateDir,
        error: String(e),
      });
    }
  }

  /** Route HoA/128 into the tun device, proxy ND on the home link, tunnel table HoA → CoA. */
  #install(hoa: string, coa: string): void {
    this.#table.set(hoa, { outer: coa });
    if (this.#installed.has(hoa)) {
      this.#installed.set(hoa, coa);
      return;
    }
    this.#installed.set(hoa, coa);
    this.#rtnl.addRoute(hoa, 128, { oif: this.#tun.ifindex, replace: true });
    try {
      this.#rtnl.addProxyNeighbor(hoa, this.#link.index);
    } catch (e) {
      if (errCode(e) !== "EEXIST") throw e;
    }
  }

  #uninstall(hoa: string): void {
    if (!this.#installed.delete(hoa)) return;
    this.#table.delete(hoa);
    const errors: string[] = [];
    try {
      this.#rtnl.deleteProxyNeighbor(hoa, this.#link.index);
    } catch (e) {
      if (errCode(e) !== "ENOENT") errors.push(String(e));
    }
    try {
      this.#rtnl.deleteRoute(hoa, 128, { oif: this.#tun.ifindex });
    } catch (e) {
      if (errCode(e) !== "ESRCH" && errCode(e) !== "ENOENT") errors.push(String(e));
    }
    if (errors.length) throw new Error(errors.join("; "));
  }

  #uninstallAll(): void {
    const errors: string[] = [];
    for (const hoa of [...this.#installed.keys()]) {
      try {
        this.#uninstall(hoa);
      } catch (e) {
        errors.push(String(e));
      }
    }
    if (errors.length) throw new Error(errors.join("; "));
  }
}

/**
 * Runs the home agent until SIGTERM/SIGINT (RFC 6275 §10): resolves with the exit code, 0
 * after a clean shutdown (routes, proxy entries, tun device and control socket removed; the
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
