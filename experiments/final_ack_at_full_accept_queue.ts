/**
 * Hypothesis: when the handshake's final ACK reaches a listener whose accept
 * queue is full, `tcp_v4_syn_recv_sock()` fails (ListenOverflows,
 * ListenDrops) and `tcp_check_req()` then looks at tcp_abort_on_overflow:
 *   0: the ACK is dropped but the request stays in SYN_RECV, marked `acked`;
 *      its timer keeps retransmitting the SYN-ACK, each retransmission draws
 *      the client's ACK again, and once the server accepts and makes room
 *      that ACK completes the connection. The client's connect() returned at
 *      the SYN-ACK, so it believes it is connected; its send() succeeds and its
 *      recv() just times out.
 *   1: the server answers with RST and forgets the request: the client's
 *      recv() fails with ECONNRESET.
 * With tcp_syncookies=2 there is no request socket at all: the ACK is checked
 * as a cookie (`cookie_v4_check()` → `tcp_get_cookie_sock()`), that path never
 * reads tcp_abort_on_overflow, so the ACK is dropped without a RST in both
 * cases, nothing retransmits a SYN-ACK, and only the client's own data
 * retransmissions can complete the connection later.
 *
 * Construction (deterministic, whatever the packet timing): listen(fd, 3)
 * holds 4. A "held" group of 2 connects first while a rule drops every ACK
 * and data segment it sends; its connect() returns at the SYN-ACK and it
 * sends 100 bytes and reads. Once both held connects returned, a "fill"
 * group of 4 fills the accept queue. Once the kernel shows 4 queued, the rule
 * is removed: the held clients' next data retransmission (RTO ≥ 200 ms) is the
 * final ACK arriving at a full queue. 1.5 s after both overflowed (the
 * kernel's ListenOverflows shows it), the server accepts the 4, which makes
 * room for the held connections if they still exist.
 *
 * The backlog is 3, not 2, for kernels whose SYN queue holds the backlog,
 * not backlog + 1 (before commit 3479c7549fb1; see `_syn_queue.ts`): with
 * listen(fd, 2) there the 2 held requests fill the SYN queue, and with
 * tcp_syncookies 0 the fill group's SYNs are dropped until the held requests
 * expire (63 s). With 3 one slot is left on every kernel.
 *
 * On a slow machine (an emulated VM builds this in seconds, not
 * milliseconds) two things stretch. The release comes late, when the held
 * clients' retransmissions are seconds apart: making room a fixed time after
 * the release could come before the overflow, so it waits for the overflow.
 * And the held reads must still be waiting when the RST (abort 1) comes: their
 * timeout is stretched by the machine's time scale (`KernelFacts.timeScale`;
 * 1 s on a native machine). How many SYN-ACK timer firings pass before the
 * overflow then depends on the machine's speed, not the kernel: that bound is
 * marked `timing` (recorded, and unable to fail a run, on an emulated VM).
 */
import {
  type ClaimDecision,
  defineExperiment,
  type KernelFacts,
  type RunEvidence,
} from "../define.ts";

type P = { abortOnOverflow: number; syncookies: number };
type Run = RunEvidence<P>;

/** listen(fd, BACKLOG): the SYN queue keeps a slot beside the held requests on every kernel. */
const BACKLOG = 3;
/** The accept queue holds backlog + 1. */
const FILL = BACKLOG + 1;
const HELD = 2;

/** The held connections survive the overflow (abort 0, or the cookie path that ignores it). */
const survives = (p: P) => p.abortOnOverflow === 0 || p.syncookies === 2;
/** A request is kept after the ACK is dropped, and its timer resends the SYN-ACK. */
const keepsRequest = (p: P) => p.syncookies === 0 && p.abortOnOverflow === 0;
/** The held reads' timeout: 1 s on a native machine, longer where the lab runs slower. */
const readTimeoutMs = (_p: P, k: KernelFacts) => Math.round(1000 * Math.max(1, k.timeScale));

