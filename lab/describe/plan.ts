/**
 * Planning: a validated definition's matrix resolved into one
 * {@linkcode RunPlan} per point. Every value given as a function of the
 * matrix point is resolved and checked here, once (constants were checked by
 * `defineExperiment`); every metric name is parsed once. A wrong value fails
 * before any namespace exists, naming the field and the matrix point.
 * @module
 */
import { ExperimentDefinitionError } from "../base/errors.ts";
import { didYouMean } from "../base/suggest.ts";
import type { RunMode } from "../vocabulary.ts";
import {
  acceptPolicy,
  type BOUND_FIELDS,
  describe,
  fail,
  intervalList,
  MAX_ARRIVAL_RATE,
  MAX_COUNT,
  MAX_REPLY_BYTES,
  MAX_WINDOW_MS,
  requireBacklog,
  requireInt,
} from "./_checks.ts";
import { arrivalCount, type ArrivalPlan } from "./arrivals.ts";
import { normalizeShape, shapeProblem, shapes } from "./link_shape.ts";
import { defaultMetrics, type Metric, parseMetric } from "./metric.ts";
import type {
  FollowUpSpec,
  PlannedAction,
  PlannedExpectation,
  PlannedExperiment,
  PlannedGroup,
  PlannedLink,
  PlannedPacketExpectation,
  PlannedRule,
  PlannedStep,
  RunPlan,
  SkippedPoint,
} from "./run_plan.ts";
import { EXCLUSIVE_CONNECTIONS } from "./run_plan.ts";
import {
  hasSysctl,
  isTimingLimited,
  type KernelFacts,
  stretchedWindowMs,
  unprobedKernel,
} from "./kernel.ts";
import type {
  ArrivalsDefinition,
  ExperimentDefinition,
  FollowUp,
  Matrix,
  Param,
  ParamsOf,
  ParamValue,
  TimelineStep,
} from "./types.ts";

/** Options of {@linkcode planRuns} and {@linkcode planExperiment}. */
export interface PlanOptions {
  /** Plan the faithful matrix (the kernel's default timers) where the experiment has one. */
  faithful?: boolean;
  /**
   * What-ifs (`--set name=value,…`): matrix parameters whose values replace
   * the definition's (and the faithful matrix's) for this run. Values may be
   * given as text; each is read as the type of the parameter's own values.
   * Every name must be a parameter of the experiment.
   */
  set?: Readonly<Record<string, readonly ParamValue[]>>;
  /**
   * The kernel the runs are for (probed by `Lab.run()`); default
   * {@linkcode unprobedKernel}, which assumes every sysctl exists.
   */
  kernel?: KernelFacts;
}

/** A what-if as the command line writes it: `backlog=0,1000`. */
export function overrideText(set: Readonly<Record<string, readonly ParamValue[]>>): string {
  return Object.entries(set).map(([k, vs]) => `${k}=${vs.join(",")}`).join(" ");
}

/**
 * The values `set` gives the experiment's parameters, each read as the type
 * of the parameter's own values (a number, `true`/`false`, or one of the
 * strings it lists).
 *
 * @throws {ExperimentDefinitionError} for a name that is no parameter (with
 *   did-you-mean) or a value of the wrong type, naming `matrix.<name>`.
 */
export function resolveOverrides(
  def: ExperimentDefinition,
  set: Readonly<Record<string, readonly ParamValue[]>>,
): Record<string, ParamValue[]> {
  const params = Object.keys(def.matrix ?? {});
  const out: Record<string, ParamValue[]> = {};
  for (const [name, values] of Object.entries(set)) {
    const own = [...(def.matrix?.[name] ?? []), ...(def.faithfulMatrix?.[name] ?? [])];
    if (!params.includes(name)) {
      fail(
        `matrix.${name}`,
        `--set ${name}: the experiment has no parameter "${name}"${didYouMean(name, params)} (${
          params.length ? `parameters: ${params.join(", ")}` : "it has no matrix"
        })`,
      );
    }
    if (values.length === 0) fail(`matrix.${name}`, `--set ${name}: give at least one value`);
    const kind = typeof own[0];
    out[name] = values.map((raw) => {
      const text = String(raw);
      const listed = [...new Set(own)].join(", ");
      const bad = (what: string): never =>
        fail(`matrix.${name}`, `--set ${name}=${text}: expected ${what}`);
      if (kind === "number") {
        const n = typeof raw === "number"
          ? raw
          : /^\s*-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(text)
          ? Number(text)
          : NaN;
        return Number.isFinite(n) ? n : bad(`a number, like the matrix's values (${listed})`);
      }
      if (kind === "boolean") {
        if (raw === true || raw === "true") return true;
        if (raw === false || raw === "false") return false;
        return bad(`true or false, like the matrix's values (${listed})`);
      }
      if (!own.includes(text)) {
        // A string parameter is an enumeration its functions switch on: only its own values.
        return bad(`one of the matrix's values (${listed})${didYouMean(text, own.map(String))}`);
      }
      return text;
    });
  }
  return out;
}

