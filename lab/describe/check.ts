/**
 * `deno task lab --check [paths]`: everything about experiment and claims
 * files that can be known without root, at once: the files type-check
 * (`deno check`), every definition and claims file validates, every claim an
 * experiment names is defined once, every matrix point plans in both the
 * default and the faithful mode (what-ifs included), and every sysctl named
 * exists on this machine. Nothing runs, nothing is created.
 * @module
 */
import { dirname, relative, resolve } from "node:path";
import type { ExperimentDefinitionError } from "../base/errors.ts";
import { checkSysctls } from "./sysctls.ts";
import { experimentFiles, isHistoricalEntry, loadLab, type LoadOptions } from "./load.ts";
import { matrixPoints } from "./plan.ts";
import type { Matrix } from "./types.ts";
import { typeCheck, type TypeProblem } from "./type_check.ts";

/** Options of {@linkcode checkFiles}. */
export interface CheckOptions extends Pick<LoadOptions, "claimsFiles" | "set" | "faithful"> {
  /** Run `deno check` on the files (default true). */
  typeCheck?: boolean;
  /** The sysctl names the machine has (default: those under `/proc/sys/net`). */
  sysctls?: ReadonlySet<string>;
}

/** One problem `--check` found. */
export interface CheckProblem {
  /** A type error (`deno check`) or a definition error (validation, claims, planning). */
  kind: "type" | "definition";
  /** The file it is in, relative to the working directory, when known. */
  file?: string;
  /** The whole message: file, line or field, what is wrong and the fix. */
  message: string;
  /** For a type error: the source line it points at. */
  source?: string;
}

/** What {@linkcode checkFiles} found. */
export interface CheckReport {
  /** The experiment and claims files checked, in order. */
  files: string[];
  /** Experiments that loaded and planned. */
  experiments: number;
  /** Claims of your own that loaded. */
  claims: number;
  /** Matrix points planned, over both modes (faithful matrices counted once more). */
  points: number;
  /** Every problem, grouped by file in the order of `files`. */
  problems: CheckProblem[];
}

/**
 * Checks experiment and claims files without running them.
 *
 * @param paths Experiment files and directories, `.md` claims files or claims modules.
 * @param options Claims files (`--claims`), what-ifs (`--set`) and the mode.
 * @returns The files, counts and every problem.
 */
export async function checkFiles(
  paths: readonly string[],
  options: CheckOptions = {},
): Promise<CheckReport> {
  const problems: CheckProblem[] = [];
  const definition = (err: ExperimentDefinitionError) =>
    problems.push({
      kind: "definition",
      ...(err.file === undefined ? {} : { file: err.file.replace(/:\d+$/, "") }),
      message: err.message,
    });
  // The files checked, in order (a path that does not exist, or holds none, is loadLab's to report).
  const files: string[] = [];
  for (const p of paths) files.push(...await experimentFiles([p]).catch(() => []));
  files.push(...(options.claimsFiles ?? []));
  const loaded = await loadLab(paths, {
    ...(options.claimsFiles ? { claimsFiles: options.claimsFiles } : {}),
    ...(options.set ? { set: options.set } : {}),
    ...(options.faithful ? { faithful: true } : {}),
    onError: definition,
    planBothModes: true,
  });
  checkSysctls(loaded.experiments, options.sysctls ?? await hostSysctls(), {
    onError: definition,
    where: "this machine",
  });

  // The claims files experiments declare were checked too (and a module of them type-checks).
  for (const e of loaded.experiments) {
    if (isHistoricalEntry(e)) continue;
    for (const f of e.definition.claimsFiles ?? []) {
      const path = relative(Deno.cwd(), resolve(dirname(resolve(e.file)), f));
      if (!files.some((x) => resolve(x) === resolve(path))) files.push(path);
    }
  }
  const typed = files.filter((f) => f.endsWith(".ts"));
  if (options.typeCheck ?? true) {
    const types = (await typeCheck(typed)).sort((a, b) =>
      (a.file ?? "").localeCompare(b.file ?? "") || (a.line ?? 0) - (b.line ?? 0)
    );
    problems.unshift(...types.map(typeProblem));
  }

  let points = 0;
  for (const e of loaded.experiments) {
    if (isHistoricalEntry(e)) continue;
    points += e.plans.length;
    const def = e.definition;
    if (def.faithfulMatrix !== undefined) {
      const other = e.mode === "faithful"
        ? { ...def.matrix, ...(e.overrides ?? {}) }
        : { ...def.matrix, ...def.faithfulMatrix, ...(e.overrides ?? {}) };
      points += matrixPoints(other as Matrix).length;
    }
  }
  const order = (p: CheckProblem) => {
    const i = files.findIndex((f) => p.file !== undefined && resolve(f) === resolve(p.file));
    return i < 0 ? files.length : i;
  };
  problems.sort((a, b) =>
    order(a) - order(b) || (a.kind === b.kind ? 0 : a.kind === "type" ? -1 : 1)
  );
  return {
    files,
    experiments: loaded.experiments.filter((e) => !isHistoricalEntry(e)).length,
    claims: loaded.claims.length,
    points,
    problems,
  };
}

function typeProblem(p: TypeProblem): CheckProblem {
  const at = p.file === undefined
    ? ""
    : `${p.file}${p.line === undefined ? "" : `:${p.line}:${p.column}`}: `;
  return {
    kind: "type",
    ...(p.file === undefined ? {} : { file: p.file }),
    message: `${at}Type error ${p.code}: ${p.message}`,
    ...(p.source === undefined ? {} : { source: p.source }),
  };
}

/** The `net.*` sysctl names under `/proc/sys/net` of this machine (readable by any user). */
export async function hostSysctls(root = "/proc/sys/net"): Promise<Set<string>> {
  const names = new Set<string>();
  const walk = async (dir: string, prefix: string, depth: number) => {
    if (depth > 6) return;
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    for (const e of entries) {
      const name = `${prefix}.${e.name}`;
      if (e.isDirectory) await walk(`${dir}/${e.name}`, name, depth + 1);
      else names.add(name);
    }
  };
  await walk(root, "net", 0);
  return names;
}
