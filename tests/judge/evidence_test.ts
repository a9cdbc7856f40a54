/**
 * Tests of `lab/judge/evidence.ts`: a run as claim rules see it, and claims
 * decided from an experiment's runs.
 * @module
 */
import { deepStrictEqual as deepEqual, equal, throws } from "node:assert/strict";
import { claimErrors, decideClaims, evidenceOf, summarize } from "../../lab/judge/evidence.ts";
import type { RunResult } from "../../lab/results.ts";

function run(): RunResult {
  return {
    params: { backlog: 2 },
    mode: "fast",
    server: { host: "server", port: 8080, backlog: 2 },
    sysctls: { server: { "net.core.somaxconn": "4096" } },
    addresses: { server: "10.213.1.1", client: "10.213.1.2", "clients.late": "10.213.1.11" },
    passed: true,
    durationMs: 10,
    phases: { build: 1, server: 1, clients: 1, observe: 5, collect: 1, teardown: 1 },
    observed: summarize([
      { t: 0, values: { "server.ESTABLISHED": 0, "clients.late.launched": 2 } },
      { t: 20, values: { "server.ESTABLISHED": 3, "clients.late.launched": 2 } },
      { t: 40, values: { "server.ESTABLISHED": 2, "clients.late.launched": 2 } },
    ]),
    checks: [{
      name: "queued",
      metric: "server.ESTABLISHED",
      over: "settled",
      expected: "= 3",
      observed: 3,
      passed: true,
      atMs: 20,
    }],
    samples: [
      { t: 0, values: { "server.ESTABLISHED": 0 } },
      { t: 20, values: { "server.ESTABLISHED": 3, "client.SYN_SENT": 1 } },
    ],
    connections: [],
    timeline: [{ name: "release", action: "remove rule", atMs: 15.5 }],
    rules: {},
    packets: {
      server: [
        {
          client: "10.213.1.11:40000",
          server: "10.213.1.1:8080",
          events: [
            { t: 1, dir: "out", kind: "SYN-ACK", seq: 1, ack: 2, len: 0, retransmit: false },
            { t: 1001, dir: "out", kind: "SYN-ACK", seq: 1, ack: 2, len: 0, retransmit: true },
            { t: 1002, dir: "in", kind: "ACK", seq: 2, ack: 2, len: 0, retransmit: false },
          ],
        },
        {
          client: "10.213.1.10:40001",
          server: "10.213.1.1:8080",
          events: [{
            t: 2,
            dir: "out",
            kind: "SYN-ACK",
            seq: 9,
            ack: 3,
            len: 0,
            retransmit: false,
          }],
        },
      ],
    },
  };
}

Deno.test("summarize() keeps each metric's last and highest value", () => {
  deepEqual(run().observed["server.ESTABLISHED"], { final: 2, peak: 3 });
});

Deno.test("evidenceOf() reads values, checks, steps, packets and series of a run", () => {
  const e = evidenceOf<{ backlog: number }>(run());
  equal(e.params.backlog, 2);
  equal(e.value("server.ESTABLISHED"), 2);
  equal(e.value("server.ESTABLISHED", "peak"), 3);
  equal(e.value("clients.late.connect.ECONNREFUSED"), 0, "an outcome no connection had is 0");
  equal(e.value("clients.late.after.timeout"), 0);
  throws(
    () => e.value("clients.other.connect.ECONNREFUSED"),
    /Metric "clients\.other\.connect\.ECONNREFUSED" was not observed/,
  );
  throws(
    () => e.value("server.SYN_RECV"),
    /Metric "server\.SYN_RECV" was not observed in this run/,
  );
  equal(e.check("queued").observed, 3);
  throws(() => e.check("nope"), /No check named "nope" \(checks: queued\)/);
  equal(e.stepAt("release"), 15.5);
  throws(() => e.stepAt("other"), /Step "other" did not happen \(steps: release\)/);
  deepEqual(e.packets({ host: "server", kind: "SYN-ACK", from: "server" }), [[1, 1001], [2]]);
  deepEqual(e.packets({ host: "server", kind: "SYN-ACK", from: "server", group: "late" }), [[
    1,
    1001,
  ]]);
  deepEqual(e.packets({ host: "server", kind: "ACK", from: "client" }), [[1002], []]);
  deepEqual(e.packets({ host: "client", kind: "SYN", from: "client" }), []);
  deepEqual(e.series("client.SYN_SENT"), [[20, 1]]);
  equal(e.mode, "fast");
});

