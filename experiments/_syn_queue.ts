/**
 * The SYN (request) queue's bound as the kernel computes it, for the
 * experiments that fill it (`syn_queue_bound.ts`, `syn_storm_syncookies.ts`).
 * Files starting with `_` are not experiments; the loader skips them.
 *
 * `tcp_conn_request()` (net/ipv4/tcp_input.c) drops a SYN, or answers it with
 * a cookie when tcp_syncookies allows, once `inet_csk_reqsk_queue_is_full()`
 * holds; with tcp_syncookies 0 it also drops one once fewer than a quarter of
 * tcp_max_syn_backlog slots remain (`max_syn_backlog − qlen < max_syn_backlog
 * >> 2`), so at most M − ⌊M/4⌋ + 1 requests are kept.
 *
 * Kernels differ in the first test. Since commit 3479c7549fb1 ("tcp/dccp:
 * allow a connection when sk_max_ack_backlog is zero", v6.13, backported to
 * 5.10.234, 6.1.125 and 6.12.10) it is `qlen > sk_max_ack_backlog`, as for
 * the accept queue, so the queue holds min(backlog, somaxconn) + 1; before
 * it (since ef547f2ac16b, v4.4) `qlen >= sk_max_ack_backlog`, so it holds
 * min(backlog, somaxconn). A version number cannot tell which a kernel
 * does (the backports), so the lab measures it: the kernel facts'
 * `behaviour.synQueueExtra` (1 or 0) from a probe with listen(fd, 1).
 * When the probe could not tell (null), the bound is the range of both.
 */
import type { KernelFacts } from "../define.ts";

/** A point's queue settings: the listen backlog (≤ somaxconn), tcp_max_syn_backlog, tcp_syncookies. */
export interface SynQueuePoint {
  backlog: number;
  maxSynBacklog: number;
  syncookies: number;
}

/** The bound for one answer of the full-queue test: extra 1 (`>`) or 0 (`>=`). */
export function synQueueBoundWith(p: SynQueuePoint, extra: 0 | 1): number {
  if (p.syncookies === 2) return 0;
  const full = p.backlog + extra;
  if (p.syncookies === 1) return full;
  return Math.min(full, p.maxSynBacklog - (p.maxSynBacklog >> 2) + 1);
}

/**
 * The request sockets a kernel keeps at most, as [min, max]: one number when
 * the probe measured the full-queue test, both answers' range when not.
 */
export function synQueueBounds(
  p: SynQueuePoint,
  kernel: KernelFacts,
): { min: number; max: number } {
  const extra = kernel.behaviour.synQueueExtra;
  if (extra !== null) {
    const b = synQueueBoundWith(p, extra);
    return { min: b, max: b };
  }
  return { min: synQueueBoundWith(p, 0), max: synQueueBoundWith(p, 1) };
}

/** How the kernel's full-queue test was told, for evidence sentences. */
export function synQueueRule(kernel: KernelFacts): string {
  const extra = kernel.behaviour.synQueueExtra;
  return extra === null
    ? "the SYN queue's full test was not measured on this kernel"
    : extra === 1
    ? "this kernel keeps min(backlog, somaxconn) + 1 requests (qlen > limit, commit 3479c7549fb1)"
    : "this kernel keeps min(backlog, somaxconn) requests (qlen >= limit, before commit 3479c7549fb1)";
}
