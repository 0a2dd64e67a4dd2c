/**
 * End-to-end test of both data paths together, in network namespaces:
 *
 * ```
 *  vm (HoA 2001:db8:2000::10/64, default via fe80::1)
 *   │ veth ── br0 ── tap kgmtap0 (MN data path, pseudo home network)
 *  mn (CoA 2001:db8:3000::3 on up0, link MTU 1500)
 *   │
 *  ha (2001:db8:3000::1 on up0; 2001:db8:2000::1 on home0; tun kgmha0 MTU 1460, HA data path)
 *   │ home0
 *  cn (2001:db8:2000::2)
 * ```
 *
 * The guest's traffic crosses a Linux bridge and a tap without IFF_VNET_HDR, so the frames the
 * MN data path reads must carry complete TCP/UDP checksums (DESIGN.md, last bullet of "Kernel
 * independence"): the TCP transfer below only completes if they do.
 *
 * @module
 */

import assert from "node:assert/strict";
import { needs } from "../helpers/env.ts";
import { Lab, type LabProcess, type Netns } from "../helpers/netns.ts";
import { command, readCounters, TempDir } from "./control.ts";
import { hex, udpPacket } from "./packets.ts";

const DENO = Deno.execPath();
const here = (f: string) => new URL(f, import.meta.url).pathname;

const HA = "2001:db8:2000::1";
const HA_UPLINK = "2001:db8:3000::1";
const CN = "2001:db8:2000::2";
const HOA = "2001:db8:2000::10";
const COA = "2001:db8:3000::3";
const VM_MAC = "52:54:00:00:00:10";
const ROUTER_MAC = "02:00:00:00:01:10";

interface FullLab {
  vm: Netns;
  mn: Netns;
  ha: Netns;
  cn: Netns;
  mnDriver: LabProcess;
  mnCtl: string;
  haDriver: LabProcess;
  haCtl: string;
}

async function build(lab: Lab, tmp: TempDir): Promise<FullLab> {
  const [vm, mn, ha, cn] = [
    await lab.netns("vm"),
    await lab.netns("mn"),
    await lab.netns("ha"),
    await lab.netns("cn"),
  ];
  await lab.veth(vm, "eth0", mn, "vmport");
  await lab.veth(mn, "up0", ha, "up0");
  await lab.veth(cn, "eth0", ha, "home0");

  await vm.ip("link", "set", "eth0", "address", VM_MAC);
  await vm.ip("addr", "add", `${HOA}/64`, "dev", "eth0");
  await vm.ip("-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0");

  await mn.ip("link", "add", "br0", "type", "bridge");
  await mn.sysctl("net.ipv6.conf.br0.disable_ipv6", 1);
  await mn.ip("link", "set", "vmport", "master", "br0");
  await mn.ip("link", "set", "br0", "up");
  await mn.ip("addr", "add", `${COA}/64`, "dev", "up0");
  await mn.ip("-6", "route", "add", "default", "via", HA_UPLINK);

  await ha.ip("addr", "add", `${HA_UPLINK}/64`, "dev", "up0");
  await ha.ip("addr", "add", `${HA}/64`, "dev", "home0");
  await ha.sysctl("net.ipv6.conf.all.forwarding", 1);
  await ha.sysctl("net.ipv6.conf.home0.proxy_ndp", 1);
  await ha.ip("-6", "neigh", "add", "proxy", HOA, "dev", "home0");

  await cn.ip("addr", "add", `${CN}/64`, "dev", "eth0");
  await cn.ip("-6", "route", "add", "default", "via", HA);

  const haCtl = tmp.file("ha-ctl");
  const haDriver = ha.spawn([
    DENO,
    "run",
    "-A",
    here("./ha_driver.ts"),
    JSON.stringify({
      tun: "kgmha0",
      haAddress: HA,
      mtu: 1500,
      bindings: [[HOA, COA]],
      control: haCtl,
    }),
  ]);
  const mnCtl = tmp.file("mn-ctl");
  const mnDriver = mn.spawn([
    DENO,
    "run",
    "-A",
    here("./mn_driver.ts"),
    JSON.stringify({
      vms: [{
        tap: "kgmtap0",
        homeAddress: HOA,
        prefixLength: 64,
        vmMac: VM_MAC,
        routerMac: ROUTER_MAC,
        routerLl: "fe80::1",
      }],
      careOf: COA,
      homeAgent: HA,
      linkMtu: 1500,
      control: mnCtl,
    }),
  ]);
  await haDriver.waitFor(/^READY$/m, 20_000);
  await mnDriver.waitFor(/^READY$/m, 20_000);
  // Home-link MTU 1500 → tun MTU 1460: the HA kernel answers oversize packets with PTB.
  await ha.ip("link", "set", "kgmha0", "mtu", "1460", "up");
  await ha.ip("-6", "route", "add", `${HOA}/128`, "dev", "kgmha0");
  await mn.ip("link", "set", "kgmtap0", "master", "br0");
  await mn.ip("link", "set", "kgmtap0", "up");
  return { vm, mn, ha, cn, mnDriver, mnCtl, haDriver, haCtl };
}

async function runTool(ns: Netns, cfg: unknown): Promise<string> {
  const r = await ns.exec([DENO, "run", "-A", here("./udp_tool.ts"), JSON.stringify(cfg)]);
  return r.stdout;
}

function delta(a: Record<string, number>, b: Record<string, number>, k: string): number {
  return b[k] - a[k];
}

