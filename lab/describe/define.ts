/**
 * The declarative experiment: its types, {@linkcode defineExperiment} (a
 * validating identity function) and {@linkcode planRuns}, which resolves a
 * definition's matrix into concrete runs and validates every value that
 * depends on the parameters, so a wrong definition fails before any
 * namespace exists.
 * @module
 */
import { claimById, CLAIMS } from "./catalogue.ts";
import { ExperimentDefinitionError } from "../base/errors.ts";
import type { ClaimDecision, RunEvidence } from "../results.ts";
import { didYouMean } from "../base/suggest.ts";
import { TCP_STATES } from "../observe/socket_table.ts";
import { KNOWN_COUNTERS } from "./counter_names.ts";

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

/**
 * When the server calls `accept()`: `"never"`, `"all"` (each connection as it
 * arrives), `{ batch, everyMs }` (up to `batch` every `everyMs`) or
 * `{ perSecond }` (evenly spread).
 */
export type AcceptPolicy =
  | "never"
  | "all"
  | { batch: number; everyMs: number }
  | { perSecond: number };

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
  /** The accept policy starts this long after the clients are released; default 0. */
  acceptAfterMs?: Param<P, number>;
  /** The server process's `RLIMIT_NOFILE` (soft and hard), set after it listens. */
  maxOpenFiles?: Param<P, number>;
}

/** Packets a rule drops, by TCP control flags. */
export type RulePackets = "syn" | "syn-ack" | "ack" | "rst" | "fin" | "all";

/**
 * A packet rule: drops chosen packets in one direction of one host, for as
 * long as it is on. Dropping for a window is how the lab "holds" a packet:
 * TCP retransmits it, and the retransmission after the rule is removed gets
 * through.
 */
export interface RuleDefinition {
  /** The host (namespace) whose input or output hook drops the packets. */
  host: string;
  /** `"in"`: packets arriving at the host; `"out"`: packets it sends. */
  direction: "in" | "out";
  /**
   * `syn`, `syn-ack`, `ack` (segments whose only control flag is ACK: the
   * handshake's final ACK, pure ACKs and data), `rst`, `fin` or `all`.
   */
  packets: RulePackets | readonly RulePackets[];
  /** Only the connections of this client group (matched by the group's own address). */
  group?: string;
  /** `"on"` (default): active from before the clients start; `"off"`: until an `addRule` step. */
  initially?: "on" | "off";
}

/** What a timeline step does. */
export type StepAction<P> =
  | { startGroup: string }
  | { closeGroup: string }
  | { addRule: string }
  | { removeRule: string }
  | { sysctl: { host: string; name: string; value: Param<P, number | string> } }
  | { accept: Param<P, number> }
  | { acceptPolicy: AcceptPolicy }
  | { stopServer: "SIGKILL" | "close" };

/**
 * A step of the experiment's timeline. It happens once, as soon as all its
 * conditions hold: `at` ms have passed since the clients were released, the
 * `when` condition shows in a sample, and the `afterStep` step happened,
 * followed by `delayMs`.
 */
export interface TimelineStep<P> {
  /** Names the step in results; unique in the experiment. */
  name: string;
  /** Not before this many ms after the clients are released. */
  at?: Param<P, number>;
  /** Not before the kernel shows this. */
  when?: StartCondition<P>;
  /** Not before this other step happened. */
  afterStep?: string;
  /** Once the other conditions hold, wait this long; default 0. */
  delayMs?: Param<P, number>;
  /** The step exists only at matrix points where this returns true; default all. */
  only?: (params: P) => boolean;
  /** The action. */
  do: StepAction<P>;
}

/** A packet kind as a capture classifies it. */
export type CapturedKind = "SYN" | "SYN-ACK" | "ACK" | "DATA" | "FIN" | "RST";

/**
 * What a packet capture must show, per connection: how many packets of one
 * kind and the gaps between them.
 */
