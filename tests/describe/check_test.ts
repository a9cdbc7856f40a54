/**
 * Tests of `--check` without root: `checkFiles()` (type check, validation,
 * claims, planning of both modes, sysctl names), `parseDiagnostics()` and
 * `hostSysctls()`.
 * @module
 */
import { deepStrictEqual as deepEqual, match, ok, strictEqual as equal } from "node:assert/strict";
import { join } from "node:path";
import { checkFiles, hostSysctls } from "../../lab/describe/check.ts";
import { parseDiagnostics } from "../../lab/describe/type_check.ts";
import { ROOT } from "../_helpers.ts";

const DEFINE = new URL("../../define.ts", import.meta.url).href;

/** A valid experiment file; `edit` changes its text. */
function experiment(id: string, edit: (text: string) => string = (t) => t): string {
  return edit(`import { defineExperiment } from ${JSON.stringify(DEFINE)};
export default defineExperiment<{ backlog: number[] }>({
  id: ${JSON.stringify(id)},
  title: "t",
  hypothesis: "h",
  matrix: { backlog: [1, 2] },
  faithfulMatrix: { backlog: [3] },
  hosts: { server: { sysctls: { "net.core.somaxconn": 4096 } }, client: {} },
  server: { host: "server", backlog: (p) => p.backlog },
  clients: [{ name: "c", host: "client", count: (p) => p.backlog + 1 }],
  observe: { intervalMs: 20, windowMs: 500 },
  expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: (p) => p.backlog + 1 }],
  claims: {
    "A2.1": (runs) => ({ verdict: "reproduced", evidence: String(runs[0]!.params.backlog) }),
  },
});
`);
}

