/**
 * Packet capture inside a lab namespace: `tcpdump` writing a pcap file of one
 * TCP port, parsed into {@linkcode Packet}s when it stops.
 * @module
 */
import { scaled } from "../base/time_scale.ts";
import { CommandError, WaitTimeoutError } from "../base/errors.ts";
import { RunRecord } from "../base/run_record.ts";
import { until } from "../base/wait.ts";
import type { Netns } from "../topology/netns.ts";
import { type Packet, parsePcap, withoutInterfaceIndex } from "./pcap.ts";

/** How long tcpdump may take to report that it is listening. */
const START_TIMEOUT_MS = 10_000;
/** How long tcpdump may take to exit after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 2_000;
/** The file is complete once its size has not changed for this long… */
const SETTLE_QUIET_MS = 20;
/** …or after this long at most, whatever its size does. */
const SETTLE_MAX_MS = 1_000;
/** Bytes kept per packet: Linux cooked v2 (20) + IPv6 (40) + the largest TCP header (60). */
const SNAPLEN = 128;

/**
 * A capture that cannot be trusted: tcpdump ended before the lab stopped it,
 * or reports packets the kernel dropped. It fails its run; it never decides
 * anything.
 */
export class CaptureIncompleteError extends Error {
  /** Always `"CaptureIncompleteError"`. */
  override name = "CaptureIncompleteError";
}

/** Options of {@linkcode Capture.start}. */
export interface CaptureOptions {
  /** The TCP port to capture (either direction). */
  port: number;
  /** The pcap file to write; the caller owns it (see {@linkcode Capture.tempFile}). */
  file: string;
  /**
   * The interface inside the namespace; default `"any"`, whose Linux cooked
   * v2 frames are rewritten as v1 when the capture stops (see
   * `withoutInterfaceIndex`), so that no reader labels them with one of its
   * own interfaces.
   */
  iface?: string;
  /** Aborts the wait for tcpdump to start (tcpdump is then killed). */
  signal?: AbortSignal;
}

/** The timestamp precision tcpdump writes. */
export type CapturePrecision = "nano" | "micro";

/**
 * A running `tcpdump` inside a namespace; `AsyncDisposable`.
 *
 * @example Capture one experiment's handshakes
 * ```ts ignore
 * import { Capture } from "./capture.ts";
 *
 * const file = await Capture.tempFile("bl-capture");
 * try {
 *   await using capture = await Capture.start(ns, { port: 8080, file });
 *   // … connect …
 *   const packets = await capture.stop();
 * } finally {
 *   await Deno.remove(file);
 * }
 * ```
 */
export class Capture implements AsyncDisposable {
  /** The pcap file tcpdump writes. Never deleted by the capture. */
  readonly file: string;
  /** The timestamp precision obtained: nanoseconds unless the kernel or tcpdump refused them. */
  readonly precision: CapturePrecision;
  readonly #ns: Netns;
  readonly #iface: string;
  readonly #tcpdump: Tcpdump;
  #ending: Promise<void> | undefined;
  #stopping: Promise<Packet[]> | undefined;

  private constructor(
    ns: Netns,
    file: string,
    options: { precision: CapturePrecision; iface: string },
    tcpdump: Tcpdump,
  ) {
    this.#ns = ns;
    this.#iface = options.iface;
    this.file = file;
    this.precision = options.precision;
    this.#tcpdump = tcpdump;
  }

