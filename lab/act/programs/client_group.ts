/**
 * One client group. Run inside a client namespace by the runner:
 *
 *   deno run --allow-net --allow-ffi client_group.ts '<ClientGroupSpec as JSON>'
 *
 * (`ClientGroupSpec`, its commands and events are typed in `protocol.ts`.)
 *
 * It prints `{"event":"ready"}`, waits for `{"cmd":"go"}` on stdin, then opens
 * the group's connections (all at once, or one every `intervalMs`: connection
 * k is due `k × intervalMs` after "go", and a timer that fires late opens every
 * connection due by then, so lateness does not add up) and reports
 * what the kernel answered for each, as JSON lines with times in milliseconds
 * since "go":
 *
 *   {"event":"ready","pid":N,"maxOpenFiles":N}             waiting for "go"; maxOpenFiles is the
 *                                                         soft RLIMIT_NOFILE (only with --allow-ffi)
 *   {"event":"open","i":k,"t":…}                           connect() k is being called (staggered groups)
 *   {"event":"launched","n":N,"t":…}                      every connect() has been called
 *   {"event":"connect","i":k,"result":"ok"|"ECONNREFUSED"|…,"t":…,"ms":…}
 *   {"event":"after","i":k,"result":"data"|"eof"|"timeout"|"sent"|"ECONNRESET"|…,"t":…,"bytes":n}
 *       the follow-up's outcome: "sent" once every byte is in the send buffer; "data" (the
 *       first read's size), "eof" or "timeout" (nothing `then.timeoutMs` after connect())
 *   {"event":"deadline","i":k,"t":…,"phase":"connect"|"after"}   gave up; the socket was closed
 *   {"event":"error","message":"…"}   it cannot run (exit 1, 2 for a bad spec), before "ready";
 *                                     or an unusable command line (ignored)
 *
 * Sockets stay open (so the kernel's state is what is observed) until
 * `{"cmd":"close"}`, `{"cmd":"exit"}` or EOF on stdin. Every connected socket
 * is read (and what arrives discarded, unless the follow-up reads it): when
 * the peer closes its side the socket is closed too, and a reset closes it.
 *
 * Commands on stdin (one JSON object a line):
 *   {"cmd":"go"}     open the connections (a second "go" is ignored)
 *   {"cmd":"close"}  close every socket of the group now; once all are
 *                    closed: {"event":"closed","n":N,"t":…}, N the sockets it
 *                    closed (those a deadline, an error or the peer had closed not counted).
 *                    A connection closed while connecting or in its follow-up
 *                    reports nothing more; a staggered group still launching
 *                    goes on opening its remaining connections.
 *   {"cmd":"exit"}   close every socket and exit 0 (EOF, SIGTERM and SIGINT do the same)
 *
 * Open files: the group needs one descriptor a connection plus
 * `OPEN_FILES_MARGIN` for the runtime. Before "ready" it raises its soft
 * `RLIMIT_NOFILE` to that when it is lower, and the hard limit too when that
 * is lower and the process may (root: up to `fs.nr_open`); if it cannot, it
 * reports an error naming both numbers and exits 1, so a group never fails
 * its connections with `EMFILE` for want of a limit.
 *
 * Sockets: with `--allow-ffi` it drives the sockets itself through libc
 * (non-blocking `socket()`, `bind()`, `connect()`, one `epoll` set waited on
 * from a worker thread), so 10,000 connections are 10,000 `connect()` calls
 * in a few hundred milliseconds. It binds `localAddress` with
 * `IP_BIND_ADDRESS_NO_PORT`, so the kernel picks the source port at
 * `connect()` by the whole 4-tuple; a plain `bind()` to port 0 searches the
 * bound ports of the address for a free one, which grows with every socket
 * bound (here 10,000 binds took 9 s of kernel time). Results are errno names
 * (`ECONNREFUSED`, `ETIMEDOUT`, `ECONNRESET`, …). Without `--allow-ffi` it
 * falls back to `node:net`, with the same events, for small groups.
 * @module
 */
