/**
 * Parallel runs end to end: `--jobs` runs matrix points at once and still
 * reports them in definition order; two labs on one machine at the same time
 * do not collide; bad `--jobs` values are refused.
 * @module
 */
import { deepStrictEqual as deepEqual, ok, strictEqual as equal } from "node:assert/strict";
import { join } from "node:path";
import { loadExperiments } from "../../lab/describe/load.ts";
import { planRuns } from "../../lab/describe/plan.ts";
import { isHistorical } from "../../lab/describe/historical.ts";
import type { LabReport, RunResult } from "../../lab/results.ts";
import {
  cliPrefix,
  labProcesses,
  namespacesWith,
  ROOT,
  rootTest,
  runCli,
  spawnCli,
} from "../_helpers.ts";

const FILTER = "somaxconn-clamps|accept-queue-holds|listen-counters";

/** The observation window of a run, in epoch ms. */
function window(run: RunResult): [number, number] {
  return [run.originEpochMs!, run.originEpochMs! + run.phases.observe];
}

/** How many pairs of runs were observed at the same time. */
function overlaps(doc: LabReport): number {
  const windows = doc.experiments.flatMap((e) => e.runs.map(window));
  let n = 0;
  for (let i = 0; i < windows.length; i++) {
    for (let j = i + 1; j < windows.length; j++) {
      const [a, b] = [windows[i]!, windows[j]!];
      if (a[0] < b[1] && b[0] < a[1]) n++;
    }
  }
  return n;
}

/** Experiment ids and each run's params, in the order the report has them. */
function order(doc: LabReport): [string, unknown[]][] {
  return doc.experiments.map((e) => [e.id, e.runs.map((r) => r.params)]);
}

rootTest("--jobs runs matrix points at once and reports them in definition order", async () => {
  const loaded = await loadExperiments([join(ROOT, "experiments")]);
  const expected = loaded
    .flatMap(({ definition: d }): [string, unknown[]][] =>
      isHistorical(d) || !new RegExp(FILTER).test(d.id)
        ? []
        : [[d.id, planRuns(d, { faithful: false }).map((p) => p.params)]]
    );
  equal(expected.length, 3);

  const parallel = await runCli(["--json", "--jobs", "6", "--filter", FILTER]);
  equal(parallel.code, 0, parallel.stderr);
  const p: LabReport = JSON.parse(parallel.stdout);
  deepEqual(order(p), expected, "experiments in file order, runs in matrix order");
  ok(overlaps(p) > 0, "some runs were observed at the same time");
  // The progress lines come as runs finish; one per run whatever the order.
  const lines = parallel.stderr.match(/^ {2}\[\d+\/3\] \S+ run \d+\/\d+/gm) ?? [];
  equal(lines.length, expected.reduce((n, [, runs]) => n + runs.length, 0), parallel.stderr);

  const serial = await runCli(["--json", "--jobs", "1", "--filter", FILTER]);
  equal(serial.code, 0, serial.stderr);
  const s: LabReport = JSON.parse(serial.stdout);
  deepEqual(order(s), expected);
  equal(overlaps(s), 0, "--jobs 1 observes one run at a time");
  // The same verdicts either way.
  deepEqual(
    p.ledger.map((l) => [l.claim, l.verdict]),
    s.ledger.map((l) => [l.claim, l.verdict]),
  );
  deepEqual(labProcesses(parallel.prefix), []);
  deepEqual(labProcesses(serial.prefix), []);
});

