/**
 * OS failures surface as `ErrnoError` naming the call, the errno and, where
 * there is one, the device.
 */

import assert from "node:assert/strict";
import { IPPROTO_MH } from "../../ffi/constants.ts";
import { ErrnoError, libc } from "../../ffi/libc.ts";
import { PacketSocket } from "../../ffi/packet_socket.ts";
import { RawSocket6, RecvRing } from "../../ffi/raw_socket.ts";
import { ifNameToIndex } from "../../ffi/structs.ts";
import { TunTapDevice } from "../../ffi/tap.ts";
import { needs } from "../helpers/env.ts";
import { Lab } from "../helpers/netns.ts";
import { inNetns } from "./in_netns.ts";

function errno(code: string, text: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ErrnoError, `not an ErrnoError: ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, text);
    return true;
  };
}

Deno.test({
  name: "errors: a closed or foreign fd is EBADF, named with its call",
  ignore: needs([], { root: true }),
  async fn() {
    await using lab = new Lab();
    const ns = await lab.netns("ffierr-ebadf");
    const sock = inNetns(ns, () => RawSocket6.open(IPPROTO_MH));
    sock.close();
    sock.close(); // idempotent
    assert.throws(
      () => sock.send(new Uint8Array(8), { dst: "::1" }),
      errno("EBADF", /^sendmsg\(to ::1\): EBADF \(Bad file descriptor\)$/),
    );
    assert.throws(() => sock.recv(new Uint8Array(64)), errno("EBADF", /^recvmsg: EBADF/));
    assert.throws(() => sock.recvBatch(new RecvRing(4, 64)), errno("EBADF", /^recvmmsg: EBADF/));
    assert.throws(() => sock.setRecvPktInfo(true), errno("EBADF", /IPV6_RECVPKTINFO/));

    // an fd closed behind the object's back
    const tap = inNetns(ns, () => TunTapDevice.open("kbad0", { mode: "tap", nonblocking: true }));
    assert.equal(libc().close(tap.fd), 0);
    assert.throws(() => tap.read(new Uint8Array(64)), errno("EBADF", /^read\(kbad0\): EBADF/));
    assert.throws(() => tap.close(), errno("EBADF", /^close\(kbad0\): EBADF/));
    assert.equal(tap.fd, -1);
  },
});

Deno.test({
  name: "errors: a missing device is named (if_nametoindex, packet socket, SO_BINDTODEVICE)",
  ignore: needs([], { root: true }),
  async fn() {
    await using lab = new Lab();
    const ns = await lab.netns("ffierr-nodev");
    assert.throws(
      () => inNetns(ns, () => ifNameToIndex("nope0")),
      errno("ENODEV", /^if_nametoindex\(nope0\): ENODEV \(No such device\)$/),
    );
    assert.throws(
      () => inNetns(ns, () => PacketSocket.open("nope0")),
      errno("ENODEV", /nope0/),
    );
    using sock = inNetns(ns, () => RawSocket6.open(IPPROTO_MH));
    assert.throws(
      () => sock.bindToDevice("nope0"),
      errno("ENODEV", /^setsockopt\(SO_BINDTODEVICE nope0\): ENODEV/),
    );
    // "lo" exists but is no tun/tap device
    assert.throws(
      () => inNetns(ns, () => TunTapDevice.open("lo", { mode: "tap" })),
      errno("EINVAL", /^ioctl\(TUNSETIFF lo\): EINVAL/),
    );
    assert.throws(
      () => sock.bind("2001:db8::77"),
      errno("EADDRNOTAVAIL", /^bind\(2001:db8::77\): EADDRNOTAVAIL/),
    );
    // programmer errors are plain exceptions, before any syscall
    assert.throws(
      () => sock.send(new Uint8Array(8), { dst: "::1", dstOpts: new Uint8Array(7) }),
      TypeError,
    );
    assert.throws(() => sock.send(new Uint8Array(8), { dst: "not-an-address" }), TypeError);
  },
});