Deno.test("decideClaims() gives each rule the runs' evidence and keeps a rule's error, naming file and claim", () => {
  const claims = decideClaims(
    {
      "A2.1": (runs) => ({
        verdict: "reproduced",
        evidence: `queued ${runs[0]!.value("server.ESTABLISHED", "peak")}`,
      }),
      "A2.2": (runs) => ({ verdict: "reproduced", evidence: `${runs[0]!.value("server.NOPE")}` }),
    },
    [run()],
    { file: "experiments/x.ts" },
  );
  deepEqual(claims["A2.1"], { verdict: "reproduced", evidence: "queued 3" });
  const error = (claims["A2.2"] as { error: string }).error;
  equal(
    error.startsWith(
      'experiments/x.ts: claim "A2.2": the rule threw: Metric "server.NOPE" is not a metric: unknown metric "NOPE"',
    ),
    true,
    error,
  );
  deepEqual(claimErrors(claims), [error]);
});

Deno.test("decideClaims() suggests the metric a rule meant: the grammar's, or one the run observed", () => {
  const claims = decideClaims({
    "A2.1": (runs) => ({
      verdict: "reproduced",
      evidence: `${runs[0]!.value("server.ESTABLISHD")}`,
    }),
    "A2.2": (runs) => ({ verdict: "reproduced", evidence: `${runs[0]!.value("server.SYN_RECV")}` }),
    "A2.3": (runs) => ({
      verdict: "reproduced",
      evidence: `${runs[0]!.value("srever.ESTABLISHED")}`,
    }),
  }, [run()]);
  const errors = claimErrors(claims);
  equal(errors.length, 3);
  equal(/did you mean "ESTABLISHED"\?/.test(errors[0]!), true, errors[0]);
  equal(
    /Metric "server\.SYN_RECV" was not observed in this run.*a rule reads what the run samples/
      .test(errors[1]!),
    true,
    errors[1],
  );
  equal(/did you mean "server\.ESTABLISHED"\?/.test(errors[2]!), true, errors[2]);
});

Deno.test("decideClaims() refuses what is not a decision: null, an unknown or blank verdict, blank evidence, a Promise", () => {
  const cases: [unknown, RegExp][] = [
    [null, /the rule returned null: return \{ verdict, evidence \}/],
    [undefined, /the rule returned nothing/],
    [
      { verdict: "maybe", evidence: "x" },
      /verdict "maybe", which is not a verdict \(verdicts: "reproduced", "not reproduced", "partly", "historical"\)/,
    ],
    [{ verdict: "reprodcued", evidence: "x" }, /did you mean "reproduced"\?/],
    [{ verdict: "", evidence: "x" }, /verdict "", which is not a verdict/],
    [{ verdict: "partly", evidence: " " }, /evidence " ": give a sentence/],
    [{ verdict: "partly" }, /evidence nothing: give a sentence/],
    [
      Promise.resolve({ verdict: "partly", evidence: "x" }),
      /a Promise: claim rules are synchronous/,
    ],
  ];
  for (const [returned, want] of cases) {
    const claims = decideClaims({ "A2.1": () => returned as never }, [run()], { file: "x.ts" });
    const [error] = claimErrors(claims);
    equal(
      error !== undefined && error.startsWith('x.ts: claim "A2.1": the rule returned'),
      true,
      error,
    );
    equal(want.test(error!), true, `${JSON.stringify(returned)}: ${error}`);
  }
});
