/**
 * The claims ledger: each claim's verdict on this kernel, with the evidence
 * and the experiments behind it. Two experiments that disagree on a claim
 * make a `conflict` entry; a failed experiment's claims are `undecided`.
 * @module
 */
import { CLAIMS } from "../describe/catalogue.ts";
import type { ExperimentResult, LedgerEntry } from "../results.ts";
import { flipsText } from "./repeat.ts";
import { modeText } from "../base/format.ts";

/**
 * Builds the ledger in catalogue order.
 *
 * @param experiments the run's results.
 * @param options `all`: list every catalogue claim, undecided ones too.
 */
export function buildLedger(
  experiments: readonly ExperimentResult[],
  options: { all?: boolean; kernel?: string } = {},
): LedgerEntry[] {
  const conditions = (e: ExperimentResult) => {
    const parts = [
      ...(options.kernel ? [`Linux ${options.kernel}`] : []),
      ...(e.mode === "fast"
        ? [
          `${modeText(e.mode, e.shortened)} (--faithful runs ${
            e.shortened ? "the full-length variant" : "the kernel's defaults"
          })`,
        ]
        : e.mode === "faithful"
        ? [
          e.shortened
            ? "the full-length variant (--faithful)"
            : "the kernel's default timers (--faithful)",
        ]
        : []),
      ...(e.repeats !== undefined && e.repeats > 1 ? [`the same in all ${e.repeats} repeats`] : []),
    ];
    return e.runs.length && parts.length ? ` [${parts.join("; ")}]` : "";
  };
  const entries: LedgerEntry[] = [];
  for (const claim of CLAIMS) {
    const deciders = experiments.filter((e) => !e.skipped && claim.id in e.claims);
    const base = { claim: claim.id, article: claim.article, statement: claim.statement };
    if (deciders.length === 0) {
      if (options.all) {
        entries.push({
          ...base,
          verdict: "undecided",
          evidence: "no experiment of this run decides it",
          experiments: [],
        });
      }
      continue;
    }
    const ids = deciders.map((e) => e.id);
    const problems: string[] = [];
    const decisions: { id: string; verdict: string; evidence: string }[] = [];
    for (const e of deciders) {
      const d = e.claims[claim.id]!;
      if ("error" in d) problems.push(`${e.id}: ${d.error}`);
      else if (e.flips?.length) {
        problems.push(
          `${e.id} did not come out the same in its ${e.repeats} repeats (${e.flips.length} flip${
            e.flips.length === 1 ? "" : "s"
          }: ${flipsText(e.flips).split("\n")[0]})`,
        );
      } else if (e.runs.some((r) => r.error)) {
        problems.push(
          `${e.id} could not complete a run (${e.runs.find((r) => r.error)!.error})`,
        );
      } else if (!e.passed) {
        problems.push(
          `${e.id} failed its expectations, so its verdict "${d.verdict}" does not stand (${d.evidence})`,
        );
      } else {
        decisions.push({ id: e.id, verdict: d.verdict, evidence: d.evidence + conditions(e) });
      }
    }
    if (problems.length) {
      entries.push({
        ...base,
        verdict: "undecided",
        evidence: problems.join("; "),
        experiments: ids,
      });
      continue;
    }
    const verdicts = new Set(decisions.map((d) => d.verdict));
    if (verdicts.size > 1) {
      entries.push({
        ...base,
        verdict: "conflict",
        evidence: `experiments disagree: ${
          decisions.map((d) => `${d.id} says ${d.verdict} (${d.evidence})`).join("; ")
        }`,
        experiments: ids,
      });
      continue;
    }
    entries.push({
      ...base,
      verdict: decisions[0]!.verdict as LedgerEntry["verdict"],
      evidence: decisions.length === 1
        ? decisions[0]!.evidence
        : decisions.map((d) => `${d.id}: ${d.evidence}`).join("; "),
      experiments: ids,
    });
  }
  return entries;
}
