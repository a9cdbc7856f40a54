/**
 * Reaping what dead runs left: every run record whose lock is free (its run
 * is gone, however it ended) is read, and only what it names is removed: its
 * recorded processes (each only while it is still the process registered),
 * its namespaces with the processes inside them, its recorded paths, then the
 * record with its temporary files. Nothing a record does not name is ever
 * touched, whatever its name: an entry of `/run/netns` that looks like the
 * lab's but that no record names is only reported.
 * @module
 */
import { allRecords, deadRuns, isRecordedProcess, RUNS_ROOT } from "../base/run_record.ts";
import { NAME_PREFIX, removeNamespace } from "./netns.ts";

/** What {@linkcode reapDeadRuns} did. */
export interface ReapResult {
  /** Ids of the dead runs whose records were reaped. */
  runs: string[];
  /** Namespaces removed (with the processes inside them). */
  namespaces: string[];
  /** Recorded processes ended (pids). */
  processes: number[];
  /** Recorded paths removed (temporary files and directories outside a run directory). */
  paths: string[];
  /** What a dead run's record names but could not be removed, each with the reason. */
  skipped: string[];
  /**
   * Entries of `/run/netns` named like the lab's (`bl-…`) that no run record
   * names: not the lab's to touch (another tool's, a run of an older version,
   * junk); left alone.
   */
  unrecorded: string[];
}

/**
 * Reaps the records of dead runs under `root`, then lists the lab-looking
 * namespaces no record names. Never throws for one thing it cannot remove:
 * that goes to `skipped`.
 */
export async function reapDeadRuns(root = RUNS_ROOT): Promise<ReapResult> {
  const result: ReapResult = {
    runs: [],
    namespaces: [],
    processes: [],
    paths: [],
    skipped: [],
    unrecorded: [],
  };
  // Listed before any record is read: a live run records a namespace before creating it.
  const present = await netnsEntries();
  for (const dead of await deadRuns(root)) {
    await using _ = dead;
    result.runs.push(dead.id);
    for (const e of dead.entries) {
      if (e.kind !== "process") continue;
      if (!isRecordedProcess(e)) continue;
      try {
        Deno.kill(e.pid, "SIGKILL");
        result.processes.push(e.pid);
      } catch (err) {
        result.skipped.push(`process ${e.pid} (${e.token}): ${(err as Error).message}`);
      }
    }
    for (const e of dead.entries) {
      if (e.kind !== "netns" || !present.includes(e.name)) continue;
      try {
        if (!(await isNamespaceMount(e.name))) {
          throw new Error(`"/run/netns/${e.name}" is not a namespace mount`);
        }
        await removeNamespace(e.name);
        result.namespaces.push(e.name);
      } catch (err) {
        result.skipped.push(
          `namespace "${e.name}": ${(err as Error).message.split("\n")[0]}`,
        );
      }
    }
    for (const e of dead.entries) {
      if (e.kind !== "path") continue;
      try {
        await Deno.remove(e.path, { recursive: true });
        result.paths.push(e.path);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) {
          result.skipped.push(`path "${e.path}": ${(err as Error).message}`);
        }
      }
    }
  }
  const recorded = new Set(await recordedNamespaces(root));
  result.unrecorded = present.filter((n) =>
    n.startsWith(NAME_PREFIX) && !recorded.has(n) && !result.namespaces.includes(n)
  );
  return result;
}

/** The names in `/run/netns`, or none when it does not exist. */
async function netnsEntries(): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir("/run/netns")) names.push(e.name);
  } catch { /* no namespaces */ }
  return names.sort();
}

/** Whether `/run/netns/<name>` is a namespace (an nsfs bind mount), not a stray file or directory. */
async function isNamespaceMount(name: string): Promise<boolean> {
  const [entry, nsfs] = await Promise.all([
    Deno.lstat(`/run/netns/${name}`),
    Deno.stat("/proc/self/ns/net"),
  ]);
  // The bind mount shows the namespace's nsfs inode, on nsfs's device; a stray file does not.
  return entry.dev === nsfs.dev;
}

/** Every namespace any record (live or dead) under `root` names. */
async function recordedNamespaces(root: string): Promise<string[]> {
  return (await allRecords(root)).flatMap((r) =>
    r.entries.flatMap((e) => e.kind === "netns" ? [e.name] : [])
  );
}
