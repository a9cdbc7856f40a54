/**
 * Progress while experiments run, their matrix points concurrently: on a
 * terminal, one live line (runs done, elapsed time, the points running now)
 * redrawn in place; otherwise (CI logs, pipes) one plain line per finished
 * run, as runs finish, and each experiment's time next to its previous time
 * on this machine when its last point finishes.
 * @module
 */
import type { ExperimentOutline, ProgressEvent } from "../results.ts";
import { paramsText, seconds as secondsText } from "../base/format.ts";

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

const seconds = (ms: number) => secondsText(ms, 1);

const encoder = new TextEncoder();

interface ExperimentState {
  start?: number;
  done: number;
  /** Running points by repeat and index. */
  running: Map<string, { index: number; params: Record<string, unknown> }>;
}

/** Shows how many matrix points are done, which are running and for how long. */
export class Progress {
  readonly #outlines: readonly ExperimentOutline[];
  readonly #index: Map<string, number>;
  readonly #states: ExperimentState[];
  readonly #total: number;
  readonly #live: boolean;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #redrawMs: number;
  #start: number | undefined;
  #done = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #shown = false;

  readonly #repeats: number;

  /**
   * Creates the display for these experiments, in the order they are
   * reported, each run `repeats` times (default 1).
   */
  constructor(
    outlines: readonly ExperimentOutline[],
    options: ProgressOptions & { repeats?: number },
  ) {
    this.#outlines = outlines;
    this.#repeats = options.repeats ?? 1;
    this.#index = new Map(outlines.map((o, i) => [o.id, i]));
    this.#states = outlines.map(() => ({ done: 0, running: new Map() }));
    this.#total = outlines.reduce((n, o) => n + o.runs, 0) * this.#repeats;
    this.#live = options.live;
    this.#write = options.write ?? ((t) => Deno.stderr.writeSync(encoder.encode(t)));
    this.#now = options.now ?? (() => performance.now());
    this.#redrawMs = options.redrawMs ?? 200;
  }

  /** Starts the clock (and, live, the redraws). Idempotent. */
  start(): void {
    this.#start ??= this.#now();
    if (this.#live) {
      this.#timer ??= setInterval(() => this.#draw(), this.#redrawMs);
      this.#draw();
    }
  }

  /** Takes a runner progress event. */
  onEvent(event: ProgressEvent): void {
    const k = this.#index.get(event.experiment);
    if (k === undefined) return;
    const state = this.#states[k]!;
    const key = `${event.repeat ?? 1}:${event.index}`;
    if (event.kind === "run-start") {
      state.start ??= this.#now();
      state.running.set(key, { index: event.index, params: event.params });
      if (this.#start === undefined) this.start();
      else if (this.#live) this.#draw();
      return;
    }
    state.running.delete(key);
    state.done++;
    this.#done++;
    if (this.#live) {
      this.#draw();
      return;
    }
    const o = this.#outlines[k]!;
    const r = event.result;
    const last = state.done === o.runs * this.#repeats;
    const repeat = event.repeat === undefined ? "" : ` repeat ${event.repeat}/${this.#repeats}`;
    this.#write(
      `  [${k + 1}/${this.#outlines.length}] ${event.experiment}${repeat} run ${
        event.index + 1
      }/${event.of}${Object.keys(r.params).length ? ` (${paramsText(r.params)})` : ""}: ${
        r.error ? "error" : r.passed ? "passed" : "FAILED"
      } in ${seconds(r.durationMs)}${
        last
          ? `; experiment ${seconds(this.#now() - (state.start ?? this.#now()))}${
            o.lastMs === undefined ? "" : ` (last time ${seconds(o.lastMs)})`
          }`
          : ""
      }\n`,
    );
  }

  /** The live line's text now. */
  line(): string {
    if (this.#start === undefined) return "";
    const running = this.#states.flatMap((s, k) =>
      [...s.running.values()].map(({ index, params }) => ({ k, index, params }))
    );
    const what = running.map(({ k, index, params }) => {
      const o = this.#outlines[k]!;
      const p = running.length === 1 && Object.keys(params).length ? ` ${paramsText(params)}` : "";
      return `${o.id} ${index + 1}/${o.runs}${p}`;
    });
    return `[${this.#done}/${this.#total} runs] ${seconds(this.#now() - this.#start)}${
      what.length ? ` · ${what.join(", ")}` : ""
    }`;
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
