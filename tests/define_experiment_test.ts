/**
 * Unit tests of {@linkcode defineExperiment}'s validation and
 * {@linkcode planRuns}' resolution of matrix points.
 * @module
 */
import assert, { deepEqual, equal, match } from "node:assert/strict";
import {
  defineExperiment,
  type ExperimentDefinition,
  matrixPoints,
  planRuns,
} from "../lab/define_experiment.ts";
import { ExperimentDefinitionError } from "../lab/errors.ts";

type Loose = Record<string, unknown>;

const rule = () => ({ verdict: "reproduced" as const, evidence: "ok" });

/** A valid definition, built fresh each time, loosely typed so tests can break it. */
function base() {
  return {
    id: "unit-test",
    title: "A test experiment",
    hypothesis: "It validates.",
    hosts: { server: {}, client: {} } as Loose,
    server: { host: "server", backlog: 2 } as Loose,
    clients: [{ name: "seq", host: "client", count: 3 }] as Loose[],
    observe: { intervalMs: 20, windowMs: 1000 } as Loose,
    expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: 3 }] as Loose[],
    claims: { "A2.1": rule } as Loose,
  };
}

const withGroup = (g: Loose): Loose => ({
  ...base(),
  clients: [{ name: "seq", host: "client", count: 3, ...g }],
});
const withExpect = (e: Loose): Loose => ({
  ...base(),
  expect: [{ name: "queued", metric: "server.ESTABLISHED", ...e }],
});
const withMetric = (metric: string): Loose => withExpect({ metric, equals: 1 });
const withServer = (s: Loose): Loose => ({
  ...base(),
  server: { host: "server", backlog: 2, ...s },
});

function asDefinition(def: Loose): ExperimentDefinition {
  return def as unknown as ExperimentDefinition;
}

/** The error `fn` throws, which must be an ExperimentDefinitionError. */
function definitionError(fn: () => unknown): ExperimentDefinitionError {
  try {
    fn();
  } catch (err) {
    assert(
      err instanceof ExperimentDefinitionError,
      `expected an ExperimentDefinitionError, got ${err}`,
    );
    return err;
  }
  throw new assert.AssertionError({
    message: "expected an ExperimentDefinitionError, none thrown",
  });
}

function checkError(
  err: ExperimentDefinitionError,
  field: string,
  parts: readonly (string | RegExp)[],
): void {
  equal(err.name, "ExperimentDefinitionError");
  equal(err.field, field);
  assert(err.message.startsWith(`Invalid experiment field "${field}": `), err.message);
  equal(err.message, `Invalid experiment field "${field}": ${err.detail}`);
  for (const p of parts) {
    if (typeof p === "string") assert(err.message.includes(p), `"${p}" not in: ${err.message}`);
    else match(err.message, p);
  }
}

const TOP_FIELDS =
  "valid fields: id, title, hypothesis, claims, matrix, family, hosts, server, clients, observe, expect";

