/**
 * Run records: how a run proves, to every other run on the machine, what it
 * owns and whether it is alive, independently of pids and PID namespaces.
 *
 * A run has a directory `/run/backlog-lab/<run id>/` holding
 *
 * - `lock`: an open file the run holds an exclusive `flock` on for its whole
 *   life; the kernel releases it when the process ends, however it ends
 *   (SIGKILL included), and in no other way. A free lock means a dead run.
 * - `record.jsonl`: one JSON line per thing the run made, written *before* it
 *   makes it: each namespace (`netns`), each path outside the directory
 *   (`path`), each process the run must end if it dies (`process`: a pid and a
 *   token of its `/proc/<pid>/cmdline`, checked before any kill).
 * - `tmp/`: every temporary file of the run (captures, kept captures), so
 *   removing the directory removes them.
 *
 * A later run reaps a record only while it holds the record's lock itself
 * (see {@linkcode deadRuns}); nothing a record does not name is ever touched.
 * The directory appears under its final name only once its lock is held (it
 * is made under a `.new-` name and renamed), so no reaper ever sees a live
 * run's directory unlocked.
 *
 * @example Register a VM process so that a later run ends it if this run is killed
 * ```ts ignore
 * import { RunRecord } from "./run_record.ts";
 *
 * await using record = await RunRecord.create();
 * const vm = new Deno.Command("qemu-system-x86_64", { args }).spawn();
 * await record.addProcess(vm.pid, "qemu-system-x86_64");
 * ```
 * @module
 */
import { join } from "node:path";

/** Where run directories live (and the machine-wide locks). */
export const RUNS_ROOT = "/run/backlog-lab";
/** Every run id (and so every lab namespace name) starts with this. */
export const RUN_ID_PREFIX = "bl-";

const LOCK = "lock";
const RECORD = "record.jsonl";
const TMP = "tmp";
const STAGING = ".new-";
/** A staging directory older than this (by mtime) is an abandoned one. */
const STAGING_MAX_AGE_MS = 60_000;

/** One line of `record.jsonl`. */
export type RecordEntry =
  | {
    kind: "run";
    id: string;
    /** The pid in the recording process's own PID namespace. */
    pid: number;
    /** `/proc/self/ns/pid` of the recording process, e.g. `pid:[4026531836]`. */
    pidNamespace: string;
    startedAt: string;
  }
  | { kind: "netns"; name: string }
  | { kind: "path"; path: string }
  | {
    kind: "process";
    pid: number;
    /** A string the process's `/proc/<pid>/cmdline` must contain to be ended. */
    token: string;
    /** Field 22 of `/proc/<pid>/stat` when registered: tells a reused pid apart. */
    startTime: string;
    /** The PID namespace the pid belongs to; a reaper elsewhere leaves it alone. */
    pidNamespace: string;
  };

/** Options of {@linkcode RunRecord.create}. */
export interface RunRecordOptions {
  /** The directory of run records (default {@linkcode RUNS_ROOT}); tests use a temporary one. */
  root?: string;
  /** The run id; default a fresh `bl-<pid>-<4 hex>` no other record or namespace uses. */
  id?: string;
}

/**
 * A live run's record; `AsyncDisposable`. Disposal removes the directory
 * (with its temporary files) and releases the lock; it is for when everything
 * the record names has been removed.
 */
export class RunRecord implements AsyncDisposable {
  /** The run id, `bl-<pid>-<4 hex>`. */
  readonly id: string;
  /** The run's directory. */
  readonly dir: string;
  /** Where the run's temporary files go (removed with the directory). */
  readonly tempDir: string;
  readonly #lock: Deno.FsFile;
  #writes: Promise<void> = Promise.resolve();
  #disposed = false;
  static #ofProcess: Promise<RunRecord> | undefined;

  private constructor(id: string, dir: string, lock: Deno.FsFile) {
    this.id = id;
    this.dir = dir;
    this.tempDir = join(dir, TMP);
    this.#lock = lock;
  }

  /**
   * Makes the run's directory and takes its lock: made under a staging name,
   * locked, then renamed, so it never exists unlocked under its run id.
   *
   * @throws {Deno.errors.PermissionDenied} when the root cannot be written (not root).
   */
  static async create(options: RunRecordOptions = {}): Promise<RunRecord> {
    const root = options.root ?? RUNS_ROOT;
    await Deno.mkdir(root, { recursive: true, mode: 0o755 });
    for (let attempt = 0; attempt < 20; attempt++) {
      const id = options.id ?? newRunId();
      if (options.id === undefined && await namespaceExistsWithPrefix(`${id}-`)) continue;
      const staging = await Deno.makeTempDir({ dir: root, prefix: STAGING });
      const lock = await Deno.open(join(staging, LOCK), { create: true, write: true });
      let renamed = false;
      try {
        if (!await lock.tryLock(true)) throw new Error("a fresh lock file is locked");
        await Deno.mkdir(join(staging, TMP), { mode: 0o700 });
        const head: RecordEntry = {
          kind: "run",
          id,
          pid: Deno.pid,
          pidNamespace: pidNamespace(),
          startedAt: new Date().toISOString(),
        };
        await Deno.writeTextFile(join(staging, RECORD), JSON.stringify(head) + "\n", {
          mode: 0o600,
        });
        const dir = join(root, id);
        try {
          // rename(2) onto an existing non-empty directory fails: the id is taken.
          await Deno.rename(staging, dir);
          renamed = true;
        } catch (err) {
          if (options.id !== undefined) {
            throw new Error(`Cannot create run record "${dir}": it exists`, { cause: err });
          }
          continue;
        }
        return new RunRecord(id, dir, lock);
      } finally {
        if (!renamed) {
          lock.close();
          await Deno.remove(staging, { recursive: true }).catch(() => {});
        }
      }
    }
    throw new Error(`Cannot create a run record in "${root}": no free run id after 20 tries`);
  }

