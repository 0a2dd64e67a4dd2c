/**
 * A foreign host for `kagemusha mn` tests, in network namespaces:
 *
 * ```
 *  guest ns (HoA 2001:db8:2000::10, MAC 52:54:00:00:00:10)
 *     │ veth eth0 ── vmport, enslaved to the bridge the daemon creates (kgbr0)
 *  hostB ns: eth0 2001:db8:3000::3/64 (the CoA), default via 2001:db8:3000::1
 *     │ veth
 *  ha ns: eth0 2001:db8:3000::1/64 and 2001:db8:2000::1/64 (the "home agent": scapy)
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { controlRequest } from "../../src/control/client.ts";
import { Lab, type LabProcess, type Netns } from "../helpers/netns.ts";
import { PYTHON } from "../helpers/env.ts";
import { tsharkEspSaArgs } from "../helpers/tshark.ts";
import type { EspPairConfig } from "../../src/ipsec/config.ts";

export const HOA = "2001:db8:2000::10";
export const HA = "2001:db8:2000::1";
export const COA = "2001:db8:3000::3";
export const VM_MAC = "52:54:00:00:00:10";
export const ROUTER_MAC = "02:aa:00:00:00:01";
export const REPO = new URL("../../", import.meta.url).pathname;

/**
 * The VM's ESP SAs for the ESP tests (RFC 4877 §4): BUs under AES-GCM-128 (the algorithm
 * whose nonce must never repeat), BAs under AES-CBC + HMAC-SHA-256-128.
 */
export const ESP_PAIR: EspPairConfig = {
  bu: {
    spi: 0x4b4d0101,
    algorithm: "aes-gcm-128",
    key: "3d1f0e2c4b5a69788796a5b4c3d2e1f0" + "c0ffee01",
  },
  ba: {
    spi: 0x4b4d0102,
    algorithm: "aes-cbc-hmac-sha256",
    key: "2b7e151628aed2a6abf7158809cf4f3c",
    authKey: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
  },
};

/**
 * tshark options decrypting and authenticating both SAs of `pair` (see
 * {@linkcode tsharkEspSaArgs}).
 */
export function tsharkEspArgs(pair: EspPairConfig): string[] {
  return tsharkEspSaArgs([pair.bu, pair.ba]);
}

/** `deno run -A mod.ts …args`: the CLI from source, as the CLI contract says. */
export function kagemusha(...args: string[]): string[] {
  return [Deno.execPath(), "run", "-A", `${REPO}mod.ts`, ...args];
}

/**
 * `kagemusha mn` with flags for the standard VM (HoA, VM and router MACs, tap kgtap0) on
 * `iface`, its tap enslaved to `bridge`; `--lifetime` only when given.
 */
export function mnCommand(o: {
  iface: string;
  bridge: string;
  control: string;
  stateDir: string;
  lifetime?: number;
}): string[] {
  return kagemusha(
    "mn",
    "--interface",
    o.iface,
    "--home-agent",
    HA,
    "--home-address",
    `${HOA}/64`,
    "--vm-mac",
    VM_MAC,
    "--router-mac",
    ROUTER_MAC,
    "--tap",
    "kgtap0",
    "--bridge",
    o.bridge,
    "--control",
    o.control,
    "--state-dir",
    o.stateDir,
    ...(o.lifetime === undefined ? [] : ["--lifetime", String(o.lifetime)]),
    "--log-level",
    "debug",
  );
}

/**
 * A guest namespace `vm` with its eth0 veth'd to `host`'s `port` (left down): the VM's MAC, RAs
 * accepted but no SLAAC address (so its only global address is the HoA), then `sysctls` on eth0.
 */
export async function addGuest(
  lab: Lab,
  host: Netns,
  opts: { port?: string; sysctls?: Record<string, number> } = {},
): Promise<Netns> {
  const guest = await lab.netns("vm");
  await lab.veth(guest, "eth0", host, opts.port ?? "vmport");
  await guest.ip("link", "set", "eth0", "down");
  await guest.ip("link", "set", "eth0", "address", VM_MAC);
  await guest.sysctl("net.ipv6.conf.eth0.accept_ra", 2);
  await guest.sysctl("net.ipv6.conf.eth0.autoconf", 0);
  for (const [k, v] of Object.entries(opts.sysctls ?? {})) {
    await guest.sysctl(`net.ipv6.conf.eth0.${k}`, v);
  }
  await guest.ip("addr", "add", `${HOA}/64`, "dev", "eth0", "nodad");
  return guest;
}

