/**
 * Validates documents against `docs/results.schema.json`, with the validator
 * the lab itself uses (`lab/judge/load_report.ts`), for the schema tests and
 * the whole-run CLI test.
 * @module
 */
import { describeSchemaErrors, resultsValidator } from "../lab/judge/load_report.ts";

let compiled: ReturnType<typeof resultsValidator> | undefined;

/** The schema's complaints about `doc`, readable; [] when it is valid. */
export function schemaErrors(doc: unknown): string[] {
  const validate = compiled ??= resultsValidator();
  return validate(doc) ? [] : describeSchemaErrors(validate.errors);
}
