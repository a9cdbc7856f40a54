/**
 * A small terminal chart of a run's queue occupancy for `--verbose`: the
 * server's SYN_RECV count, its LISTEN Recv-Q and the Send-Q limit, drawn with
 * asciichart over the run's time, one column per time slice.
 * @module
 */
import asciichart from "asciichart";
import type { RunResult } from "../results.ts";

/** The series drawn: metric suffix, legend label, asciichart colour. */
const SERIES: readonly [string, string, string][] = [
  ["SYN_RECV", "SYN_RECV", asciichart.red],
  ["recvQ", "Recv-Q", asciichart.green],
  ["sendQ", "Send-Q (limit)", asciichart.lightgray],
];

/**
 * Each metric's value at `columns` evenly spaced instants from 0 to the last
 * sample: the last sample taken at or before each instant.
 */
export function resample(
  samples: RunResult["samples"],
  metric: string,
  columns: number,
): number[] {
  const withMetric = samples.filter((s) => metric in s.values);
  if (!withMetric.length) return [];
  const end = withMetric[withMetric.length - 1]!.t;
  const out: number[] = [];
  let k = 0;
  for (let c = 0; c < columns; c++) {
    const at = columns === 1 ? end : (end * c) / (columns - 1);
    while (k + 1 < withMetric.length && withMetric[k + 1]!.t <= at) k++;
    out.push(withMetric[k]!.values[metric]!);
  }
  return out;
}

/** Options of {@linkcode terminalChart}. */
export interface TerminalChartOptions {
  /** Plot columns (default 60). */
  columns?: number;
  /** Plot rows (default 6). */
  height?: number;
  /** Colour the lines (default true unless NO_COLOR is set). */
  color?: boolean;
}

/**
 * The chart's lines, or an empty string when the run has no server samples.
 * The legend line says the time span.
 */
export function terminalChart(
  run: RunResult,
  serverHost: string,
  options: TerminalChartOptions = {},
): string {
  const columns = options.columns ?? 60;
  const color = options.color ?? !Deno.noColor;
  const series = SERIES.map(([m, label, c]) => ({
    label,
    color: c,
    values: resample(run.samples, `${serverHost}.${m}`, columns),
  })).filter((s) => s.values.length);
  if (!series.length) return "";
  const top = Math.max(1, ...series.flatMap((s) => s.values));
  const config = {
    height: Math.min(options.height ?? 6, top),
    min: 0,
    max: top,
    format: (x: number) => String(Math.round(x)).padStart(5),
  };
  const end = run.samples[run.samples.length - 1]!.t;
  const span = `      0 … ${(end / 1000).toFixed(2)} s`;
  if (!color) {
    // Without colour, overlaid lines cannot be told apart: one chart per series.
    return series.map((s) => `${s.label}:\n${asciichart.plot(s.values, config)}`).join("\n") +
      `\n${span}`;
  }
  const plot = asciichart.plot(series.map((s) => s.values), {
    ...config,
    colors: series.map((s) => s.color),
  });
  const legend = series.map((s) => `${s.color}──${asciichart.reset} ${s.label}`).join("   ");
  return `${plot}\n${span}   ${legend}`;
}
