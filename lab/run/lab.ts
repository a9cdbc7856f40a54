/**
 * The lab: runs planned experiments and returns the whole report. Every
 * matrix point of every experiment (and every repeat) is queued at once and
 * run `jobs` at a time ({@linkcode Scheduler}), each in its own namespaces
 * ({@linkcode runPoint}); results keep definition order whatever order the
 * points finish in. A {@linkcode Lab} holds no global state beyond its own
 * name prefix and counter, so two labs (two processes, or two `Lab`s in one)
 * do not collide.
 * @module
 */
import { isHistorical } from "../describe/historical.ts";
import type { HistoricalEntry } from "../describe/load.ts";
import { checkSysctlValues, sysctlValues } from "../describe/sysctls.ts";
import { planExperiment } from "../describe/plan.ts";
import type { PlannedExperiment } from "../describe/run_plan.ts";
import type { ExperimentDefinition, Matrix } from "../describe/types.ts";
import type { UserClaim } from "../describe/user_claims.ts";
import { historicalResult } from "../describe/historical.ts";
import { claimErrors, decideClaims } from "../judge/evidence.ts";
import { buildLedger } from "../judge/ledger.ts";
import { mergeRepeats, type RepeatSummary, summarizeRepeats } from "../judge/repeat.ts";
import { calibrateTimeScale } from "../base/time_scale.ts";
import { kernelFacts, probeBehaviour, unknownBehaviour } from "../observe/kernel_probe.ts";
import { machineInfo } from "../observe/machine.ts";
import { PreflightError } from "../base/errors.ts";
import type { CaptureFile } from "../report/directory.ts";
import type {
  ExperimentOutline,
  ExperimentResult,
  KernelFacts,
  LabEvent,
  LabReport,
  RunResult,
} from "../results.ts";
import { DEFAULT_SUBNET4, DEFAULT_SUBNET6, parseSubnet } from "../topology/addressing.ts";
import { RunRecord } from "../base/run_record.ts";
import { newRunPrefix } from "../topology/netns.ts";
import { reapDeadRuns } from "../topology/reap.ts";
import { IPTABLES, NFT, TC, TCPDUMP, type ToolNeed } from "../topology/packages.ts";
import { netemAvailable } from "../topology/shaping/shaping.ts";
import { preflight } from "../topology/preflight.ts";
import { runPoint } from "./point.ts";
import { defaultJobs, Scheduler } from "./scheduler.ts";
import { MachineLock } from "./machine_lock.ts";
import { readTimes, timesCachePath, writeTimes } from "./times.ts";

/** Options of a {@linkcode Lab}. */
export interface LabOptions {
  /** IPv4 lab subnet, a /16 of private space; default `10.213.0.0/16`. */
  subnet4?: string;
  /** IPv6 lab prefix, a /48 of unique-local space; default `fd00:213::/48`. */
  subnet6?: string;
  /** Aborts the run in progress; everything it built is still removed. */
  signal?: AbortSignal;
  /** Called as the run starts, as each matrix point starts and ends, and as each experiment is done. */
  onEvent?: (event: LabEvent) => void;
  /** Run experiments' faithful matrices (the kernel's default timers) where they have one. */
  faithful?: boolean;
  /** Matrix points that run at once, over all experiments of this lab (default {@linkcode defaultJobs}). */
  jobs?: number;
  /**
   * Keep each run's packet captures (for a report) until the lab is disposed;
   * {@linkcode LabRun.captures} lists them. Default: removed with their run.
   */
  keepCaptures?: boolean;
  /** The times cache file, or `false` for none (default `$XDG_CACHE_HOME/backlog-lab/times.json`). */
  timesCache?: string | false;
  /** Where preflight says what it installs (default: nowhere). */
  log?: (line: string) => void;
  /**
   * Machine-wide admission of points, shared with every other lab on the
   * machine (default a {@linkcode MachineLock} on `/run/backlog-lab`), or
   * `false` for none: then points that must run alone are alone only within
   * this lab.
   */
  machineLock?: MachineLock | false;
}

/** A capture file a run kept (see {@linkcode LabOptions.keepCaptures}); removed when the lab is disposed. */
export type KeptCapture = CaptureFile;

/** What {@linkcode Lab.run} returns. */
export interface LabRun {
  /** The complete results document: experiments (repeats merged), ledger, machine. */
  report: LabReport;
  /** With `repeat` > 1: how each experiment's repeats compared, in definition order. */
  repeats: RepeatSummary[];
  /** The captures kept, with `keepCaptures`. */
  captures: KeptCapture[];
}

