/**
 * Unit tests of `lab/observe/client_experience.ts`: outcomes, distributions
 * and outcome events over time from connection records.
 * @module
 */
import { deepStrictEqual as deepEqual, strictEqual as equal } from "node:assert/strict";
import {
  binWidthFor,
  distribution,
  experienceOf,
  outcomeOf,
  runExperience,
} from "../../lab/observe/client_experience.ts";
import type { ConnectionRecord } from "../../lab/results.ts";

function record(
  index: number,
  connect: string,
  o: Partial<ConnectionRecord> = {},
): ConnectionRecord {
  return {
    group: "g",
    index,
    connect,
    connectAtMs: connect === "pending" ? null : 10 * index,
    connectMs: connect === "ok" ? 50 : null,
    after: null,
    afterAtMs: null,
    firstByteMs: null,
    ...o,
  };
}

Deno.test("distribution() gives nearest-rank percentiles", () => {
  equal(distribution([]), null);
  deepEqual(distribution([7]), { count: 1, p50: 7, p90: 7, p99: 7, max: 7 });
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 1 … 100, reversed
  deepEqual(distribution(hundred), { count: 100, p50: 50, p90: 90, p99: 99, max: 100 });
  deepEqual(distribution([1.23456, 2]), { count: 2, p50: 1.235, p90: 2, p99: 2, max: 2 });
});

Deno.test("outcomeOf() classifies each way a connection can end", () => {
  const cases: [Partial<ConnectionRecord> & { connect: string }, string][] = [
    [{ connect: "ok" }, "connected"],
    [{ connect: "ok", after: "data" }, "connected"],
    [{ connect: "ok", after: "eof" }, "connected"],
    [{ connect: "ok", after: "sent" }, "connected"],
    [{ connect: "ok", after: "ECONNRESET" }, "reset"],
    [{ connect: "ECONNRESET" }, "reset"],
    [{ connect: "ECONNREFUSED" }, "refused"],
    [{ connect: "ETIMEDOUT" }, "timedOut"],
    [{ connect: "deadline" }, "timedOut"],
    [{ connect: "ok", after: "deadline" }, "timedOut"],
    [{ connect: "ok", after: "timeout" }, "timedOut"],
    [{ connect: "EHOSTUNREACH" }, "failed"],
    [{ connect: "ok", after: "EPIPE" }, "failed"],
    [{ connect: "pending" }, "pending"],
  ];
  for (const [r, outcome] of cases) equal(outcomeOf(record(0, r.connect, r)), outcome);
});

Deno.test("experienceOf() counts outcomes, distributions and outcome events per bin", () => {
  const records = [
    record(0, "ok", {
      connectAtMs: 5,
      connectMs: 40,
      after: "data",
      afterAtMs: 60,
      firstByteMs: 95,
    }),
    record(1, "ok", { connectAtMs: 15, connectMs: 1040, after: "ECONNRESET", afterAtMs: 25 }),
    record(2, "ECONNREFUSED", { connectAtMs: 12 }),
    record(3, "ok", { connectAtMs: 30, connectMs: 60, after: "timeout", afterAtMs: 1030 }),
    record(4, "deadline", { connectAtMs: 3500 }),
    record(5, "pending"),
  ];
  const x = experienceOf(records, { binMs: 20, spanMs: 3500 });
  equal(x.connections, 6);
  deepEqual(x.outcomes, {
    connected: 1,
    reset: 1,
    refused: 1,
    timedOut: 2,
    failed: 0,
    pending: 1,
  });
  deepEqual(x.connectMs, { count: 3, p50: 60, p90: 1040, p99: 1040, max: 1040 });
  deepEqual(x.firstByteMs, { count: 1, p50: 95, p90: 95, p99: 95, max: 95 });
  equal(x.overTime.binMs, 20);
  // Only the bins with an event, of the 176 from 0 through 3500 ms.
  deepEqual(x.overTime.bins, [
    // connects at 5 and 15 ms, the refusal at 12 ms
    { t: 0, connected: 2, reset: 0, refused: 1, timedOut: 0, failed: 0 },
    // the reset at 25 ms and a connect at 30 ms
    { t: 20, connected: 1, reset: 1, refused: 0, timedOut: 0, failed: 0 },
    { t: 1020, connected: 0, reset: 0, refused: 0, timedOut: 1, failed: 0 },
    { t: 3500, connected: 0, reset: 0, refused: 0, timedOut: 1, failed: 0 },
  ]);
});

Deno.test("binWidthFor() keeps a run within 120 bins", () => {
  equal(binWidthFor(500), 10);
  equal(binWidthFor(1200), 10);
  equal(binWidthFor(1201), 20);
  equal(binWidthFor(5000), 50);
  equal(binWidthFor(40_000), 500);
  equal(binWidthFor(10 * 3600_000), 60_000);
});

Deno.test("runExperience() gives every group one bin width, covering the last event", () => {
  const a = record(0, "ok", { connectAtMs: 2000 });
  const b = { ...record(0, "ECONNREFUSED", { connectAtMs: 100 }), group: "h" };
  const x = runExperience(["g", "h", "none"], [a, b], 500);
  equal(x.g!.overTime.binMs, 20, "span 2000 ms");
  equal(x.h!.overTime.binMs, 20);

  equal(x.none!.connections, 0);
  equal(x.none!.connectMs, null);
});
