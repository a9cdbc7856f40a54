/**
 * Shaping one direction of a lab link: packets leaving a namespace through
 * one interface get a one-way delay (with jitter), random loss and a rate
 * limit, with `sch_netem` where the kernel has it and an NFQUEUE delayer
 * where it does not. See {@linkcode shapeLink}.
 *
 * What goes where, per shaped interface (everything inside its namespace):
 *
 * - **loss and counting**: an nftables table `inet bl_shape_<n>` with a
 *   `postrouting` chain at priority -300 that counts every IPv4/IPv6 packet
 *   to the interface (`offered`) and drops `numgen random mod 1000000 < N`
 *   of them (`lost`), before any delay, for both mechanisms;
 * - **delay with netem** (`auto` without jitter, or `mechanism: "netem"`):
 *   netem as the interface's root qdisc (`limit` packets of queue), with
 *   `rate 100gbit` when there is jitter so that it keeps packets in order,
 *   and a tbf child for a rate;
 * - **delay without netem, or with jitter**: the delayer program (`delayer.ts`) bound to
 *   NFQUEUE `<n>`, and an iptables/ip6tables rule in `mangle POSTROUTING`
 *   (`-o <if> -j NFQUEUE --queue-num <n>`) added once it is bound; a tbf root
 *   qdisc for a rate (it runs after the delay; with a constant delay the
 *   order of the two does not change when packets arrive);
 * - **rate only**: a tbf root qdisc, whatever the mechanism.
 *
 * Disposal takes the final counters, then removes the rule, lets the delayer
 * release what it still holds at its time, ends it (and kills it by PID
 * after a grace period), and deletes the qdisc and the table. Deleting the
 * namespace removes the rules and qdiscs too, and kills the delayer with
 * every other process inside it.
 * @module
 */
import { scaled } from "../../base/time_scale.ts";
import { run } from "../../base/command.ts";
import { CommandError } from "../../base/errors.ts";
import type { Netns } from "../netns.ts";
import { ensureTools, IPTABLES, NFT, TC } from "../packages.ts";
import { DelayerProcess } from "./_delayer_process.ts";
import type { LinkStatsRecord } from "../../results.ts";
import type { DelayerStats } from "./delayer.ts";
import {
  delays,
  type LinkShape,
  netemCommands,
  nfqueueRule,
  nftScript,
  nftTableName,
  type NormalizedShape,
  normalizeShape,
  parseNfqueueRuleCount,
  parseNftCounter,
  parseQdiscCounts,
  type QdiscCounts,
  type ShapeTarget,
  tbfCommand,
} from "./link_shape.ts";
import { netemAvailable } from "./netem_probe.ts";

/** How a link's delay is made. */
export type ShapeMechanism = "netem" | "nfqueue";

/** The interface and direction to shape. */
export interface LinkEndpoint {
  /** The lab namespace the interface is in. */
  ns: Netns;
  /** The interface: this namespace's end of a veth pair. */
  ifname: string;
  /**
   * `"egress"`: packets leaving the namespace through the interface. The
   * other direction of a link is the peer's egress: shape the peer's end.
   */
  direction: "egress";
}

/** Options of {@linkcode shapeLink}. */
export interface ShapeLinkOptions {
  /** Cancels the setup (what was built is removed); the shaped link itself lives until disposed. */
  signal?: AbortSignal;
  /**
   * `"auto"` (default): netem when the kernel has it, else NFQUEUE; with
   * jitter always NFQUEUE, whose jitter keeps each flow in order while flows
   * draw independently (netem either reorders a flow or, with a rate, makes
   * the whole link wait for its slowest draw; see `delay_line.ts`).
   * `"nfqueue"` forces the delayer (to test it on kernels with netem);
   * `"netem"` fails where the kernel has none (with jitter it clamps the
   * whole link, see {@linkcode netemCommands}).
   */
  mechanism?: "auto" | ShapeMechanism;
  /** Packets the delay queue holds (netem `limit`, NFQUEUE queue length); default 10,000. */
  queueLimit?: number;
  /** How long the delayer may take to bind its queue (Deno's first start compiles it); default 30 s. */
  readyTimeoutMs?: number;
  /**
   * SCHED_FIFO priority of the delayer's loop, 1 to 99, or 0 for the normal
   * scheduler; default 10. On a busy machine a normal task that wakes up may
   * wait for another's time slice (milliseconds); a real-time one preempts
   * it. The loop sleeps between packets, and the kernel caps real-time tasks
   * at 95 % of a CPU (`sched_rt_runtime_us`).
   */
  realtimePriority?: number;
}

