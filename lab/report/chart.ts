/**
 * Charts of one run for reports: the server's queues over time (SYN_RECV,
 * ESTABLISHED, the LISTEN socket's Recv-Q against its Send-Q limit), the
 * clients' outcomes over time (connects, resets, refusals, timeouts a
 * second, for runs of many clients), the clients' socket states, the
 * timeline's steps, and captured packet events (RSTs, retransmitted SYNs and
 * SYN-ACKs), on one time axis; below them, for runs of many clients, the
 * distribution of their connect() and first-reply-byte times against the
 * client's SYN resend times.
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
import type { OutcomeBin, RunResult } from "../results.ts";
import { modeText, paramsText } from "../base/format.ts";

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
  /** What the experiment's default variant shortens (see `ExperimentResult.shortened`). */
  shortened?: string;
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

/** One bar segment of the outcomes panel: outcome events of one kind in one time bin. */
export interface OutcomeBar {
  /** The outcome's legend label, e.g. `reset (ECONNRESET)`. */
  series: string;
  /** The bin's start and end, seconds since the release. */
  t: number;
  t2: number;
  /** Events a second in the bin. */
  perSecond: number;
  /** The segment's bottom and top in the bin's stack, events a second. */
  y0: number;
  y1: number;
}

/** One point of a distribution's cumulative curve. */
export interface CdfPoint {
  /** `connect()` or `first reply byte`, with the group when there are several. */
  series: string;
  /** Seconds since connect() began. */
  t: number;
  /** Share of the group's clients at or below `t`, percent. */
  share: number;
}

/** The data a run's chart draws, taken from its samples, timeline, captures and clients. */
export interface ChartData {
  /** The server panel's lines. */
  server: ChartPoint[];
  /** The client panel's lines. */
  clients: ChartPoint[];
  /** Timeline steps. */
  steps: ChartEvent[];
  /** Packet events from the captures. */
  packets: ChartEvent[];
  /** Client outcome events a second, by bin (runs of many clients only). */
  outcomes: OutcomeBar[];
  /** Cumulative distributions of connect() and first-byte times (runs of many clients only). */
  times: CdfPoint[];
  /** When the clients' SYN and its resends go, seconds after connect() began (with `times`). */
  synSends: ChartEvent[];
}

/** A group opening at least this many connections gets the outcome and distribution panels. */
export const MANY_CLIENTS = 100;
/** The room a SYN-resend label takes on the distribution panel, px. */
const LABEL_PX = 50;
/** Height of the distribution panel, px. */
const TIMES_HEIGHT = 160;
/** Points a distribution's curve is drawn with at most. */
const CDF_POINTS = 400;

/** Outcome kinds, their legend labels and colours, in stacking order. */
const OUTCOMES: readonly [keyof Omit<OutcomeBin, "t">, string, string][] = [
  ["connected", "connect() returned", "#2ca02c"],
  ["timedOut", "timed out", "#ff7f0e"],
  ["reset", "reset (ECONNRESET)", "#d62728"],
  ["refused", "refused (ECONNREFUSED)", "#9467bd"],
  ["failed", "other error", "#7f7f7f"],
];

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
export function toSeconds(ms: number): number {
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
  const many = Object.entries(run.experience ?? {}).filter(([, x]) =>
    x.connections >= MANY_CLIENTS
  );
  const outcomes: OutcomeBar[] = [];
  const times: CdfPoint[] = [];
  for (const [group, x] of many) {
    const suffix = many.length > 1 ? ` (${group})` : "";
    const { binMs, bins } = x.overTime;
    for (const b of bins) {
      // Stacked in OUTCOMES order; groups side by side would hide each other, so they stack too.
      let y = outcomes.filter((o) => o.t === toSeconds(b.t)).reduce((m, o) => Math.max(m, o.y1), 0);
      for (const [kind, label] of OUTCOMES) {
        if (b[kind] > 0) {
          const perSecond = (b[kind] * 1000) / binMs;
          outcomes.push({
            series: label + suffix,
            t: toSeconds(b.t),
            t2: toSeconds(b.t + binMs),
            perSecond,
            y0: y,
            y1: y + perSecond,
          });
          y += perSecond;
        }
      }
    }
    const records = run.connections.filter((c) => c.group === group);
    const connectMs = records.flatMap((c) =>
      c.connect === "ok" && c.connectMs !== null ? [c.connectMs] : []
    );
    const firstByteMs = records.flatMap((c) =>
      c.firstByteMs !== undefined && c.firstByteMs !== null ? [c.firstByteMs] : []
    );
    times.push(
      ...cdf(`connect() returned${suffix}`, connectMs, records.length),
      ...cdf(`first reply byte${suffix}`, firstByteMs, records.length),
    );
  }
  const synSends = times.length
    ? synSendTimes(clientSysctls(run, serverHost)).map((ms, k) => ({
      t: toSeconds(ms),
      label: k === 0 ? "SYN" : `resend ${k}`,
    }))
    : [];
  return { server, clients, steps, packets, outcomes, times, synSends };
}

