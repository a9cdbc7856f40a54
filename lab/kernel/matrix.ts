/**
 * A `--kernel` run: the same experiments on several kernels, one after the
 * other. For each kernel spec: `host` runs the lab in this process (the
 * caller's `runHost`), anything else is resolved, downloaded into the cache
 * (progress reported), booted in a QEMU guest ({@linkcode bootAndRun}) that
 * runs `deno task lab … --report /results/report --no-charts` with the same
 * selection, and its results are read back from the share directory. Every
 * wait is bounded; every VM is stopped and every share directory removed on
 * every path out ({@linkcode KernelMatrix} is `AsyncDisposable`).
 *
 * VMs run side by side, one per two cores ({@linkcode defaultParallelKernels}):
 * a guest keeps its two vCPUs busy, and on a two-core machine two guests at
 * once took longer than one after the other. This machine's own kernel
 * (`host`) runs after them, alone. Results come in the order given.
 * @module
 */
import { join } from "node:path";
import { measureSpeedMs, SPEED_REFERENCE_ENV } from "../base/time_scale.ts";
import { loadReport } from "../judge/load_report.ts";
import type { CaptureFile } from "../report/directory.ts";
import type { KernelRun, LabReport, VmRecord } from "../results.ts";
import type { LabRun } from "../run/lab.ts";
import { MACHINE_ENV } from "../observe/kernel_probe.ts";
import { fetchKernel, type UnpackedKernel } from "./cache.ts";
import { type KernelRef, resolveKernel } from "./debian.ts";
import type { DownloadProgress } from "./_fetch.ts";
import { type Accel, bootAndRun, type BootAndRunOptions, detectAccel } from "./vm.ts";

/** What a kernel matrix reports as it goes. */
export type KernelMatrixEvent =
  | { kind: "kernel-start"; index: number; of: number; spec: string }
  | { kind: "resolved"; index: number; spec: string; source: string; release: string }
  | { kind: "download"; index: number; progress: DownloadProgress }
  | { kind: "booting"; index: number; accel: Accel; release: string }
  | { kind: "guest-line"; index: number; line: string }
  | { kind: "kernel-end"; index: number; run: KernelRun };

/** Options of {@linkcode KernelMatrix}. */
export interface KernelMatrixOptions {
  /** The `--kernel` specs, in order (`host` for this machine's kernel). */
  kernels: readonly string[];
  /** Runs the lab on this machine's kernel (what `deno task lab` does without `--kernel`). */
  runHost: () => Promise<LabRun>;
  /** The lab's arguments for a guest: the selection and flags, without `--kernel`, `--report`, `--json`. */
  guestArgs: readonly string[];
  /** The project directory (the guest runs its `main.ts` there). */
  projectDir: string;
  /** Keep each guest's captures (for a report directory). */
  keepCaptures?: boolean;
  /** Called as kernels are resolved, downloaded, booted and run. */
  onEvent?: (event: KernelMatrixEvent) => void;
  /** Called (and awaited) with each kernel's outcome as soon as it is done, while its files exist. */
  onKernel?: (outcome: KernelOutcome) => Promise<void>;
  /** Stops the run: the VM in progress is killed and everything removed. */
  signal?: AbortSignal;
  /** The kernel cache (default `~/.cache/backlog-lab/kernels`). */
  cacheDir?: string;
  /** Use only cached indexes and kernels. */
  offline?: boolean;
  /** Matrix points a guest runs at once; default 1 under TCG, the lab's default under KVM. */
  guestJobs?: number;
  /** VMs that run at once (default {@linkcode defaultParallelKernels}). */
  parallel?: number;
  /** Settings of every VM (memory, CPUs, timeouts; tests give stand-ins). */
  vm?: Partial<Omit<BootAndRunOptions, "kernel" | "command" | "cwd" | "env" | "shareDir">>;
}

/** One kernel's outcome: its record for the matrix document, and what a report needs of it. */
export interface KernelOutcome {
  /** The kernel's entry of the matrix document. */
  run: KernelRun;
  /** Captures kept (a guest's pcaps in its share directory, or the host run's). */
  captures: CaptureFile[];
}

/**
 * How many VMs run side by side: one per two cores (each guest has two
 * vCPUs, and an emulated one keeps both busy), at least one. On a two-core
 * machine that is one at a time: two guests at once took longer than one
 * after the other there.
 */
