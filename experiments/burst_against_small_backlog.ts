/**
 * Hypothesis: in the plain burst the articles describe (many clients connect
 * at once to a server that never accepts), few clients ever reach the
 * overflowing final ACK that tcp_abort_on_overflow is about. Most SYNs that
 * arrive once the accept queue is full are dropped (`tcp_conn_request()`
 * checks `sk_acceptq_is_full()`), so those clients sit in SYN-SENT and
 * retransmit; they see no error at all within the window. Only connections
 * whose SYN was accepted while there was room, but whose ACK arrives after the
 * queue filled, overflow at the ACK; with tcp_abort_on_overflow=1 only those
 * are reset, and with the default tcp_syncookies=1 any of them that were
 * answered with a cookie are not reset either (the cookie path never reads
 * the sysctl; see final_ack_at_full_accept_queue.ts).
 *
 * Arithmetic: listen(fd, 2) holds 3; 20 clients connect at once and each
 * sends 1 byte and reads for 1.5 s. At least 3 connect and queue. How the
 * other 17 split between reset, connected-and-timing-out and pending depends
 * on packet timing, so only what cannot vary is asserted; the split is the
 * evidence.
 */
import { defineExperiment, type RunEvidence } from "../define.ts";

type P = { abortOnOverflow: number };
const N = 20;

export default defineExperiment({
  id: "burst-against-small-backlog",
  title: "A burst of 20 clients against listen(fd, 2): what each client sees",
  hypothesis:
    "In a burst most overflowing clients lose their SYN, not their ACK, so abort_on_overflow=1 resets only a few of them.",
  matrix: { abortOnOverflow: [0, 1] },
  hosts: {
    server: { sysctls: { "net.ipv4.tcp_abort_on_overflow": (p) => p.abortOnOverflow } },
    client: {},
  },
  server: { host: "server", backlog: 2 },
  clients: [
    {
      name: "burst",
      host: "client",
      count: N,
      afterConnect: { send: 1, read: { timeoutMs: 1500 } },
    },
  ],
  // Long enough for every connected client's 1.5 s read to end (connects take < 100 ms).
  observe: { intervalMs: 25, windowMs: 3000 },
  expect: [
    { name: "queue filled", metric: "server.recvQ", equals: 3, stableMs: 1800 },
    { name: "at least the queue connected", metric: "clients.burst.connected", atLeast: 3 },
    {
      name: "no reset without abort_on_overflow",
      metric: "clients.burst.after.ECONNRESET",
      atMost: (p) => p.abortOnOverflow === 0 ? 0 : N - 3,
      over: "always",
    },
    {
      name: "server sent no RST without abort_on_overflow",
      metric: "server.TcpOutRsts",
      atMost: (p) => p.abortOnOverflow === 0 ? 0 : N - 3,
      over: "always",
    },
  ],
  claims: {
    "A4.7": (runs) => {
      const r0 = runs.find((r) => r.params.abortOnOverflow === 0)!;
      const r1 = runs.find((r) => r.params.abortOnOverflow === 1)!;
      const resets = r1.value("clients.burst.after.ECONNRESET");
      const overflowed = N - 3;
      return {
        verdict: resets * 2 >= overflowed ? "reproduced" : resets > 0 ? "partly" : "not reproduced",
        evidence: `${N} clients at once against listen(fd, 2), tcp_syncookies=${
          r1.sysctls.server?.["net.ipv4.tcp_syncookies"]
        }: with tcp_abort_on_overflow=1 ${resets} of the ${overflowed} that did not fit saw ECONNRESET, ${
          split(r1)
        }; with 0: ${
          split(r0)
        }. Resets need a final ACK that finds the queue full, which a burst over a fast link rarely makes; built on purpose (final-ack-at-full-accept-queue) it resets every such client`,
      };
    },
  },
});

function split(r: RunEvidence<P>): string {
  return `${r.value("clients.burst.connected")} connect() returned (${
    r.value("clients.burst.after.timeout")
  } reads timed out), ${r.value("clients.burst.pending")} still in SYN-SENT, RSTs sent ${
    r.value("server.TcpOutRsts")
  }, ListenOverflows +${r.value("server.TcpExtListenOverflows")}`;
}
