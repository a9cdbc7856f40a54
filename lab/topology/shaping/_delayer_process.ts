/**
 * The lab's side of one delayer program: starting it inside a namespace,
 * asking it for counters or to drain, and ending it by PID.
 * @module
 */
import { denoProgramArgv, ManagedProcess } from "../../base/process.ts";
import { until } from "../../base/wait.ts";
import type { Netns } from "../netns.ts";
import type { DelayerStats } from "./delayer.ts";

/** A command to the delayer; `reply` is echoed in the answer. */
type DelayerCommand = { cmd: "stats" | "drain"; reply: number } | { cmd: "exit" };

/** An event of the delayer. */
type DelayerEvent =
  | { event: "ready" }
  | { event: "stats" | "drained"; reply: number; [counter: string]: unknown }
  | { event: "error"; message: string };

/** A stats or drain request; the delayer answers within one wake-up. */
const REQUEST_TIMEOUT_MS = 5_000;
/** After "exit", how long before the delayer is killed by PID. */
const STOP_GRACE_MS = 1_000;

/** What the delayer is started with. */
export interface DelayerConfig {
  /** NFQUEUE number. */
  queue: number;
  delayMs: number;
  jitterMs: number;
  /** Queue length (packets). */
  maxLen: number;
  /** SCHED_FIFO priority of its loop, 1 to 99, or 0 for none. */
  priority: number;
}

/** A running delayer; `AsyncDisposable` (disposal ends it, idempotently). */
export class DelayerProcess implements AsyncDisposable {
  readonly #process: ManagedProcess<DelayerCommand, DelayerEvent>;
  #replies = 0;

  private constructor(process: ManagedProcess<DelayerCommand, DelayerEvent>) {
    this.#process = process;
  }

  /**
   * Starts the delayer inside `ns` and waits until it has bound its queue.
   *
   * @throws {Error} when it reports an error or exits first (e.g. the queue is taken).
   * @throws {WaitTimeoutError} after `timeoutMs`.
   */
  static async start(
    ns: Netns,
    config: DelayerConfig,
    options: { label: string; timeoutMs: number; signal?: AbortSignal | undefined },
  ): Promise<DelayerProcess> {
    const process = new ManagedProcess<DelayerCommand, DelayerEvent>(
      options.label,
      ns.wrap(delayerArgv(config)),
    );
    const delayer = new DelayerProcess(process);
    try {
      await process.waitForEvent("ready", options.timeoutMs, options.signal);
    } catch (err) {
      await delayer[Symbol.asyncDispose]();
      throw err;
    }
    return delayer;
  }

  /** Its PID. */
  get pid(): number {
    return this.#process.pid;
  }

  /** Whether it has exited. */
  get exited(): boolean {
    return this.#process.exited;
  }

  /**
   * Its counters now.
   *
   * @throws {Error} when it has exited or reports an error.
   * @throws {WaitTimeoutError} when it does not answer within 5 s.
   */
  async stats(): Promise<DelayerStats> {
    const { event: _e, reply: _r, receivedAt: _t, ...rest } = await this.#request("stats", {
      answer: "stats",
      verb: "read the counters of",
    });
    return rest as unknown as DelayerStats;
  }

  /**
   * Resolves once it holds nothing (its rule must be gone, or it fills
   * again). Packets keep their release times, so give it the delay and the
   * jitter; `timeoutMs` is added to the 5 s any request gets.
   */
  async drained(timeoutMs = 0): Promise<void> {
    await this.#request("drain", { answer: "drained", verb: "drain", extraMs: timeoutMs });
  }

  async #request(
    cmd: "stats" | "drain",
    o: { answer: "stats" | "drained"; verb: string; extraMs?: number },
  ): Promise<Record<string, unknown>> {
    const { answer, verb, extraMs = 0 } = o;
    const p = this.#process;
    const reply = ++this.#replies;
    const label = `${p.label} (pid ${p.pid})`;
    await p.send({ cmd, reply });
    const ev = await until(
      `${label} to answer "${cmd}"`,
      () =>
        p.events.find((e) =>
          (e.event === answer && "reply" in e && e.reply === reply) || e.event === "error"
        ) ?? (p.exited ? "exited" as const : undefined),
      (v) => v !== undefined,
      {
        timeoutMs: REQUEST_TIMEOUT_MS + extraMs,
        intervalMs: 250,
        wake: () => p.changed(),
        show: () => JSON.stringify(p.events.at(-1) ?? null),
      },
    );
    if (ev === "exited" || ev === undefined) {
      throw new Error(`Cannot ${verb} ${label}: it exited with ${(await p.status).code}`);
    }
    if (ev.event === "error") {
      throw new Error(`Cannot ${verb} ${label}: ${(ev as { message?: string }).message}`);
    }
    return ev as Record<string, unknown>;
  }

  /** Asks it to exit (it releases anything still held), kills it by PID after 1 s, reaps it. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#process.stop(STOP_GRACE_MS);
  }
}

/** The command that runs the delayer (wrap it to run inside the namespace). */
function delayerArgv(c: DelayerConfig): string[] {
  return denoProgramArgv(
    new URL("./delayer.ts", import.meta.url),
    ["--allow-ffi"],
    [
      c.queue,
      c.delayMs,
      c.jitterMs,
      c.maxLen,
      c.priority,
    ].map(String),
  );
}
