/**
 * Measures the lab on other kernels, one guest at a time: for each kernel
 * spec, boots it and runs one `deno task lab …` command inside, writing the
 * lab's JSON and the VM's facts into `<out>/<name>/`.
 *
 *   deno run -A tools/kernel_measure.ts --out /work/kernel-results \
 *     --lab-args="--filter somaxconn-clamps --json" --file somaxconn.json \
 *     5.10-main=5.10@bullseye 5.10-security=5.10 6.1 6.12 sid
 *
 * With `--per-experiment`, the guest runs `deno task lab <lab-args> --filter
 * '^<id>$'` once per experiment instead, into `<out>/<name>/per-experiment/`
 * (for kernels where one experiment's definition stops the whole run).
 *
 * Runs as root. Nothing here is part of the library; part B replaces it
 * with `deno task lab --kernel SPEC`.
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fetchKernel, resolveKernel } from "../lab/kernel/mod.ts";
import { bootAndRun } from "../lab/kernel/vm.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    out: { type: "string", default: "/work/kernel-results" },
    "lab-args": { type: "string", default: "--filter somaxconn-clamps --json" },
    file: { type: "string", default: "somaxconn.json" },
    "timeout-min": { type: "string", default: "25" },
    memory: { type: "string", default: "4096" },
    "per-experiment": { type: "boolean", default: false },
  },
});
const project = fileURLToPath(new URL("../", import.meta.url));
const ac = new AbortController();
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  Deno.addSignalListener(sig, () => ac.abort());
}
for (const item of positionals) {
  const [name, spec] = item.includes("=") ? item.split("=", 2) as [string, string] : [item, item];
  const dir = join(values.out, name);
  await Deno.mkdir(dir, { recursive: true });
  const t0 = performance.now();
  const kernel = await fetchKernel(await resolveKernel(spec));
  const fetchMs = Math.round(performance.now() - t0);
  const base = values.file.replace(/\.json$/, "");
  const labArgs = values["lab-args"];
  let cmd = `deno task lab ${labArgs} > /results/${values.file} 2> /results/${base}.stderr`;
  if (values["per-experiment"]) {
    const list = await new Deno.Command("deno", {
      args: ["task", "-q", "lab", "--list"],
      cwd: project,
      stdout: "piped",
      stderr: "null",
    }).output();
    const ids = new TextDecoder().decode(list.stdout).split("\n")
      .map((l) => /^(\S+)\s+\(experiments\//.exec(l)?.[1]).filter((id) => id !== undefined);
    if (ids.length === 0) {
      throw new Error("Cannot list the experiments: `deno task lab --list` named none");
    }
    await Deno.mkdir(join(dir, "per-experiment"), { recursive: true });
    const out = "/results/per-experiment";
    cmd = ids.map((id) =>
      `deno task lab ${labArgs} --filter '^${id}$' > ${out}/${id}.json 2> ${out}/${id}.stderr; echo "${id} $?" >> ${out}/exit-codes.txt`
    ).join("\n");
  }
  console.error(`[${name}] ${kernel.release}: ${cmd}`);
  try {
    const r = await bootAndRun({
      kernel,
      command: ["sh", "-c", cmd],
      cwd: project,
      env: { NO_COLOR: "1" },
      shareDir: dir,
      memoryMiB: Number(values.memory),
      timeoutMs: Number(values["timeout-min"]) * 60_000,
      signal: ac.signal,
    });
    const facts = {
      name,
      spec,
      release: r.guest.release,
      ref: kernel.ref,
      fetchMs,
      accel: r.accel,
      bootMs: r.bootMs,
      runMs: r.runMs,
      attempts: r.attempts,
      exitCode: r.exitCode,
      guest: r.guest,
      memoryMiB: r.memoryMiB,
      cpus: r.cpus,
      kernelCmdline: r.kernelCmdline,
      modules: r.modules,
      consoleLog: r.consoleLog,
      command: cmd,
    };
    await Deno.writeTextFile(join(dir, `${base}.vm.json`), JSON.stringify(facts, null, 2) + "\n");
    console.error(
      `[${name}] exit ${r.exitCode}, ${r.accel}, boot ${r.bootMs} ms, run ${r.runMs} ms, attempts ${r.attempts}`,
    );
  } catch (err) {
    await Deno.writeTextFile(join(dir, `${base}.error.txt`), String(err) + "\n");
    console.error(`[${name}] ${err}`);
  }
  if (ac.signal.aborted) Deno.exit(130);
}
