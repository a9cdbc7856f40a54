/**
 * A namespace's TCP sockets read in-process over NETLINK_SOCK_DIAG
 * (inet_diag), the interface `ss` uses: one `SOCK_DIAG_BY_FAMILY` dump,
 * filtered in the kernel by state and (with bytecode) by port, parsed
 * straight from the receive buffer. No `/proc/net/tcp` text, no `ss` process.
 *
 * The netlink socket is created inside the namespace by switching the main
 * thread there for the one `socket()` call ({@linkcode withNetns}); it stays
 * the namespace's after the thread is back home, and {@linkcode SockDiag.open}
 * checks that with `SIOCGSKNS`.
 *
 * Rows have the shape and address format of `parseProcNetTcp()`. Request
 * sockets (the kernel's `TCP_NEW_SYN_RECV`) come as `SYN_RECV`; for LISTEN,
 * Recv-Q and Send-Q are the accept queue's length and limit, as in `ss -ltn`.
 * @module
 */
import { scaled } from "../base/time_scale.ts";
import { describeErrno, errnoText, lastErrno, libc, withNetns } from "../topology/setns.ts";
import { TCP_STATES, type TcpState } from "../vocabulary.ts";
import type { SocketRow } from "./socket_table.ts";
import { AF_INET, AF_INET6, SOCK_CLOEXEC, SOL_SOCKET } from "../base/libc_constants.ts";

/** One dump in progress. */
interface DumpState {
  action: string;
  seq: number;
  rows: SocketRow[];
  ended: boolean;
  /** Counts a recv() against the dump's bounds (throws past them). */
  next(): void;
}

/** What {@linkcode SockDiag.dump} asks the kernel for. */
export interface DumpQuery {
  /** IPv4 (`/proc/net/tcp`'s sockets) or IPv6 (`tcp6`'s). */
  family: 4 | 6;
  /** Only sockets whose local or remote port is this one; omitted = every port. */
  port?: number;
  /** Only sockets in these states; omitted = all. `SYN_RECV` includes request sockets. */
  states?: readonly TcpState[];
}

/** A LISTEN socket's queues. */
export interface ListenQueues {
  /** Connections waiting in the accept queue (`ss -ltn` Recv-Q). */
  recvQ: number;
  /** The accept queue's limit, `min(backlog, somaxconn)` (`ss -ltn` Send-Q). */
  sendQ: number;
}

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_SOCK_DIAG = 4;
const IPPROTO_TCP = 6;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const SO_RCVBUFFORCE = 33;
/** `ioctl` that opens the network namespace a socket belongs to. */
const SIOCGSKNS = 0x894c;
const MSG_TRUNC = 0x20;
const EINTR = 4;
const EAGAIN = 11;

const NLMSG_HDRLEN = 16;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const SOCK_DIAG_BY_FAMILY = 20;
/** `sizeof(struct inet_diag_req_v2)`. */
const REQ_LEN = 56;
/** `sizeof(struct inet_diag_msg)`. */
const MSG_LEN = 72;
const INET_DIAG_REQ_BYTECODE = 1;
const INET_DIAG_BC_JMP = 1;
const INET_DIAG_BC_S_EQ = 11;
const INET_DIAG_BC_D_EQ = 12;
/** `sport == P or dport == P`: three ops of 8 bytes (see {@linkcode writeRequest}). */
const BYTECODE_LEN = 24;
const NLA_HDRLEN = 4;

/** The kernel fills at most ~32 KiB per recv of a dump; twice that never truncates. */
const RECV_BUFFER = 64 * 1024;
const RECV_BUFFER_N = BigInt(RECV_BUFFER);
/** Queued dump data the socket may hold; dumps refill only as it is read, so this is ample. */
const SOCKET_RCVBUF = 1024 * 1024;
/** How long one recv() waits for the kernel (SO_RCVTIMEO). */
const RECV_TIMEOUT_S = 2;
/** Bounds on one dump: ~32 KiB a recv makes 100,000 recvs about 3 GB of rows. */
const MAX_RECVS = 100_000;
const MAX_DUMP_MS = 10_000;
/** Distinct addresses remembered as strings before the cache starts over. */
const ADDRESS_CACHE = 4096;

