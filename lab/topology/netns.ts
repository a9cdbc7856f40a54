/**
 * Network namespaces the lab creates, named with a per-run prefix
 * (`bl-<pid>-<tag>-…`), each holding a small bounded `sleep` process whose
 * `/proc/<pid>/net/*` the observers read. Each is written into a run record
 * (`RunRecord`) before it is created, which is what lets a later run reap it
 * if this one is killed (see `reap.ts`); the name alone proves nothing.
 * Disposal ends the processes inside and deletes the namespace.
 * @module
 */
import { scaled } from "../base/time_scale.ts";
import { CommandError, WaitTimeoutError } from "../base/errors.ts";
import { run } from "../base/command.ts";
import { newRunId, RUN_ID_PREFIX, RunRecord } from "../base/run_record.ts";
import { until } from "../base/wait.ts";
import { didYouMean } from "../base/suggest.ts";

/** Every lab namespace name starts with this. */
export const NAME_PREFIX = RUN_ID_PREFIX;
/** The holder process sleeps at most this long (seconds), so nothing outlives a run by much. */
const HOLDER_SECONDS = 3600;

/** A fresh name prefix, `bl-<pid>-<4 hex>`, for namespaces made outside a `Lab` (tests, tools). */
export function newRunPrefix(): string {
  return newRunId();
}

/** Options of {@linkcode Netns.create}. */
export interface NetnsOptions {
  /** The run record the namespace is written into (default: this process's own, `RunRecord.ofProcess()`). */
  record?: RunRecord;
}

/** Sysctls every run records in each namespace, besides those it sets. */
export const RECORDED_SYSCTLS = [
  "net.core.somaxconn",
  "net.ipv4.tcp_max_syn_backlog",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.tcp_abort_on_overflow",
  "net.ipv4.tcp_synack_retries",
  "net.ipv4.tcp_syn_retries",
  // Shape the SYN retransmission schedule on kernels that have them (6.x); absent ones are skipped.
  "net.ipv4.tcp_syn_linear_timeouts",
  "net.ipv4.tcp_rto_min_us",
  "net.ipv4.tcp_rto_max_ms",
] as const;

// Writes then reads sysctls given as "key value" argument pairs; prints one
// line per key: "ok <key> <value read back>", "missing <key>" or "rejected <key> <error>".
const SYSCTL_SCRIPT = `
set -u
while [ $# -ge 2 ]; do
  k=$1; v=$2; shift 2
  p=/proc/sys/$(printf %s "$k" | tr . /)
  if [ ! -f "$p" ]; then echo "missing $k"; continue; fi
  if [ "$v" != "-" ]; then
    if ! err=$( { printf '%s\\n' "$v" > "$p"; } 2>&1 ); then echo "rejected $k $err"; continue; fi
  fi
  echo "ok $k $(tr '\\t' ' ' < "$p")"
done`;

/** The environment variable that marks a process the lab started, with its namespace's name. */
export const MARKER_ENV = "BACKLOG_LAB_NETNS";

/** `ip netns exec <name> env BACKLOG_LAB_NETNS=<name> argv…` (each execs the next: one process). */
function wrapIn(name: string, argv: readonly string[]): string[] {
  return ["ip", "netns", "exec", name, "env", `${MARKER_ENV}=${name}`, ...argv];
}

/** A network namespace; `AsyncDisposable`. */
export class Netns implements AsyncDisposable {
  readonly name: string;
  readonly #holder: Deno.ChildProcess;
  #holderEnd: string | undefined;
  #disposed = false;

  private constructor(name: string, holder: Deno.ChildProcess) {
    this.name = name;
    this.#holder = holder;
    holder.status.then((s) => {
      this.#holderEnd = s.signal ? `was killed by ${s.signal}` : `exited with status ${s.code}`;
    });
  }

  /**
   * How the holder process ended, when it did before the namespace was
   * disposed (`was killed by SIGKILL`, `exited with status 0`): its
   * `/proc/<pid>/net` is then gone.
   */
  get holderEnded(): string | undefined {
    return this.#disposed ? undefined : this.#holderEnd;
  }

  /** Whether the namespace was disposed (deleted by the lab). */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** The holder process's pid. */
  get holderPid(): number {
    return this.#holder.pid;
  }

