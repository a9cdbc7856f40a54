import {
  deepStrictEqual as deepEqual,
  match,
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
import { bootAndRun, stopAllVms } from "../../lab/kernel/vm.ts";
import { VmError } from "../../lab/kernel/errors.ts";
import { fakeModulesDir, qemusOf, recordsIn, runDirsOf, withTempDir } from "./_helpers.ts";

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
        qemu: "/nonexistent/qemu",
        busybox: "/nonexistent/busybox",
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

/**
 * A stand-in for QEMU: a shell script that speaks the guest's side of the
 * protocol (console lines, files in the control directory) without
 * booting anything, so the runner's paths (retry, deadlines, missing exit
 * code) run in milliseconds. It records its argv, and `run.sh`/`vm.env`.
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
  hang-boot) exec sleep 600;;
  hang-run) ready; exec sleep 600;;
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
    seen: { runs: number; argv: string[]; runSh: string; vmEnv: string },
  ) => void | Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const recordDir = join(dir, "records");
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
      recordDir,
      logDir: join(dir, "logs"),
      ...extra,
    }).catch((e) => e);
    const read = (f: string) => Deno.readTextFile(`${qemu}.${f}`).catch(() => "");
    await check(outcome, {
      runs: Number(await read("runs")),
      argv: (await read("argv")).trimEnd().split("\n"),
      runSh: await read("run.sh"),
      vmEnv: await read("vm.env"),
    });
    equal(qemusOf(Deno.pid).length, 0, "no stand-in QEMU left running");
    deepEqual(runDirsOf(Deno.pid), [], "no VM directory left");
    deepEqual(await recordsIn(recordDir), [], "no run record left");
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
