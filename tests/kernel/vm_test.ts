import {
  deepStrictEqual as deepEqual,
  match,
  ok as assert,
  rejects,
  strictEqual as equal,
} from "node:assert/strict";
import { join } from "node:path";
import { kernelCmdline, qemuArgv, qemuName } from "../../lab/kernel/qemu.ts";
import { RunRecord } from "../../lab/base/run_record.ts";
import { reapDeadRuns } from "../../lab/topology/reap.ts";
import { bootAndRun, stopAllVms } from "../../lab/kernel/vm.ts";
import { VmError } from "../../lab/kernel/errors.ts";
import { fakeModulesDir, killOwnerOnceReady, qemusOf, runDirsIn, withTempDir } from "./_helpers.ts";

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

Deno.test("bootAndRun() removes its directory when it fails before QEMU starts", async () => {
  await withTempDir(async (dir) => {
    await using record = await RunRecord.create({ root: join(dir, "runs") });
    await rejects(
      bootAndRun({
        kernel: { release: "x", vmlinuz: "/nonexistent", modulesDir: "/nonexistent/m" },
        command: ["true"],
        record,
        logDir: join(dir, "logs"),
        accel: "tcg",
        qemu: "/nonexistent/qemu",
        busybox: "/nonexistent/busybox",
      }),
      /modules\.dep|No such file/,
    );
    deepEqual(runDirsIn(record.tempDir), []);
    deepEqual((await record.entries()).filter((e) => e.kind === "process"), []);
  });
});

/**
 * A stand-in for QEMU: a shell script that speaks the guest's side of the
 * protocol (console lines, files in the control directory) without
 * booting anything, so the runner's paths (retry, deadlines, missing exit
 * code) run in milliseconds. It records its argv, and `run.sh`/`vm.env`.
 * Hanging, it stays the shell that has `-name` in its argv (a reaper tells
 * it by that), sleeping in short steps.
 */
async function standIn(dir: string, mode: string): Promise<string> {
  const path = join(dir, `qemu-${mode}`);
  await Deno.writeTextFile(
    path,
    `#!/bin/sh
ctl=
for a in "$@"; do
  case "$a" in local,id=blctl,path=*) ctl=\${a#local,id=blctl,path=}; ctl=\${ctl%%,*};; esac
done
n=$(( $(cat "$0.runs" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$0.runs"
printf '%s\\n' "$@" > "$0.argv"
cp "$ctl/run.sh" "$0.run.sh"; cp "$ctl/vm.env" "$0.vm.env"
ready() {
  echo "Linux version 9.9.9-fake"
  echo '{"release":"9.9.9-fake","memTotalKiB":1000,"cpus":2,"tcpMaxSynBacklog":2048,"somaxconn":4096}' > "$ctl/guest.json"
  echo "backlog-lab-init: READY"
}
case ${JSON.stringify(mode)} in
  ok) ready; echo out > "$ctl/stdout"; echo err > "$ctl/stderr"; echo 5 > "$ctl/exit-code";;
  crash-once)
    if [ "$n" = 1 ]; then echo "[    1.0] Kernel panic - not syncing: Fatal exception"; exit 0; fi
    ready; echo 0 > "$ctl/exit-code";;
  crash) echo "Oops: 0000 [#1] SMP"; echo "Kernel panic - not syncing: Fatal exception";;
  failed) echo "backlog-lab-init: FAILED: cannot mount the host root (9p tag blroot)";;
  no-exit) ready;;
  hang-boot) while :; do sleep 0.2; done;;
  hang-run) ready; while :; do sleep 0.2; done;;
esac
`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

/** Runs bootAndRun with a stand-in QEMU; returns the result or the error, and what the stand-in saw. */
async function withStandIn(
  mode: string,
  extra: Partial<Parameters<typeof bootAndRun>[0]>,
  check: (
    outcome: Awaited<ReturnType<typeof bootAndRun>> | unknown,
    seen: { runs: number; argv: string[]; runSh: string; vmEnv: string; recorded: string[] },
  ) => void | Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    await using record = await RunRecord.create({ root: join(dir, "runs") });
    const busybox = join(dir, "busybox");
    await Deno.writeTextFile(busybox, "stand-in");
    const modulesDir = await fakeModulesDir(dir);
    const qemu = await standIn(dir, mode);
    const outcome = await bootAndRun({
      kernel: { release: "7.2.13+deb14-amd64", vmlinuz: join(dir, "vmlinuz"), modulesDir },
      command: ["echo", "it's a test", "$HOME"],
      cwd: dir,
      env: { NO_COLOR: "1" },
      shareDir: dir,
      accel: "tcg",
      qemu,
      busybox,
      record,
      logDir: join(dir, "logs"),
      ...extra,
    }).catch((e) => e);
    const read = (f: string) => Deno.readTextFile(`${qemu}.${f}`).catch(() => "");
    await check(outcome, {
      runs: Number(await read("runs")),
      argv: (await read("argv")).trimEnd().split("\n"),
      runSh: await read("run.sh"),
      vmEnv: await read("vm.env"),
      recorded: (await record.entries()).flatMap((e) => e.kind === "process" ? [e.token] : []),
    });
    equal(qemusOf(Deno.pid).length, 0, "no stand-in QEMU left running");
    deepEqual(runDirsIn(record.tempDir), [], "no VM directory left");
  });
}

