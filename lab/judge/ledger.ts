/**
 * The claims ledger: each claim's verdict on this kernel, with the evidence
 * and the experiments behind it: the catalogue's claims, then those of your
 * own (with their statement and source). Two experiments that disagree on a claim
 * make a `conflict` entry; a failed experiment's claims are `undecided`.
 * @module
 */
import { CLAIMS } from "../describe/catalogue.ts";
import {
  claimLocation,
  claimPrefix,
  isUserClaimId,
  type UserClaim,
} from "../describe/user_claims.ts";
import type { ExperimentResult, LedgerEntry } from "../results.ts";
import { flipsText } from "./repeat.ts";
import { modeText } from "../base/format.ts";

/** Options of {@linkcode buildLedger}. */
export interface LedgerOptions {
  /** List every catalogue claim, undecided ones too (claims of your own are always listed). */
  all?: boolean;
  /** The kernel release, named in each verdict's conditions. */
  kernel?: string;
  /** Claims of your own, listed after the catalogue's in this order, decided or not. */
  claims?: readonly UserClaim[];
}

/**
 * Builds the ledger in catalogue order, then the claims of your own.
 *
 * @param experiments the run's results.
 * @param options `all`: list every catalogue claim, undecided ones too; `claims`: claims of your own.
 */
export function buildLedger(
  experiments: readonly ExperimentResult[],
  options: LedgerOptions = {},
): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  for (const claim of CLAIMS) {
    const base = { claim: claim.id, article: claim.article, statement: claim.statement };
    const entry = entryFor(base, experiments, options);
    if (entry.experiments.length || options.all) entries.push(entry);
  }
  const own = new Map<string, UserClaim | undefined>((options.claims ?? []).map((c) => [c.id, c]));
  for (const e of experiments) {
    for (const id of Object.keys(e.claims)) {
      if (isUserClaimId(id) && !own.has(id)) own.set(id, undefined);
    }
  }
  for (const [id, c] of own) {
    const base = c === undefined
      ? {
        claim: id,
        article: claimPrefix(id),
        statement: "(unknown: no claims file of this run defines it)",
      }
      : {
        claim: id,
        article: claimPrefix(id),
        statement: c.statement,
        source: {
          title: c.source.title,
          url: c.source.url,
          ...(c.file === undefined ? {} : { file: claimLocation(c) }),
        },
      };
    entries.push(entryFor(base, experiments, options));
  }
  return entries;
}

/** The verdict conditions of an experiment's evidence: kernel, timers, repeats, what-ifs. */
function conditions(e: ExperimentResult, kernel: string | undefined): string {
  const parts = [
    ...(kernel ? [`Linux ${kernel}`] : []),
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
    ...(e.overrides ? [`what-if --set ${whatIf(e)}, not the experiment's own matrix`] : []),
  ];
  return e.runs.length && parts.length ? ` [${parts.join("; ")}]` : "";
}

function whatIf(e: ExperimentResult): string {
  return Object.entries(e.overrides ?? {}).map(([k, vs]) => `${k}=${vs.join(",")}`).join(" ");
}

function entryFor(
  base: Omit<LedgerEntry, "verdict" | "evidence" | "experiments">,
  experiments: readonly ExperimentResult[],
  options: LedgerOptions,
): LedgerEntry {
  const deciders = experiments.filter((e) => !e.skipped && base.claim in e.claims);
  if (deciders.length === 0) {
    return {
      ...base,
      verdict: "undecided",
      evidence: "no experiment of this run decides it",
      experiments: [],
    };
  }
  const ids = deciders.map((e) => e.id);
  const problems: string[] = [];
  const decisions: { id: string; verdict: string; evidence: string }[] = [];
  for (const e of deciders) {
    const d = e.claims[base.claim]!;
    if ("error" in d) {
      problems.push(
        `${e.id}: ${d.error}${
          e.overrides
            ? ` (under --set ${whatIf(e)}: the rule may read matrix points the what-if left out)`
            : ""
        }`,
      );
    } else if (e.flips?.length) {
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
      decisions.push({
        id: e.id,
        verdict: d.verdict,
        evidence: d.evidence + conditions(e, options.kernel),
      });
    }
  }
  if (problems.length) {
    return { ...base, verdict: "undecided", evidence: problems.join("; "), experiments: ids };
  }
  const verdicts = new Set(decisions.map((d) => d.verdict));
  if (verdicts.size > 1) {
    return {
      ...base,
      verdict: "conflict",
      evidence: `experiments disagree: ${
        decisions.map((d) => `${d.id} says ${d.verdict} (${d.evidence})`).join("; ")
      }`,
      experiments: ids,
    };
  }
  return {
    ...base,
    verdict: decisions[0]!.verdict as LedgerEntry["verdict"],
    evidence: decisions.length === 1
      ? decisions[0]!.evidence
      : decisions.map((d) => `${d.id}: ${d.evidence}`).join("; "),
    experiments: ids,
  };
}