/** Counters of a shaped link: those a run records, with what ran and the delayer's own. */
export interface ShapeStats extends LinkStatsRecord {
  /** What delays: `"none"` for a shape without delay (loss or rate only). */
  mechanism: ShapeMechanism | "none";
  /** The shape in force, defaults filled in. */
  shape: NormalizedShape;
  /** NFQUEUE only: the delayer's own counters. */
  delayer?: DelayerStats;
}

const DEFAULT_QUEUE_LIMIT = 10_000;
const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_PRIORITY = 10;

/** The tools each kind of shaping needs, checked (and installed) once per process. */
const toolChecks = new Map<string, Promise<unknown>>();

function toolsFor(mechanism: ShapeMechanism | "none"): Promise<unknown> {
  const needs = mechanism === "nfqueue" ? [NFT, TC, IPTABLES] : [NFT, TC];
  const key = needs.map((n) => n.command).join(" ");
  let check = toolChecks.get(key);
  if (!check) {
    check = ensureTools(needs).catch((err) => {
      toolChecks.delete(key);
      throw err;
    });
    toolChecks.set(key, check);
  }
  return check;
}

/** Link numbers (queue and table) in use, per namespace, in this process. */
const inUse = new Map<string, Set<number>>();

function allocateIndex(nsName: string): number {
  // Numbers of namespaces since deleted (a released link's stay taken until then) are forgotten.
  for (const name of inUse.keys()) if (!namespaceExists(name)) inUse.delete(name);
  const used = inUse.get(nsName) ?? new Set<number>();
  inUse.set(nsName, used);
  let n = 0;
  while (used.has(n)) n++;
  used.add(n);
  return n;
}

function releaseIndex(nsName: string, n: number): void {
  const used = inUse.get(nsName);
  used?.delete(n);
  if (used?.size === 0) inUse.delete(nsName);
}

/** Whether lab namespace `name` still exists. */
function namespaceExists(name: string): boolean {
  try {
    Deno.statSync(`/run/netns/${name}`);
    return true;
  } catch {
    return false;
  }
}

/** What tools print when the thing to remove is already gone. */
const GONE =
  /Cannot find device|No such file or directory|does not exist|Bad rule|No chain\/target\/match|handle of zero|Invalid handle|Cannot open network namespace/i;

/**
 * Runs a teardown command, tolerating "already gone": the namespace, the
 * device, the qdisc, the table or the rule no longer there.
 */
async function undo(
  argv: readonly string[],
  o: { nsName: string; action: string },
): Promise<void> {
  const { nsName, action } = o;
  const r = await run(argv, { allowFailure: true });
  if (r.code === 0 || !namespaceExists(nsName) || GONE.test(r.stderr)) return;
  throw new CommandError(argv, r.code, r.stderr, action);
}

