/**
 * The experiment's server. Run inside the server namespace by the runner:
 *
 *   deno run --allow-ffi --allow-read=/proc listen_server.ts '<ServerSpec as JSON>'

 * (`ServerSpec`, its commands and events are typed in `protocol.ts`.)
 *
 * It creates the socket through libc (`socket`, `setsockopt(SO_REUSEADDR)`,
 * `bind`, `listen(fd, backlog)`) because `Deno.listen` cannot set a backlog,
 * so the LISTEN socket's Send-Q in `ss -ltn` is `min(backlog, somaxconn)` for
 * exactly the backlog given. It calls `accept4()` only as its accept policy
 * (default `"never"`) or an `accept` command says, on the non-blocking socket
 * from timers, so stdin commands are read between accepts. Every accepted
 * connection stays open, never read, until the program exits; with
 * `"serve": {"replyBytes": N}` it is served instead, as a real server does:
 * its request (the first bytes that arrive) is read, N bytes are written
 * back and it is closed (`_serving.ts`).
 *
 * With `"maxOpenFiles": L` it lowers its own `RLIMIT_NOFILE` (soft and hard)
 * to `L` once it listens, so at most `L - openFiles` connections can be
 * accepted; later `accept4()` calls fail with `EMFILE` and the connections
 * stay in the kernel's accept queue. Before lowering the limit it closes the
 * descriptors it inherited from whoever started it (those above 2 without
 * `FD_CLOEXEC`: everything Deno opens has it), because one numbered at or above
 * `L` would not count against the limit and make `L - openFiles` wrong.
 *
 * With `"waitToListen": true` it first prints `{"event":"loaded","pid":N}`
 * and creates its socket only when `{"cmd":"listen"}` arrives (`{"cmd":"exit"}`
 * or EOF before that exits 0), so the runner can start it while it still
 * builds the namespace.
 *
 * Events on stdout (one JSON object a line; `t` is milliseconds since the
 * policy or command that accepted):
 *   {"event":"ready","pid":N,"openFiles":N,"maxOpenFiles":N}
 *       listening; `openFiles` counts `/proc/self/fd` (a directory handle the
 *       program keeps for that count included), `maxOpenFiles` is the soft
 *       `RLIMIT_NOFILE` read back
 *   {"event":"accepted","n":N,"total":N,"t":…}   one batch, only when n > 0
 *   {"event":"served","n":N,"total":N,"t":…}     with "serve": N more connections answered
 *       and closed (`t` since listening)
 *   {"event":"accept-error","errno":"EMFILE"|"ENFILE","total":N,"openFiles":N}
 *       a queued connection could not be accepted; once per episode (until an
 *       accept succeeds or a new policy or accept command arrives); the policy
 *       keeps running
 *   {"event":"error","message":"…"}   a failure (exit 1, 2 for bad arguments)
 *       or an unusable command line (ignored)
 * Commands on stdin (one JSON object a line):
 *   {"cmd":"policy","policy":P}   replace the accept policy; P is one of
 *       "never"                               stop accepting
 *       {"kind":"all"}                        accept everything queued, polling every 5 ms
 *       {"kind":"batch","n":N,"everyMs":M}    accept up to N now and every M ms
 *       {"kind":"rate","perSecond":R}         accept one now and one every 1000/R ms
 *     ("now" is the next timer turn, within milliseconds.) Turns follow a fixed
 *     schedule from the command; a timer that fires late takes the turns it
 *     missed along with its own, so their credit adds up.
 *   {"cmd":"accept","n":N}   accept up to N queued connections now, whatever the policy
 *   {"cmd":"exit"}           close every accepted connection and the listening
 *                            socket, exit 0 (EOF on stdin, SIGTERM and SIGINT do the same)
 * @module
 */