async function withDir(files: Record<string, string>, fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "check_test_" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("checkFiles() finds no problem in the repository's experiments and the examples", async () => {
  const r = await checkFiles([join(ROOT, "experiments"), join(ROOT, "experiments/examples")]);
  deepEqual(r.problems, []);
  ok(r.experiments >= 15, `${r.experiments} experiments`);
  equal(r.claims, 2);
  ok(r.points > 46, `${r.points} points`);
});

Deno.test("checkFiles() reports every problem of every file at once: type errors with their line, definition errors with their field", async () => {
  await withDir(
    {
      // Only the type check sees this one: the rule reads a parameter the matrix does not have.
      "a_typo.ts": experiment(
        "a",
        (t) => t.replace("runs[0]!.params.backlog", "runs[0]!.params.somaxconn"),
      ),
      // Both see an unknown field.
      "b_field.ts": experiment(
        "b",
        (t) => t.replace("backlog: (p) => p.backlog }", "backlog: (p) => p.backlog, backlgo: 1 }"),
      ),
      // Planning the faithful matrix fails; the default one is fine.
      "c_faithful.ts": experiment(
        "c",
        (t) =>
          t.replace("faithfulMatrix: { backlog: [3] }", "faithfulMatrix: { backlog: [70000] }"),
      ),
      // A claim of your own that no claims file defines.
      "d_claim.ts": experiment(
        "d",
        (t) => t.replace('"A2.1": (runs)', '"mine:accept-queue": (runs)'),
      ),
      // A sysctl this machine does not have.
      "e_sysctl.ts": experiment(
        "e",
        (t) => t.replace('"net.core.somaxconn"', '"net.core.somaxcon"'),
      ),
      "f_good.ts": experiment("f"),
    },
    async (dir) => {
      const r = await checkFiles([dir, join(dir, "missing.ts")]);
      const text = r.problems.map((p) => p.message).join("\n");
      equal(r.problems.length, 7, text);
      match(text, /"[^"]*missing\.ts" does not exist/);
      match(
        text,
        /a_typo\.ts:14:\d+: Type error TS2339: Property 'somaxconn' does not exist on type/,
      );
      equal(
        r.problems.find((p) => p.message.includes("TS2339"))?.source?.includes("somaxconn"),
        true,
      );
      match(
        text,
        /b_field\.ts:9:\d+: Type error TS2561: Object literal may only specify known properties, but 'backlgo' does not exist.*Did you mean to write 'backlog'\?/,
      );
      match(
        text,
        /b_field\.ts: Invalid experiment field "server\.backlgo": unknown field; did you mean "backlog"\?/,
      );
      match(
        text,
        /c_faithful\.ts: Invalid experiment field "server\.backlog": value 70000 is out of range.*\(at \{"backlog":70000\}\)/,
      );
      match(
        text,
        /d_claim\.ts: Invalid experiment field "claims\.mine:accept-queue": no claims file defines "mine:accept-queue"/,
      );
      match(
        text,
        /e_sysctl\.ts: Invalid experiment field "hosts\.server\.sysctls\.net\.core\.somaxcon": this machine has no sysctl "net\.core\.somaxcon"; did you mean "net\.core\.somaxconn"\?/,
      );
      // Grouped by file, in the order of the files; a file's type errors first.
      const files = r.problems.map((p) => p.file?.split("/").at(-1));
      deepEqual(files, [
        "a_typo.ts",
        "b_field.ts",
        "b_field.ts",
        "c_faithful.ts",
        "d_claim.ts",
        "e_sysctl.ts",
        undefined, // the missing path
      ]);
      equal(r.problems[1]!.kind, "type");
      equal(r.problems[2]!.kind, "definition");
      // Counted: those that validated and planned in the mode asked (c fails only in the
      // faithful one); b (its field) and d (its claim) are left out.
      equal(r.experiments, 4);
    },
  );
});

Deno.test("checkFiles() checks claims files given and declared, and what-ifs", async () => {
  await withDir(
    {
      "claims.md":
        "## [A post](https://example.org/post)\n\n- **mine:one** One.\n- **A0.1** Two.\n",
      "one.ts": experiment("one", (t) => t.replace('"A2.1": (runs)', '"mine:one": (runs)')),
    },
    async (dir) => {
      const r = await checkFiles([join(dir, "one.ts")], {
        claimsFiles: [join(dir, "claims.md")],
        set: { backlog: ["x"] },
      });
      const text = r.problems.map((p) => p.message).join("\n");
      match(text, /claims\.md:4: Invalid claims field "A0\.1": "A0\.1" is a built-in claim id/);
      match(
        text,
        /one\.ts: Invalid experiment field "matrix\.backlog": --set backlog=x: expected a number/,
      );
    },
  );
});

Deno.test("parseDiagnostics() reads deno check's errors: code, message, source line and place", () => {
  const text =
    `TS2339 [ERROR]: Property 'somaxconn' does not exist on type 'ParamsOf<{ readonly backlog: readonly [1, 2]; }>'.
  expect: [{ name: "q", metric: "server.ESTABLISHED", equals: (p) => p.somaxconn }],
                                                                       ~~~~~~~~~
    at file:///tmp/x/typo.ts:11:72

TS2769 [ERROR]: No overload matches this call.
  Overload 1 of 2, '(o: {}): string[]', gave the following error.
    Argument of type 'undefined' is not assignable to parameter of type '{}'.
  Object.keys(def.claims)
              ~~~~~~~~~~
    at file:///tmp/x/other.ts:3:13

    The expected type comes from property 'server' which is declared here
      server: ServerDefinition<ParamsOf<M>>;
      ~~~~~~
        at file:///work/lab/describe/types.ts:254:3

Found 2 errors.

error: Type checking failed.
`;
  const problems = parseDiagnostics(text);
  equal(problems.length, 2);
  deepEqual(
    { ...problems[0]!, file: problems[0]!.file?.split("/").at(-1) },
    {
      code: "TS2339",
      message:
        "Property 'somaxconn' does not exist on type 'ParamsOf<{ readonly backlog: readonly [1, 2]; }>'.",
      source: 'expect: [{ name: "q", metric: "server.ESTABLISHED", equals: (p) => p.somaxconn }],',
      file: "typo.ts",
      line: 11,
      column: 72,
    },
  );
  equal(
    problems[1]!.message,
    "No overload matches this call. Overload 1 of 2, '(o: {}): string[]', gave the following error. Argument of type 'undefined' is not assignable to parameter of type '{}'.",
  );
  equal(problems[1]!.line, 3);
  deepEqual(parseDiagnostics('error: Module not found "file:///tmp/x/nope.ts".\n'), [
    { code: "deno", message: 'Module not found "file:///tmp/x/nope.ts".' },
  ]);
});

Deno.test("hostSysctls() lists this machine's net.* sysctls by name", async () => {
  const names = await hostSysctls();
  ok(names.has("net.core.somaxconn"));
  ok(names.has("net.ipv4.tcp_max_syn_backlog"));
  ok([...names].every((n) => n.startsWith("net.")));
});
