/**
 * Unit tests of {@linkcode Timeline} (when a run's steps are due) and
 * {@linkcode describeAction}.
 * @module
 */
import assert, {
  deepStrictEqual as deepEqual,
  match,
  strictEqual as equal,
} from "node:assert/strict";
import { describeAction, Timeline } from "../../lab/act/timeline.ts";
import type { PlannedAction, PlannedStep } from "../../lab/describe/run_plan.ts";

const METRIC = "server.ESTABLISHED";

/** A step with no conditions (due at 0) unless `extra` adds some. */
function step(name: string, extra: Partial<PlannedStep> = {}): PlannedStep {
  return { name, atMs: 0, delayMs: 0, action: { kind: "accept", n: 1 }, ...extra };
}

const when = (min: number, max: number) => ({ metric: METRIC, min, max });

/** The names of the steps due at `t` with `METRIC` = `v` (absent when `v` is undefined). */
function dueNames(tl: Timeline, t: number, v?: number): string[] {
  return tl.due(t, v === undefined ? {} : { [METRIC]: v, other: 99 }).map((s) => s.name);
}

Deno.test("Timeline.due() returns a step only once t reaches atMs", () => {
  const tl = new Timeline([step("late", { atMs: 100 })]);
  deepEqual(dueNames(tl, 0), []);
  deepEqual(dueNames(tl, 99), []);
  deepEqual(dueNames(tl, 100), ["late"]);
});

Deno.test("Timeline.due() requires the when metric to be sampled and within [min, max]", () => {
  const cases: { v: number | undefined; due: boolean }[] = [
    { v: undefined, due: false },
    { v: 1, due: false },
    { v: 2, due: true },
    { v: 3, due: true },
    { v: 4, due: true },
    { v: 5, due: false },
  ];
  for (const c of cases) {
    const tl = new Timeline([step("s", { when: when(2, 4) })]);
    deepEqual(dueNames(tl, 10, c.v), c.due ? ["s"] : [], `value ${c.v}`);
  }
});

Deno.test("Timeline.due() reads only the when metric, not other values", () => {
  const tl = new Timeline([step("s", { when: when(99, 99) })]);
  deepEqual(dueNames(tl, 0, 1), [], "other = 99 must not satisfy the condition");
});

Deno.test("Timeline.due() needs atMs and the when condition in the same sample", () => {
  const tl = new Timeline([step("s", { atMs: 100, when: when(3, Infinity) })]);
  deepEqual(dueNames(tl, 50, 3), [], "condition holds, but before atMs");
  deepEqual(dueNames(tl, 100, 2), [], "after atMs, but the condition no longer holds");
  deepEqual(dueNames(tl, 120, 3), ["s"]);
});

Deno.test("Timeline.due() holds an afterStep step until the step it follows is done()", () => {
  const tl = new Timeline([step("a", { atMs: 100 }), step("b", { afterStep: "a" })]);
  deepEqual(dueNames(tl, 0), []);
  deepEqual(dueNames(tl, 100), ["a"], "b waits for a");
  deepEqual(dueNames(tl, 120), ["a"], "a due but not done(): b still waits, a comes again");
  tl.done("a", 125);
  deepEqual(dueNames(tl, 140), ["b"]);
});

Deno.test("Timeline.due() returns every due step in definition order", () => {
  const tl = new Timeline([
    step("third", { atMs: 30 }),
    step("first", { atMs: 10 }),
    step("second", { atMs: 20 }),
  ]);
  deepEqual(dueNames(tl, 30), ["third", "first", "second"]);
});

Deno.test("Timeline.due() counts delayMs from when the conditions first held, not from 0", () => {
  const tl = new Timeline([step("s", { when: when(3, Infinity), delayMs: 100 })]);
  deepEqual(dueNames(tl, 0, 1), []);
  deepEqual(dueNames(tl, 500, 3), [], "conditions first hold at 500: due at 600, not now");
  deepEqual(dueNames(tl, 599, 3), []);
  deepEqual(dueNames(tl, 600, 3), ["s"]);
});

