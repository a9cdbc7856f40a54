/**
 * Unit tests of `lab/describe/link_shape.ts`: the field a shape's problem
 * names (definition errors point at it) and the defaults.
 * @module
 */
import { deepStrictEqual as deepEqual, strictEqual as equal } from "node:assert/strict";
import { normalizeShape, shapeProblem, shapes } from "../../lab/describe/link_shape.ts";

Deno.test("shapeProblem() names the field at fault and the kind of problem", () => {
  const cases: [unknown, string | undefined, "type" | "range"][] = [
    [null, undefined, "type"],
    [{ delay: 1 }, undefined, "type"],
    [{ delayMs: "1" }, "delayMs", "type"],
    [{ delayMs: Infinity }, "delayMs", "type"],
    [{ delayMs: 70_000 }, "delayMs", "range"],
    [{ delayMs: 1, jitterMs: 2 }, "jitterMs", "range"],
    [{ lossPercent: -1 }, "lossPercent", "range"],
    [{ rateKbit: 0 }, "rateKbit", "range"],
    [{ rateQueueMs: 10 }, "rateQueueMs", "range"],
  ];
  for (const [shape, field, kind] of cases) {
    const p = shapeProblem(shape);
    equal(p?.field, field, JSON.stringify(shape));
    equal(p?.kind, kind, JSON.stringify(shape));
  }
  equal(shapeProblem({ delayMs: 25, jitterMs: 5, lossPercent: 1, rateKbit: 1000 }), undefined);
});

Deno.test("shapes() is false only for a shape that changes nothing", () => {
  const n = (s: object) => normalizeShape(s, "x");
  equal(shapes(n({})), false);
  equal(shapes(n({ delayMs: 0, lossPercent: 0 })), false);
  deepEqual([n({ delayMs: 1 }), n({ lossPercent: 1 }), n({ rateKbit: 10 })].map(shapes), [
    true,
    true,
    true,
  ]);
});
