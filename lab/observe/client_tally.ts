/**
 * Turns the client programs' event streams (what the kernel answered each
 * connect(), send() and recv()) into connection records and the
 * `clients.<group>.*` metrics.
 * @module
 */
import type { ConnectionRecord } from "../results.ts";

/** An event as the client program prints it. */
export interface ClientEvent {
  event: string;
  i?: number;
  n?: number;
  t?: number;
  ms?: number;
  result?: string;
  phase?: string;
  [key: string]: unknown;
}

/** Connection records of one group from its events so far. */
export function connectionRecords(
  group: string,
  count: number,
  events: readonly ClientEvent[],
): ConnectionRecord[] {
  const records: ConnectionRecord[] = [];
  const get = (i: number) =>
    records[i] ??= {
      group,
      index: i,
      connect: "pending",
      connectAtMs: null,
      connectMs: null,
      after: null,
      afterAtMs: null,
    };
  for (const e of events) {
    if (typeof e.i !== "number") continue;
    const r = get(e.i);
    if (e.event === "connect") {
      r.connect = String(e.result);
      r.connectAtMs = e.t ?? null;
      r.connectMs = e.ms === undefined ? null : Math.round(e.ms * 1000) / 1000;
    } else if (e.event === "after") {
      r.after = String(e.result);
      r.afterAtMs = e.t ?? null;
    } else if (e.event === "deadline") {
      if (e.phase === "connect") {
        r.connect = "deadline";
        r.connectAtMs = e.t ?? null;
      } else {
        r.after = "deadline";
        r.afterAtMs = e.t ?? null;
      }
    } else if (e.event === "open") {
      r.connect = "pending";
    }
  }
  const launched = launchedCount(count, events);
  for (let i = 0; i < launched; i++) get(i);
  return records.filter(Boolean);
}

function launchedCount(count: number, events: readonly ClientEvent[]): number {
  let opened = 0;
  for (const e of events) {
    if (e.event === "launched") return Math.min(count, e.n ?? count);
    if (e.event === "open" || e.event === "connect") opened = Math.max(opened, (e.i ?? -1) + 1);
  }
  return opened;
}

/**
 * The `clients.<group>.*` metrics of one group. Every metric of this group
 * named in `wanted` is present: an outcome no connection has had is 0.
 */
export function groupMetrics(
  group: string,
  count: number,
  events: readonly ClientEvent[],
  wanted: readonly string[] = [],
): Record<string, number> {
  const records = connectionRecords(group, count, events);
  const m: Record<string, number> = {};
  const inc = (k: string) => m[`clients.${group}.${k}`] = (m[`clients.${group}.${k}`] ?? 0) + 1;
  m[`clients.${group}.launched`] = launchedCount(count, events);
  for (const k of ["connected", "pending", "deadline"]) m[`clients.${group}.${k}`] = 0;
  for (const r of records) {
    if (r.connect === "ok") inc("connected");
    else if (r.connect === "pending") inc("pending");
    else if (r.connect === "deadline") inc("deadline");
    else inc(`connect.${r.connect}`);
    if (r.after === "deadline") inc("deadline");
    else if (r.after !== null) inc(`after.${r.after}`);
  }
  for (const w of wanted) if (w.startsWith(`clients.${group}.`)) m[w] ??= 0;
  return m;
}