/** Definitions defineExperiment rejects: the field and what its message must say. */
const INVALID: { name: string; def: () => Loose; field: string; says: (string | RegExp)[] }[] = [
  // Unknown fields, with did-you-mean.
  {
    name: "an unknown top-level key (hots)",
    def: () => ({ ...base(), hots: {} }),
    field: "hots",
    says: ["unknown field", `did you mean "hosts"?`, TOP_FIELDS],
  },
  {
    name: "an unknown top-level key with no near name",
    def: () => ({ ...base(), zzzzzzzz: 1 }),
    field: "zzzzzzzz",
    says: ["unknown field (valid fields: id,"],
  },
  {
    name: "an unknown key inside server (backlgo)",
    def: () => withServer({ backlgo: 2 }),
    field: "server.backlgo",
    says: [`did you mean "backlog"?`, "valid fields: host, port, backlog, accept"],
  },
  {
    name: "an unknown key inside a client group (cont)",
    def: () => withGroup({ cont: 3 }),
    field: "clients[0].cont",
    says: [
      `did you mean "count"?`,
      "valid fields: name, host, count, start, afterConnect, deadlineMs",
    ],
  },
  {
    name: "an unknown key inside an expectation (equal)",
    def: () => withExpect({ equal: 3, equals: 3 }),
    field: "expect[0].equal",
    says: [`did you mean "equals"?`, "equals, atLeast, atMost, over, stableMs"],
  },
  {
    name: "an unknown key inside observe (interval)",
    def: () => ({ ...base(), observe: { intervalMs: 20, windowMs: 1000, interval: 20 } }),
    field: "observe.interval",
    says: [`did you mean "intervalMs"?`, "valid fields: intervalMs, windowMs"],
  },
  {
    name: "an unknown key inside a host (sysctl)",
    def: () => ({ ...base(), hosts: { server: { sysctl: {} }, client: {} } }),
    field: "hosts.server.sysctl",
    says: [`did you mean "sysctls"?`, "valid fields: sysctls"],
  },
  // Metrics.
  {
    name: "an ss-style state name in a metric (server.SYN-RECV)",
    def: () => withMetric("server.SYN-RECV"),
    field: "expect[0].metric",
    says: [
      `unknown metric "SYN-RECV" in "server.SYN-RECV"`,
      `did you mean "SYN_RECV"?`,
      "a TCP state such as ESTABLISHED, SYN_SENT, SYN_RECV; recvQ or sendQ;",
    ],
  },
  {
    name: "a misspelt state in a metric (server.ESTABLISED)",
    def: () => withMetric("server.ESTABLISED"),
    field: "expect[0].metric",
    says: [`unknown metric "ESTABLISED"`, `did you mean "ESTABLISHED"?`],
  },
  {
    name: "a misspelt counter in a metric (server.TcpExtListenOverflow)",
    def: () => withMetric("server.TcpExtListenOverflow"),
    field: "expect[0].metric",
    says: [`unknown metric "TcpExtListenOverflow"`, `did you mean "TcpExtListenOverflows"?`],
  },
  {
    name: "a wrongly cased queue in a metric (server.recvq)",
    def: () => withMetric("server.recvq"),
    field: "expect[0].metric",
    says: [`did you mean "recvQ"?`],
  },
  {
    name: "a metric with nothing after the host",
    def: () => withMetric("server"),
    field: "expect[0].metric",
    says: [`unknown metric "" in "server"`],
  },
  {
    name: "a metric with too many parts",
    def: () => withMetric("server.ESTABLISHED.x"),
    field: "expect[0].metric",
    says: [`unknown metric "ESTABLISHED.x"`],
  },
  {
    name: "an unknown host in a metric",
    def: () => withMetric("sever.ESTABLISHED"),
    field: "expect[0].metric",
    says: [
      `unknown host "sever" in "sever.ESTABLISHED"`,
      `did you mean "server"?`,
      `(hosts: server, client, or "clients")`,
    ],
  },
  {
    name: "an unknown client group in a metric",
    def: () => withMetric("clients.sqe.connected"),
    field: "expect[0].metric",
    says: [
      `unknown client group "sqe" in "clients.sqe.connected"`,
      `did you mean "seq"?`,
      "(groups: seq)",
    ],
  },
  {
    name: "a client metric without a group",
    def: () => withMetric("clients"),
    field: "expect[0].metric",
    says: [`unknown client group "" in "clients"`, "(groups: seq)"],
  },
  {
    name: "an unknown client outcome in a metric",
    def: () => withMetric("clients.seq.conected"),
    field: "expect[0].metric",
    says: [
      `unknown client outcome "conected"`,
      `did you mean "connected"?`,
      "valid: launched, connected, pending, deadline, connect.<ERRNO>, after.<data|eof|timeout|sent|ERRNO>",
    ],
  },
  {
    name: "a lowercase errno in a client metric",
    def: () => withMetric("clients.seq.connect.econnrefused"),
    field: "expect[0].metric",
    says: [`unknown client outcome "connect.econnrefused"`],
  },
  {
    name: "a follow-up result under connect",
    def: () => withMetric("clients.seq.connect.timeout"),
    field: "expect[0].metric",
    says: [`unknown client outcome "connect.timeout"`],
  },
  {
    name: "recvQ on a host that is not the server's",
    def: () => withMetric("client.recvQ"),
    field: "expect[0].metric",
    says: [`"client.recvQ": only the server host "server" has a LISTEN socket`],
  },
  {
    name: "sendQ on a host that is not the server's",
    def: () => withMetric("client.sendQ"),
    field: "expect[0].metric",
    says: [`only the server host "server" has a LISTEN socket`],
  },
  // Client groups.
  {
    name: "a negative count",
    def: () => withGroup({ count: -1 }),
    field: "clients[0].count",
    says: ["value -1 is out of range: expected an integer from 1 to 100000"],
  },
  {
    name: "a non-integer count (2.5)",
    def: () => withGroup({ count: 2.5 }),
    field: "clients[0].count",
    says: ["expected an integer from 1 to 100000, got 2.5"],
  },
  {
    name: "count 0",
    def: () => withGroup({ count: 0 }),
    field: "clients[0].count",
    says: ["value 0 is out of range: expected an integer from 1 to 100000"],
  },
  {
    name: "a count given as a string",
    def: () => withGroup({ count: "3" }),
    field: "clients[0].count",
    says: [`expected an integer from 1 to 100000, got "3"`],
  },
  {
    name: "a count above the maximum",
    def: () => withGroup({ count: 100_001 }),
    field: "clients[0].count",
    says: ["value 100001 is out of range"],
  },
  {
    name: "a duplicate group name",
    def: () => ({
      ...base(),
      clients: [{ name: "seq", host: "client", count: 1 }, {
        name: "seq",
        host: "client",
        count: 2,
      }],
    }),
    field: "clients[1].name",
    says: [`duplicate group name "seq"`],
  },
  {
    name: "a group name that is not a lowercase identifier",
    def: () => withGroup({ name: "Seq-1" }),
    field: "clients[0].name",
    says: [`"Seq-1" is not a lowercase identifier`],
  },
  {
    name: "clients on the server host",
    def: () => withGroup({ host: "server" }),
    field: "clients[0].host",
    says: [`clients run on a host other than the server's ("server")`],
  },
  {
    name: "clients on an unknown host",
    def: () => withGroup({ host: "clinet" }),
    field: "clients[0].host",
    says: [`unknown host "clinet"`, `did you mean "client"?`, "(hosts: server, client)"],
  },
  {
    name: "a start interval of 0",
    def: () => withGroup({ start: { intervalMs: 0 } }),
    field: "clients[0].start.intervalMs",
    says: ["value 0 is out of range: expected an integer from 1 to 60000"],
  },
  {
    name: "a start that is neither together nor an interval",
    def: () => withGroup({ start: "staggered" }),
    field: "clients[0].start",
    says: [`expected an object, got "staggered"`],
  },
  {
    name: "an empty follow-up",
    def: () => withGroup({ afterConnect: {} }),
    field: "clients[0].afterConnect",
    says: [`expected "nothing", { send: bytes }, { read: { timeoutMs } } or both`],
  },
  {
    name: "a follow-up sending 0 bytes",
    def: () => withGroup({ afterConnect: { send: 0 } }),
    field: "clients[0].afterConnect.send",
    says: ["value 0 is out of range"],
  },
  {
    name: "a follow-up read without a timeout",
    def: () => withGroup({ afterConnect: { read: {} } }),
    field: "clients[0].afterConnect.read.timeoutMs",
    says: ["got nothing"],
  },
  {
    name: "a deadline of 0",
    def: () => withGroup({ deadlineMs: 0 }),
    field: "clients[0].deadlineMs",
    says: ["value 0 is out of range"],
  },
  {
    name: "no client groups",
    def: () => ({ ...base(), clients: [] }),
    field: "clients",
    says: ["expected a non-empty array of client groups, got an array"],
  },
  // Server.
  {
    name: "backlog -1",
    def: () => withServer({ backlog: -1 }),
    field: "server.backlog",
    says: [
      "value -1 is out of range: expected an integer from 0 to 65535",
      "a negative one means somaxconn",
    ],
  },
  {
    name: "backlog 70000",
    def: () => withServer({ backlog: 70000 }),
    field: "server.backlog",
    says: [
      "value 70000 is out of range: expected an integer from 0 to 65535",
      "listen() clamps larger values to net.core.somaxconn",
    ],
  },
  {
    name: "a missing backlog",
    def: () => ({ ...base(), server: { host: "server" } }),
    field: "server.backlog",
    says: ["expected an integer from 0 to 65535, got nothing"],
  },
  {
    name: "port 0",
    def: () => withServer({ port: 0 }),
    field: "server.port",
    says: ["value 0 is out of range: expected an integer from 1 to 65535"],
  },
  {
    name: "an unknown accept policy",
    def: () => withServer({ accept: "always" }),
    field: "server.accept",
    says: [`expected "never"`, `got "always"`],
  },
  {
    name: "a server on an unknown host",
    def: () => withServer({ host: "srever" }),
    field: "server.host",
    says: [`unknown host "srever"`, `did you mean "server"?`, "(hosts: server, client)"],
  },
  // Expectations.
  {
    name: "a duplicate expectation name",
    def: () => ({
      ...base(),
      expect: [
        { name: "queued", metric: "server.ESTABLISHED", equals: 3 },
        { name: "queued", metric: "server.recvQ", equals: 3 },
      ],
    }),
    field: "expect[1].name",
    says: [`duplicate expectation name "queued"`],
  },
  {
    name: "equals together with atLeast",
    def: () => withExpect({ equals: 3, atLeast: 1 }),
    field: "expect[0]",
    says: ["give either equals or atLeast/atMost, not both"],
  },
  {
    name: "equals together with atMost",
    def: () => withExpect({ equals: 3, atMost: 5 }),
    field: "expect[0]",
    says: ["not both"],
  },
  {
    name: "an expectation without bounds",
    def: () => withExpect({}),
    field: "expect[0]",
    says: ["give equals, atLeast or atMost"],
  },
  {
    name: "a bound given as a string",
    def: () => withExpect({ atLeast: "3" }),
    field: "expect[0].atLeast",
    says: [`expected a number or a function of the parameters, got "3"`],
  },
  {
    name: "a NaN bound",
    def: () => withExpect({ equals: NaN }),
    field: "expect[0].equals",
    says: ["got NaN"],
  },
  {
    name: "a misspelt over",
    def: () => withExpect({ equals: 3, over: "setled" }),
    field: "expect[0].over",
    says: [`expected "settled", "always" or "peak", got "setled"`, `did you mean "settled"?`],
  },
  {
    name: `stableMs with over: "always"`,
    def: () => withExpect({ equals: 0, over: "always", stableMs: 100 }),
    field: "expect[0].stableMs",
    says: [`only "settled" expectations take stableMs`],
  },
  {
    name: `stableMs with over: "peak"`,
    def: () => withExpect({ equals: 0, over: "peak", stableMs: 100 }),
    field: "expect[0].stableMs",
    says: [`only "settled" expectations take stableMs`],
  },
  {
    name: "a negative stableMs",
    def: () => withExpect({ equals: 3, stableMs: -1 }),
    field: "expect[0].stableMs",
    says: ["value -1 is out of range: expected an integer from 0 to 600000"],
  },
  {
    name: "no expectations",
    def: () => ({ ...base(), expect: [] }),
    field: "expect",
    says: ["expected a non-empty array of expectations"],
  },
  // Observe.
  {
    name: "observe.windowMs below intervalMs",
    def: () => ({ ...base(), observe: { intervalMs: 20, windowMs: 10 } }),
    field: "observe.windowMs",
    says: ["value 10 is out of range: expected an integer from 20 to 600000"],
  },
  {
    name: "observe.intervalMs below 5",
    def: () => ({ ...base(), observe: { intervalMs: 1, windowMs: 1000 } }),
    field: "observe.intervalMs",
    says: ["value 1 is out of range: expected an integer from 5 to 10000"],
  },
  // Claims.
  {
    name: "a claim id not in the catalogue (A9.9)",
    def: () => ({ ...base(), claims: { "A9.9": rule } }),
    field: "claims.A9.9",
    says: [`"A9.9" is not in the claims catalogue`, "(ids run A0.1 … A4.10)"],
  },
  {
    name: "a claim id one digit off (A0.20)",
    def: () => ({ ...base(), claims: { "A0.20": rule } }),
    field: "claims.A0.20",
    says: [`"A0.20" is not in the claims catalogue`, `did you mean "A0.2"?`],
  },
  {
    name: "a claim rule that is not a function",
    def: () => ({ ...base(), claims: { "A2.1": "reproduced" } }),
    field: "claims.A2.1",
    says: [`expected a rule function, got "reproduced"`],
  },
  {
    name: "no claims",
    def: () => ({ ...base(), claims: {} }),
    field: "claims",
    says: ["name at least one claim id it decides"],
  },
  // Hosts and sysctls.
  {
    name: "a sysctl key not starting with net.",
    def: () => ({
      ...base(),
      hosts: { server: { sysctls: { "kernel.somaxconn": 8 } }, client: {} },
    }),
    field: "hosts.server.sysctls.kernel.somaxconn",
    says: [
      `"kernel.somaxconn" is not a per-namespace net.* sysctl name (e.g. "net.core.somaxconn")`,
    ],
  },
  {
    name: "a sysctl key in the /proc path form",
    def: () => ({
      ...base(),
      hosts: { server: { sysctls: { "net/core/somaxconn": 8 } }, client: {} },
    }),
    field: "hosts.server.sysctls.net/core/somaxconn",
    says: ["is not a per-namespace net.* sysctl name"],
  },
  {
    name: "a sysctl value that is a boolean",
    def: () => ({
      ...base(),
      hosts: { server: { sysctls: { "net.ipv4.tcp_syncookies": true } }, client: {} },
    }),
    field: "hosts.server.sysctls.net.ipv4.tcp_syncookies",
    says: ["expected a number, string or function, got true"],
  },
  {
    name: "a single host",
    def: () => ({ ...base(), hosts: { server: {} } }),
    field: "hosts",
    says: ["define at least a server host and a client host"],
  },
  {
    name: `a host named "clients"`,
    def: () => ({ ...base(), hosts: { server: {}, clients: {} } }),
    field: "hosts.clients",
    says: [`host names are lowercase identifiers other than "clients"`],
  },
  // The rest.
  {
    name: "an id that is not kebab-case",
    def: () => ({ ...base(), id: "Unit_Test" }),
    field: "id",
    says: [`"Unit_Test" is not kebab-case`],
  },
  {
    name: "an empty title",
    def: () => ({ ...base(), title: "  " }),
    field: "title",
    says: [`expected a non-empty string, got "  "`],
  },
  {
    name: "family 5",
    def: () => ({ ...base(), family: 5 }),
    field: "family",
    says: ["expected 4 or 6, got 5"],
  },
  {
    name: "an empty matrix parameter",
    def: () => ({ ...base(), matrix: { backlog: [] } }),
    field: "matrix.backlog",
    says: ["expected a non-empty array of values"],
  },
  {
    name: "an object as a matrix value",
    def: () => ({ ...base(), matrix: { backlog: [1, { b: 2 }] } }),
    field: "matrix.backlog[1]",
    says: [`expected a number, string or boolean, got {"b":2}`],
  },
];

