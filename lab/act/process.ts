/**
 * A program the lab started inside a namespace, speaking JSON lines:
 * events on its stdout, commands on its stdin. Disposal asks it to exit,
 * then kills it by PID, and always reaps it.
 * @module
 */
import { readLines } from "./programs/_lines.ts";
import { WaitTimeoutError } from "../base/errors.ts";

/** One JSON event a program printed, with the time it arrived. */
export interface ProgramEvent {
  event: string;
  /** performance.now() when the runner read it. */
  receivedAt: number;
  [key: string]: unknown;
}

/** A running program; `AsyncDisposable`. */
export class ManagedProcess implements AsyncDisposable {
  readonly label: string;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #events: ProgramEvent[] = [];
  readonly #stderr: Promise<string>;
  readonly #pump: Promise<void>;
  #listeners: (() => void)[] = [];
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(label: string, argv: readonly string[]) {
    this.label = label;
    const [cmd, ...args] = argv;
    const child = new Deno.Command(cmd!, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.status = child.status.then((s) => {
      this.#exited = true;
      this.#notify();
      return s;
    });
    this.#stderr = new Response(child.stderr).text().catch(() => "");
    this.#pump = (async () => {
      for await (const line of readLines(child.stdout)) {
        if (!line.trim()) continue;
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line);
        } catch {
          parsed = { event: "output", text: line };
        }
        this.#events.push({
          ...parsed,
          event: String(parsed.event),
          receivedAt: performance.now(),
        });
        this.#notify();
      }
    })().catch(() => {});
  }

  /** The PID of the program (`ip netns exec` execs, so it is the program itself). */
  get pid(): number {
    return this.#child.pid;
  }

  /** Whether it has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Every event so far, in order. */
  get events(): readonly ProgramEvent[] {
    return this.#events;
  }

  #notify(): void {
    const ls = this.#listeners;
    this.#listeners = [];
    for (const l of ls) l();
  }

  /** Resolves on the next event or exit. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#listeners.push(resolve));
  }

  /**
   * Waits for the first event named `name` (or one of its `error` events, which throws).
   *
   * @throws {WaitTimeoutError} after `timeoutMs`, naming the event and what was seen.
   */
  async waitForEvent(name: string, timeoutMs: number, signal?: AbortSignal): Promise<ProgramEvent> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const ev = this.#events.find((e) => e.event === name || e.event === "error");
      if (ev?.event === "error") throw new Error(`${this.label} failed: ${ev.message}`);
      if (ev) return ev;
      signal?.throwIfAborted();
      if (this.#exited) {
        const s = await this.status;
        throw new Error(
          `${this.label} exited with ${s.code} before "${name}": ${
            (await this.#stderr).trim().slice(-500)
          }`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new WaitTimeoutError(
          `Timed out after ${timeoutMs} ms waiting for ${this.label} to report "${name}": last event ${
            JSON.stringify(this.#events.at(-1) ?? null)
          }`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.changed(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, Math.min(left, 250))),
      ]);
      clearTimeout(timer);
    }
  }

  /** Sends one command line. */
  async send(command: Record<string, unknown>): Promise<void> {
    if (this.#exited) return;
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n")).catch(
      () => {},
    );
  }

  /** Sends it a signal by PID (a no-op once it has exited). */
  kill(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  /** Asks it to exit, kills it by PID after `graceMs`, and reaps it. Idempotent. */
  async stop(graceMs = 1000): Promise<void> {
    if (!this.#exited) {
      await this.send({ cmd: "exit" });
      await this.#writer.close().catch(() => {});
      const t = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, graceMs);
      await this.status;
      clearTimeout(t);
    } else {
      await this.#writer.close().catch(() => {});
    }
    await this.#pump;
    await this.#stderr;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A timer promise that does not keep a finished test alive. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
