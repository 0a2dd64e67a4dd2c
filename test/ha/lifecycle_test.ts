/**
 * Binding lifetimes and process lifetime of `kagemusha ha`: expiry removes the binding and its
 * kernel state on time; a restart with the state directory kept re-installs live bindings so
 * forwarding continues without a refresh (and the sequence number is remembered); SIGTERM
 * leaves no route, proxy entry, tun device or control socket behind (checked with `ip -j`).
 */

import assert from "node:assert/strict";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import {
  COA,
  eventually,
  exists,
  HA,
  haCommand,
  haStatus,
  type HaTopology,
  haTopology,
  HOA,
  kernelState,
  sendBu,
  startHa,
  TUN,
} from "./ha_lab.ts";
import { ScapyPeer } from "./peer.ts";

const ignore = needs(["ip", "ping", PYTHON], { root: true });

function bu(mn: ScapyPeer, seq: number, lifetime: number) {
  return sendBu<{ reply: { status: number; seq: number; lifetime: number } | null }>(mn, {
    seq,
    lifetime,
  });
}

async function assertClean(t: HaTopology, what: string): Promise<void> {
  const k = await kernelState(t.ha);
  assert.deepEqual(k.hoaRoutes, [], `${what}: routes left`);
  assert.deepEqual(k.proxies, [], `${what}: proxy entries left`);
  assert.ok(!k.links.includes(TUN), `${what}: ${TUN} left`);
  assert.equal(await exists(t.control), false, `${what}: control socket left`);
  // sysctls the HA changed are back to what they were (a fresh namespace: 0)
  for (
    const key of [
      "net.ipv6.conf.home0.proxy_ndp",
      "net.ipv6.conf.all.forwarding",
      "net.ipv6.conf.default.forwarding",
      "net.ipv6.conf.home0.forwarding",
      "net.ipv6.conf.fgn0.forwarding",
    ]
  ) {
    const v = (await t.ha.exec(["sysctl", "-n", key])).stdout.trim();
    assert.equal(v, "0", `${what}: ${key} = ${v}`);
  }
}

Deno.test({
  name: "ha e2e: a binding expires on time and its kernel state goes with it",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    const [ha, mn] = await Promise.all([
      startHa(t, ["--dad", "optimistic", "--max-lifetime", "4"]),
      ScapyPeer.start(t.mn),
    ]);
    await using _mn = mn;
    const t0 = Date.now();
    const r = await bu(mn, 9, 100);
    assert.equal(r.reply?.status, 0);
    assert.equal(r.reply?.lifetime, 1, "clamped to one 4-second unit");
    assert.equal((await kernelState(t.ha)).hoaRoutes.length, 1);
    const gone = await eventually(async () => (await haStatus(t)).bindings.length === 0, 8000);
    const elapsed = Date.now() - t0;
    assert.ok(gone, "binding did not expire");
    assert.ok(elapsed >= 3900, `expired after ${elapsed} ms, granted 4 s`);
    console.log(`binding granted 4 s expired after ${elapsed} ms`);
    const k = await kernelState(t.ha);
    assert.deepEqual(k.hoaRoutes, []);
    assert.deepEqual(k.proxies, []);
    assert.equal((await haStatus(t)).counters.bindings_expired, 1);
    assert.match(ha.stderr, /expired/);
    // after expiry the sequence number is forgotten: any sequence is a new registration
    assert.equal((await bu(mn, 1, 1)).reply?.status, 0);
    assert.equal((await ha.stop()).code, 0, ha.stderr);
    await assertClean(t, "after SIGTERM");
    await Deno.remove(t.dir, { recursive: true });
  },
});

Deno.test({
  name: "ha e2e: restart keeps forwarding from saved state; SIGTERM/SIGINT leave nothing behind",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    const [ha1, mn] = await Promise.all([
      startHa(t, ["--dad", "optimistic", "--max-lifetime", "120"]),
      ScapyPeer.start(t.mn),
    ]);
    await using _mn = mn;
    assert.equal((await bu(mn, 700, 30)).reply?.status, 0);
    // forwarding: `all` (what Linux tests), the home interface a router, the others untouched
    const sysctl = async (k: string) => (await t.ha.exec(["sysctl", "-n", k])).stdout.trim();
    assert.equal(await sysctl("net.ipv6.conf.all.forwarding"), "1");
    assert.equal(await sysctl("net.ipv6.conf.home0.forwarding"), "1");
    assert.equal(await sysctl("net.ipv6.conf.fgn0.forwarding"), "0");
    assert.equal(await sysctl("net.ipv6.conf.default.forwarding"), "0");
    const k1 = await kernelState(t.ha);
    assert.deepEqual(k1.hoaRoutes.map((r) => [r.dst, r.dev]), [[HOA, TUN]]);
    assert.ok(k1.links.includes(TUN));

    // SIGTERM: exit 0, every kernel object removed, the binding cache kept on disk.
    const st1 = await ha1.stop("SIGTERM");
    assert.equal(st1.code, 0, ha1.stderr);
    await assertClean(t, "after SIGTERM");
    const saved = JSON.parse(await Deno.readTextFile(`${t.stateDir}/ha-bindings.json`));
    assert.deepEqual(
      saved.bindings.map((b: { homeAddress: string; careOf: string; sequence: number }) => [
        b.homeAddress,
        b.careOf,
        b.sequence,
      ]),
      [[HOA, COA, 700]],
    );

    // Restart: the binding is back without any BU, and packets flow through the tunnel.
    const ha2 = await startHa(t, ["--dad", "optimistic", "--max-lifetime", "120"]);
    assert.match(ha2.stderr, /restored 2001:db8:2000::10/);
    const st = await haStatus(t);
    assert.equal(st.bindings.length, 1);
    assert.equal(st.bindings[0].sequence, 700);
    assert.equal(st.bindings[0].careOfAddress, COA);
    assert.ok(st.bindings[0].lifetimeRemaining > 20 && st.bindings[0].lifetimeRemaining <= 120);
    await mn.request("responder_start", { name: "echo", iface: "eth0", coa: COA, ha: HA });
    const ping = await t.cn.exec(["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", HOA], {
      allowFail: true,
    });
    const tun = await mn.request<{ requests: unknown[]; replies: number }>("responder_stop", {
      name: "echo",
    });
    assert.equal(ping.code, 0, `${ping.stdout}\n${ha2.stderr}`);
    assert.equal(tun.replies, 3);
    // the restored sequence number is enforced
    const stale = await bu(mn, 700, 30);
    assert.equal(stale.reply?.status, 135);
    assert.equal(stale.reply?.seq, 700);

    // SIGINT works the same way.
    const st2 = await ha2.stop("SIGINT");
    assert.equal(st2.code, 0, ha2.stderr);
    await assertClean(t, "after SIGINT");
    await Deno.remove(t.dir, { recursive: true });
  },
});

