/**
 * Tests of `deno task lab new <id>`'s file (`lab/describe/scaffold.ts`): it
 * passes `--check` and `deno fmt --check`, explains its fields with links to
 * the README, and is never written over an existing file.
 * @module
 */
import {
  deepStrictEqual as deepEqual,
  match,
  ok,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { join } from "node:path";
import { checkFiles } from "../../lab/describe/check.ts";
import { loadLab } from "../../lab/describe/load.ts";
import {
  experimentFileName,
  scaffoldExperiment,
  writeScaffold,
} from "../../lab/describe/scaffold.ts";
import { parseClaimsMarkdown } from "../../lab/describe/user_claims.ts";
import { ROOT } from "../_helpers.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "scaffold_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("experimentFileName() names the file in snake_case, like every experiment file", () => {
  equal(experimentFileName("my-first-question"), "my_first_question.ts");
  equal(experimentFileName("q2"), "q2.ts");
});

Deno.test("writeScaffold() writes an experiment that passes --check, as it is and with a what-if", async () => {
  await withDir(async (dir) => {
    const file = await writeScaffold("my-question", { dir });
    equal(file, join(dir, "my_question.ts"));
    const r = await checkFiles([file]);
    deepEqual(r.problems, []);
    equal(r.experiments, 1);
    const { experiments } = await loadLab([file], { set: { backlog: ["0", "8"] } });
    const [e] = experiments;
    ok(e && "plans" in e);
    deepEqual(e.plans.map((p) => [p.server.backlog, p.groups[0]!.count]), [[0, 1], [8, 9]]);
    // Exploratory: no claims; the metrics it shows.
    deepEqual(e.definition.claims, undefined);
    deepEqual(e.metrics, [
      "server.recvQ",
      "server.sendQ",
      "server.SYN_RECV",
      "client.SYN_SENT",
      "server.ESTABLISHED",
      "clients.late.pending",
    ]);
  });
});

Deno.test("scaffoldExperiment() is formatted as deno fmt writes it", async () => {
  await withDir(async (dir) => {
    const file = await writeScaffold("fmt-probe", { dir });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--check", `--config=${join(ROOT, "deno.json")}`, file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
  });
});

Deno.test("scaffoldExperiment() explains each field and links the README sections it names", async () => {
  const text = scaffoldExperiment("my-question", { dir: join(ROOT, "experiments") });
  match(text, /import \{ defineExperiment \} from "\.\.\/define\.ts";/);
  match(text, /\(\.\.\/README\.md#writing-an-experiment\)/);
  match(text, /deno task lab --check experiments\/my_question\.ts/);
  match(text, /sudo deno task lab experiments\/my_question\.ts --set backlog=0,8/);
  for (
    const field of ["id", "title", "hypothesis", "matrix", "hosts", "server", "observe", "expect"]
  ) {
    match(
      text,
      new RegExp(`// [^\\n]*\\n(\\s*// [^\\n]*\\n)*\\s*${field}:`),
      `a comment above ${field}`,
    );
  }
  match(text, /claimsFiles: \["\.\/my_claims\.md"\]/);
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  match(readme, /^## Writing an experiment$/m);
  match(readme, /^### Claims of your own$/m);
  match(readme, /^### Metrics$|\| metric {2,}\|/m);
});

Deno.test("writeScaffold() never overwrites a file and refuses an id that is not kebab-case", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "taken.ts"), "mine");
    await rejects(
      writeScaffold("taken", { dir }),
      /Invalid experiment field "id": .*taken\.ts exists; it is never overwritten: choose another id or remove the file/,
    );
    equal(await Deno.readTextFile(join(dir, "taken.ts")), "mine");
    await rejects(writeScaffold("My_Question", { dir }), /"My_Question" is not kebab-case/);
    deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["taken.ts"]);
  });
});

Deno.test("docs/first-experiment.md: its claims file parses, its links resolve, its quoted output is the CLI's", async () => {
  const doc = await Deno.readTextFile(join(ROOT, "docs/first-experiment.md"));
  const claimsMd = /```md\n(# My claims\n[\s\S]*?)```/.exec(doc)?.[1];
  ok(claimsMd, "the tutorial shows a claims file");
  deepEqual(parseClaimsMarkdown(claimsMd, "my_claims.md").map((c) => [c.id, c.source.url]), [
    ["man:backlog-is-the-maximum", "https://man7.org/linux/man-pages/man2/listen.2.html"],
  ]);
  const anchors = new Set(
    [...doc.matchAll(/^## (.+)$/gm)].map((m) =>
      m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, "").replaceAll(" ", "-")
    ),
  );
  for (const [, target] of doc.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^https?:/.test(target!) || target!.startsWith("#claim-") || target!.startsWith("#exp-")) {
      continue; // a source, or an anchor of the quoted report
    }
    if (target!.startsWith("#")) ok(anchors.has(target!.slice(1)), `anchor ${target}`);
    else {
      const path = join(ROOT, "docs", target!.replace(/#.*$/, ""));
      ok(await Deno.stat(path).then(() => true, () => false), `file ${target}`);
    }
  }
  // The scaffold it starts from says what the tutorial quotes.
  const text = scaffoldExperiment("my-question", { dir: join(ROOT, "experiments") });
  for (
    const line of [
      "matrix: { backlog: [2, 4] },",
      'metrics: ["server.recvQ", "server.sendQ", "server.SYN_RECV", "client.SYN_SENT"],',
    ]
  ) {
    ok(text.includes(line) && doc.includes(line), line);
  }
  match(doc, /Wrote experiments\/my_question\.ts: an exploratory experiment to make your own/);
});
