/**
 * Real guests (root, `BACKLOG_LAB_SLOW=1`): one Debian kernel boots and runs
 * a command, then `deno task lab --kernel` runs one experiment in it and
 * writes its report; a VM whose owner is killed is reaped by the next call;
 * an aborted or timed-out boot leaves nothing behind. The
 * kernel is `$BACKLOG_LAB_TEST_KERNEL` (default `5.10@bullseye`), fetched
 * into the cache on first use.
 * @module
 */
import {
  deepStrictEqual as deepEqual,
  match,
  ok as assert,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  bootAndRun,
  fetchKernel,
  resolveKernel,
  stopAllVms,
  type UnpackedKernel,
  VmError,
} from "../../lab/kernel/mod.ts";
import { RunRecord } from "../../lab/base/run_record.ts";
import { slug } from "../../lab/kernel/command.ts";
import type { KernelMatrixReport, LabReport } from "../../lab/results.ts";
import { runCli } from "../_helpers.ts";
import { schemaErrors } from "../_schema.ts";
import {
  killOwnerOnceReady,
  qemusOf,
  runDirsIn,
  slowTest,
  waitUntil,
  withTempDir,
} from "./_helpers.ts";

const SPEC = Deno.env.get("BACKLOG_LAB_TEST_KERNEL") ?? "5.10@bullseye";
const PROJECT = fileURLToPath(new URL("../..", import.meta.url));
let kernel: UnpackedKernel | undefined;
async function testKernel(): Promise<UnpackedKernel> {
  kernel ??= await fetchKernel(await resolveKernel(SPEC));
  return kernel;
}

/** The share directories of `--kernel` runs in the temporary directory. */
function shareDirs(): string[] {
  return [...Deno.readDirSync(tmpdir())].map((e) => e.name).filter((n) =>
    n.startsWith("backlog-lab-kernel-")
  );
}

/** Nothing of this process's VMs is left: no QEMU, no directory, no record. */
async function assertNothingLeft(record: RunRecord, ownerPid = Deno.pid): Promise<void> {
  equal(qemusOf(ownerPid).length, 0, "no QEMU of this test runs");
  equal(runDirsIn(record.tempDir).length, 0, "no VM directory is left");
  const left = (await record.entries()).filter((e) =>
    e.kind === "process" && qemusOf(ownerPid).includes(e.pid)
  );
  equal(left.length, 0, "no process the record names runs");
}

