/**
 * The checks definitions share: a field's shape, a name that must exist, a
 * value in range. Each failure is an {@linkcode ExperimentDefinitionError}
 * naming the field and what would be valid.
 * @module
 */
import { ExperimentDefinitionError } from "../base/errors.ts";
import { didYouMean } from "../base/suggest.ts";
import { describeValue as describe, isObject } from "../base/values.ts";
import { type Metric, type MetricContext, MetricError, parseMetric } from "./metric.ts";
import type { FollowUpSpec } from "./run_plan.ts";
import type { AcceptPolicy } from "./types.ts";

export { describe, isObject };

/** Names of hosts, groups, rules and steps: lowercase identifiers. */
export const NAME_RE = /^[a-z][a-z0-9_]*$/;
/** The longest observation window, and every delay's bound. */
export const MAX_WINDOW_MS = 600_000;
/** The most connections a client group opens. */
export const MAX_COUNT = 100_000;
/** The highest arrival rate of a sustained group, connections a second. */
export const MAX_ARRIVAL_RATE = 100_000;
/** The largest reply a serving server writes. */
export const MAX_REPLY_BYTES = 1 << 24;
/** The fields of a bound: `equals`, or `atLeast` and/or `atMost`. */
export const BOUND_FIELDS = ["equals", "atLeast", "atMost"] as const;
/** A `net.*` sysctl name. */
export const SYSCTL_RE = /^net\.[a-z0-9_]+(\.[a-z0-9_]+)+$/;

/** Throws the definition error of `field`. */
export function fail(field: string, detail: string): never {
  throw new ExperimentDefinitionError(field, detail);
}

export function requireObject(
  v: unknown,
  field: string,
  allowed: readonly string[],
): Record<string, unknown> {
  if (!isObject(v)) fail(field, `expected an object, got ${describe(v)}`);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) {
      fail(
        `${field ? field + "." : ""}${key}`,
        `unknown field${didYouMean(key, allowed)} (valid fields: ${allowed.join(", ")})`,
      );
    }
  }
  return v;
}

export function requireString(v: unknown, field: string): string {
  if (typeof v !== "string" || !v.trim()) {
    fail(field, `expected a non-empty string, got ${describe(v)}`);
  }
  return v;
}

export function requireInt(v: unknown, field: string, min: number, max: number, hint = ""): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    fail(field, `expected an integer from ${min} to ${max}, got ${describe(v)}${hint}`);
  }
  if (v < min || v > max) {
    fail(field, `value ${v} is out of range: expected an integer from ${min} to ${max}${hint}`);
  }
  return v;
}

/** The metric `name` parsed and checked against the experiment's names. */
export function requireMetric(name: string, field: string, ctx: MetricContext): Metric {
  try {
    return parseMetric(name, ctx);
  } catch (err) {
    if (err instanceof MetricError) fail(field, err.message);
    throw err;
  }
}

export function requireGroup(v: unknown, field: string, groups: readonly string[]): string {
  const name = requireString(v, field);
  if (!groups.includes(name)) {
    fail(
      field,
      `unknown client group "${name}"${didYouMean(name, groups)} (groups: ${groups.join(", ")})`,
    );
  }
  return name;
}

export function requireHost(v: unknown, field: string, hosts: readonly string[]): string {
  const name = requireString(v, field);
  if (!hosts.includes(name)) {
    fail(field, `unknown host "${name}"${didYouMean(name, hosts)} (hosts: ${hosts.join(", ")})`);
  }
  return name;
}

export function intervalList(v: unknown, field: string): number[] {
  if (!Array.isArray(v) || v.length === 0) {
    fail(field, `expected a non-empty array of milliseconds, got ${describe(v)}`);
  }
  return v.map((n, i) => requireInt(n, `${field}[${i}]`, 0, MAX_WINDOW_MS));
}

export function acceptPolicy(v: unknown, field: string): AcceptPolicy {
  if (v === "never" || v === "all") return v;
  if (isObject(v) && "batch" in v) {
    const o = requireObject(v, field, ["batch", "everyMs"]);
    return {
      batch: requireInt(o.batch, `${field}.batch`, 1, MAX_COUNT),
      everyMs: requireInt(o.everyMs, `${field}.everyMs`, 1, 60_000),
    };
  }
  if (isObject(v) && "perSecond" in v) {
    const o = requireObject(v, field, ["perSecond"]);
    return { perSecond: requireInt(o.perSecond, `${field}.perSecond`, 1, 100_000) };
  }
  fail(
    field,
    `expected "never", "all", { batch, everyMs } or { perSecond }, got ${describe(v)}${
      typeof v === "string" ? didYouMean(v, ["never", "all"]) : ""
    }`,
  );
}

export function requireBounds(x: Record<string, unknown>, f: string): void {
  if (x.equals === undefined && x.atLeast === undefined && x.atMost === undefined) {
    fail(f, "give equals, atLeast or atMost");
  }
  if (x.equals !== undefined && (x.atLeast !== undefined || x.atMost !== undefined)) {
    fail(f, "give either equals or atLeast/atMost, not both");
  }
  for (const k of BOUND_FIELDS) {
    const v = x[k];
    if (
      v !== undefined && typeof v !== "function" && (typeof v !== "number" || !Number.isFinite(v))
    ) {
      fail(`${f}.${k}`, `expected a number or a function of the parameters, got ${describe(v)}`);
    }
  }
}

export function requireBacklog(v: unknown, field: string): number {
  return requireInt(
    v,
    field,
    0,
    65535,
    " (listen() clamps larger values to net.core.somaxconn; a negative one means somaxconn)",
  );
}

export function followUp(v: unknown, field: string): FollowUpSpec {
  if (v === "nothing") return { kind: "nothing" };
  const o = requireObject(v, field, ["send", "read", "close"]);
  if (o.close !== undefined && typeof o.close !== "boolean") {
    fail(`${field}.close`, `expected true or false, got ${describe(o.close)}`);
  }
  if (o.close === true && o.send === undefined && o.read === undefined) {
    fail(field, `"close" ends a follow-up: give send, read or both with it`);
  }
  const bytes = o.send === undefined ? undefined : requireInt(o.send, `${field}.send`, 1, 1 << 24);
  const read = o.read === undefined
    ? undefined
    : requireObject(o.read, `${field}.read`, ["timeoutMs"]);
  // A function of the matrix point is checked when planning resolves it.
  const timeoutMs = read === undefined
    ? undefined
    : typeof read.timeoutMs === "function"
    ? 1
    : requireInt(read.timeoutMs, `${field}.read.timeoutMs`, 1, MAX_WINDOW_MS);
  const close = o.close === true ? { close: true as const } : {};
  if (bytes !== undefined && timeoutMs !== undefined) {
    return { kind: "sendRead", bytes, timeoutMs, ...close };
  }
  if (bytes !== undefined) return { kind: "send", bytes, ...close };
  if (timeoutMs !== undefined) return { kind: "read", timeoutMs, ...close };
  fail(
    field,
    `expected "nothing", { send: bytes }, { read: { timeoutMs } } or both (with close: true to close after)`,
  );
}
