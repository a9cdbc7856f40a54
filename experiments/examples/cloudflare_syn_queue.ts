/**
 * Two claims of an article outside the built-in catalogue, "SYN packet
 * handling in the wild" (Marek Majkowski, The Cloudflare Blog, 2018,
 * https://blog.cloudflare.com/syn-packet-handling-in-the-wild/), stated in
 * `cloudflare_claims.md` beside this file and decided on the running kernel:
 *
 * - cf:synack-retries: the SYN Queue sends the SYN+ACK and retries it on
 *   timeout, `net.ipv4.tcp_synack_retries` times;
 * - cf:ack-to-accept-queue: the final ACK, matched against the SYN Queue,
 *   moves the connection from the SYN Queue to the Accept Queue.
 *
 * An example of claims of your own (README: "Claims of your own"); not part
 * of the default run (`experiments/` is read without its subdirectories). Run
 * it with `sudo deno task lab experiments/examples/`.
 *
 * Construction: a listen(fd, 8) server that never accepts, and two client
 * groups of 2 on one client host.
 * - "unanswered": a rule on the client drops every ACK the group sends (the
 *   final ACK, and each ACK that answers a retransmitted SYN-ACK), so its
 *   requests stay in the SYN Queue (SYN_RECV) until they expire. The server
 *   is captured: each connection's SYN-ACKs are counted.
 * - "answered": its ACKs are held by a rule of its own until the kernel shows
 *   both requests in SYN_RECV (plus 200 ms, to see them there), then the rule
 *   is removed. The client does not resend an ACK by itself; it answers the
 *   server's SYN-ACK retransmission (1 s after the first), and that ACK
 *   completes the handshake.
 *
 * Arithmetic (see `experiments/synack_retransmission.ts` for the timers):
 * with retries r, each unanswered connection gets r + 1 SYN-ACKs, at 0, 1,
 * 3, … s, and its request expires 2^(r+1) − 1 s after the SYN (3 s for r = 1,
 * 7 s for r = 2); the answered ones leave SYN_RECV at about 1 s and the
 * listener's Recv-Q (the accept queue) holds them: 2.
 */
import { defineExperiment, type RunEvidence } from "../../define.ts";

type Run = RunEvidence<{ retries: number }>;

const N = 2;
const RELEASE = "release answered ACKs";

