/**
 * The kernel cache: each Debian package downloaded once (checked against the
 * index's SHA256), unpacked into a directory with `vmlinuz` and
 * `lib/modules/<release>` (with `depmod` run on it), ready to boot.
 *
 * Layout under the cache root (`~/.cache/backlog-lab/kernels/` by default):
 *
 * ```
 * indexes/<suite>.Packages          the kernel stanzas of each suite's index
 * debs/<file>.deb                   downloaded packages, each complete and checked
 * unpacked/<release>_<version>/     vmlinuz, lib/modules/<release>/, kernel.json
 * ```
 *
 * Everything appears under its final name only once complete: downloads
 * and unpacked trees are built under temporary names and renamed.
 * @module
 */
import { basename, join } from "node:path";
import { downloadFile, type DownloadProgress } from "./_fetch.ts";
import { exec } from "./_exec.ts";
import {
  DEBIAN_SERIES,
  DEBIAN_SUITES,
  type DebianKernel,
  defaultKernelCacheDir,
  findLocalKernel,
  type KernelRef,
  loadSuiteKernels,
  type ResolveOptions,
} from "./debian.ts";
import { KernelSpecError } from "./errors.ts";
import { hasCommand } from "../base/command.ts";
import { ensureTools } from "../topology/packages.ts";
import { DEPMOD } from "./_tools.ts";

/** A kernel ready to boot. */
export interface UnpackedKernel {
  /** The release, as `uname -r` prints it in the guest. */
  release: string;
  /** The kernel image. */
  vmlinuz: string;
  /** `…/lib/modules/<release>`, with `modules.dep` (depmod has run). */
  modulesDir: string;
  /** The unpacked directory (for Debian and `.deb` kernels), or the local directory. */
  dir: string;
  /** What it was resolved from. */
  ref: KernelRef;
}

/** Options of {@linkcode fetchKernel}. */
export interface FetchKernelOptions extends ResolveOptions {
  /** Download progress, per package. */
  onProgress?: (p: DownloadProgress) => void;
}

/** The unpacked directory of a Debian or `.deb` kernel in the cache. */
function unpackedDir(cacheDir: string, ref: KernelRef): string {
  const version = ref.kind === "dir" ? "local" : ref.version;
  return join(cacheDir, "unpacked", `${ref.release}_${version}`.replace(/[^A-Za-z0-9._+~-]/g, "_"));
}

/**
 * Makes a resolved kernel bootable: downloads its packages into the cache
 * (once; SHA256 checked), unpacks them and runs `depmod -b`. A local
 * directory is used as it is (it must have `modules.dep`).
 *
 * @param ref from `resolveKernel`.
 * @param options cache root, progress, fetch bounds.
 * @returns the kernel's image and modules.
 * @throws {DownloadError} naming the URL of a package that failed.
 * @throws {CommandError} when unpacking or depmod fails, naming the tool.
 * @throws {PreflightError} when depmod is missing and cannot be installed
 *   (as root on Debian/Ubuntu it is installed with apt-get, package `kmod`).
 *
 * @example Fetch the newest 6.1
 * ```ts ignore
 * const kernel = await fetchKernel(await resolveKernel("6.1"), {
 *   onProgress: (p) => console.error(`${p.url}: ${p.bytes}/${p.total}`),
 * });
 * kernel.vmlinuz; // ~/.cache/backlog-lab/kernels/unpacked/6.1.0-56-amd64_6.1.192-2/vmlinuz
 * ```
 */
export async function fetchKernel(
  ref: KernelRef,
  options: FetchKernelOptions = {},
): Promise<UnpackedKernel> {
  if (ref.kind === "dir") {
    if (!(await Deno.stat(join(ref.modulesDir, "modules.dep")).catch(() => undefined))) {
      throw new KernelSpecError(
        ref.spec,
        `Cannot use kernel directory "${ref.spec}": "${ref.modulesDir}/modules.dep" is missing; run \`depmod -b <dir> ${ref.release}\` first`,
      );
    }
    return {
      release: ref.release,
      vmlinuz: ref.vmlinuz,
      modulesDir: ref.modulesDir,
      dir: ref.spec,
      ref,
    };
  }
  const cacheDir = options.cacheDir ?? defaultKernelCacheDir();
  const dir = unpackedDir(cacheDir, ref);
  const ready = await readUnpacked(dir);
  if (ready) return { ...ready, ref };

  const debs: string[] = [];
  if (ref.kind === "deb") {
    debs.push(ref.path);
  } else {
    const debDir = join(cacheDir, "debs");
    await Deno.mkdir(debDir, { recursive: true });
    for (const p of ref.packages) {
      const dest = join(debDir, basename(p.filename));
      if (!(await Deno.stat(dest).catch(() => undefined))) {
        await downloadFile(p.url, dest, {
          ...options,
          sha256: p.sha256,
          size: p.size,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        });
      }
      debs.push(dest);
    }
  }
  await unpack(debs, dir, ref);
  const done = await readUnpacked(dir);
  if (!done) throw new Error(`Cannot read the unpacked kernel "${dir}" right after unpacking it`);
  return { ...done, ref };
}

/** The unpacked kernel in `dir` when complete (kernel.json is written last). */
async function readUnpacked(
  dir: string,
): Promise<Omit<UnpackedKernel, "ref"> | undefined> {
  try {
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "kernel.json"))) as {
      release: string;
    };
    return {
      release: meta.release,
      vmlinuz: join(dir, "vmlinuz"),
      modulesDir: join(dir, "lib", "modules", meta.release),
      dir,
    };
  } catch {
    return undefined;
  }
}

