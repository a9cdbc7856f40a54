/**
 * Which kernel a spec names: a Debian series (`5.10`, `6.1`, `6.12`, `sid`),
 * an exact Debian kernel (`5.10.0-32`, `6.12.117+deb13`), a local `.deb`, or
 * a local directory with a `vmlinuz` and `lib/modules/<release>`.
 *
 * Debian kernels are found in the archive's `Packages` indexes: the generic
 * `amd64` flavour's unsigned image (`linux-image-<release>-unsigned`), or, in
 * suites that split it (sid), `linux-binary-unsigned-<release>` with
 * `linux-modules-<release>`. The cloud flavour lacks 9p, so it is never
 * picked.
 * @module
 */
import { join } from "node:path";
import { compareDebianVersions } from "./_debian_version.ts";
import { type BoundedFetchOptions, fetchBytes } from "./_fetch.ts";
import { parseDeb822 } from "./deb822.ts";
import { DownloadError, KernelSpecError } from "./errors.ts";
import { exec } from "./_exec.ts";

/** An archive suite: where its index and files are. */
export interface DebianSuite {
  /** The suite's name, e.g. `bullseye-security`. */
  name: string;
  /** The archive's base URL, e.g. `https://security.debian.org/debian-security`. */
  base: string;
}

/** The suites the resolver knows, in the order it searches them. */
export const DEBIAN_SUITES: readonly DebianSuite[] = [
  { name: "bullseye", base: "https://deb.debian.org/debian" },
  { name: "bullseye-security", base: "https://security.debian.org/debian-security" },
  { name: "bookworm", base: "https://deb.debian.org/debian" },
  { name: "bookworm-security", base: "https://security.debian.org/debian-security" },
  { name: "trixie", base: "https://deb.debian.org/debian" },
  { name: "trixie-security", base: "https://security.debian.org/debian-security" },
  { name: "sid", base: "https://deb.debian.org/debian" },
];

/** A series and the suites whose own kernels are of that series (backports elsewhere are ignored). */
export const DEBIAN_SERIES: Readonly<Record<string, readonly string[]>> = {
  "5.10": ["bullseye", "bullseye-security"],
  "6.1": ["bookworm", "bookworm-security"],
  "6.12": ["trixie", "trixie-security"],
  "sid": ["sid"],
};

/** One file of the archive, as its index describes it. */
export interface DebianFile {
  /** The package name, e.g. `linux-image-5.10.0-32-amd64-unsigned`. */
  package: string;
  /** The package version, e.g. `5.10.223-1`. */
  version: string;
  /** `Filename:` of the index, under the archive's base, e.g. `pool/main/l/linux/….deb`. */
  filename: string;
  /** The full URL. */
  url: string;
  /** SHA256 from the index (hex). */
  sha256: string;
  /** Size in bytes from the index. */
  size: number;
}

/** A Debian kernel the archive offers. */
export interface DebianKernel {
  /** The release as `uname -r` prints it, e.g. `5.10.0-32-amd64`. */
  release: string;
  /** The ABI name, the release without the flavour, e.g. `5.10.0-32` or `7.2.13+deb14`. */
  abi: string;
  /** The package version, e.g. `5.10.223-1`. */
  version: string;
  /** The upstream kernel version, e.g. `5.10.223`. */
  upstream: string;
  /** The suite it came from, e.g. `bullseye-security`. */
  suite: string;
  /** The image package first; when the suite splits them (sid), then `linux-modules-…` and `linux-base-…`. */
  packages: DebianFile[];
}

/** A resolved kernel spec. */
export type KernelRef =
  | ({ kind: "debian"; spec: string } & DebianKernel)
  | {
    kind: "deb";
    spec: string;
    /** Absolute path of the local `.deb`. */
    path: string;
    /** The release from the package name. */
    release: string;
    /** The package name and version from its control file. */
    package: string;
    version: string;
  }
  | {
    kind: "dir";
    spec: string;
    /** Absolute path of the kernel image. */
    vmlinuz: string;
    /** Absolute path of `…/lib/modules/<release>`. */
    modulesDir: string;
    /** The release: the modules directory's name. */
    release: string;
  };

