/**
 * Comparing two results documents (`deno task lab --compare A/results.json B/results.json`):
 * the runs of two kernels or machines, claim by claim, check by check, number by number.
 * {@linkcode compareReports} finds what differs, as plain data; `report/compare_text.ts` renders
 * it and `load_report.ts` reads the documents.
 * @module
 */
import { isObject } from "../base/values.ts";
import type {
  CheckResult,
  ClaimSourceRecord,
  ExperimentResult,
  LabReport,
  LedgerEntry,
  MachineInfo,
  RunResult,
} from "../results.ts";

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
  /** Claim id: a catalogue id, e.g. `A1.3`, or one of your own, e.g. `cf:synack-retries`. */
  claim: string;
  /** The claim as A's catalogue (or claims file) states it. */
  statement: string;
  /** For a claim of your own: its source, as A gives it (else B's). */
  source?: ClaimSourceRecord;
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
  /** Claim id: a catalogue id, or one of your own. */
  claim: string;
  /** The claim as the catalogue (or claims file) states it. */
  statement: string;
  /** For a claim of your own: its source. */
  source?: ClaimSourceRecord;
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
        const source = x.source ?? y.source;
        c.claims.differ.push({
          claim: x.claim,
          statement: x.statement,
          ...(source === undefined ? {} : { source }),
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
        ...(l.source === undefined ? {} : { source: l.source }),
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
