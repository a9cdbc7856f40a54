/**
 * The terminal report: one selftest-style line per experiment, a table of
 * observed vs expected for failures (for every run with `verbose`), and the
 * claims ledger.
 * @module
 */
import { paramsText, seconds } from "../base/format.ts";
import { flipsText, type RepeatSummary } from "../judge/repeat.ts";
import type { ExperimentResult, LedgerEntry, RunResult } from "../results.ts";
import { type TextRow, textTable } from "./table.ts";

export { paramsText };

function params(run: RunResult): string {
  return paramsText(run.params) || "(single run)";
}

/** `[ OK ] id: title (1.23 s, 5 runs)` or `[FAIL] …` / `[SKIP] … : reason`. */
export function experimentLine(e: ExperimentResult): string {
  if (e.skipped) return `[SKIP] ${e.id}: ${e.skipped}`;
  const tag = e.passed ? "[ OK ]" : "[FAIL]";
  const n = e.runs.length;
  // A bound this machine is too slow for (see `timing` of an expectation), and points it cannot run.
  const limited = e.runs.flatMap((r) => r.checks).filter((c) => !c.passed && c.timingLimited);
  const notes = [
    ...(limited.length
      ? [
        `${limited.length} check${
          limited.length === 1 ? "" : "s"
        } timing-limited on this machine: ${
          [...new Set(limited.map((c) => `"${c.name}"`))].join(", ")
        }`,
      ]
      : []),
    ...(e.skippedRuns?.length
      ? [
        `skipped ${e.skippedRuns.map((s) => paramsText(s.params) || "a run").join(", ")}: ${
          e.skippedRuns[0]!.reason
        }`,
      ]
      : []),
  ];
  return `${tag} ${e.id}: ${e.title} (${seconds(e.durationMs)}, ${n} run${n === 1 ? "" : "s"})${
    notes.length ? `; ${notes.join("; ")}` : ""
  }`;
}

/**
 * Observed vs expected for the runs of an experiment (failed ones only
 * unless `all`), then each claim rule that could not decide.
 */
export function checksTable(e: ExperimentResult, all: boolean, width?: number): string {
  const rows: string[][] = [];
  for (const run of e.runs) {
    if (!all && run.passed) continue;
    if (run.error) rows.push([params(run), "(run)", "", "", `error: ${run.error}`, "FAIL"]);
    if (!run.passed && run.inputQueueDrops) {
      rows.push([
        params(run),
        "(machine)",
        "input queue drops",
        "0",
        `${run.inputQueueDrops} packets dropped by the machine's input queues during the run (shared by every namespace): the machine was too busy; run it again`,
        "!",
      ]);
    }
    for (const c of run.checks) {
      if (!all && c.passed) continue;
      const at = c.atMs === null ? "" : ` @${Math.round(c.atMs)} ms`;
      rows.push([
        params(run),
        c.name,
        c.metric,
        c.expected,
        `${c.observed ?? "–"}${at}`,
        c.passed ? "ok" : c.timingLimited ? "timing-limited" : "FAIL",
      ]);
    }
  }
  for (const [id, d] of Object.entries(e.claims)) {
    // Under a what-if the rule read another matrix than its own: the claim is undecided, no failure.
    const mark = e.overrides ? "undecided (what-if)" : "FAIL";
    if ("error" in d) rows.push(["(claim rule)", id, "", "a decision", d.error, mark]);
  }
  const head = ["run", "check", "metric", "expected", "observed", ""];
  return rows.length ? textTable(head, rows, width === undefined ? {} : { width }) : "";
}

/** Each run's phase times (build, server, clients, observe, collect, teardown). */
export function phasesTable(e: ExperimentResult): string {
  const head = ["run", "build", "server", "clients", "observe", "collect", "teardown", "total"];
  return textTable(
    head,
    e.runs.map((r) => {
      const p = r.phases;
      return [
        params(r),
        p.build,
        p.server,
        p.clients,
        p.observe,
        p.collect,
        p.teardown,
        r.durationMs,
      ]
        .map(String);
    }),
  );
}

/** `61 ms` below a second, `2.10 s` from one on. */
function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : seconds(ms);
}

/**
 * What each run's client groups felt (outcomes, connect() and first-byte
 * p50 / p90 / p99 / max) and how its links were shaped; "" for an
 * experiment whose runs have neither.
 */
