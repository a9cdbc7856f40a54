/**
 * Samples the kernel of every host: sockets of the experiment's port by TCP
 * state (`/proc/<pid>/net/tcp{,6}`, request sockets included), the LISTEN
 * socket's Recv-Q/Send-Q (`ss -ltn`, inet_diag) and counter deltas
 * (`/proc/<pid>/net/netstat` and `snmp`), into one flat record of metrics.
 * @module
 */
import { run } from "../command.ts";
import type { Netns } from "../netns.ts";
import { counterDeltas, type Counters, parseCounters } from "./counters.ts";
import {
  countStates,
  parseProcNetTcp,
  parseSs,
  type SocketRow,
  uniqueSockets,
} from "./socket_table.ts";

/**
 * Reads a /proc table whole. The kernel's seq_file hands out at most a page of
 * whole rows per read() call, and a table read over several calls is resumed
 * by position, so it can repeat or skip rows while sockets change state
 * ({@linkcode uniqueSockets} removes repeats). Bounded: 65,536 calls.
 */
export async function readProcTable(path: string): Promise<string> {
  using file = await Deno.open(path);
  let buf = new Uint8Array(1 << 20);
  let used = 0;
  for (let calls = 0; calls < 65_536; calls++) {
    if (used === buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const n = await file.read(buf.subarray(used));
    if (n === null) return new TextDecoder().decode(buf.subarray(0, used));
    used += n;
  }
  throw new RangeError(
    `Cannot read "${path}" whole: still not at its end after 65,536 reads (${used} bytes)`,
  );
}

/** A host as the sampler sees it. */
export interface SampledHost {
  name: string;
  ns: Netns;
}

/** Reads one namespace's counters. */
export async function readCounters(ns: Netns): Promise<Counters> {
  const [netstat, snmp] = await Promise.all([
    Deno.readTextFile(`${ns.procNet}/netstat`),
    Deno.readTextFile(`${ns.procNet}/snmp`),
  ]);
  return parseCounters(netstat, snmp);
}

/** Reads the LISTEN socket of `port` as `ss -ltn` shows it. */
export async function readListen(
  ns: Netns,
  port: number,
): Promise<{ recvQ: number; sendQ: number } | undefined> {
  const out = await run(["ss", "-N", ns.name, "-Hltn", "sport", "=", `:${port}`], {
    action: `Cannot read the LISTEN socket in "${ns.name}"`,
  });
  const row = parseSs(out.stdout).find((r) => r.state === "LISTEN" && r.localPort === port);
  return row && { recvQ: row.recvQ, sendQ: row.sendQ };
}

/** Samples the hosts of one run. */
export class Sampler {
  readonly #hosts: readonly SampledHost[];
  readonly #server: string;
  readonly #port: number;
  readonly #family: 4 | 6;
  readonly #metrics: readonly string[];
  #baseline = new Map<string, Counters>();
  /** PID of the server process, for `<server>.openFiles`; 0 once it is gone. */
  serverPid = 0;
  /** Client group → its address, for `<host>.<STATE>@<group>`. */
  groupAddresses: Record<string, string> = {};

  constructor(
    hosts: readonly SampledHost[],
    options: { serverHost: string; port: number; family: 4 | 6; metrics: readonly string[] },
  ) {
    this.#hosts = hosts;
    this.#server = options.serverHost;
    this.#port = options.port;
    this.#family = options.family;
    this.#metrics = options.metrics;
  }

  /** Records every host's counters; later samples report changes since then. */
  async baseline(): Promise<void> {
    const all = await Promise.all(this.#hosts.map((h) => readCounters(h.ns)));
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
      const wanted = this.#metrics.filter((m) => m.startsWith(h.name + "."));
      if (wanted.length === 0) return;
      const file = `${h.ns.procNet}/${this.#family === 4 ? "tcp" : "tcp6"}`;
      const [table, counters, listen] = await Promise.all([
        readProcTable(file),
        readCounters(h.ns),
        h.name === this.#server ? readListen(h.ns, this.#port) : Promise.resolve(undefined),
      ]);
      const rows = uniqueSockets(parseProcNetTcp(table));
      const states: Record<string, number> = countStates(rows, this.#port);
      const bytes = queuedBytes(rows, this.#port);
      const deltas = counterDeltas(this.#baseline.get(h.name) ?? {}, counters);
      for (const m of wanted) {
        const key = m.slice(h.name.length + 1);
        const at = key.indexOf("@");
        if (key in states) values[m] = states[key]!;
        else if (at > 0) {
          const address = this.groupAddresses[key.slice(at + 1)];
          const state = key.slice(0, at);
          values[m] = rows.filter((r) =>
            r.state === state && (r.localPort === this.#port || r.remotePort === this.#port) &&
            (r.remoteAddress === address || r.localAddress === address)
          ).length;
        } else if (key === "recvQ" || key === "sendQ") values[m] = listen?.[key] ?? 0;
        else if (key === "recvQBytes" || key === "sendQBytes") values[m] = bytes[key];
        else if (key === "openFiles") values[m] = await openFiles(this.serverPid);
        else if (key in deltas) values[m] = deltas[key]!;
        else {throw new RangeError(
            `Cannot read counter "${key}" in namespace "${h.ns.name}": this kernel does not have it`,
          );}
      }
    }));
    return values;
  }
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
