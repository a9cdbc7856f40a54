/**
 * Finding, importing, validating and planning experiment files: each must
 * `export default defineExperiment({ … })` (or `defineHistoricalClaims`, or
 * `defineClaims` for a claims module). Loading also reads the claims files of
 * your own (given with `--claims`, or declared by an experiment's
 * `claimsFiles`), checks that every claim an experiment names is defined
 * exactly once, applies what-ifs (`--set`), and plans every experiment once,
 * for the mode asked; everything after it uses those plans. Every error names
 * the file.
 * @module
 */
import { basename, dirname, relative, resolve } from "node:path";
import { ExperimentDefinitionError } from "../base/errors.ts";
import { didYouMean } from "../base/suggest.ts";
import type { ParamValue } from "./types.ts";
import { defineHistoricalClaims, type HistoricalClaims, isHistorical } from "./historical.ts";
import { overrideText, planExperiment, type PlanOptions } from "./plan.ts";
import type { PlannedExperiment } from "./run_plan.ts";
import type { ExperimentDefinition } from "./types.ts";
import {
  defineClaims,
  isClaimsDefinition,
  isUserClaimId,
  mergeClaims,
  parseClaimsMarkdown,
  type UserClaim,
} from "./user_claims.ts";
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

/** What {@linkcode loadLab} returns: the experiments and the claims of your own they bring. */
export interface LoadedLab {
  /** The selected experiments (and historical claims), planned, in file order. */
  experiments: LoadedExperiment[];
  /**
   * The claims of your own to list in the ledger: those of the claims files
   * given (`claimsFiles`, `.md` paths, `defineClaims` modules among the
   * paths), then those the selected experiments' own `claimsFiles` define.
   */
  claims: UserClaim[];
}

/** Options of {@linkcode loadLab} and {@linkcode loadExperiments}. */
export interface LoadOptions extends PlanOptions {
  /**
   * Claims files of your own (Markdown or `defineClaims` modules) whose
   * claims every experiment may decide (`--claims FILE`).
   */
  claimsFiles?: readonly string[];
  /**
   * Keeps only the entries it accepts (e.g. `--filter`), after validation and
   * before planning; the claims and what-ifs are checked against those kept.
   */
  filter?: (
    entry: { definition: ExperimentDefinition | HistoricalClaims; file: string },
  ) => boolean;
  /**
   * Called with each definition error instead of throwing it; loading goes on
   * with the other files and checks (what `--check` does). Entries with an
   * error are left out of the result.
   */
  onError?: (err: ExperimentDefinitionError) => void;
  /** Also plan the other mode of experiments that have a faithful matrix, to check every point. */
  planBothModes?: boolean;
  /** How long a file's top-level code may take (default {@linkcode IMPORT_TIMEOUT_MS}). */
  importTimeoutMs?: number;
}

/**
 * The files of `paths`: files as given (`.ts` experiments or claims modules,
 * `.md` claims files), and each directory's `.ts` files sorted, without
 * `_private` ones and without subdirectories (so `experiments/examples/` is
 * not part of a run of `experiments/`).
 */
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
  options: LoadOptions = {},
): Promise<LoadedExperiment[]> {
  return (await loadLab(paths, options)).experiments;
}

/** A file's default export, validated. */
type Imported =
  | { kind: "experiment"; path: string; file: string; definition: ExperimentDefinition }
  | { kind: "historical"; path: string; file: string; definition: HistoricalClaims }
  | { kind: "claims"; path: string; file: string; claims: UserClaim[] };

/** The working-directory-relative name of `path`. */
function fileName(path: string): string {
  return relative(Deno.cwd(), resolve(path)) || basename(path);
}

async function importFile(path: string, timeoutMs: number): Promise<Imported> {
  const file = fileName(path);
  let mod: { default?: unknown };
  try {
    mod = await importWithin(new URL(`file://${resolve(path)}`).href, timeoutMs);
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
    if (isHistorical(mod.default)) {
      return { kind: "historical", path, file, definition: defineHistoricalClaims(mod.default) };
    }
    if (isClaimsDefinition(mod.default)) {
      const claims = defineClaims(mod.default.claims).claims.map((c) => ({ ...c, file }));
      return { kind: "claims", path, file, claims };
    }
    return {
      kind: "experiment",
      path,
      file,
      definition: defineExperiment(mod.default as ExperimentDefinition),
    };
  } catch (err) {
    if (err instanceof ExperimentDefinitionError) throw err.inFile(file);
    throw err;
  }
}

