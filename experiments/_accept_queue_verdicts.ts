/**
 * Verdict rules that two experiments share: A1.3, "the accept queue length
 * is min(backlog, somaxconn); the default somaxconn is 128", and A3.2, "at a
 * full queue the client gets ECONNREFUSED, or its SYN is ignored and
 * retried". Files starting
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

/**
 * A3.2's verdict from what the clients met: the claim offers two
 * alternatives and the kernel does one thing, so one of them seen (refusals
 * or resent SYNs, not both) is partly; both is reproduced; neither is not.
 */
export function refusedOrRetriedVerdict(
  refused: number,
  resent: number,
): ClaimDecision["verdict"] {
  if ((refused > 0) !== (resent > 0)) return "partly";
  return refused > 0 ? "reproduced" : "not reproduced";
}