const IMAGE = /^linux-image-(\d+\.\d+\.\d+[^\s]*-amd64)-unsigned$/;
const BINARY = /^linux-binary-unsigned-(\d+\.\d+\.\d+[^\s]*-amd64)$/;
/** Flavours other than the generic one end in `-<flavour>-amd64`. */
const OTHER_FLAVOUR = /-(cloud|rt)-amd64$/;

/** Whether a raw stanza may be a kernel package (cheap filter before parsing). */
export function mayBeKernelStanza(raw: string): boolean {
  return /^Package: linux-(image|binary-unsigned|modules|base)-\d/.test(raw) &&
    raw.includes("amd64");
}

/**
 * The generic amd64 kernels of one suite's `Packages` index.
 *
 * @param text the index text (the whole index, or only its kernel stanzas).
 * @param suite the suite it belongs to.
 * @returns one entry per kernel release, newest first.
 *
 * @example A recorded excerpt
 * ```ts ignore
 * const kernels = kernelsFromIndex(await Deno.readTextFile("bullseye.Packages"), DEBIAN_SUITES[0]!);
 * kernels[0]!.release; // "5.10.0-32-amd64"
 * ```
 */
export function kernelsFromIndex(text: string, suite: DebianSuite): DebianKernel[] {
  const stanzas = parseDeb822(text, mayBeKernelStanza);
  const file = (s: Record<string, string>): DebianFile | undefined => {
    const { Package: pkg, Version: version, Filename: filename, SHA256: sha256, Size: size } = s;
    if (!pkg || !version || !filename || !sha256 || !size) return undefined;
    return {
      package: pkg,
      version,
      filename,
      url: `${suite.base}/${filename}`,
      sha256,
      size: Number(size),
    };
  };
  const modules = new Map<string, DebianFile>();
  for (const s of stanzas) {
    const f = file(s);
    if (f && /^linux-(modules|base)-\d/.test(f.package)) {
      modules.set(`${f.package}=${f.version}`, f);
    }
  }
  const kernels: DebianKernel[] = [];
  for (const s of stanzas) {
    const f = file(s);
    if (!f) continue;
    const image = IMAGE.exec(f.package);
    const binary = BINARY.exec(f.package);
    const release = image?.[1] ?? binary?.[1];
    if (release === undefined || OTHER_FLAVOUR.test(release)) continue;
    const packages = [f];
    if (binary) {
      // A split image needs its modules, and linux-base for modules.builtin and modules.order.
      const mods = modules.get(`linux-modules-${release}=${f.version}`);
      const base = modules.get(`linux-base-${release}=${f.version}`);
      if (!mods || !base) continue;
      packages.push(mods, base);
    }
    kernels.push({
      release,
      abi: release.replace(/-amd64$/, ""),
      version: f.version,
      upstream: upstreamOf(f.version),
      suite: suite.name,
      packages,
    });
  }
  return kernels.sort((a, b) => compareDebianVersions(b.version, a.version));
}

/** `5.10.223-1` → `5.10.223`; `6.12.115-2~deb12u1` → `6.12.115`. */
function upstreamOf(version: string): string {
  const noEpoch = version.replace(/^\d+:/, "");
  const dash = noEpoch.lastIndexOf("-");
  return dash > 0 ? noEpoch.slice(0, dash) : noEpoch;
}

/** A spec split into a Debian series or exact name, and an optional `@suite`. */
interface DebianSpec {
  what: string;
  suite: string | undefined;
}

function splitSuite(spec: string): DebianSpec {
  const at = spec.lastIndexOf("@");
  return at > 0
    ? { what: spec.slice(0, at), suite: spec.slice(at + 1) }
    : { what: spec, suite: undefined };
}

/**
 * The suites whose indexes must be read to resolve `spec` (a Debian spec,
 * not a local path): the series' suites, the `@suite`, or all of them for an
 * exact name of an unknown series.
 */
