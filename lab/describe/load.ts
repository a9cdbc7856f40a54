/**
 * Finding, importing, validating and planning experiment files: each must
 * `export default defineExperiment({ … })` (or `defineHistoricalClaims`).
 * Loading plans every experiment once, for the mode asked; everything after
 * it uses those plans. Every error names the file.
 * @module
 */
import { basename, relative, resolve } from "node:path";
import { ExperimentDefinitionError } from "../base/errors.ts";
import { didYouMean } from "../base/suggest.ts";
import { defineHistoricalClaims, type HistoricalClaims, isHistorical } from "./historical.ts";
import { planExperiment, type PlanOptions } from "./plan.ts";
import type { PlannedExperiment } from "./run_plan.ts";
import type { ExperimentDefinition } from "./types.ts";
import { defineExperiment } from "./validate.ts";

/** Claims without an experiment, as loading returns them. */
export interface HistoricalEntry {
  /** The validated historical claims. */
  definition: HistoricalClaims;
  /** The file they came from, relative to the working directory, if any. */
  file?: string;
}

/** An experiment file's content, planned: an experiment with its plans, or historical claims. */
export type LoadedExperiment = (PlannedExperiment | HistoricalEntry) & { file: string };

/** Whether a loaded entry is historical claims rather than an experiment. */
export function isHistoricalEntry(e: PlannedExperiment | HistoricalEntry): e is HistoricalEntry {
  return isHistorical(e.definition);
}

/** The `.ts` files of `paths` (files as given, directories' files sorted). */
export async function experimentFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    const info = await Deno.stat(p).catch(() => {
      throw new ExperimentDefinitionError(
        "path",
        `"${p}" does not exist: name an experiment file or directory`,
      );
    });
    if (info.isFile) files.push(p);
    else {
      const names: string[] = [];
      for await (const e of Deno.readDir(p)) {
        if (e.isFile && e.name.endsWith(".ts") && !e.name.startsWith("_")) names.push(e.name);
      }
      if (names.length === 0) {
        throw new ExperimentDefinitionError(
          "path",
          `"${p}" holds no experiment file (a .ts file not starting with "_"): name a directory of experiments, or an experiment file`,
        );
      }
      files.push(...names.sort().map((n) => `${p.replace(/\/$/, "")}/${n}`));
    }
  }
  return files;
}

/**
 * Imports, validates and plans every experiment file (for the mode `options` asks).
 *
 * @throws {ExperimentDefinitionError} naming the file and field (duplicate ids too).
 */
export async function loadExperiments(
  paths: readonly string[],
  options: PlanOptions & {
    /** How long a file's top-level code may take (default {@linkcode IMPORT_TIMEOUT_MS}). */
    importTimeoutMs?: number;
  } = {},
): Promise<LoadedExperiment[]> {
  const loaded: LoadedExperiment[] = [];
  for (const path of await experimentFiles(paths)) {
    const file = relative(Deno.cwd(), resolve(path)) || basename(path);
    let mod: { default?: unknown };
    try {
      mod = await importWithin(
        new URL(`file://${resolve(path)}`).href,
        options.importTimeoutMs ?? IMPORT_TIMEOUT_MS,
      );
    } catch (err) {
      if (err instanceof ExperimentDefinitionError) throw err.inFile(file);
      throw new ExperimentDefinitionError("(module)", `cannot import it: ${importProblem(err)}`, {
        file,
      });
    }
    if (mod.default === undefined) {
      throw new ExperimentDefinitionError(
        "default",
        "no default export: end the file with `export default defineExperiment({ … })`",
        { file },
      );
    }
    try {
      const entry: LoadedExperiment = isHistorical(mod.default)
        ? { file, definition: defineHistoricalClaims(mod.default) }
        : {
          ...planExperiment(
            defineExperiment(mod.default as ExperimentDefinition),
            options.faithful === undefined ? {} : { faithful: options.faithful },
          ),
          file,
        };
      const id = entry.definition.id;
      const dup = loaded.find((l) => l.definition.id === id);
      if (dup) {
        throw new ExperimentDefinitionError(
          "id",
          `duplicate id "${id}": ${dup.file} uses it too; ids must be unique`,
        );
      }
      loaded.push(entry);
    } catch (err) {
      if (err instanceof ExperimentDefinitionError) throw err.inFile(file);
      throw err;
    }
  }
  return loaded;
}

/**
 * How long an experiment file's top-level code may take: it only defines
 * data (importing `define.ts` takes about 3 ms), so a file still loading
 * after this has a top-level `await` that never settles.
 */
export const IMPORT_TIMEOUT_MS = 10_000;