export default defineExperiment({
  id: "final-ack-at-full-accept-queue",
  title: "The final ACK at a full accept queue: dropped and retried (abort 0) or reset (abort 1)",
  hypothesis:
    "With the accept queue full the final ACK is dropped; abort_on_overflow=0 keeps the request and completes it later, 1 resets it.",
  matrix: { abortOnOverflow: [0, 1], syncookies: [0, 2] },
  hosts: {
    server: {
      sysctls: {
        "net.ipv4.tcp_abort_on_overflow": (p) => p.abortOnOverflow,
        "net.ipv4.tcp_syncookies": (p) => p.syncookies,
      },
    },
    client: {},
  },
  server: { host: "server", backlog: BACKLOG },
  rules: {
    hold: { host: "client", direction: "out", packets: "ack", group: "held" },
  },
  clients: [
    // The read timeout outlasts the overflow (the RST of abort 1 comes first) and, on a native
    // machine, ends before the server makes room (overflow + 1.5 s).
    {
      name: "held",
      host: "client",
      count: HELD,
      afterConnect: { send: 100, read: { timeoutMs: readTimeoutMs } },
    },
    {
      name: "fill",
      host: "client",
      count: FILL,
      start: { intervalMs: 2 },
      // The client kernel's count: the program's events can come later on a busy machine.
      startWhen: { metric: "client.ESTABLISHED@held", equals: HELD },
    },
  ],
  timeline: [
    {
      name: "release",
      when: { metric: "server.ESTABLISHED", equals: FILL },
      do: { removeRule: "hold" },
    },
    {
      name: "make room",
      afterStep: "release",
      // Both held ACKs met the full queue; then 1.5 s for the request timer to show itself.
      when: { metric: "server.TcpExtListenOverflows", atLeast: HELD },
      delayMs: 1500,
      do: { accept: FILL },
    },
  ],
  capture: ["server"],
  // Completion after "make room" needs the next SYN-ACK (3 s after the SYN) or data retransmission
  // (0.2, 0.6, 1.4, 3.0 s …); 8 s leaves room for two more backoffs.
  observe: { intervalMs: 25, windowMs: 8000 },
  expect: [
    {
      name: "held connect() returned",
      metric: "clients.held.connected",
      equals: HELD,
      stableMs: 0,
    },
    { name: "queue filled", metric: "server.recvQ", equals: FILL, over: "peak" },
    { name: "overflow counted", metric: "server.TcpExtListenOverflows", atLeast: HELD },
    {
      name: "held reads timed out",
      metric: "clients.held.after.timeout",
      equals: (p) => survives(p) ? HELD : 0,
    },
    {
      name: "held reads reset",
      metric: "clients.held.after.ECONNRESET",
      equals: (p) => survives(p) ? 0 : HELD,
    },
    {
      name: "resets sent",
      metric: "server.TcpOutRsts",
      atLeast: (p) => survives(p) ? 0 : HELD,
      atMost: (p) => survives(p) ? 0 : Infinity,
    },
    {
      // abort 0 / cookies: 4 accepted + 2 held completed later; abort 1: the 4 accepted only.
      name: "server connections at the end",
      metric: "server.ESTABLISHED",
      equals: (p) => survives(p) ? FILL + HELD : FILL,
      stableMs: 300,
    },
    { name: "SYN_RECV at the end", metric: "server.SYN_RECV", equals: 0, stableMs: 300 },
  ],
  expectPackets: [
    {
      name: "SYN-ACK retransmitted to held",
      host: "server",
      kind: "SYN-ACK",
      from: "server",
      group: "held",
      // abort 0 keeps the request and its timer, which resends (1 s after the SYN, then 2 s
      // later); cookies 2 never has a request, so nothing is resent.
      count: {
        atLeast: (p) => keepsRequest(p) ? 2 : 1,
        atMost: (p) => p.syncookies === 2 ? 1 : Infinity,
      },
    },
    {
      // How many firings pass before the overflow: none with abort 1 on a native machine (the
      // overflow comes within 0.5 s of the SYN), and before completion two at most with abort 0.
      name: "SYN-ACKs before the overflow",
      host: "server",
      kind: "SYN-ACK",
      from: "server",
      group: "held",
      count: { atMost: (p) => keepsRequest(p) ? 3 : 1 },
      timing: true,
    },
  ],
  claims: {
    "A0.5": (runs) => {
      const r = at(runs, 0, 0);
      // Dropped (the overflow counted) and "nothing else": no request kept, no SYN-ACK resent.
      const dropped = r.value("server.TcpExtListenOverflows") > 0;
      const resent = r.packets({ host: "server", kind: "SYN-ACK", from: "server", group: "held" })
        .some((t) => t.length > 1);
      const kept = r.value("server.SYN_RECV", "peak") > 0 &&
        r.value("server.ESTABLISHED") === FILL + HELD;
      return {
        verdict: !dropped ? "not reproduced" : resent || kept ? "partly" : "reproduced",
        evidence:
          `tcp_abort_on_overflow=0, syncookies 0: the final ACK was dropped (ListenOverflows +${
            r.value("server.TcpExtListenOverflows")
          }), but not "nothing else": the request stayed in SYN_RECV (${
            r.value("server.SYN_RECV", "peak")
          }), the server retransmitted its SYN-ACK (${
            synAcks(r)
          } per held connection) and the connection completed once the server accepted (server ESTABLISHED ${
            r.value("server.ESTABLISHED")
          })`,
      };
    },
    "A0.6": (runs) => resetClaim(runs),
    "A1.5": (runs) => {
      const r = at(runs, 0, 0);
      return {
        verdict: r.value("clients.held.connected") === 2 &&
            r.value("clients.held.after.timeout") === 2
          ? "reproduced"
          : "not reproduced",
        evidence: `with the accept queue full (Recv-Q ${
          r.value("server.recvQ", "peak")
        }) both held clients' connect() returned (${
          r.value("clients.held.connected")
        }) while the server held only SYN_RECV requests (${
          r.value("server.SYN_RECV", "peak")
        }); their recv() timed out (${r.value("clients.held.after.timeout")} of 2)`,
      };
    },
    "A1.11": (runs) => {
      const a0 = at(runs, 0, 0);
      const a1 = at(runs, 1, 0);
      const c1 = at(runs, 1, 2);
      const ok = a0.value("clients.held.after.timeout") === 2 &&
        a1.value("clients.held.after.ECONNRESET") === 2;
      return {
        verdict: ok && c1.value("clients.held.after.ECONNRESET") === 2
          ? "reproduced"
          : ok
          ? "partly"
          : "not reproduced",
        evidence: `syncookies 0: abort 0 → ${
          a0.value("clients.held.after.timeout")
        } of 2 reads timed out; abort 1 → ${
          a1.value("clients.held.after.ECONNRESET")
        } of 2 ECONNRESET. With tcp_syncookies=2 and abort 1: ${
          c1.value("clients.held.after.ECONNRESET")
        } ECONNRESET, ${
          c1.value("clients.held.after.timeout")
        } timeouts (cookie ACKs ignore the sysctl)`,
      };
    },
    "A4.6": (runs) => {
      const r = at(runs, 0, 0);
      const c = at(runs, 0, 2);
      return {
        verdict: r.value("server.ESTABLISHED") === FILL + HELD ? "reproduced" : "not reproduced",
        evidence:
          `abort 0: after the server accepted ${FILL}, the ${HELD} dropped handshakes completed (server ESTABLISHED ${
            r.value("server.ESTABLISHED")
          }, Recv-Q ${
            r.value("server.recvQ")
          }) on the next SYN-ACK/ACK exchange; with syncookies 2 too (${
            c.value("server.ESTABLISHED")
          }), through the client's data retransmission`,
      };
    },
  },
});