  /**
   * This process's own record, made on first use and held until the process
   * ends: for namespaces made outside a `Lab` (tests, tools), so that they too
   * are recorded. At a normal exit it is removed when nothing it names is
   * left; otherwise a later run reaps it.
   */
  static ofProcess(): Promise<RunRecord> {
    return RunRecord.#ofProcess ??= RunRecord.create().then((record) => {
      globalThis.addEventListener("unload", () => record.#removeIfEmptySync());
      return record;
    }, (err) => {
      RunRecord.#ofProcess = undefined;
      throw err;
    });
  }

  /** Records a namespace; call it before creating the namespace. */
  addNamespace(name: string): Promise<void> {
    if (!name.startsWith(RUN_ID_PREFIX) || !/^[A-Za-z0-9_.-]+$/.test(name)) {
      throw new RangeError(
        `Cannot record namespace "${name}": lab names start with "${RUN_ID_PREFIX}"`,
      );
    }
    return this.#append({ kind: "netns", name });
  }

  /**
   * Records a file or directory outside the run directory that a reaper
   * removes (recursively) if the run dies; call it before creating the path.
   */
  addPath(path: string): Promise<void> {
    if (!path.startsWith("/") || path === "/") {
      throw new RangeError(`Cannot record path "${path}": give an absolute path below "/"`);
    }
    return this.#append({ kind: "path", path });
  }

  /**
   * Records a process that a reaper ends (SIGKILL, by pid) if the run dies,
   * but only while `/proc/<pid>/cmdline` still contains `token`, the process
   * is the one registered (its start time) and the reaper is in the same PID
   * namespace. Call it as soon as the process is spawned.
   *
   * @param pid The process's pid, as this process sees it.
   * @param token A string of its command line, e.g. `"qemu-system-x86_64"`.
   * @throws {RangeError} for an empty token, or a pid that is not running.
   */
  async addProcess(pid: number, token: string): Promise<void> {
    if (token === "") throw new RangeError("Cannot record a process without a cmdline token");
    const startTime = processStartTime(pid);
    if (startTime === undefined) {
      throw new RangeError(`Cannot record process ${pid}: it is not running`);
    }
    await this.#append({ kind: "process", pid, token, startTime, pidNamespace: pidNamespace() });
  }

  /** A path for a temporary file of this run: `<run dir>/tmp/<name>`. */
  tempPath(name: string): string {
    if (name.includes("/") || name === "" || name === "." || name === "..") {
      throw new RangeError(`Cannot name a temporary file "${name}": give a plain file name`);
    }
    return join(this.tempDir, name);
  }

  /** Everything recorded so far (the first entry describes the run). */
  async entries(): Promise<RecordEntry[]> {
    await this.#writes;
    return readEntries(join(this.dir, RECORD));
  }

  #append(entry: RecordEntry): Promise<void> {
    if (this.#disposed) {
      return Promise.reject(new Error(`Cannot add to run record "${this.id}": it is closed`));
    }
    const line = JSON.stringify(entry) + "\n";
    const write = this.#writes.then(() =>
      Deno.writeTextFile(join(this.dir, RECORD), line, { append: true })
    );
    this.#writes = write.catch(() => {});
    return write;
  }

  /** At exit: removes the directory if no namespace or process it names is left. */
  #removeIfEmptySync(): void {
    if (this.#disposed) return;
    try {
      const left = readEntriesSync(join(this.dir, RECORD)).some((e) =>
        e.kind === "netns"
          ? existsSync(`/run/netns/${e.name}`)
          : e.kind === "process"
          ? isRecordedProcess(e)
          : e.kind === "path"
          ? existsSync(e.path)
          : false
      );
      if (!left) Deno.removeSync(this.dir, { recursive: true });
    } catch { /* a later run reaps it */ }
  }

  /** Removes the directory (temporary files included) and releases the lock. Idempotent. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#writes;
    try {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    } finally {
      this.#lock.close();
    }
  }
}

/** A dead run's record, its lock held by the caller until disposed; `AsyncDisposable`. */
export interface DeadRun extends AsyncDisposable {
  /** The run id (the directory's name). */
  id: string;
  /** Its directory. */
  dir: string;
  /** What it recorded; lines that do not parse are left out. */
  entries: RecordEntry[];
}

