/**
 * Unit tests of `lab/judge/repeat.ts`: {@linkcode summarizeRepeats},
 * {@linkcode mergeRepeats}, {@linkcode repeatRanges}, {@linkcode flipsText}
 * and {@linkcode repeatTable} on synthetic experiment results.
 * @module
 */
import { deepStrictEqual as deepEqual, ok, strictEqual as equal, throws } from "node:assert/strict";
import { flipsText, mergeRepeats, repeatRanges, summarizeRepeats } from "../../lab/judge/repeat.ts";
import { repeatTable } from "../../lab/report/text.ts";
import type {
  CheckResult,
  ClaimDecision,
  ExperimentResult,
  LabReport,
  RunResult,
} from "../../lab/results.ts";
import { schemaErrors } from "../_schema.ts";

// ---------------------------------------------------------------------------
// Synthetic results

const CHECKS = ["queued", "overflows", "dropped"];
const MATRIX = [{ backlog: 1 }, { backlog: 4 }];

function check(name: string, passed: boolean): CheckResult {
  return {
    name,
    metric: `server.${name}`,
    over: "settled",
    expected: "= 2 for 100 ms",
    observed: passed ? 2 : 3,
    passed,
    atMs: 150,
  };
}

/** A run of `params` whose checks all hold, except those named in `failing`. */
function run(
  params: RunResult["params"],
  options: { failing?: string[]; error?: string } = {},
): RunResult {
  const checks = options.error === undefined
    ? CHECKS.map((n) => check(n, !options.failing?.includes(n)))
    : [];
  const result: RunResult = {
    params,
    mode: "fast",
    server: { host: "server", port: 8080, backlog: 1 },
    sysctls: {},
    addresses: {},
    passed: options.error === undefined && checks.every((c) => c.passed),
    durationMs: 100,
    phases: { build: 10, server: 10, clients: 10, observe: 60, collect: 5, teardown: 5 },
    observed: {},
    checks,
    samples: [],
    connections: [],
    timeline: [],
    rules: {},
    packets: {},
  };
  if (options.error !== undefined) result.error = options.error;
  return result;
}

const decide = (verdict: ClaimDecision["verdict"]): ClaimDecision => ({
  verdict,
  evidence: `evidence for ${verdict}`,
});

/**
 * One repeat of experiment `id`: a run per {@linkcode MATRIX} point (or the
 * given runs) and claim A1.3 decided `verdict`.
 */
function repeat(
  options: {
    id?: string;
    runs?: RunResult[];
    verdict?: ClaimDecision["verdict"] | { error: string };
    durationMs?: number;
  } = {},
): ExperimentResult {
  const runs = options.runs ?? MATRIX.map((p) => run(p));
  const verdict = options.verdict ?? "not reproduced";
  return {
    id: options.id ?? "tiny-backlog",
    title: "listen(fd, 1) queues two connections",
    hypothesis: "The accept queue holds backlog + 1.",
    passed: runs.every((r) => r.passed),
    mode: "fast",
    durationMs: options.durationMs ?? 200,
    runs,
    claims: { "A1.3": typeof verdict === "string" ? decide(verdict) : verdict },
  };
}

function repeats(n: number, at: (i: number) => ExperimentResult = () => repeat()) {
  return Array.from({ length: n }, (_, i) => at(i + 1));
}

// ---------------------------------------------------------------------------
// summarizeRepeats()

Deno.test("summarizeRepeats() of stable repeats has no flips and every check stable", () => {
  const s = summarizeRepeats(repeats(5));
  equal(s.id, "tiny-backlog");
  equal(s.repeats, 5);
  equal(s.passed, 5);
  deepEqual(s.checks, { total: 6, stable: 6 });
  deepEqual(s.verdicts, [{ claim: "A1.3", values: [{ value: "not reproduced", count: 5 }] }]);
  deepEqual(s.flips, []);
});

Deno.test("summarizeRepeats() of one check failing in repeat 3 of 5 gives one check flip", () => {
  const s = summarizeRepeats(repeats(5, (i) =>
    repeat({
      runs: [run({ backlog: 1 }), run({ backlog: 4 }, { failing: i === 3 ? ["overflows"] : [] })],
    })));
  equal(s.passed, 4);
  deepEqual(s.checks, { total: 6, stable: 5 });
  deepEqual(s.flips, [{
    kind: "check",
    run: "backlog=4",
    check: "overflows",
    outcomes: [{ value: "held", repeats: [1, 2, 4, 5] }, { value: "failed", repeats: [3] }],
  }]);
});

