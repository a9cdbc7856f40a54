/**
 * Unit tests of `lab/report/markdown.ts`: {@linkcode reportMarkdown} and
 * {@linkcode writeReport} on a small synthetic {@linkcode LabReport}, checked
 * for links that resolve, well-formed tables and what each section says.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { shellCommand } from "../../lab/observe/machine.ts";
import {
  claimAnchor,
  experimentAnchor,
  notableConnections,
  PACKET_TABLE_LIMITS,
  reportMarkdown,
} from "../../lab/report/markdown.ts";
import { ReportWriteError, writeReport } from "../../lab/report/directory.ts";
import { checksTable, ledgerTable } from "../../lab/report/text.ts";
import { markdownCell as cell } from "../../lab/report/table.ts";
import { observedTable, ownClaimsTable } from "../../lab/report/text.ts";
import type { ConnectionTimeline, LabReport, RunResult, Sample } from "../../lab/results.ts";
import type { PacketEvent } from "../../lab/observe/packet_timeline.ts";

// ---------------------------------------------------------------------------
// The synthetic report

const COMMAND = shellCommand([
  "deno",
  "task",
  "lab",
  "--only",
  "queue-fills|old-kernels",
  "--report",
  "out dir",
]);
const ERROR = "Cannot start the server: exit code 1 | stderr:\nbind: address in use";
const PIPE_EXPECTED = "= 3 | 4 for 150 ms";
const PCAP = "pcaps/queue-fills/1-backlog-2-syncookies-1-server.pcap";

function ev(
  t: number,
  dir: "in" | "out",
  kind: PacketEvent["kind"],
  options: { len?: number; retransmit?: boolean } = {},
): PacketEvent {
  return {
    t,
    dir,
    kind,
    seq: 1,
    ack: 0,
    len: options.len ?? 0,
    retransmit: options.retransmit ?? false,
  };
}

function handshake(t: number): PacketEvent[] {
  return [ev(t, "in", "SYN"), ev(t + 0.1, "out", "SYN-ACK"), ev(t + 0.2, "in", "ACK")];
}

function conn(client: string, events: PacketEvent[]): ConnectionTimeline {
  return { client, server: "10.213.1.1:8080", events };
}

/** How many segments the long connection has beyond the table's limit. */
const EXTRA = 3;

/**
 * Six connections in capture order: plain, retransmitted SYN-ACK, plain (group
 * "late"), RST, long with its only retransmission past the table's limit
 * (group "late"), plain.
 */
function sixConnections(): ConnectionTimeline[] {
  const long = [...handshake(30)];
  while (long.length < PACKET_TABLE_LIMITS.packets + EXTRA - 1) {
    long.push(ev(31 + long.length, "in", "DATA", { len: 100 }));
  }
  long.push(ev(90, "in", "DATA", { len: 100, retransmit: true }));
  return [
    conn("10.213.1.10:40000", handshake(5)),
    conn("10.213.1.10:40001", [
      ...handshake(6),
      ev(206, "out", "SYN-ACK", { retransmit: true }),
    ]),
    conn("10.213.1.11:40002", handshake(7)),
    conn("10.213.1.10:40003", [ev(8, "in", "SYN"), ev(8.1, "out", "RST")]),
    conn("10.213.1.11:40004", long),
    conn("10.213.1.10:40005", handshake(9)),
  ];
}

function samples(n: number): Sample[] {
  return Array.from({ length: n }, (_, i) => ({
    t: i * 25,
    values: {
      "server.SYN_RECV": Math.min(i, 3),
      "server.ESTABLISHED": Math.min(i, 2),
      "server.recvQ": Math.min(i, 2),
      "server.sendQ": 2,
      "client.SYN_SENT": i < 10 ? 2 : 0,
      "client.ESTABLISHED": Math.min(i, 5),
      "clients.c.connected": Math.min(i, 5),
    },
  }));
}

const PHASES = { build: 100, server: 50, clients: 50, observe: 1000, collect: 10, teardown: 40 };

function passedRun(): RunResult {
  return {
    params: { backlog: 2, syncookies: 1 },
    mode: "fast",
    server: { host: "server", port: 8080, backlog: 1 },
    sysctls: {
      server: {
        "net.core.somaxconn": "4096",
        "net.ipv4.tcp_syncookies": "1",
        "net.ipv4.tcp_max_syn_backlog": "128",
      },
      client: { "net.ipv4.tcp_syncookies": "1" },
    },
    addresses: {
      server: "10.213.1.1",
      client: "10.213.1.2",
      "clients.c": "10.213.1.10",
      "clients.late": "10.213.1.11",
    },
    passed: true,
    durationMs: 1250,
    phases: PHASES,
    observed: { "server.SYN_RECV": { final: 3, peak: 3 } },
    checks: [
      {
        name: "syn queue",
        metric: "server.SYN_RECV",
        over: "settled",
        expected: PIPE_EXPECTED,
        observed: 3,
        passed: true,
        atMs: 150.4,
      },
      {
        name: "one retransmission",
        metric: "packets.server.server.SYN-ACK",
        over: "packets",
        expected: ">= 1",
        observed: 1,
        passed: true,
        atMs: null,
        detail: "1 of 6 connections",
      },
    ],
    samples: samples(20),
    connections: [],
    timeline: [
      { name: "release", action: 'remove rule "hold"', atMs: 300.4 },
      { name: "make room", action: "accept 3", atMs: 700, result: "3 accepted" },
    ],
    rules: {},
    packets: {
      server: sixConnections(),
      client: [conn("10.213.1.10:40000", handshake(5))],
    },
    originEpochMs: 1_700_000_000_000,
    pcaps: { server: PCAP },
  };
}

