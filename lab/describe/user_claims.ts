/**
 * Claims of the user's own: statements from any article, talk or page, each
 * with its source (title and URL), that an experiment decides beside (or
 * instead of) the built-in catalogue's. A claims file is Markdown in the
 * catalogue's shape, or a TypeScript module whose default export is
 * {@linkcode defineClaims}`([…])`.
 *
 * **Their own namespace.** A user claim id is `<prefix>:<name>`, e.g.
 * `cf:synack-retries`: a lowercase prefix you choose (often the source's
 * short name), a colon, and a name. The built-in ids (`A<article>.<n>`) never
 * contain a colon, so a claim of your own can neither collide with nor
 * shadow a built-in one, and an experiment's `claims` key says by its shape
 * which namespace it means. A prefix that looks like a built-in article
 * (`a0`, `a12`) is refused too, so that `a1:3` is never read as `A1.3`.
 * Two files that define the same id are an error naming both.
 *
 * Markdown shape (one claim per list item, under a heading whose link is its
 * source; other lines are prose and ignored):
 *
 * ```md
 * ## cf — [SYN packet handling in the wild](https://blog.cloudflare.com/syn-packet-handling-in-the-wild/)
 *
 * - **cf:synack-retries** The SYN Queue retries a SYN+ACK `net.ipv4.tcp_synack_retries` times.
 * ```
 * @module
 */
import { ExperimentDefinitionError } from "../base/errors.ts";
import { didYouMean } from "../base/suggest.ts";
import { describeValue as describe, isObject } from "../base/values.ts";
import { claimById } from "./catalogue.ts";

/** Where a claim comes from: the article, talk or page that makes it. */
export interface ClaimSource {
  /** Its title, as published. */
  title: string;
  /** Its address: an `http:` or `https:` URL. */
  url: string;
}

/** A claim of your own, as a claims file states it. */
export interface UserClaimDefinition {
  /** `<prefix>:<name>`, e.g. `cf:synack-retries` (see the module's doc: its own namespace). */
  id: string;
  /** What the source claims, as one checkable statement. */
  statement: string;
  /** The article that makes the claim. */
  source: ClaimSource;
}

/** A claims module's default export, made by {@linkcode defineClaims}. */
export interface ClaimsDefinition {
  /** Marks the definition; set by {@linkcode defineClaims}. */
  kind: "claims";
  /** The claims, in the order the ledger lists them. */
  claims: readonly UserClaimDefinition[];
}

/** A claim of your own as loaded: with the file (and line) that defines it. */
export interface UserClaim extends UserClaimDefinition {
  /** The claims file, relative to the working directory, when loaded from one. */
  file?: string;
  /** The line of its list item, in a Markdown claims file. */
  line?: number;
}

/** `<prefix>:<name>`: a lowercase prefix, a colon, then letters, digits, `.`, `_` or `-`. */
export const USER_CLAIM_ID = /^([a-z][a-z0-9-]*):([A-Za-z0-9][A-Za-z0-9._-]*)$/;

/** Whether `id` is written in the user claims' namespace (it has a colon). */
export function isUserClaimId(id: string): boolean {
  return id.includes(":");
}

/** The prefix of a user claim id (`cf` of `cf:1`). */
export function claimPrefix(id: string): string {
  return id.slice(0, id.indexOf(":"));
}

/**
 * Why `id` cannot be a user claim id, or `undefined` when it can: the fix,
 * for an error message.
 */
export function userClaimIdProblem(id: unknown): string | undefined {
  if (typeof id !== "string" || !id.trim()) {
    return `expected a claim id like "cf:synack-retries", got ${describe(id)}`;
  }
  if (claimById(id)) {
    return `"${id}" is a built-in claim id; claims of your own live in their own namespace: ` +
      `write "<prefix>:<name>", e.g. "mine:${id}"`;
  }
  if (!isUserClaimId(id)) {
    return `"${id}" has no prefix: claims of your own are written "<prefix>:<name>", e.g. "mine:${id}"` +
      " (the colon keeps them apart from the built-in A<article>.<n> ids)";
  }
  const m = USER_CLAIM_ID.exec(id);
  if (!m) {
    return `"${id}" is not "<prefix>:<name>": the prefix is lowercase letters, digits and "-" ` +
      `starting with a letter, the name letters, digits, ".", "_" and "-", e.g. "cf:synack-retries"`;
  }
  if (/^a\d+$/.test(m[1]!)) {
    return `the prefix "${m[1]}" looks like a built-in article id (A0 … A4); choose another, ` +
      `e.g. the source's short name`;
  }
  return undefined;
}

