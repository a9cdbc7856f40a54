/**
 * Unit tests of `lab/describe/arrivals.ts`: when a sustained group's
 * connections start.
 * @module
 */
import { deepStrictEqual as deepEqual, ok, strictEqual as equal } from "node:assert/strict";
import { arrivalCount, arrivalTimes, splitmix32 } from "../../lab/describe/arrivals.ts";

Deno.test("arrivalTimes() fixed: k × 1000 / perSecond within [0, forMs)", () => {
  deepEqual([...arrivalTimes({ perSecond: 400, forMs: 10, process: "fixed", seed: 1 })], [
    0,
    2.5,
    5,
    7.5,
  ]);
  equal(arrivalCount({ perSecond: 400, forMs: 20_000, process: "fixed", seed: 1 }), 8000);
  equal(arrivalCount({ perSecond: 3, forMs: 1000, process: "fixed", seed: 1 }), 3);
  equal(arrivalCount({ perSecond: 3, forMs: 1001, process: "fixed", seed: 1 }), 4);
  equal(arrivalCount({ perSecond: 1, forMs: 1, process: "fixed", seed: 1 }), 1);
});

Deno.test("arrivalTimes() poisson: the same times for the same seed, others for another", () => {
  const a = arrivalTimes({ perSecond: 400, forMs: 2000, process: "poisson", seed: 1 });
  const b = arrivalTimes({ perSecond: 400, forMs: 2000, process: "poisson", seed: 1 });
  const c = arrivalTimes({ perSecond: 400, forMs: 2000, process: "poisson", seed: 2 });
  deepEqual(a, b);
  ok(a.length !== c.length || a.some((t, i) => t !== c[i]), "another seed, other times");
});

Deno.test("arrivalTimes() poisson: ordered, within [0, forMs), exponential gaps of the rate", () => {
  const perSecond = 400;
  const t = arrivalTimes({ perSecond, forMs: 60_000, process: "poisson", seed: 11 });
  ok(t[0]! > 0, "the first arrival comes after a gap");
  ok(t.at(-1)! < 60_000);
  const gaps = Array.from({ length: t.length - 1 }, (_, i) => t[i + 1]! - t[i]!);
  ok(gaps.every((g) => g >= 0), "ordered");
  // n ≈ 24,000: the count within 4 standard deviations (√n ≈ 155).
  ok(Math.abs(t.length - 24_000) < 4 * Math.sqrt(24_000), String(t.length));
  // Exponential with mean 2.5 ms: Kolmogorov–Smirnov distance against 1 − e^(−x/mean) below
  // the 99.9 % critical value 1.95 / √n.
  const mean = 1000 / perSecond;
  const sorted = [...gaps].sort((x, y) => x - y);
  let d = 0;
  sorted.forEach((g, i) => {
    const cdf = 1 - Math.exp(-g / mean);
    d = Math.max(d, Math.abs(cdf - i / sorted.length), Math.abs(cdf - (i + 1) / sorted.length));
  });
  ok(d < 1.95 / Math.sqrt(sorted.length), `KS distance ${d}`);
});

Deno.test("splitmix32() is uniform in [0, 1) and repeatable", () => {
  const r = splitmix32(42);
  const xs = Array.from({ length: 10_000 }, () => r());
  ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((a, b) => a + b) / xs.length;
  ok(Math.abs(mean - 0.5) < 0.02, String(mean));
  const again = splitmix32(42);
  deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => again()));
});
