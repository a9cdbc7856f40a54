/**
 * `deno task lab`: a thin shell over the runner. Parses flags, runs
 * preflight, runs the selected experiments, prints the report or JSON, and
 * turns SIGINT/SIGTERM into an abort that still removes everything.
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { CLAIMS } from "./describe/catalogue.ts";
import { ExperimentDefinitionError, PreflightError } from "./base/errors.ts";
import { buildLedger } from "./judge/ledger.ts";
import { checkSysctls, type LoadedExperiment, loadExperiments } from "./describe/load.ts";
import { historicalResult, isHistorical } from "./describe/historical.ts";
import { machineInfo, shellCommand } from "./observe/machine.ts";
import { NFT, TCPDUMP, type ToolNeed } from "./topology/packages.ts";
import { preflight } from "./topology/preflight.ts";
import { Lab } from "./run/lab.ts";
import { defaultJobs } from "./run/scheduler.ts";
import { mergeRepeats, type RepeatSummary, repeatTable, summarizeRepeats } from "./judge/repeat.ts";
import { planRuns } from "./describe/define.ts";
import { join } from "node:path";
import {
  CompareInputError,
  compareReports,
  comparisonMarkdown,
  comparisonTable,
  loadReport,
} from "./judge/compare.ts";
import { writeReport } from "./report/markdown.ts";
import { type ExperimentOutline, Progress, readTimes, writeTimes } from "./report/progress.ts";
import { terminalChart } from "./report/terminal_chart.ts";
import type { ExperimentResult, LabReport } from "./results.ts";
import {
  checksTable,
  experimentLine,
  ledgerTable,
  paramsText,
  phasesTable,
} from "./report/text.ts";

const HELP = `backlog-lab: settle claims about Linux listen() backlogs by experiment.

Usage: deno task lab [options] [experiment files or directories]

Runs every experiment in experiments/ (or those given), each in its own
network namespaces, and prints what the kernel did next to what each
experiment expected, then the claims ledger. Needs root.

Options:
  --filter RE     run only experiments whose id, file or claim ids match RE
  --list          list the experiments and the claims they decide; run nothing
  --json          print one JSON document instead of the report
  --verbose       show every check, each run's phase times and a terminal
                  chart of its queues
  --faithful      run timer experiments with the kernel's default timers (slow:
                  minutes); by default they shorten the timers they are not about
  --ledger        print only the claims ledger, every catalogue claim, running
                  the experiments that decide them
  --report DIR    also write DIR/report.md, DIR/results.json, a chart (SVG
                  and PNG) per run and a pcap per captured run
  --compare A B   compare two results.json files (two kernels or machines):
                  which claims' verdicts and which numbers differ; runs nothing
  --markdown      with --compare, print Markdown instead of a table
  --jobs N        matrix points that run at once, each in its own namespaces
                  (default ${defaultJobs()} on this machine: 4 per core, 4 to 16);
                  output keeps the experiments' order whatever N is
  --repeat N      run each experiment N times and report how often each check
                  and verdict came out the same; any flip fails the run
  --subnet CIDR   IPv4 lab subnet, a private /16 (default 10.213.0.0/16)
  --subnet6 CIDR  IPv6 lab prefix, a unique-local /48 (default fd00:213::/48)
  -h, --help      this text

Exit status: 0 all expectations held; 1 one failed; 2 bad usage or a bad
experiment definition; 3 the machine cannot run the lab; 130/143 interrupted.`;

const EXPERIMENTS_DIR = fileURLToPath(new URL("../experiments/", import.meta.url));

/** Runs the CLI; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      allowPositionals: true,
      options: {
        filter: { type: "string" },
        list: { type: "boolean" },
        json: { type: "boolean" },
        verbose: { type: "boolean" },
        faithful: { type: "boolean" },
        ledger: { type: "boolean" },
        report: { type: "string" },
        compare: { type: "boolean" },
        markdown: { type: "boolean" },
        subnet: { type: "string" },
        subnet6: { type: "string" },
        jobs: { type: "string", short: "j" },
        repeat: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : err}\nSee --help.`);
    return 2;
  }
  const { values, positionals } = flags;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.compare) return await compareCommand(positionals, values.markdown ?? false);
  if (values.markdown) {
    console.error("--markdown goes with --compare A B; for a Markdown report use --report DIR");
    return 2;
  }
  if (values.report !== undefined) {
    const problem = await prepareReportDir(values.report);
    if (problem) {
      console.error(problem);
      return 2;
    }
  }
  let jobs = defaultJobs();
  if (values.jobs !== undefined) {
    jobs = Number(values.jobs);
    if (!/^\d+$/.test(values.jobs) || jobs < 1 || jobs > MAX_JOBS) {
      console.error(
        `Invalid --jobs "${values.jobs}": give a whole number from 1 to ${MAX_JOBS}, e.g. --jobs 1 to run one matrix point at a time`,
      );
      return 2;
    }
  }
  let repeat = 1;
  if (values.repeat !== undefined) {
    repeat = Number(values.repeat);
    if (!/^\d+$/.test(values.repeat) || repeat < 1 || repeat > MAX_REPEAT) {
      console.error(
        `Invalid --repeat "${values.repeat}": give a whole number from 1 to ${MAX_REPEAT}, e.g. --repeat 20`,
      );
      return 2;
    }
  }
  let filter: RegExp | undefined;
  try {
    filter = values.filter === undefined ? undefined : new RegExp(values.filter);
  } catch {
    console.error(
      `Invalid --filter "${values.filter}": give a regular expression, e.g. --filter accept`,
    );
    return 2;
  }

  let experiments: LoadedExperiment[];
  try {
    experiments = await loadExperiments(positionals.length ? positionals : [EXPERIMENTS_DIR]);
  } catch (err) {
    if (err instanceof ExperimentDefinitionError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  if (filter) {
    experiments = experiments.filter((e) =>
      filter.test(e.definition.id) || filter.test(e.file) ||
      Object.keys(e.definition.claims).some((c) => filter.test(c))
    );
    if (experiments.length === 0) {
      console.error(`No experiment matches --filter "${values.filter}"; see --list`);
      return 2;
    }
  }
  if (values.list) {
    for (const e of experiments) {
      console.log(
        `${e.definition.id}  (${e.file})\n  ${e.definition.title}\n  claims: ${
          Object.keys(e.definition.claims).join(", ")
        }${isHistorical(e.definition) ? " (historical)" : ""}`,
      );
    }
    return 0;
  }

  const controller = new AbortController();
  let stopSignal: Deno.Signal | undefined;
  const onSignal = (sig: Deno.Signal) => () => {
    stopSignal ??= sig;
    controller.abort(new Error(`Interrupted by ${sig}`));
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  try {
    return await runAll(experiments, { ...values, jobs, repeat, args }, controller.signal);
  } catch (err) {
    if (stopSignal) {
      console.error(
        `Interrupted by ${stopSignal}; every namespace and process of this run was removed.`,
      );
      return stopSignal === "SIGINT" ? 130 : 143;
    }
    if (err instanceof PreflightError || err instanceof ExperimentDefinitionError) {
      console.error(err.message);
      return err instanceof PreflightError ? 3 : 2;
    }
    throw err;
  } finally {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  }
}

async function runAll(
  experiments: LoadedExperiment[],
  values: {
    json?: boolean;
    verbose?: boolean;
    subnet?: string;
    subnet6?: string;
    faithful?: boolean;
    ledger?: boolean;
    report?: string;
    jobs: number;
    repeat: number;
    args: string[];
  },
  signal: AbortSignal,
): Promise<number> {
  const startedAt = new Date();
  const t0 = performance.now();
  const faithful = values.faithful ?? false;
  const lastTimes = await readTimes();
  const progress = new Progress(
    experiments.map(({ definition }) => outline(definition, faithful, lastTimes)),
    { live: Deno.stderr.isTerminal() && !Deno.env.get("CI"), repeats: values.repeat },
  );
  // A failed experiment stops the others (they still clean up) before its error is thrown.
  const stop = new AbortController();
  const lab = new Lab({
    signal: AbortSignal.any([signal, stop.signal]),
    jobs: values.jobs,
    faithful,
    onProgress: (e) => progress.onEvent(e),
    ...(values.report === undefined ? {} : { reportDir: values.report }),
    ...(values.subnet === undefined ? {} : { subnet4: values.subnet }),
    ...(values.subnet6 === undefined ? {} : { subnet6: values.subnet6 }),
  });
  const log = values.json || values.ledger ? () => {} : (s: string) => {
    progress.clear();
    console.log(s);
  };
  const pre = await preflight(lab.prefix, {
    tools: neededTools(experiments),
    log: (line) => console.error(line),
  });
  checkSysctls(experiments, pre.namespaceSysctls);
  log(
    `backlog-lab on Linux ${pre.kernel}: ${experiments.length} experiment${
      experiments.length === 1 ? "" : "s"
    }, ${CLAIMS.length} claims in the catalogue, ${values.jobs} job${
      values.jobs === 1 ? "" : "s"
    } at once`,
  );
  if (pre.reaped.length) {
    log(`Removed ${pre.reaped.length} namespaces left by a dead run: ${pre.reaped.join(", ")}`);
  }
  const results: ExperimentResult[] = [];
  progress.start();
  // Every experiment is queued at once; the lab runs their points `jobs` at a time.
  const repeats = values.repeat;
  const summaries: RepeatSummary[] = [];
  const pending = experiments.map(async (
    { file, definition },
  ): Promise<{ result: ExperimentResult; summary?: RepeatSummary }> => {
    if (isHistorical(definition)) {
      const h = historicalResult(definition, file);
      return repeats === 1 ? { result: h } : merged(Array(repeats).fill(h));
    }
    const mode = planRuns(definition, { faithful })[0]?.mode ?? "default";
    const estimateMs = lastTimes[`${definition.id}:${mode}:run`];
    const each = Array.from({ length: repeats }, (_, r) =>
      lab.runExperiment(definition, {
        file,
        ...(estimateMs === undefined ? {} : { estimateMs }),
        ...(repeats === 1 ? {} : { repeat: r + 1, keepPcaps: r === 0 }),
      }));
    const settled = await Promise.allSettled(each);
    const failed = settled.find((x) => x.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const results = settled.map((x) => (x as PromiseFulfilledResult<ExperimentResult>).value);
    return repeats === 1 ? { result: results[0]! } : merged(results);
  });
  try {
    // Reported in the experiments' order, each as soon as it and those before it are done.
    for (const [index, p] of pending.entries()) {
      let result: ExperimentResult;
      try {
        const done = await p;
        result = done.result;
        if (done.summary) summaries.push(done.summary);
      } catch (err) {
        stop.abort(err);
        await Promise.allSettled(pending);
        throw err;
      }
      results.push(result);
      const { definition } = experiments[index]!;
      log(experimentLine(result));
      const table = checksTable(result, values.verbose ?? false);
      if (table) log(table);
      if (values.verbose) {
        log(phasesTable(result));
        for (const run of result.runs) {
          const chart = terminalChart(run, serverHostOf(definition));
          if (chart) {
            log(`${paramsText(run.params) || "(single run)"}\n${chart}`);
          }
        }
      }
    }
  } finally {
    progress.stop();
  }
  if (repeats > 1) {
    log(`\nRepeats (${repeats} of each experiment, ${values.jobs} jobs at once):`);
    log(repeatTable(summaries, terminalWidth()));
  }
  await writeTimes(Object.fromEntries(
    results.filter((r) => r.passed && !r.skipped && r.runs.length).flatMap((r) => [
      [`${r.id}:${r.mode}`, r.durationMs],
      [`${r.id}:${r.mode}:run`, Math.round(mean(r.runs.map((x) => x.durationMs)))],
    ]),
  ));
  const ledger = buildLedger(results, {
    all: values.json || values.ledger || values.report !== undefined || false,
    kernel: pre.kernel,
  });
  const report: LabReport = {
    version: 1,
    kernel: pre.kernel,
    machine: await machineInfo(),
    command: shellCommand(["deno", "task", "lab", ...values.args]),
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    passed: results.every((r) => r.passed),
    experiments: results,
    ledger,
  };
  let reportLine: string | undefined;
  if (values.report !== undefined) {
    const files = await writeReport(values.report, report, {
      serverHosts: Object.fromEntries(
        experiments.map(({ definition }) => [definition.id, serverHostOf(definition)]),
      ),
    });
    const charts = files.charts.length / 2;
    const pcaps = files.pcaps.length;
    reportLine = `Report: ${join(values.report, files.markdown)} (${charts} chart${
      charts === 1 ? "" : "s"
    }, ${pcaps} pcap${pcaps === 1 ? "" : "s"})`;
    if (values.json) console.error(reportLine);
  }
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else if (values.ledger) {
    console.log(`Claims ledger (Linux ${pre.kernel}):`);
    console.log(ledgerTable(ledger, terminalWidth()));
    const failed = results.filter((r) => !r.passed).map((r) => r.id);
    if (failed.length) console.log(`Failed experiments: ${failed.join(", ")}`);
    if (reportLine) console.log(reportLine);
  } else {
    log(`\nClaims ledger (Linux ${pre.kernel}):`);
    log(ledgerTable(ledger.filter((l) => l.experiments.length > 0), terminalWidth()));
    const failed = results.filter((r) => !r.passed).length;
    log(
      `\n${results.length - failed} passed, ${failed} failed in ${
        (report.durationMs / 1000).toFixed(2)
      } s`,
    );
    if (reportLine) log(reportLine);
  }
  return report.passed ? 0 : 1;
}

/** The optional tools the selected experiments need: nft for packet rules, tcpdump for captures. */
function neededTools(experiments: readonly LoadedExperiment[]): ToolNeed[] {
  const defs = experiments.map((e) => e.definition).filter((d) => !isHistorical(d));
  const needs: ToolNeed[] = [];
  if (defs.some((d) => !isHistorical(d) && Object.keys(d.rules ?? {}).length)) needs.push(NFT);
  if (defs.some((d) => !isHistorical(d) && (d.capture ?? []).length)) needs.push(TCPDUMP);
  return needs;
}

