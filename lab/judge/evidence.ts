/**
 * Evidence for claim rules: a run's results seen through
 * {@linkcode RunEvidence} (its numbers by metric, checks, steps and packets),
 * and each experiment's claims decided from its runs.
 * @module
 */
import { parseMetric } from "../describe/metric.ts";
import type { ClaimRule } from "../describe/types.ts";
import type { ClaimDecision, RunEvidence, RunResult, Sample } from "../results.ts";
import { connectionsOf } from "./expect_packets.ts";
import { runExperience } from "../observe/client_experience.ts";

/** Each metric's last and highest value over the samples. */
export function summarize(
  samples: readonly Sample[],
): Record<string, { final: number; peak: number }> {
  const out: Record<string, { final: number; peak: number }> = {};
  for (const s of samples) {
    for (const [k, v] of Object.entries(s.values)) {
      const o = out[k] ??= { final: v, peak: v };
      o.final = v;
      o.peak = Math.max(o.peak, v);
    }
  }
  return out;
}

/** A claim rule's view of a run. */
export function evidenceOf<P>(run: RunResult): RunEvidence<P> {
  return {
    params: run.params as P,
    passed: run.passed,
    checks: run.checks,
    sysctls: run.sysctls,
    connections: run.connections,
    value(metric, which = "final") {
      const o = run.observed[metric];
      if (o) return o[which];
      // An outcome (connect.<ERRNO>, after.<result>) no connection of a group had is 0.
      const m = outcomeOf(metric);
      if (m && `clients.${m.group}.launched` in run.observed) return 0;
      throw new RangeError(`Metric "${metric}" was not observed in this run`);
    },
    check(name) {
      const c = run.checks.find((x) => x.name === name);
      if (!c) {
        throw new RangeError(
          `No check named "${name}" (checks: ${run.checks.map((x) => x.name).join(", ")})`,
        );
      }
      return c;
    },
    mode: run.mode,
    stepAt(name) {
      const s = run.timeline.find((x) => x.name === name);
      if (!s) {
        throw new RangeError(
          `Step "${name}" did not happen (steps: ${run.timeline.map((x) => x.name).join(", ")})`,
        );
      }
      return s.atMs;
    },
    packets(q) {
      const address = q.group === undefined ? undefined : run.addresses[`clients.${q.group}`];
      return connectionsOf(run.packets[q.host] ?? [], address).map((c) =>
        c.events.filter((e) => e.kind === q.kind && e.dir === (q.from === "client" ? "in" : "out"))
          .map((e) => e.t)
      );
    },
    series(metric) {
      return run.samples.flatMap((s) => metric in s.values ? [[s.t, s.values[metric]!]] : []);
    },
    experience(group) {
      const e = run.experience?.[group];
      if (e) return e;
      const records = run.connections.filter((c) => c.group === group);
      if (records.length === 0 && !(`clients.${group}.launched` in run.observed)) {
        throw new RangeError(
          `No client group "${group}" in this run (groups: ${
            Object.keys(run.experience ?? {}).join(", ") || "none"
          })`,
        );
      }
      const last = run.samples.at(-1)?.t ?? 0;
      return runExperience([group], records, last)[group]!;
    },
    links: run.links ?? {},
  };
}

function outcomeOf(metric: string): { group: string } | undefined {
  try {
    const m = parseMetric(metric);
    return m.kind === "outcome" ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Each claim's decision from an experiment's runs, or the error its rule threw. */
export function decideClaims(
  claims: Readonly<Record<string, ClaimRule<unknown>>>,
  runs: readonly RunResult[],
): Record<string, ClaimDecision | { error: string }> {
  const evidence = runs.map((r) => evidenceOf(r));
  const out: Record<string, ClaimDecision | { error: string }> = {};
  for (const [id, rule] of Object.entries(claims)) {
    try {
      out[id] = rule(evidence);
    } catch (err) {
      out[id] = { error: `claim rule failed: ${err instanceof Error ? err.message : err}` };
    }
  }
  return out;
}
