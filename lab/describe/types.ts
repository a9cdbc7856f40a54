/**
 * The authoring types of an experiment: what a definition file writes inside
 * `defineExperiment({ … })`. Values may be functions of the matrix point
 * ({@linkcode Param}); planning resolves them (see `plan.ts`).
 * @module
 */
import type { ClaimDecision, RunEvidence } from "../results.ts";
import type { JudgedOver, PacketKind, RulePacketKind } from "../vocabulary.ts";
import type { KernelFacts } from "./kernel.ts";
import type { LinkShape } from "./link_shape.ts";

export type { KernelFacts };

/** A matrix parameter's value. */
export type ParamValue = number | string | boolean;
/** Parameter names and the values each takes. */
export type Matrix = Record<string, readonly ParamValue[]>;
/** One point of a matrix. */
export type ParamsOf<M extends Matrix> = { -readonly [K in keyof M]: M[K][number] };
/**
 * A value, or a function of the matrix point (and of the kernel the run is
 * planned for, see {@linkcode KernelFacts}) that gives it.
 */
export type Param<P, T> = T | ((params: P, kernel: KernelFacts) => T);

/** A network namespace of the experiment. */
export interface HostDefinition<P> {
  /**
   * `net.*` sysctls written inside this host's namespace (never the host's
   * own). A function may return `undefined` to leave the sysctl alone on a
   * kernel (e.g. one that lacks it: `(p, k) => hasSysctl(k, name) ? v : undefined`).
   */
  sysctls?: Record<string, Param<P, number | string | undefined>>;
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
  /**
   * Default `"never"`. May be a function of the matrix point and the kernel
   * (e.g. a slower rate on a machine that runs the lab far slower).
   */
  accept?: Param<P, AcceptPolicy>;
  /** The accept policy starts this long after the clients are released; default 0. */
  acceptAfterMs?: Param<P, number>;
  /** The server process's `RLIMIT_NOFILE` (soft and hard), set after it listens. */
  maxOpenFiles?: Param<P, number>;
  /**
   * Serve each accepted connection like a real server: read a request (the
   * first bytes that arrive), write `replyBytes` bytes, close. Without it an
   * accepted connection stays open, never read, until the run ends.
   */
  serve?: { replyBytes: Param<P, number> };
}

/**
 * One direction of a link: a one-way delay (with jitter), random loss and a
 * rate limit (see `LinkShape` for each field's range). Each value is a
 * number or a function of the matrix point.
 */
export type LinkShapeDefinition<P> = { [K in keyof LinkShape]?: Param<P, number> };

/**
 * The link between the server's host and one client host, per direction.
 * Where the kernel has `sch_netem` it delays; elsewhere an NFQUEUE delayer
 * does (see docs/link-shaping.md); each run's results say which.
 */
export interface LinkDefinition<P> {
  /** Packets from the client host to the server (shaped as they leave the client host). */
  toServer?: LinkShapeDefinition<P>;
  /** Packets from the server to the client host (shaped as they leave the server host). */
  toClient?: LinkShapeDefinition<P>;
}

/**
 * Open-loop arrivals: connections start at a rate for a duration, whatever
 * happens to the earlier ones (as users arrive at a server).
 */
export interface ArrivalsDefinition<P> {
  /** Connections a second, 1 to 100,000. */
  perSecond: Param<P, number>;
  /** For this long, in ms. */
  forMs: Param<P, number>;
  /**
   * `"fixed"` (default): evenly spaced, one every `1000 / perSecond` ms;
   * `"poisson"`: a Poisson process of that rate (independent exponential
   * gaps), drawn from `seed`, so a run can be repeated exactly.
   */
  process?: "fixed" | "poisson";
  /** The seed of the Poisson draws, a non-negative integer; default 1. */
  seed?: number;
}

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
  packets: RulePacketKind | readonly RulePacketKind[];
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
  /** The step exists only at matrix points (and kernels) where this returns true; default all. */
  only?: (params: P, kernel: KernelFacts) => boolean;
  /** The action. */
  do: StepAction<P>;
}

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
  kind: PacketKind;
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
  /**
   * The bound depends on how fast the lab builds the situation (e.g. how many
   * SYN-ACK timer firings pass before a step), not on the kernel alone. On a
   * machine much slower than native (an emulated VM: the kernel's time scale
   * above `TIMING_LIMIT` of `lab/describe/kernel.ts`) the check is still recorded, but cannot
   * fail the run: it says it is timing-limited there.
   */
  timing?: boolean;
}

/**
 * What a client does once `connect()` returns: send `send` bytes (a
 * request), read with a timeout (the reply; the first bytes end the read),
 * or both; with `close: true` it then closes the socket (a client done with
 * its request), otherwise the socket stays open until the run ends. A read's
 * timeout may be a function of the matrix point and the kernel (e.g.
 * stretched by its `timeScale` where it must outlast the lab's own steps).
 */
