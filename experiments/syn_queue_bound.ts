/**
 * Hypothesis: the SYN (half-open) queue of a listener is bounded by its
 * accept-queue limit, min(backlog, somaxconn), not by tcp_max_syn_backlog:
 * `inet_csk_reqsk_queue_is_full()` tests `qlen > sk_max_ack_backlog`, so it
 * holds backlog + 1 request sockets. A SYN that finds it full is dropped
 * (TCPReqQFullDrop) when tcp_syncookies=0 and answered with a cookie
 * (TCPReqQFullDoCookies, SyncookiesSent) when it is 1. With 2 every SYN gets a
 * cookie and no request socket is kept at all. tcp_max_syn_backlog matters only
 * with syncookies off: `tcp_conn_request()` then drops a SYN once fewer than a
 * quarter of tcp_max_syn_backlog slots remain ("Kill the following clause, if
 * you dislike this way"), counted only in ListenDrops. There is no max(64, …).
 *
 * Started the moment the held group's handshakes were answered, the late
 * group's SYNs sometimes (3 runs in 10, syncookies 1 only) got request
 * sockets of their own and one more held request appeared: the queue's
 * length read below the requests in the table for a moment. We have not
 * pinned down why; 150 ms later it never happened (20 runs), so the late
 * group starts then.
 *
 * Construction: a "held" group of backlog + 5 clients connects while a packet
 * rule drops every ACK it sends, so each request it creates stays in SYN_RECV
 * (the server retransmits the SYN-ACK; the client's ACKs never arrive). Once
 * the kernel shows the held group's handshakes answered, a "late" group of 2,
 * whose ACKs are not dropped, tries to connect 150 ms later: it tells whether a full SYN
 * queue still lets new connections through.
 *
 * Arithmetic, for backlog B and tcp_max_syn_backlog M (somaxconn 4096):
 *   cookies 0: SYN_RECV = min(B, M − ⌊M/4⌋) + 1 (B=4 → 5; B=64, M=16 → 13);
 *              the held group's other SYNs and both late SYNs are dropped.
 *   cookies 1: SYN_RECV = B + 1 whatever M; the overflow gets cookies, so
 *              SyncookiesSent = H − (B + 1) + 2 for H held clients.
 *   cookies 2: SYN_RECV = 0; SyncookiesSent = H + 2.
 *
 * On other kernels: before commit 3479c7549fb1 (v6.13; backported to
 * 5.10.234, 6.1.125, 6.12.10) the full-queue test was `qlen >= limit`, so the
 * queue held B, not B + 1: cookies 0 gives min(B, M − ⌊M/4⌋ + 1) (B=4 → 4;
 * B=64, M=16 → 13 still), cookies 1 gives B and one cookie more. The kernel
 * facts say which test a kernel has (a probe measures it; `_syn_queue.ts`),
 * and the expectations follow; where the probe could not tell they take
 * either. The claim rules read the numbers, not the rule.
 */
import {
  type ClaimDecision,
  defineExperiment,
  type KernelFacts,
  type RunEvidence,
} from "../define.ts";
import { synQueueBounds, synQueueRule } from "./_syn_queue.ts";

type P = { backlog: number; maxSynBacklog: number; syncookies: number };

/** The SYN_RECV bounds the kernel predicts, as [min, max] (one number where the probe told). */
export function synQueueBound(p: P, k: KernelFacts): { min: number; max: number } {
  return synQueueBounds(p, k);
}
const least = (p: P, k: KernelFacts) => synQueueBound(p, k).min;
const most = (p: P, k: KernelFacts) => synQueueBound(p, k).max;

const held = (p: P) => p.backlog + 5;
/** Held clients whose SYN got an answer (a SYN-ACK from a request or a cookie), at least. */
const answered = (p: P, k: KernelFacts) => p.syncookies === 0 ? least(p, k) : held(p);

function describeRun(p: P): string {
  return `backlog ${p.backlog}, tcp_max_syn_backlog ${p.maxSynBacklog}, tcp_syncookies ${p.syncookies}`;
}

