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
import { checkSysctls } from "../../lab/describe/sysctls.ts";
import {
  experimentFiles,
  isHistoricalEntry,
  loadExperiments,
  loadLab,
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

// --- claims of your own, filters and what-ifs ------------------------------

const CLAIMS_MD = `## src — [A post](https://example.org/post)

- **my:one** The first claim.
- **my:two** The second claim.
`;

/** An experiment deciding `claims` (ids), with `extra` in its definition. */
function deciding(id: string, claims: string[], extra = ""): string {
  return experiment(id, extra).replace(
    `claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "n" }) },`,
    `claims: { ${
      claims.map((c) => `${JSON.stringify(c)}: () => ({ verdict: "reproduced", evidence: "n" })`)
        .join(", ")
    } },`,
  );
}

Deno.test("experimentFiles() leaves out subdirectories, so experiments/examples is not in the default run", async () => {
  const files = await experimentFiles([join(ROOT, "experiments")]);
  ok(files.length >= 15);
  ok(files.every((f) => !f.includes("/examples/")), files.join(", "));
  const examples = await experimentFiles([join(ROOT, "experiments/examples")]);
  deepEqual(examples.map((f) => f.split("/").at(-1)), ["cloudflare_syn_queue.ts"]);
});

Deno.test("loadLab() resolves claims of your own from an experiment's claimsFiles, relative to it", async () => {
  await withDir({ "claims.md": CLAIMS_MD }, async (dir) => {
    await Deno.mkdir(join(dir, "sub"));
    await Deno.writeTextFile(
      join(dir, "sub", "one.ts"),
      deciding("one", ["my:one", "A2.1"], `claimsFiles: ["../claims.md"],`),
    );
    const { experiments, claims } = await loadLab([join(dir, "sub")]);
    deepEqual(experiments.map((e) => e.definition.id), ["one"]);
    deepEqual(claims.map((c) => [c.id, c.source.url]), [
      ["my:one", "https://example.org/post"],
      ["my:two", "https://example.org/post"],
    ]);
  });
});

Deno.test("loadLab() takes claims files given (claimsFiles, .md paths, defineClaims modules) for every experiment", async () => {
  const module = `import { defineClaims } from ${JSON.stringify(DEFINE)};
export default defineClaims([{ id: "ts:1", statement: "s", source: { title: "t", url: "https://example.org" } }]);`;
  await withDir(
    {
      "claims.md": CLAIMS_MD,
      "my_claims.ts": module,
      "one.ts": deciding("one", ["my:two", "ts:1"]),
    },
    async (dir) => {
      // The module is found among the directory's files; the Markdown file is given.
      const a = await loadLab([dir], { claimsFiles: [join(dir, "claims.md")] });
      deepEqual(a.experiments.map((e) => e.definition.id), ["one"]);
      deepEqual(a.claims.map((c) => c.id), ["my:one", "my:two", "ts:1"]);
      const b = await loadLab([join(dir, "claims.md"), dir]);
      deepEqual(b.claims.map((c) => c.id), ["my:one", "my:two", "ts:1"]);
    },
  );
});

Deno.test("loadLab() names the file and the claim when an experiment names a claim no file defines", async () => {
  await withDir(
    {
      "claims.md": CLAIMS_MD,
      "one.ts": deciding("one", ["my:tow"], `claimsFiles: ["claims.md"],`),
    },
    async (dir) => {
      const err = await loadLab([join(dir, "one.ts")]).catch((e) => e);
      ok(err instanceof ExperimentDefinitionError, String(err));
      match(
        err.message,
        /one\.ts: Invalid experiment field "claims\.my:tow": no claims file defines "my:tow"; did you mean "my:two"\? \(the claims it sees: my:one, my:two in .*claims\.md\)/,
      );
    },
  );
  await withDir({ "one.ts": deciding("one", ["my:one"]) }, async (dir) => {
    await rejects(
      loadLab([dir]),
      /one\.ts: Invalid experiment field "claims\.my:one": no claims file defines "my:one": the experiment sees none; declare one with claimsFiles: \["\.\/my_claims\.md"\] or pass --claims FILE/,
    );
  });
  await withDir(
    { "one.ts": deciding("one", ["my:one"], `claimsFiles: ["nope.md"],`) },
    async (dir) => {
      await rejects(
        loadLab([dir]),
        /one\.ts: Invalid experiment field "claimsFiles\[0\]": "nope\.md" does not exist/,
      );
    },
  );
});

Deno.test("loadLab() refuses a claims file that redefines a built-in id, and an id two files define", async () => {
  await withDir(
    { "claims.md": "## [A post](https://example.org)\n\n- **A2.1** Mine now.\n" },
    async (dir) => {
      await rejects(
        loadLab([], { claimsFiles: [join(dir, "claims.md")] }),
        /claims\.md:3: Invalid claims field "A2\.1": "A2\.1" is a built-in claim id; claims of your own live in their own namespace/,
      );
    },
  );
  await withDir(
    {
      "a.md": CLAIMS_MD,
      "b.md": "## [Other](https://example.org/other)\n\n- **my:two** Someone else's.\n",
      "one.ts": deciding("one", ["my:two"], `claimsFiles: ["b.md"],`),
    },
    async (dir) => {
      await rejects(
        loadLab([dir], { claimsFiles: [join(dir, "a.md")] }),
        /b\.md:3: Invalid claims field "my:two": "my:two" is defined twice: also at .*a\.md:4/,
      );
    },
  );
});

Deno.test("loadLab() keeps what the filter accepts, and checks claims and what-ifs only for those", async () => {
  await withDir(
    { "a.ts": deciding("a", ["my:missing"]), "b.ts": experiment("b") },
    async (dir) => {
      const { experiments } = await loadLab([dir], {
        filter: ({ definition }) => definition.id === "b",
        set: { backlog: ["4"] },
      });
      deepEqual(experiments.map((e) => e.definition.id), ["b"]);
    },
  );
});

Deno.test("loadLab() applies a what-if to the experiments that have the parameter, through planning", async () => {
  const other = experiment("other").replace("matrix: { backlog: [1, 2] },", "matrix: { n: [1] },")
    .replace("faithfulMatrix: { backlog: [5] },", "").replaceAll("p.backlog", "p.n");
  await withDir({ "one.ts": experiment("one"), "other.ts": other }, async (dir) => {
    const { experiments } = await loadLab([dir], { set: { backlog: ["0", "7"] } });
    const [one, two] = experiments;
    ok(one && !isHistoricalEntry(one) && two && !isHistoricalEntry(two));
    deepEqual(one.overrides, { backlog: [0, 7] });
    deepEqual(one.plans.map((p) => [p.params.backlog, p.server.backlog, p.groups[0]!.count]), [
      [0, 0, 1],
      [7, 7, 8],
    ]);
    equal(two.overrides, undefined);
    // It replaces the faithful matrix's values too.
    const [faithful] =
      (await loadLab([join(dir, "one.ts")], { faithful: true, set: { backlog: [3] } }))
        .experiments;
    ok(faithful && !isHistoricalEntry(faithful));
    deepEqual(faithful.plans.map((p) => p.server.backlog), [3]);
  });
});

Deno.test("loadLab() refuses a bad what-if like a bad definition: unknown name, wrong type, out of range", async () => {
  await withDir({ "one.ts": experiment("one") }, async (dir) => {
    const cases: [Record<string, string[]>, RegExp][] = [
      [
        { backlgo: ["1"] },
        /^ExperimentDefinitionError: Invalid experiment field "matrix\.backlgo": --set backlgo=1: no selected experiment has a parameter "backlgo"; did you mean "backlog"\? \(their parameters: backlog\)/,
      ],
      [
        { backlog: ["many"] },
        /one\.ts: Invalid experiment field "matrix\.backlog": --set backlog=many: expected a number, like the matrix's values \(1, 2, 5\)/,
      ],
      [
        { backlog: ["2", "-1"] },
        /one\.ts: Invalid experiment field "server\.backlog": value -1 is out of range: expected an integer from 0 to 65535.* \(at \{"backlog":-1\}, set by --set backlog=2,-1\)/,
      ],
      [
        { backlog: ["100000"] },
        /one\.ts: Invalid experiment field "clients\[0\]\.count": value 100001 is out of range.*set by --set backlog=100000/,
      ],
    ];
    for (const [set, says] of cases) await rejects(loadLab([dir], { set }), says);
  });
});

Deno.test("loadLab() with onError reports every problem of every file and loads the rest", async () => {
  await withDir(
    {
      "a.ts": experiment("a", `exclusive: "yes",`),
      "b.ts": deciding("b", ["my:nope"]),
      "c.ts": experiment("c").replace("count: (p) => p.backlog + 1", "count: (p) => -p.backlog"),
      "d.ts": experiment("d"),
      "e.md": "nothing here\n",
    },
    async (dir) => {
      const errors: string[] = [];
      const { experiments } = await loadLab([dir], {
        onError: (e) => errors.push(e.message),
        planBothModes: true,
      });
      deepEqual(experiments.map((e) => e.definition.id), ["d"]);
      equal(errors.length, 4, errors.join("\n"));
      match(errors.join("\n"), /a\.ts: Invalid experiment field "exclusive"/);
      match(errors.join("\n"), /b\.ts: Invalid experiment field "claims\.my:nope"/);
      // Both modes are planned: the default matrix's point and the faithful one's.
      match(errors.join("\n"), /c\.ts: .*clients\[0\]\.count.*\(at \{"backlog":1\}\)/);
      match(errors.join("\n"), /c\.ts: .*clients\[0\]\.count.*\(at \{"backlog":5\}\)/);

      // A claims file that fails to load is reported; a claim it might define is not, as well.
      const more: string[] = [];
      await loadLab([dir, join(dir, "e.md")], { onError: (e) => more.push(e.message) });
      match(more.join("\n"), /e\.md: Invalid claims field "claims": no claims found/);
      ok(!more.join("\n").includes("my:nope"), more.join("\n"));
      equal(more.length, 3, more.join("\n")); // a, e.md, c (no faithful plan without planBothModes)
    },
  );
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
