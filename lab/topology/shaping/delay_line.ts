/**
 * The delayer's schedule: when each queued packet may leave, and which
 * verdicts release the packets that are due. Pure arithmetic on times and
 * ids the caller gives, so it is tested without a clock or a kernel.
 *
 * **Delay and jitter.** A packet of flow `f` that arrives at `t` is due at
 * `t + delay + u`, `u` uniform in `[-jitter, +jitter)` (netem's distribution
 * when it has no table), and is released at `max(due, release of the previous
 * packet of f)`: packets of one flow (one TCP connection) leave in the order
 * they came, packets of different flows draw their delays independently and
 * may overtake each other. netem without a rate sorts all packets by their
 * own due time, so with jitter a connection's segments overtake each other;
 * with a rate it clamps over the whole link, so under load every packet gets
 * close to `delay + jitter`. The per-flow clamp keeps a connection's order
 * without making connections wait for each other. A flow's delays shift up a
 * little only when its own packets come closer together than `2 × jitter`.
 *
 * **Verdicts.** The kernel numbers queued packets in arrival order. When the
 * packets due are the oldest ones held (always so without jitter: the delay
 * is the same for all), one batch verdict (every id up to N) releases them;
 * a packet that is due before an older one is released by its own verdict.
 * @module
 */
import type { LatenessSummary } from "../../results.ts";

export type { LatenessSummary };

/** How the line delays packets. */
export interface DelayLineOptions {
  /** One-way delay added to every packet, in ms (≥ 0). */
  delayMs: number;
  /** Half-width of the uniform jitter, in ms (0 ≤ jitter ≤ delay). */
  jitterMs: number;
  /** Uniform random numbers in [0, 1); default `Math.random`. */
  random?: () => number;
  /** Initial capacity in packets (grows by doubling); default 1024. */
  capacity?: number;
}

/**
 * Lateness of verdicts against their release time, in a histogram: 1 µs bins
 * up to 10 ms, 100 µs bins up to 1 s, then one overflow bin; the maximum is
 * kept exactly.
 */
export class LatenessHistogram {
  static readonly #FINE = 10_000;
  static readonly #COARSE = 9_900;
  readonly #bins = new Uint32Array(LatenessHistogram.#FINE + LatenessHistogram.#COARSE + 1);
  #count = 0;
  #maxMs = 0;
  #over1ms = 0;
  #sumMs = 0;

