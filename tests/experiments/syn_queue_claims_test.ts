/**
 * syn-queue-bound's evidence names the bound each kernel showed: backlog + 1
 * since commit 3479c7549fb1, the backlog before it (5.10.223 kept 64 requests
 * with listen(fd, 64), and the text once called that "backlog + 1").
 * @module
 */
import { equal, match } from "node:assert/strict";
import experiment from "../../experiments/syn_queue_bound.ts";
import { decideClaims, summarize } from "../../lab/judge/evidence.ts";
import type { RunResult } from "../../lab/results.ts";

/** A run at one point whose held requests peaked at `synRecv`. */
function run(maxSynBacklog: number, syncookies: number, synRecv: number): RunResult {
  const samples = [{ t: 0, values: { "server.SYN_RECV@held": 0 } }, {
    t: 100,
    values: { "server.SYN_RECV@held": synRecv },
  }];
  return {
    params: { backlog: 64, maxSynBacklog, syncookies },
    mode: "default",
    server: { host: "server", port: 8080, backlog: 64 },
    sysctls: { client: { "net.ipv4.tcp_max_syn_backlog": "2048" } },
    addresses: {},
    passed: true,
    durationMs: 100,
    phases: { build: 1, server: 1, clients: 1, observe: 100, collect: 1, teardown: 1 },
    observed: summarize(samples),
    checks: [],
    samples,
    connections: [],
    timeline: [],
    rules: {},
    packets: {},
  };
}

/** A1.2 and A3.3 decided from the points they read, with SYN_RECV peaks `held` (cookies 1) and 13. */
function decide(held: number) {
  const claims = { "A1.2": experiment.claims!["A1.2"]!, "A3.3": experiment.claims!["A3.3"]! };
  const runs = [run(2048, 1, held), run(16, 0, 13), run(16, 1, held)];
  const decided = decideClaims(claims as never, runs);
  return Object.fromEntries(
    Object.entries(decided).map(([id, d]) => {
      if ("error" in d) throw new Error(d.error);
      return [id, d];
    }),
  );
}

Deno.test("syn-queue-bound calls a peak of 65 with listen(fd, 64) backlog + 1, and 64 the backlog", () => {
  const after = decide(65);
  match(after["A1.2"]!.evidence, /SYN_RECV peaked at 65 = backlog \+ 1/);
  match(after["A3.3"]!.evidence, /but 65 \(= backlog \+ 1\) with syncookies 1/);
  const before = decide(64);
  equal(before["A1.2"]!.verdict, "not reproduced");
  match(before["A1.2"]!.evidence, /SYN_RECV peaked at 64 = the backlog/);
  match(before["A3.3"]!.evidence, /but 64 \(= the backlog\) with syncookies 1/);
  equal(before["A3.3"]!.verdict, "partly");
});
