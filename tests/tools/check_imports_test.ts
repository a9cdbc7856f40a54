/**
 * Tests of `tools/check_imports.ts`, the check `deno task check` runs: bad
 * graphs fail with a line naming each problem, and the repository's own graph
 * has none.
 * @module
 */
import { deepStrictEqual as deepEqual, match, strictEqual as equal } from "node:assert/strict";
import {
  cycles,
  type ImportGraph,
  importProblems,
  repositoryGraph,
  stageOf,
  STAGES,
} from "../../tools/check_imports.ts";
import { ROOT } from "../_helpers.ts";

const graph = (entries: Record<string, string[]>): ImportGraph => new Map(Object.entries(entries));

Deno.test("stageOf() puts each folder of lab/ in its stage, in the order of a run", () => {
  const order = [
    "lab/results.ts",
    "lab/describe/plan.ts",
    "lab/topology/topology.ts",
    "lab/act/launch.ts",
    "lab/observe/sampler.ts",
    "lab/judge/ledger.ts",
    "lab/report/markdown.ts",
    "lab/run/lab.ts",
    "lab/cli.ts",
  ].map(stageOf);
  deepEqual(order, [...order].sort((a, b) => a! - b!));
  equal(new Set(order).size, order.length);
  equal(stageOf("lab/base/wait.ts"), stageOf("lab/results.ts"), "base helpers are the contract's");
  equal(stageOf("define.ts"), STAGES.findIndex((s) => s.name === "describe"));
  equal(stageOf("tests/x_test.ts"), undefined);
});

Deno.test("cycles() finds each loop once, and a self-import", () => {
  deepEqual(
    cycles(graph({ a: ["b"], b: ["c"], c: ["a"], d: ["a"], e: ["e"] })),
    [["a", "b", "c"], ["e"]],
  );
  deepEqual(cycles(graph({ a: ["b"], b: [], c: ["a", "b"] })), []);
});

Deno.test("importProblems() names a cycle and a backward stage arrow", () => {
  const problems = importProblems(graph({
    "lab/results.ts": ["lab/act/timeline.ts"],
    "lab/act/timeline.ts": ["lab/results.ts"],
  }));
  match(
    problems[0]!,
    /^Import cycle: lab\/act\/timeline\.ts → lab\/results\.ts → lab\/act\/timeline\.ts/,
  );
  match(
    problems[1]!,
    /^Backward import: lab\/results\.ts \(stage contract\) imports lab\/act\/timeline\.ts \(stage act, later\)/,
  );
  equal(problems.length, 2);
});

Deno.test("importProblems() refuses another folder's private file, and passes a forward arrow", () => {
  deepEqual(
    importProblems(graph({
      "lab/observe/sock_diag.ts": ["lab/act/programs/_lines.ts", "lab/topology/setns.ts"],
      "lab/topology/setns.ts": [],
      "lab/act/programs/_lines.ts": [],
    })),
    [
      "Private import: lab/observe/sock_diag.ts imports lab/act/programs/_lines.ts, a private file of another folder; export what it needs from a public file there",
    ],
  );
});

Deno.test("importProblems() keeps experiments to the authoring entry and it to no package", () => {
  const problems = importProblems(graph({
    "experiments/a.ts": ["mod.ts", "experiments/_shared.ts"],
    "experiments/_shared.ts": ["define.ts"],
    "define.ts": ["lab/describe/validate.ts"],
    "lab/describe/validate.ts": ["npm:cli-table3"],
    "mod.ts": [],
  }));
  deepEqual(problems, [
    "Authoring entry: define.ts loads npm:cli-table3; an experiment must load no package (move the import out of the describe stage)",
    "Experiment import: experiments/a.ts imports mod.ts; experiments import only the authoring entry define.ts",
  ]);
});

Deno.test("importProblems() keeps Node built-ins out of the authoring entry, not out of the lab", () => {
  const problems = importProblems(graph({
    "define.ts": ["lab/describe/user_claims.ts"],
    "lab/describe/user_claims.ts": ["node:path"],
    "lab/describe/load.ts": ["node:path", "lab/describe/user_claims.ts"],
  }));
  deepEqual(problems, [
    "Authoring entry: define.ts loads node:path, which starts Deno's Node layer; keep what needs it (reading files, paths) in load.ts",
  ]);
  deepEqual(importProblems(graph({ "define.ts": [], "lab/describe/load.ts": ["node:path"] })), []);
});

Deno.test("the repository's import graph has no cycle, no backward arrow and a package-free authoring entry", async () => {
  const g = await repositoryGraph(ROOT);
  for (const f of ["define.ts", "mod.ts", "lab/cli.ts", "lab/act/programs/listen_server.ts"]) {
    equal(g.has(f), true, f);
  }
  deepEqual(importProblems(g), []);
});
