/**
 * A process that owns one VM, for the SIGKILL test: boots the kernel spec
 * in `BL_TEST_KERNEL` (from the cache) with the run records in
 * `BL_TEST_RECORD_DIR`, runs `sleep 600` inside, and prints `READY` once the
 * guest's command started. The test then kills it with SIGKILL.
 * @module
 */
import { fetchKernel, resolveKernel } from "../../lab/kernel/mod.ts";
import { bootAndRun } from "../../lab/kernel/vm.ts";

const kernel = await fetchKernel(await resolveKernel(Deno.env.get("BL_TEST_KERNEL")!));
await bootAndRun({
  kernel,
  command: ["sleep", "600"],
  recordDir: Deno.env.get("BL_TEST_RECORD_DIR")!,
  timeoutMs: 700_000,
  onConsoleLine: (line) => {
    if (line.includes("backlog-lab-init: READY")) console.log("READY");
  },
});