export default defineExperiment({
  id: "syn-queue-bound",
  title: "The SYN queue holds backlog + 1; tcp_max_syn_backlog only matters without syncookies",
  hypothesis:
    "Request sockets in SYN_RECV are bounded by min(backlog, somaxconn) + 1; beyond that SYNs get cookies (syncookies 1) or are dropped (0).",
  matrix: { backlog: [4, 64], maxSynBacklog: [2048, 16], syncookies: [0, 1, 2] },
  kernelChanges: ["3479c7549fb1"],
  hosts: {
    server: {
      sysctls: {
        "net.ipv4.tcp_max_syn_backlog": (p) => p.maxSynBacklog,
        "net.ipv4.tcp_syncookies": (p) => p.syncookies,
      },
    },
    client: {},
  },
  server: { host: "server", backlog: (p) => p.backlog },
  rules: {
    // The held group's handshakes never complete: its final ACKs (and any later ACK) are dropped.
    hold_acks: { host: "client", direction: "out", packets: "ack", group: "held" },
  },
  clients: [
    // One SYN every 2 ms, so each SYN finds the queue as the one before left it.
    { name: "held", host: "client", count: held, start: { intervalMs: 2 } },
    { name: "late", host: "client", count: 2 },
  ],
  timeline: [
    {
      name: "start late",
      // The client kernel's count: the program's events can come later on a busy machine.
      when: { metric: "client.ESTABLISHED@held", atLeast: answered },
      // See the header: started at once, the late group sometimes found the queue below its bound.
      delayMs: 150,
      do: { startGroup: "late" },
    },
  ],
  // No timer is involved: the first SYN-ACK retransmission (1 s) is well after the decision.
  observe: { intervalMs: 20, windowMs: 3000 },
  expect: [
    // The held group's requests only (the late group's connections are not the question).
    {
      name: "SYN_RECV bound",
      metric: "server.SYN_RECV@held",
      atLeast: least,
      atMost: most,
      stableMs: 200,
    },
    { name: "never above", metric: "server.SYN_RECV@held", atMost: most, over: "always" },
    {
      name: "late connected",
      metric: "clients.late.connected",
      equals: (p) => p.syncookies === 0 ? 0 : 2,
      stableMs: 200,
    },
    {
      name: "cookies sent",
      metric: "server.TcpExtSyncookiesSent",
      atLeast: (p, k) =>
        p.syncookies === 0 ? 0 : p.syncookies === 1 ? held(p) - most(p, k) + 2 : held(p) + 2,
      atMost: (p, k) =>
        p.syncookies === 0 ? 0 : p.syncookies === 1 ? held(p) - least(p, k) + 2 : held(p) + 2,
    },
    {
      name: "SYNs dropped",
      metric: "server.TcpExtListenDrops",
      // Every held SYN beyond the bound and both late SYNs, at least once each.
      atLeast: (p, k) => p.syncookies === 0 ? held(p) - most(p, k) + 2 : 0,
      atMost: (p) => p.syncookies === 0 ? Infinity : 0,
    },
  ],
  claims: {
    "A0.1": (runs) => {
      const r = pick(runs, { backlog: 4, maxSynBacklog: 2048, syncookies: 1 });
      const m = pick(runs, { backlog: 64, maxSynBacklog: 16, syncookies: 1 });
      // The claim holds if the peak follows tcp_max_syn_backlog rather than the backlog.
      const followsSysctl = peak(r) === r.params.maxSynBacklog &&
        peak(m) === m.params.maxSynBacklog;
      // Backlog or backlog + 1, whichever full-queue test the kernel has (see the header).
      const byBacklog = (x: Run) => [0, 1].includes(peak(x) - x.params.backlog);
      const followsBacklog = byBacklog(r) && byBacklog(m);
      return {
        verdict: followsSysctl ? "reproduced" : followsBacklog ? "not reproduced" : "partly",
        evidence: `SYN_RECV peaked at ${peak(r)} with ${describeRun(r.params)} and at ${
          peak(m)
        } with ${describeRun(m.params)}: the bound is ${boundText(r)}, not tcp_max_syn_backlog (${
          synQueueRule(r.kernel)
        })`,
      };
    },
    "A1.2": (runs) => {
      const r = pick(runs, { backlog: 64, maxSynBacklog: 2048, syncookies: 1 });
      return {
        verdict: peak(r) === 2048 ? "reproduced" : "not reproduced",
        evidence: `a fresh namespace's tcp_max_syn_backlog is ${defaults(r).maxSyn}, yet with ${
          describeRun(r.params)
        } SYN_RECV peaked at ${peak(r)} = ${boundText(r)}`,
      };
    },
    "A1.9": (runs) => maxOf64(runs),
    "A4.4": (runs) => maxOf64(runs),
    "A0.3": (runs) => {
      const r = pick(runs, { backlog: 4, maxSynBacklog: 2048, syncookies: 0 });
      const late = r.value("clients.late.connected");
      return {
        verdict: late === 0 ? "reproduced" : "not reproduced",
        evidence: `with ${describeRun(r.params)} and the SYN queue full (SYN_RECV ${
          peak(r)
        }), ${late} of 2 new clients connected; ${
          r.value("clients.late.pending")
        } stayed pending, ListenDrops +${r.value("server.TcpExtListenDrops")}, TCPReqQFullDrop +${
          r.value("server.TcpExtTCPReqQFullDrop")
        } (it holds while the queue stays full: until the requests time out)`,
      };
    },
    "A0.4": (runs) => {
      const r = pick(runs, { backlog: 4, maxSynBacklog: 2048, syncookies: 1 });
      const late = r.value("clients.late.connected");
      return {
        verdict: late === 2 ? "reproduced" : "not reproduced",
        evidence: `with ${describeRun(r.params)} and the SYN queue full (SYN_RECV ${
          peak(r)
        }), ${late} of 2 new clients connected through cookies (SyncookiesSent +${
          r.value("server.TcpExtSyncookiesSent")
        }, TCPReqQFullDoCookies +${r.value("server.TcpExtTCPReqQFullDoCookies")})`,
      };
    },
    "A2.5": (runs) => {
      const b4 = pick(runs, { backlog: 4, maxSynBacklog: 2048, syncookies: 1 });
      const b64 = pick(runs, { backlog: 64, maxSynBacklog: 2048, syncookies: 1 });
      const small = pick(runs, { backlog: 64, maxSynBacklog: 16, syncookies: 0 });
      // Two claims: SYN_RECV is the backlog exactly (the article's 2 → 2, 4 → 4), and
      // tcp_max_syn_backlog has no effect. The first is the kernel's full-queue test: true before
      // commit 3479c7549fb1, one more after it (see the header); the second fails with syncookies off.
      const exact = peak(b4) === b4.params.backlog && peak(b64) === b64.params.backlog;
      const sysctlIgnored = peak(small) === small.params.backlog;
      return {
        verdict: exact && sysctlIgnored
          ? "reproduced"
          : exact || sysctlIgnored
          ? "partly"
          : "not reproduced",
        evidence: `SYN_RECV ${
          exact
            ? "is the listen backlog exactly, as claimed"
            : `holds ${boundText(b4)}, not the backlog`
        } (${describeRun(b4.params)} → ${peak(b4)}; backlog 64 → ${peak(b64)}; ${
          synQueueRule(b4.kernel)
        }); tcp_max_syn_backlog does matter with syncookies off (${describeRun(small.params)} → ${
          peak(small)
        })`,
      };
    },
    "A3.3": (runs) => {
      const off = pick(runs, { backlog: 64, maxSynBacklog: 16, syncookies: 0 });
      const on = pick(runs, { backlog: 64, maxSynBacklog: 16, syncookies: 1 });
      // With cookies on the bound follows the backlog (64 or 65, see the header), not the 16.
      const onlyWhenOff = peak(off) < peak(on) && peak(on) >= on.params.backlog;
      return {
        verdict: onlyWhenOff ? "partly" : "not reproduced",
        evidence: `tcp_max_syn_backlog 16 capped SYN_RECV at ${peak(off)} with syncookies 0 but ${
          peak(on)
        } (= ${
          boundText(on)
        }) with syncookies 1, so it only matters with syncookies off; yet it is not the queue's length, and a fresh namespace's default is ${
          defaults(off).maxSyn
        }, not 512`,
      };
    },
    "A4.8": (runs) => {
      const r = pick(runs, { backlog: 4, maxSynBacklog: 2048, syncookies: 1 });
      return {
        verdict: defaults(r).cookies === "1" && r.value("clients.late.connected") === 2
          ? "not reproduced"
          : "reproduced",
        evidence: `a fresh namespace has tcp_syncookies=${
          defaults(r).cookies
        }; with it a full SYN queue (SYN_RECV ${peak(r)}) answered new SYNs with cookies (${
          r.value("server.TcpExtSyncookiesSent")
        } sent, ListenDrops +${
          r.value("server.TcpExtListenDrops")
        }); SYNs are dropped only with tcp_syncookies=0`,
      };
    },
    "A4.9": (runs) => {
      const at = (c: number) => pick(runs, { backlog: 4, maxSynBacklog: 2048, syncookies: c });
      const [c0, c1, c2] = [at(0), at(1), at(2)];
      const sent = (r: Run) => r.value("server.TcpExtSyncookiesSent");
      const h = 4 + 5;
      // =1: a cookie for each SYN beyond the requests the queue kept, and for both late ones.
      const ok = sent(c0) === 0 && sent(c1) === h - peak(c1) + 2 && sent(c2) === h + 2 &&
        peak(c2) === 0;
      return {
        verdict: ok ? "reproduced" : "not reproduced",
        evidence: `backlog 4, ${h} held + 2 new clients: tcp_syncookies=0 sent ${
          sent(c0)
        } cookies; =1 sent ${sent(c1)} (only to the SYNs beyond the ${
          peak(c1)
        } queued requests); =2 sent ${sent(c2)} (every SYN; SYN_RECV stayed ${peak(c2)})`,
      };
    },
  },
});

