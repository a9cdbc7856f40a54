/**
 * A lab run on this machine's kernel, as the command line shows it: the
 * progress while it runs, each experiment once it is done, the ledger at the
 * end, and the report directory.
 * @module
 */
import { join } from "node:path";
import { paramsText, plural, seconds } from "../base/format.ts";
import { CLAIMS } from "../describe/catalogue.ts";
import type { LoadedLab } from "../describe/load.ts";
import { overrideText } from "../describe/plan.ts";
import { ReportWriteError, writeReport } from "../report/directory.ts";
import { sudoOwner } from "../base/owner.ts";
import { Progress } from "../report/progress.ts";
import { terminalChart } from "../report/terminal_chart.ts";
import {
  checksTable,
  clientsTable,
  experimentLine,
  ledgerTable,
  observedTable,
  ownClaimsTable,
  phasesTable,
  repeatTable,
} from "../report/text.ts";
import type { LabEvent } from "../results.ts";
import { shellCommand } from "../observe/machine.ts";
import { Lab, type LabRun } from "../run/lab.ts";

/** The flags a lab run takes. */
export interface RunFlags {
  json?: boolean;
  verbose?: boolean;
  subnet?: string;
  subnet6?: string;
  faithful?: boolean;
  ledger?: boolean;
  report?: string;
  "no-charts"?: boolean;
  jobs: number;
  /** Whether `--jobs` was given (a guest then takes it as is). */
  jobsGiven: boolean;
  repeat: number;
  args: string[];
  /**
   * Within a `--kernel` run: called with the run before the lab is disposed
   * (its captures removed); nothing else is printed or written after the
   * experiments (the matrix does it).
   */
  onRun?: (run: LabRun) => Promise<void>;
}

export async function runAll(
  loaded: LoadedLab,
  flags: RunFlags,
  signal: AbortSignal,
): Promise<number> {
  const { experiments, claims } = loaded;
  const inMatrix = flags.onRun !== undefined;
  const quiet = (flags.json || flags.ledger) && !inMatrix;
  let progress: Progress | undefined;
  const log = (s: string) => {
    if (quiet) return;
    progress?.clear();
    // In a --kernel run with --json, stdout holds only the matrix's document.
    if (inMatrix && flags.json) console.error(s);
    else console.log(s);
  };
  let waited = false;
  const onEvent = (e: LabEvent) => {
    switch (e.kind) {
      case "start":
        log(
          `backlog-lab on Linux ${e.kernel}: ${
            plural(experiments.length, "experiment")
          }, ${CLAIMS.length} claims in the catalogue${
            claims.length ? ` and ${claims.length} of your own` : ""
          }, ${plural(e.jobs, "job")} at once`,
        );
        for (const x of experiments) {
          if ("overrides" in x && x.overrides) {
            log(
              `What-if: ${x.definition.id} runs with --set ${
                overrideText(x.overrides)
              } instead of its own matrix`,
            );
          }
        }
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
      ledger: flags.json || flags.ledger || flags.report !== undefined || inMatrix
        ? "all"
        : "decided",
      command: shellCommand(["deno", "task", "lab", ...flags.args]),
      claims,
    });
  } finally {
    progress?.stop();
  }
  const { report } = run;
  if (flags.onRun) {
    // The matrix prints, reports and disposes the lab's captures after it copied them.
    await flags.onRun(run);
    return report.passed ? 0 : 1;
  }
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
        charts: !flags["no-charts"],
      });
      reportLine = `Report: ${join(flags.report, files.markdown)} (${
        plural(files.charts.length / 2, "chart")
      }, ${plural(files.pcaps.length, "pcap")})`;
    } catch (err) {
      if (!(err instanceof ReportWriteError)) throw err;
      reportError = err.message;
    }
  };
  const catalogue = report.ledger.filter((l) => l.source === undefined && !l.claim.includes(":"));
  const own = report.ledger.filter((l) => !catalogue.includes(l));
  if (flags.json) {
    await writeReportDir();
    if (reportLine) console.error(reportLine);
    console.log(JSON.stringify(report, null, 2));
  } else if (flags.ledger) {
    console.log(`Claims ledger (Linux ${report.kernel}):`);
    console.log(ledgerTable(catalogue, terminalWidth()));
    if (own.length) {
      console.log(`\nClaims of your own (Linux ${report.kernel}):`);
      console.log(ownClaimsTable(own, terminalWidth()));
    }
    const failed = report.experiments.filter((r) => !r.passed);
    if (failed.length) {
      console.log(`\nFailed experiments (${failed.length}):`);
      for (const e of failed) printExperiment(e, false, (s) => console.log(s));
    }
    await writeReportDir();
    if (reportLine) console.log(reportLine);
  } else {
    const decided = catalogue.filter((l) => l.experiments.length > 0);
    if (decided.length) {
      log(`\nClaims ledger (Linux ${report.kernel}):`);
      log(ledgerTable(decided, terminalWidth()));
    }
    if (own.length) {
      log(`\nClaims of your own (Linux ${report.kernel}):`);
      log(ownClaimsTable(own, terminalWidth()));
    }
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
  result: import("../results.ts").ExperimentResult,
  verbose: boolean,
  log: (s: string) => void,
): void {
  log(experimentLine(result));
  const table = checksTable(result, verbose, terminalWidth());
  if (table) log(table);
  if (Object.keys(result.claims).length === 0 && !result.skipped) {
    const observed = observedTable(result, terminalWidth());
    if (observed) log(`Observed (each metric's last and highest value):\n${observed}`);
  }
  if (!verbose) return;
  log(phasesTable(result));
  const clients = clientsTable(result, terminalWidth());
  if (clients) log(clients);
  for (const run of result.runs) {
    const chart = terminalChart(run, run.server.host);
    if (chart) log(`${paramsText(run.params) || "(single run)"}\n${chart}`);
  }
}

/** The terminal's width, or 120 where there is no terminal. */
export function terminalWidth(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 120;
  }
}
