/**
 * The kernel's handshake retransmission timers, as two experiments predict
 * them from the sysctls (`synack_retransmission.ts`, `client_syn_retransmission.ts`).
 * Files starting with `_` are not experiments; the loader skips them.
 *
 * Every time here is nominal: the timer wheel (kernel/time/timer.c) never
 * fires a timer early but may fire it up to one granularity of its wheel level
 * late; {@linkcode wheelSlackMs} says how much, and a measured gap of a T ms
 * timer lies in [T, T + wheelSlackMs(T)] plus a few ms of softirq latency
 * ({@linkcode gapFits}).
 */
import type { KernelFacts } from "../define.ts";

/** The first RTO of a SYN or SYN-ACK: TCP_TIMEOUT_INIT, 1 s (RFC 6298; older kernels: 3 s, RFC 1122). */
export const INITIAL_RTO_MS = 1000;

/** TCP_RTO_MAX, which also caps a request socket's SYN-ACK timer. */
export const TCP_RTO_MAX_MS = 120_000;

/**
 * CONFIG_HZ of the lab's kernel (6.18: CONFIG_HZ_250). The lab cannot read it
 * from an experiment; on another HZ the wheel's levels, hence the slack, move.
 */
export const HZ = 250;

/**
 * How late the timer wheel may fire a timer armed `timeoutMs` ahead, in ms.
 * `calc_wheel_index()` files it in the first level whose range holds the
 * timeout (level n starts at LVL_START(n) = 63 << 3(n − 1) jiffies) and
 * `calc_index()` rounds its expiry up to that level's granularity, 8^n
 * jiffies. At HZ 250: 32 ms for 1–2 s, 256 ms for 4–16 s, 2048 ms for 32–64 s.
 *
 * @example
 * ```ts
 * import { wheelSlackMs } from "./_timers.ts";
 * console.log(wheelSlackMs(1000)); // 32
 * ```
 */
export function wheelSlackMs(timeoutMs: number, hz = HZ): number {
  const jiffies = Math.ceil(timeoutMs * hz / 1000);
  let level = 0;
  while (level < 8 && jiffies >= 63 << (3 * level)) level++;
  return 8 ** level * 1000 / hz;
}

/** When a connection's handshake packets go out, and when the handshake is given up. */
export interface HandshakeSchedule {
  /** Send times of the first packet and each retransmission, ms after the first. */
  sendsMs: number[];
  /** The timers armed, in order: one after each send, the last one ending the handshake. */
  timersMs: number[];
  /** When the last timer fires and the handshake is given up, ms after the first send. */
  giveUpMs: number;
}

/**
 * The server's SYN-ACKs for a request nobody ACKs. `reqsk_timer_handler()`
 * fires `1 s << num_timeout` (at most TCP_RTO_MAX) after the previous firing;
 * `syn_ack_recalc()` retransmits while `num_timeout < tcp_synack_retries` and
 * drops the request at the next firing. So `retries` retransmissions at
 * 1, 3, 7, … s, and the request expires (2^(retries+1) − 1) s after the SYN:
 * 3 s for 1, 7 s for 2, 63 s for the default 5.
 */
export function synAckSchedule(retries: number): HandshakeSchedule {
  const timersMs = Array.from(
    { length: retries + 1 },
    (_, k) => Math.min(INITIAL_RTO_MS * 2 ** k, TCP_RTO_MAX_MS),
  );
  return fromTimers(timersMs);
}

/**
 * The client's SYNs when nothing answers. `tcp_retransmit_timer()` keeps the
 * RTO at 1 s for the first `tcp_syn_linear_timeouts` retransmissions and
 * doubles it (capped at tcp_rto_max_ms) after each later one.
 * `tcp_write_timeout()` gives up at the first firing at least
 * `tcp_model_timeout()` after the first SYN: (2^(retries+1) − 1) s while
 * retries ≤ log2(rto_max / 1 s), i.e. the time the retransmissions would take
 * without linear timeouts. Linear timeouts send more SYNs in that time, and
 * the give-up moves to the end of the timer that crosses it.
 */
