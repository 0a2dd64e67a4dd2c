/**
 * Home agent test topology in lab namespaces:
 *
 * ```
 *  cn (2001:db8:2000::2) ── home link 2001:db8:2000::/64 ── ha (2001:db8:2000::1, home0)
 *                                                            │ fgn0 2001:db8:3000::1
 *  mn (CoA 2001:db8:3000::3) ── foreign link 2001:db8:3000::/64
 * ```
 *
 * The home agent runs from source in `ha` exactly as the CLI contract says
 * (`deno run -A mod.ts ha …`); `mn` and `cn` host scapy peers.
 *
 * @module
 */

import { controlRequest } from "../../src/control/client.ts";
import { type Lab, type LabProcess, type Netns, run } from "../helpers/netns.ts";
import type { ScapyPeer } from "./peer.ts";

export const HA = "2001:db8:2000::1";
export const CN = "2001:db8:2000::2";
export const HOA = "2001:db8:2000::10";
export const HA_FGN = "2001:db8:3000::1";
export const COA = "2001:db8:3000::3";
export const PREFIX = "2001:db8:2000::/64";
export const TUN = "kgm-ha0";

const MOD = new URL("../../mod.ts", import.meta.url).pathname;

/** The three namespaces and the MACs the tests check against. */
export interface HaTopology {
  ha: Netns;
  cn: Netns;
  mn: Netns;
  /** MAC of the HA's home-link interface (what proxy ND must answer with). */
  haMac: string;
  cnMac: string;
  /** Directory for control socket and state (removed by the caller). */
  dir: string;
  control: string;
  stateDir: string;
}

async function mac(ns: Netns, ifname: string): Promise<string> {
  const r = await ns.exec(["ip", "-j", "link", "show", ifname]);
  return JSON.parse(r.stdout)[0].address;
}

/** Builds the topology (addresses configured as an operator would, HA as home router). */
export async function haTopology(lab: Lab): Promise<HaTopology> {
  const [ha, cn, mn] = await Promise.all([lab.netns("ha"), lab.netns("cn"), lab.netns("mn")]);
  await lab.veth(ha, "home0", cn, "eth0");
  await lab.veth(ha, "fgn0", mn, "eth0");
  await ha.ip("addr", "add", `${HA}/64`, "dev", "home0", "nodad");
  await ha.ip("addr", "add", `${HA_FGN}/64`, "dev", "fgn0", "nodad");
  await cn.ip("addr", "add", `${CN}/64`, "dev", "eth0", "nodad");
  await cn.ip("-6", "route", "add", "default", "via", HA, "dev", "eth0");
  await mn.ip("addr", "add", `${COA}/64`, "dev", "eth0", "nodad");
  await mn.ip("-6", "route", "add", "default", "via", HA_FGN, "dev", "eth0");
  const dir = await Deno.makeTempDir({ prefix: "kgm-ha-test-" });
  return {
    ha,
    cn,
    mn,
    haMac: await mac(ha, "home0"),
    cnMac: await mac(cn, "eth0"),
    dir,
    control: `${dir}/ha.sock`,
    stateDir: `${dir}/state`,
  };
}

/**
 * `deno run -A [denoFlags] mod.ts ha` on home0 with the reference HA address and home prefix,
 * `control` and `stateDir`, then `flags`.
 */
export function haCommand(
  o: { control: string; stateDir: string; denoFlags?: string[] },
  ...flags: string[]
): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    ...(o.denoFlags ?? []),
    MOD,
    "ha",
    "--interface",
    "home0",
    "--address",
    HA,
    "--home-prefix",
    PREFIX,
    "--control",
    o.control,
    "--state-dir",
    o.stateDir,
    ...flags,
  ];
}

/** Starts `kagemusha ha` in the `ha` namespace and waits for its ready line. */
export async function startHa(
  t: HaTopology,
  extra: string[] = [],
): Promise<LabProcess> {
  const p = t.ha.spawn(haCommand(t, "--log-level", "debug", ...extra));
  await p.waitFor("home agent ready", 20_000);
  return p;
}

/**
 * The scapy peer's `bu` request for the reference registration (RFC 6275 §11.7.1: from the CoA
 * on eth0 to the HA, HAO with the HoA, Alternate Care-of Address = CoA), with `args` added
 * (and overriding those).
 */
export function sendBu<T = Record<string, unknown>>(
  peer: ScapyPeer,
  args: Record<string, unknown>,
): Promise<T> {
  return peer.request<T>("bu", {
    iface: "eth0",
    coa: COA,
    ha: HA,
    hoa: HOA,
    alt_coa: COA,
    ...args,
  });
}

/** A binding as `status --json` reports it. */
export interface BindingJson {
  homeAddress: string;
  careOfAddress: string;
  sequence: number;
  lifetimeRemaining: number;
  state: string;
}

/** The control socket's `status`. */
export async function haStatus(
  t: HaTopology,
): Promise<{ role: string; bindings: BindingJson[]; counters: Record<string, number> }> {
  return await controlRequest(t.control, "status") as {
    role: string;
    bindings: BindingJson[];
    counters: Record<string, number>;
  };
}

/** Routes, proxy entries and links in the HA namespace, read with `ip -j`. */
export async function kernelState(ns: Netns): Promise<{
  hoaRoutes: { dst: string; dev: string }[];
  proxies: { dst: string; dev: string }[];
  links: string[];
}> {
  const j = async (...args: string[]) => {
    const r = await run(["ip", "-n", ns.name, "-j", ...args]);
    return r.stdout.trim() === "" ? [] : JSON.parse(r.stdout);
  };
  const routes = await j("-6", "route", "show");
  const proxies = await j("-6", "neigh", "show", "proxy");
  const links = await j("link", "show");
  return {
    hoaRoutes: routes.filter((r: { dst: string }) =>
      r.dst.startsWith("2001:db8:2000::") && r.dst !== "2001:db8:2000::/64"
    ),
    proxies,
    links: links.map((l: { ifname: string }) => l.ifname),
  };
}

/** Polls `cond` every 100 ms until it holds or `ms` passed; returns whether it held. */
export async function eventually(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Does `path` exist? */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
