/**
 * What the lab needs from the machine, checked before anything is built:
 * Linux, root (or CAP_NET_ADMIN with CAP_SYS_ADMIN for `ip netns`), the
 * tools it runs, and which `net.*` sysctls a fresh namespace has. Also
 * removes what a killed earlier run left behind.
 * @module
 */
import { hasCommand, run } from "../base/command.ts";
import { PreflightError } from "../base/errors.ts";
import type { RunRecord } from "../base/run_record.ts";
import { Netns } from "./netns.ts";
import { ensureTools, type ToolNeed } from "./packages.ts";
import { reapDeadRuns, type ReapResult } from "./reap.ts";

/** What preflight found. */
export interface PreflightResult {
  /** `uname -r`. */
  kernel: string;
  /** Namespaces of dead runs that were removed. */
  reaped: string[];
  /** Everything reaping did and left alone (see {@linkcode reapDeadRuns}). */
  reap: ReapResult;
  /** Every `net.*` sysctl a fresh namespace of this kernel has. */
  namespaceSysctls: ReadonlySet<string>;
  /**
   * Each value of `sysctlValues` the probe namespace would not take, keyed
   * `<key>=<value>`, with why (keys the namespace lacks are left out: see
   * `namespaceSysctls`).
   */
  sysctlProblems: ReadonlyMap<string, string>;
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
  /**
   * Optional tools the run needs (installed when missing, where possible), or
   * a function that says which once the machine passed the checks (it may
   * probe the kernel, e.g. for netem).
   */
  tools?: readonly ToolNeed[] | (() => Promise<readonly ToolNeed[]>);
  /** Where preflight says what it installs. */
  log?: (line: string) => void;
  /**
   * The run record the probe namespace is written into, or a function that
   * makes it once the machine passed the checks (default: the process's own).
   */
  record?: RunRecord | (() => Promise<RunRecord>);
  /** Sysctl values to try in the probe namespace before anything runs: `[key, value]`. */
  sysctlValues?: readonly (readonly [string, string])[];
  /**
   * Called with the probe namespace once its sysctls were read (before the
   * `sysctlValues` are tried in it): for probes of the kernel's behaviour (which may change it).
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

/** Directories on sudo's usual `secure_path`, where `sudo deno` finds deno. */
const SECURE_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/**
 * The command that runs the lab as root the way this process was started:
 * through npx (`sudo npx -y deno@<version> task lab`, since deno is then on
 * no PATH), with a deno on sudo's path (`sudo deno task lab`), or with the
 * full path of this deno otherwise.
 */
export function rootCommand(
  env: { execPath: string; npmCommand?: string | undefined; version: string } = {
    execPath: Deno.execPath(),
    npmCommand: Deno.env.get("npm_command"),
    version: Deno.version.deno,
  },
): string {
  if (env.npmCommand === "exec" || /\/_npx\//.test(env.execPath)) {
    return `sudo npx -y deno@${env.version} task lab`;
  }
  const onSecurePath = SECURE_PATH.some((dir) => {
    try {
      return Deno.realPathSync(`${dir}/deno`) === Deno.realPathSync(env.execPath);
    } catch {
      return false;
    }
  });
  return onSecurePath ? "sudo deno task lab" : `sudo ${env.execPath} task lab`;
}

/**
 * Checks the machine; reaps what dead runs recorded (see {@linkcode reapDeadRuns});
 * lists a fresh namespace's sysctls.
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
      `Not running as root (uid ${Deno.uid()}) with CAP_NET_ADMIN and CAP_SYS_ADMIN, which creating network namespaces needs: run it as root, e.g. \`${rootCommand()}\``,
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
  const reap = await reapDeadRuns();
  const kernel = Deno.osRelease();
  let namespaceSysctlValues: Record<string, string>;
  const record = typeof options.record === "function" ? await options.record() : options.record;
  let probe: Netns;
  try {
    probe = await Netns.create(`${prefix}-probe`, record ? { record } : {});
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new PreflightError([
      `Cannot create a network namespace (${detail}): check that the kernel has CONFIG_NET_NS and that /run/netns is writable`,
    ]);
  }
  const sysctlProblems = new Map<string, string>();
  {
    await using _ = probe;
    namespaceSysctlValues = await probe.readSysctls();
    await options.inProbe?.(probe);
    const known = (options.sysctlValues ?? []).filter(([k]) => k in namespaceSysctlValues);
    const unique = [...new Map(known.map(([k, v]) => [`${k}=${v}`, [k, v] as const])).values()];
    for (const t of await probe.trySysctls(unique)) {
      if (t.problem !== undefined) sysctlProblems.set(`${t.key}=${t.value}`, t.problem);
    }
  }
  const namespaceSysctls = new Set(Object.keys(namespaceSysctlValues));
  const uname = await run(["uname", "-r"], { allowFailure: true });
  return {
    kernel: uname.stdout.trim() || kernel,
    reaped: reap.namespaces,
    reap,
    namespaceSysctls,
    sysctlProblems,
    namespaceSysctlValues,
  };
}
