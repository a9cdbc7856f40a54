/**
 * Tests of `lab/describe/load.ts`: finding experiment files, importing,
 * validating and planning each once, and every error naming its file.
 * @module
 */
import {
  deepStrictEqual as deepEqual,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import { join, relative } from "node:path";
import { ExperimentDefinitionError } from "../../lab/base/errors.ts";
import {
  checkSysctls,
  experimentFiles,
  isHistoricalEntry,
  loadExperiments,
} from "../../lab/describe/load.ts";
import { ROOT } from "../_helpers.ts";

const DEFINE = new URL("../../define.ts", import.meta.url).href;

/** An experiment file's text; `extra` goes into the definition. */
function experiment(id: string, extra = ""): string {
  return `import { defineExperiment } from ${JSON.stringify(DEFINE)};
export default defineExperiment({
  id: ${JSON.stringify(id)},
  title: "t",
  hypothesis: "h",
  matrix: { backlog: [1, 2] },
  faithfulMatrix: { backlog: [5] },
  hosts: { server: { sysctls: { "net.core.somaxconn": 4096 } }, client: {} },
  server: { host: "server", backlog: (p) => p.backlog },
  clients: [{ name: "c", host: "client", count: (p) => p.backlog + 1 }],
  observe: { intervalMs: 20, windowMs: 500 },
  expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: (p) => p.backlog + 1 }],
  claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "n" }) },
  ${extra}
});
`;
}

async function withDir(files: Record<string, string>, fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "load_test_" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("experimentFiles() lists a directory's .ts files sorted, without _private ones", async () => {
  await withDir({ "b.ts": "", "a.ts": "", "_helper.ts": "", "notes.md": "" }, async (dir) => {
    deepEqual(await experimentFiles([dir]), [`${dir}/a.ts`, `${dir}/b.ts`]);
    deepEqual(
      await experimentFiles([`${dir}/_helper.ts`]),
      [`${dir}/_helper.ts`],
      "a file as given",
    );
  });
  await rejects(
    experimentFiles(["/nonexistent/x.ts"]),
    /Invalid experiment field "path": "\/nonexistent\/x\.ts" does not exist/,
  );
});

Deno.test("loadExperiments() plans each experiment once, for the mode asked", async () => {
  await withDir({ "one.ts": experiment("one") }, async (dir) => {
    const [fast] = await loadExperiments([dir]);
    ok(fast && !isHistoricalEntry(fast));
    equal(fast.file, relative(Deno.cwd(), join(dir, "one.ts")));
    equal(fast.mode, "fast");
    deepEqual(fast.plans.map((p) => [p.index, p.of, p.params.backlog, p.groups[0]!.count]), [
      [0, 2, 1, 2],
      [1, 2, 2, 3],
    ]);
    equal(fast.plans[0]!.experiment, "one");
    const [faithful] = await loadExperiments([dir], { faithful: true });
    ok(faithful && !isHistoricalEntry(faithful));
    equal(faithful.mode, "faithful");
    deepEqual(faithful.plans.map((p) => p.server.backlog), [5]);
  });
});

Deno.test("loadExperiments() takes historical claims as entries without plans", async () => {
  const text = `import { defineHistoricalClaims } from ${JSON.stringify(DEFINE)};
export default defineHistoricalClaims({
  id: "old", title: "t", claims: { "A1.1": "Linux before 2.2 cannot be booted here." },
});`;
  await withDir({ "old.ts": text }, async (dir) => {
    const [entry] = await loadExperiments([dir]);
    ok(entry && isHistoricalEntry(entry));
    equal(entry.definition.id, "old");
    ok(!("plans" in entry));
  });
});

Deno.test("loadExperiments() names the file of every error", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { "x.ts": "export const y = 1;" },
      /x\.ts: Invalid experiment field "default": no default export/,
    ],
    [
      { "x.ts": "export default {" },
      /x\.ts: Invalid experiment field "\(module\)": cannot import it/,
    ],
    [
      { "x.ts": experiment("x", `exclusive: "yes",`) },
      /x\.ts: Invalid experiment field "exclusive": expected true or false/,
    ],
    [
      // A value given as a function is checked when planned, with the matrix point.
      {
        "x.ts": experiment("x").replace("count: (p) => p.backlog + 1", "count: (p) => -p.backlog"),
      },
      /x\.ts: Invalid experiment field "clients\[0\]\.count": value -1 is out of range.* \(at \{"backlog":1\}\)/,
    ],
    [
      { "a.ts": experiment("same"), "b.ts": experiment("same") },
      /b\.ts: Invalid experiment field "id": duplicate id "same": .*a\.ts uses it too/,
    ],
  ];
  for (const [files, message] of cases) {
    await withDir(files, async (dir) => {
      const err = await loadExperiments([dir]).catch((e) => e);
      ok(err instanceof ExperimentDefinitionError, String(err));
      match(err.message, message);
    });
  }
});