/**
 * The cumulative share of `of` clients whose time is at most t, as a step
 * curve of at most {@linkcode CDF_POINTS} points (every value when fewer):
 * clients that never got there keep the curve below 100 %.
 */
function cdf(series: string, valuesMs: number[], of: number): CdfPoint[] {
  if (valuesMs.length === 0 || of === 0) return [];
  const sorted = [...valuesMs].sort((a, b) => a - b);
  const stride = Math.max(1, Math.ceil(sorted.length / CDF_POINTS));
  const points: CdfPoint[] = [{ series, t: 0, share: 0 }];
  for (let i = 0; i < sorted.length; i += stride) {
    const last = Math.min(sorted.length, i + stride) - 1;
    points.push({ series, t: toSeconds(sorted[i]!), share: (100 * i) / of });
    points.push({ series, t: toSeconds(sorted[last]!), share: (100 * (last + 1)) / of });
  }
  return points;
}

/** The sysctls of the run's client hosts (the first that records the SYN schedule's). */
function clientSysctls(run: RunResult, serverHost: string): Record<string, string> {
  const hosts = Object.entries(run.sysctls).filter(([h]) => h !== serverHost);
  return hosts.find(([, s]) => "net.ipv4.tcp_syn_retries" in s)?.[1] ?? hosts[0]?.[1] ?? {};
}

/**
 * When a client sends its SYN and the resends, ms after the first: the
 * initial RTO of 1 s, kept for `tcp_syn_linear_timeouts` resends (a 6.x
 * sysctl; absent: 0), then doubled up to `tcp_rto_max_ms` (default 120 s),
 * for `tcp_syn_retries` resends (default 6).
 */
