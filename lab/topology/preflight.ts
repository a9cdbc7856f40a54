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
  /** The same sysctls with their values in a fresh namespace (`""` for one that cannot be read). */
  namespaceSysctlValues: Readonly<Record<string, string>>;
}

/** The probe namespace, as {@linkcode PreflightOptions.inProbe} sees it. */
export interface ProbeNamespace {
  /** Its name (`<prefix>-probe`). */
  readonly name: string;
  /** `/proc/<holder pid>/net`: its view of the network tables. */
  readonly procNet: string;
  /** Writes sysctls inside it (never the host's) and reads them back. */
  sysctls(values: Record<string, string>): Promise<Record<string, string>>;
}

/** Options of {@linkcode preflight}. */
export interface PreflightOptions {
  /** Optional tools the run needs (installed when missing, where possible). */
  tools?: readonly ToolNeed[];
  /** Where preflight says what it installs. */
  log?: (line: string) => void;
  /**
   * Called with the probe namespace once its sysctls were read, before it is
   * deleted: for probes of the kernel's behaviour (which may change it).
   */
  inProbe?: (ns: ProbeNamespace) => Promise<void>;
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
  options: PreflightOptions = {},
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
  if (options.tools?.length) {
    await ensureTools(options.tools, options.log ? { log: options.log } : {});
  }
  const reaped = await reapStaleNamespaces();
  const kernel = Deno.osRelease();
  let namespaceSysctlValues: Record<string, string>;
  let probe: Netns;
  try {
    probe = await Netns.create(`${prefix}-probe`);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new PreflightError([
      `Cannot create a network namespace (${detail}): check that the kernel has CONFIG_NET_NS and that /run/netns is writable`,
    ]);
  }
  {
    await using _ = probe;
    namespaceSysctlValues = await probe.readSysctls();
    await options.inProbe?.(probe);
  }
  const namespaceSysctls = new Set(Object.keys(namespaceSysctlValues));
  const uname = await run(["uname", "-r"], { allowFailure: true });
  return {
    kernel: uname.stdout.trim() || kernel,
    reaped,
    namespaceSysctls,
    namespaceSysctlValues,
  };
}
