/**
 * Unit tests of the socket-table parsers against `/proc/net/tcp{,6}` and `ss`
 * text captured from real namespaces (tests/testdata/).
 * @module
 */
import {
  deepStrictEqual as deepEqual,
  match,
  strictEqual as equal,
  throws,
} from "node:assert/strict";
import { KernelTextError } from "../../lab/base/errors.ts";
import {
  countStates,
  parseProcNetTcp,
  parseSs,
  type SocketRow,
  TCP_STATES,
  type TcpState,
  uniqueSockets,
} from "../../lab/observe/socket_table.ts";

function testdata(name: string): string {
  return Deno.readTextFileSync(new URL(`../testdata/${name}`, import.meta.url));
}

/** Only the non-zero state counts, for compact expectations. */
function nonZero(counts: Record<TcpState, number>): Partial<Record<TcpState, number>> {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n !== 0));
}

/** `STATE remote:port` of every row, sorted: what two views of one snapshot must share. */
function peers(rows: readonly SocketRow[], port: number): string[] {
  return rows
    .filter((r) => r.state !== "LISTEN" && (r.localPort === port || r.remotePort === port))
    .map((r) =>
      r.localPort === port
        ? `${r.state} ${r.remoteAddress}:${r.remotePort}`
        : `${r.state} ${r.localAddress}:${r.localPort}`
    )
    .sort();
}

/** The kernel's hex for an IPv6 address given as 16 bytes: four host-order (LE) u32 words. */
function kernelHex6(bytes: readonly number[]): string {
  let hex = "";
  for (let w = 0; w < 4; w++) {
    for (let b = 3; b >= 0; b--) hex += (bytes[w * 4 + b] ?? 0).toString(16).padStart(2, "0");
  }
  return hex.toUpperCase();
}

const PROC_HEADER =
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

function procLine(local: string, remote: string, st: string, queues = "00000000:00000000"): string {
  return `${PROC_HEADER}\n   0: ${local} ${remote} ${st} ${queues} 00:00000000 00000000     0        0 1 1 0000000000000000 20 0 0 10 -1\n`;
}

// --- parseProcNetTcp --------------------------------------------------------

const PROC_CASES: {
  file: string;
  port: number;
  rows: number;
  counts: Partial<Record<TcpState, number>>;
  listen?: { address: string; recvQ: number; sendQ: number };
}[] = [
  {
    file: "proc_net_tcp_server_backlog2.txt",
    port: 8080,
    rows: 4,
    counts: { LISTEN: 1, ESTABLISHED: 3 },
    listen: { address: "10.213.0.1", recvQ: 3, sendQ: 0 },
  },
  {
    file: "proc_net_tcp_server_burst.txt",
    port: 8080,
    rows: 4,
    counts: { LISTEN: 1, ESTABLISHED: 3 },
    listen: { address: "10.213.0.1", recvQ: 3, sendQ: 0 },
  },
  {
    file: "proc_net_tcp_server_synrecv.txt",
    port: 8080,
    rows: 6,
    counts: { LISTEN: 1, SYN_RECV: 5 },
    listen: { address: "10.213.0.1", recvQ: 0, sendQ: 0 },
  },
  {
    file: "proc_net_tcp_client_backlog2.txt",
    port: 8080,
    rows: 6,
    counts: { ESTABLISHED: 3, SYN_SENT: 3 },
  },
  {
    file: "proc_net_tcp6_server.txt",
    port: 8086,
    rows: 5,
    counts: { LISTEN: 1, ESTABLISHED: 4 },
    listen: { address: "fd00:213::1", recvQ: 4, sendQ: 0 },
  },
  {
    file: "proc_net_tcp6_client.txt",
    port: 8086,
    rows: 5,
    counts: { ESTABLISHED: 4, SYN_SENT: 1 },
  },
];

for (const c of PROC_CASES) {
  Deno.test(`parseProcNetTcp() reads ${c.file}: ${JSON.stringify(c.counts)}`, () => {
    const rows = parseProcNetTcp(testdata(c.file));
    equal(rows.length, c.rows);
    deepEqual(nonZero(countStates(rows, c.port)), c.counts);
    const listens = rows.filter((r) => r.state === "LISTEN");
    if (c.listen) {
      equal(listens.length, 1);
      const l = listens[0]!;
      equal(l.localAddress, c.listen.address);
      equal(l.localPort, c.port);
      equal(l.remotePort, 0);
      equal(l.recvQ, c.listen.recvQ);
      equal(l.sendQ, c.listen.sendQ);
    } else {
      equal(listens.length, 0);
    }
  });
}