export function synSendTimes(sysctls: Record<string, string>): number[] {
  const number = (name: string, fallback: number) => {
    const v = Number(sysctls[`net.ipv4.${name}`]);
    return Number.isFinite(v) && sysctls[`net.ipv4.${name}`] !== undefined ? v : fallback;
  };
  const retries = number("tcp_syn_retries", 6);
  const linear = number("tcp_syn_linear_timeouts", 0);
  const rtoMax = number("tcp_rto_max_ms", 120_000);
  const sends = [0];
  let rto = 1000;
  for (let k = 1; k <= retries; k++) {
    sends.push(sends.at(-1)! + rto);
    if (k > linear) rto = Math.min(rto * 2, rtoMax);
  }
  return sends;
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
    ...data.outcomes.map((p) => p.t2),
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
  const outcomesPanel = (withAxis: boolean) => ({
    name: "outcomes",
    height: 110,
    width: CHART_WIDTH,
    layer: [
      ...stepRules,
      {
        data: { values: data.outcomes },
        mark: { type: "rect" as const, stroke: "white", strokeWidth: 0.3 },
        encoding: {
          x: withAxis ? x : { ...x, axis: { labels: false, ticks: true }, title: null },
          x2: { field: "t2" },
          y: {
            field: "y1",
            type: "quantitative" as const,
            title: "client outcomes per s",
            axis: countAxis,
            scale: { zero: true },
          },
          y2: { field: "y0" },
          color: {
            field: "series",
            type: "nominal" as const,
            title: null,
            sort: null,
            scale: {
              domain: OUTCOMES.map(([, label]) => label).filter((l) =>
                data.outcomes.some((b) => b.series.startsWith(l))
              ),
              range: OUTCOMES.filter(([, l]) => data.outcomes.some((b) => b.series.startsWith(l)))
                .map(([, , color]) => color),
            },
          },
          tooltip: [{ field: "series" }, { field: "t", title: "s" }, {
            field: "perSecond",
            title: "per s",
          }],
        },
      },
    ],
    resolve: { scale: { color: "independent" } },
  });
  // Room on the right for the last resend's label.
  const tTimes = 1.1 * Math.max(0.001, ...data.times.map((p) => p.t));
  const timesX = {
    field: "t",
    type: "quantitative" as const,
    scale: { domain: [0, tTimes], nice: false, zero: true },
    title: "time from the start of connect() (s)",
  };
  const sends = data.synSends.filter((e) => e.t <= tTimes);
  // A label needs about 50 px: one too close to the last labelled rule keeps its rule only.
  const labelled: ChartEvent[] = [];
  for (const e of sends) {
    const last = labelled.at(-1);
    if (last === undefined || ((e.t - last.t) / tTimes) * CHART_WIDTH >= LABEL_PX) labelled.push(e);
  }
  const timesPanel = {
    name: "times",
    height: TIMES_HEIGHT,
    width: CHART_WIDTH,
    layer: [
      {
        data: { values: sends },
        mark: { type: "rule" as const, color: "#999", strokeDash: [2, 3] },
        encoding: { x: timesX },
      },
      {
        data: { values: labelled },
        mark: {
          type: "text" as const,
          align: "left" as const,
          baseline: "bottom" as const,
          dx: 3,
          dy: -2,
          fontSize: 10,
          color: "#555",
        },
        // At the foot of each rule: the curves are high there, except before the first connects.
        encoding: { x: timesX, y: { value: TIMES_HEIGHT }, text: { field: "label" } },
      },
      {
        data: { values: data.times },
        mark: { type: "line" as const, interpolate: "step-after" as const, strokeWidth: 2 },
        encoding: {
          x: timesX,
          y: {
            field: "share",
            type: "quantitative" as const,
            title: "share of clients (%)",
            scale: { domain: [0, 100] },
          },
          color: {
            field: "series",
            type: "nominal" as const,
            title: null,
            sort: null,
            scale: { range: ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"] },
          },
        },
      },
    ],
  };
  // Only the bottom time panel carries the time axis's labels and title.
  const hasOutcomes = data.outcomes.length > 0;
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
      !hasOutcomes && !hasClients && !hasPackets,
    ),
    ...(hasOutcomes ? [outcomesPanel(!hasClients && !hasPackets)] : []),
    ...(hasClients
      ? [linePanel("clients", data.clients, CLIENT_COLORS, 110, "client sockets", !hasPackets)]
      : []),
    ...(hasPackets ? [strip("packets", data.packets, "#d62728", true)] : []),
    ...(data.times.length ? [timesPanel] : []),
  ];
  const subtitle = [
    ...wrap(context.title, SUBTITLE_CHARS),
    ...wrap(
      `${paramsText(run.params, ", ") || "single run"}; ${
        modeText(run.mode, context.shortened) || "the kernel's timers"
      }${linksText(run)}${
        context.kernel ? `; Linux ${context.kernel}` : ""
      }; ${run.samples.length} samples`,
      SUBTITLE_CHARS,
    ),
  ];
  const frame = chartFrame(context.experiment, subtitle);
  return {
    ...frame,
    config: {
      ...frame.config,
      legend: { ...frame.config.legend, labelLimit: 280, columns: 2 },
    },
    spacing: 6,
    vconcat: panels,
    resolve: { scale: { color: "independent" } },
  };
}

/**
 * What every chart of the lab's shares: the Vega-Lite schema, a title with
 * its subtitle lines, a white background, the font, axis and legend styles.
 */
export function chartFrame(text: string, subtitle: string[]) {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text, subtitle, anchor: "start", fontSize: 15, subtitleFontSize: 12 },
    background: "white",
    padding: 8,
    config: {
      font: "DejaVu Sans",
      axis: { labelFontSize: 11, titleFontSize: 11 },
      legend: {
        labelFontSize: 11,
        orient: "top",
        direction: "horizontal",
        symbolStrokeWidth: 3,
      } as Record<string, unknown>,
    },
  };
}

/** The run's shaped links in a few words: `; link to server 25 ms, to client 25 ms (nfqueue)`. */
function linksText(run: RunResult): string {
  const parts: string[] = [];
  for (const [host, link] of Object.entries(run.links ?? {})) {
    const dirs = ([["toServer", "to server"], ["toClient", `to ${host}`]] as const).flatMap((
      [k, label],
    ) => {
      const r = link[k];
      if (!r) return [];
      const sh = r.shape;
      const bits = [
        ...(sh.delayMs ? [`${sh.delayMs} ms${sh.jitterMs ? ` ± ${sh.jitterMs}` : ""}`] : []),
        ...(sh.lossPercent ? [`${sh.lossPercent} % loss`] : []),
        ...(sh.rateKbit ? [`${sh.rateKbit} kbit/s`] : []),
      ];
      return [`${label} ${bits.join(", ")} (${r.mechanism})`];
    });
    if (dirs.length) parts.push(`${host} link: ${dirs.join("; ")}`);
  }
  return parts.length ? `; ${parts.join("; ")}` : "";
}

/** Subtitle characters per line: about the chart's width at 12 px. */
export const SUBTITLE_CHARS = 90;

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
