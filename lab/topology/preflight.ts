/**
 * What the lab needs from the machine, checked before anything is built:
 * Linux, root (or CAP_NET_ADMIN with CAP_SYS_ADMIN for `ip netns`), the
 * tools it runs, and which `net.*` sysctls a fresh namespace has. Also
 * removes what a killed earlier run left behind.
 * @module
 */
import { hasCommand, run } from "../base/command.ts";
import { PreflightError } from "../base/errors.ts";
import { Netns, reapStaleNamespaces } from "./netns.ts";
import { ensureTools, type ToolNeed } from "./packages.ts";

/** What preflight found. */
export interface PreflightResult {
  /** `uname -r`. */
  kernel: string;
  /** Namespaces of dead runs that were removed. */
  reaped: string[];
  /** Every `net.*` sysctl a fresh namespace of this kernel has. */
  namespaceSysctls: ReadonlySet<string>;
}

const TOOLS: Record<string, string> = {
  ip: "apt-get install iproute2",
  ss: "apt-get install iproute2",
  sh: "apt-get install dash",
  sleep: "apt-get install coreutils",
  find: "apt-get install findutils",
};

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;

/**
 * Whether this process may create namespaces: it has CAP_NET_ADMIN and
 * CAP_SYS_ADMIN in effect (root normally has both; a root shell with a
 * reduced capability set may not).
 */
export function hasPrivileges(): boolean {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const hex = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? "0";
    const caps = BigInt(`0x${hex}`);
    return [CAP_NET_ADMIN, CAP_SYS_ADMIN].every((b) => (caps >> BigInt(b)) & 1n);
  } catch {
    return false;
  }
}

/**
 * Checks the machine; removes stale lab namespaces; lists a fresh namespace's sysctls.
 *
 * @throws {PreflightError} listing every problem with its fix.
 */
export async function preflight(
  prefix: string,
  options: {
    /** The optional tools to ensure, or a function that says which once the machine is checked. */
    tools?: readonly ToolNeed[] | (() => Promise<readonly ToolNeed[]>);
    log?: (line: string) => void;
  } = {},
): Promise<PreflightResult> {
  const problems: string[] = [];
  if (Deno.build.os !== "linux") {
    throw new PreflightError([
      `The lab needs Linux network namespaces; this is ${Deno.build.os}: run it on a Linux machine or VM`,
    ]);
  }
  if (!hasPrivileges()) {
    problems.push(
      `Not running as root (uid ${Deno.uid()}) with CAP_NET_ADMIN and CAP_SYS_ADMIN, which creating network namespaces needs: run it as root, e.g. \`sudo deno task lab\``,
    );
  }
  for (const [tool, fix] of Object.entries(TOOLS)) {
    if (!await hasCommand(tool)) {
      problems.push(`Missing the "${tool}" command: install it with \`${fix}\``);
    }
  }
  if (problems.length) throw new PreflightError(problems);
  const tools = typeof options.tools === "function" ? await options.tools() : options.tools;
  if (tools?.length) await ensureTools(tools, options.log ? { log: options.log } : {});
  const reaped = await reapStaleNamespaces();
  const kernel = Deno.osRelease();
  let namespaceSysctls: Set<string>;
  try {
    await using probe = await Netns.create(`${prefix}-probe`);
    namespaceSysctls = new Set(await probe.listSysctls());
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new PreflightError([
      `Cannot create a network namespace (${detail}): check that the kernel has CONFIG_NET_NS and that /run/netns is writable`,
    ]);
  }
  const uname = await run(["uname", "-r"], { allowFailure: true });
  return { kernel: uname.stdout.trim() || kernel, reaped, namespaceSysctls };
}
