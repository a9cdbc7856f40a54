import { deepStrictEqual as deepEqual, ok, strictEqual as equal, throws } from "node:assert/strict";
import { DelayLine, LatenessHistogram } from "../../../lab/topology/shaping/delay_line.ts";

/** A seeded PRNG (mulberry32), so the property tests are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The kernel's side: packets queued in id order; a batch verdict releases
 * every queued id up to N, a single one exactly its id (and fails if absent).
 */
class KernelQueue {
  readonly queued: number[] = [];
  readonly released: number[] = [];
  enqueue(id: number): void {
    this.queued.push(id);
  }
  single(id: number): void {
    const i = this.queued.indexOf(id);
    if (i < 0) throw new Error(`single verdict for id ${id}, which is not queued`);
    this.released.push(...this.queued.splice(i, 1));
  }
  batch(upTo: number): void {
    let n = 0;
    while (n < this.queued.length && this.queued[n]! <= upTo) n++;
    if (n === 0) throw new Error(`batch verdict up to ${upTo} found nothing (ENOENT)`);
    this.released.push(...this.queued.splice(0, n));
  }
}

Deno.test("DelayLine without jitter releases each packet at arrival + delay with one batch verdict", () => {
  const line = new DelayLine({ delayMs: 25, jitterMs: 0 });
  equal(line.nextReleaseMs, Infinity);
  equal(line.add(1, 100), 125);
  equal(line.add(2, 100.5), 125.5);
  equal(line.add(3, 110), 135);
  equal(line.nextReleaseMs, 125);
  equal(line.takeDue(124.999).count, 0);
  const r = line.takeDue(126);
  deepEqual([r.count, r.batchUpTo, r.singleCount], [2, 2, 0]);
  line.settle(126.25);
  equal(line.length, 1);
  equal(line.nextReleaseMs, 135);
  const last = line.takeDue(200);
  deepEqual([last.count, last.batchUpTo, last.singleCount], [1, 3, 0]);
  line.settle(200);
  equal(line.length, 0);
  deepEqual([line.received, line.released, line.peak], [3, 3, 3]);
  const s = line.lateness.summary();
  equal(s.count, 3);
  equal(s.maxMs, 65);
  equal(s.over1ms, 2); // 1.25 ms and 65 ms late
});

Deno.test("DelayLine keeps a flow's order under jitter and lets other flows overtake", () => {
  // Draws: flow A first gets +jitter, its second packet -jitter; flow B gets -jitter.
  const draws = [0.999, 0, 0];
  const line = new DelayLine({ delayMs: 20, jitterMs: 10, random: () => draws.shift()! });
  const a1 = line.add(1, 0, 0xa); // due ~30
  const a2 = line.add(2, 1, 0xa); // drew 11, clamped to a1's release
  const b1 = line.add(3, 2, 0xb); // due 12: overtakes both
  ok(Math.abs(a1 - 29.98) < 0.001, String(a1));
  equal(a2, a1);
  equal(b1, 12);
  const first = line.takeDue(12);
  deepEqual([first.count, first.batchUpTo, first.singleCount, [...first.singles.subarray(0, 1)]], [
    1,
    -1,
    1,
    [3],
  ]);
  line.settle(12);
  const rest = line.takeDue(30);
  // 1 and 2 are the oldest and 3 is released: one batch up to 3 releases 1 and 2.
  deepEqual([rest.count, rest.batchUpTo, rest.singleCount], [2, 3, 0]);
});

