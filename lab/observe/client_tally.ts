/**
 * Turns the client programs' event streams (what the kernel answered each
 * connect(), send() and recv()) into connection records and the
 * `clients.<group>.*` metrics.
 * @module
 */
import type { ClientEvent } from "../act/programs/protocol.ts";
import type { Metric } from "../describe/metric.ts";
import type { ConnectionRecord } from "../results.ts";

/** An event as the tally reads it: the client program's, or any other line (ignored). */
export type TallyEvent = ClientEvent | { event: string };

/**
 * One group's connection records and `clients.<group>.*` counts, updated
 * from the events that arrived since the last {@linkcode GroupTally.update}:
 * each sample costs the new events, not all of them (10,000 connections
 * make 20,000 events).
 */
export class GroupTally {
  readonly group: string;
  readonly count: number;
  readonly #records: ConnectionRecord[] = [];
  readonly #counts = new Map<string, number>();
  readonly #followsUp: boolean;
  #seen = 0;
  #launched = 0;
  #launchedEvent = false;
  /** Connections whose outcome is final (see {@linkcode GroupTally.metrics}' `active`). */
  #done = 0;

  /**
   * A tally of group `group`, which opens `count` connections; `followsUp`:
   * each connected one has a follow-up to end (default false).
   */
  constructor(group: string, count: number, options: { followsUp?: boolean } = {}) {
    this.group = group;
    this.count = count;
    this.#followsUp = options.followsUp ?? false;
  }

  /** Takes the events after those already seen (`events` only ever grows). */
  update(events: readonly TallyEvent[]): void {
    for (; this.#seen < events.length; this.#seen++) {
      const e = events[this.#seen]! as Partial<Record<"i" | "n" | "t" | "ms", number>> & {
        event: string;
        result?: string;
        phase?: string;
      };
      if (e.event === "launched") {
        this.#launchedEvent = true;
        this.#launch(Math.min(this.count, e.n ?? this.count));
        continue;
      }
      if (typeof e.i !== "number") continue;
      if (!this.#launchedEvent && (e.event === "open" || e.event === "connect")) {
        this.#launch(Math.max(this.#launched, e.i + 1));
      }
      const r = this.#get(e.i);
      const before = [r.connect, r.after] as const;
      if (e.event === "connect") {
        r.connect = String(e.result);
        r.connectAtMs = e.t ?? null;
        r.connectMs = e.ms === undefined ? null : Math.round(e.ms * 1000) / 1000;
      } else if (e.event === "after") {
        r.after = String(e.result);
        r.afterAtMs = e.t ?? null;
        if (e.result === "data" && e.ms !== undefined) {
          r.firstByteMs = Math.round(e.ms * 1000) / 1000;
        }
      } else if (e.event === "deadline") {
        if (e.phase === "connect") {
          r.connect = "deadline";
          r.connectAtMs = e.t ?? null;
        } else {
          r.after = "deadline";
          r.afterAtMs = e.t ?? null;
        }
      } else if (e.event === "open") {
        r.connect = "pending";
      }
      this.#recount(before, r);
    }
  }

  /** How many connect() calls the group reported so far. */
  get launchedCount(): number {
    return this.#launched;
  }

  /** Whether the group said it has called every connect() (its "launched" event). */
  get launched(): boolean {
    return this.#launchedEvent;
  }

  /** The records of the connections launched or heard of, by index. */
  records(): ConnectionRecord[] {
    return this.#records.filter(Boolean);
  }

  /**
   * The group's metrics: launched, connected, pending, deadline, active
   * (launched and not yet done: connecting, or in a follow-up that has not
   * ended), and `connect.<errno>` / `after.<result>` for each outcome seen;
   * every metric of this group named in `wanted` is present (0 when not seen).
   */
  metrics(wanted: readonly Metric[] = []): Record<string, number> {
    const prefix = `clients.${this.group}.`;
    const m: Record<string, number> = {
      [`${prefix}launched`]: this.#launched,
      [`${prefix}connected`]: 0,
      [`${prefix}pending`]: 0,
      [`${prefix}deadline`]: 0,
      [`${prefix}active`]: this.#launched - this.#done,
    };
    for (const [k, n] of this.#counts) if (n !== 0) m[prefix + k] = n;
    for (const w of wanted) {
      if ((w.kind === "client" || w.kind === "outcome") && w.group === this.group) m[w.name] ??= 0;
    }
    return m;
  }

  #get(i: number): ConnectionRecord {
    let r = this.#records[i];
    if (r === undefined) {
      r = this.#records[i] = {
        group: this.group,
        index: i,
        connect: "pending",
        connectAtMs: null,
        connectMs: null,
        after: null,
        afterAtMs: null,
        firstByteMs: null,
      };
      this.#add(connectKey(r.connect), 1);
    }
    return r;
  }

  #launch(n: number): void {
    for (let i = this.#launched; i < n; i++) this.#get(i);
    this.#launched = Math.max(this.#launched, n);
  }

  /** Whether a connection's outcome is final: its connect() failed, or it connected and its follow-up (if any) ended. */
  #isDone(connect: string, after: string | null): boolean {
    if (connect === "pending") return false;
    if (connect !== "ok") return true;
    return !this.#followsUp || after !== null;
  }

  #recount(before: readonly [string, string | null], r: ConnectionRecord): void {
    this.#done += Number(this.#isDone(r.connect, r.after)) - Number(this.#isDone(...before));
    if (before[0] !== r.connect) {
      this.#add(connectKey(before[0]), -1);
      this.#add(connectKey(r.connect), 1);
    }
    if (before[1] !== r.after) {
      if (before[1] !== null) this.#add(afterKey(before[1]), -1);
      if (r.after !== null) this.#add(afterKey(r.after), 1);
    }
  }

  #add(key: string, n: number): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + n);
  }
}

function connectKey(connect: string): string {
  return connect === "ok"
    ? "connected"
    : connect === "pending" || connect === "deadline"
    ? connect
    : `connect.${connect}`;
}

function afterKey(after: string): string {
  return after === "deadline" ? "deadline" : `after.${after}`;
}

/** Connection records of one group from its events so far. */
export function connectionRecords(
  group: string,
  count: number,
  events: readonly TallyEvent[],
): ConnectionRecord[] {
  const tally = new GroupTally(group, count);
  tally.update(events);
  return tally.records();
}

/**
 * The `clients.<group>.*` metrics of one group. Every metric of this group
 * named in `wanted` is present: an outcome no connection has had is 0.
 */
export function groupMetrics(
  group: string,
  count: number,
  events: readonly TallyEvent[],
  wanted: readonly Metric[] = [],
): Record<string, number> {
  const tally = new GroupTally(group, count);
  tally.update(events);
  return tally.metrics(wanted);
}
