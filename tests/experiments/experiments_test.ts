import { deepStrictEqual as deepEqual, match, ok, strictEqual as equal } from "node:assert/strict";
import { Lab } from "../../lab/run/lab.ts";
import { defineExperiment } from "../../lab/describe/validate.ts";
import { loadExperiments } from "../../lab/describe/load.ts";
import { preflight } from "../../lab/topology/preflight.ts";
import { buildLedger } from "../../lab/judge/ledger.ts";
import { isHistorical } from "../../lab/describe/historical.ts";
import type { ExperimentResult } from "../../lab/results.ts";
import { labProcesses, namespacesWith, ROOT, rootTest } from "../_helpers.ts";

async function runOne(id: string): Promise<{ result: ExperimentResult; prefix: string }> {
  const all = await loadExperiments([`${ROOT}experiments`]);
  const found = all.find((e) => e.definition.id === id);
  ok(found && !isHistorical(found.definition), `experiment ${id} exists`);
  await using lab = new Lab();
  await preflight(lab.prefix);
  const result = await lab.runExperiment(found.definition, { file: found.file });
  for (const r of result.runs) {
    const p = r.phases;
    console.log(
      `  ${id} ${JSON.stringify(r.params)}: ${r.durationMs} ms (observe ${p.observe}, overhead ${
        Math.round(r.durationMs - p.observe)
      }: build ${p.build}, server ${p.server}, clients ${p.clients}, collect ${p.collect}, teardown ${p.teardown})`,
    );
  }
  return { result, prefix: lab.prefix };
}

function value(
  r: ExperimentResult["runs"][number],
  metric: string,
  which: "final" | "peak" = "final",
): number {
  const o = r.observed[metric];
  ok(o, `metric ${metric} observed`);
  return o[which];
}

rootTest(
  "accept queue: the server holds exactly min(backlog, somaxconn) + 1 unaccepted connections",
  async () => {
    const { result, prefix } = await runOne("accept-queue-holds-backlog-plus-one");
    ok(result.passed, JSON.stringify(result.runs.map((r) => r.checks.filter((c) => !c.passed))));
    deepEqual(result.runs.map((r) => r.params.backlog), [1, 2, 5, 16, 128]);
    for (const r of result.runs) {
      const b = r.params.backlog as number;
      equal(r.sysctls.server?.["net.core.somaxconn"], "4096");
      equal(value(r, "server.sendQ"), b, "Send-Q is the backlog given to listen()");
      equal(value(r, "server.ESTABLISHED"), b + 1);
      equal(value(r, "server.recvQ"), b + 1);
      equal(value(r, "server.recvQ", "peak"), b + 1, "the queue never held more");
      equal(value(r, "client.SYN_SENT"), 3);
      equal(r.connections.filter((c) => c.connect === "ok").length, b + 1);
      equal(r.connections.filter((c) => c.connect === "pending").length, 3);
      ok(value(r, "server.TcpExtListenOverflows") >= 3);
    }
    const ledger = buildLedger([result]);
    equal(ledger.find((l) => l.claim === "A4.1")?.verdict, "reproduced");
    equal(ledger.find((l) => l.claim === "A0.2")?.verdict, "partly");
    for (const l of ledger) match(l.evidence, /\d/, `${l.claim} evidence has numbers`);
    deepEqual(await namespacesWith(prefix), []);
  },
);

rootTest(
  "somaxconn clamp: Send-Q is min(backlog, somaxconn) of the server's namespace",
  async () => {
    const { result, prefix } = await runOne("somaxconn-clamps-backlog");
    ok(result.passed, JSON.stringify(result.runs.map((r) => r.checks.filter((c) => !c.passed))));
    deepEqual(
      result.runs.map((r) => [r.params.backlog, r.params.somaxconn, value(r, "server.sendQ")]),
      [
        [100, 8, 8],
        [100, 4096, 100],
        [5000, 8, 8],
        [5000, 4096, 4096],
      ],
    );
    for (const r of result.runs) {
      equal(
        r.sysctls.server?.["net.core.somaxconn"],
        String(r.params.somaxconn),
        "read back from the namespace",
      );
    }
    deepEqual(await namespacesWith(prefix), []);
  },
);

