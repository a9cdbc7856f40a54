/**
 * `--repeat N`: the N results of one experiment compared, so that a flaky
 * check or a verdict that depends on luck shows up as a {@linkcode Flip}
 * instead of passing (or failing) by chance.
 *
 * The rules, for the repeats of one experiment:
 *
 * - Runs are matched across repeats by their matrix point (its
 *   {@linkcode paramsText}), checks within a run by name (a repeated name by
 *   its occurrence), claims by id.
 * - A run's outcome in a repeat is `passed`, `failed`, `error: <first line of
 *   the error>`, `missing` (the repeat has no such run) or `skipped` (the
 *   repeat was skipped). A run *completed* in a repeat when it is there, has
 *   no error and the repeat was not skipped.
 * - A check's outcome is `held`, `failed` or `missing` (its run errored before
 *   it was decided, or the repeat has no such run or check). It *flips* when
 *   its outcomes differ among the repeats in which its run completed; the
 *   flip then lists every repeat, `missing` ones too.
 * - A run flips when its outcome differs across repeats and either none of its
 *   checks flipped or it did not complete in some repeat. Without errors a
 *   run's `passed`/`failed` follows from its checks, so the check flips say
 *   it; an error is reported once, as the run flip, however many checks it
 *   removed or failed.
 * - A claim's verdict in a repeat is its rule's verdict, `error: <message>`
 *   when the rule threw, `missing` or `skipped`; it flips when that differs.
 * - Repeats that were all skipped (the experiment was not run) are stable by
 *   definition: no flips, no checks, no verdicts.
 *
 * `checks.stable` counts the checks with the same outcome in every repeat,
 * `missing` included: a check an error removed in one repeat is not stable,
 * though only its run's flip reports it.
 *
 * @example Two repeats in which one check failed once
 * ```ts
 * import { summarizeRepeats } from "./repeat.ts";
 * import type { ExperimentResult } from "../results.ts";
 *
 * declare const first: ExperimentResult, second: ExperimentResult;
 * const summary = summarizeRepeats([first, second]);
 * console.log(summary.checks, summary.flips.length);
 * ```
 * @module
 */
import { paramsText } from "../base/format.ts";
import type { CheckResult, ExperimentResult, Flip, RunResult } from "../results.ts";

export type { Flip };

/** How the N repeats of one experiment compared; {@linkcode summarizeRepeats} builds it. */
export interface RepeatSummary {
  /** The experiment's id. */
  id: string;
  /** How many repeats (N ≥ 1). */
  repeats: number;
  /** Repeats whose experiment passed. */
  passed: number;
  /** Checks (over every run of the matrix) and those with the same outcome in every repeat. */
  checks: { total: number; stable: number };
  /**
   * Each claim's verdicts with how many repeats gave each, the most given
   * first (ties: the one given earliest first).
   */
  verdicts: { claim: string; values: { value: string; count: number }[] }[];
  /** What did not come out the same in every repeat, by the module's rules. */
  flips: Flip[];
  /** Why it was not run, when every repeat was skipped. */
  skipped?: string;
}

/** Value → the 1-based repeats that had it, in insertion order. */
type Tally = Map<string, number[]>;

function tally(values: readonly string[]): Tally {
  const out: Tally = new Map();
  values.forEach((v, i) => {
    const repeats = out.get(v);
    if (repeats) repeats.push(i + 1);
    else out.set(v, [i + 1]);
  });
  return out;
}

/** Most repeats first, then the earliest first repeat. */
function sortedOutcomes(t: Tally): Flip["outcomes"] {
  return [...t].map(([value, repeats]) => ({ value, repeats }))
    .sort((a, b) => b.repeats.length - a.repeats.length || a.repeats[0]! - b.repeats[0]!);
}

function runOutcome(e: ExperimentResult, run: RunResult | undefined): string {
  if (e.skipped !== undefined) return "skipped";
  if (run === undefined) return "missing";
  if (run.error !== undefined) return `error: ${run.error.split("\n")[0]}`;
  return run.passed ? "passed" : "failed";
}

