/**
 * Run records of live VMs, so that a VM whose owner was killed (SIGKILL)
 * is reaped by the next run: one JSON file per VM naming the owner and the
 * QEMU process (each by PID and start time, so a reused PID is never
 * mistaken for it), the VM's unique tag and its temporary directory.
 *
 * A QEMU process is killed only when its PID, its start time and its
 * command line (which holds `-name backlog-lab-vm-<tag>`) all match the
 * record: the lab never ends a process it did not start.
 * @module
 */
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

/** What a run record holds. */
export interface RunRecord {
  /** The VM's unique tag; QEMU runs with `-name backlog-lab-vm-<tag>`. */
  tag: string;
  /** The process that started the VM. */
  ownerPid: number;
  /** Its start time (clock ticks since boot, `/proc/<pid>/stat` field 22). */
  ownerStart: number;
  /** The QEMU process, once started. */
  qemuPid?: number;
  /** Its start time. */
  qemuStart?: number;
  /** The VM's temporary directory (removed when reaped). */
  runDir: string;
  /** ISO time the VM was started. */
  startedAt: string;
}

/** The prefix of every VM's temporary directory name. */
export const RUN_DIR_PREFIX = "backlog-lab-vm-";

/** Where run records live: `/run/backlog-lab/vms` as root, else under the temp directory. */
export function defaultRecordDir(): string {
  return Deno.uid() === 0
    ? "/run/backlog-lab/vms"
    : join(tmpdir(), `backlog-lab-${Deno.uid()}`, "vms");
}

/** The QEMU `-name` of a VM. */
export function qemuName(tag: string): string {
  return `${RUN_DIR_PREFIX}${tag}`;
}

/** A process's start time, or `undefined` when it is gone. */
export function processStart(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces) start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is the same process that started at `start` (not a zombie). */
export function isSameProcess(pid: number, start: number | undefined): boolean {
  if (start === undefined) return false;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    if (state === "Z" || state === "X") return false;
  } catch {
    return false;
  }
  return processStart(pid) === start;
}

/** Writes (or rewrites) a record atomically. */
export async function writeRecord(dir: string, record: RunRecord): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, `${record.tag}.json`);
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(record) + "\n");
  await Deno.rename(tmp, path);
  return path;
}

/** Removes a record; tolerates "already gone". */
export async function removeRecord(dir: string, tag: string): Promise<void> {
  await Deno.remove(join(dir, `${tag}.json`)).catch(() => {});
}

/** What {@linkcode reapStaleVms} did. */
export interface ReapResult {
  /** Tags of records whose owner was gone and that were cleaned up. */
  reaped: string[];
  /** PIDs of QEMU processes it killed. */
  killed: number[];
}

/**
 * Cleans up after VMs whose owner is gone: kills their QEMU (only when
 * PID, start time and the `-name` tag in its command line all match),
 * removes their temporary directory (only one named `backlog-lab-vm-…`)
 * and their record. Records of live owners are left alone.
 */
export async function reapStaleVms(dir: string = defaultRecordDir()): Promise<ReapResult> {
  const result: ReapResult = { reaped: [], killed: [] };
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return result;
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.endsWith(".json")) continue;
    let rec: RunRecord;
    try {
      rec = JSON.parse(await Deno.readTextFile(join(dir, e.name)));
    } catch {
      continue; // being written, or not ours to judge
    }
    if (isSameProcess(rec.ownerPid, rec.ownerStart)) continue;
    if (rec.qemuPid !== undefined && isOurQemu(rec)) {
      try {
        Deno.kill(rec.qemuPid, "SIGKILL");
        result.killed.push(rec.qemuPid);
      } catch { /* exited meanwhile */ }
      const deadline = Date.now() + 10_000;
      while (isSameProcess(rec.qemuPid, rec.qemuStart) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    if (basename(rec.runDir).startsWith(RUN_DIR_PREFIX)) {
      await Deno.remove(rec.runDir, { recursive: true }).catch(() => {});
    }
    await removeRecord(dir, rec.tag);
    result.reaped.push(rec.tag);
  }
  return result;
}

/** PID, start time and the exact `-name` argument all match the record. */
function isOurQemu(rec: RunRecord): boolean {
  if (rec.qemuPid === undefined || !isSameProcess(rec.qemuPid, rec.qemuStart)) return false;
  try {
    const argv = Deno.readTextFileSync(`/proc/${rec.qemuPid}/cmdline`).split("\0");
    const i = argv.indexOf("-name");
    return i >= 0 && argv[i + 1] === qemuName(rec.tag);
  } catch {
    return false;
  }
}
