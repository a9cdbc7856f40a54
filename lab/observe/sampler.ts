/**
 * Samples the kernel of every host: sockets of the experiment's port by TCP
 * state, request sockets included, and the LISTEN socket's Recv-Q/Send-Q
 * (one in-kernel-filtered inet_diag dump per host, {@linkcode SockDiag}: the
 * data `ss` shows, without a process per sample, ~1 µs a socket) and counter
 * deltas (`/proc/<pid>/net/netstat` and `snmp`), into one flat record of
 * metrics.
 * @module
 */
import { type HostMetric, isHostMetric } from "../describe/metric.ts";
import type { RunPlan } from "../describe/run_plan.ts";
import type { TcpState } from "../vocabulary.ts";
import { KernelTextError } from "../base/errors.ts";
import { until } from "../base/wait.ts";
import type { Netns } from "../topology/netns.ts";
import { readListenDiag, SockDiag } from "./sock_diag.ts";
import { counterDeltas, type Counters, parseCounters } from "./counters.ts";
import { countStates, type SocketRow, uniqueSockets } from "./socket_table.ts";

/** A host as the sampler sees it. */
export interface SampledHost {
  name: string;
  ns: Netns;
}

/**
 * Reads one namespace's counters (`/proc/<holder>/net/netstat` and `snmp`).
 *
 * @param ns The namespace.
 * @param host The host it is, for messages.
 * @throws {KernelTextError} naming the file when its text cannot be parsed.
 * @throws {Error} naming the host, the namespace and how its holder process
 *   ended, when it is gone (its `/proc/<pid>/net` went with it).
 */
