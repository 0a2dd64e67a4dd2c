/**
 * Test driver: runs the HA data path in the current network namespace.
 *
 * `deno run -A ha_driver.ts '{"tun":"kgmha0","haAddress":"…","mtu":1500,"bindings":[[hoa,coa]],
 * "control":"/tmp/file","vnetHdr":true}'`: creates the tun (the test configures it with `ip`), starts the data
 * path, prints `READY`; then executes JSON commands appended to the control file, one per line,
 * printing `ACK <id>` after each: `{"id":1,"cmd":"set","inner":…,"outer":…}`,
 * `{"id":2,"cmd":"delete","inner":…}`, `{"id":3,"cmd":"counters"}` (prints
 * `COUNTERS <id> {json}` first). SIGTERM stops the data path, prints `FINAL {json}` and exits.
 *
 * @module
 */

import { TunTapDevice } from "../../ffi/tap.ts";
import { SharedCounters } from "../../src/tunnel/counters.ts";
import { startHaDatapath } from "../../src/tunnel/ha_datapath.ts";
import { TunnelTable } from "../../src/tunnel/table.ts";
import { followCommands } from "./control.ts";

const cfg = JSON.parse(Deno.args[0]) as {
  tun: string;
  haAddress: string;
  mtu: number;
  bindings: [string, string][];
  control: string;
  batch?: number;
  /** Open the tun with IFF_VNET_HDR (the data path then turns on offloads). */
  vnetHdr?: boolean;
  /** Data-path Workers: 1 (both directions in one, the default) or 2 (one per direction). */
  workers?: 1 | 2;
};

const tun = TunTapDevice.open(cfg.tun, { mode: "tun", vnetHdr: cfg.vnetHdr });
const table = new TunnelTable(64);
for (const [hoa, coa] of cfg.bindings) table.set(hoa, { outer: coa });
const counters = new SharedCounters();
const dp = await startHaDatapath({
  tunFd: tun.fd,
  haAddress: cfg.haAddress,
  table,
  counters,
  mtu: cfg.mtu,
  batch: cfg.batch,
  workers: cfg.workers,
});
console.log("READY");

const follower = followCommands(cfg.control, (c) => {
  if (c.cmd === "set") table.set(c.inner as string, { outer: c.outer as string });
  else if (c.cmd === "delete") table.delete(c.inner as string);
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
  tun.close();
  Deno.exit(0);
});