/**
 * Shapes packets leaving `endpoint.ns` through `endpoint.ifname`: a one-way
 * delay with jitter, random loss and a rate limit. The delay is netem's where
 * the kernel has it (probed once per process in a throwaway namespace) and
 * the NFQUEUE delayer's otherwise, or as `options.mechanism` says. Installs
 * `nft` and `iptables` when they are missing and it may (root, Debian/Ubuntu).
 *
 * @param endpoint the namespace, interface and direction.
 * @param shape delay, jitter, loss, rate (all optional).
 * @param options mechanism, queue size, abort signal.
 * @returns the shaped link; dispose it to remove the shaping.
 * @throws {TypeError} for a bad shape or endpoint (unknown field, not a number).
 * @throws {RangeError} for a value out of range or a missing interface, naming it.
 * @throws {Error} when `mechanism: "netem"` is asked of a kernel without it,
 *   or the delayer cannot bind its queue.
 * @throws {CommandError} when `tc`, `nft` or `iptables` fails (what was built is removed).
 *
 * @example Clients 25 ms away with 1 % loss, both ways
 * ```ts ignore
 * await using up = await shapeLink(
 *   { ns: clientNs, ifname: "veth0", direction: "egress" },
 *   { delayMs: 25, lossPercent: 1 },
 * );
 * await using down = await shapeLink(
 *   { ns: serverNs, ifname: "veth1", direction: "egress" },
 *   { delayMs: 25, lossPercent: 1 },
 * );
 * // … run the experiment …
 * console.log(up.mechanism, await up.stats());
 * ```
 */
export async function shapeLink(
  endpoint: LinkEndpoint,
  shape: LinkShape,
  options: ShapeLinkOptions = {},
): Promise<ShapedLink> {
  const { ns, ifname } = endpoint ?? {};
  const where = `link "${ifname}" in namespace "${ns?.name}"`;
  if (typeof ns?.name !== "string" || typeof ifname !== "string") {
    throw new TypeError(`Cannot shape ${where}: give the Netns and the interface name`);
  }
  if (endpoint.direction !== "egress") {
    throw new RangeError(
      `Cannot shape ${where}: direction "${endpoint.direction}" is not supported; shape the peer's end with direction "egress" (packets arriving here leave the peer through it)`,
    );
  }
  const normalized = normalizeShape(shape, where);
  const queueLimit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT;
  if (!Number.isInteger(queueLimit) || queueLimit < 1 || queueLimit > 1_000_000) {
    throw new RangeError(
      `Cannot shape ${where}: queueLimit "${queueLimit}" must be an integer from 1 to 1000000`,
    );
  }
  const wanted = options.mechanism ?? "auto";
  if (!["auto", "netem", "nfqueue"].includes(wanted)) {
    throw new RangeError(
      `Cannot shape ${where}: mechanism "${wanted}" must be "auto", "netem" or "nfqueue"`,
    );
  }
  const priority = options.realtimePriority ?? DEFAULT_PRIORITY;
  if (!Number.isInteger(priority) || priority < 0 || priority > 99) {
    throw new RangeError(
      `Cannot shape ${where}: realtimePriority "${priority}" must be an integer from 0 to 99`,
    );
  }
  const signal = options.signal;
  signal?.throwIfAborted();

  const mechanism = await chooseMechanism(normalized, wanted, where);
  await toolsFor(mechanism);
  signal?.throwIfAborted();
  const target: ShapeTarget = { nsName: ns.name, ifname };
  const mtu = await interfaceMtu(target, where);

  const stack = new AsyncDisposableStack();
  try {
    const index = allocateIndex(ns.name);
    stack.defer(() => releaseIndex(ns.name, index));
    await addCountingTable(stack, { target, index, lossPercent: normalized.lossPercent });
    signal?.throwIfAborted();
    await addQdiscs(stack, { target, mechanism, shape: normalized, queueLimit, mtu });
    signal?.throwIfAborted();
    let delayer: DelayerProcess | undefined;
    if (mechanism === "nfqueue") {
      delayer = stack.use(
        await DelayerProcess.start(ns, {
          queue: index,
          delayMs: normalized.delayMs,
          jitterMs: normalized.jitterMs,
          maxLen: queueLimit,
          priority,
        }, {
          label: `the delayer of ${where}`,
          timeoutMs: options.readyTimeoutMs ?? scaled(DEFAULT_READY_TIMEOUT_MS),
          signal,
        }),
      );
      // Disposed before the process itself: it releases what it still holds, at the due times.
      const d = delayer;
      stack.defer(() =>
        namespaceExists(ns.name) && !d.exited
          ? d.drained(normalized.delayMs + normalized.jitterMs).catch(() => {})
          : undefined
      );
      await addQueueRules(stack, { target, queue: index });
    }
    return new ShapedLink(ns, target, {
      mechanism,
      shape: normalized,
      index,
      delayer,
      stack: stack.move(),
    });
  } catch (err) {
    try {
      await stack.disposeAsync();
    } catch (cleanup) {
      throw new SuppressedError(cleanup, err, `${(err as Error).message} (and cleanup failed)`);
    }
    throw err;
  }
}

