/**
 * Error classes of the kernel/VM layer that callers catch: a spec that names
 * no kernel (bad usage), a download that failed (names the URL), a guest that
 * did not boot or run (names the console log).
 * @module
 */

/** A kernel spec that names no kernel, or names one that cannot be used; the message lists what exists. */
export class KernelSpecError extends Error {
  /** Always `"KernelSpecError"`. */
  override name = "KernelSpecError";
  /** The spec as the user wrote it. */
  readonly spec: string;

  /**
   * Builds the error for `spec`.
   *
   * @param spec the spec as written.
   * @param message the whole message, naming the spec and what exists.
   */
  constructor(spec: string, message: string) {
    super(message);
    this.spec = spec;
  }
}

/** A download or archive index that could not be fetched or did not match its checksum. */
export class DownloadError extends Error {
  /** Always `"DownloadError"`. */
  override name = "DownloadError";
  /** The URL that failed. */
  readonly url: string;

  /**
   * Builds the error for `url`.
   *
   * @param url the URL that failed.
   * @param message the whole message (it names the URL).
   * @param options the cause.
   */
  constructor(url: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.url = url;
  }
}

/** Why a guest failed, for callers that retry or report. */
export type VmFailure =
  | "boot-timeout"
  | "boot-crash"
  | "run-timeout"
  | "no-exit-code"
  | "aborted"
  | "qemu";

/** A guest that did not boot, crashed, ran out of time or was aborted; the message names the console log. */
export class VmError extends Error {
  /** Always `"VmError"`. */
  override name = "VmError";
  /** What went wrong. */
  readonly failure: VmFailure;
  /** The console log of the guest (kernel and init messages). */
  readonly consoleLog: string;
  /** The last console lines, for messages. */
  readonly consoleTail: string;

  /**
   * Builds the message: `message`, the console log's path, its last lines.
   *
   * @param failure what went wrong.
   * @param message what failed, e.g. `Cannot boot kernel "5.10.0-32-amd64" (tcg, 2 attempts): …`.
   * @param consoleLog the console log's path.
   * @param consoleTail its last lines.
   * @param options the cause.
   */
  constructor(
    failure: VmFailure,
    message: string,
    consoleLog: string,
    consoleTail: string,
    options?: ErrorOptions,
  ) {
    super(
      `${message} (console log: "${consoleLog}")${
        consoleTail ? `; last console lines:\n${consoleTail}` : ""
      }`,
      options,
    );
    this.failure = failure;
    this.consoleLog = consoleLog;
    this.consoleTail = consoleTail;
  }
}
