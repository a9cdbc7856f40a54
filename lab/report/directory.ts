/**
 * The report directory `--report DIR`, owned by the report stage:
 * `report.md`, `results.json` (the `--json` document), `charts/` (an SVG and
 * a PNG per run) and `pcaps/` (each kept capture, copied here). Files are
 * named after the run ({@linkcode runFileName}), so a run's chart and pcaps
 * sit side by side.
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { chownTree, mkdirTracked, type Owner } from "../base/owner.ts";
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
  /**
   * Called with each temporary directory (the partial report, the earlier
   * report while it is swapped out) before it is made, e.g. to record it in a
   * run record, so that it is removed if the process is killed.
   */
  registerTemp?: (path: string) => Promise<void>;
  /** Give what is written to this user, e.g. the one behind `sudo` (see `sudoOwner`). */
  owner?: Owner;
  /** Draw the charts (default true); without, `charts/` stays empty and runs name none. */
  charts?: boolean;
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
 * A report that could not be written (a full disk, a name too long for the
 * file system, no permission): one line naming the directory, the file and
 * the reason. Nothing partial is left, and an earlier report in the
 * directory is as it was.
 */
export class ReportWriteError extends Error {
  /** Always `"ReportWriteError"`. */
  override name = "ReportWriteError";
  /** The report directory. */
  readonly dir: string;
  /** The file being written, relative to the report directory, when known. */
  readonly file: string | undefined;

  /** Builds `Cannot write the report to "<dir>": <reason> (writing "<file>"); …`. */
  constructor(dir: string, reason: string, options: { file?: string; cause?: unknown } = {}) {
    super(
      `Cannot write the report to "${dir}": ${reason}${
        options.file === undefined ? "" : ` (writing "${options.file}")`
      }; nothing was written there, and an earlier report in it is unchanged`,
      { cause: options.cause },
    );
    this.dir = dir;
    this.file = options.file;
  }
}

/**
 * The files and folders a report consists of (`kernels/` of a `--kernel`
 * run's); `results.json` last: it marks a report complete.
 */
const REPORT_ENTRIES = ["charts", "pcaps", "kernels", "report.md", "results.json"];

/**
 * Writes the report into `dir`, all or nothing: everything goes first into a
 * sibling directory (`.<name>.partial-<tag>`, beside `dir`, so that the same
 * file system holds both), and only once it is complete does it replace the
 * report entries of `dir` (`charts/`, `pcaps/`, `report.md`, then
 * `results.json`, each by a rename; files of the user's in `dir` stay). A
 * failure removes the partial directory and leaves `dir` as it was.
 *
 * What is written: the captures copied into `pcaps/`, every run's chart in
 * `charts/` (both recorded in the runs' `pcaps` and `charts`), then
 * `results.json` and `report.md`.
 *
 * @throws {ReportWriteError} naming the directory, the file and the reason.
 */
export async function writeReport(
  dir: string,
  input: ReportInput,
  options: WriteReportOptions = {},
): Promise<ReportFiles> {
  return await stagedReport(dir, (staging) => writeEntries(staging, input, options), options);
}

/**
 * Writes a report directory all or nothing, as {@linkcode writeReport} does:
 * `fill` writes every entry into a sibling staging directory, which then
 * replaces the report entries of `dir` (for reports other than one run's,
 * e.g. a `--kernel` run's).
 *
 * @throws {ReportWriteError} naming the directory, the file and the reason.
 */
export async function stagedReport<T>(
  dir: string,
  fill: (staging: string) => Promise<T>,
  options: Pick<WriteReportOptions, "registerTemp" | "owner"> = {},
): Promise<T> {
  const target = resolve(dir);
  const parent = dirname(target);
  const tag = [...crypto.getRandomValues(new Uint8Array(4))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const staging = join(parent, `.${basename(target)}.partial-${tag}`);
  let made: string[] = [];
  let files: T;
  try {
    made = await mkdirTracked(parent);
    await options.registerTemp?.(staging);
    await Deno.mkdir(staging);
    files = await fill(staging);
  } catch (err) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw asWriteError(dir, err);
  }
  try {
    await swapIn(staging, target, { tag, ...options });
  } catch (err) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw asWriteError(dir, err);
  }
  if (options.owner) {
    for (const d of made) await Deno.chown(d, options.owner.uid, options.owner.gid);
    await Deno.chown(target, options.owner.uid, options.owner.gid);
    for (const e of REPORT_ENTRIES) {
      const path = join(target, e);
      if (await exists(path)) await chownTree(path, options.owner);
    }
  }
  return files;
}

