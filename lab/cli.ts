/**
 * `deno task lab`: a thin shell over the library. It parses flags, loads
 * (and plans) the experiments, runs them with {@linkcode Lab.run}, prints
 * what the lab reports as it goes and the ledger at the end, writes the
 * report directory, and turns SIGINT, SIGTERM, SIGHUP and SIGQUIT into an
 * abort that still removes everything.
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { ExperimentDefinitionError, PreflightError } from "./base/errors.ts";
import { isHistorical } from "./describe/historical.ts";
import { type LoadedLab, loadLab } from "./describe/load.ts";
import { kernelsCommand, parseKernelSpecs, runKernels } from "./kernel/command.ts";
import { stopAllVms } from "./kernel/vm.ts";
import { prepareReportDir } from "./report/directory.ts";
import { checkCommand, compareCommand, newCommand } from "./cli/commands.ts";
import { EXPERIMENTS_DIR, HELP, OPTIONS, runSettings, usageProblem } from "./cli/options.ts";
import { runAll, terminalWidth } from "./cli/run.ts";

export { parseSet } from "./cli/options.ts";

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
  const settings = runSettings(values);
  if (typeof settings === "string") {
    console.error(settings);
    return 2;
  }
  const { jobs, repeat, filter, set } = settings;
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
