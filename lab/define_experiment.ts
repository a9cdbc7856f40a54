/**
 * The declarative experiment: its types, {@linkcode defineExperiment} (a
 * validating identity function) and {@linkcode planRuns}, which resolves a
 * definition's matrix into concrete runs and validates every value that
 * depends on the parameters, so a wrong definition fails before any
 * namespace exists.
 * @module
 */
import { claimById, CLAIMS } from "./catalogue.ts";
import { ExperimentDefinitionError } from "./errors.ts";
import type { ClaimDecision, RunEvidence } from "./results.ts";
import { didYouMean } from "./_suggest.ts";
import { TCP_STATES } from "./observe/socket_table.ts";
import { KNOWN_COUNTERS } from "./observe/counter_names.ts";

/** A matrix parameter's value. */
export type ParamValue = number | string | boolean;
/** Parameter names and the values each takes. */
export type Matrix = Record<string, readonly ParamValue[]>;
/** One point of a matrix. */
export type ParamsOf<M extends Matrix> = { -readonly [K in keyof M]: M[K][number] };
/** A value, or a function of the matrix point that gives it. */
export type Param<P, T> = T | ((params: P) => T);

/** A network namespace of the experiment. */
export interface HostDefinition<P> {
  /** `net.*` sysctls written inside this host's namespace (never the host's own). */
  sysctls?: Record<string, Param<P, number | string>>;
}

/** When the server calls `accept()`. Only `"never"` for now. */
export type AcceptPolicy = "never";

/** The listening server. */
export interface ServerDefinition<P> {
  /** The host it runs on; every other host is linked to this one. */
  host: string;
  /** TCP port; default 8080. */
  port?: number;
  /** The `backlog` passed verbatim to `listen()`. */
  backlog: Param<P, number>;
  /** Default `"never"`. */
  accept?: AcceptPolicy;
}

/** What a client does once `connect()` returns. */
export type FollowUp =
  | "nothing"
  | { send: number }
  | { read: { timeoutMs: number } }
  | { send: number; read: { timeoutMs: number } };

/** A group of concurrent client connections. */
export interface ClientGroupDefinition<P> {
  /** Names the group in metrics: `clients.<name>.connected`. */
  name: string;
  /** The host (namespace) its connections come from; never the server's host. */
  host: string;
  /** How many connections it opens, 1 to 100 000. */
  count: Param<P, number>;
  /** `"together"` (default): every connect() at once; or one every `intervalMs`. */
  start?: "together" | { intervalMs: number };
  /** Default `"nothing"`. */
  afterConnect?: FollowUp;
  /** Give up on a connection (close it) this long after its connect() began; default never. */
  deadlineMs?: number;
  /**
   * Start this group only once the kernel shows a condition, e.g.
   * `{ metric: "server.ESTABLISHED", atLeast: 3 }`: a full queue, whatever the
   * packet timing. Without it the group starts when the run does.
   */
  startWhen?: StartCondition<P>;
}

/** A condition on one sampled metric (the same metrics as expectations). */
export interface StartCondition<P> {
  /** The metric to watch, e.g. `server.ESTABLISHED`. */
  metric: string;
  /** It must equal this. */
  equals?: Param<P, number>;
  /** It must be at least this. */
  atLeast?: Param<P, number>;
  /** It must be at most this. */
  atMost?: Param<P, number>;
}

/** How the kernel is sampled. */
export interface ObserveDefinition {
  /** Sampling interval. */
  intervalMs: number;
  /** Longest observation; it ends sooner once every `settled` expectation has held. */
  windowMs: number;
}

