/**
 * `kagemusha mn`: the guest-transparent mobile node (RFC 6275 client side, run on the host on
 * behalf of each VM). Wiring only: the protocol lives in the sans-I/O
 * {@linkcode BindingUpdateListEntry} and {@linkcode handleVmFrame}; this module owns the
 * devices, sockets, timer and control socket, and undoes what it created on exit.
 *
 * Per VM: a tap device (its own MAC never the router MAC: a Linux bridge keeps frames for a
 * port's own MAC), enslaved to `bridge` (created when missing, removed on exit only then), a
 * binding update list entry whose sequence number is persisted in `stateDir`, and a slot in
 * the data path (`startMnDatapath`, Workers), active while the VM is away from home and its
 * binding is in flight or registered.
 *
 * While a VM is active (away), the daemon also sends it unsolicited Router Advertisements,
 * every MinRtrAdvInterval..MaxRtrAdvInterval (200..600 s, RFC 4861 §6.2.4;
 * {@linkcode RouterAdvertiser}), written to its tap like the handover RA, so the guest's
 * default route (Router Lifetime 3 × MaxRtrAdvInterval) never expires; they stop while the
 * VM is home or released. The RA's contents come from the VM's `ra` settings
 * (`pseudo_home.ts`). For tests only, `KAGEMUSHA_MN_RA_INTERVAL=MIN,MAX` (seconds) replaces
 * the two intervals (and so the default Router Lifetime).
 *
 * Sequence numbers: the state file holds a reservation 64 ahead of the sequence in use
 * ({@linkcode SequenceReservation}), so the synchronous fsync'd write happens once per 64
 * BUs. A state file that cannot be read or parsed does not stop the daemon: it logs an error,
 * starts from a random sequence and relies on BA status 135 to resynchronise (RFC 6275
 * §11.7.1).
 *
 * ESP (RFC 4877 §4, `src/ipsec`): a VM with `esp` configured sends every BU ESP-protected —
 * away from home through a raw IPPROTO_ESP socket with the HAO as an IPV6_DSTOPTS cmsg, from
 * home as a whole packet through IPPROTO_RAW ({@linkcode MnSignaling.sendProtectedBu}) — and
 * accepts only ESP-protected BAs (an unprotected one is dropped and counted,
 * `esp_unprotected_ba`). The ESP sequence counter is reserved 64 ahead in the same state file
 * (an AES-GCM nonce must never repeat, also not after a crash), the inbound replay window is
 * kept there too, and both move with the VM: `export` returns them (`esp`) and releases the SA
 * here, `handover` imports them, never backwards (the rules: `esp_binding.ts`). A VM without
 * ESP gets a startup warning: its signaling is unauthenticated.
 *
 * Moves, as the control socket sees them:
 * - `handover {careOf?, sequence? | bindings?}`: the guest resumed on this host: re-send the BU
 *   at once (care-of re-read from the interface unless given or configured), continuing the
 *   sequence handed over; unsolicited NA (router, R=1 O=1) and RA are written to the tap so
 *   the guest's neighbour cache points at the router MAC at once. When the care-of address is
 *   inside the VM's home prefix the VM is home: see "returning home" below.
 * - `export {release?}`: the VM left: returns `{bindings: [{homeAddress, sequence, esp?}]}` for
 *   the next host and (unless `release: false`) stops this host's binding without signaling,
 *   so that its refreshes never steal the binding back from the next host; the VM's ESP SA is
 *   released (never used here again until a handover brings its state back).
 * - `deregister {homeAddress?}`: BU with lifetime 0 from the current care-of address.
 *
 * Returning home (RFC 6275 §11.5.4), exactly: the VM's data path slot is deactivated and its
 * tap set down (on the home host the tap may share a bridge with the real home link and must
 * not answer Neighbor Discovery there); a deregistration BU (lifetime 0, care-of = HoA in the
 * Alternate Care-of Address option, A and H set) is sent from the HoA to the HA as a whole
 * packet through an IPPROTO_RAW socket, retransmitted with backoff; the BA, addressed to the
 * HoA and so to the VM's MAC, is caught by a promiscuous packet socket on `--interface`; then
 * (or when the deregistration gives up) a Neighbor Advertisement for the HoA (R=0 S=0 O=1,
 * TLLA and Ethernet source = the VM's MAC, to ff02::1 / 33:33:00:00:00:01) is sent three
 * times, one second apart (MAX_NEIGHBOR_ADVERTISEMENT, RFC 4861 §7.2.6), on that interface,
 * so that neighbours stop sending to the HA's proxy-ND MAC.
 *
 * @module
 */

