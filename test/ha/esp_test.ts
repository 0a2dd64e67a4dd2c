/**
 * `kagemusha ha` with ESP-protected signaling (RFC 4877, RFC 4303 transport mode, userland)
 * against an independent mobile node whose ESP is scapy's own `SecurityAssociation`:
 * - a BU encrypted by scapy (AES-GCM-128; AES-CBC + HMAC-SHA-256-128 for a second home
 *   address) gets a protected BA, status 0, that scapy decrypts;
 * - an unprotected BU for a home address with an SA is dropped and counted, no BA;
 * - the same ESP packet again is a replay (`esp_replay`); a flipped bit fails the ICV
 *   (`esp_integrity`) and does not move the window;
 * - a deregistration from home (IPv6 | ESP | MH, no HAO) reaches the raw ESP socket and gets
 *   a protected BA without routing header;
 * - after a restart (SIGTERM) and after a crash (SIGKILL) the BA sequence numbers go on
 *   forward, never reused, and the inbound replay window is kept; with the state file damaged
 *   they jump to 2^31.
 */

import assert from "node:assert/strict";
import type { EspSaConfig } from "../../src/ipsec/config.ts";
import { needs, PYTHON } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { COA, HA, haStatus, haTopology, HOA, sendBu, startHa } from "./ha_lab.ts";
import { ScapyPeer } from "./peer.ts";

const ignore = needs(["ip", PYTHON], { root: true });

const HOA2 = "2001:db8:2000::11";
const GCM = {
  bu: {
    spi: 0x4b4d2001,
    algorithm: "aes-gcm-128",
    key: "0f1e2d3c4b5a69788796a5b4c3d2e1f05a17c0de",
  },
  ba: {
    spi: 0x4b4d2002,
    algorithm: "aes-gcm-128",
    key: "603deb1015ca71be2b73aef0857d7781c0ffee11",
  },
} satisfies Record<string, EspSaConfig>;
const CBC = {
  bu: {
    spi: 0x4b4d3001,
    algorithm: "aes-cbc-hmac-sha256",
    key: "2b7e151628aed2a6abf7158809cf4f3c",
    authKey: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
  },
  ba: {
    spi: 0x4b4d3002,
    algorithm: "aes-cbc-hmac-sha256",
    key: "603deb1015ca71be2b73aef0857d7781",
    authKey: "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f",
  },
} satisfies Record<string, EspSaConfig>;

interface Reply {
  kind: string;
  status?: number;
  seq?: number;
  rh2: { home: string; segleft: number } | null;
  cksum_ok?: boolean;
  esp?: { spi: number; seq: number; decrypted: boolean; error?: string };
}