/** One thing that must be observed. */
export interface Expectation<P> {
  /** Names the check in results and for `RunEvidence.check()`; unique in the experiment. */
  name: string;
  /**
   * What to read: `<host>.<STATE>` (sockets of the port in a TCP state, e.g.
   * `server.SYN_RECV`), `<server host>.recvQ` / `.sendQ` (the LISTEN socket as
   * `ss -ltn` shows it), `<host>.<Counter>` (an `nstat` counter's change since
   * the clients started, e.g. `server.TcpExtListenOverflows`), or
   * `clients.<group>.<outcome>` (`launched`, `connected`, `pending`,
   * `deadline`, `connect.<ERRNO>`, `after.<data|eof|timeout|sent|ERRNO>`).
   */
  metric: string;
  /** The metric must equal this exactly; excludes `atLeast`/`atMost`. */
  equals?: Param<P, number>;
  /** Inclusive lower bound. */
  atLeast?: Param<P, number>;
  /** Inclusive upper bound. */
  atMost?: Param<P, number>;
  /**
   * `settled` (default): holds and stays held for `stableMs` once every client
   * was launched; `always`: holds in every sample from then on; `peak`: the
   * highest value seen satisfies it.
   */
  over?: "settled" | "always" | "peak";
  /** For `settled`: how long it must stay held; default 3 sampling intervals. */
  stableMs?: number;
}

/** Turns an experiment's runs into a verdict on one claim. */
export type ClaimRule<P> = (runs: readonly RunEvidence<P>[]) => ClaimDecision;

/** A complete experiment. */
export interface ExperimentDefinition<M extends Matrix = Matrix> {
  /** kebab-case, unique across experiments. */
  id: string;
  /** One line saying what the experiment shows. */
  title: string;
  /** The hypothesis in a sentence. */
  hypothesis: string;
  /** The catalogue claims it decides, each with its rule. */
  claims: Record<string, ClaimRule<ParamsOf<M>>>;
  /** Parameter sweep: one run per combination. */
  matrix?: M;
  /** IP version; default 4. */
  family?: 4 | 6;
  /**
   * The network namespaces by name (lowercase, not `clients`): at least a server and a client host.
   */
  hosts: Record<string, HostDefinition<ParamsOf<M>>>;
  /** The listening server. */
  server: ServerDefinition<ParamsOf<M>>;
  /** Client groups, all released by the same "go". */
  clients: ClientGroupDefinition<ParamsOf<M>>[];
  /** How often and how long the kernel is sampled. */
  observe: ObserveDefinition;
  /** What must be observed; each becomes a check of every run. */
  expect: Expectation<ParamsOf<M>>[];
}

/** A follow-up in the client program's terms. */
export type FollowUpSpec =
  | { kind: "nothing" }
  | { kind: "send"; bytes: number }
  | { kind: "read"; timeoutMs: number }
  | { kind: "sendRead"; bytes: number; timeoutMs: number };

/** A client group with every value resolved. */
export interface PlannedGroup {
  /** The group's name, as in its definition. */
  name: string;
  /** The host (namespace) its connections come from. */
  host: string;
  /** How many connections it opens. */
  count: number;
  /** Milliseconds between connect() calls; 0: all at once. */
  intervalMs: number;
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
  over: "settled" | "always" | "peak";
  /** Inclusive lower bound; `-Infinity` when there is none. */
  min: number;
  /** Inclusive upper bound; `Infinity` when there is none. */
  max: number;
  /** For `settled`: how long it must hold, in milliseconds (default 3 sampling intervals). */
  stableMs: number;
}

/** One matrix point, ready to run. */
export interface RunPlan {
  /** The matrix point this run resolves. */
  params: Record<string, ParamValue>;
  /** IP version of the run's addresses (default 4). */
  family: 4 | 6;
  /** Hosts in link order: the server host first. */
  hosts: { name: string; sysctls: Record<string, string> }[];
  /** The server with its port (default 8080), backlog and accept policy resolved. */
  server: { host: string; port: number; backlog: number; accept: AcceptPolicy };
  /** Client groups with every value resolved, in definition order. */
  groups: PlannedGroup[];
  /** Sampling interval and window, as defined. */
  observe: ObserveDefinition;
  /** Expectations with their bounds resolved, in definition order. */
  expectations: PlannedExpectation[];
  /** Every metric to sample (expectations' and the default set). */
  metrics: string[];
}

