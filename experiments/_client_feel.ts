/**
 * What clients felt, in words for evidence: a distribution of times, and
 * which SYN got a connection through (the first, or the k-th resend of the
 * client's SYN schedule). Files starting with `_` are not experiments; the
 * loader skips them.
 */
import type { ConnectionRecord, Distribution } from "../define.ts";
import { synSchedule } from "./_timers.ts";

/** Milliseconds for evidence: `61 ms` below a second, `2.10 s` from one on. */
export function ms(v: number): string {
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(2)} s`;
}

/** A distribution in words: `p50 61 ms, p90 2.10 s, p99 3.13 s, max 3.13 s (n = 803)`. */
export function distributionText(d: Distribution | null): string {
  if (d === null) return "none";
  return `p50 ${ms(d.p50)}, p90 ${ms(d.p90)}, p99 ${ms(d.p99)}, max ${ms(d.max)} (n = ${d.count})`;
}

/**
 * When a client sends its SYN and each resend, ms after the first, from its
 * host's sysctls as the run read them back (tcp_syn_linear_timeouts: 1 s
 * apart that many times, then doubling; absent on kernels before it, which
 * double from the first).
 */
export function synSendsMs(clientSysctls: Record<string, string> | undefined): number[] {
  const linear = Number(clientSysctls?.["net.ipv4.tcp_syn_linear_timeouts"] ?? 0);
  const retries = Number(clientSysctls?.["net.ipv4.tcp_syn_retries"] ?? 6);
  return synSchedule(retries, Number.isFinite(linear) ? linear : 0).sendsMs;
}

/**
 * How many connections connected on each SYN: `[first, after 1 resend, …]`,
 * by their connect() time against the SYN send times (a connection that
 * connected on SYN k took at least sendsMs[k], plus the round trip).
 */
export function connectsBySyn(
  connections: readonly ConnectionRecord[],
  sendsMs: readonly number[],
): number[] {
  const counts = sendsMs.map(() => 0);
  for (const c of connections) {
    if (c.connect !== "ok" || c.connectMs === null) continue;
    let k = 0;
    while (k + 1 < sendsMs.length && c.connectMs >= sendsMs[k + 1]!) k++;
    counts[k]!++;
  }
  while (counts.length > 1 && counts.at(-1) === 0) counts.pop();
  return counts;
}

/** Shares of `counts` in words: `52 % on the first SYN, 30 % on resend 1 (1 s), …`. */
export function bySynText(counts: readonly number[], sendsMs: readonly number[]): string {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return "none connected";
  return counts.map((n, k) =>
    `${pct(n, total)} ${
      k === 0 ? "on the first SYN" : `on resend ${k} (sent at ${ms(sendsMs[k]!)})`
    }`
  ).join(", ");
}

/** `12 %` (or `0.4 %` below 1 %). */
export function pct(n: number, of: number): string {
  if (of === 0) return "0 %";
  const p = (100 * n) / of;
  return `${p > 0 && p < 1 ? p.toFixed(1) : Math.round(p)} %`;
}
