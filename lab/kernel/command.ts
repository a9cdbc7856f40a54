/**
 * The command line of kernels: `deno task lab --kernel SPEC …` (the same
 * experiments on several kernels, with the claims × kernels ledger) and
 * `deno task lab kernels` (what is cached and what the archive offers). The
 * CLI (`lab/cli.ts`) hands over here once it has parsed the flags and loaded
 * the experiments; the host kernel's run stays the CLI's own (`runHost`).
 * @module
 */
import { join } from "node:path";
import { plural } from "../base/format.ts";
import { CLAIMS } from "../describe/catalogue.ts";
import type { LoadedExperiment } from "../describe/load.ts";
import { kernelMatrixReport } from "../judge/kernel_ledger.ts";
import { machineInfo, shellCommand } from "../observe/machine.ts";
import { writeKernelReport } from "../report/kernel_report.ts";
import {
  kernelChanges,
  kernelDifferences,
  kernelLedgerTable,
  kernelSummaryLine,
  longDuration,
} from "../report/kernel_text.ts";
import {
  type CaptureFile,
  ReportWriteError,
  stagedReport,
  writeReport,
} from "../report/directory.ts";
import { sudoOwner } from "../base/owner.ts";
import { RunRecord } from "../base/run_record.ts";
import { checksTable, experimentLine } from "../report/text.ts";
import type { KernelRun, LabReport } from "../results.ts";
import type { LabRun } from "../run/lab.ts";
import { listKernels } from "./cache.ts";
import { KernelSpecError } from "./errors.ts";
import {
  defaultParallelKernels,
  KernelMatrix,
  type KernelMatrixEvent,
  type KernelOutcome,
} from "./matrix.ts";

/**
 * The `--kernel` values as a list of specs: each value may be a comma list;
 * `host` at most once.
 *
 * @throws {KernelSpecError} for an empty spec or `host` twice.
 */
export function parseKernelSpecs(values: readonly string[]): string[] {
  const specs = values.flatMap((v) => v.split(",")).map((s) => s.trim());
  const empty = specs.findIndex((s) => s === "");
  if (empty >= 0) {
    throw new KernelSpecError(
      "",
      `Invalid --kernel "${
        values.join(",")
      }": an empty kernel spec; give e.g. --kernel 6.1 --kernel host`,
    );
  }
  if (specs.filter((s) => s === "host").length > 1) {
    throw new KernelSpecError("host", `Invalid --kernel: "host" is given more than once`);
  }
  return specs;
}

/** `deno task lab kernels`: the kernels in the cache, then those the archive offers. */
export async function kernelsCommand(options: { offline: boolean }): Promise<number> {
  let listing;
  try {
    listing = await listKernels({ offline: options.offline });
  } catch (err) {
    console.error(
      `Cannot list the kernels the archive offers: ${
        err instanceof Error ? err.message : err
      }; --offline lists what is cached`,
    );
    return 3;
  }
  console.log("Cached (ready to boot):");
  if (listing.cached.length === 0) console.log("  none");
  for (const c of listing.cached) {
    const what = c.ref.kind === "debian"
      ? `Debian ${c.ref.version} (${c.ref.suite})`
      : c.ref.kind === "deb"
      ? c.ref.path
      : c.ref.spec;
    console.log(`  ${c.release.padEnd(26)} ${what}`);
  }
  console.log(
    `\nOffered by the Debian archive${
      options.offline ? " (cached indexes only)" : ""
    } (--kernel takes the series, the ABI or the version):`,
  );
  for (const k of listing.offered) {
    console.log(
      `  ${(k.series ?? "").padEnd(5)} ${k.abi.padEnd(18)} ${k.version.padEnd(19)} ${
        k.suite.padEnd(18)
      }${k.cached ? " cached" : ""}`,
    );
  }
  return 0;
}

/** The flags of a `--kernel` run (what the CLI parsed). */
export interface KernelRunFlags {
  json?: boolean;
  verbose?: boolean;
  ledger?: boolean;
  report?: string;
  filter?: string;
  faithful?: boolean;
  subnet?: string;
  subnet6?: string;
  jobs: number;
  jobsGiven: boolean;
  repeat: number;
  args: string[];
  /** Experiment files or directories given, as absolute paths. */
  paths: string[];
  offline: boolean;
  noCharts: boolean;
}

/** What {@linkcode runKernels} needs from the CLI. */
export interface RunKernelsOptions {
  /** The specs, in order. */
  kernels: string[];
  /** The experiments loaded (for the header). */
  experiments: readonly LoadedExperiment[];
  /** The parsed flags. */
  flags: KernelRunFlags;
  /** Aborts the run: the VM in progress is killed and everything removed. */
  signal: AbortSignal;
  /** Runs the lab on the host (the CLI's run, calling `onRun` before it disposes the lab). */
  runHost: (options: { onRun: (run: LabRun) => Promise<void> }) => Promise<number>;
  /** Terminal width for tables. */
  terminalWidth: number;
}