/** Host byte order (netlink headers and `inet_diag` counters use it). */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** `struct sockaddr_nl` of the kernel (pid 0, no groups). */
const KERNEL = new Uint8Array(12);
new DataView(KERNEL.buffer).setUint16(0, AF_NETLINK, LE);
/** The kernel's state numbers (1-based) to names. */
const STATE_BY_NUMBER: readonly (TcpState | undefined)[] = [undefined, ...TCP_STATES];
const ALL_STATES = 0xffffffff;

/** Bitmask of `states` (`1 << state number`), all states when omitted. */
function stateMask(states: readonly TcpState[] | undefined, action: string): number {
  if (states === undefined) return ALL_STATES;
  let mask = 0;
  for (const s of states) {
    const n = TCP_STATES.indexOf(s);
    if (n < 0) {
      throw new RangeError(
        `${action}: unknown state "${s}" (expected one of ${TCP_STATES.join(", ")})`,
      );
    }
    mask |= 1 << (n + 1);
  }
  return mask >>> 0;
}

/**
 * Writes the request into `buf` and returns its length: `nlmsghdr`,
 * `inet_diag_req_v2`, and for a port an `INET_DIAG_REQ_BYTECODE` attribute
 * that the kernel's `inet_diag_bc_run()` runs per socket. Each op is
 * `{code, yes, no}`: on a true condition it moves `yes` bytes on, otherwise
 * `no`; landing exactly at the end accepts, beyond it (end + 4) rejects.
 *
 *    0  S_EQ  yes 8  no 16   [port]   sport == P? → 8 : → 16
 *    8  JMP   yes 8  no 16            always `no`: → 24, the end: accept
 *   16  D_EQ  yes 8  no 12   [port]   dport == P? → 24 accept : → 28 reject
 *
 * (What `ss` builds for `sport = :P or dport = :P`; the port of an `_EQ` op
 * sits in the `no` field of the op after it, in host order.)
 */
function writeRequest(
  view: DataView,
  seq: number,
  family: 4 | 6,
  mask: number,
  port: number | undefined,
): number {
  const len = NLMSG_HDRLEN + REQ_LEN + (port === undefined ? 0 : NLA_HDRLEN + BYTECODE_LEN);
  new Uint8Array(view.buffer, view.byteOffset, len).fill(0);
  view.setUint32(0, len, LE);
  view.setUint16(4, SOCK_DIAG_BY_FAMILY, LE);
  view.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, LE);
  view.setUint32(8, seq, LE);
  const r = NLMSG_HDRLEN;
  view.setUint8(r, family === 4 ? AF_INET : AF_INET6);
  view.setUint8(r + 1, IPPROTO_TCP);
  view.setUint32(r + 4, mask, LE);
  if (port !== undefined) {
    const a = r + REQ_LEN;
    view.setUint16(a, NLA_HDRLEN + BYTECODE_LEN, LE);
    view.setUint16(a + 2, INET_DIAG_REQ_BYTECODE, LE);
    const op = (at: number, code: number, yes: number, no: number) => {
      view.setUint8(a + NLA_HDRLEN + at, code);
      view.setUint8(a + NLA_HDRLEN + at + 1, yes);
      view.setUint16(a + NLA_HDRLEN + at + 2, no, LE);
    };
    op(0, INET_DIAG_BC_S_EQ, 8, 16);
    op(4, 0, 0, port);
    op(8, INET_DIAG_BC_JMP, 8, 16);
    op(16, INET_DIAG_BC_D_EQ, 8, 12);
    op(20, 0, 0, port);
  }
  return len;
}

