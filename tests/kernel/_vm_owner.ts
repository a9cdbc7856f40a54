/**
 * A process that owns one VM, for the tests of a killed owner: boots a
 * kernel in a guest that runs `sleep 600`, writing it into a run record under
 * `BL_TEST_ROOT`, and prints `READY` once the guest's command started. The
 * test then kills it with SIGKILL. The kernel is `BL_TEST_KERNEL` (a spec,
 * from the cache) or, with `BL_TEST_QEMU`, a stand-in QEMU with a fake
 * modules directory (`BL_TEST_MODULES`) and busybox (`BL_TEST_BUSYBOX`).
 * @module
 */
import { join } from "node:path";
import { RunRecord } from "../../lab/base/run_record.ts";
import { fetchKernel, resolveKernel } from "../../lab/kernel/mod.ts";
import { bootAndRun } from "../../lab/kernel/vm.ts";

const env = (name: string) => Deno.env.get(name);
const record = await RunRecord.create({ root: env("BL_TEST_ROOT")! });
const standIn = env("BL_TEST_QEMU");
const kernel = standIn
  ? {
    release: "7.2.13+deb14-amd64",
    vmlinuz: join(env("BL_TEST_MODULES")!, "vmlinuz"),
    modulesDir: env("BL_TEST_MODULES")!,
  }
  : await fetchKernel(await resolveKernel(env("BL_TEST_KERNEL")!));
await bootAndRun({
  kernel,
  command: ["sleep", "600"],
  record,
  timeoutMs: 700_000,
  ...(standIn ? { qemu: standIn, busybox: env("BL_TEST_BUSYBOX")!, accel: "tcg" as const } : {}),
  ...(env("BL_TEST_LOGS") ? { logDir: env("BL_TEST_LOGS")! } : {}),
  onConsoleLine: (line) => {
    if (line.includes("backlog-lab-init: READY")) console.log("READY");
  },
});