/**
 * Loads one claims file: Markdown (`.md`) or a TypeScript module (`.ts`)
 * whose default export is {@linkcode defineClaims}`([…])`.
 *
 * @param path The file.
 * @returns Its claims, each with `file` relative to the working directory.
 * @throws {ExperimentDefinitionError} naming the file (and line) and the fix.
 */
export async function loadClaimsFile(
  path: string,
  options: { importTimeoutMs?: number } = {},
): Promise<UserClaim[]> {
  const file = fileName(path);
  if (path.endsWith(".md")) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      claimsFail(
        "(file)",
        `cannot read it: ${
          err instanceof Error ? err.message : err
        }; give a claims file (.md or .ts)`,
        file,
      );
    }
    return parseClaimsMarkdown(text, file);
  }
  if (!path.endsWith(".ts")) {
    claimsFail("(file)", `a claims file is Markdown (.md) or a TypeScript module (.ts)`, file);
  }
  let mod: { default?: unknown };
  try {
    mod = await importWithin(
      new URL(`file://${resolve(path)}`).href,
      options.importTimeoutMs ?? IMPORT_TIMEOUT_MS,
    );
  } catch (err) {
    if (err instanceof ExperimentDefinitionError) throw err.inFile(file);
    claimsFail("(module)", `cannot import it: ${importProblem(err)}`, file);
  }
  if (!isClaimsDefinition(mod.default)) {
    claimsFail(
      "default",
      "no claims: end the file with `export default defineClaims([{ id, statement, source }])`",
      file,
    );
  }
  try {
    const def = defineClaims(mod.default.claims);
    return def.claims.map((c) => ({ ...c, file }));
  } catch (err) {
    if (err instanceof ExperimentDefinitionError) throw err.inFile(file);
    throw err;
  }
}

function claimsFail(field: string, detail: string, file: string): never {
  throw new ExperimentDefinitionError(field, detail, { file, subject: "claims" });
}

/**
 * Imports, validates and plans every experiment file, reads the claims files,
 * and checks every claim an experiment names against them.
 *
 * @param paths Experiment files and directories; `.md` files and `defineClaims`
 *   modules among them are claims files.
 * @param options The mode, claims files, what-ifs and a filter; `onError` to
 *   collect every error instead of throwing the first.
 * @returns The selected experiments, planned, and the claims of your own they bring.
 * @throws {ExperimentDefinitionError} naming the file and field: an invalid
 *   definition or claims file, a duplicate id, a claim no claims file defines,
 *   a claim two files define, a `--set` parameter no selected experiment has,
 *   or a value out of range at a matrix point.
 */
