/**
 * One matrix point, start to end: build the network and start the programs →
 * listen → release the clients → watch → collect → tear down, timing each
 * phase. Everything it creates is removed before it returns or throws.
 * @module
 */
import { join } from "node:path";
import { Programs } from "../act/launch.ts";
import type { RunPlan } from "../describe/run_plan.ts";
import { Capture } from "../observe/capture.ts";
import { inputQueueDropsTotal } from "../observe/machine.ts";
import { packetTimelines } from "../observe/packet_timeline.ts";
import { readListen, Sampler } from "../observe/sampler.ts";
import { checkPackets } from "../judge/expect_packets.ts";
import { summarize } from "../judge/evidence.ts";
import { settleAll } from "../base/resources.ts";
import type { ConnectionTimeline, LinkRecord, Phases, RuleRecord, RunResult } from "../results.ts";
import type { RunRecord } from "../base/run_record.ts";
import { runExperience } from "../observe/client_experience.ts";
import { judgeLinks } from "../judge/link_soundness.ts";
import { Topology } from "../topology/topology.ts";
import { watch, type Watched } from "./watch.ts";

/** Where and how a point runs. */
export interface PointContext {
  /** Its namespaces are `<prefix>-<host>`. */
  prefix: string;
  /** The lab subnet of the plan's family. */
  subnet: string;
  /** A directory for the run's capture files (inside the run record's temporary files). */
  captureDir: string;
  /** The run record its namespaces are written into (default: the process's own). */
  record?: RunRecord;
  /** Keep the capture files (for a report) instead of removing them with the run. */
  keepCaptures: boolean;
  /** Aborts the run; everything it built is still removed. */
  signal?: AbortSignal;
  /**
   * Waits until the point may run on the machine (see `MachineLock`) and
   * holds its place until the point is torn down; a failure to get in
   * becomes the run's error.
   */
  admit?: () => Promise<Disposable>;
  /** Called once the point is admitted, as it starts building. */
  onStart?: () => void;
}

/** A finished point: its result and, when kept, its capture files by host. */
export interface PointOutcome {
  /** What the run observed and how it was judged. */
  result: RunResult;
  /** Host → pcap file, for captures kept. */
  captures: Record<string, string>;
}