/** Options of {@linkcode Lab.run}. */
export interface RunOptions {
  /** Run each experiment this many times and compare (default 1). */
  repeat?: number;
  /** `all`: the ledger lists every catalogue claim; `decided` (default): those the experiments decide. */
  ledger?: "all" | "decided";
  /** The command line recorded in the report (default `Lab.run()`). */
  command?: string;
  /**
   * Claims of your own to list in the ledger, decided or not (see
   * `loadLab`, which returns those of the claims files it read).
   */
  claims?: readonly UserClaim[];
}

/** An experiment as {@linkcode Lab.run} takes it: planned (see `loadExperiments`), or historical claims. */
export type RunnableExperiment = PlannedExperiment | HistoricalEntry;

/** A matrix point's time outside its observation window, for the progress bound. */
const RUN_OVERHEAD_MS = 300;

/** Runs experiments in namespaces named `bl-<pid>-<tag>-<n>-<host>`; `AsyncDisposable`. */
export class Lab implements AsyncDisposable {
  /** This lab's namespace-name prefix, `bl-<pid>-<4 hex>`. */
  readonly prefix: string;
  readonly #options: LabOptions;
  readonly #scheduler: Scheduler;
  readonly #machine: MachineLock | undefined;
  #seq = 0;
  #record: Promise<RunRecord> | undefined;
  #keptDir: Promise<string> | undefined;
  #kernel: KernelFacts | undefined;

  /**
   * Picks a fresh name prefix and checks the subnets.
   *
   * @throws {RangeError} when `subnet4` or `subnet6` is not a usable lab subnet, or
   *   `jobs` is not a whole number ≥ 1.
   */
  constructor(options: LabOptions = {}) {
    this.prefix = newRunPrefix();
    this.#options = options;
    this.#scheduler = new Scheduler(options.jobs ?? defaultJobs());
    this.#machine = options.machineLock === false
      ? undefined
      : options.machineLock ?? new MachineLock();
    parseSubnet(options.subnet4 ?? DEFAULT_SUBNET4, 4);
    parseSubnet(options.subnet6 ?? DEFAULT_SUBNET6, 6);
  }

  /** Matrix points that run at once. */
  get jobs(): number {
    return this.#scheduler.jobs;
  }

