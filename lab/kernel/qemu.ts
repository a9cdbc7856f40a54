/**
 * The command lines of a VM, pure: QEMU's argv (a microvm with no network
 * device, the console on stdio, the 9p shares) and the guest kernel's
 * command line (what TCG needs to keep time), with the host facts they take.
 * {@linkcode bootAndRun} in `vm.ts` runs them.
 * @module
 */

/** The prefix of every VM's directory name and QEMU `-name`. */
export const RUN_DIR_PREFIX = "backlog-lab-vm-";

/** The QEMU `-name` of a VM: what its run record's process entry is told apart by. */
export function qemuName(tag: string): string {
  return `${RUN_DIR_PREFIX}${tag}`;
}

/** How the guest's CPU runs: hardware virtualization, or QEMU's emulator. */
export type Accel = "kvm" | "tcg";

/** The host TSC frequency in kHz (the TCG guest's TSC runs at it), or `undefined`. */
export function hostTscKhz(): number | undefined {
  try {
    const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1];
    return mhz ? Math.round(Number(mhz) * 1000) : undefined;
  } catch {
    return undefined;
  }
}

/** The host's TCP established-hash size, from its default tcp_max_syn_backlog (entries / 128). */
export function hostThashEntries(): number | undefined {
  try {
    const n = Number(Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_max_syn_backlog").trim());
    return n > 128 ? n * 128 : undefined;
  } catch {
    return undefined;
  }
}

/** Options of {@linkcode kernelCmdline}. */
export interface CmdlineOptions {
  accel: Accel;
  tag: string;
  tscKhz?: number | undefined;
  thashEntries?: number | undefined;
  probe?: boolean;
}

/**
 * The guest kernel's command line: serial console; a crash reboots (which
 * ends QEMU); under TCG a reliable TSC at the host's frequency (else a 4 ms
 * clock, or a calibration that can hang a busy boot).
 */
export function kernelCmdline(o: CmdlineOptions): string {
  const parts = [
    "console=ttyS0",
    "panic=-1",
    "oops=panic",
    "reboot=t",
    "loglevel=4",
    "random.trust_cpu=on",
    "rdinit=/init",
  ];
  if (o.accel === "tcg") {
    parts.push("tsc=reliable");
    if (o.tscKhz) parts.push(`tsc_early_khz=${o.tscKhz}`);
  }
  if (o.thashEntries) parts.push(`thash_entries=${o.thashEntries}`);
  if (o.probe) parts.push("backlog_lab.mode=probe");
  parts.push(`backlog_lab.tag=${o.tag}`);
  return parts.join(" ");
}

/** Options of {@linkcode qemuArgv}. */
export interface QemuArgvOptions {
  accel: Accel;
  tag: string;
  vmlinuz: string;
  initrd: string;
  cmdline: string;
  memoryMiB: number;
  cpus: number;
  /** The control directory (9p tag `blctl`); absent for the probe. */
  ctlDir?: string;
  /** The share directory (9p tag `blshare`). */
  shareDir?: string;
  /** Whether to export the host's `/` (9p tag `blroot`); default true when `ctlDir` is set. */
  root?: boolean;
  /** The QEMU executable; default `qemu-system-x86_64`. */
  binary?: string;
}

/** QEMU's argv: a microvm with no network device, the console on stdio, 9p shares. */
export function qemuArgv(o: QemuArgvOptions): string[] {
  const security = Deno.uid() === 0 ? "passthrough" : "none";
  const fs = (id: string, path: string, readonly: boolean) => [
    "-fsdev",
    `local,id=${id},path=${path},security_model=${security},multidevs=remap${
      readonly ? ",readonly=on" : ""
    }`,
    "-device",
    `virtio-9p-device,fsdev=${id},mount_tag=${id}`,
  ];
  return [
    o.binary ?? "qemu-system-x86_64",
    "-name",
    qemuName(o.tag),
    "-nodefaults",
    "-no-user-config",
    "-no-reboot",
    "-display",
    "none",
    "-serial",
    "stdio",
    "-monitor",
    "none",
    ...(o.accel === "kvm"
      ? ["-accel", "kvm", "-cpu", "host"]
      : ["-accel", "tcg,thread=multi", "-cpu", "max"]),
    "-M",
    "microvm,x-option-roms=off,rtc=on",
    "-smp",
    String(o.cpus),
    "-m",
    `${o.memoryMiB}M`,
    "-kernel",
    o.vmlinuz,
    "-initrd",
    o.initrd,
    "-append",
    o.cmdline,
    "-device",
    "virtio-rng-device",
    ...(o.ctlDir ? fs("blctl", o.ctlDir, false) : []),
    ...((o.root ?? o.ctlDir !== undefined) ? fs("blroot", "/", true) : []),
    ...(o.shareDir ? fs("blshare", o.shareDir, false) : []),
  ];
}