export async function readCounters(ns: Netns, host?: string): Promise<Counters> {
  const what = host === undefined
    ? `namespace "${ns.name}"`
    : `host "${host}" (namespace "${ns.name}")`;
  const files = ["netstat", "snmp"] as const;
  const read = await Promise.allSettled(
    files.map((name) => Deno.readTextFile(`${ns.procNet}/${name}`)),
  );
  const failed = read.findIndex((r) => r.status === "rejected");
  if (failed >= 0) {
    const err = (read[failed] as PromiseRejectedResult).reason;
    const file = `${ns.procNet}/${files[failed]}`;
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new Error(`Cannot read the counters of ${what}: ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    // The holder's exit status may lag its exit by a moment.
    if (!ns.disposed) {
      await until("the holder's exit status", () => ns.holderEnded, (e) => e !== undefined, {
        timeoutMs: 200,
        intervalMs: 5,
      }).catch(() => {});
    }
    throw new Error(
      `Cannot read the counters of ${what}: the process holding the namespace (pid ${ns.holderPid}, a sleep the lab started) ${
        ns.holderEnded ?? "is gone"
      }, and its ${file} went with it; something outside the lab ended it`,
      { cause: err },
    );
  }
  const [netstat, snmp] = read.map((r) => (r as PromiseFulfilledResult<string>).value) as [
    string,
    string,
  ];
  try {
    return parseCounters(netstat, snmp);
  } catch (err) {
    if (err instanceof KernelTextError) throw err.inFile(`${ns.procNet}/{netstat,snmp}`);
    throw err;
  }
}

/** Reads the LISTEN socket of `port` as `ss -ltn` shows it (inet_diag). */
export function readListen(
  ns: Netns,
  port: number,
  family: 4 | 6 = 4,
): { recvQ: number; sendQ: number } | undefined {
  using diag = SockDiag.open(ns.name);
  return readListenDiag(diag, family, port);
}

/** Samples the hosts of one run; `Disposable` (closes its netlink sockets). */
export class Sampler implements Disposable {
  readonly #diags = new Map<string, SockDiag>();
  readonly #hosts: readonly SampledHost[];
  readonly #port: number;
  readonly #family: 4 | 6;
  readonly #metrics: readonly HostMetric[];
  /**
   * The TCP states the dumps ask the kernel for: those the metrics read (and
   * LISTEN for the queues), or every state when a byte metric needs them all.
   * A run of thousands of short connections leaves thousands of TIME_WAIT
   * sockets that no metric reads; the kernel skips them.
   */
  readonly #states: TcpState[] | undefined;
  #baseline = new Map<string, Counters>();
  /** PID of the server process, for `<server>.openFiles`; 0 once it is gone. */
  serverPid = 0;
  /** Client group → its address, for `<host>.<STATE>@<group>`. */
  groupAddresses: Record<string, string> = {};

  /**
   * A sampler of `hosts` for one run: the plan's port, family, server host and
   * host metrics; `addresses` gives each client group's address
   * (`clients.<group>`), for `<host>.<STATE>@<group>`.
   */
  constructor(
    hosts: readonly SampledHost[],
    plan: Pick<RunPlan, "server" | "family" | "metrics">,
    addresses: Record<string, string> = {},
  ) {
    this.#hosts = hosts;
    this.#port = plan.server.port;
    this.#family = plan.family;
    this.#metrics = plan.metrics.filter(isHostMetric);
    this.#states = statesOf(this.#metrics);
    for (const [key, address] of Object.entries(addresses)) {
      if (key.startsWith("clients.")) this.groupAddresses[key.slice("clients.".length)] = address;
    }
  }

  /** Records every host's counters; later samples report changes since then. */
  async baseline(): Promise<void> {
    const all = await Promise.all(this.#hosts.map((h) => readCounters(h.ns, h.name)));
    this.#hosts.forEach((h, i) => this.#baseline.set(h.name, all[i]!));
  }

  /**
   * Reads every host's kernel tables.
   *
   * @returns the host metrics this run samples (`<host>.<STATE|recvQ|sendQ|Counter>`).
   * @throws {RangeError} when a counter the run needs does not exist in the namespace.
   */
  async sample(): Promise<Record<string, number>> {
    const values: Record<string, number> = {};
    await Promise.all(this.#hosts.map(async (h) => {
      const wanted = this.#metrics.filter((m) => m.host === h.name);
      if (wanted.length === 0) return;
      const counters = readCounters(h.ns, h.name);
      // Synchronous: the kernel's work (~1 µs a socket) beats the cost of a worker-thread hop
      // for each of the dump's recv() calls, and a run of thousands of sockets runs alone.
      const rows = uniqueSockets(
        this.#diag(h).dump({
          family: this.#family,
          port: this.#port,
          ...(this.#states === undefined ? {} : { states: this.#states }),
        }),
      );
      const listenRow = rows.find((r) => r.state === "LISTEN" && r.localPort === this.#port);
      const states: Record<string, number> = countStates(rows, this.#port);
      const bytes = queuedBytes(rows, this.#port);
      const deltas = counterDeltas(this.#baseline.get(h.name) ?? {}, await counters);
      let byAddress: Map<string, number> | undefined;
      for (const m of wanted) {
        switch (m.kind) {
          case "state":
            if (m.group === undefined) values[m.name] = states[m.state] ?? 0;
            else {
              byAddress ??= statesByAddress(rows);
              const address = this.groupAddresses[m.group] ?? "";
              values[m.name] = byAddress.get(`${m.state} ${address}`) ?? 0;
            }
            break;
          case "listen":
            values[m.name] = listenRow?.[m.queue] ?? 0;
            break;
          case "bytes":
            values[m.name] = bytes[m.queue];
            break;
          case "openFiles":
            values[m.name] = await openFiles(this.serverPid);
            break;
          case "counter": {
            const v = deltas[m.counter];
            if (v === undefined) {
              throw new RangeError(
                `Cannot read counter "${m.counter}" in namespace "${h.ns.name}": this kernel does not have it`,
              );
            }
            values[m.name] = v;
          }
        }
      }
    }));
    return values;
  }

  #diag(h: SampledHost): SockDiag {
    let diag = this.#diags.get(h.name);
    if (diag === undefined) {
      diag = SockDiag.open(h.ns.name);
      this.#diags.set(h.name, diag);
    }
    return diag;
  }

  /** Closes the netlink sockets. Idempotent. */
  [Symbol.dispose](): void {
    for (const d of this.#diags.values()) d[Symbol.dispose]();
    this.#diags.clear();
  }
}

/** The states a dump must return for `metrics`; undefined: all of them. */
export function statesOf(metrics: readonly HostMetric[]): TcpState[] | undefined {
  const states = new Set<TcpState>();
  for (const m of metrics) {
    if (m.kind === "bytes") return undefined;
    if (m.kind === "state") states.add(m.state);
    if (m.kind === "listen") states.add("LISTEN");
  }
  return [...states];
}

/**
 * Sockets counted by state and address, keyed `"<STATE> <address>"`, each
 * socket under its local and its remote address (the rows are already of the
 * experiment's port).
 */
function statesByAddress(rows: readonly SocketRow[]): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const r of rows) {
    add(`${r.state} ${r.localAddress}`);
    if (r.remoteAddress !== r.localAddress) add(`${r.state} ${r.remoteAddress}`);
  }
  return counts;
}

/**
 * Bytes queued on the port's connected (non-LISTEN) sockets: `rx_queue`
 * (received, not yet read) and `tx_queue` (sent, not yet acknowledged), the
 * same kernel values `ss -tn` shows as Recv-Q and Send-Q.
 */
export function queuedBytes(
  rows: readonly SocketRow[],
  port: number,
): { recvQBytes: number; sendQBytes: number } {
  let recvQBytes = 0;
  let sendQBytes = 0;
  for (const r of rows) {
    if (r.state === "LISTEN" || (r.localPort !== port && r.remotePort !== port)) continue;
    recvQBytes += r.recvQ;
    sendQBytes += r.sendQ;
  }
  return { recvQBytes, sendQBytes };
}

/** Number of open file descriptors of a process (`/proc/<pid>/fd`); 0 when it is gone. */
export async function openFiles(pid: number): Promise<number> {
  if (pid <= 0) return 0;
  let n = 0;
  try {
    for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) n++;
  } catch {
    return 0;
  }
  return n;
}
