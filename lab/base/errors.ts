/**
 * Error classes that callers catch. Wrong shapes throw `TypeError` and
 * out-of-range values `RangeError` inside these, as the message says.
 * @module
 */

/** What a definition error is about: an experiment, or a claims file of the user's own. */
export type DefinitionSubject = "experiment" | "claims";

/** A definition that cannot run: names the file (when known), the field and the fix. */
export class ExperimentDefinitionError extends Error {
  /** Always `"ExperimentDefinitionError"`. */
  override name = "ExperimentDefinitionError";
  /** The field path inside the definition, e.g. `clients[0].count`. */
  readonly field: string;
  /** The experiment or claims file (`file:line` in a Markdown claims file), when known. */
  readonly file: string | undefined;
  /** The message without the file prefix. */
  readonly detail: string;
  /** Whether the definition is an experiment or a claims file (default `experiment`). */
  readonly subject: DefinitionSubject;

  /** Builds the message `<file>: Invalid <subject> field "<field>": <detail>`. */
  constructor(
    field: string,
    detail: string,
    options: { file?: string; subject?: DefinitionSubject } = {},
  ) {
    const where = options.file ? `${options.file}: ` : "";
    const subject = options.subject ?? "experiment";
    super(`${where}Invalid ${subject} field "${field}": ${detail}`);
    this.field = field;
    this.file = options.file;
    this.detail = detail;
    this.subject = subject;
  }

  /** The same error, attributed to a file. */
  inFile(file: string): ExperimentDefinitionError {
    return new ExperimentDefinitionError(this.field, this.detail, { file, subject: this.subject });
  }
}

/** A command the lab ran exited non-zero or could not start. */
export class CommandError extends Error {
  /** Always `"CommandError"`. */
  override name = "CommandError";
  /** The argv that failed. */
  readonly command: readonly string[];
  /** Exit code, or `null` when it did not start or was killed by a signal. */
  readonly code: number | null;
  /** What it printed on stderr (trimmed). */
  readonly stderr: string;

  /**
   * Builds the message from `action` (default "Command failed"), the argv, the exit code and
   * stderr's last 3 lines.
   */
  constructor(command: readonly string[], code: number | null, stderr: string, action?: string) {
    const what = action ?? "Command failed";
    const tail = stderr.trim() ? `: ${stderr.trim().split("\n").slice(-3).join(" | ")}` : "";
    super(`${what}: "${command.join(" ")}" exited with ${code ?? "a signal"}${tail}`);
    this.command = command;
    this.code = code;
    this.stderr = stderr;
  }
}

/** The machine cannot run the lab (not root, a missing tool, …); each problem carries its fix. */
export class PreflightError extends Error {
  /** Always `"PreflightError"`. */
  override name = "PreflightError";
  /** One line per problem, each ending with the fix. */
  readonly problems: readonly string[];

  /** Lists every problem in the message, one per line. */
  constructor(problems: readonly string[]) {
    super(`Cannot run the lab on this machine:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.problems = problems;
  }
}

/** A wait-until that ran out of time: names the condition and the last value seen. */
export class WaitTimeoutError extends Error {
  /** Always `"WaitTimeoutError"`. */
  override name = "WaitTimeoutError";
}

/**
 * Kernel text (a `/proc` table, `ss` or `nstat` output) the lab cannot parse:
 * it fails the run that read it, naming the file, never the whole lab.
 */
export class KernelTextError extends Error {
  /** Always `"KernelTextError"`. */
  override name = "KernelTextError";
  /** The file or command the text came from, when known. */
  readonly file: string | undefined;
  /** The message without the file. */
  readonly detail: string;

  /** Builds the message `<detail>` or `<detail> (in <file>)`. */
  constructor(detail: string, options: { file?: string } = {}) {
    super(options.file ? `${detail} (in ${options.file})` : detail);
    this.detail = detail;
    this.file = options.file;
  }

  /** The same error, naming the file it was read from. */
  inFile(file: string): KernelTextError {
    return new KernelTextError(this.detail, { file });
  }
}
