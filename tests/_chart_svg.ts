/**
 * Reads the numbers back out of a rendered chart SVG: the time axis's labels
 * and each panel's value-axis ticks give the pixel ↔ value scales, and each
 * line's path vertices, mapped back through them, give the values the
 * picture shows. Tests compare those with the run's samples.
 * @module
 */
import assert from "node:assert/strict";
import { chartData } from "../lab/report/chart.ts";
import type { RunResult } from "../lab/results.ts";

/** A linear pixel → value map fitted through the first and last of (pixel, value) pairs. */
interface Scale {
  toValue(px: number): number;
  /** Value units per pixel. */
  perPixel: number;
}

function fit(pairs: [number, number][], what: string): Scale {
  assert.ok(pairs.length >= 2, `${what}: fewer than two axis labels`);
  const [p0, v0] = pairs[0]!;
  const [p1, v1] = pairs[pairs.length - 1]!;
  const a = (v1 - v0) / (p1 - p0);
  return { toValue: (px) => v0 + (px - p0) * a, perPixel: Math.abs(a) };
}

/** The chart panels whose lines are sampled metrics (see `chartSpec`). */
const SAMPLED_PANELS = ["server", "clients"];

/** One panel's lines: series name → [t (s), value] at each vertex column (the last vertex there). */
export interface ChartPanel {
  yTitle: string;
  perPixel: number;
  series: Map<string, [number, number][]>;
}

/** Every line panel of a chart, with the shared time scale. */
export function readChart(svg: string): { secondsPerPixel: number; panels: ChartPanel[] } {
  // The time axis with a title is the bottom one; its labels sit exactly at their ticks.
  const xStart = svg.indexOf(
    `aria-label="X-axis titled 'time since the clients were released (s)'`,
  );
  assert.ok(xStart >= 0, "the chart has no titled time axis");
  const xAxis = svg.slice(xStart, svg.indexOf("role-axis-domain", xStart));
  const xLabels = [...xAxis.matchAll(/translate\(([\d.]+),16\)"[^>]*>([\d.]+)<\/text>/g)].map((
    m,
  ) => [Number(m[1]), Number(m[2])] as [number, number]);
  const x = fit(xLabels, "time axis");

  const panels: ChartPanel[] = [];
  // Each panel is a scope group named `<panel>_group`; its axes and line groups are inside it.
  // The panels of sampled lines are `server` and `clients` (the outcome bars and the connect-time
  // distribution have other names and scales).
  const parts = svg.split(/class="mark-group role-scope (\w+)_group"/);
  for (let i = 1; i + 1 < parts.length; i += 2) {
    if (!SAMPLED_PANELS.includes(parts[i]!)) continue;
    const scope = parts[i + 1]!;
    const yMatch = /aria-label="Y-axis titled '([^']+)' for a linear scale/.exec(scope);
    if (!yMatch) continue;
    const yAxis = scope.slice(yMatch.index, scope.indexOf("role-axis-domain", yMatch.index));
    const ticks = [...yAxis.matchAll(/translate\(0,([\d.]+)\)" x2="-5"/g)].map((m) => Number(m[1]));
    const labels = [...yAxis.matchAll(/>([\d.,]+)<\/text>/g)].map((m) =>
      Number(m[1]!.replaceAll(",", ""))
    );
    assert.equal(ticks.length, labels.length, `${yMatch[1]}: ticks and labels differ in number`);
    const y = fit(ticks.map((t, i) => [t, labels[i]!]), yMatch[1]!);
    const series = new Map<string, [number, number][]>();
    for (
      const m of scope.matchAll(
        /aria-label="[^"]*series: ([^"]+)" role="graphics-symbol" aria-roledescription="line mark" d="([^"]+)"/g,
      )
    ) {
      const columns = new Map<number, number>();
      for (const v of m[2]!.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)) {
        columns.set(Number(v[1]), Number(v[2])); // the last vertex of a column wins
      }
      series.set(
        m[1]!.replaceAll("&apos;", "'").replaceAll("&amp;", "&"),
        [...columns].map(([px, py]) => [x.toValue(px), y.toValue(py)]),
      );
    }
    panels.push({ yTitle: yMatch[1]!, perPixel: y.perPixel, series });
  }
  return { secondsPerPixel: x.perPixel, panels };
}

/**
 * Asserts that every line the chart draws shows exactly the run's samples of
 * its metric: one vertex column per sample, at the sample's time and value
 * (within a pixel, or half a unit where a pixel is finer than that).
 *
 * @returns How many (series, sample) points were compared.
 */
export function assertChartShowsSamples(svg: string, run: RunResult, serverHost: string): number {
  const chart = readChart(svg);
  const data = chartData(run, serverHost);
  const metricOf = new Map(
    [...data.server, ...data.clients].map((p) => [p.series, p.metric]),
  );
  let compared = 0;
  const drawn = new Set<string>();
  for (const panel of chart.panels) {
    const tolerance = Math.max(0.5, 1.5 * panel.perPixel);
    for (const [name, points] of panel.series) {
      drawn.add(name);
      const metric = metricOf.get(name);
      assert.ok(metric, `the chart draws "${name}", which is no sampled metric`);
      const samples = run.samples.filter((s) => metric in s.values);
      assert.equal(points.length, samples.length, `"${name}": vertex columns vs samples`);
      for (const [i, s] of samples.entries()) {
        const [t, v] = points[i]!;
        assert.ok(
          Math.abs(t - s.t / 1000) <= 1.5 * chart.secondsPerPixel,
          `"${name}" point ${i}: drawn at ${t.toFixed(4)} s, sampled at ${s.t} ms`,
        );
        assert.ok(
          Math.abs(v - s.values[metric]!) <= tolerance,
          `"${name}" at ${s.t} ms: drawn ${v.toFixed(2)}, sampled ${s.values[metric]}`,
        );
        compared++;
      }
    }
  }
  for (const name of metricOf.keys()) assert.ok(drawn.has(name), `"${name}" is not drawn`);
  return compared;
}
