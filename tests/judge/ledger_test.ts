/**
 * Unit tests of the claims ledger, and of the catalogue against the project's
 * CLAIMS.md where that file is present.
 * @module
 */
import assert, {
  deepStrictEqual as deepEqual,
  match,
  strictEqual as equal,
} from "node:assert/strict";
import { buildLedger } from "../../lab/judge/ledger.ts";
import { ARTICLES, claimById, CLAIMS } from "../../lab/describe/catalogue.ts";
import type { ClaimDecision, ExperimentResult } from "../../lab/results.ts";
import type { RunResult } from "../../lab/results.ts";
import { defineHistoricalClaims, historicalResult } from "../../lab/describe/historical.ts";

function experiment(
  id: string,
  claims: ExperimentResult["claims"],
  options: { passed?: boolean; skipped?: string } = {},
): ExperimentResult {
  const result: ExperimentResult = {
    id,
    title: `title of ${id}`,
    hypothesis: `hypothesis of ${id}`,
    passed: options.passed ?? true,
    mode: "default",
    durationMs: 10,
    runs: [],
    claims,
  };
  if (options.skipped !== undefined) result.skipped = options.skipped;
  return result;
}

const decide = (verdict: ClaimDecision["verdict"], evidence: string): ClaimDecision => ({
  verdict,
  evidence,
});

Deno.test("buildLedger() with one decider gives its verdict and evidence", () => {
  const ledger = buildLedger([
    experiment("e1", { "A0.2": decide("partly", "listen(2) queued 3") }),
  ]);
  deepEqual(ledger, [{
    claim: "A0.2",
    article: "A0",
    statement: claimById("A0.2")!.statement,
    verdict: "partly",
    evidence: "listen(2) queued 3",
    experiments: ["e1"],
  }]);
});

Deno.test("buildLedger() with two agreeing deciders joins their evidence", () => {
  const [entry, ...rest] = buildLedger([
    experiment("e1", { "A2.1": decide("reproduced", "3 of 5 connected") }),
    experiment("e2", { "A2.1": decide("reproduced", "Recv-Q 3") }),
  ]);
  equal(rest.length, 0);
  equal(entry!.claim, "A2.1");
  equal(entry!.verdict, "reproduced");
  equal(entry!.evidence, "e1: 3 of 5 connected; e2: Recv-Q 3");
  deepEqual(entry!.experiments, ["e1", "e2"]);
});

Deno.test("buildLedger() with two disagreeing deciders gives a conflict naming both", () => {
  const [entry] = buildLedger([
    experiment("e1", { "A1.12": decide("reproduced", "some SYNs got through") }),
    experiment("e2", { "A1.12": decide("not reproduced", "every SYN was dropped") }),
  ]);
  equal(entry!.verdict, "conflict");
  deepEqual(entry!.experiments, ["e1", "e2"]);
  equal(
    entry!.evidence,
    "experiments disagree: e1 says reproduced (some SYNs got through); " +
      "e2 says not reproduced (every SYN was dropped)",
  );
});

Deno.test("buildLedger() with three deciders, one disagreeing, is a conflict", () => {
  const [entry] = buildLedger([
    experiment("a", { "A4.2": decide("reproduced", "x") }),
    experiment("b", { "A4.2": decide("reproduced", "y") }),
    experiment("c", { "A4.2": decide("partly", "z") }),
  ]);
  equal(entry!.verdict, "conflict");
  match(entry!.evidence, /a says reproduced \(x\).*b says reproduced \(y\).*c says partly \(z\)/);
});

Deno.test("buildLedger(): a failed experiment's claims are undecided, naming its verdict", () => {
  const [entry] = buildLedger([
    experiment("e1", { "A0.2": decide("reproduced", "queued 3") }, { passed: false }),
  ]);
  equal(entry!.verdict, "undecided");
  deepEqual(entry!.experiments, ["e1"]);
  equal(
    entry!.evidence,
    `e1 failed its expectations, so its verdict "reproduced" does not stand (queued 3)`,
  );
});

Deno.test("buildLedger(): a failed experiment makes a claim undecided even if another agrees", () => {
  const [entry] = buildLedger([
    experiment("good", { "A0.2": decide("reproduced", "ok") }),
    experiment("bad", { "A0.2": decide("reproduced", "ok") }, { passed: false }),
  ]);
  equal(entry!.verdict, "undecided");
  deepEqual(entry!.experiments, ["good", "bad"]);
  match(entry!.evidence, /^bad failed its expectations/);
});

