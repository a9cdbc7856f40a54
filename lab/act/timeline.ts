/**
 * When an experiment's timeline steps are due. Pure bookkeeping over sample
 * times and values; the runner performs the actions and records when.
 * @module
 */
import type { PlannedAction, PlannedStep } from "../describe/run_plan.ts";
import { describeBounds } from "../describe/bounds.ts";
import type { StepRecord } from "../results.ts";

export type { StepRecord };

/** Decides which steps are due at each sample. */
export class Timeline {
  readonly #steps: readonly PlannedStep[];
  /** Step name → time its conditions (but `delayMs`) first held. */
  readonly #ready = new Map<string, number>();
  /** Step name → time it was performed. */
  readonly #done = new Map<string, number>();
  /** Last value each `when` metric had. */
  readonly #last = new Map<string, number | undefined>();

  /** Tracks `steps` (a run plan's timeline) from the release on. */
  constructor(steps: readonly PlannedStep[]) {
    this.#steps = steps;
  }

  /**
   * The steps due at time `t` (ms since release) given this sample's values,
   * in definition order. Call {@linkcode Timeline.done} for each once performed.
   */
  due(t: number, values: Record<string, number>): PlannedStep[] {
    const out: PlannedStep[] = [];
    for (const s of this.#steps) {
      if (this.#done.has(s.name)) continue;
      if (!this.#ready.has(s.name)) {
        let ok = t >= s.atMs;
        if (s.when) {
          const v = values[s.when.metric];
          this.#last.set(s.name, v);
          ok &&= v !== undefined && v >= s.when.min && v <= s.when.max;
        }
        if (s.afterStep !== undefined) ok &&= this.#done.has(s.afterStep);
        if (!ok) continue;
        this.#ready.set(s.name, t);
      }
      if (t >= this.#ready.get(s.name)! + s.delayMs) out.push(s);
    }
    return out;
  }

  /** Marks a step performed at `t`. */
  done(name: string, t: number): void {
    this.#done.set(name, t);
  }

  /** Steps not yet performed. */
  get pending(): PlannedStep[] {
    return this.#steps.filter((s) => !this.#done.has(s.name));
  }

  /** Why a pending step has not happened, for the error when the window ends. */
  whyPending(step: PlannedStep, windowMs: number): string {
    const reasons: string[] = [];
    const last = this.#last.get(step.name);
    const held = last !== undefined && step.when !== undefined && last >= step.when.min &&
      last <= step.when.max;
    if (step.when && !this.#ready.has(step.name) && !held) {
      reasons.push(
        `${step.when.metric} ${
          describeBounds(step.when.min, step.when.max)
        } did not hold within ${windowMs} ms (last value ${this.#last.get(step.name)})`,
      );
    }
    if (step.afterStep !== undefined && !this.#done.has(step.afterStep)) {
      reasons.push(`step "${step.afterStep}" never happened`);
    }
    if (reasons.length === 0) {
      reasons.push(
        `it was due at ${
          this.#ready.get(step.name) ?? step.atMs
        } ms (+${step.delayMs} ms), after the ${windowMs} ms window`,
      );
    }
    return reasons.join("; ");
  }
}

/** An action in words, for results and reports. */
export function describeAction(a: PlannedAction): string {
  switch (a.kind) {
    case "startGroup":
      return `start client group "${a.group}"`;
    case "closeGroup":
      return `close client group "${a.group}"`;
    case "addRule":
      return `add rule "${a.rule}"`;
    case "removeRule":
      return `remove rule "${a.rule}"`;
    case "sysctl":
      return `set ${a.name}=${a.value} on ${a.host}`;
    case "accept":
      return `server accepts up to ${a.n}`;
    case "acceptPolicy":
      return `server accept policy ${
        typeof a.policy === "string" ? a.policy : JSON.stringify(a.policy)
      }`;
    case "stopServer":
      return a.how === "SIGKILL"
        ? "kill the server (SIGKILL)"
        : "server closes its sockets and exits";
  }
}
