/**
 * `docs/results.schema.json` against the types of `lab/results.ts`, the
 * lab's real `--json` (and `--report`) output, and `docs/results.md`.
 * @module
 */
// Deno 2.9's node:assert/strict exports loose `equal`/`deepEqual` as named imports (only the
// default export's methods are strict), so the strict names are used explicitly.
import { deepStrictEqual, fail, match, ok, strictEqual } from "node:assert/strict";
import type { ConnectionTimeline, PacketEvent } from "../lab/observe/packet_timeline.ts";
import type {
  CheckResult,
  ClaimDecision,
  ClaimSourceRecord,
  ConnectionRecord,
  Distribution,
  ExperimentResult,
  Flip,
  GroupExperience,
  KernelBehaviour,
  KernelFacts,
  KernelLedgerCell,
  KernelLedgerRow,
  KernelMatrixReport,
  KernelRun,
  LabReport,
  LedgerEntry,
  LinkRecord,
  LinkStatsRecord,
  MachineInfo,
  Phases,
  RuleRecord,
  RunResult,
  Sample,
  ServerRecord,
  ShapedDirectionRecord,
  StepRecord,
  VmRecord,
} from "../lab/results.ts";
import { ROOT, rootTest, runCli } from "./_helpers.ts";
import { schemaErrors } from "./_schema.ts";
import { resultsValidator } from "../lab/judge/load_report.ts";

/** A JSON Schema node, as far as these tests read it. */
interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  required?: string[];
  enum?: unknown[];
  $defs?: Record<string, SchemaNode>;
  [keyword: string]: unknown;
}

const SCHEMA: SchemaNode = JSON.parse(
  await Deno.readTextFile(`${ROOT}docs/results.schema.json`),
);
const DOCS = await Deno.readTextFile(`${ROOT}docs/results.md`);

/** The schema's title: a results document is a LabReport or a KernelMatrixReport. */
const ROOT_NAME = "ResultsDocument";

function assertValid(doc: unknown, what: string): void {
  const errors = schemaErrors(doc);
  if (errors.length) {
    const shown = errors.slice(0, 30);
    fail(
      `${what} does not match docs/results.schema.json (${errors.length} errors):\n  ${
        shown.join("\n  ")
      }${errors.length > shown.length ? "\n  …" : ""}`,
    );
  }
}

// ---------------------------------------------------------------------------
// The schema against the TypeScript types

type OptionalKeys<T> = {
  [K in keyof T]-?: Record<never, never> extends Pick<T, K> ? K : never;
}[keyof T];
type RequiredKeys<T> = Exclude<keyof T, OptionalKeys<T>>;
/** `unknown` when `Listed` covers `All`; otherwise a type naming the missing keys. */
type Covers<All, Listed> = [Exclude<All, Listed>] extends [never] ? unknown
  : { missing: Exclude<All, Listed> };

/**
 * The required and optional field names of `T`, checked at compile time to be
 * exactly its keys: a field added to or removed from a type in `lab/` fails
 * `deno check` here until the list (and then the schema) follows.
 */
function fieldsOf<T>() {
  return <
    const R extends readonly RequiredKeys<T>[],
    const O extends readonly OptionalKeys<T>[],
  >(
    required: R & Covers<RequiredKeys<T>, R[number]>,
    optional: O & Covers<OptionalKeys<T>, O[number]>,
  ): { required: string[]; optional: string[] } => ({
    required: [...required].map(String),
    optional: [...optional].map(String),
  });
}

type ClaimError = Exclude<ExperimentResult["claims"][string], ClaimDecision>;
type MetricSummary = RunResult["observed"][string];
type Charts = NonNullable<RunResult["charts"]>;
type FlipOutcome = Flip["outcomes"][number];
type SkippedRun = NonNullable<ExperimentResult["skippedRuns"]>[number];
type LinkShape = ShapedDirectionRecord["shape"];
type Lateness = NonNullable<LinkStatsRecord["lateness"]>;
type ClientOutcomes = GroupExperience["outcomes"];
type OutcomesOverTime = GroupExperience["overTime"];
type OutcomeBin = OutcomesOverTime["bins"][number];