/** Like `socket_table.ts`'s compression: the longest run (≥ 2) of zero groups, the first on a tie. */
function formatIPv6(w0: number, w1: number, w2: number, w3: number): string {
  const g = [
    w0 >>> 16,
    w0 & 0xffff,
    w1 >>> 16,
    w1 & 0xffff,
    w2 >>> 16,
    w2 & 0xffff,
    w3 >>> 16,
    w3 & 0xffff,
  ];
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((n) => n.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

interface CachedIPv6 {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
  text: string;
}

/**
 * A netlink socket for `inet_diag` dumps, created inside one lab namespace;
 * `Disposable` (disposal closes it, idempotently).
 *
 * @example Count the SYN_RECV entries of port 8080
 * ```ts ignore
 * import { SockDiag } from "./sock_diag.ts";
 *
 * using diag = SockDiag.open("bl-123-abcd-server");
 * const rows = diag.dump({ family: 4, port: 8080, states: ["SYN_RECV"] });
 * console.log(rows.length);
 * ```
 */
export class SockDiag implements Disposable {
  /** The namespace whose sockets it lists. */
  readonly nsName: string;
  #fd: number;
  #seq = 0;
  #busy = false;
  /** Why the socket was closed after a dump failed midway. */
  #broken: string | undefined;
  readonly #buf = new Uint8Array(RECV_BUFFER);
  readonly #view = new DataView(this.#buf.buffer);
  readonly #req = new DataView(new ArrayBuffer(128));
  readonly #v4 = new Map<number, string>();
  readonly #v6 = new Map<number, CachedIPv6>();

  private constructor(nsName: string, fd: number) {
    this.nsName = nsName;
    this.#fd = fd;
  }

  /**
   * Opens a `NETLINK_SOCK_DIAG` socket inside namespace `nsName`, with a 2 s
   * receive timeout, and checks that it belongs to that namespace.
   *
   * @param nsName a lab namespace (`/run/netns/<nsName>`).
   * @returns the open socket.
   * @throws {RangeError} for a name that is not a lab namespace's.
   * @throws {Error} when the namespace cannot be entered or the socket set up (with errno).
   */
  static open(nsName: string): SockDiag {
    const action = `Cannot open a sock_diag socket in namespace "${nsName}"`;
    const lib = libc();
    const made = withNetns(nsName, () => {
      const fd = lib.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
      return fd < 0 ? { fd, error: lastErrno() } : { fd };
    });
    if (made.error) throw new Error(`${action}: socket() failed: ${describeErrno(made.error)}`);
    const diag = new SockDiag(nsName, made.fd);
    try {
      const size = new Uint8Array(new Int32Array([SOCKET_RCVBUF]).buffer);
      if (
        lib.setsockopt(made.fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) < 0 &&
        lib.setsockopt(made.fd, SOL_SOCKET, SO_RCVBUF, size, 4) < 0
      ) {
        throw new Error(`${action}: setsockopt(SO_RCVBUF) failed: ${describeErrno(lastErrno())}`);
      }
      const timeout = new Uint8Array(new BigInt64Array([BigInt(RECV_TIMEOUT_S), 0n]).buffer);
      if (lib.setsockopt(made.fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 16) < 0) {
        throw new Error(
          `${action}: setsockopt(SO_RCVTIMEO) failed: ${describeErrno(lastErrno())}`,
        );
      }
      const want = `net:[${Deno.statSync(`/run/netns/${nsName}`).ino}]`;
      const nsFd = lib.ioctl(made.fd, BigInt(SIOCGSKNS), 0n);
      if (nsFd < 0) {
        throw new Error(`${action}: ioctl(SIOCGSKNS) failed: ${describeErrno(lastErrno())}`);
      }
      let got: string;
      try {
        got = `net:[${Deno.statSync(`/proc/thread-self/fd/${nsFd}`).ino}]`;
      } finally {
        lib.close(nsFd);
      }
      if (got !== want) {
        throw new Error(`${action}: the socket belongs to "${got}", not the namespace's "${want}"`);
      }
    } catch (err) {
      diag[Symbol.dispose]();
      throw err;
    }
    return diag;
  }

  /**
   * Lists the namespace's TCP sockets of one family, filtered in the kernel.
   * Like `/proc/net/tcp`, a dump is not a snapshot: the kernel walks its hash
   * buckets while connections change.
   *
   * @param query family, and optionally a port (local or remote) and states.
   * @returns one row per socket; request sockets as `SYN_RECV`.
   * @throws {RangeError} for a port or state out of range.
   * @throws {Error} when the kernel refuses the request (with errno), does
   *   not answer within 2 s, or the dump exceeds its bounds; a dump that fails
   *   midway closes the socket (open a new one).
   */
  dump(query: DumpQuery): SocketRow[] {
    const dump = this.#start(query);
    const lib = libc();
    try {
      for (;;) {
        dump.next();
        const n = Number(lib.recv(this.#fd, this.#buf, RECV_BUFFER_N, MSG_TRUNC));
        if (n < 0) {
          const e = lastErrno();
          if (e.code === EINTR) continue;
          if (e.code === EAGAIN) {
            throw new Error(`${dump.action}: the kernel sent nothing for ${RECV_TIMEOUT_S} s`);
          }
          throw new Error(`${dump.action}: recv() failed: ${describeErrno(e)}`);
        }
        if (this.#take(n, dump)) return dump.rows;
      }
    } catch (err) {
      this.#fail(err, dump);
    } finally {
      this.#busy = false;
    }
  }

  /** Checks the query, sends the request and returns the dump's state. */
  #start(query: DumpQuery): DumpState {
    const action = `Cannot dump the TCP sockets of namespace "${this.nsName}"`;
    if (query.family !== 4 && query.family !== 6) {
      throw new RangeError(`${action}: family must be 4 or 6, got ${String(query.family)}`);
    }
    const port = query.port;
    if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
      throw new RangeError(`${action}: port must be an integer from 1 to 65535, got ${port}`);
    }
    const mask = stateMask(query.states, action);
    if (this.#fd < 0) {
      throw new Error(
        `${action}: the socket is closed${
          this.#broken === undefined ? "" : ` after a failed dump (${this.#broken}); open a new one`
        }`,
      );
    }
    if (this.#busy) throw new Error(`${action}: another dump of this socket is in progress`);
    const lib = libc();
    const fd = this.#fd;
    const seq = this.#seq = (this.#seq % 0x7fffffff) + 1;
    const len = writeRequest(this.#req, seq, query.family, mask, port);
    const sent = Number(
      lib.sendto(fd, new Uint8Array(this.#req.buffer, 0, len), BigInt(len), 0, KERNEL, 12),
    );
    if (sent !== len) {
      const why = sent < 0 ? describeErrno(lastErrno()) : `sent ${sent} of ${len} bytes`;
      throw new Error(`${action}: sendto() failed: ${why}`);
    }
    this.#busy = true;
    const deadline = performance.now() + scaled(MAX_DUMP_MS);
    let recvs = 0;
    return {
      action,
      seq,
      rows: [],
      ended: false,
      next() {
        if (++recvs > MAX_RECVS) {
          throw new Error(`${action}: the dump did not end within ${MAX_RECVS} recv() calls`);
        }
        if (performance.now() > deadline) {
          throw new Error(`${action}: the dump did not end within ${scaled(MAX_DUMP_MS)} ms`);
        }
      },
    };
  }

  /** Parses the `n` bytes one recv() gave; true once the dump is complete. */
  #take(n: number, dump: DumpState): boolean {
    const { action, seq } = dump;
    const buf = this.#buf;
    const view = this.#view;
    if (n > buf.length) {
      throw new Error(`${action}: a ${n}-byte message did not fit the ${buf.length}-byte buffer`);
    }
    for (let off = 0; off + NLMSG_HDRLEN <= n;) {
      const mlen = view.getUint32(off, LE);
      if (mlen < NLMSG_HDRLEN || off + mlen > n) {
        throw new Error(`${action}: malformed netlink message (length ${mlen} at ${off} of ${n})`);
      }
      // Messages of an earlier, abandoned request carry its sequence number.
      if (view.getUint32(off + 8, LE) === seq) {
        const type = view.getUint16(off + 4, LE);
        if (type === SOCK_DIAG_BY_FAMILY) {
          if (mlen < NLMSG_HDRLEN + MSG_LEN) {
            throw new Error(`${action}: short inet_diag_msg (${mlen} bytes)`);
          }
          dump.rows.push(this.#row(view, off + NLMSG_HDRLEN, action));
        } else if (type === NLMSG_DONE) {
          dump.ended = true;
          const error = mlen >= NLMSG_HDRLEN + 4 ? view.getInt32(off + NLMSG_HDRLEN, LE) : 0;
          if (error < 0) {
            throw new Error(
              `${action}: the dump ended with ${errnoText(-error)} (errno ${-error})`,
            );
          }
          return true;
        } else if (type === NLMSG_ERROR) {
          dump.ended = true;
          const error = -view.getInt32(off + NLMSG_HDRLEN, LE);
          throw new Error(
            `${action}: the kernel refused the request: ${errnoText(error)} (errno ${error})`,
          );
        }
      }
      off += (mlen + 3) & ~3;
    }
    return false;
  }

  /** A dump failed: unless it had ended, the rest may still come, so the socket is closed. */
  #fail(err: unknown, dump: DumpState): never {
    if (!dump.ended) {
      this.#broken = err instanceof Error ? err.message : String(err);
      this[Symbol.dispose]();
    }
    throw err;
  }

  /** One `struct inet_diag_msg` at `p`. */
  #row(view: DataView, p: number, action: string): SocketRow {
    const family = view.getUint8(p);
    const stateNumber = view.getUint8(p + 1);
    const state = STATE_BY_NUMBER[stateNumber];
    if (state === undefined) throw new Error(`${action}: unknown TCP state ${stateNumber}`);
    const v4 = family === AF_INET;
    return {
      state,
      localAddress: v4 ? this.#ipv4(view, p + 8) : this.#ipv6(view, p + 8),
      localPort: view.getUint16(p + 4, false),
      remoteAddress: v4 ? this.#ipv4(view, p + 24) : this.#ipv6(view, p + 24),
      remotePort: view.getUint16(p + 6, false),
      sendQ: view.getUint32(p + 60, LE),
      recvQ: view.getUint32(p + 56, LE),
    };
  }

  #ipv4(view: DataView, p: number): string {
    const key = view.getUint32(p, false);
    let text = this.#v4.get(key);
    if (text === undefined) {
      text = `${key >>> 24}.${(key >>> 16) & 0xff}.${(key >>> 8) & 0xff}.${key & 0xff}`;
      if (this.#v4.size >= ADDRESS_CACHE) this.#v4.clear();
      this.#v4.set(key, text);
    }
    return text;
  }

  #ipv6(view: DataView, p: number): string {
    const w0 = view.getUint32(p, false);
    const w1 = view.getUint32(p + 4, false);
    const w2 = view.getUint32(p + 8, false);
    const w3 = view.getUint32(p + 12, false);
    const key = (w0 ^ Math.imul(w1, 0x9e3779b1) ^ Math.imul(w2, 0x85ebca77) ^
      Math.imul(w3, 0xc2b2ae3d)) | 0;
    const hit = this.#v6.get(key);
    if (hit !== undefined && hit.w0 === w0 && hit.w1 === w1 && hit.w2 === w2 && hit.w3 === w3) {
      return hit.text;
    }
    const text = formatIPv6(w0, w1, w2, w3);
    if (this.#v6.size >= ADDRESS_CACHE) this.#v6.clear();
    this.#v6.set(key, { w0, w1, w2, w3, text });
    return text;
  }

  /** Closes the socket. Idempotent. */
  [Symbol.dispose](): void {
    if (this.#fd < 0) return;
    libc().close(this.#fd);
    this.#fd = -1;
  }
}

/**
 * The LISTEN socket of `port`: its accept queue's length and limit, what
 * `ss -ltn` shows as Recv-Q and Send-Q.
 *
 * @param diag a socket of the listener's namespace.
 * @param family the listener's address family.
 * @param port the listening port.
 * @returns its queues, or `undefined` when nothing listens on `port` (the first listener if several do).
 * @throws {Error} as {@linkcode SockDiag.dump} does.
 *
 * @example Read the accept queue of port 8080
 * ```ts ignore
 * import { readListenDiag, SockDiag } from "./sock_diag.ts";
 *
 * using diag = SockDiag.open("bl-123-abcd-server");
 * console.log(readListenDiag(diag, 4, 8080)); // { recvQ: 3, sendQ: 2 }
 * ```
 */
export function readListenDiag(
  diag: SockDiag,
  family: 4 | 6,
  port: number,
): ListenQueues | undefined {
  for (const r of diag.dump({ family, port, states: ["LISTEN"] })) {
    if (r.localPort === port) return { recvQ: r.recvQ, sendQ: r.sendQ };
  }
  return undefined;
}
