/**
 * The shapes of what a run produces; `--json` prints these.
 * @module
 */

/** A claim's verdict on the running kernel. */
export type Verdict = "reproduced" | "not reproduced" | "partly" | "historical";

/** What a claim rule returns. */
export interface ClaimDecision {
  verdict: Verdict;
  /** One sentence with the observed numbers and the conditions. */
  evidence: string;
}

/** One expectation checked against a run's samples. */
export interface CheckResult {
  name: string;
  metric: string;
  over: "settled" | "always" | "peak";
  /** The expectation in words, e.g. `= 3 for 150 ms`, `<= 0 in every sample`. */
  expected: string;
  /** The value that decided it: the settled value, the peak, or the first sample that broke it. */
  observed: number | null;
  passed: boolean;
  /** Milliseconds after the clients began when it was decided, if it was. */
  atMs: number | null;
}

/** Values of every observed metric at one instant. */
export interface Sample {
  /** Milliseconds since the clients were told to go. */
  t: number;
  values: Record<string, number>;
}

/** What the kernel answered one connection, as the client program saw it. */
export interface ConnectionRecord {
  group: string;
  index: number;
  /** `ok`, an errno name (`ECONNREFUSED`, `ETIMEDOUT`, …), `deadline`, or `pending` at the end. */
  connect: string;
  /** Milliseconds since "go" when connect() returned (null if it did not). */
  connectAtMs: number | null;
  /** How long connect() took. */
  connectMs: number | null;
  /** The follow-up's result (`data`, `eof`, `timeout`, `sent`, an errno name), if any. */
  after: string | null;
  afterAtMs: number | null;
}

/** Phase durations of one matrix point, in milliseconds. */
export interface Phases {
  build: number;
  server: number;
  clients: number;
  observe: number;
  collect: number;
  teardown: number;
}

/** One matrix point's run. */
export interface RunResult {
  params: Record<string, number | string | boolean>;
  /** Every recorded sysctl, read back from each host's namespace after setting. */
  sysctls: Record<string, Record<string, string>>;
  /** Each host's address on its link. */
  addresses: Record<string, string>;
  passed: boolean;
  /** Set when the run could not complete (its checks then did not pass). */
  error?: string;
  durationMs: number;
  phases: Phases;
  /** Each metric's last and highest value over the window. */
  observed: Record<string, { final: number; peak: number }>;
  checks: CheckResult[];
  samples: Sample[];
  connections: ConnectionRecord[];
}

/** A claim rule's view of one run: its params, checks and values. */
export interface RunEvidence<P> {
  params: P;
  passed: boolean;
  checks: readonly CheckResult[];
  sysctls: Record<string, Record<string, string>>;
  connections: readonly ConnectionRecord[];
  /** The metric's last value (or highest with `"peak"`); throws on an unobserved metric. */
  value(metric: string, which?: "final" | "peak"): number;
  /** The named check; throws on an unknown name. */
  check(name: string): CheckResult;
}

/** A claim's entry in the ledger. */
export interface LedgerEntry {
  claim: string;
  article: string;
  statement: string;
  verdict: Verdict | "undecided" | "conflict";
  evidence: string;
  experiments: string[];
}

/** One experiment's result. */
export interface ExperimentResult {
  id: string;
  title: string;
  hypothesis: string;
  file?: string;
  passed: boolean;
  skipped?: string;
  durationMs: number;
  runs: RunResult[];
  claims: Record<string, ClaimDecision | { error: string }>;
}

/** The document `--json` prints. */
export interface LabReport {
  version: 1;
  kernel: string;
  startedAt: string;
  durationMs: number;
  passed: boolean;
  experiments: ExperimentResult[];
  ledger: LedgerEntry[];
}