  /**
   * Checks the machine (preflight: root, tools, stale namespaces of dead runs),
   * probes the kernel ({@linkcode KernelFacts}) and plans every experiment for
   * it again (loading planned them without a kernel), runs every experiment
   * (`repeat` times), and returns the whole report.
   *
   * @throws {PreflightError} when the machine cannot run the lab.
   * @throws {ExperimentDefinitionError} for a sysctl a namespace of this kernel lacks, or a
   *   value that is wrong for this kernel.
   * @throws the abort reason when the lab's signal aborts (after cleanup).
   */
  async run(planned: readonly RunnableExperiment[], options: RunOptions = {}): Promise<LabRun> {
    const startedAt = new Date();
    const t0 = performance.now();
    const repeats = options.repeat ?? 1;
    const { pre, kernel } = await this.#probe(
      () => neededTools(planned),
      sysctlValues(planned),
    );
    const experiments = planned.map((e) => this.#planFor(e, kernel));
    // Sysctls a kernel lacks were refused while planning for it; values it refuses, here.
    checkSysctlValues(experiments, pre.sysctlProblems);
    const timesPath = this.#options.timesCache === false
      ? undefined
      : this.#options.timesCache ?? timesCachePath();
    const lastTimes = timesPath === undefined ? {} : await readTimes(timesPath);
    this.#emit({
      kind: "start",
      kernel: pre.kernel,
      kernelFacts: kernel,
      reaped: pre.reaped,
      leftAlone: [
        ...(pre.reap.unrecorded.length
          ? [
            `${pre.reap.unrecorded.length} entries of /run/netns named like the lab's that no run record names (${
              pre.reap.unrecorded.join(", ")
            })`,
          ]
          : []),
        ...pre.reap.skipped.map((s) => `${s} (named by a dead run's record)`),
      ],
      jobs: this.jobs,
      repeats,
      outlines: experiments.map((e) => outline(e, lastTimes)),
    });

    // A failed experiment stops the others (they still clean up) before its error is thrown.
    const stop = new AbortController();
    const signal = AbortSignal.any([
      stop.signal,
      ...(this.#options.signal ? [this.#options.signal] : []),
    ]);
    const captures: KeptCapture[] = [];
    const pending = experiments.map(async (e) => {
      if (isHistoricalEntry(e)) {
        const h = historicalResult(e.definition, e.file);
        return Array<ExperimentResult>(repeats).fill(h);
      }
      const estimateMs = lastTimes[`${e.definition.id}:${e.mode}:run`];
      const settled = await Promise.allSettled(
        Array.from({ length: repeats }, (_, r) =>
          this.#runPlanned(e, {
            signal,
            ...(estimateMs === undefined ? {} : { estimateMs }),
            ...(repeats === 1 ? {} : { repeat: r + 1 }),
            keep: r === 0 ? captures : undefined,
          })),
      );
      const failed = settled.find((x) => x.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return settled.map((x) => (x as PromiseFulfilledResult<ExperimentResult>).value);
    });
    const results: ExperimentResult[] = [];
    const summaries: RepeatSummary[] = [];
    // In definition order, each as soon as it and those before it are done.
    for (const [index, p] of pending.entries()) {
      let all: ExperimentResult[];
      try {
        all = await p;
      } catch (err) {
        stop.abort(err);
        await Promise.allSettled(pending);
        throw err;
      }
      const result = repeats === 1 ? all[0]! : mergeRepeats(all);
      if (repeats > 1) summaries.push(summarizeRepeats(all));
      results.push(result);
      this.#emit({ kind: "experiment", index, result });
    }
    if (timesPath !== undefined) await writeTimes(newTimes(results), timesPath);
    const report: LabReport = {
      version: 1,
      kernel: pre.kernel,
      kernelFacts: kernel,
      machine: await machineInfo(),
      command: options.command ?? "Lab.run()",
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      passed: results.every((r) => r.passed),
      experiments: results,
      ledger: buildLedger(results, {
        all: options.ledger === "all",
        kernel: pre.kernel,
        ...(options.claims === undefined ? {} : { claims: options.claims }),
      }),
    };
    return { report, repeats: summaries, captures };
  }

  /** The kernel facts this lab probed (after {@linkcode Lab.run} or {@linkcode Lab.runExperiment}). */
  get kernel(): KernelFacts | undefined {
    return this.#kernel;
  }

  /**
   * Runs every matrix point of one experiment (concurrently with other points
   * of this lab, up to `jobs`) and decides its claims. No preflight: call
   * `preflight(lab.prefix)` first, or use {@linkcode Lab.run}. The kernel is
   * probed once per lab (with `preflight`) and the experiment planned for it.
   */
  async runExperiment<M extends Matrix>(
    experiment: ExperimentDefinition<M> | PlannedExperiment,
    options: { file?: string; estimateMs?: number } = {},
  ): Promise<ExperimentResult> {
    const kernel = this.#kernel ?? (await this.#probe(() => Promise.resolve([]))).kernel;
    const planned = "plans" in experiment
      ? this.#planFor(experiment, kernel) as PlannedExperiment
      : planExperiment(experiment, {
        kernel,
        ...(this.#options.faithful ? { faithful: true } : {}),
        ...(options.file === undefined ? {} : { file: options.file }),
      });
    return await this.#runPlanned(planned, {
      ...(this.#options.signal ? { signal: this.#options.signal } : {}),
      ...(options.estimateMs === undefined ? {} : { estimateMs: options.estimateMs }),
    });
  }

  async #runPlanned(
    e: PlannedExperiment,
    o: {
      signal?: AbortSignal;
      estimateMs?: number;
      repeat?: number;
      keep?: KeptCapture[] | undefined;
    },
  ): Promise<ExperimentResult> {
    const { definition: def, plans } = e;
    const skippedRuns = e.skipped.map((s) => ({ params: s.params, reason: s.reason }));
    if (plans.length === 0 && skippedRuns.length > 0) {
      return {
        id: def.id,
        title: def.title,
        hypothesis: def.hypothesis,
        ...(e.file === undefined ? {} : { file: e.file }),
        passed: true,
        skipped: skippedRuns[0]!.reason,
        mode: e.mode,
        durationMs: 0,
        runs: [],
        skippedRuns,
        claims: {},
        ...(def.kernelChanges?.length ? { kernelChanges: [...def.kernelChanges] } : {}),
      };
    }
    const repeat = o.repeat === undefined ? {} : { repeat: o.repeat };
    const keepCaptures = (this.#options.keepCaptures ?? false) && o.keep !== undefined;
    const record = await this.#runRecord();
    const captureDir = keepCaptures ? await this.#keptCapturesDir() : record.tempDir;
    let started: number | undefined;
    let ended = 0;
    // Every point is queued now; one that fails for good lets the others finish (and clean up).
    const settled = await Promise.allSettled(
      plans.map((plan) =>
        this.#scheduler.run(async () => {
          o.signal?.throwIfAborted();
          const point = { experiment: def.id, index: plan.index, of: plan.of, ...repeat };
          const family = plan.family === 4
            ? this.#options.subnet4 ?? DEFAULT_SUBNET4
            : this.#options.subnet6 ?? DEFAULT_SUBNET6;
          const machine = this.#machine;
          const outcome = await runPoint(plan, {
            prefix: `${this.prefix}-${++this.#seq}`,
            subnet: family,
            captureDir,
            keepCaptures,
            record,
            ...(o.signal ? { signal: o.signal } : {}),
            onStart: () => {
              started ??= performance.now();
              this.#emit({ kind: "run-start", ...point, params: plan.params });
            },
            ...(machine === undefined ? {} : {
              admit: () =>
                machine.acquire({
                  exclusive: plan.exclusive,
                  slots: this.jobs,
                  ...(o.signal ? { signal: o.signal } : {}),
                  onWait: (why) => this.#emit({ kind: "waiting", ...point, why }),
                }),
            }),
          });
          for (const [host, file] of Object.entries(outcome.captures)) {
            o.keep?.push({ experiment: def.id, index: plan.index, host, file });
          }
          ended = performance.now();
          this.#emit({ kind: "run-end", ...point, result: outcome.result });
          return outcome.result;
        }, {
          exclusive: plan.exclusive,
          heavy: plan.heavy,
          estimateMs: o.estimateMs ?? plan.observe.windowMs,
        })
      ),
    );
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const runs = settled.map((s) => (s as PromiseFulfilledResult<RunResult>).value);
    const claims = decideClaims((def.claims ?? {}) as never, runs, {
      kernel: e.kernel,
      ...(e.file === undefined ? {} : { file: e.file }),
    });
    return {
      id: def.id,
      title: def.title,
      hypothesis: def.hypothesis,
      ...(e.file === undefined ? {} : { file: e.file }),
      // A claim rule that cannot decide fails the experiment: its ledger entry would say nothing.
      // Under a what-if (--set) the rules read another matrix than the one they were written for:
      // such a claim is undecided, saying why, and the experiment stands on its expectations.
      passed: runs.every((r) => r.passed) &&
        (e.overrides !== undefined || claimErrors(claims).length === 0),
      mode: e.mode,
      ...(def.shortened === undefined || e.mode === "default" ? {} : { shortened: def.shortened }),
      durationMs: started === undefined ? 0 : Math.round(ended - started),
      runs,
      ...(skippedRuns.length ? { skippedRuns } : {}),
      claims,
      metrics: e.metrics,
      ...(e.overrides === undefined ? {} : { overrides: e.overrides }),
      ...(def.kernelChanges?.length ? { kernelChanges: [...def.kernelChanges] } : {}),
    };
  }

  /**
   * Preflight, with the kernel's behaviour probed in its probe namespace;
   * the time scale is measured first where a VM runner asked for it.
   */
  async #probe(tools: () => Promise<ToolNeed[]>, values: [string, string][] = []) {
    await calibrateTimeScale();
    let behaviour = unknownBehaviour();
    const pre = await preflight(this.prefix, {
      tools,
      ...(this.#options.log ? { log: this.#options.log } : {}),
      record: () => this.#runRecord(),
      sysctlValues: values,
      inProbe: async (ns) => {
        behaviour = await probeBehaviour(ns, this.#options.signal);
      },
    });
    const kernel = kernelFacts({
      release: pre.kernel,
      sysctls: pre.namespaceSysctlValues,
      behaviour,
    });
    this.#kernel = kernel;
    return { pre, kernel };
  }

  /** An experiment planned for `kernel` (planned again unless it was planned for it). */
  #planFor(e: RunnableExperiment, kernel: KernelFacts): RunnableExperiment {
    if (isHistoricalEntry(e) || e.kernel === kernel) return e;
    return {
      ...planExperiment(e.definition, {
        kernel,
        ...(e.mode === "faithful" ? { faithful: true } : {}),
        ...(e.overrides === undefined ? {} : { set: e.overrides }),
        ...(e.file === undefined ? {} : { file: e.file }),
      }),
    };
  }

  /**
   * Records `path`, a temporary file or directory outside the lab's run
   * directory (e.g. a partial report beside its target), in the lab's run
   * record, so that a later run removes it if this process is killed. Call it
   * before making the path; the caller removes it as usual.
   */
  async addTempPath(path: string): Promise<void> {
    await (await this.#runRecord()).addPath(path);
  }

  /** This lab's run record (`/run/backlog-lab/<prefix>/`), made on first use, held until disposal. */
  #runRecord(): Promise<RunRecord> {
    return this.#record ??= createRecord(this.prefix).catch((err) => {
      this.#record = undefined;
      throw err;
    });
  }

  /** The kept captures' directory, inside the run record's temporary files. */
  #keptCapturesDir(): Promise<string> {
    return this.#keptDir ??= this.#runRecord().then(async (record) => {
      const dir = record.tempPath("captures");
      await Deno.mkdir(dir, { recursive: true });
      return dir;
    });
  }

  #emit(event: LabEvent): void {
    this.#options.onEvent?.(event);
  }

  /** Removes its run record, with the captures it kept and every temporary file. Idempotent. */
  async [Symbol.asyncDispose](): Promise<void> {
    const record = this.#record;
    this.#record = undefined;
    this.#keptDir = undefined;
    if (record !== undefined) await (await record.catch(() => undefined))?.[Symbol.asyncDispose]();
  }
}

