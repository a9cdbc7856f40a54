/**
 * Tests of `lab/describe/user_claims.ts`: claims of your own in Markdown and
 * in `defineClaims` modules, their namespace (`<prefix>:<name>`, apart from
 * the built-in ids), and ids defined twice.
 * @module
 */
import assert, {
  deepStrictEqual as deepEqual,
  match,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { join } from "node:path";
import { ExperimentDefinitionError } from "../../lab/base/errors.ts";
import {
  defineClaims,
  isClaimsDefinition,
  mergeClaims,
  parseClaimsMarkdown,
  type UserClaim,
  userClaimIdProblem,
} from "../../lab/describe/user_claims.ts";
import { loadClaimsFile } from "../../lab/describe/load.ts";
import { ROOT } from "../_helpers.ts";

const SOURCE = { title: "A post", url: "https://example.org/post" };
const DEFINE = new URL("../../define.ts", import.meta.url).href;

/** The error `fn` throws, which must be an ExperimentDefinitionError about claims. */
function claimsError(fn: () => unknown): ExperimentDefinitionError {
  try {
    fn();
  } catch (err) {
    assert(err instanceof ExperimentDefinitionError, `expected a definition error: ${err}`);
    equal(err.subject, "claims");
    return err;
  }
  throw new assert.AssertionError({ message: "expected an ExperimentDefinitionError" });
}

Deno.test("userClaimIdProblem() accepts <prefix>:<name> and refuses what could meet a built-in id", () => {
  for (const id of ["cf:1", "cf:synack-retries", "my-blog:A0.1", "x2:a_b.c"]) {
    equal(userClaimIdProblem(id), undefined, id);
  }
  const cases: [unknown, RegExp][] = [
    ["A0.1", /"A0\.1" is a built-in claim id; claims of your own live in their own namespace/],
    ["A4.10", /built-in claim id.*e\.g\. "mine:A4\.10"/],
    ["synack", /"synack" has no prefix: .*"<prefix>:<name>", e\.g\. "mine:synack"/],
    ["CF:1", /is not "<prefix>:<name>"/],
    ["cf:", /is not "<prefix>:<name>"/],
    ["cf:a b", /is not "<prefix>:<name>"/],
    ["a0:1", /the prefix "a0" looks like a built-in article id/],
    ["a12:x", /the prefix "a12" looks like a built-in article id/],
    [42, /expected a claim id like "cf:synack-retries", got 42/],
  ];
  for (const [id, says] of cases) match(userClaimIdProblem(id) ?? "", says, String(id));
});

Deno.test("defineClaims() marks valid claims and keeps them as given", () => {
  const claims = [
    { id: "cf:one", statement: "One thing.", source: SOURCE },
    { id: "cf:two", statement: "Another.", source: { ...SOURCE, url: "http://example.org/x" } },
  ];
  const def = defineClaims(claims);
  deepEqual(def, { kind: "claims", claims });
  equal(isClaimsDefinition(def), true);
  equal(isClaimsDefinition({ claims }), false);
});

Deno.test("defineClaims() rejects a claim that would collide with a built-in id, and other faults, naming the field", () => {
  const cases: { claims: unknown; field: string; says: RegExp }[] = [
    {
      claims: [{ id: "A2.1", statement: "s", source: SOURCE }],
      field: "claims[0].id",
      says: /"A2\.1" is a built-in claim id/,
    },
    {
      claims: [{ id: "one", statement: "s", source: SOURCE }],
      field: "claims[0].id",
      says: /has no prefix/,
    },
    {
      claims: [
        { id: "cf:one", statement: "s", source: SOURCE },
        { id: "cf:one", statement: "t", source: SOURCE },
      ],
      field: "claims[1].id",
      says: /duplicate claim id "cf:one"/,
    },
    {
      claims: [{ id: "cf:one", statement: " ", source: SOURCE }],
      field: "claims[0].statement",
      says: /state what the source claims/,
    },
    {
      claims: [{ id: "cf:one", statement: "s", source: { title: "", url: SOURCE.url } }],
      field: "claims[0].source.title",
      says: /give the source's title/,
    },
    {
      claims: [{ id: "cf:one", statement: "s", source: { title: "t", url: "ftp://x/y" } }],
      field: "claims[0].source.url",
      says: /expected the source's http\(s\) address/,
    },
    {
      claims: [{ id: "cf:one", statement: "s", source: { title: "t", link: SOURCE.url } }],
      field: "claims[0].source.link",
      says: /unknown field \(valid fields: title, url\)/,
    },
    {
      claims: [{ id: "cf:one", statment: "s", source: SOURCE }],
      field: "claims[0].statment",
      says: /unknown field; did you mean "statement"\?/,
    },
    { claims: [], field: "claims", says: /expected a non-empty array of claims/ },
  ];
  for (const c of cases) {
    const err = claimsError(() => defineClaims(c.claims as never));
    equal(err.field, c.field, JSON.stringify(c.claims));
    match(err.message, c.says);
    match(err.message, /^Invalid claims field "/);
  }
});

const MARKDOWN = `# Claims of a post

Prose is ignored, and so is [a link](https://example.org/elsewhere) outside a heading.

## cf — [SYN packet handling in the wild](https://blog.cloudflare.com/syn-packet-handling-in-the-wild/)

- **cf:one** The first claim,
  continued on an indented line.
- **cf:two** The second claim.

## Another source: [A talk](https://example.org/talk)

* **talk:1** A claim of a talk.
`;

Deno.test("parseClaimsMarkdown() reads each claim with the source its heading links, and its line", () => {
  const claims = parseClaimsMarkdown(MARKDOWN, "mine.md");
  const cloudflare = {
    title: "SYN packet handling in the wild",
    url: "https://blog.cloudflare.com/syn-packet-handling-in-the-wild/",
  };
  deepEqual(claims, [
    {
      id: "cf:one",
      statement: "The first claim, continued on an indented line.",
      source: cloudflare,
      file: "mine.md",
      line: 7,
    },
    { id: "cf:two", statement: "The second claim.", source: cloudflare, file: "mine.md", line: 9 },
    {
      id: "talk:1",
      statement: "A claim of a talk.",
      source: { title: "A talk", url: "https://example.org/talk" },
      file: "mine.md",
      line: 13,
    },
  ]);
});

Deno.test("parseClaimsMarkdown() names the file and line of each fault, with the fix", () => {
  const cases: [string, RegExp][] = [
    [
      "# Mine\n\n- **cf:1** A claim without a source.\n",
      /^mine\.md:3: Invalid claims field "cf:1\.source": the heading above it \(line 1\) has no link to its source: write it as "## Mine — \[Title\]\(https:\/\/…\)"/,
    ],
    [
      "- **cf:1** Before any heading.\n",
      /^mine\.md:1: Invalid claims field "cf:1\.source": no heading names its source/,
    ],
    [
      "## [Post](https://example.org)\n- **A1.3** Shadowing the catalogue.\n",
      /^mine\.md:2: Invalid claims field "A1\.3": "A1\.3" is a built-in claim id; claims of your own live in their own namespace/,
    ],
    [
      "## [Post](https://example.org)\n- **cf:1** One.\n- **cf:1** Again.\n",
      /^mine\.md:3: Invalid claims field "cf:1": duplicate claim id "cf:1" \(also on line 2\)/,
    ],
    [
      "## [Post](example.org/post)\n- **cf:1** One.\n",
      /^mine\.md:1: Invalid claims field "source\.url": expected the source's http\(s\) address/,
    ],
    [
      "## [Post](https://example.org)\n- **cf:1**\n",
      /^mine\.md:2: Invalid claims field "cf:1\.statement": state what the source claims/,
    ],
    ["Only prose.\n", /^mine\.md: Invalid claims field "claims": no claims found/],
  ];
  for (const [text, says] of cases) {
    match(claimsError(() => parseClaimsMarkdown(text, "mine.md")).message, says);
  }
});

Deno.test("mergeClaims() refuses an id two files define, naming both, and counts a file loaded twice once", () => {
  const a: UserClaim[] = [{ id: "cf:1", statement: "s", source: SOURCE, file: "a.md", line: 3 }];
  const b: UserClaim[] = [{ id: "cf:1", statement: "t", source: SOURCE, file: "b.ts" }];
  deepEqual(mergeClaims([a, a]), a);
  const err = claimsError(() => mergeClaims([a, b]));
  match(
    err.message,
    /^b\.ts: Invalid claims field "cf:1": "cf:1" is defined twice: also at a\.md:3; give each claim its own id/,
  );
  const seen: string[] = [];
  deepEqual(mergeClaims([a, b], (e) => seen.push(e.message)), a);
  equal(seen.length, 1);
});

Deno.test("loadClaimsFile() reads Markdown and defineClaims modules, and names the file of each fault", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bl-claims-" });
  try {
    await Deno.writeTextFile(join(dir, "mine.md"), MARKDOWN);
    await Deno.writeTextFile(
      join(dir, "mine.ts"),
      `import { defineClaims } from ${JSON.stringify(DEFINE)};
export default defineClaims([{ id: "ts:1", statement: "From TypeScript.", source: ${
        JSON.stringify(SOURCE)
      } }]);`,
    );
    await Deno.writeTextFile(join(dir, "none.ts"), "export default { claims: [] };");
    await Deno.writeTextFile(
      join(dir, "bad.ts"),
      `import { defineClaims } from ${JSON.stringify(DEFINE)};
export default defineClaims([{ id: "A0.1", statement: "Shadow.", source: ${
        JSON.stringify(SOURCE)
      } }]);`,
    );
    await Deno.writeTextFile(join(dir, "claims.txt"), "");
    const md = await loadClaimsFile(join(dir, "mine.md"));
    deepEqual(md.map((c) => [c.id, c.line]), [["cf:one", 7], ["cf:two", 9], ["talk:1", 13]]);
    match(md[0]!.file!, /mine\.md$/);
    const ts = await loadClaimsFile(join(dir, "mine.ts"));
    deepEqual(ts.map((c) => [c.id, c.statement, c.source]), [["ts:1", "From TypeScript.", SOURCE]]);
    match(ts[0]!.file!, /mine\.ts$/);
    await rejects(
      loadClaimsFile(join(dir, "none.ts")),
      /none\.ts: Invalid claims field "default": no claims/,
    );
    await rejects(
      loadClaimsFile(join(dir, "bad.ts")),
      /bad\.ts: Invalid claims field "claims\[0\]\.id": "A0\.1" is a built-in claim id/,
    );
    await rejects(
      loadClaimsFile(join(dir, "claims.txt")),
      /claims\.txt: Invalid claims field "\(file\)": a claims file is Markdown \(\.md\) or a TypeScript module/,
    );
    await rejects(
      loadClaimsFile(join(dir, "missing.md")),
      /missing\.md: Invalid claims field "\(file\)": cannot read it/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the example claims file states two claims of a real article, with its title and URL", async () => {
  const claims = await loadClaimsFile(join(ROOT, "experiments/examples/cloudflare_claims.md"));
  deepEqual(claims.map((c) => c.id), ["cf:synack-retries", "cf:ack-to-accept-queue"]);
  for (const c of claims) {
    deepEqual(c.source, {
      title: "SYN packet handling in the wild",
      url: "https://blog.cloudflare.com/syn-packet-handling-in-the-wild/",
    });
  }
});