import { Rtnetlink, writeSysctl } from "../../ffi/netlink.ts";
import { IFA_F } from "../../ffi/netlink.ts";
import { TunTapDevice } from "../../ffi/tap.ts";
import type { MnConfig, VmConfig } from "../config/schema.ts";
import { SecurityAssociationDatabase } from "../ipsec/sa.ts";
import { ControlServer } from "../control/server.ts";
import { Cleanup, waitForShutdown } from "../daemon/lifecycle.ts";
import { logger, RateLimiter } from "../log.ts";
import { StateStore } from "../state/store.ts";
import { DATAPATH_COUNTERS, SharedCounters } from "../tunnel/counters.ts";
import {
  type MnDatapath,
  type MnDatapathOptions,
  type MnDatapathVm,
  startMnDatapath,
} from "../tunnel/mn_datapath.ts";
import { canonicalIPv6, inPrefix, tryParseIPv6 } from "../wire/addr.ts";
import {
  BindingUpdateListEntry,
  type BulAction,
  type BulEvent,
  type BulState,
} from "./binding_update_list.ts";
import {
  buildHomeAddressNa,
  buildUnsolicitedRa,
  buildUnsolicitedRouterNa,
  makePseudoHomeContext,
  type PseudoHomeContext,
  type PseudoHomeOptions,
  type RaOptions,
  VM_DROP_COUNTERS,
} from "./pseudo_home.ts";
import { RouterAdvertiser } from "./router_advertiser.ts";
import { acceptUnprotected, VmEsp } from "./esp_binding.ts";
import { SequenceReservation, storedSequence } from "./sequence_reservation.ts";
import { type BuSend, MnSignaling, type Received } from "./signaling.ts";

const log = logger("mn");

/** Seconds `--deregister-on-exit` waits for the BAs before cleaning up anyway. */
export const DEREGISTER_ON_EXIT_WAIT_MS = 4000;

/** The data path as the daemon uses it (a test may substitute its own). */
export type MnDatapathHandle =
  & Pick<
    MnDatapath,
    "setActive" | "setCareOf" | "setHomeAgent" | "stop" | "counters"
  >
  & { done?: Promise<string | null> };

function defaultStartDatapath(opts: MnDatapathOptions): Promise<MnDatapathHandle> {
  return startMnDatapath(opts);
}

/** sizeof(struct virtio_net_hdr): what a tap opened with IFF_VNET_HDR expects before a frame. */
const VNET_HDR_LEN = 10;

/** Environment variable (tests only): `MIN,MAX` seconds of the periodic RA interval. */
export const RA_INTERVAL_ENV = "KAGEMUSHA_MN_RA_INTERVAL";

/**
 * The RA interval override of {@linkcode RA_INTERVAL_ENV}, or `{}` (defaults) when unset.
 * @throws {RangeError} when set but not two positive numbers MIN <= MAX.
 */
export function raIntervalOverride(value: string | undefined): PseudoHomeOptions {
  if (value === undefined || value === "") return {};
  const m = /^\s*([0-9.]+)\s*,\s*([0-9.]+)\s*$/.exec(value);
  const min = m ? Number(m[1]) : NaN;
  const max = m ? Number(m[2]) : NaN;
  if (!(min > 0) || !(max >= min)) {
    throw new RangeError(`${RA_INTERVAL_ENV} must be MIN,MAX seconds with 0 < MIN <= MAX`);
  }
  return { minRtrAdvIntervalS: min, maxRtrAdvIntervalS: max };
}

/** One VM served by the daemon. */
interface VmRuntime {
  index: number;
  vm: VmConfig;
  ctx: PseudoHomeContext;
  entry: BindingUpdateListEntry;
  tap: TunTapDevice;
  stateName: string;
  /** Periodic unsolicited RAs while the VM is away (RFC 4861 §6.2.4). */
  ra: RouterAdvertiser;
  /** What is on disk of the VM's sequence (a reservation ahead of it). */
  seqStore: SequenceReservation;
  /** The VM's ESP SAs (RFC 4877 §4), null when none is configured (unauthenticated). */
  esp: VmEsp | null;
  /** The VM is on its home link (this host is its home host, or it came back). */
  home: boolean;
  active: boolean;
  /** Home-address NAs still to send after returning home. */
  homeNaTimer: ReturnType<typeof setTimeout> | undefined;
  lastEventAt: Record<string, number>;
}

/** The state-file name of a VM's binding (keyed by its home address). */
export function stateNameFor(homeAddress: string): string {
  return `binding-${canonicalIPv6(homeAddress).replaceAll(":", "_")}`;
}

/** The first usable global address of `ifname` (not tentative, DAD-failed; non-deprecated first). */
export function pickCareOf(
  addrs: Array<{ address: string; scope: string; flags: number }>,
): string | null {
  const usable = addrs.filter((a) =>
    a.scope === "global" && (a.flags & (IFA_F.TENTATIVE | IFA_F.DADFAILED)) === 0
  );
  const fresh = usable.filter((a) => (a.flags & IFA_F.DEPRECATED) === 0);
  return (fresh[0] ?? usable[0])?.address ?? null;
}