/** Each object of the schema (root and `$defs`) → the fields of its TypeScript type. */
const TYPE_FIELDS: Record<string, { required: string[]; optional: string[] }> = {
  LabReport: fieldsOf<LabReport>()(
    [
      "version",
      "kernel",
      "machine",
      "command",
      "startedAt",
      "durationMs",
      "passed",
      "experiments",
      "ledger",
    ],
    ["kernelFacts"],
  ),
  KernelFacts: fieldsOf<KernelFacts>()(
    ["release", "sysctls", "behaviour", "machine", "timeScale", "probed"],
    [],
  ),
  KernelBehaviour: fieldsOf<KernelBehaviour>()(["synQueueExtra"], []),
  KernelMatrixReport: fieldsOf<KernelMatrixReport>()(
    ["version", "kernels", "ledger", "machine", "command", "startedAt", "durationMs", "passed"],
    [],
  ),
  KernelRun: fieldsOf<KernelRun>()(
    ["spec", "label", "target", "durationMs"],
    ["vm", "report", "error"],
  ),
  VmRecord: fieldsOf<VmRecord>()(
    [
      "accel",
      "source",
      "bootMs",
      "runMs",
      "attempts",
      "memoryMiB",
      "cpus",
      "kernelCmdline",
      "exitCode",
      "consoleLog",
    ],
    [],
  ),
  KernelLedgerRow: fieldsOf<KernelLedgerRow>()(
    ["claim", "article", "statement", "cells", "differs"],
    ["explanation", "changes"],
  ),
  KernelLedgerCell: fieldsOf<KernelLedgerCell>()(["kernel", "verdict", "experiments"], []),
  SkippedRun: fieldsOf<SkippedRun>()(["params", "reason"], []),
  MachineInfo: fieldsOf<MachineInfo>()(
    ["hostname", "arch", "cpu", "cores", "memoryMiB", "os", "deno"],
    [],
  ),
  ExperimentResult: fieldsOf<ExperimentResult>()(
    ["id", "title", "hypothesis", "passed", "mode", "durationMs", "runs", "claims"],
    [
      "file",
      "skipped",
      "skippedRuns",
      "kernelChanges",
      "shortened",
      "repeats",
      "flips",
      "repeatDurationsMs",
      "metrics",
      "overrides",
    ],
  ),
  Flip: fieldsOf<Flip>()(["kind", "outcomes"], ["claim", "run", "check"]),
  FlipOutcome: fieldsOf<FlipOutcome>()(["value", "repeats"], []),
  ClaimDecision: fieldsOf<ClaimDecision>()(["verdict", "evidence"], []),
  ClaimError: fieldsOf<ClaimError>()(["error"], []),
  RunResult: fieldsOf<RunResult>()(
    [
      "params",
      "mode",
      "server",
      "sysctls",
      "addresses",
      "passed",
      "durationMs",
      "phases",
      "observed",
      "checks",
      "samples",
      "connections",
      "timeline",
      "rules",
      "packets",
    ],
    ["error", "links", "experience", "originEpochMs", "inputQueueDrops", "pcaps", "charts"],
  ),
  Phases: fieldsOf<Phases>()(
    ["build", "server", "clients", "observe", "collect", "teardown"],
    [],
  ),
  MetricSummary: fieldsOf<MetricSummary>()(["final", "peak"], []),
  CheckResult: fieldsOf<CheckResult>()(
    ["name", "metric", "over", "expected", "observed", "passed", "atMs"],
    ["detail", "timingLimited"],
  ),
  Sample: fieldsOf<Sample>()(["t", "values"], []),
  ConnectionRecord: fieldsOf<ConnectionRecord>()(
    ["group", "index", "connect", "connectAtMs", "connectMs", "after", "afterAtMs"],
    ["firstByteMs"],
  ),
  StepRecord: fieldsOf<StepRecord>()(["name", "action", "atMs"], ["result"]),
  RuleRecord: fieldsOf<RuleRecord>()(["host", "nft", "dropped"], []),
  ConnectionTimeline: fieldsOf<ConnectionTimeline>()(["client", "server", "events"], []),
  PacketEvent: fieldsOf<PacketEvent>()(
    ["t", "dir", "kind", "seq", "ack", "len", "retransmit"],
    [],
  ),
  Charts: fieldsOf<Charts>()(["svg", "png"], []),
  LinkRecord: fieldsOf<LinkRecord>()([], ["toServer", "toClient"]),
  ShapedDirectionRecord: fieldsOf<ShapedDirectionRecord>()(
    ["shape", "mechanism", "interface", "stats"],
    ["problem"],
  ),
  LinkShape: fieldsOf<LinkShape>()(["delayMs", "jitterMs", "lossPercent"], [
    "rateKbit",
    "rateQueueMs",
  ]),
  LinkStats: fieldsOf<LinkStatsRecord>()(
    ["offered", "lost", "delayed", "held", "queueDropped", "rateDropped"],
    ["queued", "lateness", "peakHeld", "cpuMs"],
  ),
  Lateness: fieldsOf<Lateness>()(["count", "medianMs", "p99Ms", "meanMs", "maxMs", "over1ms"], []),
  GroupExperience: fieldsOf<GroupExperience>()(
    ["connections", "outcomes", "connectMs", "firstByteMs", "overTime"],
    [],
  ),
  ClientOutcomes: fieldsOf<ClientOutcomes>()(
    ["connected", "reset", "refused", "timedOut", "failed", "pending"],
    [],
  ),
  Distribution: fieldsOf<Distribution>()(["count", "p50", "p90", "p99", "max"], []),
  OutcomesOverTime: fieldsOf<OutcomesOverTime>()(["binMs", "bins"], []),
  OutcomeBin: fieldsOf<OutcomeBin>()(
    ["t", "connected", "reset", "refused", "timedOut", "failed"],
    [],
  ),
  ServerRecord: fieldsOf<ServerRecord>()(["host", "port", "backlog"], []),
  LedgerEntry: fieldsOf<LedgerEntry>()(
    ["claim", "article", "statement", "verdict", "evidence", "experiments"],
    ["source"],
  ),
  ClaimSource: fieldsOf<ClaimSourceRecord>()(["title", "url"], ["file"]),
};

