import assert from "node:assert/strict";
import {
  chartData,
  chartSpec,
  renderSvg,
  svgToPng,
  synSendTimes,
  wrap,
} from "../../lab/report/chart.ts";
import { runExperience } from "../../lab/observe/client_experience.ts";
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

/** A sustained run: 200 clients over 1 s, some connecting on a resent SYN, some reset. */
function sustainedRun(): RunResult {
  const run = syntheticRun();
  run.sysctls.client = { "net.ipv4.tcp_syn_retries": "6", "net.ipv4.tcp_syn_linear_timeouts": "4" };
  run.connections = Array.from({ length: 200 }, (_, i) => {
    const resent = i % 4 === 0; // a quarter connect on the first resend, 1 s later
    const connectMs = resent ? 1050 : 50;
    const reset = i % 10 === 1;
    return {
      group: "users",
      index: i,
      connect: "ok",
      connectAtMs: 5 * i + connectMs,
      connectMs,
      after: reset ? "ECONNRESET" : "data",
      afterAtMs: 5 * i + connectMs + 50,
      firstByteMs: reset ? null : connectMs + 50,
    };
  });
  run.experience = runExperience(["users"], run.connections, 2100);
  run.links = {
    client: {
      toServer: {
        shape: { delayMs: 25, jitterMs: 0, lossPercent: 0 },
        mechanism: "nfqueue",
        interface: "client:veth0",
        stats: null,
      },
    },
  };
  return run;
}

Deno.test("chartData() of a run of many clients: outcome bars stacked per bin, distributions, SYN sends", () => {
  const d = chartData(sustainedRun(), "server");
  const bins = new Map<number, { y0: number; y1: number; series: string }[]>();
  for (const b of d.outcomes) bins.set(b.t, [...bins.get(b.t) ?? [], b]);
  for (const segments of bins.values()) {
    // Each bin's segments stack from 0 without gaps.
    let y = 0;
    for (const s of segments) {
      assert.equal(s.y0, y);
      y = s.y1;
    }
  }
  const total = d.outcomes.reduce((n, b) => n + b.perSecond * (b.t2 - b.t), 0);
  assert.ok(Math.abs(total - (200 + 20)) < 1e-6, `200 connects and 20 resets, got ${total}`);
  assert.deepEqual(
    [...new Set(d.outcomes.map((b) => b.series))].sort(),
    ["connect() returned", "reset (ECONNRESET)"],
  );
  const connect = d.times.filter((p) => p.series === "connect() returned");
  assert.equal(connect.at(-1)!.share, 100);
  // 75 % connected within the round trip, then the step at the first resend.
  assert.equal(connect.filter((p) => p.t < 1 && p.share > 75).length, 0);
  const reply = d.times.filter((p) => p.series === "first reply byte");
  assert.equal(reply.at(-1)!.share, 90, "the reset 10 % never got a reply");
  // tcp_syn_linear_timeouts 4: resends 1 s apart five times, then doubling.
  assert.deepEqual(d.synSends.map((e) => e.t), [0, 1, 2, 3, 4, 5, 7]);
  assert.equal(d.synSends[1]!.label, "resend 1");
  // A run of a few clients gets neither panel.
  const small = chartData(syntheticRun(), "server");
  assert.deepEqual([small.outcomes, small.times, small.synSends], [[], [], []]);
});

Deno.test("synSendTimes() follows the client's sysctls: linear timeouts, doubling, the RTO cap", () => {
  assert.deepEqual(synSendTimes({}), [0, 1000, 3000, 7000, 15000, 31000, 63000]);
  assert.deepEqual(
    synSendTimes({ "net.ipv4.tcp_syn_retries": "3", "net.ipv4.tcp_syn_linear_timeouts": "0" }),
    [0, 1000, 3000, 7000],
  );
  assert.deepEqual(
    synSendTimes({
      "net.ipv4.tcp_syn_retries": "8",
      "net.ipv4.tcp_syn_linear_timeouts": "4",
      "net.ipv4.tcp_rto_max_ms": "3000",
    }),
    [0, 1000, 2000, 3000, 4000, 5000, 7000, 10000, 13000],
  );
});

Deno.test("the rendered SVG of a run of many clients has the outcome and distribution panels, and keeps the samples", async () => {
  const run = sustainedRun();
  const svg = await renderSvg(chartSpec(run, { ...context, shortened: "load: 1 s" }));
  assertChartShowsSamples(svg, run, "server");
  assert.match(svg, /Y-axis titled 'client outcomes per s'/);
  assert.match(svg, /X-axis titled 'time from the start of connect\(\) \(s\)'/);
  assert.match(svg, /Y-axis titled 'share of clients \(%\)'/);
  for (const label of ["resend 1", "connect() returned", "first reply byte"]) {
    assert.ok(svg.includes(`>${label}</text>`), `the chart labels "${label}"`);
  }
  assert.match(svg, /shortened load: 1 s/);
  assert.match(svg, /client link: to server 25 ms \(nfqueue\)/);
  // The time axis is still the one the sampled panels share, at the bottom of them.
  const { panels } = readChart(svg);
  assert.deepEqual(panels.map((p) => p.yTitle), ["server sockets", "client sockets"]);
});
