/**
 * Evidence for claim rules: a run's results seen through
 * {@linkcode RunEvidence} (its numbers by metric, checks, steps and packets),
 * and each experiment's claims decided from its runs.
 * @module
 */
import { didYouMean } from "../base/suggest.ts";
import { describeValue } from "../base/values.ts";
import { MetricError, parseMetric } from "../describe/metric.ts";
import type { ClaimRule } from "../describe/types.ts";
import { unprobedKernel } from "../describe/kernel.ts";
import type { ClaimDecision, KernelFacts, RunEvidence, RunResult, Sample } from "../results.ts";
import { VERDICTS } from "../vocabulary.ts";
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

/**
 * A claim rule's view of a run on `kernel` (default: facts that were not
 * probed, for reading a results document without its kernel's).
 */
export function evidenceOf<P>(
  run: RunResult,
  kernel: KernelFacts = unprobedKernel(),
): RunEvidence<P> {
  return {
    kernel,
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
      throw new RangeError(unknownMetric(metric, Object.keys(run.observed)));
    },
    check(name) {
      const c = run.checks.find((x) => x.name === name);
      if (!c) {
        const names = run.checks.map((x) => x.name);
        throw new RangeError(
          `No check named "${name}"${didYouMean(name, names)} (checks: ${names.join(", ")})`,
        );
      }
      return c;
    },
    mode: run.mode,
    stepAt(name) {
      const s = run.timeline.find((x) => x.name === name);
      if (!s) {
        const names = run.timeline.map((x) => x.name);
        throw new RangeError(
          `Step "${name}" did not happen${didYouMean(name, names)} (steps: ${names.join(", ")})`,
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

/**
 * Why a claim rule cannot read `metric`: a name the metric grammar refuses
 * (with its did-you-mean), or a valid one this run did not sample (with the
 * closest it did).
 */
function unknownMetric(metric: string, observed: readonly string[]): string {
  try {
    parseMetric(metric);
  } catch (err) {
    if (err instanceof MetricError) return `Metric "${metric}" is not a metric: ${err.message}`;
    throw err;
  }
  return `Metric "${metric}" was not observed in this run${
    didYouMean(metric, observed)
  } (a rule reads what the run samples: the default metrics and those its expectations and steps name)`;
}

/** Options of {@linkcode decideClaims}. */
export interface DecideOptions {
  /** The experiment file, named in every error. */
  file?: string;
  /** The kernel the runs ran on, which the rules see as `kernel` (default: not probed). */
  kernel?: KernelFacts;
}

/**
 * Each claim's decision from an experiment's runs, or why there is none: the
 * rule threw (e.g. it read a metric the run does not have), or returned
 * something that is not a decision (a verdict other than the four, an empty
 * evidence, a Promise). Either way the experiment fails: see
 * {@linkcode claimErrors}.
 */
export function decideClaims(
  claims: Readonly<Record<string, ClaimRule<unknown>>>,
  runs: readonly RunResult[],
  options: DecideOptions = {},
): Record<string, ClaimDecision | { error: string }> {
  const evidence = runs.map((r) => evidenceOf(r, options.kernel ?? unprobedKernel()));
  const out: Record<string, ClaimDecision | { error: string }> = {};
  const where = options.file === undefined ? "" : `${options.file}: `;
  for (const [id, rule] of Object.entries(claims)) {
    let decided: unknown;
    try {
      decided = rule(evidence);
    } catch (err) {
      out[id] = {
        error: `${where}claim "${id}": the rule threw: ${err instanceof Error ? err.message : err}`,
      };
      continue;
    }
    const problem = decisionProblem(decided);
    out[id] = problem === undefined
      ? {
        verdict: (decided as ClaimDecision).verdict,
        evidence: (decided as ClaimDecision).evidence,
      }
      : { error: `${where}claim "${id}": the rule returned ${problem}` };
  }
  return out;
}

/** What is wrong with a rule's return value, or undefined for a valid decision. */
function decisionProblem(d: unknown): string | undefined {
  if (typeof (d as { then?: unknown } | null)?.then === "function") {
    // Awaiting it would let a rule wait on the world; the runs it reads are already complete.
    (d as Promise<unknown>).then(undefined, () => {}); // its rejection is this error
    return "a Promise: claim rules are synchronous; remove `async` and return { verdict, evidence }";
  }
  if (typeof d !== "object" || d === null || Array.isArray(d)) {
    return `${describeValue(d)}: return { verdict, evidence }`;
  }
  const { verdict, evidence } = d as Record<string, unknown>;
  if (!(VERDICTS as readonly unknown[]).includes(verdict)) {
    return `verdict ${describeValue(verdict)}, which is not a verdict${
      typeof verdict === "string" ? didYouMean(verdict, VERDICTS) : ""
    } (verdicts: ${VERDICTS.map((v) => `"${v}"`).join(", ")})`;
  }
  if (typeof evidence !== "string" || evidence.trim() === "") {
    return `evidence ${
      describeValue(evidence)
    }: give a sentence with the numbers behind the verdict`;
  }
  return undefined;
}

/** The claim errors of an experiment's claims, one line each. */
export function claimErrors(
  claims: Readonly<Record<string, ClaimDecision | { error: string }>>,
): string[] {
  return Object.values(claims).flatMap((d) => "error" in d ? [d.error] : []);
}
