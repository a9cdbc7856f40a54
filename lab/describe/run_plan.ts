/**
 * A run plan: one matrix point of an experiment with every value resolved
 * and checked, ready to build and run. Planning (`plan.ts`) makes these;
 * every later stage reads them.
 * @module
 */
import type { JudgedOver, PacketKind, RulePacketKind, RunMode } from "../vocabulary.ts";
import type { KernelFacts } from "./kernel.ts";
import type { ArrivalPlan } from "./arrivals.ts";
import type { NormalizedShape } from "./link_shape.ts";
import type { Metric } from "./metric.ts";
import type { AcceptPolicy, ExperimentDefinition, ObserveDefinition, ParamValue } from "./types.ts";

export const EXCLUSIVE_CONNECTIONS = 1000;

/**
 * A follow-up in the client program's terms; `close: true` closes the
 * socket once it has ended.
 */
export type FollowUpSpec =
  | { kind: "nothing" }
  | { kind: "send"; bytes: number; close?: true }
  | { kind: "read"; timeoutMs: number; close?: true }
  | { kind: "sendRead"; bytes: number; timeoutMs: number; close?: true };

/** A client group with every value resolved. */
export interface PlannedGroup {
  /** The group's name, as in its definition. */
  name: string;
  /** The host (namespace) its connections come from. */
  host: string;
  /** How many connections it opens. */
  count: number;
  /**
   * Milliseconds between connect() calls (fractional for `perSecond`); 0: all
   * at once. With `arrivals`, the mean gap.
   */
  intervalMs: number;
  /** Sustained arrivals: the connections start at `arrivalTimes(arrivals)` (then `count` is theirs). */
  arrivals?: ArrivalPlan;
  /** What each connection does once connect() returns. */
  then: FollowUpSpec;
  /** Milliseconds after its connect() began that a connection is closed; 0: never. */
  deadlineMs: number;
  /** Start once `metric` is within [min, max]; absent: at the start of the run. */
  startWhen?: { metric: string; min: number; max: number };
}

/** An expectation with its bounds resolved. */
export interface PlannedExpectation {
  /** The expectation's name, as in its definition. */
  name: string;
  /** The validated metric it reads. */
  metric: string;
  /** How it is judged; `settled` when the definition gave none. */
  over: JudgedOver;
  /** Inclusive lower bound; `-Infinity` when there is none. */
  min: number;
  /** Inclusive upper bound; `Infinity` when there is none. */
  max: number;
  /** For `settled`: how long it must hold, in milliseconds (default 3 sampling intervals). */
  stableMs: number;
  /** Recorded but unable to fail the run: a `timing` expectation on a timing-limited machine. */
  timingLimited?: boolean;
}

/** A packet rule with its group resolved. */
export interface PlannedRule {
  /** The rule's name, as in its definition. */
  name: string;
  /** The host whose hook drops the packets. */
  host: string;
  /** Input (`in`) or output (`out`) hook. */
  direction: "in" | "out";
  /** The kinds of packets dropped. */
  packets: RulePacketKind[];
  /** Only this client group's connections. */
  group?: string;
  /** Whether it is active before the clients start. */
  initially: "on" | "off";
}

/** The shaped link of one client host, per direction (absent: not shaped). */
export interface PlannedLink {
  /** The client host at the far end of the link from the server. */
  host: string;
  /** Packets from the client host to the server, shaped as they leave the client host. */
  toServer?: NormalizedShape;
  /** Packets from the server to the client host, shaped as they leave the server host. */
  toClient?: NormalizedShape;
}

/** A timeline action with its values resolved. */
export type PlannedAction =
  | { kind: "startGroup"; group: string }
  | { kind: "closeGroup"; group: string }
  | { kind: "addRule"; rule: string }
  | { kind: "removeRule"; rule: string }
  | { kind: "sysctl"; host: string; name: string; value: string }
  | { kind: "accept"; n: number }
  | { kind: "acceptPolicy"; policy: AcceptPolicy }
  | { kind: "stopServer"; how: "SIGKILL" | "close" };

/** A timeline step with its values resolved. */
export interface PlannedStep {
  /** The step's name. */
  name: string;
  /** Not before this many ms after the release (0: no constraint). */
  atMs: number;
  /** Not before `metric` is within [min, max]. */
  when?: { metric: string; min: number; max: number };
  /** Not before this step happened. */
  afterStep?: string;
  /** Wait this long once the other conditions hold. */
  delayMs: number;
  /** What it does. */
  action: PlannedAction;
}

