/**
 * The terminal view of a `--kernel` run: a line per kernel, the compact
 * claims × kernels table, and the claims whose verdicts differ between
 * kernels, each kernel's evidence side by side with the change that explains
 * it where one is known.
 * @module
 */
import { seconds } from "../base/format.ts";
import type { KernelLedgerCell, KernelMatrixReport, KernelRun } from "../results.ts";
import { textTable } from "./table.ts";

/** A verdict shortened for a table cell. */
export function shortVerdict(v: KernelLedgerCell["verdict"]): string {
  switch (v) {
    case "reproduced":
      return "repro";
    case "not reproduced":
      return "not repro";
    case "partly":
      return "partly";
    case "historical":
      return "hist";
    case "undecided":
      return "UNDECIDED";
    case "conflict":
      return "CONFLICT";
    case "not run":
      return "–";
  }
}

/** A duration as "7 min 12 s" or "41.2 s". */
export function longDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const min = Math.floor(ms / 60_000);
  return `${min} min ${Math.round((ms - min * 60_000) / 1000)} s`;
}

/** How a kernel ran, in words: `Debian … (TCG guest, boot 9.1 s, run 6 min 2 s, time scale 18)`. */
export function kernelRunText(k: KernelRun): string {
  const facts = k.report?.kernelFacts;
  const parts: string[] = [];
  if (k.vm) {
    parts.push(
      `${k.vm.accel.toUpperCase()} guest`,
      `boot ${seconds(k.vm.bootMs, 1)}`,
      `run ${longDuration(k.vm.runMs)}`,
    );
  } else if (k.target === "host") parts.push("this machine");
  if (facts && facts.timeScale > 1) parts.push(`time scale ${facts.timeScale}`);
  return `${k.vm ? `${k.vm.source} ` : ""}(${parts.join(", ")})`;
}

/** A kernel's summary line: passed, failed, skipped and how long. */
export function kernelSummaryLine(k: KernelRun): string {
  const head = `${k.label}${k.report ? ` (Linux ${k.report.kernel})` : ""}`;
  if (!k.report) return `${head}: not run: ${k.error ?? "no report"}`;
  const e = k.report.experiments;
  const skipped = e.filter((x) => x.skipped).length;
  const failed = e.filter((x) => !x.passed).length;
  return `${head}: ${e.length - failed - skipped} passed, ${failed} failed, ${skipped} skipped in ${
    longDuration(k.durationMs)
  } ${kernelRunText(k)}`;
}

/**
 * The rows worth showing: claims some kernel's experiments decided (with a
 * filter, the others are only "not selected").
 */
export function decidedRows(report: KernelMatrixReport): KernelMatrixReport["ledger"] {
  return report.ledger.filter((r) => r.cells.some((c) => c.experiments.length > 0));
}

/**
 * The claims × kernels table: a row per claim some kernel's experiments
 * decided, a column per kernel; `*` marks claims whose verdicts differ.
 */
export function kernelLedgerTable(report: KernelMatrixReport, width = 120): string {
  const head = ["claim", ...report.kernels.map((k) => k.label)];
  const rows = decidedRows(report).map((r) => [
    `${r.claim}${r.differs ? " *" : ""}`,
    ...r.cells.map((c) => shortVerdict(c.verdict)),
  ]);
  return textTable(head, rows, { width });
}

/**
 * The claims whose verdicts agree but whose numbers follow a kernel change
 * the kernels differ in: each kernel's evidence, then the change.
 */
export function kernelChanges(report: KernelMatrixReport): string {
  return evidenceBlocks(
    report,
    report.ledger.filter((r) => r.changes),
    (r) => `  change: ${r.changes}`,
  );
}

/**
 * The claims whose verdicts differ between kernels: each kernel's verdict and
 * evidence, then the change that splits them where one is known.
 */
export function kernelDifferences(report: KernelMatrixReport): string {
  return evidenceBlocks(
    report,
    report.ledger.filter((r) => r.differs),
    (r) => `  why: ${r.explanation ?? "no known kernel change splits them this way"}`,
  );
}

function evidenceBlocks(
  report: KernelMatrixReport,
  rows: KernelMatrixReport["ledger"],
  last: (row: KernelMatrixReport["ledger"][number]) => string,
): string {
  const out: string[] = [];
  for (const row of rows) {
    out.push(`${row.claim}: ${row.statement}`);
    for (const cell of row.cells) {
      const k = report.kernels.find((x) => x.label === cell.kernel);
      const entry = k?.report?.ledger.find((l) => l.claim === row.claim);
      out.push(
        `  ${cell.kernel}: ${cell.verdict}${entry ? ` — ${entry.evidence}` : ""}`,
      );
    }
    out.push(last(row));
  }
  return out.join("\n");
}