/** The guest's `deno task lab` arguments: the same selection and flags. */
export function guestArgs(flags: KernelRunFlags): string[] {
  return [
    ...(flags.filter === undefined ? [] : ["--filter", flags.filter]),
    ...(flags.faithful ? ["--faithful"] : []),
    ...(flags.repeat > 1 ? ["--repeat", String(flags.repeat)] : []),
    ...(flags.subnet === undefined ? [] : ["--subnet", flags.subnet]),
    ...(flags.subnet6 === undefined ? [] : ["--subnet6", flags.subnet6]),
    ...(flags.jobsGiven ? ["--jobs", String(flags.jobs)] : []),
    ...flags.paths,
  ];
}

/**
 * Runs the experiments on each kernel and prints, per kernel, its
 * experiments as the host run does, then the claims × kernels ledger and the
 * claims whose verdicts differ. With `--report DIR`: `DIR/kernels/<label>/`
 * per kernel (written as each ends), then `DIR/report.md` and
 * `DIR/results.json`. With `--json`: the matrix document on stdout.
 *
 * @returns the exit status: 0 when every kernel ran and passed, else 1.
 */
export async function runKernels(o: RunKernelsOptions): Promise<number> {
  const { flags } = o;
  const startedAt = new Date();
  const t0 = performance.now();
  // With --json, stdout holds only the document.
  const out = (s: string) => flags.json ? console.error(s) : console.log(s);
  const err = (s: string) => console.error(s);
  out(
    `backlog-lab on ${plural(o.kernels.length, "kernel")} (${o.kernels.join(", ")}): ${
      plural(o.experiments.length, "experiment")
    }, ${CLAIMS.length} claims in the catalogue; ${vmsAtOnce()}`,
  );
  const hostCopies = await Deno.makeTempDir({ prefix: "backlog-lab-host-captures-" });
  const outcomes: KernelOutcome[] = [];
  const kernelDirs: string[] = [];
  try {
    await using matrix = new KernelMatrix({
      kernels: o.kernels,
      guestArgs: guestArgs(flags),
      projectDir: Deno.cwd(),
      keepCaptures: flags.report !== undefined,
      signal: o.signal,
      ...(flags.offline ? { offline: true } : {}),
      runHost: async () => {
        let run: LabRun | undefined;
        await o.runHost({
          onRun: async (r) => {
            r.captures.splice(0, r.captures.length, ...await copyCaptures(r.captures, hostCopies));
            run = r;
          },
        });
        if (!run) throw new Error("Cannot run the lab on the host: it returned no run");
        return run;
      },
      onEvent: progressPrinter(out, err, o.kernels),
      onKernel: (outcome) => {
        outcomes.push(outcome);
        printKernel(outcome.run, flags, o.terminalWidth, out);
        return Promise.resolve();
      },
    });
    await matrix.run();
    const kernels: KernelRun[] = outcomes.map((x) => x.run);
    const report = kernelMatrixReport({
      kernels,
      machine: await machineInfo(),
      command: shellCommand(["deno", "task", "lab", ...flags.args]),
      startedAt,
      durationMs: performance.now() - t0,
    });
    out(`\nClaims × kernels (* the verdicts differ):`);
    out(kernelLedgerTable(report, o.terminalWidth));
    const differences = kernelDifferences(report);
    out(
      differences
        ? `\nVerdicts that differ between kernels:\n${differences}`
        : "\nEvery claim has the same verdict on every kernel that ran it.",
    );
    const changes = kernelChanges(report);
    if (changes) {
      out(`\nSame verdict, numbers that follow a kernel change the kernels differ in:\n${changes}`);
    }
    out("");
    for (const k of kernels) out(kernelSummaryLine(k));
    out(`${plural(kernels.length, "kernel")} in ${longDuration(report.durationMs)}`);
    if (flags.report !== undefined) {
      // All or nothing, like one kernel's report: each kernel's own report in kernels/<label>/,
      // then the matrix's, into a staging directory that then takes the place of DIR's report.
      out(
        `Writing the report (${plural(outcomes.length, "kernel")}, charts ${
          flags.noCharts ? "off" : "on"
        })…`,
      );
      const owner = sudoOwner();
      const record = await RunRecord.ofProcess();
      let file: string;
      try {
        file = await stagedReport(flags.report, async (staging) => {
          for (const outcome of outcomes) {
            if (!outcome.run.report) {
              kernelDirs.push("");
              continue;
            }
            const dir = `kernels/${slug(outcome.run.label)}`;
            kernelDirs.push(dir);
            await writeReport(join(staging, dir), {
              report: outcome.run.report,
              captures: outcome.captures,
            }, { charts: !flags.noCharts });
            // In the matrix document a run's files are relative to DIR, like everything there.
            prefixFiles(outcome.run.report, dir);
          }
          return await writeKernelReport(staging, report, { kernelDirs, charts: !flags.noCharts });
        }, { registerTemp: (path) => record.addPath(path), ...(owner ? { owner } : {}) });
      } catch (err) {
        if (!(err instanceof ReportWriteError)) throw err;
        console.error(err.message);
        if (flags.json) console.log(JSON.stringify(report, null, 2));
        return report.passed ? EXIT_REPORT : 1;
      }
      out(`Report: ${join(flags.report, file)}`);
    }
    if (flags.json) console.log(JSON.stringify(report, null, 2));
    return report.passed ? 0 : 1;
  } finally {
    await Deno.remove(hostCopies, { recursive: true }).catch(() => {});
  }
}