const TOP_FIELDS = [
  "id",
  "title",
  "hypothesis",
  "claims",
  "matrix",
  "family",
  "hosts",
  "server",
  "clients",
  "observe",
  "expect",
];
const HOST_FIELDS = ["sysctls"];
const SERVER_FIELDS = ["host", "port", "backlog", "accept"];
const GROUP_FIELDS = ["name", "host", "count", "start", "afterConnect", "deadlineMs", "startWhen"];
const BOUND_FIELDS = ["equals", "atLeast", "atMost"] as const;
const OBSERVE_FIELDS = ["intervalMs", "windowMs"];
const EXPECT_FIELDS = ["name", "metric", "equals", "atLeast", "atMost", "over", "stableMs"];
const NAME_RE = /^[a-z][a-z0-9_]*$/;
const CLIENT_OUTCOMES = ["launched", "connected", "pending", "deadline"];
const AFTER_RESULTS = ["data", "eof", "timeout", "sent"];
const MAX_WINDOW_MS = 600_000;
const MAX_COUNT = 100_000;

function fail(field: string, detail: string): never {
  throw new ExperimentDefinitionError(field, detail);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function requireObject(
  v: unknown,
  field: string,
  allowed: readonly string[],
): Record<string, unknown> {
  if (!isObject(v)) fail(field, `expected an object, got ${describe(v)}`);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) {
      fail(
        `${field ? field + "." : ""}${key}`,
        `unknown field${didYouMean(key, allowed)} (valid fields: ${allowed.join(", ")})`,
      );
    }
  }
  return v;
}

function requireString(v: unknown, field: string): string {
  if (typeof v !== "string" || !v.trim()) {
    fail(field, `expected a non-empty string, got ${describe(v)}`);
  }
  return v;
}

function requireInt(v: unknown, field: string, min: number, max: number, hint = ""): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    fail(field, `expected an integer from ${min} to ${max}, got ${describe(v)}${hint}`);
  }
  if (v < min || v > max) {
    fail(field, `value ${v} is out of range: expected an integer from ${min} to ${max}${hint}`);
  }
  return v;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return `"${v}"`;
  if (typeof v === "function") return "a function";
  return Array.isArray(v) ? "an array" : typeof v === "object" ? JSON.stringify(v) : String(v);
}

/**
 * Checks a metric name against the experiment's hosts and groups.
 * @returns the metric, unchanged.
 */
export function validateMetric(
  metric: string,
  field: string,
  ctx: { hosts: readonly string[]; serverHost: string; groups: readonly string[] },
): string {
  const parts = metric.split(".");
  const [head, second, ...rest] = parts;
  if (head === "clients") {
    if (second === undefined || !ctx.groups.includes(second)) {
      fail(
        field,
        `unknown client group "${second ?? ""}" in "${metric}"${
          didYouMean(second ?? "", ctx.groups)
        } (groups: ${ctx.groups.join(", ")})`,
      );
    }
    const outcome = rest.join(".");
    if (CLIENT_OUTCOMES.includes(outcome)) return metric;
    const m = /^(connect|after)\.(.+)$/.exec(outcome);
    if (m && (/^E[A-Z0-9]+$/.test(m[2]!) || (m[1] === "after" && AFTER_RESULTS.includes(m[2]!)))) {
      return metric;
    }
    fail(
      field,
      `unknown client outcome "${outcome}" in "${metric}"${
        didYouMean(outcome, [...CLIENT_OUTCOMES, ...AFTER_RESULTS.map((r) => `after.${r}`)])
      } (valid: ${CLIENT_OUTCOMES.join(", ")}, connect.<ERRNO>, after.<${
        AFTER_RESULTS.join("|")
      }|ERRNO>)`,
    );
  }
  if (head === undefined || !ctx.hosts.includes(head)) {
    fail(
      field,
      `unknown host "${head ?? ""}" in "${metric}"${didYouMean(head ?? "", ctx.hosts)} (hosts: ${
        ctx.hosts.join(", ")
      }, or "clients")`,
    );
  }
  const what = [second, ...rest].join(".");
  if (rest.length === 0 && second !== undefined) {
    if ((TCP_STATES as readonly string[]).includes(second)) return metric;
    if (second === "recvQ" || second === "sendQ") {
      if (head !== ctx.serverHost) {
        fail(field, `"${metric}": only the server host "${ctx.serverHost}" has a LISTEN socket`);
      }
      return metric;
    }
    if (KNOWN_COUNTERS.has(second)) return metric;
  }
  const candidates = [...TCP_STATES, "recvQ", "sendQ", ...KNOWN_COUNTERS];
  fail(
    field,
    `unknown metric "${what}" in "${metric}"${
      didYouMean(what.replaceAll("-", "_"), candidates)
    } (valid: a TCP state such as ${
      TCP_STATES.slice(0, 3).join(", ")
    }; recvQ or sendQ; or an nstat counter such as TcpExtListenOverflows)`,
  );
}