/** A packet expectation with its values resolved. */
export interface PlannedPacketExpectation {
  /** The check's name. */
  name: string;
  /** The capturing host. */
  host: string;
  /** The packet kind. */
  kind: PacketKind;
  /** Which end sent it. */
  from: "client" | "server";
  /** Only this group's connections. */
  group?: string;
  /** Per-connection count bounds (absent: any). */
  count?: { min: number; max: number };
  /** Expected gaps in ms (absent: not checked). */
  intervalsMs?: number[];
  /** Allowed deviation of each gap in ms. */
  toleranceMs: number;
  /** Recorded but unable to fail the run: a `timing` expectation on a timing-limited machine. */
  timingLimited?: boolean;
}

/** One matrix point, ready to run. */
export interface RunPlan {
  /** The matrix point this run resolves. */
  params: Record<string, ParamValue>;
  /** The experiment's id. */
  experiment: string;
  /** The point's 0-based index in the experiment's matrix. */
  index: number;
  /** How many points the experiment's matrix has. */
  of: number;
  /** How the run's kernel timers are set (see {@linkcode RunMode}). */
  mode: RunMode;
  /** IP version of the run's addresses (default 4). */
  family: 4 | 6;
  /** Hosts in link order: the server host first. */
  hosts: { name: string; sysctls: Record<string, string> }[];
  /** The server with its port (default 8080), backlog and accept policy resolved. */
  server: {
    host: string;
    port: number;
    backlog: number;
    accept: AcceptPolicy;
    acceptAfterMs: number;
    maxOpenFiles?: number;
    /** Serve each accepted connection: read a request, write this many bytes, close. */
    serve?: { replyBytes: number };
  };
  /** Shaped links, in host order; a direction without delay, loss or rate is left out. */
  links: PlannedLink[];
  /** Packet rules in definition order. */
  rules: PlannedRule[];
  /** Timeline steps: the definition's, then one per `startWhen` and the accept policy's start. */
  timeline: PlannedStep[];
  /** Hosts whose traffic is captured. */
  capture: string[];
  /** Packet expectations in definition order. */
  packetExpectations: PlannedPacketExpectation[];
  /** Client groups with every value resolved, in definition order. */
  groups: PlannedGroup[];
  /**
   * Sampling interval, as defined, and window: as defined, stretched by the
   * kernel's `timeScale` (a slower machine needs longer to build the situation).
   */
  observe: ObserveDefinition;
  /** Expectations with their bounds resolved, in definition order. */
  expectations: PlannedExpectation[];
  /** Every metric to sample, parsed: the default set, then those the expectations and steps name. */
  metrics: Metric[];
  /** Runs alone: the definition says so, or it opens {@linkcode EXCLUSIVE_CONNECTIONS} or more connections. */
  exclusive: boolean;
  /**
   * Keeps the CPUs busy for its whole length (a group with sustained
   * arrivals): it runs beside lighter points, but only a few such at once.
   */
  heavy: boolean;
}

/** An experiment with its matrix planned for one mode, as loading returns it. */
export interface PlannedExperiment {
  /** The validated definition. */
  definition: ExperimentDefinition;
  /** The file it was loaded from, relative to the working directory, if any. */
  file?: string;
  /** How its runs' timers are set (every plan has this mode). */
  mode: RunMode;
  /**
   * The metrics the definition names (`observe.metrics`, then its
   * expectations'): what its table of observed values shows.
   */
  metrics: string[];
  /** What-ifs (`--set`): each parameter whose values were replaced, with the values run. */
  overrides?: Record<string, ParamValue[]>;
  /** One plan per matrix point the kernel can run, in matrix order. */
  plans: RunPlan[];
  /** The kernel it was planned for. */
  kernel: KernelFacts;
  /** The matrix points its `requires` refused on this kernel, with why. */
  skipped: SkippedPoint[];
}

/** A matrix point an experiment's `requires` refused on a kernel. */
export interface SkippedPoint {
  /** The point's parameters. */
  params: Record<string, ParamValue>;
  /** Its 0-based index in the matrix. */
  index: number;
  /** Why this kernel cannot run it. */
  reason: string;
}
