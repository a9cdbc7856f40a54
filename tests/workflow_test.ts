/**
 * Tests of `.github/workflows/lab.yml`: it is a valid workflow (by
 * `@action-validator/core`, the GitHub workflow JSON schema), and it does what
 * CI must do — the README's test command as root on a matrix of Ubuntu
 * kernels, with the Deno that `.ci/run` pins, then the lab's report, uploaded
 * even when a test or an experiment failed. No network, no root.
 * @module
 */
import {
  deepStrictEqual as deepEqual,
  match,
  notStrictEqual as notEqual,
  ok as assert,
  strictEqual as equal,
} from "node:assert/strict";
import { validateWorkflow, type ValidationError } from "@action-validator/core";
import { parse } from "yaml";
import { IPTABLES, NFT, TC, TCPDUMP } from "../lab/topology/packages.ts";

const WORKFLOW = await Deno.readTextFile(new URL("../.github/workflows/lab.yml", import.meta.url));
const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));
const CI_RUN = await Deno.readTextFile(new URL("../.ci/run", import.meta.url));

/** The README's two commands, as `deno …` (without `sudo` and `npx -y deno@…`). */
interface ReadmeCommands {
  lab: string;
  test: string;
}

/**
 * The commands of the README's "The two commands" section: the `sh` block's
 * lines `sudo npx -y deno@X task …  # comment`, told apart by their comments
 * ("run the experiments …", "run the test suite").
 */