/** The metrics a definition names: `observe.metrics`, then its expectations', each once. */
export function namedMetrics(def: ExperimentDefinition): string[] {
  return [...new Set([...(def.observe.metrics ?? []), ...(def.expect ?? []).map((e) => e.metric)])];
}

/**
 * The most matrix points one experiment may have. Each point is a run of its
 * own (about 0.1 s of namespace setup and teardown plus its observation
 * window, a chart and a section of the report): 1,000 points of a 1 s window
 * take about 2 min at 8 jobs and write 2,000 chart files, the most a report
 * can still be read through; the 46 points of the default run are far below.
 * A matrix past it is nearly always a sweep written by mistake (two long
 * ranges multiplied).
 */
export const MAX_MATRIX_POINTS = 1000;

/** Every combination of a matrix's values, in declaration order. */
export function matrixPoints(matrix: Matrix | undefined): Record<string, ParamValue>[] {
  let points: Record<string, ParamValue>[] = [{}];
  for (const [k, values] of Object.entries(matrix ?? {})) {
    points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  }
  return points;
}

/** The mode a definition's runs have under `options`. */
export function modeOf(def: ExperimentDefinition, options: PlanOptions = {}): RunMode {
  if (def.faithfulMatrix === undefined) return "default";
  return options.faithful ? "faithful" : "fast";
}

/**
 * Plans an experiment for one mode and one kernel: its definition, file,
 * mode, the metrics it names, the what-ifs applied, one plan per matrix point
 * the kernel can run, and the points it skips with the reason its `requires`
 * gave.
 */
export function planExperiment<M extends Matrix>(
  def: ExperimentDefinition<M>,
  options: PlanOptions & { file?: string } = {},
): PlannedExperiment {
  const kernel = options.kernel ?? unprobedKernel();
  const skipped: SkippedPoint[] = [];
  const d = def as unknown as ExperimentDefinition;
  const overrides = options.set && Object.keys(options.set).length
    ? resolveOverrides(d, options.set)
    : undefined;
  let plans: RunPlan[];
  try {
    plans = planRuns(def, { ...options, kernel }, skipped);
  } catch (err) {
    // Planning for a probed kernel fails after loading: name the file as loading would.
    if (err instanceof ExperimentDefinitionError && !err.file && options.file !== undefined) {
      throw new ExperimentDefinitionError(err.field, err.detail, {
        file: options.file,
        subject: err.subject,
      });
    }
    throw err;
  }
  return {
    definition: d,
    ...(options.file === undefined ? {} : { file: options.file }),
    mode: modeOf(d, options),
    metrics: namedMetrics(d),
    ...(overrides === undefined ? {} : { overrides }),
    plans,
    kernel,
    skipped,
  };
}

/**
 * Resolves every matrix point of a validated definition and checks the values
 * that depend on the parameters.
 *
 * @throws {ExperimentDefinitionError} with the field and the matrix point.
 */