export function synSchedule(
  retries: number,
  linearTimeouts: number,
  rtoMaxMs = TCP_RTO_MAX_MS,
): HandshakeSchedule & { budgetMs: number } {
  const budgetMs = modelTimeoutMs(retries, INITIAL_RTO_MS, rtoMaxMs);
  const timersMs: number[] = [];
  let rto = INITIAL_RTO_MS;
  let elapsed = 0;
  for (;;) {
    timersMs.push(rto);
    elapsed += rto;
    if (elapsed >= budgetMs) break;
    if (timersMs.length > linearTimeouts) rto = Math.min(rto * 2, rtoMaxMs);
  }
  return { ...fromTimers(timersMs), budgetMs };
}

/** `tcp_model_timeout()`: the time `boundary` exponentially backed-off retransmissions take. */
export function modelTimeoutMs(boundary: number, rtoBaseMs: number, rtoMaxMs: number): number {
  const thresh = Math.floor(Math.log2(rtoMaxMs / rtoBaseMs));
  return boundary <= thresh
    ? (2 * 2 ** boundary - 1) * rtoBaseMs
    : (2 * 2 ** thresh - 1) * rtoBaseMs + (boundary - thresh) * rtoMaxMs;
}

/** The most the wheel can delay the whole schedule's give-up: every timer late by its slack. */
export function totalSlackMs(schedule: HandshakeSchedule): number {
  return schedule.timersMs.reduce((sum, t) => sum + wheelSlackMs(t), 0);
}

/**
 * Softirq and capture latency allowed on top of the wheel's slack. Gaps of
 * exactly T + slack were seen (4256 ms for 4 s, 34048 ms for 32 s), so the
 * margin is all that covers a busy machine.
 */
export const LATENCY_MS = 20;

/**
 * The softirq, capture and sampling latency allowed on a kernel's machine:
 * {@linkcode LATENCY_MS} stretched by its time scale. An emulated VM (QEMU's
 * TCG) fires and reports timers hundreds of ms late: its timer ticks and the
 * lab's sampling are emulated too. The timers themselves are the kernel's
 * and keep their schedule; only the allowance for lateness grows.
 */
export function latencyMs(kernel: KernelFacts): number {
  return LATENCY_MS * Math.max(1, kernel.timeScale);
}

/**
 * Whether a measured gap fits a timer of `timerMs`: never early (2 ms for
 * capture timestamps), at most the wheel's slack plus `latency` (default
 * {@linkcode LATENCY_MS}; see {@linkcode latencyMs}) late.
 */
export function gapFits(gapMs: number, timerMs: number, latency = LATENCY_MS): boolean {
  return gapMs >= timerMs - 2 && gapMs <= timerMs + wheelSlackMs(timerMs) + latency;
}

/** Seconds for evidence sentences: `secs(1017.4)` → "1.02", `secs(63000, 0)` → "63". */
export function secs(ms: number, digits = 2): string {
  return (ms / 1000).toFixed(digits);
}

function fromTimers(timersMs: number[]): HandshakeSchedule {
  const sendsMs = [0];
  for (const t of timersMs.slice(0, -1)) sendsMs.push(sendsMs.at(-1)! + t);
  return { sendsMs, timersMs, giveUpMs: sendsMs.at(-1)! + timersMs.at(-1)! };
}

/**
 * Tolerance of the packet-gap expectations: half the 256 ms slack of 4–16 s
 * timers, plus {@linkcode LATENCY_MS}.
 */
export const GAP_TOLERANCE_MS = 148;

/**
 * The gaps a packet expectation checks: each at the middle of its window
 * [T, T + slack], for the leading timers whose window fits
 * {@linkcode GAP_TOLERANCE_MS} (up to 16 s at HZ 250). Later, coarser gaps
 * (32 s and 64 s timers may fire 2 s late) are left to the count and to the
 * claim rules' {@linkcode gapFits}.
 */
export function expectedGapsMs(schedule: HandshakeSchedule): number[] {
  const gaps: number[] = [];
  for (const t of schedule.timersMs.slice(0, -1)) {
    const slack = wheelSlackMs(t);
    if (slack / 2 + LATENCY_MS > GAP_TOLERANCE_MS) break;
    gaps.push(Math.round(t + slack / 2));
  }
  return gaps;
}
