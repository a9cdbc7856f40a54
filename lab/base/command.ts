/**
 * Running short commands (ip, ss, sysctl) with their failures as
 * {@linkcode CommandError}.
 * @module
 */
import { CommandError } from "./errors.ts";
import { scaled } from "./time_scale.ts";

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** What the command was for, used as the error message's start. */
  action?: string;
  /** Text written to the command's stdin. */
  stdin?: string;
  /** Return the result instead of throwing when the exit code is not 0. */
  allowFailure?: boolean;
  /** Abort the command (SIGKILL) after this many milliseconds (default 15 s, stretched by the time scale). */
  timeoutMs?: number;
}

/** What a finished command printed. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` to completion and returns its output.
 *
 * @throws {CommandError} when it cannot start or exits non-zero (unless `allowFailure`).
 */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new TypeError("Cannot run an empty command");
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), options.timeoutMs ?? scaled(15_000));
  const signal = timeout.signal;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).spawn();
  } catch (err) {
    clearTimeout(timer);
    throw new CommandError(argv, null, String(err), options.action);
  }
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output().finally(() => clearTimeout(timer));
  const result = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (out.code !== 0 && !options.allowFailure) {
    throw new CommandError(argv, out.signal ? null : out.code, result.stderr, options.action);
  }
  return result;
}

/** Whether an executable is on PATH (as `command -v` sees it). */
export async function hasCommand(name: string): Promise<boolean> {
  try {
    const r = await run(["sh", "-c", `command -v "$1" >/dev/null`, "sh", name], {
      allowFailure: true,
    });
    return r.code === 0;
  } catch (err) {
    // No sh on PATH: then nothing can be found.
    if (err instanceof CommandError && err.code === null) return false;
    throw err;
  }
}