/**
 * The records of dead runs under `root`: each one whose lock this call could
 * take. The caller removes what a record names, then disposes the
 * {@linkcode DeadRun}, which deletes the directory and releases the lock.
 * Records of live runs (locked) are not returned. Abandoned staging
 * directories (older than a minute, unlocked) are removed on the way.
 */
export async function deadRuns(root = RUNS_ROOT): Promise<DeadRun[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(root)) {
      if (e.isDirectory) names.push(e.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  const dead: DeadRun[] = [];
  for (const name of names.sort()) {
    const dir = join(root, name);
    if (name.startsWith(STAGING)) {
      await removeAbandonedStaging(dir);
      continue;
    }
    if (!name.startsWith(RUN_ID_PREFIX)) continue;
    let lock: Deno.FsFile;
    try {
      lock = await Deno.open(join(dir, LOCK), { read: true });
    } catch {
      continue; // no lock file: not a record this lab wrote, or gone meanwhile
    }
    if (!await lock.tryLock(true)) {
      lock.close();
      continue;
    }
    // The lock is ours: but the directory may have been reaped and removed meanwhile.
    if (!await Deno.stat(join(dir, LOCK)).then(() => true, () => false)) {
      lock.close();
      continue;
    }
    let closed = false;
    dead.push({
      id: name,
      dir,
      entries: await readEntries(join(dir, RECORD)),
      async [Symbol.asyncDispose]() {
        if (closed) return;
        closed = true;
        try {
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        } finally {
          lock.close();
        }
      },
    });
  }
  return dead;
}

/** Every record under `root`, live or dead, with what it names (read without taking locks). */
export async function allRecords(
  root = RUNS_ROOT,
): Promise<{ id: string; entries: RecordEntry[] }[]> {
  const records: { id: string; entries: RecordEntry[] }[] = [];
  try {
    for await (const e of Deno.readDir(root)) {
      if (!e.isDirectory || !e.name.startsWith(RUN_ID_PREFIX)) continue;
      records.push({ id: e.name, entries: await readEntries(join(root, e.name, RECORD)) });
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return records;
}

/** Whether `/proc/<pid>` is the process `entry` recorded, so that it may be ended. */
export function isRecordedProcess(entry: Extract<RecordEntry, { kind: "process" }>): boolean {
  if (entry.pidNamespace !== pidNamespace()) return false;
  if (processStartTime(entry.pid) !== entry.startTime) return false;
  try {
    const cmdline = Deno.readTextFileSync(`/proc/${entry.pid}/cmdline`).split("\0").join(" ");
    return cmdline.includes(entry.token);
  } catch {
    return false;
  }
}

/** A fresh run id: `bl-<pid>-<4 hex>`. */
export function newRunId(): string {
  const tag = crypto.getRandomValues(new Uint8Array(2));
  return `${RUN_ID_PREFIX}${Deno.pid}-${
    [...tag].map((b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/** `/proc/self/ns/pid` (e.g. `pid:[4026531836]`), or "" where it cannot be read. */
function pidNamespace(): string {
  try {
    return Deno.readLinkSync("/proc/self/ns/pid");
  } catch {
    return "";
  }
}

/** Field 22 (starttime) of `/proc/<pid>/stat`, or undefined when the process is gone. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

async function namespaceExistsWithPrefix(prefix: string): Promise<boolean> {
  try {
    for await (const e of Deno.readDir("/run/netns")) {
      if (e.name.startsWith(prefix)) return true;
    }
  } catch { /* no /run/netns yet */ }
  return false;
}

async function readEntries(file: string): Promise<RecordEntry[]> {
  try {
    return parseEntries(await Deno.readTextFile(file));
  } catch {
    return [];
  }
}

function readEntriesSync(file: string): RecordEntry[] {
  try {
    return parseEntries(Deno.readTextFileSync(file));
  } catch {
    return [];
  }
}

function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function parseEntries(text: string): RecordEntry[] {
  const entries: RecordEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line);
      if (isEntry(e)) entries.push(e);
    } catch { /* a line cut short by a kill: its thing was never made */ }
  }
  return entries;
}

function isEntry(e: unknown): e is RecordEntry {
  if (typeof e !== "object" || e === null) return false;
  const r = e as Record<string, unknown>;
  switch (r.kind) {
    case "run":
      return typeof r.id === "string";
    case "netns":
      return typeof r.name === "string";
    case "path":
      return typeof r.path === "string";
    case "process":
      return Number.isInteger(r.pid) && typeof r.token === "string" && r.token !== "" &&
        typeof r.startTime === "string" && typeof r.pidNamespace === "string";
    default:
      return false;
  }
}

async function removeAbandonedStaging(dir: string): Promise<void> {
  try {
    const info = await Deno.stat(dir);
    if (Date.now() - (info.mtime?.getTime() ?? Date.now()) < STAGING_MAX_AGE_MS) return;
    const lock = await Deno.open(join(dir, LOCK), { read: true }).catch(() => undefined);
    if (lock && !await lock.tryLock(true)) {
      lock.close();
      return;
    }
    try {
      await Deno.remove(dir, { recursive: true });
    } finally {
      lock?.close();
    }
  } catch { /* gone meanwhile */ }
}