/** The progress display's view of an experiment: its runs, last time and window bound. */
function outline(
  definition: LoadedExperiment["definition"],
  faithful: boolean,
  lastTimes: Record<string, number>,
): ExperimentOutline {
  if (isHistorical(definition)) return { id: definition.id, runs: 0, boundMs: 0 };
  const plans = planRuns(definition, { faithful });
  const mode = plans[0]?.mode ?? "default";
  const last = lastTimes[`${definition.id}:${mode}`];
  return {
    id: definition.id,
    runs: plans.length,
    boundMs: plans.reduce((ms, p) => ms + p.observe.windowMs + RUN_OVERHEAD_MS, 0),
    ...(typeof last === "number" ? { lastMs: last } : {}),
  };
}

function serverHostOf(definition: LoadedExperiment["definition"]): string {
  return isHistorical(definition) ? "server" : definition.server.host;
}

/** The most repeats `--repeat` takes. */
const MAX_REPEAT = 1000;

/** The result the report carries for an experiment's repeats, and how they compared. */
function merged(results: ExperimentResult[]): { result: ExperimentResult; summary: RepeatSummary } {
  return { result: mergeRepeats(results), summary: summarizeRepeats(results) };
}

/** The most concurrent matrix points `--jobs` takes. */
const MAX_JOBS = 64;

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** A matrix point's time outside its observation window, for the progress bound. */
const RUN_OVERHEAD_MS = 300;