/**
 * Validates an experiment's shape and returns it unchanged, typed.
 *
 * @throws {ExperimentDefinitionError} naming the field and what would be valid.
 */
export function defineExperiment<const M extends Matrix = Record<never, never>>(
  definition: ExperimentDefinition<M>,
): ExperimentDefinition<M> {
  const d = requireObject(definition, "", TOP_FIELDS);
  const id = requireString(d.id, "id");
  if (!/^[a-z0-9][a-z0-9-]*$/.test(id)) {
    fail("id", `"${id}" is not kebab-case (lowercase letters, digits and hyphens)`);
  }
  requireString(d.title, "title");
  requireString(d.hypothesis, "hypothesis");
  if (d.family !== undefined && d.family !== 4 && d.family !== 6) {
    fail("family", `expected 4 or 6, got ${describe(d.family)}`);
  }

  const claims = requireObject(d.claims, "claims", Object.keys(d.claims ?? {}));
  if (Object.keys(claims).length === 0) fail("claims", "name at least one claim id it decides");
  for (const [cid, rule] of Object.entries(claims)) {
    if (!claimById(cid)) {
      fail(
        `claims.${cid}`,
        `"${cid}" is not in the claims catalogue${
          didYouMean(cid, CLAIMS.map((c) => c.id))
        } (ids run ${CLAIMS[0]!.id} … ${CLAIMS.at(-1)!.id})`,
      );
    }
    if (typeof rule !== "function") {
      fail(`claims.${cid}`, `expected a rule function, got ${describe(rule)}`);
    }
  }

  const matrix = d.matrix === undefined
    ? {}
    : requireObject(d.matrix, "matrix", Object.keys(d.matrix ?? {}));
  for (const [k, values] of Object.entries(matrix)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) fail(`matrix.${k}`, "parameter names are identifiers");
    if (!Array.isArray(values) || values.length === 0) {
      fail(`matrix.${k}`, `expected a non-empty array of values, got ${describe(values)}`);
    }
    values.forEach((v, i) => {
      if (!["number", "string", "boolean"].includes(typeof v)) {
        fail(`matrix.${k}[${i}]`, `expected a number, string or boolean, got ${describe(v)}`);
      }
    });
  }

  const hosts = requireObject(d.hosts, "hosts", Object.keys(d.hosts ?? {}));
  const hostNames = Object.keys(hosts);
  if (hostNames.length < 2) fail("hosts", "define at least a server host and a client host");
  for (const name of hostNames) {
    if (!NAME_RE.test(name) || name === "clients") {
      fail(`hosts.${name}`, `host names are lowercase identifiers other than "clients"`);
    }
    const h = requireObject(hosts[name], `hosts.${name}`, HOST_FIELDS);
    if (h.sysctls !== undefined) {
      const s = requireObject(h.sysctls, `hosts.${name}.sysctls`, Object.keys(h.sysctls ?? {}));
      for (const [key, value] of Object.entries(s)) {
        if (!/^net\.[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(key)) {
          fail(
            `hosts.${name}.sysctls.${key}`,
            `"${key}" is not a per-namespace net.* sysctl name (e.g. "net.core.somaxconn")`,
          );
        }
        if (!["number", "string", "function"].includes(typeof value)) {
          fail(
            `hosts.${name}.sysctls.${key}`,
            `expected a number, string or function, got ${describe(value)}`,
          );
        }
      }
    }
  }

  const server = requireObject(d.server, "server", SERVER_FIELDS);
  const serverHost = requireString(server.host, "server.host");
  if (!hostNames.includes(serverHost)) {
    fail(
      "server.host",
      `unknown host "${serverHost}"${didYouMean(serverHost, hostNames)} (hosts: ${
        hostNames.join(", ")
      })`,
    );
  }
  if (server.port !== undefined) requireInt(server.port, "server.port", 1, 65535);
  if (typeof server.backlog !== "function") requireBacklog(server.backlog, "server.backlog");
  if (server.accept !== undefined && server.accept !== "never") {
    fail(
      "server.accept",
      `expected "never" (other policies come with the timeline), got ${describe(server.accept)}`,
    );
  }

  if (!Array.isArray(d.clients) || d.clients.length === 0) {
    fail("clients", `expected a non-empty array of client groups, got ${describe(d.clients)}`);
  }
  const groupNames: string[] = [];
  d.clients.forEach((g: unknown, i: number) => {
    const f = `clients[${i}]`;
    const group = requireObject(g, f, GROUP_FIELDS);
    const name = requireString(group.name, `${f}.name`);
    if (!NAME_RE.test(name)) fail(`${f}.name`, `"${name}" is not a lowercase identifier`);
    if (groupNames.includes(name)) fail(`${f}.name`, `duplicate group name "${name}"`);
    groupNames.push(name);
    const host = requireString(group.host, `${f}.host`);
    if (!hostNames.includes(host)) {
      fail(
        `${f}.host`,
        `unknown host "${host}"${didYouMean(host, hostNames)} (hosts: ${hostNames.join(", ")})`,
      );
    }
    if (host === serverHost) {
      fail(`${f}.host`, `clients run on a host other than the server's ("${serverHost}")`);
    }
    if (typeof group.count !== "function") requireInt(group.count, `${f}.count`, 1, MAX_COUNT);
    if (group.start !== undefined && group.start !== "together") {
      const s = requireObject(group.start, `${f}.start`, ["intervalMs"]);
      requireInt(s.intervalMs, `${f}.start.intervalMs`, 1, 60_000);
    }
    if (group.afterConnect !== undefined) followUp(group.afterConnect, `${f}.afterConnect`);
    if (group.deadlineMs !== undefined) {
      requireInt(group.deadlineMs, `${f}.deadlineMs`, 1, MAX_WINDOW_MS);
    }
  });
  d.clients.forEach((g: Record<string, unknown>, i: number) => {
    if (g.startWhen === undefined) return;
    const f = `clients[${i}].startWhen`;
    const w = requireObject(g.startWhen, f, ["metric", ...BOUND_FIELDS]);
    const metric = validateMetric(requireString(w.metric, `${f}.metric`), `${f}.metric`, {
      hosts: hostNames,
      serverHost,
      groups: groupNames,
    });
    if (metric.startsWith(`clients.${g.name}.`)) {
      fail(
        `${f}.metric`,
        `a group cannot wait for its own outcomes ("${metric}"): it would never start`,
      );
    }
    requireBounds(w, f);
  });
  if (d.clients.every((g: Record<string, unknown>) => g.startWhen !== undefined)) {
    fail("clients", "at least one group must start without startWhen, or nothing would ever start");
  }

  const observe = requireObject(d.observe, "observe", OBSERVE_FIELDS);
  const intervalMs = requireInt(observe.intervalMs, "observe.intervalMs", 5, 10_000);
  requireInt(observe.windowMs, "observe.windowMs", intervalMs, MAX_WINDOW_MS);

  if (!Array.isArray(d.expect) || d.expect.length === 0) {
    fail("expect", `expected a non-empty array of expectations, got ${describe(d.expect)}`);
  }
  const seen: string[] = [];
  d.expect.forEach((e: unknown, i: number) => {
    const f = `expect[${i}]`;
    const x = requireObject(e, f, EXPECT_FIELDS);
    const name = requireString(x.name, `${f}.name`);
    if (seen.includes(name)) fail(`${f}.name`, `duplicate expectation name "${name}"`);
    seen.push(name);
    validateMetric(requireString(x.metric, `${f}.metric`), `${f}.metric`, {
      hosts: hostNames,
      serverHost,
      groups: groupNames,
    });
    requireBounds(x, f);
    if (x.over !== undefined && !["settled", "always", "peak"].includes(x.over as string)) {
      fail(
        `${f}.over`,
        `expected "settled", "always" or "peak", got ${describe(x.over)}${
          didYouMean(String(x.over), ["settled", "always", "peak"])
        }`,
      );
    }
    if (x.stableMs !== undefined) {
      if (x.over !== undefined && x.over !== "settled") {
        fail(`${f}.stableMs`, `only "settled" expectations take stableMs`);
      }
      requireInt(x.stableMs, `${f}.stableMs`, 0, MAX_WINDOW_MS);
    }
  });
  return definition;
}