Deno.test("buildLedger(): a rule error makes the claim undecided, with the error", () => {
  const [entry] = buildLedger([
    experiment("e1", { "A4.1": { error: `no metric "server.recvQ" was observed` } }),
  ]);
  equal(entry!.verdict, "undecided");
  equal(entry!.evidence, `e1: no metric "server.recvQ" was observed`);
  deepEqual(entry!.experiments, ["e1"]);
});

Deno.test("buildLedger(): a rule error wins over a conflict and lists every problem", () => {
  const [entry] = buildLedger([
    experiment("e1", { "A4.1": decide("reproduced", "x") }),
    experiment("e2", { "A4.1": { error: "boom" } }),
    experiment("e3", { "A4.1": decide("not reproduced", "y") }, { passed: false }),
  ]);
  equal(entry!.verdict, "undecided");
  equal(
    entry!.evidence,
    `e2: boom; e3 failed its expectations, so its verdict "not reproduced" does not stand (y)`,
  );
  deepEqual(entry!.experiments, ["e1", "e2", "e3"]);
});

Deno.test("buildLedger() leaves out skipped experiments", () => {
  const exps = [
    experiment("skipped", { "A0.2": decide("reproduced", "x") }, { skipped: "needs root" }),
    experiment("ran", { "A0.2": decide("partly", "y") }),
  ];
  const [entry, ...rest] = buildLedger(exps);
  equal(rest.length, 0);
  equal(entry!.verdict, "partly");
  deepEqual(entry!.experiments, ["ran"]);
  deepEqual(buildLedger([exps[0]!]), []);
  equal(
    buildLedger([exps[0]!], { all: true }).find((e) => e.claim === "A0.2")!.verdict,
    "undecided",
  );
});

Deno.test("buildLedger() lists only decided claims by default, in catalogue order", () => {
  const ledger = buildLedger([
    experiment("e1", {
      "A4.1": decide("reproduced", "a"),
      "A1.10": decide("partly", "b"),
      "A0.2": decide("partly", "c"),
    }),
    experiment("e2", { "A1.2": decide("not reproduced", "d") }),
  ]);
  deepEqual(ledger.map((e) => e.claim), ["A0.2", "A1.2", "A1.10", "A4.1"]);
  deepEqual(ledger.map((e) => e.article), ["A0", "A1", "A1", "A4"]);
  deepEqual(buildLedger([]), []);
});

Deno.test("buildLedger({ all: true }) lists all 38 catalogue claims in catalogue order", () => {
  const ledger = buildLedger([experiment("e1", { "A1.3": decide("partly", "somaxconn 4096") })], {
    all: true,
  });
  equal(ledger.length, 38);
  equal(CLAIMS.length, 38);
  deepEqual(ledger.map((e) => e.claim), CLAIMS.map((c) => c.id));
  deepEqual(ledger.map((e) => e.statement), CLAIMS.map((c) => c.statement));
  for (const e of ledger) {
    if (e.claim === "A1.3") {
      equal(e.verdict, "partly");
      deepEqual(e.experiments, ["e1"]);
    } else {
      equal(e.verdict, "undecided", e.claim);
      equal(e.evidence, "no experiment of this run decides it");
      deepEqual(e.experiments, []);
    }
  }
});

Deno.test("the catalogue: unique A<article>.<n> ids, numbered from 1 per article, every article cited", () => {
  const ids = CLAIMS.map((c) => c.id);
  equal(new Set(ids).size, ids.length);
  for (const c of CLAIMS) {
    match(c.id, /^A\d+\.\d+$/);
    equal(c.id.split(".")[0], c.article);
    assert(ARTICLES.some((a) => a.id === c.article), c.article);
    equal(claimById(c.id), c);
  }
  for (const a of ARTICLES) {
    const nums = CLAIMS.filter((c) => c.article === a.id).map((c) => Number(c.id.split(".")[1]));
    deepEqual(nums, nums.map((_, i) => i + 1), a.id);
  }
  equal(claimById("A0.20"), undefined);
  equal(claimById("a0.2"), undefined);
});

// --- the catalogue mirrors CLAIMS.md ----------------------------------------