async function chooseMechanism(
  shape: NormalizedShape,
  wanted: "auto" | ShapeMechanism,
  where: string,
): Promise<ShapeMechanism | "none"> {
  if (!delays(shape)) return "none";
  if (wanted === "nfqueue") return "nfqueue";
  // netem has no per-flow order: with jitter it reorders a connection's segments, or (with a
  // rate) clamps the whole link. Jitter means the same on every kernel only with the delayer.
  if (wanted === "auto" && shape.jitterMs > 0) return "nfqueue";
  if (await netemAvailable()) return "netem";
  if (wanted === "netem") {
    throw new Error(
      `Cannot shape ${where} with netem: this kernel has no sch_netem (CONFIG_NET_SCH_NETEM); use mechanism "auto" or "nfqueue"`,
    );
  }
  return "nfqueue";
}

async function interfaceMtu(target: ShapeTarget, where: string): Promise<number> {
  const r = await run(["ip", "-n", target.nsName, "-j", "link", "show", "dev", target.ifname], {
    allowFailure: true,
  });
  if (r.code !== 0) {
    throw new RangeError(
      `Cannot shape ${where}: the namespace has no such interface (${
        r.stderr.trim() || `ip exited with ${r.code}`
      }); create the link first`,
    );
  }
  const mtu = Number((JSON.parse(r.stdout) as { mtu?: number }[])[0]?.mtu);
  return Number.isInteger(mtu) && mtu > 0 ? mtu : 1500;
}

function describe(target: ShapeTarget): string {
  return `link "${target.ifname}" in namespace "${target.nsName}"`;
}

/** The nftables table that counts and drops (see {@linkcode nftScript}). */
async function addCountingTable(
  stack: AsyncDisposableStack,
  o: { target: ShapeTarget; index: number; lossPercent: number },
): Promise<void> {
  const { target, index, lossPercent } = o;
  const table = nftTableName(index);
  const where = describe(target);
  const nft = ["ip", "netns", "exec", target.nsName, "nft"];
  // Registered first: a failure halfway through `nft -f` leaves nothing, and "gone" is tolerated.
  stack.defer(() =>
    undo(
      [...nft, "delete", "table", "inet", table],
      { nsName: target.nsName, action: `Cannot delete table "${table}" of ${where}` },
    )
  );
  await run([...nft, "-f", "-"], {
    stdin: nftScript(target.ifname, { index, lossPercent }),
    action: `Cannot add the loss and counting table "${table}" for ${where}`,
  });
}

/** netem (with a tbf child for a rate), or tbf alone for a rate. */
async function addQdiscs(
  stack: AsyncDisposableStack,
  o: {
    target: ShapeTarget;
    mechanism: ShapeMechanism | "none";
    shape: NormalizedShape;
    queueLimit: number;
    mtu: number;
  },
): Promise<void> {
  const { target } = o;
  const where = describe(target);
  const commands = o.mechanism === "netem"
    ? netemCommands(target, o.shape, { queueLimit: o.queueLimit, mtu: o.mtu })
    : o.shape.rateKbit !== undefined
    ? [tbfCommand(target, o.shape.rateKbit, { rateQueueMs: o.shape.rateQueueMs, mtu: o.mtu })]
    : [];
  if (commands.length === 0) return;
  stack.defer(() =>
    undo(
      ["tc", "-n", target.nsName, "qdisc", "del", "dev", target.ifname, "root"],
      { nsName: target.nsName, action: `Cannot remove the qdiscs of ${where}` },
    )
  );
  for (const argv of commands) await run(argv, { action: `Cannot shape ${where} with tc` });
}

