/**
 * `OwnedFd`: what every fd-owning class of `ffi/` does with its descriptor — hand it out, give
 * it away, close it once (the `close(2)` failure named), dispose of it with `using`.
 *
 * @module
 */

import { check, libc } from "./libc.ts";

/** A file descriptor this object owns until `close()` or `release()`. */
export class OwnedFd implements Disposable {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** The file descriptor (-1 once closed or released). */
  get fd(): number {
    return this.#fd;
  }

  /** Gives the fd away without closing it; this object then behaves as closed. */
  release(): number {
    const fd = this.#fd;
    this.#fd = -1;
    return fd;
  }

  /** Closes the fd. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    check(this.closeLabel(), libc().close(fd));
  }

  /** How a failing close(2) is named in the error. */
  protected closeLabel(): string {
    return "close";
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
