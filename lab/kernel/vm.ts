/**
 * Running a command as root inside a small QEMU guest of another kernel:
 * {@linkcode bootAndRun}. The guest sees the host's `/` read-only (over
 * virtio-9p, with a tmpfs overlay on top, so every tool and the project are
 * there), one host directory read-write (the share), and has no network
 * device (the lab inside makes its own namespaces). The command's exit
 * code, stdout and stderr come back through a control directory; the
 * guest's console goes to a log file.
 *
 * Every wait is bounded (boot, run, shutdown) and QEMU is ended on every
 * exit path. Each VM is written into the lab's machine-wide run record
 * (`lab/base/run_record.ts`): its directory lives in the record's temporary
 * files and its QEMU process is recorded (PID, start time and its
 * `-name backlog-lab-vm-<tag>`), so that a VM whose owner was killed with
 * SIGKILL is reaped by the next run (`reapDeadRuns()`), like a namespace.
 * @module
 */
import { dirname, join } from "node:path";
import { RunRecord } from "../base/run_record.ts";
import { reapDeadRuns } from "../topology/reap.ts";
import { buildInitramfs, findStaticBusybox, type ModulePlan, shellQuote } from "./initramfs.ts";
import type { UnpackedKernel } from "./cache.ts";
import { VmError } from "./errors.ts";
import { ensureTools } from "../topology/packages.ts";
import { QEMU, XZ } from "./_tools.ts";
import { PreflightError } from "../base/errors.ts";
import {
  type Accel,
  hostThashEntries,
  hostTscKhz,
  kernelCmdline,
  qemuArgv,
  qemuName,
} from "./qemu.ts";

export { type Accel, qemuName, RUN_DIR_PREFIX } from "./qemu.ts";

export { DEPMOD, QEMU, XZ } from "./_tools.ts";

/** What the guest reported about itself once booted. */
export interface GuestInfo {
  /** `uname -r` in the guest. */
  release: string;
  /** `MemTotal` of the guest's `/proc/meminfo`. */
  memTotalKiB: number;
  /** CPUs the guest sees. */
  cpus: number;
  /** The guest's default `net.ipv4.tcp_max_syn_backlog` (it follows the TCP hash size). */
  tcpMaxSynBacklog: number;
  /** The guest's default `net.core.somaxconn`. */
  somaxconn: number;
}

/** Options of {@linkcode bootAndRun}. */
export interface BootAndRunOptions {
  /** The kernel to boot (from `fetchKernel`, or any image with its modules directory). */
  kernel: Pick<UnpackedKernel, "release" | "vmlinuz" | "modulesDir">;
  /** The argv run as root inside the guest (no shell; use `["sh", "-c", …]` for one). */
  command: readonly string[];
  /** The working directory, a host path (the guest sees the host's `/`); default `Deno.cwd()`. Not under `/run`. */
  cwd?: string;
  /** Environment of the command, besides `PATH`, `HOME` and `TERM=dumb`. */
  env?: Record<string, string>;
  /** A host directory the guest may write, mounted at `shareMount`. */
  shareDir?: string;
  /** Where the guest sees `shareDir`; default `/results`. */
  shareMount?: string;
  /** Guest memory; default 4096 MiB. */
  memoryMiB?: number;
  /** Guest CPUs; default 2. */
  cpus?: number;
  /** Longest wait from QEMU's start to the command's start; default 180 s (TCG) or 60 s (KVM). */
  bootTimeoutMs?: number;
  /** Longest run of the command; default 30 min. */
  timeoutMs?: number;
  /** Aborts the VM (QEMU is killed; the call rejects with a {@linkcode VmError} `aborted`). */
  signal?: AbortSignal;
  /** Each console line of the guest (kernel and init messages), as it arrives. */
  onConsoleLine?: (line: string) => void;
  /**
   * Each line the command writes to stderr, while it runs (read from the
   * control directory every 250 ms, and once more when the guest ends).
   */
  onStderrLine?: (line: string) => void;
  /** `kvm`, `tcg`, or `auto` (default: `$BACKLOG_LAB_VM_ACCEL`, else a bounded KVM boot probe). */
  accel?: Accel | "auto";
  /**
   * The guest's TCP established-hash size (kernel parameter `thash_entries`),
   * which sets its default `tcp_max_syn_backlog` (max(128, entries / 128))
   * independently of its memory. `"host"` (default) matches the host's
   * current default; `"kernel"` leaves it to the guest's memory.
   */
  thashEntries?: number | "host" | "kernel";
  /** Where console logs and the command's output are kept; default `~/.cache/backlog-lab/vm-logs`. */
  logDir?: string;
  /**
   * The run record the VM's directory and QEMU process are written into, so
   * that a later run reaps them if this process is killed; default the
   * process's own (`RunRecord.ofProcess()`, under `/run/backlog-lab`).
   */
  record?: RunRecord;
  /** Boot attempts after a guest crash or hang before the command starts (TCG's rare oops); default 1. */
  bootRetries?: number;
  /** The QEMU executable; default `qemu-system-x86_64` on PATH (tests give a stand-in). */
  qemu?: string;
  /** A statically linked busybox for the initramfs; default: the system's (`busybox-static`). */
  busybox?: string;
}