/**
 * The home link for returning-home tests, made by the test:
 *
 * ```
 *  guest ns (HoA, VM MAC) ── vmport ┐
 *                                   brhome (hostA ns, 2001:db8:2000::5/64)
 *  ha ns eth0 2001:db8:2000::1 ── uplink ┘
 * ```
 *
 * The guest pings the HA once, so the bridge learns the VM's MAC on vmport (frames for it are
 * no longer flooded).
 */
export async function homeLink(lab: Lab): Promise<{ hostA: Netns; ha: Netns; guest: Netns }> {
  const hostA = await lab.netns("ha-host");
  const ha = await lab.netns("ha");
  const guest = await lab.netns("vm");
  await hostA.ip("link", "add", "brhome", "type", "bridge");
  await lab.veth(ha, "eth0", hostA, "uplink");
  await lab.veth(guest, "eth0", hostA, "vmport");
  for (const p of ["uplink", "vmport"]) await hostA.ip("link", "set", p, "master", "brhome");
  await hostA.ip("link", "set", "brhome", "up");
  await hostA.ip("addr", "add", "2001:db8:2000::5/64", "dev", "brhome", "nodad");
  await ha.ip("addr", "add", `${HA}/64`, "dev", "eth0", "nodad");
  await guest.ip("link", "set", "eth0", "down");
  await guest.ip("link", "set", "eth0", "address", VM_MAC);
  await guest.ip("link", "set", "eth0", "up");
  await guest.ip("addr", "add", `${HOA}/64`, "dev", "eth0", "nodad");
  await guest.exec(["ping", "-6", "-c", "1", "-W", "2", HA]);
  return { hostA, ha, guest };
}

/** The scapy home agent (scapy_ha.py) on `ns`'s eth0; resolves once it is sniffing. */
export async function startScapyHa(ns: Netns, args: string[] = []): Promise<ScapyHa> {
  const p = ns.spawn([
    PYTHON,
    `${REPO}test/mn/scapy_ha.py`,
    "--iface",
    "eth0",
    "--ha",
    HA,
    ...args,
  ]);
  await p.waitFor('"event": "ready"', 20_000);
  return new ScapyHa(p);
}

/** A binding as `status` reports it. */
export interface BindingStatus {
  homeAddress: string;
  careOfAddress: string;
  homeAgent: string;
  state: string;
  sequence: number;
  lifetimeRemaining: number;
  reason: string;
  counters: Record<string, number>;
}

/** The topology plus helpers; `await using` it inside `await using lab`. */
export class ForeignHost {
  readonly dir: string;
  readonly control: string;
  readonly stateDir: string;
  private constructor(
    readonly lab: Lab,
    readonly host: Netns,
    readonly ha: Netns,
    readonly guest: Netns | null,
  ) {
    this.dir = Deno.makeTempDirSync({ prefix: "kgm-mn-" });
    this.control = `${this.dir}/mn.sock`;
    this.stateDir = `${this.dir}/state`;
  }

  static async create(lab: Lab, opts: { guest?: boolean } = {}): Promise<ForeignHost> {
    const host = await lab.netns("hb");
    const ha = await lab.netns("ha");
    await lab.veth(host, "eth0", ha, "eth0");
    await host.ip("addr", "add", `${COA}/64`, "dev", "eth0", "nodad");
    await host.ip("-6", "route", "add", "default", "via", "2001:db8:3000::1", "dev", "eth0");
    await ha.ip("addr", "add", "2001:db8:3000::1/64", "dev", "eth0", "nodad");
    await ha.ip("addr", "add", `${HA}/64`, "dev", "eth0", "nodad");
    let guest: Netns | null = null;
    if (opts.guest) guest = await addGuest(lab, host, { sysctls: { forwarding: 0 } });
    return new ForeignHost(lab, host, ha, guest);
  }

  /**
   * `kagemusha mn` in the host namespace with the standard arguments plus `extra`; `env` adds
   * environment variables (e.g. the test-only `KAGEMUSHA_MN_RA_INTERVAL`).
   */
  startDaemon(extra: string[] = [], opts: { env?: Record<string, string> } = {}): LabProcess {
    return this.host.spawn([
      ...mnCommand({
        iface: "eth0",
        bridge: "kgbr0",
        control: this.control,
        stateDir: this.stateDir,
        lifetime: 60,
      }),
      ...extra,
    ], opts.env === undefined ? {} : { env: opts.env });
  }

