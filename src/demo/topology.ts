/**
 * The reference topology of DESIGN.md, built in network namespaces:
 *
 * ```
 *  vm (HoA 2001:db8:2000::10, MAC 52:54:00:00:00:10)
 *    │ veth "vmport", moved between the hosts' br0 to "migrate"
 *  hostA ── home link 2001:db8:2000::/64 (bridge in ns "sw") ── ha (::1, fe80::1, home router)
 *              │                                                │ │
 *           cn (2001:db8:2000::2)                               │ │ routed
 *  hostB (CoA 2001:db8:3000::3) ── foreign link 2001:db8:3000::/64
 *  hostC (CoA 2001:db8:4000::3) ── foreign link 2001:db8:4000::/64
 * ```
 *
 * Used by the demo, the end-to-end tests and the benchmark; everything is
 * removed by `close()` (it owns a {@link Lab}).
 *
 * @module
 */
import { Lab, type LabProcess, type Netns } from "./lab.ts";

/** Addresses of the reference topology (from the seed's experiment). */
export const ADDR = {
  homePrefix: "2001:db8:2000::/64",
  ha: "2001:db8:2000::1",
  haLinkLocal: "fe80::1",
  cn: "2001:db8:2000::2",
  hostA: "2001:db8:2000::a",
  hoa: "2001:db8:2000::10",
  vmMac: "52:54:00:00:00:10",
  coaB: "2001:db8:3000::3",
  coaC: "2001:db8:4000::3",
  haB: "2001:db8:3000::1",
  haC: "2001:db8:4000::1",
} as const;

/** Hosts the VM can live on. */
export type HostName = "hostA" | "hostB" | "hostC";

/** Path of mod.ts, to start daemons from source. */
export const MOD_TS = new URL("../../mod.ts", import.meta.url).pathname;

/**
 * V8 flags the daemons run with (also baked into `deno task compile` and set in the
 * systemd units): a 1 MiB young generation instead of V8's default 16 MiB. The data
 * path allocates nothing per packet, so the smaller nursery costs no throughput and
 * saves ~12 MiB of resident memory per daemon.
 */
export const DAEMON_V8_FLAGS = "--max-semi-space-size=1";

/**
 * argv running `kagemusha …` from source with the current Deno. `--no-code-cache`: Deno's V8
 * code cache is an SQLite file mapped into every process (~2–3 MiB of RSS); a daemon starts
 * once, so compiling its modules from source at start costs nothing later.
 */
export function kagemusha(...args: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    "--no-code-cache",
    `--v8-flags=${DAEMON_V8_FLAGS}`,
    MOD_TS,
    ...args,
  ];
}

/** The reference topology; `build()` it, then start daemons in its namespaces. */
export class Topology implements AsyncDisposable {
  readonly lab = new Lab();
  ha!: Netns;
  cn!: Netns;
  sw!: Netns;
  vm!: Netns;
  hosts!: Record<HostName, Netns>;
  /** Where the VM's NIC is plugged now. */
  vmHost: HostName = "hostA";
  /** A scratch directory for sockets and state, removed by close(). */
  dir = "";

