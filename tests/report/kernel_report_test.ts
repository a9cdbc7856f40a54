/**
 * Tests of the `--kernel` views: the terminal table and differences
 * (`lab/report/kernel_text.ts`), the report directory (`kernel_report.ts`:
 * results.json valid against the schema, report.md with the differences
 * first and every link resolving into the kernels' own reports) and the
 * charts across kernels (`kernelChartSpecs` in `kernel_chart.ts`, rendered).
 * Kernels here are the example report's real run, relabelled.
 * @module
 */
import { deepStrictEqual as deepEqual, equal, match, ok } from "node:assert/strict";
import { dirname, join } from "node:path";
import { kernelMatrixReport } from "../../lab/judge/kernel_ledger.ts";
import { renderSvg } from "../../lab/report/chart.ts";
import { kernelChartMetric, kernelChartSpecs } from "../../lab/report/kernel_chart.ts";
import { writeReport } from "../../lab/report/directory.ts";
import { writeKernelReport } from "../../lab/report/kernel_report.ts";
import {
  decidedRows,
  kernelChanges,
  kernelDifferences,
  kernelLedgerTable,
  kernelSummaryLine,
  shortVerdict,
} from "../../lab/report/kernel_text.ts";
import { experimentLine } from "../../lab/report/text.ts";
import type { KernelFacts, KernelMatrixReport, KernelRun, LabReport } from "../../lab/results.ts";
import { ROOT } from "../_helpers.ts";
import { schemaErrors } from "../_schema.ts";

const FULL: LabReport = JSON.parse(
  await Deno.readTextFile(`${ROOT}docs/example-report/results.json`),
);
/**
 * The example report cut to its first four experiments (as with a filter):
 * the claims only the others decide are undecided, with no experiment.
 */
const EXAMPLE: LabReport = (() => {
  const r: LabReport = structuredClone(FULL);
  r.experiments = r.experiments.filter((e) => e.runs.length > 0).slice(0, 4);
  const ids = new Set(r.experiments.map((e) => e.id));
  for (const l of r.ledger) {
    l.experiments = l.experiments.filter((x) => ids.has(x));
    if (l.experiments.length === 0) l.verdict = "undecided";
  }
  return r;
})();

function facts(release: string, synQueueExtra: 0 | 1): KernelFacts {
  return {
    release,
    sysctls: { "net.core.somaxconn": "4096" },
    behaviour: { synQueueExtra },
    machine: "tcg",
    timeScale: 18.5,
    probed: true,
  };
}

/** The example report as run on another kernel: A2.1 decided otherwise there, values scaled. */
function kernel(label: string, f: KernelFacts, a21: "reproduced" | "partly"): KernelRun {
  const report: LabReport = structuredClone(EXAMPLE);
  report.kernel = f.release;
  report.kernelFacts = f;
  for (const e of report.experiments) {
    for (const r of e.runs) {
      delete r.charts;
      delete r.pcaps;
      r.server ??= { host: "server", port: 8080, backlog: 1 }; // the example predates the field
    }
    if ("A2.1" in e.claims) {
      e.claims["A2.1"] = { verdict: a21, evidence: `A2.1 evidence on ${label}` };
      e.kernelChanges = ["3479c7549fb1"];
    }
  }
  const entry = report.ledger.find((l) => l.claim === "A2.1")!;
  entry.verdict = a21;
  entry.evidence = `A2.1 evidence on ${label}`;
  return {
    spec: label,
    label,
    target: "vm",
    vm: {
      accel: "tcg",
      source: `Debian linux-image ${label}`,
      bootMs: 9100,
      runMs: 361_000,
      attempts: 1,
      memoryMiB: 4096,
      cpus: 2,
      kernelCmdline: "console=ttyS0",
      exitCode: 0,
      consoleLog: "/tmp/x.console.log",
    },
    report,
    durationMs: 372_000,
  };
}