export async function loadLab(
  paths: readonly string[],
  options: LoadOptions = {},
): Promise<LoadedLab> {
  const report = options.onError ?? ((err: ExperimentDefinitionError) => {
    throw err;
  });
  /** Runs `fn`; a definition error goes to `report` and gives `undefined`. */
  const attempt = async <T>(fn: () => T | Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ExperimentDefinitionError)) throw err;
      report(err);
      return undefined;
    }
  };
  const timeout = { importTimeoutMs: options.importTimeoutMs ?? IMPORT_TIMEOUT_MS };
  // Each claims file is read once, however many experiments declare it; `undefined`: it failed.
  const claimsFiles = new Map<string, Promise<UserClaim[] | undefined>>();
  const claimsOf = (path: string) => {
    const key = resolve(path);
    let p = claimsFiles.get(key);
    if (p === undefined) claimsFiles.set(key, p = attempt(() => loadClaimsFile(path, timeout)));
    return p;
  };

  const given: UserClaim[][] = [];
  let givenFailed = false;
  const give = (claims: UserClaim[] | undefined) => {
    givenFailed ||= claims === undefined;
    given.push(claims ?? []);
  };
  for (const path of options.claimsFiles ?? []) give(await claimsOf(path));
  const entries: Exclude<Imported, { kind: "claims" }>[] = [];
  const files: string[] = [];
  for (const p of paths) files.push(...await attempt(() => experimentFiles([p])) ?? []);
  for (const path of files) {
    if (path.endsWith(".md")) {
      give(await claimsOf(path));
      continue;
    }
    const imported = await attempt(() => importFile(path, timeout.importTimeoutMs));
    if (imported === undefined) continue;
    if (imported.kind === "claims") {
      given.push(imported.claims);
      continue;
    }
    const dup = entries.find((l) => l.definition.id === imported.definition.id);
    if (dup) {
      report(
        new ExperimentDefinitionError(
          "id",
          `duplicate id "${imported.definition.id}": ${dup.file} uses it too; ids must be unique`,
          { file: imported.file },
        ),
      );
      continue;
    }
    entries.push(imported);
  }
  const selected = entries.filter((e) =>
    options.filter === undefined || options.filter({ definition: e.definition, file: e.file })
  );

  // Claims: the given ones, then each selected experiment's own; an id defined twice is an error.
  const own = new Map<Imported, UserClaim[]>();
  const ownFailed = new Set<Imported>();
  for (const e of selected) {
    if (e.kind !== "experiment") continue;
    const lists: UserClaim[][] = [];
    for (const [i, f] of (e.definition.claimsFiles ?? []).entries()) {
      const path = resolve(dirname(resolve(e.path)), f);
      const exists = await Deno.stat(path).then((s) => s.isFile, () => false);
      if (!exists) {
        report(
          new ExperimentDefinitionError(
            `claimsFiles[${i}]`,
            `"${f}" does not exist (looked for ${
              fileName(path)
            }); paths are relative to the experiment file`,
            { file: e.file },
          ),
        );
        continue;
      }
      const claims = await claimsOf(path);
      if (claims === undefined) ownFailed.add(e);
      lists.push(claims ?? []);
    }
    own.set(e, lists.flat());
  }
  const claims = mergeClaims([...given, ...own.values()], report);
  const everywhere = given.flat();

  // Every claim of your own an experiment names is defined by a claims file it can see. (When a
  // file it can see failed to load, that error is reported already and the claim may be in it.)
  const unresolved = new Set<Imported>();
  for (const e of selected) {
    if (e.kind !== "experiment") continue;
    const visible = [...everywhere, ...(own.get(e) ?? [])];
    for (const id of Object.keys(e.definition.claims ?? {})) {
      if (!isUserClaimId(id) || visible.some((c) => c.id === id)) continue;
      unresolved.add(e);
      if (givenFailed || ownFailed.has(e)) continue;
      report(
        new ExperimentDefinitionError(`claims.${id}`, undefinedClaim(id, visible), {
          file: e.file,
        }),
      );
    }
  }
  const set = options.set ?? {};
  const experiments = selected.filter((e) => e.kind === "experiment");
  for (const [name, values] of Object.entries(experiments.length ? set : {})) {
    if (experiments.some((e) => name in (e.definition.matrix ?? {}))) continue;
    const params = [...new Set(experiments.flatMap((e) => Object.keys(e.definition.matrix ?? {})))];
    report(
      new ExperimentDefinitionError(
        `matrix.${name}`,
        `--set ${
          overrideText({ [name]: values })
        }: no selected experiment has a parameter "${name}"${didYouMean(name, params)} (${
          params.length ? `their parameters: ${params.join(", ")}` : "none of them has a matrix"
        }); narrow the run with --filter to the experiment you mean`,
      ),
    );
  }

  const loaded: LoadedExperiment[] = [];
  for (const e of selected) {
    if (e.kind === "historical") {
      loaded.push({ file: e.file, definition: e.definition });
      continue;
    }
    const params = e.definition.matrix ?? {};
    const mine = Object.fromEntries(Object.entries(set).filter(([k]) => k in params)) as Record<
      string,
      readonly ParamValue[]
    >;
    const plan = (faithful: boolean) =>
      attempt(() => {
        try {
          return planExperiment(e.definition, { faithful, set: mine, file: e.file });
        } catch (err) {
          if (err instanceof ExperimentDefinitionError) throw err.inFile(e.file);
          throw err;
        }
      });
    const planned = await plan(options.faithful ?? false);
    if (options.planBothModes && e.definition.faithfulMatrix !== undefined) {
      await plan(!(options.faithful ?? false));
    }
    if (planned !== undefined && !unresolved.has(e)) loaded.push({ ...planned, file: e.file });
  }
  return { experiments: loaded, claims };
}

/** Why a claim id an experiment names cannot be resolved, with the claims it could mean. */
function undefinedClaim(id: string, visible: readonly UserClaim[]): string {
  if (visible.length === 0) {
    return `no claims file defines "${id}": the experiment sees none; declare one with ` +
      `claimsFiles: ["./my_claims.md"] or pass --claims FILE`;
  }
  const files = [...new Set(visible.map((c) => c.file ?? "(no file)"))];
  const seen = files.map((f) =>
    `${visible.filter((c) => (c.file ?? "(no file)") === f).map((c) => c.id).join(", ")} in ${f}`
  ).join("; ");
  return `no claims file defines "${id}"${
    didYouMean(id, visible.map((c) => c.id))
  } (the claims it sees: ${seen})`;
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