for (const c of INVALID) {
  Deno.test(`defineExperiment() rejects ${c.name}`, () => {
    const err = definitionError(() => defineExperiment(asDefinition(c.def())));
    checkError(err, c.field, c.says);
    equal(err.file, undefined);
  });
}

Deno.test("defineExperiment() rejects a non-object definition", () => {
  for (const v of [null, 42, "x", []]) {
    const err = definitionError(() => defineExperiment(v as unknown as ExperimentDefinition));
    equal(err.field, "");
    match(err.message, /expected an object, got /);
  }
});

Deno.test("ExperimentDefinitionError.inFile() keeps field and detail and names the file", () => {
  const err = definitionError(() => defineExperiment(asDefinition(withGroup({ count: 0 }))));
  const inFile = err.inFile("experiments/x.ts");
  assert(inFile instanceof ExperimentDefinitionError);
  equal(inFile.field, "clients[0].count");
  equal(inFile.detail, err.detail);
  equal(inFile.file, "experiments/x.ts");
  assert(
    inFile.message.startsWith(`experiments/x.ts: Invalid experiment field "clients[0].count"`),
  );
});

// --- planRuns: values that depend on the parameters -------------------------

/** planRuns' errors for a definition that passes defineExperiment. */
const INVALID_AT_PLAN: {
  name: string;
  def: () => Loose;
  field: string;
  says: (string | RegExp)[];
}[] = [
  {
    name: "a backlog function that returns an out-of-range value",
    def: () => ({
      ...base(),
      matrix: { b: [1, 3] },
      server: { host: "server", backlog: (p: { b: number }) => (p.b === 3 ? -5 : p.b) },
    }),
    field: "server.backlog",
    says: ["value -5 is out of range: expected an integer from 0 to 65535", `(at {"b":3})`],
  },
  {
    name: "a backlog function that returns a non-integer",
    def: () => ({
      ...base(),
      matrix: { b: [1, 2] },
      server: { host: "server", backlog: (p: { b: number }) => p.b / 2 },
    }),
    field: "server.backlog",
    says: ["expected an integer from 0 to 65535, got 0.5", `(at {"b":1})`],
  },
  {
    name: "a backlog function that throws",
    def: () => ({
      ...base(),
      matrix: { b: [7] },
      server: {
        host: "server",
        backlog: () => {
          throw new Error("boom");
        },
      },
    }),
    field: "server.backlog",
    says: [`the function threw for {"b":7}: boom`, `(at {"b":7})`],
  },
  {
    name: "a count function that returns 0",
    def: () => ({
      ...base(),
      matrix: { n: [2, 0] },
      clients: [{ name: "seq", host: "client", count: (p: { n: number }) => p.n }],
    }),
    field: "clients[0].count",
    says: ["value 0 is out of range: expected an integer from 1 to 100000", `(at {"n":0})`],
  },
  {
    name: "an equals function that returns NaN",
    def: () => ({
      ...base(),
      matrix: { n: [1] },
      expect: [{ name: "q", metric: "server.ESTABLISHED", equals: () => NaN }],
    }),
    field: "expect[0].equals",
    says: ["expected a number, got NaN", `(at {"n":1})`],
  },
  {
    name: "atLeast above atMost",
    def: () => ({
      ...base(),
      matrix: { n: [5] },
      expect: [{
        name: "q",
        metric: "server.ESTABLISHED",
        atLeast: (p: { n: number }) => p.n,
        atMost: 3,
      }],
    }),
    field: "expect[0]",
    says: ["atLeast 5 is above atMost 3", `(at {"n":5})`],
  },
  {
    name: "a sysctl function that returns a boolean",
    def: () => ({
      ...base(),
      matrix: { on: [true] },
      hosts: {
        server: { sysctls: { "net.ipv4.tcp_syncookies": (p: { on: boolean }) => p.on } },
        client: {},
      },
    }),
    field: "hosts.server.sysctls.net.ipv4.tcp_syncookies",
    says: ["expected a number or string, got true", `(at {"on":true})`],
  },
];

