/**
 * How exactly a shaped link delays, loses and paces, measured one way from
 * packet timestamps: segments go source → middle → sink (`_line.ts`), the
 * middle's egress `m1` is shaped, one capture sees each segment arrive at the
 * middle (before the link) and one at the sink (after it), on one clock.
 *
 * Tolerances, and why:
 * - Never early (`EARLY_MS`): no mechanism can let a segment leave before its
 *   delay; the delayer stamps a packet when it reads it, after the first
 *   capture saw it. 0.01 ms covers the captures' timestamp rounding.
 * - Median lateness ≤ 1 ms (`MEDIAN_LATE_MS`): the lab's goal for a shaped
 *   link; measured medians here are about 0.1 ms (a wake-up on this VM takes
 *   20–150 µs, forwarding and the taps a few µs).
 * - 90th percentile ≤ 4 ms (`P90_LATE_MS`): one scheduler tick at 250 Hz. On
 *   this shared 2-core VM a wake-up, even SCHED_FIFO, waits while the host
 *   preempts the vCPU, and the kernel runs without preemption ("Dynamic
 *   Preempt: none" at boot), so a task in a long syscall on the delayer's CPU
 *   (another lab deleting namespaces) holds it until its next scheduling
 *   point. Measured p99s are 0.15–0.5 ms most runs, with other labs and a VM
 *   busy beside; about one run in ten has a stall of 10–45 ms that makes a
 *   few percent of its 1000 segments late by that much, which a p95 bound
 *   would fail. Maxima are printed, not asserted: nothing bounds a host's
 *   preemption of a vCPU.
 * - Loss: the count lost must fall in the exact binomial 99.9 % interval for
 *   the segments offered (a false alarm once in a thousand runs), and the
 *   link must lose nothing but that: arrived + lost = offered.
 * @module
 */
import { ok, strictEqual as equal } from "node:assert/strict";
import {
  buildLine,
  captureLine,
  LINE,
  type Line,
  oneWay,
  quantile,
  sendSegments,
} from "../../../tools/shaping/line.ts";
import { netemAvailable } from "../../../lab/topology/shaping/netem_probe.ts";
import {
  type LinkShape,
  shapeLink,
  type ShapeMechanism,
  type ShapeStats,
} from "../../../lab/topology/shaping/shaping.ts";
import { rootTest, until } from "../../_helpers.ts";

const EARLY_MS = 0.01;
const MEDIAN_LATE_MS = 1;
const P90_LATE_MS = 4;

/** The mechanisms this kernel can test: the delayer always, netem where it exists. */
const mechanisms = async (): Promise<ShapeMechanism[]> =>
  (await netemAvailable()) ? ["netem", "nfqueue"] : ["nfqueue"];

/** Shapes the line's link, sends segments through it, and matches them before and after. */
async function measure(
  line: Line,
  shape: LinkShape,
  o: {
    mechanism: ShapeMechanism;
    count: number;
    perSecond: number;
    sport: number;
    flows?: number;
    payload?: number;
    /** A further condition on the counters to wait for once nothing is held. */
    settled?: (stats: ShapeStats) => boolean;
  },
) {
  await using shaped = await shapeLink(
    { ns: line.middle, ifname: LINE.shapedIf, direction: "egress" },
    shape,
    { mechanism: o.mechanism },
  );
  await using captures = await captureLine(line);
  await sendSegments(line, {
    count: o.count,
    perSecond: o.perSecond,
    sport: o.sport,
    flows: o.flows ?? 1,
    payload: o.payload ?? 0,
  });
  const stats: ShapeStats = await until(
    "the link to hold nothing more",
    () => shaped.stats(),
    (s) => s.held === 0 && s.offered >= o.count && (o.settled?.(s) ?? true),
    (shape.delayMs ?? 0) + (shape.jitterMs ?? 0) + 10_000,
  );
  const { before, after } = await captures.stop();
  return { stats, oneWay: oneWay(before, after, { sport: o.sport, flows: o.flows ?? 1 }), after };
}

function summary(late: readonly number[]): string {
  const q = (x: number) => quantile(late, x).toFixed(3);
  return `lateness median ${q(0.5)} ms, p90 ${q(0.9)}, p99 ${q(0.99)}, max ${q(1)}`;
}

