/**
 * Hypothesis: a LISTEN socket that never accepts holds exactly
 * min(backlog, somaxconn) + 1 completed connections; `ss -ltn` shows that
 * limit as Send-Q and the queued count as Recv-Q; every later SYN is dropped.
 *
 * Arithmetic: somaxconn is 4096, above every backlog swept, so the limit is
 * the backlog b. The kernel calls the queue full when
 * `sk_ack_backlog > sk_max_ack_backlog` (`sk_acceptq_is_full()`), a strict
 * ">", so b + 1 connections fit. A "fill" group of exactly b + 1 clients
 * (one every 2 ms) fits whatever the packet timing. Only once the kernel
 * shows b + 1 ESTABLISHED does a "late" group of 3 start, so each of its
 * SYNs finds the queue full. (A plain b + 4 stagger is not enough: one
 * client's final ACK and the next client's SYN can be handled on different
 * CPUs and reach the listener out of order, letting a SYN in.) The 3 late
 * SYNs are dropped (ListenOverflows and ListenDrops +1 each,
 * `tcp_conn_request()`) and their sockets stay SYN-SENT on the client.
 */
import { defineExperiment } from "../define.ts";
import { acceptQueueLengthVerdict } from "./_accept_queue_verdicts.ts";

const EXTRA = 3;

