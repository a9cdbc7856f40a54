/**
 * The NFQUEUE delayer: holds the packets an iptables `NFQUEUE` rule queues
 * and accepts each one once its delay has passed. Run inside the namespace
 * whose packets it delays (`shapeLink()` starts it):
 *
 *   deno run --allow-ffi delayer.ts <queue> <delayMs> <jitterMs> <maxLen>
 *
 * It binds queue `<queue>` over a `NETLINK_NETFILTER` socket in copy-meta
 * mode (the kernel keeps the packet and sends its id, ~100 bytes, never the
 * payload; with jitter, the first 64 bytes too, for the flow key that keeps a
 * connection's packets in order), with a queue of `<maxLen>` packets, `NFQA_CFG_F_GSO` (GSO packets
 * are queued whole) and without `NFQA_CFG_F_FAIL_OPEN`: a packet that finds
 * the queue (or this socket's 16 MiB buffer) full is dropped, as netem drops
 * at its `limit` and a router at a full buffer, and the kernel counts it
 * exactly (`queue_dropped`, `queue_user_dropped` in
 * `/proc/net/netfilter/nfnetlink_queue`). Failing open would let it through
 * undelayed, ahead of the packets held before it: a silent change of the very
 * timing an experiment observes, and one the kernel does not count.
 *
 * Each packet is stamped when read and released at its time from
 * {@linkcode DelayLine}: the packets due that are the oldest held with one
 * batch verdict (`NFQNL_MSG_VERDICT_BATCH`: every id up to N), any other
 * (due before an older one, with jitter) with its own verdict, all in one
 * `sendto()`.
 *
 * The loop is synchronous: one `ppoll()` on the netlink socket and stdin,
 * whose timeout is the next release time (nanoseconds, with the thread's
 * timer slack set to 1 ns), so neither Deno's timers nor its event loop sit
 * between a packet and its verdict.
 *
 * Events on stdout (one JSON object a line):
 *   {"event":"ready","pid":N,"queue":N}          bound, nothing queued yet
 *   {"event":"stats","reply":R,...DelayerStats}  answer to a stats command
 *   {"event":"drained","reply":R}                nothing held any more
 *   {"event":"error","message":"…"}              a failure; exit 1 (2 for bad arguments)
 * Commands on stdin (one JSON object a line):
 *   {"cmd":"stats","reply":R}   report counters now
 *   {"cmd":"drain","reply":R}   answer "drained" once nothing is held (releases keep their times)
 *   {"cmd":"exit"}              release whatever is held at once, unbind, exit 0 (EOF does the same)
 * @module
 */
import {
  EAGAIN,
  EBUSY,
  EINTR,
  ENOBUFS,
  EPERM,
  MSG_DONTWAIT,
  readErrno,
  SOCK_CLOEXEC,
  SOL_SOCKET,
} from "../../base/libc_constants.ts";
import { DelayLine, type LatenessSummary, type Release } from "./delay_line.ts";
import { FLOW_KEY_BYTES, flowKey } from "./flow_key.ts";
import {
  AF_NETLINK,
  decodeMessages,
  encodeBind,
  encodeParams,
  type MessageSink,
  NETLINK_NETFILTER,
  NFQA_CFG_F_GSO,
  VERDICT_LEN,
  writeVerdict,
} from "./nfqueue_messages.ts";

