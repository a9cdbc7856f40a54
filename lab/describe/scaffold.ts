/**
 * `deno task lab new <id>`: a first experiment to start from. It is
 * exploratory (no claims; the run prints what it observed), passes `--check`,
 * runs green as it is, and its comments explain each field and point to the
 * README's section on writing experiments.
 * @module
 */
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ExperimentDefinitionError } from "../base/errors.ts";

/** An experiment id: kebab-case, starting with a letter or digit. */
export const EXPERIMENT_ID = /^[a-z0-9][a-z0-9-]*$/;

/** The repository's authoring entry and README, which a new file links to. */
const DEFINE = fileURLToPath(new URL("../../define.ts", import.meta.url));
const README = fileURLToPath(new URL("../../README.md", import.meta.url));

/** The file name of experiment `id`: snake_case, like every experiment file (`my_question.ts`). */
export function experimentFileName(id: string): string {
  return `${id.replaceAll("-", "_")}.ts`;
}

/**
 * The text of a new experiment file.
 *
 * @param id The experiment's kebab-case id.
 * @param options `dir`: the directory the file goes in (for its relative imports and links).
 */
export function scaffoldExperiment(id: string, options: { dir: string }): string {
  const define = importPath(relative(options.dir, DEFINE));
  const readme = relative(options.dir, README);
  const file = experimentFileName(id);
  const fromRoot = relative(dirname(README), join(options.dir, file));
  const shown = fromRoot.startsWith("..") ? join(options.dir, file) : fromRoot;
  return `/**
 * ${id}: a question of your own, as a hypothesis the kernel can answer.
 *
 * Hypothesis: a listener that never calls accept() holds backlog + 1 completed
 * connections (the kernel calls the queue full only when it holds more than
 * the backlog); clients that come later wait in SYN-SENT, their SYNs dropped.
 *
 * Written by \`deno task lab new ${id}\`. Each field is explained in the README,
 * section "Writing an experiment" (${readme}#writing-an-experiment).
 * From the repository's directory, check it without root:
 *   deno task lab --check ${shown}
 * then run it as root:
 *   sudo deno task lab ${shown}
 */
import { defineExperiment } from "${define}";

export default defineExperiment({
  // Unique, kebab-case: names the experiment in the output, the report and --filter.
  id: "${id}",
  // One line saying what the experiment shows.
  title: "How many connections wait for accept() on a listener that never accepts",
  // The hypothesis in a sentence.
  hypothesis: "listen(fd, backlog) holds backlog + 1 connections; later clients wait.",
  // One run per value (or per combination of values). Try other values without editing:
  // sudo deno task lab ${shown} --set backlog=0,8
  matrix: { backlog: [2, 4] },
  // Network namespaces, one per host: the server's and a client host. Sysctls are written
  // inside that namespace only, never the machine's own.
  hosts: {
    server: { sysctls: { "net.core.somaxconn": 4096 } },
    client: {},
  },
  // The server listens with exactly this backlog and never calls accept().
  server: { host: "server", backlog: (p) => p.backlog, accept: "never" },
  clients: [
    // As many clients as the queue should hold, one every 2 ms.
    { name: "fill", host: "client", count: (p) => p.backlog + 1, start: { intervalMs: 2 } },
    // Two more, started only once the kernel shows the queue full, so that they find it full.
    {
      name: "late",
      host: "client",
      count: 2,
      startWhen: { metric: "server.ESTABLISHED", equals: (p) => p.backlog + 1 },
    },
  ],
  // Sample the kernel every 20 ms, for at most 2 s. The run prints a table of these metrics
  // (and those the expectations read): their last and highest value per matrix point. The
  // README's metrics table lists every metric.
  observe: {
    intervalMs: 20,
    windowMs: 2000,
    metrics: ["server.recvQ", "server.sendQ", "server.SYN_RECV", "client.SYN_SENT"],
  },
  // What every run must show (optional): equals, or atLeast and/or atMost, each a number or
  // a function of the matrix point. stableMs: how long it must hold.
  expect: [
    {
      name: "queued",
      metric: "server.ESTABLISHED",
      equals: (p) => p.backlog + 1,
      stableMs: 100,
    },
    { name: "late clients wait", metric: "clients.late.pending", equals: 2, stableMs: 100 },
  ],
  // No claims: the experiment is exploratory. To decide a claim, a built-in one (A2.1) or
  // one of your own from a claims file (README: "Claims of your own"), add a rule:
  //
  // claimsFiles: ["./my_claims.md"],
  // claims: {
  //   "mine:accept-queue": (runs) => ({
  //     verdict: runs.every((r) => r.value("server.recvQ", "peak") === r.params.backlog + 1)
  //       ? "reproduced"
  //       : "not reproduced",
  //     evidence: runs.map((r) => \`listen(\${r.params.backlog}) held \${
  //       r.value("server.recvQ", "peak")}\`).join(", "),
  //   }),
  // },
});
`;
}

/**
 * Writes experiment `id` into `dir` (default: the repository's `experiments/`).
 *
 * @returns The file written.
 * @throws {ExperimentDefinitionError} for an id that is not kebab-case, or a
 *   file that exists (it is never overwritten).
 */
export async function writeScaffold(
  id: string,
  options: { dir?: string } = {},
): Promise<string> {
  if (!EXPERIMENT_ID.test(id)) {
    throw new ExperimentDefinitionError(
      "id",
      `"${id}" is not kebab-case (lowercase letters, digits and hyphens), e.g. "my-first-question"`,
    );
  }
  const dir = options.dir ?? fileURLToPath(new URL("../../experiments", import.meta.url));
  const path = join(dir, experimentFileName(id));
  try {
    await Deno.writeTextFile(path, scaffoldExperiment(id, { dir }), { createNew: true });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new ExperimentDefinitionError(
        "id",
        `${
          relative(Deno.cwd(), path) || path
        } exists; it is never overwritten: choose another id or remove the file`,
      );
    }
    throw err;
  }
  return path;
}

function importPath(p: string): string {
  return p.startsWith(".") || p.startsWith("/") ? p : `./${p}`;
}
