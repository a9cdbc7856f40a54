/**
 * Charts across kernels: for an experiment run on several kernels, one chart
 * whose panels (one per matrix point) draw each kernel's samples of the same
 * metric over each other, for a post that says "this changed in 6.x". Built
 * on the one-run charts of `chart.ts` (their size, fonts and rendering).
 * @module
 */
import type { ExperimentResult, KernelMatrixReport } from "../results.ts";
import { paramsText } from "../base/format.ts";
import {
  CHART_WIDTH,
  chartFrame,
  type ChartSpec,
  SUBTITLE_CHARS,
  toSeconds,
  wrap,
} from "./chart.ts";

/** A chart across kernels: one experiment's metric on each kernel, run by run. */
export interface KernelChart {
  /** The experiment's id. */
  experiment: string;
  /** The metric charted. */
  metric: string;
  /** The Vega-Lite spec. */
  spec: ChartSpec;
}

/** Colours of the kernels' lines, in the run's kernel order. */
const KERNEL_COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
];

/** Dash patterns of the kernels' lines, in kernel order. */
const KERNEL_DASHES: readonly number[][] = [[1, 0], [6, 3], [2, 2], [8, 3, 2, 3], [4, 4], [1, 3]];

/**
 * The metric an experiment's chart across kernels shows: its first
 * expectation on a server-side metric (a queue, a state, a counter), else
 * its first expectation's.
 */
export function kernelChartMetric(e: ExperimentResult): string | undefined {
  const checks = e.runs.flatMap((r) => r.checks).filter((c) => c.over !== "packets");
  const server = e.runs[0]?.server?.host ?? "server";
  return (checks.find((c) => c.metric.startsWith(`${server}.`)) ?? checks[0])?.metric;
}

/**
 * One chart per experiment that ran (with samples) on two kernels or more:
 * small multiples, a panel per matrix point, each kernel's samples of the
 * same metric drawn over each other, coloured by kernel, on a time axis in
 * seconds since the clients were released.
 */
export function kernelChartSpecs(report: KernelMatrixReport): KernelChart[] {
  const ids = [
    ...new Set(report.kernels.flatMap((k) => k.report?.experiments.map((e) => e.id) ?? [])),
  ];
  const charts: KernelChart[] = [];
  for (const id of ids) {
    const results = report.kernels.flatMap((k) => {
      const e = k.report?.experiments.find((x) => x.id === id);
      return e && e.runs.some((r) => r.samples.length) ? [{ kernel: k.label, e }] : [];
    });
    if (results.length < 2) continue;
    const metric = kernelChartMetric(results[0]!.e);
    if (metric === undefined) continue;
    const runs: string[] = [];
    const values: { run: string; kernel: string; t: number; value: number }[] = [];
    for (const { kernel, e } of results) {
      for (const run of e.runs) {
        const name = paramsText(run.params, ", ") || "single run";
        if (!runs.includes(name)) runs.push(name);
        for (const s of run.samples) {
          const v = s.values[metric];
          if (v !== undefined) values.push({ run: name, kernel, t: toSeconds(s.t), value: v });
        }
      }
    }
    if (values.length === 0) continue;
    const kernels = results.map((r) => r.kernel);
    const title = results[0]!.e.title;
    const frame = chartFrame(`${id}: ${metric} on each kernel`, wrap(title, SUBTITLE_CHARS));
    charts.push({
      experiment: id,
      metric,
      spec: {
        ...frame,
        config: {
          ...frame.config,
          header: {
            labelFontSize: 12,
            labelAngle: 0,
            labelOrient: "top",
            labelAnchor: "start",
            labelAlign: "left",
          },
        },
        data: { values },
        facet: {
          row: { field: "run", type: "nominal", sort: runs, title: null },
        },
        spacing: 10,
        spec: {
          width: CHART_WIDTH,
          height: 90,
          mark: { type: "line", interpolate: "step-after", strokeWidth: 2 },
          encoding: {
            x: {
              field: "t",
              type: "quantitative",
              title: "time since the clients were released (s)",
            },
            y: {
              field: "value",
              type: "quantitative",
              title: metric,
              axis: { tickMinStep: 1, format: "d" },
              scale: { zero: true },
            },
            color: {
              field: "kernel",
              type: "nominal",
              title: null,
              sort: kernels,
              scale: { domain: kernels, range: KERNEL_COLORS.slice(0, kernels.length) },
            },
            // Equal values would hide each other: the first kernel wide and solid, the next
            // narrower and dashed, so every kernel's line shows where they coincide.
            strokeWidth: {
              field: "kernel",
              type: "nominal",
              sort: kernels,
              scale: { domain: kernels, range: kernels.map((_, i) => Math.max(1.5, 5 - 1.2 * i)) },
              title: null,
            },
            strokeDash: {
              field: "kernel",
              type: "nominal",
              sort: kernels,
              scale: {
                domain: kernels,
                range: kernels.map((_, i) => KERNEL_DASHES[i % KERNEL_DASHES.length]!),
              },
              title: null,
            },
          },
        },
        resolve: { scale: { x: "independent", y: "independent" } },
      },
    });
  }
  return charts;
}