  /**
   * `kagemusha mn --config FILE` in the host namespace: the standard VM as a `vms` entry (the
   * only place ESP keys are accepted) with `esp` (null: none), plus `extra` flags.
   */
  startDaemonWithEsp(
    esp: EspPairConfig | null = ESP_PAIR,
    extra: string[] = [],
  ): LabProcess {
    const cfg = `${this.dir}/mn-esp.json`;
    const vm: Record<string, unknown> = {
      homeAddress: `${HOA}/64`,
      vmMac: VM_MAC,
      routerMac: ROUTER_MAC,
      tap: "kgtap0",
      bridge: "kgbr0",
    };
    if (esp !== null) vm.esp = esp;
    Deno.writeTextFileSync(
      cfg,
      JSON.stringify({
        interface: "eth0",
        homeAgent: HA,
        lifetime: 60,
        control: this.control,
        stateDir: this.stateDir,
        logLevel: "debug",
        vms: [vm],
      }),
    );
    return this.host.spawn(kagemusha("mn", "--config", cfg, ...extra));
  }

  /** The scapy home agent in the ha namespace; resolves once it is sniffing. */
  startScapyHa(args: string[] = []): Promise<ScapyHa> {
    return startScapyHa(this.ha, args);
  }

  async status(): Promise<
    { role: string; bindings: BindingStatus[]; counters: Record<string, number> }
  > {
    return await controlRequest(this.control, "status") as {
      role: string;
      bindings: BindingStatus[];
      counters: Record<string, number>;
    };
  }

  /** Polls `status` until `pred` holds for the first binding, or throws with the daemon's log. */
  async waitBinding(
    daemon: LabProcess,
    pred: (b: BindingStatus) => boolean,
    ms = 15_000,
  ): Promise<BindingStatus> {
    const deadline = Date.now() + ms;
    let last: unknown = "no status yet";
    while (Date.now() < deadline) {
      try {
        const s = await this.status();
        last = s.bindings[0];
        if (pred(s.bindings[0])) return s.bindings[0];
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `binding condition not met in ${ms} ms; last: ${JSON.stringify(last)}\n` +
        `daemon stderr:\n${daemon.stderr}`,
    );
  }

  async links(): Promise<string[]> {
    const r = await this.host.exec(["ip", "-j", "link", "show"]);
    return (JSON.parse(r.stdout) as Array<{ ifname: string }>).map((l) => l.ifname);
  }

  /** Enslaves the guest's veth peer to the daemon's bridge once it exists. */
  async plugGuest(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await this.links()).includes("kgbr0")) {
      if (Date.now() > deadline) throw new Error("bridge kgbr0 never appeared");
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.host.ip("link", "set", "vmport", "master", "kgbr0");
    await this.host.ip("link", "set", "vmport", "up");
    assert.ok(this.guest);
    await this.guest.ip("link", "set", "eth0", "up");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** JSON lines printed by scapy_ha.py. */
export interface ScapyEvent {
  event: string;
  src?: string;
  dst?: string;
  hoa?: string;
  seq?: number;
  flags?: { A: boolean; H: boolean; L: boolean; K: boolean };
  lifetime?: number;
  altcoa?: string;
  checksum_ok?: boolean;
  status?: number;
  /** ESP of a BU as scapy decrypted it; of a BA, its ESP sequence (null: unprotected). */
  esp?: { spi: number; seq: number } | number | null;
  /** Why scapy could not decrypt an ESP BU. */
  error?: string;
  /** Capture time of a BU (seconds since the epoch, scapy's clock). */
  t?: number;
  /** Test-side arrival time (ms since the epoch, when first seen). */
  seenAt?: number;
}

/** The running scapy HA. */
export class ScapyHa {
  #seen = new Map<number, number>();
  constructor(readonly proc: LabProcess) {}

  /** Every event so far, with the time the test first saw each line. */
  events(): ScapyEvent[] {
    const lines = this.proc.stdout.split("\n").filter((l) => l.startsWith("{"));
    return lines.map((l, i) => {
      if (!this.#seen.has(i)) this.#seen.set(i, Date.now());
      return { ...JSON.parse(l) as ScapyEvent, seenAt: this.#seen.get(i) };
    });
  }

  bus(): ScapyEvent[] {
    return this.events().filter((e) => e.event === "bu");
  }

  /** Waits until `n` events of `kind` were printed. */
  async waitCount(kind: string, n: number, ms = 15_000): Promise<ScapyEvent[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const ev = this.events().filter((e) => e.event === kind);
      if (ev.length >= n) return ev;
      if (Date.now() > deadline) {
        throw new Error(
          `scapy HA: ${n} ${kind} not seen in ${ms} ms\n${this.proc.stdout}\n${this.proc.stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