/** Runs one matrix point; errors of the run become its `error` (an abort is thrown). */
export async function runPoint(plan: RunPlan, ctx: PointContext): Promise<PointOutcome> {
  const clock = new PhaseClock();
  const captureFiles = Object.fromEntries(
    plan.capture.map((h) => [h, join(ctx.captureDir, `${ctx.prefix}-${h}.pcap`)]),
  );
  let watched: Watched | undefined;
  let topology: Topology | undefined;
  let originEpochMs: number | undefined;
  const packets: Record<string, ConnectionTimeline[]> = {};
  let rules: Record<string, RuleRecord> = {};
  let links: Record<string, LinkRecord> | undefined;
  let error: unknown;
  let dropsBefore = 0;
  let drops = 0;
  try {
    // Released last: the point keeps its place on the machine until everything is removed.
    using admitted = new DisposableStack();
    if (ctx.admit) admitted.use(await ctx.admit());
    clock.restart();
    ctx.onStart?.();
    await using stack = new AsyncDisposableStack();
    if (!ctx.keepCaptures) stack.defer(() => removeFiles(Object.values(captureFiles)));
    topology = stack.use(
      await Topology.create(plan, {
        prefix: ctx.prefix,
        subnet: ctx.subnet,
        ...(ctx.record ? { record: ctx.record } : {}),
      }),
    );
    const programs = stack.use(Programs.launch(topology, plan));
    const captures = new Map<string, Capture>();
    await settleAll([
      topology.connect(),
      ...plan.capture.map(async (host) => {
        // On the host's own link when it has one, so that a pcap names no interface of the
        // machine that reads it (a host with several links is captured on "any", rewritten).
        await topology!.linked(host);
        const ifaces = topology!.interfaces(host);
        const capture = await Capture.start(topology!.ns(host), {
          port: plan.server.port,
          file: captureFiles[host]!,
          iface: ifaces.length === 1 ? ifaces[0]! : "any",
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        });
        captures.set(host, stack.use(capture));
      }),
    ]);
    clock.lap("build");

    const ready = await programs.listen(ctx.signal);
    const serverNs = topology.ns(plan.server.host);
    if (!readListen(serverNs, plan.server.port, plan.family)) {
      throw new Error(
        `Cannot use the server in "${serverNs.name}": it reported ready, but the namespace has no LISTEN socket on port ${plan.server.port}`,
      );
    }
    clock.lap("server");
    await programs.clientsReady(ctx.signal);
    const sampler = stack.use(new Sampler(topology.hosts, plan, topology.addresses));
    sampler.serverPid = ready.pid;
    await sampler.baseline();
    dropsBefore = inputQueueDropsTotal();
    const t0 = performance.now();
    originEpochMs = Math.round((performance.timeOrigin + t0) * 1000) / 1000;
    await programs.go();
    clock.lap("clients");

    const net = topology;
    /** The run's error when a shaped link broke (read now, at the end of the window). */
    const brokenLinks = async () => {
      if (plan.links.length === 0) return undefined;
      links = await net.linkRecords();
      return judgeLinks(links, plan.server.host);
    };
    try {
      watched = await watch(plan, {
        topology,
        programs,
        sampler,
        t0,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    } catch (err) {
      // A link that stopped explains an observation that failed: say so first.
      const broken = ctx.signal?.aborted ? undefined : await brokenLinks().catch(() => undefined);
      if (broken === undefined) throw err;
      throw new Error(`${broken} (and the observation failed: ${(err as Error).message})`);
    }
    const broken = await brokenLinks();
    if (broken !== undefined) throw new Error(broken);
    clock.lap("observe");
    drops = inputQueueDropsTotal() - dropsBefore;

    for (const [host, capture] of captures) {
      packets[host] = packetTimelines(await capture.stop(), {
        serverPort: plan.server.port,
        originMs: originEpochMs,
      });
    }
    for (const e of plan.packetExpectations) {
      const group = e.group === undefined ? undefined : topology.addresses[`clients.${e.group}`];
      watched.checks.push(checkPackets(e, packets[e.host] ?? [], group));
    }
    rules = await topology.ruleRecords();
    clock.lap("collect");
  } catch (err) {
    error = err;
  }
  if (error !== undefined && ctx.keepCaptures) await removeFiles(Object.values(captureFiles));
  clock.lap("teardown");
  if (error !== undefined && (ctx.signal?.aborted || isProgrammingError(error))) throw error;
  const result = pointResult(plan, {
    topology,
    watched,
    clock,
    rules,
    packets,
    links,
    originEpochMs,
    drops,
    error,
  });
  return { result, captures: ctx.keepCaptures && error === undefined ? captureFiles : {} };
}

/** What one point's run produced, assembled into its result (whatever stage it reached). */
function pointResult(
  plan: RunPlan,
  o: {
    topology: Topology | undefined;
    watched: Watched | undefined;
    clock: PhaseClock;
    rules: Record<string, RuleRecord>;
    packets: Record<string, ConnectionTimeline[]>;
    links: Record<string, LinkRecord> | undefined;
    originEpochMs: number | undefined;
    drops: number;
    error: unknown;
  },
): RunResult {
  const { topology, watched, clock, rules, packets, links, originEpochMs, drops, error } = o;
  const checks = watched?.checks ?? [];
  const result: RunResult = {
    params: plan.params,
    mode: plan.mode,
    server: { host: plan.server.host, port: plan.server.port, backlog: plan.server.backlog },
    sysctls: topology?.sysctls ?? {},
    addresses: topology?.addresses ?? {},
    // A timing-limited check is recorded, never a failure (see `timing` of an expectation).
    passed: error === undefined && checks.every((c) => c.passed || c.timingLimited === true),
    durationMs: Math.round(clock.totalMs),
    phases: clock.phases,
    observed: summarize(watched?.samples ?? []),
    checks,
    samples: watched?.samples ?? [],
    connections: watched?.connections ?? [],
    timeline: watched?.steps ?? [],
    rules,
    packets,
  };
  if (links !== undefined) result.links = links;
  if (watched !== undefined) {
    result.experience = runExperience(
      plan.groups.map((g) => g.name),
      watched.connections,
      watched.samples.at(-1)?.t ?? 0,
    );
  }
  if (originEpochMs !== undefined) result.originEpochMs = originEpochMs;
  if (drops > 0) result.inputQueueDrops = drops;
  if (error !== undefined) result.error = error instanceof Error ? error.message : String(error);
  return result;
}

async function removeFiles(files: readonly string[]): Promise<void> {
  await Promise.all(files.map((f) => Deno.remove(f).catch(() => {})));
}

/** A bug of the lab (not of the run): thrown, never recorded as a run's failure. */
function isProgrammingError(err: unknown): boolean {
  return err instanceof TypeError || err instanceof ReferenceError || err instanceof SyntaxError;
}

/** Times the phases of a run. */
class PhaseClock {
  readonly phases: Phases = {
    build: 0,
    server: 0,
    clients: 0,
    observe: 0,
    collect: 0,
    teardown: 0,
  };
  #start = performance.now();
  #mark = this.#start;

  /** Starts again from now (the time waiting for the machine is not the run's). */
  restart(): void {
    this.#start = this.#mark = performance.now();
  }

  /** Ends `phase` now. */
  lap(phase: keyof Phases): void {
    const now = performance.now();
    this.phases[phase] = Math.round((now - this.#mark) * 10) / 10;
    this.#mark = now;
  }

  /** Milliseconds since the clock started. */
  get totalMs(): number {
    return performance.now() - this.#start;
  }
}
