/**
 * `deno task check` runs this: the lab's imports must form no cycle and point
 * one way, from a later stage of a run to an earlier one (or to the results
 * contract), never back. The stages, in order, are the folders of `lab/`:
 * see {@linkcode STAGES}. Also: a `_`-prefixed (private) file is imported
 * only from its own folder, and an experiment imports only the authoring
 * entry (`define.ts`) and its own folder's private helpers; and the
 * authoring entry loads no package (no chart, PNG or table library) and no
 * Node built-in (`node:path` starts Deno's Node layer), so that loading an
 * experiment stays fast.
 *
 * The module graph comes from `deno info --json` of a temporary module that
 * imports every checked file, so it is Deno's own resolution.
 *
 * Usage: `deno run -A tools/check_imports.ts` (exit 1 with one line per
 * problem, 0 and a one-line summary otherwise).
 * @module
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join, relative } from "node:path";

/** The stages of a run in order; a file may import its own stage or an earlier one. */
export const STAGES: readonly { name: string; paths: readonly string[] }[] = [
  { name: "contract", paths: ["lab/base/", "lab/results.ts"] },
  { name: "describe", paths: ["lab/describe/", "define.ts"] },
  { name: "topology", paths: ["lab/topology/"] },
  { name: "act", paths: ["lab/act/"] },
  { name: "observe", paths: ["lab/observe/"] },
  { name: "judge", paths: ["lab/judge/"] },
  { name: "report", paths: ["lab/report/"] },
  { name: "run", paths: ["lab/run/"] },
  { name: "kernel", paths: ["lab/kernel/"] },
  { name: "cli", paths: ["lab/cli.ts", "lab/cli/", "main.ts"] },
  { name: "library", paths: ["mod.ts"] },
  { name: "tools", paths: ["tools/"] },
];

/**
 * A module graph: repository-relative file → the repository files it imports,
 * the packages it imports as `npm:<name>` entries, and Deno's Node built-ins
 * as `node:<name>` entries.
 */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

/** The files an experiment may import from outside its folder: the authoring entry. */
export const AUTHORING_ENTRY = "define.ts";

/** The stage index of a repository file, or undefined for files outside the stages. */
export function stageOf(file: string): number | undefined {
  const i = STAGES.findIndex((s) =>
    s.paths.some((p) => p.endsWith("/") ? file.startsWith(p) : file === p)
  );
  return i < 0 ? undefined : i;
}

/** Every cycle of the graph (its strongly connected components of more than one file, or a self-import). */
export function cycles(graph: ImportGraph): string[][] {
  // Tarjan's algorithm, iterative so a deep graph cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const start of [...graph.keys()].sort()) {
    if (index.has(start)) continue;
    const work: { v: string; i: number }[] = [{ v: start, i: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const top = work[work.length - 1]!;
      const deps = graph.get(top.v) ?? [];
      if (top.i < deps.length) {
        const w = deps[top.i++]!;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(top.v)!));
      if (low.get(top.v) === index.get(top.v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== top.v);
        if (component.length > 1 || (graph.get(top.v) ?? []).includes(top.v)) {
          out.push(component.sort());
        }
      }
    }
  }
  return out;
}

/** Every file and package `from` imports, directly or not. */
export function closure(graph: ImportGraph, from: string): Set<string> {
  const seen = new Set<string>();
  const todo = [from];
  while (todo.length) {
    const f = todo.pop()!;
    for (const d of graph.get(f) ?? []) {
      if (!seen.has(d)) {
        seen.add(d);
        todo.push(d);
      }
    }
  }
  return seen;
}

/**
 * Every problem of the graph, one line each: cycles, backward stage arrows,
 * private and experiment imports, and packages the authoring entry loads.
 */
