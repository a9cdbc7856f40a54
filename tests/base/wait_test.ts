/**
 * Tests of `lab/base/wait.ts`, the one wait-until helper of the lab and its tests.
 * @module
 */
import { match, ok, rejects, strictEqual as equal } from "node:assert/strict";
import { WaitTimeoutError } from "../../lab/base/errors.ts";
import { delay, until } from "../../lab/base/wait.ts";

Deno.test("until() returns the first value for which the condition holds", async () => {
  let n = 0;
  equal(await until("n to reach 3", () => ++n, (v) => v >= 3, { intervalMs: 1 }), 3);
});

Deno.test("until() times out naming the condition and the last value read", async () => {
  const err = await until("the queue to fill", () => ({ recvQ: 2 }), () => false, 30).catch((e) =>
    e
  );
  ok(err instanceof WaitTimeoutError);
  equal(
    err.message,
    'Timed out after 30 ms waiting for the queue to fill: last value {"recvQ":2}',
  );
  const shown = await until("x", () => 7, () => false, { timeoutMs: 10, show: (v) => `<${v}>` })
    .catch((e) => e);
  match(shown.message, /last value <7>$/);
});

Deno.test("until() reads again as soon as wake() settles, not only on its interval", async () => {
  let ready = false;
  let wake!: () => void;
  const woken = () => new Promise<void>((resolve) => wake = resolve);
  const waiting = until("ready", () => ready, (v) => v, { intervalMs: 60_000, wake: woken });
  await delay(5);
  ready = true;
  wake();
  equal(await waiting, true);
});

Deno.test("until() backs off by a function of the attempt", async () => {
  const gaps: number[] = [];
  let last = performance.now();
  await until(
    "five readings",
    () => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
      return gaps.length;
    },
    (n) => n >= 5,
    { intervalMs: (attempt) => 2 ** attempt },
  );
  equal(gaps.length, 5);
});

Deno.test("until() and delay() reject with the signal's reason", async () => {
  const controller = new AbortController();
  const waiting = until("never", () => 0, () => false, {
    timeoutMs: 60_000,
    signal: controller.signal,
  });
  const sleeping = delay(60_000, controller.signal);
  controller.abort(new Error("stopped"));
  await rejects(waiting, /stopped/);
  await rejects(sleeping, /stopped/);
  await rejects(delay(1, controller.signal), /stopped/, "an aborted signal rejects at once");
});