/** What {@linkcode bootAndRun} returns. */
export interface BootAndRunResult {
  /** The command's exit code in the guest (126/127 when it could not start). */
  exitCode: number;
  /** The accelerator used. */
  accel: Accel;
  /** From QEMU's start to the command's start (the successful attempt). */
  bootMs: number;
  /** From the command's start to QEMU's exit. */
  runMs: number;
  /** Boot attempts made (2 when the first crashed). */
  attempts: number;
  /** The console log of the last attempt. */
  consoleLog: string;
  /** The command's stdout, kept beside the console log. */
  stdoutPath: string;
  /** The command's stderr, kept beside the console log. */
  stderrPath: string;
  /** The command's stdout. */
  stdout: string;
  /** The command's stderr. */
  stderr: string;
  /** What the guest reported. */
  guest: GuestInfo;
  /** Guest memory asked for. */
  memoryMiB: number;
  /** Guest CPUs asked for. */
  cpus: number;
  /** The guest kernel's command line. */
  kernelCmdline: string;
  /** Which modules the initramfs loads, has built in, or lacks. */
  modules: ModulePlan;
  /** The VM's unique tag (its QEMU `-name` is `backlog-lab-vm-<tag>`). */
  tag: string;
}

/**
 * Ensures QEMU (unless `qemu: false`), xz and a static busybox are
 * installed (with apt-get as root on Debian/Ubuntu, like `ensureTools`).
 * depmod is ensured where it is needed, when a kernel is unpacked.
 *
 * @throws {PreflightError} naming each missing tool and the command that installs it.
 */
export async function ensureVmTools(
  options: { log?: (line: string) => void; qemu?: boolean } = {},
): Promise<void> {
  await ensureTools(options.qemu === false ? [XZ] : [QEMU, XZ], options);
  try {
    await findStaticBusybox();
  } catch (err) {
    if (!(err instanceof PreflightError)) throw err;
    const busybox = await Deno.stat("/bin/busybox").catch(() => undefined);
    if (busybox) throw err; // a dynamic busybox is there: ensureTools would see nothing missing
    await ensureTools(
      [{ command: "busybox", debianPackage: "busybox-static", why: "the guest's initramfs" }],
      options,
    );
    await findStaticBusybox();
  }
}

/** The VMs of this process being booted or run, for {@linkcode stopAllVms}. */
const running = new Set<{ stop: () => void; done: Promise<void> }>();

/**
 * Stops every VM this process started (QEMU killed) and waits until each
 * has cleaned up (its temporary directory and run record removed): what a
 * SIGINT, SIGTERM or SIGHUP handler calls before exiting. Each pending
 * {@linkcode bootAndRun} rejects with a {@linkcode VmError} `aborted`.
 */
export async function stopAllVms(): Promise<void> {
  const all = [...running];
  for (const r of all) r.stop();
  await Promise.all(all.map((r) => r.done));
}

