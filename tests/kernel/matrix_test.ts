/**
 * Tests of `lab/kernel/matrix.ts` and `lab/kernel/command.ts` without a real
 * guest: a stand-in QEMU plays the guest's side (it writes the lab's report
 * into the share directory and progress lines to stderr), so the runner's
 * paths (the guest's command line, results read back, progress, a kernel
 * that cannot run, cleanup) run in milliseconds, without root.
 * @module
 */
import { deepStrictEqual as deepEqual, equal, match, rejects, throws } from "node:assert/strict";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { CLAIMS } from "../../lab/describe/catalogue.ts";
import { guestArgs, parseKernelSpecs, slug } from "../../lab/kernel/command.ts";
import {
  defaultParallelKernels,
  kernelLabel,
  KernelMatrix,
  type KernelMatrixEvent,
} from "../../lab/kernel/matrix.ts";
import type { LabReport } from "../../lab/results.ts";
import type { LabRun } from "../../lab/run/lab.ts";
import { RunRecord } from "../../lab/base/run_record.ts";
import { fakeModulesDir, qemusOf, runDirsIn, withTempDir } from "./_helpers.ts";

const RELEASE = "7.2.13+deb14-amd64";

/** A valid one-experiment results document, as the guest's lab would write it. */
function guestReport(): LabReport {
  return {
    version: 1,
    kernel: RELEASE,
    kernelFacts: {
      release: RELEASE,
      sysctls: { "net.core.somaxconn": "4096" },
      behaviour: { synQueueExtra: 1 },
      machine: "tcg",
      timeScale: 20,
      probed: true,
    },
    machine: {
      hostname: "backlog-lab-guest",
      arch: "x86_64",
      cpu: "QEMU",
      cores: 2,
      memoryMiB: 3900,
      os: "Debian",
      deno: "2.9.6",
    },
    command: "deno task lab --filter x",
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 10,
    passed: true,
    experiments: [{
      id: "x",
      title: "x",
      hypothesis: "h",
      passed: true,
      mode: "default",
      durationMs: 5,
      runs: [],
      claims: { "A2.1": { verdict: "reproduced", evidence: "on the guest" } },
    }],
    ledger: CLAIMS.map((c) => ({
      claim: c.id,
      article: c.article,
      statement: c.statement,
      verdict: c.id === "A2.1" ? "reproduced" : "undecided",
      evidence: "e",
      experiments: c.id === "A2.1" ? ["x"] : [],
    })),
  };
}

/**
 * A stand-in QEMU: finds the control and share directories in its argv, says
 * READY, writes two progress lines to the command's stderr, the report into
 * the share (unless `mode` is "no-report"), and exit code 0.
 */