export default defineExperiment<{ retries: number[] }>({
  id: "cloudflare-syn-queue",
  title:
    "The SYN Queue retries SYN-ACKs tcp_synack_retries times; the final ACK moves a request to the Accept Queue",
  hypothesis:
    "An unanswered request gets tcp_synack_retries SYN-ACK retransmissions; an answered one leaves SYN_RECV for the accept queue.",
  claimsFiles: ["./cloudflare_claims.md"],
  matrix: { retries: [1, 2] },
  hosts: {
    server: {
      sysctls: { "net.core.somaxconn": 4096, "net.ipv4.tcp_synack_retries": (p) => p.retries },
    },
    client: {},
  },
  server: { host: "server", backlog: 8, accept: "never" },
  rules: {
    hold_unanswered: { host: "client", direction: "out", packets: "ack", group: "unanswered" },
    hold_answered: { host: "client", direction: "out", packets: "ack", group: "answered" },
  },
  clients: [
    { name: "unanswered", host: "client", count: N },
    { name: "answered", host: "client", count: N },
  ],
  timeline: [
    {
      name: RELEASE,
      when: { metric: "server.SYN_RECV@answered", equals: N },
      delayMs: 200,
      do: { removeRule: "hold_answered" },
    },
  ],
  capture: ["server"],
  // The run ends once the unanswered requests expired (7 s for r = 2, plus timer slack).
  observe: {
    intervalMs: 20,
    windowMs: 10_000,
    metrics: [
      "server.SYN_RECV",
      "server.ESTABLISHED",
      "server.recvQ",
      "server.TcpExtTCPSynRetrans",
    ],
  },
  expect: [
    { name: "requests held", metric: "server.SYN_RECV@unanswered", equals: N, over: "peak" },
    { name: "answered completed", metric: "server.ESTABLISHED@answered", equals: N, stableMs: 0 },
    { name: "accept queue", metric: "server.recvQ", equals: N, stableMs: 0 },
    // Gone for 200 ms (10 samples): expired, not missed by one read. The SYNs arrive within a
    // few ms of the launch, long before 200 ms of zeros could pass.
    {
      name: "unanswered expired",
      metric: "server.SYN_RECV@unanswered",
      equals: 0,
      stableMs: 200,
    },
    { name: "no RST", metric: "server.TcpOutRsts", equals: 0, over: "always" },
  ],
  expectPackets: [
    {
      name: "SYN-ACKs of unanswered requests",
      host: "server",
      kind: "SYN-ACK",
      from: "server",
      group: "unanswered",
      count: { equals: (p) => p.retries + 1 },
    },
  ],
  claims: {
    "cf:synack-retries": (runs) => {
      const counted = runs.map((r) => ({ r, counts: synAcks(r).map((ts) => ts.length) }));
      const ok = counted.every(({ r, counts }) =>
        counts.length === N && counts.every((n) => n === r.params.retries + 1)
      );
      return {
        verdict: ok ? "reproduced" : "not reproduced",
        evidence: counted.map(({ r, counts }) =>
          `tcp_synack_retries ${r.params.retries} → ${
            [...new Set(counts)].join(" or ")
          } SYN-ACKs on each of ${counts.length} unanswered connections (gaps ${
            gaps(r).map((g) => (g / 1000).toFixed(2)).join(", ")
          } s), then the request expired`
        ).join("; ") + " (1 + retries: the retries are the sysctl's)",
      };
    },
    "cf:ack-to-accept-queue": (runs) => {
      const rows = runs.map((r) => {
        const at = r.stepAt(RELEASE);
        const before = valueAt(r, "server.SYN_RECV@answered", at);
        const queuedBefore = valueAt(r, "server.recvQ", at);
        const moved = firstAt(r, "server.ESTABLISHED@answered", N);
        return {
          ok: before === N && queuedBefore === 0 && moved !== undefined &&
            valueAt(r, "server.SYN_RECV@answered", moved) === 0 &&
            r.value("server.recvQ") === N,
          text: `retries ${r.params.retries}: at the release (${
            ms(at)
          }) ${before} answered requests in SYN_RECV, Recv-Q ${queuedBefore}; ${
            moved === undefined
              ? "they never completed"
              : `at ${ms(moved)}: ${
                valueAt(r, "server.SYN_RECV@answered", moved)
              } in SYN_RECV, ${N} ESTABLISHED, Recv-Q ${valueAt(r, "server.recvQ", moved)}`
          }`,
        };
      });
      return {
        verdict: rows.every((x) =>
            x.ok
          )
          ? "reproduced"
          : "not reproduced",
        evidence: `${
          rows.map((x) => x.text).join("; ")
        } (the ACK answering the retransmitted SYN-ACK moved each request from the SYN Queue to the accept queue)`,
      };
    },
  },
});

function synAcks(r: Run): number[][] {
  return r.packets({ host: "server", kind: "SYN-ACK", from: "server", group: "unanswered" });
}

/** The first unanswered connection's SYN-ACK gaps, in ms. */
function gaps(r: Run): number[] {
  const ts = synAcks(r)[0] ?? [];
  return ts.slice(1).map((t, i) => t - ts[i]!);
}

/** The metric's value in the last sample at or before `t` (ms since the release). */
function valueAt(r: Run, metric: string, t: number): number | undefined {
  return r.series(metric).findLast(([s]) => s <= t)?.[1];
}

/** When the metric first reached `value`, ms since the release. */
function firstAt(r: Run, metric: string, value: number): number | undefined {
  return r.series(metric).find(([, v]) => v === value)?.[0];
}

function ms(t: number): string {
  return `${(t / 1000).toFixed(2)} s`;
}