function randomMac(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  b[0] = (b[0] & 0xfe) | 0x02;
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * Runs the mobile node until SIGTERM/SIGINT; resolves with the exit code (0 after a clean
 * shutdown). Setup failures are logged and give 1, after undoing what was already created.
 */
export async function runMobileNode(
  config: MnConfig,
  deps: { startDatapath?: (o: MnDatapathOptions) => Promise<MnDatapathHandle> } = {},
): Promise<number> {
  const cleanup = new Cleanup();
  const shutdown = waitForShutdown();
  let daemon: MnDaemon | undefined;
  try {
    daemon = await MnDaemon.start(config, cleanup, deps.startDatapath ?? defaultStartDatapath);
  } catch (e) {
    log.error("mobile node setup failed: {error}", { error: (e as Error).message });
    await cleanup.runAll();
    return 1;
  }
  const sig = await Promise.race([shutdown, daemon.fatal]);
  log.info("shutting down ({why})", { why: sig });
  await daemon.shutdown();
  const failed = await cleanup.runAll();
  return failed.length === 0 && sig !== "datapath" ? 0 : 1;
}

class MnDaemon {
  readonly vms: VmRuntime[] = [];
  readonly rl = new RateLimiter();
  readonly store: StateStore;
  careOf = "";
  signaling!: MnSignaling;
  datapath!: MnDatapathHandle;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #fatal!: (why: string) => void;
  readonly fatal: Promise<string> = new Promise((r) => this.#fatal = r);
  readonly startedAt = performance.now();
  /** Unsolicited RAs written to taps, and failed writes. */
  raSent = 0;
  raErrors = 0;
  /** Sequence reservations written to the state directory. */
  seqWrites = 0;
  /** Every VM's ESP SAs; the signaling's receive side unprotects with it. */
  readonly sad = new SecurityAssociationDatabase();
  /** ESP decisions of the daemon (the receive side's refusals are the signaling's counters). */
  readonly espCounters = {
    /** Unprotected BAs dropped for a VM with ESP (RFC 4877 §4). */
    esp_unprotected_ba: 0,
    /** BUs refused: the SA ran out of Sequence Numbers (RFC 4303 §3.3.3, rekey needed). */
    esp_exhausted: 0,
    /** BUs refused: the SA was released to another host, or its state is unknown here. */
    esp_no_state: 0,
    /** BUs refused: the ESP sequence reservation could not be written. */
    esp_persist_errors: 0,
    /** ESP states from a handover that could not be imported. */
    esp_import_errors: 0,
  };

  private constructor(readonly config: MnConfig, readonly cleanup: Cleanup) {
    this.store = new StateStore(config.stateDir);
  }

  static async start(
    config: MnConfig,
    cleanup: Cleanup,
    startDatapath: (o: MnDatapathOptions) => Promise<MnDatapathHandle>,
  ): Promise<MnDaemon> {
    const d = new MnDaemon(config, cleanup);
    await d.#setup(startDatapath);
    return d;
  }

  now(): number {
    return performance.now();
  }

  async #setup(startDatapath: (o: MnDatapathOptions) => Promise<MnDatapathHandle>) {
    const c = this.config;
    const rtnl = Rtnetlink.open();
    this.cleanup.defer("close rtnetlink", () => rtnl.close());
    const link = rtnl.getLink(c.interface);
    this.careOf = c.careOf ?? await this.#detectCareOf(rtnl, link.index, 5000);
    log.info("care-of address {coa} on {iface} (MTU {mtu})", {
      coa: this.careOf,
      iface: c.interface,
      mtu: link.mtu,
    });

    const bridgesCreated = new Set<string>();
    const raIntervals = raIntervalOverride(Deno.env.get(RA_INTERVAL_ENV));
    for (const [index, vm] of c.vms.entries()) {
      const ctx = makePseudoHomeContext(vm, link.mtu - 40, raIntervals);
      if (vm.bridge !== undefined && !bridgesCreated.has(vm.bridge)) {
        const exists = rtnl.getLinks().some((l) => l.name === vm.bridge);
        if (!exists) {
          rtnl.createBridge(vm.bridge);
          bridgesCreated.add(vm.bridge);
          const br = vm.bridge;
          this.cleanup.defer(`delete bridge ${br}`, () => rtnl.deleteLink(br));
          // The host itself takes no part in the pseudo home link.
          writeSysctl(`net/ipv6/conf/${br}/disable_ipv6`, 1);
          rtnl.setLinkUp(br, true);
          log.info("created bridge {bridge}", { bridge: br });
        }
      }
      const tap = TunTapDevice.open(vm.tap, { mode: "tap", vnetHdr: true });
      this.cleanup.defer(`remove tap ${vm.tap}`, () => tap.close());
      writeSysctl(`net/ipv6/conf/${tap.name}/disable_ipv6`, 1);
      const tapMac = tap.getMac();
      if (tapMac === vm.routerMac || tapMac === vm.vmMac) tap.setMac(randomMac());
      if (vm.bridge !== undefined) rtnl.setMaster(tap.name, vm.bridge);
      const stateName = stateNameFor(vm.homeAddress);
      const file = this.#readState(vm.homeAddress, stateName);
      const stored = file.sequence;
      let lastSequence: number;
      let sequenceKnown = true;
      if (stored !== null) {
        lastSequence = stored;
        log.info("{hoa}: continuing after sequence {seq} from {dir}", {
          hoa: vm.homeAddress,
          seq: lastSequence,
          dir: c.stateDir,
        });
      } else {
        lastSequence = crypto.getRandomValues(new Uint16Array(1))[0];
        sequenceKnown = false;
      }
      const entry = new BindingUpdateListEntry({
        homeAddress: vm.homeAddress,
        homeAgent: c.homeAgent,
        careOf: this.careOf,
        lifetime: c.lifetime,
        lastSequence,
        sequenceKnown,
      });
      const home = inPrefix(this.careOf, vm.homeAddress, vm.prefixLength);
      tap.setUp(!home);
      let esp: VmEsp | null = null;
      if (vm.esp !== undefined) {
        esp = new VmEsp(this.sad, vm.esp, { homeAddress: vm.homeAddress, homeAgent: c.homeAgent }, {
          stored: file.raw,
          corrupt: file.corrupt,
          standby: c.standby,
        });
        for (const note of esp.notes) log.info("{hoa}: {note}", { hoa: vm.homeAddress, note });
        // Import the WebCrypto keys now, not on the first BU after a move (a few ms).
        await Promise.all([esp.bu.cryptoKeys(), esp.ba.cryptoKeys()]);
        log.info("{hoa}: BUs and BAs ESP-protected (SPI {bu} out, {ba} in, {alg}); {state}", {
          hoa: vm.homeAddress,
          bu: esp.bu.spi,
          ba: esp.ba.spi,
          alg: esp.bu.algorithm,
          state: esp.status().state,
        });
      } else {
        log.warning(
          "{hoa}: no ESP configured: its Binding Updates and Acknowledgements are " +
            "unauthenticated (RFC 4877 §4); anyone on the path can forge a BA or redirect the " +
            "binding. Configure vms[].esp in --config.",
          { hoa: vm.homeAddress },
        );
      }
      this.vms.push({
        index,
        vm,
        ctx,
        entry,
        tap,
        stateName,
        ra: new RouterAdvertiser({
          minIntervalMs: ctx.minRtrAdvIntervalS * 1000,
          maxIntervalMs: ctx.maxRtrAdvIntervalS * 1000,
        }),
        seqStore: new SequenceReservation(stored),
        esp,
        home,
        active: false,
        homeNaTimer: undefined,
        lastEventAt: {},
      });
    }

    this.signaling = new MnSignaling(
      c.homeAgent,
      c.interface,
      (m) => this.#onReceived(m),
      this.sad,
    );
    this.cleanup.defer("close signaling sockets", () => this.signaling.close());

    // The pseudo home network's drop reasons next to the data path's own counters (the data
    // path names them when it counts per reason; a name listed twice is kept once).
    const counters = new SharedCounters([...new Set([...DATAPATH_COUNTERS, ...VM_DROP_COUNTERS])]);
    this.datapath = await startDatapath({
      vms: this.vms.map((r) => {
        // `ra` (resolved, so a solicited RA says what the periodic ones say) for a data path
        // that passes it on to makePseudoHomeContext.
        const v: MnDatapathVm & { ra: RaOptions } = {
          tapFd: r.tap.fd,
          homeAddress: r.vm.homeAddress,
          prefixLength: r.vm.prefixLength,
          vmMac: r.vm.vmMac,
          routerMac: r.vm.routerMac,
          routerLl: r.vm.routerLl,
          ra: { ...r.vm.ra, routerLifetime: r.ctx.routerLifetime },
        };
        return v;
      }),
      careOf: this.careOf,
      homeAgent: c.homeAgent,
      counters,
      linkMtu: link.mtu,
      workers: c.datapathWorkers,
    });
    this.cleanup.defer("stop data path", () => this.datapath.stop());
    this.datapath.done?.then((err) => {
      if (err !== null) {
        log.error("data path stopped: {error}", { error: err });
        this.#fatal("datapath");
      }
    });

    const server = await ControlServer.listen(c.control, {
      status: () => this.status(),
      handover: (args) => this.handover(args),
      export: (args) => this.export(args),
      deregister: (args) => this.deregister(args),
    });
    this.cleanup.defer("close control socket", () => server.close());
    this.cleanup.defer("stop timer", () => clearTimeout(this.#timer));

    for (const r of this.vms) {
      if (r.home) {
        this.#event(r, { type: "release", reason: "at home: the VM is on its home link" });
        log.info("{hoa}: care-of {coa} is inside the home prefix: VM at home, not registering", {
          hoa: r.vm.homeAddress,
          coa: this.careOf,
        });
      } else if (c.standby) {
        this.#event(r, { type: "release", reason: "standby: waiting for handover" });
      } else {
        this.#event(r, { type: "start" });
      }
    }
    log.info("mobile node ready: {n} VM(s), control {control}", {
      n: this.vms.length,
      control: c.control,
    });
  }

  /**
   * The VM's state file: the sequence to continue after (null when there is none or it is
   * unreadable/corrupt), the raw contents (ESP state) and whether it was unusable. A corrupt
   * file is logged loudly but does not stop the daemon: a random start then resynchronises
   * through status 135 (RFC 6275 §11.7.1); an ESP SA then waits for a handover (its counter is
   * unknown).
   */
  #readState(
    homeAddress: string,
    stateName: string,
  ): { sequence: number | null; raw: unknown; corrupt: boolean } {
    let stored: unknown;
    try {
      stored = this.store.read(stateName);
    } catch (e) {
      log.error(
        "{hoa}: state file unusable ({error}); starting from a random sequence number, the " +
          "home agent's status 135 will resynchronise it",
        { hoa: homeAddress, error: (e as Error).message },
      );
      return { sequence: null, raw: undefined, corrupt: true };
    }
    if (stored === undefined) return { sequence: null, raw: undefined, corrupt: false };
    const seq = storedSequence(stored);
    // A file written for the ESP state alone (an export before any BU) has no sequence yet.
    const noSequenceYet = typeof stored === "object" && stored !== null &&
      !("sequence" in stored) && "esp" in stored;
    if (seq === null && !noSequenceYet) {
      log.error(
        "{hoa}: state file {name} in {dir} has no valid sequence; starting from a random " +
          "sequence number, the home agent's status 135 will resynchronise it",
        { hoa: homeAddress, name: stateName, dir: this.config.stateDir },
      );
    }
    return { sequence: seq, raw: stored, corrupt: false };
  }

  /**
   * Writes the VM's state file: the BU sequence reservation (`bu`, else what is on disk) and
   * the ESP state (`esp_binding.ts`; `espReserve`: a new ESP sequence reservation).
   * Synchronous and fsync'd; false (logged, rate-limited) when it failed.
   */
  #writeState(r: VmRuntime, bu: number | null = null, espReserve: number | null = null): boolean {
    const sequence = bu ?? r.seqStore.reserved;
    const esp = r.esp?.persisted(espReserve);
    const value: Record<string, unknown> = { homeAddress: r.vm.homeAddress };
    if (sequence !== null) {
      value.sequence = sequence;
      value.reservedAhead = true;
    }
    if (esp !== undefined) value.esp = esp;
    value.updated = new Date().toISOString();
    try {
      this.store.write(r.stateName, value);
    } catch (e) {
      if (this.rl.allow("persist", Date.now())) {
        log.error("cannot persist the state of {hoa} in {dir}: {error}", {
          hoa: r.vm.homeAddress,
          dir: this.config.stateDir,
          error: (e as Error).message,
        });
      }
      return false;
    }
    if (bu !== null) r.seqStore.committed(bu);
    if (esp !== undefined) r.esp!.committed(esp.sas[0].sequence ?? 0);
    return true;
  }

  async #detectCareOf(rtnl: Rtnetlink, ifindex: number, waitMs: number): Promise<string> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const coa = pickCareOf(rtnl.getAddresses(ifindex));
      if (coa !== null) return coa;
      if (Date.now() > deadline) {
        throw new Error(
          `${this.config.interface} has no usable global IPv6 address; give --care-of`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // ---- events and actions -------------------------------------------------------------

  #event(r: VmRuntime, e: BulEvent): void {
    const actions = r.entry.handle(e, this.now());
    this.#apply(r, actions);
    this.#arm();
  }

  #apply(r: VmRuntime, actions: BulAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case "sendBu": {
          if (r.esp !== null) {
            this.#sendProtectedBu(r, r.esp, a);
            break;
          }
          const err = this.signaling.sendBu(a);
          r.lastEventAt.buSent = Date.now();
          if (err !== null) {
            if (this.rl.allow(`send-${r.index}`, Date.now())) {
              log.warning("{hoa}: sending BU seq {seq} failed: {error}", {
                hoa: r.vm.homeAddress,
                seq: a.bu.sequence,
                error: err,
              });
            }
          } else {
            log.debug("{hoa}: BU seq {seq} lifetime {lt} care-of {coa}{home}", {
              hoa: r.vm.homeAddress,
              seq: a.bu.sequence,
              lt: a.bu.lifetime * 4,
              coa: a.careOf,
              home: a.atHome ? " (from home)" : "",
            });
          }
          break;
        }
        case "persistSequence": {
          // Write-ahead, once per SEQUENCE_RESERVE BUs (sequence_reservation.ts).
          const value = r.seqStore.toPersist(a.sequence);
          if (value === null) break;
          if (this.#writeState(r, value)) this.seqWrites++;
          break;
        }
        case "state":
          log.info("{hoa}: {from} -> {to}: {reason}", {
            hoa: r.vm.homeAddress,
            from: a.from,
            to: a.to,
            reason: a.reason,
          });
          this.#onState(r, a.from, a.to);
          break;
        case "log": {
          const key = a.remote ?? "";
          if (a.remote !== undefined && !this.rl.allow(`${r.index}-${key}`, Date.now())) break;
          const sup = a.remote !== undefined ? this.rl.suppressed(`${r.index}-${key}`) : 0;
          const msg = sup > 0 ? `${a.message} (${sup} similar suppressed)` : a.message;
          log[a.level]("{hoa}: {msg}", { hoa: r.vm.homeAddress, msg });
          break;
        }
      }
    }
  }

  /**
   * A BU under the VM's ESP SA (RFC 4877 §4): refused while the SA is not ours (released,
   * state unknown) or exhausted; the ESP sequence reservation is written first when the next
   * Sequence Number is beyond it (never sent without being on disk: AES-GCM nonces). The
   * Sequence Number is taken now, synchronously; the packet leaves when sealed.
   */
  #sendProtectedBu(r: VmRuntime, esp: VmEsp, a: BuSend): void {
    const hoa = r.vm.homeAddress;
    const v = esp.beforeSend();
    if (!v.ok) {
      if (v.why === "exhausted") this.espCounters.esp_exhausted++;
      else this.espCounters.esp_no_state++;
      if (this.rl.allow(`esp-refused-${r.index}`, Date.now())) {
        log.error("{hoa}: BU seq {seq} not sent: {msg}", {
          hoa,
          seq: a.bu.sequence,
          msg: v.message,
        });
      }
      return;
    }
    if (v.persist !== null) {
      if (!this.#writeState(r, null, v.persist)) {
        this.espCounters.esp_persist_errors++;
        if (this.rl.allow(`esp-persist-${r.index}`, Date.now())) {
          log.error(
            "{hoa}: BU seq {seq} not sent: the ESP sequence reservation could not be written " +
              "(a crash would reuse ESP sequence numbers, with AES-GCM its nonces)",
            { hoa, seq: a.bu.sequence },
          );
        }
        return;
      }
      this.seqWrites++;
    }
    r.lastEventAt.buSent = Date.now();
    const gen = v.generation;
    this.signaling.sendProtectedBu(a, esp.bu, () => esp.generation === gen).then((res) => {
      if (res.ok) {
        log.debug("{hoa}: BU seq {seq} (ESP {spi} seq {esp}) lifetime {lt} care-of {coa}{home}", {
          hoa,
          seq: a.bu.sequence,
          spi: esp.bu.spi,
          esp: res.espSequence,
          lt: a.bu.lifetime * 4,
          coa: a.careOf,
          home: a.atHome ? " (from home)" : "",
        });
        return;
      }
      if (res.released) return;
      if (res.exhausted) {
        esp.markExhausted();
        this.espCounters.esp_exhausted++;
        log.error("{hoa}: {error}: rekey needed", { hoa, error: res.error });
        return;
      }
      if (this.rl.allow(`send-${r.index}`, Date.now())) {
        log.warning("{hoa}: sending BU seq {seq} failed: {error}", {
          hoa,
          seq: a.bu.sequence,
          error: res.error,
        });
      }
    });
  }

  #onState(r: VmRuntime, from: BulState, to: BulState): void {
    if (to === "registered") r.lastEventAt.registered = Date.now();
    const active = !r.home && (to === "registering" || to === "registered" || to === "failed");
    this.#setActive(r, active);
    if (to === "registered" && from !== "registered" && !r.home) this.#announceRouter(r);
    if (to === "deregistered" && r.home && from !== "deregistered") {
      this.signaling.unwatchHome(r.vm.homeAddress);
      this.#announceHome(r, 3);
    }
  }

  #setActive(r: VmRuntime, on: boolean): void {
    if (r.active === on) return;
    r.active = on;
    this.datapath.setActive(r.index, on);
    // Periodic RAs exactly while the VM is away and active here (RFC 4861 §6.2.4).
    if (on) r.ra.start(this.now());
    else r.ra.stop();
    this.#arm();
  }

  /** Writes one frame of our own to the VM's tap (with a zeroed virtio_net_hdr if it has one). */
  #writeTap(r: VmRuntime, frame: Uint8Array, len: number): void {
    if (!r.tap.vnetHdr) {
      r.tap.write(frame, len);
      return;
    }
    const b = new Uint8Array(VNET_HDR_LEN + len);
    b.set(frame.subarray(0, len), VNET_HDR_LEN);
    r.tap.write(b, b.length);
  }

  /** Unsolicited router NA (R=1, O=1) and RA to the VM (RFC 4861 §7.2.6, §6.2.3). */
  #announceRouter(r: VmRuntime): void {
    const buf = new Uint8Array(Math.max(256, r.ctx.raFrameLen));
    try {
      this.#writeTap(r, buf, buildUnsolicitedRouterNa(r.ctx, buf));
    } catch (e) {
      log.warning("{hoa}: writing the unsolicited NA to {tap} failed: {error}", {
        hoa: r.vm.homeAddress,
        tap: r.vm.tap,
        error: (e as Error).message,
      });
    }
    this.#sendRa(r);
  }

  /** An unsolicited multicast RA to the VM; restarts its periodic timer (RFC 4861 §6.2.4). */
  #sendRa(r: VmRuntime): void {
    const buf = new Uint8Array(r.ctx.raFrameLen);
    try {
      this.#writeTap(r, buf, buildUnsolicitedRa(r.ctx, buf));
      this.raSent++;
    } catch (e) {
      this.raErrors++;
      if (this.rl.allow(`ra-${r.index}`, Date.now())) {
        log.warning("{hoa}: writing the unsolicited RA to {tap} failed: {error}", {
          hoa: r.vm.homeAddress,
          tap: r.vm.tap,
          error: (e as Error).message,
        });
      }
    }
    // Counted as sent either way: a failing tap is not retried in a tight loop.
    r.ra.sent(this.now());
    this.#arm();
  }

  /** NA for the HoA on the home link, `count` times 1 s apart (RFC 6275 §11.5.4). */
  #announceHome(r: VmRuntime, count: number): void {
    clearTimeout(r.homeNaTimer);
    const buf = new Uint8Array(128);
    const n = buildHomeAddressNa(r.ctx, buf);
    const err = this.signaling.sendHomeFrame(buf, n);
    if (err !== null) {
      log.warning("{hoa}: home-address NA on {iface} failed: {error}", {
        hoa: r.vm.homeAddress,
        iface: this.config.interface,
        error: err,
      });
    } else {
      log.info("{hoa}: Neighbor Advertisement for the home address sent on {iface}", {
        hoa: r.vm.homeAddress,
        iface: this.config.interface,
      });
    }
    if (count > 1 && r.home) {
      r.homeNaTimer = setTimeout(() => this.#announceHome(r, count - 1), 1000);
    }
  }

  #arm(): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    let next: number | null = null;
    for (const r of this.vms) {
      for (const d of [r.entry.nextDeadline(), r.ra.nextDeadline()]) {
        if (d !== null && (next === null || d < next)) next = d;
      }
    }
    if (next === null) return;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, next - this.now()));
  }

  #onTimer(): void {
    const now = this.now();
    for (const r of this.vms) {
      const d = r.entry.nextDeadline();
      if (d !== null && d <= now) this.#apply(r, r.entry.handle({ type: "timer" }, now));
      if (r.ra.due(now)) this.#sendRa(r);
    }
    this.#arm();
  }

  #onReceived(m: Received): void {
    const hoa = m.type === "be" ? m.be.homeAddress : (m.rh2HomeAddress ?? m.dst);
    const r = this.vms.find((v) => v.vm.homeAddress === hoa);
    if (r === undefined) {
      if (this.rl.allow("unknown-hoa", Date.now())) {
        log.info("{type} from {src} for {hoa}: not a VM of this daemon", {
          type: m.type.toUpperCase(),
          src: m.src,
          hoa,
        });
      }
      return;
    }
    if (m.type !== "be" && m.esp === undefined && !acceptUnprotected(m.type, r.esp !== null)) {
      // RFC 4877 §4: this VM's BAs must come ESP-protected.
      this.espCounters.esp_unprotected_ba++;
      if (this.rl.allow(`unprotected-${r.index}`, Date.now())) {
        const sup = this.rl.suppressed(`unprotected-${r.index}`);
        log.warning("{hoa}: dropped an unprotected BA (seq {seq}) from {src}: ESP required{sup}", {
          hoa,
          seq: m.type === "ba" ? m.ba.sequence : 0,
          src: m.src,
          sup: sup > 0 ? ` (${sup} similar suppressed)` : "",
        });
      }
      return;
    }
    if (m.type === "ba") r.lastEventAt.baReceived = Date.now();
    this.#event(r, m);
  }

  // ---- control ---------------------------------------------------------------------------

  #targets(args: Record<string, unknown>): VmRuntime[] {
    if (args.homeAddress === undefined) return this.vms;
    const want = tryParseIPv6(String(args.homeAddress));
    if (want === null) throw new Error(`homeAddress: not an IPv6 address: ${args.homeAddress}`);
    const hoa = canonicalIPv6(String(args.homeAddress));
    const found = this.vms.filter((r) => r.vm.homeAddress === hoa);
    if (found.length === 0) throw new Error(`no VM with home address ${hoa}`);
    return found;
  }

  status(): unknown {
    const now = this.now();
    const totals: Record<string, number> = {};
    for (const r of this.vms) {
      for (const [k, v] of Object.entries(r.entry.counters)) totals[k] = (totals[k] ?? 0) + v;
    }
    return {
      role: "mn",
      careOfAddress: this.careOf,
      homeAgent: this.config.homeAgent,
      bindings: this.vms.map((r) => ({
        ...r.entry.status(now),
        name: r.vm.name,
        tap: r.tap.name,
        active: r.active,
        home: r.home,
        routerAdvertisements: r.ra.sentCount,
        nextRouterAdvertisement: r.ra.nextDeadline() === null
          ? null
          : Math.max(0, Math.round((r.ra.nextDeadline()! - now) / 1000)),
        lastBuSent: r.lastEventAt.buSent ?? null,
        lastBaReceived: r.lastEventAt.baReceived ?? null,
        lastRegistered: r.lastEventAt.registered ?? null,
        // ESP (RFC 4877 §4): null = unauthenticated signaling.
        esp: r.esp?.status() ?? null,
        counters: r.entry.counters,
        history: r.entry.history.slice(-8).map((h) => ({
          ...h,
          at: Math.round(h.at - this.startedAt),
        })),
      })),
      counters: {
        ...totals,
        ...this.signaling.counters,
        ra_sent: this.raSent,
        ra_errors: this.raErrors,
        sequence_writes: this.seqWrites,
        ...this.espCounters,
        ...this.datapath.counters(),
      },
    };
  }

  async handover(raw: unknown): Promise<unknown> {
    const args = raw === undefined || raw === null ? {} : raw;
    if (!isRecord(args)) throw new Error("handover: arguments must be an object");
    let careOf = this.careOf;
    if (args.careOf !== undefined) {
      if (tryParseIPv6(String(args.careOf)) === null) {
        throw new Error(`careOf: not an IPv6 address: ${args.careOf}`);
      }
      careOf = canonicalIPv6(String(args.careOf));
    } else if (this.config.careOf === undefined) {
      const rtnl = Rtnetlink.open();
      try {
        careOf = await this.#detectCareOf(rtnl, rtnl.linkIndex(this.config.interface), 2000);
      } finally {
        rtnl.close();
      }
    }
    const sequences = new Map<string, { sequence: number; registered?: boolean }>();
    const espStates = new Map<string, unknown>();
    if (Array.isArray(args.bindings)) {
      for (const b of args.bindings) {
        if (isRecord(b) && typeof b.homeAddress === "string" && Number.isInteger(b.sequence)) {
          sequences.set(canonicalIPv6(b.homeAddress), {
            sequence: b.sequence as number,
            registered: typeof b.registered === "boolean" ? b.registered : undefined,
          });
        }
        if (isRecord(b) && typeof b.homeAddress === "string" && b.esp !== undefined) {
          espStates.set(canonicalIPv6(b.homeAddress), b.esp);
        }
      }
    }
    if (args.sequence !== undefined && !Number.isInteger(args.sequence)) {
      throw new Error(`sequence: not an integer: ${args.sequence}`);
    }
    const targets = this.#targets(args);
    if (careOf !== this.careOf) {
      this.careOf = careOf;
      this.datapath.setCareOf(careOf);
      log.info("care-of address is now {coa}", { coa: careOf });
    }
    for (const r of targets) {
      if (r.esp !== null) this.#importEsp(r, r.esp, espStates.get(r.vm.homeAddress));
      const handed = sequences.get(r.vm.homeAddress) ??
        (args.sequence === undefined ? undefined : { sequence: args.sequence as number });
      const seq = handed === undefined
        ? {}
        : { sequence: handed.sequence, bindingExists: handed.registered ?? true };
      if (inPrefix(careOf, r.vm.homeAddress, r.vm.prefixLength)) {
        this.#returnHome(r, seq);
      } else {
        r.home = false;
        clearTimeout(r.homeNaTimer);
        this.signaling.unwatchHome(r.vm.homeAddress);
        r.tap.setUp(true);
        this.#event(r, { type: "handover", careOf, ...seq });
        // The guest just resumed here: point its neighbour cache at the router MAC now.
        this.#setActive(r, true);
        this.#announceRouter(r);
      }
    }
    return this.status();
  }

  /**
   * ESP state from the previous host (`export`'s `esp`): imported never backwards; the SA is
   * ours afterwards. Without state an SA that is not ours stays refused (logged).
   */
  #importEsp(r: VmRuntime, esp: VmEsp, states: unknown): void {
    const before = esp.bu.lastSequence;
    const owned = () => esp.ownership === "owned";
    const wasOwned = owned();
    const errors = esp.importState(states);
    // Ours again: durable at once, so a crash before the next reservation does not leave a
    // "released" file behind that would refuse to send after the restart.
    if (!wasOwned && owned()) this.#writeState(r);
    if (errors.length > 0) {
      this.espCounters.esp_import_errors++;
      for (const e of errors) log.error("{hoa}: {error}", { hoa: r.vm.homeAddress, error: e });
    }
    if (states !== undefined && owned()) {
      log.info("{hoa}: ESP state handed over: SA {spi} continues after {seq} (was {before})", {
        hoa: r.vm.homeAddress,
        spi: esp.bu.spi,
        seq: esp.bu.lastSequence,
        before,
      });
    }
  }

  #returnHome(r: VmRuntime, seq: { sequence?: number; bindingExists?: boolean }): void {
    r.home = true;
    this.#setActive(r, false);
    r.tap.setUp(false);
    log.info("{hoa}: back on the home link: deregistering from home (RFC 6275 §11.5.4)", {
      hoa: r.vm.homeAddress,
    });
    this.#event(r, { type: "deregister", atHome: true, ...seq });
  }

  export(raw: unknown): unknown {
    const args = raw === undefined || raw === null ? {} : raw;
    if (!isRecord(args)) throw new Error("export: arguments must be an object");
    const release = args.release !== false;
    const targets = this.#targets(args);
    // `registered`: whether the HA holds a binding the next host takes over (its first BU
    // then waits 1 s for the BA; without one the HA may run DAD first: 1.5 s).
    const bindings = targets.map((r) => {
      const b: Record<string, unknown> = {
        homeAddress: r.vm.homeAddress,
        sequence: r.entry.sequence,
        registered: r.entry.state === "registered" || r.entry.state === "registering" ||
          r.entry.state === "failed",
      };
      // The SAs' counter and window go with the VM (RFC 4877 §4 SAs are per home address);
      // released here, so this host never sends with that SA again.
      if (r.esp !== null) b.esp = r.esp.exportState(release);
      return b;
    });
    if (release) {
      for (const r of targets) {
        this.#event(r, { type: "release", reason: "exported: the VM left this host" });
        this.#setActive(r, false);
        r.tap.setUp(false);
        // The release is durable: a restart of this daemon does not take the SA back.
        if (r.esp !== null) this.#writeState(r);
      }
    }
    return { bindings };
  }

  deregister(raw: unknown): unknown {
    const args = raw === undefined || raw === null ? {} : raw;
    if (!isRecord(args)) throw new Error("deregister: arguments must be an object");
    for (const r of this.#targets(args)) {
      if (r.home) continue;
      this.#event(r, { type: "deregister" });
    }
    return this.status();
  }

  /** `--deregister-on-exit`, then stop timers (devices go with the cleanup stack). */
  async shutdown(): Promise<void> {
    if (this.config.deregisterOnExit) {
      const busy = this.vms.filter((r) =>
        !r.home && (r.entry.state === "registered" || r.entry.state === "registering" ||
          r.entry.state === "failed")
      );
      for (const r of busy) this.#event(r, { type: "deregister" });
      const deadline = Date.now() + DEREGISTER_ON_EXIT_WAIT_MS;
      while (
        Date.now() < deadline && busy.some((r) => r.entry.state === "deregistering")
      ) {
        await new Promise((res) => setTimeout(res, 50));
      }
      for (const r of busy) {
        log.info("{hoa}: {state} at exit ({reason})", {
          hoa: r.vm.homeAddress,
          state: r.entry.state,
          reason: r.entry.reason,
        });
      }
    }
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const r of this.vms) {
      clearTimeout(r.homeNaTimer);
      r.ra.stop();
      // The inbound replay window as it is now (the counter's reservation is on disk already).
      if (r.esp !== null) this.#writeState(r);
    }
  }
}