export function importProblems(graph: ImportGraph): string[] {
  const problems: string[] = [];
  if (graph.has(AUTHORING_ENTRY)) {
    const reached = [...closure(graph, AUTHORING_ENTRY)];
    const packages = reached.filter((d) => d.startsWith("npm:"));
    if (packages.length) {
      problems.push(
        `Authoring entry: ${AUTHORING_ENTRY} loads ${
          packages.sort().join(", ")
        }; an experiment must load no package (move the import out of the describe stage)`,
      );
    }
    // A Node built-in starts Deno's Node layer: importing define.ts went from ~3.5 ms to 20-80 ms.
    const builtins = reached.filter((d) => d.startsWith("node:"));
    if (builtins.length) {
      problems.push(
        `Authoring entry: ${AUTHORING_ENTRY} loads ${
          builtins.sort().join(", ")
        }, which starts Deno's Node layer; keep what needs it (reading files, paths) in load.ts`,
      );
    }
  }
  for (const c of cycles(graph)) problems.push(`Import cycle: ${c.join(" → ")} → ${c[0]}`);
  for (const [file, deps] of [...graph].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    const from = stageOf(file);
    for (const dep of deps) {
      if (dep.startsWith("npm:") || dep.startsWith("node:")) continue;
      const to = stageOf(dep);
      if (from !== undefined && to !== undefined && to > from) {
        problems.push(
          `Backward import: ${file} (stage ${STAGES[from]!.name}) imports ${dep} (stage ${
            STAGES[to]!.name
          }, later); move the shared piece to stage ${STAGES[from]!.name} or earlier`,
        );
      }
      const base = dep.split("/").at(-1)!;
      if (base.startsWith("_") && dirname(dep) !== dirname(file)) {
        problems.push(
          `Private import: ${file} imports ${dep}, a private file of another folder; export what it needs from a public file there`,
        );
      }
      if (
        file.startsWith("experiments/") && dep !== "define.ts" && !dep.startsWith("experiments/")
      ) {
        problems.push(
          `Experiment import: ${file} imports ${dep}; experiments import only the authoring entry define.ts`,
        );
      }
    }
  }
  return problems;
}

/** The repository's TypeScript files the check covers. */
async function checkedFiles(root: string): Promise<string[]> {
  const files: string[] = ["mod.ts", "main.ts", "define.ts"];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(join(root, dir))) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) files.push(path);
    }
  };
  for (const dir of ["lab", "tools", "experiments"]) await walk(dir);
  const present: string[] = [];
  for (const f of files) {
    if (await Deno.stat(join(root, f)).then(() => true, () => false)) present.push(f);
  }
  return present.sort();
}

/**
 * The import graph of the repository at `root`, from `deno info --json` of one temporary module
 * that imports every checked file.
 */
export async function repositoryGraph(root: string): Promise<ImportGraph> {
  const files = await checkedFiles(root);
  const probe = await Deno.makeTempFile({ prefix: "backlog-lab-imports-", suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      probe,
      files.map((f) => `import ${JSON.stringify(pathToFileURL(join(root, f)).href)};\n`).join(""),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", `--config=${join(root, "deno.json")}`, probe],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `Cannot read the module graph: deno info failed: ${new TextDecoder().decode(out.stderr)}`,
      );
    }
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: {
        specifier: string;
        dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
      }[];
    };
    const local = (specifier: string | undefined) =>
      specifier?.startsWith("file://") ? relative(root, fileURLToPath(specifier)) : undefined;
    const npm = (specifier: string | undefined) =>
      specifier?.startsWith("npm:")
        ? specifier.replace(/^npm:\/?((?:@[^/]+\/)?[^@/]+).*$/, "npm:$1")
        : undefined;
    const graph = new Map<string, string[]>();
    for (const m of info.modules) {
      const file = local(m.specifier);
      if (file === undefined || file.startsWith("..")) continue;
      const deps = (m.dependencies ?? []).flatMap((d) => {
        const specifier = d.code?.specifier ?? d.type?.specifier;
        const pkg = npm(specifier);
        if (pkg !== undefined) return [pkg];
        if (specifier?.startsWith("node:")) return [specifier];
        const dep = local(specifier);
        return dep === undefined || dep.startsWith("..") ? [] : [dep];
      });
      graph.set(file, [...new Set(deps)]);
    }
    return graph;
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
}

if (import.meta.main) {
  const root = fileURLToPath(new URL("../", import.meta.url));
  const graph = await repositoryGraph(root);
  const problems = importProblems(graph);
  for (const p of problems) console.error(p);
  if (problems.length) {
    console.error(`${problems.length} import problem${problems.length === 1 ? "" : "s"}`);
    Deno.exit(1);
  }
  const arrows = [...graph.values()].reduce(
    (n, d) => n + d.filter((x) => !x.startsWith("npm:") && !x.startsWith("node:")).length,
    0,
  );
  console.log(
    `Imports: ${graph.size} files, ${arrows} imports, no cycle, every arrow points to the same or an earlier stage, ${AUTHORING_ENTRY} loads no package and no Node built-in`,
  );
}