/** The schema's objects with fixed keys: each `$defs` entry that has properties. */
function schemaObjects(): [string, SchemaNode][] {
  return Object.entries(SCHEMA.$defs ?? {}).filter(([, d]) => d.properties !== undefined);
}

// ---------------------------------------------------------------------------
// A synthetic report that uses every field, typed against lab/results.ts

const SYNTHETIC: LabReport = {
  version: 1,
  kernel: "6.18.0-test",
  machine: {
    hostname: "lab",
    arch: "x86_64",
    cpu: "unknown",
    cores: 2,
    memoryMiB: 2048,
    os: "Debian GNU/Linux 12 (bookworm)",
    deno: "2.9.6",
  },
  command: "deno task lab --report out",
  startedAt: "2026-01-02T03:04:05.678Z",
  durationMs: 1234,
  passed: false,
  experiments: [
    {
      id: "tiny-backlog",
      title: "listen(fd, 1) queues two connections",
      hypothesis: "The accept queue holds backlog + 1.",
      file: "experiments/tiny_backlog.ts",
      passed: false,
      mode: "fast",
      shortened: "load: 1 s of arrivals instead of 20 s",
      durationMs: 900,
      runs: [
        {
          params: { backlog: 1, family: "ipv4", cookies: true },
          mode: "fast",
          server: { host: "server", port: 8080, backlog: 1 },
          sysctls: { server: { "net.core.somaxconn": "4096" }, client: {} },
          addresses: { server: "10.213.1.1", client: "10.213.1.2", "clients.c": "10.213.1.10" },
          passed: true,
          durationMs: 420,
          phases: {
            build: 80.5,
            server: 50,
            clients: 40,
            observe: 200,
            collect: 0.4,
            teardown: 49,
          },
          observed: { "server.ESTABLISHED": { final: 2, peak: 2 } },
          checks: [
            {
              name: "queued",
              metric: "server.ESTABLISHED",
              over: "settled",
              expected: "= 2 for 100 ms",
              observed: 2,
              passed: true,
              atMs: 150.2,
            },
            {
              name: "SYN-ACKs",
              metric: "packets.server.server.SYN-ACK@c",
              over: "packets",
              expected: ">= 1 per connection",
              observed: null,
              passed: true,
              atMs: null,
              detail: "10.213.1.10:40000: 1 (gaps none ms)",
            },
          ],
          samples: [{ t: 20.1, values: { "server.ESTABLISHED": 2, "clients.c.connected": 3 } }],
          connections: [
            {
              group: "c",
              index: 0,
              connect: "ok",
              connectAtMs: 3.2,
              connectMs: 3,
              after: "data",
              afterAtMs: 4,
              firstByteMs: 3.9,
            },
            {
              group: "c",
              index: 1,
              connect: "pending",
              connectAtMs: null,
              connectMs: null,
              after: null,
              afterAtMs: null,
            },
          ],
          timeline: [
            { name: "drop", action: 'remove rule "hold_acks"', atMs: 60 },
            {
              name: "lower",
              action: "set net.core.somaxconn=8 on server",
              atMs: 70,
              result: "net.core.somaxconn = 8",
            },
          ],
          rules: {
            hold_acks: { host: "server", nft: "tcp dport 8080 counter drop", dropped: 3 },
          },
          links: {
            client: {
              toServer: {
                shape: {
                  delayMs: 25,
                  jitterMs: 0,
                  lossPercent: 1,
                  rateKbit: 2000,
                  rateQueueMs: 100,
                },
                mechanism: "nfqueue",
                interface: "client:veth0",
                stats: {
                  offered: 100,
                  lost: 1,
                  delayed: 99,
                  held: 0,
                  queueDropped: 0,
                  rateDropped: 0,
                  queued: 99,
                  lateness: {
                    count: 99,
                    medianMs: 0.03,
                    p99Ms: 0.2,
                    meanMs: 0.04,
                    maxMs: 0.9,
                    over1ms: 0,
                  },
                  peakHeld: 12,
                  cpuMs: 31.5,
                },
              },
              toClient: {
                shape: { delayMs: 25, jitterMs: 5, lossPercent: 0 },
                mechanism: "netem",
                interface: "server:veth1",
                stats: null,
                problem:
                  "the shaping of link server → client (server:veth1) stopped during the run",
              },
            },
          },
          experience: {
            c: {
              connections: 2,
              outcomes: { connected: 1, reset: 0, refused: 0, timedOut: 0, failed: 0, pending: 1 },
              connectMs: { count: 1, p50: 3, p90: 3, p99: 3, max: 3 },
              firstByteMs: null,
              overTime: {
                binMs: 10,
                bins: [{ t: 0, connected: 1, reset: 0, refused: 0, timedOut: 0, failed: 0 }],
              },
            },
          },
          packets: {
            server: [
              {
                client: "10.213.1.10:40000",
                server: "10.213.1.1:8080",
                events: [
                  {
                    t: -0.5,
                    dir: "in",
                    kind: "SYN",
                    seq: 4294967295,
                    ack: 0,
                    len: 0,
                    retransmit: false,
                  },
                  {
                    t: 1.25,
                    dir: "out",
                    kind: "SYN-ACK",
                    seq: 7,
                    ack: 0,
                    len: 0,
                    retransmit: true,
                  },
                ],
              },
            ],
          },
          originEpochMs: 1767323045678.123,
          pcaps: { server: "pcaps/tiny-backlog/1-backlog-1-server.pcap" },
          charts: {
            svg: "charts/tiny-backlog/1-backlog-1.svg",
            png: "charts/tiny-backlog/1-backlog-1.png",
          },
        },
        {
          params: {},
          mode: "fast",
          server: { host: "server", port: 8080, backlog: 1 },
          sysctls: {},
          addresses: {},
          passed: false,
          error: 'Cannot create namespace "bl-1-x-2-server": File exists',
          durationMs: 12,
          phases: { build: 10, server: 0, clients: 0, observe: 0, collect: 0, teardown: 2 },
          observed: {},
          checks: [],
          samples: [],
          connections: [],
          timeline: [],
          rules: {},
          packets: {},
        },
      ],
      claims: {
        "A2.1": { verdict: "reproduced", evidence: "2 queued for backlog 1" },
        "A2.2": { error: 'claim rule failed: Metric "x" was not observed in this run' },
        "cf:synack-retries": { verdict: "reproduced", evidence: "2 SYN-ACKs for retries 1" },
      },
      metrics: ["server.ESTABLISHED", "server.recvQ"],
      overrides: { backlog: [1], family: ["ipv4"], cookies: [true] },
      repeats: 3,
      flips: [
        {
          kind: "verdict",
          claim: "A2.1",
          outcomes: [
            { value: "reproduced", repeats: [1, 3] },
            { value: "not reproduced", repeats: [2] },
          ],
        },
        {
          kind: "check",
          run: "backlog=1 family=ipv4 cookies=true",
          check: "queued",
          outcomes: [{ value: "held", repeats: [1, 2] }, { value: "failed", repeats: [3] }],
        },
        {
          kind: "run",
          run: "",
          outcomes: [
            { value: "error: Cannot create namespace", repeats: [1] },
            { value: "passed", repeats: [2, 3] },
          ],
        },
      ],
      repeatDurationsMs: [900, 850, 1000],
    },
    {
      id: "historical-claims",
      title: "Claims about kernels the lab cannot run",
      hypothesis: "These claims concern systems the lab cannot run.",
      passed: true,
      skipped: "not selected",
      mode: "default",
      durationMs: 0,
      runs: [],
      claims: { "A1.1": { verdict: "historical", evidence: "Linux before 2.2." } },
    },
  ],
  ledger: [
    {
      claim: "A2.1",
      article: "A2",
      statement: "The accept queue holds backlog + 1.",
      verdict: "undecided",
      evidence: "tiny-backlog could not complete a run",
      experiments: ["tiny-backlog"],
    },
    {
      claim: "A1.1",
      article: "A1",
      statement: "One queue.",
      verdict: "historical",
      evidence: "Linux before 2.2.",
      experiments: ["historical-claims"],
    },
    {
      claim: "cf:synack-retries",
      article: "cf",
      statement: "The SYN Queue retries a SYN+ACK tcp_synack_retries times.",
      source: {
        title: "SYN packet handling in the wild",
        url: "https://blog.cloudflare.com/syn-packet-handling-in-the-wild/",
        file: "experiments/examples/cloudflare_claims.md:9",
      },
      verdict: "undecided",
      evidence: "tiny-backlog could not complete a run",
      experiments: ["tiny-backlog"],
    },
  ],
};