function at(runs: readonly Run[], abortOnOverflow: number, syncookies: number): Run {
  const r = runs.find((x) =>
    x.params.abortOnOverflow === abortOnOverflow && x.params.syncookies === syncookies
  );
  if (!r) throw new RangeError(`No run with abort ${abortOnOverflow}, syncookies ${syncookies}`);
  return r;
}

function synAcks(r: Run): string {
  return r.packets({ host: "server", kind: "SYN-ACK", from: "server", group: "held" })
    .map((t) => t.length).join(", ");
}

function resetClaim(runs: readonly Run[]): ClaimDecision {
  const a1 = at(runs, 1, 0);
  const c1 = at(runs, 1, 2);
  const rst = (r: Run) => r.value("server.TcpOutRsts");
  return {
    verdict: rst(a1) >= 2 && rst(c1) === 0
      ? "partly"
      : rst(a1) >= 2
      ? "reproduced"
      : "not reproduced",
    evidence: `tcp_abort_on_overflow=1: with syncookies 0 the server sent ${
      rst(a1)
    } RSTs for 2 overflowing ACKs; with tcp_syncookies=2 (cookie ACKs) it sent ${
      rst(c1)
    } and the connections completed later (server ESTABLISHED ${c1.value("server.ESTABLISHED")})`,
  };
}