  /** Records one lateness, in ms (negative values count as 0). */
  record(ms: number): void {
    const us = ms > 0 ? Math.floor(ms * 1000) : 0;
    let bin: number;
    if (us < LatenessHistogram.#FINE) bin = us;
    else {
      bin = LatenessHistogram.#FINE +
        Math.min(LatenessHistogram.#COARSE, Math.floor((us - LatenessHistogram.#FINE) / 100));
    }
    this.#bins[bin]!++;
    this.#count++;
    if (ms > this.#maxMs) this.#maxMs = ms;
    if (ms > 1) this.#over1ms++;
    this.#sumMs += ms > 0 ? ms : 0;
  }

  /** Lower edge of bin `i`, in ms. */
  static #edgeMs(i: number): number {
    return i < LatenessHistogram.#FINE
      ? i / 1000
      : (LatenessHistogram.#FINE + (i - LatenessHistogram.#FINE) * 100) / 1000;
  }

  /** The `q` quantile (0 to 1), as the upper edge of its bin, capped at the maximum. */
  quantileMs(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < this.#bins.length; i++) {
      seen += this.#bins[i]!;
      if (seen >= rank) {
        const upper = i + 1 < this.#bins.length ? LatenessHistogram.#edgeMs(i + 1) : this.#maxMs;
        return Math.min(upper, this.#maxMs);
      }
    }
    return this.#maxMs;
  }

  /** Count, median, p99, mean, maximum and the number over 1 ms. */
  summary(): LatenessSummary {
    return {
      count: this.#count,
      medianMs: round3(this.quantileMs(0.5)),
      p99Ms: round3(this.quantileMs(0.99)),
      meanMs: round3(this.#count ? this.#sumMs / this.#count : 0),
      maxMs: round3(this.#maxMs),
      over1ms: this.#over1ms,
    };
  }
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * The verdicts that release the packets due, from {@linkcode DelayLine.takeDue}.
 * Send the batch verdict first, then the singles in their order: the batch
 * holds the older packets, and a single may be a later packet of one of
 * their flows. Reused between calls: read it before the next one.
 */
export interface Release {
  /** Release every held packet with an id up to this one (batch verdict), or -1 for none. */
  batchUpTo: number;
  /** Ids to release one by one (due before older packets), in `singles[0 … singleCount)`, in release order. */
  singles: Uint32Array;
  singleCount: number;
  /** Packets released in all. */
  count: number;
}

/**
 * The held packets: a ring in arrival (id) order with a "released" mark, and
 * a min-heap of the unreleased ones by release time.
 */
export class DelayLine {
  readonly delayMs: number;
  readonly jitterMs: number;
  readonly #random: () => number;
  // The ring, indexed by arrival number & mask: id, release time, released mark.
  #ids: Uint32Array;
  #times: Float64Array;
  #done: Uint8Array;
  /** Arrival number of the oldest packet not yet released by a batch (ring head). */
  #head = 0;
  /** Arrival number the next packet gets. */
  #tail = 0;
  // The heap of arrival numbers, by release time then arrival.
  #heap: Float64Array;
  #heapSize = 0;
  /** Per flow: release time of its last packet. */
  readonly #lastByFlow = new Map<number, number>();
  #sweepAt = 0;
  readonly #release: Release;
  /** Arrival numbers released by the last takeDue, for settle(). */
  #taken: Float64Array;
  #takenCount = 0;
  #held = 0;
  #peak = 0;
  #received = 0;
  #released = 0;
  /** Lateness of every settled packet. */
  readonly lateness = new LatenessHistogram();

  /**
   * @throws {RangeError} for a negative or non-finite delay, or a jitter
   *   that is negative or larger than the delay.
   */
  constructor(options: DelayLineOptions) {
    const { delayMs, jitterMs } = options;
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new RangeError(`Cannot create a delay line: delay "${delayMs}" ms must be ≥ 0`);
    }
    if (!Number.isFinite(jitterMs) || jitterMs < 0 || jitterMs > delayMs) {
      throw new RangeError(
        `Cannot create a delay line: jitter "${jitterMs}" ms must be from 0 to the delay (${delayMs} ms)`,
      );
    }
    this.delayMs = delayMs;
    this.jitterMs = jitterMs;
    this.#random = options.random ?? Math.random;
    let capacity = 1;
    while (capacity < (options.capacity ?? 1024)) capacity *= 2;
    this.#ids = new Uint32Array(capacity);
    this.#times = new Float64Array(capacity);
    this.#done = new Uint8Array(capacity);
    this.#heap = new Float64Array(capacity);
    this.#taken = new Float64Array(capacity);
    this.#release = { batchUpTo: -1, singles: new Uint32Array(capacity), singleCount: 0, count: 0 };
  }

  /** Packets held now. */
  get length(): number {
    return this.#held;
  }

  /** The most packets held at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Packets added so far. */
  get received(): number {
    return this.#received;
  }

  /** Packets released so far. */
  get released(): number {
    return this.#released;
  }

  /** When the next held packet may leave (ms), `Infinity` when none is held. */
  get nextReleaseMs(): number {
    return this.#heapSize === 0 ? Infinity : this.#times[this.#slot(this.#heap[0]!)]!;
  }

  #slot(arrival: number): number {
    return arrival % this.#ids.length;
  }

  /**
   * Adds packet `id` of flow `flow` that arrived at `nowMs`.
   *
   * @param flow a key of its flow (e.g. a hash of the 5-tuple); packets of
   *   one flow keep their order. Without jitter it does not matter.
   * @returns its release time.
   */
  add(id: number, nowMs: number, flow = 0): number {
    if (this.#tail - this.#head === this.#ids.length) this.#grow();
    let release = nowMs + this.delayMs;
    if (this.jitterMs > 0) {
      release += (2 * this.#random() - 1) * this.jitterMs;
      const last = this.#lastByFlow.get(flow);
      if (last !== undefined && last > release) release = last;
      this.#lastByFlow.set(flow, release);
      if (nowMs >= this.#sweepAt) this.#sweep(nowMs);
    }
    const arrival = this.#tail++;
    const slot = this.#slot(arrival);
    this.#ids[slot] = id;
    this.#times[slot] = release;
    this.#done[slot] = 0;
    this.#push(arrival);
    this.#held++;
    this.#received++;
    if (this.#held > this.#peak) this.#peak = this.#held;
    return release;
  }

  /**
   * Forgets flows whose last release is too early to hold back any packet
   * arriving from now on (a packet is never due before `now + delay - jitter`).
   */
  #sweep(nowMs: number): void {
    const horizon = nowMs + this.delayMs - this.jitterMs;
    for (const [flow, last] of this.#lastByFlow) {
      if (last <= horizon) this.#lastByFlow.delete(flow);
    }
    this.#sweepAt = nowMs + 1000;
  }

  /**
   * Takes every packet whose release time is at most `nowMs` and says which
   * verdicts release exactly those. Call {@linkcode DelayLine.settle} once
   * they are sent, before the next {@linkcode DelayLine.add}.
   */
  takeDue(nowMs: number): Readonly<Release> {
    const r = this.#release;
    r.batchUpTo = -1;
    r.singleCount = 0;
    this.#takenCount = 0;
    while (this.#heapSize > 0 && this.#times[this.#slot(this.#heap[0]!)]! <= nowMs) {
      const arrival = this.#pop();
      this.#done[this.#slot(arrival)] = 1;
      this.#taken[this.#takenCount++] = arrival;
    }
    if (this.#takenCount === 0) {
      r.count = 0;
      return r;
    }
    // The released prefix in arrival order goes in one batch verdict.
    const oldHead = this.#head;
    while (this.#head < this.#tail && this.#done[this.#slot(this.#head)] === 1) this.#head++;
    if (this.#head > oldHead) r.batchUpTo = this.#ids[this.#slot(this.#head - 1)]!;
    // Anything released behind an older held packet needs its own verdict.
    for (let i = 0; i < this.#takenCount; i++) {
      const arrival = this.#taken[i]!;
      if (arrival >= this.#head) r.singles[r.singleCount++] = this.#ids[this.#slot(arrival)]!;
    }
    r.count = this.#takenCount;
    this.#held -= this.#takenCount;
    this.#released += this.#takenCount;
    return r;
  }

  /**
   * Records the lateness of the packets the last {@linkcode DelayLine.takeDue}
   * took, against `verdictMs`, the time their verdicts were sent.
   */
  settle(verdictMs: number): void {
    for (let i = 0; i < this.#takenCount; i++) {
      this.lateness.record(verdictMs - this.#times[this.#slot(this.#taken[i]!)]!);
    }
    this.#takenCount = 0;
  }

  #less(a: number, b: number): boolean {
    const ta = this.#times[this.#slot(a)]!;
    const tb = this.#times[this.#slot(b)]!;
    return ta < tb || (ta === tb && a < b);
  }

  #push(arrival: number): void {
    const h = this.#heap;
    let i = this.#heapSize++;
    h[i] = arrival;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #pop(): number {
    const h = this.#heap;
    const top = h[0]!;
    const last = h[--this.#heapSize]!;
    if (this.#heapSize > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.#heapSize && this.#less(h[l]!, h[m]!)) m = l;
        if (r < this.#heapSize && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }

  /** Doubles the ring (and the arrays sized like it), keeping arrival numbers valid. */
  #grow(): void {
    const size = this.#ids.length;
    const ids = new Uint32Array(size * 2);
    const times = new Float64Array(size * 2);
    const done = new Uint8Array(size * 2);
    for (let a = this.#head; a < this.#tail; a++) {
      ids[a % (size * 2)] = this.#ids[a % size]!;
      times[a % (size * 2)] = this.#times[a % size]!;
      done[a % (size * 2)] = this.#done[a % size]!;
    }
    this.#ids = ids;
    this.#times = times;
    this.#done = done;
    const heap = new Float64Array(size * 2);
    heap.set(this.#heap);
    this.#heap = heap;
    this.#taken = new Float64Array(size * 2);
    this.#release.singles = new Uint32Array(size * 2);
  }
}
