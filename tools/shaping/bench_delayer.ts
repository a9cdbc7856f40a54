/**
 * How many packets a second the NFQUEUE delayer carries on time, and at what
 * CPU cost. Root only; it asserts nothing and leaves nothing behind.
 *
 *   deno run -A tools/shaping/bench_delayer.ts [--seconds 3] [--delay 25] [--jitter 0]
 *       [--flows 100] [--rates 1000,2000,5000,10000,20000,40000] [--normal] [--no-capture] [--json]
 *
 * For each rate it shapes the middle of a three-namespace line (see
 * `line.ts`) with the delay (NFQUEUE forced), sends numbered TCP segments
 * from the source over `--flows` flows at that rate for `--seconds`, and
 * reports: end-to-end lateness (capture after the link minus capture before
 * it, minus the delay), the delayer's own verdict lateness, packets not
 * delivered, and the delayer's CPU time per second of traffic (user + system,
 * from its `getrusage()`, which includes the kernel work its `sendto()` does
 * to pass the packets on). `--normal` runs the delayer without SCHED_FIFO.
 * @module
 */
import { parseArgs } from "node:util";
import { buildLine, captureLine, LINE, oneWay, quantile, sendSegments } from "./line.ts";
import { shapeLink } from "../../lab/topology/shaping/shape_link.ts";

/** One rate's results. */
export interface BenchRow {
  rate: number;
  sent: number;
  /** Packets the delayer released. */
  released: number;
  /** Of those, seen by the capture after the link (tcpdump itself may drop some at high rates). */
  captured: number;
  /** End-to-end lateness (ms) from the captures: median, p99, max; NaN without captures. */
  e2eMedianMs: number;
  e2eP99Ms: number;
  e2eMaxMs: number;
  /** The delayer's verdict lateness (ms). */
  verdictMedianMs: number;
  verdictP99Ms: number;
  verdictMaxMs: number;
  /** Delayer CPU, % of one core, over the traffic: user + system, and the user part. */
  cpuPercent: number;
  cpuUserPercent: number;
  /** Packets per verdict message. */
  packetsPerVerdict: number;
  queueDropped: number;
  /** How far the pacer fell behind its schedule at worst (ms). */
  pacerBehindMs: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "3" },
      delay: { type: "string", default: "25" },
      jitter: { type: "string", default: "0" },
      flows: { type: "string", default: "100" },
      rates: { type: "string", default: "1000,2000,5000,10000,20000,40000" },
      normal: { type: "boolean", default: false },
      "no-capture": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const seconds = Number(values.seconds);
  const delayMs = Number(values.delay);
  const jitterMs = Number(values.jitter);
  const flows = Number(values.flows);
  const rates = values.rates.split(",").map(Number);
  const rows: BenchRow[] = [];
  await using line = await buildLine();
  for (const [i, rate] of rates.entries()) {
    const sport = 10_000 + i * 1000;
    await using shaped = await shapeLink(
      { ns: line.middle, ifname: LINE.shapedIf, direction: "egress" },
      { delayMs, jitterMs },
      { mechanism: "nfqueue", realtimePriority: values.normal ? 0 : 10 },
    );
    await using captures = values["no-capture"] ? undefined : await captureLine(line);
    const before = await shaped.stats();
    const pacer = await sendSegments(line, {
      count: Math.round(rate * seconds),
      perSecond: rate,
      sport,
      flows,
    });
    const deadline = performance.now() + delayMs + jitterMs + 5000;
    let after = await shaped.stats();
    while (after.held > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      after = await shaped.stats();
    }
    const cpuMs = (after.cpuMs ?? 0) - (before.cpuMs ?? 0);
    const userMs = (after.delayer?.cpuUserMs ?? 0) - (before.delayer?.cpuUserMs ?? 0);
    const trafficMs = pacer.endMs - pacer.startMs + delayMs + jitterMs;
    const packets = after.delayed - before.delayed;
    const verdicts = (after.delayer?.verdicts ?? 0) - (before.delayer?.verdicts ?? 0);
    const row: BenchRow = {
      rate,
      sent: pacer.sent,
      released: packets,
      captured: NaN,
      e2eMedianMs: NaN,
      e2eP99Ms: NaN,
      e2eMaxMs: NaN,
      verdictMedianMs: after.lateness?.medianMs ?? NaN,
      verdictP99Ms: after.lateness?.p99Ms ?? NaN,
      verdictMaxMs: after.lateness?.maxMs ?? NaN,
      cpuPercent: Math.round((cpuMs / trafficMs) * 1000) / 10,
      cpuUserPercent: Math.round((userMs / trafficMs) * 1000) / 10,
      packetsPerVerdict: Math.round((packets / Math.max(1, verdicts)) * 10) / 10,
      queueDropped: after.queueDropped,
      pacerBehindMs: pacer.maxBehindMs,
    };
    if (captures) {
      const { before: b, after: a } = await captures.stop();
      const ow = oneWay(b, a, { sport, flows });
      const late = ow.delaysMs.map((d) => d - delayMs);
      row.captured = ow.arrived;
      row.e2eMedianMs = round(quantile(late, 0.5));
      row.e2eP99Ms = round(quantile(late, 0.99));
      row.e2eMaxMs = round(quantile(late, 1));
    }
    rows.push(row);
    if (!values.json) console.error(`rate ${rate}/s done`);
  }
  if (values.json) {
    console.log(
      JSON.stringify({ seconds, delayMs, jitterMs, flows, realtime: !values.normal, rows }),
    );
    return;
  }
  console.log(
    `delay ${delayMs} ms, jitter ${jitterMs} ms, ${flows} flows, ${seconds} s per rate, ${
      values.normal ? "normal scheduling" : "SCHED_FIFO"
    }; lateness in ms (end-to-end: observed delay minus ${delayMs} ms, from captures${
      jitterMs > 0 ? `, so it spans ±${jitterMs} ms of jitter` : ""
    }; verdict: from the delayer)`,
  );
  console.log(
    "| pkts/s | sent | released | captured | e2e median | e2e p99 | e2e max | verdict median | verdict p99 | verdict max | CPU % (user) | pkts/verdict | queue drops | pacer behind |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.rate} | ${r.sent} | ${r.released} | ${r.captured} | ${r.e2eMedianMs} | ${r.e2eP99Ms} | ${r.e2eMaxMs} | ${r.verdictMedianMs} | ${r.verdictP99Ms} | ${r.verdictMaxMs} | ${r.cpuPercent} (${r.cpuUserPercent}) | ${r.packetsPerVerdict} | ${r.queueDropped} | ${r.pacerBehindMs} |`,
    );
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

if (import.meta.main) await main();
