import {
  deepStrictEqual as deepEqual,
  ok as assert,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { basename, join } from "node:path";
import { tmpdir } from "node:os";
import { kernelCmdline, qemuArgv } from "../../lab/kernel/vm.ts";
import {
  processStart,
  qemuName,
  reapStaleVms,
  RUN_DIR_PREFIX,
  type RunRecord,
  writeRecord,
} from "../../lab/kernel/_run_record.ts";
import { bootAndRun } from "../../lab/kernel/vm.ts";
import { withTempDir } from "./_helpers.ts";

Deno.test("kernelCmdline() gives TCG a reliable TSC at the host's frequency, and KVM nothing of it", () => {
  const tcg = kernelCmdline({ accel: "tcg", tag: "t1", tscKhz: 2596130, thashEntries: 262144 });
  const words = tcg.split(" ");
  for (
    const w of [
      "console=ttyS0",
      "panic=-1",
      "oops=panic",
      "tsc=reliable",
      "tsc_early_khz=2596130",
      "thash_entries=262144",
      "backlog_lab.tag=t1",
    ]
  ) assert(words.includes(w), `${w} in ${tcg}`);
  const kvm = kernelCmdline({ accel: "kvm", tag: "t2", probe: true });
  assert(!kvm.includes("tsc="), kvm);
  assert(!kvm.includes("thash_entries"), kvm);
  assert(kvm.split(" ").includes("backlog_lab.mode=probe"));
});

Deno.test("qemuArgv() has no network device, a unique name, the console on stdio and a read-only root", () => {
  const argv = qemuArgv({
    accel: "tcg",
    tag: "123-abc",
    vmlinuz: "/k/vmlinuz",
    initrd: "/t/initramfs.cpio.gz",
    cmdline: "console=ttyS0",
    memoryMiB: 4096,
    cpus: 2,
    ctlDir: "/t/ctl",
    shareDir: "/out",
  });
  const after = (flag: string) => argv.filter((_, i) => argv[i - 1] === flag);
  equal(argv[0], "qemu-system-x86_64");
  deepEqual(after("-name"), [qemuName("123-abc")]);
  assert(argv.includes("-nodefaults"), "no default devices (no NIC)");
  assert(argv.includes("-no-reboot"), "a reboot (crash or done) ends QEMU");
  assert(!argv.some((a) => /^-(net|netdev|nic)$/.test(a) || /virtio-net/.test(a)));
  deepEqual(after("-serial"), ["stdio"]);
  deepEqual(after("-accel"), ["tcg,thread=multi"]);
  deepEqual(after("-cpu"), ["max"]);
  deepEqual(after("-M"), ["microvm,x-option-roms=off,rtc=on"]);
  deepEqual(after("-m"), ["4096M"]);
  const fsdevs = after("-fsdev");
  equal(fsdevs.length, 3);
  assert(fsdevs.some((f) => f.startsWith("local,id=blroot,path=/,") && f.endsWith(",readonly=on")));
  assert(
    fsdevs.some((f) => f.startsWith("local,id=blctl,path=/t/ctl,") && !f.includes("readonly")),
  );
  assert(
    fsdevs.some((f) => f.startsWith("local,id=blshare,path=/out,") && !f.includes("readonly")),
  );
  const kvm = qemuArgv({
    accel: "kvm",
    tag: "p",
    vmlinuz: "/k",
    initrd: "/i",
    cmdline: "",
    memoryMiB: 512,
    cpus: 1,
  });
  deepEqual(kvm.filter((_, i) => kvm[i - 1] === "-accel"), ["kvm"]);
  equal(kvm.filter((a) => a === "-fsdev").length, 0, "the probe shares nothing");
});

/** A test that spawns processes: resource and op sanitizers on (a leaked child is a bug). */
function processTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, sanitizeOps: true, sanitizeResources: true, fn });
}

/** A process that looks like our QEMU to the reaper: `-name <tag>` in its argv, blocked in `read`. */
function fakeQemu(name: string): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", "read x", "-name", name],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** A PID and start time of a process that has exited. */
async function deadOwner(): Promise<{ pid: number; start: number }> {
  const child = new Deno.Command("sleep", { args: ["0.05"] }).spawn();
  const start = processStart(child.pid)!;
  await child.status;
  return { pid: child.pid, start };
}

