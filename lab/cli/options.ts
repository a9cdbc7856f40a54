/**
 * The command line's words: its help, its options, and the validation of
 * their values into the settings of a run (a bad value is a message that
 * names the option and a fix, never a run).
 * @module
 */
import { fileURLToPath } from "node:url";
import { didYouMean } from "../base/suggest.ts";
import { parseSubnet } from "../topology/addressing.ts";
import { defaultJobs } from "../run/scheduler.ts";

export const HELP = `backlog-lab: settle claims about Linux listen() backlogs by experiment.

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

export const NEW_HELP = `Usage: deno task lab new <id> [--dir DIR]

Writes experiments/<id as snake_case>.ts (or DIR/…): a commented experiment
that passes --check and runs as it is, to start a question of your own from.
It never overwrites a file.`;

/** The built-in experiments, run when no path is given. */
export const EXPERIMENTS_DIR = fileURLToPath(new URL("../../experiments", import.meta.url));

/** The command line's options (`node:util` `parseArgs`). */
export const OPTIONS = {
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
/** The most repeats `--repeat` takes. */
const MAX_REPEAT = 1000;

/** The most concurrent matrix points `--jobs` takes. */
const MAX_JOBS = 64;

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

/** The option values `parseArgs` gives for {@linkcode OPTIONS}. */
export type OptionValues = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { type: "boolean" } ? boolean
    : (typeof OPTIONS)[K] extends { multiple: true } ? readonly string[]
    : string;
};

/** A run's settings from its options, each validated. */
export interface RunSettings {
  jobs: number;
  repeat: number;
  filter?: RegExp;
  set: Record<string, string[]>;
}

/**
 * Validates the options a run takes (`--jobs`, `--repeat`, `--subnet`,
 * `--subnet6`, `--filter`, `--set`) into its settings, or says what is wrong
 * with the first bad one and how to fix it.
 */
export function runSettings(values: OptionValues): RunSettings | string {
  let jobs = defaultJobs();
  if (values.jobs !== undefined) {
    jobs = Number(values.jobs);
    if (!/^\d+$/.test(values.jobs) || jobs < 1 || jobs > MAX_JOBS) {
      return `Invalid --jobs "${values.jobs}": give a whole number from 1 to ${MAX_JOBS}, e.g. --jobs 1 to run one matrix point at a time`;
    }
  }
  let repeat = 1;
  if (values.repeat !== undefined) {
    repeat = Number(values.repeat);
    if (!/^\d+$/.test(values.repeat) || repeat < 1 || repeat > MAX_REPEAT) {
      return `Invalid --repeat "${values.repeat}": give a whole number from 1 to ${MAX_REPEAT}, e.g. --repeat 20`;
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
      return `Invalid ${flag} "${value}": ${
        (err as Error).message.replace(/^Cannot use lab (subnet|prefix) "[^"]*": /, "")
      }`;
    }
  }
  let filter: RegExp | undefined;
  try {
    filter = values.filter === undefined ? undefined : new RegExp(values.filter);
  } catch {
    return `Invalid --filter "${values.filter}": give a regular expression, e.g. --filter accept`;
  }
  const set = parseSet(values.set ?? []);
  if (typeof set === "string") return set;
  return { jobs, repeat, ...(filter ? { filter } : {}), set };
}
