/**
 * The claims catalogue: every statement the five articles make, with the
 * stable ids the experiments cite (`A<article>.<n>`). It mirrors the project's
 * `CLAIMS.md` (a test keeps the two in step where that file is present), so
 * the lab works from a clone alone.
 * @module
 */

/** An article the catalogue draws from. */
export interface Article {
  /** Article id, `A0` … `A4`; the prefix of its claims' ids. */
  id: string;
  /** Name of the article's source text file. */
  file: string;
  /** The article's title, in its original language. */
  title: string;
}

/** One claim of one article. */
export interface Claim {
  /** Stable id `A<article>.<n>` that experiments cite. */
  id: string;
  /** Id of the article that makes the claim, e.g. `A2`. */
  article: string;
  /** What the article claims, as one checkable statement. */
  statement: string;
}

/** The five articles. */
export const ARTICLES: readonly Article[] = [
  { id: "A0", file: "000_f662bfb0c0f50e85.txt", title: "TCP Listen backlog" },
  { id: "A1", file: "001_3f3ff076598bf0e9.txt", title: "TCP/IP中backlog参数" },
  { id: "A2", file: "002_df94dfccabbe22be.txt", title: "socket里listen函数的参数backlog的含义" },
  {
    id: "A3",
    file: "003_fdb784568d55c3ae.txt",
    title: "listen()的backlog参数和未完成队列、已完成队列的关系",
  },
  { id: "A4", file: "004_4118ab96deb639f3.txt", title: "socket system calls and the two queues" },
];