/** Registers a VM for {@linkcode stopAllVms}: its signal, and a function to call when cleaned up. */
function register(signal: AbortSignal | undefined): { signal: AbortSignal; finished: () => void } {
  const stopper = new AbortController();
  let finished: () => void = () => {};
  const entry = { stop: () => stopper.abort(), done: new Promise<void>((r) => finished = r) };
  running.add(entry);
  return {
    signal: signal ? AbortSignal.any([signal, stopper.signal]) : stopper.signal,
    finished: () => {
      running.delete(entry);
      finished();
    },
  };
}

const READY = "backlog-lab-init: READY";
const FAILED = "backlog-lab-init: FAILED:";
/** Console lines that mean the guest kernel crashed. */
const CRASH = /Kernel panic|Oops:|BUG: |general protection fault|end Kernel panic/;

/** What one QEMU run did. */
interface Attempt {
  readyAt: number | undefined;
  exitedAt: number;
  crashed: string | undefined;
  failed: string | undefined;
  qemuCode: number;
}

/** Options of one QEMU run. */
interface AttemptOptions {
  argv: string[];
  tag: string;
  consoleLog: string;
  bootTimeoutMs: number;
  runTimeoutMs: number;
  signal: AbortSignal | undefined;
  onConsoleLine: ((line: string) => void) | undefined;
  /** Called with QEMU's PID once it runs (for the run record). */
  onStart: (pid: number) => Promise<void>;
  /** Stop once `READY probe` or READY shows (the probe). */
  probe?: boolean;
}