/** A dynamic import that gives up after `ms` (the import itself cannot be cancelled). */
async function importWithin(url: string, ms: number): Promise<{ default?: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `its top-level code did not finish within ${ms} ms: a top-level await that never settles? An experiment file only defines data`,
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([import(url), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Why an import failed, in one line. A package missing from `deno.lock` is
 * refused rather than added (the lab's tasks run with a frozen lockfile), and
 * Deno's message for it is a multi-line coloured diff: name the package instead.
 */
function importProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/lockfile is out of date/i.test(message)) {
    // deno-lint-ignore no-control-regex
    const plain = message.replace(/\x1b\[[0-9;]*m/g, "");
    const added = [...plain.matchAll(/\+\s*"((?:npm|jsr):[^"]+)"/g)].map((m) => m[1]!);
    return `it imports ${
      added.length ? added.map((a) => `"${a}"`).join(", ") : "a package"
    }, which deno.lock does not have, and experiments load with a frozen lockfile (deno.lock is left as it is): import only "define.ts", or add the package to deno.json and run \`deno install --frozen=false\` once`;
  }
  return message;
}

/**
 * Checks every sysctl the experiments set against those a fresh namespace has.
 *
 * @throws {ExperimentDefinitionError} naming the file, host and key.
 */
export function checkSysctls(
  experiments: readonly (PlannedExperiment | HistoricalEntry)[],
  available: ReadonlySet<string>,
): void {
  for (const entry of experiments) {
    if (isHistoricalEntry(entry)) continue;
    const { definition } = entry;
    const file = entry.file === undefined ? {} : { file: entry.file };
    const stepSysctls = (definition.timeline ?? []).flatMap((s, i) =>
      "sysctl" in s.do ? [{ host: s.do.sysctl.host, key: s.do.sysctl.name, i }] : []
    );
    for (const { key, i } of stepSysctls) {
      if (!available.has(key)) {
        throw new ExperimentDefinitionError(
          `timeline[${i}].do.sysctl.name`,
          `a network namespace of this kernel has no sysctl "${key}"${didYouMean(key, available)}`,
          file,
        );
      }
    }
    for (const [host, h] of Object.entries(definition.hosts)) {
      for (const key of Object.keys(h.sysctls ?? {})) {
        if (!available.has(key)) {
          throw new ExperimentDefinitionError(
            `hosts.${host}.sysctls.${key}`,
            `a network namespace of this kernel has no sysctl "${key}"${
              didYouMean(key, available)
            } (only per-namespace net.* sysctls can be set)`,
            file,
          );
        }
      }
    }
  }
}

/** Where a sysctl value is written: its definition field and matrix point. */
interface SysctlUse {
  entry: PlannedExperiment;
  field: string;
  params: Record<string, unknown>;
  key: string;
  value: string;
}

function sysctlUses(experiments: readonly (PlannedExperiment | HistoricalEntry)[]): SysctlUse[] {
  const uses: SysctlUse[] = [];
  for (const entry of experiments) {
    if (isHistoricalEntry(entry)) continue;
    const steps = entry.definition.timeline ?? [];
    for (const plan of entry.plans) {
      for (const h of plan.hosts) {
        for (const [key, value] of Object.entries(h.sysctls)) {
          uses.push({
            entry,
            field: `hosts.${h.name}.sysctls.${key}`,
            params: plan.params,
            key,
            value,
          });
        }
      }
      for (const step of plan.timeline) {
        if (step.action.kind !== "sysctl") continue;
        const i = steps.findIndex((s) => s.name === step.name);
        uses.push({
          entry,
          field: `timeline[${i}].do.sysctl.value`,
          params: plan.params,
          key: step.action.name,
          value: step.action.value,
        });
      }
    }
  }
  return uses;
}

/** Every sysctl value the experiments write, at every matrix point: `[key, value]`, once each. */
export function sysctlValues(
  experiments: readonly (PlannedExperiment | HistoricalEntry)[],
): [string, string][] {
  const pairs = new Map<string, [string, string]>();
  for (const u of sysctlUses(experiments)) pairs.set(`${u.key}=${u.value}`, [u.key, u.value]);
  return [...pairs.values()];
}

/**
 * Checks the values against what a namespace of this kernel refused when
 * they were tried (`problems`, keyed `<key>=<value>`, from preflight).
 *
 * @throws {ExperimentDefinitionError} for the first refused value, naming
 *   the file, the field and the matrix point.
 */
export function checkSysctlValues(
  experiments: readonly (PlannedExperiment | HistoricalEntry)[],
  problems: ReadonlyMap<string, string>,
): void {
  for (const u of sysctlUses(experiments)) {
    const problem = problems.get(`${u.key}=${u.value}`);
    if (problem === undefined) continue;
    const at = Object.keys(u.params).length ? ` (at ${JSON.stringify(u.params)})` : "";
    throw new ExperimentDefinitionError(
      u.field,
      `value "${u.value}" cannot be set in a network namespace of this kernel: ${problem}${at}`,
      u.entry.file === undefined ? {} : { file: u.entry.file },
    );
  }
}