export function suitesFor(spec: string): DebianSuite[] {
  const { what, suite } = splitSuite(spec);
  if (suite !== undefined) return DEBIAN_SUITES.filter((s) => s.name === suite);
  const names = DEBIAN_SERIES[what] ?? DEBIAN_SERIES[/^(\d+\.\d+)\./.exec(what)?.[1] ?? ""];
  return names ? DEBIAN_SUITES.filter((s) => names.includes(s.name)) : [...DEBIAN_SUITES];
}

/**
 * Picks the kernel a Debian spec names among `kernels` (pure; no I/O).
 *
 * - a series (`5.10`, `6.1`, `6.12`, `sid`): the newest kernel of that
 *   series in the series' suites (for 5.10: bullseye and bullseye-security);
 *   `5.10@bullseye` restricts it to one suite;
 * - an exact kernel: its ABI name (`5.10.0-32`, `7.2.13+deb14`), its release
 *   (`5.10.0-32-amd64`), its package version (`5.10.223-1`) or its upstream
 *   version (`5.10.223`).
 *
 * @param spec the spec.
 * @param kernels every kernel of the suites {@linkcode suitesFor} names.
 * @returns the kernel, with the spec.
 * @throws {KernelSpecError} naming the spec and listing the series, suites
 *   and kernels that exist.
 */
export function pickKernel(spec: string, kernels: readonly DebianKernel[]): KernelRef {
  const { what, suite } = splitSuite(spec);
  if (suite !== undefined && !DEBIAN_SUITES.some((s) => s.name === suite)) {
    throw new KernelSpecError(
      spec,
      `Cannot resolve kernel "${spec}": unknown suite "${suite}" (known suites: ${
        DEBIAN_SUITES.map((s) => s.name).join(", ")
      })`,
    );
  }
  const inSuite = kernels.filter((k) => suite === undefined || k.suite === suite);
  const seriesSuites = DEBIAN_SERIES[what];
  let found: DebianKernel[];
  if (seriesSuites) {
    found = inSuite.filter((k) =>
      seriesSuites.includes(k.suite) && (what === "sid" || k.upstream.startsWith(`${what}.`))
    );
  } else {
    found = inSuite.filter((k) =>
      k.abi === what || k.release === what || k.version === what || k.upstream === what
    );
  }
  // Newest first; for the same version, the suite order of DEBIAN_SUITES.
  const rank = (s: string) => DEBIAN_SUITES.findIndex((x) => x.name === s);
  found.sort((a, b) =>
    compareDebianVersions(b.version, a.version) || rank(a.suite) - rank(b.suite)
  );
  const best = found[0];
  if (best) return { kind: "debian", spec, ...best };
  throw new KernelSpecError(spec, `Cannot resolve kernel "${spec}": ${describeOffer(kernels)}`);
}

/** "no Debian amd64 kernel matches; series: …; kernels offered: …; or a path". */
function describeOffer(kernels: readonly DebianKernel[]): string {
  const bySuite = new Map<string, string[]>();
  for (const k of kernels) bySuite.set(k.suite, [...(bySuite.get(k.suite) ?? []), k.abi]);
  const offered = [...bySuite].map(([s, abis]) => `${s}: ${abis.join(", ")}`).join("; ");
  return `no generic amd64 Debian kernel matches it (series: ${
    Object.keys(DEBIAN_SERIES).join(", ")
  }; kernels offered${
    kernels.length ? ` — ${offered}` : ": none in the suites read"
  }); or give a path to a .deb or to a directory with vmlinuz and lib/modules/<release>`;
}

/** Options of {@linkcode resolveKernel} and {@linkcode loadSuiteKernels}. */
export interface ResolveOptions extends BoundedFetchOptions {
  /** Cache root; default `$XDG_CACHE_HOME/backlog-lab/kernels` or `~/.cache/backlog-lab/kernels`. */
  cacheDir?: string;
  /** Reuse a cached index younger than this; default 6 h. 0 always refetches. */
  indexMaxAgeMs?: number;
  /** Use only cached indexes, whatever their age (no network). */
  offline?: boolean;
}

