/**
 * The claims × kernels ledger of a `--kernel` run: for every catalogue claim,
 * its verdict on each kernel (from that kernel's own ledger), whether the
 * kernels disagree, and, where they do, the kernel change that splits them
 * the same way: a change in `KERNEL_CHANGES` that one of the deciding
 * experiments declares (`kernelChanges`) and that the kernels' probed facts
 * show present on one side and absent on the other.
 * @module
 */
import { CLAIMS } from "../describe/catalogue.ts";
import { hasChange, KERNEL_CHANGES, type KernelChange } from "../describe/kernel.ts";
import type {
  KernelLedgerCell,
  KernelLedgerRow,
  KernelMatrixReport,
  KernelRun,
  MachineInfo,
} from "../results.ts";

/** Every catalogue claim's verdict on each kernel, in catalogue order. */
export function kernelLedger(kernels: readonly KernelRun[]): KernelLedgerRow[] {
  return CLAIMS.map((c) => {
    const cells: KernelLedgerCell[] = kernels.map((k) => {
      const entry = k.report?.ledger.find((l) => l.claim === c.id);
      return {
        kernel: k.label,
        verdict: k.report ? entry?.verdict ?? "undecided" : "not run",
        experiments: entry?.experiments ?? [],
      };
    });
    const ran = cells.filter((x) => x.verdict !== "not run");
    const differs = new Set(ran.map((x) => x.verdict)).size > 1;
    const row: KernelLedgerRow = {
      claim: c.id,
      article: c.article,
      statement: c.statement,
      cells,
      differs,
    };
    if (differs) {
      const why = explain(c.id, kernels, cells);
      if (why) row.explanation = why;
    } else if (ran.length > 1) {
      const changes = splittingChanges(c.id, kernels);
      if (changes) row.changes = changes;
    }
    return row;
  });
}

/**
 * The known changes that split the kernels as the verdicts do: within each
 * side every kernel has the same verdict, and the sides' verdicts differ.
 */
export function explain(
  claim: string,
  kernels: readonly KernelRun[],
  cells: readonly KernelLedgerCell[],
): string | undefined {
  const declared = new Set(
    kernels.flatMap((k) =>
      (k.report?.experiments ?? []).filter((e) => claim in e.claims).flatMap((e) =>
        e.kernelChanges ?? []
      )
    ),
  );
  const found: string[] = [];
  for (const change of KERNEL_CHANGES.filter((c) => declared.has(c.commit))) {
    const sides = new Map<boolean, Set<string>>();
    const names = new Map<boolean, string[]>();
    let splits = true;
    for (const [i, k] of kernels.entries()) {
      const verdict = cells[i]!.verdict;
      if (verdict === "not run" || !k.report?.kernelFacts) continue;
      const has = hasChange(k.report.kernelFacts, change);
      if (has === undefined) {
        splits = false;
        break;
      }
      sides.set(has, (sides.get(has) ?? new Set()).add(verdict));
      names.set(has, [...(names.get(has) ?? []), k.label]);
    }
    const withIt = sides.get(true);
    const without = sides.get(false);
    if (
      !splits || !withIt || !without || withIt.size !== 1 || without.size !== 1 ||
      [...withIt][0] === [...without][0]
    ) continue;
    found.push(
      `${changeText(change)}: ${[...without][0]} without it (${names.get(false)!.join(", ")}), ${
        [...withIt][0]
      } with it (${names.get(true)!.join(", ")})`,
    );
  }
  return found.length ? found.join("; ") : undefined;
}

/**
 * The changes a claim's deciding experiments declare that the kernels that
 * decided it differ in (some have it, some not), in words with each side's kernels.
 */
export function splittingChanges(claim: string, kernels: readonly KernelRun[]): string | undefined {
  const deciding = kernels.filter((k) =>
    k.report?.ledger.some((l) => l.claim === claim && l.experiments.length > 0)
  );
  const declared = new Set(
    deciding.flatMap((k) =>
      (k.report?.experiments ?? []).filter((e) => claim in e.claims).flatMap((e) =>
        e.kernelChanges ?? []
      )
    ),
  );
  const found: string[] = [];
  for (const change of KERNEL_CHANGES.filter((c) => declared.has(c.commit))) {
    const sides = { with: [] as string[], without: [] as string[] };
    for (const k of deciding) {
      const has = k.report?.kernelFacts ? hasChange(k.report.kernelFacts, change) : undefined;
      if (has !== undefined) (has ? sides.with : sides.without).push(k.label);
    }
    if (sides.with.length && sides.without.length) {
      found.push(
        `${changeText(change)}: without it ${sides.without.join(", ")}, with it ${
          sides.with.join(", ")
        }`,
      );
    }
  }
  return found.length ? found.join("; ") : undefined;
}

/** A change in words: commit, subject, release, backports, effect. */
export function changeText(c: KernelChange): string {
  return `commit ${c.commit} ("${c.subject}", v${c.mainline}${
    c.backports.length ? `; backported to ${c.backports.join(", ")}` : ""
  }): ${c.effect}`;
}

/** Options of {@linkcode kernelMatrixReport}. */
export interface KernelMatrixReportInput {
  /** Each kernel's run, in order. */
  kernels: KernelRun[];
  /** The machine that ran it. */
  machine: MachineInfo;
  /** The command line. */
  command: string;
  /** When it began. */
  startedAt: Date;
  /** How long it took, in milliseconds. */
  durationMs: number;
}

/** The matrix document: the kernels, the claims × kernels ledger, and whether all passed. */
export function kernelMatrixReport(input: KernelMatrixReportInput): KernelMatrixReport {
  return {
    version: 1,
    kernels: input.kernels,
    ledger: kernelLedger(input.kernels),
    machine: input.machine,
    command: input.command,
    startedAt: input.startedAt.toISOString(),
    durationMs: Math.round(input.durationMs),
    passed: input.kernels.every((k) => k.report?.passed === true && k.error === undefined),
  };
}
