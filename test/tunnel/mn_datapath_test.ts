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
 * Run twice: with the tap and the tun opened plainly, the frames the MN data path reads carry
 * complete TCP/UDP checksums (DESIGN.md, last bullet of "Kernel independence"); with
 * IFF_VNET_HDR and offloads, they arrive with partial checksums and as 64 KB TCP super-frames
 * that the data paths must finish and split, and received segments are merged into GSO writes.
 * The TCP transfer below only completes if all of that is right.
 *
 * @module
 */

import assert from "node:assert/strict";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab, type Netns } from "../helpers/netns.ts";
import { command, readCounters, TempDir } from "./control.ts";
import { ADDR, buildFullLab, RA } from "./full_lab.ts";
import { hex, udpPacket } from "./packets.ts";

const DENO = Deno.execPath();
const here = (f: string) => new URL(f, import.meta.url).pathname;

const HA = ADDR.ha;
const HA_UPLINK = ADDR.haUplink;
const CN = ADDR.cn;
const HOA = ADDR.hoa;
const COA = ADDR.coa;

async function runTool(ns: Netns, cfg: unknown): Promise<string> {
  const r = await ns.exec([DENO, "run", "-A", here("./udp_tool.ts"), JSON.stringify(cfg)]);
  return r.stdout;
}

function delta(a: Record<string, number>, b: Record<string, number>, k: string): number {
  return b[k] - a[k];
}

