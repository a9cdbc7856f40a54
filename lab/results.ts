/**
 * The shapes of what a run produces; `--json` prints these.
 * @module
 */
import type { ConnectionTimeline } from "./observe/packet_timeline.ts";
import type { StepRecord } from "./act/timeline.ts";

export type { ConnectionTimeline, StepRecord };

/** A claim's verdict on the running kernel. */
export type Verdict = "reproduced" | "not reproduced" | "partly" | "historical";

/** What a claim rule returns. */
export interface ClaimDecision {
  /** The rule's verdict on this claim for the running kernel. */
  verdict: Verdict;
  /** One sentence with the observed numbers and the conditions. */
  evidence: string;
}

/**
 * One expectation checked against a run's samples, or (`over: "packets"`)
 * against its packet capture: then `metric` is `packets.<host>.<from>.<kind>[@group]`,
 * `observed` the count or gap that decided it, and `atMs` null.
 */
export interface CheckResult {
  /** The expectation's name, as given in the definition's `expect`. */
  name: string;
  /** The metric it reads, e.g. `server.SYN_RECV` or `clients.c.connected`. */
  metric: string;
  /**
   * How it was judged: held for its stable time, held in every sample, by the
   * peak, or from a packet capture once the run ended.
   */
  over: "settled" | "always" | "peak" | "packets";
  /** The expectation in words, e.g. `= 3 for 150 ms`, `<= 0 in every sample`. */
  expected: string;
  /** The value that decided it: the settled value, the peak, or the first sample that broke it. */
  observed: number | null;
  /** Whether the observed values satisfied it. */
  passed: boolean;
  /** Milliseconds after the clients began when it was decided, if it was. */
  atMs: number | null;
  /** For packet checks: what the capture showed, in words. */
  detail?: string;
}

/** Values of every observed metric at one instant. */
export interface Sample {
  /** Milliseconds since the clients were told to go. */
  t: number;
  /**
   * Metric → value: socket counts per TCP state (an inet_diag dump), the LISTEN socket's
   * `recvQ`/`sendQ` (the same dump, as `ss -ltn` shows them), counter changes since "go" (`/proc/<pid>/net/netstat`, `snmp`) and
   * `clients.<group>.*` tallies.
   */
  values: Record<string, number>;
}

/** What the kernel answered one connection, as the client program saw it. */
export interface ConnectionRecord {
  /** Name of the client group that opened the connection. */
  group: string;
  /** The connection's 0-based index within its group. */
  index: number;
  /**
   * `ok`, an errno name (`ECONNREFUSED`, `ETIMEDOUT`, …), `deadline`, or `pending` at the end.
   */
  connect: string;
  /** Milliseconds since "go" when connect() returned (null if it did not). */
  connectAtMs: number | null;
  /** How long connect() took. */
  connectMs: number | null;
  /** The follow-up's result (`data`, `eof`, `timeout`, `sent`, an errno name), if any. */
  after: string | null;
  /** Milliseconds since "go" when the follow-up ended or hit the deadline (null if it did not). */
  afterAtMs: number | null;
}

/** Phase durations of one matrix point, in milliseconds. */
export interface Phases {
  /** Creating the namespaces and veth links and setting (then reading back) sysctls. */
  build: number;
  /** Starting the server until its LISTEN socket is seen in the kernel. */
  server: number;
  /** Waiting for every client group to be ready, taking the counter baseline and sending "go". */
  clients: number;
  /** Sampling the kernel until the expectations were decided or the window ended. */
  observe: number;
  /** Turning the samples and client events into checks and connection records. */
  collect: number;
  /** Ending the processes and deleting the links and namespaces. */
  teardown: number;
}

/** A packet rule of a run and what it did. */
export interface RuleRecord {
  /** The host whose hook held the rule. */
  host: string;
  /** What it matched, as nft rule text. */
  nft: string;
  /** Packets it dropped, read from the rule's nft counter at the end. */
  dropped: number;
}