Deno.test("Timeline.due() keeps a step's delay running once its conditions held, even if they stop holding", () => {
  const tl = new Timeline([step("s", { when: when(3, 3), delayMs: 50 })]);
  deepEqual(dueNames(tl, 200, 3), []);
  deepEqual(dueNames(tl, 220, 0), []);
  deepEqual(dueNames(tl, 250, 0), ["s"]);
});

Deno.test("Timeline.due() counts an afterStep step's delayMs from the sample that saw the other done", () => {
  const tl = new Timeline([step("a"), step("b", { afterStep: "a", delayMs: 200 })]);
  deepEqual(dueNames(tl, 0), ["a"]);
  tl.done("a", 5);
  deepEqual(dueNames(tl, 20), [], "b's conditions first hold at 20");
  deepEqual(dueNames(tl, 219), []);
  deepEqual(dueNames(tl, 220), ["b"]);
});

Deno.test("Timeline.done() removes a step from due() and pending", () => {
  const tl = new Timeline([step("a"), step("b", { atMs: 500 }), step("c")]);
  deepEqual(tl.pending.map((s) => s.name), ["a", "b", "c"]);
  deepEqual(dueNames(tl, 0), ["a", "c"]);
  tl.done("a", 1);
  deepEqual(tl.pending.map((s) => s.name), ["b", "c"]);
  deepEqual(dueNames(tl, 10), ["c"]);
  tl.done("c", 11);
  deepEqual(dueNames(tl, 20), []);
  deepEqual(tl.pending.map((s) => s.name), ["b"]);
  deepEqual(dueNames(tl, 500), ["b"]);
  tl.done("b", 501);
  deepEqual(dueNames(tl, 1000), []);
  deepEqual(tl.pending, []);
});

Deno.test("Timeline.pending is empty for an empty timeline", () => {
  const tl = new Timeline([]);
  deepEqual(tl.pending, []);
  deepEqual(dueNames(tl, 0), []);
});

Deno.test("Timeline.whyPending() names the unmet condition's metric, bounds, window and last value", () => {
  const s = step("fill", { when: when(3, 5) });
  const tl = new Timeline([s]);
  dueNames(tl, 0, 1);
  dueNames(tl, 20, 2);
  equal(
    tl.whyPending(s, 1000),
    "server.ESTABLISHED in [3, 5] did not hold within 1000 ms (last value 2)",
  );
});

Deno.test("Timeline.whyPending() describes one-sided and exact bounds", () => {
  const cases: { min: number; max: number; says: string }[] = [
    { min: 3, max: Infinity, says: "server.ESTABLISHED >= 3 did not hold" },
    { min: -Infinity, max: 0, says: "server.ESTABLISHED <= 0 did not hold" },
    { min: 4, max: 4, says: "server.ESTABLISHED = 4 did not hold" },
  ];
  for (const c of cases) {
    const s = step("s", { when: when(c.min, c.max) });
    const tl = new Timeline([s]);
    dueNames(tl, 0, 1);
    equal(tl.whyPending(s, 300), `${c.says} within 300 ms (last value 1)`);
  }
});

Deno.test("Timeline.whyPending() says when the when metric was never sampled", () => {
  const s = step("s", { when: when(1, 1) });
  const tl = new Timeline([s]);
  dueNames(tl, 0);
  equal(
    tl.whyPending(s, 500),
    "server.ESTABLISHED = 1 did not hold within 500 ms (last value undefined)",
  );
});

Deno.test("Timeline.whyPending() names the step an afterStep step waited for", () => {
  const a = step("release", { atMs: 5000 });
  const b = step("after", { afterStep: "release" });
  const tl = new Timeline([a, b]);
  dueNames(tl, 0);
  equal(tl.whyPending(b, 1000), `step "release" never happened`);
});

