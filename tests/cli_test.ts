import { tmpdir } from "node:os";
import { deepStrictEqual as deepEqual, match, ok, strictEqual as equal } from "node:assert/strict";
import { labProcesses, namespacesWith, ROOT, rootTest, runCli } from "./_helpers.ts";
import { parseSet } from "../lab/cli.ts";
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
    ["A1.12", "A2.2", "A3.2"].sort(byCatalogue),
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
async function checkReportDir(
  dir: string,
  doc: LabReport,
  expected: { charts: number; pcaps: number } = { charts: 40, pcaps: 5 },
): Promise<void> {
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
  ok(charts >= expected.charts, `${charts} charts`);
  ok(pcaps >= expected.pcaps, `${pcaps} pcaps`);
  const md = await Deno.readTextFile(join(dir, "report.md"));
  const anchors = new Set([...md.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]));
  for (const [, target] of md.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (target!.startsWith("#")) ok(anchors.has(target!.slice(1)), `anchor ${target}`);
    else if (/^https?:\/\//.test(target!)) continue; // a source of a claim of your own
    else ok((await Deno.stat(join(dir, target!))).isFile, `file ${target}`);
  }
  for (const l of doc.ledger) {
    if (l.verdict !== "historical" && l.experiments.length) {
      const anchor = `(#claim-${l.claim.replace(/[^A-Za-z0-9_-]/g, "-")}-`;
      ok(md.includes(anchor), `${l.claim} links to evidence`);
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

// --- claims of your own, what-ifs, --check and new ---------------------------

Deno.test("parseSet() reads repeatable name=value,… flags, and says what is wrong with one", () => {
  deepEqual(parseSet([]), {});
  deepEqual(parseSet(["backlog=0,1000", "syncookies=1"]), {
    backlog: ["0", "1000"],
    syncookies: ["1"],
  });
  match(
    String(parseSet(["backlog"])),
    /^Invalid --set "backlog": give a matrix parameter and its values, e\.g\. --set backlog=0,1000$/,
  );
  match(String(parseSet(["backlog=1,,2"])), /^Invalid --set "backlog=1,,2"/);
  match(String(parseSet(["2x=1"])), /^Invalid --set "2x=1"/);
  match(
    String(parseSet(["backlog=1", "backlog=2"])),
    /backlog is set twice; give all its values at once, e\.g\. --set backlog=1,2/,
  );
});

Deno.test("--set is refused clearly when wrong, before any namespace exists (exit 2)", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--filter", "accept-queue", "--set", "backlgo=0,1000"],
      /Invalid experiment field "matrix\.backlgo": --set backlgo=0,1000: no selected experiment has a parameter "backlgo"; did you mean "backlog"\?/,
    ],
    [
      ["--filter", "accept-queue", "--set", "backlog=zero"],
      /experiments\/accept_queue_holds_backlog_plus_one\.ts: Invalid experiment field "matrix\.backlog": --set backlog=zero: expected a number, like the matrix's values \(1, 2, 5, 16, 128\)/,
    ],
    [
      ["--filter", "accept-queue", "--set", "backlog=0,70000"],
      /experiments\/accept_queue_holds_backlog_plus_one\.ts: Invalid experiment field "server\.backlog": value 70000 is out of range: expected an integer from 0 to 65535.*set by --set backlog=0,70000/,
    ],
    [
      ["--filter", "server-exit", "--set", "stop=SIGKIL"],
      /--set stop=SIGKIL: expected one of the matrix's values \(SIGKILL, close\); did you mean "SIGKILL"\?/,
    ],
    [["--set", "backlog"], /Invalid --set "backlog"/],
  ];
  for (const [args, says] of cases) {
    const r = await runCli(args);
    equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    match(r.stderr, says);
    equal(r.stdout, "");
    deepEqual(await namespacesWith(r.prefix), []);
  }
});

