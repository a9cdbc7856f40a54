import { tmpdir } from "node:os";
import { deepStrictEqual as deepEqual, match, ok, strictEqual as equal } from "node:assert/strict";
import { labProcesses, namespacesWith, ROOT, rootTest, runCli } from "./_helpers.ts";
import { CLAIMS } from "../lab/describe/catalogue.ts";
import { join } from "node:path";
import type { ExperimentResult, LabReport } from "../lab/results.ts";
import { assertChartShowsSamples } from "./_chart_svg.ts";
import { schemaErrors } from "./_schema.ts";

Deno.test("the CLI prints its help", async () => {
  const r = await runCli(["--help"]);
  equal(r.code, 0);
  match(r.stdout, /Usage: deno task lab/);
  match(r.stdout, /--filter RE/);
});

Deno.test("the CLI lists the experiments and their claims without running anything", async () => {
  const r = await runCli(["--list"]);
  equal(r.code, 0, r.stderr);
  match(r.stdout, /accept-queue-holds-backlog-plus-one/);
  match(r.stdout, /claims: A0\.2, A1\.3/);
});

Deno.test("the CLI rejects an unknown flag and a bad --filter with exit 2", async () => {
  const a = await runCli(["--fliter", "x"]);
  equal(a.code, 2);
  match(a.stderr, /fliter/);
  const b = await runCli(["--filter", "("]);
  equal(b.code, 2);
  match(b.stderr, /Invalid --filter "\("/);
  const c = await runCli(["--filter", "no-such-experiment", "--list"]);
  equal(c.code, 2);
  match(c.stderr, /No experiment matches/);
});

async function experimentFile(body: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bl-test-" });
  const file = `${dir}/bad_experiment.ts`;
  await Deno.writeTextFile(
    file,
    `import { defineExperiment } from "${ROOT}mod.ts";\nexport default defineExperiment(${body});\n`,
  );
  return file;
}

const GOOD = `{
  id: "x", title: "x", hypothesis: "x",
  hosts: { server: { sysctls: { "net.core.somaxconn": 8 } }, client: {} },
  server: { host: "server", backlog: 2 },
  clients: [{ name: "c", host: "client", count: 3 }],
  observe: { intervalMs: 20, windowMs: 500 },
  expect: [{ name: "q", metric: "server.ESTABLISHED", equals: 3 }],
  claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "1" }) },
}`;

Deno.test("the CLI names the file, field and fix of a typo in an experiment (exit 2)", async () => {
  const file = await experimentFile(GOOD.replace("backlog: 2", "backlgo: 2"));
  const r = await runCli([file]);
  equal(r.code, 2);
  match(
    r.stderr,
    /bad_experiment\.ts: Invalid experiment field "server\.backlgo": unknown field; did you mean "backlog"\?/,
  );
  await Deno.remove(file.replace(/\/[^/]+$/, ""), { recursive: true });
});

Deno.test("the CLI rejects a negative client count before running anything (exit 2)", async () => {
  const file = await experimentFile(GOOD.replace("count: 3", "count: -3"));
  const r = await runCli([file]);
  equal(r.code, 2);
  match(r.stderr, /Invalid experiment field "clients\[0\]\.count": value -3 is out of range/);
  await Deno.remove(file.replace(/\/[^/]+$/, ""), { recursive: true });
});

rootTest(
  "the CLI names an unknown sysctl with a suggestion and leaves nothing behind (exit 2)",
  async () => {
    const file = await experimentFile(GOOD.replace('"net.core.somaxconn"', '"net.core.somaxcon"'));
    const r = await runCli([file]);
    equal(r.code, 2);
    match(
      r.stderr,
      /bad_experiment\.ts: Invalid experiment field "hosts\.server\.sysctls\.net\.core\.somaxcon": a network namespace of this kernel has no sysctl "net\.core\.somaxcon"; did you mean "net\.core\.somaxconn"\?/,
    );
    deepEqual(await namespacesWith(r.prefix), []);
    await Deno.remove(file.replace(/\/[^/]+$/, ""), { recursive: true });
  },
);