import {
  AF_INET,
  AF_INET6,
  EAGAIN,
  readErrno,
  RLIMIT_NOFILE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../../base/libc_constants.ts";
import { isObject } from "../../base/values.ts";
import { emit, readLines } from "../../base/lines.ts";
import { Servant } from "./_serving.ts";
import type { ServerCommand, ServerEvent, ServerPolicy, ServerSpec } from "./protocol.ts";

/** Prints one event (typed by the protocol). */
function say(e: ServerEvent): void {
  emit(e);
}

export type { ServerPolicy, ServerSpec };

const SO_REUSEADDR = 2;
const F_GETFD = 1;
const FD_CLOEXEC = 1;
const POLLIN = 1;
const ENFILE = 23;
const EMFILE = 24;
/** `offsetof(struct dirent, d_name)` in glibc on 64-bit Linux. */
const DIRENT_NAME_OFFSET = 19;
/** How often `{"kind":"all"}` looks at the accept queue. */
const ALL_POLL_MS = 5;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // On a worker thread, so a read that waits for a command leaves the event loop free.
  read: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir: { parameters: ["pointer"], result: "pointer" },
  rewinddir: { parameters: ["pointer"], result: "void" },
  closedir: { parameters: ["pointer"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
});

function errno(): number {
  return readErrno(libc.symbols);
}

function fail(action: string): never {
  const code = errno();
  const s = libc.symbols.strerror(code);
  const text = s === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(s);
  say({ event: "error", message: `${action} failed: ${text} (errno ${code})` });
  Deno.exit(1);
}

function usage(message: string): never {
  say({ event: "error", message });
  Deno.exit(2);
}

/** Builds a `sockaddr_in` or `sockaddr_in6` for `address:port`. */
export function sockaddr(family: 4 | 6, address: string, port: number): Uint8Array {
  const buf = new Uint8Array(family === 4 ? 16 : 28);
  const view = new DataView(buf.buffer);
  view.setUint16(0, family === 4 ? AF_INET : AF_INET6, true);
  view.setUint16(2, port, false);
  if (family === 4) {
    const parts = address.split(".").map(Number);
    if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) {
      throw new RangeError(`Cannot parse IPv4 address "${address}"`);
    }
    buf.set(parts, 4);
  } else {
    buf.set(ipv6Bytes(address), 8);
  }
  return buf;
}

function ipv6Bytes(address: string): number[] {
  const [head = "", tail = ""] = address.split("::");
  const h = head ? head.split(":") : [];
  const t = address.includes("::") ? (tail ? tail.split(":") : []) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) throw new RangeError(`Cannot parse IPv6 address "${address}"`);
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

function isPositive(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v > 0;
}

/**
 * Parses the program's argument.
 *
 * @throws {TypeError} for text that is not a JSON object of the spec's shape.
 * @throws {RangeError} for a port, backlog or `maxOpenFiles` out of range.
 */
export function parseServerSpec(text: string | undefined): ServerSpec {
  let v: unknown;
  try {
    v = JSON.parse(text ?? "");
  } catch {
    throw new TypeError(`Cannot parse the server spec "${text}": not JSON`);
  }
  const bad = (what: string) => `Cannot parse the server spec ${text}: ${what}`;
  if (!isObject(v)) throw new TypeError(bad("not an object"));
  const known = ["family", "address", "port", "backlog", "maxOpenFiles", "waitToListen", "serve"];
  const unknown = Object.keys(v).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new TypeError(bad(`unknown key "${unknown[0]}"`));
  if (v.family !== 4 && v.family !== 6) throw new TypeError(bad(`"family" must be 4 or 6`));
  if (typeof v.address !== "string" || v.address === "") {
    throw new TypeError(bad(`"address" must be a non-empty string`));
  }
  if (!Number.isInteger(v.port) || (v.port as number) < 1 || (v.port as number) > 65535) {
    throw new RangeError(bad(`"port" must be an integer from 1 to 65535`));
  }
  if (!Number.isInteger(v.backlog)) throw new RangeError(bad(`"backlog" must be an integer`));
  if (v.waitToListen !== undefined && typeof v.waitToListen !== "boolean") {
    throw new TypeError(bad(`"waitToListen" must be true or false`));
  }
  if (v.serve !== undefined) {
    const serve = v.serve;
    if (
      !isObject(serve) || !Number.isSafeInteger(serve.replyBytes) ||
      (serve.replyBytes as number) < 1
    ) {
      throw new RangeError(bad(`"serve" must be {"replyBytes": a positive integer}`));
    }
  }
  if (
    v.maxOpenFiles !== undefined &&
    (!Number.isSafeInteger(v.maxOpenFiles) || (v.maxOpenFiles as number) < 1)
  ) {
    throw new RangeError(bad(`"maxOpenFiles" must be a positive integer`));
  }
  return v as unknown as ServerSpec;
}

