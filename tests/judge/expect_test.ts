/**
 * Unit tests of {@linkcode CheckTracker}: wait-until semantics of settled,
 * always and peak expectations over a run's samples.
 * @module
 */
import assert, { deepStrictEqual as deepEqual, strictEqual as equal } from "node:assert/strict";
import { CheckTracker } from "../../lab/judge/expect.ts";
import { describeBounds } from "../../lab/describe/bounds.ts";
import type { PlannedExpectation } from "../../lab/describe/run_plan.ts";
import type { Sample } from "../../lab/results.ts";

const METRIC = "server.ESTABLISHED";

function tracker(
  over: PlannedExpectation["over"],
  min: number,
  max: number,
  stableMs = 60,
): CheckTracker {
  return new CheckTracker({ name: "queued", metric: METRIC, over, min, max, stableMs });
}

const sample = (t: number, v: number): Sample => ({ t, values: { [METRIC]: v, other: 99 } });

/** Feeds `[t, value]` pairs, all armed unless `armed` says otherwise. */
function feed(
  tr: CheckTracker,
  points: readonly (readonly [number, number])[],
  armed: boolean | ((t: number) => boolean) = true,
): void {
  for (const [t, v] of points) {
    tr.update(sample(t, v), typeof armed === "boolean" ? armed : armed(t));
  }
}

// --- settled ----------------------------------------------------------------

Deno.test("CheckTracker settled passes only once it has held for stableMs", () => {
  const tr = tracker("settled", 3, 3, 60);
  feed(tr, [[0, 3], [20, 3], [40, 3]]);
  equal(tr.decided, false);
  equal(tr.passedEarly, false);
  feed(tr, [[59, 3]]);
  equal(tr.decided, false, "59 ms held is not 60");
  feed(tr, [[60, 3]]);
  equal(tr.decided, true);
  equal(tr.passedEarly, true);
  deepEqual(tr.result(), {
    name: "queued",
    metric: METRIC,
    over: "settled",
    expected: "= 3 for 60 ms",
    observed: 3,
    passed: true,
    atMs: 60,
  });
});

Deno.test("CheckTracker settled counts the hold from the first holding sample, not from 0", () => {
  const tr = tracker("settled", 3, 3, 60);
  feed(tr, [[0, 1], [20, 2], [40, 3], [60, 3], [80, 3]]);
  equal(tr.decided, false);
  feed(tr, [[100, 3]]);
  equal(tr.passedEarly, true);
  equal(tr.result().atMs, 100);
});

Deno.test("CheckTracker settled does not count samples before it is armed", () => {
  const tr = tracker("settled", 3, 3, 60);
  feed(tr, [[0, 3], [20, 3], [40, 3], [60, 3], [80, 3], [100, 3]], false);
  equal(tr.decided, false);
  equal(tr.result().passed, false);
  equal(tr.result().observed, null, "unarmed samples are not its value");
  feed(tr, [[120, 3], [140, 3], [160, 3]]);
  equal(tr.decided, false, "held 40 ms since arming");
  feed(tr, [[180, 3]]);
  equal(tr.passedEarly, true);
  equal(tr.result().atMs, 180);
});

Deno.test("CheckTracker settled: a dip resets the hold", () => {
  const tr = tracker("settled", 3, 3, 60);
  feed(tr, [[0, 3], [20, 3], [40, 3], [50, 2], [60, 3], [80, 3], [100, 3]]);
  equal(tr.decided, false, "only 40 ms since the dip");
  feed(tr, [[119, 3]]);
  equal(tr.decided, false);
  feed(tr, [[120, 3]]);
  equal(tr.passedEarly, true);
  equal(tr.result().atMs, 120);
});

Deno.test("CheckTracker settled with bounds: leaving the range resets, moving inside it does not", () => {
  const tr = tracker("settled", 2, 5, 40);
  feed(tr, [[0, 2], [20, 5], [40, 4]]);
  equal(tr.passedEarly, true);
  equal(tr.result().observed, 4);
  equal(tr.result().expected, "in [2, 5] for 40 ms");
  const tr2 = tracker("settled", 2, 5, 40);
  feed(tr2, [[0, 2], [20, 6], [40, 4], [60, 1]]);
  equal(tr2.decided, false);
});

Deno.test("CheckTracker settled with stableMs 0 passes at the first holding armed sample", () => {
  const tr = tracker("settled", 1, Infinity, 0);
  feed(tr, [[0, 0], [25, 0]]);
  equal(tr.decided, false);
  feed(tr, [[50, 2]]);
  equal(tr.passedEarly, true);
  const r = tr.result();
  equal(r.observed, 2);
  equal(r.atMs, 50);
  equal(r.expected, ">= 1 for 0 ms");
});

Deno.test("CheckTracker settled: once passed, later samples change nothing", () => {
  const tr = tracker("settled", 3, 3, 20);
  feed(tr, [[0, 3], [20, 3], [40, 9], [60, 0]]);
  const r = tr.result();
  equal(r.passed, true);
  equal(r.observed, 3);
  equal(r.atMs, 20);
});

Deno.test("CheckTracker settled that never settles fails with the last value", () => {
  const tr = tracker("settled", 3, 3, 60);
  feed(tr, [[0, 1], [20, 2], [40, 3], [60, 3], [80, 2]]);
  equal(tr.decided, false);
  deepEqual(tr.result(), {
    name: "queued",
    metric: METRIC,
    over: "settled",
    expected: "= 3 for 60 ms",
    observed: 2,
    passed: false,
    atMs: null,
  });
});

