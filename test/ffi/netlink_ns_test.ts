// Namespace tests of ffi/netlink.ts: Rtnetlink configures links, addresses,
// routes and neighbours inside a Lab namespace, and every effect is checked
// independently with iproute2's JSON output (`ip -j`).
//
// This file is also the script that runs inside the namespace: executed with
// `deno run -A netlink_ns_test.ts '<json ops>'` (import.meta.main), it applies
// each op `[method, ...args]` with one Rtnetlink socket and prints, as JSON,
// `{ ok: true, value }` or `{ ok: false, name, code, message }` per op.

import assert from "node:assert/strict";
import { readSysctl, Rtnetlink, writeSysctl } from "../../ffi/netlink.ts";
import { needs } from "../helpers/env.ts";
import { Lab, type Netns } from "../helpers/netns.ts";

type Op = [string, ...unknown[]];
type OpResult =
  | { ok: true; value: unknown }
  | { ok: false; name: string; code?: string; message: string };

function runOps(ops: Op[]): OpResult[] {
  using nl = Rtnetlink.open();
  const sysctl: Record<string, (...a: never[]) => unknown> = { readSysctl, writeSysctl };
  return ops.map(([method, ...args]) => {
    try {
      const fn = sysctl[method] ??
        (nl as unknown as Record<string, (...a: unknown[]) => unknown>)[method]?.bind(nl);
      if (typeof fn !== "function") throw new TypeError(`no such operation: ${method}`);
      return { ok: true, value: (fn as (...a: unknown[]) => unknown)(...args) ?? null };
    } catch (e) {
      const err = e as Error & { code?: string };
      return { ok: false, name: err.name, code: err.code, message: err.message };
    }
  });
}

if (import.meta.main) {
  console.log(JSON.stringify(runOps(JSON.parse(Deno.args[0]))));
  Deno.exit(0);
}

const SELF = new URL(import.meta.url).pathname;

/** Runs `ops` through Rtnetlink inside `ns`; returns one result per op. */
async function rtnl(ns: Netns, ...ops: Op[]): Promise<OpResult[]> {
  const r = await ns.exec([Deno.execPath(), "run", "-A", SELF, JSON.stringify(ops)]);
  return JSON.parse(r.stdout);
}

/** Like {@link rtnl} but every op must succeed; returns the values. */
async function rtnlOk(ns: Netns, ...ops: Op[]): Promise<unknown[]> {
  const res = await rtnl(ns, ...ops);
  res.forEach((r, i) => assert.ok(r.ok, `${JSON.stringify(ops[i])}: ${JSON.stringify(r)}`));
  return res.map((r) => (r as { value: unknown }).value);
}

// deno-lint-ignore no-explicit-any
type Json = any;

async function ipj(ns: Netns, ...args: string[]): Promise<Json> {
  const r = await ns.exec(["ip", "-j", ...args]);
  return JSON.parse(r.stdout || "[]");
}

const ignore = needs(["ip"], { root: true });

