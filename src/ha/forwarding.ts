/**
 * Which IPv6 forwarding sysctls the home agent changes, and how it puts them back (sans I/O:
 * the daemon reads and writes `/proc/sys` through ffi/netlink.ts).
 *
 * What Linux needs, measured (kernel 6.18, three namespaces A — R — B, `ping` A → B through R,
 * every combination of `net.ipv6.conf.{all,ra,rb}.forwarding` on R):
 *
 * - forwarding works exactly when `all/forwarding` is 1, whatever the per-interface values of
 *   the ingress and egress devices (all=1 with ra=rb=0 forwards; all=0 with ra=rb=1 does not):
 *   `ip6_forward()` tests `net->ipv6.devconf_all->forwarding`, not the ingress device's;
 * - writing `all/forwarding` also writes `default/forwarding` and every device's own
 *   `forwarding` (`addrconf_fixup_forwarding`), so a blind "restore all=0" also clears
 *   per-interface values someone else had set.
 *
 * So the home agent (which forwards between the home link, the tunnel device and wherever
 * packets for home addresses come from) must have all=1. To keep the rest of the host as it
 * was, after writing all=1 it writes every device's and `default`'s own value back (a device's
 * own `forwarding` decides its router behaviour: Router flag in its NAs, all-routers group,
 * `accept_ra` ignored at 1), and sets only the home interface's to 1 (the home agent is a
 * router on the home link, RFC 6275 §10). At stop it restores the snapshot taken before its
 * first change, exactly: all (which clears every device), then each device's and `default`'s
 * own value. The snapshot is kept in the state directory until then, so a run after a crash
 * restores what the host had before the crashed run, not what that run left behind.
 *
 * @module
 */

/** Forwarding values of one network namespace ("0"/"1" as /proc/sys has them). */
export interface ForwardingSnapshot {
  all: string;
  default: string;
  /** Device name → its own `forwarding`. */
  interfaces: Record<string, string>;
}

/** One sysctl write: key under /proc/sys, value. */
export type SysctlWrite = [key: string, value: string];

/** The sysctl key of `forwarding` for `dev` ("all", "default" or a device name). */
export function forwardingKey(dev: string): string {
  return `net/ipv6/conf/${dev}/forwarding`;
}

/**
 * The writes that turn `current` into "forwarding on, the home interface a router, every other
 * device as it was" (`apply`), and the writes that afterwards restore `original` (`undo`): the
 * snapshot taken before the first change, which after a crash is older than `current`.
 */
export function planForwarding(
  current: ForwardingSnapshot,
  original: ForwardingSnapshot,
  homeInterface: string,
): { apply: SysctlWrite[]; undo: SysctlWrite[] } {
  const apply: SysctlWrite[] = [];
  const after: ForwardingSnapshot = {
    all: current.all,
    default: current.default,
    interfaces: { ...current.interfaces },
  };
  if (current.all !== "1") {
    apply.push([forwardingKey("all"), "1"]);
    after.all = "1";
    // the kernel just set default and every device to 1: write back their own values
    if (current.default !== "1") apply.push([forwardingKey("default"), current.default]);
    for (const [dev, v] of Object.entries(current.interfaces)) {
      if (dev !== homeInterface && v !== "1") apply.push([forwardingKey(dev), v]);
    }
    for (const dev of Object.keys(after.interfaces)) after.interfaces[dev] = "1";
  }
  if (after.interfaces[homeInterface] !== "1") {
    apply.push([forwardingKey(homeInterface), "1"]);
  }
  after.interfaces[homeInterface] = "1";
  for (const [dev, v] of Object.entries(current.interfaces)) {
    if (dev !== homeInterface) after.interfaces[dev] = v;
  }
  after.default = current.default;

  const undo: SysctlWrite[] = [];
  let base = after;
  if (after.all !== original.all) {
    undo.push([forwardingKey("all"), original.all]);
    // every device and default now hold original.all
    const v = original.all;
    base = { all: v, default: v, interfaces: {} };
    for (const dev of Object.keys(after.interfaces)) base.interfaces[dev] = v;
  }
  if (base.default !== original.default) undo.push([forwardingKey("default"), original.default]);
  for (const [dev, v] of Object.entries(original.interfaces)) {
    // devices gone since the snapshot cannot be written; new ones keep what `all` gave them
    if (dev in base.interfaces && base.interfaces[dev] !== v) undo.push([forwardingKey(dev), v]);
  }
  return { apply, undo };
}

/** Reads a snapshot back from the state directory; null when absent or not of that shape. */
export function parseSnapshot(doc: unknown): ForwardingSnapshot | null {
  if (typeof doc !== "object" || doc === null) return null;
  const d = doc as Record<string, unknown>;
  const v = (x: unknown) => x === "0" || x === "1" || x === "2";
  if (!v(d.all) || !v(d.default)) return null;
  if (typeof d.interfaces !== "object" || d.interfaces === null) return null;
  const interfaces: Record<string, string> = {};
  for (const [k, x] of Object.entries(d.interfaces as Record<string, unknown>)) {
    if (!/^[A-Za-z0-9_.\-]{1,15}$/.test(k) || !v(x)) return null;
    interfaces[k] = x as string;
  }
  return { all: d.all as string, default: d.default as string, interfaces };
}
