/**
 * Running a system tool with bytes in and out (xz, zstd, tar, depmod), bounded
 * in time; a missing tool is named with the package that installs it.
 * @module
 */
import { CommandError } from "../base/errors.ts";

/** Options of {@linkcode exec}. */
export interface ExecOptions {
  /** Bytes written to stdin. */
  stdin?: Uint8Array;
  /** Kill the tool (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
  /** The working directory. */
  cwd?: string;
  /** The error message's start, e.g. `Cannot extract "x.deb"`. */
  action?: string;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
}

/** What the tool printed. */
export interface ExecResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

/** Debian packages of the tools this layer runs, for "install it with" hints. */
const PACKAGE_OF: Record<string, string> = {
  xz: "xz-utils",
  zstd: "zstd",
  tar: "tar",
  ar: "binutils",
  "dpkg-deb": "dpkg",
  depmod: "kmod",
  "qemu-system-x86_64": "qemu-system-x86",
};

/**
 * Runs `argv` to completion.
 *
 * @throws {CommandError} when it cannot start (naming the package to
 *   install), times out, or exits non-zero (unless `allowFailure`).
 */
export async function exec(
  argv: readonly string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new TypeError("Cannot run an empty command");
  const timeoutMs = options.timeoutMs ?? 120_000;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).spawn();
  } catch (err) {
    clearTimeout(timer);
    const pkg = PACKAGE_OF[cmd.split("/").pop() ?? cmd];
    const hint = err instanceof Deno.errors.NotFound
      ? `"${cmd}" is not installed${pkg ? `: install it with \`apt-get install -y ${pkg}\`` : ""}`
      : String(err);
    throw new CommandError(argv, null, hint, options.action);
  }
  const writing = options.stdin
    ? (async () => {
      const w = child.stdin.getWriter();
      try {
        await w.write(options.stdin);
        await w.close();
      } catch { /* the tool exited early; its exit code says why */ }
    })()
    : Promise.resolve();
  const out = await child.output().finally(() => clearTimeout(timer));
  await writing;
  const stderr = new TextDecoder().decode(out.stderr);
  if (ac.signal.aborted) {
    throw new CommandError(
      argv,
      null,
      `timed out after ${timeoutMs} ms. ${stderr}`,
      options.action,
    );
  }
  if (out.code !== 0 && !options.allowFailure) {
    throw new CommandError(argv, out.signal ? null : out.code, stderr, options.action);
  }
  return { code: out.code, stdout: out.stdout, stderr };
}
