/**
 * A verdict rule that two experiments share: A1.3, "the accept queue length
 * is min(backlog, somaxconn); the default somaxconn is 128". Files starting
 * with `_` are not experiments; the loader skips them.
 */
import type { ClaimDecision } from "../define.ts";

/** One filled accept queue: its limit, the Send-Q shown, and how many waited. */
export interface FilledQueue {
  backlog: number;
  somaxconn: number;
  sendQ: number;
  held: number;
}

/**
 * Reproduced when Send-Q is min(backlog, somaxconn), the queue held exactly
 * that many and the default somaxconn is 128; partly when the limit is right
 * but the queue held one more or the default differs; not reproduced else.
 */
export function acceptQueueLengthVerdict(
  rows: readonly FilledQueue[],
  defaultSomaxconn: string,
): ClaimDecision {
  const limit = (r: FilledQueue) => Math.min(r.backlog, r.somaxconn);
  const limitOk = rows.every((r) => r.sendQ === limit(r));
  const heldLimit = rows.every((r) => r.held === limit(r));
  const heldOneMore = rows.every((r) => r.held === limit(r) + 1);
  const list = rows.map((r) =>
    `min(${r.backlog}, ${r.somaxconn}) → Send-Q ${r.sendQ}, held ${r.held}`
  );
  const verdict = !limitOk || !(heldLimit || heldOneMore)
    ? "not reproduced"
    : heldLimit && defaultSomaxconn === "128"
    ? "reproduced"
    : "partly";
  return {
    verdict,
    evidence:
      `${list.join("; ")}; the queue holds ${heldOneMore ? "the limit + 1" : "the limit"}; ` +
      `the default somaxconn of a fresh namespace is ${defaultSomaxconn}`,
  };
}