for (const delayMs of [1, 50, 200]) {
  rootTest(
    `shapeLink() delays each segment by ${delayMs} ms: never early, median late ≤ 1 ms, p90 ≤ 4 ms`,
    async () => {
      await using line = await buildLine();
      for (const mechanism of await mechanisms()) {
        const { stats, oneWay: ow } = await measure(line, { delayMs }, {
          mechanism,
          count: 1000,
          perSecond: 1000,
          sport: 20_000 + delayMs,
          flows: 10,
        });
        equal(ow.sent, 1000, `${mechanism}: the capture before the link saw ${ow.sent} of 1000`);
        equal(
          ow.arrived,
          1000,
          `${mechanism}: ${1000 - ow.arrived} segments lost without loss configured`,
        );
        equal(ow.unexpected, 0);
        equal(ow.reorderedAcrossFlows, 0, `${mechanism}: reordered without jitter`);
        equal(stats.queueDropped, 0);
        const late = ow.delaysMs.map((d) => d - delayMs);
        ok(
          quantile(late, 0) >= -EARLY_MS,
          `${mechanism}: a segment arrived ${-quantile(late, 0)} ms early`,
        );
        ok(quantile(late, 0.5) <= MEDIAN_LATE_MS, `${mechanism}: ${summary(late)}`);
        ok(
          quantile(late, 0.9) <= P90_LATE_MS,
          `${mechanism}: ${summary(late)}; delayer ${JSON.stringify(stats.lateness)}`,
        );
        console.log(`[ OK ] ${mechanism}, delay ${delayMs} ms, 1000 segments: ${summary(late)}`);
      }
    },
  );
}

/** The smallest and largest counts whose tails outside each hold at most (1 - confidence) / 2. */
function binomialInterval(n: number, p: number, confidence: number): [number, number] {
  const tail = (1 - confidence) / 2;
  // pmf by the recurrence P(k+1) = P(k) · (n-k)/(k+1) · p/(1-p), in logs to stay finite.
  const logPmf: number[] = [n * Math.log1p(-p)];
  for (let k = 0; k < n; k++) {
    logPmf.push(logPmf[k]! + Math.log((n - k) / (k + 1)) + Math.log(p / (1 - p)));
  }
  const pmf = logPmf.map(Math.exp);
  let lo = 0;
  for (let below = 0; below + pmf[lo]! <= tail; lo++) below += pmf[lo]!;
  let hi = n;
  for (let above = 0; above + pmf[hi]! <= tail; hi--) above += pmf[hi]!;
  return [lo, hi];
}

rootTest(
  "shapeLink() loses 10 % of 1000 segments within the binomial 99.9 % interval, and nothing else",
  async () => {
    await using line = await buildLine();
    for (const mechanism of await mechanisms()) {
      const { stats, oneWay: ow } = await measure(line, { delayMs: 25, lossPercent: 10 }, {
        mechanism,
        count: 1000,
        perSecond: 1000,
        sport: 21_000,
        // The delayer loses nothing: every packet queued to it is delayed. The counters are read
        // one after the other, so a stray IPv6 packet can come between two reads: wait for the sum.
        settled: (s) => s.mechanism !== "nfqueue" || s.delayed === s.queued,
      });
      equal(ow.sent, 1000);
      const lost = ow.sent - ow.arrived;
      const [lo, hi] = binomialInterval(ow.sent, 0.1, 0.999);
      ok(
        lost >= lo && lost <= hi,
        `${mechanism}: lost ${lost} of ${ow.sent}, outside [${lo}, ${hi}]`,
      );
      // The link drops only by the loss rule: every other packet offered is delayed and delivered.
      equal(stats.queueDropped, 0);
      ok(stats.lost >= lost, `nft counted ${stats.lost} drops, the captures ${lost}`);
      equal(ow.reordered, 0);
      console.log(
        `[ OK ] ${mechanism}, loss 10 %: lost ${lost} of ${ow.sent} (99.9 % interval [${lo}, ${hi}]); nft counted ${stats.lost} of ${stats.offered} offered`,
      );
    }
  },
);

