/**
 * The metric names experiments use, parsed once into a {@linkcode Metric}:
 *
 * - `<host>.<STATE>`: sockets of the port in a TCP state; `<host>.<STATE>@<group>` only those of
 *   one client group;
 * - `<server>.recvQ` / `.sendQ`: the LISTEN socket's queue and its limit;
 * - `<host>.recvQBytes` / `.sendQBytes`: bytes queued on the port's connected sockets;
 * - `<server>.openFiles`: the server process's open file descriptors;
 * - `<host>.<Counter>`: an `nstat` counter's change since the release;
 * - `clients.<group>.<outcome>`: `launched`, `connected`, `pending`, `deadline`, `active`
 *   (launched and not done: connecting, or in a follow-up), `connect.<ERRNO>`,
 *   `after.<data|eof|timeout|sent|ERRNO>`.
 *
 * Planning parses every metric of a definition; the sampler, the client
 * tally and claim evidence switch on the parsed form.
 * @module
 */
import { didYouMean } from "../base/suggest.ts";
import { TCP_STATES, type TcpState } from "../vocabulary.ts";
import { KNOWN_COUNTERS } from "./counter_names.ts";

/** A client outcome without a detail. */
export type ClientCount = "launched" | "connected" | "pending" | "deadline" | "active";

/** A parsed metric; `name` is its text, the key of samples and results. */
export type Metric =
  | { kind: "state"; name: string; host: string; state: TcpState; group?: string }
  | { kind: "listen"; name: string; host: string; queue: "recvQ" | "sendQ" }
  | { kind: "bytes"; name: string; host: string; queue: "recvQBytes" | "sendQBytes" }
  | { kind: "openFiles"; name: string; host: string }
  | { kind: "counter"; name: string; host: string; counter: string }
  | { kind: "client"; name: string; group: string; count: ClientCount }
  | { kind: "outcome"; name: string; group: string; phase: "connect" | "after"; result: string };

/** A metric read from a host's kernel (every kind but the client program's tallies). */
export type HostMetric = Exclude<Metric, { kind: "client" | "outcome" }>;

/** The names a metric may refer to: the experiment's hosts, server host and client groups. */
export interface MetricContext {
  /** Host names. */
  hosts: readonly string[];
  /** The server's host. */
  serverHost: string;
  /** Client group names. */
  groups: readonly string[];
}

const CLIENT_COUNTS: readonly ClientCount[] = [
  "launched",
  "connected",
  "pending",
  "deadline",
  "active",
];
const AFTER_RESULTS = ["data", "eof", "timeout", "sent"];
const ERRNO = /^E[A-Z0-9]+$/;
const STATE_SET: ReadonlySet<string> = new Set(TCP_STATES);

/** Why a metric name cannot be used: the detail of a definition error. */
export class MetricError extends Error {
  /** Always `"MetricError"`. */
  override name = "MetricError";
}

/** Whether `m` is read from a host's kernel rather than from the client programs. */
export function isHostMetric(m: Metric): m is HostMetric {
  return m.kind !== "client" && m.kind !== "outcome";
}

/**
 * Parses a metric name. With `ctx`, also checks that its host, group and
 * server-only queues exist in the experiment.
 *
 * @throws {MetricError} saying what is wrong, with a did-you-mean and what is valid.
 */
