/**
 * How a client group drives its sockets: through libc and one epoll set
 * ({@linkcode EpollTransport}, with `--allow-ffi`: 10,000 connections from
 * one process) or through `node:net` ({@linkcode nodeTransport}, a fallback
 * for small groups). Part of `client_group.ts`, split out for size.
 * @module
 */
import {
  AF_INET,
  AF_INET6,
  EAGAIN,
  EINPROGRESS,
  EINTR,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_MOD,
  EPOLL_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  EPOLLERR,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  readErrno,
  RLIMIT_NOFILE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../../base/libc_constants.ts";
import type { NetConnectOpts, Socket } from "node:net";
import { drainLines, emitSoon } from "../../base/lines.ts";
import type { ClientEvent, ClientGroupSpec } from "./protocol.ts";

/** Queues one event (typed by the protocol). */
function saySoon(e: ClientEvent): void {
  emitSoon(e);
}

const SO_ERROR = 4;
const SOL_IP = 0;
const IP_BIND_ADDRESS_NO_PORT = 24;
const SOL_TCP = 6;
const TCP_INFO = 11;
const TCP_ESTABLISHED = 1;
const TCP_SYN_SENT = 2;
/** Events one `epoll_wait()` returns at most. */
const EPOLL_BATCH = 1024;
/** Bytes one `recv()` or `send()` moves at most. */
const IO_CHUNK = 65536;

/** Linux errno numbers a socket can meet, by name (Node's `err.code` spelling). */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  4: "EINTR",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  32: "EPIPE",
  71: "EPROTO",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  102: "ENETRESET",
  103: "ECONNABORTED",
  104: "ECONNRESET",
  105: "ENOBUFS",
  106: "EISCONN",
  107: "ENOTCONN",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  112: "EHOSTDOWN",
  113: "EHOSTUNREACH",
  114: "EALREADY",
  115: "EINPROGRESS",
};

/** Whether `code` is a failure of a socket call, not "try again" or an errno V8 left. */
function isSocketError(code: number): boolean {
  return code in ERRNO_NAMES && code !== EAGAIN && code !== EINTR && code !== EINPROGRESS;
}

function errnoName(code: number): string {
  return ERRNO_NAMES[code] ?? `ERRNO${code}`;
}

/** What a transport reports about one connection. Never called from inside `connect()`. */
export interface ConnectionEvents {
  /** connect() succeeded. */
  connected(): void;
  /** connect() failed, or the connection did later (`code` an errno name); the socket is closed. */
  failed(code: string): void;
  /** `n` bytes arrived (n > 0). */
  data(n: number): void;
  /** The peer closed its side; this side closed the socket too. */
  ended(): void;
}

/** One connection as a transport holds it. */
export interface Connection {
  /** Sends `bytes` zero bytes; `done` gets an errno name if that failed (the socket is then closed). */
  write(bytes: number, done: (code?: string) => void): void;
  /** Closes the socket; resolves to whether it was still open. */
  close(): Promise<boolean>;
}

/** How the group's sockets are driven. */
export interface Transport {
  /** Creates socket `i` and calls connect() on it. */
  connect(i: number, events: ConnectionEvents): Connection;
  /** Closes every socket now (before exit). */
  closeAll(): void;
}

export function openLibc() {
  return Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
    getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
    bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
    inet_pton: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
    epoll_create1: { parameters: ["i32"], result: "i32" },
    epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
    // On a worker thread, so waiting leaves the event loop free for timers and commands.
    epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
    getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
    setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
    strerror: { parameters: ["i32"], result: "pointer" },
    __errno_location: { parameters: [], result: "pointer" },
  });
}

export type Libc = ReturnType<typeof openLibc>["symbols"];

/**
 * errno of the last failed libc call (see {@linkcode readErrno}: a decision
 * that matters is checked against the socket itself).
 */
const errno = readErrno;

function describeErrno(libc: Libc, code: number): string {
  const s = libc.strerror(code);
  const text = s === null ? "unknown error" : Deno.UnsafePointerView.getCString(s);
  return `${text} (${errnoName(code)})`;
}

function describeLimit(n: bigint): string {
  return n === 0xffff_ffff_ffff_ffffn ? "unlimited" : String(n);
}