/** Check key (name, with `#k` for its k-th repeat within a run) → check, in run order. */
function checksByKey(checks: readonly CheckResult[]): Map<string, CheckResult> {
  const out = new Map<string, CheckResult>();
  const seen = new Map<string, number>();
  for (const c of checks) {
    const k = (seen.get(c.name) ?? 0) + 1;
    seen.set(c.name, k);
    out.set(k === 1 ? c.name : `${c.name}#${k}`, c);
  }
  return out;
}

/** Keys in first-seen order over a list of lists. */
function union(lists: Iterable<Iterable<string>>): string[] {
  const out = new Set<string>();
  for (const list of lists) for (const k of list) out.add(k);
  return [...out];
}

/**
 * Compares the N results of one experiment.
 *
 * @param results the experiment's result from each repeat, in repeat order.
 * @returns the counts, the verdicts and every flip, verdicts first, then each
 * run (in matrix order) with its run flip before its check flips.
 * @throws {RangeError} when `results` is empty or holds results of different experiments.
 *
 * @example A check that failed in repeat 3 of 5
 * ```ts
 * import { summarizeRepeats } from "./repeat.ts";
 * import type { ExperimentResult } from "../results.ts";
 *
 * declare const repeats: ExperimentResult[];
 * for (const flip of summarizeRepeats(repeats).flips) {
 *   console.log(flip.kind, flip.check, flip.outcomes); // check "queued" [{ value: "held", repeats: [1, 2, 4, 5] }, …]
 * }
 * ```
 */
export function summarizeRepeats(results: readonly ExperimentResult[]): RepeatSummary {
  const first = results[0];
  if (first === undefined) {
    throw new RangeError("Cannot summarize repeats: there are no results, give at least one");
  }
  const other = results.find((r) => r.id !== first.id);
  if (other !== undefined) {
    throw new RangeError(
      `Cannot summarize repeats of "${first.id}": a result is of "${other.id}", give the results of one experiment`,
    );
  }
  const summary: RepeatSummary = {
    id: first.id,
    repeats: results.length,
    passed: results.filter((r) => r.passed).length,
    checks: { total: 0, stable: 0 },
    verdicts: [],
    flips: [],
  };
  if (results.every((r) => r.skipped !== undefined)) {
    summary.skipped = first.skipped!;
    return summary;
  }

  for (const claim of union(results.map((r) => Object.keys(r.claims)))) {
    const t = tally(results.map((r) => {
      const d = r.claims[claim];
      if (r.skipped !== undefined) return "skipped";
      if (d === undefined) return "missing";
      return "error" in d ? `error: ${d.error}` : d.verdict;
    }));
    const outcomes = sortedOutcomes(t);
    summary.verdicts.push({
      claim,
      values: outcomes.map((o) => ({ value: o.value, count: o.repeats.length })),
    });
    if (outcomes.length > 1) summary.flips.push({ kind: "verdict", claim, outcomes });
  }

  const runMaps = results.map((r) => new Map(r.runs.map((run) => [paramsText(run.params), run])));
  for (const key of union(runMaps.map((m) => m.keys()))) {
    const runs = runMaps.map((m) => m.get(key));
    const completed = runs.map((run, i) =>
      run !== undefined && run.error === undefined && results[i]!.skipped === undefined
    );
    const checkMaps = runs.map((run) => checksByKey(run?.checks ?? []));
    const checkFlips: Flip[] = [];
    for (const ck of union(checkMaps.map((m) => m.keys()))) {
      const values = checkMaps.map((m) => {
        const c = m.get(ck);
        return c === undefined ? "missing" : c.passed ? "held" : "failed";
      });
      summary.checks.total++;
      if (new Set(values).size === 1) summary.checks.stable++;
      if (new Set(values.filter((_, i) => completed[i])).size > 1) {
        const name = checkMaps.map((m) => m.get(ck)).find((c) => c !== undefined)!.name;
        checkFlips.push({
          kind: "check",
          run: key,
          check: name,
          outcomes: sortedOutcomes(tally(values)),
        });
      }
    }
    const outcomes = sortedOutcomes(tally(results.map((r, i) => runOutcome(r, runs[i]))));
    if (outcomes.length > 1 && (checkFlips.length === 0 || completed.includes(false))) {
      summary.flips.push({ kind: "run", run: key, outcomes });
    }
    summary.flips.push(...checkFlips);
  }
  return summary;
}

