/**
 * A planned bound `[min, max]` (from `equals`, `atLeast`, `atMost`) in words.
 * @module
 */

/** `= 3`, `>= 1`, `<= 0`, `in [2, 5]`. */
export function describeBounds(min: number, max: number): string {
  if (min === max) return `= ${min}`;
  if (min === -Infinity) return `<= ${max}`;
  if (max === Infinity) return `>= ${min}`;
  return `in [${min}, ${max}]`;
}