export function parseMetric(name: string, ctx?: MetricContext): Metric {
  const [head, second, ...rest] = name.split(".");
  if (head === "clients") return parseClient(name, second, rest.join("."), ctx);
  if (head === undefined || head === "" || (ctx && !ctx.hosts.includes(head))) {
    throw new MetricError(
      `unknown host "${head ?? ""}" in "${name}"${didYouMean(head ?? "", ctx?.hosts ?? [])}${
        ctx ? ` (hosts: ${ctx.hosts.join(", ")}, or "clients")` : ""
      }`,
    );
  }
  const host = head;
  if (rest.length === 0 && second !== undefined) {
    if (STATE_SET.has(second)) return { kind: "state", name, host, state: second as TcpState };
    const at = /^([A-Z_0-9]+)@(.*)$/.exec(second);
    if (at && STATE_SET.has(at[1]!)) {
      const group = at[2]!;
      if (ctx && !ctx.groups.includes(group)) throw unknownGroup(group, name, ctx);
      return { kind: "state", name, host, state: at[1] as TcpState, group };
    }
    if (second === "recvQ" || second === "sendQ") {
      if (ctx && host !== ctx.serverHost) {
        throw new MetricError(
          `"${name}": only the server host "${ctx.serverHost}" has a LISTEN socket`,
        );
      }
      return { kind: "listen", name, host, queue: second };
    }
    if (second === "openFiles") {
      if (ctx && host !== ctx.serverHost) {
        throw new MetricError(
          `"${name}": only the server host "${ctx.serverHost}" runs the server`,
        );
      }
      return { kind: "openFiles", name, host };
    }
    if (second === "recvQBytes" || second === "sendQBytes") {
      return { kind: "bytes", name, host, queue: second };
    }
    if (KNOWN_COUNTERS.has(second)) return { kind: "counter", name, host, counter: second };
  }
  const what = [second, ...rest].join(".");
  const candidates = [
    ...TCP_STATES,
    "recvQ",
    "sendQ",
    "openFiles",
    "recvQBytes",
    "sendQBytes",
    ...KNOWN_COUNTERS,
  ];
  throw new MetricError(
    `unknown metric "${what}" in "${name}"${
      didYouMean(what.replaceAll("-", "_"), candidates)
    } (valid: a TCP state such as ${
      TCP_STATES.slice(0, 3).join(", ")
    }; recvQ or sendQ; recvQBytes or sendQBytes; openFiles; or an nstat counter such as TcpExtListenOverflows)`,
  );
}

function parseClient(
  name: string,
  group: string | undefined,
  outcome: string,
  ctx: MetricContext | undefined,
): Metric {
  if (group === undefined || group === "" || (ctx && !ctx.groups.includes(group))) {
    throw unknownGroup(group ?? "", name, ctx);
  }
  if ((CLIENT_COUNTS as readonly string[]).includes(outcome)) {
    return { kind: "client", name, group, count: outcome as ClientCount };
  }
  const m = /^(connect|after)\.(.+)$/.exec(outcome);
  if (m && (ERRNO.test(m[2]!) || (m[1] === "after" && AFTER_RESULTS.includes(m[2]!)))) {
    return { kind: "outcome", name, group, phase: m[1] as "connect" | "after", result: m[2]! };
  }
  throw new MetricError(
    `unknown client outcome "${outcome}" in "${name}"${
      didYouMean(outcome, [...CLIENT_COUNTS, ...AFTER_RESULTS.map((r) => `after.${r}`)])
    } (valid: ${CLIENT_COUNTS.join(", ")}, connect.<ERRNO>, after.<${
      AFTER_RESULTS.join("|")
    }|ERRNO>)`,
  );
}

function unknownGroup(group: string, name: string, ctx: MetricContext | undefined): MetricError {
  const groups = ctx?.groups ?? [];
  return new MetricError(
    `unknown client group "${group}" in "${name}"${didYouMean(group, groups)}${
      ctx ? ` (groups: ${groups.join(", ")})` : ""
    }`,
  );
}

/** The counters every run samples on every host, besides those its expectations name. */
export const DEFAULT_COUNTERS = [
  "TcpExtListenOverflows",
  "TcpExtListenDrops",
  "TcpExtTCPReqQFullDrop",
  "TcpExtTCPReqQFullDoCookies",
  "TcpExtSyncookiesSent",
  "TcpExtTCPSynRetrans",
  "TcpOutRsts",
] as const;

/** Names of the metrics every run samples, besides those its expectations and steps name. */
export function defaultMetrics(
  hosts: readonly string[],
  serverHost: string,
  groups: readonly string[],
): string[] {
  const perHost = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", ...DEFAULT_COUNTERS];
  return [
    `${serverHost}.recvQ`,
    `${serverHost}.sendQ`,
    ...hosts.flatMap((h) => perHost.map((m) => `${h}.${m}`)),
    ...groups.flatMap((g) => ["launched", "connected", "pending"].map((o) => `clients.${g}.${o}`)),
  ];
}
