import { deepStrictEqual as deepEqual, ok, strictEqual as equal, throws } from "node:assert/strict";
import { run } from "../../lab/base/command.ts";
import { Link } from "../../lab/topology/link.ts";
import { Netns, newRunPrefix } from "../../lab/topology/netns.ts";
import { type DumpQuery, readListenDiag, SockDiag } from "../../lab/observe/sock_diag.ts";
import { parseSs, type SocketRow, type TcpState } from "../../lab/observe/socket_table.ts";
import { type ServerProcess, startServer as startServerProgram } from "../_programs.ts";
import { describeErrno, lastErrno, libc, withNetns } from "../../lab/topology/setns.ts";
import { Wire } from "../../lab/topology/wire.ts";
import { rootTest, until } from "../_helpers.ts";

/** Each test has namespaces of its own, where nothing else listens: any port is free. */
const PORT = 8080;
/** A second listener, whose sockets a dump of PORT must leave out. */
const OTHER_PORT = 9090;
/** Deno's first start of a program compiles it. */
const READY_MS = 30_000;

// Client sockets are made in-process: non-blocking connect()s inside the
// client namespace, which the kernel completes (or not) on its own.
const sockets = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
}).symbols;
// libc stays loaded for the process's life: load it before the tests, or the
// resource sanitizer counts it as the first test's leak.
libc();

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const EINPROGRESS = 115;
const RLIMIT_NOFILE = 7;

