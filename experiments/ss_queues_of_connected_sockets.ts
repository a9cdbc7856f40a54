/**
 * Hypothesis: for a connected (non-LISTEN) socket, `ss -tn`'s Recv-Q is the
 * bytes the kernel received that the application has not read, and Send-Q
 * the bytes the application wrote that the peer has not acknowledged.
 *
 * Kernel: `ss` asks tcp_diag, whose `tcp_diag_get_info()` fills
 * `idiag_rqueue = rcv_nxt − copied_seq` and `idiag_wqueue = write_seq −
 * snd_una` for every state but LISTEN (which gets the accept queue's length
 * and limit instead). `/proc/net/tcp` prints the same two differences as
 * `rx_queue` and `tx_queue` (`get_tcp4_sock()`), which is what the lab's
 * `<host>.recvQBytes` and `sendQBytes` sum over the port's connected sockets:
 * the numbers below are the ones `ss -tn` shows, socket by socket. copied_seq
 * moves only when the application reads, snd_una only when an ACK arrives.
 *
 * Construction: the server accepts every connection at once and never reads.
 * An "unread" group of 3 sends 1000 bytes each: they arrive, are ACKed and
 * wait in the server's receive queues. An "unacked" group of 2 sends 300
 * bytes each while a rule on the client drops every ACK-only segment the
 * server sends to that group (the handshake is untouched: the SYN-ACK is not
 * ACK-only and the client's own ACKs go out). The data reaches the server,
 * which ACKs it (and each retransmission) in vain: the client's snd_una
 * never moves. A rule on the server dropping the data instead would have to
 * be added between connect() and send(), and the client program sends the
 * moment connect() returns; dropping the ACKs gives a normal connection
 * whose only loss is the acknowledgements.
 *
 * Arithmetic:
 *   server Recv-Q sum = 3 × 1000 + 2 × 300 = 3600 (both groups' bytes arrived, none read);
 *   client Send-Q sum = 2 × 300 = 600 (the unread group's 3000 bytes were ACKed: 0);
 *   server Send-Q sum 0 (it sends nothing), client Recv-Q sum 0 (nothing sent to it);
 *   5 ESTABLISHED on each side, LISTEN Recv-Q 0 (all accepted).
 * Had Send-Q meant "not yet received by the peer" the client would show 0;
 * had it counted every byte written, 3600.
 */
import { defineExperiment, type RunEvidence } from "../define.ts";

const UNREAD = { count: 3, bytes: 1000 };
const UNACKED = { count: 2, bytes: 300 };
/** The client's data retransmissions (RTO 200 ms, doubling) must not change the sums. */
const OVER_RETRANSMISSIONS_MS = 700;

type Run = RunEvidence<Record<never, never>>;

export default defineExperiment({
  id: "ss-queues-of-connected-sockets",
  title: "For connected sockets Recv-Q is received-but-unread bytes, Send-Q unacknowledged bytes",
  hypothesis:
    "A connected socket's Recv-Q is rcv_nxt − copied_seq (received, not read) and its Send-Q write_seq − snd_una (written, not acknowledged), as ss -tn and /proc/net/tcp both show.",
  hosts: { server: {}, client: {} },
  server: { host: "server", backlog: 16, accept: "all" },
  rules: {
    lose_acks: { host: "client", direction: "in", packets: "ack", group: "unacked" },
  },
  clients: [
    { name: "unread", host: "client", count: UNREAD.count, afterConnect: { send: UNREAD.bytes } },
    {
      name: "unacked",
      host: "client",
      count: UNACKED.count,
      afterConnect: { send: UNACKED.bytes },
    },
  ],
  // Decided about 0.8 s in (connections, then 700 ms stable); the window is only a ceiling.
  observe: { intervalMs: 20, windowMs: 3000 },
  expect: [
    {
      name: "unread group wrote",
      metric: "clients.unread.after.sent",
      equals: UNREAD.count,
      stableMs: 0,
    },
    {
      name: "unacked group wrote",
      metric: "clients.unacked.after.sent",
      equals: UNACKED.count,
      stableMs: 0,
    },
    { name: "server connections", metric: "server.ESTABLISHED", equals: 5 },
    { name: "client connections", metric: "client.ESTABLISHED", equals: 5 },
    { name: "all accepted", metric: "server.recvQ", equals: 0 },
    {
      name: "server Recv-Q bytes",
      metric: "server.recvQBytes",
      equals: UNREAD.count * UNREAD.bytes + UNACKED.count * UNACKED.bytes,
      stableMs: OVER_RETRANSMISSIONS_MS,
    },
    {
      name: "client Send-Q bytes",
      metric: "client.sendQBytes",
      equals: UNACKED.count * UNACKED.bytes,
      stableMs: OVER_RETRANSMISSIONS_MS,
    },
    { name: "server Send-Q bytes", metric: "server.sendQBytes", equals: 0, over: "always" },
    { name: "client Recv-Q bytes", metric: "client.recvQBytes", equals: 0, over: "always" },
  ],
  capture: ["server"],
  expectPackets: [
    {
      // The data arrived and the server acknowledged it: the ACKs were lost on the way back.
      name: "server ACKed the unacked group's data",
      host: "server",
      kind: "ACK",
      from: "server",
      group: "unacked",
      count: { atLeast: 1 },
    },
    {
      // Without an ACK the client retransmits at its RTO (200 ms, then 400 ms later …).
      name: "unacked data retransmitted",
      host: "server",
      kind: "DATA",
      from: "client",
      group: "unacked",
      count: { atLeast: 2 },
    },
    {
      name: "unread data sent once",
      host: "server",
      kind: "DATA",
      from: "client",
      group: "unread",
      count: { equals: 1 },
    },
  ],
  claims: {
    "A4.3": (runs) => {
      const r = runs[0]!;
      const recv = r.value("server.recvQBytes");
      const send = r.value("client.sendQBytes");
      const ok = recv === UNREAD.count * UNREAD.bytes + UNACKED.count * UNACKED.bytes &&
        send === UNACKED.count * UNACKED.bytes && r.value("server.sendQBytes", "peak") === 0 &&
        r.value("client.recvQBytes", "peak") === 0;
      return {
        verdict: ok ? "reproduced" : "not reproduced",
        evidence:
          `server never reading: ${UNREAD.count} × ${UNREAD.bytes} + ${UNACKED.count} × ${UNACKED.bytes} bytes received gave Recv-Q ${recv} on its ${
            r.value("server.ESTABLISHED")
          } connections; the clients' Send-Q was ${send}: the ${UNACKED.count} × ${UNACKED.bytes} bytes whose ACKs were dropped (the server ACKed ${
            counts(r, "ACK", "server", "unacked")
          } times per connection, the client sent its data ${
            counts(r, "DATA", "client", "unacked")
          } times), while the ${UNREAD.count} × ${UNREAD.bytes} bytes that were ACKed counted 0; server Send-Q ${
            r.value("server.sendQBytes", "peak")
          }, client Recv-Q ${
            r.value("client.recvQBytes", "peak")
          } (peaks); rx_queue/tx_queue are the tcp_diag values ss -tn prints`,
      };
    },
  },
});

/** Per connection of the group, how many packets of the kind the server's capture saw. */
function counts(r: Run, kind: "ACK" | "DATA", from: "client" | "server", group: string): string {
  return r.packets({ host: "server", kind, from, group }).map((t) => t.length).join(" and ");
}
