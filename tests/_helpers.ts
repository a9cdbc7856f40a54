/**
 * Test helpers: root gating, leftover detection, CLI runs.
 * @module
 */
import { fileURLToPath } from "node:url";
import { hasPrivileges } from "../lab/topology/preflight.ts";
import { libc } from "../lab/topology/setns.ts";
import { MARKER_ENV } from "../lab/topology/netns.ts";
import { RunRecord } from "../lab/base/run_record.ts";
import { readLines } from "../lab/base/lines.ts";

export { until } from "../lab/base/wait.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../", import.meta.url));

const REQUIRE = Deno.env.get("BACKLOG_LAB_REQUIRE_ROOT") === "1";
const PRIVILEGED = Deno.build.os === "linux" && hasPrivileges();
let warned = false;
// The lab opens libc once per process (its sampler reads sockets over netlink through it); open
// it here, so that the test sanitizers do not count that as a resource a test leaked.
if (PRIVILEGED) libc();
// Namespaces made outside a Lab go into the process's run record, whose lock file stays open
// for the process's life: open it here too, for the same reason.
if (PRIVILEGED) await RunRecord.ofProcess();

/**
 * A test that needs root (namespaces). Without root it is skipped loudly;
 * with BACKLOG_LAB_REQUIRE_ROOT=1 (CI) it fails instead, so a green CI
 * always means the kernel was exercised. Resource and op sanitizers are on.
 */
export function rootTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  if (!PRIVILEGED && REQUIRE) {
    Deno.test(name, () => {
      throw new Error(
        "This test needs root, and BACKLOG_LAB_REQUIRE_ROOT=1 forbids skipping it: run the tests as root",
      );
    });
    return;
  }
  if (!PRIVILEGED && !warned) {
    warned = true;
    console.warn(
      "\n*** SKIPPING the namespace tests: they need root (run `sudo deno task test`). ***\n",
    );
  }
  Deno.test({ name, ignore: !PRIVILEGED, sanitizeOps: true, sanitizeResources: true, fn });
}

/** Names of lab namespaces that start with `prefix`. */
export async function namespacesWith(prefix: string): Promise<string[]> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "list"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0] ?? "").filter((
    n,
  ) => n.startsWith(prefix));
}

/**
 * PIDs of the live processes the lab started (its programs, tcpdump captures
 * and namespace holders) in namespaces whose name starts with `prefix`: each
 * carries its namespace's name in its environment (`BACKLOG_LAB_NETNS`), so
 * a process of another lab on the machine is never counted, and one of this
 * run is, even once its namespace is gone.
 */
export function labProcesses(prefix: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const env = Deno.readTextFileSync(`/proc/${e.name}/environ`).split("\0");
      const ns = env.find((v) => v.startsWith(`${MARKER_ENV}=`))?.slice(MARKER_ENV.length + 1);
      if (ns !== undefined && ns.startsWith(prefix)) pids.push(Number(e.name));
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

/** The host namespace's values of the sysctls the lab sets in its namespaces. */
export function hostSysctls(): Record<string, string> {
  const keys = [
    "net/core/somaxconn",
    "net/ipv4/tcp_max_syn_backlog",
    "net/ipv4/tcp_syncookies",
    "net/ipv4/tcp_abort_on_overflow",
    "net/ipv4/tcp_synack_retries",
    "net/ipv4/tcp_syn_retries",
  ];
  return Object.fromEntries(keys.map((k) => [k, Deno.readTextFileSync(`/proc/sys/${k}`).trim()]));
}

/** Host-namespace veth links (the lab never creates any there). */
export async function hostVeths(): Promise<string[]> {
  const out = await new Deno.Command("ip", {
    args: ["-o", "link", "show", "type", "veth"],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
}

/**
 * This deno's cache directory, passed on to the CLIs the tests start: a test
 * that gives one its own XDG_CACHE_HOME (for the lab's times cache) would
 * otherwise move deno's cache too, and compile everything again.
 */
const DENO_DIR = Deno.env.get("DENO_DIR") ||
  `${Deno.env.get("XDG_CACHE_HOME") || `${Deno.env.get("HOME") ?? "/root"}/.cache`}/deno`;

/** Starts the CLI as a child process. */
export function spawnCli(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_DIR, ...env },
  }).spawn();
}

/** The prefix of every namespace (and so of every process) of the CLI process `pid`. */
export function cliPrefix(pid: number): string {
  return `bl-${pid}-`;
}

/** Runs the CLI to completion; `prefix` is that of its namespaces and processes. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string; prefix: string }> {
  const child = spawnCli(args, env);
  const out = await child.output();
  const d = new TextDecoder();
  return {
    code: out.code,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
    prefix: cliPrefix(child.pid),
  };
}

/**
 * Runs the shell `script` as root in a mount namespace of its own, where
 * `/run/netns` and `/run/backlog-lab` are empty tmpfs mounts: the
 * namespaces and run records made there are seen by nothing else on the
 * machine (other developers' labs included), and it sees none of theirs. For
 * tests that must create what no lab may touch: foreign-looking namespaces,
 * junk entries. `$DENO` is this deno and `$ROOT` the repository.
 */
export async function isolated(
  script: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const setup = [
    "set -eu",
    "mkdir -p /run/netns /run/backlog-lab",
    "mount -t tmpfs bl-test /run/netns",
    "mount --make-shared /run/netns",
    "mount -t tmpfs bl-test /run/backlog-lab",
    'cd "$ROOT"',
  ].join("\n");
  const out = await new Deno.Command("unshare", {
    args: ["--mount", "--propagation", "private", "sh", "-c", `${setup}\n${script}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { DENO: Deno.execPath(), ROOT, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env },
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/**
 * Starts `tests/_dead_run.ts` (a run to be SIGKILLed) with its records under
 * `root` and waits until it made what `asks` says; returns it, the lines it
 * printed and its run id.
 */
export async function startDeadRun(
  root: string,
  asks: string[],
): Promise<{ child: Deno.ChildProcess; lines: string[]; id: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tests/_dead_run.ts`, root, ...asks],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  const lines: string[] = [];
  for await (const line of readLines(child.stdout)) {
    lines.push(line);
    if (line.startsWith("ready ")) break;
  }
  return { child, lines, id: lines.at(-1)?.slice("ready ".length) ?? "" };
}