/**
 * Checks a `policy` command's policy.
 *
 * @throws {TypeError} for an unknown shape, {RangeError} for a count or period that is not positive.
 */
export function parseServerPolicy(v: unknown): ServerPolicy {
  const text = JSON.stringify(v);
  if (v === "never") return v;
  if (!isObject(v)) throw new TypeError(`Cannot set accept policy ${text}: unknown policy`);
  if (v.kind === "all") return { kind: "all" };
  if (v.kind === "batch") {
    if (!Number.isSafeInteger(v.n) || (v.n as number) < 1 || !isPositive(v.everyMs)) {
      throw new RangeError(
        `Cannot set accept policy ${text}: "n" must be a positive integer and "everyMs" positive`,
      );
    }
    return { kind: "batch", n: v.n as number, everyMs: v.everyMs };
  }
  if (v.kind === "rate") {
    if (!isPositive(v.perSecond)) {
      throw new RangeError(`Cannot set accept policy ${text}: "perSecond" must be positive`);
    }
    return { kind: "rate", perSecond: v.perSecond };
  }
  throw new TypeError(`Cannot set accept policy ${text}: unknown policy`);
}

/** This process's descriptors, read from `/proc/self/fd` through a handle held open. */
class FdTable {
  readonly #dir: Deno.PointerObject;

  constructor() {
    const dir = libc.symbols.opendir(new TextEncoder().encode("/proc/self/fd\0"));
    if (dir === null) fail('opendir("/proc/self/fd")');
    this.#dir = dir;
  }