function fail(field: string, detail: string, file?: string): never {
  throw new ExperimentDefinitionError(field, detail, {
    subject: "claims",
    ...(file === undefined ? {} : { file }),
  });
}

function sourceProblem(source: unknown): { field: string; detail: string } | undefined {
  if (!isObject(source)) {
    return {
      field: "source",
      detail: `expected { title, url }, got ${describe(source)}`,
    };
  }
  for (const key of Object.keys(source)) {
    if (key !== "title" && key !== "url") {
      return {
        field: `source.${key}`,
        detail: `unknown field${didYouMean(key, ["title", "url"])} (valid fields: title, url)`,
      };
    }
  }
  if (typeof source.title !== "string" || !source.title.trim()) {
    return {
      field: "source.title",
      detail: `give the source's title as published, got ${describe(source.title)}`,
    };
  }
  return urlProblem(source.url);
}

function urlProblem(url: unknown): { field: string; detail: string } | undefined {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === "string" ? new URL(url) : undefined;
  } catch { /* not a URL */ }
  if (!parsed || (parsed.protocol !== "https:" && parsed.protocol !== "http:")) {
    return {
      field: "source.url",
      detail: `expected the source's http(s) address, e.g. "https://example.org/post", got ${
        describe(url)
      }`,
    };
  }
  return undefined;
}

/**
 * Validates claims of your own and marks them as a claims definition; a
 * claims module's default export.
 *
 * @param claims Each claim: `id` (`<prefix>:<name>`), `statement`, `source: { title, url }`.
 * @returns The claims, marked.
 * @throws {ExperimentDefinitionError} naming the claim's field and the fix.
 *
 * @example A claims module
 * ```ts
 * import { defineClaims } from "./user_claims.ts";
 *
 * export default defineClaims([{
 *   id: "cf:synack-retries",
 *   statement: "The SYN Queue retries a SYN+ACK net.ipv4.tcp_synack_retries times.",
 *   source: {
 *     title: "SYN packet handling in the wild",
 *     url: "https://blog.cloudflare.com/syn-packet-handling-in-the-wild/",
 *   },
 * }]);
 * ```
 */
export function defineClaims(claims: readonly UserClaimDefinition[]): ClaimsDefinition {
  if (!Array.isArray(claims) || claims.length === 0) {
    fail("claims", `expected a non-empty array of claims, got ${describe(claims)}`);
  }
  const seen = new Set<string>();
  claims.forEach((c: unknown, i: number) => {
    const f = `claims[${i}]`;
    if (!isObject(c)) fail(f, `expected { id, statement, source }, got ${describe(c)}`);
    for (const key of Object.keys(c)) {
      if (!["id", "statement", "source"].includes(key)) {
        fail(
          `${f}.${key}`,
          `unknown field${
            didYouMean(key, ["id", "statement", "source"])
          } (valid fields: id, statement, source)`,
        );
      }
    }
    const idProblem = userClaimIdProblem(c.id);
    if (idProblem) fail(`${f}.id`, idProblem);
    const id = c.id as string;
    if (seen.has(id)) fail(`${f}.id`, `duplicate claim id "${id}": give each claim its own`);
    seen.add(id);
    if (typeof c.statement !== "string" || !c.statement.trim()) {
      fail(`${f}.statement`, `state what the source claims, got ${describe(c.statement)}`);
    }
    const s = sourceProblem(c.source);
    if (s) fail(`${f}.${s.field}`, s.detail);
  });
  return { kind: "claims", claims };
}

/** Whether a module's default export is a {@linkcode ClaimsDefinition}. */
export function isClaimsDefinition(v: unknown): v is ClaimsDefinition {
  return isObject(v) && v.kind === "claims";
}

