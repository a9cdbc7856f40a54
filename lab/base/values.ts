/**
 * Small checks of untyped values (parsed JSON, definitions, program specs),
 * shared by every stage.
 * @module
 */

/** Whether `v` is a plain object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A value as an error message quotes it: `"text"`, `nothing`, `a function`, `an array`, JSON. */
export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return `"${v}"`;
  if (typeof v === "function") return "a function";
  return Array.isArray(v) ? "an array" : typeof v === "object" ? JSON.stringify(v) : String(v);
}
