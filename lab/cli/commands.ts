/**
 * The command line's small commands: `--check`, `new <id>` and `--compare`.
 * @module
 */
import { EXPERIMENTS_DIR, NEW_HELP } from "./options.ts";
import { terminalWidth } from "./run.ts";
import { parseArgs } from "node:util";
import { relative } from "node:path";
import { ExperimentDefinitionError } from "../base/errors.ts";
import { plural, seconds } from "../base/format.ts";
import { checkFiles } from "../describe/check.ts";
import { writeScaffold } from "../describe/scaffold.ts";
import { compareReports } from "../judge/compare.ts";
import { CompareInputError, loadReport } from "../judge/load_report.ts";
import { comparisonMarkdown, comparisonTable } from "../report/compare_text.ts";
import { shellCommand } from "../observe/machine.ts";

/** `--check`: prints every problem of the files (or that they are fine); 0 or 2. */
export async function checkCommand(
  paths: readonly string[],
  options: { claimsFiles: string[]; set: Record<string, string[]>; faithful?: boolean },
): Promise<number> {
  const t0 = performance.now();
  const r = await checkFiles(paths.length ? paths : [EXPERIMENTS_DIR], options);
  for (const p of r.problems) {
    console.error(p.source ? `${p.message}\n    ${p.source}` : p.message);
  }
  const what = `${plural(r.files.length, "file")}: ${plural(r.experiments, "experiment")}, ${
    plural(r.points, "matrix point")
  } planned (faithful matrices too), ${plural(r.claims, "claim")} of your own`;
  if (r.problems.length) {
    console.error(
      `\n${plural(r.problems.length, "problem")} in ${what}. Fix them and run --check again.`,
    );
    return 2;
  }
  console.log(
    `Checked ${what} in ${seconds(performance.now() - t0)}: no problems. ` +
      `Run ${r.experiments === 1 ? "it" : "them"} as root: ${
        shellCommand(["sudo", "deno", "task", "lab", ...paths, ...claimsArgs(options.claimsFiles)])
      }`,
  );
  return 0;
}

function claimsArgs(files: readonly string[]): string[] {
  return files.flatMap((f) => ["--claims", f]);
}

/** `new <id>`: writes a first experiment; 0, or 2 for a bad id or an existing file. */
export async function newCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { dir: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : err}\n${NEW_HELP}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(NEW_HELP);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    console.error(`${NEW_HELP}\n\nGive one id, e.g. deno task lab new my-first-question`);
    return 2;
  }
  const id = parsed.positionals[0]!;
  try {
    const path = await writeScaffold(
      id,
      parsed.values.dir === undefined ? {} : {
        dir: parsed.values.dir,
      },
    );
    const file = relative(Deno.cwd(), path) || path;
    console.log(
      `Wrote ${file}: an exploratory experiment to make your own (its comments say how).\n` +
        `Check it (no root needed): deno task lab --check ${file}\n` +
        `Run it (as root):          sudo deno task lab ${file}`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ExperimentDefinitionError) {
      console.error(`Cannot write experiment "${id}": ${err.detail}`);
      return 2;
    }
    throw err;
  }
}

/** `--compare A B`: prints what differs between two results files. */
export async function compareCommand(paths: string[], markdown: boolean): Promise<number> {
  if (paths.length !== 2) {
    console.error(
      `--compare takes two results.json files, got ${paths.length}: deno task lab --compare A/results.json B/results.json`,
    );
    return 2;
  }
  try {
    // One after the other, so that the error names the first bad file in the
    // order given, not whichever read failed first.
    const a = await loadReport(paths[0]!);
    const b = await loadReport(paths[1]!);
    const comparison = compareReports(a, b, { sources: [paths[0]!, paths[1]!] });
    console.log(
      markdown ? comparisonMarkdown(comparison) : comparisonTable(comparison, terminalWidth()),
    );
    return 0;
  } catch (err) {
    if (err instanceof CompareInputError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
}
