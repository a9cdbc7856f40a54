/**
 * Validates documents against `docs/results.schema.json` with ajv, for the
 * schema tests and the whole-run CLI test.
 * @module
 */
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import { ROOT } from "./_helpers.ts";

const SCHEMA = JSON.parse(await Deno.readTextFile(`${ROOT}docs/results.schema.json`));

export function compileSchema() {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  // ajv checks formats only once they are defined; strict mode rejects an unknown one.
  ajv.addFormat("date-time", (s: string) => ISO_8601.test(s) && !Number.isNaN(Date.parse(s)));
  return ajv.compile(SCHEMA);
}
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** ajv's errors, one line each: where, what, and the offending key or the allowed values. */
function describeErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
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

let compiled: ReturnType<typeof compileSchema> | undefined;

/** The schema's complaints about `doc`, readable; [] when it is valid. */
export function schemaErrors(doc: unknown): string[] {
  const validate = compiled ??= compileSchema();
  return validate(doc) ? [] : describeErrors(validate.errors);
}