function requireBounds(x: Record<string, unknown>, f: string): void {
  if (x.equals === undefined && x.atLeast === undefined && x.atMost === undefined) {
    fail(f, "give equals, atLeast or atMost");
  }
  if (x.equals !== undefined && (x.atLeast !== undefined || x.atMost !== undefined)) {
    fail(f, "give either equals or atLeast/atMost, not both");
  }
  for (const k of BOUND_FIELDS) {
    const v = x[k];
    if (
      v !== undefined && typeof v !== "function" && (typeof v !== "number" || !Number.isFinite(v))
    ) {
      fail(`${f}.${k}`, `expected a number or a function of the parameters, got ${describe(v)}`);
    }
  }
}

/** Resolves equals / atLeast / atMost at a matrix point into [min, max]. */
function resolveBounds<P>(
  x: { equals?: Param<P, number>; atLeast?: Param<P, number>; atMost?: Param<P, number> },
  p: P,
  f: string,
): { min: number; max: number } {
  const num = (k: (typeof BOUND_FIELDS)[number]) => {
    const v = x[k];
    if (v === undefined) return undefined;
    const r = resolve(v, p, `${f}.${k}`);
    if (typeof r !== "number" || !Number.isFinite(r)) {
      fail(`${f}.${k}`, `expected a number, got ${describe(r)}`);
    }
    return r;
  };
  const eq = num("equals");
  const min = eq ?? num("atLeast") ?? -Infinity;
  const max = eq ?? num("atMost") ?? Infinity;
  if (min > max) fail(f, `atLeast ${min} is above atMost ${max}`);
  return { min, max };
}

