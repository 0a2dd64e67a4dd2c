/**
 * The tunnel received through a NIC that does GRO (on by default on real hardware): the kernel
 * merges consecutive tunnelled TCP segments (`ip6ip6_gro_receive`) before the raw socket sees
 * them, so the data paths get 64 KB inner packets with a partial checksum. Reproduced here on
 * the veth uplinks: GRO on, TSO off on the sender (veth only aggregates what it could not
 * offload), and threaded NAPI so that segments accumulate while a poll runs. A 4 MiB TCP echo
 * must still arrive intact, in both device modes, and the merged packets must have been seen.
 *
 * @module
 */

import assert from "node:assert/strict";
import { AF_INET6, SOCK_DGRAM } from "../../ffi/constants.ts";
import { check, libc } from "../../ffi/libc.ts";
import { openSocket } from "../../ffi/raw_socket.ts";
import { addressOf, encodeIfreq } from "../../ffi/structs.ts";
import { inNetns } from "../ffi/in_netns.ts";
import { needs } from "../helpers/env.ts";
import { Lab, type Netns } from "../helpers/netns.ts";
import { readCounters, TempDir } from "./control.ts";
import { ADDR, buildFullLab } from "./full_lab.ts";

const DENO = Deno.execPath();
const here = (f: string) => new URL(f, import.meta.url).pathname;

const SIOCETHTOOL = 0x8946n;
const ETHTOOL_STSO = 0x1f;
const ETHTOOL_SGRO = 0x2c;
const ETHTOOL_GGRO = 0x2b;

/** SIOCETHTOOL with a struct ethtool_value {cmd, data}; returns data after the call. */
function ethtool(ns: Netns, ifname: string, cmd: number, data: number): number {
  return inNetns(ns, () => {
    const fd = openSocket(AF_INET6, SOCK_DGRAM, 0, { label: "socket(ethtool)" });
    try {
      const ev = new Uint8Array(8);
      const dv = new DataView(ev.buffer);
      dv.setUint32(0, cmd, true);
      dv.setUint32(4, data, true);
      const ifr = encodeIfreq(ifname);
      new DataView(ifr.buffer).setBigUint64(16, BigInt(addressOf(ev)), true); // ifr_data
      check(`SIOCETHTOOL ${cmd} ${ifname}`, libc().ioctl(fd, SIOCETHTOOL, ifr));
      return dv.getUint32(4, true);
    } finally {
      libc().close(fd);
    }
  });
}

for (const vnetHdr of [false, true]) {
  Deno.test({
    name: `NIC GRO on the uplinks (${vnetHdr ? "offload" : "plain"} devices): TCP intact`,
    ignore: needs(["ip", "timeout"], { root: true }),
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await using tmp = await TempDir.create();
      await using lab = new Lab();
      const L = await buildFullLab(lab, tmp, { vnetHdr, tag: vnetHdr ? "o" : "p" });
      for (const ns of [L.mn, L.ha]) {
        ethtool(ns, "up0", ETHTOOL_STSO, 0);
        ethtool(ns, "up0", ETHTOOL_SGRO, 1);
        assert.equal(ethtool(ns, "up0", ETHTOOL_GGRO, 0), 1, "GRO on");
        await ns.exec(["sh", "-c", "echo 1 > /sys/class/net/up0/threaded"]);
      }
      const echo = L.cn.spawn([
        DENO,
        "run",
        "-A",
        here("./udp_tool.ts"),
        JSON.stringify({ mode: "tcp-echo", port: 7778 }),
      ]);
      await echo.waitFor(/^READY$/m, 20_000);
      const r = await L.vm.exec([
        "timeout",
        "30",
        DENO,
        "run",
        "-A",
        here("./udp_tool.ts"),
        JSON.stringify({ mode: "tcp-client", dst: ADDR.cn, port: 7778, bytes: 4 << 20 }),
      ]);
      const m = r.stdout.match(/TCP (.*)/);
      assert.ok(m, r.stdout + r.stderr);
      const res = JSON.parse(m[1]);
      assert.equal(res.got, 4 << 20);
      assert.equal(res.matched, 4 << 20);
      const mn = await readCounters(L.mnDriver, L.mnCtl);
      const ha = await readCounters(L.haDriver, L.haCtl);
      console.log(
        `4 MiB echo in ${res.ms} ms; NIC-merged packets received: MN ${mn.tunnel_rx_nic_gro}, ` +
          `HA ${ha.tunnel_rx_nic_gro}`,
      );
      assert.ok(mn.tunnel_rx_nic_gro + ha.tunnel_rx_nic_gro > 0, "GRO merged something");
      assert.equal(mn.tunnel_malformed + ha.tunnel_malformed, 0);
      await echo.stop();
    },
  });
}