rootTest(
  "full accept queue: a new SYN is dropped, counted twice, and retransmitted by the client",
  async () => {
    const { result, prefix } = await runOne("syn-dropped-while-accept-queue-full");
    ok(result.passed, JSON.stringify(result.runs.map((r) => r.checks.filter((c) => !c.passed))));
    const r = result.runs[0]!;
    equal(value(r, "server.SYN_RECV", "peak"), 0);
    equal(value(r, "server.ESTABLISHED", "peak"), 3);
    ok(value(r, "client.TcpExtTCPSynRetrans") >= 2);
    equal(value(r, "server.TcpExtListenOverflows"), value(r, "server.TcpExtListenDrops"));
    ok(value(r, "server.TcpExtListenOverflows") >= 4);
    equal(value(r, "server.TcpOutRsts"), 0);
    deepEqual(await namespacesWith(prefix), []);
    deepEqual(labProcesses(prefix), []);
  },
);

rootTest("IPv6 on request: the same accept-queue bound over fd00::/48 addresses", async () => {
  const def = defineExperiment({
    id: "v6",
    title: "v6",
    hypothesis: "listen(3) over IPv6 queues 4",
    family: 6,
    hosts: { server: {}, client: {} },
    server: { host: "server", backlog: 3 },
    clients: [
      { name: "fill", host: "client", count: 4, start: { intervalMs: 2 } },
      {
        name: "late",
        host: "client",
        count: 2,
        startWhen: { metric: "server.ESTABLISHED", equals: 4 },
      },
    ],
    observe: { intervalMs: 20, windowMs: 3000 },
    expect: [
      { name: "queued", metric: "server.ESTABLISHED", equals: 4, stableMs: 60 },
      { name: "Send-Q", metric: "server.sendQ", equals: 3 },
      { name: "pending", metric: "clients.late.pending", equals: 2 },
    ],
    claims: { "A4.1": () => ({ verdict: "reproduced", evidence: "v6" }) },
  });
  await using lab = new Lab();
  await preflight(lab.prefix);
  const r = await lab.runExperiment(def);
  ok(r.passed, JSON.stringify(r.runs[0]!.checks));
  match(r.runs[0]!.addresses.server ?? "", /^fd00:213:0:1::1$/);
  equal(value(r.runs[0]!, "server.recvQ"), 4);
  deepEqual(await namespacesWith(lab.prefix), []);
});

rootTest(
  "slow server under sustained load: SYNs dropped and resent, resets only with abort_on_overflow=1",
  async () => {
    const { result, prefix } = await runOne("slow-server-under-sustained-load");
    ok(
      result.passed,
      JSON.stringify(result.runs.map((r) => r.error ?? r.checks.filter((c) => !c.passed))),
    );
    for (const r of result.runs) {
      const users = r.experience!.users!;
      const abort = r.params.abortOnOverflow;
      // The link delayed each way by 25 ms, soundly, by whichever mechanism this kernel has.
      for (const d of [r.links!.client!.toServer!, r.links!.client!.toClient!]) {
        equal(d.shape.delayMs, 25);
        equal(d.problem, undefined);
      }
      // Every client ended one way or another; none was refused (Linux drops, never refuses).
      equal(users.outcomes.pending, 0);
      equal(users.outcomes.refused, 0);
      // A connect() takes at least the round trip; some waited for a resent SYN (≥ 1 s).
      ok(users.connectMs!.p50 >= 50 - 1, JSON.stringify(users.connectMs));
      ok(users.connectMs!.max >= 1000, JSON.stringify(users.connectMs));
      ok(value(r, "client.TcpExtTCPSynRetrans") > 0);
      ok(value(r, "server.TcpExtListenOverflows") > 0);
      ok(value(r, "server.recvQ", "peak") <= 17, "the accept queue never held more than 16 + 1");
      if (abort === 1) ok(users.outcomes.reset > 0, "abort_on_overflow=1 reset some clients");
      else equal(users.outcomes.reset, 0);
    }
    const ledger = buildLedger([result]);
    const verdict = (id: string) => ledger.find((l) => l.claim === id)?.verdict;
    equal(verdict("A4.7"), "reproduced");
    equal(verdict("A1.12"), "partly");
    equal(verdict("A3.2"), "partly");
    equal(verdict("A1.5"), "reproduced");
    for (const l of ledger) match(l.evidence, /p50 \d/, `${l.claim} evidence has the distribution`);
    deepEqual(await namespacesWith(prefix), []);
    deepEqual(labProcesses(prefix), []);
  },
);
