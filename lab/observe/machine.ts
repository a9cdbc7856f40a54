/**
 * What the lab records about the machine it ran on, for reports and
 * comparisons: host name, processor, cores, memory, distribution, Deno.
 * @module
 */
import type { MachineInfo } from "../results.ts";

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return fallback;
  }
}

/** The CPU model from `/proc/cpuinfo` text (x86 `model name`, else ARM's `Model`/`CPU part`). */
export function cpuModel(cpuinfo: string): string {
  for (const key of ["model name", "Model", "Hardware", "CPU part"]) {
    const m = new RegExp(`^${key}[ \\t]*:[ \\t]*(\\S.*)$`, "m").exec(cpuinfo);
    if (m) return m[1]!.trim();
  }
  return "unknown";
}

/** `MemTotal` from `/proc/meminfo` text, in MiB (0 if absent). */
export function memoryMiB(meminfo: string): number {
  const m = /^MemTotal:\s*(\d+)\s*kB/m.exec(meminfo);
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

/** `PRETTY_NAME` from `/etc/os-release` text (`unknown` if absent). */
export function osName(osRelease: string): string {
  const m = /^PRETTY_NAME=(["']?)(.*)\1$/m.exec(osRelease);
  return m?.[2] || "unknown";
}

/** Reads the running machine's facts; never throws (missing files give `unknown` / 0). */
export async function machineInfo(): Promise<MachineInfo> {
  const [cpuinfo, meminfo, osRelease] = await Promise.all([
    readOr("/proc/cpuinfo", ""),
    readOr("/proc/meminfo", ""),
    readOr("/etc/os-release", ""),
  ]);
  return {
    hostname: Deno.hostname(),
    arch: Deno.build.arch,
    cpu: cpuModel(cpuinfo),
    cores: navigator.hardwareConcurrency,
    memoryMiB: memoryMiB(meminfo),
    os: osName(osRelease),
    deno: Deno.version.deno,
  };
}

/** A command line as a shell would take it: arguments with special characters are quoted. */
export function shellCommand(argv: readonly string[]): string {
  return argv.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}

/**
 * Packets the machine's per-CPU input queues have dropped since boot: the
 * second column of `/proc/net/softnet_stat`, summed over CPUs (hex). Every
 * namespace shares these queues (`net.core.netdev_max_backlog` long); a
 * packet dropped there never reaches TCP. 0 where the file cannot be read.
 */
export function inputQueueDropsTotal(text?: string): number {
  try {
    const stat = text ?? Deno.readTextFileSync("/proc/net/softnet_stat");
    return stat.split("\n").filter((l) => l.trim()).reduce(
      (n, l) => n + (parseInt(l.trim().split(/\s+/)[1] ?? "0", 16) || 0),
      0,
    );
  } catch {
    return 0;
  }
}