/** One QEMU run, from spawn to exit; QEMU is dead when this settles. */
async function attempt(o: AttemptOptions): Promise<Attempt> {
  const log = await Deno.open(o.consoleLog, { write: true, create: true, truncate: true });
  const tail: string[] = [];
  const write = (line: string) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
    log.writeSync(new TextEncoder().encode(line + "\n"));
  };
  const [cmd, ...args] = o.argv;
  const start = performance.now();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd!, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    log.close();
    const hint = err instanceof Deno.errors.NotFound
      ? `"${cmd}" is not installed: install it with \`sudo apt-get install -y qemu-system-x86\``
      : String(err);
    throw new VmError("qemu", `Cannot start QEMU: ${hint}`, o.consoleLog, "", { cause: err });
  }
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const kill = async () => {
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }
    await status;
  };
  let readyAt: number | undefined;
  let crashed: string | undefined;
  let callbackError: { err: unknown } | undefined;
  // A function, so the compiler does not narrow a value that the reader sets.
  const rethrowCallbackError = () => {
    if (callbackError) throw callbackError.err;
  };
  let failed: string | undefined;
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => onReady = r);
  const readLines = async (stream: ReadableStream<Uint8Array>, prefix: string) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = prefix + buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        write(line);
        try {
          o.onConsoleLine?.(line);
        } catch (err) {
          // The caller's callback failed: stop the VM and report its error.
          callbackError ??= { err };
          onAbort();
        }
        if (line.includes(READY) && readyAt === undefined) {
          readyAt = performance.now();
          onReady();
        } else if (line.includes(FAILED)) failed ??= line.slice(line.indexOf(FAILED));
        else if (CRASH.test(line) && readyAt === undefined) crashed ??= line.trim();
      }
    }
    if (buf) write(prefix + buf);
  };
  const reading = Promise.all([
    readLines(child.stdout, ""),
    readLines(child.stderr, "[qemu] "),
  ]).catch(() => {});
  const fail = (failure: ConstructorParameters<typeof VmError>[0], message: string): never => {
    throw new VmError(failure, message, o.consoleLog, tail.slice(-12).join("\n"));
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = (ms: number) =>
    new Promise<"timeout">((r) => {
      clearTimeout(timer);
      timer = setTimeout(() => r("timeout"), ms);
    });
  let onAbort: () => void = () => {};
  const aborted = new Promise<"aborted">((r) => {
    onAbort = () => r("aborted");
    if (o.signal?.aborted) r("aborted");
    o.signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await o.onStart(child.pid);
    const boot = await Promise.race([
      ready.then(() => "ready" as const),
      status.then(() => "exited" as const),
      timeout(o.bootTimeoutMs),
      aborted,
    ]);
    rethrowCallbackError();
    if (boot === "aborted") fail("aborted", `Cannot boot kernel: aborted`);
    if (boot === "timeout") {
      fail(
        "boot-timeout",
        `Cannot boot kernel: the guest did not start the command within ${o.bootTimeoutMs} ms`,
      );
    }
    if (boot === "ready" && !o.probe) {
      const end = await Promise.race([
        status.then(() => "exited" as const),
        timeout(o.runTimeoutMs),
        aborted,
      ]);
      rethrowCallbackError();
      if (end === "aborted") fail("aborted", `Cannot finish the command in the guest: aborted`);
      if (end === "timeout") {
        fail(
          "run-timeout",
          `Cannot finish the command in the guest: it ran longer than ${o.runTimeoutMs} ms`,
        );
      }
    }
    if (o.probe) await kill();
    const s = await status;
    await reading;
    return {
      readyAt: readyAt === undefined ? undefined : readyAt - start,
      exitedAt: performance.now() - start,
      crashed,
      failed,
      qemuCode: s.code,
    };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener("abort", onAbort);
    await kill();
    await reading;
    log.close();
  }
}

/** Per process: which accelerator works, per kernel release. */
const accelCache = new Map<string, Accel>();

/** Options of {@linkcode detectAccel}. */
export interface DetectAccelOptions {
  /** The probe's deadline for the guest to reach userspace; default 20 s. */
  timeoutMs?: number;
  /** Where the probe's console log goes; default a temporary file, removed. */
  logDir?: string;
  /** The run record of the probe's VM (default: the process's own). */
  record?: RunRecord;
  /** Aborts the probe (the answer is then `tcg`). */
  signal?: AbortSignal;
}

/**
 * Which accelerator boots this kernel: `kvm` when `/dev/kvm` opens and a
 * guest reaches userspace under KVM within the deadline (a bounded probe
 * boot, since nested virtualization can hang a KVM guest in early boot),
 * else `tcg`. Cached per kernel release for the process;
 * `$BACKLOG_LAB_VM_ACCEL` (`kvm`/`tcg`) overrides it.
 */
export async function detectAccel(
  kernel: Pick<UnpackedKernel, "release" | "vmlinuz" | "modulesDir">,
  options: DetectAccelOptions = {},
): Promise<Accel> {
  const forced = Deno.env.get("BACKLOG_LAB_VM_ACCEL");
  if (forced === "kvm" || forced === "tcg") return forced;
  const cached = accelCache.get(kernel.release);
  if (cached) return cached;
  let accel: Accel = "tcg";
  try {
    (await Deno.open("/dev/kvm", { read: true, write: true })).close();
    accel = await probeKvm(kernel, options) ? "kvm" : "tcg";
  } catch {
    accel = "tcg";
  }
  if (!options.signal?.aborted) accelCache.set(kernel.release, accel); // an aborted probe proves nothing
  return accel;
}

async function probeKvm(
  kernel: Pick<UnpackedKernel, "release" | "vmlinuz" | "modulesDir">,
  options: DetectAccelOptions,
): Promise<boolean> {
  const tag = `probe-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const record = options.record ?? await RunRecord.ofProcess();
  const reg = register(options.signal);
  const dir = record.tempPath(qemuName(tag));
  try {
    await Deno.mkdir(dir, { mode: 0o700 });
    const initrd = join(dir, "initramfs.cpio.gz");
    await Deno.writeFile(initrd, (await buildInitramfs(kernel, { modules: [] })).bytes);
    const consoleLog = join(options.logDir ?? dir, `${tag}.console.log`);
    const r = await attempt({
      argv: qemuArgv({
        accel: "kvm",
        tag,
        vmlinuz: kernel.vmlinuz,
        initrd,
        cmdline: kernelCmdline({ accel: "kvm", tag, probe: true }),
        memoryMiB: 512,
        cpus: 1,
      }),
      tag,
      consoleLog,
      bootTimeoutMs: options.timeoutMs ?? 20_000,
      runTimeoutMs: 5_000,
      signal: reg.signal,
      onConsoleLine: undefined,
      probe: true,
      onStart: (pid) => recordQemu(record, pid, tag),
    });
    return r.readyAt !== undefined;
  } catch {
    return false;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    reg.finished();
  }
}

/**
 * Records a VM's QEMU in the run record (by its `-name`), so that a later run
 * ends it if this process is killed. One that already exited needs nothing.
 */
async function recordQemu(record: RunRecord, pid: number, tag: string): Promise<void> {
  try {
    await record.addProcess(pid, qemuName(tag));
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
  }
}

/** The default directory of console logs and outputs: `~/.cache/backlog-lab/vm-logs`. */
export function defaultVmLogDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME") ?? "/root";
  return join(xdg && xdg.startsWith("/") ? xdg : join(home, ".cache"), "backlog-lab", "vm-logs");
}

/** Keeps the newest `keep` runs' logs (by tag) in `dir`. */
async function pruneLogs(dir: string, keep: number): Promise<void> {
  const files: { name: string; mtime: number }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile) continue;
    const st = await Deno.stat(join(dir, e.name)).catch(() => undefined);
    files.push({ name: e.name, mtime: st?.mtime?.getTime() ?? 0 });
  }
  const tags = [
    ...new Set(files.sort((a, b) => b.mtime - a.mtime).map((f) => f.name.split(".")[0])),
  ];
  const old = new Set(tags.slice(keep));
  for (const f of files) {
    if (old.has(f.name.split(".")[0])) await Deno.remove(join(dir, f.name)).catch(() => {});
  }
}

/**
 * Boots `kernel` in a QEMU microvm and runs `command` as root inside it.
 *
 * Stale VMs of dead owners are reaped first. The guest boots from a fresh
 * initramfs; its root is the host's `/` (read-only, with a tmpfs overlay),
 * `cwd` is the host path, `shareDir` is writable at `shareMount`. A crash
 * or hang before the command starts is retried once (`bootRetries`), since
 * multi-threaded TCG rarely oopses at boot. QEMU is killed on every path
 * out (success, error, timeout, abort, {@linkcode stopAllVms}).
 *
 * @param options the kernel, the command and the VM's shape.
 * @returns the exit code, times, accelerator, outputs and what the guest reported.
 * @throws {VmError} when the guest does not boot, crashes, runs out of time,
 *   returns no exit code, or is aborted; it names the console log.
 * @throws {PreflightError} when QEMU or busybox-static is missing.
 *
 * @example Run `uname -r` on 5.10
 * ```ts ignore
 * const kernel = await fetchKernel(await resolveKernel("5.10"));
 * const r = await bootAndRun({ kernel, command: ["uname", "-r"] });
 * r.stdout; // "5.10.0-46-amd64\n"
 * ```
 */
export async function bootAndRun(options: BootAndRunOptions): Promise<BootAndRunResult> {
  if (options.command.length === 0) {
    throw new TypeError("Cannot run a command in the guest: the command is empty");
  }
  const cwd = options.cwd ?? Deno.cwd();
  if (cwd === "/run" || cwd.startsWith("/run/")) {
    throw new RangeError(
      `Cannot run a command in the guest in "${cwd}": the guest mounts its own /run; use a directory elsewhere`,
    );
  }
  const shareMount = options.shareMount ?? "/results";
  if (!shareMount.startsWith("/") || shareMount === "/" || /['\n]/.test(shareMount)) {
    throw new RangeError(
      `Cannot mount the share directory at "${shareMount}": give an absolute path other than "/"`,
    );
  }
  if (options.qemu === undefined || options.busybox === undefined) {
    await ensureVmTools({ qemu: options.qemu === undefined });
  }
  const record = options.record ?? await RunRecord.ofProcess();
  // What killed runs left: their VMs (and namespaces, and temporary files).
  await reapDeadRuns(dirname(record.dir));
  const kernel = options.kernel;
  const memoryMiB = options.memoryMiB ?? 4096;
  const cpus = options.cpus ?? 2;
  const tag = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const reg = register(options.signal);
  const signal = reg.signal;
  // In the run record's temporary files: reaped with the record if this process is killed.
  const runDir = record.tempPath(qemuName(tag));
  await Deno.mkdir(runDir, { mode: 0o700 }).catch((err) => {
    reg.finished();
    throw err;
  });
  const logDir = options.logDir ?? defaultVmLogDir();
  let follower: { stop(): Promise<void> } | undefined;
  try {
    await Deno.mkdir(logDir, { recursive: true });
    await pruneLogs(logDir, 40).catch(() => {});
    const initramfs = await buildInitramfs(
      kernel,
      options.busybox ? { busybox: options.busybox } : {},
    );
    const initrd = join(runDir, "initramfs.cpio.gz");
    await Deno.writeFile(initrd, initramfs.bytes);
    const ctlDir = join(runDir, "ctl");
    await Deno.mkdir(ctlDir);
    await writeControl(ctlDir, { ...options, cwd, shareMount });
    if (options.onStderrLine) follower = followFile(join(ctlDir, "stderr"), options.onStderrLine);
    const accel = options.accel === "kvm" || options.accel === "tcg"
      ? options.accel
      : await detectAccel(kernel, { signal, record });
    const thash = options.thashEntries ?? "host";
    const thashEntries = thash === "host"
      ? hostThashEntries()
      : thash === "kernel"
      ? undefined
      : thash;
    const cmdline = kernelCmdline({ accel, tag, tscKhz: hostTscKhz(), thashEntries });
    const argv = qemuArgv({
      accel,
      tag,
      vmlinuz: kernel.vmlinuz,
      initrd,
      cmdline,
      memoryMiB,
      cpus,
      ctlDir,
      ...(options.qemu ? { binary: options.qemu } : {}),
      ...(options.shareDir ? { shareDir: await Deno.realPath(options.shareDir) } : {}),
    });
    const consoleLog = join(logDir, `${tag}.console.log`);
    const retries = options.bootRetries ?? 1;
    let attempts = 0;
    let last: Attempt | undefined;
    for (;;) {
      attempts++;
      const log = attempts === 1 ? consoleLog : join(logDir, `${tag}.console-${attempts}.log`);
      try {
        last = await attempt({
          argv,
          tag,
          consoleLog: log,
          bootTimeoutMs: options.bootTimeoutMs ?? (accel === "kvm" ? 60_000 : 180_000),
          runTimeoutMs: options.timeoutMs ?? 30 * 60_000,
          signal,
          onConsoleLine: options.onConsoleLine,
          onStart: (pid) => recordQemu(record, pid, tag),
        });
      } catch (err) {
        if (err instanceof VmError && err.failure === "boot-timeout" && attempts <= retries) {
          continue;
        }
        throw err;
      }
      if (last.readyAt === undefined && last.crashed && !last.failed && attempts <= retries) {
        continue;
      }
      break;
    }
    const finalLog = attempts === 1 ? consoleLog : join(logDir, `${tag}.console-${attempts}.log`);
    const tailOf = async () =>
      (await Deno.readTextFile(finalLog).catch(() => "")).trimEnd().split("\n").slice(-12).join(
        "\n",
      );
    if (last.readyAt === undefined) {
      const why = last.failed ??
        (last.crashed
          ? `the guest kernel crashed at boot ("${last.crashed}")`
          : `QEMU exited with ${last.qemuCode} before the guest started the command`);
      throw new VmError(
        last.crashed ? "boot-crash" : last.failed ? "boot-crash" : "qemu",
        `Cannot boot kernel "${kernel.release}" (${accel}, ${attempts} attempt${
          attempts > 1 ? "s" : ""
        }): ${why}`,
        finalLog,
        await tailOf(),
      );
    }
    await follower?.stop();
    const stdoutPath = join(logDir, `${tag}.stdout`);
    const stderrPath = join(logDir, `${tag}.stderr`);
    await Deno.copyFile(join(ctlDir, "stdout"), stdoutPath).catch(() => {});
    await Deno.copyFile(join(ctlDir, "stderr"), stderrPath).catch(() => {});
    const codeText = await Deno.readTextFile(join(ctlDir, "exit-code")).catch(() => undefined);
    const exitCode = codeText === undefined ? NaN : Number(codeText.trim());
    if (!Number.isInteger(exitCode)) {
      throw new VmError(
        "no-exit-code",
        `Cannot get the command's exit code from the guest of kernel "${kernel.release}": ${
          codeText === undefined ? "it wrote none" : `it wrote "${codeText.trim()}"`
        } (QEMU exited with ${last.qemuCode}; the guest may have crashed or run out of memory)`,
        finalLog,
        await tailOf(),
      );
    }
    const guest = JSON.parse(await Deno.readTextFile(join(ctlDir, "guest.json"))) as GuestInfo;
    return {
      exitCode,
      accel,
      bootMs: Math.round(last.readyAt),
      runMs: Math.round(last.exitedAt - last.readyAt),
      attempts,
      consoleLog: finalLog,
      stdoutPath,
      stderrPath,
      stdout: await Deno.readTextFile(stdoutPath).catch(() => ""),
      stderr: await Deno.readTextFile(stderrPath).catch(() => ""),
      guest,
      memoryMiB,
      cpus,
      kernelCmdline: cmdline,
      modules: initramfs.modules,
      tag,
    };
  } finally {
    await follower?.stop().catch(() => {});
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
    reg.finished();
  }
}

/**
 * Reads the lines appended to `path` (which may not exist yet) every 250 ms
 * and hands each complete one to `onLine`; `stop()` reads what is left
 * (the last line too, complete or not) and ends. Idempotent.
 */
export function followFile(
  path: string,
  onLine: (line: string) => void,
): { stop(): Promise<void> } {
  let offset = 0;
  let partial = "";
  let stopped = false;
  const decoder = new TextDecoder();
  const readMore = async (final: boolean) => {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch {
      return; // not written yet
    }
    try {
      await file.seek(offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(64 * 1024);
      for (let i = 0; i < 1024; i++) { // at most 64 MiB a read
        const n = await file.read(buf);
        if (n === null || n === 0) break;
        offset += n;
        partial += decoder.decode(buf.subarray(0, n), { stream: true });
      }
    } finally {
      file.close();
    }
    const lines = partial.split("\n");
    partial = final ? "" : lines.pop()!;
    for (const line of final ? lines.filter((l, i) => i < lines.length - 1 || l !== "") : lines) {
      try {
        onLine(line);
      } catch { /* the caller's display failed: never the VM */ }
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let reading: Promise<void> = Promise.resolve();
  const tick = () => {
    reading = readMore(false).catch(() => {}).finally(() => {
      if (!stopped) timer = setTimeout(tick, 250);
    });
  };
  timer = setTimeout(tick, 250);
  let done: Promise<void> | undefined;
  return {
    stop() {
      return done ??= (async () => {
        stopped = true;
        clearTimeout(timer);
        await reading;
        await readMore(true).catch(() => {});
      })();
    },
  };
}

/** Writes `vm.env` (read by /init) and `run.sh` (the command, run chrooted in the guest). */
async function writeControl(
  ctlDir: string,
  o: BootAndRunOptions & { cwd: string; shareMount: string },
): Promise<void> {
  const q = shellQuote;
  await Deno.writeTextFile(
    join(ctlDir, "vm.env"),
    `BL_SHARE=${o.shareDir ? q(o.shareMount) : "''"}\nBL_HOSTNAME='backlog-lab-guest'\n`,
  );
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
    TERM: "dumb",
    ...o.env,
  };
  for (const k of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
      throw new RangeError(
        `Cannot pass environment variable "${k}" to the guest: not a valid name`,
      );
    }
  }
  const ctl = "/run/backlog-lab-vm";
  await Deno.writeTextFile(
    join(ctlDir, "run.sh"),
    [
      "# The command of one backlog-lab VM (generated by lab/kernel/vm.ts).",
      ...Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`),
      `cd ${q(o.cwd)} || exit 125`,
      `exec ${o.command.map(q).join(" ")} </dev/null >${ctl}/stdout 2>${ctl}/stderr`,
      "",
    ].join("\n"),
  );
}
