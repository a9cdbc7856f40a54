/**
 * The report of a `--kernel` run: `DIR/results.json` (the matrix document),
 * `DIR/report.md` and `DIR/charts/kernels/` (one chart per experiment that ran
 * on several kernels, their samples side by side). Each kernel's own full
 * report sits in `DIR/kernels/<label>/` (written by `writeReport` as each
 * kernel ends), and every verdict of the claims × kernels table links into it.
 *
 * `report.md` says first where the kernels' verdicts differ, with each
 * kernel's numbers side by side and the kernel change that explains it where
 * one is known; then the whole table; then the charts; then a section per
 * kernel.
 * @module
 */
import { dirname, join } from "node:path";
import { seconds } from "../base/format.ts";
import { describeBehaviour } from "../describe/kernel.ts";
import type { KernelLedgerRow, KernelMatrixReport, KernelRun } from "../results.ts";
import { claimAnchor, experimentAnchor } from "./markdown.ts";
import { decidedRows, kernelRunText, longDuration, shortVerdict } from "./kernel_text.ts";
import { markdownCell, markdownTable } from "./table.ts";

/** Options of {@linkcode writeKernelReport}. */
export interface KernelReportOptions {
  /** Per kernel (in order), its report directory relative to DIR, or `""` when it has none. */
  kernelDirs: readonly string[];
  /** Draw the charts across kernels (default true). */
  charts?: boolean;
}

/** An experiment's chart across kernels, relative to the report directory. */
export interface KernelChartFile {
  /** The experiment's id. */
  experiment: string;
  /** The SVG. */
  svg: string;
  /** The PNG. */
  png: string;
  /** The metric charted. */
  metric: string;
}

/**
 * Writes `results.json`, the charts across kernels and `report.md` into `dir`.
 *
 * @returns `report.md`'s name.
 */
