/**
 * Unit tests of {@linkcode checkPackets} and {@linkcode connectionsOf}:
 * per-connection packet counts and gaps, judged from hand-built timelines.
 * @module
 */
import { deepStrictEqual as deepEqual, strictEqual as equal } from "node:assert/strict";
import { checkPackets, connectionsOf } from "../../lab/judge/expect_packets.ts";
import type { PlannedPacketExpectation } from "../../lab/describe/run_plan.ts";
import type {
  ConnectionTimeline,
  PacketEvent,
  PacketKind,
} from "../../lab/observe/packet_timeline.ts";

const SERVER = "10.213.1.1:8080";

/** A connection from `client` with events `[t, dir, kind]`. */
function conn(
  client: string,
  events: readonly (readonly [number, "in" | "out", PacketKind])[],
): ConnectionTimeline {
  return {
    client,
    server: client.startsWith("[") ? "[fd00::1]:8080" : SERVER,
    events: events.map(([t, dir, kind], i): PacketEvent => ({
      t,
      dir,
      kind,
      seq: 1000 + i,
      ack: 0,
      len: kind === "DATA" ? 10 : 0,
      retransmit: false,
    })),
  };
}

/** A connection whose server sent SYN-ACKs at `times`, around the usual handshake. */
function synAcks(client: string, times: readonly number[]): ConnectionTimeline {
  return conn(client, [
    [0, "in", "SYN"],
    ...times.map((t) => [t, "out", "SYN-ACK"] as const),
    [(times.at(-1) ?? 0) + 1, "in", "ACK"],
  ]);
}

/** Expects SYN-ACKs from the server on host "server". */
function expectation(extra: Partial<PlannedPacketExpectation> = {}): PlannedPacketExpectation {
  return {
    name: "synack-retries",
    host: "server",
    kind: "SYN-ACK",
    from: "server",
    toleranceMs: 0,
    ...extra,
  };
}

const count = (min: number, max: number) => ({ count: { min, max } });

// --- connectionsOf ----------------------------------------------------------

const MIXED = [
  synAcks("10.213.2.2:40000", [1]),
  synAcks("10.213.2.20:40001", [1]),
  synAcks("10.213.2.2:40002", [1]),
  synAcks("[fd00::2]:40003", [1]),
  synAcks("[fd00::20]:40004", [1]),
];

Deno.test("connectionsOf() returns every connection, as a copy, without an address", () => {
  const all = connectionsOf(MIXED, undefined);
  deepEqual(all, MIXED);
  all.pop();
  equal(MIXED.length, 5);
});

Deno.test("connectionsOf() matches the whole client address, IPv4 and IPv6 [addr]:port", () => {
  const cases: [string, string[]][] = [
    ["10.213.2.2", ["10.213.2.2:40000", "10.213.2.2:40002"]],
    ["10.213.2.20", ["10.213.2.20:40001"]],
    ["fd00::2", ["[fd00::2]:40003"]],
    ["fd00::20", ["[fd00::20]:40004"]],
    ["10.213.2.9", []],
    ["[fd00::2]", []],
  ];
  for (const [address, clients] of cases) {
    deepEqual(connectionsOf(MIXED, address).map((c) => c.client), clients, address);
  }
});

// --- checkPackets: counts ---------------------------------------------------

Deno.test("checkPackets() judges the count of every connection", () => {
  const cases: {
    name: string;
    bounds: { min: number; max: number };
    perConnection: number[];
    passed: boolean;
    observed: number | null;
  }[] = [
    {
      name: "exact, all match",
      bounds: { min: 3, max: 3 },
      perConnection: [3, 3],
      passed: true,
      observed: 3,
    },
    {
      name: "exact, second short",
      bounds: { min: 3, max: 3 },
      perConnection: [3, 2],
      passed: false,
      observed: 2,
    },
    {
      name: "exact, first long",
      bounds: { min: 3, max: 3 },
      perConnection: [4, 3],
      passed: false,
      observed: 4,
    },
    {
      name: "range, at both ends",
      bounds: { min: 2, max: 4 },
      perConnection: [2, 4],
      passed: true,
      observed: 2,
    },
    {
      name: "range, above",
      bounds: { min: 2, max: 4 },
      perConnection: [5],
      passed: false,
      observed: 5,
    },
    {
      name: "at least, many",
      bounds: { min: 1, max: Infinity },
      perConnection: [9, 1],
      passed: true,
      observed: 9,
    },
    {
      name: "at least, one has none",
      bounds: { min: 1, max: Infinity },
      perConnection: [2, 0],
      passed: false,
      observed: 0,
    },
    {
      name: "at most 0, none",
      bounds: { min: -Infinity, max: 0 },
      perConnection: [0],
      passed: true,
      observed: 0,
    },
    {
      name: "first failure decides observed",
      bounds: { min: 3, max: 3 },
      perConnection: [3, 1, 7],
      passed: false,
      observed: 1,
    },
  ];
  for (const c of cases) {
    const timelines = c.perConnection.map((n, i) =>
      synAcks(`10.213.2.2:${40000 + i}`, Array.from({ length: n }, (_, k) => 1 + k * 1000))
    );
    const r = checkPackets(expectation({ count: c.bounds }), timelines, undefined);
    equal(r.passed, c.passed, c.name);
    equal(r.observed, c.observed, c.name);
  }
});

