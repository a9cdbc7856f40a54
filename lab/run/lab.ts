/**
 * Runs experiments: per matrix point, build the namespaces and links → start
 * the server → wait until it listens → start the clients → observe and check
 * → collect → tear down, timing each phase. Matrix points run concurrently
 * (`jobs` at a time, see {@linkcode Scheduler}), each in its own namespaces;
 * results keep definition order whatever order the points finish in. A
 * {@linkcode Lab} holds no global state beyond its own name prefix and
 * counter, so two labs (two processes, or two `Lab`s in one) do not collide.
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type AcceptPolicy,
  type ExperimentDefinition,
  type Matrix,
  type PlannedAction,
  planRuns,
  type RunPlan,
} from "../describe/define.ts";
import { Capture } from "../observe/capture.ts";
import { checkPackets, connectionsOf } from "../judge/expect_packets.ts";
import { packetTimelines } from "../observe/packet_timeline.ts";
import { describeAction, type StepRecord, Timeline } from "../act/timeline.ts";
import { defaultJobs, Scheduler } from "./scheduler.ts";
import { nftRuleText, Wire, type WireRule } from "../topology/wire.ts";
import { CheckTracker } from "../judge/expect.ts";
import { Link } from "../topology/link.ts";
import { Netns, newRunPrefix, RECORDED_SYSCTLS } from "../topology/netns.ts";
import { delay, ManagedProcess } from "../act/process.ts";
import { GroupTally } from "../observe/client_tally.ts";
import { readListen, Sampler } from "../observe/sampler.ts";
import type { ClientGroupSpec } from "../act/programs/client_group.ts";
import type {
  CheckResult,
  ClaimDecision,
  ConnectionRecord,
  ConnectionTimeline,
  ExperimentResult,
  Phases,
  RuleRecord,
  RunEvidence,
  RunResult,
  Sample,
} from "../results.ts";

/** Options of a {@linkcode Lab}. */
export interface LabOptions {
  /** IPv4 lab subnet, a /16 of private space; default `10.213.0.0/16`. */
  subnet4?: string;
  /** IPv6 lab prefix, a /48 of unique-local space; default `fd00:213::/48`. */
  subnet6?: string;
  /** Aborts the run in progress; everything it built is still removed. */
  signal?: AbortSignal;
  /** Called as each matrix point starts and ends. */
  onProgress?: (event: ProgressEvent) => void;
  /** Run experiments' faithful matrices (the kernel's default timers) where they have one. */
  faithful?: boolean;
  /**
   * Keep each run's captures as pcap files under this directory, at
   * `pcaps/<experiment>/<run>-<host>.pcap` (see {@linkcode runFileName}); the run's
   * {@linkcode RunResult.pcaps} gives the paths relative to it.
   */
  reportDir?: string;
  /** Matrix points that run at once, over all experiments of this lab (default {@linkcode defaultJobs}). */
  jobs?: number;
}

/**
 * The file-name stem of a run, shared by its pcaps and charts: the 1-based
 * index, zero-padded to the number of runs, then each parameter as `name-value`.
 *
 * @example
 * ```ts
 * import { runFileName } from "./lab.ts";
 * runFileName(3, 12, { backlog: 4, syncookies: 1 }); // "04-backlog-4-syncookies-1"
 * ```
 */
export function runFileName(
  index: number,
  of: number,
  params: Record<string, number | string | boolean>,
): string {
  const n = String(index + 1).padStart(String(of).length, "0");
  const parts = Object.entries(params).map(([k, v]) =>
    `${k}-${String(v)}`.replace(/[^A-Za-z0-9._-]+/g, "_")
  );
  return [n, ...parts].join("-");
}

/** Progress of a lab run. */
export type ProgressEvent =
  | {
    kind: "run-start";
    experiment: string;
    index: number;
    of: number;
    params: Record<string, unknown>;
    /** The repeat (1-based) when the experiment runs several times. */
    repeat?: number;
  }
  | {
    kind: "run-end";
    experiment: string;
    index: number;
    of: number;
    result: RunResult;
    /** The repeat (1-based) when the experiment runs several times. */
    repeat?: number;
  };