import type { NetConnectOpts, Socket } from "node:net";
import { isObject } from "../../base/values.ts";
import { drainLines, emit, emitSoon, readLines } from "./lines.ts";
import type { ClientEvent, ClientGroupSpec } from "./protocol.ts";
import {
  AF_INET,
  AF_INET6,
  RLIMIT_NOFILE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../../base/libc_constants.ts";

/** Prints one event (typed by the protocol). */
function say(e: ClientEvent): void {
  emit(e);
}

/** Queues one event (typed by the protocol). */
function saySoon(e: ClientEvent): void {
  emitSoon(e);
}

export type { ClientGroupSpec };

/** Descriptors the runtime itself may hold besides the group's sockets (stdio, epoll, timers, …). */
export const OPEN_FILES_MARGIN = 256;

const SO_ERROR = 4;
const SOL_IP = 0;
const IP_BIND_ADDRESS_NO_PORT = 24;
const SOL_TCP = 6;
const TCP_INFO = 11;
const TCP_ESTABLISHED = 1;
const TCP_SYN_SENT = 2;
const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_MOD = 3;
const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLERR = 0x8;
const EPOLLRDHUP = 0x2000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const EINTR = 4;
const EAGAIN = 11;
const EINPROGRESS = 115;
/** `struct epoll_event` is packed on x86-64 (12 bytes), naturally aligned elsewhere (16). */
const EPOLL_EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
const EPOLL_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;
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

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function isDuration(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

/**
 * Parses the program's argument.
 *
 * @throws {TypeError} for text that is not a JSON object of the spec's shape.
 * @throws {RangeError} for a count, port, size or duration out of range.
 */
export function parseClientGroupSpec(text: string | undefined): ClientGroupSpec {
  let v: unknown;
  try {
    v = JSON.parse(text ?? "");
  } catch {
    throw new TypeError(`Cannot parse the client group spec "${text}": not JSON`);
  }
  const bad = (what: string) => `Cannot parse the client group spec ${text}: ${what}`;
  if (!isObject(v)) throw new TypeError(bad("not an object"));
  if (v.family !== 4 && v.family !== 6) throw new TypeError(bad(`"family" must be 4 or 6`));
  if (typeof v.address !== "string") throw new TypeError(bad(`"address" must be a string`));
  if (v.localAddress !== undefined && typeof v.localAddress !== "string") {
    throw new TypeError(bad(`"localAddress" must be a string`));
  }
  if (!Number.isInteger(v.port) || (v.port as number) < 1 || (v.port as number) > 65535) {
    throw new RangeError(bad(`"port" must be an integer from 1 to 65535`));
  }
  if (!isCount(v.count)) throw new RangeError(bad(`"count" must be a non-negative integer`));
  if (!isDuration(v.intervalMs)) throw new RangeError(bad(`"intervalMs" must be ≥ 0`));
  if (!isDuration(v.deadlineMs)) throw new RangeError(bad(`"deadlineMs" must be ≥ 0`));
  const then = v.then;
  if (!isObject(then)) throw new TypeError(bad(`"then" must be an object`));
  const sends = then.kind === "send" || then.kind === "sendRead";
  const reads = then.kind === "read" || then.kind === "sendRead";
  if (!sends && !reads && then.kind !== "nothing") {
    throw new TypeError(bad(`unknown "then.kind" ${JSON.stringify(then.kind)}`));
  }
  if (sends && !isCount(then.bytes)) {
    throw new RangeError(bad(`"then.bytes" must be a non-negative integer`));
  }
  if (reads && !isDuration(then.timeoutMs)) {
    throw new RangeError(bad(`"then.timeoutMs" must be ≥ 0`));
  }
  return v as unknown as ClientGroupSpec;
}

/** What a transport reports about one connection. Never called from inside `connect()`. */
interface ConnectionEvents {
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
interface Connection {
  /** Sends `bytes` zero bytes; `done` gets an errno name if that failed (the socket is then closed). */
  write(bytes: number, done: (code?: string) => void): void;
  /** Closes the socket; resolves to whether it was still open. */
  close(): Promise<boolean>;
}

/** How the group's sockets are driven. */
interface Transport {
  /** Creates socket `i` and calls connect() on it. */
  connect(i: number, events: ConnectionEvents): Connection;
  /** Closes every socket now (before exit). */
  closeAll(): void;
}

function openLibc() {
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

type Libc = ReturnType<typeof openLibc>["symbols"];

/**
 * errno of the last failed libc call on this thread. Read it right after the
 * call, and trust it only to name a failure the return value already showed:
 * the runtime can change errno between two calls (ENOENT after `connect()`,
 * about once in 10,000 reads, early in a run while hot code is compiled), so
 * a decision that matters is checked against the socket itself.
 */
function errno(libc: Libc): number {
  const p = libc.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

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
function ensureOpenFiles(libc: Libc, needed: number, what: string): number {
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
class EpollTransport implements Transport {
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
async function nodeTransport(spec: ClientGroupSpec): Promise<Transport> {
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
function quit(message: string, code: number): never {
  say({ event: "error", message });
  Deno.exit(code);
}

async function main(): Promise<void> {
  let spec: ClientGroupSpec;
  try {
    spec = parseClientGroupSpec(Deno.args[0]);
  } catch (err) {
    quit((err as Error).message, 2);
  }
  const what = `${spec.count} connections to ${spec.address} port ${spec.port}`;
  let transport: Transport;
  let maxOpenFiles: number | undefined;
  if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") {
    const libc = openLibc().symbols;
    try {
      maxOpenFiles = ensureOpenFiles(libc, spec.count + OPEN_FILES_MARGIN, what);
      transport = new EpollTransport(libc, spec);
    } catch (err) {
      // A RangeError is an address of the spec that does not parse.
      quit((err as Error).message, err instanceof RangeError ? 2 : 1);
    }
  } else {
    transport = await nodeTransport(spec);
  }

  /** Per connection: stop its timers and events, then close it. */
  const closers: (() => Promise<boolean>)[] = [];
  let t0 = 0;
  let started = false;
  const now = () => Math.round((performance.now() - t0) * 1000) / 1000;
  const then = spec.then;
  const reads = then.kind === "read" || then.kind === "sendRead";

  function open(i: number): void {
    const began = performance.now();
    let phase: "connect" | "after" | "done" = "connect";
    let deadline: ReturnType<typeof setTimeout> | undefined;
    let readTimer: ReturnType<typeof setTimeout> | undefined;
    const stop = () => {
      phase = "done";
      clearTimeout(deadline);
      clearTimeout(readTimer);
    };
    const finish = (result: string, extra: Record<string, unknown> = {}) => {
      if (phase !== "after") return;
      stop();
      saySoon({ event: "after", i, result, t: now(), ...extra });
    };
    const connection = transport.connect(i, {
      connected() {
        if (phase !== "connect") return;
        saySoon({ event: "connect", i, result: "ok", t: now(), ms: performance.now() - began });
        if (then.kind === "nothing") return stop();
        phase = "after";
        if (then.kind === "read" || then.kind === "sendRead") {
          readTimer = setTimeout(() => finish("timeout"), then.timeoutMs);
        }
        if (then.kind === "send" || then.kind === "sendRead") {
          connection.write(then.bytes, (code) => {
            if (code !== undefined) finish(code);
            else if (then.kind === "send") finish("sent", { bytes: then.bytes });
          });
        }
      },
      failed(code) {
        if (phase !== "connect") return finish(code);
        stop();
        saySoon({ event: "connect", i, result: code, t: now(), ms: performance.now() - began });
      },
      data(n) {
        if (reads) finish("data", { bytes: n });
      },
      ended() {
        if (reads) finish("eof");
      },
    });
    closers.push(() => {
      stop();
      return connection.close();
    });
    if (spec.deadlineMs > 0) {
      deadline = setTimeout(() => {
        if (phase === "done") return;
        saySoon({ event: "deadline", i, t: now(), phase });
        stop();
        void connection.close();
      }, spec.deadlineMs);
    }
  }

  function go(): void {
    if (started) return;
    started = true;
    t0 = performance.now();
    if (spec.intervalMs <= 0 || spec.count === 0) {
      for (let i = 0; i < spec.count; i++) open(i);
      saySoon({ event: "launched", n: spec.count, t: now() });
      return;
    }
    // Connection k is due at t0 + k·intervalMs: a timer that fires late opens every connection
    // due by then, so lateness does not add up over the group.
    let next = 0;
    const step = () => {
      const due = Math.min(spec.count, Math.floor((performance.now() - t0) / spec.intervalMs) + 1);
      for (; next < due; next++) {
        saySoon({ event: "open", i: next, t: now() });
        open(next);
      }
      if (next < spec.count) {
        setTimeout(step, Math.max(0, t0 + next * spec.intervalMs - performance.now()));
      } else saySoon({ event: "launched", n: spec.count, t: now() });
    };
    step();
  }

  let closing = false;
  const shutdown = () => {
    if (closing) return;
    closing = true;
    transport.closeAll();
    void drainLines().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", shutdown);
  Deno.addSignalListener("SIGINT", shutdown);
  say({ event: "ready", pid: Deno.pid, ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }) });
  for await (const line of readLines(Deno.stdin.readable)) {
    if (!line.trim()) continue;
    let cmd: { cmd?: unknown };
    try {
      cmd = JSON.parse(line);
    } catch {
      say({ event: "error", message: `Cannot parse command line "${line}"` });
      continue;
    }
    if (cmd.cmd === "go") go();
    else if (cmd.cmd === "close") {
      const closed = await Promise.all(closers.map((close) => close()));
      saySoon({ event: "closed", n: closed.filter(Boolean).length, t: now() });
    } else if (cmd.cmd === "exit") break;
  }
  shutdown();
}

if (import.meta.main) main();
