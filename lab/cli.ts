/**
 * `deno task lab`: a thin shell over the library. It parses flags, loads
 * (and plans) the experiments, runs them with {@linkcode Lab.run}, prints
 * what the lab reports as it goes and the ledger at the end, writes the
 * report directory, and turns SIGINT, SIGTERM, SIGHUP and SIGQUIT into an
 * abort that still removes everything.
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { ExperimentDefinitionError, PreflightError } from "./base/errors.ts";
import { didYouMean } from "./base/suggest.ts";
import { parseSubnet } from "./topology/addressing.ts";
import { paramsText, plural, seconds } from "./base/format.ts";
import { CLAIMS } from "./describe/catalogue.ts";
import { isHistorical } from "./describe/historical.ts";
import { type LoadedExperiment, loadExperiments } from "./describe/load.ts";
import { compareReports } from "./judge/compare.ts";
import { CompareInputError, loadReport } from "./judge/load_report.ts";
import { comparisonMarkdown, comparisonTable } from "./report/compare_text.ts";
import { prepareReportDir, ReportWriteError, writeReport } from "./report/directory.ts";
import { sudoOwner } from "./base/owner.ts";
import { Progress } from "./report/progress.ts";
import { terminalChart } from "./report/terminal_chart.ts";
import {
  checksTable,
  clientsTable,
  experimentLine,
  ledgerTable,
  phasesTable,
  repeatTable,
} from "./report/text.ts";
import type { LabEvent } from "./results.ts";
import { shellCommand } from "./observe/machine.ts";
import { Lab } from "./run/lab.ts";
import { defaultJobs } from "./run/scheduler.ts";

const HELP = `backlog-lab: settle claims about Linux listen() backlogs by experiment.

Usage: deno task lab [options] [experiment files or directories]

Runs every experiment in experiments/ (or those given), each in its own
network namespaces, and prints what the kernel did next to what each
experiment expected, then the claims ledger. Needs root.

Options:
  --filter RE     run only experiments whose id or file matches RE, or one of
                  whose claim ids RE matches whole (--filter A4.1: claim A4.1)
  --list          list the experiments and the claims they decide; run nothing
  --json          print one JSON document instead of the report
  --verbose       show every check, each run's phase times and a terminal
                  chart of its queues
  --faithful      run timer experiments with the kernel's default timers and
                  load experiments at full length (slow: minutes); by default
                  they shorten the timers they are not about, or the load
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
experiment definition; 3 the machine cannot run the lab; 4 all held but the
--report directory could not be written; 129/130/131/143 interrupted by
SIGHUP/SIGINT/SIGQUIT/SIGTERM (after removing everything).`;

const EXPERIMENTS_DIR = fileURLToPath(new URL("../experiments", import.meta.url));

/** The command line's options (`node:util` `parseArgs`). */
const OPTIONS = {
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
} as const;

/**
 * A `parseArgs` error in the lab's words, with a did-you-mean for a
 * misspelled option: Node's own message quotes the option unevenly and
 * suggests nothing.
 */
export function usageProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
  if (unknown !== undefined) {
    const name = unknown.replace(/^-+/, "").split("=")[0]!;
    const hint = didYouMean(name, Object.keys(OPTIONS)).replace(/"([^"]+)"/, '"--$1"');
    return `Unknown option "${unknown}"${hint}`;
  }
  const missing = /^Option '([^']+?)(?: <value>)?' argument missing/.exec(message)?.[1];
  if (missing !== undefined) return `Option "${missing.split(",").at(-1)!.trim()}" needs a value`;
  const positional = /^Option '([^']+)' does not take an argument/.exec(message)?.[1];
  if (positional !== undefined) {
    return `Option "${positional.split(",").at(-1)!.trim()}" takes no value`;
  }
  return message.split("\n")[0]!.replace(/\.$/, "");
}