rootTest(
  "shapeLink() jitter: each flow keeps its order, flows draw their delays uniformly and independently",
  async () => {
    await using line = await buildLine();
    // 100 flows at 1000 segments/s: a flow's segments are 100 ms apart, far more than 2 × jitter,
    // so no segment waits for its flow's previous one and each delay is a fresh U(10, 30) draw.
    const { oneWay: ow } = await measure(line, { delayMs: 20, jitterMs: 10 }, {
      mechanism: "nfqueue",
      count: 2000,
      perSecond: 1000,
      sport: 22_000,
      flows: 100,
    });
    equal(ow.arrived, 2000);
    equal(ow.reordered, 0, "a flow's segments overtook each other");
    ok(ow.reorderedAcrossFlows > 500, `only ${ow.reorderedAcrossFlows} overtakings across flows`);
    const d = [...ow.delaysMs].sort((a, b) => a - b);
    ok(d[0]! >= 10 - EARLY_MS, `a segment took ${d[0]} ms`);
    ok(quantile(d, 0.9) <= 30 + P90_LATE_MS, `p90 delay ${quantile(d, 0.9)} ms`);
    // Kolmogorov-Smirnov distance to U(10, 30): 0.044 is the 99.9 % critical value for n = 2000,
    // and 0.056 more lets a stall (see the top of the file) make up to 5 % of the segments late.
    // What this rules out is far off: one clamp over the whole link, or no jitter, gives ~0.5.
    let ks = 0;
    d.forEach((x, i) =>
      ks = Math.max(ks, Math.abs(Math.min(1, Math.max(0, (x - 10) / 20)) - (i + 1) / d.length))
    );
    ok(ks < 0.1, `KS distance to U(10, 30) is ${ks.toFixed(4)}`);
    console.log(
      `[ OK ] nfqueue, delay 20 ± 10 ms over 100 flows: delays ${
        [0, 0.1, 0.5, 0.9, 1].map((q) => quantile(d, q).toFixed(2)).join(" / ")
      } ms (min/p10/median/p90/max), KS ${
        ks.toFixed(4)
      }, no flow reordered, ${ow.reorderedAcrossFlows} overtakings across flows`,
    );
  },
);

rootTest(
  "shapeLink() rate: tbf paces the link at rateKbit and counts what its queue drops",
  async () => {
    await using line = await buildLine();
    for (const mechanism of await mechanisms()) {
      // 300 frames of 1054 bytes (1000 payload + TCP + IP + Ethernet) at 1000/s offer 8.4 Mbit/s to a
      // 2 Mbit/s link with a 100 ms (25,000-byte) queue: most are dropped, the rest leave at 2 Mbit/s.
      const { stats, oneWay: ow, after } = await measure(line, { delayMs: 10, rateKbit: 2000 }, {
        mechanism,
        count: 300,
        perSecond: 1000,
        sport: 23_000,
        payload: 1000,
      });
      const mine = after.filter((p) => p.sport === 23_000 && p.dst === LINE.sink);
      const frame = 1000 + 20 + 20 + 14;
      const spanS = (mine.at(-1)!.t - mine[0]!.t) / 1000;
      const kbit = ((mine.length - 1) * frame * 8) / spanS / 1000;
      ok(
        Math.abs(kbit - 2000) / 2000 < 0.05,
        `${mechanism}: ${kbit.toFixed(0)} kbit/s over ${spanS.toFixed(3)} s`,
      );
      const dropped = ow.sent - ow.arrived;
      const others = stats.offered - ow.sent;
      ok(dropped > 100, `${mechanism}: only ${dropped} dropped`);
      ok(
        Math.abs(stats.rateDropped - dropped) <= others,
        `${mechanism}: tbf counted ${stats.rateDropped}, captures ${dropped}`,
      );
      equal(ow.reordered, 0);
      console.log(
        `[ OK ] ${mechanism}, 2000 kbit/s: ${
          kbit.toFixed(0)
        } kbit/s measured (±5 %), ${ow.arrived} of ${ow.sent} delivered, ${stats.rateDropped} dropped by tbf`,
      );
    }
  },
);