function matrix(): KernelMatrixReport {
  return kernelMatrixReport({
    kernels: [
      kernel("5.10.223", facts("5.10.0-32-amd64", 0), "reproduced"),
      kernel("6.1.192", facts("6.1.0-56-amd64", 1), "partly"),
    ],
    machine: EXAMPLE.machine,
    command: "deno task lab --kernel 5.10.0-32 --kernel 6.1",
    startedAt: new Date("2026-01-01T00:00:00Z"),
    durationMs: 744_000,
  });
}

Deno.test("kernelLedgerTable() shows a column per kernel and marks the claims that differ", () => {
  const m = matrix();
  const text = kernelLedgerTable(m, 120);
  match(text, /│ claim\s+│ 5\.10\.223\s+│ 6\.1\.192\s+│/);
  match(text, /│ A2\.1 \*\s+│ repro\s+│ partly\s+│/);
  equal(shortVerdict("not run"), "–");
  // Only claims some kernel decided: the example decides some, not all 38.
  const shown = decidedRows(m).map((r) => r.claim);
  ok(shown.length > 0 && shown.length < m.ledger.length);
  const left = m.ledger.find((r) => !shown.includes(r.claim))!.claim;
  ok(!text.includes(`${left} `), `${left}, which no experiment decided, is left out`);
});

Deno.test("kernelDifferences() puts each kernel's evidence side by side with the change that explains it", () => {
  const text = kernelDifferences(matrix());
  match(text, /^A2\.1: /);
  match(
    text,
    /\n {2}5\.10\.223: reproduced — A2\.1 evidence on 5\.10\.223\n {2}6\.1\.192: partly — A2\.1 evidence on 6\.1\.192\n/,
  );
  match(
    text,
    /why: commit 3479c7549fb1 .*reproduced without it \(5\.10\.223\), partly with it \(6\.1\.192\)/,
  );
});

Deno.test("kernelChanges() shows the same verdict's numbers side by side with the change", () => {
  const m = matrix();
  const row = m.ledger.find((r) => r.claim === "A2.1")!;
  // Make A2.1 agree: the change still splits the kernels, so the numbers are worth showing.
  m.kernels[1]!.report!.ledger.find((l) => l.claim === "A2.1")!.verdict = "reproduced";
  const again = kernelMatrixReport({ ...m, startedAt: new Date(m.startedAt) });
  const text = kernelChanges(again);
  match(text, /(^|\n)A2\.1: /);
  match(text, /\n {2}5\.10\.223: reproduced — A2\.1 evidence on 5\.10\.223\n/);
  match(text, /change: commit 3479c7549fb1 .*without it 5\.10\.223, with it 6\.1\.192/);
  equal(row.changes, undefined, "the verdicts differ there, which the differences say");
});

Deno.test("kernelSummaryLine() says how each kernel ran", () => {
  const k = matrix().kernels[0]!;
  match(
    kernelSummaryLine(k),
    new RegExp(
      `^5\\.10\\.223 \\(Linux 5\\.10\\.0-32-amd64\\): ${
        EXAMPLE.experiments.filter((e) => e.passed).length
      } passed, ${
        EXAMPLE.experiments.filter((e) => !e.passed).length
      } failed, 0 skipped in 6 min 12 s Debian linux-image 5\\.10\\.223 \\(TCG guest, boot 9\\.1 s, run 6 min 1 s, time scale 18\\.5\\)$`,
    ),
  );
  const failed: KernelRun = {
    spec: "7",
    label: "7",
    target: "vm",
    error: "Cannot boot",
    durationMs: 1,
  };
  equal(kernelSummaryLine(failed), "7: not run: Cannot boot");
});

