/**
 * Charts of one run for reports: the server's queues over time (SYN_RECV,
 * ESTABLISHED, the LISTEN socket's Recv-Q against its Send-Q limit), the
 * clients' socket states, the timeline's steps, and captured packet events
 * (RSTs, retransmitted SYNs and SYN-ACKs), on one time axis.
 *
 * The chart is a Vega-Lite spec rendered to SVG by Vega without a browser,
 * and to PNG by resvg with the DejaVu Sans font from npm, so the picture does
 * not depend on the fonts a machine has.
 * @module
 */
import { createRequire } from "node:module";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
// Importing the font package's manifest makes Deno fetch the package, so its .ttf can be resolved.
import "dejavu-fonts-ttf/package.json" with { type: "json" };
import type { ExperimentResult, KernelMatrixReport, RunResult } from "../results.ts";
import { paramsText } from "../base/format.ts";

/**
 * A Vega-Lite specification as plain JSON (see
 * https://vega.github.io/vega-lite/docs/spec.html); edit it before rendering to restyle a chart.
 */
export type ChartSpec = Record<string, unknown>;

/** Chart width in pixels: fits a blog column with the legend beside it. */
export const CHART_WIDTH = 560;

/** What a chart is about, for its title. */
export interface ChartContext {
  /** The experiment's id. */
  experiment: string;
  /** The experiment's title. */
  title: string;
  /** The server's host name in the experiment (usually `server`). */
  serverHost: string;
  /** The kernel release, shown under the title. */
  kernel?: string;
}

/** One point of a line: which series, when (seconds since the release), the value. */
export interface ChartPoint {
  /** The series' legend label. */
  series: string;
  /** Seconds since the clients were released. */
  t: number;
  /** The sampled value. */
  value: number;
  /** The metric the value was read from. */
  metric: string;
}

/** A mark on the time axis: a timeline step or a packet event. */
export interface ChartEvent {
  /** Seconds since the clients were released. */
  t: number;
  /** Its row label, e.g. `RST from server` or a step's name. */
  label: string;
}

/** The data a run's chart draws, taken from its samples, timeline and captures. */
export interface ChartData {
  /** The server panel's lines. */
  server: ChartPoint[];
  /** The client panel's lines. */
  clients: ChartPoint[];
  /** Timeline steps. */
  steps: ChartEvent[];
  /** Packet events from the captures. */
  packets: ChartEvent[];
}

/** Server metric → legend label, in drawing order. */
const SERVER_SERIES: readonly [string, string][] = [
  // The queue first, wide and pale, so the ESTABLISHED line stays visible on top of it.
  ["recvQ", "LISTEN Recv-Q (accept queue)"],
  ["sendQ", "LISTEN Send-Q (its limit)"],
  ["SYN_RECV", "SYN_RECV sockets"],
  ["ESTABLISHED", "ESTABLISHED sockets"],
];

/** Client-side states, in drawing order. */
const CLIENT_STATES: readonly [string, string][] = [
  ["SYN_SENT", "SYN-SENT"],
  ["ESTABLISHED", "ESTABLISHED"],
];

const SERVER_COLORS = ["#2ca02c", "#7f7f7f", "#d62728", "#1f77b4"];
const CLIENT_COLORS = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];

/** The chart's time axis is in seconds; the results' times are milliseconds. */
function toSeconds(ms: number): number {
  return ms / 1000;
}

function seriesOf(run: RunResult, metric: string, label: string): ChartPoint[] {
  return run.samples.flatMap((s) => {
    const v = s.values[metric];
    return v === undefined ? [] : [{ series: label, t: toSeconds(s.t), value: v, metric }];
  });
}

/**
 * The lines and marks a run's chart draws. Lines come only from the kernel's
 * samples; events from the timeline and the packet captures.
 */
