/**
 * End-to-end test of the home agent data path in network namespaces:
 *
 * ```
 *  cn (2001:db8:2000::2) ── home0 ── ha (2001:db8:2000::1, tun kgmha0, HoA/128 → kgmha0)
 *                                     │ up0 2001:db8:3000::1 (MTU 1540)
 *                                     │
 *                         coa (2001:db8:3000::3 and ::99, raw-41 peer)
 * ```
 *
 * The cn talks UDP to the HoA; the HA data path tunnels to the CoA, where a raw IPPROTO_IPV6
 * peer (not the code under test) echoes the inner packet back with addresses swapped; the HA
 * decapsulates and the kernel forwards to the cn. Run with a plain tun and with a tun opened
 * with IFF_VNET_HDR (offloads on: the cn's UDP arrives with partial checksums to finish).
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
const CN = "2001:db8:2000::2";
const HOA = "2001:db8:2000::10";
const HOA_UNBOUND = "2001:db8:2000::11";
/** Routed into the tun, never proxied: only the tunnel-loop step binds it. */
const HOA_LOOP = "2001:db8:2000::12";
const COA = "2001:db8:3000::3";
const COA_OTHER = "2001:db8:3000::99";
const TUN = "kgmha0";

interface HaLab {
  cn: Netns;
  ha: Netns;
  coa: Netns;
  driver: LabProcess;
  ctl: string;
}

async function build(
  lab: Lab,
  tmp: TempDir,
  vnetHdr: boolean,
  workers: 1 | 2,
): Promise<HaLab> {
  const cn = await lab.netns("cn");
  const ha = await lab.netns("ha");
  const coa = await lab.netns("coa");
  await lab.veth(cn, "eth0", ha, "home0");
  await lab.veth(ha, "up0", coa, "eth0");
  await cn.ip("addr", "add", `${CN}/64`, "dev", "eth0");
  await cn.ip("-6", "route", "add", "default", "via", HA);
  await ha.ip("addr", "add", `${HA}/64`, "dev", "home0");
  await ha.ip("addr", "add", "2001:db8:3000::1/64", "dev", "up0");
  // The underlay carries a full 1500-byte inner packet plus the 40-byte outer header.
  await ha.ip("link", "set", "up0", "mtu", "1540");
  await coa.ip("link", "set", "eth0", "mtu", "1540");
  await ha.sysctl("net.ipv6.conf.all.forwarding", 1);
  // What the HA daemon does for a registered HoA: proxy ND on the home link (RFC 6275 §10.4.1).
  await ha.sysctl("net.ipv6.conf.home0.proxy_ndp", 1);
  await ha.ip("-6", "neigh", "add", "proxy", HOA, "dev", "home0");
  await ha.ip("-6", "neigh", "add", "proxy", HOA_UNBOUND, "dev", "home0");
  await coa.ip("addr", "add", `${COA}/64`, "dev", "eth0");
  await coa.ip("addr", "add", `${COA_OTHER}/64`, "dev", "eth0");
  await coa.ip("-6", "route", "add", "default", "via", "2001:db8:3000::1");

  const ctl = tmp.file("ha-ctl");
  const driver = ha.spawn([
    DENO,
    "run",
    "-A",
    here("./ha_driver.ts"),
    JSON.stringify({
      tun: TUN,
      haAddress: HA,
      mtu: 1540,
      bindings: [[HOA, COA]],
      control: ctl,
      vnetHdr,
      workers,
    }),
  ]);
  await driver.waitFor(/^READY$/m, 20_000);
  // What the HA daemon will do over netlink: tun MTU = home-link MTU − 40 would be 1460 on a
  // 1500 home link; here the underlay is 1540, so the tun takes full 1500-byte packets.
  await ha.ip("link", "set", TUN, "mtu", "1500", "up");
  await ha.ip("-6", "route", "add", `${HOA}/128`, "dev", TUN);
  await ha.ip("-6", "route", "add", `${HOA_UNBOUND}/128`, "dev", TUN);
  await ha.ip("-6", "route", "add", `${HOA_LOOP}/128`, "dev", TUN);
  return { cn, ha, coa, driver, ctl };
}

function delta(a: Record<string, number>, b: Record<string, number>, k: string): number {
  return b[k] - a[k];
}