  /**
   * The open descriptors, this table's own included. Needs no new
   * descriptor, so it works at the file limit too.
   */
  list(): number[] {
    libc.symbols.rewinddir(this.#dir);
    const fds: number[] = [];
    for (let e = libc.symbols.readdir(this.#dir); e !== null; e = libc.symbols.readdir(this.#dir)) {
      const name = Deno.UnsafePointerView.getCString(e, DIRENT_NAME_OFFSET);
      if (name !== "." && name !== "..") fds.push(Number(name));
    }
    return fds;
  }

  count(): number {
    return this.list().length;
  }

  close(): void {
    libc.symbols.closedir(this.#dir);
  }
}

/**
 * Closes the descriptors inherited from the parent: above 2 and without
 * `FD_CLOEXEC`, which everything Deno and this program open has.
 */
function closeInherited(fds: FdTable, keep: number): void {
  for (const fd of fds.list()) {
    if (fd <= 2 || fd === keep) continue;
    const flags = libc.symbols.fcntl(fd, F_GETFD, 0);
    if (flags >= 0 && (flags & FD_CLOEXEC) === 0) libc.symbols.close(fd);
  }
}

function softFileLimit(): number {
  const r = new BigUint64Array(2);
  if (libc.symbols.getrlimit(RLIMIT_NOFILE, r) < 0) fail("getrlimit(RLIMIT_NOFILE)");
  return Number(r[0]);
}

function lowerFileLimit(limit: number, fds: FdTable): void {
  const open = fds.list();
  if (limit < open.length) {
    say({
      event: "error",
      message: `Cannot lower RLIMIT_NOFILE to ${limit}: ${open.length} files are already open (${
        open.join(" ")
      })`,
    });
    Deno.exit(1);
  }
  const high = open.filter((fd) => fd >= limit);
  if (high.length > 0) {
    say({
      event: "error",
      message: `Cannot lower RLIMIT_NOFILE to ${limit}: descriptor ${
        high[0]
      } is open at or above it, so the limit would not bound the open files`,
    });
    Deno.exit(1);
  }
  if (
    libc.symbols.setrlimit(RLIMIT_NOFILE, new BigUint64Array([BigInt(limit), BigInt(limit)])) < 0
  ) {
    fail(`setrlimit(RLIMIT_NOFILE, ${limit})`);
  }
}

/**
 * Standard input, read with libc `read(0)`. `Deno.stdin` reads a pipe through
 * a duplicate descriptor that it opens for each read and closes when data
 * arrives, so the count of open files would change by one around every
 * command, and an accept in between would take the place it left.
 */
function stdin(): ReadableStream<Uint8Array> {
  const buf = new Uint8Array(4096);
  let failures = 0;
  return new ReadableStream({
    async pull(controller) {
      for (;;) {
        const n = Number(await libc.symbols.read(0, buf, BigInt(buf.length)));
        if (n >= 0) failures = 0;
        if (n > 0) return controller.enqueue(buf.slice(0, n));
        if (n === 0) return controller.close();
        // errno belongs to the worker thread; EINTR is the one failure to expect.
        if (++failures === 3) {
          say({
            event: "error",
            message: "Cannot read commands: read(0) failed 3 times in a row",
          });
          Deno.exit(1);
        }
      }
    },
  });
}

function sinceMs(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

/** Accepts from the listening socket as the policy and commands say. */
class Acceptor {
  readonly #fd: number;
  readonly #fds: FdTable;
  readonly #servant: Servant | undefined;
  readonly #accepted: number[] = [];
  readonly #pollfd = new Uint8Array(8);
  /** Connections accepted so far. */
  #total = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** In an episode of EMFILE/ENFILE refusals, which is reported once. */
  #refusing = false;

  /** Accepts from `fd`; a `servant` serves each accepted connection instead of keeping it. */
  constructor(fd: number, fds: FdTable, servant?: Servant) {
    this.#fd = fd;
    this.#fds = fds;
    this.#servant = servant;
    const view = new DataView(this.#pollfd.buffer);
    view.setInt32(0, fd, true);
    view.setInt16(4, POLLIN, true);
  }

  /** Whether a connection waits in the accept queue (`poll()` with a zero timeout). */
  #pending(): boolean {
    const r = libc.symbols.poll(this.#pollfd, 1n, 0);
    if (r < 0) fail("poll()");
    return r > 0 && (new DataView(this.#pollfd.buffer).getInt16(6, true) & POLLIN) !== 0;
  }

  /** Accepts up to `max` queued connections now; `t0` is when the policy or command began. */
  #acceptUpTo(max: number, t0: number): void {
    let n = 0;
    let refused: "EMFILE" | "ENFILE" | undefined;
    while (n < max) {
      const c = libc.symbols.accept4(this.#fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c >= 0) {
        this.#total++;
        if (this.#servant) this.#servant.add(c);
        else this.#accepted.push(c);
        this.#refusing = false;
        n++;
        continue;
      }
      const code = errno();
      if (code === EAGAIN) break;
      if (code !== EMFILE && code !== ENFILE) fail("accept4()");
      // accept4() takes a descriptor before it looks at the queue: only a
      // waiting connection makes this a refusal.
      if (this.#pending() && !this.#refusing) {
        this.#refusing = true;
        refused = code === EMFILE ? "EMFILE" : "ENFILE";
      }
      break;
    }
    if (n > 0) say({ event: "accepted", n, total: this.#total, t: sinceMs(t0) });
    if (refused !== undefined) {
      say({
        event: "accept-error",
        errno: refused,
        total: this.#total,
        openFiles: this.#fds.count(),
      });
    }
  }

  /** Handles `{"cmd":"accept","n":N}`. */
  acceptNow(n: number): void {
    this.#refusing = false;
    this.#acceptUpTo(n, performance.now());
  }

  /** Replaces the policy; periodic ones take their first turn now. */
  setPolicy(policy: ServerPolicy): void {
    this.stop();
    this.#refusing = false;
    if (policy === "never") return;
    const [periodMs, perTurn] = policy.kind === "all"
      ? [ALL_POLL_MS, Infinity]
      : policy.kind === "batch"
      ? [policy.everyMs, policy.n]
      : [1000 / policy.perSecond, 1];
    const t0 = performance.now();
    let due = t0;
    const turn = () => {
      // Turns the timer missed (it fired late) are taken now: their credit adds up.
      const turns = Math.floor((performance.now() - due) / periodMs) + 1;
      if (turns > 0) {
        due += turns * periodMs;
        this.#acceptUpTo(perTurn * turns, t0);
      }
      this.#timer = setTimeout(turn, Math.max(0, due - performance.now()));
    };
    turn();
  }

  /** Stops the policy's timer. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Stops, then closes every accepted connection and the listening socket. */
  close(): void {
    this.stop();
    this.#servant?.closeAll();
    for (const c of this.#accepted.splice(0)) libc.symbols.close(c);
    libc.symbols.close(this.#fd);
  }
}

async function main(): Promise<void> {
  if (Deno.args.length !== 1) usage("usage: listen_server.ts '<ServerSpec as JSON>'");
  let options: ServerSpec;
  try {
    options = parseServerSpec(Deno.args[0]);
  } catch (err) {
    usage((err as Error).message);
  }
  const { family, address, port, backlog } = options;
  const commands = readLines(stdin())[Symbol.asyncIterator]();
  if (options.waitToListen) {
    say({ event: "loaded", pid: Deno.pid });
    for (;;) {
      const next = await commands.next();
      if (next.done) Deno.exit(0);
      const line = next.value.trim();
      if (line === "") continue;
      let cmd: Partial<ServerCommand>;
      try {
        cmd = JSON.parse(line);
      } catch {
        say({ event: "error", message: `Cannot parse command line "${line}"` });
        continue;
      }
      if (cmd.cmd === "exit") Deno.exit(0);
      if (cmd.cmd === "listen") break;
    }
  }
  const fd = libc.symbols.socket(
    family === 4 ? AF_INET : AF_INET6,
    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    0,
  );
  if (fd < 0) fail("socket()");
  const one = new Uint8Array(new Int32Array([1]).buffer);
  if (libc.symbols.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) fail("setsockopt()");
  const sa = sockaddr(family, address, port);
  if (libc.symbols.bind(fd, sa, sa.length) < 0) fail(`bind(${address}:${port})`);
  if (libc.symbols.listen(fd, backlog) < 0) fail(`listen(${backlog})`);

  const fds = new FdTable();
  const listening = performance.now();
  let servant: Servant | undefined;
  if (options.serve) {
    try {
      servant = new Servant(options.serve.replyBytes, {
        served: (n, total) => say({ event: "served", n, total, t: sinceMs(listening) }),
        broken: (message) => {
          say({ event: "error", message: `Cannot serve connections: ${message}` });
          Deno.exit(1);
        },
      });
    } catch (err) {
      say({ event: "error", message: (err as Error).message });
      Deno.exit(1);
    }
  }
  const acceptor = new Acceptor(fd, fds, servant);
  let closing = false;
  const shutdown = () => {
    if (closing) return;
    closing = true;
    acceptor.close();
    fds.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", shutdown);
  Deno.addSignalListener("SIGINT", shutdown);

  if (options.maxOpenFiles !== undefined) {
    closeInherited(fds, fd);
    lowerFileLimit(options.maxOpenFiles, fds);
  }
  say({ event: "ready", pid: Deno.pid, openFiles: fds.count(), maxOpenFiles: softFileLimit() });

  for await (const line of { [Symbol.asyncIterator]: () => commands }) {
    if (!line.trim()) continue;
    let cmd: Partial<Record<"cmd" | "n" | "policy", unknown>>;
    try {
      cmd = JSON.parse(line);
    } catch {
      say({ event: "error", message: `Cannot parse command line "${line}"` });
      continue;
    }
    if (cmd.cmd === "exit") break;
    if (cmd.cmd === "accept") acceptor.acceptNow(typeof cmd.n === "number" ? cmd.n : 0);
    if (cmd.cmd === "policy") {
      try {
        acceptor.setPolicy(parseServerPolicy(cmd.policy));
      } catch (err) {
        say({ event: "error", message: (err as Error).message });
      }
    }
  }
  shutdown();
}

if (import.meta.main) main();
