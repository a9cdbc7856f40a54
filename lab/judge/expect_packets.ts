/**
 * Judging packet captures: per connection, how many packets of a kind were
 * seen and the gaps between them, each gap within a stated tolerance.
 * @module
 */
import type { PlannedPacketExpectation } from "../describe/run_plan.ts";
import { describeBounds } from "../describe/bounds.ts";
import type { ConnectionTimeline } from "../observe/packet_timeline.ts";
import type { CheckResult } from "../results.ts";

/** The connections whose client end has `address` (all when it is undefined). */
export function connectionsOf(
  timelines: readonly ConnectionTimeline[],
  address: string | undefined,
): ConnectionTimeline[] {
  if (address === undefined) return [...timelines];
  return timelines.filter((c) => clientAddress(c.client) === address);
}

function clientAddress(endpoint: string): string {
  const m = /^\[(.*)\]:\d+$/.exec(endpoint);
  return m ? m[1]! : endpoint.replace(/:\d+$/, "");
}

function fmt(ms: number): string {
  return String(Math.round(ms));
}

/** Checks one packet expectation against a host's connection timelines. */
export function checkPackets(
  e: PlannedPacketExpectation,
  timelines: readonly ConnectionTimeline[],
  groupAddress: string | undefined,
): CheckResult {
  const dir = e.from === "client" ? "in" : "out";
  const conns = connectionsOf(timelines, groupAddress);
  const times = conns.map((c) =>
    c.events.filter((x) => x.kind === e.kind && x.dir === dir).map((x) => x.t)
  );
  const metric = `packets.${e.host}.${e.from}.${e.kind}${e.group ? `@${e.group}` : ""}`;
  const parts: string[] = [];
  if (e.count) parts.push(`${describeBounds(e.count.min, e.count.max)} per connection`);
  if (e.intervalsMs) {
    parts.push(`gaps ${e.intervalsMs.join(", ")} ms ± ${e.toleranceMs} ms`);
  }
  const expected = parts.join(", ");
  const base = {
    name: e.name,
    metric,
    over: "packets" as const,
    expected,
    atMs: null,
    ...(e.timingLimited ? { timingLimited: true as const } : {}),
  };
  if (conns.length === 0) {
    return { ...base, observed: null, passed: false, detail: "no connection in the capture" };
  }
  let passed = true;
  let observed: number | null = null;
  const details: string[] = [];
  times.forEach((ts, i) => {
    const gaps = ts.slice(1).map((x, k) => x - ts[k]!);
    const label = conns[i]!.client;
    if (e.count && (ts.length < e.count.min || ts.length > e.count.max)) {
      if (passed) observed = ts.length;
      passed = false;
    }
    if (e.intervalsMs) {
      const want = e.intervalsMs;
      const bad = want.findIndex((w, k) =>
        gaps[k] === undefined || Math.abs(gaps[k]! - w) > e.toleranceMs
      );
      if (bad >= 0) {
        if (passed) observed = gaps[bad] === undefined ? null : Math.round(gaps[bad]!);
        passed = false;
      }
    }
    if (i < 4) {
      details.push(`${label}: ${ts.length} (gaps ${gaps.map(fmt).join(", ") || "none"} ms)`);
    }
  });
  if (passed) observed = times[0]!.length;
  if (conns.length > 4) details.push(`… ${conns.length} connections`);
  return { ...base, observed, passed, detail: details.join("; ") };
}