/** A deep copy of the synthetic report, loosely typed so a test can break it. */
function syntheticCopy(): Record<string, unknown> & LabReport {
  return structuredClone(SYNTHETIC) as Record<string, unknown> & LabReport;
}

function loose(o: object): Record<string, unknown> {
  return o as Record<string, unknown>;
}

// ---------------------------------------------------------------------------

Deno.test("docs/results.schema.json compiles with ajv in strict mode", () => {
  resultsValidator();
  resultsValidator({ reader: true });
  match(String(SCHEMA.$id), /backlog-lab/);
  strictEqual(SCHEMA.title, ROOT_NAME);
  strictEqual(loose(SCHEMA.$defs!.LabReport!.properties!.version!).const, 1);
  strictEqual(loose(SCHEMA.$defs!.KernelMatrixReport!.properties!.version!).const, 1);
});

Deno.test("docs/results.schema.json names the same fields as the types of lab/results.ts", () => {
  const objects = schemaObjects();
  deepStrictEqual(objects.map(([name]) => name).sort(), Object.keys(TYPE_FIELDS).sort());
  const schemaSide = (node: SchemaNode) => ({
    required: [...node.required ?? []].sort(),
    optional: Object.keys(node.properties!).filter((k) => !node.required?.includes(k)).sort(),
    closed: node.additionalProperties === false,
  });
  const typeSide = (name: string) => ({
    required: [...TYPE_FIELDS[name]!.required].sort(),
    optional: [...TYPE_FIELDS[name]!.optional].sort(),
    closed: true,
  });
  // Only the objects that differ, keyed by name, so that the diff says where.
  const differing = objects.filter(([name, node]) =>
    JSON.stringify(schemaSide(node)) !== JSON.stringify(typeSide(name))
  );
  deepStrictEqual(
    Object.fromEntries(differing.map(([name, node]) => [name, schemaSide(node)])),
    Object.fromEntries(differing.map(([name]) => [name, typeSide(name)])),
  );
});

