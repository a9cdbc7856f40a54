/**
 * The report directory `--report DIR`, owned by the report stage:
 * `report.md`, `results.json` (the `--json` document), `charts/` (an SVG and
 * a PNG per run) and `pcaps/` (each kept capture, copied here). Files are
 * named after the run ({@linkcode runFileName}), so a run's chart and pcaps
 * sit side by side.
 * @module
 */
import { dirname, join } from "node:path";
import type { LabReport } from "../results.ts";
import { reportMarkdown } from "./markdown.ts";

/** A capture a run kept, to be copied into the report. */
export interface CaptureFile {
  /** The experiment's id. */
  experiment: string;
  /** The run's 0-based index in its experiment. */
  index: number;
  /** The captured host. */
  host: string;
  /** The pcap file. */
  file: string;
}

/** What {@linkcode writeReport} writes: a lab run's report and the captures it kept. */
export interface ReportInput {
  /** The results document. */
  report: LabReport;
  /** Captures to copy into `pcaps/` (default none). */
  captures?: readonly CaptureFile[];
}

/** Options of {@linkcode writeReport}. */
export interface WriteReportOptions {
  /** Called before each chart is drawn, e.g. for progress. */
  onChart?: (done: number, of: number) => void;
}

/** The files a report consists of, relative to its directory. */
export interface ReportFiles {
  /** `report.md`. */
  markdown: string;
  /** `results.json`. */
  json: string;
  /** Every chart file (SVG and PNG). */
  charts: string[];
  /** Every pcap file. */
  pcaps: string[];
}

/**
 * The file-name stem of a run, shared by its pcaps and charts: the 1-based
 * index, zero-padded to the number of runs, then each parameter as `name-value`.
 *
 * @example
 * ```ts
 * import { runFileName } from "./directory.ts";
 * runFileName(3, 12, { backlog: 4, syncookies: 1 }); // "04-backlog-4-syncookies-1"
 * ```
 */
export function runFileName(
  index: number,
  of: number,
  params: Record<string, number | string | boolean>,
): string {
  const n = String(index + 1).padStart(String(of).length, "0");
  const parts = Object.entries(params).map(([k, v]) =>
    `${k}-${String(v)}`.replace(/[^A-Za-z0-9._-]+/g, "_")
  );
  return [n, ...parts].join("-");
}

/**
 * Copies the captures into `dir/pcaps/`, draws every run's chart into
 * `dir/charts/` (recording both in the runs' `pcaps` and `charts`), then
 * writes `dir/results.json` and `dir/report.md`.
 */
export async function writeReport(
  dir: string,
  input: ReportInput,
  options: WriteReportOptions = {},
): Promise<ReportFiles> {
  const { report } = input;
  const pcaps: string[] = [];
  for (const c of input.captures ?? []) {
    const e = report.experiments.find((x) => x.id === c.experiment);
    const run = e?.runs[c.index];
    if (!e || !run) continue;
    const relative = `pcaps/${e.id}/${
      runFileName(c.index, e.runs.length, run.params)
    }-${c.host}.pcap`;
    const target = join(dir, relative);
    await Deno.mkdir(dirname(target), { recursive: true });
    await Deno.copyFile(c.file, target);
    await Deno.chmod(target, 0o644); // a capture file is private; a report is for sharing
    (run.pcaps ??= {})[c.host] = relative;
    pcaps.push(relative);
  }
  const charted = report.experiments.flatMap((e) =>
    e.runs.map((run, i) => ({ e, run, i })).filter(({ run }) => run.samples.length > 0)
  );
  // The chart libraries (vega, resvg) load only when a report is drawn.
  const { chartSpec, renderSvg, svgToPng } = await import("./chart.ts");
  const charts: string[] = [];
  for (const [n, { e, run, i }] of charted.entries()) {
    options.onChart?.(n, charted.length);
    const stem = `charts/${e.id}/${runFileName(i, e.runs.length, run.params)}`;
    const svg = await renderSvg(chartSpec(run, {
      experiment: e.id,
      title: e.title,
      serverHost: run.server?.host ?? "server",
      kernel: report.kernel,
      ...(e.shortened === undefined ? {} : { shortened: e.shortened }),
    }));
    await Deno.mkdir(join(dir, dirname(stem)), { recursive: true });
    await Deno.writeTextFile(join(dir, `${stem}.svg`), svg);
    await Deno.writeFile(join(dir, `${stem}.png`), svgToPng(svg));
    run.charts = { svg: `${stem}.svg`, png: `${stem}.png` };
    charts.push(run.charts.svg, run.charts.png);
  }
  await Deno.writeTextFile(join(dir, "results.json"), JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile(join(dir, "report.md"), reportMarkdown(report));
  return { markdown: "report.md", json: "results.json", charts, pcaps };
}

/** The files and folders a report consists of. */
const REPORT_ENTRIES = ["charts", "pcaps", "report.md", "results.json"];

/**
 * Checks that `dir` can hold a report: a new or empty directory, or one
 * holding a previous report, whose files (and only those) are removed so old
 * charts and pcaps cannot sit beside new ones. Anything else is refused rather
 * than overwritten.
 *
 * @returns why it cannot, or undefined when it is ready.
 */
export async function prepareReportDir(dir: string): Promise<string | undefined> {
  const entries: string[] = [];
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) {
      return `Cannot write the report to "${dir}": it is a file; give a directory, e.g. --report report`;
    }
    for await (const e of Deno.readDir(dir)) entries.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      return `Cannot write the report to "${dir}": ${(err as Error).message}`;
    }
  }
  if (entries.length && !(await isPreviousReport(join(dir, "results.json")))) {
    return `Cannot write the report to "${dir}": it is not empty and holds no earlier backlog-lab report; give a new or empty directory`;
  }
  const foreign = entries.filter((e) => !REPORT_ENTRIES.includes(e));
  try {
    await Deno.mkdir(dir, { recursive: true });
    for (const old of entries.filter((e) => REPORT_ENTRIES.includes(e))) {
      await Deno.remove(join(dir, old), { recursive: true });
    }
    const probe = join(dir, ".backlog-lab-write-test");
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (err) {
    return `Cannot write the report to "${dir}": ${
      (err as Error).message
    }; give a writable directory`;
  }
  if (foreign.length) {
    console.error(`Keeping ${foreign.join(", ")} in "${dir}"; replacing the earlier report there`);
  }
  return undefined;
}

/** Whether `path` is a results.json this lab wrote. */
async function isPreviousReport(path: string): Promise<boolean> {
  try {
    const doc = JSON.parse(await Deno.readTextFile(path));
    return typeof doc?.version === "number" && Array.isArray(doc.experiments) &&
      Array.isArray(doc.ledger);
  } catch {
    return false;
  }
}
