import { tmpdir } from "node:os";
import { deepStrictEqual as deepEqual, match, ok, strictEqual as equal } from "node:assert/strict";
import {
  cliPrefix,
  isolated,
  labProcesses,
  namespacesWith,
  ROOT,
  rootTest,
  runCli,
  spawnCli,
  until,
} from "./_helpers.ts";
import { parseSet } from "../lab/cli.ts";
import { runSettings } from "../lab/cli/options.ts";
import { CLAIMS } from "../lab/describe/catalogue.ts";
import { rootCommand } from "../lab/topology/preflight.ts";
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

Deno.test("the CLI answers a misspelled option with a did-you-mean, in one line (exit 2)", async () => {
  for (
    const [args, want] of [
      [["--filtr", "x"], 'Unknown option "--filtr"; did you mean "--filter"? See --help.'],
      [["--verbos"], 'Unknown option "--verbos"; did you mean "--verbose"? See --help.'],
      [["--jobs"], 'Option "--jobs" needs a value. See --help.'],
      [["--json=1"], 'Option "--json" takes no value. See --help.'],
    ] as const
  ) {
    const r = await runCli([...args]);
    equal(r.code, 2, r.stderr);
    equal(r.stderr, `${want}\n`);
  }
});

Deno.test("the CLI refuses a bad --subnet or --subnet6 in one line (exit 2)", async () => {
  for (
    const [args, want] of [
      [
        ["--subnet", "8.8.8.0/24"],
        'Invalid --subnet "8.8.8.0/24": give a private IPv4 /16 such as "10.213.0.0/16"',
      ],
      [
        ["--subnet", "garbage"],
        'Invalid --subnet "garbage": give a private IPv4 /16 such as "10.213.0.0/16"',
      ],
      [
        ["--subnet6", "2001:db8::/32"],
        'Invalid --subnet6 "2001:db8::/32": give a unique-local IPv6 /48 such as "fd00:213::/48"',
      ],
    ] as const
  ) {
    const r = await runCli([...args, "--filter", "somaxconn-clamps"]);
    equal(r.code, 2, r.stderr);
    equal(r.stderr, `${want}\n`);
  }
});

