/**
 * The authoring entry of backlog-lab: what an experiment file (and a claims
 * module of your own, `defineClaims`) imports. It loads the definition types,
 * their validation and the claims catalogue, and nothing that runs, renders
 * or draws.
 *
 * @example An experiment file
 * ```ts
 * import { defineExperiment } from "./define.ts";
 *
 * export default defineExperiment({
 *   id: "tiny-backlog",
 *   title: "listen(fd, 1) queues two connections",
 *   hypothesis: "The accept queue holds backlog + 1.",
 *   hosts: { server: {}, client: {} },
 *   server: { host: "server", backlog: 1 },
 *   clients: [{ name: "c", host: "client", count: 4, start: { intervalMs: 2 } }],
 *   observe: { intervalMs: 20, windowMs: 2000 },
 *   expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: 2 }],
 *   claims: {
 *     "A2.1": (runs) => ({
 *       verdict: runs.every((r) => r.value("server.ESTABLISHED") === 2) ? "reproduced" : "not reproduced",
 *       evidence: `queued ${runs.map((r) => r.value("server.ESTABLISHED")).join(", ")}`,
 *     }),
 *   },
 * });
 * ```
 * @module
 */
export { defineExperiment } from "./lab/describe/validate.ts";
export type { LinkShape } from "./lab/describe/link_shape.ts";
export { defineHistoricalClaims, type HistoricalClaims } from "./lab/describe/historical.ts";
export {
  hasChange,
  hasSysctl,
  isTimingLimited,
  KERNEL_CHANGES,
  type KernelBehaviour,
  type KernelChange,
  type KernelFacts,
  type KernelMachine,
  sysctlNumber,
  TIMING_LIMIT,
} from "./lab/describe/kernel.ts";
export {
  type ClaimsDefinition,
  type ClaimSource,
  defineClaims,
  type UserClaimDefinition,
} from "./lab/describe/user_claims.ts";
export type {
  AcceptPolicy,
  ArrivalsDefinition,
  ClaimRule,
  ClientGroupDefinition,
  Expectation,
  ExperimentDefinition,
  FollowUp,
  HostDefinition,
  LinkDefinition,
  LinkShapeDefinition,
  Matrix,
  ObserveDefinition,
  PacketExpectation,
  Param,
  ParamsOf,
  ParamValue,
  RuleDefinition,
  ServerDefinition,
  StartCondition,
  StepAction,
  TimelineStep,
} from "./lab/describe/types.ts";
export type {
  CheckResult,
  ClaimDecision,
  ClientOutcome,
  ConnectionRecord,
  Distribution,
  GroupExperience,
  LinkRecord,
  LinkStatsRecord,
  OutcomeBin,
  PacketQuery,
  RunEvidence,
  ShapedDirectionRecord,
} from "./lab/results.ts";
export {
  JUDGED_OVER,
  type JudgedOver,
  PACKET_KINDS,
  type PacketKind,
  RULE_PACKETS,
  type RulePacketKind,
  RUN_MODES,
  type RunMode,
  TCP_STATES,
  type TcpState,
  type Verdict,
  VERDICTS,
} from "./lab/vocabulary.ts";
