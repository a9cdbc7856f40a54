/**
 * What a client group's connections felt, from their records: each
 * connection's final outcome (connected, reset, refused, timed out, failed,
 * still pending), the distributions of connect() and first-reply-byte times,
 * and outcome events over time.
 * @module
 */
import type {
  ClientOutcome,
  ConnectionRecord,
  Distribution,
  GroupExperience,
  OutcomeBin,
} from "../results.ts";

/** Bin widths the outcomes over time use, ms: the smallest that keeps a run within MAX_BINS. */
const BIN_WIDTHS = [10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000];
/** The most bins a run's outcomes over time have (a chart's bars stay readable). */
const MAX_BINS = 120;

/**
 * The nearest-rank percentiles of `values` (any order), or null for none.
 *
 * @example
 * ```ts
 * import { distribution } from "./client_experience.ts";
 * distribution([30, 10, 20]); // { count: 3, p50: 20, p90: 30, p99: 30, max: 30 }
 * ```
 */
export function distribution(values: readonly number[]): Distribution | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    count: sorted.length,
    p50: round(rank(50)),
    p90: round(rank(90)),
    p99: round(rank(99)),
    max: round(sorted.at(-1)!),
  };
}

/** A connection's final outcome (see {@linkcode ClientOutcome}). */
export function outcomeOf(r: ConnectionRecord): ClientOutcome {
  const failure = r.connect === "ok" ? r.after : r.connect;
  if (r.connect === "pending") return "pending";
  if (failure === null || ["data", "eof", "sent"].includes(failure)) return "connected";
  if (failure === "ECONNRESET") return "reset";
  if (failure === "ECONNREFUSED") return "refused";
  if (failure === "ETIMEDOUT" || failure === "deadline" || failure === "timeout") {
    return "timedOut";
  }
  return "failed";
}

/** The kind of an outcome event, or undefined for one that is none (data, eof, sent). */
function eventKind(result: string): Exclude<keyof OutcomeBin, "t"> | undefined {
  if (result === "ok") return "connected";
  if (result === "ECONNRESET") return "reset";
  if (result === "ECONNREFUSED") return "refused";
  if (result === "ETIMEDOUT" || result === "deadline" || result === "timeout") return "timedOut";
  if (result === "pending" || ["data", "eof", "sent"].includes(result)) return undefined;
  return "failed";
}

/** The bin width for outcome events spanning `spanMs`: at most {@linkcode MAX_BINS} bins. */
export function binWidthFor(spanMs: number): number {
  return BIN_WIDTHS.find((w) => spanMs / w <= MAX_BINS) ?? BIN_WIDTHS.at(-1)!;
}

/** The latest outcome event of the records, ms since the release (0 for none). */
export function lastEventMs(records: readonly ConnectionRecord[]): number {
  let last = 0;
  for (const r of records) last = Math.max(last, r.connectAtMs ?? 0, r.afterAtMs ?? 0);
  return last;
}

/**
 * What one group's connections felt.
 *
 * @param records the group's connection records.
 * @param options `binMs`: the width of the outcome bins (the same for every group of a run), and
 *   `spanMs`: the bins cover [0, spanMs].
 */
export function experienceOf(
  records: readonly ConnectionRecord[],
  options: { binMs: number; spanMs: number },
): GroupExperience {
  const { binMs, spanMs } = options;
  const outcomes: Record<ClientOutcome, number> = {
    connected: 0,
    reset: 0,
    refused: 0,
    timedOut: 0,
    failed: 0,
    pending: 0,
  };
  const bins: OutcomeBin[] = Array.from(
    { length: Math.floor(spanMs / binMs) + 1 },
    (_, k) => ({ t: k * binMs, connected: 0, reset: 0, refused: 0, timedOut: 0, failed: 0 }),
  );
  const count = (result: string | null, atMs: number | null) => {
    if (result === null || atMs === null) return;
    const kind = eventKind(result);
    const bin = bins[Math.min(bins.length - 1, Math.max(0, Math.floor(atMs / binMs)))];
    if (kind && bin) bin[kind]++;
  };
  const connectMs: number[] = [];
  const firstByteMs: number[] = [];
  for (const r of records) {
    outcomes[outcomeOf(r)]++;
    count(r.connect, r.connectAtMs);
    count(r.after, r.afterAtMs);
    if (r.connect === "ok" && r.connectMs !== null) connectMs.push(r.connectMs);
    if (r.firstByteMs !== undefined && r.firstByteMs !== null) firstByteMs.push(r.firstByteMs);
  }
  // Only the bins with an event: a run of a few clients over seconds has mostly empty ones.
  const busy = bins.filter((b) => b.connected + b.reset + b.refused + b.timedOut + b.failed > 0);
  return {
    connections: records.length,
    outcomes,
    connectMs: distribution(connectMs),
    firstByteMs: distribution(firstByteMs),
    overTime: { binMs, bins: busy },
  };
}

/**
 * Every group's experience in a run, with one bin width for all, chosen from
 * the run's length (`spanMs`, e.g. its last sample) and its latest event.
 */
export function runExperience(
  groups: readonly string[],
  records: readonly ConnectionRecord[],
  spanMs: number,
): Record<string, GroupExperience> {
  const span = Math.max(spanMs, lastEventMs(records));
  const binMs = binWidthFor(span);
  return Object.fromEntries(
    groups.map((
      g,
    ) => [g, experienceOf(records.filter((r) => r.group === g), { binMs, spanMs: span })]),
  );
}
