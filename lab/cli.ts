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
import { join, relative, resolve } from "node:path";
import { ExperimentDefinitionError, PreflightError } from "./base/errors.ts";
import { didYouMean } from "./base/suggest.ts";
import { parseSubnet } from "./topology/addressing.ts";
import { paramsText, plural, seconds } from "./base/format.ts";
import { CLAIMS } from "./describe/catalogue.ts";
import { isHistorical } from "./describe/historical.ts";
import { checkFiles } from "./describe/check.ts";
import { type LoadedLab, loadLab } from "./describe/load.ts";
import { overrideText } from "./describe/plan.ts";
import { writeScaffold } from "./describe/scaffold.ts";
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
  observedTable,
  ownClaimsTable,
  phasesTable,
  repeatTable,
} from "./report/text.ts";
import type { LabEvent } from "./results.ts";
import { shellCommand } from "./observe/machine.ts";
import { Lab, type LabRun } from "./run/lab.ts";
import { defaultJobs } from "./run/scheduler.ts";
import { kernelsCommand, parseKernelSpecs, runKernels } from "./kernel/command.ts";
import { stopAllVms } from "./kernel/vm.ts";

const HELP = `backlog-lab: settle claims about Linux listen() backlogs by experiment.

Usage: deno task lab [options] [experiment files or directories]
       deno task lab --check [options] [paths]   check files without root
       deno task lab new <id> [--dir DIR]         write a first experiment
       deno task lab kernels [--offline]          kernels cached and offered

Runs every experiment in experiments/ (or those given), each in its own
network namespaces, and prints what the kernel did next to what each
experiment expected, then the claims ledger. Needs root.

With --kernel, runs them on other Linux kernels too, each booted in a small
QEMU VM (KVM when it works, else emulated), and prints the claims × kernels
ledger.

Options:
  --kernel SPEC   run on this kernel (repeatable, or a comma list): host (this
                  machine's, the default), a Debian series 5.10, 6.1, 6.12 or
                  sid, 5.10@bullseye (one suite), an exact Debian kernel
                  (5.10.0-32, 6.1.192-2), a linux-image .deb, or a directory
                  with vmlinuz and lib/modules/<release>
  --offline       with --kernel or kernels: use only the kernel cache
  --check         type-check and validate experiment and claims files and plan
                  every matrix point (default and faithful), as any user;
                  print every problem at once; run nothing
  --claims FILE   a claims file of your own (Markdown or a defineClaims
                  module) whose <prefix>:<name> claims experiments may decide;
                  repeatable
  --set N=V[,V…]  what-if: run matrix parameter N with these values instead
                  of the experiment's own (e.g. --set backlog=0,1000); applies
                  to the selected experiments that have N; repeatable
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
  --no-charts     with --report, draw no charts (faster)
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

Exit status: 0 all expectations held (--check: no problem); 1 one failed;
2 bad usage or a bad experiment or claims definition; 3 the machine cannot run
the lab; 4 all held but the --report directory could not be written;
129/130/131/143 interrupted by SIGHUP/SIGINT/SIGQUIT/SIGTERM (after removing
everything).`;