function requireBacklog(v: unknown, field: string): number {
  return requireInt(
    v,
    field,
    0,
    65535,
    " (listen() clamps larger values to net.core.somaxconn; a negative one means somaxconn)",
  );
}

function followUp(v: unknown, field: string): FollowUpSpec {
  if (v === "nothing") return { kind: "nothing" };
  const o = requireObject(v, field, ["send", "read"]);
  const bytes = o.send === undefined ? undefined : requireInt(o.send, `${field}.send`, 1, 1 << 24);
  const timeoutMs = o.read === undefined ? undefined : requireInt(
    requireObject(o.read, `${field}.read`, ["timeoutMs"]).timeoutMs,
    `${field}.read.timeoutMs`,
    1,
    MAX_WINDOW_MS,
  );
  if (bytes !== undefined && timeoutMs !== undefined) return { kind: "sendRead", bytes, timeoutMs };
  if (bytes !== undefined) return { kind: "send", bytes };
  if (timeoutMs !== undefined) return { kind: "read", timeoutMs };
  fail(field, `expected "nothing", { send: bytes }, { read: { timeoutMs } } or both`);
}

/** Every combination of a matrix's values, in declaration order. */
export function matrixPoints(matrix: Matrix | undefined): Record<string, ParamValue>[] {
  let points: Record<string, ParamValue>[] = [{}];
  for (const [k, values] of Object.entries(matrix ?? {})) {
    points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  }
  return points;
}

function resolve<P, T>(v: Param<P, T>, params: P, field: string): T {
  if (typeof v !== "function") return v;
  try {
    return (v as (p: P) => T)(params);
  } catch (err) {
    fail(
      field,
      `the function threw for ${JSON.stringify(params)}: ${
        err instanceof Error ? err.message : err
      }`,
    );
  }
}