Deno.test("kernelChartSpecs() charts each experiment's metric with one line per kernel, run by run", async () => {
  const m = matrix();
  const charts = kernelChartSpecs(m);
  deepEqual(charts.map((c) => c.experiment), EXAMPLE.experiments.map((e) => e.id));
  const syn = charts.find((c) => c.experiment === "accept-queue-holds-backlog-plus-one")!;
  equal(
    syn.metric,
    kernelChartMetric(EXAMPLE.experiments.find((e) => e.id === syn.experiment)!),
  );
  const svg = await renderSvg(syn.spec);
  for (const label of ["5.10.223", "6.1.192"]) ok(svg.includes(label), `legend names ${label}`);
  // One panel per matrix point, titled with its parameters.
  for (const r of EXAMPLE.experiments.find((e) => e.id === syn.experiment)!.runs) {
    ok(svg.includes(Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(", ")));
  }
  // A single kernel gets no chart across kernels.
  equal(kernelChartSpecs({ ...m, kernels: [m.kernels[0]!] }).length, 0);
});

Deno.test("writeKernelReport() writes a valid results.json and a report.md whose links all resolve", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bl-kernel-report-test-" });
  try {
    const m = matrix();
    const kernelDirs = m.kernels.map((k) => `kernels/${k.label}`);
    for (const [i, k] of m.kernels.entries()) {
      await Deno.mkdir(join(dir, kernelDirs[i]!), { recursive: true });
      await writeReport(join(dir, kernelDirs[i]!), { report: k.report! }, { charts: false });
    }
    await writeKernelReport(dir, m, { kernelDirs });
    const doc = JSON.parse(await Deno.readTextFile(join(dir, "results.json")));
    deepEqual(schemaErrors(doc), []);
    const md = await Deno.readTextFile(join(dir, "report.md"));
    // The differences come first, then the table.
    ok(md.indexOf("## Where the kernels differ") < md.indexOf("## Claims × kernels"));
    match(md, /### A2\.1: .*\n\n\| kernel \| verdict \| evidence \|/);
    match(md, /\*\*Why\.\*\* commit 3479c7549fb1/);
    match(md, /\| \*\*A2\.1\*\* \| \[reproduced\]\(kernels\/5\.10\.223\/report\.md#claim-A2-1-/);
    match(
      md,
      /!\[accept-queue-holds-backlog-plus-one: .* on each kernel\]\(charts\/kernels\/accept-queue-holds-backlog-plus-one\.svg\)/,
    );
    // Every relative link names a file that exists, and every #anchor an id in it.
    const links = [...md.matchAll(/\]\(([^)#\s]+)(?:#([^)\s]+))?\)/g)];
    ok(links.length > 20);
    for (const [, file, anchor] of links) {
      const target = join(dir, file!);
      ok((await Deno.stat(target)).isFile, `${file} exists`);
      if (anchor) {
        const text = await Deno.readTextFile(target);
        ok(text.includes(`id="${anchor}"`), `${file} has #${anchor}`);
      }
    }
    // Anchors within report.md.
    for (const [, anchor] of md.matchAll(/\]\(#([^)]+)\)/g)) {
      ok(md.includes(`id="${anchor}"`), `report.md has #${anchor}`);
    }
    ok((await Deno.stat(join(dir, dirname("charts/kernels/x.png")))).isDirectory);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("experimentLine() says which checks were timing-limited and which points were skipped", () => {
  const e = structuredClone(EXAMPLE.experiments[0]!);
  e.runs[0]!.checks.push({
    name: "SYN-ACKs before the overflow",
    metric: "packets.server.server.SYN-ACK@held",
    over: "packets",
    expected: "<= 1 per connection",
    observed: 3,
    passed: false,
    atMs: null,
    timingLimited: true,
  });
  e.skippedRuns = [{ params: { linear: 0 }, reason: "no net.ipv4.tcp_syn_linear_timeouts" }];
  match(
    experimentLine(e),
    /\(\d+\.\d+ s, \d+ runs\); 1 check timing-limited on this machine: "SYN-ACKs before the overflow"; skipped linear=0: no net\.ipv4\.tcp_syn_linear_timeouts$/,
  );
  match(experimentLine(EXAMPLE.experiments[0]!), /, \d+ runs?\)$/);
});