Deno.test("parseProcNetTcp() decodes the server's IPv4 sockets of the backlog-2 snapshot", () => {
  const rows = parseProcNetTcp(testdata("proc_net_tcp_server_backlog2.txt"));
  deepEqual(rows, [
    {
      state: "LISTEN",
      localAddress: "10.213.0.1",
      localPort: 8080,
      remoteAddress: "0.0.0.0",
      remotePort: 0,
      sendQ: 0,
      recvQ: 3,
    },
    ...[34880, 34878, 34896].map((remotePort) => ({
      state: "ESTABLISHED",
      localAddress: "10.213.0.1",
      localPort: 8080,
      remoteAddress: "10.213.0.2",
      remotePort,
      sendQ: 0,
      recvQ: 0,
    })),
  ]);
});

Deno.test("parseProcNetTcp() counts SYN_RECV request sockets", () => {
  const rows = parseProcNetTcp(testdata("proc_net_tcp_server_synrecv.txt"));
  const synRecv = rows.filter((r) => r.state === "SYN_RECV");
  equal(synRecv.length, 5);
  equal(countStates(rows, 8080).SYN_RECV, 5);
  equal(countStates(rows, 8080).NEW_SYN_RECV, 0);
  deepEqual(synRecv.map((r) => r.remotePort).sort(), [40506, 40518, 40524, 40534, 40548]);
  for (const r of synRecv) {
    equal(r.localAddress, "10.213.0.1");
    equal(r.remoteAddress, "10.213.0.2");
  }
});

Deno.test("parseProcNetTcp() reads SYN_SENT's unacknowledged SYN as tx_queue 1", () => {
  const rows = parseProcNetTcp(testdata("proc_net_tcp_client_backlog2.txt"));
  const synSent = rows.filter((r) => r.state === "SYN_SENT");
  deepEqual(synSent.map((r) => [r.localPort, r.sendQ, r.recvQ]), [
    [34902, 1, 0],
    [34904, 1, 0],
    [34920, 1, 0],
  ]);
  for (const r of rows) {
    equal(r.localAddress, "10.213.0.2");
    equal(r.remoteAddress, "10.213.0.1");
    equal(r.remotePort, 8080);
  }
});

Deno.test("parseProcNetTcp() decodes tcp6 addresses like fd00:213::1", () => {
  const server = parseProcNetTcp(testdata("proc_net_tcp6_server.txt"));
  equal(server[0]!.localAddress, "fd00:213::1");
  equal(server[0]!.remoteAddress, "::");
  for (const r of server.slice(1)) {
    equal(r.state, "ESTABLISHED");
    equal(r.localAddress, "fd00:213::1");
    equal(r.remoteAddress, "fd00:213::2");
  }
  deepEqual(server.slice(1).map((r) => r.remotePort).sort(), [56362, 56364, 56370, 56384]);
  const client = parseProcNetTcp(testdata("proc_net_tcp6_client.txt"));
  const sent = client.find((r) => r.state === "SYN_SENT");
  deepEqual(sent, {
    state: "SYN_SENT",
    localAddress: "fd00:213::2",
    localPort: 56390,
    remoteAddress: "fd00:213::1",
    remotePort: 8086,
    sendQ: 1,
    recvQ: 0,
  });
});

const V6_CASES: { bytes: number[]; text: string }[] = [
  { bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], text: "::1" },
  { bytes: new Array(16).fill(0), text: "::" },
  { bytes: [0xfd, 0, 2, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], text: "fd00:213::1" },
  // A single zero group is not compressed (RFC 5952 4.2.2).
  { bytes: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1], text: "2001:db8:0:1:1:1:1:1" },
  // The first of two equally long zero runs is compressed (RFC 5952 4.2.3).
  { bytes: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1], text: "2001:db8::1:0:0:1" },
  // The longest run wins over an earlier shorter one.
  { bytes: [0x20, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], text: "2001:0:0:1::1" },
  {
    bytes: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 0, 0, 0, 0x12, 0x34],
    text: "fe80::abcd:0:0:1234",
  },
];