Deno.test({
  name: "Rtnetlink in a namespace: bridge, port, MTU/MAC/up, address, route, neighbours",
  ignore,
  async fn() {
    await using lab = new Lab();
    const h = await lab.netns("h");
    const p = await lab.netns("p");
    await lab.veth(h, "veth0", p, "veth1");

    const [brIndex, , , , , , , , , , links, addrs, proxyNdp] = await rtnlOk(
      h,
      ["createBridge", "br0"],
      ["setMaster", "veth0", "br0"],
      ["setMtu", "br0", 1400],
      ["setMac", "br0", "02:00:00:00:00:01"],
      ["setLinkUp", "br0", true],
      ["addAddress", "br0", "2001:db8:2000::1", 64, { nodad: true }],
      ["addRoute", "2001:db8::10", 128, { oif: "br0" }],
      ["addProxyNeighbor", "2001:db8:2000::10", "br0"],
      ["addNeighbor", "2001:db8:2000::20", "52:54:00:00:00:20", "br0"],
      ["writeSysctl", "net/ipv6/conf/br0/proxy_ndp", 1],
      ["getLinks"],
      ["getAddresses", "br0"],
      ["readSysctl", "net/ipv6/conf/br0/proxy_ndp"],
    ) as [number, ...Json[]];

    // the bridge: kind, forward delay 0, STP off, snooping off, MTU, MAC, up
    const [br] = await ipj(h, "-d", "link", "show", "br0");
    assert.equal(br.ifindex, brIndex);
    assert.equal(br.linkinfo.info_kind, "bridge");
    assert.equal(br.linkinfo.info_data.forward_delay, 0);
    assert.equal(br.linkinfo.info_data.stp_state, 0);
    assert.equal(br.linkinfo.info_data.mcast_snooping, 0);
    assert.equal(br.mtu, 1400);
    assert.equal(br.address, "02:00:00:00:00:01");
    assert.ok(br.flags.includes("UP"), `flags ${br.flags}`);
    // the port
    const [veth] = await ipj(h, "link", "show", "veth0");
    assert.equal(veth.master, "br0");

    // getLinks agrees with ip
    const all: Json[] = await ipj(h, "link", "show");
    assert.deepEqual(
      links.map((l: Json) => [l.index, l.name, l.mac, l.mtu, l.up, l.master ?? null])
        .sort(),
      all.map((l) => [
        l.ifindex,
        l.ifname,
        l.address,
        l.mtu,
        l.flags.includes("UP"),
        l.master ? all.find((m) => m.ifname === l.master).ifindex : null,
      ]).sort(),
    );

    // the address, with nodad, not tentative (ip -j leaves {} for entries its filter hides,
    // so list them all and filter here)
    const addrInfo = async (): Promise<Json[]> => {
      const [l] = await ipj(h, "-6", "addr", "show", "dev", "br0");
      return (l?.addr_info ?? []).filter((x: Json) => x.local);
    };
    const ipAddrs = await addrInfo();
    const info = ipAddrs.find((x) => x.local === "2001:db8:2000::1");
    assert.ok(info, JSON.stringify(ipAddrs));
    assert.equal(info.prefixlen, 64);
    assert.equal(info.scope, "global");
    assert.equal(info.nodad, true);
    assert.equal(info.tentative, undefined);
    // getAddresses agrees with ip: the global one plus the link-local one of br0
    assert.deepEqual(
      addrs.map((x: Json) => `${x.ifindex} ${x.address}/${x.prefixLength} ${x.scope}`).sort(),
      ipAddrs.map((x) => `${brIndex} ${x.local}/${x.prefixlen} ${x.scope}`).sort(),
    );
    assert.ok(addrs.some((x: Json) => x.address === "2001:db8:2000::1" && (x.flags & 0x02)));

    // the /128 route via the bridge
    const routes: Json[] = await ipj(h, "-6", "route", "show", "2001:db8::10/128");
    assert.equal(routes.length, 1);
    assert.equal(routes[0].dev, "br0");
    assert.equal(routes[0].protocol, "static");

    // the proxy entry, the permanent neighbour, proxy_ndp
    const proxies: Json[] = await ipj(h, "-6", "neigh", "show", "proxy", "dev", "br0");
    assert.deepEqual(proxies.map((n) => n.dst), ["2001:db8:2000::10"]);
    const neigh: Json[] = await ipj(h, "-6", "neigh", "show", "2001:db8:2000::20", "dev", "br0");
    assert.equal(neigh.length, 1);
    assert.equal(neigh[0].lladdr, "52:54:00:00:00:20");
    assert.deepEqual(neigh[0].state, ["PERMANENT"]);
    assert.equal(proxyNdp, "1");
    const sysctl = await h.exec(["sysctl", "-n", "net.ipv6.conf.br0.proxy_ndp"]);
    assert.equal(sysctl.stdout.trim(), "1");

    // undo everything, one object at a time
    await rtnlOk(
      h,
      ["deleteProxyNeighbor", "2001:db8:2000::10", "br0"],
      ["deleteNeighbor", "2001:db8:2000::20", "br0"],
      ["deleteRoute", "2001:db8::10", 128, { oif: "br0" }],
      ["deleteAddress", "br0", "2001:db8:2000::1", 64],
      ["setMaster", "veth0", null],
      ["setLinkUp", "br0", false],
    );
    assert.deepEqual(await ipj(h, "-6", "neigh", "show", "proxy", "dev", "br0"), []);
    const after: Json[] = await ipj(h, "-6", "neigh", "show", "2001:db8:2000::20", "dev", "br0");
    assert.ok(after.every((n) => !n.state?.includes("PERMANENT")), JSON.stringify(after));
    assert.deepEqual(await ipj(h, "-6", "route", "show", "2001:db8::10/128"), []);
    assert.ok(!(await addrInfo()).some((x) => x.local === "2001:db8:2000::1"));
    const [veth2] = await ipj(h, "link", "show", "veth0");
    assert.equal(veth2.master, undefined);
    const [br2] = await ipj(h, "link", "show", "br0");
    assert.ok(!br2.flags.includes("UP"));

    await rtnlOk(h, ["deleteLink", "br0"]);
    const gone = await h.exec(["ip", "link", "show", "br0"], { allowFail: true });
    assert.notEqual(gone.code, 0);
  },
});

