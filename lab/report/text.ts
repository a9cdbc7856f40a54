/**
 * The terminal report: one selftest-style line per experiment, a table of
 * observed vs expected for failures (for every run with `verbose`), and the
 * claims ledger.
 * @module
 */
import Table from "cli-table3";
import type { ExperimentResult, LedgerEntry, RunResult } from "../results.ts";

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A matrix point as `name=value` pairs (`backlog=4 syncookies=1`); "" for a single run. */
export function paramsText(params: Record<string, unknown>, separator = " "): string {
  return Object.entries(params).map(([k, v]) => `${k}=${v}`).join(separator);
}

function params(run: RunResult): string {
  return paramsText(run.params) || "(single run)";
}

/** `[ OK ] id: title (1.23 s, 5 runs)` or `[FAIL] …` / `[SKIP] … : reason`. */
export function experimentLine(e: ExperimentResult): string {
  if (e.skipped) return `[SKIP] ${e.id}: ${e.skipped}`;
  const tag = e.passed ? "[ OK ]" : "[FAIL]";
  const n = e.runs.length;
  return `${tag} ${e.id}: ${e.title} (${seconds(e.durationMs)}, ${n} run${n === 1 ? "" : "s"})`;
}

/** Observed vs expected for the runs of an experiment (failed ones only unless `all`). */
export function checksTable(e: ExperimentResult, all: boolean): string {
  const table = new Table({
    head: ["run", "check", "metric", "expected", "observed", ""],
    style: { head: [], border: [], compact: true },
  });
  for (const run of e.runs) {
    if (!all && run.passed) continue;
    if (run.error) table.push([params(run), { colSpan: 5, content: `error: ${run.error}` }]);
    for (const c of run.checks) {
      if (!all && c.passed) continue;
      const at = c.atMs === null ? "" : ` @${Math.round(c.atMs)} ms`;
      table.push([
        params(run),
        c.name,
        c.metric,
        c.expected,
        `${c.observed ?? "–"}${at}`,
        c.passed ? "ok" : "FAIL",
      ]);
    }
  }
  return table.length ? table.toString() : "";
}

/** Each run's phase times (build, server, clients, observe, collect, teardown). */
export function phasesTable(e: ExperimentResult): string {
  const table = new Table({
    head: ["run", "build", "server", "clients", "observe", "collect", "teardown", "total"],
    style: { head: [], border: [], compact: true },
  });
  for (const r of e.runs) {
    const p = r.phases;
    table.push(
      [params(r), p.build, p.server, p.clients, p.observe, p.collect, p.teardown, r.durationMs].map(
        String,
      ),
    );
  }
  return table.toString();
}

/** The claims ledger as a table; each evidence ends with the experiments that decided it. */
export function ledgerTable(ledger: readonly LedgerEntry[], width = 100): string {
  const table = new Table({
    head: ["claim", "verdict", "evidence (decided by)"],
    colWidths: [7, 16, Math.max(40, width - 28)],
    wordWrap: true,
    style: { head: [], border: [], compact: true },
  });
  for (const l of ledger) {
    const by = l.experiments.length ? `\n(${l.experiments.join(", ")})` : "";
    table.push([l.claim, l.verdict, l.evidence + by]);
  }
  return table.toString();
}