export function planRuns<M extends Matrix>(
  def: ExperimentDefinition<M>,
  options: PlanOptions = {},
  skipped: SkippedPoint[] = [],
): RunPlan[] {
  const kernel = options.kernel ?? unprobedKernel();
  const mode = modeOf(def as unknown as ExperimentDefinition, options);
  const overrides = options.set && Object.keys(options.set).length
    ? resolveOverrides(def as unknown as ExperimentDefinition, options.set)
    : {};
  const matrix = {
    ...def.matrix,
    ...(mode === "faithful" ? def.faithfulMatrix : {}),
    ...overrides,
  } as Matrix;
  const sizes = Object.entries(matrix).map(([k, v]) => [k, v.length] as const);
  const total = sizes.reduce((n, [, len]) => n * len, 1);
  if (total > MAX_MATRIX_POINTS) {
    fail(
      Object.keys(overrides).length ? "matrix" : mode === "faithful" ? "faithfulMatrix" : "matrix",
      `${total.toLocaleString("en-US")} points (${
        sizes.map(([k, len]) => `${k}: ${len}`).join(" × ")
      }) is more than the ${
        MAX_MATRIX_POINTS.toLocaleString("en-US")
      } one experiment may have: split the sweep into experiments, or take fewer values${
        Object.keys(overrides).length ? ` (with --set ${overrideText(overrides)})` : ""
      }`,
    );
  }
  const points = matrixPoints(matrix);
  const whatIf = Object.keys(overrides).length ? `, set by --set ${overrideText(overrides)}` : "";
  const parsed = new Map<string, Metric>();
  const metric = (name: string) => {
    let m = parsed.get(name);
    if (m === undefined) parsed.set(name, m = parseMetric(name));
    return m;
  };
  const runnable = points.flatMap((params, index) => {
    const reason = def.requires === undefined
      ? undefined
      : resolve(def.requires as unknown as Param<ParamsOf<M>, string | undefined>, {
        params: params as ParamsOf<M>,
        kernel,
      }, "requires");
    if (reason !== undefined && (typeof reason !== "string" || reason.trim() === "")) {
      fail(
        "requires",
        `expected a reason (a non-empty string) or undefined, got ${describe(reason)}`,
      );
    }
    if (reason !== undefined) {
      skipped.push({ params, index, reason });
      return [];
    }
    return [{ params, index }];
  });
  return runnable.map(({ params, index }) => {
    const where = Object.keys(params).length ? ` (at ${JSON.stringify(params)}${whatIf})` : "";
    try {
      return planPoint(def, { params: params as ParamsOf<M>, kernel }, {
        mode,
        index,
        of: points.length,
        metric,
      });
    } catch (err) {
      if (err instanceof ExperimentDefinitionError && where) {
        throw new ExperimentDefinitionError(err.field, err.detail + where);
      }
      throw err;
    }
  });
}