type Run = RunEvidence<P>;

/** The bound a run showed, in words: "backlog + 1" or "the backlog". */
function boundText(r: Run): string {
  const extra = peak(r) - r.params.backlog;
  return extra === 1
    ? "backlog + 1"
    : extra === 0
    ? "the backlog"
    : `backlog ${extra >= 0 ? "+" : "−"} ${Math.abs(extra)}`;
}

function pick(runs: readonly Run[], want: P): Run {
  const r = runs.find((x) =>
    x.params.backlog === want.backlog && x.params.maxSynBacklog === want.maxSynBacklog &&
    x.params.syncookies === want.syncookies
  );
  if (!r) throw new RangeError(`No run with ${describeRun(want)}`);
  return r;
}

function peak(r: Run): number {
  return r.value("server.SYN_RECV@held", "peak");
}

/** A fresh namespace's values: the client host sets neither sysctl, so it keeps the defaults. */
function defaults(r: Run): { maxSyn: string; cookies: string } {
  return {
    maxSyn: r.sysctls.client?.["net.ipv4.tcp_max_syn_backlog"] ?? "?",
    cookies: r.sysctls.client?.["net.ipv4.tcp_syncookies"] ?? "?",
  };
}

function maxOf64(runs: readonly Run[]): ClaimDecision {
  const r = pick(runs, { backlog: 64, maxSynBacklog: 16, syncookies: 0 });
  return {
    verdict: peak(r) >= 64 ? "reproduced" : "not reproduced",
    evidence: `with ${describeRun(r.params)} SYN_RECV peaked at ${
      peak(r)
    }: a tcp_max_syn_backlog below 64 is not raised to 64; with syncookies off it drops SYNs once fewer than ⌊16/4⌋ = 4 slots remain (16 − 4 + 1 = 13)`,
  };
}
