/**
 * Claims the lab cannot run on any kernel it can boot (e.g. Linux before
 * 2.2, or BSD stacks): each gets the verdict `historical`, with why, so the
 * ledger accounts for every catalogue claim.
 * @module
 */
import { claimById, CLAIMS } from "./catalogue.ts";
import { ExperimentDefinitionError } from "../base/errors.ts";
import type { ExperimentResult } from "../results.ts";
import { didYouMean } from "../base/suggest.ts";

/** Claims with no experiment, each with the reason none can be run. */
export interface HistoricalClaims {
  /** Marks the definition; set by {@linkcode defineHistoricalClaims}. */
  kind: "historical";
  /** kebab-case, unique across experiments. */
  id: string;
  /** One line saying what the entries are. */
  title: string;
  /** Claim id → why the lab cannot decide it on a running kernel. */
  claims: Record<string, string>;
}

/**
 * Validates historical claims and marks them as such.
 *
 * @throws {ExperimentDefinitionError} for an unknown claim id or an empty reason.
 */
export function defineHistoricalClaims(
  definition: Omit<HistoricalClaims, "kind">,
): HistoricalClaims {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(definition.id ?? "")) {
    throw new ExperimentDefinitionError("id", `"${definition.id}" is not kebab-case`);
  }
  for (const [id, why] of Object.entries(definition.claims ?? {})) {
    if (!claimById(id)) {
      throw new ExperimentDefinitionError(
        `claims.${id}`,
        `"${id}" is not in the claims catalogue${didYouMean(id, CLAIMS.map((c) => c.id))}`,
      );
    }
    if (typeof why !== "string" || why.trim().length < 10) {
      throw new ExperimentDefinitionError(
        `claims.${id}`,
        "give the reason the lab cannot run it, in a sentence",
      );
    }
  }
  return { kind: "historical", ...definition };
}

/** Whether a module's default export is a {@linkcode HistoricalClaims}. */
export function isHistorical(v: unknown): v is HistoricalClaims {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "historical";
}

/** The result entry that puts historical claims in the ledger. */
export function historicalResult(h: HistoricalClaims, file?: string): ExperimentResult {
  return {
    id: h.id,
    title: h.title,
    hypothesis: "These claims concern systems the lab cannot run.",
    ...(file === undefined ? {} : { file }),
    passed: true,
    mode: "default",
    durationMs: 0,
    runs: [],
    claims: Object.fromEntries(
      Object.entries(h.claims).map(([id, why]) => [id, { verdict: "historical", evidence: why }]),
    ),
  };
}
