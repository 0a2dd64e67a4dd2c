/**
 * Returning home (RFC 6275 §11.5.4) against the scapy home agent: the daemon on the home host
 * stays quiet while the VM is home; after `handover` (the VM came back) it deregisters from the
 * home address, catches the BA addressed to the VM on the home link, and multicasts a Neighbor
 * Advertisement for the HoA with the VM's MAC (O=1).
 *
 * ```
 *  guest ns (HoA, VM MAC) ── vmport ┐
 *                                   brhome (hostA ns, 2001:db8:2000::5/64, made by the test)
 *  ha ns eth0 2001:db8:2000::1 ── uplink ┘   + the daemon's tap kgtap0 (kept down while home)
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { controlRequest } from "../../src/control/client.ts";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { HOA, homeLink, mnCommand, startScapyHa, VM_MAC } from "./mn_lab.ts";

const ignore = needs(["ip", "ping", PYTHON], { root: true });

interface Binding {
  state: string;
  reason: string;
  sequence: number;
  home: boolean;
  active: boolean;
  routerAdvertisements: number;
  nextRouterAdvertisement: number | null;
}

Deno.test({
  name:
    "returning home: quiet at home; handover → deregistration from the HoA, BA caught, NA (O=1)",
  ignore,
  async fn() {
    await using lab = new Lab();
    const dir = await Deno.makeTempDir({ prefix: "kgm-mn-home-" });
    try {
      // The bridge learns the VM's MAC on vmport: frames for it are no longer flooded.
      const { hostA, ha } = await homeLink(lab);
      const sha = await startScapyHa(ha, ["--home-mac", VM_MAC, "--watch-na", HOA]);
      const control = `${dir}/mn.sock`;
      const mn = hostA.spawn(
        mnCommand({ iface: "brhome", bridge: "brhome", control, stateDir: `${dir}/state` }),
      );
      await mn.waitFor("mobile node ready", 20_000);
      const binding = async () =>
        ((await controlRequest(control, "status")) as { bindings: Binding[] }).bindings[0];
      let b = await binding();
      assert.equal(b.state, "deregistered");
      assert.match(b.reason, /at home/);
      assert.equal(b.home, true);
      assert.equal(b.active, false);
      // No pseudo router at home: no periodic RAs (the real home router sends them).
      assert.equal(b.nextRouterAdvertisement, null);
      assert.equal(b.routerAdvertisements, 0);
      // The tap is on the home bridge but down: it must not answer ND on the real home link.
      const tap = JSON.parse((await hostA.exec(["ip", "-j", "link", "show", "kgtap0"])).stdout)[0];
      assert.equal(tap.master, "brhome");
      assert.ok(!(tap.flags as string[]).includes("UP"), JSON.stringify(tap.flags));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(sha.bus().length, 0, "no BU while at home");

      // The VM came back from a foreign host that exported sequence 700.
      const t0 = Date.now();
      await controlRequest(control, "handover", {
        bindings: [{ homeAddress: HOA, sequence: 700 }],
      });
      const [bu] = await sha.waitCount("bu", 1);
      assert.equal(bu.src, HOA, "sent from the home address");
      assert.equal((bu as { home?: boolean }).home, true, "no HAO");
      assert.equal(bu.hoa, HOA);
      assert.equal(bu.altcoa, HOA, "care-of address = home address");
      assert.equal(bu.lifetime, 0);
      assert.equal(bu.seq, 701);
      assert.deepEqual(bu.flags, { A: true, H: true, L: false, K: false });
      assert.equal(bu.checksum_ok, true);

      // The BA went to the VM's MAC; the daemon saw it on the home link.
      const deadline = Date.now() + 5000;
      while ((b = await binding()).state !== "deregistered" || !/acknowledged/.test(b.reason)) {
        if (Date.now() > deadline) throw new Error(`${JSON.stringify(b)}\n${mn.stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const deregMs = Date.now() - t0;
      assert.equal(b.sequence, 701);
      assert.equal(b.nextRouterAdvertisement, null);
      assert.equal(b.routerAdvertisements, 0);

      // NA for the HoA: from the VM's MAC, O=1, to all-nodes, three times.
      const nas = await sha.waitCount("na", 2, 5000);
      const na = nas[0] as unknown as Record<string, unknown>;
      assert.equal(na.target, HOA);
      assert.equal(na.src, HOA);
      assert.equal(na.dst, "ff02::1");
      assert.equal(na.O, true);
      assert.equal(na.S, false);
      assert.equal(na.R, false);
      assert.equal(na.tlla, VM_MAC);
      assert.equal(na.ethsrc, VM_MAC);
      assert.equal(na.ethdst, "33:33:00:00:00:01");
      console.log(`returning home: handover → BA caught in ${deregMs} ms`);

      assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
      const links = JSON.parse((await hostA.exec(["ip", "-j", "link", "show"])).stdout) as Array<
        { ifname: string }
      >;
      const names = links.map((l) => l.ifname);
      assert.ok(!names.includes("kgtap0"), "tap removed");
      assert.ok(names.includes("brhome"), "a bridge the daemon did not create is kept");
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