/** Counters the delayer reports. */
export interface DelayerStats {
  /** Packets the kernel queued to it. */
  received: number;
  /** Packets accepted after their delay. */
  released: number;
  /** Packets held now. */
  held: number;
  /** The most held at once. */
  peakHeld: number;
  /** GSO super-packets among those received. */
  gso: number;
  /** Verdict messages sent (batch and single). */
  verdicts: number;
  /** Of those, single-packet verdicts (packets due before an older one). */
  singleVerdicts: number;
  /** Verdict lateness against each packet's release time. */
  lateness: LatenessSummary;
  /** Times the socket buffer overflowed (ENOBUFS): the kernel dropped packets (counted as `queue_user_dropped`). */
  overruns: number;
  /** Verdicts the kernel refused. */
  verdictErrors: number;
  /** The errno of the last verdict refused, 0 when none was. */
  lastVerdictErrno: number;
  /** Packets released at exit before their time. */
  releasedEarly: number;
  /** User CPU time used so far, ms. */
  cpuUserMs: number;
  /** System CPU time used so far, ms (it includes the kernel work its verdicts start). */
  cpuSystemMs: number;
  /** Returns from ppoll(). */
  wakeups: number;
  /** Whether its loop runs SCHED_FIFO. */
  realtime: boolean;
}

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  ppoll: { parameters: ["buffer", "u64", "pointer", "pointer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  getrusage: { parameters: ["i32", "buffer"], result: "i32" },
  sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const SOCK_RAW = 3;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const SO_RCVBUFFORCE = 33;
const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const PR_SET_TIMERSLACK = 29;
const RUSAGE_SELF = 0;
const SCHED_FIFO = 1;
/** Socket receive buffer: room for more packet messages (~800 bytes each) than the queue holds. */
const RCVBUF = 16 * 1024 * 1024;
/** Tries for one verdict before giving up (each failure is ENOBUFS/ENOMEM-like). */
const VERDICT_TRIES = 100;

const lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
const encoder = new TextEncoder();

function emit(event: Record<string, unknown>): void {
  const bytes = encoder.encode(JSON.stringify(event) + "\n");
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

function errno(): number {
  return readErrno(lib);
}

/** The most unexpected recv() errors in a row the delayer reads past (see {@linkcode recvErrorAction}). */
export const MAX_ODD_RECV_ERRORS = 3;

/**
 * What the delayer does when recv() on its queue socket fails with `code`,
 * the `nth` failure in a row: `done` (no more messages now), `retry`,
 * `overrun` (the kernel dropped packets for a full socket buffer: counted,
 * then read on), or `fail`. Any other error is read past a few times: an
 * error the kernel left on the socket is reported once and cleared, and
 * errno is read in a second FFI call after recv(), which a runtime syscall
 * in between can overwrite (seen once in many runs: ENOENT). Three in a row
 * mean the socket is broken.
 */
export function recvErrorAction(
  code: number,
  nth: number,
): "done" | "retry" | "overrun" | "fail" {
  if (code === EAGAIN) return "done";
  if (code === EINTR) return "retry";
  if (code === ENOBUFS) return "overrun";
  return nth >= MAX_ODD_RECV_ERRORS ? "fail" : "retry";
}

function errnoText(code: number): string {
  const s = lib.strerror(code);
  return `${s === null ? "errno" : Deno.UnsafePointerView.getCString(s)} (errno ${code})`;
}

function fail(message: string, code = 1): never {
  emit({ event: "error", message });
  Deno.exit(code);
}

function parseArgs(argv: readonly string[]) {
  const usage = "usage: delayer.ts <queue> <delayMs> <jitterMs> <maxLen> [<realtime priority>]";
  if (argv.length !== 4 && argv.length !== 5) {
    fail(`Cannot start the delayer: expected 4 or 5 arguments (${usage})`, 2);
  }
  const [queue, delayMs, jitterMs, maxLen, priority = 0] = argv.map(Number) as [
    number,
    number,
    number,
    number,
    number?,
  ];
  if (!Number.isInteger(priority) || priority < 0 || priority > 99) {
    fail(`Cannot start the delayer: priority "${argv[4]}" must be an integer from 0 to 99`, 2);
  }
  if (!Number.isInteger(queue) || queue < 0 || queue > 65535) {
    fail(`Cannot start the delayer: queue "${argv[0]}" must be an integer from 0 to 65535`, 2);
  }
  if (!Number.isInteger(maxLen) || maxLen < 1) {
    fail(`Cannot start the delayer: queue length "${argv[3]}" must be a positive integer`, 2);
  }
  return { queue, delayMs, jitterMs, maxLen, priority };
}

/** The kernel as a netlink address (`struct sockaddr_nl`, pid 0). */
const KERNEL = new Uint8Array(12);
new DataView(KERNEL.buffer).setUint16(0, AF_NETLINK, true);

function openQueue(queue: number, maxLen: number, copyRange: number): number {
  const action = `Cannot bind NFQUEUE ${queue}`;
  const fd = lib.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) fail(`${action}: socket(NETLINK_NETFILTER) failed: ${errnoText(errno())}`);
  const size = new Uint8Array(new Int32Array([RCVBUF]).buffer);
  if (
    lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) < 0 &&
    lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4) < 0
  ) {
    fail(`${action}: setsockopt(SO_RCVBUF) failed: ${errnoText(errno())}`);
  }
  // Only the configuration waits for answers, at most 2 s each; the loop never blocks in recv().
  const timeout = new Uint8Array(new BigInt64Array([2n, 0n]).buffer);
  lib.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 16);
  const request = (message: Uint8Array, what: string) => {
    const seq = new DataView(message.buffer).getUint32(8, true);
    if (Number(lib.sendto(fd, message, BigInt(message.length), 0, KERNEL, 12)) !== message.length) {
      fail(`${action}: sending ${what} failed: ${errnoText(errno())}`);
    }
    const buf = new Uint8Array(8192);
    const view = new DataView(buf.buffer);
    for (;;) {
      const n = Number(lib.recv(fd, buf, BigInt(buf.length), 0));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        fail(`${action}: no answer to ${what}: ${errnoText(e)}`);
      }
      let answer: number | undefined;
      decodeMessages(view, n, {
        packet() {},
        ack(a) {
          if (a.seq === seq) answer = a.errno;
        },
      });
      if (answer === undefined) continue;
      // The kernel answers EPERM (older ones EBUSY) when another socket has bound the queue.
      if (answer === EPERM || answer === EBUSY) {
        fail(`${action}: another process has bound queue ${queue} in this namespace`);
      }
      if (answer !== 0) fail(`${action}: the kernel refused ${what}: ${errnoText(answer)}`);
      return;
    }
  };
  request(encodeBind(queue, 1), "the bind command");
  request(
    encodeParams(queue, 2, { maxLen, flags: NFQA_CFG_F_GSO, copyRange }),
    "the queue parameters",
  );
  return fd;
}