  /**
   * Starts `tcpdump -i <iface> -n -U --immediate-mode -s 128
   * --time-stamp-precision=nano -w <file> tcp port <port>` inside `ns` and
   * resolves once it reports on stderr that it is listening. Falls back to
   * microseconds when nanosecond timestamps are refused.
   *
   * `--immediate-mode` because without it libpcap batches packets in
   * TPACKET_V3 blocks that reach tcpdump only when full or after the block
   * timeout, and a SIGTERM drops the block not handed over yet: a connection
   * made just before {@linkcode Capture.stop} would be missing. (tcpdump
   * opens the file as root, then gives it to its unprivileged user.)
   *
   * @param ns The namespace to capture in.
   * @param options The port, the file and the interface.
   * @returns The running capture.
   * @throws {RangeError} for a port outside 1–65535 or an empty interface name.
   * @throws {CommandError} when tcpdump exits before it listens.
   * @throws {WaitTimeoutError} when it does not report listening within 10 s
   *   (naming the namespace and tcpdump's stderr; tcpdump is killed).
   */
  static async start(ns: Netns, options: CaptureOptions): Promise<Capture> {
    const { port, file, iface = "any", signal } = options;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(
        `Cannot start a capture in namespace "${ns.name}": port "${port}" is out of range (1-65535)`,
      );
    }
    if (iface === "") {
      throw new RangeError(
        `Cannot start a capture in namespace "${ns.name}": the interface name is empty`,
      );
    }
    const argvFor = (precision: CapturePrecision) =>
      ns.wrap([
        "tcpdump",
        "-i",
        iface,
        "-n",
        "-U",
        "--immediate-mode",
        "-s",
        String(SNAPLEN),
        ...(precision === "nano" ? ["--time-stamp-precision=nano"] : []),
        "-w",
        file,
        "tcp",
        "port",
        String(port),
      ]);
    const action = `Cannot start tcpdump in namespace "${ns.name}"`;
    let precision: CapturePrecision = "nano";
    let started = await startTcpdump(argvFor(precision), ns.name, signal);
    if (!(started instanceof Tcpdump) && /precision/i.test(started.stderr)) {
      precision = "micro";
      started = await startTcpdump(argvFor(precision), ns.name, signal);
    }
    if (!(started instanceof Tcpdump)) {
      throw new CommandError(started.argv, started.code, started.stderr, action);
    }
    return new Capture(ns, file, { precision, iface }, started);
  }

  /**
   * Makes an empty file for a capture among this process's temporary files
   * (`tmp/` of its run record, `RunRecord.ofProcess()`, mode 0600), so that a
   * later run removes it if this process is killed. The caller removes it.
   *
   * @param prefix The start of the file's name.
   * @returns The file's path, ending in `.pcap`.
   */
  static async tempFile(prefix: string): Promise<string> {
    const record = await RunRecord.ofProcess();
    return await Deno.makeTempFile({ dir: record.tempDir, prefix: `${prefix}-`, suffix: ".pcap" });
  }

  /** tcpdump's PID (`ip netns exec` execs it, so the child is tcpdump itself). */
  get pid(): number {
    return this.#tcpdump.child.pid;
  }

  /**
   * Waits until the file stops growing (no change for 20 ms, 1 s at most),
   * ends tcpdump by PID with SIGTERM (SIGKILL after 2 s), checks that the
   * capture is whole, then reads and parses the file (rewriting a cooked v2
   * file as v1 first, see {@linkcode CaptureOptions.iface}). Calling it again
   * returns the same packets.
   *
   * @returns Every captured TCP segment, in capture order.
   * @throws {CaptureIncompleteError} when tcpdump had ended before (by a
   *   signal, or exiting on its own), or reports packets dropped by the kernel.
   * @throws {RangeError} when the file is not a valid pcap file.
   */
  stop(): Promise<Packet[]> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<Packet[]> {
    if (this.#tcpdump.running()) await settle(this.file);
    // Whether tcpdump was still running when the lab came to stop it: the exit
    // status cannot tell, since a SIGTERM from anyone ends it with status 0.
    const endedBefore = !this.#tcpdump.running();
    await this.#end();
    const status = await this.#tcpdump.child.status;
    const where = `the capture in namespace "${this.#ns.name}"`;
    if (endedBefore) {
      const how = status.signal
        ? `killed by ${status.signal}`
        : status.code === 0
        ? "it exited (status 0, as a SIGTERM or SIGINT from outside the lab makes it)"
        : `exit status ${status.code}`;
      throw new CaptureIncompleteError(
        `Cannot use ${where}: tcpdump ended before the lab stopped it (${how}), so packets after that are missing${
          this.#tcpdump.stderr ? `; its stderr: "${lastLines(this.#tcpdump.stderr)}"` : ""
        }`,
      );
    }
    const dropped = droppedPackets(this.#tcpdump.stderr);
    if (dropped.length) {
      throw new CaptureIncompleteError(
        `Cannot use ${where}: tcpdump reports ${
          dropped.join(" and ")
        }, so the capture is incomplete`,
      );
    }
    const bytes = await Deno.readFile(this.file);
    if (this.#iface !== "any") return parsePcap(bytes);
    const rewritten = withoutInterfaceIndex(bytes);
    if (rewritten !== bytes) await Deno.writeFile(this.file, rewritten);
    return parsePcap(rewritten);
  }

  /** Ends tcpdump if it runs and reaps it; tolerates "already gone". */
  #end(): Promise<void> {
    this.#ending ??= this.#tcpdump.end();
    return this.#ending;
  }

  /** Stops tcpdump if it is running (without parsing). Idempotent; leaves the file. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#end();
  }
}

/** A tcpdump child and its stderr. */
class Tcpdump {
  readonly argv: readonly string[];
  readonly child: Deno.ChildProcess;
  readonly #pump: Promise<void>;
  #stderr = "";
  #exited = false;
  #listening: (() => void) | undefined;
  /** Resolves once stderr says "listening on". */
  readonly listening: Promise<void>;

  constructor(argv: readonly string[]) {
    this.argv = argv;
    const [cmd, ...args] = argv;
    const child = new Deno.Command(cmd!, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.child = child;
    child.status.then(() => {
      this.#exited = true;
    });
    this.listening = new Promise((resolve) => this.#listening = resolve);
    this.#pump = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        this.#stderr += decoder.decode(chunk, { stream: true });
        if (/listening on /.test(this.#stderr)) this.#listening?.();
      }
      this.#stderr += decoder.decode();
    })().catch(() => {});
  }

  get stderr(): string {
    return this.#stderr.trim();
  }

  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Whether tcpdump runs now, read from `/proc` (its status promise may lag
   * its exit): not once it is a zombie or reaped.
   */
  running(): boolean {
    if (this.#exited) return false;
    try {
      const stat = Deno.readTextFileSync(`/proc/${this.child.pid}/stat`);
      return !/^\S+ \(.*\) [ZX] /s.test(stat);
    } catch {
      return false;
    }
  }

  /** SIGTERM by PID, SIGKILL after the grace period, then reap and drain stderr. */
  async end(): Promise<void> {
    if (!this.#exited) {
      signalChild(this.child, "SIGTERM");
      const timer = setTimeout(() => signalChild(this.child, "SIGKILL"), scaled(STOP_GRACE_MS));
      await this.child.status;
      clearTimeout(timer);
    }
    await this.child.status;
    await this.#pump;
  }

  async kill(): Promise<void> {
    signalChild(this.child, "SIGKILL");
    await this.child.status;
    await this.#pump;
  }
}

function signalChild(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch { /* already gone */ }
}

/** Starts tcpdump and waits until it listens; or how it failed, when it exited first. */
async function startTcpdump(
  argv: readonly string[],
  nsName: string,
  signal: AbortSignal | undefined,
): Promise<Tcpdump | { argv: readonly string[]; code: number | null; stderr: string }> {
  signal?.throwIfAborted();
  const tcpdump = new Tcpdump(argv);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const outcome = await Promise.race([
    tcpdump.listening.then(() => "listening" as const),
    tcpdump.child.status.then(() => "exited" as const),
    new Promise<"timeout">((resolve) =>
      timer = setTimeout(() => resolve("timeout"), scaled(START_TIMEOUT_MS))
    ),
    new Promise<"aborted">((resolve) => {
      onAbort = () => resolve("aborted");
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
  ]);
  clearTimeout(timer);
  if (onAbort) signal?.removeEventListener("abort", onAbort);
  switch (outcome) {
    case "listening":
      return tcpdump;
    case "exited": {
      await tcpdump.end();
      const status = await tcpdump.child.status;
      return { argv, code: status.signal ? null : status.code, stderr: tcpdump.stderr };
    }
    case "timeout":
      await tcpdump.kill();
      throw new WaitTimeoutError(
        `Timed out after ${
          scaled(START_TIMEOUT_MS)
        } ms waiting for tcpdump in namespace "${nsName}" to report listening: stderr "${tcpdump.stderr}"`,
      );
    case "aborted":
      await tcpdump.kill();
      throw signal!.reason;
  }
}

/**
 * What tcpdump's exit summary says was lost: "N packets dropped by kernel"
 * (its buffer overflowed) and "N packets dropped by interface", when N > 0.
 */
export function droppedPackets(stderr: string): string[] {
  const lost: string[] = [];
  for (const m of stderr.matchAll(/^(\d+) packets? dropped by (kernel|interface)$/gm)) {
    if (Number(m[1]) > 0) lost.push(`${m[1]} packets dropped by the ${m[2]}`);
  }
  return lost;
}

function lastLines(text: string): string {
  return text.trim().split("\n").slice(-3).join(" | ");
}

/** Waits until `file`'s size has not changed for SETTLE_QUIET_MS, SETTLE_MAX_MS at most. */
async function settle(file: string): Promise<void> {
  let last = -2;
  let quietSince = performance.now();
  await until(
    `capture file "${file}" to stop growing`,
    async () => {
      const size = await Deno.stat(file).then((s) => s.size, () => -1);
      if (size !== last) [last, quietSince] = [size, performance.now()];
      return performance.now() - quietSince;
    },
    (quietMs) => quietMs >= SETTLE_QUIET_MS,
    { timeoutMs: scaled(SETTLE_MAX_MS), intervalMs: 5 },
  ).catch((err) => {
    // A file still growing after SETTLE_MAX_MS is read as it is.
    if (!(err instanceof WaitTimeoutError)) throw err;
  });
}
