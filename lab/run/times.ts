/**
 * The times cache: each experiment's last duration on this machine, kept in
 * `$XDG_CACHE_HOME/backlog-lab/times.json`, for progress estimates and for
 * starting the longest matrix points first.
 * @module
 */
import { dirname, join } from "node:path";
import { type Owner, sudoOwner } from "../base/owner.ts";

/** Where the previous run's experiment times are kept: `$XDG_CACHE_HOME/backlog-lab/times.json`. */
export function timesCachePath(): string | undefined {
  // The XDG spec treats an empty variable as unset.
  const base = Deno.env.get("XDG_CACHE_HOME") ||
    (Deno.env.get("HOME") ? join(Deno.env.get("HOME")!, ".cache") : undefined);
  return base === undefined ? undefined : join(base, "backlog-lab", "times.json");
}

/** Experiment key (`id` and mode) → last duration in ms; empty when there is none or it is unreadable. */
export async function readTimes(path = timesCachePath()): Promise<Record<string, number>> {
  if (path === undefined) return {};
  try {
    const data: unknown = JSON.parse(await Deno.readTextFile(path));
    if (typeof data !== "object" || data === null || Array.isArray(data)) return {};
    return Object.fromEntries(
      Object.entries(data).filter(([, v]) => typeof v === "number" && Number.isFinite(v)),
    );
  } catch {
    return {};
  }
}

/**
 * Merges these durations into the cache file; a cache that cannot be written
 * is skipped. Run through `sudo` (see {@linkcode sudoOwner}) with a cache in
 * that user's own directories (the user's `HOME` kept), the file and the
 * directories made for it are given to that user, so that they stay theirs.
 */
export async function writeTimes(
  times: Record<string, number>,
  path = timesCachePath(),
  owner: Owner | undefined = sudoOwner(),
): Promise<void> {
  if (path === undefined) return;
  try {
    const merged = { ...(await readTimes(path)), ...times };
    await Deno.mkdir(dirname(path), { recursive: true });
    // Write then rename, so that a lab running beside this one never reads half a file.
    const temp = `${path}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(temp, JSON.stringify(merged, null, 1) + "\n");
    const chain = owner === undefined ? undefined : await inTreeOf(dirname(path), owner);
    if (owner !== undefined && chain !== undefined) {
      for (const d of [...chain, temp]) await Deno.chown(d, owner.uid, owner.gid);
    }
    await Deno.rename(temp, path);
  } catch {
    // A cache is a convenience: a read-only home must not fail the lab.
  }
}

async function ownerOf(path: string): Promise<number | undefined> {
  return (await Deno.stat(path).catch(() => undefined))?.uid ?? undefined;
}

/**
 * The directories from `dir` up that are not `owner`'s, when a directory of
 * `owner`'s is above them (the cache is in that user's home: `sudo` kept
 * `HOME`); undefined otherwise (e.g. `/root/.cache`: root's, left as it is).
 */
async function inTreeOf(dir: string, owner: Owner): Promise<string[] | undefined> {
  const chain: string[] = [];
  for (let d = dir; dirname(d) !== d; d = dirname(d)) {
    if (await ownerOf(d) === owner.uid) return chain;
    chain.push(d);
  }
  return undefined;
}
