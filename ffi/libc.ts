/**
 * The one door to libc. Every `Deno.dlopen` in Kagemusha happens in this file;
 * the rest of `ffi/` wraps these symbols in small owned classes.
 *
 * Linux x86_64 and aarch64 share the generic syscall ABI for everything used
 * here (errno values, struct layouts of LP64, ioctl encodings), so one table
 * serves both. Variadic C functions (open, ioctl, fcntl) are declared with the
 * fixed argument count we use, which is ABI-compatible on both targets.
 *
 * @module
 */

const SYMBOLS = {
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int bind(int fd, const struct sockaddr *addr, socklen_t len);
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int connect(int fd, const struct sockaddr *addr, socklen_t len);
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int setsockopt(int fd, int level, int name, const void *val, socklen_t len);
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  // int getsockopt(int fd, int level, int name, void *val, socklen_t *len);
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t l);
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  // ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *l);
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "isize" },
  // ssize_t sendmsg(int fd, const struct msghdr *msg, int flags);
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // ssize_t recvmsg(int fd, struct msghdr *msg, int flags);
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  // int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *t);
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  // int open(const char *path, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int ioctl(int fd, unsigned long request, void *arg);
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // int ioctl(int fd, unsigned long request, unsigned long arg);  (argument by value, e.g. TUNSETOFFLOAD)
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t n);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t n);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // The same read()/write() with the ssize_t result taken as its low 32 bits (an int in the
  // return register on x86_64 and aarch64): exact for any single tun/tap read or write (< 2^31
  // bytes) and for -1. An `isize` result comes back as a BigInt on every call (~40 B of garbage
  // per packet on the data path); an `i32` is a plain number.
  read_i32: { name: "read", parameters: ["i32", "buffer", "usize"], result: "i32" },
  write_i32: { name: "write", parameters: ["i32", "buffer", "usize"], result: "i32" },
  // ssize_t readv(int fd, const struct iovec *iov, int iovcnt);
  readv: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // ssize_t writev(int fd, const struct iovec *iov, int iovcnt);
  writev: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int poll(struct pollfd *fds, nfds_t n, int timeout_ms);  (blocks the calling thread)
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // the same poll(), run on Deno's blocking pool: returns a Promise, errno is lost.
  poll_async: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // unsigned int if_nametoindex(const char *name);
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  // int fcntl(int fd, int cmd, int arg);
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int eventfd(unsigned int initval, int flags);
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // int setns(int fd, int nstype);  (moves the calling thread only)
  setns: { parameters: ["i32", "i32"], result: "i32" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Loaded lazily so that importing `ffi/` never requires --allow-ffi by itself. */
let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/** The libc symbol table, opened on first use (once per isolate/Worker). */
export function libc(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return lib.symbols;
}

/** errno names for the values Linux (generic ABI: x86_64, aarch64) uses. */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  25: "ENOTTY",
  28: "ENOSPC",
  32: "EPIPE",
  34: "ERANGE",
  61: "ENODATA",
  71: "EPROTO",
  88: "ENOTSOCK",
  89: "EDESTADDRREQ",
  90: "EMSGSIZE",
  91: "EPROTOTYPE",
  92: "ENOPROTOOPT",
  93: "EPROTONOSUPPORT",
  94: "ESOCKTNOSUPPORT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  106: "EISCONN",
  107: "ENOTCONN",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};

/** errno values the code branches on. */
export const Errno = {
  EINTR: 4,
  EAGAIN: 11,
  EBADF: 9,
  ENOENT: 2,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EMSGSIZE: 90,
  ENOBUFS: 105,
} as const;

/**
 * An OS call failed. Names the call, the errno symbol and libc's text, e.g.
 * `ioctl(TUNSETIFF): EPERM (Operation not permitted)`.
 */
export class ErrnoError extends Error {
  override name = "ErrnoError";
  constructor(readonly syscall: string, readonly errno: number) {
    super(`${syscall}: ${ERRNO_NAMES[errno] ?? `errno ${errno}`} (${strerror(errno)})`);
  }
  /** The symbolic errno name, e.g. "EBADF". */
  get code(): string {
    return ERRNO_NAMES[this.errno] ?? `E${this.errno}`;
  }
}

/** Reads errno; call it immediately after a synchronous libc call returned -1. */
export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

function strerror(code: number): string {
  const p = libc().strerror(code);
  return p === null ? "unknown error" : Deno.UnsafePointerView.getCString(p);
}

/**
 * Checks a libc return value: a negative result throws `ErrnoError` naming
 * `syscall` and the errno read right away; otherwise returns the value.
 */
export function check<T extends number | bigint>(syscall: string, ret: T): T {
  if (ret < 0) throw new ErrnoError(syscall, errno());
  return ret;
}

/** A NUL-terminated C string in a fresh buffer (setup paths only, never per packet). */
export function cstring(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