for (const c of INVALID_AT_PLAN) {
  Deno.test(`planRuns() rejects ${c.name}, naming the matrix point`, () => {
    const def = defineExperiment(asDefinition(c.def()));
    const err = definitionError(() => planRuns(def));
    checkError(err, c.field, c.says);
  });
}

Deno.test("planRuns() names no matrix point when there is no matrix", () => {
  const def = defineExperiment(
    asDefinition({ ...base(), server: { host: "server", backlog: () => 70000 } }),
  );
  const err = definitionError(() => planRuns(def));
  checkError(err, "server.backlog", ["value 70000 is out of range"]);
  assert(!err.message.includes("(at "), err.message);
});

Deno.test("planRuns() reports the first bad point, not a later one", () => {
  const def = defineExperiment(asDefinition({
    ...base(),
    matrix: { b: [1, -1, -2] },
    server: { host: "server", backlog: (p: { b: number }) => p.b },
  }));
  const err = definitionError(() => planRuns(def));
  match(err.message, /value -1 is out of range/);
  match(err.message, /\(at \{"b":-1\}\)$/);
});

// --- what valid definitions become ------------------------------------------

Deno.test("defineExperiment() returns the definition itself", () => {
  const def = asDefinition(base());
  equal(defineExperiment(def), def);
});