export interface PacketExpectation<P> {
  /** Names the check; unique among all expectations. */
  name: string;
  /** The host whose capture is read (it must be listed in `capture`). */
  host: string;
  /** The packet kind. */
  kind: CapturedKind;
  /** Which end sent it. */
  from: "client" | "server";
  /** Only connections of this client group; default all. */
  group?: string;
  /** Every such connection has this many packets of the kind. */
  count?: { equals?: Param<P, number>; atLeast?: Param<P, number>; atMost?: Param<P, number> };
  /** The gaps between consecutive packets of the kind, in ms, in order. */
  intervalsMs?: Param<P, readonly number[]>;
  /** Allowed deviation of each gap, in ms (kernel timers fire a few ms late); required with `intervalsMs`. */
  toleranceMs?: number;
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
  /** How many connections it opens, 0 to 100 000 (0: none at this matrix point). */
  count: Param<P, number>;
  /**
   * `"together"` (default): every connect() at once; or one every `intervalMs`;
   * or `perSecond` evenly spread (e.g. 20000: 20 a millisecond, which keeps a
   * burst of thousands of SYNs within the per-CPU input queue that all
   * namespaces share, `net.core.netdev_max_backlog`, 1000 by default).
   */
  start?: "together" | { intervalMs: number } | { perSecond: number };
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
   * `server.SYN_RECV`; `server.SYN_RECV@held` counts only those of client
   * group "held"), `<server host>.recvQ` / `.sendQ` (the LISTEN socket as
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
  /**
   * The matrix under `--faithful`: parameters given here replace the
   * default matrix's (used where the default run shortens kernel timers).
   */
  faithfulMatrix?: NoInfer<{ [K in keyof M]?: M[K] }>;
  /** Packet rules by name (lowercase identifiers). */
  rules?: Record<string, RuleDefinition>;
  /** Steps at times or on conditions. */
  timeline?: TimelineStep<ParamsOf<M>>[];
  /** Hosts whose traffic on the server port is captured (tcpdump) for packet timelines. */
  capture?: string[];
  /** What the captures must show; checked once the observation ends. */
  expectPackets?: PacketExpectation<ParamsOf<M>>[];
  /**
   * Run each matrix point alone, with no other point beside it. For points
   * whose load (thousands of handshakes) would disturb other points' timing,
   * or that need something the whole machine shares. Points with
   * {@linkcode EXCLUSIVE_CONNECTIONS} or more client connections run alone
   * without it.
   */
  exclusive?: boolean;
}

/** A matrix point with this many client connections or more runs alone (see `exclusive`). */
export const EXCLUSIVE_CONNECTIONS = 1000;

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
  /** Milliseconds between connect() calls (fractional for `perSecond`); 0: all at once. */
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

/** A packet rule with its group resolved. */
export interface PlannedRule {
  /** The rule's name, as in its definition. */
  name: string;
  /** The host whose hook drops the packets. */
  host: string;
  /** Input (`in`) or output (`out`) hook. */
  direction: "in" | "out";
  /** The kinds of packets dropped. */
  packets: RulePackets[];
  /** Only this client group's connections. */
  group?: string;
  /** Whether it is active before the clients start. */
  initially: "on" | "off";
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
  kind: CapturedKind;
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
}

