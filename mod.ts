/**
 * backlog-lab: settle claims about Linux `listen()` backlogs, the SYN and
 * accept queues, somaxconn and syncookies by experiment, in network
 * namespaces of the running kernel.
 *
 * An experiment is data: which hosts (namespaces) with which sysctls, a
 * server that listens with an exact backlog and never accepts, concurrent
 * client groups, and what the kernel must be seen to do. {@linkcode Lab}
 * runs it (as root) and reports every check and a verdict per claim.
 *
 * @example Define and run an experiment
 * ```ts ignore
 * import { defineExperiment, Lab, preflight } from "./mod.ts";
 *
 * const def = defineExperiment({
 *   id: "tiny-backlog",
 *   title: "listen(fd, 1) queues two connections",
 *   hypothesis: "The accept queue holds backlog + 1.",
 *   hosts: { server: {}, client: {} },
 *   server: { host: "server", backlog: 1 },
 *   clients: [{ name: "c", host: "client", count: 4, start: { intervalMs: 2 } }],
 *   observe: { intervalMs: 20, windowMs: 2000 },
 *   expect: [{ name: "queued", metric: "server.ESTABLISHED", equals: 2 }],
 *   claims: {
 *     "A2.1": (runs) => ({ verdict: "reproduced", evidence: `queued ${runs[0]!.value("server.ESTABLISHED")}` }),
 *   },
 * });
 * const lab = new Lab();
 * await preflight(lab.prefix);
 * const result = await lab.runExperiment(def);
 * console.log(result.passed, result.runs[0]!.checks);
 * ```
 * @module
 */
export {
  type AcceptPolicy,
  type CapturedKind,
  type ClaimRule,
  type ClientGroupDefinition,
  defineExperiment,
  type Expectation,
  type ExperimentDefinition,
  type FollowUp,
  type FollowUpSpec,
  type HostDefinition,
  type Matrix,
  type ObserveDefinition,
  type PacketExpectation,
  type Param,
  type ParamsOf,
  type ParamValue,
  type PlannedAction,
  type PlannedExpectation,
  type PlannedGroup,
  type PlannedPacketExpectation,
  type PlannedRule,
  type PlannedStep,
  planRuns,
  type RuleDefinition,
  type RulePackets,
  type RunPlan,
  type ServerDefinition,
  type StartCondition,
  type StepAction,
  type TimelineStep,
} from "./lab/describe/define.ts";
export {
  defineHistoricalClaims,
  type HistoricalClaims,
  historicalResult,
  isHistorical,
} from "./lab/describe/historical.ts";
export { nftRuleText, Wire, type WirePacketKind, type WireRule } from "./lab/topology/wire.ts";
export { Capture, type CaptureOptions, type CapturePrecision } from "./lab/observe/capture.ts";
export { type Packet, parsePcap } from "./lab/observe/pcap.ts";
export {
  type ConnectionTimeline,
  type PacketEvent,
  type PacketKind,
  type PacketTimelineOptions,
  packetTimelines,
} from "./lab/observe/packet_timeline.ts";
export {
  ensureTools,
  type EnsureToolsOptions,
  type EnsureToolsResult,
  NFT,
  TCPDUMP,
  type ToolNeed,
} from "./lab/topology/packages.ts";
export { describeAction, type StepRecord, Timeline } from "./lab/act/timeline.ts";
export { Lab, type LabOptions, type ProgressEvent, runFileName } from "./lab/run/lab.ts";
export {
  CHART_WIDTH,
  type ChartContext,
  type ChartData,
  chartData,
  type ChartEvent,
  type ChartPoint,
  type ChartSpec,
  chartSpec,
  renderSvg,
  svgToPng,
} from "./lab/report/chart.ts";
export {
  type ReportFiles,
  reportMarkdown,
  writeReport,
  type WriteReportOptions,
} from "./lab/report/markdown.ts";
export * from "./lab/judge/compare.ts";
export { machineInfo } from "./lab/observe/machine.ts";
export { preflight, type PreflightResult } from "./lab/topology/preflight.ts";
export { checkSysctls, type LoadedExperiment, loadExperiments } from "./lab/describe/load.ts";
export { buildLedger } from "./lab/judge/ledger.ts";
export {
  flipsText,
  mergeRepeats,
  type RepeatSummary,
  repeatTable,
  summarizeRepeats,
} from "./lab/judge/repeat.ts";
export { defaultJobs, Scheduler, type TaskOptions } from "./lab/run/scheduler.ts";
export { type Article, ARTICLES, type Claim, claimById, CLAIMS } from "./lab/describe/catalogue.ts";
export {
  CommandError,
  ExperimentDefinitionError,
  PreflightError,
  WaitTimeoutError,
} from "./lab/base/errors.ts";
export {
  countStates,
  parseProcNetTcp,
  parseSs,
  type SocketRow,
  TCP_STATES,
  type TcpState,
} from "./lab/observe/socket_table.ts";
export { counterDeltas, type Counters, parseCounters } from "./lab/observe/counters.ts";
export type {
  CheckResult,
  ClaimDecision,
  ConnectionRecord,
  ExperimentResult,
  Flip,
  LabReport,
  LedgerEntry,
  MachineInfo,
  PacketQuery,
  Phases,
  RuleRecord,
  RunEvidence,
  RunResult,
  Sample,
  Verdict,
} from "./lab/results.ts";
