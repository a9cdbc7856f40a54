/**
 * Tests of `lab/describe/metric.ts`: the metric grammar, parsed once into a
 * `Metric`, and its errors with did-you-mean hints.
 * @module
 */
import { deepStrictEqual as deepEqual, equal, throws } from "node:assert/strict";
import {
  defaultMetrics,
  isHostMetric,
  type Metric,
  MetricError,
  parseMetric,
} from "../../lab/describe/metric.ts";

const CTX = { hosts: ["server", "client"], serverHost: "server", groups: ["fill", "late"] };

Deno.test("parseMetric() parses every kind of metric name", () => {
  const cases: [string, Metric][] = [
    ["server.SYN_RECV", {
      kind: "state",
      name: "server.SYN_RECV",
      host: "server",
      state: "SYN_RECV",
    }],
    [
      "server.SYN_RECV@late",
      {
        kind: "state",
        name: "server.SYN_RECV@late",
        host: "server",
        state: "SYN_RECV",
        group: "late",
      },
    ],
    ["server.recvQ", { kind: "listen", name: "server.recvQ", host: "server", queue: "recvQ" }],
    ["server.sendQ", { kind: "listen", name: "server.sendQ", host: "server", queue: "sendQ" }],
    [
      "client.recvQBytes",
      { kind: "bytes", name: "client.recvQBytes", host: "client", queue: "recvQBytes" },
    ],
    ["server.openFiles", { kind: "openFiles", name: "server.openFiles", host: "server" }],
    [
      "server.TcpExtListenOverflows",
      {
        kind: "counter",
        name: "server.TcpExtListenOverflows",
        host: "server",
        counter: "TcpExtListenOverflows",
      },
    ],
    [
      "clients.fill.connected",
      { kind: "client", name: "clients.fill.connected", group: "fill", count: "connected" },
    ],
    [
      "clients.late.connect.ECONNREFUSED",
      {
        kind: "outcome",
        name: "clients.late.connect.ECONNREFUSED",
        group: "late",
        phase: "connect",
        result: "ECONNREFUSED",
      },
    ],
    [
      "clients.late.after.timeout",
      {
        kind: "outcome",
        name: "clients.late.after.timeout",
        group: "late",
        phase: "after",
        result: "timeout",
      },
    ],
  ];
  for (const [name, want] of cases) {
    deepEqual(parseMetric(name, CTX), want, name);
    deepEqual(parseMetric(name), want, `${name} without context`);
  }
});

Deno.test("parseMetric() names what is wrong, with a did-you-mean and what is valid", () => {
  const cases: [string, RegExp][] = [
    [
      "srever.SYN_RECV",
      /^unknown host "srever" in "srever.SYN_RECV"; did you mean "server"\? \(hosts: server, client, or "clients"\)$/,
    ],
    ["server.SYN_RCV", /^unknown metric "SYN_RCV" in "server.SYN_RCV"; did you mean "SYN_RECV"\?/],
    ["server.TcpExtListenOverflow", /did you mean "TcpExtListenOverflows"\?/],
    [
      "server.SYN_RECV@lat",
      /^unknown client group "lat" in "server.SYN_RECV@lat"; did you mean "late"\?/,
    ],
    ["client.recvQ", /^"client.recvQ": only the server host "server" has a LISTEN socket$/],
    ["client.openFiles", /only the server host "server" runs the server/],
    [
      "clients.fil.connected",
      /^unknown client group "fil" in "clients.fil.connected"; did you mean "fill"\?/,
    ],
    [
      "clients.fill.conected",
      /^unknown client outcome "conected" in "clients.fill.conected"; did you mean "connected"\?/,
    ],
    ["clients.fill.after.bogus", /^unknown client outcome "after.bogus"/],
    ["clients.fill.connect.timeout", /^unknown client outcome "connect.timeout"/],
  ];
  for (const [name, message] of cases) {
    throws(() => parseMetric(name, CTX), (err: unknown) => {
      equal(err instanceof MetricError, true);
      return message.test((err as Error).message);
    }, name);
  }
});

Deno.test("isHostMetric() tells kernel metrics from the client programs' tallies", () => {
  equal(isHostMetric(parseMetric("server.ESTABLISHED")), true);
  equal(isHostMetric(parseMetric("server.TcpOutRsts")), true);
  equal(isHostMetric(parseMetric("clients.fill.launched")), false);
  equal(isHostMetric(parseMetric("clients.fill.after.ECONNRESET")), false);
});

Deno.test("defaultMetrics() are all valid metrics of the experiment", () => {
  const names = defaultMetrics(CTX.hosts, CTX.serverHost, CTX.groups);
  equal(names[0], "server.recvQ");
  for (const n of names) equal(parseMetric(n, CTX).name, n);
  equal(new Set(names).size, names.length);
});