Deno.test("summarizeRepeats() of a changing verdict gives a verdict flip, most frequent first", () => {
  const s = summarizeRepeats(repeats(4, (i) =>
    repeat({
      verdict: i === 1 ? "reproduced" : i === 4 ? { error: "claim rule failed: boom" } : "partly",
    })));
  deepEqual(s.flips, [{
    kind: "verdict",
    claim: "A1.3",
    outcomes: [
      { value: "partly", repeats: [2, 3] },
      { value: "reproduced", repeats: [1] },
      { value: "error: claim rule failed: boom", repeats: [4] },
    ],
  }]);
  deepEqual(s.verdicts, [{
    claim: "A1.3",
    values: [
      { value: "partly", count: 2 },
      { value: "reproduced", count: 1 },
      { value: "error: claim rule failed: boom", count: 1 },
    ],
  }]);
});

Deno.test("summarizeRepeats() of a run erroring in one repeat gives one run flip, not one per check", () => {
  const error = 'Cannot create namespace "bl-1-x-2-server": File exists\nat Netns.create';
  const s = summarizeRepeats(
    repeats(
      5,
      (i) => repeat({ runs: [run({ backlog: 1 }, i === 2 ? { error } : {}), run({ backlog: 4 })] }),
    ),
  );
  deepEqual(s.flips, [{
    kind: "run",
    run: "backlog=1",
    outcomes: [
      { value: "passed", repeats: [1, 3, 4, 5] },
      { value: 'error: Cannot create namespace "bl-1-x-2-server": File exists', repeats: [2] },
    ],
  }]);
  // The checks the error removed are not stable, though only the run flip reports them.
  deepEqual(s.checks, { total: 6, stable: 3 });
});

Deno.test("summarizeRepeats() reports an error beside a check that flipped in a completed repeat", () => {
  const s = summarizeRepeats(repeats(4, (i) =>
    repeat({
      runs: [
        run({ backlog: 1 }, i === 2 ? { error: "boom" } : i === 4 ? { failing: ["queued"] } : {}),
      ],
    })));
  deepEqual(s.flips, [
    {
      kind: "run",
      run: "backlog=1",
      outcomes: [
        { value: "passed", repeats: [1, 3] },
        { value: "error: boom", repeats: [2] },
        { value: "failed", repeats: [4] },
      ],
    },
    {
      kind: "check",
      run: "backlog=1",
      check: "queued",
      outcomes: [
        { value: "held", repeats: [1, 3] },
        { value: "missing", repeats: [2] },
        { value: "failed", repeats: [4] },
      ],
    },
  ]);
});

Deno.test("summarizeRepeats() gives no run flip when a check flip explains a passed/failed change", () => {
  const s = summarizeRepeats(
    repeats(
      3,
      (i) => repeat({ runs: [run({}, { failing: i === 2 ? ["queued", "dropped"] : [] })] }),
    ),
  );
  deepEqual(s.flips.map((f) => [f.kind, f.run, f.check]), [
    ["check", "", "queued"],
    ["check", "", "dropped"],
  ]);
});

Deno.test("summarizeRepeats() of the same error every time has no flips", () => {
  const s = summarizeRepeats(repeats(3, () => repeat({ runs: [run({}, { error: "boom" })] })));
  deepEqual(s.flips, []);
  equal(s.passed, 0);
});

Deno.test("summarizeRepeats() of skipped or historical repeats is stable", () => {
  const skipped = { ...repeat(), runs: [], passed: true, skipped: "not selected" };
  const s = summarizeRepeats([skipped, { ...skipped }, { ...skipped }]);
  deepEqual(s, {
    id: "tiny-backlog",
    repeats: 3,
    passed: 3,
    checks: { total: 0, stable: 0 },
    verdicts: [],
    flips: [],
    skipped: "not selected",
  });
  const historical = repeat({ runs: [], verdict: "historical", durationMs: 0 });
  const h = summarizeRepeats([historical, historical]);
  deepEqual(h.flips, []);
  deepEqual(h.verdicts, [{ claim: "A1.3", values: [{ value: "historical", count: 2 }] }]);
});

Deno.test("summarizeRepeats() of results of different experiments throws a RangeError naming both", () => {
  throws(
    () => summarizeRepeats([repeat(), repeat({ id: "other-experiment" })]),
    (e: unknown) =>
      e instanceof RangeError && /"tiny-backlog"/.test(e.message) &&
      /"other-experiment"/.test(e.message),
  );
  throws(() => summarizeRepeats([]), RangeError);
});

// ---------------------------------------------------------------------------
// mergeRepeats()

Deno.test("mergeRepeats() of stable repeats passes, with the median duration", () => {
  const m = mergeRepeats(
    repeats(5, (i) => repeat({ durationMs: [500, 100, 300, 200, 900][i - 1]! })),
  );
  equal(m.passed, true);
  equal(m.repeats, 5);
  deepEqual(m.flips, []);
  deepEqual(m.repeatDurationsMs, [500, 100, 300, 200, 900]);
  equal(m.durationMs, 300);
  equal(m.id, "tiny-backlog");
  equal(m.runs.length, 2);
});