  /** Creates every namespace, link and address. */
  async build(): Promise<this> {
    this.dir = await Deno.makeTempDir({ prefix: "kagemusha-" });
    const lab = this.lab;
    this.sw = await lab.netns("sw");
    this.ha = await lab.netns("ha");
    this.cn = await lab.netns("cn");
    this.vm = await lab.netns("vm");
    this.hosts = {
      hostA: await lab.netns("hostA"),
      hostB: await lab.netns("hostB"),
      hostC: await lab.netns("hostC"),
    };
    const { sw, ha, cn, vm, hosts } = this;
    const { hostA, hostB, hostC } = hosts;
    await bridge(sw, "brhome");
    // home link: ha, cn, hostA
    await lab.veth(ha, "home0", sw, "p-ha");
    await lab.veth(cn, "eth0", sw, "p-cn");
    await lab.veth(hostA, "eth0", sw, "p-a");
    for (const p of ["p-ha", "p-cn", "p-a"]) await sw.ip("link", "set", p, "master", "brhome");
    await ha.sysctl("net.ipv6.conf.all.forwarding", 1);
    await ha.ip("addr", "add", `${ADDR.ha}/64`, "dev", "home0", "nodad");
    await ha.ip("addr", "add", `${ADDR.haLinkLocal}/64`, "dev", "home0", "nodad");
    await cn.ip("addr", "add", `${ADDR.cn}/64`, "dev", "eth0", "nodad");
    await cn.ip("route", "add", "default", "via", ADDR.ha, "dev", "eth0");
    // host A sits on the home link: its br0 bridges the VM to it
    await bridge(hostA, "br0");
    await hostA.ip("link", "set", "eth0", "master", "br0");
    await hostA.ip("addr", "add", `${ADDR.hostA}/64`, "dev", "br0", "nodad");
    await hostA.ip("route", "add", "default", "via", ADDR.ha, "dev", "br0");
    // foreign links, routed by ha
    for (
      const [host, dev, coa, gw] of [
        [hostB, "fb", ADDR.coaB, ADDR.haB],
        [hostC, "fc", ADDR.coaC, ADDR.haC],
      ] as const
    ) {
      await lab.veth(ha, dev, host, "eth0");
      await ha.ip("addr", "add", `${gw}/64`, "dev", dev, "nodad");
      await host.ip("addr", "add", `${coa}/64`, "dev", "eth0", "nodad");
      await host.ip("route", "add", "default", "via", gw, "dev", "eth0");
      await bridge(host, "br0");
    }
    // the VM, plugged into host A
    await lab.veth(vm, "eth0", hostA, "vmport");
    await vm.ip("link", "set", "eth0", "down");
    await vm.ip("link", "set", "eth0", "address", ADDR.vmMac);
    await vm.ip("link", "set", "eth0", "up");
    await vm.ip("addr", "add", `${ADDR.hoa}/64`, "dev", "eth0", "nodad");
    await vm.ip("route", "add", "default", "via", ADDR.haLinkLocal, "dev", "eth0");
    await hostA.ip("link", "set", "vmport", "master", "br0");
    return this;
  }

  /**
   * "Migrates" the VM: its NIC's host end leaves the current host's bridge and
   * joins `to`'s br0, as a live migration moves a guest between hypervisors.
   */
  async moveVm(to: HostName): Promise<void> {
    if (to === this.vmHost) return;
    const from = this.hosts[this.vmHost];
    const dest = this.hosts[to];
    await from.ip("link", "set", "vmport", "netns", dest.name);
    await dest.ip("link", "set", "vmport", "master", "br0");
    await dest.ip("link", "set", "vmport", "up");
    this.vmHost = to;
  }

  /** `kagemusha ha` on the home agent, control socket and state under `dir`. */
  startHomeAgent(extra: string[] = []): LabProcess {
    return this.ha.spawn(kagemusha(
      "ha",
      "--interface",
      "home0",
      "--address",
      ADDR.ha,
      "--home-prefix",
      ADDR.homePrefix,
      "--control",
      `${this.dir}/ha.sock`,
      "--state-dir",
      `${this.dir}/ha-state`,
      ...extra,
    ));
  }

  /** `kagemusha mn` on `host` for the VM (tap kgm0 on the host's br0). */
  startMobileNode(host: HostName, extra: string[] = []): LabProcess {
    return this.hosts[host].spawn(kagemusha(
      "mn",
      "--interface",
      host === "hostA" ? "br0" : "eth0",
      "--home-agent",
      ADDR.ha,
      "--home-address",
      `${ADDR.hoa}/64`,
      "--vm-mac",
      ADDR.vmMac,
      "--tap",
      "kgm0",
      "--bridge",
      "br0",
      "--control",
      this.controlPath(host),
      "--state-dir",
      `${this.dir}/${host}-state`,
      ...extra,
    ));
  }

  /** Control socket of the mobile-node daemon on `host`. */
  controlPath(host: HostName): string {
    return `${this.dir}/${host}.sock`;
  }

  /** Stops every process and deletes every namespace and the scratch directory. */
  async close(): Promise<void> {
    await this.lab.close();
    if (this.dir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function bridge(ns: Netns, name: string): Promise<void> {
  // STP off and no multicast snooping: a hypervisor bridge that forwards at once
  // and floods ND multicast to the daemon's tap even though it never sends MLD.
  await ns.ip(
    "link",
    "add",
    name,
    "type",
    "bridge",
    "stp_state",
    "0",
    "forward_delay",
    "0",
    "mcast_snooping",
    "0",
  );
  await ns.ip("link", "set", name, "up");
}