export function defaultParallelKernels(cores = navigator.hardwareConcurrency): number {
  return Math.max(1, Math.floor(cores / 2));
}

/** The label of a kernel in tables: its upstream version, or the spec; made unique. */
export function kernelLabel(
  spec: string,
  ref: KernelRef | undefined,
  taken: readonly string[],
): string {
  let base = spec;
  if (ref?.kind === "debian") base = ref.upstream;
  else if (ref) base = ref.release.replace(/-amd64$/, "");
  let label = base;
  for (let n = 2; taken.includes(label); n++) label = `${base} (${n})`;
  return label;
}

/** Where a kernel came from, in words. */
export function kernelSource(ref: KernelRef): string {
  switch (ref.kind) {
    case "debian":
      return `Debian ${ref.packages[0]?.package ?? "linux-image"} ${ref.version} (${ref.suite})`;
    case "deb":
      return `${ref.package} ${ref.version} (${ref.path})`;
    case "dir":
      return `${ref.release} from ${ref.spec}`;
  }
}

/** Runs the experiments on each kernel in turn; `AsyncDisposable` (removes the share directories). */
export class KernelMatrix implements AsyncDisposable {
  readonly #o: KernelMatrixOptions;
  readonly #shares: string[] = [];

  /** Checks the specs' shape; resolving them happens in {@linkcode KernelMatrix.run}. */
  constructor(options: KernelMatrixOptions) {
    if (options.kernels.length === 0) {
      throw new RangeError("Cannot run a kernel matrix: give at least one kernel");
    }
    this.#o = options;
  }

  /**
   * Runs every kernel, one after the other. A kernel that cannot be resolved,
   * downloaded or booted gets an `error` and the others still run; an abort
   * stops everything (the VM is killed) and rethrows.
   */
  async run(): Promise<KernelOutcome[]> {
    const o = this.#o;
    const n = o.kernels.length;
    const done: (KernelOutcome | undefined)[] = Array(n).fill(undefined);
    const outcomes: KernelOutcome[] = [];
    // Reported in the order given, each as soon as it and those before it are done; its label
    // made unique against those before it.
    const flush = async () => {
      while (outcomes.length < n && done[outcomes.length]) {
        const outcome = done[outcomes.length]!;
        outcome.run.label = kernelLabel(
          outcome.run.label,
          undefined,
          outcomes.map((x) => x.run.label),
        );
        outcomes.push(outcome);
        await o.onKernel?.(outcome);
      }
    };
    const guests = o.kernels.flatMap((spec, index) => spec === "host" ? [] : [{ spec, index }]);
    const reference = guests.length ? await measureSpeedMs() : 0;
    // VMs side by side, as many as the machine's cores allow; the host's run after them, alone,
    // so that no guest's emulation disturbs its timing.
    let next = 0;
    const worker = async () => {
      while (next < guests.length) {
        const { spec, index } = guests[next++]!;
        o.signal?.throwIfAborted();
        o.onEvent?.({ kind: "kernel-start", index, of: n, spec });
        const t0 = performance.now();
        const outcome = await this.#guest(index, spec, reference);
        outcome.run.durationMs = Math.round(performance.now() - t0);
        o.onEvent?.({ kind: "kernel-end", index, run: outcome.run });
        done[index] = outcome;
        await flush();
      }
    };
    const parallel = Math.max(1, Math.min(o.parallel ?? defaultParallelKernels(), guests.length));
    await Promise.all(Array.from({ length: parallel }, worker));
    for (const [index, spec] of o.kernels.entries()) {
      if (spec !== "host") continue;
      o.signal?.throwIfAborted();
      o.onEvent?.({ kind: "kernel-start", index, of: n, spec });
      const t0 = performance.now();
      const lab = await o.runHost();
      done[index] = {
        run: {
          spec,
          label: `host ${lab.report.kernel.replace(/-.*$/, "")}`,
          target: "host",
          report: lab.report,
          durationMs: Math.round(performance.now() - t0),
        },
        captures: lab.captures,
      };
      o.onEvent?.({ kind: "kernel-end", index, run: done[index]!.run });
      await flush();
    }
    return outcomes;
  }