function planPoint<M extends Matrix>(
  def: ExperimentDefinition<M>,
  at: At<ParamsOf<M>>,
  point: { mode: RunMode; index: number; of: number; metric: (name: string) => Metric },
): RunPlan {
  const p = at.params;
  const serverHost = def.server.host;
  const hostOrder = [serverHost, ...Object.keys(def.hosts).filter((h) => h !== serverHost)];
  const hosts = hostOrder.map((name) => {
    const sysctls: Record<string, string> = {};
    for (const [k, v] of Object.entries(def.hosts[name]?.sysctls ?? {})) {
      const field = `hosts.${name}.sysctls.${k}`;
      const value = checked(v, at, field, optionalSysctlValue);
      if (value === undefined) continue;
      requireSysctl(at.kernel, k, field);
      sysctls[k] = String(value);
    }
    return { name, sysctls };
  });
  const groups = def.clients.map((g, i): PlannedGroup => ({
    name: g.name,
    host: g.host,
    ...(g.arrivals === undefined
      ? {
        count: checked(g.count ?? 0, at, `clients[${i}].count`, int(0, MAX_COUNT)),
        intervalMs: g.start === undefined || g.start === "together"
          ? 0
          : "perSecond" in g.start
          ? 1000 / g.start.perSecond
          : g.start.intervalMs,
      }
      : planArrivals(g.arrivals, at, `clients[${i}].arrivals`)),
    then: followUpSpec(g.afterConnect, at, `clients[${i}].afterConnect`),
    deadlineMs: g.deadlineMs === undefined
      ? 0
      : checked(g.deadlineMs, at, `clients[${i}].deadlineMs`, int(1, MAX_WINDOW_MS)),
    ...(g.startWhen === undefined ? {} : {
      startWhen: {
        metric: g.startWhen.metric,
        ...resolveBounds(g.startWhen, at, `clients[${i}].startWhen`),
      },
    }),
  }));
  const expectations = (def.expect ?? []).map((e, i): PlannedExpectation => ({
    name: e.name,
    metric: e.metric,
    over: e.over ?? "settled",
    ...resolveBounds(e, at, `expect[${i}]`),
    stableMs: e.stableMs ?? 3 * def.observe.intervalMs,
    ...(e.timing === true && isTimingLimited(at.kernel) ? { timingLimited: true } : {}),
  }));
  const timeline = planTimeline(def, at, groups);
  const acceptAfterMs = checked(
    def.server.acceptAfterMs ?? 0,
    at,
    "server.acceptAfterMs",
    int(0, MAX_WINDOW_MS),
  );
  const accept = checked(def.server.accept ?? "never", at, "server.accept", acceptPolicy);
  if (accept !== "never") {
    timeline.push({
      name: "server starts accepting",
      atMs: acceptAfterMs,
      delayMs: 0,
      action: { kind: "acceptPolicy", policy: accept },
    });
  }
  const serve = def.server.serve === undefined ? undefined : {
    replyBytes: checked(
      def.server.serve.replyBytes,
      at,
      "server.serve.replyBytes",
      int(1, MAX_REPLY_BYTES),
    ),
  };
  const maxOpenFiles = def.server.maxOpenFiles === undefined
    ? undefined
    : checked(def.server.maxOpenFiles, at, "server.maxOpenFiles", int(8, 1 << 20));
  const rules = Object.entries(def.rules ?? {}).map(([name, r]): PlannedRule => ({
    name,
    host: r.host,
    direction: r.direction,
    packets: [...(typeof r.packets === "string" ? [r.packets] : r.packets)],
    ...(r.group === undefined ? {} : { group: r.group }),
    initially: r.initially ?? "on",
  }));
  const exclusive = def.exclusive === true ||
    groups.reduce((n, g) => n + g.count, 0) >= EXCLUSIVE_CONNECTIONS;
  const metricNames = new Set([
    ...defaultMetrics(hostOrder, serverHost, groups.map((g) => g.name)),
    ...(def.observe.metrics ?? []),
    ...expectations.map((e) => e.metric),
    ...timeline.flatMap((x) => x.when ? [x.when.metric] : []),
  ]);
  return {
    params: p as Record<string, ParamValue>,
    experiment: def.id,
    index: point.index,
    of: point.of,
    mode: point.mode,
    family: def.family ?? 4,
    hosts,
    server: {
      host: serverHost,
      port: def.server.port ?? 8080,
      backlog: checked(def.server.backlog, at, "server.backlog", requireBacklog),
      accept,
      acceptAfterMs,
      ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }),
      ...(serve === undefined ? {} : { serve }),
    },
    links: planLinks(def, at, hostOrder),
    groups,
    observe: {
      intervalMs: def.observe.intervalMs,
      windowMs: stretchedWindowMs(def.observe.windowMs, at.kernel),
    },
    expectations,
    metrics: [...metricNames].map(point.metric),
    rules,
    timeline,
    capture: [...new Set(def.capture ?? [])],
    packetExpectations: (def.expectPackets ?? []).map((e, i) => {
      const f = `expectPackets[${i}]`;
      const planned: PlannedPacketExpectation = {
        name: e.name,
        host: e.host,
        kind: e.kind,
        from: e.from,
        toleranceMs: e.toleranceMs ?? 0,
        ...(e.timing === true && isTimingLimited(at.kernel) ? { timingLimited: true } : {}),
      };
      if (e.group !== undefined) planned.group = e.group;
      if (e.count !== undefined) planned.count = resolveBounds(e.count, at, `${f}.count`);
      if (e.intervalsMs !== undefined) {
        planned.intervalsMs = typeof e.intervalsMs === "function"
          ? intervalList(resolve(e.intervalsMs, at, `${f}.intervalsMs`), `${f}.intervalsMs`)
          : [...e.intervalsMs];
      }
      return planned;
    }),
    exclusive,
    heavy: !exclusive && groups.some((g) => g.arrivals !== undefined && g.count > 0),
  };
}