function readmeCommands(readme: string): ReadmeCommands {
  const section = readme.split(/^## /m).find((s) => s.startsWith("The two commands"));
  const block = section?.match(/^```sh\n([\s\S]*?)^```/m)?.[1];
  if (block === undefined) {
    throw new Error('Cannot find the README\'s "## The two commands" section and its sh block');
  }
  const lines = block.split("\n").filter((l) => l.trim() !== "").map((l) => {
    const [command = "", comment = ""] = l.split("#");
    return {
      // `sudo npx -y deno@2.9.6 task test` → `deno task test`: what CI runs once Deno is installed.
      command: command.trim().replace(/^sudo\s+/, "").replace(
        /^npx\s+(?:-y\s+|--yes\s+)?deno@\S+/,
        "deno",
      ),
      comment,
    };
  });
  const find = (what: RegExp): string => {
    const hits = lines.filter((l) => what.test(l.comment));
    if (hits.length !== 1 || !hits[0]!.command.startsWith("deno ")) {
      throw new Error(
        `Cannot find the README's command commented ${what} in: ${JSON.stringify(block)}`,
      );
    }
    return hits[0]!.command;
  };
  return { lab: find(/\bexperiments\b/), test: find(/\btest\b/) };
}

/** The one Deno version `.ci/run` runs (`npx -y deno@X`), in every place it names one. */
function pinnedDenoVersion(ciRun: string): string {
  const code = ciRun.split("\n").filter((l) => !l.trimStart().startsWith("#")).join("\n");
  const versions = new Set([...code.matchAll(/\bdeno@(\S+)/g)].map((m) => m[1]!));
  if (versions.size !== 1) {
    throw new Error(`Expected .ci/run to pin one Deno version, found: ${[...versions].join(", ")}`);
  }
  return [...versions][0]!;
}

/** One line per leaf error, nested `oneOf` alternatives indented under their parent. */
function formatErrors(errors: readonly ValidationError[], indent = ""): string {
  return errors.map((e) => {
    const where = "path" in e
      ? e.path || "/"
      : e.location
      ? `line ${e.location.line}, column ${e.location.column}`
      : "?";
    const line = `${indent}${where}: ${e.title}${e.detail ? ` (${e.detail})` : ""} [${e.code}]`;
    const nested = "states" in e && e.states
      ? e.states.map((s, i) =>
        `${indent}  alternative ${i + 1}:\n${formatErrors(s.errors, `${indent}    `)}`
      )
      : [];
    return [line, ...nested].join("\n");
  }).join("\n");
}

interface Step {
  name?: unknown;
  uses?: unknown;
  run?: unknown;
  if?: unknown;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}

interface Job {
  "runs-on"?: unknown;
  "timeout-minutes"?: unknown;
  strategy?: { "fail-fast"?: unknown; matrix?: Record<string, unknown> };
  env?: Record<string, unknown>;
  steps?: Step[];
}

interface Workflow {
  on?: unknown;
  permissions?: unknown;
  concurrency?: unknown;
  env?: Record<string, unknown>;
  jobs?: Record<string, Job>;
}

/** A step's shell script, with backslash-continued lines joined. */
function script(step: Step): string {
  return typeof step.run === "string" ? step.run.replace(/\\\n\s*/g, " ") : "";
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `command` as whole words (`deno task test`, not `deno task tests`). */
function runs(step: Step, command: string): boolean {
  return new RegExp(`(?:^|[\\s;&|(])${escapeRegExp(command)}(?=$|[\\s;&|)])`, "m")
    .test(script(step));
}

/** Whether an `if:` still runs the step after an earlier step failed. */
function runsAfterFailure(condition: unknown): boolean {
  const c = String(condition ?? "").replace(/^\$\{\{([\s\S]*)\}\}$/, "$1").replace(/\s+/g, "");
  return ["always()", "success()||failure()", "failure()||success()", "!cancelled()"].includes(c);
}

function triggers(on: unknown): string[] {
  if (typeof on === "string") return [on];
  if (Array.isArray(on)) return on.map(String);
  return on !== null && typeof on === "object" ? Object.keys(on) : [];
}

/** A path as upload-artifact and the lab's `--report` would both name it. */
function normalPath(p: string): string {
  return p.trim().replace(/^["']|["']$/g, "").replace(/^\.\//, "").replace(/\/+$/, "");
}

/**
 * What is wrong with the workflow `src` as this project's CI, one sentence
 * each; empty when nothing is. `commands` and `denoVersion` come from the
 * README and `.ci/run`, so the workflow stays in step with them.
 */
function workflowProblems(
  src: string,
  { commands, denoVersion }: { commands: ReadmeCommands; denoVersion: string },
): string[] {
  const problems: string[] = [];
  const wf = parse(src) as Workflow;
  const on = triggers(wf.on);
  for (const event of ["push", "pull_request", "workflow_dispatch"]) {
    if (!on.includes(event)) problems.push(`The workflow does not run on ${event}`);
  }
  const permissions = wf.permissions as { contents?: unknown } | undefined;
  if (permissions?.contents !== "read" || Object.keys(permissions).length !== 1) {
    problems.push(
      `The workflow's permissions are not just "contents: read": ${JSON.stringify(permissions)}`,
    );
  }
  if (!(wf.concurrency as { group?: unknown } | undefined)?.group) {
    problems.push("The workflow has no concurrency group");
  }

  const jobs = Object.entries(wf.jobs ?? {});
  const labJob = jobs.find(([, j]) => (j.steps ?? []).some((s) => runs(s, commands.lab)));
  if (labJob === undefined) {
    problems.push(`No step of any job runs the README's lab command "${commands.lab}"`);
    return problems;
  }
  const [id, job] = labJob;
  const steps = job.steps ?? [];
  const env = { ...wf.env, ...job.env };

  const timeout = job["timeout-minutes"];
  if (typeof timeout !== "number" || !(timeout > 0)) {
    problems.push(`Job "${id}" has no timeout-minutes (got ${JSON.stringify(timeout)})`);
  }
  if (job.strategy?.["fail-fast"] !== false) {
    problems.push(
      `Job "${id}" does not set fail-fast: false, so one kernel's failure hides others`,
    );
  }
  const matrix = Object.entries(job.strategy?.matrix ?? {}).find(([, v]) =>
    Array.isArray(v) && v.length >= 2 &&
    v.every((x) => typeof x === "string" && /^ubuntu-\d/.test(x))
  );
  const images = matrix?.[1] as string[] | undefined;
  if (matrix === undefined || new Set(images).size !== images?.length) {
    problems.push(
      `Job "${id}" has no matrix of at least two distinct ubuntu-* images: ${
        JSON.stringify(job.strategy?.matrix)
      }`,
    );
  }
  const imageExpr = matrix ? new RegExp(`^\\$\\{\\{\\s*matrix\\.${matrix[0]}\\s*\\}\\}$`) : null;
  if (imageExpr && !imageExpr.test(String(job["runs-on"]))) {
    problems.push(`Job "${id}" does not run on the matrix image: runs-on ${job["runs-on"]}`);
  }

  const install = steps.find((s) => /\bapt-get\s+install\b/.test(script(s)));
  const packages = script(install ?? {}).split(/\s+/);
  for (const pkg of ["nftables", "tcpdump", "iptables"]) {
    if (!packages.includes(pkg)) problems.push(`No apt-get install step installs ${pkg}`);
  }

  const installed = steps.map((s) =>
    script(s).match(/\bnpm\s+(?:install|i)\s+(?:-g|--global)\s+deno@(\S+)/)
  )
    .find((m) => m !== null)?.[1];
  if (installed === undefined) {
    problems.push(`No step installs a pinned Deno (npm install -g deno@${denoVersion})`);
  } else if (installed !== denoVersion) {
    problems.push(
      `The workflow installs deno@${installed} from npm, not .ci/run's deno@${denoVersion}`,
    );
  }
  for (const [, v] of src.matchAll(/\bdeno@(\S+)/g)) {
    if (v !== denoVersion) problems.push(`The workflow names deno@${v}, not deno@${denoVersion}`);
  }

  const check = steps.findIndex((s) => runs(s, "deno task check"));
  if (check < 0) problems.push("No step runs the static checks (deno task check)");
  const test = steps.findIndex((s) => runs(s, commands.test));
  const testStep = steps[test];
  if (testStep === undefined) {
    problems.push(`No step runs the README's test command "${commands.test}"`);
  } else {
    const t = script(testStep);
    if (!/\bsudo\b/.test(t.slice(0, t.indexOf(commands.test)))) {
      problems.push(`The test step does not run "${commands.test}" as root (sudo): ${t}`);
    }
    const requireRoot = /\bBACKLOG_LAB_REQUIRE_ROOT=1\b/.test(t) ||
      (String({ ...env, ...testStep.env }["BACKLOG_LAB_REQUIRE_ROOT"]) === "1" &&
        /\bsudo\s+(?:-E|--preserve-env)\b/.test(t));
    if (!requireRoot) {
      problems.push("The test step does not pass BACKLOG_LAB_REQUIRE_ROOT=1 to the root tests");
    }
  }

  const lab = steps.findIndex((s) => runs(s, commands.lab));
  const labStep = steps[lab]!;
  const dir = script(labStep).match(
    new RegExp(`${escapeRegExp(commands.lab)}\\b[^\\n]*?\\s--report[=\\s]+(\\S+)`),
  )?.[1];
  if (dir === undefined) {
    problems.push(`The lab step does not write a report (${commands.lab} --report DIR)`);
    return problems;
  }
  const report = normalPath(dir);
  if (!/\bsudo\b/.test(script(labStep))) problems.push("The lab step does not run as root (sudo)");
  if (lab < test || lab < check) problems.push("The lab step runs before the checks or tests");
  if (!runsAfterFailure(labStep.if)) {
    problems.push(`The lab step is skipped when a test fails (if: ${labStep.if ?? "absent"})`);
  }
  steps.slice(lab + 1).forEach((s, i) => {
    if (!runsAfterFailure(s.if)) {
      problems.push(
        `Step ${lab + 2 + i} (${
          s.name ?? s.uses ?? script(s)
        }) after the lab is skipped when an experiment fails (if: ${s.if ?? "absent"})`,
      );
    }
  });
  const after = steps.slice(lab + 1);
  const chown = after.find((s) => /\bchown\s+-R\b/.test(script(s)));
  if (!chown || !new RegExp(`(?:^|[\\s"'])${escapeRegExp(report)}\\b`).test(script(chown))) {
    problems.push(`No step after the lab gives "${report}" back to the runner user (chown -R)`);
  }
  if (
    !after.some((s) =>
      script(s).includes(`${report}/report.md`) && script(s).includes("GITHUB_STEP_SUMMARY")
    )
  ) {
    problems.push(`No step after the lab appends ${report}/report.md to $GITHUB_STEP_SUMMARY`);
  }
  const uploads = after.filter((s) => String(s.uses).startsWith("actions/upload-artifact@"));
  const upload = uploads.find((s) =>
    String(s.with?.["path"] ?? "").split("\n").map(normalPath).includes(report)
  );
  if (upload === undefined) {
    problems.push(`No actions/upload-artifact step after the lab uploads "${report}"`);
  } else {
    if (upload.uses !== "actions/upload-artifact@v4") {
      problems.push(`The upload uses ${upload.uses}, not actions/upload-artifact@v4`);
    }
    if (String(upload.if).replace(/\s+/g, "").replace(/^\$\{\{(.*)\}\}$/, "$1") !== "always()") {
      problems.push(`The upload step is not if: always() (if: ${upload.if ?? "absent"})`);
    }
    // Artifact names are unique within a run: one per image, or the second job's upload fails.
    const name = String(upload.with?.["name"] ?? "");
    if (matrix && !new RegExp(`\\$\\{\\{\\s*matrix\\.${matrix[0]}\\s*\\}\\}`).test(name)) {
      problems.push(`The artifact name "${name}" does not name the matrix image`);
    }
  }
  return problems;
}

/**
 * What is wrong with the workflow's kernel job (`deno task lab --kernel …`):
 * it must enable KVM, install what the VMs need, run the README's lab command
 * on several kernels including the runner's, as root, with a report that is
 * uploaded even when an experiment failed.
 */
function kernelJobProblems(src: string, { commands, denoVersion }: typeof FACTS): string[] {
  const problems: string[] = [];
  const wf = parse(src) as Workflow;
  const kernelRun = (s: Step) => runs(s, commands.lab) && /\s--kernel[=\s]/.test(script(s));
  const found = Object.entries(wf.jobs ?? {}).find(([, j]) => (j.steps ?? []).some(kernelRun));
  if (found === undefined) return [`No job runs "${commands.lab} --kernel …"`];
  const [id, job] = found;
  const steps = job.steps ?? [];
  const labIndex = steps.findIndex(kernelRun);
  const lab = script(steps[labIndex]!);
  const specs = [...lab.matchAll(/\s--kernel[=\s]+(\S+)/g)].flatMap((m) => m[1]!.split(","));
  if (specs.length < 2 || !specs.includes("host")) {
    problems.push(`Job "${id}" runs fewer than two kernels or not the runner's (host): ${specs}`);
  }
  if (!/\bsudo\b/.test(lab)) problems.push(`Job "${id}" does not run the lab as root (sudo)`);
  const timeout = job["timeout-minutes"];
  if (typeof timeout !== "number" || !(timeout > 0)) {
    problems.push(`Job "${id}" has no timeout-minutes (got ${JSON.stringify(timeout)})`);
  }
  const before = steps.slice(0, labIndex);
  const packages = before.flatMap((s) =>
    /\bapt-get\s+install\b/.test(script(s)) ? script(s).split(/\s+/) : []
  );
  for (const pkg of ["qemu-system-x86", "busybox-static", "kmod", "nftables", "tcpdump"]) {
    if (!packages.includes(pkg)) {
      problems.push(`Job "${id}" does not install ${pkg} before the lab`);
    }
  }
  if (
    !before.some((s) =>
      /\/dev\/kvm|KERNEL=="kvm"/.test(script(s)) && /0666|666|a\+rw/.test(script(s))
    )
  ) {
    problems.push(
      `Job "${id}" does not open /dev/kvm to the runner before the lab (chmod or udev)`,
    );
  }
  if (!before.some((s) => script(s).includes(`npm install -g deno@${denoVersion}`))) {
    problems.push(`Job "${id}" does not install .ci/run's deno@${denoVersion}`);
  }
  const dir = lab.match(/\s--report[=\s]+(\S+)/)?.[1];
  if (dir === undefined) {
    problems.push(`Job "${id}" writes no report (--report DIR)`);
    return problems;
  }
  const report = normalPath(dir);
  const after = steps.slice(labIndex + 1);
  after.forEach((s) => {
    if (!runsAfterFailure(s.if)) {
      problems.push(
        `Job "${id}": step ${s.name ?? s.uses} after the lab is skipped when an experiment fails`,
      );
    }
  });
  if (!after.some((s) => /\bchown\s+-R\b/.test(script(s)) && script(s).includes(report))) {
    problems.push(`Job "${id}" does not give "${report}" back to the runner user (chown -R)`);
  }
  const upload = after.find((s) =>
    String(s.uses).startsWith("actions/upload-artifact@") &&
    String(s.with?.["path"] ?? "").split("\n").map(normalPath).includes(report)
  );
  if (upload === undefined) problems.push(`Job "${id}" does not upload "${report}"`);
  const names = Object.values(wf.jobs ?? {}).flatMap((j) =>
    (j.steps ?? []).filter((s) => String(s.uses).startsWith("actions/upload-artifact@")).map((s) =>
      String(s.with?.["name"] ?? "")
    )
  );
  if (new Set(names).size !== names.length) {
    problems.push(`Two uploads share an artifact name: ${names.join(", ")}`);
  }
  return problems;
}

const FACTS = { commands: readmeCommands(README), denoVersion: pinnedDenoVersion(CI_RUN) };

Deno.test("validateWorkflow() finds no error in lab.yml", () => {
  const { errors } = validateWorkflow(WORKFLOW);
  equal(errors.length, 0, `lab.yml is not a valid workflow:\n${formatErrors(errors)}`);
});

Deno.test("validateWorkflow() rejects broken copies of lab.yml", () => {
  const cases: [string, string, string][] = [
    ["a misspelt key", "    steps:\n", "    stepz:\n"],
    ["runs-on removed", "    runs-on: ${{ matrix.os }}\n", ""],
    ["a non-numeric timeout", "timeout-minutes: 30", "timeout-minutes: soon"],
    [
      "a step with neither uses nor run",
      "- uses: actions/checkout@v4",
      "- usez: actions/checkout@v4",
    ],
    ["no trigger", "\non:\n", "\nonn:\n"],
  ];
  for (const [what, from, to] of cases) {
    const broken = WORKFLOW.replace(from, to);
    notEqual(broken, WORKFLOW, `${what}: ${JSON.stringify(from)} is not in lab.yml`);
    const { errors } = validateWorkflow(broken);
    assert(errors.length > 0, `${what}: the validator found nothing wrong`);
  }
});

Deno.test("readmeCommands() reads the README's lab and test commands", () => {
  const { lab, test } = FACTS.commands;
  match(lab, /^deno task \S+/);
  match(test, /^deno task \S+/);
  notEqual(lab, test);
  // The README says the installed-Deno form is equivalent: `sudo deno task …`.
  assert(README.includes(`\`sudo ${test}\``), `README does not state \`sudo ${test}\``);
  assert(README.includes(`\`sudo ${lab}\``), `README does not state \`sudo ${lab}\``);
});

Deno.test("pinnedDenoVersion() reads the one version .ci/run pins", () => {
  match(FACTS.denoVersion, /^\d+\.\d+\.\d+$/);
  equal(pinnedDenoVersion("# deno@1.0.0 in a comment\nnpx -y deno@2.1.0 task x\n"), "2.1.0");
});

Deno.test("workflowProblems() finds nothing wrong with lab.yml", () => {
  deepEqual(workflowProblems(WORKFLOW, FACTS), []);
});

Deno.test("workflowProblems() names what a broken copy of lab.yml lost", () => {
  const v = FACTS.denoVersion;
  const cases: [string | RegExp, string, RegExp][] = [
    ["fail-fast: false", "fail-fast: true", /fail-fast: false/],
    ["os: [ubuntu-22.04, ubuntu-24.04]", "os: [ubuntu-24.04]", /at least two distinct ubuntu/],
    ["os: [ubuntu-22.04, ubuntu-24.04]", "os: [ubuntu-24.04, ubuntu-24.04]", /distinct ubuntu/],
    ["runs-on: ${{ matrix.os }}", "runs-on: ubuntu-latest", /does not run on the matrix image/],
    ["timeout-minutes: 30", "", /no timeout-minutes/],
    ["nftables tcpdump", "tcpdump", /installs nftables/],
    [" tcpdump iptables", " iptables", /installs tcpdump/],
    [" iptables iproute2", " iproute2", /installs iptables/],
    [`npm install -g deno@${v}`, "npm install -g deno@2.0.0", /installs deno@2\.0\.0 from npm/],
    [`npm install -g deno@${v}`, "npm install -g deno", /No step installs a pinned Deno/],
    [FACTS.commands.test, `${FACTS.commands.test}s`, /No step runs the README's test command/],
    ["BACKLOG_LAB_REQUIRE_ROOT=1 NO_COLOR=1 deno", "NO_COLOR=1 deno", /BACKLOG_LAB_REQUIRE_ROOT=1/],
    ["deno task check", "deno task lint", /static checks/],
    ["--report report", "", /does not write a report/],
    ["        if: success() || failure()\n", "", /lab step is skipped when a test fails/],
    ["          path: report\n", "          path: out\n", /uploads "report"/],
    ["backlog-lab-report-${{ matrix.os }}", "backlog-lab-report", /does not name the matrix/],
    [
      "      - name: Upload the report\n        if: always()\n",
      "      - name: Upload the report\n",
      /upload step is not if: always\(\)/,
    ],
    ["  workflow_dispatch:\n", "", /does not run on workflow_dispatch/],
    ["  contents: read\n", "  contents: write\n", /permissions/],
    ['for dir in report "$DENO_DIR"', 'for dir in "$DENO_DIR"', /gives "report" back/],
    [/report\/report\.md/g, "report/index.md", /appends report\/report\.md/],
    [
      "back to the runner user\n        if: always()\n",
      "back to the runner user\n",
      /\(Give the report .*\) after the lab is skipped when an experiment fails/,
    ],
  ];
  for (const [from, to, expected] of cases) {
    const broken = WORKFLOW.replace(from, to);
    notEqual(broken, WORKFLOW, `${JSON.stringify(from)} is not in lab.yml`);
    const problems = workflowProblems(broken, FACTS);
    assert(
      problems.some((p) => expected.test(p)),
      `Replacing ${JSON.stringify(from)} with ${
        JSON.stringify(to)
      }: expected a problem matching ${expected}, got ${JSON.stringify(problems)}`,
    );
  }
});

Deno.test("kernelJobProblems() finds nothing wrong with lab.yml's kernel job", () => {
  deepEqual(kernelJobProblems(WORKFLOW, FACTS), []);
});

Deno.test("kernelJobProblems() names what a broken copy of the kernel job lost", () => {
  const cases: [string, string, RegExp][] = [
    ["--kernel sid --kernel host", "--kernel sid", /not the runner's \(host\)/],
    ["busybox-static kmod", "kmod", /does not install busybox-static/],
    ["qemu-system-x86 busybox", "busybox", /does not install qemu-system-x86/],
    ['MODE="0666"', 'MODE="0660"', /does not open \/dev\/kvm/],
    ["timeout-minutes: 90", "", /no timeout-minutes/],
    ["--report report-kernels", "", /writes no report/],
    [
      "          path: report-kernels\n",
      "          path: out\n",
      /does not upload "report-kernels"/,
    ],
    [
      "name: backlog-lab-report-kernels",
      "name: backlog-lab-report-${{ matrix.os }}",
      /share an artifact name/,
    ],
    ["for dir in report-kernels", "for dir in", /give "report-kernels" back/],
    [
      "      - name: Upload the cross-kernel report\n        if: always()\n",
      "      - name: Upload the cross-kernel report\n",
      /Upload the cross-kernel report after the lab is skipped/,
    ],
  ];
  for (const [from, to, expected] of cases) {
    const broken = WORKFLOW.replace(from, to);
    notEqual(broken, WORKFLOW, `${JSON.stringify(from)} is not in lab.yml`);
    const problems = kernelJobProblems(broken, FACTS);
    assert(
      problems.some((p) => expected.test(p)),
      `Replacing ${JSON.stringify(from)} with ${JSON.stringify(to)}: expected ${expected}, got ${
        JSON.stringify(problems)
      }`,
    );
  }
});

Deno.test(".ci/run installs the package of every tool the lab may need on a fresh machine", () => {
  const installs = [...CI_RUN.matchAll(/command -v (\S+) .*missing\+=\((\S+)\)/g)].map((m) =>
    `${m[1]} ${m[2]}`
  );
  for (const need of [NFT, TCPDUMP, IPTABLES, TC]) {
    assert(
      installs.includes(`${need.command} ${need.debianPackage}`) ||
        (need.debianPackage === "iproute2" && installs.some((i) => i.endsWith(" iproute2"))),
      `.ci/run does not install ${need.debianPackage} for ${need.command} (${need.why})`,
    );
  }
});
