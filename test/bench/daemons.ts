/**
 * What the bench needs to know about the daemons' interfaces: the states in a `status` reply
 * and the `--config` of a mobile node serving many VMs.
 *
 * @module
 */
import { ADDR } from "../../src/demo/topology.ts";

/** States of the bindings in a `status` reply (each binding's `state`, else `status`). */
export function bindingStates(status: unknown): string[] {
  const b = (status as { bindings?: Record<string, unknown>[] } | null)?.bindings;
  if (!Array.isArray(b)) return [];
  return b.map((x) => String(x?.state ?? x?.status ?? "?"));
}

/**
 * The `--config` of a mobile node on a foreign link (interface eth0) serving `n` VMs: VM i
 * has home address 2001:db8:2000::(1000+i)/64 (hex), MAC 52:54:00:01:xx:yy (i in hex), tap
 * kgm<i> on bridge br0.
 */
export function manyVmConfig(
  n: number,
  opts: { control: string; stateDir: string },
): Record<string, unknown> {
  if (!Number.isInteger(n) || n < 1 || n > 0xefff) throw new RangeError(`VM count ${n}`);
  const vms = Array.from({ length: n }, (_, i) => {
    const mac = [i >> 8, i & 0xff].map((b) => b.toString(16).padStart(2, "0")).join(":");
    return {
      name: `vm${i}`,
      homeAddress: `2001:db8:2000::${(0x1000 + i).toString(16)}/64`,
      vmMac: `52:54:00:01:${mac}`,
      tap: `kgm${i}`,
      bridge: "br0",
    };
  });
  return {
    interface: "eth0",
    homeAgent: ADDR.ha,
    control: opts.control,
    stateDir: opts.stateDir,
    logLevel: "warning",
    vms,
  };
}