/** How long a program may take to report ready (Deno's first start compiles it). */
const READY_TIMEOUT_MS = 30_000;

/** The lab's programs and the permissions each runs with. */
const PROGRAM_FLAGS = {
  "listen_server.ts": ["--allow-ffi", "--allow-read=/proc"],
  "client_group.ts": ["--allow-net", "--allow-ffi"],
} as const;

/**
 * The command that runs one of the lab's programs as the runner starts it
 * (wrap it with `Netns.wrap` to run it inside a namespace). `flags` replaces
 * the program's permissions, e.g. to run the client without FFI.
 */
export function programArgv(
  name: keyof typeof PROGRAM_FLAGS,
  args: readonly string[],
  flags: readonly string[] = PROGRAM_FLAGS[name],
): string[] {
  const url = new URL(`../act/programs/${name}`, import.meta.url);
  const path = url.protocol === "file:" ? fileURLToPath(url) : url.href;
  return [Deno.execPath(), "run", "--no-config", "--quiet", ...flags, path, ...args];
}

/**
 * Checks and parses a lab subnet.
 *
 * @throws {RangeError} for anything but a private IPv4 /16 or a unique-local IPv6 /48.
 */
export function parseSubnet(subnet: string, family: 4 | 6): (link: number, host: number) => string {
  if (family === 4) {
    const m = /^(\d+)\.(\d+)\.0\.0\/16$/.exec(subnet);
    const [a, b] = [Number(m?.[1]), Number(m?.[2])];
    const isPrivate = a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
    if (!m || b > 255 || !isPrivate) {
      throw new RangeError(
        `Cannot use lab subnet "${subnet}": give a private IPv4 /16 such as "10.213.0.0/16"`,
      );
    }
    return (link, host) => `${a}.${b}.${link}.${host}/24`;
  }
  const m = /^(f[cd][0-9a-f]{2}(?::[0-9a-f]{1,4}){0,2})::\/48$/i.exec(subnet);
  if (!m) {
    throw new RangeError(
      `Cannot use lab prefix "${subnet}": give a unique-local IPv6 /48 such as "fd00:213::/48"`,
    );
  }
  const groups = m[1]!.split(":");
  while (groups.length < 3) groups.push("0");
  return (link, host) => `${groups.join(":")}:${link.toString(16)}::${host.toString(16)}/64`;
}

/** Runs experiments in namespaces named `bl-<pid>-<tag>-<n>-<host>`. */
export class Lab {
  /** This lab's namespace-name prefix, `bl-<pid>-<4 hex>`; pass it to `preflight()`. */
  readonly prefix: string;
  readonly #options: LabOptions;
  readonly #scheduler: Scheduler;
  #seq = 0;

  /**
   * Picks a fresh name prefix and checks the subnets.
   *
   * @throws {RangeError} when `subnet4` or `subnet6` is not a usable lab subnet, or
   *   `jobs` is not a whole number ≥ 1.
   */
  constructor(options: LabOptions = {}) {
    this.prefix = newRunPrefix();
    this.#options = options;
    this.#scheduler = new Scheduler(options.jobs ?? defaultJobs());
    parseSubnet(options.subnet4 ?? "10.213.0.0/16", 4);
    parseSubnet(options.subnet6 ?? "fd00:213::/48", 6);
  }

  /** Matrix points that run at once. */
  get jobs(): number {
    return this.#scheduler.jobs;
  }

