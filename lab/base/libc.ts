/**
 * What the lab's programs share of libc through Deno's FFI: errno, and the
 * Linux numbers of the socket and epoll calls they make.
 * @module
 */

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

export const EPERM = 1;
export const EINTR = 4;
export const EAGAIN = 11;
export const EBUSY = 16;
export const ENOBUFS = 105;
export const EINPROGRESS = 115;

export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;

export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLRDHUP = 0x2000;
/** `struct epoll_event` is packed on x86-64 (12 bytes), naturally aligned elsewhere (16). */
export const EPOLL_EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
/** Where `epoll_event.data` starts. */
export const EPOLL_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;
