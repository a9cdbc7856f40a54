/**
 * Type-checking experiment and claims files with `deno check` (the project's
 * compiler options, strict), as any user, before anything runs: a typo in
 * `r.params.somaxconn` or an unknown field is found here, with its line,
 * rather than by a run as root.
 * @module
 */
import { fileURLToPath } from "node:url";
import { relative } from "node:path";

/** One diagnostic of the TypeScript compiler. */
export interface TypeProblem {
  /** The file, relative to the working directory (`undefined` when deno named none). */
  file?: string;
  /** 1-based line. */
  line?: number;
  /** 1-based column. */
  column?: number;
  /** The compiler's code, e.g. `TS2339`; `deno` for an error of deno itself (a missing module). */
  code: string;
  /** What is wrong, and often the fix (`Did you mean 'backlog'?`). */
  message: string;
  /** The source line it points at. */
  source?: string;
}

/** The project's `deno.json`, whose compiler options experiments are checked with. */
export const PROJECT_CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/**
 * Runs `deno check` on `files` with the project's compiler options and
 * returns every diagnostic.
 *
 * @param files TypeScript files to check.
 * @returns Every problem found (none when they type-check).
 */
export async function typeCheck(files: readonly string[]): Promise<TypeProblem[]> {
  if (files.length === 0) return [];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", `--config=${PROJECT_CONFIG}`, ...files],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  if (out.success) return [];
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  const problems = parseDiagnostics(text);
  if (problems.length) return problems;
  const error = text.split("\n").map((l) => l.trim()).filter((l) =>
    l && !/^(Stack backtrace|\d+: )/.test(l)
  ).join(" ");
  return [{ code: "deno", message: error || `deno check exited with ${out.code}` }];
}

const HEADER = /^(TS\d+) \[ERROR\]: (.*)$/;
const AT = /^\s+at (file:\/\/\S+?):(\d+):(\d+)$/;

/**
 * Reads `deno check`'s output (without colours): each `TSxxxx [ERROR]:`
 * block with its message, source line and first `at file:line:column`.
 * Related information after it ("The expected type comes from …") is left
 * out; an `error:` line of deno itself (a module not found) is kept.
 */
export function parseDiagnostics(text: string): TypeProblem[] {
  const lines = text.split("\n");
  const problems: TypeProblem[] = [];
  for (let i = 0; i < lines.length; i++) {
    const h = HEADER.exec(lines[i]!);
    if (!h) {
      const e = /^error: (.*)$/.exec(lines[i]!);
      if (e && !/^Type checking failed/.test(e[1]!)) {
        const at = lines.slice(i + 1, i + 4).map((l) => AT.exec(l)).find((m) => m);
        problems.push({ code: "deno", message: e[1]!.trim(), ...(at ? where(at) : {}) });
      }
      continue;
    }
    const body: string[] = [];
    let at: RegExpExecArray | null = null;
    for (i++; i < lines.length; i++) {
      at = AT.exec(lines[i]!);
      if (at || HEADER.test(lines[i]!)) break;
      body.push(lines[i]!);
    }
    if (!at) i--;
    // The source line and its ~~~ underline end the body; lines before them continue the message.
    const underline = body.findLastIndex((l) => /^\s*~+\s*$/.test(l));
    const source = underline > 0 ? body[underline - 1]!.trim() : undefined;
    const more = (underline > 0 ? body.slice(0, underline - 1) : body).map((l) => l.trim())
      .filter(Boolean);
    problems.push({
      code: h[1]!,
      message: [h[2]!.trim(), ...more].join(" "),
      ...(source === undefined ? {} : { source }),
      ...(at ? where(at) : {}),
    });
  }
  return problems;
}

function where(at: RegExpExecArray): { file: string; line: number; column: number } {
  return {
    file: relative(Deno.cwd(), fileURLToPath(at[1]!)) || at[1]!,
    line: Number(at[2]),
    column: Number(at[3]),
  };
}
