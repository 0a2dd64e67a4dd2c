/**
 * Test driver: runs the MN data path in the current network namespace.
 *
 * `deno run -A mn_driver.ts '{"vms":[{"tap":"kgmtap0","homeAddress":…,"prefixLength":64,
 * "vmMac":…,"routerMac":…,"routerLl":"fe80::1","active":true}],"careOf":…,"homeAgent":…,
 * "linkMtu":1500,"control":"/tmp/file","vnetHdr":true}'`: creates the taps (the test bridges them with `ip`),
 * starts the data path, prints `READY`; control commands (see control.ts):
 * `{"cmd":"active","vm":0,"on":false}`, `{"cmd":"careOf","addr":…}`,
 * `{"cmd":"homeAgent","addr":…}`, `{"cmd":"counters"}`. SIGTERM stops it and prints `FINAL`.
 *
 * @module
 */

import { TunTapDevice } from "../../ffi/tap.ts";
import type { RaOptions } from "../../src/mn/pseudo_home.ts";
import { SharedCounters } from "../../src/tunnel/counters.ts";
import { startMnDatapath } from "../../src/tunnel/mn_datapath.ts";
import { followCommands } from "./control.ts";

const cfg = JSON.parse(Deno.args[0]) as {
  vms: Array<{
    tap: string;
    homeAddress: string;
    prefixLength: number;
    vmMac: string;
    routerMac: string;
    routerLl: string;
    /** Router Advertisement contents (RaOptions of src/mn/pseudo_home.ts). */
    ra?: RaOptions;
    active?: boolean;
  }>;
  careOf: string;
  homeAgent: string;
  linkMtu: number;
  control: string;
  /** Open the taps with IFF_VNET_HDR (the data path then turns on offloads). */
  vnetHdr?: boolean;
  /** Data-path Workers: 1 (both directions in one, the default) or 2 (one per direction). */
  workers?: 1 | 2;
};

const taps = cfg.vms.map((v) => TunTapDevice.open(v.tap, { mode: "tap", vnetHdr: cfg.vnetHdr }));
const counters = new SharedCounters();
const dp = await startMnDatapath({
  vms: cfg.vms.map((v, i) => ({ ...v, tapFd: taps[i].fd })),
  careOf: cfg.careOf,
  homeAgent: cfg.homeAgent,
  counters,
  linkMtu: cfg.linkMtu,
  workers: cfg.workers,
});
cfg.vms.forEach((v, i) => dp.setActive(i, v.active ?? true));
console.log("READY");

const follower = followCommands(cfg.control, (c) => {
  if (c.cmd === "active") dp.setActive(c.vm as number, c.on as boolean);
  else if (c.cmd === "careOf") dp.setCareOf(c.addr as string);
  else if (c.cmd === "homeAgent") dp.setHomeAgent(c.addr as string);
  else if (c.cmd === "counters") console.log(`COUNTERS ${c.id} ${JSON.stringify(dp.counters())}`);
});

dp.done.then((err) => {
  if (err !== null) console.log(`DATAPATH-ERROR ${err}`);
});

Deno.addSignalListener("SIGTERM", async () => {
  follower.stop();
  const t0 = performance.now();
  await dp.stop();
  console.log(`STOPPED in ${(performance.now() - t0).toFixed(1)} ms`);
  console.log(`FINAL ${JSON.stringify(dp.counters())}`);
  for (const t of taps) t.close();
  Deno.exit(0);
});
