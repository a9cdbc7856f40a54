import assert from "node:assert/strict";
import { chartData, chartSpec, renderSvg, svgToPng, wrap } from "../../lab/report/chart.ts";
import { resample, terminalChart } from "../../lab/report/terminal_chart.ts";
import type { RunResult, Sample } from "../../lab/results.ts";
import { assertChartShowsSamples, readChart } from "../_chart_svg.ts";

/** A run whose samples rise, hold and fall like a filling queue, with steps and packets. */
function syntheticRun(samples = 40): RunResult {
  const list: Sample[] = [];
  for (let i = 0; i < samples; i++) {
    const t = i * 25 + (i % 3); // uneven intervals, as real sampling
    list.push({
      t,
      values: {
        "server.SYN_RECV": Math.min(i, 7) - (i > 30 ? 7 : 0),
        "server.ESTABLISHED": Math.min(Math.max(i - 5, 0), 3),
        "server.recvQ": Math.min(Math.max(i - 5, 0), 3),
        "server.sendQ": 2,
        "client.SYN_SENT": i < 20 ? 2 : 0,
        "client.ESTABLISHED": Math.min(i, 10),
        "clients.c.connected": Math.min(i, 10),
      },
    });
  }
  return {
    params: { backlog: 2, syncookies: 1 },
    mode: "fast",
    server: { host: "server", port: 8080, backlog: 1 },
    sysctls: { server: { "net.core.somaxconn": "4096" }, client: {} },
    addresses: { server: "10.213.1.1", client: "10.213.1.2", "clients.c": "10.213.1.10" },
    passed: true,
    durationMs: 1200,
    phases: { build: 100, server: 50, clients: 50, observe: 1000, collect: 10, teardown: 40 },
    observed: {},
    checks: [],
    samples: list,
    connections: [],
    timeline: [
      { name: "release", action: 'remove rule "hold"', atMs: 300 },
      { name: "make room", action: "accept 3", atMs: 700 },
    ],
    rules: {},
    packets: {
      server: [{
        client: "10.213.1.10:40000",
        server: "10.213.1.1:8080",
        events: [
          { t: 5, dir: "in", kind: "SYN", seq: 1, ack: 0, len: 0, retransmit: false },
          { t: 5.1, dir: "out", kind: "SYN-ACK", seq: 9, ack: 2, len: 0, retransmit: false },
          { t: 205, dir: "out", kind: "SYN-ACK", seq: 9, ack: 2, len: 0, retransmit: true },
          { t: 640, dir: "out", kind: "RST", seq: 10, ack: 0, len: 0, retransmit: false },
        ],
      }],
    },
  };
}

const context = { experiment: "demo", title: "A demo", serverHost: "server", kernel: "6.1.0" };

Deno.test("chartData takes lines from the samples and marks from steps and packets", () => {
  const run = syntheticRun();
  const d = chartData(run, "server");
  assert.deepEqual(
    [...new Set(d.server.map((p) => p.metric))].sort(),
    ["server.ESTABLISHED", "server.SYN_RECV", "server.recvQ", "server.sendQ"],
  );
  assert.deepEqual([...new Set(d.clients.map((p) => p.series))], [
    "client SYN-SENT",
    "client ESTABLISHED",
  ]);
  assert.equal(d.server.filter((p) => p.metric === "server.SYN_RECV").length, 40);
  assert.deepEqual(d.steps, [{ t: 0.3, label: "release" }, { t: 0.7, label: "make room" }]);
  // Only retransmissions and RSTs are marked, not every segment.
  assert.deepEqual(d.packets, [
    { t: 0.205, label: "SYN-ACK retransmitted" },
    { t: 0.64, label: "RST from server" },
  ]);
});

Deno.test("the rendered SVG shows every sample of every line at its time and value", async () => {
  const run = syntheticRun();
  const svg = await renderSvg(chartSpec(run, context));
  const compared = assertChartShowsSamples(svg, run, "server");
  assert.equal(compared, 40 * 6);
  assert.match(svg, /X-axis titled 'time since the clients were released \(s\)'/);
  assert.match(svg, />demo<\/text>/);
  for (const label of ["release", "make room", "SYN-ACK retransmitted", "RST from server"]) {
    assert.ok(svg.includes(`>${label}</text>`), `the chart labels "${label}"`);
  }
  // The legend names each server line.
  assert.match(svg, /Symbol legend for stroke color with 4 values: LISTEN Recv-Q/);
});

Deno.test("the SVG check fails when a drawn value is not the sampled one", async () => {
  const run = syntheticRun();
  const svg = await renderSvg(chartSpec(run, context));
  const lying = structuredClone(run);
  lying.samples[12]!.values["server.SYN_RECV"]! += 3;
  assert.throws(() => assertChartShowsSamples(svg, lying, "server"), /SYN_RECV sockets" at/);
  const fewer = structuredClone(run);
  fewer.samples.pop();
  assert.throws(() => assertChartShowsSamples(svg, fewer, "server"), /vertex columns vs samples/);
});

Deno.test("a run of 10 000 sockets keeps its scale readable", async () => {
  const run = syntheticRun(30);
  for (const s of run.samples) s.values["server.SYN_RECV"]! *= 1500;
  const svg = await renderSvg(chartSpec(run, context));
  assertChartShowsSamples(svg, run, "server");
  const server = readChart(svg).panels.find((p) => p.yTitle === "server sockets")!;
  assert.ok(server.perPixel > 1, "many sockets per pixel");
});

Deno.test("svgToPng rasterises at twice the size with text", async () => {
  const svg = await renderSvg(chartSpec(syntheticRun(), context));
  const png = svgToPng(svg);
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  const view = new DataView(png.buffer, png.byteOffset);
  const width = Number(/width="(\d+)"/.exec(svg)![1]);
  assert.equal(view.getUint32(16), width * 2);
});

Deno.test("wrap breaks at spaces within the width", () => {
  assert.deepEqual(wrap("aa bb cc dd", 5), ["aa bb", "cc dd"]);
  assert.deepEqual(wrap("averylongword x", 4), ["averylongword", "x"]);
  assert.deepEqual(wrap("", 10), []);
});

Deno.test("resample takes the last sample at or before each column", () => {
  const samples = [0, 10, 20, 40].map((t, i) => ({ t, values: { m: i * 2 } }));
  assert.deepEqual(resample(samples, "m", 5), [0, 2, 4, 4, 6]);
  assert.deepEqual(resample(samples, "missing", 5), []);
});

Deno.test("terminalChart draws the queues and says the time span", () => {
  const chart = terminalChart(syntheticRun(), "server", { color: false, columns: 30 });
  assert.match(chart, /^SYN_RECV:/);
  assert.match(chart, /Recv-Q:/);
  assert.match(chart, /Send-Q \(limit\):/);
  assert.ok(chart.endsWith(`0 … ${(975 / 1000).toFixed(2)} s`), chart);
  assert.equal(terminalChart({ ...syntheticRun(), samples: [] }, "server"), "");
  const colored = terminalChart(syntheticRun(), "server", { color: true });
  assert.ok(colored.includes("\x1b["), "coloured with ANSI escapes");
});