function findClaimsMd(): string | undefined {
  const candidates = [
    new URL("../../../shared/CLAIMS.md", import.meta.url).pathname,
    "/work/shared/CLAIMS.md",
  ];
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

const CLAIMS_MD = findClaimsMd();
if (CLAIMS_MD === undefined) {
  console.warn(
    "\n*** SKIPPING the CLAIMS.md sync test: neither ../shared/CLAIMS.md nor /work/shared/CLAIMS.md " +
      "exists, so lab/describe/catalogue.ts is NOT checked against it. ***\n",
  );
}

Deno.test({
  name:
    "lab/describe/catalogue.ts matches CLAIMS.md: the same ids, statements and articles, in order",
  ignore: CLAIMS_MD === undefined,
  fn: () => {
    const md = Deno.readTextFileSync(CLAIMS_MD!);
    const claims = [...md.matchAll(/^- \*\*(A\d+\.\d+)\*\* (.+)$/gm)].map((m) => ({
      id: m[1]!,
      statement: m[2]!.trim(),
    }));
    assert(claims.length > 0, "no claims found in CLAIMS.md");
    deepEqual(claims.map((c) => c.id), CLAIMS.map((c) => c.id));
    deepEqual(claims.map((c) => c.statement), CLAIMS.map((c) => c.statement));
    const articles = [...md.matchAll(/^## (A\d+) — `([^`]+)` \("?(.*?)"?\)$/gm)].map((m) => ({
      id: m[1]!,
      file: m[2]!,
      title: m[3]!,
    }));
    deepEqual(articles, ARTICLES.map((a) => ({ id: a.id, file: a.file, title: a.title })));
  },
});

// --- run conditions, run errors and historical claims -----------------------

/** A completed run of `mode`, with `error` when it could not complete. */
function run(mode: RunResult["mode"], error?: string): RunResult {
  const r: RunResult = {
    params: {},
    mode,
    server: { host: "server", port: 8080, backlog: 1 },
    sysctls: {},
    addresses: {},
    passed: error === undefined,
    durationMs: 5,
    phases: { build: 1, server: 1, clients: 1, observe: 1, collect: 0, teardown: 1 },
    observed: {},
    checks: [],
    samples: [],
    connections: [],
    timeline: [],
    rules: {},
    packets: {},
  };
  if (error !== undefined) r.error = error;
  return r;
}

/** An experiment of `mode` with one run per entry of `runs` (an error or undefined). */
function ranExperiment(
  id: string,
  claims: ExperimentResult["claims"],
  mode: ExperimentResult["mode"],
  runs: (string | undefined)[] = [undefined],
): ExperimentResult {
  return {
    ...experiment(id, claims, { passed: runs.every((e) => e === undefined) }),
    mode,
    runs: runs.map((e) => run(mode, e)),
  };
}

const FAST = "shortened timers (--faithful runs the kernel's defaults)";
const FAITHFUL = "the kernel's default timers (--faithful)";

Deno.test("buildLedger() annotates evidence with the kernel and the run's timers", () => {
  const cases: {
    mode: ExperimentResult["mode"];
    kernel: string | undefined;
    evidence: string;
  }[] = [
    { mode: "fast", kernel: "6.8.0-45", evidence: `3 retries [Linux 6.8.0-45; ${FAST}]` },
    { mode: "faithful", kernel: "6.8.0-45", evidence: `3 retries [Linux 6.8.0-45; ${FAITHFUL}]` },
    { mode: "default", kernel: "6.8.0-45", evidence: "3 retries [Linux 6.8.0-45]" },
    { mode: "fast", kernel: undefined, evidence: `3 retries [${FAST}]` },
    { mode: "faithful", kernel: undefined, evidence: `3 retries [${FAITHFUL}]` },
    { mode: "default", kernel: undefined, evidence: "3 retries" },
  ];
  for (const c of cases) {
    const [entry] = buildLedger(
      [ranExperiment("e1", { "A1.8": decide("reproduced", "3 retries") }, c.mode)],
      c.kernel === undefined ? {} : { kernel: c.kernel },
    );
    equal(entry!.verdict, "reproduced");
    equal(entry!.evidence, c.evidence, `${c.mode}, kernel ${c.kernel}`);
  }
});

