/**
 * {@linkcode defineExperiment}: checks a definition's shape, its names (hosts,
 * groups, rules, steps, metrics, claims) and its constant values, once, and
 * returns it typed. Values given as functions of the matrix point are
 * checked when planning resolves them (`plan.ts`).
 * @module
 */
import { didYouMean } from "../base/suggest.ts";
import { PACKET_KINDS, RULE_PACKETS } from "../vocabulary.ts";
import {
  acceptPolicy,
  BOUND_FIELDS,
  describe,
  fail,
  followUp,
  intervalList,
  isObject,
  MAX_ARRIVAL_RATE,
  MAX_COUNT,
  MAX_REPLY_BYTES,
  MAX_WINDOW_MS,
  NAME_RE,
  requireBacklog,
  requireBounds,
  requireGroup,
  requireHost,
  requireInt,
  requireMetric,
  requireObject,
  requireString,
  SYSCTL_RE,
} from "./_checks.ts";
import { claimById, CLAIMS } from "./catalogue.ts";
import { KERNEL_CHANGES } from "./kernel.ts";
import { SHAPE_FIELDS, shapeProblem } from "./link_shape.ts";
import type { MetricContext } from "./metric.ts";
import { isUserClaimId, userClaimIdProblem } from "./user_claims.ts";
import type { ExperimentDefinition, Matrix } from "./types.ts";

const TOP_FIELDS = [
  "id",
  "title",
  "hypothesis",
  "claims",
  "claimsFiles",
  "matrix",
  "family",
  "hosts",
  "server",
  "clients",
  "observe",
  "expect",
  "faithfulMatrix",
  "shortened",
  "rules",
  "timeline",
  "links",
  "capture",
  "expectPackets",
  "exclusive",
  "requires",
  "kernelChanges",
];
const HOST_FIELDS = ["sysctls"];
const SERVER_FIELDS = [
  "host",
  "port",
  "backlog",
  "accept",
  "acceptAfterMs",
  "maxOpenFiles",
  "serve",
];
const RULE_FIELDS = ["host", "direction", "packets", "group", "initially"];
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
  "timing",
];
const GROUP_FIELDS = [
  "name",
  "host",
  "count",
  "arrivals",
  "start",
  "afterConnect",
  "deadlineMs",
  "startWhen",
];
const ARRIVAL_FIELDS = ["perSecond", "forMs", "process", "seed"];
const LINK_FIELDS = ["toServer", "toClient"];
const OBSERVE_FIELDS = ["intervalMs", "windowMs", "metrics"];
const EXPECT_FIELDS = [
  "name",
  "metric",
  "equals",
  "atLeast",
  "atMost",
  "over",
  "stableMs",
  "timing",
];

/** Definitions {@linkcode defineExperiment} has checked (a loader need not check them again). */
const VALIDATED = new WeakSet<object>();

/** Whether `definition` came from {@linkcode defineExperiment}. */
export function isValidated(definition: unknown): boolean {
  return typeof definition === "object" && definition !== null && VALIDATED.has(definition);
}

/**
 * Validates an experiment's shape, names and constant values and returns it
 * unchanged, typed. Values given as functions of the matrix point are checked
 * when planning resolves them.
 *
 * @param definition The experiment.
 * @returns The same object.
 * @throws {ExperimentDefinitionError} naming the field and what would be valid.
 *
 * @example
 * ```ts
 * import { defineExperiment } from "./validate.ts";
 *
 * export default defineExperiment({
 *   id: "tiny-backlog",
 *   title: "listen(fd, 1) queues two connections",
 *   hypothesis: "The accept queue holds backlog + 1.",
 *   hosts: { server: {}, client: {} },
 *   server: { host: "server", backlog: 1 },
 *   clients: [{ name: "c", host: "client", count: 4 }],
 *   observe: { intervalMs: 20, windowMs: 2000 },
 *   expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: 2 }],
 *   claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "queued 2" }) },
 * });
 * ```
 */
