/**
 * `kagemusha mn` with `kagemusha ha` (both from source, as the CLI contract says): a guest
 * behind the mobile node's tap reaches a correspondent on the home link through the tunnel,
 * with its home address, and large pings work after the guest learns the tunnel MTU.
 * (The migration scenarios are in the demo / e2e tests.)
 *
 * @module
 */

import assert from "node:assert/strict";
import { controlRequest } from "../../src/control/client.ts";
import { needs } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { CN, COA, haTopology, HOA, startHa } from "../ha/ha_lab.ts";
import { addGuest, mnCommand } from "./mn_lab.ts";

const ignore = needs(["ip", "ping"], { root: true });

Deno.test({
  name: "mn + kagemusha ha: guest pings the correspondent with its HoA through the tunnel",
  ignore,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    try {
      const guest = await addGuest(lab, t.mn);
      const ha = await startHa(t);
      const control = `${t.dir}/mn.sock`;
      const mn = t.mn.spawn(mnCommand({
        iface: "eth0",
        bridge: "kgbr0",
        control,
        stateDir: `${t.dir}/mn-state`,
        lifetime: 120,
      }));
      await mn.waitFor("mobile node ready", 20_000);
      await t.mn.ip("link", "set", "vmport", "master", "kgbr0");
      await t.mn.ip("link", "set", "vmport", "up");
      await guest.ip("link", "set", "eth0", "up");
      const deadline = Date.now() + 10_000;
      let st: { bindings: Array<{ state: string; careOfAddress: string }> };
      for (;;) {
        st = await controlRequest(control, "status") as typeof st;
        if (st.bindings[0].state === "registered") break;
        if (Date.now() > deadline) throw new Error(`${JSON.stringify(st)}\n${mn.stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(st.bindings[0].careOfAddress, COA);
      const haSt = await controlRequest(t.control, "status") as {
        bindings: Array<{ homeAddress: string; careOfAddress: string }>;
      };
      assert.deepEqual(
        haSt.bindings.map((b) => [b.homeAddress, b.careOfAddress]),
        [[HOA, COA]],
      );
      // Wait for the RA (default route via fe80::1), then ping the correspondent.
      for (let i = 0; i < 50; i++) {
        const r = await guest.exec(["ip", "-6", "route", "show", "default"]);
        if (r.stdout.includes("fe80::1")) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      const ping = await guest.exec(["ping", "-6", "-c", "5", "-i", "0.2", "-W", "2", CN], {
        allowFail: true,
      });
      assert.equal(ping.code, 0, `${ping.stdout}\n${mn.stderr}\n${ha.stderr}`);
      const rtt = /= [\d.]+\/([\d.]+)\//.exec(ping.stdout)?.[1];
      // A 1500-byte ping: the first one is answered by a PTB (MTU 1460), later ones fragment.
      await guest.exec(["ping", "-6", "-c", "1", "-W", "1", "-s", "1452", CN], {
        allowFail: true,
      });
      const big = await guest.exec([
        "ping",
        "-6",
        "-c",
        "3",
        "-i",
        "0.2",
        "-W",
        "2",
        "-s",
        "1452",
        CN,
      ], {
        allowFail: true,
      });
      assert.equal(big.code, 0, big.stdout);
      console.log(`guest → CN through mn + ha: avg RTT ${rtt} ms`);
      assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
    } finally {
      await Deno.remove(t.dir, { recursive: true }).catch(() => {});
    }
  },
});