/** A sustained group's arrivals at this point: its plan, its count and its mean gap. */
function planArrivals<P>(
  a: ArrivalsDefinition<P>,
  at: At<P>,
  f: string,
): { count: number; intervalMs: number; arrivals: ArrivalPlan } {
  const arrivals: ArrivalPlan = {
    perSecond: checked(a.perSecond, at, `${f}.perSecond`, int(1, MAX_ARRIVAL_RATE)),
    forMs: checked(a.forMs, at, `${f}.forMs`, int(1, MAX_WINDOW_MS)),
    process: a.process ?? "fixed",
    seed: a.seed ?? 1,
  };
  const count = arrivalCount(arrivals);
  if (count > MAX_COUNT) {
    fail(
      f,
      `${arrivals.perSecond}/s for ${arrivals.forMs} ms opens ${count} connections, more than ${MAX_COUNT}: lower the rate or the duration`,
    );
  }
  return { count, intervalMs: 1000 / arrivals.perSecond, arrivals };
}

/** The links at this point, every value resolved and checked; unshaped directions left out. */
function planLinks<M extends Matrix>(
  def: ExperimentDefinition<M>,
  at: At<ParamsOf<M>>,
  hostOrder: readonly string[],
): PlannedLink[] {
  const links: PlannedLink[] = [];
  for (const host of hostOrder) {
    const link = def.links?.[host];
    if (link === undefined) continue;
    const planned: PlannedLink = { host };
    for (const direction of ["toServer", "toClient"] as const) {
      const declared = link[direction];
      if (declared === undefined) continue;
      const f = `links.${host}.${direction}`;
      const values: Record<string, number> = {};
      for (const [k, v] of Object.entries(declared)) {
        values[k] = checked(v, at, `${f}.${k}`, (x, field) => boundValue(x, field));
      }
      const problem = shapeProblem(values);
      if (problem) fail(problem.field ? `${f}.${problem.field}` : f, problem.detail);
      const shape = normalizeShape(values, f);
      if (shapes(shape)) planned[direction] = shape;
    }
    if (planned.toServer || planned.toClient) links.push(planned);
  }
  return links;
}

/** The definition's steps present at this point, then one per `startWhen`. */
function planTimeline<P>(
  def: { timeline?: TimelineStep<P>[] },
  at: At<P>,
  groups: readonly PlannedGroup[],
): PlannedStep[] {
  const present = (def.timeline ?? []).flatMap((x, i) =>
    x.only === undefined || resolve(x.only, at, `timeline[${i}].only`) ? [{ x, i }] : []
  );
  const timeline = present.map(({ x, i }) => planStep(x, at, `timeline[${i}]`));
  for (const s of timeline) {
    if (s.afterStep !== undefined && !timeline.some((o) => o.name === s.afterStep)) {
      fail(
        "timeline",
        `step "${s.name}" follows "${s.afterStep}", which its "only" leaves out at this point`,
      );
    }
  }
  for (const g of groups) {
    if (g.startWhen) {
      timeline.push({
        name: `start ${g.name}`,
        atMs: 0,
        when: g.startWhen,
        delayMs: 0,
        action: { kind: "startGroup", group: g.name },
      });
    }
  }
  return timeline;
}

function planStep<P>(x: TimelineStep<P>, at: At<P>, f: string): PlannedStep {
  const ms = (v: Param<P, number> | undefined, field: string) =>
    v === undefined ? 0 : checked(v, at, field, int(0, MAX_WINDOW_MS));
  const a = x.do;
  let action: PlannedAction;
  if ("startGroup" in a) action = { kind: "startGroup", group: a.startGroup };
  else if ("closeGroup" in a) action = { kind: "closeGroup", group: a.closeGroup };
  else if ("addRule" in a) action = { kind: "addRule", rule: a.addRule };
  else if ("removeRule" in a) action = { kind: "removeRule", rule: a.removeRule };
  else if ("sysctl" in a) {
    const value = checked(a.sysctl.value, at, `${f}.do.sysctl.value`, sysctlValue);
    requireSysctl(at.kernel, a.sysctl.name, `${f}.do.sysctl.name`);
    action = { kind: "sysctl", host: a.sysctl.host, name: a.sysctl.name, value: String(value) };
  } else if ("accept" in a) {
    action = { kind: "accept", n: checked(a.accept, at, `${f}.do.accept`, int(1, MAX_COUNT)) };
  } else if ("acceptPolicy" in a) action = { kind: "acceptPolicy", policy: a.acceptPolicy };
  else action = { kind: "stopServer", how: a.stopServer };
  return {
    name: x.name,
    atMs: ms(x.at, `${f}.at`),
    ...(x.when === undefined ? {} : {
      when: { metric: x.when.metric, ...resolveBounds(x.when, at, `${f}.when`) },
    }),
    ...(x.afterStep === undefined ? {} : { afterStep: x.afterStep }),
    delayMs: ms(x.delayMs, `${f}.delayMs`),
    action,
  };
}

