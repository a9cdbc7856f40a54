/**
 * Hypothesis: a process can hold at most RLIMIT_NOFILE (`ulimit -n`)
 * descriptors, its listening socket and everything else it has open
 * included, so it can accept() at most that limit minus the descriptors it
 * already holds. Past that, accept() fails with EMFILE and the connections
 * stay where they are: the kernel completes their handshakes regardless and
 * keeps them ESTABLISHED in the accept queue.
 *
 * Kernel: `__sys_accept4()` reserves a descriptor with
 * `get_unused_fd_flags()` before it takes a connection off the queue; past
 * the limit that fails with EMFILE and the queue is untouched. The handshake
 * path (`tcp_v4_syn_recv_sock()` → `inet_csk_complete_hashdance()` →
 * `inet_csk_reqsk_queue_add()`) never looks at the process: only the accept
 * queue's own limit (min(backlog, somaxconn) + 1) stops it.
 *
 * Construction: the server lowers its RLIMIT_NOFILE (soft and hard) to L
 * once it listens and accepts everything queued every 5 ms. It starts with
 * S descriptors open (Deno's runtime, stdio, the listening socket and the
 * handle it counts its descriptors with; 24 with Deno 2.9.6): the first
 * sample, taken before the accept policy starts, reads S. A "first" group
 * of 30 connects at once; once the server holds L descriptors a "late" group
 * of 5 connects, to show handshakes still complete after accept() hit the
 * limit. listen(fd, 64) leaves room for all 35 in the queue.
 *
 * Arithmetic, for S = 24 and 35 clients:
 *   L = 32: accepted = L − S = 8, openFiles 32, LISTEN Recv-Q = 35 − 8 = 27;
 *   L = 48: accepted 24, openFiles 48, Recv-Q 11;
 *   both: 35 ESTABLISHED on each side (accepted + queued), no overflow.
 * Accepted connections are counted twice over: openFiles − S, and server
 * ESTABLISHED − Recv-Q (the queued children are ESTABLISHED too).
 */
import { defineExperiment, type RunEvidence } from "../define.ts";

type P = { maxOpenFiles: number };
type Run = RunEvidence<P>;

const FIRST = 30;
const LATE = 5;
const TOTAL = FIRST + LATE;

export default defineExperiment({
  id: "accept-bounded-by-open-file-limit",
  title: "accept() stops at RLIMIT_NOFILE; the kernel keeps completing and queueing connections",
  hypothesis:
    "A process accepts at most RLIMIT_NOFILE minus the descriptors it holds; further accept() calls fail with EMFILE while the connections stay ESTABLISHED in the accept queue.",
  matrix: { maxOpenFiles: [32, 48] },
  hosts: { server: {}, client: {} },
  server: {
    host: "server",
    backlog: 64,
    accept: "all",
    maxOpenFiles: (p) => p.maxOpenFiles,
  },
  clients: [
    { name: "first", host: "client", count: FIRST },
    {
      name: "late",
      host: "client",
      count: LATE,
      startWhen: { metric: "server.openFiles", equals: (p) => p.maxOpenFiles },
    },
  ],
  // No timer is involved: everything happens within the first few samples.
  observe: { intervalMs: 20, windowMs: 3000 },
  expect: [
    { name: "descriptors at the limit", metric: "server.openFiles", equals: (p) => p.maxOpenFiles },
    {
      name: "never above the limit",
      metric: "server.openFiles",
      atMost: (p) => p.maxOpenFiles,
      over: "always",
    },
    { name: "all connected", metric: "clients.late.connected", equals: LATE },
    { name: "client connections", metric: "client.ESTABLISHED", equals: TOTAL },
    // Accepted and queued alike.
    { name: "server connections", metric: "server.ESTABLISHED", equals: TOTAL },
    {
      // Some accepted, the rest queued. The exact count, TOTAL − (L − S), depends on S, which only
      // the first sample tells: the claim rule checks it. (The late group starting at all shows
      // that the server reached L descriptors.)
      name: "the rest stays queued",
      metric: "server.recvQ",
      atLeast: 1,
      atMost: TOTAL - 1,
    },
    { name: "no overflow", metric: "server.TcpExtListenOverflows", equals: 0, over: "always" },
  ],
  claims: {
    "A2.6": (runs) => {
      const rows = runs.map(describeRun);
      const ok = runs.every((r) => {
        const { start, accepted } = counts(r);
        return r.value("server.openFiles") === r.params.maxOpenFiles &&
          accepted === r.params.maxOpenFiles - start &&
          r.value("server.ESTABLISHED") - r.value("server.recvQ") === accepted &&
          r.value("client.ESTABLISHED") === TOTAL;
      });
      return {
        verdict: ok ? "reproduced" : "not reproduced",
        evidence: `${
          rows.join("; ")
        }: accept() stops when the process's descriptors reach ulimit -n, every descriptor it already holds included; the kernel still completes the handshakes and keeps the rest ESTABLISHED in the accept queue`,
      };
    },
  },
});

/** Descriptors open before the first accept (first sample) and connections accepted since. */
function counts(r: Run): { start: number; accepted: number } {
  const start = r.series("server.openFiles")[0]?.[1] ?? NaN;
  return { start, accepted: r.value("server.openFiles") - start };
}

function describeRun(r: Run): string {
  const { start, accepted } = counts(r);
  return `RLIMIT_NOFILE ${r.params.maxOpenFiles} with ${start} descriptors open at the start: ${accepted} accepted (openFiles ${
    r.value("server.openFiles")
  }; server ESTABLISHED ${r.value("server.ESTABLISHED")} − Recv-Q ${r.value("server.recvQ")} = ${
    r.value("server.ESTABLISHED") - r.value("server.recvQ")
  }), ${TOTAL} clients ESTABLISHED (${LATE} of them connected after the limit was hit), ListenOverflows +${
    r.value("server.TcpExtListenOverflows")
  }`;
}
