/**
 * The system tools of the kernel/VM layer, as `ensureTools` needs them:
 * each command with the Debian package that installs it.
 * @module
 */
import type { ToolNeed } from "../topology/packages.ts";

/** QEMU, for the guests. */
export const QEMU: ToolNeed = {
  command: "qemu-system-x86_64",
  debianPackage: "qemu-system-x86",
  why: "booting other kernels",
};
/** depmod, to index an unpacked kernel's modules. */
export const DEPMOD: ToolNeed = { command: "depmod", debianPackage: "kmod", why: "kernel modules" };
/** xz, for Debian's indexes and compressed modules. */
export const XZ: ToolNeed = { command: "xz", debianPackage: "xz-utils", why: "decompressing" };