Deno.test("docs/results.schema.json accepts a synthetic report with every field", () => {
  assertValid(SYNTHETIC, "The synthetic report");
});

const MUTATIONS: {
  name: string;
  mutate: (d: ReturnType<typeof syntheticCopy>) => void;
  error: RegExp;
}[] = [
  {
    name: "an unknown top-level field",
    mutate: (d) => d.extra = true,
    error: /^\(document\): must NOT have additional properties "extra"/m,
  },
  {
    name: "an unknown field in a packet event",
    mutate: (d) => loose(d.experiments[0]!.runs[0]!.packets.server![0]!.events[0]!).flags = "S",
    error: /^\/experiments\/0\/runs\/0\/packets\/server\/0\/events\/0: .*additional.*"flags"/m,
  },
  {
    name: "a missing required field",
    mutate: (d) => delete loose(d.machine).cores,
    error: /^\/machine: must have required property 'cores'/m,
  },
  {
    name: "a missing null field (null is not the same as absent)",
    mutate: (d) => delete loose(d.experiments[0]!.runs[0]!.connections[1]!).connectAtMs,
    error: /required property 'connectAtMs'/,
  },
  {
    name: "a wrong verdict in the ledger",
    mutate: (d) => loose(d.ledger[0]!).verdict = "confirmed",
    error: /^\/ledger\/0\/verdict: must be equal to one of the allowed values/m,
  },
  {
    name: "a ledger-only verdict returned by a claim rule",
    mutate: (d) => loose(d.experiments[0]!.claims["A2.1"]!).verdict = "conflict",
    error: /^\/experiments\/0\/claims\/A2\.1\/verdict: must be equal to one of the allowed/m,
  },
  {
    name: "a claim with both a verdict and an error",
    mutate: (d) => loose(d.experiments[0]!.claims["A2.1"]!).error = "x",
    error: /^\/experiments\/0\/claims\/A2\.1: must match exactly one schema in oneOf/m,
  },
  {
    name: "a wrong mode",
    mutate: (d) => loose(d.experiments[0]!.runs[0]!).mode = "slow",
    error: /^\/experiments\/0\/runs\/0\/mode: must be equal to one of the allowed values/m,
  },
  {
    name: "a check flip without its check's name",
    mutate: (d) => delete loose(d.experiments[0]!.flips![1]!).check,
    error: /^\/experiments\/0\/flips\/1: must have required property 'check'/m,
  },
  {
    name: "a verdict flip that names a run",
    mutate: (d) => d.experiments[0]!.flips![0]!.run = "backlog=1",
    error: /^\/experiments\/0\/flips\/0\/run: boolean schema is false/m,
  },
  {
    name: "a flip with a single outcome",
    mutate: (d) => d.experiments[0]!.flips![0]!.outcomes.pop(),
    error: /^\/experiments\/0\/flips\/0\/outcomes: must NOT have fewer than 2 items/m,
  },
  {
    name: "repeats without flips",
    mutate: (d) => delete loose(d.experiments[0]!).flips,
    error:
      /^\/experiments\/0: must have propert(y|ies) flips\b.* when property repeats is present/m,
  },
  {
    name: "version 2",
    mutate: (d) => loose(d).version = 2,
    error: /^\/version: must be equal to constant 1/m,
  },
  {
    name: "a start time that is not ISO 8601",
    mutate: (d) => d.startedAt = "yesterday",
    error: /^\/startedAt: must match format "date-time"/m,
  },
];