/**
 * Makes the soft `RLIMIT_NOFILE` at least `needed`: up to the hard limit,
 * and beyond it by raising the hard limit too (which needs
 * `CAP_SYS_RESOURCE` and stays within `fs.nr_open`).
 *
 * @returns the soft limit now in force.
 * @throws {Error} naming the needed and the available limit when it cannot.
 */
export function ensureOpenFiles(libc: Libc, needed: number, what: string): number {
  const r = new BigUint64Array(2);
  if (libc.getrlimit(RLIMIT_NOFILE, r) < 0) {
    throw new Error(`Cannot read RLIMIT_NOFILE: ${describeErrno(libc, errno(libc))}`);
  }
  const [soft = 0n, hard = 0n] = r;
  const want = BigInt(needed);
  if (soft >= want) return Number(soft);
  if (libc.setrlimit(RLIMIT_NOFILE, new BigUint64Array([want, hard >= want ? hard : want])) === 0) {
    libc.getrlimit(RLIMIT_NOFILE, r);
    return Number(r[0]);
  }
  const why = describeErrno(libc, errno(libc));
  throw new Error(
    `Cannot open ${what}: ${needed} open files are needed, but RLIMIT_NOFILE is ${
      describeLimit(soft)
    } (hard limit ${describeLimit(hard)}) and raising it to ${needed} failed: ${why}. ` +
      `Raise the hard limit of the shell that starts the lab (as root: \`ulimit -Hn ${needed}\`; ` +
      `it cannot exceed /proc/sys/fs/nr_open) or open fewer connections in the group`,
  );
}

/** A socket address for `address:port`, parsed by libc's `inet_pton()`. */
function sockaddr(libc: Libc, family: 4 | 6, address: string, port: number): Uint8Array {
  const buf = new Uint8Array(family === 4 ? 16 : 28);
  const view = new DataView(buf.buffer);
  view.setUint16(0, family === 4 ? AF_INET : AF_INET6, true);
  view.setUint16(2, port, false);
  const bytes = new Uint8Array(16);
  const text = new TextEncoder().encode(`${address}\0`);
  if (libc.inet_pton(family === 4 ? AF_INET : AF_INET6, text, bytes) !== 1) {
    throw new RangeError(`Cannot parse IPv${family} address "${address}"`);
  }
  if (family === 4) buf.set(bytes.subarray(0, 4), 4);
  else buf.set(bytes, 8);
  return buf;
}

/** One socket of `EpollTransport`. */
interface RawSocket {
  readonly i: number;
  readonly events: ConnectionEvents;
  fd: number;
  connecting: boolean;
  closed: boolean;
  /** Bytes of the pending write not yet sent, and its callback. */
  unsent: number;
  sent: ((code?: string) => void) | undefined;
  /** Whether the epoll set waits for writability (a write is pending). */
  wantsOut: boolean;
}

/**
 * Sockets driven through libc: non-blocking, in one epoll set (level-
 * triggered) that a worker thread waits on. Each socket's epoll data is
 * its index, never reused, so an event that comes after its socket closed
 * (and its descriptor was reused) finds nothing.
 */
export class EpollTransport implements Transport {
  readonly #libc: Libc;
  readonly #family: number;
  readonly #remote: Uint8Array;
  readonly #local: Uint8Array | undefined;
  readonly #epfd: number;
  readonly #sockets = new Map<number, RawSocket>();
  readonly #ready = new Uint8Array(EPOLL_EVENT_SIZE * EPOLL_BATCH);
  readonly #ctl = new Uint8Array(EPOLL_EVENT_SIZE);
  readonly #one = new Uint8Array(new Int32Array([1]).buffer);
  readonly #soError = new Uint8Array(4);
  readonly #soErrorLen = new Uint8Array(4);
  readonly #in = new Uint8Array(IO_CHUNK);
  readonly #zeros = new Uint8Array(IO_CHUNK);
  #waiting = false;

  constructor(libc: Libc, spec: ClientGroupSpec) {
    this.#libc = libc;
    this.#family = spec.family === 4 ? AF_INET : AF_INET6;
    this.#remote = sockaddr(libc, spec.family, spec.address, spec.port);
    this.#local = spec.localAddress ? sockaddr(libc, spec.family, spec.localAddress, 0) : undefined;
    this.#epfd = libc.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw new Error(`Cannot create an epoll set: ${this.#describe()}`);
  }