function failedRun(): RunResult {
  return {
    params: { backlog: 8, syncookies: 0 },
    mode: "fast",
    server: { host: "server", port: 8080, backlog: 1 },
    sysctls: {
      server: {
        "net.core.somaxconn": "4096",
        "net.ipv4.tcp_syncookies": "0",
        "net.ipv4.tcp_max_syn_backlog": "128",
      },
      client: { "net.ipv4.tcp_syncookies": "1" },
    },
    addresses: { server: "fd00::1", client: "fd00::2", "clients.v6": "fd00::10" },
    passed: false,
    error: ERROR,
    durationMs: 300,
    phases: { ...PHASES, observe: 0, collect: 0 },
    observed: {},
    checks: [{
      name: "syn queue",
      metric: "server.SYN_RECV",
      over: "settled",
      expected: "= 8 for 150 ms",
      observed: null,
      passed: false,
      atMs: null,
    }],
    samples: [],
    connections: [],
    timeline: [],
    rules: {},
    packets: { server: [conn("[fd00::10]:40000", [ev(1, "in", "SYN")])] },
  };
}

function syntheticReport(): LabReport {
  return {
    version: 1,
    kernel: "6.8.0-45-generic",
    machine: {
      hostname: "lab-host",
      arch: "x86_64",
      cpu: "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz",
      cores: 8,
      memoryMiB: 16384,
      os: "Ubuntu 24.04.1 LTS",
      deno: "2.9.6",
    },
    command: COMMAND,
    startedAt: "2025-01-02T03:04:05.678Z",
    durationMs: 4321,
    passed: false,
    experiments: [
      {
        id: "queue-fills",
        title: "The SYN queue fills | then drops",
        hypothesis: "The SYN queue holds backlog entries.",
        file: "experiments/queue_fills.ts",
        passed: false,
        mode: "fast",
        durationMs: 1550,
        runs: [passedRun(), failedRun()],
        claims: {
          "A2.1": { verdict: "reproduced", evidence: "3 SYN_RECV with backlog 2." },
          "A2.2": { error: 'Unknown check "nope"' },
        },
      },
      {
        id: "old-kernels",
        title: "Claims about kernels the lab cannot run",
        hypothesis: "These claims concern systems the lab cannot run.",
        passed: true,
        mode: "default",
        durationMs: 0,
        runs: [],
        claims: {
          "A1.1": { verdict: "historical", evidence: "Linux before 2.2 kept one queue." },
        },
      },
    ],
    ledger: [
      {
        claim: "A1.1",
        article: "A1",
        statement: "Old kernels kept one queue.",
        verdict: "historical",
        evidence: "Linux before 2.2 kept one queue.",
        experiments: ["old-kernels"],
      },
      {
        claim: "A2.1",
        article: "A2",
        statement: "The SYN queue holds backlog entries.",
        verdict: "reproduced",
        evidence: "3 SYN_RECV with backlog 2 | fast timers.",
        experiments: ["queue-fills"],
      },
      {
        claim: "A2.2",
        article: "A2",
        statement: "A rule that errors.",
        verdict: "undecided",
        evidence: "The rule failed.",
        experiments: ["queue-fills"],
      },
      {
        claim: "A3.1",
        article: "A3",
        statement: "Nobody decides this.",
        verdict: "undecided",
        evidence: "No experiment of this run decides it.",
        experiments: [],
      },
      {
        claim: "A3.2",
        article: "A3",
        statement: "Nor this.",
        verdict: "undecided",
        evidence: "No experiment of this run decides it.",
        experiments: [],
      },
    ],
  };
}

// ---------------------------------------------------------------------------
// Reading the Markdown back

/** The text of `<a id>`s in the document, failing on a duplicate. */
function anchors(md: string): Set<string> {
  const ids = [...md.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]!);
  const set = new Set(ids);
  assert.strictEqual(set.size, ids.length, `duplicate anchors: ${ids}`);
  return set;
}

/** Every link target `](target)` of the document, images included. */
function links(md: string): string[] {
  return [...md.matchAll(/\]\(([^)\s]*)\)/g)].map((m) => m[1]!);
}

/** Splits a table row on the pipes not escaped by an odd number of backslashes. */
function splitRow(line: string): string[] {
  assert.ok(line.startsWith("|") && line.endsWith("|"), `a table row: ${line}`);
  const cells: string[] = [];
  let current = "";
  let backslashes = 0;
  for (const ch of line.slice(1)) {
    if (ch === "|" && backslashes % 2 === 0) {
      cells.push(current.trim());
      current = "";
    } else {
      current += ch;
    }
    backslashes = ch === "\\" ? backslashes + 1 : 0;
  }
  assert.strictEqual(current, "", `row ends with a pipe: ${line}`);
  return cells;
}

/** The cell's text as GFM shows it outside code: `\|` → `|`, `\\` → `\`. */
function unescapeCell(text: string): string {
  return text.replace(/\\([\\|])/g, "$1");
}

interface Table {
  head: string[];
  rows: string[][];
}