export function chartData(run: RunResult, serverHost: string): ChartData {
  const server = SERVER_SERIES.flatMap(([m, label]) => seriesOf(run, `${serverHost}.${m}`, label));
  const hosts = [
    ...new Set(
      run.samples.flatMap((s) => Object.keys(s.values)).map((k) => k.split(".")[0]!),
    ),
  ].filter((h) => h !== serverHost && h !== "clients");
  const clients = hosts.flatMap((h) =>
    CLIENT_STATES.flatMap(([state, label]) =>
      seriesOf(run, `${h}.${state}`, hosts.length > 1 ? `${h} ${label}` : `client ${label}`)
    )
  );
  const steps = run.timeline.map((s) => ({ t: toSeconds(s.atMs), label: s.name }));
  const packets: ChartEvent[] = [];
  for (const [host, conns] of Object.entries(run.packets)) {
    const where = Object.keys(run.packets).length > 1 ? ` (${host})` : "";
    for (const c of conns) {
      for (const e of c.events) {
        const from = e.dir === "in" ? "client" : "server";
        let label: string | undefined;
        if (e.kind === "RST") label = `RST from ${from}`;
        else if (e.retransmit && (e.kind === "SYN" || e.kind === "SYN-ACK")) {
          label = `${e.kind} retransmitted`;
        }
        if (label) packets.push({ t: toSeconds(e.t), label: label + where });
      }
    }
  }
  packets.sort((a, b) => a.t - b.t);
  return { server, clients, steps, packets };
}

/**
 * The Vega-Lite spec of a run's chart: a steps strip, the server panel, the
 * client panel and a packet strip, stacked on one shared time axis.
 */