/** Writes the report's entries into `dir`; an error names the entry (relative) it was writing. */
async function writeEntries(
  dir: string,
  input: ReportInput,
  options: WriteReportOptions,
): Promise<ReportFiles> {
  const at = async <T>(file: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw new EntryError(file, err);
    }
  };
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
    await at(relative, async () => {
      await Deno.mkdir(dirname(target), { recursive: true });
      await Deno.copyFile(c.file, target);
      await Deno.chmod(target, 0o644); // a capture file is private; a report is for sharing
    });
    (run.pcaps ??= {})[c.host] = relative;
    pcaps.push(relative);
  }
  const charted = options.charts === false
    ? []
    : report.experiments.flatMap((e) =>
      e.runs.map((run, i) => ({ e, run, i })).filter(({ run }) => run.samples.length > 0)
    );
  const charts: string[] = [];
  for (const [n, { e, run, i }] of charted.entries()) {
    // The chart libraries (vega, resvg) load only when a report is drawn.
    const { chartSpec, renderSvg, svgToPng } = await import("./chart.ts");
    options.onChart?.(n, charted.length);
    const stem = `charts/${e.id}/${runFileName(i, e.runs.length, run.params)}`;
    const svg = await renderSvg(chartSpec(run, {
      experiment: e.id,
      title: e.title,
      serverHost: run.server?.host ?? "server",
      kernel: report.kernel,
      ...(e.shortened === undefined ? {} : { shortened: e.shortened }),
    }));
    await at(`${stem}.svg`, async () => {
      await Deno.mkdir(join(dir, dirname(stem)), { recursive: true });
      await Deno.writeTextFile(join(dir, `${stem}.svg`), svg);
    });
    await at(`${stem}.png`, () => Deno.writeFile(join(dir, `${stem}.png`), svgToPng(svg)));
    run.charts = { svg: `${stem}.svg`, png: `${stem}.png` };
    charts.push(run.charts.svg, run.charts.png);
  }
  // report.md before results.json: a directory with results.json is a complete report.
  await at("report.md", () => Deno.writeTextFile(join(dir, "report.md"), reportMarkdown(report)));
  await at(
    "results.json",
    () => Deno.writeTextFile(join(dir, "results.json"), JSON.stringify(report, null, 2) + "\n"),
  );
  return { markdown: "report.md", json: "results.json", charts, pcaps };
}

/**
 * Puts the complete report in `staging` in place of `target`'s report
 * entries: a missing `target` is the staging directory renamed; an existing
 * one keeps its own files, its earlier entries go aside (`results.json`
 * first, so that a directory interrupted here never looks complete) and the
 * new ones come in (`results.json` last), each one rename.
 */
async function swapIn(
  staging: string,
  target: string,
  options: { tag: string; registerTemp?: (path: string) => Promise<void> },
): Promise<void> {
  if (!(await exists(target))) {
    await Deno.rename(staging, target);
    return;
  }
  const old = join(dirname(target), `.${basename(target)}.old-${options.tag}`);
  await options.registerTemp?.(old);
  await Deno.mkdir(old);
  for (const e of [...REPORT_ENTRIES].reverse()) {
    if (await exists(join(target, e))) await Deno.rename(join(target, e), join(old, e));
  }
  for (const e of REPORT_ENTRIES) {
    if (await exists(join(staging, e))) await Deno.rename(join(staging, e), join(target, e));
  }
  await Deno.remove(old, { recursive: true });
  await Deno.remove(staging, { recursive: true });
}

/** An error while writing one entry of the report. */
class EntryError extends Error {
  readonly file: string;
  constructor(file: string, cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.file = file;
  }
}

/** `err` as a one-line {@linkcode ReportWriteError}. */
function asWriteError(dir: string, err: unknown): ReportWriteError {
  if (err instanceof ReportWriteError) return err;
  const cause = err instanceof EntryError ? err.cause : err;
  const message = cause instanceof Error ? cause.message : String(cause);
  // Deno's "No space left on device (os error 28): writefile '/long/path'": the reason only.
  const reason = /^(.*?\(os error \d+\))/.exec(message)?.[1] ?? message.split("\n")[0]!;
  return new ReportWriteError(dir, reason, {
    ...(err instanceof EntryError ? { file: err.file } : {}),
    cause,
  });
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/**
 * Checks, before anything runs, that `dir` can take a report: a new or empty
 * directory, or one holding an earlier backlog-lab report (whose report
 * entries, and only those, the new report will replace, once it is
 * complete). Anything else is refused rather than overwritten. Nothing is
 * changed: the earlier report stays until a new one is written.
 *
 * @returns why it cannot, or undefined when it can.
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
  // The report is written beside the directory first: its nearest existing ancestor must take it.
  const target = resolve(dir);
  let ancestor = dirname(target);
  while (!(await exists(ancestor)) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
  const probe = join(ancestor, `.${basename(target)}.partial-probe-${Deno.pid}`);
  try {
    await Deno.mkdir(probe);
    await Deno.remove(probe);
  } catch (err) {
    return `Cannot write the report to "${dir}": ${
      asWriteError(dir, err).message.replace(/^Cannot write the report to "[^"]*": /, "").replace(
        /; nothing was written.*$/,
        "",
      )
    } in "${ancestor}"; give a writable directory`;
  }
  const foreign = entries.filter((e) => !REPORT_ENTRIES.includes(e));
  if (foreign.length) {
    console.error(`Keeping ${foreign.join(", ")} in "${dir}"; replacing the earlier report there`);
  }
  return undefined;
}

/** Whether `path` is a results.json this lab wrote. */
async function isPreviousReport(path: string): Promise<boolean> {
  try {
    const doc = JSON.parse(await Deno.readTextFile(path));
    return typeof doc?.version === "number" && Array.isArray(doc.ledger) &&
      (Array.isArray(doc.experiments) || Array.isArray(doc.kernels));
  } catch {
    return false;
  }
}