Deno.test("--filter matches a claim id whole: A4.1 is not A4.10", async () => {
  const r = await runCli(["--list", "--filter", "A4.1"]);
  equal(r.code, 0, r.stderr);
  const ids = [...r.stdout.matchAll(/^(\S+) {2}\(/gm)].map((m) => m[1]);
  const claims = [...r.stdout.matchAll(/^ {2}claims: (.*)$/gm)].map((m) => m[1]!.split(", "));
  ok(ids.length > 0);
  for (const c of claims) ok(c.includes("A4.1"), c.join(", "));
  const tenth = await runCli(["--list", "--filter", "A4.10"]);
  for (const id of ids) {
    const both = tenth.stdout.includes(`${id}  (`);
    const decides10 = new RegExp(`^${id}  \\(.*\\n.*\\n  claims: .*\\bA4\\.10\\b`, "m").test(
      tenth.stdout,
    );
    equal(both, decides10, id);
  }
});

Deno.test("the CLI refuses an empty experiment directory (exit 2)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bl-empty-" });
  try {
    const r = await runCli([dir]);
    equal(r.code, 2, r.stderr);
    match(r.stderr, new RegExp(`"${dir}" holds no experiment file`));
  } finally {
    await Deno.remove(dir);
  }
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
    // Not started through npx, whatever started this test (CI starts it so).
    env: { npm_command: "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  equal(out.code, 3, stderr);
  // The command suggested depends on where this deno lives (a deno on sudo's
  // path, an npx cache, elsewhere); rootCommand()'s own test covers each.
  const suggested = rootCommand({
    execPath: Deno.execPath(),
    npmCommand: "",
    version: Deno.version.deno,
  });
  match(
    stderr,
    /Not running as root .* with CAP_NET_ADMIN and CAP_SYS_ADMIN.*: run it as root, e\.g\. `sudo /,
  );
  ok(stderr.includes(`run it as root, e.g. \`${suggested}\``), stderr);
  // Started through npx (which sets npm_command=exec), deno is on no PATH: say so.
  const npx = await new Deno.Command("setpriv", {
    args: [
      "--bounding-set=-net_admin,-sys_admin",
      "--inh-caps=-net_admin,-sys_admin",
      Deno.execPath(),
      "run",
      "-A",
      "main.ts",
    ],
    cwd: ROOT,
    env: { npm_command: "exec" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(npx.code, 3);
  match(
    new TextDecoder().decode(npx.stderr),
    new RegExp(
      `run it as root, e\\.g\\. \`sudo npx -y deno@${
        Deno.version.deno.replaceAll(".", "\\.")
      } task lab\``,
    ),
  );
});

Deno.test("rootCommand() suggests what works the way the lab was started", () => {
  const version = "2.9.6";
  equal(rootCommand({ execPath: "/usr/bin/deno", version }), "sudo deno task lab");
  equal(
    rootCommand({ execPath: "/usr/lib/node_modules/deno/deno", npmCommand: "exec", version }),
    "sudo npx -y deno@2.9.6 task lab",
  );
  equal(
    rootCommand({ execPath: "/home/u/.npm/_npx/ab12/node_modules/deno/deno", version }),
    "sudo npx -y deno@2.9.6 task lab",
  );
  // sudo's secure_path has no ~/.deno/bin: the full path works.
  equal(
    rootCommand({ execPath: "/home/u/.deno/bin/deno", version }),
    "sudo /home/u/.deno/bin/deno task lab",
  );
});

rootTest(
  "the CLI refuses a sysctl value the kernel rejects before running, naming file and field (exit 2)",
  async () => {
    const file = await experimentFile(
      GOOD.replace('"net.core.somaxconn": 8', '"net.core.somaxconn": -1'),
    );
    try {
      const r = await runCli([file]);
      equal(r.code, 2, r.stderr);
      match(
        r.stderr,
        /bad_experiment\.ts: Invalid experiment field "hosts\.server\.sysctls\.net\.core\.somaxconn": value "-1" cannot be set in a network namespace of this kernel: the kernel rejects it \(/,
      );
      ok(!r.stdout.includes("[FAIL]") && !r.stdout.includes("[ OK ]"), "nothing ran");
      deepEqual(await namespacesWith(r.prefix), []);
    } finally {
      await Deno.remove(join(file, ".."), { recursive: true });
    }
  },
);

rootTest("--ledger shows the table of what failed for each failed experiment", async () => {
  const file = await experimentFile(GOOD.replace("equals: 3 }", "equals: 99 }"));
  try {
    const r = await runCli(["--ledger", file]);
    equal(r.code, 1, r.stderr);
    match(r.stdout, /^Claims ledger \(Linux /m);
    match(r.stdout, /^Failed experiments \(1\):$/m);
    match(r.stdout, /^\[FAIL\] x: x /m);
    match(
      r.stdout,
      /│ \(single run\) │ q +│ server\.ESTABLISHED │ = 99 for 60 ms │ 3 +│ FAIL │/,
    );
  } finally {
    await Deno.remove(join(file, ".."), { recursive: true });
  }
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
      const why = doc.experiments.filter((e: ExperimentResult) => !e.passed).flatMap((
        e: ExperimentResult,
      ) =>
        e.runs.filter((run) => !run.passed).map((run) =>
          `${e.id} ${JSON.stringify(run.params)}: ${run.error ?? ""} ${
            run.checks.filter((c) => !c.passed).map((c) =>
              `${c.name} ${c.expected} observed ${c.observed}`
            ).join("; ")
          } ${run.inputQueueDrops ? `(${run.inputQueueDrops} input queue drops)` : ""}`
        )
      );
      deepEqual(failed, [], why.join("\n"));
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
        const stderr = new TextDecoder().decode(out.stderr);
        equal(out.code, 0, stderr);
        // Captured on the lab's own link: no interface of this machine is named for its packets.
        match(stderr, /link-type EN10MB \(Ethernet\)/, file);
        ok(!/interface names might be incorrect/.test(stderr), `${file}: ${stderr}`);
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

Deno.test("every deno.json task that starts deno turns Deno's update check off", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  for (const [name, task] of Object.entries(config.tasks as Record<string, string>)) {
    // `VAR=1 cmd` sets it for the first command only; `export VAR=1 && …` for all.
    ok(
      /^(export )?DENO_NO_UPDATE_CHECK=1 /.test(task) &&
        (task.startsWith("export") || !task.includes("&&")),
      `task "${name}": ${task}`,
    );
  }
  equal(config.lock?.frozen, true, "experiments load with a frozen lockfile");
});

const STRACE = await new Deno.Command("sh", { args: ["-c", "command -v strace"] }).output()
  .then((o) => o.code === 0, () => false);
if (!STRACE) {
  console.warn("*** strace is missing: the network-lookup test of `deno task lab` is skipped ***");
}

rootTest(
  "deno task lab sends nothing off the machine: no DNS query (dl.deno.land), inet connects only to the lab subnets",
  async () => {
    if (!STRACE) return;
    const trace = await Deno.makeTempFile({ prefix: "bl-strace-" });
    try {
      const out = await new Deno.Command("strace", {
        args: [
          "-f",
          "-qq",
          "-e",
          "trace=connect,sendto,sendmmsg",
          "-s",
          "64",
          "-o",
          trace,
          Deno.execPath(),
          "task",
          "lab",
          "--filter",
          "somaxconn-clamps",
        ],
        cwd: ROOT,
        stdout: "null",
        stderr: "piped",
        // As a user's shell has it: nothing that would turn the check off already.
        env: { NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/" },
        clearEnv: true,
      }).output();
      equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const lines = (await Deno.readTextFile(trace)).split("\n");
      const dns = lines.filter((l) => /htons\(53\)|\\4deno\\4land/.test(l));
      deepEqual(dns, [], "no DNS server contacted, no query for dl.deno.land");
      const inet = lines.flatMap((l) => {
        const m =
          /connect\(\d+, \{sa_family=AF_INET6?, sin6?_port=htons\(\d+\), (?:sin_addr=inet_addr\("([^"]+)"\)|.*inet_pton\(AF_INET6, "([^"]+)")/
            .exec(l);
        return m ? [m[1] ?? m[2]!] : [];
      });
      ok(inet.length > 0, "the lab's own clients were traced");
      // 127.0.0.1: the kernel probe's own listener and client, inside preflight's probe
      // namespace (it has only lo), which measure how many requests the SYN queue holds.
      const outside = inet.filter((a) =>
        !a.startsWith("10.213.") && !a.startsWith("fd00:213:") && a !== "127.0.0.1"
      );
      deepEqual([...new Set(outside)], [], "every inet connect() went to the lab's subnets");
    } finally {
      await Deno.remove(trace);
    }
  },
);

Deno.test("an experiment importing a package deno.lock lacks is refused, and deno.lock is left as it is", async () => {
  const lock = await Deno.readTextFile(join(ROOT, "deno.lock"));
  const dir = await Deno.makeTempDir({ prefix: "bl-npm-import-" });
  try {
    const file = join(dir, "npm_experiment.ts");
    await Deno.writeTextFile(
      file,
      `import isNumber from "npm:is-number@7.0.0";\nconsole.log(isNumber(1));\n` +
        `import { defineExperiment } from "${ROOT}define.ts";\nexport default defineExperiment(${GOOD});\n`,
    );
    // `deno task lab`, as a user runs it: the task's flags and deno.json's lock setting apply.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "lab", "--list", file],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    equal(out.code, 2, stderr);
    match(
      stderr,
      /npm_experiment\.ts: Invalid experiment field "\(module\)": cannot import it: it imports "npm:is-number@7\.0\.0", which deno\.lock does not have, and experiments load with a frozen lockfile/,
    );
    equal(await Deno.readTextFile(join(ROOT, "deno.lock")), lock, "deno.lock unchanged");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

rootTest(
  "a claim rule that throws or returns no decision fails its experiment (exit 1), naming file, claim and fix",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "bl-bad-rule-" });
    try {
      const file = join(dir, "bad_rules.ts");
      await Deno.writeTextFile(
        file,
        `import { defineExperiment } from "${ROOT}define.ts";\nexport default defineExperiment(${
          GOOD.replace(
            `claims: { "A2.1": () => ({ verdict: "reproduced", evidence: "1" }) },`,
            `claims: {
              "A2.1": () => null,
              "A2.2": () => ({ verdict: "maybe", evidence: "x" }),
              "A2.3": (runs) => ({ verdict: "reproduced", evidence: String(runs[0].value("server.ESTABLISHD")) }),
            },`,
          )
        });\n`,
      );
      const r = await runCli([file]);
      equal(r.code, 1, r.stderr);
      match(r.stdout, /\[FAIL\] x:/);
      equal(r.stdout.match(/│ \(claim rule\) │ A2\.\d/g)?.length, 3, r.stdout);
      const json = await runCli(["--json", file]);
      equal(json.code, 1);
      const doc: LabReport = JSON.parse(json.stdout);
      const e = doc.experiments[0]!;
      equal(e.passed, false);
      const error = (id: string) => (e.claims[id] as { error: string }).error;
      match(error("A2.1"), /bad_rules\.ts: claim "A2\.1": the rule returned null/);
      match(
        error("A2.2"),
        /bad_rules\.ts: claim "A2\.2": the rule returned verdict "maybe", which is not a verdict/,
      );
      match(
        error("A2.3"),
        /bad_rules\.ts: claim "A2\.3": the rule threw: Metric "server\.ESTABLISHD" .*did you mean "ESTABLISHED"\?/,
      );
      for (const id of ["A2.1", "A2.2", "A2.3"]) {
        equal(doc.ledger.find((l) => l.claim === id)!.verdict, "undecided", id);
      }
      deepEqual(labProcesses(r.prefix), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** A directory holding an earlier report (and a file of the user's): what must survive. */
async function earlierReport(): Promise<{ dir: string; files: Record<string, string> }> {
  const dir = await Deno.makeTempDir({ prefix: "bl-earlier-report-" });
  const files = {
    "results.json": JSON.stringify({ version: 1, experiments: [], ledger: [] }),
    "report.md": "# the earlier report\n",
    "charts/e/1.svg": "<svg/>",
    "notes.txt": "mine",
  };
  for (const [f, text] of Object.entries(files)) {
    await Deno.mkdir(join(dir, f, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, f), text);
  }
  return { dir, files };
}

async function assertUnchanged(r: { dir: string; files: Record<string, string> }): Promise<void> {
  for (const [f, text] of Object.entries(r.files)) {
    equal(await Deno.readTextFile(join(r.dir, f)), text, f);
  }
  const siblings = [...Deno.readDirSync(join(r.dir, ".."))].filter((e) =>
    e.name.startsWith(`.${r.dir.split("/").at(-1)}.`)
  );
  deepEqual(siblings, [], "no partial report beside it");
}

Deno.test("--report keeps the earlier report when the run stops before it starts (bad --jobs, no match, broken file)", async () => {
  const earlier = await earlierReport();
  const broken = await experimentFile(GOOD.replace("backlog: 2", "backlgo: 2"));
  try {
    for (
      const args of [
        ["--jobs", "0"],
        ["--filter", "no-such-experiment"],
        [broken],
      ]
    ) {
      const r = await runCli(["--report", earlier.dir, ...args]);
      equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      await assertUnchanged(earlier);
    }
  } finally {
    await Deno.remove(earlier.dir, { recursive: true });
    await Deno.remove(join(broken, ".."), { recursive: true });
  }
});

rootTest("--report keeps the earlier report when the run is interrupted (SIGINT)", async () => {
  const earlier = await earlierReport();
  try {
    const child = spawnCli(["--report", earlier.dir, "--filter", "syn-dropped"]);
    const prefix = cliPrefix(child.pid);
    await until("its programs", () => labProcesses(prefix).length >= 4, (ok) => ok);
    child.kill("SIGINT");
    const out = await child.output();
    equal(out.code, 130);
    await assertUnchanged(earlier);
  } finally {
    await Deno.remove(earlier.dir, { recursive: true });
  }
});

rootTest(
  "--report on a full disk: one line naming the path, the ledger still printed, the earlier report intact (exit 4)",
  async () => {
    // A 64 KiB tmpfs, in a mount namespace of the test's own.
    const r = await isolated(`
      disk=$(mktemp -d /tmp/bl-full-disk-XXXXXX)
      mount -t tmpfs -o size=64k bl-test "$disk"
      mkdir "$disk/report"
      printf '{"version":1,"experiments":[],"ledger":[]}' > "$disk/report/results.json"
      set +e
      "$DENO" run -A main.ts --report "$disk/report" --filter syn-queue-bound
      echo "exit $?"
      echo "left: $(cd "$disk" && find . | sort | tr '\\n' ' ')"
      echo "earlier: $(cat "$disk/report/results.json")"
      umount "$disk"; rmdir "$disk"
    `);
    match(r.stdout, /^exit 4$/m, r.stdout + r.stderr);
    match(r.stdout, /Claims ledger \(Linux/);
    match(r.stdout, /1 passed, 0 failed in/);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("Cannot write the report"));
    equal(lines.length, 1, r.stderr);
    match(
      lines[0]!,
      /^Cannot write the report to "\/tmp\/bl-full-disk-\w+\/report": No space left on device \(os error 28\) \(writing "(charts|pcaps)\/syn-queue-bound\/[^"]+"\); nothing was written there, and an earlier report in it is unchanged$/,
    );
    ok(!/at async|Uncaught/.test(r.stderr), r.stderr);
    match(r.stdout, /^left: \. \.\/report \.\/report\/results\.json $/m, "no partial directory");
    match(r.stdout, /^earlier: \{"version":1,"experiments":\[\],"ledger":\[\]\}$/m);
  },
);

rootTest(
  "run through sudo, the report and the times cache belong to the user, not root",
  async () => {
    const home = await Deno.makeTempDir({ prefix: "bl-sudo-home-" });
    const nobody = 65534;
    try {
      await Deno.chown(home, nobody, nobody);
      const report = join(home, "out", "report");
      const r = await runCli(["--report", report, "--filter", "syn-dropped"], {
        SUDO_UID: String(nobody),
        SUDO_GID: String(nobody),
        XDG_CACHE_HOME: join(home, ".cache"),
      });
      equal(r.code, 0, r.stderr);
      const owners = async (dir: string) => {
        const out: string[] = [];
        const walk = async (d: string) => {
          const info = await Deno.lstat(d);
          if (info.uid !== nobody || info.gid !== nobody) out.push(`${d}: ${info.uid}:${info.gid}`);
          if (info.isDirectory) {
            for await (const e of Deno.readDir(d)) {
              await walk(join(d, e.name));
            }
          }
        };
        await walk(dir);
        return out;
      };
      ok((await Deno.stat(join(report, "results.json"))).isFile);
      ok((await Deno.stat(join(home, ".cache", "backlog-lab", "times.json"))).isFile);
      deepEqual(await owners(home), [], "everything the lab wrote is the user's");
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
);

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
  // --filter matches a claim of your own (whole, like any claim id), across both directories.
  const filtered = await runCli([
    "--list",
    "--filter",
    "cf:.*",
    "experiments/",
    "experiments/examples/",
  ]);
  equal(filtered.code, 0, filtered.stderr);
  deepEqual(filtered.stdout.match(/^\S+(?= {2}\()/gm), ["cloudflare-syn-queue"]);
  const partial = await runCli(["--list", "--filter", "cf:synack", "experiments/examples/"]);
  equal(partial.code, 2, "a claim id matches whole");
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
      "DENO_NO_UPDATE_CHECK=1",
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

Deno.test("runSettings() turns a run's options into its settings, or names the bad option and a fix", () => {
  const given = runSettings({ jobs: "3", repeat: "2", filter: "accept", set: ["backlog=1,2"] });
  if (typeof given === "string") throw new Error(given);
  equal(given.jobs, 3);
  equal(given.repeat, 2);
  ok(given.filter?.test("accept-queue"));
  deepEqual(given.set, { backlog: ["1", "2"] });
  const defaults = runSettings({});
  if (typeof defaults === "string") throw new Error(defaults);
  equal(defaults.repeat, 1);
  equal(defaults.filter, undefined);
  ok(defaults.jobs >= 1);
  for (
    const [values, message] of [
      [{ jobs: "0" }, /^Invalid --jobs "0": give a whole number from 1 to 64/],
      [{ jobs: "2.5" }, /^Invalid --jobs "2\.5"/],
      [
        { repeat: "-1" },
        /^Invalid --repeat "-1": give a whole number from 1 to 1000, e\.g\. --repeat 20$/,
      ],
      [{ subnet: "8.8.0.0/16" }, /^Invalid --subnet "8\.8\.0\.0\/16": /],
      [{ subnet6: "2001:db8::/48" }, /^Invalid --subnet6 "2001:db8::\/48": /],
      [{ filter: "(" }, /^Invalid --filter "\(": give a regular expression/],
      [{ set: ["backlog"] }, /^Invalid --set "backlog": give a matrix parameter and its values/],
    ] as const
  ) {
    const r = runSettings(values);
    equal(typeof r, "string", JSON.stringify(values));
    match(r as string, message);
  }
});
