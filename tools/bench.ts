/**
 * `deno task bench`: how fast the lab itself is on this machine. Not a test:
 * it asserts nothing and prints, each with its min/median/max over several
 * repetitions,
 *
 * - the time a matrix point spends outside its observation window (build,
 *   server, clients, collect, teardown), for a minimal point;
 * - the sampler's rate with 500, 5,000 and 10,000 connections, each sampled
 *   at both ends (1,000, 10,000 and 20,000 sockets), and how long one sample
 *   takes;
 * - the connect rate of one client group of 500, 5,000 and 10,000;
 * - the whole default run's wall time, serial (`--jobs 1`) and with the
 *   default `--jobs`.
 *
 * Options: `--reps N` (default 10) for the per-point figures, `--suite-reps N`
 * (default 3) for the whole runs, `--no-suite` to skip them, `--json`.
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import Table from "cli-table3";
import { defineExperiment } from "../lab/describe/validate.ts";
import type { ExperimentDefinition } from "../lab/describe/types.ts";
import { preflight } from "../lab/topology/preflight.ts";
import { Lab } from "../lab/run/lab.ts";
import { defaultJobs } from "../lab/run/scheduler.ts";
import type { RunResult } from "../lab/results.ts";

/** min, median and max of some measurements. */
export interface Spread {
  min: number;
  median: number;
  max: number;
  /** How many measurements. */
  n: number;
}

/** min/median/max of `xs` (the lower middle for an even count). */
export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new RangeError("Cannot summarize no measurements");
  const sorted = [...xs].sort((a, b) => a - b);
  return {
    min: sorted[0]!,
    median: sorted[Math.floor((sorted.length - 1) / 2)]!,
    max: sorted.at(-1)!,
    n: sorted.length,
  };
}

/** Definitions must name a claim; the bench's decide nothing (no ledger is built). */
const NOT_A_CLAIM = () => ({ verdict: "partly" as const, evidence: "(benchmark, not evidence)" });

/** The smallest useful point: one client, one check. */
const MINIMAL = defineExperiment({
  id: "bench-minimal-point",
  title: "One connection to a listener",
  hypothesis: "(benchmark)",
  hosts: { server: {}, client: {} },
  server: { host: "server", backlog: 4 },
  clients: [{ name: "one", host: "client", count: 1 }],
  observe: { intervalMs: 10, windowMs: 2000 },
  expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: 1, stableMs: 20 }],
  claims: { "A4.2": NOT_A_CLAIM },
});

/** N clients to a server that accepts them all, sampled as fast as the runner can. */
function scale(n: number): ExperimentDefinition {
  return defineExperiment({
    id: `bench-scale-${n}`,
    title: `${n} connections`,
    hypothesis: "(benchmark)",
    hosts: { server: {}, client: {} },
    server: { host: "server", backlog: 4096, accept: "all" },
    clients: [{ name: "all", host: "client", count: n }],
    observe: { intervalMs: 5, windowMs: 20_000 },
    expect: [
      // Every connection accepted, then 2 s more of samples at full size.
      { name: "accepted", metric: "server.ESTABLISHED", equals: n, stableMs: 2000 },
      { name: "connected", metric: "client.ESTABLISHED", equals: n, stableMs: 2000 },
    ],
    claims: { "A4.2": NOT_A_CLAIM },
  });
}

/** What one scale run says: sampling rate at full size, ms per sample, connect rate. */
export function scaleFigures(run: RunResult, n: number): {
  hz: number;
  msPerSample: number[];
  connectPerSecond: number;
} {
  const full = run.samples.filter((s) =>
    s.values["server.ESTABLISHED"] === n && s.values["client.ESTABLISHED"] === n
  );
  if (full.length < 3) {
    throw new Error(`Only ${full.length} samples with all ${n} connections: ${run.error ?? ""}`);
  }
  const gaps = full.slice(1).map((s, i) => s.t - full[i]!.t);
  const span = full.at(-1)!.t - full[0]!.t;
  const connects = run.connections.flatMap((c) =>
    c.connect === "ok" && c.connectAtMs !== null ? [c.connectAtMs] : []
  );
  return {
    hz: (full.length - 1) / (span / 1000),
    msPerSample: gaps,
    connectPerSecond: connects.length / (Math.max(...connects) / 1000),
  };
}

async function wholeRun(jobs: number): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      fileURLToPath(new URL("../main.ts", import.meta.url)),
      "--json",
      "--jobs",
      String(jobs),
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const doc = JSON.parse(new TextDecoder().decode(out.stdout));
  if (!doc.passed) throw new Error(`The default run with --jobs ${jobs} failed`);
  return doc.durationMs;
}

