/**
 * Linux constants for the libc calls the lab makes through Deno FFI (x86-64
 * and arm64 agree on these), shared by the programs and the sampler.
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