/** One matrix point, ready to run. */
export interface RunPlan {
  /** The matrix point this run resolves. */
  params: Record<string, ParamValue>;
  /**
   * `fast`: the experiment shortens kernel timers in this run (it has a
   * `faithfulMatrix` and `--faithful` was not given); `faithful`: its
   * faithful matrix; `default`: it has no faithful variant.
   */
  mode: "fast" | "faithful" | "default";
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
  };
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
  /** Sampling interval and window, as defined. */
  observe: ObserveDefinition;
  /** Expectations with their bounds resolved, in definition order. */
  expectations: PlannedExpectation[];
  /** Every metric to sample (expectations' and the default set). */
  metrics: string[];
  /** Runs alone: the definition says so, or it opens {@linkcode EXCLUSIVE_CONNECTIONS} or more connections. */
  exclusive: boolean;
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
  "faithfulMatrix",
  "rules",
  "timeline",
  "capture",
  "expectPackets",
  "exclusive",
];
const HOST_FIELDS = ["sysctls"];
const SERVER_FIELDS = ["host", "port", "backlog", "accept", "acceptAfterMs", "maxOpenFiles"];
const RULE_FIELDS = ["host", "direction", "packets", "group", "initially"];
const RULE_PACKETS = ["syn", "syn-ack", "ack", "rst", "fin", "all"];
const STEP_FIELDS = ["name", "at", "when", "afterStep", "delayMs", "do", "only"];
const ACTIONS = [
  "startGroup",
  "closeGroup",
  "addRule",
  "removeRule",
  "sysctl",
  "accept",
  "acceptPolicy",
  "stopServer",
];
const PACKET_EXPECT_FIELDS = [
  "name",
  "host",
  "kind",
  "from",
  "group",
  "count",
  "intervalsMs",
  "toleranceMs",
];
const CAPTURED_KINDS = ["SYN", "SYN-ACK", "ACK", "DATA", "FIN", "RST"];
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
    const at = /^([A-Z_0-9]+)@(.*)$/.exec(second);
    if (at && (TCP_STATES as readonly string[]).includes(at[1]!)) {
      if (!ctx.groups.includes(at[2]!)) {
        fail(
          field,
          `unknown client group "${at[2]}" in "${metric}"${
            didYouMean(at[2]!, ctx.groups)
          } (groups: ${ctx.groups.join(", ")})`,
        );
      }
      return metric;
    }
    if (second === "recvQ" || second === "sendQ") {
      if (head !== ctx.serverHost) {
        fail(field, `"${metric}": only the server host "${ctx.serverHost}" has a LISTEN socket`);
      }
      return metric;
    }
    if (second === "openFiles") {
      if (head !== ctx.serverHost) {
        fail(field, `"${metric}": only the server host "${ctx.serverHost}" runs the server`);
      }
      return metric;
    }
    if (second === "recvQBytes" || second === "sendQBytes") return metric;
    if (KNOWN_COUNTERS.has(second)) return metric;
  }
  const candidates = [
    ...TCP_STATES,
    "recvQ",
    "sendQ",
    "openFiles",
    "recvQBytes",
    "sendQBytes",
    ...KNOWN_COUNTERS,
  ];
  fail(
    field,
    `unknown metric "${what}" in "${metric}"${
      didYouMean(what.replaceAll("-", "_"), candidates)
    } (valid: a TCP state such as ${
      TCP_STATES.slice(0, 3).join(", ")
    }; recvQ or sendQ; recvQBytes or sendQBytes; openFiles; or an nstat counter such as TcpExtListenOverflows)`,
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
  if (server.accept !== undefined) acceptPolicy(server.accept, "server.accept");
  if (server.acceptAfterMs !== undefined && typeof server.acceptAfterMs !== "function") {
    requireInt(server.acceptAfterMs, "server.acceptAfterMs", 0, MAX_WINDOW_MS);
  }
  if (server.maxOpenFiles !== undefined && typeof server.maxOpenFiles !== "function") {
    requireInt(server.maxOpenFiles, "server.maxOpenFiles", 8, 1 << 20);
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
    if (typeof group.count !== "function") requireInt(group.count, `${f}.count`, 0, MAX_COUNT);
    if (group.start !== undefined && group.start !== "together") {
      const s = requireObject(group.start, `${f}.start`, ["intervalMs", "perSecond"]);
      if (("intervalMs" in s) === ("perSecond" in s)) {
        fail(`${f}.start`, `give either intervalMs or perSecond, e.g. { perSecond: 20000 }`);
      }
      if ("intervalMs" in s) requireInt(s.intervalMs, `${f}.start.intervalMs`, 1, 60_000);
      else requireInt(s.perSecond, `${f}.start.perSecond`, 1, 1_000_000);
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
  const ctx = { hosts: hostNames, serverHost, groups: groupNames };
  const ruleNames = validateRules(d.rules, ctx);
  const stepStarted = validateTimeline(d.timeline, ctx, ruleNames);
  const waiting = d.clients.filter((g: Record<string, unknown>) => g.startWhen !== undefined);
  for (const g of waiting) {
    if (stepStarted.has(g.name)) {
      fail(
        `clients[${d.clients.indexOf(g)}].startWhen`,
        `group "${g.name}" is also started by a startGroup step: give one or the other`,
      );
    }
  }
  const implicit = [
    "server starts accepting",
    ...waiting.map((g: Record<string, unknown>) => `start ${g.name}`),
  ];
  ((d.timeline ?? []) as Record<string, unknown>[]).forEach((s, i) => {
    if (implicit.includes(s.name as string)) {
      fail(
        `timeline[${i}].name`,
        `"${s.name}" is the name of a step planRuns adds; choose another`,
      );
    }
  });
  if (
    d.clients.every((g: Record<string, unknown>) =>
      g.startWhen !== undefined || stepStarted.has(g.name as string)
    )
  ) {
    fail(
      "clients",
      "at least one group must start without startWhen or a startGroup step, or nothing would ever start",
    );
  }
  if (d.faithfulMatrix !== undefined) {
    const fm = requireObject(d.faithfulMatrix, "faithfulMatrix", Object.keys(matrix));
    for (const [k, values] of Object.entries(fm)) {
      if (!Array.isArray(values) || values.length === 0) {
        fail(
          `faithfulMatrix.${k}`,
          `expected a non-empty array of values, got ${describe(values)}`,
        );
      }
    }
  }
  if (d.exclusive !== undefined && typeof d.exclusive !== "boolean") {
    fail("exclusive", `expected true or false, got ${describe(d.exclusive)}`);
  }
  const captured: string[] = [];
  if (d.capture !== undefined) {
    if (!Array.isArray(d.capture)) fail("capture", `expected an array of host names`);
    d.capture.forEach((h: unknown, i: number) => {
      if (typeof h !== "string" || !hostNames.includes(h)) {
        fail(
          `capture[${i}]`,
          `unknown host ${describe(h)}${didYouMean(String(h), hostNames)} (hosts: ${
            hostNames.join(", ")
          })`,
        );
      }
      captured.push(h);
    });
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
  if (d.expectPackets !== undefined) {
    if (!Array.isArray(d.expectPackets)) fail("expectPackets", "expected an array");
    d.expectPackets.forEach((e: unknown, i: number) => {
      const f = `expectPackets[${i}]`;
      const x = requireObject(e, f, PACKET_EXPECT_FIELDS);
      const name = requireString(x.name, `${f}.name`);
      if (seen.includes(name)) fail(`${f}.name`, `duplicate expectation name "${name}"`);
      seen.push(name);
      const host = requireString(x.host, `${f}.host`);
      if (!captured.includes(host)) {
        fail(
          `${f}.host`,
          `"${host}" is not captured: add it to "capture" (captured: ${
            captured.join(", ") || "none"
          })`,
        );
      }
      if (!CAPTURED_KINDS.includes(x.kind as string)) {
        fail(
          `${f}.kind`,
          `expected one of ${CAPTURED_KINDS.join(", ")}, got ${describe(x.kind)}${
            didYouMean(String(x.kind), CAPTURED_KINDS)
          }`,
        );
      }
      if (x.from !== "client" && x.from !== "server") {
        fail(`${f}.from`, `expected "client" or "server", got ${describe(x.from)}`);
      }
      if (x.group !== undefined) requireGroup(x.group, `${f}.group`, groupNames);
      if (x.count !== undefined) {
        requireBounds(requireObject(x.count, `${f}.count`, BOUND_FIELDS), `${f}.count`);
      }
      if (x.intervalsMs !== undefined) {
        if (typeof x.intervalsMs !== "function") intervalList(x.intervalsMs, `${f}.intervalsMs`);
        if (x.toleranceMs === undefined) {
          fail(
            `${f}.toleranceMs`,
            "give the tolerance of each interval in ms, with its reason in a comment",
          );
        }
      }
      if (x.toleranceMs !== undefined) requireInt(x.toleranceMs, `${f}.toleranceMs`, 0, 60_000);
      if (x.count === undefined && x.intervalsMs === undefined) {
        fail(f, "give count, intervalsMs or both");
      }
    });
  }
  return definition;
}

interface NameContext {
  hosts: readonly string[];
  serverHost: string;
  groups: readonly string[];
}

function requireGroup(v: unknown, field: string, groups: readonly string[]): string {
  const name = requireString(v, field);
  if (!groups.includes(name)) {
    fail(
      field,
      `unknown client group "${name}"${didYouMean(name, groups)} (groups: ${groups.join(", ")})`,
    );
  }
  return name;
}

function requireHost(v: unknown, field: string, hosts: readonly string[]): string {
  const name = requireString(v, field);
  if (!hosts.includes(name)) {
    fail(field, `unknown host "${name}"${didYouMean(name, hosts)} (hosts: ${hosts.join(", ")})`);
  }
  return name;
}

function intervalList(v: unknown, field: string): number[] {
  if (!Array.isArray(v) || v.length === 0) {
    fail(field, `expected a non-empty array of milliseconds, got ${describe(v)}`);
  }
  return v.map((n, i) => requireInt(n, `${field}[${i}]`, 0, MAX_WINDOW_MS));
}

function acceptPolicy(v: unknown, field: string): AcceptPolicy {
  if (v === "never" || v === "all") return v;
  if (isObject(v) && "batch" in v) {
    const o = requireObject(v, field, ["batch", "everyMs"]);
    return {
      batch: requireInt(o.batch, `${field}.batch`, 1, MAX_COUNT),
      everyMs: requireInt(o.everyMs, `${field}.everyMs`, 1, 60_000),
    };
  }
  if (isObject(v) && "perSecond" in v) {
    const o = requireObject(v, field, ["perSecond"]);
    return { perSecond: requireInt(o.perSecond, `${field}.perSecond`, 1, 100_000) };
  }
  fail(
    field,
    `expected "never", "all", { batch, everyMs } or { perSecond }, got ${describe(v)}${
      typeof v === "string" ? didYouMean(v, ["never", "all"]) : ""
    }`,
  );
}

function validateRules(v: unknown, ctx: NameContext): string[] {
  if (v === undefined) return [];
  const rules = requireObject(v, "rules", Object.keys(v ?? {}));
  for (const [name, r] of Object.entries(rules)) {
    const f = `rules.${name}`;
    if (!NAME_RE.test(name)) fail(f, `rule names are lowercase identifiers`);
    const rule = requireObject(r, f, RULE_FIELDS);
    requireHost(rule.host, `${f}.host`, ctx.hosts);
    if (rule.direction !== "in" && rule.direction !== "out") {
      fail(`${f}.direction`, `expected "in" or "out", got ${describe(rule.direction)}`);
    }
    const kinds = Array.isArray(rule.packets) ? rule.packets : [rule.packets];
    if (kinds.length === 0) fail(`${f}.packets`, "name at least one packet kind");
    for (const k of kinds) {
      if (!RULE_PACKETS.includes(k as string)) {
        fail(
          `${f}.packets`,
          `unknown packet kind ${describe(k)}${didYouMean(String(k), RULE_PACKETS)} (valid: ${
            RULE_PACKETS.join(", ")
          })`,
        );
      }
    }
    if (rule.group !== undefined) requireGroup(rule.group, `${f}.group`, ctx.groups);
    if (rule.initially !== undefined && rule.initially !== "on" && rule.initially !== "off") {
      fail(`${f}.initially`, `expected "on" or "off", got ${describe(rule.initially)}`);
    }
  }
  return Object.keys(rules);
}

/** @returns the groups a startGroup step starts. */
function validateTimeline(v: unknown, ctx: NameContext, rules: readonly string[]): Set<string> {
  const started = new Set<string>();
  if (v === undefined) return started;
  if (!Array.isArray(v)) fail("timeline", `expected an array of steps, got ${describe(v)}`);
  const names: string[] = [];
  v.forEach((step: unknown, i: number) => {
    const f = `timeline[${i}]`;
    const x = requireObject(step, f, STEP_FIELDS);
    const name = requireString(x.name, `${f}.name`);
    if (names.includes(name)) fail(`${f}.name`, `duplicate step name "${name}"`);
    names.push(name);
    if (x.at !== undefined && typeof x.at !== "function") {
      requireInt(x.at, `${f}.at`, 0, MAX_WINDOW_MS);
    }
    if (x.only !== undefined && typeof x.only !== "function") {
      fail(`${f}.only`, `expected a function of the parameters, got ${describe(x.only)}`);
    }
    if (x.delayMs !== undefined && typeof x.delayMs !== "function") {
      requireInt(x.delayMs, `${f}.delayMs`, 0, MAX_WINDOW_MS);
    }
    if (x.when !== undefined) {
      const w = requireObject(x.when, `${f}.when`, ["metric", ...BOUND_FIELDS]);
      validateMetric(requireString(w.metric, `${f}.when.metric`), `${f}.when.metric`, ctx);
      requireBounds(w, `${f}.when`);
    }
    if (x.afterStep !== undefined) {
      const other = requireString(x.afterStep, `${f}.afterStep`);
      if (!names.slice(0, -1).includes(other)) {
        fail(
          `${f}.afterStep`,
          `no earlier step is named "${other}"${
            didYouMean(other, names)
          } (a step can only follow one listed before it)`,
        );
      }
    }
    const action = requireObject(x.do, `${f}.do`, ACTIONS);
    const keys = Object.keys(action);
    if (keys.length !== 1) {
      fail(`${f}.do`, `give exactly one action (valid: ${ACTIONS.join(", ")})`);
    }
    const a = action as Record<string, unknown>;
    if (a.startGroup !== undefined) {
      const g = requireGroup(a.startGroup, `${f}.do.startGroup`, ctx.groups);
      if (started.has(g)) fail(`${f}.do.startGroup`, `group "${g}" is already started by a step`);
      started.add(g);
    }
    if (a.closeGroup !== undefined) requireGroup(a.closeGroup, `${f}.do.closeGroup`, ctx.groups);
    for (const k of ["addRule", "removeRule"] as const) {
      if (a[k] === undefined) continue;
      const r = requireString(a[k], `${f}.do.${k}`);
      if (!rules.includes(r)) {
        fail(
          `${f}.do.${k}`,
          `unknown rule "${r}"${didYouMean(r, rules)} (rules: ${rules.join(", ") || "none"})`,
        );
      }
    }
    if (a.sysctl !== undefined) {
      const sc = requireObject(a.sysctl, `${f}.do.sysctl`, ["host", "name", "value"]);
      requireHost(sc.host, `${f}.do.sysctl.host`, ctx.hosts);
      const key = requireString(sc.name, `${f}.do.sysctl.name`);
      if (!/^net\.[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(key)) {
        fail(`${f}.do.sysctl.name`, `"${key}" is not a per-namespace net.* sysctl name`);
      }
      if (!["number", "string", "function"].includes(typeof sc.value)) {
        fail(`${f}.do.sysctl.value`, `expected a number, string or function`);
      }
    }
    if (a.accept !== undefined && typeof a.accept !== "function") {
      requireInt(a.accept, `${f}.do.accept`, 1, MAX_COUNT);
    }
    if (a.acceptPolicy !== undefined) acceptPolicy(a.acceptPolicy, `${f}.do.acceptPolicy`);
    if (a.stopServer !== undefined && a.stopServer !== "SIGKILL" && a.stopServer !== "close") {
      fail(`${f}.do.stopServer`, `expected "SIGKILL" or "close", got ${describe(a.stopServer)}`);
    }
  });
  return started;
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
    // A function may return ±Infinity for "no bound at this point".
    if (typeof r !== "number" || Number.isNaN(r)) {
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
export function planRuns<M extends Matrix>(
  def: ExperimentDefinition<M>,
  options: { faithful?: boolean } = {},
): RunPlan[] {
  const serverHost = def.server.host;
  const hostOrder = [serverHost, ...Object.keys(def.hosts).filter((h) => h !== serverHost)];
  const mode = def.faithfulMatrix === undefined
    ? "default"
    : options.faithful
    ? "faithful"
    : "fast";
  const matrix = mode === "faithful"
    ? { ...def.matrix, ...def.faithfulMatrix } as Matrix
    : def.matrix;
  return matrixPoints(matrix).map((params) => {
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
          0,
          MAX_COUNT,
        ),
        intervalMs: g.start === undefined || g.start === "together"
          ? 0
          : "perSecond" in g.start
          ? 1000 / g.start.perSecond
          : g.start.intervalMs,
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
      const present = (def.timeline ?? []).flatMap((x, i) =>
        x.only === undefined || resolve(x.only, p, `timeline[${i}].only`) ? [{ x, i }] : []
      );
      const timeline = present.map(({ x, i }) => planStep(x, p, `timeline[${i}]`));
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
      const accept = def.server.accept ?? "never";
      const acceptAfterMs = requireInt(
        resolve(def.server.acceptAfterMs ?? 0, p, "server.acceptAfterMs"),
        "server.acceptAfterMs",
        0,
        MAX_WINDOW_MS,
      );
      if (accept !== "never") {
        timeline.push({
          name: "server starts accepting",
          atMs: acceptAfterMs,
          delayMs: 0,
          action: { kind: "acceptPolicy", policy: accept },
        });
      }
      const maxOpenFiles = def.server.maxOpenFiles === undefined ? undefined : requireInt(
        resolve(def.server.maxOpenFiles, p, "server.maxOpenFiles"),
        "server.maxOpenFiles",
        8,
        1 << 20,
      );
      const rules = Object.entries(def.rules ?? {}).map(([name, r]): PlannedRule => ({
        name,
        host: r.host,
        direction: r.direction,
        packets: [...(typeof r.packets === "string" ? [r.packets] : r.packets)],
        ...(r.group === undefined ? {} : { group: r.group }),
        initially: r.initially ?? "on",
      }));
      const packetExpectations = (def.expectPackets ?? []).map((e, i) => {
        const f = `expectPackets[${i}]`;
        const planned: PlannedPacketExpectation = {
          name: e.name,
          host: e.host,
          kind: e.kind,
          from: e.from,
          toleranceMs: e.toleranceMs ?? 0,
        };
        if (e.group !== undefined) planned.group = e.group;
        if (e.count !== undefined) planned.count = resolveBounds(e.count, p, `${f}.count`);
        if (e.intervalsMs !== undefined) {
          planned.intervalsMs = intervalList(
            resolve(e.intervalsMs, p, `${f}.intervalsMs`),
            `${f}.intervalsMs`,
          );
        }
        return planned;
      });
      const metrics = [
        ...new Set([
          ...defaultMetrics(hostOrder, serverHost, groups.map((g) => g.name)),
          ...expectations.map((e) => e.metric),
          ...timeline.flatMap((x) => x.when ? [x.when.metric] : []),
        ]),
      ];
      return {
        params,
        mode,
        family: def.family ?? 4,
        hosts,
        server: {
          host: serverHost,
          port: def.server.port ?? 8080,
          backlog,
          accept,
          acceptAfterMs,
          ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }),
        },
        groups,
        observe: def.observe,
        expectations,
        metrics,
        rules,
        timeline,
        capture: [...new Set(def.capture ?? [])],
        packetExpectations,
        exclusive: def.exclusive === true ||
          groups.reduce((n, g) => n + g.count, 0) >= EXCLUSIVE_CONNECTIONS,
      };
    });
  });
}

function planStep<P>(x: TimelineStep<P>, p: P, f: string): PlannedStep {
  const num = (v: Param<P, number> | undefined, field: string) =>
    v === undefined ? 0 : requireInt(resolve(v, p, field), field, 0, MAX_WINDOW_MS);
  const a = x.do;
  let action: PlannedAction;
  if ("startGroup" in a) action = { kind: "startGroup", group: a.startGroup };
  else if ("closeGroup" in a) action = { kind: "closeGroup", group: a.closeGroup };
  else if ("addRule" in a) action = { kind: "addRule", rule: a.addRule };
  else if ("removeRule" in a) action = { kind: "removeRule", rule: a.removeRule };
  else if ("sysctl" in a) {
    const value = resolve(a.sysctl.value, p, `${f}.do.sysctl.value`);
    if (typeof value !== "number" && typeof value !== "string") {
      fail(`${f}.do.sysctl.value`, `expected a number or string, got ${describe(value)}`);
    }
    action = { kind: "sysctl", host: a.sysctl.host, name: a.sysctl.name, value: String(value) };
  } else if ("accept" in a) {
    action = {
      kind: "accept",
      n: requireInt(resolve(a.accept, p, `${f}.do.accept`), `${f}.do.accept`, 1, MAX_COUNT),
    };
  } else if ("acceptPolicy" in a) action = { kind: "acceptPolicy", policy: a.acceptPolicy };
  else action = { kind: "stopServer", how: a.stopServer };
  return {
    name: x.name,
    atMs: num(x.at, `${f}.at`),
    ...(x.when === undefined ? {} : {
      when: { metric: x.when.metric, ...resolveBounds(x.when, p, `${f}.when`) },
    }),
    ...(x.afterStep === undefined ? {} : { afterStep: x.afterStep }),
    delayMs: num(x.delayMs, `${f}.delayMs`),
    action,
  };
}