/** The client program's form of a (validated) follow-up, its read timeout resolved. */
function followUpSpec<P>(f: FollowUp<P> | undefined, at: At<P>, field: string): FollowUpSpec {
  if (f === undefined || f === "nothing") return { kind: "nothing" };
  const bytes = "send" in f ? f.send : undefined;
  const timeoutMs = "read" in f
    ? checked(f.read.timeoutMs, at, `${field}.read.timeoutMs`, int(1, MAX_WINDOW_MS))
    : undefined;
  const close = f.close === true ? { close: true as const } : {};
  if (bytes !== undefined && timeoutMs !== undefined) {
    return { kind: "sendRead", bytes, timeoutMs, ...close };
  }
  if (bytes !== undefined) return { kind: "send", bytes, ...close };
  return { kind: "read", timeoutMs: timeoutMs!, ...close };
}

/** Resolves equals / atLeast / atMost at a matrix point into [min, max]. */
function resolveBounds<P>(
  x: { equals?: Param<P, number>; atLeast?: Param<P, number>; atMost?: Param<P, number> },
  at: At<P>,
  f: string,
): { min: number; max: number } {
  const num = (k: (typeof BOUND_FIELDS)[number]) => {
    const v = x[k];
    // A function may return ±Infinity for "no bound at this point".
    return v === undefined ? undefined : checked(v, at, `${f}.${k}`, boundValue);
  };
  const eq = num("equals");
  const min = eq ?? num("atLeast") ?? -Infinity;
  const max = eq ?? num("atMost") ?? Infinity;
  if (min > max) fail(f, `atLeast ${min} is above atMost ${max}`);
  return { min, max };
}

/**
 * A value at a matrix point: a function's result is checked now; a constant
 * was checked by `defineExperiment` and is taken as it is.
 */
function checked<P, T>(
  v: Param<P, T>,
  at: At<P>,
  field: string,
  check: (value: unknown, field: string) => T,
): T {
  return typeof v === "function" ? check(resolve(v, at, field), field) : v;
}

/** A matrix point and the kernel it is planned for: what function values are given. */
interface At<P> {
  params: P;
  kernel: KernelFacts;
}

function resolve<P, T>(v: Param<P, T>, at: At<P>, field: string): T {
  if (typeof v !== "function") return v;
  try {
    return (v as (p: P, k: KernelFacts) => T)(at.params, at.kernel);
  } catch (err) {
    fail(
      field,
      `the function threw for ${JSON.stringify(at.params)}${
        at.kernel.probed ? ` on Linux ${at.kernel.release}` : ""
      }: ${err instanceof Error ? err.message : err}`,
    );
  }
}

function int(min: number, max: number): (v: unknown, field: string) => number {
  return (v, field) => requireInt(v, field, min, max);
}

function sysctlValue(v: unknown, field: string): number | string {
  if (typeof v !== "number" && typeof v !== "string") {
    fail(field, `expected a number or string, got ${describe(v)}`);
  }
  return v;
}

/**
 * Fails for a sysctl the kernel's fresh namespace lacks (only when the
 * facts were probed), saying how to set it only where it exists.
 */
function requireSysctl(kernel: KernelFacts, name: string, field: string): void {
  if (hasSysctl(kernel, name)) return;
  fail(
    field,
    `a network namespace of this kernel has no sysctl "${name}"${
      didYouMean(name, Object.keys(kernel.sysctls))
    } (this is Linux ${kernel.release}; only per-namespace net.* sysctls can be set); to set it only where it exists, give a function: (p, k) => hasSysctl(k, "${name}") ? value : undefined, or skip the point with "requires"`,
  );
}

/** A host sysctl's value: a number or string, or `undefined` (from a function) to leave it alone. */
function optionalSysctlValue(v: unknown, field: string): number | string | undefined {
  return v === undefined ? undefined : sysctlValue(v, field);
}

function boundValue(v: unknown, field: string): number {
  if (typeof v !== "number" || Number.isNaN(v)) {
    fail(field, `expected a number, got ${describe(v)}`);
  }
  return v;
}