/** The default cache root of kernels: `$XDG_CACHE_HOME/backlog-lab/kernels` or `~/.cache/backlog-lab/kernels`. */
export function defaultKernelCacheDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME") ?? "/root";
  return join(xdg && xdg.startsWith("/") ? xdg : join(home, ".cache"), "backlog-lab", "kernels");
}

/**
 * The kernels of one suite, from its `Packages.xz` (cached, filtered to the
 * kernel stanzas, in `<cacheDir>/indexes/<suite>.Packages`).
 *
 * @throws {DownloadError} naming the index URL when it cannot be fetched or
 *   decompressed (and no cached copy may be used).
 */
export async function loadSuiteKernels(
  suite: DebianSuite,
  options: ResolveOptions = {},
): Promise<DebianKernel[]> {
  const dir = join(options.cacheDir ?? defaultKernelCacheDir(), "indexes");
  const cached = join(dir, `${suite.name}.Packages`);
  const url = `${suite.base}/dists/${suite.name}/main/binary-amd64/Packages.xz`;
  const maxAge = options.indexMaxAgeMs ?? 6 * 3600_000;
  const stat = await Deno.stat(cached).catch(() => undefined);
  const age = stat?.mtime ? Date.now() - stat.mtime.getTime() : Infinity;
  if (stat && (options.offline || age < maxAge)) {
    return kernelsFromIndex(await Deno.readTextFile(cached), suite);
  }
  if (options.offline) {
    throw new DownloadError(
      url,
      `Cannot read the index of "${suite.name}" offline: "${cached}" does not exist; run once with network access`,
    );
  }
  const xz = await fetchBytes(url, options);
  const r = await exec(["xz", "-dc"], { stdin: xz, allowFailure: true, timeoutMs: 120_000 }).catch(
    (err) => {
      throw new DownloadError(
        url,
        `Cannot decompress "${url}": ${err instanceof Error ? err.message : err}`,
      );
    },
  );
  if (r.code !== 0) {
    throw new DownloadError(
      url,
      `Cannot decompress "${url}": xz exited with ${r.code}: ${r.stderr.trim()}`,
    );
  }
  const text = new TextDecoder().decode(r.stdout);
  const kept = text.split(/\n[ \t]*\n/).filter(mayBeKernelStanza).join("\n\n") + "\n";
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${cached}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, kept);
  await Deno.rename(tmp, cached);
  return kernelsFromIndex(kept, suite);
}

/** Whether a spec is a local path rather than a Debian name. */
function isPathSpec(spec: string): boolean {
  return spec.startsWith("/") || spec.startsWith("./") || spec.startsWith("../") ||
    spec.startsWith("~") || spec.endsWith(".deb");
}

/**
 * Resolves a kernel spec to a {@linkcode KernelRef}: a local `.deb` or
 * directory by its path, a Debian name by reading the suites' indexes.
 *
 * @param spec e.g. `5.10`, `5.10@bullseye`, `6.12`, `sid`, `5.10.0-32`,
 *   `./linux-image-….deb`, `/srv/kernels/my-build`.
 * @returns the kernel, not yet downloaded (see `fetchKernel`).
 * @throws {KernelSpecError} when nothing matches, listing what exists.
 * @throws {DownloadError} when an index cannot be fetched.
 *
 * @example The newest 5.10
 * ```ts ignore
 * const ref = await resolveKernel("5.10");
 * // { kind: "debian", release: "5.10.0-46-amd64", suite: "bullseye-security", … }
 * ```
 */
