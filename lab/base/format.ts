/**
 * How numbers and parameters are written in every report, defined once.
 * @module
 */

/** Milliseconds as seconds with `digits` decimals: `seconds(1234)` is `"1.23 s"`. */
export function seconds(ms: number, digits = 2): string {
  return `${(ms / 1000).toFixed(digits)} s`;
}

/** A matrix point as `name=value` pairs (`backlog=4 syncookies=1`); "" for a single run. */
export function paramsText(params: Record<string, unknown>, separator = " "): string {
  return Object.entries(params).map(([k, v]) => `${k}=${v}`).join(separator);
}

/** `1 run`, `2 runs`; `plural(3, "repeat")`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * How a run's variant is described: `fast` shortens what `shortened` says
 * (default `timers`, the kernel timers an experiment is not about),
 * `faithful` runs the full variant, `default` has no other variant ("").
 */
export function modeText(mode: "fast" | "faithful" | "default", shortened?: string): string {
  if (mode === "fast") return `shortened ${shortened ?? "timers"}`;
  if (mode === "faithful") return shortened ? "the full-length variant" : "the kernel's timers";
  return "";
}