  async #guest(index: number, spec: string, reference: number): Promise<KernelOutcome> {
    const o = this.#o;
    const common = {
      ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
      ...(o.offline ? { offline: true } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    };
    let ref: KernelRef | undefined;
    let kernel: UnpackedKernel;
    try {
      ref = await resolveKernel(spec, common);
      o.onEvent?.({
        kind: "resolved",
        index,
        spec,
        source: kernelSource(ref),
        release: ref.release,
      });
      kernel = await fetchKernel(ref, {
        ...common,
        onProgress: (progress) => o.onEvent?.({ kind: "download", index, progress }),
      });
    } catch (err) {
      o.signal?.throwIfAborted();
      return failed(spec, kernelLabel(spec, ref, []), err);
    }
    const label = kernelLabel(spec, ref, []);
    const share = await Deno.makeTempDir({ prefix: "backlog-lab-kernel-" });
    this.#shares.push(share);
    await Deno.chmod(share, 0o755);
    try {
      const accel = o.vm?.accel === "kvm" || o.vm?.accel === "tcg"
        ? o.vm.accel
        : await detectAccel(kernel, o.signal ? { signal: o.signal } : {});
      o.onEvent?.({ kind: "booting", index, accel, release: kernel.release });
      const jobs = o.guestJobs ?? (accel === "tcg" ? 1 : undefined);
      const args = [
        ...o.guestArgs,
        "--report",
        "/results/report",
        "--no-charts",
        ...(jobs === undefined || o.guestArgs.includes("--jobs") ? [] : ["--jobs", String(jobs)]),
      ];
      const result = await bootAndRun({
        memoryMiB: 4096,
        cpus: 2,
        timeoutMs: 90 * 60_000,
        ...o.vm,
        accel,
        kernel,
        command: [Deno.execPath(), "run", "-A", join(o.projectDir, "main.ts"), ...args],
        cwd: o.projectDir,
        env: {
          NO_COLOR: "1",
          [MACHINE_ENV]: accel,
          [SPEED_REFERENCE_ENV]: String(reference),
        },
        shareDir: share,
        onStderrLine: (line) => o.onEvent?.({ kind: "guest-line", index, line }),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      const vm: VmRecord = {
        accel: result.accel,
        source: kernelSource(kernel.ref),
        bootMs: result.bootMs,
        runMs: result.runMs,
        attempts: result.attempts,
        memoryMiB: result.memoryMiB,
        cpus: result.cpus,
        kernelCmdline: result.kernelCmdline,
        exitCode: result.exitCode,
        consoleLog: result.consoleLog,
      };
      const dir = join(share, "report");
      let report: LabReport;
      try {
        report = await loadReport(join(dir, "results.json"));
      } catch (err) {
        const tail = result.stderr.trim().split("\n").slice(-8).join("\n");
        return {
          run: {
            spec,
            label,
            target: "vm",
            vm,
            error: `The lab in the guest exited with ${result.exitCode} and wrote no results (${
              err instanceof Error ? err.message : err
            })${tail ? `; its stderr ended:\n${tail}` : ""}`,
            durationMs: 0,
          },
          captures: [],
        };
      }
      return {
        run: { spec, label, target: "vm", vm, report, durationMs: 0 },
        captures: guestCaptures(report, dir),
      };
    } catch (err) {
      o.signal?.throwIfAborted();
      return failed(spec, label, err);
    }
  }

  /** Removes every share directory (with the guests' results and captures). Idempotent. */
  async [Symbol.asyncDispose](): Promise<void> {
    const shares = this.#shares.splice(0);
    await Promise.all(shares.map((d) => Deno.remove(d, { recursive: true }).catch(() => {})));
  }
}

function failed(spec: string, label: string, err: unknown): KernelOutcome {
  return {
    run: {
      spec,
      label,
      target: spec === "host" ? "host" : "vm",
      error: err instanceof Error ? err.message : String(err),
      durationMs: 0,
    },
    captures: [],
  };
}

/** The pcaps a guest's report names, as captures for the host's report (paths removed from the runs). */
function guestCaptures(report: LabReport, dir: string): CaptureFile[] {
  const out: CaptureFile[] = [];
  for (const e of report.experiments) {
    for (const [index, run] of e.runs.entries()) {
      for (const [host, file] of Object.entries(run.pcaps ?? {})) {
        out.push({ experiment: e.id, index, host, file: join(dir, file) });
      }
      delete run.pcaps;
      delete run.charts;
    }
  }
  return out;
}