rootTest("the CLI says how to fix missing privileges (exit 3)", async () => {
  const out = await new Deno.Command("setpriv", {
    args: [
      "--bounding-set=-net_admin,-sys_admin",
      "--inh-caps=-net_admin,-sys_admin",
      Deno.execPath(),
      "run",
      "-A",
      "main.ts",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  equal(out.code, 3, stderr);
  match(
    stderr,
    /Not running as root .* with CAP_NET_ADMIN and CAP_SYS_ADMIN.*: run it as root, e\.g\. `sudo deno task lab`/,
  );
});

rootTest("the CLI names a missing tool and its install command (exit 3)", async () => {
  const bin = await Deno.makeTempDir({ prefix: "bl-path-" });
  for (const tool of ["sh", "ip", "sleep", "find", "uname", "tr", "cat"]) {
    const which = await new Deno.Command("sh", {
      args: ["-c", `command -v ${tool}`],
      stdout: "piped",
    }).output();
    await Deno.symlink(new TextDecoder().decode(which.stdout).trim(), `${bin}/${tool}`);
  }
  const r = await runCli([], { PATH: bin });
  equal(r.code, 3, r.stderr);
  match(r.stderr, /Missing the "ss" command: install it with `apt-get install iproute2`/);
  deepEqual(await namespacesWith(r.prefix), []);
  await Deno.remove(bin, { recursive: true });
});

rootTest("the CLI's --json document has the kernel, runs, checks and ledger", async () => {
  const r = await runCli(["--json", "--filter", "syn-dropped"]);
  equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  equal(doc.version, 1);
  equal(doc.kernel, Deno.osRelease());
  equal(doc.experiments.length, 1);
  const e = doc.experiments[0];
  equal(e.id, "syn-dropped-while-accept-queue-full");
  equal(e.passed, true);
  ok(e.durationMs > 0);
  const run = e.runs[0];
  deepEqual(run.params, {});
  equal(run.sysctls.server["net.core.somaxconn"], "4096");
  ok(run.observed["server.SYN_RECV"]);
  ok(run.samples.length > 10);
  for (const c of run.checks) {
    ok(
      typeof c.name === "string" && typeof c.expected === "string" && typeof c.passed === "boolean",
    );
    ok("observed" in c);
  }
  // --json lists every catalogue claim once; those this run did not decide are undecided.
  deepEqual(doc.ledger.map((l: { claim: string }) => l.claim), CLAIMS.map((c) => c.id));
  const decided = doc.ledger.filter((l: { verdict: string }) => l.verdict !== "undecided");
  deepEqual(
    decided.map((l: { claim: string }) => l.claim),
    ["A2.2", "A3.2"].sort(byCatalogue),
  );
  for (const l of decided) {
    ok(["reproduced", "not reproduced", "partly", "historical"].includes(l.verdict), l.verdict);
    match(l.evidence, /\d/);
    match(l.evidence, new RegExp(`Linux ${Deno.osRelease().replaceAll(".", "\\.")}`));
    deepEqual(l.experiments, ["syn-dropped-while-accept-queue-full"]);
  }
  deepEqual(labProcesses(r.prefix), []);
});

function byCatalogue(a: string, b: string): number {
  return CLAIMS.findIndex((c) => c.id === a) - CLAIMS.findIndex((c) => c.id === b);
}

rootTest(
  "the default run decides every catalogue claim, with numbers, writes its report, and leaves nothing",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "bl-report-test-" });
    try {
      const r = await runCli(["--json", "--report", dir]);
      const doc = JSON.parse(r.stdout);
      const failed = doc.experiments.filter((e: { passed: boolean }) => !e.passed).map((
        e: { id: string },
      ) => e.id);
      deepEqual(failed, [], r.stderr);
      equal(r.code, 0, r.stderr);
      deepEqual(doc.ledger.map((l: { claim: string }) => l.claim), CLAIMS.map((c) => c.id));
      for (const l of doc.ledger) {
        ok(
          ["reproduced", "not reproduced", "partly", "historical"].includes(l.verdict),
          `${l.claim}: ${l.verdict} (${l.evidence})`,
        );
        ok(l.experiments.length > 0, l.claim);
        if (l.verdict !== "historical") match(l.evidence, /\d/, l.claim);
      }
      for (const e of doc.experiments) {
        console.log(`  ${e.id}: ${(e.durationMs / 1000).toFixed(2)} s (${e.runs.length} runs)`);
      }
      console.log(`  default run: ${(doc.durationMs / 1000).toFixed(2)} s`);
      // Plain progress lines on a pipe: one per run.
      const runs = doc.experiments.reduce((n: number, e: ExperimentResult) => n + e.runs.length, 0);
      equal(r.stderr.match(/^ {2}\[\d+\/\d+\] \S+ run \d+\/\d+/gm)?.length, runs, r.stderr);
      await checkReportDir(dir, doc);
      deepEqual(await namespacesWith(r.prefix), []);
      deepEqual(labProcesses(r.prefix), []);
      const pcaps = [...Deno.readDirSync(tmpdir())].filter((f) => f.name.startsWith(r.prefix));
      deepEqual(pcaps, []);

      // --compare on two real result files: the report's and the same run with one verdict changed.
      const same = await runCli([
        "--compare",
        join(dir, "results.json"),
        join(dir, "results.json"),
      ]);
      equal(same.code, 0, same.stderr);
      match(same.stdout, /38 claims same, 0 differ/);
      const changed = structuredClone(doc) as LabReport;
      changed.kernel = "5.4.0-old";
      changed.ledger[0]!.verdict = changed.ledger[0]!.verdict === "partly"
        ? "reproduced"
        : "partly";
      const other = join(dir, "other.json");
      await Deno.writeTextFile(other, JSON.stringify(changed));
      const md = await runCli(["--compare", join(dir, "results.json"), other, "--markdown"]);
      equal(md.code, 0, md.stderr);
      match(md.stdout, /5\.4\.0-old/);
      match(md.stdout, new RegExp(`\\| ${CLAIMS[0]!.id.replace(".", "\\.")} \\|`));
      match(md.stdout, /37 claims same, 1 differ/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/**
 * What --report wrote: results.json is the --json document; each run with samples has an SVG
 * whose lines show its samples and a PNG; each captured run has a pcap that tcpdump reads with
 * as many packets as the run's timelines; every link of report.md resolves.
 */
async function checkReportDir(dir: string, doc: LabReport): Promise<void> {
  deepEqual(JSON.parse(await Deno.readTextFile(join(dir, "results.json"))), doc);
  deepEqual(schemaErrors(doc).slice(0, 20), [], "results.json matches docs/results.schema.json");
  let charts = 0;
  let pcaps = 0;
  for (const e of doc.experiments) {
    for (const run of e.runs) {
      if (run.samples.length === 0) continue;
      ok(run.charts, `${e.id} ${JSON.stringify(run.params)} has a chart`);
      const svg = await Deno.readTextFile(join(dir, run.charts.svg));
      const server = Object.keys(run.samples[0]!.values).find((k) => k.endsWith(".recvQ"))!;
      assertChartShowsSamples(svg, run, server.split(".")[0]!);
      ok((await Deno.stat(join(dir, run.charts.png))).size > 10_000);
      charts++;
      for (const [host, conns] of Object.entries(run.packets)) {
        const file = run.pcaps?.[host];
        ok(file, `${e.id} ${JSON.stringify(run.params)} kept its ${host} pcap`);
        const out = await new Deno.Command("tcpdump", { args: ["-nr", join(dir, file)] }).output();
        equal(out.code, 0, new TextDecoder().decode(out.stderr));
        const lines = new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean);
        equal(lines.length, conns.reduce((n, c) => n + c.events.length, 0), file);
        pcaps++;
      }
    }
  }
  ok(charts >= 40, `${charts} charts`);
  ok(pcaps >= 5, `${pcaps} pcaps`);
  const md = await Deno.readTextFile(join(dir, "report.md"));
  const anchors = new Set([...md.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]));
  for (const [, target] of md.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (target!.startsWith("#")) ok(anchors.has(target!.slice(1)), `anchor ${target}`);
    else ok((await Deno.stat(join(dir, target!))).isFile, `file ${target}`);
  }
  for (const l of doc.ledger) {
    if (l.verdict !== "historical") {
      ok(md.includes(`(#claim-${l.claim.replace(".", "-")}-`), `${l.claim} links to evidence`);
    }
  }
}

Deno.test("--report, --compare and --markdown reject bad arguments before running anything", async () => {
  const file = await Deno.makeTempFile({ prefix: "bl-not-a-dir-" });
  try {
    const r = await runCli(["--report", file]);
    equal(r.code, 2, r.stderr);
    match(r.stderr, /Cannot write the report to ".*": it is a file; give a directory/);
    equal(await Deno.readTextFile(file), "");
  } finally {
    await Deno.remove(file);
  }
  const one = await runCli(["--compare", "a.json"]);
  equal(one.code, 2);
  match(one.stderr, /--compare takes two results\.json files, got 1/);
  const missing = await runCli(["--compare", "/nonexistent/a.json", "/nonexistent/b.json"]);
  equal(missing.code, 2);
  match(missing.stderr, /Cannot compare results file "\/nonexistent\/a\.json": no such file/);
  const md = await runCli(["--markdown"]);
  equal(md.code, 2);
  match(md.stderr, /--markdown goes with --compare A B/);
});

rootTest("--verbose draws each run's queues as a terminal chart", async () => {
  const r = await runCli(["--verbose", "--filter", "syn-dropped"], { NO_COLOR: "1" });
  equal(r.code, 0, r.stderr);
  match(r.stdout, /SYN_RECV:\n/);
  match(r.stdout, /Recv-Q:\n/);
  match(r.stdout, /Send-Q \(limit\):\n/);
  match(r.stdout, /0 … \d+\.\d\d s/);
  match(r.stdout, /[╭╰─]/);
  deepEqual(labProcesses(r.prefix), []);
});

Deno.test("--report refuses a non-empty directory that holds no earlier report, and keeps its files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bl-report-busy-" });
  try {
    await Deno.mkdir(join(dir, "charts"));
    await Deno.writeTextFile(join(dir, "charts", "mine.txt"), "not the lab's");
    const r = await runCli(["--report", dir, "--filter", "syn-dropped"]);
    equal(r.code, 2, r.stderr);
    match(r.stderr, /it is not empty and holds no earlier backlog-lab report/);
    equal(await Deno.readTextFile(join(dir, "charts", "mine.txt")), "not the lab's");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

rootTest("--report replaces an earlier report's files and only those", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bl-report-again-" });
  try {
    const stale = join(dir, "charts", "gone-experiment", "1.svg");
    await Deno.mkdir(join(dir, "charts", "gone-experiment"), { recursive: true });
    await Deno.writeTextFile(stale, "<svg/>");
    await Deno.writeTextFile(join(dir, "notes.txt"), "mine");
    await Deno.writeTextFile(
      join(dir, "results.json"),
      JSON.stringify({ version: 1, experiments: [], ledger: [] }),
    );
    const r = await runCli(["--report", dir, "--filter", "syn-dropped"]);
    equal(r.code, 0, r.stderr);
    match(r.stdout, /Report: .*report\.md \(1 chart, 0 pcaps\)/);
    equal(await Deno.readTextFile(join(dir, "notes.txt")), "mine");
    await Deno.stat(stale).then(() => ok(false, "stale chart kept"), () => {});
    const doc = JSON.parse(await Deno.readTextFile(join(dir, "results.json")));
    equal(doc.experiments[0].id, "syn-dropped-while-accept-queue-full");
    ok((await Deno.stat(join(dir, doc.experiments[0].runs[0].charts.png))).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
