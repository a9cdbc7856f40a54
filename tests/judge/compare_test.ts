/**
 * Tests of comparing two results documents: small synthetic documents for each kind of
 * difference, `loadReport()`'s errors, and (as root) two real runs of the lab.
 * @module
 */
import assert from "node:assert/strict";
import { compareReports, type ReportComparison } from "../../lab/judge/compare.ts";
import { CompareInputError, loadReport, MAX_REPORT_BYTES } from "../../lab/judge/load_report.ts";
import { comparisonMarkdown, comparisonTable } from "../../lab/report/compare_text.ts";
import type {
  CheckResult,
  ExperimentResult,
  LabReport,
  LedgerEntry,
  RunResult,
} from "../../lab/results.ts";
import { rootTest, runCli } from "../_helpers.ts";

const SYSCTLS = { "net.core.somaxconn": "4096", "net.ipv4.tcp_syncookies": "1" };

function check(name: string, observed: number | null, passed = true): CheckResult {
  return {
    name,
    metric: "server.ESTABLISHED",
    over: "settled",
    expected: "= 3 for 150 ms",
    observed,
    passed,
    atMs: 12,
  };
}

function run(backlog: number): RunResult {
  return {
    params: { backlog },
    mode: "default",
    server: { host: "server", port: 8080, backlog: 1 },
    sysctls: { server: { ...SYSCTLS }, client: { ...SYSCTLS } },
    addresses: { server: "10.213.0.1", client: "10.213.0.2" },
    passed: true,
    durationMs: 500,
    phases: { build: 1, server: 1, clients: 1, observe: 1, collect: 1, teardown: 1 },
    observed: {
      "server.ESTABLISHED": { final: backlog + 1, peak: backlog + 1 },
      "server.SYN_RECV": { final: 0, peak: 2 },
    },
    checks: [check("queued", backlog + 1), check("no resets", 0)],
    samples: [],
    connections: [],
    timeline: [],
    rules: {},
    packets: {},
  };
}

function experiment(id: string, runs: RunResult[]): ExperimentResult {
  return {
    id,
    title: `title of ${id}`,
    hypothesis: `hypothesis of ${id}`,
    passed: true,
    mode: "default",
    durationMs: 1000,
    runs,
    claims: {},
  };
}

function entry(claim: string, verdict: LedgerEntry["verdict"], evidence: string): LedgerEntry {
  return {
    claim,
    article: claim.split(".")[0]!,
    statement: `statement of ${claim}`,
    verdict,
    evidence,
    experiments: ["queue"],
  };
}

function report(): LabReport {
  return {
    version: 1,
    kernel: "6.1.0-test",
    machine: {
      hostname: "box",
      arch: "x86_64",
      cpu: "Test CPU",
      cores: 4,
      memoryMiB: 8192,
      os: "Debian GNU/Linux 12 (bookworm)",
      deno: "2.9.6",
    },
    command: "deno task lab --json",
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 3000,
    passed: true,
    experiments: [experiment("queue", [run(1), run(2)]), experiment("counters", [run(8)])],
    ledger: [
      entry("A1.1", "reproduced", "queued 2 [Linux 6.1.0-test]"),
      entry("A1.2", "partly", "queued 3 of 4"),
      entry("A1.3", "undecided", "no experiment of this run decides it"),
    ],
  };
}

/** Number of differences of each kind, to assert that exactly one kind is non-empty. */
function counts(c: ReportComparison): Record<string, number> {
  return {
    claimsDiffer: c.claims.differ.length,
    claimsOnlyIn: c.claims.onlyIn.length,
    experimentsOnlyIn: c.experiments.onlyIn.length,
    experimentsDiffer: c.experiments.differ.length,
    runsOnlyIn: c.runs.onlyIn.length,
    runsDiffer: c.runs.differ.length,
    checks: c.checks.length,
    numbers: c.numbers.length,
    sysctls: c.sysctls.length,
  };
}

const NONE = counts(compareReports(report(), report()));

