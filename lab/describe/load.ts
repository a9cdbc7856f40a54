/**
 * Finding, importing and validating experiment files: each must
 * `export default defineExperiment({ … })`. Every error names the file.
 * @module
 */
import { basename, relative, resolve } from "node:path";
import { defineExperiment, type ExperimentDefinition, planRuns } from "./define.ts";
import { ExperimentDefinitionError } from "../base/errors.ts";
import { defineHistoricalClaims, type HistoricalClaims, isHistorical } from "./historical.ts";
import { didYouMean } from "../base/suggest.ts";

/** An experiment and where it came from. */
export interface LoadedExperiment {
  /** Path relative to the working directory. */
  file: string;
  /** The file's default export, validated with every matrix point planned. */
  definition: ExperimentDefinition | HistoricalClaims;
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
 * Imports and validates every experiment file, matrix values included.
 *
 * @throws {ExperimentDefinitionError} naming the file and field (duplicate ids too).
 */
export async function loadExperiments(paths: readonly string[]): Promise<LoadedExperiment[]> {
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
      const definition = isHistorical(mod.default)
        ? defineHistoricalClaims(mod.default)
        : defineExperiment(mod.default as ExperimentDefinition);
      if (!isHistorical(definition)) {
        planRuns(definition);
        planRuns(definition, { faithful: true });
      }
      const dup = loaded.find((l) => l.definition.id === definition.id);
      if (dup) {
        throw new ExperimentDefinitionError(
          "id",
          `duplicate id "${definition.id}": ${dup.file} uses it too; ids must be unique`,
        );
      }
      loaded.push({ file, definition });
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
  loaded: readonly LoadedExperiment[],
  available: ReadonlySet<string>,
): void {
  for (const { file, definition } of loaded) {
    if (isHistorical(definition)) continue;
    const stepSysctls = (definition.timeline ?? []).flatMap((s, i) =>
      "sysctl" in s.do ? [{ host: s.do.sysctl.host, key: s.do.sysctl.name, i }] : []
    );
    for (const { key, i } of stepSysctls) {
      if (!available.has(key)) {
        throw new ExperimentDefinitionError(
          `timeline[${i}].do.sysctl.name`,
          `a network namespace of this kernel has no sysctl "${key}"${didYouMean(key, available)}`,
          { file },
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
            { file },
          );
        }
      }
    }
  }
}
