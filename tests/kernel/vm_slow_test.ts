/**
 * Real guests (root, `BACKLOG_LAB_SLOW=1`): one Debian kernel boots and runs
 * a command, then the lab itself; a VM whose owner is killed is reaped by
 * the next call; an aborted or timed-out boot leaves nothing behind. The
 * kernel is `$BACKLOG_LAB_TEST_KERNEL` (default `5.10@bullseye`), fetched
 * into the cache on first use.
 * @module
 */
import { match, ok as assert, rejects, strictEqual as equal } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  bootAndRun,
  fetchKernel,
  resolveKernel,
  stopAllVms,
  type UnpackedKernel,
  VmError,
} from "../../lab/kernel/mod.ts";
import type { RunRecord } from "../../lab/kernel/_run_record.ts";
import { qemusOf, recordsIn, runDirsOf, slowTest, waitUntil, withTempDir } from "./_helpers.ts";

const SPEC = Deno.env.get("BACKLOG_LAB_TEST_KERNEL") ?? "5.10@bullseye";
const PROJECT = fileURLToPath(new URL("../..", import.meta.url));
let kernel: UnpackedKernel | undefined;
async function testKernel(): Promise<UnpackedKernel> {
  kernel ??= await fetchKernel(await resolveKernel(SPEC));
  return kernel;
}

/** Nothing of this process's VMs is left: no QEMU, no directory, no record. */
async function assertNothingLeft(recordDir: string, ownerPid = Deno.pid): Promise<void> {
  equal(qemusOf(ownerPid).length, 0, "no QEMU of this test runs");
  equal(runDirsOf(ownerPid).length, 0, "no VM directory is left");
  equal((await recordsIn(recordDir)).length, 0, "no run record is left");
}