  /**
   * Runs every matrix point of `def` (concurrently with other points of this
   * lab, up to `jobs`) and decides its claims. `estimateMs` is a point's
   * expected duration: points queued together start longest first. `repeat`
   * labels the progress events of one of several repeats; `keepPcaps: false`
   * keeps no pcaps in the report directory (e.g. for repeats after the first).
   */
  async runExperiment<M extends Matrix>(
    def: ExperimentDefinition<M>,
    options: { file?: string; estimateMs?: number; repeat?: number; keepPcaps?: boolean } = {},
  ): Promise<ExperimentResult> {
    const repeat = options.repeat === undefined ? {} : { repeat: options.repeat };
    const plans = planRuns(def, { faithful: this.#options.faithful ?? false });
    let started: number | undefined;
    let ended = 0;
    // Every point is queued now; one that fails for good lets the others finish (and clean up).
    const settled = await Promise.allSettled(
      plans.map((plan, index) =>
        this.#scheduler.run(async () => {
          this.#options.signal?.throwIfAborted();
          started ??= performance.now();
          this.#options.onProgress?.({
            kind: "run-start",
            experiment: def.id,
            index,
            of: plans.length,
            params: plan.params,
            ...repeat,
          });
          const stem = `${def.id}/${runFileName(index, plans.length, plan.params)}`;
          const result = await this.runPlan(plan, options.keepPcaps === false ? {} : { stem });
          ended = performance.now();
          this.#options.onProgress?.({
            kind: "run-end",
            experiment: def.id,
            index,
            of: plans.length,
            result,
            ...repeat,
          });
          return result;
        }, {
          exclusive: plan.exclusive,
          estimateMs: options.estimateMs ?? plan.observe.windowMs,
        })
      ),
    );
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const runs = settled.map((s) => (s as PromiseFulfilledResult<RunResult>).value);
    const claims: ExperimentResult["claims"] = {};
    const evidence = runs.map((r) => evidenceOf(r));
    for (const [id, rule] of Object.entries(def.claims)) {
      try {
        claims[id] = rule(evidence as never);
      } catch (err) {
        claims[id] = { error: `claim rule failed: ${err instanceof Error ? err.message : err}` };
      }
    }
    return {
      id: def.id,
      title: def.title,
      hypothesis: def.hypothesis,
      ...(options.file === undefined ? {} : { file: options.file }),
      passed: runs.every((r) => r.passed),
      mode: plans[0]?.mode ?? "default",
      durationMs: started === undefined ? 0 : Math.round(ended - started),
      runs,
      claims,
    };
  }

  /**
   * Runs one matrix point; everything it creates is removed before it returns
   * or throws. When the lab has a `reportDir`, the run keeps its pcaps as
   * `pcaps/<stem>-<host>.pcap` if `stem` is given.
   */
  async runPlan(plan: RunPlan, options: { stem?: string } = {}): Promise<RunResult> {
    const signal = this.#options.signal;
    const seq = ++this.#seq;
    const phases: Phases = { build: 0, server: 0, clients: 0, observe: 0, collect: 0, teardown: 0 };
    const t = { start: performance.now(), mark: performance.now() };
    const lap = (phase: keyof Phases) => {
      const now = performance.now();
      phases[phase] = Math.round((now - t.mark) * 10) / 10;
      t.mark = now;
    };
    const addr = parseSubnet(
      plan.family === 4
        ? this.#options.subnet4 ?? "10.213.0.0/16"
        : this.#options.subnet6 ?? "fd00:213::/48",
      plan.family,
    );
    const namespaces: Netns[] = [];
    const links: Link[] = [];
    const processes: ManagedProcess[] = [];
    const wires = new Map<string, Wire>();
    const captures = new Map<string, Capture>();
    const files: string[] = [];
    // Teardown: the programs and captures end first, then the namespaces go, taking their
    // links and nftables tables with them (so those are only deleted on their own if a
    // namespace could not be).
    let namespacesGone = false;
    const stack = new AsyncDisposableStack();
    stack.defer(async () => {
      if (namespacesGone) return;
      await disposeAll([...links, ...wires.values()]);
    });
    stack.defer(async () => {
      await Promise.all([
        disposeAll(namespaces).then(() => {
          namespacesGone = true;
          for (const l of links) l.release();
          for (const w of wires.values()) w.release();
        }),
        ...files.map((f) => Deno.remove(f).catch(() => {})),
      ]);
    });
    stack.defer(() => disposeAll([...processes, ...captures.values()]));

    const sysctls: Record<string, Record<string, string>> = {};
    const addresses: Record<string, string> = {};
    const samples: Sample[] = [];
    const steps: StepRecord[] = [];
    const rules: Record<string, RuleRecord> = {};
    const packets: Record<string, ConnectionTimeline[]> = {};
    let originEpochMs: number | undefined;
    const pcaps: Record<string, string> = {};
    let checks: CheckResult[] = [];
    let connections: ConnectionRecord[] = [];
    let error: unknown;
    try {
      // Build: the namespaces; then at once: the programs start loading (the server waits to
      // listen), the links with one address per client group, the sysctls (read back), the
      // packet rules and the captures.
      const created = await Promise.allSettled(
        plan.hosts.map((h) => Netns.create(`${this.prefix}-${seq}-${h.name}`)),
      );
      for (const c of created) if (c.status === "fulfilled") namespaces.push(c.value);
      const failed = created.find((c) => c.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const nsOf = new Map(plan.hosts.map((h, i) => [h.name, namespaces[i]!]));
      const serverNs = nsOf.get(plan.server.host)!;
      const linkPlans = plan.hosts.slice(1).map((h, i) => {
        const groupCidrs = plan.groups.filter((g) => g.host === h.name).map((g, k) => {
          const cidr = addr(i + 1, GROUP_HOST_BASE + k);
          addresses[`clients.${g.name}`] = cidr.split("/")[0]!;
          return cidr;
        });
        const a = { ns: serverNs, ifname: `veth${i + 1}`, cidr: addr(i + 1, 1) };
        const b = {
          ns: nsOf.get(h.name)!,
          ifname: "veth0",
          cidr: addr(i + 1, 2),
          extra: groupCidrs,
        };
        addresses[h.name] = Link.address(b);
        if (i === 0) addresses[plan.server.host] = Link.address(a);
        return { a, b };
      });

      const serverAddress = addresses[plan.server.host]!;
      const serverOptions = {
        waitToListen: true,
        ...(plan.server.maxOpenFiles === undefined
          ? {}
          : { maxOpenFiles: plan.server.maxOpenFiles }),
      };
      const server = new ManagedProcess(
        `the server in "${serverNs.name}"`,
        serverNs.wrap(programArgv("listen_server.ts", [
          String(plan.family),
          serverAddress,
          String(plan.server.port),
          String(plan.server.backlog),
          JSON.stringify(serverOptions),
        ])),
      );
      processes.push(server);
      const clients = plan.groups.map((g) => {
        const ns = nsOf.get(g.host)!;
        const spec: ClientGroupSpec = {
          family: plan.family,
          address: serverAddress,
          port: plan.server.port,
          localAddress: addresses[`clients.${g.name}`]!,
          count: g.count,
          intervalMs: g.intervalMs,
          then: g.then,
          deadlineMs: g.deadlineMs,
        };
        const p = new ManagedProcess(
          `client group "${g.name}" in "${ns.name}"`,
          ns.wrap(programArgv("client_group.ts", [JSON.stringify(spec)])),
        );
        processes.push(p);
        return p;
      });

      const wireRules = new Map<string, WireRule & { host: string }>();
      for (const r of plan.rules) {
        const side = r.host === plan.server.host ? "server" : "client";
        const rule: WireRule & { host: string } = {
          name: r.name,
          host: r.host,
          direction: r.direction,
          packets: r.packets,
          port: plan.server.port,
          side,
          family: plan.family,
        };
        if (r.group !== undefined) rule.clientAddress = addresses[`clients.${r.group}`]!;
        wireRules.set(r.name, rule);
        rules[r.name] = { host: r.host, nft: nftRuleText(rule), dropped: 0 };
      }
      const build: Promise<unknown>[] = [
        ...linkPlans.map(async ({ a, b }) => links.push(await Link.create(a, b))),
        ...plan.hosts.map(async (h) => {
          sysctls[h.name] = await nsOf.get(h.name)!.sysctls(h.sysctls, RECORDED_SYSCTLS);
        }),
        ...[...new Set(plan.rules.map((r) => r.host))].map(async (host) => {
          const wire = await Wire.create(nsOf.get(host)!);
          wires.set(host, wire);
          for (const r of plan.rules) {
            if (r.host === host && r.initially === "on") await wire.add(wireRules.get(r.name)!);
          }
        }),
        ...plan.capture.map(async (host) => {
          const file = await Capture.tempFile(`${this.prefix}-${seq}-${host}`);
          files.push(file);
          captures.set(
            host,
            await Capture.start(nsOf.get(host)!, {
              port: plan.server.port,
              file,
              ...(signal ? { signal } : {}),
            }),
          );
        }),
      ];
      // Everything is awaited (and so disposable) before a failure is thrown.
      const built = await Promise.allSettled(build);
      const buildFailed = built.find((x) => x.status === "rejected");
      if (buildFailed) throw (buildFailed as PromiseRejectedResult).reason;
      lap("build");

      // The server listens once its namespace is ready; clients wait for "go".
      await server.waitForEvent("loaded", READY_TIMEOUT_MS, signal);
      await server.send({ cmd: "listen" });
      const ready = await server.waitForEvent("ready", READY_TIMEOUT_MS, signal);
      if (!readListen(serverNs, plan.server.port, plan.family)) {
        throw new Error(
          `The server reported ready but "${serverNs.name}" has no LISTEN socket on port ${plan.server.port}`,
        );
      }
      lap("server");
      await Promise.all(clients.map((c) => c.waitForEvent("ready", READY_TIMEOUT_MS, signal)));
      const sampler = stack.use(
        new Sampler(
          plan.hosts.map((h) => ({ name: h.name, ns: nsOf.get(h.name)! })),
          {
            serverHost: plan.server.host,
            port: plan.server.port,
            family: plan.family,
            metrics: plan.metrics,
          },
        ),
      );
      sampler.serverPid = typeof ready.pid === "number" ? ready.pid : server.pid;
      sampler.groupAddresses = Object.fromEntries(
        plan.groups.map((g) => [g.name, addresses[`clients.${g.name}`]!]),
      );
      await sampler.baseline();
      const t0 = performance.now();
      const originMs = performance.timeOrigin + t0;
      originEpochMs = Math.round(originMs * 1000) / 1000;
      const since = () => round(performance.now() - t0);
      const timeline = new Timeline(plan.timeline);
      const stepStarted = new Set(
        plan.timeline.flatMap((s) => s.action.kind === "startGroup" ? [s.action.group] : []),
      );
      await Promise.all(
        clients.map((c, i) =>
          stepStarted.has(plan.groups[i]!.name) ? undefined : c.send({ cmd: "go" })
        ),
      );
      lap("clients");

      let serverStopped = false;
      const groupIndex = (name: string) => plan.groups.findIndex((g) => g.name === name);
      const perform = async (action: PlannedAction): Promise<string | undefined> => {
        switch (action.kind) {
          case "startGroup":
            await clients[groupIndex(action.group)]!.send({ cmd: "go" });
            return;
          case "closeGroup":
            await clients[groupIndex(action.group)]!.send({ cmd: "close" });
            return;
          case "addRule": {
            const rule = wireRules.get(action.rule)!;
            await wires.get(rule.host)!.add(rule);
            return;
          }
          case "removeRule":
            await wires.get(wireRules.get(action.rule)!.host)!.remove(action.rule);
            return;
          case "sysctl": {
            const back = await nsOf.get(action.host)!.sysctls({ [action.name]: action.value });
            return `${action.name} = ${back[action.name]}`;
          }
          case "accept":
            await server.send({ cmd: "accept", n: action.n });
            return;
          case "acceptPolicy":
            await server.send({ cmd: "policy", policy: serverPolicy(action.policy) });
            return;
          case "stopServer":
            serverStopped = true;
            if (action.how === "SIGKILL") server.kill("SIGKILL");
            else await server.send({ cmd: "exit" });
            return;
        }
      };

      // Observe until every settled expectation has held and every step happened, one check
      // fails for good, or the window ends.
      const trackers = plan.expectations.map((e) => new CheckTracker(e));
      const tallies = plan.groups.map((g) => new GroupTally(g.name, g.count));
      const clientValues = () => {
        tallies.forEach((t, i) => t.update(clients[i]!.events));
        return Object.assign({}, ...tallies.map((t) => t.metrics(plan.metrics)));
      };
      const launched = () => tallies.every((t) => t.launched);
      for (let tick = 0;; tick++) {
        signal?.throwIfAborted();
        if (serverStopped && server.exited) sampler.serverPid = 0;
        const hostValues = await sampler.sample();
        const values: Record<string, number> = { ...hostValues, ...clientValues() };
        const sample = { t: since(), values };
        samples.push(sample);
        for (const step of timeline.due(sample.t, values)) {
          const atMs = since();
          const result = await perform(step.action);
          timeline.done(step.name, atMs);
          steps.push({
            name: step.name,
            action: describeAction(step.action),
            atMs,
            ...(result === undefined ? {} : { result }),
          });
        }
        const armed = launched();
        for (const tr of trackers) tr.update(sample, armed);
        const settled = trackers.filter((tr) => tr.plan.over === "settled");
        const done = timeline.pending.length === 0 &&
          (settled.length > 0 ? settled.every((tr) => tr.passedEarly) : false);
        const broken = trackers.some((tr) => tr.decided && !tr.passedEarly);
        if (sample.t >= plan.observe.windowMs && timeline.pending.length) {
          const step = timeline.pending[0]!;
          const why = timeline.whyPending(step, plan.observe.windowMs);
          throw new Error(
            step.action.kind === "startGroup"
              ? `Client group "${step.action.group}" never started: ${why}`
              : `Step "${step.name}" never happened: ${why}`,
          );
        }
        if (done || broken || sample.t >= plan.observe.windowMs) break;
        for (const c of clients) {
          if (c.exited) throw new Error(`The ${c.label} exited during the observation`);
        }
        if (server.exited && !serverStopped) {
          throw new Error(`The ${server.label} exited during the observation`);
        }
        const next = (tick + 1) * plan.observe.intervalMs - (performance.now() - t0);
        if (next > 0) await delay(next, signal);
      }
      lap("observe");

      checks = trackers.map((tr) => tr.result());
      connections = tallies.flatMap((t, i) => {
        t.update(clients[i]!.events);
        return t.records();
      });
      for (const [host, capture] of captures) {
        packets[host] = packetTimelines(await capture.stop(), {
          serverPort: plan.server.port,
          originMs,
        });
        const reportDir = this.#options.reportDir;
        if (reportDir !== undefined && options.stem !== undefined) {
          const relative = `pcaps/${options.stem}-${host}.pcap`;
          const target = join(reportDir, relative);
          await Deno.mkdir(dirname(target), { recursive: true });
          await Deno.copyFile(capture.file, target);
          await Deno.chmod(target, 0o644); // the temp file is 0600; a report is for sharing
          pcaps[host] = relative;
        }
      }
      for (const e of plan.packetExpectations) {
        const group = e.group === undefined ? undefined : addresses[`clients.${e.group}`];
        checks.push(checkPackets(e, packets[e.host] ?? [], group));
      }
      for (const [host, wire] of wires) {
        for (const [name, n] of Object.entries(await wire.dropped())) {
          if (rules[name]?.host === host) rules[name]!.dropped = n;
        }
      }
      lap("collect");
    } catch (err) {
      error = err;
    }
    try {
      await stack.disposeAsync();
    } catch (cleanupError) {
      error = error === undefined
        ? cleanupError
        : new SuppressedError(cleanupError, error, "Cleanup failed after an error");
    }
    lap("teardown");
    if (error !== undefined && (signal?.aborted || isProgrammingError(error))) throw error;
    const result: RunResult = {
      params: plan.params,
      mode: plan.mode,
      sysctls,
      addresses,
      passed: error === undefined && checks.every((c) => c.passed),
      durationMs: Math.round(performance.now() - t.start),
      phases,
      observed: summarize(samples),
      checks,
      samples,
      connections,
      timeline: steps,
      rules,
      packets,
    };
    if (originEpochMs !== undefined) result.originEpochMs = originEpochMs;
    if (Object.keys(pcaps).length) result.pcaps = pcaps;
    if (error !== undefined) result.error = error instanceof Error ? error.message : String(error);
    return result;
  }
}