Deno.test("planRuns() applies the defaults: port 8080, accept never, stableMs = 3 × intervalMs, family 4", () => {
  const runs = planRuns(defineExperiment(asDefinition({
    ...base(),
    observe: { intervalMs: 25, windowMs: 1000 },
    expect: [
      { name: "queued", metric: "server.ESTABLISHED", equals: 3 },
      { name: "overflows", metric: "server.TcpExtListenOverflows", atLeast: 1 },
      { name: "no syn-recv", metric: "server.SYN_RECV", atMost: 0, over: "always" },
    ],
  })));
  equal(runs.length, 1);
  const run = runs[0]!;
  deepEqual(run.params, {});
  equal(run.family, 4);
  deepEqual(run.server, {
    host: "server",
    port: 8080,
    backlog: 2,
    accept: "never",
    acceptAfterMs: 0,
  });
  deepEqual(run.rules, []);
  deepEqual(run.timeline, []);
  deepEqual(run.capture, []);
  equal(run.mode, "default");
  deepEqual(run.observe, { intervalMs: 25, windowMs: 1000 });
  deepEqual(run.hosts, [{ name: "server", sysctls: {} }, { name: "client", sysctls: {} }]);
  deepEqual(run.groups, [{
    name: "seq",
    host: "client",
    count: 3,
    intervalMs: 0,
    then: { kind: "nothing" },
    deadlineMs: 0,
  }]);
  deepEqual(run.expectations, [
    { name: "queued", metric: "server.ESTABLISHED", over: "settled", min: 3, max: 3, stableMs: 75 },
    {
      name: "overflows",
      metric: "server.TcpExtListenOverflows",
      over: "settled",
      min: 1,
      max: Infinity,
      stableMs: 75,
    },
    {
      name: "no syn-recv",
      metric: "server.SYN_RECV",
      over: "always",
      min: -Infinity,
      max: 0,
      stableMs: 75,
    },
  ]);
});