for (const { name, mutate, error } of MUTATIONS) {
  Deno.test(`docs/results.schema.json rejects ${name}`, () => {
    const doc = syntheticCopy();
    mutate(doc);
    const errors = schemaErrors(doc);
    ok(errors.length > 0, "the schema accepted it");
    match(errors.join("\n"), error);
  });
}

// ---------------------------------------------------------------------------
// The lab's real output

/**
 * Quick experiments that between them fill every part of a run: a matrix
 * (somaxconn-clamps-backlog, 4 runs, about 2 s), a packet rule, a capture,
 * packet checks and timeline steps (ss-queues-of-connected-sockets, about
 * 1 s) and an experiment without runs (historical-claims).
 */
const REAL_FILTER = "^(somaxconn-clamps-backlog|ss-queues-of-connected-sockets|historical-claims)$";

/** Fails unless `doc` exercised the parts of the schema the filter was chosen for. */
function assertCoverage(doc: LabReport): void {
  const runs = doc.experiments.flatMap((e) => e.runs);
  ok(doc.experiments.some((e) => e.runs.length === 0), "no experiment without runs");
  ok(runs.length >= 5, `only ${runs.length} runs`);
  ok(runs.some((r) => Object.keys(r.rules).length > 0), "no run with a packet rule");
  ok(runs.some((r) => Object.values(r.packets).some((p) => p.length > 0)), "no captured packets");
  ok(runs.some((r) => r.checks.some((c) => c.over === "packets")), "no packet check");
  ok(runs.some((r) => r.timeline.length > 0), "no timeline step");
  ok(runs.some((r) => r.originEpochMs !== undefined), "no originEpochMs");
}

