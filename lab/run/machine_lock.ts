/**
 * Admission of matrix points across every lab on the machine, with `flock`s
 * on files under `/run/backlog-lab` (the kernel drops a dead process's locks,
 * so nothing is ever stale):
 *
 * - `exclusive.lock`: every running point holds it shared; a point that must
 *   run alone (10,000 connections, `exclusive: true`) holds it exclusively,
 *   so it runs with no point of any lab beside it.
 * - `turnstile.lock`: a point waiting to run alone holds it exclusively while
 *   it waits; every other point passes through it (shared, at once released)
 *   before it takes `exclusive.lock`, so that new points queue behind the
 *   waiting one instead of starving it.
 * - `slots/<k>.lock`: a point holds one of the first `jobs` of them while it
 *   runs, so that labs side by side run at most `jobs` points at once in all
 *   (the largest `--jobs` among them), as one lab would: three labs on two
 *   cores do not load the machine three times over.
 *
 * Waiting polls with `tryLock` (a blocked `flock` cannot be aborted), with a
 * deadline; a point that could not get in says why.
 * @module
 */
import { join } from "node:path";
import { WaitTimeoutError } from "../base/errors.ts";
import { RUNS_ROOT } from "../base/run_record.ts";
import { delay } from "../base/wait.ts";

/** How long a point may wait for the machine before it fails, saying why. */
export const MACHINE_WAIT_MS = 15 * 60_000;

/** Options of {@linkcode MachineLock}. */
export interface MachineLockOptions {
  /** Where the lock files are (default `/run/backlog-lab`). */
  root?: string;
  /** Give up after this long (default {@linkcode MACHINE_WAIT_MS}). */
  timeoutMs?: number;
}

/** What a point holds while it runs; release it when the point is done. */
export interface MachineTicket extends Disposable {
  /** How long the point waited for the machine, in ms. */
  waitedMs: number;
}

/** Machine-wide admission of a lab's points; one per lab. */
export class MachineLock {
  readonly #root: string;
  readonly #timeoutMs: number;

  /** Admission under `options.root` (default `/run/backlog-lab`). */
  constructor(options: MachineLockOptions = {}) {
    this.#root = options.root ?? RUNS_ROOT;
    this.#timeoutMs = options.timeoutMs ?? MACHINE_WAIT_MS;
  }

  /**
   * Waits until a point may run, then holds its place: alone on the machine
   * when `exclusive`, otherwise beside other points within `slots`.
   *
   * @param options `exclusive`; `slots`, the lab's `--jobs`; `signal` to stop
   *   waiting; `onWait`, called once if the point has to wait, with why.
   * @throws {WaitTimeoutError} saying what it waited for, after the deadline.
   * @throws the signal's reason when it aborts.
   */
  async acquire(options: {
    exclusive: boolean;
    slots: number;
    signal?: AbortSignal;
    onWait?: (why: string) => void;
  }): Promise<MachineTicket> {
    await Deno.mkdir(join(this.#root, "slots"), { recursive: true, mode: 0o755 });
    const t0 = performance.now();
    const held: Deno.FsFile[] = [];
    const release = () => {
      for (const f of held.splice(0).reverse()) f.close();
    };
    let told = false;
    const wait = async (why: string) => {
      if (!told && performance.now() - t0 > 500) {
        told = true;
        options.onWait?.(why);
      }
      if (performance.now() - t0 > this.#timeoutMs) {
        throw new WaitTimeoutError(
          `Cannot start the run: waited ${Math.round(this.#timeoutMs / 1000)} s for ${why}`,
        );
      }
      await delay(25, options.signal);
    };
    try {
      if (options.exclusive) {
        const turnstile = await this.#open("turnstile.lock");
        held.push(turnstile);
        while (!await turnstile.tryLock(true)) {
          await wait("another lab's point that runs alone to start (it goes first)");
        }
        const main = await this.#open("exclusive.lock");
        held.push(main);
        while (!await main.tryLock(true)) {
          await wait("the points of every lab on this machine to finish, to run alone");
        }
        // Held to the end: the turnstile keeps new points out while this one runs.
      } else {
        held.push(await this.#slot(options.slots, wait));
        const turnstile = await this.#open("turnstile.lock");
        try {
          while (!await turnstile.tryLock(false)) {
            await wait("a point of another lab that runs alone");
          }
        } finally {
          turnstile.close();
        }
        const main = await this.#open("exclusive.lock");
        held.push(main);
        while (!await main.tryLock(false)) {
          await wait("a point of another lab that runs alone");
        }
      }
    } catch (err) {
      release();
      throw err;
    }
    return { waitedMs: Math.round(performance.now() - t0), [Symbol.dispose]: release };
  }

  /** One free slot among the first `slots`, locked. */
  async #slot(slots: number, wait: (why: string) => Promise<void>): Promise<Deno.FsFile> {
    for (;;) {
      for (let k = 0; k < slots; k++) {
        const f = await this.#open(join("slots", `${k}.lock`));
        if (await f.tryLock(true)) return f;
        f.close();
      }
      await wait(
        `one of the ${slots} slots for points that run at once on this machine (other labs hold them)`,
      );
    }
  }

  #open(name: string): Promise<Deno.FsFile> {
    return Deno.open(join(this.#root, name), { create: true, write: true, mode: 0o644 });
  }
}
