/**
 * Giving files back to the user who ran the lab through `sudo`: the lab runs
 * as root, but a report directory or a cache it writes for that user must be
 * theirs to read, change and delete.
 * @module
 */
import { dirname, join } from "node:path";

/** A uid and gid to give files to. */
export interface Owner {
  /** User id. */
  uid: number;
  /** Group id. */
  gid: number;
}

/**
 * The user behind `sudo` (`SUDO_UID`/`SUDO_GID`) when this process runs as
 * root for someone else; undefined otherwise.
 */
export function sudoOwner(
  env: (name: string) => string | undefined = Deno.env.get,
): Owner | undefined {
  const uid = Number(env("SUDO_UID"));
  const gid = Number(env("SUDO_GID"));
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid <= 0 || gid < 0) return undefined;
  if (Deno.uid() !== 0) return undefined;
  return { uid, gid };
}

/** Gives `path` and, for a directory, everything below it to `owner`; symlinks are not followed. */
export async function chownTree(path: string, owner: Owner): Promise<void> {
  await Deno.lstat(path).then(async (info) => {
    if (info.isSymlink) return;
    await Deno.chown(path, owner.uid, owner.gid);
    if (!info.isDirectory) return;
    for await (const e of Deno.readDir(path)) await chownTree(join(path, e.name), owner);
  });
}

/**
 * Makes `dir` and its missing parents, returning the ones it made (outermost
 * first), so that the caller can give exactly those away.
 */
export async function mkdirTracked(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir;; d = dirname(d)) {
    const exists = await Deno.lstat(d).then(() => true, () => false);
    if (exists || dirname(d) === d) break;
    missing.unshift(d);
  }
  await Deno.mkdir(dir, { recursive: true });
  return missing;
}
