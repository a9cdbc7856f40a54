/**
 * Unit tests of the client tally: connection records and `clients.<group>.*`
 * metrics from synthetic client-program event streams.
 * @module
 */
import { deepStrictEqual as deepEqual, strictEqual as equal } from "node:assert/strict";
import { connectionRecords, groupMetrics, GroupTally } from "../../lab/observe/client_tally.ts";
import type { TallyEvent as ClientEvent } from "../../lab/observe/client_tally.ts";
import { parseMetric } from "../../lab/describe/metric.ts";
import { CheckTracker } from "../../lab/judge/expect.ts";

const ok = (i: number, t = 1, ms = 0.5): ClientEvent => ({
  event: "connect",
  i,
  result: "ok",
  t,
  ms,
});
const refused = (i: number, t = 1): ClientEvent => ({
  event: "connect",
  i,
  result: "ECONNREFUSED",
  t,
  ms: 0.2,
});
const after = (i: number, result: string, t = 2): ClientEvent => ({ event: "after", i, result, t });
const deadline = (i: number, phase: "connect" | "after", t = 3): ClientEvent => ({
  event: "deadline",
  i,
  t,
  phase,
});
const launched = (n: number, t = 0.1): ClientEvent => ({ event: "launched", n, t });

/** The metrics with the `clients.g.` prefix removed. */
function metrics(count: number, events: readonly ClientEvent[]): Record<string, number> {
  const m = groupMetrics("g", count, events);
  for (const k of Object.keys(m)) {
    if (!k.startsWith("clients.g.")) throw new Error(`metric ${k} is not of group g`);
  }
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k.slice("clients.g.".length), v]));
}

Deno.test("groupMetrics() before any event: nothing launched, connected or pending", () => {
  deepEqual(metrics(5, []), { launched: 0, connected: 0, pending: 0, deadline: 0, active: 0 });
  deepEqual(connectionRecords("g", 5, []), []);
  deepEqual(metrics(5, [{ event: "ready", pid: 1 }]), {
    launched: 0,
    connected: 0,
    pending: 0,
    deadline: 0,
    active: 0,
  });
});

Deno.test("groupMetrics() counts connect ok as connected and unanswered as pending", () => {
  const events = [launched(5), ok(0), ok(1), ok(2)];
  deepEqual(metrics(5, events), { launched: 5, connected: 3, pending: 2, deadline: 0, active: 2 });
});

Deno.test("groupMetrics() counts an errno answer under connect.<ERRNO>", () => {
  const events = [launched(4), ok(0), refused(1), refused(2), {
    event: "connect",
    i: 3,
    result: "ETIMEDOUT",
    t: 5,
  }];
  deepEqual(metrics(4, events), {
    launched: 4,
    connected: 1,
    pending: 0,
    deadline: 0,
    active: 0,
    "connect.ECONNREFUSED": 2,
    "connect.ETIMEDOUT": 1,
  });
});

Deno.test("groupMetrics() counts a deadline during connect as deadline, not pending", () => {
  const events = [launched(3), ok(0), deadline(1, "connect", 500)];
  deepEqual(metrics(3, events), { launched: 3, connected: 1, pending: 1, deadline: 1, active: 1 });
  const [, r1, r2] = connectionRecords("g", 3, events);
  deepEqual(r1, {
    group: "g",
    index: 1,
    connect: "deadline",
    connectAtMs: 500,
    connectMs: null,
    after: null,
    afterAtMs: null,
    firstByteMs: null,
  });
  equal(r2!.connect, "pending");
});

Deno.test("groupMetrics() counts follow-ups under after.<result> and a late deadline as deadline", () => {
  const events = [
    launched(6),
    ok(0),
    ok(1),
    ok(2),
    ok(3),
    ok(4),
    ok(5),
    after(0, "timeout"),
    after(1, "eof"),
    after(2, "data"),
    after(3, "ECONNRESET"),
    deadline(4, "after"),
  ];
  deepEqual(metrics(6, events), {
    launched: 6,
    connected: 6,
    pending: 0,
    deadline: 1,
    active: 0,
    "after.timeout": 1,
    "after.eof": 1,
    "after.data": 1,
    "after.ECONNRESET": 1,
  });
});

Deno.test("groupMetrics() counts one deadline per connection phase", () => {
  // A connection that got a deadline while connecting is deadline once; one that
  // connected and then hit the deadline is connected and deadline.
  const events = [launched(2), deadline(0, "connect"), ok(1), deadline(1, "after")];
  deepEqual(metrics(2, events), { launched: 2, connected: 1, pending: 0, deadline: 2, active: 0 });
});

Deno.test("groupMetrics() launched: the launched event's n, capped at count", () => {
  equal(metrics(5, [launched(5)]).launched, 5);
  equal(metrics(5, [launched(3)]).launched, 3);
  equal(metrics(5, [launched(9)]).launched, 5);
  equal(metrics(5, [{ event: "launched", t: 1 }]).launched, 5, "n missing: the whole group");
  equal(metrics(5, [launched(3)]).pending, 3);
});