export function clientsTable(e: ExperimentResult, width?: number): string {
  const rows: string[][] = [];
  for (const run of e.runs) {
    const links = Object.entries(run.links ?? {}).flatMap(([host, l]) =>
      ([["toServer", "→ server"], ["toClient", "← server"]] as const).flatMap(([k, label]) => {
        const d = l[k];
        return d ? [`${host} ${label} ${d.shape.delayMs} ms (${d.mechanism})`] : [];
      })
    ).join(", ");
    for (const [group, x] of Object.entries(run.experience ?? {})) {
      if (x.connections === 0) continue;
      const o = x.outcomes;
      const spread = (d: typeof x.connectMs) =>
        d ? [d.p50, d.p90, d.p99, d.max].map(duration).join(" / ") : "–";
      rows.push([
        params(run),
        `${group} (${x.connections})`,
        `${o.connected} / ${o.reset} / ${o.refused} / ${o.timedOut} / ${o.failed} / ${o.pending}`,
        spread(x.connectMs),
        spread(x.firstByteMs),
        links,
      ]);
    }
  }
  const head = [
    "run",
    "clients",
    "connected / reset / refused / timed out / other / pending",
    "connect() p50 / p90 / p99 / max",
    "first byte p50 / p90 / p99 / max",
    "links",
  ];
  return rows.length ? textTable(head, rows, width === undefined ? {} : { width }) : "";
}

/**
 * The claims ledger as a table: each claim's statement, then the evidence,
 * which ends with the experiments that decided it.
 */
export function ledgerTable(ledger: readonly LedgerEntry[], width = 100): string {
  return textTable(
    ["claim", "verdict", "statement → evidence (decided by)"],
    ledger.map((l) => [
      l.claim,
      l.verdict,
      `"${l.statement}"\n→ ${l.evidence}` +
      (l.experiments.length ? `\n(${l.experiments.join(", ")})` : ""),
    ]),
    { width },
  );
}

/**
 * Claims of your own as a table: each one's statement and source title,
 * verdict and evidence (with the experiments that decided it), then each
 * source's full address once, so that a terminal never cuts it. Undecided
 * claims are listed too: a claim you loaded and no experiment decided says so.
 */
export function ownClaimsTable(ledger: readonly LedgerEntry[], width = 100): string {
  const table = textTable(
    ["claim", "statement (source)", "verdict", "evidence (decided by)"],
    ledger.map((l) => [
      l.claim,
      l.source ? `${l.statement}\n(source: ${l.source.title})` : l.statement,
      l.verdict,
      l.evidence + (l.experiments.length ? `\n(${l.experiments.join(", ")})` : ""),
    ]),
    { width },
  );
  const sources = new Map<string, string>();
  for (const l of ledger) {
    if (!l.source) continue;
    const file = l.source.file?.replace(/:\d+$/, "");
    sources.set(
      `${l.source.title}\0${l.source.url}`,
      `  ${l.source.title}: ${l.source.url}${file ? ` (claims file ${file})` : ""}`,
    );
  }
  return sources.size ? `${table}\nSources:\n${[...sources.values()].join("\n")}` : table;
}

/** A metric's final and peak value in a run, as text (`–` when it was not observed). */
export function observedValues(run: RunResult, metric: string): { final: string; peak: string } {
  const o = run.observed[metric];
  return o ? { final: String(o.final), peak: String(o.peak) } : { final: "–", peak: "–" };
}

/**
 * What an experiment observed: per matrix point (a heading row), each metric
 * it names with its last (`final`) and highest (`peak`) value. Empty when it
 * names none or has no runs.
 */
export function observedTable(e: ExperimentResult, width?: number): string {
  const metrics = e.metrics ?? [];
  if (metrics.length === 0 || e.runs.length === 0) return "";
  const rows: TextRow[] = [];
  for (const run of e.runs) {
    rows.push({ group: `${params(run)}${run.error ? ` (error: ${run.error})` : ""}` });
    for (const m of metrics) {
      const v = observedValues(run, m);
      rows.push([m, v.final, v.peak]);
    }
  }
  return textTable(["metric", "final", "peak"], rows, width === undefined ? {} : { width });
}

/**
 * The repeats table of `--repeat N`: per experiment, the repeats that passed,
 * the checks that came out the same in every repeat, each claim's verdicts
 * with their counts and the number of flips; then every flip.
 */
export function repeatTable(summaries: readonly RepeatSummary[], width = 100): string {
  if (summaries.length === 0) return "";
  const rows = summaries.map((s) => [
    s.id,
    `${s.passed}/${s.repeats}`,
    `${s.checks.stable}/${s.checks.total}`,
    s.skipped !== undefined
      ? `skipped: ${s.skipped}`
      : s.verdicts.map((v) =>
        `${v.claim} ${v.values.map((x) => `${x.value} ${x.count}/${s.repeats}`).join(", ")}`
      ).join("\n"),
    String(s.flips.length),
  ]);
  const table = textTable(["experiment", "passed", "checks stable", "verdicts", "flips"], rows, {
    width,
  });
  const flips = summaries.filter((s) => s.flips.length).map((s) => flipsText(s.flips, s.id));
  return [table, ...flips].join("\n");
}
