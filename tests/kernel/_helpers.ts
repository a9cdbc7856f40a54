/**
 * Helpers of the kernel/VM tests: test data, temporary directories, and
 * the gate of slow tests (real guests: root, and `BACKLOG_LAB_SLOW=1`).
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { RUN_DIR_PREFIX } from "../../lab/kernel/vm.ts";

/** `tests/kernel/testdata/`. */
export const TESTDATA = fileURLToPath(new URL("./testdata", import.meta.url));

/** Runs `fn` with a fresh temporary directory, removed afterwards whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "bl-kernel-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** xz-compresses bytes with the system's xz. */
export async function xzCompress(bytes: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("xz", { args: ["-c"], stdin: "piped", stdout: "piped" }).spawn();
  const w = child.stdin.getWriter();
  await w.write(bytes);
  await w.close();
  const out = await child.output();
  if (!out.success) throw new Error("Cannot run xz -c");
  return out.stdout;
}

const SLOW = Deno.env.get("BACKLOG_LAB_SLOW") === "1";
const ROOT = Deno.build.os === "linux" && Deno.uid() === 0;
const REQUIRE_ROOT = Deno.env.get("BACKLOG_LAB_REQUIRE_ROOT") === "1";
let warned = false;

/**
 * A slow test that boots real guests: named `[slow] <name>` (select them
 * with `--filter "[slow]"`), run only as root with `BACKLOG_LAB_SLOW=1`,
 * otherwise ignored with one warning. With `BACKLOG_LAB_SLOW=1` and
 * `BACKLOG_LAB_REQUIRE_ROOT=1` but no root, it fails instead. Resource and
 * op sanitizers are on: a leaked process or file is a failure. Deno's
 * reporter prints each test's duration.
 */
export function slowTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  const full = `[slow] ${name}`;
  if (SLOW && !ROOT && REQUIRE_ROOT) {
    Deno.test(full, () => {
      throw new Error("This test boots guests and needs root: run the tests as root");
    });
    return;
  }
  if (!(SLOW && ROOT) && !warned) {
    warned = true;
    console.warn(
      `\n*** SKIPPING the [slow] kernel/VM tests: they need root and BACKLOG_LAB_SLOW=1 ***\n`,
    );
  }
  Deno.test({
    name: full,
    ignore: !(SLOW && ROOT),
    sanitizeOps: true,
    sanitizeResources: true,
    fn,
  });
}

/** Polls `pred` every 50 ms until true; throws after `timeoutMs` naming `what` and the last value. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T> | T,
  pred: (v: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = await probe();
  while (!pred(last)) {
    if (performance.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
    last = await probe();
  }
  return last;
}

/** PIDs of processes (QEMU or a stand-in) whose `-name` starts with `backlog-lab-vm-<ownerPid>-`. */
export function qemusOf(ownerPid: number): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      const i = argv.indexOf("-name");
      if (i >= 0 && (argv[i + 1] ?? "").startsWith(`${RUN_DIR_PREFIX}${ownerPid}-`)) {
        pids.push(Number(e.name));
      }
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

/** VM directories in a run record's temporary files (`record.tempDir`). */
export function runDirsIn(tempDir: string): string[] {
  try {
    return [...Deno.readDirSync(tempDir)].map((e) => e.name).filter((n) =>
      n.startsWith(RUN_DIR_PREFIX)
    );
  } catch {
    return [];
  }
}

/**
 * A modules directory like a real kernel's, from the recorded 7.2 `modules.dep`
 * and `modules.builtin` excerpts, each module a small xz-compressed stand-in.
 */
export async function fakeModulesDir(dir: string, release = "7.2.13+deb14-amd64"): Promise<string> {
  const modulesDir = join(dir, "lib", "modules", release);
  const dep = Deno.readTextFileSync(join(TESTDATA, "modules-7.2.dep"));
  await Deno.mkdir(modulesDir, { recursive: true });
  await Deno.writeTextFile(join(modulesDir, "modules.dep"), dep);
  await Deno.copyFile(join(TESTDATA, "modules-7.2.builtin"), join(modulesDir, "modules.builtin"));
  for (const line of dep.split("\n")) {
    const path = line.split(":")[0];
    if (!path) continue;
    const file = join(modulesDir, path);
    const name = path.slice(path.lastIndexOf("/") + 1).replace(/\.ko\.xz$/, "").replaceAll(
      "-",
      "_",
    );
    await Deno.mkdir(join(file, ".."), { recursive: true });
    await Deno.writeFile(file, await xzCompress(new TextEncoder().encode(`ELF of ${name}`)));
  }
  return modulesDir;
}

/**
 * Starts `_vm_owner.ts` (a process that boots a VM and prints READY once its
 * guest runs the command) with `env`, waits for READY (or its deadline), then
 * kills it with SIGKILL, so that nothing of its own cleanup runs. Returns its
 * PID and the PIDs of its QEMUs seen before the kill.
 */
export async function killOwnerOnceReady(
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ ownerPid: number; qemus: number[] }> {
  const owner = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(new URL("./_vm_owner.ts", import.meta.url))],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = owner.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = setTimeout(() => owner.kill("SIGKILL"), timeoutMs);
  while (!seen.includes("READY")) {
    const r = await lines.read();
    if (r.done) break;
    seen += r.value;
  }
  clearTimeout(deadline);
  const qemus = qemusOf(owner.pid);
  if (seen.includes("READY")) owner.kill("SIGKILL");
  await owner.status;
  await lines.cancel();
  await owner.stderr.cancel();
  if (!seen.includes("READY")) {
    throw new Error(`the owner's guest did not start its command: ${seen}`);
  }
  return { ownerPid: owner.pid, qemus };
}
