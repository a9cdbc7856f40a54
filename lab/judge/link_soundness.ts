/**
 * Whether a shaped link's evidence can be trusted: its delayer stayed up,
 * dropped no packet from a full queue, and released its packets on time.
 * A run whose link is not sound decides nothing: its round trip was not the
 * one declared, so its queue dynamics are not the experiment's.
 * @module
 */
import type { LinkRecord, ShapedDirectionRecord } from "../results.ts";

/**
 * How late a delayer may release its packets, ms, for a declared delay (plus
 * jitter): the median at most 0.5 ms + 2 % of it (packets are punctual as a
 * rule), the mean at most 1 ms + 5 % of it (the average round trip is within
 * a few percent of the declared one). The delayer measures a median of
 * 0.03–0.1 ms and a mean under 0.1 ms here (README figures). Its p99 and
 * maximum are recorded but not judged: on this 2-core VM (its kernel not
 * preemptible) a stall of 20–40 ms now and then, while namespaces are made
 * and deleted beside it, makes a few dozen packets late, 1–4 % of a short
 * run's, which moves neither the mean much nor the queue dynamics a run
 * decides; a delayer starved for long or behind its load moves both bounds.
 */
export function latenessTolerance(delayMs: number): { medianMs: number; meanMs: number } {
  return { medianMs: 0.5 + delayMs / 50, meanMs: 1 + delayMs / 20 };
}

/**
 * Why one shaped direction's evidence is broken, or undefined when it is sound.
 *
 * @param r the direction's record, its counters read at the end of the observation.
 * @param label the direction in words, e.g. `client → server`.
 */
export function linkProblem(r: ShapedDirectionRecord, label: string): string | undefined {
  const what = `the ${
    r.mechanism === "nfqueue" ? "delayer" : "shaping"
  } of link ${label} (${r.interface})`;
  if (r.stats === null) {
    return `${what} stopped during the run (${r.problem ?? "its counters could not be read"})`;
  }
  if (r.stats.queueDropped > 0) {
    return `${what} dropped ${r.stats.queueDropped} packets from its full queue`;
  }
  const late = r.stats.lateness;
  const tolerance = latenessTolerance(r.shape.delayMs + r.shape.jitterMs);
  if (late && late.count > 0) {
    if (late.medianMs > tolerance.medianMs) {
      return `${what} released half its packets more than ${late.medianMs} ms late (median; tolerance ${tolerance.medianMs} ms)`;
    }
    if (late.meanMs > tolerance.meanMs) {
      return `${what} released its packets ${late.meanMs} ms late on average (tolerance ${tolerance.meanMs} ms; p99 ${late.p99Ms} ms, max ${late.maxMs} ms)`;
    }
  }
  return undefined;
}

/**
 * Marks each broken direction of a run's links (its `problem`) and returns
 * the run's error, or undefined when every link is sound.
 */
export function judgeLinks(
  links: Record<string, LinkRecord>,
  serverHost: string,
): string | undefined {
  const problems: string[] = [];
  for (const [host, link] of Object.entries(links)) {
    for (
      const [direction, label] of [
        ["toServer", `${host} → ${serverHost}`],
        ["toClient", `${serverHost} → ${host}`],
      ] as const
    ) {
      const r = link[direction];
      if (r === undefined) continue;
      const problem = linkProblem(r, label);
      if (problem === undefined) continue;
      r.problem = problem;
      problems.push(problem);
    }
  }
  return problems.length
    ? `Cannot trust the run's network: ${
      problems.join("; ")
    }. Its round trips were not the ones declared, so the run decides nothing`
    : undefined;
}