Deno.test("buildLedger() says what an experiment's default variant shortens when it is not timers", () => {
  const shortened = "load: 1 s of arrivals instead of 20 s";
  const fast = { ...ranExperiment("e1", { "A4.7": decide("reproduced", "x") }, "fast"), shortened };
  equal(
    buildLedger([fast], { kernel: "6.1" })[0]!.evidence,
    `x [Linux 6.1; shortened ${shortened} (--faithful runs the full-length variant)]`,
  );
  const faithful = { ...fast, mode: "faithful" as const };
  equal(
    buildLedger([faithful])[0]!.evidence,
    "x [the full-length variant (--faithful)]",
  );
});

Deno.test("buildLedger() annotates each agreeing or conflicting experiment with its own timers", () => {
  const agree = buildLedger([
    ranExperiment("fast", { "A1.8": decide("reproduced", "x") }, "fast"),
    ranExperiment("plain", { "A1.8": decide("reproduced", "y") }, "default"),
  ], { kernel: "6.1" });
  equal(agree[0]!.evidence, `fast: x [Linux 6.1; ${FAST}]; plain: y [Linux 6.1]`);
  const conflict = buildLedger([
    ranExperiment("fast", { "A1.8": decide("reproduced", "x") }, "fast"),
    ranExperiment("slow", { "A1.8": decide("partly", "y") }, "faithful"),
  ]);
  equal(conflict[0]!.verdict, "conflict");
  equal(
    conflict[0]!.evidence,
    `experiments disagree: fast says reproduced (x [${FAST}]); ` +
      `slow says partly (y [${FAITHFUL}])`,
  );
});

Deno.test("buildLedger() does not annotate an experiment without runs", () => {
  const e = { ...experiment("e1", { "A0.2": decide("partly", "z") }), mode: "fast" as const };
  equal(buildLedger([e], { kernel: "6.8.0" })[0]!.evidence, "z");
});

Deno.test("buildLedger(): a run that could not complete makes the claim undecided, naming the error", () => {
  const [entry] = buildLedger([
    ranExperiment("e1", { "A1.8": decide("reproduced", "3 retries") }, "fast", [
      undefined,
      `Step "release" never happened: step "fill" never happened`,
      "second error",
    ]),
  ], { kernel: "6.8.0" });
  equal(entry!.verdict, "undecided");
  deepEqual(entry!.experiments, ["e1"]);
  equal(
    entry!.evidence,
    `e1 could not complete a run (Step "release" never happened: step "fill" never happened)`,
  );
});

Deno.test("buildLedger(): a run error makes a claim undecided even if the experiment claims it passed", () => {
  const e = ranExperiment("e1", { "A1.8": decide("reproduced", "x") }, "default", ["boom"]);
  e.passed = true;
  const [entry] = buildLedger([
    e,
    ranExperiment("e2", { "A1.8": decide("reproduced", "y") }, "default"),
  ]);
  equal(entry!.verdict, "undecided");
  equal(entry!.evidence, "e1 could not complete a run (boom)");
  deepEqual(entry!.experiments, ["e1", "e2"]);
});

Deno.test("buildLedger() puts historical claims in with the verdict historical and their reason", () => {
  const why = "Linux before 2.2 kept one queue; the lab cannot boot a 2.0 kernel.";
  const h = historicalResult(
    defineHistoricalClaims({ id: "old-kernels", title: "Old kernels", claims: { "A1.1": why } }),
    "experiments/historical_claims.ts",
  );
  const ledger = buildLedger([
    h,
    ranExperiment("e1", { "A1.8": decide("reproduced", "3 retries") }, "fast"),
  ], { kernel: "6.8.0" });
  deepEqual(ledger[0], {
    claim: "A1.1",
    article: "A1",
    statement: claimById("A1.1")!.statement,
    verdict: "historical",
    evidence: why,
    experiments: ["old-kernels"],
  });
  equal(ledger.length, 2);
  equal(ledger[1]!.evidence, `3 retries [Linux 6.8.0; ${FAST}]`);
});

Deno.test("buildLedger({ all: true }) lists undecided claims beside historical and decided ones", () => {
  const h = historicalResult(
    defineHistoricalClaims({
      id: "old-kernels",
      title: "Old kernels",
      claims: { "A1.1": "Linux before 2.2 cannot be booted by the lab." },
    }),
  );
  const ledger = buildLedger([
    h,
    ranExperiment("e1", { "A1.8": decide("partly", "2 retries") }, "default"),
  ], { all: true });
  deepEqual(ledger.map((e) => e.claim), CLAIMS.map((c) => c.id));
  const verdicts = Object.fromEntries(ledger.map((e) => [e.claim, e.verdict]));
  equal(verdicts["A1.1"], "historical");
  equal(verdicts["A1.8"], "partly");
  const undecided = ledger.filter((e) => e.verdict === "undecided");
  equal(undecided.length, CLAIMS.length - 2);
  for (const e of undecided) {
    equal(e.evidence, "no experiment of this run decides it");
    deepEqual(e.experiments, []);
  }
});

