/**
 * Whether a shaped link's evidence can be trusted: its delayer stayed up,
 * dropped no packet from a full queue, and released its packets on time.
 * A run whose link is not sound decides nothing: its round trip was not the
 * one declared, so its queue dynamics are not the experiment's.
 * @module
 */
import type { LinkRecord, ShapedDirectionRecord } from "../results.ts";

/**
 * The lateness a delayer may show at its 99th percentile, ms: 2 ms plus 10 %
 * of the declared delay. The delayer measures 0.15–0.6 ms here (the
 * README's figures); a stall of tens of ms (a preempted vCPU) delays a few
 * dozen packets, below the 99th percentile of a run's thousands, while a
 * delayer starved for long, or behind its load, is late for far more.
 */
export function latenessToleranceMs(delayMs: number): number {
  return 2 + delayMs / 10;
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
  const tolerance = latenessToleranceMs(r.shape.delayMs + r.shape.jitterMs);
  if (late && late.count > 0 && late.p99Ms > tolerance) {
    return `${what} released 1 % of its packets more than ${late.p99Ms} ms late (p99; tolerance ${tolerance} ms, max ${late.maxMs} ms)`;
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
