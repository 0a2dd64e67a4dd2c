/**
 * Runs synchronous code with the calling thread inside a lab namespace
 * (setns(2) on this thread only, then back). Sockets and tun/tap devices
 * opened inside stay in that namespace after the switch back: that is how the
 * ffi/ tests own objects in several namespaces from one process.
 *
 * @module
 */

import { CLONE_NEWNET, O_CLOEXEC, O_RDONLY } from "../../ffi/constants.ts";
import { check, cstring, libc } from "../../ffi/libc.ts";
import type { Netns } from "../helpers/netns.ts";

/** Calls `fn` with this thread in network namespace `ns`; restores the original one after. */
export function inNetns<T>(ns: Netns | string, fn: () => T): T {
  const name = typeof ns === "string" ? ns : ns.name;
  const c = libc();
  const home = check(
    "open(/proc/thread-self/ns/net)",
    c.open(cstring("/proc/thread-self/ns/net"), O_RDONLY | O_CLOEXEC, 0),
  );
  try {
    const target = check(
      `open(/run/netns/${name})`,
      c.open(cstring(`/run/netns/${name}`), O_RDONLY | O_CLOEXEC, 0),
    );
    try {
      check(`setns(${name})`, c.setns(target, CLONE_NEWNET));
    } finally {
      c.close(target);
    }
    try {
      const out = fn();
      if (out instanceof Promise) throw new TypeError("inNetns: fn must be synchronous");
      return out;
    } finally {
      check("setns(back)", c.setns(home, CLONE_NEWNET));
    }
  } finally {
    c.close(home);
  }
}
