/**
 * Test helpers: root gating, leftover detection, CLI runs.
 * @module
 */
import { fileURLToPath } from "node:url";
import { hasPrivileges } from "../lab/topology/preflight.ts";
import { libc } from "../lab/topology/setns.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../", import.meta.url));

const REQUIRE = Deno.env.get("BACKLOG_LAB_REQUIRE_ROOT") === "1";
const PRIVILEGED = Deno.build.os === "linux" && hasPrivileges();
let warned = false;
// The lab opens libc once per process (its sampler reads sockets over netlink through it); open
// it here, so that the test sanitizers do not count that as a resource a test leaked.
if (PRIVILEGED) libc();

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
 * PIDs of processes the lab starts (its programs, tcpdump captures and
 * namespace holders) that are alive now. With `prefix`, processes inside
 * another live lab's namespaces (a concurrent run) are left out; a process
 * of this run is counted even once its namespace is gone.
 */
export function labProcesses(prefix?: string): number[] {
  const others = new Set<number>();
  if (prefix !== undefined) {
    try {
      for (const e of Deno.readDirSync("/run/netns")) {
        if (e.name.startsWith("bl-") && !e.name.startsWith(prefix)) {
          try {
            others.add(Deno.statSync(`/run/netns/${e.name}`).ino ?? -1);
          } catch { /* removed meanwhile */ }
        }
      }
    } catch { /* no namespaces */ }
  }
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      const isProgram = cmd.some((a) =>
        /lab\/act\/programs\/(listen_server|client_group)\.ts$/.test(a)
      );
      const isHolder = cmd[0] === "sleep" && cmd[1] === "3600";
      const isCapture = /tcpdump$/.test(cmd[0] ?? "") && cmd.some((a) => a.includes("/bl-"));
      if (!isProgram && !isHolder && !isCapture) continue;
      if (others.size && others.has(Deno.statSync(`/proc/${e.name}/ns/net`).ino ?? -2)) continue;
      pids.push(Number(e.name));
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

/** Starts the CLI as a child process. */
export function spawnCli(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
}

/** Runs the CLI to completion. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await spawnCli(args, env).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** Polls `pred` every 20 ms until it is true; throws after `timeoutMs` naming `what`. */
export async function waitFor(
  what: string,
  pred: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await pred())) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Polls `read` every 20 ms until `done` holds and returns that value; after
 * `timeoutMs` throws, naming `what` and the last value read.
 */
export async function until<T>(
  what: string,
  read: () => Promise<T> | T,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (performance.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}: last value ${JSON.stringify(value)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
