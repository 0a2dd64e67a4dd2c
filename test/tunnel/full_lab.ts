/**
 * The namespaces of the MN + HA data-path tests:
 *
 * ```
 *  vm (HoA 2001:db8:2000::10/64, default via fe80::1)
 *   │ veth ── br0 ── tap kgmtap0 (MN data path, pseudo home network)
 *  mn (CoA 2001:db8:3000::3 on up0, link MTU 1500)
 *   │
 *  ha (2001:db8:3000::1 on up0; 2001:db8:2000::1 on home0; tun kgmha0 MTU 1460, HA data path)
 *   │ home0
 *  cn (2001:db8:2000::2)
 * ```
 *
 * `vnetHdr` opens the tap and the tun with IFF_VNET_HDR (the data paths then switch on
 * TUNSETOFFLOAD: 64 KB TCP segments in, coalesced segments out); without it the devices carry
 * plain frames and packets (the data paths' fallback).
 *
 * @module
 */

import { Lab, type LabProcess, type Netns } from "../helpers/netns.ts";
import type { TempDir } from "./control.ts";

const DENO = Deno.execPath();
const here = (f: string) => new URL(f, import.meta.url).pathname;

/** Addresses of the lab. */
export const ADDR = {
  ha: "2001:db8:2000::1",
  haUplink: "2001:db8:3000::1",
  cn: "2001:db8:2000::2",
  hoa: "2001:db8:2000::10",
  coa: "2001:db8:3000::3",
  vmMac: "52:54:00:00:00:10",
  routerMac: "02:00:00:00:01:10",
} as const;

/**
 * What the pseudo router advertises to the guest in these labs (not the defaults, so that a
 * test can tell the configuration reached the Worker that answers Router Solicitations).
 */
export const RA = { autonomous: true, mtu: 1400 } as const;

/** The built lab. */
export interface FullLab {
  vm: Netns;
  mn: Netns;
  ha: Netns;
  cn: Netns;
  mnDriver: LabProcess;
  mnCtl: string;
  haDriver: LabProcess;
  haCtl: string;
}

/** Builds the namespaces, starts both drivers and bridges/routes their devices. */
export async function buildFullLab(
  lab: Lab,
  tmp: TempDir,
  opts: { vnetHdr?: boolean; tag?: string; workers?: 1 | 2 } = {},
): Promise<FullLab> {
  const tag = opts.tag ?? "";
  const [vm, mn, ha, cn] = [
    await lab.netns(`vm${tag}`),
    await lab.netns(`mn${tag}`),
    await lab.netns(`ha${tag}`),
    await lab.netns(`cn${tag}`),
  ];
  await lab.veth(vm, "eth0", mn, "vmport");
  await lab.veth(mn, "up0", ha, "up0");
  await lab.veth(cn, "eth0", ha, "home0");

  await vm.ip("link", "set", "eth0", "address", ADDR.vmMac);
  await vm.ip("addr", "add", `${ADDR.hoa}/64`, "dev", "eth0");
  await vm.ip("-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0");
  // The guest's kernel neither solicits nor applies RAs: the advertised MTU (RA.mtu) would
  // change the PMTU the tests expect; a test reads the RA itself.
  await vm.sysctl("net.ipv6.conf.eth0.accept_ra", 0);

  await mn.ip("link", "add", "br0", "type", "bridge");
  await mn.sysctl("net.ipv6.conf.br0.disable_ipv6", 1);
  await mn.ip("link", "set", "vmport", "master", "br0");
  await mn.ip("link", "set", "br0", "up");
  await mn.ip("addr", "add", `${ADDR.coa}/64`, "dev", "up0");
  await mn.ip("-6", "route", "add", "default", "via", ADDR.haUplink);

  await ha.ip("addr", "add", `${ADDR.haUplink}/64`, "dev", "up0");
  await ha.ip("addr", "add", `${ADDR.ha}/64`, "dev", "home0");
  await ha.sysctl("net.ipv6.conf.all.forwarding", 1);
  await ha.sysctl("net.ipv6.conf.home0.proxy_ndp", 1);
  await ha.ip("-6", "neigh", "add", "proxy", ADDR.hoa, "dev", "home0");

  await cn.ip("addr", "add", `${ADDR.cn}/64`, "dev", "eth0");
  await cn.ip("-6", "route", "add", "default", "via", ADDR.ha);

  const vnetHdr = opts.vnetHdr ?? true;
  const haCtl = tmp.file(`ha-ctl${tag}`);
  const haDriver = ha.spawn([
    DENO,
    "run",
    "-A",
    here("./ha_driver.ts"),
    JSON.stringify({
      tun: "kgmha0",
      haAddress: ADDR.ha,
      mtu: 1500,
      bindings: [[ADDR.hoa, ADDR.coa]],
      control: haCtl,
      vnetHdr,
      workers: opts.workers,
    }),
  ]);
  const mnCtl = tmp.file(`mn-ctl${tag}`);
  const mnDriver = mn.spawn([
    DENO,
    "run",
    "-A",
    here("./mn_driver.ts"),
    JSON.stringify({
      vms: [{
        tap: "kgmtap0",
        homeAddress: ADDR.hoa,
        prefixLength: 64,
        vmMac: ADDR.vmMac,
        routerMac: ADDR.routerMac,
        routerLl: "fe80::1",
        ra: RA,
      }],
      careOf: ADDR.coa,
      homeAgent: ADDR.ha,
      linkMtu: 1500,
      control: mnCtl,
      vnetHdr,
      workers: opts.workers,
    }),
  ]);
  await haDriver.waitFor(/^READY$/m, 20_000);
  await mnDriver.waitFor(/^READY$/m, 20_000);
  // Home-link MTU 1500 → tun MTU 1460: the HA kernel answers oversize packets with PTB.
  await ha.ip("link", "set", "kgmha0", "mtu", "1460", "up");
  await ha.ip("-6", "route", "add", `${ADDR.hoa}/128`, "dev", "kgmha0");
  await mn.ip("link", "set", "kgmtap0", "master", "br0");
  await mn.ip("link", "set", "kgmtap0", "up");
  return { vm, mn, ha, cn, mnDriver, mnCtl, haDriver, haCtl };
}