Deno.test("checkPackets() counts only the expected kind from the expected end", () => {
  const timelines = [conn("10.213.2.2:40000", [
    [0, "in", "SYN"],
    [1, "out", "SYN-ACK"],
    [2, "in", "ACK"],
    [3, "in", "DATA"],
    [4, "out", "ACK"],
    [1001, "out", "SYN-ACK"],
    [1002, "in", "ACK"],
    [1003, "out", "RST"],
  ])];
  const cases: [Partial<PlannedPacketExpectation>, number][] = [
    [{ kind: "SYN-ACK", from: "server" }, 2],
    [{ kind: "SYN-ACK", from: "client" }, 0],
    [{ kind: "ACK", from: "client" }, 2],
    [{ kind: "ACK", from: "server" }, 1],
    [{ kind: "SYN", from: "client" }, 1],
    [{ kind: "DATA", from: "client" }, 1],
    [{ kind: "RST", from: "server" }, 1],
    [{ kind: "FIN", from: "server" }, 0],
  ];
  for (const [e, n] of cases) {
    const r = checkPackets(expectation({ ...e, ...count(n, n) }), timelines, undefined);
    equal(r.passed, true, `${e.kind} from ${e.from}: ${r.detail}`);
    equal(r.observed, n);
  }
});

// --- checkPackets: intervals ------------------------------------------------

Deno.test("checkPackets() passes gaps within the tolerance, its bound included", () => {
  const e = expectation({ intervalsMs: [1000, 2000], toleranceMs: 50 });
  const cases: [string, number[]][] = [
    ["exact", [1, 1001, 3001]],
    ["late and early", [0, 1030, 3010]],
    ["at the tolerance", [0, 1050, 3000]],
    ["at the tolerance, early", [0, 950, 2900]],
    ["extra packets after the listed gaps are not judged", [0, 1000, 3000, 3001]],
  ];
  for (const [name, times] of cases) {
    const r = checkPackets(e, [synAcks("10.213.2.2:40000", times)], undefined);
    equal(r.passed, true, `${name}: ${r.detail}`);
    equal(r.observed, times.length, name);
  }
});

Deno.test("checkPackets() fails a gap outside the tolerance, observing that gap", () => {
  const e = expectation({ intervalsMs: [1000, 2000], toleranceMs: 50 });
  const cases: [string, number[], number][] = [
    ["first gap late by 51", [0, 1051, 3051], 1051],
    ["second gap early", [0, 1000, 2900], 1900],
    ["a fractional gap, rounded", [0, 1000.2, 3200.6], 2200],
    ["the first bad gap decides", [0, 1200, 3600], 1200],
  ];
  for (const [name, times, observed] of cases) {
    const r = checkPackets(e, [synAcks("10.213.2.2:40000", times)], undefined);
    equal(r.passed, false, name);
    equal(r.observed, observed, name);
  }
});

Deno.test("checkPackets() fails a missing gap with observed null", () => {
  const e = expectation({ intervalsMs: [1000, 2000], toleranceMs: 50 });
  for (const times of [[0, 1000], [0], []]) {
    const r = checkPackets(e, [synAcks("10.213.2.2:40000", times)], undefined);
    equal(r.passed, false, `${times.length} packets`);
    equal(r.observed, null);
  }
});

Deno.test("checkPackets() judges the gaps of every connection, not only the first", () => {
  const e = expectation({ intervalsMs: [1000], toleranceMs: 20 });
  const r = checkPackets(e, [
    synAcks("10.213.2.2:40000", [0, 1000]),
    synAcks("10.213.2.2:40001", [0, 1500]),
  ], undefined);
  equal(r.passed, false);
  equal(r.observed, 1500);
});

Deno.test("checkPackets() needs both the count and the gaps when both are given", () => {
  const e = expectation({ ...count(3, 3), intervalsMs: [1000], toleranceMs: 20 });
  const ok = checkPackets(e, [synAcks("10.213.2.2:40000", [0, 1000, 3000])], undefined);
  equal(ok.passed, true);
  const fewer = checkPackets(e, [synAcks("10.213.2.2:40000", [0, 1000])], undefined);
  equal(fewer.passed, false);
  equal(fewer.observed, 2);
  const badGap = checkPackets(e, [synAcks("10.213.2.2:40000", [0, 1300, 3000])], undefined);
  equal(badGap.passed, false);
  equal(badGap.observed, 1300);
});

// --- checkPackets: groups and empty captures --------------------------------

