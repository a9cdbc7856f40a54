/**
 * Progress while experiments run: on a terminal, one live line (experiment,
 * matrix point, elapsed vs expected time) redrawn in place; otherwise (CI
 * logs, pipes) one plain line per finished run. Expected times come from the
 * previous run of the same experiment on this machine, kept in a small cache
 * file, or else from the plans' observation windows (an upper bound).
 * @module
 */
import { dirname, join } from "node:path";
import type { ProgressEvent } from "../runner.ts";
import { paramsText } from "./text.ts";

/** What the progress display knows about an experiment before it runs. */
export interface ExperimentOutline {
  /** The experiment's id. */
  id: string;
  /** Its number of matrix points. */
  runs: number;
  /** How long it took last time on this machine, if known. */
  lastMs?: number;
  /** Its longest possible observation (the sum of its runs' windows). */
  boundMs: number;
}

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** Redraw one line in place (a terminal) or print a line per run. */
  live: boolean;
  /** Where text goes (default: stderr). */
  write?: (text: string) => void;
  /** Milliseconds clock (default `performance.now`). */
  now?: () => number;
  /** Redraw interval of the live line, in milliseconds. */
  redrawMs?: number;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

const encoder = new TextEncoder();

/** Shows which experiment and matrix point is running and for how long. */
export class Progress {
  readonly #outlines: readonly ExperimentOutline[];
  readonly #live: boolean;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #redrawMs: number;
  #experiment = -1;
  #experimentStart = 0;
  #run: { index: number; params: Record<string, unknown>; start: number } | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #shown = false;

  /** Creates the display for these experiments, in the order they will run. */
  constructor(outlines: readonly ExperimentOutline[], options: ProgressOptions) {
    this.#outlines = outlines;
    this.#live = options.live;
    this.#write = options.write ?? ((t) => Deno.stderr.writeSync(encoder.encode(t)));
    this.#now = options.now ?? (() => performance.now());
    this.#redrawMs = options.redrawMs ?? 200;
  }

  /** Marks the start of experiment `index` (of the outlines). */
  startExperiment(index: number): void {
    this.#experiment = index;
    this.#experimentStart = this.#now();
    this.#run = undefined;
    if (this.#live) {
      this.#timer ??= setInterval(() => this.#draw(), this.#redrawMs);
      this.#draw();
    }
  }

  /** Takes a runner progress event. */
  onEvent(event: ProgressEvent): void {
    if (event.kind === "run-start") {
      this.#run = { index: event.index, params: event.params, start: this.#now() };
      if (this.#live) this.#draw();
      return;
    }
    if (this.#live) {
      this.#draw();
      return;
    }
    const o = this.#outlines[this.#experiment];
    const r = event.result;
    this.#write(
      `  [${this.#experiment + 1}/${this.#outlines.length}] ${event.experiment} run ${
        event.index + 1
      }/${event.of}${Object.keys(r.params).length ? ` (${paramsText(r.params)})` : ""}: ${
        r.error ? "error" : r.passed ? "passed" : "FAILED"
      } in ${seconds(r.durationMs)}${
        o && event.index + 1 === event.of
          ? `; experiment ${seconds(this.#now() - this.#experimentStart)}${
            o.lastMs === undefined ? "" : ` (last time ${seconds(o.lastMs)})`
          }`
          : ""
      }\n`,
    );
  }

  /** The live line's text now. */
  line(): string {
    const o = this.#outlines[this.#experiment];
    if (!o) return "";
    const elapsed = this.#now() - this.#experimentStart;
    const expected = o.lastMs === undefined
      ? `at most ~${seconds(o.boundMs)}`
      : `~${seconds(o.lastMs)} last time`;
    const run = this.#run
      ? ` · run ${this.#run.index + 1}/${o.runs}${
        Object.keys(this.#run.params).length ? ` ${paramsText(this.#run.params)}` : ""
      }`
      : "";
    return `[${this.#experiment + 1}/${this.#outlines.length}] ${o.id}${run} · ${
      seconds(elapsed)
    } (${expected})`;
  }

  #draw(): void {
    let text = this.line();
    let columns = 100;
    try {
      columns = Deno.consoleSize().columns;
    } catch { /* not a terminal after all */ }
    if (text.length > columns - 1) text = text.slice(0, columns - 2) + "…";
    this.#write(`\r\x1b[2K${text}`);
    this.#shown = true;
  }

  /** Erases the live line so other output can be printed; the next redraw brings it back. */
  clear(): void {
    if (this.#live && this.#shown) {
      this.#write("\r\x1b[2K");
      this.#shown = false;
    }
  }

  /** Stops redrawing and erases the line. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.clear();
  }
}

/** Where the previous run's experiment times are kept: `$XDG_CACHE_HOME/backlog-lab/times.json`. */
export function timesCachePath(): string | undefined {
  // The XDG spec treats an empty variable as unset.
  const base = Deno.env.get("XDG_CACHE_HOME") ||
    (Deno.env.get("HOME") ? join(Deno.env.get("HOME")!, ".cache") : undefined);
  return base === undefined ? undefined : join(base, "backlog-lab", "times.json");
}

/** Experiment key (`id` and mode) → last duration in ms; empty when there is none or it is unreadable. */
export async function readTimes(path = timesCachePath()): Promise<Record<string, number>> {
  if (path === undefined) return {};
  try {
    const data: unknown = JSON.parse(await Deno.readTextFile(path));
    if (typeof data !== "object" || data === null || Array.isArray(data)) return {};
    return Object.fromEntries(
      Object.entries(data).filter(([, v]) => typeof v === "number" && Number.isFinite(v)),
    );
  } catch {
    return {};
  }
}

/** Merges these durations into the cache file; a cache that cannot be written is skipped. */
export async function writeTimes(
  times: Record<string, number>,
  path = timesCachePath(),
): Promise<void> {
  if (path === undefined) return;
  try {
    const merged = { ...(await readTimes(path)), ...times };
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, JSON.stringify(merged, null, 1) + "\n");
  } catch {
    // A cache is a convenience: a read-only home must not fail the lab.
  }
}
