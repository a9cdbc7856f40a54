/**
 * Tests of `lab/judge/kernel_ledger.ts`: the claims × kernels ledger from
 * kernels' own reports, whether verdicts differ, and the kernel change that
 * explains a difference (only one the deciding experiment declares, and only
 * when it splits the kernels as the verdicts do).
 * @module
 */
import { deepStrictEqual as deepEqual, equal, match, ok } from "node:assert/strict";
import { CLAIMS } from "../../lab/describe/catalogue.ts";
import { kernelLedger, kernelMatrixReport } from "../../lab/judge/kernel_ledger.ts";
import type { KernelFacts, KernelRun, LabReport, Verdict } from "../../lab/results.ts";

const MACHINE = {
  hostname: "h",
  arch: "x86_64",
  cpu: "c",
  cores: 2,
  memoryMiB: 1024,
  os: "Debian",
  deno: "2.9.6",
};

function facts(release: string, synQueueExtra: 0 | 1 | null, sysctls: string[] = []): KernelFacts {
  return {
    release,
    sysctls: Object.fromEntries(sysctls.map((s) => [s, "1"])),
    behaviour: { synQueueExtra },
    machine: "tcg",
    timeScale: 18,
    probed: true,
  };
}

/** A kernel whose syn-queue-bound experiment decided A2.5 and A0.1 as given. */
function run(
  label: string,
  f: KernelFacts | undefined,
  verdicts: Record<string, Verdict>,
  options: { passed?: boolean; kernelChanges?: string[] } = {},
): KernelRun {
  const report: LabReport = {
    version: 1,
    kernel: f?.release ?? label,
    ...(f ? { kernelFacts: f } : {}),
    machine: MACHINE,
    command: "deno task lab",
    startedAt: "2026-01-01T00:00:00Z",
    durationMs: 1,
    passed: options.passed ?? true,
    experiments: [{
      id: "syn-queue-bound",
      title: "t",
      hypothesis: "h",
      passed: options.passed ?? true,
      mode: "default",
      durationMs: 1,
      runs: [],
      claims: Object.fromEntries(
        Object.entries(verdicts).map(([c, v]) => [c, { verdict: v, evidence: `${c} on ${label}` }]),
      ),
      ...(options.kernelChanges ? { kernelChanges: options.kernelChanges } : {}),
    }],
    ledger: CLAIMS.map((c) => ({
      claim: c.id,
      article: c.article,
      statement: c.statement,
      verdict: verdicts[c.id] ?? "undecided",
      evidence: `${c.id} on ${label}`,
      experiments: c.id in verdicts ? ["syn-queue-bound"] : [],
    })),
  };
  return { spec: label, label, target: "vm", report, durationMs: 1 };
}

const CHANGE = ["3479c7549fb1"];

Deno.test("kernelLedger() has a row per catalogue claim and a cell per kernel, in order", () => {
  const rows = kernelLedger([
    run("5.10.223", facts("5.10.0-32-amd64", 0), { "A0.1": "not reproduced" }),
    { spec: "6.1", label: "6.1.192", target: "vm", error: "Cannot boot", durationMs: 3 },
  ]);
  deepEqual(rows.map((r) => r.claim), CLAIMS.map((c) => c.id));
  const a01 = rows.find((r) => r.claim === "A0.1")!;
  deepEqual(a01.cells, [
    { kernel: "5.10.223", verdict: "not reproduced", experiments: ["syn-queue-bound"] },
    { kernel: "6.1.192", verdict: "not run", experiments: [] },
  ]);
  equal(a01.differs, false, "a kernel that did not run is no difference");
});