async function runTool(ns: Netns, script: string, cfg: unknown): Promise<string> {
  const r = await ns.exec([DENO, "run", "-A", here(script), JSON.stringify(cfg)]);
  return r.stdout;
}

// Plain tun with a Worker per direction; offload tun (what the daemon opens) with one Worker for
// both (the default) and with a Worker per direction (`--datapath-workers 2`).
for (const [vnetHdr, workers] of [[false, 2], [true, 1], [true, 2]] as const) {
  Deno.test({
    name: `HA data path${
      vnetHdr ? " (tun with IFF_VNET_HDR)" : ""
    }, ${workers} Worker(s): tunnel both ways, integrity 1..1452, spoofing dropped, throughput`,
    ignore: needs(["ip"], { root: true }),
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      await using tmp = await TempDir.create();
      await using lab = new Lab();
      const { cn, coa, driver, ctl } = await build(lab, tmp, vnetHdr, workers);
      let echo = coa.spawn([
        DENO,
        "run",
        "-A",
        here("./peer41.ts"),
        JSON.stringify({
          mode: "echo",
          peer: HA,
        }),
      ]);
      await echo.waitFor(/^READY$/m, 20_000);

      await t.step("one datagram: outer header by the kernel, inner bytes intact", async () => {
        const out = await runTool(cn, "./udp_tool.ts", {
          mode: "sweep",
          dst: HOA,
          port: 7777,
          from: 5,
          to: 5,
        });
        assert.match(out, /SWEEP \{"ok":1,"bad":\[\]\}/);
        const m = echo.stdout.match(/^ECHO (\d+) (\S+) (\d+) ([0-9a-f]+)$/m);
        assert.ok(m, echo.stdout);
        const [, len, outerDst, hopLimit, inner] = m;
        assert.equal(Number(len), 40 + 8 + 5);
        assert.equal(outerDst, COA); // outer destination: the binding's CoA
        assert.equal(Number(hopLimit), 64); // tunnel hop limit (RFC 2473 §6.3)
        // Inner: what cn sent, hop limit decremented once by the HA's forwarding.
        const want = udpPacket(CN, HOA, 0, 7777, new Uint8Array(5), 63);
        assert.equal(inner[0], "6"); // version (the flow label is the cn kernel's choice)
        assert.equal(inner.slice(8, 16), hex(want.subarray(4, 8))); // length, next header, hop limit
        assert.equal(inner.slice(16, 80), hex(want.subarray(8, 40))); // addresses
        assert.equal(inner.slice(84, 88), "1e61"); // UDP destination port 7777
      });

      await t.step(
        "integrity: every UDP payload size 1..1452 survives the round trip",
        async () => {
          const before = await readCounters(driver, ctl);
          const out = await runTool(cn, "./udp_tool.ts", {
            mode: "sweep",
            dst: HOA,
            port: 7777,
            from: 1,
            to: 1452,
          });
          const m = out.match(/SWEEP (.*)/);
          assert.ok(m, out);
          assert.deepEqual(JSON.parse(m[1]), { ok: 1452, bad: [] });
          const after = await readCounters(driver, ctl);
          assert.ok(delta(before, after, "tunnel_tx_packets") >= 1452);
          assert.ok(delta(before, after, "tunnel_rx_packets") >= 1452);
          // Bytes: sum over sizes s of (40 + 8 + s), each way (retries would only add).
          const bytes = 1452 * 48 + (1452 * 1453) / 2;
          assert.ok(delta(before, after, "tunnel_tx_bytes") >= bytes);
          assert.ok(delta(before, after, "tunnel_rx_bytes") >= bytes);
          assert.equal(delta(before, after, "tunnel_malformed"), 0);
          assert.equal(delta(before, after, "tunnel_tx_errors"), 0);
        },
      );

      await t.step("spoofed outer source and unknown inner source are dropped", async () => {
        const listener = cn.spawn([
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
        const before = await readCounters(driver, ctl);
        const send = (bind: string, innerSrc: string, tag: string) =>
          runTool(coa, "./peer41.ts", {
            mode: "inject",
            bind,
            peer: HA,
            hex: hex(udpPacket(innerSrc, CN, 5555, 4444, new TextEncoder().encode(tag))),
          });
        await send(COA_OTHER, HOA, "spoofed-outer"); // right HoA, wrong CoA
        await send(COA, "2001:db8:2000::66", "unknown-inner"); // no binding for that source
        await send(COA_OTHER, "2001:db8:2000::66", "both-wrong");
        await send(COA, HOA, "genuine"); // the control: this one must arrive
        await listener.waitFor(/GOT \S+ 7 /, 5000);
        await new Promise((r) => setTimeout(r, 300));
        const after = await readCounters(driver, ctl);
        const got = listener.stdout.split("\n").filter((l) => l.startsWith("GOT "));
        assert.equal(got.length, 1, listener.stdout);
        assert.equal(got[0], `GOT ${HOA} 7 ${hex(new TextEncoder().encode("genuine"))}`);
        assert.equal(delta(before, after, "tunnel_spoofed"), 1);
        assert.equal(delta(before, after, "tunnel_unknown"), 2);
        assert.equal(delta(before, after, "tunnel_rx_packets"), 1);
        await listener.stop();
      });

      await t.step("no binding: a routed HoA without a binding is not tunnelled", async () => {
        const before = await readCounters(driver, ctl);
        const echoes = echo.stdout.split("\n").length;
        await runTool(cn, "./udp_tool.ts", {
          mode: "blast",
          dst: HOA_UNBOUND,
          port: 9,
          size: 100,
          seconds: 0.05,
        });
        await new Promise((r) => setTimeout(r, 200));
        const after = await readCounters(driver, ctl);
        assert.ok(delta(before, after, "tunnel_tx_no_binding") >= 64);
        assert.equal(delta(before, after, "tunnel_tx_packets"), 0);
        assert.equal(echo.stdout.split("\n").length, echoes);
      });

      await t.step(
        "a binding whose CoA is another HoA is a tunnel loop: dropped, counted",
        async () => {
          // RFC 2473 §4: each HoA's care-of address is the other HoA, and both are routed into
          // the tun. Were the packet tunnelled, the encapsulated packet would come back through
          // the tun, be tunnelled again (40 bytes bigger) and so on, fragments included.
          await command(driver, ctl, { cmd: "set", inner: HOA_UNBOUND, outer: HOA_LOOP });
          await command(driver, ctl, { cmd: "set", inner: HOA_LOOP, outer: HOA_UNBOUND });
          try {
            const before = await readCounters(driver, ctl);
            await cn.exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", HOA_UNBOUND], {
              allowFail: true,
            });
            await new Promise((r) => setTimeout(r, 300));
            const after = await readCounters(driver, ctl);
            assert.ok(delta(before, after, "tunnel_loop") >= 2, JSON.stringify(after));
            // Bounded: nothing went into the tunnel (2 echo requests, no amplification).
            assert.equal(delta(before, after, "tunnel_tx_packets"), 0, JSON.stringify(after));
          } finally {
            await command(driver, ctl, { cmd: "delete", inner: HOA_UNBOUND });
            await command(driver, ctl, { cmd: "delete", inner: HOA_LOOP });
          }
        },
      );

      await t.step(
        "binding change reaches the Workers; the old CoA becomes a spoofer",
        async () => {
          await command(driver, ctl, { cmd: "set", inner: HOA, outer: COA_OTHER });
          const out = await runTool(cn, "./udp_tool.ts", {
            mode: "sweep",
            dst: HOA,
            port: 7777,
            from: 33,
            to: 35,
          });
          assert.match(out, /SWEEP \{"ok":3,"bad":\[\]\}/);
          const dsts = [...echo.stdout.matchAll(/^ECHO (\d+) (\S+)/gm)]
            .filter((m) => Number(m[1]) >= 48 + 33 && Number(m[1]) <= 48 + 35)
            .map((m) => m[2]);
          assert.ok(dsts.includes(COA_OTHER), echo.stdout.slice(-2000));
          const before = await readCounters(driver, ctl);
          await runTool(coa, "./peer41.ts", {
            mode: "inject",
            bind: COA,
            peer: HA,
            hex: hex(udpPacket(HOA, CN, 5555, 4444, new Uint8Array(3))),
          });
          await new Promise((r) => setTimeout(r, 200));
          const after = await readCounters(driver, ctl);
          assert.equal(delta(before, after, "tunnel_spoofed"), 1);
          await command(driver, ctl, { cmd: "set", inner: HOA, outer: COA });
        },
      );

      await t.step("throughput figure: 1400-byte UDP payloads for 2 s each way", async () => {
        await echo.stop();
        const sink = coa.spawn([
          DENO,
          "run",
          "-A",
          here("./peer41.ts"),
          JSON.stringify({
            mode: "sink",
            peer: HA,
          }),
        ]);
        await sink.waitFor(/^READY$/m, 20_000);
        const seconds = 2;
        const b0 = await readCounters(driver, ctl);
        const blast = await runTool(cn, "./udp_tool.ts", {
          mode: "blast",
          dst: HOA,
          port: 9,
          size: 1400,
          seconds,
        });
        await new Promise((r) => setTimeout(r, 400));
        const b1 = await readCounters(driver, ctl);
        const offered = Number(blast.match(/BLAST (\d+)/)![1]);
        const sunk = [...sink.stdout.matchAll(/^SINK (\d+)/gm)].map((m) => Number(m[1]));
        const tx = delta(b0, b1, "tunnel_tx_packets");
        const txBatches = delta(b0, b1, "tunnel_tx_batches");
        assert.ok(tx > 0);
        console.log(
          `HA tun→tunnel: ${Math.round(tx / seconds)} packets/s (${
            (tx * 1448 * 8 / seconds / 1e9).toFixed(2)
          } Gbit/s inner), ${(tx / Math.max(1, txBatches)).toFixed(1)} packets/batch; ` +
            `cn offered ${offered}, datapath sent ${tx}, CoA received ${sunk.at(-1)}`,
        );
        await sink.stop();

        const r0 = await readCounters(driver, ctl);
        const rblast = await runTool(coa, "./peer41.ts", {
          mode: "blast",
          bind: COA,
          peer: HA,
          seconds,
          hex: hex(udpPacket(HOA, CN, 5555, 9, new Uint8Array(1400))),
        });
        await new Promise((r) => setTimeout(r, 400));
        const r1 = await readCounters(driver, ctl);
        const rx = delta(r0, r1, "tunnel_rx_packets");
        const rxBatches = delta(r0, r1, "tunnel_rx_batches");
        assert.ok(rx > 0);
        console.log(
          `HA tunnel→tun: ${Math.round(rx / seconds)} packets/s, ${
            (rx / Math.max(1, rxBatches)).toFixed(1)
          } packets/batch; CoA offered ${rblast.match(/BLAST (\d+)/)![1]}, datapath wrote ${rx}`,
        );
        echo = sink;
      });

      await t.step("stop: SIGTERM joins the Workers and closes the socket", async () => {
        const st = await driver.stop("SIGTERM", 10_000);
        assert.equal(st.code, 0, driver.stderr);
        const m = driver.stdout.match(/^STOPPED in ([\d.]+) ms$/m);
        assert.ok(m, driver.stdout.slice(-2000));
        console.log(`datapath stop() took ${m[1]} ms`);
        assert.ok(/^FINAL \{/m.test(driver.stdout));
        assert.ok(!/DATAPATH-ERROR/.test(driver.stdout));
      });
    },
  });
}

// Fault injection: the tun goes away under a running data path (an operator's `ip link del`,
// a crashed setup). The Worker must stop with the reason named, not spin on POLLERR, and in the
// one-Worker layout the other direction's pump stops with it (no half-working data path).
for (const workers of [1, 2] as const) {
  Deno.test({
    name: `HA data path, ${workers} Worker(s): a deleted tun stops it with the error named`,
    ignore: needs(["ip"], { root: true }),
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await using tmp = await TempDir.create();
      await using lab = new Lab();
      const { ha, driver } = await build(lab, tmp, true, workers);
      await ha.ip("link", "del", TUN);
      await driver.waitFor(/^DATAPATH-ERROR .*POLLERR \(device gone\?\)/m, 10_000);
      const st = await driver.stop("SIGTERM", 10_000);
      assert.equal(st.code, 0, driver.stderr);
      assert.match(driver.stdout, /^FINAL \{/m);
    },
  });
}