Deno.test({
  name: "ha e2e: a failed start exits 1 and undoes what it had set up",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    // no HA address configured: the daemon adds it itself (and must take it away again)
    await t.ha.ip("addr", "del", `${HA}/64`, "dev", "home0");
    const p = t.ha.spawn(haCommand({
      control: "/proc/kagemusha-nonexistent/ha.sock", // cannot be created: the last setup step fails
      stateDir: t.stateDir,
    }));
    const st = await p.done;
    assert.equal(st.code, 1, p.stderr);
    await p.waitFor(/failed to start/);
    await p.waitFor(/added 2001:db8:2000::1\/64 to home0/);
    const addrs = JSON.parse((await t.ha.exec(["ip", "-j", "-6", "addr", "show", "home0"])).stdout);
    const global = addrs[0].addr_info.filter((a: { scope: string }) => a.scope === "global");
    assert.deepEqual(global, [], "the HA address it added is removed");
    await assertClean(t, "after a failed start");
    await Deno.remove(t.dir, { recursive: true });
  },
});

Deno.test({
  name:
    "ha e2e: after a crash (SIGKILL) a restart drops expired bindings, stray routes and proxies, restores sysctls",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    const args = ["--dad", "optimistic", "--max-lifetime", "4"];
    const [ha1, mn] = await Promise.all([startHa(t, args), ScapyPeer.start(t.mn)]);
    await using _mn = mn;
    const t0 = Date.now();
    assert.equal((await bu(mn, 1, 100)).reply?.lifetime, 1);
    await new Promise((r) => setTimeout(r, 100)); // let the state write happen
    await ha1.stop("SIGKILL");
    // no cleanup ran, yet nothing is left: the route went with the tun device, and proxy ND
    // lives in the process
    const left = await kernelState(t.ha);
    assert.deepEqual(left.proxies, []);
    assert.deepEqual(left.hoaRoutes, []);
    assert.ok(!left.links.includes(TUN));
    // the crashed run left forwarding on
    const sysctl = async (k: string) => (await t.ha.exec(["sysctl", "-n", k])).stdout.trim();
    assert.equal(await sysctl("net.ipv6.conf.all.forwarding"), "1");
    // what an earlier version (kernel proxy entries) would have left behind
    await t.ha.ip("-6", "neigh", "add", "proxy", HOA, "dev", "home0");
    // a tunnel device that outlived the run (made persistent by another tool) with a route
    await t.ha.ip("tuntap", "add", "dev", TUN, "mode", "tun");
    await t.ha.ip("link", "set", TUN, "up");
    await t.ha.ip("-6", "route", "add", "2001:db8:2000::99/128", "dev", TUN);
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 4300 - Date.now())));
    const ha2 = await startHa(t, args);
    assert.match(ha2.stderr, /not restored: expired while stopped/);
    assert.match(ha2.stderr, /removed stale proxy entry for 2001:db8:2000::10/);
    assert.match(ha2.stderr, /removed 1 stray route\(s\) via kgm-ha0/);
    assert.match(ha2.stderr, /previous run did not restore the forwarding sysctls/);
    const k = await kernelState(t.ha);
    assert.deepEqual(k.proxies, []);
    assert.deepEqual(k.hoaRoutes, []);
    assert.equal((await haStatus(t)).bindings.length, 0);
    assert.equal((await ha2.stop()).code, 0, ha2.stderr);
    // the values from before the crashed run are back
    assert.equal(await sysctl("net.ipv6.conf.all.forwarding"), "0");
    assert.equal(await sysctl("net.ipv6.conf.home0.forwarding"), "0");
    assert.equal(await exists(`${t.stateDir}/ha-forwarding.json`), false);
    await t.ha.ip("tuntap", "del", "dev", TUN, "mode", "tun");
    await assertClean(t, "after the restart's SIGTERM");
    await Deno.remove(t.dir, { recursive: true });
  },
});