Deno.test("kernelLedger() explains a difference by the declared change that splits the kernels", () => {
  const kernels = [
    run("5.10.223", facts("5.10.0-32-amd64", 0), { "A2.5": "reproduced" }, {
      kernelChanges: CHANGE,
    }),
    run("5.10.262", facts("5.10.0-46-amd64", 1), { "A2.5": "partly" }, { kernelChanges: CHANGE }),
    run("6.18", facts("6.18.44", 1), { "A2.5": "partly" }, { kernelChanges: CHANGE }),
  ];
  const row = kernelLedger(kernels).find((r) => r.claim === "A2.5")!;
  ok(row.differs);
  match(
    row.explanation!,
    /^commit 3479c7549fb1 \("tcp\/dccp: allow a connection when sk_max_ack_backlog is zero", v6\.13; backported to 5\.10\.234, 6\.1\.125, 6\.12\.10\)/,
  );
  match(
    row.explanation!,
    /reproduced without it \(5\.10\.223\), partly with it \(5\.10\.262, 6\.18\)/,
  );
});

Deno.test("kernelLedger() names no change an experiment does not declare, or that does not split the verdicts", () => {
  const undeclared = [
    run("5.10.223", facts("a", 0), { "A2.5": "reproduced" }),
    run("6.18", facts("b", 1), { "A2.5": "partly" }),
  ];
  const r1 = kernelLedger(undeclared).find((r) => r.claim === "A2.5")!;
  ok(r1.differs);
  equal(r1.explanation, undefined);
  // The change is on both sides of the verdicts: it does not explain them.
  const mixed = [
    run("x", facts("a", 1), { "A2.5": "reproduced" }, { kernelChanges: CHANGE }),
    run("y", facts("b", 1), { "A2.5": "partly" }, { kernelChanges: CHANGE }),
  ];
  equal(kernelLedger(mixed).find((r) => r.claim === "A2.5")!.explanation, undefined);
  // A kernel whose probe could not tell leaves the split unproven.
  const unknown = [
    run("x", facts("a", 0), { "A2.5": "reproduced" }, { kernelChanges: CHANGE }),
    run("y", facts("b", null), { "A2.5": "partly" }, { kernelChanges: CHANGE }),
  ];
  equal(kernelLedger(unknown).find((r) => r.claim === "A2.5")!.explanation, undefined);
});

Deno.test("kernelMatrixReport() passes only when every kernel ran and passed", () => {
  const ok1 = run("a", facts("a", 1), {});
  const bad = run("b", facts("b", 1), {}, { passed: false });
  const input = { machine: MACHINE, command: "c", startedAt: new Date(0), durationMs: 5.4 };
  equal(kernelMatrixReport({ ...input, kernels: [ok1] }).passed, true);
  equal(kernelMatrixReport({ ...input, kernels: [ok1, bad] }).passed, false);
  const notRun: KernelRun = { spec: "z", label: "z", target: "vm", error: "e", durationMs: 0 };
  const doc = kernelMatrixReport({ ...input, kernels: [ok1, notRun] });
  equal(doc.passed, false);
  equal(doc.version, 1);
  equal(doc.durationMs, 5);
  equal(doc.startedAt, "1970-01-01T00:00:00.000Z");
});

Deno.test("kernelLedger() names the change behind the same verdict's different numbers", () => {
  const kernels = [
    run("5.10.223", facts("5.10.0-32-amd64", 0), { "A2.1": "partly" }, { kernelChanges: CHANGE }),
    run("6.18", facts("6.18.44", 1), { "A2.1": "partly" }, { kernelChanges: CHANGE }),
  ];
  const row = kernelLedger(kernels).find((r) => r.claim === "A2.1")!;
  equal(row.differs, false);
  equal(row.explanation, undefined);
  match(row.changes!, /^commit 3479c7549fb1 .*: without it 5\.10\.223, with it 6\.18$/);
  // All on one side of the change, or an experiment that names none: nothing to say.
  const same = [
    run("a", facts("a", 1), { "A2.1": "partly" }, { kernelChanges: CHANGE }),
    run("b", facts("b", 1), { "A2.1": "partly" }, { kernelChanges: CHANGE }),
  ];
  equal(kernelLedger(same).find((r) => r.claim === "A2.1")!.changes, undefined);
  const undeclared = [
    run("a", facts("a", 0), { "A2.1": "partly" }),
    run("b", facts("b", 1), { "A2.1": "partly" }),
  ];
  equal(kernelLedger(undeclared).find((r) => r.claim === "A2.1")!.changes, undefined);
});