export async function writeKernelReport(
  dir: string,
  report: KernelMatrixReport,
  options: KernelReportOptions,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const charts: KernelChartFile[] = [];
  if (options.charts !== false) {
    const [{ kernelChartSpecs }, { renderSvg, svgToPng }] = await Promise.all([
      import("./kernel_chart.ts"),
      import("./chart.ts"),
    ]);
    for (const c of kernelChartSpecs(report)) {
      const stem = `charts/kernels/${c.experiment}`;
      const svg = await renderSvg(c.spec);
      await Deno.mkdir(join(dir, dirname(stem)), { recursive: true });
      await Deno.writeTextFile(join(dir, `${stem}.svg`), svg);
      await Deno.writeFile(join(dir, `${stem}.png`), svgToPng(svg));
      charts.push({
        experiment: c.experiment,
        svg: `${stem}.svg`,
        png: `${stem}.png`,
        metric: c.metric,
      });
    }
  }
  await Deno.writeTextFile(join(dir, "results.json"), JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile(
    join(dir, "report.md"),
    kernelReportMarkdown(report, { kernelDirs: options.kernelDirs, charts }),
  );
  return "report.md";
}

/** A claim's verdict and evidence on each kernel: a table, each verdict linked to its evidence. */
function evidenceTable(
  report: KernelMatrixReport,
  row: KernelLedgerRow,
  kernelDirs: readonly string[],
): string {
  return markdownTable(
    ["kernel", "verdict", "evidence"],
    row.cells.map((cell, i) => {
      const k = report.kernels[i]!;
      const entry = k.report?.ledger.find((l) => l.claim === row.claim);
      const link = evidenceLink(row, i, kernelDirs);
      return [
        cell.kernel,
        link ? `[${cell.verdict}](${link})` : cell.verdict,
        entry?.evidence ?? k.error ?? "",
      ];
    }),
  );
}

/** The link to a kernel's evidence for a claim, or undefined when it has no report directory. */
function evidenceLink(
  row: KernelLedgerRow,
  index: number,
  kernelDirs: readonly string[],
): string | undefined {
  const dir = kernelDirs[index];
  const cell = row.cells[index]!;
  if (!dir || cell.experiments.length === 0) return dir ? `${dir}/report.md` : undefined;
  return `${dir}/report.md#${claimAnchor(cell.experiments[0]!, row.claim)}`;
}

/** `report.md` of a `--kernel` run. */
export function kernelReportMarkdown(
  report: KernelMatrixReport,
  options: { kernelDirs: readonly string[]; charts: readonly KernelChartFile[] },
): string {
  const m = report.machine;
  const { kernelDirs } = options;
  const differing = report.ledger.filter((r) => r.differs);
  const out: string[] = [
    `# backlog-lab on ${report.kernels.length} kernels`,
    "",
    markdownTable(["", ""], [
      [
        "kernels",
        report.kernels.map((k) => `${k.label} (${k.report?.kernel ?? "not run"})`).join(", "),
      ],
      ["machine", `${m.cpu}, ${m.cores} cores, ${(m.memoryMiB / 1024).toFixed(1)} GiB memory`],
      ["system", `${m.os}, Deno ${m.deno}, host ${m.hostname}`],
      ["date", report.startedAt],
      ["command", `\`${report.command}\``],
      ["time", longDuration(report.durationMs)],
      [
        "result",
        report.kernels.map((k) => {
          const e = k.report?.experiments ?? [];
          const skipped = e.filter((x) => x.skipped).length;
          const failed = e.filter((x) => !x.passed).length;
          return k.report
            ? `${k.label}: ${
              e.length - failed - skipped
            } passed, ${failed} failed, ${skipped} skipped`
            : `${k.label}: not run`;
        }).join("; "),
      ],
    ]),
    "",
    "Each kernel ran the same experiments, planned for what the lab probed of it (which sysctls a " +
    "fresh namespace has, how its SYN queue's full test counts), each in a QEMU VM booted with that " +
    "kernel unless it is this machine's own. Every verdict links to the evidence in that kernel's " +
    "own report.",
    "",
    "## Contents",
    "",
    "- [Where the kernels differ](#where-the-kernels-differ)",
    ...(report.ledger.some((r) => r.changes)
      ? ["- [Same verdict, other numbers](#same-verdict-other-numbers)"]
      : []),
    "- [Claims × kernels](#claims-x-kernels)",
    ...(options.charts.length ? ["- [Charts across kernels](#charts-across-kernels)"] : []),
    ...report.kernels.map((k) => `- [${k.label}](#${kernelAnchor(k)})`),
    "",
    '<a id="where-the-kernels-differ"></a>',
    "",
    "## Where the kernels differ",
    "",
  ];
  if (differing.length === 0) {
    out.push("Every claim has the same verdict on every kernel that ran it.", "");
  }
  for (const row of differing) {
    out.push(`### ${row.claim}: ${markdownCell(row.statement)}`, "");
    out.push(
      evidenceTable(report, row, kernelDirs),
      "",
      `**Why.** ${row.explanation ?? "No known kernel change splits the kernels this way."}`,
      "",
    );
  }
  const changed = report.ledger.filter((r) => r.changes);
  if (changed.length) {
    out.push(
      '<a id="same-verdict-other-numbers"></a>',
      "",
      "## Same verdict, other numbers",
      "",
      "Claims whose verdict is the same on every kernel, but whose numbers follow a kernel change " +
        "the kernels differ in.",
      "",
    );
    for (const row of changed) {
      out.push(
        `### ${row.claim}: ${markdownCell(row.statement)}`,
        "",
        evidenceTable(report, row, kernelDirs),
        "",
        `**Change.** ${row.changes}`,
        "",
      );
    }
  }
  out.push(
    '<a id="claims-x-kernels"></a>',
    "",
    "## Claims × kernels",
    "",
    "A row per claim the experiments decided, a column per kernel; each verdict links to its " +
      "evidence. **Bold** rows differ." + notDecided(report),
    "",
    markdownTable(
      ["claim", ...report.kernels.map((k) => k.label)],
      decidedRows(report).map((row) => [
        row.differs ? `**${row.claim}**` : row.claim,
        ...row.cells.map((cell, i) => {
          const link = evidenceLink(row, i, kernelDirs);
          return link ? `[${cell.verdict}](${link})` : cell.verdict;
        }),
      ]),
    ),
    "",
  );
  if (options.charts.length) {
    out.push(
      '<a id="charts-across-kernels"></a>',
      "",
      "## Charts across kernels",
      "",
      "For each experiment that ran on more than one kernel: the same metric of each kernel, run by " +
        "run, side by side (seconds since the clients were released).",
      "",
    );
    for (const c of options.charts) {
      out.push(
        `### ${c.experiment}: \`${c.metric}\``,
        "",
        `![${c.experiment}: ${c.metric} on each kernel](${c.svg})`,
        "",
        `Chart as [SVG](${c.svg}) or [PNG](${c.png}).`,
        "",
      );
    }
  }
  for (const [i, k] of report.kernels.entries()) out.push(...kernelSection(k, kernelDirs[i] ?? ""));
  return out.join("\n");
}

function notDecided(report: KernelMatrixReport): string {
  const shown = new Set(decidedRows(report).map((r) => r.claim));
  const rest = report.ledger.filter((r) => !shown.has(r.claim)).map((r) => r.claim);
  return rest.length ? ` Not decided by the experiments of this run: ${rest.join(", ")}.` : "";
}

function kernelAnchor(k: KernelRun): string {
  return `kernel-${k.label.replace(/[^A-Za-z0-9]+/g, "-")}`;
}

function kernelSection(k: KernelRun, dir: string): string[] {
  const out = [
    `<a id="${kernelAnchor(k)}"></a>`,
    "",
    `## ${k.label}${k.report ? `: Linux ${k.report.kernel}` : ""}`,
    "",
  ];
  const rows: string[][] = [["how", kernelRunText(k)], ["time", longDuration(k.durationMs)]];
  if (k.vm) {
    rows.push(
      [
        "VM",
        `${k.vm.memoryMiB} MiB, ${k.vm.cpus} CPUs, ${k.vm.attempts} boot attempt(s), exit ${k.vm.exitCode}`,
      ],
      ["kernel command line", `\`${k.vm.kernelCmdline}\``],
    );
  }
  const facts = k.report?.kernelFacts;
  if (facts) {
    rows.push(["measured", describeBehaviour(facts.behaviour).join("; ")]);
    const shown = [
      "net.core.somaxconn",
      "net.ipv4.tcp_max_syn_backlog",
      "net.ipv4.tcp_syncookies",
      "net.ipv4.tcp_synack_retries",
      "net.ipv4.tcp_syn_retries",
      "net.ipv4.tcp_syn_linear_timeouts",
      "net.ipv4.tcp_rto_min_us",
      "net.ipv4.tcp_rto_max_ms",
    ];
    rows.push([
      "a fresh namespace",
      shown.map((s) => `\`${s}\` ${facts.sysctls[s] ?? "(none)"}`).join(", "),
    ]);
  }
  if (dir) rows.push(["full report", `[${dir}/report.md](${dir}/report.md)`]);
  out.push(markdownTable(["", ""], rows), "");
  if (k.error) out.push(`**Error:** ${markdownCell(k.error)}`, "");
  if (k.report) {
    out.push(
      markdownTable(
        ["experiment", "result", "runs", "time"],
        k.report.experiments.map((e) => [
          dir ? `[${e.id}](${dir}/report.md#${experimentAnchor(e.id)})` : e.id,
          e.skipped
            ? `skipped: ${e.skipped}`
            : `${e.passed ? "passed" : "**FAILED**"}${
              e.skippedRuns?.length
                ? ` (skipped ${
                  e.skippedRuns.map((s) => `${paramsOf(s.params)}: ${s.reason}`).join("; ")
                })`
                : ""
            }`,
          String(e.runs.length),
          seconds(e.durationMs),
        ]),
      ),
      "",
    );
  }
  return out;
}

function paramsOf(params: Record<string, unknown>): string {
  return Object.entries(params).map(([k, v]) => `${k}=${v}`).join(" ") || "the run";
}

export { shortVerdict };