const HEADING = /^#{1,6}\s+(.*)$/;
const LINK = /\[([^\]]+)\]\(\s*<?([^)\s>]+)>?\s*\)/;
const ITEM = /^[-*]\s+\*\*([^*]*)\*\*\s*(.*)$/;

/**
 * Reads a Markdown claims file: each list item `- **<id>** <statement>` is a
 * claim (indented lines below it continue its statement), and its source is
 * the link of the nearest heading above it: `## … [Title](https://…)`.
 * Other lines are prose and ignored.
 *
 * @param text The file's text.
 * @param file The file's name, for errors (as `file:line`).
 * @throws {ExperimentDefinitionError} at the line of the first problem, with its fix.
 */
export function parseClaimsMarkdown(text: string, file = "claims.md"): UserClaim[] {
  const claims: UserClaim[] = [];
  let source: ClaimSource | undefined;
  let heading: { line: number; text: string } | undefined;
  let current: UserClaim | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const at = `${file}:${line}`;
    const h = HEADING.exec(raw);
    if (h) {
      current = undefined;
      heading = { line, text: h[1]!.trim() };
      const link = LINK.exec(h[1]!);
      source = undefined;
      if (link) {
        const problem = urlProblem(link[2]);
        if (problem) fail(problem.field, problem.detail, at);
        source = { title: link[1]!.trim(), url: link[2]! };
      }
      return;
    }
    const item = ITEM.exec(raw);
    if (item) {
      const id = item[1]!.trim();
      const problem = userClaimIdProblem(id);
      if (problem) fail(id || "id", problem, at);
      if (claims.some((c) => c.id === id)) {
        fail(
          id,
          `duplicate claim id "${id}" (also on line ${claims.find((c) => c.id === id)!.line})`,
          at,
        );
      }
      if (!source) {
        fail(
          `${id}.source`,
          heading
            ? `the heading above it (line ${heading.line}) has no link to its source: write it as "## ${heading.text} — [Title](https://…)"`
            : `no heading names its source: put the claim under a heading with a link, "## [Title](https://…)"`,
          at,
        );
      }
      current = { id, statement: item[2]!.trim(), source, file, line };
      claims.push(current);
      return;
    }
    if (current && /^\s{2,}\S/.test(raw)) {
      current.statement = `${current.statement} ${raw.trim()}`.trim();
      return;
    }
    if (/^\s*[-*]\s+\*\*/.test(raw)) {
      fail(
        "item",
        `a claim is written "- **<prefix>:<name>** <statement>", got "${raw.trim()}"`,
        at,
      );
    }
    current = undefined;
  });
  for (const c of claims) {
    if (!c.statement) {
      fail(`${c.id}.statement`, "state what the source claims after the id", `${file}:${c.line}`);
    }
  }
  if (claims.length === 0) {
    fail(
      "claims",
      `no claims found: write each as "- **<prefix>:<name>** <statement>" under a heading that links its source, "## [Title](https://…)"`,
      file,
    );
  }
  return claims;
}

/** `file:line` of a user claim, or its file. */
export function claimLocation(c: UserClaim): string {
  return c.file === undefined ? "(no file)" : c.line === undefined ? c.file : `${c.file}:${c.line}`;
}

/**
 * Checks that no id is defined twice across claims files (a file loaded twice
 * counts once), and returns each claim once, in order.
 *
 * @param onError Called with each id defined twice (the second is left out);
 *   default: throw it.
 * @throws {ExperimentDefinitionError} naming both places that define the id.
 */
export function mergeClaims(
  lists: readonly (readonly UserClaim[])[],
  onError: (err: ExperimentDefinitionError) => void = (err) => {
    throw err;
  },
): UserClaim[] {
  const byId = new Map<string, UserClaim>();
  for (const list of lists) {
    for (const c of list) {
      const other = byId.get(c.id);
      if (other === undefined) byId.set(c.id, c);
      else if (other.file !== c.file || other.line !== c.line) {
        onError(
          new ExperimentDefinitionError(
            c.id,
            `"${c.id}" is defined twice: also at ${
              claimLocation(other)
            }; give each claim its own id (or load only one of the files)`,
            { file: claimLocation(c), subject: "claims" },
          ),
        );
      }
    }
  }
  return [...byId.values()];
}