export function defineExperiment<const M extends Matrix = Record<never, never>>(
  definition: ExperimentDefinition<M>,
): ExperimentDefinition<M> {
  if (isValidated(definition)) return definition;
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
  if (d.kernelChanges !== undefined) {
    if (!Array.isArray(d.kernelChanges)) {
      fail("kernelChanges", `expected an array of commit ids, got ${describe(d.kernelChanges)}`);
    }
    const known = KERNEL_CHANGES.map((c) => c.commit);
    for (const [i, c] of (d.kernelChanges as unknown[]).entries()) {
      if (typeof c !== "string" || !known.includes(c)) {
        fail(
          `kernelChanges[${i}]`,
          `${describe(c)} is not a commit of KERNEL_CHANGES${
            typeof c === "string" ? didYouMean(c, known) : ""
          } (known: ${known.join(", ")})`,
        );
      }
    }
  }
  if (d.requires !== undefined && typeof d.requires !== "function") {
    fail(
      "requires",
      `expected a function (params, kernel) => reason | undefined, got ${describe(d.requires)}`,
    );
  }

  const claims = d.claims === undefined
    ? {}
    : requireObject(d.claims, "claims", Object.keys(d.claims ?? {}));
  for (const [cid, rule] of Object.entries(claims)) {
    if (isUserClaimId(cid)) {
      const problem = userClaimIdProblem(cid);
      if (problem) fail(`claims.${cid}`, problem);
    } else if (!claimById(cid)) {
      fail(
        `claims.${cid}`,
        `"${cid}" is not in the claims catalogue${
          didYouMean(cid, CLAIMS.map((c) => c.id))
        } (ids run ${CLAIMS[0]!.id} … ${
          CLAIMS.at(-1)!.id
        }; a claim of your own is written "<prefix>:<name>" and defined in a claims file)`,
      );
    }
    if (typeof rule !== "function") {
      fail(`claims.${cid}`, `expected a rule function, got ${describe(rule)}`);
    }
    if (rule.constructor?.name === "AsyncFunction") {
      fail(
        `claims.${cid}`,
        "the rule is async: claim rules are synchronous (the runs they read are complete); remove `async`",
      );
    }
  }
  if (d.claimsFiles !== undefined) {
    if (!Array.isArray(d.claimsFiles)) {
      fail("claimsFiles", `expected an array of claims files, got ${describe(d.claimsFiles)}`);
    }
    d.claimsFiles.forEach((f: unknown, i: number) => {
      if (typeof f !== "string" || !/\.(md|ts)$/.test(f)) {
        fail(
          `claimsFiles[${i}]`,
          `expected the path of a claims file (.md or .ts) relative to this file, e.g. "./my_claims.md", got ${
            describe(f)
          }`,
        );
      }
    });
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
        if (!SYSCTL_RE.test(key)) {
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
  if (server.accept !== undefined && typeof server.accept !== "function") {
    acceptPolicy(server.accept, "server.accept");
  }
  if (server.acceptAfterMs !== undefined && typeof server.acceptAfterMs !== "function") {
    requireInt(server.acceptAfterMs, "server.acceptAfterMs", 0, MAX_WINDOW_MS);
  }
  if (server.maxOpenFiles !== undefined && typeof server.maxOpenFiles !== "function") {
    requireInt(server.maxOpenFiles, "server.maxOpenFiles", 8, 1 << 20);
  }
  if (server.serve !== undefined) {
    const serve = requireObject(server.serve, "server.serve", ["replyBytes"]);
    if (typeof serve.replyBytes !== "function") {
      requireInt(serve.replyBytes, "server.serve.replyBytes", 1, MAX_REPLY_BYTES);
    }
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
    if (group.arrivals !== undefined) {
      for (const k of ["count", "start"]) {
        if (group[k] !== undefined) {
          fail(
            `${f}.${k}`,
            `a group with arrivals opens its connections at their rate: drop "${k}", or drop "arrivals"`,
          );
        }
      }
      validateArrivals(group.arrivals, `${f}.arrivals`);
    } else if (group.count === undefined) {
      fail(
        `${f}.count`,
        "give the number of connections, or arrivals for sustained load, e.g. { perSecond: 400, forMs: 20000 }",
      );
    } else if (typeof group.count !== "function") {
      requireInt(group.count, `${f}.count`, 0, MAX_COUNT);
    }
    if (group.start !== undefined && group.start !== "together") {
      const s = requireObject(group.start, `${f}.start`, ["intervalMs", "perSecond"]);
      if (("intervalMs" in s) === ("perSecond" in s)) {
        fail(`${f}.start`, `give either intervalMs or perSecond, e.g. { perSecond: 20000 }`);
      }
      if ("intervalMs" in s) requireInt(s.intervalMs, `${f}.start.intervalMs`, 1, 60_000);
      else requireInt(s.perSecond, `${f}.start.perSecond`, 1, 1_000_000);
    }
    if (group.afterConnect !== undefined) followUp(group.afterConnect, `${f}.afterConnect`);
    if (group.deadlineMs !== undefined && typeof group.deadlineMs !== "function") {
      requireInt(group.deadlineMs, `${f}.deadlineMs`, 1, MAX_WINDOW_MS);
    }
  });
  d.clients.forEach((g: Record<string, unknown>, i: number) => {
    if (g.startWhen === undefined) return;
    const f = `clients[${i}].startWhen`;
    const w = requireObject(g.startWhen, f, ["metric", ...BOUND_FIELDS]);
    const metric = requireMetric(requireString(w.metric, `${f}.metric`), `${f}.metric`, {
      hosts: hostNames,
      serverHost,
      groups: groupNames,
    });
    if ((metric.kind === "client" || metric.kind === "outcome") && metric.group === g.name) {
      fail(
        `${f}.metric`,
        `a group cannot wait for its own outcomes ("${metric.name}"): it would never start`,
      );
    }
    requireBounds(w, f);
  });
  const ctx = { hosts: hostNames, serverHost, groups: groupNames };
  validateLinks(d.links, ctx);
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
  if (d.shortened !== undefined) {
    requireString(d.shortened, "shortened");
    if (d.faithfulMatrix === undefined) {
      fail("shortened", "says what the default matrix shortens: give faithfulMatrix too");
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
  if (observe.metrics !== undefined) {
    if (!Array.isArray(observe.metrics)) {
      fail(
        "observe.metrics",
        `expected an array of metric names, got ${describe(observe.metrics)}`,
      );
    }
    observe.metrics.forEach((m: unknown, i: number) => {
      requireMetric(requireString(m, `observe.metrics[${i}]`), `observe.metrics[${i}]`, ctx);
    });
  }

  const expectations = d.expect ?? [];
  if (!Array.isArray(expectations)) {
    fail("expect", `expected an array of expectations, got ${describe(d.expect)}`);
  }
  if (
    Object.keys(claims).length === 0 && expectations.length === 0 &&
    !(observe.metrics as unknown[] | undefined)?.length
  ) {
    fail(
      "observe.metrics",
      "an experiment without claims shows what it observed: name the metrics to show, " +
        'e.g. metrics: ["server.recvQ", "server.SYN_RECV"], or give expectations',
    );
  }
  const seen: string[] = [];
  expectations.forEach((e: unknown, i: number) => {
    const f = `expect[${i}]`;
    const x = requireObject(e, f, EXPECT_FIELDS);
    const name = requireString(x.name, `${f}.name`);
    if (seen.includes(name)) fail(`${f}.name`, `duplicate expectation name "${name}"`);
    seen.push(name);
    requireMetric(requireString(x.metric, `${f}.metric`), `${f}.metric`, {
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
    if (x.timing !== undefined && typeof x.timing !== "boolean") {
      fail(`${f}.timing`, `expected true or false, got ${describe(x.timing)}`);
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
      if (!(PACKET_KINDS as readonly string[]).includes(x.kind as string)) {
        fail(
          `${f}.kind`,
          `expected one of ${PACKET_KINDS.join(", ")}, got ${describe(x.kind)}${
            didYouMean(String(x.kind), PACKET_KINDS)
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
      if (x.timing !== undefined && typeof x.timing !== "boolean") {
        fail(`${f}.timing`, `expected true or false, got ${describe(x.timing)}`);
      }
      if (x.count === undefined && x.intervalsMs === undefined) {
        fail(f, "give count, intervalsMs or both");
      }
    });
  }
  VALIDATED.add(definition);
  return definition;
}
function validateArrivals(v: unknown, f: string): void {
  const a = requireObject(v, f, ARRIVAL_FIELDS);
  if (a.perSecond === undefined) fail(`${f}.perSecond`, "give the rate, e.g. 400");
  if (a.forMs === undefined) fail(`${f}.forMs`, "give the duration in ms, e.g. 20000");
  if (typeof a.perSecond !== "function") {
    requireInt(a.perSecond, `${f}.perSecond`, 1, MAX_ARRIVAL_RATE);
  }
  if (typeof a.forMs !== "function") requireInt(a.forMs, `${f}.forMs`, 1, MAX_WINDOW_MS);
  if (a.process !== undefined && a.process !== "fixed" && a.process !== "poisson") {
    fail(
      `${f}.process`,
      `expected "fixed" or "poisson", got ${describe(a.process)}${
        didYouMean(String(a.process), ["fixed", "poisson"])
      }`,
    );
  }
  if (a.seed !== undefined) requireInt(a.seed, `${f}.seed`, 0, 0xffff_ffff);
}

function validateLinks(v: unknown, ctx: MetricContext): void {
  if (v === undefined) return;
  const links = requireObject(v, "links", Object.keys(v ?? {}));
  for (const [host, link] of Object.entries(links)) {
    const f = `links.${host}`;
    requireHost(host, f, ctx.hosts);
    if (host === ctx.serverHost) {
      fail(
        f,
        `links are keyed by client host (each joins the server's host "${ctx.serverHost}"): name a client host${
          ctx.hosts.length > 1
            ? ` (${ctx.hosts.filter((h) => h !== ctx.serverHost).join(", ")})`
            : ""
        }`,
      );
    }
    if (
      isObject(link) &&
      Object.keys(link).some((k) => (SHAPE_FIELDS as readonly string[]).includes(k))
    ) {
      fail(
        f,
        `give the shape per direction, e.g. { toServer: { delayMs: 25 }, toClient: { delayMs: 25 } }`,
      );
    }
    const directions = requireObject(link, f, LINK_FIELDS);
    if (Object.keys(directions).length === 0) fail(f, "give toServer, toClient or both");
    for (const [direction, shape] of Object.entries(directions)) {
      const g = `${f}.${direction}`;
      const fields = requireObject(shape, g, SHAPE_FIELDS);
      for (const [k, value] of Object.entries(fields)) {
        if (typeof value !== "number" && typeof value !== "function") {
          fail(
            `${g}.${k}`,
            `expected a number or a function of the parameters, got ${describe(value)}`,
          );
        }
      }
      // Constants are checked now; a shape with functions when planning resolves them.
      if (Object.values(fields).every((x) => typeof x === "number")) {
        const problem = shapeProblem(fields);
        if (problem) fail(problem.field ? `${g}.${problem.field}` : g, problem.detail);
      }
    }
  }
}

function validateRules(v: unknown, ctx: MetricContext): string[] {
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
      if (!(RULE_PACKETS as readonly string[]).includes(k as string)) {
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
function validateTimeline(v: unknown, ctx: MetricContext, rules: readonly string[]): Set<string> {
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
      requireMetric(requireString(w.metric, `${f}.when.metric`), `${f}.when.metric`, ctx);
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
      if (!SYSCTL_RE.test(key)) {
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