processTest(
  "bootAndRun() returns the guest's exit code, output and facts (stand-in QEMU)",
  async () => {
    await withStandIn("ok", {}, async (r, seen) => {
      assert(!(r instanceof Error), String(r));
      const result = r as Awaited<ReturnType<typeof bootAndRun>>;
      equal(result.exitCode, 5);
      equal(result.stdout, "out\n");
      equal(result.stderr, "err\n");
      equal(result.guest.release, "9.9.9-fake");
      equal(result.accel, "tcg");
      equal(result.attempts, 1);
      assert(result.bootMs >= 0 && result.runMs >= 0);
      match(
        await Deno.readTextFile(result.consoleLog),
        /Linux version 9\.9\.9-fake\nbacklog-lab-init: READY\n/,
      );
      equal(await Deno.readTextFile(result.stdoutPath), "out\n");
      equal(seen.runs, 1);
      assert(seen.argv.includes("-nodefaults"));
      // The QEMU was written into the run record by its -name, for a reaper if this process dies.
      const name = seen.argv[seen.argv.indexOf("-name") + 1]!;
      deepEqual(seen.recorded, [name]);
      match(name, new RegExp(`^backlog-lab-vm-${Deno.pid}-`));
      match(seen.vmEnv, /^BL_SHARE='\/results'$/m);
      // The command runs with exec, its argv quoted for sh, in the given directory.
      match(seen.runSh, /^export NO_COLOR='1'$/m);
      match(seen.runSh, /^cd '\/.*' \|\| exit 125$/m);
      match(
        seen.runSh,
        /^exec 'echo' 'it'"'"'s a test' '\$HOME' <\/dev\/null >\/run\/backlog-lab-vm\/stdout 2>\/run\/backlog-lab-vm\/stderr$/m,
      );
    });
  },
);

processTest(
  "bootAndRun() retries once after a crash at boot, then gives up naming it",
  async () => {
    await withStandIn("crash-once", {}, (r, seen) => {
      assert(!(r instanceof Error), String(r));
      equal((r as Awaited<ReturnType<typeof bootAndRun>>).attempts, 2);
      equal(seen.runs, 2);
    });
    await withStandIn("crash", {}, (e, seen) => {
      assert(e instanceof VmError, String(e));
      equal(e.failure, "boot-crash");
      match(
        e.message,
        /^Cannot boot kernel "7\.2\.13\+deb14-amd64" \(tcg, 2 attempts\): the guest kernel crashed at boot \("Oops: 0000 \[#1\] SMP"\) \(console log: ".*\.console-2\.log"\)/,
      );
      match(e.message, /Kernel panic - not syncing/);
      equal(seen.runs, 2);
    });
  },
);

processTest("bootAndRun() reports init's failure, without retrying", async () => {
  await withStandIn("failed", {}, (e, seen) => {
    assert(e instanceof VmError, String(e));
    match(
      e.message,
      /\(tcg, 1 attempt\): backlog-lab-init: FAILED: cannot mount the host root \(9p tag blroot\)/,
    );
    equal(seen.runs, 1);
  });
});

