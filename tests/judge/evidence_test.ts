/**
 * Tests of `lab/judge/evidence.ts`: a run as claim rules see it, and claims
 * decided from an experiment's runs.
 * @module
 */
import { deepStrictEqual as deepEqual, equal, throws } from "node:assert/strict";
import { decideClaims, evidenceOf, summarize } from "../../lab/judge/evidence.ts";
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

Deno.test("decideClaims() gives each rule the runs' evidence and keeps a rule's error", () => {
  const claims = decideClaims({
    "A2.1": (runs) => ({
      verdict: "reproduced",
      evidence: `queued ${runs[0]!.value("server.ESTABLISHED", "peak")}`,
    }),
    "A2.2": (runs) => ({ verdict: "reproduced", evidence: `${runs[0]!.value("server.NOPE")}` }),
  }, [run()]);
  deepEqual(claims["A2.1"], { verdict: "reproduced", evidence: "queued 3" });
  deepEqual(claims["A2.2"], {
    error: 'claim rule failed: Metric "server.NOPE" was not observed in this run',
  });
});
