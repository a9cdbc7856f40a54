/**
 * Hypothesis: `listen()` silently lowers a backlog above
 * `net.core.somaxconn` to somaxconn, per namespace; the LISTEN socket's
 * Send-Q shows the clamped value and the queue holds one more than that.
 *
 * Arithmetic: limit = min(backlog, somaxconn) (`__sys_listen()`:
 * `if ((unsigned int)backlog > somaxconn) backlog = somaxconn`). With
 * somaxconn 8, listen(100) and listen(5000) both get 8 and hold 9; with
 * somaxconn 4096 (the kernel's default since 5.4, read back from the client
 * namespace, where the lab sets nothing), listen(100) keeps 100 and
 * listen(5000) gets 4096. Where the limit is small (≤ 100) a "fill" group of
 * limit + 1 clients fills the queue, and a "late" group of 3, started only
 * once the kernel shows it full, is dropped. The 4096 case fills 3 and its
 * 3 late clients fit (filling 4097 is the scale experiment's job).
 */
import { defineExperiment } from "../define.ts";
import { acceptQueueLengthVerdict } from "./_accept_queue_verdicts.ts";

const limit = (p: { backlog: number; somaxconn: number }) => Math.min(p.backlog, p.somaxconn);
const fill = (p: { backlog: number; somaxconn: number }) => limit(p) <= 100 ? limit(p) + 1 : 3;
const LATE = 3;
const queued = (p: { backlog: number; somaxconn: number }) =>
  Math.min(fill(p) + LATE, limit(p) + 1);

export default defineExperiment({
  id: "somaxconn-clamps-backlog",
  title: "A backlog above somaxconn is clamped to somaxconn",
  hypothesis:
    "Send-Q = min(backlog, somaxconn) for the namespace's somaxconn, and the queue holds one more.",
  matrix: { backlog: [100, 5000], somaxconn: [8, 4096] },
  hosts: {
    server: { sysctls: { "net.core.somaxconn": (p) => p.somaxconn } },
    client: {},
  },
  server: { host: "server", backlog: (p) => p.backlog, accept: "never" },
  clients: [
    { name: "fill", host: "client", count: fill, start: { intervalMs: 2 } },
    {
      name: "late",
      host: "client",
      count: LATE,
      start: { intervalMs: 2 },
      startWhen: { metric: "server.ESTABLISHED", equals: fill },
    },
  ],
  observe: { intervalMs: 20, windowMs: 3000 },
  expect: [
    { name: "Send-Q", metric: "server.sendQ", equals: limit, stableMs: 100 },
    {
      name: "server queued",
      metric: "server.ESTABLISHED",
      equals: queued,
      stableMs: 100,
    },
    {
      name: "Recv-Q",
      metric: "server.recvQ",
      equals: queued,
      stableMs: 100,
    },
    {
      name: "connect() pending",
      metric: "clients.late.pending",
      equals: (p) => fill(p) + LATE - queued(p),
      stableMs: 100,
    },
  ],
  claims: {
    "A3.4": (runs) => {
      const rows = runs.map((r) =>
        `listen(${r.params.backlog}) with somaxconn ${r.params.somaxconn} → Send-Q ${
          r.value("server.sendQ")
        }`
      );
      const clamped = runs.every((r) => r.value("server.sendQ") === limit(r.params));
      const dflt = runs[0]!.sysctls.client!["net.core.somaxconn"];
      return {
        verdict: clamped ? (dflt === "128" ? "reproduced" : "partly") : "not reproduced",
        evidence:
          `${
            rows.join("; ")
          }; silently (listen() returned 0); the default somaxconn of a fresh namespace is ${dflt}` +
          (dflt === "128" ? "" : ", not 128"),
      };
    },
    // Only the runs whose queue the clients filled say how many it holds.
    "A1.3": (runs) =>
      acceptQueueLengthVerdict(
        runs.filter((r) => limit(r.params) <= 100).map((r) => ({
          ...r.params,
          sendQ: r.value("server.sendQ"),
          held: r.value("server.ESTABLISHED"),
        })),
        runs[0]!.sysctls.client!["net.core.somaxconn"]!,
      ),
    "A4.2": (runs) => {
      const ok = runs.every((r) => r.value("server.sendQ") === limit(r.params));
      return {
        verdict: ok ? "reproduced" : "not reproduced",
        evidence: `Send-Q = min(backlog, somaxconn): ${
          runs.map((r) =>
            `min(${r.params.backlog}, ${r.params.somaxconn}) = ${r.value("server.sendQ")}`
          ).join(", ")
        }`,
      };
    },
  },
});