rootTest("two labs at once on one machine do not collide and leave nothing", async () => {
  const cache = await Deno.makeTempDir({ prefix: "bl-parallel-test-" });
  try {
    const filter = "syn-dropped|ss-queues|listen-counters";
    // Both use the default subnet and ports, and share one times cache.
    const env = { XDG_CACHE_HOME: cache };
    const labs = [
      spawnCli(["--json", "--filter", filter], env),
      spawnCli(["--json", "--filter", filter], env),
    ];
    // Both are seen running, each in namespaces of its own prefix (bl-<pid>-…).
    const prefixes = new Set<string>();
    const deadline = performance.now() + 30_000;
    while (prefixes.size < 2 && performance.now() < deadline) {
      for (const name of await namespacesWith("bl-")) {
        const pid = Number(/^bl-(\d+)-/.exec(name)?.[1]);
        if (labs.some((l) => l.pid === pid)) prefixes.add(/^bl-\d+-[0-9a-f]+/.exec(name)![0]);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const outs = await Promise.all(labs.map((l) => l.output()));
    const d = new TextDecoder();
    equal(prefixes.size, 2, "the two labs' namespaces were seen at the same time, apart");
    const docs = outs.map((o, i) => {
      equal(o.code, 0, `lab ${i + 1}: ${d.decode(o.stderr)}`);
      return JSON.parse(d.decode(o.stdout)) as LabReport;
    });
    deepEqual(docs[0]!.ledger.map((l) => l.verdict), docs[1]!.ledger.map((l) => l.verdict));
    // The shared cache is whole JSON with both labs' experiments.
    const times = JSON.parse(await Deno.readTextFile(join(cache, "backlog-lab", "times.json")));
    for (const e of docs[0]!.experiments) ok(`${e.id}:${e.mode}` in times, e.id);
    for (const prefix of prefixes) {
      deepEqual(await namespacesWith(prefix), []);
      deepEqual(labProcesses(prefix), []);
    }
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("--jobs refuses what is not a whole number from 1 to 64 (exit 2)", async () => {
  for (const jobs of ["0", "-2", "1.5", "many", "65"]) {
    const r = await runCli([`--jobs=${jobs}`, "--filter", "somaxconn"]);
    equal(r.code, 2, `${jobs}: ${r.stderr}`);
    ok(r.stderr.includes(`Invalid --jobs "${jobs}": give a whole number from 1 to 64`), r.stderr);
  }
});

rootTest(
  "--repeat N runs each experiment N times and reports how alike they came out",
  async () => {
    const filter = "accept-bounded-by-open-file-limit";
    const json = await runCli(["--json", "--repeat", "3", "--filter", filter]);
    equal(json.code, 0, json.stderr);
    const doc: LabReport = JSON.parse(json.stdout);
    const e = doc.experiments[0]!;
    equal(e.repeats, 3);
    deepEqual(e.flips, []);
    equal(e.repeatDurationsMs?.length, 3);
    equal(e.passed, true);
    // Progress names the repeat of each of the 3 × 2 runs.
    const lines = json.stderr.match(/^ {2}\[1\/1\] \S+ repeat [1-3]\/3 run [12]\/2/gm) ?? [];
    equal(lines.length, 6, json.stderr);
    const ledger = doc.ledger.find((l) => l.claim === "A2.6")!;
    ok(ledger.evidence.includes("the same in all 3 repeats"), ledger.evidence);

    const text = await runCli(["--repeat", "2", "--filter", filter]);
    equal(text.code, 0, text.stderr);
    ok(text.stdout.includes("Repeats (2 of each experiment"), text.stdout);
    const row = text.stdout.split("\n").find((l) => l.includes(filter) && l.includes("2/2"));
    ok(row, text.stdout);
    ok(/A2\.6 reproduced 2\/2/.test(text.stdout), text.stdout);
    deepEqual(labProcesses(json.prefix), []);
    deepEqual(labProcesses(text.prefix), []);
  },
);

Deno.test("--repeat refuses what is not a whole number from 1 to 1000 (exit 2)", async () => {
  for (const n of ["0", "-1", "2.5", "x", "1001"]) {
    const r = await runCli([`--repeat=${n}`, "--filter", "somaxconn"]);
    equal(r.code, 2, `${n}: ${r.stderr}`);
    ok(r.stderr.includes(`Invalid --repeat "${n}": give a whole number from 1 to 1000`), r.stderr);
  }
});

rootTest(
  "three labs at once: all pass, a point that must run alone runs alone on the machine, nothing left",
  async () => {
    // somaxconn-default-filled opens 4,097 connections: it must run alone; the others are
    // timing-sensitive handshakes that failed when three labs ran side by side.
    const filter = "somaxconn-default-filled|listen-counters|final-ack|syn-queue-bound";
    const labs = [0, 1, 2].map(() => spawnCli(["--json", "--filter", filter]));
    const outs = await Promise.all(labs.map((l) => l.output()));
    const d = new TextDecoder();
    const docs = outs.map((o, i) => {
      const stderr = d.decode(o.stderr);
      equal(o.code, 0, `lab ${i + 1}: ${stderr}\n${d.decode(o.stdout).slice(0, 2000)}`);
      return JSON.parse(d.decode(o.stdout)) as LabReport;
    });
    // Every run of every lab: [start, end] of its observation, and whether it ran alone.
    const runs = docs.flatMap((doc, lab) =>
      doc.experiments.flatMap((e) =>
        e.runs.map((r) => ({
          lab,
          what: `${e.id} ${JSON.stringify(r.params)}`,
          alone: e.id === "somaxconn-default-filled",
          window: window(r),
        }))
      )
    );
    const alone = runs.filter((r) => r.alone);
    equal(alone.length, 3, "one exclusive run per lab");
    for (const a of alone) {
      for (const b of runs) {
        if (a === b) continue;
        ok(
          b.window[1] <= a.window[0] || a.window[1] <= b.window[0],
          `lab ${a.lab + 1}'s ${a.what} overlaps lab ${b.lab + 1}'s ${b.what}`,
        );
      }
    }
    deepEqual(docs[0]!.ledger.map((l) => l.verdict), docs[1]!.ledger.map((l) => l.verdict));
    deepEqual(docs[0]!.ledger.map((l) => l.verdict), docs[2]!.ledger.map((l) => l.verdict));
    for (const l of labs) {
      deepEqual(await namespacesWith(cliPrefix(l.pid)), []);
      deepEqual(labProcesses(cliPrefix(l.pid)), []);
    }
  },
);