/**
 * Checks that `dir` can hold a report: a new or empty directory, or one
 * holding a previous report, whose files (and only those) are removed so old
 * charts and pcaps cannot sit beside new ones. Anything else is refused rather
 * than overwritten.
 */
async function prepareReportDir(dir: string): Promise<string | undefined> {
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
  const ours = ["charts", "pcaps", "report.md", "results.json"];
  if (entries.length && !(await isPreviousReport(join(dir, "results.json")))) {
    return `Cannot write the report to "${dir}": it is not empty and holds no earlier backlog-lab report; give a new or empty directory`;
  }
  const foreign = entries.filter((e) => !ours.includes(e));
  try {
    await Deno.mkdir(dir, { recursive: true });
    for (const old of entries.filter((e) => ours.includes(e))) {
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

/** `--compare A B`: prints what differs between two results files. */
async function compareCommand(paths: string[], markdown: boolean): Promise<number> {
  if (paths.length !== 2) {
    console.error(
      `--compare takes two results.json files, got ${paths.length}: deno task lab --compare A/results.json B/results.json`,
    );
    return 2;
  }
  try {
    // One after the other, so that the error names the first bad file in the
    // order given, not whichever read failed first.
    const a = await loadReport(paths[0]!);
    const b = await loadReport(paths[1]!);
    const comparison = compareReports(a, b, { sources: [paths[0]!, paths[1]!] });
    console.log(
      markdown ? comparisonMarkdown(comparison) : comparisonTable(comparison, terminalWidth()),
    );
    return 0;
  } catch (err) {
    if (err instanceof CompareInputError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
}

function terminalWidth(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 120;
  }
}