  /**
   * Records the namespace in the run record, creates it, brings `lo` up and
   * starts its holder process.
   *
   * @throws {RangeError} for a name without the lab's prefix.
   * @throws {CommandError} when `ip` fails (the namespace is then removed).
   */
  static async create(name: string, options: NetnsOptions = {}): Promise<Netns> {
    if (!name.startsWith(NAME_PREFIX) || !/^[A-Za-z0-9_.-]+$/.test(name)) {
      throw new RangeError(
        `Cannot create namespace "${name}": lab names start with "${NAME_PREFIX}"`,
      );
    }
    const record = options.record ?? await RunRecord.ofProcess();
    await record.addNamespace(name);
    await run(["ip", "netns", "add", name], { action: `Cannot create namespace "${name}"` });
    let holder: Deno.ChildProcess | undefined;
    try {
      await run(["ip", "-n", name, "link", "set", "lo", "up"], {
        action: `Cannot bring lo up in "${name}"`,
      });
      const [cmd, ...args] = wrapIn(name, ["sleep", String(HOLDER_SECONDS)]);
      holder = new Deno.Command(cmd!, {
        args,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      await waitUntilInside(holder.pid, name);
      return new Netns(name, holder);
    } catch (err) {
      if (holder) await killAndReap(holder);
      await run(["ip", "netns", "del", name], { allowFailure: true });
      throw err;
    }
  }

  /** `/proc/<holder pid>/net`: this namespace's view of the network tables. */
  get procNet(): string {
    return `/proc/${this.#holder.pid}/net`;
  }

  /**
   * The argv that runs `argv` inside this namespace, marked with the
   * namespace's name in its environment (`BACKLOG_LAB_NETNS`), so every
   * process the lab starts can be told from any other by its `/proc/<pid>/environ`.
   */
  wrap(argv: readonly string[]): string[] {
    return wrapIn(this.name, argv);
  }

  /** Runs a command inside this namespace. */
  exec(argv: readonly string[], action?: string): ReturnType<typeof run> {
    return run(this.wrap(argv), action === undefined ? {} : { action });
  }

  /**
   * Writes `sysctls` inside this namespace (never the host's), then reads
   * back those and `record`.
   *
   * @returns every key's value as read back.
   * @throws {RangeError} naming the key when the namespace has no such
   *   sysctl or the kernel rejects the value.
   */
  async sysctls(
    sysctls: Record<string, string>,
    record: readonly string[] = [],
  ): Promise<Record<string, string>> {
    const args: string[] = [];
    for (const [k, v] of Object.entries(sysctls)) args.push(k, v);
    for (const k of record) if (!(k in sysctls)) args.push(k, "-");
    const out = await this.exec(
      ["sh", "-c", SYSCTL_SCRIPT, "sh", ...args],
      `Cannot set sysctls in "${this.name}"`,
    );
    const values: Record<string, string> = {};
    for (const line of out.stdout.split("\n").filter(Boolean)) {
      const [status, key = "", ...rest] = line.split(" ");
      const detail = rest.join(" ").trim();
      if (status === "ok") values[key] = detail;
      else if (status === "missing") {
        if (!(key in sysctls)) continue;
        const known = await this.listSysctls();
        throw new RangeError(
          `Cannot set sysctl "${key}" in namespace "${this.name}": this kernel has no such per-namespace sysctl${
            didYouMean(key, known)
          }`,
        );
      } else {
        const reason = detail.replace(/^.*: /, "").toLowerCase();
        throw new RangeError(
          `Cannot set sysctl "${key}" in namespace "${this.name}": value "${
            sysctls[key]
          }" was rejected (${reason})`,
        );
      }
    }
    for (const [k, v] of Object.entries(sysctls)) {
      if (
        values[k] !== undefined &&
        values[k]!.trim().split(/\s+/).join(" ") !== v.trim().split(/\s+/).join(" ")
      ) {
        throw new RangeError(
          `Cannot set sysctl "${k}" in namespace "${this.name}": wrote "${v}" but the kernel kept "${
            values[k]
          }"`,
        );
      }
    }
    return values;
  }

  /**
   * Every `net.*` sysctl this namespace has, with its value (`""` for one that
   * cannot be read, e.g. write-only `net.ipv4.route.flush`; a value of several
   * lines keeps them, joined by newlines).
   */
  async readSysctls(): Promise<Record<string, string>> {
    const out = await this.exec([
      "sh",
      "-c",
      "find /proc/sys/net -type f; echo; grep -rs '' /proc/sys/net; true",
    ]);
    const [names = "", values = ""] = out.stdout.split("\n\n");
    const key = (path: string) => path.slice("/proc/sys/".length).replaceAll("/", ".");
    const result: Record<string, string> = {};
    for (const p of names.split("\n").filter(Boolean)) result[key(p)] = "";
    const seen = new Set<string>();
    for (const line of values.split("\n")) {
      const i = line.indexOf(":");
      if (!line.startsWith("/proc/sys/net/") || i < 0) continue;
      const k = key(line.slice(0, i));
      if (!(k in result)) continue;
      result[k] = seen.has(k) ? `${result[k]}\n${line.slice(i + 1)}` : line.slice(i + 1);
      seen.add(k);
    }
    return result;
  }

  /**
   * Tries each `[key, value]` in turn (a key may come several times) and
   * reads it back: for checking values before a run, in a namespace made for
   * that. Never throws for a value the kernel refuses.
   *
   * @returns one entry per pair, in order: `ok`, or why the value cannot be used.
   */
  async trySysctls(
    pairs: readonly (readonly [string, string])[],
  ): Promise<{ key: string; value: string; problem?: string }[]> {
    if (pairs.length === 0) return [];
    const out = await this.exec(
      ["sh", "-c", SYSCTL_SCRIPT, "sh", ...pairs.flat()],
      `Cannot try sysctls in "${this.name}"`,
    );
    const lines = out.stdout.split("\n").filter(Boolean);
    return pairs.map(([key, value], i) => {
      const [status, , ...rest] = (lines[i] ?? "").split(" ");
      const detail = rest.join(" ").trim();
      if (status === "missing") {
        return { key, value, problem: "this kernel has no such per-namespace sysctl" };
      }
      if (status === "rejected") {
        return {
          key,
          value,
          problem: `the kernel rejects it (${detail.replace(/^.*: /, "").toLowerCase()})`,
        };
      }
      if (status !== "ok") return { key, value, problem: "it could not be tried" };
      if (detail.split(/\s+/).join(" ") !== value.trim().split(/\s+/).join(" ")) {
        return { key, value, problem: `the kernel keeps "${detail}" instead` };
      }
      return { key, value };
    });
  }

  /** Every `net.*` sysctl this namespace has. */
  async listSysctls(): Promise<string[]> {
    const out = await this.exec(["find", "/proc/sys/net", "-type", "f"]);
    return out.stdout.split("\n").filter(Boolean).map((p) =>
      p.slice("/proc/sys/".length).replaceAll("/", ".")
    );
  }

  /** Ends every process in the namespace (all are the lab's) and deletes it. Idempotent. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await killAndReap(this.#holder);
    await removeNamespace(this.name);
  }
}

/**
 * Waits until process `pid` has entered namespace `name`: until then its
 * `/proc/<pid>/net` shows the host's tables, not the namespace's.
 *
 * @throws {WaitTimeoutError} after `timeoutMs`.
 */
export async function waitUntilInside(
  pid: number,
  name: string,
  timeoutMs = scaled(5000),
): Promise<void> {
  const want = `net:[${(await Deno.stat(`/run/netns/${name}`)).ino}]`;
  const seen = await until(
    `process ${pid} to enter namespace "${name}"`,
    () => Deno.readLink(`/proc/${pid}/ns/net`).catch(() => "(gone)"),
    (link) => link === want || link === "(gone)",
    { timeoutMs, intervalMs: (attempt) => Math.min(2 ** attempt, 50) },
  );
  if (seen === "(gone)") {
    throw new WaitTimeoutError(`Process ${pid} exited before it entered namespace "${name}"`);
  }
}

async function killAndReap(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
  await child.status;
}

/** Kills (SIGKILL, by PID) every process inside lab namespace `name`, then deletes it. */
export async function removeNamespace(name: string): Promise<void> {
  if (!name.startsWith(NAME_PREFIX)) {
    throw new RangeError(`Refusing to remove non-lab namespace "${name}"`);
  }
  const pids = await run(["ip", "netns", "pids", name], { allowFailure: true });
  for (const pid of pids.stdout.split("\n").map(Number).filter((n) => n > 1 && n !== Deno.pid)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
  const r = await run(["ip", "netns", "del", name], { allowFailure: true });
  if (r.code !== 0 && !/No such file|not found|Invalid argument/i.test(r.stderr)) {
    throw new CommandError(
      ["ip", "netns", "del", name],
      r.code,
      r.stderr,
      `Cannot delete namespace "${name}"`,
    );
  }
}