processTest("bootAndRun() says when the guest wrote no exit code", async () => {
  await withStandIn("no-exit", {}, (e) => {
    assert(e instanceof VmError, String(e));
    equal(e.failure, "no-exit-code");
    match(
      e.message,
      /^Cannot get the command's exit code from the guest of kernel "7\.2\.13\+deb14-amd64": it wrote none/,
    );
  });
});

processTest(
  "bootAndRun() kills a guest past its run deadline, and one that does not boot in time",
  async () => {
    await withStandIn("hang-run", { timeoutMs: 300 }, (e, seen) => {
      assert(e instanceof VmError, String(e));
      equal(e.failure, "run-timeout");
      match(e.message, /it ran longer than 300 ms/);
      equal(seen.runs, 1, "a command that started is never run twice");
    });
    await withStandIn("hang-boot", { bootTimeoutMs: 300 }, (e, seen) => {
      assert(e instanceof VmError, String(e));
      equal(e.failure, "boot-timeout");
      equal(seen.runs, 2, "a boot that hangs is retried once");
    });
  },
);

processTest("bootAndRun() names a QEMU that cannot start, and the package to install", async () => {
  await withStandIn("ok", { qemu: "/nonexistent/qemu-system-x86_64" }, (e) => {
    assert(e instanceof VmError, String(e));
    equal(e.failure, "qemu");
    match(
      e.message,
      /^Cannot start QEMU: "\/nonexistent\/qemu-system-x86_64" is not installed: install it with `sudo apt-get install -y qemu-system-x86`/,
    );
  });
});

processTest("bootAndRun() stops the guest and rethrows when onConsoleLine throws", async () => {
  await withStandIn("hang-run", {
    onConsoleLine: (l) => {
      if (l.includes("READY")) throw new Error("the caller's own failure");
    },
  }, (e) => {
    assert(e instanceof Error && e.message === "the caller's own failure", String(e));
  });
});

processTest("bootAndRun() stops a running guest on abort and on stopAllVms()", async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  await withStandIn("hang-run", { signal: ac.signal }, (e) => {
    assert(e instanceof VmError, String(e));
    equal(e.failure, "aborted");
  });
  setTimeout(() => stopAllVms(), 300);
  await withStandIn("hang-run", {}, (e) => {
    assert(e instanceof VmError, String(e));
    equal(e.failure, "aborted");
  });
});

processTest(
  "a VM whose owner was killed is ended by the next run's reaping, its directory removed",
  async () => {
    await withTempDir(async (dir) => {
      const root = join(dir, "runs");
      const busybox = join(dir, "busybox");
      await Deno.writeTextFile(busybox, "stand-in");
      const modulesDir = await fakeModulesDir(dir);
      const qemu = await standIn(dir, "hang-run");
      // The owner: boots the stand-in (which then sleeps), says READY, and is killed with SIGKILL.
      const { ownerPid, qemus: standIns } = await killOwnerOnceReady({
        BL_TEST_ROOT: root,
        BL_TEST_QEMU: qemu,
        BL_TEST_BUSYBOX: busybox,
        BL_TEST_MODULES: modulesDir,
        BL_TEST_LOGS: join(dir, "logs"),
      }, 60_000);
      equal(standIns.length, 1, "the owner's stand-in QEMU runs");
      assert(qemusOf(ownerPid).length === 1, "the stand-in outlived its killed owner");
      const reaped = await reapDeadRuns(root);
      deepEqual(reaped.processes, standIns);
      equal(reaped.runs.length, 1);
      await waitGone(standIns[0]!);
      deepEqual(qemusOf(ownerPid), []);
      deepEqual([...Deno.readDirSync(root)].filter((e) => !e.name.startsWith(".")), []);
    });
  },
);

/** Waits (bounded) until process `pid` is gone. */
async function waitGone(pid: number): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    try {
      Deno.readTextFileSync(`/proc/${pid}/stat`);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`Process ${pid} still exists 10 s after it was killed`);
}