Deno.test("DelayLine with random traffic: verdicts release exactly the due packets, in flow order", () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const random = prng(seed);
    const line = new DelayLine({ delayMs: 25, jitterMs: 10, random, capacity: 4 });
    const kernel = new KernelQueue();
    const releaseAt = new Map<number, number>();
    const flowOf = new Map<number, number>();
    let now = 0;
    let id = 1000;
    for (let step = 0; step < 5000; step++) {
      now += random() * 0.5;
      if (random() < 0.6) {
        id++;
        const flow = Math.floor(random() * 20);
        flowOf.set(id, flow);
        kernel.enqueue(id);
        releaseAt.set(id, line.add(id, now, flow));
      }
      const r = line.takeDue(now);
      const before = kernel.released.length;
      if (r.batchUpTo >= 0) kernel.batch(r.batchUpTo);
      for (let i = 0; i < r.singleCount; i++) kernel.single(r.singles[i]!);
      line.settle(now);
      const out = kernel.released.slice(before);
      equal(
        out.length,
        r.count,
        `seed ${seed}: verdicts released ${out.length}, expected ${r.count}`,
      );
      for (const p of out) ok(releaseAt.get(p)! <= now, `seed ${seed}: id ${p} released early`);
      // Nothing due is left behind.
      ok(line.nextReleaseMs > now, `seed ${seed}: a due packet stayed held`);
    }
    const r = line.takeDue(Infinity);
    if (r.batchUpTo >= 0) kernel.batch(r.batchUpTo);
    for (let i = 0; i < r.singleCount; i++) kernel.single(r.singles[i]!);
    line.settle(now);
    deepEqual(kernel.queued, [], `seed ${seed}: packets stuck in the kernel queue`);
    equal(line.length, 0);
    equal(line.released, line.received);
    // Per flow, release order is arrival order.
    const lastOfFlow = new Map<number, number>();
    for (const p of kernel.released) {
      const f = flowOf.get(p)!;
      ok((lastOfFlow.get(f) ?? -1) < p, `seed ${seed}: flow ${f} reordered at id ${p}`);
      lastOfFlow.set(f, p);
    }
  }
});

Deno.test("DelayLine draws jitter uniformly in [delay - jitter, delay + jitter) for sparse flows", () => {
  const line = new DelayLine({ delayMs: 20, jitterMs: 10, random: prng(7) });
  const delays: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const t = i * 0.1;
    delays.push(line.add(i, t, i) - t); // every packet its own flow: no clamping
  }
  delays.sort((a, b) => a - b);
  ok(delays[0]! >= 10 && delays.at(-1)! < 30, `${delays[0]} … ${delays.at(-1)}`);
  // Kolmogorov-Smirnov distance to U(10, 30); the 99.9 % critical value for n = 20,000 is 0.0138.
  let d = 0;
  delays.forEach((x, i) => d = Math.max(d, Math.abs((x - 10) / 20 - (i + 1) / delays.length)));
  ok(d < 0.0138, `KS distance ${d}`);
});

Deno.test("DelayLine refuses a negative delay and a jitter larger than the delay", () => {
  throws(() => new DelayLine({ delayMs: -1, jitterMs: 0 }), /delay "-1" ms must be ≥ 0/);
  throws(
    () => new DelayLine({ delayMs: 5, jitterMs: 6 }),
    /jitter "6" ms must be from 0 to the delay \(5 ms\)/,
  );
  throws(() => new DelayLine({ delayMs: NaN, jitterMs: 0 }), RangeError);
});

Deno.test("DelayLine grows past its capacity without losing order", () => {
  const line = new DelayLine({ delayMs: 1, jitterMs: 0, capacity: 2 });
  for (let i = 0; i < 100; i++) line.add(i, i * 0.001);
  equal(line.length, 100);
  const r = line.takeDue(10);
  deepEqual([r.count, r.batchUpTo, r.singleCount], [100, 99, 0]);
});

Deno.test("LatenessHistogram quantiles: 1 µs bins to 10 ms, 100 µs beyond, exact maximum", () => {
  const h = new LatenessHistogram();
  equal(h.summary().medianMs, 0);
  for (let i = 0; i < 98; i++) h.record(0.0105); // bin 10 µs
  h.record(2.5);
  h.record(123.456);
  h.record(-0.2); // counts as 0
  const s = h.summary();
  deepEqual(s, {
    count: 101,
    medianMs: 0.011,
    p99Ms: 2.501,
    meanMs: Math.round(((98 * 0.0105 + 2.5 + 123.456) / 101) * 1000) / 1000,
    maxMs: 123.456,
    over1ms: 2,
  });
  equal(h.quantileMs(1), 123.456);
});
