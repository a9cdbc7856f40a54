/**
 * Hypothesis: a SYN that reaches a listener whose accept queue is already
 * full is dropped without a trace on the server: no SYN_RECV request socket,
 * no SYN-ACK, no RST. The client stays in SYN-SENT, its connect() does not
 * return, and it retransmits the SYN after its initial RTO (1 s). Each
 * dropped SYN counts once in ListenOverflows and once in ListenDrops (the
 * counters behind netstat -s's "times the listen queue of a socket
 * overflowed" and "SYNs to LISTEN sockets dropped"); TCPReqQFullDrop and
 * TCPBacklogDrop do not move.
 *
 * Arithmetic: listen(fd, 2) holds 3. A "fill" group of 3 clients fills the
 * queue; a "late" group of 2 starts only once the kernel shows 3 ESTABLISHED,
 * so both late SYNs find it full and are dropped. The observation waits until both late clients
 * have retransmitted their SYN once (client TCPSynRetrans ≥ 2, at ~1 s), so
 * ListenOverflows ≥ 4 (2 SYNs + 2 retransmissions). Older kernels
 * (`sk_acceptq_is_full() && inet_csk_reqsk_queue_young() > 1`) let some such
 * SYNs through; since 4.10 `tcp_conn_request()` drops every one. Which counters
 * move in which overflow (A1.7, A4.5) is listen_counters_by_situation.ts.
 * What a server that accepts too slowly does to clients arriving steadily
 * (A1.12) is slow_server_under_sustained_load.ts, which also decides A3.2
 * there, with the clients' connect times.
 */
import { refusedOrRetriedVerdict } from "./_accept_queue_verdicts.ts";
import { defineExperiment } from "../define.ts";

export default defineExperiment({
  id: "syn-dropped-while-accept-queue-full",
  title: "A SYN that finds the accept queue full is dropped and retransmitted",
  hypothesis:
    "With the accept queue full the server drops new SYNs silently; clients stay SYN-SENT and retransmit.",
  hosts: { server: {}, client: {} },
  server: { host: "server", backlog: 2, accept: "never" },
  clients: [
    { name: "fill", host: "client", count: 3, start: { intervalMs: 2 } },
    {
      name: "late",
      host: "client",
      count: 2,
      start: { intervalMs: 20 },
      startWhen: { metric: "server.ESTABLISHED", equals: 3 },
    },
  ],
  // The initial SYN RTO is 1 s; 3 s leaves two RTOs of slack on a noisy machine.
  observe: { intervalMs: 25, windowMs: 3000 },
  expect: [
    {
      name: "late clients retransmitted",
      metric: "client.TcpExtTCPSynRetrans",
      atLeast: 2,
      stableMs: 0,
    },
    { name: "server queued", metric: "server.ESTABLISHED", equals: 3 },
    { name: "client syn-sent", metric: "client.SYN_SENT", equals: 2 },
    { name: "connect() pending", metric: "clients.late.pending", equals: 2 },
    { name: "ListenOverflows", metric: "server.TcpExtListenOverflows", atLeast: 4 },
    { name: "ListenDrops", metric: "server.TcpExtListenDrops", atLeast: 4 },
    { name: "no SYN_RECV", metric: "server.SYN_RECV", equals: 0, over: "always" },
    // The late group's own: a sample can catch a fill handshake in SYN_RECV before the late start.
    { name: "no late SYN_RECV", metric: "server.SYN_RECV@late", equals: 0, over: "peak" },
    { name: "no RST", metric: "server.TcpOutRsts", equals: 0, over: "always" },
    { name: "no ReqQFullDrop", metric: "server.TcpExtTCPReqQFullDrop", equals: 0, over: "always" },
    { name: "no BacklogDrop", metric: "server.TcpExtTCPBacklogDrop", equals: 0, over: "always" },
    { name: "queue never grows", metric: "server.ESTABLISHED", atMost: 3, over: "always" },
  ],
  claims: {
    "A2.2": ([r]) => ({
      // The claim: late clients get a SYN_RECV entry and see ESTABLISHED.
      verdict: r!.value("server.SYN_RECV@late", "peak") === 0 && r!.value("client.SYN_SENT") > 0
        ? "not reproduced"
        : r!.value("server.SYN_RECV@late", "peak") > 0 && r!.value("client.SYN_SENT") === 0
        ? "reproduced"
        : "partly",
      evidence:
        `a SYN arriving at a full accept queue leaves no SYN_RECV on the server (peak ${
          r!.value("server.SYN_RECV@late", "peak")
        } for the late clients); the client socket stays SYN-SENT (${
          r!.value("client.SYN_SENT")
        }), not ESTABLISHED, and connect() is pending ` +
        `(${
          r!.value("clients.late.pending")
        }); the server sent no SYN-ACK, the client retransmitted its SYN ` +
        `(TCPSynRetrans ${r!.value("client.TcpExtTCPSynRetrans")})`,
    }),
    "A3.2": ([r]) => {
      const refused = r!.connections.filter((c) => c.connect === "ECONNREFUSED").length;
      const retried = r!.value("client.TcpExtTCPSynRetrans");
      return {
        verdict: refusedOrRetriedVerdict(refused, retried),
        evidence: `SYNs retransmitted by the client ${retried}, connect() pending ${
          r!.value("clients.late.pending")
        }, ECONNREFUSED ${refused}, RSTs sent by the server ${r!.value("server.TcpOutRsts")}`,
      };
    },
  },
});