rootTest("the lab's --json document matches docs/results.schema.json", async () => {
  const r = await runCli(["--json", "--filter", REAL_FILTER]);
  // 1 means an expectation failed (e.g. on a loaded machine): the document is still written.
  ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
  if (r.code !== 0) console.warn(`  the lab exited ${r.code}; its stderr:\n${r.stderr}`);
  const doc = JSON.parse(r.stdout);
  assertValid(doc, "The lab's --json output");
  assertCoverage(doc);
});

const HAS_REPORT = /--report\b/.test((await runCli(["--help"])).stdout);
const REPORT_TEST = "the lab's --report results.json matches docs/results.schema.json";
if (HAS_REPORT) {
  rootTest(REPORT_TEST, async () => {
    const dir = await Deno.makeTempDir({ prefix: "bl-report-test-" });
    try {
      const r = await runCli(["--report", dir, "--filter", REAL_FILTER]);
      ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
      const doc: LabReport = JSON.parse(await Deno.readTextFile(`${dir}/results.json`));
      assertValid(doc, `${dir}/results.json`);
      assertCoverage(doc);
      // The files it names are relative to DIR and exist.
      const runs = doc.experiments.flatMap((e) => e.runs);
      ok(runs.some((run) => run.pcaps && Object.keys(run.pcaps).length), "no run names a pcap");
      for (const run of runs) {
        const files = [...Object.values(run.pcaps ?? {}), ...Object.values(run.charts ?? {})];
        for (const f of files) {
          ok(!f.startsWith("/"), `"${f}" is not relative to DIR`);
          ok((await Deno.stat(`${dir}/${f}`)).isFile, `"${f}" is not a file in DIR`);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
} else {
  Deno.test({ name: `${REPORT_TEST} (the CLI has no --report yet)`, ignore: true, fn() {} });
}

// ---------------------------------------------------------------------------
// The documentation

/** The text of `### name` up to the next heading of level 1–3, or undefined. */
function sectionOf(markdown: string, name: string): string | undefined {
  const lines = markdown.split("\n");
  const start = lines.indexOf(`### ${name}`);
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && /^#{1,3} /.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).join("\n");
}

/** Every property name under `node`, with nested schemas (items, maps, oneOf …) included. */
function propertyNames(node: unknown, into = new Set<string>()): Set<string> {
  if (typeof node !== "object" || node === null) return into;
  const n = node as SchemaNode;
  for (const [name, child] of Object.entries(n.properties ?? {})) {
    into.add(name);
    propertyNames(child, into);
  }
  for (const key of ["items", "additionalProperties", "not", "if", "then", "else"]) {
    propertyNames(n[key], into);
  }
  for (const key of ["oneOf", "anyOf", "allOf", "prefixItems"]) {
    for (const child of (n[key] as unknown[] | undefined) ?? []) propertyNames(child, into);
  }
  return into;
}

/** Every `enum` and `const` value anywhere in the schema. */
function enumValues(node: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(node)) {
    for (const child of node) enumValues(child, into);
  } else if (typeof node === "object" && node !== null) {
    for (const [key, child] of Object.entries(node)) {
      if (key === "enum") { for (const v of child as unknown[]) into.add(String(v)); }
      else if (key === "const") into.add(String(child));
      else enumValues(child, into);
    }
  }
  return into;
}

Deno.test("docs/results.md has a table row for every field of the schema, in its object's section", () => {
  const missing: string[] = [];
  for (const [name, node] of schemaObjects()) {
    const section = sectionOf(DOCS, name);
    if (section === undefined) {
      missing.push(`a "### ${name}" section`);
      continue;
    }
    for (const field of propertyNames({ properties: node.properties })) {
      const row = new RegExp(
        `^\\|\\s*\`${field.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\`\\s*\\|`,
        "m",
      );
      if (!row.test(section)) missing.push(`${name}.${field}`);
    }
  }
  deepStrictEqual(
    missing,
    [],
    `docs/results.md has no table row (| \`field\` | …) in its object's section for: ${
      missing.join(", ")
    }`,
  );
});

Deno.test("docs/results.md names every enum value of the schema and links to it", () => {
  const missing = [...enumValues(SCHEMA)].filter((v) => !DOCS.includes(`\`${v}\``));
  deepStrictEqual(
    missing,
    [],
    `enum values docs/results.md does not mention: ${missing.join(", ")}`,
  );
  match(DOCS, /\]\(results\.schema\.json\)/);
});