/** Runs the CLI; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    const problem = usageProblem(err);
    console.error(`${problem}${problem.endsWith("?") ? "" : "."} See --help.`);
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
  for (
    const [flag, value, family] of [["--subnet", values.subnet, 4], [
      "--subnet6",
      values.subnet6,
      6,
    ]] as const
  ) {
    if (value === undefined) continue;
    try {
      parseSubnet(value, family);
    } catch (err) {
      console.error(
        `Invalid ${flag} "${value}": ${
          (err as Error).message.replace(/^Cannot use lab (subnet|prefix) "[^"]*": /, "")
        }`,
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
    experiments = await loadExperiments(positionals.length ? positionals : [EXPERIMENTS_DIR], {
      faithful: values.faithful ?? false,
    });
  } catch (err) {
    if (err instanceof ExperimentDefinitionError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  if (filter) {
    // A claim id matches whole: --filter A4.1 is claim A4.1, not A4.10 too.
    const claim = new RegExp(`^(?:${filter.source})$`);
    experiments = experiments.filter((e) =>
      filter.test(e.definition.id) || filter.test(e.file) ||
      Object.keys(e.definition.claims).some((c) => claim.test(c))
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
  let stopSignal: StopSignal | undefined;
  const onSignal = (sig: StopSignal) => () => {
    stopSignal ??= sig;
    controller.abort(new Error(`Interrupted by ${sig}`));
  };
  const handlers = STOP_SIGNALS.map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  try {
    return await runAll(experiments, { ...values, jobs, repeat, args }, controller.signal);
  } catch (err) {
    if (stopSignal) {
      // After SIGHUP the terminal may be gone: the exit status still says what happened.
      tryWrite(
        `Interrupted by ${stopSignal}; every namespace and process of this run was removed.`,
      );
      return 128 + SIGNAL_NUMBERS[stopSignal];
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

/**
 * The signals that stop a run, each like the others: the run is aborted,
 * everything it made is removed, and the exit status is 128 + the signal's
 * number. SIGHUP is a closed terminal or a dropped ssh session.
 */
const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;
type StopSignal = (typeof STOP_SIGNALS)[number];
const SIGNAL_NUMBERS: Record<StopSignal, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGTERM: 15,
};

/** Writes a line to stderr, or nothing when it is closed (a hung-up terminal). */
function tryWrite(line: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
  } catch { /* nowhere to write */ }
}

interface RunFlags {
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
}