/** The IPv4 and IPv6 rules that queue the interface's packets to the delayer. */
async function addQueueRules(
  stack: AsyncDisposableStack,
  o: { target: ShapeTarget; queue: number },
): Promise<void> {
  const { target, queue } = o;
  const where = describe(target);
  for (const family of [4, 6] as const) {
    await run(nfqueueRule(target, { family, queue, op: "-A" }), {
      action:
        `Cannot queue the IPv${family} packets of ${where} to the delayer (the kernel needs the iptables NFQUEUE target, CONFIG_NETFILTER_XT_TARGET_NFQUEUE, or sch_netem)`,
    });
    stack.defer(() =>
      undo(
        nfqueueRule(target, { family, queue, op: "-D" }),
        {
          nsName: target.nsName,
          action: `Cannot remove the IPv${family} NFQUEUE rule of ${where}`,
        },
      )
    );
  }
}

/** A shaped direction of a link; `AsyncDisposable`. Create it with {@linkcode shapeLink}. */
export class ShapedLink implements AsyncDisposable {
  /** How the delay is made: `"none"` when the shape has no delay. */
  readonly mechanism: ShapeMechanism | "none";
  /** The shape in force, defaults filled in. */
  readonly shape: NormalizedShape;
  /** The namespace's name. */
  readonly nsName: string;
  /** The shaped interface. */
  readonly ifname: string;
  /** The link's number in its namespace: its NFQUEUE number and nftables table `bl_shape_<n>`. */
  readonly index: number;
  readonly #ns: Netns;
  readonly #target: ShapeTarget;
  readonly #delayer: DelayerProcess | undefined;
  readonly #stack: AsyncDisposableStack;
  #final: ShapeStats | undefined;
  #disposing: Promise<void> | undefined;

  /** Built by {@linkcode shapeLink}, which hands over what it created. */
  constructor(
    ns: Netns,
    target: ShapeTarget,
    parts: {
      mechanism: ShapeMechanism | "none";
      shape: NormalizedShape;
      index: number;
      delayer: DelayerProcess | undefined;
      stack: AsyncDisposableStack;
    },
  ) {
    this.#ns = ns;
    this.#target = target;
    this.nsName = ns.name;
    this.ifname = target.ifname;
    this.mechanism = parts.mechanism;
    this.shape = parts.shape;
    this.index = parts.index;
    this.#delayer = parts.delayer;
    this.#stack = parts.stack;
  }

  /** The delayer's PID (NFQUEUE only). */
  get delayerPid(): number | undefined {
    return this.#delayer?.pid;
  }

