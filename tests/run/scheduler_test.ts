/**
 * Unit tests of `lab/run/scheduler.ts`: the bound on concurrent tasks, longest
 * first, exclusive tasks alone, failures kept to their task.
 * @module
 */
import {
  deepStrictEqual as deepEqual,
  ok,
  rejects,
  strictEqual as equal,
  throws,
} from "node:assert/strict";
import { defaultJobs, Scheduler } from "../../lab/run/scheduler.ts";

/** A task that runs until the test releases it, recording when it started. */
function gate(log: string[], name: string) {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  return {
    release,
    task: async () => {
      log.push(`start ${name}`);
      await released;
      log.push(`end ${name}`);
      return name;
    },
  };
}

/** Lets queued timers and microtasks run. */
const turn = () => new Promise((r) => setTimeout(r, 0));

Deno.test("Scheduler runs at most `jobs` tasks at once and starts the next as one ends", async () => {
  const log: string[] = [];
  const s = new Scheduler(2);
  const gates = ["a", "b", "c"].map((n) => gate(log, n));
  const done = gates.map((g) => s.run(g.task));
  await turn();
  deepEqual(log, ["start a", "start b"]);
  equal(s.running, 2);
  gates[1]!.release();
  await turn();
  deepEqual(log, ["start a", "start b", "end b", "start c"]);
  gates[0]!.release();
  gates[2]!.release();
  deepEqual(await Promise.all(done), ["a", "b", "c"], "each promise resolves to its own task");
  equal(s.running, 0);
});

Deno.test("Scheduler starts tasks queued together longest first, ties in queue order", async () => {
  const log: string[] = [];
  const s = new Scheduler(1);
  const gates = ["short", "long", "medium", "long2"].map((n) => gate(log, n));
  const estimates = [10, 500, 100, 500];
  const done = gates.map((g, i) => s.run(g.task, { estimateMs: estimates[i]! }));
  for (const g of gates) g.release();
  await Promise.all(done);
  deepEqual(log.filter((l) => l.startsWith("start")), [
    "start long",
    "start long2",
    "start medium",
    "start short",
  ]);
});

Deno.test("Scheduler runs an exclusive task alone: it waits for the others, none start beside it", async () => {
  const log: string[] = [];
  const s = new Scheduler(4);
  const a = gate(log, "a");
  const pa = s.run(a.task);
  await turn();
  const x = gate(log, "x");
  const b = gate(log, "b");
  const px = s.run(x.task, { exclusive: true });
  const pb = s.run(b.task);
  await turn();
  deepEqual(log, ["start a"], "x waits for a; b waits behind x though 3 slots are free");
  a.release();
  await pa;
  await turn();
  deepEqual(log, ["start a", "end a", "start x"]);
  equal(s.running, 1);
  x.release();
  await px;
  await turn();
  deepEqual(log.slice(-1), ["start b"]);
  b.release();
  await pb;
});

Deno.test("Scheduler puts exclusive tasks queued together first", async () => {
  const log: string[] = [];
  const s = new Scheduler(3);
  const tasks = [
    { name: "p", exclusive: false },
    { name: "q", exclusive: false },
    { name: "x", exclusive: true },
  ].map((t) => ({ ...t, g: gate(log, t.name) }));
  const done = tasks.map((t) => s.run(t.g.task, { exclusive: t.exclusive }));
  await turn();
  deepEqual(log, ["start x"]);
  for (const t of tasks) t.g.release();
  await Promise.all(done);
  deepEqual(log.filter((l) => l.startsWith("start")), ["start x", "start p", "start q"]);
});

Deno.test("Scheduler runs at most one heavy task per two jobs; lighter ones start in their place", async () => {
  const log: string[] = [];
  const s = new Scheduler(4);
  equal(s.heavyJobs, 2);
  equal(new Scheduler(8).heavyJobs, 4);
  equal(new Scheduler(1).heavyJobs, 1);
  // Heavy ones are the longest, so they are first in line.
  const tasks = [
    ...["h1", "h2", "h3"].map((name) => ({ name, heavy: true, estimateMs: 1000 })),
    ...["l1", "l2"].map((name) => ({ name, heavy: false, estimateMs: 10 })),
  ].map((t) => ({ ...t, g: gate(log, t.name) }));
  const done = tasks.map((t) => s.run(t.g.task, { heavy: t.heavy, estimateMs: t.estimateMs }));
  await turn();
  deepEqual(log, ["start h1", "start h2", "start l1", "start l2"], "h3 waits; l1 and l2 do not");
  tasks[0]!.g.release();
  await done[0];
  await turn();
  deepEqual(log.slice(-2), ["end h1", "start h3"]);
  for (const t of tasks) t.g.release();
  await Promise.all(done);
  equal(s.running, 0);
});

Deno.test("Scheduler keeps a failure to its own task and goes on", async () => {
  const s = new Scheduler(1);
  const bad = s.run(() => Promise.reject(new Error("boom")));
  const good = s.run(() => Promise.resolve(7));
  const thrown = s.run(() => {
    throw new TypeError("sync throw");
  });
  await rejects(bad, /boom/);
  equal(await good, 7);
  await rejects(thrown, TypeError);
  equal(s.running, 0);
});

Deno.test("Scheduler refuses a number of jobs that is not a whole number ≥ 1", () => {
  for (const jobs of [0, -1, 1.5, NaN]) {
    throws(() => new Scheduler(jobs), /give a whole number ≥ 1/);
  }
  const d = defaultJobs();
  ok(Number.isInteger(d) && d >= 4 && d <= 16, `defaultJobs() = ${d}`);
});