async function runAll(
  experiments: readonly LoadedExperiment[],
  flags: RunFlags,
  signal: AbortSignal,
): Promise<number> {
  const quiet = flags.json || flags.ledger;
  let progress: Progress | undefined;
  const log = (s: string) => {
    if (quiet) return;
    progress?.clear();
    console.log(s);
  };
  let waited = false;
  const onEvent = (e: LabEvent) => {
    switch (e.kind) {
      case "start":
        log(
          `backlog-lab on Linux ${e.kernel}: ${
            plural(experiments.length, "experiment")
          }, ${CLAIMS.length} claims in the catalogue, ${plural(e.jobs, "job")} at once`,
        );
        if (e.reaped.length) {
          log(`Removed ${e.reaped.length} namespaces left by a dead run: ${e.reaped.join(", ")}`);
        }
        for (const line of e.leftAlone ?? []) log(`Left alone: ${line}`);
        progress = new Progress(e.outlines, {
          live: Deno.stderr.isTerminal() && !Deno.env.get("CI"),
          repeats: e.repeats,
        });
        progress.start();
        return;
      case "run-start":
      case "run-end":
        progress?.onEvent(e);
        return;
      case "waiting":
        // Once: other labs on the machine hold it; the points start as they finish.
        if (!waited) {
          waited = true;
          progress?.clear();
          console.error(`Waiting for other labs on this machine: ${e.why}`);
        }
        return;
      case "experiment":
        printExperiment(e.result, flags.verbose ?? false, log);
    }
  };
  await using lab = new Lab({
    signal,
    jobs: flags.jobs,
    faithful: flags.faithful ?? false,
    keepCaptures: flags.report !== undefined,
    onEvent,
    log: (line) => console.error(line),
    ...(flags.subnet === undefined ? {} : { subnet4: flags.subnet }),
    ...(flags.subnet6 === undefined ? {} : { subnet6: flags.subnet6 }),
  });
  let run;
  try {
    run = await lab.run(experiments, {
      repeat: flags.repeat,
      ledger: flags.json || flags.ledger || flags.report !== undefined ? "all" : "decided",
      command: shellCommand(["deno", "task", "lab", ...flags.args]),
    });
  } finally {
    progress?.stop();
  }
  const { report } = run;
  if (flags.repeat > 1) {
    log(`\nRepeats (${flags.repeat} of each experiment, ${flags.jobs} jobs at once):`);
    log(repeatTable(run.repeats, terminalWidth()));
  }
  // The report is written once the results are shown, so that a report that cannot be written
  // loses nothing; with --json before, so that the document printed is results.json (chart paths
  // included).
  let reportLine: string | undefined;
  let reportError: string | undefined;
  const writeReportDir = async () => {
    if (flags.report === undefined) return;
    try {
      const owner = sudoOwner();
      const files = await writeReport(flags.report, run, {
        registerTemp: (path) => lab.addTempPath(path),
        ...(owner ? { owner } : {}),
      });
      reportLine = `Report: ${join(flags.report, files.markdown)} (${
        plural(files.charts.length / 2, "chart")
      }, ${plural(files.pcaps.length, "pcap")})`;
    } catch (err) {
      if (!(err instanceof ReportWriteError)) throw err;
      reportError = err.message;
    }
  };
  if (flags.json) {
    await writeReportDir();
    if (reportLine) console.error(reportLine);
    console.log(JSON.stringify(report, null, 2));
  } else if (flags.ledger) {
    console.log(`Claims ledger (Linux ${report.kernel}):`);
    console.log(ledgerTable(report.ledger, terminalWidth()));
    const failed = report.experiments.filter((r) => !r.passed);
    if (failed.length) {
      console.log(`\nFailed experiments (${failed.length}):`);
      for (const e of failed) printExperiment(e, false, (s) => console.log(s));
    }
    await writeReportDir();
    if (reportLine) console.log(reportLine);
  } else {
    log(`\nClaims ledger (Linux ${report.kernel}):`);
    log(ledgerTable(report.ledger.filter((l) => l.experiments.length > 0), terminalWidth()));
    const failed = report.experiments.filter((r) => !r.passed).length;
    log(
      `\n${report.experiments.length - failed} passed, ${failed} failed in ${
        seconds(report.durationMs)
      }`,
    );
    await writeReportDir();
    if (reportLine) log(reportLine);
  }
  if (reportError !== undefined) {
    console.error(reportError);
    return report.passed ? EXIT_REPORT : 1;
  }
  return report.passed ? 0 : 1;
}

/** The exit status when every expectation held but the report could not be written. */
const EXIT_REPORT = 4;

/** An experiment's line, its failed checks (every check with `verbose`), phases and charts. */
function printExperiment(
  result: import("./results.ts").ExperimentResult,
  verbose: boolean,
  log: (s: string) => void,
): void {
  log(experimentLine(result));
  const table = checksTable(result, verbose, terminalWidth());
  if (table) log(table);
  if (!verbose) return;
  log(phasesTable(result));
  const clients = clientsTable(result, terminalWidth());
  if (clients) log(clients);
  for (const run of result.runs) {
    const chart = terminalChart(run, run.server.host);
    if (chart) log(`${paramsText(run.params) || "(single run)"}\n${chart}`);
  }
}

/** The most repeats `--repeat` takes. */
const MAX_REPEAT = 1000;

/** The most concurrent matrix points `--jobs` takes. */
const MAX_JOBS = 64;

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