slowTest(
  "bootAndRun() runs a command in a Debian kernel: exit code, output, share, guest facts",
  async () => {
    const k = await testKernel();
    await withTempDir(async (dir) => {
      const share = join(dir, "share");
      await Deno.mkdir(share);
      await using record = await RunRecord.create({ root: join(dir, "runs") });
      const r = await bootAndRun({
        kernel: k,
        command: ["sh", "-c", "uname -r; echo out > /results/file; echo err >&2; pwd; exit 7"],
        cwd: PROJECT,
        shareDir: share,
        record,
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
      await assertNothingLeft(record);
    });
  },
);

slowTest(
  "deno task lab --kernel runs an experiment in a Debian kernel and writes the claims × kernels report",
  async () => {
    const k = await testKernel();
    await withTempDir(async (dir) => {
      const report = join(dir, "report");
      const before = shareDirs();
      // One experiment with a packet rule (nft: 5.10 echoes it differently) and a capture.
      const r = await runCli([
        "--kernel",
        SPEC,
        "--filter",
        "^ss-queues-of-connected-sockets$",
        "--report",
        report,
      ]);
      const pid = Number(r.prefix.split("-")[1]);
      equal(r.code, 0, `exit ${r.code}: ${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
      match(r.stdout, /\[ OK \] ss-queues-of-connected-sockets/);
      match(r.stdout, /Claims × kernels/);
      match(r.stdout, /│ A4\.3\s+│ \S+/);
      match(r.stdout, /\((TCG|KVM) guest, boot [\d.]+ s, run /);
      const doc: KernelMatrixReport = JSON.parse(
        await Deno.readTextFile(join(report, "results.json")),
      );
      deepEqual(schemaErrors(doc), []);
      equal(doc.kernels.length, 1);
      const run = doc.kernels[0]!;
      equal(run.report?.kernel, k.release, "the lab ran on the guest's kernel");
      equal(run.report?.kernelFacts?.release, k.release);
      equal(run.report?.kernelFacts?.probed, true);
      assert(run.vm && run.vm.bootMs > 0 && (run.vm.accel === "kvm" || run.vm.accel === "tcg"));
      equal(run.report?.experiments[0]?.passed, true);
      const kernelDir = join(report, "kernels", slug(run.label));
      assert((await Deno.stat(join(kernelDir, "report.md"))).isFile);
      // The matrix document names each run's files relative to DIR, inside the kernel's report.
      const pcaps = Object.values(run.report!.experiments[0]!.runs[0]!.pcaps ?? {});
      assert(pcaps.length > 0, "the run names its pcap");
      for (const f of pcaps) {
        assert(f.startsWith(`kernels/${slug(run.label)}/pcaps/`), f);
        assert((await Deno.stat(join(report, f))).size > 24, `${f} is a capture`);
      }
      const kept: LabReport = JSON.parse(await Deno.readTextFile(join(kernelDir, "results.json")));
      const files = Object.values(kept.experiments[0]!.runs[0]!.pcaps ?? {});
      assert(files.length > 0, "the kernel's own report names the run's pcap");
      for (const f of files) assert((await Deno.stat(join(kernelDir, f))).size > 24);
      console.log(
        `  ${run.label}: ${run.vm!.accel}, boot ${run.vm!.bootMs} ms, run ${
          run.vm!.runMs
        } ms, all ${run.durationMs} ms`,
      );
      deepEqual(shareDirs(), before, "the share directory is removed");
      equal(qemusOf(pid).length, 0, "no QEMU of the CLI is left");
      // The CLI's VM directories lived in its run record, removed at its exit.
      deepEqual(
        [...Deno.readDirSync("/run/backlog-lab")].filter((e) => e.name.startsWith(`bl-${pid}-`)),
        [],
        "no run record of the CLI is left",
      );
    });
  },
);

slowTest("a VM whose owner is killed with SIGKILL is reaped by the next bootAndRun()", async () => {
  const k = await testKernel();
  await withTempDir(async (dir) => {
    const root = join(dir, "runs");
    const { ownerPid, qemus } = await killOwnerOnceReady(
      { BL_TEST_KERNEL: SPEC, BL_TEST_ROOT: root },
      240_000,
    );
    equal(qemus.length, 1, "the owner's QEMU runs");
    // The owner is gone; its QEMU is not (nothing ran its cleanup).
    assert(qemusOf(ownerPid).includes(qemus[0]!), "QEMU outlived its killed owner");
    await using record = await RunRecord.create({ root });
    const next = await bootAndRun({
      kernel: k,
      command: ["true"],
      record,
      logDir: join(dir, "logs"),
      timeoutMs: 120_000,
    });
    equal(next.exitCode, 0);
    await waitUntil(
      "the killed owner's QEMU to be gone",
      () => qemusOf(ownerPid),
      (p) => p.length === 0,
      10_000,
    );
    deepEqual(
      [...Deno.readDirSync(root)].map((e) => e.name).filter((n) => n !== basename(record.dir)),
      [],
      "the killed owner's run record (with its VM directory) was removed",
    );
    await assertNothingLeft(record);
  });
});

slowTest(
  "an aborted boot and a boot past its deadline leave no QEMU, directory or record",
  async () => {
    const k = await testKernel();
    await withTempDir(async (dir) => {
      await using record = await RunRecord.create({ root: join(dir, "runs") });
      const ac = new AbortController();
      await rejects(
        bootAndRun({
          kernel: k,
          command: ["true"],
          record,
          logDir: join(dir, "logs"),
          signal: ac.signal,
          // Abort as soon as the guest kernel speaks: mid-boot.
          onConsoleLine: () => ac.abort(),
        }),
        (e: unknown) => e instanceof VmError && e.failure === "aborted",
      );
      await assertNothingLeft(record);
      await rejects(
        bootAndRun({
          kernel: k,
          command: ["true"],
          record,
          logDir: join(dir, "logs"),
          bootTimeoutMs: 300,
          bootRetries: 0,
        }),
        (e: unknown) =>
          e instanceof VmError && e.failure === "boot-timeout" &&
          /did not start the command within 300 ms/.test(e.message),
      );
      await assertNothingLeft(record);
    });
  },
);

slowTest("stopAllVms() ends a running guest and waits for its cleanup", async () => {
  const k = await testKernel();
  await withTempDir(async (dir) => {
    await using record = await RunRecord.create({ root: join(dir, "runs") });
    let started = false;
    const run = bootAndRun({
      kernel: k,
      command: ["sleep", "600"],
      record,
      logDir: join(dir, "logs"),
      onConsoleLine: (l) => {
        if (l.includes("backlog-lab-init: READY")) started = true;
      },
    });
    const outcome = run.catch((e) => e);
    await waitUntil("the guest to start its command", () => started, (s) => s, 240_000);
    await stopAllVms();
    await assertNothingLeft(record);
    const err = await outcome;
    assert(err instanceof VmError && err.failure === "aborted", String(err));
  });
});