for (const c of V6_CASES) {
  Deno.test(`parseProcNetTcp() writes the IPv6 address ${c.text} in RFC 5952 form`, () => {
    const hex = kernelHex6(c.bytes);
    const [row] = parseProcNetTcp(procLine(`${hex}:1F90`, `${hex}:0050`, "01"));
    equal(row?.localAddress, c.text);
    equal(row?.remoteAddress, c.text);
    equal(row?.localPort, 8080);
    equal(row?.remotePort, 80);
  });
}

const V4_CASES: { hex: string; text: string }[] = [
  { hex: "0100D50A", text: "10.213.0.1" },
  { hex: "0200D50A", text: "10.213.0.2" },
  { hex: "0100007F", text: "127.0.0.1" },
  { hex: "00000000", text: "0.0.0.0" },
  { hex: "FFFFFFFF", text: "255.255.255.255" },
  { hex: "0102A8C0", text: "192.168.2.1" },
];

for (const c of V4_CASES) {
  Deno.test(`parseProcNetTcp() decodes the host-order IPv4 ${c.hex} as ${c.text}`, () => {
    const [row] = parseProcNetTcp(procLine(`${c.hex}:FFFF`, "0100D50A:0001", "0A"));
    equal(row?.localAddress, c.text);
    equal(row?.localPort, 65535);
    equal(row?.remotePort, 1);
    equal(row?.state, "LISTEN");
  });
}

Deno.test("parseProcNetTcp() maps every kernel state number 01..0C to its name", () => {
  TCP_STATES.forEach((state, i) => {
    const st = (i + 1).toString(16).toUpperCase().padStart(2, "0");
    const [row] = parseProcNetTcp(procLine("0100D50A:1F90", "0200D50A:883E", st));
    equal(row?.state, state, `st ${st}`);
  });
  equal(TCP_STATES.length, 12);
});

Deno.test("parseProcNetTcp() reads tx_queue and rx_queue as hex", () => {
  const [row] = parseProcNetTcp(
    procLine("0100D50A:1F90", "00000000:0000", "0A", "0000001A:00000101"),
  );
  equal(row?.sendQ, 26);
  equal(row?.recvQ, 257);
});

Deno.test("parseProcNetTcp() ignores the header and blank lines", () => {
  deepEqual(parseProcNetTcp(""), []);
  deepEqual(parseProcNetTcp(`${PROC_HEADER}\n`), []);
  deepEqual(parseProcNetTcp(`${PROC_HEADER}\n\n   \n`), []);
  const text = testdata("proc_net_tcp_server_backlog2.txt");
  equal(parseProcNetTcp(text + "\n\n").length, 4);
  equal(parseProcNetTcp(text.replaceAll("\n", "\r\n")).length, 4);
});

const MALFORMED_PROC: { why: string; line: string }[] = [
  { why: "an unknown state 00", line: procLine("0100D50A:1F90", "0200D50A:883E", "00") },
  { why: "an unknown state 0D", line: procLine("0100D50A:1F90", "0200D50A:883E", "0D") },
  { why: "a non-hex state", line: procLine("0100D50A:1F90", "0200D50A:883E", "ZZ") },
  { why: "a local address without a port", line: procLine("0100D50A", "0200D50A:883E", "01") },
  { why: "a three-digit port", line: procLine("0100D50A:F90", "0200D50A:883E", "01") },
  { why: "a non-hex address", line: procLine("0100D5XA:1F90", "0200D50A:883E", "01") },
  {
    why: "queues without a colon",
    line: procLine("0100D50A:1F90", "0200D50A:883E", "01", "0000000000000000"),
  },
  {
    why: "short queue fields",
    line: procLine("0100D50A:1F90", "0200D50A:883E", "01", "0:0"),
  },
];