/**
 * The run record of a lab: its id is the lab's prefix. An id a dead run's
 * record still holds (the same pid and tag, long ago) is freed by reaping.
 *
 * @throws {PreflightError} when `/run/backlog-lab` cannot be written.
 */
async function createRecord(id: string): Promise<RunRecord> {
  try {
    return await RunRecord.create({ id });
  } catch (err) {
    if (
      err instanceof Deno.errors.PermissionDenied || (err as { code?: string }).code === "EROFS"
    ) {
      throw new PreflightError([
        `Cannot write the run record under "/run/backlog-lab" (${
          (err as Error).message
        }): run the lab as root`,
      ]);
    }
    await reapDeadRuns();
    return await RunRecord.create({ id });
  }
}

function isHistoricalEntry(e: RunnableExperiment): e is HistoricalEntry {
  return isHistorical(e.definition);
}

/**
 * The optional tools the experiments need: nft for packet rules and shaped
 * links (their counting and loss table), tcpdump for captures, tc for netem
 * or a rate, and iptables for a delay on a kernel without netem (NFQUEUE).
 */
async function neededTools(experiments: readonly RunnableExperiment[]): Promise<ToolNeed[]> {
  const plans = experiments.flatMap((e) => isHistoricalEntry(e) ? [] : e.plans);
  const shapes = plans.flatMap((p) =>
    p.links.flatMap((l) => [l.toServer, l.toClient].filter((s) => s !== undefined))
  );
  const needs: ToolNeed[] = [];
  if (plans.some((p) => p.rules.length) || shapes.length) needs.push(NFT);
  if (plans.some((p) => p.capture.length)) needs.push(TCPDUMP);
  if (shapes.length) needs.push(TC);
  const delayed = shapes.filter((s) => s.delayMs > 0);
  // With jitter the delayer runs on every kernel (see shapeLink()).
  if (delayed.some((s) => s.jitterMs > 0) || (delayed.length && !await netemAvailable())) {
    needs.push(IPTABLES);
  }
  return needs;
}

/** A progress display's view of an experiment: its runs, last time and window bound. */
function outline(e: RunnableExperiment, lastTimes: Record<string, number>): ExperimentOutline {
  if (isHistoricalEntry(e)) return { id: e.definition.id, runs: 0, boundMs: 0 };
  const last = lastTimes[`${e.definition.id}:${e.mode}`];
  return {
    id: e.definition.id,
    runs: e.plans.length,
    boundMs: e.plans.reduce((ms, p) => ms + p.observe.windowMs + RUN_OVERHEAD_MS, 0),
    ...(typeof last === "number" ? { lastMs: last } : {}),
  };
}

/**
 * The times cache entries of passed experiments: each one's time and its runs' mean. A what-if
 * (`--set`) ran another matrix, so its times say nothing of the experiment's own.
 */
function newTimes(results: readonly ExperimentResult[]): Record<string, number> {
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return Object.fromEntries(
    results.filter((r) => r.passed && !r.skipped && r.runs.length && !r.overrides).flatMap((r) => [
      [`${r.id}:${r.mode}`, r.durationMs],
      [`${r.id}:${r.mode}:run`, Math.round(mean(r.runs.map((x) => x.durationMs)))],
    ]),
  );
}
