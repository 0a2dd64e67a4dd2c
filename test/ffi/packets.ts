/**
 * Small hand-built packet helpers for the ffi/ namespace tests (they must not
 * depend on src/wire: these tests check the FFI layer on its own).
 *
 * @module
 */

import assert from "node:assert/strict";
import { waitReadable } from "../../ffi/poll.ts";
import type { RawSocket6 } from "../../ffi/raw_socket.ts";
import { parseIpv6 } from "../../ffi/structs.ts";
import type { Lab, Netns } from "../helpers/netns.ts";

/** RFC 8200 §8.1 upper-layer checksum over the IPv6 pseudo-header and `data`. */
export function checksum(src: string, dst: string, nh: number, data: Uint8Array): number {
  const pseudo = new Uint8Array(40 + data.length + (data.length & 1));
  pseudo.set(parseIpv6(src), 0);
  pseudo.set(parseIpv6(dst), 16);
  new DataView(pseudo.buffer).setUint32(32, data.length);
  pseudo[39] = nh;
  pseudo.set(data, 40);
  let sum = 0;
  for (let i = 0; i < pseudo.length; i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), o += p.length;
  return out;
}

/** A fixed 40-byte IPv6 header (RFC 8200 §3). */
export function ipv6Header(
  src: string,
  dst: string,
  nextHeader: number,
  payloadLength: number,
  hopLimit = 64,
): Uint8Array<ArrayBuffer> {
  const h = new Uint8Array(40);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, 0x60000000);
  dv.setUint16(4, payloadLength);
  h[6] = nextHeader;
  h[7] = hopLimit;
  h.set(parseIpv6(src), 8);
  h.set(parseIpv6(dst), 24);
  return h;
}

/** An Ethernet II frame, padded to the 60-byte minimum. */
export function ethernetFrame(
  dst: Uint8Array,
  src: Uint8Array,
  etherType: number,
  payload: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(Math.max(60, 14 + payload.length));
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  f.set(payload, 14);
  return f;
}

/** `ip -j [-s] link show dev` inside `ns`, parsed. */
// deno-lint-ignore no-explicit-any
export async function linkInfo(ns: Netns, dev: string, stats = false): Promise<any> {
  const args = ["ip", "-j", ...(stats ? ["-s"] : []), "link", "show", "dev", dev];
  const r = await ns.exec(args);
  return JSON.parse(r.stdout)[0];
}

/**
 * Waits until `dev` in `ns` is operationally up. A veth end brought up before
 * its peer gets its qdisc only when linkwatch handles the carrier change
 * (asynchronously): frames sent before that are dropped.
 */
export async function waitOperUp(ns: Netns, dev: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const state = (await linkInfo(ns, dev)).operstate;
    if (state === "UP") return;
    if (Date.now() > deadline) throw new Error(`${ns.name}/${dev} still ${state} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Two lab namespaces named `a` and `b` joined by a veth (eth0 at both ends), returned once both
 * ends are operationally up ({@linkcode waitOperUp}).
 */
export async function upPair(lab: Lab, a: string, b: string): Promise<[Netns, Netns]> {
  const na = await lab.netns(a);
  const nb = await lab.netns(b);
  await lab.veth(na, "eth0", nb, "eth0");
  await waitOperUp(na, "eth0");
  await waitOperUp(nb, "eth0");
  return [na, nb];
}

/** Waits up to 5 s for `sock` to be readable (asserting it is), then receives into `buf`. */
export async function recvOne(sock: RawSocket6, buf: Uint8Array) {
  assert.ok(await waitReadable(sock.fd, 5000), "nothing arrived within 5 s");
  const info = sock.recv(buf);
  assert.ok(info !== null);
  return info;
}

/**
 * Polls `probe` until it returns true or `ms` pass. For effects of close(2):
 * a child process forked by a parallel test module holds a copy of our fd
 * table until it execs, which can delay the kernel's release of the file.
 */
export async function eventually(probe: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}