Deno.test("--list leaves experiments/examples out of the default run; given, it lists the example and its claims", async () => {
  const all = await runCli(["--list"]);
  equal(all.code, 0, all.stderr);
  ok(!all.stdout.includes("cloudflare-syn-queue"));
  const examples = await runCli(["--list", "experiments/examples/"]);
  equal(examples.code, 0, examples.stderr);
  match(
    examples.stdout,
    /cloudflare-syn-queue {2}\(experiments\/examples\/cloudflare_syn_queue\.ts\)/,
  );
  match(examples.stdout, /claims: cf:synack-retries, cf:ack-to-accept-queue/);
  match(examples.stdout, /claims of your own: cf:synack-retries, cf:ack-to-accept-queue/);
  // --filter matches a claim of your own, across both directories.
  const filtered = await runCli([
    "--list",
    "--filter",
    "^cf:",
    "experiments/",
    "experiments/examples/",
  ]);
  equal(filtered.code, 0, filtered.stderr);
  deepEqual(filtered.stdout.match(/^\S+(?= {2}\()/gm), ["cloudflare-syn-queue"]);
});

Deno.test("the CLI's new writes a first experiment, never over a file, and refuses a bad id (exit 2)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bl-new-" });
  try {
    const r = await runCli(["new", "my-question", "--dir", dir]);
    equal(r.code, 0, r.stderr);
    match(r.stdout, /Wrote .*my_question\.ts: an exploratory experiment/);
    match(r.stdout, /Check it \(no root needed\): deno task lab --check .*my_question\.ts/);
    const text = await Deno.readTextFile(join(dir, "my_question.ts"));
    const again = await runCli(["new", "my-question", "--dir", dir]);
    equal(again.code, 2);
    match(
      again.stderr,
      /Cannot write experiment "my-question": .*my_question\.ts exists; it is never overwritten/,
    );
    equal(await Deno.readTextFile(join(dir, "my_question.ts")), text);
    const bad = await runCli(["new", "My Question", "--dir", dir]);
    equal(bad.code, 2);
    match(bad.stderr, /"My Question" is not kebab-case/);
    const none = await runCli(["new"]);
    equal(none.code, 2);
    match(none.stderr, /Give one id, e\.g\. deno task lab new my-first-question/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--check prints every problem at once (exit 2), and a summary when there is none (exit 0)", async () => {
  const good = await runCli(["--check"]);
  equal(good.code, 0, good.stderr);
  match(
    good.stdout,
    /^Checked \d+ files: \d+ experiments, \d+ matrix points planned \(faithful matrices too\), 0 claims of your own in [\d.]+ s: no problems\. Run them as root: sudo deno task lab$/m,
  );
  const dir = await Deno.makeTempDir({ prefix: "bl-check-" });
  try {
    await Deno.writeTextFile(
      join(dir, "claims.md"),
      "## [A post](https://example.org/p)\n\n- **A2.1** Mine.\n",
    );
    const file = await experimentFile(GOOD.replace("backlog: 2", "backlgo: 2"));
    const other = await experimentFile(GOOD.replace(`"A2.1": ()`, `"mine:x": ()`));
    const r = await runCli(["--check", file, other, "--claims", join(dir, "claims.md")]);
    equal(r.code, 2, r.stdout);
    match(
      r.stderr,
      /bad_experiment\.ts:\d+:\d+: Type error TS2561: .*'backlgo'.*Did you mean to write 'backlog'\?/,
    );
    match(
      r.stderr,
      /bad_experiment\.ts: Invalid experiment field "server\.backlgo": unknown field; did you mean "backlog"\?/,
    );
    match(r.stderr, /claims\.md:3: Invalid claims field "A2\.1": "A2\.1" is a built-in claim id/);
    match(r.stderr, /\n\d+ problems in 3 files: .* Fix them and run --check again\.\n$/);
    for (const f of [file, other]) {
      await Deno.remove(f.replace(/\/[^/]+$/, ""), { recursive: true });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Where root's Deno keeps npm packages, to give another user a copy instead of a download. */
async function npmCache(): Promise<string | undefined> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
    .output();
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { npmCache?: string };
  return info.npmCache;
}

/** Runs `deno <args>` in `cwd` as the unprivileged user nobody (HOME and DENO_DIR in `home`). */
async function asNobody(
  args: string[],
  cwd: string,
  home: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("setpriv", {
    args: [
      "--reuid=nobody",
      "--regid=nogroup",
      "--clear-groups",
      "env",
      `HOME=${home}`,
      `DENO_DIR=${home}/deno`,
      "NO_COLOR=1",
      `PATH=${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      Deno.execPath(),
      ...args,
    ],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    clearEnv: true,
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

rootTest(
  "a normal user's new and --check succeed in a fresh copy, and as root the new file runs green, a what-if too",
  async () => {
    const tmp = await Deno.makeTempDir({ prefix: "bl-fresh-" });
    const tree = join(tmp, "backlog-lab");
    const home = join(tmp, "home");
    try {
      // A copy of the working tree, owned by nobody, as a clone would be by its user.
      await Deno.mkdir(tree);
      await Deno.mkdir(join(home, "deno"), { recursive: true });
      for (const f of ["deno.json", "deno.lock", "main.ts", "mod.ts", "define.ts", "README.md"]) {
        await Deno.copyFile(join(ROOT, f), join(tree, f));
      }
      for (const d of ["lab", "experiments", "docs"]) {
        const cp = await new Deno.Command("cp", { args: ["-r", join(ROOT, d), tree] }).output();
        equal(cp.code, 0);
      }
      const cache = await npmCache();
      if (cache) {
        const cp = await new Deno.Command("cp", { args: ["-r", cache, join(home, "deno", "npm")] })
          .output();
        equal(cp.code, 0);
      }
      const own = await new Deno.Command("chown", { args: ["-R", "nobody:nogroup", tmp] }).output();
      equal(own.code, 0);

      const whoami = await asNobody(["eval", "console.log(Deno.uid())"], tree, home);
      equal(whoami.stdout.trim(), "65534", whoami.stderr);
      const made = await asNobody(["task", "lab", "new", "my-question"], tree, home);
      equal(made.code, 0, made.stderr);
      match(made.stdout, /Wrote experiments\/my_question\.ts/);
      const checked = await asNobody(["task", "lab", "--check"], tree, home);
      equal(checked.code, 0, checked.stderr);
      match(checked.stdout, /Checked \d+ files: \d+ experiments, .* no problems/);
      const one = await asNobody(
        ["task", "lab", "--check", "experiments/my_question.ts", "experiments/examples/"],
        tree,
        home,
      );
      equal(one.code, 0, one.stderr);
      match(one.stdout, /2 experiments, .* 2 claims of your own .* no problems/);
      // Without root, a run says how to fix it.
      const denied = await asNobody(["task", "lab", "experiments/my_question.ts"], tree, home);
      equal(denied.code, 3, denied.stderr);

      // As root, the new file runs green as it is: an exploratory table per matrix point.
      const run = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "experiments/my_question.ts"],
        cwd: tree,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const stdout = new TextDecoder().decode(run.stdout);
      equal(run.code, 0, new TextDecoder().decode(run.stderr));
      match(stdout, /\[ OK \] my-question: .* \(\d+\.\d+ s, 2 runs\)/);
      match(stdout, /Observed \(each metric's last and highest value\):/);
      match(stdout, /│ backlog=2 +│/);
      match(stdout, /│ server\.recvQ +│ 3 +│ 3 +│/);
      match(stdout, /│ server\.recvQ +│ 5 +│ 5 +│/);
      // And under a what-if: listen(fd, 0) holds one connection.
      const whatIf = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "main.ts",
          "experiments/my_question.ts",
          "--set",
          "backlog=0",
          "--json",
        ],
        cwd: tree,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      equal(whatIf.code, 0, new TextDecoder().decode(whatIf.stderr));
      const doc = JSON.parse(new TextDecoder().decode(whatIf.stdout)) as LabReport;
      const e = doc.experiments[0]!;
      deepEqual(e.overrides, { backlog: [0] });
      deepEqual(e.claims, {});
      deepEqual(e.runs.map((r) => [r.params.backlog, r.observed["server.recvQ"]]), [
        [0, { final: 1, peak: 1 }],
      ]);
      deepEqual(schemaErrors(doc), []);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
);

rootTest(
  "the example decides both claims of its article; --claims adds one no experiment decides; report, schema and --compare show them",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "bl-own-claims-" });
    try {
      const extra = join(dir, "extra.md");
      await Deno.writeTextFile(
        extra,
        "## [Another post](https://example.org/another)\n\n- **other:undecided** Nothing here decides it.\n",
      );
      const out = join(dir, "report");
      const r = await runCli([
        "experiments/examples/",
        "--claims",
        extra,
        "--json",
        "--report",
        out,
      ]);
      equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as LabReport;
      deepEqual(schemaErrors(doc), []);
      const own = doc.ledger.filter((l) => l.source);
      deepEqual(own.map((l) => [l.claim, l.verdict]), [
        ["other:undecided", "undecided"],
        ["cf:synack-retries", "reproduced"],
        ["cf:ack-to-accept-queue", "reproduced"],
      ]);
      equal(doc.ledger.length, CLAIMS.length + 3);
      for (const l of own.slice(1)) {
        deepEqual(l.source?.url, "https://blog.cloudflare.com/syn-packet-handling-in-the-wild/");
        match(l.source?.file ?? "", /^experiments\/examples\/cloudflare_claims\.md:\d+$/);
        match(l.evidence, /\d/);
        deepEqual(l.experiments, ["cloudflare-syn-queue"]);
      }
      match(
        own[1]!.evidence,
        /tcp_synack_retries 1 → 2 SYN-ACKs .*tcp_synack_retries 2 → 3 SYN-ACKs/,
      );
      await checkReportDir(out, doc, { charts: 2, pcaps: 2 });
      const md = await Deno.readTextFile(join(out, "report.md"));
      match(md, /## Claims of your own/);
      match(
        md,
        /\| other:undecided \| Nothing here decides it\. \| \[Another post\]\(https:\/\/example\.org\/another\)/,
      );
      deepEqual(labProcesses(r.prefix), []);
      deepEqual(await namespacesWith(r.prefix), []);

      // --compare: the same document with one of these verdicts changed.
      const changed = structuredClone(doc);
      changed.ledger.find((l) => l.claim === "cf:synack-retries")!.verdict = "not reproduced";
      const other = join(dir, "other.json");
      await Deno.writeTextFile(other, JSON.stringify(changed));
      const c = await runCli(["--compare", join(out, "results.json"), other, "--markdown"]);
      equal(c.code, 0, c.stderr);
      match(
        c.stdout,
        /\| cf:synack-retries \| The SYN Queue sends the SYN\+ACK .*\(source: \[SYN packet handling in the wild\]\(https:\/\/blog\.cloudflare\.com\/syn-packet-handling-in-the-wild\/\)\) \| reproduced: /,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

rootTest(
  "--set runs a built-in experiment with other values, records it and says so in its verdicts",
  async () => {
    const r = await runCli(["--json", "--filter", "accept-queue-holds", "--set", "backlog=0,3"]);
    equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as LabReport;
    deepEqual(schemaErrors(doc), []);
    match(doc.command, /--set backlog=0,3/);
    const e = doc.experiments[0]!;
    deepEqual(e.overrides, { backlog: [0, 3] });
    deepEqual(
      e.runs.map((x) => [x.params.backlog, x.server.backlog, x.observed["server.recvQ"]?.peak]),
      [
        [0, 0, 1],
        [3, 3, 4],
      ],
    );
    const a41 = doc.ledger.find((l) => l.claim === "A4.1")!;
    equal(a41.verdict, "reproduced");
    match(a41.evidence, /what-if --set backlog=0,3, not the experiment's own matrix/);
    // A rule written for a matrix point the what-if left out (backlog 2) cannot decide.
    const a21 = doc.ledger.find((l) => l.claim === "A2.1")!;
    equal(a21.verdict, "undecided");
    match(
      a21.evidence,
      /under --set backlog=0,3: the rule may read matrix points the what-if left out/,
    );
    deepEqual(labProcesses(r.prefix), []);
  },
);
