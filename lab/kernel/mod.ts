/**
 * Running the lab's commands on other Linux kernels, inside a small QEMU
 * guest: resolve a kernel spec (a Debian series, an exact Debian kernel, a
 * local `.deb` or directory), download and unpack it into a cache, build an
 * initramfs with its own modules, and boot it to run one command as root
 * with the host's `/` as its (read-only, overlaid) root.
 *
 * @example Run a command on the newest 5.10
 * ```ts ignore
 * import { bootAndRun, fetchKernel, resolveKernel } from "./mod.ts";
 *
 * const kernel = await fetchKernel(await resolveKernel("5.10"));
 * const r = await bootAndRun({
 *   kernel,
 *   command: ["sh", "-c", "deno task lab --filter somaxconn-clamps --json > /results/r.json"],
 *   cwd: "/path/to/backlog-lab",
 *   shareDir: "/tmp/out",
 * });
 * console.log(r.exitCode, r.accel, r.bootMs, r.guest.release);
 * ```
 * @module
 */
export {
  DEBIAN_SERIES,
  DEBIAN_SUITES,
  type DebianFile,
  type DebianKernel,
  type DebianSuite,
  defaultKernelCacheDir,
  type KernelRef,
  kernelsFromIndex,
  loadSuiteKernels,
  pickKernel,
  resolveKernel,
  type ResolveOptions,
  suitesFor,
} from "./debian.ts";
export {
  fetchKernel,
  type FetchKernelOptions,
  type KernelListing,
  listKernels,
  type OfferedKernel,
  type UnpackedKernel,
} from "./cache.ts";
export {
  buildInitramfs,
  type BuildInitramfsOptions,
  GUEST_MODULES,
  type GuestModule,
  type Initramfs,
  initScript,
  type InitScriptOptions,
  type ModulePlan,
  planModules,
} from "./initramfs.ts";
export { type CpioEntry, readNewc, writeNewc } from "./cpio.ts";
export {
  type Accel,
  bootAndRun,
  type BootAndRunOptions,
  type BootAndRunResult,
  detectAccel,
  type DetectAccelOptions,
  ensureVmTools,
  type GuestInfo,
  qemuName,
  RUN_DIR_PREFIX,
  stopAllVms,
} from "./vm.ts";
export { DownloadError, KernelSpecError, VmError, type VmFailure } from "./errors.ts";
export type { BoundedFetchOptions, DownloadProgress, FetchFn } from "./_fetch.ts";