export async function resolveKernel(
  spec: string,
  options: ResolveOptions = {},
): Promise<KernelRef> {
  if (spec.trim() === "") {
    throw new KernelSpecError(spec, `Cannot resolve kernel "": the spec is empty`);
  }
  if (isPathSpec(spec) || await isDirectory(spec)) return await resolveLocal(spec);
  const suites = suitesFor(spec);
  const kernels = (await Promise.all(suites.map((s) => loadSuiteKernels(s, options)))).flat();
  try {
    return pickKernel(spec, kernels);
  } catch (err) {
    // An exact name of a known series may still be in another suite (a backport).
    if (!(err instanceof KernelSpecError) || suites.length === DEBIAN_SUITES.length) throw err;
    if (splitSuite(spec).suite !== undefined || DEBIAN_SERIES[spec]) throw err;
    const rest = DEBIAN_SUITES.filter((s) => !suites.includes(s));
    const more = (await Promise.all(rest.map((s) => loadSuiteKernels(s, options)))).flat();
    return pickKernel(spec, [...kernels, ...more]);
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return (await Deno.stat(path).catch(() => undefined))?.isDirectory ?? false;
}

function expandHome(p: string): string {
  return p.startsWith("~/") ? join(Deno.env.get("HOME") ?? "/root", p.slice(2)) : p;
}

async function resolveLocal(spec: string): Promise<KernelRef> {
  const path = await Deno.realPath(expandHome(spec)).catch(() => {
    throw new KernelSpecError(spec, `Cannot resolve kernel "${spec}": no such file or directory`);
  });
  const st = await Deno.stat(path);
  if (st.isFile && path.endsWith(".deb")) {
    const r = await exec(["dpkg-deb", "--field", path, "Package", "Version"], {
      allowFailure: true,
      timeoutMs: 30_000,
    }).catch((err) => ({ code: -1, stdout: new Uint8Array(), stderr: String(err) }));
    const fields = Object.fromEntries(
      new TextDecoder().decode(r.stdout).split("\n").map((l) => l.split(/:\s*/, 2)).filter((kv) =>
        kv.length === 2
      ),
    ) as Record<string, string>;
    const pkg = fields["Package"] ?? "";
    const release = IMAGE.exec(pkg)?.[1] ?? /^linux-image-(.+)$/.exec(pkg)?.[1];
    if (r.code !== 0 || !release) {
      throw new KernelSpecError(
        spec,
        `Cannot use "${spec}" as a kernel: ${
          r.code !== 0
            ? `dpkg-deb cannot read it (${r.stderr.trim()})`
            : `its package "${pkg}" is not a linux-image package`
        }; give a linux-image-<release>[-unsigned] .deb that holds both the image and its modules`,
      );
    }
    return { kind: "deb", spec, path, release, package: pkg, version: fields["Version"] ?? "" };
  }
  if (st.isDirectory) {
    const found = await findLocalKernel(path);
    if (found) return { kind: "dir", spec, ...found };
    throw new KernelSpecError(
      spec,
      `Cannot use "${spec}" as a kernel: the directory holds no "vmlinuz" (or "boot/vmlinuz-<release>") beside "lib/modules/<release>/modules.order"`,
    );
  }
  throw new KernelSpecError(
    spec,
    `Cannot use "${spec}" as a kernel: give a .deb or a directory with vmlinuz and lib/modules/<release>`,
  );
}

/**
 * A directory laid out like an unpacked kernel: `lib/modules/<r>` (or
 * `usr/lib/modules/<r>`) with `modules.order`, and an image at `vmlinuz`,
 * `boot/vmlinuz-<r>`, or in the modules directory (`vmlinuz`, sid's
 * `vmlinuz.unsigned`).
 */
export async function findLocalKernel(
  dir: string,
): Promise<{ vmlinuz: string; modulesDir: string; release: string } | undefined> {
  for (const modRoot of ["lib/modules", "usr/lib/modules"]) {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(join(dir, modRoot)));
    } catch {
      continue;
    }
    for (
      const e of entries.filter((e) => e.isDirectory).sort((a, b) => a.name.localeCompare(b.name))
    ) {
      const release = e.name;
      const modulesDir = join(dir, modRoot, release);
      if (!(await Deno.stat(join(modulesDir, "modules.order")).catch(() => undefined))) continue;
      const images = ["vmlinuz", `boot/vmlinuz-${release}`];
      const inModules = ["vmlinuz", "vmlinuz.unsigned"].map((n) => join(modulesDir, n));
      for (const vmlinuz of [...images.map((v) => join(dir, v)), ...inModules]) {
        if ((await Deno.stat(vmlinuz).catch(() => undefined))?.isFile) {
          return { vmlinuz, modulesDir, release };
        }
      }
    }
  }
  return undefined;
}
