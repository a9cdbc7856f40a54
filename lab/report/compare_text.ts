/**
 * A comparison of two results documents as text: a terminal table
 * ({@linkcode comparisonTable}) or Markdown to paste ({@linkcode comparisonMarkdown}),
 * both ending with the one-line {@linkcode comparisonSummary}.
 * @module
 */
import { plural } from "../base/format.ts";
import type {
  CheckDifference,
  Outcome,
  ReportComparison,
  Side,
  SysctlDifference,
} from "../judge/compare.ts";
import { markdownCell, markdownTable, type TextRow, textTable } from "./table.ts";

function listing(items: string[]): string {
  return items.length <= 1
    ? items.join("")
    : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/**
 * The one-line summary both renderings end with, e.g.
 * `12 claims same, 2 differ; 3 checks and 17 numbers differ`.
 */
export function comparisonSummary(c: ReportComparison): string {
  const undecided = c.claims.sameUndecided ? ` (${c.claims.sameUndecided} undecided in both)` : "";
  const claims = [
    `${plural(c.claims.same, "claim")} same${undecided}`,
    `${c.claims.differ.length} differ`,
  ];
  for (const side of ["A", "B"] as const) {
    const n = c.claims.onlyIn.filter((o) => o.side === side).length;
    if (n) claims.push(`${n} only in ${side}`);
  }
  const flipped = c.checks.filter((k) => k.passedA !== k.passedB).length;
  const parts: [number, string][] = [
    [c.experiments.onlyIn.length + c.experiments.differ.length, "experiment"],
    [c.runs.onlyIn.length + c.runs.differ.length, "run"],
    [c.checks.length, "check"],
    [c.numbers.length, "number"],
    [c.sysctls.length, "sysctl"],
  ];
  const rest = parts.filter(([n]) => n > 0).map(([n, what]) =>
    what === "check" && flipped ? `${plural(n, what)} (${flipped} in pass/fail)` : plural(n, what)
  );
  if (rest.length === 0) {
    return `${claims.join(", ")}; no experiment, run, check, number or sysctl differs${
      c.same ? ": the results are the same" : ""
    }`;
  }
  const one = rest.length === 1 && parts.find(([n]) => n > 0)![0] === 1;
  return `${claims.join(", ")}; ${listing(rest)} ${one ? "differs" : "differ"}`;
}

/** One cell per column, or a row-wide group heading (the experiment id). */
type Row = TextRow;

interface Section {
  title: string;
  head: string[];
  rows: Row[];
  /** Rows come in groups under `{ group }` headings (Markdown repeats it as a first column). */
  grouped: boolean;
}

function verdictCell(verdict: string | null, evidence: string | null, sep: string): string {
  return verdict === null ? "absent" : `${verdict}${evidence ? `${sep}${evidence}` : ""}`;
}

function checkCell(k: CheckDifference, side: Side): string {
  const passed = side === "A" ? k.passedA : k.passedB;
  if (passed === null) return "absent";
  const observed = side === "A" ? k.observedA : k.observedB;
  const expected = side === "A" ? k.expectedA : k.expectedB;
  const other = side === "A" ? k.expectedB : k.expectedA;
  const exp = other !== null && other !== expected ? ` (expected ${expected})` : "";
  return `${observed ?? "–"} ${passed ? "ok" : "FAIL"}${exp}`;
}

function value(v: string | number | null): string {
  return v === null ? "absent" : String(v);
}

function sysctlRuns(d: SysctlDifference): string {
  if (d.runs.length === d.matchedRuns) {
    return d.matchedRuns === 1 ? "the run" : `all ${d.matchedRuns} runs`;
  }
  return d.runs.join("; ");
}

/** Groups rows by experiment: a heading row, then the experiment's rows without its id. */
function grouped<T extends { experiment: string }>(items: T[], row: (t: T) => string[]): Row[] {
  const rows: Row[] = [];
  let last: string | undefined;
  for (const t of items) {
    if (t.experiment !== last) rows.push({ group: t.experiment });
    last = t.experiment;
    rows.push(row(t));
  }
  return rows;
}

/**
 * A claim's statement, with its source for a claim of your own: on a new line
 * in the terminal, as a link in Markdown.
 */
function statementCell(
  d: { statement: string; source?: { title: string; url: string } },
  markdown: boolean,
): string {
  if (!d.source) return d.statement;
  return markdown
    ? `${d.statement} (source: [${d.source.title}](${d.source.url}))`
    : `${d.statement}\n(source: ${d.source.title}, ${d.source.url})`;
}

function sections(c: ReportComparison, sep: string): Section[] {
  const out: Section[] = [];
  const claimRows: Row[] = [
    ...c.claims.differ.map((d) => [
      d.claim,
      statementCell(d, sep !== "\n"),
      verdictCell(d.verdictA, d.evidenceA, sep),
      verdictCell(d.verdictB, d.evidenceB, sep),
    ]),
    ...c.claims.onlyIn.map((o) => {
      const cell = verdictCell(o.verdict, o.evidence, sep);
      return [
        o.claim,
        statementCell(o, sep !== "\n"),
        ...(o.side === "A" ? [cell, "absent"] : ["absent", cell]),
      ];
    }),
  ];
  if (claimRows.length) {
    const only = c.claims.onlyIn.length ? `, ${c.claims.onlyIn.length} in one report only` : "";
    out.push({
      title:
        `Claims whose verdicts differ (${c.claims.differ.length}${only}; ${c.claims.same} same)`,
      head: ["claim", "statement", "A", "B"],
      rows: claimRows,
      grouped: false,
    });
  }

  type Item = { experiment: string; run: string; a: string; b: string };
  const items: Item[] = [];
  const ran = (o: Outcome, skipped: string | null) => o === "skipped" ? `skipped: ${skipped}` : o;
  for (const o of c.experiments.onlyIn) {
    const here = `${o.outcome} (${o.title})`;
    items.push({
      experiment: o.experiment,
      run: "(experiment)",
      a: o.side === "A" ? here : "absent",
      b: o.side === "B" ? here : "absent",
    });
  }
  for (const d of c.experiments.differ) {
    items.push({
      experiment: d.experiment,
      run: "(experiment)",
      a: ran(d.outcomeA, d.skippedA),
      b: ran(d.outcomeB, d.skippedB),
    });
  }
  for (const r of c.runs.onlyIn) {
    const here = r.passed ? "passed" : "failed";
    items.push({
      experiment: r.experiment,
      run: r.run,
      a: r.side === "A" ? here : "absent",
      b: r.side === "B" ? here : "absent",
    });
  }
  for (const r of c.runs.differ) {
    const cell = (passed: boolean, error: string | null) =>
      `${passed ? "passed" : "failed"}${error ? `: ${error}` : ""}`;
    items.push({
      experiment: r.experiment,
      run: r.run,
      a: cell(r.passedA, r.errorA),
      b: cell(r.passedB, r.errorB),
    });
  }
  if (items.length) {
    const rank = (i: Item) => c.experimentIds.indexOf(i.experiment);
    items.sort((x, y) => rank(x) - rank(y)); // stable: the experiment's rows keep their order
    out.push({
      title: "Experiments and runs that differ",
      head: ["run", "A", "B"],
      rows: grouped(items, (i) => [i.run, i.a, i.b]),
      grouped: true,
    });
  }

  if (c.checks.length) {
    out.push({
      title: "Checks that differ (the value that decided each, and whether it held)",
      head: ["run", "check", "metric", "expected", "A", "B"],
      rows: grouped(c.checks, (k) => [
        k.run,
        k.check,
        k.metric,
        k.expectedA ?? k.expectedB ?? "",
        checkCell(k, "A"),
        checkCell(k, "B"),
      ]),
      grouped: true,
    });
  }
  if (c.numbers.length) {
    out.push({
      title: "Numbers that differ (each metric's last and highest value over the window)",
      head: ["run", "metric", "value", "A", "B"],
      rows: grouped(c.numbers, (n) => [n.run, n.metric, n.which, value(n.a), value(n.b)]),
      grouped: true,
    });
  }
  if (c.sysctls.length) {
    out.push({
      title: "Sysctls that differ (read back in each host's namespace)",
      head: ["host", "sysctl", "A", "B", "runs"],
      rows: grouped(c.sysctls, (d) => [d.host, d.sysctl, value(d.a), value(d.b), sysctlRuns(d)]),
      grouped: true,
    });
  }
  return out;
}

function identityRows(c: ReportComparison): string[][] {
  const rows: string[][] = [];
  if (c.a.source !== null || c.b.source !== null) {
    rows.push(["file", c.a.source ?? "", c.b.source ?? ""]);
  }
  rows.push(
    ["kernel", `Linux ${c.a.kernel}`, `Linux ${c.b.kernel}`],
    ["cpu", c.a.machine.cpu, c.b.machine.cpu],
    ["cores", String(c.a.machine.cores), String(c.b.machine.cores)],
    ["os", c.a.machine.os, c.b.machine.os],
    ["started", c.a.startedAt, c.b.startedAt],
    ["command", c.a.command, c.b.command],
  );
  return rows;
}

/**
 * The comparison as terminal text: both sides' identity, then a table per kind of difference
 * (verdicts, experiments and runs, checks, numbers, sysctls; each omitted when empty), then the
 * one-line summary.
 *
 * @param c What {@linkcode compareReports} returned.
 * @param width The terminal width to wrap the tables to (default 100).
 * @returns The text, without a trailing newline.
 *
 * @example Print a comparison
 * ```ts ignore
 * import { compareReports, comparisonTable, loadReport } from "../lab/compare.ts";
 *
 * const c = compareReports(await loadReport("a.json"), await loadReport("b.json"));
 * console.log(comparisonTable(c, Deno.consoleSize().columns));
 * ```
 */
export function comparisonTable(c: ReportComparison, width = 100): string {
  const parts = [
    `backlog-lab comparison: A (Linux ${c.a.kernel}) vs B (Linux ${c.b.kernel})`,
    textTable(["", "A", "B"], identityRows(c), { width }),
  ];
  for (const s of sections(c, "\n")) {
    parts.push(`${s.title}:\n${textTable(s.head, s.rows, { width })}`);
  }
  parts.push(comparisonSummary(c));
  return parts.join("\n\n");
}

/**
 * The comparison as GitHub-flavoured Markdown, to paste into a bug report or a post: a heading,
 * both sides' identity, a heading and pipe table per kind of difference (each omitted when
 * empty; pipes in cells escaped), then the one-line summary.
 *
 * @param c What {@linkcode compareReports} returned.
 * @returns The Markdown, without a trailing newline.
 *
 * @example Write a comparison for a bug report
 * ```ts ignore
 * import { compareReports, comparisonMarkdown, loadReport } from "../lab/compare.ts";
 *
 * const c = compareReports(await loadReport("a.json"), await loadReport("b.json"));
 * await Deno.writeTextFile("comparison.md", comparisonMarkdown(c));
 * ```
 */
export function comparisonMarkdown(c: ReportComparison): string {
  const parts = [
    `## backlog-lab comparison: Linux ${markdownCell(c.a.kernel)} (A) vs Linux ${
      markdownCell(c.b.kernel)
    } (B)`,
    markdownTable(["", "A", "B"], identityRows(c)),
  ];
  for (const s of sections(c, ": ")) {
    const rows: string[][] = [];
    let experiment = "";
    for (const r of s.rows) {
      if (!("group" in r)) rows.push(s.grouped ? [experiment, ...r] : [...r]);
      else experiment = r.group;
    }
    const head = s.grouped ? ["experiment", ...s.head] : s.head;
    parts.push(`### ${s.title}`, markdownTable(head, rows));
  }
  parts.push(`**${comparisonSummary(c)}**`);
  return parts.join("\n\n");
}
