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
  options: PlanOptions = {},
): Promise<LoadedExperiment[]> {
  const loaded: LoadedExperiment[] = [];
  for (const path of await experimentFiles(paths)) {
    const file = relative(Deno.cwd(), resolve(path)) || basename(path);
    let mod: { default?: unknown };
    try {
      mod = await import(new URL(`file://${resolve(path)}`).href);
    } catch (err) {
      if (err instanceof ExperimentDefinitionError) throw err.inFile(file);
      throw new ExperimentDefinitionError(
        "(module)",
        `cannot import it: ${err instanceof Error ? err.message : err}`,
        {
          file,
        },
      );
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
          ...planExperiment(defineExperiment(mod.default as ExperimentDefinition), options),
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