const fmt = (x: number, digits = 1) => x.toFixed(digits);

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      reps: { type: "string", default: "10" },
      "suite-reps": { type: "string", default: "3" },
      "no-suite": { type: "boolean" },
      json: { type: "boolean" },
    },
  });
  const reps = Number(values.reps);
  const suiteReps = Number(values["suite-reps"]);
  if (!Number.isInteger(reps) || reps < 1 || !Number.isInteger(suiteReps) || suiteReps < 1) {
    console.error("--reps and --suite-reps take a whole number ≥ 1, e.g. --reps 10");
    return 2;
  }
  await using lab = new Lab({ jobs: 1 });
  const pre = await preflight(lab.prefix, { tools: [], log: (l) => console.error(l) });
  const log = (s: string) => console.error(s);
  log(`backlog-lab bench on Linux ${pre.kernel}, ${navigator.hardwareConcurrency} cores`);

  // 1. A minimal point, one at a time: where its time outside the observation goes.
  log(`matrix point overhead: ${reps} minimal points, one at a time…`);
  const points: RunResult[] = [];
  for (let i = 0; i < reps + 1; i++) {
    const r = await lab.runExperiment(MINIMAL);
    if (i > 0) points.push(r.runs[0]!); // the first warms Deno's caches
  }
  const phase = (f: (r: RunResult) => number) => spread(points.map(f));
  const overhead = {
    build: phase((r) => r.phases.build),
    server: phase((r) => r.phases.server),
    clients: phase((r) => r.phases.clients),
    collect: phase((r) => r.phases.collect),
    teardown: phase((r) => r.phases.teardown),
    outsideObservation: phase((r) => r.durationMs - r.phases.observe),
  };

  // 2 and 3. Sampling and connecting at 1,000 and 10,000 connections.
  const scaleReps = Math.max(1, Math.min(reps, 3));
  const scales: Record<string, { hz: Spread; msPerSample: Spread; connectPerSecond: Spread }> = {};
  // Connections, each sampled at both ends: 1,000, 10,000 and 20,000 sockets.
  for (const n of [500, 5000, 10_000]) {
    log(`sampler and connect rate: ${scaleReps} × ${n} connections…`);
    const hz: number[] = [];
    const gaps: number[] = [];
    const cps: number[] = [];
    for (let i = 0; i < scaleReps; i++) {
      const r = await lab.runExperiment(scale(n));
      const f = scaleFigures(r.runs[0]!, n);
      hz.push(f.hz);
      gaps.push(...f.msPerSample);
      cps.push(f.connectPerSecond);
    }
    scales[n] = { hz: spread(hz), msPerSample: spread(gaps), connectPerSecond: spread(cps) };
  }

  // 4. The whole default run, serial and parallel.
  let suite: { serial: Spread; parallel: Spread; jobs: number } | undefined;
  if (!values["no-suite"]) {
    const serial: number[] = [];
    const parallel: number[] = [];
    for (let i = 0; i < suiteReps; i++) {
      log(`whole default run ${i + 1}/${suiteReps}: --jobs 1, then --jobs ${defaultJobs()}…`);
      serial.push(await wholeRun(1));
      parallel.push(await wholeRun(defaultJobs()));
    }
    suite = { serial: spread(serial), parallel: spread(parallel), jobs: defaultJobs() };
  }

  const figures = {
    kernel: pre.kernel,
    cores: navigator.hardwareConcurrency,
    reps,
    overhead,
    scales,
    suite,
  };
  if (values.json) {
    console.log(JSON.stringify(figures, null, 2));
    return 0;
  }
  const table = new Table({
    head: ["measure", "min", "median", "max", "n"],
    style: { head: [], border: [] },
  });
  const row = (name: string, s: Spread, digits = 1) =>
    table.push([name, fmt(s.min, digits), fmt(s.median, digits), fmt(s.max, digits), s.n]);
  for (const [k, s] of Object.entries(overhead)) {
    row(k === "outsideObservation" ? "point outside observation (ms)" : `point ${k} (ms)`, s);
  }
  for (const [n, s] of Object.entries(scales)) {
    row(`sampler, ${2 * Number(n)} sockets (Hz)`, s.hz, 0);
    row(`  one sample, ${2 * Number(n)} sockets (ms)`, s.msPerSample);
    row(`connect rate, ${n} at once (/s)`, s.connectPerSecond, 0);
  }
  if (suite) {
    row("default run, --jobs 1 (s)", scaleBy(suite.serial, 1 / 1000), 1);
    row(`default run, --jobs ${suite.jobs} (s)`, scaleBy(suite.parallel, 1 / 1000), 1);
  }
  console.log(table.toString());
  return 0;
}

function scaleBy(s: Spread, k: number): Spread {
  return { min: s.min * k, median: s.median * k, max: s.max * k, n: s.n };
}

if (import.meta.main) Deno.exit(await main());
