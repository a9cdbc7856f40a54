/**
 * Linux constants for the libc calls the lab makes through Deno FFI (x86-64
 * and arm64 agree on these, but for `epoll_event`'s layout), and errno as
 * those calls leave it, shared by the programs, the delayer and the sampler.
 * @module
 */

/** `AF_INET`: IPv4. */
export const AF_INET = 2;
/** `AF_INET6`: IPv6. */
export const AF_INET6 = 10;
/** `SOCK_STREAM`: TCP. */
export const SOCK_STREAM = 1;
/** `SOCK_NONBLOCK`, or-ed into a socket type. */
export const SOCK_NONBLOCK = 0o4000;
/** `SOCK_CLOEXEC`, or-ed into a socket type. */
export const SOCK_CLOEXEC = 0o2000000;
/** `SOL_SOCKET`: socket-level options. */
export const SOL_SOCKET = 1;
/** `RLIMIT_NOFILE`: the open-file limit. */
export const RLIMIT_NOFILE = 7;

/**
 * errno of the last failed libc call on this thread, through the library's
 * `__errno_location` symbol. Read it right after the call, and trust it only
 * to name a failure the return value already showed: it is read in a second
 * FFI call, and the runtime can overwrite errno in between (ENOENT after
 * `connect()` about once in 10,000 reads early in a run; a recv() on an
 * NFQUEUE socket once in a few thousand test runs).
 */
export function readErrno(lib: { __errno_location(): Deno.PointerValue }): number {
  const p = lib.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** `EPERM`: not permitted. */
export const EPERM = 1;
/** `EINTR`: interrupted by a signal. */
export const EINTR = 4;
/** `EAGAIN`: nothing to read or no room to write now. */
export const EAGAIN = 11;
/** `EBUSY`: taken. */
export const EBUSY = 16;
/** `ENOBUFS`: a socket buffer overflowed. */
export const ENOBUFS = 105;
/** `EINPROGRESS`: a non-blocking connect() under way. */
export const EINPROGRESS = 115;

/** `MSG_DONTWAIT`: a non-blocking send or receive. */
export const MSG_DONTWAIT = 0x40;
/** `MSG_NOSIGNAL`: no SIGPIPE on a broken connection. */
export const MSG_NOSIGNAL = 0x4000;

/** `EPOLL_CLOEXEC`, for epoll_create1(). */
export const EPOLL_CLOEXEC = 0o2000000;
/** `EPOLL_CTL_ADD`. */
export const EPOLL_CTL_ADD = 1;
/** `EPOLL_CTL_MOD`. */
export const EPOLL_CTL_MOD = 3;
/** `EPOLLIN`: readable. */
export const EPOLLIN = 0x1;
/** `EPOLLOUT`: writable. */
export const EPOLLOUT = 0x4;
/** `EPOLLERR`: an error is pending. */
export const EPOLLERR = 0x8;
/** `EPOLLRDHUP`: the peer closed its end. */
export const EPOLLRDHUP = 0x2000;
/** `struct epoll_event` is packed on x86-64 (12 bytes), naturally aligned elsewhere (16). */
export const EPOLL_EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
/** Where `epoll_event.data` starts. */
export const EPOLL_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;
