/**
 * backlog-lab: settle claims about Linux `listen()` backlogs, the SYN and
 * accept queues, somaxconn and syncookies by experiment, in network
 * namespaces of the running kernel.
 *
 * An experiment is data (see `define.ts`, the authoring entry): which hosts
 * (namespaces) with which sysctls, a server that listens with an exact
 * backlog and never accepts, concurrent client groups, and what the kernel
 * must be seen to do. {@linkcode Lab} runs experiments (as root) and returns
 * the whole report: every check, and a verdict per claim.
 *
 * @example Load the experiments, run them and write a report
 * ```ts ignore
 * import { Lab, loadExperiments, writeReport } from "./mod.ts";
 *
 * const experiments = await loadExperiments(["experiments/"]);
 * await using lab = new Lab({ keepCaptures: true });
 * const run = await lab.run(experiments);
 * console.log(run.report.passed, run.report.ledger.map((l) => `${l.claim} ${l.verdict}`));
 * await writeReport("report", run);
 * ```
 * @module
 */
export * from "./define.ts";
export {
  type HistoricalEntry,
  isHistoricalEntry,
  loadClaimsFile,
  type LoadedExperiment,
  type LoadedLab,
  loadExperiments,
  loadLab,
  type LoadOptions,
} from "./lab/describe/load.ts";
export { planExperiment, type PlanOptions } from "./lab/describe/plan.ts";
export { parseClaimsMarkdown, USER_CLAIM_ID, type UserClaim } from "./lab/describe/user_claims.ts";
export {
  checkFiles,
  type CheckOptions,
  type CheckProblem,
  type CheckReport,
} from "./lab/describe/check.ts";
export { scaffoldExperiment, writeScaffold } from "./lab/describe/scaffold.ts";
export type {
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
} from "./lab/describe/run_plan.ts";
export { type ArrivalPlan, arrivalTimes } from "./lab/describe/arrivals.ts";
export { type LinkShape, type NormalizedShape } from "./lab/describe/link_shape.ts";
export {
  hasChange,
  hasSysctl,
  isTimingLimited,
  KERNEL_CHANGES,
  type KernelChange,
  sysctlNumber,
  TIMING_LIMIT,
  unprobedKernel,
} from "./lab/describe/kernel.ts";
export {
  kernelLedger,
  kernelMatrixReport,
  type KernelMatrixReportInput,
} from "./lab/judge/kernel_ledger.ts";
export {
  type KernelChartFile,
  kernelReportMarkdown,
  type KernelReportOptions,
  writeKernelReport,
} from "./lab/report/kernel_report.ts";
export {
  type ClientCount,
  type Metric,
  type MetricContext,
  parseMetric,
} from "./lab/describe/metric.ts";
export { type Article, ARTICLES, type Claim, claimById, CLAIMS } from "./lab/describe/catalogue.ts";
export {
  type KeptCapture,
  Lab,
  type LabOptions,
  type LabRun,
  type RunnableExperiment,
  type RunOptions,
} from "./lab/run/lab.ts";
export {
  preflight,
  type PreflightOptions,
  type PreflightResult,
  type ProbeNamespace,
} from "./lab/topology/preflight.ts";
export { reapDeadRuns, type ReapResult } from "./lab/topology/reap.ts";
export {
  MachineLock,
  type MachineLockOptions,
  type MachineTicket,
} from "./lab/run/machine_lock.ts";
export {
  type RecordEntry,
  RunRecord,
  type RunRecordOptions,
  RUNS_ROOT,
} from "./lab/base/run_record.ts";
export { IPTABLES, NFT, TC, TCPDUMP, type ToolNeed } from "./lab/topology/packages.ts";
export type { RepeatSummary } from "./lab/judge/repeat.ts";
export { buildLedger, type LedgerOptions } from "./lab/judge/ledger.ts";
export {
  type CheckDifference,
  type ClaimOnlyInOne,
  type CompareOptions,
  compareReports,
  type ComparisonSide,
  type ExperimentOnlyInOne,
  type ExperimentOutcomeDifference,
  type NumberDifference,
  type Outcome,
  type ReportComparison,
  type RunOnlyInOne,
  type RunOutcomeDifference,
  type Side,
  type SysctlDifference,
  type VerdictDifference,
} from "./lab/judge/compare.ts";
export { CompareInputError, loadReport, loadResultsDocument } from "./lab/judge/load_report.ts";
export { comparisonMarkdown, comparisonTable } from "./lab/report/compare_text.ts";
export {
  type CaptureFile,
  type ReportFiles,
  type ReportInput,
  ReportWriteError,
  writeReport,
  type WriteReportOptions,
} from "./lab/report/directory.ts";
export { type Owner, sudoOwner } from "./lab/base/owner.ts";
export { reportMarkdown } from "./lab/report/markdown.ts";
export { type Counters, parseCounters } from "./lab/observe/counters.ts";
export { parseProcNetTcp, parseSs, type SocketRow } from "./lab/observe/socket_table.ts";
export { type Packet, parsePcap } from "./lab/observe/pcap.ts";
export { type PacketTimelineOptions, packetTimelines } from "./lab/observe/packet_timeline.ts";
export {
  CommandError,
  type DefinitionSubject,
  ExperimentDefinitionError,
  KernelTextError,
  PreflightError,
  WaitTimeoutError,
} from "./lab/base/errors.ts";
export type {
  ClaimSourceRecord,
  ClientOutcome,
  ConnectionTimeline,
  Distribution,
  ExperimentOutline,
  ExperimentResult,
  Flip,
  GroupExperience,
  KernelBehaviour,
  KernelFacts,
  KernelLedgerCell,
  KernelLedgerRow,
  KernelMachine,
  KernelMatrixReport,
  KernelRun,
  LabEvent,
  LabReport,
  LatenessSummary,
  LedgerEntry,
  LinkRecord,
  LinkStatsRecord,
  MachineInfo,
  OutcomeBin,
  PacketEvent,
  Phases,
  ProgressEvent,
  RuleRecord,
  RunResult,
  Sample,
  ServerRecord,
  ShapedDirectionRecord,
  StepRecord,
  VmRecord,
} from "./lab/results.ts";
