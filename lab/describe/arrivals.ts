/**
 * When the connections of a sustained client group start: evenly spaced at
 * a rate, or as a Poisson process of that rate drawn from a seed. Pure and
 * deterministic, so planning knows how many connections a group opens and
 * the client program (which computes the same times from the same plan)
 * opens them at exactly those times.
 * @module
 */

/** A sustained group's arrivals, resolved. */
export interface ArrivalPlan {
  /** Connections a second. */
  perSecond: number;
  /** For this long, ms. */
  forMs: number;
  /** Evenly spaced, or a Poisson process. */
  process: "fixed" | "poisson";
  /** The seed of the Poisson draws. */
  seed: number;
}

/**
 * The start times of the connections, in ms since the group's "go", in
 * order, all within `[0, forMs)`: `k × 1000 / perSecond` for `fixed`; for
 * `poisson`, the partial sums of exponential gaps of mean `1000 / perSecond`
 * (the first arrival after one gap), from a seeded generator.
 *
 * @example
 * ```ts
 * import { arrivalTimes } from "./arrivals.ts";
 * arrivalTimes({ perSecond: 400, forMs: 10, process: "fixed", seed: 1 }); // [0, 2.5, 5, 7.5]
 * ```
 */
export function arrivalTimes(plan: ArrivalPlan): Float64Array {
  const { perSecond, forMs } = plan;
  const gapMs = 1000 / perSecond;
  if (plan.process === "fixed") {
    const n = Math.max(0, Math.ceil((forMs * perSecond) / 1000 - 1e-9));
    return Float64Array.from({ length: n }, (_, k) => k * gapMs);
  }
  const random = splitmix32(plan.seed);
  const times: number[] = [];
  // 1 - u is in (0, 1]: the logarithm is finite.
  for (let t = -Math.log(1 - random()) * gapMs; t < forMs; t += -Math.log(1 - random()) * gapMs) {
    times.push(t);
  }
  return Float64Array.from(times);
}

/** How many connections the arrivals open. */
export function arrivalCount(plan: ArrivalPlan): number {
  return arrivalTimes(plan).length;
}

/**
 * A 32-bit SplitMix generator: uniform numbers in [0, 1) from a seed, the
 * same sequence on every machine and runtime.
 */
export function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  };
}
