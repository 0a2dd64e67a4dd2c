/**
 * Waiting for file descriptors.
 *
 * - `waitReadable` runs poll(2) on Deno's blocking thread pool (the
 *   `poll_async` symbol): the main event loop keeps running timers and I/O.
 * - `pollBlocking` and `Poller` block the calling thread: for Workers on the
 *   data path, where a blocked thread costs nothing.
 * - `EventFd` wakes such a Worker from another thread.
 *
 * @module
 */

import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
} from "./constants.ts";
import { check, Errno, errno, ErrnoError, libc } from "./libc.ts";
import { OwnedFd } from "./fd.ts";
import { encodePollfd, HOST_LE, POLLFD, pollfdRevents } from "./structs.ts";

/**
 * Resolves true when `fd` is readable (or in error/hang-up, so that a read
 * returns at once), false after `timeoutMs` (-1 = no limit). The poll runs on
 * Deno's blocking pool and never blocks the event loop. A closed or invalid
 * fd rejects with `ErrnoError` EBADF.
 */
export async function waitReadable(fd: number, timeoutMs: number): Promise<boolean> {
  return (await waitFor(fd, POLLIN, timeoutMs)) !== 0;
}

/** Like `waitReadable` for POLLOUT. */
export async function waitWritable(fd: number, timeoutMs: number): Promise<boolean> {
  return (await waitFor(fd, POLLOUT, timeoutMs)) !== 0;
}

async function waitFor(fd: number, events: number, timeoutMs: number): Promise<number> {
  const pfd = new Uint8Array(POLLFD.SIZE);
  const dv = new DataView(pfd.buffer);
  encodePollfd(dv, 0, fd, events);
  const r = await libc().poll_async(pfd, 1n, timeoutMs);
  if (r < 0) {
    // errno is lost on the pool thread: ask again synchronously without waiting.
    encodePollfd(dv, 0, fd, events);
    check(`poll(fd ${fd})`, libc().poll(pfd, 1n, 0));
  }
  const rev = pollfdRevents(dv, 0);
  if (rev & POLLNVAL) throw new ErrnoError(`poll(fd ${fd})`, Errno.EBADF);
  return rev;
}

/**
 * A reusable pollfd array that blocks the calling thread (for Workers).
 * `wait()` returns how many entries are ready; `revents(i)`/`ready(i)` say
 * which. No allocation per wait.
 */
export class Poller {
  readonly fds: readonly number[];
  readonly #pfd: Uint8Array<ArrayBuffer>;
  readonly #dv: DataView;
  readonly #events: number;
  readonly #n: bigint;

  constructor(fds: readonly number[], events = POLLIN) {
    this.fds = [...fds];
    this.#events = events;
    this.#pfd = new Uint8Array(Math.max(1, fds.length) * POLLFD.SIZE);
    this.#dv = new DataView(this.#pfd.buffer);
    this.#n = BigInt(fds.length);
    for (let i = 0; i < fds.length; i++) encodePollfd(this.#dv, i, fds[i], events);
  }

  /**
   * poll(2) with `timeoutMs` (-1 = forever), blocking this thread. Returns
   * the number of ready entries (0 on timeout or EINTR). An fd that is not
   * open throws `ErrnoError` EBADF naming it.
   */
  wait(timeoutMs: number): number {
    const dv = this.#dv;
    for (let i = 0; i < this.fds.length; i++) {
      dv.setInt16(i * POLLFD.SIZE + POLLFD.REVENTS, 0, HOST_LE);
    }
    const r = libc().poll(this.#pfd, this.#n, timeoutMs);
    if (r < 0) {
      const e = errno();
      if (e === Errno.EINTR) return 0;
      throw new ErrnoError("poll", e);
    }
    if (r > 0) {
      for (let i = 0; i < this.fds.length; i++) {
        if (pollfdRevents(dv, i) & POLLNVAL) {
          throw new ErrnoError(`poll(fd ${this.fds[i]})`, Errno.EBADF);
        }
      }
    }
    return r;
  }

  /** Async variant on Deno's blocking pool (main thread); resolves to the ready count. */
  async waitAsync(timeoutMs: number): Promise<number> {
    const dv = this.#dv;
    for (let i = 0; i < this.fds.length; i++) encodePollfd(dv, i, this.fds[i], this.#events);
    const r = await libc().poll_async(this.#pfd, this.#n, timeoutMs);
    if (r < 0) return 0;
    for (let i = 0; i < this.fds.length; i++) {
      if (pollfdRevents(dv, i) & POLLNVAL) {
        throw new ErrnoError(`poll(fd ${this.fds[i]})`, Errno.EBADF);
      }
    }
    return r;
  }

  /** revents of entry i after the last wait. */
  revents(i: number): number {
    return pollfdRevents(this.#dv, i);
  }

  /** Entry i is readable/writable as asked, or in error (so the next call will not block). */
  ready(i: number): boolean {
    return (pollfdRevents(this.#dv, i) & (this.#events | POLLERR | POLLHUP)) !== 0;
  }
}

/**
 * poll(2) on `fds` for POLLIN, blocking the calling thread up to `timeoutMs`
 * (-1 = forever). Returns the fds that are ready (readable, error or
 * hang-up); [] on timeout. Meant for Workers; the main thread uses
 * `waitReadable`. Allocates per call: a hot loop should keep a `Poller`.
 */
export function pollBlocking(fds: number[], timeoutMs: number): number[] {
  const p = new Poller(fds);
  const n = p.wait(timeoutMs);
  const out: number[] = [];
  if (n === 0) return out;
  for (let i = 0; i < fds.length; i++) if (p.ready(i)) out.push(fds[i]);
  return out;
}

/**
 * eventfd(2): a counter another thread can bump to wake a poll. Nonblocking,
 * close-on-exec. `signal()` adds 1, `drain()` reads and resets the counter.
 */
export class EventFd extends OwnedFd {
  readonly #buf = new Uint8Array(new ArrayBuffer(8));
  readonly #dv = new DataView(this.#buf.buffer);

  constructor() {
    super(check("eventfd", libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)));
  }

  /** Same as `new EventFd()`. */
  static open(): EventFd {
    return new EventFd();
  }

  /** Adds 1 to the counter: a poll including `fd` returns. */
  signal(): void {
    this.#dv.setBigUint64(0, 1n, HOST_LE);
    check("write(eventfd)", libc().write(this.fd, this.#buf, 8n));
  }

  /** Reads and clears the counter; 0 when it was already 0. */
  drain(): number {
    const r = libc().read(this.fd, this.#buf, 8n);
    if (r < 0) {
      const e = errno();
      if (e === Errno.EAGAIN) return 0;
      throw new ErrnoError("read(eventfd)", e);
    }
    return Number(this.#dv.getBigUint64(0, HOST_LE));
  }
}
