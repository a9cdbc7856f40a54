/**
 * Reading a results document (what `deno task lab --json` prints, or
 * `results.json` of `--report DIR`) for `--compare`: read with a size bound,
 * parsed, and validated against the shipped JSON Schema
 * (`docs/results.schema.json`), the one description of the format.
 * @module
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import schema from "../../docs/results.schema.json" with { type: "json" };
import { isObject } from "../base/values.ts";
import type { KernelMatrixReport, LabReport } from "../results.ts";

/** The results-document format versions this backlog-lab reads. */
export const KNOWN_VERSIONS: readonly number[] = [1];

/**
 * Fields added within format version 1, which documents written before them lack:
 * the document's `machine` and `command`, and each run's `server`.
 */
const ADDED_IN_VERSION_1 = [["LabReport", ["machine", "command"]], ["RunResult", [
  "server",
]]] as const;

/** The largest results document read (a 10,000-connection run writes about 30 MB). */
export const MAX_REPORT_BYTES = 512 * 1024 * 1024;

const HOW = "give a results.json written by `deno task lab --report DIR`, " +
  "or a file saved from `deno task lab --json > FILE`";

/** A file that {@linkcode loadReport} cannot use: names the file and the fix. */
export class CompareInputError extends Error {
  /** Always `"CompareInputError"`. */
  override name = "CompareInputError";
  /** The path that was given. */
  readonly file: string;
  /** The message without the file prefix. */
  readonly detail: string;

  /** Builds the message `Cannot compare results file "<file>": <detail>`. */
  constructor(file: string, detail: string, options?: ErrorOptions) {
    super(`Cannot compare results file "${file}": ${detail}`, options);
    this.file = file;
    this.detail = detail;
  }
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The schema's validator. With `reader`, the fields added within version 1
 * are optional, so documents written before them still load.
 */
export function resultsValidator(options: { reader?: boolean } = {}): ValidateFunction {
  const s = structuredClone(schema) as {
    $defs: Record<string, { required?: string[] }>;
  };
  if (options.reader) {
    for (const [def, fields] of ADDED_IN_VERSION_1) {
      const node = s.$defs[def]!;
      node.required = (node.required ?? []).filter((f) =>
        !(fields as readonly string[]).includes(f)
      );
    }
  }
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  // ajv checks formats only once they are defined; strict mode rejects an unknown one.
  ajv.addFormat("date-time", (v: string) => ISO_8601.test(v) && !Number.isNaN(Date.parse(v)));
  return ajv.compile(s);
}

/** ajv's errors, one line each: where, what, and the offending key or the allowed values. */
export function describeSchemaErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const p = e.params as Record<string, unknown>;
    const extra = "additionalProperty" in p
      ? ` "${p.additionalProperty}"`
      : "allowedValues" in p
      ? ` ${JSON.stringify(p.allowedValues)}`
      : "allowedValue" in p
      ? ` ${JSON.stringify(p.allowedValue)}`
      : "";
    return `${e.instancePath || "(document)"}: ${e.message}${extra} (schema ${e.schemaPath})`;
  });
}

let reader: ValidateFunction | undefined;

/**
 * Reads, parses and validates a results document of one kernel. From a
 * `--kernel` run's document (a {@linkcode KernelMatrixReport}) it takes one
 * kernel's report: the path ends in `#<label>`, e.g. `out/results.json#6.1.192`.
 *
 * @param path The file to read, with `#<label>` to pick a kernel of a `--kernel` run.
 * @returns The document.
 * @throws {CompareInputError} The file is missing, unreadable, too large, not JSON, not a
 * backlog-lab results document, of a format version this backlog-lab does not know, or not
 * valid against the schema (the first problems are named).
 *
 * @example Load a saved run
 * ```ts ignore
 * import { loadReport } from "./load_report.ts";
 *
 * const report = await loadReport("out/results.json");
 * console.log(report.kernel, report.ledger.length);
 * ```
 */