processTest(
  "reapStaleVms() ends the QEMU of a dead owner and removes its directory and record",
  async () => {
    await withTempDir(async (recordDir) => {
      const tag = `test-${crypto.randomUUID().slice(0, 8)}`;
      const runDir = await Deno.makeTempDir({ dir: tmpdir(), prefix: `${RUN_DIR_PREFIX}${tag}-` });
      const qemu = fakeQemu(qemuName(tag));
      try {
        const owner = await deadOwner();
        const rec: RunRecord = {
          tag,
          ownerPid: owner.pid,
          ownerStart: owner.start,
          qemuPid: qemu.pid,
          qemuStart: processStart(qemu.pid)!,
          runDir,
          startedAt: new Date().toISOString(),
        };
        await writeRecord(recordDir, rec);
        const r = await reapStaleVms(recordDir);
        deepEqual(r, { reaped: [tag], killed: [qemu.pid] });
        equal((await qemu.status).signal, "SIGKILL");
        await rejects(Deno.stat(runDir));
        deepEqual(await Array.fromAsync(Deno.readDir(recordDir)), []);
      } finally {
        try {
          qemu.kill("SIGKILL");
        } catch { /* already gone */ }
        await qemu.status;
        await qemu.stdin.close().catch(() => {});
        await Deno.remove(runDir, { recursive: true }).catch(() => {});
      }
    });
  },
);

processTest(
  "reapStaleVms() never kills a process whose name, PID start or owner does not match",
  async () => {
    await withTempDir(async (recordDir) => {
      const owner = await deadOwner();
      const other = fakeQemu(qemuName("someone-else"));
      const reused = fakeQemu(qemuName("t-reused"));
      const keepDir = await Deno.makeTempDir({ prefix: "not-a-vm-dir-" });
      try {
        const base = { runDir: keepDir, startedAt: new Date().toISOString() };
        // Dead owner, but the PID runs a process with another tag: record dropped, process kept.
        await writeRecord(recordDir, {
          ...base,
          tag: "t-other",
          ownerPid: owner.pid,
          ownerStart: owner.start,
          qemuPid: other.pid,
          qemuStart: processStart(other.pid)!,
        });
        // Dead owner, right tag, but another start time (a reused PID): kept.
        await writeRecord(recordDir, {
          ...base,
          tag: "t-reused",
          ownerPid: owner.pid,
          ownerStart: owner.start,
          qemuPid: reused.pid,
          qemuStart: processStart(reused.pid)! - 1,
        });
        // A live owner (this process): its record is left alone.
        await writeRecord(recordDir, {
          ...base,
          tag: "t-live",
          ownerPid: Deno.pid,
          ownerStart: processStart(Deno.pid)!,
          qemuPid: other.pid,
          qemuStart: processStart(other.pid)!,
        });
        const r = await reapStaleVms(recordDir);
        deepEqual(r.killed, []);
        deepEqual(r.reaped.sort(), ["t-other", "t-reused"]);
        deepEqual(
          (await Array.fromAsync(Deno.readDir(recordDir))).map((e) => e.name),
          ["t-live.json"],
        );
        assert(processStart(other.pid) !== undefined, "the other process still runs");
        assert(processStart(reused.pid) !== undefined, "the reused-PID process still runs");
        assert(
          (await Deno.stat(keepDir)).isDirectory,
          `a directory not named ${RUN_DIR_PREFIX}… is kept`,
        );
      } finally {
        for (const c of [other, reused]) {
          await c.stdin.close().catch(() => {});
          await c.status;
        }
        await Deno.remove(keepDir, { recursive: true }).catch(() => {});
      }
    });
  },
);

Deno.test("bootAndRun() refuses an empty command, a cwd under /run and a relative share mount", async () => {
  const kernel = { release: "x", vmlinuz: "/nonexistent", modulesDir: "/nonexistent" };
  await rejects(
    bootAndRun({ kernel, command: [] }),
    /Cannot run a command in the guest: the command is empty/,
  );
  await rejects(
    bootAndRun({ kernel, command: ["true"], cwd: "/run/x" }),
    /Cannot run a command in the guest in "\/run\/x": the guest mounts its own \/run/,
  );
  await rejects(
    bootAndRun({ kernel, command: ["true"], shareDir: "/tmp", shareMount: "results" }),
    /Cannot mount the share directory at "results": give an absolute path/,
  );
});

Deno.test("bootAndRun() removes its directory and record when it fails before QEMU starts", async () => {
  await withTempDir(async (recordDir) => {
    const before = (await Array.fromAsync(Deno.readDir(tmpdir()))).map((e) => e.name).filter((n) =>
      n.startsWith(`${RUN_DIR_PREFIX}${Deno.pid}-`)
    );
    await rejects(
      bootAndRun({
        kernel: { release: "x", vmlinuz: "/nonexistent", modulesDir: "/nonexistent/m" },
        command: ["true"],
        recordDir,
        logDir: join(recordDir, "logs"),
        accel: "tcg",
      }),
      /modules\.dep|No such file/,
    );
    const after = (await Array.fromAsync(Deno.readDir(tmpdir()))).map((e) => e.name).filter((n) =>
      n.startsWith(`${RUN_DIR_PREFIX}${Deno.pid}-`)
    );
    deepEqual(after, before);
    deepEqual(
      (await Array.fromAsync(Deno.readDir(recordDir))).filter((e) => e.name.endsWith(".json")),
      [],
    );
    equal(basename(recordDir).startsWith("bl-kernel-test-"), true);
  });
});
