/**
 * The claim rule of client-syn-retransmission on a kernel without
 * tcp_syn_linear_timeouts (before 6.5): with the shortened tcp_syn_retries 1
 * there is one resend, and the evidence says so instead of printing a
 * second one it does not have.
 * @module
 */
import { doesNotMatch, equal, match } from "node:assert/strict";
import experiment from "../../experiments/client_syn_retransmission.ts";
import { decideClaims, summarize } from "../../lab/judge/evidence.ts";
import type { KernelFacts } from "../../lab/describe/kernel.ts";
import type { RunResult, Sample } from "../../lab/results.ts";

/** 5.10's fresh-namespace sysctls that matter here: no linear timeouts, no rto_min_us/rto_max_ms. */
const K5_10: KernelFacts = {
  release: "5.10.0-32-amd64",
  sysctls: { "net.ipv4.tcp_syn_retries": "6", "net.core.somaxconn": "4096" },
  behaviour: { synQueueExtra: 0 },
  machine: "tcg",
  timeScale: 60,
  probed: true,
};

/** A run of the default-linear point: two connections, SYNs at 0 and 1.01 s, given up by 3.05 s. */
function run(): RunResult {
  const samples: Sample[] = [0, 1000, 2000, 3000, 3040, 3060].map((t) => ({
    t,
    values: { "client.SYN_SENT": t < 3050 ? 2 : 0 },
  }));
  const syn = (t: number, retransmit: boolean) => ({
    t,
    dir: "in" as const, // the timeline's directions are the server's: a SYN comes in
    kind: "SYN" as const,
    seq: 1,
    ack: 0,
    len: 0,
    retransmit,
  });
  return {
    params: { synRetries: 1, linear: "default" },
    mode: "fast",
    server: { host: "server", port: 8080, backlog: 16 },
    sysctls: {
      server: { "net.ipv4.tcp_syn_retries": "6" },
      client: { "net.ipv4.tcp_syn_retries": "1" },
    },
    addresses: { server: "10.213.1.1", client: "10.213.1.2" },
    passed: true,
    durationMs: 4000,
    phases: { build: 1, server: 1, clients: 1, observe: 3000, collect: 1, teardown: 1 },
    observed: summarize(samples),
    checks: [],
    samples,
    connections: [0, 1].map((index) => ({
      group: "clients",
      index,
      connect: "ETIMEDOUT",
      connectAtMs: 3180 + index,
      connectMs: 3180 + index,
      after: null,
      afterAtMs: null,
      firstByteMs: null,
    })),
    timeline: [],
    rules: {},
    packets: {
      client: [40000, 40001].map((port) => ({
        client: `10.213.1.2:${port}`,
        server: "10.213.1.1:8080",
        events: [syn(0, false), syn(1010, true)],
      })),
    },
  };
}

Deno.test("client-syn-retransmission's A1.8 evidence names the one resend a kernel before 6.5 sends with tcp_syn_retries 1", () => {
  const decided = decideClaims(experiment.claims! as never, [run()], { kernel: K5_10 });
  const a18 = decided["A1.8"]!;
  if ("error" in a18) throw new Error(a18.error);
  equal(a18.verdict, "not reproduced");
  match(a18.evidence, /the first resend came 1\.01 s after the SYN, not 3 s/);
  match(a18.evidence, /no linear timeouts \(before 6\.5\)/);
  doesNotMatch(a18.evidence, /NaN/);
});
