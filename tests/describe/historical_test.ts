/**
 * Unit tests of {@linkcode defineHistoricalClaims}, {@linkcode isHistorical}
 * and {@linkcode historicalResult}.
 * @module
 */
import assert, {
  deepStrictEqual as deepEqual,
  match,
  strictEqual as equal,
} from "node:assert/strict";
import {
  defineHistoricalClaims,
  type HistoricalClaims,
  historicalResult,
  isHistorical,
} from "../../lab/describe/historical.ts";
import { defineExperiment } from "../../lab/describe/validate.ts";
import { ExperimentDefinitionError } from "../../lab/base/errors.ts";

const WHY = "Linux before 2.2 kept one queue; the lab cannot boot a 2.0 kernel.";

function definition(claims: Record<string, unknown>, id = "old-kernels") {
  return { id, title: "Claims about kernels the lab cannot run", claims } as Omit<
    HistoricalClaims,
    "kind"
  >;
}

/** The error `fn` throws, which must be an ExperimentDefinitionError. */
function definitionError(fn: () => unknown): ExperimentDefinitionError {
  try {
    fn();
  } catch (err) {
    assert(
      err instanceof ExperimentDefinitionError,
      `expected an ExperimentDefinitionError: ${err}`,
    );
    return err;
  }
  throw new assert.AssertionError({ message: "expected an ExperimentDefinitionError" });
}

Deno.test("defineHistoricalClaims() marks a valid definition historical and keeps its fields", () => {
  const h = defineHistoricalClaims(definition({ "A1.1": WHY }));
  deepEqual(h, {
    kind: "historical",
    id: "old-kernels",
    title: "Claims about kernels the lab cannot run",
    claims: { "A1.1": WHY },
  });
});

Deno.test("defineHistoricalClaims() rejects bad ids and reasons, naming the field", () => {
  const cases: {
    name: string;
    def: Omit<HistoricalClaims, "kind">;
    field: string;
    says: RegExp;
  }[] = [
    {
      name: "a claim id not in the catalogue",
      def: definition({ "A9.9": WHY }),
      field: "claims.A9.9",
      says: /"A9\.9" is not in the claims catalogue/,
    },
    {
      name: "a claim id one digit off",
      def: definition({ "A1.10": WHY, "A1.111": WHY }),
      field: "claims.A1.111",
      says: /did you mean "A1\.11"\?/,
    },
    {
      name: "a short reason",
      def: definition({ "A1.1": "too old" }),
      field: "claims.A1.1",
      says: /give the reason the lab cannot run it, in a sentence/,
    },
    {
      name: "a reason of spaces",
      def: definition({ "A1.1": "             " }),
      field: "claims.A1.1",
      says: /give the reason/,
    },
    {
      name: "a reason that is not a string",
      def: definition({ "A1.1": 42 }),
      field: "claims.A1.1",
      says: /give the reason/,
    },
    {
      name: "an id that is not kebab-case",
      def: definition({ "A1.1": WHY }, "Old_Kernels"),
      field: "id",
      says: /"Old_Kernels" is not kebab-case/,
    },
  ];
  for (const c of cases) {
    const err = definitionError(() => defineHistoricalClaims(c.def));
    equal(err.field, c.field, c.name);
    match(err.message, c.says, c.name);
    match(err.message, new RegExp(`^Invalid experiment field "${c.field.replaceAll(".", "\\.")}"`));
  }
});

Deno.test("isHistorical() tells historical claims from experiments and other values", () => {
  equal(isHistorical(defineHistoricalClaims(definition({ "A1.1": WHY }))), true);
  equal(isHistorical({ kind: "historical" }), true);
  const experiment = defineExperiment({
    id: "an-experiment",
    title: "t",
    hypothesis: "h",
    hosts: { server: {}, client: {} },
    server: { host: "server", backlog: 1 },
    clients: [{ name: "c", host: "client", count: 1 }],
    observe: { intervalMs: 20, windowMs: 100 },
    expect: [{ name: "e", metric: "server.ESTABLISHED", equals: 1 }],
    claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "x" }) },
  });
  for (const v of [experiment, { kind: "experiment" }, {}, null, undefined, "historical", 1, []]) {
    equal(isHistorical(v), false, JSON.stringify(v));
  }
});

Deno.test("historicalResult() is a passed result with no runs and a historical verdict per claim", () => {
  const h = defineHistoricalClaims(definition({ "A1.1": WHY, "A1.2": `${WHY} Also BSD.` }));
  deepEqual(historicalResult(h, "experiments/historical_claims.ts"), {
    id: "old-kernels",
    title: "Claims about kernels the lab cannot run",
    hypothesis: "These claims concern systems the lab cannot run.",
    file: "experiments/historical_claims.ts",
    passed: true,
    mode: "default",
    durationMs: 0,
    runs: [],
    claims: {
      "A1.1": { verdict: "historical", evidence: WHY },
      "A1.2": { verdict: "historical", evidence: `${WHY} Also BSD.` },
    },
  });
});

Deno.test("historicalResult() leaves out file when none is given", () => {
  const r = historicalResult(defineHistoricalClaims(definition({ "A1.1": WHY })));
  assert(!("file" in r), "no file key");
  equal(r.passed, true);
  equal(r.skipped, undefined);
});