Deno.test("groupMetrics() launched before the launched event: the highest connection seen", () => {
  // Staggered start: connects return while later ones are still to be opened.
  const events = [ok(0), ok(2)];
  deepEqual(metrics(10, events), { launched: 3, connected: 2, pending: 1, deadline: 0, active: 1 });
  deepEqual(connectionRecords("g", 10, events).map((r) => [r.index, r.connect]), [
    [0, "ok"],
    [1, "pending"],
    [2, "ok"],
  ]);
});

Deno.test("connectionRecords() records each connection's results and times", () => {
  const events = [
    launched(4, 0.4),
    { event: "connect", i: 1, result: "ok", t: 1.5, ms: 1.23456789 },
    after(1, "timeout", 501.25),
    refused(0, 0.9),
    { event: "connect", i: 3, result: "ok", t: 2, ms: 1.5 },
    { event: "after", i: 3, result: "data", t: 60, bytes: 100, ms: 59.87654 },
  ];
  deepEqual(connectionRecords("seq", 4, events), [
    {
      group: "seq",
      index: 0,
      connect: "ECONNREFUSED",
      connectAtMs: 0.9,
      connectMs: 0.2,
      after: null,
      afterAtMs: null,
      firstByteMs: null,
    },
    {
      group: "seq",
      index: 1,
      connect: "ok",
      connectAtMs: 1.5,
      connectMs: 1.235,
      after: "timeout",
      afterAtMs: 501.25,
      firstByteMs: null,
    },
    {
      group: "seq",
      index: 2,
      connect: "pending",
      connectAtMs: null,
      connectMs: null,
      after: null,
      afterAtMs: null,
      firstByteMs: null,
    },
    {
      group: "seq",
      index: 3,
      connect: "ok",
      connectAtMs: 2,
      connectMs: 1.5,
      after: "data",
      afterAtMs: 60,
      // From the start of connect() to the first reply byte, from the after event's `ms`.
      firstByteMs: 59.877,
    },
  ]);
});

Deno.test("connectionRecords() keeps a connect time of null when the event has none", () => {
  const [r] = connectionRecords("g", 1, [{ event: "connect", i: 0, result: "ok" }]);
  equal(r!.connectAtMs, null);
  equal(r!.connectMs, null);
  equal(r!.connect, "ok");
});

Deno.test("connectionRecords() ignores events without a connection index", () => {
  const events: ClientEvent[] = [
    { event: "ready", pid: 42 },
    { event: "connect", result: "ok", t: 1 },
    launched(2),
  ];
  deepEqual(connectionRecords("g", 2, events).map((r) => r.connect), ["pending", "pending"]);
});

Deno.test("groupMetrics() and connectionRecords() agree on every connection", () => {
  const events = [
    launched(5),
    ok(0),
    refused(1),
    deadline(2, "connect"),
    ok(3),
    after(3, "data"),
  ];
  const records = connectionRecords("g", 5, events);
  const m = metrics(5, events);
  equal(records.length, m.launched);
  equal(records.filter((r) => r.connect === "ok").length, m.connected);
  equal(records.filter((r) => r.connect === "pending").length, m.pending);
  equal(m.connected! + m.pending! + m["connect.ECONNREFUSED"]! + 1, m.launched);
});

Deno.test({
  name: "groupMetrics() gives 0 for a wanted outcome nobody had, so an expectation of 0 can pass",

  fn: () => {
    const tr = new CheckTracker({
      name: "none refused",
      metric: "clients.g.connect.ECONNREFUSED",
      over: "settled",
      min: 0,
      max: 0,
      stableMs: 0,
    });
    tr.update({
      t: 10,
      values: groupMetrics("g", 2, [launched(2), ok(0), ok(1)], [
        parseMetric("clients.g.connect.ECONNREFUSED"),
      ]),
    }, true);
    equal(tr.result().passed, true);
    equal(tr.result().observed, 0);
  },
});

Deno.test("GroupTally active: launched and not done, a follow-up counting until it ends", () => {
  const events = [launched(4), ok(0), ok(1), refused(2), after(0, "data")];
  const followed = new GroupTally("g", 4, { followsUp: true });
  followed.update(events);
  // 0 done (its read ended), 1 reading, 2 refused, 3 connecting.
  equal(followed.metrics()["clients.g.active"], 2);
  followed.update([...events, after(1, "timeout"), deadline(3, "connect")]);
  equal(followed.metrics()["clients.g.active"], 0);
  // Without a follow-up a connection is done once connect() returned.
  const plain = new GroupTally("g", 4);
  plain.update(events);
  equal(plain.metrics()["clients.g.active"], 1);
});