/** One matrix point's run. */
export interface RunResult {
  /** The matrix point: each parameter's value for this run. */
  params: Record<string, number | string | boolean>;
  /**
   * `fast`: kernel timers shortened for speed; `faithful`: the kernel's
   * defaults (`--faithful`); `default`: the experiment has no faithful variant.
   */
  mode: "fast" | "faithful" | "default";
  /** Every recorded sysctl, read back from each host's namespace after setting. */
  sysctls: Record<string, Record<string, string>>;
  /**
   * Each host's address on its link, and each client group's own address
   * (`clients.<group>`), without prefix length.
   */
  addresses: Record<string, string>;
  /** Whether the run completed and every check passed. */
  passed: boolean;
  /** Set when the run could not complete (its checks then did not pass). */
  error?: string;
  /** Wall-clock time of the whole run, in milliseconds. */
  durationMs: number;
  /** Time spent in each phase of the run. */
  phases: Phases;
  /** Each metric's last and highest value over the window. */
  observed: Record<string, { final: number; peak: number }>;
  /** One result per expectation, in definition order. */
  checks: CheckResult[];
  /** Every sample taken during the observation, in time order. */
  samples: Sample[];
  /** What the kernel answered each client connection, by group and index. */
  connections: ConnectionRecord[];
  /** Timeline steps performed, in order. */
  timeline: StepRecord[];
  /** Packet rules by name. */
  rules: Record<string, RuleRecord>;
  /** Per captured host: each connection's packets (times in ms since the release). */
  packets: Record<string, ConnectionTimeline[]>;
  /**
   * When the clients were released ("go"), in milliseconds since the Unix epoch: time 0 of
   * `samples`, `timeline`, `connections` and `packets`. Absent if the run failed before it.
   */
  originEpochMs?: number;
  /**
   * With `--report DIR`: per captured host, its pcap file, relative to DIR
   * (`pcaps/<experiment>/<run>-<host>.pcap`).
   */
  pcaps?: Record<string, string>;
  /** With `--report DIR`: the run's chart files, relative to DIR. */
  charts?: { svg: string; png: string };
}

/** Which captured packets {@linkcode RunEvidence.packets} returns. */
export interface PacketQuery {
  /** The capturing host. */
  host: string;
  /** `SYN`, `SYN-ACK`, `ACK`, `DATA`, `FIN` or `RST`. */
  kind: "SYN" | "SYN-ACK" | "ACK" | "DATA" | "FIN" | "RST";
  /** Which end sent them. */
  from: "client" | "server";
  /** Only this client group's connections. */
  group?: string;
}

/** A claim rule's view of one run: its params, checks and values. */
export interface RunEvidence<P> {
  /** The run's matrix point, typed by the experiment's matrix. */
  params: P;
  /** Whether the run completed and every check passed. */
  passed: boolean;
  /** The run's check results, in definition order. */
  checks: readonly CheckResult[];
  /** Host → sysctl → value, read back from each host's namespace after setting. */
  sysctls: Record<string, Record<string, string>>;
  /** What the kernel answered each client connection, by group and index. */
  connections: readonly ConnectionRecord[];
  /** The metric's last value (or highest with `"peak"`); throws on an unobserved metric. */
  value(metric: string, which?: "final" | "peak"): number;
  /** The named check; throws on an unknown name. */
  check(name: string): CheckResult;
  /** How the run's timers were set. */
  mode: "fast" | "faithful" | "default";
  /** When the named timeline step happened (ms since the release); throws if it did not. */
  stepAt(name: string): number;
  /** Per connection (in capture order), the times of the matching packets. */
  packets(query: PacketQuery): number[][];
  /** Each metric's samples as [t, value] pairs. */
  series(metric: string): [number, number][];
}

/** A claim's entry in the ledger. */
export interface LedgerEntry {
  /** Catalogue claim id, e.g. `A2.1`. */
  claim: string;
  /** Id of the article that makes the claim, e.g. `A2`. */
  article: string;
  /** The claim as the catalogue states it. */
  statement: string;
  /**
   * The deciding experiments' common verdict; `undecided` if none decided it or one failed or
   * errored, `conflict` if they disagree.
   */
  verdict: Verdict | "undecided" | "conflict";
  /** The observed numbers behind the verdict, or why there is none. */
  evidence: string;
  /** Ids of the experiments of this run that decide the claim. */
  experiments: string[];
}

/**
 * With `--repeat N`: something that did not come out the same in every repeat
 * of an experiment (see `lab/judge/repeat.ts` for the rules). Each outcome lists the
 * repeats that had it.
 */