function cpuMs(): { user: number; system: number } {
  const buf = new BigInt64Array(18);
  lib.getrusage(RUSAGE_SELF, new Uint8Array(buf.buffer));
  const ms = (sec: bigint, usec: bigint) => Number(sec) * 1000 + Number(usec) / 1000;
  return { user: ms(buf[0]!, buf[1]!), system: ms(buf[2]!, buf[3]!) };
}

function main(): void {
  const { queue, delayMs, jitterMs, maxLen, priority } = parseArgs(Deno.args);
  let line: DelayLine;
  try {
    line = new DelayLine({ delayMs, jitterMs, capacity: 4096 });
  } catch (err) {
    fail((err as Error).message, 2);
  }
  // Wake-ups on time: the default slack lets the kernel defer a timer by 50 µs.
  lib.prctl(PR_SET_TIMERSLACK, 1n, 0n, 0n, 0n);
  // SCHED_FIFO for this thread (the loop's; Deno's others stay as they are), so a wake-up
  // preempts ordinary tasks instead of waiting for their time slice on a busy machine.
  let realtime = false;
  if (priority > 0) {
    realtime =
      lib.sched_setscheduler(0, SCHED_FIFO, new Uint8Array(new Int32Array([priority]).buffer)) ===
        0;
  }
  // Without jitter every packet waits the same, so flows never matter: no packet bytes needed.
  const fd = openQueue(queue, maxLen, jitterMs > 0 ? FLOW_KEY_BYTES : 0);

  const recvBuf = new Uint8Array(65536);
  const recvView = new DataView(recvBuf.buffer);
  let verdictBuf = new Uint8Array(VERDICT_LEN * 64);
  let verdictView = new DataView(verdictBuf.buffer);
  const verdict = { at: 0, queue, id: 0, seq: 0, batch: false, accept: true };
  const stdinBuf = new Uint8Array(4096);
  // struct pollfd { int fd; short events; short revents; } × 2
  const pollBuf = new Uint8Array(16);
  const poll = new DataView(pollBuf.buffer);
  poll.setInt32(0, fd, true);
  poll.setInt16(4, POLLIN, true);
  poll.setInt32(8, 0, true);
  poll.setInt16(12, POLLIN, true);
  // struct timespec { time_t tv_sec; long tv_nsec; }
  const timeout = new BigInt64Array(2);
  const timeoutPtr = Deno.UnsafePointer.of(timeout);

  let seq = 100;
  let verdicts = 0;
  let singleVerdicts = 0;
  let overruns = 0;
  let verdictErrors = 0;
  let lastVerdictErrno = 0;
  let releasedEarly = 0;
  let gso = 0;
  let wakeups = 0;
  let drainReply: unknown;
  let stdinText = "";
  let stdinOpen = true;

  const stats = (): DelayerStats => {
    const cpu = cpuMs();
    return {
      received: line.received,
      released: line.released,
      held: line.length,
      peakHeld: line.peak,
      gso,
      verdicts,
      singleVerdicts,
      lateness: line.lateness.summary(),
      overruns,
      verdictErrors,
      lastVerdictErrno,
      releasedEarly,
      cpuUserMs: Math.round(cpu.user * 10) / 10,
      cpuSystemMs: Math.round(cpu.system * 10) / 10,
      wakeups,
      realtime,
    };
  };

  /** Sends the verdicts of one release in one sendto(): the batch (older packets), then the singles. */
  const sendVerdicts = (r: Readonly<Release>) => {
    const messages = r.singleCount + (r.batchUpTo >= 0 ? 1 : 0);
    if (verdictBuf.length < messages * VERDICT_LEN) {
      verdictBuf = new Uint8Array(messages * VERDICT_LEN * 2);
      verdictView = new DataView(verdictBuf.buffer);
    }
    let at = 0;
    const put = (id: number, batch: boolean) => {
      seq = (seq + 1) >>> 0;
      verdict.at = at;
      verdict.id = id;
      verdict.seq = seq;
      verdict.batch = batch;
      at += writeVerdict(verdictView, verdict);
    };
    if (r.batchUpTo >= 0) put(r.batchUpTo, true);
    for (let i = 0; i < r.singleCount; i++) put(r.singles[i]!, false);
    for (let tries = 1;; tries++) {
      if (Number(lib.sendto(fd, verdictBuf, BigInt(at), 0, KERNEL, 12)) === at) break;
      const e = errno();
      if (tries >= VERDICT_TRIES && e !== EINTR) {
        fail(`Cannot send ${messages} verdicts to queue ${queue}: ${errnoText(e)}`);
      }
    }
    verdicts += messages;
    singleVerdicts += r.singleCount;
  };

  // Lateness is taken when the verdicts go out: sendto() itself runs the packets on through the
  // rest of the stack, the receiving namespace's softirq included, which is not lateness.
  const release = (now: number) => {
    const r = line.takeDue(now);
    if (r.count === 0) return;
    const issued = performance.now();
    sendVerdicts(r);
    line.settle(issued);
  };

  const sink: MessageSink = {
    packet(p) {
      if (p.queue !== queue) return;
      if (p.gso) gso++;
      const flow = p.payloadOffset < 0 ? 0 : flowKey(recvView, p.payloadOffset, p.payloadLength);
      line.add(p.id, performance.now(), flow);
    },
    ack(a) {
      if (a.errno !== 0) {
        verdictErrors++;
        lastVerdictErrno = a.errno;
      }
    },
  };

  const readSocket = () => {
    let oddErrors = 0;
    for (;;) {
      const n = Number(lib.recv(fd, recvBuf, 65536n, MSG_DONTWAIT));
      if (n < 0) {
        const e = errno();
        const action = recvErrorAction(e, ++oddErrors);
        if (action === "done") return;
        if (action === "overrun") overruns++;
        if (action === "fail") fail(`Cannot read queue ${queue}: recv() failed: ${errnoText(e)}`);
        if (e === EAGAIN || e === EINTR || e === ENOBUFS) oddErrors = 0;
        continue;
      }
      oddErrors = 0;
      decodeMessages(recvView, n, sink);
      // Under load, keep releasing between reads rather than after a long burst of them.
      if (line.nextReleaseMs <= performance.now()) release(performance.now());
    }
  };

  const exit = () => {
    const held = line.length;
    if (held > 0) {
      releasedEarly += held;
      release(Infinity);
    }
    lib.close(fd); // unbinds the queue; nothing is held any more
    Deno.exit(0);
  };

  const command = (text: string) => {
    let cmd: { cmd?: unknown; reply?: unknown };
    try {
      cmd = JSON.parse(text);
    } catch {
      emit({ event: "error", message: `Cannot read command "${text}": not JSON (ignored)` });
      return;
    }
    if (cmd.cmd === "stats") emit({ event: "stats", reply: cmd.reply, ...stats() });
    else if (cmd.cmd === "drain") drainReply = cmd.reply ?? null;
    else if (cmd.cmd === "exit") exit();
    else emit({ event: "error", message: `Cannot run command "${text}": unknown (ignored)` });
  };

  const readStdin = () => {
    const n = Number(lib.read(0, stdinBuf, BigInt(stdinBuf.length)));
    if (n === 0) {
      stdinOpen = false;
      return;
    }
    if (n < 0) {
      const e = errno();
      if (e === EINTR || e === EAGAIN) return;
      stdinOpen = false;
      return;
    }
    stdinText += new TextDecoder().decode(stdinBuf.subarray(0, n));
    let nl: number;
    while ((nl = stdinText.indexOf("\n")) >= 0) {
      const text = stdinText.slice(0, nl).trim();
      stdinText = stdinText.slice(nl + 1);
      if (text) command(text);
    }
  };

  emit({ event: "ready", pid: Deno.pid, queue, realtime });
  for (;;) {
    const now = performance.now();
    if (line.nextReleaseMs <= now) release(now);
    if (drainReply !== undefined && line.length === 0) {
      emit({ event: "drained", reply: drainReply });
      drainReply = undefined;
    }
    if (!stdinOpen) exit();
    const next = line.nextReleaseMs;
    let timeoutArg = null;
    if (next !== Infinity) {
      const ns = Math.max(0, Math.ceil((next - performance.now()) * 1e6));
      timeout[0] = BigInt(Math.floor(ns / 1e9));
      timeout[1] = BigInt(ns % 1e9);
      timeoutArg = timeoutPtr;
    }
    poll.setInt16(6, 0, true);
    poll.setInt16(14, 0, true);
    const ready = lib.ppoll(pollBuf, 2n, timeoutArg, null);
    wakeups++;
    if (ready < 0) {
      const e = errno();
      if (e === EINTR) continue;
      fail(`Cannot wait for queue ${queue}: ppoll() failed: ${errnoText(e)}`);
    }
    if (ready === 0) continue;
    if (poll.getInt16(6, true) & (POLLIN | POLLERR)) readSocket();
    if (poll.getInt16(14, true) & (POLLIN | POLLHUP | POLLERR)) readStdin();
  }
}

if (import.meta.main) main();
