/**
 * Making sure the optional tools an experiment needs (`nft`, `tcpdump`, and
 * `iptables` for link delay on kernels without netem) are installed: with
 * apt-get on Debian and Ubuntu when running as root, otherwise a
 * {@linkcode PreflightError} that says how to install each.
 * @module
 */
import { hasCommand, run } from "../base/command.ts";
import { PreflightError } from "../base/errors.ts";

/** A command the lab needs, the Debian/Ubuntu package that has it, and what for. */
export interface ToolNeed {
  /** The executable looked up on PATH, e.g. `nft`. */
  command: string;
  /** The Debian/Ubuntu package that installs it, e.g. `nftables`. */
  debianPackage: string;
  /** What the lab uses it for, e.g. `packet rules`. */
  why: string;
}

/** Options of {@linkcode ensureTools}. */
export interface EnsureToolsOptions {
  /** Where the one "Installing …" line goes; default `console.error`. */
  log?: (line: string) => void;
  /** Install missing tools when possible; default `true`. */
  install?: boolean;
  /** The text of `/etc/os-release` (for tests); default: read the file. */
  osRelease?: string;
  /** Whether this process is root (for tests); default: uid 0. */
  isRoot?: boolean;
}

/** What {@linkcode ensureTools} did. */
export interface EnsureToolsResult {
  /** The Debian packages it installed; empty when every command was present. */
  installed: string[];
}

/** `nft`, for the packet-drop rules of `lab/wire.ts`. */
export const NFT: ToolNeed = { command: "nft", debianPackage: "nftables", why: "packet rules" };
/** `tcpdump`, for packet captures. */
export const TCPDUMP: ToolNeed = {
  command: "tcpdump",
  debianPackage: "tcpdump",
  why: "packet capture",
};

/**
 * `iptables` (and `ip6tables`), for the NFQUEUE rule that hands a link's
 * packets to the delayer where the kernel has no netem (`shaping/`).
 */
export const IPTABLES: ToolNeed = {
  command: "iptables",
  debianPackage: "iptables",
  why: "link delay without netem (NFQUEUE)",
};
/** `tc`, for netem and tbf (iproute2, which the lab needs anyway for `ip`). */
export const TC: ToolNeed = { command: "tc", debianPackage: "iproute2", why: "link shaping (tc)" };

/** An install that may take a while on a slow mirror. */
const APT_TIMEOUT_MS = 10 * 60_000;
/** apt-get's complaints that mean its package lists are missing or stale. */
const STALE_LISTS =
  /Unable to locate package|has no installation candidate|is not available|Failed to fetch|apt-get update/i;

/**
 * Ensures every command of `needs` is on PATH. For each missing one: on
 * Debian/Ubuntu (by `/etc/os-release` `ID` / `ID_LIKE`), as root, with
 * apt-get present and `install` not false, installs their packages with one
 * `apt-get install -y --no-install-recommends …` (running `apt-get update`
 * first only when the install fails for missing package lists), logging
 * one line, then checks the commands exist.
 *
 * @param needs the commands to ensure.
 * @param options logging, whether to install, and overrides for tests.
 * @returns the packages installed.
 * @throws {PreflightError} listing each missing command with the exact
 *   command that installs it, when it cannot or may not install them or
 *   the install fails.
 *
 * @example Make sure nft and tcpdump are there
 * ```ts ignore
 * import { ensureTools, NFT, TCPDUMP } from "./packages.ts";
 *
 * const { installed } = await ensureTools([NFT, TCPDUMP]);
 * // On a fresh Debian box, as root, this printed:
 * // Installing nftables tcpdump with apt-get (needed for packet rules, packet capture)…
 * ```
 */
export async function ensureTools(
  needs: readonly ToolNeed[],
  options: EnsureToolsOptions = {},
): Promise<EnsureToolsResult> {
  const missing: ToolNeed[] = [];
  for (const need of needs) {
    if (missing.some((m) => m.command === need.command)) continue;
    if (!await hasCommand(need.command)) missing.push(need);
  }
  if (missing.length === 0) return { installed: [] };

  const osRelease = options.osRelease ?? readOsRelease();
  const debian = isDebianLike(osRelease);
  const isRoot = options.isRoot ?? Deno.uid() === 0;
  const canInstall = debian && isRoot && (options.install ?? true) && await hasCommand("apt-get");
  if (!canInstall) throw new PreflightError(missing.map((m) => missingProblem(m, debian)));

  const packages = [...new Set(missing.map((m) => m.debianPackage))];
  const whys = [...new Set(missing.map((m) => m.why))];
  (options.log ?? console.error)(
    `Installing ${packages.join(" ")} with apt-get (needed for ${whys.join(", ")})…`,
  );
  const apt = (args: string[]) =>
    run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", ...args], {
      allowFailure: true,
      timeoutMs: APT_TIMEOUT_MS,
    });
  const installArgs = ["install", "-y", "--no-install-recommends", ...packages];
  let result = await apt(installArgs);
  if (result.code !== 0 && STALE_LISTS.test(result.stderr + result.stdout)) {
    const update = await apt(["update"]);
    result = update.code === 0 ? await apt(installArgs) : update;
  }
  if (result.code !== 0) {
    const tail = result.stderr.trim().split("\n").slice(-3).join(" | ");
    throw new PreflightError(
      missing.map((m) =>
        `${missingProblem(m, true)} (apt-get exited with ${result.code}: ${
          tail || "no error text"
        })`
      ),
    );
  }
  const still: string[] = [];
  for (const m of missing) {
    if (!await hasCommand(m.command)) {
      still.push(
        `Installed the "${m.debianPackage}" package but the "${m.command}" command (needed for ${m.why}) is still not on PATH: check that PATH includes the directory the package installs it in (often /usr/sbin)`,
      );
    }
  }
  if (still.length) throw new PreflightError(still);
  return { installed: packages };
}

/** One PreflightError line: the missing command, what for, and how to install it. */
function missingProblem(m: ToolNeed, debian: boolean): string {
  const fix = debian
    ? `install it with \`sudo apt-get install -y ${m.debianPackage}\``
    : `install the package that provides "${m.command}" with your system's package manager (on Debian/Ubuntu it is "${m.debianPackage}")`;
  return `Missing the "${m.command}" command (needed for ${m.why}): ${fix}`;
}

function readOsRelease(): string {
  for (const path of ["/etc/os-release", "/usr/lib/os-release"]) {
    try {
      return Deno.readTextFileSync(path);
    } catch { /* try the next */ }
  }
  return "";
}

/** Whether os-release's `ID` or `ID_LIKE` names Debian or Ubuntu. */
function isDebianLike(osRelease: string): boolean {
  const field = (key: string) =>
    new RegExp(`^${key}=(.*)$`, "m").exec(osRelease)?.[1]?.trim().replace(/^(["'])(.*)\1$/, "$2")
      .toLowerCase().split(/\s+/) ?? [];
  return [...field("ID"), ...field("ID_LIKE")].some((id) => id === "debian" || id === "ubuntu");
}