/** Client groups' addresses on their link start at this host number (.10, .11, …). */
const GROUP_HOST_BASE = 10;

/** The accept policy in the server program's terms. */
function serverPolicy(policy: AcceptPolicy): unknown {
  if (policy === "never") return "never";
  if (policy === "all") return { kind: "all" };
  if ("batch" in policy) return { kind: "batch", n: policy.batch, everyMs: policy.everyMs };
  return { kind: "rate", perSecond: policy.perSecond };
}

function isProgrammingError(err: unknown): boolean {
  return err instanceof TypeError || err instanceof ReferenceError || err instanceof SyntaxError;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Disposes in parallel; every failure is kept (one error, or an AggregateError). */
async function disposeAll(resources: readonly AsyncDisposable[]): Promise<void> {
  const results = await Promise.allSettled(resources.map((r) => r[Symbol.asyncDispose]()));
  const errors = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, "Cannot remove several lab resources");
}

/** Each metric's last and highest value. */
export function summarize(
  samples: readonly Sample[],
): Record<string, { final: number; peak: number }> {
  const out: Record<string, { final: number; peak: number }> = {};
  for (const s of samples) {
    for (const [k, v] of Object.entries(s.values)) {
      const o = out[k] ??= { final: v, peak: v };
      o.final = v;
      o.peak = Math.max(o.peak, v);
    }
  }
  return out;
}