Deno.test("Timeline.whyPending() joins an unmet condition and a missing afterStep", () => {
  const a = step("release", { atMs: 5000 });
  const b = step("after", { afterStep: "release", when: when(3, Infinity) });
  const tl = new Timeline([a, b]);
  dueNames(tl, 0, 0);
  equal(
    tl.whyPending(b, 1000),
    `server.ESTABLISHED >= 3 did not hold within 1000 ms (last value 0); step "release" never happened`,
  );
});

Deno.test("Timeline.whyPending() says when a step was due only after the window", () => {
  const s = step("late", { atMs: 2000, delayMs: 50 });
  const tl = new Timeline([s]);
  dueNames(tl, 1000);
  equal(tl.whyPending(s, 1000), "it was due at 2000 ms (+50 ms), after the 1000 ms window");
});

Deno.test("Timeline.whyPending() blames the delay, not the condition, once the condition held", () => {
  const s = step("s", { when: when(3, Infinity), delayMs: 800 });
  const tl = new Timeline([s]);
  dueNames(tl, 900, 3);
  const why = tl.whyPending(s, 1000);
  assert(!why.includes("did not hold"), why);
  match(why, /\(\+800 ms\), after the 1000 ms window$/);
});

// Was a bug (lab/act/timeline.ts, whyPending): the fallback gives `step.atMs` as the
// time the step was due, even when its conditions first held later; here it
// says "due at 0 ms (+800 ms)", which is inside the window. Fixed: it
// uses the time the conditions held (`this.#ready.get(step.name) ?? step.atMs`).
Deno.test({
  name: "Timeline.whyPending() gives the time the conditions held as the due time",
  fn: () => {
    const s = step("s", { when: when(3, Infinity), delayMs: 800 });
    const tl = new Timeline([s]);
    dueNames(tl, 900, 3);
    equal(tl.whyPending(s, 1000), "it was due at 900 ms (+800 ms), after the 1000 ms window");
  },
});

// Was a bug (lab/act/timeline.ts, whyPending): a `when` condition is reported as "did
// not hold" whenever the step never became ready, even when the condition did
// hold and it was the afterStep (or atMs) that was missing. Fixed: the
// `when` reason is given only when the last value was outside the bounds.
Deno.test({
  name: "Timeline.whyPending() names the missing afterStep, not a condition that held",
  fn: () => {
    const a = step("release", { atMs: 5000 });
    const b = step("after", { afterStep: "release", when: when(3, Infinity) });
    const tl = new Timeline([a, b]);
    dueNames(tl, 0, 4);
    equal(tl.whyPending(b, 1000), `step "release" never happened`);
  },
});

Deno.test("describeAction() describes every action kind", () => {
  const cases: [PlannedAction, string][] = [
    [{ kind: "startGroup", group: "late" }, `start client group "late"`],
    [{ kind: "closeGroup", group: "held" }, `close client group "held"`],
    [{ kind: "addRule", rule: "hold_acks" }, `add rule "hold_acks"`],
    [{ kind: "removeRule", rule: "hold_acks" }, `remove rule "hold_acks"`],
    [
      { kind: "sysctl", host: "server", name: "net.ipv4.tcp_synack_retries", value: "2" },
      "set net.ipv4.tcp_synack_retries=2 on server",
    ],
    [{ kind: "accept", n: 3 }, "server accepts up to 3"],
    [{ kind: "acceptPolicy", policy: "all" }, "server accept policy all"],
    [{ kind: "acceptPolicy", policy: "never" }, "server accept policy never"],
    [
      { kind: "acceptPolicy", policy: { batch: 2, everyMs: 100 } },
      `server accept policy {"batch":2,"everyMs":100}`,
    ],
    [{ kind: "acceptPolicy", policy: { perSecond: 50 } }, `server accept policy {"perSecond":50}`],
    [{ kind: "stopServer", how: "SIGKILL" }, "kill the server (SIGKILL)"],
    [{ kind: "stopServer", how: "close" }, "server closes its sockets and exits"],
  ];
  for (const [action, text] of cases) equal(describeAction(action), text, action.kind);
});