async function standIn(dir: string, mode: "ok" | "no-report"): Promise<string> {
  const report = join(dir, "guest-results.json");
  await Deno.writeTextFile(report, JSON.stringify(guestReport()));
  const path = join(dir, `qemu-${mode}`);
  await Deno.writeTextFile(
    path,
    `#!/bin/sh
ctl=; share=
for a in "$@"; do
  case "$a" in
    local,id=blctl,path=*) ctl=\${a#local,id=blctl,path=}; ctl=\${ctl%%,*};;
    local,id=blshare,path=*) share=\${a#local,id=blshare,path=}; share=\${share%%,*};;
  esac
done
cp "$ctl/run.sh" "$0.run.sh"
echo '{"release":"${RELEASE}","memTotalKiB":1000,"cpus":2,"tcpMaxSynBacklog":2048,"somaxconn":4096}' > "$ctl/guest.json"
echo "backlog-lab-init: READY"
printf 'run 1/1 passed\\nexperiment x done\\n' > "$ctl/stderr"
if [ ${JSON.stringify(mode)} = ok ]; then mkdir -p "$share/report"; cp ${
      JSON.stringify(report)
    } "$share/report/results.json"; fi
echo 0 > "$ctl/exit-code"
`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

/** A local kernel directory (`vmlinuz`, `lib/modules/<release>` with modules.order). */
async function localKernel(dir: string): Promise<string> {
  const k = join(dir, "kernel");
  const modules = await fakeModulesDir(k, RELEASE);
  await Deno.writeTextFile(join(modules, "modules.order"), "");
  await Deno.writeTextFile(join(k, "vmlinuz"), "not a kernel");
  return k;
}

function shares(): string[] {
  return [...Deno.readDirSync(tmpdir())].map((e) => e.name).filter((n) =>
    n.startsWith("backlog-lab-kernel-")
  );
}

Deno.test({
  name:
    "KernelMatrix.run() boots each kernel, runs the lab in it and reads its report back (stand-in QEMU)",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await withTempDir(async (dir) => {
      const kernelDir = await localKernel(dir);
      const busybox = join(dir, "busybox");
      await Deno.writeTextFile(busybox, "stand-in");
      const qemu = await standIn(dir, "ok");
      const events: KernelMatrixEvent[] = [];
      const before = shares();
      let hostRuns = 0;
      await using record = await RunRecord.create({ root: join(dir, "runs") });
      {
        await using matrix = new KernelMatrix({
          kernels: [kernelDir, "host"],
          guestArgs: ["--filter", "x"],
          projectDir: dir,
          runHost: () => {
            hostRuns++;
            return Promise.resolve({ report: guestReport(), repeats: [], captures: [] } as LabRun);
          },
          onEvent: (e) => events.push(e),
          vm: {
            accel: "tcg",
            qemu,
            busybox,
            record,
            logDir: join(dir, "logs"),
          },
        });
        const [guest, host] = await matrix.run();
        equal(hostRuns, 1);
        equal(guest!.run.label, "7.2.13+deb14", "a local kernel is labelled by its release");
        equal(guest!.run.target, "vm");
        equal(guest!.run.vm?.accel, "tcg");
        equal(guest!.run.vm?.exitCode, 0);
        equal(guest!.run.report?.kernel, RELEASE);
        equal(guest!.run.error, undefined);
        equal(host!.run.label, `host ${RELEASE.replace(/-.*$/, "")}`);
        equal(host!.run.target, "host");
        // The guest ran the lab's main.ts with the selection, a report without charts, one job.
        const runSh = await Deno.readTextFile(`${qemu}.run.sh`);
        match(
          runSh,
          /'run' '-A' '[^']*\/main\.ts' '--filter' 'x' '--report' '\/results\/report' '--no-charts' '--jobs' '1'/,
        );
        match(runSh, /^export BACKLOG_LAB_MACHINE='tcg'$/m);
        match(runSh, /^export BACKLOG_LAB_SPEED_REFERENCE='[\d.]+'$/m);
        deepEqual(
          events.filter((e) => e.kind === "guest-line").map((e) => (e as { line: string }).line),
          ["run 1/1 passed", "experiment x done"],
        );
        deepEqual(events.map((e) => e.kind).filter((k) => k !== "guest-line"), [
          "kernel-start",
          "resolved",
          "booting",
          "kernel-end",
          "kernel-start",
          "kernel-end",
        ]);
      }
      deepEqual(shares(), before, "the share directories are removed");
      deepEqual(qemusOf(Deno.pid), [], "no stand-in QEMU left");
      deepEqual(runDirsIn(record.tempDir), [], "no VM directory left");
    });
  },
});

Deno.test({
  name: "KernelMatrix.run() gives a kernel that wrote no results an error and runs the next",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await withTempDir(async (dir) => {
      const kernelDir = await localKernel(dir);
      const busybox = join(dir, "busybox");
      await Deno.writeTextFile(busybox, "stand-in");
      const qemu = await standIn(dir, "no-report");
      await using record = await RunRecord.create({ root: join(dir, "runs") });
      await using matrix = new KernelMatrix({
        kernels: [kernelDir, join(dir, "no-such-kernel.deb")],
        guestArgs: [],
        projectDir: dir,
        runHost: () => Promise.reject(new Error("not asked")),
        vm: { accel: "tcg", qemu, busybox, record, logDir: join(dir, "l") },
      });
      const [noReport, missing] = await matrix.run();
      match(noReport!.run.error!, /^The lab in the guest exited with 0 and wrote no results/);
      match(noReport!.run.error!, /its stderr ended:\nrun 1\/1 passed\nexperiment x done/);
      equal(noReport!.run.report, undefined);
      match(missing!.run.error!, /no-such-kernel\.deb.*no such file or directory/);
      equal(missing!.run.vm, undefined);
    });
  },
});

