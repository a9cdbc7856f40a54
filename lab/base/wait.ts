/**
 * Waiting, the one way the lab and its tests do it: poll a reading until a
 * condition holds, with a deadline, never a blind sleep. On timeout the error
 * names the condition and the last value read.
 * @module
 */
import { WaitTimeoutError } from "./errors.ts";

/** Options of {@linkcode until}. */
export interface UntilOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Time between readings: a number, or a function of the attempt (0, 1, …) for a backoff. Default 20 ms. */
  intervalMs?: number | ((attempt: number) => number);
  /** Aborts the wait with the signal's reason. */
  signal?: AbortSignal;
  /** Resolves when a new reading may be worth taking (e.g. an event arrived): read again at once. */
  wake?: () => Promise<unknown>;
  /** How the last value is shown in the timeout message (default JSON). */
  show?: (value: unknown) => string;
}

/**
 * Reads `read()` until `done(value)` holds and returns that value.
 *
 * @throws {WaitTimeoutError} after `timeoutMs`: `Timed out after N ms waiting for <what>: last value <v>`.
 * @throws the signal's reason when it aborts.
 *
 * @example Wait for a file to appear
 * ```ts
 * import { until } from "./wait.ts";
 *
 * const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
 * await until("the file", () => exists("/tmp"), (ok) => ok, { timeoutMs: 1000 });
 * ```
 */
export async function until<T>(
  what: string,
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  options: UntilOptions | number = {},
): Promise<T> {
  const o = typeof options === "number" ? { timeoutMs: options } : options;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const deadline = performance.now() + timeoutMs;
  const interval = o.intervalMs ?? 20;
  for (let attempt = 0;; attempt++) {
    o.signal?.throwIfAborted();
    const value = await read();
    if (done(value)) return value;
    const left = deadline - performance.now();
    if (left <= 0) {
      const shown = o.show ? o.show(value) : JSON.stringify(value);
      throw new WaitTimeoutError(
        `Timed out after ${timeoutMs} ms waiting for ${what}: last value ${shown}`,
      );
    }
    const ms = Math.min(left, typeof interval === "number" ? interval : interval(attempt));
    await pause(ms, o.signal, o.wake);
  }
}

/** Resolves after `ms`, or as soon as `wake()` settles; rejects when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal, wake?: () => Promise<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const finish = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(finish, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
    wake?.().then(finish, finish);
  });
}

/**
 * A timer promise that does not keep a finished test alive, and rejects with
 * the signal's reason when it aborts.
 */
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