for (const c of MALFORMED_PROC) {
  Deno.test(`parseProcNetTcp() throws KernelTextError on ${c.why}`, () => {
    throws(() => parseProcNetTcp(c.line), (err: unknown) => {
      equal((err as Error).constructor, KernelTextError);
      match((err as Error).message, /Cannot parse a \/proc\/net\/tcp line: "0: /);
      return true;
    });
  });
}

Deno.test("parseProcNetTcp() throws on a malformed line amid good ones", () => {
  const good = testdata("proc_net_tcp_server_backlog2.txt").trimEnd().split("\n");
  good.splice(2, 0, "   9: 0100D50A:1F90 0200D50A:8840 99 00000000:00000000 00:00000000 0 0 0");
  throws(() => parseProcNetTcp(good.join("\n")), KernelTextError);
});

// --- parseSs ----------------------------------------------------------------

const SS_CASES: {
  file: string;
  port: number;
  rows: number;
  counts: Partial<Record<TcpState, number>>;
  listen?: { address: string; recvQ: number; sendQ: number };
}[] = [
  {
    file: "ss_ltn_backlog2.txt",
    port: 8080,
    rows: 1,
    counts: { LISTEN: 1 },
    listen: { address: "10.213.0.1", recvQ: 3, sendQ: 2 },
  },
  {
    file: "ss_tan_server.txt",
    port: 8080,
    rows: 4,
    counts: { LISTEN: 1, ESTABLISHED: 3 },
    listen: { address: "10.213.0.1", recvQ: 3, sendQ: 2 },
  },
  {
    file: "ss_tan_server_synrecv.txt",
    port: 8080,
    rows: 6,
    counts: { LISTEN: 1, SYN_RECV: 5 },
    listen: { address: "10.213.0.1", recvQ: 0, sendQ: 4 },
  },
  {
    file: "ss_tan_client.txt",
    port: 8080,
    rows: 6,
    counts: { ESTABLISHED: 3, SYN_SENT: 3 },
  },
  {
    file: "ss_tan_server_burst.txt",
    port: 8080,
    rows: 9,
    counts: { LISTEN: 1, ESTABLISHED: 3 },
    listen: { address: "10.213.0.1", recvQ: 3, sendQ: 2 },
  },
  {
    file: "ss_tan_server_burst.txt",
    port: 8086,
    rows: 9,
    counts: { LISTEN: 1, ESTABLISHED: 4 },
    listen: { address: "fd00:213::1", recvQ: 4, sendQ: 3 },
  },
  {
    file: "ss_ltn_v4_v6.txt",
    port: 8086,
    rows: 2,
    counts: { LISTEN: 1 },
    listen: { address: "fd00:213::1", recvQ: 4, sendQ: 3 },
  },
];

for (const c of SS_CASES) {
  Deno.test(`parseSs() reads ${c.file} (port ${c.port}): ${JSON.stringify(c.counts)}`, () => {
    const rows = parseSs(testdata(c.file));
    equal(rows.length, c.rows);
    deepEqual(nonZero(countStates(rows, c.port)), c.counts);
    const listens = rows.filter((r) => r.state === "LISTEN" && r.localPort === c.port);
    if (c.listen) {
      equal(listens.length, 1);
      equal(listens[0]!.localAddress, c.listen.address);
      equal(listens[0]!.recvQ, c.listen.recvQ);
      equal(listens[0]!.sendQ, c.listen.sendQ);
      equal(listens[0]!.remotePort, 0);
    } else {
      equal(listens.length, 0);
    }
  });
}

Deno.test("parseSs() reads ss -ltn's LISTEN Recv-Q 3 and Send-Q 2 for listen(fd, 2)", () => {
  deepEqual(parseSs(testdata("ss_ltn_backlog2.txt")), [{
    state: "LISTEN",
    localAddress: "10.213.0.1",
    localPort: 8080,
    remoteAddress: "0.0.0.0",
    remotePort: 0,
    sendQ: 2,
    recvQ: 3,
  }]);
});

Deno.test("parseSs() reads IPv4 and IPv6 listeners, unbracketing v6 addresses", () => {
  deepEqual(parseSs(testdata("ss_ltn_v4_v6.txt")), [
    {
      state: "LISTEN",
      localAddress: "10.213.0.1",
      localPort: 8080,
      remoteAddress: "0.0.0.0",
      remotePort: 0,
      sendQ: 2,
      recvQ: 3,
    },
    {
      state: "LISTEN",
      localAddress: "fd00:213::1",
      localPort: 8086,
      remoteAddress: "::",
      remotePort: 0,
      sendQ: 3,
      recvQ: 4,
    },
  ]);
});

Deno.test("parseSs() maps ss's state names (ESTAB, SYN-SENT, SYN-RECV, …) to the kernel's", () => {
  const names: [string, TcpState][] = [
    ["ESTAB", "ESTABLISHED"],
    ["SYN-SENT", "SYN_SENT"],
    ["SYN-RECV", "SYN_RECV"],
    ["FIN-WAIT-1", "FIN_WAIT1"],
    ["FIN-WAIT-2", "FIN_WAIT2"],
    ["TIME-WAIT", "TIME_WAIT"],
    ["UNCONN", "CLOSE"],
    ["CLOSE-WAIT", "CLOSE_WAIT"],
    ["LAST-ACK", "LAST_ACK"],
    ["LISTEN", "LISTEN"],
    ["CLOSING", "CLOSING"],
  ];
  for (const [ss, state] of names) {
    const [row] = parseSs(`${ss} 0 0 10.213.0.1:8080 10.213.0.2:40000\n`);
    equal(row?.state, state, ss);
  }
});

Deno.test("parseSs() reads output without the header (ss -H) and with a Process column", () => {
  const rows = parseSs(
    'ESTAB 0 12 10.213.0.2:34878 10.213.0.1:8080 users:(("deno",pid=7,fd=12))\n' +
      "SYN-SENT 0 1 [fd00:213::2]:56390 [fd00:213::1]:8086\n",
  );
  deepEqual(rows.map((r) => [r.state, r.localAddress, r.localPort, r.remotePort, r.sendQ]), [
    ["ESTABLISHED", "10.213.0.2", 34878, 8080, 12],
    ["SYN_SENT", "fd00:213::2", 56390, 8086, 1],
  ]);
});

Deno.test("parseSs() reads the client's SYN-SENT sockets with Send-Q 1", () => {
  const rows = parseSs(testdata("ss_tan_client.txt"));
  deepEqual(
    rows.filter((r) => r.state === "SYN_SENT").map((r) => [r.localPort, r.sendQ, r.recvQ]),
    [[34902, 1, 0], [34904, 1, 0], [34920, 1, 0]],
  );
});

const MALFORMED_SS: { why: string; line: string }[] = [
  { why: "an unknown state", line: "ESTABLISHED 0 0 10.213.0.1:8080 10.213.0.2:40000" },
  { why: "a lowercase state", line: "estab 0 0 10.213.0.1:8080 10.213.0.2:40000" },
  { why: "a non-numeric Recv-Q", line: "ESTAB x 0 10.213.0.1:8080 10.213.0.2:40000" },
  { why: "a fractional Send-Q", line: "ESTAB 0 1.5 10.213.0.1:8080 10.213.0.2:40000" },
  { why: "columns swapped", line: "10.213.0.1:8080 ESTAB 0 0 10.213.0.2:40000" },
];

for (const c of MALFORMED_SS) {
  Deno.test(`parseSs() throws KernelTextError on ${c.why}`, () => {
    throws(() => parseSs(`${c.line}\n`), (err: unknown) => {
      equal((err as Error).constructor, KernelTextError);
      match((err as Error).message, /Cannot parse an ss line: "/);
      return true;
    });
  });
}

// --- countStates ------------------------------------------------------------

Deno.test("countStates() returns every state, zero where none", () => {
  const counts = countStates([], 8080);
  deepEqual(Object.keys(counts), [...TCP_STATES]);
  for (const s of TCP_STATES) equal(counts[s], 0);
});

Deno.test("countStates() counts only sockets of the given port, local or remote", () => {
  const burst = parseSs(testdata("ss_tan_server_burst.txt"));
  equal(countStates(burst, 8080).ESTABLISHED, 3);
  equal(countStates(burst, 8086).ESTABLISHED, 4);
  equal(countStates(burst, 9999).ESTABLISHED, 0);
  equal(countStates(burst, 9999).LISTEN, 0);
  // On the client the port is the remote one.
  const client = parseProcNetTcp(testdata("proc_net_tcp_client_backlog2.txt"));
  equal(countStates(client, 8080).SYN_SENT, 3);
  // A client's own ephemeral port matches as local.
  equal(countStates(client, 34902).SYN_SENT, 1);
  equal(countStates(client, 34902).ESTABLISHED, 0);
});

// --- the two views of one snapshot agree -----------------------------------

const SAME_SNAPSHOT: { proc: string; ss: string; port: number }[] = [
  { proc: "proc_net_tcp_server_synrecv.txt", ss: "ss_tan_server_synrecv.txt", port: 8080 },
  { proc: "proc_net_tcp_server_backlog2.txt", ss: "ss_tan_server.txt", port: 8080 },
  { proc: "proc_net_tcp_client_backlog2.txt", ss: "ss_tan_client.txt", port: 8080 },
  { proc: "proc_net_tcp_server_burst.txt", ss: "ss_tan_server_burst.txt", port: 8080 },
  { proc: "proc_net_tcp6_server.txt", ss: "ss_tan_server_burst.txt", port: 8086 },
];

for (const c of SAME_SNAPSHOT) {
  Deno.test(`parseProcNetTcp() and parseSs() agree on ${c.proc} vs ${c.ss}`, () => {
    const proc = parseProcNetTcp(testdata(c.proc));
    const ss = parseSs(testdata(c.ss));
    deepEqual(countStates(proc, c.port), countStates(ss, c.port));
    const procPeers = peers(proc, c.port);
    equal(procPeers.length > 0, true);
    deepEqual(procPeers, peers(ss, c.port));
    // The LISTEN socket's accept-queue length is rx_queue in /proc and Recv-Q in ss.
    const pl = proc.filter((r) => r.state === "LISTEN" && r.localPort === c.port);
    const sl = ss.filter((r) => r.state === "LISTEN" && r.localPort === c.port);
    equal(pl.length, sl.length);
    deepEqual(pl.map((r) => [r.localAddress, r.recvQ]), sl.map((r) => [r.localAddress, r.recvQ]));
  });
}

Deno.test("ss_tan_server_synrecv.txt and proc_net_tcp_server_synrecv.txt show the same 5 SYN_RECV", () => {
  const proc = countStates(parseProcNetTcp(testdata("proc_net_tcp_server_synrecv.txt")), 8080);
  const ss = countStates(parseSs(testdata("ss_tan_server_synrecv.txt")), 8080);
  equal(proc.SYN_RECV, 5);
  equal(ss.SYN_RECV, proc.SYN_RECV);
});

Deno.test({
  name: "parseProcNetTcp() throws KernelTextError on a truncated line",

  fn: () => {
    throws(
      () => parseProcNetTcp(`${PROC_HEADER}\n   0: 0100D50A:1F90 0200D50A:883E 01\n`),
      KernelTextError,
    );
    throws(() => parseProcNetTcp(`${PROC_HEADER}\ngarbage\n`), KernelTextError);
  },
});

Deno.test({
  name: "parseSs() throws KernelTextError on a short line or a peer without a port",

  fn: () => {
    throws(() => parseSs("ESTAB 0 0 10.213.0.1:8080\n"), KernelTextError);
    throws(() => parseSs("ESTAB 0 0 10.213.0.1:8080 10.213.0.2\n"), KernelTextError);
  },
});

Deno.test("uniqueSockets() drops a connection listed twice, keeping the row past SYN_RECV", () => {
  const row = (state: SocketRow["state"], port: number) => ({
    state,
    localAddress: "10.213.1.1",
    localPort: 8080,
    remoteAddress: "10.213.1.10",
    remotePort: port,
    sendQ: 0,
    recvQ: 0,
  });
  const listen = { ...row("LISTEN", 0), remoteAddress: "0.0.0.0" };
  const rows = uniqueSockets([
    listen,
    row("SYN_RECV", 1),
    row("SYN_RECV", 1),
    row("SYN_RECV", 2),
    row("ESTABLISHED", 2),
    row("ESTABLISHED", 3),
  ]);
  deepEqual(rows.map((r) => `${r.state}:${r.remotePort}`), [
    "LISTEN:0",
    "SYN_RECV:1",
    "ESTABLISHED:2",
    "ESTABLISHED:3",
  ]);
});