Deno.test({
  name: "KernelMatrix.run() stops at an abort and removes everything",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await withTempDir(async (dir) => {
      const kernelDir = await localKernel(dir);
      const ac = new AbortController();
      ac.abort(new Error("stop"));
      const before = shares();
      {
        await using matrix = new KernelMatrix({
          kernels: [kernelDir],
          guestArgs: [],
          projectDir: dir,
          runHost: () => Promise.reject(new Error("not asked")),
          signal: ac.signal,
        });
        await rejects(matrix.run(), /stop/);
      }
      deepEqual(shares(), before);
    });
  },
});

Deno.test("parseKernelSpecs() takes repeated and comma-separated specs, host at most once", () => {
  deepEqual(parseKernelSpecs(["5.10,6.1", "host"]), ["5.10", "6.1", "host"]);
  deepEqual(parseKernelSpecs([]), []);
  throws(() => parseKernelSpecs(["5.10,,6.1"]), /an empty kernel spec/);
  throws(() => parseKernelSpecs(["host", "host"]), /"host" is given more than once/);
});

Deno.test("guestArgs() passes the selection and run flags, never the output ones", () => {
  const flags = {
    json: true,
    verbose: true,
    report: "out",
    filter: "syn",
    faithful: true,
    subnet: "10.9.0.0/16",
    jobs: 8,
    jobsGiven: false,
    repeat: 3,
    args: [],
    paths: ["/abs/experiments/x.ts"],
    offline: false,
    noCharts: false,
  };
  deepEqual(guestArgs(flags), [
    "--filter",
    "syn",
    "--faithful",
    "--repeat",
    "3",
    "--subnet",
    "10.9.0.0/16",
    "/abs/experiments/x.ts",
  ]);
  deepEqual(guestArgs({ ...flags, jobsGiven: true, repeat: 1, faithful: false }).slice(-3), [
    "--jobs",
    "8",
    "/abs/experiments/x.ts",
  ]);
});

Deno.test("kernelLabel() and slug() name kernels uniquely and safely", () => {
  equal(kernelLabel("5.10", undefined, []), "5.10");
  equal(kernelLabel("5.10", undefined, ["5.10"]), "5.10 (2)");
  equal(slug("host 6.18.44"), "host-6.18.44");
  equal(slug("7.2.13+deb14"), "7.2.13+deb14");
  equal(slug("///"), "kernel");
});

Deno.test({
  name:
    "KernelMatrix.run() runs VMs side by side when asked, reporting them in order with unique labels",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await withTempDir(async (dir) => {
      const kernelDir = await localKernel(dir);
      const busybox = join(dir, "busybox");
      await Deno.writeTextFile(busybox, "stand-in");
      const qemu = await standIn(dir, "ok");
      await using record = await RunRecord.create({ root: join(dir, "runs") });
      const order: string[] = [];
      await using matrix = new KernelMatrix({
        kernels: [kernelDir, kernelDir, kernelDir],
        guestArgs: [],
        projectDir: dir,
        parallel: 2,
        runHost: () => Promise.reject(new Error("not asked")),
        onKernel: (x) => {
          order.push(x.run.label);
          return Promise.resolve();
        },
        vm: { accel: "tcg", qemu, busybox, record, logDir: join(dir, "l") },
      });
      const outcomes = await matrix.run();
      deepEqual(outcomes.map((x) => x.run.label), [
        "7.2.13+deb14",
        "7.2.13+deb14 (2)",
        "7.2.13+deb14 (3)",
      ]);
      deepEqual(order, outcomes.map((x) => x.run.label));
      deepEqual(outcomes.map((x) => x.run.report?.kernel), [RELEASE, RELEASE, RELEASE]);
    });
  },
});

Deno.test("defaultParallelKernels() runs one VM per two cores, at least one", () => {
  deepEqual([1, 2, 3, 4, 8].map((c) => defaultParallelKernels(c)), [1, 1, 1, 2, 4]);
});