/** Metrics every run samples, besides those its expectations name. */
export function defaultMetrics(
  hosts: readonly string[],
  serverHost: string,
  groups: readonly string[],
): string[] {
  const perHost = [
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "TcpExtListenOverflows",
    "TcpExtListenDrops",
    "TcpExtTCPReqQFullDrop",
    "TcpExtTCPReqQFullDoCookies",
    "TcpExtSyncookiesSent",
    "TcpExtTCPSynRetrans",
    "TcpOutRsts",
  ];
  return [
    `${serverHost}.recvQ`,
    `${serverHost}.sendQ`,
    ...hosts.flatMap((h) => perHost.map((m) => `${h}.${m}`)),
    ...groups.flatMap((g) => ["launched", "connected", "pending"].map((o) => `clients.${g}.${o}`)),
  ];
}

/**
 * Resolves every matrix point of a (validated) definition and validates the
 * values that depend on the parameters.
 *
 * @throws {ExperimentDefinitionError} with the field and the matrix point.
 */
export function planRuns<M extends Matrix>(def: ExperimentDefinition<M>): RunPlan[] {
  const serverHost = def.server.host;
  const hostOrder = [serverHost, ...Object.keys(def.hosts).filter((h) => h !== serverHost)];
  return matrixPoints(def.matrix).map((params) => {
    const p = params as ParamsOf<M>;
    const at = Object.keys(params).length ? ` (at ${JSON.stringify(params)})` : "";
    const wrap = <T>(fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        if (err instanceof ExperimentDefinitionError && at) {
          throw new ExperimentDefinitionError(err.field, err.detail + at);
        }
        throw err;
      }
    };
    return wrap(() => {
      const hosts = hostOrder.map((name) => {
        const sysctls: Record<string, string> = {};
        for (const [k, v] of Object.entries(def.hosts[name]?.sysctls ?? {})) {
          const value = resolve(v, p, `hosts.${name}.sysctls.${k}`);
          if (typeof value !== "number" && typeof value !== "string") {
            fail(
              `hosts.${name}.sysctls.${k}`,
              `expected a number or string, got ${describe(value)}`,
            );
          }
          sysctls[k] = String(value);
        }
        return { name, sysctls };
      });
      const backlog = requireBacklog(
        resolve(def.server.backlog, p, "server.backlog"),
        "server.backlog",
      );
      const groups = def.clients.map((g, i): PlannedGroup => ({
        name: g.name,
        host: g.host,
        count: requireInt(
          resolve(g.count, p, `clients[${i}].count`),
          `clients[${i}].count`,
          1,
          MAX_COUNT,
        ),
        intervalMs: g.start === undefined || g.start === "together" ? 0 : g.start.intervalMs,
        then: g.afterConnect === undefined
          ? { kind: "nothing" }
          : followUp(g.afterConnect, `clients[${i}].afterConnect`),
        deadlineMs: g.deadlineMs ?? 0,
        ...(g.startWhen === undefined ? {} : {
          startWhen: {
            metric: g.startWhen.metric,
            ...resolveBounds(g.startWhen, p, `clients[${i}].startWhen`),
          },
        }),
      }));
      const expectations = def.expect.map((e, i): PlannedExpectation => {
        const { min, max } = resolveBounds(e, p, `expect[${i}]`);
        return {
          name: e.name,
          metric: e.metric,
          over: e.over ?? "settled",
          min,
          max,
          stableMs: e.stableMs ?? 3 * def.observe.intervalMs,
        };
      });
      const metrics = [
        ...new Set([
          ...defaultMetrics(hostOrder, serverHost, groups.map((g) => g.name)),
          ...expectations.map((e) => e.metric),
          ...groups.flatMap((g) => g.startWhen ? [g.startWhen.metric] : []),
        ]),
      ];
      return {
        params,
        family: def.family ?? 4,
        hosts,
        server: {
          host: serverHost,
          port: def.server.port ?? 8080,
          backlog,
          accept: def.server.accept ?? "never",
        },
        groups,
        observe: def.observe,
        expectations,
        metrics,
      };
    });
  });
}
