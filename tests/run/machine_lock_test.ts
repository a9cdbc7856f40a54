/**
 * Tests of `lab/run/machine_lock.ts`: points of several labs (here several
 * MachineLocks on one root, as several processes would be) admitted within
 * the slots, an exclusive point alone, waiting ones not starved, a deadline.
 * @module
 */
import { equal, match, ok, rejects } from "node:assert/strict";
import { MachineLock, type MachineTicket } from "../../lab/run/machine_lock.ts";
import { until } from "../_helpers.ts";

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "bl-machine-lock-" });
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/**
 * Whether `p` settles within `ms`. Asserting that something does *not*
 * happen needs some time to pass: a few poll intervals of the lock (25 ms).
 */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  p.then(() => done = true, () => done = true);
  await new Promise((r) => setTimeout(r, ms));
  return done;
}

Deno.test("MachineLock admits at most `slots` points across labs", async () => {
  await withRoot(async (root) => {
    const a = new MachineLock({ root });
    const b = new MachineLock({ root });
    const held: MachineTicket[] = [];
    held.push(await a.acquire({ exclusive: false, slots: 2 }));
    held.push(await b.acquire({ exclusive: false, slots: 2 }));
    const why: string[] = [];
    const third = a.acquire({ exclusive: false, slots: 2, onWait: (w) => why.push(w) });
    await until("the third point to say it waits", () => why.length, (n) => n > 0);
    equal(await settlesWithin(third, 0), false, "the third waits");
    match(why[0]!, /one of the 2 slots/);
    held.shift()![Symbol.dispose]();
    const t = await third;
    ok(t.waitedMs >= 500, String(t.waitedMs));
    // A lab with more jobs may use more slots.
    const wide = await b.acquire({ exclusive: false, slots: 3 });
    for (const h of [...held, t, wide]) h[Symbol.dispose]();
  });
});

Deno.test("MachineLock runs an exclusive point alone, and new points queue behind it", async () => {
  await withRoot(async (root) => {
    const a = new MachineLock({ root });
    const b = new MachineLock({ root });
    const normal = await a.acquire({ exclusive: false, slots: 4 });
    const alone = b.acquire({ exclusive: true, slots: 4 });
    equal(await settlesWithin(alone, 100), false, "it waits for the running point");
    // A point that comes after it waits behind it (the turnstile), though a slot is free.
    const later = a.acquire({ exclusive: false, slots: 4 });
    equal(await settlesWithin(later, 100), false);
    normal[Symbol.dispose]();
    const excl = await alone;
    equal(await settlesWithin(later, 100), false, "nothing runs beside it");
    excl[Symbol.dispose]();
    (await later)[Symbol.dispose]();
  });
});

Deno.test("MachineLock gives up after its deadline, saying what it waited for; an abort stops the wait", async () => {
  await withRoot(async (root) => {
    const a = new MachineLock({ root });
    const b = new MachineLock({ root, timeoutMs: 200 });
    const alone = await a.acquire({ exclusive: true, slots: 1 });
    await rejects(
      b.acquire({ exclusive: false, slots: 1 }),
      /Cannot start the run: waited 0 s for a point of another lab that runs alone/,
    );
    const controller = new AbortController();
    const waiting = a.acquire({ exclusive: false, slots: 1, signal: controller.signal });
    controller.abort(new Error("stop"));
    await rejects(waiting, /stop/);
    alone[Symbol.dispose]();
    // Everything released: both can run now.
    const x = await b.acquire({ exclusive: false, slots: 2 });
    const y = await a.acquire({ exclusive: false, slots: 2 });
    for (const t of [x, y]) t[Symbol.dispose]();
  });
});