Deno.test("planRuns() keeps explicit values over the defaults", () => {
  const [run] = planRuns(defineExperiment(asDefinition({
    ...base(),
    family: 6,
    server: { host: "server", backlog: 0, port: 9000, accept: "never" },
    clients: [{
      name: "seq",
      host: "client",
      count: 3,
      start: { intervalMs: 2 },
      afterConnect: { send: 10, read: { timeoutMs: 500 } },
      deadlineMs: 900,
    }],
    expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: 1, stableMs: 0 }],
  })));
  equal(run!.family, 6);
  deepEqual(run!.server, {
    host: "server",
    port: 9000,
    backlog: 0,
    accept: "never",
    acceptAfterMs: 0,
  });
  deepEqual(run!.groups[0], {
    name: "seq",
    host: "client",
    count: 3,
    intervalMs: 2,
    then: { kind: "sendRead", bytes: 10, timeoutMs: 500 },
    deadlineMs: 900,
  });
  equal(run!.expectations[0]!.stableMs, 0);
});

Deno.test("planRuns() turns each follow-up into the client program's terms", () => {
  const cases: [unknown, unknown][] = [
    ["nothing", { kind: "nothing" }],
    [{ send: 4 }, { kind: "send", bytes: 4 }],
    [{ read: { timeoutMs: 50 } }, { kind: "read", timeoutMs: 50 }],
    [{ send: 4, read: { timeoutMs: 50 } }, { kind: "sendRead", bytes: 4, timeoutMs: 50 }],
  ];
  for (const [afterConnect, then] of cases) {
    const [run] = planRuns(defineExperiment(asDefinition(withGroup({ afterConnect }))));
    deepEqual(run!.groups[0]!.then, then);
  }
});

