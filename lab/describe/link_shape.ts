/**
 * What one direction of a link is (a one-way delay, jitter, random loss, a
 * rate limit) and its validation, shared by the definition (`links` of an
 * experiment, checked when it is defined and planned) and the topology that
 * builds it (`lab/topology/shaping/`). Pure: it loads nothing.
 * @module
 */

/** Properties of one direction of a link: packets leaving a namespace through one interface. */
export interface LinkShape {
  /** One-way delay added to every packet, in ms: 0 to 60,000 (µs resolution). Default 0. */
  delayMs?: number;
  /**
   * Half-width of a uniform jitter around the delay, in ms: 0 to `delayMs`.
   * Packets keep their order (see `delay_line.ts`). Default 0.
   */
  jitterMs?: number;
  /** Random loss, in percent: 0 to 100, resolution 0.0001 (one in a million). Default 0. */
  lossPercent?: number;
  /** A rate limit in kbit/s (1000 bits), a positive integer; omitted = no limit. */
  rateKbit?: number;
  /** With `rateKbit`: how much the rate limiter queues, in ms at that rate (1 to 10,000). Default 100. */
  rateQueueMs?: number;
}

/** A {@linkcode LinkShape} with every default filled in. */
export interface NormalizedShape {
  /** One-way delay, ms. */
  delayMs: number;
  /** Half-width of the uniform jitter, ms. */
  jitterMs: number;
  /** Random loss, percent. */
  lossPercent: number;
  /** Rate limit in kbit/s, or undefined for none. */
  rateKbit: number | undefined;
  /** The rate limiter's queue, in ms at the rate. */
  rateQueueMs: number;
}

/** The fields of a {@linkcode LinkShape}, in the order messages list them. */
export const SHAPE_FIELDS = [
  "delayMs",
  "jitterMs",
  "lossPercent",
  "rateKbit",
  "rateQueueMs",
] as const;
/** Loss is drawn as `numgen random mod LOSS_SCALE < N`: a resolution of one in a million. */
export const LOSS_SCALE = 1_000_000;
/** The longest one-way delay. */
export const MAX_DELAY_MS = 60_000;
/** Default for `rateQueueMs`. */
export const DEFAULT_RATE_QUEUE_MS = 100;

/** What is wrong with a shape: the field (when one is to blame), the detail, and its kind. */
export interface ShapeProblem {
  /** The field at fault, or undefined when the shape itself is not an object. */
  field: (typeof SHAPE_FIELDS)[number] | undefined;
  /** What is wrong and what is valid, e.g. `delayMs "-1" must be from 0 to 60000`. */
  detail: string;
  /** `type`: not an object, an unknown field, not a number; `range`: a value out of range. */
  kind: "type" | "range";
}

/**
 * Checks a shape without throwing.
 *
 * @returns the first problem, or undefined for a valid shape.
 */
export function shapeProblem(shape: unknown): ShapeProblem | undefined {
  if (typeof shape !== "object" || shape === null || Array.isArray(shape)) {
    return {
      field: undefined,
      detail: `the shape must be an object, got ${JSON.stringify(shape)}`,
      kind: "type",
    };
  }
  const s = shape as Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (!(SHAPE_FIELDS as readonly string[]).includes(key)) {
      return {
        field: undefined,
        detail: `unknown field "${key}" (valid fields: ${SHAPE_FIELDS.join(", ")})`,
        kind: "type",
      };
    }
  }
  for (const field of SHAPE_FIELDS) {
    const v = s[field];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v))) {
      return {
        field,
        detail: `field "${field}" must be a finite number, got "${v}"`,
        kind: "type",
      };
    }
  }
  const n = fill(s as LinkShape);
  const range = (field: ShapeProblem["field"], detail: string): ShapeProblem => ({
    field,
    detail,
    kind: "range",
  });
  if (n.delayMs < 0 || n.delayMs > MAX_DELAY_MS) {
    return range("delayMs", `delayMs "${n.delayMs}" must be from 0 to ${MAX_DELAY_MS}`);
  }
  if (n.jitterMs < 0 || n.jitterMs > n.delayMs) {
    return range(
      "jitterMs",
      `jitterMs "${n.jitterMs}" must be from 0 to delayMs (${n.delayMs}); raise delayMs or lower the jitter`,
    );
  }
  if (n.lossPercent < 0 || n.lossPercent > 100) {
    return range("lossPercent", `lossPercent "${n.lossPercent}" must be from 0 to 100`);
  }
  if (n.lossPercent > 0 && Math.round(n.lossPercent * (LOSS_SCALE / 100)) === 0) {
    return range(
      "lossPercent",
      `lossPercent "${n.lossPercent}" is below the resolution of 0.0001 (one in a million)`,
    );
  }
  if (n.rateKbit !== undefined && (!Number.isInteger(n.rateKbit) || n.rateKbit < 1)) {
    return range("rateKbit", `rateKbit "${n.rateKbit}" must be a positive integer`);
  }
  if (n.rateQueueMs < 1 || n.rateQueueMs > 10_000) {
    return range("rateQueueMs", `rateQueueMs "${n.rateQueueMs}" must be from 1 to 10000`);
  }
  if (s.rateQueueMs !== undefined && n.rateKbit === undefined) {
    return range("rateQueueMs", "rateQueueMs needs rateKbit (the queue is the rate limiter's)");
  }
  return undefined;
}

/**
 * Checks a shape and fills in its defaults.
 *
 * @param shape the declared shape.
 * @param where what is being shaped, for messages (e.g. `link "veth1" in "bl-1-ab-server"`).
 * @returns the shape with defaults.
 * @throws {TypeError} for a shape that is not an object, an unknown field or a non-number.
 * @throws {RangeError} for a value out of range, naming the field, the value and what is valid.
 */
export function normalizeShape(shape: LinkShape, where: string): NormalizedShape {
  const problem = shapeProblem(shape);
  if (problem) {
    const message = `Cannot shape ${where}: ${problem.detail}`;
    throw problem.kind === "type" ? new TypeError(message) : new RangeError(message);
  }
  return fill(shape);
}

function fill(shape: LinkShape): NormalizedShape {
  return {
    delayMs: shape.delayMs ?? 0,
    jitterMs: shape.jitterMs ?? 0,
    lossPercent: shape.lossPercent ?? 0,
    rateKbit: shape.rateKbit,
    rateQueueMs: shape.rateQueueMs ?? DEFAULT_RATE_QUEUE_MS,
  };
}

/** Whether the shape delays packets at all. */
export function delays(shape: NormalizedShape): boolean {
  return shape.delayMs > 0;
}

/** Whether the shape changes anything (delay, loss or a rate). */
export function shapes(shape: NormalizedShape): boolean {
  return shape.delayMs > 0 || shape.lossPercent > 0 || shape.rateKbit !== undefined;
}