// --- claims of your own and what-ifs ----------------------------------------

const MINE = {
  id: "cf:synack-retries",
  statement: "The SYN Queue retries a SYN+ACK tcp_synack_retries times.",
  source: {
    title: "SYN packet handling in the wild",
    url: "https://blog.cloudflare.com/syn-packet-handling-in-the-wild/",
  },
  file: "experiments/examples/cloudflare_claims.md",
  line: 10,
};
const UNDECIDED = { ...MINE, id: "cf:never", statement: "Nobody decides this." };

Deno.test("buildLedger() lists claims of your own after the catalogue's, with statement and source; undecided when none decides", () => {
  const ledger = buildLedger(
    [experiment("cf", {
      "cf:synack-retries": decide("reproduced", "2 SYN-ACKs"),
      "A2.1": decide("partly", "3"),
    })],
    { claims: [MINE, UNDECIDED] },
  );
  deepEqual(ledger.map((l) => l.claim), ["A2.1", "cf:synack-retries", "cf:never"]);
  equal(ledger[0]!.source, undefined);
  deepEqual(ledger[1], {
    claim: "cf:synack-retries",
    article: "cf",
    statement: MINE.statement,
    source: { ...MINE.source, file: "experiments/examples/cloudflare_claims.md:10" },
    verdict: "reproduced",
    evidence: "2 SYN-ACKs",
    experiments: ["cf"],
  });
  deepEqual(ledger[2], {
    claim: "cf:never",
    article: "cf",
    statement: "Nobody decides this.",
    source: { ...MINE.source, file: "experiments/examples/cloudflare_claims.md:10" },
    verdict: "undecided",
    evidence: "no experiment of this run decides it",
    experiments: [],
  });
  // Listed even when the ledger lists only decided catalogue claims, and with every claim too.
  equal(buildLedger([], { claims: [UNDECIDED] }).length, 1);
  equal(buildLedger([], { all: true, claims: [UNDECIDED] }).length, CLAIMS.length + 1);
});

Deno.test("buildLedger() keeps a claim of your own apart from the built-in one whose id it ends with", () => {
  const own = { ...MINE, id: "mine:A2.1", statement: "My own version of A2.1." };
  const ledger = buildLedger(
    [experiment("e", {
      "A2.1": decide("partly", "built-in"),
      "mine:A2.1": decide("reproduced", "own"),
    })],
    { claims: [own] },
  );
  deepEqual(ledger.map((l) => [l.claim, l.verdict, l.statement]), [
    ["A2.1", "partly", claimById("A2.1")!.statement],
    ["mine:A2.1", "reproduced", "My own version of A2.1."],
  ]);
});

Deno.test("buildLedger() lists a claim of your own decided without its claims file, saying its statement is unknown", () => {
  const [entry] = buildLedger([experiment("e", { "x:1": decide("reproduced", "seen") })]);
  equal(entry!.claim, "x:1");
  equal(entry!.article, "x");
  equal(entry!.source, undefined);
  match(entry!.statement, /unknown: no claims file of this run defines it/);
  equal(entry!.verdict, "reproduced");
});

Deno.test("buildLedger() says a verdict was decided under a what-if, and why a rule failed under one", () => {
  const ran = ranExperiment(
    "q",
    {
      "A4.1": decide("reproduced", "Recv-Q 1, 1001"),
      "A2.1": { error: "claim rule failed: x is undefined" },
    },
    "default",
  );
  ran.overrides = { backlog: [0, 1000] };
  const [a21, a41] = buildLedger([ran], { kernel: "6.8.0" });
  equal(
    a41!.evidence,
    "Recv-Q 1, 1001 [Linux 6.8.0; what-if --set backlog=0,1000, not the experiment's own matrix]",
  );
  equal(a21!.verdict, "undecided");
  equal(
    a21!.evidence,
    "q: claim rule failed: x is undefined (under --set backlog=0,1000: the rule may read matrix points the what-if left out)",
  );
});