// Plain devices with a Worker per direction; offload devices (what the daemons open) with one
// Worker for both (the default) and with a Worker per direction (`--datapath-workers 2`).
for (const [vnetHdr, workers] of [[false, 2], [true, 1], [true, 2]] as const) {
  const mode = `${vnetHdr ? "offload (IFF_VNET_HDR)" : "plain"}, ${workers} Worker(s) per side`;
  Deno.test({
    name: `MN + HA data paths, ${mode}: guest behind bridge+tap reaches the cn through the tunnel`,
    ignore: needs(["ip", "ping", PYTHON], { root: true }),
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      await using tmp = await TempDir.create();
      await using lab = new Lab();
      const L = await buildFullLab(lab, tmp, { vnetHdr, workers });
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

      await t.step(
        "integrity: UDP payloads 1..1452 (PTB, then fragments, above 1412)",
        async () => {
          const before = await readCounters(L.mnDriver, L.mnCtl);
          const out = await runTool(L.vm, {
            mode: "sweep",
            dst: CN,
            port: 7777,
            from: 1,
            to: 1452,
          });
          const m = out.match(/SWEEP (.*)/);
          assert.ok(m, out);
          assert.deepEqual(JSON.parse(m[1]), { ok: 1452, bad: [] });
          const after = await readCounters(L.mnDriver, L.mnCtl);
          // A 1500-byte packet exceeds 1500 − 40: the pseudo home network answered with a PTB.
          assert.ok(delta(before, after, "vm_too_big") >= 1, JSON.stringify(after));
          assert.equal(delta(before, after, "tunnel_malformed"), 0);
          assert.equal(delta(before, after, "tunnel_tx_errors"), 0);
        },
      );

      await t.step(
        "TCP through bridge + tap: checksums complete, 4 MiB echoed intact",
        async () => {
          // Forget the PMTU the sweep taught the guest (and the cn, which would advertise an
          // MSS that fits): the guest's first TCP segments (MSS 1440, in 64 KB super-frames with
          // offloads) exceed the tunnel and must draw a Packet Too Big.
          await L.vm.ip("-6", "route", "flush", "cache");
          await L.cn.ip("-6", "route", "flush", "cache");
          const route = await L.vm.ip("-6", "route", "get", CN);
          assert.doesNotMatch(route.stdout, /mtu 1460/, route.stdout);
          const mn0 = await readCounters(L.mnDriver, L.mnCtl);
          const ha0 = await readCounters(L.haDriver, L.haCtl);
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
          console.log(`TCP 4 MiB echo vm ⇄ cn through both data paths (${mode}): ${r.ms} ms`);
          const mn = await readCounters(L.mnDriver, L.mnCtl);
          const ha = await readCounters(L.haDriver, L.haCtl);
          const moved = (a: Record<string, number>, b: Record<string, number>, k: string) =>
            delta(a, b, k) > 0;
          // Offloads: 64 KB super-frames were split on both sides and segments merged on both.
          for (const k of ["tunnel_tx_gso_split", "tunnel_rx_coalesced"]) {
            assert.equal(moved(mn0, mn, k), vnetHdr, `MN ${k}: ${JSON.stringify(mn)}`);
            assert.equal(moved(ha0, ha, k), vnetHdr, `HA ${k}: ${JSON.stringify(ha)}`);
          }
          assert.equal(delta(mn0, mn, "tunnel_malformed") + delta(ha0, ha, "tunnel_malformed"), 0);
          assert.ok(
            delta(mn0, mn, "vm_too_big") >= 1,
            `PTB for 1500-byte segments: ${mn.vm_too_big}`,
          );
        },
      );

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

      await t.step("frames not relayed are counted per reason (vm_drop_*)", async () => {
        const before = await readCounters(L.mnDriver, L.mnCtl);
        const r = await L.vm.exec([
          PYTHON,
          here("./guest_frames.py"),
          "eth0",
          ADDR.vmMac,
          "unrelayed",
        ]);
        assert.match(r.stdout, /^SENT 3$/m, r.stderr);
        await new Promise((r) => setTimeout(r, 200));
        const after = await readCounters(L.mnDriver, L.mnCtl);
        // The DHCPv6 Solicit; the IPv4 datagram and the ARP request (scapy's own MLD or ND
        // may add to other reasons).
        assert.ok(delta(before, after, "vm_drop_dhcpv6") >= 1, JSON.stringify(after));
        assert.ok(delta(before, after, "vm_drop_ipv4") >= 2, JSON.stringify(after));
        // Every reason counted is also a vm_dropped.
        const reasons = Object.keys(after).filter((k) => k.startsWith("vm_drop_"));
        assert.equal(
          reasons.reduce((s, k) => s + delta(before, after, k), 0),
          delta(before, after, "vm_dropped"),
        );
      });

      await t.step("a Router Solicitation is answered with the configured RA", async () => {
        const r = await L.vm.exec([PYTHON, here("./guest_frames.py"), "eth0", ADDR.vmMac, "rs"]);
        const m = r.stdout.match(/^RA (.*)$/m);
        assert.ok(m, r.stdout + r.stderr);
        const ra = JSON.parse(m[1]);
        // Unicast to the soliciting link-local (RFC 4861 §6.2.6), the home prefix on-link.
        assert.equal(ra.dst, "fe80::5054:ff:fe00:10");
        assert.equal(ra.prefix, "2001:db8:2000::");
        assert.equal(ra.L, 1);
        // What full_lab configured (defaults would be A=0 and no MTU option).
        assert.equal(ra.A, RA.autonomous ? 1 : 0);
        assert.equal(ra.mtu, RA.mtu);
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
}

// Fault injection: the VM's tap goes away under a running data path (the VM was torn down, or
// an operator deleted it). The Worker must stop with the reason named instead of spinning on
// POLLERR, in both layouts.
for (const workers of [1, 2] as const) {
  Deno.test({
    name: `MN data path, ${workers} Worker(s): a deleted tap stops it with the error named`,
    ignore: needs(["ip"], { root: true }),
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await using tmp = await TempDir.create();
      await using lab = new Lab();
      const L = await buildFullLab(lab, tmp, { vnetHdr: true, workers, tag: `d${workers}` });
      await L.mn.ip("link", "del", "kgmtap0");
      await L.mnDriver.waitFor(/^DATAPATH-ERROR .*POLLERR \(device gone\?\)/m, 10_000);
      const st = await L.mnDriver.stop("SIGTERM", 10_000);
      assert.equal(st.code, 0, L.mnDriver.stderr);
      assert.match(L.mnDriver.stdout, /^FINAL \{/m);
    },
  });
}