Deno.test({
  name: "ha e2e: ESP-protected BU/BA with scapy's ESP; unprotected, replayed, tampered dropped",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    const config = `${t.dir}/ha.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        esp: [
          { homeAddress: HOA, ...GCM },
          { homeAddress: HOA2, ...CBC },
        ],
      }),
    );
    const args = ["--dad", "optimistic", "--config", config];
    const [ha1, mn, cn] = await Promise.all([
      startHa(t, args),
      ScapyPeer.start(t.mn),
      ScapyPeer.start(t.cn),
    ]);
    await using _mn = mn;
    await using _cn = cn;
    assert.doesNotMatch(ha1.stderr, /signaling is unauthenticated/);
    assert.match(ha1.stderr, /ESP protects signaling for 2 home address/);
    const bu = (o: Record<string, unknown>) =>
      sendBu<{ reply: Reply | null; sent_hex: string }>(mn, {
        lifetime: 30,
        timeout: 2,
        sa_bu: GCM.bu,
        sa_ba: GCM.ba,
        ...o,
      });
    const resend = (hex: string, flip?: number) =>
      mn.request<{ reply: Reply | null }>("send_hex", {
        iface: "eth0",
        coa: COA,
        ha: HA,
        hex,
        flip,
        timeout: 1.5,
        sa_ba: GCM.ba,
      });

    // 1. protected BU (AES-GCM) → protected BA, status 0, decrypted by scapy
    const first = await bu({ seq: 100, esp_seq: 1 });
    const r1 = first.reply;
    assert.ok(r1, `no BA\n${ha1.stderr}`);
    assert.equal(r1.kind, "ba");
    assert.equal(r1.esp?.decrypted, true, JSON.stringify(r1));
    assert.equal(r1.esp?.spi, GCM.ba.spi);
    assert.equal(r1.status, 0);
    assert.equal(r1.seq, 100);
    assert.deepEqual(r1.rh2, { home: HOA, segleft: 1 });
    assert.equal(r1.cksum_ok, true, "MH checksum inside ESP (pseudo-header dst = HoA)");
    const baSeqs = [r1.esp!.seq];

    // 2. the same BU without ESP: dropped and counted, no BA
    assert.equal((await bu({ seq: 101, sa_bu: null })).reply, null);
    let st = await haStatus(t);
    assert.equal(st.counters.bu_unprotected_dropped, 1);
    assert.equal(st.bindings[0].sequence, 100);

    // 3. the first ESP packet again: a replay (RFC 4303 §3.4.3)
    assert.equal((await resend(first.sent_hex)).reply, null);
    // 4. a new packet with one ciphertext bit flipped: the ICV fails (§3.4.4) …
    const fresh = await bu({ seq: 102, esp_seq: 2, dry: true });
    const hex = fresh.sent_hex;
    const last = hex.length / 2 - 20; // inside the ciphertext, before the 16-octet tag
    assert.equal((await resend(hex, last)).reply, null);
    // … and did not move the window: the genuine packet with that sequence number passes
    const genuine = (await resend(hex)).reply;
    assert.equal(genuine?.status, 0, JSON.stringify(genuine));
    assert.equal(genuine?.seq, 102);
    baSeqs.push(genuine!.esp!.seq);
    st = await haStatus(t);
    assert.equal(st.counters.esp_replay, 1);
    assert.equal(st.counters.esp_integrity, 1);
    assert.match(ha1.stderr, /SPI 0x4b4d2001 \(1263345665\) dropped: replay/);
    assert.match(ha1.stderr, /dropped: integrity/);

    // 5. AES-CBC + HMAC-SHA-256-128 for the second home address
    const cbc = (await bu({ hoa: HOA2, seq: 7, esp_seq: 1, sa_bu: CBC.bu, sa_ba: CBC.ba })).reply;
    assert.equal(cbc?.status, 0, JSON.stringify(cbc));
    assert.equal(cbc?.esp?.decrypted, true);
    assert.equal(cbc?.esp?.spi, CBC.ba.spi);
    assert.deepEqual(cbc?.rh2, { home: HOA2, segleft: 1 });

    // the SAs in `status`: counters per SA, no keys
    const esp = (st as unknown as { esp: { sas: Record<string, unknown>[] } }).esp;
    assert.equal(esp.sas.length, 4);
    assert.ok(!JSON.stringify(esp).includes(GCM.bu.key), "no key in status");

    // 6. restart (SIGTERM): the BA counter goes on after the reservation, the window is kept
    assert.equal((await ha1.stop("SIGTERM")).code, 0, ha1.stderr);
    const ha2 = await startHa(t, args);
    assert.equal((await resend(first.sent_hex)).reply, null, "a replay after the restart too");
    const after = (await bu({ seq: 103, esp_seq: 3 })).reply;
    assert.equal(after?.status, 0, `${JSON.stringify(after)}\n${ha2.stderr}`);
    baSeqs.push(after!.esp!.seq);
    assert.equal((await haStatus(t)).counters.esp_replay, 1);

    // 7. crash (SIGKILL) right after a BA: still no reuse
    await ha2.stop("SIGKILL");
    const ha3 = await startHa(t, args);
    const crash = (await bu({ seq: 104, esp_seq: 4 })).reply;
    assert.equal(crash?.status, 0, `${JSON.stringify(crash)}\n${ha3.stderr}`);
    baSeqs.push(crash!.esp!.seq);
    console.log(`BA ESP sequence numbers across SIGTERM and SIGKILL restarts: ${baSeqs}`);
    for (let i = 1; i < baSeqs.length; i++) {
      assert.ok(baSeqs[i] > baSeqs[i - 1], `sequence ${baSeqs[i]} after ${baSeqs[i - 1]}`);
    }
    assert.ok(baSeqs[2] > 64 && baSeqs[3] > 128, `reservations skipped: ${baSeqs}`);

    // 8. back home: deregistration IPv6 (HoA → HA) | ESP | MH, no HAO → raw ESP socket;
    //    the BA comes back protected, without a routing header
    await t.cn.ip("addr", "add", `${HOA}/64`, "dev", "eth0", "nodad");
    const home = (await cn.request<{ reply: Reply | null }>("bu", {
      iface: "eth0",
      coa: HOA,
      ha: HA,
      hoa: HOA,
      hao: false,
      alt_coa: HOA,
      seq: 105,
      lifetime: 0,
      esp_seq: 5,
      sa_bu: GCM.bu,
      sa_ba: GCM.ba,
      timeout: 2,
    })).reply;
    assert.equal(home?.status, 0, `${JSON.stringify(home)}\n${ha3.stderr}`);
    assert.equal(home?.esp?.decrypted, true);
    assert.equal(home?.rh2, null);
    assert.equal(home?.cksum_ok, true);
    assert.deepEqual((await haStatus(t)).bindings.map((b) => b.homeAddress), [HOA2]);
    assert.equal((await ha3.stop()).code, 0, ha3.stderr);
    await t.cn.ip("addr", "del", `${HOA}/64`, "dev", "eth0");

    // 9. a damaged state file: the counters cannot be known, so they jump to 2^31
    await Deno.writeTextFile(`${t.stateDir}/ha-bindings.json`, "{ damaged");
    const ha4 = await startHa(t, args);
    assert.match(ha4.stderr, /outbound sequence numbers of 2 SA\(s\) continue at 2\^31/);
    const lost = (await bu({ seq: 200, esp_seq: 6 })).reply;
    assert.equal(lost?.status, 0, `${JSON.stringify(lost)}\n${ha4.stderr}`);
    assert.ok(lost!.esp!.seq > 2 ** 31, `BA sequence ${lost!.esp!.seq}`);
    assert.equal((await ha4.stop()).code, 0, ha4.stderr);
    await Deno.remove(t.dir, { recursive: true });
  },
});

Deno.test({
  name: "ha e2e: without ESP the home agent warns once that signaling is unauthenticated",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new Lab();
    const t = await haTopology(lab);
    const ha = await startHa(t, ["--dad", "optimistic"]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(ha.stderr.match(/signaling is unauthenticated/g)?.length, 1, ha.stderr);
    assert.match(ha.stderr, /--require-esp/);
    assert.equal((await ha.stop()).code, 0, ha.stderr);
    await Deno.remove(t.dir, { recursive: true });
  },
});