function ipv6Bytes(address: string): number[] {
  const [head = "", tail = ""] = address.split("::");
  const h = head ? head.split(":") : [];
  const t = address.includes("::") ? (tail ? tail.split(":") : []) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

function sockaddr(family: 4 | 6, address: string, port: number): Uint8Array {
  const buf = new Uint8Array(family === 4 ? 16 : 28);
  const view = new DataView(buf.buffer);
  view.setUint16(0, family === 4 ? AF_INET : AF_INET6, true);
  view.setUint16(2, port, false);
  if (family === 4) buf.set(address.split(".").map(Number), 4);
  else buf.set(ipv6Bytes(address), 8);
  return buf;
}

/** Client sockets of this process; `Disposable` (closes them all). */
class Clients implements Disposable {
  readonly #fds: number[] = [];

  /**
   * Starts `count` non-blocking connections from `from` (any port) to
   * `to:port`, with sockets made inside namespace `ns`.
   */
  connect(
    ns: string,
    family: 4 | 6,
    endpoints: { from: string; to: string; port: number },
    count: number,
  ): void {
    const local = sockaddr(family, endpoints.from, 0);
    const remote = sockaddr(family, endpoints.to, endpoints.port);
    const problem = withNetns(ns, () => {
      for (let i = 0; i < count; i++) {
        const fd = sockets.socket(
          family === 4 ? AF_INET : AF_INET6,
          SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
          0,
        );
        if (fd < 0) return `socket(): ${describeErrno(lastErrno())}`;
        this.#fds.push(fd);
        if (sockets.bind(fd, local, local.length) < 0) {
          return `bind(${endpoints.from}): ${describeErrno(lastErrno())}`;
        }
        if (sockets.connect(fd, remote, remote.length) < 0) {
          const e = lastErrno();
          if (e.code !== EINPROGRESS) return `connect(): ${describeErrno(e)}`;
        }
      }
      return undefined;
    });
    if (problem !== undefined) {
      throw new Error(
        `Cannot connect ${endpoints.from} to ${endpoints.to} port ${endpoints.port} in "${ns}": ${problem}`,
      );
    }
  }

  [Symbol.dispose](): void {
    for (const fd of this.#fds.splice(0)) sockets.close(fd);
  }
}

/** Raises this process's RLIMIT_NOFILE (soft, and hard when needed: root) to at least `n`. */
function ensureFileLimit(n: number): void {
  const r = new BigUint64Array(2);
  if (sockets.getrlimit(RLIMIT_NOFILE, r) < 0) {
    throw new Error(`Cannot read RLIMIT_NOFILE: ${describeErrno(lastErrno())}`);
  }
  if (r[0]! >= BigInt(n)) return;
  const want = new BigUint64Array([BigInt(n), r[1]! > BigInt(n) ? r[1]! : BigInt(n)]);
  if (sockets.setrlimit(RLIMIT_NOFILE, want) < 0) {
    throw new Error(`Cannot raise RLIMIT_NOFILE to ${n}: ${describeErrno(lastErrno())}`);
  }
}

/** listen_server.ts in `ns` as the lab starts it, on `address:port`. */
function startServer(
  ns: Netns,
  family: 4 | 6,
  address: string,
  port: number,
  backlog: number,
): ServerProcess {
  return startServerProgram(ns, { family, address, port, backlog });
}

/** What `ss -tan` lists in `ns` for one family, only `port`'s sockets when given. */
async function ssRows(ns: Netns, family: 4 | 6, port?: number): Promise<SocketRow[]> {
  const filter = port === undefined
    ? []
    : ["(", "sport", "=", `:${port}`, "or", "dport", "=", `:${port}`, ")"];
  const out = await run(["ss", "-N", ns.name, "-Htan", `-${family}`, ...filter]);
  return parseSs(out.stdout);
}

/** A row as text, for comparing multisets of rows. */
function key(r: SocketRow): string {
  return `${r.state} ${r.localAddress}:${r.localPort} ${r.remoteAddress}:${r.remotePort} recvQ=${r.recvQ} sendQ=${r.sendQ}`;
}

function keys(rows: readonly SocketRow[]): string[] {
  return rows.map(key).sort();
}

function count(rows: readonly SocketRow[], state: TcpState): number {
  return rows.filter((r) => r.state === state).length;
}

/**
 * Waits until a dump and `ss` list the same sockets (neither is a snapshot,
 * and they run one after the other) and returns the dump.
 */
async function dumpLikeSs(
  diag: SockDiag,
  ns: Netns,
  query: DumpQuery,
): Promise<SocketRow[]> {
  let last = { dump: [] as string[], ss: [] as string[] };
  let rows: SocketRow[] = [];
  await until(`dump(${JSON.stringify(query)}) in "${ns.name}" to list what ss lists`, async () => {
    rows = diag.dump(query);
    last = { dump: keys(rows), ss: keys(await ssRows(ns, query.family, query.port)) };
    return last;
  }, (v) => JSON.stringify(v.dump) === JSON.stringify(v.ss));
  deepEqual(last.dump, last.ss);
  return rows;
}

/** Addresses of the veth test, per family. */
const NETS = {
  4: { server: "10.213.7.1", client: "10.213.7.2", held: "10.213.7.3", bits: 24 },
  6: { server: "fd0d:213:7::1", client: "fd0d:213:7::2", held: "fd0d:213:7::3", bits: 64 },
} as const;
/** listen(fd, 4): the accept queue holds 5. */
const BACKLOG = 4;
/** Handshakes whose final ACK the client's wire drops: SYN_RECV on the server. */
const HELD = 2;
/** Connections whose SYN arrives at the full accept queue: dropped, SYN_SENT on the client. */
const LATE = 2;

Deno.test("SockDiag.open() refuses a namespace outside the lab", () => {
  throws(() => SockDiag.open("netns-1"), RangeError);
});

for (const family of [4, 6] as const) {
  rootTest(
    `SockDiag.dump() lists what ss lists (LISTEN, ESTABLISHED, SYN_RECV, SYN_SENT), by port and state, over IPv${family}`,
    async () => {
      const net = NETS[family];
      const prefix = newRunPrefix();
      await using srv = await Netns.create(`${prefix}-srv`);
      await using cli = await Netns.create(`${prefix}-cli`);
      await using _link = await Link.create(
        { ns: srv, ifname: "veth-s", cidr: `${net.server}/${net.bits}` },
        {
          ns: cli,
          ifname: "veth-c",
          cidr: `${net.client}/${net.bits}`,
          extra: [`${net.held}/${net.bits}`],
        },
      );
      await using wire = await Wire.create(cli);
      await wire.add({
        name: "hold",
        direction: "out",
        side: "client",
        family,
        packets: ["ack"],
        port: PORT,
        clientAddress: net.held,
      });
      await using server = startServer(srv, family, net.server, PORT, BACKLOG);
      await using other = startServer(srv, family, net.server, OTHER_PORT, BACKLOG);
      await server.waitForEvent("ready", READY_MS);
      await other.waitForEvent("ready", READY_MS);
      using srvDiag = SockDiag.open(srv.name);
      using cliDiag = SockDiag.open(cli.name);
      using clients = new Clients();
      const toPort = { to: net.server, port: PORT };

      // Final ACKs dropped: requests in SYN_RECV on the server, ESTABLISHED on the client.
      clients.connect(cli.name, family, { from: net.held, ...toPort }, HELD);
      await until(
        `${HELD} SYN_RECV`,
        async () => count(await ssRows(srv, family, PORT), "SYN_RECV"),
        (n) => n === HELD,
      );
      // Fill the accept queue: backlog + 1 connections nobody accepts.
      clients.connect(cli.name, family, { from: net.client, ...toPort }, BACKLOG + 1);
      await until(
        `Recv-Q ${BACKLOG + 1}`,
        async () => (await ssRows(srv, family, PORT)).find((r) => r.state === "LISTEN")?.recvQ,
        (q) => q === BACKLOG + 1,
      );
      // SYNs at a full accept queue are dropped: SYN_SENT on the client.
      clients.connect(cli.name, family, { from: net.client, ...toPort }, LATE);
      await until(
        `${LATE} SYN_SENT`,
        async () => count(await ssRows(cli, family, PORT), "SYN_SENT"),
        (n) => n === LATE,
      );
      clients.connect(cli.name, family, { from: net.client, to: net.server, port: OTHER_PORT }, 1);
      await until(
        `a connection to port ${OTHER_PORT}`,
        () => readListenDiag(srvDiag, family, OTHER_PORT)?.recvQ,
        (q) => q === 1,
      );

      const srvRows = await dumpLikeSs(srvDiag, srv, { family, port: PORT });
      deepEqual(
        srvRows.map((r) => r.state).sort(),
        [
          "LISTEN",
          ...Array(BACKLOG + 1).fill("ESTABLISHED"),
          ...Array(HELD).fill("SYN_RECV"),
        ].sort(),
      );
      const listen = srvRows.find((r) => r.state === "LISTEN")!;
      deepEqual(
        [listen.localAddress, listen.localPort, listen.recvQ, listen.sendQ],
        [net.server, PORT, BACKLOG + 1, BACKLOG],
      );
      ok(srvRows.filter((r) => r.state === "SYN_RECV").every((r) => r.remoteAddress === net.held));
      const cliRows = await dumpLikeSs(cliDiag, cli, { family, port: PORT });
      deepEqual(
        cliRows.map((r) => r.state).sort(),
        [...Array(HELD + BACKLOG + 1).fill("ESTABLISHED"), ...Array(LATE).fill("SYN_SENT")].sort(),
      );

      // Without a port: both listeners' sockets; with one: none of the other port's.
      const all = await dumpLikeSs(srvDiag, srv, { family });
      equal(all.filter((r) => r.localPort === OTHER_PORT).length, 2);
      ok(srvRows.every((r) => r.localPort === PORT || r.remotePort === PORT));
      const cliAll = await dumpLikeSs(cliDiag, cli, { family });
      equal(cliAll.filter((r) => r.remotePort === OTHER_PORT).length, 1);
      ok(cliRows.every((r) => r.remotePort === PORT));

      // States are filtered in the kernel; SYN_RECV brings the request sockets.
      deepEqual(
        keys(srvDiag.dump({ family, port: PORT, states: ["SYN_RECV"] })),
        keys(srvRows.filter((r) => r.state === "SYN_RECV")),
      );
      deepEqual(
        keys(srvDiag.dump({ family, port: PORT, states: ["LISTEN", "ESTABLISHED"] })),
        keys(srvRows.filter((r) => r.state !== "SYN_RECV")),
      );
      deepEqual(srvDiag.dump({ family, port: PORT, states: [] }), []);
      deepEqual(srvDiag.dump({ family: family === 4 ? 6 : 4, port: PORT }), []);

      deepEqual(readListenDiag(srvDiag, family, PORT), { recvQ: BACKLOG + 1, sendQ: BACKLOG });
      deepEqual(readListenDiag(srvDiag, family, OTHER_PORT), { recvQ: 1, sendQ: BACKLOG });
      equal(readListenDiag(srvDiag, family, 7070), undefined);
      equal(readListenDiag(cliDiag, family, PORT), undefined);
    },
  );
}

rootTest("SockDiag.dump() refuses a bad query, and a disposed socket", async () => {
  await using ns = await Netns.create(`${newRunPrefix()}-sd`);
  const diag = SockDiag.open(ns.name);
  try {
    throws(() => diag.dump({ family: 5 as 4 }), /family must be 4 or 6, got 5/);
    throws(() => diag.dump({ family: 4, port: 0 }), RangeError);
    throws(() => diag.dump({ family: 4, port: 70000 }), /port must be an integer/);
    throws(
      () => diag.dump({ family: 4, states: ["SYN-RECV" as TcpState] }),
      /unknown state "SYN-RECV"/,
    );
    deepEqual(diag.dump({ family: 4 }), []);
  } finally {
    diag[Symbol.dispose]();
  }
  diag[Symbol.dispose]();
  throws(
    () => diag.dump({ family: 4 }),
    new RegExp(`dump the TCP sockets of namespace "${ns.name}": the socket is closed`),
  );
  throws(() => SockDiag.open(`${ns.name}-gone`), /does not exist/);
});

/** Connections of the scale test; both ends are in the namespace, so 2 × N rows. */
const SCALE = 10_000;

rootTest(
  `SockDiag.dump() counts ${SCALE} loopback connections of one port (both ends)`,
  async () => {
    await using ns = await Netns.create(`${newRunPrefix()}-sc`);
    await ns.sysctls({ "net.core.somaxconn": "65535" });
    // Nobody accepts: the connections wait in an accept queue with room for them all.
    await using server = startServer(ns, 4, "127.0.0.1", PORT, 2 * SCALE);
    await server.waitForEvent("ready", READY_MS);
    using diag = SockDiag.open(ns.name);
    ensureFileLimit(SCALE + 1024);
    using clients = new Clients();
    clients.connect(ns.name, 4, { from: "127.0.0.1", to: "127.0.0.1", port: PORT }, SCALE);
    await until(
      `Recv-Q ${SCALE}`,
      () => readListenDiag(diag, 4, PORT)?.recvQ,
      (q) => q === SCALE,
      60_000,
    );
    const rows = diag.dump({ family: 4, port: PORT });
    equal(rows.length, 2 * SCALE + 1);
    equal(count(rows, "ESTABLISHED"), 2 * SCALE);
    equal(count(rows, "LISTEN"), 1);
    // Every client port twice: the client's socket and the server's.
    const clientPorts = rows.filter((r) => r.state === "ESTABLISHED").map((r) =>
      r.localPort === PORT ? r.remotePort : r.localPort
    );
    equal(new Set(clientPorts).size, SCALE);
    // Timing is reported, not asserted: it depends on the machine.
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      diag.dump({ family: 4, port: PORT });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    console.log(
      `[INFO] dump() of ${rows.length} sockets: median ${times[10]!.toFixed(2)} ms, min ${
        times[0]!.toFixed(2)
      } ms, max ${times.at(-1)!.toFixed(2)} ms`,
    );
  },
);
