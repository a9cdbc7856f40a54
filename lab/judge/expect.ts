/**
 * Expectations checked against samples as they arrive, with wait-until
 * semantics: a `settled` expectation passes once it has held for its stable
 * time, an `always` one fails at the first sample that breaks it, a `peak`
 * one is judged on the highest value of the window.
 * @module
 */
import { describeBounds } from "../describe/bounds.ts";
import type { PlannedExpectation } from "../describe/run_plan.ts";
import type { CheckResult, Sample } from "../results.ts";

/** Follows one expectation over a run's samples. */
export class CheckTracker {
  readonly plan: PlannedExpectation;
  #heldSince: number | undefined;
  #decided: { passed: boolean; observed: number; atMs: number } | undefined;
  #last: number | undefined;
  #peak = -Infinity;

  constructor(plan: PlannedExpectation) {
    this.plan = plan;
  }

  #holds(v: number): boolean {
    return v >= this.plan.min && v <= this.plan.max;
  }

  /** Whether its outcome is known before the window ends. */
  get decided(): boolean {
    return this.#decided !== undefined;
  }

  /** Whether it was decided and passed. */
  get passedEarly(): boolean {
    return this.#decided?.passed === true;
  }

  /**
   * Feeds one sample. `armed` is false until every client was launched:
   * before that, only the peak is tracked.
   */
  update(sample: Sample, armed: boolean): void {
    const v = sample.values[this.plan.metric];
    if (v === undefined) return;
    this.#peak = Math.max(this.#peak, v);
    if (!armed || this.#decided) return;
    this.#last = v;
    if (this.plan.over === "settled") {
      if (!this.#holds(v)) this.#heldSince = undefined;
      else {
        this.#heldSince ??= sample.t;
        if (sample.t - this.#heldSince >= this.plan.stableMs) {
          this.#decided = { passed: true, observed: v, atMs: sample.t };
        }
      }
    } else if (this.plan.over === "always" && !this.#holds(v)) {
      this.#decided = { passed: false, observed: v, atMs: sample.t };
    }
  }

  /** The outcome at the end of the window (marked when the check is timing-limited). */
  result(): CheckResult {
    const r = this.#result();
    return this.plan.timingLimited ? { ...r, timingLimited: true } : r;
  }

  #result(): CheckResult {
    const { name, metric, over, min, max, stableMs } = this.plan;
    const bounds = describeBounds(min, max);
    const expected = over === "settled"
      ? `${bounds} for ${stableMs} ms`
      : over === "always"
      ? `${bounds} in every sample`
      : `peak ${bounds}`;
    const base = { name, metric, over, expected };
    if (this.#decided) return { ...base, ...this.#decided };
    if (over === "peak") {
      const peak = this.#peak === -Infinity ? null : this.#peak;
      return { ...base, observed: peak, passed: peak !== null && this.#holds(peak), atMs: null };
    }
    if (over === "always") {
      return {
        ...base,
        observed: this.#last ?? null,
        passed: this.#last !== undefined,
        atMs: null,
      };
    }
    return { ...base, observed: this.#last ?? null, passed: false, atMs: null };
  }
}
