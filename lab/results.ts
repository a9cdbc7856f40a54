/**
 * The shapes of what a run produces; `--json` prints these.
 * @module
 */
import type { JudgedOver, PacketKind, RunMode, Verdict } from "./vocabulary.ts";

export type { JudgedOver, PacketKind, RunMode, Verdict };

/**
 * What probes measured a kernel doing. `null`: the probe could not tell; an
 * experiment then has no rule for this kernel and records what it observes.
 */
export interface KernelBehaviour {
  /**
   * How many request sockets (SYN_RECV) a listener keeps beyond its
   * accept-queue limit min(backlog, somaxconn), measured with listen(fd, 1)
   * and tcp_syncookies 0: `0` when `inet_csk_reqsk_queue_is_full()` tests
   * `qlen >= limit` (Linux 4.4 … 6.12), `1` when it tests `qlen > limit`
   * (commit 3479c7549fb1, v6.13, backported to stable kernels; `KERNEL_CHANGES` in
   * `lab/describe/kernel.ts`).
   */
  synQueueExtra: 0 | 1 | null;
}

/** How the kernel runs: directly, or in a VM with hardware virtualization or emulated. */
export type KernelMachine = "native" | "kvm" | "tcg";

/**
 * What the lab knows about the kernel it runs on, probed once per lab run;
 * every experiment is planned with it (helpers in `lab/describe/kernel.ts`).
 */
export interface KernelFacts {
  /** `uname -r`. */
  release: string;
  /**
   * Every `net.*` sysctl a fresh network namespace of this kernel has, with
   * its value there (`""` for one that cannot be read). Empty when not probed.
   */
  sysctls: Readonly<Record<string, string>>;
  /** What the behaviour probes measured. */
  behaviour: KernelBehaviour;
  /** `native` on the lab's own machine; `kvm` or `tcg` inside a `--kernel` VM. */
  machine: KernelMachine;
  /**
   * How many times slower this machine runs the lab's own work (starting
   * processes, the programs' event loops) than the machine that started it;
   * 1 outside a VM. The lab stretches its own deadlines (command timeouts,
   * observation windows) by it; kernel timers are never stretched.
   */
  timeScale: number;
  /** Whether the facts were probed (false: assumed, for planning without a kernel, e.g. `--list`). */
  probed: boolean;
}

/** A timeline step that happened, as results record it. */
export interface StepRecord {
  /** The step's name. */
  name: string;
  /** What it did, in words (e.g. `remove rule "hold_acks"`). */
  action: string;
  /** Milliseconds after the clients were released that it was performed. */
  atMs: number;
  /** What the action returned, if anything worth keeping (e.g. a sysctl read back). */
  result?: string;
}

/** One captured segment of a connection. */
export interface PacketEvent {
  /** Milliseconds since the run's release (`originEpochMs` in results). */
  t: number;
  /** "in" = client → server, "out" = server → client. */
  dir: "in" | "out";
  /** RST wins over everything; SYN-ACK = syn+ack; SYN; FIN; DATA = payload > 0; else ACK. */
  kind: PacketKind;
  /** Raw 32-bit sequence number. */
  seq: number;
  /** Raw 32-bit acknowledgment number. */
  ack: number;
  /** TCP payload bytes. */
  len: number;
  /**
   * True when this segment repeats an earlier one of the same direction and kind with the same
   * seq (a retransmission). A pure ACK occupies no sequence space, so an ACK counts as a repeat
   * only when its ack number is the same too (a duplicate ACK, e.g. the client answering each
   * retransmitted SYN-ACK).
   */
  retransmit: boolean;
}

/** The captured segments of one connection, in capture order. */
export interface ConnectionTimeline {
  /** `addr:port`, IPv6 as `[addr]:port`. */
  client: string;
  /** `addr:port` of the server, written like `client`. */
  server: string;
  /** Every segment of the connection, in capture order. */
  events: PacketEvent[];
}

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
  over: JudgedOver | "packets";
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
  /**
   * Set when the check's bound depends on the lab's speed (a `timing`
   * expectation) and the machine is too slow for it (an emulated VM): it was
   * recorded, and cannot fail the run.
   */
  timingLimited?: true;
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
  /**
   * Milliseconds from the start of connect() to the first reply byte, for a
   * follow-up that reads and got data (null otherwise). Absent in results of
   * lab versions before it was recorded.
   */
  firstByteMs?: number | null;
}

