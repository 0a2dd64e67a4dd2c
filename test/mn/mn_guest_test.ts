/**
 * The pseudo home network as a real guest sees it: a guest namespace bridged to the daemon's
 * tap, registered through the scapy home agent. The guest's kernel does the Neighbor
 * Discovery, router discovery, DAD and path-MTU discovery; the test reads its state.
 *
 * @module
 */

import assert from "node:assert/strict";
import { controlRequest } from "../../src/control/client.ts";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { COA, ForeignHost, HA, HOA, ROUTER_MAC } from "./mn_lab.ts";

const ignore = needs(["ip", "ping", "tshark", PYTHON], { root: true });

async function until<T>(what: string, ms: number, fn: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | null = null;
  while (Date.now() < deadline) {
    last = await fn();
    if (last !== null) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

Deno.test({
  name:
    "guest behind the tap: NS for the router and home hosts answered with routerMac, RS → RA, " +
    "DAD unanswered, ping to the router, 1500-byte packet → PTB 1460, tunnel to the HA",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab, { guest: true });
    const g = fh.guest!;
    const pcap = `${fh.dir}/ha.pcap`;
    const tshark = fh.ha.spawn(["tshark", "-n", "-i", "eth0", "-w", pcap]);
    await tshark.waitFor("Capturing on", 15_000);
    await fh.startScapyHa();
    const mn = fh.startDaemon();
    await fh.waitBinding(mn, (b) => b?.state === "registered");
    // Plugged in after the registration: the RA it gets answers its own RS.
    await fh.plugGuest();

    // RS → RA: a default route via the router's link-local, learned from an RA.
    const route = await until("default route from an RA", 10_000, async () => {
      const r = await g.exec(["ip", "-6", "-j", "route", "show", "default"]);
      const routes = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
      return routes.find((x) => x.gateway === "fe80::1" && x.protocol === "ra") ?? null;
    });
    assert.equal(route.dev, "eth0");
    // The RA's prefix information made the home prefix on-link.
    const onlink = await g.exec(["ip", "-6", "-j", "route", "show", "2001:db8:2000::/64"]);
    assert.ok(onlink.stdout.includes("eth0"), onlink.stdout);

    // NS for the router (through ping) → NA with the router MAC; echo answered.
    const ping = await g.exec(["ping", "-6", "-c", "2", "-W", "2", "fe80::1%eth0"], {
      allowFail: true,
    });
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    const neigh = async (addr: string) => {
      const r = await g.exec(["ip", "-6", "-j", "neigh", "show", addr, "dev", "eth0"]);
      return (JSON.parse(r.stdout) as Array<Record<string, unknown>>)[0];
    };
    const nr = await neigh("fe80::1");
    assert.equal(nr.lladdr, ROUTER_MAC);
    assert.ok("router" in nr, JSON.stringify(nr));

    // NS for another home-prefix host → answered with the router MAC; the echo request then
    // goes into the tunnel (the scapy HA does not answer it).
    await g.exec(["ping", "-6", "-c", "1", "-W", "1", "2001:db8:2000::2"], { allowFail: true });
    const nh = await until("neighbour entry for 2001:db8:2000::2", 5000, async () => {
      const n = await neigh("2001:db8:2000::2");
      return n?.lladdr ? n : null;
    });
    assert.equal(nh.lladdr, ROUTER_MAC);

    // DAD of a new guest address is never answered: the address becomes usable.
    await g.sysctl("net.ipv6.conf.eth0.accept_dad", 1);
    await g.sysctl("net.ipv6.conf.eth0.dad_transmits", 1);
    await g.ip("addr", "add", "2001:db8:2000::77/64", "dev", "eth0");
    await until("DAD of 2001:db8:2000::77 done", 8000, async () => {
      const r = await g.exec(["ip", "-6", "-j", "addr", "show", "dev", "eth0"]);
      const info = JSON.parse(r.stdout)[0].addr_info as Array<Record<string, unknown>>;
      const a = info.find((x) => x.local === "2001:db8:2000::77");
      assert.ok(a, r.stdout);
      assert.ok(!a.dadfailed, "DAD probe was answered");
      return a.tentative ? null : a;
    });

    // A 1500-byte packet does not fit the tunnel: PTB with MTU 1460, from the router.
    await g.exec([
      "ping",
      "-6",
      "-c",
      "1",
      "-W",
      "1",
      "-s",
      "1452",
      "-M",
      "do",
      "-I",
      HOA,
      "2001:db8:5000::2",
    ], { allowFail: true });
    const rg = await until("PMTU 1460 learned by the guest", 5000, async () => {
      const r = await g.exec(["ip", "-6", "route", "get", "2001:db8:5000::2", "from", HOA]);
      return /mtu 1460/.test(r.stdout) ? r.stdout : null;
    });
    assert.match(rg, /mtu 1460/);

    const st = await fh.status();
    assert.ok(st.counters.vm_replies >= 3, JSON.stringify(st.counters));
    assert.ok(st.counters.vm_too_big >= 1, JSON.stringify(st.counters));
    assert.ok(st.counters.tunnel_tx_packets >= 1, JSON.stringify(st.counters));

    assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);
    await tshark.stop("SIGINT");
    // On the foreign link: the guest's echo request to ::2 inside IPv6-in-IPv6 CoA → HA.
    const r = await new Deno.Command("tshark", {
      args: [
        "-n",
        "-r",
        pcap,
        "-Y",
        "ipv6.nxt == 41 && icmpv6.type == 128",
        "-T",
        "fields",
        "-e",
        "ipv6.src",
        "-e",
        "ipv6.dst",
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
    assert.ok(
      lines.some((l) => l === `${COA},${HOA}\t${HA},2001:db8:2000::2`),
      lines.join("\n"),
    );
  },
});

interface RouteJson {
  gateway?: string;
  protocol?: string;
  expires?: number;
}

Deno.test({
  name: "periodic RAs keep a guest's short-lived default route (stop on export); RA contents " +
    "from `ra`: MTU option applied, A=0 → no SLAAC address, A=1 → one",
  ignore,
  async fn() {
    await using lab = new Lab();
    await using fh = await ForeignHost.create(lab, { guest: true });
    const g = fh.guest!;
    // A guest that would form SLAAC and temporary addresses from an A=1 prefix.
    await g.sysctl("net.ipv6.conf.eth0.autoconf", 1);
    await g.sysctl("net.ipv6.conf.eth0.use_tempaddr", 2);
    await fh.startScapyHa();
    // MaxRtrAdvInterval 2 s → Router Lifetime 3 × 2 = 6 s.
    const env = { KAGEMUSHA_MN_RA_INTERVAL: "1,2" };
    const cfg = `${fh.dir}/ra.json`;
    Deno.writeTextFileSync(cfg, JSON.stringify({ ra: { mtu: 1400 } }));
    const mn = fh.startDaemon(["--config", cfg], { env });
    await fh.waitBinding(mn, (b) => b?.state === "registered");
    await fh.plugGuest();

    const defaultRoute = async (): Promise<RouteJson | null> => {
      const r = await g.exec(["ip", "-6", "-j", "route", "show", "default"]);
      const routes = JSON.parse(r.stdout) as RouteJson[];
      // An expired route stays listed (negative `expires`) until the kernel's GC runs.
      return routes.find((x) =>
        x.gateway === "fe80::1" && x.protocol === "ra" && (x.expires === undefined || x.expires > 0)
      ) ?? null;
    };
    await until("default route from an RA", 10_000, defaultRoute);
    // 15 s = 2.5 router lifetimes: the route is there at every look, never with more than
    // 6 s left once the periodic RAs (lifetime 6 s) replaced the solicited one.
    const t0 = Date.now();
    let looks = 0;
    while (Date.now() - t0 < 15_000) {
      const r = await defaultRoute();
      assert.ok(r !== null, `default route lost after ${Date.now() - t0} ms`);
      if (Date.now() - t0 > 3000) {
        assert.ok(r.expires !== undefined && r.expires <= 6, JSON.stringify(r));
        looks++;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
    assert.ok(looks > 20);
    let st = await fh.status();
    const b = st.bindings[0] as unknown as Record<string, unknown>;
    assert.ok((b.routerAdvertisements as number) >= 8, JSON.stringify(b));
    assert.equal(st.counters.ra_errors, 0);

    // `ra.mtu` reached the guest (RFC 4861 §4.6.4); A=0: the HoA is its only home address.
    const mtu = await g.exec(["sysctl", "-n", "net.ipv6.conf.eth0.mtu"]);
    assert.equal(mtu.stdout.trim(), "1400");
    const homeAddrs = async () => {
      const r = await g.exec(["ip", "-6", "-j", "addr", "show", "dev", "eth0", "scope", "global"]);
      const info = JSON.parse(r.stdout)[0]?.addr_info as Array<{ local?: string }> ?? [];
      return info.map((a) => a.local ?? "").filter((a) => a.startsWith("2001:db8:2000:"));
    };
    assert.deepEqual(await homeAddrs(), [HOA]);

    // Exported (the VM left): no more RAs, so the 6 s route expires.
    await controlRequest(fh.control, "export", {});
    st = await fh.status();
    assert.equal(
      (st.bindings[0] as unknown as Record<string, unknown>).nextRouterAdvertisement,
      null,
    );
    const gone = Date.now();
    await until(
      "default route expired after export",
      12_000,
      async () => (await defaultRoute()) === null ? true : null,
    );
    assert.ok(Date.now() - gone <= 9000, `route outlived its 6 s lifetime by far`);
    assert.equal((await mn.stop("SIGTERM")).code, 0, mn.stderr);

    // Control: with `autonomous: true` the same guest does form SLAAC addresses, so the empty
    // result above is the RA's A=0 at work.
    Deno.writeTextFileSync(cfg, JSON.stringify({ ra: { autonomous: true } }));
    const mn2 = fh.startDaemon(["--config", cfg], { env });
    await fh.waitBinding(mn2, (b) => b?.state === "registered");
    await fh.plugGuest();
    // EUI-64 SLAAC address and a temporary one (use_tempaddr 2): what A=0 prevents.
    const slaac = await until("SLAAC + temporary address from an A=1 RA", 10_000, async () => {
      const a = await homeAddrs();
      return a.length >= 3 ? a : null;
    });
    assert.ok(slaac.includes("2001:db8:2000:0:5054:ff:fe00:10"), slaac.join(" "));
    assert.ok(slaac.includes(HOA), slaac.join(" "));
    assert.equal((await mn2.stop("SIGTERM")).code, 0, mn2.stderr);
  },
});
