/**
 * The observation of one run: every `intervalMs`, sample the kernel of each
 * host and the client programs' tallies, perform the timeline steps that are
 * due, and follow each expectation, until every settled expectation has held
 * and every step happened, one check fails for good, or the window ends.
 * @module
 */
import { delay } from "../base/wait.ts";
import type { RunPlan } from "../describe/run_plan.ts";
import { perform } from "../act/actions.ts";
import type { Programs } from "../act/launch.ts";
import { describeAction, Timeline } from "../act/timeline.ts";
import { GroupTally } from "../observe/client_tally.ts";
import type { Sampler } from "../observe/sampler.ts";
import { CheckTracker } from "../judge/expect.ts";
import type { ConnectionRecord, Sample, StepRecord } from "../results.ts";
import type { CheckResult } from "../results.ts";
import type { Topology } from "../topology/topology.ts";

/** What {@linkcode watch} needs of a run. */
export interface WatchContext {
  /** The run's network. */
  topology: Topology;
  /** The run's programs, the clients released. */
  programs: Programs;
  /** The run's sampler, its baseline taken. */
  sampler: Sampler;
  /** `performance.now()` at the release: time 0 of samples and steps. */
  t0: number;
  /** Aborts the observation. */
  signal?: AbortSignal;
}

/** What a run's observation saw. */
export interface Watched {
  /** Every sample, in time order. */
  samples: Sample[];
  /** The steps performed, in order. */
  steps: StepRecord[];
  /** Each expectation's result, in the plan's order. */
  checks: CheckResult[];
  /** What the kernel answered each client connection. */
  connections: ConnectionRecord[];
}

/**
 * Observes one run until it is decided or its window ends.
 *
 * @throws {Error} when a step never happened within the window (naming its condition and last
 *   value), or a program exited that should not have.
 */
export async function watch(plan: RunPlan, ctx: WatchContext): Promise<Watched> {
  const { programs, sampler, t0, signal } = ctx;
  const since = () => Math.round((performance.now() - t0) * 10) / 10;
  const samples: Sample[] = [];
  const steps: StepRecord[] = [];
  const timeline = new Timeline(plan.timeline);
  const trackers = plan.expectations.map((e) => new CheckTracker(e));
  const tallies = plan.groups.map((g) =>
    new GroupTally(g.name, g.count, { followsUp: g.then.kind !== "nothing" })
  );
  const clientValues = () => {
    tallies.forEach((t, i) => t.update(programs.clients[i]!.events));
    return Object.assign({}, ...tallies.map((t) => t.metrics(plan.metrics)));
  };
  let serverStopped = false;
  for (let tick = 0;; tick++) {
    signal?.throwIfAborted();
    if (serverStopped && programs.server.exited) sampler.serverPid = 0;
    const sampling = performance.now();
    const kernel = await sampler.sample();
    const sampleMs = performance.now() - sampling;
    const values: Record<string, number> = { ...kernel, ...clientValues() };
    const sample = { t: since(), values };
    samples.push(sample);
    for (const step of timeline.due(sample.t, values)) {
      const atMs = since();
      serverStopped ||= step.action.kind === "stopServer";
      const result = await perform(step.action, ctx);
      timeline.done(step.name, atMs);
      steps.push({
        name: step.name,
        action: describeAction(step.action),
        atMs,
        ...(result === undefined ? {} : { result }),
      });
    }
    const armed = tallies.every((t) => t.launched);
    for (const tr of trackers) tr.update(sample, armed);
    // Timing-limited checks are recorded, but neither hold the window open nor end it.
    const judged = trackers.filter((tr) => !tr.plan.timingLimited);
    const settled = judged.filter((tr) => tr.plan.over === "settled");
    const done = timeline.pending.length === 0 && settled.length > 0 &&
      settled.every((tr) => tr.passedEarly);
    const broken = judged.some((tr) => tr.decided && !tr.passedEarly);
    const windowMs = plan.observe.windowMs;
    if (sample.t >= windowMs && timeline.pending.length) {
      const step = timeline.pending[0]!;
      const why = timeline.whyPending(step, windowMs);
      throw new Error(
        step.action.kind === "startGroup"
          ? `Cannot start client group "${step.action.group}": ${why}`
          : `Cannot perform step "${step.name}": ${why}`,
      );
    }
    if (sample.t >= windowMs && !armed) {
      // No check could be judged: say why instead of leaving every check at "–".
      throw new Error(
        `Cannot judge the run: when its ${windowMs} ms window ended, not every client had been launched (${
          tallies.map((t) => `${t.group} ${t.launchedCount} of ${t.count}`).join(", ")
        }, as the client programs reported it); ${machineLoad()}`,
      );
    }
    if (done || broken || sample.t >= windowMs) break;
    for (const c of programs.clients) {
      if (c.exited) throw new Error(`Cannot observe the run: ${c.label} exited during it`);
    }
    if (programs.server.exited && !serverStopped) {
      throw new Error(`Cannot observe the run: ${programs.server.label} exited during it`);
    }
    // Sampling runs on this thread, and so does reading the programs' events. A sample of 20,000
    // sockets on a busy machine takes longer than the interval; back to back, they starved the
    // reading (10,000 connections' events arrived 5 s late, and checks waited for them). So
    // the loop always leaves this thread at least half as long as the sample took.
    const next = (tick + 1) * plan.observe.intervalMs - (performance.now() - t0);
    await delay(Math.max(next, sampleMs / 2, 1), signal);
  }
  return {
    samples,
    steps,
    checks: trackers.map((tr) => tr.result()),
    connections: tallies.flatMap((t, i) => {
      t.update(programs.clients[i]!.events);
      return t.records();
    }),
  };
}

/** The machine's load, for messages about a run the machine was too busy for. */
export function machineLoad(): string {
  try {
    const [one] = Deno.readTextFileSync("/proc/loadavg").split(" ");
    return `load average ${one} on ${navigator.hardwareConcurrency} cores`;
  } catch {
    return "load unknown";
  }
}