/** Durations in ms: how many, and their nearest-rank percentiles. */
export interface Distribution {
  /** How many values. */
  count: number;
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** The largest. */
  max: number;
}

/**
 * How a connection ended for its client: `connected` (connect() returned
 * and nothing failed after), `reset` (ECONNRESET, in connect() or after),
 * `refused` (ECONNREFUSED), `timedOut` (connect() ETIMEDOUT, the group's
 * deadline, or a read that timed out), `failed` (any other errno), `pending`
 * (still connecting when the run ended).
 */
export type ClientOutcome = "connected" | "reset" | "refused" | "timedOut" | "failed" | "pending";

/** The outcome events of one time bin (events, not connections: a reset follows a connect). */
export interface OutcomeBin {
  /** The bin's start, ms since the release. */
  t: number;
  /** connect() calls that returned successfully. */
  connected: number;
  /** ECONNRESET, in connect() or after it. */
  reset: number;
  /** connect() calls refused (ECONNREFUSED). */
  refused: number;
  /** connect() ETIMEDOUT, a deadline, or a read timeout. */
  timedOut: number;
  /** Any other error. */
  failed: number;
}

/** What one client group's connections felt, from their records. */
export interface GroupExperience {
  /** Connections launched. */
  connections: number;
  /** Each connection's final outcome, counted (see {@linkcode ClientOutcome}). */
  outcomes: Record<ClientOutcome, number>;
  /** How long connect() took, over the connections whose connect() returned; null for none. */
  connectMs: Distribution | null;
  /** From connect() to the first reply byte, over the connections that got one; null for none. */
  firstByteMs: Distribution | null;
  /**
   * Outcome events by when they happened, in bins of `binMs` from the release:
   * the bins with an event, in time order (a bin without one is left out).
   */
  overTime: { binMs: number; bins: OutcomeBin[] };
}

/** A lateness distribution, in ms (µs precision). */
export interface LatenessSummary {
  /** Packets measured. */
  count: number;
  /** Median lateness (upper edge of its 1 µs bin). */
  medianMs: number;
  /** 99th percentile. */
  p99Ms: number;
  /** Mean. */
  meanMs: number;
  /** The largest. */
  maxMs: number;
  /** How many were more than 1 ms late. */
  over1ms: number;
}

/** A shaped direction's counters at the end of the observation (see docs/link-shaping.md). */
export interface LinkStatsRecord {
  /** IPv4/IPv6 packets sent to the interface (before loss), since the shaping was set up. */
  offered: number;
  /** Packets dropped by the random loss. */
  lost: number;
  /** Packets let through after their delay (netem: packets it dequeued). */
  delayed: number;
  /** Packets held at that moment. */
  held: number;
  /**
   * Packets dropped because the delay queue was full: netem's `limit`, or
   * the NFQUEUE queue length or the delayer's socket buffer (the kernel's
   * `queue_dropped` + `queue_user_dropped`). 0 in a sound run.
   */
  queueDropped: number;
  /** Packets the rate limiter (tbf) dropped from its full queue. */
  rateDropped: number;
  /**
   * NFQUEUE only: packets the NFQUEUE rules sent to the delayer (their
   * counters). Once nothing is held, `queued = delayed + queueDropped`
   * exactly: the delayer loses nothing. (`offered` counts from a few
   * milliseconds earlier, when the table was made, so it can be larger.)
   */
  queued?: number;
  /** NFQUEUE only: how late the delayer released packets against their due times. */
  lateness?: LatenessSummary;
  /** NFQUEUE only: the most packets held at once. */
  peakHeld?: number;
  /** NFQUEUE only: the delayer's CPU time (user + system), ms. */
  cpuMs?: number;
}