Deno.test("checkSysctls() refuses a sysctl a namespace of this kernel lacks, naming file and field", async () => {
  await withDir({ "one.ts": experiment("one") }, async (dir) => {
    const loaded = await loadExperiments([dir]);
    checkSysctls(loaded, new Set(["net.core.somaxconn"]));
    throws(
      () => checkSysctls(loaded, new Set(["net.core.somaxcon"])),
      /one\.ts: Invalid experiment field "hosts\.server\.sysctls\.net\.core\.somaxconn": a network namespace of this kernel has no sysctl "net\.core\.somaxconn"; did you mean "net\.core\.somaxcon"\?/,
    );
  });
});

Deno.test("loadExperiments() loads the repository's experiments with every point planned", async () => {
  const loaded = await loadExperiments([join(ROOT, "experiments")]);
  ok(loaded.length >= 15);
  for (const e of loaded) {
    if (isHistoricalEntry(e)) continue;
    ok(e.plans.length > 0, e.definition.id);
    for (const p of e.plans) equal(p.mode, e.mode);
  }
});

Deno.test("experimentFiles() refuses a directory without experiment files", async () => {
  await withDir({ "_helper.ts": "", "notes.md": "" }, async (dir) => {
    await rejects(experimentFiles([dir]), (err: Error) => {
      ok(err instanceof ExperimentDefinitionError);
      match(err.message, new RegExp(`"${dir}" holds no experiment file`));
      return true;
    });
  });
});

Deno.test("loadExperiments() gives up on a top-level await that never settles, naming the file", async () => {
  await withDir({
    "hangs.ts": `await new Promise(() => {});\n${experiment("hangs")}`,
  }, async (dir) => {
    // In a process of its own: the import that never settles stays pending until its exit.
    const script = `
      import { loadExperiments } from ${
      JSON.stringify(new URL("../../lab/describe/load.ts", import.meta.url).href)
    };
      try {
        await loadExperiments([${JSON.stringify(dir)}], { importTimeoutMs: 300 });
      } catch (err) {
        console.log(err.name + ": " + err.message);
      }
      Deno.exit(0);`;
    const out = await new Deno.Command(Deno.execPath(), { args: ["eval", script] }).output();
    const text = new TextDecoder().decode(out.stdout);
    match(
      text,
      /^ExperimentDefinitionError: .*hangs\.ts: Invalid experiment field "\(module\)": cannot import it: its top-level code did not finish within 300 ms: a top-level await that never settles\?/,
    );
  });
});

Deno.test("loadExperiments() bounds a matrix at 1,000 points, naming the sizes", async () => {
  const values = JSON.stringify(Array.from({ length: 100 }, (_, i) => i + 1));
  await withDir({
    "huge.ts": experiment("huge").replace(
      "matrix: { backlog: [1, 2] },",
      `matrix: { backlog: ${values}, other: ${values} },`,
    ),
  }, async (dir) => {
    await rejects(loadExperiments([dir]), (err: Error) => {
      ok(err instanceof ExperimentDefinitionError);
      match(
        err.message,
        /huge\.ts: Invalid experiment field "matrix": 10,000 points \(backlog: 100 × other: 100\) is more than the 1,000 one experiment may have/,
      );
      return true;
    });
  });
});