  /**
   * The link's counters now; after disposal, those taken as it began.
   *
   * @returns loss, delay, queue and rate counters, and for NFQUEUE the delayer's lateness and CPU.
   * @throws {CommandError} when `nft` or `tc` cannot be read.
   * @throws {Error} when the delayer has exited or does not answer within 5 s.
   */
  async stats(): Promise<ShapeStats> {
    if (this.#final) return this.#final;
    const { nsName, ifname } = this.#target;
    const where = describe(this.#target);
    const table = nftTableName(this.index);
    const [nft, tc, queued, delayer] = await Promise.all([
      run(["ip", "netns", "exec", nsName, "nft", "-j", "list", "table", "inet", table], {
        action: `Cannot read the counters of ${where}`,
      }),
      run(["tc", "-n", nsName, "-s", "-j", "qdisc", "show", "dev", ifname], {
        action: `Cannot read the qdiscs of ${where}`,
      }),
      this.#delayer ? this.#queuedByRules() : undefined,
      this.#delayer?.stats(),
    ]);
    const qdiscs = parseQdiscCounts(tc.stdout);
    const kind = (k: string): QdiscCounts | undefined => qdiscs.find((q) => q.kind === k);
    const stats: ShapeStats = {
      mechanism: this.mechanism,
      shape: this.shape,
      offered: parseNftCounter(nft.stdout, "offered"),
      lost: parseNftCounter(nft.stdout, "lost"),
      delayed: 0,
      held: 0,
      queueDropped: 0,
      rateDropped: kind("tbf")?.drops ?? 0,
    };
    if (this.mechanism === "netem") {
      const netem = kind("netem");
      stats.delayed = netem?.packets ?? 0;
      stats.held = netem?.qlen ?? 0;
      stats.queueDropped = netem?.drops ?? 0;
    } else if (delayer) {
      stats.delayed = delayer.released;
      stats.held = delayer.held;
      stats.queueDropped = this.#queueDrops();
      stats.queued = queued ?? 0;
      stats.lateness = delayer.lateness;
      stats.peakHeld = delayer.peakHeld;
      stats.cpuMs = Math.round((delayer.cpuUserMs + delayer.cpuSystemMs) * 10) / 10;
      stats.delayer = delayer;
    }
    return stats;
  }

  /** Packets the IPv4 and IPv6 NFQUEUE rules matched (their counters). */
  async #queuedByRules(): Promise<number> {
    let total = 0;
    for (const cmd of ["iptables", "ip6tables"]) {
      const out = await run(
        [
          "ip",
          "netns",
          "exec",
          this.nsName,
          cmd,
          "-w",
          "-t",
          "mangle",
          "-L",
          "POSTROUTING",
          "-v",
          "-x",
          "-n",
        ],
        { action: `Cannot read the NFQUEUE rule counters of ${describe(this.#target)}` },
      );
      total += parseNfqueueRuleCount(out.stdout, this.index) ?? 0;
    }
    return total;
  }

  /** `queue_dropped + queue_user_dropped` of this link's queue, from the namespace's /proc. */
  #queueDrops(): number {
    try {
      const text = Deno.readTextFileSync(`${this.#ns.procNet}/netfilter/nfnetlink_queue`);
      for (const line of text.split("\n")) {
        const f = line.trim().split(/\s+/).map(Number);
        if (f[0] === this.index && f.length >= 7) return f[5]! + f[6]!;
      }
    } catch { /* the namespace is gone */ }
    return 0;
  }

  /**
   * For a caller about to delete the link's namespace: ends the delayer (it
   * releases what it still holds) and forgets the rest, which the
   * namespace's deletion removes with it (the NFQUEUE rules, the qdiscs,
   * the table), without running a command for each; the link's number
   * (queue and table) stays taken until then. Takes no final counters: read
   * them with {@linkcode ShapedLink.stats} first. Idempotent; disposal
   * afterwards does nothing.
   */
  release(): Promise<void> {
    // The rest stays in the namespace until its deletion, and with it the link's number.
    this.#disposing ??= (async () => {
      this.#stack.move();
      await this.#delayer?.[Symbol.asyncDispose]();
    })();
    return this.#disposing;
  }

  /**
   * Takes the final counters, then removes the shaping in reverse order: the
   * NFQUEUE rules, the delayer once it has released what it held, the
   * qdiscs, the table. Idempotent; tolerates a namespace already gone; the
   * errors of several steps are joined.
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.#disposing ??= (async () => {
      if (namespaceExists(this.nsName) && !(this.#delayer?.exited ?? false)) {
        this.#final = await this.stats().catch(() => undefined);
      }
      await this.#stack.disposeAsync();
    })();
    return this.#disposing;
  }
}
