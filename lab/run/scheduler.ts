/**
 * Runs tasks concurrently, at most `jobs` at a time. Tasks queued in the same
 * turn start longest first (by their estimate), which shortens the whole run
 * when a few matrix points are much longer than the rest. An exclusive task
 * runs alone: it waits until nothing else runs, and nothing starts beside it.
 * A heavy task (one that keeps the CPUs busy for its whole length) runs
 * beside lighter ones, but at most one per two jobs at once: a lighter task
 * queued behind a waiting heavy one starts in its place.
 * @module
 */
import { availableParallelism } from "node:os";

/** How a task is queued. */
export interface TaskOptions {
  /** Expected duration in ms; tasks queued together start longest first. */
  estimateMs?: number;
  /** Run with nothing else beside it (it needs the whole machine or something global). */
  exclusive?: boolean;
  /** Keeps the CPUs busy: at most {@linkcode Scheduler.heavyJobs} such tasks run at once. */
  heavy?: boolean;
}

interface Queued {
  start: () => void;
  estimateMs: number;
  exclusive: boolean;
  heavy: boolean;
  order: number;
}

/**
 * The default number of concurrent matrix points: four per core, at least 4
 * and at most 16. A point spends nearly all its time waiting for kernel timers,
 * so several per core keep the machine busy without crowding it.
 */
export function defaultJobs(): number {
  return Math.max(4, Math.min(16, 4 * availableParallelism()));
}

/** A bounded pool of concurrent tasks with exclusive ones. */
export class Scheduler {
  /** The most tasks that run at once. */
  readonly jobs: number;
  /** The most heavy tasks that run at once: one per two jobs, at least one. */
  readonly heavyJobs: number;
  #running = 0;
  #heavyRunning = 0;
  #exclusiveRunning = false;
  #queue: Queued[] = [];
  #order = 0;
  #dispatchPending = false;

  /**
   * Creates a pool that runs `jobs` tasks at once.
   *
   * @throws {RangeError} unless `jobs` is a whole number ≥ 1.
   */
  constructor(jobs: number) {
    if (!Number.isInteger(jobs) || jobs < 1) {
      throw new RangeError(`Cannot run ${jobs} jobs at once: give a whole number ≥ 1`);
    }
    this.jobs = jobs;
    this.heavyJobs = Math.max(1, Math.floor(jobs / 2));
  }

  /** Tasks running now. */
  get running(): number {
    return this.#running;
  }

  /** Queues `task`; resolves or rejects as it does. */
  run<T>(task: () => Promise<T>, options: TaskOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        start: () => {
          this.#running++;
          if (options.exclusive) this.#exclusiveRunning = true;
          if (options.heavy) this.#heavyRunning++;
          (async () => await task())().then(resolve, reject).finally(() => {
            this.#running--;
            if (options.exclusive) this.#exclusiveRunning = false;
            if (options.heavy) this.#heavyRunning--;
            this.#dispatch();
          });
        },
        estimateMs: options.estimateMs ?? 0,
        exclusive: options.exclusive ?? false,
        heavy: options.heavy ?? false,
        order: this.#order++,
      });
      // Start on the next turn, so that tasks queued together are ordered together.
      if (!this.#dispatchPending) {
        this.#dispatchPending = true;
        setTimeout(() => {
          this.#dispatchPending = false;
          this.#sort();
          this.#dispatch();
        }, 0);
      }
    });
  }

  /** Exclusive tasks first (each alone), then the longest expected; ties in queue order. */
  #sort(): void {
    this.#queue.sort((a, b) =>
      Number(b.exclusive) - Number(a.exclusive) || b.estimateMs - a.estimateMs ||
      a.order - b.order
    );
  }

  #dispatch(): void {
    while (this.#queue.length > 0 && !this.#exclusiveRunning && this.#running < this.jobs) {
      // An exclusive task at the head waits for the others to end; a heavy one over its bound
      // lets the next task in line go first.
      const head = this.#queue[0]!;
      if (head.exclusive && this.#running > 0) return;
      const i = this.#queue.findIndex((q) =>
        !q.exclusive && !(q.heavy && this.#heavyRunning >= this.heavyJobs)
      );
      const at = head.exclusive ? 0 : i;
      if (at < 0) return;
      const [next] = this.#queue.splice(at, 1);
      next!.start();
    }
  }
}