Deno.test("planRuns() lists the server host first and samples the default metrics plus the expectations'", () => {
  const [run] = planRuns(defineExperiment(asDefinition({
    ...base(),
    hosts: { client: {}, server: {} },
    expect: [
      { name: "queued", metric: "server.ESTABLISHED", equals: 3 },
      { name: "refused", metric: "clients.seq.connect.ECONNREFUSED", equals: 0 },
    ],
  })));
  deepEqual(run!.hosts.map((h) => h.name), ["server", "client"]);
  const m = run!.metrics;
  equal(new Set(m).size, m.length, "no duplicates");
  for (
    const want of [
      "server.recvQ",
      "server.sendQ",
      "server.ESTABLISHED",
      "server.SYN_RECV",
      "server.TcpExtListenOverflows",
      "client.SYN_SENT",
      "client.TcpExtTCPSynRetrans",
      "clients.seq.launched",
      "clients.seq.connected",
      "clients.seq.pending",
      "clients.seq.connect.ECONNREFUSED",
    ]
  ) assert(m.includes(want), `${want} not sampled`);
  assert(!m.includes("client.recvQ"));
  equal(m[0], "server.recvQ");
  equal(m.at(-1), "clients.seq.connect.ECONNREFUSED");
});

Deno.test("planRuns() expands a 2x2 matrix in declaration order and resolves functions of the params", () => {
  const def = defineExperiment({
    id: "two-by-two",
    title: "2x2",
    hypothesis: "Points come out in order.",
    matrix: { backlog: [1, 5], somaxconn: [8, 4096] },
    hosts: {
      client: {},
      server: {
        sysctls: { "net.core.somaxconn": (p) => p.somaxconn, "net.ipv4.tcp_syncookies": 0 },
      },
    },
    server: { host: "server", backlog: (p) => p.backlog },
    clients: [{ name: "seq", host: "client", count: (p) => Math.min(p.backlog, p.somaxconn) + 2 }],
    observe: { intervalMs: 20, windowMs: 1000 },
    expect: [
      {
        name: "queued",
        metric: "server.ESTABLISHED",
        equals: (p) => Math.min(p.backlog, p.somaxconn) + 1,
      },
      { name: "send-q", metric: "server.sendQ", atLeast: (p) => p.backlog, atMost: 5000 },
    ],
    claims: { "A4.2": () => ({ verdict: "reproduced", evidence: "x" }) },
  });
  const runs = planRuns(def);
  deepEqual(runs.map((r) => r.params), [
    { backlog: 1, somaxconn: 8 },
    { backlog: 1, somaxconn: 4096 },
    { backlog: 5, somaxconn: 8 },
    { backlog: 5, somaxconn: 4096 },
  ]);
  deepEqual(runs.map((r) => r.server.backlog), [1, 1, 5, 5]);
  deepEqual(runs.map((r) => r.groups[0]!.count), [3, 3, 7, 7]);
  deepEqual(runs.map((r) => r.hosts[0]), [
    { name: "server", sysctls: { "net.core.somaxconn": "8", "net.ipv4.tcp_syncookies": "0" } },
    { name: "server", sysctls: { "net.core.somaxconn": "4096", "net.ipv4.tcp_syncookies": "0" } },
    { name: "server", sysctls: { "net.core.somaxconn": "8", "net.ipv4.tcp_syncookies": "0" } },
    { name: "server", sysctls: { "net.core.somaxconn": "4096", "net.ipv4.tcp_syncookies": "0" } },
  ]);
  deepEqual(runs.map((r) => [r.expectations[0]!.min, r.expectations[0]!.max]), [
    [2, 2],
    [2, 2],
    [6, 6],
    [6, 6],
  ]);
  deepEqual(runs.map((r) => [r.expectations[1]!.min, r.expectations[1]!.max]), [
    [1, 5000],
    [1, 5000],
    [5, 5000],
    [5, 5000],
  ]);
});