export default defineExperiment({
  id: "accept-queue-holds-backlog-plus-one",
  title: "The accept queue holds min(backlog, somaxconn) + 1 connections",
  hypothesis:
    "A never-accepting listener holds backlog + 1 connections; Send-Q shows backlog, Recv-Q the count.",
  matrix: { backlog: [1, 2, 5, 16, 128] },
  hosts: {
    server: { sysctls: { "net.core.somaxconn": 4096 } },
    client: {},
  },
  server: { host: "server", backlog: (p) => p.backlog, accept: "never" },
  clients: [
    { name: "fill", host: "client", count: (p) => p.backlog + 1, start: { intervalMs: 2 } },
    {
      name: "late",
      host: "client",
      count: EXTRA,
      start: { intervalMs: 2 },
      startWhen: { metric: "server.ESTABLISHED", equals: (p) => p.backlog + 1 },
    },
  ],
  // 20 ms samples; every value must hold for 100 ms (5 samples) after the last connect() call.
  observe: { intervalMs: 20, windowMs: 3000 },
  expect: [
    {
      name: "server queued",
      metric: "server.ESTABLISHED",
      equals: (p) => p.backlog + 1,
      stableMs: 100,
    },
    { name: "Recv-Q", metric: "server.recvQ", equals: (p) => p.backlog + 1, stableMs: 100 },
    { name: "Send-Q", metric: "server.sendQ", equals: (p) => p.backlog, stableMs: 100 },
    {
      name: "client established",
      metric: "client.ESTABLISHED",
      equals: (p) => p.backlog + 1,
      stableMs: 100,
    },
    { name: "client syn-sent", metric: "client.SYN_SENT", equals: EXTRA, stableMs: 100 },
    {
      name: "connect() returned",
      metric: "clients.fill.connected",
      equals: (p) => p.backlog + 1,
      stableMs: 100,
    },
    {
      name: "late connect() pending",
      metric: "clients.late.pending",
      equals: EXTRA,
      stableMs: 100,
    },
    {
      name: "no late connect() returned",
      metric: "clients.late.connected",
      equals: 0,
      over: "always",
    },
    // One per dropped SYN; retransmissions (after 1 s) may add more.
    {
      name: "ListenOverflows",
      metric: "server.TcpExtListenOverflows",
      atLeast: EXTRA,
      stableMs: 100,
    },
    { name: "ListenDrops", metric: "server.TcpExtListenDrops", atLeast: EXTRA, stableMs: 100 },
    { name: "no SYN_RECV", metric: "server.SYN_RECV", equals: 0, over: "always" },
  ],
  claims: {
    "A0.2": (runs) => {
      const list = runs.map((r) => `${r.params.backlog}→${r.value("server.ESTABLISHED")}`).join(
        ", ",
      );
      const held = (r: (typeof runs)[number]) => r.value("server.ESTABLISHED");
      const verdict = runs.every((r) => held(r) === r.params.backlog)
        ? "reproduced"
        : runs.every((r) => held(r) === r.params.backlog + 1)
        ? "partly"
        : "not reproduced";
      return {
        verdict,
        evidence: `listen(b) → queued ${list} ` +
          `(somaxconn=${runs[0]!.sysctls.server!["net.core.somaxconn"]})`,
      };
    },
    "A1.3": (runs) =>
      acceptQueueLengthVerdict(
        runs.map((r) => ({
          backlog: r.params.backlog,
          somaxconn: Number(r.sysctls.server!["net.core.somaxconn"]),
          sendQ: r.value("server.sendQ"),
          held: r.value("server.ESTABLISHED"),
        })),
        runs[0]!.sysctls.client!["net.core.somaxconn"]!,
      ),
    "A1.4": (runs) => {
      const ok = runs.every((r) =>
        r.value("server.recvQ") === r.value("server.ESTABLISHED") &&
        r.value("server.sendQ") === r.params.backlog
      );
      const rows = runs.map((r) =>
        `b=${r.params.backlog}: Recv-Q ${r.value("server.recvQ")}, queued ${
          r.value("server.ESTABLISHED")
        }, Send-Q ${r.value("server.sendQ")}`
      ).join("; ");
      return {
        verdict: ok ? "partly" : "not reproduced",
        evidence:
          `Recv-Q is the number waiting for accept(); Send-Q is the limit, but the queue holds Send-Q + 1: ${rows}`,
      };
    },
    "A1.10": (runs) => {
      const r = runs.find((x) => x.params.backlog === 128)!;
      const dflt = r.sysctls.client!["net.core.somaxconn"];
      return {
        verdict: r.value("server.ESTABLISHED") !== 129
          ? "not reproduced"
          : dflt === "128"
          ? "reproduced"
          : "partly",
        evidence:
          `with a limit of 128, ${
            r.value("server.ESTABLISHED")
          } connections waited for accept(); but the default ` +
          `somaxconn here is ${dflt}, so the default limit allows ${Number(dflt) + 1}`,
      };
    },
    "A2.1": (runs) => {
      const r = runs.find((x) => x.params.backlog === 2)!;
      const ok = r.value("server.ESTABLISHED") === 3 && r.value("clients.fill.connected") === 3 &&
        r.value("clients.late.connected") === 0;
      return {
        verdict: ok ? "reproduced" : "not reproduced",
        evidence:
          `listen(fd, 2): ${
            r.value("clients.fill.connected") + r.value("clients.late.connected")
          } of ${r.connections.length} clients' connect() ` +
          `returned, server ESTABLISHED ${r.value("server.ESTABLISHED")}, client SYN-SENT ${
            r.value("client.SYN_SENT")
          }`,
      };
    },
    "A4.1": (runs) => {
      const rows = runs.map((r) =>
        `Send-Q ${r.value("server.sendQ")} → max Recv-Q ${r.value("server.recvQ", "peak")}`
      );
      const ok = runs.every((r) => r.value("server.recvQ", "peak") === r.value("server.sendQ") + 1);
      return { verdict: ok ? "reproduced" : "not reproduced", evidence: rows.join(", ") };
    },
    "A4.2": (runs) => {
      const ok = runs.every((r) => r.value("server.sendQ") === Math.min(r.params.backlog, 4096));
      return {
        verdict: ok ? "reproduced" : "not reproduced",
        evidence: `Send-Q = min(backlog, somaxconn=4096): ${
          runs.map((r) => `${r.params.backlog}→${r.value("server.sendQ")}`).join(", ")
        }`,
      };
    },
  },
});