Deno.test("CheckTracker settled that held but not long enough fails with that value", () => {
  const tr = tracker("settled", 3, 3, 100);
  feed(tr, [[0, 3], [40, 3], [80, 3]]);
  const r = tr.result();
  equal(r.passed, false);
  equal(r.observed, 3);
  equal(r.atMs, null);
});

Deno.test("CheckTracker without any sample of its metric fails with observed null", () => {
  for (const over of ["settled", "always", "peak"] as const) {
    const tr = tracker(over, 0, 0, 0);
    tr.update({ t: 0, values: { "server.SYN_RECV": 0 } }, true);
    tr.update({ t: 20, values: {} }, true);
    const r = tr.result();
    equal(r.observed, null, over);
    equal(r.passed, false, over);
    equal(r.atMs, null, over);
  }
});

Deno.test("CheckTracker ignores samples that lack its metric", () => {
  const tr = tracker("settled", 3, 3, 40);
  feed(tr, [[0, 3]]);
  tr.update({ t: 20, values: {} }, true);
  feed(tr, [[40, 3]]);
  equal(tr.passedEarly, true, "a missing value is not a dip");
  equal(tr.result().atMs, 40);
});

// --- always -----------------------------------------------------------------

Deno.test("CheckTracker always fails at the first breaking sample, with its value and time", () => {
  const tr = tracker("always", -Infinity, 0);
  feed(tr, [[0, 0], [20, 0]]);
  equal(tr.decided, false);
  feed(tr, [[40, 2]]);
  equal(tr.decided, true);
  equal(tr.passedEarly, false);
  feed(tr, [[60, 5], [80, 0]]);
  deepEqual(tr.result(), {
    name: "queued",
    metric: METRIC,
    over: "always",
    expected: "<= 0 in every sample",
    observed: 2,
    passed: false,
    atMs: 40,
  });
});

Deno.test("CheckTracker always that holds in every sample passes at the end with the last value", () => {
  const tr = tracker("always", 0, 3);
  feed(tr, [[0, 0], [20, 3], [40, 1]]);
  equal(tr.decided, false, "an always check is never decided early when it holds");
  equal(tr.passedEarly, false);
  deepEqual(tr.result(), {
    name: "queued",
    metric: METRIC,
    over: "always",
    expected: "in [0, 3] in every sample",
    observed: 1,
    passed: true,
    atMs: null,
  });
});

Deno.test("CheckTracker always ignores breaking samples before it is armed", () => {
  const tr = tracker("always", 0, 0);
  feed(tr, [[0, 4], [20, 4]], false);
  equal(tr.decided, false);
  feed(tr, [[40, 0], [60, 0]]);
  const r = tr.result();
  equal(r.passed, true);
  equal(r.observed, 0);
  equal(r.expected, "= 0 in every sample");
});

Deno.test("CheckTracker always that was never armed fails", () => {
  const tr = tracker("always", 0, 0);
  feed(tr, [[0, 0], [20, 0]], false);
  equal(tr.result().passed, false);
  equal(tr.result().observed, null);
});

// --- peak -------------------------------------------------------------------

Deno.test("CheckTracker peak uses the maximum over all samples, armed or not", () => {
  const tr = tracker("peak", 5, 5);
  feed(tr, [[0, 1], [20, 5]], false);
  feed(tr, [[40, 3], [60, 2]]);
  equal(tr.decided, false, "peak is judged at the end only");
  deepEqual(tr.result(), {
    name: "queued",
    metric: METRIC,
    over: "peak",
    expected: "peak = 5",
    observed: 5,
    passed: true,
    atMs: null,
  });
});

Deno.test("CheckTracker peak fails when the maximum is out of bounds, even if later samples are in", () => {
  const tr = tracker("peak", -Infinity, 4);
  feed(tr, [[0, 2], [20, 7], [40, 3]], (t) => t >= 20);
  const r = tr.result();
  equal(r.passed, false);
  equal(r.observed, 7);
  equal(r.expected, "peak <= 4");
});

Deno.test("CheckTracker peak below its lower bound fails with that peak", () => {
  const tr = tracker("peak", 3, Infinity);
  feed(tr, [[0, -2], [20, -1]]);
  const r = tr.result();
  equal(r.passed, false);
  equal(r.observed, -1, "negative values are a peak too");
  equal(r.expected, "peak >= 3");
});

// --- describeBounds ---------------------------------------------------------

const BOUNDS: [number, number, string][] = [
  [3, 3, "= 3"],
  [0, 0, "= 0"],
  [-Infinity, 0, "<= 0"],
  [-Infinity, 129, "<= 129"],
  [1, Infinity, ">= 1"],
  [0, Infinity, ">= 0"],
  [2, 5, "in [2, 5]"],
  [-1, 1, "in [-1, 1]"],
];

for (const [min, max, text] of BOUNDS) {
  Deno.test(`describeBounds(${min}, ${max}) is "${text}"`, () => {
    equal(describeBounds(min, max), text);
  });
}

Deno.test("CheckTracker keeps its plan", () => {
  const plan: PlannedExpectation = {
    name: "x",
    metric: "server.recvQ",
    over: "settled",
    min: 1,
    max: 2,
    stableMs: 5,
  };
  const tr = new CheckTracker(plan);
  equal(tr.plan, plan);
  assert(!tr.decided);
});