export function chartSpec(run: RunResult, context: ChartContext): ChartSpec {
  const data = chartData(run, context.serverHost);
  const tMax = Math.max(
    0.001,
    ...data.server.map((p) => p.t),
    ...data.clients.map((p) => p.t),
    ...data.steps.map((p) => p.t),
    ...data.packets.map((p) => p.t),
  );
  const x = {
    field: "t",
    type: "quantitative" as const,
    scale: { domain: [0, tMax], nice: false, zero: true },
    title: "time since the clients were released (s)",
  };
  const countAxis = { tickMinStep: 1, format: "d" };
  const stepRules = data.steps.length
    ? [{
      data: { values: data.steps },
      mark: { type: "rule" as const, color: "#999", strokeDash: [2, 3] },
      encoding: { x },
    }]
    : [];
  const linePanel = (
    name: string,
    points: ChartPoint[],
    colors: string[],
    height: number,
    yTitle: string,
    withAxis: boolean,
  ) => ({
    name,
    height,
    width: CHART_WIDTH,
    layer: [
      ...stepRules,
      {
        data: { values: points },
        mark: { type: "line" as const, interpolate: "step-after" as const },
        encoding: {
          x: withAxis ? x : { ...x, axis: { labels: false, ticks: true }, title: null },
          y: {
            field: "value",
            type: "quantitative" as const,
            title: yTitle,
            axis: countAxis,
            scale: { zero: true },
          },
          color: {
            field: "series",
            type: "nominal" as const,
            title: null,
            sort: null,
            scale: {
              domain: [...new Set(points.map((p) => p.series))],
              range: colors,
            },
          },
          strokeDash: {
            condition: { test: "indexof(datum.series, 'Send-Q') >= 0", value: [6, 4] },
            value: [1, 0],
          },
          strokeWidth: {
            condition: { test: "indexof(datum.series, 'Recv-Q') >= 0", value: 6 },
            value: 2,
          },
          opacity: {
            condition: { test: "indexof(datum.series, 'Recv-Q') >= 0", value: 0.45 },
            value: 1,
          },
        },
      },
    ],
    resolve: { scale: { color: "independent" } },
  });
  const strip = (
    name: string,
    events: ChartEvent[],
    color: string,
    withAxis: boolean,
  ) => ({
    name,
    height: { step: 16 },
    width: CHART_WIDTH,
    data: { values: events },
    mark: { type: "tick" as const, color, thickness: 2 },
    encoding: {
      x: withAxis ? x : { ...x, axis: { labels: false, ticks: true }, title: null },
      y: {
        field: "label",
        type: "nominal" as const,
        title: null,
        sort: null,
        axis: { labelLimit: 220 },
      },
      tooltip: [{ field: "t", title: "s" }, { field: "label" }],
    },
  });
  // Only the bottom panel carries the time axis's labels and title.
  const hasClients = data.clients.length > 0;
  const hasPackets = data.packets.length > 0;
  const panels = [
    ...(data.steps.length ? [strip("steps", data.steps, "#555", false)] : []),
    linePanel(
      "server",
      data.server,
      SERVER_COLORS,
      180,
      "server sockets",
      !hasClients && !hasPackets,
    ),
    ...(hasClients
      ? [linePanel("clients", data.clients, CLIENT_COLORS, 110, "client sockets", !hasPackets)]
      : []),
    ...(hasPackets ? [strip("packets", data.packets, "#d62728", true)] : []),
  ];
  const subtitle = [
    ...wrap(context.title, SUBTITLE_CHARS),
    ...wrap(
      `${paramsText(run.params, ", ") || "single run"}; ${
        run.mode === "fast" ? "shortened timers" : "the kernel's timers"
      }${context.kernel ? `; Linux ${context.kernel}` : ""}; ${run.samples.length} samples`,
      SUBTITLE_CHARS,
    ),
  ];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: context.experiment,
      subtitle,
      anchor: "start",
      fontSize: 15,
      subtitleFontSize: 12,
    },
    background: "white",
    padding: 8,
    config: {
      font: "DejaVu Sans",
      axis: { labelFontSize: 11, titleFontSize: 11 },
      legend: {
        labelFontSize: 11,
        labelLimit: 280,
        orient: "top",
        direction: "horizontal",
        columns: 2,
        symbolStrokeWidth: 3,
      },
    },
    spacing: 6,
    vconcat: panels,
    resolve: { scale: { color: "independent" } },
  };
}

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
    charts.push({
      experiment: id,
      metric,
      spec: {
        $schema: "https://vega.github.io/schema/vega-lite/v6.json",
        title: {
          text: `${id}: ${metric} on each kernel`,
          subtitle: wrap(title, SUBTITLE_CHARS),
          anchor: "start",
          fontSize: 15,
          subtitleFontSize: 12,
        },
        background: "white",
        padding: 8,
        config: {
          font: "DejaVu Sans",
          axis: { labelFontSize: 11, titleFontSize: 11 },
          header: {
            labelFontSize: 12,
            labelAngle: 0,
            labelOrient: "top",
            labelAnchor: "start",
            labelAlign: "left",
          },
          legend: {
            labelFontSize: 11,
            orient: "top",
            direction: "horizontal",
            symbolStrokeWidth: 3,
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

/** Subtitle characters per line: about the chart's width at 12 px. */
const SUBTITLE_CHARS = 90;

/** Splits text into lines of at most `width` characters at spaces (a longer word gets its own line). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** Renders a Vega-Lite spec to SVG text (no browser, no canvas). */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), {
    renderer: "none",
  });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

let fontFile: string | undefined;

/** The DejaVu Sans file of the pinned npm package. */
function dejavuSans(): string {
  return fontFile ??= createRequire(import.meta.url).resolve(
    "dejavu-fonts-ttf/ttf/DejaVuSans.ttf",
  );
}

/** Rasterises SVG text to PNG bytes at `scale` times its size (2 = sharp on high-DPI screens). */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: false, fontFiles: [dejavuSans()], defaultFontFamily: "DejaVu Sans" },
    fitTo: { mode: "zoom", value: scale },
    background: "white",
  });
  return resvg.render().asPng();
}
