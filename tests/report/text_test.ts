/**
 * Unit tests of `lab/report/text.ts`: the terminal's tables.
 * @module
 */
import { match, ok, strictEqual as equal } from "node:assert/strict";
import { clientsTable, experimentLine } from "../../lab/report/text.ts";
import type { ExperimentResult, RunResult } from "../../lab/results.ts";

function run(params: RunResult["params"], withClients: boolean): RunResult {
  return {
    params,
    mode: "fast",
    server: { host: "server", port: 8080, backlog: 16 },
    sysctls: {},
    addresses: {},
    passed: true,
    durationMs: 5000,
    phases: { build: 1, server: 1, clients: 1, observe: 1, collect: 1, teardown: 1 },
    observed: {},
    checks: [],
    samples: [],
    connections: [],
    timeline: [],
    rules: {},
    packets: {},
    ...(withClients
      ? {
        links: {
          client: {
            toServer: {
              shape: { delayMs: 25, jitterMs: 0, lossPercent: 0 },
              mechanism: "nfqueue" as const,
              interface: "client:veth0",
              stats: null,
            },
          },
        },
        experience: {
          users: {
            connections: 400,
            outcomes: { connected: 380, reset: 12, refused: 0, timedOut: 8, failed: 0, pending: 0 },
            connectMs: { count: 392, p50: 61.4, p90: 1050, p99: 2103, max: 3120 },
            firstByteMs: null,
            overTime: { binMs: 50, bins: [] },
          },
        },
      }
      : {}),
  };
}

function experiment(runs: RunResult[]): ExperimentResult {
  return {
    id: "slow",
    title: "A slow server",
    hypothesis: "h",
    passed: true,
    mode: "fast",
    durationMs: 5000,
    runs,
    claims: {},
  };
}

Deno.test("clientsTable() gives each run's groups with outcomes, distributions and links", () => {
  const table = clientsTable(experiment([run({ abort: 1 }, true), run({ abort: 0 }, false)]), 200);
  match(table, /abort=1 .*users \(400\) .*380 \/ 12 \/ 0 \/ 8 \/ 0 \/ 0/);
  match(table, /61 ms \/ 1\.05 s \/ 2\.10 s \/ 3\.12 s/);
  match(table, /client → server 25 ms \(nfqueue\)/);
  ok(!table.includes("abort=0"), "a run without client records has no row");
  equal(clientsTable(experiment([run({}, false)])), "");
  match(experimentLine(experiment([])), /^\[ OK \] slow: A slow server \(5\.00 s, 0 runs\)$/);
});