/**
 * The result the report and `--json` carry for an experiment run N times:
 * the first repeat's, with `repeats`, `flips` and `repeatDurationsMs` added,
 * `passed` only if every repeat passed and nothing flipped, and `durationMs`
 * the median repeat's duration (for an even N the shorter of the middle two,
 * so that it is a time some repeat took).
 *
 * @param results the experiment's result from each repeat, in repeat order.
 * @returns the merged result; its runs and claims are the first repeat's.
 * @throws {RangeError} as {@linkcode summarizeRepeats} does.
 *
 * @example
 * ```ts
 * import { mergeRepeats } from "./repeat.ts";
 * import type { ExperimentResult } from "../results.ts";
 *
 * declare const repeats: ExperimentResult[];
 * const merged = mergeRepeats(repeats);
 * console.log(merged.passed, merged.repeats, merged.flips?.length, merged.durationMs);
 * ```
 */
export function mergeRepeats(results: readonly ExperimentResult[]): ExperimentResult {
  const summary = summarizeRepeats(results);
  const durations = results.map((r) => r.durationMs);
  const sorted = [...durations].sort((a, b) => a - b);
  return {
    ...results[0]!,
    passed: results.every((r) => r.passed) && summary.flips.length === 0,
    durationMs: sorted[Math.floor((sorted.length - 1) / 2)]!,
    repeats: results.length,
    flips: summary.flips,
    repeatDurationsMs: durations,
  };
}

/**
 * 1-based repeat numbers as ranges: `[1, 2, 3, 5, 7, 8]` → `1-3,5,7-8`.
 *
 * @param repeats repeat numbers, in any order; duplicates are ignored.
 * @returns the numbers ascending, each run of consecutive ones as `first-last`.
 *
 * @example
 * ```ts
 * import { repeatRanges } from "./repeat.ts";
 *
 * console.log(repeatRanges([1, 2, 3, 4, 5, 6, 7, 9, 10])); // "1-7,9-10"
 * ```
 */
export function repeatRanges(repeats: readonly number[]): string {
  const sorted = [...new Set(repeats)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

function outcomeText(o: Flip["outcomes"][number]): string {
  const ranges = repeatRanges(o.repeats);
  return o.value.startsWith("error: ")
    ? `error in ${ranges} (${o.value.slice("error: ".length)})`
    : `${o.value} in ${ranges}`;
}

/**
 * One line per flip: `<experiment> · <run params> · check "<name>": held in
 * 1-7,9-20; failed in 8`, `<experiment> · verdict A1.3: reproduced in 1-19;
 * not reproduced in 20`, or `<experiment> · <run params> · run: passed in 1-4;
 * error in 5 (<message>)`. A single run has no params part.
 *
 * @param flips the flips, as {@linkcode summarizeRepeats} gives them.
 * @param experiment the experiment id that begins each line; none if omitted.
 * @returns the lines joined by newlines; `""` for no flips.
 *
 * @example
 * ```ts
 * import { flipsText } from "./repeat.ts";
 *
 * console.log(flipsText([{
 *   kind: "check",
 *   run: "backlog=4",
 *   check: "queued",
 *   outcomes: [{ value: "held", repeats: [1, 2, 4, 5] }, { value: "failed", repeats: [3] }],
 * }], "tiny-backlog")); // tiny-backlog · backlog=4 · check "queued": held in 1-2,4-5; failed in 3
 * ```
 */
export function flipsText(flips: readonly Flip[], experiment?: string): string {
  return flips.map((f) => {
    const what = f.kind === "verdict"
      ? `verdict ${f.claim}`
      : f.kind === "check"
      ? `check "${f.check}"`
      : "run";
    const parts = [
      ...(experiment ? [experiment] : []),
      ...(f.kind !== "verdict" && f.run ? [f.run] : []),
      what,
    ];
    return `${parts.join(" · ")}: ${f.outcomes.map(outcomeText).join("; ")}`;
  }).join("\n");
}