/** The exit status when every kernel passed but the `--report` directory could not be written. */
const EXIT_REPORT = 4;

/** Prefixes every run's pcaps and charts (relative to a kernel's own report) with its directory. */
function prefixFiles(report: LabReport, dir: string): void {
  for (const e of report.experiments) {
    for (const r of e.runs) {
      if (r.pcaps) {
        r.pcaps = Object.fromEntries(Object.entries(r.pcaps).map(([h, f]) => [h, `${dir}/${f}`]));
      }
      if (r.charts) r.charts = { svg: `${dir}/${r.charts.svg}`, png: `${dir}/${r.charts.png}` };
    }
  }
}

/** How many VMs run at once, and why, in words. */
function vmsAtOnce(): string {
  const cores = navigator.hardwareConcurrency;
  const n = defaultParallelKernels(cores);
  return `${n === 1 ? "one VM" : `${n} VMs`} at a time on ${
    plural(cores, "core")
  } (a guest has two vCPUs), then this machine's kernel alone`;
}

/** A directory name for a kernel label. */
export function slug(label: string): string {
  return label.replace(/[^A-Za-z0-9._+-]+/g, "-").replace(/^-+|-+$/g, "") || "kernel";
}

async function copyCaptures(captures: readonly CaptureFile[], dir: string): Promise<CaptureFile[]> {
  const copies: CaptureFile[] = [];
  for (const [i, c] of captures.entries()) {
    const file = join(dir, `${i}.pcap`);
    await Deno.copyFile(c.file, file);
    copies.push({ ...c, file });
  }
  return copies;
}

/** A kernel's experiments, as the host run prints them, and its summary line. */
function printKernel(
  k: KernelRun,
  flags: KernelRunFlags,
  width: number,
  out: (s: string) => void,
): void {
  if (k.target === "vm") {
    out(`\n── ${k.label} ── ${k.report ? `Linux ${k.report.kernel} ` : ""}`);
    for (const e of k.report?.experiments ?? []) {
      out(experimentLine(e));
      const table = checksTable(e, flags.verbose ?? false, width);
      if (table) out(table);
    }
  }
  out(kernelSummaryLine(k));
}

/** Prints resolution, download progress (at most every 2 s), boot and the guest's progress lines. */
function progressPrinter(
  out: (s: string) => void,
  err: (s: string) => void,
  specs: readonly string[],
): (e: KernelMatrixEvent) => void {
  let lastDownload = 0;
  return (e) => {
    switch (e.kind) {
      case "kernel-start":
        out(`\n── kernel ${e.index + 1} of ${e.of}: ${e.spec} ──`);
        return;
      case "resolved":
        out(`${e.source}: Linux ${e.release}`);
        return;
      case "download": {
        const now = performance.now();
        const done = e.progress.total !== undefined && e.progress.bytes >= e.progress.total;
        if (!done && now - lastDownload < 2000) return;
        lastDownload = now;
        const mb = (n: number) => (n / 1e6).toFixed(1);
        err(
          `  downloading ${e.progress.url.split("/").pop()}: ${mb(e.progress.bytes)}${
            e.progress.total === undefined ? "" : ` of ${mb(e.progress.total)}`
          } MB`,
        );
        return;
      }
      case "booting":
        out(
          `Booting Linux ${e.release} in a VM under ${
            e.accel === "kvm"
              ? "KVM"
              : "TCG (emulated, 20 to 90 times slower for the lab: KVM did not boot a guest here)"
          }`,
        );
        return;
      case "guest-line":
        err(`  │ ${specs[e.index] ?? ""}: ${e.line}`);
        return;
      case "kernel-end":
        return;
    }
  };
}