const NEW_HELP = `Usage: deno task lab new <id> [--dir DIR]

Writes experiments/<id as snake_case>.ts (or DIR/…): a commented experiment
that passes --check and runs as it is, to start a question of your own from.
It never overwrites a file.`;

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
  check: { type: "boolean" },
  claims: { type: "string", multiple: true },
  set: { type: "string", multiple: true },
  kernel: { type: "string", multiple: true },
  offline: { type: "boolean" },
  "no-charts": { type: "boolean" },
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
  if (args[0] === "new") return await newCommand(args.slice(1));
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
  if (positionals[0] === "kernels") {
    if (positionals.length > 1) {
      console.error(`"kernels" takes no arguments, got ${positionals.slice(1).join(" ")}`);
      return 2;
    }
    return await kernelsCommand({ offline: values.offline ?? false });
  }
  let kernels: string[];
  try {
    kernels = parseKernelSpecs(values.kernel ?? []);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }
  const matrix = kernels.length > 0 && !(kernels.length === 1 && kernels[0] === "host");
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
  const set = parseSet(values.set ?? []);
  if (typeof set === "string") {
    console.error(set);
    return 2;
  }
  const claimsFiles = values.claims ?? [];
  const paths = positionals.length ? positionals : [EXPERIMENTS_DIR];
  if (values.check) {
    return await checkCommand(positionals, {
      claimsFiles,
      set,
      ...(values.faithful ? { faithful: true } : {}),
    });
  }

  // A claim id matches whole: --filter A4.1 is claim A4.1, not A4.10 too.
  const claimFilter = filter && new RegExp(`^(?:${filter.source})$`);
  let loaded: LoadedLab;
  try {
    loaded = await loadLab(paths, {
      faithful: values.faithful ?? false,
      claimsFiles,
      set,
      ...(filter
        ? {
          filter: ({ definition, file }) =>
            filter.test(definition.id) || filter.test(file) ||
            Object.keys(definition.claims ?? {}).some((c) => claimFilter!.test(c)),
        }
        : {}),
    });
  } catch (err) {
    if (err instanceof ExperimentDefinitionError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const { experiments } = loaded;
  if (filter && experiments.length === 0) {
    console.error(`No experiment matches --filter "${values.filter}"; see --list`);
    return 2;
  }
  if (values.list) {
    for (const e of experiments) {
      const claims = Object.keys(e.definition.claims ?? {});
      console.log(
        `${e.definition.id}  (${e.file})\n  ${e.definition.title}\n  claims: ${
          claims.length ? claims.join(", ") : "none (exploratory: it prints what it observed)"
        }${isHistorical(e.definition) ? " (historical)" : ""}`,
      );
    }
    if (loaded.claims.length) {
      console.log(`claims of your own: ${loaded.claims.map((c) => c.id).join(", ")}`);
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
  const runFlags = { ...values, jobs, jobsGiven: values.jobs !== undefined, repeat, args };
  try {
    if (!matrix) return await runAll(loaded, runFlags, controller.signal);
    return await runKernels({
      kernels,
      experiments,
      flags: {
        ...runFlags,
        paths: positionals.map((p) => resolve(p)),
        offline: values.offline ?? false,
        noCharts: values["no-charts"] ?? false,
      },
      signal: controller.signal,
      runHost: (opts) => runAll(loaded, { ...runFlags, ...opts }, controller.signal),
      terminalWidth: terminalWidth(),
    });
  } catch (err) {
    if (stopSignal) {
      await stopAllVms();
      // After SIGHUP the terminal may be gone: the exit status still says what happened.
      tryWrite(
        `Interrupted by ${stopSignal}; every ${
          matrix ? "namespace, process and VM" : "namespace and process"
        } of this run was removed.`,
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

async function runAll(
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
  result: import("./results.ts").ExperimentResult,
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

/**
 * `--set name=value[,value…]` flags as what-ifs, or the message saying what is
 * wrong with one. Values are text; planning reads each as its parameter's type.
 */
export function parseSet(flags: readonly string[]): Record<string, string[]> | string {
  const set: Record<string, string[]> = {};
  for (const flag of flags) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(flag);
    const values = m?.[2]?.split(",").map((v) => v.trim());
    if (!m || !values || values.some((v) => v === "")) {
      return `Invalid --set "${flag}": give a matrix parameter and its values, e.g. --set backlog=0,1000`;
    }
    if (m[1]! in set) {
      return `Invalid --set "${flag}": ${
        m[1]
      } is set twice; give all its values at once, e.g. --set ${m[1]}=${
        [...set[m[1]!]!, ...values].join(",")
      }`;
    }
    set[m[1]!] = values;
  }
  return set;
}

/** `--check`: prints every problem of the files (or that they are fine); 0 or 2. */
async function checkCommand(
  paths: readonly string[],
  options: { claimsFiles: string[]; set: Record<string, string[]>; faithful?: boolean },
): Promise<number> {
  const t0 = performance.now();
  const r = await checkFiles(paths.length ? paths : [EXPERIMENTS_DIR], options);
  for (const p of r.problems) {
    console.error(p.source ? `${p.message}\n    ${p.source}` : p.message);
  }
  const what = `${plural(r.files.length, "file")}: ${plural(r.experiments, "experiment")}, ${
    plural(r.points, "matrix point")
  } planned (faithful matrices too), ${plural(r.claims, "claim")} of your own`;
  if (r.problems.length) {
    console.error(
      `\n${plural(r.problems.length, "problem")} in ${what}. Fix them and run --check again.`,
    );
    return 2;
  }
  console.log(
    `Checked ${what} in ${seconds(performance.now() - t0)}: no problems. ` +
      `Run ${r.experiments === 1 ? "it" : "them"} as root: ${
        shellCommand(["sudo", "deno", "task", "lab", ...paths, ...claimsArgs(options.claimsFiles)])
      }`,
  );
  return 0;
}

function claimsArgs(files: readonly string[]): string[] {
  return files.flatMap((f) => ["--claims", f]);
}

/** `new <id>`: writes a first experiment; 0, or 2 for a bad id or an existing file. */
async function newCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { dir: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : err}\n${NEW_HELP}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(NEW_HELP);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    console.error(`${NEW_HELP}\n\nGive one id, e.g. deno task lab new my-first-question`);
    return 2;
  }
  const id = parsed.positionals[0]!;
  try {
    const path = await writeScaffold(
      id,
      parsed.values.dir === undefined ? {} : {
        dir: parsed.values.dir,
      },
    );
    const file = relative(Deno.cwd(), path) || path;
    console.log(
      `Wrote ${file}: an exploratory experiment to make your own (its comments say how).\n` +
        `Check it (no root needed): deno task lab --check ${file}\n` +
        `Run it (as root):          sudo deno task lab ${file}`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ExperimentDefinitionError) {
      console.error(`Cannot write experiment "${id}": ${err.detail}`);
      return 2;
    }
    throw err;
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