Deno.test({
  name: "MN + HA data paths: guest behind bridge+tap reaches the cn through the tunnel",
  ignore: needs(["ip", "ping"], { root: true }),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using tmp = await TempDir.create();
    await using lab = new Lab();
    const L = await build(lab, tmp);
    const udpEcho = L.cn.spawn([
      DENO,
      "run",
      "-A",
      here("./udp_tool.ts"),
      JSON.stringify({
        mode: "echo",
        port: 7777,
      }),
    ]);
    const tcpEcho = L.cn.spawn([
      DENO,
      "run",
      "-A",
      here("./udp_tool.ts"),
      JSON.stringify({
        mode: "tcp-echo",
        port: 7778,
      }),
    ]);
    await udpEcho.waitFor(/^READY$/m, 20_000);
    await tcpEcho.waitFor(/^READY$/m, 20_000);

    await t.step(
      "ping: ND answered by the pseudo home network, echo through the tunnel",
      async () => {
        const r = await L.vm.exec(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", CN], {
          allowFail: true,
        });
        assert.match(r.stdout, /3 received/, r.stdout + r.stderr);
        const mn = await readCounters(L.mnDriver, L.mnCtl);
        assert.ok(mn.vm_replies >= 1, JSON.stringify(mn)); // the NA for the cn (or router)
        assert.ok(mn.tunnel_tx_packets >= 3);
        assert.ok(mn.tunnel_rx_packets >= 3);
      },
    );

    await t.step("integrity: UDP payloads 1..1452 (PTB, then fragments, above 1412)", async () => {
      const before = await readCounters(L.mnDriver, L.mnCtl);
      const out = await runTool(L.vm, { mode: "sweep", dst: CN, port: 7777, from: 1, to: 1452 });
      const m = out.match(/SWEEP (.*)/);
      assert.ok(m, out);
      assert.deepEqual(JSON.parse(m[1]), { ok: 1452, bad: [] });
      const after = await readCounters(L.mnDriver, L.mnCtl);
      // A 1500-byte packet exceeds 1500 − 40: the pseudo home network answered with a PTB.
      assert.ok(delta(before, after, "vm_too_big") >= 1, JSON.stringify(after));
      assert.equal(delta(before, after, "tunnel_malformed"), 0);
      assert.equal(delta(before, after, "tunnel_tx_errors"), 0);
    });

    await t.step("TCP through bridge + tap: checksums complete, 4 MiB echoed intact", async () => {
      const out = await runTool(L.vm, {
        mode: "tcp-client",
        dst: CN,
        port: 7778,
        bytes: 4 << 20,
      });
      const m = out.match(/TCP (.*)/);
      assert.ok(m, out);
      const r = JSON.parse(m[1]);
      assert.equal(r.got, 4 << 20);
      assert.equal(r.matched, 4 << 20);
      console.log(`TCP 4 MiB echo vm ⇄ cn through both data paths: ${r.ms} ms`);
    });

    await t.step("only the HA may send, only to an active VM's HoA", async () => {
      const listener = L.vm.spawn([
        DENO,
        "run",
        "-A",
        here("./udp_tool.ts"),
        JSON.stringify({
          mode: "listen",
          port: 4444,
        }),
      ]);
      await listener.waitFor(/^READY$/m, 20_000);
      const before = await readCounters(L.mnDriver, L.mnCtl);
      const inject = (bind: string, innerDst: string, tag: string) =>
        L.ha.exec([
          DENO,
          "run",
          "-A",
          here("./peer41.ts"),
          JSON.stringify({
            mode: "inject",
            bind,
            peer: COA,
            hex: hex(udpPacket(CN, innerDst, 5555, 4444, new TextEncoder().encode(tag))),
          }),
        ]);
      await inject(HA_UPLINK, HOA, "not-from-ha");
      await inject(HA, "2001:db8:2000::77", "no-such-vm");
      await inject(HA, HOA, "genuine");
      await listener.waitFor(/GOT \S+ 7 /, 5000);
      await new Promise((r) => setTimeout(r, 300));
      const after = await readCounters(L.mnDriver, L.mnCtl);
      const got = listener.stdout.split("\n").filter((l) => l.startsWith("GOT "));
      assert.deepEqual(got, [`GOT ${CN} 7 ${hex(new TextEncoder().encode("genuine"))}`]);
      assert.equal(delta(before, after, "tunnel_spoofed"), 1);
      assert.equal(delta(before, after, "tunnel_unknown"), 1);
      await listener.stop();
    });

    await t.step("setActive(false) stops tunnelling; setActive(true) resumes", async () => {
      await command(L.mnDriver, L.mnCtl, { cmd: "active", vm: 0, on: false });
      const before = await readCounters(L.mnDriver, L.mnCtl);
      const off = await L.vm.exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", CN], {
        allowFail: true,
      });
      assert.match(off.stdout, / 0 received/);
      const mid = await readCounters(L.mnDriver, L.mnCtl);
      assert.ok(delta(before, mid, "tunnel_tx_no_binding") >= 2);
      assert.equal(delta(before, mid, "tunnel_tx_packets"), 0);
      await command(L.mnDriver, L.mnCtl, { cmd: "active", vm: 0, on: true });
      const on = await L.vm.exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", CN], {
        allowFail: true,
      });
      assert.match(on.stdout, / 2 received/);
    });

    await t.step("stop both data paths cleanly", async () => {
      for (const d of [L.mnDriver, L.haDriver]) {
        const st = await d.stop("SIGTERM", 10_000);
        assert.equal(st.code, 0, d.stderr);
        assert.match(d.stdout, /^STOPPED in [\d.]+ ms$/m);
        assert.ok(!/DATAPATH-ERROR/.test(d.stdout), d.stdout);
      }
    });
  },
});