/** One shaped direction of a link: what was declared, what ran, what it did. */
export interface ShapedDirectionRecord {
  /** The shape in force: the declared values with defaults filled in (`rateKbit` only when limited). */
  shape: {
    /** One-way delay, ms. */
    delayMs: number;
    /** Half-width of a uniform jitter, ms. */
    jitterMs: number;
    /** Random loss, percent. */
    lossPercent: number;
    /** Rate limit, kbit/s. */
    rateKbit?: number;
    /** The rate limiter's queue, ms at the rate. */
    rateQueueMs?: number;
  };
  /** What delayed the packets: `netem`, the NFQUEUE delayer, or `none` (loss or rate only). */
  mechanism: "netem" | "nfqueue" | "none";
  /** The interface whose outgoing packets were shaped, as `<host>:<ifname>`. */
  interface: string;
  /** Its counters at the end of the observation; null when they could not be read. */
  stats: LinkStatsRecord | null;
  /**
   * Why the link's evidence is broken (its delayer exited, dropped packets from a full queue,
   * or released them late beyond the tolerance); absent when it is sound. A run with a problem fails.
   */
  problem?: string;
}

/** A client host's link, per shaped direction. */
export interface LinkRecord {
  /** Packets from the client host to the server. */
  toServer?: ShapedDirectionRecord;
  /** Packets from the server to the client host. */
  toClient?: ShapedDirectionRecord;
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

/** A run's listening server. */
export interface ServerRecord {
  /** The host (namespace) it ran on. */
  host: string;
  /** Its TCP port. */
  port: number;
  /** The `backlog` passed verbatim to `listen()`. */
  backlog: number;
}

/** One matrix point's run. */
export interface RunResult {
  /** The matrix point: each parameter's value for this run. */
  params: Record<string, number | string | boolean>;
  /**
   * `fast`: shortened for speed (kernel timers, or a load's length: see
   * `ExperimentResult.shortened`); `faithful`: the full variant, the kernel's
   * defaults (`--faithful`); `default`: the experiment has no faithful variant.
   */
  mode: RunMode;
  /** The listening server: its host, port and the backlog passed to `listen()`. */
  server: ServerRecord;
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
  /** Shaped links by client host (absent when the experiment shapes none). */
  links?: Record<string, LinkRecord>;
  /**
   * What each client group's connections felt: outcomes, connect and first-byte
   * time distributions, outcomes over time. Absent in results of lab versions before it.
   */
  experience?: Record<string, GroupExperience>;
  /** Per captured host: each connection's packets (times in ms since the release). */
  packets: Record<string, ConnectionTimeline[]>;
  /**
   * When the clients were released ("go"), in milliseconds since the Unix epoch: time 0 of
   * `samples`, `timeline`, `connections` and `packets`. Absent if the run failed before it.
   */
  originEpochMs?: number;
  /**
   * Packets the machine's per-CPU input queues dropped while the run was
   * observed (`/proc/net/softnet_stat`, shared by every namespace: a packet
   * dropped there never reached TCP). Absent when none was.
   */
  inputQueueDrops?: number;
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
  kind: PacketKind;
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
  mode: RunMode;
  /** When the named timeline step happened (ms since the release); throws if it did not. */
  stepAt(name: string): number;
  /** Per connection (in capture order), the times of the matching packets. */
  packets(query: PacketQuery): number[][];
  /** Each metric's samples as [t, value] pairs. */
  series(metric: string): [number, number][];
  /** The kernel the run ran on: its release, sysctls, measured behaviour and machine. */
  kernel: KernelFacts;
  /** What client group `group`'s connections felt; throws for an unknown group. */
  experience(group: string): GroupExperience;
  /** The shaped links of the run by client host (empty when none). */
  links: Record<string, LinkRecord>;
}

/** Where a claim of your own comes from, as its claims file gives it. */
export interface ClaimSourceRecord {
  /** The title of the article (talk, page) that makes the claim. */
  title: string;
  /** Its http(s) address. */
  url: string;
  /** The claims file that defines the claim, relative to the working directory (with `:line` for Markdown). */
  file?: string;
}

/** A claim's entry in the ledger. */
export interface LedgerEntry {
  /** Claim id: a catalogue id, e.g. `A2.1`, or one of your own, `<prefix>:<name>`, e.g. `cf:synack-retries`. */
  claim: string;
  /** Id of the article that makes the claim, e.g. `A2`; for a claim of your own, its id's prefix (`cf`). */
  article: string;
  /** The claim as the catalogue (or your claims file) states it. */
  statement: string;
  /** For a claim of your own: its source (title and URL) and the file that defines it. */
  source?: ClaimSourceRecord;
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
  /** Whether every run passed and every claim rule decided (a claim error fails the experiment). */
  passed: boolean;
  /** Why it was not run, if it was skipped; the ledger ignores a skipped experiment's claims. */
  skipped?: string;
  /** How its runs' timers were set (see {@linkcode RunResult.mode}). */
  mode: RunMode;
  /**
   * What its default (`fast`) variant shortens, when that is not kernel
   * timers, e.g. `load: 1 s of arrivals instead of 20 s`; `--faithful` runs the full length.
   */
  shortened?: string;
  /** Wall-clock time of all its runs, in milliseconds. */
  durationMs: number;
  /** One result per matrix point, in matrix order. */
  runs: RunResult[];
  /**
   * Matrix points this kernel cannot run (the experiment's `requires` said
   * why), in matrix order; absent when none. Their claims are decided from
   * the runs that ran.
   */
  skippedRuns?: { params: Record<string, number | string | boolean>; reason: string }[];
  /** Claim id → its rule's decision, or the error the rule threw; `{}` for an exploratory experiment. */
  claims: Record<string, ClaimDecision | { error: string }>;
  /**
   * Commits of kernel changes the experiment's numbers depend on (its
   * `kernelChanges`), for explaining verdicts that differ between kernels.
   */
  kernelChanges?: string[];
  /**
   * The metrics the experiment names (`observe.metrics`, then its
   * expectations'), in order: its table of observed values shows each one's
   * `final` and `peak` of `runs[].observed`. Absent for historical claims.
   */
  metrics?: string[];
  /**
   * What-ifs (`--set name=value,…`): each matrix parameter whose values this
   * run replaced, with the values run. Its verdicts say so in their evidence.
   */
  overrides?: Record<string, (number | string | boolean)[]>;
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
  /**
   * What the lab probed of that kernel (sysctls of a fresh namespace, measured
   * behaviour, native or in a VM, time scale), with which it planned the experiments.
   */
  kernelFacts?: KernelFacts;
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
   * otherwise only those the selected experiments decide. Then every claim
   * of your own that was loaded, in the order of its files, decided or not.
   */
  ledger: LedgerEntry[];
}

/** How one kernel of a `--kernel` run was booted and run in its VM. */
export interface VmRecord {
  /** The accelerator: `kvm` (hardware virtualization) or `tcg` (QEMU's emulator, 20 to 90 times slower for the lab). */
  accel: "kvm" | "tcg";
  /** Where the kernel came from, e.g. `Debian linux-image-5.10.0-32-amd64-unsigned 5.10.223-1 (bullseye)`. */
  source: string;
  /** From QEMU's start to the lab's start in the guest, in milliseconds. */
  bootMs: number;
  /** From the lab's start in the guest to the guest's end, in milliseconds. */
  runMs: number;
  /** Boot attempts (2 when the first crashed or hung). */
  attempts: number;
  /** Guest memory, in MiB. */
  memoryMiB: number;
  /** Guest CPUs. */
  cpus: number;
  /** The guest kernel's command line. */
  kernelCmdline: string;
  /** The lab's exit status in the guest. */
  exitCode: number;
  /** The guest's console log on the host (kernel and init messages). */
  consoleLog: string;
}

/** One kernel of a `--kernel` run. */
export interface KernelRun {
  /** The `--kernel` spec as given, e.g. `5.10`, `5.10.0-32`, `host`. */
  spec: string;
  /** The kernel's column label in tables: its upstream version, or `host <release>`; unique in the run. */
  label: string;
  /** `host`: the lab's own kernel, run as without `--kernel`; `vm`: a kernel booted in a VM. */
  target: "host" | "vm";
  /** How its VM ran (target `vm`, once booted). */
  vm?: VmRecord;
  /** The lab's results on it; absent when it could not run (see `error`). */
  report?: LabReport;
  /** Why it has no report, or what went wrong after. */
  error?: string;
  /** Wall-clock time for this kernel: download, boot, run, in milliseconds. */
  durationMs: number;
}

/** A claim's verdict on one kernel of a `--kernel` run. */
export interface KernelLedgerCell {
  /** The kernel's label (see {@linkcode KernelRun.label}). */
  kernel: string;
  /** Its verdict there; `not run` when the kernel has no report. */
  verdict: Verdict | "undecided" | "conflict" | "not run";
  /** The deciding experiments there. */
  experiments: string[];
}

/** A row of the claims × kernels ledger. */
export interface KernelLedgerRow {
  /** Catalogue claim id, e.g. `A2.5`. */
  claim: string;
  /** Id of the article that makes it. */
  article: string;
  /** The claim as the catalogue states it. */
  statement: string;
  /** One cell per kernel, in the run's kernel order. */
  cells: KernelLedgerCell[];
  /** Whether the kernels that ran it gave different verdicts. */
  differs: boolean;
  /**
   * Where verdicts differ: the kernel changes the deciding experiments know of that
   * split the kernels the same way, in words (commit, title, release, backports).
   */
  explanation?: string;
  /**
   * Where verdicts agree: the kernel changes the deciding experiments know of
   * that some of these kernels have and others lack, in words. The verdict is
   * the same, but the numbers behind it follow the change.
   */
  changes?: string;
}

/**
 * The document a `--kernel` run of several kernels prints with `--json` and
 * writes as `results.json`: each kernel's whole report, and the claims × kernels ledger.
 */
export interface KernelMatrixReport {
  /** Format version (see `docs/results.md`). */
  version: 1;
  /** Each kernel, in the order of the `--kernel` options. */
  kernels: KernelRun[];
  /** Every catalogue claim, in catalogue order: its verdict on each kernel. */
  ledger: KernelLedgerRow[];
  /** The machine that ran the VMs (and the host kernel). */
  machine: MachineInfo;
  /** The command line, e.g. `deno task lab --kernel 6.1 --kernel host`. */
  command: string;
  /** When the run began, ISO 8601. */
  startedAt: string;
  /** Wall-clock time of the whole run, in milliseconds. */
  durationMs: number;
  /** Whether every kernel ran and every experiment passed on it. */
  passed: boolean;
}

/** What a progress display knows about an experiment before it runs. */
export interface ExperimentOutline {
  /** The experiment's id. */
  id: string;
  /** Its number of matrix points. */
  runs: number;
  /** How long it took last time on this machine, if known. */
  lastMs?: number;
  /** Its longest possible observation (the sum of its runs' windows and overheads). */
  boundMs: number;
}

/** A matrix point starting or ending, for progress displays. */
export type ProgressEvent =
  | {
    kind: "run-start";
    experiment: string;
    index: number;
    of: number;
    params: Record<string, unknown>;
    /** The repeat (1-based) when the experiment runs several times. */
    repeat?: number;
  }
  | {
    kind: "run-end";
    experiment: string;
    index: number;
    of: number;
    result: RunResult;
    /** The repeat (1-based) when the experiment runs several times. */
    repeat?: number;
  };

/** What a lab run reports as it goes. */
export type LabEvent =
  | {
    /** The machine passed preflight and the experiments are queued. */
    kind: "start";
    /** Release of the kernel (`uname -r`). */
    kernel: string;
    /** What was probed of the kernel; the experiments are planned with it. */
    kernelFacts: KernelFacts;
    /** Namespaces of dead runs that were removed. */
    reaped: string[];
    /**
     * What reaping left alone, each with why: entries of `/run/netns` named
     * like the lab's that no run record names, and what a dead run's record
     * names but could not be removed.
     */
    leftAlone?: string[];
    /** Matrix points that run at once. */
    jobs: number;
    /** How many times each experiment runs. */
    repeats: number;
    /** Each experiment, in definition order. */
    outlines: ExperimentOutline[];
  }
  | ProgressEvent
  | {
    /**
     * A matrix point waits for the machine: other labs on it hold every slot,
     * or run a point that must run alone (sent once per point, after 0.5 s).
     */
    kind: "waiting";
    experiment: string;
    index: number;
    of: number;
    /** What it waits for, in words. */
    why: string;
    /** The repeat (1-based) when the experiment runs several times. */
    repeat?: number;
  }
  | {
    /** An experiment is done (all its repeats), and so is every one before it. */
    kind: "experiment";
    /** Its position in definition order. */
    index: number;
    /** Its result (repeats merged). */
    result: ExperimentResult;
  };