/** A claim rule's view of a run. */
export function evidenceOf<P>(run: RunResult): RunEvidence<P> {
  return {
    params: run.params as P,
    passed: run.passed,
    checks: run.checks,
    sysctls: run.sysctls,
    connections: run.connections,
    value(metric, which = "final") {
      const o = run.observed[metric];
      if (o) return o[which];
      // An outcome (connect.<ERRNO>, after.<result>) no connection of a group had is 0.
      const outcome = /^clients\.([^.]+)\.(connect|after)\.[^.]+$/.exec(metric);
      if (outcome && `clients.${outcome[1]}.launched` in run.observed) return 0;
      throw new RangeError(`Metric "${metric}" was not observed in this run`);
    },
    check(name) {
      const c = run.checks.find((x) => x.name === name);
      if (!c) {
        throw new RangeError(
          `No check named "${name}" (checks: ${run.checks.map((x) => x.name).join(", ")})`,
        );
      }
      return c;
    },
    mode: run.mode,
    stepAt(name) {
      const s = run.timeline.find((x) => x.name === name);
      if (!s) {
        throw new RangeError(
          `Step "${name}" did not happen (steps: ${run.timeline.map((x) => x.name).join(", ")})`,
        );
      }
      return s.atMs;
    },
    packets(q) {
      const address = q.group === undefined ? undefined : run.addresses[`clients.${q.group}`];
      return connectionsOf(run.packets[q.host] ?? [], address).map((c) =>
        c.events.filter((e) => e.kind === q.kind && e.dir === (q.from === "client" ? "in" : "out"))
          .map((e) => e.t)
      );
    },
    series(metric) {
      return run.samples.flatMap((s) => metric in s.values ? [[s.t, s.values[metric]!]] : []);
    },
  };
}

export type { ClaimDecision };
