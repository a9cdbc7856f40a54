/**
 * What the lab knows about the kernel an experiment is planned for: its
 * release, the `net.*` sysctls a fresh network namespace of it has (with
 * their values), what behaviour probes measured it doing, and how fast the
 * machine runs the lab. The run stage probes these once per lab run
 * (`lab/observe/kernel_probe.ts`) and plans every experiment with them, so
 * that a definition can set a sysctl only where it exists, write an expected
 * number as a function of the kernel, or say why a kernel cannot run it.
 *
 * Kernels are told apart by what they do, never by their version number:
 * stable kernels get changes backported (see {@linkcode KERNEL_CHANGES}).
 * @module
 */

import type { KernelBehaviour, KernelFacts, KernelMachine } from "../results.ts";

export type { KernelBehaviour, KernelFacts, KernelMachine };

/**
 * Facts for planning when no kernel was probed: no sysctl is known to
 * exist, no behaviour is known, native speed. `Lab.run()` plans again with
 * the probed facts before it runs anything.
 */
export function unprobedKernel(): KernelFacts {
  return {
    release: "unknown",
    sysctls: {},
    behaviour: { synQueueExtra: null },
    machine: "native",
    timeScale: 1,
    probed: false,
  };
}

/**
 * The time scale above which the lab calls a machine timing-limited: an
 * emulated VM (QEMU's TCG runs the lab 20 to 70 times slower than its host)
 * builds a situation too slowly for bounds that count kernel timer firings
 * before a step (see `timing` of an expectation). KVM guests and native
 * machines stay below it.
 */
export const TIMING_LIMIT = 4;

/** Whether the kernel's machine is too slow for `timing` expectations (see {@linkcode TIMING_LIMIT}). */
export function isTimingLimited(kernel: KernelFacts): boolean {
  return kernel.timeScale > TIMING_LIMIT;
}

/**
 * The most a slow machine's time scale adds to an observation window. A
 * window is stretched by the time scale (an emulated guest builds the
 * situation tens of times slower), but a settled check that does not hold
 * keeps its window open to the end: unbounded, one such point on a 70 times
 * slower guest would wait 38 minutes for a 33 s window. Kernel timers are
 * never stretched, so the window needs the lab's slowness added, not
 * multiplied without end.
 */
export const MAX_WINDOW_STRETCH_MS = 120_000;

/**
 * An observation window on this kernel's machine: `windowMs` times its time
 * scale (never less than `windowMs`), at most {@linkcode MAX_WINDOW_STRETCH_MS} longer.
 */
export function stretchedWindowMs(windowMs: number, kernel: KernelFacts): number {
  const stretched = Math.round(windowMs * Math.max(1, kernel.timeScale));
  return Math.min(stretched, windowMs + MAX_WINDOW_STRETCH_MS);
}

/**
 * Whether a fresh namespace of the kernel has the sysctl. With facts that
 * were not probed, every sysctl is taken to exist (so a definition plans as
 * written).
 *
 * @example
 * ```ts
 * import { hasSysctl, unprobedKernel } from "./kernel.ts";
 * hasSysctl(unprobedKernel(), "net.ipv4.tcp_syn_linear_timeouts"); // true
 * ```
 */
export function hasSysctl(kernel: KernelFacts, name: string): boolean {
  return !kernel.probed || Object.hasOwn(kernel.sysctls, name);
}

/**
 * A fresh namespace's value of a sysctl as a number, or `undefined` when the
 * kernel has no such sysctl (or the facts were not probed).
 */
export function sysctlNumber(kernel: KernelFacts, name: string): number | undefined {
  const v = kernel.sysctls[name];
  if (v === undefined || v.trim() === "") return undefined;
  const n = Number(v.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** A change in the kernel that the lab's experiments know about. */
export interface KernelChange {
  /** Mainline commit (12 hex digits). */
  commit: string;
  /** Its subject line. */
  subject: string;
  /** The first mainline release with it. */
  mainline: string;
  /** Stable releases it was backported to, where known (Debian's changelogs). */
  backports: string[];
  /** What it changed, in a sentence the reports print. */
  effect: string;
  /** What tells it apart on a running kernel: a behaviour probe or a sysctl's existence. */
  detect: { behaviour: keyof KernelBehaviour } | { sysctl: string };
}

/**
 * The kernel changes behind differences the experiments can see, by what
 * detects them. Reports name them when verdicts differ between kernels.
 */
export const KERNEL_CHANGES: readonly KernelChange[] = [
  {
    commit: "3479c7549fb1",
    subject: "tcp/dccp: allow a connection when sk_max_ack_backlog is zero",
    mainline: "6.13",
    backports: ["5.10.234", "6.1.125", "6.12.10"],
    effect:
      "the SYN queue holds min(backlog, somaxconn) + 1 request sockets instead of min(backlog, somaxconn): " +
      "inet_csk_reqsk_queue_is_full() tests qlen > limit instead of qlen >= limit (as the accept queue always did)",
    detect: { behaviour: "synQueueExtra" },
  },
  {
    commit: "ccce324dabfe",
    subject: "tcp: make the first N SYN RTO backoffs linear",
    mainline: "6.5",
    backports: [],
    effect:
      "net.ipv4.tcp_syn_linear_timeouts (default 4): a client resends its SYN 1 s apart that many times before doubling; " +
      "before it the SYN timer always doubled (1, 2, 4 … s)",
    detect: { sysctl: "net.ipv4.tcp_syn_linear_timeouts" },
  },
  {
    commit: "f086edef71be",
    subject: "tcp: add sysctl_tcp_rto_min_us",
    mainline: "6.11",
    backports: [],
    effect: "net.ipv4.tcp_rto_min_us sets the minimum RTO (200 ms, TCP_RTO_MIN, before it)",
    detect: { sysctl: "net.ipv4.tcp_rto_min_us" },
  },
  {
    commit: "1280c26228bd",
    subject: "tcp: add tcp_rto_max_ms sysctl",
    mainline: "6.15",
    backports: [],
    effect: "net.ipv4.tcp_rto_max_ms sets the maximum RTO (120 s, TCP_RTO_MAX, before it)",
    detect: { sysctl: "net.ipv4.tcp_rto_max_ms" },
  },
];

/** Whether a kernel has the change, as its facts show it; `undefined` when they cannot tell. */
export function hasChange(kernel: KernelFacts, change: KernelChange): boolean | undefined {
  if ("sysctl" in change.detect) {
    return kernel.probed ? Object.hasOwn(kernel.sysctls, change.detect.sysctl) : undefined;
  }
  switch (change.detect.behaviour) {
    case "synQueueExtra": {
      const v = kernel.behaviour.synQueueExtra;
      return v === null ? undefined : v === 1;
    }
  }
}

/** The behaviour facts in words, for reports: e.g. "SYN queue holds backlog + 1". */
export function describeBehaviour(b: KernelBehaviour): string[] {
  return [
    b.synQueueExtra === null
      ? "SYN queue limit: not measured"
      : `SYN queue holds ${b.synQueueExtra ? "backlog + 1" : "backlog"} (probe)`,
  ];
}