/** Every claim, in catalogue order. */
export const CLAIMS: readonly Claim[] = [
  {
    id: "A0.1",
    article: "A0",
    statement: "The incomplete (SYN) queue's maximum length is `net.ipv4.tcp_max_syn_backlog`.",
  },
  {
    id: "A0.2",
    article: "A0",
    statement:
      "The complete (accept) queue's maximum length is the `backlog` passed to `listen()`.",
  },
  {
    id: "A0.3",
    article: "A0",
    statement: "With `tcp_syncookies=0`, once the SYN queue is full no new connection is accepted.",
  },
  {
    id: "A0.4",
    article: "A0",
    statement:
      "With `tcp_syncookies=1`, a full SYN queue does not stop new connections (cookies are sent).",
  },
  {
    id: "A0.5",
    article: "A0",
    statement:
      "When the accept queue is full and `tcp_abort_on_overflow=0`, the server drops the client's final ACK and does nothing else.",
  },
  {
    id: "A0.6",
    article: "A0",
    statement:
      "When the accept queue is full and `tcp_abort_on_overflow=1`, the server answers with RST.",
  },
  {
    id: "A1.1",
    article: "A1",
    statement: "Before Linux 2.2 the backlog bounded both queues together. (historical)",
  },
  {
    id: "A1.2",
    article: "A1",
    statement: "The SYN queue length is `tcp_max_syn_backlog`, default 2048.",
  },
  {
    id: "A1.3",
    article: "A1",
    statement:
      "The accept queue length is `min(backlog, net.core.somaxconn)`; default `somaxconn` is 128.",
  },
  {
    id: "A1.4",
    article: "A1",
    statement:
      "In `ss -l`, a LISTEN socket's Send-Q is the accept queue's maximum and Recv-Q the number of connections waiting for `accept()`.",
  },
  {
    id: "A1.5",
    article: "A1",
    statement:
      "`connect()` returning does not mean the server has the connection: with a full accept queue the server drops the ACK, the client believes it is connected and its reads/waits time out.",
  },
  {
    id: "A1.6",
    article: "A1",
    statement:
      'The server then retransmits SYN+ACK `tcp_synack_retries` times (default 5), "each wait 30–40 s", about 180 s in all.',
  },
  {
    id: "A1.7",
    article: "A1",
    statement:
      '`netstat -s` "SYNs to LISTEN sockets dropped" shows accept-queue overflow; `TCPBacklogDrop` shows SYN-queue overflow.',
  },
  {
    id: "A1.8",
    article: "A1",
    statement: "A client that gets no SYN+ACK resends its SYN after 3 s, and again after 9 s.",
  },
  {
    id: "A1.9",
    article: "A1",
    statement: "The SYN queue length is `max(64, tcp_max_syn_backlog)`.",
  },
  {
    id: "A1.10",
    article: "A1",
    statement:
      "With the default `somaxconn` of 128 at most 129 ESTABLISHED connections wait for `accept()`.",
  },
  {
    id: "A1.11",
    article: "A1",
    statement:
      '`tcp_abort_on_overflow=0` ⇒ client sees a read timeout; `=1` ⇒ client sees "connection reset by peer".',
  },
  {
    id: "A1.12",
    article: "A1",
    statement:
      "A server that never accepts does not simply stop answering SYNs: it ignores some at random, the number of connections keeps growing, and clients see delays and timeouts.",
  },
  {
    id: "A2.1",
    article: "A2",
    statement:
      "With `listen(fd, 2)` the first `backlog + 1` (3) clients complete the handshake and wait ESTABLISHED in the accept queue.",
  },
  {
    id: "A2.2",
    article: "A2",
    statement:
      "Further clients show as SYN_RECV on the server; the client's `connect()` does not return, yet the client-side socket shows ESTABLISHED; the server keeps retransmitting SYN+ACK.",
  },
  {
    id: "A2.3",
    article: "A2",
    statement:
      "A SYN_RECV entry disappears after about one minute without the server program noticing.",
  },
  {
    id: "A2.4",
    article: "A2",
    statement:
      "When the server process exits, the clients in the accept queue all fail; the ones that were only half-connected notice nothing.",
  },
  {
    id: "A2.5",
    article: "A2",
    statement:
      "`tcp_max_syn_backlog` has no effect: the number of SYN_RECV entries is bounded by the listen backlog (2 → 2, 4 → 4), and the full queue holds one more than that.",
  },
  {
    id: "A2.6",
    article: "A2",
    statement: "The number of connections a process can `accept()` is bounded by `ulimit -n`.",
  },
  {
    id: "A3.1",
    article: "A3",
    statement:
      "An incomplete entry stays until the handshake completes or it times out (75 s in Berkeley-derived stacks).",
  },
  {
    id: "A3.2",
    article: "A3",
    statement:
      "When the queue is full, the client gets ECONNREFUSED, or, where the protocol retransmits, the SYN is ignored and the client retries.",
  },
  {
    id: "A3.3",
    article: "A3",
    statement:
      "The SYN queue length is `tcp_max_syn_backlog` (default 512 on most kernels), and the setting only matters when syncookies are disabled.",
  },
  {
    id: "A3.4",
    article: "A3",
    statement:
      "A `backlog` larger than `somaxconn` is silently truncated to `somaxconn` (default 128).",
  },
  {
    id: "A4.1",
    article: "A4",
    statement:
      "`ss`: for a LISTEN socket Recv-Q can reach `Send-Q + 1`, i.e. `min(backlog, somaxconn) + 1`, because the kernel tests fullness with `>`.",
  },
  {
    id: "A4.2",
    article: "A4",
    statement: "`ss`: a LISTEN socket's Send-Q is `min(backlog, somaxconn)`.",
  },
  {
    id: "A4.3",
    article: "A4",
    statement:
      "`ss`: for other sockets Recv-Q is bytes received but not read by the application, Send-Q bytes sent but not acknowledged.",
  },
  { id: "A4.4", article: "A4", statement: "The SYN queue size is `max(64, tcp_max_syn_backlog)`." },
  {
    id: "A4.5",
    article: "A4",
    statement:
      'In `netstat -s`, "times the listen queue of a socket overflowed" counts accept-queue overflows and "SYNs to LISTEN sockets dropped" counts SYN-queue overflows.',
  },
  {
    id: "A4.6",
    article: "A4",
    statement:
      "With `tcp_abort_on_overflow=0` the server drops the final ACK; if the accept queue frees up in time, the connection then completes.",
  },
  {
    id: "A4.7",
    article: "A4",
    statement: 'With `tcp_abort_on_overflow=1` clients see many "connection reset by peer" errors.',
  },
  { id: "A4.8", article: "A4", statement: "A full SYN queue drops new SYNs by default." },
  {
    id: "A4.9",
    article: "A4",
    statement:
      "`tcp_syncookies=1` sends cookies only when the SYN queue is full; `=2` sends them unconditionally; `=0` never.",
  },
  {
    id: "A4.10",
    article: "A4",
    statement: "Lowering `tcp_synack_retries` makes SYN_RECV entries go away sooner.",
  },
];

const BY_ID = new Map(CLAIMS.map((c) => [c.id, c]));

/** The claim with this id, or `undefined`. */
export function claimById(id: string): Claim | undefined {
  return BY_ID.get(id);
}