export async function loadReport(path: string): Promise<LabReport> {
  const hash = path.lastIndexOf("#");
  const direct = await Deno.stat(path).then(() => true, () => false);
  const file = hash > 0 && !direct ? path.slice(0, hash) : path;
  const label = hash > 0 && !direct ? path.slice(hash + 1) : undefined;
  const doc = await loadResultsDocument(file);
  if (!("kernels" in doc)) {
    if (label !== undefined) {
      throw new CompareInputError(
        file,
        `it holds one kernel's results (Linux ${doc.kernel}), not a --kernel run's; give it without "#${label}"`,
      );
    }
    return doc;
  }
  const labels = doc.kernels.map((k) => k.label);
  const pick = (l: string) => `"${file}#${l}"`;
  if (label === undefined) {
    throw new CompareInputError(
      file,
      `it holds the results of ${doc.kernels.length} kernels (a --kernel run); compare two of them, e.g. ${
        labels.slice(0, 2).map(pick).join(" ")
      } (kernels: ${labels.join(", ")})`,
    );
  }
  const k = doc.kernels.find((x) => x.label === label);
  if (!k) {
    throw new CompareInputError(
      file,
      `it has no kernel "${label}"; its kernels are ${labels.map((l) => `"${l}"`).join(", ")}`,
    );
  }
  if (!k.report) {
    throw new CompareInputError(file, `kernel "${label}" did not run: ${k.error ?? "no report"}`);
  }
  return k.report;
}

/**
 * Reads, parses and validates a results document: one kernel's
 * ({@linkcode LabReport}) or a `--kernel` run's ({@linkcode KernelMatrixReport}).
 *
 * @throws {CompareInputError} as {@linkcode loadReport} does.
 */
export async function loadResultsDocument(
  path: string,
): Promise<LabReport | KernelMatrixReport> {
  const text = await readBounded(path);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const textReport = /^\s*backlog-lab on Linux/.test(text)
      ? "it is the text report; rerun with `--json` and save that, or "
      : "";
    throw new CompareInputError(path, `not JSON (${why}); ${textReport}${HOW}`, { cause: err });
  }
  const notResults = (what: string) =>
    new CompareInputError(path, `not a backlog-lab results document (${what}); ${HOW}`);
  if (!isObject(doc)) {
    throw notResults(`it is ${Array.isArray(doc) ? "an array" : `${doc}`}, not an object`);
  }
  const missing = ["version", "kernels" in doc ? "kernels" : "experiments", "ledger"].filter((k) =>
    !(k in doc)
  );
  if (missing.length === 3) throw notResults(`no "version", "experiments" or "ledger" field`);
  // A package.json has a "version" too: only a number, or a document with our other fields, is ours.
  const ours = typeof doc.version === "number" || missing.length < 2;
  if (!ours) throw notResults(`no ${missing.map((k) => `"${k}"`).join(" or ")} field`);
  if ("version" in doc && !KNOWN_VERSIONS.includes(doc.version as number)) {
    const known = KNOWN_VERSIONS.join(", ");
    throw new CompareInputError(
      path,
      `format version ${
        JSON.stringify(doc.version)
      } is unknown: this backlog-lab reads version ${known}; ` +
        `compare it with a backlog-lab that reads version ${JSON.stringify(doc.version)}`,
    );
  }
  if (missing.length) throw notResults(`no ${missing.map((k) => `"${k}"`).join(" or ")} field`);
  const validate = reader ??= resultsValidator({ reader: true });
  if (!validate(doc)) {
    const errors = describeSchemaErrors(validate.errors);
    throw notResults(
      `${errors.slice(0, 3).join("; ")}${
        errors.length > 3 ? `; and ${errors.length - 3} more` : ""
      } (format: docs/results.schema.json)`,
    );
  }
  return doc as unknown as LabReport | KernelMatrixReport;
}

/** The file's text, read to at most {@linkcode MAX_REPORT_BYTES}. */
async function readBounded(path: string): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CompareInputError(path, `no such file; ${HOW}`, { cause: err });
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new CompareInputError(path, `cannot read it (${why}); ${HOW}`, { cause: err });
  }
  try {
    if ((await file.stat()).isDirectory) {
      const inside = `${path.replace(/\/+$/, "")}/results.json`;
      throw new CompareInputError(
        path,
        `it is a directory; give the results file in it, e.g. "${inside}"`,
      );
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const buffer = new Uint8Array(1 << 20);
    for (;;) {
      let n: number | null;
      try {
        n = await file.read(buffer);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new CompareInputError(path, `cannot read it (${why}); ${HOW}`, { cause: err });
      }
      if (n === null) break;
      size += n;
      if (size > MAX_REPORT_BYTES) {
        throw new CompareInputError(
          path,
          `it is larger than ${
            MAX_REPORT_BYTES / 1024 / 1024
          } MiB, more than any results document; ${HOW}`,
        );
      }
      chunks.push(buffer.slice(0, n));
    }
    const all = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return new TextDecoder().decode(all);
  } finally {
    file.close();
  }
}