/** Every pipe table of the document, checking each is well formed. */
function tables(md: string): Table[] {
  const lines = md.split("\n");
  const found: Table[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith("|")) continue;
    const block: string[] = [];
    while (i < lines.length && lines[i]!.startsWith("|")) block.push(lines[i++]!);
    assert.ok(block.length >= 2, `a table has a header and a delimiter row: ${block}`);
    const head = splitRow(block[0]!);
    const delimiter = splitRow(block[1]!);
    assert.ok(delimiter.every((c) => /^:?-+:?$/.test(c)), `delimiter row: ${block[1]}`);
    assert.strictEqual(delimiter.length, head.length, `delimiter row of: ${block[0]}`);
    const rows = block.slice(2).map(splitRow);
    for (const [k, row] of rows.entries()) {
      assert.strictEqual(row.length, head.length, `row ${block[k + 2]} of table ${block[0]}`);
    }
    assert.strictEqual(lines[i] ?? "", "", "a blank line follows the table");
    found.push({ head, rows });
  }
  return found;
}

/** The text from `<a id="id">` to the next anchor of a run or an experiment. */
function section(md: string, id: string): string {
  const start = md.indexOf(`<a id="${id}"></a>`);
  assert.ok(start >= 0, `section ${id}`);
  const rest = md.slice(start + 1);
  const end = rest.search(/<a id="(run|exp)-/);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The one table whose header is `head` within `text`. */
function tableWith(text: string, head: string[]): Table {
  const found = tables(text).filter((t) => t.head.join("|") === head.join("|"));
  assert.strictEqual(found.length, 1, `one table headed ${head}`);
  return found[0]!;
}

const PACKET_HEAD = ["connection", "t (ms)", "direction", "segment", ""];
const CHECK_HEAD = ["check", "metric", "expected", "observed", ""];

/** The packet table's rows grouped by connection (its first cell names it). */
function packetRows(table: Table): Map<string, string[][]> {
  const byConn = new Map<string, string[][]>();
  let current: string[][] = [];
  for (const row of table.rows) {
    if (row[0]) byConn.set(row[0], current = []);
    current.push(row);
  }
  return byConn;
}

// ---------------------------------------------------------------------------
// reportMarkdown

Deno.test("reportMarkdown() links only to anchors the document has", () => {
  const md = reportMarkdown(syntheticReport());
  const ids = anchors(md);
  const internal = links(md).filter((l) => l.startsWith("#"));
  assert.ok(internal.length >= 8, `links found: ${internal}`);
  for (const l of internal) assert.ok(ids.has(l.slice(1)), `link ${l} has an anchor`);
  // Before writeReport() no run has charts: the only file link is the pcap.
  assert.deepStrictEqual(links(md).filter((l) => !l.startsWith("#")), [PCAP]);
});

Deno.test("reportMarkdown() writes well-formed tables and escapes pipes in cells", () => {
  const md = reportMarkdown(syntheticReport());
  const all = tables(md);
  // Header, ledger, sysctls; run 1: checks, server and client packets; run 2: checks, packets.
  assert.strictEqual(all.length, 8);
  const checks = tableWith(section(md, "run-queue-fills-1"), CHECK_HEAD);
  assert.strictEqual(unescapeCell(checks.rows[0]![2]!), PIPE_EXPECTED);
  assert.ok(md.includes(cell(PIPE_EXPECTED)), "the expected text's pipe is escaped");
  const ledger = tableWith(md, ["claim", "statement", "verdict", "evidence", "decided by"]);
  assert.strictEqual(
    unescapeCell(ledger.rows.find((r) => r[0] === "A2.1")![3]!),
    "3 SYN_RECV with backlog 2 | fast timers.",
  );
});

Deno.test("reportMarkdown() heads the report with kernel, machine, system, date and command", () => {
  const report = syntheticReport();
  const md = reportMarkdown(report);
  assert.ok(md.startsWith("# backlog-lab on Linux 6.8.0-45-generic\n"), md.slice(0, 80));
  const head = tables(md)[0]!;
  const rows = new Map(head.rows.map((r) => [r[0]!, r[1]!]));
  assert.strictEqual(rows.get("kernel"), "Linux 6.8.0-45-generic (x86_64)");
  assert.strictEqual(
    rows.get("machine"),
    "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz, 8 cores, 16.0 GiB memory",
  );
  assert.match(rows.get("system")!, /^Ubuntu 24\.04\.1 LTS, Deno 2\.9\.6, host lab-host$/);
  assert.strictEqual(rows.get("date"), "2025-01-02T03:04:05.678Z");
  // In a code span GFM removes only the backslash of `\|`.
  const command = rows.get("command")!.replaceAll("\\|", "|");
  assert.strictEqual(command, `\`${report.command}\``);
  assert.strictEqual(
    report.command,
    "deno task lab --only 'queue-fills|old-kernels' --report 'out dir'",
  );
  assert.match(rows.get("result")!, /^1 of 2 experiments passed in 4\.32 s; claims: /);
});

Deno.test("reportMarkdown() shows a command with a quoted apostrophe exactly", () => {
  const report = syntheticReport();
  report.command = shellCommand(["deno", "task", "lab", "--report", "bob's run"]);
  assert.strictEqual(report.command, `deno task lab --report 'bob'\\''s run'`);
  const rows = new Map(tables(reportMarkdown(report))[0]!.rows.map((r) => [r[0]!, r[1]!]));
  const shown = rows.get("command")!.replaceAll("\\|", "|");
  assert.strictEqual(shown, `\`${report.command}\``);
});

Deno.test("reportMarkdown() lists decided claims linked to their evidence, undecided on one line", () => {
  const md = reportMarkdown(syntheticReport());
  const ledger = tableWith(md, ["claim", "statement", "verdict", "evidence", "decided by"]);
  assert.deepStrictEqual(ledger.rows.map((r) => r[0]), ["A1.1", "A2.1", "A2.2"]);
  const row = (id: string) => ledger.rows.find((r) => r[0] === id)!;
  // Each claim's statement, so that a reader knows what A2.1 says.
  assert.deepStrictEqual(ledger.rows.map((r) => unescapeCell(r[1]!)), [
    "Old kernels kept one queue.",
    "The SYN queue holds backlog entries.",
    "A rule that errors.",
  ]);
  assert.strictEqual(row("A1.1")[2], `[historical](#${claimAnchor("old-kernels", "A1.1")})`);
  assert.strictEqual(row("A2.1")[2], `[reproduced](#${claimAnchor("queue-fills", "A2.1")})`);
  assert.strictEqual(row("A2.2")[2], `[undecided](#${claimAnchor("queue-fills", "A2.2")})`);
  assert.strictEqual(row("A2.1")[4], `[queue-fills](#${experimentAnchor("queue-fills")})`);
  // Each claim's evidence anchor is in the deciding experiment's section.
  const queue = section(md, experimentAnchor("queue-fills"));
  assert.match(
    queue,
    /- <a id="claim-A2-1-queue-fills"><\/a>A2\.1: \*\*reproduced\*\*: 3 SYN_RECV with backlog 2\./,
  );
  assert.match(
    queue,
    /- <a id="claim-A2-2-queue-fills"><\/a>A2\.2: rule error: Unknown check "nope"/,
  );
  assert.match(
    section(md, experimentAnchor("old-kernels")),
    /<a id="claim-A1-1-old-kernels"><\/a>A1\.1: \*\*historical\*\*/,
  );
  // Undecided claims: one line, and in no table.
  const lines = md.split("\n").filter((l) => l.includes("A3.1"));
  assert.deepStrictEqual(lines, ["Not decided by the experiments of this run: A3.1, A3.2."]);
  assert.ok(!md.includes("| A3.2"), "A3.2 is not in a table");
});

Deno.test("reportMarkdown() gives each run its params, differing sysctls, checks and error", () => {
  const md = reportMarkdown(syntheticReport());
  const first = section(md, "run-queue-fills-1");
  const second = section(md, "run-queue-fills-2");
  assert.match(first, /### queue-fills, run 1: backlog=2, syncookies=1\n/);
  assert.match(second, /### queue-fills, run 2: backlog=8, syncookies=0\n/);
  assert.match(first, /^Passed in 1\.25 s \(20 samples; /m);
  assert.match(second, /^\*\*Failed\*\* in 0\.30 s \(0 samples; /m);

  // The baseline is the most common value: tcp_syncookies=1 (3 of 4 namespaces).
  const sysctls = tableWith(md, ["sysctl", "value"]);
  assert.deepStrictEqual(sysctls.rows, [
    ["`net.core.somaxconn`", "4096"],
    ["`net.ipv4.tcp_max_syn_backlog`", "128"],
    ["`net.ipv4.tcp_syncookies`", "1"],
  ]);
  assert.match(first, /^Sysctls: as in \[Sysctls\]\(#sysctls\) \(namespaces: server, client\)\.$/m);
  const differing = /^Sysctls: (.*) \(namespaces: server, client\)\.$/m.exec(second)?.[1];
  assert.strictEqual(differing, "server: `net.ipv4.tcp_syncookies` = 0");

  const checks = tableWith(first, CHECK_HEAD);
  assert.deepStrictEqual(checks.rows.map((r) => r.map(unescapeCell)), [
    ["syn queue", "`server.SYN_RECV`", PIPE_EXPECTED, "3 at 150 ms", "ok"],
    [
      "one retransmission",
      "`packets.server.server.SYN-ACK`",
      ">= 1",
      "1: 1 of 6 connections",
      "ok",
    ],
  ]);
  assert.deepStrictEqual(tableWith(second, CHECK_HEAD).rows, [
    ["syn queue", "`server.SYN_RECV`", "= 8 for 150 ms", "–", "**FAIL**"],
  ]);

  assert.ok(
    second.includes(`**Error:** ${cell(ERROR)}\n`),
    "the error text, on one line with its pipe escaped",
  );
  assert.ok(!first.includes("**Error:**"));
  assert.match(first, /^Timeline: 300 ms release; 700 ms make room \(3 accepted\)\.$/m);
  assert.ok(!second.includes("Timeline:"));
});

Deno.test("reportMarkdown() shows a chart only for a run with charts", () => {
  const report = syntheticReport();
  assert.ok(!reportMarkdown(report).includes("!["), "no run has charts yet");
  report.experiments[0]!.runs[0]!.charts = { svg: "charts/x/1.svg", png: "charts/x/1.png" };
  const md = reportMarkdown(report);
  const first = section(md, "run-queue-fills-1");
  assert.match(
    first,
    /^!\[queue-fills, backlog=2, syncookies=1: sockets and queues over time\]\(charts\/x\/1\.svg\)$/m,
  );
  assert.match(first, /^Chart as \[SVG\]\(charts\/x\/1\.svg\) or \[PNG\]\(charts\/x\/1\.png\)\.$/m);
  assert.ok(!section(md, "run-queue-fills-2").includes("!["));
  assert.strictEqual(md.split("![").length - 1, 1);
});

Deno.test("reportMarkdown() shows the notable connections first, within the table's limits", () => {
  const md = reportMarkdown(syntheticReport());
  const first = section(md, "run-queue-fills-1");
  const conns = sixConnections();
  const total = conns.reduce((n, c) => n + c.events.length, 0);
  assert.ok(
    first.includes(
      `Packets captured in \`server\`: 6 connections, ${total} segments ([pcap](${PCAP}),`,
    ),
    "the server's capture has its pcap link",
  );
  assert.ok(
    first.includes(`The ${PACKET_TABLE_LIMITS.connections} shown are those with a RST`),
    "it says which connections are shown",
  );
  // The client host has no pcap: no link.
  assert.match(first, /^Packets captured in `client`: 1 connection, 3 segments\.$/m);

  const [serverTable, clientTable] = tables(first).filter((t) =>
    t.head.join("|") === PACKET_HEAD.join("|")
  );
  const byConn = packetRows(serverTable!);
  // Notable (RST or retransmission) first in capture order, then the first plain one.
  assert.deepStrictEqual([...byConn.keys()], [
    "10.213.1.10:40001 (c)",
    "10.213.1.10:40003 (c)",
    "10.213.1.11:40004 (late)",
    "10.213.1.10:40000 (c)",
  ]);
  assert.strictEqual(byConn.size, PACKET_TABLE_LIMITS.connections);

  const long = byConn.get("10.213.1.11:40004 (late)")!;
  assert.strictEqual(long.length, PACKET_TABLE_LIMITS.packets + 1);
  assert.deepStrictEqual(long.at(-1), ["", "…", "", `${EXTRA} more`, ""]);
  assert.ok(!long.some((r) => r[4] === "retransmission"), "its retransmission is past the limit");
  for (const [name, rows] of byConn) {
    if (name.includes("40004")) continue;
    assert.ok(rows.length <= PACKET_TABLE_LIMITS.packets, name);
    assert.ok(!rows.some((r) => r[1] === "…"), `${name} has no "more" row`);
  }

  assert.deepStrictEqual(byConn.get("10.213.1.10:40001 (c)"), [
    ["10.213.1.10:40001 (c)", "6.0", "client → server", "SYN", ""],
    ["", "6.1", "server → client", "SYN-ACK", ""],
    ["", "6.2", "client → server", "ACK", ""],
    ["", "206.0", "server → client", "SYN-ACK", "retransmission"],
  ]);
  assert.deepStrictEqual(long[3], ["", "34.0", "client → server", "DATA (100 B)", ""]);
  assert.deepStrictEqual(byConn.get("10.213.1.10:40003 (c)")![1], [
    "",
    "8.1",
    "server → client",
    "RST",
    "",
  ]);
  assert.deepStrictEqual([...packetRows(clientTable!).keys()], ["10.213.1.10:40000 (c)"]);
});

Deno.test("reportMarkdown() names the group of an IPv6 client", () => {
  const md = reportMarkdown(syntheticReport());
  const second = section(md, "run-queue-fills-2");
  assert.match(second, /^Packets captured in `server`: 1 connection, 1 segments\.$/m);
  assert.ok(!second.includes("shown are those"), "all connections shown");
  assert.deepStrictEqual(tableWith(second, PACKET_HEAD).rows, [
    ["[fd00::10]:40000 (v6)", "1.0", "client → server", "SYN", ""],
  ]);
});

Deno.test("reportMarkdown() lists the experiments with their status", () => {
  const md = reportMarkdown(syntheticReport());
  assert.ok(
    md.includes("- [queue-fills](#exp-queue-fills): The SYN queue fills \\| then drops (FAILED)\n"),
  );
  assert.ok(
    md.includes("- [old-kernels](#exp-old-kernels): Claims about kernels the lab cannot run\n"),
  );
  const queue = section(md, experimentAnchor("queue-fills"));
  assert.match(
    queue,
    /^`experiments\/queue_fills\.ts`, 2 runs, shortened timers, 1\.55 s: \*\*FAILED\*\*\.$/m,
  );
  const old = section(md, experimentAnchor("old-kernels"));
  assert.match(old, /^## old-kernels: Claims about kernels the lab cannot run$/m);
  assert.match(old, /^0 runs, 0\.00 s: \*\*passed\*\*\.$/m);
  assert.ok(!old.includes("###"), "no run sections");
});

// ---------------------------------------------------------------------------
// writeReport

Deno.test("writeReport() writes pcaps, charts, results.json and report.md whose links resolve", async () => {
  const dir = await Deno.makeTempDir({ prefix: "report_test_" });
  const capture = await Deno.makeTempFile({ prefix: "report_test_", suffix: ".pcap" });
  try {
    // A kept capture (mode 0600, as the lab keeps it) is copied into the report, readable.
    const bytes = new Uint8Array([0xd4, 0xc3, 0xb2, 0xa1]);
    await Deno.writeFile(capture, bytes, { mode: 0o600 });
    const report = syntheticReport();
    const before = structuredClone(report);
    delete report.experiments[0]!.runs[0]!.pcaps;
    const calls: [number, number][] = [];
    const files = await writeReport(dir, {
      report,
      captures: [{ experiment: "queue-fills", index: 0, host: "server", file: capture }],
    }, {
      onChart: (done, of) => calls.push([done, of]),
    });
    assert.deepStrictEqual(await Deno.readFile(join(dir, PCAP)), bytes);
    assert.strictEqual((await Deno.stat(join(dir, PCAP))).mode! & 0o777, 0o644);

    const stem = "charts/queue-fills/1-backlog-2-syncookies-1";
    assert.deepStrictEqual(calls, [[0, 1]], "one call per chart: only one run has samples");
    assert.deepStrictEqual(files, {
      markdown: "report.md",
      json: "results.json",
      charts: [`${stem}.svg`, `${stem}.png`],
      pcaps: [PCAP],
    });
    // Only the run with samples got charts.
    before.experiments[0]!.runs[0]!.charts = { svg: `${stem}.svg`, png: `${stem}.png` };
    assert.deepStrictEqual(report, before);
    assert.strictEqual(report.experiments[0]!.runs[1]!.charts, undefined);

    const json = JSON.parse(await Deno.readTextFile(join(dir, "results.json")));
    assert.deepStrictEqual(json, report);

    const svg = await Deno.readTextFile(join(dir, `${stem}.svg`));
    assert.match(svg, /^<svg/);
    const png = await Deno.readFile(join(dir, `${stem}.png`));
    assert.deepStrictEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    const chartFiles = [];
    for await (const entry of Deno.readDir(join(dir, "charts/queue-fills"))) {
      chartFiles.push(entry.name);
    }
    assert.deepStrictEqual(chartFiles.sort(), [
      "1-backlog-2-syncookies-1.png",
      "1-backlog-2-syncookies-1.svg",
    ]);
    const top = [];
    for await (const entry of Deno.readDir(join(dir, "charts"))) top.push(entry.name);
    assert.deepStrictEqual(top, ["queue-fills"], "no charts for the experiment without runs");

    const md = await Deno.readTextFile(join(dir, "report.md"));
    assert.strictEqual(md, reportMarkdown(report));
    const ids = anchors(md);
    const targets = links(md);
    for (const l of targets) {
      if (l.startsWith("#")) {
        assert.ok(ids.has(l.slice(1)), `link ${l} has an anchor`);
      } else {
        assert.ok(!l.startsWith("/") && !l.includes(".."), `relative link ${l}`);
        const info = await Deno.stat(join(dir, l));
        assert.ok(info.isFile, `${l} is a file`);
      }
    }
    assert.deepStrictEqual(
      [...new Set(targets.filter((l) => !l.startsWith("#")))].sort(),
      [`${stem}.png`, `${stem}.svg`, PCAP],
    );
    tables(md);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(capture);
  }
});

// ---------------------------------------------------------------------------
// Helpers of the module

Deno.test("notableConnections() puts connections with a RST or retransmission first", () => {
  const plain = (n: number) => conn(`10.0.0.1:${n}`, handshake(n));
  const rst = (n: number) => conn(`10.0.0.1:${n}`, [ev(n, "in", "SYN"), ev(n, "out", "RST")]);
  const retrans = (n: number) =>
    conn(`10.0.0.1:${n}`, [ev(n, "in", "SYN"), ev(n + 1, "in", "SYN", { retransmit: true })]);
  const ports = (list: ConnectionTimeline[]) => list.map((c) => Number(c.client.split(":")[1]));
  const cases: [string, ConnectionTimeline[], number[]][] = [
    ["none", [], []],
    ["all plain keep capture order", [plain(1), plain(2), plain(3)], [1, 2, 3]],
    ["notable first, each kind in capture order", [
      plain(1),
      retrans(2),
      plain(3),
      rst(4),
      plain(5),
      retrans(6),
    ], [2, 4, 6, 1, 3, 5]],
    ["all notable", [rst(1), retrans(2)], [1, 2]],
  ];
  for (const [name, input, expected] of cases) {
    const copy = structuredClone(input);
    assert.deepStrictEqual(ports(notableConnections(input)), expected, name);
    assert.deepStrictEqual(input, copy, `${name}: input unchanged`);
  }
  assert.deepStrictEqual(ports(notableConnections(sixConnections())), [
    40001,
    40003,
    40004,
    40000,
    40002,
    40005,
  ]);
});

Deno.test("experimentAnchor() and claimAnchor() make ids without dots", () => {
  assert.strictEqual(experimentAnchor("queue-fills"), "exp-queue-fills");
  assert.strictEqual(claimAnchor("queue-fills", "A2.1"), "claim-A2-1-queue-fills");
  assert.strictEqual(claimAnchor("x", "B10.2.3"), "claim-B10-2-3-x");
});

Deno.test("reportMarkdown() gives a run's shaped links and what its clients felt", () => {
  const report = syntheticReport();
  const run = report.experiments[0]!.runs[0]!;
  run.links = {
    client: {
      toServer: {
        shape: { delayMs: 25, jitterMs: 5, lossPercent: 1 },
        mechanism: "nfqueue",
        interface: "client:veth0",
        stats: {
          offered: 4000,
          lost: 41,
          delayed: 3959,
          held: 0,
          queueDropped: 0,
          rateDropped: 0,
          lateness: {
            count: 3959,
            medianMs: 0.03,
            p99Ms: 0.2,
            meanMs: 0.04,
            maxMs: 2.5,
            over1ms: 4,
          },
        },
      },
      toClient: {
        shape: { delayMs: 25, jitterMs: 0, lossPercent: 0, rateKbit: 2000, rateQueueMs: 100 },
        mechanism: "nfqueue",
        interface: "server:veth1",
        stats: null,
        problem: "the delayer of link server → client (server:veth1) stopped | exited",
      },
    },
  };
  run.experience = {
    users: {
      connections: 400,
      outcomes: { connected: 380, reset: 12, refused: 0, timedOut: 8, failed: 0, pending: 0 },
      connectMs: { count: 392, p50: 61.4, p90: 1050, p99: 2103.2, max: 3120 },
      firstByteMs: null,
      overTime: { binMs: 50, bins: [] },
    },
    idle: {
      connections: 0,
      outcomes: { connected: 0, reset: 0, refused: 0, timedOut: 0, failed: 0, pending: 0 },
      connectMs: null,
      firstByteMs: null,
      overTime: { binMs: 50, bins: [] },
    },
  };
  const first = section(reportMarkdown(report), "run-queue-fills-1");
  const links = tableWith(first, [
    "link",
    "shape",
    "delay by",
    "packets offered / lost / delayed",
    "queue drops",
    "lateness p50 / p99 / max",
    "",
  ]);
  assert.deepStrictEqual(links.rows.map((r) => r.map(unescapeCell)), [
    [
      "client → server",
      "25 ms ± 5 ms, 1 % loss",
      "nfqueue",
      "4000 / 41 / 3959",
      "0",
      "0.03 / 0.2 / 2.5 ms",
      "ok",
    ],
    [
      "server → client",
      "25 ms, 2000 kbit/s",
      "nfqueue",
      "–",
      "–",
      "–",
      "**the delayer of link server → client (server:veth1) stopped | exited**",
    ],
  ]);
  const felt = tableWith(first, [
    "clients",
    "connected / reset / refused / timed out / other / pending",
    "connect() p50 / p90 / p99 / max",
    "first reply byte p50 / p90 / p99 / max",
  ]);
  assert.deepStrictEqual(felt.rows, [[
    "users (400)",
    "380 / 12 / 0 / 8 / 0 / 0",
    "61 ms / 1.05 s / 2.10 s / 3.12 s",
    "–",
  ]]);
  // A run without links or clients' records has neither table.
  const second = section(reportMarkdown(report), "run-queue-fills-2");
  assert.ok(!second.includes("| link |") && !second.includes("| clients |"));
});

// ---------------------------------------------------------------------------
// Exploratory experiments, claims of your own, what-ifs

const OWN_SOURCE = {
  title: "SYN packet handling in the wild",
  url: "https://blog.cloudflare.com/syn-packet-handling-in-the-wild/",
  file: "experiments/examples/cloudflare_claims.md:10",
};

/** The synthetic report plus an exploratory experiment under a what-if and two claims of your own. */
function reportWithOwnClaims(): LabReport {
  const report = syntheticReport();
  const run = passedRun();
  run.params = { backlog: 0 };
  run.observed = {
    "server.recvQ": { final: 1, peak: 1 },
    "server.SYN_RECV": { final: 0, peak: 2 },
  };
  report.experiments.push({
    id: "my-question",
    title: "What listen(fd, 0) holds",
    hypothesis: "One connection.",
    file: "experiments/my_question.ts",
    passed: true,
    mode: "default",
    durationMs: 700,
    runs: [run],
    claims: {},
    metrics: ["server.recvQ", "server.SYN_RECV", "client.SYN_SENT"],
    overrides: { backlog: [0] },
  });
  report.experiments[0]!.claims["cf:one"] = { verdict: "reproduced", evidence: "2 SYN-ACKs" };
  report.ledger.push(
    {
      claim: "cf:one",
      article: "cf",
      statement: "The SYN Queue retries | on timeout.",
      source: OWN_SOURCE,
      verdict: "reproduced",
      evidence: "2 SYN-ACKs",
      experiments: ["queue-fills"],
    },
    {
      claim: "cf:two",
      article: "cf",
      statement: "Nobody decides this one.",
      source: OWN_SOURCE,
      verdict: "undecided",
      evidence: "no experiment of this run decides it",
      experiments: [],
    },
  );
  return report;
}

Deno.test("reportMarkdown() lists claims of your own apart, each with its source linked and its verdict linked to the evidence", () => {
  const md = reportWithOwnClaims();
  const text = reportMarkdown(md);
  const ids = anchors(text);
  for (const l of links(text).filter((l) => l.startsWith("#"))) assert.ok(ids.has(l.slice(1)), l);
  assert.ok(text.includes("- [Claims of your own](#own-claims)"));
  const own = tableWith(section(text, "own-claims"), [
    "claim",
    "statement",
    "source",
    "verdict",
    "evidence",
    "decided by",
  ]);
  assert.deepStrictEqual(own.rows.map((r) => r[0]), ["cf:one", "cf:two"]);
  assert.strictEqual(unescapeCell(own.rows[0]![1]!), "The SYN Queue retries | on timeout.");
  assert.strictEqual(
    own.rows[0]![2],
    "[SYN packet handling in the wild](https://blog.cloudflare.com/syn-packet-handling-in-the-wild/) (`experiments/examples/cloudflare_claims.md:10`)",
  );
  assert.strictEqual(own.rows[0]![3], `[reproduced](#${claimAnchor("queue-fills", "cf:one")})`);
  assert.ok(ids.has(claimAnchor("queue-fills", "cf:one")), "the evidence has its anchor");
  assert.deepStrictEqual(own.rows[1]!.slice(3), [
    "undecided",
    "no experiment of this run decides it",
    "–",
  ]);
  // The catalogue's ledger does not list them.
  const ledger = tableWith(text, ["claim", "statement", "verdict", "evidence", "decided by"]);
  assert.ok(ledger.rows.every((r) => !r[0]!.includes(":")));
  assert.match(text, /claims of your own: 1 reproduced, 1 undecided/);
});

Deno.test("reportMarkdown() shows an exploratory experiment's observed values per run, and a what-if", () => {
  const text = reportMarkdown(reportWithOwnClaims());
  assert.match(
    text,
    /\| what-if \| `--set backlog=0` \(my-question\): these parameters took the values given/,
  );
  const mine = section(text, experimentAnchor("my-question"));
  assert.match(
    mine,
    /\*\*What-if\.\*\* Run with `--set backlog=0`: these parameters took the values given instead of the experiment's own matrix\./,
  );
  const observed = tableWith(mine, ["run", "metric", "final", "peak"]);
  assert.deepStrictEqual(observed.rows, [
    ["backlog=0", "`server.recvQ`", "1", "1"],
    ["", "`server.SYN_RECV`", "0", "2"],
    ["", "`client.SYN_SENT`", "–", "–"],
  ]);
  // An experiment with claims shows no such table.
  assert.ok(!section(text, experimentAnchor("queue-fills")).includes("**Observed**"));
});

Deno.test("observedTable() and ownClaimsTable() print what a terminal shows, sources in full", () => {
  const report = reportWithOwnClaims();
  const table = observedTable(report.experiments.at(-1)!, 80);
  assert.match(table, /│ backlog=0 +│/);
  assert.match(table, /│ server\.SYN_RECV +│ 0 +│ 2 +│/);
  assert.match(table, /│ client\.SYN_SENT +│ – +│ – +│/);
  assert.strictEqual(observedTable({ ...report.experiments[0]!, metrics: [] }), "");
  const own = ownClaimsTable(report.ledger.filter((l) => l.source), 60);
  assert.match(own, /\(source: SYN packet\s/);
  // A table cell may cut a long address; the list below it never does.
  assert.ok(
    own.endsWith(
      "Sources:\n  SYN packet handling in the wild: https://blog.cloudflare.com/syn-packet-handling-in-the-wild/ (claims file experiments/examples/cloudflare_claims.md)",
    ),
    own,
  );
});

/** Every entry of `dir`, recursively, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory) await walk(join(d, e.name), r);
    }
  };
  await walk(dir, "");
  return out.sort();
}

Deno.test("writeReport() replaces an earlier report only once the new one is complete, keeping the user's files", async () => {
  const parent = await Deno.makeTempDir({ prefix: "report_test_" });
  try {
    const dir = join(parent, "report");
    await Deno.mkdir(join(dir, "charts", "gone"), { recursive: true });
    await Deno.writeTextFile(join(dir, "charts", "gone", "1.svg"), "<svg/>");
    await Deno.writeTextFile(
      join(dir, "results.json"),
      '{"version":1,"experiments":[],"ledger":[]}',
    );
    await Deno.writeTextFile(join(dir, "notes.txt"), "mine");
    const temps: string[] = [];
    await writeReport(dir, { report: syntheticReport() }, {
      registerTemp: (p) => Promise.resolve(void temps.push(p)),
    });
    const entries = await tree(dir);
    assert.ok(!entries.includes("charts/gone"), "the earlier report's files are gone");
    assert.ok(entries.includes("notes.txt"));
    assert.deepStrictEqual(
      JSON.parse(await Deno.readTextFile(join(dir, "results.json"))).experiments[0].id,
      "queue-fills",
    );
    assert.deepStrictEqual(
      await tree(parent).then((t) => t.filter((e) => !e.startsWith("report"))),
      [],
    );
    assert.strictEqual(temps.length, 2, "the partial report and the earlier one set aside");
    for (const t of temps) {
      assert.match(t, new RegExp(`^${parent}/\\.report\\.(partial|old)-[0-9a-f]{8}$`));
    }
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("writeReport() fails in one line naming the file when a name is too long, leaving the earlier report", async () => {
  const parent = await Deno.makeTempDir({ prefix: "report_test_" });
  try {
    const dir = join(parent, "report");
    await Deno.mkdir(dir);
    const earlier = '{"version":1,"experiments":[],"ledger":[]}';
    await Deno.writeTextFile(join(dir, "results.json"), earlier);
    const report = syntheticReport();
    report.experiments[0]!.id = "x".repeat(300);
    await assert.rejects(writeReport(dir, { report }), (err: Error) => {
      assert.ok(err instanceof ReportWriteError, String(err));
      assert.strictEqual(err.message.split("\n").length, 1);
      assert.match(
        err.message,
        new RegExp(
          `^Cannot write the report to "${dir}": File name too long \\(os error 36\\) \\(writing "charts/x{300}/1-backlog-2-syncookies-1\\.svg"\\); nothing was written there, and an earlier report in it is unchanged$`,
        ),
      );
      return true;
    });
    assert.deepStrictEqual(await tree(parent), ["report", "report/results.json"]);
    assert.strictEqual(await Deno.readTextFile(join(dir, "results.json")), earlier);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("ledgerTable() shows each claim's statement before its evidence", () => {
  const text = ledgerTable(syntheticReport().ledger.slice(0, 2), 200);
  assert.match(text, /│ A1\.1 +│ historical +│ "Old kernels kept one queue\." +│/);
  assert.match(text, /│ +│ +│ → /);
  assert.match(text, /statement → evidence \(decided by\)/);
});

Deno.test("checksTable() names the machine's input queue drops as the likely cause of a failed run", () => {
  const e = syntheticReport().experiments[0]!;
  const failed = e.runs.find((r) => !r.passed) ?? e.runs[0]!;
  failed.passed = false;
  failed.inputQueueDrops = 1653;
  const text = checksTable(e, false, 300);
  assert.match(
    text,
    /\(machine\) +│ input queue drops +│ 0 +│ 1653 packets dropped by the machine's input queues during the run/,
  );
});
