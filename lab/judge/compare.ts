/**
 * Comparing two results documents (`deno task lab --compare A/results.json B/results.json`):
 * the runs of two kernels or machines, claim by claim, check by check, number by number.
 * {@linkcode loadReport} reads a document, {@linkcode compareReports} finds what differs as plain
 * data, {@linkcode comparisonTable} and {@linkcode comparisonMarkdown} render it.
 * @module
 */
import Table from "cli-table3";
import type {
  CheckResult,
  ExperimentResult,
  LabReport,
  LedgerEntry,
  MachineInfo,
  RunResult,
} from "../results.ts";

/** The results-document format versions this backlog-lab reads. */
export const KNOWN_VERSIONS: readonly number[] = [1];

const HOW = "give a results.json written by `deno task lab --report DIR`, " +
  "or a file saved from `deno task lab --json > FILE`";

/** A file that {@linkcode loadReport} cannot use: names the file and the fix. */
export class CompareInputError extends Error {
  /** Always `"CompareInputError"`. */
  override name = "CompareInputError";
  /** The path that was given. */
  readonly file: string;
  /** The message without the file prefix. */
  readonly detail: string;

  /** Builds the message `Cannot compare results file "<file>": <detail>`. */
  constructor(file: string, detail: string, options?: ErrorOptions) {
    super(`Cannot compare results file "${file}": ${detail}`, options);
    this.file = file;
    this.detail = detail;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Reads and parses a results document (what `deno task lab --json` prints, or `results.json` of
 * `--report DIR`). Documents written before `machine` and `command` were recorded load too; those
 * fields are then absent, and {@linkcode compareReports} shows them as `unknown`.
 *
 * @param path The file to read.
 * @returns The document.
 * @throws {CompareInputError} The file is missing or unreadable, not JSON, not a backlog-lab
 * results document, or of a format version this backlog-lab does not know.
 *
 * @example Load a saved run
 * ```ts ignore
 * import { loadReport } from "../lab/compare.ts";
 *
 * const report = await loadReport("out/results.json");
 * console.log(report.kernel, report.ledger.length);
 * ```
 */
export async function loadReport(path: string): Promise<LabReport> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CompareInputError(path, `no such file; ${HOW}`, { cause: err });
    }
    if (err instanceof Deno.errors.IsADirectory) {
      const inside = `${path.replace(/\/+$/, "")}/results.json`;
      throw new CompareInputError(
        path,
        `it is a directory; give the results file in it, e.g. "${inside}"`,
        { cause: err },
      );
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new CompareInputError(path, `cannot read it (${why}); ${HOW}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const textReport = /^\s*backlog-lab on Linux/.test(text)
      ? "it is the text report; rerun with `--json` and save that, or "
      : "";
    throw new CompareInputError(path, `not JSON (${why}); ${textReport}${HOW}`, { cause: err });
  }
  const notResults = (what: string) =>
    new CompareInputError(path, `not a backlog-lab results document (${what}); ${HOW}`);
  if (!isObject(doc)) {
    throw notResults(`it is ${Array.isArray(doc) ? "an array" : `${doc}`}, not an object`);
  }
  const missing = ["version", "experiments", "ledger"].filter((k) => !(k in doc));
  if (missing.length === 3) throw notResults(`no "version", "experiments" or "ledger" field`);
  // A package.json has a "version" too: only a number, or a document with our other fields, is ours.
  const ours = typeof doc.version === "number" || missing.length < 2;
  if (!ours) throw notResults(`no ${missing.map((k) => `"${k}"`).join(" or ")} field`);
  if ("version" in doc && !KNOWN_VERSIONS.includes(doc.version as number)) {
    const known = KNOWN_VERSIONS.join(", ");
    throw new CompareInputError(
      path,
      `format version ${
        JSON.stringify(doc.version)
      } is unknown: this backlog-lab reads version ${known}; ` +
        `compare it with a backlog-lab that reads version ${JSON.stringify(doc.version)}`,
    );
  }
  if (missing.length) throw notResults(`no ${missing.map((k) => `"${k}"`).join(" or ")} field`);
  if (!Array.isArray(doc.experiments)) throw notResults(`"experiments" is not an array`);
  if (!Array.isArray(doc.ledger)) throw notResults(`"ledger" is not an array`);
  if (typeof doc.kernel !== "string") throw notResults(`no "kernel" string`);
  doc.experiments.forEach((e: unknown, i) => {
    if (!isObject(e) || typeof e.id !== "string" || !Array.isArray(e.runs)) {
      throw notResults(`experiments[${i}] has no "id" string or "runs" array`);
    }
  });
  doc.ledger.forEach((l: unknown, i) => {
    if (!isObject(l) || typeof l.claim !== "string" || typeof l.verdict !== "string") {
      throw notResults(`ledger[${i}] has no "claim" or "verdict" string`);
    }
  });
  return doc as unknown as LabReport;
}

/** One of the two compared documents: `A` is the first given, `B` the second. */
export type Side = "A" | "B";

/** Who produced one side: kernel, machine, start time and command (`unknown` when absent). */
export interface ComparisonSide {
  /** The file it was loaded from, if given in {@linkcode CompareOptions.sources}. */
  source: string | null;
  /** The kernel release (`uname -r`). */
  kernel: string;
  /** The machine's processor, core count and distribution. */
  machine: { cpu: string; cores: number | "unknown"; os: string };
  /** When the lab run began (ISO 8601). */
  startedAt: string;
  /** The command line that produced the document. */
  command: string;
}

/** A claim both sides decided differently. */
export interface VerdictDifference {
  /** Catalogue claim id, e.g. `A1.3`. */
  claim: string;
  /** The claim as A's catalogue states it. */
  statement: string;
  /** A's verdict. */
  verdictA: LedgerEntry["verdict"];
  /** B's verdict. */
  verdictB: LedgerEntry["verdict"];
  /** A's evidence. */
  evidenceA: string;
  /** B's evidence. */
  evidenceB: string;
}

/** A claim in only one side's ledger. */
export interface ClaimOnlyInOne {
  /** Catalogue claim id. */
  claim: string;
  /** The claim as the catalogue states it. */
  statement: string;
  /** The side whose ledger has it. */
  side: Side;
  /** Its verdict there. */
  verdict: LedgerEntry["verdict"];
  /** Its evidence there. */
  evidence: string;
}

/** How an experiment or a run ended. */
export type Outcome = "passed" | "failed" | "skipped";

/** An experiment in only one side. */
export interface ExperimentOnlyInOne {
  /** The experiment id. */
  experiment: string;
  /** Its title. */
  title: string;
  /** The side that ran it. */
  side: Side;
  /** How it ended there. */
  outcome: Outcome;
}

/** An experiment of both sides that passed on one and failed (or was skipped) on the other. */
export interface ExperimentOutcomeDifference {
  /** The experiment id. */
  experiment: string;
  /** Its title on side A. */
  title: string;
  /** How it ended on A. */
  outcomeA: Outcome;
  /** How it ended on B. */
  outcomeB: Outcome;
  /** Why A skipped it, if it did. */
  skippedA: string | null;
  /** Why B skipped it, if it did. */
  skippedB: string | null;
}

/** A run (matrix point) of a common experiment that only one side has. */
export interface RunOnlyInOne {
  /** The experiment id. */
  experiment: string;
  /** The run's label: its params (`backlog=8 somaxconn=4096`), and its mode unless `default`. */
  run: string;
  /** The side that has it. */
  side: Side;
  /** Whether it passed there. */
  passed: boolean;
}

/** A run of both sides that passed on one and not the other, or that errored differently. */
export interface RunOutcomeDifference {
  /** The experiment id. */
  experiment: string;
  /** The run's label. */
  run: string;
  /** Whether it passed on A. */
  passedA: boolean;
  /** Whether it passed on B. */
  passedB: boolean;
  /** A's run error, if it could not complete. */
  errorA: string | null;
  /** B's run error, if it could not complete. */
  errorB: string | null;
}

/**
 * A check of a matched run whose observed value, pass/fail or expectation differs, or that only
 * one side has (the other side's `passed` is then `null`).
 */
export interface CheckDifference {
  /** The experiment id. */
  experiment: string;
  /** The run's label. */
  run: string;
  /** The check's name. */
  check: string;
  /** The metric it reads (A's, or B's if A has no such check). */
  metric: string;
  /** The expectation in words on A (`null`: A has no such check). */
  expectedA: string | null;
  /** The expectation in words on B (`null`: B has no such check). */
  expectedB: string | null;
  /** The value that decided it on A (`null`: none, or no such check). */
  observedA: number | null;
  /** The value that decided it on B (`null`: none, or no such check). */
  observedB: number | null;
  /** Whether it passed on A (`null`: A has no such check). */
  passedA: boolean | null;
  /** Whether it passed on B (`null`: B has no such check). */
  passedB: boolean | null;
}

/** A metric of a matched run whose last or highest value differs (`null`: not observed there). */
export interface NumberDifference {
  /** The experiment id. */
  experiment: string;
  /** The run's label. */
  run: string;
  /** The metric, e.g. `server.SYN_RECV`. */
  metric: string;
  /** Which value: the last one or the highest over the window. */
  which: "final" | "peak";
  /** A's value. */
  a: number | null;
  /** B's value. */
  b: number | null;
}

/**
 * A sysctl that reads back differently on the same host of matched runs; one entry per
 * experiment for all the runs that show the same pair of values.
 */
export interface SysctlDifference {
  /** The experiment id. */
  experiment: string;
  /** The host (namespace) name in the experiment. */
  host: string;
  /** The sysctl, e.g. `net.core.somaxconn`. */
  sysctl: string;
  /** A's value (`null`: not recorded there). */
  a: string | null;
  /** B's value (`null`: not recorded there). */
  b: string | null;
  /** Labels of the matched runs that show these values, in run order. */
  runs: string[];
  /** How many runs the experiment has on both sides. */
  matchedRuns: number;
}

/** Everything that differs between two results documents, as plain data. */
export interface ReportComparison {
  /** The first document's identity. */
  a: ComparisonSide;
  /** The second document's identity. */
  b: ComparisonSide;
  /** Every experiment id of either side: A's in the order they ran, B's others after their predecessor. */
  experimentIds: string[];
  /** The claims ledger: verdicts that differ, claims only one side has, and how many agree. */
  claims: {
    /** Claims both sides gave the same verdict. */
    same: number;
    /** Of those, the claims `undecided` on both sides (e.g. both runs were filtered). */
    sameUndecided: number;
    /** Claims both sides have, with different verdicts, in catalogue order. */
    differ: VerdictDifference[];
    /** Claims only one side's ledger has. */
    onlyIn: ClaimOnlyInOne[];
  };
  /** Experiments only one side ran, and those whose outcome differs. */
  experiments: { onlyIn: ExperimentOnlyInOne[]; differ: ExperimentOutcomeDifference[] };
  /**
   * Runs (matched by params and mode) of experiments both sides ran (and neither skipped) that
   * only one side has, and matched runs whose outcome differs.
   */
  runs: { onlyIn: RunOnlyInOne[]; differ: RunOutcomeDifference[] };
  /** Checks of matched runs that differ, by experiment, run and definition order. */
  checks: CheckDifference[];
  /** Observed metrics of matched runs that differ, by experiment, run and metric. */
  numbers: NumberDifference[];
  /** Sysctls of matched runs' hosts that differ, by experiment, host and sysctl. */
  sysctls: SysctlDifference[];
  /** True when nothing above differs (identities aside: start times always do). */
  same: boolean;
}

/** Options of {@linkcode compareReports}. */
export interface CompareOptions {
  /** The files the documents came from, shown in the header. */
  sources?: readonly [string, string];
}

function sideOf(r: LabReport, source: string | null): ComparisonSide {
  const partial = r as Partial<LabReport>;
  const m: Partial<MachineInfo> = isObject(partial.machine) ? partial.machine : {};
  return {
    source,
    kernel: typeof partial.kernel === "string" ? partial.kernel : "unknown",
    machine: {
      cpu: typeof m.cpu === "string" && m.cpu ? m.cpu : "unknown",
      cores: typeof m.cores === "number" ? m.cores : "unknown",
      os: typeof m.os === "string" && m.os ? m.os : "unknown",
    },
    startedAt: typeof partial.startedAt === "string" ? partial.startedAt : "unknown",
    command: typeof partial.command === "string" && partial.command ? partial.command : "unknown",
  };
}

/**
 * Keys of both ordered lists: A's order, with each run of B's extra keys placed just before the
 * next key both have (at the end if none follows), so two catalogue-ordered ledgers merge in
 * catalogue order and, where the order cannot tell, A's keys come first.
 */
function mergeOrder(a: readonly string[], b: readonly string[]): string[] {
  const out = [...a];
  const inA = new Set(a);
  let pending: string[] = [];
  for (const k of b) {
    if (!inA.has(k)) {
      pending.push(k);
      continue;
    }
    if (pending.length) out.splice(out.indexOf(k), 0, ...pending);
    pending = [];
  }
  out.push(...pending);
  return out;
}

/** Items by key; a repeated key gets `#2`, `#3`, … so nothing is dropped. */
function keyed<T>(items: readonly T[], key: (t: T) => string): Map<string, T> {
  const m = new Map<string, T>();
  for (const t of items) {
    const k = key(t);
    let unique = k;
    for (let n = 2; m.has(unique); n++) unique = `${k} #${n}`;
    m.set(unique, t);
  }
  return m;
}

function outcome(e: ExperimentResult): Outcome {
  return e.skipped ? "skipped" : e.passed ? "passed" : "failed";
}

function runKey(r: RunResult): string {
  const params = Object.entries(r.params ?? {}).sort(([x], [y]) => x < y ? -1 : x > y ? 1 : 0);
  return `${params.map(([k, v]) => `${k}=${v}`).join(" ") || "(single run)"}${
    r.mode && r.mode !== "default" ? ` (${r.mode})` : ""
  }`;
}

const byText = (x: string, y: string) => x < y ? -1 : x > y ? 1 : 0;

/**
 * Finds what differs between two results documents: claim verdicts, experiments, runs (matched by
 * their params and mode), checks, observed numbers and sysctls.
 *
 * @param a The first document (side `A`), e.g. from {@linkcode loadReport}.
 * @param b The second document (side `B`).
 * @param options The files they came from, for the header.
 * @returns The differences as plain data; `same` is true when there are none.
 *
 * @example Compare two kernels' runs
 * ```ts ignore
 * import { compareReports, comparisonTable, loadReport } from "../lab/compare.ts";
 *
 * const files = ["a/results.json", "b/results.json"] as const;
 * const c = compareReports(await loadReport(files[0]), await loadReport(files[1]), {
 *   sources: files,
 * });
 * console.log(c.same ? "no differences" : comparisonTable(c));
 * ```
 */
export function compareReports(
  a: LabReport,
  b: LabReport,
  options: CompareOptions = {},
): ReportComparison {
  const c: ReportComparison = {
    a: sideOf(a, options.sources?.[0] ?? null),
    b: sideOf(b, options.sources?.[1] ?? null),
    experimentIds: [],
    claims: { same: 0, sameUndecided: 0, differ: [], onlyIn: [] },
    experiments: { onlyIn: [], differ: [] },
    runs: { onlyIn: [], differ: [] },
    checks: [],
    numbers: [],
    sysctls: [],
    same: true,
  };

  const la = keyed(a.ledger, (l) => l.claim);
  const lb = keyed(b.ledger, (l) => l.claim);
  for (const id of mergeOrder([...la.keys()], [...lb.keys()])) {
    const x = la.get(id);
    const y = lb.get(id);
    if (x && y) {
      if (x.verdict === y.verdict) {
        c.claims.same++;
        if (x.verdict === "undecided") c.claims.sameUndecided++;
      } else {
        c.claims.differ.push({
          claim: x.claim,
          statement: x.statement,
          verdictA: x.verdict,
          verdictB: y.verdict,
          evidenceA: x.evidence,
          evidenceB: y.evidence,
        });
      }
    } else {
      const l = (x ?? y)!;
      c.claims.onlyIn.push({
        claim: l.claim,
        statement: l.statement,
        side: x ? "A" : "B",
        verdict: l.verdict,
        evidence: l.evidence,
      });
    }
  }

  const ea = keyed(a.experiments, (e) => e.id);
  const eb = keyed(b.experiments, (e) => e.id);
  c.experimentIds = mergeOrder([...ea.keys()], [...eb.keys()]);
  for (const id of c.experimentIds) {
    const x = ea.get(id);
    const y = eb.get(id);
    if (!x || !y) {
      const e = (x ?? y)!;
      c.experiments.onlyIn.push({
        experiment: id,
        title: e.title,
        side: x ? "A" : "B",
        outcome: outcome(e),
      });
      continue;
    }
    if (outcome(x) !== outcome(y)) {
      c.experiments.differ.push({
        experiment: id,
        title: x.title,
        outcomeA: outcome(x),
        outcomeB: outcome(y),
        skippedA: x.skipped ?? null,
        skippedB: y.skipped ?? null,
      });
    }
    // A skipped experiment has no runs; its outcome row above says why.
    if (!x.skipped && !y.skipped) compareRuns(c, id, x, y);
  }

  c.same = c.claims.differ.length + c.claims.onlyIn.length + c.experiments.onlyIn.length +
      c.experiments.differ.length + c.runs.onlyIn.length + c.runs.differ.length +
      c.checks.length + c.numbers.length + c.sysctls.length === 0;
  return c;
}

function compareRuns(
  c: ReportComparison,
  experiment: string,
  x: ExperimentResult,
  y: ExperimentResult,
): void {
  const ra = keyed(x.runs, runKey);
  const rb = keyed(y.runs, runKey);
  const order = mergeOrder([...ra.keys()], [...rb.keys()]);
  const matched = order.filter((k) => ra.has(k) && rb.has(k)).length;
  const sysctls = new Map<string, SysctlDifference>();
  for (const run of order) {
    const p = ra.get(run);
    const q = rb.get(run);
    if (!p || !q) {
      const r = (p ?? q)!;
      c.runs.onlyIn.push({ experiment, run, side: p ? "A" : "B", passed: r.passed });
      continue;
    }
    if (p.passed !== q.passed || (p.error ?? null) !== (q.error ?? null)) {
      c.runs.differ.push({
        experiment,
        run,
        passedA: p.passed,
        passedB: q.passed,
        errorA: p.error ?? null,
        errorB: q.error ?? null,
      });
    }

    const ca = keyed(p.checks ?? [], (k) => k.name);
    const cb = keyed(q.checks ?? [], (k) => k.name);
    for (const name of mergeOrder([...ca.keys()], [...cb.keys()])) {
      const s = ca.get(name);
      const t = cb.get(name);
      if (
        s && t && s.observed === t.observed && s.passed === t.passed && s.expected === t.expected
      ) {
        continue;
      }
      const v = (k: CheckResult | undefined) => k?.observed ?? null;
      c.checks.push({
        experiment,
        run,
        check: name,
        metric: (s ?? t)!.metric,
        expectedA: s?.expected ?? null,
        expectedB: t?.expected ?? null,
        observedA: v(s),
        observedB: v(t),
        passedA: s?.passed ?? null,
        passedB: t?.passed ?? null,
      });
    }

    const oa = p.observed ?? {};
    const ob = q.observed ?? {};
    const metrics = [...new Set([...Object.keys(oa), ...Object.keys(ob)])].sort(byText);
    for (const metric of metrics) {
      for (const which of ["final", "peak"] as const) {
        const va = oa[metric]?.[which] ?? null;
        const vb = ob[metric]?.[which] ?? null;
        if (va !== vb) c.numbers.push({ experiment, run, metric, which, a: va, b: vb });
      }
    }

    const sa = p.sysctls ?? {};
    const sb = q.sysctls ?? {};
    for (const host of [...new Set([...Object.keys(sa), ...Object.keys(sb)])].sort(byText)) {
      const ha = sa[host] ?? {};
      const hb = sb[host] ?? {};
      for (const sysctl of [...new Set([...Object.keys(ha), ...Object.keys(hb)])].sort(byText)) {
        const va = ha[sysctl] ?? null;
        const vb = hb[sysctl] ?? null;
        if (va === vb) continue;
        const key = JSON.stringify([host, sysctl, va, vb]);
        const d = sysctls.get(key) ??
          { experiment, host, sysctl, a: va, b: vb, runs: [], matchedRuns: matched };
        d.runs.push(run);
        sysctls.set(key, d);
      }
    }
  }
  c.sysctls.push(
    ...[...sysctls.values()].sort((d, e) => byText(d.host, e.host) || byText(d.sysctl, e.sysctl)),
  );
}

// ---------------------------------------------------------------------------------------------
// Rendering

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

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
type Row = string[] | { group: string };

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

function sections(c: ReportComparison, sep: string): Section[] {
  const out: Section[] = [];
  const claimRows: Row[] = [
    ...c.claims.differ.map((d) => [
      d.claim,
      d.statement,
      verdictCell(d.verdictA, d.evidenceA, sep),
      verdictCell(d.verdictB, d.evidenceB, sep),
    ]),
    ...c.claims.onlyIn.map((o) => {
      const cell = verdictCell(o.verdict, o.evidence, sep);
      return [o.claim, o.statement, ...(o.side === "A" ? [cell, "absent"] : ["absent", cell])];
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

const displayWidth = (s: string) => Math.max(0, ...s.split("\n").map((l) => [...l].length));

/** Column widths (padding included) that fit `width`, shrinking the widest columns first. */
function fitWidths(head: string[], rows: Row[], width: number): number[] {
  const widths = head.map((h) => displayWidth(h) + 2);
  let span = 0;
  for (const r of rows) {
    if (Array.isArray(r)) {
      r.forEach((cell, i) => widths[i] = Math.max(widths[i]!, displayWidth(cell) + 2));
    } else span = Math.max(span, displayWidth(r.group) + 2);
  }
  const borders = head.length + 1;
  const floor = Math.max(width, span + borders);
  const min = 8;
  while (widths.reduce((s, w) => s + w, 0) + borders > floor) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= min) break;
    widths[widest]!--;
  }
  // A heading spans every column and the borders between them.
  const spanned = widths.reduce((s, w) => s + w, 0) + head.length - 1;
  if (span > spanned) widths[widths.length - 1]! += span - spanned;
  return widths;
}

function textTable(head: string[], rows: Row[], width: number): string {
  const table = new Table({
    head,
    colWidths: fitWidths(head, rows, width),
    wordWrap: true,
    style: { head: [], border: [], compact: true },
  });
  for (const r of rows) {
    table.push(Array.isArray(r) ? r : [{ colSpan: head.length, content: r.group }]);
  }
  return table.toString();
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
    textTable(["", "A", "B"], identityRows(c), width),
  ];
  for (const s of sections(c, "\n")) parts.push(`${s.title}:\n${textTable(s.head, s.rows, width)}`);
  parts.push(comparisonSummary(c));
  return parts.join("\n\n");
}

/** Escapes text for a GitHub-flavoured Markdown table cell. */
function mdCell(s: string): string {
  return s.replaceAll("|", "\\|").replace(/\r?\n/g, "<br>").trim();
}

function mdTable(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map(mdCell).join(" | ")} |`;
  return [line(head), `|${head.map(() => " --- ").join("|")}|`, ...rows.map(line)].join("\n");
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
    `## backlog-lab comparison: Linux ${mdCell(c.a.kernel)} (A) vs Linux ${mdCell(c.b.kernel)} (B)`,
    mdTable(["", "A", "B"], identityRows(c)),
  ];
  for (const s of sections(c, ": ")) {
    const rows: string[][] = [];
    let experiment = "";
    for (const r of s.rows) {
      if (Array.isArray(r)) rows.push(s.grouped ? [experiment, ...r] : r);
      else experiment = r.group;
    }
    const head = s.grouped ? ["experiment", ...s.head] : s.head;
    parts.push(`### ${s.title}`, mdTable(head, rows));
  }
  parts.push(`**${comparisonSummary(c)}**`);
  return parts.join("\n\n");
}