Deno.test("matrixPoints() gives one empty point without a matrix and the cross product with one", () => {
  deepEqual(matrixPoints(undefined), [{}]);
  deepEqual(matrixPoints({}), [{}]);
  deepEqual(matrixPoints({ a: [1, 2, 3] }), [{ a: 1 }, { a: 2 }, { a: 3 }]);
  deepEqual(matrixPoints({ a: [1, 2], b: ["x"], c: [true, false] }), [
    { a: 1, b: "x", c: true },
    { a: 1, b: "x", c: false },
    { a: 2, b: "x", c: true },
    { a: 2, b: "x", c: false },
  ]);
});

// --- the repository's experiments -------------------------------------------

const EXPERIMENTS_DIR = new URL("../experiments/", import.meta.url);
const experimentFiles = [...Deno.readDirSync(EXPERIMENTS_DIR)]
  .filter((e) => e.isFile && e.name.endsWith(".ts") && !e.name.startsWith("_"))
  .map((e) => e.name)
  .sort();

Deno.test("experiments/ holds experiment files", () => {
  assert(experimentFiles.length >= 3, `only ${experimentFiles.length} experiment files`);
});

for (const name of experimentFiles) {
  Deno.test(`experiments/${name} passes defineExperiment() and planRuns()`, async () => {
    const mod = await import(new URL(name, EXPERIMENTS_DIR).href) as { default?: unknown };
    assert(mod.default !== undefined, "no default export");
    const def = mod.default as ExperimentDefinition;
    equal(defineExperiment(def), def);
    const runs = planRuns(def);
    const points = Object.values(def.matrix ?? {}).reduce((n, v) => n * v.length, 1);
    equal(runs.length, points);
    for (const run of runs) {
      equal(run.hosts[0]!.name, def.server.host);
      equal(run.expectations.length, def.expect.length);
      equal(run.groups.length, def.clients.length);
      for (const e of run.expectations) {
        assert(e.min <= e.max, `${e.name}: ${e.min} > ${e.max}`);
        assert(run.metrics.includes(e.metric));
      }
    }
  });
}

Deno.test("experiments/ ids are unique", async () => {
  const ids: string[] = [];
  for (const name of experimentFiles) {
    const mod = await import(new URL(name, EXPERIMENTS_DIR).href) as { default: { id: string } };
    ids.push(mod.default.id);
  }
  equal(new Set(ids).size, ids.length, ids.join(", "));
});

// --- startWhen: a group that waits for the kernel to show a condition ---

const lateGroup = (startWhen: unknown): Loose => ({
  ...base(),
  clients: [
    { name: "seq", host: "client", count: 3 },
    { name: "late", host: "client", count: 2, startWhen },
  ],
});

Deno.test("defineExperiment() names a typo in a startWhen metric", () => {
  const err = definitionError(() =>
    defineExperiment(asDefinition(lateGroup({ metric: "server.ESTABLISED", equals: 3 })))
  );
  equal(err.field, "clients[1].startWhen.metric");
  match(err.message, /did you mean "ESTABLISHED"/);
});

Deno.test("defineExperiment() rejects a group waiting for its own outcomes", () => {
  const err = definitionError(() =>
    defineExperiment(asDefinition(lateGroup({ metric: "clients.late.connected", atLeast: 1 })))
  );
  equal(err.field, "clients[1].startWhen.metric");
  match(err.message, /would never start/);
});

Deno.test("defineExperiment() rejects a startWhen without bounds, and groups that all wait", () => {
  equal(
    definitionError(() =>
      defineExperiment(asDefinition(lateGroup({ metric: "server.ESTABLISHED" })))
    )
      .field,
    "clients[1].startWhen",
  );
  const allWait = {
    ...base(),
    clients: [{
      name: "seq",
      host: "client",
      count: 3,
      startWhen: { metric: "server.ESTABLISHED", equals: 0 },
    }],
  };
  const err = definitionError(() => defineExperiment(asDefinition(allWait)));
  equal(err.field, "clients");
  match(err.message, /at least one group must start without startWhen/);
});

Deno.test("planRuns() resolves startWhen bounds and samples its metric", () => {
  const def = defineExperiment({
    ...(base() as unknown as ExperimentDefinition),
    matrix: { b: [2] },
    clients: [
      { name: "seq", host: "client", count: 3 },
      {
        name: "late",
        host: "client",
        count: 2,
        startWhen: {
          metric: "server.TcpExtListenDrops",
          equals: (p: Record<string, unknown>) => Number(p.b) + 1,
        },
      },
    ],
  });
  const [plan] = planRuns(def);
  deepEqual(plan!.groups[1]!.startWhen, { metric: "server.TcpExtListenDrops", min: 3, max: 3 });
  equal(plan!.groups[0]!.startWhen, undefined);
  assert(plan!.metrics.includes("server.TcpExtListenDrops"));
});