  #describe(): string {
    return describeErrno(this.#libc, errno(this.#libc));
  }

  connect(i: number, events: ConnectionEvents): Connection {
    const libc = this.#libc;
    const s: RawSocket = {
      i,
      events,
      fd: -1,
      connecting: true,
      closed: false,
      unsent: 0,
      sent: undefined,
      wantsOut: false,
    };
    const connection: Connection = {
      write: (bytes, done) => this.#write(s, bytes, done),
      close: () => Promise.resolve(this.#close(s)),
    };
    const fail = (code: number) => {
      this.#close(s);
      queueMicrotask(() => events.failed(errnoName(code)));
      return connection;
    };
    s.fd = libc.socket(this.#family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) return fail(errno(libc));
    if (this.#local) {
      // Best effort: without it bind() picks the port, only slower.
      libc.setsockopt(s.fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, this.#one, 4);
      if (libc.bind(s.fd, this.#local, this.#local.length) < 0) return fail(errno(libc));
    }
    if (libc.connect(s.fd, this.#remote, this.#remote.length) < 0) {
      const code = errno(libc);
      // A SYN on its way is EINPROGRESS, whatever errno says by now.
      if (code !== EINPROGRESS && !this.#underWay(s.fd)) return fail(code);
    }
    // Writable (or an error) once the handshake has ended, whichever way.
    if (!this.#control(s, EPOLL_CTL_ADD, EPOLLOUT)) return fail(errno(libc));
    this.#sockets.set(i, s);
    if (!this.#waiting) {
      this.#waiting = true;
      this.#wait().catch((err) => {
        saySoon({ event: "error", message: `Cannot wait for socket events: ${err.message}` });
        void drainLines().then(() => Deno.exit(1));
      });
    }
    return connection;
  }

  closeAll(): void {
    for (const s of this.#sockets.values()) this.#close(s);
  }

  #control(s: RawSocket, op: number, events: number): boolean {
    const view = new DataView(this.#ctl.buffer);
    view.setUint32(0, events, true);
    view.setUint32(EPOLL_DATA_OFFSET, s.i, true);
    view.setUint32(EPOLL_DATA_OFFSET + 4, 0, true);
    return this.#libc.epoll_ctl(this.#epfd, op, s.fd, this.#ctl) === 0;
  }

  /** What a connected socket waits for: input always, output while a write is pending. */
  #watch(s: RawSocket, wantsOut: boolean): void {
    s.wantsOut = wantsOut;
    this.#control(s, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP | (wantsOut ? EPOLLOUT : 0));
  }

  #close(s: RawSocket): boolean {
    if (s.closed) return false;
    s.closed = true;
    this.#sockets.delete(s.i);
    // Leaves the epoll set with its last descriptor.
    if (s.fd >= 0) this.#libc.close(s.fd);
    return true;
  }

  async #wait(): Promise<void> {
    const view = new DataView(this.#ready.buffer);
    let failures = 0;
    for (;;) {
      const n = await this.#libc.epoll_wait(this.#epfd, this.#ready, EPOLL_BATCH, -1);
      if (n < 0) {
        // errno belongs to the worker thread; EINTR is the one failure to expect.
        if (++failures === 3) throw new Error("epoll_wait() failed 3 times in a row");
        continue;
      }
      failures = 0;
      for (let k = 0; k < n; k++) {
        const at = k * EPOLL_EVENT_SIZE;
        const s = this.#sockets.get(view.getUint32(at + EPOLL_DATA_OFFSET, true));
        if (s !== undefined) this.#dispatch(s, view.getUint32(at, true));
      }
    }
  }

  #dispatch(s: RawSocket, ready: number): void {
    if (s.connecting) {
      const code = this.#takeError(s);
      if (code !== 0) {
        this.#close(s);
        s.events.failed(errnoName(code));
        return;
      }
      s.connecting = false;
      this.#watch(s, false);
      s.events.connected();
      // Input that is already there is reported again by the next epoll_wait().
      return;
    }
    if ((ready & EPOLLERR) !== 0) {
      // The error itself, not recv()'s errno, which is less sure (see errno()).
      const code = this.#takeError(s);
      if (code !== 0) {
        const done = s.sent;
        s.sent = undefined;
        this.#close(s);
        done?.(errnoName(code));
        s.events.failed(errnoName(code));
        return;
      }
    }
    if ((ready & EPOLLOUT) !== 0 && s.unsent > 0) this.#flush(s);
    if (!s.closed && (ready & ~EPOLLOUT) !== 0) this.#read(s);
  }

  /** Whether the socket's state (`TCP_INFO`) is SYN_SENT or ESTABLISHED. */
  #underWay(fd: number): boolean {
    const info = new Uint8Array(8);
    const len = new Uint8Array(new Uint32Array([info.length]).buffer);
    if (this.#libc.getsockopt(fd, SOL_TCP, TCP_INFO, info, len) < 0) return false;
    return info[0] === TCP_SYN_SENT || info[0] === TCP_ESTABLISHED;
  }

  /** The socket's pending error (`SO_ERROR`), cleared by reading it. */
  #takeError(s: RawSocket): number {
    new DataView(this.#soErrorLen.buffer).setUint32(0, 4, true);
    if (this.#libc.getsockopt(s.fd, SOL_SOCKET, SO_ERROR, this.#soError, this.#soErrorLen) < 0) {
      return errno(this.#libc);
    }
    return new DataView(this.#soError.buffer).getInt32(0, true);
  }

  #read(s: RawSocket): void {
    const n = Number(this.#libc.recv(s.fd, this.#in, BigInt(IO_CHUNK), MSG_DONTWAIT));
    if (n > 0) return s.events.data(n);
    if (n === 0) {
      this.#close(s);
      return s.events.ended();
    }
    const code = errno(this.#libc);
    // Nothing to read after all; a real failure is reported again (EPOLLERR, or EOF).
    if (!isSocketError(code)) return;
    this.#close(s);
    s.events.failed(errnoName(code));
  }

  #write(s: RawSocket, bytes: number, done: (code?: string) => void): void {
    if (s.closed) return queueMicrotask(() => done("EPIPE"));
    s.unsent = bytes;
    s.sent = done;
    this.#flush(s);
  }

  /** Sends what is left of the pending write until done, the buffer is full, or it fails. */
  #flush(s: RawSocket): void {
    while (s.unsent > 0) {
      const chunk = this.#zeros.subarray(0, Math.min(s.unsent, IO_CHUNK));
      const n = Number(
        this.#libc.send(s.fd, chunk, BigInt(chunk.length), MSG_DONTWAIT | MSG_NOSIGNAL),
      );
      if (n >= 0) {
        s.unsent -= n;
        continue;
      }
      const code = errno(this.#libc);
      if (!isSocketError(code)) {
        // Full (EAGAIN), or errno unsure: go on when writable, or hear of the failure then.
        if (!s.wantsOut) this.#watch(s, true);
        return;
      }
      const done = s.sent;
      s.unsent = 0;
      s.sent = undefined;
      this.#close(s);
      done?.(errnoName(code));
      return;
    }
    if (s.wantsOut) this.#watch(s, false);
    const done = s.sent;
    s.sent = undefined;
    done?.();
  }
}

/** Sockets of `node:net`: for runs without `--allow-ffi`, where libc is out of reach. */
export async function nodeTransport(spec: ClientGroupSpec): Promise<Transport> {
  const net = await import("node:net");
  const sockets: Socket[] = [];
  const codeOf = (err: unknown) => {
    const e = err as { code?: string; name?: string };
    return e.code ?? e.name ?? String(err);
  };
  return {
    connect(_i, events) {
      const options: NetConnectOpts = { host: spec.address, port: spec.port, family: spec.family };
      if (spec.localAddress) options.localAddress = spec.localAddress;
      const s = net.connect(options);
      sockets.push(s);
      s.on("connect", () => events.connected());
      s.on("error", (err) => events.failed(codeOf(err)));
      s.on("data", (d: Uint8Array) => events.data(d.length));
      s.on("end", () => events.ended());
      return {
        write(bytes, done) {
          s.write(new Uint8Array(bytes), (err) => done(err ? codeOf(err) : undefined));
        },
        close() {
          if (s.destroyed) return Promise.resolve(false);
          const closed = new Promise<boolean>((resolve) => s.once("close", () => resolve(true)));
          s.destroy();
          return closed;
        },
      };
    },
    closeAll() {
      for (const s of sockets) s.destroy();
    },
  };
}

/** Reports why the program cannot run and exits. */