slowTest(
  "bootAndRun() runs a command in a Debian kernel: exit code, output, share, guest facts",
  async () => {
    const k = await testKernel();
    await withTempDir(async (dir) => {
      const share = join(dir, "share");
      await Deno.mkdir(share);
      const recordDir = join(dir, "records");
      const r = await bootAndRun({
        kernel: k,
        command: ["sh", "-c", "uname -r; echo out > /results/file; echo err >&2; pwd; exit 7"],
        cwd: PROJECT,
        shareDir: share,
        recordDir,
        logDir: join(dir, "logs"),
        timeoutMs: 120_000,
      });
      equal(r.exitCode, 7);
      equal(r.stdout, `${k.release}\n${PROJECT.replace(/\/$/, "")}\n`);
      equal(r.stderr, "err\n");
      equal(await Deno.readTextFile(join(share, "file")), "out\n");
      equal(r.guest.release, k.release);
      equal(r.guest.cpus, 2);
      assert(r.accel === "kvm" || r.accel === "tcg");
      assert(r.bootMs > 0 && r.runMs > 0);
      match(await Deno.readTextFile(r.consoleLog), /backlog-lab-init: READY/);
      equal(
        r.guest.tcpMaxSynBacklog,
        Number(Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_max_syn_backlog")),
      );
      console.log(
        `  ${k.release}: ${r.accel}, boot ${r.bootMs} ms, run ${r.runMs} ms, attempts ${r.attempts}`,
      );
      await assertNothingLeft(recordDir);
    });
  },
);

slowTest(
  "bootAndRun() runs `deno task lab --filter somaxconn-clamps --json` in the guest",
  async () => {
    const k = await testKernel();
    await withTempDir(async (dir) => {
      const share = join(dir, "share");
      await Deno.mkdir(share);
      const recordDir = join(dir, "records");
      const r = await bootAndRun({
        kernel: k,
        command: [
          "sh",
          "-c",
          "deno task lab --filter somaxconn-clamps --json > /results/results.json",
        ],
        cwd: PROJECT,
        env: { NO_COLOR: "1" },
        shareDir: share,
        recordDir,
        logDir: join(dir, "logs"),
        timeoutMs: 600_000,
      });
      // 0: every check held; 1: a check failed (timing under TCG) — both are a lab run that finished.
      assert(r.exitCode === 0 || r.exitCode === 1, `exit ${r.exitCode}: ${r.stderr.slice(-2000)}`);
      const doc = JSON.parse(await Deno.readTextFile(join(share, "results.json")));
      equal(doc.version, 1);
      equal(doc.kernel, k.release, "the lab ran on the guest's kernel");
      equal(doc.experiments.length, 1);
      equal(doc.experiments[0].id, "somaxconn-clamps-backlog");
      console.log(
        `  exit ${r.exitCode}, boot ${r.bootMs} ms, lab ${r.runMs} ms, passed ${doc.passed}`,
      );
      await assertNothingLeft(recordDir);
    });
  },
);

slowTest("a VM whose owner is killed with SIGKILL is reaped by the next bootAndRun()", async () => {
  const k = await testKernel();
  await withTempDir(async (dir) => {
    const recordDir = join(dir, "records");
    const owner = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", fileURLToPath(new URL("./_vm_owner.ts", import.meta.url))],
      env: { BL_TEST_KERNEL: SPEC, BL_TEST_RECORD_DIR: recordDir },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = owner.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const deadline = setTimeout(() => owner.kill("SIGKILL"), 240_000);
    while (!seen.includes("READY")) {
      const r = await lines.read();
      if (r.done) break;
      seen += r.value;
    }
    clearTimeout(deadline);
    assert(seen.includes("READY"), `the owner's guest did not start its command: ${seen}`);
    const records = await recordsIn(recordDir);
    equal(records.length, 1);
    const rec = JSON.parse(await Deno.readTextFile(join(recordDir, records[0]!))) as RunRecord;
    equal(rec.ownerPid, owner.pid);
    owner.kill("SIGKILL");
    await owner.status;
    await lines.cancel();
    await owner.stderr.cancel();
    // The owner is gone; its QEMU is not (nothing ran its cleanup).
    assert(qemusOf(owner.pid).includes(rec.qemuPid!), "QEMU outlived its killed owner");
    const next = await bootAndRun({
      kernel: k,
      command: ["true"],
      recordDir,
      logDir: join(dir, "logs"),
      timeoutMs: 120_000,
    });
    equal(next.exitCode, 0);
    await waitUntil(
      "the killed owner's QEMU to be gone",
      () => qemusOf(owner.pid),
      (p) => p.length === 0,
      10_000,
    );
    equal(runDirsOf(owner.pid).length, 0, "the killed owner's VM directory was removed");
    await assertNothingLeft(recordDir);
  });
});

slowTest(
  "an aborted boot and a boot past its deadline leave no QEMU, directory or record",
  async () => {
    const k = await testKernel();
    await withTempDir(async (dir) => {
      const recordDir = join(dir, "records");
      const ac = new AbortController();
      await rejects(
        bootAndRun({
          kernel: k,
          command: ["true"],
          recordDir,
          logDir: join(dir, "logs"),
          signal: ac.signal,
          // Abort as soon as the guest kernel speaks: mid-boot.
          onConsoleLine: () => ac.abort(),
        }),
        (e: unknown) => e instanceof VmError && e.failure === "aborted",
      );
      await assertNothingLeft(recordDir);
      await rejects(
        bootAndRun({
          kernel: k,
          command: ["true"],
          recordDir,
          logDir: join(dir, "logs"),
          bootTimeoutMs: 300,
          bootRetries: 0,
        }),
        (e: unknown) =>
          e instanceof VmError && e.failure === "boot-timeout" &&
          /did not start the command within 300 ms/.test(e.message),
      );
      await assertNothingLeft(recordDir);
    });
  },
);

slowTest("stopAllVms() ends a running guest and waits for its cleanup", async () => {
  const k = await testKernel();
  await withTempDir(async (dir) => {
    const recordDir = join(dir, "records");
    let started = false;
    const run = bootAndRun({
      kernel: k,
      command: ["sleep", "600"],
      recordDir,
      logDir: join(dir, "logs"),
      onConsoleLine: (l) => {
        if (l.includes("backlog-lab-init: READY")) started = true;
      },
    });
    const outcome = run.catch((e) => e);
    await waitUntil("the guest to start its command", () => started, (s) => s, 240_000);
    await stopAllVms();
    await assertNothingLeft(recordDir);
    const err = await outcome;
    assert(err instanceof VmError && err.failure === "aborted", String(err));
  });
});