Deno.test("mergeRepeats() fails when something flipped and takes the lower middle for an even N", () => {
  const results = repeats(4, (i) =>
    repeat({
      durationMs: i * 100,
      runs: [run({ backlog: 1 }, { failing: i === 3 ? ["queued"] : [] })],
    }));
  const m = mergeRepeats(results);
  equal(results[0]!.passed, true, "the first repeat passed");
  equal(m.passed, false);
  equal(m.flips?.length, 1);
  equal(m.durationMs, 200);
});

Deno.test("mergeRepeats() of a result that failed the same way each time fails without flips", () => {
  const m = mergeRepeats(repeats(2, () => repeat({ runs: [run({}, { failing: ["queued"] })] })));
  equal(m.passed, false);
  deepEqual(m.flips, []);
});

Deno.test("mergeRepeats() output matches docs/results.schema.json", () => {
  const m = mergeRepeats(repeats(3, (i) =>
    repeat({
      runs: [run({ backlog: 1 }, i === 2 ? { error: "boom" } : {})],
      verdict: i === 3 ? "reproduced" : "not reproduced",
    })));
  ok(m.flips!.some((f) => f.kind === "run") && m.flips!.some((f) => f.kind === "verdict"));
  const doc: LabReport = {
    version: 1,
    kernel: "6.18.0-test",
    machine: {
      hostname: "lab",
      arch: "x86_64",
      cpu: "unknown",
      cores: 2,
      memoryMiB: 2048,
      os: "Debian",
      deno: "2.9.6",
    },
    command: "deno task lab --repeat 3 --json",
    startedAt: "2026-01-02T03:04:05.678Z",
    durationMs: 1000,
    passed: m.passed,
    experiments: [m],
    ledger: [],
  };
  deepEqual(schemaErrors(doc), []);
});

// ---------------------------------------------------------------------------
// Text

Deno.test("repeatRanges() compresses consecutive repeats into ranges", () => {
  const table: [number[], string][] = [
    [[], ""],
    [[3], "3"],
    [[1, 2], "1-2"],
    [[1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], "1-7,9-20"],
    [[8], "8"],
    [[5, 1, 3, 2, 3], "1-3,5"],
  ];
  for (const [input, expected] of table) equal(repeatRanges(input), expected, String(input));
});

Deno.test("flipsText() writes one line per flip, with the experiment, run and ranges", () => {
  const s = summarizeRepeats(repeats(20, (i) =>
    repeat({
      runs: [
        run({ backlog: 1 }, i === 8 ? { failing: ["queued"] } : {}),
        run({ backlog: 4 }, i === 20 ? { error: "boom\nmore" } : {}),
      ],
      verdict: i === 20 ? "reproduced" : "not reproduced",
    })));
  equal(
    flipsText(s.flips, s.id),
    [
      "tiny-backlog · verdict A1.3: not reproduced in 1-19; reproduced in 20",
      'tiny-backlog · backlog=1 · check "queued": held in 1-7,9-20; failed in 8',
      "tiny-backlog · backlog=4 · run: passed in 1-19; error in 20 (boom)",
    ].join("\n"),
  );
  equal(
    flipsText([{ kind: "run", run: "", outcomes: [{ value: "passed", repeats: [1] }] }]),
    "run: passed in 1",
  );
});

Deno.test("repeatTable() has a row of figures per experiment and the flips below", () => {
  const flaky = summarizeRepeats(repeats(20, (i) =>
    repeat({
      runs: [run({ backlog: 1 }, i === 8 ? { failing: ["queued"] } : {}), run({ backlog: 4 })],
    })));
  const steady = summarizeRepeats(repeats(20, () => ({ ...repeat(), id: "steady-one" })));
  const text = repeatTable([flaky, steady], 120);
  const lines = text.split("\n");
  const row = (id: string) => lines.find((l) => l.includes(id) && l.includes("/20"))!;
  ok(row("tiny-backlog"), text);
  for (const figure of ["19/20", "5/6", "A1.3 not reproduced 20/20", " 1 "]) {
    ok(row("tiny-backlog").includes(figure), `no "${figure}" in:\n${text}`);
  }
  for (const figure of ["20/20", "6/6", " 0 "]) {
    ok(row("steady-one").includes(figure), `no "${figure}" in:\n${text}`);
  }
  equal(lines.at(-1), 'tiny-backlog · backlog=1 · check "queued": held in 1-7,9-20; failed in 8');
  ok(lines.every((l) => l.length <= 120), text);
  ok(!text.includes("\x1b["), "the table is not coloured");
  equal(repeatTable([]), "");
});