/** Unpacks `debs` into `dir`: vmlinuz, lib/modules/<release>, depmod, kernel.json, then renames. */
async function unpack(debs: readonly string[], dir: string, ref: KernelRef): Promise<void> {
  const tmp = `${dir}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(join(tmp, "x"), { recursive: true });
  try {
    for (const deb of debs) await extractDeb(deb, join(tmp, "x"));
    const found = await findLocalKernel(join(tmp, "x"));
    if (!found) {
      throw new KernelSpecError(
        ref.spec,
        `Cannot use kernel "${ref.spec}": its packages (${
          debs.map((d) => `"${basename(d)}"`).join(", ")
        }) hold no kernel image (boot/vmlinuz-<release>, or vmlinuz in the modules directory) beside lib/modules/<release>/modules.order`,
      );
    }
    await Deno.rename(found.vmlinuz, join(tmp, "vmlinuz"));
    await Deno.mkdir(join(tmp, "lib", "modules"), { recursive: true });
    await Deno.rename(found.modulesDir, join(tmp, "lib", "modules", found.release));
    await Deno.remove(join(tmp, "x"), { recursive: true });
    await ensureTools([DEPMOD]);
    await exec(["depmod", "-b", tmp, found.release], {
      action: `Cannot index the modules of kernel "${found.release}"`,
      timeoutMs: 300_000,
    });
    const meta = { release: found.release, ref, unpackedAt: new Date().toISOString() };
    await Deno.writeTextFile(join(tmp, "kernel.json"), JSON.stringify(meta, null, 2) + "\n");
    try {
      await Deno.rename(tmp, dir);
    } catch (err) {
      // Another process unpacked the same kernel meanwhile: keep theirs.
      if (!(await readUnpacked(dir))) throw err;
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Extracts a .deb's data into `dest`: `dpkg-deb -x` when present, else `ar` + `tar`. */
async function extractDeb(deb: string, dest: string): Promise<void> {
  const action = `Cannot extract "${deb}"`;
  if (await hasCommand("dpkg-deb")) {
    await exec(["dpkg-deb", "-x", deb, dest], { action, timeoutMs: 300_000 });
    return;
  }
  const list = new TextDecoder().decode(
    (await exec(["ar", "t", deb], { action, timeoutMs: 30_000 })).stdout,
  ).split("\n");
  const member = list.find((m) => /^data\.tar(\.(xz|zst|gz))?$/.test(m));
  if (!member) {
    throw new Error(`${action}: it has no data.tar.* member (members: ${list.join(", ")})`);
  }
  const data = (await exec(["ar", "p", deb, member], { action, timeoutMs: 120_000 })).stdout;
  const z = member.endsWith(".xz")
    ? ["-J"]
    : member.endsWith(".zst")
    ? ["--zstd"]
    : member.endsWith(".gz")
    ? ["-z"]
    : [];
  await exec(["tar", ...z, "-x", "-f", "-", "-C", dest], {
    stdin: data,
    action,
    timeoutMs: 300_000,
  });
}

/** A kernel the archive offers, and whether it is cached. */
export interface OfferedKernel extends DebianKernel {
  /** The series it belongs to (`5.10`, …, `sid`), if any. */
  series: string | undefined;
  /** Whether it is unpacked in the cache. */
  cached: boolean;
}

/** What {@linkcode listKernels} found. */
export interface KernelListing {
  /** Unpacked kernels in the cache, by release. */
  cached: Array<{ release: string; dir: string; ref: KernelRef }>;
  /** Generic amd64 kernels the known suites offer, newest first per suite. */
  offered: OfferedKernel[];
}

/**
 * What is cached and what the archive offers (for `deno task lab kernels`).
 *
 * @param options the cache root; `offline: true` reads only cached indexes.
 * @throws {DownloadError} when an index cannot be fetched (unless offline;
 *   offline, suites never fetched are left out).
 */
export async function listKernels(options: ResolveOptions = {}): Promise<KernelListing> {
  const cacheDir = options.cacheDir ?? defaultKernelCacheDir();
  const cached: KernelListing["cached"] = [];
  try {
    for await (const e of Deno.readDir(join(cacheDir, "unpacked"))) {
      if (!e.isDirectory || e.name.includes(".tmp-")) continue;
      const dir = join(cacheDir, "unpacked", e.name);
      try {
        const meta = JSON.parse(await Deno.readTextFile(join(dir, "kernel.json")));
        cached.push({ release: meta.release, dir, ref: meta.ref });
      } catch { /* incomplete: not listed */ }
    }
  } catch { /* no cache yet */ }
  cached.sort((a, b) => a.release.localeCompare(b.release));
  const offered: OfferedKernel[] = [];
  for (const suite of DEBIAN_SUITES) {
    let kernels: DebianKernel[];
    try {
      kernels = await loadSuiteKernels(suite, options);
    } catch (err) {
      if (options.offline) continue;
      throw err;
    }
    for (const k of kernels) {
      const series = Object.entries(DEBIAN_SERIES).find(([s, suites]) =>
        suites.includes(k.suite) && (s === "sid" || k.upstream.startsWith(`${s}.`))
      )?.[0];
      const isCached = cached.some((c) =>
        c.ref.kind === "debian" && c.ref.release === k.release && c.ref.version === k.version
      );
      offered.push({ ...k, series, cached: isCached });
    }
  }
  return { cached, offered };
}