Deno.test({
  name: "Rtnetlink in a namespace: errors name the request and its object",
  ignore,
  async fn() {
    await using lab = new Lab();
    const h = await lab.netns("h");
    const p = await lab.netns("p");
    await lab.veth(h, "veth0", p, "veth1");
    const res = await rtnl(
      h,
      ["addRoute", "2001:db8::10", 128, { oif: "veth0" }],
      ["addRoute", "2001:db8::10", 128, { oif: "veth0" }],
      ["linkIndex", "nosuch0"],
      ["setMtu", "nosuch0", 1400],
      ["addRoute", "2001:db8::11", 128, { oif: "nosuch0" }],
      ["createBridge", "br0"],
      ["createBridge", "br0"],
      ["deleteProxyNeighbor", "2001:db8::5", "veth0"],
      ["deleteRoute", "2001:db8::99", 128],
      ["writeSysctl", "net/ipv6/conf/nosuch0/proxy_ndp", 1],
      ["addRoute", "2001:db8::10", 128, { oif: "veth0", replace: true, metric: 1024 }],
      ["linkIndex", "veth0"],
    );
    const err = (i: number) => {
      const r = res[i];
      assert.ok(!r.ok, `op ${i} should fail: ${JSON.stringify(r)}`);
      return r;
    };
    assert.ok(res[0].ok);
    assert.equal(err(1).message, "RTM_NEWROUTE 2001:db8::10/128: EEXIST (File exists)");
    assert.equal(err(1).code, "EEXIST");
    assert.equal(err(1).name, "NetlinkError");
    assert.equal(err(2).message, "RTM_GETLINK nosuch0: ENODEV (No such device)");
    assert.equal(err(3).message, "RTM_NEWLINK nosuch0 mtu 1400: ENODEV (No such device)");
    assert.equal(err(4).message, "RTM_GETLINK nosuch0: ENODEV (No such device)");
    assert.ok(res[5].ok);
    assert.match(err(6).message, /^RTM_NEWLINK br0 type bridge: EEXIST \(File exists\)/);
    assert.match(
      err(7).message,
      /^RTM_DELNEIGH proxy 2001:db8::5 ifindex \d+: ENOENT \(No such file or directory\)/,
    );
    assert.match(err(8).message, /^RTM_DELROUTE 2001:db8::99\/128: ESRCH \(No such process\)/);
    assert.equal(err(9).code, "ENOENT");
    assert.match(err(9).message, /^sysctl net\/ipv6\/conf\/nosuch0\/proxy_ndp: ENOENT/);
    // the socket stayed usable after the errors: replace succeeded, lookups work
    assert.ok(res[10].ok, JSON.stringify(res[10]));
    const [veth] = await ipj(h, "link", "show", "veth0");
    assert.deepEqual(res[11], { ok: true, value: veth.ifindex });
    const routes: Json[] = await ipj(h, "-6", "route", "show", "2001:db8::10/128");
    assert.equal(routes.length, 1);
  },
});

Deno.test({
  name: "Rtnetlink in a namespace: a new bridge forwards between its ports at once",
  ignore: ignore || needs(["ping"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const h = await lab.netns("h");
    const a = await lab.netns("a");
    const b = await lab.netns("b");
    await lab.veth(h, "pa", a, "eth0");
    await lab.veth(h, "pb", b, "eth0");
    await a.ip("addr", "add", "2001:db8:5::a/64", "dev", "eth0", "nodad");
    await b.ip("addr", "add", "2001:db8:5::b/64", "dev", "eth0", "nodad");
    const t0 = performance.now();
    await rtnlOk(
      h,
      ["createBridge", "br0"],
      ["setMaster", "pa", "br0"],
      ["setMaster", "pb", "br0"],
      ["setLinkUp", "br0", true],
    );
    // STP off: ports go straight to forwarding (forward_delay 0, checked above with
    // ip -d, is what keeps that so should STP be switched on later)
    const ping = await a.exec(["ping", "-6", "-c", "1", "-W", "3", "2001:db8:5::b"], {
      allowFail: true,
    });
    const ms = performance.now() - t0;
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.ok(ms < 10_000, `took ${ms} ms`);
    const ports: Json[] = await ipj(h, "-d", "link", "show", "master", "br0");
    assert.deepEqual(
      ports.map((l) => [l.ifname, l.linkinfo.info_slave_data.state]).sort(),
      [["pa", "forwarding"], ["pb", "forwarding"]],
    );
  },
});