Deno.test("compareReports() finds no difference between identical reports", () => {
  const b = report();
  b.startedAt = "2026-02-02T00:00:00.000Z";
  const c = compareReports(report(), b);
  assert.equal(c.same, true);
  assert.deepEqual(Object.values(counts(c)), Array(9).fill(0));
  assert.equal(c.claims.same, 3);
  assert.equal(c.claims.sameUndecided, 1);
  assert.equal(c.a.kernel, "6.1.0-test");
  assert.deepEqual(c.b.machine, {
    cpu: "Test CPU",
    cores: 4,
    os: "Debian GNU/Linux 12 (bookworm)",
  });
  assert.equal(c.b.startedAt, "2026-02-02T00:00:00.000Z");
  const text = comparisonTable(c);
  assert.match(
    text,
    /3 claims same \(1 undecided in both\), 0 differ; no experiment, run, check, number or sysctl differs: the results are the same$/,
  );
  assert.doesNotMatch(text, /differ \(|that differ/);
  assert.match(comparisonMarkdown(c), /the results are the same\*\*$/);
  assert.doesNotMatch(comparisonMarkdown(c), /^###/m);
});

Deno.test("compareReports() reports a changed verdict with both evidences", () => {
  const b = report();
  b.ledger[1] = entry("A1.2", "not reproduced", "queued 4 of 4");
  const c = compareReports(report(), b);
  assert.equal(c.same, false);
  assert.deepEqual(c.claims.differ, [{
    claim: "A1.2",
    statement: "statement of A1.2",
    verdictA: "partly",
    verdictB: "not reproduced",
    evidenceA: "queued 3 of 4",
    evidenceB: "queued 4 of 4",
  }]);
  assert.deepEqual(counts(c), { ...NONE, claimsDiffer: 1 });
  assert.equal(c.claims.same, 2);
  const text = comparisonTable(c);
  assert.match(text, /Claims whose verdicts differ \(1; 2 same\):/);
  assert.match(text, /2 claims same \(1 undecided in both\), 1 differ; no experiment/);
  assert.match(comparisonMarkdown(c), /\| A1\.2 \| statement of A1\.2 \| partly: queued 3 of 4 \|/);
});

Deno.test("compareReports() lists a claim only one side has, in catalogue order", () => {
  const b = report();
  b.ledger.splice(1, 1); // no A1.2 in B
  b.ledger.splice(1, 0, entry("A1.25", "reproduced", "new claim")); // B's catalogue has A1.25
  const c = compareReports(report(), b);
  assert.deepEqual(c.claims.onlyIn.map((o) => [o.claim, o.side, o.verdict]), [
    ["A1.2", "A", "partly"],
    ["A1.25", "B", "reproduced"],
  ]);
  assert.deepEqual(counts(c), { ...NONE, claimsOnlyIn: 2 });
  assert.match(
    comparisonTable(c),
    /2 claims same \(1 undecided in both\), 0 differ, 1 only in A, 1 only in B/,
  );
});

Deno.test("compareReports() lists experiments only one side ran and changed outcomes", () => {
  const a = report();
  const b = report();
  b.experiments.pop(); // no "counters" in B
  b.experiments.push({ ...experiment("extra", []), passed: false });
  b.experiments[0]!.skipped = "needs nft";
  b.experiments[0]!.runs = [];
  const c = compareReports(a, b);
  assert.deepEqual(c.experiments.onlyIn.map((o) => [o.experiment, o.side, o.outcome]), [
    ["counters", "A", "passed"],
    ["extra", "B", "failed"],
  ]);
  assert.deepEqual(c.experiments.differ, [{
    experiment: "queue",
    title: "title of queue",
    outcomeA: "passed",
    outcomeB: "skipped",
    skippedA: null,
    skippedB: "needs nft",
  }]);
  // A skipped experiment's missing runs are explained by its outcome, not listed one by one.
  assert.deepEqual(counts(c), { ...NONE, experimentsOnlyIn: 2, experimentsDiffer: 1 });
  assert.match(comparisonTable(c), /skipped: needs nft/);
});

Deno.test("compareReports() matches runs by params and mode and lists the unmatched", () => {
  const b = report();
  b.experiments[0]!.runs.pop(); // no backlog=2 in B
  b.experiments[1]!.runs[0]!.mode = "fast"; // counters backlog=8 in fast mode: another run
  b.experiments[0]!.runs[0]!.params = { backlog: 1 };
  const c = compareReports(report(), b);
  assert.deepEqual(c.runs.onlyIn, [
    { experiment: "queue", run: "backlog=2", side: "A", passed: true },
    { experiment: "counters", run: "backlog=8", side: "A", passed: true },
    { experiment: "counters", run: "backlog=8 (fast)", side: "B", passed: true },
  ]);
  assert.deepEqual(counts(c), { ...NONE, runsOnlyIn: 3 });
  assert.match(comparisonTable(c), /3 runs differ$/);
});

Deno.test("compareReports() matches runs whatever the order of their params", () => {
  const a = report();
  const b = report();
  a.experiments[0]!.runs[0]!.params = { backlog: 1, somaxconn: 8 };
  b.experiments[0]!.runs[0]!.params = { somaxconn: 8, backlog: 1 };
  assert.equal(compareReports(a, b).same, true);
});

Deno.test("compareReports() reports a check whose observed value changed", () => {
  const b = report();
  b.experiments[0]!.runs[1]!.checks[0]!.observed = 4;
  const c = compareReports(report(), b);
  assert.deepEqual(c.checks, [{
    experiment: "queue",
    run: "backlog=2",
    check: "queued",
    metric: "server.ESTABLISHED",
    expectedA: "= 3 for 150 ms",
    expectedB: "= 3 for 150 ms",
    observedA: 3,
    observedB: 4,
    passedA: true,
    passedB: true,
  }]);
  assert.deepEqual(counts(c), { ...NONE, checks: 1 });
  assert.match(comparisonTable(c), /1 check differs$/);
});

Deno.test("compareReports() reports a failed check and the failed run", () => {
  const b = report();
  const r = b.experiments[0]!.runs[0]!;
  r.checks[1] = check("no resets", 2, false);
  r.passed = false;
  b.experiments[0]!.passed = false;
  const c = compareReports(report(), b);
  assert.deepEqual(c.checks.map((k) => [k.check, k.observedA, k.observedB, k.passedA, k.passedB]), [
    ["no resets", 0, 2, true, false],
  ]);
  assert.deepEqual(c.runs.differ, [{
    experiment: "queue",
    run: "backlog=1",
    passedA: true,
    passedB: false,
    errorA: null,
    errorB: null,
  }]);
  assert.deepEqual(counts(c), { ...NONE, experimentsDiffer: 1, runsDiffer: 1, checks: 1 });
  const text = comparisonTable(c);
  assert.match(text, /0 ok +│ 2 FAIL/);
  assert.match(text, /1 experiment, 1 run and 1 check \(1 in pass\/fail\) differ$/);
});

Deno.test("compareReports() reports a changed metric peak, and only the peak", () => {
  const b = report();
  b.experiments[1]!.runs[0]!.observed["server.SYN_RECV"] = { final: 0, peak: 5 };
  const c = compareReports(report(), b);
  assert.deepEqual(c.numbers, [
    {
      experiment: "counters",
      run: "backlog=8",
      metric: "server.SYN_RECV",
      which: "peak",
      a: 2,
      b: 5,
    },
  ]);
  assert.deepEqual(counts(c), { ...NONE, numbers: 1 });
});

Deno.test("compareReports() orders numbers by experiment, run and metric, absent ones included", () => {
  const b = report();
  for (const e of b.experiments) {
    for (const r of e.runs) {
      r.observed = {
        "server.SYN_RECV": { final: 1, peak: 2 },
        "clients.c.connected": { final: 1, peak: 1 },
      };
    }
  }
  const c = compareReports(report(), b);
  assert.deepEqual(
    c.numbers.map((n) => `${n.experiment} ${n.run} ${n.metric} ${n.which} ${n.a} ${n.b}`),
    [
      "queue backlog=1 clients.c.connected final null 1",
      "queue backlog=1 clients.c.connected peak null 1",
      "queue backlog=1 server.ESTABLISHED final 2 null",
      "queue backlog=1 server.ESTABLISHED peak 2 null",
      "queue backlog=1 server.SYN_RECV final 0 1",
      "queue backlog=2 clients.c.connected final null 1",
      "queue backlog=2 clients.c.connected peak null 1",
      "queue backlog=2 server.ESTABLISHED final 3 null",
      "queue backlog=2 server.ESTABLISHED peak 3 null",
      "queue backlog=2 server.SYN_RECV final 0 1",
      "counters backlog=8 clients.c.connected final null 1",
      "counters backlog=8 clients.c.connected peak null 1",
      "counters backlog=8 server.ESTABLISHED final 9 null",
      "counters backlog=8 server.ESTABLISHED peak 9 null",
      "counters backlog=8 server.SYN_RECV final 0 1",
    ],
  );
  assert.match(comparisonTable(c), /│ absent │/);
});

Deno.test("compareReports() reports a sysctl difference once per experiment, not per run", () => {
  const b = report();
  for (const e of b.experiments) {
    for (const r of e.runs) r.sysctls.client!["net.core.somaxconn"] = "128";
  }
  b.experiments[0]!.runs[1]!.sysctls.server!["net.ipv4.tcp_syncookies"] = "2";
  delete b.experiments[0]!.runs[1]!.sysctls.server!["net.core.somaxconn"];
  const c = compareReports(report(), b);
  assert.deepEqual(c.sysctls, [
    {
      experiment: "queue",
      host: "client",
      sysctl: "net.core.somaxconn",
      a: "4096",
      b: "128",
      runs: ["backlog=1", "backlog=2"],
      matchedRuns: 2,
    },
    {
      experiment: "queue",
      host: "server",
      sysctl: "net.core.somaxconn",
      a: "4096",
      b: null,
      runs: ["backlog=2"],
      matchedRuns: 2,
    },
    {
      experiment: "queue",
      host: "server",
      sysctl: "net.ipv4.tcp_syncookies",
      a: "1",
      b: "2",
      runs: ["backlog=2"],
      matchedRuns: 2,
    },
    {
      experiment: "counters",
      host: "client",
      sysctl: "net.core.somaxconn",
      a: "4096",
      b: "128",
      runs: ["backlog=8"],
      matchedRuns: 1,
    },
  ]);
  assert.deepEqual(counts(c), { ...NONE, sysctls: 4 });
  const text = comparisonTable(c);
  assert.match(text, /client +│ net\.core\.somaxconn +│ 4096 +│ 128 +│ all 2 runs/);
  assert.match(text, /server +│ net\.core\.somaxconn +│ 4096 +│ absent +│ backlog=2/);
});

/** Every table: the header's cell count, and each row's (split on unescaped pipes). */
function markdownTables(md: string): { header: number; rows: number[] }[] {
  const tables: { header: number; rows: number[] }[] = [];
  let current: { header: number; rows: number[] } | undefined;
  for (const line of md.split("\n")) {
    if (!line.startsWith("|")) {
      current = undefined;
      continue;
    }
    assert.ok(line.endsWith("|") && !line.endsWith("\\|"), `unterminated row: ${line}`);
    const cells = line.slice(1, -1).split(/(?<!\\)\|/).length;
    if (!current) tables.push(current = { header: cells, rows: [] });
    else current.rows.push(cells);
  }
  return tables;
}

Deno.test("comparisonMarkdown() writes well-formed tables with pipes escaped", () => {
  const a = report();
  const b = report();
  a.command = "deno task lab --filter 'queue|counters' --json";
  a.ledger[0]!.statement = "`ss` shows Recv-Q | Send-Q";
  b.ledger[0] = { ...a.ledger[0]!, verdict: "partly", evidence: "a|b\nline two" };
  b.experiments[0]!.runs[0]!.checks[0]!.observed = 9;
  b.experiments[0]!.runs[0]!.observed["server.SYN_RECV"]!.final = 1;
  b.experiments[1]!.runs[0]!.sysctls.client!["net.core.somaxconn"] = "128";
  b.experiments[0]!.runs.pop();
  b.experiments.push(experiment("extra", []));
  const md = comparisonMarkdown(compareReports(a, b));
  const tables = markdownTables(md);
  assert.equal(tables.length, 6, md);
  for (const t of tables) {
    assert.ok(t.rows.length >= 2, md);
    for (const n of t.rows) assert.equal(n, t.header, md);
  }
  assert.match(md, /--filter 'queue\\\|counters'/);
  assert.match(md, /`ss` shows Recv-Q \\\| Send-Q/);
  assert.match(md, /partly: a\\\|b<br>line two/);
  assert.match(md, /^### Claims whose verdicts differ/m);
  assert.match(md, /^### Experiments and runs that differ/m);
  assert.match(md, /^### Checks that differ/m);
  assert.match(md, /^### Numbers that differ/m);
  assert.match(md, /^### Sysctls that differ/m);
  assert.match(md, /^\*\*2 claims same \(1 undecided in both\), 1 differ; .* differ\*\*$/m);
  // Every row of a grouped table names its experiment.
  assert.match(md, /^\| queue \| backlog=1 \| queued \| server\.ESTABLISHED \|/m);
  assert.match(md, /^\| counters \| client \| net\.core\.somaxconn \| 4096 \| 128 \| the run \|/m);
});

Deno.test("comparisonTable() wraps its tables to the width", () => {
  const b = report();
  b.ledger[0] = entry("A1.1", "partly", "a long piece of evidence ".repeat(12));
  const text = comparisonTable(compareReports(report(), b), 80);
  const table = text.split("\n").filter((l) => /^[│┌└├]/.test(l));
  assert.ok(table.length > 0);
  for (const line of table) assert.ok([...line].length <= 80, line);
});

Deno.test("compareReports() shows what older documents lack as unknown", () => {
  const old: Partial<LabReport> = report();
  delete old.machine;
  delete old.command;
  const c = compareReports(old as LabReport, report());
  assert.deepEqual(c.a.machine, { cpu: "unknown", cores: "unknown", os: "unknown" });
  assert.equal(c.a.command, "unknown");
  assert.equal(c.same, true);
  assert.match(comparisonTable(c), /cores +│ unknown +│ 4/);
});

async function withFile(text: string, fn: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ prefix: "bl-compare-", suffix: ".json" });
  try {
    await Deno.writeTextFile(path, text);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

async function rejectsWith(path: string, detail: RegExp): Promise<void> {
  await assert.rejects(loadReport(path), (err: unknown) => {
    assert.ok(err instanceof CompareInputError, String(err));
    assert.equal(err.file, path);
    assert.ok(err.message.startsWith(`Cannot compare results file "${path}": `), err.message);
    assert.match(err.detail, detail);
    return true;
  });
}

Deno.test("loadReport() reads a results document, and one without machine and command", async () => {
  await withFile(JSON.stringify(report()), async (path) => {
    assert.deepEqual(await loadReport(path), report());
  });
  const old: Partial<LabReport> = report();
  delete old.machine;
  delete old.command;
  await withFile(JSON.stringify(old), async (path) => {
    const doc = await loadReport(path);
    assert.equal(doc.kernel, "6.1.0-test");
    assert.equal(compareReports(doc, report()).a.machine.cpu, "unknown");
  });
});

Deno.test("loadReport() names a missing file, a directory and the fix", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bl-compare-" });
  try {
    await rejectsWith(
      `${dir}/nope.json`,
      /^no such file; give a results\.json written by `deno task lab --report DIR`/,
    );
    await rejectsWith(
      dir,
      new RegExp(
        `^it is a directory; give the results file in it, e\\.g\\. "${dir}/results\\.json"`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadReport() rejects text that is not JSON", async () => {
  await withFile(
    "{ not json",
    (path) => rejectsWith(path, /^not JSON \(.+\); give a results\.json/),
  );
  await withFile("", (path) => rejectsWith(path, /^not JSON/));
  await withFile(
    "backlog-lab on Linux 6.1: 13 experiments\n[ OK ] queue",
    (path) => rejectsWith(path, /^not JSON \(.+\); it is the text report; rerun with `--json`/),
  );
});

Deno.test("loadReport() rejects JSON that is not a backlog-lab results document", async () => {
  const cases: [unknown, RegExp][] = [
    [
      { name: "package", version: "1.0.0" },
      /^not a backlog-lab results document \(no "experiments" or "ledger" field\)/,
    ],
    [{ version: "2", ledger: [] }, /^format version "2" is unknown/],
    [
      { hello: "world" },
      /^not a backlog-lab results document \(no "version", "experiments" or "ledger" field\); give/,
    ],
    [[1, 2], /^not a backlog-lab results document \(it is an array, not an object\)/],
    [42, /^not a backlog-lab results document \(it is 42, not an object\)/],
    [null, /^not a backlog-lab results document \(it is null, not an object\)/],
    [{ version: 1, experiments: [] }, /^not a backlog-lab results document \(no "ledger" field\)/],
    // Deeper problems are the schema's (docs/results.schema.json), named by path.
    [{ ...report(), experiments: {} }, /\(\/experiments: must be array \(schema /],
    [
      { ...report(), experiments: [{ title: "x" }] },
      /\/experiments\/0: must have required property 'id'/,
    ],
    [
      { ...report(), ledger: [{ claim: "A1.1" }] },
      /\/ledger\/0: must have required property 'statement'.*\(format: docs\/results\.schema\.json\)/,
    ],
  ];
  for (const [doc, detail] of cases) {
    await withFile(JSON.stringify(doc), (path) => rejectsWith(path, detail));
  }
});

Deno.test("loadReport() names an unknown format version and the versions it reads", async () => {
  await withFile(
    JSON.stringify({ ...report(), version: 2 }),
    (path) =>
      rejectsWith(
        path,
        /^format version 2 is unknown: this backlog-lab reads version 1; compare it with a backlog-lab that reads version 2$/,
      ),
  );
});

rootTest("compareReports() of two real runs on this kernel finds the same verdicts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bl-compare-" });
  try {
    const paths: string[] = [];
    for (const side of ["a", "b"]) {
      const r = await runCli(["--filter", "somaxconn-clamps", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const path = `${dir}/${side}.json`;
      await Deno.writeTextFile(path, r.stdout);
      paths.push(path);
    }
    const [pa, pb] = paths as [string, string];
    const a = await loadReport(pa);
    const b = await loadReport(pb);
    const c = compareReports(a, b, { sources: [pa, pb] });
    assert.equal(c.a.kernel, Deno.osRelease());
    assert.equal(c.b.kernel, Deno.osRelease());
    const verdicts = (r: LabReport) => r.ledger.map((l) => `${l.claim} ${l.verdict}`);
    assert.deepEqual(verdicts(a), verdicts(b));
    assert.ok(a.ledger.some((l) => l.verdict !== "undecided"), "the run decides some claims");
    assert.deepEqual(c.claims.differ, []);
    assert.deepEqual(c.claims.onlyIn, []);
    assert.equal(c.claims.same, a.ledger.length);
    assert.deepEqual(c.experiments, { onlyIn: [], differ: [] });
    assert.deepEqual(c.runs, { onlyIn: [], differ: [] });
    assert.deepEqual(c.sysctls, []);
    // Timing can move a number or two between runs (e.g. a pending connect()'s peak); show them.
    for (const text of [comparisonTable(c), comparisonMarkdown(c)]) {
      assert.ok(text.includes(`Linux ${Deno.osRelease()}`), text);
      assert.ok(text.includes(pa) && text.includes(pb), text);
      console.log(`${text}\n`);
    }

    // One changed verdict is reported, and nothing else about the claims.
    const decided = b.ledger.find((l) => l.verdict !== "undecided");
    assert.ok(decided, "the run decides a claim");
    const changed: LabReport = structuredClone(b);
    const target = changed.ledger.find((l) => l.claim === decided.claim)!;
    target.verdict = decided.verdict === "reproduced" ? "not reproduced" : "reproduced";
    target.evidence = "edited for the test";
    const pc = `${dir}/changed.json`;
    await Deno.writeTextFile(pc, JSON.stringify(changed));
    const d = compareReports(a, await loadReport(pc));
    assert.deepEqual(d.claims.differ.map((v) => [v.claim, v.verdictA, v.verdictB, v.evidenceB]), [
      [decided.claim, decided.verdict, target.verdict, "edited for the test"],
    ]);
    assert.deepEqual(d.claims.onlyIn, []);
    assert.equal(d.claims.same, a.ledger.length - 1);
    assert.equal(d.same, false);
    assert.ok(comparisonTable(d).includes(decided.claim));
    assert.ok(comparisonMarkdown(d).includes(`| ${decided.claim} |`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compareReports() shows a claim of your own whose verdict differs, or that one side lacks, with its statement and source", () => {
  const source = { title: "A post", url: "https://example.org/post", file: "mine.md:3" };
  const own = (verdict: LedgerEntry["verdict"]): LedgerEntry => ({
    ...entry("mine:one", verdict, `${verdict} evidence`),
    article: "mine",
    statement: "My claim.",
    source,
  });
  const a = report();
  const b = report();
  a.ledger.push(own("reproduced"), { ...own("partly"), claim: "mine:two" });
  b.ledger.push(own("not reproduced"));
  const c = compareReports(a, b);
  assert.deepStrictEqual(c.claims.differ, [{
    claim: "mine:one",
    statement: "My claim.",
    source,
    verdictA: "reproduced",
    verdictB: "not reproduced",
    evidenceA: "reproduced evidence",
    evidenceB: "not reproduced evidence",
  }]);
  assert.deepStrictEqual(c.claims.onlyIn.map((o) => [o.claim, o.side, o.source]), [
    ["mine:two", "A", source],
  ]);
  const text = comparisonTable(c, 200);
  assert.match(text, /My claim\.\s*│/);
  assert.match(text, /\(source: A post, https:\/\/example\.org\/post\)/);
  const md = comparisonMarkdown(c);
  assert.match(
    md,
    /\| mine:one \| My claim\. \(source: \[A post\]\(https:\/\/example\.org\/post\)\) \| reproduced: reproduced evidence \| not reproduced: not reproduced evidence \|/,
  );
});

Deno.test("loadReport() reads /dev/zero only up to its bound, then refuses it (exit 2 in the CLI)", async () => {
  await assert.rejects(loadReport("/dev/zero"), (err: Error) => {
    assert.ok(err instanceof CompareInputError, String(err));
    assert.match(
      err.message,
      new RegExp(`"/dev/zero": it is larger than ${MAX_REPORT_BYTES / 1024 / 1024} MiB`),
    );
    return true;
  });
});

Deno.test("loadReport() takes one kernel of a --kernel run's document by its label", async () => {
  const run = (label: string, kernel: string) => ({
    spec: label,
    label,
    target: "vm" as const,
    report: { ...report(), kernel },
    durationMs: 1,
  });
  const matrix = {
    version: 1,
    kernels: [run("5.10.223", "5.10.0-32-amd64"), run("6.1.192", "6.1.0-56-amd64")],
    ledger: [],
    machine: report().machine,
    command: "deno task lab --kernel 5.10.0-32 --kernel 6.1",
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 2,
    passed: true,
  };
  await withFile(JSON.stringify(matrix), async (path) => {
    assert.equal((await loadReport(`${path}#6.1.192`)).kernel, "6.1.0-56-amd64");
    assert.equal((await loadReport(`${path}#5.10.223`)).kernel, "5.10.0-32-amd64");
    await assert.rejects(loadReport(path), (err: unknown) => {
      assert.ok(err instanceof CompareInputError);
      assert.match(
        err.detail,
        /holds the results of 2 kernels \(a --kernel run\); compare two of them, e\.g\. ".*#5\.10\.223" ".*#6\.1\.192"/,
      );
      return true;
    });
    await assert.rejects(
      loadReport(`${path}#7.0`),
      /has no kernel "7\.0"; its kernels are "5\.10\.223", "6\.1\.192"/,
    );
  });
  await withFile(JSON.stringify(report()), async (path) => {
    await assert.rejects(
      loadReport(`${path}#x`),
      /holds one kernel's results .*give it without "#x"/,
    );
  });
});
