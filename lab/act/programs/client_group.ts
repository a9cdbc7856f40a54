/**
 * One client group. Run inside a client namespace by the runner:
 *
 *   deno run --allow-net --allow-ffi client_group.ts '<ClientGroupSpec as JSON>'
 *
 * (`ClientGroupSpec`, its commands and events are typed in `protocol.ts`.)
 *
 * It prints `{"event":"ready"}`, waits for `{"cmd":"go"}` on stdin, then opens
 * the group's connections (all at once, or one every `intervalMs`: connection
 * k is due `k × intervalMs` after "go"; or, with `arrivals`, at the times
 * `arrivalTimes(arrivals)` gives, evenly spaced or a seeded Poisson process;
 * a timer that fires late opens every connection due by then, so lateness
 * does not add up, and the arrivals stay open-loop) and reports
 * what the kernel answered for each, as JSON lines with times in milliseconds
 * since "go":
 *
 *   {"event":"ready","pid":N,"maxOpenFiles":N}             waiting for "go"; maxOpenFiles is the
 *                                                         soft RLIMIT_NOFILE (only with --allow-ffi)
 *   {"event":"open","i":k,"t":…}                           connect() k is being called (staggered groups)
 *   {"event":"launched","n":N,"t":…}                      every connect() has been called
 *   {"event":"connect","i":k,"result":"ok"|"ECONNREFUSED"|…,"t":…,"ms":…}
 *   {"event":"after","i":k,"result":"data"|"eof"|"timeout"|"sent"|"ECONNRESET"|…,"t":…,"bytes":n,"ms":…}
 *       the follow-up's outcome: "sent" once every byte is in the send buffer; "data" (the
 *       first read's size, and "ms" from the start of connect() to that first byte), "eof" or
 *       "timeout" (nothing `then.timeoutMs` after connect()). With `then.close` the socket
 *       is closed once the follow-up has ended, whatever its outcome.
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
import { isObject } from "../../base/values.ts";
import { arrivalTimes } from "../../describe/arrivals.ts";
import {
  ensureOpenFiles,
  EpollTransport,
  nodeTransport,
  openLibc,
  type Transport,
} from "./client_transport.ts";
import { drainLines, emit, emitSoon, readLines } from "../../base/lines.ts";
import type { ClientEvent, ClientGroupSpec } from "./protocol.ts";

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
  if (then.close !== undefined && then.close !== true) {
    throw new TypeError(bad(`"then.close" must be true or absent`));
  }
  if (v.arrivals !== undefined) {
    const a = v.arrivals;
    if (
      !isObject(a) || !(typeof a.perSecond === "number" && a.perSecond > 0) ||
      !isDuration(a.forMs) || (a.process !== "fixed" && a.process !== "poisson") ||
      !isCount(a.seed)
    ) {
      throw new TypeError(
        bad(`"arrivals" must be { perSecond > 0, forMs ≥ 0, process: "fixed" | "poisson", seed }`),
      );
    }
  }
  return v as unknown as ClientGroupSpec;
}

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
      if (then.kind !== "nothing" && then.close) void connection.close();
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
        if (reads) finish("data", { bytes: n, ms: performance.now() - began });
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
    // Connection k is due at t0 + at(k): a timer that fires late opens every connection due by
    // then, so lateness does not add up over the group.
    const times = spec.arrivals ? arrivalTimes(spec.arrivals) : undefined;
    const count = Math.min(spec.count, times?.length ?? spec.count);
    const at = (k: number) => times ? times[k]! : k * spec.intervalMs;
    let next = 0;
    const step = () => {
      const elapsed = performance.now() - t0;
      for (; next < count && at(next) <= elapsed; next++) {
        saySoon({ event: "open", i: next, t: now() });
        open(next);
      }
      if (next < count) setTimeout(step, Math.max(0, t0 + at(next) - performance.now()));
      else saySoon({ event: "launched", n: count, t: now() });
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