Deno.test("checkPackets() with a group address judges only that group's connections", () => {
  const e = expectation({ group: "held", ...count(3, 3) });
  const timelines = [
    synAcks("10.213.2.2:40000", [1, 1001, 3001]),
    synAcks("10.213.2.3:40000", [1]),
  ];
  const held = checkPackets(e, timelines, "10.213.2.2");
  equal(held.passed, true, held.detail);
  equal(held.detail, "10.213.2.2:40000: 3 (gaps 1000, 2000 ms)");
  const other = checkPackets(e, timelines, "10.213.2.3");
  equal(other.passed, false);
  equal(other.observed, 1);
  equal(checkPackets(e, timelines, undefined).passed, false, "all connections");
});

Deno.test("checkPackets() filters IPv6 connections by their bracketed client address", () => {
  const e = expectation({ group: "held", ...count(2, 2) });
  const timelines = [
    synAcks("[fd00::2]:40000", [1, 1001]),
    synAcks("[fd00::3]:40000", [1]),
  ];
  const r = checkPackets(e, timelines, "fd00::2");
  equal(r.passed, true, r.detail);
  equal(r.detail, "[fd00::2]:40000: 2 (gaps 1000 ms)");
});

Deno.test("checkPackets() with no connection fails with observed null and says so", () => {
  const e = expectation(count(1, Infinity));
  const cases: [string, ConnectionTimeline[], string | undefined][] = [
    ["an empty capture", [], undefined],
    ["no connection of the group", [synAcks("10.213.2.2:40000", [1])], "10.213.2.9"],
  ];
  for (const [name, timelines, address] of cases) {
    const r = checkPackets(e, timelines, address);
    equal(r.passed, false, name);
    equal(r.observed, null, name);
    equal(r.detail, "no connection in the capture", name);
    equal(r.atMs, null);
  }
});

// --- checkPackets: what the result says -------------------------------------

Deno.test("checkPackets() names the metric by host, sender, kind and group", () => {
  const timelines = [synAcks("10.213.2.2:40000", [1])];
  const cases: [Partial<PlannedPacketExpectation>, string][] = [
    [{}, "packets.server.server.SYN-ACK"],
    [{ group: "held" }, "packets.server.server.SYN-ACK@held"],
    [{ host: "client", kind: "SYN", from: "client" }, "packets.client.client.SYN"],
  ];
  for (const [extra, metric] of cases) {
    const r = checkPackets(expectation({ ...count(1, 1), ...extra }), timelines, undefined);
    equal(r.metric, metric);
    equal(r.over, "packets");
    equal(r.name, "synack-retries");
  }
});

Deno.test("checkPackets() states the expectation in words", () => {
  const cases: [Partial<PlannedPacketExpectation>, string][] = [
    [count(3, 3), "= 3 per connection"],
    [count(2, Infinity), ">= 2 per connection"],
    [count(-Infinity, 1), "<= 1 per connection"],
    [count(1, 4), "in [1, 4] per connection"],
    [{ intervalsMs: [1000, 2000], toleranceMs: 50 }, "gaps 1000, 2000 ms ± 50 ms"],
    [
      { ...count(3, 3), intervalsMs: [200], toleranceMs: 20 },
      "= 3 per connection, gaps 200 ms ± 20 ms",
    ],
  ];
  for (const [extra, expected] of cases) {
    const r = checkPackets(expectation(extra), [], undefined);
    equal(r.expected, expected);
  }
});

Deno.test("checkPackets() details the first four connections' counts and rounded gaps", () => {
  const timelines = [
    synAcks("10.213.2.2:40000", [0.4, 1000.6, 3000.2]),
    synAcks("10.213.2.2:40001", [5]),
    synAcks("10.213.2.2:40002", []),
    synAcks("10.213.2.2:40003", [1, 2]),
    synAcks("10.213.2.2:40004", [1, 2]),
  ];
  const r = checkPackets(expectation(count(0, 10)), timelines, undefined);
  equal(r.passed, true);
  equal(r.observed, 3, "the first connection's count");
  equal(
    r.detail,
    "10.213.2.2:40000: 3 (gaps 1000, 2000 ms); 10.213.2.2:40001: 1 (gaps none ms); " +
      "10.213.2.2:40002: 0 (gaps none ms); 10.213.2.2:40003: 2 (gaps 1 ms); … 5 connections",
  );
});

Deno.test("checkPackets() returns the full CheckResult shape", () => {
  const r = checkPackets(
    expectation(count(2, 2)),
    [synAcks("10.213.2.2:40000", [1, 1001])],
    undefined,
  );
  deepEqual(r, {
    name: "synack-retries",
    metric: "packets.server.server.SYN-ACK",
    over: "packets",
    expected: "= 2 per connection",
    atMs: null,
    observed: 2,
    passed: true,
    detail: "10.213.2.2:40000: 2 (gaps 1000 ms)",
  });
});
