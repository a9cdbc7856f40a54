/**
 * Unit tests of `lab/judge/link_soundness.ts`: which link records break a
 * run, and what the run's error says.
 * @module
 */
import { deepStrictEqual as deepEqual, match, ok, strictEqual as equal } from "node:assert/strict";
import { judgeLinks, latenessTolerance, linkProblem } from "../../lab/judge/link_soundness.ts";
import type { LinkRecord, ShapedDirectionRecord } from "../../lab/results.ts";

function direction(o: {
  medianMs?: number;
  meanMs?: number;
  p99Ms?: number;
  queueDropped?: number;
  stats?: null;
  delayMs?: number;
}): ShapedDirectionRecord {
  return {
    shape: { delayMs: o.delayMs ?? 25, jitterMs: 0, lossPercent: 0 },
    mechanism: "nfqueue",
    interface: "client:veth0",
    stats: o.stats === null ? null : {
      offered: 1000,
      lost: 0,
      delayed: 1000,
      held: 0,
      queueDropped: o.queueDropped ?? 0,
      rateDropped: 0,
      queued: 1000,
      lateness: {
        count: 1000,
        medianMs: o.medianMs ?? 0.03,
        p99Ms: o.p99Ms ?? 0.2,
        meanMs: o.meanMs ?? 0.05,
        maxMs: 30,
        over1ms: 3,
      },
    },
    ...(o.stats === null ? { problem: "the delayer of link … has exited (code 1)" } : {}),
  };
}

Deno.test("latenessTolerance() bounds the median and the mean by the delay", () => {
  deepEqual(latenessTolerance(0), { medianMs: 0.5, meanMs: 1 });
  deepEqual(latenessTolerance(25), { medianMs: 1, meanMs: 2.25 });
  deepEqual(latenessTolerance(200), { medianMs: 4.5, meanMs: 11 });
});

Deno.test("linkProblem() passes a sound link, a few stalled packets included", () => {
  equal(linkProblem(direction({}), "client → server"), undefined);
  // 1-4 % of a short run's packets 20-40 ms late: p99 high, mean still within.
  equal(linkProblem(direction({ p99Ms: 24, meanMs: 0.8 }), "client → server"), undefined);
  equal(linkProblem(direction({ medianMs: 1, meanMs: 2.25 }), "client → server"), undefined);
});

Deno.test("linkProblem() names a delayer that stopped, dropped or ran late", () => {
  match(
    linkProblem(direction({ stats: null }), "client → server")!,
    /^the delayer of link client → server \(client:veth0\) stopped during the run \(the delayer .* has exited/,
  );
  match(
    linkProblem(direction({ queueDropped: 12 }), "server → client")!,
    /dropped 12 packets from its full queue/,
  );
  match(
    linkProblem(direction({ medianMs: 1.2 }), "client → server")!,
    /released half its packets more than 1\.2 ms late \(median; tolerance 1 ms\)/,
  );
  match(
    linkProblem(direction({ meanMs: 3 }), "client → server")!,
    /released its packets 3 ms late on average \(tolerance 2\.25 ms; p99 0\.2 ms, max 30 ms\)/,
  );
});

Deno.test("judgeLinks() marks each broken direction and says the run decides nothing", () => {
  const links: Record<string, LinkRecord> = {
    client: { toServer: direction({}), toClient: direction({ queueDropped: 3 }) },
  };
  const error = judgeLinks(links, "server")!;
  match(error, /^Cannot trust the run's network: the delayer of link server → client/);
  match(error, /so the run decides nothing$/);
  equal(links.client!.toServer!.problem, undefined);
  ok(links.client!.toClient!.problem?.includes("dropped 3 packets"));
  equal(judgeLinks({ client: { toServer: direction({}) } }, "server"), undefined);
});