export interface Flip {
  /**
   * What flipped: a claim's `verdict`, one `check` of a run, or a `run` whose
   * outcome changed while none of its checks flipped, or because it ended in an error.
   */
  kind: "verdict" | "check" | "run";
  /** For `verdict`: the claim id, e.g. `A1.3`. */
  claim?: string;
  /** For `check` and `run`: the run's matrix point as `name=value` pairs; `""` for a single run. */
  run?: string;
  /** For `check`: the check's name. */
  check?: string;
  /**
   * Each value it had and the 1-based repeats that had it; the value most
   * repeats had first, ties by the earliest repeat. Values: a verdict, `error: <message>`,
   * `missing` or `skipped` (`verdict`); `held`, `failed` or `missing` (`check`); `passed`,
   * `failed`, `error: <first line>`, `missing` or `skipped` (`run`).
   */
  outcomes: { value: string; repeats: number[] }[];
}

/** One experiment's result. */
export interface ExperimentResult {
  /** The experiment's kebab-case id, unique across experiments. */
  id: string;
  /** The experiment's one-line title. */
  title: string;
  /** The hypothesis it tests, in a sentence. */
  hypothesis: string;
  /** The experiment file it was loaded from, relative to the working directory. */
  file?: string;
  /** Whether every run passed. */
  passed: boolean;
  /** Why it was not run, if it was skipped; the ledger ignores a skipped experiment's claims. */
  skipped?: string;
  /** How its runs' timers were set (see {@linkcode RunResult.mode}). */
  mode: "fast" | "faithful" | "default";
  /** Wall-clock time of all its runs, in milliseconds. */
  durationMs: number;
  /** One result per matrix point, in matrix order. */
  runs: RunResult[];
  /** Claim id → its rule's decision, or the error the rule threw. */
  claims: Record<string, ClaimDecision | { error: string }>;
  /**
   * With `--repeat N`: how many times it ran (N). The result is then the
   * first repeat's, except `passed`, `durationMs`, `flips` and `repeatDurationsMs`.
   */
  repeats?: number;
  /**
   * With `--repeat N`: what did not come out the same in every repeat; `[]`
   * when every repeat agreed. `passed` is false unless it is empty.
   */
  flips?: Flip[];
  /**
   * With `--repeat N`: each repeat's wall-clock time, in repeat order;
   * `durationMs` is then their median.
   */
  repeatDurationsMs?: number[];
}

/** The machine a lab run ran on. */
export interface MachineInfo {
  /** The host name (`uname -n`). */
  hostname: string;
  /** Processor architecture (`uname -m`), e.g. `x86_64`. */
  arch: string;
  /** The processor's model name from `/proc/cpuinfo` (`unknown` if it has none). */
  cpu: string;
  /** Online processors. */
  cores: number;
  /** Total memory from `/proc/meminfo`, in MiB. */
  memoryMiB: number;
  /** The distribution's `PRETTY_NAME` from `/etc/os-release` (`unknown` if absent). */
  os: string;
  /** The Deno version that ran the lab. */
  deno: string;
}

/** The document `--json` prints and `--report DIR` writes as `results.json`. */
export interface LabReport {
  /**
   * Format version of this document (see `docs/results.md`). Readers reject
   * versions they do not know; it changes when a field is renamed, removed or changes meaning.
   */
  version: 1;
  /** Release of the kernel the lab ran on (`uname -r`). */
  kernel: string;
  /** The machine it ran on. */
  machine: MachineInfo;
  /** The command line that produced this document, e.g. `deno task lab --report out`. */
  command: string;
  /** When the lab run began, as an ISO 8601 timestamp. */
  startedAt: string;
  /** Wall-clock time of the whole lab run, in milliseconds. */
  durationMs: number;
  /** Whether every experiment passed. */
  passed: boolean;
  /** Each experiment's result, in the order they ran. */
  experiments: ExperimentResult[];
  /**
   * The verdict on each claim, in catalogue order: with `--json`, `--ledger` or
   * `--report`, every catalogue claim (undecided ones have no `experiments`);
   * otherwise only those the selected experiments decide.
   */
  ledger: LedgerEntry[];
}
