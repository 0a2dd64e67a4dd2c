/**
 * `Rtnetlink.batch` (ffi/netlink.ts) against a real kernel in a lab namespace: a few hundred
 * routes and proxy entries in batches, one refused change in the middle that does not stop
 * the others, every effect checked with `ip -j`.
 *
 * This file is also the script run inside the namespace (import.meta.main): it applies the
 * batch given as JSON and prints, per change, null or the error's code and message.
 */

import assert from "node:assert/strict";
import { Rtnetlink, type RtnlChange } from "../../ffi/netlink.ts";
import { needs } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";

if (import.meta.main) {
  using nl = Rtnetlink.open();
  const changes: RtnlChange[] = JSON.parse(Deno.args[0]);
  const ifindex = nl.linkIndex("d0");
  const res = nl.batch(
    changes.map((c) =>
      "oif" in c ? { ...c, oif: ifindex } : "ifindex" in c ? { ...c, ifindex } : c
    ),
  );
  console.log(
    JSON.stringify(res.map((e) => e === null ? null : { code: e.code, message: e.message })),
  );
  Deno.exit(0);
}

const SELF = new URL(import.meta.url).pathname;

Deno.test({
  name: "Rtnetlink.batch in a namespace: 300 routes and proxies, a refused change in between",
  ignore: needs(["ip"], { root: true }),
  async fn() {
    await using lab = new Lab();
    const ns = await lab.netns("nlb");
    const peer = await lab.netns("nlp");
    await lab.veth(ns, "d0", peer, "d1");
    await ns.ip("link", "set", "d0", "up");
    const hoa = (i: number) => `2001:db8:2000::1:${i.toString(16)}`;
    const run = async (changes: RtnlChange[]) => {
      const r = await ns.exec([Deno.execPath(), "run", "-A", SELF, JSON.stringify(changes)]);
      return JSON.parse(r.stdout) as ({ code: string; message: string } | null)[];
    };
    const routes = Array.from({ length: 300 }, (_, i): RtnlChange => ({
      op: "addRoute",
      dst: hoa(i),
      prefixLength: 128,
      oif: 0,
      replace: true,
    }));
    const missing: RtnlChange = {
      op: "deleteRoute",
      dst: "2001:db8:9::1",
      prefixLength: 128,
      oif: 0,
    };
    const proxies = [0, 1, 2].map((i): RtnlChange => ({
      op: "addProxyNeighbor",
      addr: hoa(i),
      ifindex: 0,
    }));
    const res = await run([...routes.slice(0, 150), missing, ...routes.slice(150), ...proxies]);
    assert.equal(res.length, 304);
    assert.deepEqual(res.filter((r) => r !== null).length, 1);
    assert.equal(res[150]?.code, "ESRCH");
    assert.match(res[150]?.message ?? "", /RTM_DELROUTE 2001:db8:9::1\/128/);
    const shown = JSON.parse(
      (await ns.exec(["ip", "-j", "-6", "route", "show", "dev", "d0"])).stdout,
    );
    const dsts = new Set(shown.map((r: { dst: string }) => r.dst));
    for (let i = 0; i < 300; i++) assert.ok(dsts.has(hoa(i)), `route ${hoa(i)} missing`);
    const px = JSON.parse((await ns.exec(["ip", "-j", "-6", "neigh", "show", "proxy"])).stdout);
    assert.deepEqual(px.map((p: { dst: string }) => p.dst).sort(), [0, 1, 2].map(hoa).sort());

    // and all of it away again in one batch
    const undo = await run([
      ...routes.map((r): RtnlChange => ({
        op: "deleteRoute",
        dst: (r as { dst: string }).dst,
        prefixLength: 128,
        oif: 0,
      })),
      ...[0, 1, 2].map((i): RtnlChange => ({
        op: "deleteProxyNeighbor",
        addr: hoa(i),
        ifindex: 0,
      })),
    ]);
    assert.ok(undo.every((r) => r === null), JSON.stringify(undo.filter((r) => r !== null)));
    const after = JSON.parse(
      (await ns.exec(["ip", "-j", "-6", "route", "show", "dev", "d0"])).stdout,
    );
    assert.ok(after.every((r: { dst: string }) => !r.dst.startsWith("2001:db8:2000::1:")));
    assert.equal((await ns.exec(["ip", "-6", "neigh", "show", "proxy"])).stdout.trim(), "");
  },
});