// deno-lint-ignore no-explicit-any
export type FollowUp<P = any> =
  | "nothing"
  | { send: number; close?: boolean }
  | { read: { timeoutMs: Param<P, number> }; close?: boolean }
  | { send: number; read: { timeoutMs: Param<P, number> }; close?: boolean };

/** A group of concurrent client connections. */
export interface ClientGroupDefinition<P> {
  /** Names the group in metrics: `clients.<name>.connected`. */
  name: string;
  /** The host (namespace) its connections come from; never the server's host. */
  host: string;
  /**
   * How many connections it opens, 0 to 100 000 (0: none at this matrix
   * point). Not with `arrivals`, which sets it.
   */
  count?: Param<P, number>;
  /**
   * Sustained open-loop arrivals instead of `count` and `start`: e.g.
   * `{ perSecond: 400, forMs: 20_000, process: "poisson" }` opens about 8,000
   * connections over 20 s, each with its own `afterConnect`.
   */
  arrivals?: ArrivalsDefinition<P>;
  /**
   * `"together"` (default): every connect() at once; or one every `intervalMs`;
   * or `perSecond` evenly spread (e.g. 20000: 20 a millisecond, which keeps a
   * burst of thousands of SYNs within the per-CPU input queue that all
   * namespaces share, `net.core.netdev_max_backlog`, 1000 by default).
   */
  start?: "together" | { intervalMs: number } | { perSecond: number };
  /** Default `"nothing"`. */
  afterConnect?: FollowUp<P>;
  /** Give up on a connection (close it) this long after its connect() began; default never. */
  deadlineMs?: Param<P, number>;
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
  /**
   * Metrics to show in the run's table of observed values (each one's last and
   * highest value per matrix point), besides those the expectations read. An
   * experiment without claims prints that table; every experiment records it.
   */
  metrics?: string[];
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
  over?: JudgedOver;
  /** For `settled`: how long it must stay held; default 3 sampling intervals. */
  stableMs?: number;
  /**
   * The bound depends on how fast the lab builds the situation (e.g. how many
   * SYN-ACK timer firings pass before a step), not on the kernel alone. On a
   * machine much slower than native (an emulated VM: the kernel's time scale
   * above `TIMING_LIMIT` of `lab/describe/kernel.ts`) the check is still recorded, but cannot
   * fail the run: it says it is timing-limited there.
   */
  timing?: boolean;
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
  /**
   * The claims it decides, each with its rule: built-in catalogue ids
   * (`A2.1`) or claims of your own (`cf:synack-retries`, defined in a claims
   * file: `claimsFiles` or `--claims`). Without claims the experiment is
   * exploratory: its run prints what it observed (`observe.metrics` and the
   * expectations' metrics) per matrix point.
   */
  claims?: Record<string, ClaimRule<ParamsOf<M>>>;
  /**
   * Claims files of your own (Markdown or a `defineClaims` module) that define
   * the `<prefix>:<name>` claims it decides, relative to this file.
   */
  claimsFiles?: string[];
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
  /** What must be observed; each becomes a check of every run (none: the run only observes). */
  expect?: Expectation<ParamsOf<M>>[];
  /**
   * The matrix under `--faithful`: parameters given here replace the
   * default matrix's (used where the default run shortens kernel timers).
   */
  faithfulMatrix?: NoInfer<{ [K in keyof M]?: M[K] }>;
  /**
   * What the default matrix shortens, in a few words, when it is not kernel
   * timers, e.g. `"load: 1 s of arrivals instead of 20 s"`: the ledger
   * and report say so. Needs `faithfulMatrix`.
   */
  shortened?: string;
  /** Packet rules by name (lowercase identifiers). */
  rules?: Record<string, RuleDefinition>;
  /** Steps at times or on conditions. */
  timeline?: TimelineStep<ParamsOf<M>>[];
  /**
   * Link properties per client host and direction, e.g.
   * `{ client: { toServer: { delayMs: 25 }, toClient: { delayMs: 25, lossPercent: 1 } } }`:
   * clients 25 ms away, with 1 % of the server's packets lost.
   */
  links?: Record<string, LinkDefinition<ParamsOf<M>>>;
  /** Hosts whose traffic on the server port is captured (tcpdump) for packet timelines. */
  capture?: string[];
  /** What the captures must show; checked once the observation ends. */
  expectPackets?: PacketExpectation<ParamsOf<M>>[];
  /**
   * What a kernel must have for a matrix point to run: returns why this
   * kernel (or this machine, e.g. an emulated one) cannot run the point, or
   * `undefined` when it can. A point it refuses is skipped with the reason
   * (never a failure); when it refuses every point, the experiment is
   * `[SKIP]` and its claims are left to other experiments.
   */
  requires?: (params: ParamsOf<M>, kernel: KernelFacts) => string | undefined;
  /**
   * Commits of `KERNEL_CHANGES` (`lab/describe/kernel.ts`) whose effect this
   * experiment's numbers depend on: where its claims' verdicts differ between
   * kernels, reports name the change that splits them the same way.
   */
  kernelChanges?: string[];
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
